//! A machine with records as the guide predicts it: the decode model fitted to its own
//! decodes, and those decodes checked against the others and against the published fit.

use super::calib::{fit_decode, DecodeFit, Model, Obs, Work};
use super::validation::Validation;
use crate::hw::chips::Chip;

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
    /// The machine's fingerprint id.
    pub id: String,
    /// The chip of the table its weights sat on, when recognised.
    pub chip: Option<String>,
    pub backend: String,
    pub gbps: f64,
    /// Whose bandwidth `gbps` is: "measured here" or "published".
    pub gbps_from: &'static str,
    pub memory_bytes: Option<u64>,
    pub points: Vec<LocalPoint>,
    /// Decodes measured while other processes kept the machine busy (left out of `points`).
    pub busy_decodes: usize,
    pub fit: Option<DecodeFit>,
    /// (catalogue entry, quantization, tok/s, extrapolated, basis) at full depth.
    pub known: Vec<(String, String, f64, bool, String)>,
}

impl Local {
    /// `points` as observations of a decode fit at `gbps`.
    pub(super) fn obs<'a>(points: impl IntoIterator<Item = &'a LocalPoint>, gbps: f64) -> Vec<Obs> {
        points
            .into_iter()
            .map(|p| Obs {
                work: p.work,
                gbps,
                tps: p.tps,
                quant: p.quant.to_ascii_lowercase(),
            })
            .collect()
    }

    /// Why the machine has no fit though it has decodes; None when it has a fit, or no decode.
    pub fn unfitted_because(&self) -> Option<&'static str> {
        match (&self.fit, self.points.is_empty()) {
            (Some(_), _) => None,
            (None, false) => Some("only MoE decodes measured here: a dense one is needed to fit"),
            (None, true) if self.busy_decodes > 0 => Some(
                "only decodes measured while other processes kept this machine busy, which the \
                 fit leaves out",
            ),
            (None, true) => None,
        }
    }

    /// Whether the fit here declines to predict `w`: an MoE model where no MoE decode was
    /// measured, which a dense-only fit would read at the dense efficiency (far too fast where
    /// a fixed cost per token could not be fitted either).
    pub fn declines(&self, w: &Work) -> bool {
        w.moe && self.fit.as_ref().is_some_and(|f| f.moe_rows == 0)
    }

    /// Predicted decode tok/s of `w` here, with its basis.
    pub fn decode(&self, w: &Work) -> Option<(f64, String)> {
        if self.declines(w) {
            return None;
        }
        let fit = self.fit.as_ref()?;
        let rows = "decodes measured here";
        Some(fit.predicted(&self.backend, w, self.gbps, self.gbps_from, rows))
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
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let others = self.points[..i].iter().chain(&self.points[i + 1..]);
                let predicted = fit_decode(&Self::obs(others, self.gbps))
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
