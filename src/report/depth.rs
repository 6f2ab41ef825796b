//! Full-depth figures extrapolated from layer-scaled synthetic runs: for one model, type, test
//! and engine setting measured at two or more layer counts, a line through time per token
//! against layers (fixed + per-layer × layers) gives the time at the real model's depth.
//! Labelled as an extrapolation, with the measured depths and the fit's residual.

use super::table::{aligned, Column};
use crate::measure::fit;
use crate::record::BenchRecord;
use crate::report::obs::{Fingerprint, Weights};
use serde::Serialize;
use std::collections::BTreeMap;

/// One extrapolated figure.
#[derive(Debug, Clone, Serialize)]
pub struct FullDepth {
    /// The machine the depths were measured on, and where the weights sat there.
    pub machine: Fingerprint,
    pub weights: Weights,
    /// Catalogue entry, e.g. `llama-3.1-8b`.
    pub model: String,
    pub quant: String,
    pub test: String,
    /// `prompt` (processing) or `generation`.
    pub phase: &'static str,
    pub layers_measured: Vec<u32>,
    pub full_layers: u32,
    /// Fitted milliseconds per token: fixed, and per layer.
    pub fixed_ms: f64,
    pub per_layer_ms: f64,
    /// Tokens per second at full depth, extrapolated; `None` when time per token did not grow
    /// with layers (a noisy or busy machine), so there is nothing to extrapolate.
    pub tps: Option<f64>,
    /// RMS of the residuals relative to the fit (0 from two depths).
    pub residual: f64,
    /// Depths measured while other processes kept the machine busy: the fit is suspect.
    pub busy: usize,
}

type Key = (Fingerprint, Weights, String, String, String, u32, String);

/// A record's rate (tok/s) for one phase.
type Rate = fn(&BenchRecord) -> Option<f64>;

/// Every extrapolation the records allow.
pub fn full_depth(records: &[BenchRecord]) -> Vec<FullDepth> {
    let mut groups: BTreeMap<Key, Vec<&BenchRecord>> = BTreeMap::new();
    for r in records {
        let Some(s) = &r.model.synthetic else {
            continue;
        };
        if s.of == "twin" {
            continue;
        }
        let machine = Fingerprint::of(&r.machine, &r.build);
        let weights = Weights::of(r.engine.n_gpu_layers, r.model.n_layer, &machine);
        let key = (
            machine,
            weights,
            s.of.clone(),
            r.model.file_type.clone().unwrap_or_default(),
            r.test.name.clone(),
            r.engine.threads,
            format!("{:?}/{}", s.experts, s.seed),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((machine, weights, model, quant, test, _, _), rs) in groups {
        let full = rs[0].model.synthetic.as_ref().map_or(0, |s| s.full_layers);
        let phases: [(&'static str, Rate); 2] = [
            ("prompt", |r| {
                r.results.prompt_tps.as_ref().map(|s| s.median)
            }),
            ("generation", |r| {
                r.results.gen_tps.as_ref().map(|s| s.median)
            }),
        ];
        for (phase, rate) in phases {
            let measured: Vec<(f64, f64, bool)> = rs
                .iter()
                .filter_map(|r| {
                    let layers = r.model.synthetic.as_ref()?.layers;
                    let tps = rate(r).filter(|v| *v > 0.0)?;
                    Some((layers as f64, 1000.0 / tps, r.load.busy))
                })
                .collect();
            let points: Vec<(f64, f64)> = measured.iter().map(|&(l, ms, _)| (l, ms)).collect();
            let busy = measured.iter().filter(|p| p.2).count();
            let Some(line) = fit::line(&points) else {
                continue;
            };
            let (slope, ms) = (line.slope, line.intercept + line.slope * full as f64);
            let mut layers: Vec<u32> = points.iter().map(|p| p.0 as u32).collect();
            layers.sort_unstable();
            layers.dedup();
            out.push(FullDepth {
                machine: machine.clone(),
                weights,
                model: model.clone(),
                quant: quant.clone(),
                test: test.clone(),
                phase,
                layers_measured: layers,
                full_layers: full,
                fixed_ms: line.intercept,
                per_layer_ms: slope,
                tps: (slope > 0.0 && ms > 0.0).then(|| 1000.0 / ms),
                residual: line.rel_residual,
                busy,
            });
        }
    }
    out
}

const COLUMNS: &[Column<FullDepth>] = &[
    Column::text("model", |f| f.model.clone()),
    Column::text("quant", |f| f.quant.clone()),
    Column::text("test", |f| f.test.clone()),
    Column::text("phase", |f| f.phase.to_string()),
    Column::text("layers measured", |f| {
        let l: Vec<String> = f.layers_measured.iter().map(u32::to_string).collect();
        l.join(", ")
    }),
    Column::number("fixed ms", |f| format!("{:.3}", f.fixed_ms)),
    Column::number("per-layer ms", |f| format!("{:.3}", f.per_layer_ms)),
    Column::number("full layers", |f| f.full_layers.to_string()),
    Column::number("tok/s (extrapolated)", |f| match f.tps {
        Some(v) => format!("{v:.2}"),
        None => "no fit: time fell with layers".into(),
    }),
    Column::number("fit residual", |f| match f.layers_measured.len() {
        2 => "- (2 depths)".into(),
        _ => format!("{:.1} %", f.residual * 100.0),
    }),
];

/// The extrapolations as a table with its heading, or nothing when there are none.
pub fn render(records: &[BenchRecord]) -> String {
    let rows = full_depth(records);
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "\nfull depth, extrapolated from layer-scaled synthetic runs (ms per token = fixed + per-layer × layers):\n{}",
        aligned(COLUMNS, &rows)
    )
}
