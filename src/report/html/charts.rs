//! The report's charts, each an SVG string drawn with plotters: latency histograms, decode
//! rate by quantization, quality against speed, cost per quality point, the bandwidth
//! roofline and MoE routing overhead.

use super::plot::{self, color, err, DrawResult};
use crate::measure::stats::percentile;
use crate::report::guide::rows::GuideRow;
use crate::report::obs::{Obs, Workload};
use crate::report::reference::Published;
use plotters::prelude::*;

/// One series of observations: a (machine, backend, model, quantization) row.
pub struct Series<'a> {
    pub name: String,
    pub color: RGBColor,
    pub obs: Vec<&'a Obs>,
}

/// Series in row-key order; names carry the machine when there is more than one.
pub fn series(all: &[Obs]) -> Vec<Series<'_>> {
    let groups = crate::report::guide::rows::group(all);
    let machines: std::collections::BTreeSet<_> = all.iter().map(|o| &o.key.machine).collect();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (key, obs))| {
            let mut name = key.series();
            if machines.len() > 1 {
                name.push_str(&format!(" @ {}", key.machine.id()));
            }
            Series {
                name,
                color: color(i),
                obs,
            }
        })
        .collect()
}

/// A histogram of each series' values in side-by-side bars, over [0, the pooled `clip`
/// quantile]; values beyond fall into the last bin.
fn histogram(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    data: &[(String, RGBColor, Vec<f64>)],
    clip: f64,
) -> DrawResult<String> {
    let pooled: Vec<f64> = data.iter().flat_map(|d| d.2.iter().copied()).collect();
    let lo = pooled.iter().copied().fold(f64::INFINITY, f64::min);
    let Some(hi) = percentile(&pooled, clip).filter(|h| *h > 0.0 && lo.is_finite()) else {
        return plot::empty(title, x_desc, y_desc, "no records with these figures");
    };
    const BINS: usize = 24;
    // Bins start at the least value; the top one ends a bin past the clip point.
    let width = ((hi - lo) / (BINS - 1) as f64).max(hi * 1e-3);
    let lo = (lo - width / 2.0).max(0.0);
    let end = lo + width * BINS as f64;
    let counts: Vec<Vec<usize>> = data
        .iter()
        .map(|d| plot::bin_counts(&d.2, lo, end, BINS))
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(1) as f64;
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 64)
            .build_cartesian_2d(lo..end, 0f64..plot::headroom(top, 1.0))
            .map_err(err)?;
        plot::axes(&mut chart, x_desc, y_desc)?;
        let n = data.len();
        for (k, ((name, c, _), counts)) in data.iter().zip(&counts).enumerate() {
            let c = *c;
            let bars = counts
                .iter()
                .enumerate()
                .filter(|(_, &v)| v > 0)
                .map(|(b, &v)| {
                    let x0 = lo + b as f64 * width + k as f64 * width / n as f64;
                    let x1 = x0 + width / n as f64 * 0.9;
                    Rectangle::new([(x0, 0.0), (x1, v as f64)], c.mix(0.85).filled())
                });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// TTFT of short-response requests, per series.
pub fn ttft(series: &[Series]) -> DrawResult<String> {
    let data = values(series, |o| match o.workload {
        Workload::ShortResponse => o.ttft_ms.clone(),
        _ => Vec::new(),
    });
    histogram(
        "Time to first token, short-response requests",
        "TTFT (ms; the last bar holds everything beyond it)",
        "requests",
        &data,
        1.0,
    )
}

/// Each series' values, as `f` reads them from its observations, those a chart cannot draw left
/// out; series without any left out.
fn values(series: &[Series], f: impl Fn(&Obs) -> Vec<f64>) -> Vec<(String, RGBColor, Vec<f64>)> {
    series
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.color,
                s.obs
                    .iter()
                    .flat_map(|o| f(o))
                    .filter(|v| plot::chartable(*v))
                    .collect(),
            )
        })
        .filter(|d: &(String, RGBColor, Vec<f64>)| !d.2.is_empty())
        .collect()
}

/// Gaps between tokens of every request and bench test, per series, up to the pooled p99.
pub fn itl(series: &[Series]) -> DrawResult<String> {
    let data = values(series, |o| o.itl_ms.clone());
    histogram(
        "Inter-token latency, all decoded tokens",
        "gap between tokens (ms; to the pooled p99, the last bar holds the rest)",
        "token gaps",
        &data,
        0.99,
    )
}

