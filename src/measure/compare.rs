//! Noise-aware comparison of two sets of samples: the median speed ratio with a bootstrap
//! confidence interval, and a verdict against a tolerance.
//!
//! "Speed" is oriented so that above 1 is better: `current / baseline` for rates,
//! `baseline / current` for times. With samples paired by id (the same prompt in both runs)
//! the ratio is the median of the per-pair ratios and the bootstrap resamples pairs; without
//! pairs it is the ratio of the two medians and each side is resampled on its own. A change is
//! only called when the whole 95 % interval lies beyond the tolerance, so noise that merely
//! moves the point estimate is not a regression.

use super::stats::{percentile, percentile_sorted};
use crate::util::rng::SplitMix64;
use serde::Serialize;

/// Bootstrap resamples per comparison.
pub const RESAMPLES: usize = 2000;
/// Fewest samples on each side (or pairs) for a verdict.
pub const MIN_SAMPLES: usize = 3;

/// Whether larger values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

impl Better {
    /// The speed of `current` against `baseline`, above 1 when `current` is better.
    fn speed(self, baseline: f64, current: f64) -> f64 {
        match self {
            Better::Higher => current / baseline,
            Better::Lower => baseline / current,
        }
    }
}

/// The outcome for one metric of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Slower beyond the tolerance, with 95 % confidence.
    Slower,
    /// Would be slower, but other processes kept the machine busy during the current run.
    SlowerBusy,
    Faster,
    Unchanged,
    /// Too few samples on one side to say.
    Insufficient,
    /// In the baseline, not in the current records.
    Missing,
    /// In the current records, not in the baseline.
    New,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::SlowerBusy => "slower, busy machine",
            Verdict::Faster => "faster",
            Verdict::Unchanged => "unchanged",
            Verdict::Insufficient => "too few samples",
            Verdict::Missing => "missing",
            Verdict::New => "new",
        }
    }
}

/// Speed ratio (above 1: the current run is faster) and its 95 % bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    pub speed: f64,
    pub low: f64,
    pub high: f64,
    /// Samples (or pairs) the ratio rests on.
    pub n: usize,
    pub paired: bool,
}

impl Ratio {
    /// The verdict for a relative `tolerance` (0.05 for 5 %).
    pub fn verdict(&self, tolerance: f64) -> Verdict {
        if self.high < 1.0 - tolerance {
            Verdict::Slower
        } else if self.low > 1.0 + tolerance {
            Verdict::Faster
        } else {
            Verdict::Unchanged
        }
    }
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5).unwrap_or(f64::NAN)
}

/// `middle` of a resample of `v` (drawn with replacement, sorted into `buf`).
fn resample_median(
    v: &[f64],
    rng: &mut SplitMix64,
    buf: &mut Vec<f64>,
    middle: fn(&[f64]) -> f64,
) -> f64 {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.below(v.len())]));
    buf.sort_by(f64::total_cmp);
    middle(buf)
}

/// The median of a sorted sample.
fn sorted_median(sorted: &[f64]) -> f64 {
    percentile_sorted(sorted, 0.5)
}

/// The 2.5 % and 97.5 % quantiles of the resampled statistic.
fn interval(mut stats: Vec<f64>) -> (f64, f64) {
    stats.retain(|s| s.is_finite());
    stats.sort_by(f64::total_cmp);
    if stats.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (
        percentile_sorted(&stats, 0.025),
        percentile_sorted(&stats, 0.975),
    )
}

/// The median of speed ratios, the middle two of an even count met at their geometric mean,
/// so that swapping baseline and current gives exactly the reciprocal.
fn ratio_median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] * sorted[n / 2]).sqrt(),
    }
}

/// Whether `x` is a sample: finite and above 0; with `zero_counts` (a rate of the current
/// run), 0 too (nothing came out: as slow as can be).
fn counts(x: f64, zero_counts: bool) -> bool {
    x.is_finite() && (x > 0.0 || zero_counts && x == 0.0)
}

