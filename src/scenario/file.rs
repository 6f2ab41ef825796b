//! The raw serde layer of scenario files and its validation into [`Scenario`].
//!
//! The file is first parsed as a plain TOML table (syntax errors carry a line and column), then
//! each part is deserialized on its own, so that errors can name the prompt and grader they
//! come from.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{
    Grader, Message, Prompt, Role, Sampling, Scenario, ScenarioError, ScenarioKind, GRADER_TYPES,
};
use crate::util::shown;
use crate::util::toml_error::{self, one_line, short_floats};

pub(crate) const DEFAULT_SEED: u32 = 42;
const DEFAULT_MAX_TOKENS: u32 = 256;
const DEFAULT_TIME_LIMIT_S: f64 = 60.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    description: String,
    kind: ScenarioKind,
}

/// Settings that `[defaults]` sets and a prompt may override.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    system: Option<String>,
    max_tokens: Option<u32>,
    time_limit_s: Option<f64>,
    /// Read wide, so that a value past f32 is refused as written, not as `inf`.
    temperature: Option<f64>,
    seed: Option<u32>,
    /// Read wide as `temperature` is: a value past f32 is not read as `inf`.
    top_p: Option<f64>,
    top_k: Option<u32>,
    stop: Option<Vec<String>>,
    raw: Option<bool>,
}

/// A prompt's own keys; every other key is one of the settings it overrides.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    id: String,
    category: Option<String>,
    user: Option<String>,
    messages: Option<Vec<Message>>,
    prompt: Option<String>,
    pair: Option<String>,
    #[serde(default)]
    graders: Vec<toml::Value>,
}

const PROMPT_KEYS: [&str; 7] = [
    "id", "category", "user", "messages", "prompt", "pair", "graders",
];

impl RawSettings {
    /// These settings, falling back to `defaults` field by field.
    fn or(self, d: &RawSettings) -> RawSettings {
        macro_rules! either {
            ($($field:ident),*) => {
                RawSettings { $($field: self.$field.or_else(|| d.$field.clone())),* }
            };
        }
        either! { system, max_tokens, time_limit_s, temperature, seed, top_p, top_k, stop, raw }
    }
}

/// `[a-z0-9-]+`: scenario names, which are also file names.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses and validates scenario text; `path` is only used in error messages and
/// [`Scenario::path`].
pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid {
        path: path.to_path_buf(),
        message: one_line(&message),
    };
    let mut table: toml::Table = toml::from_str(text).map_err(|e| syntax_error(&e, text, path))?;
    let prompts = table.remove("prompts");
    // The judges' rubric (read by the judge panel, see `backend::judge::rubric`).
    table.remove("judge");
    let defaults = match table.remove("defaults") {
        None => RawSettings::default(),
        Some(v) => from_toml(v).map_err(|e| invalid(format!("[defaults]: {e}")))?,
    };
    let header: RawHeader = from_toml(toml::Value::Table(table)).map_err(invalid)?;
    if !is_valid_name(&header.name) {
        return Err(invalid(format!(
            "name '{}' must match [a-z0-9-]+",
            header.name
        )));
    }
    if header.description.trim().is_empty() {
        return Err(invalid("description is empty".into()));
    }
    check_defaults(&defaults).map_err(|e| invalid(format!("[defaults]: {e}")))?;
    let prompts = parse_prompts(prompts, &defaults).map_err(invalid)?;
    Ok(Scenario {
        name: header.name,
        description: header.description,
        kind: header.kind,
        path: path.to_path_buf(),
        sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(text.as_bytes()))
        },
        prompts,
    })
}

/// Deserializes a part of the file; the error is prefixed with the key it is about when toml
/// knows it (`max_tokens: invalid value: integer `-1`, expected u32`).
fn from_toml<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    value.try_into().map_err(|e: toml::de::Error| {
        // Without the source text, toml's Display is the message and then "in `a.b`".
        let display = e.to_string();
        let key = display
            .lines()
            .filter_map(|l| l.trim().strip_prefix("in `")?.strip_suffix('`'))
            .next_back();
        let message = short_floats(e.message());
        match key {
            Some(key) if !key.is_empty() => format!("{key}: {message}"),
            _ => message,
        }
    })
}

/// The error with its line and column where toml knows where it is (a nesting too deep has
/// no place: it is told without one, not at line 1).
fn syntax_error(e: &toml::de::Error, text: &str, path: &Path) -> ScenarioError {
    match toml_error::located(e, text) {
        (Some((line, column)), message) => ScenarioError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        },
        (None, message) => ScenarioError::Invalid {
            path: path.to_path_buf(),
            message,
        },
    }
}

/// The longest time limit a prompt may have, in seconds (about 32 years).
const MAX_TIME_LIMIT_S: f64 = 1e9;
/// The least time limit, in seconds: below a millisecond no request can answer, and the
/// table's one decimal would show the limit as 0.0 s.
const MIN_TIME_LIMIT_S: f64 = 0.001;

