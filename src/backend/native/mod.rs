//! The native backend: llama.cpp in-process through the engine's one [`Session`]. Preparing a
//! cell makes the requested quantization (cached), loads the model(s) and creates the cell's
//! contexts; each request then runs in one of them.

pub mod chat;
mod load;
mod steps;

use super::exchange::Failure;
use super::render::{render, Ready};
use super::{
    Backend, CellError, ChatReply, ChatRequest, EngineSpec, ModelSource, Reply, Request, Setup,
};
use crate::engine::quant::QuantType;
use crate::engine::{self, quantize, ContextSettings, KvType, LoadOptions, Model, Session};
use crate::measure::{FailureKind, StopReason, Trace};
use crate::record::CellInfo;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// llama.cpp in-process, and the cell it has prepared.
#[derive(Default)]
pub struct Native {
    verbose: bool,
    models: Vec<Arc<Model>>,
    /// Each session, with the index of its model.
    sessions: Vec<(usize, Session)>,
    /// The settings the sessions were created with.
    settings: Option<ContextSettings>,
    engine: Option<EngineSpec>,
    /// A workload's session, kept while requests keep its settings.
    workload: Option<(ContextSettings, Session)>,
    prompts: HashMap<String, Ready>,
}

impl Native {
    pub fn new(verbose: bool) -> Native {
        Native {
            verbose,
            ..Default::default()
        }
    }
}

impl Backend for Native {
    fn prepare(&mut self, setup: &Setup) -> Result<CellInfo, CellError> {
        self.release();
        let backend = engine::init(self.verbose).map_err(|e| e.to_string())?;
        let mut info = CellInfo {
            build: engine::info::build_info(),
            machine: crate::hw::machine::fingerprint(),
            ..Default::default()
        };
        for (i, source) in setup.models.iter().enumerate() {
            let path = make_file(backend, source, setup, (i == 0).then_some(&mut info))?;
            let opts = LoadOptions {
                n_gpu_layers: setup.engine.n_gpu_layers,
                use_mmap: setup.engine.use_mmap,
            };
            // A file llama.cpp will not load is bad input, not a failure while running.
            let mut model =
                Model::load(backend, &path, opts).map_err(|e| CellError::Refused(e.to_string()))?;
            model.info.sha256 = source.sha256.clone().filter(|_| source.quant.is_none());
            self.models.push(Arc::new(model));
        }
        let Some(first) = self.models.first().cloned() else {
            return Ok(info);
        };
        info.model = first.info.clone();
        info.models = self.models.iter().map(|m| m.info.clone()).collect();
        for p in &setup.prompts {
            let ready = render(&first, p, setup.raw)?;
            self.prompts.insert(p.id.clone(), ready);
        }
        let settings = self.context_settings(setup, &first);
        if setup.context.is_none() {
            self.all_fit(setup, settings.n_ctx)
                .map_err(CellError::Refused)?;
        }
        // A cell of chat prompts that all decode greedily chooses on the device where it can
        // from the start, as its runs will, so that the cell's record says so.
        let greedy_chat =
            !setup.prompts.is_empty() && setup.prompts.iter().all(|p| p.sampling.is_greedy());
        for s in &setup.sessions {
            let model = self
                .models
                .get(s.model)
                .ok_or_else(|| format!("session of model {} of {}", s.model, self.models.len()))?;
            let mut session = match s.profiled {
                true => Session::profiled(model, &settings),
                false => Session::new(model, &settings),
            }
            .map_err(|e| e.to_string())?;
            session.place_greedy(greedy_chat && !s.profiled);
            self.sessions.push((s.model, session));
        }
        if let Some((_, s)) = self.sessions.first() {
            info.engine = s.applied(&settings, setup.engine.use_mmap, setup.engine.n_gpu_layers);
            info.memory = s.memory().unwrap_or_default();
        }
        self.settings = Some(settings);
        self.engine = Some(setup.engine.clone());
        Ok(info)
    }

    fn run(&mut self, req: &Request<'_>) -> Reply {
        let result = match req {
            Request::Chat(c) => self.chat(c).map(Reply::Chat),
            Request::Workload(w) => self.workload(w).map(Reply::Workload),
            Request::Step(s) => self.step(s).map(Reply::Step),
            Request::Greedy(g) => self.greedy(g).map(Reply::Greedy),
            Request::Load(l) => self.load(l).map(Reply::Load),
        };
        result.unwrap_or_else(|e| Reply::Failed(Failure::new(FailureKind::Other, e)))
    }

    fn release(&mut self) {
        *self = Native::new(self.verbose);
    }
}

/// The file a cell loads: the source, or its quantization (made, or taken from the cache).
/// For the cell's first model, `info` records where it came from and how it was made.
fn make_file(
    backend: &engine::Backend,
    source: &ModelSource,
    setup: &Setup,
    info: Option<&mut CellInfo>,
) -> Result<PathBuf, String> {
    let mut unused = CellInfo::default();
    let info = info.unwrap_or(&mut unused);
    info.source_path = source.path.display().to_string();
    info.source_sha256 = source.sha256.clone();
    let Some(name) = &source.quant else {
        return Ok(source.path.clone());
    };
    let qt: &QuantType = engine::quant::parse(name)?;
    let sha = match &source.sha256 {
        Some(s) => s.clone(),
        None => {
            quantize::source_sha256(&source.path, &setup.cache_dir).map_err(|e| e.to_string())?
        }
    };
    let threads = setup.engine.threads;
    let q = quantize::quantize_cached(backend, &source.path, &sha, qt, &setup.cache_dir, threads)
        .map_err(|e| e.to_string())?;
    info.source_sha256 = Some(sha);
    info.requantized = q.requantized;
    info.quantize_cached = q.cached;
    info.quantize_ms = (!q.cached).then_some(q.elapsed.as_secs_f64() * 1000.0);
    Ok(q.path)
}

