//! Backends: what runs one request of a cell. `native` is llama.cpp in-process, through the
//! engine's one `Session`; `ollama:MODEL`, `openai:MODEL` (any OpenAI-compatible server) and
//! `anthropic:MODEL` stream the same chat requests over HTTP, timed on one client-side clock,
//! with what the server reports kept beside it.
//!
//! A backend prepares a cell once ([`Backend::prepare`]: quantize and load a model and make
//! its contexts, or check a server and load its model), then runs its requests one at a time
//! ([`Backend::run`]), each answered with a [`Reply`] whose [`Trace`] the `measure` layer turns
//! into figures. A failed request is a reply, not an error.

pub mod anthropic;
pub mod exchange;
pub mod http;
pub mod load;
pub mod native;
pub mod ollama;
pub mod openai;
pub mod remote;
pub mod render;
mod resets;
pub mod spec;
pub mod sse;

use crate::engine::{ContextSettings, EngineSettings, FlashAttn, MemoryUsage, Profile};
use crate::measure::Trace;
use crate::record::{CellInfo, CellKey, HttpReport, ServerReport};
use crate::scenario::{Prompt, Role};
use exchange::Failure;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Why a whole cell cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// Getting it ready failed (a server, a quantization, llama.cpp making a context).
    #[error("{0}")]
    Failed(String),
    /// Its model is bad input: a file llama.cpp will not load.
    #[error("{0}")]
    Refused(String),
    /// Its records could not be written (a full disk): the run stops there.
    #[error("{0}")]
    Sink(String),
}

impl From<String> for CellError {
    fn from(reason: String) -> CellError {
        CellError::Failed(reason)
    }
}

/// Runs the requests of one cell at a time.
pub trait Backend {
    /// Gets a cell ready to run requests; what the records say it ran on. `Err` says why the
    /// whole cell cannot run.
    fn prepare(&mut self, setup: &Setup) -> Result<CellInfo, CellError>;
    /// Runs one request of the prepared cell.
    fn run(&mut self, req: &Request<'_>) -> Reply;
    /// Releases what the cell holds (models, contexts).
    fn release(&mut self) {}
    /// Processes on this machine doing the prepared cell's work besides runner (a local
    /// server): their CPU time is the measurement's own, not another process's load.
    fn serving_pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// A model file a native cell loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSource {
    pub path: PathBuf,
    /// Its sha256 when already known (a verified known model).
    pub sha256: Option<String>,
    /// A quantization to make of it (cached) and load instead.
    pub quant: Option<String>,
}

impl ModelSource {
    /// A file as it is.
    pub fn file(path: &std::path::Path) -> ModelSource {
        ModelSource {
            path: path.to_path_buf(),
            sha256: None,
            quant: None,
        }
    }
}

/// One context of a native cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    /// Which of the cell's models.
    pub model: usize,
    /// Observe its graph evaluation node by node (`runner profile`).
    pub profiled: bool,
}

impl SessionSpec {
    /// A plain context of model `model`.
    pub fn plain(model: usize) -> SessionSpec {
        SessionSpec {
            model,
            profiled: false,
        }
    }
}

/// Engine settings of a native cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSpec {
    pub threads: u32,
    /// Context size; `None` sizes it to the longest prompt plus its output limit.
    pub n_ctx: Option<u32>,
    pub flash_attn: FlashAttn,
    pub n_gpu_layers: u32,
    pub use_mmap: bool,
}

impl Default for EngineSpec {
    /// One thread, a context sized to the prompts, every layer offloaded, weights mapped.
    fn default() -> EngineSpec {
        EngineSpec {
            threads: 1,
            n_ctx: None,
            flash_attn: FlashAttn::Auto,
            n_gpu_layers: 999,
            use_mmap: true,
        }
    }
}

/// What a cell asks of its backend.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub key: CellKey,
    /// Native: the models to load, in order.
    pub models: Vec<ModelSource>,
    /// Native: the contexts to create once the models are loaded (a bench creates its
    /// contexts per request instead).
    pub sessions: Vec<SessionSpec>,
    pub engine: EngineSpec,
    /// Native: fixed settings for every session (else sized from `prompts`).
    pub context: Option<ContextSettingsSpec>,
    /// The prompts the cell will run: they size the native context, and Ollama's raw
    /// prompts are rendered from them.
    pub prompts: Vec<Prompt>,
    /// Prompts without the chat template (messages joined by newlines).
    pub raw: bool,
    pub cache_dir: PathBuf,
}

/// Context settings a cell fixes for its sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextSettingsSpec {
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
}

