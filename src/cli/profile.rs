//! Flags of `runner profile`, and the validated configuration they become.

use super::values::{
    check_busy_threshold, parse_count, parse_positive, parse_positive_tokens, parse_threads,
};
use crate::engine::FlashAttn;
use crate::plan::profile::{plan_settings, ProfileConfig, ProfileSettings};
use crate::report::ListFormat;
use clap::Args;

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Model file or known model name.
    #[arg(short = 'm', long = "model", default_value = crate::models::DEFAULT_MODEL)]
    pub model: String,
    /// Tokens to decode in the long-form phase (steady decode at depth).
    #[arg(short = 'n', long = "n-gen", value_name = "TOKENS", default_value = "32", value_parser = parse_positive_tokens, allow_negative_numbers = true)]
    pub n_gen: u32,
    /// Prompt tokens before the short-response token (the first decode after a short prompt).
    #[arg(short = 'p', long = "prompt-tokens", value_name = "TOKENS", default_value = "16", value_parser = parse_positive_tokens, allow_negative_numbers = true)]
    pub prompt_tokens: u32,
    /// Tokens in the KV cache before the long-form decode (evaluated as one prompt).
    #[arg(short = 'd', long = "depth", value_name = "TOKENS", default_value = "256", value_parser = parse_positive_tokens, allow_negative_numbers = true)]
    pub depth: u32,
    /// Short-response samples (each: clear, prompt, one token), 1 to 10,000.
    #[arg(short = 'r', long = "repetitions", value_name = "N", default_value = "5", value_parser = super::values::parse_repetitions, allow_negative_numbers = true)]
    pub repetitions: u32,
    /// Also profile prompt processing (the evaluation of the --depth prompt).
    #[arg(long = "pp")]
    pub pp: bool,
    /// Tokens per window when counting distinct experts per layer (at most -n) [default: 8,
    /// or -n when fewer].
    #[arg(long, value_name = "TOKENS", value_parser = parse_positive, allow_negative_numbers = true)]
    pub window: Option<u32>,
    /// Dense reference for the routing overhead [default: the dense source named in an
    /// upcycled model's metadata, when it can be found].
    #[arg(long, value_name = "MODEL")]
    pub dense: Option<String>,
    /// Node names to list per phase, most expensive first (0: none).
    #[arg(long, value_name = "N", default_value = "10", value_parser = parse_count, allow_negative_numbers = true)]
    pub top: u32,
    /// Threads, 1 to 512 (llama.cpp's limit) [default: physical cores].
    #[arg(short = 't', long = "threads", value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Option<u32>,
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
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Refuse to start when other processes keep the machine busy.
    #[arg(long)]
    pub require_idle: bool,
    /// Other load, in busy cores, above which the machine counts as busy.
    #[arg(long, default_value_t = crate::hw::load::DEFAULT_BUSY_CORES, value_name = "CORES", allow_negative_numbers = true)]
    pub busy_threshold: f64,
}

impl ProfileArgs {
    /// Checks the flags together and builds the configuration.
    pub fn validate(self, default_threads: u32) -> Result<(ProfileConfig, ListFormat), String> {
        let window = match self.window {
            Some(w) if w > self.n_gen => {
                return Err(format!(
                    "--window {w} is longer than the {} decoded tokens (-n)",
                    self.n_gen
                ))
            }
            Some(w) => w,
            None => 8.min(self.n_gen),
        };
        check_busy_threshold(self.busy_threshold)?;
        let threads = self.threads.unwrap_or(default_threads).max(1);
        let plan = ProfileSettings {
            prompt_tokens: self.prompt_tokens,
            depth: self.depth,
            n_gen: self.n_gen,
            repetitions: self.repetitions,
            pp: self.pp,
            window,
            top: self.top,
            settings: plan_settings(
                self.prompt_tokens,
                self.depth,
                self.n_gen,
                threads,
                self.flash_attn,
            )?,
            n_gpu_layers: self.n_gpu_layers,
        };
        let cfg = ProfileConfig {
            model: self.model,
            dense: self.dense,
            plan,
            require_idle: self.require_idle,
            busy_threshold: self.busy_threshold,
        };
        Ok((cfg, self.format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn profile(args: &[&str]) -> Result<ProfileArgs, clap::Error> {
        let mut v = vec!["runner", "profile"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v)?.command {
            Command::Profile(p) => Ok(*p),
            _ => unreachable!("parsed profile"),
        }
    }

    #[test]
    fn defaults_fit_one_context() {
        let (c, format) = profile(&[]).unwrap().validate(4).unwrap();
        assert_eq!(c.plan.n_gen, 32);
        assert_eq!(c.plan.settings.threads, 4);
        assert_eq!(c.plan.settings.n_ctx, 256 + 32 + 1);
        assert_eq!(c.plan.settings.n_batch, 256);
        assert_eq!(format, ListFormat::Table);
        assert!(c.dense.is_none());
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["-n", "0"][..],
            &["-n", "-3"],
            &["--window", "0"],
            &["-d", "x"],
            &["--format", "csv"],
            &["-r", "0"],
        ] {
            assert!(profile(args).is_err(), "{args:?} was accepted");
        }
        let e = profile(&["-n", "4", "--window", "8"])
            .unwrap()
            .validate(1)
            .unwrap_err();
        assert!(e.contains("--window 8"), "{e}");
        let (c, _) = profile(&["-n", "2"]).unwrap().validate(1).unwrap();
        assert_eq!(c.plan.window, 2, "the default window fits -n");
        assert!(profile(&["-d", "4000000"]).unwrap().validate(1).is_err());
    }
}
