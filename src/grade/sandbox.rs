//! Running untrusted code (a model's answer and the tests graded against it): a throwaway
//! directory, a scrubbed environment, wall-clock, CPU, memory, file-size, process-count and
//! output limits, killed at a limit or when runner is interrupted. On Linux as root, also a
//! network namespace with no interfaces, a mount namespace in which every mount is read-only
//! but the run's own directory, and a user and group id of its own (unused by any process),
//! every process of which is killed when the run ends, so that nothing it started outlives it
//! or reaches another run. On Linux as another user, where user namespaces are allowed, a user
//! namespace of the run's own with fresh PID, mount and network namespaces: no network, every
//! mount read-only but the run's directory, no process outside it in sight or reach, and none
//! left when it ends. In both namespace modes the home directories look empty. Runner also
//! hides its own /proc entries from the run (Linux).
//! Runner's secrets are redacted from what a run printed. What was in force is reported, so a
//! record says how its code ran.
//! A misbehaving answer costs one failed grade, never the run.

use crate::scenario::Isolation;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
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
    /// Processes of the sandbox user (a fork bomb stops here); where the sandbox runs as
    /// runner's own user outside a user namespace, this many beyond those the user already
    /// has.
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub exit: Option<i32>,
    pub timed_out: bool,
    /// It wrote more than the output limit and was stopped.
    pub output_overflow: bool,
    /// Runner was interrupted meanwhile, and the run was stopped.
    pub interrupted: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Why the run did not finish normally, if it did not.
    pub fn stopped(&self, limits: &Limits) -> Option<String> {
        if self.interrupted {
            Some("stopped: runner was interrupted".into())
        } else if self.timed_out {
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
    /// Fresh mount and network namespaces, and a drop to a user of the run's own (running as
    /// root).
    namespaces: bool,
    /// Not root: a user namespace of the run's own (runner's user mapped to its root) with
    /// fresh PID, mount and network namespaces, every capability dropped before the code runs.
    user_namespace: bool,
    prlimit: bool,
}

/// Whether `c` runs and succeeds, its output dropped.
fn works(c: &mut Command) -> bool {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wrapper() -> &'static Wrapper {
    static W: OnceLock<Wrapper> = OnceLock::new();
    W.get_or_init(|| {
        let linux = cfg!(target_os = "linux");
        let root = linux && nix::unistd::geteuid().is_root();
        let run = |program: &str, args: &[&str]| works(Command::new(program).args(args));
        let prlimit = linux && run("prlimit", &["--cpu=1", "--", "true"]);
        let namespaces = root
            && run("unshare", &["-m", "-n", "--propagation", "private", "true"])
            && run(
                "setpriv",
                &["--reuid=65534", "--regid=65534", "--clear-groups", "true"],
            );
        let mut w = Wrapper {
            namespaces,
            user_namespace: false,
            prlimit,
        };
        w.user_namespace = linux && !root && user_namespace_works(&w);
        w
    })
}

/// Whether a run in a user namespace sets up and runs here: unprivileged user namespaces may
/// be turned off, and the mounts may refuse to be made read-only.
fn user_namespace_works(w: &Wrapper) -> bool {
    let w = Wrapper {
        user_namespace: true,
        ..w.clone()
    };
    let Ok(dir) = tempfile::Builder::new().prefix("runner-sandbox-").tempdir() else {
        return false;
    };
    let limits = Limits::default();
    let hidden = hidden_homes(dir.path());
    works(&mut command(
        &w,
        dir.path(),
        Path::new("true"),
        &[],
        &limits,
        (&[], &hidden),
        None,
    ))
}

/// What this machine's sandbox enforces.
pub fn isolation() -> Isolation {
    let w = wrapper();
    let namespaces = w.namespaces || w.user_namespace;
    let hidden = if namespaces {
        hidden_homes(&base())
    } else {
        Vec::new()
    };
    Isolation {
        network: namespaces,
        filesystem: namespaces,
        user: match (w.namespaces, w.user_namespace) {
            (true, _) => "a uid of its own",
            (_, true) => "runner's own, in a user namespace",
            _ => "runner's own",
        }
        .into(),
        rlimits: if w.prlimit { "prlimit" } else { "ulimit" }.into(),
        hidden: hidden.iter().map(|h| h.display().to_string()).collect(),
    }
}

/// The home directories a run in namespaces sees empty: /root, /home and runner's $HOME,
/// outermost first, less any that holds `dir` (where the run's directory is made).
fn hidden_homes(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut homes: Vec<PathBuf> = ["/root", "/home"].map(PathBuf::from).into();
    homes.extend(std::env::var_os("HOME").map(PathBuf::from));
    let mut homes: Vec<PathBuf> = homes
        .iter()
        .filter_map(|h| std::fs::canonicalize(h).ok())
        .filter(|h| h.is_dir() && h.parent().is_some() && !dir.starts_with(h))
        .collect();
    homes.sort();
    homes.dedup_by(|inner, outer| inner.starts_with(outer));
    homes
}

/// Whether every directory from `p` up lets other users through.
fn others_pass(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.ancestors().all(|a| {
        std::fs::metadata(a).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 != 0)
    })
}

