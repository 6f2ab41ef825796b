//! The timed decode loop: one repetition of a llama-bench style workload, every token stamped.

use super::context::{Context, ContextError};
use crate::record::RepetitionSample;
use std::time::{Duration, Instant};

/// A prompt of `n_prompt` tokens, then `n_gen` generated tokens, after `n_depth` tokens
/// already in the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
}

/// The token ids a workload feeds: fixed pseudo-random ids (as llama-bench uses) so every
/// repetition does identical work.
#[derive(Debug, Clone)]
pub struct Inputs {
    depth: Vec<i32>,
    prompt: Vec<i32>,
}

impl Inputs {
    /// Draws `n_depth` + `n_prompt` ids in `[0, n_vocab)` from a fixed seed. With no prompt,
    /// generation starts from `start` (the model's BOS token), as llama-bench's tg test does.
    pub fn new(w: &Workload, n_vocab: i32, start: i32) -> Inputs {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let n_vocab = n_vocab.max(1) as u64;
        let mut draw =
            |n: u32| -> Vec<i32> { (0..n).map(|_| (rng.next() % n_vocab) as i32).collect() };
        let depth = draw(w.n_depth);
        let prompt = if w.n_prompt > 0 {
            draw(w.n_prompt)
        } else {
            vec![start]
        };
        Inputs { depth, prompt }
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Timestamps of one repetition, all measured from the start of prompt evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub prompt: Duration,
    pub tokens: Vec<Duration>,
    /// Time inside llama.cpp's decode calls between the first and last token (the greedy
    /// choice of the next token is runner's own work, counted outside).
    pub inside: Duration,
}

/// Runs one repetition: clears the cache, fills the depth (untimed), evaluates the prompt,
/// then generates `n_gen` tokens greedily (argmax of the logits) (end-of-generation tokens do not stop it, so every
/// repetition does the same amount of work).
pub fn run(ctx: &mut Context<'_>, w: &Workload, inputs: &Inputs) -> Result<Trace, ContextError> {
    ctx.clear();
    if !inputs.depth.is_empty() {
        ctx.decode(&inputs.depth, 0, false)?;
        ctx.synchronize();
    }
    let t0 = Instant::now();
    ctx.decode(&inputs.prompt, w.n_depth as i32, true)?;
    ctx.synchronize();
    let prompt = t0.elapsed();
    let mut trace = Trace {
        prompt,
        tokens: Vec::with_capacity(w.n_gen as usize),
        inside: Duration::ZERO,
    };
    if w.n_gen == 0 {
        return Ok(trace);
    }
    let first_pos = (w.n_depth as usize + inputs.prompt.len()) as i32;
    let mut token = ctx.argmax().ok_or(ContextError::NoLogits)?;
    trace.tokens.push(t0.elapsed());
    for pos in (first_pos..).take(w.n_gen as usize - 1) {
        let a = Instant::now();
        ctx.decode(&[token], pos, true)?;
        let b = Instant::now();
        token = ctx.argmax().ok_or(ContextError::NoLogits)?;
        let c = Instant::now();
        trace.inside += b - a;
        trace.tokens.push(c - t0);
    }
    Ok(trace)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Trace {
    /// The raw sample recorded for this repetition.
    pub fn to_sample(&self, w: &Workload) -> RepetitionSample {
        let token_ms: Vec<f64> = self.tokens.iter().map(|&d| ms(d)).collect();
        let first = self.tokens.first().copied();
        let last = self.tokens.last().copied();
        let span = match (first, last) {
            (Some(f), Some(l)) => l.saturating_sub(f),
            _ => Duration::ZERO,
        };
        let gen_tps = (self.tokens.len() >= 2 && !span.is_zero())
            .then(|| (self.tokens.len() - 1) as f64 / span.as_secs_f64());
        let prompt_tps = (w.n_prompt > 0 && !self.prompt.is_zero())
            .then(|| f64::from(w.n_prompt) / self.prompt.as_secs_f64());
        RepetitionSample {
            prompt_ms: ms(self.prompt),
            ttft_ms: first.map(ms),
            e2e_ms: ms(last.unwrap_or(self.prompt)),
            prompt_tps,
            gen_tps,
            token_ms,
            harness_ms: ms(span.saturating_sub(self.inside)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_deterministic_and_in_range() {
        let w = Workload {
            n_prompt: 64,
            n_gen: 4,
            n_depth: 16,
        };
        let a = Inputs::new(&w, 1000, 1);
        let b = Inputs::new(&w, 1000, 1);
        assert_eq!(a.prompt, b.prompt);
        assert_eq!(a.depth.len(), 16);
        assert_eq!(a.prompt.len(), 64);
        assert!(a
            .prompt
            .iter()
            .chain(&a.depth)
            .all(|&t| (0..1000).contains(&t)));
        let tg = Inputs::new(&Workload { n_prompt: 0, ..w }, 1000, 7);
        assert_eq!(tg.prompt, vec![7]);
    }

    #[test]
    fn sample_rates_follow_their_definitions() {
        let w = Workload {
            n_prompt: 100,
            n_gen: 3,
            n_depth: 0,
        };
        let t = Trace {
            prompt: Duration::from_millis(50),
            tokens: vec![
                Duration::from_millis(60),
                Duration::from_millis(80),
                Duration::from_millis(100),
            ],
            inside: Duration::from_millis(39),
        };
        let s = t.to_sample(&w);
        assert!((s.prompt_tps.unwrap() - 2000.0).abs() < 1e-6);
        // (3 - 1) tokens / (100 - 60) ms
        assert!((s.gen_tps.unwrap() - 50.0).abs() < 1e-6);
        assert_eq!(s.ttft_ms, Some(60.0));
        assert_eq!(s.e2e_ms, 100.0);
        assert!((s.harness_ms - 1.0).abs() < 1e-9);
        let pp = Trace {
            prompt: Duration::from_millis(10),
            ..Default::default()
        };
        let s = pp.to_sample(&Workload { n_gen: 0, ..w });
        assert_eq!(s.ttft_ms, None);
        assert_eq!(s.gen_tps, None);
        assert_eq!(s.e2e_ms, 10.0);
    }
}
