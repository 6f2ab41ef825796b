//! `runner guide`: the hardware guide. Every record under the results directory becomes a
//! measured row per (machine, where the weights sat, backend, model, quantization);
//! combinations not measured get a predicted row from bandwidth; published reference figures
//! stand beside them. The same records always give the same bytes.

pub mod answer;
pub mod calib;
pub mod catalog;
pub mod local;
pub mod machine;
pub mod predict;
pub mod render;
pub mod rows;
pub mod validation;

use crate::hw::chips;
use crate::record::Records;
use crate::report::csv::rows_csv;
use crate::report::obs::{self, Obs};
use crate::report::reference::Published;
use crate::util::Invalid;
use rows::{GuideRow, MachineSummary};

pub use answer::answer;
pub use render::markdown;

/// Everything the guide shows, derived from records and reference rows alone.
#[derive(Debug, Clone)]
pub struct Guide {
    /// The results directory as given (for the text).
    pub source: String,
    pub files: usize,
    pub bench_records: usize,
    pub requests: usize,
    pub failed_cells: usize,
    /// Earliest and latest record time.
    pub span: Option<(String, String)>,
    pub machines: Vec<MachineSummary>,
    /// Each recorded machine's decode model, fitted to its own decodes ([`local_models`]).
    pub locals: Vec<local::Local>,
    /// Measured rows, then predicted rows, each sorted by machine, model, quant, backend.
    pub rows: Vec<GuideRow>,
    pub published: Vec<Published>,
    /// Share of the published peak assumed where a machine has no decodes of its own.
    pub default_efficiency: f64,
    /// The catalogue's rows and the model behind them, when calibrated.
    pub calibration: Option<Calibration>,
}

