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
use crate::report::{median, GIB};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[cfg(test)]
#[path = "calib_tests.rs"]
mod tests;

/// Where the reference rows live under a results directory.
pub const PATH: &str = "reference/llama-cpp-published.csv";

/// One published llama-bench result, as the CSV has it.
#[derive(Debug, Clone, Deserialize)]
pub struct RefRow {
    pub source: String,
    pub url: String,
    pub machine: String,
    pub backend: String,
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

/// The columns [`PATH`] must have (`catalogue`, `test_pp`, `test_tg` and `note` may be left
/// out; others are ignored).
pub const COLUMNS: &[&str] = &[
    "source",
    "url",
    "machine",
    "backend",
    "model",
    "moe",
    "quant",
    "model_size_gib",
    "params_b",
    "active_params_b",
    "pp_tps",
    "tg_tps",
];

/// Reads the reference rows under a results directory; none when the file is absent. A file
/// that is there but damaged (not a regular file or not text, a missing column, a row that
/// does not parse, a number outside 1e-6 to 1e9) is an error naming it: it is
/// never read as fewer rows.
pub fn load(results_dir: &Path) -> Result<Vec<RefRow>, String> {
    let path = results_dir.join(PATH);
    let rows = crate::report::reference::read_rows::<RefRow>(&path, COLUMNS);
    let rows = rows.map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (line, row) in rows {
        let at = |what: String| {
            let (p, m, q, on) = (path.display(), &row.model, &row.quant, &row.machine);
            format!("{p}: line {line}: {m} {q} on {on}: {what}")
        };
        let numbers = [
            row.pp_tps,
            row.tg_tps,
            row.model_size_gib,
            row.params_b,
            row.active_params_b,
        ];
        for v in numbers.into_iter().flatten() {
            // Rates, GiB and billions of parameters are all far below 1e9, and far above a
            // millionth, under which a prediction fitted to them is noise.
            if !(v.is_finite() && (1e-6..1e9).contains(&v)) {
                let v = crate::util::shown(v, 1e-6);
                return Err(at(format!("{v} is not a number from 1e-6 to 1e9")));
            }
        }
        // Compute scales with the GPU cores a note states: none would predict no speed at all.
        if row.gpu_cores() == Some(0) {
            return Err(at("the note states a 0-core GPU".into()));
        }
        out.push(row);
    }
    Ok(out)
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

/// A decode observation: work, published peak bandwidth (GB/s), tokens per second and the
/// quantization (lower case).
#[derive(Debug, Clone)]
pub(super) struct Obs {
    pub work: Work,
    pub gbps: f64,
    pub tps: f64,
    pub quant: String,
}

/// The fitted decode model of one backend.
#[derive(Debug, Clone, Copy, PartialEq)]
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

    /// The predicted tok/s of `w` at `gbps` and the words its cell carries; `gbps_from` says
    /// whose bandwidth ("published", "measured here"), `rows` what the fit saw ("published
    /// rows", "decodes measured here").
    pub fn predicted(
        &self,
        backend: &str,
        w: &Work,
        gbps: f64,
        gbps_from: &str,
        rows: &str,
    ) -> (f64, String) {
        let moe = match (w.moe, self.moe_factor) {
            (false, _) => String::new(),
            (true, Some(f)) => format!(", MoE weights × {:.0} %", f * 100.0),
            (true, None) => ", MoE at the dense efficiency (no MoE rows: optimistic)".into(),
        };
        let basis = format!(
            "{:.2} GB/token ÷ ({gbps:.1} GB/s {gbps_from} × {:.1} %{moe}) + {:.1} ms; {backend} \
             fit to {} dense + {} MoE {rows}",
            w.bytes_per_token / 1e9,
            self.efficiency * 100.0,
            self.fixed_ms,
            self.dense_rows,
            self.moe_rows
        );
        (self.predict(w, gbps), basis)
    }
}

fn log_loss(obs: &[&Obs], f: impl Fn(&Obs) -> f64) -> f64 {
    obs.iter().map(|o| (f(o) / o.tps).ln().powi(2)).sum()
}

/// Least squared log error over a grid: efficiency 10-100 %, fixed cost 0-30 ms (0 when the
/// rows cannot tell the two apart), searched coarsely (2 %, 0.5 ms) then finely around the
/// best (0.5 %, 0.1 ms); then the MoE factor 5-150 % in 0.5 % steps. A grid keeps the fit
/// deterministic and free of local-minimum surprises.
///
/// The rows tell a fixed cost apart from the bandwidth share only where one quantization is
/// seen at bytes per token (÷ bandwidth) at least 1.3 times apart: two models, or two chips.
/// Across quantizations alone, a type's kernel speed would pass for a fixed cost (on a GPU,
/// Q8_0 decodes faster than Q6_K though it reads more).
pub(super) fn fit_decode(obs: &[Obs]) -> Option<DecodeFit> {
    let dense: Vec<&Obs> = obs.iter().filter(|o| !o.work.moe).collect();
    let moe: Vec<&Obs> = obs.iter().filter(|o| o.work.moe).collect();
    if dense.is_empty() {
        return None;
    }
    let x = |o: &Obs| o.work.bytes_per_token / (o.gbps * 1e9);
    // The least and largest x of each quantization.
    let mut span: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for o in &dense {
        let (lo, hi) = span.entry(&o.quant).or_insert((f64::MAX, f64::MIN));
        (*lo, *hi) = (lo.min(x(o)), hi.max(x(o)));
    }
    let fixed = span.values().any(|(lo, hi)| *hi > 1.3 * lo);
    // The least of `best` and the (loss, efficiency, fixed cost) over the grid `es` × `cs`.
    let search = |es: Vec<f64>, cs: Vec<f64>, best: (f64, f64, f64)| {
        let grid = es.into_iter().flat_map(|e| cs.iter().map(move |&c| (e, c)));
        let losses = grid.map(|(e, c)| (log_loss(&dense, |o| 1.0 / (x(o) / e + c)), e, c));
        losses.fold(best, |best, l| if l.0 < best.0 { l } else { best })
    };
    let costs = |c: Vec<f64>| if fixed { c } else { vec![0.0] };
    let coarse_e = (5..=50).map(|i| i as f64 * 0.02).collect();
    let coarse_c = costs((0..=60).map(|i| i as f64 * 5e-4).collect());
    let best = search(coarse_e, coarse_c, (f64::MAX, 0.0, 0.0));
    let (_, e0, c0) = best;
    let fine_e = (-4..=4).map(|i| e0 + i as f64 * 0.005);
    let fine_c = (-5..=5).map(|i| c0 + i as f64 * 1e-4);
    let (_, e, c) = search(
        fine_e.filter(|e| (0.1..=1.0).contains(e)).collect(),
        costs(fine_c.filter(|c| *c >= 0.0).collect()),
        best,
    );
    let moe_factor = (!moe.is_empty()).then(|| {
        let factors = (10..=300).map(|fi| fi as f64 * 0.005);
        let losses = factors.map(|f| (log_loss(&moe, |o| 1.0 / (x(o) / (e * f) + c)), f));
        let least = |best: (f64, f64), l: (f64, f64)| if l.0 < best.0 { l } else { best };
        losses.fold((f64::MAX, 1.0), least).1
    });
    Some(DecodeFit {
        efficiency: e,
        fixed_ms: c * 1000.0,
        moe_factor,
        dense_rows: dense.len(),
        moe_rows: moe.len(),
    })
}

/// What a backend's prompt compute is fitted per: an Apple generation (Metal) or a chip.
pub fn compute_units(backend: &str) -> &'static str {
    match backend {
        "Metal" => "Apple generation(s)",
        _ => "chip(s)",
    }
}

