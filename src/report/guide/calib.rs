//! The guide's prediction model and its calibration against published llama.cpp figures.
//!
//! Decode: time per token = bytes per token ÷ (bandwidth × efficiency) + a fixed per-token
//! cost; an MoE model's routed weights are read at a lower efficiency (its own factor). Prompt
//! processing: time per token = FLOPs per token (2 × active parameters) ÷ effective compute;
//! on Apple silicon effective compute = GPU cores × a per-core rate of the chip's generation,
//! elsewhere the chip's own. Every parameter is fitted, per backend, from the rows of
//! `reference/llama-cpp-published.csv` (llama-bench results others published, with sources);
//! [`validate`] predicts every row from the others (leave-one-out) so the guide can say how
//! far to trust it.

use crate::hw::chips::{self, Chip};
use crate::measure::stats::percentile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Where the reference rows live under a results directory.
pub const PATH: &str = "reference/llama-cpp-published.csv";

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One published llama-bench result, as the CSV has it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RefRow {
    pub source: String,
    pub url: String,
    pub machine: String,
    pub backend: String,
    #[serde(default)]
    pub build: String,
    pub model: String,
    /// The catalogue entry with the same architecture, when there is one.
    #[serde(default)]
    pub catalogue: String,
    pub moe: bool,
    pub quant: String,
    pub model_size_gib: Option<f64>,
    pub params_b: Option<f64>,
    pub active_params_b: Option<f64>,
    #[serde(default)]
    pub test_pp: String,
    pub pp_tps: Option<f64>,
    #[serde(default)]
    pub test_tg: String,
    pub tg_tps: Option<f64>,
    #[serde(default)]
    pub note: String,
}

impl RefRow {
    pub fn chip(&self) -> Option<&'static Chip> {
        chips::recognise(&self.machine, None).or_else(|| {
            // "Apple M4 Max (16-core CPU)": the table's own name with its variant.
            chips::CHIPS.iter().find(|c| c.name == self.machine)
        })
    }

    /// GPU cores the note states ("38-core GPU"), else the chip's top configuration.
    pub fn gpu_cores(&self) -> Option<u32> {
        let words: Vec<&str> = self.note.split([' ', ';', ',', '(', ')']).collect();
        let stated = words.windows(2).find_map(|w| {
            let n = w[0].strip_suffix("-core")?;
            (w[1].eq_ignore_ascii_case("gpu")).then(|| n.parse().ok())?
        });
        stated.or_else(|| apple_gpu_cores(self.chip()?.name))
    }
}

/// Reads the reference rows under a results directory; none when the file is absent.
pub fn load(results_dir: &Path) -> Result<Vec<RefRow>, String> {
    let path = results_dir.join(PATH);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bad = |e: csv::Error| format!("{}: {e}", path.display());
    let mut reader = csv::Reader::from_path(&path).map_err(bad)?;
    let mut rows = Vec::new();
    for row in reader.deserialize::<RefRow>() {
        let row: RefRow = row.map_err(bad)?;
        for v in [row.pp_tps, row.tg_tps, row.model_size_gib, row.params_b]
            .into_iter()
            .flatten()
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "{}: {} {} on {}: {v} is not a positive number",
                    path.display(),
                    row.model,
                    row.quant,
                    row.machine
                ));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// GPU cores of an Apple chip's top configuration (Apple's published specifications), for
/// the compute part of prompt processing.
pub fn apple_gpu_cores(chip: &str) -> Option<u32> {
    let cores = match chip {
        "Apple M1" => 8,
        "Apple M1 Pro" => 16,
        "Apple M1 Max" => 32,
        "Apple M1 Ultra" => 64,
        "Apple M2" => 10,
        "Apple M2 Pro" => 19,
        "Apple M2 Max" => 38,
        "Apple M2 Ultra" => 76,
        "Apple M3" => 10,
        "Apple M3 Pro" => 18,
        "Apple M3 Max (14-core CPU)" => 30,
        "Apple M3 Max (16-core CPU)" => 40,
        "Apple M3 Ultra" => 80,
        "Apple M4" => 10,
        "Apple M4 Pro" => 20,
        "Apple M4 Max (14-core CPU)" => 32,
        "Apple M4 Max (16-core CPU)" => 40,
        "Apple M5" => 10,
        _ => return None,
    };
    Some(cores)
}