/// `program` as a run in namespaces reaches it, and what to mount for that: a program under
/// a hidden home, or (as root) one the run's own user could not reach, runs from its
/// installation (the directory above its `bin/`, or its own directory) mounted read-only at
/// `.runtime` in the run's directory.
fn reachable(
    w: &Wrapper,
    program: &Path,
    hidden: &[PathBuf],
    dir: &Path,
) -> (PathBuf, Vec<(PathBuf, &'static str)>) {
    let real = std::fs::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let hid = |p: &Path| hidden.iter().any(|h| p.starts_with(h));
    let parent = real.parent().unwrap_or(Path::new("/"));
    let unreachable = w.namespaces && !others_pass(parent);
    if real.starts_with(dir) || !(hid(&real) || unreachable) {
        return (program.to_path_buf(), Vec::new());
    }
    // Never all of a home, nor a system directory: the installation must lie below one.
    let below = |p: &Path| {
        hidden.iter().any(|h| p.starts_with(h) && p != h) || (!hid(p) && p.components().count() > 3)
    };
    let install = [parent.parent(), Some(parent)]
        .into_iter()
        .flatten()
        .find(|p| below(p));
    match install.and_then(|i| Some((i, real.strip_prefix(i).ok()?))) {
        Some((i, rel)) => (
            dir.join(".runtime").join(rel),
            vec![(i.to_path_buf(), ".runtime")],
        ),
        None => (program.to_path_buf(), Vec::new()),
    }
}

/// A directory for one run, which the sandbox user can write (removed when dropped). As root
/// it is made under the temporary directory if every directory above it lets others through
/// (a private per-user TMPDIR does not), else under /tmp; it is handed to the run's own user
/// when the run starts.
pub fn workdir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("runner-sandbox-")
        .tempdir_in(base())
}

/// Where runs' directories are made.
fn base() -> PathBuf {
    if wrapper().namespaces {
        reachable_base(&std::env::temp_dir())
    } else {
        std::env::temp_dir()
    }
}

/// `tmp` if another user can reach a directory made in it, else /tmp.
fn reachable_base(tmp: &Path) -> PathBuf {
    if others_pass(tmp) {
        tmp.to_path_buf()
    } else {
        PathBuf::from("/tmp")
    }
}

/// An interpreter the sandbox user can run: the system's when runner drops to a user of the
/// run's own (programs under root's home are not readable by it), else the first on PATH.
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").filter(|_| !wrapper().namespaces);
    let on_path = path.iter().flat_map(std::env::split_paths);
    let system = ["/usr/bin", "/bin", "/usr/local/bin"].map(PathBuf::from);
    on_path
        .chain(system)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The command line that runs `program args` under the limits and isolation `w` offers, with
