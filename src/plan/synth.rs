//! Synthetic models on demand: a `synth:` model argument (or `runner models synth`) is built
//! once into the cache (`<cache>/synth/`) and reused, with the tokenizer of a fetchable model
//! of its family where the catalogue names one, or of a GGUF file given as `tokenizer=FILE`.

use super::Invalid;
use crate::engine::{quant, quantize, synth};
use crate::models::{
    self,
    synthetic::{SynthSpec, TokenizerSource},
};
use std::path::{Path, PathBuf};

/// Where the cache keeps synthetic models.
pub fn synth_dir(cache: &Path) -> PathBuf {
    synth::cache_dir(cache)
}

/// The file `spec` is cached as.
pub fn cached_path(spec: &SynthSpec, cache: &Path) -> PathBuf {
    synth_dir(cache).join(spec.file_name(&quantize::build_slug()))
}

/// Builds the model `spec` names at `out`, fetching its tokenizer's model first when it has
/// one (and `spec` does not ask for token ids only). Progress goes to stderr.
pub fn build(spec: &SynthSpec, cache: &Path, out: &Path) -> anyhow::Result<synth::Written> {
    let arch = spec.entry();
    let quant = quant::parse_for_synth(&spec.quant_name(), arch.experts > 0)
        .map_err(|e| Invalid(format!("{}: {e}", arch.name)))?;
    crate::engine::init(false)?;
    // What a write stopped midway (a kill, a second Ctrl-C) left in the cache goes first.
    quantize::remove_stale_partials(cache);
    let tokenizer = match (&spec.tokenizer, arch.tokenizer) {
        (TokenizerSource::File { path, .. }, _) => {
            Some((path.clone(), TokenizerSource::file_label(path)))
        }
        (TokenizerSource::Entry, Some(name)) => {
            let known = models::find(name)
                .ok_or_else(|| anyhow::anyhow!("the tokenizer model {name} is not known"))?;
            let path = models::fetch(known, cache, &models::FetchOptions::default())?;
            Some((path, name.to_string()))
        }
        _ => None,
    };
    eprintln!(
        "making synthetic {} ({}, {} of {} layers, seed {}) at {}",
        arch.display,
        quant.display,
        spec.layers(),
        arch.layers,
        spec.seed,
        out.display()
    );
    let req = synth::Request {
        arch,
        quant,
        layers: spec.layers(),
        seed: spec.seed,
        tokenizer: tokenizer.as_ref().map(|(p, n)| (p.as_path(), n.clone())),
        dense: spec.dense,
    };
    Ok(synth::synthesize(&req, out)?)
}

/// The cached file of `spec`, built on first use, and made again when the file there does not
/// read as a whole GGUF (cut short, say), with a warning.
pub fn cached(spec: &SynthSpec, cache: &Path) -> anyhow::Result<PathBuf> {
    let path = cached_path(spec, cache);
    if path.is_file() {
        match crate::gguf::GgufFile::open(&path) {
            Ok(_) => return Ok(path),
            Err(e) => eprintln!(
                "warning: {}: the cached synthetic model is damaged ({e}); making it again",
                path.display()
            ),
        }
    }
    build(spec, cache, &path)?;
    Ok(path)
}

/// Refuses a synthetic model without a tokenizer where prompts must be tokenized.
pub fn needs_text(spec: &SynthSpec, what: &str) -> Result<(), Invalid> {
    let hint = match (&spec.tokenizer, spec.arch.tokenizer) {
        (TokenizerSource::File { .. }, _) | (TokenizerSource::Entry, Some(_)) => return Ok(()),
        (TokenizerSource::None, Some(_)) => "leave out tokenizer=none",
        _ => "add tokenizer=FILE (a GGUF of the same family)",
    };
    Err(Invalid(format!(
        "synth:{} has no tokenizer (token ids only), so it cannot run {what}: use `runner bench`, or {hint}",
        spec.arch.name,
    )))
}
