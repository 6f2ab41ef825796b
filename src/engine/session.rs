//! The one decode loop: a context, the position its cache has reached, and one definition of
//! time for every command.
//!
//! A call is timed from `llama_decode` to the end of `llama_synchronize` ([`Session::prefill`],
//! [`Session::decode`]). A run ([`Session::run`]) starts its clock just before the prompt is
//! evaluated; each generated token is stamped when it is chosen (after the decode that produced
//! its logits and the argmax or sampler that picked it), so the gap between two stamps is one
//! whole step of generation. `bench`, `sweep`, `profile` and `moe verify` all decode through
//! these three calls.
//!
//! Greedy runs whose callback does not read the logits choose their tokens inside llama.cpp's
//! graph when the output layer sits on a GPU: the decode then copies one token id to the host
//! instead of the logits, and the host has no argmax to do.

use super::context::{Context, ContextError};
use super::memory::MemoryUsage;
use super::model::Model;
use super::profile::Profile;
use super::sampler::Sampler;
use super::settings::{ContextSettings, EngineSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A context and where its cache stands.
#[derive(Debug)]
pub struct Session {
    ctx: Context,
    /// Tokens in the cache: the position of the next one.
    pos: i32,
}

/// How a run chooses tokens and when it ends.
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// Tokens to generate at most (0: evaluate the prompt only).
    pub max_tokens: u32,
    /// End at an end-of-generation token, which is not counted; without it every run
    /// generates exactly `max_tokens` (benchmark workloads).
    pub stop_at_eog: bool,
    /// llama.cpp's sampler chain; greedy (argmax of the logits) when `None`.
    pub sampler: Option<&'a mut Sampler>,
    /// The callback reads each token's logits ([`TokenEvent::logits`]), so a greedy run
    /// chooses on the host even where it could on the GPU.
    pub logits: bool,
    /// From the start of the run; enforced inside llama.cpp's decode calls as well.
    pub time_limit: Option<Duration>,
}

/// A generated token, as the run's callback sees it.
#[derive(Debug)]
pub struct TokenEvent<'a> {
    pub token: i32,
    /// When it was chosen, from the start of the run.
    pub at: Duration,
    /// The logits it was chosen from; empty when the token was chosen on the device.
    pub logits: &'a [f32],
    /// An end-of-generation token (only seen when the run does not stop at them).
    pub eog: bool,
}

/// What the callback wants after a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// An end-of-generation token came (with `stop_at_eog`).
    Eog,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The callback asked to stop.
    Stopped,
    /// The time limit passed (during the prompt, a decode call or between tokens).
    TimeLimit,
}

/// The timestamps of one run, all from its start.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTrace {
    pub prompt_tokens: usize,
    /// Start → prompt evaluated (or stopped by the time limit).
    pub prompt_eval: Duration,
    /// Start → each token the callback accepted.
    pub tokens: Vec<Duration>,
    /// Time inside llama.cpp's decode calls between the first and the last token; the rest
    /// of that span is token choice and the caller's own work.
    pub decode_inside: Duration,
    /// Start → end of the run.
    pub end: Duration,
    pub reason: RunEnd,
}

/// A run's clock and trace as its tokens come: [`Session::run`] and the batcher stamp and
/// keep every token through [`Timeline::take`], so a token's time means the same in both.
#[derive(Debug)]
pub(super) struct Timeline {
    /// When the run started (a batched sequence: when it was given a slot).
    pub(super) start: Instant,
    /// The decode time of the last step (zero until the first token), added once the token
    /// it produced is kept.
    pub(super) pending: Duration,
    pub(super) trace: RunTrace,
}

impl Timeline {
    /// The timeline of a run of `prompt_tokens` starting now, with room for `max_tokens`.
    pub(super) fn start(prompt_tokens: usize, max_tokens: u32) -> Timeline {
        Timeline {
            start: Instant::now(),
            pending: Duration::ZERO,
            trace: RunTrace {
                prompt_tokens,
                prompt_eval: Duration::ZERO,
                tokens: Vec::with_capacity(max_tokens as usize),
                decode_inside: Duration::ZERO,
                end: Duration::ZERO,
                reason: RunEnd::MaxTokens,
            },
        }
    }

