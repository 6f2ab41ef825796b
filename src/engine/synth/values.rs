//! Well-scaled random values for a synthetic tensor, and their encoding in a ggml type by
//! ggml's own quantizer (so that every block is one llama.cpp could have written).

use super::SynthError;
use crate::gguf::GgmlType;
use crate::models::catalogue::Init;
use crate::util::rng::SplitMix64;
use llama_cpp_sys_2 as sys;

/// A standard normal draw (Box-Muller; one of the pair).
fn normal(rng: &mut SplitMix64) -> f32 {
    let u1 = rng.unit().max(f64::MIN_POSITIVE);
    let u2 = rng.unit();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// How widely real checkpoints' weight magnitudes vary, in binades (standard deviation of
/// log2). Projections and embeddings of trained models are not one Gaussian: rows, groups of
/// 32 values within a row and tensors of different roles each have their own scale, and norm
/// weights spread over channels. The spread matters for speed, not only for realism: the CPU
/// backend turns every block's f16 scale into f32 through a 256 KiB lookup table, so the
/// number of distinct scales a decode touches sets how much of that table competes for the
/// L1 cache. Fitted to the fetchable models' quantized tensors (standard deviation of log2 of
/// the block scales: 0.37-0.62 per 32-value block, 0.29-0.46 per 256-value super-block) and
/// norm weights (0.47-0.62 for Llama and Qwen2); row and group spreads of 0.25 give 0.45 and
/// 0.33, and twins of all four within 3 % of the real files' speed (0.3 made SmolLM2's twin,
/// whose real blocks spread least, 3.5 % slow).
const ROW_SPREAD: f32 = 0.25;
const GROUP_SPREAD: f32 = 0.25;
/// Between tensor roles (`attn_q`, `ffn_up`, ...), shared by every layer's tensor of the role.
pub const ROLE_SPREAD: f32 = 0.5;
const NORM_SPREAD: f32 = 0.55;
/// Values per group with their own scale: the block of the 32-value quantization types.
const GROUP: u64 = 32;

/// A log-normal factor of `spread` binades with a mean square of 1, so that it widens the
/// distribution without changing the activations' scale.
pub fn spread_factor(spread: f32, rng: &mut SplitMix64) -> f32 {
    let s = spread * std::f32::consts::LN_2;
    (s * normal(rng) - s * s).exp()
}

/// `n` values for a tensor whose rows are `fan_in` long, drawn as `init` says: projections
/// and routers N(0, 1/fan_in) on average, so that a unit-scale input gives a unit-scale output
/// and activations stay finite through every layer, with projections (and unit-scale
/// embeddings) spread over rows and 32-value groups as trained weights are; norms log-normal
/// around 1; biases small; Gated DeltaNet decays negative.
pub fn draw(init: Init, n: usize, fan_in: u64, rng: &mut SplitMix64) -> Vec<f32> {
    let fan_in = fan_in.max(1);
    let scale = 1.0 / (fan_in as f32).sqrt();
    let (mut row, mut group) = (1.0, 1.0);
    (0..n as u64)
        .map(|i| match init {
            Init::Matrix | Init::Embedding => {
                if i.is_multiple_of(fan_in) {
                    row = spread_factor(ROW_SPREAD, rng);
                }
                if (i % fan_in).is_multiple_of(GROUP) {
                    group = spread_factor(GROUP_SPREAD, rng);
                }
                let unit = if init == Init::Matrix { scale } else { 1.0 };
                normal(rng) * unit * row * group
            }
            Init::Router => normal(rng) * scale,
            Init::Norm => 2f32.powf(NORM_SPREAD * normal(rng)),
            Init::Bias => 0.02 * normal(rng),
            Init::Decay => -(0.5 + rng.unit() as f32),
            Init::One => 1.0,
            Init::Zero => 0.0,
        })
        .collect()
}

/// Encodes `values` (whole rows of `n_per_row`) as `ty`: F32 directly, everything else (F16 and
/// BF16 included, so their rounding is ggml's) through `ggml_quantize_chunk`. A type that needs an importance matrix, or that ggml cannot
/// quantize to, is refused.
pub fn encode(ty: GgmlType, values: &[f32], n_per_row: usize) -> Result<Vec<u8>, SynthError> {
    let refuse = |why: &str| {
        Err(SynthError::Type {
            ty: ty.as_str().to_string(),
            why: why.to_string(),
        })
    };
    if n_per_row == 0 || !values.len().is_multiple_of(n_per_row) {
        return refuse("values are not whole rows");
    }
    if !(n_per_row as u64).is_multiple_of(ty.block_size()) {
        return refuse("rows are not whole blocks of the type");
    }
    if ty == GgmlType::F32 {
        return Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    let id = ty.id() as sys::ggml_type;
    let rows = values.len() / n_per_row;
    // SAFETY: pure functions of a type id, which comes from ggml's own type table.
    let (needs_imatrix, row_size) = unsafe {
        (
            sys::ggml_quantize_requires_imatrix(id),
            sys::ggml_row_size(id, n_per_row as i64),
        )
    };
    if needs_imatrix {
        return refuse("it needs an importance matrix");
    }
    if !(ty.is_quantized() || matches!(ty, GgmlType::F16 | GgmlType::BF16)) || ty.type_size() == 0 {
        return refuse("ggml has no quantizer for it");
    }
    let mut out = vec![0u8; rows * row_size];
    // SAFETY: `values` holds rows × n_per_row floats, `out` rows × row_size bytes (ggml's row
    // size for this type), the type needs no importance matrix (null is allowed), and
    // ggml_quantize_init (called inside for types with tables) is thread-safe.
    let written = unsafe {
        sys::ggml_quantize_chunk(
            id,
            values.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            rows as i64,
            n_per_row as i64,
            std::ptr::null(),
        )
    };
    if written != out.len() {
        return refuse("ggml's quantizer wrote an unexpected size");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_rounds_to_nearest_even() {
        let half = |v: f32| {
            let b = encode(GgmlType::F16, &[v], 1).unwrap();
            u16::from_le_bytes([b[0], b[1]])
        };
        assert_eq!(half(1.0), 0x3c00);
        assert_eq!(half(-2.0), 0xc000);
        assert_eq!(half(0.0), 0);
        assert_eq!(half(65504.0), 0x7bff);
        assert_eq!(half(1e6), 0x7c00);
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0)
        assert_eq!(half(1.0 + 1.0 / 2048.0), 0x3c00);
        assert_eq!(half(6.0e-8), 0x0001);
        // Subnormal halves round on every bit below their last, not only the next few: just
        // above half the smallest subnormal rounds up, as do these just past a halfway point.
        assert_eq!(half(-2.980_502_2e-8), 0x8001);
        assert_eq!(half(-8.642_738e-7), 0x800f);
        assert_eq!(half(1.624_227_1e-5), 0x0111);
    }

    #[test]
    fn draws_have_the_scale_they_promise() {
        let mut rng = SplitMix64(7);
        let m = draw(Init::Matrix, 1 << 20, 1024, &mut rng);
        let var = m.iter().map(|v| (v * v) as f64).sum::<f64>() / m.len() as f64;
        assert!(
            (var * 1024.0 - 1.0).abs() < 0.05,
            "variance × fan-in {}",
            var * 1024.0
        );
        let n = draw(Init::Norm, 10_000, 1, &mut rng);
        assert!(n.iter().all(|v| *v > 0.0 && v.is_finite()));
        let (mean, sd) = log2_mean_sd(n.iter().map(|v| *v as f64));
        assert!(
            mean.abs() < 0.05 && (sd - NORM_SPREAD as f64).abs() < 0.05,
            "{mean} {sd}"
        );
        assert!(draw(Init::Decay, 100, 1, &mut rng).iter().all(|v| *v < 0.0));
    }

    /// The block scales ggml writes spread as trained weights' do (see `ROW_SPREAD`): the
    /// standard deviation of log2 of the Q5_0 blocks' scales is ~0.45 binades, not the 0.27 of
    /// one plain Gaussian.
    #[test]
    fn block_scales_spread_like_trained_weights() {
        let _ = crate::engine::test_backend();
        let mut rng = SplitMix64(3);
        let v = draw(Init::Matrix, 256 * 1024, 1024, &mut rng);
        let q = encode(GgmlType::Q5_0, &v, 1024).unwrap();
        let scales = q
            .chunks(22)
            .map(|b| half_to_f32(u16::from_le_bytes([b[0], b[1]])).abs() as f64);
        let (_, sd) = log2_mean_sd(scales);
        assert!((0.38..0.55).contains(&sd), "sd of log2 block scale {sd}");
    }

    /// Mean and standard deviation of log2 of positive values.
    fn log2_mean_sd(values: impl Iterator<Item = f64>) -> (f64, f64) {
        let logs: Vec<f64> = values.map(f64::log2).collect();
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / logs.len() as f64;
        (mean, var.sqrt())
    }

    fn half_to_f32(h: u16) -> f32 {
        let e = ((h >> 10) & 0x1f) as i32;
        let m = (h & 0x3ff) as f32;
        let mag = if e == 0 {
            m * 2f32.powi(-24)
        } else {
            (1.0 + m / 1024.0) * 2f32.powi(e - 15)
        };
        if h & 0x8000 != 0 {
            -mag
        } else {
            mag
        }
    }

    #[test]
    fn quantized_rows_have_ggml_sizes_and_imatrix_types_are_refused() {
        let _ = crate::engine::test_backend();
        let mut rng = SplitMix64(1);
        let v = draw(Init::Matrix, 4 * 512, 512, &mut rng);
        for (ty, bytes) in [
            (GgmlType::Q4_K, 4 * 2 * 144),
            (GgmlType::Q8_0, 4 * 16 * 34),
            (GgmlType::F16, 4 * 512 * 2),
        ] {
            assert_eq!(encode(ty, &v, 512).unwrap().len(), bytes, "{ty}");
        }
        assert!(encode(GgmlType::IQ2_XXS, &v, 512).is_err());
        assert!(encode(GgmlType::Q4_K, &v[..100], 100).is_err());
    }
}
