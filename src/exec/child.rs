//! Cells in child processes. The parent runs `runner <args>` for the cell and relays what the
//! child reports (one JSON event per line on its stdout) to its own observer; the child runs the
//! cell through the same loop, writes its records itself, and reports through an [`Emitter`].
//! An abort or out-of-memory in llama.cpp ends the child only: the parent learns why from its
//! exit status and last line of stderr (after an abort, llama.cpp's own message, not the
//! backtrace that follows it).

use super::observer::Observer;
use crate::backend::CellError;
use crate::hw::load::LoadMonitor;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};

/// What a child reports to its parent; `SinkFailed`: the child could not write its records (a
/// full disk), and the whole run stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Phase { phase: String },
    Request { ok: bool },
    Warn { msg: String },
    SinkFailed { msg: String },
}

/// Tells a cell's child process which process started it (see [`die_with_parent`]).
const PARENT_ENV: &str = "RUNNER_CELL_PARENT";

/// The running child cell, so that an interrupt can stop it.
static RUNNING: Mutex<Option<Child>> = Mutex::new(None);

/// The running child, whatever a panic elsewhere left behind.
fn running() -> std::sync::MutexGuard<'static, Option<Child>> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops the running child cell, if any (the parent was interrupted).
pub fn stop_running() {
    if let Some(child) = running().as_mut() {
        let _ = child.kill();
    }
}

/// Makes `child` the running child, stopped at once when the run was interrupted meanwhile.
fn hold(child: Child) {
    *running() = Some(child);
    if crate::util::interrupt::requested() {
        stop_running();
    }
}

/// Runs a cell as `runner <args>`; `Err` holds why it failed ([`CellError::Sink`] when the
/// child could not write its records). The child's CPU time is the
/// run's own on `monitor` while it runs (the child records its own requests; the parent's
/// later requests must not take it for another process's load).
pub fn run(args: &[String], obs: &dyn Observer, monitor: &LoadMonitor) -> Result<(), CellError> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find runner's own binary: {e}"))?;
    let mut child = Command::new(exe)
        .args(args)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the cell process: {e}"))?;
    monitor.count_as_own(vec![child.id()]);
    let (stdout, stderr) = (lines(child.stdout.take()), child.stderr.take());
    hold(child);
    // The child's stderr is shown as it comes; its last words say why it failed, if it did.
    let (tx, notes) = std::sync::mpsc::channel();
    let errors = std::thread::spawn(move || {
        let mut words = LastWords::default();
        for line in lines(stderr).filter(|l| !l.trim().is_empty()) {
            let _ = tx.send(line.clone());
            words.push(line);
        }
        words
    });
    let mut sink_failed = None;
    // An error line is held until another line follows it: the child's last one is the
    // reason the cell failed, which the observer reports itself.
    let mut held: Option<String> = None;
    let mut note = |l: String| {
        if let Some(h) = held.take() {
            obs.note(&h);
        }
        match l.starts_with("error: ") {
            true => held = Some(l),
            false => obs.note(&l),
        }
    };
    for line in stdout {
        notes.try_iter().for_each(&mut note);
        match serde_json::from_str::<Event>(&line) {
            Ok(Event::Phase { phase }) => obs.cell_phase("", &phase),
            Ok(Event::Request { ok }) => obs.request_done(ok),
            Ok(Event::Warn { msg }) => obs.warn(&msg),
            Ok(Event::SinkFailed { msg }) => sink_failed = Some(msg),
            Err(_) => {}
        }
    }
    let words = errors.join().unwrap_or_default();
    notes.try_iter().for_each(&mut note);
    let status = running().take().map(|mut c| c.wait());
    let told = matches!(&status, Some(Ok(s)) if !s.success() && signal_words(*s).is_none());
    if let Some(h) = held.take().filter(|_| !told) {
        obs.note(&h);
    }
    if let Some(msg) = sink_failed {
        return Err(CellError::Sink(msg));
    }
    match status {
        Some(Ok(s)) if s.success() => Ok(()),
        Some(Ok(s)) => Err(exit_reason(s, words.why(s)).into()),
        Some(Err(e)) => Err(e.to_string().into()),
        None => Err("the cell process was lost".to_string().into()),
    }
}

/// Makes this process, a cell's child, end with the process that started it, however that one
/// ends (SIGKILL included, on Linux): a cell left running would go on writing records after
/// the sweep's lock on the results file is gone, beside the same sweep started again. `Err`
/// when that process has ended already.
pub fn die_with_parent() -> Result<(), String> {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return Ok(());
    };
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("cannot tie the cell process to its sweep: {e}"))?;
    // A sweep that ended before the line above took effect has left this process to another
    // parent.
    #[cfg(unix)]
    if std::os::unix::process::parent_id() != parent {
        return Err("the sweep that started this cell has ended".into());
    }
    Ok(())
}

/// The lines of a child's pipe until it closes.
fn lines(pipe: Option<impl std::io::Read>) -> impl Iterator<Item = String> {
    pipe.into_iter()
        .flat_map(|p| BufReader::new(p).lines().map_while(Result::ok))
}