/// The prediction model fitted to the published llama-bench rows, its leave-one-out
/// validation, and the catalogue's rows on every chip it can predict for.
#[derive(Debug, Clone)]
pub struct Calibration {
    pub refs: Vec<calib::RefRow>,
    /// Reference rows used (their chip is in the table and their size known).
    pub used: usize,
    pub model: calib::Model,
    pub validation: Vec<validation::Validation>,
    pub summary: Vec<validation::ErrorSummary>,
    pub sized: Vec<catalog::Sized>,
    pub rows: Vec<catalog::CatalogueRow>,
    pub assumptions: catalog::Assumptions,
    /// Machines with records whose catalogue rows come from their own decodes (each with a
    /// fit).
    pub locals: Vec<local::Local>,
    /// Machines with decodes but no fit (MoE decodes alone, or decodes measured while the
    /// machine was busy), and why: their catalogue rows hold what was measured there and say
    /// why the rest is not predicted.
    pub unfitted: Vec<(String, &'static str)>,
    /// (backend, chip) of every recorded machine on a chip of the table.
    pub recorded_on: Vec<(String, String)>,
}

impl Calibration {
    /// Fits the model to `refs` (and each machine with records to its own decodes),
    /// validates both and predicts the catalogue.
    pub fn new(
        refs: Vec<calib::RefRow>,
        sized: Vec<catalog::Sized>,
        assumptions: catalog::Assumptions,
        locals: &[local::Local],
    ) -> Calibration {
        let resolved = calib::resolve(&refs, &catalog::work_of(&sized));
        let all: Vec<&calib::Resolved> = resolved.iter().collect();
        let model = calib::Model::fit(&all);
        let mut validation = validation::validate(&resolved);
        let mut rows = Vec::new();
        let mut recorded_on = Vec::new();
        for m in locals {
            let chip = m
                .chip
                .as_deref()
                .and_then(|c| chips::CHIPS.iter().find(|x| x.name == c));
            if let Some(chip) = chip {
                let backend = catalog::backend_for(chip, &refs);
                validation.extend(m.against(&model, chip, &backend));
                recorded_on.push((backend, chip.name.to_string()));
            }
        }
        let (fitted, unfitted): (Vec<local::Local>, Vec<local::Local>) =
            locals.iter().cloned().partition(|m| m.fit.is_some());
        for m in &fitted {
            validation.extend(m.validate());
        }
        let unfitted: Vec<(&local::Local, &'static str)> = (unfitted.iter())
            .filter_map(|m| Some((m, m.unfitted_because()?)))
            .collect();
        for m in fitted.iter().chain(unfitted.iter().map(|(m, _)| *m)) {
            rows.extend(sized.iter().map(|s| catalog::local_row(s, m, assumptions)));
        }
        let unfitted = (unfitted.iter())
            .map(|(m, why)| (m.label.clone(), *why))
            .collect();
        let summary = validation::summarise(&validation);
        let mut cal = Calibration {
            used: resolved.len(),
            refs,
            model,
            validation,
            summary,
            sized,
            rows,
            assumptions,
            locals: fitted,
            unfitted,
            recorded_on,
        };
        // Every chip of the table, without rates where its backend has no published rows to fit.
        let published: Vec<_> = (chips::CHIPS.iter())
            .flat_map(|c| cal.predicted(c, None))
            .collect();
        cal.rows.extend(published);
        cal
    }

    /// The recorded machine with a fit whose weights sat on `chip` through its default
    /// backend: not decodes on an Apple chip's CPU (`-ngl 0`) for questions about its GPU.
    pub fn recorded(&self, chip: &chips::Chip) -> Option<&local::Local> {
        let on_host = calib::default_backend(chip) == "CPU";
        self.locals
            .iter()
            .find(|l| l.chip.as_deref() == Some(chip.name) && (on_host || l.backend != "CPU"))
    }

    /// The summary of one group ("tg all", "pp Metal dense"), if it has rows.
    pub fn group(&self, name: &str) -> Option<&validation::ErrorSummary> {
        self.summary.iter().find(|s| s.group == name)
    }

    /// The catalogue on a machine named on the command line: from the decodes of a recorded
    /// machine with the same chip when there is one, else from the published rows.
    pub fn for_machine(&self, spec: &machine::MachineSpec) -> Vec<catalog::CatalogueRow> {
        if let Some(l) = self.recorded(spec.chip) {
            let here = local::Local {
                memory_bytes: Some(catalog::usable(spec.chip, spec.memory_bytes).bytes),
                ..l.clone()
            };
            let row = |s| catalog::local_row(s, &here, self.assumptions);
            return self.sized.iter().map(row).collect();
        }
        self.predicted(spec.chip, Some(spec.memory_bytes))
    }

    /// The catalogue on `chip` with `memory` bytes (when known), predicted by the fit to the
    /// published rows.
    fn predicted(&self, chip: &chips::Chip, memory: Option<u64>) -> Vec<catalog::CatalogueRow> {
        let row = |s| catalog::row(s, chip, memory, &self.model, &self.refs, self.assumptions);
        self.sized.iter().map(|s| self.caveat(row(s))).collect()
    }

    /// A row predicted by a backend's fit to the published rows, with that fit's error on
    /// runner's own decodes of the same kind (dense or MoE) on chips of the table in its basis
    /// when there are some and the row's chip is not one the fit was made from: a fit those
    /// decodes contradict says so wherever it is used.
    fn caveat(&self, mut r: catalog::CatalogueRow) -> catalog::CatalogueRow {
        let kind = if r.moe { "MoE" } else { "dense" };
        let group = format!("tg recorded {} {kind}", r.backend);
        let error = self
            .group(&group)
            .and_then(|g| Some((g.median_abs_error?, g.predicted)));
        let fitted_here = self
            .refs
            .iter()
            .any(|x| x.backend == r.backend && x.chip().is_some_and(|c| c.name == r.chip));
        let on: Vec<&str> = self
            .recorded_on
            .iter()
            .filter(|(b, _)| *b == r.backend)
            .map(|(_, c)| c.as_str())
            .collect();
        if let (catalog::Confidence::Predicted, Some((e, n)), false) =
            (r.confidence, error, fitted_here)
        {
            r.basis.push_str(&format!(
                "; this {} fit is off by a median of {:.0} % on runner's own {kind} decodes on \
                 {} (n={n}, `runner guide --validate`)",
                r.backend,
                e * 100.0,
                on.join(", ")
            ));
        }
        r
    }
}

impl Guide {
    pub fn measured(&self) -> impl Iterator<Item = &GuideRow> {
        self.rows
            .iter()
            .filter(|r| r.status == rows::Status::Measured)
    }

