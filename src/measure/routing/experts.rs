//! Expert-selection statistics from the ids the router chose (`ffn_moe_topk-N`), token by
//! token: how often each expert of a layer was used, how many of a token's experts the
//! previous token also used, and how many distinct experts a window of tokens touches.

use crate::engine::profile::SelectionTrace;
use serde::{Deserialize, Serialize};

/// Statistics of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerExperts {
    pub layer: u32,
    /// Selections of each expert over the tokens (sums to tokens × experts used).
    pub usage: Vec<u64>,
    /// Share of a token's selected experts that the previous token also selected.
    pub reuse_share: Option<f64>,
    /// Mean number of distinct experts over every window of `window` consecutive tokens.
    pub distinct_mean: Option<f64>,
    pub distinct_max: Option<u32>,
}

/// Expert-selection statistics of a decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertStats {
    pub tokens: usize,
    pub n_expert: u32,
    pub n_expert_used: u32,
    pub window: usize,
    /// Means over layers.
    pub reuse_share: Option<f64>,
    pub distinct_mean: Option<f64>,
    /// What a router choosing uniformly at random would give: reuse k/n, distinct
    /// n (1 - (1 - k/n)^window).
    pub uniform_reuse_share: f64,
    pub uniform_distinct: f64,
    /// Ids outside the expert range (0 unless something is wrong).
    pub invalid_ids: u64,
    pub layers: Vec<LayerExperts>,
}

/// Statistics of `trace` for a model of `n_expert` experts using `k` per token, with
/// distinct experts counted over windows of `window` tokens. `None` when nothing was traced.
pub fn stats(trace: &SelectionTrace, n_expert: u32, k: u32, window: usize) -> Option<ExpertStats> {
    if trace.is_empty() || n_expert == 0 {
        return None;
    }
    let window = window.max(1);
    let layers: Vec<LayerExperts> = trace
        .layers()
        .iter()
        .map(|(&layer, rows)| layer_stats(layer, rows, n_expert, window))
        .collect();
    let mean = |f: &dyn Fn(&LayerExperts) -> Option<f64>| {
        let v: Vec<f64> = layers.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let p = f64::from(k.min(n_expert)) / f64::from(n_expert);
    Some(ExpertStats {
        tokens: trace.tokens(),
        n_expert,
        n_expert_used: k,
        window,
        reuse_share: mean(&|l| l.reuse_share),
        distinct_mean: mean(&|l| l.distinct_mean),
        uniform_reuse_share: p,
        uniform_distinct: f64::from(n_expert) * (1.0 - (1.0 - p).powi(window as i32)),
        invalid_ids: trace.invalid,
        layers,
    })
}

fn layer_stats(layer: u32, rows: &[Vec<u32>], n_expert: u32, window: usize) -> LayerExperts {
    let mut usage = vec![0u64; n_expert as usize];
    for &e in rows.iter().flatten() {
        usage[e as usize] += 1;
    }
    let (mut kept, mut selected) = (0usize, 0usize);
    for pair in rows.windows(2) {
        kept += pair[1].iter().filter(|e| pair[0].contains(e)).count();
        selected += pair[1].len();
    }
    let distinct: Vec<u32> = rows
        .windows(window)
        .map(|w| {
            let mut seen = vec![false; n_expert as usize];
            w.iter().flatten().for_each(|&e| seen[e as usize] = true);
            seen.iter().filter(|&&s| s).count() as u32
        })
        .collect();
    LayerExperts {
        layer,
        usage,
        reuse_share: (selected > 0).then(|| kept as f64 / selected as f64),
        distinct_mean: (!distinct.is_empty())
            .then(|| f64::from(distinct.iter().sum::<u32>()) / distinct.len() as f64),
        distinct_max: distinct.iter().copied().max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(layer_rows: &[(u32, &[[i32; 2]])]) -> SelectionTrace {
        let mut t = SelectionTrace::default();
        for (layer, rows) in layer_rows {
            for row in *rows {
                t.push(*layer, 2, row, 4);
            }
        }
        t
    }

    #[test]
    fn usage_reuse_and_distinct_follow_their_definitions() {
        let t = trace(&[(0, &[[0, 1], [1, 2], [1, 2], [3, 0]])]);
        let s = stats(&t, 4, 2, 2).unwrap();
        assert_eq!(s.tokens, 4);
        let l = &s.layers[0];
        assert_eq!(l.usage, vec![2, 3, 2, 1]);
        assert_eq!(l.usage.iter().sum::<u64>(), 4 * 2, "tokens × k");
        // kept from the previous token: 1 ({1}), 2 ({1,2}), 0 → 3 of 6
        assert!((l.reuse_share.unwrap() - 0.5).abs() < 1e-12);
        // windows of 2: {0,1,2}=3, {1,2}=2, {0,1,2,3}=4
        assert!((l.distinct_mean.unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(l.distinct_max, Some(4));
        assert_eq!(s.uniform_reuse_share, 0.5);
        // 4 (1 - 0.5^2)
        assert!((s.uniform_distinct - 3.0).abs() < 1e-12);
    }

    #[test]
    fn layers_are_averaged_and_bounded() {
        let t = trace(&[
            (0, &[[0, 1], [0, 1], [0, 1]]),
            (5, &[[0, 1], [2, 3], [0, 1]]),
        ]);
        let s = stats(&t, 4, 2, 3).unwrap();
        assert_eq!(s.layers.len(), 2);
        assert_eq!(s.layers[1].layer, 5);
        assert_eq!(s.layers[0].reuse_share, Some(1.0));
        assert_eq!(s.layers[1].reuse_share, Some(0.0));
        assert_eq!(s.reuse_share, Some(0.5));
        assert_eq!(s.layers[0].distinct_mean, Some(2.0));
        assert_eq!(s.layers[1].distinct_mean, Some(4.0));
        assert_eq!(s.distinct_mean, Some(3.0));
        for l in &s.layers {
            assert!(l.distinct_max.unwrap() <= 4);
        }
    }

    #[test]
    fn short_traces_and_bad_ids() {
        let t = trace(&[(0, &[[0, 1]])]);
        let s = stats(&t, 4, 2, 8).unwrap();
        assert_eq!(
            s.layers[0].reuse_share, None,
            "one token has no previous one"
        );
        assert_eq!(s.layers[0].distinct_mean, None, "shorter than the window");
        assert_eq!(s.reuse_share, None);
        let mut t = SelectionTrace::default();
        t.push(0, 2, &[0, 7, -1, 3], 4);
        assert_eq!(t.invalid, 2);
        assert_eq!(t.tokens(), 2);
        assert!(stats(&SelectionTrace::default(), 4, 2, 8).is_none());
        assert!(stats(&t, 0, 2, 8).is_none());
        t.push(1, 0, &[1, 2], 4);
        assert_eq!(t.tokens(), 2, "k 0 adds nothing");
        let mut u = SelectionTrace::default();
        u.push(0, 2, &[1, 2], 4);
        u.append(&t);
        assert_eq!(u.tokens(), 3);
        assert_eq!(u.invalid, 2);
    }
}
