//! Published reference figures (`results/reference/published.csv`): tok/s, TTFT, quality and
//! cost from write-ups and vendors, shown beside one's own measurements and never mixed into
//! them.

use serde::Deserialize;
use std::path::Path;
use thiserror::Error;

/// Where the reference rows live, relative to the results directory.
pub const PATH: &str = "reference/published.csv";

#[derive(Debug, Error)]
pub enum ReferenceError {
    #[error("{path}: {message}")]
    Bad { path: String, message: String },
}

/// One published figure, as the CSV has it (empty cells are `None`). Its numbers are `f64`, or
/// with `N = String` exactly as written (`18.00`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Published<N = f64> {
    /// The write-up the figure comes from.
    pub source: String,
    /// Publication date, when known.
    pub published: Option<String>,
    /// `Apple M4 Pro`, or `cloud` for an API.
    pub machine: String,
    pub memory_gb: Option<N>,
    /// MLX, Ollama, an API, ...
    pub runtime: Option<String>,
    pub model: String,
    pub quant: Option<String>,
    pub scenario: Option<String>,
    /// Generation rate, tokens per second.
    pub gen_tok_s: Option<N>,
    /// Time to first token, seconds (percentile not stated by the sources).
    pub ttft_s: Option<N>,
    /// Quality score on `quality_scale`.
    pub quality: Option<N>,
    pub quality_scale: Option<N>,
    /// Cost of the published run in USD.
    pub cost_usd: Option<N>,
    pub note: Option<String>,
}

impl Published {
    /// Quality as a percentage of its scale.
    pub fn quality_percent(&self) -> Option<f64> {
        match (self.quality, self.quality_scale) {
            (Some(q), Some(s)) if s > 0.0 => Some(q / s * 100.0),
            _ => None,
        }
    }

    /// `Apple M4 Pro 48 GB`, or the machine alone.
    pub fn machine_label(&self) -> String {
        match self.memory_gb {
            Some(gb) => format!("{} {} GB", self.machine.trim(), fmt_num(gb)),
            None => self.machine.trim().to_string(),
        }
    }
}

/// A number without a trailing `.0`.
fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The columns [`PATH`] must have (others are ignored).
pub const COLUMNS: &[&str] = &[
    "source",
    "published",
    "machine",
    "memory_gb",
    "runtime",
    "model",
    "quant",
    "scenario",
    "gen_tok_s",
    "ttft_s",
    "quality",
    "quality_scale",
    "cost_usd",
    "note",
];

