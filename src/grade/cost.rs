//! What a request cost: nothing for local backends, the provider's own figure when it reports
//! one, else token counts priced from a dated table (`scenarios/prices.toml`).

use crate::record::{BackendKind, ServerReport};
use serde::Deserialize;
use std::path::Path;

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

/// The most a price may be, US dollars per million tokens: past every provider's, and low enough
/// that a request of a hundred million tokens at it stays within the cost a record may hold (a
/// million dollars, `record::plausible`).
pub const MAX_PRICE: f64 = 10_000.0;

impl Prices {
    /// Reads a price table; every error is one line naming the file. Each price is from 0 to
    /// [`MAX_PRICE`], each provider a kind of HTTP backend (`openai`, `anthropic`, `ollama`),
    /// each provider's model priced once, and each date written `YYYY-MM-DD`.
    pub fn load(path: &Path) -> Result<Prices, String> {
        let p: Prices = crate::util::fs::read_toml(path)?;
        p.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(p)
    }

    /// The shipped table (`scenarios/prices.toml`), read from the binary: no file is needed,
    /// so a cache that cannot be written costs nothing here.
    pub fn shipped() -> Result<Prices, String> {
        let p: Prices = toml::from_str(crate::scenario::SHIPPED_PRICES)
            .map_err(|e| format!("the shipped price table: {}", e.message()))?;
        p.check()
            .map_err(|e| format!("the shipped price table: {e}"))?;
        Ok(p)
    }

