//! The process-wide "stop now" flag: set when the user interrupts a run (Ctrl-C, SIGTERM), read
//! between requests, inside llama.cpp's decode calls (its abort callback) and between the reads
//! of a streamed answer, so that a run stops within moments and keeps what it recorded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks everything running to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Sleeps until `end`, waking every `poll` to see whether `stop` says to stop; whether it slept
/// until `end`.
pub fn sleep_until(end: Instant, poll: Duration, stop: impl Fn() -> bool) -> bool {
    loop {
        if stop() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(poll));
    }
}

/// A writer that stops with an error once a stop is asked for, so that a long file write (a
/// model of many GB) ends within moments and its writer removes the partial file.
pub struct Stoppable<W>(pub W);

impl<W: std::io::Write> std::io::Write for Stoppable<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if requested() {
            return Err(std::io::Error::other("interrupted"));
        }
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partials() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIALS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file written under a partial name beside its final path (`<out>.partial-<pid>@<host>`):
/// removed when dropped unless renamed into place (a failed or interrupted write leaves nothing
/// behind), and by a forced exit (a second Ctrl-C, [`remove_partials`]) while it lives. The
/// host tells apart processes of one id on machines (or containers) that share a directory.
pub struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Partial {
    pub fn beside(out: &Path) -> Partial {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".partial-{}@{}", std::process::id(), host()));
        let path = out.with_file_name(name);
        partials().push(path.clone());
        Partial { path, kept: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the partial file afresh: what a process of the same id left there is removed,
    /// and a link planted at its name is never followed (the file must be new).
    pub fn create(&self) -> std::io::Result<std::fs::File> {
        super::fs::create_new(&self.path)
    }

    /// Renames the finished file to `out`, where it stays.
    pub fn rename_to(mut self, out: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, out)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        partials().retain(|p| p != &self.path);
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// This machine's host name as it goes into a file name ([`file_host`]), or `localhost` when
/// it cannot be read.
pub fn host() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    file_host(&name.filter(|h| !h.is_empty()).unwrap_or("localhost".into()))
}

/// The most characters of a host name in a partial file's name: with the output's own name and
/// `.partial-<pid>@`, the whole stays within the 255 bytes a file name may have.
const HOST_CHARS: usize = 32;

/// A host name as it goes into a file name: a character other than a letter, a digit, `-` or
/// `.` written `_`, and a name longer than 32 characters cut to 32: its first 23, `-` and 8 hex
/// digits of the whole name's SHA-256, so that hosts whose names differ only past the cut (the
/// pods of one deployment) keep apart and never take each other's partial files for their own.
fn file_host(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                true => c,
                false => '_',
            },
        )
        .collect();
    if safe.len() <= HOST_CHARS {
        return safe;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(safe.as_bytes());
    format!("{}-{}", &safe[..HOST_CHARS - 9], hex::encode(&digest[..4]))
}

/// Who writes the partial file of name `name` (`….partial-<pid>@<host>`): the process id, and
/// whether it runs on this host (its host is this one's as [`host`] writes it, cut to 32
/// characters; a name without a host is one of this host's).
pub fn partial_owner(name: &str) -> Option<(u32, bool)> {
    let (_, owner) = name.rsplit_once(".partial-")?;
    let (pid, here) = match owner.split_once('@') {
        Some((pid, h)) => (pid, h == host()),
        None => (owner, true),
    };
    Some((pid.parse().ok()?, here))
}

/// A private working directory (`<dir>/<prefix>XXXXXX`, such as a model fetch's downloaded
/// wheels): removed with all it holds when dropped, and by a forced exit (a second Ctrl-C,
/// [`remove_partials`]) while it lives.
pub struct PartialDir {
    path: PathBuf,
}

