//! How far the guide's predictions are off: every reference row predicted from the others
//! (leave-one-out), and the errors summarised per backend and kind of model.

use super::calib::{Model, Resolved};
use crate::measure::stats::percentile;
use std::collections::BTreeMap;

/// One reference row predicted from all the others.
#[derive(Debug, Clone)]
pub struct Validation {
    pub machine: String,
    pub backend: String,
    pub model: String,
    pub quant: String,
    pub moe: bool,
    /// `tg` (decode) or `pp` (prompt processing).
    pub metric: &'static str,
    pub published: f64,
    pub predicted: Option<f64>,
    /// predicted ÷ published − 1.
    pub error: Option<f64>,
    pub source: String,
    /// Measured on a machine with records rather than published.
    pub here: bool,
    /// Measured on a machine with records and predicted by the fit to the published rows
    /// (which never saw it): the out-of-sample check of that fit.
    pub recorded: bool,
}

/// Leave-one-out: every row's decode and prompt rates predicted by the model fitted without it.
pub fn validate(rows: &[Resolved]) -> Vec<Validation> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let others: Vec<&Resolved> = rows[..i].iter().chain(&rows[i + 1..]).collect();
        let model = Model::fit(&others);
        let backend = r.row.backend.as_str();
        let mut push = |metric, published: Option<f64>, predicted: Option<(f64, String)>| {
            let Some(published) = published else { return };
            let predicted = predicted.map(|p| p.0);
            out.push(Validation {
                machine: r.row.machine.clone(),
                backend: backend.to_string(),
                model: r.row.model.clone(),
                quant: r.row.quant.clone(),
                moe: r.work.moe,
                metric,
                published,
                predicted,
                error: predicted.map(|p| p / published - 1.0),
                source: r.row.source.clone(),
                here: false,
                recorded: false,
            });
        };
        push("tg", r.row.tg_tps, model.decode(r.chip, backend, &r.work));
        let cores = r.row.gpu_cores();
        push(
            "pp",
            r.row.pp_tps,
            model.prompt(r.chip, backend, cores, &r.work),
        );
    }
    out
}

/// Median and worst absolute error of a group of validations, and how many could not be
/// predicted at all.
#[derive(Debug, Clone)]
pub struct ErrorSummary {
    pub group: String,
    pub rows: usize,
    pub predicted: usize,
    pub median_abs_error: Option<f64>,
    pub worst_abs_error: Option<f64>,
}

/// Error summaries of the published rows: decode and prompt overall, then per backend and for
/// dense and MoE rows; decodes measured on machines with records apart, predicted from their
/// others (`tg here dense`) and by the published fit (`tg recorded CUDA dense`).
pub fn summarise(v: &[Validation]) -> Vec<ErrorSummary> {
    let mut groups: BTreeMap<String, Vec<&Validation>> = BTreeMap::new();
    for x in v {
        let kind = if x.moe { "MoE" } else { "dense" };
        let gs = if x.here {
            vec![format!("{} here {kind}", x.metric)]
        } else if x.recorded {
            vec![format!("{} recorded {} {kind}", x.metric, x.backend)]
        } else {
            vec![
                format!("{} all", x.metric),
                format!("{} {} {kind}", x.metric, x.backend),
            ]
        };
        for g in gs {
            groups.entry(g).or_default().push(x);
        }
    }
    groups
        .into_iter()
        .map(|(group, xs)| {
            let errs: Vec<f64> = xs.iter().filter_map(|x| x.error).map(f64::abs).collect();
            ErrorSummary {
                group,
                rows: xs.len(),
                predicted: errs.len(),
                median_abs_error: percentile(&errs, 0.5),
                worst_abs_error: errs.iter().cloned().reduce(f64::max),
            }
        })
        .collect()
}
