//! `runner sweep`: models × quantizations × scenarios. Each (model, quantization) cell runs in
//! a child process (`runner sweep-cell`), so an abort or out-of-memory in llama.cpp loses that
//! cell only; records are appended to a JSONL results file as each request completes, and a
//! re-run of the same command resumes from it.

pub mod cell;
mod memory;
pub mod results;
pub mod spec;

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
use spec::{CellSpec, EngineSpec, Progress};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    pub failed_cells: usize,
}

/// Runs a sweep and prints its table.
pub fn run(args: &SweepArgs, cache: &Path, verbose: bool, threads: u32) -> Result<Outcome> {
    let monitor = LoadMonitor::start(load::SAMPLE_INTERVAL);
    let quants = crate::quant::parse_list(&args.quants).map_err(UsageError)?;
    let scenarios = load_scenarios(&args.scenarios)?;
    let sources = resolve_sources(&args.models, cache)?;
    let engine = EngineSpec {
        threads: args.threads.unwrap_or(threads),
        n_ctx: args.ctx,
        flash_attn: args.flash_attn.as_str().to_string(),
        n_gpu_layers: args.n_gpu_layers,
    };
    let quant_names: Vec<String> = quants.iter().map(|q| q.label().to_string()).collect();
    let id = sweep_id(&args.models, &quant_names, &scenarios, &engine, args.raw);
    let path = args.results.join(format!("sweep-{id}.jsonl"));
    let (file, existing) = ResultsFile::open(&path, args.fresh)?;
    report_existing(&existing, &path);
    drop(file);
    // Cells hold their decode rates against this machine's bandwidth: measure it once here.
    crate::hw::peak::ensure_measured(cache, &crate::hw::machine::fingerprint());
    load::check_idle(&monitor, args.busy_threshold, args.require_idle)?;
    let done = done_keys(&existing.records);
    let cells: Vec<(&Source, &String)> = sources
        .iter()
        .flat_map(|s| quant_names.iter().map(move |q| (s, q)))
        .collect();
    let pending = |key: &CellKey| pending_count(&scenarios, args.limit, &done, key);
    let total: usize = cells.iter().map(|(s, q)| pending(&key(s, q))).sum();
    let bar = progress_bar(args.no_progress, total as u64);
    let mem_limit = memory::limit_bytes(args.max_memory);
    let mut failed_cells = 0;
    for (source, quant) in &cells {
        let key = key(source, quant);
        if pending(&key) == 0 {
            continue;
        }
        if let Err(reason) = memory::check(
            source.gguf.as_ref(),
            quant,
            &scenarios,
            args.limit,
            &engine,
            mem_limit,
        ) {
            failed_cells += 1;
            bar.suspend(|| eprintln!("error: cell {}/{}: {reason}", key.model, key.quant));
            record_failure(&path, &key, &reason)?;
            bar.inc(pending(&key) as u64);
            continue;
        }
        let spec = CellSpec {
            cell: key.clone(),
            source: source.path.clone(),
            source_sha256: source.sha256.clone(),
            quant: (quant.as_str() != "source").then(|| quant.to_string()),
            scenarios: scenarios.iter().map(|s| s.path.clone()).collect(),
            limit: args.limit,
            done: done_for(&done, &key),
            results: path.clone(),
            cache_dir: cache.to_path_buf(),
            engine: engine.clone(),
            no_text: args.no_text,
            raw: args.raw,
            verbose,
            busy_threshold: args.busy_threshold,
        };
        if let Err(reason) = run_cell(&spec, &bar) {
            failed_cells += 1;
            bar.suspend(|| eprintln!("error: cell {}/{}: {reason}", key.model, key.quant));
            record_failure(&path, &key, &reason)?;
        }
    }
    bar.finish_and_clear();
    let records = results::read(&path)?;
    Ok(Outcome {
        results: path,
        rows: summary::rows(&records),
        failed_cells,
    })
}

fn key(source: &Source, quant: &str) -> CellKey {
    CellKey {
        model: source.arg.clone(),
        quant: quant.to_string(),
    }
}

/// Prints the comparison table (and writes it to -o FILE).
pub fn print(args: &SweepArgs, outcome: &Outcome) -> Result<()> {
    let format = Format::choose(args.format, args.output.as_deref());
    if let Some(out) = &args.output {
        report::write_atomic(out, &summary::render(format, &outcome.rows)?)?;
        print!("{}", summary::render(Format::Table, &outcome.rows)?);
    } else {
        print!("{}", summary::render(format, &outcome.rows)?);
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
) -> String {
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let mut h = Sha256::new();
    h.update(serde_json::json!({ "models": models, "quants": quants, "scenarios": names, "engine": e, "raw": raw }).to_string());
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
            SweepRecord::CellFailed(_) => None,
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

/// Runs one cell in a child process; `Err` holds why the cell failed.
fn run_cell(spec: &CellSpec, bar: &ProgressBar) -> std::result::Result<(), String> {
    let label = format!("{}/{}", spec.cell.model, spec.cell.quant);
    bar.set_message(format!("{label}: preparing"));
    let dir = tempfile::Builder::new()
        .prefix("runner-cell")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let spec_path = dir.path().join("cell.json");
    let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    std::fs::write(&spec_path, json).map_err(|e| format!("{}: {e}", spec_path.display()))?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find runner's own binary: {e}"))?;
    let mut child = Command::new(exe)
        .arg("sweep-cell")
        .arg(&spec_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the cell process: {e}"))?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || forward_stderr(stderr));
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            match serde_json::from_str::<Progress>(&line) {
                Ok(Progress::Loaded { .. }) => bar.set_message(label.clone()),
                Ok(Progress::Request { .. }) => bar.inc(1),
                Err(_) => {}
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let last = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    Err(exit_reason(status, last))
}

/// Copies the child's stderr to ours; returns its last non-empty line.
fn forward_stderr(stderr: Option<std::process::ChildStderr>) -> Option<String> {
    let mut last = None;
    for line in BufReader::new(stderr?)
        .lines()
        .map_while(std::result::Result::ok)
    {
        if !line.trim().is_empty() {
            eprintln!("{line}");
            last = Some(line);
        }
    }
    last
}

fn exit_reason(status: std::process::ExitStatus, last: Option<String>) -> String {
    let why = last
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or_default();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                6 => "SIGABRT: llama.cpp aborted".to_string(),
                9 => "SIGKILL: killed, often for running out of memory".to_string(),
                11 => "SIGSEGV: crashed".to_string(),
                n => format!("signal {n}"),
            };
            return if why.is_empty() {
                name
            } else {
                format!("{name}: {why}")
            };
        }
    }
    if why.is_empty() {
        format!("the cell process exited with {status}")
    } else {
        why
    }
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
    .with_context(|| format!("recording the failure of {}/{}", cell.model, cell.quant))
}
