//! The process-wide "stop now" flag: set when the user interrupts a run (Ctrl-C, SIGTERM), read
//! between requests, inside llama.cpp's decode calls (its abort callback) and between the reads
//! of a streamed answer, so that a run stops within moments and keeps what it recorded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks everything running to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
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

/// A file being written under a partial name: while this lives, a forced exit (a second
/// Ctrl-C) removes it ([`remove_partials`]); the writer itself renames or removes it as usual.
pub struct Partial(PathBuf);

impl Partial {
    pub fn new(path: &Path) -> Partial {
        partials().push(path.to_path_buf());
        Partial(path.to_path_buf())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        partials().retain(|p| p != &self.0);
    }
}

/// Removes every partial file still being written: the last thing a forced exit does.
pub fn remove_partials() {
    for p in partials().iter() {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_exit_removes_the_partial_files_still_being_written_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let (writing, done) = (
            dir.path().join("a.partial-1"),
            dir.path().join("b.partial-1"),
        );
        std::fs::write(&writing, "half").unwrap();
        std::fs::write(&done, "renamed away").unwrap();
        let _writing = Partial::new(&writing);
        drop(Partial::new(&done));
        remove_partials();
        assert!(!writing.exists(), "the file still being written is removed");
        assert!(done.exists(), "a file whose writer finished is left alone");
    }
}
