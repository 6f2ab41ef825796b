//! Pure measurement maths: summary statistics over samples, latency histograms and the bytes
//! a decoded token reads.

pub mod bandwidth;
pub mod compare;
pub mod histogram;
pub mod rng;
pub mod routing;
pub mod stats;

use crate::record::{RepetitionSample, Results};
use histogram::LatencyHistogram;
use stats::Summary;

/// Statistics over the repetitions of one test.
pub fn results(samples: &[RepetitionSample]) -> Results {
    let collect = |f: &dyn Fn(&RepetitionSample) -> Option<f64>| -> Option<Summary> {
        let v: Vec<f64> = samples.iter().filter_map(f).collect();
        Summary::of(&v)
    };
    let mut itl = LatencyHistogram::new();
    for s in samples {
        for gap in s.itl_ms() {
            itl.record_ms(gap);
        }
    }
    let tokens_after_first: usize = samples
        .iter()
        .map(|s| s.token_ms.len().saturating_sub(1))
        .sum();
    let span_ms: f64 = samples
        .iter()
        .filter_map(|s| Some(s.token_ms.last()? - s.token_ms.first()?))
        .sum();
    let harness_ms: f64 = samples.iter().map(|s| s.harness_ms).sum();
    let has_gaps = tokens_after_first > 0 && span_ms > 0.0;
    Results {
        prompt_tps: collect(&|s| s.prompt_tps),
        gen_tps: collect(&|s| s.gen_tps),
        ttft_ms: collect(&|s| s.ttft_ms),
        itl_ms: itl.summary(),
        e2e_ms: collect(&|s| Some(s.e2e_ms)),
        harness_us_per_token: has_gaps.then(|| harness_ms * 1000.0 / tokens_after_first as f64),
        harness_share: has_gaps.then(|| harness_ms / span_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_pool_gaps_and_summarise_rates() {
        let a = RepetitionSample {
            prompt_tps: Some(100.0),
            gen_tps: Some(10.0),
            ttft_ms: Some(5.0),
            e2e_ms: 25.0,
            token_ms: vec![5.0, 15.0, 25.0],
            harness_ms: 0.2,
            ..Default::default()
        };
        let b = RepetitionSample {
            prompt_tps: Some(200.0),
            gen_tps: Some(20.0),
            ttft_ms: Some(7.0),
            e2e_ms: 17.0,
            token_ms: vec![7.0, 12.0, 17.0],
            harness_ms: 0.1,
            ..Default::default()
        };
        let r = results(&[a, b]);
        assert_eq!(r.prompt_tps.as_ref().unwrap().n, 2);
        assert!((r.prompt_tps.unwrap().mean - 150.0).abs() < 1e-9);
        assert!((r.gen_tps.unwrap().median - 15.0).abs() < 1e-9);
        let itl = r.itl_ms.unwrap();
        assert_eq!(itl.count, 4);
        assert!((itl.max_ms - 10.0).abs() < 0.01);
        assert!((itl.min_ms - 5.0).abs() < 0.01);
        // 0.3 ms of harness time over 4 tokens after the first, over 30 ms of spans
        assert!((r.harness_us_per_token.unwrap() - 75.0).abs() < 1e-9);
        assert!((r.harness_share.unwrap() - 0.01).abs() < 1e-12);
    }

    #[test]
    fn prompt_only_has_no_generation_figures() {
        let s = RepetitionSample {
            prompt_tps: Some(300.0),
            e2e_ms: 10.0,
            ..Default::default()
        };
        let r = results(&[s]);
        assert!(r.gen_tps.is_none() && r.ttft_ms.is_none() && r.itl_ms.is_none());
        assert!(r.harness_share.is_none());
        assert_eq!(r.e2e_ms.unwrap().n, 1);
    }
}
