//! `runner sweep`: models × quantizations × scenarios. Each (model, quantization) cell runs in
//! a child process (`runner sweep-cell`), so an abort or out-of-memory in llama.cpp loses that
//! cell only; records are appended to a JSONL results file as each request completes, and a
//! re-run of the same command resumes from it.

pub mod cell;
mod memory;
pub mod results;
pub mod spec;

use crate::backend::native::Native;
use crate::backend::plan::Baselines;
use crate::backend::Backend;
use crate::bench::UsageError;
use crate::cli::SweepArgs;
use crate::hw::load::{self, LoadMonitor};
use crate::models;
use crate::record::{self, CellFailure, CellKey, SweepRecord, SCHEMA_VERSION};
use crate::report::{self, sweep as summary, Format};
use crate::scenario::{self, Scenario};
use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use results::ResultsFile;
use sha2::{Digest, Sha256};
use spec::{CellSpec, EngineSpec};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A source model named on the command line.
struct Source {
    arg: String,
    path: PathBuf,
    /// Its GGUF header, read once for the memory estimates; `None` when it does not parse.
    gguf: Option<crate::gguf::GgufFile>,
    sha256: Option<String>,
}

/// What a sweep produced.
#[derive(Debug)]
pub struct Outcome {
    pub results: PathBuf,
    pub rows: Vec<summary::SweepRow>,
    /// Backends side by side (when any HTTP backend or judge ran), with reference rows.
    pub comparison: Option<crate::report::compare::Comparison>,
    pub failed_cells: usize,
}

/// Runs a sweep and prints its table.
pub fn run(args: &SweepArgs, cache: &Path, verbose: bool, threads: u32) -> Result<Outcome> {
    let monitor = LoadMonitor::start(load::SAMPLE_INTERVAL);
    let mut baselines = Baselines::from_args(&args.baselines).map_err(UsageError)?;
    let quants = crate::quant::parse_list(&args.quants).map_err(UsageError)?;
    let scenarios = load_scenarios(&args.scenarios)?;
    let sources = if baselines.native || baselines.needs_template() {
        resolve_sources(&args.models, cache)?
    } else {
        Vec::new()
    };
    let template_model = sources.first().map(|s| s.path.clone());
    for h in baselines.http.iter_mut() {
        h.template_model = template_model.clone();
    }
    let engine = engine(args, threads);
    let quant_names: Vec<String> = quants.iter().map(|q| q.label().to_string()).collect();
    let id = sweep_id(
        &args.models,
        &quant_names,
        &scenarios,
        &engine,
        args.raw,
        baselines.id_part(),
    );
    let path = args.results.join(format!("sweep-{id}.jsonl"));
    let (file, existing) = ResultsFile::open(&path, args.fresh)?;
    report_existing(&existing, &path);
    drop(file);
    // Cells hold their decode rates against this machine's bandwidth: measure it once here.
    crate::hw::peak::ensure_measured(cache, &crate::hw::machine::fingerprint());
    load::check_idle(&monitor, args.busy_threshold, args.require_idle)?;
    let done = done_keys(&existing.records);
    let cells = cells(&baselines, &sources, &quant_names);
    let shared = Shared {
        args,
        scenarios: &scenarios,
        engine: &engine,
        path: &path,
        cache,
        done: &done,
        template_model,
        verbose,
        mem_limit: memory::limit_bytes(args.max_memory),
    };
    let total: usize = cells.iter().map(|c| shared.pending(&c.key)).sum();
    let bar = progress_bar(args.no_progress, total as u64);
    let mut failed_cells = 0;
    for cell in &cells {
        if !shared.run_cell(cell, &bar)? {
            failed_cells += 1;
        }
    }
    finish(path, &scenarios, &baselines, &bar, failed_cells)
}

/// Judges what the panel has not judged yet, then reads the results back into the tables.
fn finish(
    path: PathBuf,
    scenarios: &[Scenario],
    b: &Baselines,
    bar: &ProgressBar,
    failed_cells: usize,
) -> Result<Outcome> {
    if !b.judges.is_empty() {
        crate::backend::judge::run::run(&path, scenarios, &b.judges, b.judge_time_limit, bar)?;
    }
    bar.finish_and_clear();
    let records = results::read(&path)?;
    Ok(Outcome {
        results: path,
        rows: summary::rows_with(&records, b.judge_power),
        comparison: crate::report::compare::build(&records, b.judge_power, b.reference),
        failed_cells,
    })
}

fn engine(args: &SweepArgs, threads: u32) -> EngineSpec {
    EngineSpec {
        threads: args.threads.unwrap_or(threads),
        n_ctx: args.ctx,
        flash_attn: args.flash_attn.as_str().to_string(),
        n_gpu_layers: args.n_gpu_layers,
    }
}

