//! Times as records write them: RFC 3339, UTC.

/// Formats a time as RFC 3339 (UTC).
pub fn rfc3339(t: time::OffsetDateTime) -> Result<String, time::error::Format> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
}

/// The current time as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc()).unwrap_or_default()
}

/// The current UTC time for file names, e.g. `20261125-181600`.
pub fn now_compact() -> String {
    let f = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}
