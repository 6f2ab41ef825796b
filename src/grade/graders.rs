//! Grading a response: every grader of its prompt checked in turn, the score, and the symmetry
//! of a pair's two halves.

use super::{check, text};
use crate::scenario::{Grader, PairVerdict, Verdict};

impl Grader {
    /// Grades one response with this grader.
    pub fn grade(&self, response: &str) -> Verdict {
        if let Grader::Tests(t) = self {
            let limits = super::sandbox::Limits::default();
            return super::execute::grade(self.describe(), t, response, &limits);
        }
        let result = checked(self, response);
        Verdict {
            grader: self.describe(),
            pass: result.is_ok(),
            detail: result.err(),
            cases: Vec::new(),
            execution: None,
        }
    }
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

/// Why `response` fails `g`, in a few words.
fn checked(g: &Grader, response: &str) -> Result<(), String> {
    match g {
        Grader::Json {
            any,
            allow_fence,
            required_keys,
        } => check::json(response, *any, *allow_fence, required_keys),
        Grader::Regex { pattern, in_code } => check::regex(response, pattern, *in_code, true),
        Grader::NotRegex { pattern, in_code } => check::regex(response, pattern, *in_code, false),
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
        Grader::Tests(_) => Err("executed graders run through grade::execute".into()),
    }
}

#[cfg(test)]
#[path = "graders_tests.rs"]
mod tests;
