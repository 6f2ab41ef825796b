//! Memory held by a llama.cpp context (weights, KV cache, compute buffers), via runner's shim.

use serde::{Deserialize, Serialize};

/// Memory of the run, for "will it fit?".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Largest resident set size of the process seen during the test.
    pub peak_rss_bytes: u64,
    /// Model weights held by llama.cpp's buffers.
    pub model_bytes: u64,
    /// KV cache (llama.cpp's context memory).
    pub kv_cache_bytes: u64,
    /// Compute (scratch) buffers.
    pub compute_buffer_bytes: u64,
}

/// The shim's `RunnerMemoryTotals` (vendor/runner_shim.cpp, which asserts the same size).
#[repr(C)]
#[derive(Debug, Default)]
struct RunnerMemoryTotals {
    model: u64,
    context: u64,
    compute: u64,
    n_buffer_types: u32,
}

const _: () = assert!(std::mem::size_of::<RunnerMemoryTotals>() == 32);

extern "C" {
    fn runner_memory_breakdown(
        ctx: *const llama_cpp_sys_2::llama_context,
        out: *mut RunnerMemoryTotals,
    ) -> i32;
}

/// Bytes of model weights, KV cache and compute buffers behind `ctx`, over all devices.
/// `None` when llama.cpp could not report them.
pub(crate) fn breakdown(ctx: *const llama_cpp_sys_2::llama_context) -> Option<MemoryUsage> {
    let mut totals = RunnerMemoryTotals::default();
    // SAFETY: callers pass a live llama_context (from `Context`); the shim only reads it and
    // writes the plain struct `totals`, which outlives the call.
    let rc = unsafe { runner_memory_breakdown(ctx, &mut totals) };
    (rc == 0 && totals.n_buffer_types > 0).then_some(MemoryUsage {
        peak_rss_bytes: 0,
        model_bytes: totals.model,
        kv_cache_bytes: totals.context,
        compute_buffer_bytes: totals.compute,
    })
}
