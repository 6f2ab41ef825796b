//! Summary statistics over raw samples, with one documented percentile definition.
//!
//! Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, the
//! default of NumPy and R): for sorted samples `x[0..n]` and quantile `q` in `[0, 1]`, the
//! position is `h = (n - 1) q` and the value `x[floor h] + (h - floor h) (x[ceil h] - x[floor h])`.
//! The standard deviation is the sample deviation (divides by `n - 1`), computed in two passes
//! over `f64` values. Outliers are labelled with Tukey's fences (1.5 × IQR beyond the
//! quartiles) and counted, never dropped.

use serde::{Deserialize, Serialize};

/// Summary of a set of samples, all in the unit of the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single sample.
    pub sd: f64,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Samples below Q1 - 1.5 IQR.
    pub outliers_low: usize,
    /// Samples above Q3 + 1.5 IQR.
    pub outliers_high: usize,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none or any is not finite.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let q1 = percentile_sorted(&sorted, 0.25);
        let q3 = percentile_sorted(&sorted, 0.75);
        let iqr = q3 - q1;
        let (lo, hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        Some(Summary {
            n,
            mean,
            sd,
            min: sorted[0],
            median: percentile_sorted(&sorted, 0.5),
            p90: percentile_sorted(&sorted, 0.9),
            p99: percentile_sorted(&sorted, 0.99),
            max: sorted[n - 1],
            outliers_low: sorted.iter().filter(|&&x| x < lo).count(),
            outliers_high: sorted.iter().filter(|&&x| x > hi).count(),
        })
    }
}

pub use crate::util::quantile::{percentile, percentile_sorted};

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!(close(percentile(&x, 0.5).unwrap(), 2.5));
        assert!(close(percentile(&x, 0.0).unwrap(), 1.0));
        assert!(close(percentile(&x, 1.0).unwrap(), 4.0));
        // h = 3 * 0.9 = 2.7 -> 3 + 0.7 * (4 - 3)
        assert!(close(percentile(&x, 0.9).unwrap(), 3.7));
        // order of input does not matter
        assert!(close(
            percentile(&[4.0, 1.0, 3.0, 2.0], 0.25).unwrap(),
            1.75
        ));
    }

    #[test]
    fn percentile_matches_numpy_on_1_to_100() {
        let x: Vec<f64> = (1..=100).map(f64::from).collect();
        // numpy.percentile(range(1, 101), [50, 90, 99]) == [50.5, 90.1, 99.01]
        assert!(close(percentile(&x, 0.5).unwrap(), 50.5));
        assert!(close(percentile(&x, 0.9).unwrap(), 90.1));
        assert!(close(percentile(&x, 0.99).unwrap(), 99.01));
    }

    #[test]
    fn summary_of_known_data() {
        // mean 5, sample variance 32/7
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let s = Summary::of(&x).unwrap();
        assert_eq!(s.n, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.sd, (32.0f64 / 7.0).sqrt()));
        assert!(close(s.median, 4.5));
        assert!(close(s.min, 2.0));
        assert!(close(s.max, 9.0));
        // Q1 4, Q3 5.5, IQR 1.5: 9 lies above Q3 + 2.25
        assert_eq!((s.outliers_low, s.outliers_high), (0, 1));
    }

    #[test]
    fn sd_is_stable_for_large_offsets() {
        // a one-pass sum-of-squares formula loses all precision here
        let x = [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0];
        let s = Summary::of(&x).unwrap();
        assert!(close(s.sd, 30.0f64.sqrt()), "sd {}", s.sd);
    }

    #[test]
    fn outliers_are_counted_not_dropped() {
        let x = [10.0, 11.0, 10.5, 10.2, 10.8, 50.0, 1.0];
        let s = Summary::of(&x).unwrap();
        assert_eq!(s.n, 7);
        assert_eq!(s.outliers_high, 1);
        assert_eq!(s.outliers_low, 1);
        assert!(close(s.max, 50.0));
    }

    #[test]
    fn single_and_empty_and_nan() {
        let s = Summary::of(&[3.0]).unwrap();
        assert_eq!(s.sd, 0.0);
        assert_eq!(s.p99, 3.0);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
        assert!(percentile(&[], 0.5).is_none());
    }
}
