//! Flags of `runner sweep` and `runner compare` (with their backends, judges and prices), and
//! the validated configuration they become.

use super::bench::Output;
use super::values::{
    check_busy_threshold, check_dir, check_output_file, parse_count, parse_ctx, parse_gib,
    parse_positive, parse_seconds, parse_threads,
};
use crate::backend::EngineSpec;
use crate::engine::FlashAttn;
use crate::plan::baselines::BackendOptions;
use crate::plan::sweep::SweepConfig;
use crate::report::Format;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Model file(s) or known model name(s), comma-separated or repeated.
    #[arg(short = 'm', long = "model", value_delimiter = ',', default_value = crate::models::DEFAULT_MODEL)]
    pub models: Vec<String>,
    /// Quantizations to make with llama.cpp and run; `source` runs the file as given.
    #[arg(
        short = 'q',
        long = "quant",
        value_delimiter = ',',
        default_value = "q4_k_m,q6_k,q8_0"
    )]
    pub quants: Vec<String>,
    /// Scenarios: names of files in scenarios/ or paths to TOML files.
    #[arg(
        short = 's',
        long = "scenario",
        value_delimiter = ',',
        default_value = "short-response,long-form"
    )]
    pub scenarios: Vec<String>,
    /// Run only the first N prompts of each scenario.
    #[arg(long, value_parser = parse_positive, allow_negative_numbers = true, value_name = "N")]
    pub limit: Option<u32>,
    /// Cap every prompt's output at N tokens (a quicker look at long-form scenarios, whose
    /// prompts allow thousands).
    #[arg(long, value_parser = parse_positive, allow_negative_numbers = true, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Directory of results files (JSONL, one per sweep configuration).
    #[arg(long, default_value = "results/runs", value_name = "DIR")]
    pub results: PathBuf,
    /// Start over instead of resuming the sweep's results file.
    #[arg(long)]
    pub fresh: bool,
    /// Leave response texts out of the records.
    #[arg(long)]
    pub no_text: bool,
    /// Send prompts without the model's chat template (messages joined by newlines).
    #[arg(long)]
    pub raw: bool,
    /// Threads, 1 to 512 (llama.cpp's limit) [default: physical cores].
    #[arg(short = 't', long = "threads", value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Option<u32>,
    /// Context size in tokens, 1 to 2147483392 [default: what the longest prompt plus its
    /// output limit needs].
    #[arg(long = "ctx", value_parser = parse_ctx, allow_negative_numbers = true)]
    pub ctx: Option<u32>,
    /// Flash attention.
    #[arg(long = "flash-attn", value_enum, default_value = "auto")]
    pub flash_attn: FlashAttn,
    /// Layers to offload to a GPU (ignored on CPU-only builds).
    #[arg(
        long = "n-gpu-layers",
        visible_alias = "ngl",
        default_value_t = 999,
        value_parser = parse_count,
        allow_negative_numbers = true
    )]
    pub n_gpu_layers: u32,
    /// Format of the summary on stdout; with -o, the format of FILE, stdout then showing the
    /// table [default: table, or from -o's extension].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write the summary to FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse cells estimated to need more memory than this many GiB [default: the memory free when the sweep starts].
    #[arg(long, value_name = "GIB", value_parser = parse_gib, allow_negative_numbers = true)]
    pub max_memory: Option<f64>,
    /// Refuse to start when other processes keep the machine busy.
    #[arg(long)]
    pub require_idle: bool,
    /// Other load, in busy cores, above which the machine counts as busy.
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES", allow_negative_numbers = true)]
    pub busy_threshold: f64,
    /// Do not show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub baselines: BackendArgs,
    #[command(flatten)]
    pub load: super::load::LoadArgs,
}

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
    /// Price table for cloud models [default: the shipped scenarios/prices.toml].
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Longest total wait for retries after HTTP 429 (Retry-After) per request, in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub max_retry_wait: f64,
    /// Judges that score every answer against the scenario's rubric: openai:MODEL or
    /// anthropic:MODEL backends, comma-separated.
    #[arg(long = "judge", value_delimiter = ',', value_name = "LIST")]
    pub judges: Vec<String>,
    /// Exponent of the power mean across judges, -100 to 100 (1: arithmetic mean; below 1
    /// leans to the harsher judge).
    #[arg(long, default_value_t = crate::grade::judge::panel::DEFAULT_POWER, value_name = "P", allow_negative_numbers = true)]
    pub judge_power: f64,
    /// Time limit of each judge request, in seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub judge_time_limit: f64,
    /// Show published reference figures (results/reference/published.csv) under the comparison.
    #[arg(long)]
    pub reference: bool,
}

impl SweepArgs {
    /// Checks the flags together and builds the configuration.
    pub fn validate(self, default_threads: u32) -> Result<(SweepConfig, Output), String> {
        check_busy_threshold(self.busy_threshold)?;
        check_output_file(self.output.as_deref())?;
        check_dir("--results", &self.results)?;
        crate::util::no_repeats("-m", &self.models)?;
        crate::util::no_repeats("--quant", &self.quants)?;
        let load = self.load.validate()?;
        let b = self.baselines;
        let output = Output {
            format: Format::choose(self.format, self.output.as_deref()),
            file: self.output.clone(),
            progress: !self.no_progress,
        };
        let cfg = SweepConfig {
            models: self.models,
            quants: self.quants,
            scenarios: self.scenarios,
            limit: self.limit,
            max_tokens: self.max_tokens,
            results: self.results,
            summary: self.output,
            fresh: self.fresh,
            no_text: self.no_text,
            raw: self.raw,
            engine: EngineSpec {
                threads: self.threads.unwrap_or(default_threads).max(1),
                n_ctx: self.ctx,
                flash_attn: self.flash_attn,
                n_gpu_layers: self.n_gpu_layers,
                use_mmap: true,
            },
            max_memory: self.max_memory,
            require_idle: self.require_idle,
            busy_threshold: self.busy_threshold,
            backends: BackendOptions {
                backends: b.backends,
                ollama_host: b.ollama_host,
                openai_base_url: b.openai_base_url,
                anthropic_base_url: b.anthropic_base_url,
                max_tokens_field: b.max_tokens_field,
                backend_config: b.backend_config,
                prices: b.prices,
                max_retry_wait: b.max_retry_wait,
                judges: b.judges,
                judge_power: b.judge_power,
                judge_time_limit: b.judge_time_limit,
                reference: b.reference,
            },
            load,
        };
        Ok((cfg, output))
    }
}