/// The Apple silicon generation of a chip name (`Apple M4 Pro` → 4).
pub fn apple_generation(chip: &str) -> Option<u32> {
    let rest = chip.strip_prefix("Apple M")?;
    rest.chars().next()?.to_digit(10)
}

/// The backend llama.cpp uses on a chip by default: Metal on Apple silicon, CUDA on NVIDIA
/// GPUs, ROCm on AMD GPUs, the CPU elsewhere.
pub fn default_backend(chip: &Chip) -> &'static str {
    if chip.name.starts_with("Apple M") {
        "Metal"
    } else if chip.kind == chips::ChipKind::Gpu && chip.name.starts_with("NVIDIA") {
        "CUDA"
    } else if chip.kind == chips::ChipKind::Gpu && chip.name.starts_with("AMD") {
        "ROCm"
    } else {
        "CPU"
    }
}

/// What a prediction needs to know of a model: bytes one token reads, FLOPs one token costs,
/// and whether it routes experts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    pub bytes_per_token: f64,
    pub flops_per_token: f64,
    pub moe: bool,
}

/// A decode observation: work, published peak bandwidth (GB/s) and tokens per second.
#[derive(Debug, Clone, Copy)]
struct Obs {
    work: Work,
    gbps: f64,
    tps: f64,
}

/// The fitted decode model of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DecodeFit {
    /// Share of the published bandwidth dense weights are read at.
    pub efficiency: f64,
    /// Fixed cost of every token, ms.
    pub fixed_ms: f64,
    /// Routed (MoE) weights are read at `efficiency × moe_factor`; `None` when no MoE row was
    /// there to fit it.
    pub moe_factor: Option<f64>,
    pub dense_rows: usize,
    pub moe_rows: usize,
}

impl DecodeFit {
    pub fn predict(&self, w: &Work, gbps: f64) -> f64 {
        let factor = if w.moe {
            self.moe_factor.unwrap_or(1.0)
        } else {
            1.0
        };
        let seconds =
            w.bytes_per_token / (gbps * 1e9 * self.efficiency * factor) + self.fixed_ms / 1000.0;
        1.0 / seconds
    }

    /// The words a predicted cell carries; `gbps_from` says whose bandwidth ("published",
    /// "measured here"), `rows` what the fit saw ("published rows", "decodes measured here").
    pub fn basis(&self, backend: &str, w: &Work, gbps: f64, gbps_from: &str, rows: &str) -> String {
        let moe = match (w.moe, self.moe_factor) {
            (false, _) => String::new(),
            (true, Some(f)) => format!(", MoE weights × {:.0} %", f * 100.0),
            (true, None) => ", MoE at the dense efficiency (no MoE rows: optimistic)".into(),
        };
        format!(
            "{:.2} GB/token ÷ ({gbps:.1} GB/s {gbps_from} × {:.1} %{moe}) + {:.1} ms; {backend} \
             fit to {} dense + {} MoE {rows}",
            w.bytes_per_token / 1e9,
            self.efficiency * 100.0,
            self.fixed_ms,
            self.dense_rows,
            self.moe_rows
        )
    }
}

/// A decode measured on a machine with records.
#[derive(Debug, Clone)]
pub struct LocalPoint {
    pub model: String,
    pub quant: String,
    pub work: Work,
    pub tps: f64,
}

/// A machine with records: the decode model fitted to its own decodes at its measured
/// bandwidth (a GPU's published one: `runner hw` measures the host's memory, not a GPU's), and
/// what was measured (or extrapolated) there for catalogue entries.
#[derive(Debug, Clone)]
pub struct Local {
    pub label: String,
    /// The chip of the table its weights sat on, when recognised.
    pub chip: Option<String>,
    pub backend: String,
    pub gbps: f64,
    /// Whose bandwidth `gbps` is: "measured here" or "published".
    pub gbps_from: &'static str,
    pub memory_bytes: Option<u64>,
    pub points: Vec<LocalPoint>,
    pub fit: Option<DecodeFit>,
    /// (catalogue entry, quantization, tok/s, extrapolated, basis) at full depth.
    pub known: Vec<(String, String, f64, bool, String)>,
}

