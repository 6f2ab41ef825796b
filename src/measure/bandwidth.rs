//! Bytes one decoded token must read, from a GGUF tensor table, and what a decode rate makes
//! of them: achieved GB/s and utilisation of the machine's peaks.
//!
//! A decoded token reads every weight it touches once: all dense tensors, one row of the token
//! embedding (the whole matrix when the model ties it to the output projection, as the output
//! matmul then reads it), and for a Mixture-of-Experts layer `expert_used / expert_count` of
//! each expert tensor. Attention reads the KV cache of every position it attends to: the depth
//! of the context, or the window of a sliding-window layer.

use crate::engine::{BuildInfo, KvType};
use crate::gguf::{GgmlType, GgufFile, MetaValue};
use crate::hw::machine::MachineInfo;
pub use crate::hw::peak::Peaks;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Memory traffic of decode: the bytes one token reads, the rate they are read at, and how
/// close that comes to the machine's peaks. GB/s are 10^9 bytes per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Bytes one decoded token reads: `weight_bytes_per_token + kv_bytes_per_token`.
    pub bytes_per_token: u64,
    /// Every weight one token touches (for MoE: shared tensors + used/count of each expert tensor).
    pub weight_bytes_per_token: u64,
    /// KV cache read at `kv_depth`.
    pub kv_bytes_per_token: u64,
    /// Mean positions attended to per decoded token.
    pub kv_depth: f64,
    /// Bytes per token by tensor type, `kv_<type>` for the cache.
    pub by_type: std::collections::BTreeMap<String, u64>,
    /// The decode rate the figures are for, in tokens per second.
    pub decode_tps: f64,
    /// `bytes_per_token × decode_tps`.
    pub achieved_gbps: f64,
    /// Bandwidth measured on this machine (`runner hw`), and which kernel and threads.
    pub measured_peak_gbps: Option<f64>,
    pub measured_peak_kind: Option<String>,
    /// `achieved_gbps / measured_peak_gbps`.
    pub utilisation_measured: Option<f64>,
    /// Published peak of the recognised chip.
    pub published_chip: Option<String>,
    pub published_peak_gbps: Option<f64>,
    /// `achieved_gbps / published_peak_gbps`.
    pub utilisation_published: Option<f64>,
}

/// What decoding one token reads, independent of the depth and KV types.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeReads {
    /// Weight bytes one token reads, by ggml type name.
    weights_by_type: BTreeMap<String, u64>,
    /// One entry per attention layer.
    kv_layers: Vec<KvLayer>,
    /// `(used, count)` for a Mixture-of-Experts model.
    pub experts: Option<(u64, u64)>,
}

/// K and V elements stored per position in one layer, and its attention window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct KvLayer {
    k: u64,
    v: u64,
    window: Option<u64>,
}

/// Bytes one decoded token reads at a given depth.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenBytes {
    pub weights: u64,
    pub kv: u64,
    /// Mean positions attended to per decoded token.
    pub kv_depth: f64,
    /// Weight bytes by tensor type, and `kv_<type>` for the cache.
    pub by_type: BTreeMap<String, u64>,
}

impl TokenBytes {
    pub fn total(&self) -> u64 {
        self.weights.saturating_add(self.kv)
    }
}

/// Architectures whose sliding-window layers follow a fixed pattern in llama.cpp:
/// `(arch, n_pattern)`; layer `il` slides when `il % n_pattern < n_pattern - 1`.
const SWA_PATTERNS: &[(&str, u64)] = &[
    ("gemma2", 2),
    ("gemma3", 6),
    ("gemma3n", 5),
    ("gemma-embedding", 6),
    ("cohere2", 4),
];

impl DecodeReads {
    pub fn from_gguf(g: &GgufFile) -> DecodeReads {
        let experts = match (g.arch_u64("expert_used_count"), g.arch_u64("expert_count")) {
            (Some(used), Some(count)) if count > 0 && used > 0 => Some((used.min(count), count)),
            _ => None,
        };
        let tied = g.tensor("output.weight").is_none();
        let mut weights_by_type: BTreeMap<String, u64> = BTreeMap::new();
        for t in &g.tensors {
            let bytes = match t.name.as_str() {
                "token_embd.weight" if tied => t.n_bytes,
                "token_embd.weight" | "position_embd.weight" | "token_types.weight" => {
                    t.n_bytes / t.dims.get(1).copied().unwrap_or(1).max(1)
                }
                name if name.contains("_exps.") => match experts {
                    Some((used, count)) => scale(t.n_bytes, used, count),
                    None => t.n_bytes,
                },
                _ => t.n_bytes,
            };
            *weights_by_type
                .entry(t.ggml_type.as_str().to_string())
                .or_default() += bytes;
        }
        DecodeReads {
            weights_by_type,
            kv_layers: kv_layers(g),
            experts,
        }
    }