/// The samples of one side that count ([`counts`]).
fn samples(v: &[f64], zero_counts: bool) -> Vec<f64> {
    v.iter()
        .copied()
        .filter(|&x| counts(x, zero_counts))
        .collect()
}

/// Per-pair speeds, oriented so that above 1 is better, those that are numbers.
fn speeds(pairs: &[(f64, f64)], better: Better) -> Vec<f64> {
    let zero_counts = better == Better::Higher;
    pairs
        .iter()
        .filter(|&&(b, c)| counts(b, false) && counts(c, zero_counts))
        .map(|&(b, c)| better.speed(b, c))
        .filter(|s| s.is_finite())
        .collect()
}

/// Paired comparison over `(baseline, current)` values of the same items, from `min` pairs
/// (at least 2) on: [`MIN_SAMPLES`] for records, fewer for the A/B check, whose rounds each
/// pair the medians of several repetitions, so two of them already say something.
pub fn paired_at_least(pairs: &[(f64, f64)], better: Better, min: usize) -> Option<Ratio> {
    let s = speeds(pairs, better);
    if s.len() < min.max(2) {
        return None;
    }
    let mut rng = SplitMix64(seed(&s));
    let mut buf = Vec::with_capacity(s.len());
    let stats = (0..RESAMPLES)
        .map(|_| resample_median(&s, &mut rng, &mut buf, ratio_median))
        .collect();
    let (low, high) = interval(stats);
    let mut sorted = s.clone();
    sorted.sort_by(f64::total_cmp);
    Some(Ratio {
        speed: ratio_median(&sorted),
        low,
        high,
        n: s.len(),
        paired: true,
    })
}

/// Unpaired comparison of two independent sets of samples.
pub fn unpaired(baseline: &[f64], current: &[f64], better: Better) -> Option<Ratio> {
    let base = samples(baseline, false);
    let cur = samples(current, better == Better::Higher);
    let speed = better.speed(median(&base), median(&cur));
    if base.len() < MIN_SAMPLES || cur.len() < MIN_SAMPLES || !speed.is_finite() {
        return None;
    }
    let mut rng = SplitMix64(seed(&base) ^ seed(&cur).rotate_left(17));
    let (mut bb, mut cb) = (Vec::new(), Vec::new());
    let stats = (0..RESAMPLES)
        .map(|_| {
            let b = resample_median(&base, &mut rng, &mut bb, sorted_median);
            let c = resample_median(&cur, &mut rng, &mut cb, sorted_median);
            better.speed(b, c)
        })
        .collect();
    let (low, high) = interval(stats);
    Some(Ratio {
        speed,
        low,
        high,
        n: base.len().min(cur.len()),
        paired: false,
    })
}

