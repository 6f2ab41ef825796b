//! What a request cost: nothing for local backends, the provider's own figure when it reports
//! one, else token counts priced from a dated table (`scenarios/prices.toml`).

use crate::record::ServerReport;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One model's prices, US dollars per million tokens.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub provider: String,
    pub model: String,
    pub input: f64,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
    pub output: f64,
    pub date: String,
    pub source: String,
}

/// The price table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    #[serde(default)]
    pub price: Vec<Price>,
}

/// The shipped table (`scenarios/prices.toml`, built into the binary).
pub fn builtin_path() -> PathBuf {
    crate::scenario::builtin_dir().join("prices.toml")
}

impl Prices {
    /// Reads a price table; every error is one line naming the file.
    pub fn load(path: &Path) -> Result<Prices, String> {
        let p: Prices = crate::util::fs::read_toml(path)?;
        for e in &p.price {
            let all = [Some(e.input), e.cached_input, e.cache_write, Some(e.output)];
            if all.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(format!(
                    "{}: {}: prices must be 0 or more",
                    path.display(),
                    e.model
                ));
            }
        }
        Ok(p)
    }

    /// The entry for a provider's model: an exact name, else the longest entry that the name
    /// starts with followed by `-` (a dated version). A `vendor/` prefix is ignored.
    pub fn find(&self, provider: &str, model: &str) -> Option<&Price> {
        let model = model.rsplit('/').next().unwrap_or(model);
        let ours = self.price.iter().filter(|p| p.provider == provider);
        let exact = ours.clone().find(|p| p.model == model);
        exact.or_else(|| {
            ours.filter(|p| model.starts_with(&format!("{}-", p.model)))
                .max_by_key(|p| p.model.len())
        })
    }
}

/// A request's cost in US dollars and where the figure comes from; `(None, None)` when
/// unknown (no price, or no token counts).
pub fn cost(
    local: bool,
    provider: &str,
    model: &str,
    server: &ServerReport,
    prices: &Prices,
) -> (Option<f64>, Option<String>) {
    if local {
        return (Some(0.0), Some("local".into()));
    }
    if let Some(c) = server.cost_usd {
        return (Some(c), Some("provider".into()));
    }
    let Some(p) = prices.find(provider, model) else {
        return (None, None);
    };
    let (Some(prompt), Some(output)) = (server.prompt_tokens, server.output_tokens) else {
        return (None, None);
    };
    let cached = server.cached_prompt_tokens.unwrap_or(0);
    let written = server.cache_write_tokens.unwrap_or(0);
    let fresh = prompt.saturating_sub(cached.saturating_add(written));
    let usd = (fresh as f64 * p.input
        + cached as f64 * p.cached_input.unwrap_or(p.input)
        + written as f64 * p.cache_write.unwrap_or(p.input)
        + output as f64 * p.output)
        / 1e6;
    (Some(usd), Some(format!("prices.toml ({})", p.date)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_loads_and_prices_a_request() {
        let p = Prices::load(&builtin_path()).unwrap();
        assert!(p.find("anthropic", "claude-haiku-4-5-20251001").is_some());
        assert!(p.find("openai", "openai/gpt-4o-mini").unwrap().model == "gpt-4o-mini");
        assert!(p.find("openai", "gpt-4o-mini-2024-07-18").unwrap().model == "gpt-4o-mini");
        assert!(p.find("openai", "no-such-model").is_none());
        let s = ServerReport {
            prompt_tokens: Some(1_000_000),
            cached_prompt_tokens: Some(500_000),
            output_tokens: Some(1_000_000),
            ..Default::default()
        };
        let (usd, src) = cost(false, "openai", "gpt-4o", &s, &p);
        // 0.5 M fresh at 2.50 + 0.5 M cached at 1.25 + 1 M out at 10.00
        assert!((usd.unwrap() - 11.875).abs() < 1e-9);
        assert!(src.unwrap().starts_with("prices.toml"));
    }

    #[test]
    fn local_is_free_provider_wins_and_unknown_stays_unknown() {
        let p = Prices::default();
        let mut s = ServerReport::default();
        assert_eq!(cost(true, "openai", "x", &s, &p).0, Some(0.0));
        assert_eq!(cost(false, "openai", "x", &s, &p), (None, None));
        s.cost_usd = Some(0.002);
        assert_eq!(cost(false, "openai", "x", &s, &p).0, Some(0.002));
    }
}
