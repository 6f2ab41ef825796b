//! Planning a sweep's cells: what the results file already holds and what is left to run,
//! the source models, one cell per (model, quantization, load level) and per HTTP backend, and
//! the id that names the results file.

use super::{CellSpec, SweepConfig, SweepPlan};
use crate::backend::{ModelSource, Setup};
use crate::engine::quant::QuantChoice;
use crate::exec::Cell;
use crate::gguf::{GgufError, GgufFile};
use crate::measure::load::Shape;
use crate::models::synthetic::{SynthSpec, TokenizerSource, SYNTH_PREFIX};
use crate::plan::load as levels;
use crate::plan::{memory, synth, Invalid, Resolved};
use crate::record::io::Existing;
use crate::record::{CellKey, Record, RequestRecord};
use crate::scenario::{self, Scenario};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a results file already holds.
pub(super) struct Done<'a> {
    prompts: HashSet<(CellKey, String, String)>,
    records: &'a [Record],
}

impl Done<'_> {
    pub(super) fn new(records: &[Record]) -> Done<'_> {
        let prompts = crate::record::requests(records)
            .map(|q| (q.cell.clone(), q.scenario.clone(), q.prompt_id.clone()))
            .collect();
        Done { prompts, records }
    }

    /// The `(scenario, prompt)` indices a cell still runs, in scenario order: those not
    /// recorded, or for a load level every prompt (cycled by the level) unless the level is
    /// recorded.
    pub(super) fn pending(
        &self,
        scenarios: &[Scenario],
        key: &CellKey,
        level: Option<&Shape>,
    ) -> Vec<(usize, usize)> {
        if level.is_some_and(|l| levels::level_done(self.records, key, l)) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (s, sc) in scenarios.iter().enumerate() {
            for (p, prompt) in sc.prompts.iter().enumerate() {
                let done_key = (key.clone(), sc.name.clone(), prompt.id.clone());
                if level.is_some() || !self.prompts.contains(&done_key) {
                    out.push((s, p));
                }
            }
        }
        out
    }
}

impl SweepPlan {
    /// Native cells (models × quantizations × load levels) first, each in a child process.
    pub(super) fn plan_native(
        &mut self,
        cfg: &SweepConfig,
        sources: &[(Resolved, Option<GgufFile>)],
        quants: &[QuantChoice],
        done: &Done<'_>,
    ) -> anyhow::Result<()> {
        if !self.baselines.native {
            return Ok(());
        }
        let dir = tempfile::Builder::new().prefix("runner-cells").tempdir()?;
        let mem_limit = memory::limit_bytes(cfg.max_memory);
        for (r, gguf) in sources {
            for q in quants {
                let key = CellKey::native(&r.arg, q.label());
                for level in self.level_list() {
                    let pending = done.pending(&self.scenarios, &key, level.as_ref());
                    let (source, gguf) = match &r.synth {
                        Some(spec) => synth_source(spec, q, &self.shared.cache_dir, &pending)?,
                        None => (
                            ModelSource {
                                quant: matches!(q, QuantChoice::Type(_))
                                    .then(|| q.label().to_string()),
                                ..r.source()
                            },
                            gguf.clone(),
                        ),
                    };
                    let spec = CellSpec {
                        cell: key.clone(),
                        source: source.clone(),
                        scenarios: self.scenarios.iter().map(|s| s.path.clone()).collect(),
                        max_tokens: cfg.max_tokens,
                        ids: pending
                            .iter()
                            .map(|&(s, p)| self.scenarios[s].prompts[p].id.clone())
                            .collect(),
                        scenario_sha256: self.scenarios.iter().map(|s| s.sha256.clone()).collect(),
                        pending: pending.clone(),
                        level,
                        shared: self.shared.clone(),
                    };
                    let spec_path = dir.path().join(format!("cell-{}.json", self.cells.len()));
                    std::fs::write(&spec_path, serde_json::to_string(&spec)?)?;
                    let seqs = level.map_or(1, |l| l.slots());
                    let refuse = memory::check(
                        gguf.as_ref(),
                        &key.quant,
                        &self.scenarios,
                        &self.shared.engine,
                        seqs,
                        mem_limit,
                    )
                    .err()
                    .map(|why| match cfg.max_memory {
                        Some(_) => format!("{why} (--max-memory)"),
                        None => format!("{why} (the memory free now; --max-memory sets another)"),
                    });
                    let setup = self.setup(&key, vec![source], &pending);
                    let cell = self.push(native_label(&key), 0, setup, pending, level);
                    cell.isolate = Some(vec!["sweep-cell".into(), spec_path.display().to_string()]);
                    cell.refuse = refuse;
                }
            }
        }
        self._specs = Some(dir);
        Ok(())
    }

