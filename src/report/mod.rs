//! Output formats (each an `Exporter` over the one record schema), and the readers of
//! recorded results: the regression check.

pub mod check;
pub mod compare;
pub(crate) mod csv;
mod flat;
pub mod guide;
pub mod html;
mod json;
pub mod obs;
pub mod records;
pub mod reference;
pub mod sweep;
pub(crate) mod table;

use crate::record::Record;
use std::io::Write;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("could not serialise results: {0}")]
    Json(#[from] serde_json::Error),
    #[error("could not write CSV: {0}")]
    Csv(String),
    #[error("could not write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Renders records into one output format.
pub trait Exporter {
    fn render(&self, records: &[Record]) -> Result<String, ReportError>;
}

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// One JSON array with every record and its raw samples.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// Every scalar field of the schema as a column (raw samples left out).
    Csv,
    /// A Markdown table with the same columns as `table`.
    Md,
}

impl Format {
    /// The format a file name's extension implies.
    pub fn from_extension(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "md" | "markdown" => Some(Format::Md),
            "txt" => Some(Format::Table),
            _ => None,
        }
    }

    /// The format asked for, else the one `-o FILE`'s extension implies, else a table.
    pub fn choose(explicit: Option<Format>, output: Option<&Path>) -> Format {
        explicit
            .or_else(|| output.and_then(Format::from_extension))
            .unwrap_or(Format::Table)
    }

    pub fn exporter(self) -> Box<dyn Exporter> {
        match self {
            Format::Table => Box::new(table::TableExporter),
            Format::Json => Box::new(json::JsonExporter),
            Format::Jsonl => Box::new(json::JsonlExporter),
            Format::Csv => Box::new(csv::CsvExporter),
            Format::Md => Box::new(table::MarkdownExporter),
        }
    }
}

/// Writes `contents` to `path` atomically (a temporary file renamed over it), so a reader
/// or a crash never sees half a file.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
