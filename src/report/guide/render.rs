//! The guide as Markdown and CSV, and the `--machine` answer. Text only from the guide's data:
//! no clock, no environment, so the same records give the same bytes.

use super::calib::DecodeFit;
use super::catalog::Confidence;
use super::rows::{GuideRow, MachineSummary, Status};
use super::validation::{ErrorSummary, Validation};
use super::{Calibration, Guide};
use crate::report::reference::Published;
use crate::report::table::{self, opt, or_dash, percent_pair, Column};
use crate::report::MIB;

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
pub(super) const ROWS: &[Column<GuideRow>] = &[
    Column::text("status", |r| match r.status {
        Status::Measured => "measured".to_string(),
        Status::Extrapolated => "*extrapolated*".to_string(),
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
        percent_pair(r.bw_util_measured, r.bw_util_published)
    }),
    Column::number("MB/token", |r| {
        opt(r.bytes_per_token.map(|b| b as f64 / 1e6), 1)
    }),
    Column::number("memory MiB", |r| mib(r.memory_needed_bytes)),
    Column::text("fits", |r| r.fits.to_string()),
    Column::number("pass", pass),
    Column::number("cost USD/req", cost),
    Column::text("basis", |r| r.basis.clone()),
];

/// A machine's columns.
const MACHINES: &[Column<MachineSummary>] = &[
    Column::text("machine", |m| m.label.clone()),
    Column::text("fingerprint", |m| m.id.clone()),
    Column::text("chip", |m| or_dash(m.chip.as_deref())),
    Column::number("memory GiB", |m| {
        format!("{:.1}", m.memory_present_bytes as f64 / MIB / 1024.0)
    }),
    Column::number("measured GB/s", |m| opt(m.measured_peak_gbps, 2)),
    Column::number("published GB/s", |m| opt(m.published_peak_gbps, 1)),
    Column::number("decode efficiency %", |m| {
        match (m.efficiency, m.efficiency_busy) {
            (Some(e), _) => format!("{:.1} (n={})", e * 100.0, m.efficiency_n),
            (None, 0) => "-".into(),
            (None, busy) => format!("- ({busy} busy)"),
        }
    }),
    Column::text("backends", |m| m.backends.join(", ")),
    Column::number("requests", |m| m.requests.to_string()),
    Column::number("bench tests", |m| m.bench_tests.to_string()),
];

/// A published row's columns.
pub(super) const PUBLISHED: &[Column<Published>] = &[
    Column::text("machine", |p| p.machine_label()),
    Column::text("runtime", |p| or_dash(p.runtime.as_deref())),
    Column::text("model", |p| p.model.clone()),
    Column::text("quant", |p| or_dash(p.quant.as_deref())),
    Column::text("scenario", |p| or_dash(p.scenario.as_deref())),
    Column::number("gen tok/s", |p| opt(p.gen_tok_s, 2)),
    Column::number("TTFT s", |p| opt(p.ttft_s, 1)),
    Column::number("quality", |p| match (p.quality, p.quality_scale) {
        (Some(q), Some(s)) => format!("{q}/{s}"),
        _ => "-".into(),
    }),
    Column::number("cost USD", |p| opt(p.cost_usd, 2)),
    Column::text("source", |p| p.source.clone()),
    Column::text("note", |p| or_dash(p.note.as_deref())),
];

const HOW_TO_READ: &str = "\
## How to read this

- **status**: `measured` rows summarise records (a `(synthetic)` model has random weights and \
the published model's exact tensors: its speed is the model's, it has no pass rate; `4/48 \
layers` names a layer-scaled one); `*extrapolated*` rows are a synthetic model's full depth, \
from a line through its time per token measured at two or more depths here; `**predicted**` \
rows were never run on that machine, with the basis spelled out in the last column: time per \
token = bytes per token ÷ (bandwidth × efficiency) + a fixed cost, both fitted to the \
machine's own decodes (MoE weights at their own efficiency), against its measured read \
bandwidth (`runner hw`) or, for weights on a GPU, the GPU's published one; with too few \
decodes to fit, decode tok/s = bandwidth × the median efficiency of its decodes ÷ bytes per \
token. Bytes per token, memory and pass rate come from the machine where the model \
was measured (answer quality does not depend on the hardware). Machines without records are \
covered by the catalogue section above, whose model is fitted to published measurements. \
A machine with an accelerator that also ran with its weights on the host (`-ngl 0`) is listed \
twice: the host runs are named by the host's CPU, marked `(weights on CPU)`, and held against \
its RAM and measured bandwidth.
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
**fits**: `yes` when that is at most 90 % of the memory llama.cpp can use (the largest \
accelerator's memory, else RAM; on Apple silicon the GPU's share of it), `tight` up to 100 %, \
`no` above, `?` when unknown.
- **pass**: requests whose graders all passed, of those graded.
- **cost USD/req**: money per request; local runs cost nothing per request (electricity and \
hardware not counted).
- **published** figures come from the write-ups named in their `source` column, measured by \
others with other tools; they are shown beside, never mixed into, the rows above.
";

