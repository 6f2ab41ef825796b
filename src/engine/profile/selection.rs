//! The experts each MoE layer's router selected, token by token, as the evaluation callback
//! read them.

use std::collections::BTreeMap;

/// The experts each layer selected for each token, in token order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectionTrace {
    /// Per layer: per token, the selected expert ids.
    layers: BTreeMap<u32, Vec<Vec<u32>>>,
    /// Ids outside `[0, n_expert)`, dropped.
    pub invalid: u64,
}

impl SelectionTrace {
    /// Adds the selection of one layer for a batch: `ids` holds `k` ids per token, token after
    /// token. Ids outside `[0, n_expert)` are counted in `invalid` and dropped.
    pub fn push(&mut self, layer: u32, k: usize, ids: &[i32], n_expert: u32) {
        if k == 0 {
            return;
        }
        let rows = self.layers.entry(layer).or_default();
        for token in ids.chunks(k) {
            let mut row = Vec::with_capacity(k);
            for &id in token {
                match u32::try_from(id) {
                    Ok(e) if e < n_expert => row.push(e),
                    _ => self.invalid += 1,
                }
            }
            rows.push(row);
        }
    }

    /// Adds the selections of `other` after these.
    pub fn append(&mut self, other: &SelectionTrace) {
        for (&layer, rows) in &other.layers {
            self.layers
                .entry(layer)
                .or_default()
                .extend(rows.iter().cloned());
        }
        self.invalid += other.invalid;
    }

    /// Tokens seen by the layer that saw the most.
    pub fn tokens(&self) -> usize {
        self.layers.values().map(Vec::len).max().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Per layer, per token, the selected expert ids.
    pub fn layers(&self) -> &BTreeMap<u32, Vec<Vec<u32>>> {
        &self.layers
    }
}
