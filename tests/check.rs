//! `runner check` on real records: two repeated runs of the same build are not a regression;
//! the same samples slowed by 10 % are. Bad input is a one-line error.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn bench_to(path: &Path) {
    let _g = heavy();
    let o = bench(&format!(
        "-p 16 -n 24 -r 5 --format json -o {}",
        path.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
}

fn check(baseline: &Path, current: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check",
        "--baseline",
        baseline.to_str().unwrap(),
        "--current",
        current.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The sweep records of `from` (JSON Lines) with every rate multiplied by `factor` and every
/// time divided by it (the same run, `1 - factor` slower), recorded as measured with
/// `busy_cores` of other load.
fn slowed(from: &Path, to: &Path, factor: f64, busy_cores: f64) {
    let mut out = String::new();
    for line in std::fs::read_to_string(from).unwrap().lines() {
        let mut r: Value = serde_json::from_str(line).unwrap();
        r["load"]["busy"] = false.into();
        r["load"]["before_other_cores"] = busy_cores.into();
        r["load"]["during_other_cores_mean"] = busy_cores.into();
        if let Some(v) = r["decode_tps"].as_f64() {
            r["decode_tps"] = (v * factor).into();
        }
        for k in ["ttft_ms", "e2e_ms"] {
            if let Some(v) = r[k].as_f64() {
                r[k] = (v / factor).into();
            }
        }
        out.push_str(&serde_json::to_string(&r).unwrap());
        out.push('\n');
    }
    std::fs::write(to, out).unwrap();
}

#[test]
fn repeated_bench_runs_are_not_a_regression() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    bench_to(&a);
    bench_to(&b);
    let o = check(&a, &b, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("gen_tps") && out.contains("0 slower"), "{out}");
}

#[test]
fn sweeps_compare_prompt_by_prompt_and_baselines_can_be_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let results = |n: &str| -> PathBuf { dir.path().join(n) };
    for name in ["one", "two"] {
        let _g = heavy();
        let o = run(&[
            "sweep",
            "-m",
            model().to_str().unwrap(),
            "--quant",
            "source",
            "--scenario",
            "short-response",
            "--limit",
            "4",
            "--no-progress",
            "--results",
            results(name).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let baseline = dir.path().join("baseline.jsonl");
    let o = check(&baseline, &results("one"), &["--update-baseline"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("wrote 4 record(s)"), "{}", stdout(&o));
    let o = check(&baseline, &results("two"), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let metrics: Vec<&str> = rows.iter().map(|r| r["metric"].as_str().unwrap()).collect();
    assert_eq!(metrics, ["e2e_ms", "ttft_ms"], "{rows:?}");
    for r in rows {
        assert_eq!(r["ratio"]["paired"], true, "{r}");
        // Four prompts; one that timed out in either run is left out of the pairs.
        let n = r["ratio"]["n"].as_u64().unwrap();
        assert!((3..=4).contains(&n), "{r}");
        assert!(r["verdict"] != "slower", "{r}");
    }

    // The same records slowed by 10 %: every series is slower, prompt by prompt.
    let (quiet, slow) = (
        dir.path().join("quiet.jsonl"),
        dir.path().join("slow.jsonl"),
    );
    slowed(&baseline, &quiet, 1.0, 0.0);
    slowed(&baseline, &slow, 0.9, 0.0);
    let o = check(&quiet, &slow, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("slower beyond the 5.0% tolerance"),
        "{}",
        stderr(&o)
    );
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["verdict"], "slower", "{row}");
        let speed = row["ratio"]["speed"].as_f64().unwrap();
        assert!((speed - 0.9).abs() < 1e-9, "{row}");
    }
    // A tolerance wider than the slowdown lets it pass.
    assert_eq!(
        check(&quiet, &slow, &["--tolerance", "15%"]).status.code(),
        Some(0)
    );
    // Measured while other processes kept a core busy: reported, not a failure.
    let busy = dir.path().join("busy.jsonl");
    slowed(&baseline, &busy, 0.9, 1.0);
    let o = check(&quiet, &busy, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("slower, busy machine"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "not a record\n").unwrap();
    let missing = dir.path().join("missing.json");
    for (args, code) in [
        (
            vec![
                "check",
                "--baseline",
                missing.to_str().unwrap(),
                "--current",
                empty.to_str().unwrap(),
            ],
            2,
        ),
        (
            vec![
                "check",
                "--baseline",
                empty.to_str().unwrap(),
                "--current",
                missing.to_str().unwrap(),
            ],
            2,
        ),
        (
            vec![
                "check",
                "--baseline",
                empty.to_str().unwrap(),
                "--current",
                empty.to_str().unwrap(),
            ],
            2,
        ),
        (vec!["check", "--baseline", "x", "--tolerance", "-3%"], 2),
        (vec!["check", "--baseline", "x", "--tolerance", "abc"], 2),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert_eq!(lines(&stderr(&o)).len(), 1, "{args:?}: {}", stderr(&o));
    }
}
