//! `runner sweep` (and `runner compare`) as a plan: models × quantizations × scenarios, through
//! llama.cpp in-process and any HTTP backend. Each native (model, quantization) cell runs in a
//! child process (`runner sweep-cell`), so an abort or out-of-memory in llama.cpp loses that
//! cell only; HTTP cells run in this process. Every request is appended to one results file
//! per configuration as it completes, and a re-run of the same command resumes from it.

use super::baselines::{BackendOptions, Baselines};
use super::load::{self as levels, LoadConfig};
use super::profile::quick_routing;
use super::Invalid;
use crate::backend::{
    Backend, ChatReply, ChatRequest, EngineSpec, ModelSource, Reply, Request, Setup,
};
use crate::engine::quant;
use crate::exec::{self, Cell, Observed, Plan};
use crate::grade;
use crate::hw::peak::Measurement;
use crate::measure::load::Shape;
use crate::measure::{ms, StopReason};
use crate::record::{
    read::refuse_records_output, CellFailure, CellInfo, CellKey, Provenance, Record, RequestRecord,
    ResultsFile,
};
use crate::scenario::{self, Prompt, Scenario};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[path = "sweep_cells.rs"]
mod cells;
#[path = "sweep_load.rs"]
mod load_cells;

use cells::{
    cap_output, check_setups, existing_notes, load_scenarios, native_label, resolve_sources,
    sweep_id, Done,
};

/// Validated settings of `runner sweep` and `runner compare`.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub models: Vec<String>,
    pub quants: Vec<String>,
    pub scenarios: Vec<String>,
    /// Run only the first N prompts of each scenario.
    pub limit: Option<u32>,
    /// Cap every prompt's output limit at this many tokens.
    pub max_tokens: Option<u32>,
    pub results: PathBuf,
    /// Where the summary tables also go (`-o`): never a file that holds records, the sweep's
    /// own or any other.
    pub summary: Option<PathBuf>,
    pub fresh: bool,
    pub no_text: bool,
    pub raw: bool,
    pub engine: EngineSpec,
    pub max_memory: Option<f64>,
    pub require_idle: bool,
    pub busy_threshold: f64,
    pub backends: BackendOptions,
    /// Load levels (`--concurrency`, `--rate`): each cell runs once per level.
    pub load: Option<LoadConfig>,
}

/// What a native cell's child process is handed: everything it needs, as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSpec {
    pub cell: CellKey,
    pub source: ModelSource,
    pub scenarios: Vec<PathBuf>,
    /// The cap on every prompt's output limit.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The `(scenario, prompt)` indices to run: those not recorded yet.
    pub pending: Vec<(usize, usize)>,
    /// The ids of those prompts, so that the child can tell a scenario file edited since the
    /// sweep started from the one the parent read.
    pub ids: Vec<String>,
    /// The sha256 of each scenario file's text as the parent read it: a file edited since, if
    /// only in a setting or a grader, is no longer the sweep's.
    #[serde(default)]
    pub scenario_sha256: Vec<String>,
    /// The load level this cell runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Shape>,
    #[serde(flatten)]
    pub shared: Shared,
}

/// What every cell of a sweep runs with, in the parent and in each child process alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shared {
    /// The results file the cells append their records to.
    pub results: PathBuf,
    pub cache_dir: PathBuf,
    pub engine: EngineSpec,
    pub no_text: bool,
    pub raw: bool,
    pub verbose: bool,
    pub busy_threshold: f64,
    /// The sweep's load settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadConfig>,
    /// This machine's memory bandwidth, measured (or loaded) when the sweep started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Measurement>,
}

/// A sweep as a plan.
#[derive(Default)]
pub struct SweepPlan {
    cells: Vec<Cell>,
    pub scenarios: Vec<Scenario>,
    /// Per cell: the pending `(scenario, prompt)` indices, and how many have run.
    pending: Vec<(Vec<(usize, usize)>, usize)>,
    /// What a decoded token of the running cell reads and the peaks (native cells).
    meter: Option<super::Meter>,
    pub baselines: Baselines,
    pub shared: Shared,
    /// Lines to show before the run (resuming, a repaired file).
    pub notes: Vec<String>,
    /// Kept alive while the children read their specs.
    _specs: Option<tempfile::TempDir>,
    /// The plan of a child process's one cell: a failed cell is the parent's to record.
    child: bool,
    /// Cells whose model was found to be a base model (said once each).
    noted_base: Vec<usize>,
    /// Per cell: the load level it runs (load sweeps).
    levels: Vec<Option<Shape>>,
    /// The results file, held open (and locked) while the sweep runs.
    _writer: Option<ResultsFile>,
    /// A child's answers of its cell's prompts run alone, by prompt id.
    alone: std::collections::HashMap<String, String>,
    /// The cells that failed as a whole in this run.
    pub failed_cells: Vec<CellKey>,
}

