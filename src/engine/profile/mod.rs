//! ggml's graph-evaluation callback (`cb_eval` of a context): times graph nodes, counts the
//! bytes they read and records the experts each MoE layer selected.
//!
//! The scheduler (`ggml_backend_sched_compute_splits`) asks the callback about each node of a
//! split (`ask = true`); it computes the nodes up to the first one the callback wants as one
//! range, waits for the backend, and calls again for that node (`ask = false`). This callback
//! wants every node that computes something (views, and alternatives llama.cpp did not select,
//! are skipped by the backend) and the router's selection (`ffn_moe_topk-N`, itself a view),
//! so a range is a run of nodes that compute nothing ending in one that does,
//! timed from the first question of the range to the second call. What a node reads is worked
//! out while it is asked, before the range's clock starts; the selected expert ids are read
//! with `ggml_backend_tensor_get` once the node is computed, which works on any backend.
//!
//! The callback runs on the thread that called `llama_decode`, never concurrently with the
//! rest of runner's use of the recorder, and never unwinds into C: it catches panics and then
//! answers as if it had not been there (no observation, computation goes on).

pub mod category;
mod selection;
mod totals;

pub use category::{categorize, Category};
use category::{is_view_op, selection_layer};
use llama_cpp_sys_2 as sys;
pub use selection::SelectionTrace;
use std::cell::RefCell;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;
#[cfg(test)]
pub(crate) use totals::node;
pub use totals::{GraphTotals, NodeCost, NodeRow, NodeTable};

/// What the callback collected since it was last taken.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub totals: GraphTotals,
    pub trace: SelectionTrace,
    /// Time per node name and op.
    pub nodes: NodeTable,
}

/// The recorder the callback writes into; owned by the context that registered it.
#[derive(Debug, Default)]
pub(super) struct Profiler {
    hook: Box<RefCell<Hook>>,
}

#[derive(Debug, Default)]
struct Hook {
    /// When the current range's first node was asked about.
    range_start: Option<Instant>,
    /// The nodes of the current range, as asked.
    costs: Vec<NodeCost>,
    profile: Profile,
    ids: Vec<i32>,
}

impl Profiler {
    /// The pointer to register as `cb_eval_user_data`, valid while `self` lives.
    pub(super) fn callback_data(&self) -> *mut c_void {
        std::ptr::from_ref::<RefCell<Hook>>(&self.hook)
            .cast_mut()
            .cast()
    }

    /// What was collected since the last call, and a fresh start. A range left open (its
    /// node never reported) is dropped.
    pub(super) fn take(&self) -> Profile {
        // The callback only borrows during llama_decode, which cannot run while `self` is
        // borrowed here; should it ever hold the borrow, nothing is taken.
        let Ok(mut hook) = self.hook.try_borrow_mut() else {
            return Profile::default();
        };
        hook.range_start = None;
        hook.costs.clear();
        std::mem::take(&mut hook.profile)
    }
}

/// The callback registered as `cb_eval`.
///
/// # Safety
///
/// `t` must be null or a live node of the graph being computed, and `data` null or the pointer
/// [`Profiler::callback_data`] returned, of a profiler that outlives every call.
pub(super) unsafe extern "C" fn eval_callback(
    t: *mut sys::ggml_tensor,
    ask: bool,
    data: *mut c_void,
) -> bool {
    // Without the recorder: observe nothing, and never stop the computation.
    let fallback = !ask;
    if t.is_null() || data.is_null() {
        return fallback;
    }
    // SAFETY: `data` comes from `Profiler::callback_data` of the profiler a `Context` owns; the
    // context frees its llama.cpp context (ending all calls) before dropping the profiler.
    let cell = unsafe { &*data.cast::<RefCell<Hook>>() };
    // SAFETY: ggml passes a node of the graph it is computing, alive during the call.
    let node = unsafe { &*t };
    catch_unwind(AssertUnwindSafe(|| {
        let Ok(mut hook) = cell.try_borrow_mut() else {
            return fallback;
        };
        if ask {
            hook.ask(node)
        } else {
            hook.done(node);
            true
        }
    }))
    .unwrap_or(fallback)
}

