//! A thin owning wrapper over a llama.cpp context and its batch, with greedy token choice:
//! an argmax over the logits on the host, or, where the output layer sits on a GPU, llama.cpp's
//! greedy sampler inside the graph ([`Context::set_seq_greedy_on_device`]), so that only the chosen
//! token, not the logits, comes back to the host.
//!
//! runner creates contexts through the C API (not llama-cpp-2's `LlamaContext`) because it
//! needs the raw context for what the safe crate does not expose: the memory breakdown and,
//! for profiling, the graph-evaluation callback. The lifetime ties a context to its model;
//! `Drop` frees everything.
//!
//! A context can carry a deadline ([`Context::set_deadline`]): llama.cpp's abort callback reads
//! it while it computes a graph, so a long prompt or a slow decode stops at the deadline
//! ([`ContextError::Aborted`]) instead of running to its end.

use super::deadline::{abort_callback, Deadline};
use super::memory::{self, MemoryUsage};
use super::model::Model;
use super::profile::{self, Profile, Profiler};
use super::sampler::Sampler;
use super::settings::ContextSettings;
use llama_cpp_sys_2 as sys;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ContextError {
    #[error("llama.cpp could not create a context (n_ctx {n_ctx}){}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Create { n_ctx: u32, reason: Option<String> },
    #[error("llama.cpp could not decode a batch of {n_tokens} tokens at position {pos} (code {code}){}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Decode {
        n_tokens: usize,
        pos: i32,
        code: i32,
        reason: Option<String>,
    },
    #[error("llama.cpp stopped decoding a batch of {n_tokens} tokens at position {pos}: the deadline passed")]
    Aborted { n_tokens: usize, pos: i32 },
    #[error("llama.cpp returned no logits for the last token")]
    NoLogits,
    #[error("{0} tokens do not fit in the context of {1}")]
    TooLong(usize, u32),
}

/// One token of a multi-sequence batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    pub token: i32,
    pub pos: i32,
    pub seq: i32,
    /// Ask for this token's logits.
    pub logits: bool,
}

/// What `llama_decode` returns when the abort callback stopped it.
const DECODE_ABORTED: i32 = 2;

/// A llama.cpp context bound to its model, with one reusable batch.
#[derive(Debug)]
pub struct Context {
    ptr: NonNull<sys::llama_context>,
    /// Read by llama.cpp's abort callback; dropped after the llama.cpp context.
    deadline: Deadline,
    /// Written by llama.cpp's graph-evaluation callback in a profiling context; dropped after
    /// the llama.cpp context.
    profiler: Option<Profiler>,
    vocab: *const sys::llama_vocab,
    n_vocab: i32,
    batch: sys::llama_batch,
    n_batch: u32,
    n_ubatch: u32,
    n_ctx: u32,
    /// Per sequence id, llama.cpp's greedy sampler attached to that sequence's graph while it
    /// chooses on the device; dropped after the llama.cpp context.
    device_greedy: Vec<Option<Sampler>>,
    /// Keeps the model alive as long as the llama.cpp context that uses it (dropped after it).
    model: Arc<Model>,
}

impl Context {
    /// A context for `n_seq` sequences decoded in the same batches, each with its own part of
    /// the KV cache (`n_ctx / n_seq` cells, as llama.cpp rounds it).
    pub fn new(
        model: &Arc<Model>,
        s: &ContextSettings,
        n_seq: u32,
    ) -> Result<Context, ContextError> {
        Context::create(model, s, None, n_seq.max(1))
    }

    /// A context with the same settings whose graph evaluation is observed node by node
    /// (`cb_eval`); [`Context::take_profile`] returns what was measured.
    pub fn profiled(model: &Arc<Model>, s: &ContextSettings) -> Result<Context, ContextError> {
        Context::create(model, s, Some(Profiler::default()), 1)
    }

