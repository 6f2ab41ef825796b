//! The load table: one row per (backend, model, quantization, load level), read from the
//! records of a sweep with `--concurrency` or `--rate`: what the level achieved (requests and
//! output tokens per second, each user's own decode rate), latencies from arrival, queueing,
//! goodput under the SLOs, and the knee of each cell's curve.

use super::table::{self, opt, Column, Grid};
use super::{Format, ReportError};
use crate::measure::load::{knee, Level, Pcts, Sample, Shape, Slo};
use crate::record::{BackendId, Record, RequestRecord};
use serde::Serialize;

/// One load level of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// The machine it ran on: its CPU and logical cores.
    pub machine: String,
    pub backend: BackendId,
    pub model: String,
    pub quant: String,
    #[serde(flatten)]
    pub shape: Shape,
    pub level: Level,
    /// Aggregate output tok/s over that of the same cell at concurrency 1.
    pub gain: Option<f64>,
    /// The SLOs the level was judged by, as given.
    pub slo: Option<String>,
    /// Greedy answers compared with the same prompt run alone, and how many were the same.
    pub compared: usize,
    pub same: usize,
    /// Requests measured while other processes kept the machine busy.
    pub busy_requests: usize,
    pub synthetic: bool,
}

/// The load rows of sweep requests (those without a load level left out), in the order their
/// levels first appear, each judged by the SLOs its records were run with.
pub fn of_requests<'a>(requests: impl IntoIterator<Item = &'a RequestRecord>) -> Vec<LoadRow> {
    judged(requests, None)
}

/// [`of_requests`] in an order of their own, not the records' (which follows file names):
/// by machine, backend, model and quantization, closed loops before open ones, by level.
pub fn sorted<'a>(requests: impl IntoIterator<Item = &'a RequestRecord>) -> Vec<LoadRow> {
    let mut rows = of_requests(requests);
    rows.sort_by(|a, b| {
        let key = |r: &LoadRow| (r.machine.clone(), r.backend.to_string(), r.model.clone());
        (key(a).cmp(&key(b)))
            .then_with(|| a.quant.cmp(&b.quant))
            .then_with(|| a.is_open().cmp(&b.is_open()))
            .then_with(|| a.shape.level().total_cmp(&b.shape.level()))
    });
    rows
}

/// The load rows of `records`, every level judged by `slo` where given (a sweep's table
/// judges its levels by the `--slo` given now, also those recorded by an earlier run of it),
/// else by the SLOs its records were run with.
pub fn rows_judged_by(records: &[Record], slo: Option<&Slo>) -> Vec<LoadRow> {
    judged(crate::record::requests(records), slo)
}

fn judged<'a>(
    requests: impl IntoIterator<Item = &'a RequestRecord>,
    slo: Option<&Slo>,
) -> Vec<LoadRow> {
    let mut groups: Vec<(LoadRow, Vec<Sample>, Option<Slo>)> = Vec::new();
    for q in requests {
        let Some(t) = &q.traffic else { continue };
        let probe = new_row(q, t.shape);
        let at = groups
            .iter()
            .position(|(row, _, _)| row.same_cell(&probe) && row.shape == probe.shape);
        let i = at.unwrap_or_else(|| {
            groups.push((probe, Vec::new(), slo.cloned().or_else(|| t.objectives())));
            groups.len() - 1
        });
        let (row, samples, _) = &mut groups[i];
        samples.push(t.sample(q));
        row.busy_requests += usize::from(q.load.busy);
        if let Some(same) = t.same_as_alone {
            row.compared += 1;
            row.same += usize::from(same);
        }
    }
    let mut out: Vec<LoadRow> = Vec::with_capacity(groups.len());
    for (mut row, samples, slo) in groups {
        row.level = Level::of(&samples, slo.as_ref());
        row.slo = slo.map(|s| s.describe());
        out.push(row);
    }
    let alone: Vec<Option<f64>> = out
        .iter()
        .map(|r| {
            out.iter()
                .find(|o| o.same_cell(r) && o.shape == Shape::Closed { concurrency: 1 })
                .map(|o| o.level.output_tps)
        })
        .collect();
    for (row, base) in out.iter_mut().zip(alone) {
        row.gain = base.filter(|b| *b > 0.0).map(|b| row.level.output_tps / b);
    }
    out
}

/// The machine of a request, as the table names it.
fn machine_of(q: &RequestRecord) -> String {
    let m = &q.info.machine;
    format!("{} ({} cores)", m.cpu.trim(), m.logical_cores)
}

fn new_row(q: &RequestRecord, shape: Shape) -> LoadRow {
    LoadRow {
        machine: machine_of(q),
        backend: q.cell.backend.clone(),
        model: q.cell.model.clone(),
        quant: q.cell.quant.clone(),
        shape,
        level: Level::of(&[], None),
        gain: None,
        slo: None,
        compared: 0,
        same: 0,
        busy_requests: 0,
        synthetic: q.info.model.synthetic.is_some(),
    }
}

impl LoadRow {
    /// An open-loop level (arrivals at a rate), not a closed loop.
    pub fn is_open(&self) -> bool {
        matches!(self.shape, Shape::Open { .. })
    }

