//! `runner models list` and `runner models fetch`.

use super::UsageError;
use crate::cli::ListFormat;
use crate::models;
use std::path::{Path, PathBuf};

/// The known models and whether each is cached.
pub fn list(cache: &Path, format: ListFormat) -> anyhow::Result<String> {
    let rows: Vec<serde_json::Value> = models::known_models()
        .iter()
        .map(|m| {
            let path = models::cached_path(m, cache);
            serde_json::json!({
                "name": m.name,
                "model": m.display,
                "arch": m.arch,
                "params": m.params,
                "type": m.file_type,
                "size_mib": m.size_mib,
                "default": m.name == models::DEFAULT_MODEL,
                "cached": path.is_file(),
                "path": path.display().to_string(),
            })
        })
        .collect();
    if format == ListFormat::Json {
        return Ok(serde_json::to_string_pretty(&rows)? + "\n");
    }
    let mut out = format!(
        "{:<20} {:<30} {:<7} {:<7} {:<7} {:>8}  {}\n",
        "name", "model", "arch", "params", "type", "size MiB", "cached"
    );
    for (m, r) in models::known_models().iter().zip(&rows) {
        let cached = if r["cached"] == true { "yes" } else { "no" };
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
    Ok(out)
}

/// Fetches a known model (or finds it in the cache) and returns its path.
pub fn fetch(name: &str, verify: bool, cache: &Path) -> anyhow::Result<PathBuf> {
    let model = models::find(name).ok_or_else(|| {
        let known = models::known_names();
        UsageError(
            models::ResolveError::Unknown {
                name: name.to_string(),
                known,
            }
            .to_string(),
        )
    })?;
    let opts = models::FetchOptions {
        verify,
        ..Default::default()
    };
    Ok(models::fetch(model, cache, &opts)?)
}
