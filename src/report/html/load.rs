//! The report's load-level section, drawn only from requests of sweeps with `--concurrency` or
//! `--rate`: aggregate output throughput against each user's decode rate, p99 TTFT against the
//! load (closed loop by concurrency, open loop by arrival rate), and the load table.

use super::plot::{self, color, err, DrawResult};
use super::{esc, figure};
use crate::report::load::{self, LoadRow};
use plotters::prelude::*;

/// A point of a curve: its label (the load level) and where it sits.
type Point = (String, f64, f64);

/// One cell's levels of one kind (closed or open loop), in order of their load.
struct Curve<'a> {
    /// "backend model/quant".
    name: String,
    /// Its cell's place among the cells (its colour).
    cell: usize,
    open: bool,
    rows: Vec<&'a LoadRow>,
}

impl Curve<'_> {
    /// The points `f` reads from its levels, those without both figures not negative and
    /// [`plot::chartable`] left out.
    fn points(&self, f: impl Fn(&LoadRow) -> Option<(f64, f64)>) -> Vec<Point> {
        self.rows
            .iter()
            .filter_map(|r| {
                let (x, y) = f(r)?;
                let ok = |v: f64| v >= 0.0 && plot::chartable(v);
                (ok(x) && ok(y)).then(|| (r.shape.label(), x, y))
            })
            .collect()
    }
}

/// The curves of `rows`: cells in the order they first appear, closed loop before open loop.
fn curves(rows: &[LoadRow]) -> Vec<Curve<'_>> {
    let several = load::several_machines(rows);
    let mut cells: Vec<&LoadRow> = Vec::new();
    for r in rows {
        if !cells.iter().any(|c| c.same_cell(r)) {
            cells.push(r);
        }
    }
    let mut out = Vec::new();
    for (cell, first) in cells.iter().enumerate() {
        for open in [false, true] {
            let mut of: Vec<&LoadRow> = rows
                .iter()
                .filter(|r| r.same_cell(first) && r.is_open() == open)
                .collect();
            if of.is_empty() {
                continue;
            }
            of.sort_by(|a, b| a.shape.level().total_cmp(&b.shape.level()));
            out.push(Curve {
                name: first.cell_name(several),
                cell,
                open,
                rows: of,
            });
        }
    }
    out
}

/// A line through each curve's points (dashed for open loop), a mark on each point with its
/// load level written beside it; linear axes from zero.
fn lines(
    title: &str,
    desc: (&str, &str),
    data: &[(String, RGBColor, bool, Vec<Point>)],
    legend_at: SeriesLabelPosition,
    note: &str,
) -> DrawResult<String> {
    let all = || data.iter().flat_map(|d| d.3.iter());
    if all().next().is_none() {
        return plot::empty(title, desc.0, desc.1, note);
    }
    let x_top = plot::headroom(all().map(|p| p.1).fold(0.0, f64::max), 1.0);
    let y_top = plot::headroom(all().map(|p| p.2).fold(0.0, f64::max), 1.0);
    plot::svg(|root| {
        let mut chart = plot::builder(root, title, 64)
            .build_cartesian_2d(0f64..x_top, 0f64..y_top)
            .map_err(err)?;
        plot::axes(&mut chart, desc.0, desc.1)?;
        let text = plot::text(12);
        for (name, c, dashed, points) in data.iter().filter(|d| !d.3.is_empty()) {
            let (c, dashed) = (*c, *dashed);
            let xy = points.iter().map(|p| (p.1, p.2));
            let style = c.stroke_width(2);
            plot::line(&mut chart, xy, style, dashed)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (16, 0)], c.stroke_width(2))
                        + Circle::new((8, 0), 4, c.filled())
                });
            let marks = points.iter().map(|(label, x, y)| {
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 5, c.filled())
                    + Text::new(label.clone(), (7, -16), text.clone())
            });
            chart.draw_series(marks).map_err(err)?;
        }
        plot::legend(&mut chart, legend_at)
    })
}

