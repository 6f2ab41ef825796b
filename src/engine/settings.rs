//! Engine settings: what a llama.cpp context is created with, and what a record says it ran
//! with. Closed sets are enums, written as llama.cpp's own names (`on`, `q8_0`, ...).

use llama_cpp_sys_2 as sys;
use serde::{Deserialize, Serialize};

crate::util::names::named_enum! {
    /// Flash-attention policy.
    #[derive(Default)]
    pub enum FlashAttn {
        On = "on",
        Off = "off",
        #[default]
        Auto = "auto",
    }
}

impl FlashAttn {
    pub(crate) fn llama(self) -> sys::llama_flash_attn_type {
        match self {
            FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
        }
    }
}

crate::util::names::named_enum! {
    /// Element type of the KV cache.
    #[derive(Default)]
    pub enum KvType {
        F32 = "f32",
        #[default]
        F16 = "f16",
        Bf16 = "bf16",
        Q8_0 = "q8_0",
        Q4_0 = "q4_0",
        Q4_1 = "q4_1",
        Q5_0 = "q5_0",
        Q5_1 = "q5_1",
        Iq4Nl = "iq4_nl",
    }
}

impl KvType {
    pub(crate) fn ggml(self) -> sys::ggml_type {
        match self {
            KvType::F32 => sys::GGML_TYPE_F32,
            KvType::F16 => sys::GGML_TYPE_F16,
            KvType::Bf16 => sys::GGML_TYPE_BF16,
            KvType::Q8_0 => sys::GGML_TYPE_Q8_0,
            KvType::Q4_0 => sys::GGML_TYPE_Q4_0,
            KvType::Q4_1 => sys::GGML_TYPE_Q4_1,
            KvType::Q5_0 => sys::GGML_TYPE_Q5_0,
            KvType::Q5_1 => sys::GGML_TYPE_Q5_1,
            KvType::Iq4Nl => sys::GGML_TYPE_IQ4_NL,
        }
    }
}

/// The most threads llama.cpp's CPU backend runs a graph on: `GGML_MAX_N_THREADS` in ggml.h
/// (its thread pool and CPU masks are arrays of this size).
pub const MAX_THREADS: u32 = 512;

/// The largest context llama.cpp holds: it pads a context to a multiple of 256 tokens (past
/// this the padding wraps or leaves the 32-bit signed range of its token positions).
pub const MAX_CTX: u32 = (i32::MAX as u32) - 255;

/// The settings a context is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSettings {
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub threads: u32,
    pub threads_batch: u32,
    pub flash_attn: FlashAttn,
    pub type_k: KvType,
    pub type_v: KvType,
}

/// Engine settings a test ran with, as llama.cpp applied them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSettings {
    pub threads: u32,
    pub threads_batch: u32,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub flash_attn: FlashAttn,
    pub type_k: KvType,
    pub type_v: KvType,
    pub use_mmap: bool,
    pub n_gpu_layers: u32,
    /// Greedy tokens were chosen inside llama.cpp's graph on the GPU holding the output
    /// layer, so the logits were not copied to the host (absent: chosen on the host).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub greedy_on_device: bool,
}

/// How to load weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    pub n_gpu_layers: u32,
    pub use_mmap: bool,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            n_gpu_layers: 999,
            use_mmap: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialise_as_llama_cpp_spells_them() {
        for &k in KvType::ALL {
            assert_eq!(k.as_str().parse::<KvType>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for &f in FlashAttn::ALL {
            assert_eq!(f.as_str().parse::<FlashAttn>(), Ok(f));
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
        let e = "q3".parse::<KvType>().unwrap_err();
        assert!(e.contains("q8_0") && e.contains("'q3'"), "{e}");
        let s: EngineSettings = serde_json::from_str(
            r#"{"threads":2,"threads_batch":2,"n_ctx":64,"n_batch":64,"n_ubatch":64,
               "flash_attn":"auto","type_k":"f16","type_v":"q8_0","use_mmap":true,"n_gpu_layers":999}"#,
        )
        .unwrap();
        assert_eq!((s.flash_attn, s.type_v), (FlashAttn::Auto, KvType::Q8_0));
    }
}
