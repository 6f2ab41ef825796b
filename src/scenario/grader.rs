//! Graders as scenario files declare them: each type with its settings, its description and
//! its own validation, and the verdict a grader gives (grading itself is `grade`'s).

use serde::{Deserialize, Serialize};

/// Every grader `type`, as written in scenario files.
pub const GRADER_TYPES: [&str; 12] = [
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
    "tests",
];

/// Languages the `tests` grader executes.
pub const TEST_LANGUAGES: [&str; 4] = ["python", "sql", "javascript", "rust"];

/// One deterministic check of a response. See the module documentation for each type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grader {
    Json {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        any: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_fence: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required_keys: Vec<String>,
    },
    Regex(Pattern),
    NotRegex(Pattern),
    Contains(Needle),
    NotContains(Needle),
    Exact {
        value: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        case_insensitive: bool,
    },
    WordCount(Bounds),
    LineCount(Bounds),
    ItemCount(Bounds),
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
    /// The answer's code executed against hidden tests in a sandbox (see `grade::execute`).
    Tests(Box<TestSpec>),
}

/// What `regex` and `not_regex` look for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    pub pattern: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_code: bool,
}

/// What `contains` and `not_contains` look for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needle {
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_insensitive: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_code: bool,
}

/// The bounds of a count (`word_count`, `line_count`, `item_count`), either optional.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
}

impl Bounds {
    /// `5..=10`, `>= 5`, `<= 10` or `any`.
    pub fn text(&self) -> String {
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
            (Some(lo), None) => format!(">= {lo}"),
            (None, Some(hi)) => format!("<= {hi}"),
            (None, None) => "any".into(),
        }
    }
}

/// What the `tests` grader runs. Python and JavaScript: `tests` holds `test_*` functions that
/// use the answer's definitions (the answer is module `solution`); with `implementation` and
/// `broken`, the answer *is* the tests, and passes when they accept the first and reject the
/// second. SQL: `setup` builds an in-memory SQLite database and the answer's query must return
/// `expect` (in order when `ordered`). `reference` and `wrong` are a known-correct and a
/// known-wrong answer, which check the harness itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub language: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tests: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub setup: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<Vec<serde_json::Value>>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrong: Option<String>,
}

impl TestSpec {
    fn validate(&self) -> Result<(), String> {
        let lang = self.language.as_str();
        if !TEST_LANGUAGES.contains(&lang) {
            return Err(format!(
                "tests: language '{lang}' is not one of {}",
                TEST_LANGUAGES.join(", ")
            ));
        }
        if self.implementation.is_some() != self.broken.is_some() {
            return Err("tests: implementation and broken go together".into());
        }
        // Python, JavaScript and Rust share their settings; SQL has its own.
        match lang {
            "sql" if self.setup.trim().is_empty() || self.expect.is_none() => {
                Err("tests: sql needs setup and expect".into())
            }
            "sql" if self.implementation.is_some() || !self.tests.is_empty() => {
                Err("tests: sql takes setup and expect, not tests or implementation".into())
            }
            // TOML has no null: a null here was a nan or inf, which no SQL result holds.
            "sql" if self.expect.iter().flatten().flatten().any(|v| v.is_null()) => {
                Err("tests: expect holds nan or inf, which an SQL result cannot match".into())
            }
            "sql" => Ok(()),
            _ if !self.setup.is_empty() || self.expect.is_some() || self.ordered => Err(format!(
                "tests: {lang} takes tests (or implementation and broken), not setup, \
                 expect or ordered"
            )),
            _ if self.tests.trim().is_empty() && self.implementation.is_none() => Err(format!(
                "tests: {lang} needs tests (or implementation and broken)"
            )),
            _ => Ok(()),
        }
    }
}

/// One test case of an executed grader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseVerdict {
    pub case: String,
    pub pass: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What isolated an executed grader's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    /// A network namespace without interfaces.
    pub network: bool,
    /// Shared temporary directories read-only (mount namespace).
    pub filesystem: bool,
    /// Whose user the code ran as (`a uid of its own`, `runner's own, in a user namespace`,
    /// or `runner's own`).
    pub user: String,
    /// How CPU, memory, file-size and process limits were set (`prlimit`, `ulimit`).
    pub rlimits: String,
    /// Home directories the code saw empty (an empty read-only file system mounted over
    /// each); none where no mount namespace was made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<String>,
}

/// Limits of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLimits {
    pub wall_s: f64,
    pub cpu_s: u64,
    pub memory_bytes: u64,
    pub file_bytes: u64,
    pub processes: u64,
}

