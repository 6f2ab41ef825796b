//! The one result schema: every record runner writes is a [`Record`], and every output format,
//! reader and report is derived from it. Field names and values are those of every earlier
//! release, so old result files read unchanged.

use super::http::{EndpointInfo, HttpReport, ServerReport};
use super::profile::ProfileReport;
use crate::engine::{BuildInfo, EngineSettings, MemoryUsage, ModelInfo};
use crate::hw::load::Window;
use crate::hw::machine::MachineInfo;
use crate::measure::bandwidth::Bandwidth;
use crate::measure::histogram::HistogramSummary;
use crate::measure::{FailureKind, RepetitionSample, Results, StopReason};
use crate::scenario::{Rubric, ScenarioKind, Verdict};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Version of the record layout; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Which runner wrote a record, when, and in which layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub schema: u32,
    /// RFC 3339 time at which the record was made (its test or request finished).
    pub time: String,
    pub runner_version: String,
}

impl Provenance {
    /// This runner, now.
    pub fn now() -> Provenance {
        Provenance {
            schema: SCHEMA_VERSION,
            time: crate::util::time::now_rfc3339(),
            runner_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The record's time as an instant, when it reads as RFC 3339 (times written with other
    /// UTC offsets compare in time order).
    pub fn instant(&self) -> Option<time::OffsetDateTime> {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        time::OffsetDateTime::parse(&self.time, rfc3339).ok()
    }
}

/// Every kind of record: a `runner bench` test, a sweep request, a sweep cell that failed, a
/// judge's verdict on a request, a `runner profile` report. Sweep lines carry a `kind` tag;
/// bench records and profile reports are written without one, as they always were.
#[derive(Debug, Clone)]
pub enum Record {
    Bench(Box<BenchRecord>),
    Request(Box<RequestRecord>),
    CellFailed(CellFailure),
    Judgement(Box<Judgement>),
    Profile(Box<ProfileReport>),
}

/// The records with a `kind` tag, as they are written.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Tagged {
    Request(Box<RequestRecord>),
    CellFailed(CellFailure),
    Judgement(Box<Judgement>),
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Record::Bench(r) => r.serialize(s),
            Record::Profile(r) => r.serialize(s),
            Record::Request(r) => Tagged::Request(r.clone()).serialize(s),
            Record::CellFailed(r) => Tagged::CellFailed(r.clone()).serialize(s),
            Record::Judgement(r) => Tagged::Judgement(r.clone()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Record, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        Record::from_value(v).map_err(D::Error::custom)
    }
}

impl Record {
    /// A record from its JSON: a sweep line by its `kind`, a bench record by its test and
    /// samples, a profile report by its model profile.
    pub fn from_value(v: serde_json::Value) -> Result<Record, String> {
        // A layout this runner does not know (a later one, or none) is not read as its own.
        if let Some(schema) = v.get("schema") {
            if schema.as_u64() != Some(u64::from(SCHEMA_VERSION)) {
                return Err(format!(
                    "schema {schema}: this runner reads schema {SCHEMA_VERSION}"
                ));
            }
        }
        let has = |k: &str| v.get(k).is_some();
        let record = if has("kind") {
            serde_json::from_value(v).map(|t| match t {
                Tagged::Request(r) => Record::Request(r),
                Tagged::CellFailed(r) => Record::CellFailed(r),
                Tagged::Judgement(r) => Record::Judgement(r),
            })
        } else if has("test") && has("samples") {
            serde_json::from_value(v).map(Record::Bench)
        } else if has("routing") && has("dense_source") {
            serde_json::from_value(v).map(Record::Profile)
        } else {
            return Err("not a runner record".into());
        };
        record.map_err(|e| e.to_string())
    }
}

/// One measured test: a model, engine settings and workload, with its provenance and samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRecord {
    /// When the test finished.
    #[serde(flatten)]
    pub provenance: Provenance,
    pub test: TestSpec,
    pub model: ModelInfo,
    pub engine: EngineSettings,
    pub build: BuildInfo,
    pub machine: MachineInfo,
    pub memory: MemoryUsage,
    pub load: LoadReport,
    pub results: Results,
    /// Memory traffic of decode at the median generation rate; `None` without generation.
    pub bandwidth: Option<Bandwidth>,
    /// Raw per-repetition samples (warm-up excluded).
    pub samples: Vec<RepetitionSample>,
}

