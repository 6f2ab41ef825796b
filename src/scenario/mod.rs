//! Scenario files: prompts with output limits, sampling, time limits and deterministic graders.
//!
//! A scenario is a TOML file (the shipped ones live in `scenarios/`, see [`builtin_dir`]).
//! `runner sweep` runs every prompt of a scenario through a model and grades each response with
//! [`grade`]. This module only parses, validates and grades text; it never touches llama.cpp.
//!
//! # Format
//!
//! ```toml
//! name = "short-response"          # required, [a-z0-9-]+
//! description = "..."              # required, not empty
//! kind = "short-response"          # required: "short-response" (report emphasises time to first
//!                                  # token and end-to-end latency) or "long-form" (decode tok/s)
//!
//! [judge]                          # optional: the judges' rubric (see backend::judge::rubric)
//! criteria = [{ name = "correctness", weight = 0.4, description = "..." }]
//!
//! [defaults]                       # all optional; a prompt's own field overrides its default
//! system = "You are a precise assistant."
//! max_tokens = 64                  # >= 1; default 256
//! time_limit_s = 60.0              # > 0, at most 1e9; default 60. A slower answer counts as a failure.
//! temperature = 0.0                # >= 0; 0 = greedy (the default); > 0 samples
//! seed = 42                        # sampling seed, used when temperature > 0; default 42
//! top_p = 1.0                      # optional, in (0, 1]
//! top_k = 0                        # optional, 0 = off
//! stop = ["\n\n"]                  # stop strings (may be empty; none may be "")
//! raw = false                      # true: send `prompt` as is, without the chat template
//!
//! [[prompts]]
//! id = "json-person"               # required, unique in the file, [A-Za-z0-9._-]+
//! category = "formatting"          # optional free label
//! user = "Return ..."              # one user turn, after the system prompt if any; or
//! # messages = [{ role = "system" | "user" | "assistant", content = "..." }, ...]
//! #                                # multi-turn; the last must be "user", a system message only
//! #                                # first (it then replaces the default system prompt); or
//! # prompt = "..."                 # only with raw = true: the whole prompt text
//! #                                # (no text of a prompt may hold a NUL byte)
//! system = "..."                   # optional override; "" drops the default system prompt
//! max_tokens = 48                  # optional overrides, likewise time_limit_s, temperature,
//!                                  # seed, top_p, top_k, stop and raw
//! pair = "tone-formal"             # optional: exactly two prompts sharing a pair id form a
//!                                  # symmetry pair; both must list the same grader types in the
//!                                  # same order (see [`pair_symmetry`])
//!
//!   [[prompts.graders]]            # optional: a prompt without graders is run but not graded
//!   type = "json"                  # see below
//!   required_keys = ["name", "age"]
//! ```
//!
//! # Graders
//!
//! Every grader is a table with a `type`; unknown types and unknown fields are load errors.
//!
//! - `json` {`any` = false, `allow_fence` = false, `required_keys` = []}: the trimmed response
//!   is one JSON value (an object unless `any`) with those top-level keys; `allow_fence` also
//!   accepts one ```` ```json ```` (or untagged) fenced block and nothing else.
//! - `regex` {`pattern`, `in_code` = false}: the pattern matches (Rust `regex` syntax; flags
//!   such as `(?i)`, `(?s)` and `(?m)` allowed). `not_regex` {same}: it does not match.
//! - `contains` {`value`, `case_insensitive` = false, `in_code` = false}: the text contains
//!   `value`. `not_contains` {same}: it does not.
//! - `exact` {`value`, `case_insensitive` = false}: equal after trimming whitespace and one
//!   trailing period, on both sides.
//! - `word_count` {`min`?, `max`?}: whitespace-separated words with a letter or digit in them.
//! - `line_count` {`min`?, `max`?}: non-empty lines.
//! - `item_count` {`min`?, `max`?}: list items, lines starting with `-`, `*`, `•`, `N.` or
//!   `N)` followed by a space and text.
//! - `number` {`value`?, `tolerance` = 0}: the trimmed response (one trailing period allowed)
//!   is one number such as `51`, `-3.5` or `1,024`, equal to `value` ± `tolerance` if given.
//! - `code_block` {`language`?}: the response has a closed ```` ``` ```` fenced block, with
//!   that language tag if given (common aliases match: `py` = `python`, `js` = `javascript`).
//!
//! `in_code = true` applies a grader to the contents of the first fenced block (closed or not)
//! instead of the whole response, and fails when there is none. Regex patterns are compiled at
//! load time, so an invalid one is a load error. Grading never panics, whatever the text.
//!
//! Every load error is one line naming the file, with the line and column for TOML syntax errors
//! and the prompt id for errors within a prompt.

