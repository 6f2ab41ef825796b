//! JSON (one array, with raw samples) and JSON Lines (one record per line).

use super::{Exporter, ReportError};
use crate::record::BenchRecord as Record;

pub struct JsonExporter;
pub struct JsonlExporter;

impl Exporter for JsonExporter {
    fn render(&self, records: &[Record]) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(records)?;
        s.push('\n');
        Ok(s)
    }
}

impl Exporter for JsonlExporter {
    fn render(&self, records: &[Record]) -> Result<String, ReportError> {
        let mut s = String::new();
        for r in records {
            s.push_str(&serde_json::to_string(r)?);
            s.push('\n');
        }
        Ok(s)
    }
}
