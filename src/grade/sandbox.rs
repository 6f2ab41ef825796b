//! Running untrusted code (a model's answer and the tests graded against it): a throwaway
//! directory, a scrubbed environment, wall-clock, CPU, memory, file-size, process-count and
//! output limits, killed with its whole process group at a limit. On Linux as root, also a
//! network namespace with no interfaces, a mount namespace in which /tmp, /var/tmp and /dev/shm
//! are read-only, and the unprivileged user `nobody`. What was in force is reported, so a
//! record says how its code ran. A misbehaving answer costs one failed grade, never the run.

use crate::scenario::Isolation;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The limits one run gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub wall: Duration,
    pub cpu_s: u64,
    /// Address space, bytes.
    pub memory_bytes: u64,
    /// Largest file it may write, bytes.
    pub file_bytes: u64,
    /// Processes of the sandbox user (a fork bomb stops here).
    pub processes: u64,
    /// Bytes of stdout and of stderr kept; more kills the run.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(10),
            cpu_s: 10,
            memory_bytes: 1 << 30,
            file_bytes: 16 << 20,
            processes: 64,
            output_bytes: 1 << 20,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub exit: Option<i32>,
    pub timed_out: bool,
    /// It wrote more than the output limit and was stopped.
    pub output_overflow: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Why the run did not finish normally, if it did not.
    pub fn stopped(&self, limits: &Limits) -> Option<String> {
        if self.timed_out {
            Some(format!(
                "stopped at the {:.0} s time limit",
                limits.wall.as_secs_f64()
            ))
        } else if self.output_overflow {
            Some(format!(
                "stopped: more than {} bytes of output",
                limits.output_bytes
            ))
        } else {
            None
        }
    }
}

/// How this machine can isolate a run, probed once.
#[derive(Debug, Clone)]
struct Wrapper {
    /// Fresh mount and network namespaces, and a drop to `nobody` (running as root).
    namespaces: bool,
    prlimit: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wrapper() -> &'static Wrapper {
    static W: OnceLock<Wrapper> = OnceLock::new();
    W.get_or_init(|| {
        let linux = cfg!(target_os = "linux");
        let root = linux && is_root();
        let prlimit = linux && works("prlimit", &["--cpu=1", "--", "true"]);
        let namespaces = root
            && works("unshare", &["-m", "-n", "--propagation", "private", "true"])
            && works(
                "setpriv",
                &["--reuid=65534", "--regid=65534", "--clear-groups", "true"],
            );
        Wrapper {
            namespaces,
            prlimit,
        }
    })
}

/// What this machine's sandbox enforces.
pub fn isolation() -> Isolation {
    let w = wrapper();
    Isolation {
        network: w.namespaces,
        filesystem: w.namespaces,
        user: if w.namespaces {
            "nobody"
        } else {
            "runner's own"
        }
        .into(),
        rlimits: if w.prlimit { "prlimit" } else { "ulimit" }.into(),
    }
}

/// A directory for one run, which the sandbox user can write (removed when dropped).
pub fn workdir() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("runner-sandbox-")
        .tempdir_in(std::env::temp_dir())?;
    if wrapper().namespaces {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(dir)
}

