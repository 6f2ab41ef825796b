//! Writing records: a results file of JSON Lines, appended and flushed as each record is made
//! and read back so that a re-run resumes where the last one stopped; whole files written
//! atomically.

use super::schema::Record;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ResultsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("could not serialise a record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error(
        "{0}: another runner sweep is writing this file; wait for it to end, or give another \
         --results directory"
    )]
    InUse(String),
}

/// What reading an existing results file found.
#[derive(Debug, Default)]
pub struct Existing {
    pub records: Vec<Record>,
    /// Complete lines that did not parse (kept in the file, left out of the results).
    pub bad_lines: usize,
    /// Bytes of an unfinished last line (a run killed mid-write), removed from the file.
    pub torn_bytes: u64,
}

/// An open results file, positioned for appending.
#[derive(Debug)]
pub struct ResultsFile {
    path: PathBuf,
    file: File,
}

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl ResultsFile {
    /// Opens (creating it and its directory if needed) the file at `path`; `fresh` empties it.
    /// An existing path that is not a regular file (a FIFO, a device) is refused before it is
    /// read.
    pub fn open(path: &Path, fresh: bool) -> Result<(ResultsFile, Existing), ResultsError> {
        let dir = crate::util::fs::out_dir(path);
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err(path))?;
        if !file.metadata().map_err(io_err(path))?.is_file() {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
            return Err(io_err(path)(e));
        }
        // One writer at a time: a second sweep of the same configuration would run and record
        // every pending request again. The lock ends with this handle (or the process); where
        // the file system cannot lock, sweeps go ahead unlocked.
        if let Err(std::fs::TryLockError::WouldBlock) = file.try_lock() {
            return Err(ResultsError::InUse(path.display().to_string()));
        }
        if fresh {
            file.set_len(0).map_err(io_err(path))?;
        }
        let existing = read_and_repair(&mut file, path)?;
        file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        let rf = ResultsFile {
            path: path.to_path_buf(),
            file,
        };
        Ok((rf, existing))
    }

    /// Opens an existing file for appending only (a cell's child process).
    pub fn append_to(path: &Path) -> Result<ResultsFile, ResultsError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err(path))?;
        Ok(ResultsFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record as one line and flushes it to the OS.
    pub fn append(&mut self, rec: &Record) -> Result<(), ResultsError> {
        let mut line = serde_json::to_vec(rec)?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io_err(&self.path))?;
        self.file.flush().map_err(io_err(&self.path))
    }
}

/// Reads every complete line; cuts off an unfinished last line so appends start clean (a last
/// line that is a whole record without its newline is kept and ended).
fn read_and_repair(file: &mut File, path: &Path) -> Result<Existing, ResultsError> {
    let mut out = Existing::default();
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let mut reader = BufReader::new(&mut *file);
    let mut good_end = 0u64;
    let mut unterminated = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            // A whole record whose newline was lost (a file edited by hand) is kept.
            match serde_json::from_slice::<Record>(&line) {
                Ok(r) => {
                    out.records.push(r);
                    unterminated = true;
                }
                Err(_) => out.torn_bytes = n as u64,
            }
            break;
        }
        good_end += n as u64;
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&text) {
            Ok(r) => out.records.push(r),
            Err(_) => out.bad_lines += 1,
        }
    }
    drop(reader);
    if out.torn_bytes > 0 {
        file.set_len(good_end).map_err(io_err(path))?;
    }
    if unterminated {
        file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        file.write_all(b"\n").map_err(io_err(path))?;
    }
    Ok(out)
}

