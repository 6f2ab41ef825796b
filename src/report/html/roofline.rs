//! The bandwidth roofline (decode rate against bytes per token, under each machine's peaks),
//! cost per quality point, and MoE routing overhead.

use super::charts::Series;
use super::plot::{self, color, err, DrawResult};
use crate::report::guide::rows::{GuideRow, MachineSummary};
use crate::report::median;
use crate::report::reference::Published;
use plotters::prelude::*;

/// A peak bandwidth line: its legend, GB/s, and whether it is the published (dashed) one.
type Peak = (String, f64, bool);

/// Each machine's measured and published peak.
fn peaks(machines: &[MachineSummary]) -> Vec<Peak> {
    machines
        .iter()
        .flat_map(|m| {
            let measured = m
                .measured_peak_gbps
                .map(|g| (format!("measured peak {} ({g:.1} GB/s)", m.id), g, false));
            let published = m.published_peak_gbps.map(|g| {
                let chip = m.chip.clone().unwrap_or_default();
                (format!("published peak {chip} ({g:.0} GB/s)"), g, true)
            });
            measured.into_iter().chain(published)
        })
        .filter(|p| p.1 > 0.0 && plot::chartable(p.1))
        .collect()
}

/// Measured decodes as points (MB per token, tok/s) under the lines tok/s = peak ÷ bytes per
/// token of each machine's measured and published peak.
pub fn roofline(rows: &[&GuideRow], machines: &[MachineSummary]) -> DrawResult<String> {
    let title = "Bandwidth roofline: decode rate against bytes read per token";
    let desc = (
        "bytes per token (MB, log scale)",
        "decode rate (tokens/s, log scale)",
    );
    let points: Vec<(String, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let name = format!("{} {}", r.model, r.quant);
            Some((name, r.bytes_per_token? as f64 / 1e6, r.decode_tps?))
        })
        .filter(|p| p.1 > 0.0 && p.2 > 0.0 && plot::chartable_point(p))
        .collect();
    if points.is_empty() {
        return plot::empty(title, desc.0, desc.1, "no decodes with bytes per token");
    }
    let peaks = peaks(machines);
    let min =
        |f: fn(&(String, f64, f64)) -> f64| points.iter().map(f).fold(f64::INFINITY, f64::min);
    let max = |f: fn(&(String, f64, f64)) -> f64| points.iter().map(f).fold(0.0, f64::max);
    let x = (min(|p| p.1) / 3.0, max(|p| p.1) * 3.0);
    let y_top = peaks.iter().map(|p| p.1 * 1e3 / x.0).fold(0.0, f64::max);
    let y = (min(|p| p.2) / 3.0, (max(|p| p.2) * 3.0).max(y_top));
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 72)
            .build_cartesian_2d((x.0..x.1).log_scale(), (y.0..y.1).log_scale())
            .map_err(err)?;
        plot::axes(&mut chart, desc.0, desc.1)?;
        for (k, (name, gbps, published)) in peaks.iter().enumerate() {
            let c = color(k + 1);
            let line = (0..=40).map(|i| {
                let bytes = x.0 * (x.1 / x.0).powf(f64::from(i) / 40.0);
                (bytes, gbps * 1e3 / bytes)
            });
            let style = c.stroke_width(if *published { 1 } else { 2 });
            plot::line(&mut chart, line, style, *published)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        let label = "measured decodes (median per model and quantization)";
        plot::labelled_points(&mut chart, &points, color(0), label, false)?;
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Horizontal bars, one per labelled value, coloured by group, with the value written beside.
fn hbars(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    bars: &[(String, f64, usize)],
    groups: &[&str],
    unit: &str,
    digits: usize,
) -> DrawResult<String> {
    let bars: Vec<&(String, f64, usize)> = bars.iter().filter(|b| plot::chartable(b.1)).collect();
    if bars.is_empty() {
        return plot::empty(title, x_desc, y_desc, "no value a chart can draw");
    }
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let axis = plot::Categories { names };
    let x_hi = plot::headroom(top * 1.2, 1e-3);
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 300)
            .build_cartesian_2d(0f64..x_hi, axis)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_label_formatter(&plot::tick)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let style = plot::text(12);
        for (g, name) in groups.iter().enumerate() {
            let c = color(g);
            let mine = || bars.iter().enumerate().filter(move |(_, b)| b.2 == g);
            chart
                .draw_series(mine().map(|(i, b)| {
                    Rectangle::new([(0.0, i as f64 - 0.35), (b.1, i as f64 + 0.35)], c.filled())
                }))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
            let values = mine().map(|(i, b)| {
                Text::new(
                    format!("{:.digits$} {unit}", b.1),
                    (b.1 + x_hi * 0.01, i as f64),
                    style.clone(),
                )
            });
            chart.draw_series(values).map_err(err)?;
        }
        plot::legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// USD per request divided by the pass rate in percentage points; published rows divide their
/// cost by their score as a percentage of its scale.
pub fn cost_per_quality(rows: &[&GuideRow], published: &[Published]) -> DrawResult<String> {
    let title = "Cost per quality point";
    let (x_desc, y_desc) = (
        "USD per run ÷ quality in % points",
        "model, quantization or service",
    );
    let per_point = |cost: f64, quality: f64| {
        if cost == 0.0 {
            Some(0.0)
        } else {
            (quality > 0.0).then(|| cost / quality)
        }
    };
    let mut bars: Vec<(String, f64, usize)> = rows
        .iter()
        .filter_map(|r| {
            let v = per_point(r.cost_usd?, r.pass_rate? * 100.0)?;
            Some((format!("{} {} ({})", r.model, r.quant, r.backend), v, 0))
        })
        .collect();
    bars.extend(published.iter().filter_map(|p| {
        let v = per_point(p.cost_usd?, p.quality_percent()?)?;
        Some((
            format!(
                "{} ({})",
                p.model,
                crate::report::table::or_dash(p.runtime.as_deref())
            ),
            v,
            1,
        ))
    }));
    if bars.is_empty() {
        let note = "no rows with both a cost and a quality";
        return plot::empty(title, x_desc, y_desc, note);
    }
    let groups = ["measured here (local runs cost 0 per request)", "published"];
    hbars(title, x_desc, y_desc, &bars, &groups, "USD", 4)
}

/// Median share of decode time spent routing to experts, per MoE series; a note when no
/// record carries a routing profile.
pub fn routing(series: &[Series]) -> DrawResult<String> {
    let title = "MoE routing overhead";
    let (x_desc, y_desc) = (
        "share of decode time spent routing (%)",
        "model and quantization",
    );
    let bars: Vec<(String, f64, usize)> = series
        .iter()
        .filter_map(|s| {
            let share = median(s.obs.iter().filter_map(|o| o.routing_share))?;
            Some((s.name.clone(), share * 100.0, 0))
        })
        .collect();
    if bars.is_empty() {
        let moe = series
            .iter()
            .filter(|s| s.obs.iter().any(|o| o.experts.is_some()))
            .count();
        let note = if moe == 0 {
            "no MoE records".to_string()
        } else {
            format!("{moe} MoE model(s), but no record carries a routing profile")
        };
        return plot::empty(title, x_desc, y_desc, &note);
    }
    let groups = ["median over requests"];
    hbars(title, x_desc, y_desc, &bars, &groups, "%", 1)
}
