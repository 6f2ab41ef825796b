//! The sweep's comparison table: one row per (backend, model, quantization) cell, read from
//! records.

use super::table::{opt, percent_pair, text_cell, Column};
use super::{median, Format, ReportError};
use crate::grade::judge::panel;
use crate::grade::pair_symmetry;
use crate::measure::stats::percentile;
use crate::record::{BackendId, Bandwidth, CellKey, Judgement, Record, RequestRecord};
use crate::scenario::ScenarioKind;
use serde::Serialize;
use std::collections::BTreeMap;

/// One cell's figures. Times in milliseconds; rates in tokens per second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepRow {
    /// `native`, or the HTTP backend's name (`openai:MODEL`).
    pub backend: BackendId,
    pub model: String,
    pub quant: String,
    pub file_type: Option<String>,
    pub size_bytes: Option<u64>,
    pub bits_per_weight: Option<f64>,
    /// The source was itself quantized: quality figures are not representative.
    pub requantized: bool,
    /// A synthetic (random-weight) model: speed only, no pass rates or quality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<crate::models::synthetic::Synthetic>,
    /// Time to quantize, `None` when cached or running the source.
    pub quantize_ms: Option<f64>,
    pub quantize_cached: bool,
    pub load_ms: Option<f64>,
    pub short_ttft_p50_ms: Option<f64>,
    pub short_ttft_p99_ms: Option<f64>,
    pub short_e2e_p50_ms: Option<f64>,
    pub short_e2e_p99_ms: Option<f64>,
    /// Median over long-form requests of (tokens - 1) / (last - first token time).
    pub long_decode_tps: Option<f64>,
    /// Gaps between tokens, all long-form requests pooled.
    pub long_itl_p50_ms: Option<f64>,
    pub long_itl_p99_ms: Option<f64>,
    /// Medians over long-form requests of the bytes one decoded token reads, the GB/s that
    /// makes at the request's decode rate, and its share of the measured and published peaks.
    pub long_bytes_per_token: Option<f64>,
    pub long_gbps: Option<f64>,
    pub long_bw_util_measured: Option<f64>,
    pub long_bw_util_published: Option<f64>,
    /// Passed and run requests, per scenario; those not graded here (no grader, or every one
    /// skipped) apart.
    pub pass: BTreeMap<String, Count>,
    /// Requests whose executed graders (`tests`) all passed, of those with any that ran, per
    /// prompt category: pass@1 measured by running the answer's code. Requests whose executed
    /// graders were all skipped (a missing runtime) apart.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub executed: BTreeMap<String, Count>,
    /// Requests whose structural graders (the rest) all passed, of those with any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structural: Option<Count>,
    /// Symmetric pairs of the pairs whose halves both ran.
    pub pairs: Option<Count>,
    pub requests: usize,
    pub failed_requests: usize,
    /// Requests measured while other processes kept the machine busy: their figures are suspect.
    pub busy_requests: usize,
    /// Why the cell failed, when it did and recorded no request.
    pub cell_error: Option<String>,
    /// Failed requests by kind (`time_limit`, `http_status`, ...).
    pub failure_kinds: BTreeMap<String, usize>,
    /// Cost of one run of the cell's requests in US dollars (0 for local backends); `None`
    /// when any request's cost is unknown.
    pub cost_usd: Option<f64>,
    /// Quality on 0-100: the judge panel's mean score when judged, else the graders' mean
    /// score × 100.
    pub quality: Option<f64>,
    /// `judges` or `graders`.
    pub quality_source: Option<String>,
    /// `cost_usd` / `quality`.
    pub cost_per_quality_point: Option<f64>,
    /// The judge panel's figures, when judges ran.
    pub judging: Option<crate::grade::judge::panel::CellQuality>,
}

