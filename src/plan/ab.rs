//! `runner check --ab`: two builds of runner measured side by side on this machine. Each round
//! runs `BASE bench ...` and `CANDIDATE bench ...` one after the other, each writing its records
//! to the output directory; the side that goes first alternates from round to round, so that a
//! drift of the machine (heat, other load) falls on both. A round where either side failed is
//! dropped whole, so the rounds that remain stay paired; the comparison itself is the report's.

use crate::exec::child;
use crate::exec::ExecError;
use crate::record::Records;
use crate::util::Invalid;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Fewest paired rounds a verdict rests on; fewer rounds is bad input, fewer left after
/// dropping failed ones ends the check without a verdict.
pub const MIN_ROUNDS: usize = 2;

/// What to run.
#[derive(Debug, Clone)]
pub struct AbOptions {
    /// The two runner binaries.
    pub base: PathBuf,
    pub candidate: PathBuf,
    pub rounds: u32,
    /// Where each side's records and output go.
    pub out: PathBuf,
    /// `runner bench` arguments of both sides.
    pub bench_args: Vec<String>,
    /// More bench arguments for one side only (to compare settings with one binary).
    pub base_args: Vec<String>,
    pub candidate_args: Vec<String>,
}

crate::util::names::named_enum! {
    /// One side of the comparison.
    pub enum Side {
        Base = "base",
        Candidate = "candidate",
    }
}

/// What one round gave: each side's records, or why it has none.
#[derive(Debug)]
pub struct RoundOutcome {
    /// From 1.
    pub round: u32,
    pub base: Result<Records, String>,
    pub candidate: Result<Records, String>,
}

impl RoundOutcome {
    /// Whether a side exited 2, runner's answer to bad input: its arguments fail every round.
    pub fn refused(&self) -> bool {
        [&self.base, &self.candidate]
            .iter()
            .any(|r| r.as_ref().is_err_and(|why| why.starts_with("exited 2 ")))
    }
}

/// A round both sides completed.
#[derive(Debug)]
pub struct PairedRound {
    pub round: u32,
    pub base: Records,
    pub candidate: Records,
}

/// The rounds kept, and a line for each dropped one.
#[derive(Debug, Default)]
pub struct AbRun {
    pub kept: Vec<PairedRound>,
    pub dropped: Vec<String>,
}

/// Keeps the rounds both sides completed, in order; a round with a failed side is dropped
/// whole (`round 3 dropped: candidate exited 101`), so no base run is ever set against another
/// round's candidate.
pub fn pair(outcomes: Vec<RoundOutcome>) -> AbRun {
    let mut run = AbRun::default();
    for o in outcomes {
        match (o.base, o.candidate) {
            (Ok(base), Ok(candidate)) => run.kept.push(PairedRound {
                round: o.round,
                base,
                candidate,
            }),
            (b, c) => {
                let why: Vec<String> = [(Side::Base, b.err()), (Side::Candidate, c.err())]
                    .into_iter()
                    .filter_map(|(side, e)| Some(format!("{} {}", side.as_str(), e?)))
                    .collect();
                run.dropped
                    .push(format!("round {} dropped: {}", o.round, why.join("; ")));
            }
        }
    }
    run
}

/// Which side runs first in `round` (from 1): the base in odd rounds, the candidate in even.
pub fn order(round: u32) -> [Side; 2] {
    match round % 2 {
        1 => [Side::Base, Side::Candidate],
        _ => [Side::Candidate, Side::Base],
    }
}

/// Checks the options before anything runs: both binaries executable, no bench flag that
/// would take the records elsewhere (the flags refuse fewer than [`MIN_ROUNDS`] rounds), and
/// an output directory new or empty, so that no earlier check's rounds are replaced or read.
pub fn validate(opts: &mut AbOptions) -> Result<(), Invalid> {
    opts.base = executable(&opts.base)?;
    opts.candidate = executable(&opts.candidate)?;
    if std::fs::read_dir(&opts.out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Invalid(format!(
            "--out {}: not empty; the A/B check writes its rounds into a new or empty directory",
            opts.out.display()
        )));
    }
    let all = opts
        .bench_args
        .iter()
        .chain(&opts.base_args)
        .chain(&opts.candidate_args);
    for a in all {
        let flag = a.split('=').next().unwrap_or(a);
        if ["-o", "--output", "--format"].contains(&flag) || a.starts_with("-o") && a.len() > 2 {
            return Err(Invalid(format!(
                "the A/B check writes each side's records itself (--out DIR): leave {flag} out of the bench arguments"
            )));
        }
    }
    Ok(())
}

