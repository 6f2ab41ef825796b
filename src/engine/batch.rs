//! Continuous batching: several sequences decoded in the same batches of one context, each
//! with its own KV cells, token choice, limits and timestamps, new ones joining while others
//! generate.
//!
//! Each step builds one batch: the last chosen token of every generating sequence, then as
//! many prompt tokens of admitted sequences as the batch has room for (a long prompt is
//! evaluated over several steps). After the decode, every sequence whose logits came out
//! chooses its next token and stamps it, as [`super::Session::run`] does (greedy inside the
//! graph where the output layer sits on a GPU): a sequence's times run from its admission,
//! and a token is stamped when it is chosen. With one sequence the steps are exactly those of
//! a single run.

use super::context::{BatchEntry, Context, ContextError};
use super::model::Model;
use super::sampler::Sampler;
use super::session::{Flow, RunEnd, RunTrace, Timeline, TokenEvent};
use super::settings::ContextSettings;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One request for a slot.
#[derive(Debug)]
pub struct SeqRequest {
    pub prompt: Vec<i32>,
    pub max_tokens: u32,
    /// End at an end-of-generation token (not counted).
    pub stop_at_eog: bool,
    /// llama.cpp's sampler chain; greedy when `None`.
    pub sampler: Option<Sampler>,
    /// From admission.
    pub time_limit: Option<Duration>,
}