/// The guide as Markdown; its catalogue section names `catalogue_csv`, the file written beside it.
pub fn markdown(g: &Guide, catalogue_csv: &str) -> String {
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
        g.span
            .as_ref()
            .map_or(String::new(), |(a, b)| format!(", measured {a} to {b}")),
        g.failed_cells,
        g.default_efficiency * 100.0
    ));
    if let Some(cal) = &g.calibration {
        s.push_str(&trust(cal));
        s.push_str("\n\n");
        s.push_str(&catalogue_section(cal, catalogue_csv));
        s.push('\n');
    }
    s.push_str("## Machines\n\n");
    s.push_str(&markdown_or(
        MACHINES,
        &g.machines,
        "No records yet: run `runner sweep` or `runner bench -o results/...json`.\n",
    ));
    s.push_str("\n## Measured and predicted\n\n");
    s.push_str(&table::markdown(ROWS, &g.rows));
    s.push_str("\n## Published reference figures\n\n");
    s.push_str(&markdown_or(
        PUBLISHED,
        &g.published,
        "None (`reference/published.csv` is absent).\n",
    ));
    s.push('\n');
    s.push_str(HOW_TO_READ);
    s
}

/// `rows` as a Markdown table, or `empty` when there are none.
pub(super) fn markdown_or<'a, T: 'a>(
    columns: &[Column<T>],
    rows: impl IntoIterator<Item = &'a T>,
    empty: &str,
) -> String {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return empty.to_string();
    }
    table::markdown(columns, rows)
}

pub(super) fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), table::pct)
}

/// A rate with two decimals; past 1e12 tokens/s, which no machine decodes at, in scientific
/// notation (`1.00e308`) rather than hundreds of digits.
fn tps(v: f64) -> String {
    match v.abs() < 1e12 {
        true => format!("{v:.2}"),
        false => format!("{v:.2e}"),
    }
}

/// One leave-one-out row's columns.
const VALIDATION: &[Column<Validation>] = &[
    Column::text("machine", |v| v.machine.clone()),
    Column::text("backend", |v| v.backend.clone()),
    Column::text("model", |v| v.model.clone()),
    Column::text("quant", |v| v.quant.clone()),
    Column::text("kind", |v| if v.moe { "MoE" } else { "dense" }.to_string()),
    Column::text("test", |v| v.metric.to_string()),
    Column::number("published tok/s", |v| tps(v.published)),
    Column::number("predicted tok/s", |v| v.predicted.map_or("-".into(), tps)),
    Column::number("error", |v| match v.error {
        Some(e) => format!("{:+.1} %", e * 100.0),
        None => "no basis".into(),
    }),
    Column::text("source", |v| v.source.clone()),
];

const SUMMARY: &[Column<ErrorSummary>] = &[
    Column::text("rows", |s| s.group.clone()),
    Column::number("n", |s| s.rows.to_string()),
    Column::number("predicted", |s| s.predicted.to_string()),
    Column::number("median |error|", |s| pct(s.median_abs_error)),
    Column::number("worst |error|", |s| pct(s.worst_abs_error)),
];

/// A decode fit's MoE efficiency as a clause, or `none` when it saw no MoE decodes.
fn moe_efficiency(f: &DecodeFit, none: &str) -> String {
    match f.moe_factor {
        Some(m) => format!(
            ", MoE weights at {:.0} % of the dense efficiency",
            m * 100.0
        ),
        None => none.into(),
    }
}