/// `passed` out of `total`, and those left out because their graders were skipped here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub passed: usize,
    pub total: usize,
    /// Not graded here (no graders, or their graders' runtime is missing): neither passed nor
    /// failed, and not in `total`.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Count {
    /// One more of `total`, passed or not.
    fn add(&mut self, pass: bool) {
        self.passed += usize::from(pass);
        self.total += 1;
    }

    /// ` (+N skipped)` when any were skipped, else nothing.
    fn skipped_note(&self) -> String {
        match self.skipped {
            0 => String::new(),
            n => format!(" (+{n} skipped)"),
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match (self.total, self.skipped) {
            (0, n) if n > 0 => write!(f, "- ({n} skipped)"),
            _ => write!(f, "{}/{}{}", self.passed, self.total, self.skipped_note()),
        }
    }
}

/// One cell's records, in the order they were written.
#[derive(Default)]
struct Cell<'a> {
    requests: Vec<&'a RequestRecord>,
    judgements: Vec<&'a Judgement>,
    error: Option<String>,
}

/// The cell of `key`, added after the others when it is new.
fn cell<'c, 'a>(cells: &'c mut Vec<(&'a CellKey, Cell<'a>)>, key: &'a CellKey) -> &'c mut Cell<'a> {
    let i = cells.iter().position(|c| c.0 == key).unwrap_or_else(|| {
        cells.push((key, Cell::default()));
        cells.len() - 1
    });
    &mut cells[i].1
}

/// Rows, with judges' scores combined by the power mean of exponent `power`.
pub fn rows_with(records: &[Record], power: f64) -> Vec<SweepRow> {
    let mut cells = Vec::new();
    for r in records {
        match r {
            // Load levels have their own table (`report::load`).
            Record::Request(q) if q.traffic.is_none() => cell(&mut cells, &q.cell).requests.push(q),
            Record::CellFailed(f) => cell(&mut cells, &f.cell).error = Some(f.reason.clone()),
            Record::Judgement(j) => cell(&mut cells, &j.cell).judgements.push(j),
            _ => {}
        }
    }
    cells
        .into_iter()
        .map(|(key, c)| {
            let mut row = row(key, &c.requests);
            if c.requests.is_empty() {
                row.cell_error = c.error;
            }
            costs_and_quality(&mut row, &c.requests, &c.judgements, power);
            row
        })
        .collect()
}

