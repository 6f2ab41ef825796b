//! A twin: a random-weight copy of a real GGUF, with its header, tensor names, shapes and
//! types, and new values. The twin of a fetchable model must decode at the real file's speed;
//! that is the check that synthetic models measure what real ones would.

use super::{write_file, Chunks, SynthError, Written};
use crate::gguf::{GgufFile, GgufWriter, TensorData};
use crate::models::catalogue::{Init, TensorSpec};
use crate::models::synthetic::{Synthetic, VALUE_MODEL};
use crate::util::fs::io_err;
use crate::util::rng::{fnv1a, SplitMix64};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How a twin's values are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwinValues {
    /// Well-scaled random values quantized by ggml, as for synthetic models.
    Scaled,
    /// Plain random bytes (invalid scales become NaN or infinity): the contrast that shows why
    /// values must be scaled.
    RandomBytes,
}

/// How a tensor's values are drawn, from its name.
fn init_of(name: &str) -> Init {
    let has = |s: &str| name.contains(s);
    if has("norm") {
        Init::Norm
    } else if has("ffn_gate_inp") {
        Init::Router
    } else if name.ends_with(".bias") || has("ssm_conv1d") || has("ssm_dt") {
        Init::Bias
    } else if name.ends_with("ssm_a") {
        Init::Decay
    } else if has("rope_freqs") {
        Init::One
    } else if has("attn_sinks") {
        Init::Zero
    } else if has("token_embd") {
        Init::Embedding
    } else {
        Init::Matrix
    }
}

/// Writes a random-weight copy of the GGUF at `src` to `out`.
pub fn twin(src: &Path, out: &Path, values: TwinValues, seed: u64) -> Result<Written, SynthError> {
    let start = Instant::now();
    let g = GgufFile::open(src).map_err(|e| SynthError::Source(e.to_string()))?;
    let mut f = std::fs::File::open(src).map_err(io_err("open", src))?;
    let mut w = GgufWriter::new();
    for (i, (key, value)) in g.metadata.iter().enumerate() {
        let raw = g
            .raw_value(&mut f, i)
            .unwrap_or_else(|| Ok(Vec::new()))
            .map_err(io_err("read", src))?;
        w.set_raw(key, value.value_type(), raw)?;
    }
    let name = crate::util::fs::file_name(src);
    let layers = g.arch_u64("block_count").unwrap_or(0) as u32;
    let synthetic = Synthetic {
        of: "twin".into(),
        model: name.clone(),
        layers,
        full_layers: layers,
        seed,
        source: format!(
            "twin of {name}{}",
            match values {
                TwinValues::Scaled => "",
                TwinValues::RandomBytes => " (random bytes)",
            }
        ),
        tokenizer: "the source's".into(),
        experts: g
            .arch_u64("expert_count")
            .map(|x| x as u32)
            .filter(|&x| x > 0),
        quant: None,
        dense: false,
        values: VALUE_MODEL,
    };
    for (k, v) in synthetic.metadata() {
        w.set(&k, &v)?;
    }
    let mut chunks = Chunks::default();
    let mut rng = SplitMix64(seed ^ fnv1a("random bytes".bytes()));
    let noise = Arc::new(
        (0..1 << 20)
            .map(|_| rng.next_u64() as u8)
            .collect::<Vec<u8>>(),
    );
    for t in &g.tensors {
        let data = match values {
            TwinValues::Scaled => {
                let spec = TensorSpec {
                    name: t.name.clone(),
                    dims: t.dims.clone(),
                    init: init_of(&t.name),
                    source_type: t.ggml_type,
                };
                chunks.data(&spec, t.ggml_type, seed)?
            }
            TwinValues::RandomBytes => TensorData::Tiled {
                chunk: noise.clone(),
                len: t.n_bytes,
            },
        };
        w.add_tensor(&t.name, &t.dims, t.ggml_type, data)?;
    }
    let bytes = write_file(&w, out)?;
    Ok(Written {
        bytes,
        tensors: g.tensors.len(),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_say_how_values_are_drawn() {
        assert_eq!(init_of("blk.3.attn_norm.weight"), Init::Norm);
        assert_eq!(init_of("blk.3.ffn_gate_inp.weight"), Init::Router);
        assert_eq!(init_of("blk.3.attn_q.bias"), Init::Bias);
        assert_eq!(init_of("blk.3.ssm_a"), Init::Decay);
        assert_eq!(init_of("token_embd.weight"), Init::Embedding);
        assert_eq!(init_of("blk.0.ffn_down_exps.weight"), Init::Matrix);
    }
}
