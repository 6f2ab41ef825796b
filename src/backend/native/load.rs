//! A load level in-process: the level's requests decoded together by the engine's
//! [`Batcher`] (continuous batching in one context of N sequences), each answered as a chat
//! request is answered alone: same prompt rendering, stop rules, text and timestamps.

use super::chat::{find_stop, text_of, Generation};
use super::{Native, Ready};
use crate::backend::load::{failed_reply, LoadReply, LoadRequest, Schedule, Served};
use crate::backend::ChatReply;
use crate::engine::{
    Batcher, Feed, Flow, Model, RunEnd, Sampler, SeqRequest, SeqTrace, TokenEvent,
};
use crate::measure::StopReason;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request in flight.
struct Live {
    prompt: usize,
    seq: usize,
    arrival: Duration,
    queue: Duration,
    concurrent: usize,
    bytes: Vec<u8>,
    ttft: Option<Duration>,
    stopped_by_string: bool,
    token_ends: Vec<usize>,
}

/// The level's state between the batcher's calls.
struct LevelFeed<'a> {
    model: &'a Model,
    req: &'a LoadRequest<'a>,
    ready: Vec<(Ready, Vec<i32>)>,
    schedule: Schedule,
    live: HashMap<usize, Live>,
    served: Vec<Served>,
    synthetic: bool,
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
            synthetic: model.info.synthetic.is_some(),
        };
        batcher.serve(&mut feed);
        Ok(LoadReply {
            unsent: feed.schedule.unsent() + feed.live.len(),
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
            let sampler = match prompt.sampling.is_greedy() {
                true => None,
                false => match Sampler::new(&prompt.sampling) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        self.record_failed(seq, p, arrival, e.to_string());
                        continue;
                    }
                },
            };
            let queue = now
                .saturating_duration_since(self.schedule.start())
                .saturating_sub(arrival);
            self.live.insert(
                seq,
                Live {
                    prompt: p,
                    seq,
                    arrival,
                    queue,
                    concurrent: self.live.len(),
                    bytes: Vec::with_capacity(prompt.max_tokens as usize * 8),
                    ttft: None,
                    stopped_by_string: false,
                    token_ends: Vec::new(),
                },
            );
            let request = SeqRequest {
                prompt: self.ready[p].1.clone(),
                max_tokens: prompt.max_tokens,
                stop_at_eog: !self.synthetic,
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
        let before = live.bytes.len();
        self.model.piece_into(t.token, &mut live.bytes, false);
        live.token_ends.push(live.bytes.len());
        if live.ttft.is_none() && (self.synthetic || live.bytes.len() > before) {
            live.ttft = Some(t.at);
        }
        if self.synthetic {
            return Flow::Continue;
        }
        let stops = &self.req.prompts[live.prompt].stop;
        match find_stop(&live.bytes, before, stops) {
            Some(at) => {
                live.bytes.truncate(at);
                live.stopped_by_string = true;
                Flow::Stop
            }
            None => Flow::Continue,
        }
    }

    fn done(&mut self, id: usize, result: Result<SeqTrace, String>) {
        let Some(live) = self.live.remove(&id) else {
            return;
        };
        let (ready, _) = &self.ready[live.prompt];
        let time_limit = self.req.prompts[live.prompt].time_limit;
        let generation = result.map(|t| generation(&live, t));
        let reply = super::chat_reply(generation, ready, time_limit);
        self.served.push(Served {
            prompt: live.prompt,
            seq: live.seq,
            arrival: live.arrival,
            queue: live.queue,
            concurrent: live.concurrent,
            reply: ChatReply {
                token_ends: live.token_ends,
                ..reply
            },
        });
    }

    fn cancelled(&self) -> bool {
        crate::util::interrupt::requested()
    }
}

impl LevelFeed<'_> {
    fn record_failed(&mut self, seq: usize, prompt: usize, arrival: Duration, why: String) {
        self.served.push(Served {
            prompt,
            seq,
            arrival,
            queue: Duration::ZERO,
            concurrent: self.live.len(),
            reply: failed_reply(why),
        });
    }
}

/// A sequence's end as a chat generation.
fn generation(live: &Live, t: SeqTrace) -> Generation {
    let stop_reason = match t.reason {
        RunEnd::Eog => StopReason::Eos,
        RunEnd::MaxTokens => StopReason::MaxTokens,
        RunEnd::Stopped if live.stopped_by_string => StopReason::StopString,
        RunEnd::Stopped => StopReason::Error,
        RunEnd::TimeLimit => StopReason::TimeLimit,
    };
    Generation {
        prompt_tokens: u32::try_from(t.prompt_tokens).unwrap_or(u32::MAX),
        output_tokens: u32::try_from(t.tokens.len()).unwrap_or(u32::MAX),
        text: text_of(&live.bytes),
        stop_reason,
        prompt_eval: t.prompt_eval,
        ttft: live.ttft,
        token_times: t.tokens,
        e2e: t.end,
        decode_time: t.decode_inside,
    }
}
