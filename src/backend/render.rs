//! Prompts rendered with a GGUF model's own chat template, for backends that take the prompt
//! as text (Ollama's raw mode): the same text the native run evaluates, so the prompt tokens
//! match. Only the vocabulary is loaded, not the weights.

use crate::engine::{self, template, Model};
use crate::scenario::Prompt;
use std::path::Path;

/// A prompt as text, how it was built, and its token count under the model's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub template: String,
    pub tokens: u32,
}

/// A model's vocabulary and chat template.
pub struct Renderer {
    model: Model,
}

impl Renderer {
    /// Loads the vocabulary (and template) of a GGUF file, validated first.
    pub fn open(path: &Path) -> Result<Renderer, String> {
        let backend = engine::init(false).map_err(|e| e.to_string())?;
        let model = Model::load_vocab_only(backend, path).map_err(|e| e.to_string())?;
        Ok(Renderer { model })
    }

    /// The prompt as the native run would evaluate it (`raw`: messages joined, no template).
    pub fn render(&self, prompt: &Prompt, raw: bool) -> Result<Rendered, String> {
        let r = template::render(&self.model, prompt, raw).map_err(|e| e.to_string())?;
        let tokens = self.model.tokenize(&r.text, true, true).len();
        Ok(Rendered {
            text: r.text,
            template: r.template,
            tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
        })
    }
}