    fn create(
        model: &Arc<Model>,
        s: &ContextSettings,
        profiler: Option<Profiler>,
        n_seq: u32,
    ) -> Result<Context, ContextError> {
        // SAFETY: returns a plain struct of defaults.
        let mut p = unsafe { sys::llama_context_default_params() };
        p.n_ctx = s.n_ctx;
        p.n_batch = s.n_batch;
        p.n_ubatch = s.n_ubatch;
        p.n_seq_max = n_seq;
        // Separate cells per sequence: each request attends to its own tokens only.
        p.kv_unified = false;
        p.n_threads = i32::try_from(s.threads).unwrap_or(i32::MAX);
        p.n_threads_batch = i32::try_from(s.threads_batch).unwrap_or(i32::MAX);
        p.flash_attn_type = s.flash_attn.llama();
        p.type_k = s.type_k.ggml();
        p.type_v = s.type_v.ggml();
        p.no_perf = true;
        let deadline = Deadline::default();
        p.abort_callback = Some(abort_callback);
        p.abort_callback_data = deadline.callback_data();
        if let Some(prof) = &profiler {
            p.cb_eval = Some(profile::eval_callback);
            p.cb_eval_user_data = prof.callback_data();
        }
        let raw = model.ptr();
        // SAFETY: `raw` is the live model; the context keeps an `Arc` of it, so the model
        // outlives the llama.cpp context.
        let ctx = unsafe { sys::llama_init_from_model(raw, p) };
        let ptr = NonNull::new(ctx).ok_or_else(|| ContextError::Create {
            n_ctx: s.n_ctx,
            reason: super::log::last_reason(),
        })?;
        // SAFETY: `raw` is a live model; the vocab it returns lives as long as the model.
        let vocab = unsafe { sys::llama_model_get_vocab(raw) };
        // SAFETY: the vocab belongs to the live model.
        let n_vocab = unsafe { sys::llama_vocab_n_tokens(vocab) };
        // llama.cpp may round the context up and clamps the batch to it: use what it chose.
        // SAFETY: `ctx` is the live context created above.
        let (n_ctx, n_batch, n_ubatch) = unsafe {
            (
                sys::llama_n_ctx(ctx),
                sys::llama_n_batch(ctx).max(1),
                sys::llama_n_ubatch(ctx),
            )
        };
        // SAFETY: allocates a token batch of n_batch entries for one sequence; freed in Drop.
        let batch = unsafe { sys::llama_batch_init(n_batch as i32, 0, 1) };
        Ok(Context {
            ptr,
            deadline,
            profiler,
            vocab,
            n_vocab,
            batch,
            n_batch,
            n_ubatch,
            n_ctx,
            device_greedy: (0..n_seq).map(|_| None).collect(),
            model: Arc::clone(model),
        })
    }

    /// Context size, logical and physical batch sizes as llama.cpp set them.
    pub fn sizes(&self) -> (u32, u32, u32) {
        (self.n_ctx, self.n_batch, self.n_ubatch)
    }

