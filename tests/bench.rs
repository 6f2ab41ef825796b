//! `runner bench` on the real SmolLM2-135M model: figures, provenance, memory and formats.

mod common;
use common::*;
use serde_json::Value;

fn bench_json(args: &str) -> Vec<Value> {
    let _g = heavy();
    let o = bench(&format!("{args} --format json"));
    assert!(o.status.success(), "bench failed: {}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    v.as_array().expect("an array of records").clone()
}

fn f(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for k in path.split('.') {
        cur = &cur[k];
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {cur}"))
}

#[test]
fn small_bench_has_sane_latencies_rates_and_provenance() {
    let recs = bench_json("-p 32 -n 16 -r 2 -t 2");
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r["test"]["name"], "pp32+tg16");
    // latencies and rates
    let ttft = f(r, "results.ttft_ms.median");
    assert!(ttft > 0.0 && ttft < 60_000.0, "ttft {ttft}");
    let p50 = f(r, "results.itl_ms.p50_ms");
    let p99 = f(r, "results.itl_ms.p99_ms");
    assert!(p50 > 0.0 && p99 >= p50 && f(r, "results.itl_ms.max_ms") >= p99);
    assert_eq!(
        f(r, "results.itl_ms.count"),
        30.0,
        "15 gaps x 2 repetitions"
    );
    assert!(f(r, "results.gen_tps.median") > 0.0);
    assert!(f(r, "results.prompt_tps.median") > 0.0);
    assert!(f(r, "results.e2e_ms.median") > ttft);
    let share = f(r, "results.harness_share");
    assert!((0.0..0.5).contains(&share), "harness share {share}");
    // raw samples
    let samples = r["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    let toks = samples[0]["token_ms"].as_array().unwrap();
    assert_eq!(toks.len(), 16);
    let t: Vec<f64> = toks.iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(t.windows(2).all(|w| w[1] >= w[0]), "token times increase");
    // provenance: model
    assert_eq!(r["model"]["architecture"], "llama");
    assert_eq!(r["model"]["file_type"], "Q4_1");
    let params = f(r, "model.n_params");
    assert!((1.3e8..1.4e8).contains(&params), "params {params}");
    assert!((4.0..8.0).contains(&f(r, "model.bits_per_weight")));
    assert_eq!(f(r, "model.context_length"), 8192.0);
    assert_eq!(
        r["model"]["sha256"],
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    );
    assert!(r["model"]["expert_count"].is_null());
    // engine, build, machine, time
    assert_eq!(f(r, "engine.threads"), 2.0);
    assert_eq!(r["engine"]["type_k"], "f16");
    assert!(r["engine"]["use_mmap"].as_bool().unwrap());
    assert!(!r["build"]["llama_cpp"].as_str().unwrap().is_empty());
    assert!(r["build"]["system_info"].as_str().unwrap().contains("CPU"));
    let features: Vec<&str> = r["build"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        features
            .iter()
            .any(|f| ["AVX2", "NEON", "AVX", "SSE3"].contains(f)),
        "{features:?}"
    );
    assert!(!r["build"]["devices"].as_array().unwrap().is_empty());
    assert!(!r["machine"]["cpu"].as_str().unwrap().is_empty());
    assert!(f(r, "machine.ram_bytes") > 1e8);
    assert!(f(r, "machine.logical_cores") >= 1.0);
    let time = r["time"].as_str().unwrap();
    assert!(
        time.len() >= 20 && &time[4..5] == "-" && &time[10..11] == "T",
        "{time}"
    );
    // load on the machine is recorded
    assert!(r["load"]["busy"].is_boolean());
    assert!(f(r, "load.during_other_cores_max") >= 0.0);
}

#[test]
fn memory_figures_match_the_model() {
    let recs = bench_json("-p 32 -n 8 -r 1 --ctx 512");
    let r = &recs[0];
    assert_eq!(f(r, "engine.n_ctx"), 512.0);
    // SmolLM2: 30 layers, 3 KV heads x 64 dims, f16 K and V: 2 x 30 x 192 x 2 bytes per cell
    assert_eq!(
        f(r, "memory.kv_cache_bytes"),
        512.0 * 2.0 * 30.0 * 192.0 * 2.0
    );
    let weights = f(r, "memory.model_bytes");
    let file = f(r, "model.size_bytes");
    assert!(
        weights > 0.8 * file && weights <= file,
        "weights {weights} file {file}"
    );
    assert!(f(r, "memory.compute_buffer_bytes") > 0.0);
    assert!(f(r, "memory.peak_rss_bytes") > 0.5 * weights);
}

#[test]
fn comma_lists_sweep_and_load_each_model_once() {
    let recs = bench_json("-p 0,16 -n 4 -t 1,2 -r 1 --no-warmup");
    let names: Vec<(String, f64)> = recs
        .iter()
        .map(|r| {
            (
                r["test"]["name"].as_str().unwrap().to_string(),
                f(r, "engine.threads"),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("tg4".to_string(), 1.0),
            ("pp16+tg4".to_string(), 1.0),
            ("tg4".to_string(), 2.0),
            ("pp16+tg4".to_string(), 2.0)
        ]
    );
    // one load: every record carries the same load time
    let load = f(&recs[0], "model.load_ms");
    assert!(load > 0.0);
    assert!(recs.iter().all(|r| f(r, "model.load_ms") == load));
    // prompt-only and depth tests
    let recs = bench_json("-p 16 -n 0 -d 8 -r 1");
    assert_eq!(recs[0]["test"]["name"], "pp16@d8");
    assert!(recs[0]["results"]["ttft_ms"].is_null());
    assert!(f(&recs[0], "results.prompt_tps.median") > 0.0);
}

#[test]
fn every_output_format_parses() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for ext in ["json", "jsonl", "csv", "md", "txt"] {
        let out = dir.path().join(format!("out.{ext}"));
        let o = bench(&format!("-p 8 -n 4 -r 1 -o {}", out.display()));
        assert!(o.status.success(), "{ext}: {}", stderr(&o));
        // stdout shows the table when results go to a file
        assert!(stdout(&o).contains("gen t/s"), "{ext}: {}", stdout(&o));
        let text = std::fs::read_to_string(&out).unwrap();
        match ext {
            "json" => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v.as_array().unwrap().len(), 1);
                assert_eq!(v[0]["samples"].as_array().unwrap().len(), 1);
            }
            "jsonl" => {
                let recs: Vec<Value> = text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                assert_eq!(recs.len(), 1);
            }
            "csv" => {
                let mut rd = csv::Reader::from_reader(text.as_bytes());
                let headers = rd.headers().unwrap().clone();
                let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
                assert_eq!(rows.len(), 1);
                let col = |name: &str| {
                    headers
                        .iter()
                        .position(|h| h == name)
                        .unwrap_or_else(|| panic!("no column {name}"))
                };
                let tps: f64 = rows[0][col("results.gen_tps.median")].parse().unwrap();
                assert!(tps > 0.0);
                assert_eq!(&rows[0][col("model.architecture")], "llama");
                assert_eq!(&rows[0][col("test.name")], "pp8+tg4");
            }
            "md" => {
                let l = lines(&text);
                assert_eq!(l.len(), 3);
                assert!(l.iter().all(|x| x.starts_with('|') && x.ends_with('|')));
                assert!(l[1].contains("---"));
                assert_eq!(l[0].matches('|').count(), l[2].matches('|').count());
            }
            _ => {
                let l = lines(&text);
                assert_eq!(l.len(), 3);
                assert!(l[0].contains("TTFT ms") && l[2].contains("pp8+tg4"));
            }
        }
    }
}

#[test]
fn jsonl_and_csv_on_stdout() {
    let _g = heavy();
    for fmt in ["jsonl", "csv", "md", "table"] {
        let o = bench(&format!("-p 8 -n 2 -r 1 --format {fmt}"));
        assert!(o.status.success(), "{fmt}: {}", stderr(&o));
        let out = stdout(&o);
        match fmt {
            "jsonl" => assert!(serde_json::from_str::<Value>(out.trim()).is_ok()),
            "csv" => assert_eq!(
                csv::Reader::from_reader(out.as_bytes()).records().count(),
                1
            ),
            _ => assert_eq!(lines(&out).len(), 3, "{out}"),
        }
    }
}

#[test]
fn llama_log_is_silent_unless_verbose() {
    let _g = heavy();
    let args = "-p 8 -n 2 -r 1 --busy-threshold 64";
    let quiet = bench(args);
    assert!(quiet.status.success());
    assert!(
        without_probe(&stderr(&quiet)).trim().is_empty(),
        "stderr: {}",
        stderr(&quiet)
    );
    let loud = bench(&format!("{args} --verbose"));
    assert!(loud.status.success());
    assert!(
        stderr(&loud).contains("llama_model_loader"),
        "{}",
        stderr(&loud)
    );
}
