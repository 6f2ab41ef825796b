//! Continuous batching on the real test model ($RUNNER_TEST_MODEL): one sequence decodes
//! exactly as a single run does, prompts split over several batches and sequences decoded
//! together keep their greedy tokens, and a request too long for its slot fails alone.

use super::*;
use crate::engine::{FlashAttn, KvType, LoadOptions, RunOptions, Session};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn model() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| {
        let opts = LoadOptions {
            n_gpu_layers: 0,
            use_mmap: true,
        };
        let backend = crate::engine::test_backend();
        let path = crate::util::test_model();
        Arc::new(Model::load(backend, &path, opts).expect("model loads"))
    }))
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn settings(n_ctx: u32, n_batch: u32) -> ContextSettings {
    ContextSettings {
        n_ctx,
        n_batch,
        n_ubatch: n_batch,
        threads: 2,
        threads_batch: 2,
        flash_attn: FlashAttn::Auto,
        type_k: KvType::F16,
        type_v: KvType::F16,
    }
}

/// Admits every request at once (as slots allow) and keeps what happens.
#[derive(Default)]
struct Collect {
    waiting: Vec<(usize, Vec<i32>, u32)>,
    time_limit: Option<Duration>,
    /// Requests that sample (temperature > 0) instead of choosing greedily.
    sampled: Vec<usize>,
    tokens: HashMap<usize, Vec<i32>>,
    /// The logits' width at each token.
    widths: HashMap<usize, Vec<usize>>,
    ends: HashMap<usize, Result<RunTrace, String>>,
    most_at_once: usize,
}

impl Feed for Collect {
    fn next(&mut self, _now: Instant) -> Option<(usize, SeqRequest)> {
        let (id, prompt, max_tokens) = self.waiting.pop()?;
        Some((
            id,
            SeqRequest {
                prompt,
                max_tokens,
                stop_at_eog: false,
                sampler: self.sampled.contains(&id).then(|| {
                    let sampling = crate::scenario::Sampling {
                        temperature: 0.8,
                        seed: 7,
                        top_p: Some(0.9),
                        top_k: Some(40),
                    };
                    Sampler::new(&sampling).expect("sampler")
                }),
                time_limit: self.time_limit,
            },
        ))
    }
    fn next_arrival(&self) -> Option<Instant> {
        None
    }
    fn token(&mut self, id: usize, e: &TokenEvent<'_>) -> Flow {
        self.tokens.entry(id).or_default().push(e.token);
        self.widths.entry(id).or_default().push(e.logits.len());
        let live = self.tokens.len() - self.ends.len();
        self.most_at_once = self.most_at_once.max(live);
        Flow::Continue
    }
    fn done(&mut self, id: usize, result: Result<RunTrace, String>) {
        self.ends.insert(id, result);
    }
}

fn alone(m: &Arc<Model>, prompt: &[i32], n: u32) -> Vec<i32> {
    let mut s = Session::new(m, &settings(512, 512)).expect("context");
    let mut out = Vec::new();
    let opts = RunOptions {
        max_tokens: n,
        ..Default::default()
    };
    s.run(prompt, opts, &mut |t| {
        out.push(t.token);
        Flow::Continue
    })
    .expect("run");
    out
}

fn prompts(m: &Model) -> Vec<Vec<i32>> {
    [
        "The capital of France is",
        "Once upon a time, in a small village by the sea, there lived an old fisherman who",
        "def fibonacci(n):",
    ]
    .iter()
    .map(|t| m.tokenize(t, true, false))
    .collect()
}

#[test]
fn one_sequence_decodes_as_a_single_run_does() {
    let _g = serial();
    let m = model();
    let p = prompts(&m).remove(1);
    let want = alone(&m, &p, 24);
    // A batch of 8 splits the prompt over several steps.
    for n_batch in [512, 8] {
        let mut b = Batcher::new(&m, &settings(512, n_batch), 1).expect("batcher");
        let mut feed = Collect {
            waiting: vec![(0, p.clone(), 24)],
            ..Default::default()
        };
        b.serve(&mut feed);
        assert_eq!(feed.tokens[&0], want, "n_batch {n_batch}");
        let t = feed.ends[&0].as_ref().expect("ended");
        assert_eq!(t.tokens.len(), 24);
        assert_eq!(t.reason, RunEnd::MaxTokens);
        assert!(t.prompt_eval <= t.tokens[0] && t.tokens[23] <= t.end);
    }
}

#[test]
fn a_sequence_whose_step_ran_past_its_time_limit_ends_at_the_limit() {
    let _g = serial();
    let m = model();
    // A prompt whose evaluation takes far longer than the limit, in one step: the limit has
    // not passed when the step starts, and has when it ends.
    let long: Vec<i32> = prompts(&m).concat().repeat(12);
    let mut b = Batcher::new(&m, &settings(1024, 1024), 1).expect("batcher");
    let mut feed = Collect {
        waiting: vec![(0, long[..long.len().min(900)].to_vec(), 1)],
        time_limit: Some(Duration::from_millis(20)),
        ..Default::default()
    };
    b.serve(&mut feed);
    let t = feed.ends[&0].as_ref().expect("ended");
    assert!(t.end > Duration::from_millis(20), "{t:?}");
    assert_eq!(t.reason, RunEnd::TimeLimit);
}

#[test]
fn sequences_decoded_together_keep_their_greedy_tokens() {
    let _g = serial();
    let m = model();
    let ps = prompts(&m);
    let want: Vec<Vec<i32>> = ps.iter().map(|p| alone(&m, p, 16)).collect();
    let mut b = Batcher::new(&m, &settings(256, 512), 3).expect("batcher");
    let mut feed = Collect {
        waiting: ps
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, p)| (i, p, 16))
            .collect(),
        ..Default::default()
    };
    b.serve(&mut feed);
    assert_eq!(feed.most_at_once, 3, "all three were in flight at once");
    let same = (0..3).filter(|i| feed.tokens[i] == want[*i]).count();
    assert!(same >= 2, "{same} of 3 sequences kept their greedy tokens");
}