    /// Sets (or with `None` removes) the instant after which `decode` stops with
    /// [`ContextError::Aborted`], even in the middle of a batch.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline.set(deadline);
    }

    /// Whether the deadline set with [`Context::set_deadline`] has passed.
    pub fn deadline_passed(&self) -> bool {
        self.deadline.passed()
    }

    /// What the evaluation callback measured since the last call; `None` for a context made
    /// without one.
    pub fn take_profile(&mut self) -> Option<Profile> {
        self.profiler.as_ref().map(Profiler::take)
    }

    /// Empties the KV cache.
    pub fn clear(&mut self) {
        // SAFETY: the context is live; its memory handle is valid while it is.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ptr.as_ptr()), true) };
    }

    /// Decodes `tokens` at positions `pos0..`, in batches of at most `n_batch`, asking for
    /// logits of the last token only when `logits_last`.
    pub fn decode(
        &mut self,
        tokens: &[i32],
        pos0: i32,
        logits_last: bool,
    ) -> Result<(), ContextError> {
        let end = i64::from(pos0) + tokens.len() as i64;
        if end > i64::from(self.n_ctx) {
            return Err(ContextError::TooLong(end as usize, self.n_ctx));
        }
        let n_batch = self.n_batch as usize;
        for (c, chunk) in tokens.chunks(n_batch).enumerate() {
            let first = c * n_batch;
            for (j, &token) in chunk.iter().enumerate() {
                let entry = BatchEntry {
                    token,
                    pos: pos0 + (first + j) as i32,
                    seq: 0,
                    logits: logits_last && first + j + 1 == tokens.len(),
                };
                self.put(j, entry);
            }
            self.submit(chunk.len(), pos0 + first as i32)?;
        }
        Ok(())
    }

    /// Decodes one batch of tokens from any sequences (at most `n_batch` entries); the logits
    /// of entry `i`, when it asked for them, are then read with [`Context::logits_row`].
    pub fn decode_entries(&mut self, entries: &[BatchEntry]) -> Result<(), ContextError> {
        let n = entries.len().min(self.n_batch as usize);
        for (i, &e) in entries[..n].iter().enumerate() {
            self.put(i, e);
        }
        self.submit(n, entries.first().map_or(0, |e| e.pos))
    }

    /// Writes entry `i` of the batch; `i` must be below `n_batch`.
    fn put(&mut self, i: usize, e: BatchEntry) {
        debug_assert!(i < self.n_batch as usize);
        let b = &mut self.batch;
        // SAFETY: llama_batch_init allocated n_batch entries for each array and one sequence
        // id per entry; every caller passes i < n_batch.
        unsafe {
            *b.token.add(i) = e.token;
            *b.pos.add(i) = e.pos;
            *b.n_seq_id.add(i) = 1;
            *(*b.seq_id.add(i)) = e.seq;
            *b.logits.add(i) = i8::from(e.logits);
        }
    }

    /// Decodes the first `n` entries of the batch, written with [`Context::put`]; `pos` (the
    /// first entry's position) names the batch in an error.
    fn submit(&mut self, n: usize, pos: i32) -> Result<(), ContextError> {
        self.batch.n_tokens = n as i32;
        // SAFETY: the batch holds n <= n_batch entries written by `put`.
        let code = unsafe { sys::llama_decode(self.ptr.as_ptr(), self.batch) };
        match code {
            0 => Ok(()),
            DECODE_ABORTED => {
                // llama.cpp logged that it dropped the aborted batch from the cache: not a
                // reason for any later failure.
                let _ = super::log::last_reason();
                Err(ContextError::Aborted { n_tokens: n, pos })
            }
            code => Err(ContextError::Decode {
                n_tokens: n,
                pos,
                code,
                reason: super::log::last_reason(),
            }),
        }
    }

    /// Removes sequence `seq`'s tokens from the KV cache.
    pub fn clear_seq(&mut self, seq: i32) {
        // SAFETY: the context is live; its memory handle is valid while it is; -1, -1 is
        // the whole sequence.
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ptr.as_ptr()), seq, -1, -1) };
    }

    /// Waits for queued work on every backend to finish.
    pub fn synchronize(&mut self) {
        // SAFETY: the context is live.
        unsafe { sys::llama_synchronize(self.ptr.as_ptr()) };
    }

    /// Model, KV cache and compute buffer bytes of this context.
    pub fn memory(&self) -> Option<MemoryUsage> {
        memory::breakdown(self.ptr.as_ptr())
    }

    /// The model's beginning-of-sequence token, or 0 when it has none.
    pub fn bos(&self) -> i32 {
        // SAFETY: the vocab belongs to the live model.
        let bos = unsafe { sys::llama_vocab_bos(self.vocab) };
        bos.max(0)
    }

    /// Whether `token` ends generation (end of sequence or turn).
    pub fn is_eog(&self, token: i32) -> bool {
        // SAFETY: the vocab belongs to the live model.
        unsafe { sys::llama_vocab_is_eog(self.vocab, token) }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the batch and context were created in `create` and are freed exactly once.
        unsafe {
            sys::llama_batch_free(self.batch);
            sys::llama_free(self.ptr.as_ptr());
        }
    }
}

impl Context {
    /// The greedy token after entry `i` of the last batch (-1: the last output row, of
    /// sequence 0): the token the graph chose where its sequence chooses on the device, else
    /// the argmax of its logits (as llama.cpp's greedy sampler picks, without building its
    /// n_vocab-sized candidate array on every token). `None` when the entry made neither.
    pub(crate) fn greedy_at(&self, i: i32) -> Option<i32> {
        if self.on_device(self.seq_of(i)) {
            // SAFETY: the context is live; llama.cpp resolves `i` as it does for logits and
            // returns LLAMA_TOKEN_NULL (-1) when that entry chose no token.
            let token = unsafe { sys::llama_get_sampled_token_ith(self.ptr.as_ptr(), i) };
            return (token >= 0).then_some(token);
        }
        let row = self.logits_row(i)?;
        i32::try_from(argmax(row)).ok()
    }