impl Hook {
    /// Notes a node of the current range; whether to observe it.
    fn ask(&mut self, t: &sys::ggml_tensor) -> bool {
        let op = op_name(t.op);
        let name = tensor_name(t);
        let computed = computes(t, op);
        let want = computed || selection_layer(name).is_some();
        self.costs.push(static_cost(t, name, op, computed));
        if self.range_start.is_none() {
            self.range_start = Some(Instant::now());
        }
        want
    }

    /// The observed node `t` (the last one asked) is computed: closes the range.
    fn done(&mut self, t: &sys::ggml_tensor) {
        let now = Instant::now();
        let Some(start) = self.range_start.take() else {
            self.costs.clear();
            return;
        };
        let op = op_name(t.op);
        if op == "MUL_MAT_ID" {
            let bytes = self.expert_bytes(t);
            if let (Some(last), Some(bytes)) = (self.costs.last_mut(), bytes) {
                last.weight_bytes = bytes;
            }
        }
        if let Some(layer) = selection_layer(tensor_name(t)) {
            self.record_selection(t, layer);
        }
        let elapsed = now - start;
        if let Some(last) = self.costs.last() {
            // the views before the node cost nothing: the range's time is the node's
            self.profile
                .nodes
                .add(tensor_name(t), op, last.category, elapsed);
        }
        self.profile.totals.add_range(&self.costs, elapsed);
        self.costs.clear();
    }

    /// Bytes of the experts a `MUL_MAT_ID` node read: one expert's slice of its weights for
    /// each distinct expert id in its ids (its third source).
    fn expert_bytes(&mut self, t: &sys::ggml_tensor) -> Option<u64> {
        // SAFETY: the sources of a computed graph node are live tensors of the same graph.
        let (w, ids) = unsafe { (t.src[0].as_ref()?, t.src[2].as_ref()?) };
        if !is_weights(w) {
            return None;
        }
        let n_expert = usize::try_from(w.ne[2]).ok()?;
        read_ids(ids, &mut self.ids)?;
        let mut seen = vec![false; n_expert];
        for &id in &self.ids {
            if let Some(s) = usize::try_from(id).ok().and_then(|i| seen.get_mut(i)) {
                *s = true;
            }
        }
        let distinct = seen.iter().filter(|&&s| s).count() as u64;
        Some(distinct * w.nb[2] as u64)
    }

    /// Adds the expert ids the router of `layer` selected (`t` is `ffn_moe_topk-N`, a view
    /// of the argsort of the router's probabilities over all experts).
    fn record_selection(&mut self, t: &sys::ggml_tensor, layer: u32) {
        // SAFETY: a view's source is a live tensor of the same graph.
        let Some(sorted) = (unsafe { t.view_src.as_ref() }) else {
            return;
        };
        let (Ok(k), Ok(n_expert)) = (usize::try_from(t.ne[0]), u32::try_from(sorted.ne[0])) else {
            return;
        };
        if read_ids(t, &mut self.ids).is_some() {
            self.profile.trace.push(layer, k, &self.ids, n_expert);
        }
    }
}

/// Reads an i32 tensor of up to two dimensions (`[k, tokens]`, any strides) into `out`, row
/// after row, from whatever backend holds it.
fn read_ids(t: &sys::ggml_tensor, out: &mut Vec<i32>) -> Option<()> {
    out.clear();
    let plain = t.type_ == sys::GGML_TYPE_I32 && t.ne[2] == 1 && t.ne[3] == 1;
    if !plain || t.data.is_null() || buffer(t).is_null() {
        return None;
    }
    let (n0, n1) = (
        usize::try_from(t.ne[0]).ok()?,
        usize::try_from(t.ne[1]).ok()?,
    );
    // SAFETY: `t` is a live, allocated tensor (buffer and data checked above).
    let size = unsafe { sys::ggml_nbytes(t) };
    let mut raw = vec![0u8; size];
    // SAFETY: reads `size` = ggml_nbytes(t) bytes from offset 0 of the tensor into a buffer of
    // that size; ggml checks the same bounds.
    unsafe { sys::ggml_backend_tensor_get(t, raw.as_mut_ptr().cast(), 0, size) };
    for i1 in 0..n1 {
        for i0 in 0..n0 {
            let at = i1 * t.nb[1] + i0 * t.nb[0];
            let bytes: [u8; 4] = raw.get(at..at + 4)?.try_into().ok()?;
            out.push(i32::from_ne_bytes(bytes));
        }
    }
    Some(())
}

