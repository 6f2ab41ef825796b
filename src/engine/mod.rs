//! Everything that touches llama.cpp (FFI): the backend, models, contexts and the one decode
//! loop ([`Session`]), chat templates, samplers, quantization, the graph-evaluation profiler and
//! what the build is, and the one other unsafe call: inherited descriptors made close-on-exec
//! ([`process`]). It has its own small types and knows nothing of the layers above it.
#![allow(unsafe_code)]

pub mod batch;
mod context;
mod deadline;
pub mod info;
mod log;
mod memory;
mod model;
pub mod process;
pub mod profile;
pub mod quant;
pub mod quantize;
mod sampler;
mod session;
mod settings;
pub mod synth;
pub mod template;

pub use batch::{Batcher, Feed, SeqRequest};
pub use context::{argmax, ContextError};
pub use info::{BuildInfo, DeviceInfo};
pub use memory::MemoryUsage;
pub use model::{Model, ModelInfo};
pub use profile::Profile;
pub use sampler::{Sampler, SamplerError};
pub use session::{Flow, RunEnd, RunOptions, RunTrace, Session, TokenEvent};
pub use settings::{
    ContextSettings, EngineSettings, FlashAttn, KvType, LoadOptions, MAX_CTX, MAX_THREADS,
};

use llama_cpp_2::llama_backend::LlamaBackend;

/// llama.cpp, started: the handle every model load needs.
pub type Backend = LlamaBackend;

/// llama.cpp could not start.
#[derive(Debug, thiserror::Error)]
#[error("llama.cpp backend failed to start: {0}")]
pub struct InitError(String);

/// Starts llama.cpp, once per process (it may start only once): routes its log (silent unless
/// `verbose`) and initialises its backends.
pub fn init(verbose: bool) -> Result<&'static Backend, InitError> {
    static BACKEND: std::sync::OnceLock<Result<LlamaBackend, String>> = std::sync::OnceLock::new();
    log::install(verbose);
    BACKEND
        .get_or_init(|| LlamaBackend::init().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| InitError(e.clone()))
}

/// llama.cpp's backend for unit tests.
#[cfg(test)]
pub(crate) fn test_backend() -> &'static Backend {
    init(false).expect("llama.cpp backend")
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod probe_tests;
