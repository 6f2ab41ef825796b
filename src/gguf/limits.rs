//! llama.cpp's limits on a model's shape, checked with the header: past them its loader
//! aborts the process (`GGML_ASSERT` in `llama_model::load_hparams`) instead of refusing, as it
//! does on a RoPE scaling type it does not know. So does its first decode on a norm epsilon
//! that is negative or NaN (`GGML_ASSERT(eps >= 0.0f)` in ggml's norm ops). (Asserts of one
//! architecture's own loader are not checked here: the engine turns those into one line of
//! error and exit status 1.)

use super::{GgmlType, GgufFile, MetaValue};

/// `LLAMA_MAX_LAYERS` in llama.cpp's src/llama-hparams.h.
pub const MAX_LAYERS: u32 = 512;
/// `LLAMA_MAX_EXPERTS` in llama.cpp's src/llama-hparams.h.
pub const MAX_EXPERTS: u32 = 1024;
/// `LLAMA_ROPE_SCALING_TYPES` in llama.cpp's src/llama-model.cpp.
const ROPE_SCALING_TYPES: [&str; 4] = ["none", "linear", "yarn", "longrope"];

/// Why the architecture's layer, expert or expert-group counts are beyond what llama.cpp
/// loads: the checks its loader asserts, in its order. Absent keys count as 0, as llama.cpp
/// reads them; values of the wrong type pass (llama.cpp refuses those itself, cleanly).
pub(super) fn check(g: &GgufFile) -> Result<(), String> {
    tensor_types(g)?;
    let Some(arch) = g.architecture() else {
        return Ok(());
    };
    epsilons(g, arch)?;
    dummy_vocab(g, arch)?;
    let key = |k: &str| g.arch_u64(k).unwrap_or(0);
    if let Some(n) = g.arch_u64("block_count") {
        if n == 0 || n > u64::from(MAX_LAYERS) {
            return Err(format!(
                "{arch}.block_count is {n}; llama.cpp loads 1 to {MAX_LAYERS} layers"
            ));
        }
        // nextn for every architecture, the last two for wavtokenizer's decoder.
        for part in [
            "nextn_predict_layers",
            "posnet.block_count",
            "convnext.block_count",
        ] {
            let m = key(part);
            if m > n && (part.starts_with("nextn") || arch == "wavtokenizer-dec") {
                return Err(format!(
                    "{arch}.{part} {m} is more than its block_count {n}"
                ));
            }
        }
    }
    head_counts(g, arch)?;
    if let Some(MetaValue::Str(t)) = g.arch_get("rope.scaling.type") {
        if !ROPE_SCALING_TYPES.contains(&t.as_str()) {
            return Err(format!(
                "{arch}.rope.scaling.type is {t:?}; llama.cpp knows {}",
                ROPE_SCALING_TYPES.join(", ")
            ));
        }
    }
    let mut experts = key("expert_count");
    // One count for every layer, or one per layer.
    let mut used = g.arch_get("expert_used_count").map_or(0, |v| match v {
        MetaValue::Array(a) => a
            .head
            .iter()
            .filter_map(MetaValue::as_u64)
            .max()
            .unwrap_or(0),
        v => v.as_u64().unwrap_or(0),
    });
    // These architectures' loaders treat one expert as none.
    if matches!(arch, "hunyuan-dense" | "hunyuan_vl") && experts <= 1 {
        (experts, used) = (0, 0);
    }
    let (groups, groups_used) = (key("expert_group_count"), key("expert_group_used_count"));
    let bad = |what: String| Err(format!("{arch}.{what}"));
    if experts > u64::from(MAX_EXPERTS) {
        return bad(format!(
            "expert_count is {experts}; llama.cpp loads at most {MAX_EXPERTS} experts"
        ));
    }
    if used > experts {
        return bad(format!(
            "expert_used_count {used} is more than its expert_count {experts}"
        ));
    }
    match experts {
        0 if groups > 0 => bad(format!("expert_group_count is {groups} without experts")),
        0 => Ok(()),
        _ if used == 0 => bad(format!("expert_used_count is 0 with {experts} experts")),
        _ if groups >= experts => bad(format!(
            "expert_group_count {groups} is not less than its expert_count {experts}"
        )),
        _ if groups > 1 && experts % groups != 0 => bad(format!(
            "expert_count {experts} is not a multiple of its expert_group_count {groups}"
        )),
        _ if groups > 1 && !(1..groups).contains(&groups_used) => bad(format!(
            "expert_group_used_count is {groups_used}; with {groups} groups llama.cpp needs 1 to {}",
            groups - 1
        )),
        _ => Ok(()),
    }
}