    /// Weight bytes one token reads.
    pub fn weights(&self) -> u64 {
        self.weights_by_type.values().sum()
    }

    /// Bytes one token reads when it attends to `depth` positions, with the cache stored as
    /// `type_k` / `type_v`.
    pub fn at_depth(&self, depth: f64, type_k: KvType, type_v: KvType) -> TokenBytes {
        let (type_k, type_v) = (type_k.as_str(), type_v.as_str());
        let (bk, bv) = (element_bytes(type_k), element_bytes(type_v));
        let depth = depth.max(0.0);
        let (mut k_bytes, mut v_bytes) = (0.0, 0.0);
        for l in &self.kv_layers {
            let positions = l.window.map_or(depth, |w| depth.min(w as f64));
            k_bytes += positions * l.k as f64 * bk;
            v_bytes += positions * l.v as f64 * bv;
        }
        let mut by_type = self.weights_by_type.clone();
        for (ty, b) in [(type_k, k_bytes), (type_v, v_bytes)] {
            if b > 0.0 {
                *by_type.entry(format!("kv_{ty}")).or_default() += b.round() as u64;
            }
        }
        TokenBytes {
            weights: self.weights(),
            kv: (k_bytes + v_bytes).round() as u64,
            kv_depth: depth,
            by_type,
        }
    }
}

fn scale(bytes: u64, used: u64, count: u64) -> u64 {
    (u128::from(bytes) * u128::from(used) / u128::from(count.max(1))) as u64
}

/// Bytes per element of a ggml type (block size accounted for).
fn element_bytes(name: &str) -> f64 {
    GgmlType::ALL
        .iter()
        .find(|t| t.as_str() == name)
        .map_or(2.0, |t| t.type_size() as f64 / t.block_size() as f64)
}

/// Per-layer KV widths: from each layer's K and V projections when present (exact, even when
/// layers differ), otherwise from the attention hyperparameters.
fn kv_layers(g: &GgufFile) -> Vec<KvLayer> {
    let n_layer = g.arch_u64("block_count").unwrap_or(0);
    let window = g.arch_u64("attention.sliding_window").filter(|&w| w > 0);
    let sliding = sliding_layers(g, n_layer);
    (0..n_layer)
        .filter_map(|il| {
            let (k, v) = projection_widths(g, il).or_else(|| metadata_widths(g, il))?;
            let slides = sliding.get(il as usize).copied().unwrap_or(false);
            Some(KvLayer {
                k,
                v,
                window: window.filter(|_| slides),
            })
        })
        .collect()
}

fn projection_widths(g: &GgufFile, il: u64) -> Option<(u64, u64)> {
    let width = |n: &str| {
        g.tensor(&format!("blk.{il}.{n}.weight"))
            .and_then(|t| t.dims.get(1).copied())
    };
    Some((width("attn_k")?, width("attn_v")?))
}

/// K and V widths from `head_count_kv` and the head sizes; `None` for a layer without
/// attention (a recurrent layer has no KV cache).
fn metadata_widths(g: &GgufFile, il: u64) -> Option<(u64, u64)> {
    let n_head = g.arch_per_layer("attention.head_count", il)?;
    let n_head_kv = g
        .arch_per_layer("attention.head_count_kv", il)
        .unwrap_or(n_head);
    if n_head == 0 || n_head_kv == 0 {
        return None;
    }
    let head = g.arch_u64("embedding_length")? / n_head;
    let k = g.arch_u64("attention.key_length").unwrap_or(head);
    let v = g.arch_u64("attention.value_length").unwrap_or(head);
    Some((n_head_kv * k, n_head_kv * v))
}

/// Which layers use a sliding window: the file's own per-layer pattern when it has one,
/// otherwise llama.cpp's fixed pattern for the architecture; none for other models.
fn sliding_layers(g: &GgufFile, n_layer: u64) -> Vec<bool> {
    let stored = g.arch_get("attention.sliding_window_pattern");
    if let Some(MetaValue::Array(a)) = stored {
        if a.len == a.head.len() as u64 {
            return a
                .head
                .iter()
                .map(|v| matches!(v, MetaValue::Bool(true)))
                .collect();
        }
    }
    let arch = g.architecture().unwrap_or_default();
    let pattern = stored.and_then(MetaValue::as_u64).or_else(|| {
        SWA_PATTERNS
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|&(_, n)| n)
    });
    match pattern {
        Some(n) if n > 0 => (0..n_layer).map(|il| il % n < n - 1).collect(),
        _ => Vec::new(),
    }
}

