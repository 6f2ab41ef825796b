//! Text helpers for the graders: fenced code blocks, words, lines, list items and numbers.

pub(crate) use crate::scenario::snippet;

/// A fenced code block (```` ``` ````) found in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence<'a> {
    /// The first word of the info string (`python` in ```` ```python ````), maybe empty.
    pub lang: &'a str,
    /// The lines between the fences.
    pub body: &'a str,
    /// False when the text ended before the closing fence (a truncated answer).
    pub closed: bool,
}

/// An opening fence: at least three backticks, then an info string without backticks.
fn opening_fence(line: &str) -> Option<(usize, &str)> {
    let t = line.trim();
    let ticks = t.len() - t.trim_start_matches('`').len();
    if ticks < 3 {
        return None;
    }
    let info = &t[ticks..];
    if info.contains('`') {
        return None;
    }
    Some((ticks, info.split_whitespace().next().unwrap_or("")))
}

/// A closing fence: only backticks, at least as many as the opening one.
fn is_closing_fence(line: &str, ticks: usize) -> bool {
    let t = line.trim();
    !t.is_empty() && t.len() >= ticks && t.bytes().all(|b| b == b'`')
}

/// All fenced code blocks in order; an unclosed last block runs to the end of the text.
pub(crate) fn fences(text: &str) -> Vec<Fence<'_>> {
    let mut out = Vec::new();
    // (backtick count, language, byte offset where the body starts)
    let mut open: Option<(usize, &str, usize)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        match open {
            None => {
                if let Some((ticks, lang)) = opening_fence(line) {
                    open = Some((ticks, lang, pos));
                }
            }
            Some((ticks, lang, body_start)) => {
                if is_closing_fence(line, ticks) {
                    out.push(Fence {
                        lang,
                        body: &text[body_start..start],
                        closed: true,
                    });
                    open = None;
                }
            }
        }
    }
    if let Some((_, lang, body_start)) = open {
        out.push(Fence {
            lang,
            body: &text[body_start.min(text.len())..],
            closed: false,
        });
    }
    out
}

/// If the whole (trimmed) text is one fenced block tagged `json` or untagged, its body.
pub(crate) fn single_json_fence(text: &str) -> Option<&str> {
    let t = text.trim();
    let (first, rest) = t.split_once('\n')?;
    let (_, lang) = opening_fence(first)?;
    if !(lang.is_empty() || lang.eq_ignore_ascii_case("json")) {
        return None;
    }
    let rest = rest.trim_end();
    let (body, last) = rest.rsplit_once('\n').unwrap_or(("", rest));
    if !is_closing_fence(last, 3) || body.lines().any(|l| opening_fence(l).is_some()) {
        return None;
    }
    Some(body)
}

/// Canonical name of a code block language tag, so that `py` and `python` match.
pub(crate) fn canonical_language(lang: &str) -> String {
    let lower = lang.trim().to_lowercase();
    let canonical = match lower.as_str() {
        "py" | "python3" => "python",
        "js" | "node" => "javascript",
        "ts" => "typescript",
        "rs" => "rust",
        "sh" | "shell" | "zsh" => "bash",
        "c++" | "cc" | "cxx" => "cpp",
        "golang" => "go",
        "postgresql" | "postgres" | "psql" | "sqlite" | "mysql" | "plsql" => "sql",
        "yml" => "yaml",
        other => other,
    };
    canonical.to_string()
}

/// Words: whitespace-separated tokens with at least one letter or digit (so a lone `-` or
/// `—` is not a word).
pub(crate) fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// Lines with something other than whitespace on them.
pub(crate) fn line_count(text: &str) -> usize {
    text.lines().filter(|l| !l.trim().is_empty()).count()
}

/// List items: lines starting with `-`, `*`, `•`, `N.` or `N)`, then whitespace and text.
pub(crate) fn item_count(text: &str) -> usize {
    text.lines().filter(|l| is_list_item(l)).count()
}

fn is_list_item(line: &str) -> bool {
    let t = line.trim_start();
    let after_marker = t.strip_prefix(['-', '*', '•']).or_else(|| {
        let number = t.trim_start_matches(|c: char| c.is_ascii_digit());
        (number.len() < t.len())
            .then_some(number)?
            .strip_prefix(['.', ')'])
    });
    after_marker.is_some_and(|a| a.starts_with(char::is_whitespace) && !a.trim().is_empty())
}

/// The whole trimmed text as one number: an optional sign, digits (optionally grouped with
/// commas as in `1,024`), an optional decimal part; one trailing period is allowed (`51.`).
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let t = t.strip_suffix('.').unwrap_or(t);
    let first = t.chars().next()?;
    let (negative, body) = match first {
        '-' | '\u{2212}' => (true, &t[first.len_utf8()..]),
        '+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let int_digits = plain_integer(int_part)?;
    let frac_digits = match frac_part {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => f,
        Some(_) => return None,
        None => "",
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let sign = if negative { "-" } else { "" };
    let normal = format!("{sign}0{int_digits}.{frac_digits}0");
    normal.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Digits of an integer part written as `1234` or `1,234`; `None` when malformed.
fn plain_integer(int_part: &str) -> Option<String> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if digits(int_part) {
        return Some(int_part.to_string());
    }
    let (first, rest) = int_part.split_once(',')?;
    let grouped = (1..=3).contains(&first.len())
        && digits(first)
        && rest.split(',').all(|g| g.len() == 3 && digits(g));
    grouped.then(|| int_part.replace(',', ""))
}
