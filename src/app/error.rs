//! The one place errors become exit codes: bad input (a flag, a file, a name) exits 2 with one
//! line; a failure while running exits 1; an interrupted run exits 130.

use crate::exec::ExecError;
use std::process::ExitCode;

/// Exit code for bad input: flags, files, model names.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failure while running (llama.cpp, network, a failed test).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a run the user interrupted (128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Bad input from the user, found at the command line's edge.
pub use crate::util::Invalid as UsageError;

/// Whether an error (or one of its causes) is bad input rather than a failure while running.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<crate::util::Invalid>()
            || c.is::<crate::scenario::ScenarioError>()
            || c.downcast_ref::<crate::models::ResolveError>()
                .is_some_and(|r| matches!(r, crate::models::ResolveError::Unknown { .. }))
            || c.downcast_ref::<crate::moe::UpcycleError>()
                .is_some_and(crate::moe::UpcycleError::is_usage)
            || c.downcast_ref::<crate::engine::synth::SynthError>()
                .is_some_and(crate::engine::synth::SynthError::is_usage)
            || matches!(c.downcast_ref::<ExecError>(), Some(ExecError::Refused(_)))
    })
}

/// The exit code of an error.
pub fn code(e: &anyhow::Error) -> u8 {
    if matches!(e.downcast_ref::<ExecError>(), Some(ExecError::Interrupted)) {
        EXIT_INTERRUPTED
    } else if is_usage(e) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    // Each cause once: an error that already writes its cause into its own message (an I/O
    // error's text after the path) is not followed by that cause again.
    let mut line = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line.replace('\n', " ")
}

/// Prints a clap error as one line (help and version print in full) and picks the exit code.
pub fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let shown = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Some(ExitCode::SUCCESS),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => Some(ExitCode::from(EXIT_USAGE)),
        _ => None,
    };
    if let Some(code) = shown {
        let _ = e.print();
        return code;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_exits_2_failures_1_interruptions_130() {
        let usage = anyhow::Error::new(crate::util::Invalid("bad".into()));
        assert_eq!(code(&usage), EXIT_USAGE);
        let wrapped = usage.context("reading the flags");
        assert_eq!(code(&wrapped), EXIT_USAGE, "a cause counts");
        assert_eq!(code(&anyhow::anyhow!("llama.cpp failed")), EXIT_FAILURE);
        assert_eq!(code(&ExecError::Interrupted.into()), EXIT_INTERRUPTED);
        assert_eq!(code(&ExecError::Busy("busy".into()).into()), EXIT_FAILURE);
        assert_eq!(one_line(&anyhow::anyhow!("a\nb")), "a b");
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = || std::io::Error::from(std::io::ErrorKind::IsADirectory);
        let write = crate::util::fs::WriteError {
            path: "out.html".into(),
            source: io(),
        };
        let text = one_line(&write.into());
        assert_eq!(text.matches(&io().to_string()).count(), 1, "{text}");
        let e = anyhow::Error::new(io()).context("reading the records");
        assert_eq!(one_line(&e), format!("reading the records: {}", io()));
    }
}
