//! `runner guide` and `runner report` on a fixed set of real records (tests/data/records:
//! a SmolLM2-135M sweep and bench, and a bench of a SmolLM2 upcycled to 4 experts, measured on
//! the project's 2-core VM). Outputs are compared byte for byte with the snapshots in
//! tests/data/snapshots; `RUNNER_UPDATE_SNAPSHOTS=1 cargo test --release --test guide_report`
//! rewrites them after an intended change (review the diff before committing).

mod common;

use common::{runner, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Runs runner in tests/data, so that `--results records` reads the fixed records and the
/// outputs name the directory the same way wherever the checkout is.
fn run_in_data(args: &[&str]) -> Output {
    runner()
        .current_dir(data())
        .args(args)
        .output()
        .expect("runner starts")
}

/// Compares `actual` with a snapshot file, or rewrites it when RUNNER_UPDATE_SNAPSHOTS is set.
fn snapshot(name: &str, actual: &str) {
    let path = data().join("snapshots").join(name);
    if std::env::var_os("RUNNER_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (RUNNER_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |i| i);
        panic!(
            "{name} differs from its snapshot at line {}:\n  snapshot: {:?}\n  now:      {:?}\n\
             (RUNNER_UPDATE_SNAPSHOTS=1 rewrites snapshots after an intended change)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

fn guide_into(dir: &Path, results: &str) -> (String, String) {
    let md = dir.join("hardware-guide.md");
    let o = run_in_data(&["guide", "--results", results, "-o", md.to_str().unwrap()]);
    assert!(o.status.success(), "guide failed: {}", stderr(&o));
    assert!(
        stdout(&o).contains("1 machine(s), 4 measured and"),
        "{}",
        stdout(&o)
    );
    let csv = std::fs::read_to_string(dir.join("hardware-guide.csv")).unwrap();
    (std::fs::read_to_string(md).unwrap(), csv)
}

#[test]
fn the_guide_is_byte_stable() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (md, csv) = guide_into(a.path(), "records");
    let (md2, csv2) = guide_into(b.path(), "records");
    assert_eq!(md, md2, "two runs over the same records differ");
    assert_eq!(csv, csv2);
    snapshot("hardware-guide.md", &md);
    snapshot("hardware-guide.csv", &csv);
}

#[test]
fn predicted_rows_are_labelled_with_their_basis() {
    let dir = tempfile::tempdir().unwrap();
    let (md, csv) = guide_into(dir.path(), "records");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (status, basis, from) = (col("status"), col("basis"), col("decode_from"));
    let (tps, bpt, machine) = (col("decode_tps"), col("bytes_per_token"), col("machine"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let predicted: Vec<&csv::StringRecord> =
        rows.iter().filter(|r| &r[status] == "predicted").collect();
    assert!(!predicted.is_empty(), "no predicted rows");
    for r in &rows {
        match &r[status] {
            "predicted" => {
                assert!(r[basis].starts_with("predicted: "), "{r:?}");
                assert!(r[basis].contains("MB/token (measured on"), "{r:?}");
                assert_eq!(&r[from], "bandwidth ÷ bytes/token");
            }
            "measured" => assert!(r[basis].is_empty(), "{r:?}"),
            other => panic!("unknown status {other}"),
        }
    }
    // A machine known only from the reference figures: 273 GB/s × 50 % ÷ bytes per token.
    let m4 = predicted
        .iter()
        .find(|r| r[machine].starts_with("Apple M4 Pro 48 GB"))
        .expect("a prediction for the reference M4 Pro");
    let want = 273e9 * 0.5 / r_f64(&m4[bpt]);
    assert!((r_f64(&m4[tps]) - want).abs() < 1e-6 * want, "{m4:?}");
    let md_predicted = md
        .lines()
        .filter(|l| l.starts_with("| **predicted** |"))
        .count();
    assert_eq!(md_predicted, predicted.len());
}

fn r_f64(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

/// Copies the records into `dir`, plus a copy of the sweep with another machine's fingerprint
/// (its CPU, cores and RAM rewritten) and a second copy of the bench file.
fn two_machines(dir: &Path) {
    let records = data().join("records");
    for sub in ["a", "b/nested", "reference"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for f in [
        "bench-smollm2.json",
        "bench-moe.json",
        "sweep-0ad6ba95c6e9.jsonl",
    ] {
        std::fs::copy(records.join(f), dir.join("a").join(f)).unwrap();
    }
    std::fs::copy(
        records.join("bench-smollm2.json"),
        dir.join("b/bench-copy.json"),
    )
    .unwrap();
    let sweep = std::fs::read_to_string(records.join("sweep-0ad6ba95c6e9.jsonl")).unwrap();
    let other: String = sweep
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let m = &mut v["info"]["machine"];
            m["cpu"] = "AMD Ryzen 9 7950X 16-Core Processor".into();
            m["logical_cores"] = 32.into();
            m["ram_bytes"] = (64u64 << 30).into();
            v.to_string() + "\n"
        })
        .collect();
    std::fs::write(dir.join("b/nested/sweep-other.jsonl"), other).unwrap();
}

#[test]
fn machines_merge_by_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    two_machines(dir.path());
    let out = dir.path().join("guide.md");
    let o = run_in_data(&[
        "guide",
        "--results",
        dir.path().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 machine(s), 7 measured and 1 predicted"),
        "{}",
        stdout(&o)
    );
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(
        md.contains("| AMD Ryzen 9 7950X, 32 cores, 64 GiB |"),
        "{md}"
    );
    assert!(md.contains("| Intel(R) Xeon(R) Processor, 2 cores, 24 GiB |"));
    // The copied bench file counts once; the bench and the sweep's source cell share a row.
    let xeon_q41 = md
        .lines()
        .find(|l| l.starts_with("| measured | Intel(R) Xeon") && l.contains("| q4_1 |"))
        .expect("the Xeon's q4_1 row");
    assert!(xeon_q41.contains("median of 2; 5 busy"), "{xeon_q41}");
    // The MoE model ran on the Xeon only: the Ryzen gets a prediction from its own efficiency.
    assert!(md
        .lines()
        .any(|l| l.starts_with("| **predicted** | AMD Ryzen")
            && l.contains("smollm2-moe-4x-top2")
            && l.contains("GB/s measured here")));
}

#[test]
fn the_machine_option_answers_what_to_run() {
    let o = run_in_data(&["guide", "--results", "records", "--machine", "M4 Pro 48GB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.starts_with("# What to run on: Apple M4 Pro, 48 GB\n"),
        "{text}"
    );
    assert!(text.contains("273 GB/s published"));
    assert!(text.contains("Fastest that fits: **"));
    assert!(text.contains("| **predicted** | Apple M4 Pro, 48 GB |"));
    assert!(text.contains("## Published figures for this chip"));
    snapshot("machine-m4-pro-48gb.md", &text);
    for (bad, why) in [
        ("M4 Pro", "how much memory"),
        ("M4 Max 64GB", "say which"),
        ("Z80 1GB", "not in the chip table"),
    ] {
        let o = run_in_data(&["guide", "--results", "records", "--machine", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = stderr(&o);
        assert!(e.contains(why) && e.lines().count() == 1, "{bad}: {e}");
    }
    let o = run_in_data(&["guide", "--results", "no-such-dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a directory"));
}

fn report_into(dir: &Path) -> String {
    let path = dir.join("report.html");
    let o = run_in_data(&[
        "report",
        "--results",
        "records",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "report failed: {}", stderr(&o));
    assert!(stdout(&o).contains("(7 charts,"), "{}", stdout(&o));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_report_is_byte_stable_and_has_every_chart() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let html = report_into(a.path());
    assert_eq!(
        html,
        report_into(b.path()),
        "two runs over the same records differ"
    );
    for title in [
        "Time to first token, short-response requests",
        "Inter-token latency, all decoded tokens",
        "Decode rate by quantization",
        "Answer quality against decode speed",
        "Cost per quality point",
        "Bandwidth roofline",
        "MoE routing overhead",
        "1 MoE model(s), but no record carries a routing profile",
        "TTFT (ms",
        "decode rate (tokens/s",
        "smollm2-135m q8_0",
    ] {
        assert!(html.contains(title), "{title} missing");
    }
    assert_eq!(html.matches("<svg").count(), 7);
    // Self-contained: no scripts, nothing fetched (the only URLs are SVG's namespace).
    assert!(!html.contains("<script"));
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    snapshot("report.html", &html);
}
