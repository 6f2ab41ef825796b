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

/// The share of the verdicts that ran that passed; 1.0 when none ran. A skipped verdict (an
/// executed grader whose runtime is missing here) counts neither way.
pub fn score(verdicts: &[Verdict]) -> f64 {
    let ran: Vec<&Verdict> = verdicts.iter().filter(|v| !v.skipped()).collect();
    if ran.is_empty() {
        return 1.0;
    }
    let passed = ran.iter().filter(|v| v.pass).count();
    passed as f64 / ran.len() as f64
}

/// Whether a response passed: every verdict that ran passed. `None` when no grader ran here
/// (its prompt has none, or every one was skipped): not graded, neither passed nor failed.
pub fn passed(verdicts: &[Verdict]) -> Option<bool> {
    if verdicts.iter().all(Verdict::skipped) {
        return None;
    }
    Some(verdicts.iter().filter(|v| !v.skipped()).all(|v| v.pass))
}

/// How a request came out, from its verdicts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Not failed, graded, and every grader that ran passed.
    pub pass: bool,
    /// [`score`]; 0 for a failed or ungraded request.
    pub score: f64,
    /// Not failed, and no grader ran here (its prompt has none, or every one was skipped):
    /// neither passed nor failed.
    pub ungraded: bool,
}

/// The outcome of a request that `failed` (a time limit or an error) or not, with `verdicts`.
pub fn outcome(failed: bool, verdicts: &[Verdict]) -> Outcome {
    let passed = passed(verdicts);
    let ungraded = !failed && passed.is_none();
    Outcome {
        pass: !failed && passed == Some(true),
        score: match failed || ungraded {
            true => 0.0,
            false => score(verdicts),
        },
        ungraded,
    }
}

/// Compares the verdicts of a pair's two halves grader by grader (by position): symmetric iff
/// both pass every grader that ran on both. The detail names each grader that failed on one
/// side or both, and each skipped on either side (left out of the comparison).
pub fn pair_symmetry(
    pair: &str,
    a_id: &str,
    a: &[Verdict],
    b_id: &str,
    b: &[Verdict],
) -> PairVerdict {
    let (differs, detail) = if a.len() != b.len() {
        let d = format!("'{a_id}' has {} graders, '{b_id}' has {}", a.len(), b.len());
        (true, Some(d))
    } else {
        let mut diffs = Vec::new();
        let mut skips = Vec::new();
        for (va, vb) in a.iter().zip(b) {
            let skipped = match (va.skipped(), vb.skipped()) {
                (true, true) => Some("both".to_string()),
                (true, false) => Some(format!("'{a_id}'")),
                (false, true) => Some(format!("'{b_id}'")),
                (false, false) => None,
            };
            if let Some(side) = skipped {
                skips.push(format!("{} skipped for {side}, not compared", va.grader));
                continue;
            }
            diffs.extend(match (va.pass, vb.pass) {
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
            });
        }
        let differs = !diffs.is_empty();
        diffs.extend(skips);
        (differs, (!diffs.is_empty()).then(|| diffs.join("; ")))
    };
    PairVerdict {
        pair: pair.to_string(),
        a: a_id.to_string(),
        b: b_id.to_string(),
        symmetric: !differs,
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
        Grader::Regex(p) => check::regex(response, p, true),
        Grader::NotRegex(p) => check::regex(response, p, false),
        Grader::Contains(n) => check::contains(response, n, true),
        Grader::NotContains(n) => check::contains(response, n, false),
        Grader::Exact {
            value,
            case_insensitive,
        } => check::exact(response, value, *case_insensitive),
        Grader::WordCount(b) => check::in_range("words", text::word_count(response), b),
        Grader::LineCount(b) => check::in_range("lines", text::line_count(response), b),
        Grader::ItemCount(b) => check::in_range("items", text::item_count(response), b),
        Grader::Number { value, tolerance } => check::number(response, *value, *tolerance),
        Grader::CodeBlock { language } => check::code_block(response, language.as_deref()),
        Grader::Tests(_) => Err("executed graders run through grade::execute".into()),
    }
}

#[cfg(test)]
#[path = "graders_tests.rs"]
mod tests;
