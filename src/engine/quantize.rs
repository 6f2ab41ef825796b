//! Quantizing a GGUF model with llama.cpp's own quantize API, into a content-addressed cache.
//!
//! [`quantize_cached`] turns a source model into `<cache>/quant/<sha16>-<type>-<build>.gguf`:
//! the source's sha256 (see [`source_sha256`]), the target type and the llama.cpp build name
//! the output, so a file made by another build is never taken for this one's. The source is
//! validated in Rust first (llama.cpp may abort the process on a malformed file), llama.cpp
//! writes to a private `.partial-<pid>@<host>` file that is checked and renamed into place, and a
//! failure removes it; one left by a process that has ended (or untouched for a day) is removed
//! when the cache is next used ([`remove_stale_partials`]), as are those of synthetic models.

use super::quant::QuantType;
use crate::gguf::{GgufError, GgufFile};
use crate::models::FetchError;
use crate::util::fs::{io_err, write_atomic, IoError};
use crate::util::interrupt::{partial_owner, Partial};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_sys_2 as sys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// A quantized model file in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantized {
    /// Where the quantized file is.
    pub path: PathBuf,
    /// Whether it was already in the cache (nothing was quantized).
    pub cached: bool,
    /// How long quantizing took (llama.cpp's work and the check of its output); zero when cached.
    pub elapsed: Duration,
    /// Whether the source was itself quantized, so the weights went through two quantizations
    /// (sizes and speeds stay representative of the type; quality does not).
    pub requantized: bool,
}

/// Why quantizing failed. Every message is one line naming the file(s).
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// The source is not a usable GGUF file (its own message names it).
    #[error("cannot quantize: {0}")]
    Source(#[source] GgufError),
    /// llama.cpp reported a failure.
    #[error("llama.cpp could not quantize {} to {qtype}{}", src.display(), reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Failed {
        src: PathBuf,
        qtype: &'static str,
        reason: Option<String>,
    },
    /// llama.cpp reported success but wrote a file that does not parse.
    #[error("quantizing {} to {qtype} produced a bad file: {err}", src.display())]
    BadOutput {
        src: PathBuf,
        qtype: &'static str,
        #[source]
        err: GgufError,
    },
    /// llama.cpp wrote a file of another type than asked for (removed, not cached).
    #[error("quantizing {} to {qtype} produced a file of type {got}; it was not kept", src.display())]
    WrongType {
        src: PathBuf,
        qtype: &'static str,
        got: String,
    },
    /// A path llama.cpp cannot be given (it holds a NUL byte, or is not UTF-8 off Unix).
    #[error("{}: this path cannot be passed to llama.cpp", path.display())]
    BadPath { path: PathBuf },
    /// The source hash given is not a sha256, so it cannot name a cache entry.
    #[error("'{sha256}' is not a sha256 (64 hex digits) for {}", src.display())]
    BadSha256 { src: PathBuf, sha256: String },
    /// Hashing the source failed.
    #[error("cannot hash the source: {0}")]
    Hash(#[source] FetchError),
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// The directory holding quantized models and the source-hash memo: `<cache>/quant`.
fn quant_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("quant")
}

/// The llama.cpp build as a file-name part: [`super::info::BINDINGS`] in `[a-z0-9.-]`,
/// e.g. `llama-cpp-2-0.1.160-llama-cpp-sys-2-0.1.161`.
pub(crate) fn build_slug() -> String {
    slug(super::info::BINDINGS)
}