/// The workload, as in llama-bench: a prompt of `n_prompt` tokens then `n_gen` generated
/// tokens, after `n_depth` tokens already in the KV cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSpec {
    /// `pp512`, `tg128`, `pp512+tg128`, with `@d1024` when a depth is set.
    pub name: String,
    pub n_prompt: u32,
    pub n_gen: u32,
    pub n_depth: u32,
    pub repetitions: u32,
    pub warmup: bool,
}

impl TestSpec {
    pub fn name_for(n_prompt: u32, n_gen: u32, n_depth: u32) -> String {
        let mut name = match (n_prompt, n_gen) {
            (p, 0) => format!("pp{p}"),
            (0, n) => format!("tg{n}"),
            (p, n) => format!("pp{p}+tg{n}"),
        };
        if n_depth > 0 {
            name.push_str(&format!("@d{n_depth}"));
        }
        name
    }

    /// Tokens the context must hold for this test.
    pub fn tokens_needed(&self) -> u64 {
        u64::from(self.n_depth) + u64::from(self.n_prompt.max(1)) + u64::from(self.n_gen)
    }
}

/// Load from other processes, in CPU cores busy (1.0 = one core fully used).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Mean other load in the seconds before the test started.
    pub before_other_cores: f64,
    /// Mean and peak other load while the test ran.
    pub during_other_cores_mean: f64,
    pub during_other_cores_max: f64,
    /// True when other load crossed the busy threshold: figures are suspect.
    pub busy: bool,
    /// The busiest other processes when load was noticed, e.g. `cc1plus 97%`.
    pub top_processes: Vec<String>,
}

impl LoadReport {
    /// Whether the figures are suspect: flagged busy when measured, or other load above
    /// `threshold` cores before or during the test.
    pub fn busy_above(&self, threshold: f64) -> bool {
        self.busy || self.before_other_cores.max(self.during_other_cores_mean) > threshold
    }

    /// The load of two windows (before and during), busy when either crossed `threshold`.
    pub fn of(before: &Window, during: &Window, threshold: f64) -> LoadReport {
        LoadReport {
            before_other_cores: before.mean_other,
            during_other_cores_mean: during.mean_other,
            during_other_cores_max: during.max_other,
            busy: before.mean_other > threshold || during.mean_other > threshold,
            top_processes: Vec::new(),
        }
    }
}

crate::util::names::named_enum! {
    /// The kinds of backend.
    pub enum BackendKind {
        /// llama.cpp in-process.
        Native = "native",
        /// Ollama's native API.
        Ollama = "ollama",
        /// An OpenAI-compatible Chat Completions API.
        OpenAi = "openai",
        /// Anthropic's Messages API.
        Anthropic = "anthropic",
    }
}

/// A backend as named on the command line and in records: `native`, or `KIND:MODEL` for a
/// model behind an HTTP API (`ollama:MODEL`, `openai:MODEL`, `anthropic:MODEL`). Ordered as
/// its name is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendId {
    pub kind: BackendKind,
    /// The model the server is asked for; empty for `native`.
    pub model: String,
}

impl BackendId {
    pub fn native() -> BackendId {
        BackendId {
            kind: BackendKind::Native,
            model: String::new(),
        }
    }

    pub fn is_native(&self) -> bool {
        self.kind == BackendKind::Native
    }
}

impl PartialOrd for BackendId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BackendId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl Default for BackendId {
    fn default() -> BackendId {
        BackendId::native()
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BackendKind::Native => f.write_str("native"),
            k => write!(f, "{}:{}", k.as_str(), self.model),
        }
    }
}

