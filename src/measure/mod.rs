//! Pure measurement maths: a request's trace turned into its figures (the one definition of
//! TTFT, ITL and rates), statistics over samples, latency histograms, the bytes a decoded token
//! reads, the routing overhead of Mixture-of-Experts models, and load levels (arrival
//! schedules, SLOs, goodput and the knee).

pub mod bandwidth;
pub mod compare;
pub mod fit;
pub mod histogram;
pub mod load;
pub mod routing;
pub mod stats;
pub mod trace;

use histogram::HistogramSummary;
use serde::{Deserialize, Serialize};
use stats::Summary;
pub use trace::{
    gaps_ms, itl_histogram_ms, ms, EngineTime, FailureKind, StopReason, TokenUnit, Trace,
};

/// Statistics over repetitions. Rates state what they divide: `prompt_tps` = prompt tokens /
/// prompt-eval seconds; `gen_tps` = (generated tokens - 1) / (last token time - first token
/// time). Times are milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub prompt_tps: Option<Summary>,
    pub gen_tps: Option<Summary>,
    /// From the start of prompt evaluation to the first generated token.
    pub ttft_ms: Option<Summary>,
    /// Gaps between consecutive generated tokens, all repetitions pooled.
    pub itl_ms: Option<HistogramSummary>,
    pub e2e_ms: Option<Summary>,
    /// Harness time outside llama.cpp calls per generated token, and its share of token time.
    pub harness_us_per_token: Option<f64>,
    pub harness_share: Option<f64>,
}

/// One repetition, raw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepetitionSample {
    pub prompt_ms: f64,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: f64,
    pub prompt_tps: Option<f64>,
    pub gen_tps: Option<f64>,
    /// Time of each generated token since the start of the repetition.
    pub token_ms: Vec<f64>,
    /// Time between the first and last token spent outside llama.cpp calls.
    pub harness_ms: f64,
}

impl RepetitionSample {
    /// The raw sample of one repetition's trace.
    pub fn of(trace: &Trace) -> RepetitionSample {
        let m = trace.metrics();
        RepetitionSample {
            prompt_ms: trace.prompt_eval.map_or(0.0, ms),
            ttft_ms: m.ttft.map(ms),
            e2e_ms: ms(m.e2e),
            prompt_tps: m.prompt_tps,
            gen_tps: m.decode_tps,
            token_ms: trace.tokens.iter().map(|&d| ms(d)).collect(),
            harness_ms: m.harness.map_or(0.0, ms),
        }
    }
}

/// Statistics over the repetitions of one test.
pub fn results(samples: &[RepetitionSample]) -> Results {
    let collect = |f: &dyn Fn(&RepetitionSample) -> Option<f64>| -> Option<Summary> {
        let v: Vec<f64> = samples.iter().filter_map(f).collect();
        Summary::of(&v)
    };
    let itl = itl_histogram_ms(samples.iter().map(|s| s.token_ms.as_slice()));
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
    fn a_sample_holds_its_traces_figures() {
        use std::time::Duration;
        let d = Duration::from_millis;
        let t = Trace {
            prompt_tokens: 100,
            output_tokens: Some(3),
            prompt_eval: Some(d(50)),
            first_text: Some(d(60)),
            tokens: vec![d(60), d(80), d(100)],
            end: d(100),
            engine: Some(EngineTime {
                prompt: d(50),
                decode: d(39),
            }),
            ..Default::default()
        };
        let s = RepetitionSample::of(&t);
        assert!((s.prompt_tps.unwrap() - 2000.0).abs() < 1e-6);
        assert!((s.gen_tps.unwrap() - 50.0).abs() < 1e-6);
        assert_eq!(s.ttft_ms, Some(60.0));
        assert_eq!((s.e2e_ms, s.prompt_ms), (100.0, 50.0));
        assert!((s.harness_ms - 1.0).abs() < 1e-9);
        assert_eq!(s.token_ms, vec![60.0, 80.0, 100.0]);
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
