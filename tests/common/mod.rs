//! Shared helpers of the integration tests: the built binary and the real test model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The runner binary cargo built for these tests.
pub fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.env_remove("RUST_LOG");
    c
}

/// Runs runner with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    runner().args(args).output().expect("runner starts")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The real SmolLM2-135M model, fetched through `runner models fetch` once per test binary
/// (or taken from $RUNNER_TEST_MODEL).
pub fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        if let Ok(p) = std::env::var("RUNNER_TEST_MODEL") {
            return PathBuf::from(p);
        }
        let o = run(&["models", "fetch", "smollm2-135m"]);
        assert!(
            o.status.success(),
            "fetching the test model failed: {}",
            stderr(&o)
        );
        let path = PathBuf::from(stdout(&o).trim());
        assert!(
            path.is_file(),
            "fetch printed {path:?}, which is not a file"
        );
        path
    })
}

/// Serialises tests that run llama.cpp: two at once on a small machine starve each other.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The non-empty lines of a text.
pub fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Runs `runner bench -m <test model> --no-progress` followed by the whitespace-separated
/// `args`.
pub fn bench(args: &str) -> Output {
    let m = model().to_str().expect("a UTF-8 path").to_string();
    let mut v = vec!["bench", "-m", m.as_str(), "--no-progress"];
    v.extend(args.split_whitespace());
    run(&v)
}
pub mod fixture;
