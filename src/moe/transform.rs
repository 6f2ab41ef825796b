//! The upcycling transform on a validated GGUF header: which tensors become experts, the router
//! added to each layer, the expert metadata. Pure: it builds a [`GgufWriter`] whose tensor data
//! still points into the dense file.
//!
//! For llama (llama.cpp's `llama_model_llama::load_arch_tensors` and `build_moe_ffn`): with
//! `<arch>.expert_count` > 0 each layer needs `ffn_gate_inp` (ne = [n_embd, n_expert]) and
//! `ffn_{gate,up,down}_exps` (the dense shapes plus a last dimension n_expert); routing is a
//! softmax over the router's logits, the top `expert_used_count` weights renormalised to sum
//! to 1. Experts that are copies of the dense FFN therefore give the dense output. Quantized
//! blocks never cross a row, so expert e's bytes are the dense tensor's bytes, e times over.

use super::error::UpcycleError;
use super::provenance::Provenance;
use super::router::{self, Router};
use super::UpcycleOptions;
use crate::gguf::{
    GgmlType, GgufFile, GgufWriter, MetaValue, Source, TensorData, WriteError, MAX_EXPERTS,
};
use std::collections::HashSet;
use std::path::Path;

/// The three dense FFN projections, which become experts.
const FFN_PARTS: [&str; 3] = ["ffn_gate", "ffn_up", "ffn_down"];

/// The shape of a dense model the transform accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseLayout {
    pub arch: String,
    pub n_layer: u64,
    pub n_embd: u64,
}

/// An upcycle ready to be written, and what it adds.
#[derive(Debug)]
pub struct Plan {
    pub writer: GgufWriter,
    pub layout: DenseLayout,
    /// Bytes of the dense FFN tensors (gate, up, down over all layers).
    pub dense_ffn_bytes: u64,
    /// Bytes of the expert tensors that replace them (`dense_ffn_bytes` × experts).
    pub expert_bytes: u64,
    /// Bytes of the added router tensors.
    pub router_bytes: u64,
}

impl UpcycleOptions {
    /// Checks `--experts` and `--used` together.
    pub fn validate(&self) -> Result<(), UpcycleError> {
        let (n, k) = (self.experts, self.used);
        let msg = if n < 2 {
            format!("--experts must be at least 2, got {n}")
        } else if n > MAX_EXPERTS {
            format!("--experts {n} is more than llama.cpp supports ({MAX_EXPERTS})")
        } else if k < 1 {
            format!("--used must be at least 1, got {k}")
        } else if k > n {
            format!("--used {k} is more than --experts {n}")
        } else if self.router == Router::Grouped && n % k != 0 {
            format!(
                "--router grouped needs --used to divide --experts (got {n} experts, {k} used); \
                 use --router random for this shape"
            )
        } else {
            return Ok(());
        };
        Err(UpcycleError::BadOption(msg))
    }
}

/// `(layer, part, suffix)` of a per-layer FFN tensor name such as `blk.3.ffn_up.weight`.
fn ffn_part(name: &str) -> Option<(u64, &str, &str)> {
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let (part, suffix) = rest.split_once('.')?;
    let layer = layer.parse().ok()?;
    FFN_PARTS.contains(&part).then_some((layer, part, suffix))
}

/// Checks that `g` is a dense model of a supported architecture with a complete FFN per layer.
pub fn check_dense(path: &Path, g: &GgufFile) -> Result<DenseLayout, UpcycleError> {
    let not_dense = |reason: String| UpcycleError::NotDense {
        path: path.to_path_buf(),
        reason,
    };
    let arch = g
        .architecture()
        .ok_or_else(|| not_dense("no general.architecture in the metadata".into()))?;
    if !super::error::SUPPORTED_ARCHS.contains(&arch) {
        return Err(UpcycleError::UnsupportedArch {
            path: path.to_path_buf(),
            arch: arch.to_string(),
        });
    }
    check_not_moe(path, g, arch)?;
    let key = |k: &str| {
        g.arch_u64(k)
            .filter(|&v| v > 0)
            .ok_or_else(|| not_dense(format!("no {arch}.{k} in the metadata")))
    };
    let (n_layer, n_embd) = (key("block_count")?, key("embedding_length")?);
    for t in &g.tensors {
        if let Some((_, _, suffix)) = ffn_part(&t.name).filter(|p| p.2 != "weight") {
            return Err(not_dense(format!(
                "tensor '{}': FFN {suffix} tensors are not carried by llama.cpp's MoE path",
                t.name
            )));
        }
    }
    for i in 0..n_layer {
        check_layer(g, i, n_embd).map_err(not_dense)?;
    }
    Ok(DenseLayout {
        arch: arch.to_string(),
        n_layer,
        n_embd,
    })
}

