//! One chat request through llama.cpp, measured: the prompt rendered with the model's chat
//! template, evaluated, then answered token by token until a stop rule ends it.
//!
//! Every timestamp counts from `start`, taken just before prompt evaluation begins (the prompt
//! is already rendered and tokenized). Stop rules, in the order they are checked for each
//! token: the time limit (also enforced inside llama.cpp's decode calls, through the context's
//! deadline), an end-of-generation token, a stop string in the text so far, `max_tokens`.

use super::context::{Context, ContextError};
use super::sampler::{Sampler, SamplerError};
use crate::scenario::{Prompt, Sampling};
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;
use llama_cpp_2::ChatTemplateError;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Template label: the chat template stored in the GGUF file.
pub const TEMPLATE_MODEL: &str = "model";
/// Template label: ChatML, used (as llama-server does) when the GGUF has no chat template.
pub const TEMPLATE_CHATML_FALLBACK: &str = "chatml (the model has no chat template)";
/// Template label: the prompt text as is.
pub const TEMPLATE_RAW: &str = "raw";

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token (end of sequence or of turn).
    Eos,
    /// The text contained one of the stop strings.
    StopString,
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The time limit passed (during prompt evaluation, a decode call or between tokens).
    TimeLimit,
}

/// Limits and token choice for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_tokens: u32,
    /// Generation stops when the text contains one of these; the text is cut before it.
    /// Empty strings are ignored.
    pub stop: Vec<String>,
    /// Greedy (argmax of the logits) at temperature 0, else llama.cpp's sampler chain.
    pub sampling: Sampling,
    /// From the start of prompt evaluation.
    pub time_limit: Duration,
}

/// One request's answer and its timings, all measured from the start of prompt evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// How the prompt was built: [`TEMPLATE_MODEL`], [`TEMPLATE_CHATML_FALLBACK`] or
    /// [`TEMPLATE_RAW`].
    pub template: String,
    pub prompt_tokens: u32,
    /// Generated tokens, not counting the end-of-generation token that ended it.
    pub output_tokens: u32,
    /// The generated text, without the stop string that ended it. Bytes that do not form
    /// UTF-8 (a character cut by the token limit) read as U+FFFD.
    pub text: String,
    pub stop_reason: StopReason,
    /// Start → prompt evaluated (or aborted by the time limit).
    pub prompt_eval: Duration,
    /// Start → the first generated token whose text piece is not empty.
    pub ttft: Option<Duration>,
    /// Start → each generated token (every one, including empty pieces).
    pub token_times: Vec<Duration>,
    /// Start → end of generation (the stop rule applied).
    pub e2e: Duration,
    /// Time inside llama.cpp's decode calls between the first and the last generated token;
    /// the rest of that span is token choice (argmax or the sampler chain) and runner's own
    /// work.
    pub decode_time: Duration,
}

#[derive(Debug, Error)]
pub enum GenerateError {
    #[error("the model's chat template cannot be read: {0}")]
    TemplateRead(String),
    #[error("llama.cpp could not apply the {label} chat template ({reason}); it only knows its built-in chat formats")]
    ApplyTemplate { label: String, reason: String },
    #[error("a chat message contains a NUL byte")]
    NulInMessage,
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

/// Builds the prompt text and says how: `prompt.raw_prompt` as is ([`TEMPLATE_RAW`]); with
/// `force_raw`, the messages' contents joined with newlines, roles dropped ([`TEMPLATE_RAW`]);
/// otherwise the model's own chat template with the assistant's turn opened
/// ([`TEMPLATE_MODEL`]), or ChatML when the model has none ([`TEMPLATE_CHATML_FALLBACK`]).
pub fn render_prompt(
    model: &LlamaModel,
    prompt: &Prompt,
    force_raw: bool,
) -> Result<(String, String), GenerateError> {
    if let Some(raw) = &prompt.raw_prompt {
        return Ok((raw.clone(), TEMPLATE_RAW.to_string()));
    }
    if force_raw {
        let contents: Vec<&str> = prompt.messages.iter().map(|m| m.content.as_str()).collect();
        return Ok((contents.join("\n"), TEMPLATE_RAW.to_string()));
    }
    let (template, label) = match model.chat_template(None) {
        Ok(t) => (t, TEMPLATE_MODEL),
        Err(ChatTemplateError::MissingTemplate) => {
            let chatml = LlamaChatTemplate::new("chatml")
                .map_err(|e| GenerateError::TemplateRead(e.to_string()))?;
            (chatml, TEMPLATE_CHATML_FALLBACK)
        }
        Err(e) => return Err(GenerateError::TemplateRead(e.to_string())),
    };
    let messages = prompt
        .messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| GenerateError::NulInMessage)?;
    let text = model
        .apply_chat_template(&template, &messages, true)
        .map_err(|e| GenerateError::ApplyTemplate {
            label: label.to_string(),
            reason: e.to_string(),
        })?;
    Ok((text, label.to_string()))
}