/// What every cell of one sweep shares.
struct Shared<'a> {
    args: &'a SweepArgs,
    scenarios: &'a [Scenario],
    engine: &'a EngineSpec,
    path: &'a Path,
    cache: &'a Path,
    done: &'a HashSet<DoneKey>,
    /// The GGUF whose chat template renders prompts for Ollama.
    template_model: Option<PathBuf>,
    verbose: bool,
    mem_limit: u64,
}

impl Shared<'_> {
    /// Requests of a cell not yet recorded.
    fn pending(&self, key: &CellKey) -> usize {
        pending_count(self.scenarios, self.args.limit, self.done, key)
    }

    /// Runs one cell (native cells after a memory check); `Ok(false)` when it failed, which
    /// is recorded with its reason.
    fn run_cell(&self, cell: &Cell<'_>, bar: &ProgressBar) -> Result<bool> {
        let key = &cell.key;
        let pending = self.pending(key) as u64;
        if pending == 0 {
            return Ok(true);
        }
        let before = bar.position();
        let result = match cell.source.filter(|_| key.backend == "native") {
            Some(source) => memory::check(
                source.gguf.as_ref(),
                &key.quant,
                self.scenarios,
                self.args.limit,
                self.engine,
                self.mem_limit,
            ),
            None => Ok(()),
        }
        .and_then(|()| cell.backend.run_cell(&self.spec(cell), bar));
        let Err(reason) = result else {
            return Ok(true);
        };
        bar.suspend(|| eprintln!("error: cell {}: {reason}", label(key)));
        record_failure(self.path, key, &reason)?;
        bar.inc((before + pending).saturating_sub(bar.position()));
        Ok(false)
    }

    fn spec(&self, cell: &Cell<'_>) -> CellSpec {
        let key = &cell.key;
        CellSpec {
            cell: key.clone(),
            source: cell
                .source
                .map(|s| s.path.clone())
                .or(self.template_model.clone())
                .unwrap_or_default(),
            source_sha256: cell.source.and_then(|s| s.sha256.clone()),
            quant: (key.backend == "native" && key.quant != "source").then(|| key.quant.clone()),
            scenarios: self.scenarios.iter().map(|s| s.path.clone()).collect(),
            limit: self.args.limit,
            done: done_for(self.done, key),
            results: self.path.to_path_buf(),
            cache_dir: self.cache.to_path_buf(),
            engine: self.engine.clone(),
            no_text: self.args.no_text,
            raw: self.args.raw,
            verbose: self.verbose,
            busy_threshold: self.args.busy_threshold,
        }
    }
}

/// One cell to run: its key, its source model (native cells), and the backend that runs it.
struct Cell<'a> {
    key: CellKey,
    source: Option<&'a Source>,
    backend: &'a dyn Backend,
}

/// Native cells (models × quantizations) first, then one cell per HTTP backend.
fn cells<'a>(b: &'a Baselines, sources: &'a [Source], quants: &[String]) -> Vec<Cell<'a>> {
    let mut out = Vec::new();
    if b.native {
        for s in sources {
            for q in quants {
                out.push(Cell {
                    key: key(s, q),
                    source: Some(s),
                    backend: &Native,
                });
            }
        }
    }
    for h in &b.http {
        out.push(Cell {
            key: CellKey {
                backend: h.endpoint.spec.to_string(),
                model: h.endpoint.spec.model.clone(),
                quant: "-".into(),
            },
            source: None,
            backend: h,
        });
    }
    out
}

/// `model/quant` for native cells, the backend name for HTTP ones.
fn label(key: &CellKey) -> String {
    if key.backend == "native" {
        format!("{}/{}", key.model, key.quant)
    } else {
        key.backend.clone()
    }
}

fn key(source: &Source, quant: &str) -> CellKey {
    CellKey {
        backend: "native".into(),
        model: source.arg.clone(),
        quant: quant.to_string(),
    }
}

/// Prints the comparison table (and writes it to -o FILE).
pub fn print(args: &SweepArgs, outcome: &Outcome) -> Result<()> {
    let format = Format::choose(args.format, args.output.as_deref());
    if let Some(out) = &args.output {
        let mut text = summary::render(format, &outcome.rows)?;
        text.push_str(&crate::report::compare::render(
            format,
            outcome.comparison.as_ref(),
        )?);
        report::write_atomic(out, &text)?;
        print!("{}", summary::render(Format::Table, &outcome.rows)?);
        print!(
            "{}",
            crate::report::compare::render(Format::Table, outcome.comparison.as_ref())?
        );
    } else {
        print!("{}", summary::render(format, &outcome.rows)?);
        print!(
            "{}",
            crate::report::compare::render(format, outcome.comparison.as_ref())?
        );
    }
    eprintln!("records: {}", outcome.results.display());
    Ok(())
}

