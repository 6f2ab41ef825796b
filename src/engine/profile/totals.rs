//! Time and bytes per op category, accumulated from ggml's evaluation callback.
//!
//! ggml's scheduler asks the callback, node by node, whether it wants to observe a node; it
//! computes every node up to an observed one as one range, waits for the backend, then calls
//! the callback again for the observed node. The time from the first question of a range to
//! that second call is the compute time of the range: it is split over the range's nodes in
//! proportion to their work (bytes touched; views touch none), which is exact when a range
//! holds one computing node. Bytes are counted per node, not split.

use super::category::{self, Category};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One node of a finished range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeCost {
    pub category: Category,
    /// Model weights the node reads.
    pub weight_bytes: u64,
    /// KV-cache bytes the node reads.
    pub kv_bytes: u64,
    /// Relative work, for splitting a range's time: bytes touched, 0 for views.
    pub work: u64,
}

/// Time, bytes and node count of one category.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CategoryTotals {
    pub time: Duration,
    pub weight_bytes: u64,
    pub kv_bytes: u64,
    pub nodes: u64,
}

/// What the callback measured over some graph evaluations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphTotals {
    pub categories: [CategoryTotals; Category::ALL.len()],
    /// Sum of the ranges' times.
    pub node_time: Duration,
}

impl GraphTotals {
    /// Adds a finished range of `nodes` that took `elapsed`.
    pub fn add_range(&mut self, nodes: &[NodeCost], elapsed: Duration) {
        if nodes.is_empty() {
            return;
        }
        self.node_time += elapsed;
        let total_work: u128 = nodes.iter().map(|n| u128::from(n.work)).sum();
        let elapsed_ns = elapsed.as_nanos();
        let mut given = 0u128;
        for (i, n) in nodes.iter().enumerate() {
            let c = &mut self.categories[n.category.index()];
            c.nodes += 1;
            c.weight_bytes += n.weight_bytes;
            c.kv_bytes += n.kv_bytes;
            // the last node takes the remainder, so the parts add up to `elapsed` exactly
            let share = if i + 1 == nodes.len() {
                elapsed_ns - given
            } else {
                (elapsed_ns * u128::from(n.work))
                    .checked_div(total_work)
                    .unwrap_or(elapsed_ns / nodes.len() as u128)
            };
            given += share;
            c.time += Duration::from_nanos(u64::try_from(share).unwrap_or(u64::MAX));
        }
    }

    /// Adds another set of totals to these.
    pub fn merge(&mut self, other: &GraphTotals) {
        for (a, b) in self.categories.iter_mut().zip(&other.categories) {
            a.time += b.time;
            a.weight_bytes += b.weight_bytes;
            a.kv_bytes += b.kv_bytes;
            a.nodes += b.nodes;
        }
        self.node_time += other.node_time;
    }

    pub fn weight_bytes(&self) -> u64 {
        self.categories.iter().map(|c| c.weight_bytes).sum()
    }

    pub fn kv_bytes(&self) -> u64 {
        self.categories.iter().map(|c| c.kv_bytes).sum()
    }
}

/// Time per node name (layer suffix dropped) and op: which nodes a category's time is in.
/// Adding a node seen before allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeTable {
    /// Per base name: per op, its category, time and count.
    rows: std::collections::HashMap<String, Vec<NodeEntry>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct NodeEntry {
    op: &'static str,
    category: Category,
    time: Duration,
    count: u64,
}

/// One row of a [`NodeTable`], per token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    /// The node name without layer and view suffixes, e.g. `ffn_moe_up`.
    pub name: String,
    pub op: String,
    pub category: Category,
    pub ms_per_token: f64,
    pub nodes_per_token: f64,
}

impl NodeTable {
    /// Adds `elapsed` to the node named `name` (full name: suffixes are dropped here).
    pub fn add(&mut self, name: &str, op: &'static str, category: Category, elapsed: Duration) {
        self.add_entry(
            category::base_name(name).0,
            NodeEntry {
                op,
                category,
                time: elapsed,
                count: 1,
            },
        );
    }

    fn add_entry(&mut self, base: &str, e: NodeEntry) {
        let ops = match self.rows.get_mut(base) {
            Some(ops) => ops,
            None => self.rows.entry(base.to_string()).or_default(),
        };
        match ops.iter_mut().find(|x| x.op == e.op) {
            Some(x) => {
                x.time += e.time;
                x.count += e.count;
            }
            None => ops.push(e),
        }
    }

