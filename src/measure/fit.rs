//! A least-squares line through points, with how well it fits: the model behind full-depth
//! figures from layer-scaled runs (time per token = fixed + per-layer × layers).

/// `y = intercept + slope × x`, fitted to `n` points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub intercept: f64,
    pub slope: f64,
    pub n: usize,
    /// Root mean square of the residuals relative to the fitted values (0 with two points:
    /// a line always passes through them).
    pub rel_residual: f64,
}

/// The least-squares line through `points`; `None` with fewer than two distinct x values or
/// any value that is not finite.
pub fn line(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len();
    if n < 2 || points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let mean = |f: fn(&(f64, f64)) -> f64| points.iter().map(f).sum::<f64>() / n as f64;
    let (mx, my) = (mean(|p| p.0), mean(|p| p.1));
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let rel = points
        .iter()
        .map(|(x, y)| {
            let fit = intercept + slope * x;
            if fit == 0.0 {
                0.0
            } else {
                ((y - fit) / fit).powi(2)
            }
        })
        .sum::<f64>()
        / n as f64;
    Some(Line {
        intercept,
        slope,
        n,
        rel_residual: rel.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_through_exact_points_has_no_residual() {
        let l = line(&[(4.0, 12.0), (8.0, 20.0), (12.0, 28.0)]).unwrap();
        assert!((l.slope - 2.0).abs() < 1e-12 && (l.intercept - 4.0).abs() < 1e-12);
        assert!(l.rel_residual < 1e-12);
        assert!((l.intercept + l.slope * 32.0 - 68.0).abs() < 1e-9);
    }

    #[test]
    fn noise_shows_in_the_residual_and_bad_input_gives_nothing() {
        let l = line(&[(4.0, 12.0), (8.0, 22.0), (12.0, 28.0)]).unwrap();
        assert!(l.rel_residual > 0.01);
        assert!(line(&[(4.0, 1.0)]).is_none());
        assert!(line(&[(4.0, 1.0), (4.0, 2.0)]).is_none());
        assert!(line(&[(4.0, 1.0), (8.0, f64::NAN)]).is_none());
    }
}
