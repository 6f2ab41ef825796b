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

    /// The entry for a provider's model: an exact name, else the entry the name is followed by
    /// a date or `-latest` in (a dated version: `gpt-4o-2024-08-06`,
    /// `claude-haiku-4-5-20251001`; the alias of the newest: `claude-3-5-haiku-latest`). Another
    /// model whose name goes on from an entry's (`gpt-5-pro`, `gpt-5-nano` beside `gpt-5`) is
    /// not that entry's, whatever it costs. A `vendor/` prefix is ignored.
    pub fn find(&self, provider: &str, model: &str) -> Option<&Price> {
        let model = model.rsplit('/').next().unwrap_or(model);
        let ours = self.price.iter().filter(|p| p.provider == provider);
        let exact = ours.clone().find(|p| p.model == model);
        exact.or_else(|| {
            ours.filter(|p| {
                (model.strip_prefix(p.model.as_str()))
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest == "latest" || is_date(rest))
            })
            .max_by_key(|p| p.model.len())
        })
    }
}

/// Whether `s` is a date as model names carry it: `2024-08-06` or `20251001`.
fn is_date(s: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    match s.split('-').collect::<Vec<_>>()[..] {
        [ymd] => ymd.len() == 8 && digits(ymd),
        [y, m, d] => {
            y.len() == 4 && m.len() == 2 && d.len() == 2 && [y, m, d].into_iter().all(digits)
        }
        _ => false,
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
        assert!(p.find("openai", "gpt-5-2025-08-07").unwrap().model == "gpt-5");
        assert!(p.find("openai", "gpt-5-mini-2025-08-07").unwrap().model == "gpt-5-mini");
        let latest = p.find("anthropic", "claude-3-5-haiku-latest");
        assert_eq!(latest.unwrap().model, "claude-3-5-haiku");
        // Other models whose names go on from a priced one's are not priced as it.
        for other in [
            "gpt-5-pro",
            "gpt-5-nano",
            "gpt-5-nano-2025-08-07",
            "gpt-5-chat-latest",
            "gpt-4o-audio-preview",
            "gpt-4o-2024",
            "claude-haiku-4-5-2025100",
            "claude-haiku-4-5-2025-10-01x",
        ] {
            assert!(p.find("openai", other).is_none(), "{other}");
            assert!(p.find("anthropic", other).is_none(), "{other}");
        }
        let s = ServerReport {
            prompt_tokens: Some(1000),
            output_tokens: Some(1000),
            ..Default::default()
        };
        assert_eq!(cost(false, "openai", "gpt-5-pro", &s, &p), (None, None));
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
