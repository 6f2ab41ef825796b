//! Quantizing a GGUF model with llama.cpp's own quantize API, into a content-addressed cache.
//!
//! [`quantize_cached`] turns a source model into `<cache>/quant/<sha16>-<type>-<build>.gguf`:
//! the source's sha256 (see [`source_sha256`]), the target type and the llama.cpp build name
//! the output, so a file made by another build is never taken for this one's. The source is
//! validated in Rust first (llama.cpp may abort the process on a malformed file), llama.cpp
//! writes to a private `.partial-<pid>` file that is checked and renamed into place, and a
//! failure removes it.

use super::quant::QuantType;
use crate::gguf::{GgufError, GgufFile};
use crate::models::FetchError;
use crate::util::fs::{io_err, IoError};
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
    /// llama.cpp wrote a file of another type than asked for.
    #[error("quantizing {} to {qtype} produced {} of type {got}", src.display(), out.display())]
    WrongType {
        src: PathBuf,
        out: PathBuf,
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
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
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

/// A file removed when dropped unless kept: llama.cpp leaves a partial output on failure.
struct PartialFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn c_path(path: &Path) -> Result<CString, QuantizeError> {
    let bad = || QuantizeError::BadPath {
        path: path.to_path_buf(),
    };
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_str().ok_or_else(bad)?.as_bytes().to_vec();
    CString::new(bytes).map_err(|_| bad())
}

/// Quantizes `src` (sha256 `src_sha256`, 64 hex digits) to `qt` with `threads` threads (0: llama.cpp picks
/// one per hardware thread), or returns the cached result. `backend` proves llama.cpp was
/// initialised (see [`super::init`]).
///
/// The source's header and tensor extents are validated first, so a bad source is a clean
/// error rather than an abort inside llama.cpp. A cached file is used when it parses and has
/// the requested type. Otherwise llama.cpp writes `<final>.partial-<pid>` beside the final
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
    let mut partial_name = path.file_name().unwrap_or_default().to_os_string();
    partial_name.push(format!(".partial-{}", std::process::id()));
    let mut partial = PartialFile {
        path: path.with_file_name(partial_name),
        keep: false,
    };
    let c_src = c_path(src)?;
    let c_out = c_path(&partial.path)?;

    // SAFETY: takes no arguments and returns a struct by value (its pointer fields null).
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(threads).unwrap_or(i32::MAX);
    params.ftype = qt.ftype as sys::llama_ftype;
    params.allow_requantize = requantized;

    // Drop warnings left from earlier calls, so a failure reports its own reason.
    let _ = super::log::last_reason();
    let _one = super::log::QUANTIZE
        .lock()
        .unwrap_or_else(|e| e.into_inner());
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
    let out = GgufFile::open(&partial.path).map_err(|err| QuantizeError::BadOutput {
        src: src.to_path_buf(),
        qtype: qt.name,
        err,
    })?;
    if out.file_type() != Some(u64::from(qt.ftype)) {
        return Err(QuantizeError::WrongType {
            src: src.to_path_buf(),
            out: path,
            qtype: qt.name,
            got: match out.file_type() {
                Some(t) => {
                    crate::gguf::file_type_name(t).map_or_else(|| t.to_string(), str::to_string)
                }
                None => "none".to_string(),
            },
        });
    }
    fs::rename(&partial.path, &path).map_err(io_err("move the quantized file to", &path))?;
    partial.keep = true;
    Ok(Quantized {
        path,
        cached: false,
        elapsed: start.elapsed(),
        requantized,
    })
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
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_hashes(path: &Path, hashes: &BTreeMap<String, HashEntry>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let json = serde_json::to_vec_pretty(hashes).map_err(io::Error::other)?;
    fs::write(&tmp, json)
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
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
    if let Some(mtime_ns) = mtime_ns {
        if let Some(e) = hashes.get(&key) {
            if e.size == meta.len() && e.mtime_ns == mtime_ns {
                return Ok(e.sha256.clone());
            }
        }
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
mod tests {
    use super::*;
    use crate::engine::quant;
    use std::sync::{Mutex, MutexGuard};

    const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

    fn backend() -> &'static LlamaBackend {
        crate::engine::test_backend()
    }

    /// Quantizing tests take turns: they share llama.cpp's log and time their runs.
    fn serial() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn leftovers(cache: &Path) -> Vec<String> {
        fs::read_dir(quant_dir(cache))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".partial-") || n.contains(".tmp-"))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn slugs_keep_only_safe_characters() {
        assert_eq!(
            slug("llama-cpp-2 0.1.160 / llama-cpp-sys-2 0.1.161"),
            "llama-cpp-2-0.1.160-llama-cpp-sys-2-0.1.161"
        );
        assert_eq!(slug("  A_B//c "), "a-b-c");
        let s = build_slug();
        assert!(!s.is_empty());
        assert!(s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'));
    }

    #[test]
    fn cache_path_is_stable_and_differs_per_type_and_source() {
        let cache = Path::new("/cache");
        let q4 = quant::parse("q4_0").unwrap();
        let q8 = quant::parse("q8_0").unwrap();
        let p = cache_path(cache, SMOLLM2_SHA256, q4);
        assert_eq!(p, cache_path(cache, SMOLLM2_SHA256, q4));
        assert_eq!(
            p,
            Path::new("/cache/quant").join(format!("b179c9523d0e6a0f-q4_0-{}.gguf", build_slug()))
        );
        assert_eq!(p, cache_path(cache, &SMOLLM2_SHA256.to_uppercase(), q4));
        assert_ne!(p, cache_path(cache, SMOLLM2_SHA256, q8));
        let other = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
        assert_ne!(p, cache_path(cache, other, q4));
    }

    #[test]
    fn source_hashes_are_memoised_by_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let file = dir.path().join("model.gguf");
        fs::write(&file, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(source_sha256(&file, &cache).unwrap(), abc);
        let memo = read_hashes(&hashes_path(&cache));
        let key = fs::canonicalize(&file)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(memo[&key].sha256, abc);
        assert_eq!(memo[&key].size, 3);
        // Another size: hashed again and the memo updated.
        fs::write(&file, b"abcd").unwrap();
        let abcd = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";
        assert_eq!(source_sha256(&file, &cache).unwrap(), abcd);
        assert_eq!(read_hashes(&hashes_path(&cache))[&key].sha256, abcd);
        assert!(leftovers(&cache).is_empty());
        // A damaged memo is ignored and rewritten.
        fs::write(hashes_path(&cache), b"{not json").unwrap();
        assert_eq!(source_sha256(&file, &cache).unwrap(), abcd);
        assert_eq!(read_hashes(&hashes_path(&cache))[&key].sha256, abcd);
        // A missing file is a one-line error naming it.
        let err = source_sha256(&dir.path().join("nope.gguf"), &cache).unwrap_err();
        assert!(err.to_string().contains("nope.gguf"), "{err}");
    }

    #[test]
    fn source_sha256_of_the_real_model_is_served_from_the_memo() {
        let model = crate::util::test_model();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(source_sha256(&model, dir.path()).unwrap(), SMOLLM2_SHA256);
        let memo_path = hashes_path(dir.path());
        let mut memo = read_hashes(&memo_path);
        let key = fs::canonicalize(&model)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(memo[&key].sha256, SMOLLM2_SHA256);
        // Plant another hash under the same size and mtime: the next call must return it,
        // which proves the file was not read again.
        memo.get_mut(&key).unwrap().sha256 = "0".repeat(64);
        write_hashes(&memo_path, &memo).unwrap();
        assert_eq!(source_sha256(&model, dir.path()).unwrap(), "0".repeat(64));
    }

    #[test]
    fn quantizes_the_real_model_and_serves_the_cache() {
        let model = crate::util::test_model();
        let backend = backend();
        let _turn = serial();
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path();
        for name in ["q8_0", "q4_0"] {
            let qt = quant::parse(name).unwrap();
            let q = quantize_cached(backend, &model, SMOLLM2_SHA256, qt, cache, 2)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!q.cached, "{name}");
            assert!(q.requantized, "{name}: the source is Q4_1");
            assert!(q.elapsed > Duration::ZERO, "{name}");
            assert_eq!(q.path, cache_path(cache, SMOLLM2_SHA256, qt));
            let g = GgufFile::open(&q.path).unwrap();
            assert_eq!(g.file_type(), Some(u64::from(qt.ftype)), "{name}");
            assert_eq!(g.architecture(), Some("llama"));
            assert_eq!(
                g.tensors.len(),
                GgufFile::open(&model).unwrap().tensors.len()
            );

            let again = quantize_cached(backend, &model, SMOLLM2_SHA256, qt, cache, 2).unwrap();
            assert!(again.cached, "{name}");
            assert_eq!(again.path, q.path);
            assert_eq!(again.elapsed, Duration::ZERO);
            assert!(again.requantized);
        }
        assert!(leftovers(cache).is_empty(), "{:?}", leftovers(cache));
        // llama.cpp loads what it wrote.
        let q4 = cache_path(cache, SMOLLM2_SHA256, quant::parse("q4_0").unwrap());
        let opts = crate::engine::LoadOptions {
            n_gpu_layers: 0,
            use_mmap: true,
        };
        let loaded = crate::engine::Model::load(backend, &q4, opts).unwrap();
        assert_eq!(loaded.info.file_type.as_deref(), Some("Q4_0"));
        assert!(
            loaded.info.description.contains("Q4_0"),
            "{}",
            loaded.info.description
        );
        drop(loaded);
        // Q8_0 keeps more bits than Q4_0.
        let size = |n: &str| {
            let p = cache_path(cache, SMOLLM2_SHA256, quant::parse(n).unwrap());
            fs::metadata(p).unwrap().len()
        };
        assert!(size("q8_0") > size("q4_0"));
    }

    #[test]
    fn a_damaged_cache_file_is_replaced() {
        let model = crate::util::test_model();
        let backend = backend();
        let _turn = serial();
        let dir = tempfile::tempdir().unwrap();
        let qt = quant::parse("q8_0").unwrap();
        let path = cache_path(dir.path(), SMOLLM2_SHA256, qt);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"GGUF but not really").unwrap();
        let q = quantize_cached(backend, &model, SMOLLM2_SHA256, qt, dir.path(), 2).unwrap();
        assert!(!q.cached);
        assert_eq!(q.path, path);
        assert!(GgufFile::open(&path).is_ok());
    }

    #[test]
    fn a_truncated_source_is_a_clean_error() {
        let model = crate::util::test_model();
        let backend = backend();
        let _turn = serial();
        let dir = tempfile::tempdir().unwrap();
        let bytes = fs::read(&model).unwrap();
        let src = dir.path().join("truncated.gguf");
        fs::write(&src, &bytes[..bytes.len() / 2]).unwrap();
        let cache = dir.path().join("cache");
        let qt = quant::parse("q8_0").unwrap();
        let err = quantize_cached(backend, &src, SMOLLM2_SHA256, qt, &cache, 2).unwrap_err();
        assert!(matches!(err, QuantizeError::Source(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("truncated.gguf") && msg.contains("truncated"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        assert!(leftovers(&cache).is_empty());
        assert!(!cache_path(&cache, SMOLLM2_SHA256, qt).exists());
    }

    #[test]
    fn a_source_hash_that_is_not_a_sha256_is_refused() {
        let model = crate::util::test_model();
        let backend = backend();
        let dir = tempfile::tempdir().unwrap();
        let qt = quant::parse("q8_0").unwrap();
        for bad in ["", "b179c9523d0e6a0f", &SMOLLM2_SHA256.replace('b', "x")] {
            let err = quantize_cached(backend, &model, bad, qt, dir.path(), 2).unwrap_err();
            assert!(matches!(err, QuantizeError::BadSha256 { .. }), "{err}");
        }
        assert!(!quant_dir(dir.path()).exists());
    }

    #[test]
    fn a_failed_quantize_leaves_no_partial_file() {
        let model = crate::util::test_model();
        let backend = backend();
        let _turn = serial();
        // A structurally valid file whose last tensor holds NaNs: llama.cpp opens its output,
        // then refuses the tensor's data midway.
        let dir = tempfile::tempdir().unwrap();
        let g = GgufFile::open(&model).unwrap();
        let last = g.tensors.iter().max_by_key(|t| t.offset).unwrap();
        let mut bytes = fs::read(&model).unwrap();
        let start = usize::try_from(g.data_offset + last.offset).unwrap();
        let end = start + usize::try_from(last.n_bytes).unwrap();
        bytes[start..end].fill(0xFF);
        let src = dir.path().join("nan.gguf");
        fs::write(&src, &bytes).unwrap();
        drop(bytes);
        let cache = dir.path().join("cache");
        let qt = quant::parse("q8_0").unwrap();
        let sha = "feed".repeat(16);
        let err = quantize_cached(backend, &src, &sha, qt, &cache, 2).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, QuantizeError::Failed { .. }), "{msg}");
        assert!(msg.contains("nan.gguf") && msg.contains("q8_0"), "{msg}");
        assert!(msg.contains(&last.name), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
        assert!(!cache_path(&cache, &sha, qt).exists());
    }
}
