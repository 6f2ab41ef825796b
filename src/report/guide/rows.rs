//! The guide's measured rows and machines: observations grouped by (machine, where the weights
//! sat, backend, model, quantization) and summarised.

use super::catalog::{self, Fit};
use crate::measure::stats::percentile;
use crate::record::BackendId;
use crate::record::Bandwidth;
use crate::report::obs::{self, Fingerprint, Obs, RowKey, Weights, Workload};
use crate::report::{median, GIB};
use serde::Serialize;
use std::collections::BTreeMap;

/// Whether a row was measured, extrapolated to full depth from measured layer-scaled runs, or
/// predicted from bandwidth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Measured,
    /// Full depth, extrapolated from layer-scaled synthetic runs measured here.
    Extrapolated,
    Predicted,
}

/// One row of the guide. Times in ms, rates in tokens/s, bandwidth in GB/s (10^9 B/s),
/// shares as fractions; the CSV has these fields as its columns, in this order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GuideRow {
    pub status: Status,
    pub machine: String,
    /// The machine's fingerprint id; empty for a machine known only by name.
    pub fingerprint: String,
    pub chip: Option<String>,
    pub memory_gib: Option<f64>,
    pub measured_peak_gbps: Option<f64>,
    pub published_peak_gbps: Option<f64>,
    pub backend: BackendId,
    /// Where a native run's weights sat (`gpu`, `split`, `cpu`); empty for other backends.
    pub weights: Option<Weights>,
    pub model: String,
    pub quant: String,
    /// A Mixture-of-Experts model.
    pub moe: bool,
    /// Long-form decode rate (median of requests), else a bench test's, else the prediction.
    pub decode_tps: Option<f64>,
    pub decode_from: String,
    pub short_ttft_p50_ms: Option<f64>,
    pub short_e2e_p99_ms: Option<f64>,
    /// Achieved GB/s over the measured and the published peak.
    pub bw_util_measured: Option<f64>,
    pub bw_util_published: Option<f64>,
    pub bytes_per_token: Option<u64>,
    /// llama.cpp's weights + KV cache + compute buffers at the context the run used.
    pub memory_needed_bytes: Option<u64>,
    pub fits: Fit,
    pub passed: Option<usize>,
    pub graded: Option<usize>,
    pub pass_rate: Option<f64>,
    /// Requests whose executed graders (the answer's code run against tests) all passed, of
    /// those that had any: pass@1.
    pub executed_passed: Option<usize>,
    pub executed_graded: Option<usize>,
    /// USD per request; 0 for local runs without a cost.
    pub cost_usd: Option<f64>,
    pub requests: usize,
    pub bench_tests: usize,
    /// Observations made while other processes kept the machine busy.
    pub busy: usize,
    /// How a predicted row was computed, and where its inputs were measured.
    pub basis: String,
}

impl GuideRow {
    /// A native row on machine `m` with nothing of it observed there (no requests, bench tests,
    /// latencies, bandwidth figures or grades, and nothing to pay): what every row starts from.
    pub fn unobserved(status: Status, m: &MachineSummary) -> GuideRow {
        GuideRow {
            status,
            machine: m.label.clone(),
            fingerprint: m.id.clone(),
            chip: m.chip.clone(),
            memory_gib: m.memory_bytes().map(|b| b as f64 / GIB),
            measured_peak_gbps: m.measured_peak_gbps,
            published_peak_gbps: m.published_peak_gbps,
            weights: Some(m.weights),
            cost_usd: Some(0.0),
            ..GuideRow::default()
        }
    }
}

/// One machine seen in the records.
#[derive(Debug, Clone)]
pub struct MachineSummary {
    pub id: String,
    pub label: String,
    pub fingerprint: Fingerprint,
    /// Where the weights of its runs sat: a machine measured both with its weights on its
    /// accelerator and on its host is two summaries.
    pub weights: Weights,
    pub chip: Option<String>,
    pub published_peak_gbps: Option<f64>,
    /// The best measured read bandwidth the records carry.
    pub measured_peak_gbps: Option<f64>,
    pub memory_present_bytes: u64,
    pub backends: Vec<String>,
    pub requests: usize,
    pub bench_tests: usize,
    /// Median of the decodes' achieved bandwidth ÷ [`MachineSummary::decode_gbps`].
    pub efficiency: Option<f64>,
    pub efficiency_n: usize,
    /// Decodes left out of the efficiency: measured on a busy machine.
    pub efficiency_busy: usize,
}