/// Tensor types ggml stores but has no CPU kernels for as a model's tensor: `Q8_1` and `Q8_K`
/// only hold activations (no dot product), and ggml converts no integers or f64; a
/// multiplication with one crashes the process, a lookup aborts it.
const NOT_WEIGHTS: [GgmlType; 7] = [
    GgmlType::Q8_1,
    GgmlType::Q8_K,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
    GgmlType::F64,
];

/// The one tensor a supported architecture keeps in I32: DeepSeek-V4's table of expert ids
/// (`blk.N.ffn_gate_tid2eid`), only ever looked up.
const I32_TABLES: &str = "tid2eid";

fn tensor_types(g: &GgufFile) -> Result<(), String> {
    let table =
        |t: &&crate::gguf::TensorInfo| t.ggml_type == GgmlType::I32 && t.name.contains(I32_TABLES);
    let bad = g.tensors.iter().filter(|t| !table(t));
    match bad.into_iter().find(|t| NOT_WEIGHTS.contains(&t.ggml_type)) {
        Some(t) => Err(format!(
            "tensor '{}' is of type {}, which llama.cpp cannot compute with",
            t.name,
            t.ggml_type.as_str()
        )),
        None => Ok(()),
    }
}

/// The most tokens a vocabulary without strings may claim when no embedding table says how
/// many it has: more than any model's.
const MAX_DUMMY_TOKENS: u64 = 1 << 24;

/// A model without a tokenizer (`tokenizer.ggml.model` "none" or "no_vocab") gets
/// `<arch>.vocab_size` placeholder tokens from llama.cpp, tens of bytes each, before its
/// tensors are checked: that count must be the token embedding's rows.
fn dummy_vocab(g: &GgufFile, arch: &str) -> Result<(), String> {
    if !matches!(g.get_str("tokenizer.ggml.model"), Some("none" | "no_vocab")) {
        return Ok(());
    }
    let Some(n) = g.arch_u64("vocab_size") else {
        return Ok(());
    };
    let rows = g
        .tensor("token_embd.weight")
        .and_then(|t| t.dims.get(1).copied());
    match rows {
        Some(rows) if rows != n => Err(format!(
            "{arch}.vocab_size is {n} but token_embd.weight has {rows} rows"
        )),
        None if n > MAX_DUMMY_TOKENS => Err(format!(
            "{arch}.vocab_size is {n}; no vocabulary has more than {MAX_DUMMY_TOKENS} tokens"
        )),
        _ => Ok(()),
    }
}

/// Grouped-query attention shares each K/V head among `head_count / head_count_kv` query
/// heads: ggml's attention asserts that they divide when the context builds its graph. Layers without
/// attention (a count of 0) and values of other types pass.
fn head_counts(g: &GgufFile, arch: &str) -> Result<(), String> {
    let is_array = |k| matches!(g.arch_get(k), Some(MetaValue::Array(_)));
    let (heads, kv) = ("attention.head_count", "attention.head_count_kv");
    // block_count was checked to be at most MAX_LAYERS before.
    let layers = if is_array(heads) || is_array(kv) {
        g.arch_u64("block_count")
            .unwrap_or(0)
            .min(u64::from(MAX_LAYERS))
    } else {
        1
    };
    for il in 0..layers {
        let (Some(h), Some(k)) = (g.arch_per_layer(heads, il), g.arch_per_layer(kv, il)) else {
            continue;
        };
        if h > 0 && k > 0 && h % k != 0 {
            let layer = if layers > 1 {
                format!(" in layer {il}")
            } else {
                String::new()
            };
            return Err(format!(
                "{arch}.{heads} {h} is not a multiple of its head_count_kv {k}{layer}; \
                 llama.cpp's attention shares each K/V head among whole query heads"
            ));
        }
    }
    Ok(())
}

