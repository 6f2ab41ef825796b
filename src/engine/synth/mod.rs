//! Synthetic (random-weight) models: a GGUF with a published architecture's exact tensors,
//! shapes and quantization types, filled with well-scaled random values quantized by ggml, so
//! that it decodes at the real model's speed on a machine that cannot fetch the real model.
//!
//! [`synthesize`] builds one from a catalogue entry (`models::catalogue`): llama.cpp's own
//! quantizer chooses each tensor's type in a dry run ([`types`]), a few rows of random values
//! per distinct row shape are quantized and tiled over each large tensor ([`values`]), routers
//! are drawn whole, and the file is written to a partial name and renamed into place. [`twin`]
//! makes a random-weight copy of a real GGUF, the oracle that checks the method.

mod twin;
mod types;
mod values;

pub use twin::{twin, TwinValues};

use crate::engine::quant::QuantType;
use crate::gguf::{GgmlType, GgufFile, GgufWriter, MetaValue, TensorData, ValueType, WriteError};
use crate::models::catalogue::{Arch, CatalogueError, Init, TensorSpec};
use crate::models::synthetic::{Synthetic, VALUE_MODEL};
use crate::util::fs::{io_err, IoError};
use crate::util::rng::{fnv1a, SplitMix64};
use std::collections::hash_map::{Entry, HashMap};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the cache keeps synthetic models (and twins written without `-o`).
pub fn cache_dir(cache: &Path) -> PathBuf {
    cache.join("synth")
}

/// Values generated per distinct (type, row length, kind, role) and tiled over larger tensors.
const CHUNK_VALUES: u64 = 1 << 20;
/// Tensors up to this many values are drawn whole (norms, biases, small projections).
const WHOLE_VALUES: u64 = 1 << 20;

/// Why a synthetic model could not be made. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error("tensor {tensor}: {reason}")]
    Shape { tensor: String, reason: String },
    #[error("cannot encode values as {ty}: {why}")]
    Type { ty: String, why: String },
    #[error("llama.cpp's quantizer chose no type for tensor {tensor}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Types {
        tensor: String,
        reason: Option<String>,
    },
    #[error("{0}")]
    Write(#[from] WriteError),
    /// No room for the file (see [`check_room`](crate::util::fs::check_room)).
    #[error("{0}")]
    Disk(String),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Source(String),
}

impl SynthError {
    /// Whether the error is the user's input (a name, a type, a source model: exit 2) rather
    /// than a failure while working (writing, or llama.cpp's quantizer choosing no type).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            SynthError::Write(_)
                | SynthError::Disk(_)
                | SynthError::Io(_)
                | SynthError::Types { .. }
        )
    }
}

