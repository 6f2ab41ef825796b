//! Tests of generation: stop-string and UTF-8 logic alone, then real requests on SmolLM2-135M
//! ($RUNNER_TEST_MODEL) and gemma-3-270m (no chat template), skipped when the model is absent.

use super::*;
use crate::llama::context::{ContextSettings, FlashAttn, KvType};
use crate::llama::model::{self, LoadOptions};
use crate::scenario::{Message, Role};
use llama_cpp_2::llama_backend::LlamaBackend;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

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

/// The llama.cpp backend, started once per test process.
fn backend() -> &'static LlamaBackend {
    crate::llama::test_backend()
}

/// Model tests run one at a time: two 2-thread decodes at once starve each other.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn load(
    path: Option<PathBuf>,
    slot: &'static OnceLock<Option<LlamaModel>>,
) -> Option<&'static LlamaModel> {
    slot.get_or_init(|| {
        let path = path?;
        let opts = LoadOptions {
            n_gpu_layers: 0,
            use_mmap: true,
        };
        Some(
            model::load(backend(), &path, opts)
                .expect("model loads")
                .model,
        )
    })
    .as_ref()
}

fn smollm() -> Option<&'static LlamaModel> {
    static MODEL: OnceLock<Option<LlamaModel>> = OnceLock::new();
    let path = std::env::var_os("RUNNER_TEST_MODEL").map(PathBuf::from);
    if path.is_none() {
        eprintln!("skipped: RUNNER_TEST_MODEL is not set");
    }
    load(path, &MODEL)
}

fn gemma() -> Option<&'static LlamaModel> {
    static MODEL: OnceLock<Option<LlamaModel>> = OnceLock::new();
    let path = std::env::var_os("RUNNER_TEST_MODEL_GEMMA")
        .map(PathBuf::from)
        .or_else(|| {
            let known = crate::models::find("gemma-3-270m")?;
            let p = crate::models::cached_path(known, &crate::models::cache_dir(None));
            p.is_file().then_some(p)
        });
    if path.is_none() {
        eprintln!("skipped: gemma-3-270m is not cached (runner models fetch gemma-3-270m)");
    }
    load(path, &MODEL)
}

fn context(model: &LlamaModel) -> Context<'_> {
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
    Context::new(model, &settings).expect("context")
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
fn options(max_tokens: u32) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        stop: Vec::new(),
        sampling: Sampling::default(),
        time_limit: Duration::from_secs(3600),
    }
}

fn run(
    ctx: &mut Context<'_>,
    model: &LlamaModel,
    user: &str,
    opts: &GenerateOptions,
) -> Generation {
    let (text, template) = render_prompt(model, &chat(user), false).expect("prompt renders");
    generate(ctx, model, &text, &template, opts).expect("generates")
}

const CAPITAL: &str = "What is the capital of France? Answer in one word.";
const STORY: &str = "Write a long story about a dragon who learns to bake bread.";

fn check_timings(g: &Generation) {
    assert_eq!(g.token_times.len(), g.output_tokens as usize);
    assert!(
        g.token_times.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        g.token_times
    );
    assert!(g.prompt_eval <= g.token_times.first().copied().unwrap_or(g.e2e));
    assert!(g.token_times.last().copied().unwrap_or_default() <= g.e2e);
    if let Some(ttft) = g.ttft {
        assert!(ttft <= g.e2e && g.token_times.contains(&ttft));
    }
}

#[test]
fn greedy_answers_are_deterministic() {
    let Some(model) = smollm() else { return };
    let _serial = serial();
    let mut ctx = context(model);
    let a = run(&mut ctx, model, CAPITAL, &options(32));
    let b = run(&mut ctx, model, CAPITAL, &options(32));
    eprintln!("greedy: {a:?}");
    assert_eq!(a.text, b.text);
    assert_eq!(a.template, TEMPLATE_MODEL);
    assert!(a.prompt_tokens > 0);
    assert!(a.text.contains("Paris"), "{:?}", a.text);
    assert_eq!(a.stop_reason, StopReason::Eos);
    assert!(a.output_tokens > 0 && a.ttft.is_some());
    check_timings(&a);
}

#[test]
fn max_tokens_ends_an_open_answer() {
    let Some(model) = smollm() else { return };
    let _serial = serial();
    let mut ctx = context(model);
    let g = run(&mut ctx, model, STORY, &options(5));
    assert_eq!(g.stop_reason, StopReason::MaxTokens);
    assert_eq!(g.output_tokens, 5);
    check_timings(&g);
    let too_long = generate(&mut ctx, model, "Hello", TEMPLATE_RAW, &options(2000));
    assert!(matches!(
        too_long,
        Err(GenerateError::TooLong { n_ctx: 1024, .. })
    ));
}

