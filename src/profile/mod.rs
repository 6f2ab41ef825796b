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
use crate::llama::model::{self, LoadOptions};
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
    let (moe, engine) = profile_model(&backend, &path, gguf, &cfg.plan)?;
    let (dense, dense_source, reason) = profile_dense(&backend, reference, &cfg.plan)?;
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

/// The dense reference's profile and where it came from, or why there is none.
fn profile_dense(
    backend: &LlamaBackend,
    reference: Option<DenseRef>,
    plan: &ProfilePlan,
) -> Result<(Option<ModelProfile>, Option<String>, Option<String>)> {
    Ok(match reference {
        Some(DenseRef::Found { path, how }) => {
            let g =
                GgufFile::open(&path).map_err(|e| UsageError(format!("dense reference: {e}")))?;
            let (d, _) = profile_model(backend, &path, g, plan)
                .with_context(|| format!("profiling the dense reference {}", path.display()))?;
            (Some(d), Some(format!("{} ({how})", path.display())), None)
        }
        Some(DenseRef::Missing(why)) => (None, None, Some(why)),
        None => (None, None, None),
    })
}

/// Loads a model and runs the plan's phases in a plain context, then in a profiling context
/// with the same settings.
pub fn profile_model(
    backend: &LlamaBackend,
    path: &Path,
    gguf: GgufFile,
    plan: &ProfilePlan,
) -> Result<(ModelProfile, EngineSettings)> {
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
    let (mut profile, engine) = profile_loaded(&loaded.model, loaded.info, plan)?;
    profile.upcycled = upcycled;
    Ok((profile, engine))
}

/// Runs the plan's phases on a loaded model in a plain context, then in a profiling context
/// with the same settings.
pub fn profile_loaded(
    model: &LlamaModel,
    info: ModelInfo,
    plan: &ProfilePlan,
) -> Result<(ModelProfile, EngineSettings)> {
    let prompts = runs::Prompts::new(model, plan);
    let (plain, engine) = {
        let mut ctx = Context::new(model, &plan.settings)?;
        let engine = plan.settings.applied(&ctx, true, plan.n_gpu_layers);
        (runs::run_phases(&mut ctx, plan, &prompts)?, engine)
    };
    let profiled = {
        let mut ctx = Context::profiled(model, &plan.settings)?;
        runs::run_phases(&mut ctx, plan, &prompts)?
    };
    let profile = report::model_profile(info, plan, &plain, &profiled);
    Ok((profile, engine))
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
