//! A load level in-process: the level's requests decoded together by the engine's
//! [`Batcher`] (continuous batching in one context of N sequences), each answered as a chat
//! request is answered alone: same prompt rendering, stop rules, text and timestamps.

use super::chat::Answer;
use super::Native;
use crate::backend::load::{failed_reply, LoadReply, LoadRequest, Schedule, Served};
use crate::backend::render::Ready;
use crate::backend::ChatReply;
use crate::engine::{Batcher, Feed, Flow, Model, RunTrace, Sampler, SeqRequest, TokenEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request in flight: what its record will say of it, and its answer so far.
struct Live {
    served: Served,
    answer: Answer,
}

/// The level's state between the batcher's calls.
struct LevelFeed<'a> {
    model: &'a Model,
    req: &'a LoadRequest<'a>,
    ready: Vec<(Ready, Vec<i32>)>,
    schedule: Schedule,
    live: HashMap<usize, Live>,
    served: Vec<Served>,
}

impl Native {
    /// Runs one load level with continuous batching: a context of `slots` sequences, each
    /// sized like the cell's single-request context.
    pub(super) fn load(&mut self, req: &LoadRequest<'_>) -> Result<LoadReply, String> {
        let model = Arc::clone(self.models.first().ok_or("no model is loaded")?);
        let settings = self.settings.clone().ok_or("no cell is prepared")?;
        let mut ready = Vec::with_capacity(req.prompts.len());
        for p in &req.prompts {
            let r = self.ready(&model, p)?;
            let tokens = model.tokenize(&r.rendered.text, true, true);
            ready.push((r, tokens));
        }
        // The single-request context is not needed while the level runs.
        self.sessions.clear();
        let mut batcher =
            Batcher::new(&model, &settings, req.shape.slots()).map_err(|e| e.to_string())?;
        let mut feed = LevelFeed {
            model: &model,
            req,
            ready,
            schedule: Schedule::new(req, Instant::now()),
            live: HashMap::new(),
            served: Vec::new(),
        };
        batcher.serve(&mut feed);
        Ok(LoadReply {
            unsent: feed.schedule.unsent() + feed.live.len(),
            arrived_unsent: feed.schedule.arrived_unsent(Instant::now()) + feed.live.len(),
            wall: feed.schedule.start().elapsed(),
            served: feed.served,
        })
    }
}

impl Feed for LevelFeed<'_> {
    fn next(&mut self, now: Instant) -> Option<(usize, SeqRequest)> {
        loop {
            let (seq, p, arrival) = self.schedule.take(now)?;
            let prompt = self.req.prompts[p];
            let waited = now.saturating_duration_since(self.schedule.start());
            let served = Served {
                prompt: p,
                seq,
                arrival,
                queue: waited.saturating_sub(arrival),
                concurrent: self.live.len(),
                reply: ChatReply::default(),
            };
            let sampler = (!prompt.sampling.is_greedy()).then(|| Sampler::new(&prompt.sampling));
            let sampler = match sampler.transpose() {
                Ok(s) => s,
                Err(e) => {
                    let reply = failed_reply(e.to_string());
                    let queue = Duration::ZERO;
                    self.served.push(Served {
                        queue,
                        reply,
                        ..served
                    });
                    continue;
                }
            };
            let answer = Answer::new(self.model, prompt.max_tokens);
            self.live.insert(seq, Live { served, answer });
            let request = SeqRequest {
                prompt: self.ready[p].1.clone(),
                max_tokens: prompt.max_tokens,
                stop_at_eog: self.model.info.synthetic.is_none(),
                sampler,
                time_limit: Some(prompt.time_limit),
            };
            return Some((seq, request));
        }
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.schedule.next_arrival()
    }

    fn token(&mut self, id: usize, t: &TokenEvent<'_>) -> Flow {
        let Some(live) = self.live.get_mut(&id) else {
            return Flow::Stop;
        };
        let stops = &self.req.prompts[live.served.prompt].stop;
        live.answer.push(self.model, t.token, t.at, stops)
    }

    fn done(&mut self, id: usize, result: Result<RunTrace, String>) {
        let Some(live) = self.live.remove(&id) else {
            return;
        };
        let p = live.served.prompt;
        let trace = result.map(|t| live.answer.trace(t));
        let reply = super::chat_reply(trace, &self.ready[p].0, self.req.prompts[p].time_limit);
        self.served.push(Served {
            reply: ChatReply {
                token_ends: live.answer.token_ends,
                ..reply
            },
            ..live.served
        });
    }

    fn cancelled(&self) -> bool {
        crate::util::interrupt::requested()
    }
}
