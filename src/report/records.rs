//! Reads every record under a results directory: bench JSON (an array or one record), bench
//! JSONL and sweep JSONL, recursively, in a fixed order and without duplicates, for the readers
//! of records (hardware guide, HTML report).

use crate::record::{CellFailure, Record, RequestRecord, SweepRecord};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RecordsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not a directory")]
    NotADirectory(String),
}

/// Every record found, with where it came from.
#[derive(Debug, Default)]
pub struct Records {
    /// `runner bench` records.
    pub bench: Vec<Record>,
    /// Requests of `runner sweep`.
    pub requests: Vec<RequestRecord>,
    /// Sweep cells that could not run.
    pub failures: Vec<CellFailure>,
    /// Files that held at least one record, relative to the directory, sorted.
    pub files: Vec<String>,
    /// Lines or files that looked like JSON but were not records (left out).
    pub unreadable: usize,
    /// Records seen more than once (e.g. a copy in another folder), counted once.
    pub duplicates: usize,
}

impl Records {
    pub fn is_empty(&self) -> bool {
        self.bench.is_empty() && self.requests.is_empty() && self.failures.is_empty()
    }

    /// Earliest and latest record time (RFC 3339 strings compare in time order).
    pub fn time_span(&self) -> Option<(String, String)> {
        let times = self
            .bench
            .iter()
            .map(|r| &r.time)
            .chain(self.requests.iter().map(|r| &r.time))
            .filter(|t| !t.is_empty());
        let min = times.clone().min()?.clone();
        let max = times.max()?.clone();
        Some((min, max))
    }
}

/// Reads every `*.json` and `*.jsonl` file under `dir`, in sorted path order.
pub fn load(dir: &Path) -> Result<Records, RecordsError> {
    if !dir.is_dir() {
        return Err(RecordsError::NotADirectory(dir.display().to_string()));
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut out = Records::default();
    let mut seen = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| RecordsError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let before = out.bench.len() + out.requests.len() + out.failures.len();
        for value in values(&path, &text, &mut out.unreadable) {
            add(value, &mut out, &mut seen);
        }
        if out.bench.len() + out.requests.len() + out.failures.len() > before {
            let rel = path.strip_prefix(dir).unwrap_or(&path);
            out.files.push(rel.display().to_string());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RecordsError> {
    let io = |source| RecordsError::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "jsonl" | "ndjson")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The JSON values of a file: the elements of a top-level array, one object, or one per line.
fn values(path: &Path, text: &str, unreadable: &mut usize) -> Vec<Value> {
    let whole = path.extension().and_then(|e| e.to_str()) == Some("json");
    if whole {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => return items,
            Ok(v @ Value::Object(_)) => return vec![v],
            Ok(_) => return Vec::new(),
            Err(_) => {} // a .json file written as lines: read it as lines
        }
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) => Some(v),
            Err(_) => {
                *unreadable += 1;
                None
            }
        })
        .collect()
}

/// Files one value as a sweep line (it has a `kind`) or a bench record, once.
fn add(value: Value, out: &mut Records, seen: &mut BTreeSet<String>) {
    if !seen.insert(value.to_string()) {
        out.duplicates += 1;
        return;
    }
    if value.get("kind").is_some() {
        match serde_json::from_value::<SweepRecord>(value) {
            Ok(SweepRecord::Request(r)) => out.requests.push(*r),
            Ok(SweepRecord::CellFailed(f)) => out.failures.push(f),
            Err(_) => out.unreadable += 1,
        }
    } else if value.get("test").is_some() && value.get("samples").is_some() {
        match serde_json::from_value::<Record>(value) {
            Ok(r) => out.bench.push(r),
            Err(_) => out.unreadable += 1,
        }
    } else {
        // Other JSON (a saved bandwidth probe, a summary): not a record.
        out.unreadable += usize::from(value.get("schema").is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_files_in_order_and_skips_duplicates_and_junk() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("b/c");
        std::fs::create_dir_all(&sub).unwrap();
        let failure = r#"{"kind":"cell_failed","schema":1,"time":"t","runner_version":"v","cell":{"model":"m","quant":"q8_0"},"reason":"r"}"#;
        std::fs::write(sub.join("one.jsonl"), format!("{failure}\nnot json\n")).unwrap();
        std::fs::write(dir.path().join("a.jsonl"), format!("{failure}\n")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), failure).unwrap();
        std::fs::write(dir.path().join("probe.json"), r#"{"machine":{}}"#).unwrap();
        let r = load(dir.path()).unwrap();
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.unreadable, 1);
        assert_eq!(r.files, vec!["a.jsonl".to_string()]);
        assert!(load(&dir.path().join("a.jsonl")).is_err());
    }
}