/// Every `<arch>.…epsilon` (`attention.layer_norm_rms_epsilon`, `attention.layer_norm_epsilon`,
/// ...) must be 0 or more: ggml's norms assert it. Values of another type than f32 pass
/// (llama.cpp refuses those itself, cleanly).
fn epsilons(g: &GgufFile, arch: &str) -> Result<(), String> {
    let prefix = format!("{arch}.");
    let bad = g.metadata.iter().find_map(|(k, v)| match v {
        MetaValue::F32(x)
            if k.starts_with(&prefix) && k.ends_with("epsilon") && (x.is_nan() || *x < 0.0) =>
        {
            Some((k, x))
        }
        _ => None,
    });
    match bad {
        Some((k, x)) => Err(format!(
            "{k} is {x}; llama.cpp's norms need an epsilon of 0 or more"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{ArrayValue, GgufError, GgufWriter, ValueType};
    use std::io::Cursor;
    use std::path::Path;

    /// A llama header with `entries` (no tensors), parsed back.
    fn parse(entries: &[(&str, MetaValue)]) -> Result<GgufFile, GgufError> {
        let mut w = GgufWriter::new();
        w.set("general.architecture", &MetaValue::Str("llama".into()))
            .unwrap();
        for (k, v) in entries {
            w.set(k, v).unwrap();
        }
        let mut bytes = Vec::new();
        w.write_to(&mut bytes, None).unwrap();
        GgufFile::from_reader(Cursor::new(&bytes), bytes.len() as u64, Path::new("m.gguf"))
    }

    fn refused(entries: &[(&str, MetaValue)]) -> String {
        match parse(entries) {
            Err(e @ GgufError::Invalid { .. }) => e.to_string(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn layer_counts_beyond_llama_cpp_are_refused() {
        assert!(parse(&[("llama.block_count", MetaValue::U32(512))]).is_ok());
        assert_eq!(
            refused(&[("llama.block_count", MetaValue::U32(100_000))]),
            "m.gguf: invalid GGUF file: llama.block_count is 100000; llama.cpp loads 1 to 512 \
             layers"
        );
        assert!(refused(&[("llama.block_count", MetaValue::U64(0))]).contains("is 0"));
        // Absent, or of a type llama.cpp refuses itself: not this check's business.
        assert!(parse(&[]).is_ok());
        assert!(parse(&[("llama.block_count", MetaValue::I32(-1))]).is_ok());
    }

    #[test]
    fn rope_scaling_types_and_decoder_layer_counts_llama_cpp_asserts_on_are_refused() {
        let rope = |t: &str| ("llama.rope.scaling.type", MetaValue::Str(t.into()));
        for t in ["none", "linear", "yarn", "longrope"] {
            assert!(parse(&[rope(t)]).is_ok(), "{t}");
        }
        assert_eq!(
            refused(&[rope("bogus")]),
            "m.gguf: invalid GGUF file: llama.rope.scaling.type is \"bogus\"; llama.cpp knows \
             none, linear, yarn, longrope"
        );
        // Of another type: llama.cpp refuses it itself.
        assert!(parse(&[("llama.rope.scaling.type", MetaValue::U32(1))]).is_ok());
        fn wav(k: &str, n: u32) -> (&str, MetaValue) {
            (k, MetaValue::U32(n))
        }
        let arch = (
            "general.architecture",
            MetaValue::Str("wavtokenizer-dec".into()),
        );
        let blocks = wav("wavtokenizer-dec.block_count", 12);
        for part in ["posnet", "convnext"] {
            let key = format!("wavtokenizer-dec.{part}.block_count");
            assert!(parse(&[arch.clone(), blocks.clone(), wav(&key, 12)]).is_ok());
            assert!(refused(&[arch.clone(), blocks.clone(), wav(&key, 13)])
                .ends_with(&format!("{key} 13 is more than its block_count 12")));
        }
        // Those keys mean nothing to other architectures' loaders.
        let blocks = wav("llama.block_count", 2);
        assert!(parse(&[blocks, wav("llama.posnet.block_count", 9)]).is_ok());
    }

    /// A llama header with `entries` and the tensors `(name, dims, type)`, parsed back.
    fn with_tensors(
        entries: &[(&str, MetaValue)],
        tensors: &[(&str, &[u64], GgmlType)],
    ) -> Result<GgufFile, GgufError> {
        use crate::gguf::TensorData;
        let mut w = GgufWriter::new();
        w.set("general.architecture", &MetaValue::Str("llama".into()))
            .unwrap();
        for (k, v) in entries {
            w.set(k, v).unwrap();
        }
        for (name, dims, t) in tensors {
            let n: u64 = dims.iter().product::<u64>() / t.block_size() * t.type_size();
            let data = TensorData::Bytes(vec![0; n as usize]);
            w.add_tensor(name, dims, *t, data).unwrap();
        }
        let mut bytes = Vec::new();
        w.write_to(&mut bytes, None).unwrap();
        GgufFile::from_reader(Cursor::new(&bytes), bytes.len() as u64, Path::new("m.gguf"))
    }

    #[test]
    fn tensors_of_types_llama_cpp_cannot_compute_with_are_refused() {
        let ok = [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_K];
        for t in ok {
            assert!(with_tensors(&[], &[("blk.0.ffn_up.weight", &[256, 2], t)]).is_ok());
        }
        // DeepSeek-V4's expert-id table is I32, and read as such.
        let table = (
            "blk.0.ffn_gate_tid2eid.weight",
            &[8u64, 2][..],
            GgmlType::I32,
        );
        assert!(with_tensors(&[], &[table]).is_ok());
        for t in NOT_WEIGHTS {
            let e = with_tensors(&[], &[("blk.0.ffn_up.weight", &[256, 2], t)]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "m.gguf: invalid GGUF file: tensor 'blk.0.ffn_up.weight' is of type {}, \
                     which llama.cpp cannot compute with",
                    t.as_str()
                )
            );
        }
    }

    #[test]
    fn a_vocabulary_without_strings_must_be_as_long_as_the_embedding() {
        let none = ("tokenizer.ggml.model", MetaValue::Str("none".into()));
        let size = |n| ("llama.vocab_size", MetaValue::U32(n));
        let embd: &[(&str, &[u64], GgmlType)] = &[("token_embd.weight", &[8, 100], GgmlType::F32)];
        assert!(with_tensors(&[none.clone(), size(100)], embd).is_ok());
        let e = with_tensors(&[none.clone(), size(1 << 26)], embd).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("llama.vocab_size is 67108864 but token_embd.weight has 100 rows"),
            "{e}"
        );
        // Without an embedding table, only a count past any vocabulary is refused.
        assert!(with_tensors(&[none.clone(), size(1 << 20)], &[]).is_ok());
        assert!(with_tensors(&[none, size(1 << 26)], &[]).is_err());
        // With a tokenizer, llama.cpp counts its strings instead.
        let gpt2 = ("tokenizer.ggml.model", MetaValue::Str("gpt2".into()));
        assert!(with_tensors(&[gpt2, size(1 << 26)], embd).is_ok());
    }

    #[test]
    fn query_heads_that_are_not_a_multiple_of_the_kv_heads_are_refused() {
        let h = |n| ("llama.attention.head_count", MetaValue::U32(n));
        let kv = |n| ("llama.attention.head_count_kv", MetaValue::U32(n));
        assert!(parse(&[h(32), kv(8)]).is_ok());
        assert!(parse(&[h(9), kv(3)]).is_ok());
        assert!(parse(&[h(9)]).is_ok());
        assert_eq!(
            refused(&[h(9), kv(4)]),
            "m.gguf: invalid GGUF file: llama.attention.head_count 9 is not a multiple of its \
             head_count_kv 4; llama.cpp's attention shares each K/V head among whole query heads"
        );
        assert!(refused(&[h(4), kv(8)]).contains("head_count 4 is not a multiple"));
        // Per layer: a recurrent layer's 0 passes; the bad layer is named.
        let array = |v: &[u32]| {
            MetaValue::Array(ArrayValue {
                elem_type: ValueType::U32,
                len: v.len() as u64,
                head: v.iter().map(|&x| MetaValue::U32(x)).collect(),
            })
        };
        let blocks = ("llama.block_count", MetaValue::U32(3));
        let kvs = |v| ("llama.attention.head_count_kv", array(v));
        assert!(parse(&[blocks.clone(), h(12), kvs(&[0, 4, 6])]).is_ok());
        let e = refused(&[blocks, h(12), kvs(&[0, 4, 5])]);
        assert!(
            e.contains("head_count 12 is not a multiple of its head_count_kv 5 in layer 2"),
            "{e}"
        );
        // A real model's depth: the last of 40 layers is checked too.
        let mut forty = vec![4u32; 40];
        forty[39] = 5;
        let blocks = ("llama.block_count", MetaValue::U32(40));
        let e = refused(&[blocks.clone(), h(12), kvs(&forty)]);
        assert!(e.contains("head_count_kv 5 in layer 39"), "{e}");
        // Numbers are held up to a value per layer of the deepest model, no further: a longer
        // array is not read per layer.
        let g = parse(&[kvs(&[4; 600])]).unwrap();
        let Some(MetaValue::Array(a)) = g.arch_get("attention.head_count_kv") else {
            panic!("no array")
        };
        assert_eq!((a.len, a.head.len()), (600, 512));
        assert_eq!(g.arch_per_layer("attention.head_count_kv", 0), None);
        // A layer count past llama.cpp's is refused as such, not walked.
        let huge = ("llama.block_count", MetaValue::U64(1 << 40));
        assert!(refused(&[huge, h(12), kvs(&forty)]).contains("llama.cpp loads 1 to 512 layers"));
    }

    #[test]
    fn negative_or_nan_norm_epsilons_are_refused() {
        let rms = |x| ("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(x));
        let plain = |x| ("llama.attention.layer_norm_epsilon", MetaValue::F32(x));
        assert!(parse(&[rms(1e-5), plain(0.0)]).is_ok());
        assert_eq!(
            refused(&[rms(-1e-5)]),
            "m.gguf: invalid GGUF file: llama.attention.layer_norm_rms_epsilon is -0.00001; \
             llama.cpp's norms need an epsilon of 0 or more"
        );
        assert!(refused(&[rms(f32::NAN)]).contains("layer_norm_rms_epsilon is NaN"));
        assert!(refused(&[plain(-1.0)]).contains("layer_norm_epsilon is -1;"));
        // Another architecture's keys, and other types, are not this check's business.
        assert!(parse(&[("qwen2.attention.layer_norm_epsilon", MetaValue::F32(-1.0))]).is_ok());
        assert!(parse(&[("llama.attention.layer_norm_epsilon", MetaValue::I32(-1))]).is_ok());
    }

    #[test]
    fn expert_counts_beyond_llama_cpp_are_refused() {
        let n = |x| ("llama.expert_count", MetaValue::U32(x));
        let k = |x| ("llama.expert_used_count", MetaValue::U32(x));
        assert!(parse(&[n(1024), k(8)]).is_ok());
        assert!(refused(&[n(1025), k(8)])
            .ends_with("llama.expert_count is 1025; llama.cpp loads at most 1024 experts"));
        assert!(refused(&[k(2000)]).contains("expert_used_count 2000 is more than"));
        assert!(refused(&[n(8), k(9)]).contains("expert_used_count 9 is more than"));
        assert!(refused(&[n(8), k(0)]).contains("expert_used_count is 0 with 8 experts"));
        let g = |x| ("llama.expert_group_count", MetaValue::U32(x));
        let gu = |x| ("llama.expert_group_used_count", MetaValue::U32(x));
        // DeepSeek-V3's routing: 256 experts in 8 groups, 4 of them used.
        assert!(parse(&[n(256), k(8), g(8), gu(4)]).is_ok());
        assert!(refused(&[n(256), k(8), g(6), gu(4)]).contains("not a multiple"));
        assert!(refused(&[n(256), k(8), g(8), gu(8)]).contains("needs 1 to 7"));
        assert!(refused(&[n(8), k(2), g(8)]).contains("not less than"));
        assert!(refused(&[g(2)]).contains("without experts"));
        let nextn = ("llama.nextn_predict_layers", MetaValue::U32(3));
        let blocks = ("llama.block_count", MetaValue::U32(2));
        assert!(refused(&[blocks, nextn]).contains("more than its block_count 2"));
        let per_layer = MetaValue::Array(ArrayValue {
            elem_type: ValueType::U32,
            len: 2,
            head: vec![MetaValue::U32(2), MetaValue::U32(16)],
        });
        let e = refused(&[n(8), ("llama.expert_used_count", per_layer)]);
        assert!(
            e.contains("expert_used_count 16 is more than its expert_count 8"),
            "{e}"
        );
    }
}