/// The fitted parameters, one line each.
fn parameters(cal: &Calibration) -> String {
    let mut s = String::new();
    for (backend, f) in &cal.model.decode {
        s.push_str(&format!(
            "- {backend} decode: {:.1} % of the published bandwidth, {:.1} ms fixed per token{} \
             ({} dense, {} MoE row(s)).\n",
            f.efficiency * 100.0,
            f.fixed_ms,
            moe_efficiency(f, ", no MoE rows (MoE predicted at the dense efficiency)"),
            f.dense_rows,
            f.moe_rows
        ));
    }
    for l in &cal.locals {
        let label = table::markdown_cell(&l.label);
        let (backend, gbps, from) = (&l.backend, l.gbps, l.gbps_from);
        let Some(f) = l.fit else { continue };
        s.push_str(&format!(
            "- {label} ({backend}, fitted to its own decodes): {:.1} % of the {gbps:.1} GB/s \
             {from}, {:.1} ms fixed per token{} ({} dense, {} MoE decode(s) measured here).\n",
            f.efficiency * 100.0,
            f.fixed_ms,
            moe_efficiency(&f, ", no MoE decodes"),
            f.dense_rows,
            f.moe_rows
        ));
    }
    for (label, why) in &cal.unfitted {
        s.push_str(&format!(
            "- {} (not fitted): {}; its column holds only what was measured there on an idle \
             machine.\n",
            table::markdown_cell(label),
            why.replace(" here", " there")
        ));
    }
    for (g, c) in &cal.model.apple_per_core {
        s.push_str(&format!(
            "- Metal prompt processing, M{g}: {:.0} GFLOP/s per GPU core ({} row(s)).\n",
            c.flops / 1e9,
            c.rows
        ));
    }
    for ((chip, backend), c) in &cal.model.chip_compute {
        s.push_str(&format!(
            "- {backend} prompt processing on {chip}: {:.1} TFLOP/s effective ({} row(s)).\n",
            c.flops / 1e12,
            c.rows
        ));
    }
    for (backend, (share, n)) in &cal.model.moe_compute {
        s.push_str(&format!(
            "- {backend} prompt processing of MoE models: {:.0} % of the dense compute above \
             (median over {n} {} with rows of both; MoE rows count toward a chip's compute \
             divided by it).\n",
            share * 100.0,
            super::calib::compute_units(backend)
        ));
    }
    s
}

/// `runner guide --validate`: every reference row predicted without it, the error summary and
/// the parameters fitted to all rows.
pub fn validation(cal: &Calibration) -> String {
    let mut s = format!(
        "Leave-one-out validation: each of {} published llama-bench row(s) predicted by the \
         model fitted to the others ({} row(s) in {} are outside the chip table or lack a size).\n\n",
        cal.used,
        cal.refs.len() - cal.used,
        super::calib::PATH
    );
    s.push_str(&table::aligned(VALIDATION, &cal.validation));
    s.push('\n');
    s.push_str(&table::aligned(SUMMARY, &cal.summary));
    s.push_str("\nFitted to every row:\n");
    s.push_str(&parameters(cal));
    s.push_str(&format!("\n{}\n", trust(cal)));
    s
}

