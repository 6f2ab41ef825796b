//! `runner models list`, `fetch`, `synth` and `twin`.

use super::UsageError;
use crate::cli::{ListFormat, SynthArgs, TwinArgs};
use crate::engine::synth::{self, TwinValues};
use crate::models::{
    self, catalogue,
    synthetic::{self, TokenizerSource},
};
use crate::plan;
use std::path::{Path, PathBuf};

/// The known models and whether each is cached: a file of the published size is (`fetch`
/// verifies its hash), one of another size is damaged (a fetch cut short) and is fetched again.
pub fn list(cache: &Path, format: ListFormat) -> anyhow::Result<String> {
    let rows: Vec<serde_json::Value> = models::known_models()
        .iter()
        .map(|m| {
            let path = models::cached_path(m, cache);
            let size = std::fs::metadata(&path)
                .ok()
                .filter(|f| f.is_file())
                .map(|f| f.len());
            serde_json::json!({
                "name": m.name,
                "model": m.display,
                "arch": m.arch,
                "params": m.params,
                "type": m.file_type,
                "size_mib": m.size_mib,
                "default": m.name == models::DEFAULT_MODEL,
                "cached": size == Some(m.size_bytes),
                "verified": models::is_verified(m, &path),
                "damaged": size.is_some_and(|n| n != m.size_bytes),
                "path": path.display().to_string(),
            })
        })
        .collect();
    let synthetic: Vec<serde_json::Value> = catalogue::CATALOGUE
        .iter()
        .map(|a| {
            let spec = synthetic::SynthSpec::parse(a.name).ok();
            serde_json::json!({
                "name": a.name,
                "model": a.display,
                "arch": a.family.as_str(),
                "params_b": a.params_b.0,
                "active_params_b": a.params_b.1,
                "layers": a.layers,
                "default_type": spec.map(|s| s.quant_name()),
                "tokenizer": a.tokenizer,
                "synthetic": true,
                "sources": a.sources,
            })
        })
        .collect();
    if format == ListFormat::Json {
        let all: Vec<_> = rows.iter().chain(&synthetic).collect();
        return Ok(serde_json::to_string_pretty(&all)? + "\n");
    }
    let mut out = format!(
        "{:<20} {:<30} {:<7} {:<7} {:<7} {:>8}  {}\n",
        "name", "model", "arch", "params", "type", "size MiB", "cached"
    );
    for (m, r) in models::known_models().iter().zip(&rows) {
        let cached = match (
            r["cached"] == true,
            r["verified"] == true,
            r["damaged"] == true,
        ) {
            (true, true, _) => "yes",
            (true, false, _) => "unverified",
            (false, _, true) => "damaged",
            (false, _, false) => "no",
        };
        let name = match m.name == models::DEFAULT_MODEL {
            true => format!("{} *", m.name),
            false => m.name.to_string(),
        };
        out.push_str(&format!(
            "{:<20} {:<30} {:<7} {:<7} {:<7} {:>8}  {}\n",
            name, m.display, m.arch, m.params, m.file_type, m.size_mib, cached
        ));
    }
    out.push_str(&format!(
        "\n* default model; cache: {}\n",
        cache.join("models").display()
    ));
    out.push_str(
        "\nsynthetic: random weights with the published model's exact tensors, for speed only \
         (`runner models synth NAME`, or -m synth:NAME[@TYPE][:layers=N])\n",
    );
    out.push_str(&format!(
        "{:<20} {:<20} {:<10} {:>8} {:>8} {:>6}  {:<10} {}\n",
        "name", "model", "arch", "params", "active", "layers", "type", "tokenizer"
    ));
    for (a, r) in catalogue::CATALOGUE.iter().zip(&synthetic) {
        out.push_str(&format!(
            "{:<20} {:<20} {:<10} {:>7.1}B {:>7.1}B {:>6}  {:<10} {}\n",
            a.name,
            a.display,
            a.family.as_str(),
            a.params_b.0,
            a.params_b.1,
            a.layers,
            r["default_type"].as_str().unwrap_or("-"),
            a.tokenizer.unwrap_or("none (token ids only)")
        ));
    }
    Ok(out)
}

/// Fetches a known model (or finds it in the cache) and returns its path.
pub fn fetch(name: &str, verify: bool, cache: &Path) -> anyhow::Result<PathBuf> {
    let model = models::find(name).ok_or_else(|| models::ResolveError::Unknown {
        name: name.to_string(),
        known: models::known_names(),
    })?;
    let opts = models::FetchOptions {
        verify,
        ..Default::default()
    };
    Ok(models::fetch(model, cache, &opts)?)
}