fn load_scenarios(names: &[String]) -> Result<Vec<Scenario>> {
    let dirs = vec![scenario::builtin_dir(), PathBuf::from("scenarios")];
    let mut out: Vec<Scenario> = Vec::new();
    for name in names {
        let path = scenario::resolve(name, &dirs).map_err(|e| UsageError(e.to_string()))?;
        let sc = scenario::load(&path).map_err(|e| UsageError(e.to_string()))?;
        if out.iter().any(|o| o.name == sc.name) {
            return Err(UsageError(format!("scenario '{}' is named twice", sc.name)).into());
        }
        out.push(sc);
    }
    Ok(out)
}

fn resolve_sources(args: &[String], cache: &Path) -> Result<Vec<Source>> {
    let opts = models::FetchOptions::default();
    let mut out = Vec::new();
    for arg in args {
        let path = models::resolve(arg, cache, &opts).map_err(crate::bench::classify_resolve)?;
        if !path.exists() {
            return Err(UsageError(format!("{}: no such file", path.display())).into());
        }
        let sha256 = models::verified_sha256(&path, cache);
        let gguf = crate::gguf::GgufFile::open(&path).ok();
        out.push(Source {
            arg: arg.clone(),
            gguf,
            path,
            sha256,
        });
    }
    Ok(out)
}

/// Names the results file: the same command (up to --limit, --scenario order, --fresh and
/// --no-text) gives the same id, so a re-run resumes it.
fn sweep_id(
    models: &[String],
    quants: &[String],
    scenarios: &[Scenario],
    e: &EngineSpec,
    raw: bool,
    backends: Option<serde_json::Value>,
) -> String {
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let mut h = Sha256::new();
    let mut id = serde_json::json!({ "models": models, "quants": quants, "scenarios": names, "engine": e, "raw": raw });
    if let Some(b) = backends {
        id["backends"] = b;
    }
    h.update(id.to_string());
    for s in scenarios {
        h.update(std::fs::read(&s.path).unwrap_or_default());
    }
    hex::encode(h.finalize())[..12].to_string()
}

fn report_existing(e: &results::Existing, path: &Path) {
    if e.torn_bytes > 0 {
        eprintln!(
            "note: {}: removed an unfinished last line ({} bytes) left by an interrupted run",
            path.display(),
            e.torn_bytes
        );
    }
    if e.bad_lines > 0 {
        eprintln!(
            "warning: {}: {} line(s) are not records and were skipped",
            path.display(),
            e.bad_lines
        );
    }
    let n = e
        .records
        .iter()
        .filter(|r| matches!(r, SweepRecord::Request(_)))
        .count();
    if n > 0 {
        eprintln!(
            "resuming: {n} request(s) already recorded in {}",
            path.display()
        );
    }
}

type DoneKey = (CellKey, String, String);

fn done_keys(records: &[SweepRecord]) -> HashSet<DoneKey> {
    records
        .iter()
        .filter_map(|r| match r {
            SweepRecord::Request(q) => {
                Some((q.cell.clone(), q.scenario.clone(), q.prompt_id.clone()))
            }
            SweepRecord::CellFailed(_) | SweepRecord::Judgement(_) => None,
        })
        .collect()
}

fn done_for(done: &HashSet<DoneKey>, key: &CellKey) -> Vec<(String, String)> {
    done.iter()
        .filter(|(c, _, _)| c == key)
        .map(|(_, s, p)| (s.clone(), p.clone()))
        .collect()
}

fn pending_count(
    scenarios: &[Scenario],
    limit: Option<u32>,
    done: &HashSet<DoneKey>,
    key: &CellKey,
) -> usize {
    let limit = limit.map_or(usize::MAX, |n| n as usize);
    scenarios
        .iter()
        .flat_map(|s| s.prompts.iter().take(limit).map(move |p| (s, p)))
        .filter(|(s, p)| !done.contains(&(key.clone(), s.name.clone(), p.id.clone())))
        .count()
}

fn progress_bar(hidden: bool, total: u64) -> ProgressBar {
    let target = if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr_with_hz(4)
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} requests (eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn record_failure(path: &Path, cell: &CellKey, reason: &str) -> Result<()> {
    let mut f = ResultsFile::append_to(path)?;
    f.append(&SweepRecord::CellFailed(CellFailure {
        schema: SCHEMA_VERSION,
        time: record::now_rfc3339(),
        runner_version: env!("CARGO_PKG_VERSION").to_string(),
        cell: cell.clone(),
        reason: reason.to_string(),
    }))
    .with_context(|| format!("recording the failure of {}", label(cell)))
}
