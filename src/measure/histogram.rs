//! Latency histograms (HdrHistogram, microsecond resolution, 3 significant digits).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest latency a histogram tracks without resizing: one hour.
const MAX_US: u64 = 3_600_000_000;

/// A latency histogram over durations, recorded in whole microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

/// Percentiles read from a histogram, in milliseconds. Values carry the histogram's
/// precision (3 significant digits), so p50 may differ from the exact sample median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // 1 µs .. 1 h at 3 significant digits: fixed bounds, valid by construction.
        let inner = Histogram::new_with_bounds(1, MAX_US, 3)
            .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits is valid"));
        LatencyHistogram { inner }
    }

    /// Records one latency; values beyond the range are clamped to it.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.inner.saturating_record(us);
    }

    /// Records one latency in milliseconds, as [`LatencyHistogram::record`]; a value past
    /// what a `Duration` holds is clamped too, and a negative or non-finite one is skipped.
    pub fn record_ms(&mut self, ms: f64) {
        if ms.is_finite() && ms >= 0.0 {
            self.record(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
        }
    }

    /// Percentiles in milliseconds; `None` for an empty histogram.
    pub fn summary(&self) -> Option<HistogramSummary> {
        if self.inner.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| ms(self.inner.value_at_quantile(p));
        Some(HistogramSummary {
            count: self.inner.len(),
            min_ms: ms(self.inner.min()),
            mean_ms: self.inner.mean() / 1000.0,
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: ms(self.inner.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reads_percentiles() {
        let mut h = LatencyHistogram::new();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary().unwrap();
        assert_eq!(s.count, 100);
        assert!((s.min_ms - 1.0).abs() < 0.01);
        assert!((s.max_ms - 100.0).abs() < 0.1);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "p50 {}", s.p50_ms);
        assert!((s.p90_ms - 90.0).abs() < 0.1, "p90 {}", s.p90_ms);
        assert!((s.p99_ms - 99.0).abs() < 0.1, "p99 {}", s.p99_ms);
        assert!((s.mean_ms - 50.5).abs() < 0.1);
    }

    #[test]
    fn empty_has_no_summary_and_bad_values_are_skipped() {
        let mut a = LatencyHistogram::new();
        assert!(a.summary().is_none());
        a.record_ms(2.5);
        a.record_ms(f64::NAN);
        a.record_ms(-1.0);
        let s = a.summary().unwrap();
        assert_eq!(s.count, 1);
        assert!((s.p50_ms - 2.5).abs() < 0.01);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_nanos(10));
        h.record(Duration::from_secs(10_000));
        // Past what a Duration holds (a records file can say anything).
        h.record_ms(1e300);
        let s = h.summary().unwrap();
        assert_eq!(s.count, 3);
        assert!((s.min_ms - 0.001).abs() < 1e-6);
        assert!(s.max_ms >= 3_600_000.0 * 0.999);
    }
}
