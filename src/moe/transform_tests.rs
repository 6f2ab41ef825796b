//! Unit tests for the upcycling transform on a small synthetic dense llama written in memory.

use super::*;
use crate::gguf::{ArrayValue, GgufFile, MetaValue, TensorInfo, ValueType};
use std::io::Cursor;

const N_EMBD: u64 = 64;
const N_FF: u64 = 96;
const N_LAYER: u64 = 2;
const N_VOCAB: u64 = 40;

fn opts(experts: u32, used: u32, router: Router) -> UpcycleOptions {
    UpcycleOptions {
        experts,
        used,
        router,
        seed: 7,
    }
}

fn prov(o: &UpcycleOptions) -> Provenance {
    Provenance::new("dense.gguf".into(), "ab".repeat(32), 1234, o)
}

/// Tensors of a dense llama: (name, dims, type); data bytes follow a per-tensor pattern.
fn dense_tensors() -> Vec<(String, Vec<u64>, GgmlType)> {
    let mut t = vec![(
        "token_embd.weight".to_string(),
        vec![N_EMBD, N_VOCAB],
        GgmlType::Q8_0,
    )];
    for i in 0..N_LAYER {
        let b = |s: &str| format!("blk.{i}.{s}");
        t.push((b("attn_norm.weight"), vec![N_EMBD], GgmlType::F32));
        t.push((b("attn_q.weight"), vec![N_EMBD, N_EMBD], GgmlType::Q4_1));
        t.push((b("ffn_gate.weight"), vec![N_EMBD, N_FF], GgmlType::Q4_1));
        t.push((b("ffn_down.weight"), vec![N_FF, N_EMBD], GgmlType::Q8_0));
        t.push((b("ffn_norm.weight"), vec![N_EMBD], GgmlType::F32));
        t.push((b("ffn_up.weight"), vec![N_EMBD, N_FF], GgmlType::Q4_1));
    }
    t.push(("output_norm.weight".into(), vec![N_EMBD], GgmlType::F32));
    t
}

fn tokens() -> MetaValue {
    let head: Vec<MetaValue> = (0..N_VOCAB)
        .map(|i| MetaValue::Str(format!("t{i}")))
        .collect();
    MetaValue::Array(ArrayValue {
        elem_type: ValueType::Str,
        len: head.len() as u64,
        head,
    })
}

/// A dense model image, changed by `edit` before it is written.
fn image(edit: impl FnOnce(&mut GgufWriter, &mut Vec<(String, Vec<u64>, GgmlType)>)) -> Vec<u8> {
    let mut w = GgufWriter::new();
    let s = |v: &str| MetaValue::Str(v.into());
    w.set("general.architecture", &s("llama")).unwrap();
    w.set("general.name", &s("tiny")).unwrap();
    w.set("llama.block_count", &MetaValue::U32(N_LAYER as u32))
        .unwrap();
    w.set("llama.embedding_length", &MetaValue::U32(N_EMBD as u32))
        .unwrap();
    w.set("llama.feed_forward_length", &MetaValue::U32(N_FF as u32))
        .unwrap();
    w.set("tokenizer.ggml.tokens", &tokens()).unwrap();
    let mut tensors = dense_tensors();
    edit(&mut w, &mut tensors);
    for (k, (name, dims, ty)) in tensors.iter().enumerate() {
        let n = ty.n_bytes(dims).unwrap();
        let data = (0..n).map(|j| (j as usize * 13 + k * 7) as u8).collect();
        w.add_tensor(name, dims, *ty, TensorData::Bytes(data))
            .unwrap();
    }
    let mut out = Vec::new();
    w.write_to(&mut out, None).unwrap();
    out
}

fn parse(bytes: &[u8]) -> GgufFile {
    GgufFile::from_reader(Cursor::new(bytes), bytes.len() as u64, Path::new("d.gguf")).unwrap()
}

/// Upcycles `dense`, writes the result and parses it back.
fn upcycled(dense: &[u8], o: &UpcycleOptions) -> (Plan, Vec<u8>, GgufFile) {
    let g = parse(dense);
    let mut src = Cursor::new(dense);
    let plan = plan(Path::new("d.gguf"), &g, &mut src, o, &prov(o)).unwrap();
    let mut out = Vec::new();
    plan.writer.write_to(&mut out, Some(&mut src)).unwrap();
    let moe = parse(&out);
    (plan, out, moe)
}

