//! Backend names on the command line (`native`, `ollama:MODEL`, `openai:MODEL`,
//! `anthropic:MODEL`) and the endpoint settings each HTTP backend runs with: URLs from flags,
//! a backend config file, and API keys from environment variables only.

use crate::record::{BackendId, BackendKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Default base URLs.
pub const OLLAMA_HOST: &str = "http://127.0.0.1:11434";
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// How long an Ollama warm-up (loading the model, which can take minutes for a large one
/// from a slow disk) may take unless the backend config says otherwise, and the most it may
/// be set to.
pub const WARMUP_LIMIT: Duration = Duration::from_secs(600);
pub const MAX_WARMUP_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// Environment variables holding API keys (never flags, never files).
pub const OPENAI_KEY_ENV: &str = "OPENAI_API_KEY";
pub const ANTHROPIC_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// One section of a backend config file (TOML): `[openai]`, `[anthropic]`, `[ollama]` for a
/// kind, or `["openai:MODEL"]` for one backend (its fields win).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Extra request headers (never put keys here: use `api_key_env`).
    pub headers: Option<BTreeMap<String, String>>,
    /// OpenAI: the token-limit field, `max_tokens` (default) or `max_completion_tokens`.
    pub max_tokens_field: Option<String>,
    /// Extra JSON fields merged into every request body (e.g. `cache_prompt = false`).
    pub extra: Option<toml::Table>,
    /// Model family, for flagging self-judging (`claude`, `gpt`, `qwen`, ...).
    pub family: Option<String>,
    /// Whether the endpoint costs nothing at the margin [default: loopback/private hosts].
    pub local: Option<bool>,
    /// Ollama: `num_thread` and `num_ctx` options.
    pub num_thread: Option<u32>,
    pub num_ctx: Option<u32>,
    /// Ollama: how long the server keeps the model loaded [default: 30m].
    pub keep_alive: Option<String>,
    /// Ollama: seconds the warm-up request (the model load) may take [default: 600].
    pub warmup_limit: Option<f64>,
}

impl EndpointConfig {
    /// `over`'s fields where set, else these.
    fn merged(&self, over: &EndpointConfig) -> EndpointConfig {
        let (o, s) = (over.clone(), self.clone());
        macro_rules! either {
            ($($field:ident),*) => { EndpointConfig { $($field: o.$field.or(s.$field)),* } };
        }
        either! {
            base_url, api_key_env, headers, max_tokens_field, extra, family, local, num_thread,
            num_ctx, keep_alive, warmup_limit
        }
    }
}