fn row(key: &CellKey, reqs: &[&RequestRecord]) -> SweepRow {
    let mut row = SweepRow {
        backend: key.backend.clone(),
        model: key.model.clone(),
        quant: key.quant.clone(),
        requests: reqs.len(),
        failed_requests: reqs.iter().filter(|r| r.failed).count(),
        busy_requests: reqs.iter().filter(|r| r.load.busy).count(),
        ..Default::default()
    };
    if let Some(last) = reqs.last().filter(|_| key.backend.is_native()) {
        let m = &last.info.model;
        row.file_type = m.file_type.clone();
        row.size_bytes = Some(m.size_bytes);
        row.bits_per_weight = Some(m.bits_per_weight);
        row.requantized = last.info.requantized;
        row.synthetic = m.synthetic.clone();
        row.quantize_ms = reqs.iter().find_map(|r| r.info.quantize_ms);
        row.quantize_cached = row.quantize_ms.is_none() && last.info.quantize_cached;
        row.load_ms = Some(m.load_ms);
    }
    let of_kind = |k| -> Vec<&RequestRecord> {
        reqs.iter()
            .copied()
            .filter(|r| r.scenario_kind == k)
            .collect()
    };
    let (short, long) = (
        of_kind(ScenarioKind::ShortResponse),
        of_kind(ScenarioKind::LongForm),
    );
    // Requests that ended in an error are counted under failures, not in the latencies.
    let waited: Vec<&RequestRecord> = short.iter().copied().filter(|r| r.waited()).collect();
    let ttft: Vec<f64> = waited.iter().filter_map(|r| r.ttft_ms).collect();
    let e2e: Vec<f64> = waited.iter().map(|r| r.e2e_ms).collect();
    row.short_ttft_p50_ms = percentile(&ttft, 0.5);
    row.short_ttft_p99_ms = percentile(&ttft, 0.99);
    row.short_e2e_p50_ms = percentile(&e2e, 0.5);
    row.short_e2e_p99_ms = percentile(&e2e, 0.99);
    row.long_decode_tps = median(long.iter().filter_map(|r| r.decode_tps));
    let bw = |f: &dyn Fn(&Bandwidth) -> Option<f64>| {
        median(long.iter().filter_map(|r| f(r.bandwidth.as_ref()?)))
    };
    row.long_bytes_per_token = bw(&|b| Some(b.bytes_per_token as f64));
    row.long_gbps = bw(&|b| Some(b.achieved_gbps));
    row.long_bw_util_measured = bw(&|b| b.utilisation_measured);
    row.long_bw_util_published = bw(&|b| b.utilisation_published);
    let itl = crate::measure::itl_histogram_ms(long.iter().map(|r| r.token_ms.as_slice()));
    if let Some(h) = itl.summary() {
        row.long_itl_p50_ms = Some(h.p50_ms);
        row.long_itl_p99_ms = Some(h.p99_ms);
    }
    for r in reqs {
        let e = row.pass.entry(r.scenario.clone()).or_default();
        match r.ungraded {
            true => e.skipped += 1,
            false => e.add(r.pass),
        }
        let category = || r.category.clone().unwrap_or_else(|| r.scenario.clone());
        if let Some(pass) = crate::report::obs::executed(&r.verdicts) {
            row.executed.entry(category()).or_default().add(pass);
        } else if r.verdicts.iter().any(|v| v.skipped()) {
            row.executed.entry(category()).or_default().skipped += 1;
        }
        let structural: Vec<_> = r
            .verdicts
            .iter()
            .filter(|v| v.execution.is_none())
            .collect();
        if !structural.is_empty() {
            let c = row.structural.get_or_insert_with(Count::default);
            c.add(structural.iter().all(|v| v.pass));
        }
    }
    row.pairs = pairs(reqs);
    row
}

/// Cost per run, quality and cost per quality point of a cell.
fn costs_and_quality(row: &mut SweepRow, reqs: &[&RequestRecord], js: &[&Judgement], p: f64) {
    for r in reqs.iter().filter(|r| r.failed) {
        let kind = r
            .error_kind
            .map(|k| k.as_str())
            .unwrap_or_else(|| r.stop_reason.as_str())
            .to_string();
        *row.failure_kinds.entry(kind).or_default() += 1;
    }
    row.cost_usd = if reqs.is_empty() {
        None
    } else if row.backend.is_native() {
        Some(0.0)
    } else {
        reqs.iter().map(|r| r.cost_usd).sum()
    };
    if !js.is_empty() {
        let q = panel::cell_quality(js, p);
        row.quality = q.score;
        row.quality_source = q.score.map(|_| "judges".to_string());
        row.judging = Some(q);
    } else {
        // A request not graded here has no score to count.
        let scores: Vec<f64> = reqs
            .iter()
            .filter(|r| !r.ungraded)
            .map(|r| r.score)
            .collect();
        if !scores.is_empty() {
            let mean = scores.iter().sum::<f64>() / scores.len() as f64;
            row.quality = Some(mean * 100.0);
            row.quality_source = Some("graders".into());
        }
    }
    if row.synthetic.is_some() {
        row.quality = None;
        row.quality_source = None;
        row.judging = None;
        row.pass.clear();
        row.executed.clear();
        row.structural = None;
        row.pairs = None;
    }
    row.cost_per_quality_point = match (row.cost_usd, row.quality) {
        (Some(c), Some(q)) if q > 0.0 => Some(c / q),
        _ => None,
    };
}

