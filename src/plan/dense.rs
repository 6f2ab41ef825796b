//! Finding the dense reference of an MoE model: `--dense`, or the dense source an upcycled
//! model names in its metadata (`runner.upcycle.source_name` / `source_sha256` /
//! `source_size`, written by `runner moe upcycle`), looked for next to the model, in the model
//! cache, and among the known models (by sha256), and accepted when its size matches.

use super::{Invalid, Resolved};
use crate::gguf::GgufFile;
use crate::models;
use crate::models::synthetic::{Synthetic, TokenizerSource};
use crate::moe::provenance::{Provenance, KEY_SOURCE_NAME};
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The dense reference chosen, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenseRef {
    Found { path: PathBuf, how: String },
    Missing(String),
}

/// Whether a GGUF file describes an MoE model.
pub fn is_moe(g: &GgufFile) -> bool {
    g.arch_u64("expert_count").is_some_and(|n| n > 0)
}

/// The dense reference of the MoE model `moe` (at `moe_path`).
pub fn find(
    given: Option<&str>,
    moe_path: &Path,
    moe: &GgufFile,
    cache: &Path,
) -> Result<DenseRef> {
    if let Some(arg) = given {
        let path = Resolved::get(arg, cache)?.path;
        let g = GgufFile::open(&path).map_err(|e| Invalid(format!("--dense: {e}")))?;
        let why = match is_moe(&g) {
            true => Some("that model is itself an MoE model, not a dense reference".to_string()),
            false => {
                other_shape(moe, &g).map(|w| format!("{w}: not a dense reference of this model"))
            }
        };
        if let Some(why) = why {
            return Err(Invalid(format!("--dense {}: {why}", path.display())).into());
        }
        return Ok(DenseRef::Found {
            path,
            how: "--dense".into(),
        });
    }
    if let Some(spec) = synthetic_reference(moe) {
        let path = Resolved::get(&spec, cache)?.path;
        return Ok(DenseRef::Found {
            path,
            how: format!("{spec} (the synthetic model's dense reference)"),
        });
    }
    let Some(prov) = Provenance::read(moe) else {
        return Ok(DenseRef::Missing(
            "no dense reference: pass --dense MODEL (models made by `runner moe upcycle` name \
             their source themselves)"
                .into(),
        ));
    };
    let name = &prov.source_name;
    let size = (prov.source_size > 0).then_some(prov.source_size);
    let found = candidates(name, Some(&prov.source_sha256), moe_path, cache)
        .into_iter()
        .find(|p| p.is_file() && size.is_none_or(|s| p.metadata().is_ok_and(|m| m.len() == s)));
    Ok(match found {
        Some(path) => DenseRef::Found {
            path,
            how: format!("{KEY_SOURCE_NAME} in the model's metadata"),
        },
        None => DenseRef::Missing(format!(
            "the model's metadata names its dense source {name}, which is neither next to it \
             nor in the model cache: pass --dense MODEL"
        )),
    })
}

/// How a dense model's shape differs from the MoE model's, if it does: a reference must have
/// the same width, depth and vocabulary for the overhead against it to mean anything (its
/// architecture name may differ: an MoE family's dense counterpart has its own). `moe verify`
/// holds its pair to the same.
pub(crate) fn other_shape(moe: &GgufFile, dense: &GgufFile) -> Option<String> {
    let vocab = |g: &GgufFile| {
        g.tensor("token_embd.weight")
            .and_then(|t| t.dims.get(1).copied())
    };
    let shape = |g: &GgufFile| {
        [
            ("hidden size", g.arch_u64("embedding_length")),
            ("layers", g.arch_u64("block_count")),
            ("vocabulary", vocab(g)),
        ]
    };
    let name = |g: &GgufFile| g.architecture().unwrap_or("?").to_string();
    shape(moe)
        .into_iter()
        .zip(shape(dense))
        .find(|((_, a), (_, b))| a != b)
        .map(|((what, a), (_, b))| {
            let n = |x: Option<u64>| x.map_or("none".to_string(), |x| x.to_string());
            format!(
                "{what} {} ({}), the MoE model's {} ({})",
                n(b),
                name(dense),
                n(a),
                name(moe)
            )
        })
}

