//! The guide as Markdown and CSV, and the `--machine` answer. Text only from the guide's data:
//! no clock, no environment, so the same records give the same bytes.

use super::predict::{self, Target};
use super::rows::{Fit, GuideRow, MachineSummary, Status};
use super::{machine::MachineSpec, Guide};
use crate::report::reference::Published;
use crate::report::table::{self, opt, percent, Column};
use crate::report::ReportError;

const MIB: f64 = 1024.0 * 1024.0;

fn mib(v: Option<u64>) -> String {
    v.map_or("-".into(), |b| format!("{:.0}", b as f64 / MIB))
}

fn pass(r: &GuideRow) -> String {
    match (r.passed, r.graded) {
        (Some(p), Some(g)) if g > 0 => format!("{p}/{g} ({:.0} %)", p as f64 / g as f64 * 100.0),
        _ => "-".into(),
    }
}

fn cost(r: &GuideRow) -> String {
    match r.cost_usd {
        Some(c) if c == 0.0 && r.backend.is_native() => "0 (local)".into(),
        Some(c) => format!("{c:.4}"),
        None => "-".into(),
    }
}

fn decode_from(r: &GuideRow) -> String {
    match r.busy {
        0 => r.decode_from.clone(),
        n => format!("{}; {n} busy", r.decode_from),
    }
}

/// A guide row's columns.
const ROWS: &[Column<GuideRow>] = &[
    Column::text("status", |r| match r.status {
        Status::Measured => "measured".to_string(),
        Status::Predicted => "**predicted**".to_string(),
    }),
    Column::text("machine", |r| r.machine.clone()),
    Column::text("backend", |r| r.backend.to_string()),
    Column::text("model", |r| r.model.clone()),
    Column::text("quant", |r| r.quant.clone()),
    Column::number("decode tok/s", |r| opt(r.decode_tps, 2)),
    Column::text("decode from", decode_from),
    Column::number("short TTFT p50 ms", |r| opt(r.short_ttft_p50_ms, 0)),
    Column::number("short e2e p99 ms", |r| opt(r.short_e2e_p99_ms, 0)),
    Column::number("BW % meas/spec", |r| {
        format!(
            "{}/{}",
            percent(r.bw_util_measured),
            percent(r.bw_util_published)
        )
    }),
    Column::number("MB/token", |r| {
        opt(r.bytes_per_token.map(|b| b as f64 / 1e6), 1)
    }),
    Column::number("memory MiB", |r| mib(r.memory_needed_bytes)),
    Column::text("fits", |r| r.fits.label().to_string()),
    Column::number("pass", pass),
    Column::number("cost USD/req", cost),
    Column::text("basis", |r| r.basis.clone()),
];

/// A machine's columns.
const MACHINES: &[Column<MachineSummary>] = &[
    Column::text("machine", |m| m.label.clone()),
    Column::text("fingerprint", |m| m.id.clone()),
    Column::text("chip", |m| m.chip.clone().unwrap_or_else(|| "-".into())),
    Column::number("memory GiB", |m| {
        format!("{:.1}", m.memory_present_bytes as f64 / MIB / 1024.0)
    }),
    Column::number("measured GB/s", |m| opt(m.measured_peak_gbps, 2)),
    Column::number("published GB/s", |m| opt(m.published_peak_gbps, 1)),
    Column::number("decode efficiency %", |m| match m.efficiency {
        Some(e) => format!("{:.1} (n={})", e * 100.0, m.efficiency_n),
        None => "-".into(),
    }),
    Column::text("backends", |m| m.backends.join(", ")),
    Column::number("requests", |m| m.requests.to_string()),
    Column::number("bench tests", |m| m.bench_tests.to_string()),
];

