//! `runner check`: the regression check. Matches cells of a baseline and of current records
//! (same machine class, model, quantization, workload and settings), compares their raw
//! samples with a bootstrap interval of the median speed ratio, and says what got faster,
//! slower, stayed the same or went missing.

use super::table::{self, opt, Column};
use crate::measure::compare::{self, Better, Ratio, Verdict};
use crate::plan::ab::{self, AbOptions, AbRun};
use crate::record::Records;
use crate::record::{
    BenchRecord, BuildInfo, EngineSettings, LoadReport, MachineInfo, RequestRecord,
};
use crate::report::median;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What identifies one compared series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// CPU, architecture and logical cores: runs are only compared on the same class.
    pub machine: String,
    /// Model and quantization.
    pub cell: String,
    /// Bench test (`pp512+tg128`) or sweep scenario.
    pub workload: String,
    pub settings: String,
    pub metric: &'static str,
}

/// One sample: an id that pairs it across runs (a sweep's prompt id), its value, and whether
/// other processes kept the machine busy while it was measured.
type Sample = (Option<String>, f64, bool);
type Samples = Vec<Sample>;

/// One line of the check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    #[serde(flatten)]
    pub key: SeriesKey,
    pub better: Better,
    pub baseline_median: Option<f64>,
    pub current_median: Option<f64>,
    /// Above 1: the current run is faster. With its 95 % bootstrap interval.
    pub ratio: Option<Ratio>,
    pub verdict: Verdict,
}

/// The whole check.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub tolerance: f64,
    pub rows: Vec<CheckRow>,
    /// Baseline series of machines that no current record ran on (not compared).
    pub other_machines: usize,
    /// Current series (machine, cell, workload, settings) whose every request failed, or whose
    /// bench records hold no samples: a run that measured nothing is a failure of the check,
    /// not a series gone missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub all_failed: Vec<String>,
    /// The A/B check's two builds and rounds (`runner check --ab`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ab: Option<AbSummary>,
    /// The machine classes of the baseline's series (those that measured nothing too) and of
    /// the current records.
    #[serde(skip)]
    pub machines: (BTreeSet<String>, BTreeSet<String>),
}

/// What the A/B check ran: each side's binary and build, the rounds kept and dropped.
#[derive(Debug, Serialize)]
pub struct AbSummary {
    pub base: AbSide,
    pub candidate: AbSide,
    pub rounds: u32,
    /// The rounds both sides completed, paired in the comparison.
    pub paired_rounds: Vec<u32>,
    /// One line per dropped round, e.g. `round 3 dropped: candidate exited 101`.
    pub dropped: Vec<String>,
    /// The directory holding every side's records and output.
    pub out: String,
}

/// One side of the A/B check.
#[derive(Debug, Serialize)]
pub struct AbSide {
    pub binary: String,
    /// From its records: runner version, llama.cpp bindings, ggml version and commit,
    /// devices and CPU features.
    pub build: String,
}

impl CheckReport {
    pub fn count(&self, v: Verdict) -> usize {
        self.rows.iter().filter(|r| r.verdict == v).count()
    }

    /// A series is significantly slower, or every request of a current series failed.
    pub fn regressed(&self) -> bool {
        self.count(Verdict::Slower) > 0 || !self.all_failed.is_empty()
    }

    /// Why nothing was compared although the baseline holds series: no series of the current
    /// records is in it. A check that compares nothing must not pass as one without slowdowns.
    pub fn nothing_compared(&self) -> Option<String> {
        let one_sided = |r: &CheckRow| matches!(r.verdict, Verdict::New | Verdict::Missing);
        let (base, cur) = &self.machines;
        if self.ab.is_some() || base.is_empty() || !self.rows.iter().all(one_sided) {
            return None;
        }
        let list = |m: &BTreeSet<String>| {
            let names: Vec<&str> = m.iter().map(|s| s.as_str()).collect();
            table::text_cell(&names.join("; "))
        };
        Some(match base.is_disjoint(cur) {
            true => format!(
                "the baseline ran on {} and the current records on {}: another CPU, thread \
                 count or accelerator list is another machine class",
                list(base),
                list(cur)
            ),
            false => "no series of the current records is in the baseline (another model, \
                      quantization, workload or settings)"
                .into(),
        })
    }
}

/// How strict the check is.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Relative slowdown tolerated (0.05 for 5 %).
    pub tolerance: f64,
    /// Other load, in busy cores, above which a sample counts as measured on a busy machine.
    pub busy_threshold: f64,
}

