//! The measuring commands: `bench`, `sweep` / `compare` and `profile` — flags validated, the
//! plan run through the loop with progress on stderr, results printed, exit code chosen. An
//! interrupted sweep says how much it recorded and how to resume.

use super::error::{EXIT_FAILURE, EXIT_INTERRUPTED};
use super::UsageError;
use crate::cli::bench::{BenchArgs, Output};
use crate::cli::profile::ProfileArgs;
use crate::cli::sweep::SweepArgs;
use crate::cli::ListFormat;
use crate::exec::observer::Progress;
use crate::exec::{self, ExecError, Observer, Sink};
use crate::hw::load::LoadMonitor;
use crate::plan::bench::BenchPlan;
use crate::plan::default_threads;
use crate::plan::profile::ProfilePlan;
use crate::plan::sweep::SweepPlan;
use crate::record::{BenchRecord, CellKey, Record};
use crate::report::{self, Format};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// Bench records, with `-o FILE` rewritten after every test. A FIFO or device is written once,
/// when the run ends: its reader takes the first write's end as the end of its input.
struct BenchSink<'a> {
    records: Vec<BenchRecord>,
    out: &'a Output,
    /// Whether `-o` names a regular file (or none yet), rewritten after each test.
    rewrite: bool,
}

impl BenchSink<'_> {
    fn write(&self) -> Result<(), String> {
        let Some(path) = &self.out.file else {
            return Ok(());
        };
        let text = self
            .out
            .format
            .render(&self.records)
            .map_err(|e| e.to_string())?;
        report::write_atomic(path, &text).map_err(|e| e.to_string())
    }
}

impl Sink for BenchSink<'_> {
    fn append(&mut self, record: &Record) -> Result<(), String> {
        if let Record::Bench(r) = record {
            self.records.push((**r).clone());
        }
        match self.rewrite {
            true => self.write(),
            false => Ok(()),
        }
    }
}

