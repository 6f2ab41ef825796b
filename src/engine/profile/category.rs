//! Which op category a graph node belongs to, from the names llama.cpp's graph builder gives
//! tensors (`llama-graph.cpp`: `ffn_moe_logits-3`, `Qcur-0`, `attn_norm-7`, ...) and, where a
//! node has no telling name, from its ggml op and the names of its sources.

crate::util::names::named_enum! {
    /// An op category of the decode graph.
    pub enum Category {
        /// Q/K/V projections, RoPE, KV-cache stores, attention scores and mixing, output
        /// projection.
        Attention = "attention",
        /// A dense feed-forward block (and shared experts of an MoE layer).
        Ffn = "ffn",
        /// The router: gate-input matmul (`ffn_gate_inp`), softmax, argsort/top-k, expert
        /// weights and their normalisation.
        Router = "router",
        /// The expert matmuls (`MUL_MAT_ID`).
        Experts = "experts",
        /// Everything else an MoE layer does with the experts' results: activation, weighting
        /// by the router's weights, summing the selected experts.
        ExpertMix = "expert_mix",
        /// RMS/layer norms and their weight multiplications.
        Norm = "norm",
        /// The token-embedding lookup.
        Embedding = "embedding",
        /// The output head (logits matmul).
        Output = "output",
        /// Residual additions and anything not recognised.
        Other = "other",
    }
}

impl Category {
    /// Position in [`Category::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label used in tables.
    pub fn label(self) -> &'static str {
        match self {
            Category::Attention => "attention",
            Category::Ffn => "dense FFN",
            Category::Router => "router",
            Category::Experts => "experts (MUL_MAT_ID)",
            Category::ExpertMix => "expert mix",
            Category::Norm => "norms",
            Category::Embedding => "embeddings",
            Category::Output => "output head",
            Category::Other => "other",
        }
    }
}

/// A tensor name without ggml's derived-view suffixes (` (view)`, ` (permuted)`, ...) and
/// without llama.cpp's layer suffix (`-12`), with the layer if there was one. The names ggml
/// gives unnamed tensors (`node_12`, `leaf_3`) read as empty.
pub fn base_name(name: &str) -> (&str, Option<u32>) {
    let stem = name.split(" (").next().unwrap_or(name).trim();
    let generated = |prefix: &str| {
        stem.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if generated("node_") || generated("leaf_") {
        return ("", None);
    }
    // the KV cache of a layer: cache_k_l12
    if stem.starts_with("cache_") {
        if let Some((base, layer)) = stem.rsplit_once("_l") {
            if let Ok(l) = layer.parse() {
                return (base, Some(l));
            }
        }
    }
    match stem.rsplit_once('-') {
        Some((base, layer)) if !base.is_empty() && !layer.is_empty() => match layer.parse() {
            Ok(l) => (base, Some(l)),
            Err(_) => (stem, None),
        },
        _ => (stem, None),
    }
}

/// Base names the router produces in `build_moe_ffn`.
const ROUTER: &[&str] = &[
    "ffn_moe_logits",
    "ffn_moe_logits_biased",
    "ffn_moe_probs",
    "ffn_moe_probs_biased",
    "ffn_moe_probs_masked",
    "ffn_moe_group_topk",
    "ffn_moe_argsort",
    "ffn_moe_topk",
];

/// Base names of the expert matmuls in `build_moe_ffn` (views of them included).
const EXPERT_MATMULS: &[&str] = &[
    "ffn_moe_up",
    "ffn_moe_gate",
    "ffn_moe_down",
    "ffn_moe_gate_up",
];

/// Residual additions of a transformer block.
const RESIDUAL: &[&str] = &["ffn_inp", "l_out", "attn_residual", "ffn_residual"];

/// The category of a node named `name` computing ggml op `op` (as `ggml_op_name` spells it),
/// whose first two sources are named `srcs`. The node's own name decides when it is telling;
/// otherwise its op; otherwise the names of its sources.
pub fn categorize(name: &str, op: &str, srcs: [&str; 2]) -> Category {
    if op == "MUL_MAT_ID" {
        return Category::Experts;
    }
    let (base, layer) = base_name(name);
    if let Some(c) = by_name(base, layer, op) {
        return c;
    }
    if let Some(c) = by_op(op) {
        return c;
    }
    srcs.iter()
        .find_map(|s| {
            let (b, l) = base_name(s);
            by_name(b, l, "").filter(|&c| c != Category::Other)
        })
        .unwrap_or(Category::Other)
}

/// The category a base name says, if it says one.
fn by_name(base: &str, layer: Option<u32>, op: &str) -> Option<Category> {
    if base.is_empty() {
        return None;
    }
    if let Some(rest) = base.strip_prefix("ffn_moe_") {
        return Some(moe_by_name(base, rest));
    }
    if base.ends_with("norm") || base.contains("_norm") || base == "norm_w" {
        return Some(Category::Norm);
    }
    if base.starts_with("inp_mixed")
        || matches!(
            base,
            "inp_embd" | "inp_tokens" | "embd" | "token_embd.weight"
        )
    {
        return Some(Category::Embedding);
    }
    if base == "result_output" || base == "output.weight" {
        return Some(Category::Output);
    }
    if RESIDUAL.contains(&base) || (base == "ffn_out" && op == "ADD") {
        return Some(Category::Other);
    }
    if is_attention(base) {
        return Some(Category::Attention);
    }
    if base.starts_with("ffn_") {
        return Some(Category::Ffn);
    }
    // Inputs without a layer (positions, masks, output ids) are bookkeeping.
    if layer.is_none() && (base.starts_with("inp_") || base.starts_with("self_kq_mask")) {
        return Some(Category::Other);
    }
    None
}

fn moe_by_name(base: &str, rest: &str) -> Category {
    if ROUTER.contains(&base) || rest.starts_with("weights") {
        Category::Router
    } else if EXPERT_MATMULS.contains(&base) {
        Category::Experts
    } else {
        Category::ExpertMix
    }
}

fn is_attention(base: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Qcur", "Kcur", "Vcur", "kq", "kqv", "attn", "wqkv", "fattn", "__fattn", "v_cont",
        "cache_", "q_pe", "k_pe",
    ];
    PREFIXES.iter().any(|p| base.starts_with(p))
}

