//! A speed probe that compares model files inside one process, alternating between them every
//! few hundred milliseconds, so that a machine whose speed drifts over seconds or minutes
//! affects every file alike. `scripts/twin-oracle.py` runs it; by hand:
//! `RUNNER_PROBE_MODELS=a.gguf,b.gguf cargo test --release --lib interleaved_speed_probe --
//! --ignored --nocapture` (optional `RUNNER_PROBE_ROUNDS`, `RUNNER_PROBE_THREADS`,
//! `RUNNER_PROBE_PROMPT`, `RUNNER_PROBE_GEN`, `RUNNER_PROBE_MMAP=1`). Each round times, for every file in a rotated
//! order, a prompt of fixed token ids and a generation from BOS exactly as `runner bench`
//! does (`Session::run`, greedy, end-of-generation ignored). The last line is `PROBE` and a
//! JSON object with every round's rates.

use super::*;
use std::path::PathBuf;
use std::sync::Arc;

fn env_num(key: &str, default: u32) -> u32 {
    std::env::var(key)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
        })
        .unwrap_or(default)
}

#[test]
#[ignore]
fn interleaved_speed_probe() {
    let paths: Vec<PathBuf> = std::env::var("RUNNER_PROBE_MODELS")
        .expect("RUNNER_PROBE_MODELS: comma-separated model files")
        .split(',')
        .map(PathBuf::from)
        .collect();
    let rounds = env_num("RUNNER_PROBE_ROUNDS", 20) as usize;
    let threads = env_num("RUNNER_PROBE_THREADS", 2);
    let n_prompt = env_num("RUNNER_PROBE_PROMPT", 64);
    let n_gen = env_num("RUNNER_PROBE_GEN", 32);
    let backend = test_backend();
    let opts = LoadOptions {
        n_gpu_layers: 0,
        // Off by default (the twin oracle's setting); RUNNER_PROBE_MMAP=1 maps the files, as
        // `runner bench` and `runner profile` do by default.
        use_mmap: std::env::var("RUNNER_PROBE_MMAP").is_ok_and(|v| v == "1"),
    };
    let settings = ContextSettings {
        n_ctx: n_prompt + n_gen + 8,
        n_batch: n_prompt.max(8),
        n_ubatch: n_prompt.max(8),
        threads,
        threads_batch: threads,
        flash_attn: FlashAttn::Auto,
        type_k: KvType::F16,
        type_v: KvType::F16,
    };
    let mut sessions: Vec<Session> = paths
        .iter()
        .map(|p| {
            let m = Arc::new(Model::load(backend, p, opts).expect("model loads"));
            Session::new(&m, &settings).expect("context")
        })
        .collect();
    // The same token ids for every file: they share a vocabulary (twins copy it).
    let prompt: Vec<i32> = (0..n_prompt as i32).map(|i| 100 + i * 37 % 5000).collect();
    let time = |s: &mut Session| -> (f64, f64) {
        s.clear();
        let pp = s.prefill(&prompt).expect("prompt");
        s.clear();
        let bos = [s.bos()];
        let opts = RunOptions {
            max_tokens: n_gen,
            stop_at_eog: false,
            ..Default::default()
        };
        let run = s.run(&bos, opts, &mut |_| Flow::Continue).expect("run");
        let t = &run.tokens;
        let tg = (t.len() - 1) as f64 / (t[t.len() - 1] - t[0]).as_secs_f64();
        (n_prompt as f64 / pp.as_secs_f64(), tg)
    };
    for s in sessions.iter_mut() {
        time(s); // warm-up
    }
    let n = sessions.len();
    let mut pp = vec![Vec::new(); n];
    let mut tg = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let (p, g) = time(&mut sessions[i]);
            pp[i].push(p);
            tg[i].push(g);
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let json = serde_json::json!({
        "models": paths,
        "threads": threads,
        "prompt": n_prompt,
        "gen": n_gen,
        "pp": pp,
        "tg": tg,
    });
    println!("PROBE {json}");
}