/// One request, whatever runs it.
#[derive(Debug, Clone)]
pub enum Request<'a> {
    /// A chat prompt (scenario requests, judges).
    Chat(ChatRequest<'a>),
    /// A llama-bench workload in one context: in-process only.
    Workload(WorkloadRequest<'a>),
    /// One timed step of a profile in one of the cell's sessions: in-process only.
    Step(Step<'a>),
    /// Greedy decoding with the logits of each choice (`forced`: along given tokens):
    /// in-process only.
    Greedy(GreedyRequest<'a>),
    /// A load level: many chat requests sharing the backend at once.
    Load(load::LoadRequest<'a>),
}

/// A llama-bench style workload: after `depth` tokens already in the cache (untimed), a
/// prompt, then `n_gen` greedily generated tokens (end-of-generation does not stop it).
#[derive(Debug, Clone)]
pub struct WorkloadRequest<'a> {
    pub settings: &'a ContextSettings,
    pub depth: &'a [i32],
    /// The prompt; with `n_prompt == 0` (a generation-only test) one BOS token, whose
    /// evaluation is not counted as prompt processing.
    pub prompt: &'a [i32],
    pub n_prompt: u32,
    pub n_gen: u32,
}

/// One step of a profile in session `session`.
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub session: usize,
    pub kind: StepKind<'a>,
}

/// What a profile step does. Prompts are `n_tokens` tokens of `text` (plain text, repeated
/// as needed) under the session's model's vocabulary.
#[derive(Debug, Clone)]
pub enum StepKind<'a> {
    /// Clear the cache, evaluate the prompt, then time the first decoded token.
    FirstToken { text: &'a str, n_tokens: u32 },
    /// Clear the cache and time the evaluation of the prompt.
    Prefill { text: &'a str, n_tokens: u32 },
    /// Time `n` more greedily decoded tokens, one call each.
    Decode { n: u32 },
}

/// Greedy decoding in session `session`.
#[derive(Debug, Clone)]
pub struct GreedyRequest<'a> {
    pub session: usize,
    /// Plain text, tokenized without a chat template.
    pub prompt: &'a str,
    pub n_tokens: u32,
    /// Feed these tokens instead of choosing (the logits before each are returned).
    pub forced: Option<&'a [i32]>,
}

/// One chat request, whatever the wire format.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    /// The prompt, as the scenario gives it.
    pub prompt: &'a Prompt,
    /// Ask for JSON following this schema (judges).
    pub json_schema: Option<&'a Value>,
}

impl<'a> ChatRequest<'a> {
    pub fn new(prompt: &'a Prompt) -> ChatRequest<'a> {
        ChatRequest {
            prompt,
            json_schema: None,
        }
    }

    pub fn raw(&self) -> Option<&'a str> {
        self.prompt.raw_prompt.as_deref()
    }
}

/// What a backend answers.
#[derive(Debug, Clone)]
pub enum Reply {
    Chat(ChatReply),
    Workload(WorkloadReply),
    Step(StepReply),
    Greedy(GreedyReply),
    Load(load::LoadReply),
    /// The request could not run at all (a kind the backend does not run, or an engine
    /// error).
    Failed(Failure),
}

/// A chat request's answer.
#[derive(Debug, Clone, Default)]
pub struct ChatReply {
    pub trace: Trace,
    pub failure: Option<Failure>,
    /// How the prompt was built: the model's chat template, a fallback, raw, or the server's.
    pub template: String,
    /// The model has no chat template of its own (a base model): its answers to chat prompts
    /// measure little.
    pub base_model: bool,
    /// What the server reported (HTTP).
    pub server: Option<ServerReport>,
    /// What the client saw of the exchange (HTTP).
    pub http: Option<HttpReport>,
    /// The request sent → the start of the attempt its trace's times run from (HTTP: the
    /// attempts answered with 429 and the waits between them); zero otherwise.
    pub before_answer: Duration,
    /// The text's length in bytes after each generated token (in-process load levels, to
    /// find the token where two answers part).
    pub token_ends: Vec<usize>,
}

/// A workload's timings and the context it ran in.
#[derive(Debug, Clone)]
pub struct WorkloadReply {
    pub trace: Trace,
    pub engine: EngineSettings,
    pub memory: MemoryUsage,
}

/// A profile step's timed calls, and what the evaluation callback saw (profiled sessions).
#[derive(Debug, Clone, Default)]
pub struct StepReply {
    pub calls: Vec<Duration>,
    pub profile: Option<Profile>,
}

/// A greedy (or forced) continuation with the logits of each position.
#[derive(Debug, Clone, Default)]
pub struct GreedyReply {
    pub prompt: Vec<i32>,
    /// The tokens chosen (or fed), an end-of-generation token included when one ended it.
    pub tokens: Vec<i32>,
    /// For each token, the logits before it.
    pub logits: Vec<Vec<f32>>,
    /// The chosen tokens' text.
    pub text: String,
}

/// The messages as JSON `{role, content}` objects; the system message kept only when
/// `with_system` (Anthropic takes it apart).
pub fn messages_json(req: &ChatRequest<'_>, with_system: bool) -> Value {
    if let Some(raw) = req.raw() {
        return json!([{ "role": "user", "content": raw }]);
    }
    req.prompt
        .messages
        .iter()
        .filter(|m| with_system || m.role != Role::System)
        .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
        .collect()
}

/// The system prompt, if the request has one.
pub fn system_text(req: &ChatRequest<'_>) -> Option<String> {
    if req.raw().is_some() {
        return None;
    }
    req.prompt
        .messages
        .iter()
        .find(|m| m.role == Role::System)
        .map(|m| m.content.clone())
}

/// Sets `body[key]` when there is a value.
pub fn put(body: &mut Value, key: &str, value: Option<impl Serialize>) {
    if let Some(v) = value {
        body[key] = json!(v);
    }
}

/// The prompt's stop strings that `keep` accepts, at most `max`; `None` when none is left.
pub fn stops<'a>(
    req: &ChatRequest<'a>,
    keep: fn(&str) -> bool,
    max: usize,
) -> Option<Vec<&'a String>> {
    let stop: Vec<&String> = req
        .prompt
        .stop
        .iter()
        .filter(|s| keep(s))
        .take(max)
        .collect();
    (!stop.is_empty()).then_some(stop)
}

/// The body with the endpoint's extra fields merged in (they win).
pub fn with_extra(mut body: Value, ep: &spec::Endpoint) -> Value {
    if let Some(b) = body.as_object_mut() {
        b.extend(ep.extra.clone());
    }
    body
}

/// A whole non-negative number at a JSON pointer.
pub fn u64_at(v: &Value, pointer: &str) -> Option<u64> {
    let x = v.pointer(pointer)?;
    x.as_u64().or_else(|| {
        x.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

/// A string at a JSON pointer.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)?.as_str()
}

/// A finite number at a JSON pointer.
pub fn f64_at(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer)?.as_f64().filter(|f| f.is_finite())
}