/// Compares the current records against the baseline.
pub fn check(baseline: &Records, current: &Records, opts: &CheckOptions) -> CheckReport {
    let base = series(baseline, opts.busy_threshold);
    let cur = series(current, opts.busy_threshold);
    let all_failed = all_failed(current);
    // Every key of `cur` comes from the same records by the same class.
    let machines: BTreeSet<String> = (current.requests.iter())
        .map(|q| machine_class(&q.info.machine, &q.info.build))
        .chain((current.bench.iter()).map(|r| machine_class(&r.machine, &r.build)))
        .collect();

    let keys: BTreeSet<&SeriesKey> = base.keys().chain(cur.keys()).collect();
    // A side that ran a series and measured nothing has too few samples, not none.
    let (base_nothing, cur_nothing) = (measured_nothing(baseline), measured_nothing(current));
    // The baseline's machines: of its series, those that measured nothing too.
    let base_machines = (base.keys().chain(base_nothing.keys()))
        .map(|k| k.machine.clone())
        .collect();
    let nothing = Samples::new();
    let mut rows = Vec::new();
    let mut other_machines = 0;
    for key in keys {
        let (b, c) = (
            side(&base, &base_nothing, &nothing, key),
            side(&cur, &cur_nothing, &nothing, key),
        );
        if c.is_none() && !machines.contains(&key.machine) {
            other_machines += 1;
            continue;
        }
        rows.push(row(key, b, c, opts.tolerance, compare::MIN_SAMPLES));
    }
    CheckReport {
        tolerance: opts.tolerance,
        rows,
        other_machines,
        all_failed,
        ab: None,
        machines: (base_machines, machines),
    }
}

/// One side's samples of `key`: its series, or none at all where it ran the series (`ran`
/// holds it without its metric) and measured nothing.
fn side<'a>(
    series: &'a BTreeMap<SeriesKey, Samples>,
    ran: &BTreeMap<SeriesKey, Option<usize>>,
    nothing: &'a Samples,
    key: &SeriesKey,
) -> Option<&'a Samples> {
    let whole = SeriesKey {
        metric: "",
        ..key.clone()
    };
    series
        .get(key)
        .or_else(|| ran.contains_key(&whole).then_some(nothing))
}

/// The series (without their metric) that ran and measured nothing: of requests, those whose
/// every request failed, with how many failed; of bench tests, those whose records hold no
/// samples, with `None`.
fn measured_nothing(records: &Records) -> BTreeMap<SeriesKey, Option<usize>> {
    let mut requests: BTreeMap<SeriesKey, (usize, usize)> = BTreeMap::new();
    for q in &records.requests {
        let e = requests.entry(request_key(q, "")).or_default();
        *(if q.failed { &mut e.1 } else { &mut e.0 }) += 1;
    }
    let mut samples: BTreeMap<SeriesKey, usize> = BTreeMap::new();
    for r in &records.bench {
        *samples.entry(bench_key(r, "")).or_default() += r.samples.len();
    }
    let failed = (requests.into_iter()).filter(|(_, (ok, _))| *ok == 0);
    let empty = (samples.into_iter()).filter(|(_, n)| *n == 0);
    (failed.map(|(k, (_, n))| (k, Some(n))))
        .chain(empty.map(|(k, _)| (k, None)))
        .collect()
}

/// The series of `records` (machine, cell, workload and settings) that measured nothing: of
/// requests, those whose every request failed, named `machine: cell workload settings (n
/// requests)`; of bench tests, those whose records hold no samples, named `... (no samples)`.
pub fn all_failed(records: &Records) -> Vec<String> {
    let mut named: Vec<_> = (measured_nothing(records).into_iter())
        .map(|(k, failed)| {
            let name = format!("{}: {} {} {}", k.machine, k.cell, k.workload, k.settings);
            (failed.is_none(), name, failed)
        })
        .collect();
    named.sort();
    (named.into_iter())
        .map(|(_, name, failed)| match failed {
            Some(n) => format!("{name} ({n} requests)"),
            None => format!("{name} (no samples)"),
        })
        .collect()
}

