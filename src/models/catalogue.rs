//! The catalogue of published architectures that runner can build random-weight ("synthetic")
//! models of: each entry's hyperparameters with their sources, and the exact tensors and GGUF
//! keys llama.cpp's loader expects for it.
//!
//! llama.cpp's decode speed depends on the shapes and types of the tensors (and, for a
//! Mixture-of-Experts model, on the routing), not on the values of the weights; so a GGUF with a
//! real model's tensors, filled with well-scaled random values, measures that model's speed on a
//! machine that cannot fetch it. The shapes here follow the published `config.json` files and
//! llama.cpp's loader (`src/models/<arch>.cpp` of the pinned llama.cpp); the parameter counts
//! they add up to are checked against the published totals in the tests.

use crate::gguf::GgmlType;

#[cfg(test)]
#[path = "catalogue_tests.rs"]
mod tests;

crate::util::names::named_enum! {
    /// The llama.cpp architecture an entry is written as, named as `general.architecture`.
    pub enum Family {
        /// Llama 2 and 3.1, and Mixtral (with experts).
        Llama = "llama",
        /// Qwen2.5 (Coder), with q/k/v biases.
        Qwen2 = "qwen2",
        /// Qwen3 MoE, with q/k norms.
        Qwen3Moe = "qwen3moe",
        /// Qwen3 dense (here: the dense reference of a Qwen3 MoE).
        Qwen3 = "qwen3",
        /// Qwen3.5/3.6 dense, Gated DeltaNet layers between full-attention ones.
        Qwen35 = "qwen35",
        /// Qwen3.5/3.6 MoE, the same attention with routed and shared experts.
        Qwen35Moe = "qwen35moe",
        /// Local (sliding-window) and global attention, tied embeddings.
        Gemma3 = "gemma3",
        /// Alternating sliding/full attention, attention sinks, MXFP4 experts.
        GptOss = "gpt-oss",
    }
}

/// Sliding-window attention: the window, and every `period`-th layer is global (gemma3:
/// layer i is global when (i + 1) % 6 == 0) or, for gpt-oss, even layers slide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swa {
    pub window: u32,
    pub period: u32,
}

/// Gated DeltaNet (linear attention) layers of Qwen3.5/3.6: llama.cpp's `ssm.*` keys.
/// Layer i has full attention when (i + 1) % `interval` == 0, linear attention otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ssm {
    pub conv_kernel: u64,
    /// value head dim × value heads.
    pub inner: u64,
    /// key (and value) head dim.
    pub state: u64,
    /// key heads.
    pub groups: u64,
    /// value heads.
    pub dt_rank: u64,
    pub interval: u32,
}

/// One published architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    /// Short name used on the command line, e.g. `llama-3.1-8b`.
    pub name: &'static str,
    /// The published model it stands for, e.g. `Llama-3.1-8B`.
    pub display: &'static str,
    pub family: Family,
    pub layers: u32,
    /// Hidden size (`n_embd`).
    pub embd: u64,
    /// Dense FFN size; for Mixtral the size of each expert (llama.cpp's `feed_forward_length`).
    pub ff: u64,
    /// Size of each routed expert's FFN (0 = none or `ff`).
    pub ff_exp: u64,
    /// Size of the shared expert's FFN (0 = none).
    pub ff_shexp: u64,
    pub experts: u32,
    pub used: u32,
    pub heads: u32,
    pub kv_heads: u32,
    pub head_dim: u64,
    /// Rotary dimensions when only part of each head rotates (0 = the whole head).
    pub rope_dims: u64,
    pub vocab: u64,
    /// Output matrix shared with the token embedding.
    pub tied: bool,
    /// Llama 3.1's `rope_freqs.weight` (RoPE scaling factors, one per rotary pair).
    pub rope_freqs: bool,
    pub context: u64,
    pub rope_base: f32,
    pub rms_eps: f32,
    pub swa: Option<Swa>,
    pub ssm: Option<Ssm>,
    /// Published parameter count in billions (total, active per token), as counted from the
    /// configs: what the tensors here add up to.
    pub params_b: (f64, f64),
    /// A fetchable model whose tokenizer has this vocabulary (for runs that need text); `None`
    /// writes llama.cpp's token-ids-only vocabulary.
    pub tokenizer: Option<&'static str>,
    /// Where the numbers come from.
    pub sources: &'static [&'static str],
}

/// How a tensor's values are drawn (see `engine::synth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// A norm's scale: near 1.
    Norm,
    /// A projection: zero-mean, standard deviation 1/sqrt(fan-in), so activations keep their
    /// scale layer after layer.
    Matrix,
    /// Token embeddings: unit-scale rows.
    Embedding,
    /// A router: fully random (never tiled), seeded, so each token picks its own experts.
    Router,
    /// A bias: small.
    Bias,
    /// Gated DeltaNet decay (`ssm_a`): negative, around -1.
    Decay,
    /// RoPE frequency factors: 1.
    One,
    /// Attention sinks: 0.
    Zero,
}