    pub fn predicted(&self) -> impl Iterator<Item = &GuideRow> {
        self.rows
            .iter()
            .filter(|r| r.status == rows::Status::Predicted)
    }
}

/// Builds the guide from records and reference rows.
pub fn build(
    source: &str,
    records: &Records,
    published: &[Published],
    default_efficiency: f64,
) -> Guide {
    let all: Vec<Obs> = obs::all(records);
    let machines = rows::machines(&all);
    let machine = |f: &obs::Fingerprint, weights| {
        machines
            .iter()
            .find(|m| m.fingerprint == *f && m.weights == weights)
    };
    let mut measured: Vec<GuideRow> = rows::group(&all)
        .into_iter()
        .filter_map(|(key, os)| Some(rows::measured(key, &os, machine(&key.machine, key.site())?)))
        .collect();
    // Layer-scaled synthetic runs of the same model, extrapolated to its full depth.
    measured.extend(
        crate::report::depth::full_depth(&records.bench)
            .iter()
            .filter(|f| f.phase == "generation")
            .filter_map(|f| Some(rows::extrapolated(f, machine(&f.machine, f.weights)?))),
    );
    sort_rows(&mut measured);
    let profiles = predict::profiles(&measured);
    // Recorded machines only: the models measured here are small ones, and predicting them on
    // other machines says nothing a user asks. The catalogue rows cover other machines.
    let locals = local_models(&machines, &measured);
    let mut predicted =
        predict::predictions(&machines, &locals, &profiles, &measured, default_efficiency);
    sort_rows(&mut predicted);
    measured.extend(predicted);
    Guide {
        source: source.to_string(),
        files: records.files.len(),
        bench_records: records.bench.len(),
        requests: records.requests.len(),
        failed_cells: records.failures.len(),
        span: records.time_span(),
        machines,
        locals,
        rows: measured,
        published: published.to_vec(),
        default_efficiency,
        calibration: None,
    }
}

fn sort_rows(rows: &mut [GuideRow]) {
    fn key(r: &GuideRow) -> impl Ord + '_ {
        (&r.machine, &r.fingerprint, &r.model, &r.quant, &r.backend)
    }
    rows.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// Each machine with records and a bandwidth to hold its decodes against (measured here;
/// for weights on a GPU, the GPU's published one), with its idle native decodes (their bytes
/// per token known) and the catalogue entries measured or extrapolated there.
pub fn local_models(machines: &[MachineSummary], all: &[GuideRow]) -> Vec<local::Local> {
    let mut out = Vec::new();
    for m in machines {
        let Some((gbps, gbps_from)) = m.decode_gbps() else {
            continue;
        };
        let mine = || {
            all.iter()
                .filter(|r| r.fingerprint == m.id && r.weights == Some(m.weights))
                .filter(|r| r.backend.is_native())
        };
        let points: Vec<local::LocalPoint> = mine()
            .filter(|r| r.status == rows::Status::Measured && r.busy == 0)
            .filter_map(|r| {
                Some(local::LocalPoint {
                    model: r.model.clone(),
                    quant: r.quant.clone(),
                    work: calib::Work {
                        bytes_per_token: r.bytes_per_token? as f64,
                        flops_per_token: 0.0,
                        moe: r.moe,
                    },
                    // A rate of 0 (a record the plausibility check let through) would put
                    // every prediction of the machine at 0.
                    tps: r.decode_tps.filter(|t| t.is_finite() && *t > 0.0)?,
                })
            })
            .collect();
        let busy_decodes = mine()
            .filter(|r| r.status == rows::Status::Measured && r.busy > 0)
            .filter(|r| r.decode_tps.is_some())
            .count();
        // A figure measured on a busy machine is not shown as this machine's.
        let known = mine()
            .filter(|r| r.status != rows::Status::Predicted && r.busy == 0)
            .filter_map(|r| {
                let entry = r.model.strip_suffix(" (synthetic)")?;
                let how = match r.status {
                    rows::Status::Extrapolated => r.basis.clone(),
                    _ => format!("measured here: {}", r.decode_from),
                };
                Some((
                    entry.to_string(),
                    r.quant.clone(),
                    r.decode_tps?,
                    r.status == rows::Status::Extrapolated,
                    how,
                ))
            })
            .collect();
        out.push(local::Local {
            label: m.label.clone(),
            id: m.id.clone(),
            chip: m.chip.clone(),
            // Weights on the host (no accelerator, or `-ngl 0`) were read by the CPU.
            backend: match m.weights {
                obs::Weights::Cpu => "CPU",
                _ => "native",
            }
            .to_string(),
            gbps,
            gbps_from,
            memory_bytes: m.memory_bytes(),
            fit: calib::fit_decode(&local::Local::obs(&points, gbps)),
            points,
            busy_decodes,
            known,
        });
    }
    out
}

/// Reads the results directory's records and reference rows, and builds the guide with
/// `efficiency` for machines without records and the calibration of the reference rows and
/// of the recorded machines, for `runner guide` and `runner report`. A missing directory, a
/// file under it that cannot be read (not a regular file, say) and a damaged reference CSV are
/// usage errors.
pub fn load(
    results: &std::path::Path,
    efficiency: f64,
    assumptions: catalog::Assumptions,
) -> anyhow::Result<(Records, Guide)> {
    if !results.is_dir() {
        anyhow::bail!(Invalid(format!(
            "--results {}: not a directory (run a sweep or bench first, or name the directory)",
            results.display()
        )));
    }
    let records = crate::record::read::load(results).map_err(|e| Invalid(e.to_string()))?;
    records.warn_unreadable(results);
    let published = crate::report::reference::load(results).map_err(|e| Invalid(e.to_string()))?;
    let mut guide = build(
        &results.display().to_string(),
        &records,
        &published,
        efficiency,
    );
    let refs = calib::load(results).map_err(Invalid)?;
    let sized = catalog::sized_catalogue().map_err(anyhow::Error::msg)?;
    guide.calibration = Some(Calibration::new(refs, sized, assumptions, &guide.locals));
    Ok((records, guide))
}

/// Refuses an output path that names a file `runner guide` or `runner report` reads under
/// `results`, before anything is written: a file its records came from, or either reference
/// CSV (there already or not); or a file of records anywhere; or a directory.
pub fn refuse_overwrite(
    records: &Records,
    results: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), Invalid> {
    let refuse = |why: &str| Err(Invalid(format!("{}: {why}", out.display())));
    if out.is_dir() {
        return refuse("is a directory; name a file to write");
    }
    records.refuse_overwrite(results, out)?;
    if crate::record::read::holds_records(out) {
        return refuse("holds records (a results file); write to another file");
    }
    for reference in [crate::report::reference::PATH, calib::PATH] {
        if crate::util::fs::same_file(&results.join(reference), out) {
            return refuse("holds reference figures this reads; write to another file");
        }
    }
    Ok(())
}

/// What `runner guide` is asked.
#[derive(Debug, Clone)]
pub struct GuideOptions {
    /// Directory read recursively for records and reference/published.csv.
    pub results: std::path::PathBuf,
    pub output: Option<std::path::PathBuf>,
    /// Answer "what should I run on this machine?" for a chip and memory size.
    pub machine: Option<String>,
    /// Share of the published peak bandwidth assumed for machines without records.
    pub efficiency: f64,
    /// Print the leave-one-out validation of the prediction model instead of writing the guide.
    pub validate: bool,
    /// Decode rate (tok/s) a model must reach to be recommended as interactive.
    pub interactive: f64,
    pub assumptions: catalog::Assumptions,
}

/// `runner guide`: writes the guide and its CSV (or, with `--machine`, the answer) and returns
/// what to print on stdout.
pub fn run(args: &GuideOptions) -> anyhow::Result<String> {
    use crate::report::write_atomic;
    let spec = args.machine.as_deref().map(machine::parse).transpose();
    let spec = spec.map_err(Invalid)?;
    let (records, guide) = load(&args.results, args.efficiency, args.assumptions)?;
    if let (true, Some(cal)) = (args.validate, &guide.calibration) {
        return Ok(render::validation(cal));
    }
    if let Some(spec) = spec {
        let text = answer(&guide, &spec, args.interactive);
        return match &args.output {
            Some(path) => {
                refuse_overwrite(&records, &args.results, path)?;
                write_atomic(path, &text)?;
                Ok(format!("wrote {}\n", path.display()))
            }
            None => Ok(text),
        };
    }
    let md_path = args
        .output
        .clone()
        .unwrap_or_else(|| args.results.join("hardware-guide.md"));
    // A device or FIFO (`/dev/null`, `/dev/stdout`) takes the Markdown; CSV files beside it
    // would land in /dev, or beside a FIFO that nobody reads them from.
    if let Ok(crate::util::fs::OutTarget::Special(_)) = crate::util::fs::out_target(&md_path) {
        write_atomic(&md_path, &markdown(&guide, "hardware-guide-catalogue.csv"))?;
        return Ok(format!(
            "wrote {} (not a regular file: the CSVs are written only beside one)\n",
            md_path.display()
        ));
    }
    // Beside the file the Markdown lands in (`/dev/stdout` redirected to a file: that file).
    let md_path = match crate::util::fs::out_target(&md_path) {
        Ok(crate::util::fs::OutTarget::File(real)) => real,
        _ => md_path,
    };
    let csv_path = md_path.with_extension("csv");
    if csv_path == md_path {
        anyhow::bail!(Invalid(format!(
            "-o {}: name the guide with an extension other than .csv (the CSV goes beside it)",
            md_path.display()
        )));
    }
    // `hardware-guide.md` → `hardware-guide-catalogue.csv`.
    let stem = md_path.file_stem().unwrap_or_default().to_string_lossy();
    let catalogue_name = format!("{stem}-catalogue.csv");
    let catalogue_path = md_path.with_file_name(&catalogue_name);
    for path in [&md_path, &csv_path, &catalogue_path] {
        refuse_overwrite(&records, &args.results, path)?;
    }
    write_atomic(&md_path, &markdown(&guide, &catalogue_name))?;
    write_atomic(&csv_path, &rows_csv(&guide.rows)?)?;
    let catalogue = guide.calibration.iter().flat_map(|c| &c.rows);
    write_atomic(&catalogue_path, &rows_csv(catalogue)?)?;
    Ok(format!(
        "wrote {}, {} and {}: {} machine(s), {} measured and {} predicted row(s), {} published\n",
        md_path.display(),
        csv_path.display(),
        catalogue_path.display(),
        guide.machines.len(),
        guide.measured().count(),
        guide.predicted().count(),
        guide.published.len()
    ))
}
