//! The application: parses the command line, runs the command, turns its outcome into an exit
//! code. `main` only calls [`main`].

mod error;
mod measure;
mod models;
mod moe;

use crate::cli::values::check_output_writable;
use crate::cli::{CheckArgs, Cli, Command, ListFormat, ModelsCommand};
use crate::plan::ab::{self, AbOptions};
use crate::report::check::{self, CheckOptions, CheckReport};
use error::{code, one_line, EXIT_FAILURE};
pub use error::{usage_error, UsageError};
use std::path::Path;
use std::process::ExitCode;

/// Parses the arguments, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    use clap::Parser;
    crate::engine::process::close_inherited_on_exec();
    output_failures_end_quietly();
    match Cli::try_parse() {
        Ok(cli) => run(cli),
        Err(e) => usage_error(&e),
    }
}

/// A write to standard output or error that fails (a pipe closed early, as `| head` does, or
/// a full disk) ends runner with one line on stderr, where it can, and exit code 1, not a
/// panic's report; other panics keep Rust's own.
fn output_failures_end_quietly() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: cannot write the output: {why}");
            std::process::exit(1);
        }
        if msg.starts_with("failed printing to stderr") {
            std::process::exit(1);
        }
        default(info)
    }));
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(code(&e))
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cache = crate::models::cache_dir(cli.cache_dir.as_deref());
    let from_env =
        cli.cache_dir.is_none() && std::env::var_os(crate::util::fs::CACHE_ENV).is_some();
    let flag = match from_env {
        true => crate::util::fs::CACHE_ENV,
        false => "--cache-dir",
    };
    // A cache behind a link that leads nowhere yet (a disk not mounted) stops only the commands
    // that use it, when they make it.
    let unmounted = crate::util::fs::nearest_dir(&cache)
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if !unmounted {
        crate::cli::values::check_dir(flag, &cache).map_err(UsageError)?;
    }
    let verbose = cli.verbose;
    match cli.command {
        Command::Bench(args) => return measure::bench(*args, &cache, verbose),
        Command::Sweep(args) => return measure::sweep(*args, &cache, verbose, "sweep"),
        Command::Compare(args) => {
            if args.baselines.backends.iter().all(|b| b.trim() == "native") {
                anyhow::bail!(UsageError(
                    "compare needs at least one HTTP backend besides native (--backend native,openai:MODEL)".into(),
                ));
            }
            return measure::sweep(*args, &cache, verbose, "compare");
        }
        Command::Profile(args) => return measure::profile(*args, &cache, verbose),
        Command::Check(args) => return check(&args, cli.cache_dir.as_deref()),
        Command::SweepCell { spec } => return crate::plan::sweep::run_child(&spec),
        Command::Moe(cmd) => writing(|| moe::run(cmd, &cache, verbose))?,
        Command::Hw(args) => {
            let options = args.options().map_err(UsageError)?;
            print!("{}", crate::report::hw::run(&options, &cache)?)
        }
        Command::Guide(args) => {
            check_output_writable(args.output.as_deref()).map_err(UsageError)?;
            print!("{}", crate::report::guide::run(&args.options())?)
        }
        Command::Report(args) => {
            check_output_writable(args.output.as_deref()).map_err(UsageError)?;
            print!(
                "{}",
                crate::report::html::run(&args.results, args.output.as_deref())?
            )
        }
        Command::Models(ModelsCommand::List { format }) => {
            print!("{}", models::list(&cache, format)?)
        }
        Command::Models(ModelsCommand::Fetch { name, verify }) => {
            println!(
                "{}",
                writing(|| models::fetch(&name, verify, &cache))?.display()
            )
        }
        Command::Models(ModelsCommand::Synth(args)) => {
            println!("{}", writing(|| models::synth(&args, &cache))?.display())
        }
        Command::Models(ModelsCommand::Twin(args)) => {
            println!("{}", writing(|| models::twin(&args, &cache))?.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a command (or the making of a measuring command's plan) that may write a model, with
/// the Ctrl-C handler installed first: one the user interrupted (its partial file or working
/// directory removed) exits as interrupted, whatever step it was at.
fn writing<T>(command: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    crate::exec::signals::install();
    command().map_err(|e| match crate::util::interrupt::requested() {
        true => crate::exec::ExecError::Interrupted.into(),
        false => e,
    })
}

/// `runner check`: exit 1 on a regression, or write a new baseline.
fn check(args: &CheckArgs, cache_dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    crate::cli::values::check_busy_threshold(args.busy_threshold).map_err(UsageError)?;
    if let Some(out) = &args.out {
        crate::cli::values::check_dir("--out", out).map_err(UsageError)?;
    }
    let check_opts = CheckOptions {
        tolerance: args.tolerance,
        busy_threshold: args.busy_threshold,
    };
    if let Some(mut opts) = args.ab_options(&crate::util::time::now_compact()) {
        // The children cache models where this runner was told to.
        if let Some(dir) = cache_dir {
            let dir = dir.display().to_string();
            opts.bench_args
                .splice(0..0, ["--cache-dir".to_string(), dir]);
        }
        return check_ab(args, opts, &check_opts);
    }
    let Some(baseline_path) = &args.baseline else {
        anyhow::bail!(UsageError(
            "check needs --baseline FILE or --ab BASE CANDIDATE".into()
        ));
    };
    // Records to compare: a file without any (empty, truncated, not records) is bad input.
    let load = |p: &Path| {
        let r = crate::record::read::load(p).map_err(|e| UsageError(e.to_string()))?;
        match r.bench.is_empty() && r.requests.is_empty() {
            true => Err(UsageError(format!("{}: no records", p.display()))),
            false => {
                r.warn_unreadable(p);
                Ok(r)
            }
        }
    };
    baseline_apart(baseline_path, &args.current, args.update_baseline).map_err(UsageError)?;
    let current = load(&args.current)?;
    if args.update_baseline {
        let failed = check::all_failed(&current);
        if let Some(first) = failed.first() {
            anyhow::bail!(
                "{} series of the current records measured nothing (the first: {}): not \
                 written as a baseline",
                failed.len(),
                crate::report::table::text_cell(first)
            );
        }
        crate::report::write_atomic(baseline_path, &current.to_jsonl()?)?;
        let busy = current.busy_count(args.busy_threshold);
        if busy > 0 {
            eprintln!(
                "warning: {busy} of the records written were measured on a busy machine: \
                 slowdowns measured against them will look smaller than they are"
            );
        }
        println!(
            "wrote {} record(s) from {} file(s) to {}",
            current.len(),
            current.files.len(),
            baseline_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let baseline = load(baseline_path)?;
    let report = check::check(&baseline, &current, &check_opts);
    verdict(args, &report, None)
}

/// The baseline must stand apart from the current records: not in a `--current` directory (its
/// records would count as current ones), and one to be replaced not the `--current` file
/// itself (it would be rewritten from what of it this runner reads). One to be replaced
/// (`update`) must be a baseline this runner reads whole, or not there yet: not a sweep's
/// results file (records of other runs would join its own), not a file of another kind, and
/// without lines this runner does not read or other JSON (rewriting would lose them).
fn baseline_apart(baseline: &Path, current: &Path, update: bool) -> Result<(), String> {
    let b = baseline.display();
    if baseline.is_dir() {
        return Err(format!(
            "{b}: is a directory; --baseline takes one records file"
        ));
    }
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    if let (Some(base), Some(cur)) = (real(baseline), real(current)) {
        if base.starts_with(&cur) && (update || base != cur) {
            return Err(format!(
                "{b}: is among the --current records ({}); keep the baseline apart from them",
                current.display()
            ));
        }
    }
    if !update {
        return Ok(());
    }
    crate::util::fs::check_writable(baseline)
        .map_err(|e| format!("--baseline {b}: cannot be written: {e}"))?;
    if !baseline.exists() {
        return Ok(());
    }
    let refused = |why: &str| Err(format!("{b}: {why}; write the baseline to another file"));
    if crate::record::io::is_sweep_results(baseline) {
        return refused("is a sweep's results file");
    }
    if !crate::record::read::holds_records(baseline) {
        return refused("is not a records file");
    }
    let old = crate::record::read::load(baseline).map_err(|e| e.to_string())?;
    match old.unreadable + old.implausible + old.other {
        0 => Ok(()),
        n => refused(&format!(
            "holds {n} line(s) this runner does not read, which replacing it would lose"
        )),
    }
}

/// `runner check --ab`: both builds run round by round, then compared round by round.
fn check_ab(
    args: &CheckArgs,
    mut opts: AbOptions,
    check_opts: &CheckOptions,
) -> anyhow::Result<ExitCode> {
    ab::validate(&mut opts)?;
    crate::exec::signals::install();
    eprintln!("{}", ab::banner(&opts));
    let outcomes = ab::run(&opts, &|line| eprintln!("{line}"))?;
    // A side that refused its arguments (exit 2) was given bad input; any other failed round
    // is a failure while running.
    let refused = outcomes.iter().any(ab::RoundOutcome::refused);
    let run = ab::pair(outcomes);
    for d in &run.dropped {
        eprintln!("{d}");
    }
    if run.kept.len() < ab::MIN_ROUNDS {
        let why = format!(
            "only {} of {} rounds completed on both sides, at least {} are needed (logs in {})",
            run.kept.len(),
            opts.rounds,
            ab::MIN_ROUNDS,
            opts.out.display()
        );
        if refused {
            anyhow::bail!(UsageError(why));
        }
        anyhow::bail!(why);
    }
    let report = check::check_ab(&opts, &run, check_opts);
    verdict(args, &report, Some(&opts.out))
}

/// Prints the check (and saves it in `save_in`); exit 1 on a significant slowdown.
fn verdict(
    args: &CheckArgs,
    report: &CheckReport,
    save_in: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let (text, name) = match args.format {
        ListFormat::Json => (serde_json::to_string_pretty(report)? + "\n", "check.json"),
        ListFormat::Table => (check::render(report), "check.txt"),
    };
    print!("{text}");
    if let Some(dir) = save_in {
        crate::report::write_atomic(&dir.join(name), &text)?;
    }
    if !report.all_failed.is_empty() {
        eprintln!(
            "error: {} current series measured nothing (every request failed, or no samples)",
            report.all_failed.len()
        );
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    if let Some(why) = report.nothing_compared() {
        eprintln!("error: nothing compared: {why}; --update-baseline writes a new baseline");
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    if report.regressed() {
        eprintln!(
            "error: {} series slower beyond the {:.1}% tolerance",
            report.count(crate::measure::compare::Verdict::Slower),
            args.tolerance * 100.0
        );
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}
