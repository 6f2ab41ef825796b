//! Records: the one schema every command writes ([`Record`]), appended and flushed to results
//! files as they are made, and read back (from a file or a directory tree) by every report.

pub mod http;
pub mod io;
pub mod plausible;
pub mod profile;
pub mod read;
mod schema;
pub mod traffic;

pub use http::{EndpointInfo, HttpReport, ServerReport};
pub use io::ResultsFile;
pub use profile::ProfileReport;
pub use read::Records;
pub use schema::*;
pub use traffic::Traffic;

// The parts of a record that lower layers define, re-exported so that the schema reads as one.
pub use crate::engine::{BuildInfo, DeviceInfo, EngineSettings, MemoryUsage, ModelInfo};
pub use crate::hw::machine::MachineInfo;
pub use crate::measure::bandwidth::Bandwidth;
pub use crate::measure::RepetitionSample;

/// The request records among `records`.
pub fn requests(records: &[Record]) -> impl Iterator<Item = &RequestRecord> {
    records.iter().filter_map(|r| match r {
        Record::Request(q) => Some(&**q),
        _ => None,
    })
}