/// What a node reads, known before it runs. A `MUL_MAT_ID` is counted as reading the slices of
/// every expert its ids could name until its ids are read ([`Hook::expert_bytes`]).
fn static_cost(t: &sys::ggml_tensor, name: &str, op: &str, computed: bool) -> NodeCost {
    let src_name = |i: usize| {
        // SAFETY: a node's sources are live tensors of the same graph (or null).
        unsafe { t.src[i].as_ref() }.map_or("", |s| tensor_name(root(s)))
    };
    let category = categorize(name, op, [src_name(0), src_name(1)]);
    let mut cost = NodeCost {
        category,
        weight_bytes: 0,
        kv_bytes: 0,
        work: 0,
    };
    if !computed {
        return cost;
    }
    cost.work = nbytes(t);
    // SAFETY: as above.
    for (i, src) in t
        .src
        .iter()
        .filter_map(|s| unsafe { s.as_ref() })
        .enumerate()
    {
        let bytes = nbytes(src);
        cost.work += bytes;
        if is_weights(src) {
            cost.weight_bytes += match (op, i) {
                ("GET_ROWS", 0) => rows(t) * src.nb[1] as u64,
                _ => bytes,
            };
        } else if is_kv(src) && op != "SET_ROWS" && op != "CPY" {
            cost.kv_bytes += bytes;
        }
    }
    cost
}

/// Whether a node computes anything: not a view, and marked for computation (llama.cpp
/// builds alternatives of which only the selected one is computed).
fn computes(t: &sys::ggml_tensor, op: &str) -> bool {
    !is_view_op(op) && t.flags & sys::GGML_TENSOR_FLAG_COMPUTE as i32 != 0
}

/// Rows of a tensor (all dimensions but the first).
fn rows(t: &sys::ggml_tensor) -> u64 {
    t.ne[1..]
        .iter()
        .map(|&n| u64::try_from(n).unwrap_or(0))
        .product()
}

fn nbytes(t: &sys::ggml_tensor) -> u64 {
    // SAFETY: `t` is a live tensor; ggml_nbytes only reads its shape.
    unsafe { sys::ggml_nbytes(t) as u64 }
}

/// The tensor a view (of a view...) looks into, or the tensor itself.
fn root(t: &sys::ggml_tensor) -> &sys::ggml_tensor {
    // SAFETY: ggml collapses view chains: view_src is null or a live non-view tensor.
    unsafe { t.view_src.as_ref() }.unwrap_or(t)
}

fn buffer(t: &sys::ggml_tensor) -> sys::ggml_backend_buffer_t {
    if t.buffer.is_null() {
        root(t).buffer
    } else {
        t.buffer
    }
}

/// Whether a tensor lies in a buffer of model weights.
fn is_weights(t: &sys::ggml_tensor) -> bool {
    let buf = buffer(t);
    // SAFETY: a non-null buffer of a live tensor is a live backend buffer.
    !buf.is_null()
        && unsafe { sys::ggml_backend_buffer_get_usage(buf) }
            == sys::GGML_BACKEND_BUFFER_USAGE_WEIGHTS
}

/// Whether a tensor is (a view of) llama.cpp's KV cache (`cache_k_l0`, `cache_v_l0`, ...).
fn is_kv(t: &sys::ggml_tensor) -> bool {
    tensor_name(root(t)).starts_with("cache_")
}

/// ggml's `GGML_MAX_NAME`: `tensor_name` reads a name as a byte array of this length, and
/// fails to compile should the bound `ggml_tensor::name` have another.
const NAME_LEN: usize = 64;
const _: () = assert!(std::mem::size_of::<std::ffi::c_char>() == 1);

/// A tensor's name ("" when it is not UTF-8).
fn tensor_name(t: &sys::ggml_tensor) -> &str {
    // SAFETY: `name` is an array of NAME_LEN c_char (the typed binding below fails to compile
    // otherwise), and c_char and u8 share size and alignment: reinterpreting it as bytes is
    // sound.
    let name: &[std::ffi::c_char; NAME_LEN] = &t.name;
    let bytes: &[u8; NAME_LEN] = unsafe { &*std::ptr::from_ref(name).cast::<[u8; NAME_LEN]>() };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end]).unwrap_or("")
}

