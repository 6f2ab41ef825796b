//! The parts of a sweep record that HTTP backends add: what the server reported, what the
//! client saw of the exchange, and which endpoint served the cell.

use super::schema::BackendKind;
use serde::{Deserialize, Serialize};

/// Figures a server reported about one request. A field the server did not give is `None`
/// (unknown), never 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// The model as the server names it in its answer.
    pub model: Option<String>,
    /// Prompt tokens (OpenAI `usage.prompt_tokens`, Anthropic `input_tokens` plus cache reads
    /// and writes, Ollama `prompt_eval_count`).
    pub prompt_tokens: Option<u64>,
    /// Prompt tokens read from a prompt cache (OpenAI `prompt_tokens_details.cached_tokens`,
    /// Anthropic `cache_read_input_tokens`, llama-server `timings.cache_n`).
    pub cached_prompt_tokens: Option<u64>,
    /// Prompt tokens written to a prompt cache (Anthropic `cache_creation_input_tokens`).
    pub cache_write_tokens: Option<u64>,
    /// Generated tokens (`completion_tokens`, `output_tokens`, `eval_count`).
    pub output_tokens: Option<u64>,
    /// Server time evaluating the prompt (llama-server `timings.prompt_ms`, Ollama
    /// `prompt_eval_duration`), milliseconds.
    pub prompt_ms: Option<f64>,
    /// Prompt tokens evaluated / prompt time, as the server reports or as its counts give.
    pub prompt_tps: Option<f64>,
    /// Server time generating (llama-server `timings.predicted_ms`, Ollama `eval_duration`).
    pub decode_ms: Option<f64>,
    /// Generated tokens / generation time, as the server reports or as its counts give.
    pub decode_tps: Option<f64>,
    /// Time the server spent loading the model for this request (Ollama `load_duration`).
    pub load_ms: Option<f64>,
    /// Server's own total time for the request (Ollama `total_duration`).
    pub total_ms: Option<f64>,
    /// Cost the provider reported (OpenRouter's `usage.cost`), US dollars.
    pub cost_usd: Option<f64>,
    /// Why the server says generation ended, in its own words (`stop`, `length`, `end_turn`).
    pub finish_reason: Option<String>,
}

/// What the client saw of one HTTP exchange, all times from the moment runner started
/// sending the request (one monotonic clock).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpReport {
    /// Response headers received.
    pub headers_ms: Option<f64>,
    /// Non-empty text chunks received (`token_ms` holds their arrival times).
    pub chunks: usize,
    /// HTTP status of the answer, when one came.
    pub status: Option<u16>,
    /// Attempts retried after HTTP 429, and the time waited for them.
    pub retries: u32,
    pub retry_wait_ms: f64,
}

/// The endpoint that served an HTTP cell, with what its preflight learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// `ollama`, `openai` or `anthropic`.
    pub kind: BackendKind,
    /// The base URL (never with credentials).
    pub base_url: String,
    /// The model name sent in requests.
    pub model: String,
    /// Served on this machine (loopback or a private address): it costs nothing at the margin.
    pub local: bool,
    /// Server version (Ollama `/api/version`).
    pub server_version: Option<String>,
    /// Model details the server gave (Ollama `/api/show`: family, parameter size,
    /// quantization level, format).
    pub details: Option<serde_json::Value>,
    /// Memory the loaded model takes in the server (Ollama `/api/ps` `size`, `size_vram`).
    pub loaded_bytes: Option<u64>,
    pub loaded_vram_bytes: Option<u64>,
    /// Time the warm-up request took (the model loading), milliseconds.
    pub warmup_ms: Option<f64>,
    /// The model's load time as the server reported it during warm-up.
    pub load_ms: Option<f64>,
}
