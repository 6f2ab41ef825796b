//! `runner profile`: decode with llama.cpp's graph-evaluation callback and attribute the time
//! and bytes of each token to op categories; for MoE models, expert-selection statistics and
//! the routing overhead against a dense reference at equal active bytes.

pub mod args;
pub mod dense;
pub mod quick;
pub mod report;
pub mod runs;
pub mod table;

use crate::bench::{classify_resolve, UsageError};
use crate::gguf::GgufFile;
use crate::hw::load::{self, LoadMonitor};
use crate::llama::context::Context;
use crate::llama::model::{self, LoadOptions, LoadedModel};
use crate::models;
use crate::record::{self, EngineSettings, LoadReport, ModelInfo, SCHEMA_VERSION};
use anyhow::{Context as _, Result};
use args::{ProfileConfig, ProfileFormat, ProfilePlan};
use dense::DenseRef;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use report::{ModelProfile, ProfileReport};
use std::path::Path;
use std::time::Instant;

/// Profiles the configured model (and its dense reference, for an MoE model).
pub fn run(cfg: &ProfileConfig, cache: &Path, verbose: bool) -> Result<ProfileReport> {
    let monitor = LoadMonitor::start(load::SAMPLE_INTERVAL);
    let path = models::resolve(&cfg.model, cache, &models::FetchOptions::default())
        .map_err(classify_resolve)?;
    let gguf = GgufFile::open(&path).map_err(|e| UsageError(e.to_string()))?;
    let mut notes = Vec::new();
    let reference = if dense::is_moe(&gguf) {
        Some(dense::find(cfg.dense.as_deref(), &path, &gguf, cache)?)
    } else {
        if cfg.dense.is_some() {
            notes.push("--dense ignored: the model is dense".to_string());
        }
        None
    };
    let backend = crate::llama::init(verbose)?;
    load::check_idle(&monitor, cfg.busy_threshold, cfg.require_idle)?;
    let start = Instant::now();
    let subject = load(&backend, &path, gguf, &cfg.plan)?;
    let (dense_loaded, dense_source, reason) = load_dense(&backend, reference, &cfg.plan)?;
    let mut models = vec![(&subject.loaded.model, subject.loaded.info.clone())];
    if let Some(d) = &dense_loaded {
        models.push((&d.loaded.model, d.loaded.info.clone()));
    }
    let (mut profiles, engine) = profile_loaded(&models, &cfg.plan)?;
    let dense = (profiles.len() > 1).then(|| profiles.remove(1));
    let mut moe = profiles
        .pop()
        .ok_or_else(|| anyhow::anyhow!("nothing was profiled"))?;
    moe.upcycled = subject.upcycled;
    if let Some(why) = &reason {
        notes.push(format!(
            "{why}; the router and expert shares are reported alone"
        ));
    }
    let routing = report::routing(
        &moe,
        dense.as_ref(),
        dense.as_ref().map(|d| d.model.path.clone()),
        reason,
    );
    let window = monitor.window(start, Instant::now());
    Ok(ProfileReport {
        schema: SCHEMA_VERSION,
        time: record::now_rfc3339(),
        runner_version: env!("CARGO_PKG_VERSION").to_string(),
        model: moe,
        dense,
        dense_source,
        routing,
        engine,
        build: crate::llama::info::build_info(),
        machine: crate::hw::machine::fingerprint(),
        load: LoadReport {
            before_other_cores: 0.0,
            during_other_cores_mean: window.mean_other,
            during_other_cores_max: window.max_other,
            busy: window.mean_other > cfg.busy_threshold,
            top_processes: Vec::new(),
        },
        notes,
    })
}

/// A model loaded for profiling, with where it came from if it was upcycled.
struct Loaded {
    loaded: LoadedModel,
    upcycled: Option<report::Upcycled>,
}

fn load(backend: &LlamaBackend, path: &Path, gguf: GgufFile, plan: &ProfilePlan) -> Result<Loaded> {
    let opts = LoadOptions {
        n_gpu_layers: plan.n_gpu_layers,
        use_mmap: true,
    };
    let upcycled = crate::moe::Provenance::read(&gguf).map(|p| report::Upcycled {
        source_name: p.source_name,
        router: p.router,
        seed: p.seed,
    });
    let loaded = model::load_validated(backend, path, gguf, opts)?;
    Ok(Loaded { loaded, upcycled })
}

/// The dense reference, loaded, and where it came from; or why there is none.
fn load_dense(
    backend: &LlamaBackend,
    reference: Option<DenseRef>,
    plan: &ProfilePlan,
) -> Result<(Option<Loaded>, Option<String>, Option<String>)> {
    Ok(match reference {
        Some(DenseRef::Found { path, how }) => {
            let g =
                GgufFile::open(&path).map_err(|e| UsageError(format!("dense reference: {e}")))?;
            let d = load(backend, &path, g, plan)
                .with_context(|| format!("loading the dense reference {}", path.display()))?;
            (Some(d), Some(format!("{} ({how})", path.display())), None)
        }
        Some(DenseRef::Missing(why)) => (None, None, Some(why)),
        None => (None, None, None),
    })
}

/// Runs the plan's phases on loaded models, each in a plain context and in a profiling
/// context with the same settings, all four (or two) interleaved; a profile per model, and
/// the engine settings llama.cpp applied.
pub fn profile_loaded(
    models: &[(&LlamaModel, ModelInfo)],
    plan: &ProfilePlan,
) -> Result<(Vec<ModelProfile>, EngineSettings)> {
    let prompts: Vec<runs::Prompts> = models
        .iter()
        .map(|(m, _)| runs::Prompts::new(m, plan))
        .collect();
    let mut subjects = Vec::new();
    for ((m, _), p) in models.iter().zip(&prompts) {
        subjects.push(runs::Subject::new(Context::new(m, &plan.settings)?, p));
        subjects.push(runs::Subject::new(Context::profiled(m, &plan.settings)?, p));
    }
    let engine = subjects
        .first()
        .map(|s| plan.settings.applied(s.context(), true, plan.n_gpu_layers))
        .ok_or_else(|| anyhow::anyhow!("no model to profile"))?;
    runs::run_interleaved(&mut subjects, plan)?;
    let profiles = models
        .iter()
        .zip(subjects.chunks(2))
        .map(|((_, info), pair)| {
            report::model_profile(info.clone(), plan, &pair[0].runs, &pair[1].runs)
        })
        .collect();
    Ok((profiles, engine))
}

/// Prints the report in the chosen format.
pub fn print(cfg: &ProfileConfig, r: &ProfileReport) -> Result<()> {
    match cfg.format {
        ProfileFormat::Json => println!("{}", serde_json::to_string_pretty(r)?),
        ProfileFormat::Table => print!("{}", table::render(r)),
    }
    if r.load.busy {
        eprintln!(
            "warning: other processes kept {:.2} cores busy on average while profiling; the \
             figures are suspect",
            r.load.during_other_cores_mean
        );
    }
    Ok(())
}
