//! `runner bench`: resolves the models, runs every planned test and records it.

use crate::cli::BenchConfig;
use crate::gguf::GgufFile;
use crate::hw::load::{self, LoadMonitor, Window};
use crate::llama::context::Context;
use crate::llama::model::{self, LoadOptions, LoadedModel};
use crate::llama::workload::{self, Inputs, Workload};
use crate::measure::bandwidth::{self, DecodeReads, Peaks};
use crate::models;
use crate::plan::{self, Instance};
use crate::record::{self, BuildInfo, LoadReport, MachineInfo, Record, SCHEMA_VERSION};
use crate::report::{self, Format};
use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use llama_cpp_2::llama_backend::LlamaBackend;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bad input from the user (flags, files, names): reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What a bench run produced.
#[derive(Debug)]
pub struct Outcome {
    pub records: Vec<Record>,
    pub failures: usize,
}

/// Everything a test needs besides its instance.
struct Env<'a> {
    cfg: &'a BenchConfig,
    build: BuildInfo,
    machine: MachineInfo,
    monitor: &'a LoadMonitor,
    bar: ProgressBar,
    /// The bandwidths decode rates are held against.
    peaks: Peaks,
}

/// Resolves and validates every model, then runs the plan.
pub fn run(cfg: &BenchConfig, cache: &Path, verbose: bool) -> Result<Outcome> {
    let monitor = LoadMonitor::start(load::SAMPLE_INTERVAL);
    let files = resolve_models(&cfg.models, cache)?;
    let instances = plan::expand(cfg, files.len());
    plan::check(&instances).map_err(UsageError)?;
    let backend = crate::llama::init(verbose)?;
    let build = crate::llama::info::build_info();
    let machine = crate::hw::machine::fingerprint();
    let peaks = crate::hw::peak::peaks(cache, &machine, &build, cfg.n_gpu_layers, true);
    load::check_idle(&monitor, cfg.busy_threshold, cfg.require_idle)?;
    let env = Env {
        cfg,
        build,
        machine,
        monitor: &monitor,
        bar: progress_bar(cfg, &instances),
        peaks,
    };
    let mut out = Outcome {
        records: Vec::new(),
        failures: 0,
    };
    for (index, file) in files.into_iter().enumerate() {
        let group: Vec<&Instance> = instances.iter().filter(|i| i.model == index).collect();
        run_model(&env, &backend, file, &group, &mut out)?;
    }
    env.bar.finish_and_clear();
    Ok(out)
}

/// A model file named on the command line, validated.
struct ModelFile {
    path: PathBuf,
    gguf: GgufFile,
    /// The sha256 verified when a known model was fetched.
    sha256: Option<String>,
}

/// Resolves names to files and validates every file up front, so a bad one fails before any
/// long test runs.
fn resolve_models(names: &[String], cache: &Path) -> Result<Vec<ModelFile>> {
    let opts = models::FetchOptions::default();
    let mut out = Vec::new();
    for name in names {
        let path = models::resolve(name, cache, &opts).map_err(classify_resolve)?;
        let gguf = GgufFile::open(&path).map_err(|e| UsageError(e.to_string()))?;
        let sha256 = models::verified_sha256(&path, cache);
        out.push(ModelFile { path, gguf, sha256 });
    }
    Ok(out)
}

/// A model that cannot be resolved: an unknown name is bad input (exit 2), a failed fetch is not.
pub(crate) fn classify_resolve(e: models::ResolveError) -> anyhow::Error {
    match e {
        models::ResolveError::Unknown { .. } => UsageError(e.to_string()).into(),
        other => anyhow::Error::new(other),
    }
}