impl MachineSummary {
    /// The memory present, when a record gave it.
    pub fn memory_bytes(&self) -> Option<u64> {
        Some(self.memory_present_bytes).filter(|&b| b > 0)
    }

    /// The memory llama.cpp can use for a model here: with the weights on Apple silicon's GPU
    /// its share of the memory present, elsewhere (weights on the host included) all of it.
    pub fn usable_bytes(&self) -> Option<u64> {
        let memory = self.memory_bytes()?;
        match obs::chip_of(&self.fingerprint, self.weights) {
            Some(c) if self.weights != Weights::Cpu => Some(catalog::usable(c, memory).bytes),
            _ => Some(memory),
        }
    }

    /// The bandwidth its decodes are held against, and whose it is: the measured peak, else
    /// the published one (weights on a GPU, whose bandwidth `runner hw` does not measure).
    pub fn decode_gbps(&self) -> Option<(f64, &'static str)> {
        match (self.measured_peak_gbps, self.published_peak_gbps) {
            (Some(g), _) => Some((g, "measured here")),
            (None, Some(g)) => Some((g, "published")),
            (None, None) => None,
        }
    }
}

/// Observations grouped by row key, in key order.
pub fn group(obs: &[Obs]) -> BTreeMap<&RowKey, Vec<&Obs>> {
    let mut m: BTreeMap<&RowKey, Vec<&Obs>> = BTreeMap::new();
    for o in obs {
        m.entry(&o.key).or_default().push(o);
    }
    m
}

/// The observations a row's decode figures come from: long-form requests, else bench tests.
fn decode_set<'a>(os: &[&'a Obs]) -> (Vec<&'a Obs>, String) {
    let decodes = |w: Workload| -> (Vec<&'a Obs>, String) {
        let set: Vec<&Obs> = os
            .iter()
            .copied()
            .filter(|o| o.workload == w && o.decode_tps.is_some())
            .collect();
        let mut names: Vec<&str> = set.iter().map(|o| o.test.as_str()).collect();
        names.dedup();
        let names = names.join(" ");
        (set, names)
    };
    let (long, names) = decodes(Workload::LongForm);
    if !long.is_empty() {
        let from = format!("{names}, median of {}", long.len());
        return (long, from);
    }
    let (bench, names) = decodes(Workload::Bench);
    (bench, format!("bench {names}"))
}