impl FromStr for BackendId {
    type Err = String;

    /// Parses `native`, `ollama:MODEL`, `openai:MODEL` or `anthropic:MODEL`.
    fn from_str(s: &str) -> Result<BackendId, String> {
        let s = s.trim();
        if s == "native" {
            return Ok(BackendId::native());
        }
        let (kind, model) = s.split_once(':').ok_or_else(|| {
            format!("unknown backend '{s}' (expected native, ollama:MODEL, openai:MODEL or anthropic:MODEL)")
        })?;
        let kind = match kind.parse::<BackendKind>() {
            Ok(k) if k != BackendKind::Native => k,
            _ => {
                return Err(format!(
                    "unknown backend kind '{kind}' in '{s}' (expected native, ollama, openai or anthropic)"
                ))
            }
        };
        if model.trim().is_empty() {
            return Err(format!("backend '{s}' names no model"));
        }
        Ok(BackendId {
            kind,
            model: model.to_string(),
        })
    }
}

impl Serialize for BackendId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BackendId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BackendId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which (backend, model, quantization) cell of a sweep a line belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellKey {
    /// Records written before backends existed read as `native`.
    #[serde(default)]
    pub backend: BackendId,
    /// The source model as given (a known name or a path).
    pub model: String,
    /// `source` or a quantization type name such as `q4_k_m`; `-` for a model behind an HTTP
    /// server (the server decides).
    pub quant: String,
}

impl CellKey {
    /// A native cell of `model` (as given) in quantization `quant`.
    pub fn native(model: &str, quant: &str) -> CellKey {
        CellKey {
            backend: BackendId::native(),
            model: model.to_string(),
            quant: quant.to_string(),
        }
    }

    /// The cell of a model behind an HTTP backend (the server decides its quantization: `-`).
    pub fn http(backend: &BackendId) -> CellKey {
        CellKey {
            backend: backend.clone(),
            model: backend.model.clone(),
            quant: "-".into(),
        }
    }
}

/// What a cell ran on: the file it measured and how it was made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CellInfo {
    /// The file that ran (the quantized copy, or the source).
    pub model: ModelInfo,
    pub source_path: String,
    pub source_sha256: Option<String>,
    /// True when the source was itself quantized: sizes and speeds stay representative,
    /// answer quality does not.
    pub requantized: bool,
    /// Time llama.cpp took to quantize; `None` when the file came from the cache or is the source.
    pub quantize_ms: Option<f64>,
    pub quantize_cached: bool,
    pub engine: EngineSettings,
    pub build: BuildInfo,
    pub machine: MachineInfo,
    pub memory: MemoryUsage,
    /// Routing figures of an MoE model (a short `runner profile` run in the cell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<crate::measure::routing::RoutingSummary>,
    /// The HTTP endpoint that served the cell (HTTP backends only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointInfo>,
    /// Every model the cell loaded, `model` first (a profile's dense reference after it); not
    /// written to records.
    #[serde(skip)]
    pub models: Vec<ModelInfo>,
}

