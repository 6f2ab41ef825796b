//! How far the guide's predictions are from published measurements: every published
//! llama-bench row predicted from the others (leave-one-out) against its published value.

use super::plot::{self, color, err, DrawResult};
use crate::report::guide::validation::Validation;
use plotters::prelude::*;

/// Predicted against published tok/s, log-log, with the line of perfect prediction and the
/// ±15 % and ±30 % bands; decode and prompt processing, dense and MoE, as separate series.
pub fn scatter(v: &[Validation]) -> DrawResult<String> {
    let title = "Guide predictions against published llama-bench figures (leave-one-out)";
    let desc = (
        "published tokens/s (log scale)",
        "predicted tokens/s (log scale)",
    );
    let pts: Vec<(&Validation, f64, f64)> = v
        .iter()
        .filter_map(|x| Some((x, x.published, x.predicted?)))
        .filter(|p| p.1 > 0.0 && p.2 > 0.0 && plot::chartable(p.1) && plot::chartable(p.2))
        .collect();
    if pts.is_empty() {
        let note = "no published rows to validate against";
        return plot::empty(title, desc.0, desc.1, note);
    }
    let lo = pts
        .iter()
        .map(|p| p.1.min(p.2))
        .fold(f64::INFINITY, f64::min)
        / 1.5;
    let hi = pts.iter().map(|p| p.1.max(p.2)).fold(0.0, f64::max) * 1.5;
    let groups: [(&str, &str, bool); 4] = [
        ("tg", "decode, dense", false),
        ("tg", "decode, MoE", true),
        ("pp", "prompt, dense", false),
        ("pp", "prompt, MoE", true),
    ];
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 72)
            .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())
            .map_err(err)?;
        plot::axes(&mut chart, desc.0, desc.1)?;
        let bands: [(&[f64], &str); 3] = [
            (&[1.0], "predicted = published"),
            (&[1.15, 1.0 / 1.15], "±15 %"),
            (&[1.30, 1.0 / 1.30], "±30 %"),
        ];
        for (k, (factors, label)) in bands.into_iter().enumerate() {
            let grey = RGBColor(120, 120, 120).stroke_width(if k == 0 { 2 } else { 1 });
            for &f in factors {
                let line = [(lo, lo * f), (hi, hi * f)];
                let s = plot::line(&mut chart, line, grey, k > 0)?;
                if f >= 1.0 {
                    s.label(label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], grey));
                }
            }
        }
        for (g, (metric, label, moe)) in groups.iter().enumerate() {
            let mine: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| p.0.metric == *metric && p.0.moe == *moe)
                .map(|p| (p.1, p.2))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let c = color(g + 1);
            let marks = mine.iter().map(move |&(x, y)| {
                if *moe {
                    TriangleMarker::new((x, y), 5, c.filled()).into_dyn()
                } else {
                    Circle::new((x, y), 4, c.filled()).into_dyn()
                }
            });
            chart
                .draw_series(marks)
                .map_err(err)?
                .label(format!("{label} ({})", mine.len()))
                .legend(move |(x, y)| Circle::new((x + 6, y), 4, c.filled()).into_dyn());
        }
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}