/// The bytes of tensor `spec` stored as `ty`.
fn tensor_bytes(spec: &TensorSpec, ty: GgmlType) -> Result<u64, SynthError> {
    ty.n_bytes(&spec.dims).map_err(|reason| SynthError::Shape {
        tensor: spec.name.clone(),
        reason,
    })
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub arch: Arch,
    pub quant: &'static QuantType,
    /// Layers to keep (every per-layer shape stays the model's).
    pub layers: u32,
    pub seed: u64,
    /// A GGUF whose tokenizer fits the vocabulary, and the name to record for it; `None`
    /// writes token ids only.
    pub tokenizer: Option<(&'a Path, String)>,
    /// `arch` is the dense reference of an MoE entry.
    pub dense: bool,
}

/// A file written.
#[derive(Debug, Clone)]
pub struct Written {
    pub bytes: u64,
    pub tensors: usize,
    pub elapsed: Duration,
}

/// Builds the synthetic model `req` describes at `out` (through `out.partial-<pid>@<host>`, renamed
/// when complete; a failure leaves nothing under either name).
pub fn synthesize(req: &Request, out: &Path) -> Result<Written, SynthError> {
    let start = Instant::now();
    let arch = &req.arch;
    arch.check()?;
    arch.check_layers(req.layers)?;
    let specs = arch.tensors(req.layers);
    let mut meta = arch.metadata(req.layers);
    meta.push(("general.file_type".into(), MetaValue::U32(req.quant.ftype)));
    let dir = crate::util::fs::out_dir(out);
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let types = types::choose(&specs, &meta, req.quant, dir)?;
    let mut w = GgufWriter::new();
    for (k, v) in &meta {
        w.set(k, v)?;
    }
    w.set("general.quantization_version", &MetaValue::U32(2))?;
    let tokenizer = match &req.tokenizer {
        Some((path, name)) => {
            copy_tokenizer(&mut w, path, arch.vocab)?;
            w.remove(&format!("{}.vocab_size", arch.family.as_str()));
            name.clone()
        }
        None => "none (token ids only)".into(),
    };
    let synthetic = Synthetic {
        of: arch.name.to_string(),
        model: arch.display.to_string(),
        layers: req.layers,
        full_layers: arch.layers,
        seed: req.seed,
        source: arch.sources.first().unwrap_or(&"").to_string(),
        tokenizer,
        experts: Some(arch.experts).filter(|&x| x > 0),
        quant: Some(req.quant.name.to_string()),
        dense: req.dense,
        values: VALUE_MODEL,
    };
    for (k, v) in synthetic.metadata() {
        w.set(&k, &v)?;
    }
    let mut chunks = Chunks::default();
    for (spec, ty) in specs.iter().zip(&types) {
        let data = chunks.data(spec, *ty, req.seed)?;
        w.add_tensor(&spec.name, &spec.dims, *ty, data)?;
    }
    let bytes = write_file(&w, out)?;
    Ok(Written {
        bytes,
        tensors: specs.len(),
        elapsed: start.elapsed(),
    })
}

/// The weight bytes of a model built as `arch` in `quant` at full depth, with the types
/// llama.cpp's quantizer gives each tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Every tensor: what the file's data section holds.
    pub weights: u64,
    /// What one decoded token reads: every tensor but the token embedding (one row of it is
    /// read; all of it when the output shares it), with only the experts a token uses.
    pub per_token: u64,
}

/// The sizes of `arch` in `quant`, from a dry run of llama.cpp's quantizer over a skeleton
/// written (and removed) in `dir`; nothing is generated.
pub fn sizes(arch: &Arch, quant: &QuantType, dir: &Path) -> Result<Sizes, SynthError> {
    arch.check()?;
    let specs = arch.tensors(arch.layers);
    let mut meta = arch.metadata(arch.layers);
    meta.push(("general.file_type".into(), MetaValue::U32(quant.ftype)));
    let types = types::choose(&specs, &meta, quant, dir)?;
    let mut out = Sizes::default();
    for (spec, ty) in specs.iter().zip(&types) {
        let bytes = tensor_bytes(spec, *ty)?;
        out.weights += bytes;
        out.per_token += if spec.name == "token_embd.weight" && !arch.tied {
            0
        } else if spec.name.contains("_exps.") && arch.experts > 0 {
            bytes / arch.experts as u64 * arch.used as u64
        } else {
            bytes
        };
    }
    Ok(out)
}