/// The A/B check (`runner check --ab`): two builds run side by side in rounds on this machine.
/// Each sample is tagged with its round, so each series pairs round with round: the median of
/// the per-round ratios of the two sides' medians, with its bootstrap interval, and the same
/// verdicts as [`check`]. Only the rounds of `run.kept` are compared.
pub fn check_ab(opts: &AbOptions, run: &AbRun, check: &CheckOptions) -> CheckReport {
    let mut base: BTreeMap<SeriesKey, Samples> = BTreeMap::new();
    let mut cur = BTreeMap::new();
    for r in &run.kept {
        for (side, into) in [(&r.base, &mut base), (&r.candidate, &mut cur)] {
            for (k, samples) in series(side, check.busy_threshold) {
                let tagged = samples
                    .into_iter()
                    .map(|(_, v, busy)| (Some(r.round.to_string()), v, busy));
                into.entry(k).or_default().extend(tagged);
            }
        }
    }
    align_settings(&mut base, &mut cur);
    let keys: BTreeSet<&SeriesKey> = base.keys().chain(cur.keys()).collect();
    let rows = keys
        .into_iter()
        .map(|k| row(k, base.get(k), cur.get(k), check.tolerance, ab::MIN_ROUNDS))
        .collect();
    let side = |binary: &std::path::Path, records: Option<&Records>| AbSide {
        binary: binary.display().to_string(),
        build: records.map_or_else(|| "no records".into(), build_line),
    };
    let first = run.kept.first();
    CheckReport {
        tolerance: check.tolerance,
        rows,
        other_machines: 0,
        all_failed: Vec::new(),
        machines: Default::default(),
        ab: Some(AbSummary {
            base: side(&opts.base, first.map(|r| &r.base)),
            candidate: side(&opts.candidate, first.map(|r| &r.candidate)),
            rounds: opts.rounds,
            paired_rounds: run.kept.iter().map(|r| r.round).collect(),
            dropped: run.dropped.clone(),
            out: opts.out.display().to_string(),
        }),
    }
}