fn progress_bar(cfg: &BenchConfig, instances: &[Instance]) -> ProgressBar {
    let per_test = u64::from(cfg.repetitions) + u64::from(cfg.warmup);
    let total = per_test * instances.len() as u64;
    let target = if cfg.progress {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs (eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn run_model(
    env: &Env<'_>,
    backend: &LlamaBackend,
    file: ModelFile,
    group: &[&Instance],
    out: &mut Outcome,
) -> Result<()> {
    let path = &file.path;
    env.bar
        .set_message(format!("loading {}", display_name(path)));
    let opts = LoadOptions {
        n_gpu_layers: env.cfg.n_gpu_layers,
        use_mmap: env.cfg.use_mmap,
    };
    let reads = DecodeReads::from_gguf(&file.gguf);
    let mut loaded = match model::load_validated(backend, path, file.gguf, opts) {
        Ok(m) => m,
        Err(e) => {
            env.bar.suspend(|| eprintln!("error: {e}"));
            out.failures += group.len();
            env.bar.inc(
                group.len() as u64 * (u64::from(env.cfg.repetitions) + u64::from(env.cfg.warmup)),
            );
            return Ok(());
        }
    };
    loaded.info.sha256 = match (file.sha256, env.cfg.sha256) {
        (Some(h), _) => Some(h),
        (None, true) => {
            Some(models::sha256_file(path).with_context(|| format!("hashing {}", path.display()))?)
        }
        (None, false) => None,
    };
    for inst in group {
        match run_instance(env, &loaded, &reads, inst) {
            Ok(rec) => {
                out.records.push(rec);
                write_output(env.cfg, &out.records)?;
            }
            Err(e) => {
                env.bar.suspend(|| {
                    eprintln!("error: {} {}: {e:#}", loaded.info.file_name, inst.test.name)
                });
                out.failures += 1;
            }
        }
    }
    Ok(())
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn write_output(cfg: &BenchConfig, records: &[Record]) -> Result<()> {
    if let Some(path) = &cfg.output {
        let text = cfg.format.exporter().render(records)?;
        report::write_atomic(path, &text)?;
    }
    Ok(())
}

fn run_instance(
    env: &Env<'_>,
    loaded: &LoadedModel,
    reads: &DecodeReads,
    inst: &Instance,
) -> Result<Record> {
    let s = &inst.settings;
    env.bar.set_message(format!(
        "{} {} t={}",
        loaded.info.file_name, inst.test.name, s.threads
    ));
    let mut ctx = Context::new(&loaded.model, s)?;
    let mut memory = ctx.memory().unwrap_or_default();
    let inputs = Inputs::new(&inst.workload, loaded.info.n_vocab, ctx.bos());
    let before_from = Instant::now();
    if inst.test.warmup {
        let warm = Workload {
            n_gen: inst.workload.n_gen.min(2),
            ..inst.workload
        };
        workload::run(&mut ctx, &warm, &inputs)?;
        env.bar.inc(1);
    }
    let start = Instant::now();
    let mut samples = Vec::with_capacity(inst.test.repetitions as usize);
    for _ in 0..inst.test.repetitions {
        let trace = workload::run(&mut ctx, &inst.workload, &inputs)?;
        samples.push(trace.to_sample(&inst.workload));
        env.bar.inc(1);
    }
    let end = Instant::now();
    let before = env.monitor.window(
        before_from
            .checked_sub(Duration::from_secs(2))
            .unwrap_or(before_from),
        start,
    );
    let during = env.monitor.window(start, end);
    memory.peak_rss_bytes = during.peak_rss.max(load::current_rss());
    let load = load_report(env, &before, &during, &inst.test.name);
    let engine = s.applied(&ctx, env.cfg.use_mmap, env.cfg.n_gpu_layers);
    let results = crate::measure::results(&samples);
    let bandwidth = results.gen_tps.as_ref().map(|tps| {
        let w = &inst.workload;
        let depth = f64::from(w.n_depth) + f64::from(w.n_prompt) + f64::from(w.n_gen) / 2.0;
        let bytes = reads.at_depth(depth, &engine.type_k, &engine.type_v);
        bandwidth::figures(&bytes, tps.median, &env.peaks)
    });
    Ok(Record {
        schema: SCHEMA_VERSION,
        time: record::now_rfc3339(),
        runner_version: env!("CARGO_PKG_VERSION").to_string(),
        test: inst.test.clone(),
        model: loaded.info.clone(),
        engine,
        build: env.build.clone(),
        machine: env.machine.clone(),
        memory,
        load,
        results,
        bandwidth,
        samples,
    })
}

fn load_report(env: &Env<'_>, before: &Window, during: &Window, test: &str) -> LoadReport {
    let threshold = env.cfg.busy_threshold;
    let busy = before.mean_other > threshold || during.mean_other > threshold;
    let top_processes = if busy {
        load::top_processes(5, 5.0)
    } else {
        Vec::new()
    };
    if busy {
        env.bar.suspend(|| {
            eprintln!(
                "warning: {test}: other processes kept {:.2} cores busy on average around it (peak {:.2}){}; its figures are suspect",
                during.mean_other.max(before.mean_other),
                during.max_other.max(before.max_other),
                load::culprits(&top_processes)
            )
        });
    }
    LoadReport {
        before_other_cores: before.mean_other,
        during_other_cores_mean: during.mean_other,
        during_other_cores_max: during.max_other,
        busy,
        top_processes,
    }
}

/// Prints the final results on stdout: the table when results also went to a file,
/// otherwise the chosen format.
pub fn print(cfg: &BenchConfig, records: &[Record]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let format = if cfg.output.is_some() {
        Format::Table
    } else {
        cfg.format
    };
    let text = format.exporter().render(records)?;
    print!("{text}");
    Ok(())
}
