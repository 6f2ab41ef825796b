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
                .map(|c| map.get(c.as_str()).map_or(String::new(), |v| inert(v))),
        )
        .map_err(err)?;
    }
    finish(w)
}

/// Rows as CSV: every field of the row struct is a column, in its order, empty where a row has
/// no value or a figure that is not a finite number (a field that is itself a structure is
/// left out).
pub(crate) fn rows_csv<'a, T: Serialize + 'a>(
    rows: impl IntoIterator<Item = &'a T>,
) -> Result<String, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = false;
    for row in rows {
        let serde_json::Value::Object(fields) = serde_json::to_value(row)? else {
            return Err(err("a row is not a structure"));
        };
        let fields: Vec<_> = (fields.into_iter())
            .filter(|(_, v)| !v.is_object())
            .collect();
        if !std::mem::replace(&mut header, true) {
            w.write_record(fields.iter().map(|(k, _)| k)).map_err(err)?;
        }
        w.write_record(fields.iter().map(|(_, v)| match v {
            serde_json::Value::String(s) => inert(s),
            serde_json::Value::Null => String::new(),
            v => v.to_string(),
        }))
        .map_err(err)?;
    }
    finish(w)
}

/// Text a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+1`, `@SUM(…)`, `-2+3`), with
/// a `'` before it, which spreadsheets show as text; a number, and a dash alone, stay as they
/// are. Names in records come from files and servers: opening a CSV must not run them.
pub(crate) fn inert(s: &str) -> String {
    let formula = match s.chars().next() {
        Some('=' | '+' | '@' | '\t' | '\r') => true,
        Some('-') => s != "-" && !s.parse::<f64>().is_ok_and(f64::is_finite),
        _ => false,
    };
    match formula {
        true => format!("'{s}"),
        false => s.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_a_spreadsheet_would_run_is_written_as_text() {
        for (given, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1", "'+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-2+3", "'-2+3"),
            ("\tx", "'\tx"),
            ("-2.5", "-2.5"),
            ("-inf", "'-inf"),
            ("-", "-"),
            ("- 2+3+cmd|' /C calc'!A0", "'- 2+3+cmd|' /C calc'!A0"),
            ("\rx", "'\rx"),
            ("Apple M4 Pro", "Apple M4 Pro"),
            ("", ""),
        ] {
            assert_eq!(inert(given), written, "{given}");
        }
        #[derive(Serialize)]
        struct Row {
            name: String,
            rate: Option<f64>,
        }
        let rows = [
            Row {
                name: "=cmd".into(),
                rate: Some(-1.5),
            },
            Row {
                name: "ok".into(),
                rate: None,
            },
        ];
        assert_eq!(rows_csv(&rows).unwrap(), "name,rate\n'=cmd,-1.5\nok,\n");
        assert_eq!(to_csv(&rows).unwrap(), "name,rate\n'=cmd,-1.5\nok,\n");
    }
}
