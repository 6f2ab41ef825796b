//! Will a cell fit? An estimate from the GGUF tensor table and the scenarios, made before the
//! cell starts, so a cell that cannot fit is refused with a clear message instead of being
//! killed by the system.

use crate::backend::EngineSpec;
use crate::engine::{ContextSettings, FlashAttn, KvType};
use crate::gguf::GgufFile;
use crate::scenario::Scenario;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Compute buffers and runtime, beyond weights and KV cache: a fixed part and a share of the weights.
const OVERHEAD_FIXED: u64 = 256 * 1024 * 1024;
const OVERHEAD_SHARE: f64 = 0.10;
/// The process itself besides weights, KV cache and compute buffer: code, thread stacks,
/// llama.cpp's host-side buffers (about 33 MiB measured on SmolLM2).
pub const RUNTIME: u64 = 64 * 1024 * 1024;

/// The memory a cell may use: `--max-memory` GiB, or the memory free on this machine now.
pub fn limit_bytes(max_gib: Option<f64>) -> u64 {
    match max_gib {
        Some(g) if g.is_finite() && g > 0.0 => (g * GIB) as u64,
        _ => crate::hw::machine::available_memory(),
    }
}

/// `Err` with a one-line reason when the cell is estimated to need more than `limit` bytes.
/// A source that did not parse (`None`) is let through: the cell itself reports why.
pub fn check(
    source: Option<&GgufFile>,
    quant: &str,
    scenarios: &[Scenario],
    engine: &EngineSpec,
    seqs: u32,
    limit: u64,
) -> Result<(), String> {
    let Some(g) = source else {
        return Ok(());
    };
    let weights = match crate::engine::quant::parse(quant) {
        Ok(qt) => (g.n_params() as f64 * qt.approx_bpw / 8.0) as u64,
        Err(_) => g.tensor_bytes(),
    };
    // A load level keeps one sequence's cache per request in flight.
    let n_ctx = context_tokens(g, scenarios, engine).saturating_mul(u64::from(seqs.max(1)));
    let kv = n_ctx.saturating_mul(least_kv_bytes(g, 1, KvType::F16, KvType::F16));
    let need = [OVERHEAD_FIXED, (weights as f64 * OVERHEAD_SHARE) as u64, kv]
        .into_iter()
        .fold(weights, u64::saturating_add);
    if need <= limit {
        return Ok(());
    }
    Err(format!(
        "needs about {:.2} GiB (weights {:.2} + KV cache {:.2} for {n_ctx} tokens + buffers), more than the {:.2} GiB it may use",
        need as f64 / GIB,
        weights as f64 / GIB,
        kv as f64 / GIB,
        limit as f64 / GIB
    ))
}

/// The context the cell will ask for, from output limits and prompt lengths (4 bytes of
/// prompt text per token at most, a generous bound), capped at the training context.
fn context_tokens(g: &GgufFile, scenarios: &[Scenario], e: &EngineSpec) -> u64 {
    if let Some(n) = e.n_ctx {
        return u64::from(n);
    }
    let need = scenarios
        .iter()
        .flat_map(|s| &s.prompts)
        .map(|p| {
            let chars: usize = p.messages.iter().map(|m| m.content.len()).sum::<usize>()
                + p.raw_prompt.as_ref().map_or(0, String::len);
            u64::from(p.max_tokens) + chars as u64 / 2 + 64
        })
        .max()
        .unwrap_or(512);
    need.min(g.arch_u64("context_length").unwrap_or(u64::MAX))
}

/// Bits one KV cache element of type `t` takes, block scales included.
fn kv_bits(t: KvType) -> f64 {
    match t {
        KvType::F32 => 32.0,
        KvType::F16 | KvType::Bf16 => 16.0,
        KvType::Q8_0 => 8.5,
        KvType::Q4_0 | KvType::Iq4Nl => 4.5,
        KvType::Q4_1 => 5.0,
        KvType::Q5_0 => 5.5,
        KvType::Q5_1 => 6.0,
    }
}

/// The least KV cache a context of `n_ctx` tokens of `g` takes: K and V of every layer at
/// their element types. A model with a sliding window keeps some layers' cache to the window,
/// and which layers is not in every file: each layer is counted at most at the window.
pub fn least_kv_bytes(g: &GgufFile, n_ctx: u64, type_k: KvType, type_v: KvType) -> u64 {
    let tokens = match g.arch_u64("attention.sliding_window") {
        Some(w) if w > 0 => n_ctx.min(w),
        _ => n_ctx,
    };
    let (layers, kv_heads, k_dim, v_dim) = kv_shape(g);
    let bits = k_dim as f64 * kv_bits(type_k) + v_dim as f64 * kv_bits(type_v);
    (tokens as f64 * layers as f64 * kv_heads as f64 * bits / 8.0) as u64
}