fn data<'a>(bytes: &'a [u8], g: &GgufFile, t: &TensorInfo) -> &'a [u8] {
    let at = (g.data_offset + t.offset) as usize;
    &bytes[at..at + t.n_bytes as usize]
}

#[test]
fn experts_are_the_dense_ffn_repeated() {
    let dense = image(|_, _| {});
    let o = opts(4, 2, Router::Grouped);
    let (plan, out, moe) = upcycled(&dense, &o);
    let g = parse(&dense);
    for i in 0..N_LAYER {
        for part in ["ffn_gate", "ffn_up", "ffn_down"] {
            let d = g.tensor(&format!("blk.{i}.{part}.weight")).unwrap();
            let e = moe.tensor(&format!("blk.{i}.{part}_exps.weight")).unwrap();
            assert_eq!(e.dims, [d.dims[0], d.dims[1], 4], "{part} shape");
            assert_eq!(e.ggml_type, d.ggml_type);
            assert_eq!(e.n_bytes, d.n_bytes * 4);
            let (dd, ed) = (data(&dense, &g, d), data(&out, &moe, e));
            for x in 0..4 {
                assert_eq!(&ed[x * dd.len()..(x + 1) * dd.len()], dd, "expert {x}");
            }
            assert!(moe.tensor(&format!("blk.{i}.{part}.weight")).is_none());
        }
    }
    let ffn: u64 = g
        .tensors
        .iter()
        .filter(|t| t.name.contains(".ffn_") && !t.name.contains("norm"))
        .map(|t| t.n_bytes)
        .sum();
    assert_eq!(plan.dense_ffn_bytes, ffn);
    assert_eq!(plan.expert_bytes, ffn * 4);
    assert_eq!(plan.router_bytes, N_LAYER * N_EMBD * 4 * 4);
    assert_eq!(
        moe.tensor_bytes(),
        g.tensor_bytes() + ffn * 3 + plan.router_bytes
    );
    assert_eq!(plan.layout.n_layer, N_LAYER);
}

#[test]
fn routers_other_tensors_and_order() {
    let dense = image(|_, _| {});
    let (_, out, moe) = upcycled(&dense, &opts(4, 2, Router::Random));
    let g = parse(&dense);
    let r = moe.tensor("blk.1.ffn_gate_inp.weight").unwrap();
    assert_eq!(r.dims, [N_EMBD, 4]);
    assert_eq!(r.ggml_type, GgmlType::F32);
    let r0 = data(&out, &moe, moe.tensor("blk.0.ffn_gate_inp.weight").unwrap());
    assert_eq!(r0, router::weights(Router::Random, N_EMBD, 4, 2, 7, 0));
    assert_ne!(r0, data(&out, &moe, r), "each layer has its own router");
    let names: Vec<&str> = moe.tensors.iter().map(|t| t.name.as_str()).collect();
    let at = |n: &str| names.iter().position(|&x| x == n).unwrap();
    assert_eq!(
        at("blk.0.ffn_gate_inp.weight") + 1,
        at("blk.0.ffn_gate_exps.weight")
    );
    assert_eq!(names.len(), g.tensors.len() + N_LAYER as usize);
    for t in g
        .tensors
        .iter()
        .filter(|t| !t.name.contains("ffn_") || t.name.contains("norm"))
    {
        let m = moe.tensor(&t.name).unwrap();
        assert_eq!((&m.dims, m.ggml_type), (&t.dims, t.ggml_type));
        assert_eq!(
            data(&out, &moe, m),
            data(&dense, &g, t),
            "{} copied",
            t.name
        );
    }
}

#[test]
fn metadata_is_copied_whole_and_extended() {
    let dense = image(|_, _| {});
    let o = opts(8, 2, Router::Grouped);
    let (_, out, moe) = upcycled(&dense, &o);
    let g = parse(&dense);
    assert_eq!(moe.arch_u64("expert_count"), Some(8));
    assert_eq!(moe.arch_u64("expert_used_count"), Some(2));
    for (i, (k, v)) in g.metadata.iter().enumerate() {
        let j = moe.metadata.iter().position(|(mk, _)| mk == k).unwrap();
        assert_eq!(&moe.metadata[j].1, v, "{k}");
        let a = g.raw_value(&mut Cursor::new(&dense), i).unwrap().unwrap();
        let b = moe.raw_value(&mut Cursor::new(&out), j).unwrap().unwrap();
        assert_eq!(a, b, "{k}: raw bytes (whole arrays) copied");
    }
    assert_eq!(Provenance::read(&moe), Some(prov(&o)));
    assert_eq!(Provenance::read(&g), None);
    assert_eq!(
        moe.get_str(crate::moe::provenance::KEY_ROUTER),
        Some("grouped")
    );
}