/// The measured row of one key.
pub fn measured(key: &RowKey, os: &[&Obs], m: &MachineSummary) -> GuideRow {
    let (dec, decode_from) = decode_set(os);
    let rates: Vec<f64> = dec.iter().filter_map(|o| o.decode_tps).collect();
    let bw = |f: &dyn Fn(&Bandwidth) -> Option<f64>| {
        median(dec.iter().filter_map(|o| f(o.bandwidth.as_ref()?)))
    };
    let short = || os.iter().filter(|o| o.workload == Workload::ShortResponse);
    let ttft: Vec<f64> = short().flat_map(|o| o.ttft_ms.iter().copied()).collect();
    let e2e: Vec<f64> = short().flat_map(|o| o.e2e_ms.iter().copied()).collect();
    let graded: Vec<bool> = os.iter().filter_map(|o| o.pass).collect();
    let executed: Vec<bool> = os.iter().filter_map(|o| o.executed).collect();
    let passed = graded.iter().filter(|&&p| p).count();
    let costs: Vec<f64> = os.iter().filter_map(|o| o.cost_usd).collect();
    let needed = os.iter().filter_map(|o| o.memory_needed_bytes).max();
    let present = os.iter().map(|o| o.memory_present_bytes).max();
    GuideRow {
        memory_gib: present.map(|b| b as f64 / GIB),
        backend: key.backend.clone(),
        weights: key.weights,
        model: key.model.clone(),
        quant: key.quant.clone(),
        moe: os.iter().any(|o| o.experts.is_some()),
        decode_tps: median(rates.iter().copied()),
        decode_from: if rates.is_empty() {
            String::new()
        } else {
            decode_from
        },
        short_ttft_p50_ms: percentile(&ttft, 0.5),
        short_e2e_p99_ms: percentile(&e2e, 0.99),
        bw_util_measured: bw(&|b| b.utilisation_measured),
        bw_util_published: bw(&|b| b.utilisation_published),
        bytes_per_token: bw(&|b| Some(b.bytes_per_token as f64)).map(|v| v.round() as u64),
        memory_needed_bytes: needed,
        fits: Fit::of(needed, m.usable_bytes()),
        passed: (!graded.is_empty()).then_some(passed),
        graded: (!graded.is_empty()).then_some(graded.len()),
        pass_rate: (!graded.is_empty()).then(|| passed as f64 / graded.len() as f64),
        executed_passed: (!executed.is_empty()).then(|| executed.iter().filter(|&&p| p).count()),
        executed_graded: (!executed.is_empty()).then_some(executed.len()),
        cost_usd: cost_per_request(&key.backend, &costs, os.len()),
        requests: os.iter().filter(|o| o.workload != Workload::Bench).count(),
        bench_tests: os.iter().filter(|o| o.workload == Workload::Bench).count(),
        busy: os.iter().filter(|o| o.busy).count(),
        ..GuideRow::unobserved(Status::Measured, m)
    }
}

/// Mean USD per request; a local run with no recorded cost costs nothing per request. Unknown
/// where some of the `n` requests have no cost: counting them as free would understate it.
fn cost_per_request(backend: &BackendId, costs: &[f64], n: usize) -> Option<f64> {
    if costs.is_empty() {
        return backend.is_native().then_some(0.0);
    }
    if costs.len() < n {
        return None;
    }
    Some(costs.iter().sum::<f64>() / n.max(1) as f64)
}

/// Every machine in the observations, in fingerprint order, once for each place its weights
/// sat.
pub fn machines(obs: &[Obs]) -> Vec<MachineSummary> {
    let mut by: BTreeMap<(&Fingerprint, Weights), Vec<&Obs>> = BTreeMap::new();
    for o in obs {
        by.entry((&o.key.machine, o.key.site()))
            .or_default()
            .push(o);
    }
    by.into_iter()
        .map(|((f, weights), os)| {
            let chip = obs::chip_of(f, weights);
            let published = os
                .iter()
                .filter_map(|o| o.bandwidth.as_ref()?.published_peak_gbps)
                .reduce(f64::max)
                .or(chip.map(|c| c.peak_gbps));
            let measured = os
                .iter()
                .filter_map(|o| o.bandwidth.as_ref()?.measured_peak_gbps)
                .reduce(f64::max);
            // Against the peak predictions scale: the measured one, else (weights on a GPU,
            // whose bandwidth `runner hw` does not measure) the published one; decodes of a
            // busy machine left out.
            let decodes = || {
                (os.iter())
                    .filter(|o| o.decode_tps.is_some() && o.workload != Workload::ShortResponse)
            };
            let util: Vec<f64> = decodes()
                .filter(|o| !o.busy)
                .filter_map(|o| {
                    let b = o.bandwidth.as_ref()?;
                    match measured {
                        Some(_) => b.utilisation_measured,
                        None => b.utilisation_published,
                    }
                })
                .collect();
            let mut backends: Vec<String> = os.iter().map(|o| o.key.backend.to_string()).collect();
            backends.sort();
            backends.dedup();
            MachineSummary {
                id: f.id(),
                label: obs::machine_label(f, weights),
                fingerprint: f.clone(),
                weights,
                chip: chip.map(|c| c.name.to_string()),
                published_peak_gbps: published,
                measured_peak_gbps: measured,
                memory_present_bytes: os.iter().map(|o| o.memory_present_bytes).max().unwrap_or(0),
                backends,
                requests: os.iter().filter(|o| o.workload != Workload::Bench).count(),
                bench_tests: os.iter().filter(|o| o.workload == Workload::Bench).count(),
                efficiency: median(util.iter().copied()),
                efficiency_n: util.len(),
                efficiency_busy: decodes().filter(|o| o.busy).count(),
            }
        })
        .collect()
}

