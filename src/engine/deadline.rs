//! A deadline that llama.cpp's abort callback reads for the price of one atomic load: a
//! watcher thread raises a flag when the deadline passes.
//!
//! ggml calls the abort callback after every graph node (about 500 per generated token for a
//! 135M model), with the other compute threads waiting at a barrier; reading the clock there
//! would cost ~25 µs per token, more than the rest of runner's per-token work. The thread is
//! started the first time a deadline is set, so contexts that never get one (`runner bench`)
//! have none.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the watcher thread and the abort callback share.
#[derive(Debug, Default)]
struct Shared {
    /// True once the current deadline has passed; all the callback reads.
    expired: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    at: Option<Instant>,
    quit: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An optional deadline, with its watcher thread once one was set; `Drop` stops the thread.
#[derive(Debug, Default)]
pub(super) struct Deadline {
    shared: Arc<Shared>,
    at: Option<Instant>,
    watcher: Option<JoinHandle<()>>,
}

impl Deadline {
    /// Sets or (with `None`) removes the deadline. Should the watcher thread fail to start,
    /// only [`Deadline::passed`] sees the deadline, and decode calls are not interrupted.
    pub(super) fn set(&mut self, at: Option<Instant>) {
        self.at = at;
        if at.is_some() && self.watcher.is_none() {
            let shared = Arc::clone(&self.shared);
            self.watcher = std::thread::Builder::new()
                .name("runner-deadline".into())
                .spawn(move || watch(&shared))
                .ok();
        }
        let mut state = self.shared.lock();
        state.at = at;
        let passed = at.is_some_and(|t| Instant::now() >= t);
        self.shared.expired.store(passed, Ordering::Relaxed);
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Whether the deadline has passed (reads the clock).
    pub(super) fn passed(&self) -> bool {
        self.at.is_some_and(|t| Instant::now() >= t)
    }

    /// The pointer to register as the abort callback's data, valid while `self` lives.
    pub(super) fn callback_data(&self) -> *mut c_void {
        Arc::as_ptr(&self.shared).cast_mut().cast()
    }
}

/// Raises `expired` when the deadline passes; sleeps otherwise.
fn watch(shared: &Shared) {
    let mut state = shared.lock();
    while !state.quit {
        let left = state
            .at
            .map(|at| at.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            shared.expired.store(true, Ordering::Relaxed);
        }
        state = match left.filter(|l| !l.is_zero()) {
            Some(left) => {
                let waited = shared.wake.wait_timeout(state, left);
                waited.map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0)
            }
            None => shared
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// llama.cpp's abort callback: true once the deadline behind `data` has passed, or the user
/// interrupted the run. It may run on a ggml worker thread, hence the atomics.
///
/// # Safety
///
/// `data` must be null or the pointer [`Deadline::callback_data`] returned, of a `Deadline`
/// that outlives every call.
pub(super) unsafe extern "C" fn abort_callback(data: *mut c_void) -> bool {
    if data.is_null() {
        return false;
    }
    // SAFETY: `data` comes from `Deadline::callback_data` of the `Deadline` a `Context` owns;
    // the context frees its llama.cpp context (ending all calls of this callback) before the
    // `Deadline` and its `Shared` are dropped.
    let expired = unsafe { &*data.cast::<Shared>() }
        .expired
        .load(Ordering::Relaxed);
    expired || crate::util::interrupt::requested()
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.shared.lock().quit = true;
        self.shared.wake.notify_one();
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn raised(d: &Deadline) -> bool {
        // SAFETY: the data pointer is `d`'s own, alive for this call.
        unsafe { abort_callback(d.callback_data()) }
    }

    #[test]
    fn the_flag_rises_when_the_deadline_passes() {
        let mut d = Deadline::default();
        assert!(!raised(&d) && !d.passed());
        let at = Instant::now() + Duration::from_millis(300);
        d.set(Some(at));
        let (early, passed) = (raised(&d), d.passed());
        // Unless this thread was held up past the deadline itself.
        if Instant::now() < at {
            assert!(!early && !passed);
        }
        let t = Instant::now();
        while !raised(&d) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(raised(&d) && d.passed());
        d.set(None);
        assert!(!raised(&d) && !d.passed());
        d.set(Some(Instant::now()));
        assert!(raised(&d), "a deadline already passed is raised at once");
        d.set(Some(Instant::now() + Duration::from_secs(3600)));
        assert!(!raised(&d));
    }
}
