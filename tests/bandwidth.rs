//! `runner hw` and the bandwidth figures of bench records, on this machine and the real
//! SmolLM2 model.

mod common;
use common::*;
use runner::gguf::GgufFile;
use serde_json::Value;

fn hw_json(cache: &std::path::Path, extra: &[&str]) -> Value {
    let _g = heavy();
    let mut args = vec![
        "--cache-dir",
        cache.to_str().unwrap(),
        "hw",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("hw prints JSON")
}

#[test]
fn probe_gives_positive_results_in_a_stable_order_and_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let v = hw_json(
        dir.path(),
        &["--size-mib", "64", "--passes", "2", "-t", "1,2"],
    );
    let order: Vec<(String, u64)> = v["probe"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let gbps = r["gbps"].as_f64().unwrap();
            assert!(gbps > 0.0 && gbps.is_finite(), "{r}");
            assert_eq!(r["passes_gbps"].as_array().unwrap().len(), 2);
            (
                r["kernel"].as_str().unwrap().to_string(),
                r["threads"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [1, 2]
        .iter()
        .flat_map(|&t| ["read", "copy", "triad"].map(|k| (k.to_string(), t)))
        .collect();
    assert_eq!(order, want);
    assert_eq!(v["probe"]["array_bytes"], 64 << 20);
    assert!(v["measured_peak_gbps"].as_f64().unwrap() > 0.0);
    assert!(v["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    // Saved for later runs, unless other processes kept the machine busy meanwhile.
    let saved = dir.path().join("hw/bandwidth.json");
    if v["probe"]["busy"].as_bool().unwrap() {
        assert!(!saved.exists(), "a busy machine's probe is not saved");
        return;
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(saved).unwrap()).unwrap();
    assert_eq!(saved["results"], v["probe"]["results"]);
}

#[test]
fn a_probe_that_cannot_be_saved_says_why_in_plain_words() {
    // The cache's hw directory is a file: the measurement cannot be written there.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hw"), "").unwrap();
    let cache = dir.path().to_str().unwrap();
    let args = [
        "--cache-dir",
        cache,
        "hw",
        "--size-mib",
        "1",
        "--passes",
        "1",
        "-t",
        "1",
    ];
    let o = {
        let _g = heavy();
        run(&args)
    };
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let unwritable = err.contains("warning: the measurement is not saved: could not write");
    let busy = err.contains("; measure again on an idle machine");
    assert!(unwritable || busy, "{err}");
    assert!(!err.contains("is could not"), "{err}");
}

#[test]
fn chip_table_and_bad_arguments() {
    let o = run(&["hw", "--chips"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Apple M4 Max (16-core CPU)") && out.contains("546.0"),
        "{out}"
    );
    assert!(out.contains("NVIDIA H100 SXM"), "{out}");
    for bad in [
        ["hw", "--passes", "0"],
        ["hw", "--threads", "0"],
        ["hw", "--size-mib", "x"],
        ["hw", "--passes", "4294967295"],
        ["hw", "--size-mib", "1000000"],
        ["hw", "-t", "1,1"],
    ] {
        let o = run(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert_eq!(lines(&stderr(&o)).len(), 1, "{}", stderr(&o));
    }
    // The table measures nothing: a measurement's settings with it are refused, not ignored.
    for (flag, value) in [("--passes", "3"), ("-t", "2"), ("--size-mib", "256")] {
        let o = run(&["hw", "--chips", flag, value]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        assert_eq!(lines(&err).len(), 1, "{flag}: {err}");
        let conflict = err.contains("cannot be used with") && err.contains("'--chips");
        assert!(conflict, "{flag}: {err}");
        assert!(stdout(&o).is_empty(), "{flag}: {}", stdout(&o));
    }
}

#[test]
fn bench_records_the_bytes_a_token_reads_and_the_rate_it_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap().to_string();
    let model = model().to_str().unwrap().to_string();
    let o = {
        let _g = heavy();
        let args = [
            "--cache-dir",
            &cache,
            "bench",
            "-m",
            &model,
            "--no-progress",
        ];
        runner()
            .args(args)
            .args(["-p", "8", "-n", "8", "-r", "1", "--format", "json"])
            .output()
            .unwrap()
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let recs: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let b = &recs[0]["bandwidth"];
    // SmolLM2 ties its embedding to the output matrix: a token reads every weight tensor once.
    let g = GgufFile::open(model.as_ref()).unwrap();
    assert!(g.tensor("output.weight").is_none());
    let weights: u64 = g.tensors.iter().map(|t| t.n_bytes).sum();
    let got = b["weight_bytes_per_token"].as_f64().unwrap();
    assert!(
        (got - weights as f64).abs() <= 0.01 * weights as f64,
        "{got} vs {weights}"
    );
    // KV cache at the mean decode depth (8 prompt + 8/2 generated), f16, from the
    // hyperparameters: layers × depth × 2 (K and V) × kv heads × head size × 2 bytes.
    let layers = g.arch_u64("block_count").unwrap();
    let heads = g.arch_u64("attention.head_count").unwrap();
    let kv_heads = g.arch_u64("attention.head_count_kv").unwrap();
    let head = g.arch_u64("embedding_length").unwrap() / heads;
    assert_eq!(b["kv_depth"].as_f64(), Some(12.0));
    assert_eq!(
        b["kv_bytes_per_token"].as_u64(),
        Some(layers * 12 * 2 * kv_heads * head * 2)
    );
    let total = b["bytes_per_token"].as_f64().unwrap();
    let tps = recs[0]["results"]["gen_tps"]["median"].as_f64().unwrap();
    let gbps = b["achieved_gbps"].as_f64().unwrap();
    assert!((gbps - total * tps / 1e9).abs() < 1e-9 * gbps.max(1.0));
    // The probe this bench ran was saved for the next one and used, unless the machine was
    // busy: then it is neither, and the record has no measured peak.
    let busy = stderr(&o).contains("bandwidth probe was taken on a busy machine");
    assert_eq!(dir.path().join("hw/bandwidth.json").is_file(), !busy);
    if busy {
        assert!(b["measured_peak_gbps"].is_null(), "{b}");
    } else {
        let peak = b["measured_peak_gbps"].as_f64().unwrap();
        let util = b["utilisation_measured"].as_f64().unwrap();
        assert!((util - gbps / peak).abs() < 1e-9);
    }
}

/// `bench -m A,B` measures the machine's bandwidth once and holds every model against that
/// one figure, even when it cannot be saved for later runs.
#[test]
fn bench_of_several_models_measures_the_bandwidth_once() {
    let dir = tempfile::tempdir().unwrap();
    // The cache's hw directory is a file: the measurement cannot be saved.
    std::fs::write(dir.path().join("hw"), "").unwrap();
    let cache = dir.path().to_str().unwrap().to_string();
    // The same model under a second name (a model named twice is refused).
    let model = model().to_str().unwrap().to_string();
    let other = dir.path().join("other.gguf");
    std::os::unix::fs::symlink(&model, &other).unwrap();
    let models = format!("{model},{}", other.display());
    let o = {
        let _g = heavy();
        let args = [
            "--cache-dir",
            &cache,
            "bench",
            "-m",
            &models,
            "--no-progress",
        ];
        runner()
            .args(args)
            .args(["-p", "8", "-n", "4", "-r", "1", "--format", "json"])
            .output()
            .unwrap()
    };
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let probes = err
        .matches("measuring this machine's memory bandwidth once")
        .count();
    assert_eq!(probes, 1, "{err}");
    let recs: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let peaks: Vec<&Value> = (recs.as_array().unwrap().iter())
        .map(|r| &r["bandwidth"]["measured_peak_gbps"])
        .collect();
    assert_eq!(peaks.len(), 2, "{recs}");
    for r in recs.as_array().unwrap() {
        assert!(r["bandwidth"]["achieved_gbps"].is_f64(), "{r}");
    }
    assert_eq!(peaks[0], peaks[1], "{recs}");
}