impl Local {
    pub fn new(
        (label, chip): (String, Option<String>),
        backend: String,
        (gbps, gbps_from): (f64, &'static str),
        memory_bytes: Option<u64>,
        points: Vec<LocalPoint>,
        known: Vec<(String, String, f64, bool, String)>,
    ) -> Local {
        let fit = fit_decode(&Self::obs(&points, gbps, None));
        Local {
            label,
            chip,
            backend,
            gbps,
            gbps_from,
            memory_bytes,
            points,
            fit,
            known,
        }
    }

    fn obs(points: &[LocalPoint], gbps: f64, skip: Option<usize>) -> Vec<Obs> {
        points
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, p)| Obs {
                work: p.work,
                gbps,
                tps: p.tps,
            })
            .collect()
    }

    /// Predicted decode tok/s of `w` here, with its basis.
    pub fn decode(&self, w: &Work) -> Option<(f64, String)> {
        let fit = self.fit.as_ref()?;
        Some((
            fit.predict(w, self.gbps),
            fit.basis(
                &self.backend,
                w,
                self.gbps,
                self.gbps_from,
                "decodes measured here",
            ),
        ))
    }

    /// Every decode here predicted by `model`, fitted to the published rows alone, for its
    /// chip through `backend`: how far the catalogue's figures for that chip are off.
    pub fn against(&self, model: &Model, chip: &Chip, backend: &str) -> Vec<Validation> {
        let source = format!("measured here, predicted by the {backend} fit to published rows");
        self.points
            .iter()
            .map(|p| {
                let predicted = model.decode(chip, backend, &p.work).map(|x| x.0);
                Validation {
                    backend: backend.to_string(),
                    source: source.clone(),
                    here: false,
                    recorded: true,
                    ..self.checked(p, predicted)
                }
            })
            .collect()
    }

    /// Every decode here predicted from the others.
    pub fn validate(&self) -> Vec<Validation> {
        (0..self.points.len())
            .map(|i| {
                let p = &self.points[i];
                let predicted = fit_decode(&Self::obs(&self.points, self.gbps, Some(i)))
                    .map(|f| f.predict(&p.work, self.gbps));
                self.checked(p, predicted)
            })
            .collect()
    }

    /// The validation of decode `p` here against `predicted`, from the others measured here.
    fn checked(&self, p: &LocalPoint, predicted: Option<f64>) -> Validation {
        Validation {
            machine: self.label.clone(),
            backend: self.backend.clone(),
            model: p.model.clone(),
            quant: p.quant.clone(),
            moe: p.work.moe,
            metric: "tg",
            published: p.tps,
            predicted,
            error: predicted.map(|x| x / p.tps - 1.0),
            source: "measured here".into(),
            here: true,
            recorded: false,
        }
    }
}

fn log_loss(obs: &[Obs], f: impl Fn(&Obs) -> f64) -> f64 {
    obs.iter().map(|o| (f(o) / o.tps).ln().powi(2)).sum()
}

/// Least squared log error over a grid: efficiency 10-100 %, fixed cost 0-30 ms (0 when the
/// rows cannot tell the two apart), searched coarsely (2 %, 0.5 ms) then finely around the
/// best (0.5 %, 0.1 ms); then the MoE factor 5-150 % in 0.5 % steps. A grid keeps the fit
/// deterministic and free of local-minimum surprises.
fn fit_decode(obs: &[Obs]) -> Option<DecodeFit> {
    let dense: Vec<Obs> = obs.iter().filter(|o| !o.work.moe).copied().collect();
    let moe: Vec<Obs> = obs.iter().filter(|o| o.work.moe).copied().collect();
    if dense.is_empty() {
        return None;
    }
    let x = |o: &Obs| o.work.bytes_per_token / (o.gbps * 1e9);
    let xs: Vec<f64> = dense.iter().map(x).collect();
    let spread =
        xs.iter().cloned().fold(f64::MIN, f64::max) / xs.iter().cloned().fold(f64::MAX, f64::min);
    let fixed = dense.len() >= 2 && spread > 1.3;
    let loss = |e: f64, c: f64| log_loss(&dense, |o| 1.0 / (x(o) / e + c));
    let search = |es: &mut dyn Iterator<Item = f64>, cs: &[f64], best: &mut (f64, f64, f64)| {
        for e in es {
            for &c in cs {
                let l = loss(e, c);
                if l < best.0 {
                    *best = (l, e, c);
                }
            }
        }
    };
    let coarse_c: Vec<f64> = if fixed {
        (0..=60).map(|i| i as f64 * 5e-4).collect()
    } else {
        vec![0.0]
    };
    let mut best = (f64::MAX, 0.0, 0.0);
    search(&mut (5..=50).map(|i| i as f64 * 0.02), &coarse_c, &mut best);
    let (e0, c0) = (best.1, best.2);
    let fine_c: Vec<f64> = if fixed {
        (-5..=5)
            .map(|i| c0 + i as f64 * 1e-4)
            .filter(|c| *c >= 0.0)
            .collect()
    } else {
        vec![0.0]
    };
    search(
        &mut (-4..=4)
            .map(|i| e0 + i as f64 * 0.005)
            .filter(|e| (0.1..=1.0).contains(e)),
        &fine_c,
        &mut best,
    );
    let (_, e, c) = best;
    let mut fit = DecodeFit {
        efficiency: e,
        fixed_ms: c * 1000.0,
        moe_factor: None,
        dense_rows: dense.len(),
        moe_rows: moe.len(),
    };
    if !moe.is_empty() {
        let mut best = (f64::MAX, 1.0);
        for fi in 10..=300 {
            let f = fi as f64 * 0.005;
            let loss = log_loss(&moe, |o| 1.0 / (x(o) / (e * f) + c));
            if loss < best.0 {
                best = (loss, f);
            }
        }
        fit.moe_factor = Some(best.1);
    }
    Some(fit)
}

