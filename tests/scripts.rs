//! The measuring scripts run again without losing or refusing anything: an output already
//! there is skipped with a note, before anything is built for it, and the rest is measured.
//! A stand-in for the release binary notes each call and makes the file its `-o` names.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `scripts/NAME` with OUT under `dir` and the stand-in runner; its stdout and the
/// runner calls it made, one line each.
fn run_script(name: &str, dir: &Path) -> (String, Vec<String>) {
    let release = dir.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    let bin = release.join("runner");
    std::fs::write(
        &bin,
        "#!/usr/bin/env bash\n\
         printf '%s\\n' \"$*\" >> \"$RUNNER_STUB_LOG\"\n\
         while [ $# -gt 0 ]; do\n\
         \x20 if [ \"$1\" = -o ]; then : > \"$2\"; fi\n\
         \x20 shift\n\
         done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("calls.log");
    let _ = std::fs::remove_file(&log);
    let o = Command::new("bash")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(name),
        )
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("OUT", out(dir))
        .env("RUNNER_CACHE_DIR", dir.join("cache"))
        .env("RUNNER_STUB_LOG", &log)
        .env("TMPDIR", dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{name}: {stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (stdout, calls.lines().map(str::to_string).collect())
}

fn out(dir: &Path) -> PathBuf {
    dir.join("out")
}

fn skip_line(file: &Path) -> String {
    format!(
        "skip {}: already there (move it away to measure it again)",
        file.display()
    )
}

#[test]
fn guide_records_skips_the_records_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A first run measures every entry.
    let (_, calls) = run_script("guide-records.sh", d);
    assert_eq!(calls.len(), 11, "{calls:?}");
    // A second one measures none, saying so once a file.
    let (stdout, calls) = run_script("guide-records.sh", d);
    assert!(calls.is_empty(), "{calls:?}");
    let skipped = stdout.lines().filter(|l| l.starts_with("skip ")).count();
    assert_eq!(skipped, 11, "{stdout}");
    let full = out(d).join("synthetic-llama-2-7b-q4_0.json");
    assert!(stdout.contains(&skip_line(&full)), "{stdout}");
    // One moved away (a full-size entry, then a layer-scaled one) is measured again, alone.
    let scaled = out(d).join("synthetic-mixtral-8x7b-q4_k_m-layers.json");
    std::fs::remove_file(&full).unwrap();
    std::fs::remove_file(&scaled).unwrap();
    let (stdout, calls) = run_script("guide-records.sh", d);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].ends_with(&format!("-o {}", full.display())),
        "{calls:?}"
    );
    assert!(calls[1].contains("--layers 4,8"), "{calls:?}");
    assert!(
        calls[1].ends_with(&format!("-o {}", scaled.display())),
        "{calls:?}"
    );
    assert!(!stdout.contains(&skip_line(&full)), "{stdout}");
    assert!(full.exists() && scaled.exists());
}

#[test]
fn synth_figures_skips_what_is_there_before_building_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The full-size bench is there: its 8B model is not built.
    std::fs::create_dir_all(out(d)).unwrap();
    let full = out(d).join("llama-3.1-8b-full.json");
    std::fs::write(&full, "{}").unwrap();
    let (stdout, calls) = run_script("synth-figures.sh", d);
    assert!(stdout.contains(&skip_line(&full)), "{stdout}");
    assert!(
        calls.iter().all(|c| !c.starts_with("models synth")),
        "{calls:?}"
    );
    // The layer-scaled bench, three profiles and the headline bench.
    assert_eq!(calls.len(), 5, "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("profile ")).count(),
        3
    );
    for name in [
        "llama-3.1-8b-layers.json",
        "qwen3-30b-a3b-x128-profile.txt",
        "qwen3.6-headline.json",
    ] {
        assert!(out(d).join(name).exists(), "{name}");
    }
    // Run again, it measures nothing.
    let (stdout, calls) = run_script("synth-figures.sh", d);
    assert!(calls.is_empty(), "{calls:?}");
    let skipped = stdout.lines().filter(|l| l.starts_with("skip ")).count();
    assert_eq!(skipped, 6, "{stdout}");
}
