//! Everything read from records: the output formats of `runner bench` ([`Format::render`]),
//! the sweep's table, backends compared, the regression check, the hardware guide, the HTML
//! report, and the tables of `runner hw` and `runner profile`. Every table is declared as
//! `&[Column<T>]` (`table`).

pub mod check;
pub mod compare;
pub(crate) mod csv;
pub mod depth;
mod flat;
pub mod guide;
pub mod html;
pub mod hw;
pub mod load;
pub mod obs;
pub mod profile;
pub mod reference;
pub mod sweep;
pub mod table;

use crate::record::BenchRecord;
use std::path::Path;
use table::Column;
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

crate::util::names::named_enum! {
    /// Output of the listing commands: a table, or JSON.
    pub enum ListFormat {
        Table = "table",
        Json = "json",
    }
}

crate::util::names::named_enum! {
    /// The output formats.
    pub enum Format {
        /// Aligned columns for a terminal.
        Table = "table",
        /// One JSON array with every record and its raw samples.
        Json = "json",
        /// One JSON record per line.
        Jsonl = "jsonl",
        /// Every scalar field of the schema as a column (raw samples left out).
        Csv = "csv",
        /// A Markdown table with the same columns as `table`.
        Md = "md",
    }
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

    /// Bench records in this format; under the table, what a synthetic model is and the
    /// full-depth figures extrapolated from layer-scaled runs.
    pub fn render(self, records: &[BenchRecord]) -> Result<String, ReportError> {
        // Records of several engine settings (a list of --flash-attn, --ctk, -b...) name
        // theirs in a column after the threads; otherwise their rows could not be told apart.
        // (Tests of other sizes get other contexts and batches without any list given: only
        // rows of the same model, test and threads are told apart.)
        let mut columns = table::BENCH.to_vec();
        let same_test = |r: &BenchRecord| {
            let e = &r.engine;
            (
                r.model.path.clone(),
                r.test.name.clone(),
                e.threads,
                e.threads_batch,
            )
        };
        let runs = distinct(
            records
                .iter()
                .map(|r| (same_test(r), table::bench_settings(r))),
        );
        if runs.len() > distinct(records.iter().map(same_test)).len() {
            let at = columns
                .iter()
                .position(|c| c.header == "threads")
                .map_or(0, |i| i + 1);
            columns.insert(at, table::Column::text("settings", table::bench_settings));
        }
        render_rows(self, &columns, records, || {
            match records.iter().any(|r| r.model.synthetic.is_some()) {
                true => format!("{}{}", sweep::SYNTHETIC_NOTE, depth::render(records)),
                false => String::new(),
            }
        })
    }
}

/// Rows in one format: as data, or as a Markdown table or aligned text followed by the
/// `notes` under it (in Markdown, a code block after the table).
pub fn render_rows<T: serde::Serialize>(
    format: Format,
    columns: &[Column<T>],
    rows: &[T],
    notes: impl FnOnce() -> String,
) -> Result<String, ReportError> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(rows)? + "\n",
        Format::Jsonl => rows
            .iter()
            .map(|r| serde_json::to_string(r).map(|s| s + "\n"))
            .collect::<Result<String, _>>()?,
        Format::Csv => csv::to_csv(rows)?,
        // The notes may hold an aligned table of their own: kept as written, in a code block.
        Format::Md => match notes() {
            n if n.is_empty() => table::markdown(columns, rows),
            n => format!("{}\n```text\n{n}```\n", table::markdown(columns, rows)),
        },
        Format::Table => table::aligned(columns, rows) + &notes(),
    })
}

/// Bytes in a MiB and a GiB.
pub const MIB: f64 = 1024.0 * 1024.0;
pub const GIB: f64 = 1024.0 * MIB;

/// The median of `values`, `None` when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    crate::measure::stats::percentile(&values.into_iter().collect::<Vec<_>>(), 0.5)
}

/// `items` without repeats, in order of first appearance.
pub fn distinct<T: Clone + Eq + std::hash::Hash>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// The note under a table whose rows count requests measured on a busy machine; nothing when
/// none was.
pub fn busy_note(busy: usize) -> String {
    match busy {
        0 => String::new(),
        n => format!("(busy!) {n} request(s) ran while other processes kept the machine busy: their figures are suspect\n"),
    }
}

/// Writes `contents` to `path` atomically (a temporary file renamed over it), so a reader or
/// a crash never sees half a file.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), ReportError> {
    crate::util::fs::write_atomic(path, contents).map_err(|e| ReportError::Io {
        path: e.path,
        source: e.source,
    })
}
