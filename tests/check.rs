//! `runner check` on real records: a run compared with itself is unchanged; the same samples
//! slowed by a known factor are slower. Bad input is a one-line error.

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

/// The bench records of `from` (a JSON array) with every sample made equal to the first one
/// (so the comparison has no noise to weigh), its rates multiplied by `factor` and its TTFT
/// divided by it (the same run, `1 - factor` slower), recorded as measured on an idle machine.
fn slowed_bench(from: &Path, to: &Path, factor: f64) {
    let mut records: Value = serde_json::from_str(&std::fs::read_to_string(from).unwrap()).unwrap();
    for r in records.as_array_mut().unwrap() {
        r["load"]["busy"] = false.into();
        for k in [
            "before_other_cores",
            "during_other_cores_mean",
            "during_other_cores_max",
        ] {
            r["load"][k] = 0.0.into();
        }
        let first = r["samples"][0].clone();
        for s in r["samples"].as_array_mut().unwrap() {
            for k in ["prompt_tps", "gen_tps"] {
                s[k] = (first[k].as_f64().unwrap() * factor).into();
            }
            s["ttft_ms"] = (first["ttft_ms"].as_f64().unwrap() / factor).into();
        }
    }
    std::fs::write(to, serde_json::to_string(&records).unwrap()).unwrap();
}

/// Verdicts by metric from `runner check --format json`.
fn verdicts(o: &std::process::Output) -> Vec<(String, String)> {
    let report: Value = serde_json::from_str(&stdout(o)).unwrap();
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            (s("metric"), s("verdict"))
        })
        .collect()
}