    /// "backend model/quant", with " on MACHINE" when `several` machines are shown.
    pub fn cell_name(&self, several: bool) -> String {
        let mut name = format!(
            "{} {}/{}",
            self.backend,
            crate::models::display_name(&self.model),
            self.quant
        );
        if several {
            name.push_str(&format!(" on {}", self.machine));
        }
        name
    }

    /// Whether both rows are levels of the same cell on the same machine.
    pub fn same_cell(&self, o: &LoadRow) -> bool {
        self.machine == o.machine
            && self.backend == o.backend
            && self.model == o.model
            && self.quant == o.quant
    }
}

/// Whether `rows` come from more than one machine.
pub fn several_machines(rows: &[LoadRow]) -> bool {
    rows.iter().any(|r| r.machine != rows[0].machine)
}

fn pct(p: Option<Pcts>, f: fn(&Pcts) -> f64) -> String {
    opt(p.as_ref().map(f), 0)
}

/// The table's columns; a machine column when the rows come from more than one machine.
fn columns(rows: &[LoadRow]) -> Vec<Column<LoadRow>> {
    let machine = several_machines(rows).then_some(MACHINE);
    machine.into_iter().chain(COLUMNS.iter().copied()).collect()
}

const MACHINE: Column<LoadRow> = Column::text("machine", |r| r.machine.clone());

const COLUMNS: &[Column<LoadRow>] = &[
    Column::text("backend", |r| r.backend.to_string()),
    Column::text("model", |r| crate::models::display_name(&r.model)),
    Column::text("quant", |r| r.quant.clone()),
    Column::text("load", |r| r.shape.label()),
    Column::number("req", |r| r.level.requests.to_string()),
    Column::number("fail", |r| r.level.failed.to_string()),
    Column::number("req/s", |r| format!("{:.2}", r.level.achieved_rps)),
    Column::number("out tok/s", |r| format!("{:.1}", r.level.output_tps)),
    Column::number("gain", |r| {
        r.gain.map_or("-".into(), |g| format!("{g:.2}x"))
    }),
    Column::number("user tok/s", |r| opt(r.level.per_user_tps, 1)),
    Column::number("TTFT p50", |r| pct(r.level.ttft_ms, |p| p.p50)),
    Column::number("TTFT p99", |r| pct(r.level.ttft_ms, |p| p.p99)),
    Column::number("ITL p50", |r| opt(r.level.itl_ms.map(|p| p.p50), 1)),
    Column::number("ITL p99", |r| opt(r.level.itl_ms.map(|p| p.p99), 1)),
    Column::number("e2e p99", |r| pct(r.level.e2e_ms, |p| p.p99)),
    Column::number("queue p99", |r| pct(r.level.queue_ms, |p| p.p99)),
    Column::number("goodput", |r| {
        r.level.goodput.map_or("-".into(), |g| {
            format!("{:.0}% {:.2}/s", g.share * 100.0, g.rps)
        })
    }),
    Column::number("same", |r| match r.compared {
        0 => "-".into(),
        n => format!("{}/{n}", r.same),
    }),
];

/// The knee of each cell's closed-loop and open-loop curves under its SLOs, a line each.
pub fn knees(rows: &[LoadRow]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let open = r.is_open();
        let first = rows
            .iter()
            .position(|o| o.same_cell(r) && o.is_open() == open);
        if first != Some(i) || r.slo.is_none() {
            continue;
        }
        let curve: Vec<(f64, &Level)> = rows
            .iter()
            .filter(|o| o.same_cell(r) && o.is_open() == open)
            .map(|o| (o.shape.level(), &o.level))
            .collect();
        let name = r.cell_name(several_machines(rows));
        let at = match (knee(&curve), open) {
            (None, false) => "no concurrency level meets them".to_string(),
            (None, true) => "no rate meets them".to_string(),
            (Some(v), false) => format!("concurrency {v}"),
            (Some(v), true) => format!("{v} req/s"),
        };
        out.push(format!("  {name}: {at}"));
    }
    out
}

/// What the table's columns mean.
pub const COLUMNS_NOTE: &str = "times in ms from each request's arrival (queueing included); out tok/s = output tokens of the requests that did not fail / level wall time; user tok/s = median of each request's own decode rate; gain = out tok/s over concurrency 1's";

/// The load table's cells, for pages that draw tables themselves.
pub fn grid(rows: &[LoadRow]) -> Grid {
    table::grid(&columns(rows), rows)
}

/// The load table in one format (nothing when no record has a load level).
pub fn render(format: Format, rows: &[LoadRow]) -> Result<String, ReportError> {
    if rows.is_empty() {
        return Ok(String::new());
    }
    super::render_rows(format, &columns(rows), rows, || {
        let mut s = format!("{COLUMNS_NOTE}\n");
        if let Some(slo) = rows.iter().find_map(|r| r.slo.clone()) {
            s.push_str(&format!("knee (highest load whose requests meet {slo}):\n"));
            for line in knees(rows) {
                s.push_str(&line);
                s.push('\n');
            }
        }
        s.push_str(&super::busy_note(
            rows.iter().map(|r| r.busy_requests).sum(),
        ));
        if rows.iter().any(|r| r.synthetic) {
            s.push_str("synthetic (random-weight) models: speed only\n");
        }
        s
    })
}
