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
    let cache = crate::models::cache_dir(cli.cache_dir.as_deref());
    let verbose = cli.verbose;
    match cli.command {
        Command::Bench(args) => measure::bench(*args, &cache, verbose),
        Command::Sweep(args) => measure::sweep(*args, &cache, verbose, "sweep"),
        Command::Compare(args) => {
            if args.baselines.backends.iter().all(|b| b.trim() == "native") {
                return Err(UsageError(
                    "compare needs at least one HTTP backend besides native (--backend native,openai:MODEL)".into(),
                )
                .into());
            }
            measure::sweep(*args, &cache, verbose, "compare")
        }
        Command::Profile(args) => measure::profile(*args, &cache, verbose),
        Command::SweepCell { spec } => {
            crate::plan::sweep::run_child(&spec)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Moe(cmd) => {
            moe::run(cmd, &cache, verbose)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hw(args) => {
            print!("{}", crate::report::hw::run(&args.options(), &cache)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(&args),
        Command::Guide(args) => {
            print!("{}", crate::report::guide::run(&args.options())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            print!("{}", crate::report::html::run(&args.options())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::List { format }) => {
            print!("{}", models::list(&cache, format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Fetch { name, verify }) => {
            println!("{}", models::fetch(&name, verify, &cache)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Synth(args)) => {
            println!("{}", models::synth(&args, &cache)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Twin(args)) => {
            println!("{}", models::twin(&args, &cache)?.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `runner check`: exit 1 on a regression, or write a new baseline.
fn check(args: &crate::cli::CheckArgs) -> anyhow::Result<ExitCode> {
    use crate::report::check;
    let load =
        |p: &std::path::Path| crate::record::read::load(p).map_err(|e| UsageError(e.to_string()));
    let current = load(&args.current)?;
    if current.bench.is_empty() && current.requests.is_empty() {
        return Err(UsageError(format!("{}: no records", args.current.display())).into());
    }
    if args.update_baseline {
        crate::report::write_atomic(&args.baseline, &current.to_jsonl()?)?;
        println!(
            "wrote {} record(s) from {} file(s) to {}",
            current.len(),
            current.files.len(),
            args.baseline.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let baseline = load(&args.baseline)?;
    let opts = check::CheckOptions {
        tolerance: args.tolerance,
        busy_threshold: args.busy_threshold,
    };
    let report = check::check(&baseline, &current, &opts);
    match args.format {
        ListFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ListFormat::Table => print!("{}", check::render(&report)),
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
