//! The routing-overhead figure: how much longer an MoE token takes than a dense token that
//! reads as many bytes.
//!
//! Decode is bound by memory bandwidth, so a dense model's time per token scales with the bytes
//! it reads per token. The dense reference's time is scaled to the MoE's active bytes (shared
//! weights, the selected experts and the KV cache): `dense_scaled = dense_ms × moe_bytes /
//! dense_bytes`. What the MoE takes beyond that is the routing overhead (router, expert
//! dispatch and mixing, scattered reads): `overhead = moe_ms - dense_scaled`, and its share of
//! the MoE's token time `overhead / moe_ms`. A negative overhead means the MoE ran faster than
//! the bandwidth scaling predicts (small models are not purely bandwidth-bound).

use serde::{Deserialize, Serialize};

/// Time and bytes of one token of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TokenCost {
    /// Time per token without the profiler, in milliseconds.
    pub ms: f64,
    /// Weights and KV cache read per token.
    pub bytes: f64,
}

/// The routing overhead of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    pub moe_ms: f64,
    pub moe_bytes: f64,
    pub dense_ms: f64,
    pub dense_bytes: f64,
    /// The dense time scaled to the MoE's bytes.
    pub dense_scaled_ms: f64,
    /// moe_ms - dense_scaled_ms.
    pub overhead_ms: f64,
    /// overhead_ms / moe_ms.
    pub share: f64,
}

/// The overhead of `moe` against `dense`; `None` when a figure is missing or not positive.
pub fn overhead(moe: TokenCost, dense: TokenCost) -> Option<Overhead> {
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if !(ok(moe.ms) && ok(moe.bytes) && ok(dense.ms) && ok(dense.bytes)) {
        return None;
    }
    let dense_scaled_ms = dense.ms * moe.bytes / dense.bytes;
    let overhead_ms = moe.ms - dense_scaled_ms;
    Some(Overhead {
        moe_ms: moe.ms,
        moe_bytes: moe.bytes,
        dense_ms: dense.ms,
        dense_bytes: dense.bytes,
        dense_scaled_ms,
        overhead_ms,
        share: overhead_ms / moe.ms,
    })
}

/// The median of some durations in milliseconds; `None` when there are none.
pub fn median_ms(samples: &[std::time::Duration]) -> Option<f64> {
    let v: Vec<f64> = samples.iter().map(|&d| crate::measure::ms(d)).collect();
    crate::util::quantile::percentile(&v, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dense_time_is_scaled_to_the_moe_bytes() {
        let moe = TokenCost {
            ms: 30.0,
            bytes: 150e6,
        };
        let dense = TokenCost {
            ms: 20.0,
            bytes: 100e6,
        };
        let o = overhead(moe, dense).unwrap();
        assert!((o.dense_scaled_ms - 30.0).abs() < 1e-9);
        assert!(o.overhead_ms.abs() < 1e-9);
        let o = overhead(TokenCost { ms: 40.0, ..moe }, dense).unwrap();
        assert!((o.overhead_ms - 10.0).abs() < 1e-9);
        assert!((o.share - 0.25).abs() < 1e-9);
        let o = overhead(TokenCost { ms: 24.0, ..moe }, dense).unwrap();
        assert!(o.share < 0.0, "faster than the scaling predicts");
    }

    #[test]
    fn missing_figures_give_none() {
        let good = TokenCost {
            ms: 1.0,
            bytes: 1.0,
        };
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(overhead(TokenCost { ms: bad, ..good }, good).is_none());
            assert!(overhead(good, TokenCost { bytes: bad, ..good }).is_none());
        }
    }

    #[test]
    fn median_of_durations() {
        let d = |ms| Duration::from_millis(ms);
        assert_eq!(median_ms(&[d(3), d(1), d(2)]), Some(2.0));
        assert_eq!(median_ms(&[]), None);
    }
}
