//! The decode runs of a profile: the same phases once in a plain context (no callback) and
//! once in a profiling context with the same settings.
//!
//! Phases: short-response (clear the cache, evaluate a short prompt, time the first decoded
//! token; repeated), long-form (evaluate a prompt of `depth` tokens, then time each of `n_gen`
//! greedily decoded tokens), and the depth prompt's evaluation itself (prompt processing).
//! A decode is timed from the call to `llama_decode` to the end of `llama_synchronize`.

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

/// Decodes `tokens` at `pos` and waits for the result; the time it took and the profile the
/// callback collected meanwhile.
fn timed(
    ctx: &mut Context<'_>,
    tokens: &[i32],
    pos: i32,
) -> Result<(Duration, Option<Profile>), ContextError> {
    let _ = ctx.take_profile();
    let start = Instant::now();
    ctx.decode(tokens, pos, true)?;
    ctx.synchronize();
    let d = start.elapsed();
    Ok((d, ctx.take_profile()))
}

/// Runs every phase in `ctx`, after one untimed warm-up.
pub fn run_phases(
    ctx: &mut Context<'_>,
    plan: &ProfilePlan,
    prompts: &Prompts,
) -> Result<Runs, ContextError> {
    let mut runs = Runs::default();
    for rep in 0..=plan.repetitions {
        ctx.clear();
        timed(ctx, &prompts.short, 0)?;
        let next = ctx.argmax().ok_or(ContextError::NoLogits)?;
        let (d, p) = timed(ctx, &[next], prompts.short.len() as i32)?;
        if rep > 0 {
            runs.short.add(d, p);
        }
    }
    ctx.clear();
    let (d, p) = timed(ctx, &prompts.depth, 0)?;
    runs.prompt.add(d, p);
    let first = prompts.depth.len() as i32;
    for pos in (first..).take(plan.n_gen as usize) {
        let next = ctx.argmax().ok_or(ContextError::NoLogits)?;
        let (d, p) = timed(ctx, &[next], pos)?;
        runs.long.add(d, p);
    }
    Ok(runs)
}