/// How an executed grader ran: its limits and isolation, or why it could not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub language: String,
    /// The limits of the test run (`wall_s` to `processes`).
    #[serde(flatten)]
    pub limits: RunLimits,
    /// The limits of compiling the answer with its tests, larger than the test run's (`rust`
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_limits: Option<RunLimits>,
    pub isolation: Isolation,
    /// Set when the language's runtime is missing (the grader is skipped, not failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The result of one grader on one response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The grader's [`Grader::describe`].
    pub grader: String,
    pub pass: bool,
    /// Why it failed, short; `None` when it passed.
    pub detail: Option<String>,
    /// Each test case of an executed (`tests`) grader.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<CaseVerdict>,
    /// How an executed grader's code ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

impl Verdict {
    /// An executed grader that could not run here (its language's runtime is missing): it
    /// counts neither as passed nor as failed.
    pub fn skipped(&self) -> bool {
        self.execution.as_ref().is_some_and(|x| x.skipped.is_some())
    }
}

/// Whether the two halves of a symmetry pair were treated alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairVerdict {
    pub pair: String,
    /// The first prompt's id.
    pub a: String,
    /// The second prompt's id.
    pub b: String,
    /// Both halves passed all of their graders that ran on both.
    pub symmetric: bool,
    /// Which graders differ (or fail on both sides), and which were skipped on either side.
    pub detail: Option<String>,
}

impl Grader {
    /// The grader's `type` as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Grader::Json { .. } => "json",
            Grader::Regex(_) => "regex",
            Grader::NotRegex(_) => "not_regex",
            Grader::Contains(_) => "contains",
            Grader::NotContains(_) => "not_contains",
            Grader::Exact { .. } => "exact",
            Grader::WordCount(_) => "word_count",
            Grader::LineCount(_) => "line_count",
            Grader::ItemCount(_) => "item_count",
            Grader::Number { .. } => "number",
            Grader::CodeBlock { .. } => "code_block",
            Grader::Tests(_) => "tests",
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
            Grader::Regex(p) | Grader::NotRegex(p) => format!(
                "{name} /{}/{}",
                snippet(&p.pattern, 60),
                if p.in_code { " in code" } else { "" }
            ),
            Grader::Contains(n) | Grader::NotContains(n) => format!(
                "{name} '{}'{}{}",
                snippet(&n.value, 60),
                if n.case_insensitive {
                    " (any case)"
                } else {
                    ""
                },
                if n.in_code { " in code" } else { "" }
            ),
            Grader::Exact {
                value,
                case_insensitive,
            } => format!(
                "{name} '{}'{}",
                snippet(value, 60),
                if *case_insensitive { " (any case)" } else { "" }
            ),
            Grader::WordCount(b) | Grader::LineCount(b) | Grader::ItemCount(b) => {
                format!("{name} {}", b.text())
            }
            Grader::Number { value: None, .. } => name.to_string(),
            Grader::Number {
                value: Some(v),
                tolerance,
            } if *tolerance > 0.0 => format!("{name} = {v} ± {tolerance}"),
            Grader::Number { value: Some(v), .. } => format!("{name} = {v}"),
            Grader::CodeBlock { language: None } => name.to_string(),
            Grader::CodeBlock { language: Some(l) } => format!("{name} {l}"),
            Grader::Tests(t) if t.implementation.is_some() => {
                format!(
                    "{name} {} (the answer's tests, on a correct and a broken version)",
                    t.language
                )
            }
            Grader::Tests(t) => format!("{name} {}", t.language),
        }
    }

    /// Checks the grader's own settings: regex patterns compile, `min <= max`, and so on.
    /// The error is one line without the prompt or file.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Grader::Json { required_keys, .. } if required_keys.iter().any(|k| k.is_empty()) => {
                Err("json: empty key in required_keys".into())
            }
            Grader::Regex(p) | Grader::NotRegex(p) => compile_regex(&p.pattern).map(|_| ()),
            Grader::Contains(Needle { value, .. })
            | Grader::NotContains(Needle { value, .. })
            | Grader::Exact { value, .. }
                if value.is_empty() =>
            {
                Err(format!("{}: empty value", self.name()))
            }
            Grader::WordCount(b) | Grader::LineCount(b) | Grader::ItemCount(b) => {
                match (b.min, b.max) {
                    (Some(lo), Some(hi)) if lo > hi => {
                        Err(format!("{} min {lo} > max {hi}", self.name()))
                    }
                    _ => Ok(()),
                }
            }
            Grader::Number { tolerance, .. } if !tolerance.is_finite() || *tolerance < 0.0 => {
                let tolerance = crate::util::shown(*tolerance, 1e-4);
                Err(format!("number: tolerance {tolerance} must be >= 0"))
            }
            Grader::Number { value: Some(v), .. } if !v.is_finite() => {
                Err("number: value must be finite".into())
            }
            Grader::CodeBlock { language: Some(l) }
                if l.is_empty() || l.contains(char::is_whitespace) =>
            {
                Err(format!("code_block: language '{l}' must be one word"))
            }
            Grader::Tests(t) => t.validate(),
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
