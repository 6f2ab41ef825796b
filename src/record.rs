//! The one result schema: every output format, reader and report is derived from `Record`.

use crate::measure::histogram::HistogramSummary;
use crate::measure::stats::Summary;
use serde::{Deserialize, Serialize};

/// Formats a time as RFC 3339 (UTC).
pub fn rfc3339(t: time::OffsetDateTime) -> Result<String, time::error::Format> {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
}

/// The current time as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc()).unwrap_or_default()
}

/// Version of the record layout; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// One measured test: a model, engine settings and workload, with its provenance and samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub schema: u32,
    /// RFC 3339 time at which the test finished.
    pub time: String,
    pub runner_version: String,
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

/// What the model file is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: String,
    pub file_name: String,
    pub size_bytes: u64,
    /// RFC 3339 modification time of the file.
    pub modified: Option<String>,
    /// sha256 of the file, when verified (known models) or requested (`--sha256`).
    pub sha256: Option<String>,
    pub name: Option<String>,
    pub architecture: String,
    /// llama.cpp's one-line description, e.g. `llama ?B Q4_1`.
    pub description: String,
    pub n_params: u64,
    pub file_type: Option<String>,
    /// Tensor bytes × 8 / parameters.
    pub bits_per_weight: f64,
    pub context_length: Option<u64>,
    pub n_layer: u32,
    pub n_embd: i32,
    pub n_vocab: i32,
    pub expert_count: Option<u64>,
    pub expert_used_count: Option<u64>,
    /// Time llama.cpp took to load the weights, in milliseconds.
    pub load_ms: f64,
}

/// Engine settings the test ran with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSettings {
    pub threads: u32,
    pub threads_batch: u32,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub flash_attn: String,
    pub type_k: String,
    pub type_v: String,
    pub use_mmap: bool,
    pub n_gpu_layers: u32,
}

/// Which llama.cpp build ran the test.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The bindings and the llama.cpp they vendor, e.g. `llama-cpp-sys-2 0.1.161`.
    pub llama_cpp: String,
    pub ggml_version: String,
    pub ggml_commit: String,
    /// llama.cpp's `llama_print_system_info()` line.
    pub system_info: String,
    /// CPU and backend features the build uses (AVX2, NEON, METAL, ...).
    pub features: Vec<String>,
    /// Compute devices llama.cpp sees.
    pub devices: Vec<DeviceInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    pub backend: String,
    pub memory_total_bytes: u64,
}

/// The machine the test ran on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineInfo {
    pub cpu: String,
    pub arch: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
    pub ram_bytes: u64,
    pub os: String,
    pub kernel: String,
}

/// Memory of the run, for "will it fit?".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Largest resident set size of the process seen during the test.
    pub peak_rss_bytes: u64,
    /// Model weights held by llama.cpp's buffers.
    pub model_bytes: u64,
    /// KV cache (llama.cpp's context memory).
    pub kv_cache_bytes: u64,
    /// Compute (scratch) buffers.
    pub compute_buffer_bytes: u64,
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

/// Statistics over repetitions. Rates state what they divide: `prompt_tps` = prompt tokens /
/// prompt-eval seconds; `gen_tps` = (generated tokens - 1) / (last token time - first token
/// time). Times are milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub prompt_tps: Option<Summary>,
    pub gen_tps: Option<Summary>,
    /// From the start of prompt evaluation to the first generated token.
    pub ttft_ms: Option<Summary>,
    /// Gaps between consecutive generated tokens, all repetitions pooled.
    pub itl_ms: Option<HistogramSummary>,
    pub e2e_ms: Option<Summary>,
    /// Harness time outside llama.cpp calls per generated token, and its share of token time.
    pub harness_us_per_token: Option<f64>,
    pub harness_share: Option<f64>,
}

/// Memory traffic of decode: the bytes one token reads, the rate they are read at, and how
/// close that comes to the machine's peaks. GB/s are 10^9 bytes per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Bytes one decoded token reads: `weight_bytes_per_token + kv_bytes_per_token`.
    pub bytes_per_token: u64,
    /// Every weight one token touches (for MoE: shared tensors + used/count of each expert tensor).
    pub weight_bytes_per_token: u64,
    /// KV cache read at `kv_depth`.
    pub kv_bytes_per_token: u64,
    /// Mean positions attended to per decoded token.
    pub kv_depth: f64,
    /// Bytes per token by tensor type, `kv_<type>` for the cache.
    pub by_type: std::collections::BTreeMap<String, u64>,
    /// The decode rate the figures are for, in tokens per second.
    pub decode_tps: f64,
    /// `bytes_per_token × decode_tps`.
    pub achieved_gbps: f64,
    /// Bandwidth measured on this machine (`runner hw`), and which kernel and threads.
    pub measured_peak_gbps: Option<f64>,
    pub measured_peak_kind: Option<String>,
    /// `achieved_gbps / measured_peak_gbps`.
    pub utilisation_measured: Option<f64>,
    /// Published peak of the recognised chip.
    pub published_chip: Option<String>,
    pub published_peak_gbps: Option<f64>,
    /// `achieved_gbps / published_peak_gbps`.
    pub utilisation_published: Option<f64>,
}

