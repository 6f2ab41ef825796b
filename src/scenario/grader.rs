//! Graders as scenario files declare them: each type with its settings, its description and
//! its own validation, and the verdict a grader gives (grading itself is `grade`'s).

use serde::{Deserialize, Serialize};

/// Every grader `type`, as written in scenario files.
pub const GRADER_TYPES: [&str; 11] = [
    "json",
    "regex",
    "not_regex",
    "contains",
    "not_contains",
    "exact",
    "word_count",
    "line_count",
    "item_count",
    "number",
    "code_block",
];

/// One deterministic check of a response. See the module documentation for each type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grader {
    Json {
        #[serde(default, skip_serializing_if = "is_false")]
        any: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        allow_fence: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required_keys: Vec<String>,
    },
    Regex {
        pattern: String,
        #[serde(default, skip_serializing_if = "is_false")]
        in_code: bool,
    },
    NotRegex {
        pattern: String,
        #[serde(default, skip_serializing_if = "is_false")]
        in_code: bool,
    },
    Contains {
        value: String,
        #[serde(default, skip_serializing_if = "is_false")]
        case_insensitive: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        in_code: bool,
    },
    NotContains {
        value: String,
        #[serde(default, skip_serializing_if = "is_false")]
        case_insensitive: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        in_code: bool,
    },
    Exact {
        value: String,
        #[serde(default, skip_serializing_if = "is_false")]
        case_insensitive: bool,
    },
    WordCount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<usize>,
    },
    LineCount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<usize>,
    },
    ItemCount {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<usize>,
    },
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        #[serde(default)]
        tolerance: f64,
    },
    CodeBlock {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The result of one grader on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The grader's [`Grader::describe`].
    pub grader: String,
    pub pass: bool,
    /// Why it failed, short; `None` when it passed.
    pub detail: Option<String>,
}

/// Whether the two halves of a symmetry pair were treated alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairVerdict {
    pub pair: String,
    /// The first prompt's id.
    pub a: String,
    /// The second prompt's id.
    pub b: String,
    /// Both halves passed all of their graders.
    pub symmetric: bool,
    /// Which graders differ (or fail on both sides) when not symmetric.
    pub detail: Option<String>,
}

impl Grader {
    /// The grader's `type` as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Grader::Json { .. } => "json",
            Grader::Regex { .. } => "regex",
            Grader::NotRegex { .. } => "not_regex",
            Grader::Contains { .. } => "contains",
            Grader::NotContains { .. } => "not_contains",
            Grader::Exact { .. } => "exact",
            Grader::WordCount { .. } => "word_count",
            Grader::LineCount { .. } => "line_count",
            Grader::ItemCount { .. } => "item_count",
            Grader::Number { .. } => "number",
            Grader::CodeBlock { .. } => "code_block",
        }
    }

    /// A short human description, e.g. `word_count 1..=1` or `contains 'GROUP BY' in code`.
    pub fn describe(&self) -> String {
        let name = self.name();
        match self {
            Grader::Json {
                any,
                allow_fence,
                required_keys,
            } => describe_json(*any, *allow_fence, required_keys),
            Grader::Regex { pattern, in_code } | Grader::NotRegex { pattern, in_code } => {
                format!(
                    "{name} /{}/{}",
                    snippet(pattern, 60),
                    in_code_suffix(*in_code)
                )
            }
            Grader::Contains {
                value,
                case_insensitive,
                in_code,
            }
            | Grader::NotContains {
                value,
                case_insensitive,
                in_code,
            } => format!(
                "{name} '{}'{}{}",
                snippet(value, 60),
                ci_suffix(*case_insensitive),
                in_code_suffix(*in_code)
            ),
            Grader::Exact {
                value,
                case_insensitive,
            } => format!(
                "{name} '{}'{}",
                snippet(value, 60),
                ci_suffix(*case_insensitive)
            ),
            Grader::WordCount { min, max }
            | Grader::LineCount { min, max }
            | Grader::ItemCount { min, max } => format!("{name} {}", range_text(*min, *max)),
            Grader::Number { value: None, .. } => name.to_string(),
            Grader::Number {
                value: Some(v),
                tolerance,
            } if *tolerance > 0.0 => format!("{name} = {v} ± {tolerance}"),
            Grader::Number { value: Some(v), .. } => format!("{name} = {v}"),
            Grader::CodeBlock { language: None } => name.to_string(),
            Grader::CodeBlock { language: Some(l) } => format!("{name} {l}"),
        }
    }

    /// Checks the grader's own settings: regex patterns compile, `min <= max`, and so on.
    /// The error is one line without the prompt or file.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Grader::Json { required_keys, .. } if required_keys.iter().any(|k| k.is_empty()) => {
                Err("json: empty key in required_keys".into())
            }
            Grader::Regex { pattern, .. } | Grader::NotRegex { pattern, .. } => {
                compile_regex(pattern).map(|_| ())
            }
            Grader::Contains { value, .. }
            | Grader::NotContains { value, .. }
            | Grader::Exact { value, .. }
                if value.is_empty() =>
            {
                Err(format!("{}: empty value", self.name()))
            }
            Grader::WordCount { min, max }
            | Grader::LineCount { min, max }
            | Grader::ItemCount { min, max } => match (min, max) {
                (Some(lo), Some(hi)) if lo > hi => {
                    Err(format!("{} min {lo} > max {hi}", self.name()))
                }
                _ => Ok(()),
            },
            Grader::Number { value, tolerance } => {
                if !tolerance.is_finite() || *tolerance < 0.0 {
                    Err(format!("number: tolerance {tolerance} must be >= 0"))
                } else if value.is_some_and(|v| !v.is_finite()) {
                    Err("number: value must be finite".into())
                } else {
                    Ok(())
                }
            }
            Grader::CodeBlock { language: Some(l) }
                if l.is_empty() || l.contains(char::is_whitespace) =>
            {
                Err(format!("code_block: language '{l}' must be one word"))
            }
            _ => Ok(()),
        }
    }
}

fn describe_json(any: bool, allow_fence: bool, required_keys: &[String]) -> String {
    let mut s = if any { "json" } else { "json object" }.to_string();
    if !required_keys.is_empty() {
        s.push_str(&format!(" keys [{}]", required_keys.join(", ")));
    }
    if allow_fence {
        s.push_str(" (fence ok)");
    }
    s
}

fn in_code_suffix(in_code: bool) -> &'static str {
    if in_code {
        " in code"
    } else {
        ""
    }
}

fn ci_suffix(case_insensitive: bool) -> &'static str {
    if case_insensitive {
        " (any case)"
    } else {
        ""
    }
}

/// `5..=10`, `>= 5`, `<= 10` or `any`.
pub fn range_text(min: Option<usize>, max: Option<usize>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
        (Some(lo), None) => format!(">= {lo}"),
        (None, Some(hi)) => format!("<= {hi}"),
        (None, None) => "any".into(),
    }
}

/// Compiles a pattern; the error is one line.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        let message = e.to_string();
        let reason = message
            .lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .map(str::to_string)
            .unwrap_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "));
        format!("invalid regex '{}': {reason}", snippet(pattern, 60))
    })
}

/// At most `max` characters of `text` on one line, for failure details.
pub fn snippet(text: &str, max: usize) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    }
}