/// A seed derived from the samples themselves.
fn seed(v: &[f64]) -> u64 {
    v.iter()
        .fold(0x5EED_u64, |h, x| h.rotate_left(5) ^ x.to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic noise of about ±`amp` around 1.
    fn noise(n: usize, amp: f64, seed: u64) -> Vec<f64> {
        let mut r = SplitMix64(seed);
        (0..n)
            .map(|_| 1.0 + amp * ((r.next_u64() % 2001) as f64 / 1000.0 - 1.0))
            .collect()
    }

    #[test]
    fn a_ten_percent_slowdown_is_called_slower() {
        let base: Vec<f64> = noise(20, 0.02, 1).iter().map(|v| v * 50.0).collect();
        let slow: Vec<f64> = base.iter().map(|v| v * 0.9).collect();
        let r = unpaired(&base, &slow, Better::Higher).unwrap();
        assert!((r.speed - 0.9).abs() < 1e-9, "{r:?}");
        assert_eq!(r.verdict(0.05), Verdict::Slower);
        // The same slowdown seen as times (10 % slower = times / 0.9).
        let times: Vec<f64> = base.iter().map(|v| 1000.0 / v).collect();
        let slower_times: Vec<f64> = times.iter().map(|t| t / 0.9).collect();
        let pairs: Vec<(f64, f64)> = times.iter().copied().zip(slower_times).collect();
        let p = paired_at_least(&pairs, Better::Lower, MIN_SAMPLES).unwrap();
        assert!((p.speed - 0.9).abs() < 1e-9 && p.paired);
        assert_eq!(p.verdict(0.05), Verdict::Slower);
    }

    #[test]
    fn noise_alone_is_not_a_change() {
        let a: Vec<f64> = noise(15, 0.10, 7).iter().map(|v| v * 40.0).collect();
        let b: Vec<f64> = noise(15, 0.10, 8).iter().map(|v| v * 40.0).collect();
        let r = unpaired(&a, &b, Better::Higher).unwrap();
        assert!(r.low < 1.0 && r.high > 1.0, "{r:?}");
        assert_eq!(r.verdict(0.05), Verdict::Unchanged);
    }

    #[test]
    fn speed_ups_and_small_changes() {
        let base = noise(12, 0.01, 3);
        let fast: Vec<f64> = base.iter().map(|v| v * 1.2).collect();
        assert_eq!(
            unpaired(&base, &fast, Better::Higher)
                .unwrap()
                .verdict(0.05),
            Verdict::Faster
        );
        // 3 % slower for sure, but within a 5 % tolerance.
        let pairs: Vec<(f64, f64)> = base.iter().map(|&v| (v, v * 0.97)).collect();
        let r = paired_at_least(&pairs, Better::Higher, MIN_SAMPLES).unwrap();
        assert!(r.high < 1.0);
        assert_eq!(r.verdict(0.05), Verdict::Unchanged);
        assert_eq!(r.verdict(0.01), Verdict::Slower);
    }

    #[test]
    fn intervals_are_deterministic_and_need_enough_samples() {
        let a = noise(10, 0.05, 11);
        let b = noise(10, 0.05, 12);
        assert_eq!(
            unpaired(&a, &b, Better::Lower),
            unpaired(&a, &b, Better::Lower)
        );
        assert!(unpaired(&a[..2], &b, Better::Higher).is_none());
        assert!(paired_at_least(&[(1.0, 1.0), (2.0, 2.0)], Better::Higher, MIN_SAMPLES).is_none());
        // zero or negative values are not samples
        assert!(unpaired(&[0.0, 0.0, 0.0], &b, Better::Higher).is_none());
    }

    #[test]
    fn a_current_rate_of_zero_is_as_slow_as_can_be() {
        let base = noise(5, 0.01, 4);
        let r = unpaired(&base, &[0.0; 5], Better::Higher).unwrap();
        assert_eq!((r.speed, r.verdict(0.05)), (0.0, Verdict::Slower));
        let pairs: Vec<(f64, f64)> = base.iter().map(|&b| (b, 0.0)).collect();
        let p = paired_at_least(&pairs, Better::Higher, MIN_SAMPLES).unwrap();
        assert_eq!((p.speed, p.verdict(0.05)), (0.0, Verdict::Slower));
        // A time of 0, or a baseline so small the ratio is not a number, is no sample.
        assert!(unpaired(&base, &[0.0; 5], Better::Lower).is_none());
        assert!(unpaired(&[5e-324; 5], &base, Better::Higher).is_none());
    }

    #[test]
    fn swapping_baseline_and_current_gives_the_reciprocal_speed() {
        // Two pairs: the middle of an even count.
        let pairs = [(50.0, 15.0), (40.0, 340.0)];
        let swapped: Vec<(f64, f64)> = pairs.iter().map(|&(b, c)| (c, b)).collect();
        let r = paired_at_least(&pairs, Better::Higher, 2).unwrap();
        let s = paired_at_least(&swapped, Better::Higher, 2).unwrap();
        assert!((r.speed * s.speed - 1.0).abs() < 1e-12, "{r:?} {s:?}");
    }
}
