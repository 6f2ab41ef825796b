//! The routing figures of an MoE model in one small block: router and expert shares of the
//! token time, the overhead against a dense reference, expert locality. `runner profile`
//! prints it and sweep records of MoE models carry it.

use super::experts::ExpertStats;
use super::overhead::{overhead, Overhead, TokenCost};
use super::timing::Breakdown;
use crate::engine::profile::Category;
use serde::{Deserialize, Serialize};

/// Routing figures of one phase (short-response or long-form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingPhase {
    /// Median time per token without the profiler, in milliseconds.
    pub ms_per_token: f64,
    /// Weights and KV cache read per token (selected experts only).
    pub bytes_per_token: f64,
    /// Shares of the profiled token time.
    pub router_share: f64,
    pub experts_share: f64,
    pub expert_mix_share: f64,
    /// Against the dense reference at equal active bytes, when there is one.
    pub overhead: Option<Overhead>,
}

/// A phase of the dense reference: its unprofiled time and profiled bytes per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensePhase<'a> {
    pub ms_per_token: f64,
    pub breakdown: &'a Breakdown,
}

/// The routing figures of a phase of an MoE model measured at `ms_per_token` (unprofiled)
/// with the profiled `breakdown`.
pub fn routing_phase(
    ms_per_token: f64,
    breakdown: &Breakdown,
    dense: Option<DensePhase<'_>>,
) -> RoutingPhase {
    let moe = TokenCost {
        ms: ms_per_token,
        bytes: breakdown.bytes_per_token(),
    };
    RoutingPhase {
        ms_per_token,
        bytes_per_token: moe.bytes,
        router_share: breakdown.share(Category::Router),
        experts_share: breakdown.share(Category::Experts),
        expert_mix_share: breakdown.share(Category::ExpertMix),
        overhead: dense.and_then(|d| {
            overhead(
                moe,
                TokenCost {
                    ms: d.ms_per_token,
                    bytes: d.breakdown.bytes_per_token(),
                },
            )
        }),
    }
}

/// The routing block of a profile or a sweep cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingSummary {
    pub n_expert: u32,
    pub n_expert_used: u32,
    /// The first token decoded after a short prompt (batch of one).
    pub short: Option<RoutingPhase>,
    /// Steady decode at depth.
    pub long: Option<RoutingPhase>,
    /// Long-form tokens the expert statistics cover.
    pub tokens: usize,
    pub window: usize,
    pub reuse_share: Option<f64>,
    pub distinct_mean: Option<f64>,
    /// The dense reference the overhead is measured against.
    pub dense: Option<String>,
    /// Why there is no overhead figure, when there is none.
    pub note: Option<String>,
}

impl RoutingSummary {
    pub fn new(
        short: Option<RoutingPhase>,
        long: Option<RoutingPhase>,
        experts: Option<&ExpertStats>,
        dense: Option<String>,
        note: Option<String>,
    ) -> RoutingSummary {
        RoutingSummary {
            n_expert: experts.map_or(0, |e| e.n_expert),
            n_expert_used: experts.map_or(0, |e| e.n_expert_used),
            short,
            long,
            tokens: experts.map_or(0, |e| e.tokens),
            window: experts.map_or(0, |e| e.window),
            reuse_share: experts.and_then(|e| e.reuse_share),
            distinct_mean: experts.and_then(|e| e.distinct_mean),
            dense,
            note,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::profile::{GraphTotals, NodeCost};
    use crate::measure::routing::timing::breakdown;
    use std::time::Duration;

    fn profile(parts: &[(Category, u64, u64)]) -> Breakdown {
        let mut t = GraphTotals::default();
        for &(category, ms, bytes) in parts {
            t.add_range(
                &[NodeCost {
                    category,
                    weight_bytes: bytes,
                    kv_bytes: 0,
                    work: 1,
                }],
                Duration::from_millis(ms),
            );
        }
        breakdown(&t, Duration::from_millis(10), 1).unwrap()
    }

    #[test]
    fn a_phase_carries_shares_and_the_overhead() {
        let moe = profile(&[
            (Category::Attention, 2, 100),
            (Category::Router, 1, 10),
            (Category::Experts, 6, 190),
            (Category::ExpertMix, 1, 0),
        ]);
        let dense = profile(&[(Category::Attention, 2, 100), (Category::Ffn, 3, 100)]);
        let p = routing_phase(
            12.0,
            &moe,
            Some(DensePhase {
                ms_per_token: 4.0,
                breakdown: &dense,
            }),
        );
        assert!((p.router_share - 0.1).abs() < 1e-9);
        assert!((p.experts_share - 0.6).abs() < 1e-9);
        assert!((p.bytes_per_token - 300.0).abs() < 1e-9);
        let o = p.overhead.unwrap();
        // dense: 4 ms for 200 bytes → 6 ms at 300 bytes; 12 - 6 = 6 ms, half the MoE token
        assert!((o.dense_scaled_ms - 6.0).abs() < 1e-9);
        assert!((o.share - 0.5).abs() < 1e-9);
        assert!(routing_phase(12.0, &moe, None).overhead.is_none());
    }

    #[test]
    fn the_summary_takes_expert_figures() {
        let mut trace = crate::engine::profile::SelectionTrace::default();
        for row in [[0, 1], [1, 2], [2, 3]] {
            trace.push(0, 2, &row, 4);
        }
        let stats = crate::measure::routing::experts::stats(&trace, 4, 2, 2).unwrap();
        let s = RoutingSummary::new(None, None, Some(&stats), None, Some("no dense".into()));
        assert_eq!(
            (s.n_expert, s.n_expert_used, s.tokens, s.window),
            (4, 2, 3, 2)
        );
        assert_eq!(s.reuse_share, Some(0.5));
        assert_eq!(s.distinct_mean, Some(3.0));
        let empty = RoutingSummary::new(None, None, None, None, None);
        assert_eq!(empty.n_expert, 0);
    }
}