#[test]
fn a_stop_string_cuts_the_text() {
    let Some(model) = smollm() else { return };
    let _serial = serial();
    let mut ctx = context(model);
    let full = run(&mut ctx, model, STORY, &options(48));
    let stop = " dragon";
    let at = full.text.find(stop).expect("the story mentions the dragon");
    let opts = GenerateOptions {
        stop: stops(&["never appears", stop]),
        ..options(48)
    };
    let g = run(&mut ctx, model, STORY, &opts);
    assert_eq!(g.stop_reason, StopReason::StopString);
    assert_eq!(g.text, full.text[..at]);
    assert!(g.output_tokens < full.output_tokens);
    check_timings(&g);
}

#[test]
fn the_time_limit_stops_a_long_prompt_midway_and_the_context_recovers() {
    let Some(model) = smollm() else { return };
    let _serial = serial();
    let mut ctx = context(model);
    let before = run(&mut ctx, model, CAPITAL, &options(16));
    // About 600 prompt tokens: several seconds of evaluation on a small CPU.
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(60);
    for limit in [Duration::from_millis(1), Duration::from_millis(50)] {
        let opts = GenerateOptions {
            time_limit: limit,
            ..options(16)
        };
        let t = Instant::now();
        let g = generate(&mut ctx, model, &long, TEMPLATE_RAW, &opts).expect("a result");
        let took = t.elapsed();
        eprintln!(
            "limit {limit:?}: returned after {took:?}, prompt_eval {:?}",
            g.prompt_eval
        );
        assert_eq!(g.stop_reason, StopReason::TimeLimit);
        assert_eq!(g.output_tokens, 0);
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    let after = run(&mut ctx, model, CAPITAL, &options(16));
    assert_eq!(after.text, before.text);
    assert_eq!(after.stop_reason, before.stop_reason);
}

#[test]
fn a_seed_fixes_the_sampled_text() {
    let Some(model) = smollm() else { return };
    let _serial = serial();
    let mut ctx = context(model);
    let sampled = |seed: u32| GenerateOptions {
        sampling: Sampling {
            temperature: 0.8,
            seed,
            top_p: Some(0.95),
            top_k: Some(40),
        },
        ..options(24)
    };
    let a = run(&mut ctx, model, STORY, &sampled(7));
    let b = run(&mut ctx, model, STORY, &sampled(7));
    let c = run(&mut ctx, model, STORY, &sampled(8));
    eprintln!("seed 7: {:?}\nseed 8: {:?}", a.text, c.text);
    assert_eq!(a.text, b.text);
    assert_eq!(a.output_tokens, b.output_tokens);
    check_timings(&a);
}

#[test]
fn a_model_without_a_template_gets_chatml() {
    let Some(model) = gemma() else { return };
    let _serial = serial();
    let (text, template) = render_prompt(model, &chat(CAPITAL), false).expect("renders");
    assert_eq!(template, TEMPLATE_CHATML_FALLBACK);
    assert!(text.starts_with("<|im_start|>user\n") && text.ends_with("<|im_start|>assistant\n"));
    let mut ctx = context(model);
    let g = generate(&mut ctx, model, &text, &template, &options(8)).expect("generates");
    assert_eq!(g.template, TEMPLATE_CHATML_FALLBACK);
    assert!(g.output_tokens > 0);
    check_timings(&g);
}

#[test]
fn raw_prompts_skip_the_template() {
    let Some(model) = smollm() else { return };
    let mut p = chat("first");
    p.messages.push(Message {
        role: Role::Assistant,
        content: "second".into(),
    });
    assert_eq!(
        render_prompt(model, &p, true).expect("renders"),
        ("first\nsecond".to_string(), TEMPLATE_RAW.to_string())
    );
    p.raw_prompt = Some("Once upon a time".into());
    p.messages.clear();
    let (text, label) = render_prompt(model, &p, false).expect("renders");
    assert_eq!(
        (text.as_str(), label.as_str()),
        ("Once upon a time", TEMPLATE_RAW)
    );
    let (text, _) = render_prompt(model, &chat("hi"), false).expect("renders");
    assert!(text.contains("<|im_start|>user\nhi<|im_end|>"), "{text:?}");
}

/// Prints how much of each generated token's time is spent outside llama.cpp's decode call
/// (token choice, piece, stop check, timestamps).
#[test]
fn the_loop_adds_little_to_each_token() {
    let Some(model) = smollm() else { return };
    let _serial = serial();
    let mut ctx = context(model);
    let opts = GenerateOptions {
        stop: stops(&["never appears", "nor this"]),
        ..options(64)
    };
    let g = generate(&mut ctx, model, "Once upon a time", TEMPLATE_RAW, &opts).expect("generates");
    let n = g.token_times.len();
    assert!(n >= 2);
    let span = g.token_times[n - 1] - g.token_times[0];
    let outside = span.saturating_sub(g.decode_time);
    let per_token = outside / (n as u32 - 1);
    eprintln!(
        "{n} tokens: span {span:?}, inside decode {:?}, outside {per_token:?} per token ({:.3} % of the span)",
        g.decode_time,
        100.0 * outside.as_secs_f64() / span.as_secs_f64()
    );
    assert!(per_token < Duration::from_millis(2), "{per_token:?}");
}
