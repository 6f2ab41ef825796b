//! llama.cpp's log: silent unless `--verbose`, with the last warnings kept to explain failures;
//! and ggml's aborts (a failed `GGML_ASSERT`), which end runner with one line of error.

use llama_cpp_sys_2 as sys;
use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CStr};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static VERBOSE: AtomicBool = AtomicBool::new(false);
static RECENT: Mutex<VecDeque<(sys::ggml_log_level, String)>> = Mutex::new(VecDeque::new());
/// Everything the capturing thread logs while [`capture`] runs.
static CAPTURED: Mutex<Option<(std::thread::ThreadId, String)>> = Mutex::new(None);
/// Warnings and errors kept for error messages.
const KEEP: usize = 16;

/// Routes llama.cpp's and ggml's log through runner: printed to stderr when `verbose`,
/// otherwise dropped except the last few warnings and errors.
pub fn install(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    // SAFETY: `log_callback` is a plain `extern "C"` function valid for the whole program and
    // ignores its user-data pointer, so passing null is fine.
    unsafe { sys::llama_log_set(Some(log_callback), std::ptr::null_mut()) };
    // SAFETY: `abort_callback` is a plain `extern "C"` function valid for the whole program;
    // ggml calls it with its message just before it would abort.
    unsafe { sys::ggml_set_abort_callback(Some(abort_callback)) };
}

/// ggml is about to abort the process (a failed `GGML_ASSERT`, most often on a model file
/// whose metadata llama.cpp's loader asserts on): one line of error instead of a debugger's
/// backtrace, the partial files of models being written removed, and exit status 1 instead
/// of SIGABRT. The process cannot go on: ggml's state is not to be trusted past this point.
extern "C" fn abort_callback(message: *const c_char) {
    let text = match message.is_null() {
        true => "no message".into(),
        // SAFETY: ggml passes a NUL-terminated buffer that lives for the duration of the call.
        false => unsafe { CStr::from_ptr(message) }.to_string_lossy(),
    };
    let _ = writeln!(
        std::io::stderr(),
        "error: llama.cpp aborted: {}",
        abort_words(&text)
    );
    crate::util::interrupt::remove_partials();
    // SAFETY: `_exit` ends the process at once, without running exit handlers or destructors,
    // which could touch ggml's state or wait on threads still computing; nothing returns.
    unsafe { nix::libc::_exit(1) }
}

/// An abort message without the directories of its source file: `<path>/llama-model.cpp:1422:
/// GGML_ASSERT(...) failed` reads `llama-model.cpp:1422: GGML_ASSERT(...) failed`; on one line.
fn abort_words(message: &str) -> String {
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let source_end = message.find(": ").unwrap_or(0);
    match message[..source_end].rfind('/') {
        Some(i) => message[i + 1..].to_string(),
        None => message,
    }
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
    if let Ok(mut captured) = CAPTURED.lock() {
        // Only the capturing thread's own lines: others' would interleave with them.
        if let Some((id, buf)) = captured.as_mut() {
            if *id == std::thread::current().id() {
                buf.push_str(&text);
            }
        }
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
            if let Some((_, last)) = recent.back_mut() {
                last.push_str(line);
            }
            return;
        }
        if !line.is_empty() {
            if recent.len() == KEEP {
                recent.pop_front();
            }
            recent.push_back((level, line.to_string()));
        }
    }
}

/// Held around every `llama_model_quantize` call, so that llama.cpp's quantizer (and the log
/// lines it writes in several pieces) runs once at a time in the process, as in a sweep, even
/// where tests run in threads. Warnings left from earlier calls (and from a quantization that
/// held it meanwhile) are dropped once it is held, so that a failure reports its own reason.
pub(crate) fn quantizer() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    let held = ONE.lock().unwrap_or_else(PoisonError::into_inner);
    let _ = last_reason();
    held
}

/// Runs `f` and returns what llama.cpp logged meanwhile (at every level), for the few results
/// llama.cpp reports only in its log (a dry-run quantization's per-tensor types).
pub(crate) fn capture<T>(f: impl FnOnce() -> T) -> (T, String) {
    // One capture at a time: a second would take the first one's buffer.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(mut c) = CAPTURED.lock() {
        *c = Some((std::thread::current().id(), String::new()));
    }
    let out = f();
    let text = CAPTURED
        .lock()
        .ok()
        .and_then(|mut c| c.take())
        .map(|(_, t)| t)
        .unwrap_or_default();
    (out, text)
}

/// The most telling line llama.cpp logged since the last call, for appending to an error
/// message: its first error (the cause; later errors wrap it), else its last warning, without
/// the `function_name: ` prefixes.
pub fn last_reason() -> Option<String> {
    let recent = RECENT
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    let line = recent
        .iter()
        .find(|(level, _)| *level == sys::GGML_LOG_LEVEL_ERROR)
        .or_else(|| recent.back())?;
    Some(strip_prefixes(&line.1))
}

/// Drops leading `name: ` parts made of identifier characters, e.g.
/// `llama_model_load: error loading model: unknown model architecture: 'x'` becomes
/// `error loading model: unknown model architecture: 'x'`.
fn strip_prefixes(line: &str) -> String {
    let mut rest = line.trim();
    while let Some((head, tail)) = rest.split_once(": ") {
        let ident = !head.is_empty() && head.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident || tail.is_empty() {
            break;
        }
        rest = tail;
    }
    rest.to_string()
}

#[cfg(test)]
mod tests {
    use super::{abort_words, strip_prefixes};

    #[test]
    fn abort_messages_lose_their_directories_and_line_breaks() {
        assert_eq!(
            abort_words("/src/llama.cpp/src/llama-model.cpp:1422: GGML_ASSERT(x != y) failed"),
            "llama-model.cpp:1422: GGML_ASSERT(x != y) failed"
        );
        assert_eq!(
            abort_words("ggml.c:9: fatal\nerror"),
            "ggml.c:9: fatal error"
        );
        assert_eq!(abort_words("a/b: c/d"), "b: c/d");
    }

    #[test]
    fn function_prefixes_are_dropped() {
        assert_eq!(
            strip_prefixes(
                "llama_model_load: error loading model: unknown model architecture: 'x'"
            ),
            "error loading model: unknown model architecture: 'x'"
        );
        assert_eq!(strip_prefixes("plain message"), "plain message");
    }
}
