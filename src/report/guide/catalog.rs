//! The guide's catalogue rows: every published architecture of runner's catalogue in the
//! common quantizations, on every chip a prediction can be made for, with the memory it needs,
//! whether it fits, predicted decode and prompt rates, TTFT, and the basis of each number.

use super::calib::{self, Model, RefRow, Work};
use super::local;
use crate::engine::quant::{self, QuantType};
use crate::engine::synth::{self, Sizes};
use crate::hw::chips::{Chip, ChipKind};
use crate::models::catalogue::{Arch, Family, CATALOGUE};
use crate::report::GIB;
use serde::Serialize;

/// Quantizations the guide covers; gpt-oss ships its experts in MXFP4 and gets that alone.
pub const QUANTS: [&str; 5] = ["q4_0", "q4_k_m", "q5_k_m", "q6_k", "q8_0"];

/// The context the memory figures are for, and the prompt TTFT is predicted for.
#[derive(Debug, Clone, Copy)]
pub struct Assumptions {
    pub context: u64,
    pub prompt: u64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            context: 8192,
            prompt: 512,
        }
    }
}

/// One catalogue entry in one quantization, its sizes from llama.cpp's quantizer.
#[derive(Debug, Clone)]
pub struct Sized {
    pub arch: &'static Arch,
    pub quant: &'static QuantType,
    pub sizes: Sizes,
    /// Parameters: all, and those a token uses.
    pub params: (u64, u64),
}

impl Sized {
    pub fn work(&self) -> Work {
        Work {
            bytes_per_token: self.sizes.per_token as f64,
            flops_per_token: 2.0 * self.params.1 as f64,
            moe: self.arch.experts > 0,
        }
    }

    /// Weights, KV cache and compute buffers (bytes) at `context` tokens (at most the model's
    /// own context length). The compute buffers
    /// are an allowance: llama.cpp's logits for a 512-token batch plus 256 MiB.
    pub fn memory(&self, context: u64) -> (u64, u64, u64) {
        let compute = 4 * 512 * self.arch.vocab + (256 << 20);
        let context = context.min(self.arch.context);
        (self.sizes.weights, self.arch.kv_bytes(context), compute)
    }
}

/// Every catalogue entry in every covered quantization (llama.cpp's dry-run type choice: a
/// fraction of a second each; nothing is generated).
pub fn sized_catalogue() -> Result<Vec<Sized>, String> {
    crate::engine::init(false).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let mut out = Vec::new();
    for arch in CATALOGUE.iter() {
        let quants: Vec<&'static QuantType> = if arch.family == Family::GptOss {
            vec![&quant::MXFP4_MOE]
        } else {
            QUANTS.iter().filter_map(|q| quant::parse(q).ok()).collect()
        };
        for q in quants {
            let sizes = synth::sizes(arch, q, dir.path()).map_err(|e| e.to_string())?;
            out.push(Sized {
                arch,
                quant: q,
                sizes,
                params: arch.params(arch.layers),
            });
        }
    }
    Ok(out)
}

/// The work of a reference row: exact sizes when it names a catalogue entry in a covered
/// quantization, else its own columns.
pub fn work_of(sized: &[Sized]) -> impl Fn(&RefRow) -> Option<Work> + '_ {
    move |r: &RefRow| {
        sized
            .iter()
            .find(|s| s.arch.name == r.catalogue && same_quant(s.quant, &r.quant))
            .map(Sized::work)
            .or_else(|| calib::work_from_columns(r))
    }
}

fn same_quant(q: &QuantType, name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    q.name == n || (q.name == "mxfp4_moe" && n == "mxfp4")
}

/// Memory a machine's accelerator can use for a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usable {
    pub bytes: u64,
    /// Apple silicon: the GPU's default share of unified memory.
    pub apple_share: Option<f64>,
}