/// each `(host directory, name)` of `mounts` readable at `dir/name` in the namespaces and each
/// directory of `hidden` empty there, as `uid` there.
fn command(
    w: &Wrapper,
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
    (mounts, hidden): (&[(PathBuf, &str)], &[PathBuf]),
    uid: Option<u32>,
) -> Command {
    // Where the run shares runner's user outside a user namespace, that user's other
    // processes count against the process limit too: the run gets its limit beyond them. In a
    // user namespace of its own, only the run's processes count.
    let processes = if uid.is_some() || w.user_namespace {
        limits.processes
    } else {
        limits.processes + own_tasks()
    };
    let mut inner: Vec<String> = Vec::new();
    if w.prlimit {
        inner.extend([
            "prlimit".to_string(),
            format!("--cpu={}", limits.cpu_s),
            format!("--as={}", limits.memory_bytes),
            format!("--fsize={}", limits.file_bytes),
            format!("--nproc={processes}"),
            "--".into(),
        ]);
    }
    inner.push(program.display().to_string());
    inner.extend(args.iter().cloned());
    // `unshare FLAGS --propagation private sh -c SCRIPT sh DIR`, the script's arguments next.
    // Both namespace modes' scripts take the run's directory, the counts of `mounts`, of the
    // mount points to make read-only and of `hidden`, and those in that order; the lines
    // below mount each. Mounts of `mounts` come before the hiding, which they may lie under.
    let mount = "while [ \"$r\" -gt 0 ]; do mount -o remount,bind,ro \"$1\" || exit 97; \
        shift; r=$((r - 1)); done; \
        mount --bind \"$d\" \"$d\" && mount -o remount,bind,rw \"$d\" || exit 97; \
        while [ \"$n\" -gt 0 ]; do mkdir -p \"$d/$2\" && mount --bind \"$1\" \"$d/$2\" && \
        mount -o remount,bind,ro \"$d/$2\" || exit 97; shift 2; n=$((n - 1)); done; \
        while [ \"$h\" -gt 0 ]; do \
        mount -t tmpfs -o ro,nosuid,nodev,mode=0755,size=4k runner-hidden \"$1\" || exit 97; \
        shift; h=$((h - 1)); done; cd \"$d\" || exit 97; ";
    let unshare = |flags: &[&str], script: &str, points: &[String]| {
        let mut c = Command::new("unshare");
        c.args(flags)
            .args(["--propagation", "private", "sh", "-c", script, "sh"])
            .arg(dir)
            .arg(mounts.len().to_string())
            .arg(points.len().to_string())
            .arg(hidden.len().to_string())
            .args(points);
        for (host, name) in mounts {
            c.arg(host).arg(name);
        }
        c.args(hidden);
        c
    };
    let mut cmd = if let (true, Some(uid)) = (w.namespaces, uid) {
        // As root, in fresh mount and network namespaces: every mount becomes read-only, the
        // run's directory is bound writable over itself, the `mounts` read-only inside it, the
        // `hidden` covered, then root is dropped for the run's own user and group (the last
        // argument before the command).
        let script = format!(
            "d=\"$1\"; n=\"$2\"; r=\"$3\"; h=\"$4\"; shift 4; {mount}\
            u=\"$1\"; shift; exec setpriv --reuid=\"$u\" --regid=\"$u\" --clear-groups -- \"$@\""
        );
        let mut c = unshare(&["-m", "-n"], &script, &mount_points());
        c.arg(uid.to_string());
        c
    } else if w.user_namespace {
        // In its own user, PID, mount and network namespaces, with a /proc of its own: the
        // mounts as above. The shell stays the namespace's first process (whose end ends every
        // other) and runs the code as its child, without capabilities, so that the code can
        // neither undo the mounts nor ignore the signals the first process of a PID namespace
        // ignores.
        let script = format!(
            "d=\"$1\"; n=\"$2\"; r=\"$3\"; h=\"$4\"; shift 4; {mount}\
            setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- \"$@\"; exit $?"
        );
        // Mounts under /proc belong to the /proc this namespace replaces.
        let points: Vec<String> = mount_points()
            .into_iter()
            .filter(|p| p != "/proc" && !p.starts_with("/proc/"))
            .collect();
        unshare(
            &[
                "--user",
                "--map-root-user",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--mount",
                "--net",
            ],
            &script,
            &points,
        )
    } else if w.prlimit {
        Command::new(inner.remove(0))
    } else {
        // ulimit as POSIX sh knows it: CPU seconds and file size (512-byte blocks).
        let script = format!(
            "ulimit -t {} 2>/dev/null; ulimit -f {} 2>/dev/null; exec \"$@\"",
            limits.cpu_s,
            limits.file_bytes / 512
        );
        let mut c = Command::new("sh");
        c.args(["-c", &script, "sh"]);
        c
    };
    cmd.args(&inner)
        .current_dir(dir)
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

/// Every mount point of this mount namespace, parents before the mounts on them.
fn mount_points() -> Vec<String> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec!["/".into()];
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_point)
        .filter(|p| Path::new(p).exists())
        .collect()
}