/// Reads the reference rows under a results directory; none when the file is absent. A file
/// that is there but damaged (not a regular file or not text, a missing column, a row that
/// does not parse, a number that is not finite, below 0, or 0 where 0 means nothing) is an error
/// naming it and the line: it is never read as fewer rows.
pub fn load(results_dir: &Path) -> Result<Vec<Published>, ReferenceError> {
    let path = results_dir.join(PATH);
    let bad = |message: String| ReferenceError::Bad {
        path: path.display().to_string(),
        message,
    };
    let mut rows = Vec::new();
    for (line, row) in read_rows::<Published>(&path, COLUMNS).map_err(bad)? {
        // (column, value, whether 0 means something: a local run's cost, a score of 0)
        let numbers = [
            ("memory_gb", row.memory_gb, false),
            ("gen_tok_s", row.gen_tok_s, false),
            ("ttft_s", row.ttft_s, false),
            ("quality", row.quality, true),
            ("quality_scale", row.quality_scale, false),
            ("cost_usd", row.cost_usd, true),
        ];
        for (column, v, zero) in numbers {
            let Some(v) = v else { continue };
            let least = if zero { "of 0 or more" } else { "above 0" };
            if !(v.is_finite() && v >= 0.0 && (zero || v > 0.0)) {
                return Err(bad(format!(
                    "line {line}: {column} {v} is not a number {least}"
                )));
            }
            if v > 1e9 {
                return Err(bad(format!("line {line}: {column} {v:e} is more than 1e9")));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The rows of a reference CSV with the line each starts on; none when `path` is absent. The
/// file is read through [`read_input`](crate::util::fs::read_input) (a regular file of at most
/// [`CONFIG_MAX_BYTES`](crate::util::fs::CONFIG_MAX_BYTES)) and its header must name every one
/// of `columns`. Every error is one line without the path.
pub fn read_rows<T: serde::de::DeserializeOwned>(
    path: &Path,
    columns: &[&str],
) -> Result<Vec<(u64, T)>, String> {
    use crate::util::fs::{read_input, Input};
    let absent = std::fs::symlink_metadata(path);
    if absent.is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(Vec::new());
    }
    let text = read_input(path, Input::Config).map_err(|e| e.to_string())?;
    // CRLF line breaks read as LF, so that the line an error names is the file's own.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let missing: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "not a reference CSV: its header has no {} column{}",
            missing.join(", "),
            if missing.len() == 1 { "" } else { "s" }
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        // The reader's own line count skips blank lines: the line is counted from the byte
        // the record starts at, past the blank lines before it.
        let start = record.position().map_or(0, |p| p.byte() as usize);
        let blank = text.as_bytes()[start.min(text.len())..]
            .iter()
            .take_while(|&&b| b == b'\n')
            .count();
        let line = text.as_bytes()[..(start + blank).min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        let row = record
            .deserialize(Some(&header))
            .map_err(|e| match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => format!("line {line}: {err}"),
                _ => format!("line {line}: {e}"),
            })?;
        rows.push((line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shipped_reference_rows() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let rows = load(&dir).unwrap();
        assert!(rows.len() >= 5);
        let m4 = rows
            .iter()
            .find(|r| r.machine == "Apple M4 Pro")
            .expect("an M4 Pro row");
        assert_eq!(m4.memory_gb, Some(48.0));
        assert_eq!(m4.machine_label(), "Apple M4 Pro 48 GB");
        let haiku = rows.iter().find(|r| r.model == "Claude Haiku 4.5").unwrap();
        assert_eq!(haiku.cost_usd, Some(0.28));
        assert!((haiku.quality_percent().unwrap() - 82.5).abs() < 1e-9);
    }

    #[test]
    fn a_missing_file_is_no_rows_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        std::fs::create_dir_all(dir.path().join("reference")).unwrap();
        std::fs::write(dir.path().join(PATH), "source,machine\n\"unterminated\n").unwrap();
        assert!(load(dir.path()).is_err());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it_never_fewer_rows() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("reference")).unwrap();
        let path = dir.path().join(PATH);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(PATH);
        let good = std::fs::read_to_string(shipped).unwrap();
        let error = |text: &[u8]| {
            std::fs::write(&path, text).unwrap();
            let e = load(dir.path()).unwrap_err().to_string();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            assert!(!e.contains('\n'), "{e}");
            e
        };
        // Binary bytes, or one header line of them: no rows would parse.
        assert!(error(&[0x89, b'P', b'N', b'G', 0xff, 0, 1]).ends_with("not valid UTF-8 text"));
        let e = error(b"\x01\x02garbage without a newline");
        assert!(e.contains("no source, published, machine"), "{e}");
        // A header without the numbers' columns.
        let e = error(b"source,machine,model\nx,Apple M4,m\n");
        assert!(e.contains("no published, memory_gb, runtime"), "{e}");
        // A number that is not one.
        let header = good.lines().next().unwrap();
        let row = good.lines().nth(1).unwrap().replacen(",40.05,", ",NaN,", 1);
        let e = error(format!("{header}\n{row}\n").as_bytes());
        assert!(
            e.ends_with("line 2: gen_tok_s NaN is not a number above 0"),
            "{e}"
        );
        // A rate of 0 means nothing; a cost of 0 is a local run's.
        let row = good.lines().nth(1).unwrap().replacen(",40.05,", ",0,", 1);
        let e = error(format!("{header}\n{row}\n").as_bytes());
        assert!(
            e.ends_with("line 2: gen_tok_s 0 is not a number above 0"),
            "{e}"
        );
        let row = good.lines().nth(1).unwrap().replacen(",40.05,", ",-1,", 1);
        let e = error(format!("{header}\n{row}\n").as_bytes());
        assert!(
            e.ends_with("line 2: gen_tok_s -1 is not a number above 0"),
            "{e}"
        );
        let row = good
            .lines()
            .nth(1)
            .unwrap()
            .replacen(",40.05,", ",1e308,", 1);
        let e = error(format!("{header}\n{row}\n").as_bytes());
        assert!(
            e.ends_with("line 2: gen_tok_s 1e308 is more than 1e9"),
            "{e}"
        );
        // Lines that end in CRLF are counted as lines all the same.
        let good_row = good.lines().nth(1).unwrap();
        let crlf = |row: &str| format!("{header}\r\n{good_row}\r\n{row}\r\n").into_bytes();
        let row = good_row.replacen(",40.05,", ",NaN,", 1);
        let e = error(&crlf(&row));
        assert!(
            e.ends_with("line 3: gen_tok_s NaN is not a number above 0"),
            "{e}"
        );
        let row = good_row.replacen(",40.05,", ",fast,", 1);
        let e = error(&crlf(&row));
        assert!(
            e.contains("line 3: field ") && !e.contains("(line: "),
            "{e}"
        );
        // Blank lines between rows are lines of the file too.
        let row = good_row.replacen(",40.05,", ",NaN,", 1);
        for gap in ["\n", "\n\n", "\r\n"] {
            let text = format!("{header}\n{gap}{good_row}\n{gap}{row}\n");
            let at = text.lines().position(|l| l == row).unwrap() + 1;
            let e = error(text.as_bytes());
            assert!(
                e.ends_with(&format!("line {at}: gen_tok_s NaN is not a number above 0")),
                "{gap:?}: {e}"
            );
        }
        // A FIFO is refused, never waited on.
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.unwrap().success());
        assert!(error_of(dir.path()).ends_with("not a regular file (a FIFO)"));
    }

    fn error_of(dir: &Path) -> String {
        load(dir).unwrap_err().to_string()
    }
}