/// Memory usable by llama.cpp on `chip` with `memory` bytes (RAM, or the GPU's own memory):
/// on Apple silicon macOS lets the GPU wire about two thirds of unified memory up to 36 GB
/// and three quarters above (Metal's `recommendedMaxWorkingSetSize`; `sudo sysctl
/// iogpu.wired_limit_mb` raises it); elsewhere all of it.
pub fn usable(chip: &Chip, memory: u64) -> Usable {
    let share = if memory <= 36 << 30 { 2.0 / 3.0 } else { 0.75 };
    let apple_share = chip.name.starts_with("Apple M").then_some(share);
    Usable {
        bytes: apple_share.map_or(memory, |s| (memory as f64 * s) as u64),
        apple_share,
    }
}

/// A discrete accelerator's own memory, when the chip table states it ("HBM3, 80 GB").
pub fn device_memory(chip: &Chip) -> Option<u64> {
    if chip.kind != ChipKind::Gpu {
        return None;
    }
    let words: Vec<&str> = chip.memory.split([' ', ',']).collect();
    let gb = words
        .windows(2)
        .find_map(|w| (w[1] == "GB").then(|| w[0].parse::<f64>().ok())?)?;
    Some((gb * GIB) as u64)
}

crate::util::names::named_enum! {
    /// Whether a model fits, in every table of the guide: `yes` with 10 % of the usable memory
    /// to spare, `tight` within it, `no` beyond, `?` when the need or the memory is not known.
    #[derive(Default)]
    pub enum Fit {
        Yes = "yes",
        Tight = "tight",
        No = "no",
        #[default]
        Unknown = "?",
    }
}

impl Fit {
    /// The share of the usable memory a model may take and still fit with room to spare.
    pub const SPARE: f64 = 0.9;

    pub fn of(needed: Option<u64>, usable: Option<u64>) -> Fit {
        match (needed, usable) {
            (Some(n), Some(u)) if (n as f64) <= Self::SPARE * u as f64 => Fit::Yes,
            (Some(n), Some(u)) if n <= u => Fit::Tight,
            (Some(_), Some(_)) => Fit::No,
            _ => Fit::Unknown,
        }
    }

    pub fn fits(self) -> bool {
        matches!(self, Fit::Yes | Fit::Tight)
    }
}

/// How much a row's decode figure can be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Measured at full depth on this machine (a synthetic model of the entry).
    MeasuredHere,
    /// Extrapolated to full depth from layer-scaled runs on this machine.
    ExtrapolatedHere,
    /// Published by others with llama-bench for this chip, model and quantization.
    Community,
    /// Predicted by the fitted model.
    Predicted,
    /// No fit for this chip's backend.
    #[default]
    NoBasis,
}

impl Confidence {
    pub fn label(self) -> &'static str {
        match self {
            Confidence::MeasuredHere => "measured here",
            Confidence::ExtrapolatedHere => "extrapolated here",
            Confidence::Community => "measured by the community",
            Confidence::Predicted => "predicted",
            Confidence::NoBasis => "no basis",
        }
    }
}

/// One (chip, model, quantization) of the guide. Sizes in GiB, rates in tokens/s, TTFT in ms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatalogueRow {
    pub chip: String,
    pub backend: String,
    pub model: String,
    /// The catalogue entry (`runner models synth` name).
    pub entry: String,
    pub moe: bool,
    pub quant: String,
    pub params_b: f64,
    pub active_params_b: f64,
    pub weights_gib: f64,
    pub kv_gib: f64,
    pub compute_gib: f64,
    pub memory_needed_gib: f64,
    /// Memory llama.cpp can use on this machine, when known.
    pub usable_gib: Option<f64>,
    pub fits: Fit,
    pub decode_tps: Option<f64>,
    pub prompt_tps: Option<f64>,
    /// Prompt of the stated length, then the first token.
    pub ttft_ms: Option<f64>,
    pub confidence: Confidence,
    pub basis: String,
}