    /// Chooses the token after entry `i` of the last batch (the sampler's draw, else greedy),
    /// stamps it, keeps it and hands it to `on_token`: the token to decode next, or why the
    /// run ends with it (`None`: the entry gave no token).
    pub(super) fn take(
        &mut self,
        ctx: &mut Context,
        i: i32,
        sampler: Option<&mut Sampler>,
        stop_at_eog: bool,
        max_tokens: u32,
        on_token: &mut dyn FnMut(&TokenEvent<'_>) -> Flow,
    ) -> Result<i32, Option<RunEnd>> {
        let token = match sampler {
            Some(s) => s.sample_at(ctx, i),
            None => ctx.greedy_at(i),
        }
        .ok_or(None)?;
        let at = self.start.elapsed();
        let eog = ctx.is_eog(token);
        if eog && stop_at_eog {
            return Err(Some(RunEnd::Eog));
        }
        self.trace.decode_inside += self.pending;
        self.trace.tokens.push(at);
        let logits = ctx.logits_row(i).unwrap_or(&[]);
        let flow = on_token(&TokenEvent {
            token,
            at,
            logits,
            eog,
        });
        if flow == Flow::Stop {
            return Err(Some(RunEnd::Stopped));
        }
        if self.trace.tokens.len() >= max_tokens as usize {
            return Err(Some(RunEnd::MaxTokens));
        }
        Ok(token)
    }
}

impl Session {
    /// A session on a new context of `model`.
    pub fn new(model: &Arc<Model>, settings: &ContextSettings) -> Result<Session, ContextError> {
        Ok(Session {
            ctx: Context::new(model, settings, 1)?,
            pos: 0,
        })
    }

    /// A session whose graph evaluation is observed node by node ([`Session::take_profile`]).
    pub fn profiled(
        model: &Arc<Model>,
        settings: &ContextSettings,
    ) -> Result<Session, ContextError> {
        Ok(Session {
            ctx: Context::profiled(model, settings)?,
            pos: 0,
        })
    }

    /// The settings as llama.cpp applied them.
    pub fn applied(
        &self,
        settings: &ContextSettings,
        use_mmap: bool,
        n_gpu_layers: u32,
    ) -> EngineSettings {
        let (n_ctx, n_batch, n_ubatch) = self.ctx.sizes();
        EngineSettings {
            threads: settings.threads,
            threads_batch: settings.threads_batch,
            n_ctx,
            n_batch,
            n_ubatch,
            flash_attn: settings.flash_attn,
            type_k: settings.type_k,
            type_v: settings.type_v,
            use_mmap,
            n_gpu_layers,
            greedy_on_device: self.ctx.greedy_on_device(),
        }
    }

    /// Context size in tokens, as llama.cpp set it.
    pub fn n_ctx(&self) -> u32 {
        self.ctx.sizes().0
    }

    /// Empties the cache.
    pub fn clear(&mut self) {
        self.ctx.clear();
        self.pos = 0;
    }

    /// Evaluates `tokens` after those in the cache, asking for the logits of the last one;
    /// the time from the call to the end of `llama_synchronize`.
    pub fn prefill(&mut self, tokens: &[i32]) -> Result<Duration, ContextError> {
        let start = Instant::now();
        let result = self.ctx.decode(tokens, self.pos, true);
        self.ctx.synchronize();
        let took = start.elapsed();
        result?;
        self.pos += tokens.len() as i32;
        Ok(took)
    }

    /// Decodes one token after those in the cache; timed as [`Session::prefill`].
    pub fn decode(&mut self, token: i32) -> Result<Duration, ContextError> {
        self.prefill(&[token])
    }

    /// The logits of the last decoded token.
    pub fn logits(&self) -> Option<&[f32]> {
        self.ctx.logits_row(-1)
    }

    /// Where greedy tokens are chosen: inside llama.cpp's graph, on the GPU that holds the
    /// output layer, for greedy runs whose logits nobody reads (`greedy_without_logits`);
    /// else from the logits on the host. [`Session::run`] places each run; placing a
    /// session before its first run makes [`Session::applied`] say where its runs will
    /// choose. Returns whether choice is on the device.
    pub fn place_greedy(&mut self, greedy_without_logits: bool) -> bool {
        let on = greedy_without_logits && self.ctx.output_on_gpu();
        self.ctx.set_seq_greedy_on_device(0, on)
    }

    /// The most likely next token: chosen in the graph, or the argmax of the last logits.
    pub fn argmax(&self) -> Option<i32> {
        self.ctx.greedy_at(-1)
    }

    /// The model's beginning-of-sequence token, or 0 when it has none.
    pub fn bos(&self) -> i32 {
        self.ctx.bos()
    }

    /// Model, KV cache and compute buffer bytes of this session's context.
    pub fn memory(&self) -> Option<MemoryUsage> {
        self.ctx.memory()
    }

    /// What the evaluation callback measured since the last call (profiled sessions).
    pub fn take_profile(&mut self) -> Option<Profile> {
        self.ctx.take_profile()
    }