#[test]
fn options_are_checked() {
    let bad = |o: UpcycleOptions| o.validate().unwrap_err().to_string();
    assert!(bad(opts(1, 1, Router::Random)).contains("--experts must be at least 2"));
    assert!(bad(opts(4, 0, Router::Random)).contains("--used must be at least 1"));
    assert!(bad(opts(4, 5, Router::Random)).contains("--used 5 is more than --experts 4"));
    assert!(bad(opts(2000, 2, Router::Random)).contains("1024"));
    assert!(bad(opts(6, 4, Router::Grouped)).contains("divide"));
    assert!(opts(6, 4, Router::Random).validate().is_ok());
    assert!(opts(2, 2, Router::Uniform).validate().is_ok());
    assert!(prov(&opts(4, 2, Router::Grouped)).exact_oracle());
    assert!(prov(&opts(4, 1, Router::Random)).exact_oracle());
    assert!(!prov(&opts(4, 2, Router::Random)).exact_oracle());
    assert!(!prov(&opts(6, 3, Router::Grouped)).exact_oracle());
}

fn refused(
    edit: impl FnOnce(&mut GgufWriter, &mut Vec<(String, Vec<u64>, GgmlType)>),
) -> UpcycleError {
    let g = parse(&image(edit));
    check_dense(Path::new("d.gguf"), &g).unwrap_err()
}

#[test]
fn unsupported_and_moe_inputs_are_refused() {
    let e = refused(|w, _| {
        w.set("general.architecture", &MetaValue::Str("gemma3".into()))
            .unwrap()
    });
    let msg = e.to_string();
    assert!(matches!(e, UpcycleError::UnsupportedArch { .. }));
    assert!(
        msg.contains("'gemma3'") && msg.contains("supported: llama"),
        "{msg}"
    );
    let e = refused(|w, _| {
        w.set("llama.expert_count", &MetaValue::U32(8)).unwrap();
        w.set("llama.expert_used_count", &MetaValue::U32(2))
            .unwrap();
    });
    assert!(
        e.to_string().contains("already a Mixture-of-Experts model"),
        "{e}"
    );
    assert!(e.to_string().contains("llama.expert_count = 8"), "{e}");
    let e = refused(|_, t| t[3].0 = "blk.0.ffn_gate_exps.weight".into());
    assert!(
        e.to_string().contains("'blk.0.ffn_gate_exps.weight'"),
        "{e}"
    );
    assert!(e.is_usage());
    // expert_count 0 is a dense model
    let g = parse(&image(|w, _| {
        w.set("llama.expert_count", &MetaValue::U32(0)).unwrap()
    }));
    assert!(check_dense(Path::new("d.gguf"), &g).is_ok());
}

#[test]
fn incomplete_or_odd_ffns_are_refused() {
    let e = refused(|_, t| t.retain(|x| x.0 != "blk.1.ffn_up.weight"));
    assert!(
        e.to_string()
            .contains("layer 1 has no 'blk.1.ffn_up.weight'"),
        "{e}"
    );
    let e = refused(|_, t| t.push(("blk.0.ffn_up.bias".into(), vec![N_FF], GgmlType::F32)));
    assert!(e.to_string().contains("'blk.0.ffn_up.bias'"), "{e}");
    let e = refused(|_, t| t[4].1 = vec![N_FF, N_EMBD / 2]);
    assert!(e.to_string().contains("do not match"), "{e}");
    let e = refused(|w, _| assert!(w.remove("llama.embedding_length")));
    assert!(e.to_string().contains("no llama.embedding_length"), "{e}");
    let e = refused(|w, _| assert!(w.remove("general.architecture")));
    assert!(e.to_string().contains("no general.architecture"), "{e}");
}