    pub fn merge(&mut self, other: &NodeTable) {
        for (base, ops) in &other.rows {
            for &e in ops {
                self.add_entry(base, e);
            }
        }
    }

    /// The `n` rows with the most time, per token over `tokens` tokens.
    pub fn top(&self, n: usize, tokens: u64) -> Vec<NodeRow> {
        let per = tokens.max(1) as f64;
        let mut rows: Vec<NodeRow> = self
            .rows
            .iter()
            .flat_map(|(name, ops)| ops.iter().map(move |e| (name, e)))
            .map(|(name, e)| NodeRow {
                name: if name.is_empty() {
                    "(unnamed)".into()
                } else {
                    name.clone()
                },
                op: e.op.to_string(),
                category: e.category,
                ms_per_token: e.time.as_secs_f64() * 1000.0 / per,
                nodes_per_token: e.count as f64 / per,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.ms_per_token
                .total_cmp(&a.ms_per_token)
                .then_with(|| a.name.cmp(&b.name))
        });
        rows.truncate(n);
        rows
    }
}

/// A node of `category` reading `weight_bytes` of weights, `work` its share of a range.
#[cfg(test)]
pub(crate) fn node(category: Category, weight_bytes: u64, work: u64) -> NodeCost {
    NodeCost {
        category,
        weight_bytes,
        kv_bytes: 0,
        work,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::node;

    #[test]
    fn a_range_is_split_by_work_and_adds_up() {
        let mut t = GraphTotals::default();
        let range = [
            node(Category::Attention, 0, 0),
            node(Category::Ffn, 300, 300),
            node(Category::Router, 100, 100),
        ];
        t.add_range(&range, Duration::from_micros(1000));
        let at = |c: Category| t.categories[c.index()].time;
        assert_eq!(
            at(Category::Attention),
            Duration::ZERO,
            "a view takes no time"
        );
        assert_eq!(at(Category::Ffn), Duration::from_micros(750));
        assert_eq!(at(Category::Router), Duration::from_micros(250));
        assert_eq!(t.node_time, Duration::from_micros(1000));
        assert_eq!(t.weight_bytes(), 400);
        // ranges of views only are split evenly, and odd nanoseconds are not lost
        t.add_range(
            &[node(Category::Norm, 0, 0), node(Category::Other, 0, 0)],
            Duration::from_nanos(3),
        );
        let sum: Duration = t.categories.iter().map(|c| c.time).sum();
        assert_eq!(sum, t.node_time);
        let before = t.clone();
        t.add_range(&[], Duration::from_secs(1));
        assert_eq!(t, before, "an empty range is ignored");
    }

    #[test]
    fn the_node_table_merges_layers_and_ranks_by_time() {
        let mut t = NodeTable::default();
        t.add(
            "ffn_up-0",
            "MUL_MAT",
            Category::Ffn,
            Duration::from_millis(4),
        );
        t.add(
            "ffn_up-1",
            "MUL_MAT",
            Category::Ffn,
            Duration::from_millis(4),
        );
        t.add(
            "kq-0",
            "MUL_MAT",
            Category::Attention,
            Duration::from_millis(2),
        );
        let mut u = NodeTable::default();
        u.add("", "ADD", Category::Other, Duration::from_millis(1));
        u.add(
            "kq-1",
            "MUL_MAT",
            Category::Attention,
            Duration::from_millis(2),
        );
        t.merge(&u);
        let top = t.top(2, 2);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].name, "ffn_up");
        assert!((top[0].ms_per_token - 4.0).abs() < 1e-9);
        assert!((top[0].nodes_per_token - 1.0).abs() < 1e-9);
        assert_eq!(top[1].name, "kq");
        assert_eq!(t.top(10, 2)[2].name, "(unnamed)");
    }

    #[test]
    fn totals_merge() {
        let mut a = GraphTotals::default();
        a.add_range(&[node(Category::Ffn, 10, 1)], Duration::from_millis(2));
        let mut b = GraphTotals::default();
        b.add_range(&[node(Category::Experts, 20, 1)], Duration::from_millis(3));
        a.merge(&b);
        assert_eq!(a.node_time, Duration::from_millis(5));
        assert_eq!(a.weight_bytes(), 30);
        assert_eq!(a.categories[Category::Experts.index()].nodes, 1);
    }
}
