//! Prompts rendered with a GGUF model's own chat template, for backends that take the prompt
//! as text (Ollama's raw mode): the same text the native run evaluates, so the prompt tokens
//! match. Only the vocabulary is loaded, not the weights.

use crate::gguf::GgufFile;
use crate::llama::generate::render_prompt;
use crate::scenario::Prompt;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::path::Path;
use std::sync::OnceLock;

/// A prompt as text, how it was built, and its token count under the model's vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub template: String,
    pub tokens: u32,
}

/// A model's vocabulary and chat template.
pub struct Renderer {
    model: LlamaModel,
}

/// llama.cpp's backend may start once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| crate::llama::init(false).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

impl Renderer {
    /// Loads the vocabulary (and template) of a GGUF file, validated first.
    pub fn open(path: &Path) -> Result<Renderer, String> {
        GgufFile::open(path).map_err(|e| e.to_string())?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(backend()?, path, &params)
            .map_err(|e| format!("{}: llama.cpp could not read it: {e}", path.display()))?;
        Ok(Renderer { model })
    }

    /// The prompt as the native run would evaluate it (`raw`: messages joined, no template).
    pub fn render(&self, prompt: &Prompt, raw: bool) -> Result<Rendered, String> {
        let (text, template) =
            render_prompt(&self.model, prompt, raw).map_err(|e| e.to_string())?;
        let tokens = self
            .model
            .vocab()
            .tokenize(text.as_bytes(), true, true)
            .len();
        Ok(Rendered {
            text,
            template,
            tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
        })
    }
}
