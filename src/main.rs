//! runner: parse → run → exit code.

use clap::Parser;
use runner::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return runner::app::usage_error(&e),
    };
    runner::app::run(cli)
}