/// An interpreter the sandbox user can run: the system's when runner drops to `nobody`
/// (programs under root's home are not readable by it), else the first on PATH.
pub fn program(name: &str) -> Option<PathBuf> {
    let system = ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if wrapper().namespaces {
        return system;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .or(system)
}

/// The command line that runs `program args` under the limits and isolation available, with
/// each `(host directory, name)` of `mounts` readable at `dir/name` in the namespaces.
fn command(
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
    mounts: &[(PathBuf, &str)],
) -> Command {
    let w = wrapper();
    let mut inner: Vec<String> = Vec::new();
    if w.prlimit {
        inner.extend([
            "prlimit".to_string(),
            format!("--cpu={}", limits.cpu_s),
            format!("--as={}", limits.memory_bytes),
            format!("--fsize={}", limits.file_bytes),
            format!("--nproc={}", limits.processes),
            "--".into(),
        ]);
    }
    inner.push(program.display().to_string());
    inner.extend(args.iter().cloned());
    let mut cmd = if w.namespaces {
        // As root, in fresh mount and network namespaces: the run's directory stays writable,
        // the shared temporary directories become read-only, then root is dropped.
        let script = "d=\"$1\"; n=\"$2\"; shift 2; mount --bind \"$d\" \"$d\" || exit 97; \
            while [ \"$n\" -gt 0 ]; do mkdir -p \"$d/$2\" && mount --bind \"$1\" \"$d/$2\" && \
            mount -o remount,bind,ro \"$d/$2\" || exit 97; shift 2; n=$((n - 1)); done; \
            for t in /tmp /var/tmp /dev/shm; do if [ -d \"$t\" ]; then \
            mount --rbind \"$t\" \"$t\" && mount -o remount,bind,ro \"$t\" || exit 97; fi; done; \
            cd \"$d\" && exec setpriv --reuid=65534 --regid=65534 --clear-groups -- \"$@\"";
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "-n",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(dir)
        .arg(mounts.len().to_string());
        for (host, name) in mounts {
            c.arg(host).arg(name);
        }
        c.args(&inner);
        c
    } else if w.prlimit {
        let mut c = Command::new(&inner[0]);
        c.args(&inner[1..]);
        c
    } else {
        // ulimit as POSIX sh knows it: CPU seconds and file size (512-byte blocks).
        let script = format!(
            "ulimit -t {} 2>/dev/null; ulimit -f {} 2>/dev/null; exec \"$@\"",
            limits.cpu_s,
            limits.file_bytes / 512
        );
        let mut c = Command::new("sh");
        c.args(["-c", &script, "sh"]).args(&inner);
        c
    };
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .env("LANG", "C.UTF-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONHASHSEED", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd
}

fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Reads a pipe up to `cap` bytes, then tells the waiter it overflowed (and drains nothing
/// more: the run is killed).
fn reader(
    mut pipe: impl Read + Send + 'static,
    cap: usize,
    overflow: mpsc::Sender<()>,
) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if kept.len() + n > cap => {
                    kept.extend_from_slice(&buf[..cap - kept.len()]);
                    let _ = overflow.send(());
                    break;
                }
                Ok(n) => kept.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

/// Whether runs see host directories only through mounts (the sandbox user cannot read
/// runner's own home).
pub fn mounts_needed() -> bool {
    wrapper().namespaces
}

/// Runs `program args` in `dir` under `limits`, with each `(host directory, name)` of `mounts`
/// readable at `dir/name` where the sandbox uses namespaces (elsewhere the run reads the host
/// path itself). An error only when it cannot start at all.
pub fn run(
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
    mounts: &[(PathBuf, &str)],
) -> std::io::Result<Outcome> {
    let start = Instant::now();
    let mut child = command(dir, program, args, limits, mounts).spawn()?;
    let pid = child.id();
    let (otx, orx) = mpsc::channel();
    let out = reader(
        child.stdout.take().expect("piped"),
        limits.output_bytes,
        otx.clone(),
    );
    let err = reader(
        child.stderr.take().expect("piped"),
        limits.output_bytes,
        otx,
    );
    let (mut timed_out, mut output_overflow) = (false, false);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if orx.try_recv().is_ok() {
            output_overflow = true;
            break None;
        }
        if start.elapsed() >= limits.wall {
            timed_out = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Whatever it left running in its group goes too.
    kill_group(pid);
    let status = status.or_else(|| child.wait().ok());
    // A process that left the group may hold the pipes: wait a moment, not forever.
    let take = |rx: mpsc::Receiver<Vec<u8>>| {
        String::from_utf8_lossy(&rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default())
            .into_owned()
    };
    Ok(Outcome {
        exit: status
            .filter(|_| !timed_out && !output_overflow)
            .and_then(|s| s.code()),
        timed_out,
        output_overflow,
        stdout: take(out),
        stderr: take(err),
    })
}