/// The category an op implies on its own, for unnamed nodes.
fn by_op(op: &str) -> Option<Category> {
    match op {
        "FLASH_ATTN_EXT" | "ROPE" | "SET_ROWS" => Some(Category::Attention),
        "RMS_NORM" | "NORM" | "GROUP_NORM" | "L2_NORM" => Some(Category::Norm),
        "ARGSORT" | "TOP_K" => Some(Category::Router),
        _ => None,
    }
}

/// Whether an op only reinterprets its source (no compute, no memory traffic on the CPU).
pub fn is_view_op(op: &str) -> bool {
    matches!(op, "VIEW" | "RESHAPE" | "PERMUTE" | "TRANSPOSE" | "NONE")
}

/// Whether a node named `name` holds the experts a router selected (`ffn_moe_topk-N`), and
/// for which layer.
pub fn selection_layer(name: &str) -> Option<u32> {
    match base_name(name) {
        ("ffn_moe_topk", Some(layer)) if !name.contains(" (") => Some(layer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Category::*;

    fn cat(name: &str, op: &str) -> Category {
        categorize(name, op, ["", ""])
    }

    /// Under `op` and with no sources, every one of `names` is `want`.
    fn all_are(want: Category, op: &str, names: &[&str]) {
        for n in names {
            assert_eq!(cat(n, op), want, "{n}");
        }
    }

    #[test]
    fn base_names_drop_view_and_layer_suffixes() {
        assert_eq!(base_name("ffn_moe_topk-12"), ("ffn_moe_topk", Some(12)));
        assert_eq!(base_name("Qcur-0 (reshaped)"), ("Qcur", Some(0)));
        assert_eq!(
            base_name("cache_k_l3 (view) (permuted)"),
            ("cache_k", Some(3))
        );
        assert_eq!(base_name("cache_v_l12"), ("cache_v", Some(12)));
        assert_eq!(base_name("result_output"), ("result_output", None));
        assert_eq!(base_name("a-b"), ("a-b", None));
        assert_eq!(base_name(""), ("", None));
        assert_eq!(base_name("-3"), ("-3", None));
        assert_eq!(
            base_name("node_27"),
            ("", None),
            "ggml's name for an unnamed node"
        );
        assert_eq!(base_name("leaf_3 (view)"), ("", None));
        assert_eq!(base_name("node_x"), ("node_x", None));
    }

    #[test]
    fn router_nodes_are_the_router() {
        all_are(
            Router,
            "SOFT_MAX",
            &[
                "ffn_moe_logits-0",
                "ffn_moe_probs-1",
                "ffn_moe_argsort-2",
                "ffn_moe_topk-3",
                "ffn_moe_weights-4",
                "ffn_moe_weights_sum-5",
                "ffn_moe_weights_sum_clamped-5",
                "ffn_moe_weights_norm-6",
                "ffn_moe_weights_scaled-6",
            ],
        );
        assert_eq!(cat("", "ARGSORT"), Router);
    }

    #[test]
    fn expert_nodes_split_into_matmuls_and_mix() {
        assert_eq!(cat("ffn_moe_up-3", "MUL_MAT_ID"), Experts);
        assert_eq!(cat("", "MUL_MAT_ID"), Experts, "the op decides on its own");
        assert_eq!(cat("ffn_moe_gate-3 (view)", "VIEW"), Experts);
        assert_eq!(cat("ffn_moe_swiglu-3", "GLU"), ExpertMix);
        assert_eq!(cat("ffn_moe_weighted-3", "MUL"), ExpertMix);
        assert_eq!(cat("ffn_moe_out-3", "ADD"), ExpertMix);
        // an unnamed add of two expert outputs (top-k > 2) follows its sources
        assert_eq!(
            categorize(
                "",
                "ADD",
                ["ffn_moe_weighted-3 (view)", "ffn_moe_weighted-3 (view)"]
            ),
            ExpertMix
        );
    }

    #[test]
    fn dense_blocks_norms_and_heads() {
        assert_eq!(cat("ffn_up-0", "MUL_MAT"), Ffn);
        assert_eq!(cat("ffn_gate_par-0", "MUL"), Ffn);
        assert_eq!(
            cat("ffn_out-0", "MUL_MAT"),
            Ffn,
            "llama names the down matmul ffn_out"
        );
        assert_eq!(cat("ffn_out-0", "ADD"), Other, "and the residual add too");
        assert_eq!(cat("ffn_up_shexp-2", "MUL_MAT"), Ffn);
        assert_eq!(cat("attn_norm-0", "MUL"), Norm);
        assert_eq!(cat("norm-0", "RMS_NORM"), Norm);
        assert_eq!(cat("result_norm", "MUL"), Norm);
        assert_eq!(cat("ffn_norm-4", "MUL"), Norm);
        assert_eq!(cat("inp_embd", "GET_ROWS"), Embedding);
        assert_eq!(cat("inp_mixed_embd (view)", "SET_ROWS"), Embedding);
        assert_eq!(categorize("node_2", "DUP", ["inp_embd", ""]), Embedding);
        assert_eq!(cat("result_output", "MUL_MAT"), Output);
        assert_eq!(cat("l_out-3", "ADD"), Other);
        assert_eq!(cat("inp_pos", "NONE"), Other);
    }

    #[test]
    fn attention_by_name_op_or_source() {
        all_are(
            Attention,
            "MUL_MAT",
            &[
                "Qcur-0",
                "Kcur-1 (view)",
                "kq-2",
                "kq_soft_max-2",
                "kqv_out-2",
                "attn_out-2",
            ],
        );
        assert_eq!(cat("cache_k_l0 (view)", "SET_ROWS"), Attention);
        assert_eq!(cat("", "FLASH_ATTN_EXT"), Attention);
        assert_eq!(cat("", "ROPE"), Attention);
        assert_eq!(categorize("", "CONT", ["kqv-4 (permuted)", ""]), Attention);
        assert_eq!(categorize("", "ADD", ["", ""]), Other);
        assert_eq!(
            categorize("", "GET_ROWS", ["attn_out-29", "inp_out_ids"]),
            Attention
        );
    }

    #[test]
    fn selection_nodes_name_their_layer() {
        assert_eq!(selection_layer("ffn_moe_topk-7"), Some(7));
        assert_eq!(selection_layer("ffn_moe_topk-7 (view)"), None);
        assert_eq!(selection_layer("ffn_moe_argsort-7"), None);
        assert_eq!(selection_layer("ffn_moe_topk"), None);
    }

    #[test]
    fn every_category_has_its_index() {
        for (i, c) in Category::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(!c.label().is_empty());
        }
    }
}
