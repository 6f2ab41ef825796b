//! `runner guide` and `runner report` on a fixed set of real records (tests/data/records:
//! a SmolLM2-135M sweep and bench, and a bench of a SmolLM2 upcycled to 4 experts, measured on
//! a 2-core VM) and a fixed copy of the published llama-bench rows the guide is fitted to. Outputs are compared byte for byte with the snapshots in
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

fn catalogue_csv(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    catalogue_csv_at(&dir.join("hardware-guide-catalogue.csv"))
}

fn catalogue_csv_at(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn the_guide_is_byte_stable() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (md, csv) = guide_into(a.path(), "records");
    let (md2, csv2) = guide_into(b.path(), "records");
    assert_eq!(md, md2, "two runs over the same records differ");
    assert_eq!(csv, csv2);
    let cat = std::fs::read_to_string(a.path().join("hardware-guide-catalogue.csv")).unwrap();
    let cat2 = std::fs::read_to_string(b.path().join("hardware-guide-catalogue.csv")).unwrap();
    assert_eq!(cat, cat2);
    snapshot("hardware-guide.md", &md);
    snapshot("hardware-guide.csv", &csv);
    snapshot("hardware-guide-catalogue.csv", &cat);
}

#[test]
fn every_catalogue_cell_carries_its_basis() {
    let dir = tempfile::tempdir().unwrap();
    let (md, _) = guide_into(dir.path(), "records");
    assert!(
        md.contains("How far to trust the predictions: each of "),
        "{md}"
    );
    assert!(md.contains("## The catalogue: what runs how fast"));
    let rows = catalogue_csv(dir.path());
    // 11 entries × 5 quantizations + gpt-oss in MXFP4, on every chip of the table.
    let chips =
        std::collections::BTreeSet::<&str>::from_iter(rows.iter().map(|r| r["chip"].as_str()));
    assert_eq!(rows.len(), 56 * chips.len());
    assert!(chips.len() >= 50, "{chips:?}");
    let f = |r: &std::collections::HashMap<String, String>, k: &str| r_f64(&r[k]);
    for r in &rows {
        let basis = &r["basis"];
        if r["confidence"] == "no_basis" {
            // A backend without published rows, or a recorded machine without a fit (its
            // decodes all ran busy): memory and fit only, never a made-up rate.
            let why = [
                "no published ",
                "only decodes measured while other processes",
            ];
            assert!(
                r["decode_tps"].is_empty() && why.iter().any(|w| basis.starts_with(w)),
                "{r:?}"
            );
            continue;
        }
        match r["confidence"].as_str() {
            "predicted" => assert!(
                basis.contains(" GB/token ÷ (") && basis.contains(" fit to "),
                "{r:?}"
            ),
            "community" => assert!(
                basis.starts_with("published tg") && basis.contains("https://"),
                "{r:?}"
            ),
            other => panic!("{other}: {r:?}"),
        }
        assert!(basis.contains("; prompt: "), "{r:?}");
        let needed = f(r, "weights_gib") + f(r, "kv_gib") + f(r, "compute_gib");
        assert!((needed - f(r, "memory_needed_gib")).abs() < 1e-9, "{r:?}");
        assert!(f(r, "decode_tps") > 0.0);
    }
    // Within one chip and model, more bytes per weight decode slower.
    let m4: Vec<_> = rows
        .iter()
        .filter(|r| r["chip"] == "Apple M4 Pro" && r["entry"] == "llama-3.1-8b")
        .collect();
    let order: Vec<&str> = m4.iter().map(|r| r["quant"].as_str()).collect();
    assert_eq!(order, ["q4_0", "q4_k_m", "q5_k_m", "q6_k", "q8_0"]);
    for w in m4.windows(2) {
        assert!(f(w[0], "decode_tps") > f(w[1], "decode_tps"), "{w:?}");
        assert!(f(w[0], "weights_gib") < f(w[1], "weights_gib"), "{w:?}");
    }
    // The community's own figure where it exists, the model's prediction beside it.
    let llama2 = rows
        .iter()
        .find(|r| {
            r["chip"] == "Apple M2 Ultra" && r["entry"] == "llama-2-7b" && r["quant"] == "q4_0"
        })
        .unwrap();
    assert_eq!(llama2["confidence"], "community");
    assert!(llama2["basis"].contains("; predicted "), "{llama2:?}");
}

