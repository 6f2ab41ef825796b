//! `runner report`: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
//! fetched) with the charts drawn from every record under a results directory, and a section
//! on load levels when sweeps ran with `--concurrency` or `--rate`. The same records give the
//! same bytes.

pub mod calibration;
pub mod charts;
pub mod load;
pub mod plot;
pub mod roofline;

use crate::record::Records;
use crate::report::guide::{self, rows::GuideRow, Guide};
use crate::report::obs::{self, Obs};
use crate::report::table::{self, opt, Column, Grid};
use std::collections::BTreeSet;
use std::path::Path;

/// Escapes text for HTML, its control characters written visibly (see [`visible`]).
pub fn esc(s: &str) -> String {
    visible(
        &s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;"),
    )
}

/// `s` with each control character other than a tab or a line break, and the noncharacters
/// U+FFFE and U+FFFF, escaped (`\u{1b}`): HTML and inline SVG (XML) may not hold them.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.extend(c.escape_unicode())
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}\
figure{margin:2em 0}figcaption{color:#555;font-size:.9em;margin-top:.3em}\
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .5em}\
td.n{text-align:right}code{background:#f4f4f4}";

/// The charts, each an HTML figure.
fn figures(all: &[Obs], g: &Guide) -> Result<Vec<String>, String> {
    let series = charts::series(all);
    let measured: Vec<&GuideRow> = g.measured().collect();
    let multi = g.machines.len() > 1;
    Ok(vec![
        figure(
            "ttft",
            &charts::ttft(&series)?,
            "Time from the start of prompt evaluation to the first non-empty piece of \
             text, per short-response request, by model, quantization and backend.",
        ),
        figure(
            "itl",
            &charts::itl(&series)?,
            "Gaps between consecutive tokens of every bench repetition and every sweep \
             request outside load levels (their ITL is in the load-level table). Bars \
             run to the pooled 99th percentile; slower gaps are counted in the last bar.",
        ),
        figure(
            "decode",
            &charts::decode_by_quant(&measured, multi)?,
            "(tokens − 1) ÷ (last − first token time): median over long-form \
             requests, or over bench tests where a row has no long-form request.",
        ),
        figure(
            "quality",
            &charts::quality_vs_speed(&measured, &g.published)?,
            "Circles: share of graded requests whose graders all passed, measured \
             here. Triangles: published judge scores (reference/published.csv), \
             measured by others on other prompts: for orientation only.",
        ),
        figure(
            "cost",
            &roofline::cost_per_quality(&measured, &g.published)?,
            "Money per run divided by the quality score in percentage points. Local \
             runs cost nothing per request (hardware and electricity not counted).",
        ),
        figure(
            "roofline",
            &roofline::roofline(&measured, &g.machines)?,
            "Decode is bound by memory bandwidth: a token cannot come faster than \
             peak GB/s ÷ bytes per token (the lines). Points are measured decodes; \
             their distance below a line is the bandwidth left unused.",
        ),
        figure(
            "calibration",
            &calibration::scatter(
                g.calibration
                    .as_ref()
                    .map_or(&[][..], |c| c.validation.as_slice()),
            )?,
            &match &g.calibration {
                Some(c) => guide::render::trust(c),
                None => "No published reference rows (reference/llama-cpp-published.csv).".into(),
            },
        ),
        figure(
            "routing",
            &roofline::routing(&series)?,
            "Share of decode time a Mixture-of-Experts model spends choosing and \
             gathering experts, from records that carry a routing profile.",
        ),
    ])
}

/// A chart and its caption as an HTML figure.
fn figure(id: &str, svg: &str, caption: &str) -> String {
    format!(
        "<figure id=\"{id}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
        svg.trim_end(),
        esc(caption)
    )
}

/// A measured row's columns.
const SUMMARY: &[Column<GuideRow>] = &[
    Column::text("machine", |r| r.machine.clone()),
    Column::text("backend", |r| r.backend.to_string()),
    Column::text("model", |r| r.model.clone()),
    Column::text("quant", |r| r.quant.clone()),
    Column::number("decode tok/s", |r| opt(r.decode_tps, 2)),
    Column::number("short TTFT p50 ms", |r| opt(r.short_ttft_p50_ms, 0)),
    Column::number("short e2e p99 ms", |r| opt(r.short_e2e_p99_ms, 0)),
    Column::number("pass", |r| match (r.passed, r.graded) {
        (Some(p), Some(g)) => format!("{p}/{g}"),
        _ => "-".into(),
    }),
    Column::number("busy", |r| r.busy.to_string()),
];

/// A table as HTML, numeric cells aligned right.
fn table(grid: &Grid) -> String {
    let mut s = String::from("<table><tr>");
    for h in &grid.headers {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr>\n");
    for row in &grid.rows {
        s.push_str("<tr>");
        for (cell, numeric) in row.iter().zip(&grid.numeric) {
            let class = if *numeric { " class=n" } else { "" };
            s.push_str(&format!("<td{class}>{}</td>", esc(cell)));
        }
        s.push_str("</tr>\n");
    }
    s + "</table>\n"
}

/// The page for a guide (its calibration set) and the records it was built from.
pub fn page(g: &Guide, records: &Records) -> Result<String, String> {
    let all = obs::all(records);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>runner report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>runner report</h1>\n<p>Generated by <code>runner report</code> from {} bench \
         record(s) and {} sweep request(s) in {} file(s) under <code>{}</code>{}.</p>\n",
        g.bench_records,
        g.requests,
        g.files,
        esc(&g.source),
        g.span.as_ref().map_or(String::new(), |(a, b)| {
            format!(", measured {} to {}", esc(a), esc(b))
        })
    );
    s.push_str("<h2>Machines</h2>\n<ul>\n");
    for (id, label) in machines(g, records) {
        s.push_str(&format!(
            "<li><code>{}</code> {}</li>\n",
            esc(&id),
            esc(&label)
        ));
    }
    s.push_str("</ul>\n");
    let busy: usize = g.measured().map(|r| r.busy).sum();
    if busy > 0 {
        s.push_str(&format!(
            "<p><strong>{busy} observation(s) ran while other processes kept the machine \
             busy:</strong> their figures are low and noisy.</p>\n"
        ));
    }
    s.push_str(&figures(&all, g)?.concat());
    s.push_str("<h2>Measured rows</h2>\n");
    s.push_str(&table(&table::grid(SUMMARY, g.measured())));
    s.push_str(&load::section(&crate::report::load::sorted(
        &records.requests,
    ))?);
    s.push_str("</body>\n</html>\n");
    Ok(s)
}

/// The machines the page lists, as `(id, label)`: the guide's, then those only load levels
/// ran on (the guide leaves load-level requests out: they shared the machine).
fn machines(g: &Guide, records: &Records) -> Vec<(String, String)> {
    let listed = |f: &obs::Fingerprint, w: obs::Weights| {
        (g.machines.iter()).any(|m| m.fingerprint == *f && m.weights == w)
    };
    let load_only: BTreeSet<(obs::Fingerprint, obs::Weights)> = (records.requests.iter())
        .filter(|r| r.traffic.is_some())
        .map(|r| {
            let key = obs::from_request(r).key;
            let site = key.site();
            (key.machine, site)
        })
        .filter(|(f, w)| !listed(f, *w))
        .collect();
    (g.machines.iter())
        .map(|m| (m.id.clone(), m.label.clone()))
        .chain((load_only.iter()).map(|(f, w)| (f.id(), obs::machine_label(f, *w))))
        .collect()
}

/// `runner report`: writes the page drawn from the records and reference/published.csv under
/// the directory `results` (read recursively) to `output` [default: results/report.html], and
/// says where.
pub fn run(results: &Path, output: Option<&Path>) -> anyhow::Result<String> {
    let efficiency = guide::predict::DEFAULT_EFFICIENCY;
    let assumptions = guide::catalog::Assumptions::default();
    let (records, g) = guide::load(results, efficiency, assumptions)?;
    let path = output.map_or_else(|| results.join("report.html"), Path::to_path_buf);
    guide::refuse_overwrite(&records, results, &path)?;
    let html = page(&g, &records).map_err(|e| anyhow::anyhow!("drawing a chart: {e}"))?;
    crate::report::write_atomic(&path, &html)?;
    Ok(format!(
        "wrote {} ({} charts, {} bytes)\n",
        path.display(),
        html.matches("<svg").count(),
        html.len()
    ))
}
