//! One sweep cell, run in a child process: make the quantization, load it, run every pending
//! prompt of the scenarios through it, grade the answers and append each record as it completes.
//! An abort or out-of-memory in llama.cpp ends this process only; the parent records the cell as
//! failed and goes on.

use super::results::ResultsFile;
use super::spec::{CellSpec, Progress};
use crate::hw::load::{self, LoadMonitor};
use crate::llama::context::{Context, ContextSettings, KvType};
use crate::llama::generate::{self, GenerateOptions, Generation, StopReason};
use crate::llama::model::{self, LoadOptions, LoadedModel};
use crate::measure::bandwidth::{self, DecodeReads, Peaks};
use crate::measure::histogram::LatencyHistogram;
use crate::record::{
    self, Bandwidth, CellInfo, LoadReport, RequestRecord, SweepRecord, SCHEMA_VERSION,
};
use crate::scenario::{self, Prompt, Scenario};
use anyhow::{Context as _, Result};
use llama_cpp_2::llama_backend::LlamaBackend;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A prompt waiting to run, with its rendered text.
struct Pending<'a> {
    scenario: &'a Scenario,
    prompt: &'a Prompt,
    text: String,
    template: String,
    n_tokens: u32,
}

/// Runs the cell described by the spec file; returns when every pending prompt is recorded.
pub fn run(spec_path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: CellSpec = serde_json::from_str(&text).context("reading the cell specification")?;
    let backend = crate::llama::init(spec.verbose)?;
    let (path, mut info) = prepare_model(&backend, &spec)?;
    let loaded = model::load(
        &backend,
        &path,
        LoadOptions {
            n_gpu_layers: spec.engine.n_gpu_layers,
            use_mmap: true,
        },
    )?;
    emit(&Progress::Loaded {
        quantize_ms: info.quantize_ms,
        load_ms: loaded.info.load_ms,
    })?;
    let scenarios = spec
        .scenarios
        .iter()
        .map(|p| scenario::load(p).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let pending = pending(&spec, &scenarios, &loaded)?;
    if pending.is_empty() {
        return Ok(());
    }
    if loaded.info.expert_count.is_some() {
        let plan = crate::profile::quick::quick_plan(
            spec.engine.threads,
            spec.engine.flash_attn(),
            spec.engine.n_gpu_layers,
        );
        let routing =
            crate::profile::quick::cell_routing(&backend, &path, &loaded, &plan, &spec.cache_dir);
        info.routing = Some(routing);
    }
    let settings = context_settings(&spec, &loaded, &pending);
    let mut ctx = Context::new(&loaded.model, &settings)?;
    info.model = loaded.info.clone();
    info.engine = settings.applied(&ctx, true, spec.engine.n_gpu_layers);
    info.memory = ctx.memory().unwrap_or_default();
    let meter = Meter {
        reads: DecodeReads::from_gguf(&crate::gguf::GgufFile::open(&path)?),
        peaks: crate::hw::peak::peaks(
            &spec.cache_dir,
            &info.machine,
            &info.build,
            spec.engine.n_gpu_layers,
            false,
        ),
        type_k: info.engine.type_k.clone(),
        type_v: info.engine.type_v.clone(),
    };
    let mut out = ResultsFile::append_to(&spec.results)?;
    let monitor = LoadMonitor::start(load::SAMPLE_INTERVAL);
    for p in &pending {
        let start = Instant::now();
        let mut rec = run_prompt(&mut ctx, &loaded, &spec, &info, p);
        rec.load = load_report(&monitor, start, spec.busy_threshold);
        rec.bandwidth = rec.decode_tps.map(|tps| meter.figures(&rec, tps));
        let pass = rec.pass;
        out.append(&SweepRecord::Request(Box::new(rec)))?;
        emit(&Progress::Request {
            scenario: p.scenario.name.clone(),
            prompt: p.prompt.id.clone(),
            pass,
        })?;
    }
    Ok(())
}

/// What one decoded token of this cell's model reads, and the peaks to hold it against.
struct Meter {
    reads: DecodeReads,
    peaks: Peaks,
    type_k: String,
    type_v: String,
}

impl Meter {
    /// Bandwidth of a request's decode: on average a decoded token attends to the prompt and
    /// half the output.
    fn figures(&self, rec: &RequestRecord, decode_tps: f64) -> Bandwidth {
        let depth = f64::from(rec.prompt_tokens) + f64::from(rec.output_tokens) / 2.0;
        let bytes = self.reads.at_depth(depth, &self.type_k, &self.type_v);
        bandwidth::figures(&bytes, decode_tps, &self.peaks)
    }
}

/// Prints a progress event for the parent. Fails when the parent is gone (its end of the pipe
/// closed), so an orphaned cell stops instead of running on.
fn emit(p: &Progress) -> Result<()> {
    let line = serde_json::to_string(p)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("the sweep that started this cell has gone")
}

/// The file the cell measures: the source, or its quantization (made or taken from the cache).
fn prepare_model(backend: &LlamaBackend, spec: &CellSpec) -> Result<(PathBuf, CellInfo)> {
    let mut info = CellInfo {
        source_path: spec.source.display().to_string(),
        source_sha256: spec.source_sha256.clone(),
        build: crate::llama::info::build_info(),
        machine: crate::hw::machine::fingerprint(),
        ..Default::default()
    };
    let Some(name) = &spec.quant else {
        return Ok((spec.source.clone(), info));
    };
    let qt = crate::quant::parse(name).map_err(anyhow::Error::msg)?;
    let sha = match &spec.source_sha256 {
        Some(s) => s.clone(),
        None => crate::llama::quantize::source_sha256(&spec.source, &spec.cache_dir)?,
    };
    let q = crate::llama::quantize::quantize_cached(
        backend,
        &spec.source,
        &sha,
        qt,
        &spec.cache_dir,
        spec.engine.threads,
    )?;
    info.source_sha256 = Some(sha);
    info.requantized = q.requantized;
    info.quantize_cached = q.cached;
    info.quantize_ms = (!q.cached).then_some(q.elapsed.as_secs_f64() * 1000.0);
    Ok((q.path, info))
}

/// The prompts not yet recorded, rendered through the model's chat template.
fn pending<'a>(
    spec: &CellSpec,
    scenarios: &'a [Scenario],
    loaded: &LoadedModel,
) -> Result<Vec<Pending<'a>>> {
    let mut out = Vec::new();
    for sc in scenarios {
        let limit = spec.limit.map_or(usize::MAX, |n| n as usize);
        for prompt in sc.prompts.iter().take(limit) {
            let key = (sc.name.clone(), prompt.id.clone());
            if spec.done.contains(&key) {
                continue;
            }
            let (text, template) = generate::render_prompt(&loaded.model, prompt, spec.raw)?;
            let n_tokens = loaded
                .model
                .vocab()
                .tokenize(text.as_bytes(), true, true)
                .len() as u32;
            out.push(Pending {
                scenario: sc,
                prompt,
                text,
                template,
                n_tokens,
            });
        }
    }
    Ok(out)
}

