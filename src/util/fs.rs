//! Writing a whole file atomically; reading a TOML file with one-line errors; whether two paths
//! name one file.

use std::io::Write;
use std::path::Path;

/// Reads and parses a TOML file; every error is one line naming the file.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.to_string().replace('\n', " ");
        format!("{}: {}", path.display(), msg.trim())
    })
}

/// Writes `contents` to `path` atomically (a temporary file beside it, renamed over it), so a
/// reader or a crash never sees half a file. The error names the path.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), WriteError> {
    let io = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    let dir = out_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    // A write that fails at any step (a full disk, say) leaves no temporary file behind.
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write {path}: {source}")]
pub struct WriteError {
    pub path: String,
    pub source: std::io::Error,
}

/// A file-system operation that failed, naming what it tried and on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct IoError {
    pub action: &'static str,
    pub path: std::path::PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Turns an `io::Error` of `action` on `path` into an [`IoError`] (for `map_err`).
pub fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError {
        action,
        path,
        source,
    }
}

/// The directory OUT goes in ("." for a bare file name).
pub fn out_dir(out: &Path) -> &Path {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `a` and `b` name the same file (through links too).
pub fn same_file(a: &Path, b: &Path) -> bool {
    // A path that does not exist yet: its directory's canonical path and its name.
    let canonical = |p: &Path| {
        p.canonicalize()
            .ok()
            .or_else(|| Some(out_dir(p).canonicalize().ok()?.join(p.file_name()?)))
    };
    if let (Some(x), Some(y)) = (canonical(a), canonical(b)) {
        if x == y {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// Bytes free on the file system holding `dir` (the disk whose mount point is the longest
/// prefix of its canonical path), when the system says.
pub fn free_space(dir: &Path) -> Option<u64> {
    let dir = dir.canonicalize().ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_or_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("a.json");
        write_atomic(&file, "one").unwrap();
        write_atomic(&file, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
        // A directory in the way: the rename fails, the error names the path and the
        // temporary file is gone.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let e = write_atomic(&blocked, "three").unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("could not write {}", blocked.display())),
            "{e}"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    }
}