/// One repetition, raw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepetitionSample {
    pub prompt_ms: f64,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: f64,
    pub prompt_tps: Option<f64>,
    pub gen_tps: Option<f64>,
    /// Time of each generated token since the start of the repetition.
    pub token_ms: Vec<f64>,
    /// Time between the first and last token spent outside llama.cpp calls.
    pub harness_ms: f64,
}

impl RepetitionSample {
    /// Inter-token gaps in milliseconds.
    pub fn itl_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.token_ms.windows(2).map(|w| w[1] - w[0])
    }
}

/// One line of a sweep's results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SweepRecord {
    Request(Box<RequestRecord>),
    CellFailed(CellFailure),
    /// One judge's scores for one recorded request.
    Judgement(Box<crate::backend::judge::Judgement>),
}

/// Which (backend, model, quantization) cell of a sweep a line belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CellKey {
    /// `native` (llama.cpp in-process), or `ollama:MODEL`, `openai:MODEL`, `anthropic:MODEL`.
    /// Records written before backends existed read as `native`.
    #[serde(default = "native_backend")]
    pub backend: String,
    /// The source model as given (a known name or a path).
    pub model: String,
    /// `source` or a quantization type name such as `q4_k_m`; `-` for a model behind an HTTP
    /// server (the server decides).
    pub quant: String,
}

fn native_backend() -> String {
    "native".to_string()
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
    pub endpoint: Option<crate::backend::report::EndpointInfo>,
}

/// One scenario request of a sweep, measured and graded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub schema: u32,
    /// RFC 3339 time at which the request finished.
    pub time: String,
    pub runner_version: String,
    pub cell: CellKey,
    pub info: CellInfo,
    pub scenario: String,
    /// `short-response` or `long-form`.
    pub scenario_kind: String,
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
    /// streamed chunks' times (see `backend::exchange::Exchange::decode_tps`).
    pub decode_tps: Option<f64>,
    pub e2e_ms: f64,
    /// Time inside llama.cpp's prompt evaluation and decode calls; the rest of `e2e_ms` is
    /// runner's own work (token choice, text, stop checks, timestamps).
    pub llama_ms: f64,
    pub itl_ms: Option<HistogramSummary>,
    /// Memory traffic of the decode rate; `None` when fewer than two tokens came out.
    pub bandwidth: Option<Bandwidth>,
    /// `eos`, `stop_string`, `max_tokens` or `time_limit`.
    pub stop_reason: String,
    /// The request failed (time limit, or an error): it counts against the pass rate.
    pub failed: bool,
    pub error: Option<String>,
    /// The response (omitted with `--no-text`).
    pub text: Option<String>,
    pub verdicts: Vec<crate::scenario::Verdict>,
    /// Passed graders / graders (0 for a failed request).
    pub score: f64,
    /// Every grader passed and the request did not fail.
    pub pass: bool,
    /// Load from other processes while the request ran.
    pub load: LoadReport,
    /// Time of each generated token since the start of the request, in milliseconds. For HTTP
    /// backends: the arrival time of each non-empty streamed text chunk (one chunk may carry
    /// several tokens), from the moment the request was sent.
    pub token_ms: Vec<f64>,
    /// Why the request failed, as a kind: `refused`, `reset`, `http_status`, `rate_limited`,
    /// `malformed`, `stream_error`, `time_limit`, `truncated`, `no_usage`, `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// Figures the server reported about this request (HTTP backends); every field is `None`
    /// when the server did not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::backend::report::ServerReport>,
    /// Client-side facts of an HTTP exchange: headers time, chunks, retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<crate::backend::report::HttpReport>,
    /// What the request cost in US dollars: 0 for local backends, the provider's figure when it
    /// reports one, else the price table's; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Where `cost_usd` comes from: `local`, `provider`, or `prices.toml (<date>)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<String>,
}

/// A cell that could not run (or died), with its reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellFailure {
    pub schema: u32,
    pub time: String,
    pub runner_version: String,
    pub cell: CellKey,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_names_follow_llama_bench() {
        assert_eq!(TestSpec::name_for(512, 0, 0), "pp512");
        assert_eq!(TestSpec::name_for(0, 128, 0), "tg128");
        assert_eq!(TestSpec::name_for(64, 16, 0), "pp64+tg16");
        assert_eq!(TestSpec::name_for(0, 16, 1024), "tg16@d1024");
    }

    #[test]
    fn itl_is_the_gaps_between_tokens() {
        let s = RepetitionSample {
            token_ms: vec![10.0, 12.5, 16.0],
            ..Default::default()
        };
        assert_eq!(s.itl_ms().collect::<Vec<_>>(), vec![2.5, 3.5]);
    }
}