/// The full-depth decode rate of a synthetic model measured here at fewer layers.
pub fn extrapolated(f: &crate::report::depth::FullDepth, m: &MachineSummary) -> GuideRow {
    let layers: Vec<String> = f.layers_measured.iter().map(u32::to_string).collect();
    let residual = match f.layers_measured.len() {
        2 => "two depths: no residual".to_string(),
        _ => format!("fit residual {:.1} %", f.residual * 100.0),
    };
    GuideRow {
        // As measured rows show it: 0 GiB when no record gave the machine's memory.
        memory_gib: Some(m.memory_present_bytes as f64 / GIB),
        model: format!("{} (synthetic)", f.model),
        quant: crate::report::obs::file_quant(Some(&f.quant)),
        moe: crate::models::catalogue::arch(&f.model).is_ok_and(|a| a.experts > 0),
        decode_tps: f.tps,
        decode_from: format!("bench {}, {} of {} layers", f.test, layers.join("/"), f.full_layers),
        basis: format!(
            "extrapolated: {:.2} ms + {:.3} ms/layer × {} layers, measured at {} layers ({residual})",
            f.fixed_ms,
            f.per_layer_ms,
            f.full_layers,
            layers.join(", ")
        ),
        busy: f.busy,
        ..GuideRow::unobserved(Status::Extrapolated, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cost_is_a_mean_over_requests_that_all_have_one() {
        let api: BackendId = "openai:m".parse().unwrap();
        let native: BackendId = "native".parse().unwrap();
        assert_eq!(cost_per_request(&api, &[0.12, 0.04], 2), Some(0.08));
        assert_eq!(cost_per_request(&api, &[0.12], 4), None);
        assert_eq!(cost_per_request(&api, &[], 4), None);
        assert_eq!(cost_per_request(&native, &[], 4), Some(0.0));
    }

    #[test]
    fn fit_follows_the_stated_rule() {
        assert_eq!(Fit::of(Some(90), Some(100)), Fit::Yes);
        assert_eq!(Fit::of(Some(91), Some(100)), Fit::Tight);
        assert_eq!(Fit::of(Some(100), Some(100)), Fit::Tight);
        assert_eq!(Fit::of(Some(101), Some(100)), Fit::No);
        assert_eq!(Fit::of(None, Some(100)), Fit::Unknown);
        assert_eq!(Fit::of(Some(1), None), Fit::Unknown);
    }

    #[test]
    fn weights_on_the_host_of_apple_silicon_may_use_all_its_memory() {
        let f = Fingerprint {
            cpu: "Apple M4 Pro".into(),
            arch: "aarch64".into(),
            logical_cores: 14,
            ram_gib: 48,
            accelerators: vec!["MTL0 (Apple M4 Pro)".into()],
        };
        let m = |weights| MachineSummary {
            id: f.id(),
            label: obs::machine_label(&f, weights),
            fingerprint: f.clone(),
            weights,
            chip: None,
            published_peak_gbps: None,
            measured_peak_gbps: None,
            memory_present_bytes: 48 << 30,
            backends: Vec::new(),
            requests: 0,
            bench_tests: 0,
            efficiency: None,
            efficiency_n: 0,
            efficiency_busy: 0,
        };
        // The GPU may wire 3/4 of unified memory above 36 GB; the CPU reads all of it.
        assert_eq!(m(Weights::Gpu).usable_bytes(), Some(36 << 30));
        assert_eq!(m(Weights::Cpu).usable_bytes(), Some(48 << 30));
    }

    #[test]
    fn local_runs_cost_nothing_per_request_and_others_are_unknown() {
        assert_eq!(cost_per_request(&BackendId::native(), &[], 3), Some(0.0));
        assert_eq!(cost_per_request(&"openai:m".parse().unwrap(), &[], 3), None);
        assert_eq!(
            cost_per_request(&"openai:m".parse().unwrap(), &[0.3, 0.3], 2),
            Some(0.3)
        );
    }
}
