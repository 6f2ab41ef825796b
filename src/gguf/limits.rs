//! llama.cpp's limits on a model's shape, checked with the header: past them its loader
//! aborts the process (`GGML_ASSERT` in `llama_model::load_hparams`) instead of refusing.

use super::{GgufFile, MetaValue};

/// `LLAMA_MAX_LAYERS` in llama.cpp's src/llama-hparams.h.
pub const MAX_LAYERS: u32 = 512;
/// `LLAMA_MAX_EXPERTS` in llama.cpp's src/llama-hparams.h.
pub const MAX_EXPERTS: u32 = 1024;

/// Why the architecture's layer or expert counts are beyond what llama.cpp loads. Absent keys,
/// or values of the wrong type, pass: llama.cpp refuses those itself, cleanly.
pub(super) fn check(g: &GgufFile) -> Result<(), String> {
    let Some(arch) = g.architecture() else {
        return Ok(());
    };
    if let Some(n) = g.arch_u64("block_count") {
        if n == 0 || n > u64::from(MAX_LAYERS) {
            return Err(format!(
                "{arch}.block_count is {n}; llama.cpp loads 1 to {MAX_LAYERS} layers"
            ));
        }
    }
    let experts = g.arch_u64("expert_count");
    if let Some(n) = experts.filter(|&n| n > u64::from(MAX_EXPERTS)) {
        return Err(format!(
            "{arch}.expert_count is {n}; llama.cpp loads at most {MAX_EXPERTS} experts"
        ));
    }
    // One count for every layer, or one per layer.
    let used = g.arch_get("expert_used_count").and_then(|v| match v {
        MetaValue::Array(a) => a.head.iter().filter_map(MetaValue::as_u64).max(),
        v => v.as_u64(),
    });
    match (used, experts) {
        (Some(k), _) if k > u64::from(MAX_EXPERTS) => Err(format!(
            "{arch}.expert_used_count is {k}; llama.cpp loads at most {MAX_EXPERTS} experts"
        )),
        (Some(k), Some(n)) if n > 1 && k > n => Err(format!(
            "{arch}.expert_used_count {k} is more than its expert_count {n}"
        )),
        _ => Ok(()),
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
    fn expert_counts_beyond_llama_cpp_are_refused() {
        let n = |x| ("llama.expert_count", MetaValue::U32(x));
        let k = |x| ("llama.expert_used_count", MetaValue::U32(x));
        assert!(parse(&[n(1024), k(8)]).is_ok());
        assert!(refused(&[n(1025), k(8)])
            .ends_with("llama.expert_count is 1025; llama.cpp loads at most 1024 experts"));
        assert!(refused(&[k(2000)]).contains("expert_used_count is 2000"));
        assert!(refused(&[n(8), k(9)]).contains("expert_used_count 9 is more than"));
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