#[test]
fn validate_predicts_every_published_row_from_the_others() {
    let o = run_in_data(&["guide", "--results", "records", "--validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    snapshot("guide-validate.txt", &text);
    // The accuracy the guide claims, on the rows it ships (deterministic: a fit, not a timing).
    let summary = |group: &str| -> (f64, f64) {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{group} ")))
            .unwrap_or_else(|| panic!("no {group} line in {text}"));
        let pcts: Vec<f64> = line
            .split('%')
            .filter_map(|p| p.split_whitespace().last()?.parse().ok())
            .collect();
        (pcts[0], pcts[1])
    };
    let (median, _) = summary("tg all");
    assert!(median <= 15.0, "decode median error {median} %");
    let (_, worst) = summary("tg Metal dense");
    assert!(worst <= 30.0, "worst dense Metal decode error {worst} %");
    let (median, _) = summary("pp all");
    assert!(median <= 30.0, "prompt median error {median} %");
    assert!(text.contains("How far to trust the predictions"));
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
    // The catalogue section names the CSV written beside this guide, not the default's.
    assert!(dir.path().join("guide-catalogue.csv").is_file());
    assert!(
        md.contains("the basis of every number: `guide-catalogue.csv`."),
        "{md}"
    );
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
    // The MoE model ran on the Xeon only: the Ryzen gets a prediction, from the default
    // efficiency, since its own decodes all ran on a busy machine.
    assert!(md
        .lines()
        .any(|l| l.starts_with("| **predicted** | AMD Ryzen")
            && l.contains("smollm2-moe-4x-top2")
            && l.contains("(default efficiency: the 6 decodes here ran on a busy machine)")));
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
    assert!(text.contains("about 75 % of unified memory by default, 36.0 GiB here"));
    assert!(text.contains("- Fastest that fits: **"), "{text}");
    assert!(text.contains("- Largest that fits and decodes at 20 tok/s or more: **"));
    assert!(text.contains("## Published figures for this chip"));
    snapshot("machine-m4-pro-48gb.md", &text);
    // A pick that fits only tightly says so.
    let o = run_in_data(&["guide", "--results", "records", "--machine", "M2 Max 32GB"]);
    let text = stdout(&o);
    let largest = text
        .lines()
        .find(|l| l.starts_with("- Largest that fits"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        largest.contains("GiB to spare: tight, less than the 10 % the guide keeps free)."),
        "{largest}"
    );
    // Nothing that does not fit is recommended or listed as fitting; what does not fit is named.
    let o = run_in_data(&["guide", "--results", "records", "--machine", "M4 16GB"]);
    let text = stdout(&o);
    assert!(text.contains("10.7 GiB here"), "{text}");
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("## Every catalogue model that fits"))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| model") && !l.starts_with("| ---"))
        .collect();
    assert!(!table.is_empty());
    for l in &table {
        let cells: Vec<&str> = l.split(" | ").collect();
        let headroom: f64 = cells[4].parse().unwrap();
        assert!(
            headroom >= 0.0 && (cells[5] == "yes" || cells[5] == "tight"),
            "{l}"
        );
    }
    let does_not_fit = text
        .lines()
        .find(|l| l.starts_with("Does not fit: "))
        .unwrap();
    assert!(
        does_not_fit.contains("Qwen2.5-Coder-32B q8_0"),
        "{does_not_fit}"
    );
    let pick = text
        .lines()
        .find(|l| l.starts_with("- Fastest that fits: "))
        .unwrap();
    let name = pick.split("**").nth(1).unwrap();
    assert!(!does_not_fit.contains(&format!("{name} (")), "{pick}");
    // A chip whose backend has no published rows: memory and fit, no invented rates.
    let o = run_in_data(&[
        "guide",
        "--results",
        "records",
        "--machine",
        "Ryzen 9 9950X 64GB",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("- No rates: runner has no published CPU rows"),
        "{text}"
    );
    assert!(!text.contains("Fastest that fits"), "{text}");
    // An unknown chip: the closest names.
    let o = run_in_data(&[
        "guide",
        "--results",
        "records",
        "--machine",
        "RTX 4070 12GB",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("close: NVIDIA GeForce RTX"),
        "{}",
        stderr(&o)
    );
    for (bad, why) in [
        ("M4 Pro", "how much memory"),
        ("M4 Max 64GB", "say which"),
        ("Z80 1GB", "not in the chip table"),
        // A laptop part is not the desktop chip it shares a number with.
        (
            "RTX 4090 Laptop GPU",
            "the NVIDIA GeForce RTX 4090 has no 'Laptop'",
        ),
    ] {
        let o = run_in_data(&["guide", "--results", "records", "--machine", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let e = stderr(&o);
        assert!(e.contains(why) && e.lines().count() == 1, "{bad}: {e}");
    }
    let o = run_in_data(&["guide", "--results", "no-such-dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a directory"));
    // Options the chosen output never reads are refused, not silently ignored.
    for (args, why) in [
        (
            &["--validate", "--efficiency", "0.7"][..],
            "cannot be used with",
        ),
        (&["--validate", "-o", "v.txt"][..], "cannot be used with"),
        (
            &["--validate", "--context", "4096"][..],
            "cannot be used with",
        ),
        (&["--interactive", "30"][..], "--machine"),
        (&["--efficiency", "1.5"][..], "at most 1"),
        (&["--efficiency", "0"][..], "at most 1"),
        (&["--efficiency", "150%"][..], "at most 1"),
    ] {
        let o = run_in_data(&[&["guide", "--results", "records"][..], args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains(why) && e.lines().count() == 1, "{args:?}: {e}");
    }
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
    assert!(stdout(&o).contains("(8 charts,"), "{}", stdout(&o));
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
        "Guide predictions against published llama-bench figures (leave-one-out)",
        "How far to trust the predictions: each of 96 published llama-bench rows",
        "TTFT (ms",
        "decode rate (tokens/s",
        "smollm2-135m q8_0",
    ] {
        assert!(html.contains(title), "{title} missing");
    }
    assert_eq!(html.matches("<svg").count(), 8);
    // Self-contained: no scripts, nothing fetched (the only URLs are SVG's namespace).
    assert!(!html.contains("<script"));
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    snapshot("report.html", &html);
}

#[test]
fn layer_scaled_synthetic_runs_are_named_so_and_extrapolated_to_full_depth() {
    // Two real bench records of a synthetic Qwen3-30B-A3B at 4 and 8 of its 48 layers.
    let dir = tempfile::tempdir().unwrap();
    let file = "synthetic-qwen3-30b-a3b-q4_k_m-layers.json";
    std::fs::copy(data().join("synthetic").join(file), dir.path().join(file)).unwrap();
    let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let ms = |layers: u64| {
        let r = records
            .iter()
            .find(|r| r["model"]["synthetic"]["layers"] == layers)
            .unwrap();
        1000.0 / r["results"]["gen_tps"]["median"].as_f64().unwrap()
    };
    let per_layer = (ms(8) - ms(4)) / 4.0;
    let want = 1000.0 / (ms(4) + per_layer * 44.0);
    let md = dir.path().join("guide.md");
    let o = run_in_data(&[
        "guide",
        "--results",
        dir.path().to_str().unwrap(),
        "-o",
        md.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(md).unwrap();
    for layers in [4, 8] {
        let name = format!("| qwen3-30b-a3b (synthetic) {layers}/48 layers | q4_k_m |");
        assert!(md.contains(&name), "{name} missing:\n{md}");
    }
    let row = md
        .lines()
        .find(|l| l.starts_with("| *extrapolated* |"))
        .expect("an extrapolated row");
    assert!(
        row.contains("| qwen3-30b-a3b (synthetic) | q4_k_m |"),
        "{row}"
    );
    assert!(
        row.contains("measured at 4, 8 layers (two depths: no residual)"),
        "{row}"
    );
    let tps: f64 = row.split(" | ").nth(5).unwrap().parse().unwrap();
    assert!((tps - want).abs() < 0.006, "{tps} vs {want}: {row}");
    // No pass rate for a random-weight model.
    assert!(!md
        .lines()
        .any(|l| l.contains("(synthetic)") && l.contains(" %) |")));
}

#[test]
fn executed_pass_at_1_reaches_the_guide_and_the_report() {
    // A real idle sweep of the coding scenario on Qwen2.5-Coder-0.5B and -1.5B.
    let dir = tempfile::tempdir().unwrap();
    let file = "sweep-ee91125fef6e.jsonl";
    std::fs::copy(data().join("coding").join(file), dir.path().join(file)).unwrap();
    let md = dir.path().join("guide.md");
    let results = dir.path().to_str().unwrap();
    let o = run_in_data(&["guide", "--results", results, "-o", md.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(dir.path().join("guide.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (model, passed, graded) = (col("model"), col("executed_passed"), col("executed_graded"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let of = |m: &str| {
        let r = rows.iter().find(|r| &r[model] == m).unwrap();
        (r[passed].to_string(), r[graded].to_string())
    };
    assert_eq!(of("qwen2.5-coder-0.5b"), ("6".into(), "16".into()));
    assert_eq!(of("qwen2.5-coder-1.5b"), ("11".into(), "16".into()));
    let html = dir.path().join("r.html");
    let o = run_in_data(&["report", "--results", results, "-o", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("measured here: executed pass@1 (code run against tests)"));
    assert!(
        html.contains("qwen2.5-coder-1.5b q4_k_m pass@1 11/16"),
        "no labelled point"
    );
}

/// The fixed records plus `runner bench` records of nine catalogue models (synthetic, real
/// shapes) measured on an NVIDIA H200 (tests/data/gpu): a machine whose weights sat on a GPU,
/// whose bandwidth `runner hw` cannot measure.
fn with_gpu_records(dir: &Path) {
    let records = data().join("records");
    std::fs::create_dir_all(dir.join("reference")).unwrap();
    for f in [
        "bench-smollm2.json",
        "bench-moe.json",
        "sweep-0ad6ba95c6e9.jsonl",
    ] {
        std::fs::copy(records.join(f), dir.join(f)).unwrap();
    }
    for f in ["llama-cpp-published.csv", "published.csv"] {
        std::fs::copy(
            records.join("reference").join(f),
            dir.join("reference").join(f),
        )
        .unwrap();
    }
    std::fs::copy(
        data().join("gpu/h200-synthetic.jsonl"),
        dir.join("h200-synthetic.jsonl"),
    )
    .unwrap();
}

/// The H200's label in the guide of [`with_gpu_records`].
const H200: &str = "NVIDIA H200, 16 cores, 126 GiB + CUDA0 (NVIDIA H200)";

/// Writes the guide of the records under `dir` beside them and returns its Markdown.
fn guide_md(dir: &Path) -> String {
    let out = dir.join("guide.md");
    let o = run_in_data(&[
        "guide",
        "--results",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(&out).unwrap()
}

/// The row of the Markdown guide's machines table for `machine`.
fn machine_row<'a>(md: &'a str, machine: &str) -> &'a str {
    md.lines()
        .find(|l| l.starts_with(&format!("| {machine} |")))
        .unwrap_or_else(|| panic!("{machine} is not in the machines table: {md}"))
}

#[test]
fn a_gpu_machine_is_fitted_to_its_own_decodes_at_the_gpus_published_bandwidth() {
    let dir = tempfile::tempdir().unwrap();
    with_gpu_records(dir.path());
    let results = dir.path().to_str().unwrap();
    let md = guide_md(dir.path());
    let h200 = H200;
    // Its efficiency is achieved ÷ published bandwidth, over its nine decodes.
    let machine = machine_row(&md, h200);
    assert!(machine.contains("| 4800.0 | 23.9 (n=9) |"), "{machine}");
    assert!(
        md.contains(&format!(
            "- {h200} (native, fitted to its own decodes): 33.0 % of the 4800.0 GB/s published, \
             1.0 ms fixed per token"
        )),
        "{md}"
    );
    // What was not measured there is predicted from that fit, fixed cost included: a 135M
    // model is not predicted at bandwidth ÷ bytes (about 11,700 tok/s at 23.9 %).
    let smol = md
        .lines()
        .find(|l| {
            l.starts_with(&format!("| **predicted** | {h200} |"))
                && l.contains("| smollm2-135m | q4_1 |")
        })
        .expect("SmolLM2 predicted on the H200");
    assert!(smol.contains("GB/s published × 33.0 %) + 1.0 ms; native fit to 5 dense + 4 MoE decodes measured here"), "{smol}");
    let cells: Vec<&str> = smol.split(" | ").collect();
    let tps = r_f64(cells[5]);
    assert!((500.0..2000.0).contains(&tps), "{smol}");

    // Asked about that chip, the guide answers from those decodes, not the published CUDA fit.
    let o = run_in_data(&["guide", "--results", results, "--machine", "H200 141GB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(&format!(
            "Rates on this chip come from the 9 decodes runner measured on {h200}"
        )),
        "{text}"
    );
    let llama = text
        .lines()
        .find(|l| l.starts_with("| Llama-3.1-8B | q4_k_m |"))
        .expect("Llama-3.1-8B Q4_K_M");
    assert!(
        llama.contains("| 244 |") && llama.contains("| measured here |"),
        "{llama}"
    );
    // Another datacenter GPU is answered from the published CUDA fit, with that fit's error on
    // the H200's decodes beside every prediction.
    let o = run_in_data(&["guide", "--results", results, "--machine", "H100 SXM 80GB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let llama = text
        .lines()
        .find(|l| l.starts_with("| Llama-3.1-8B | q4_k_m |"))
        .expect("Llama-3.1-8B Q4_K_M on the H100");
    assert!(
        llama.contains("CUDA fit to")
            && llama.contains(
                "this CUDA fit is off by a median of 249 % on runner's own dense decodes"
            ),
        "{llama}"
    );
    // The chip the CUDA fit was made from carries no such note.
    let o = run_in_data(&["guide", "--results", results, "--machine", "GB10 128GB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("is off by a median of"),
        "{}",
        stdout(&o)
    );
    // Without those records the same question is answered from the published rows.
    let o = run_in_data(&["guide", "--results", "records", "--machine", "H200 141GB"]);
    let text = stdout(&o);
    assert!(!text.contains("Rates on this chip come from"), "{text}");
    assert!(!text.contains("is off by a median of"), "{text}");
    assert!(text.contains("CUDA fit to"), "{text}");

    // Each of its decodes is predicted from the others, and by the fit to the published rows,
    // which never saw them: on this chip that fit is off by a factor of 2-7.
    let o = run_in_data(&["guide", "--results", results, "--validate"]);
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(h200)).collect();
    assert_eq!(rows.len(), 18, "{text}");
    let against = rows
        .iter()
        .filter(|l| l.ends_with("predicted by the CUDA fit to published rows"))
        .count();
    assert_eq!(against, 9, "{text}");
    assert!(
        text.contains("tg recorded CUDA dense   5          5         249.2 %"),
        "{text}"
    );
    assert!(md.contains("runner's own decodes on chips of the table, predicted by the fit to the published rows (which never saw them): CUDA MoE 414.6 %"), "{md}");
}

/// The H200's records plus one of them run again with every layer on the host (`-ngl 0`):
/// a machine measured both ways is two machines to the guide, each row held against the
/// bandwidth and memory of where its weights sat.
#[test]
fn runs_with_weights_on_the_host_of_a_gpu_machine_are_not_merged_with_its_gpu_runs() {
    let dir = tempfile::tempdir().unwrap();
    with_gpu_records(dir.path());
    let text = std::fs::read_to_string(data().join("gpu/h200-synthetic.jsonl")).unwrap();
    let mut r: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(r["model"]["name"], "Llama-3.1-8B (synthetic)");
    r["engine"]["n_gpu_layers"] = 0.into();
    r["time"] = "2026-11-26T02:00:00Z".into();
    r["results"]["gen_tps"]["median"] = 12.5.into();
    let b = &mut r["bandwidth"];
    b["decode_tps"] = 12.5.into();
    b["achieved_gbps"] = 58.7.into();
    b["measured_peak_gbps"] = 200.0.into();
    b["measured_peak_kind"] = "read".into();
    b["utilisation_measured"] = 0.2935.into();
    for k in [
        "published_chip",
        "published_peak_gbps",
        "utilisation_published",
    ] {
        b[k] = serde_json::Value::Null;
    }
    std::fs::write(dir.path().join("h200-on-cpu.json"), r.to_string()).unwrap();

    let md = guide_md(dir.path());
    let h200 = H200;
    // Named by the host's CPU, since the chip the weights sat on is that one.
    let on_cpu =
        "Intel(R) Xeon(R) Processor, 16 cores, 126 GiB + CUDA0 (NVIDIA H200) (weights on CPU)";
    // The GPU runs keep their summary and fit: nine decodes at the published bandwidth.
    let gpu = machine_row(&md, h200);
    assert!(gpu.contains("| 4800.0 | 23.9 (n=9) |"), "{gpu}");
    assert!(
        md.contains(&format!(
            "- {h200} (native, fitted to its own decodes): 33.0 % of the 4800.0 GB/s published"
        )),
        "{md}"
    );
    // The host run is its own machine, held against the host's measured bandwidth.
    let cpu = machine_row(&md, on_cpu);
    assert!(cpu.contains("| 125.9 | 200.00 | - | 29.3 (n=1) |"), "{cpu}");
    // Its fit is the CPU's, never the GPU's.
    assert!(
        md.contains(&format!(
            "- {on_cpu} (CPU, fitted to its own decodes): 29.5 % of the 200.0 GB/s measured here"
        )),
        "{md}"
    );
    // Asked about the H200, the guide answers from the GPU runs alone.
    let o = run_in_data(&[
        "guide",
        "--results",
        dir.path().to_str().unwrap(),
        "--machine",
        "H200",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "Rates on this chip come from the 9 decodes runner measured on {h200}"
        )),
        "{}",
        stdout(&o)
    );

    let csv = std::fs::read_to_string(dir.path().join("guide.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let llama: Vec<Vec<String>> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        .filter(|r| r[col("status")] == "measured")
        .filter(|r| r[col("model")] == "llama-3.1-8b (synthetic)" && r[col("quant")] == "q4_k_m")
        .collect();
    assert_eq!(llama.len(), 2, "{csv}");
    for (weights, machine, tps, gib) in [("gpu", h200, 244.2, 140.0), ("cpu", on_cpu, 12.5, 126.0)]
    {
        let row = llama
            .iter()
            .find(|r| r[col("weights")] == weights)
            .unwrap_or_else(|| panic!("no {weights} row: {csv}"));
        assert_eq!(row[col("machine")], machine);
        assert!(
            (r_f64(&row[col("decode_tps")]) - tps).abs() < 0.1,
            "{row:?}"
        );
        // Memory present: the GPU's for weights on it, the host's RAM for weights on the host.
        assert!(
            (r_f64(&row[col("memory_gib")]) - gib).abs() < 2.0,
            "{row:?}"
        );
    }
}

#[test]
fn an_output_that_would_overwrite_the_records_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::copy(data().join("records").join(name), &to).unwrap();
        (to.clone(), std::fs::read(&to).unwrap())
    };
    let files = [copy("sweep-0ad6ba95c6e9.jsonl"), copy("bench-smollm2.json")];
    let results = dir.path().to_str().unwrap();
    let sweep = files[0].0.to_str().unwrap();
    let bench = files[1].0.to_str().unwrap();
    for args in [
        vec!["report", "--results", results, "-o", sweep],
        vec!["guide", "--results", results, "-o", bench],
        vec![
            "guide",
            "--results",
            results,
            "--machine",
            "RTX 4090",
            "-o",
            sweep,
        ],
    ] {
        let o = runner().args(&args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("holds records this reads"), "{args:?}: {err}");
    }
    for (path, bytes) in &files {
        assert!(&std::fs::read(path).unwrap() == bytes, "{}", path.display());
    }
    // Records outside the results read are not written over either.
    let elsewhere = tempfile::tempdir().unwrap();
    let reads = data().join("records");
    let reads = reads.to_str().unwrap();
    for (path, bytes) in &files {
        let out = elsewhere.path().join(path.file_name().unwrap());
        std::fs::write(&out, bytes).unwrap();
        let out = out.to_str().unwrap();
        for cmd in ["report", "guide"] {
            let o = runner()
                .args([cmd, "--results", reads, "-o", out])
                .output()
                .unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd} -o {out}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd} -o {out}: {err}");
            assert!(err.contains("holds records (a results file)"), "{err}");
            assert!(&std::fs::read(out).unwrap() == bytes, "{out}");
        }
    }
    // Records past the first MiB: a bench array of many runs as runner writes it, and a
    // results file whose first MiB is other JSON.
    let bench: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(data().join("records/bench-smollm2.json")).unwrap(),
    )
    .unwrap();
    let many: Vec<&serde_json::Value> = bench.iter().cycle().take(bench.len() * 400).collect();
    let long_array = serde_json::to_string_pretty(&many).unwrap();
    let sweep = std::fs::read_to_string(data().join("records/sweep-0ad6ba95c6e9.jsonl")).unwrap();
    let after_other = format!("{}{sweep}", "{\"note\": 1}\n".repeat(110_000));
    for (name, text) in [("long.json", long_array), ("late.jsonl", after_other)] {
        assert!(text.len() > 1 << 20, "{name}: {}", text.len());
        let out = elsewhere.path().join(name);
        std::fs::write(&out, &text).unwrap();
        let o = runner()
            .args(["guide", "--results", reads, "-o", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(std::fs::read_to_string(&out).unwrap() == text, "{name}");
    }
}

/// An output that is a directory is a usage error, found before anything is written: the
/// guide's Markdown is not written when its CSV beside it would be a directory.
#[test]
fn an_output_that_is_a_directory_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_copy(dir.path());
    let results = results.to_str().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::create_dir(out.join("guide.csv")).unwrap();
    let md = out.join("guide.md");
    for (cmd, o) in [("report", &out), ("guide", &out), ("guide", &md)] {
        let o = runner()
            .args([cmd, "--results", results, "-o", o.to_str().unwrap()])
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(
            err.contains("is a directory; name a file to write"),
            "{err}"
        );
    }
    assert!(!md.exists());
}

/// A results directory in `dir` with a copy of the test records and reference CSVs.
fn results_copy(dir: &Path) -> PathBuf {
    let results = dir.join("results");
    let reference = results.join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    for name in ["sweep-0ad6ba95c6e9.jsonl", "bench-smollm2.json"] {
        std::fs::copy(data().join("records").join(name), results.join(name)).unwrap();
    }
    for name in ["published.csv", "llama-cpp-published.csv"] {
        let from = data().join("records/reference").join(name);
        std::fs::copy(from, reference.join(name)).unwrap();
    }
    results
}

#[test]
fn links_that_loop_or_lead_nowhere_are_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_copy(dir.path());
    let r = results.to_str().unwrap();
    let md = dir.path().join("g.md");
    let guide = ["guide", "--results", r, "-o", md.to_str().unwrap()];
    let plain = runner().args(guide).output().unwrap();
    assert!(plain.status.success(), "{}", stderr(&plain));
    // A link back to the directory itself, one from a subfolder to its parent, and one to
    // nothing.
    std::os::unix::fs::symlink("../results", results.join("self")).unwrap();
    std::fs::create_dir(results.join("a")).unwrap();
    std::os::unix::fs::symlink("..", results.join("a/loop")).unwrap();
    std::os::unix::fs::symlink("nonexist", results.join("x.jsonl")).unwrap();
    let html = dir.path().join("r.html");
    for args in [
        guide.to_vec(),
        vec!["report", "--results", r, "-o", html.to_str().unwrap()],
    ] {
        let o = runner().args(&args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        let warning = err.lines().find(|l| l.contains("left out (a link"));
        let warning = warning.unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(warning.contains("3 entries"), "{warning}");
        for name in ["self", "a/loop", "x.jsonl"] {
            assert!(warning.contains(name), "{name}: {warning}");
        }
    }
    // The records were read once, not again through the links.
    let linked = runner().args(guide).output().unwrap();
    assert_eq!(stdout(&linked), stdout(&plain));
}

#[test]
fn an_output_that_would_overwrite_a_reference_csv_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_copy(dir.path());
    let reference = results.join("reference");
    let read = |name: &str| std::fs::read(reference.join(name)).unwrap();
    let before = [read("published.csv"), read("llama-cpp-published.csv")];
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(reference.join("published.csv"), &link).unwrap();
    let r = results.to_str().unwrap();
    let at = |name: &str| reference.join(name).to_str().unwrap().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec!["report".into(), "-o".into(), at("published.csv")],
        vec!["report".into(), "-o".into(), at("llama-cpp-published.csv")],
        vec!["report".into(), "-o".into(), link.to_str().unwrap().into()],
        // The guide's CSV, written beside its markdown, would replace a reference CSV.
        vec!["guide".into(), "-o".into(), at("llama-cpp-published.md")],
        vec!["guide".into(), "-o".into(), at("published.md")],
        vec![
            "guide".into(),
            "--machine".into(),
            "RTX 4090".into(),
            "-o".into(),
            at("published.csv"),
        ],
    ];
    for case in cases {
        let mut args = vec![case[0].as_str(), "--results", r];
        args.extend(case[1..].iter().map(String::as_str));
        let o = runner().args(&args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("holds reference figures this reads"),
            "{args:?}: {err}"
        );
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    assert_eq!(
        [read("published.csv"), read("llama-cpp-published.csv")],
        before
    );
    let mut left: Vec<String> = std::fs::read_dir(&reference)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["llama-cpp-published.csv", "published.csv"],
        "nothing written"
    );
}

#[test]
fn a_damaged_reference_csv_is_refused_by_guide_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_copy(dir.path());
    let reference = results.join("reference");
    let good = |name: &str| std::fs::read_to_string(data().join("records/reference").join(name));
    let published = good("published.csv").unwrap();
    let header = published.lines().next().unwrap();
    let nan_row = published
        .lines()
        .nth(1)
        .unwrap()
        .replacen(",40.05,", ",NaN,", 1);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "published.csv",
            vec![0x89, b'P', b'N', b'G', 0xff, b'\n', 0],
            "not valid UTF-8",
        ),
        (
            "published.csv",
            b"\x01\x02 no newline".to_vec(),
            "no source, published",
        ),
        (
            "published.csv",
            b"source,machine,model\nx,y,z\n".to_vec(),
            "no published, memory_gb",
        ),
        (
            "published.csv",
            format!("{header}\n{nan_row}\n").into_bytes(),
            "gen_tok_s NaN",
        ),
        (
            "llama-cpp-published.csv",
            b"source\n".to_vec(),
            "no url, machine",
        ),
    ];
    for (name, bytes, says) in cases {
        std::fs::write(reference.join(name), &bytes).unwrap();
        for command in ["guide", "report"] {
            let out = dir.path().join(format!("out.{command}"));
            let o = runner()
                .args([command, "--results", results.to_str().unwrap(), "-o"])
                .arg(&out)
                .output()
                .unwrap();
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{command} {name} {says}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(name) && err.contains(says), "{command}: {err}");
            assert!(!out.exists());
        }
        std::fs::write(reference.join(name), good(name).unwrap()).unwrap();
    }
}

/// A CPU or device name with a newline, a NUL, an escape and a pipe (a damaged or hostile
/// record) stays in its cells: every row of every Markdown table of the guide is one line.
#[test]
fn control_characters_in_a_machine_name_keep_the_guides_rows_whole() {
    let dir = tempfile::tempdir().unwrap();
    with_gpu_records(dir.path());
    let evil = "Evil\nCPU\0 | x\u{1b}[2J";
    let rename = |v: &mut serde_json::Value| {
        for at in ["/machine/cpu", "/info/machine/cpu"] {
            if let Some(cpu) = v.pointer_mut(at) {
                *cpu = evil.into();
            }
        }
        for at in ["/build/devices", "/info/build/devices"] {
            let devices = v.pointer_mut(at).and_then(|d| d.as_array_mut());
            for d in devices.into_iter().flatten() {
                if d["name"] == "CUDA0" {
                    d["name"] = "CUDA\n0|\0".into();
                }
            }
        }
    };
    for f in ["bench-smollm2.json", "bench-moe.json"] {
        let path = dir.path().join(f);
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v.as_array_mut().unwrap().iter_mut().for_each(rename);
        std::fs::write(path, v.to_string()).unwrap();
    }
    for f in ["sweep-0ad6ba95c6e9.jsonl", "h200-synthetic.jsonl"] {
        let path = dir.path().join(f);
        let renamed: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                rename(&mut v);
                v.to_string() + "\n"
            })
            .collect();
        std::fs::write(path, renamed).unwrap();
    }
    let md = guide_md(dir.path());
    assert!(!md.contains(['\0', '\u{1b}']), "{md:?}");
    let mut rows = 0;
    for line in md.lines().filter(|l| l.starts_with('|')) {
        assert!(line.ends_with('|'), "a broken row: {line:?}");
        rows += 1;
    }
    assert!(rows > 10, "{md}");
    assert!(!md.lines().any(|l| l.starts_with("CPU")), "{md}");
    // The names are shown escaped: the CPU's in the machines table, the GPU's also in the
    // catalogue's column for the machine.
    machine_row(&md, r"Evil\nCPU\0 \| x\u{1b}[2J, 2 cores, 24 GiB");
    let gpu = r"NVIDIA H200, 16 cores, 126 GiB + CUDA\n0\|\0 (NVIDIA H200)";
    machine_row(&md, gpu);
    assert!(
        md.lines()
            .any(|l| l.starts_with("| model | quant |") && l.contains(&format!("{gpu} tok/s"))),
        "{md}"
    );
}

/// A model and a machine name holding control characters (a damaged or hostile record) are
/// shown escaped in the report: its HTML, inline SVGs included, holds no control character but
/// tabs and line breaks, so each SVG stays well-formed XML.
#[test]
fn control_characters_in_names_are_escaped_in_the_report_and_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let results = results_copy(dir.path());
    let sweep = results.join("sweep-0ad6ba95c6e9.jsonl");
    let renamed: String = std::fs::read_to_string(&sweep)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["cell"]["model"] = "Evil\u{1}model\u{1b}[2J".into();
            v["info"]["source_path"] = "/m/Evil\u{1}model\u{1b}[2J.gguf".into();
            v["info"]["source_sha256"] = serde_json::Value::Null;
            v["info"]["machine"]["cpu"] = "CPU\u{7f}\u{8}x\u{fffe}\u{ffff}".into();
            v.to_string() + "\n"
        })
        .collect();
    std::fs::write(&sweep, renamed).unwrap();
    let html = dir.path().join("r.html");
    let o = runner()
        .args(["report", "--results", results.to_str().unwrap(), "-o"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(html).unwrap();
    let svgs: Vec<&str> = html
        .split("<svg")
        .skip(1)
        .map(|s| s.split("</svg>").next().unwrap())
        .collect();
    assert_eq!(svgs.len(), 8);
    let bad = |s: &str| {
        s.chars().any(|c| {
            c.is_control() && !matches!(c, '\t' | '\n' | '\r')
                || matches!(c, '\u{fffe}' | '\u{ffff}')
        })
    };
    for (i, svg) in svgs.iter().enumerate() {
        assert!(!bad(svg), "chart {i}: {svg:?}");
    }
    assert!(!bad(&html), "{html:?}");
    assert!(svgs.iter().any(|s| s.contains(r"Evil\u{1}model\u{1b}[2J")));
    assert!(html.contains(r"CPU\u{7f}\u{8}x\u{fffe}\u{ffff}"));
}

/// A decode recorded at 0 tok/s (which the records' plausibility check lets through) is left
/// out of its machine's fit instead of putting every prediction there at 0.
#[test]
fn a_decode_of_zero_tokens_per_second_is_left_out_of_the_fit() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::copy(
        data().join("zero-decode/bench-zero-decode.json"),
        results.join("bench.json"),
    )
    .unwrap();
    let md = dir.path().join("guide.md");
    let o = runner()
        .args(["guide", "--results", results.to_str().unwrap()])
        .args(["-o", md.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&md).unwrap();
    let fit = text
        .lines()
        .find(|l| l.contains("fitted to its own decodes"))
        .expect("the machine's fit");
    assert!(fit.contains("(2 dense, 0 MoE"), "{fit}");
    assert!(!fit.contains(": 0.0 % of"), "{fit}");
}

/// The H200's records of `moe` (else dense) models, each marked busy where `busy` is set.
fn h200_records(moe: bool, busy: bool) -> String {
    std::fs::read_to_string(data().join("gpu/h200-synthetic.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["model"]["expert_count"].is_u64() != moe {
                return None;
            }
            if busy {
                v["load"]["busy"] = true.into();
            }
            Some(format!("{v}\n"))
        })
        .collect()
}