/// Range checks shared by `[defaults]` and prompts.
fn check_defaults(s: &RawSettings) -> Result<(), String> {
    if s.max_tokens == Some(0) {
        return Err("max_tokens must be >= 1".into());
    }
    if let Some(t) = s.time_limit_s {
        if !(t.is_finite() && (MIN_TIME_LIMIT_S..=MAX_TIME_LIMIT_S).contains(&t)) {
            return Err(format!(
                "time_limit_s {} must be from {MIN_TIME_LIMIT_S} to {MAX_TIME_LIMIT_S:e} (seconds)",
                shown(t, 1e-4)
            ));
        }
    }
    if let Some(t) = s.temperature {
        if !(t.is_finite() && t >= 0.0 && t <= f64::from(f32::MAX)) {
            return Err(format!(
                "temperature {} must be from 0 to {:.1e} (0 = greedy)",
                shown(t, 1e-4),
                f32::MAX
            ));
        }
    }
    if let Some(p) = s.top_p {
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("top_p {} must be in (0, 1]", shown(p, 1e-4)));
        }
        // llama.cpp takes an f32: one that would round to 0 is not what the file says.
        if p as f32 == 0.0 {
            return Err(format!(
                "top_p {} is too small for llama.cpp's f32 (at least {:e})",
                shown(p, 1e-4),
                f32::from_bits(1)
            ));
        }
    }
    // llama.cpp's sampler takes the largest seed (`LLAMA_DEFAULT_SEED`) for "a random one".
    if s.seed == Some(u32::MAX) {
        return Err(format!(
            "seed {} means a random seed to llama.cpp; choose another seed",
            u32::MAX
        ));
    }
    if s.stop
        .as_ref()
        .is_some_and(|v| v.iter().any(String::is_empty))
    {
        return Err("stop strings must not be empty".into());
    }
    Ok(())
}

fn parse_prompts(
    value: Option<toml::Value>,
    defaults: &RawSettings,
) -> Result<Vec<Prompt>, String> {
    let items = match value {
        Some(toml::Value::Array(items)) if !items.is_empty() => items,
        None | Some(toml::Value::Array(_)) => return Err("no prompts".into()),
        Some(_) => return Err("`prompts` must be an array of tables ([[prompts]])".into()),
    };
    let mut prompts: Vec<Prompt> = Vec::with_capacity(items.len());
    let mut ids = std::collections::HashSet::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let label = match item.get("id").and_then(toml::Value::as_str) {
            Some(id) => format!("prompt '{id}'"),
            None => format!("prompt #{}", i + 1),
        };
        let prompt = parse_prompt(item, defaults).map_err(|e| format!("{label}: {e}"))?;
        if !ids.insert(prompt.id.clone()) {
            return Err(format!("duplicate prompt id '{}'", prompt.id));
        }
        prompts.push(prompt);
    }
    check_pairs(&prompts)?;
    Ok(prompts)
}

fn parse_prompt(item: toml::Value, defaults: &RawSettings) -> Result<Prompt, String> {
    let toml::Value::Table(item) = item else {
        return Err("must be a table ([[prompts]])".into());
    };
    let (own, settings): (toml::Table, toml::Table) = item
        .into_iter()
        .partition(|(k, _)| PROMPT_KEYS.contains(&k.as_str()));
    let raw: RawPrompt = from_toml(toml::Value::Table(own))?;
    let own: RawSettings = from_toml(toml::Value::Table(settings))?;
    if !is_valid_id(&raw.id) {
        return Err("id must match [A-Za-z0-9._-]+".into());
    }
    let own_system = own.system.is_some();
    let settings = own.or(defaults);
    check_defaults(&settings)?;
    let (messages, raw_prompt) = build_messages(&raw, &settings, own_system)?;
    let graders = raw
        .graders
        .iter()
        .enumerate()
        .map(|(i, g)| parse_grader(i + 1, g))
        .collect::<Result<Vec<_>, _>>()?;
    if raw.pair.as_deref().is_some_and(|p| !is_valid_id(p)) {
        return Err("pair must match [A-Za-z0-9._-]+".into());
    }
    let time_limit_s = settings.time_limit_s.unwrap_or(DEFAULT_TIME_LIMIT_S);
    let time_limit = Duration::try_from_secs_f64(time_limit_s)
        .map_err(|_| format!("time_limit_s {} is out of range", shown(time_limit_s, 1e-4)))?;
    Ok(Prompt {
        id: raw.id,
        category: raw.category,
        messages,
        raw_prompt,
        max_tokens: settings.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        time_limit,
        sampling: Sampling {
            temperature: settings.temperature.unwrap_or(0.0) as f32,
            seed: settings.seed.unwrap_or(DEFAULT_SEED),
            top_p: settings.top_p.map(|p| p as f32),
            top_k: settings.top_k.filter(|k| *k > 0),
        },
        stop: settings.stop.unwrap_or_default(),
        pair: raw.pair,
        graders,
    })
}