/// The one-paragraph answer to "how far can I trust this?".
pub fn trust(cal: &Calibration) -> String {
    let line = |name: &str, what: &str| -> Option<String> {
        let g = cal.group(name)?;
        Some(format!(
            "{what}: median error {} (worst {}) over {} of {} rows",
            pct(g.median_abs_error),
            pct(g.worst_abs_error),
            g.predicted,
            g.rows
        ))
    };
    let errors = |what: &str, g: &ErrorSummary| {
        format!(
            "{what} {} (worst {}, n={})",
            pct(g.median_abs_error),
            pct(g.worst_abs_error),
            g.predicted
        )
    };
    // A clause naming `items` after `what`, when there are any.
    let list = |what: &str, items: Vec<String>| {
        (!items.is_empty()).then(|| format!("{what}: {}", items.join(", ")))
    };
    let moe: Vec<String> = cal
        .summary
        .iter()
        .filter(|g| g.group.starts_with("tg ") && g.group.ends_with(" MoE"))
        .filter(|g| !g.group.starts_with("tg recorded ") && !g.group.starts_with("tg here "))
        .map(|g| {
            format!(
                "{} {} (n={})",
                &g.group[3..g.group.len() - 4],
                pct(g.median_abs_error),
                g.predicted
            )
        })
        .collect();
    let here: Vec<String> = ["dense", "MoE"]
        .iter()
        .filter_map(|k| Some(errors(k, cal.group(&format!("tg here {k}"))?)))
        .collect();
    let recorded: Vec<String> = cal
        .summary
        .iter()
        .filter_map(|g| Some(errors(g.group.strip_prefix("tg recorded ")?, g)))
        .collect();
    let parts: Vec<String> = [
        line("tg all", "decode"),
        line("tg Metal dense", "dense Metal decode"),
        list("MoE decode by backend", moe),
        line("pp all", "prompt processing"),
        list(
            "each recorded machine's own decodes, predicted from its others",
            here,
        ),
        list(
            "runner's own decodes on chips of the table, predicted by the fit to the published \
             rows (which never saw them)",
            recorded,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return "No published reference rows: the catalogue cannot be predicted.".into();
    }
    format!(
        "How far to trust the predictions: each of {} published llama-bench rows predicted \
         from the others (leave-one-out, `runner guide --validate`): {}.",
        cal.used,
        parts.join("; ")
    )
}

/// Chips shown as columns of the guide's catalogue table (the CSV has every chip).
const MATRIX_CHIPS: &[&str] = &[
    "Apple M4",
    "Apple M4 Pro",
    "Apple M4 Max (16-core CPU)",
    "Apple M3 Ultra",
    "Apple M2 Ultra",
    "Apple M1 Max",
    "NVIDIA GB10 (DGX Spark)",
    "AMD Ryzen AI Max+ 395",
];

pub(super) fn rate(v: Option<f64>) -> String {
    match v {
        Some(r) if r < 10.0 => format!("{r:.1}"),
        Some(r) => format!("{r:.0}"),
        None => "-".into(),
    }
}

/// The catalogue as a Markdown table: memory needed, then decode tok/s on chosen chips.
fn matrix(cal: &Calibration) -> String {
    let chips: Vec<&str> = cal
        .locals
        .iter()
        .map(|l| l.label.as_str())
        .chain(cal.unfitted.iter().map(|(label, _)| label.as_str()))
        .chain(MATRIX_CHIPS.iter().copied())
        .filter(|c| cal.rows.iter().any(|r| r.chip == *c))
        .collect();
    let mut s = format!(
        "| model | quant | params B (active) | memory GiB @{} | {} |\n|---|---|--:|--:|{}\n",
        cal.assumptions.context,
        chips
            .iter()
            .map(|c| format!(
                "{} tok/s",
                table::markdown_cell(c.trim_start_matches("Apple "))
            ))
            .collect::<Vec<_>>()
            .join(" | "),
        "--:|".repeat(chips.len())
    );
    for sz in &cal.sized {
        let of = |chip: &str| {
            cal.rows
                .iter()
                .find(|r| r.chip == chip && r.entry == sz.arch.name && r.quant == sz.quant.name)
        };
        let Some(first) = chips.iter().find_map(|c| of(c)) else {
            continue;
        };
        let params = if first.moe {
            format!("{:.1} ({:.1})", first.params_b, first.active_params_b)
        } else {
            format!("{:.1}", first.params_b)
        };
        let cells: Vec<String> = chips
            .iter()
            .map(|c| {
                let Some(r) = of(c) else { return "-".into() };
                let tps = rate(r.decode_tps);
                match r.confidence {
                    Confidence::Community => format!("{tps}†"),
                    Confidence::MeasuredHere => format!("**{tps}**"),
                    Confidence::ExtrapolatedHere => format!("*{tps}*"),
                    Confidence::Predicted | Confidence::NoBasis => tps,
                }
            })
            .collect();
        s.push_str(&format!(
            "| {} | {} | {params} | {:.1} | {} |\n",
            table::markdown_cell(&first.model),
            table::markdown_cell(sz.quant.display),
            first.memory_needed_gib,
            cells.join(" | ")
        ));
    }
    s
}

/// The guide's catalogue section, naming the CSV of every chip `catalogue_csv`.
pub fn catalogue_section(cal: &Calibration, catalogue_csv: &str) -> String {
    let a = cal.assumptions;
    let mut s = String::from("## The catalogue: what runs how fast\n\n");
    s.push_str(&format!(
        "Published architectures (`runner models list`) in common quantizations. Memory: weights \
         (sizes from llama.cpp's own quantizer), F16 KV cache at {} tokens and an allowance for \
         compute buffers; on Apple silicon the GPU can use only about 2/3 (up to 36 GB) or 3/4 \
         of unified memory by default, which `runner guide --machine` takes into account. Decode \
         tok/s: **predicted** unless marked † (published by the community with llama-bench for \
         that chip, model and quantization), **bold** (measured here at full size, on a \
         synthetic model of the entry) or *italic* (extrapolated here from layer-scaled runs). \
         A machine with records (the first columns) is predicted from its own decodes at its \
         measured bandwidth (a GPU: its published one); the chips from the published rows. Every chip, prompt processing and TTFT for a \
         {}-token prompt, and the basis of every number: `{catalogue_csv}`.\n\n",
        a.context, a.prompt
    ));
    s.push_str(&matrix(cal));
    s.push_str("\nThe model, fitted to the published rows:\n\n");
    s.push_str(&parameters(cal));
    s
}

#[cfg(test)]
mod tests {
    use super::super::catalog::Fit;
    use super::*;

    #[test]
    fn how_to_read_states_the_fit_rule_the_rows_use() {
        let share = format!(
            "at most {:.0} % of the memory llama.cpp can use",
            Fit::SPARE * 100.0
        );
        assert!(HOW_TO_READ.contains(&share), "{HOW_TO_READ}");
    }

    #[test]
    fn absurd_rates_print_in_scientific_notation() {
        assert_eq!(tps(1234.5678), "1234.57");
        assert_eq!(tps(0.0), "0.00");
        assert_eq!(tps(1e308), "1.00e308");
        assert_eq!(tps(f64::NAN), "NaN");
    }
}