/// One tensor of a synthetic model: GGUF name, ggml dims (`ne` order), how values are drawn,
/// and the type a converter would write it in before quantization.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub init: Init,
    pub source_type: GgmlType,
}

impl TensorSpec {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Why an entry or a layer count cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("unknown architecture '{name}' (known: {known}; see `runner models list`)")]
    Unknown { name: String, known: String },
    #[error(
        "{name}: --layers {asked} is out of range: it has {layers} layers (use 1 to {layers})"
    )]
    Layers {
        name: String,
        asked: u64,
        layers: u32,
    },
    #[error("{name}: --layers {asked} cuts its pattern of {} linear-attention layers and one full-attention layer; use a multiple of {period} up to {layers}", period - 1)]
    Pattern {
        name: String,
        asked: u32,
        period: u32,
        layers: u32,
    },
    #[error("catalogue entry {name}: {reason}")]
    Shape { name: String, reason: String },
}

const fn base(name: &'static str, display: &'static str, family: Family) -> Arch {
    Arch {
        name,
        display,
        family,
        layers: 0,
        embd: 0,
        ff: 0,
        ff_exp: 0,
        ff_shexp: 0,
        experts: 0,
        used: 0,
        heads: 0,
        kv_heads: 0,
        head_dim: 0,
        rope_dims: 0,
        vocab: 0,
        tied: false,
        rope_freqs: false,
        context: 0,
        rope_base: 10_000.0,
        rms_eps: 1e-6,
        swa: None,
        ssm: None,
        params_b: (0.0, 0.0),
        tokenizer: None,
        sources: &[],
    }
}

/// Llama 2, Llama 3.1 and Mixtral: 32 layers 4096 wide, 32 query heads of 128.
const fn llama(name: &'static str, display: &'static str) -> Arch {
    Arch {
        layers: 32,
        embd: 4096,
        heads: 32,
        head_dim: 128,
        rms_eps: 1e-5,
        ..base(name, display, Family::Llama)
    }
}

/// Qwen2.5-Coder 14B and 32B: 5120 wide, 40 query and 8 KV heads of 128, 32k context.
const fn qwen25_coder(name: &'static str, display: &'static str) -> Arch {
    Arch {
        embd: 5120,
        heads: 40,
        kv_heads: 8,
        head_dim: 128,
        vocab: 152064,
        context: 32768,
        rope_base: 1_000_000.0,
        tokenizer: Some("qwen2.5-coder-0.5b"),
        ..base(name, display, Family::Qwen2)
    }
}

/// Qwen3-30B-A3B and Qwen3-Coder-30B-A3B: the same 48 layers of 128 experts (8 used); they
/// differ in the dense FFN size, the context and the RoPE base.
const fn qwen3_moe(name: &'static str, display: &'static str) -> Arch {
    Arch {
        layers: 48,
        embd: 2048,
        ff_exp: 768,
        experts: 128,
        used: 8,
        heads: 32,
        kv_heads: 4,
        head_dim: 128,
        vocab: 151936,
        params_b: (30.53, 3.35),
        tokenizer: Some("qwen2.5-coder-0.5b"),
        sources: &[
            "https://huggingface.co/Qwen/Qwen3-30B-A3B-Instruct-2507",
            "https://huggingface.co/unsloth/Qwen3-Coder-30B-A3B-Instruct-1M-GGUF",
        ],
        ..base(name, display, Family::Qwen3Moe)
    }
}

/// Qwen3.6 (llama.cpp's `qwen35` and `qwen35moe`): heads of 256 with 64 rotary dims, 262k
/// context, and three Gated DeltaNet layers before each full-attention one, with 16 key heads
/// and `value_heads` value heads of 128.
const fn qwen36(
    name: &'static str,
    display: &'static str,
    family: Family,
    value_heads: u64,
) -> Arch {
    Arch {
        head_dim: 256,
        rope_dims: 64,
        vocab: 248320,
        context: 262144,
        rope_base: 10_000_000.0,
        ssm: Some(Ssm {
            conv_kernel: 4,
            inner: 128 * value_heads,
            state: 128,
            groups: 16,
            dt_rank: value_heads,
            interval: 4,
        }),
        sources: &[
            "https://huggingface.co/Qwen/Qwen3.5-27B",
            "https://mera.a-ai.ru/en/industrial/submits/181",
            "llama.cpp src/models/qwen35.cpp, src/models/qwen35moe.cpp",
        ],
        ..base(name, display, family)
    }
}