impl SweepPlan {
    /// Checks every flag, file and name, opens (or resumes) the results file and plans the
    /// cells.
    pub fn new(cfg: &SweepConfig, cache: &Path, verbose: bool) -> anyhow::Result<SweepPlan> {
        let mut baselines = Baselines::from_options(&cfg.backends).map_err(Invalid)?;
        let quants = quant::parse_list(&cfg.quants).map_err(Invalid)?;
        let mut scenarios = load_scenarios(&cfg.scenarios, cache)?;
        // Before any model is resolved (which may fetch it), of the prompts within --limit.
        check_setups(&scenarios, cfg.limit)?;
        cap_output(&mut scenarios, cfg.max_tokens);
        // A rubric the judges would refuse fails now, not after the sweep has run.
        if !baselines.judges.is_empty() {
            for sc in &scenarios {
                crate::scenario::rubric::load(&sc.path).map_err(Invalid)?;
            }
        }
        let sources = match baselines.native || baselines.needs_template() {
            true => resolve_sources(&cfg.models, cache)?,
            false => Vec::new(),
        };
        let template_model = sources.first().map(|s| s.0.path.clone());
        for h in baselines.http.iter_mut() {
            h.template_model = template_model.clone();
        }
        let id = sweep_id(cfg, &quants, &scenarios, baselines.id_part(), &sources);
        // The sweep's prompts are those within --limit: resume and the tables count only them.
        for sc in &mut scenarios {
            sc.prompts
                .truncate(cfg.limit.map_or(usize::MAX, |n| n as usize));
        }
        let results = cfg.results.join(format!("sweep-{id}.jsonl"));
        // -o is neither the sweep's records file, nor another sweep's or a bench's, nor a file
        // the sweep reads: a scenario, the backend config, the price table (a model is refused
        // with the flags).
        if let Some(path) = &cfg.summary {
            let same = |i: &Path| crate::util::fs::same_file(i, path);
            let read = (scenarios.iter().map(|s| s.path.as_path()))
                .chain(cfg.backends.backend_config.as_deref())
                .chain(cfg.backends.prices.as_deref())
                .any(same);
            let refused = |why: &str| {
                let p = path.display();
                Invalid(format!("-o {p}: {why}; write the tables to another file"))
            };
            if same(&results) {
                return Err(refused("is the sweep's records file").into());
            }
            refuse_records_output(path, "the tables")
                .map_err(|why| Invalid(format!("-o {}: {why}", path.display())))?;
            if read {
                return Err(refused("is a file the sweep reads (a scenario, a config)").into());
            }
        }
        let (writer, existing) = ResultsFile::open(&results, cfg.fresh)?;
        cells::check_machine(&existing.records, &results)?;
        // Cells hold their decode rates against this machine's bandwidth: measure it once here
        // (one taken on a busy machine is neither saved nor used: the cells have no measured
        // peak).
        let machine = crate::hw::machine::fingerprint();
        let bandwidth = crate::hw::peak::ensure_measured(cache, &machine);
        let shared = Shared {
            results,
            cache_dir: cache.to_path_buf(),
            engine: cfg.engine.clone(),
            no_text: cfg.no_text,
            raw: cfg.raw,
            verbose,
            busy_threshold: cfg.busy_threshold,
            load: cfg.load.clone(),
            bandwidth,
        };
        let mut plan = SweepPlan {
            _writer: Some(writer),
            shared,
            scenarios,
            baselines,
            ..Default::default()
        };
        let done = Done::new(&existing.records);
        plan.plan_native(cfg, &sources, &quants, &done)?;
        plan.plan_http(&done);
        let own = plan.own(&existing.records);
        plan.notes = existing_notes(&existing, &own, &plan.shared.results);
        Ok(plan)
    }