/// A mount point as mountinfo writes it (space, tab, newline and backslash as `\ooo`).
fn unescape_mount_point(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |c: u8| (b'0'..=b'7').contains(&c);
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..=i + 3].iter().all(|&c| octal(c)) {
            out.push(
                b[i + 1..=i + 3]
                    .iter()
                    .fold(0u8, |v, &c| v.wrapping_mul(8).wrapping_add(c - b'0')),
            );
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The /proc/PID/status of every process now.
fn statuses() -> impl Iterator<Item = String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
}

/// Threads of runner's own user now (they count against RLIMIT_NPROC).
fn own_tasks() -> u64 {
    let me = nix::unistd::getuid().as_raw();
    statuses()
        .filter(|s| status_uids(s).first() == Some(&me))
        .map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum()
}

/// The real, effective, saved and filesystem uids of a /proc/PID/status.
fn status_uids(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|u| {
            u.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// First of the user and group ids runs get as root.
const RUN_IDS: u32 = 2_000_000_000;

/// The ids handed to runs in progress.
static TAKEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A user (and group) id for one run: one no process uses and no other run of this runner
/// holds. Given back by [`release_uid`].
fn fresh_uid() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let in_use: Vec<u32> = statuses().flat_map(|s| status_uids(&s)).collect();
    let mut taken = locked(&TAKEN);
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos());
        let uid = RUN_IDS + (h.finish() % 100_000_000) as u32;
        if !in_use.contains(&uid) && !taken.contains(&uid) {
            taken.push(uid);
            return uid;
        }
    }
}

fn release_uid(uid: u32) {
    locked(&TAKEN).retain(|&u| u != uid);
}

/// A lock on `m`, also after a thread panicked holding it.
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every process of `uid`: a helper takes that user and signals all it can, again while
/// any is left (zombies not yet reaped aside).
fn kill_uid(uid: u32) {
    for _ in 0..25 {
        signal_all_of(uid);
        if !alive_of(uid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGKILL to every process of `uid` from a helper of that user, repeated until none is
/// left or a moment has passed (a zombie still counts until it is reaped).
fn signal_all_of(uid: u32) {
    use std::os::unix::process::CommandExt;
    // The shell's own `kill` signals every process its user may, but itself; it stops once
    // none is left to signal. Setting the ids as root also drops every supplementary group.
    let mut c = Command::new("/bin/sh");
    c.args([
        "-c",
        "i=0; while [ $i -lt 100 ]; do kill -9 -1 2>/dev/null || exit 0; i=$((i+1)); done",
    ])
    .env_clear()
    .uid(uid)
    .gid(uid)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Ok(mut helper) = c.spawn() {
        let _ = helper.wait();
    }
}

/// Whether a process of `uid` other than a zombie is left.
fn alive_of(uid: u32) -> bool {
    statuses().any(|s| {
        status_uids(&s).contains(&uid)
            && !s
                .lines()
                .find_map(|l| l.strip_prefix("State:"))
                .is_some_and(|st| st.trim_start().starts_with('Z'))
    })
}

/// Stops a run: its first process by pid and its process group (as root, [`kill_uid`] then
/// takes every other process of its user).
fn stop(pid: u32) {
    use nix::sys::signal::{kill, killpg, Signal};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let _ = kill(pid, Signal::SIGKILL);
    let _ = killpg(pid, Signal::SIGKILL);
}

/// A run in progress, for [`stop_all`].
struct Running {
    pid: u32,
    uid: Option<u32>,
    dir: PathBuf,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());

/// Stops every run in progress and removes its directory: runner is about to end at once (a
/// second interrupt).
pub fn stop_all() {
    let running = std::mem::take(&mut *locked(&RUNNING));
    for r in running {
        stop(r.pid);
        if let Some(uid) = r.uid {
            kill_uid(uid);
        }
        let _ = std::fs::remove_dir_all(&r.dir);
    }
}

/// Makes runner's own /proc entries (its environment, its open files) unreadable to processes
/// of its user, and runner not traceable by them: a run as runner's own user cannot read the
/// API keys in its environment or write to its results file through /proc.
fn hide_runner() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            let _ = nix::sys::prctl::set_dumpable(false);
        });
    }
}

