//! The flags `runner sweep` and `runner compare` take for backends, judges and prices.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Backends to run the scenarios through: native (llama.cpp in-process), ollama:MODEL,
    /// openai:MODEL (any OpenAI-compatible server), anthropic:MODEL; comma-separated.
    #[arg(
        long = "backend",
        value_delimiter = ',',
        default_value = "native",
        value_name = "LIST"
    )]
    pub backends: Vec<String>,
    /// Ollama's address [default: http://127.0.0.1:11434, or the backend config's].
    #[arg(long, value_name = "URL")]
    pub ollama_host: Option<String>,
    /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1 for llama-server
    /// [default: https://api.openai.com/v1]. Key: $OPENAI_API_KEY.
    #[arg(long, value_name = "URL")]
    pub openai_base_url: Option<String>,
    /// Base URL of the Anthropic API [default: https://api.anthropic.com]. Key: $ANTHROPIC_API_KEY.
    #[arg(long, value_name = "URL")]
    pub anthropic_base_url: Option<String>,
    /// Name of the OpenAI token-limit field: max_tokens or max_completion_tokens [default: max_tokens].
    #[arg(long, value_name = "NAME")]
    pub max_tokens_field: Option<String>,
    /// Backend config file (TOML): base URLs, key variable names, headers, extra body fields,
    /// per kind ([openai]) or per backend (["openai:MODEL"]).
    #[arg(long, value_name = "FILE")]
    pub backend_config: Option<PathBuf>,
    /// Price table for cloud models [default: scenarios/prices.toml].
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Longest total wait for retries after HTTP 429 (Retry-After) per request, in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub max_retry_wait: f64,
    /// Judges that score every answer against the scenario's rubric: openai:MODEL or
    /// anthropic:MODEL backends, comma-separated.
    #[arg(long = "judge", value_delimiter = ',', value_name = "LIST")]
    pub judges: Vec<String>,
    /// Exponent of the power mean across judges (1: arithmetic mean; below 1 leans to the
    /// harsher judge).
    #[arg(long, default_value_t = crate::backend::judge::panel::DEFAULT_POWER, value_name = "P", allow_negative_numbers = true)]
    pub judge_power: f64,
    /// Time limit of each judge request, in seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub judge_time_limit: f64,
    /// Show published reference figures (results/reference/published.csv) under the comparison.
    #[arg(long)]
    pub reference: bool,
}
