//! Reads records back from disk: bench output (a JSON array or JSON Lines) and sweep results
//! files, from one file or every `.json`/`.jsonl` file under a directory.

use crate::record::{Record, SweepRecord};
use serde_json::Value;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// One record of either kind.
#[derive(Debug, Clone)]
pub enum AnyRecord {
    Bench(Box<Record>),
    Sweep(SweepRecord),
}

/// What was read.
#[derive(Debug, Default)]
pub struct Records {
    pub records: Vec<AnyRecord>,
    /// Files read.
    pub files: usize,
    /// Lines or array elements that were not records (kept out, counted).
    pub skipped: usize,
}

impl Records {
    pub fn bench(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter_map(|r| match r {
            AnyRecord::Bench(b) => Some(b.as_ref()),
            AnyRecord::Sweep(_) => None,
        })
    }

    pub fn sweep(&self) -> impl Iterator<Item = &SweepRecord> {
        self.records.iter().filter_map(|r| match r {
            AnyRecord::Sweep(s) => Some(s),
            AnyRecord::Bench(_) => None,
        })
    }

    /// Every record as JSON Lines.
    pub fn to_jsonl(&self) -> serde_json::Result<String> {
        let mut out = String::new();
        for r in &self.records {
            let line = match r {
                AnyRecord::Bench(b) => serde_json::to_string(b)?,
                AnyRecord::Sweep(s) => serde_json::to_string(s)?,
            };
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }
}

/// Reads a file, or every `.json`/`.jsonl` file under a directory (in name order).
pub fn load(path: &Path) -> Result<Records, RecordsError> {
    let io = |source| RecordsError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RecordsError::NotFound {
            path: path.display().to_string(),
        },
        _ => io(e),
    })?;
    let files = if meta.is_dir() {
        let mut v = Vec::new();
        walk(path, &mut v)?;
        v
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Records::default();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| RecordsError::Io {
            path: f.display().to_string(),
            source,
        })?;
        out.files += 1;
        parse_into(&text, &mut out);
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RecordsError> {
    let io = |source| RecordsError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
            out.push(p);
        }
    }
    Ok(())
}

/// Parses a JSON array of records or JSON Lines; anything else counts as skipped.
pub fn parse_into(text: &str, out: &mut Records) {
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<Value>>(text) {
            Ok(values) => values.into_iter().for_each(|v| push(v, out)),
            Err(_) => out.skipped += 1,
        }
        return;
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => push(v, out),
            Err(_) => out.skipped += 1,
        }
    }
}

fn push(v: Value, out: &mut Records) {
    let rec = if v.get("kind").is_some() {
        serde_json::from_value::<SweepRecord>(v)
            .ok()
            .map(AnyRecord::Sweep)
    } else {
        serde_json::from_value::<Record>(v)
            .ok()
            .map(|r| AnyRecord::Bench(Box::new(r)))
    };
    match rec {
        Some(r) => out.records.push(r),
        None => out.skipped += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_things_are_counted_not_fatal() {
        let mut r = Records::default();
        parse_into("{\"kind\":\"nonsense\"}\nnot json\n\n{\"a\":1}\n", &mut r);
        assert_eq!((r.records.len(), r.skipped), (0, 3));
        parse_into("[1, 2", &mut r);
        assert_eq!(r.skipped, 4);
    }

    #[test]
    fn missing_paths_are_one_line_errors() {
        let e = load(Path::new("/no/such/results")).unwrap_err();
        assert_eq!(e.to_string(), "/no/such/results: no such file or directory");
    }
}
