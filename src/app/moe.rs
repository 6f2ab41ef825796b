//! `runner moe upcycle` (an MoE built from a dense model, written as a new GGUF file) and
//! `runner moe verify` (the dense model as the MoE's oracle).

use super::UsageError;
use crate::cli::moe::{MoeCommand, OracleArgs, UpcycleArgs, VerifyArgs};
use crate::engine::MAX_CTX;
use crate::gguf::GgufFile;
use crate::models;
use crate::moe::{Provenance, UpcycleError, UpcycleOptions};
use crate::plan::verify::{VerifyOptions, VerifyPlan};
use crate::plan::Resolved;
use std::path::Path;

/// Runs a `runner moe` command.
pub fn run(cmd: MoeCommand, cache: &Path, verbose: bool) -> anyhow::Result<()> {
    match cmd {
        MoeCommand::Upcycle(a) => run_upcycle(a, cache, verbose),
        MoeCommand::Verify(a) => run_verify(a, cache, verbose),
    }
}

fn oracle_options(o: OracleArgs) -> anyhow::Result<VerifyOptions> {
    if o.prompt.trim().is_empty() {
        anyhow::bail!(UsageError("--prompt must not be empty".into()));
    }
    let opts = VerifyOptions {
        prompt: o.prompt,
        n_tokens: o.n_tokens,
        threads: o.threads.unwrap_or_else(crate::plan::default_threads),
    };
    if opts.n_ctx() > u64::from(MAX_CTX) {
        anyhow::bail!(UsageError(format!(
            "-n {} with a {}-byte prompt needs a context of {} tokens, more than llama.cpp's largest ({MAX_CTX})",
            opts.n_tokens,
            opts.prompt.len(),
            opts.n_ctx()
        )));
    }
    Ok(opts)
}

fn run_upcycle(a: UpcycleArgs, cache: &Path, verbose: bool) -> anyhow::Result<()> {
    let opts = UpcycleOptions {
        experts: a.experts,
        used: a.used,
        router: a.router,
        seed: a.seed,
    };
    opts.validate()?;
    crate::record::read::refuse_records_output(&a.out, "the MoE").map_err(|reason| {
        UpcycleError::BadOutput {
            path: a.out.clone(),
            reason,
        }
    })?;
    // Before the dense model is resolved (which may fetch it); OUT naming the dense file
    // itself is told by the upcycle, as such.
    if !crate::util::fs::same_file(Path::new(&a.dense), &a.out) {
        super::models::check_replaceable(&a.out)?;
    }
    let oracle = oracle_options(a.oracle)?;
    let dense = Resolved::get(&a.dense, cache)?;
    if a.verify {
        if let Ok(g) = GgufFile::open(&dense.path) {
            has_text(&g, &dense.path)?;
            oracle_fits(&oracle, &g, &g)?;
        }
    }
    let s = crate::moe::upcycle::upcycle(&dense.path, &a.out, &opts, dense.sha256)?;
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

fn run_verify(a: VerifyArgs, cache: &Path, verbose: bool) -> anyhow::Result<()> {
    let oracle = oracle_options(a.oracle)?;
    let r = Resolved::get(&a.dense, cache)?;
    let (dense, sha) = (r.path, r.sha256);
    let usage = |e: crate::gguf::GgufError| UsageError(e.to_string());
    let dense_gguf = GgufFile::open(&dense).map_err(usage)?;
    let moe = GgufFile::open(&a.moe).map_err(usage)?;
    if moe.arch_u64("expert_count").unwrap_or(0) == 0 {
        let arch = moe.architecture().unwrap_or("?");
        anyhow::bail!(UsageError(format!(
            "{}: not a Mixture-of-Experts model (no {arch}.expert_count)",
            a.moe.display()
        )));
    }
    has_text(&dense_gguf, &dense)?;
    if let Some(p) = Provenance::read(&moe) {
        // The size first: a file of another size is another file, without reading it all.
        if p.source_size > 0 && p.source_size != dense_gguf.file_size {
            anyhow::bail!(UsageError(format!(
                "{} was upcycled from {} ({} bytes), not from {} ({} bytes)",
                a.moe.display(),
                p.source_name,
                p.source_size,
                dense.display(),
                dense_gguf.file_size
            )));
        }
        let dense_sha = sha.map_or_else(|| models::sha256_file(&dense), Ok)?;
        if !dense_sha.eq_ignore_ascii_case(&p.source_sha256) {
            anyhow::bail!(UsageError(format!(
                "{} was upcycled from {} (sha256 {}), not from {} (sha256 {dense_sha})",
                a.moe.display(),
                p.source_name,
                p.source_sha256,
                dense.display()
            )));
        }
    }
    // An MoE that does not name its source (or names it loosely) is held to the dense model's
    // shape: llama.cpp would take the other's tokens, or not load the pair at all.
    if let Some(why) = crate::plan::dense::other_shape(&moe, &dense_gguf) {
        anyhow::bail!(UsageError(format!(
            "{}: {why}: not the dense model {} was made from",
            dense.display(),
            a.moe.display()
        )));
    }
    oracle_fits(&oracle, &dense_gguf, &moe)?;
    oracle_check(&dense, &a.moe, oracle, cache, verbose)
}

/// Refuses a dense model without a tokenizer: the oracle's prompt is text.
fn has_text(dense: &GgufFile, path: &Path) -> Result<(), UsageError> {
    match dense.has_vocab() {
        true => Ok(()),
        false => Err(UsageError(format!(
            "{}: has no tokenizer (token ids only), so the oracle cannot give it its prompt",
            path.display()
        ))),
    }
}

/// Refuses a comparison of the models `dense` and `moe` (an MoE made from `dense` takes the
/// same cache and logits) that cannot fit in this machine's memory.
fn oracle_fits(o: &VerifyOptions, dense: &GgufFile, moe: &GgufFile) -> Result<(), UsageError> {
    let need = o.least_memory(&[dense, moe]);
    let what = format!(
        "comparing {} generated tokens (-n) in a {}-token context",
        o.n_tokens,
        o.n_ctx()
    );
    crate::plan::memory::within(need, crate::plan::memory::machine_bytes(true), &what)
        .map_err(UsageError)
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
    let v = crate::plan::verify::run(&mut plan, &crate::plan::verify::Quiet, &monitor, verbose)?;
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