impl CatalogueRow {
    /// The row's sizes and fit, without rates: `usable` bytes of memory when known.
    fn sized(s: &Sized, chip: &str, backend: String, usable: Option<u64>, a: Assumptions) -> Self {
        let (weights, kv, compute) = s.memory(a.context);
        let needed = weights + kv + compute;
        CatalogueRow {
            chip: chip.to_string(),
            backend,
            model: s.arch.display.to_string(),
            entry: s.arch.name.to_string(),
            moe: s.arch.experts > 0,
            quant: s.quant.name.to_string(),
            params_b: s.params.0 as f64 / 1e9,
            active_params_b: s.params.1 as f64 / 1e9,
            weights_gib: weights as f64 / GIB,
            kv_gib: kv as f64 / GIB,
            compute_gib: compute as f64 / GIB,
            memory_needed_gib: needed as f64 / GIB,
            usable_gib: usable.map(|b| b as f64 / GIB),
            fits: Fit::of(Some(needed), usable),
            ..Default::default()
        }
    }
}

/// The backend the guide predicts a chip through: the one most of its reference rows used,
/// else llama.cpp's default for the chip.
pub fn backend_for(chip: &Chip, refs: &[RefRow]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in refs
        .iter()
        .filter(|r| r.chip().map(|c| c.name) == Some(chip.name))
    {
        *counts.entry(&r.backend).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(b, n)| (*n, std::cmp::Reverse(*b)))
        .map(|(b, _)| b.to_string())
        .unwrap_or_else(|| calib::default_backend(chip).to_string())
}

/// A row's decode rate, how far to trust it and its basis: what is `known` of it (published,
/// measured or extrapolated; with the prediction beside it, of `digits` decimals), else the
/// prediction, else nothing and the words `none`.
fn decode_basis(
    known: Option<(Option<f64>, Confidence, String)>,
    predicted: Option<(f64, String)>,
    digits: usize,
    none: String,
) -> (Option<f64>, Confidence, String) {
    match (known, predicted) {
        (Some((tps, confidence, why)), Some((p, _))) => {
            (tps, confidence, format!("{why}; predicted {p:.digits$}"))
        }
        (Some(known), None) => known,
        (None, Some((tps, why))) => (Some(tps), Confidence::Predicted, why),
        (None, None) => (None, Confidence::NoBasis, none),
    }
}

/// The row of `s` on `chip` with `memory` bytes (when known).
pub fn row(
    s: &Sized,
    chip: &Chip,
    memory: Option<u64>,
    model: &Model,
    refs: &[RefRow],
    a: Assumptions,
) -> CatalogueRow {
    let backend = backend_for(chip, refs);
    let work = s.work();
    let usable = memory
        .or_else(|| device_memory(chip))
        .map(|m| usable(chip, m));
    let prompt = model.prompt(chip, &backend, None, &work);
    // The community's row for this chip, model and type; of several, the top configuration's.
    let published = refs
        .iter()
        .filter(|r| {
            r.catalogue == s.arch.name
                && same_quant(s.quant, &r.quant)
                && r.backend == backend
                && r.chip().map(|c| c.name) == Some(chip.name)
                && r.tg_tps.is_some()
        })
        .max_by_key(|r| r.gpu_cores().unwrap_or(0));
    let known = published.map(|r| {
        let why = format!(
            "published {} {}: {} ({})",
            r.test_tg,
            r.tg_tps.unwrap_or_default(),
            r.source,
            r.url
        );
        (r.tg_tps, Confidence::Community, why)
    });
    let none = format!("no published {backend} rows to fit decode from");
    let decode = model.decode(chip, &backend, &work);
    let (decode_tps, confidence, mut basis) = decode_basis(known, decode, 1, none);
    let published_pp = published.and_then(|r| Some((r.pp_tps?, &r.test_pp)));
    let prompt_tps = published_pp.map(|p| p.0).or(prompt.as_ref().map(|p| p.0));
    basis.push_str(&match (published_pp, &prompt) {
        (Some((pp, test)), _) => format!("; prompt: published {test} {pp}"),
        (None, Some((_, why))) => format!("; prompt: {why}"),
        (None, None) => "; prompt: no compute figure for this chip".into(),
    });
    let ttft_ms = prompt_tps
        .zip(decode_tps)
        .map(|(pp, tg)| (a.prompt as f64 / pp + 1.0 / tg) * 1000.0);
    CatalogueRow {
        decode_tps,
        prompt_tps,
        ttft_ms,
        confidence,
        basis,
        ..CatalogueRow::sized(s, chip.name, backend, usable.map(|u| u.bytes), a)
    }
}

