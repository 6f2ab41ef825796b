//! `runner profile` on the real SmolLM2 model and on its upcycled MoE (4 experts, top 2): op
//! categories that account for the measured token time, weight bytes that match the file,
//! router and expert categories only for the MoE, sensible expert statistics, the routing
//! overhead against the dense source, JSON that parses, one-line errors for bad arguments.

mod common;
use common::*;
use runner::gguf::GgufFile;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// Every test holds `heavy()` for its whole run, the quick refusals too: a profile's coverage
// and perturbation are ratios of times, and another test's process on the same cores (making
// the upcycled MoE, loading a model) stretches the time between graph nodes.

/// A quick profile: 8 long-form tokens after 32, 2 short-response samples.
const QUICK: &str = "-n 8 -d 32 -p 8 -r 2 --window 4 --busy-threshold 64";

fn profile_json(model: &Path, extra: &str) -> Value {
    let m = model.display().to_string();
    let mut args = vec!["profile", "-m", m.as_str(), "--format", "json"];
    args.extend(QUICK.split_whitespace());
    args.extend(extra.split_whitespace());
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("--format json prints one JSON document")
}

fn phase<'a>(model: &'a Value, name: &str) -> &'a Value {
    model["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no {name} phase in {model}"))
}

fn categories(phase: &Value) -> Vec<String> {
    phase["breakdown"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap().to_string())
        .collect()
}

/// The categories account for the measured time (the callback sees inside every node; the
/// rest is llama.cpp's work between graph nodes), and their times add up to the node time.
/// A short-response call decodes one token after a cleared cache, so llama.cpp's fixed work
/// per call (graph set-up, input upload, copying the logits out) is a larger share of it:
/// 8-11 % measured on SmolLM2 here, against 3-5 % in steady decode.
fn check_coverage(p: &Value) {
    let b = &p["breakdown"];
    let coverage = b["coverage"].as_f64().unwrap();
    let least = if p["phase"] == "short-response" {
        0.85
    } else {
        0.9
    };
    assert!(
        (least..=1.0 + 1e-9).contains(&coverage),
        "{}: categories cover {coverage} of the token time",
        p["phase"]
    );
    let sum: f64 = b["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ms_per_token"].as_f64().unwrap())
        .sum();
    let nodes = b["node_ms_per_token"].as_f64().unwrap();
    assert!(
        (sum - nodes).abs() <= 1e-6 * nodes.max(1.0),
        "{sum} vs {nodes}"
    );
    for k in [
        "unprofiled_ms",
        "profiled_ms",
        "unprofiled_tps",
        "perturbation",
    ] {
        assert!(p[k].as_f64().unwrap() > 0.0, "{k} in {p}");
    }
}

#[test]
fn dense_profile_covers_the_token_time_without_moe_categories() {
    let _g = heavy();
    let r = profile_json(model(), "--pp");
    let m = &r["model"];
    for name in ["short-response", "long-form", "prompt"] {
        let p = phase(m, name);
        check_coverage(p);
        let cats = categories(p);
        for c in ["attention", "ffn", "norm", "output"] {
            assert!(cats.iter().any(|x| x == c), "{name}: no {c} in {cats:?}");
        }
        for c in ["router", "experts", "expert_mix"] {
            assert!(!cats.iter().any(|x| x == c), "{name}: {c} in a dense model");
        }
    }
    assert_eq!(phase(m, "prompt")["tokens_per_call"], 32);
    assert_eq!(phase(m, "long-form")["calls"], 8);
    assert!(r["routing"].is_null() && r["dense"].is_null());
    assert!(m["experts"].is_null());
    assert!(!phase(m, "long-form")["top_nodes"]
        .as_array()
        .unwrap()
        .is_empty());
    // One decoded token reads every weight once (SmolLM2 ties the output matrix to the token
    // embedding, read whole by the output head) plus one embedding row.
    let g = GgufFile::open(model()).unwrap();
    let embd = g.tensor("token_embd.weight").unwrap();
    let row = embd.n_bytes as f64 / embd.dims[1] as f64;
    let expected = g.tensor_bytes() as f64 + row;
    let got = phase(m, "long-form")["breakdown"]["weight_bytes_per_token"]
        .as_f64()
        .unwrap();
    assert!(
        (got / expected - 1.0).abs() < 0.01,
        "weights read per token {got}, tensors {expected}"
    );
    let kv = phase(m, "long-form")["breakdown"]["kv_bytes_per_token"]
        .as_f64()
        .unwrap();
    assert!(kv > 0.0, "decode at depth reads the KV cache");
}