    /// The plan of one native cell in its child process, from its spec.
    pub fn child(spec: &CellSpec) -> anyhow::Result<SweepPlan> {
        let mut scenarios = (spec.scenarios.iter())
            .map(|p| scenario::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        cap_output(&mut scenarios, spec.max_tokens);
        let found = spec.pending.iter().map(|&(s, p)| {
            let prompt = scenarios.get(s)?.prompts.get(p)?;
            Some(prompt.id.as_str())
        });
        let read = scenarios.iter().map(|s| &s.sha256);
        let edited = !read.eq(spec.scenario_sha256.iter());
        if edited || !found.eq(spec.ids.iter().map(|id| Some(id.as_str()))) {
            anyhow::bail!(
                "the scenario files changed while the sweep ran: run the sweep again to run \
                 them as they are now (its records go to the results file of their contents)"
            );
        }
        let alone = match spec.level {
            Some(Shape::Closed { concurrency: 1 }) | None => Default::default(),
            Some(_) => crate::record::io::read(&spec.shared.results)
                .map(|r| levels::alone_answers(&r, &spec.cell))
                .unwrap_or_default(),
        };
        let mut plan = SweepPlan {
            shared: spec.shared.clone(),
            child: true,
            alone,
            scenarios,
            baselines: Baselines {
                native: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let setup = plan.setup(&spec.cell, vec![spec.source.clone()], &spec.pending);
        // Named as the parent names it, so that the child's warnings match its progress lines.
        let label = native_label(&spec.cell);
        plan.push(label, 0, setup, spec.pending.clone(), spec.level);
        Ok(plan)
    }

    /// The record of cell `c` failing.
    /// The record of cell `c`'s failure; a load level's names the level, which its cell key
    /// does not.
    fn failure(&self, c: usize, reason: String) -> Record {
        let reason = match self.levels.get(c).copied().flatten() {
            Some(shape) if !reason.starts_with(&format!("{}:", shape.label())) => {
                format!("{}: {reason}", shape.label())
            }
            _ => reason,
        };
        Record::CellFailed(CellFailure {
            provenance: Provenance::now(),
            cell: self.cells[c].setup.key.clone(),
            reason,
        })
    }

    fn setup(&self, key: &CellKey, models: Vec<ModelSource>, pending: &[(usize, usize)]) -> Setup {
        let s = &self.shared;
        Setup {
            key: key.clone(),
            models,
            sessions: vec![crate::backend::SessionSpec::plain(0)],
            engine: s.engine.clone(),
            context: None,
            prompts: pending
                .iter()
                .map(|&(s, p)| self.scenarios[s].prompts[p].clone())
                .collect(),
            raw: s.raw,
            cache_dir: s.cache_dir.clone(),
        }
    }

    fn prompt(&self, c: usize, id: usize) -> (&Scenario, &Prompt) {
        let (s, p) = self.pending[c].0[id];
        let sc = &self.scenarios[s];
        (sc, &sc.prompts[p])
    }

    /// The record of one request.
    fn record(&self, c: usize, id: usize, r: ChatReply, seen: &Observed<'_>) -> RequestRecord {
        let (sc, prompt) = self.prompt(c, id);
        let key = &self.cells[c].setup.key;
        let m = r.trace.metrics();
        let (cost_usd, cost_source) = self.cost(seen.info, &r);
        let failure = r.failure.as_ref();
        let failed = failure.is_some();
        let text = r.trace.text;
        let verdicts = grade::grade(&text, &prompt.graders);
        // A skipped grader (its runtime missing here) counts neither way.
        let outcome = grade::outcome(failed, &verdicts);
        let mut info = seen.info.clone();
        info.memory.peak_rss_bytes = seen.peak_rss;
        let depth =
            f64::from(r.trace.prompt_tokens) + r.trace.output_tokens.unwrap_or(0) as f64 / 2.0;
        let bandwidth = (self.meter.as_ref().zip(m.decode_tps))
            .map(|(meter, tps)| meter.figures(depth, tps, &info.engine));
        RequestRecord {
            provenance: Provenance::now(),
            cell: key.clone(),
            info,
            scenario: sc.name.clone(),
            scenario_kind: sc.kind,
            prompt_id: prompt.id.clone(),
            category: prompt.category.clone(),
            pair: prompt.pair.clone(),
            template: r.template,
            prompt_tokens: r.trace.prompt_tokens,
            output_tokens: r
                .trace
                .output_tokens
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            ttft_ms: m.ttft.map(ms),
            prompt_tps: m.prompt_tps,
            decode_tps: m.decode_tps,
            e2e_ms: ms(m.e2e),
            llama_ms: r.trace.engine.map_or(0.0, |e| ms(e.prompt + e.decode)),
            itl_ms: m.itl,
            bandwidth,
            stop_reason: r.trace.stop.unwrap_or(StopReason::Error),
            failed,
            error: failure.map(|f| f.message.clone()),
            text: (!self.shared.no_text).then_some(text),
            score: outcome.score,
            pass: outcome.pass,
            ungraded: outcome.ungraded,
            verdicts,
            load: seen.load.clone(),
            token_ms: r.trace.tokens.iter().map(|&d| ms(d)).collect(),
            error_kind: failure.filter(|_| !key.backend.is_native()).map(|f| f.kind),
            server: r.server,
            http: r.http,
            cost_usd,
            cost_source,
            traffic: None,
        }
    }

    /// Nothing for in-process requests; for HTTP, free when local, else the provider's
    /// figure or the price table's, the table pricing the token counts the record believes
    /// (`prompt_tokens`, `output_tokens`) rather than a server count it does not: a prompt
    /// count not believed and not replaced by runner's own leaves the cost unknown, and so do
    /// the cache counts that are parts of it.
    fn cost(&self, info: &CellInfo, r: &ChatReply) -> (Option<f64>, Option<String>) {
        let Some(ep) = &info.endpoint else {
            return (None, None);
        };
        let mut server = r.server.clone().unwrap_or_default();
        let prompt = (r.trace.prompt_tokens > 0).then_some(u64::from(r.trace.prompt_tokens));
        if server.prompt_tokens != prompt {
            (server.cached_prompt_tokens, server.cache_write_tokens) = (None, None);
        }
        server.prompt_tokens = prompt;
        server.output_tokens = r.trace.output_tokens;
        let prices = &self.baselines.prices;
        grade::cost::cost(ep.local, ep.kind.as_str(), &ep.model, &server, prices)
    }
}

impl Plan for SweepPlan {
    fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn prepared(&mut self, c: usize, info: &mut CellInfo) -> Result<(), String> {
        let setup = &self.cells[c].setup;
        self.meter = None;
        if !setup.key.backend.is_native() {
            return Ok(());
        }
        let measured = || self.shared.bandwidth.clone();
        let meter = super::Meter::new(info, setup.engine.n_gpu_layers, measured)?;
        self.meter = Some(meter);
        if info.model.expert_count.is_some() {
            let path = Path::new(&info.model.path);
            let routing = quick_routing(path, &setup.cache_dir, &setup.engine, self.shared.verbose);
            info.routing = Some(routing);
        }
        Ok(())
    }

    fn next(&mut self, c: usize) -> Option<usize> {
        let (pending, next) = &mut self.pending[c];
        exec::take_next(next, requests(pending, self.levels[c]))
    }

    fn request(&self, c: usize, id: usize) -> Request<'_> {
        match self.levels[c] {
            Some(shape) => Request::Load(self.load_request(c, shape)),
            None => Request::Chat(ChatRequest::new(self.prompt(c, id).1)),
        }
    }

    fn reply(&mut self, c: usize, id: usize, reply: Reply, seen: &Observed<'_>) -> Vec<Record> {
        if let Some(shape) = self.levels[c] {
            return self.load_records(c, shape, reply, seen);
        }
        let chat = match reply {
            Reply::Chat(r) => r,
            Reply::Failed(f) => ChatReply {
                failure: Some(f),
                trace: crate::measure::Trace {
                    stop: Some(StopReason::Error),
                    ..Default::default()
                },
                ..Default::default()
            },
            _ => return Vec::new(),
        };
        if chat.base_model && !self.noted_base.contains(&c) {
            self.noted_base.push(c);
            seen.obs.warn(&format!(
                "{} has no chat template (a base model): prompts use {}; its pass rates measure little",
                self.cells[c].label, chat.template
            ));
        }
        vec![Record::Request(Box::new(self.record(c, id, chat, seen)))]
    }

    fn cell_failed(&mut self, c: usize, reason: &str) -> Vec<Record> {
        if self.child {
            return Vec::new();
        }
        self.failed_cells.push(self.cells[c].setup.key.clone());
        vec![self.failure(c, reason.to_string())]
    }
}

/// The requests of a cell over `pending` prompts: one per prompt, or one for a load level.
fn requests(pending: &[(usize, usize)], level: Option<Shape>) -> usize {
    match level {
        Some(_) => usize::from(!pending.is_empty()),
        None => pending.len(),
    }
}

/// Runs a sweep: every cell, then the judge panel over what is not judged yet; why each failed
/// cell failed.
pub fn run(
    plan: &mut SweepPlan,
    obs: &dyn exec::Observer,
    monitor: &crate::hw::load::LoadMonitor,
) -> Result<Vec<String>, exec::ExecError> {
    let mut native = crate::backend::native::Native::new(plan.shared.verbose);
    let mut http = std::mem::take(&mut plan.baselines.http);
    let mut sink = ResultsFile::append_to(&plan.shared.results)
        .map_err(|e| exec::ExecError::Sink(e.to_string()))?;
    let opts = exec::Options {
        monitor,
        busy_threshold: plan.shared.busy_threshold,
        stop_on_refusal: false,
    };
    let failures = {
        let mut backends: Vec<&mut dyn Backend> = vec![&mut native];
        backends.extend(http.iter_mut().map(|h| h as &mut dyn Backend));
        exec::run(plan, &mut backends, &mut sink, obs, &opts)
    };
    plan.baselines.http = http;
    let failures = failures?;
    if !plan.baselines.judges.is_empty() {
        super::judge::run(plan, obs, monitor)?;
    }
    Ok(failures)
}

/// Runs the one native cell of a child process; its records go to the results file. When they
/// cannot be written, the parent is told so (and says it once) and the exit code is 1.
pub fn run_child(spec_path: &Path) -> anyhow::Result<std::process::ExitCode> {
    exec::child::die_with_parent().map_err(|e| anyhow::anyhow!(e))?;
    let text = crate::util::fs::read_input(spec_path, crate::util::fs::Input::Config)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", spec_path.display()))?;
    let spec: CellSpec = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("reading the cell specification: {e}"))?;
    let mut plan = SweepPlan::child(&spec)?;
    let mut sink = ResultsFile::append_to(&spec.shared.results)?;
    let monitor = crate::hw::load::LoadMonitor::start();
    let obs = exec::child::Emitter;
    let (busy, verbose) = (spec.shared.busy_threshold, spec.shared.verbose);
    let failures = match exec::run_native(&mut plan, &mut sink, &obs, &monitor, busy, verbose) {
        Err(exec::ExecError::Sink(msg)) => {
            obs.sink_failed(&msg);
            return Ok(std::process::ExitCode::FAILURE);
        }
        other => other?,
    };
    match failures.first() {
        Some(reason) => Err(anyhow::anyhow!("{reason}")),
        None => Ok(std::process::ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell's child process refuses a scenario file edited while the sweep ran: prompts
    /// whose ids are not where the parent found them, or other settings for the same prompts,
    /// instead of running other prompts or the same ones otherwise.
    #[test]
    fn a_child_refuses_a_scenario_file_changed_since_the_sweep_started() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        std::fs::copy(scenarios.join("short-response.toml"), &file).unwrap();
        let read = scenario::load(&file).unwrap();
        let first = read.prompts[0].id.clone();
        let spec = |pending: Vec<(usize, usize)>, ids: Vec<String>| CellSpec {
            scenario_sha256: vec![read.sha256.clone()],
            cell: CellKey::native("m", "q8_0"),
            source: ModelSource::file(&dir.path().join("m.gguf")),
            scenarios: vec![file.clone()],
            max_tokens: None,
            pending,
            ids,
            level: None,
            shared: Shared {
                results: dir.path().join("r.jsonl"),
                cache_dir: dir.path().to_path_buf(),
                no_text: true,
                busy_threshold: 0.25,
                ..Default::default()
            },
        };
        assert!(SweepPlan::child(&spec(vec![(0, 0)], vec![first.clone()])).is_ok());
        let refused = |spec: &CellSpec| {
            let e = SweepPlan::child(spec).err().unwrap();
            assert!(
                e.to_string()
                    .starts_with("the scenario files changed while the sweep ran"),
                "{e}"
            );
        };
        for (pending, ids) in [
            (vec![(0, 0)], vec!["another".to_string()]),
            (vec![(0, 999)], vec![first.clone()]),
            (vec![(1, 0)], vec![first.clone()]),
        ] {
            refused(&spec(pending, ids));
        }
        // The same prompts with another output limit.
        let text = std::fs::read_to_string(&file).unwrap();
        let edited = text.replacen("max_tokens = ", "max_tokens = 1", 1);
        assert_ne!(edited, text);
        std::fs::write(&file, edited).unwrap();
        assert_eq!(scenario::load(&file).unwrap().prompts[0].id, first);
        refused(&spec(vec![(0, 0)], vec![first]));
    }
}
