//! Predicted rows for (machine, model, quantization) combinations that were not measured:
//! decode is bound by memory bandwidth, so time per token ≈ bytes per token ÷ (bandwidth ×
//! efficiency) + a fixed cost, fitted to the machine's own decodes where it has some
//! ([`super::local::Local`]), else tok/s ≈ bandwidth × efficiency ÷ bytes per token; and a
//! model fits when the memory it needed elsewhere fits in the memory llama.cpp can use there.

use super::calib::Work;
use super::catalog::Fit;
use super::local::Local;
use super::rows::{GuideRow, MachineSummary, Status};
use crate::report::median;
use std::collections::{BTreeMap, BTreeSet};

/// Share of the published peak assumed for a machine with no records of its own: about what
/// llama.cpp's decode reaches with mid-size dense models on Apple silicon and GPUs. Small
/// models reach far less (fixed per-token costs dominate). `runner guide --efficiency` changes it.
pub const DEFAULT_EFFICIENCY: f64 = 0.5;

/// Bandwidth decode can use on machine `m`, and the words that say where it comes from.
fn usable_gbps(m: &MachineSummary, default_eff: f64) -> Option<(f64, String)> {
    let (peak, whose) = match (m.measured_peak_gbps, m.efficiency) {
        (Some(p), Some(_)) => (p, format!("{p:.2} GB/s measured here")),
        _ => {
            let p = m.published_peak_gbps?;
            (p, format!("{p:.0} GB/s published peak"))
        }
    };
    let (eff, n) = (m.efficiency.unwrap_or(default_eff), m.efficiency_n);
    let pct = eff * 100.0;
    let why = match (m.efficiency, m.efficiency_busy) {
        (Some(_), _) => format!("{pct:.1} % (median efficiency of {n} decodes here)"),
        (None, 0) => format!("{pct:.0} % (default efficiency: no decodes measured here)"),
        (None, busy) => format!(
            "{pct:.0} % (default efficiency: the {busy} decodes here ran on a busy machine)"
        ),
    };
    Some((peak * eff, format!("{whose} × {why}")))
}

/// What a (model, quantization) needs, from wherever it was measured.
#[derive(Debug, Clone)]
pub struct Profile {
    pub model: String,
    pub quant: String,
    pub moe: bool,
    pub bytes_per_token: u64,
    pub memory_needed_bytes: Option<u64>,
    pub passed: Option<usize>,
    pub graded: Option<usize>,
    /// Fingerprint ids of the machines it was measured on.
    pub measured_on: Vec<String>,
}

/// The profile of every native (model, quantization) measured with a bytes-per-token figure.
pub fn profiles(rows: &[GuideRow]) -> Vec<Profile> {
    let mut by: BTreeMap<(&str, &str), Vec<&GuideRow>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.status == Status::Measured && r.backend.is_native())
    {
        by.entry((&r.model, &r.quant)).or_default().push(r);
    }
    by.into_iter()
        .filter_map(|((model, quant), rs)| {
            let sum = |f: fn(&GuideRow) -> Option<usize>| {
                let v: Vec<usize> = rs.iter().filter_map(|r| f(r)).collect();
                (!v.is_empty()).then(|| v.iter().sum())
            };
            let mut on: Vec<String> = rs.iter().map(|r| r.fingerprint.clone()).collect();
            // A machine run both ways has rows under two labels, apart in label order.
            on.sort();
            on.dedup();
            Some(Profile {
                model: model.to_string(),
                quant: quant.to_string(),
                moe: rs.iter().any(|r| r.moe),
                bytes_per_token: median(rs.iter().filter_map(|r| Some(r.bytes_per_token? as f64)))?
                    .round() as u64,
                memory_needed_bytes: rs.iter().filter_map(|r| r.memory_needed_bytes).max(),
                passed: sum(|r| r.passed),
                graded: sum(|r| r.graded),
                measured_on: on,
            })
        })
        .collect()
}

