//! The judge panel's grading side: the instructions and case a judge is sent, reading the
//! scores out of its answer, model families (to flag self-judging), and the panel's figures.
//! Sending the request is a backend's job; running the panel over a results file is a plan.

pub mod panel;

use crate::record::{BackendId, CellKey, Judgement, Provenance};
use crate::scenario::{Message, Prompt, Role, Rubric};
use std::collections::BTreeMap;

/// Tokens a judge may write.
pub const JUDGE_MAX_TOKENS: u32 = 200;
/// Characters of a judge's answer kept in the record.
pub const ANSWER_KEPT: usize = 2000;

/// What a judge needs to know about the judged request.
pub struct Case<'a> {
    pub cell: &'a CellKey,
    pub scenario: &'a str,
    pub prompt: &'a Prompt,
    pub answer: &'a str,
    pub judged_family: Option<String>,
}

/// The judge's instructions and the case, as chat messages.
pub fn messages(rubric: &Rubric, case: &Case<'_>) -> Vec<Message> {
    let task: Vec<String> = match &case.prompt.raw_prompt {
        Some(raw) => vec![raw.clone()],
        None => case
            .prompt
            .messages
            .iter()
            .map(|m| format!("[{}] {}", m.role, m.content))
            .collect(),
    };
    let criteria: Vec<String> = rubric
        .criteria
        .iter()
        .map(|c| {
            format!(
                "- {} (weight {:.0}%): {}",
                c.name,
                c.weight * 100.0,
                c.description
            )
        })
        .collect();
    let keys: Vec<String> = rubric
        .criteria
        .iter()
        .map(|c| format!("\"{}\": <0-{}>", c.name, rubric.scale))
        .collect();
    let user = format!(
        "The task given to an assistant:\n<task>\n{}\n</task>\n\nThe assistant's answer:\n<answer>\n{}\n</answer>\n\nScore the answer from 0 to {} on each criterion:\n{}\n\nReply with one JSON object and nothing else: {{{}, \"rationale\": \"<one sentence>\"}}",
        task.join("\n"),
        case.answer,
        rubric.scale,
        criteria.join("\n"),
        keys.join(", ")
    );
    let system = "You are a strict, fair grader of AI answers. You answer in JSON only.";
    vec![
        Message::new(Role::System, system),
        Message::new(Role::User, user),
    ]
}

/// A judgement of `case` by `judge` (of `judge_family`) with no score yet.
pub fn blank(
    judge: &BackendId,
    judge_family: Option<String>,
    rubric: &Rubric,
    case: &Case<'_>,
) -> Judgement {
    let judge_family = judge_family.or_else(|| family(&judge.model));
    Judgement {
        provenance: Provenance::now(),
        cell: case.cell.clone(),
        scenario: case.scenario.to_string(),
        prompt_id: case.prompt.id.clone(),
        judge: judge.clone(),
        self_judging: judge_family.is_some() && judge_family == case.judged_family,
        judge_family,
        judged_family: case.judged_family.clone(),
        rubric: rubric.clone(),
        scores: BTreeMap::new(),
        weighted: None,
        rationale: None,
        attempts: 0,
        error: None,
        answer: None,
        latency_ms: 0.0,
    }
}

/// Reads the scores from a judge's answer: the first `{` to the last `}` (code fences and
/// chatter around it are ignored), every criterion a number within the scale.
pub fn parse(
    answer: &str,
    rubric: &Rubric,
) -> Result<(BTreeMap<String, f64>, Option<String>), String> {
    let object = match (answer.find('{'), answer.rfind('}')) {
        (Some(a), Some(b)) if a < b => &answer[a..=b],
        _ => return Err("the judge's answer holds no JSON object".into()),
    };
    let v: serde_json::Value = serde_json::from_str(object)
        .map_err(|e| format!("the judge's answer is not valid JSON: {e}"))?;
    let mut scores = BTreeMap::new();
    for c in &rubric.criteria {
        let s = v
            .get(&c.name)
            .and_then(|s| {
                s.as_f64()
                    .or_else(|| s.as_str().and_then(|t| t.trim().parse().ok()))
            })
            .ok_or_else(|| format!("the judge gave no score for '{}'", c.name))?;
        if !(0.0..=rubric.scale).contains(&s) {
            return Err(format!(
                "the judge's score for '{}' ({s}) is outside 0-{}",
                c.name, rubric.scale
            ));
        }
        scores.insert(c.name.clone(), s);
    }
    Ok((scores, v["rationale"].as_str().map(str::to_string)))
}

/// A model's family from its name or file name: the leading letters of its last path part,
/// lowercased, with vendors' aliases folded (`gpt`, `o1`.. → `gpt`; `mixtral` → `mistral`).
pub fn family(name: &str) -> Option<String> {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_ascii_lowercase();
    let letters: String = base
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let f = match letters.as_str() {
        "" if base.starts_with('o') => "gpt",
        "o" | "chatgpt" => "gpt",
        "mixtral" | "ministral" | "codestral" => "mistral",
        "codellama" => "llama",
        "qwq" => "qwen",
        other => other,
    };
    (!f.is_empty()).then(|| f.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_fold_names_and_files() {
        assert_eq!(family("claude-haiku-4-5").as_deref(), Some("claude"));
        assert_eq!(family("gpt-4o-mini").as_deref(), Some("gpt"));
        assert_eq!(family("o3-mini").as_deref(), Some("gpt"));
        assert_eq!(
            family("/m/SmolLM2-135M-Instruct-Q4_1.gguf").as_deref(),
            Some("smollm")
        );
        assert_eq!(family("smollm2-135m").as_deref(), Some("smollm"));
        assert_eq!(family("qwen2.5-coder:14b").as_deref(), Some("qwen"));
        assert_eq!(
            family("anthropic/claude-sonnet-4.5").as_deref(),
            Some("claude")
        );
        assert_eq!(family("123"), None);
    }

    #[test]
    fn answers_parse_or_say_why_not() {
        let r = Rubric::default();
        let ok = "Sure!\n```json\n{\"instruction_following\": 8, \"correctness\": \"6\", \"clarity\": 10, \"rationale\": \"fine\"}\n```";
        let (s, why) = parse(ok, &r).unwrap();
        assert_eq!(s["correctness"], 6.0);
        assert_eq!(why.as_deref(), Some("fine"));
        assert!((r.weighted_mean(&s).unwrap() - 7.8).abs() < 1e-9);
        for bad in [
            "no json here",
            "{\"instruction_following\": 8}",
            "{\"instruction_following\": 11, \"correctness\": 1, \"clarity\": 1}",
            "} {",
            "{not json}",
        ] {
            assert!(parse(bad, &r).is_err(), "{bad}");
        }
    }
}