/// Checks the section names of a backend config: a kind (`[openai]`, `[anthropic]`,
/// `[ollama]`) or one HTTP backend (`["openai:MODEL"]`). Any other name (a misspelt kind,
/// another server's) is refused, naming it, rather than left unused while the requests it was
/// meant for go to the default URL.
pub fn check_sections(config: &BTreeMap<String, EndpointConfig>) -> Result<(), String> {
    let kinds = [
        BackendKind::OpenAi,
        BackendKind::Anthropic,
        BackendKind::Ollama,
    ];
    let known = |name: &str| {
        kinds.iter().any(|k| k.as_str() == name)
            || name.parse::<BackendId>().is_ok_and(|b| !b.is_native())
    };
    match config.keys().find(|name| !known(name)) {
        Some(name) => {
            let bare = !name.is_empty()
                && (name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let shown = match bare {
                true => name.clone(),
                false => format!("{name:?}"),
            };
            Err(format!(
                "unknown section [{shown}]: sections are [openai], [anthropic], [ollama] or [\"KIND:MODEL\"] for one backend"
            ))
        }
        None => Ok(()),
    }
}

/// An API key, read from the environment. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(key: impl Into<String>) -> Secret {
        Secret(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The key as a server may send it back: as given, and as a JSON string holds it (`\\`
    /// and `\"` escaped, and `/` also as `\/`, as PHP writes it). None for a key too short to
    /// redact.
    fn forms(&self) -> Vec<String> {
        if self.0.len() < 4 {
            return Vec::new();
        }
        let quoted = serde_json::to_string(&self.0).unwrap_or_default();
        let json = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .unwrap_or(&self.0)
            .to_string();
        let mut forms = vec![self.0.clone(), json.replace('/', "\\/"), json];
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        forms
    }

    /// `text` with every occurrence of the key replaced, for messages built from what a
    /// server sent back (some echo the key they were given).
    pub fn redact(&self, text: &str) -> String {
        self.forms()
            .iter()
            .fold(text.to_string(), |t, f| t.replace(f, "[redacted]"))
    }

    /// Whether the key is in `text` (a key too short to redact never counts).
    pub fn appears_in(&self, text: &str) -> bool {
        self.forms().iter().any(|f| text.contains(f))
    }

    /// Whether the key is in `url` as it is written or once its `%XX` escapes are decoded.
    fn appears_in_url(&self, url: &str) -> bool {
        self.appears_in(url) || self.appears_in(&percent_decoded(url))
    }

    /// `text`, cut from a longer one at its end, with the key redacted, and also any part of
    /// the key the cut left at its end (the first characters of a key the cut went through),
    /// from 4 characters on: fewer say no more than a key's public scheme (`sk-`), and would
    /// take ordinary words' last letters with them.
    pub fn redact_cut(&self, text: &str) -> String {
        let mut out = self.redact(text);
        // The longest start of any form the text ends with.
        let cut = (self.forms().iter())
            .filter_map(|form| {
                (4..form.len())
                    .rev()
                    .filter(|&n| form.is_char_boundary(n))
                    .find(|&n| out.ends_with(&form[..n]))
            })
            .max();
        if let Some(n) = cut {
            out.truncate(out.len() - n);
            out.push_str("[redacted]");
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Everything a request to one HTTP backend needs.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub spec: BackendId,
    /// Base URL without a trailing slash.
    pub base_url: String,
    pub key: Option<Secret>,
    pub headers: Vec<(String, String)>,
    pub max_tokens_field: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub family: Option<String>,
    pub local: bool,
    pub num_thread: Option<u32>,
    pub num_ctx: Option<u32>,
    pub keep_alive: String,
    /// Ollama: how long the warm-up request (the model load) may take.
    pub warmup_limit: Duration,
    /// How long to wait in total for HTTP 429 retries of one request.
    pub max_retry_wait: Duration,
}

/// Base URLs given by flags (`None`: the config file's, else the default).
#[derive(Debug, Clone, Default)]
pub struct UrlFlags {
    pub ollama_host: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub max_tokens_field: Option<String>,
    pub max_retry_wait: Duration,
}

/// Builds the endpoint of an HTTP backend: flags win over the config file, which wins over
/// defaults; the key comes from the environment variable the config names, else the kind's.
pub fn endpoint(
    spec: &BackendId,
    flags: &UrlFlags,
    config: &BTreeMap<String, EndpointConfig>,
) -> Result<Endpoint, String> {
    let empty = EndpointConfig::default();
    let by_kind = config.get(spec.kind.as_str()).unwrap_or(&empty);
    let cfg = by_kind.merged(config.get(&spec.to_string()).unwrap_or(&empty));
    let (flag_url, default_url, key_env) = match spec.kind {
        BackendKind::Ollama => (&flags.ollama_host, OLLAMA_HOST, None),
        BackendKind::OpenAi => (
            &flags.openai_base_url,
            OPENAI_BASE_URL,
            Some(OPENAI_KEY_ENV),
        ),
        BackendKind::Anthropic => (
            &flags.anthropic_base_url,
            ANTHROPIC_BASE_URL,
            Some(ANTHROPIC_KEY_ENV),
        ),
        BackendKind::Native => return Err("native is not an HTTP backend".into()),
    };
    let key_env = cfg.api_key_env.as_deref().or(key_env);
    if let Some(var) = key_env {
        check_model_name(spec, var)?;
    }
    let key = match key_env {
        Some(var) => read_key(spec, var)?,
        None => None,
    };
    let given = flag_url.clone().or(cfg.base_url.clone());
    if let (Some(k), Some(url), Some(var)) = (&key, &given, key_env) {
        if k.appears_in_url(url) {
            return Err(format!(
                "{spec}: the base URL holds the API key (${var}); the key is sent as a header only: give the URL without it"
            ));
        }
    }
    let (base, host) = base_url(spec, given, default_url)?;
    check_headers(spec, cfg.headers.as_ref())?;
    let extra = match &cfg.extra {
        Some(t) => match serde_json::to_value(t) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(format!("{spec}: `extra` must be a table")),
        },
        None => serde_json::Map::new(),
    };
    let max_tokens_field = (flags.max_tokens_field.as_ref())
        .or(cfg.max_tokens_field.as_ref())
        .map_or("max_tokens", |f| f.trim());
    if !["max_tokens", "max_completion_tokens"].contains(&max_tokens_field) {
        return Err(format!(
            "{spec}: the token-limit field is max_tokens or max_completion_tokens, not '{max_tokens_field}'"
        ));
    }
    let warmup_limit = match cfg.warmup_limit {
        None => WARMUP_LIMIT,
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_WARMUP_LIMIT.as_secs_f64() => {
            Duration::from_secs_f64(s)
        }
        Some(s) => {
            return Err(format!(
                "{spec}: warmup_limit is seconds above 0 and at most {}, not {}",
                MAX_WARMUP_LIMIT.as_secs(),
                crate::util::shown(s, 1e-4)
            ))
        }
    };
    Ok(Endpoint {
        spec: spec.clone(),
        local: cfg.local.unwrap_or_else(|| is_local_host(&host)),
        base_url: base,
        key,
        headers: cfg
            .headers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        max_tokens_field: max_tokens_field.to_string(),
        extra,
        family: cfg.family.clone(),
        num_thread: cfg.num_thread,
        num_ctx: cfg.num_ctx,
        keep_alive: cfg.keep_alive.clone().unwrap_or_else(|| "30m".into()),
        warmup_limit,
        max_retry_wait: flags.max_retry_wait,
    })
}

/// Whether `c` may stand in an HTTP header value: visible ASCII, a space or a tab.
fn header_char(c: char) -> bool {
    c == ' ' || c == '\t' || c.is_ascii_graphic()
}

/// The API key in environment variable `var`, none when unset or blank. One an HTTP header
/// cannot carry (a line break, a control or non-ASCII character, or not UTF-8 at all) is
/// refused, naming the variable and never the key.
fn read_key(spec: &BackendId, var: &str) -> Result<Option<Secret>, String> {
    let bad = || {
        format!(
            "{spec}: ${var} holds a character an HTTP header cannot carry (a line break, a control or non-ASCII character); set it to the key alone"
        )
    };
    let key = match std::env::var(var) {
        Ok(k) => k,
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => return Err(bad()),
    };
    let key = key.trim();
    if key.is_empty() {
        return Ok(None);
    }
    if !key.chars().all(header_char) {
        return Err(bad());
    }
    Ok(Some(Secret(key.to_string())))
}

/// Refuses a model name that holds the API key in environment variable `var` (a key too short
/// to redact never counts): the name is shown in every table and kept in every record. The
/// error names the kind and the variable, never the name.
fn check_model_name(spec: &BackendId, var: &str) -> Result<(), String> {
    let Some(raw) = std::env::var_os(var) else {
        return Ok(());
    };
    let raw = raw.to_string_lossy();
    let key = Secret::new(raw.trim());
    // A short placeholder key (`ollama`, `none`) that a model's name holds by chance says
    // nothing secret: only the whole name counts for it.
    let long = raw.trim().chars().count() >= 16;
    let holds = match long {
        true => key.appears_in(&spec.model),
        false => key.appears_in(&spec.model) && spec.model == raw.trim(),
    };
    if holds {
        return Err(format!(
            "{}: the model name holds the API key (${var}); the key is sent as a header only: name the model alone",
            spec.kind
        ));
    }
    Ok(())
}

/// Refuses a configured header that cannot be sent: a name that is not an HTTP token, a value
/// with a line break, a control or a non-ASCII character (the value is not shown: it may be a
/// credential).
fn check_headers(
    spec: &BackendId,
    headers: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    for (name, value) in headers.into_iter().flatten() {
        if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!(
                "{spec}: header name {name:?} cannot be sent: a name is letters, digits and !#$%&'*+-.^_`|~ only"
            ));
        }
        if !value.chars().all(header_char) {
            return Err(format!(
                "{spec}: the value of header {name:?} holds a character an HTTP header cannot carry (a line break, a control or non-ASCII character)"
            ));
        }
    }
    Ok(())
}

/// `text` with each `%XX` escape made the byte it stands for (bytes that are not UTF-8 as
/// U+FFFD); anything else as it is.
fn percent_decoded(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex
            .filter(|_| b[i] == b'%')
            .map(|h| u8::from_str_radix(h, 16))
        {
            Some(Ok(byte)) => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The base URL (given, else the default) without a trailing slash, and its host: an
/// http(s) URL with a host, without credentials, a query or a fragment in it (request paths
/// are appended to it), and with a port that exists. A refusal says what is wrong without
/// repeating the URL, whose query or user part may hold a key.
fn base_url(
    spec: &BackendId,
    given: Option<String>,
    default: &str,
) -> Result<(String, String), String> {
    let mut base = given.unwrap_or_else(|| default.to_string());
    if base.trim().is_empty() {
        return Err(format!(
            "{spec}: the base URL is empty; give scheme, host, port and path"
        ));
    }
    if !base.contains("://") {
        base = format!("http://{base}");
    }
    // The host and port: what follows the scheme up to a path, query or fragment, after any
    // user part.
    let after_scheme = base.split_once("://").map_or("", |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host_and_port = authority.rsplit('@').next().unwrap_or("");
    if host_and_port.is_empty() || host_and_port.starts_with(':') {
        return Err(format!(
            "{spec}: the base URL has no host; give scheme, host, port and path"
        ));
    }
    let base = base.trim_end_matches('/').to_string();
    let url = ureq::http::Uri::try_from(base.as_str())
        .map_err(|_| format!("{spec}: the base URL is not a URL"))?;
    if url.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!(
            "{spec}: the base URL holds credentials; put the key in an environment variable (api_key_env) instead"
        ));
    }
    if base.contains(['?', '#']) {
        return Err(format!(
            "{spec}: the base URL has a query or fragment; request paths are appended to it, so give scheme, host, port and path only"
        ));
    }
    let authority = url.authority().map_or("", |a| a.as_str());
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, rest)| rest);
    let port = after_host.rsplit_once(':').map(|(_, p)| p);
    if port.is_some_and(|p| !matches!(p.parse::<u16>(), Ok(1..))) {
        return Err(format!(
            "{spec}: the port of the base URL is not a port (1 to 65535)"
        ));
    }
    let host = url.host().unwrap_or("").to_string();
    if !matches!(url.scheme_str(), Some("http" | "https")) {
        // A scheme is letters, digits, `+`, `-` and `.`: no key.
        let scheme = url.scheme_str().unwrap_or("none");
        return Err(format!(
            "{spec}: the base URL is not an http(s) URL (its scheme is {scheme})"
        ));
    }
    if host.is_empty() {
        return Err(format!(
            "{spec}: the base URL has no host; give scheme, host, port and path"
        ));
    }
    Ok((base, host))
}

