//! Everything that touches llama.cpp: backend, model loading, contexts, the decode loop.

pub mod context;
mod deadline;
pub mod generate;
pub mod greedy;
pub mod info;
pub mod log;
mod memory;
pub mod model;
pub mod profile;
pub mod quantize;
pub mod sampler;
pub mod workload;

use llama_cpp_2::llama_backend::LlamaBackend;

/// Starts llama.cpp: routes its log (silent unless `verbose`) and initialises the backends.
pub fn init(verbose: bool) -> anyhow::Result<LlamaBackend> {
    log::install(verbose);
    LlamaBackend::init().map_err(|e| anyhow::anyhow!("llama.cpp backend failed to start: {e}"))
}

/// llama.cpp's backend for unit tests: started once per test binary, since it may start only
/// once per process.
#[cfg(test)]
pub(crate) fn test_backend() -> &'static LlamaBackend {
    static BACKEND: std::sync::OnceLock<LlamaBackend> = std::sync::OnceLock::new();
    BACKEND.get_or_init(|| init(false).expect("llama.cpp backend"))
}