// Whether two real runs differ is a measurement, not a test: these compare one real run with
// itself and with a copy slowed by a known factor, so every verdict is determined.
#[test]
fn a_bench_run_is_unchanged_against_itself_and_slower_when_slowed() {
    let dir = tempfile::tempdir().unwrap();
    let (run, a, slow) = (
        dir.path().join("run.json"),
        dir.path().join("a.json"),
        dir.path().join("slow.json"),
    );
    bench_to(&run);
    slowed_bench(&run, &a, 1.0);
    let o = check(&run, &run, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = verdicts(&o);
    let metrics: Vec<&str> = v.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(metrics, ["gen_tps", "prompt_tps", "ttft_ms"], "{v:?}");
    assert!(v.iter().all(|(_, verdict)| verdict == "unchanged"), "{v:?}");

    slowed_bench(&a, &slow, 0.8);
    let o = check(&a, &slow, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        verdicts(&o).iter().all(|(_, v)| v == "slower"),
        "{}",
        stdout(&o)
    );
    // The text table says the same and names the model by its name, not its path.
    let o = check(&a, &slow, &[]);
    let out = stdout(&o);
    assert!(
        out.contains("3 slower") && out.contains("SmolLM2-135M"),
        "{out}"
    );
    assert!(!out.contains(&model().display().to_string()), "{out}");
}

#[test]
fn sweeps_compare_prompt_by_prompt_and_baselines_can_be_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let results = |n: &str| -> PathBuf { dir.path().join(n) };
    {
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
            results("one").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let baseline = dir.path().join("baseline.jsonl");
    let o = check(&baseline, &results("one"), &["--update-baseline"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("wrote 4 record(s)"), "{}", stdout(&o));
    let o = check(&baseline, &results("one"), &["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let metrics: Vec<&str> = rows.iter().map(|r| r["metric"].as_str().unwrap()).collect();
    assert_eq!(metrics, ["e2e_ms", "ttft_ms"], "{rows:?}");
    for r in rows {
        assert_eq!(r["ratio"]["paired"], true, "{r}");
        // Four prompts; one that timed out is left out of the pairs.
        let n = r["ratio"]["n"].as_u64().unwrap();
        assert!((3..=4).contains(&n), "{r}");
        assert_eq!(r["verdict"], "unchanged", "{r}");
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
    // A busy baseline excuses nothing, and writing one says so.
    let busy_base = dir.path().join("busy-base.jsonl");
    let o = check(&busy_base, &busy, &["--update-baseline"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("were measured on a busy machine"),
        "{}",
        stderr(&o)
    );
    let slower = dir.path().join("slower.jsonl");
    slowed(&baseline, &slower, 0.8, 0.0);
    let o = check(&busy_base, &slower, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn lines_left_out_are_counted_aloud() {
    let dir = tempfile::tempdir().unwrap();
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records/bench-smollm2.json");
    let records: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(bench).unwrap()).unwrap();
    let mut text: String = records.iter().map(|r| format!("{r}\n")).collect();
    text.push_str("{\"schema\":1,\"test\":NaN}\n");
    let mut later = records[0].clone();
    later["schema"] = 2.into();
    text.push_str(&format!("{later}\n"));
    let current = dir.path().join("current.jsonl");
    std::fs::write(&current, text).unwrap();
    let o = check(&current, &current, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("current.jsonl: 2 line(s) are not records this runner reads"),
        "{err}"
    );
}

/// Records whose figures cannot be true (a negative or astronomical decode rate) are left out
/// of the comparison, and the warning counts them and says why.
#[test]
fn records_with_figures_that_cannot_be_true_are_left_out_aloud() {
    let dir = tempfile::tempdir().unwrap();
    let sweep =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records/sweep-0ad6ba95c6e9.jsonl");
    let text = std::fs::read_to_string(&sweep).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[0]["decode_tps"] = (-5.0).into();
    lines[1]["decode_tps"] = 1e300.into();
    let current = dir.path().join("current.jsonl");
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&current, text).unwrap();
    let o = check(&sweep, &current, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "current.jsonl: 2 record(s) hold figures that cannot be true (the first: \
             decode_tps -5 is outside 0 to 1e8 tok/s); left out"
        ),
        "{err}"
    );
    assert!(!stdout(&o).contains("1e300"), "{}", stdout(&o));
}

#[test]
fn bad_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "not a record\n").unwrap();
    let missing = dir.path().join("missing.json");
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records/bench-smollm2.json");
    let [empty, missing, bench] = [&empty, &missing, &bench].map(|p| p.to_str().unwrap());
    let refused = |args: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(lines(&stderr(&o)).len(), 1, "{args:?}: {}", stderr(&o));
    };
    // A baseline or current file without records, and a busy threshold that is no count.
    for (baseline, current, extra) in [
        (missing, empty, None),
        (empty, missing, None),
        (empty, empty, None),
        (empty, bench, None),
        (bench, bench, Some("--busy-threshold=nan")),
        (bench, bench, Some("--busy-threshold=-1")),
    ] {
        let mut args = vec!["check", "--baseline", baseline, "--current", current];
        args.extend(extra);
        refused(&args);
    }
    refused(&["check", "--baseline", "x", "--tolerance", "-3%"]);
    refused(&["check", "--baseline", "x", "--tolerance", "abc"]);
}

#[test]
fn update_baseline_refuses_to_write_over_a_sweeps_results_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let sweep = dir.path().join("runs/sweep-0ad6ba95c6e9.jsonl");
    std::fs::create_dir_all(sweep.parent().unwrap()).unwrap();
    std::fs::copy(data.join("sweep-0ad6ba95c6e9.jsonl"), &sweep).unwrap();
    let before = std::fs::read(&sweep).unwrap();
    let o = check(&sweep, &data, &["--update-baseline"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(err.contains("is a sweep's results file"), "{err}");
    assert_eq!(
        std::fs::read(&sweep).unwrap(),
        before,
        "the file is left as it was"
    );
}

/// A baseline to write under a regular file is bad input, refused before any record is read.
#[test]
fn update_baseline_under_a_regular_file_is_refused_as_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, "hi").unwrap();
    let o = check(&plain.join("base.jsonl"), &data, &["--update-baseline"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(
        err.contains("cannot be written") && err.contains("not a directory"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "hi");
}

#[test]
fn a_baseline_stands_apart_from_the_current_records_and_is_replaced_only_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let runs = dir.path().join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    // A sweep's records under a name of the user's, with a line of another schema.
    let mine = runs.join("my-sweep.jsonl");
    let mut text = std::fs::read_to_string(data.join("sweep-0ad6ba95c6e9.jsonl")).unwrap();
    text.push_str("{\"schema\":99,\"kind\":\"future\"}\n");
    std::fs::write(&mine, &text).unwrap();
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, &text).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not records\n").unwrap();
    let refused = |baseline: &Path, current: &Path, extra: &[&str], why: &str| {
        let before = std::fs::read(baseline).ok();
        let o = check(baseline, current, extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", baseline.display());
        assert_eq!(lines(&err).len(), 1, "{err}");
        assert!(err.contains(why), "{err}");
        assert_eq!(std::fs::read(baseline).ok(), before, "left as it was");
    };
    let update = ["--update-baseline"];
    // Rewritten from itself, it would lose the line this runner does not read.
    refused(&mine, &mine, &update, "is among the --current records");
    // Inside the --current folder, its records would count as current ones.
    refused(&mine, &runs, &[], "is among the --current records");
    // A folder is not one baseline (its records could be the current ones themselves).
    refused(
        dir.path(),
        &mine,
        &[],
        "is a directory; --baseline takes one records file",
    );
    refused(
        &kept,
        &runs,
        &update,
        "holds 1 line(s) this runner does not read",
    );
    refused(&notes, &runs, &update, "is not a records file");
    // Other JSON beside the records (a note, a value in a bench array) would be lost too.
    let noted = dir.path().join("noted.jsonl");
    let sweep = std::fs::read_to_string(data.join("sweep-0ad6ba95c6e9.jsonl")).unwrap();
    std::fs::write(
        &noted,
        format!("{sweep}{{\"note\":\"kept by hand\"}}\n[1, 2]\n"),
    )
    .unwrap();
    refused(
        &noted,
        &runs,
        &update,
        "holds 2 line(s) this runner does not read",
    );
    let bench = dir.path().join("bench.json");
    let mut array: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("bench-smollm2.json")).unwrap())
            .unwrap();
    array.as_array_mut().unwrap().push(5.into());
    std::fs::write(&bench, array.to_string()).unwrap();
    refused(
        &bench,
        &runs,
        &update,
        "holds 1 line(s) this runner does not read",
    );
    refused(&runs, &data, &update, "is a directory");
    // A baseline this runner reads whole is replaced.
    let baseline = dir.path().join("baseline.jsonl");
    std::fs::copy(data.join("sweep-0ad6ba95c6e9.jsonl"), &baseline).unwrap();
    let o = check(&baseline, &runs, &update);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("wrote "), "{}", stdout(&o));
}

