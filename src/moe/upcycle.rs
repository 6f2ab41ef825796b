//! `runner moe upcycle` on files: checks DENSE and OUT, then writes OUT atomically (a temporary
//! file beside OUT, checked and renamed into place only when complete), streaming tensor data
//! from DENSE.

use super::error::UpcycleError;
use super::provenance::Provenance;
use super::transform::{self, DenseLayout};
use super::UpcycleOptions;
use crate::gguf::GgufFile;
use crate::util::fs::{file_name, out_dir, same_file};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Buffer between the writer and OUT.
const WRITE_BUFFER: usize = 1 << 20;

/// What an upcycle wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    pub out: PathBuf,
    pub layout: DenseLayout,
    pub provenance: Provenance,
    /// Size of OUT in bytes.
    pub out_bytes: u64,
    /// Bytes of the dense FFN tensors, and of the experts and routers that replaced them.
    pub dense_ffn_bytes: u64,
    pub expert_bytes: u64,
    pub router_bytes: u64,
    /// From the start of the command to OUT renamed into place (hashing DENSE included).
    pub elapsed: Duration,
}

/// Upcycles the dense model at `input` into an MoE at `out`. `known_sha256` is DENSE's sha256
/// when already verified (a fetched known model); otherwise the file is hashed.
pub fn upcycle(
    input: &Path,
    out: &Path,
    opts: &UpcycleOptions,
    known_sha256: Option<String>,
) -> Result<Summary, UpcycleError> {
    let start = Instant::now();
    opts.validate()?;
    check_output(input, out)?;
    let g = GgufFile::open(input)?;
    transform::check_dense(input, &g)?;
    let sha256 = match known_sha256 {
        Some(s) => s,
        None => crate::models::sha256_file(input)
            .map_err(|e| io_err(input)(std::io::Error::other(e.to_string())))?,
    };
    let provenance = Provenance::new(file_name(input), sha256, g.file_size, opts);
    let mut src = File::open(input).map_err(io_err(input))?;
    let plan = transform::plan(input, &g, &mut src, opts, &provenance)?;
    let out_bytes = write_atomically(out, &plan.writer, &mut src)?;
    Ok(Summary {
        out: out.to_path_buf(),
        layout: plan.layout,
        provenance,
        out_bytes,
        dense_ffn_bytes: plan.dense_ffn_bytes,
        expert_bytes: plan.expert_bytes,
        router_bytes: plan.router_bytes,
        elapsed: start.elapsed(),
    })
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> UpcycleError + '_ {
    move |err| UpcycleError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// OUT must name a file, not the input itself; its directory (a symbolic link's: that of the
/// file it points to) is created when missing, as every other writer does.
pub fn check_output(input: &Path, out: &Path) -> Result<(), UpcycleError> {
    let bad = |reason: String| UpcycleError::BadOutput {
        path: out.to_path_buf(),
        reason,
    };
    if out.is_dir() {
        return Err(bad("is a directory; give the MoE a file name".into()));
    }
    let target = match crate::util::fs::out_file(out) {
        Ok(t) => t,
        Err(e) => return Err(bad(e.to_string())),
    };
    let Some(file_name) = target.file_name() else {
        return Err(bad("does not name a file".into()));
    };
    let dir = out_dir(&target);
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(bad(format!(
            "could not create directory {}: {e}",
            dir.display()
        )));
    }
    if same_file(input, &dir.join(file_name)) {
        return Err(bad("is the input file; write the MoE to a new file".into()));
    }
    Ok(())
}

/// Writes the image to a partial file beside `out` (`<out>.partial-<pid>@<host>`), checks it
/// parses, and renames it to `out`. On any failure or interrupt (Ctrl-C during the write, or during
/// the flush to disk) the partial file is removed and `out` is untouched; a second Ctrl-C,
/// which exits at once, removes it too. A symbolic link is followed; an existing device or
/// FIFO is refused.
fn write_atomically(
    out: &Path,
    writer: &crate::gguf::GgufWriter,
    src: &mut File,
) -> Result<u64, UpcycleError> {
    let target = crate::util::fs::out_file(out).map_err(io_err(out))?;
    let out = target.as_path();
    let need = writer.file_size().map_err(|err| UpcycleError::Write {
        path: out.to_path_buf(),
        err,
    })?;
    crate::util::fs::check_room(out, out_dir(out), need).map_err(UpcycleError::Disk)?;
    let partial = crate::util::interrupt::Partial::beside(out);
    let mut file = partial.create().map_err(io_err(out))?;
    let written = {
        let stoppable = crate::util::interrupt::Stoppable(&mut file);
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, stoppable);
        let n = writer
            .write_to(&mut w, Some(src))
            .map_err(|err| UpcycleError::Write {
                path: out.to_path_buf(),
                err,
            })?;
        w.flush().map_err(io_err(out))?;
        n
    };
    file.sync_all().map_err(io_err(out))?;
    drop(file);
    let check = GgufFile::open(partial.path())
        .map_err(|e| std::io::Error::other(format!("the written file does not read back: {e}")))
        .map_err(io_err(out))?;
    if check.file_size != written {
        let e = std::io::Error::other("the written file has the wrong size");
        return Err(io_err(out)(e));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(partial.path(), perms).map_err(io_err(out))?;
    }
    // An interrupt while the file was flushed or checked: it is not put in place.
    if crate::util::interrupt::requested() {
        return Err(io_err(out)(std::io::Error::other("interrupted")));
    }
    partial.rename_to(out).map_err(io_err(out))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &Path, out: &Path) -> String {
        match check_output(input, out) {
            Err(UpcycleError::BadOutput { reason, .. }) => reason,
            other => panic!("expected BadOutput, got {other:?}"),
        }
    }

    #[test]
    fn output_paths_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("dense.gguf");
        std::fs::write(&input, b"x").unwrap();
        assert!(check_output(&input, &dir.path().join("moe.gguf")).is_ok());
        assert!(reason(&input, &input).contains("is the input file"));
        let dotted = dir.path().join(".").join("dense.gguf");
        assert!(reason(&input, &dotted).contains("is the input file"));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.gguf");
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert!(reason(&input, &link).contains("is the input file"));
            let hard = dir.path().join("hard.gguf");
            std::fs::hard_link(&input, &hard).unwrap();
            assert!(reason(&input, &hard).contains("is the input file"));
        }
        let missing = dir.path().join("no/such/dir/moe.gguf");
        assert!(check_output(&input, &missing).is_ok());
        assert!(dir.path().join("no/such/dir").is_dir());
        #[cfg(unix)]
        {
            // A link into a directory not there yet: the directory it points into is made.
            let dangling = dir.path().join("dangling.gguf");
            let target = dir.path().join("nodir/zz/moe.gguf");
            std::os::unix::fs::symlink(&target, &dangling).unwrap();
            assert!(check_output(&input, &dangling).is_ok());
            assert!(dir.path().join("nodir/zz").is_dir());
            assert!(!target.exists());
        }
        let under_file = input.join("sub/moe.gguf");
        assert!(reason(&input, &under_file).contains("could not create directory"));
        assert!(reason(&input, dir.path()).contains("is a directory"));
        assert_eq!(out_dir(Path::new("moe.gguf")), Path::new("."));
    }
}