/// Aggregate output tok/s against the median per-user decode rate, a curve per cell and kind
/// of load.
fn throughput(curves: &[Curve]) -> DrawResult<String> {
    let data: Vec<_> = curves
        .iter()
        .map(|c| {
            let name = match c.open {
                true => format!("{} (open loop)", c.name),
                false => c.name.clone(),
            };
            let points = c.points(|r| Some((r.level.output_tps, r.level.per_user_tps?)));
            (name, color(c.cell), c.open, points)
        })
        .collect();
    lines(
        "Throughput against per-user speed",
        (
            "aggregate output (tokens/s, all requests of a level)",
            "per-user decode rate (tokens/s, median request)",
        ),
        &data,
        // Low throughput with a low per-user rate is the corner loads rarely reach.
        SeriesLabelPosition::LowerLeft,
        "no level with both an output rate and a per-user decode rate",
    )
}

/// p99 TTFT (from arrival) against the load of `open` or closed-loop curves.
fn ttft(curves: &[Curve], open: bool) -> DrawResult<String> {
    let data: Vec<_> = curves
        .iter()
        .filter(|c| c.open == open)
        .map(|c| {
            let points = c.points(|r| Some((r.shape.level(), r.level.ttft_ms?.p99)));
            (c.name.clone(), color(c.cell), open, points)
        })
        .collect();
    let (title, x_desc) = match open {
        false => (
            "p99 TTFT against load (closed loop)",
            "requests in flight (concurrency)",
        ),
        true => (
            "p99 TTFT against load (open loop)",
            "offered load (Poisson arrivals, requests/s)",
        ),
    };
    lines(
        title,
        (x_desc, "p99 time to first token from arrival (ms)"),
        &data,
        SeriesLabelPosition::UpperLeft,
        "no level with a TTFT",
    )
}

/// The section's charts: throughput against per-user speed, and p99 TTFT against load for
/// each kind of load present.
fn figures(rows: &[LoadRow]) -> DrawResult<Vec<String>> {
    let curves = curves(rows);
    let mut out = vec![figure(
        "load-throughput",
        &throughput(&curves)?,
        "Each point is one load level of a cell, labelled with its load: output tokens \
         of all its requests per second against the median request's own decode \
         rate. More load buys throughput at the cost of each user's speed.",
    )];
    if curves.iter().any(|c| !c.open) {
        out.push(figure(
            "load-ttft",
            &ttft(&curves, false)?,
            "99th percentile of the time from a request's arrival to its first token \
             (queueing included), at each number of requests kept in flight.",
        ));
    }
    if curves.iter().any(|c| c.open) {
        out.push(figure(
            "load-ttft-open",
            &ttft(&curves, true)?,
            "99th percentile of the time from a request's arrival to its first token \
             (queueing included), at each rate of seeded Poisson arrivals.",
        ));
    }
    Ok(out)
}

/// The load-level section: heading, charts, table and its notes; nothing without load rows.
pub fn section(rows: &[LoadRow]) -> DrawResult<String> {
    if rows.is_empty() {
        return Ok(String::new());
    }
    let mut s = String::from(
        "<h2>Load levels</h2>\n<p>Sweeps with <code>--concurrency</code> or <code>--rate</code>: \
         what each cell did as more requests shared it.</p>\n",
    );
    s.push_str(&figures(rows)?.concat());
    s.push_str(&super::table(&load::grid(rows)));
    let note = load::COLUMNS_NOTE;
    let mut chars = note.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    s.push_str(&format!(
        "<p>{}{}.</p>\n",
        first.unwrap_or_default(),
        esc(chars.as_str())
    ));
    if let Some(slo) = rows.iter().find_map(|r| r.slo.as_deref()) {
        s.push_str(&format!(
            "<p>Knee (highest load whose requests meet {}):</p>\n<ul>\n",
            esc(slo)
        ));
        for line in load::knees(rows) {
            s.push_str(&format!("<li>{}</li>\n", esc(line.trim())));
        }
        s.push_str("</ul>\n");
    }
    let busy: usize = rows.iter().map(|r| r.busy_requests).sum();
    if busy > 0 {
        s.push_str(&format!(
            "<p><strong>{busy} load-level request(s) ran while other processes kept the \
             machine busy:</strong> their figures are suspect.</p>\n"
        ));
    }
    if rows.iter().any(|r| r.synthetic) {
        s.push_str("<p>Synthetic (random-weight) models: speed only.</p>\n");
    }
    Ok(s)
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