    /// One cell per HTTP backend (and load level), after the native ones.
    pub(super) fn plan_http(&mut self, done: &Done<'_>) {
        for i in 0..self.baselines.http.len() {
            let spec = self.baselines.http[i].endpoint.spec.clone();
            let key = CellKey::http(&spec);
            for level in self.level_list() {
                let pending = done.pending(&self.scenarios, &key, level.as_ref());
                let setup = self.setup(&key, Vec::new(), &pending);
                self.push(spec.to_string(), 1 + i, setup, pending, level);
            }
        }
    }

    /// The load levels each cell runs, or one plain run.
    pub(super) fn level_list(&self) -> Vec<Option<Shape>> {
        match &self.shared.load {
            Some(l) => l.levels.iter().copied().map(Some).collect(),
            None => vec![None],
        }
    }

    /// Adds a cell over `pending` prompts: one request per prompt, or one load level (named
    /// with its level).
    pub(super) fn push(
        &mut self,
        label: String,
        backend: usize,
        setup: Setup,
        pending: Vec<(usize, usize)>,
        level: Option<Shape>,
    ) -> &mut Cell {
        let label = match level {
            Some(l) => format!("{label} {}", l.label()),
            None => label,
        };
        let requests = super::requests(&pending, level);
        self.pending.push((pending, 0));
        self.levels.push(level);
        self.cells.push(Cell::new(label, backend, setup, requests));
        let last = self.cells.len() - 1;
        &mut self.cells[last]
    }
}

/// The scenarios `names` names: shipped ones (written into `cache`), else files.
pub(super) fn load_scenarios(names: &[String], cache: &Path) -> anyhow::Result<Vec<Scenario>> {
    let dirs = vec![scenario::builtin_dir_in(cache), PathBuf::from("scenarios")];
    let mut out: Vec<Scenario> = Vec::new();
    for name in names {
        let path = scenario::resolve(name, &dirs).map_err(|e| Invalid(e.to_string()))?;
        let sc = scenario::load(&path).map_err(|e| Invalid(e.to_string()))?;
        if out.iter().any(|o| o.name == sc.name) {
            return Err(Invalid(format!("scenario '{}' is named twice", sc.name)).into());
        }
        out.push(sc);
    }
    Ok(out)
}