fn check_not_moe(path: &Path, g: &GgufFile, arch: &str) -> Result<(), UpcycleError> {
    let moe = |why: String| UpcycleError::AlreadyMoe {
        path: path.to_path_buf(),
        why,
    };
    for k in ["expert_count", "expert_used_count"] {
        if let Some(n) = g.arch_u64(k).filter(|&n| n > 0) {
            return Err(moe(format!("{arch}.{k} = {n}")));
        }
    }
    let expert_tensor = g.tensors.iter().find(|t| {
        ["_exps", "_shexp", "ffn_gate_inp"]
            .iter()
            .any(|p| t.name.contains(p))
    });
    match expert_tensor {
        Some(t) => Err(moe(format!("it has tensor '{}'", t.name))),
        None => Ok(()),
    }
}

/// Layer `i` has gate, up and down weights of matching 2-D shapes.
fn check_layer(g: &GgufFile, i: u64, n_embd: u64) -> Result<(), String> {
    let dims = |part: &str| {
        let name = format!("blk.{i}.{part}.weight");
        let t = g
            .tensor(&name)
            .ok_or_else(|| format!("layer {i} has no '{name}' (a dense llama FFN needs it)"))?;
        Ok::<_, String>(t.dims.clone())
    };
    let (gate, up, down) = (dims("ffn_gate")?, dims("ffn_up")?, dims("ffn_down")?);
    let n_ff = up.get(1).copied().unwrap_or(0);
    if gate != [n_embd, n_ff] || up != [n_embd, n_ff] || down != [n_ff, n_embd] {
        return Err(format!(
            "layer {i}: FFN shapes gate {gate:?}, up {up:?}, down {down:?} do not match \
             n_embd {n_embd}"
        ));
    }
    Ok(())
}

/// Builds the MoE: every source key/value copied raw (from `source`, the dense file), the
/// expert counts and provenance set, each layer's FFN replaced by experts and a router.
pub fn plan(
    path: &Path,
    g: &GgufFile,
    source: &mut dyn Source,
    opts: &UpcycleOptions,
    provenance: &Provenance,
) -> Result<Plan, UpcycleError> {
    opts.validate()?;
    let layout = check_dense(path, g)?;
    let write_err = |err: WriteError| UpcycleError::Write {
        path: path.to_path_buf(),
        err,
    };
    let mut w = GgufWriter::new();
    for (i, (key, value)) in g.metadata.iter().enumerate() {
        let raw = g
            .raw_value(source, i)
            .unwrap_or_else(|| Err(std::io::Error::other("no such metadata entry")))
            .map_err(|e| UpcycleError::Io {
                path: path.to_path_buf(),
                err: std::io::Error::new(e.kind(), format!("reading the value of '{key}': {e}")),
            })?;
        w.set_raw(key, value.value_type(), raw).map_err(write_err)?;
    }
    let arch = &layout.arch;
    let n = opts.experts;
    w.set(&format!("{arch}.expert_count"), &MetaValue::U32(n))
        .and_then(|()| {
            w.set(
                &format!("{arch}.expert_used_count"),
                &MetaValue::U32(opts.used),
            )
        })
        .and_then(|()| provenance.write(&mut w))
        .map_err(write_err)?;
    let mut plan = Plan {
        writer: w,
        layout,
        dense_ffn_bytes: 0,
        expert_bytes: 0,
        router_bytes: 0,
    };
    add_tensors(&mut plan, g, opts).map_err(write_err)?;
    Ok(plan)
}

/// Adds every tensor in source order; a layer's router goes just before its first expert.
fn add_tensors(p: &mut Plan, g: &GgufFile, opts: &UpcycleOptions) -> Result<(), WriteError> {
    let n = u64::from(opts.experts);
    let mut routed = HashSet::new();
    for t in &g.tensors {
        let offset = g.data_offset + t.offset;
        let part = ffn_part(&t.name).filter(|&(i, _, _)| i < p.layout.n_layer);
        let Some((layer, part, _)) = part else {
            let data = TensorData::Source {
                offset,
                len: t.n_bytes,
                repeat: 1,
            };
            p.writer.add_tensor(&t.name, &t.dims, t.ggml_type, data)?;
            continue;
        };
        if routed.insert(layer) {
            let k = u64::from(opts.used);
            let bytes = router::weights(opts.router, p.layout.n_embd, n, k, opts.seed, layer);
            p.router_bytes += bytes.len() as u64;
            let dims = [p.layout.n_embd, n];
            let name = format!("blk.{layer}.ffn_gate_inp.weight");
            p.writer
                .add_tensor(&name, &dims, GgmlType::F32, TensorData::Bytes(bytes))?;
        }
        let mut dims = t.dims.clone();
        dims.push(n);
        let data = TensorData::Source {
            offset,
            len: t.n_bytes,
            repeat: n,
        };
        let name = format!("blk.{layer}.{part}_exps.weight");
        p.writer.add_tensor(&name, &dims, t.ggml_type, data)?;
        p.dense_ffn_bytes += t.n_bytes;
        p.expert_bytes += t.n_bytes * n;
    }
    Ok(())
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