/// Series whose settings or workload differ between the sides (one side given other flags, or
/// a build with other defaults) still pair when, for their model and metric, each side has
/// exactly one series the other lacks: they then read `base → what the candidate changed`.
fn align_settings(base: &mut BTreeMap<SeriesKey, Samples>, cur: &mut BTreeMap<SeriesKey, Samples>) {
    type Loose = (String, &'static str);
    let unmatched = |a: &BTreeMap<SeriesKey, Samples>, b: &BTreeMap<SeriesKey, Samples>| {
        let mut m: BTreeMap<Loose, Vec<SeriesKey>> = BTreeMap::new();
        for k in a.keys().filter(|k| !b.contains_key(*k)) {
            m.entry((k.cell.clone(), k.metric))
                .or_default()
                .push(k.clone());
        }
        m
    };
    let (only_base, only_cur) = (unmatched(base, cur), unmatched(cur, base));
    for (loose, bk) in only_base {
        let Some(ck) = only_cur.get(&loose) else {
            continue;
        };
        let ([bk], [ck]) = (bk.as_slice(), ck.as_slice()) else {
            continue;
        };
        let change = |b: &str, c: &str| match b == c {
            true => b.to_string(),
            false => settings_change(b, c),
        };
        let merged = SeriesKey {
            workload: change(&bk.workload, &ck.workload),
            settings: change(&bk.settings, &ck.settings),
            ..bk.clone()
        };
        if let (Some(b), Some(c)) = (base.remove(bk), cur.remove(ck)) {
            base.insert(merged.clone(), b);
            cur.insert(merged, c);
        }
    }
}

/// `base → the candidate's settings that differ`.
fn settings_change(base: &str, candidate: &str) -> String {
    let b: Vec<&str> = base.split(' ').collect();
    let changed: Vec<&str> = candidate.split(' ').filter(|t| !b.contains(t)).collect();
    format!("{base} → {}", changed.join(" "))
}

/// Which build wrote the records: runner's version, the llama.cpp bindings, ggml's version
/// (and commit, when known), its devices and CPU features.
pub fn build_line(records: &Records) -> String {
    let Some(r) = records.bench.first() else {
        return "no records".into();
    };
    let b = &r.build;
    let mut s = format!(
        "runner {}, {}, ggml {}",
        r.provenance.runner_version, b.llama_cpp, b.ggml_version
    );
    if !b.ggml_commit.is_empty() && b.ggml_commit != "unknown" {
        s.push_str(&format!(" ({})", b.ggml_commit));
    }
    let mut devices: Vec<&str> = b.devices.iter().map(|d| d.backend.as_str()).collect();
    devices.dedup();
    if !devices.is_empty() {
        s.push_str(&format!(", devices {}", devices.join(" ")));
    }
    if !b.features.is_empty() {
        s.push_str(&format!(", features {}", b.features.join(" ")));
    }
    s
}

fn row(
    key: &SeriesKey,
    b: Option<&Samples>,
    c: Option<&Samples>,
    tolerance: f64,
    min_pairs: usize,
) -> CheckRow {
    let better = better(key.metric);
    let med = |s: Option<&Samples>| s.and_then(|s| median(s.iter().map(|x| x.1)));
    let ratio = match (b, c) {
        (Some(b), Some(c)) => compare_samples(b, c, better, min_pairs),
        _ => None,
    };
    let verdict = match (b, c, &ratio) {
        (None, _, _) => Verdict::New,
        (_, None, _) => Verdict::Missing,
        (_, _, None) => Verdict::Insufficient,
        (Some(_), Some(c), Some(r)) => match r.verdict(tolerance) {
            // Only the current side's load excuses a slowdown: a busy baseline is slower than
            // the machine, which understates a slowdown measured against it.
            Verdict::Slower if c.iter().any(|s| s.2) => Verdict::SlowerBusy,
            v => v,
        },
    };
    CheckRow {
        key: key.clone(),
        better,
        baseline_median: med(b),
        current_median: med(c),
        ratio,
        verdict,
    }
}

/// Paired by id when every sample has one (the median of repeated ids), otherwise unpaired.
fn compare_samples(b: &Samples, c: &Samples, better: Better, min_pairs: usize) -> Option<Ratio> {
    let by_id = |s: &Samples| -> Option<BTreeMap<String, f64>> {
        let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (id, v, _) in s {
            m.entry(id.clone()?).or_default().push(*v);
        }
        Some(
            m.into_iter()
                .filter_map(|(k, v)| Some((k, median(v)?)))
                .collect(),
        )
    };
    if let (Some(bm), Some(cm)) = (by_id(b), by_id(c)) {
        let pairs: Vec<(f64, f64)> = bm
            .iter()
            .filter_map(|(id, bv)| Some((*bv, *cm.get(id)?)))
            .collect();
        return compare::paired_at_least(&pairs, better, min_pairs);
    }
    let vals = |s: &Samples| s.iter().map(|x| x.1).collect::<Vec<_>>();
    compare::unpaired(&vals(b), &vals(c), better)
}

fn better(metric: &str) -> Better {
    match metric.ends_with("_tps") {
        true => Better::Higher,
        false => Better::Lower,
    }
}

/// The machine class: runs on different hardware are never compared. The CPU, and the
/// accelerators llama.cpp saw (a GPU host and a CPU-only one with the same CPU differ).
pub fn machine_class(m: &MachineInfo, build: &BuildInfo) -> String {
    // BLAS is a library llama.cpp lists as a device, not hardware.
    let gpus: Vec<String> = (crate::report::obs::Fingerprint::of(m, build).accelerators)
        .into_iter()
        .filter(|a| !a.starts_with("BLAS"))
        .collect();
    let cpu = format!("{} ({}, {} threads)", m.cpu, m.arch, m.logical_cores);
    match gpus.is_empty() {
        true => cpu,
        false => format!("{cpu} + {}", gpus.join(" + ")),
    }
}

fn settings(e: &EngineSettings, with_batch: bool) -> String {
    let mut s = format!(
        "t{} fa:{} kv:{}/{} ngl:{}",
        e.threads, e.flash_attn, e.type_k, e.type_v, e.n_gpu_layers
    );
    if with_batch {
        s.push_str(&format!(" b{}/{} ctx{}", e.n_batch, e.n_ubatch, e.n_ctx));
    }
    s
}

/// Every series of the records, by key.
fn series(records: &Records, busy_threshold: f64) -> BTreeMap<SeriesKey, Samples> {
    let busy = |l: &LoadReport| l.busy_above(busy_threshold);
    let mut out: BTreeMap<SeriesKey, Samples> = BTreeMap::new();
    for r in &records.bench {
        bench_series(r, busy(&r.load), &mut out);
    }
    for q in &records.requests {
        request_series(q, busy(&q.load), &mut out);
    }
    out
}

fn bench_series(r: &BenchRecord, busy: bool, out: &mut BTreeMap<SeriesKey, Samples>) {
    for s in &r.samples {
        let metrics = [
            ("prompt_tps", s.prompt_tps),
            ("gen_tps", s.gen_tps),
            ("ttft_ms", s.ttft_ms),
        ];
        for (metric, v) in metrics.into_iter().filter_map(|(m, v)| Some((m, v?))) {
            out.entry(bench_key(r, metric))
                .or_default()
                .push((None, v, busy));
        }
    }
}

/// The series of a bench record's `metric`.
fn bench_key(r: &BenchRecord, metric: &'static str) -> SeriesKey {
    SeriesKey {
        machine: machine_class(&r.machine, &r.build),
        cell: format!(
            "{} {}",
            r.model.file_name.trim_end_matches(".gguf"),
            r.model.file_type.as_deref().unwrap_or("?")
        ),
        workload: r.test.name.clone(),
        settings: settings(&r.engine, true),
        metric,
    }
}

fn request_series(q: &RequestRecord, busy: bool, out: &mut BTreeMap<SeriesKey, Samples>) {
    if q.failed {
        return;
    }
    let long = q.scenario_kind == crate::scenario::ScenarioKind::LongForm;
    let metrics = [
        ("ttft_ms", q.ttft_ms),
        ("e2e_ms", (!long).then_some(q.e2e_ms)),
        ("decode_tps", q.decode_tps.filter(|_| long)),
    ];
    for (metric, v) in metrics.into_iter().filter_map(|(m, v)| Some((m, v?))) {
        let id = Some(q.prompt_id.clone());
        out.entry(request_key(q, metric))
            .or_default()
            .push((id, v, busy));
    }
}

/// The series of a request's `metric`. A load run's request names its traffic level with its
/// scenario (`short-response c=8`): levels of other concurrency or rate are other series, never
/// pooled or compared with each other.
fn request_key(q: &RequestRecord, metric: &'static str) -> SeriesKey {
    SeriesKey {
        machine: machine_class(&q.info.machine, &q.info.build),
        cell: format!("{} {}", q.cell.model, q.cell.quant),
        workload: match &q.traffic {
            Some(t) => format!("{} {}", q.scenario, t.shape.label()),
            None => q.scenario.clone(),
        },
        settings: settings(&q.info.engine, false),
        metric,
    }
}

/// The check as a readable table, one block per machine, and a summary line.
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    if let Some(ab) = &report.ab {
        out.push_str(&render_ab_head(ab));
    }
    let machines: BTreeSet<&str> = report.rows.iter().map(|r| r.key.machine.as_str()).collect();
    for m in machines {
        out.push_str(&format!("machine: {}\n", table::text_cell(m)));
        let rows = report.rows.iter().filter(|r| r.key.machine == m);
        out.push_str(&table::aligned(COLUMNS, rows));
        out.push('\n');
    }
    let n = |v| report.count(v);
    out.push_str(&format!(
        "{} slower, {} slower on a busy machine, {} faster, {} unchanged, {} missing, {} new, {} with too few samples (tolerance {:.1}%, 95% bootstrap intervals)\n",
        n(Verdict::Slower),
        n(Verdict::SlowerBusy),
        n(Verdict::Faster),
        n(Verdict::Unchanged),
        n(Verdict::Missing),
        n(Verdict::New),
        n(Verdict::Insufficient),
        report.tolerance * 100.0
    ));
    if report.other_machines > 0 {
        out.push_str(&format!(
            "{} baseline series ran on machines absent from the current records: not compared\n",
            report.other_machines
        ));
    }
    for s in &report.all_failed {
        out.push_str(&format!(
            "measured nothing: {}: a failure\n",
            table::text_cell(s)
        ));
    }
    out
}