/// Lower-cases `s`, turns every run of characters outside `[a-z0-9.]` into one `-`, and trims
/// `-` at both ends.
fn slug(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let parts = lower.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'));
    parts
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// Where the quantization `qt` of the source with sha256 `src_sha256` lives in the cache:
/// `<cache_dir>/quant/<first 16 hex of the sha>-<qt.name>-<build slug>.gguf`.
pub fn cache_path(cache_dir: &Path, src_sha256: &str, qt: &QuantType) -> PathBuf {
    let sha: String = src_sha256
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .take(16)
        .collect();
    quant_dir(cache_dir).join(format!("{sha}-{}-{}.gguf", qt.name, build_slug()))
}

/// Whether the source's weights are already quantized: its `general.file_type` is not F32,
/// F16 or BF16 (without a file type, whether any tensor has a block-quantized type).
fn is_quantized(g: &GgufFile) -> bool {
    match g.file_type() {
        Some(0 | 1 | 32) => false,
        Some(_) => true,
        None => g.tensors.iter().any(|t| t.ggml_type.is_quantized()),
    }
}

/// The cached file at `path` if it is a complete GGUF of type `qt`.
fn usable_cached(path: &Path, qt: &QuantType) -> bool {
    GgufFile::open(path).is_ok_and(|g| g.file_type() == Some(u64::from(qt.ftype)))
}

/// `path` as llama.cpp takes it: its bytes on Unix, UTF-8 elsewhere.
fn c_path(path: &Path) -> Result<CString, QuantizeError> {
    let utf8 = cfg!(unix) || path.to_str().is_some();
    match CString::new(path.as_os_str().as_encoded_bytes()) {
        Ok(c) if utf8 => Ok(c),
        _ => Err(QuantizeError::BadPath {
            path: path.to_path_buf(),
        }),
    }
}

/// Quantizes `src` (sha256 `src_sha256`, 64 hex digits) to `qt` with `threads` threads (0: llama.cpp picks
/// one per hardware thread), or returns the cached result. `backend` proves llama.cpp was
/// initialised (see [`super::init`]).
///
/// The source's header and tensor extents are validated first, so a bad source is a clean
/// error rather than an abort inside llama.cpp. A cached file is used when it parses and has
/// the requested type. Otherwise llama.cpp writes `<final>.partial-<pid>@<host>` beside the final
/// path (allowed to requantize when the source is already quantized); the output is checked
/// to parse and to carry `qt`'s file type, then renamed into place. On any failure the
/// partial file is removed.
pub fn quantize_cached(
    _backend: &LlamaBackend,
    src: &Path,
    src_sha256: &str,
    qt: &QuantType,
    cache_dir: &Path,
    threads: u32,
) -> Result<Quantized, QuantizeError> {
    if src_sha256.len() != 64 || !src_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(QuantizeError::BadSha256 {
            src: src.to_path_buf(),
            sha256: src_sha256.to_string(),
        });
    }
    let source = GgufFile::open(src).map_err(QuantizeError::Source)?;
    let requantized = is_quantized(&source);
    let path = cache_path(cache_dir, src_sha256, qt);
    if usable_cached(&path, qt) {
        return Ok(Quantized {
            path,
            cached: true,
            elapsed: Duration::ZERO,
            requantized,
        });
    }

    let dir = quant_dir(cache_dir);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    remove_stale_partials(cache_dir);
    // llama.cpp leaves a partial output on failure: it goes when `partial` is dropped.
    let partial = Partial::beside(&path);
    let c_src = c_path(src)?;
    let c_out = c_path(partial.path())?;

    // SAFETY: takes no arguments and returns a struct by value (its pointer fields null).
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(threads).unwrap_or(i32::MAX);
    params.ftype = qt.ftype as sys::llama_ftype;
    params.allow_requantize = requantized;

    let _one = super::log::quantizer();
    let start = Instant::now();
    // SAFETY: both paths are NUL-terminated strings and `params` a fully initialised struct
    // from llama_model_quantize_default_params (its pointers null), all alive for the call.
    // llama.cpp catches its own exceptions and returns non-zero on failure; the source was
    // validated above, since the loader may abort on a malformed file.
    let rc = unsafe { sys::llama_model_quantize(c_src.as_ptr(), c_out.as_ptr(), &params) };
    if rc != 0 {
        return Err(QuantizeError::Failed {
            src: src.to_path_buf(),
            qtype: qt.name,
            reason: super::log::last_reason(),
        });
    }
    let out = GgufFile::open(partial.path()).map_err(|err| QuantizeError::BadOutput {
        src: src.to_path_buf(),
        qtype: qt.name,
        err,
    })?;
    if out.file_type() != Some(u64::from(qt.ftype)) {
        return Err(QuantizeError::WrongType {
            src: src.to_path_buf(),
            qtype: qt.name,
            got: out.file_type().map_or("none".to_string(), |t| {
                crate::gguf::file_type_name(t).map_or_else(|| t.to_string(), str::to_string)
            }),
        });
    }
    partial
        .rename_to(&path)
        .map_err(io_err("move the quantized file to", &path))?;
    Ok(Quantized {
        path,
        cached: false,
        elapsed: start.elapsed(),
        requantized,
    })
}