impl Native {
    /// The context every session of the cell shares: fixed by the setup, or large enough for
    /// the longest prompt plus its output limit (never beyond the model's training context)
    /// unless `--ctx` fixed it.
    fn context_settings(&self, setup: &Setup, model: &Model) -> ContextSettings {
        let e = &setup.engine;
        let base = |n_ctx: u32, n_batch: u32, n_ubatch: u32| ContextSettings {
            n_ctx,
            n_batch,
            n_ubatch,
            threads: e.threads,
            threads_batch: e.threads,
            flash_attn: e.flash_attn,
            type_k: KvType::F16,
            type_v: KvType::F16,
        };
        if let Some(c) = &setup.context {
            return base(c.n_ctx, c.n_batch, c.n_ubatch);
        }
        let need = setup
            .prompts
            .iter()
            .filter_map(|p| Some(self.prompts.get(&p.id)?.tokens.saturating_add(p.max_tokens)))
            .max()
            .unwrap_or(512);
        let train = model
            .info
            .context_length
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(u32::MAX);
        let n_ctx = e.n_ctx.unwrap_or_else(|| need.min(train)).max(64);
        base(n_ctx, 2048.min(n_ctx), 512)
    }

    /// `Err` naming the first prompt whose tokens and output limit need more than the cell's
    /// context of `n_ctx` tokens (the model's training context, or `--ctx`): every run of it
    /// would fail, counted against the model's pass rate, so the cell does not start.
    fn all_fit(&self, setup: &Setup, n_ctx: u32) -> Result<(), String> {
        for p in &setup.prompts {
            let Some(ready) = self.prompts.get(&p.id) else {
                continue;
            };
            let need = u64::from(ready.tokens) + u64::from(p.max_tokens);
            if need > u64::from(n_ctx) {
                let limit = match setup.engine.n_ctx {
                    Some(_) => "--ctx",
                    None => "the model's training context",
                };
                return Err(format!(
                    "prompt {}: {} prompt tokens + {} max tokens need {need} tokens of context, more than the cell's {n_ctx} ({limit})",
                    p.id, ready.tokens, p.max_tokens
                ));
            }
        }
        Ok(())
    }

    /// A prompt rendered and counted: from the cell's preparation, or now.
    fn ready(&self, model: &Model, p: &crate::scenario::Prompt) -> Result<Ready, String> {
        let cached = self.prompts.get(&p.id).cloned();
        cached.map_or_else(|| render(model, p, false), Ok)
    }

    fn chat(&mut self, req: &ChatRequest<'_>) -> Result<ChatReply, String> {
        let p = req.prompt;
        let model = Arc::clone(self.models.first().ok_or("no model is loaded")?);
        let ready = self.ready(&model, p)?;
        let (_, session) = self.sessions.first_mut().ok_or("no context is prepared")?;
        let trace = chat::generate(session, &model, &ready.rendered.text, p);
        Ok(chat_reply(
            trace.map_err(|e| e.to_string()),
            &ready,
            p.time_limit,
        ))
    }
}

/// The failure of a request stopped at its time limit, the limit as the scenario gave it.
fn too_slow(time_limit: std::time::Duration) -> Failure {
    let why = format!(
        "slower than the time limit of {} s",
        time_limit.as_secs_f64()
    );
    Failure::new(FailureKind::TimeLimit, why)
}

/// A chat request's reply from its trace (or why it failed): a run stopped by the time limit
/// is a failed request with its figures kept.
fn chat_reply(
    trace: Result<Trace, String>,
    ready: &Ready,
    time_limit: std::time::Duration,
) -> ChatReply {
    let reply = ChatReply {
        template: ready.rendered.template.clone(),
        base_model: ready.rendered.base_model,
        ..Default::default()
    };
    match trace {
        Ok(trace) => ChatReply {
            failure: (trace.stop == Some(StopReason::TimeLimit)).then(|| too_slow(time_limit)),
            trace,
            ..reply
        },
        Err(e) => ChatReply {
            trace: Trace {
                prompt_tokens: ready.tokens,
                stop: Some(StopReason::Error),
                ..Default::default()
            },
            failure: Some(Failure::new(FailureKind::Other, e)),
            ..reply
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_time_limit_is_shown_as_the_scenario_gave_it() {
        for (secs, shown) in [(0.001, "0.001"), (2.5, "2.5"), (30.0, "30"), (0.04, "0.04")] {
            let f = too_slow(Duration::from_secs_f64(secs));
            assert_eq!(f.kind, FailureKind::TimeLimit);
            assert_eq!(
                f.message,
                format!("slower than the time limit of {shown} s")
            );
        }
    }
}
