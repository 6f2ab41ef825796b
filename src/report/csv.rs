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
    let err = |e: csv::Error| ReportError::Csv(e.to_string());
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
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Csv(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