/// Effective prompt-processing compute, FLOP/s: per GPU core for an Apple generation, or a
/// whole chip's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ComputeFit {
    pub flops: f64,
    pub rows: usize,
}

/// What a reference row contributes once resolved: its chip, work and rates.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub row: RefRow,
    pub chip: &'static Chip,
    pub work: Work,
}

/// The model fitted from a set of reference rows.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Decode fit per backend.
    pub decode: BTreeMap<String, DecodeFit>,
    /// Effective compute per GPU core per Apple generation (Metal).
    pub apple_per_core: BTreeMap<u32, ComputeFit>,
    /// Effective compute of other chips, by chip name and backend.
    pub chip_compute: BTreeMap<(String, String), ComputeFit>,
}

/// Resolves reference rows to chips and work; rows whose chip is not in the table or whose
/// size is unknown are left out (and counted by the caller).
pub fn resolve(rows: &[RefRow], work_of: &dyn Fn(&RefRow) -> Option<Work>) -> Vec<Resolved> {
    rows.iter()
        .filter_map(|r| {
            Some(Resolved {
                chip: r.chip()?,
                work: work_of(r)?,
                row: r.clone(),
            })
        })
        .collect()
}

/// The work of a reference row from its own columns: llama-bench's size (with only the used
/// experts' share for MoE, when active parameters are known) and 2 FLOPs per active parameter.
pub fn work_from_columns(r: &RefRow) -> Option<Work> {
    let size = r.model_size_gib? * GIB;
    let params = r.params_b? * 1e9;
    let active = if r.moe {
        r.active_params_b? * 1e9
    } else {
        params
    };
    Some(Work {
        bytes_per_token: size * active / params,
        flops_per_token: 2.0 * active,
        moe: r.moe,
    })
}

impl Model {
    pub fn fit(rows: &[&Resolved]) -> Model {
        let mut by_backend: BTreeMap<&str, Vec<Obs>> = BTreeMap::new();
        let mut per_core: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        let mut chip_compute: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for r in rows {
            if let Some(tps) = r.row.tg_tps {
                by_backend.entry(&r.row.backend).or_default().push(Obs {
                    work: r.work,
                    gbps: r.chip.peak_gbps,
                    tps,
                });
            }
            let Some(pp) = r.row.pp_tps else { continue };
            let flops = pp * r.work.flops_per_token;
            match (
                r.row.backend.as_str(),
                apple_generation(r.chip.name),
                r.row.gpu_cores(),
            ) {
                ("Metal", Some(generation), Some(cores)) => per_core
                    .entry(generation)
                    .or_default()
                    .push(flops / cores as f64),
                _ => chip_compute
                    .entry((r.chip.name.to_string(), r.row.backend.clone()))
                    .or_default()
                    .push(flops),
            }
        }
        let summarise = |v: Vec<f64>| ComputeFit {
            flops: percentile(&v, 0.5).unwrap_or(0.0),
            rows: v.len(),
        };
        Model {
            decode: by_backend
                .into_iter()
                .filter_map(|(b, obs)| Some((b.to_string(), fit_decode(&obs)?)))
                .collect(),
            apple_per_core: per_core
                .into_iter()
                .map(|(g, v)| (g, summarise(v)))
                .collect(),
            chip_compute: chip_compute
                .into_iter()
                .map(|(k, v)| (k, summarise(v)))
                .collect(),
        }
    }