fn or_dash(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

/// A published row's columns.
const PUBLISHED: &[Column<Published>] = &[
    Column::text("machine", |p| p.machine_label()),
    Column::text("runtime", |p| p.runtime_label()),
    Column::text("model", |p| p.model.clone()),
    Column::text("quant", |p| or_dash(&p.quant)),
    Column::text("scenario", |p| or_dash(&p.scenario)),
    Column::number("gen tok/s", |p| opt(p.gen_tok_s, 2)),
    Column::number("TTFT s", |p| opt(p.ttft_s, 1)),
    Column::number("quality", |p| match (p.quality, p.quality_scale) {
        (Some(q), Some(s)) => format!("{q}/{s}"),
        _ => "-".into(),
    }),
    Column::number("cost USD", |p| opt(p.cost_usd, 2)),
    Column::text("source", |p| p.source.clone()),
    Column::text("note", |p| or_dash(&p.note)),
];

const HOW_TO_READ: &str = "\
## How to read this

- **status**: `measured` rows summarise records; `**predicted**` rows were never run on that \
machine: decode tok/s = bandwidth × efficiency ÷ bytes per token, with the basis spelled out in \
the last column. A machine with records uses its measured read bandwidth (`runner hw`) and its \
own efficiency (the median, over its decodes, of achieved GB/s ÷ measured GB/s); a machine \
known only by name uses its chip's published peak × the default efficiency stated above. \
Bytes per token, memory and pass rate come from the machine where the model was measured \
(answer quality does not depend on the hardware). Predictions are for decode only: no TTFT.
- **decode tok/s**: (tokens − 1) ÷ (last − first token time), median over long-form requests; \
without long-form requests, the median of `runner bench` tests (`decode from` names the \
scenarios or bench tests and how many). \
`N busy`: N observations ran while other processes kept the machine busy; their figures are \
low and noisy.
- **short TTFT p50 / e2e p99**: time to the first token and to the last, over short-response \
requests, in ms.
- **BW % meas/spec**: achieved bandwidth (bytes per token × decode tok/s) as a share of the \
measured and of the published peak.
- **MB/token**: bytes one decoded token reads (weights used plus KV cache), 10^6 bytes.
- **memory MiB**: llama.cpp's weights, KV cache and compute buffers at the context that ran. \
**fits**: `yes` when that is at most 80 % of the memory present (the largest accelerator's \
memory, else RAM), `tight` up to 100 %, `no` above, `?` when unknown.
- **pass**: requests whose graders all passed, of those graded.
- **cost USD/req**: money per request; local runs cost nothing per request (electricity and \
hardware not counted).
- **published** figures come from the write-ups named in their `source` column, measured by \
others with other tools; they are shown beside, never mixed into, the rows above.
";

/// The guide as Markdown.
pub fn markdown(g: &Guide) -> String {
    let mut s = String::from("# Hardware guide\n\n");
    s.push_str(&format!(
        "What runs how fast on which machine: generated by `runner guide` from the records \
         under `{}` and the published reference figures. Do not edit by hand; run `runner guide` \
         again after adding records.\n\n",
        g.source
    ));
    s.push_str(&format!(
        "{} bench record(s) and {} sweep request(s) from {} file(s){}; {} failed sweep cell(s). \
         Default efficiency for machines without records: {:.0} % of the published peak.\n\n",
        g.bench_records,
        g.requests,
        g.files,
        match &g.span {
            Some((a, b)) => format!(", measured {a} to {b}"),
            None => String::new(),
        },
        g.failed_cells,
        g.default_efficiency * 100.0
    ));
    s.push_str("## Machines\n\n");
    s.push_str(&if g.machines.is_empty() {
        "No records yet: run `runner sweep` or `runner bench -o results/...json`.\n".into()
    } else {
        table::markdown(MACHINES, &g.machines)
    });
    s.push_str("\n## Measured and predicted\n\n");
    s.push_str(&table::markdown(ROWS, &g.rows));
    s.push_str("\n## Published reference figures\n\n");
    s.push_str(&if g.published.is_empty() {
        "None (`reference/published.csv` is absent).\n".into()
    } else {
        table::markdown(PUBLISHED, &g.published)
    });
    s.push('\n');
    s.push_str(HOW_TO_READ);
    s
}