/// The row of `s` on a machine with records, from its own decodes.
pub fn local_row(s: &Sized, m: &local::Local, a: Assumptions) -> CatalogueRow {
    let work = s.work();
    let known = m
        .known
        .iter()
        .find(|k| k.0 == s.arch.name && k.1 == s.quant.name);
    let known = known.map(|(_, _, tps, extrapolated, why)| {
        let confidence = match extrapolated {
            true => Confidence::ExtrapolatedHere,
            false => Confidence::MeasuredHere,
        };
        (Some(*tps), confidence, why.clone())
    });
    let none = match m.declines(&work) {
        true => "no MoE decode measured here to fit MoE models to",
        false => m
            .unfitted_because()
            .unwrap_or("too few decodes measured here to fit"),
    };
    let none = none.to_string();
    let (decode_tps, confidence, mut basis) = decode_basis(known, m.decode(&work), 2, none);
    basis.push_str("; prompt: not predicted on a machine with records (no compute fit)");
    CatalogueRow {
        decode_tps,
        confidence,
        basis,
        ..CatalogueRow::sized(s, &m.label, m.backend.clone(), m.memory_bytes, a)
    }
}

/// The recommendations for a machine: the fastest row that fits, and the largest (by total
/// parameters) that fits and decodes at `interactive` tok/s or more.
pub fn recommend(
    rows: &[CatalogueRow],
    interactive: f64,
) -> (Option<&CatalogueRow>, Option<&CatalogueRow>) {
    let fit: Vec<&CatalogueRow> = rows
        .iter()
        .filter(|r| r.fits.fits() && r.decode_tps.is_some())
        .collect();
    let rate = |r: &&CatalogueRow| r.decode_tps.unwrap_or(0.0);
    let fastest = fit.iter().copied().max_by(|a, b| {
        rate(a)
            .total_cmp(&rate(b))
            .then_with(|| b.entry.cmp(&a.entry))
    });
    let largest = fit
        .iter()
        .copied()
        .filter(|r| rate(r) >= interactive)
        .max_by(|a, b| {
            a.params_b
                .total_cmp(&b.params_b)
                // The same model: the better quantization (more bytes) that still qualifies.
                .then_with(|| a.weights_gib.total_cmp(&b.weights_gib))
        });
    (fastest, largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::chips;

    #[test]
    fn a_gpu_sold_in_one_size_states_its_memory() {
        let chip = |n: &str| chips::CHIPS.iter().find(|c| c.name == n).unwrap();
        let gib = |g: u64| Some(g << 30);
        assert_eq!(device_memory(chip("NVIDIA GeForce RTX 4090")), gib(24));
        assert_eq!(device_memory(chip("NVIDIA GeForce RTX 5090")), gib(32));
        assert_eq!(device_memory(chip("NVIDIA H200")), gib(141));
        // Sold with 8 or 16 GB: the size is the buyer's to give (`--machine`).
        assert_eq!(device_memory(chip("NVIDIA GeForce RTX 5060 Ti")), None);
        // Unified memory comes in many sizes.
        assert_eq!(device_memory(chip("Apple M4 Pro")), None);
    }
}