/// The peaks a run on this machine is held against: the host-memory measurement `measured`
/// gives and the published figure for where the weights live (the first GPU when layers are
/// offloaded, else the machine's chip).
pub fn peaks(
    machine: &MachineInfo,
    build: &BuildInfo,
    n_gpu_layers: u32,
    measured: impl FnOnce() -> Option<crate::hw::peak::Measurement>,
) -> Peaks {
    let gpu = build
        .devices
        .iter()
        .find(|d| !d.backend.eq_ignore_ascii_case("cpu"))
        .filter(|_| n_gpu_layers > 0)
        .map(|d| (d.name.as_str(), d.description.as_str()));
    crate::hw::peak::peaks(machine, gpu, measured)
}

/// Bandwidth figures of a decode rate: achieved GB/s and utilisation of each known peak.
pub fn figures(bytes: &TokenBytes, decode_tps: f64, peaks: &Peaks) -> Bandwidth {
    let achieved = bytes.total() as f64 * decode_tps / 1e9;
    let share = |peak: f64| (peak > 0.0).then(|| achieved / peak);
    Bandwidth {
        bytes_per_token: bytes.total(),
        weight_bytes_per_token: bytes.weights,
        kv_bytes_per_token: bytes.kv,
        kv_depth: bytes.kv_depth,
        by_type: bytes.by_type.clone(),
        decode_tps,
        achieved_gbps: achieved,
        measured_peak_gbps: peaks.measured.as_ref().map(|m| m.0),
        measured_peak_kind: peaks.measured.as_ref().map(|m| m.1.clone()),
        utilisation_measured: peaks.measured.as_ref().and_then(|m| share(m.0)),
        published_peak_gbps: peaks.published.as_ref().map(|p| p.0),
        published_chip: peaks.published.as_ref().map(|p| p.1.clone()),
        utilisation_published: peaks.published.as_ref().and_then(|p| share(p.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{GgmlType, TensorInfo};

    fn tensor(name: &str, dims: &[u64], ty: GgmlType) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dims: dims.to_vec(),
            ggml_type: ty,
            offset: 0,
            n_bytes: ty.n_bytes(dims).unwrap(),
        }
    }

    fn file(meta: Vec<(&str, MetaValue)>, tensors: Vec<TensorInfo>) -> GgufFile {
        GgufFile {
            version: 3,
            file_size: 0,
            alignment: 32,
            data_offset: 0,
            data_end: 0,
            metadata: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            metadata_spans: Vec::new(),
            tensors,
        }
    }

    /// Two llama layers, 64 wide, 4 heads of 16, 2 KV heads (K and V 32 wide).
    fn dense(tied: bool) -> GgufFile {
        let mut t = vec![tensor("token_embd.weight", &[64, 100], GgmlType::Q8_0)];
        for il in 0..2 {
            t.push(tensor(
                &format!("blk.{il}.attn_norm.weight"),
                &[64],
                GgmlType::F32,
            ));
            t.push(tensor(
                &format!("blk.{il}.attn_q.weight"),
                &[64, 64],
                GgmlType::Q8_0,
            ));
            t.push(tensor(
                &format!("blk.{il}.attn_k.weight"),
                &[64, 32],
                GgmlType::Q8_0,
            ));
            t.push(tensor(
                &format!("blk.{il}.attn_v.weight"),
                &[64, 32],
                GgmlType::Q8_0,
            ));
            t.push(tensor(
                &format!("blk.{il}.ffn_up.weight"),
                &[64, 128],
                GgmlType::Q8_0,
            ));
        }
        if !tied {
            t.push(tensor("output.weight", &[64, 100], GgmlType::Q8_0));
        }
        file(
            vec![
                ("general.architecture", MetaValue::Str("llama".into())),
                ("llama.block_count", MetaValue::U32(2)),
            ],
            t,
        )
    }

    fn total_bytes(g: &GgufFile) -> u64 {
        g.tensors.iter().map(|t| t.n_bytes).sum()
    }

    #[test]
    fn tied_embedding_is_read_whole_once() {
        let g = dense(true);
        let r = DecodeReads::from_gguf(&g);
        assert_eq!(r.weights(), total_bytes(&g));
        assert_eq!(r.experts, None);
    }

    #[test]
    fn untied_embedding_adds_one_row() {
        let g = dense(false);
        let r = DecodeReads::from_gguf(&g);
        let embd = g.tensor("token_embd.weight").unwrap().n_bytes;
        assert_eq!(r.weights(), total_bytes(&g) - embd + embd / 100);
    }

    #[test]
    fn kv_grows_with_depth_by_type() {
        let r = DecodeReads::from_gguf(&dense(true));
        let at0 = r.at_depth(0.0, KvType::F16, KvType::F16);
        assert_eq!(at0.kv, 0);
        assert_eq!(at0.total(), at0.weights);
        let b = r.at_depth(100.0, KvType::F16, KvType::F16);
        // 2 layers × 100 positions × (32 + 32) elements × 2 bytes
        assert_eq!(b.kv, 2 * 100 * 64 * 2);
        assert_eq!(b.by_type["kv_f16"], b.kv);
        assert_eq!(b.by_type["q8_0"] + b.by_type["f32"], b.weights);
        // q8_0 stores 34 bytes per 32 elements
        let q = r.at_depth(100.0, KvType::Q8_0, KvType::F16);
        assert_eq!(q.by_type["kv_q8_0"], 2 * 100 * 32 * 34 / 32);
        assert_eq!(q.kv, q.by_type["kv_q8_0"] + q.by_type["kv_f16"]);
    }

    #[test]
    fn experts_count_by_the_share_a_token_uses() {
        let mut g = dense(true);
        g.metadata
            .push(("llama.expert_count".into(), MetaValue::U32(4)));
        g.metadata
            .push(("llama.expert_used_count".into(), MetaValue::U32(2)));
        let dense_bytes = total_bytes(&g);
        g.tensors
            .push(tensor("blk.0.ffn_gate_inp.weight", &[64, 4], GgmlType::F32));
        g.tensors.push(tensor(
            "blk.0.ffn_up_exps.weight",
            &[64, 128, 4],
            GgmlType::Q8_0,
        ));
        let exps = g.tensor("blk.0.ffn_up_exps.weight").unwrap().n_bytes;
        let r = DecodeReads::from_gguf(&g);
        assert_eq!(r.experts, Some((2, 4)));
        assert_eq!(r.weights(), dense_bytes + 64 * 4 * 4 + exps / 2);
    }

    #[test]
    fn sliding_window_layers_stop_at_their_window() {
        let mut g = dense(true);
        g.metadata[0].1 = MetaValue::Str("gemma2".into());
        g.metadata[1].0 = "gemma2.block_count".into();
        g.metadata
            .push(("gemma2.attention.sliding_window".into(), MetaValue::U32(10)));
        let r = DecodeReads::from_gguf(&g);
        // gemma2: layer 0 slides, layer 1 is global
        let b = r.at_depth(100.0, KvType::F16, KvType::F16);
        assert_eq!(b.kv, (10 + 100) * 64 * 2);
    }

    #[test]
    fn fused_projections_fall_back_to_head_counts() {
        let g = file(
            vec![
                ("general.architecture", MetaValue::Str("phi3".into())),
                ("phi3.block_count", MetaValue::U32(1)),
                ("phi3.embedding_length", MetaValue::U32(64)),
                ("phi3.attention.head_count", MetaValue::U32(4)),
                ("phi3.attention.head_count_kv", MetaValue::U32(1)),
            ],
            vec![tensor("blk.0.attn_qkv.weight", &[64, 96], GgmlType::F16)],
        );
        let b = DecodeReads::from_gguf(&g).at_depth(10.0, KvType::F16, KvType::F16);
        assert_eq!(b.kv, 10 * (16 + 16) * 2);
    }

    #[test]
    fn figures_divide_by_what_they_say() {
        let bytes = TokenBytes {
            weights: 90_000_000,
            kv: 10_000_000,
            kv_depth: 64.0,
            by_type: BTreeMap::new(),
        };
        let peaks = Peaks {
            measured: Some((20.0, "read, 2 threads".into())),
            published: Some((100.0, "Apple M2".into())),
        };
        let f = figures(&bytes, 50.0, &peaks);
        assert_eq!(f.bytes_per_token, 100_000_000);
        assert!((f.achieved_gbps - 5.0).abs() < 1e-12);
        assert!((f.utilisation_measured.unwrap() - 0.25).abs() < 1e-12);
        assert!((f.utilisation_published.unwrap() - 0.05).abs() < 1e-12);
        let none = figures(&bytes, 50.0, &Peaks::default());
        assert!(none.utilisation_measured.is_none() && none.published_chip.is_none());
    }
}
