//! Dispatch of the parsed command line, and the one place that turns errors into exit codes.

use crate::bench::{self, UsageError};
use crate::cli::{Cli, Command, ListFormat, ModelsCommand};
use crate::models;
use std::process::ExitCode;

/// Exit code for bad input: flags, files, model names.
const EXIT_USAGE: u8 = 2;
/// Exit code for a failure while running (llama.cpp, network, a failed test).
const EXIT_FAILURE: u8 = 1;

/// Prints a clap error as one line (help and version print in full) and picks the exit code.
pub fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let mut first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    // "the following required arguments were not provided:" names them on the next line.
    if let Some(next) = lines.next().filter(|_| first.ends_with(':')) {
        first = format!("{first} {}", next.trim());
    }
    eprintln!("error: {first} (see runner --help)");
    ExitCode::from(EXIT_USAGE)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.downcast_ref::<UsageError>().is_some() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            };
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(code)
        }
    }
}

/// An error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cache = models::cache_dir(cli.cache_dir.as_deref());
    match cli.command {
        Command::Bench(args) => {
            let threads = default_threads();
            let cfg = args.validate(threads).map_err(UsageError)?;
            let outcome = bench::run(&cfg, &cache, cli.verbose)?;
            bench::print(&cfg, &outcome.records)?;
            if outcome.failures > 0 {
                eprintln!("error: {} test(s) failed", outcome.failures);
                return Ok(ExitCode::from(EXIT_FAILURE));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sweep(args) => run_sweep(&args, &cache, cli.verbose),
        Command::Compare(args) => {
            if args.baselines.backends.iter().all(|b| b.trim() == "native") {
                return Err(UsageError(
                    "compare needs at least one HTTP backend besides native (--backend native,openai:MODEL)".into(),
                )
                .into());
            }
            run_sweep(&args, &cache, cli.verbose)
        }
        Command::Hw(args) => {
            print!("{}", crate::hw::show::run(&args, &cache)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(&args),
        Command::Profile(args) => {
            let cfg = args.validate(default_threads()).map_err(UsageError)?;
            let report = crate::profile::run(&cfg, &cache, cli.verbose)?;
            crate::profile::print(&cfg, &report)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Moe(cmd) => {
            crate::moe::run(cmd, &cache, cli.verbose, default_threads())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Guide(args) => {
            print!("{}", crate::report::guide::run(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            print!("{}", crate::report::html::run(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::SweepCell { spec } => {
            crate::sweep::cell::run(&spec)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::List { format }) => {
            print!("{}", models_list(&cache, format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(ModelsCommand::Fetch { name, verify }) => {
            let model = models::find(&name).ok_or_else(|| {
                let known = models::known_names();
                UsageError(models::ResolveError::Unknown { name, known }.to_string())
            })?;
            let opts = models::FetchOptions {
                verify,
                ..Default::default()
            };
            let path = models::fetch(model, &cache, &opts)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `runner check`: exit 1 on a regression, or write a new baseline.
fn check(args: &crate::cli::CheckArgs) -> anyhow::Result<ExitCode> {
    use crate::report::{check, records};
    let load = |p: &std::path::Path| records::load(p).map_err(|e| UsageError(e.to_string()));
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

/// Runs a sweep (or a comparison), prints its tables and picks the exit code.
fn run_sweep(
    args: &crate::cli::SweepArgs,
    cache: &std::path::Path,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let outcome = crate::sweep::run(args, cache, verbose, default_threads())?;
    crate::sweep::print(args, &outcome)?;
    if outcome.failed_cells > 0 {
        eprintln!("error: {} cell(s) failed", outcome.failed_cells);
        return Ok(ExitCode::from(EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// Threads llama-bench would use by default: the physical cores.
fn default_threads() -> u32 {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let physical = sysinfo::System::physical_core_count().unwrap_or(logical);
    u32::try_from(physical.clamp(1, logical)).unwrap_or(1)
}

fn models_list(cache: &std::path::Path, format: ListFormat) -> anyhow::Result<String> {
    let rows: Vec<serde_json::Value> = models::known_models()
        .iter()
        .map(|m| {
            let path = models::cached_path(m, cache);
            serde_json::json!({
                "name": m.name,
                "model": m.display,
                "arch": m.arch,
                "params": m.params,
                "type": m.file_type,
                "size_mib": m.size_mib,
                "default": m.name == models::DEFAULT_MODEL,
                "cached": path.is_file(),
                "path": path.display().to_string(),
            })
        })
        .collect();
    if format == ListFormat::Json {
        return Ok(serde_json::to_string_pretty(&rows)? + "\n");
    }
    let mut out = format!(
        "{:<20} {:<30} {:<7} {:<7} {:<7} {:>8}  {}\n",
        "name", "model", "arch", "params", "type", "size MiB", "cached"
    );
    for (m, r) in models::known_models().iter().zip(&rows) {
        let cached = if r["cached"] == true { "yes" } else { "no" };
        let name = if m.name == models::DEFAULT_MODEL {
            format!("{} *", m.name)
        } else {
            m.name.to_string()
        };
        out.push_str(&format!(
            "{:<20} {:<30} {:<7} {:<7} {:<7} {:>8}  {}\n",
            name, m.display, m.arch, m.params, m.file_type, m.size_mib, cached
        ));
    }
    out.push_str(&format!(
        "\n* default model; cache: {}\n",
        cache.join("models").display()
    ));
    Ok(out)
}
