//! The backends, judges and prices of one sweep, validated from its flags.

use crate::backend::http::Client;
use crate::backend::remote::Remote;
use crate::backend::spec::{self, Endpoint, UrlFlags};
use crate::grade::cost::Prices;
use crate::grade::judge::panel;
use crate::record::{BackendId, BackendKind};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The backend flags of `runner sweep` and `runner compare`, as given.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    pub backends: Vec<String>,
    pub ollama_host: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub max_tokens_field: Option<String>,
    pub backend_config: Option<PathBuf>,
    pub prices: Option<PathBuf>,
    /// Seconds.
    pub max_retry_wait: f64,
    pub judges: Vec<String>,
    pub judge_power: f64,
    /// Seconds.
    pub judge_time_limit: f64,
    pub reference: bool,
}

/// Seconds from a flag as a duration: finite, within `[min, a year]`.
fn seconds(flag: &str, v: f64, min: f64) -> Result<Duration, String> {
    const YEAR: f64 = 365.0 * 24.0 * 3600.0;
    if !(v.is_finite() && v >= min && v <= YEAR) {
        let low = if min > 0.0 {
            "more than 0"
        } else {
            "0 or more"
        };
        let got = crate::util::shown(v, 0.0);
        return Err(format!(
            "{flag} must be {low} and at most a year ({YEAR} s), got {got}"
        ));
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("{flag}: {e}"))
}

/// The first backend named again after its first place in `specs`.
fn named_twice(specs: &[BackendId]) -> Option<&BackendId> {
    (specs.iter().enumerate())
        .find(|(i, b)| specs[..*i].contains(*b))
        .map(|(_, b)| b)
}

/// What a sweep runs besides (or instead of) llama.cpp in-process.
#[derive(Default)]
pub struct Baselines {
    /// `native` is among the backends.
    pub native: bool,
    /// The HTTP backends, in command-line order.
    pub http: Vec<Remote>,
    pub judges: Vec<Endpoint>,
    /// The price table cloud requests are costed with.
    pub prices: Prices,
    pub judge_power: f64,
    pub judge_time_limit: Duration,
    pub reference: bool,
}

impl Baselines {
    /// Parses and checks the flags; every error is a one-line usage error. Without `--prices`,
    /// the shipped table prices the cloud models. No message shows an API key: a backend spec
    /// that does not parse is quoted whole, and may hold one (`opnai:$OPENAI_API_KEY`).
    pub fn from_options(a: &BackendOptions) -> Result<Baselines, String> {
        Self::built(a).map_err(|e| without_keys(&e, a))
    }

    fn built(a: &BackendOptions) -> Result<Baselines, String> {
        let config = match &a.backend_config {
            Some(p) => {
                let config = crate::util::fs::read_toml(p)?;
                spec::check_sections(&config).map_err(|e| format!("{}: {e}", p.display()))?;
                config
            }
            None => Default::default(),
        };
        let max_retry_wait = seconds("--max-retry-wait", a.max_retry_wait, 0.0)?;
        let judge_time_limit =
            seconds("--judge-time-limit", a.judge_time_limit, f64::MIN_POSITIVE)?;
        let most = panel::MAX_POWER;
        if !(a.judge_power.is_finite() && a.judge_power.abs() <= most) {
            return Err(format!(
                "--judge-power must be a number from -{most} to {most}"
            ));
        }
        if let Some(f) = &a.max_tokens_field {
            if f.trim().is_empty() || f.contains(char::is_whitespace) {
                return Err(format!("--max-tokens-field '{f}' is not a field name"));
            }
        }
        let flags = UrlFlags {
            ollama_host: a.ollama_host.clone(),
            openai_base_url: a.openai_base_url.clone(),
            anthropic_base_url: a.anthropic_base_url.clone(),
            max_tokens_field: a.max_tokens_field.clone(),
            max_retry_wait,
        };
        let prices = match &a.prices {
            Some(path) => Prices::load(path)?,
            None => Prices::shipped()?,
        };
        let specs = (a.backends.iter())
            .map(|s| s.parse::<BackendId>())
            .collect::<Result<Vec<_>, String>>()?;
        if specs.is_empty() {
            return Err("--backend names no backend".into());
        }
        let client = Client::new();
        // Each endpoint first: one whose model name holds its API key is refused without
        // naming it, before any message names a backend.
        let http: Vec<Remote> = (specs.iter().filter(|b| !b.is_native()))
            .map(|b| {
                Ok(Remote::new(
                    spec::endpoint(b, &flags, &config)?,
                    client.clone(),
                ))
            })
            .collect::<Result<_, String>>()?;
        if let Some(b) = named_twice(&specs) {
            return Err(format!("backend '{b}' is named twice"));
        }
        let mut judges = Vec::new();
        let mut judge_specs = Vec::new();
        for s in &a.judges {
            let b: BackendId = s.parse()?;
            if !matches!(b.kind, BackendKind::OpenAi | BackendKind::Anthropic) {
                return Err(format!("judge '{b}': judges are openai:MODEL or anthropic:MODEL backends (Ollama serves the OpenAI API at /v1: use openai:MODEL with --openai-base-url http://HOST:11434/v1)"));
            }
            judges.push(spec::endpoint(&b, &flags, &config)?);
            judge_specs.push(b);
        }
        // A judge named twice would score every answer twice and count twice in the panel.
        if let Some(b) = named_twice(&judge_specs) {
            return Err(format!("judge '{b}' is named twice"));
        }
        Ok(Baselines {
            prices,
            native: specs.iter().any(BackendId::is_native),
            http,
            judges,
            judge_power: a.judge_power,
            judge_time_limit,
            reference: a.reference,
        })
    }