#[test]
fn the_table_names_phases_categories_and_perturbation() {
    let _g = heavy();
    let m = model().display().to_string();
    let mut args = vec!["profile", "-m", m.as_str()];
    args.extend(QUICK.split_whitespace());
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "short-response",
        "long-form",
        "coverage",
        "prof./plain",
        "dense FFN",
        "attention",
        "outside graph nodes",
        "top nodes",
    ] {
        assert!(out.contains(needle), "no '{needle}' in\n{out}");
    }
    assert!(!out.contains("router"), "{out}");
}

/// Runs a profile that must be refused; its one stderr line.
fn refused(args: &[&str], code: i32) -> String {
    let mut full = vec!["profile"];
    full.extend_from_slice(args);
    let o = run(&full);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    let l = lines(&err);
    assert_eq!(l.len(), 1, "{args:?}: expected one line, got {err}");
    assert!(l[0].starts_with("error: "), "{}", l[0]);
    assert!(stdout(&o).is_empty());
    l[0].to_string()
}

#[test]
fn bad_arguments_get_one_line() {
    let _g = heavy();
    let m = model().to_str().unwrap();
    let e = refused(&["-m", m, "-n", "4", "--window", "8"], 2);
    assert!(e.contains("--window 8"), "{e}");
    let e = refused(&["-m", m, "-n", "0"], 2);
    assert!(e.contains("at least 1"), "{e}");
    // Repetitions are bounded as bench's are: a count the run could not hold is refused.
    for r in ["4294967295", "10001", "0"] {
        let e = refused(&["-m", m, "-r", r], 2);
        assert!(e.contains("--repetitions"), "{e}");
    }
    let e = refused(&["-m", m, "--format", "csv"], 2);
    assert!(e.contains("csv"), "{e}");
    let e = refused(&["-m", "no-such-model"], 2);
    assert!(e.contains("unknown model"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, "not a model\n").unwrap();
    let e = refused(&["-m", bad.to_str().unwrap()], 2);
    assert!(e.contains("not a GGUF file"), "{e}");
}

/// The upcycled SmolLM2 (4 experts, top 2), made once per test binary with
/// `runner moe upcycle`, next to a link to its dense source (where `profile` looks for it).
fn moe() -> &'static Path {
    static MOE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &MOE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("smollm2-moe-4x2.gguf");
        let src = model().to_str().unwrap().to_string();
        let o = run(&[
            "moe",
            "upcycle",
            &src,
            out.to_str().unwrap(),
            "--experts",
            "4",
            "--used",
            "2",
        ]);
        assert!(o.status.success(), "upcycle failed: {}", stderr(&o));
        let link = dir.path().join(model().file_name().unwrap());
        std::os::unix::fs::symlink(model().canonicalize().unwrap(), link).unwrap();
        (dir, out)
    })
    .1
}

