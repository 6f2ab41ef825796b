//! llama.cpp's log: silent unless `--verbose`, with the last warnings kept to explain failures.

use llama_cpp_sys_2 as sys;
use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CStr};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static VERBOSE: AtomicBool = AtomicBool::new(false);
static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
/// Warnings and errors kept for error messages.
const KEEP: usize = 16;

/// Routes llama.cpp's and ggml's log through runner: printed to stderr when `verbose`,
/// otherwise dropped except the last few warnings and errors.
pub fn install(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    // SAFETY: `log_callback` is a plain `extern "C"` function valid for the whole program and
    // ignores its user-data pointer, so passing null is fine.
    unsafe { sys::llama_log_set(Some(log_callback), std::ptr::null_mut()) };
}

extern "C" fn log_callback(level: sys::ggml_log_level, text: *const c_char, _user: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string that lives for the duration of the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if VERBOSE.load(Ordering::Relaxed) {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    let keep = matches!(
        level,
        sys::GGML_LOG_LEVEL_WARN | sys::GGML_LOG_LEVEL_ERROR | sys::GGML_LOG_LEVEL_CONT
    );
    if !keep {
        return;
    }
    if let Ok(mut recent) = RECENT.lock() {
        let line = text.trim_end();
        if level == sys::GGML_LOG_LEVEL_CONT {
            if let Some(last) = recent.back_mut() {
                last.push_str(line);
            }
            return;
        }
        if !line.is_empty() {
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back(line.to_string());
        }
    }
}

/// Takes the warnings and errors llama.cpp logged since the last call.
pub fn take_recent() -> Vec<String> {
    RECENT
        .lock()
        .map(|mut r| r.drain(..).collect())
        .unwrap_or_default()
}

/// The most telling line llama.cpp logged since the last call (its last error, else its last
/// warning), for appending to an error message.
pub fn last_reason() -> Option<String> {
    let recent = take_recent();
    recent
        .iter()
        .rev()
        .find(|l| l.contains("error") || l.contains("failed"))
        .or_else(|| recent.last())
        .map(|l| l.trim().to_string())
}
