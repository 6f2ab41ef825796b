//! The checks behind each grader type; each returns why it failed, in a few words.

use super::text;
use crate::scenario::{compile_regex as compile, Bounds, Needle, Pattern};
use std::borrow::Cow;

fn where_text(in_code: bool) -> &'static str {
    if in_code {
        "the first code block"
    } else {
        "the response"
    }
}

/// The whole response, or the body of its first fenced code block.
fn target(response: &str, in_code: bool) -> Result<Cow<'_, str>, String> {
    if !in_code {
        return Ok(Cow::Borrowed(response));
    }
    text::fences(response)
        .into_iter()
        .next()
        .map(|f| f.body)
        .ok_or_else(|| "no fenced code block".to_string())
}

/// `want`: the pattern must match (regex) or must not (not_regex).
pub(super) fn regex(response: &str, p: &Pattern, want: bool) -> Result<(), String> {
    let target = target(response, p.in_code)?;
    match (compile(&p.pattern)?.find(&target), want) {
        (Some(_), true) | (None, false) => Ok(()),
        (None, true) => Err(format!("no match in {}", where_text(p.in_code))),
        (Some(m), false) => Err(format!("matched '{}'", text::snippet(m.as_str(), 40))),
    }
}

/// `want`: the value must be present (contains) or absent (not_contains).
pub(super) fn contains(response: &str, n: &Needle, want: bool) -> Result<(), String> {
    let haystack = target(response, n.in_code)?;
    let found = if n.case_insensitive {
        haystack.to_lowercase().contains(&n.value.to_lowercase())
    } else {
        haystack.contains(n.value.as_str())
    };
    if found == want {
        return Ok(());
    }
    let not = if found { "" } else { "not " };
    let value = text::snippet(&n.value, 40);
    Err(format!("'{value}' {not}found in {}", where_text(n.in_code)))
}

/// A count within `min..=max`, either bound optional.
pub(super) fn in_range(what: &str, n: usize, b: &Bounds) -> Result<(), String> {
    if b.min.is_some_and(|lo| n < lo) || b.max.is_some_and(|hi| n > hi) {
        Err(format!("{n} {what}, expected {}", b.text()))
    } else {
        Ok(())
    }
}

/// One JSON value (an object unless `any`), optionally in one ```json fence, with `keys`.
pub(super) fn json(
    text: &str,
    any: bool,
    allow_fence: bool,
    keys: &[String],
) -> Result<(), String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty response".into());
    }
    let body = if trimmed.starts_with("```") {
        if !allow_fence {
            return Err("JSON is in a code fence (allow_fence = false)".into());
        }
        text::single_json_fence(trimmed).ok_or("not a single ```json block")?
    } else {
        trimmed
    };
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(object) = value.as_object() else {
        if !any || !keys.is_empty() {
            return Err(format!("JSON {}, expected an object", json_kind(&value)));
        }
        return Ok(());
    };
    let missing: Vec<&str> = keys
        .iter()
        .filter(|k| !object.contains_key(k.as_str()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing keys: {}", missing.join(", ")))
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Trimmed, without one trailing period.
fn normalize_exact(s: &str) -> &str {
    let t = s.trim();
    t.strip_suffix('.').unwrap_or(t).trim_end()
}

/// Equal after trimming and dropping one trailing period.
pub(super) fn exact(response: &str, value: &str, case_insensitive: bool) -> Result<(), String> {
    let (got, want) = (normalize_exact(response), normalize_exact(value));
    let equal = got == want || case_insensitive && got.to_lowercase() == want.to_lowercase();
    if equal {
        Ok(())
    } else {
        Err(format!("got '{}'", text::snippet(got, 40)))
    }
}

/// The whole response is one number, equal to `value` ± `tolerance` if given.
pub(super) fn number(response: &str, value: Option<f64>, tolerance: f64) -> Result<(), String> {
    let Some(got) = text::parse_number(response) else {
        return Err(format!("not a number: '{}'", text::snippet(response, 40)));
    };
    match value {
        Some(want) if (got - want).abs() > tolerance + 1e-9 * want.abs().max(1.0) => {
            Err(format!("got {got}, expected {want}"))
        }
        _ => Ok(()),
    }
}

/// A closed fenced block, with the given language tag (aliases allowed) if any.
pub(super) fn code_block(response: &str, language: Option<&str>) -> Result<(), String> {
    let fences = text::fences(response);
    let closed: Vec<&text::Fence> = fences.iter().filter(|f| f.closed).collect();
    if closed.is_empty() {
        return Err(if fences.is_empty() {
            "no fenced code block".into()
        } else {
            "code block not closed (truncated?)".into()
        });
    }
    let Some(want) = language else {
        return Ok(());
    };
    let want = text::canonical_language(want);
    if closed
        .iter()
        .any(|f| text::canonical_language(f.lang) == want)
    {
        return Ok(());
    }
    let tags: Vec<&str> = closed
        .iter()
        .map(|f| if f.lang.is_empty() { "(none)" } else { f.lang })
        .collect();
    Err(format!("no {want} block (tags: {})", tags.join(", ")))
}