/// The lines of a child's stderr that say why it failed: the last one, and the last abort
/// message of llama.cpp, which a backtrace (and a debugger's noise) follows.
#[derive(Debug, Default)]
struct LastWords {
    last: Option<String>,
    abort: Option<String>,
}

impl LastWords {
    fn push(&mut self, line: String) {
        if let Some(at) = abort_message(&line) {
            self.abort = Some(line[at..].to_string());
        }
        self.last = Some(line);
    }

    /// For a child a signal ended, llama.cpp's abort message if there was one; else the last
    /// line.
    fn why(self, status: std::process::ExitStatus) -> Option<String> {
        match signal_words(status) {
            Some(_) => self.abort.or(self.last),
            None => self.last,
        }
    }
}

/// Where the source file's name starts in an abort message of ggml (`<path>/llama-model.cpp:1330:
/// GGML_ASSERT(...) failed`, as `ggml_abort` prints it); `None` for any other line.
fn abort_message(line: &str) -> Option<usize> {
    let (at, _) = line.split_once(": ")?;
    let (file, n) = at.rsplit_once(':')?;
    let source = [".c", ".cpp", ".h", ".cu", ".m"]
        .iter()
        .any(|ext| file.ends_with(ext));
    let number = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    (source && number && !file.contains(' ')).then(|| file.rfind('/').map_or(0, |i| i + 1))
}

/// Why a child ended badly: its signal, or the last words of its stderr.
fn exit_reason(status: std::process::ExitStatus, last: Option<String>) -> String {
    let why = last
        .map(|l| l.trim_start_matches("error: ").to_string())
        .filter(|w| !w.is_empty());
    match (signal_words(status), why) {
        (Some(name), Some(w)) => format!("{name}: {w}"),
        (Some(name), None) => name,
        (None, Some(w)) => w,
        (None, None) => format!("the cell process exited with {status}"),
    }
}

/// The signal that ended a child, named with what it usually means; `None` for a normal exit.
fn signal_words(status: std::process::ExitStatus) -> Option<String> {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    signal.map(|sig| match sig {
        2 => "SIGINT: interrupted".to_string(),
        6 => "SIGABRT: llama.cpp aborted".to_string(),
        9 => "SIGKILL: killed, often for running out of memory".to_string(),
        11 => "SIGSEGV: crashed".to_string(),
        n => format!("signal {n}"),
    })
}

/// The child's observer: events on stdout for the parent. Writing fails when the parent is
/// gone (its end of the pipe closed); the child then stops instead of running on.
#[derive(Debug, Default)]
pub struct Emitter;

impl Emitter {
    /// Tells the parent that the records could not be written, in place of an error line.
    pub fn sink_failed(&self, msg: &str) {
        let msg = msg.to_string();
        self.emit(&Event::SinkFailed { msg });
    }

    fn emit(&self, e: &Event) {
        let Ok(line) = serde_json::to_string(e) else {
            return;
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            crate::util::interrupt::request();
        }
    }
}

impl Observer for Emitter {
    fn cell_phase(&self, _label: &str, phase: &str) {
        let phase = phase.to_string();
        self.emit(&Event::Phase { phase });
    }

    fn request_done(&self, ok: bool) {
        self.emit(&Event::Request { ok });
    }

    fn warn(&self, msg: &str) {
        let msg = msg.to_string();
        self.emit(&Event::Warn { msg });
    }

    /// The child's own failure is its exit: the parent reads why from its last line.
    fn cell_failed(&self, _label: &str, _reason: &str) {}
}

/// Runs `program` with `args`, its stdout and stderr appended to `log`, as the running child
/// (an interrupt stops it). `Ok(Ok(()))` on exit status 0; `Ok(Err(why))` when it ran and
/// failed, why in a few words (`exited 101`, `ended by SIGSEGV: crashed`); `Err` when it
/// cannot start at all.
pub fn run_logged(
    program: &Path,
    args: &[String],
    log: &Path,
) -> Result<Result<(), String>, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    hold(child);
    loop {
        let mut slot = running();
        let Some(child) = slot.as_mut() else {
            return Err("the child process was lost".into());
        };
        if let Some(waited) = child.try_wait().transpose() {
            slot.take();
            let status = waited.map_err(|e| e.to_string())?;
            return Ok(match status.success() {
                true => Ok(()),
                false => Err(status_words(status)),
            });
        }
        drop(slot);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An unsuccessful exit status in a few words (`exited 101`, `ended by SIGKILL: killed, …`).
fn status_words(status: std::process::ExitStatus) -> String {
    match (signal_words(status), status.code()) {
        (Some(name), _) => format!("ended by {name}"),
        (None, Some(c)) => format!("exited {c}"),
        (None, None) => format!("ended with {status}"),
    }
}

#[cfg(all(test, unix))]
#[path = "child_tests.rs"]
mod tests;