/// The guide of `records` of the H200 alone, which has no fit: its catalogue column is kept,
/// the guide names it `(not fitted): {why}` (`why` as said of "there"), and each of its cells
/// without a rate says `why` (as said of "here"). Its catalogue rows.
fn unfitted_h200(records: String, why: &str) -> Vec<std::collections::HashMap<String, String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("h200.jsonl"), records).unwrap();
    let md = guide_md(dir.path());
    let header = md
        .lines()
        .find(|l| l.starts_with("| model | quant | params B"))
        .expect("the catalogue table");
    assert!(header.contains(&format!("| {H200} tok/s |")), "{header}");
    let there = why.replace(" here", " there");
    assert!(
        md.contains(&format!("- {H200} (not fitted): {there}")),
        "{md}"
    );
    let rows = catalogue_csv_at(&dir.path().join("guide-catalogue.csv"));
    let here: Vec<_> = rows.into_iter().filter(|r| r["chip"] == H200).collect();
    assert!(!here.is_empty(), "no catalogue rows for the H200");
    assert!(
        here.iter()
            .filter(|r| r["decode_tps"].is_empty())
            .all(|r| r["basis"].contains(why)),
        "{here:?}"
    );
    here
}

/// A machine whose records hold MoE decodes alone has no fit, but keeps its catalogue column:
/// what was measured there, and cells that say why the rest is not predicted.
#[test]
fn a_machine_with_only_moe_decodes_keeps_its_catalogue_column() {
    let moe = h200_records(true, false);
    assert_eq!(moe.lines().count(), 4, "{moe}");
    let why = "only MoE decodes measured here: a dense one is needed to fit";
    let here = unfitted_h200(moe, why);
    let measured = here.iter().filter(|r| !r["decode_tps"].is_empty()).count();
    assert_eq!(measured, 4, "the four MoE decodes measured there");
}