/// Symmetry over the pairs whose two halves both ran, and were graded, in this cell.
fn pairs(reqs: &[&RequestRecord]) -> Option<Count> {
    let mut halves: BTreeMap<(&str, &str), Vec<&RequestRecord>> = BTreeMap::new();
    for r in reqs {
        if let Some(p) = &r.pair {
            halves
                .entry((r.scenario.as_str(), p.as_str()))
                .or_default()
                .push(r);
        }
    }
    let (mut total, mut symmetric, mut skipped) = (0, 0, 0);
    for ((_, pair), h) in &halves {
        if let [a, b] = h.as_slice() {
            if a.ungraded || b.ungraded {
                skipped += 1;
                continue;
            }
            total += 1;
            let v = pair_symmetry(pair, &a.prompt_id, &a.verdicts, &b.prompt_id, &b.verdicts);
            symmetric += usize::from(v.symmetric && !a.failed && !b.failed);
        }
    }
    (total + skipped > 0).then_some(Count {
        passed: symmetric,
        total,
        skipped,
    })
}

fn pair(a: Option<f64>, b: Option<f64>, digits: usize) -> String {
    format!("{}/{}", opt(a, digits), opt(b, digits))
}

/// Marks a synthetic model's name in tables.
pub const SYNTHETIC_MARK: &str = " (synthetic)";

/// What a synthetic row is, under a table that has one.
pub const SYNTHETIC_NOTE: &str = "(synthetic) random weights with the published model's exact tensors: speed and size are the model's, text and pass rates mean nothing and are not shown\n";

/// The sweep's columns.
const COLUMNS: &[Column<SweepRow>] = &[
    Column::text("model", |r| {
        let name = crate::models::display_name(&r.model);
        match r.synthetic {
            Some(_) => format!("{name}{SYNTHETIC_MARK}"),
            None => name,
        }
    }),
    Column::text("quant", |r| match r.requantized {
        true => format!("{}*", r.quant),
        false => r.quant.clone(),
    }),
    Column::number("size MiB", |r| {
        opt(r.size_bytes.map(|b| b as f64 / super::MIB), 1)
    }),
    Column::number("bits/w", |r| opt(r.bits_per_weight, 2)),
    Column::number("quantize", |r| match (r.quantize_ms, r.quantize_cached) {
        (Some(ms), _) => format!("{:.1} s", ms / 1000.0),
        (None, true) => "cached".into(),
        (None, false) => "-".into(),
    }),
    Column::number("load ms", |r| opt(r.load_ms, 0)),
    Column::number("short TTFT p50/p99 ms", |r| {
        pair(r.short_ttft_p50_ms, r.short_ttft_p99_ms, 0)
    }),
    Column::number("short e2e p50/p99 ms", |r| {
        pair(r.short_e2e_p50_ms, r.short_e2e_p99_ms, 0)
    }),
    Column::number("long tok/s", |r| opt(r.long_decode_tps, 2)),
    Column::number("long ITL p50/p99 ms", |r| {
        pair(r.long_itl_p50_ms, r.long_itl_p99_ms, 1)
    }),
    Column::number("long GB/s", |r| opt(r.long_gbps, 2)),
    Column::number("BW % meas/spec", |r| {
        percent_pair(r.long_bw_util_measured, r.long_bw_util_published)
    }),
    Column::text("pass", |r| match r.synthetic {
        Some(_) => "-".into(),
        None => list(&r.pass),
    }),
    Column::number("executed pass@1", |r| {
        let all = r.executed.values().fold(Count::default(), |a, c| Count {
            passed: a.passed + c.passed,
            total: a.total + c.total,
            skipped: a.skipped + c.skipped,
        });
        match (all.total, all.skipped) {
            (0, 0) => "-".into(),
            (0, _) => all.to_string(),
            (t, _) => format!(
                "{}/{t} ({:.0} %){}",
                all.passed,
                all.passed as f64 / t as f64 * 100.0,
                all.skipped_note()
            ),
        }
    }),
    Column::number("pairs", |r| r.pairs.map_or("-".into(), |c| c.to_string())),
    Column::text("failures", failures),
];