impl PartialDir {
    /// Makes a new directory of a name no other has, in `dir`.
    pub fn new_in(dir: &Path, prefix: &str) -> std::io::Result<PartialDir> {
        let path = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(dir)?
            .keep();
        partials().push(path.clone());
        Ok(PartialDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        // Removed before it is let go, so that a forced exit meanwhile removes it too.
        let _ = std::fs::remove_dir_all(&self.path);
        partials().retain(|p| p != &self.path);
    }
}

/// Removes every partial file still being written, and every working directory still in use:
/// the last thing a forced exit does.
pub fn remove_partials() {
    for p in partials().iter() {
        remove_partial(p);
    }
}

/// Removes a partial file, or a working directory with all it holds.
fn remove_partial(path: &Path) {
    let _ = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_goes_unless_renamed_and_a_forced_exit_removes_those_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
        let writing = Partial::beside(&a);
        assert_eq!(
            writing.path(),
            dir.path()
                .join(format!("a.partial-{}@{}", std::process::id(), host()))
        );
        let name = writing.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(partial_owner(name), Some((std::process::id(), true)));
        assert_eq!(partial_owner("a.partial-12@elsewhere"), Some((12, false)));
        assert_eq!(partial_owner("a.partial-12"), Some((12, true)));
        assert_eq!(partial_owner("a.gguf"), None);
        assert!(host().len() <= HOST_CHARS, "{}", host());
        std::fs::write(writing.path(), "half").unwrap();
        let renamed = Partial::beside(&b);
        std::fs::write(renamed.path(), "whole").unwrap();
        renamed.rename_to(&b).unwrap();
        let failed = Partial::beside(&c);
        std::fs::write(failed.path(), "broken").unwrap();
        let failed_path = failed.path().to_path_buf();
        drop(failed);
        assert!(!failed_path.exists(), "a write that failed leaves nothing");
        std::fs::write(&failed_path, "another process's").unwrap();
        // What a forced exit removes, of this test's files only: remove_partials itself would
        // remove the partial files and directories of tests running beside this one.
        for p in partials().iter().filter(|p| p.starts_with(dir.path())) {
            remove_partial(p);
        }
        assert!(
            !writing.path().exists(),
            "the file still being written is removed"
        );
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "whole");
        assert!(failed_path.exists(), "a file no writer holds is left alone");
    }

    #[test]
    fn a_long_host_name_is_cut_to_32_characters_and_kept_apart() {
        assert_eq!(file_host("box-1.example"), "box-1.example");
        assert_eq!(file_host("a b/c"), "a_b_c");
        let exact = "h".repeat(HOST_CHARS);
        assert_eq!(file_host(&exact), exact);
        // Two pods of one deployment: the same first 60 characters.
        let stem = "runner-benchmark-deployment-".repeat(3);
        let (one, two) = (format!("{stem}abcde"), format!("{stem}fghij"));
        let (a, b) = (file_host(&one), file_host(&two));
        assert_eq!(a.chars().count(), HOST_CHARS, "{a}");
        assert!(a.starts_with(&stem[..HOST_CHARS - 9]), "{a}");
        assert_ne!(a, b);
        // The same name always cuts the same way (another process of this host finds its own).
        assert_eq!(file_host(&one), a);
        // Non-ASCII characters count once each, as `_`.
        let wide = "é".repeat(40);
        assert_eq!(file_host(&wide).chars().count(), HOST_CHARS);
    }

    #[test]
    fn a_working_directory_goes_when_dropped_or_by_a_forced_exit() {
        let dir = tempfile::tempdir().unwrap();
        let done = PartialDir::new_in(dir.path(), ".tmp-a-").unwrap();
        let done_path = done.path().to_path_buf();
        assert!(done_path.is_dir());
        assert!(done_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-a-"));
        std::fs::create_dir(done_path.join("wheels")).unwrap();
        std::fs::write(done_path.join("wheels/x.whl"), "wheel").unwrap();
        // What a forced exit removes while it lives (remove_partials itself is not called
        // here: it would remove the partial files of tests running beside this one).
        assert!(partials().contains(&done_path));
        drop(done);
        assert!(!done_path.exists(), "a dropped working directory goes");
        assert!(!partials().contains(&done_path));
        let busy = PartialDir::new_in(dir.path(), ".tmp-b-").unwrap();
        std::fs::create_dir(busy.path().join("wheels")).unwrap();
        std::fs::write(busy.path().join("wheels/part"), "half").unwrap();
        remove_partial(busy.path());
        assert!(
            !busy.path().exists(),
            "a forced exit removes it with all it holds"
        );
        let file = dir.path().join("out.partial-1");
        std::fs::write(&file, "half").unwrap();
        remove_partial(&file);
        assert!(!file.exists());
    }
}
