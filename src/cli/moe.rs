//! Flags of `runner moe upcycle` and `runner moe verify` (clap derive).

use super::values::{
    parse_at_least_one, parse_positive_tokens, parse_seed, parse_threads, parse_upcycle_experts,
};
use crate::moe::Router;
use crate::plan::verify::{DEFAULT_PROMPT, DEFAULT_TOKENS};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Seed of the random router unless `--seed` gives another.
pub const DEFAULT_SEED: u64 = 42;

#[derive(Debug, Subcommand)]
pub enum MoeCommand {
    /// Build a Mixture-of-Experts model from a dense one: each layer's FFN copied into N
    /// identical experts, plus a router.
    #[command(after_help = UPCYCLE_HELP)]
    Upcycle(UpcycleArgs),
    /// Check that an MoE produces exactly the greedy tokens of the dense model it was made from.
    Verify(VerifyArgs),
}

const UPCYCLE_HELP: &str = "\
Each layer's ffn_gate/ffn_up/ffn_down become ffn_gate_exps/ffn_up_exps/ffn_down_exps with N
copies of the dense weights, a router ffn_gate_inp (F32, n_embd x N) is added, and
<arch>.expert_count / <arch>.expert_used_count are set. The dense source's name and sha256 are
recorded under runner.upcycle.* in the output's metadata. Supported architectures: llama.

With identical experts and llama's normalised top-K weights the MoE computes the dense
model's function, so its greedy output must equal the dense model's (--verify checks it),
while each token reads K experts' weights through the MoE code path: a way to measure MoE
routing cost against the dense twin on any machine.

Example: runner moe upcycle smollm2-135m smollm2-moe.gguf --experts 4 --used 2 --verify";

#[derive(Debug, Args)]
pub struct UpcycleArgs {
    /// The dense model: a GGUF file or a known model name (see `runner models list`).
    #[arg(value_name = "DENSE")]
    pub dense: String,
    /// Where to write the MoE GGUF (written to a temporary file beside it, then renamed into
    /// place; an existing file is replaced, unless it is a GGUF model runner did not make).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// Experts per layer, N (2 to 1024).
    #[arg(long, value_name = "N", value_parser = parse_upcycle_experts, allow_negative_numbers = true)]
    pub experts: u32,
    /// Experts each token uses, K (1 to N).
    #[arg(long, value_name = "K", value_parser = parse_at_least_one, allow_negative_numbers = true)]
    pub used: u32,
    /// Router: `grouped` (seeded random rows shared by groups of K experts: each token takes
    /// one whole group, weights exactly 1/K, so the dense output is reproduced bit for bit for
    /// K <= 2), `random` (one seeded random row per expert: independent choices and unequal
    /// weights, equal to the dense output only up to rounding) or `uniform` (all zeros: every
    /// token takes the same experts).
    #[arg(long, value_enum, default_value_t = Router::Grouped)]
    pub router: Router,
    /// Seed of the random router.
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// After writing, compare the MoE's greedy tokens with the dense model's (exit 1 if they
    /// differ).
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub oracle: OracleArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The dense model: a GGUF file or a known model name.
    #[arg(value_name = "DENSE")]
    pub dense: String,
    /// The MoE made from it.
    #[arg(value_name = "MOE")]
    pub moe: PathBuf,
    #[command(flatten)]
    pub oracle: OracleArgs,
}

/// How the greedy comparison runs.
#[derive(Debug, Args)]
pub struct OracleArgs {
    /// Prompt (plain text, no chat template) both models continue.
    #[arg(long, default_value = DEFAULT_PROMPT)]
    pub prompt: String,
    /// Tokens each model generates for the comparison.
    #[arg(short = 'n', long = "n-gen", default_value_t = DEFAULT_TOKENS, value_name = "TOKENS", value_parser = parse_positive_tokens, allow_negative_numbers = true)]
    pub n_tokens: u32,
    /// Threads, 1 to 512 (llama.cpp's limit) [default: physical cores].
    #[arg(short = 't', long = "threads", value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Option<u32>,
}