/// A synthetic MoE model's dense reference: the same entry, type, layers and seed, with one
/// FFN as wide as the experts a token uses. A tokenizer taken from a file cannot be found
/// again from the model, and the routing profile runs on token ids, so that reference has none.
fn synthetic_reference(moe: &GgufFile) -> Option<String> {
    let s = Synthetic::from_gguf(moe).filter(|s| s.of != "twin" && !s.dense)?;
    let none = moe.get_str("tokenizer.ggml.model") == Some("none");
    let ids = match none || TokenizerSource::is_file_label(&s.tokenizer) {
        true => ":tokenizer=none",
        false => "",
    };
    Some(format!(
        "synth:{}@{}:layers={}:seed={}:dense{ids}",
        s.of, s.quant?, s.layers, s.seed
    ))
}

/// Where the dense source may be: next to the MoE file, in the model cache under its name,
/// and the cached known model with the same sha256.
fn candidates(name: &str, sha: Option<&str>, moe_path: &Path, cache: &Path) -> Vec<PathBuf> {
    let file = Path::new(name).file_name().map(PathBuf::from);
    let mut out = Vec::new();
    if let Some(file) = &file {
        if let Some(dir) = moe_path.parent() {
            out.push(dir.join(file));
        }
        out.push(models::models_dir(cache).join(file));
    }
    if let Some(sha) = sha {
        out.extend(
            models::known_models()
                .iter()
                .filter(|m| m.sha256.eq_ignore_ascii_case(sha))
                .map(|m| models::cached_path(m, cache)),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synthetic_reference_has_the_tokenizer_it_can_find_again() {
        use crate::gguf::{GgufWriter, MetaValue};
        let dir = tempfile::tempdir().unwrap();
        let moe = |tokenizer: &str, model: &str| {
            let s = Synthetic {
                of: "qwen3-30b-a3b".into(),
                model: "Qwen3-30B-A3B".into(),
                layers: 1,
                full_layers: 48,
                seed: 42,
                source: String::new(),
                tokenizer: tokenizer.into(),
                experts: Some(128),
                quant: Some("q4_0".into()),
                dense: false,
                values: 2,
            };
            let mut w = GgufWriter::new();
            w.set("tokenizer.ggml.model", &MetaValue::Str(model.into()))
                .unwrap();
            for (k, v) in s.metadata() {
                w.set(&k, &v).unwrap();
            }
            let path = dir.path().join("moe.gguf");
            w.write_to(&mut std::fs::File::create(&path).unwrap(), None)
                .unwrap();
            GgufFile::open(&path).unwrap()
        };
        let spec = "synth:qwen3-30b-a3b@q4_0:layers=1:seed=42:dense";
        for (tokenizer, model, ids) in [
            ("qwen2.5-coder-0.5b", "gpt2", ""),
            ("none (token ids only)", "none", ":tokenizer=none"),
            ("mine.gguf (file)", "gpt2", ":tokenizer=none"),
        ] {
            let got = synthetic_reference(&moe(tokenizer, model));
            assert_eq!(got, Some(format!("{spec}{ids}")), "{tokenizer}");
        }
    }

    #[test]
    fn candidates_look_next_to_the_model_in_the_cache_and_by_hash() {
        let sha = models::known_models()[0].sha256;
        let c = candidates(
            "../x/Dense.gguf",
            Some(sha),
            Path::new("/data/moe.gguf"),
            Path::new("/cache"),
        );
        assert_eq!(c[0], Path::new("/data/Dense.gguf"));
        assert_eq!(c[1], Path::new("/cache/models/Dense.gguf"));
        assert_eq!(
            c[2],
            models::cached_path(&models::known_models()[0], Path::new("/cache"))
        );
        assert_eq!(
            candidates("", None, Path::new("m.gguf"), Path::new("/c")).len(),
            0
        );
    }
}
