//! Loading a GGUF model into llama.cpp, after validating it, and describing it for records.

use super::context::model_ptr;
use crate::gguf::{self, GgufFile};
use crate::record::ModelInfo;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_sys_2 as sys;
use std::path::Path;
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Invalid(#[from] gguf::GgufError),
    #[error("{path}: llama.cpp could not load the model{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Load {
        path: String,
        reason: Option<String>,
    },
}

/// How to load weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    pub n_gpu_layers: u32,
    pub use_mmap: bool,
}

/// A model in memory, with its description and how long loading took.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: LlamaModel,
    pub gguf: GgufFile,
    pub info: ModelInfo,
    pub load_time: Duration,
}

/// Validates the file's GGUF structure (llama.cpp may abort the process on a bad file), then
/// loads it.
pub fn load(
    backend: &LlamaBackend,
    path: &Path,
    opts: LoadOptions,
) -> Result<LoadedModel, ModelError> {
    load_validated(backend, path, GgufFile::open(path)?, opts)
}

/// Loads a file whose GGUF structure `gguf` was read from (and so validated).
pub fn load_validated(
    backend: &LlamaBackend,
    path: &Path,
    gguf: GgufFile,
    opts: LoadOptions,
) -> Result<LoadedModel, ModelError> {
    let params = LlamaModelParams::default()
        .with_n_gpu_layers(opts.n_gpu_layers)
        .with_use_mmap(opts.use_mmap);
    let start = Instant::now();
    let model =
        LlamaModel::load_from_file(backend, path, &params).map_err(|_| ModelError::Load {
            path: path.display().to_string(),
            reason: super::log::last_reason(),
        })?;
    let load_time = start.elapsed();
    let mut info = describe(path, &gguf, &model);
    info.load_ms = load_time.as_secs_f64() * 1000.0;
    Ok(LoadedModel {
        model,
        gguf,
        info,
        load_time,
    })
}

/// llama.cpp's one-line description of a loaded model, e.g. `llama ?B Q4_1`.
pub fn description(model: &LlamaModel) -> String {
    let mut buf = vec![0u8; 256];
    // SAFETY: the model is live; llama_model_desc writes at most buf.len() bytes including
    // the NUL terminator.
    let n = unsafe { sys::llama_model_desc(model_ptr(model), buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(n)
        .unwrap_or(0)
        .min(buf.len().saturating_sub(1));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn describe(path: &Path, g: &GgufFile, model: &LlamaModel) -> ModelInfo {
    let meta = std::fs::metadata(path).ok();
    let modified = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| crate::record::rfc3339(t.into()).ok());
    ModelInfo {
        path: path.display().to_string(),
        file_name: path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size_bytes: meta.map(|m| m.len()).unwrap_or(g.file_size),
        modified,
        sha256: None,
        name: g.get_str("general.name").map(str::to_string),
        architecture: g.architecture().unwrap_or("unknown").to_string(),
        description: description(model),
        n_params: model.n_params(),
        file_type: g
            .file_type()
            .and_then(gguf::file_type_name)
            .map(str::to_string),
        bits_per_weight: g.bits_per_weight(),
        context_length: g.arch_u64("context_length"),
        n_layer: model.n_layer(),
        n_embd: model.n_embd(),
        n_vocab: model.n_vocab(),
        expert_count: g.arch_u64("expert_count").filter(|&n| n > 0),
        expert_used_count: g.arch_u64("expert_used_count").filter(|&n| n > 0),
        load_ms: 0.0,
    }
}