/// A current run whose every request failed measured nothing: the check fails and says so,
/// instead of calling its machine absent and passing.
#[test]
fn a_series_whose_every_request_failed_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let sweep =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records/sweep-0ad6ba95c6e9.jsonl");
    let mut out = String::new();
    for line in std::fs::read_to_string(&sweep).unwrap().lines() {
        let mut r: Value = serde_json::from_str(line).unwrap();
        r["failed"] = true.into();
        r["error"] = "timed out".into();
        r["pass"] = false.into();
        r["score"] = 0.0.into();
        out.push_str(&format!("{r}\n"));
    }
    let current = dir.path().join("failed.jsonl");
    std::fs::write(&current, out).unwrap();
    measured_nothing(&check(&sweep, &current, &[]), " requests): a failure");
    // Nor does such a run become a baseline.
    let baseline = dir.path().join("baseline.jsonl");
    let o = check(&baseline, &current, &["--update-baseline"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("series of the current records measured nothing (the first: "),
        "{}",
        stderr(&o)
    );
    assert!(!baseline.exists());
}

/// A check that failed because a current series measured nothing, named on a line ending
/// in `named` (not as a machine absent).
fn measured_nothing(o: &std::process::Output, named: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stdout(o));
    let err = stderr(o);
    let want = "current series measured nothing (every request failed, or no samples)";
    assert!(err.contains(want), "{err}");
    let text = stdout(o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("measured nothing: ") && l.ends_with(named)),
        "{text}"
    );
    assert!(!text.contains("absent from the current records"), "{text}");
}

/// A current bench record without samples measured nothing: the check fails and names it,
/// instead of calling its machine absent and passing; nor does it become a baseline.
#[test]
fn a_bench_record_without_samples_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records/bench-smollm2.json");
    let mut records: Value =
        serde_json::from_str(&std::fs::read_to_string(&bench).unwrap()).unwrap();
    for r in records.as_array_mut().unwrap() {
        r["samples"] = serde_json::json!([]);
    }
    let current = dir.path().join("empty.json");
    std::fs::write(&current, records.to_string()).unwrap();
    measured_nothing(&check(&bench, &current, &[]), " (no samples): a failure");
    let baseline = dir.path().join("baseline.jsonl");
    let o = check(&baseline, &current, &["--update-baseline"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(!baseline.exists());
}

/// Load levels of other concurrency are other series: a level of 8 in flight is not a slower
/// level of 1, and levels are never pooled into one median.
#[test]
fn load_levels_of_other_concurrency_are_other_series() {
    let dir = tempfile::tempdir().unwrap();
    let sweep =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records/sweep-0ad6ba95c6e9.jsonl");
    let slow = dir.path().join("slow.jsonl");
    slowed(&sweep, &slow, 0.2, 0.0);
    let at = |from: &Path, to: &Path, concurrency: u32| {
        let mut out = String::new();
        for (i, line) in std::fs::read_to_string(from).unwrap().lines().enumerate() {
            let mut r: Value = serde_json::from_str(line).unwrap();
            r["traffic"] = serde_json::json!({
                "shape": "closed", "concurrency": concurrency, "level_requests": 81,
                "seq": i, "arrival_ms": 0.0, "queue_ms": 0.0, "concurrent": 0,
                "level_wall_ms": 5000.0
            });
            out.push_str(&format!("{r}\n"));
        }
        std::fs::write(to, out).unwrap();
    };
    let (c1, c8) = (dir.path().join("c1.jsonl"), dir.path().join("c8.jsonl"));
    at(&sweep, &c1, 1);
    at(&slow, &c8, 8);
    // Levels apart compare nothing, and a check that compared nothing fails aloud.
    let o = check(&c1, &c8, &[]);
    let text = stdout(&o);
    assert!(text.contains("short-response c=8"), "{text}");
    assert!(text.contains("\n0 slower,"), "{text}");
    assert_eq!(o.status.code(), Some(1), "{text}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "error: nothing compared: no series of the current records is in the baseline"
        ),
        "{err}"
    );
    // The same level pairs with itself.
    let c1_slow = dir.path().join("c1-slow.jsonl");
    at(&slow, &c1_slow, 1);
    let o = check(&c1, &c1_slow, &[]);
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.contains("short-response c=1") && l.contains("68139.99")),
        "{text}"
    );
    assert!(
        !text.contains(" new\n") && !text.contains(" missing\n"),
        "{text}"
    );
}