/// Whether `path` is named as `runner sweep` names its results files (`sweep-<id>.jsonl`, the
/// id 12 hexadecimal digits).
pub fn is_sweep_results(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let id = name
        .strip_prefix("sweep-")
        .and_then(|n| n.strip_suffix(".jsonl"));
    id.is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reads a results file without changing it (a regular file only).
pub fn read(path: &Path) -> Result<Vec<Record>, ResultsError> {
    let text =
        crate::util::fs::read_input(path, crate::util::fs::Input::Records).map_err(io_err(path))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BackendId, CellFailure, CellKey, Provenance};

    fn failure(n: usize) -> Record {
        Record::CellFailed(CellFailure {
            provenance: Provenance::now(),
            cell: CellKey {
                backend: BackendId::native(),
                model: format!("m{n}"),
                quant: "q8_0".into(),
            },
            reason: "r".into(),
        })
    }

    #[test]
    fn appends_reads_back_and_repairs_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/r.jsonl");
        let (mut f, existing) = ResultsFile::open(&path, false).unwrap();
        assert!(existing.records.is_empty());
        f.append(&failure(1)).unwrap();
        f.append(&failure(2)).unwrap();
        drop(f);
        // a run killed mid-write leaves half a line; a garbage line stays but is not read
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(b"not json\n{\"kind\":\"cell_failed\",\"sch")
            .unwrap();
        drop(raw);
        let (mut f, existing) = ResultsFile::open(&path, false).unwrap();
        assert_eq!(existing.records.len(), 2);
        assert_eq!(existing.bad_lines, 1);
        assert!(existing.torn_bytes > 0);
        f.append(&failure(3)).unwrap();
        drop(f);
        assert_eq!(read(&path).unwrap().len(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n") && !text.contains("\"sch{"));
    }

    #[test]
    fn sweep_results_files_are_told_by_their_name() {
        assert!(is_sweep_results(Path::new(
            "results/runs/sweep-0ad6ba95c6e9.jsonl"
        )));
        assert!(is_sweep_results(Path::new("sweep-0AD6BA95C6E9.jsonl")));
        for other in [
            "baseline.jsonl",
            "sweep-0ad6ba95c6e9.json",
            "sweep-0ad6ba95c6e.jsonl",
            "sweep-0ad6ba95c6eg.jsonl",
            "results/sweep-0ad6ba95c6e9.jsonl/x",
        ] {
            assert!(!is_sweep_results(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn a_whole_last_record_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let (mut f, _) = ResultsFile::open(&path, false).unwrap();
        f.append(&failure(1)).unwrap();
        f.append(&failure(2)).unwrap();
        drop(f);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.trim_end()).unwrap();
        let (mut f, existing) = ResultsFile::open(&path, false).unwrap();
        assert_eq!((existing.records.len(), existing.torn_bytes), (2, 0));
        f.append(&failure(3)).unwrap();
        drop(f);
        assert_eq!(read(&path).unwrap().len(), 3);
    }

    #[test]
    fn a_file_open_for_a_sweep_is_refused_to_another_even_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let (mut f, _) = ResultsFile::open(&path, false).unwrap();
        f.append(&failure(1)).unwrap();
        for fresh in [false, true] {
            let e = ResultsFile::open(&path, fresh).unwrap_err().to_string();
            assert!(e.contains("another runner sweep is writing"), "{e}");
        }
        assert_eq!(read(&path).unwrap().len(), 1, "nothing was emptied");
        drop(f);
        // Free once closed. (A process another test forks holds a copy of every descriptor,
        // and with it the lock, until it execs: a few milliseconds at most.)
        let t = std::time::Instant::now();
        while ResultsFile::open(&path, false).is_err() {
            assert!(t.elapsed().as_secs() < 5, "free once closed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_results_path_that_is_not_a_regular_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("r.jsonl");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let zero = dir.path().join("z.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for path in [&fifo, &zero] {
            for fresh in [false, true] {
                let e = ResultsFile::open(path, fresh).unwrap_err().to_string();
                assert!(
                    e.ends_with("r.jsonl: not a regular file")
                        || e.ends_with("z.jsonl: not a regular file"),
                    "{e}"
                );
            }
            let e = read(path).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn fresh_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let (mut f, _) = ResultsFile::open(&path, false).unwrap();
        f.append(&failure(1)).unwrap();
        drop(f);
        let (_, existing) = ResultsFile::open(&path, true).unwrap();
        assert!(existing.records.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
