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

    /// `MLX`, or `-`.
    pub fn runtime_label(&self) -> String {
        self.runtime.clone().unwrap_or_else(|| "-".into())
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

/// Reads the reference rows under a results directory (a regular file of at most
/// [`CONFIG_MAX_BYTES`](crate::util::fs::CONFIG_MAX_BYTES)); none when the file is absent.
pub fn load(results_dir: &Path) -> Result<Vec<Published>, ReferenceError> {
    let path = results_dir.join(PATH);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bad = |message: String| ReferenceError::Bad {
        path: path.display().to_string(),
        message,
    };
    let text = crate::util::fs::read_input(&path, crate::util::fs::Input::Config);
    let text = text.map_err(|e| bad(e.to_string()))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows = reader.deserialize().collect::<Result<Vec<Published>, _>>();
    rows.map_err(|e| bad(e.to_string()))
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
}
