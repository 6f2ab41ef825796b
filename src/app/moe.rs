//! `runner moe upcycle` (an MoE built from a dense model, written as a new GGUF file) and
//! `runner moe verify` (the dense model as the MoE's oracle).

use super::UsageError;
use crate::cli::moe::{MoeCommand, OracleArgs, UpcycleArgs, VerifyArgs};
use crate::exec::observer::{Mode, Progress};
use crate::gguf::GgufFile;
use crate::models;
use crate::moe::{Provenance, UpcycleError, UpcycleOptions};
use crate::plan::verify::{VerifyOptions, VerifyPlan};
use crate::plan::Resolved;
use std::path::Path;

/// Runs a `runner moe` command.
pub fn run(cmd: MoeCommand, cache: &Path, verbose: bool) -> anyhow::Result<()> {
    let threads = crate::plan::default_threads();
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

fn oracle_options(o: OracleArgs, threads: u32) -> anyhow::Result<VerifyOptions> {
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
    let dense = Resolved::get(&a.dense, cache)?;
    let s =
        crate::moe::upcycle::upcycle(&dense.path, &a.out, &opts, dense.sha256).map_err(classify)?;
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
        oracle_check(&dense.path, &a.out, oracle, cache, verbose)?;
    }
    Ok(())
}

fn run_verify(a: VerifyArgs, cache: &Path, verbose: bool, threads: u32) -> anyhow::Result<()> {
    let oracle = oracle_options(a.oracle, threads)?;
    let r = Resolved::get(&a.dense, cache)?;
    let (dense, sha) = (r.path, r.sha256);
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
    oracle_check(&dense, &a.moe, oracle, cache, verbose)
}

/// Runs the oracle and prints its verdict; a mismatch is an error (exit 1).
fn oracle_check(
    dense: &Path,
    moe: &Path,
    o: VerifyOptions,
    cache: &Path,
    verbose: bool,
) -> anyhow::Result<()> {
    let mut plan = VerifyPlan::new(dense, moe, o, cache);
    let monitor = crate::hw::load::LoadMonitor::start();
    let quiet = Progress::new(Mode::Quiet, "runs");
    let v = crate::plan::verify::run(&mut plan, &quiet, &monitor, verbose)?;
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