#[test]
fn moe_profile_has_router_experts_stats_and_overhead() {
    let _g = heavy();
    let r = profile_json(moe(), "");
    let m = &r["model"];
    assert_eq!(m["model"]["expert_count"], 4);
    for name in ["short-response", "long-form"] {
        let p = phase(m, name);
        check_coverage(p);
        let cats = categories(p);
        for c in ["router", "experts", "expert_mix", "attention"] {
            assert!(cats.iter().any(|x| x == c), "{name}: no {c} in {cats:?}");
        }
        assert!(
            !cats.iter().any(|x| x == "ffn"),
            "{name}: dense FFN in {cats:?}"
        );
    }
    let e = &m["experts"];
    let tokens = e["tokens"].as_u64().unwrap();
    assert_eq!(tokens, 8);
    let layers = e["layers"].as_array().unwrap();
    assert_eq!(layers.len() as u64, m["model"]["n_layer"].as_u64().unwrap());
    for l in layers {
        let usage: u64 = l["usage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_u64().unwrap())
            .sum();
        assert_eq!(usage, tokens * 2, "usage sums to tokens × used in {l}");
        let reuse = l["reuse_share"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&reuse), "{l}");
        let distinct = l["distinct_mean"].as_f64().unwrap();
        assert!((2.0..=4.0).contains(&distinct), "{l}");
        assert!(l["distinct_max"].as_u64().unwrap() <= 4);
    }
    assert_eq!(e["invalid_ids"], 0);
    // the dense source, found through the upcycle metadata, gives the overhead figure
    let dense = &r["dense"];
    assert!(dense.is_object(), "no dense reference: {}", r["notes"]);
    // measured in both load orders, pooled: the short-response samples split between them, the
    // long-form decode in full in each (expert selection above counts each token once)
    assert!(
        r["notes"].to_string().contains("both load orders"),
        "{}",
        r["notes"]
    );
    for p in [&r["model"], dense] {
        assert_eq!(phase(p, "long-form")["calls"], 16, "{p}");
        assert_eq!(phase(p, "short-response")["calls"], 2, "{p}");
    }
    let routing = &r["routing"];
    for name in ["short", "long"] {
        let p = &routing[name];
        let o = &p["overhead"];
        assert!(o.is_object(), "{name}: no overhead in {routing}");
        let moe_bytes = o["moe_bytes"].as_f64().unwrap();
        let dense_bytes = o["dense_bytes"].as_f64().unwrap();
        // two of four identical experts: more bytes than the dense model, fewer than twice
        assert!(
            moe_bytes > dense_bytes && moe_bytes < 2.0 * dense_bytes,
            "{o}"
        );
        assert!(o["share"].as_f64().unwrap() < 1.0);
        assert!(p["router_share"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn moe_without_a_dense_reference_says_so() {
    let _g = heavy();
    // a copy of the MoE alone in a directory, with a cache that does not hold the source
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("lone-moe.gguf");
    std::fs::copy(moe(), &lone).unwrap();
    let cache = dir.path().join("cache");
    let r = profile_json(&lone, &format!("--cache-dir {}", cache.display()));
    assert!(r["dense"].is_null());
    let routing = &r["routing"];
    assert!(
        routing["note"].as_str().unwrap().contains("--dense"),
        "{routing}"
    );
    assert!(routing["long"]["overhead"].is_null());
    assert!(routing["long"]["experts_share"].as_f64().unwrap() > 0.0);
    let e = refused(
        &[
            "-m",
            lone.to_str().unwrap(),
            "--dense",
            lone.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("itself an MoE"), "{e}");
}

#[test]
fn a_dense_reference_of_another_shape_or_for_a_dense_model_is_refused() {
    let _g = heavy();
    let gemma = std::env::var("RUNNER_TEST_MODEL_GEMMA")
        .expect("RUNNER_TEST_MODEL_GEMMA names gemma-3-270m (scripts/test.sh sets it)");
    let e = refused(&["-m", moe().to_str().unwrap(), "--dense", &gemma], 2);
    assert!(e.contains("not a dense reference of this model"), "{e}");
    assert!(
        e.contains("hidden size 640 (gemma3), the MoE model's 576 (llama)"),
        "{e}"
    );
    let m = model().to_str().unwrap();
    let e = refused(&["-m", m, "--dense", m], 2);
    assert!(e.contains("is dense itself"), "{e}");
}

/// `--dense` with a `synth:` name that is dense (a dense entry, or an MoE entry's dense
/// reference) is refused before the model is made.
#[test]
fn a_dense_reference_for_a_dense_synthetic_model_is_refused_before_it_is_made() {
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    for spec in [
        "synth:llama-2-7b@q4_0:layers=1:tokenizer=none",
        "synth:qwen3-30b-a3b@q4_0:layers=1:dense:tokenizer=none",
    ] {
        let o = run(&["--cache-dir", c, "profile", "-m", spec, "--dense", "d.gguf"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{spec}: {err}");
        assert_eq!(lines(&err).len(), 1, "{spec}: {err}");
        assert!(
            err.contains(&format!("--dense d.gguf: {spec} is dense itself")),
            "{err}"
        );
        assert!(!cache.path().join("synth").exists(), "{spec}: nothing made");
    }
}

#[test]
fn a_sweep_cell_of_the_moe_records_a_routing_block() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let cache = dir.path().join("cache");
    let o = run(&[
        "sweep",
        "--no-progress",
        "-m",
        moe().to_str().unwrap(),
        "--quant",
        "source",
        "--scenario",
        "short-response",
        "--limit",
        "1",
        "--results",
        results.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--busy-threshold",
        "64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a results file");
    let text = std::fs::read_to_string(file).unwrap();
    let rec: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let routing = &rec["info"]["routing"];
    assert_eq!(routing["n_expert"], 4, "{rec}");
    assert_eq!(routing["n_expert_used"], 2);
    assert!(routing["note"].is_null(), "{routing}");
    for name in ["short", "long"] {
        let p = &routing[name];
        assert!(p["ms_per_token"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["router_share"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["overhead"]["share"].as_f64().is_some(), "{p}");
    }
    let reuse = routing["reuse_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&reuse));
}