/// The path of an executable file: as given when it names one, else looked up on `PATH` when
/// it is a bare name.
fn executable(p: &Path) -> Result<PathBuf, Invalid> {
    let bare = p.components().count() == 1 && !p.as_os_str().is_empty();
    let found = match p.is_file() || !bare {
        true => Some(p.to_path_buf()),
        false => std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(p))
                .find(|c| c.is_file())
        }),
    };
    let Some(path) = found.filter(|f| f.is_file()) else {
        return Err(Invalid(format!("{}: no such runner binary", p.display())));
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
        if mode & 0o111 == 0 {
            return Err(Invalid(format!("{}: not executable", p.display())));
        }
    }
    Ok(path)
}

/// Runs the rounds; `note` hears one line per side and round. Stops (with what it has written
/// kept in the directory) when the user interrupts, or after a round where a side refused its
/// arguments.
pub fn run(opts: &AbOptions, note: &dyn Fn(&str)) -> Result<Vec<RoundOutcome>, ExecError> {
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| ExecError::Sink(format!("cannot create {}: {e}", opts.out.display())))?;
    let mut outcomes = Vec::new();
    for round in 1..=opts.rounds {
        let (mut base, mut candidate) = (Err(String::new()), Err(String::new()));
        for side in order(round) {
            let started = Instant::now();
            let got = run_side(opts, round, side);
            if crate::util::interrupt::requested() {
                return Err(ExecError::Interrupted);
            }
            note(&format!(
                "round {round}/{} {}: {} ({:.1} s)",
                opts.rounds,
                side.as_str(),
                got.as_ref().err().map_or("ok", String::as_str),
                started.elapsed().as_secs_f64()
            ));
            match side {
                Side::Base => base = got,
                Side::Candidate => candidate = got,
            }
        }
        let outcome = RoundOutcome {
            round,
            base,
            candidate,
        };
        let refused = outcome.refused();
        outcomes.push(outcome);
        if refused && round < opts.rounds {
            note("a side refused its arguments (exit 2): the remaining rounds are not run");
            break;
        }
    }
    Ok(outcomes)
}

/// The line a check starts with: the rounds, the bench command both sides run, and where the
/// records go.
pub fn banner(opts: &AbOptions) -> String {
    let bench: Vec<&str> = std::iter::once("bench")
        .chain(opts.bench_args.iter().map(String::as_str))
        .collect();
    format!(
        "A/B check: {} rounds of `{}`, records in {}",
        opts.rounds,
        bench.join(" "),
        opts.out.display()
    )
}

/// The records file of a side in a round, named by the first four letters of the side's name:
/// `round3-base.json`, `round3-cand.json`.
pub fn records_path(out: &Path, round: u32, side: Side) -> PathBuf {
    out.join(format!("round{round}-{}.json", &side.as_str()[..4]))
}