/// Runner's secrets as a run could have found them: the values of its environment variables
/// named like a key, a token, a secret or a password.
fn secrets() -> &'static [String] {
    static S: OnceLock<Vec<String>> = OnceLock::new();
    S.get_or_init(|| secrets_in(std::env::vars_os()))
}

fn secrets_in(vars: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>) -> Vec<String> {
    vars.filter_map(|(k, v)| {
        let k = k.to_string_lossy().to_ascii_uppercase();
        let v = v.into_string().ok()?;
        (["KEY", "TOKEN", "SECRET", "PASSWORD"]
            .iter()
            .any(|w| k.contains(w))
            && v.len() >= 8)
            .then_some(v)
    })
    .collect()
}

/// `text` with each of `secrets` replaced by `[redacted]`.
fn redact(text: String, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text, |t, s| t.replace(s.as_str(), "[redacted]"))
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

/// Whether runs get a user of their own (root, with namespaces).
#[cfg(test)]
fn own_users() -> bool {
    wrapper().namespaces
}

/// Runs `program args` in `dir` under `limits` (a program under a hidden home, or one the
/// run's user cannot reach, from its installation mounted into `dir`). An interrupt of runner
/// stops it. An error only when it cannot start at all.
pub fn run(
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
) -> std::io::Result<Outcome> {
    run_until(
        dir,
        program,
        args,
        limits,
        &crate::util::interrupt::requested,
    )
}

