//! Tests of the synthetic-model catalogue: published sizes, shapes, layer scaling, dense
//! references and KV-cache sizes.

use super::*;
use crate::gguf::MetaValue;
use crate::models::synthetic::SynthSpec;

#[test]
fn every_entry_is_consistent_and_adds_up_to_its_published_size() {
    for a in &CATALOGUE {
        a.check().unwrap_or_else(|e| panic!("{e}"));
        let (total, active) = a.params(a.layers);
        let (t, act) = (total as f64 / 1e9, active as f64 / 1e9);
        assert!(
            (t / a.params_b.0 - 1.0).abs() < 0.005,
            "{}: {t:.3}B parameters, published {}B",
            a.name,
            a.params_b.0
        );
        assert!(
            (act / a.params_b.1 - 1.0).abs() < 0.01,
            "{}: {act:.3}B active, published {}B",
            a.name,
            a.params_b.1
        );
        assert!(!a.sources.is_empty(), "{} has no source", a.name);
    }
}

#[test]
fn names_are_unique_and_unknown_ones_list_the_known() {
    let mut names: Vec<_> = CATALOGUE.iter().map(|a| a.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), CATALOGUE.len());
    assert_eq!(arch("LLAMA-3.1-8B").unwrap().display, "Llama-3.1-8B");
    let e = arch("llama-9b").unwrap_err().to_string();
    assert!(e.contains("llama-9b") && e.contains("qwen3-30b-a3b"), "{e}");
}

#[test]
fn a_wrong_shape_is_refused_in_one_line() {
    let mut a = arch("qwen3-30b-a3b").unwrap().clone();
    a.kv_heads = 5;
    let e = a.check().unwrap_err().to_string();
    assert!(e.contains("qwen3-30b-a3b") && e.contains("5"), "{e}");
    assert!(!e.contains('\n'));
    let mut a = arch("mixtral-8x7b").unwrap().clone();
    a.used = 9;
    assert!(a.check().is_err());
    let a = arch("llama-2-7b").unwrap();
    assert!(a.check_layers(0).is_err());
    assert!(a
        .check_layers(33)
        .unwrap_err()
        .to_string()
        .contains("1 to 32"));
    assert!(a.check_layers(32).is_ok());
    let q = arch("qwen3.6-27b").unwrap();
    assert!(q
        .check_layers(2)
        .unwrap_err()
        .to_string()
        .contains("multiple of 4"));
    assert!(q.check_layers(8).is_ok());
}

#[test]
fn layer_scaled_models_keep_every_per_layer_shape() {
    let a = arch("qwen3.6-35b-a3b").unwrap();
    let full = a.tensors(a.layers);
    let four = a.tensors(4);
    // three linear-attention layers and one full-attention layer, as in the real model
    assert!(four.iter().any(|t| t.name == "blk.3.attn_q.weight"));
    assert!(four.iter().any(|t| t.name == "blk.2.ssm_out.weight"));
    assert!(!four.iter().any(|t| t.name == "blk.2.attn_q.weight"));
    for t in &four {
        let same = full.iter().find(|f| f.name == t.name).unwrap();
        assert_eq!(same.dims, t.dims, "{}", t.name);
    }
    assert_eq!(a.period(), 4);
    assert_eq!(arch("gemma-3-27b").unwrap().period(), 6);
}

#[test]
fn metadata_names_the_architecture_and_the_layers_kept() {
    let a = arch("gpt-oss-20b").unwrap();
    let m = a.metadata(2);
    let get = |k: &str| m.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("general.architecture"),
        Some(MetaValue::Str("gpt-oss".into()))
    );
    assert_eq!(get("gpt-oss.block_count"), Some(MetaValue::U32(2)));
    assert_eq!(
        get("gpt-oss.attention.sliding_window"),
        Some(MetaValue::U32(128))
    );
    assert_eq!(
        get("tokenizer.ggml.model"),
        Some(MetaValue::Str("none".into()))
    );
}

#[test]
fn a_dense_reference_reads_what_one_token_of_the_moe_model_reads() {
    for name in ["qwen3-30b-a3b", "mixtral-8x7b", "qwen3.6-35b-a3b"] {
        let moe = arch(name).unwrap();
        let dense = moe.dense_reference().unwrap();
        dense.check().unwrap();
        assert_eq!(dense.experts, 0);
        let (_, active) = moe.params(4);
        let (total, _) = dense.params(4);
        let routers: u64 = moe
            .tensors(4)
            .iter()
            .filter(|t| t.init == Init::Router)
            .map(|t| t.elements())
            .sum();
        assert_eq!(total + routers, active, "{name}");
    }
    assert!(arch("gpt-oss-20b").unwrap().dense_reference().is_none());
    assert!(arch("llama-2-7b").unwrap().dense_reference().is_none());
    assert!(SynthSpec::parse("synth:gpt-oss-20b:dense").is_err());
    let s = SynthSpec::parse("synth:qwen3-30b-a3b:layers=4:dense").unwrap();
    assert_eq!((s.entry().family, s.entry().ff), (Family::Qwen3, 8 * 768));
}

#[test]
fn kv_cache_counts_full_windowed_and_linear_layers_as_llama_cpp_allocates_them() {
    // Llama-3.1-8B: 32 layers × 8 KV heads × 128 × 2 (K and V) × 2 bytes = 128 KiB per token.
    let llama = arch("llama-3.1-8b").unwrap();
    assert_eq!(llama.kv_bytes(4096), 4096 * 128 * 1024);
    // Gemma-3-12B: 8 of 48 layers global; the 40 others hold a 1024-token window.
    let g = arch("gemma-3-12b").unwrap();
    let per_layer_token = 2 * g.kv_heads as u64 * g.head_dim * 2;
    assert_eq!(g.kv_bytes(8192), per_layer_token * (8 * 8192 + 40 * 1024));
    assert_eq!(g.kv_bytes(512), per_layer_token * 48 * 512);
    // Qwen3.6-27B: only every fourth layer has full attention.
    let q = arch("qwen3.6-27b").unwrap();
    let per_layer_token = 2 * q.kv_heads as u64 * q.head_dim * 2;
    assert_eq!(q.kv_bytes(1000), per_layer_token * 16 * 1000);
}