/// `runner bench`.
pub fn bench(args: BenchArgs, cache: &Path, verbose: bool) -> anyhow::Result<ExitCode> {
    let monitor = LoadMonitor::start();
    let (cfg, out) = args.validate(default_threads()).map_err(UsageError)?;
    let (busy, require_idle) = (cfg.busy_threshold, cfg.require_idle);
    // Ctrl-C while the plan is made (a `synth:` model being written) stops it too.
    let mut plan = super::writing(|| BenchPlan::new(cfg, cache))?;
    let obs = Progress::new(out.progress, "runs");
    exec::check_idle(&monitor, busy, require_idle, &obs)?;
    let special = (out.file.as_deref())
        .and_then(|p| crate::util::fs::out_target(p).ok())
        .is_some_and(|t| matches!(t, crate::util::fs::OutTarget::Special(_)));
    let mut sink = BenchSink {
        records: Vec::new(),
        out: &out,
        rewrite: !special,
    };
    // Every cell in this process, as llama-bench does.
    let result = exec::run_native(&mut plan, &mut sink, &obs, &monitor, busy, verbose);
    obs.finish();
    let written = match special {
        true => sink.write(),
        false => Ok(()),
    };
    print_bench(&out, &sink.records)?;
    result?;
    written.map_err(|e| match crate::util::interrupt::requested() {
        true => anyhow::Error::from(ExecError::Interrupted),
        false => anyhow::Error::msg(e),
    })?;
    if plan.failures > 0 {
        eprintln!("error: {} test(s) failed", plan.failures);
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The bench's results on stdout: the table when they also went to a file, otherwise the
/// chosen format.
fn print_bench(out: &Output, records: &[BenchRecord]) -> anyhow::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let format = match out.file.is_some() {
        true => Format::Table,
        false => out.format,
    };
    print!("{}", format.render(records)?);
    Ok(())
}

/// `runner sweep` and `runner compare`.
pub fn sweep(
    args: SweepArgs,
    cache: &Path,
    verbose: bool,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let monitor = LoadMonitor::start();
    let (cfg, out) = args.validate(default_threads()).map_err(UsageError)?;
    // Ctrl-C while the plan is made (a `synth:` model being written) stops it too.
    let mut plan = super::writing(|| SweepPlan::new(&cfg, cache, verbose))?;
    for note in &plan.notes {
        eprintln!("{note}");
    }
    // With load levels, each of a cell's steps is a whole level.
    let unit = match cfg.load {
        Some(_) => "levels",
        None => "requests",
    };
    let obs = Progress::new(out.progress, unit);
    exec::check_idle(&monitor, cfg.busy_threshold, cfg.require_idle, &obs)?;
    let failures = crate::plan::sweep::run(&mut plan, &obs, &monitor);
    obs.finish();
    // A cell's process stopped while it quantized leaves its partial output in the cache.
    crate::engine::quantize::remove_stale_partials(cache);
    let failures = match failures {
        Err(ExecError::Interrupted) => return Ok(interrupted(&plan, command)),
        other => other?,
    };
    let failed_whole = print_sweep(&out, &plan)?;
    for (cell, n, first) in &failed_whole {
        eprintln!("error: cell {cell}: all {n} request(s) failed (the first: {first})");
    }
    let failed = failures.len() + failed_whole.len();
    if failed > 0 {
        eprintln!("error: {failed} cell(s) failed");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// The cells (and load levels) whose every request ended in an error (not in its time limit:
/// that is a measurement), with how many and the first error: a server that is down, say.
/// The run measured nothing there, which is a failure of the run. A cell that failed as a
/// whole in this run (`died`) is counted, and named, as such already.
fn failed_whole(records: &[Record], died: &[CellKey]) -> Vec<(String, usize, String)> {
    type Level = Option<String>;
    let mut by: BTreeMap<(&CellKey, Level), (usize, bool, Option<String>)> = BTreeMap::new();
    for q in crate::record::requests(records) {
        let level = q.traffic.as_ref().map(|t| t.shape.label());
        let e = by.entry((&q.cell, level)).or_insert((0, false, None));
        e.0 += 1;
        match q.waited() {
            true => e.1 = true,
            false => {
                let why = match (q.error_kind, q.error.as_deref()) {
                    (Some(kind), Some(m)) => format!("{kind}: {m}"),
                    (_, m) => m.unwrap_or("no error recorded").to_string(),
                };
                e.2.get_or_insert(crate::report::table::text_cell(&why));
            }
        }
    }
    (by.into_iter())
        .filter(|((key, _), (_, measured, _))| !measured && !died.contains(*key))
        .map(|((key, level), (n, _, first))| {
            let mut cell = match key.backend.is_native() {
                true => format!("{}/{}", crate::models::display_name(&key.model), key.quant),
                false => key.backend.to_string(),
            };
            if let Some(level) = level {
                cell = format!("{cell} {level}");
            }
            (cell, n, first.unwrap_or_default())
        })
        .collect()
}

/// What an interrupted sweep says: what it kept, where, and the command that resumes it.
fn interrupted(plan: &SweepPlan, command: &str) -> ExitCode {
    let n = plan.recorded();
    eprintln!(
        "interrupted: {n} request(s) recorded in {}; resume with: {}",
        plan.shared.results.display(),
        resume_command(command)
    );
    ExitCode::from(EXIT_INTERRUPTED)
}

/// The command line that resumes this run: the same arguments, without `--fresh` (which
/// would start over), each quoted for a POSIX shell where it needs to be.
fn resume_command(command: &str) -> String {
    let mut argv = std::env::args();
    let program = argv.next().unwrap_or_else(|| "runner".into());
    let args: Vec<String> = argv.filter(|a| a != "--fresh").collect();
    let mut words = vec![shell_quote(&program)];
    if !args.iter().any(|a| a == command) {
        words.push(command.to_string());
    }
    words.extend(args.iter().map(|a| shell_quote(a)));
    words.join(" ")
}

/// `s` as one word of a POSIX shell command.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@%+".contains(c));
    match plain {
        true => s.to_string(),
        false => format!("'{}'", s.replace('\'', "'\\''")),
    }
}

/// The sweep's tables (and `-o FILE`), read back from its results file; returns the cells
/// whose every request failed ([`failed_whole`]).
fn print_sweep(out: &Output, plan: &SweepPlan) -> anyhow::Result<Vec<(String, usize, String)>> {
    use crate::report::{compare, sweep as summary};
    let results = &plan.shared.results;
    // Records of other sweeps, a line recorded twice, a load level's incomplete run: left out;
    // so are records holding figures that cannot be true, as `report` and `check` leave them.
    let mut records = plan.own(&crate::record::io::read(results)?).records;
    let mut odd = Vec::new();
    records.retain(|r| match crate::record::plausible::implausible(r) {
        Some(why) => {
            odd.push(why);
            false
        }
        None => true,
    });
    if let Some(first) = odd.first() {
        eprintln!(
            "warning: {}: {} record(s) hold figures that cannot be true ({first}); left out",
            results.display(),
            odd.len()
        );
    }
    let b = &plan.baselines;
    let rows = summary::rows_with(&records, b.judge_power);
    let comparison = compare::build(&records, b.judge_power, b.reference);
    let format = out.format;
    let slo = plan.shared.load.as_ref().and_then(|l| l.slo.as_ref());
    let load = crate::report::load::rows_judged_by(&records, slo);
    let render = |f: Format| -> anyhow::Result<String> {
        let mut text = match load.is_empty() || rows.iter().any(|r| r.requests > 0) {
            true => summary::render(f, &rows)?,
            false => String::new(),
        };
        text.push_str(&compare::render(f, comparison.as_ref())?);
        text.push_str(&crate::report::load::render(f, &load)?);
        Ok(text)
    };
    match &out.file {
        Some(path) => {
            report::write_atomic(path, &render(format)?)?;
            print!("{}", render(Format::Table)?);
        }
        None => print!("{}", render(format)?),
    }
    eprintln!("records: {}", results.display());
    Ok(failed_whole(&records, &plan.failed_cells))
}

/// `runner profile`.
pub fn profile(args: ProfileArgs, cache: &Path, verbose: bool) -> anyhow::Result<ExitCode> {
    let monitor = LoadMonitor::start();
    let (cfg, format) = args.validate(default_threads()).map_err(UsageError)?;
    // Ctrl-C while the plan is made (a `synth:` model being written) or the profile runs
    // stops it (exit 130).
    let mut plan = super::writing(|| ProfilePlan::new(&cfg, cache))?;
    let obs = Progress::new(false, "steps");
    exec::check_idle(&monitor, cfg.busy_threshold, cfg.require_idle, &obs)?;
    let report = crate::plan::profile::run(&mut plan, &obs, &monitor, verbose)?;
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ListFormat::Table => print!("{}", crate::report::profile::render(&report)),
    }
    if report.load.busy {
        obs.warn(&format!(
            "other processes kept {:.2} cores busy on average while profiling; the figures are suspect",
            report.load.during_other_cores_mean
        ));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{failed_whole, shell_quote};
    use crate::measure::FailureKind;
    use crate::record::{BackendId, CellKey, Record, RequestRecord};

    /// A cell fails as one whose every request failed only when none of its requests was a
    /// measurement (one at its time limit is), and not when it failed whole in this run.
    #[test]
    fn a_cell_fails_whole_when_each_request_ended_in_an_error() {
        let line = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let Ok(Record::Request(base)) =
            Record::from_value(serde_json::from_str(line.lines().next().unwrap()).unwrap())
        else {
            panic!("a request record");
        };
        let request = |backend: &str, kind: Option<FailureKind>| {
            let mut q: RequestRecord = (*base).clone();
            q.cell = CellKey::http(&backend.parse::<BackendId>().unwrap());
            q.failed = kind.is_some();
            q.error_kind = kind;
            q.error = kind.map(|k| format!("{k} here"));
            Record::Request(Box::new(q))
        };
        let records = [
            request("openai:down", Some(FailureKind::Refused)),
            request("openai:down", Some(FailureKind::Reset)),
            request("openai:slow", Some(FailureKind::TimeLimit)),
            request("openai:slow", Some(FailureKind::Refused)),
            request("openai:ok", None),
            request("openai:died", Some(FailureKind::Refused)),
        ];
        let died = [CellKey::http(&"openai:died".parse::<BackendId>().unwrap())];
        assert_eq!(
            failed_whole(&records, &died),
            [("openai:down".into(), 2, "refused: refused here".into())]
        );
        // A load level whose every request failed is named with its level, though its
        // cell's other level measured.
        let level = |concurrency: u32, kind: Option<FailureKind>| {
            let Record::Request(mut q) = request("openai:levels", kind) else {
                unreachable!()
            };
            q.traffic = Some(
                serde_json::from_value(serde_json::json!({
                    "shape": "closed", "concurrency": concurrency, "level_requests": 1,
                    "seq": 0, "arrival_ms": 0.0, "queue_ms": 0.0, "concurrent": 0,
                    "level_wall_ms": 5000.0
                }))
                .unwrap(),
            );
            Record::Request(q)
        };
        let levels = [level(1, Some(FailureKind::Reset)), level(2, None)];
        let failed = failed_whole(&levels, &[]);
        assert_eq!(
            failed,
            [("openai:levels c=1".into(), 1, "reset: reset here".into())]
        );
        let all = failed_whole(&records, &[]);
        assert_eq!(
            all.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["openai:died", "openai:down"]
        );
    }

    #[test]
    fn arguments_are_quoted_for_the_shell_when_needed() {
        assert_eq!(shell_quote("--quant"), "--quant");
        assert_eq!(shell_quote("q4_k_m,q8_0"), "q4_k_m,q8_0");
        assert_eq!(shell_quote("/tmp/a b.gguf"), "'/tmp/a b.gguf'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
