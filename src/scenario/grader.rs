//! Graders: deterministic checks of a response text, verdicts, scores and pair symmetry.

use serde::{Deserialize, Serialize};

use super::check::{self, range_text};
use super::text;

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

/// Runs every grader on the response, in order.
pub fn grade(response: &str, graders: &[Grader]) -> Vec<Verdict> {
    graders.iter().map(|g| g.grade(response)).collect()
}

/// The share of verdicts that passed; 1.0 when there are none.
pub fn score(verdicts: &[Verdict]) -> f64 {
    if verdicts.is_empty() {
        return 1.0;
    }
    let passed = verdicts.iter().filter(|v| v.pass).count();
    passed as f64 / verdicts.len() as f64
}

/// Compares the verdicts of a pair's two halves grader by grader (by position): symmetric iff
/// both pass every grader. The detail names each grader that failed on one side or both.
pub fn pair_symmetry(
    pair: &str,
    a_id: &str,
    a: &[Verdict],
    b_id: &str,
    b: &[Verdict],
) -> PairVerdict {
    let detail = if a.len() != b.len() {
        Some(format!(
            "'{a_id}' has {} graders, '{b_id}' has {}",
            a.len(),
            b.len()
        ))
    } else {
        let diffs: Vec<String> = a
            .iter()
            .zip(b)
            .filter_map(|(va, vb)| match (va.pass, vb.pass) {
                (true, true) => None,
                (true, false) => Some(format!(
                    "{} passes for '{a_id}' but fails for '{b_id}'",
                    vb.grader
                )),
                (false, true) => Some(format!(
                    "{} fails for '{a_id}' but passes for '{b_id}'",
                    va.grader
                )),
                (false, false) => Some(format!("{} fails for both", va.grader)),
            })
            .collect();
        (!diffs.is_empty()).then(|| diffs.join("; "))
    };
    PairVerdict {
        pair: pair.to_string(),
        a: a_id.to_string(),
        b: b_id.to_string(),
        symmetric: detail.is_none(),
        detail,
    }
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
                    text::snippet(pattern, 60),
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
                text::snippet(value, 60),
                ci_suffix(*case_insensitive),
                in_code_suffix(*in_code)
            ),
            Grader::Exact {
                value,
                case_insensitive,
            } => format!(
                "{name} '{}'{}",
                text::snippet(value, 60),
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
                check::compile(pattern).map(|_| ())
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

    /// Grades one response.
    pub fn grade(&self, response: &str) -> Verdict {
        let result = self.check(response);
        Verdict {
            grader: self.describe(),
            pass: result.is_ok(),
            detail: result.err(),
        }
    }

    fn check(&self, response: &str) -> Result<(), String> {
        match self {
            Grader::Json {
                any,
                allow_fence,
                required_keys,
            } => check::json(response, *any, *allow_fence, required_keys),
            Grader::Regex { pattern, in_code } => check::regex(response, pattern, *in_code, true),
            Grader::NotRegex { pattern, in_code } => {
                check::regex(response, pattern, *in_code, false)
            }
            Grader::Contains {
                value,
                case_insensitive,
                in_code,
            } => check::contains(response, value, *case_insensitive, *in_code, true),
            Grader::NotContains {
                value,
                case_insensitive,
                in_code,
            } => check::contains(response, value, *case_insensitive, *in_code, false),
            Grader::Exact {
                value,
                case_insensitive,
            } => check::exact(response, value, *case_insensitive),
            Grader::WordCount { min, max } => {
                check::in_range("words", text::word_count(response), *min, *max)
            }
            Grader::LineCount { min, max } => {
                check::in_range("lines", text::line_count(response), *min, *max)
            }
            Grader::ItemCount { min, max } => {
                check::in_range("items", text::item_count(response), *min, *max)
            }
            Grader::Number { value, tolerance } => check::number(response, *value, *tolerance),
            Grader::CodeBlock { language } => check::code_block(response, language.as_deref()),
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