/// One context for the whole cell, large enough for the longest prompt plus its output limit
/// (never beyond the model's training context), unless `--ctx` fixed it.
fn context_settings(
    spec: &CellSpec,
    loaded: &LoadedModel,
    pending: &[Pending<'_>],
) -> ContextSettings {
    let need = pending
        .iter()
        .map(|p| p.n_tokens.saturating_add(p.prompt.max_tokens))
        .max()
        .unwrap_or(512);
    let train = loaded
        .info
        .context_length
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(u32::MAX);
    let n_ctx = spec.engine.n_ctx.unwrap_or_else(|| need.min(train)).max(64);
    ContextSettings {
        n_ctx,
        n_batch: 2048.min(n_ctx),
        n_ubatch: 512,
        threads: spec.engine.threads,
        threads_batch: spec.engine.threads,
        flash_attn: spec.engine.flash_attn(),
        type_k: KvType::F16,
        type_v: KvType::F16,
    }
}

fn run_prompt(
    ctx: &mut Context<'_>,
    loaded: &LoadedModel,
    spec: &CellSpec,
    info: &CellInfo,
    p: &Pending<'_>,
) -> RequestRecord {
    let opts = GenerateOptions {
        max_tokens: p.prompt.max_tokens,
        stop: p.prompt.stop.clone(),
        sampling: p.prompt.sampling,
        time_limit: p.prompt.time_limit,
    };
    let result = generate::generate(ctx, &loaded.model, &p.text, &p.template, &opts);
    let mut rec = RequestRecord {
        schema: SCHEMA_VERSION,
        time: String::new(),
        runner_version: env!("CARGO_PKG_VERSION").to_string(),
        cell: spec.cell.clone(),
        info: info.clone(),
        scenario: p.scenario.name.clone(),
        scenario_kind: p.scenario.kind.as_str().to_string(),
        prompt_id: p.prompt.id.clone(),
        category: p.prompt.category.clone(),
        pair: p.prompt.pair.clone(),
        template: p.template.clone(),
        prompt_tokens: p.n_tokens,
        output_tokens: 0,
        ttft_ms: None,
        prompt_tps: None,
        decode_tps: None,
        e2e_ms: 0.0,
        llama_ms: 0.0,
        itl_ms: None,
        bandwidth: None,
        stop_reason: "error".into(),
        failed: true,
        error: None,
        text: None,
        verdicts: Vec::new(),
        score: 0.0,
        pass: false,
        load: LoadReport::default(),
        token_ms: Vec::new(),
        error_kind: None,
        server: None,
        http: None,
        cost_usd: None,
        cost_source: None,
    };
    match result {
        Ok(g) => fill_from_generation(&mut rec, &g, p, spec.no_text),
        Err(e) => rec.error = Some(e.to_string()),
    }
    rec.time = record::now_rfc3339();
    rec
}

/// Other load on the machine during the request (and the two seconds before it).
pub(crate) fn load_report(monitor: &LoadMonitor, start: Instant, threshold: f64) -> LoadReport {
    let end = Instant::now();
    let before = monitor.window(
        start.checked_sub(Duration::from_secs(2)).unwrap_or(start),
        start,
    );
    let during = monitor.window(start, end);
    LoadReport {
        before_other_cores: before.mean_other,
        during_other_cores_mean: during.mean_other,
        during_other_cores_max: during.max_other,
        busy: before.mean_other > threshold || during.mean_other > threshold,
        top_processes: Vec::new(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fill_from_generation(rec: &mut RequestRecord, g: &Generation, p: &Pending<'_>, no_text: bool) {
    rec.prompt_tokens = g.prompt_tokens;
    rec.output_tokens = g.output_tokens;
    rec.ttft_ms = g.ttft.map(ms);
    rec.prompt_tps = (!g.prompt_eval.is_zero())
        .then(|| f64::from(g.prompt_tokens) / g.prompt_eval.as_secs_f64());
    rec.e2e_ms = ms(g.e2e);
    rec.llama_ms = ms(g.prompt_eval + g.decode_time);
    rec.token_ms = g.token_times.iter().map(|&d| ms(d)).collect();
    let mut itl = LatencyHistogram::new();
    for w in g.token_times.windows(2) {
        itl.record(w[1].saturating_sub(w[0]));
    }
    rec.itl_ms = itl.summary();
    if let (Some(first), Some(last)) = (g.token_times.first(), g.token_times.last()) {
        let span = last.saturating_sub(*first);
        if g.token_times.len() >= 2 && !span.is_zero() {
            rec.decode_tps = Some((g.token_times.len() - 1) as f64 / span.as_secs_f64());
        }
    }
    rec.stop_reason = serde_json::to_value(g.stop_reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    rec.failed = g.stop_reason == StopReason::TimeLimit;
    if rec.failed {
        rec.error = Some(format!(
            "slower than the time limit of {:.1} s",
            p.prompt.time_limit.as_secs_f64()
        ));
    }
    rec.verdicts = scenario::grade(&g.text, &p.prompt.graders);
    let all_pass = rec.verdicts.iter().all(|v| v.pass);
    rec.pass = !rec.failed && all_pass;
    rec.score = if rec.failed {
        0.0
    } else {
        scenario::score(&rec.verdicts)
    };
    if !no_text {
        rec.text = Some(g.text.clone());
    }
}