/// The chat messages (system first) or the raw prompt text; `own_system`: the prompt sets
/// `system` itself.
fn build_messages(
    raw: &RawPrompt,
    settings: &RawSettings,
    own_system: bool,
) -> Result<(Vec<Message>, Option<String>), String> {
    let texts = (raw.user.iter().chain(&raw.prompt).chain(&settings.system))
        .chain(raw.messages.iter().flatten().map(|m| &m.content));
    if texts.into_iter().any(|t| t.contains('\0')) {
        return Err("holds a NUL byte, which no chat template or tokenizer takes".into());
    }
    if settings.raw.unwrap_or(false) {
        if raw.user.is_some() || raw.messages.is_some() {
            return Err("raw = true takes `prompt`, not `user` or `messages`".into());
        }
        if own_system {
            return Err("`system` is not used with raw = true".into());
        }
        return match &raw.prompt {
            Some(p) if !p.trim().is_empty() => Ok((Vec::new(), Some(p.clone()))),
            Some(_) => Err("`prompt` is empty".into()),
            None => Err("raw = true needs `prompt`".into()),
        };
    }
    if raw.prompt.is_some() {
        return Err("`prompt` needs raw = true (otherwise use `user` or `messages`)".into());
    }
    let system = settings
        .system
        .clone()
        .filter(|s| !s.is_empty())
        .map(|content| Message::new(Role::System, content));
    match (&raw.user, &raw.messages) {
        (Some(_), Some(_)) => Err("has both `user` and `messages`; use one".into()),
        (None, None) => Err("needs `user`, `messages` or (with raw = true) `prompt`".into()),
        (Some(user), None) => {
            if user.trim().is_empty() {
                return Err("`user` is empty".into());
            }
            let user = Message::new(Role::User, user.clone());
            Ok((system.into_iter().chain([user]).collect(), None))
        }
        (None, Some(messages)) => {
            check_messages(messages, own_system)?;
            // A system message of the prompt's own replaces the default.
            let system = system.filter(|_| messages[0].role != Role::System);
            Ok((system.into_iter().chain(messages.clone()).collect(), None))
        }
    }
}

fn check_messages(messages: &[Message], has_system_field: bool) -> Result<(), String> {
    let Some(last) = messages.last() else {
        return Err("`messages` is empty".into());
    };
    if last.role != Role::User {
        return Err("the last message must have role = \"user\"".into());
    }
    for (i, m) in messages.iter().enumerate() {
        if m.role == Role::System && i > 0 {
            return Err(format!(
                "message {}: a system message must come first",
                i + 1
            ));
        }
        if m.content.trim().is_empty() {
            return Err(format!("message {}: empty content", i + 1));
        }
    }
    if has_system_field && messages[0].role == Role::System {
        return Err("has both `system` and a system message".into());
    }
    Ok(())
}

fn parse_grader(index: usize, value: &toml::Value) -> Result<Grader, String> {
    let expected = GRADER_TYPES.join(", ");
    let Some(table) = value.as_table() else {
        return Err(format!(
            "grader {index}: must be a table ([[prompts.graders]])"
        ));
    };
    let kind = match table.get("type") {
        Some(toml::Value::String(s)) => Ok(s.as_str()),
        None => Err(format!(
            "grader {index}: missing `type` (expected one of: {expected})"
        )),
        Some(other) => Err(format!(
            "grader {index}: `type` must be a string, not {}",
            other.type_str()
        )),
    }?;
    if !GRADER_TYPES.contains(&kind) {
        return Err(format!(
            "unknown grader type '{kind}' (expected one of: {expected})"
        ));
    }
    let grader: Grader =
        from_toml(value.clone()).map_err(|e| format!("grader {index} ({kind}): {e}"))?;
    grader.validate()?;
    Ok(grader)
}

/// Every pair id names exactly two prompts, whose graders have the same types in order.
fn check_pairs(prompts: &[Prompt]) -> Result<(), String> {
    // Each pair's prompts, the pairs in the order they first appear.
    let mut order: Vec<&str> = Vec::new();
    let mut by_pair: std::collections::HashMap<&str, Vec<&Prompt>> = Default::default();
    for p in prompts {
        if let Some(pair) = p.pair.as_deref() {
            let members = by_pair.entry(pair).or_default();
            if members.is_empty() {
                order.push(pair);
            }
            members.push(p);
        }
    }
    for pair in order {
        let members = &by_pair[pair];
        let n = members.len();
        if n != 2 {
            let noun = if n == 1 { "prompt" } else { "prompts" };
            return Err(format!("pair '{pair}' has {n} {noun}, needs exactly 2"));
        }
        let names = |q: &Prompt| q.graders.iter().map(Grader::name).collect::<Vec<_>>();
        let (a, b) = (names(members[0]), names(members[1]));
        if a != b {
            return Err(format!(
                "pair '{pair}': prompts '{}' and '{}' need the same grader types in the same \
                 order ([{}] vs [{}])",
                members[0].id,
                members[1].id,
                a.join(", "),
                b.join(", ")
            ));
        }
    }
    Ok(())
}
