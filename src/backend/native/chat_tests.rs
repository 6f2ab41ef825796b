//! Tests of generation: stop-string and UTF-8 logic alone, then real requests on SmolLM2-135M
//! ($RUNNER_TEST_MODEL) and gemma-3-270m, a base model without a chat template
//! ($RUNNER_TEST_MODEL_GEMMA, or the model cache); each fails when its model is missing.

use super::*;
use crate::engine::template::{self, TEMPLATE_MODEL, TEMPLATE_RAW};
use crate::engine::{ContextSettings, FlashAttn, KvType, LoadOptions, Model};
use crate::scenario::{Message, Prompt, Role, Sampling};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

fn stops(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

#[test]
fn stop_strings_are_found_where_they_complete() {
    let s = stops(&["\n\n", "END"]);
    assert_eq!(find_stop(b"Hello", 0, &s), None);
    assert_eq!(find_stop(b"Hello\n\nmore", 0, &s), Some(5));
    // Split across pieces: "...E" then "ND" arrives at 6.
    assert_eq!(find_stop(b"Hello END", 7, &s), Some(6));
    assert_eq!(
        find_stop(b"Hello END", 8, &s),
        Some(6),
        "only the last byte is new"
    );
    assert_eq!(
        find_stop(b"Hello END", 9, &s),
        None,
        "nothing new: checked before"
    );
    // Matches wholly before the new piece were checked when they arrived.
    assert_eq!(find_stop(b"END and more", 11, &s), None);
    // The earliest of several wins.
    assert_eq!(find_stop(b"a\n\nEND", 0, &s), Some(1));
    assert_eq!(find_stop(b"aEND\n\n", 0, &s), Some(1));
    assert_eq!(
        find_stop(b"abc", 0, &stops(&[""])),
        None,
        "empty stops are ignored"
    );
    assert_eq!(find_stop(b"ab", 5, &s), None, "new_from past the end");
}

#[test]
fn characters_split_across_tokens_stay_whole() {
    let word = "café ☕ ok";
    let bytes = word.as_bytes();
    // Feed the bytes one by one, as pieces that cut every multi-byte character.
    let mut buf = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        let before = buf.len();
        buf.push(*b);
        assert_eq!(find_stop(&buf, before, &stops(&["☕"])).is_some(), i == 8);
    }
    assert_eq!(text_of(&buf), word);
    assert!(!text_of(&buf).contains('\u{FFFD}'));
    // A stop string after a multi-byte character cuts on the character boundary.
    let at = find_stop(&buf, 0, &stops(&[" ☕"])).expect("found");
    buf.truncate(at);
    assert_eq!(text_of(&buf), "café");
    // A character cut for good (e.g. by max_tokens) reads as one replacement character.
    assert_eq!(text_of(&"é".as_bytes()[..1]), "\u{FFFD}");
}

/// Model tests run one at a time: two 2-thread decodes at once starve each other.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn load(path: PathBuf) -> Arc<Model> {
    let opts = LoadOptions {
        n_gpu_layers: 0,
        use_mmap: true,
    };
    let backend = crate::engine::test_backend();
    Arc::new(Model::load(backend, &path, opts).expect("model loads"))
}

fn smollm() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| load(crate::util::test_model())))
}

fn gemma() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| {
        let path = std::env::var_os("RUNNER_TEST_MODEL_GEMMA")
            .map(PathBuf::from)
            .or_else(|| {
                let known = crate::models::find("gemma-3-270m")?;
                let p = crate::models::cached_path(known, &crate::models::cache_dir(None));
                p.is_file().then_some(p)
            })
            .expect("gemma-3-270m is missing: run scripts/test.sh, or `runner models fetch gemma-3-270m`");
        load(path)
    }))
}

fn session(model: &Arc<Model>) -> Session {
    let settings = ContextSettings {
        n_ctx: 1024,
        n_batch: 512,
        n_ubatch: 512,
        threads: 2,
        threads_batch: 2,
        flash_attn: FlashAttn::Auto,
        type_k: KvType::F16,
        type_v: KvType::F16,
    };
    Session::new(model, &settings).expect("context")
}