mod file;
mod grader;
pub mod rubric;

#[cfg(test)]
mod shipped_tests;
#[cfg(test)]
mod tests;

use crate::util::fs::Input;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

pub use file::parse as load_str;
pub use grader::{
    compile_regex, snippet, Bounds, CaseVerdict, Execution, Grader, Isolation, Needle, PairVerdict,
    Pattern, RunLimits, TestSpec, Verdict, GRADER_TYPES, TEST_LANGUAGES,
};
pub use rubric::Rubric;

/// A loaded, validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub kind: ScenarioKind,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The sha256 of the text it was read from (hex), to tell a file edited since.
    #[serde(skip)]
    pub sha256: String,
    /// In file order, with `[defaults]` already applied.
    pub prompts: Vec<Prompt>,
}

impl Scenario {
    /// The prompt with this id.
    pub fn prompt(&self, id: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|p| p.id == id)
    }
}

crate::util::names::named_enum! {
    /// What a scenario's report emphasises.
    pub enum ScenarioKind {
        /// Answers of a few tokens: time to first token and end-to-end latency dominate.
        ShortResponse = "short-response",
        /// Thousands of tokens: steady decode speed dominates.
        LongForm = "long-form",
    }
}

/// One prompt, with the scenario's defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Prompt {
    pub id: String,
    pub category: Option<String>,
    /// Chat messages, the system message first if any; empty for a raw prompt.
    pub messages: Vec<Message>,
    /// The prompt text sent as is (no chat template) when the file says `raw = true`.
    pub raw_prompt: Option<String>,
    pub max_tokens: u32,
    /// A response slower than this counts as a failure.
    #[serde(rename = "time_limit_s", serialize_with = "serialize_secs")]
    pub time_limit: Duration,
    pub sampling: Sampling,
    pub stop: Vec<String>,
    pub pair: Option<String>,
    pub graders: Vec<Grader>,
}

fn serialize_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        let content = content.into();
        Message { role, content }
    }
}

crate::util::names::named_enum! {
    /// Who says a message.
    pub enum Role {
        System = "system",
        User = "user",
        Assistant = "assistant",
    }
}

/// How tokens are picked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 = greedy.
    pub temperature: f32,
    /// Used when sampling (temperature > 0).
    pub seed: u32,
    pub top_p: Option<f32>,
    /// `None` when off (the file's `top_k = 0`).
    pub top_k: Option<u32>,
}

impl Sampling {
    /// True when decoding picks the most likely token (temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            seed: file::DEFAULT_SEED,
            top_p: None,
            top_k: None,
        }
    }
}

/// Why a scenario could not be found or loaded. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file is missing, a directory, unreadable or not UTF-8.
    #[error("{}: {message}", .path.display())]
    Read { path: PathBuf, message: String },
    /// The file is not valid TOML.
    #[error("{}: line {line}, column {column}: {message}", .path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file is TOML but not a valid scenario.
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    /// No scenario of that name in the directories searched.
    #[error("{}", unknown_message(.name, .dirs, .available))]
    Unknown {
        name: String,
        dirs: Vec<PathBuf>,
        available: Vec<String>,
    },
}

fn unknown_message(name: &str, dirs: &[PathBuf], available: &[String]) -> String {
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let list = |v: &[String], none: &str| match v {
        [] => none.to_string(),
        _ => v.join(", "),
    };
    format!(
        "unknown scenario '{name}' (searched {}; available: {})",
        list(&dirs, "no directories"),
        list(available, "none")
    )
}

/// Reads and validates a scenario file (a regular file of at most
/// [`CONFIG_MAX_BYTES`](crate::util::fs::CONFIG_MAX_BYTES)).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let read_error = |message: String| ScenarioError::Read {
        path: path.to_path_buf(),
        message,
    };
    if path.is_dir() {
        return Err(read_error("is a directory, not a scenario file".into()));
    }
    let bytes = crate::util::fs::read_input_bytes(path, Input::Config).map_err(|e| {
        read_error(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            // Not a regular file, or too large: the reader's own words.
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::FileTooLarge => e.to_string(),
            _ => format!("cannot read: {e}"),
        })
    })?;
    let text = String::from_utf8(bytes).map_err(|_| read_error("not valid UTF-8".into()))?;
    load_str(&text, path)
}

/// The shipped price table (`scenarios/prices.toml`), built into the binary.
pub const SHIPPED_PRICES: &str = include_str!("../../scenarios/prices.toml");