/// With any HTTP backend or judge in the rows: the backend first.
const BACKEND: Column<SweepRow> = Column::text("backend", |r| r.backend.to_string());

/// With any HTTP backend or judge in the rows: cost per run, quality and cost per quality
/// point last.
const COSTS: &[Column<SweepRow>] = &[
    Column::number("cost $/run", |r| opt(r.cost_usd, 4)),
    Column::number("quality", |r| {
        match (r.quality, r.quality_source.as_deref()) {
            (Some(q), Some("judges")) => {
                let own = r.judging.as_ref().is_some_and(|j| j.self_judging);
                format!("{q:.1} (judges{})", if own { ", self-judged!" } else { "" })
            }
            (Some(q), _) => format!("{q:.1} (graders)"),
            _ => "-".into(),
        }
    }),
    Column::number("$/quality pt", |r| opt(r.cost_per_quality_point, 6)),
];

/// `key value` of each entry, separated by commas.
fn list<V: std::fmt::Display>(m: &BTreeMap<String, V>) -> String {
    let v: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
    v.join(", ")
}

fn failures(r: &SweepRow) -> String {
    match &r.cell_error {
        Some(e) => format!("cell failed: {e}"),
        None if r.failed_requests > 0 && !r.backend.is_native() => {
            let kinds = list(&r.failure_kinds);
            format!("{} request(s): {kinds}", r.failed_requests)
        }
        None if r.failed_requests > 0 => format!("{} request(s)", r.failed_requests),
        None => "-".into(),
    }
}

/// The columns for these rows: a native-only sweep keeps its table as it was.
fn columns(rows: &[SweepRow]) -> Vec<Column<SweepRow>> {
    let baselines = rows
        .iter()
        .any(|r| !r.backend.is_native() || r.judging.is_some());
    match baselines {
        false => COLUMNS.to_vec(),
        true => std::iter::once(BACKEND)
            .chain(COLUMNS.iter().copied())
            .chain(COSTS.iter().copied())
            .collect(),
    }
}