/// Refuses a scenario whose executed graders' own part fails before any answer is graded,
/// of the first `limit` prompts of each; each distinct part is run once.
pub(super) fn check_setups(scenarios: &[Scenario], limit: Option<u32>) -> Result<(), Invalid> {
    let mut seen = HashSet::new();
    let limit = limit.map_or(usize::MAX, |n| n as usize);
    for sc in scenarios {
        for p in sc.prompts.iter().take(limit) {
            for g in &p.graders {
                let scenario::Grader::Tests(t) = g else {
                    continue;
                };
                if !seen.insert((&t.language, &t.setup)) {
                    continue;
                }
                crate::grade::execute::check_setup(t).map_err(|why| {
                    Invalid(format!(
                        "{}: prompt '{}': tests: {why}",
                        sc.path.display(),
                        p.id
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Caps every prompt's output limit at `cap` tokens.
pub(super) fn cap_output(scenarios: &mut [Scenario], cap: Option<u32>) {
    for p in scenarios.iter_mut().flat_map(|s| s.prompts.iter_mut()) {
        p.max_tokens = p.max_tokens.min(cap.unwrap_or(u32::MAX));
    }
}

/// The source models: resolved (fetched when known), each with its GGUF header (for the memory
/// estimate). A model file that is not a GGUF (another file, an empty one, a header cut short)
/// is refused as bench refuses it, before anything runs; one whose tensor data is cut short
/// fails its cell, not the sweep.
pub(super) fn resolve_sources(
    args: &[String],
    cache: &Path,
) -> anyhow::Result<Vec<(Resolved, Option<GgufFile>)>> {
    let mut out = Vec::new();
    for arg in args {
        // A synthetic model is built per quantization when its cell is planned.
        if arg.trim().starts_with(SYNTH_PREFIX) {
            let spec = SynthSpec::parse(arg).map_err(Invalid)?;
            synth::needs_text(&spec, "scenarios")?;
            let r = Resolved {
                arg: arg.to_string(),
                path: synth::cached_path(&spec, cache),
                sha256: None,
                synth: Some(spec),
            };
            out.push((r, None));
            continue;
        }
        let r = Resolved::get(arg, cache)?;
        if !r.path.exists() {
            return Err(Invalid(format!("{}: no such file", r.path.display())).into());
        }
        let gguf = match GgufFile::open(&r.path) {
            Ok(g) => Some(g),
            Err(GgufError::TensorDataOutOfBounds { .. }) => None,
            Err(e) => return Err(Invalid(e.to_string()).into()),
        };
        out.push((r, gguf));
    }
    Ok(out)
}

/// A synthetic model's cell: the model built at the cell's type (`source` is the spec's own),
/// once, unless nothing is left to run in the cell.
pub(super) fn synth_source(
    spec: &SynthSpec,
    q: &QuantChoice,
    cache: &Path,
    pending: &[(usize, usize)],
) -> anyhow::Result<(ModelSource, Option<GgufFile>)> {
    let mut spec = spec.clone();
    if let QuantChoice::Type(t) = q {
        spec.quant = Some(t.name.to_string());
    }
    let path = match pending.is_empty() {
        true => synth::cached_path(&spec, cache),
        false => synth::cached(&spec, cache)?,
    };
    let gguf = GgufFile::open(&path).ok();
    Ok((ModelSource::file(&path), gguf))
}

/// Names the results file: the same command (up to --scenario order, --fresh and --no-text)
/// on the same model files gives the same id, so a re-run resumes it. A `--limit` that leaves
/// out prompts is part of it; one that leaves out none is not, so it runs (and resumes) what
/// the same command without it does.
pub(super) fn sweep_id(
    cfg: &SweepConfig,
    quants: &[QuantChoice],
    scenarios: &[Scenario],
    backends: Option<serde_json::Value>,
    sources: &[(Resolved, Option<GgufFile>)],
) -> String {
    let quants: Vec<&str> = quants.iter().map(|q| q.label()).collect();
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    // The engine part as earlier releases wrote it, so their results files still resume.
    let e = &cfg.engine;
    let engine = serde_json::json!({
        "threads": e.threads,
        "n_ctx": e.n_ctx,
        "flash_attn": e.flash_attn.as_str(),
        "n_gpu_layers": e.n_gpu_layers,
    });
    let mut id = serde_json::json!({ "models": cfg.models, "quants": quants, "scenarios": names, "engine": engine, "raw": cfg.raw });
    if let Some(b) = backends {
        id["backends"] = b;
    }
    if let Some(n) = cfg.max_tokens {
        id["max_tokens"] = n.into();
    }
    let cuts = |n: &u32| scenarios.iter().any(|s| s.prompts.len() > *n as usize);
    if let Some(n) = cfg.limit.filter(cuts) {
        id["limit"] = n.into();
    }
    if let Some(l) = &cfg.load {
        id["load"] = l.id_part();
    }
    let files: Vec<serde_json::Value> = sources.iter().filter_map(|(r, _)| identity(r)).collect();
    if !files.is_empty() {
        id["model_files"] = files.into();
    }
    let mut h = Sha256::new();
    h.update(id.to_string());
    for s in scenarios {
        let bytes = crate::util::fs::read_input_bytes(&s.path, crate::util::fs::Input::Config);
        h.update(bytes.unwrap_or_default());
    }
    hex::encode(h.finalize())[..12].to_string()
}

/// What a results file holds for this sweep (see [`SweepPlan::own`]).
pub(crate) struct Own {
    /// The records the sweep's tables are made of.
    pub records: Vec<Record>,
    /// Records left out: requests of other cells, scenarios, prompts or load levels, failures
    /// of other cells, and requests recorded twice.
    pub left_out: usize,
}

impl Own {
    /// The requests recorded for good (those outside load levels, and those of levels whose
    /// run holds all its records), and the load levels that lost records (and run again).
    pub fn recorded(&self) -> (usize, usize) {
        let runs = crate::record::traffic::level_runs(crate::record::requests(&self.records));
        let lost = runs.iter().filter(|r| !r.complete());
        let records: usize = lost.clone().map(|r| r.found).sum();
        (
            crate::record::requests(&self.records).count() - records,
            lost.count(),
        )
    }
}

impl SweepPlan {
    /// The records of `records` that belong to this sweep, each once: requests of its cells,
    /// scenarios, prompts and load levels (of each level one run, its last complete one), the
    /// first of a request recorded twice, and the failures of its cells.
    pub(crate) fn own(&self, records: &[Record]) -> Own {
        let cells: HashSet<&CellKey> = self.cells.iter().map(|c| &c.setup.key).collect();
        let levels = self.level_list();
        let belongs = |q: &RequestRecord| {
            let prompt = |s: &Scenario| s.prompts.iter().any(|p| p.id == q.prompt_id);
            cells.contains(&q.cell)
                && self
                    .scenarios
                    .iter()
                    .any(|s| s.name == q.scenario && prompt(s))
                && levels.contains(&q.traffic.as_ref().map(|t| t.shape))
        };
        let requests: Vec<&RequestRecord> = crate::record::requests(records)
            .filter(|q| belongs(q))
            .collect();
        let mut chosen = crate::record::traffic::one_run_per_level(&requests).into_iter();
        let superseded = chosen.clone().filter(|&c| !c).count();
        let mut seen = HashSet::new();
        let out: Vec<Record> = (records.iter())
            .filter(|r| match r {
                Record::Request(q) => {
                    let place = (q.traffic.as_ref()).map(|t| (format!("{:?}", t.shape), t.seq));
                    let key = (&q.cell, &q.scenario, &q.prompt_id, place);
                    belongs(q) && chosen.next().unwrap_or(true) && seen.insert(key)
                }
                Record::CellFailed(f) => cells.contains(&f.cell),
                _ => true,
            })
            .cloned()
            .collect();
        Own {
            left_out: records.len() - out.len() - superseded,
            records: out,
        }
    }

    /// The requests its results file holds for good (see [`Own::recorded`]).
    pub fn recorded(&self) -> usize {
        crate::record::io::read(&self.shared.results).map_or(0, |r| self.own(&r).recorded().0)
    }
}

/// What tells a source model's contents apart: its verified sha256, else its size and
/// modification time, so that a file replaced or rewritten under the same name gets a results
/// file of its own instead of being taken for the one recorded. For a synthetic model, which
/// its spec names, the digest of a tokenizer taken from a file (whose contents the spec does
/// not name), else `None`.
fn identity(r: &Resolved) -> Option<serde_json::Value> {
    if let Some(spec) = &r.synth {
        return match &spec.tokenizer {
            TokenizerSource::File { digest, .. } => {
                Some(serde_json::json!({ "tokenizer": digest }))
            }
            _ => None,
        };
    }
    if let Some(sha) = &r.sha256 {
        return Some(sha.to_ascii_lowercase().into());
    }
    let meta = std::fs::metadata(&r.path).ok()?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos().to_string());
    Some(serde_json::json!({ "size": meta.len(), "mtime_ns": mtime_ns }))
}

/// Refuses to resume a results file whose requests ran on another machine (its CPU, core
/// count or memory differ from this one's): its figures are not this machine's, so they are
/// never taken as this run's done work.
pub(super) fn check_machine(records: &[Record], path: &Path) -> Result<(), Invalid> {
    let here = crate::hw::machine::fingerprint();
    let other = crate::record::requests(records)
        .map(|q| &q.info.machine)
        .find(|m| !same_machine(m, &here));
    match other {
        None => Ok(()),
        Some(m) => Err(Invalid(format!(
            "{}: holds requests measured on another machine ({}, {} cores, {:.1} GiB); give \
             --fresh to start over, or another --results directory",
            path.display(),
            m.cpu,
            m.logical_cores,
            m.ram_bytes as f64 / f64::from(1u32 << 30)
        ))),
    }
}

/// Whether two fingerprints name one machine: the same CPU, architecture and core count, and
/// memory within 2 % (the total the kernel reports moves a little between boots).
fn same_machine(a: &crate::hw::machine::MachineInfo, b: &crate::hw::machine::MachineInfo) -> bool {
    let (lo, hi) = (a.ram_bytes.min(b.ram_bytes), a.ram_bytes.max(b.ram_bytes));
    a.cpu == b.cpu
        && a.arch == b.arch
        && a.logical_cores == b.logical_cores
        && (hi - lo) as f64 <= 0.02 * hi as f64
}

pub(super) fn existing_notes(e: &Existing, own: &Own, path: &Path) -> Vec<String> {
    let p = path.display();
    let mut out = Vec::new();
    if e.torn_bytes > 0 {
        out.push(format!(
            "note: {p}: removed an unfinished last line ({} bytes) left by an interrupted run",
            e.torn_bytes
        ));
    }
    if e.bad_lines > 0 {
        out.push(format!(
            "warning: {p}: {} line(s) are not records and were skipped",
            e.bad_lines
        ));
    }
    if own.left_out > 0 {
        out.push(format!(
            "warning: {p}: {} record(s) left out: of other cells, scenarios or load levels than \
             this sweep's, or recorded twice",
            own.left_out
        ));
    }
    let (n, lost) = own.recorded();
    if lost > 0 {
        out.push(format!(
            "note: {p}: {lost} load level(s) lost records and run again"
        ));
    }
    if n > 0 {
        out.push(format!("resuming: {n} request(s) already recorded in {p}"));
    }
    out
}

/// What progress lines and warnings call a native cell: the model's short name and the
/// quantization.
pub(super) fn native_label(key: &CellKey) -> String {
    format!("{}/{}", crate::models::display_name(&key.model), key.quant)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer file's contents are part of a synthetic model's identity (and so of the
    /// sweep's id); its path alone is not.
    #[test]
    fn a_synthetic_model_is_told_apart_by_its_tokenizer_files_contents() {
        use crate::models::synthetic::tests::donor;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok.gguf");
        let resolved = |arg: &str| Resolved {
            arg: arg.into(),
            path: PathBuf::new(),
            sha256: None,
            synth: Some(SynthSpec::parse(arg).unwrap()),
        };
        let arg = format!("synth:llama-2-7b:layers=1:tokenizer={}", file.display());
        donor(&file, &["a", "b"], &[]);
        let first = identity(&resolved(&arg));
        donor(&file, &["a", "c"], &[]);
        let second = identity(&resolved(&arg));
        assert!(first.is_some() && second.is_some());
        assert_ne!(first, second);
        assert_eq!(identity(&resolved("synth:llama-2-7b:layers=1")), None);
    }
}
