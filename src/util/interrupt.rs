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