/// A model is written to a file, checked before anything is made (exit 2): not a device or
/// FIFO, not a directory, not a file that holds records (a sweep's results), in a directory
/// that is there or can be made (a symbolic link's: that of the file it points to).
fn check_out(out: &Path) -> anyhow::Result<()> {
    let bad = |why: &str| UsageError(format!("{}: {why}", out.display()));
    let target = crate::util::fs::out_file(out).map_err(|e| bad(&e.to_string()))?;
    if out.is_dir() {
        anyhow::bail!(bad("is a directory; give the model a file name"));
    }
    crate::record::read::refuse_records_output(out, "the model").map_err(|why| bad(&why))?;
    crate::util::fs::check_writable(out).map_err(|e| bad(&format!("cannot be written: {e}")))?;
    let dir = crate::util::fs::out_dir(&target);
    std::fs::create_dir_all(dir).map_err(|e| UsageError(format!("{}: {e}", dir.display())))?;
    Ok(())
}

/// A model command's output (`models synth -o`, `models twin -o`, `moe upcycle OUT`) may replace
/// an existing file only when that is no GGUF model, or one runner made: a synthetic model or a
/// twin (its `runner.synthetic.*` keys) or an upcycled MoE (its `runner.upcycle.*` keys). Any
/// other model (a fetched one in the cache, one of the user's) is refused before anything is
/// made (exit 2), never replaced by random weights.
pub(super) fn check_replaceable(out: &Path) -> anyhow::Result<()> {
    if !crate::gguf::is_model_file(out) {
        return Ok(());
    }
    let made = crate::gguf::GgufFile::open(out).is_ok_and(|g| {
        synthetic::Synthetic::from_gguf(&g).is_some() || crate::moe::Provenance::read(&g).is_some()
    });
    if made {
        return Ok(());
    }
    anyhow::bail!(UsageError(format!(
        "{}: is a GGUF model runner did not make (only a synthetic model, a twin or an upcycled MoE is replaced); write to another file, or remove it first",
        out.display()
    )))
}

/// Writes a synthetic model (to the cache unless `-o`) and returns its path.
pub fn synth(a: &SynthArgs, cache: &Path) -> anyhow::Result<PathBuf> {
    let arch = catalogue::arch(&a.name).map_err(|e| UsageError(e.to_string()))?;
    let tokenizer = match (&a.tokenizer, a.ids_only) {
        (Some(f), _) => TokenizerSource::file(f, arch.vocab).map_err(UsageError)?,
        (None, true) => TokenizerSource::None,
        (None, false) => TokenizerSource::Entry,
    };
    let spec = synthetic::SynthSpec {
        arch,
        quant: a.quant.as_ref().map(|q| q.to_ascii_lowercase()),
        layers: a.layers,
        seed: a.seed,
        experts: a.experts,
        tokenizer,
        dense: a.dense,
    };
    spec.validate().map_err(UsageError)?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| plan::synth::cached_path(&spec, cache));
    if let TokenizerSource::File { path, .. } = &spec.tokenizer {
        if crate::util::fs::same_file(path, &out) {
            anyhow::bail!(UsageError(format!(
                "{}: is the file the tokenizer comes from; write the model to a new file",
                out.display()
            )));
        }
    }
    if let Some(out) = &a.output {
        check_out(out)?;
        check_replaceable(out)?;
    }
    let w = plan::synth::build(&spec, cache, &out)?;
    eprintln!("{}", written(&w));
    Ok(out)
}

/// Writes a random-weight copy of a model file and returns its path.
pub fn twin(a: &TwinArgs, cache: &Path) -> anyhow::Result<PathBuf> {
    // Before the model is resolved (which may fetch it); -o naming the model itself is told
    // below, as such.
    if let Some(out) = &a.output {
        if !crate::util::fs::same_file(Path::new(&a.model), out) {
            check_replaceable(out)?;
        }
    }
    let (src, _) = plan::Resolved::valid(&a.model, cache)?;
    let stem = src.display();
    let (values, suffix) = match a.random_bytes {
        true => (TwinValues::RandomBytes, "-bytes"),
        false => (TwinValues::Scaled, ""),
    };
    let out = a.output.clone().unwrap_or_else(|| {
        plan::synth::synth_dir(cache).join(format!("{stem}-twin{suffix}-s{}.gguf", a.seed))
    });
    if crate::util::fs::same_file(&src.path, &out) {
        anyhow::bail!(UsageError(format!(
            "{}: is the model the twin is made from; write the twin to a new file",
            out.display()
        )));
    }
    check_out(&out)?;
    crate::engine::init(false)?;
    let w = synth::twin(&src.path, &out, values, a.seed)?;
    eprintln!("{}", written(&w));
    Ok(out)
}

fn written(w: &synth::Written) -> String {
    format!(
        "wrote {} tensors, {:.2} GiB, in {:.1} s",
        w.tensors,
        w.bytes as f64 / (1u64 << 30) as f64,
        w.elapsed.as_secs_f64()
    )
}
