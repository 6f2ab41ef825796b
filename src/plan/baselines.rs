//! The backends, judges and prices of one sweep, validated from its flags.

use crate::backend::http::Client;
use crate::backend::remote::Remote;
use crate::backend::spec::{self, Endpoint, UrlFlags};
use crate::grade::cost::{self, Prices};
use crate::record::{BackendId, BackendKind};
use crate::util::flags::parse_seconds;
use std::path::PathBuf;
use std::time::Duration;

/// The backend flags of `runner sweep` and `runner compare`, as given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendOptions {
    /// Backends to run the scenarios through: native (llama.cpp in-process), ollama:MODEL,
    /// openai:MODEL (any OpenAI-compatible server), anthropic:MODEL; comma-separated.
    #[arg(
        long = "backend",
        value_delimiter = ',',
        default_value = "native",
        value_name = "LIST"
    )]
    pub backends: Vec<String>,
    /// Ollama's address [default: http://127.0.0.1:11434, or the backend config's].
    #[arg(long, value_name = "URL")]
    pub ollama_host: Option<String>,
    /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1 for llama-server
    /// [default: https://api.openai.com/v1]. Key: $OPENAI_API_KEY.
    #[arg(long, value_name = "URL")]
    pub openai_base_url: Option<String>,
    /// Base URL of the Anthropic API [default: https://api.anthropic.com]. Key: $ANTHROPIC_API_KEY.
    #[arg(long, value_name = "URL")]
    pub anthropic_base_url: Option<String>,
    /// Name of the OpenAI token-limit field: max_tokens or max_completion_tokens [default: max_tokens].
    #[arg(long, value_name = "NAME")]
    pub max_tokens_field: Option<String>,
    /// Backend config file (TOML): base URLs, key variable names, headers, extra body fields,
    /// per kind ([openai]) or per backend (["openai:MODEL"]).
    #[arg(long, value_name = "FILE")]
    pub backend_config: Option<PathBuf>,
    /// Price table for cloud models [default: scenarios/prices.toml].
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Longest total wait for retries after HTTP 429 (Retry-After) per request, in seconds.
    #[arg(long, default_value_t = 60.0, value_name = "SECS", value_parser = parse_seconds)]
    pub max_retry_wait: f64,
    /// Judges that score every answer against the scenario's rubric: openai:MODEL or
    /// anthropic:MODEL backends, comma-separated.
    #[arg(long = "judge", value_delimiter = ',', value_name = "LIST")]
    pub judges: Vec<String>,
    /// Exponent of the power mean across judges (1: arithmetic mean; below 1 leans to the
    /// harsher judge).
    #[arg(long, default_value_t = crate::grade::judge::panel::DEFAULT_POWER, value_name = "P", allow_negative_numbers = true)]
    pub judge_power: f64,
    /// Time limit of each judge request, in seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS", value_parser = parse_seconds)]
    pub judge_time_limit: f64,
    /// Show published reference figures (results/reference/published.csv) under the comparison.
    #[arg(long)]
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
        return Err(format!(
            "{flag} must be {low} and at most a year ({YEAR} s), got {v}"
        ));
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("{flag}: {e}"))
}

/// What a sweep runs besides (or instead of) llama.cpp in-process.
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
    /// Parses and checks the flags; every error is a one-line usage error.
    pub fn from_options(a: &BackendOptions) -> Result<Baselines, String> {
        let config = match &a.backend_config {
            Some(p) => spec::load_config(p)?,
            None => Default::default(),
        };
        let max_retry_wait = seconds("--max-retry-wait", a.max_retry_wait, 0.0)?;
        let judge_time_limit =
            seconds("--judge-time-limit", a.judge_time_limit, f64::MIN_POSITIVE)?;
        if !a.judge_power.is_finite() {
            return Err("--judge-power must be a number".into());
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
        let prices_path = a.prices.clone().unwrap_or_else(cost::builtin_path);
        let prices = Prices::load(&prices_path)?;
        let mut specs: Vec<BackendId> = Vec::new();
        for s in &a.backends {
            let b: BackendId = s.parse()?;
            if specs.contains(&b) {
                return Err(format!("backend '{b}' is named twice"));
            }
            specs.push(b);
        }
        if specs.is_empty() {
            return Err("--backend names no backend".into());
        }
        let client = Client::new();
        let mut http = Vec::new();
        for b in specs.iter().filter(|b| !b.is_native()) {
            let ep = spec::endpoint(b, &flags, &config)?;
            http.push(Remote::new(ep, client.clone(), prices.clone()));
        }
        let mut judges = Vec::new();
        for s in &a.judges {
            let b: BackendId = s.parse()?;
            if !matches!(b.kind, BackendKind::OpenAi | BackendKind::Anthropic) {
                return Err(format!("judge '{b}': judges are openai:MODEL or anthropic:MODEL backends (Ollama serves the OpenAI API at /v1: use openai:MODEL with --openai-base-url http://HOST:11434/v1)"));
            }
            judges.push(spec::endpoint(&b, &flags, &config)?);
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
        let b = Baselines::from_options(&options(&["native", "openai:m"])).unwrap();
        assert!(b.native);
        assert_eq!(b.http.len(), 1);
    }

    #[test]
    fn backends_are_named_once() {
        let e = Baselines::from_options(&options(&["native", "native"]))
            .err()
            .unwrap();
        assert!(e.contains("named twice"), "{e}");
        assert!(Baselines::from_options(&options(&[])).is_err());
        let mut o = options(&["native"]);
        o.judges = vec!["ollama:x".into()];
        assert!(Baselines::from_options(&o)
            .err()
            .unwrap()
            .contains("judges are"));
    }
}