/// Executed pass@1 per prompt category, one line per cell, with the structural graders'
/// share apart; nothing when no request had executed graders.
fn by_category(rows: &[SweepRow]) -> String {
    let lines: Vec<String> = rows
        .iter()
        .filter(|r| !r.executed.is_empty())
        .map(|r| {
            let structural = r
                .structural
                .map(|c| format!("; structural graders all passed: {c}"))
                .unwrap_or_default();
            let cats = text_cell(&list(&r.executed));
            let (model, quant) = (text_cell(&r.model), text_cell(&r.quant));
            format!("  {model} {quant}: {cats}{structural}")
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "executed pass@1 by category (the answer's code run against hidden tests):\n{}\n",
        lines.join("\n")
    )
}

/// The comparison table in one format.
pub fn render(format: Format, rows: &[SweepRow]) -> Result<String, ReportError> {
    super::render_rows(format, &columns(rows), rows, || {
        let mut s = super::busy_note(rows.iter().map(|r| r.busy_requests).sum());
        if rows.iter().any(|r| r.requantized) {
            s.push_str("* re-quantized from an already quantized file: size and speed are representative, answer quality is not\n");
        }
        if rows.iter().any(|r| r.synthetic.is_some()) {
            s.push_str(SYNTHETIC_NOTE);
        }
        s + &by_category(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::trace::FailureKind;

    /// The shipped sweep fixture's short-response requests, all finished at 1000 ms with a
    /// first token at 100 ms, plus one that failed after `ms` with `kind`, its first token
    /// at 1 ms.
    fn short_with_failure(ms: f64, kind: FailureKind) -> Vec<Record> {
        let text = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        let mut short: Vec<RequestRecord> = text
            .lines()
            .filter_map(|l| match serde_json::from_str(l).unwrap() {
                Record::Request(r) if r.scenario_kind == ScenarioKind::ShortResponse => Some(*r),
                _ => None,
            })
            .collect();
        for r in &mut short {
            (r.e2e_ms, r.ttft_ms) = (1000.0, Some(100.0));
        }
        let mut bad = short[0].clone();
        (bad.e2e_ms, bad.failed, bad.error_kind) = (ms, true, Some(kind));
        bad.ttft_ms = Some(1.0);
        short.push(bad);
        short
            .into_iter()
            .map(|r| Record::Request(Box::new(r)))
            .collect()
    }

    /// The coding fixture's requests as a machine without node would record them: each
    /// JavaScript executed grader skipped, the outcome recomputed as the sweep does; with
    /// `only_tests`, the JavaScript prompts have no other grader.
    fn without_node(only_tests: bool) -> Vec<Record> {
        let text = include_str!("../../tests/data/coding/sweep-ee91125fef6e.jsonl");
        let mut out = Vec::new();
        for line in text.lines() {
            let mut rec: Record = serde_json::from_str(line).unwrap();
            if let Record::Request(r) = &mut rec {
                let js = |v: &crate::scenario::Verdict| {
                    v.execution
                        .as_ref()
                        .is_some_and(|x| x.language == "javascript")
                };
                if only_tests && r.verdicts.iter().any(js) {
                    r.verdicts.retain(js);
                }
                for v in r.verdicts.iter_mut().filter(|v| js(v)) {
                    let why = "node not found: javascript tests skipped".to_string();
                    (v.pass, v.detail, v.cases) = (false, Some(why.clone()), Vec::new());
                    v.execution.as_mut().unwrap().skipped = Some(why);
                }
                let o = crate::grade::outcome(r.failed, &r.verdicts);
                (r.pass, r.score, r.ungraded) = (o.pass, o.score, o.ungraded);
            }
            out.push(rec);
        }
        out
    }

    #[test]
    fn skipped_graders_are_not_failures_in_the_table() {
        let text = include_str!("../../tests/data/coding/sweep-ee91125fef6e.jsonl");
        let records: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let with_node = rows_with(&records, 1.0);
        let of_1_5b = |rows: &[SweepRow]| {
            rows.iter()
                .find(|r| r.model == "qwen2.5-coder-1.5b")
                .unwrap()
                .clone()
        };
        let ran = of_1_5b(&with_node);
        assert_eq!(
            ran.executed["generation"],
            Count {
                passed: 2,
                total: 3,
                skipped: 0
            }
        );
        // Without node: the JavaScript tests leave the executed pass@1, the structural
        // graders alone decide those requests' pass.
        let rows = rows_with(&without_node(false), 1.0);
        let r = of_1_5b(&rows);
        assert_eq!(
            r.executed["generation"],
            Count {
                passed: 1,
                total: 2,
                skipped: 1
            }
        );
        assert_eq!(
            r.executed["algorithms"],
            Count {
                passed: 2,
                total: 2,
                skipped: 1
            }
        );
        let md = render(Format::Table, &rows).unwrap();
        assert!(md.contains("9/11 (82 %) (+5 skipped)"), "{md}");
        assert!(md.contains("generation 1/2 (+1 skipped)"), "{md}");
        assert_eq!(
            ran.pass["coding"],
            Count {
                passed: 16,
                total: 21,
                skipped: 0
            }
        );
        assert_eq!(
            r.pass["coding"],
            Count {
                passed: 18,
                total: 21,
                skipped: 0
            }
        );
        // JavaScript prompts whose only grader is the skipped one: not graded, neither passed
        // nor failed, and out of the quality too.
        let rows = rows_with(&without_node(true), 1.0);
        let r = of_1_5b(&rows);
        assert_eq!(
            r.pass["coding"],
            Count {
                passed: 14,
                total: 16,
                skipped: 5
            }
        );
        let graded: Vec<f64> = without_node(true)
            .iter()
            .filter_map(|rec| match rec {
                Record::Request(q) if q.cell.model == r.model && !q.ungraded => Some(q.score),
                _ => None,
            })
            .collect();
        let mean = graded.iter().sum::<f64>() / graded.len() as f64 * 100.0;
        assert!((r.quality.unwrap() - mean).abs() < 1e-9, "{r:?}");
        assert!(render(Format::Table, &rows)
            .unwrap()
            .contains("coding 14/16 (+5 skipped)"));
        // The record says so, and the guide's observation has no pass either way.
        let ungraded = without_node(true)
            .into_iter()
            .find_map(|rec| match rec {
                Record::Request(q) if q.ungraded => Some(q),
                _ => None,
            })
            .unwrap();
        let line = serde_json::to_string(&ungraded).unwrap();
        assert!(line.contains(r#""ungraded":true"#), "{line}");
        assert_eq!(crate::report::obs::from_request(&ungraded).pass, None);
        // Nothing of a category ran: it says so rather than 0 %.
        let only_js = Count {
            passed: 0,
            total: 0,
            skipped: 3,
        };
        assert_eq!(only_js.to_string(), "- (3 skipped)");
    }

    #[test]
    fn the_markdown_table_keeps_the_notes_under_the_table() {
        let records = short_with_failure(60_000.0, FailureKind::Reset);
        let rows = rows_with(&records, 1.0);
        let table = render(Format::Table, &rows).unwrap();
        let md = render(Format::Md, &rows).unwrap();
        let note = "(busy!) 7 request(s) ran while other processes kept the machine busy";
        assert!(table.contains(note), "{table}");
        assert!(md.contains(&format!("```text\n{note}")), "{md}");
        assert!(
            md.contains("* re-quantized from an already quantized file"),
            "{md}"
        );
        assert!(md.starts_with("| "), "{md}");
    }

    #[test]
    fn an_error_is_not_a_latency_but_a_time_limit_is() {
        let reset = short_with_failure(60_000.0, FailureKind::Reset);
        let error = rows_with(&reset, 1.0);
        assert_eq!(error[0].short_e2e_p99_ms, Some(1000.0));
        // Its first token, however early, is no TTFT either.
        assert_eq!(error[0].short_ttft_p50_ms, Some(100.0));
        assert_eq!(error[0].short_ttft_p99_ms, Some(100.0));
        let Some(Record::Request(r)) = reset.last() else {
            unreachable!()
        };
        assert!(crate::report::obs::from_request(r).ttft_ms.is_empty());
        assert_eq!(error[0].failed_requests, 1);
        let limited = short_with_failure(30_000.0, FailureKind::TimeLimit);
        let slow = rows_with(&limited, 1.0);
        assert!(slow[0].short_e2e_p99_ms.unwrap() > 20_000.0);
        let Some(Record::Request(r)) = limited.last() else {
            unreachable!()
        };
        assert_eq!(crate::report::obs::from_request(r).ttft_ms, [1.0]);
        // A native request that failed (a prompt that does not fit) records no kind, only its
        // stop: it is no latency either, neither in the table nor in the guide.
        let mut native = short_with_failure(900_000.0, FailureKind::Other);
        if let Some(Record::Request(r)) = native.last_mut() {
            (r.error_kind, r.stop_reason) = (None, crate::measure::StopReason::Error);
        }
        let rows = rows_with(&native, 1.0);
        assert_eq!(rows[0].short_e2e_p99_ms, Some(1000.0), "{rows:?}");
        let Some(Record::Request(r)) = native.last() else {
            unreachable!()
        };
        assert!(crate::report::obs::from_request(r).e2e_ms.is_empty());
    }
}
