//! Prompts rendered with a GGUF model's own chat template and counted: what the native run
//! evaluates, and the same text for backends that take the prompt as text (Ollama's raw mode),
//! so the prompt tokens match. For those, only the vocabulary is loaded, not the weights.

use crate::engine::{self, template, Model};
use crate::scenario::Prompt;
use std::path::Path;

/// A prompt of a cell: rendered as the native run evaluates it, and its token count under the
/// model's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    pub rendered: template::Rendered,
    pub tokens: u32,
}

/// The vocabulary (and chat template) of a GGUF file, validated first.
pub fn vocab(path: &Path) -> Result<Model, String> {
    let backend = engine::init(false).map_err(|e| e.to_string())?;
    Model::load_vocab_only(backend, path).map_err(|e| e.to_string())
}

/// The prompt as the native run would evaluate it (`raw`: messages joined, no template).
pub fn render(model: &Model, prompt: &Prompt, raw: bool) -> Result<Ready, String> {
    let rendered = template::render(model, prompt, raw).map_err(|e| e.to_string())?;
    let tokens = model.tokenize(&rendered.text, true, true).len();
    Ok(Ready {
        rendered,
        tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
    })
}