    /// Whether an Ollama backend needs a GGUF model's chat template.
    pub fn needs_template(&self) -> bool {
        self.http
            .iter()
            .any(|h| h.endpoint.spec.kind == BackendKind::Ollama)
    }

    /// What names the sweep besides models and quantizations: the HTTP backends and their
    /// URLs (`None` for a native-only sweep, whose id stays what it always was).
    pub fn id_part(&self) -> Option<serde_json::Value> {
        if self.http.is_empty() && self.native {
            return None;
        }
        let http: Vec<(String, String)> = self
            .http
            .iter()
            .map(|h| (h.endpoint.spec.to_string(), h.endpoint.base_url.clone()))
            .collect();
        Some(serde_json::json!({ "native": self.native, "http": http }))
    }
}

/// `msg` with the value of every API key variable the backends read (the OpenAI and Anthropic
/// ones, and each `api_key_env` of the backend config) redacted.
fn without_keys(msg: &str, a: &BackendOptions) -> String {
    let config: Option<BTreeMap<String, spec::EndpointConfig>> =
        (a.backend_config.as_ref()).and_then(|p| crate::util::fs::read_toml(p).ok());
    let named = (config.iter().flatten()).filter_map(|(_, c)| c.api_key_env.clone());
    let vars = [
        spec::OPENAI_KEY_ENV.to_string(),
        spec::ANTHROPIC_KEY_ENV.to_string(),
    ];
    (vars.into_iter().chain(named))
        .filter_map(|v| std::env::var(v).ok())
        .fold(msg.to_string(), |m, key| {
            spec::Secret::new(key.trim()).redact(&m)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(backends: &[&str]) -> BackendOptions {
        BackendOptions {
            backends: backends.iter().map(|s| s.to_string()).collect(),
            max_retry_wait: 60.0,
            judge_power: 0.5,
            judge_time_limit: 120.0,
            ..Default::default()
        }
    }

    #[test]
    fn absurd_waits_and_limits_are_refused_not_panicked_on() {
        for (wait, limit) in [
            (1e20, 120.0),
            (60.0, 1e20),
            (f64::NAN, 1.0),
            (-1.0, 1.0),
            (1.0, 0.0),
        ] {
            let o = BackendOptions {
                max_retry_wait: wait,
                judge_time_limit: limit,
                ..options(&["native"])
            };
            let e = Baselines::from_options(&o).err().expect("refused");
            assert!(
                e.contains("--max-retry-wait") || e.contains("--judge-time-limit"),
                "{e}"
            );
        }
        let o = BackendOptions {
            judge_time_limit: 1e300,
            ..options(&["native"])
        };
        let e = Baselines::from_options(&o).err().expect("refused");
        assert!(e.ends_with("got 1e300"), "no 300-digit number: {e}");
        let b = Baselines::from_options(&options(&["native", "openai:m"])).unwrap();
        assert!(b.native);
        assert_eq!(b.http.len(), 1);
    }

    #[test]
    fn extreme_judge_powers_are_refused() {
        for p in [1e308, -1e308, 100.5, -101.0, f64::INFINITY, f64::NAN] {
            let o = BackendOptions {
                judge_power: p,
                ..options(&["native"])
            };
            let e = Baselines::from_options(&o).err().expect("refused");
            assert!(
                e.contains("--judge-power must be a number from -100 to 100"),
                "{e}"
            );
        }
        for p in [-100.0, 0.0, 1.0, 100.0] {
            let o = BackendOptions {
                judge_power: p,
                ..options(&["native"])
            };
            assert!(Baselines::from_options(&o).is_ok(), "{p}");
        }
    }

    #[test]
    fn backends_are_named_once() {
        let e = Baselines::from_options(&options(&["native", "native"]))
            .err()
            .unwrap();
        assert!(e.contains("named twice"), "{e}");
        assert!(Baselines::from_options(&options(&[])).is_err());
        let mut o = options(&["native"]);
        o.judges = vec!["openai:x".into(), "anthropic:x".into(), "openai:x".into()];
        let e = Baselines::from_options(&o).err().expect("refused");
        assert_eq!(e, "judge 'openai:x' is named twice");
        o.judges = vec!["openai:x".into(), "anthropic:x".into(), "openai:y".into()];
        assert_eq!(Baselines::from_options(&o).unwrap().judges.len(), 3);
        o.judges = vec!["ollama:x".into()];
        assert!(Baselines::from_options(&o)
            .err()
            .unwrap()
            .contains("judges are"));
    }
}