/// Runs one side of one round: its records, or why it has none.
fn run_side(opts: &AbOptions, round: u32, side: Side) -> Result<Records, String> {
    let (bin, extra) = match side {
        Side::Base => (&opts.base, &opts.base_args),
        Side::Candidate => (&opts.candidate, &opts.candidate_args),
    };
    let path = records_path(&opts.out, round, side);
    let log = path.with_extension("log");
    // A file left by an earlier run into the same directory must not pass for this round's.
    for p in [&path, &log] {
        let _ = std::fs::remove_file(p);
    }
    let mut args = vec!["bench".to_string()];
    args.extend(opts.bench_args.iter().chain(extra).cloned());
    if !args.iter().any(|a| a == "--no-progress") {
        args.push("--no-progress".into());
    }
    args.extend(["-o".to_string(), path.display().to_string()]);
    let log_name = log.file_name().map(|n| n.to_string_lossy().into_owned());
    let see = format!("(see {})", log_name.unwrap_or_default());
    if let Err(why) = child::run_logged(bin, &args, &log)? {
        return Err(format!("{why} {see}"));
    }
    let records =
        crate::record::read::load(&path).map_err(|_| format!("wrote no records {see}"))?;
    // A build that writes figures that cannot be true is broken: its round is not compared on
    // the records that remain.
    if records.implausible > 0 {
        let why = records
            .implausible_why
            .as_deref()
            .unwrap_or("figures out of range");
        return Err(format!(
            "wrote {} record(s) whose figures cannot be true ({why}) {see}",
            records.implausible
        ));
    }
    match (records.bench.is_empty(), records.unreadable) {
        (false, 0) => Ok(records),
        (true, 0) => Err(format!("wrote no records {see}")),
        _ => Err(format!("wrote unreadable records {see}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(round: u32, base: Result<(), &str>, cand: Result<(), &str>) -> RoundOutcome {
        let records = |r: Result<(), &str>| r.map(|()| Records::default()).map_err(String::from);
        RoundOutcome {
            round,
            base: records(base),
            candidate: records(cand),
        }
    }

    #[test]
    fn a_failed_side_drops_its_round_and_the_others_stay_paired() {
        let run = pair(vec![
            outcome(1, Ok(()), Ok(())),
            outcome(2, Ok(()), Err("exited 101")),
            outcome(3, Ok(()), Ok(())),
            outcome(4, Err("ended by SIGSEGV: crashed"), Err("wrote no records")),
        ]);
        let kept: Vec<u32> = run.kept.iter().map(|r| r.round).collect();
        assert_eq!(kept, [1, 3]);
        assert_eq!(
            run.dropped,
            [
                "round 2 dropped: candidate exited 101",
                "round 4 dropped: base ended by SIGSEGV: crashed; candidate wrote no records",
            ]
        );
    }

    #[test]
    fn a_side_that_exited_2_refused_its_arguments() {
        assert!(outcome(1, Ok(()), Err("exited 2 (see round1-cand.log)")).refused());
        assert!(!outcome(1, Err("exited 1 (see round1-base.log)"), Ok(())).refused());
        assert!(!outcome(1, Err("exited 101 (see x)"), Err("wrote no records")).refused());
    }

    #[test]
    fn the_banner_names_the_bench_command_without_a_trailing_space() {
        let opts = |bench: &[&str]| AbOptions {
            base: PathBuf::from("a"),
            candidate: PathBuf::from("b"),
            rounds: 3,
            out: PathBuf::from("out"),
            bench_args: bench.iter().map(|s| s.to_string()).collect(),
            base_args: Vec::new(),
            candidate_args: Vec::new(),
        };
        assert_eq!(
            banner(&opts(&[])),
            "A/B check: 3 rounds of `bench`, records in out"
        );
        assert_eq!(
            banner(&opts(&["-m", "x.gguf", "-p", "16"])),
            "A/B check: 3 rounds of `bench -m x.gguf -p 16`, records in out"
        );
    }

    #[test]
    fn the_first_side_alternates() {
        assert_eq!(order(1), [Side::Base, Side::Candidate]);
        assert_eq!(order(2), [Side::Candidate, Side::Base]);
        assert_eq!(order(3), order(1));
    }

    #[test]
    fn bad_options_are_refused() {
        let me = std::env::current_exe().unwrap();
        let opts = |rounds, bench: &[&str]| AbOptions {
            base: me.clone(),
            candidate: me.clone(),
            rounds,
            out: PathBuf::from("unused"),
            bench_args: bench.iter().map(|s| s.to_string()).collect(),
            base_args: Vec::new(),
            candidate_args: Vec::new(),
        };
        assert!(validate(&mut opts(2, &["-p", "16"])).is_ok());
        for (mut o, needle) in [
            (opts(3, &["-o", "x.json"]), "leave -o out"),
            (opts(3, &["--output=x.json"]), "leave --output out"),
            (opts(3, &["-ox.json"]), "leave -ox.json out"),
            (opts(3, &["--format", "csv"]), "leave --format out"),
        ] {
            let e = validate(&mut o).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let mut o = opts(3, &[]);
        o.candidate = PathBuf::from("/no/such/runner");
        let e = validate(&mut o).unwrap_err().to_string();
        assert_eq!(e, "/no/such/runner: no such runner binary");
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("runner");
        std::fs::write(&plain, "").unwrap();
        o.candidate = plain;
        assert!(validate(&mut o)
            .unwrap_err()
            .to_string()
            .contains("not executable"));
        // An earlier check's directory is neither replaced nor read.
        let mut o = opts(3, &[]);
        o.out = dir.path().to_path_buf();
        let e = validate(&mut o).unwrap_err().to_string();
        assert!(
            e.ends_with("not empty; the A/B check writes its rounds into a new or empty directory"),
            "{e}"
        );
        o.out = dir.path().join("new");
        assert!(validate(&mut o).is_ok());
        std::fs::create_dir(&o.out).unwrap();
        assert!(validate(&mut o).is_ok());
    }
}