/// One predicted row on machine `m`, from `local`, the fit to its own decodes, when it has one;
/// `None` when the machine has no bandwidth to predict from, or its fit declines the model.
pub fn predict(
    m: &MachineSummary,
    local: Option<&Local>,
    p: &Profile,
    default_eff: f64,
) -> Option<GuideRow> {
    if p.bytes_per_token == 0 {
        return None;
    }
    let work = Work {
        bytes_per_token: p.bytes_per_token as f64,
        flops_per_token: 0.0,
        moe: p.moe,
    };
    if local.is_some_and(|l| l.declines(&work)) {
        return None;
    }
    let on = p.measured_on.join(", ");
    let (tps, basis, from) = match local.and_then(|l| l.decode(&work)) {
        Some((tps, why)) => (
            tps,
            format!("predicted: {why} (bytes per token measured on {on})"),
            "fit to its decodes",
        ),
        None => {
            let (gbps, why) = usable_gbps(m, default_eff)?;
            let mb = p.bytes_per_token as f64 / 1e6;
            (
                gbps * 1e9 / p.bytes_per_token as f64,
                format!("predicted: {why} ÷ {mb:.1} MB/token (measured on {on})"),
                "bandwidth ÷ bytes/token",
            )
        }
    };
    Some(GuideRow {
        model: p.model.clone(),
        quant: p.quant.clone(),
        moe: p.moe,
        decode_tps: Some(tps),
        decode_from: from.into(),
        bytes_per_token: Some(p.bytes_per_token),
        memory_needed_bytes: p.memory_needed_bytes,
        fits: Fit::of(p.memory_needed_bytes, m.usable_bytes()),
        passed: p.passed,
        graded: p.graded,
        pass_rate: match (p.passed, p.graded) {
            (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
            _ => None,
        },
        basis,
        ..GuideRow::unobserved(Status::Predicted, m)
    })
}

/// Predicted rows for every machine and every profile the machine has no measured native row
/// of; `locals` are the fits of machines to their own decodes.
pub fn predictions(
    machines: &[MachineSummary],
    locals: &[Local],
    profiles: &[Profile],
    measured: &[GuideRow],
    default_eff: f64,
) -> Vec<GuideRow> {
    let done: BTreeSet<(&str, &str, &str, &str)> = measured
        .iter()
        .filter(|r| r.backend.is_native() && !r.fingerprint.is_empty())
        .map(|r| (&*r.fingerprint, &*r.machine, &*r.model, &*r.quant))
        .collect();
    let mut out = Vec::new();
    for m in machines {
        // The label names where the weights sat, which the fingerprint id does not.
        let local = locals
            .iter()
            .find(|l| l.id == m.id && l.label == m.label && l.fit.is_some());
        for p in profiles {
            let key = (&*m.id, &*m.label, &*p.model, &*p.quant);
            if !m.id.is_empty() && done.contains(&key) {
                continue;
            }
            out.extend(predict(m, local, p, default_eff));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(measured: Option<f64>, eff: Option<f64>, published: Option<f64>) -> MachineSummary {
        MachineSummary {
            id: "abcd1234".into(),
            label: "m".into(),
            fingerprint: crate::report::obs::Fingerprint {
                cpu: String::new(),
                arch: String::new(),
                logical_cores: 1,
                ram_gib: 1,
                accelerators: Vec::new(),
            },
            weights: crate::report::obs::Weights::Cpu,
            chip: None,
            published_peak_gbps: published,
            measured_peak_gbps: measured,
            memory_present_bytes: 1 << 30,
            backends: Vec::new(),
            requests: 0,
            bench_tests: 0,
            efficiency: eff,
            efficiency_n: 3,
            efficiency_busy: 0,
        }
    }

    fn profile(bpt: u64, need: u64) -> Profile {
        Profile {
            model: "m".into(),
            quant: "q8_0".into(),
            moe: false,
            bytes_per_token: bpt,
            memory_needed_bytes: Some(need),
            passed: Some(1),
            graded: Some(2),
            measured_on: vec!["ffff0000".into()],
        }
    }

    #[test]
    fn predicted_rate_is_bandwidth_times_efficiency_over_bytes() {
        let t = target(Some(10.0), Some(0.4), Some(100.0));
        let r = predict(&t, None, &profile(100_000_000, 1 << 20), 0.5).unwrap();
        // 10 GB/s × 0.4 / 0.1 GB per token = 40 tok/s: the machine's own efficiency wins.
        assert!((r.decode_tps.unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(r.status, Status::Predicted);
        assert!(r
            .basis
            .starts_with("predicted: 10.00 GB/s measured here × 40.0 %"));
        assert_eq!(r.fits, Fit::Yes);
        assert_eq!(r.pass_rate, Some(0.5));
        // No records of its own: the published peak × the default.
        let t = target(None, None, Some(100.0));
        let r = predict(&t, None, &profile(100_000_000, 2 << 30), 0.5).unwrap();
        assert!((r.decode_tps.unwrap() - 500.0).abs() < 1e-9);
        assert!(r.basis.contains("published peak × 50 % (default"));
        assert_eq!(r.fits, Fit::No);
        assert!(predict(&target(None, None, None), None, &profile(1, 1), 0.5).is_none());
        // On Apple silicon a model fits in the GPU's share of unified memory (two thirds of
        // 1 GiB), not in all of it: 700 MiB would fit the memory present.
        let mut t = target(Some(10.0), Some(0.4), Some(100.0));
        t.fingerprint.cpu = "Apple M1".into();
        t.fingerprint.logical_cores = 8;
        t.fingerprint.accelerators = vec!["MTL0 (Apple M1)".into()];
        t.weights = crate::report::obs::Weights::Gpu;
        assert_eq!(
            t.usable_bytes(),
            Some(((1u64 << 30) as f64 * 2.0 / 3.0) as u64)
        );
        let r = predict(&t, None, &profile(100_000_000, 700 << 20), 0.5).unwrap();
        assert_eq!(r.fits, Fit::No);
        assert_eq!(r.fits.as_str(), "no");
    }
}
