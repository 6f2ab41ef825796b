//! The decode runs of a profile: the same phases in a plain context (no callback) and in a
//! profiling context with the same settings, for the model and its dense reference, all
//! interleaved.
//!
//! Phases: short-response (clear the cache, evaluate a short prompt, time the first decoded
//! token; repeated), long-form (evaluate a prompt of `depth` tokens, then time each of `n_gen`
//! greedily decoded tokens), and the depth prompt's evaluation itself (prompt processing).
//! A decode is timed from the call to `llama_decode` to the end of `llama_synchronize`. This
//! machine's speed drifts by tens of percent over seconds; running the contexts in turn, a few
//! tokens each, keeps that drift out of the ratios (profiled/plain, MoE/dense).

use super::args::ProfilePlan;
use crate::llama::context::{Context, ContextError};
use crate::llama::profile::Profile;
use llama_cpp_2::model::LlamaModel;
use std::time::{Duration, Instant};

/// Text the prompts are cut from (repeated as needed), so that the router sees real text.
const TEXT: &str = "The history of the harbour town begins with a handful of fishing families who \
built their houses along the river mouth. Over two centuries the settlement grew into a busy \
port: merchants brought timber, salt and wool, shipwrights opened yards on the northern bank, \
and a stone bridge replaced the old ferry. When the railway arrived, the town changed again. \
Warehouses rose beside the station, the population doubled within a generation, and the \
council paved the market square. Today visitors walk along the restored quays, read the \
plaques that explain how the tides shaped every street, and eat smoked fish in the same \
taverns where sailors once waited for the wind to turn.";

/// The token ids a profile feeds: the text, tokenized and repeated.
#[derive(Debug, Clone)]
pub struct Prompts {
    pub short: Vec<i32>,
    pub depth: Vec<i32>,
}

impl Prompts {
    pub fn new(model: &LlamaModel, plan: &ProfilePlan) -> Prompts {
        let mut ids: Vec<i32> = model
            .vocab()
            .tokenize(TEXT.as_bytes(), false, false)
            .into_iter()
            .map(|t| t.0)
            .collect();
        if ids.is_empty() {
            ids.push(0);
        }
        let take = |n: u32| ids.iter().copied().cycle().take(n as usize).collect();
        Prompts {
            short: take(plan.prompt_tokens),
            depth: take(plan.depth),
        }
    }
}

/// Time per call of each phase, and (in a profiling context) what the callback saw.
#[derive(Debug, Default)]
pub struct PhaseRun {
    pub calls: Vec<Duration>,
    pub profile: Profile,
}

impl PhaseRun {
    fn add(&mut self, d: Duration, p: Option<Profile>) {
        self.calls.push(d);
        if let Some(p) = p {
            self.profile.totals.merge(&p.totals);
            self.profile.nodes.merge(&p.nodes);
            self.profile.trace.append(&p.trace);
        }
    }
}

/// The phases of one context.
#[derive(Debug, Default)]
pub struct Runs {
    pub short: PhaseRun,
    pub long: PhaseRun,
    pub prompt: PhaseRun,
}

/// Tokens each context decodes in turn during the long-form phase.
const LONG_BLOCK: u32 = 8;

/// One context (plain or profiling) of one model, with what its phases measured.
pub struct Subject<'m> {
    ctx: Context<'m>,
    prompts: &'m Prompts,
    pub runs: Runs,
    /// Where the long-form decode stands: next position and token.
    pos: i32,
    next: i32,
}

impl<'m> Subject<'m> {
    pub fn new(ctx: Context<'m>, prompts: &'m Prompts) -> Subject<'m> {
        Subject {
            ctx,
            prompts,
            runs: Runs::default(),
            pos: 0,
            next: 0,
        }
    }

    pub fn context(&self) -> &Context<'m> {
        &self.ctx
    }

    /// Decodes `tokens` at `pos` and waits for the result; the time it took and the profile
    /// the callback collected meanwhile.
    fn timed(
        &mut self,
        tokens: &[i32],
        pos: i32,
    ) -> Result<(Duration, Option<Profile>), ContextError> {
        let _ = self.ctx.take_profile();
        let start = Instant::now();
        self.ctx.decode(tokens, pos, true)?;
        self.ctx.synchronize();
        let d = start.elapsed();
        Ok((d, self.ctx.take_profile()))
    }

    /// One short-response sample: clear, evaluate the short prompt, time the first token.
    fn short_sample(&mut self) -> Result<(Duration, Option<Profile>), ContextError> {
        self.ctx.clear();
        let prompt = self.prompts.short.as_slice();
        self.timed(prompt, 0)?;
        let next = self.ctx.argmax().ok_or(ContextError::NoLogits)?;
        self.timed(&[next], prompt.len() as i32)
    }

    /// Evaluates the depth prompt (the prompt phase) before the long-form decode.
    fn fill_depth(&mut self) -> Result<(), ContextError> {
        self.ctx.clear();
        let depth = self.prompts.depth.as_slice();
        let (d, p) = self.timed(depth, 0)?;
        self.runs.prompt.add(d, p);
        self.pos = depth.len() as i32;
        self.next = self.ctx.argmax().ok_or(ContextError::NoLogits)?;
        Ok(())
    }

    /// Decodes the next `n` long-form tokens greedily.
    fn decode_block(&mut self, n: u32) -> Result<(), ContextError> {
        for _ in 0..n {
            let (d, p) = self.timed(&[self.next], self.pos)?;
            self.runs.long.add(d, p);
            self.pos += 1;
            self.next = self.ctx.argmax().ok_or(ContextError::NoLogits)?;
        }
        Ok(())
    }
}

/// Runs every phase in every subject, interleaved so that a drift of the machine's speed
/// affects them alike: one untimed warm-up each, then each short-response sample of every
/// subject in turn, then the depth prompts, then long-form blocks of 8 tokens in turn.
pub fn run_interleaved(
    subjects: &mut [Subject<'_>],
    plan: &ProfilePlan,
) -> Result<(), ContextError> {
    for s in subjects.iter_mut() {
        s.short_sample()?;
    }
    for _ in 0..plan.repetitions {
        for s in subjects.iter_mut() {
            let (d, p) = s.short_sample()?;
            s.runs.short.add(d, p);
        }
    }
    for s in subjects.iter_mut() {
        s.fill_depth()?;
    }
    let mut left = plan.n_gen;
    while left > 0 {
        let n = left.min(LONG_BLOCK);
        for s in subjects.iter_mut() {
            s.decode_block(n)?;
        }
        left -= n;
    }
    Ok(())
}