/// The shipped scenario files and price table, built into the binary.
const SHIPPED: [(&str, &str); 4] = [
    ("coding.toml", include_str!("../../scenarios/coding.toml")),
    (
        "long-form.toml",
        include_str!("../../scenarios/long-form.toml"),
    ),
    ("prices.toml", SHIPPED_PRICES),
    (
        "short-response.toml",
        include_str!("../../scenarios/short-response.toml"),
    ),
];

/// The directory of the shipped scenarios and price table in the default cache (`$RUNNER_CACHE_DIR`,
/// else the platform's): [`builtin_dir_in`] of that cache.
pub fn builtin_dir() -> PathBuf {
    builtin_dir_in(&crate::util::fs::cache_dir(None))
}

/// The directory of the shipped scenarios and price table: the copies built into this binary,
/// written once to `<cache>/scenarios/shipped-<hash of their contents>/` (the system's
/// temporary directory where `cache` cannot be written), so that a binary finds them
/// wherever it is installed and run from, and a sweep's cells read the very files it checked.
/// `cache` is the cache the command runs with (`--cache-dir`, else `$RUNNER_CACHE_DIR`, else
/// the platform's).
pub fn builtin_dir_in(cache: &Path) -> PathBuf {
    // Written once per cache a process uses.
    static DIRS: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut dirs = DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dir)) = dirs.iter().find(|(c, _)| c == cache) {
        return dir.clone();
    }
    let name = format!("shipped-{:016x}", shipped_hash());
    let in_cache = cache.join("scenarios").join(&name);
    let temp = std::env::temp_dir().join(format!("runner-scenarios-{name}"));
    let dir = match write_shipped(&in_cache) {
        Ok(()) => in_cache,
        // Where neither can be written, reading the missing files names the path.
        Err(_) => {
            let _ = write_shipped(&temp);
            temp
        }
    };
    dirs.push((cache.to_path_buf(), dir.clone()));
    dir
}

/// FNV-1a over the shipped files' names and contents.
fn shipped_hash() -> u64 {
    let bytes = SHIPPED
        .iter()
        .flat_map(|(name, text)| [name.as_bytes(), b"\0", text.as_bytes(), b"\0"])
        .flatten();
    crate::util::rng::fnv1a(bytes.copied())
}

/// Writes each shipped file into `dir` unless it already holds exactly that text.
fn write_shipped(dir: &Path) -> Result<(), crate::util::fs::WriteError> {
    for (name, text) in SHIPPED {
        let path = dir.join(name);
        if crate::util::fs::read_input(&path, Input::Config).is_ok_and(|t| t == text) {
            continue;
        }
        crate::util::fs::write_atomic(&path, text)?;
    }
    Ok(())
}

/// Finds a scenario file: a name such as `short-response` is looked up as
/// `<dir>/short-response.toml` in each directory in turn; anything else is taken as a path,
/// which must exist. `prices` (the price table beside the scenarios) is no scenario's name.
pub fn resolve(name_or_path: &str, dirs: &[PathBuf]) -> Result<PathBuf, ScenarioError> {
    if file::is_valid_name(name_or_path) && name_or_path != PRICES_STEM {
        let file_name = format!("{name_or_path}.toml");
        if let Some(found) = dirs
            .iter()
            .map(|d| d.join(&file_name))
            .find(|p| p.is_file())
        {
            return Ok(found);
        }
    }
    let path = PathBuf::from(name_or_path);
    // A link that leads nowhere readable (round a loop of links) is read, to say why.
    if path.exists() || path.symlink_metadata().is_ok() {
        return Ok(path);
    }
    let looks_like_path = name_or_path.contains(['/', '\\']) || name_or_path.ends_with(".toml");
    if looks_like_path {
        return Err(ScenarioError::Read {
            path,
            message: "no such file".into(),
        });
    }
    Err(ScenarioError::Unknown {
        name: name_or_path.to_string(),
        dirs: dirs.to_vec(),
        available: available(dirs).into_iter().map(|(n, _)| n).collect(),
    })
}

/// `prices.toml` lives beside the scenarios (the backends' price table) but is not one.
const PRICES_STEM: &str = "prices";

/// The scenario files (`*.toml`) in these directories as `(name, path)`, sorted by name; when
/// two directories hold the same name the earlier directory wins. Missing directories are
/// skipped.
pub fn available(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
            .filter(|(stem, _)| stem != PRICES_STEM && !out.iter().any(|(n, _)| n == stem))
            .collect();
        out.append(&mut found);
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
