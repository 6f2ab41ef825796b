//! The process-wide "stop now" flag: set when the user interrupts a run (Ctrl-C, SIGTERM), read
//! between requests, inside llama.cpp's decode calls (its abort callback) and between the reads
//! of a streamed answer, so that a run stops within moments and keeps what it recorded.

use std::sync::atomic::{AtomicBool, Ordering};

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