/// Writes `w` to `out` through a partial file, after checking the disk has room.
/// A symbolic link is followed; an existing device or FIFO is refused.
fn write_file(w: &GgufWriter, out: &Path) -> Result<u64, SynthError> {
    let target = crate::util::fs::out_file(out).map_err(io_err("write", out))?;
    let out = target.as_path();
    let need = w.file_size()?;
    let dir = crate::util::fs::out_dir(out);
    // A symbolic link's file goes in the link target's directory, made when missing.
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    crate::util::fs::check_room(out, dir, need).map_err(SynthError::Disk)?;
    // A failed or interrupted write removes the partial file as it is dropped.
    let partial = crate::util::interrupt::Partial::beside(out);
    let f = partial.create().map_err(io_err("create", partial.path()))?;
    let mut bw = BufWriter::with_capacity(1 << 22, crate::util::interrupt::Stoppable(f));
    let n = w.write_to(&mut bw, None)?;
    let f = bw
        .into_inner()
        .map_err(|e| io_err("write", partial.path())(e.into_error()))?
        .0;
    f.sync_all().map_err(io_err("write", partial.path()))?;
    // An interrupt during the flush to disk: the file is not put in place.
    if crate::util::interrupt::requested() {
        let e = std::io::Error::other("interrupted");
        return Err(io_err("write", partial.path())(e).into());
    }
    partial
        .rename_to(out)
        .map_err(io_err("move into place", out))?;
    Ok(n)
}

/// Generated data, shared between tensors with the same (type, row length, kind as `u8`,
/// role): every layer's `ffn_up` tiles one chunk, which has its own scale.
#[derive(Default)]
struct Chunks(HashMap<(GgmlType, u64, u8, String), Arc<Vec<u8>>>);

impl Chunks {
    /// The data of one tensor: drawn whole when small or a router, else a chunk of whole rows
    /// tiled over it.
    fn data(
        &mut self,
        spec: &TensorSpec,
        ty: GgmlType,
        seed: u64,
    ) -> Result<TensorData, SynthError> {
        let ne0 = spec.dims[0];
        let n = spec.elements();
        let len = tensor_bytes(spec, ty)?;
        let shape_err = |e: SynthError| match e {
            SynthError::Type { ty, why } => SynthError::Shape {
                tensor: spec.name.clone(),
                reason: format!("{ty}: {why}"),
            },
            other => other,
        };
        let role = role(&spec.name);
        let role_scale = match spec.init {
            Init::Matrix | Init::Embedding => values::spread_factor(
                values::ROLE_SPREAD,
                &mut SplitMix64(seed ^ fnv1a(role.bytes())),
            ),
            _ => 1.0,
        };
        let draw = |count: u64, rng: &mut SplitMix64| {
            let mut v = values::draw(spec.init, count as usize, ne0, rng);
            v.iter_mut().for_each(|x| *x *= role_scale);
            values::encode(ty, &v, ne0 as usize).map_err(shape_err)
        };
        if n <= WHOLE_VALUES || spec.init == Init::Router {
            let mut rng = SplitMix64(seed ^ fnv1a(spec.name.bytes()));
            return Ok(TensorData::Bytes(draw(n, &mut rng)?));
        }
        let chunk = match self.0.entry((ty, ne0, spec.init as u8, role.to_string())) {
            Entry::Occupied(c) => c.get().clone(),
            Entry::Vacant(slot) => {
                let rows = (CHUNK_VALUES / ne0).clamp(1, n / ne0);
                let tag = format!("{ty}/{ne0}/{}/{role}", spec.init as u8);
                let chunk = draw(rows * ne0, &mut SplitMix64(seed ^ fnv1a(tag.bytes())))?;
                slot.insert(Arc::new(chunk)).clone()
            }
        };
        Ok(TensorData::Tiled { chunk, len })
    }
}

/// A tensor's role: its name without the `blk.N.` of its layer (`blk.3.ffn_up.weight` ->
/// `ffn_up.weight`).
fn role(name: &str) -> &str {
    match name.strip_prefix("blk.") {
        Some(rest) => rest.split_once('.').map_or(name, |(_, role)| role),
        None => name,
    }
}