/// Effective prompt-processing compute, FLOP/s: per GPU core for an Apple generation, or a
/// whole chip's.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Per backend, a MoE model's prompt compute as a share of a dense one's on the same chip
    /// (routing splits each expert's matrix products into small ones), and the number of
    /// chips or Apple generations with rows of both it is the median over; absent without
    /// such pairs. The compute fits above are dense: a MoE row counts as its compute ÷ this
    /// share.
    pub moe_compute: BTreeMap<String, (f64, usize)>,
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
        // Effective FLOP/s of each row, and whether it is a MoE row.
        let mut per_core: BTreeMap<u32, Vec<(f64, bool)>> = BTreeMap::new();
        let mut chip_compute: BTreeMap<(String, String), Vec<(f64, bool)>> = BTreeMap::new();
        for r in rows {
            if let Some(tps) = r.row.tg_tps {
                by_backend.entry(&r.row.backend).or_default().push(Obs {
                    work: r.work,
                    gbps: r.chip.peak_gbps,
                    tps,
                    quant: r.row.quant.to_ascii_lowercase(),
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
                    .push((flops / cores as f64, r.work.moe)),
                _ => chip_compute
                    .entry((r.chip.name.to_string(), r.row.backend.clone()))
                    .or_default()
                    .push((flops, r.work.moe)),
            }
        }
        let median_of =
            |v: &[(f64, bool)], moe: bool| median(v.iter().filter(|x| x.1 == moe).map(|x| x.0));
        let mut ratios: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let groups = per_core.values().map(|v| ("Metal", v));
        for (backend, v) in groups.chain(chip_compute.iter().map(|(k, v)| (k.1.as_str(), v))) {
            if let (Some(moe), Some(dense)) = (median_of(v, true), median_of(v, false)) {
                ratios.entry(backend).or_default().push(moe / dense);
            }
        }
        let moe_compute: BTreeMap<String, (f64, usize)> = ratios
            .into_iter()
            .filter_map(|(b, v)| Some((b.to_string(), (median(v.iter().copied())?, v.len()))))
            .collect();
        let summarise = |backend: &str, v: Vec<(f64, bool)>| {
            let share = moe_compute.get(backend).map_or(1.0, |m| m.0);
            let dense = v.iter().map(|&(f, moe)| if moe { f / share } else { f });
            ComputeFit {
                flops: median(dense).unwrap_or(0.0),
                rows: v.len(),
            }
        };
        Model {
            decode: by_backend
                .into_iter()
                .filter_map(|(b, obs)| Some((b.to_string(), fit_decode(&obs)?)))
                .collect(),
            apple_per_core: per_core
                .into_iter()
                .map(|(g, v)| (g, summarise("Metal", v)))
                .collect(),
            chip_compute: chip_compute
                .into_iter()
                .map(|(k, v)| {
                    let fit = summarise(&k.1, v);
                    (k, fit)
                })
                .collect(),
            moe_compute,
        }
    }

    /// Predicted decode tok/s of `w` on `chip` through `backend`, with its basis.
    pub fn decode(&self, chip: &Chip, backend: &str, w: &Work) -> Option<(f64, String)> {
        let fit = self.decode.get(backend)?;
        Some(fit.predicted(backend, w, chip.peak_gbps, "published", "published rows"))
    }

    /// Predicted prompt tok/s of `w` on `chip` through `backend`, with its basis.
    pub fn prompt(
        &self,
        chip: &Chip,
        backend: &str,
        cores: Option<u32>,
        w: &Work,
    ) -> Option<(f64, String)> {
        let (flops, of) = self.dense_compute(chip, backend, cores)?;
        let (share, moe) = match (w.moe, self.moe_compute.get(backend)) {
            (true, Some((k, n))) => (
                *k,
                format!(
                    " × {:.0} % for MoE, the median MoE/dense share of {n} {backend} {}",
                    k * 100.0,
                    compute_units(backend)
                ),
            ),
            _ => (1.0, String::new()),
        };
        Some((
            flops * share / w.flops_per_token,
            format!("{:.1} GFLOP/token ÷ ({of}{moe})", w.flops_per_token / 1e9),
        ))
    }

    /// A chip's effective dense prompt compute (FLOP/s) through `backend`, and how it was
    /// found.
    fn dense_compute(
        &self,
        chip: &Chip,
        backend: &str,
        cores: Option<u32>,
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
            return Some((
                fit.flops * cores as f64,
                format!(
                    "{cores} GPU cores × {:.0} GFLOP/s, median of {} {of} rows",
                    fit.flops / 1e9,
                    fit.rows
                ),
            ));
        }
        let fit = self
            .chip_compute
            .get(&(chip.name.to_string(), backend.to_string()))?;
        Some((
            fit.flops,
            format!(
                "{:.1} TFLOP/s, median of {} {backend} rows of this chip",
                fit.flops / 1e12,
                fit.rows
            ),
        ))
    }
}