    /// Predicted decode tok/s of `w` on `chip` through `backend`, with its basis.
    pub fn decode(&self, chip: &Chip, backend: &str, w: &Work) -> Option<(f64, String)> {
        let fit = self.decode.get(backend)?;
        Some((
            fit.predict(w, chip.peak_gbps),
            fit.basis(backend, w, chip.peak_gbps, "published", "published rows"),
        ))
    }

    /// Predicted prompt tok/s of `w` on `chip` through `backend`, with its basis.
    pub fn prompt(
        &self,
        chip: &Chip,
        backend: &str,
        cores: Option<u32>,
        w: &Work,
    ) -> Option<(f64, String)> {
        if backend == "Metal" {
            let generation = apple_generation(chip.name)?;
            let cores = cores.or_else(|| apple_gpu_cores(chip.name))?;
            // The chip's generation, else the nearest earlier one, else the nearest later one.
            let (g, fit) = self
                .apple_per_core
                .range(..=generation)
                .next_back()
                .or_else(|| self.apple_per_core.range(generation..).next())?;
            let of = if *g == generation {
                format!("M{g}")
            } else {
                format!("M{g}: no M{generation} rows")
            };
            let flops = fit.flops * cores as f64;
            return Some((
                flops / w.flops_per_token,
                format!(
                    "{:.1} GFLOP/token ÷ ({cores} GPU cores × {:.0} GFLOP/s, median of {} {of} \
                     rows)",
                    w.flops_per_token / 1e9,
                    fit.flops / 1e9,
                    fit.rows
                ),
            ));
        }
        let fit = self
            .chip_compute
            .get(&(chip.name.to_string(), backend.to_string()))?;
        Some((
            fit.flops / w.flops_per_token,
            format!(
                "{:.1} GFLOP/token ÷ {:.1} TFLOP/s (median of {} {backend} rows of this chip)",
                w.flops_per_token / 1e9,
                fit.flops / 1e12,
                fit.rows
            ),
        ))
    }
}