/// A partial file nothing has written for this long is left over, whatever its process id
/// says (that id may have gone to another process since).
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Removes the partial outputs (`<final>.partial-<pid>@<host>`) in the cache's quantized and
/// synthetic models whose process has ended, or that nothing has written for a day: a
/// quantize or a synthetic model's write stopped midway (a kill, a second Ctrl-C, a sweep
/// stopping its cell's process) leaves one behind. The fresh partial of a process still
/// running, another runner writing into the same cache, is left alone.
pub fn remove_stale_partials(cache_dir: &Path) {
    for dir in [quant_dir(cache_dir), super::synth::cache_dir(cache_dir)] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let owner = entry.file_name().to_str().and_then(partial_owner);
            if owner.is_some_and(|(pid, here)| stale(&entry, pid, here)) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether `entry`, a partial file of process `pid` (on this host when `here`), is left over:
/// its process has ended, or nothing has written it for [`STALE_AFTER`]. This process's own
/// are never; another host's process (a container sharing the cache) cannot be asked about, so
/// its file goes only when untouched for that long.
fn stale(entry: &fs::DirEntry, pid: u32, here: bool) -> bool {
    if here && pid == std::process::id() {
        return false;
    }
    if here && !alive(pid) {
        return true;
    }
    crate::util::fs::untouched_for(&entry.path(), STALE_AFTER)
}

/// Whether process `pid` exists (signal 0 checks without sending anything); a process of
/// another user, or a pid that cannot be asked about, counts as alive.
fn alive(pid: u32) -> bool {
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    if pid == std::process::id() {
        return true;
    }
    match i32::try_from(pid) {
        Ok(raw) if raw > 0 => !matches!(
            kill(Pid::from_raw(raw), None),
            Err(nix::errno::Errno::ESRCH)
        ),
        _ => true,
    }
}

/// One memoised hash in `hashes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HashEntry {
    size: u64,
    mtime_ns: u64,
    sha256: String,
}

/// `<cache>/quant/hashes.json`: canonical path -> size, modification time and sha256.
fn hashes_path(cache_dir: &Path) -> PathBuf {
    quant_dir(cache_dir).join("hashes.json")
}

fn read_hashes(path: &Path) -> BTreeMap<String, HashEntry> {
    // A missing or damaged memo only costs a re-hash.
    crate::util::fs::read_input_bytes(path, crate::util::fs::Input::Config)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_hashes(path: &Path, hashes: &BTreeMap<String, HashEntry>) -> io::Result<()> {
    let json = serde_json::to_string_pretty(hashes).map_err(io::Error::other)?;
    write_atomic(path, &json).map_err(|e| e.source)
}

/// The sha256 (lower-case hex) of the file at `path`, memoised in `<cache_dir>/quant/hashes.json`
/// under its canonical path, size and modification time, so a large source is hashed once.
/// A memo that cannot be written is not an error: the file is hashed again next time.
pub fn source_sha256(path: &Path, cache_dir: &Path) -> Result<String, QuantizeError> {
    let canonical = fs::canonicalize(path).map_err(io_err("resolve", path))?;
    let meta = fs::metadata(&canonical).map_err(io_err("read the metadata of", path))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    let key = canonical.to_string_lossy().into_owned();
    let memo = hashes_path(cache_dir);
    let mut hashes = read_hashes(&memo);
    let fresh = |e: &&HashEntry| e.size == meta.len() && Some(e.mtime_ns) == mtime_ns;
    if let Some(e) = hashes.get(&key).filter(fresh) {
        return Ok(e.sha256.clone());
    }
    let sha256 = crate::models::sha256_file(&canonical).map_err(QuantizeError::Hash)?;
    if let Some(mtime_ns) = mtime_ns {
        let entry = HashEntry {
            size: meta.len(),
            mtime_ns,
            sha256: sha256.clone(),
        };
        hashes.insert(key, entry);
        let _ = write_hashes(&memo, &hashes);
    }
    Ok(sha256)
}

#[cfg(test)]
#[path = "quantize_tests.rs"]
mod tests;
