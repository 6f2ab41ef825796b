//! The in-process requests besides chat: a llama-bench workload, a profile's timed steps and
//! greedy (or forced) decoding with logits, all through the engine's `Session`.

use super::Native;
use crate::backend::{
    GreedyReply, GreedyRequest, Step, StepKind, StepReply, WorkloadReply, WorkloadRequest,
};
use crate::engine::{Flow, Model, RunOptions, Session};
use crate::measure::{EngineTime, StopReason, TokenUnit, Trace};
use std::sync::Arc;

impl Native {
    /// Session `i` and its model.
    fn session(&mut self, i: usize) -> Result<(Arc<Model>, &mut Session), String> {
        let (m, session) = self
            .sessions
            .get_mut(i)
            .ok_or_else(|| format!("no session {i}"))?;
        let model = self
            .models
            .get(*m)
            .map(Arc::clone)
            .ok_or("no model for the session")?;
        Ok((model, session))
    }

    /// One repetition of a workload: clears the cache, fills the depth (untimed), then times
    /// the prompt and `n_gen` greedy tokens; end-of-generation tokens do not stop it, so every
    /// repetition does the same work.
    pub(super) fn workload(&mut self, w: &WorkloadRequest<'_>) -> Result<WorkloadReply, String> {
        let engine = self.engine.clone().ok_or("no cell is prepared")?;
        let model = Arc::clone(self.models.first().ok_or("no model is loaded")?);
        if self.workload.as_ref().is_none_or(|(s, _)| s != w.settings) {
            self.workload = None;
            let session = Session::new(&model, w.settings).map_err(|e| e.to_string())?;
            self.workload = Some((w.settings.clone(), session));
        }
        let Some((_, session)) = self.workload.as_mut() else {
            return Err("no context".into());
        };
        session.clear();
        if !w.depth.is_empty() {
            session.prefill(w.depth).map_err(|e| e.to_string())?;
        }
        // A generation-only test starts from the model's BOS token, as llama-bench's does.
        let bos = [session.bos()];
        let prompt = if w.prompt.is_empty() {
            &bos[..]
        } else {
            w.prompt
        };
        let opts = RunOptions {
            max_tokens: w.n_gen,
            ..Default::default()
        };
        let run = session
            .run(prompt, opts, &mut |_| Flow::Continue)
            .map_err(|e| e.to_string())?;
        let trace = Trace {
            prompt_tokens: w.n_prompt,
            output_tokens: Some(run.tokens.len() as u64),
            prompt_eval: Some(run.prompt_eval),
            first_text: run.tokens.first().copied(),
            end: run.tokens.last().copied().unwrap_or(run.prompt_eval),
            tokens: run.tokens,
            unit: TokenUnit::Token,
            engine: Some(EngineTime {
                prompt: run.prompt_eval,
                decode: run.decode_inside,
            }),
            text: String::new(),
            stop: Some(StopReason::MaxTokens),
        };
        Ok(WorkloadReply {
            trace,
            engine: session.applied(w.settings, engine.use_mmap, engine.n_gpu_layers),
            memory: session.memory().unwrap_or_default(),
        })
    }

    /// One step of a profile: every decode call timed to the end of `llama_synchronize`, with
    /// what a profiled session's callback saw during the timed calls.
    pub(super) fn step(&mut self, s: &Step<'_>) -> Result<StepReply, String> {
        let (model, session) = self.session(s.session)?;
        let prompt = |text: &str, n: u32| -> Vec<i32> {
            let mut ids = model.tokenize(text, false, false);
            if ids.is_empty() {
                ids.push(0);
            }
            ids.iter().copied().cycle().take(n as usize).collect()
        };
        let e = |e: crate::engine::ContextError| e.to_string();
        let mut reply = StepReply::default();
        match s.kind {
            StepKind::FirstToken { text, n_tokens } => {
                session.clear();
                session.prefill(&prompt(text, n_tokens)).map_err(e)?;
                let next = session.argmax().ok_or("no logits")?;
                let _ = session.take_profile();
                reply.calls.push(session.decode(next).map_err(e)?);
            }
            StepKind::Prefill { text, n_tokens } => {
                let prompt = prompt(text, n_tokens);
                session.clear();
                let _ = session.take_profile();
                reply.calls.push(session.prefill(&prompt).map_err(e)?);
            }
            StepKind::Decode { n } => {
                let _ = session.take_profile();
                for _ in 0..n {
                    let next = session.argmax().ok_or("no logits")?;
                    reply.calls.push(session.decode(next).map_err(e)?);
                }
            }
        }
        reply.profile = session.take_profile();
        Ok(reply)
    }

    /// The greedy continuation of a plain-text prompt, keeping the logits of every choice; or,
    /// with `forced`, the logits before each given token as the tokens are fed in turn.
    pub(super) fn greedy(&mut self, g: &GreedyRequest<'_>) -> Result<GreedyReply, String> {
        let (model, session) = self.session(g.session)?;
        let prompt = model.tokenize(g.prompt, true, true);
        if prompt.is_empty() {
            return Err("the prompt has no tokens".into());
        }
        if prompt.len() as u64 + u64::from(g.n_tokens) > u64::from(session.n_ctx()) {
            return Err(format!(
                "{} prompt tokens + {} tokens do not fit in the context of {}",
                prompt.len(),
                g.n_tokens,
                session.n_ctx()
            ));
        }
        session.clear();
        let mut out = GreedyReply {
            prompt: prompt.clone(),
            ..Default::default()
        };
        match g.forced {
            None => {
                let opts = RunOptions {
                    max_tokens: g.n_tokens,
                    logits: true,
                    ..Default::default()
                };
                session
                    .run(&prompt, opts, &mut |t| {
                        out.tokens.push(t.token);
                        out.logits.push(t.logits.to_vec());
                        if t.eog {
                            Flow::Stop
                        } else {
                            Flow::Continue
                        }
                    })
                    .map_err(|e| e.to_string())?;
            }
            Some(tokens) => {
                session.prefill(&prompt).map_err(|e| e.to_string())?;
                for (i, &token) in tokens.iter().enumerate() {
                    out.logits
                        .push(session.logits().ok_or("no logits")?.to_vec());
                    out.tokens.push(token);
                    if i + 1 < tokens.len() {
                        session.decode(token).map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        out.text = out.tokens.iter().map(|&t| model.piece(t)).collect();
        Ok(out)
    }
}
