//! Mixture-of-Experts tools: `runner moe upcycle` builds an MoE from a dense model (identical
//! experts, a router, the expert metadata, its provenance); `runner moe verify` checks the
//! oracle that such an MoE produces exactly the dense model's greedy tokens.

pub mod args;
pub mod error;
pub mod provenance;
pub mod router;
pub mod transform;
pub mod upcycle;
pub mod verify;

use crate::bench::UsageError;
use crate::gguf::GgufFile;
use crate::models;
pub use args::MoeCommand;
use args::{OracleArgs, UpcycleArgs, VerifyArgs};
pub use error::UpcycleError;
pub use provenance::Provenance;
pub use router::Router;
use std::path::{Path, PathBuf};
use verify::VerifyOptions;

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpcycleOptions {
    /// Experts per layer (N).
    pub experts: u32,
    /// Experts used per token (K).
    pub used: u32,
    pub router: Router,
    /// Seed of a random router.
    pub seed: u64,
}

/// Runs a `runner moe` command; `threads` is the default thread count.
pub fn run(cmd: MoeCommand, cache: &Path, verbose: bool, threads: u32) -> anyhow::Result<()> {
    match cmd {
        MoeCommand::Upcycle(a) => run_upcycle(a, cache, verbose, threads),
        MoeCommand::Verify(a) => run_verify(a, cache, verbose, threads),
    }
}

/// Bad input becomes a [`UsageError`] (exit 2); a failure while working stays a runtime error.
fn classify(e: UpcycleError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// A DENSE argument as a file, and its sha256 when it is a verified known model.
fn resolve_dense(arg: &str, cache: &Path) -> anyhow::Result<(PathBuf, Option<String>)> {
    let path = models::resolve(arg, cache, &models::FetchOptions::default())
        .map_err(crate::bench::classify_resolve)?;
    let sha = models::verified_sha256(&path, cache);
    Ok((path, sha))
}

fn oracle_options(o: OracleArgs, threads: u32) -> anyhow::Result<VerifyOptions> {
    if o.n_tokens == 0 {
        return Err(UsageError("-n must be at least 1".into()).into());
    }
    if o.threads == Some(0) {
        return Err(UsageError("-t must be at least 1".into()).into());
    }
    if o.prompt.trim().is_empty() {
        return Err(UsageError("--prompt must not be empty".into()).into());
    }
    Ok(VerifyOptions {
        prompt: o.prompt,
        n_tokens: o.n_tokens,
        threads: o.threads.unwrap_or(threads),
    })
}

fn run_upcycle(a: UpcycleArgs, cache: &Path, verbose: bool, threads: u32) -> anyhow::Result<()> {
    let opts = UpcycleOptions {
        experts: a.experts,
        used: a.used,
        router: a.router,
        seed: a.seed,
    };
    opts.validate().map_err(classify)?;
    let oracle = oracle_options(a.oracle, threads)?;
    let (dense, sha) = resolve_dense(&a.dense, cache)?;
    let s = upcycle::upcycle(&dense, &a.out, &opts, sha).map_err(classify)?;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let seed = s
        .provenance
        .seed
        .map(|x| format!(" (seed {x})"))
        .unwrap_or_default();
    println!(
        "wrote {}: {} MoE, {} layers, {} experts, {} used per token, {} router{seed}",
        s.out.display(),
        s.layout.arch,
        s.layout.n_layer,
        opts.experts,
        opts.used,
        opts.router.as_str(),
    );
    println!(
        "  {:.1} MiB (dense {:.1} MiB): FFN {:.1} MiB -> experts {:.1} MiB + routers {:.2} MiB, in {:.2} s",
        mib(s.out_bytes),
        mib(s.provenance.source_size),
        mib(s.dense_ffn_bytes),
        mib(s.expert_bytes),
        mib(s.router_bytes),
        s.elapsed.as_secs_f64()
    );
    if !s.provenance.exact_oracle() {
        eprintln!(
            "note: with the {} router and {} used experts the top-K weights are not exact: the MoE \
             equals the dense model only up to rounding (--verify may see a near-tie flip)",
            opts.router.as_str(),
            opts.used
        );
    }
    if a.verify {
        oracle_check(&dense, &a.out, &oracle, verbose)?;
    }
    Ok(())
}

fn run_verify(a: VerifyArgs, cache: &Path, verbose: bool, threads: u32) -> anyhow::Result<()> {
    let oracle = oracle_options(a.oracle, threads)?;
    let (dense, sha) = resolve_dense(&a.dense, cache)?;
    let usage = |e: crate::gguf::GgufError| UsageError(e.to_string());
    GgufFile::open(&dense).map_err(usage)?;
    let moe = GgufFile::open(&a.moe).map_err(usage)?;
    if moe.arch_u64("expert_count").unwrap_or(0) == 0 {
        let arch = moe.architecture().unwrap_or("?");
        return Err(UsageError(format!(
            "{}: not a Mixture-of-Experts model (no {arch}.expert_count)",
            a.moe.display()
        ))
        .into());
    }
    if let Some(p) = Provenance::read(&moe) {
        let dense_sha = match sha {
            Some(s) => s,
            None => models::sha256_file(&dense)?,
        };
        if !dense_sha.eq_ignore_ascii_case(&p.source_sha256) {
            return Err(UsageError(format!(
                "{} was upcycled from {} (sha256 {}), not from {} (sha256 {dense_sha})",
                a.moe.display(),
                p.source_name,
                p.source_sha256,
                dense.display()
            ))
            .into());
        }
    }
    oracle_check(&dense, &a.moe, &oracle, verbose)
}

/// Runs the oracle and prints its verdict; a mismatch is an error (exit 1).
fn oracle_check(dense: &Path, moe: &Path, o: &VerifyOptions, verbose: bool) -> anyhow::Result<()> {
    let backend = crate::llama::init(verbose)?;
    let v = verify::verify(&backend, dense, moe, o)?;
    if !v.agrees() {
        let inexact = GgufFile::open(moe)
            .ok()
            .and_then(|g| Provenance::read(&g))
            .filter(|p| !p.exact_oracle());
        let hint = match inexact {
            Some(p) => format!(
                "; expected from rounding here: the {} router with {} used experts gives \
                 top-K weights that are not exact (upcycle with --router grouped and K a power of 2 \
                 for a bit-exact MoE)",
                p.router, p.used
            ),
            None => String::new(),
        };
        anyhow::bail!("verify: {}{hint}", v.summary());
    }
    println!("verify: {}", v.summary());
    println!("  text: {:?}", v.text);
    Ok(())
}