/// Where a batched run gets its requests and sends what happens to them.
pub trait Feed {
    /// A request to admit now, with the caller's id for it; `None` when none is waiting.
    fn next(&mut self, now: Instant) -> Option<(usize, SeqRequest)>;
    /// When a request not yet waiting will arrive; `None` when no more will.
    fn next_arrival(&self) -> Option<Instant>;
    /// A generated token of request `id`.
    fn token(&mut self, id: usize, event: &TokenEvent<'_>) -> Flow;
    /// Request `id` ended (or could not run). Its times run from its admission; its prompt
    /// evaluation ends with the batch that evaluated its last prompt token, and its
    /// `decode_inside` counts the whole batch's call each time.
    fn done(&mut self, id: usize, result: Result<RunTrace, String>);
    /// Stop admitting and end the run (an interrupt): sequences in flight are dropped.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A sequence in a slot.
#[derive(Debug)]
struct Seq {
    id: usize,
    req: SeqRequest,
    /// Prompt tokens evaluated so far.
    fed: usize,
    /// The token to decode next (generating sequences).
    next: Option<i32>,
    deadline: Option<Instant>,
    /// Its times, from when it was given a slot.
    run: Timeline,
}

/// A context whose KV cache holds `slots` sequences.
#[derive(Debug)]
pub struct Batcher {
    ctx: Context,
    slots: Vec<Option<Seq>>,
}

impl Batcher {
    /// A context of `slots` sequences of `settings.n_ctx` tokens each.
    pub fn new(
        model: &Arc<Model>,
        settings: &ContextSettings,
        slots: u32,
    ) -> Result<Batcher, ContextError> {
        let slots = slots.max(1);
        let mut s = settings.clone();
        s.n_ctx = settings.n_ctx.saturating_mul(slots);
        // llama.cpp reserves an output for every sequence within one batch: a batch must hold
        // at least one token per slot.
        s.n_batch = s.n_batch.max(slots);
        Ok(Batcher {
            ctx: Context::new(model, &s, slots)?,
            slots: (0..slots).map(|_| None).collect(),
        })
    }

    /// Tokens one sequence may hold (prompt and output).
    pub fn n_ctx_seq(&self) -> u32 {
        self.ctx.sizes().0 / self.slots.len() as u32
    }

    /// Runs requests from `feed` until it has no more and every slot is empty. A request
    /// that cannot run (too long for its slot) ends with an error without stopping the rest;
    /// a failed decode ends every sequence in that batch with its error.
    pub fn serve(&mut self, feed: &mut dyn Feed) {
        loop {
            if feed.cancelled() {
                for slot in 0..self.slots.len() {
                    self.vacate(slot);
                }
                return;
            }
            self.admit(feed);
            if self.slots.iter().all(Option::is_none) {
                match feed.next_arrival() {
                    // Waking every 50 ms to see whether the run was cancelled.
                    Some(t) => {
                        let poll = Duration::from_millis(50);
                        crate::util::interrupt::sleep_until(t, poll, || feed.cancelled());
                    }
                    None => return,
                }
                continue;
            }
            self.expire(feed);
            let (entries, owners) = self.batch();
            if entries.is_empty() {
                continue;
            }
            let start = Instant::now();
            let decoded = self.ctx.decode_entries(&entries);
            self.ctx.synchronize();
            let took = start.elapsed();
            match decoded {
                Ok(()) => self.advance(&entries, &owners, took, feed),
                Err(e) => self.fail(&owners, &e, feed),
            }
        }
    }

    /// Fills free slots with waiting requests; one that cannot run ends at once and leaves
    /// its slot to the next.
    fn admit(&mut self, feed: &mut dyn Feed) {
        while let Some(at) = self.slots.iter().position(Option::is_none) {
            let Some((id, req)) = feed.next(Instant::now()) else {
                return;
            };
            let need = req.prompt.len() as u64 + u64::from(req.max_tokens);
            if req.prompt.is_empty() {
                feed.done(id, Err("the prompt is empty (no tokens)".into()));
                continue;
            }
            if need > u64::from(self.n_ctx_seq()) {
                let e = ContextError::TooLong(need as usize, self.n_ctx_seq());
                feed.done(id, Err(e.to_string()));
                continue;
            }
            self.start(at, id, req);
        }
    }

    /// Puts request `id` in `slot`, its cells emptied.
    fn start(&mut self, slot: usize, id: usize, req: SeqRequest) {
        let run = Timeline::start(req.prompt.len(), req.max_tokens);
        self.ctx.clear_seq(slot as i32);
        // As a single run: greedy on the GPU that holds the output layer (the feed reads no
        // logits); a request with a sampler chain chooses on the host.
        let on_device = req.sampler.is_none() && self.ctx.output_on_gpu();
        self.ctx.set_seq_greedy_on_device(slot as i32, on_device);
        let deadline = req.time_limit.and_then(|l| run.start.checked_add(l));
        self.slots[slot] = Some(Seq {
            id,
            req,
            fed: 0,
            next: None,
            deadline,
            run,
        });
    }

    /// Ends sequences whose time limit has passed.
    fn expire(&mut self, feed: &mut dyn Feed) {
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            let passed = self.slots[slot]
                .as_ref()
                .and_then(|s| s.deadline)
                .is_some_and(|d| now >= d);
            if passed {
                self.finish(slot, RunEnd::TimeLimit, feed);
            }
        }
    }

    /// This step's batch: one token per generating sequence, then prompt tokens while there
    /// is room; with, per entry, the slot it belongs to.
    fn batch(&self) -> (Vec<BatchEntry>, Vec<usize>) {
        let room = self.ctx.sizes().1 as usize;
        let mut entries = Vec::new();
        let mut owners = Vec::new();
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            let Some(token) = s.next else { continue };
            // The chosen token goes after the prompt and the tokens before it.
            let pos = s.req.prompt.len() + s.run.trace.tokens.len() - 1;
            entries.push(BatchEntry {
                token,
                pos: pos as i32,
                seq: slot as i32,
                logits: true,
            });
            owners.push(slot);
        }
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            let left = s.req.prompt.len() - s.fed;
            if left == 0 || entries.len() >= room {
                continue;
            }
            let take = left.min(room - entries.len());
            for i in s.fed..s.fed + take {
                entries.push(BatchEntry {
                    token: s.req.prompt[i],
                    pos: i as i32,
                    seq: slot as i32,
                    logits: i + 1 == s.req.prompt.len(),
                });
                owners.push(slot);
            }
        }
        (entries, owners)
    }

    /// After a decode: prompts advanced, and a token chosen for every sequence whose logits
    /// came out.
    fn advance(
        &mut self,
        entries: &[BatchEntry],
        owners: &[usize],
        took: Duration,
        feed: &mut dyn Feed,
    ) {
        for (i, (e, &slot)) in entries.iter().zip(owners).enumerate() {
            let Some(s) = self.slots[slot].as_mut() else {
                continue;
            };
            if s.next.is_none() {
                s.fed += 1;
            }
            if !e.logits {
                continue;
            }
            if s.next.is_none() {
                s.run.trace.prompt_eval = s.run.start.elapsed();
            } else {
                s.run.pending = took;
            }
            if let Some(end) = self.choose(slot, i as i32, feed) {
                self.finish(slot, end, feed);
            }
        }
    }

    /// Chooses, stamps and hands over the next token of the sequence in `slot` from batch
    /// entry `i`; why the sequence ends, if it does.
    fn choose(&mut self, slot: usize, i: i32, feed: &mut dyn Feed) -> Option<RunEnd> {
        let s = self.slots[slot].as_mut()?;
        // A step that ran past the time limit ends the sequence there, as a single run ends
        // at the first token after its limit: no request counts as done after its limit.
        if s.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(RunEnd::TimeLimit);
        }
        if s.req.max_tokens == 0 {
            return Some(RunEnd::MaxTokens);
        }
        let id = s.id;
        let (sampler, eog, max) = (s.req.sampler.as_mut(), s.req.stop_at_eog, s.req.max_tokens);
        let on_token = &mut |e: &TokenEvent<'_>| feed.token(id, e);
        match s.run.take(&mut self.ctx, i, sampler, eog, max, on_token) {
            Ok(token) => s.next = Some(token),
            Err(end) => return Some(end.unwrap_or(RunEnd::Stopped)),
        }
        None
    }

    /// Empties `slot`, telling the feed how its sequence ended.
    fn finish(&mut self, slot: usize, reason: RunEnd, feed: &mut dyn Feed) {
        let Some(mut s) = self.vacate(slot) else {
            return;
        };
        s.run.trace.reason = reason;
        s.run.trace.end = s.run.start.elapsed();
        if s.fed < s.req.prompt.len() {
            s.run.trace.prompt_eval = s.run.trace.end;
        }
        feed.done(s.id, Ok(s.run.trace));
    }

    /// A failed decode: every sequence in the batch ends with the error.
    fn fail(&mut self, owners: &[usize], e: &ContextError, feed: &mut dyn Feed) {
        for &slot in owners {
            if let Some(s) = self.vacate(slot) {
                feed.done(s.id, Err(e.to_string()));
            }
        }
    }

    /// Takes the sequence out of `slot`, its cells emptied.
    fn vacate(&mut self, slot: usize) -> Option<Seq> {
        let s = self.slots[slot].take()?;
        self.ctx.clear_seq(slot as i32);
        Some(s)
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