    /// Evaluates `prompt` after the cache's contents and generates from it: each token is
    /// chosen (argmax, or the sampler), stamped, handed to `on_token`, then decoded, until
    /// `max_tokens`, an end-of-generation token (with `stop_at_eog`), the callback or the
    /// time limit ends the run. A run stopped by the time limit is a result, not an error.
    pub fn run(
        &mut self,
        prompt: &[i32],
        mut opts: RunOptions<'_>,
        on_token: &mut dyn FnMut(&TokenEvent<'_>) -> Flow,
    ) -> Result<RunTrace, ContextError> {
        self.place_greedy(opts.sampler.is_none() && !opts.logits);
        let mut run = Timeline::start(prompt.len(), opts.max_tokens);
        // A limit too far to represent is no limit.
        let deadline = opts.time_limit.and_then(|l| run.start.checked_add(l));
        self.ctx.set_deadline(deadline);
        let result = self.generate(prompt, &mut opts, on_token, &mut run);
        self.ctx.set_deadline(None);
        result.map(|()| run.trace)
    }

    fn generate(
        &mut self,
        prompt: &[i32],
        opts: &mut RunOptions<'_>,
        on_token: &mut dyn FnMut(&TokenEvent<'_>) -> Flow,
        run: &mut Timeline,
    ) -> Result<(), ContextError> {
        let evaluated = self.prefill(prompt);
        run.trace.prompt_eval = run.start.elapsed();
        run.trace.reason = match evaluated {
            Err(ContextError::Aborted { .. }) => RunEnd::TimeLimit,
            Err(e) => return Err(e),
            Ok(_) if opts.max_tokens == 0 => RunEnd::MaxTokens,
            Ok(_) => self.steps(opts, on_token, run)?,
        };
        run.trace.end = run.start.elapsed();
        Ok(())
    }

    /// Chooses, stamps and decodes tokens until the run ends; why it ended.
    fn steps(
        &mut self,
        opts: &mut RunOptions<'_>,
        on_token: &mut dyn FnMut(&TokenEvent<'_>) -> Flow,
        run: &mut Timeline,
    ) -> Result<RunEnd, ContextError> {
        loop {
            if self.ctx.deadline_passed() {
                return Ok(RunEnd::TimeLimit);
            }
            let sampler = opts.sampler.as_deref_mut();
            let (eog, max) = (opts.stop_at_eog, opts.max_tokens);
            let token = match run.take(&mut self.ctx, -1, sampler, eog, max, on_token) {
                Ok(token) => token,
                Err(end) => return end.ok_or(ContextError::NoLogits),
            };
            match self.decode(token) {
                Ok(d) => run.pending = d,
                Err(ContextError::Aborted { .. }) => return Ok(RunEnd::TimeLimit),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FlashAttn, KvType, LoadOptions};

    /// The test model, as if its output layer sat on a GPU: llama.cpp then runs the greedy
    /// sampler in the graph on the device that holds the output layer, here the CPU.
    fn model_on_device() -> Arc<Model> {
        let opts = LoadOptions {
            n_gpu_layers: 0,
            use_mmap: true,
        };
        let path = crate::util::test_model();
        let mut m = Model::load(crate::engine::test_backend(), &path, opts).expect("model loads");
        m.output_on_gpu = true;
        Arc::new(m)
    }

    fn greedy(s: &mut Session, logits: bool) -> (Vec<i32>, Vec<usize>) {
        s.clear();
        let prompt = [s.bos(), 504, 3458, 314];
        let opts = RunOptions {
            max_tokens: 24,
            logits,
            ..Default::default()
        };
        let (mut tokens, mut widths) = (Vec::new(), Vec::new());
        s.run(&prompt, opts, &mut |t| {
            tokens.push(t.token);
            widths.push(t.logits.len());
            Flow::Continue
        })
        .expect("run");
        (tokens, widths)
    }

    #[test]
    fn greedy_choice_in_the_graph_picks_the_tokens_of_the_host_argmax() {
        let settings = ContextSettings {
            n_ctx: 128,
            n_batch: 64,
            n_ubatch: 64,
            threads: 2,
            threads_batch: 2,
            flash_attn: FlashAttn::Auto,
            type_k: KvType::F16,
            type_v: KvType::F16,
        };
        let mut s = Session::new(&model_on_device(), &settings).expect("context");
        let applied = |s: &Session| s.applied(&settings, true, 0).greedy_on_device;

        let (on_device, widths) = greedy(&mut s, false);
        assert!(
            applied(&s),
            "a greedy run without logits chooses on the device"
        );
        assert!(widths.iter().all(|&w| w == 0), "no logits come to the host");

        let (on_host, widths) = greedy(&mut s, true);
        assert!(
            !applied(&s),
            "a run that reads the logits chooses on the host"
        );
        assert!(
            widths.iter().all(|&w| w > 1000),
            "each token brings its logits"
        );

        assert_eq!(on_device.len(), 24);
        assert_eq!(on_device, on_host);
        let (again, _) = greedy(&mut s, false);
        assert_eq!(
            again, on_host,
            "switching back to the device changes nothing"
        );
        assert!(applied(&s));
    }
}
