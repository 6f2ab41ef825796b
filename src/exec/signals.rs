//! Ctrl-C (SIGINT) and SIGTERM during a run: the first one asks the run to stop (the running
//! request ends within moments, a child cell is stopped, what was recorded stays); a second one
//! ends the process at once, removing the partial file of a model being written.

use std::sync::atomic::{AtomicBool, Ordering};

/// Installs the handler once per process. Without it (the handler could not be installed) a
/// signal ends the process as usual.
pub fn install() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let _ = ctrlc::set_handler(|| {
        if crate::util::interrupt::requested() {
            // Code running in the sandbox would outlive runner: it goes first.
            crate::grade::sandbox::stop_all();
            crate::util::interrupt::remove_partials();
            std::process::exit(130);
        }
        crate::util::interrupt::request();
        super::child::stop_running();
    });
}
