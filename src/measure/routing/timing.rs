//! The breakdown of a phase's profiled time into op categories, per token, from the totals the
//! evaluation callback accumulated.

use crate::engine::profile::{Category, GraphTotals};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One category per token, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryReport {
    pub category: Category,
    /// Mean time per token in the profiled run, in milliseconds.
    pub ms_per_token: f64,
    /// This category's time / the measured (profiled) token time.
    pub share: f64,
    pub weight_bytes_per_token: f64,
    pub kv_bytes_per_token: f64,
    pub nodes_per_token: f64,
}

/// The breakdown of one phase: categories per token and how much of the measured time the
/// callback saw inside graph nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Mean llama_decode time per token of the profiled run, in milliseconds.
    pub measured_ms_per_token: f64,
    /// Mean time inside graph nodes per token.
    pub node_ms_per_token: f64,
    /// node time / measured time: how much of the token time the categories account for.
    pub coverage: f64,
    pub weight_bytes_per_token: f64,
    pub kv_bytes_per_token: f64,
    /// Categories with at least one node, in report order.
    pub categories: Vec<CategoryReport>,
}

/// The breakdown of `totals`, measured over `tokens` tokens whose llama_decode calls took
/// `measured` in all. `None` without tokens or time.
pub fn breakdown(totals: &GraphTotals, measured: Duration, tokens: u64) -> Option<Breakdown> {
    if tokens == 0 || measured.is_zero() {
        return None;
    }
    let n = tokens as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / n;
    let measured_ms = ms(measured);
    let categories = Category::ALL
        .iter()
        .map(|&c| (c, totals.categories[c.index()]))
        .filter(|(_, t)| t.nodes > 0)
        .map(|(category, t)| CategoryReport {
            category,
            ms_per_token: ms(t.time),
            share: ms(t.time) / measured_ms,
            weight_bytes_per_token: t.weight_bytes as f64 / n,
            kv_bytes_per_token: t.kv_bytes as f64 / n,
            nodes_per_token: t.nodes as f64 / n,
        })
        .collect();
    Some(Breakdown {
        measured_ms_per_token: measured_ms,
        node_ms_per_token: ms(totals.node_time),
        coverage: ms(totals.node_time) / measured_ms,
        weight_bytes_per_token: totals.weight_bytes() as f64 / n,
        kv_bytes_per_token: totals.kv_bytes() as f64 / n,
        categories,
    })
}

impl Breakdown {
    /// The share of one category (0 when it has no nodes).
    pub fn share(&self, c: Category) -> f64 {
        self.categories
            .iter()
            .find(|r| r.category == c)
            .map_or(0.0, |r| r.share)
    }

    /// Weights and KV cache read per token.
    pub fn bytes_per_token(&self) -> f64 {
        self.weight_bytes_per_token + self.kv_bytes_per_token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::profile::{node, NodeCost};

    #[test]
    fn breakdown_is_per_token_against_measured_time() {
        let mut t = GraphTotals::default();
        for _ in 0..4 {
            t.add_range(&[node(Category::Ffn, 1000, 1)], Duration::from_millis(6));
            t.add_range(
                &[NodeCost {
                    kv_bytes: 500,
                    ..node(Category::Attention, 200, 1)
                }],
                Duration::from_millis(3),
            );
        }
        let b = breakdown(&t, Duration::from_millis(40), 4).unwrap();
        assert!((b.measured_ms_per_token - 10.0).abs() < 1e-9);
        assert!((b.node_ms_per_token - 9.0).abs() < 1e-9);
        assert!((b.coverage - 0.9).abs() < 1e-9);
        assert_eq!(b.categories.len(), 2, "only categories with nodes");
        assert!((b.share(Category::Ffn) - 0.6).abs() < 1e-9);
        assert_eq!(b.share(Category::Router), 0.0);
        assert!((b.weight_bytes_per_token - 1200.0).abs() < 1e-9);
        assert!((b.bytes_per_token() - 1700.0).abs() < 1e-9);
        assert!(breakdown(&t, Duration::ZERO, 4).is_none());
        assert!(breakdown(&t, Duration::from_millis(1), 0).is_none());
    }
}
