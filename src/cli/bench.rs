//! Flags of `runner bench`, and the validated configuration they become.

use super::values::{
    check_busy_threshold, check_output_file, parse_count, parse_ctx, parse_positive, parse_threads,
    parse_tokens,
};
use crate::engine::{ContextSettings, FlashAttn, KvType};
use crate::plan::bench::BenchConfig;
use crate::report::Format;
use crate::util::no_repeats;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Where a command's results are shown.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    /// Also written here.
    pub file: Option<PathBuf>,
    pub progress: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model file(s) or known model name(s), comma-separated or repeated.
    #[arg(short = 'm', long = "model", value_delimiter = ',', default_value = crate::models::DEFAULT_MODEL)]
    pub models: Vec<String>,
    /// Layer counts for synthetic models (-m synth:NAME): each is measured at every count, and
    /// the real model's depth is extrapolated from them (e.g. 4,8,12).
    #[arg(long, value_delimiter = ',', value_parser = parse_positive, allow_negative_numbers = true, value_name = "LIST")]
    pub layers: Vec<u32>,
    /// Prompt lengths in tokens (0: generation only).
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "512", value_parser = parse_tokens, allow_negative_numbers = true)]
    pub n_prompt: Vec<u32>,
    /// Tokens to generate (0: prompt processing only).
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128", value_parser = parse_tokens, allow_negative_numbers = true)]
    pub n_gen: Vec<u32>,
    /// Tokens already in the KV cache before the test (context depth).
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',', default_value = "0", value_parser = parse_tokens, allow_negative_numbers = true)]
    pub n_depth: Vec<u32>,
    /// Measured repetitions per test (1 to 10,000).
    #[arg(short = 'r', long = "repetitions", default_value = "5", value_parser = super::values::parse_repetitions, allow_negative_numbers = true)]
    pub repetitions: u32,
    /// Threads, 1 to 512 (llama.cpp's limit) [default: physical cores].
    #[arg(short = 't', long = "threads", value_delimiter = ',', value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Vec<u32>,
    /// Context size in tokens, 1 to 2147483392 [default: depth + prompt + generated].
    #[arg(long = "ctx", value_delimiter = ',', value_parser = parse_ctx, allow_negative_numbers = true)]
    pub ctx: Vec<u32>,
    /// Logical batch size.
    #[arg(short = 'b', long = "batch", value_delimiter = ',', default_value = "2048", value_parser = parse_positive, allow_negative_numbers = true)]
    pub batch: Vec<u32>,
    /// Physical batch size.
    #[arg(long = "ubatch", value_delimiter = ',', default_value = "512", value_parser = parse_positive, allow_negative_numbers = true)]
    pub ubatch: Vec<u32>,
    /// Flash attention.
    #[arg(long = "flash-attn", value_delimiter = ',', default_value = "auto")]
    pub flash_attn: Vec<FlashAttn>,
    /// KV cache type for K.
    #[arg(
        long = "cache-type-k",
        visible_alias = "ctk",
        value_delimiter = ',',
        default_value = "f16"
    )]
    pub type_k: Vec<KvType>,
    /// KV cache type for V.
    #[arg(
        long = "cache-type-v",
        visible_alias = "ctv",
        value_delimiter = ',',
        default_value = "f16"
    )]
    pub type_v: Vec<KvType>,
    /// Layers to offload to a GPU (ignored on CPU-only builds).
    #[arg(
        long = "n-gpu-layers",
        visible_alias = "ngl",
        default_value_t = 999,
        value_parser = parse_count,
        allow_negative_numbers = true
    )]
    pub n_gpu_layers: u32,
    /// Memory-map the model file.
    #[arg(long = "mmap", value_enum, default_value_t = OnOff::On)]
    pub mmap: OnOff,
    /// Skip the warm-up run before each test.
    #[arg(long)]
    pub no_warmup: bool,
    /// Output format on stdout; with -o, the format of FILE, stdout then showing the table
    /// [default: table, or from -o's extension].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write results to FILE, rewritten after every test (a FILE that holds records, a
    /// sweep's or an earlier bench's, is refused).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse to start when other processes keep the machine busy.
    #[arg(long)]
    pub require_idle: bool,
    /// Other load, in busy cores, above which the machine counts as busy.
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES", allow_negative_numbers = true)]
    pub busy_threshold: f64,
    /// Hash the model file (sha256) into the record.
    #[arg(long)]
    pub sha256: bool,
    /// Do not show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl BenchArgs {
    /// Checks the flags together and builds the configuration.
    pub fn validate(self, default_threads: u32) -> Result<(BenchConfig, Output), String> {
        if self.n_prompt.iter().all(|&p| p == 0) && self.n_gen.iter().all(|&n| n == 0) {
            return Err("nothing to measure: -p and -n are both 0".into());
        }
        // Each value of a list once: a repeat would run the same tests again.
        no_repeats("-m", &self.models)?;
        no_repeats("--layers", &self.layers)?;
        no_repeats("-p", &self.n_prompt)?;
        no_repeats("-n", &self.n_gen)?;
        no_repeats("-d", &self.n_depth)?;
        no_repeats("-t", &self.threads)?;
        no_repeats("--ctx", &self.ctx)?;
        no_repeats("--batch", &self.batch)?;
        no_repeats("--ubatch", &self.ubatch)?;
        no_repeats("--flash-attn", &self.flash_attn)?;
        no_repeats("--ctk", &self.type_k)?;
        no_repeats("--ctv", &self.type_v)?;
        check_busy_threshold(self.busy_threshold)?;
        check_output_file(self.output.as_deref())?;
        if let Some(path) = self.output.as_deref() {
            crate::record::read::refuse_records_output(path, "the results")
                .map_err(|why| format!("-o {}: {why}", path.display()))?;
        }
        let format = Format::choose(self.format, self.output.as_deref());
        // A list not given is its default alone; a context size of 0 is what each test needs.
        let or = |list: Vec<u32>, default: u32| match list.is_empty() {
            true => vec![default],
            false => list,
        };
        let (threads, ctxs) = (or(self.threads, default_threads.max(1)), or(self.ctx, 0));
        let mut contexts = Vec::new();
        for &t in &threads {
            for &n_ctx in &ctxs {
                for &n_batch in &self.batch {
                    for &n_ubatch in &self.ubatch {
                        for &flash_attn in &self.flash_attn {
                            for &type_k in &self.type_k {
                                for &type_v in &self.type_v {
                                    contexts.push(ContextSettings {
                                        n_ctx,
                                        n_batch,
                                        n_ubatch,
                                        threads: t,
                                        threads_batch: t,
                                        flash_attn,
                                        type_k,
                                        type_v,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        let models = with_layers(self.models, &self.layers)?;
        let cfg = BenchConfig {
            models,
            n_prompt: self.n_prompt,
            n_gen: self.n_gen,
            n_depth: self.n_depth,
            repetitions: self.repetitions,
            warmup: !self.no_warmup,
            contexts,
            n_gpu_layers: self.n_gpu_layers,
            use_mmap: self.mmap == OnOff::On,
            require_idle: self.require_idle,
            busy_threshold: self.busy_threshold,
            sha256: self.sha256,
        };
        let output = Output {
            format,
            file: self.output,
            progress: !self.no_progress,
        };
        Ok((cfg, output))
    }
}

/// Each synthetic model (`synth:NAME` without its own `layers=`) once per `--layers` count.
fn with_layers(models: Vec<String>, layers: &[u32]) -> Result<Vec<String>, String> {
    if layers.is_empty() {
        return Ok(models);
    }
    let synth = |m: &String| m.trim().starts_with(crate::models::synthetic::SYNTH_PREFIX);
    if !models.iter().any(synth) {
        return Err("--layers applies to synthetic models: name one with -m synth:NAME".into());
    }
    let mut out = Vec::new();
    for m in models {
        if !synth(&m) {
            out.push(m);
        } else if m.contains(":layers=") {
            return Err(format!(
                "{m} sets its own layers; leave out --layers or layers="
            ));
        } else {
            out.extend(layers.iter().map(|l| format!("{m}:layers={l}")));
        }
    }
    Ok(out)
}