/// One reference row predicted from all the others.
#[derive(Debug, Clone, Serialize)]
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
        let others: Vec<&Resolved> = rows
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o)
            .collect();
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
#[derive(Debug, Clone, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(machine: &str, quant: &str, size: f64, moe: bool, pp: f64, tg: f64) -> RefRow {
        RefRow {
            source: "s".into(),
            url: "u".into(),
            machine: machine.into(),
            backend: "Metal".into(),
            build: String::new(),
            model: "m".into(),
            catalogue: String::new(),
            moe,
            quant: quant.into(),
            model_size_gib: Some(size),
            params_b: Some(7.0),
            active_params_b: Some(if moe { 1.0 } else { 7.0 }),
            test_pp: "pp512".into(),
            pp_tps: Some(pp),
            test_tg: "tg128".into(),
            tg_tps: Some(tg),
            note: String::new(),
        }
    }

    /// Rows made by the model itself: efficiency 60 %, 5 ms per token, MoE at half.
    fn synthetic_rows() -> Vec<Resolved> {
        let truth = DecodeFit {
            efficiency: 0.6,
            fixed_ms: 5.0,
            moe_factor: Some(0.5),
            dense_rows: 0,
            moe_rows: 0,
        };
        let mut rows = Vec::new();
        for (machine, cores) in [
            ("Apple M1 Max", 32u32),
            ("Apple M2 Ultra", 76),
            ("Apple M2", 10),
        ] {
            for (quant, size, moe) in [
                ("F16", 13.0, false),
                ("Q8_0", 7.0, false),
                ("Q4_0", 3.6, false),
                ("Q4_0", 16.0, true),
            ] {
                let mut r = row(machine, quant, size, moe, 0.0, 0.0);
                r.note = format!("{cores}-core GPU");
                let chip = r.chip().unwrap();
                let work = work_from_columns(&r).unwrap();
                r.tg_tps = Some(truth.predict(&work, chip.peak_gbps));
                // 200 GFLOP/s per core.
                r.pp_tps = Some(200e9 * cores as f64 / work.flops_per_token);
                rows.push(Resolved { row: r, chip, work });
            }
        }
        rows
    }

    #[test]
    fn the_fit_recovers_the_parameters_that_made_the_rows() {
        let rows = synthetic_rows();
        let refs: Vec<&Resolved> = rows.iter().collect();
        let m = Model::fit(&refs);
        let fit = m.decode["Metal"];
        assert!((fit.efficiency - 0.6).abs() < 0.006, "{fit:?}");
        assert!((fit.fixed_ms - 5.0).abs() < 0.2, "{fit:?}");
        assert!((fit.moe_factor.unwrap() - 0.5).abs() < 0.01, "{fit:?}");
        assert_eq!((fit.dense_rows, fit.moe_rows), (9, 3));
        assert!((m.apple_per_core[&2].flops - 200e9).abs() < 1.0);
        // Leave-one-out on rows the model can represent: every error is small.
        let v = validate(&rows);
        assert_eq!(v.len(), 24);
        assert!(v.iter().all(|x| x.error.unwrap().abs() < 0.02), "{v:?}");
        let s = summarise(&v);
        let tg = s.iter().find(|s| s.group == "tg all").unwrap();
        assert_eq!((tg.rows, tg.predicted), (12, 12));
        assert!(s.iter().any(|s| s.group == "tg Metal MoE"));
    }

    #[test]
    fn a_row_no_other_row_can_predict_is_counted_not_guessed() {
        let mut rows = synthetic_rows();
        rows.retain(|r| r.chip.name == "Apple M2 Ultra" || !r.work.moe);
        // The only MoE row: without it there is no MoE factor, so the dense efficiency is
        // used and the prediction is too fast.
        let v = validate(&rows);
        let moe = v.iter().find(|x| x.moe && x.metric == "tg").unwrap();
        assert!(moe.error.unwrap() > 0.3, "{moe:?}");
        // One chip of a non-Apple backend: its prompt rate has no other row to come from.
        let mut r = row("NVIDIA GeForce RTX 4090", "Q4_0", 3.6, false, 5000.0, 150.0);
        r.backend = "CUDA".into();
        let chip = r.chip().unwrap();
        let work = work_from_columns(&r).unwrap();
        let v = validate(&[Resolved { row: r, chip, work }]);
        assert!(v.iter().all(|x| x.predicted.is_none()), "{v:?}");
    }

    #[test]
    fn a_machine_with_records_is_fitted_to_its_own_decodes() {
        let truth = DecodeFit {
            efficiency: 0.8,
            fixed_ms: 2.0,
            moe_factor: Some(0.6),
            dense_rows: 0,
            moe_rows: 0,
        };
        let points: Vec<LocalPoint> = [
            (1e8, false),
            (1e9, false),
            (4e9, false),
            (2e9, true),
            (5e8, true),
        ]
        .iter()
        .map(|&(bpt, moe)| {
            let work = Work {
                bytes_per_token: bpt,
                flops_per_token: 0.0,
                moe,
            };
            LocalPoint {
                model: format!("{bpt}"),
                quant: "q4_0".into(),
                work,
                tps: truth.predict(&work, 40.0),
            }
        })
        .collect();
        let m = Local::new(
            ("here".into(), None),
            "CPU".into(),
            (40.0, "measured here"),
            None,
            points,
            Vec::new(),
        );
        let fit = m.fit.unwrap();
        assert!(
            (fit.efficiency - 0.8).abs() < 0.006 && (fit.fixed_ms - 2.0).abs() < 0.2,
            "{fit:?}"
        );
        let v = m.validate();
        assert_eq!(v.len(), 5);
        assert!(
            v.iter().all(|x| x.here && x.error.unwrap().abs() < 0.03),
            "{v:?}"
        );
        let s = summarise(&v);
        let groups: Vec<&str> = s.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(groups, ["tg here MoE", "tg here dense"]);
        let (tps, basis) = m.decode(&v[0].clone().into_work()).unwrap();
        assert!(tps > 0.0 && basis.contains("GB/s measured here"), "{basis}");
    }

    impl Validation {
        fn into_work(self) -> Work {
            Work {
                bytes_per_token: 1e9,
                flops_per_token: 0.0,
                moe: self.moe,
            }
        }
    }

    #[test]
    fn gpu_cores_come_from_the_note_else_the_chip() {
        let mut r = row("Apple M2 Max", "Q4_0", 3.6, false, 1.0, 1.0);
        assert_eq!(r.gpu_cores(), Some(38));
        r.note = "full offload; 30-core GPU".into();
        assert_eq!(r.gpu_cores(), Some(30));
        assert_eq!(apple_generation("Apple M4 Pro"), Some(4));
        assert_eq!(apple_generation("NVIDIA H100 SXM"), None);
    }
}
