//! Greedy decoding to token ids, keeping the logits each token was chosen from, and forced
//! decoding along a given token sequence: how two models' outputs are compared step by step.

use super::context::{argmax, Context, ContextError};
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

/// A greedy continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Greedy {
    /// The prompt's tokens (BOS added when the model wants one).
    pub prompt: Vec<i32>,
    /// The generated tokens, the end-of-generation token included when one ended it.
    pub tokens: Vec<i32>,
    /// For each generated token, the logits it was chosen from.
    pub logits: Vec<Vec<f32>>,
}

/// The tokens of `text` as plain text (no chat template; BOS added when the model wants it).
pub fn tokenize(model: &LlamaModel, text: &str) -> Vec<i32> {
    model
        .vocab()
        .tokenize(text.as_bytes(), true, true)
        .into_iter()
        .map(|t| t.0)
        .collect()
}

/// Evaluates `prompt` in a cleared `ctx`, then picks the argmax token `n_tokens` times or
/// until an end-of-generation token.
pub fn greedy(
    ctx: &mut Context<'_>,
    prompt: &[i32],
    n_tokens: u32,
) -> Result<Greedy, ContextError> {
    let mut g = Greedy {
        prompt: prompt.to_vec(),
        tokens: Vec::new(),
        logits: Vec::new(),
    };
    start(ctx, prompt)?;
    let mut pos = prompt.len() as i32;
    while g.tokens.len() < n_tokens as usize {
        let row = ctx.last_logits().ok_or(ContextError::NoLogits)?.to_vec();
        let token = i32::try_from(argmax(&row)).map_err(|_| ContextError::NoLogits)?;
        g.tokens.push(token);
        g.logits.push(row);
        if ctx.is_eog(token) || g.tokens.len() == n_tokens as usize {
            break;
        }
        ctx.decode(&[token], pos, true)?;
        pos += 1;
    }
    Ok(g)
}

/// Evaluates `prompt` in a cleared `ctx`, then feeds `tokens` one at a time (whatever the
/// model would have chosen), returning the logits before each of them: the rows a greedy run
/// that chose exactly `tokens` would have seen.
pub fn forced(
    ctx: &mut Context<'_>,
    prompt: &[i32],
    tokens: &[i32],
) -> Result<Vec<Vec<f32>>, ContextError> {
    start(ctx, prompt)?;
    let mut rows = Vec::with_capacity(tokens.len());
    let mut pos = prompt.len() as i32;
    for (i, &token) in tokens.iter().enumerate() {
        rows.push(ctx.last_logits().ok_or(ContextError::NoLogits)?.to_vec());
        if i + 1 < tokens.len() {
            ctx.decode(&[token], pos, true)?;
            pos += 1;
        }
    }
    Ok(rows)
}

fn start(ctx: &mut Context<'_>, prompt: &[i32]) -> Result<(), ContextError> {
    if prompt.is_empty() {
        return Err(ContextError::NoLogits);
    }
    ctx.clear();
    ctx.decode(prompt, 0, true)
}

/// The text of one token (special tokens spelled out), lossily decoded.
pub fn piece(model: &LlamaModel, token: i32) -> String {
    let mut bytes = Vec::new();
    model
        .vocab()
        .token_to_piece_into(LlamaToken(token), &mut bytes, true, None);
    String::from_utf8_lossy(&bytes).into_owned()
}
