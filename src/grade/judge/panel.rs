//! The panel's figures: the power mean of judges' weighted scores per request, and per cell
//! the mean over its judged requests on a 0-100 scale.

use crate::record::Judgement;
use std::collections::BTreeMap;

/// Default exponent of the power mean across judges: below 1 it leans toward the harsher
/// judge, so one lenient judge cannot lift a score alone (1 is the arithmetic mean).
pub const DEFAULT_POWER: f64 = 0.5;

/// The largest exponent `--judge-power` takes, either side of 0: ±100 is already as good as
/// the harshest (or most lenient) judge alone, and beyond it the sum of powers can overflow.
pub const MAX_POWER: f64 = 100.0;

/// The power mean `(Σ xᵢᵖ / n)^(1/p)` of non-negative values; `p = 0` is the geometric mean.
/// `None` for no values.
pub fn power_mean(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    let n = values.len() as f64;
    if p <= 0.0 && values.contains(&0.0) {
        return Some(0.0);
    }
    if p == 0.0 {
        return Some((values.iter().map(|v| v.ln()).sum::<f64>() / n).exp());
    }
    Some((values.iter().map(|v| v.powf(p)).sum::<f64>() / n).powf(1.0 / p))
}

/// One request's panel score on 0-100: the power mean of the judges that gave a score, each
/// scaled by its rubric's scale. `None` when no judge gave one.
pub fn request_score(judgements: &[&Judgement], p: f64) -> Option<f64> {
    let scores: Vec<f64> = judgements
        .iter()
        .filter_map(|j| j.weighted.map(|w| w / j.rubric.scale * 100.0))
        .collect();
    power_mean(&scores, p)
}

/// A cell's judging figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CellQuality {
    /// Mean panel score over judged requests, 0-100.
    pub score: Option<f64>,
    pub judged_requests: usize,
    /// Judgements with no score (request failed, or unparsable after the retry).
    pub unscored: usize,
    /// Mean score per judge, 0-100.
    pub per_judge: BTreeMap<String, f64>,
    /// Some judge shares the judged model's family.
    pub self_judging: bool,
}

/// The figures of one cell from its judgements.
pub fn cell_quality(judgements: &[&Judgement], p: f64) -> CellQuality {
    let mut by_request: BTreeMap<(&str, &str), Vec<&Judgement>> = BTreeMap::new();
    let mut by_judge: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut q = CellQuality::default();
    for j in judgements {
        by_request
            .entry((j.scenario.as_str(), j.prompt_id.as_str()))
            .or_default()
            .push(j);
        match j.weighted {
            Some(w) => by_judge
                .entry(j.judge.to_string())
                .or_default()
                .push(w / j.rubric.scale * 100.0),
            None => q.unscored += 1,
        }
        q.self_judging |= j.self_judging;
    }
    let scores: Vec<f64> = by_request
        .values()
        .filter_map(|js| request_score(js, p))
        .collect();
    q.judged_requests = scores.len();
    q.score = (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64);
    q.per_judge = by_judge
        .into_iter()
        .map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_means() {
        assert_eq!(power_mean(&[], 1.0), None);
        assert!((power_mean(&[4.0, 16.0], 1.0).unwrap() - 10.0).abs() < 1e-12);
        assert!((power_mean(&[4.0, 16.0], 0.0).unwrap() - 8.0).abs() < 1e-12);
        assert!((power_mean(&[4.0, 16.0], 0.5).unwrap() - 9.0).abs() < 1e-12);
        assert!((power_mean(&[4.0, 16.0], -1.0).unwrap() - 6.4).abs() < 1e-12);
        assert_eq!(power_mean(&[0.0, 16.0], 0.0), Some(0.0));
        assert_eq!(power_mean(&[-1.0], 1.0), None);
    }
}