/// Tokenizes `text` (adding the model's BOS if it wants one, and reading special tokens such
/// as `<|im_start|>` as such), clears the context's KV cache, evaluates the prompt and
/// generates until a stop rule ends it. `template` is only recorded in the result.
///
/// The context must hold the prompt plus `max_tokens`; a request that does not fit is refused
/// before anything is decoded. A request stopped by the time limit is a result, not an error.
pub fn generate(
    ctx: &mut Context<'_>,
    model: &LlamaModel,
    text: &str,
    template: &str,
    opts: &GenerateOptions,
) -> Result<Generation, GenerateError> {
    // A new chain per request starts from the seed: one seed gives one text.
    let mut sampler = if opts.sampling.is_greedy() {
        None
    } else {
        Some(Sampler::new(&opts.sampling)?)
    };
    if i32::try_from(text.len()).is_err() {
        return Err(GenerateError::PromptTooLarge(text.len()));
    }
    let vocab = model.vocab();
    let tokens: Vec<i32> = vocab
        .tokenize(text.as_bytes(), true, true)
        .into_iter()
        .map(|t| t.0)
        .collect();
    if tokens.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    let (n_ctx, _, _) = ctx.sizes();
    if tokens.len() as u64 + u64::from(opts.max_tokens) > u64::from(n_ctx) {
        return Err(GenerateError::TooLong {
            prompt_tokens: tokens.len(),
            max_tokens: opts.max_tokens,
            n_ctx,
        });
    }
    ctx.clear();
    let mut run = Run::new(template, tokens.len(), opts);
    let start = Instant::now();
    // A limit too far to represent is no limit.
    ctx.set_deadline(start.checked_add(opts.time_limit));
    let result = run.execute(ctx, &vocab, &tokens, sampler.as_mut(), start);
    ctx.set_deadline(None);
    result?;
    Ok(run.finish(start))
}

/// The state of one request while it runs.
struct Run<'o> {
    opts: &'o GenerateOptions,
    g: Generation,
    /// The generated text's bytes: pieces are appended as they come, since one character may
    /// be split across tokens, and decoded once at the end.
    bytes: Vec<u8>,
}

/// Room kept free in the text buffer before each piece, so that a piece is written in place
/// (llama-cpp-2 grows a full buffer by exactly the piece, which would reallocate every token).
const PIECE_ROOM: usize = 64;

impl<'o> Run<'o> {
    fn new(template: &str, prompt_tokens: usize, opts: &'o GenerateOptions) -> Run<'o> {
        let max = opts.max_tokens as usize;
        Run {
            opts,
            g: Generation {
                template: template.to_string(),
                prompt_tokens: u32::try_from(prompt_tokens).unwrap_or(u32::MAX),
                output_tokens: 0,
                text: String::new(),
                stop_reason: StopReason::MaxTokens,
                prompt_eval: Duration::ZERO,
                ttft: None,
                token_times: Vec::with_capacity(max),
                e2e: Duration::ZERO,
                decode_time: Duration::ZERO,
            },
            bytes: Vec::with_capacity(max.saturating_mul(8).max(PIECE_ROOM)),
        }
    }

    /// Evaluates the prompt and generates, setting `stop_reason`.
    fn execute(
        &mut self,
        ctx: &mut Context<'_>,
        vocab: &LlamaVocab<'_>,
        prompt: &[i32],
        mut sampler: Option<&mut Sampler>,
        start: Instant,
    ) -> Result<(), GenerateError> {
        let evaluated = ctx.decode(prompt, 0, true).map(|()| ctx.synchronize());
        self.g.prompt_eval = start.elapsed();
        if !decoded(evaluated)? {
            self.g.stop_reason = StopReason::TimeLimit;
            return Ok(());
        }
        if self.opts.max_tokens == 0 {
            self.g.stop_reason = StopReason::MaxTokens;
            return Ok(());
        }
        let mut pos = prompt.len() as i32;
        let mut pending = Duration::ZERO;
        self.g.stop_reason = loop {
            if ctx.deadline_passed() {
                break StopReason::TimeLimit;
            }
            let token = match sampler.as_deref_mut() {
                Some(s) => s.sample(ctx),
                None => ctx.argmax(),
            }
            .ok_or(ContextError::NoLogits)?;
            let now = start.elapsed();
            if ctx.is_eog(token) {
                break StopReason::Eos;
            }
            self.g.decode_time += pending;
            if let Some(reason) = self.push(vocab, token, now) {
                break reason;
            }
            let before = Instant::now();
            if !decoded(ctx.decode(&[token], pos, true))? {
                break StopReason::TimeLimit;
            }
            pending = before.elapsed();
            pos += 1;
        };
        Ok(())
    }

    /// Records a generated token stamped `now`; the stop rule it triggers, if any.
    fn push(&mut self, vocab: &LlamaVocab<'_>, token: i32, now: Duration) -> Option<StopReason> {
        self.g.output_tokens += 1;
        self.g.token_times.push(now);
        let before = self.bytes.len();
        self.bytes.reserve(PIECE_ROOM);
        vocab.token_to_piece_into(LlamaToken(token), &mut self.bytes, false, None);
        if self.g.ttft.is_none() && self.bytes.len() > before {
            self.g.ttft = Some(now);
        }
        if let Some(at) = find_stop(&self.bytes, before, &self.opts.stop) {
            self.bytes.truncate(at);
            return Some(StopReason::StopString);
        }
        (self.g.output_tokens >= self.opts.max_tokens).then_some(StopReason::MaxTokens)
    }

    fn finish(mut self, start: Instant) -> Generation {
        self.g.text = text_of(&self.bytes);
        self.g.e2e = start.elapsed();
        self.g
    }
}

/// `Ok(true)` when a decode succeeded, `Ok(false)` when the deadline aborted it.
fn decoded(result: Result<(), ContextError>) -> Result<bool, GenerateError> {
    match result {
        Ok(()) => Ok(true),
        Err(ContextError::Aborted { .. }) => Ok(false),
        Err(e) => Err(e.into()),
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
#[path = "generate_tests.rs"]
mod tests;