/// Which build each side was, the rounds paired and dropped.
fn render_ab_head(ab: &AbSummary) -> String {
    let mut out = format!(
        "A/B check: {} of {} rounds paired (the side that runs first alternates), records in {}\n",
        ab.paired_rounds.len(),
        ab.rounds,
        ab.out
    );
    for (name, side) in [("base", &ab.base), ("candidate", &ab.candidate)] {
        out.push_str(&format!(
            "{name:<10} {}\n{:<10} {}\n",
            side.binary, "", side.build
        ));
    }
    if ab.base.binary == ab.candidate.binary {
        out.push_str("(the same binary on both sides)\n");
    }
    for d in &ab.dropped {
        out.push_str(d);
        out.push('\n');
    }
    out.push_str("baseline = base, current = candidate; n = paired rounds\n");
    out
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", (x - 1.0) * 100.0)
}

/// A series' columns.
const COLUMNS: &[Column<CheckRow>] = &[
    Column::text("cell", |r| r.key.cell.clone()),
    Column::text("workload", |r| r.key.workload.clone()),
    Column::text("settings", |r| r.key.settings.clone()),
    Column::text("metric", |r| r.key.metric.to_string()),
    Column::number("n", |r| match &r.ratio {
        Some(x) => format!("{}{}", x.n, if x.paired { "p" } else { "" }),
        None => "-".into(),
    }),
    Column::number("baseline", |r| opt(r.baseline_median, 2)),
    Column::number("current", |r| opt(r.current_median, 2)),
    Column::number("speed", |r| {
        r.ratio.as_ref().map_or("-".into(), |x| pct(x.speed))
    }),
    Column::number("95% interval", |r| {
        r.ratio
            .as_ref()
            .map_or("-".into(), |x| format!("{} .. {}", pct(x.low), pct(x.high)))
    }),
    Column::text("verdict", |r| r.verdict.as_str().to_string()),
];

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