    /// Whether the model's output layer sits on a GPU.
    pub fn output_on_gpu(&self) -> bool {
        self.model.output_on_gpu
    }

    /// Chooses the greedy tokens of sequence `seq` inside the graph (`on`), with llama.cpp's
    /// greedy sampler on the device that holds the output layer, or from the logits on the
    /// host. On the device, the decodes that follow copy the chosen token to the host, not the
    /// logits (the sequence's rows of [`Context::logits_row`] are then `None`). A change takes
    /// effect at the next decode, which re-plans the graph; the call returns whether the
    /// sequence chooses on the device.
    pub(crate) fn set_seq_greedy_on_device(&mut self, seq: i32, on: bool) -> bool {
        let ctx = self.ptr.as_ptr();
        let Some(slot) = usize::try_from(seq)
            .ok()
            .and_then(|s| self.device_greedy.get_mut(s))
        else {
            return false;
        };
        if on == slot.is_some() {
            return on;
        }
        if !on {
            // SAFETY: the context is live; a null sampler detaches the sequence's one.
            unsafe { sys::llama_set_sampler(ctx, seq, std::ptr::null_mut()) };
            *slot = None;
            return false;
        }
        let Ok(greedy) = Sampler::greedy() else {
            return false;
        };
        // SAFETY: the context and the chain are live; the context keeps the chain's pointer,
        // and `device_greedy` keeps the chain until it is detached or the context is freed.
        let attached = unsafe { sys::llama_set_sampler(ctx, seq, greedy.raw()) };
        if attached {
            *slot = Some(greedy);
        }
        attached
    }

    /// Whether any sequence chooses its greedy tokens on the device.
    pub fn greedy_on_device(&self) -> bool {
        self.device_greedy.iter().any(Option::is_some)
    }

    fn on_device(&self, seq: i32) -> bool {
        usize::try_from(seq)
            .ok()
            .and_then(|s| self.device_greedy.get(s))
            .is_some_and(Option::is_some)
    }

    /// The sequence of entry `i` of the last batch; -1 (the last output row) is sequence 0,
    /// the only one [`Context::decode`] fills.
    fn seq_of(&self, i: i32) -> i32 {
        match usize::try_from(i) {
            // SAFETY: llama_batch_init allocated n_batch entries with one sequence id each.
            Ok(i) if i < self.n_batch as usize => unsafe { *(*self.batch.seq_id.add(i)) },
            _ => 0,
        }
    }

    /// The logits of entry `i` of the last batch (-1: the last row), when it asked for them.
    /// For a sequence that chooses on the device the decode copied no logits: the buffer
    /// holds stale ones, and this is `None`.
    pub(crate) fn logits_row(&self, i: i32) -> Option<&[f32]> {
        if self.n_vocab <= 0 || self.on_device(self.seq_of(i)) {
            return None;
        }
        // SAFETY: the context is live; llama.cpp returns null for an entry of the last batch
        // that made no logits (or an index out of range) and logs it.
        let logits = unsafe { sys::llama_get_logits_ith(self.ptr.as_ptr(), i) };
        if logits.is_null() {
            return None;
        }
        // SAFETY: a non-null row holds n_vocab floats and stays valid until the next decode,
        // which needs `&mut self` and so cannot happen while the slice borrows `self`.
        Some(unsafe { std::slice::from_raw_parts(logits, self.n_vocab as usize) })
    }

    /// The raw context, for llama.cpp calls made by other wrappers in this module.
    pub(super) fn raw(&mut self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }
}

/// Index of the first largest value (NaNs are ignored). The maximum is found over 16
/// independent lanes, which the compiler vectorises, then its first position.
pub fn argmax(row: &[f32]) -> usize {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = m.max(x);
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    row.iter().position(|&x| x == max).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_finds_the_first_largest() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[]), 0);
        let mut v = vec![-1.0f32; 49_157];
        v[49_156] = 5.0;
        assert_eq!(argmax(&v), 49_156);
        v[17] = 5.0;
        assert_eq!(argmax(&v), 17, "ties go to the first");
        v[3] = f32::NAN;
        assert_eq!(argmax(&v), 17, "NaN is ignored");
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }
}