/// Every row (measured and predicted) as CSV: every field of the row struct is a column, in
/// its order, empty where a row has no value.
pub fn csv(g: &Guide) -> Result<String, ReportError> {
    let err = |e: csv::Error| ReportError::Csv(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in &g.rows {
        w.serialize(row).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Csv(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Predictions for every measured model on a target: what fits first, then the fastest.
fn predicted_for(g: &Guide, target: &Target) -> Vec<GuideRow> {
    let mut rows: Vec<GuideRow> = predict::profiles(&g.rows)
        .iter()
        .filter_map(|p| predict::predict(target, p, g.default_efficiency))
        .collect();
    let unfit = |r: &GuideRow| matches!(r.fits, Fit::No | Fit::Unknown);
    rows.sort_by(|a, b| {
        unfit(a)
            .cmp(&unfit(b))
            .then_with(|| {
                let rate = |r: &GuideRow| r.decode_tps.unwrap_or(0.0);
                rate(b).total_cmp(&rate(a))
            })
            .then_with(|| (&a.model, &a.quant).cmp(&(&b.model, &b.quant)))
    });
    rows
}

/// The fastest row that fits and the one with the best pass rate, in a sentence.
fn picks(rows: &[GuideRow]) -> String {
    let fits: Vec<&GuideRow> = rows
        .iter()
        .filter(|r| matches!(r.fits, Fit::Yes | Fit::Tight))
        .collect();
    let Some(best) = fits.first() else {
        return "Nothing measured so far fits in this memory.".into();
    };
    let mut s = format!(
        "Fastest that fits: **{} {}** at about {:.0} tok/s (predicted).",
        best.model,
        best.quant,
        best.decode_tps.unwrap_or(0.0)
    );
    let rate = |r: &&&GuideRow| r.pass_rate.unwrap_or(0.0);
    if let Some(q) = fits
        .iter()
        .filter(|r| r.pass_rate.is_some())
        .max_by(|a, b| rate(a).total_cmp(&rate(b)))
    {
        s.push_str(&format!(
            " Best pass rate that fits: **{} {}** ({}).",
            q.model,
            q.quant,
            pass(q)
        ));
    }
    s
}

/// "What should I run on this machine?": predictions for every measured model, best first,
/// with what was measured on the same chip and what others published for it.
pub fn answer(g: &Guide, spec: &MachineSpec, target: &Target) -> String {
    let chip = spec.chip;
    let mut s = format!("# What to run on: {}\n\n", spec.label());
    s.push_str(&format!(
        "`{}` is the {} in runner's chip table: {} GB/s published ({}; {}).\n\n",
        spec.given, chip.name, chip.peak_gbps, chip.memory, chip.source
    ));
    s.push_str("## Predicted from the records\n\n");
    let rows = predicted_for(g, target);
    if rows.is_empty() {
        s.push_str("No measured model carries bytes per token yet: run `runner sweep` first.\n");
    } else {
        s.push_str(&picks(&rows));
        s.push_str("\n\n");
        s.push_str(&table::markdown(ROWS, rows.iter()));
    }
    let measured: Vec<&GuideRow> = g
        .measured()
        .filter(|r| r.chip.as_deref() == Some(chip.name))
        .collect();
    if !measured.is_empty() {
        s.push_str("\n## Measured on the same chip\n\n");
        s.push_str(&table::markdown(ROWS, measured.iter().copied()));
    }
    let same_chip = |p: &&Published| {
        crate::hw::chips::recognise(&p.machine, None).map(|c| c.name) == Some(chip.name)
    };
    let published: Vec<&Published> = g.published.iter().filter(same_chip).collect();
    if !published.is_empty() {
        s.push_str("\n## Published figures for this chip\n\n");
        s.push_str(&table::markdown(PUBLISHED, published.iter().copied()));
    }
    s
}