/// What a context of `s` takes besides the weights: its KV cache, and the compute buffer
/// llama.cpp reserves for one ubatch, which grows with the context. Per token of the ubatch:
/// the attention mask over the whole cache (f16 with flash attention, f32 without), held
/// through the graph, and the larger of the f32 logits and, without flash attention, every
/// head's f32 scores over the cache, which take turns in the same memory. Within 5 % of what
/// llama.cpp reserves for SmolLM2 at 32k tokens either way. `auto` counts as on: the CPU,
/// CUDA and Metal backends all have flash attention.
pub fn context_bytes(g: &GgufFile, s: &ContextSettings) -> u64 {
    let n_ctx = u64::from(s.n_ctx);
    let ubatch = u64::from(s.n_ubatch.min(s.n_batch)).min(n_ctx);
    let logits = g.n_tokens().saturating_mul(4);
    let heads = g.arch_u64("attention.head_count").unwrap_or(1);
    let (mask, scores) = match s.flash_attn {
        FlashAttn::Off => (4, heads.saturating_mul(4)),
        FlashAttn::On | FlashAttn::Auto => (2, 0),
    };
    let per_token = n_ctx
        .saturating_mul(mask)
        .saturating_add(n_ctx.saturating_mul(scores).max(logits));
    least_kv_bytes(g, n_ctx, s.type_k, s.type_v).saturating_add(ubatch.saturating_mul(per_token))
}

/// The memory a run on this machine can use: the RAM free now, and when layers are offloaded
/// (`offload`), the memory of every device llama.cpp sees besides the CPU.
pub fn machine_bytes(offload: bool) -> u64 {
    let ram = crate::hw::machine::available_memory();
    if !offload {
        return ram;
    }
    let devices = crate::engine::info::build_info().devices;
    let other: u64 = (devices.iter())
        .filter(|d| !d.backend.eq_ignore_ascii_case("cpu"))
        .map(|d| d.memory_total_bytes)
        .fold(0, u64::saturating_add);
    ram.saturating_add(other)
}

/// `Err` with a one-line reason when `need` bytes (`what`: what they are for) are more than
/// `limit`, the memory of this machine.
pub fn within(need: u64, limit: u64, what: &str) -> Result<(), String> {
    match need <= limit {
        true => Ok(()),
        false => Err(format!(
            "{what} needs at least {:.2} GiB, more than the {:.2} GiB of memory free on this machine",
            need as f64 / GIB,
            limit as f64 / GIB
        )),
    }
}

/// Layers, KV heads, and the elements of a head's key and value.
fn kv_shape(g: &GgufFile) -> (u64, u64, u64, u64) {
    let layers = g.arch_u64("block_count").unwrap_or(0);
    let embd = g.arch_u64("embedding_length").unwrap_or(0);
    let heads = g.arch_u64("attention.head_count").unwrap_or(1).max(1);
    let kv_heads = g.arch_u64("attention.head_count_kv").unwrap_or(heads);
    let k_dim = g.arch_u64("attention.key_length").unwrap_or(embd / heads);
    let v_dim = g.arch_u64("attention.value_length").unwrap_or(embd / heads);
    (layers, kv_heads, k_dim, v_dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{LoadOptions, Model, Session};
    use std::sync::Arc;

    /// The estimate against what llama.cpp reserves for SmolLM2's KV cache and compute
    /// buffer, with flash attention and without, at a context where the attention dominates.
    #[test]
    fn a_context_takes_what_llama_cpp_reserves_for_it() {
        let path = crate::util::test_model();
        let g = GgufFile::open(&path).unwrap();
        let opts = LoadOptions {
            n_gpu_layers: 0,
            use_mmap: true,
        };
        let model = Arc::new(Model::load(crate::engine::test_backend(), &path, opts).unwrap());
        for flash_attn in [FlashAttn::Auto, FlashAttn::Off] {
            let s = ContextSettings {
                n_ctx: 32768,
                n_batch: 2048,
                n_ubatch: 512,
                threads: 1,
                threads_batch: 1,
                flash_attn,
                type_k: KvType::F16,
                type_v: KvType::F16,
            };
            let m = Session::new(&model, &s).unwrap().memory().unwrap();
            let held = (m.kv_cache_bytes + m.compute_buffer_bytes) as f64;
            let estimate = context_bytes(&g, &s) as f64;
            assert!(
                (estimate / held - 1.0).abs() < 0.05,
                "{flash_attn:?}: estimated {estimate}, llama.cpp holds {held}"
            );
        }
    }
}