/// [`run`], stopped early when `interrupted` says so.
fn run_until(
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
    interrupted: &dyn Fn() -> bool,
) -> std::io::Result<Outcome> {
    hide_runner();
    let w = wrapper();
    let uid = w.namespaces.then(fresh_uid);
    let result = run_as(w, dir, program, args, limits, interrupted, uid);
    if let Some(uid) = uid {
        release_uid(uid);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_as(
    w: &Wrapper,
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
    interrupted: &dyn Fn() -> bool,
    uid: Option<u32>,
) -> std::io::Result<Outcome> {
    if let Some(uid) = uid {
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::chown(dir, Some(uid), Some(uid))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if interrupted() {
        return Ok(Outcome {
            interrupted: true,
            ..Default::default()
        });
    }
    let start = Instant::now();
    let hidden = if w.namespaces || w.user_namespace {
        hidden_homes(dir)
    } else {
        Vec::new()
    };
    let (program, mounts) = reachable(w, program, &hidden, dir);
    let mut child = command(w, dir, &program, args, limits, (&mounts, &hidden), uid).spawn()?;
    let pid = child.id();
    locked(&RUNNING).push(Running {
        pid,
        uid,
        dir: dir.to_path_buf(),
    });
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
    // Why it was stopped, if it was: the first limit reached.
    let mut o = Outcome::default();
    let status = loop {
        match child.try_wait() {
            Ok(None) => {}
            ended => break ended.ok().flatten(),
        }
        if orx.try_recv().is_ok() {
            o.output_overflow = true;
        } else if start.elapsed() >= limits.wall {
            o.timed_out = true;
        } else if interrupted() {
            o.interrupted = true;
        } else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        break None;
    };
    // It goes, with whatever it left running: by pid (it may have left its group), its group,
    // and as root every process of its user.
    stop(pid);
    // Killed by pid, it is reaped at once; still, never wait without bound.
    let status = status.or_else(|| {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        }
    });
    if let Some(uid) = uid {
        kill_uid(uid);
    }
    locked(&RUNNING).retain(|r| r.pid != pid);
    // A process that escaped (not as root) may hold the pipes: wait a moment, not forever.
    let take = |rx: mpsc::Receiver<Vec<u8>>| {
        let kept = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
        redact(String::from_utf8_lossy(&kept).into_owned(), secrets())
    };
    let stopped = o.timed_out || o.output_overflow || o.interrupted;
    Ok(Outcome {
        exit: status.filter(|_| !stopped).and_then(|s| s.code()),
        stdout: take(out),
        stderr: take(err),
        ..o
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Runs `code` with python3 under `limits` on another thread, stopped when `stop` is set;
    /// `None` when it has not returned within 60 s.
    fn python(code: &str, limits: Limits, stop: Arc<AtomicBool>) -> Option<Outcome> {
        let python = program("python3").expect("python3");
        let dir = workdir().unwrap();
        std::fs::write(dir.path().join("a.py"), code).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let o = run_until(dir.path(), &python, &["a.py".to_string()], &limits, &|| {
                stop.load(Ordering::SeqCst)
            });
            let _ = tx.send(o.unwrap());
        });
        rx.recv_timeout(Duration::from_secs(60)).ok()
    }

    /// Runs python `code` as a user-namespace run would (as root, the namespace's root is
    /// root itself: the mechanics, not the user, are what this shows).
    fn python_in_user_namespace(code: &str, limits: Limits) -> Outcome {
        let w = Wrapper {
            namespaces: false,
            user_namespace: true,
            prlimit: wrapper().prlimit,
        };
        let dir = workdir().unwrap();
        std::fs::write(dir.path().join("a.py"), code).unwrap();
        let python = program("python3").expect("python3");
        let never = || false;
        run_as(
            &w,
            dir.path(),
            &python,
            &["a.py".to_string()],
            &limits,
            &never,
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_user_namespace_run_sees_no_network_no_writable_mount_and_no_process_of_runner() {
        if !cfg!(target_os = "linux") || !user_namespace_works(wrapper()) {
            eprintln!("skipped: no user namespaces here");
            return;
        }
        let outside = tempfile::tempdir().unwrap();
        let marker = format!("4343.{}", std::process::id());
        let code = format!(
            "import os, socket, subprocess\n\
            for p in ['{outside}/x', 'here']:\n    \
            try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n    \
            except OSError:\n        print('refused', p)\n\
            try:\n    os.kill({runner}, 0)\n    print('runner seen')\n\
            except OSError:\n    print('runner unseen')\n\
            try:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n    print('net')\n\
            except OSError:\n    print('no net')\n\
            r = subprocess.run(['mount', '-o', 'remount,bind,rw', '/'], capture_output=True)\n\
            print('remount', r.returncode)\n\
            if os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', '{marker}'])\n\
            print('done')\n",
            outside = outside.path().display(),
            runner = std::process::id(),
        );
        let o = python_in_user_namespace(&code, short());
        assert_eq!(o.exit, Some(0), "{o:?}");
        for line in [
            "refused {}/x",
            "wrote here",
            "runner unseen",
            "no net",
            "done",
        ] {
            let line = line.replace("{}", &outside.path().display().to_string());
            assert!(o.stdout.lines().any(|l| l == line), "{line}: {o:?}");
        }
        assert!(!o.stdout.contains("remount 0"), "{o:?}");
        assert!(!outside.path().join("x").exists());
        // The namespace ends with its first process: the sleeper it left is gone.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(with_marker(&marker), Vec::<String>::new());
    }

    /// A directory under runner's home holding `bin/prog`, a script that prints `ran`, which
    /// others may read and run.
    fn program_in_home() -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let home = std::env::var_os("HOME").expect("HOME");
        let install = tempfile::Builder::new()
            .prefix(".runner-sandbox-test-")
            .tempdir_in(home)
            .unwrap();
        let prog = install.path().join("bin/prog");
        std::fs::create_dir(prog.parent().unwrap()).unwrap();
        std::fs::write(&prog, "#!/bin/sh\necho ran\n").unwrap();
        for (p, mode) in [
            (install.path(), 0o755),
            (prog.parent().unwrap(), 0o755),
            (&prog, 0o755),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (install, prog)
    }

    /// Code that prints, for `home` and /home, the names in it or the error, one line each.
    fn list_homes(home: &Path) -> String {
        format!(
            "import os\n\
            for h in ['{}', '/home']:\n    \
            try:\n        print(h, sorted(os.listdir(h)))\n    \
            except OSError as e:\n        print(h, 'error', e.errno)\n",
            home.display()
        )
    }

    #[test]
    fn a_run_in_namespaces_sees_the_homes_empty_and_still_runs_a_program_installed_there() {
        let home = std::fs::canonicalize(std::env::var_os("HOME").expect("HOME")).unwrap();
        let user_namespace = cfg!(target_os = "linux") && user_namespace_works(wrapper());
        if !own_users() && !user_namespace {
            eprintln!("skipped: no namespaces here");
            return;
        }
        if hidden_homes(&base()).iter().all(|h| !home.starts_with(h)) {
            eprintln!("skipped: runs are made under {}", home.display());
            return;
        }
        let (_install, prog) = program_in_home();
        let code = list_homes(&home);
        let expect = |o: &Outcome| {
            assert_eq!(o.exit, Some(0), "{o:?}");
            for h in [home.display().to_string(), "/home".into()] {
                assert!(
                    o.stdout.lines().any(|l| l == format!("{h} []")),
                    "{h}: {o:?}"
                );
            }
        };
        let never = || false;
        if own_users() {
            expect(&python(&code, short(), Arc::default()).expect("returns"));
            let dir = workdir().unwrap();
            let o = run_until(dir.path(), &prog, &[], &short(), &never).unwrap();
            assert_eq!((o.exit, o.stdout.as_str()), (Some(0), "ran\n"), "{o:?}");
            let hidden = isolation().hidden;
            assert!(hidden.iter().any(|h| home.starts_with(h)), "{hidden:?}");
        }
        if user_namespace {
            expect(&python_in_user_namespace(&code, short()));
            let w = Wrapper {
                namespaces: false,
                user_namespace: true,
                prlimit: wrapper().prlimit,
            };
            let dir = workdir().unwrap();
            let o = run_as(&w, dir.path(), &prog, &[], &short(), &never, None).unwrap();
            assert_eq!((o.exit, o.stdout.as_str()), (Some(0), "ran\n"), "{o:?}");
        }
    }

    #[test]
    fn a_user_namespace_run_still_stops_at_the_time_limit_and_reports_a_crash() {
        if !cfg!(target_os = "linux") || !user_namespace_works(wrapper()) {
            eprintln!("skipped: no user namespaces here");
            return;
        }
        let o = python_in_user_namespace("import time\ntime.sleep(1000)\n", short());
        assert!(o.timed_out, "{o:?}");
        let o = python_in_user_namespace(
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
            short(),
        );
        assert!(!o.timed_out && o.exit != Some(0), "{o:?}");
        // The process limit counts the run's own processes (as root it is not enforced).
        if nix::unistd::geteuid().is_root() {
            return;
        }
        let bomb = "import os, time\nn = 0\nfor i in range(100):\n    try:\n        \
            if os.fork() == 0:\n            time.sleep(3)\n            os._exit(0)\n        \
            n += 1\n    except OSError:\n        break\nprint(n)\n";
        let o = python_in_user_namespace(
            bomb,
            Limits {
                processes: 10,
                ..short()
            },
        );
        let forked: u32 = o.stdout.trim().parse().expect("a count");
        assert!((1..10).contains(&forked), "{o:?}");
    }

    fn short() -> Limits {
        Limits {
            wall: Duration::from_secs(2),
            ..Limits::default()
        }
    }

    /// The pids of processes whose command line contains `marker`.
    fn with_marker(marker: &str) -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_run_that_leaves_its_process_group_still_stops_at_the_time_limit() {
        // The child makes a group of its own and the parent joins it: the run's first group
        // is empty, and sleeping uses no CPU time.
        let code = "import os, time\n\
            pid = os.fork()\n\
            if pid == 0:\n    os.setpgid(0, 0)\n    time.sleep(1000)\n\
            time.sleep(0.3)\nos.setpgid(0, pid)\ntime.sleep(1000)\n";
        let o = python(code, short(), Arc::default()).expect("returns within 60 s");
        assert!(o.timed_out, "{o:?}");
        assert_eq!(o.exit, None);
    }

    #[test]
    fn an_interrupt_stops_a_run_at_once() {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            s.store(true, Ordering::SeqCst);
        });
        let limits = Limits {
            wall: Duration::from_secs(600),
            ..Limits::default()
        };
        let o = python("import time\ntime.sleep(1000)\n", limits, stop).expect("returns");
        assert!(o.interrupted && !o.timed_out, "{o:?}");
        assert_eq!(o.exit, None);
        assert_eq!(
            o.stopped(&limits).as_deref(),
            Some("stopped: runner was interrupted")
        );
    }

    #[test]
    fn as_root_nothing_a_run_started_outlives_it() {
        if !own_users() {
            eprintln!("skipped: the per-run user needs root and namespaces");
            return;
        }
        let marker = format!("4242.{}", std::process::id());
        let code = format!(
            "import os\n\
            if os.fork() == 0:\n    os.setsid()\n    \
            if os.fork() == 0:\n        os.execvp('sleep', ['sleep', '{marker}'])\n    \
            os._exit(0)\n\
            import time\ntime.sleep(0.5)\nprint('done')\n"
        );
        let o = python(&code, short(), Arc::default()).expect("returns");
        assert_eq!(o.stdout.trim(), "done", "{o:?}");
        assert_eq!(with_marker(&marker), Vec::<String>::new());
    }

    #[test]
    fn as_root_runs_get_users_of_their_own() {
        if !own_users() {
            eprintln!("skipped: the per-run user needs root and namespaces");
            return;
        }
        let code = "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n";
        let a = python(code, short(), Arc::default()).expect("returns");
        let b = python(code, short(), Arc::default()).expect("returns");
        let ids = |o: &Outcome| -> (u32, u32) {
            let mut f = o.stdout.split_whitespace();
            let uid = f.next().and_then(|u| u.parse().ok()).expect("uid");
            let gid = f.next().and_then(|u| u.parse().ok()).expect("gid");
            assert_eq!(f.next(), Some("[]"), "{o:?}");
            (uid, gid)
        };
        let (ua, ga) = ids(&a);
        let (ub, _) = ids(&b);
        assert!(ua >= RUN_IDS && ua == ga, "{a:?}");
        assert_ne!(ua, ub);
    }

    #[test]
    fn as_root_no_mount_is_writable_but_the_runs_own_directory() {
        if !own_users() {
            eprintln!("skipped: the mount namespace needs root");
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        // A world-writable directory outside the shared temporary ones.
        let open = tempfile::Builder::new()
            .prefix(".sandbox-test-")
            .tempdir_in(env!("CARGO_MANIFEST_DIR"))
            .unwrap();
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        if reachable_base(open.path()) != open.path() {
            eprintln!(
                "skipped: {} is not reachable by others",
                open.path().display()
            );
            return;
        }
        let code = format!(
            "import errno\n\
            for p in ['{}/x', '/run/lock/runner-sandbox-test', 'here']:\n    \
            try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n    \
            except OSError as e:\n        print('refused', p, errno.errorcode[e.errno])\n",
            open.path().display()
        );
        let o = python(&code, short(), Arc::default()).expect("returns");
        assert!(o.stdout.contains("wrote here"), "{o:?}");
        assert_eq!(o.stdout.matches("wrote").count(), 1, "{o:?}");
        assert!(!open.path().join("x").exists());
        assert!(!Path::new("/run/lock/runner-sandbox-test").exists());
    }

    #[test]
    fn a_private_temporary_directory_is_passed_over_for_tmp() {
        use std::os::unix::fs::PermissionsExt;
        let private = tempfile::tempdir().unwrap();
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let inner = private.path().join("t");
        std::fs::create_dir(&inner).unwrap();
        assert_eq!(reachable_base(&inner), Path::new("/tmp"));
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        if reachable_base(private.path()) == private.path() {
            assert_eq!(reachable_base(&inner), inner);
        }
    }

    #[test]
    fn runner_hides_its_proc_entries_once_it_runs_code() {
        let o = python("print(1)\n", short(), Arc::default()).expect("returns");
        assert_eq!(o.exit, Some(0), "{o:?}");
        #[cfg(target_os = "linux")]
        assert_eq!(nix::sys::prctl::get_dumpable(), Ok(false));
    }

    #[test]
    fn secrets_of_runners_environment_are_redacted_from_output() {
        let vars = [
            ("OPENAI_API_KEY", "sk-abcdefgh12345"),
            ("GH_TOKEN", "ghp_zzzzzzzz"),
            ("PATH", "/usr/bin:/bin"),
            ("SHORT_KEY", "abc"),
        ]
        .map(|(k, v)| (k.into(), v.into()));
        let s = secrets_in(vars.into_iter());
        assert_eq!(s, ["sk-abcdefgh12345", "ghp_zzzzzzzz"]);
        assert_eq!(
            redact("key=sk-abcdefgh12345 path=/usr/bin:/bin".into(), &s),
            "key=[redacted] path=/usr/bin:/bin"
        );
    }

    #[test]
    fn mount_points_are_read_as_mountinfo_escapes_them() {
        assert_eq!(unescape_mount_point("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape_mount_point("/plain\\04"), "/plain\\04");
        assert!(mount_points().contains(&"/".to_string()));
    }

    #[test]
    fn the_process_limit_of_runners_own_user_counts_its_other_processes() {
        // This test process alone has at least its own thread.
        assert!(own_tasks() >= 1);
    }
}
