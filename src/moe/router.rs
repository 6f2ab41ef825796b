//! Router weights for an upcycled MoE: the `ffn_gate_inp` matrix that scores experts per token.
//!
//! With identical experts the router changes which experts' weights each token reads, and in
//! exact arithmetic never the output: llama's MoE sums the K chosen experts' outputs with
//! softmax weights renormalised to sum to 1. In floating point, K unequal weights w_i give
//! sum(w_i * y) = y only to within rounding, and quantized activations (each matmul requantizes
//! its input to 8 bits) amplify a one-ulp difference into visibly different logits.
//!
//! - `grouped` (default): experts in groups of K share one seeded random router row, so every
//!   token takes one whole group, chosen by its own hidden state (routing changes from token
//!   to token over N/K groups) with weights exactly 1/K: for K = 1 or 2 the MoE reproduces
//!   the dense model bit for bit.
//! - `random`: every expert has its own seeded random row: independent top-K choices with
//!   unequal weights, as in a trained MoE; equal to the dense model only up to rounding.
//! - `uniform`: all zeros; every expert scores the same and every token takes the same
//!   experts (the best case for locality; exact).

use crate::util::rng::SplitMix64;

crate::util::names::named_enum! {
    /// How the router's weights are chosen.
    pub enum Router {
        /// Seeded random rows shared by groups of K experts: each token takes one whole group,
        /// with weights exactly 1/K.
        Grouped = "grouped",
        /// Seeded random rows, one per expert: independent top-K choices, unequal weights.
        Random = "random",
        /// All zeros: every expert scores the same, every token takes the same experts.
        Uniform = "uniform",
    }
}

/// The router matrix of one layer as little-endian f32 bytes, one row of `n_embd` values per
/// expert (ggml ne = [n_embd, n_expert]). Random values are uniform in ±1/sqrt(n_embd) (the
/// usual initialisation of a linear layer), drawn from SplitMix64 seeded with `seed` and the
/// layer. `Grouped` repeats each random row for `n_used` experts in a row (`n_used` must
/// divide `n_expert`).
pub fn weights(
    router: Router,
    n_embd: u64,
    n_expert: u64,
    n_used: u64,
    seed: u64,
    layer: u64,
) -> Vec<u8> {
    let row_bytes = n_embd as usize * 4;
    let (n_rows, repeat) = match router {
        Router::Uniform => return vec![0u8; row_bytes * n_expert as usize],
        Router::Random => (n_expert, 1),
        Router::Grouped => (n_expert / n_used.max(1), n_used.max(1)),
    };
    let bound = 1.0 / (n_embd.max(1) as f64).sqrt();
    let mut rng = SplitMix64(seed ^ layer.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut out = Vec::with_capacity(row_bytes * n_expert as usize);
    for _ in 0..n_rows {
        let start = out.len();
        for _ in 0..n_embd {
            let v = (rng.unit() * 2.0 - 1.0) * bound;
            out.extend_from_slice(&(v as f32).to_le_bytes());
        }
        for _ in 1..repeat {
            out.extend_from_within(start..start + row_bytes);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(b: &[u8]) -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn random_weights_are_seeded_bounded_and_differ_per_layer() {
        let a = weights(Router::Random, 576, 4, 2, 42, 0);
        assert_eq!(a.len(), 576 * 4 * 4);
        assert_eq!(
            a,
            weights(Router::Random, 576, 4, 2, 42, 0),
            "same seed, same bytes"
        );
        assert_ne!(a, weights(Router::Random, 576, 4, 2, 43, 0), "seed matters");
        assert_ne!(
            a,
            weights(Router::Random, 576, 4, 2, 42, 1),
            "layers differ"
        );
        let rows: Vec<&[u8]> = a.chunks(576 * 4).collect();
        for i in 0..4 {
            for j in 0..i {
                assert_ne!(rows[i], rows[j], "rows {i} and {j} are distinct");
            }
        }
        let v = floats(&a);
        let bound = 1.0f32 / 24.0; // 1/sqrt(576)
        assert!(v.iter().all(|x| x.abs() <= bound), "within ±1/sqrt(n_embd)");
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.1 * f64::from(bound), "centred: mean {mean}");
        let distinct: std::collections::HashSet<u32> = v.iter().map(|x| x.to_bits()).collect();
        assert!(distinct.len() > v.len() * 9 / 10, "not constant");
    }

    #[test]
    fn grouped_weights_repeat_one_row_per_group() {
        let g = weights(Router::Grouped, 64, 6, 2, 42, 3);
        assert_eq!(g.len(), 64 * 6 * 4);
        let rows: Vec<&[u8]> = g.chunks(64 * 4).collect();
        assert_eq!(rows[0], rows[1]);
        assert_eq!(rows[2], rows[3]);
        assert_eq!(rows[4], rows[5]);
        assert_ne!(rows[0], rows[2]);
        assert_ne!(rows[2], rows[4]);
        assert_ne!(
            g,
            weights(Router::Grouped, 64, 6, 2, 42, 4),
            "layers differ"
        );
        let k1 = weights(Router::Grouped, 64, 4, 1, 42, 0);
        assert_eq!(
            k1,
            weights(Router::Random, 64, 4, 1, 42, 0),
            "K = 1: one row each"
        );
    }

    #[test]
    fn uniform_weights_are_zero() {
        let u = weights(Router::Uniform, 8, 3, 1, 42, 5);
        assert_eq!(u, vec![0u8; 8 * 3 * 4]);
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of the reference C implementation seeded with 0.
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
