//! One chat request through an engine [`Session`]: the rendered prompt tokenized and evaluated, then
//! answered token by token, the text assembled as it comes, until a stop rule ends it.
//!
//! Stop rules, in the order they are checked for each token: the time limit (also enforced
//! inside llama.cpp's decode calls), an end-of-generation token, a stop string in the text so
//! far, `max_tokens`. TTFT is the stamp of the first token whose text is not empty.

use crate::engine::{
    ContextError, Flow, Model, RunEnd, RunOptions, RunTrace, Sampler, SamplerError, Session,
};
use crate::measure::{EngineTime, StopReason, TokenUnit, Trace};
use crate::scenario::Prompt;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ChatError {
    #[error("the prompt is {0} bytes, more than llama.cpp can tokenize")]
    PromptTooLarge(usize),
    #[error("the prompt is empty (no tokens)")]
    EmptyPrompt,
    #[error("{prompt_tokens} prompt tokens + {max_tokens} max tokens do not fit in the context of {n_ctx} tokens")]
    TooLong {
        prompt_tokens: usize,
        max_tokens: u32,
        n_ctx: u32,
    },
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    #[error(transparent)]
    Context(#[from] ContextError),
}

/// Room kept free in the text buffer before each piece, so that a piece is written in place
/// (llama-cpp-2 grows a full buffer by exactly the piece, which would reallocate every token).
const PIECE_ROOM: usize = 64;

/// Tokenizes `text` (adding the model's BOS if it wants one, and reading special tokens such
/// as `<|im_start|>` as such), clears the session's cache and answers it under the prompt's
/// output limit, stop strings, sampling (greedy at temperature 0) and time limit (from the
/// start of prompt evaluation).
///
/// The context must hold the prompt plus `max_tokens`: a request that does not fit is refused
/// before anything is decoded. A request stopped by the time limit is a result, not an error.
pub fn generate(
    session: &mut Session,
    model: &Model,
    text: &str,
    opts: &Prompt,
) -> Result<Trace, ChatError> {
    // A new chain per request starts from the seed: one seed gives one text.
    let mut sampler = (!opts.sampling.is_greedy())
        .then(|| Sampler::new(&opts.sampling))
        .transpose()?;
    if i32::try_from(text.len()).is_err() {
        return Err(ChatError::PromptTooLarge(text.len()));
    }
    let tokens = model.tokenize(text, true, true);
    if tokens.is_empty() {
        return Err(ChatError::EmptyPrompt);
    }
    let n_ctx = session.n_ctx();
    if tokens.len() as u64 + u64::from(opts.max_tokens) > u64::from(n_ctx) {
        return Err(ChatError::TooLong {
            prompt_tokens: tokens.len(),
            max_tokens: opts.max_tokens,
            n_ctx,
        });
    }
    session.clear();
    let mut answer = Answer::new(model, opts.max_tokens);
    let run_opts = RunOptions {
        max_tokens: opts.max_tokens,
        stop_at_eog: !answer.synthetic,
        sampler: sampler.as_mut(),
        time_limit: Some(opts.time_limit),
        logits: false,
    };
    let trace = session.run(&tokens, run_opts, &mut |t| {
        answer.push(model, t.token, t.at, &opts.stop)
    })?;
    Ok(answer.trace(trace))
}

/// An answer's text as its tokens arrive: their pieces decoded into one buffer, the stamp of
/// the first token with text, and whether a stop string ended it.
#[derive(Debug)]
pub struct Answer {
    bytes: Vec<u8>,
    ttft: Option<Duration>,
    stopped_by_string: bool,
    /// The text's length in bytes after each token's piece (before a stop string cut it).
    pub token_ends: Vec<usize>,
    /// A synthetic model's text means nothing: every request runs to its token count (no stop
    /// at end-of-generation tokens or stop strings), and its first token is its first text.
    pub synthetic: bool,
}

impl Answer {
    pub fn new(model: &Model, max_tokens: u32) -> Answer {
        Answer {
            bytes: Vec::with_capacity((max_tokens as usize * 8).max(PIECE_ROOM)),
            ttft: None,
            stopped_by_string: false,
            token_ends: Vec::with_capacity(max_tokens as usize),
            synthetic: model.info.synthetic.is_some(),
        }
    }

    /// Appends the piece of `token`, generated at `at`; `Flow::Stop` when the text now holds
    /// one of `stops` (the text is cut before it).
    pub fn push(&mut self, model: &Model, token: i32, at: Duration, stops: &[String]) -> Flow {
        let before = self.bytes.len();
        self.bytes.reserve(PIECE_ROOM);
        model.piece_into(token, &mut self.bytes, false);
        self.token_ends.push(self.bytes.len());
        if self.ttft.is_none() && (self.synthetic || self.bytes.len() > before) {
            self.ttft = Some(at);
        }
        if self.synthetic {
            return Flow::Continue;
        }
        match find_stop(&self.bytes, before, stops) {
            Some(at) => {
                self.bytes.truncate(at);
                self.stopped_by_string = true;
                Flow::Stop
            }
            None => Flow::Continue,
        }
    }

    /// The trace of this answer and its run: the text without the stop string that ended it
    /// (bytes that do not form UTF-8, a character cut by the token limit, read as U+FFFD), the
    /// first token whose piece is not empty and the time inside llama.cpp's decode calls.
    pub fn trace(&self, t: RunTrace) -> Trace {
        let stop = match t.reason {
            RunEnd::Eog => StopReason::Eos,
            RunEnd::MaxTokens => StopReason::MaxTokens,
            RunEnd::Stopped if self.stopped_by_string => StopReason::StopString,
            RunEnd::Stopped => StopReason::Error,
            RunEnd::TimeLimit => StopReason::TimeLimit,
        };
        Trace {
            prompt_tokens: u32::try_from(t.prompt_tokens).unwrap_or(u32::MAX),
            output_tokens: Some(u64::from(u32::try_from(t.tokens.len()).unwrap_or(u32::MAX))),
            prompt_eval: Some(t.prompt_eval),
            first_text: self.ttft,
            tokens: t.tokens,
            unit: TokenUnit::Token,
            end: t.end,
            engine: Some(EngineTime {
                prompt: t.prompt_eval,
                decode: t.decode_inside,
            }),
            text: text_of(&self.bytes),
            stop: Some(stop),
        }
    }
}

/// The start of the earliest stop string in `bytes`, looking only at matches that end at or
/// after `new_from` (everything before it was searched when it arrived). Matching bytes is
/// matching text: UTF-8 never starts a character inside another one.
pub fn find_stop(bytes: &[u8], new_from: usize, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .map(String::as_bytes)
        .filter(|s| !s.is_empty())
        .filter_map(|stop| {
            let from = new_from.min(bytes.len()).saturating_sub(stop.len() - 1);
            let hay = &bytes[from..];
            hay.windows(stop.len())
                .position(|w| w == stop)
                .map(|i| from + i)
        })
        .min()
}

/// The text of the accumulated bytes. Decoding the whole buffer (never piece by piece) keeps a
/// character split across tokens whole; only bytes that never became a character read as
/// U+FFFD.
pub fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