fn chat(user: &str) -> Prompt {
    Prompt {
        id: "t".into(),
        category: None,
        messages: vec![Message {
            role: Role::User,
            content: user.into(),
        }],
        raw_prompt: None,
        max_tokens: 64,
        time_limit: Duration::from_secs(60),
        sampling: Sampling::default(),
        stop: Vec::new(),
        pair: None,
        graders: Vec::new(),
    }
}

/// Options whose time limit never ends a test request: on a shared 2-core machine, other
/// processes can slow decoding to seconds per token.
fn options(max_tokens: u32) -> Prompt {
    Prompt {
        max_tokens,
        time_limit: Duration::from_secs(3600),
        ..Prompt::default()
    }
}

fn run(s: &mut Session, model: &Model, user: &str, opts: &Prompt) -> Trace {
    let r = template::render(model, &chat(user), false).expect("prompt renders");
    generate(s, model, &r.text, opts).expect("generates")
}

const CAPITAL: &str = "What is the capital of France? Answer in one word.";
const STORY: &str = "Write a long story about a dragon who learns to bake bread.";

fn check_timings(g: &Trace) {
    assert_eq!(Some(g.tokens.len() as u64), g.output_tokens);
    assert!(g.tokens.windows(2).all(|w| w[0] < w[1]), "{:?}", g.tokens);
    let prompt_eval = g.prompt_eval.expect("measured in-process");
    assert!(prompt_eval <= g.tokens.first().copied().unwrap_or(g.end));
    assert!(g.tokens.last().copied().unwrap_or_default() <= g.end);
    if let Some(ttft) = g.first_text {
        assert!(ttft <= g.end && g.tokens.contains(&ttft));
    }
}

#[test]
fn greedy_answers_are_deterministic() {
    let model = smollm();
    let _serial = serial();
    let mut ctx = session(&model);
    let a = run(&mut ctx, &model, CAPITAL, &options(32));
    let b = run(&mut ctx, &model, CAPITAL, &options(32));
    eprintln!("greedy: {a:?}");
    assert_eq!(a.text, b.text);
    assert!(a.prompt_tokens > 0);
    assert!(a.text.contains("Paris"), "{:?}", a.text);
    assert_eq!(a.stop, Some(StopReason::Eos));
    assert!(a.output_tokens > Some(0) && a.first_text.is_some());
    check_timings(&a);
}

#[test]
fn max_tokens_ends_an_open_answer() {
    let model = smollm();
    let _serial = serial();
    let mut ctx = session(&model);
    let g = run(&mut ctx, &model, STORY, &options(5));
    assert_eq!(g.stop, Some(StopReason::MaxTokens));
    assert_eq!(g.output_tokens, Some(5));
    check_timings(&g);
    let too_long = generate(&mut ctx, &model, "Hello", &options(2000));
    assert!(matches!(
        too_long,
        Err(ChatError::TooLong { n_ctx: 1024, .. })
    ));
}

#[test]
fn a_stop_string_cuts_the_text() {
    let model = smollm();
    let _serial = serial();
    let mut ctx = session(&model);
    let full = run(&mut ctx, &model, STORY, &options(48));
    let stop = " dragon";
    let at = full.text.find(stop).expect("the story mentions the dragon");
    let opts = Prompt {
        stop: stops(&["never appears", stop]),
        ..options(48)
    };
    let g = run(&mut ctx, &model, STORY, &opts);
    assert_eq!(g.stop, Some(StopReason::StopString));
    assert_eq!(g.text, full.text[..at]);
    assert!(g.output_tokens < full.output_tokens);
    check_timings(&g);
}