/// Loopback, private-range and link-local addresses and `localhost`: served on this machine
/// or this network, so free at the margin. An IPv4 address written as IPv6
/// (`::ffff:127.0.0.1`) is the IPv4 address.
pub fn is_local_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") || h.ends_with(".local") {
        return true;
    }
    let v4 = |a: std::net::Ipv4Addr| a.is_loopback() || a.is_private() || a.is_link_local();
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => v4(a),
        Ok(std::net::IpAddr::V6(a)) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(v4),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded_and_anything_else_kept() {
        assert_eq!(percent_decoded("a%2Fb%2fc%41"), "a/b/cA");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
        assert_eq!(percent_decoded("%C3%A9%FF"), "é\u{fffd}");
        assert_eq!(percent_decoded("é%"), "é%");
    }

    #[test]
    fn a_key_sent_back_inside_a_json_string_is_redacted_too() {
        let key = Secret::new(r#"sk-abc/def\ghi"j+k="#);
        let as_json = serde_json::to_string(key.expose()).unwrap();
        let php = as_json.replace('/', r"\/");
        for body in [
            format!("bad key {}", key.expose()),
            format!(
                r#"{{"authorization":"Bearer {}"}}"#,
                &as_json[1..as_json.len() - 1]
            ),
            format!("<html>invalid api key: {php}</html>"),
        ] {
            assert!(key.appears_in(&body), "{body}");
            let shown = key.redact(&body);
            assert!(shown.contains("[redacted]"), "{shown}");
            assert!(!shown.contains("sk-abc"), "{shown}");
        }
        // A body cut inside the escaped key leaves none of it.
        let cut = format!("echo: {}", &php[1..12]);
        assert_eq!(key.redact_cut(&cut), "echo: [redacted]");
        // The longest start of any form is cut, whichever form comes first.
        let key = Secret::new("abcd/abcd1");
        assert_eq!(key.redact_cut("x abcd/abcd"), "x [redacted]");
        assert_eq!(Secret::new("abc").redact("abc \"abc\""), "abc \"abc\"");
    }

    #[test]
    fn backend_names_parse() {
        assert!("native".parse::<BackendId>().unwrap().is_native());
        let b: BackendId = "ollama:qwen2.5-coder:14b".parse().unwrap();
        assert_eq!(b.kind, BackendKind::Ollama);
        assert_eq!(b.model, "qwen2.5-coder:14b");
        assert_eq!(b.to_string(), "ollama:qwen2.5-coder:14b");
        assert_eq!(
            "openai:gpt-4o".parse::<BackendId>().unwrap().kind,
            BackendKind::OpenAi
        );
        for bad in ["", "openai", "openai:", "vllm:x", "Native"] {
            assert!(bad.parse::<BackendId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_warmup_limit_out_of_range_is_told_in_a_few_digits() {
        let spec: BackendId = "ollama:m".parse().unwrap();
        for (limit, shown) in [(1e300, "1e300"), (-1.0, "-1"), (86400.5, "86400.5")] {
            let mut cfg = BTreeMap::new();
            cfg.insert(
                "ollama".to_string(),
                EndpointConfig {
                    warmup_limit: Some(limit),
                    ..Default::default()
                },
            );
            let e = endpoint(&spec, &UrlFlags::default(), &cfg).unwrap_err();
            assert_eq!(
                e,
                format!("ollama:m: warmup_limit is seconds above 0 and at most 86400, not {shown}")
            );
        }
    }

    #[test]
    fn flags_win_over_config_and_config_over_defaults() {
        let spec: BackendId = "openai:m".parse().unwrap();
        let mut cfg = BTreeMap::new();
        cfg.insert(
            "openai".to_string(),
            EndpointConfig {
                base_url: Some("http://10.0.0.2:8000/v1/".into()),
                max_tokens_field: Some("max_completion_tokens".into()),
                ..Default::default()
            },
        );
        let e = endpoint(&spec, &UrlFlags::default(), &cfg).unwrap();
        assert_eq!(e.base_url, "http://10.0.0.2:8000/v1");
        assert_eq!(e.max_tokens_field, "max_completion_tokens");
        assert!(e.local);
        let flags = UrlFlags {
            openai_base_url: Some("https://openrouter.ai/api/v1".into()),
            ..Default::default()
        };
        let e = endpoint(&spec, &flags, &cfg).unwrap();
        assert_eq!(e.base_url, "https://openrouter.ai/api/v1");
        assert!(!e.local);
        let e = endpoint(&spec, &UrlFlags::default(), &BTreeMap::new()).unwrap();
        assert_eq!(e.base_url, OPENAI_BASE_URL);
        let flags = UrlFlags {
            max_tokens_field: Some("bogus".into()),
            ..Default::default()
        };
        let e = endpoint(&spec, &flags, &cfg).unwrap_err();
        assert!(
            e.ends_with("max_tokens or max_completion_tokens, not 'bogus'"),
            "{e}"
        );
        for bad in [
            "ftp://x",
            "http://user:sk-1@host/v1",
            "http://h:8080/v1?x=1",
            "http://h:8080/v1#frag",
            "http://h:70000/v1",
            "http://h:65536",
            "http://h:8080/v1?key=sk-1",
            "http://h:sk-1/v1",
        ] {
            let flags = UrlFlags {
                openai_base_url: Some(bad.into()),
                ..Default::default()
            };
            let e = endpoint(&spec, &flags, &cfg).unwrap_err();
            assert!(!e.contains("sk-1"), "{e}");
            // The message says what is wrong without repeating the URL.
            assert!(!e.contains(bad) && !e.contains("h:"), "{e}");
        }
        let e = |flags: UrlFlags, spec: &str| {
            endpoint(
                &spec.parse::<BackendId>().unwrap(),
                &flags,
                &BTreeMap::new(),
            )
            .unwrap_err()
        };
        let ollama = |host: &str| UrlFlags {
            ollama_host: Some(host.into()),
            ..Default::default()
        };
        let openai = |url: &str| UrlFlags {
            openai_base_url: Some(url.into()),
            ..Default::default()
        };
        for empty in ["", "  "] {
            assert_eq!(
                e(openai(empty), "openai:m"),
                "openai:m: the base URL is empty; give scheme, host, port and path"
            );
            assert!(e(ollama(empty), "ollama:m")
                .ends_with("the base URL is empty; give scheme, host, port and path"));
        }
        for hostless in ["http://", "https:///v1", "http://:8080", "http://?x"] {
            assert_eq!(
                e(openai(hostless), "openai:m"),
                "openai:m: the base URL has no host; give scheme, host, port and path",
                "{hostless}"
            );
        }
        assert_eq!(
            e(openai("ftp://x"), "openai:m"),
            "openai:m: the base URL is not an http(s) URL (its scheme is ftp)"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret("sk-test-1234567890".into());
        assert!(!format!("{s:?}").contains("1234567890"));
        assert_eq!(
            s.redact("bad key sk-test-1234567890!"),
            "bad key [redacted]!"
        );
    }

    #[test]
    fn local_hosts() {
        for h in ["127.0.0.1", "localhost", "192.168.1.5", "[::1]", "10.1.2.3"] {
            assert!(is_local_host(h), "{h}");
        }
        // IPv4 addresses written as IPv6.
        for h in [
            "[::ffff:127.0.0.1]",
            "[::ffff:192.168.1.5]",
            "::ffff:7f00:1",
        ] {
            assert!(is_local_host(h), "{h}");
        }
        for h in [
            "api.openai.com",
            "8.8.8.8",
            "[::ffff:8.8.8.8]",
            "[2001:db8::1]",
        ] {
            assert!(!is_local_host(h), "{h}");
        }
    }
}
