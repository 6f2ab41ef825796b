//! CSV: every scalar field of the schema as a column, one row per record.

use super::flat::{columns, flatten};
use super::ReportError;
use serde::Serialize;

/// Any serialisable items as CSV, their scalar fields as dotted columns.
pub(crate) fn to_csv<T: Serialize>(items: &[T]) -> Result<String, ReportError> {
    let rows = items
        .iter()
        .map(|r| serde_json::to_value(r).map(|v| flatten(&v)))
        .collect::<Result<Vec<_>, _>>()?;
    let cols = columns(&rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&cols).map_err(err)?;
    for row in &rows {
        let map: std::collections::HashMap<&str, &str> =
            row.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        w.write_record(
            cols.iter()
                .map(|c| map.get(c.as_str()).copied().unwrap_or("")),
        )
        .map_err(err)?;
    }
    finish(w)
}

/// A CSV error as the report's.
pub(crate) fn err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Csv(e.to_string())
}

/// The text a CSV writer wrote.
pub(crate) fn finish(w: csv::Writer<Vec<u8>>) -> Result<String, ReportError> {
    let bytes = w.into_inner().map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