/// One scenario request of a sweep, measured and graded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request finished.
    #[serde(flatten)]
    pub provenance: Provenance,
    pub cell: CellKey,
    pub info: CellInfo,
    pub scenario: String,
    pub scenario_kind: ScenarioKind,
    pub prompt_id: String,
    pub category: Option<String>,
    pub pair: Option<String>,
    /// How the prompt was built: the model's chat template, a fallback, or raw.
    pub template: String,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Start of prompt evaluation to the first non-empty piece of text.
    pub ttft_ms: Option<f64>,
    /// Prompt tokens / prompt-evaluation seconds.
    pub prompt_tps: Option<f64>,
    /// (output tokens - 1) / (last token time - first token time); for HTTP backends over the
    /// streamed chunks' times (see `measure::Trace::tokens_spanned`).
    pub decode_tps: Option<f64>,
    pub e2e_ms: f64,
    /// Time inside llama.cpp's prompt evaluation and decode calls; the rest of `e2e_ms` is
    /// runner's own work (token choice, text, stop checks, timestamps).
    pub llama_ms: f64,
    pub itl_ms: Option<HistogramSummary>,
    /// Memory traffic of the decode rate; `None` when fewer than two tokens came out.
    pub bandwidth: Option<Bandwidth>,
    pub stop_reason: StopReason,
    /// The request failed (time limit, or an error): it counts against the pass rate.
    pub failed: bool,
    pub error: Option<String>,
    /// The response (omitted with `--no-text`).
    pub text: Option<String>,
    pub verdicts: Vec<Verdict>,
    /// Passed graders / graders that ran (0 for a failed or ungraded request): a skipped
    /// executed grader (its runtime missing here) counts neither way.
    pub score: f64,
    /// Every grader that ran passed, and the request did not fail and was graded.
    pub pass: bool,
    /// Not graded here: its prompt has no graders, or every one was skipped (its language's
    /// runtime is missing). Neither passed nor failed; `pass` is false and reports leave it out
    /// of pass counts and the graders' quality.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ungraded: bool,
    /// Load from other processes while the request ran.
    pub load: LoadReport,
    /// Time of each generated token since the start of the request, in milliseconds. For HTTP
    /// backends: the arrival time of each non-empty streamed text chunk (one chunk may carry
    /// several tokens), from the moment the request was sent.
    pub token_ms: Vec<f64>,
    /// Why the request failed, as a kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<FailureKind>,
    /// Figures the server reported about this request (HTTP backends); every field is `None`
    /// when the server did not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerReport>,
    /// Client-side facts of an HTTP exchange: headers time, chunks, retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpReport>,
    /// What the request cost in US dollars: 0 for local backends, the provider's figure when it
    /// reports one, else the price table's; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Where `cost_usd` comes from: `local`, `provider`, or `prices.toml (<date>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<String>,
    /// Its place in a load level (sweeps with `--concurrency` or `--rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<super::traffic::Traffic>,
}

impl RequestRecord {
    /// Whether the request's end-to-end time is a wait a user had: it finished, or ran into its
    /// time limit (leaving those out would flatter a slow configuration). One that ended in an
    /// error (a prompt that does not fit, a refused connection, an HTTP error status, a broken
    /// stream) is not: its time says how fast the error came.
    pub fn waited(&self) -> bool {
        !self.failed
            || self.error_kind == Some(FailureKind::TimeLimit)
            || self.stop_reason == StopReason::TimeLimit
    }
}

/// A cell that could not run (or died), with its reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellFailure {
    #[serde(flatten)]
    pub provenance: Provenance,
    pub cell: CellKey,
    pub reason: String,
}

/// One judge's verdict on one recorded request (a line of the results file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Judgement {
    #[serde(flatten)]
    pub provenance: Provenance,
    /// The judged request: its cell, scenario and prompt.
    pub cell: CellKey,
    pub scenario: String,
    pub prompt_id: String,
    /// The judge, as a backend (`openai:MODEL`).
    pub judge: BackendId,
    pub judge_family: Option<String>,
    pub judged_family: Option<String>,
    /// The judge belongs to the judged model's family: its score may favour its own kind.
    pub self_judging: bool,
    pub rubric: Rubric,
    /// Score per criterion, 0 to `rubric.scale`; empty when no answer parsed.
    pub scores: BTreeMap<String, f64>,
    /// The rubric's weighted mean of `scores`.
    pub weighted: Option<f64>,
    pub rationale: Option<String>,
    /// Requests made: 2 when the first answer did not parse.
    pub attempts: u32,
    /// Why no score came (the request failed, or no answer parsed after the retry).
    pub error: Option<String>,
    /// The judge's last answer, shortened.
    pub answer: Option<String>,
    pub latency_ms: f64,
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