#[test]
fn the_time_limit_stops_a_long_prompt_midway_and_the_context_recovers() {
    let model = smollm();
    let _serial = serial();
    let mut ctx = session(&model);
    let before = run(&mut ctx, &model, CAPITAL, &options(16));
    // About 600 prompt tokens: several seconds of evaluation on a small CPU.
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    for limit in [Duration::from_millis(1), Duration::from_millis(50)] {
        let opts = Prompt {
            time_limit: limit,
            ..options(16)
        };
        let t = Instant::now();
        let g = generate(&mut ctx, &model, &long, &opts).expect("a result");
        let took = t.elapsed();
        eprintln!(
            "limit {limit:?}: returned after {took:?}, prompt_eval {:?}",
            g.prompt_eval
        );
        assert_eq!(g.stop, Some(StopReason::TimeLimit));
        assert_eq!(g.output_tokens, Some(0));
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    let after = run(&mut ctx, &model, CAPITAL, &options(16));
    assert_eq!(after.text, before.text);
    assert_eq!(after.stop, before.stop);
}

#[test]
fn a_seed_fixes_the_sampled_text() {
    let model = smollm();
    let _serial = serial();
    let mut ctx = session(&model);
    let sampled = |seed: u32| Prompt {
        sampling: Sampling {
            temperature: 0.8,
            seed,
            top_p: Some(0.95),
            top_k: Some(40),
        },
        ..options(24)
    };
    let a = run(&mut ctx, &model, STORY, &sampled(7));
    let b = run(&mut ctx, &model, STORY, &sampled(7));
    let c = run(&mut ctx, &model, STORY, &sampled(8));
    eprintln!("seed 7: {:?}\nseed 8: {:?}", a.text, c.text);
    assert_eq!(a.text, b.text);
    assert_eq!(a.output_tokens, b.output_tokens);
    check_timings(&a);
}

#[test]
fn a_base_model_gets_its_architectures_built_in_template() {
    let model = gemma();
    let _serial = serial();
    let r = template::render(&model, &chat(CAPITAL), false).expect("renders");
    assert!(r.base_model, "gemma-3-270m has no chat template of its own");
    assert!(
        r.template
            .starts_with("gemma (llama.cpp's built-in template for gemma3"),
        "{}",
        r.template
    );
    assert!(
        r.text.contains("<start_of_turn>user\n") && r.text.ends_with("<start_of_turn>model\n"),
        "{:?}",
        r.text
    );
    let mut ctx = session(&model);
    let g = generate(&mut ctx, &model, &r.text, &options(8)).expect("generates");
    assert!(g.output_tokens > Some(0));
    check_timings(&g);
    let smol = template::render(&smollm(), &chat(CAPITAL), false).unwrap();
    assert!(!smol.base_model);
    assert_eq!(smol.template, TEMPLATE_MODEL);
}

#[test]
fn raw_prompts_skip_the_template() {
    let model = smollm();
    let mut p = chat("first");
    p.messages.push(Message {
        role: Role::Assistant,
        content: "second".into(),
    });
    let r = template::render(&model, &p, true).expect("renders");
    assert_eq!(
        (r.text.as_str(), r.template.as_str()),
        ("first\nsecond", TEMPLATE_RAW)
    );
    p.raw_prompt = Some("Once upon a time".into());
    p.messages.clear();
    let r = template::render(&model, &p, false).expect("renders");
    assert_eq!(
        (r.text.as_str(), r.template.as_str()),
        ("Once upon a time", TEMPLATE_RAW)
    );
    let r = template::render(&model, &chat("hi"), false).expect("renders");
    assert!(
        r.text.contains("<|im_start|>user\nhi<|im_end|>"),
        "{:?}",
        r.text
    );
}

/// Prints how much of each generated token's time is spent outside llama.cpp's decode call
/// (token choice, piece, stop check, timestamps); `scripts/compare-llama-bench.py` measures
/// it against llama-bench on an idle machine.
#[test]
fn the_loop_adds_little_to_each_token() {
    let model = smollm();
    let _serial = serial();
    let mut ctx = session(&model);
    let opts = Prompt {
        stop: stops(&["never appears", "nor this"]),
        ..options(64)
    };
    let g = generate(&mut ctx, &model, "Once upon a time", &opts).expect("generates");
    let n = g.tokens.len();
    assert!(n >= 2);
    let span = g.tokens[n - 1] - g.tokens[0];
    let decode = g.engine.expect("measured in-process").decode;
    let outside = span.saturating_sub(decode);
    let per_token = outside / (n as u32 - 1);
    eprintln!(
        "{n} tokens: span {span:?}, inside decode {:?}, outside {per_token:?} per token ({:.3} % of the span)",
        decode,
        100.0 * outside.as_secs_f64() / span.as_secs_f64()
    );
    assert!(
        decode <= span,
        "time inside decode calls lies within the span"
    );
}