/// Gemma 3: 262k vocabulary with tied embeddings, 128k context, five local layers (a window
/// of 1024) before each global one.
const fn gemma3(name: &'static str, display: &'static str) -> Arch {
    Arch {
        vocab: 262144,
        tied: true,
        context: 131072,
        rope_base: 1_000_000.0,
        swa: Some(Swa {
            window: 1024,
            period: 6,
        }),
        tokenizer: Some("gemma-3-270m"),
        sources: &[
            "https://huggingface.co/google/gemma-3-27b-it",
            "llama.cpp conversion/gemma.py, src/models/gemma3.cpp",
        ],
        ..base(name, display, Family::Gemma3)
    }
}

/// Every architecture runner can synthesize.
pub static CATALOGUE: [Arch; 12] = [
    Arch {
        ff: 11008,
        kv_heads: 32,
        vocab: 32000,
        context: 4096,
        params_b: (6.74, 6.74),
        sources: &["https://huggingface.co/meta-llama/Llama-2-7b-hf (config.json)"],
        ..llama("llama-2-7b", "Llama-2-7B")
    },
    Arch {
        ff: 14336,
        kv_heads: 8,
        vocab: 128256,
        rope_freqs: true,
        context: 131072,
        rope_base: 500_000.0,
        params_b: (8.03, 8.03),
        sources: &["https://huggingface.co/meta-llama/Llama-3.1-8B (config.json)"],
        ..llama("llama-3.1-8b", "Llama-3.1-8B")
    },
    Arch {
        ff: 14336,
        experts: 8,
        used: 2,
        kv_heads: 8,
        vocab: 32000,
        context: 32768,
        rope_base: 1_000_000.0,
        params_b: (46.70, 12.88),
        sources: &["https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1 (config.json)"],
        ..llama("mixtral-8x7b", "Mixtral-8x7B")
    },
    Arch {
        layers: 48,
        ff: 13824,
        params_b: (14.77, 14.77),
        sources: &["https://huggingface.co/Qwen/Qwen2.5-Coder-14B-Instruct (config.json)"],
        ..qwen25_coder("qwen2.5-coder-14b", "Qwen2.5-Coder-14B")
    },
    Arch {
        layers: 64,
        ff: 27648,
        params_b: (32.76, 32.76),
        sources: &["https://huggingface.co/Qwen/Qwen2.5-Coder-32B-Instruct (config.json)"],
        ..qwen25_coder("qwen2.5-coder-32b", "Qwen2.5-Coder-32B")
    },
    Arch {
        ff: 6144,
        context: 40960,
        rope_base: 1_000_000.0,
        ..qwen3_moe("qwen3-30b-a3b", "Qwen3-30B-A3B")
    },
    Arch {
        ff: 5472,
        context: 262144,
        rope_base: 10_000_000.0,
        ..qwen3_moe("qwen3-coder-30b-a3b", "Qwen3-Coder-30B-A3B")
    },
    Arch {
        layers: 40,
        embd: 2048,
        ff_exp: 512,
        ff_shexp: 512,
        experts: 256,
        used: 8,
        heads: 16,
        kv_heads: 2,
        params_b: (34.66, 3.45),
        ..qwen36("qwen3.6-35b-a3b", "Qwen3.6-35B-A3B", Family::Qwen35Moe, 32)
    },
    Arch {
        layers: 64,
        embd: 5120,
        ff: 17408,
        heads: 24,
        kv_heads: 4,
        params_b: (26.90, 26.90),
        ..qwen36("qwen3.6-27b", "Qwen3.6-27B", Family::Qwen35, 48)
    },
    Arch {
        layers: 48,
        embd: 3840,
        ff: 15360,
        heads: 16,
        kv_heads: 8,
        head_dim: 256,
        params_b: (11.77, 11.77),
        ..gemma3("gemma-3-12b", "Gemma-3-12B")
    },
    Arch {
        layers: 62,
        embd: 5376,
        ff: 21504,
        heads: 32,
        kv_heads: 16,
        head_dim: 128,
        params_b: (27.01, 27.01),
        ..gemma3("gemma-3-27b", "Gemma-3-27B")
    },
    Arch {
        layers: 24,
        embd: 2880,
        ff_exp: 2880,
        experts: 32,
        used: 4,
        heads: 64,
        kv_heads: 8,
        head_dim: 64,
        vocab: 201088,
        context: 131072,
        rope_base: 150_000.0,
        rms_eps: 1e-5,
        swa: Some(Swa {
            window: 128,
            period: 2,
        }),
        params_b: (20.91, 4.19),
        sources: &[
            "https://huggingface.co/openai/gpt-oss-20b (config.json)",
            "llama.cpp src/models/openai-moe.cpp",
        ],
        ..base("gpt-oss-20b", "gpt-oss-20b", Family::GptOss)
    },
];

/// The entry named `name` (case-insensitive), or an error listing the names.
pub fn arch(name: &str) -> Result<&'static Arch, CatalogueError> {
    CATALOGUE
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| CatalogueError::Unknown {
            name: name.to_string(),
            known: CATALOGUE
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}
