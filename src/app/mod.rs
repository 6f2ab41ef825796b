//! The application: parses the command line, runs the command, turns its outcome into an exit
//! code. `main` only calls [`main`].

mod error;
mod measure;
mod models;
mod moe;

use crate::cli::{Cli, Command, ListFormat, ModelsCommand};
use error::{code, one_line, EXIT_FAILURE};
pub use error::{usage_error, UsageError};
use std::process::ExitCode;

/// Parses the arguments, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    use clap::Parser;
    crate::engine::process::close_inherited_on_exec();
    match Cli::try_parse() {
        Ok(cli) => run(cli),
        Err(e) => usage_error(&e),
    }
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
    if let Some(dir) = &cli.cache_dir {
        crate::cli::values::check_dir("--cache-dir", dir).map_err(UsageError)?;
    }
    let cache = crate::models::cache_dir(cli.cache_dir.as_deref());
    let verbose = cli.verbose;
    match cli.command {
        Command::Bench(args) => return measure::bench(*args, &cache, verbose),
        Command::Sweep(args) => return measure::sweep(*args, &cache, verbose, "sweep"),
        Command::Compare(args) => {
            if args.baselines.backends.iter().all(|b| b.trim() == "native") {
                return Err(UsageError(
                    "compare needs at least one HTTP backend besides native (--backend native,openai:MODEL)".into(),
                )
                .into());
            }
            return measure::sweep(*args, &cache, verbose, "compare");
        }
        Command::Profile(args) => return measure::profile(*args, &cache, verbose),
        Command::Check(args) => return check(&args, cli.cache_dir.as_deref()),
        Command::SweepCell { spec } => return crate::plan::sweep::run_child(&spec),
        Command::Moe(cmd) => writing(|| moe::run(cmd, &cache, verbose))?,
        Command::Hw(args) => print!("{}", crate::report::hw::run(&args.options(), &cache)?),
        Command::Guide(args) => print!("{}", crate::report::guide::run(&args.options())?),
        Command::Report(args) => print!("{}", crate::report::html::run(&args.options())?),
        Command::Models(ModelsCommand::List { format }) => {
            print!("{}", models::list(&cache, format)?)
        }
        Command::Models(ModelsCommand::Fetch { name, verify }) => {
            println!("{}", models::fetch(&name, verify, &cache)?.display())
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

/// Runs a command that writes a model: one the user interrupted (its partial file removed)
/// exits as interrupted, whatever step it was at.
fn writing<T>(command: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    crate::exec::signals::install();
    command().map_err(|e| match crate::util::interrupt::requested() {
        true => crate::exec::ExecError::Interrupted.into(),
        false => e,
    })
}

/// `runner check`: exit 1 on a regression, or write a new baseline.
fn check(
    args: &crate::cli::CheckArgs,
    cache_dir: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use crate::report::check;
    crate::cli::values::check_busy_threshold(args.busy_threshold).map_err(UsageError)?;
    if let Some(out) = &args.out {
        crate::cli::values::check_dir("--out", out).map_err(UsageError)?;
    }
    let check_opts = check::CheckOptions {
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
        return Err(UsageError("check needs --baseline FILE or --ab BASE CANDIDATE".into()).into());
    };
    // Records to compare: a file without any (empty, truncated, not records) is bad input.
    let load = |p: &std::path::Path| {
        let r = crate::record::read::load(p).map_err(|e| UsageError(e.to_string()))?;
        match r.bench.is_empty() && r.requests.is_empty() {
            true => Err(UsageError(format!("{}: no records", p.display()))),
            false => {
                r.warn_unreadable(p);
                Ok(r)
            }
        }
    };
    // A sweep's results file is the sweep's to write: records of other runs would join its own.
    if args.update_baseline && crate::record::io::is_sweep_results(baseline_path) {
        return Err(UsageError(format!(
            "{}: is a sweep's results file; write the baseline to another file",
            baseline_path.display()
        ))
        .into());
    }
    let current = load(&args.current)?;
    if args.update_baseline {
        crate::report::write_atomic(baseline_path, &current.to_jsonl()?)?;
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

/// `runner check --ab`: both builds run round by round, then compared round by round.
fn check_ab(
    args: &crate::cli::CheckArgs,
    mut opts: crate::plan::ab::AbOptions,
    check_opts: &crate::report::check::CheckOptions,
) -> anyhow::Result<ExitCode> {
    use crate::plan::ab;
    ab::validate(&mut opts)?;
    crate::exec::signals::install();
    eprintln!(
        "A/B check: {} rounds of `bench {}`, records in {}",
        opts.rounds,
        opts.bench_args.join(" "),
        opts.out.display()
    );
    let run = ab::pair(ab::run(&opts, &|line| eprintln!("{line}"))?);
    for d in &run.dropped {
        eprintln!("{d}");
    }
    if run.kept.len() < ab::MIN_ROUNDS {
        return Err(UsageError(format!(
            "only {} of {} rounds completed on both sides, at least {} are needed (logs in {})",
            run.kept.len(),
            opts.rounds,
            ab::MIN_ROUNDS,
            opts.out.display()
        ))
        .into());
    }
    let report = crate::report::check::check_ab(&opts, &run, check_opts);
    verdict(args, &report, Some(&opts.out))
}

/// Prints the check (and saves it in `save_in`); exit 1 on a significant slowdown.
fn verdict(
    args: &crate::cli::CheckArgs,
    report: &crate::report::check::CheckReport,
    save_in: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use crate::report::check;
    let (text, name) = match args.format {
        ListFormat::Json => (serde_json::to_string_pretty(report)? + "\n", "check.json"),
        ListFormat::Table => (check::render(report), "check.txt"),
    };
    print!("{text}");
    if let Some(dir) = save_in {
        crate::report::write_atomic(&dir.join(name), &text)?;
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