/// Median decode rate of each measured row: quantizations on the x axis, one bar per
/// (model, backend, machine).
pub fn decode_by_quant(rows: &[&GuideRow], multi_machine: bool) -> DrawResult<String> {
    let title = "Decode rate by quantization (median; long-form requests, else bench tests)";
    let (x_desc, y_desc) = ("quantization", "decode rate (tokens/s)");
    let rows: Vec<&GuideRow> = rows
        .iter()
        .copied()
        .filter(|r| r.decode_tps.is_some_and(plot::chartable))
        .collect();
    if rows.is_empty() {
        return plot::empty(title, x_desc, y_desc, "no decode rates recorded");
    }
    let mut quants = crate::report::distinct(rows.iter().map(|r| r.quant.clone()));
    quants.sort();
    let group = |r: &GuideRow| {
        let mut g = if r.backend.is_native() {
            r.model.clone()
        } else {
            format!("{} ({})", r.model, r.backend)
        };
        if multi_machine {
            g.push_str(&format!(" @ {}", r.fingerprint));
        }
        g
    };
    let groups = crate::report::distinct(rows.iter().map(|r| group(r)));
    let top = rows.iter().filter_map(|r| r.decode_tps).fold(0.0, f64::max);
    let axis = plot::Categories {
        names: quants.clone(),
    };
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 64)
            .build_cartesian_2d(axis, 0f64..plot::headroom(top, 1.0))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .y_label_formatter(&plot::tick)
            .draw()
            .map_err(err)?;
        for (k, g) in groups.iter().enumerate() {
            let c = color(k);
            let bars = rows.iter().filter(|r| &group(r) == g).filter_map(|r| {
                let q = quants.iter().position(|q| q == &r.quant)?;
                let (x0, x1) = plot::bar_slot(q, k, groups.len());
                Some(Rectangle::new([(x0, 0.0), (x1, r.decode_tps?)], c.filled()))
            });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(g.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Log-axis bounds around positive values: a little below the least, above the most.
fn log_bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let v: Vec<f64> = values.filter(|v| v.is_finite() && *v > 0.0).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    (!v.is_empty()).then(|| (lo / 2.0, hi * 2.0))
}

/// Pass rate against decode rate per measured row, with published quality scores beside.
pub fn quality_vs_speed(rows: &[&GuideRow], published: &[Published]) -> DrawResult<String> {
    let title = "Answer quality against decode speed";
    let (x_desc, y_desc) = (
        "decode rate (tokens/s, log scale)",
        "pass rate or published score (%)",
    );
    let ours: Vec<(String, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let name = format!("{} {}", r.model, r.quant);
            Some((name, r.decode_tps?, r.pass_rate? * 100.0))
        })
        .filter(plot::chartable_point)
        .collect();
    let theirs: Vec<(String, f64, f64)> = published
        .iter()
        .filter_map(|p| Some((p.model.clone(), p.gen_tok_s?, p.quality_percent()?)))
        .filter(plot::chartable_point)
        .collect();
    let executed: Vec<(String, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let (p, g) = (r.executed_passed?, r.executed_graded?);
            let name = format!("{} {} pass@1 {p}/{g}", r.model, r.quant);
            Some((name, r.decode_tps?, p as f64 / g as f64 * 100.0))
        })
        .filter(plot::chartable_point)
        .collect();
    let Some((lo, hi)) = log_bounds(ours.iter().chain(&theirs).map(|p| p.1)) else {
        let note = "no rows with both a pass rate and a decode rate";
        return plot::empty(title, x_desc, y_desc, note);
    };
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 64)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..110f64)
            .map_err(err)?;
        plot::axes(&mut chart, x_desc, y_desc)?;
        let ours_label = "measured here: pass rate of graded requests";
        plot::labelled_points(&mut chart, &ours, color(0), ours_label, false)?;
        let theirs_label = "published: judge score as % of its scale";
        plot::labelled_points(&mut chart, &theirs, color(1), theirs_label, true)?;
        if !executed.is_empty() {
            let label = "measured here: executed pass@1 (code run against tests)";
            plot::labelled_points(&mut chart, &executed, color(2), label, false)?;
        }
        plot::legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::guide::rows::{MachineSummary, Status};
    use crate::report::obs::{Fingerprint, Weights};

    /// `f`'s result, or a failure when it has not returned within a minute.
    fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the chart did not finish within a minute")
    }

    /// Measured rows with these decode rates, each graded and reading 100 MB per token.
    fn rows(rates: &[f64]) -> Vec<GuideRow> {
        let m = MachineSummary {
            id: "abcd1234".into(),
            label: "m".into(),
            fingerprint: Fingerprint {
                cpu: String::new(),
                arch: String::new(),
                logical_cores: 1,
                ram_gib: 1,
                accelerators: Vec::new(),
            },
            weights: Weights::Cpu,
            chip: None,
            published_peak_gbps: None,
            measured_peak_gbps: None,
            memory_present_bytes: 1 << 30,
            backends: Vec::new(),
            requests: 0,
            bench_tests: 0,
            efficiency: None,
            efficiency_n: 0,
            efficiency_busy: 0,
        };
        let row = |(i, &tps): (usize, &f64)| GuideRow {
            model: "m".into(),
            quant: format!("q{i}"),
            decode_tps: Some(tps),
            pass_rate: Some(0.5),
            bytes_per_token: Some(100_000_000),
            ..GuideRow::unobserved(Status::Measured, &m)
        };
        rates.iter().enumerate().map(row).collect()
    }

    #[test]
    fn charts_of_absurd_rates_finish_without_them() {
        for absurd in [1e308, f64::MAX, 1e-320, f64::INFINITY] {
            let svgs = finishes(move || {
                let rows = rows(&[100.0, absurd]);
                let rows: Vec<&GuideRow> = rows.iter().collect();
                [
                    decode_by_quant(&rows, false),
                    quality_vs_speed(&rows, &[]),
                    super::super::roofline::roofline(&rows, &[]),
                ]
                .map(|s| s.unwrap())
            });
            for (i, s) in svgs.iter().enumerate() {
                // plotters writes each text on a line of its own.
                assert!(
                    s.contains("q0\n"),
                    "chart {i}, {absurd:e}: the sane row drawn"
                );
                assert!(
                    !s.contains("q1\n"),
                    "chart {i}, {absurd:e}: the absurd row left out"
                );
            }
        }
    }
}