/// Three requests in one batcher, two greedy and one sampled; `on_device` as if the output
/// layer sat on a GPU (llama.cpp then runs the greedy sampler in the graph on the CPU).
fn greedy_and_sampled(on_device: bool) -> Collect {
    let mut m = Model::load(
        crate::engine::test_backend(),
        &crate::util::test_model(),
        LoadOptions {
            n_gpu_layers: 0,
            use_mmap: true,
        },
    )
    .expect("model loads");
    m.output_on_gpu = on_device;
    let m = Arc::new(m);
    let mut b = Batcher::new(&m, &settings(256, 512), 3).expect("batcher");
    let mut feed = Collect {
        waiting: prompts(&m)
            .into_iter()
            .enumerate()
            .map(|(i, p)| (i, p, 16))
            .collect(),
        sampled: vec![2],
        ..Default::default()
    };
    b.serve(&mut feed);
    assert_eq!(b.ctx.greedy_on_device(), on_device);
    feed
}

#[test]
fn greedy_sequences_choose_in_the_graph_beside_a_sampled_one() {
    let _g = serial();
    let host = greedy_and_sampled(false);
    let device = greedy_and_sampled(true);
    for id in 0..3 {
        assert_eq!(device.tokens[&id].len(), 16, "request {id}");
        assert_eq!(device.tokens[&id], host.tokens[&id], "request {id}");
        assert!(host.widths[&id].iter().all(|&w| w > 1000), "request {id}");
    }
    for id in 0..2 {
        assert!(
            device.widths[&id].iter().all(|&w| w == 0),
            "greedy request {id} brought no logits to the host"
        );
    }
    assert!(
        device.widths[&2].iter().all(|&w| w > 1000),
        "the sampled request read its logits on the host"
    );
}

/// More slots than the batch settings' tokens (llama.cpp asserts every sequence has an
/// output within one batch): the batch grows to a token per slot.
#[test]
fn more_slots_than_batch_tokens_decode() {
    let _g = serial();
    let m = model();
    let ps = prompts(&m);
    let mut b = Batcher::new(&m, &settings(64, 64), 65).expect("batcher");
    let mut feed = Collect {
        waiting: (0..65).map(|id| (id, ps[0].clone(), 2)).collect(),
        ..Default::default()
    };
    b.serve(&mut feed);
    assert_eq!(feed.ends.len(), 65);
    assert!(feed.ends.values().all(Result::is_ok));
    assert!(feed.tokens.values().all(|t| t.len() == 2));
}

#[test]
fn a_request_too_long_for_its_slot_fails_alone() {
    let _g = serial();
    let m = model();
    let ps = prompts(&m);
    let mut b = Batcher::new(&m, &settings(256, 512), 2).expect("batcher");
    let fits = b.n_ctx_seq() - ps[0].len() as u32;
    let mut feed = Collect {
        waiting: vec![
            (0, ps[0].clone(), 8),
            (1, ps[1].clone(), fits + 1),
            (2, vec![], 4),
        ],
        ..Default::default()
    };
    b.serve(&mut feed);
    assert!(feed.ends[&0].is_ok());
    let long = feed.ends[&1].as_ref().expect_err("too long");
    assert!(long.contains("do not fit"), "{long}");
    assert!(feed.ends[&2].as_ref().expect_err("empty").contains("empty"));
    assert_eq!(feed.tokens[&0].len(), 8);
}

/// The batcher with one sequence against `Session::run` on the same prompts, alternating:
/// the tokens must be the same in every round; the decode rates and prompt times are printed
/// (a speed probe for an idle machine: `cargo test --release --lib batch_speed_probe --
/// --ignored --nocapture`).
#[test]
#[ignore]
fn batch_speed_probe() {
    let _g = serial();
    let m = model();
    let long = "Once upon a time, in a small village by the sea, there lived an old fisherman. ";
    for text in [long.to_string(), long.repeat(40)] {
        let p = m.tokenize(&text, true, false);
        let mut session = Session::new(&m, &settings(1024, 1024)).expect("context");
        let mut b = Batcher::new(&m, &settings(1024, 1024), 1).expect("batcher");
        let mut ratios = Vec::new();
        for round in 0..6 {
            session.clear();
            let mut single_tokens = Vec::new();
            let opts = RunOptions {
                max_tokens: 128,
                ..Default::default()
            };
            let t = session
                .run(&p, opts, &mut |e| {
                    single_tokens.push(e.token);
                    Flow::Continue
                })
                .expect("run");
            let mut feed = Collect {
                waiting: vec![(0, p.clone(), 128)],
                ..Default::default()
            };
            b.serve(&mut feed);
            assert_eq!(feed.tokens[&0], single_tokens, "round {round}");
            let bt = feed.ends[&0].as_ref().expect("ended");
            let rate = |t: &[Duration]| 127.0 / (t[127] - t[0]).as_secs_f64();
            let ratio = rate(&bt.tokens) / rate(&t.tokens);
            ratios.push(ratio);
            eprintln!(
                "{} prompt tokens, round {round}: single {:.1} tok/s, prompt {:?}; batched {:.1} tok/s, prompt {:?}; ratio {ratio:.3}",
                p.len(),
                rate(&t.tokens),
                t.prompt_eval,
                rate(&bt.tokens),
                bt.prompt_eval
            );
        }
        ratios.sort_by(f64::total_cmp);
        eprintln!("{} prompt tokens: median ratio {:.3}", p.len(), ratios[3]);
    }
}