    /// Why an entry cannot be right: a price that is no finite number, its first price out of
    /// range, a provider no backend is, a provider's model priced twice, or a date not written
    /// `YYYY-MM-DD` (a provider or date quoted only when it is a plain word, see [`plain_word`]).
    fn check(&self) -> Result<(), String> {
        let providers: Vec<&str> = (BackendKind::ALL.iter())
            .filter(|k| **k != BackendKind::Native)
            .map(|k| k.as_str())
            .collect();
        for (i, e) in self.price.iter().enumerate() {
            let all = [Some(e.input), e.cached_input, e.cache_write, Some(e.output)];
            if all.iter().flatten().any(|v| !v.is_finite()) {
                return Err(format!("{}: prices must be finite numbers", e.model));
            }
            if all.iter().flatten().any(|v| *v < 0.0) {
                return Err(format!("{}: prices must be 0 or more", e.model));
            }
            if let Some(v) = all.iter().flatten().find(|v| **v > MAX_PRICE) {
                return Err(format!(
                    "{}: prices must be at most {MAX_PRICE} USD per million tokens, got {}",
                    e.model,
                    crate::util::shown(*v, 1e-4)
                ));
            }
            if !providers.contains(&e.provider.as_str()) {
                let provider = match plain_word(&e.provider) {
                    true => format!("provider '{}'", e.provider),
                    false => "the provider".to_string(),
                };
                return Err(format!(
                    "{}: {provider} is not one of {}",
                    e.model,
                    providers.join(", ")
                ));
            }
            let before = &self.price[..i];
            if (before.iter()).any(|o| o.provider == e.provider && o.model == e.model) {
                return Err(format!(
                    "{}:{} is priced twice (one entry per provider and model)",
                    e.provider, e.model
                ));
            }
            if !is_ymd(&e.date) {
                return Err(match plain_word(&e.date) {
                    true => format!(
                        "{}: date '{}' is not a date written YYYY-MM-DD",
                        e.model, e.date
                    ),
                    false => format!("{}: the date is not written YYYY-MM-DD", e.model),
                });
            }
        }
        Ok(())
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

/// Whether a string of the table may be quoted in a message: a short plain word (ASCII letters,
/// digits, `-`, `_`, `.`; at most 32 characters). Anything else (a secret pasted in the wrong
/// field, text with spaces) is not shown, as no string value of a config file is.
fn plain_word(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `s` is a calendar date written `YYYY-MM-DD` (`2025-11-01`).
fn is_ymd(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(b.len() == 10 && b[4] == b'-' && b[7] == b'-') {
        return false;
    }
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let number = |r: std::ops::Range<usize>| s[r].parse::<u8>().unwrap_or(0);
    let (Ok(year), Ok(month)) = (s[0..4].parse::<i32>(), time::Month::try_from(number(5..7)))
    else {
        return false;
    };
    time::Date::from_calendar_date(year, month, number(8..10)).is_ok()
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
        let p = Prices::shipped().unwrap();
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

    /// Loads `entry` as a price table written in `dir`.
    fn load_one(dir: &Path, entry: &str) -> Result<Prices, String> {
        let path = dir.join("prices.toml");
        std::fs::write(&path, entry).unwrap();
        Prices::load(&path)
    }

    const GOOD: &str = "[[price]]\nprovider = \"openai\"\nmodel = \"m\"\ninput = 2.5\noutput = 10.0\ndate = \"2025-11-01\"\nsource = \"s\"\n";

    #[test]
    fn a_table_a_sweep_would_misprice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = load_one(dir.path(), GOOD).unwrap();
        assert_eq!(p.price.len(), 1);
        let at_most = GOOD.replace("output = 10.0", "output = 10000.0");
        assert!(load_one(dir.path(), &at_most).is_ok());
        for (from, to, want) in [
            (
                "output = 10.0",
                "output = 1e300",
                "m: prices must be at most 10000 USD per million tokens, got 1e300",
            ),
            (
                "input = 2.5",
                "input = 2.5\ncached_input = 10000.5",
                "m: prices must be at most 10000 USD per million tokens, got 10000.5",
            ),
            ("input = 2.5", "input = -1.0", "m: prices must be 0 or more"),
            (
                "output = 10.0",
                "output = inf",
                "m: prices must be finite numbers",
            ),
            (
                "output = 10.0",
                "output = nan",
                "m: prices must be finite numbers",
            ),
            (
                "input = 2.5",
                "input = -inf",
                "m: prices must be finite numbers",
            ),
            (
                "input = 2.5",
                "input = 2.5\ncache_write = -nan",
                "m: prices must be finite numbers",
            ),
            (
                "provider = \"openai\"",
                "provider = \"sk-live-SECRET7 and more\"",
                "m: the provider is not one of ollama, openai, anthropic",
            ),
            (
                "provider = \"openai\"",
                "provider = \"sk-proj-0123456789abcdefghijklmnopqrstuvwxyz\"",
                "m: the provider is not one of ollama, openai, anthropic",
            ),
            (
                "2025-11-01",
                "Nov 2025",
                "m: the date is not written YYYY-MM-DD",
            ),
            (
                "2025-11-01",
                "sk-ant-0123456789abcdefghijklmnopqrstuvwxyz",
                "m: the date is not written YYYY-MM-DD",
            ),
            (
                "provider = \"openai\"",
                "provider = \"opnai\"",
                "m: provider 'opnai' is not one of ollama, openai, anthropic",
            ),
            (
                "provider = \"openai\"",
                "provider = \"native\"",
                "m: provider 'native' is not one of ollama, openai, anthropic",
            ),
            (
                "2025-11-01",
                "2025-11",
                "m: date '2025-11' is not a date written YYYY-MM-DD",
            ),
            (
                "2025-11-01",
                "2025-13-01",
                "m: date '2025-13-01' is not a date written YYYY-MM-DD",
            ),
            (
                "2025-11-01",
                "01/11/2025",
                "m: the date is not written YYYY-MM-DD",
            ),
            (
                "2025-11-01",
                "2025-02-30",
                "m: date '2025-02-30' is not a date written YYYY-MM-DD",
            ),
        ] {
            let e = load_one(dir.path(), &GOOD.replace(from, to)).unwrap_err();
            let path = dir.path().join("prices.toml");
            assert_eq!(e, format!("{}: {want}", path.display()));
        }
        let twice = format!("{GOOD}{}", GOOD.replace("2.5", "3.0"));
        let e = load_one(dir.path(), &twice).unwrap_err();
        assert!(
            e.ends_with(": openai:m is priced twice (one entry per provider and model)"),
            "{e}"
        );
        // The same model of another provider is another entry.
        let other = format!("{GOOD}{}", GOOD.replace("\"openai\"", "\"anthropic\""));
        assert_eq!(load_one(dir.path(), &other).unwrap().price.len(), 2);
        for date in ["2024-02-29", "1999-12-31"] {
            assert!(is_ymd(date), "{date}");
        }
        for date in [
            "2023-02-29",
            "+025-11-01",
            "2025-1-01",
            "2025-11-01 ",
            "２025-11-01",
        ] {
            assert!(!is_ymd(date), "{date}");
        }
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