/// ggml's name of an op, e.g. `MUL_MAT`.
fn op_name(op: sys::ggml_op) -> &'static str {
    // SAFETY: ggml_op_name returns a static NUL-terminated string for every op value (and
    // reads past no table for values of the enum).
    let p = unsafe { sys::ggml_op_name(op) };
    if p.is_null() {
        return "";
    }
    // SAFETY: non-null, static and NUL-terminated.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A detached tensor of 4 f32 values: no buffer, no data.
    fn tensor(name: &str, op: sys::ggml_op, computed: bool) -> sys::ggml_tensor {
        // SAFETY: ggml_tensor is a plain C struct for which all-zero bytes are valid (null
        // pointers, GGML_TYPE_F32, GGML_OP_NONE).
        let mut t: sys::ggml_tensor = unsafe { std::mem::zeroed() };
        t.ne = [4, 1, 1, 1];
        t.nb = [4, 16, 16, 16];
        t.op = op;
        t.flags = if computed {
            sys::GGML_TENSOR_FLAG_COMPUTE as i32
        } else {
            0
        };
        for (dst, &b) in t.name.iter_mut().zip(name.as_bytes()) {
            *dst = b as std::ffi::c_char;
        }
        t
    }

    fn call(t: &mut sys::ggml_tensor, ask: bool, p: &Profiler) -> bool {
        // SAFETY: `t` is a valid tensor and the data pointer is `p`'s own, both alive here.
        unsafe { eval_callback(t, ask, p.callback_data()) }
    }

    #[test]
    fn ranges_follow_the_schedulers_questions() {
        let p = Profiler::default();
        let mut view = tensor("Qcur-0 (view)", sys::GGML_OP_VIEW, true);
        let mut skipped = tensor("", sys::GGML_OP_DUP, false);
        let mut mm = tensor("ffn_up-0", sys::GGML_OP_MUL_MAT, true);
        let mut src = tensor("attn_norm-0", sys::GGML_OP_MUL, true);
        mm.src[0] = &mut src;
        assert!(!call(&mut view, true, &p), "a view is not observed");
        assert!(
            !call(&mut skipped, true, &p),
            "nor a node that is not computed"
        );
        assert!(call(&mut mm, true, &p), "a computing node is");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(call(&mut mm, false, &p), "the computation goes on");
        let got = p.take();
        let t = &got.totals;
        assert!(t.node_time >= std::time::Duration::from_millis(2));
        let ffn = t.categories[Category::Ffn.index()];
        assert_eq!(ffn.nodes, 1);
        assert_eq!(
            ffn.time, t.node_time,
            "views and skipped nodes take no time"
        );
        assert_eq!(t.categories[Category::Attention.index()].nodes, 1);
        assert_eq!(t.weight_bytes(), 0, "no source lies in a weights buffer");
        let empty = GraphTotals::default();
        assert_eq!(p.take().totals, empty, "taking starts afresh");
        // a report without an open range is ignored
        assert!(call(&mut mm, false, &p));
        assert_eq!(p.take().totals, empty);
    }

    #[test]
    fn without_a_recorder_nothing_is_observed_and_nothing_stops() {
        let mut t = tensor("ffn_up-0", sys::GGML_OP_MUL_MAT, true);
        // SAFETY: a null data pointer and a null tensor are answered without dereferencing.
        unsafe {
            assert!(!eval_callback(&mut t, true, std::ptr::null_mut()));
            assert!(eval_callback(&mut t, false, std::ptr::null_mut()));
            let p = Profiler::default();
            assert!(!eval_callback(
                std::ptr::null_mut(),
                true,
                p.callback_data()
            ));
        }
    }

    #[test]
    fn names_and_ops_read_from_tensors() {
        let t = tensor("ffn_moe_topk-3", sys::GGML_OP_VIEW, true);
        assert_eq!(tensor_name(&t), "ffn_moe_topk-3");
        assert_eq!(op_name(sys::GGML_OP_MUL_MAT_ID), "MUL_MAT_ID");
        assert_eq!(nbytes(&t), 16);
        assert!(!computes(&t, op_name(t.op)));
        let mut ids = Vec::new();
        assert!(read_ids(&t, &mut ids).is_none(), "no data to read");
    }
}