/// A guide written into a FIFO (or a device) writes its Markdown there and no CSV beside it.
#[test]
fn a_guide_into_a_fifo_writes_no_csv_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("guide.md");
    common::mkfifo(&fifo);
    let reader = std::process::Command::new("cat")
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = run_in_data(&[
        "guide",
        "--results",
        "records",
        "-o",
        fifo.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = reader.wait_with_output().unwrap().stdout;
    assert!(
        String::from_utf8_lossy(&md).starts_with("# "),
        "the guide reached the reader"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["guide.md"], "{names:?}");
}

/// A figure measured while the machine was busy is not the catalogue's figure for it: the cell
/// is predicted from the machine's clean decodes instead.
#[test]
fn a_busy_measurement_is_not_shown_as_the_machines_figure() {
    let cell = |busy: bool| {
        let mut records = h200_records(false, false);
        if busy {
            let mut lines: Vec<serde_json::Value> = records
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            for v in &mut lines {
                if v["model"]["name"] == "Llama-3.1-8B (synthetic)" {
                    v["load"]["busy"] = true.into();
                }
            }
            records = lines.iter().map(|v| format!("{v}\n")).collect();
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("h200.jsonl"), records).unwrap();
        guide_md(dir.path());
        let rows = catalogue_csv_at(&dir.path().join("guide-catalogue.csv"));
        let row = rows
            .into_iter()
            .find(|r| r["chip"] == H200 && r["entry"] == "llama-3.1-8b" && r["quant"] == "q4_k_m");
        row.expect("the H200's Llama-3.1-8B Q4_K_M cell")
    };
    assert_eq!(cell(false)["confidence"], "measured_here");
    let busy = cell(true);
    assert_eq!(busy["confidence"], "predicted", "{busy:?}");
    assert!(!busy["basis"].contains("measured here: bench"), "{busy:?}");
}

/// A machine whose every decode ran while it was busy has no fit either, and keeps its column
/// with that reason.
#[test]
fn a_machine_with_only_busy_decodes_keeps_its_catalogue_column() {
    let why = "only decodes measured while other processes kept this machine busy";
    unfitted_h200(h200_records(false, true), why);
}

/// Copies the directory `from` into `to`, its files and the directories under it.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `runner guide ARGS` on the results that ship with runner (the records, the reference
/// figures and the baselines under `results/`, copied to a directory of their own, so that
/// what a sweep or `scripts/quickstart.sh` left in the git-ignored `results/runs/` changes
/// nothing), from the default `--results results`; its stdout, and the block
/// docs/guide-report-check.md shows after the line `shown_after`.
fn guide_on_shipped_results(args: &[&str], shown_after: &str) -> (String, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for part in ["records", "reference", "baselines"] {
        let from = root.join("results").join(part);
        if from.is_dir() {
            copy_tree(&from, &dir.path().join("results").join(part));
        }
    }
    let o = runner()
        .current_dir(dir.path())
        .arg("guide")
        .args(args)
        .output()
        .expect("runner starts");
    assert!(o.status.success(), "{}", stderr(&o));
    let docs = std::fs::read_to_string(root.join("docs/guide-report-check.md")).unwrap();
    let block = docs
        .split(shown_after)
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_else(|| panic!("the docs show the output of {shown_after:?}"));
    (stdout(&o), block.to_string())
}

/// The summary that docs/guide-report-check.md prints for `runner guide --validate` is what the
/// shipped records give: the docs' figures follow the records.
#[test]
fn the_docs_validation_summary_is_what_the_shipped_records_give() {
    let (out, block) =
        guide_on_shipped_results(&["--validate"], "$ runner guide --validate | tail -30\n");
    assert!(block.lines().count() > 10, "{block}");
    assert!(
        out.contains(&block),
        "docs/guide-report-check.md's summary differs from `runner guide --validate`:\n{block}"
    );
}

/// docs/guide-report-check.md's `runner guide --machine "M4 Pro 48GB"` example shows lines the
/// command prints on the shipped records.
#[test]
fn the_docs_machine_example_is_what_the_command_prints() {
    let (out, block) = guide_on_shipped_results(
        &["--machine", "M4 Pro 48GB"],
        "$ runner guide --machine \"M4 Pro 48GB\"\n",
    );
    let shown: Vec<&str> = block
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with("..."))
        .collect();
    assert!(shown.len() > 8, "{block}");
    for line in shown {
        assert!(out.lines().any(|l| l == line), "not printed: {line}");
    }
}
