//! The nightly workflow passes actionlint (run through scripts/actionlint.sh), and the linter
//! really lints: a broken copy of the workflow fails.

use std::path::Path;
use std::process::Command;

fn actionlint(file: &Path) -> std::process::Output {
    Command::new("scripts/actionlint.sh")
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("scripts/actionlint.sh runs")
}

#[test]
fn nightly_workflow_passes_actionlint() {
    let wf = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/nightly.yml");
    let o = actionlint(&wf);
    assert!(
        o.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(&wf).unwrap();
    for needed in [
        "schedule:",
        "workflow_dispatch:",
        "macos-latest",
        "scripts/nightly.sh",
        "actions/upload-artifact",
        // The paired check: the base is the last successful nightly (else the parent commit),
        // built in its own worktree and target directory.
        "scripts/nightly.sh --ab",
        "gh run list --workflow nightly.yml",
        "HEAD~1",
        "git worktree add",
        "target-base",
        // The committed-baseline mode stays available.
        "env.MODE == 'baseline'",
        // Real Ollama on macOS, never the verdict.
        "scripts/nightly.sh --ollama",
        "continue-on-error: true",
    ] {
        assert!(text.contains(needed), "the workflow lacks {needed}");
    }
    let script =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/nightly.sh"))
            .unwrap();
    for needed in [
        "check --ab",
        "brew install ollama",
        "ollama serve",
        "ollama pull",
        "::warning::",
        "compare -m",
        "--backend \"native,ollama:",
        "check --baseline",
    ] {
        assert!(script.contains(needed), "scripts/nightly.sh lacks {needed}");
    }
    let o = Command::new("bash")
        .args(["-n", "scripts/nightly.sh"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("nightly.yml");
    let text = text.replace("${{ matrix.class }}", "${{ matrix.klass }}");
    std::fs::write(&broken, text).unwrap();
    let o = actionlint(&broken);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("klass"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