/// Copies the `tokenizer.*` keys of the GGUF at `path` into `w`, padding its token list to
/// `vocab` entries (unused tokens) when the model's embedding has padded rows.
fn copy_tokenizer(w: &mut GgufWriter, path: &Path, vocab: u64) -> Result<(), SynthError> {
    let g = GgufFile::open(path).map_err(|e| SynthError::Source(e.to_string()))?;
    let mut f = std::fs::File::open(path).map_err(io_err("open", path))?;
    let n = g.n_tokens();
    if n == 0 || n > vocab {
        return Err(SynthError::Source(format!(
            "the tokenizer of {} has {n} tokens; the model needs at most {vocab}",
            path.display()
        )));
    }
    for (i, (key, value)) in g.metadata.iter().enumerate() {
        if !key.starts_with("tokenizer.") {
            continue;
        }
        let mut raw = g
            .raw_value(&mut f, i)
            .unwrap_or_else(|| Ok(Vec::new()))
            .map_err(io_err("read", path))?;
        if let MetaValue::Array(a) = value {
            if a.len == n && n < vocab {
                let unused_type = key == "tokenizer.ggml.token_type";
                pad(&mut raw, a.elem_type, vocab - n, n, unused_type);
            }
        }
        w.set_raw(key, value.value_type(), raw)?;
    }
    Ok(())
}

/// Appends `extra` padding elements to an encoded array (element type u32, length u64, then
/// the elements): [`pad_token`](crate::models::synthetic::pad_token) tokens, zero scores,
/// token type 5 (unused) where the list is `token_types`; lists of other types than
/// [`PADDED_TYPES`](crate::models::synthetic::PADDED_TYPES) are left as they are.
fn pad(raw: &mut Vec<u8>, elem: ValueType, extra: u64, from: u64, token_types: bool) {
    if raw.len() < 12 {
        return;
    }
    let len = u64::from_le_bytes(raw[4..12].try_into().unwrap_or_default()) + extra;
    raw[4..12].copy_from_slice(&len.to_le_bytes());
    for i in from..from + extra {
        match elem {
            ValueType::Str => {
                let s = crate::models::synthetic::pad_token(i);
                raw.extend_from_slice(&(s.len() as u64).to_le_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
            ValueType::F32 => raw.extend_from_slice(&0f32.to_le_bytes()),
            ValueType::I32 => {
                let v: i32 = if token_types { 5 } else { 0 };
                raw.extend_from_slice(&v.to_le_bytes())
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::quant;
    use crate::models::catalogue;

    #[test]
    fn a_role_is_the_name_without_its_layer() {
        assert_eq!(role("blk.12.ffn_up.weight"), "ffn_up.weight");
        assert_eq!(role("blk.0.attn_q.bias"), "attn_q.bias");
        assert_eq!(role("token_embd.weight"), "token_embd.weight");
        assert_eq!(role("blk.odd"), "blk.odd");
    }

    #[test]
    fn sizes_match_published_file_sizes_and_count_only_used_experts() {
        let _ = crate::engine::test_backend();
        let dir = tempfile::tempdir().unwrap();
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let t = Instant::now();
        // llama-bench prints 3.56 GiB for LLaMA-2 7B Q4_0 and 6.67 GiB for Q8_0.
        let llama = catalogue::arch("llama-2-7b").unwrap();
        for (q, want) in [("q4_0", 3.56), ("q8_0", 6.67)] {
            let s = sizes(llama, quant::parse(q).unwrap(), dir.path()).unwrap();
            assert!(
                (gib(s.weights) - want).abs() < 0.01,
                "{q}: {}",
                gib(s.weights)
            );
            // Everything but the 32000 × 4096 embedding.
            assert!(s.per_token < s.weights && s.per_token > s.weights * 95 / 100);
        }
        let moe = catalogue::arch("qwen3-30b-a3b").unwrap();
        let s = sizes(moe, quant::parse("q4_k_m").unwrap(), dir.path()).unwrap();
        // 8 of 128 experts: about a ninth of the weights.
        let share = s.per_token as f64 / s.weights as f64;
        assert!((0.08..0.16).contains(&share), "{share}");
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        eprintln!("three dry runs in {:?}", t.elapsed());
    }
}
