//! The backends, judges and prices of one sweep, validated from its flags.

use super::args::BackendArgs;
use super::cell::Http;
use super::cost::{self, Prices};
use super::http::Client;
use super::spec::{self, BackendSpec, Endpoint, Kind, UrlFlags};
use std::time::Duration;

/// What a sweep runs besides (or instead of) llama.cpp in-process.
pub struct Baselines {
    /// `native` is among the backends.
    pub native: bool,
    /// The HTTP backends, in command-line order.
    pub http: Vec<Http>,
    pub judges: Vec<Endpoint>,
    pub judge_power: f64,
    pub judge_time_limit: Duration,
    pub reference: bool,
}

impl Baselines {
    /// Parses and checks the flags; every error is a one-line usage error.
    pub fn from_args(a: &BackendArgs) -> Result<Baselines, String> {
        let config = match &a.backend_config {
            Some(p) => spec::load_config(p)?,
            None => Default::default(),
        };
        if !(a.max_retry_wait.is_finite() && a.max_retry_wait >= 0.0) {
            return Err("--max-retry-wait must be 0 or more".into());
        }
        if !(a.judge_time_limit.is_finite() && a.judge_time_limit > 0.0) {
            return Err("--judge-time-limit must be more than 0".into());
        }
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
            max_retry_wait: Duration::from_secs_f64(a.max_retry_wait),
        };
        let prices_path = a.prices.clone().unwrap_or_else(cost::builtin_path);
        let prices = Prices::load(&prices_path)?;
        let mut specs: Vec<BackendSpec> = Vec::new();
        for s in &a.backends {
            let b = BackendSpec::parse(s)?;
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
            http.push(Http {
                endpoint: spec::endpoint(b, &flags, &config)?,
                client: client.clone(),
                prices: prices.clone(),
                template_model: None,
            });
        }
        let mut judges = Vec::new();
        for s in &a.judges {
            let b = BackendSpec::parse(s)?;
            if !matches!(b.kind, Kind::OpenAi | Kind::Anthropic) {
                return Err(format!("judge '{b}': judges are openai:MODEL or anthropic:MODEL backends (Ollama serves the OpenAI API at /v1: use openai:MODEL with --openai-base-url http://HOST:11434/v1)"));
            }
            judges.push(spec::endpoint(&b, &flags, &config)?);
        }
        Ok(Baselines {
            native: specs.iter().any(BackendSpec::is_native),
            http,
            judges,
            judge_power: a.judge_power,
            judge_time_limit: Duration::from_secs_f64(a.judge_time_limit),
            reference: a.reference,
        })
    }

    /// Whether an Ollama backend needs a GGUF model's chat template.
    pub fn needs_template(&self) -> bool {
        self.http
            .iter()
            .any(|h| h.endpoint.spec.kind == Kind::Ollama)
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
