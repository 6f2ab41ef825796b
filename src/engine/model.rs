//! A GGUF model loaded into llama.cpp (after its structure was validated), described for
//! records, with its vocabulary.

use super::settings::LoadOptions;
use crate::gguf::{self, GgufFile};
use crate::models::synthetic::Synthetic;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_sys_2 as sys;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;
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

/// What the model file is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: String,
    pub file_name: String,
    pub size_bytes: u64,
    /// RFC 3339 modification time of the file.
    pub modified: Option<String>,
    /// sha256 of the file, when verified (known models) or requested (`--sha256`).
    pub sha256: Option<String>,
    pub name: Option<String>,
    pub architecture: String,
    /// llama.cpp's one-line description, e.g. `llama ?B Q4_1`.
    pub description: String,
    pub n_params: u64,
    pub file_type: Option<String>,
    /// Tensor bytes × 8 / parameters.
    pub bits_per_weight: f64,
    pub context_length: Option<u64>,
    pub n_layer: u32,
    pub n_embd: i32,
    pub n_vocab: i32,
    pub expert_count: Option<u64>,
    pub expert_used_count: Option<u64>,
    /// Time llama.cpp took to load the weights, in milliseconds.
    pub load_ms: f64,
    /// Set for a synthetic (random-weight) model: what it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<Synthetic>,
}

/// A model in memory, with its GGUF header and its description (with how long loading took).
#[derive(Debug)]
pub struct Model {
    pub(crate) llama: LlamaModel,
    pub gguf: GgufFile,
    pub info: ModelInfo,
    /// The output layer sits on a GPU: llama.cpp offloads it first, with any layer offloaded.
    pub(crate) output_on_gpu: bool,
}

// `model_ptr` reads the pointer a `LlamaModel` holds by layout: llama-cpp-2 declares
// `LlamaModel` `repr(transparent)` over `Ptr<llama_model>`, itself `repr(transparent)` over
// `NonNull<llama_model>`. A release that changes that fails to compile here.
const _: () = {
    assert!(std::mem::size_of::<LlamaModel>() == std::mem::size_of::<*mut sys::llama_model>());
    assert!(std::mem::align_of::<LlamaModel>() == std::mem::align_of::<*mut sys::llama_model>());
};

/// The raw model pointer behind a `LlamaModel`.
pub(crate) fn model_ptr(model: &LlamaModel) -> *mut sys::llama_model {
    // SAFETY: `LlamaModel` is a transparent wrapper of one non-null `*mut llama_model` (size
    // and alignment asserted above), so a `&LlamaModel` points at that pointer.
    unsafe { *(model as *const LlamaModel).cast::<*mut sys::llama_model>() }
}

impl Model {
    /// Validates the file's GGUF structure (llama.cpp may abort the process on a bad file),
    /// then loads it.
    pub fn load(
        backend: &LlamaBackend,
        path: &Path,
        opts: LoadOptions,
    ) -> Result<Model, ModelError> {
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(opts.n_gpu_layers)
            .with_use_mmap(opts.use_mmap);
        let mut model = Model::with_params(backend, path, &params)?;
        model.output_on_gpu = opts.n_gpu_layers > 0 && has_gpu();
        Ok(model)
    }

    /// Only the vocabulary and chat template of a GGUF file (validated first): enough to
    /// render and count prompts, without the weights.
    pub fn load_vocab_only(backend: &LlamaBackend, path: &Path) -> Result<Model, ModelError> {
        let params = LlamaModelParams::default().with_vocab_only(true);
        Model::with_params(backend, path, &params)
    }

    /// Validates the file's GGUF structure (and, to be memory-mapped, the alignment of its
    /// tensor data), then loads it with `params`.
    fn with_params(
        backend: &LlamaBackend,
        path: &Path,
        params: &LlamaModelParams,
    ) -> Result<Model, ModelError> {
        let gguf = GgufFile::open(path)?;
        if params.use_mmap() && !params.vocab_only() {
            if let Some(reason) = gguf.unmappable() {
                let path = path.to_path_buf();
                return Err(gguf::GgufError::Invalid { path, reason }.into());
            }
        }
        let start = Instant::now();
        let llama =
            LlamaModel::load_from_file(backend, path, params).map_err(|_| ModelError::Load {
                path: path.display().to_string(),
                reason: super::log::last_reason(),
            })?;
        let load_ms = start.elapsed().as_secs_f64() * 1000.0;
        let mut info = describe(path, &gguf, &llama);
        info.load_ms = load_ms;
        Ok(Model {
            llama,
            gguf,
            info,
            output_on_gpu: false,
        })
    }

    pub(crate) fn ptr(&self) -> *mut sys::llama_model {
        model_ptr(&self.llama)
    }

    /// The tokens of `text`: BOS added when the model wants one and `add_bos`; special tokens
    /// such as `<|im_start|>` read as such when `special`.
    /// A model without a vocabulary (token ids only) has no tokens for any text.
    pub fn tokenize(&self, text: &str, add_bos: bool, special: bool) -> Vec<i32> {
        if !self.has_vocab() {
            return Vec::new();
        }
        self.llama
            .vocab()
            .tokenize(text.as_bytes(), add_bos, special)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// Appends the bytes of one token's text to `out` (special tokens spelled out when
    /// `special`).
    /// A model without a vocabulary has no text: nothing is appended.
    pub fn piece_into(&self, token: i32, out: &mut Vec<u8>, special: bool) {
        if !self.has_vocab() {
            return;
        }
        self.llama
            .vocab()
            .token_to_piece_into(LlamaToken(token), out, special, None);
    }

    /// The text of one token (special tokens spelled out), lossily decoded.
    pub fn piece(&self, token: i32) -> String {
        let mut bytes = Vec::new();
        self.piece_into(token, &mut bytes, true);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether the model has a tokenizer; a synthetic model made for token ids only does not
    /// (llama.cpp aborts on any text operation on such a vocabulary).
    pub fn has_vocab(&self) -> bool {
        self.gguf.has_vocab()
    }
}

/// Whether llama.cpp has a GPU device (discrete or integrated) to offload layers to.
fn has_gpu() -> bool {
    use llama_cpp_2::LlamaBackendDeviceType as Type;
    llama_cpp_2::list_llama_ggml_backend_devices()
        .iter()
        .any(|d| matches!(d.device_type, Type::Gpu | Type::IntegratedGpu))
}

/// llama.cpp's one-line description of a loaded model, e.g. `llama ?B Q4_1`.
fn description(model: &LlamaModel) -> String {
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
        .and_then(|t| crate::util::time::rfc3339(t.into()).ok());
    ModelInfo {
        path: path.display().to_string(),
        file_name: crate::util::fs::file_name(path),
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
        synthetic: Synthetic::from_gguf(g),
    }
}
