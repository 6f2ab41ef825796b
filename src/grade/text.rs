//! Text helpers for the graders: fenced code blocks, words, lines, list items and numbers.

pub(crate) use crate::scenario::snippet;
use std::borrow::Cow;

/// A fenced code block (```` ``` ```` or `~~~`) found in a response, read as CommonMark
/// reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence<'a> {
    /// The first word of the info string (`python` in ```` ```python ````), maybe empty.
    pub lang: &'a str,
    /// The lines between the fences, each without as much of its indentation as the opening
    /// fence had (so a block inside a list item loses the item's indentation).
    pub body: Cow<'a, str>,
    /// False when the text ended before the closing fence (a truncated answer).
    pub closed: bool,
}

/// Columns of indentation a tab advances to the next multiple of.
const TAB: usize = 4;

/// The columns of `line`'s leading spaces and tabs, and their length in bytes.
fn indentation(line: &str) -> (usize, usize) {
    let mut cols = 0;
    for (i, b) in line.bytes().enumerate() {
        match b {
            b' ' => cols += 1,
            b'\t' => cols += TAB - cols % TAB,
            _ => return (cols, i),
        }
    }
    (cols, line.len())
}

/// `line` without up to `cols` columns of leading indentation (a tab that reaches past them
/// stays).
fn deindent(line: &str, cols: usize) -> &str {
    let mut at = 0;
    for (i, b) in line.bytes().enumerate() {
        let next = match b {
            b' ' => at + 1,
            b'\t' => at + TAB - at % TAB,
            _ => return &line[i..],
        };
        if next > cols {
            return &line[i..];
        }
        at = next;
        if at == cols {
            return &line[i + 1..];
        }
    }
    ""
}

/// An opening fence: its character (`` ` `` or `~`), how many (at least three), and the
/// first word of its info string, from `rest`, the line after its indentation. A backtick
/// fence's info string may not hold a backtick.
fn opening_fence(rest: &str) -> Option<(u8, usize, &str)> {
    let rest = rest.trim_end();
    let ch = *rest
        .as_bytes()
        .first()
        .filter(|&&c| c == b'`' || c == b'~')?;
    let len = rest.bytes().take_while(|&c| c == ch).count();
    if len < 3 {
        return None;
    }
    let info = &rest[len..];
    if ch == b'`' && info.contains('`') {
        return None;
    }
    Some((ch, len, info.split_whitespace().next().unwrap_or("")))
}

/// Whether `rest` (a line after its indentation) closes a fence of `len` `ch`s: as many or
/// more of the same character, then only spaces or tabs.
fn closes(rest: &str, ch: u8, len: usize) -> bool {
    let rest = rest.trim_end();
    rest.len() >= len && rest.bytes().all(|c| c == ch)
}

/// The content column of a list item that `rest` (a line after its indentation, at column
/// `col`) starts (`-`, `*`, `+`, or up to nine digits and `.` or `)`, then a space or the end
/// of the line), and where its content starts in `rest`.
fn list_item(rest: &str, col: usize) -> Option<(usize, usize)> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let marker = match rest.as_bytes().first()? {
        b'-' | b'*' | b'+' => 1,
        _ if (1..=9).contains(&digits)
            && matches!(rest.as_bytes().get(digits), Some(b'.' | b')')) =>
        {
            digits + 1
        }
        _ => return None,
    };
    let after = &rest[marker..];
    if after.trim().is_empty() {
        return Some((col + marker + 1, rest.len()));
    }
    let (spaces, bytes) = indentation(after);
    if bytes == 0 {
        return None;
    }
    // Five or more columns after the marker: the content is indented code one column in.
    let spaces = if spaces > 4 { 1 } else { spaces };
    Some((col + marker + spaces, marker + bytes))
}

/// An open fence: its character and length, the column of its indentation (taken off each
/// content line), the content column of the list item it is in (0 outside lists), its
/// language and where its body starts.
struct Open<'a> {
    ch: u8,
    len: usize,
    indent: usize,
    container: usize,
    lang: &'a str,
    body_start: usize,
}

/// The body of `text[start..end]`, each line without up to `indent` columns of indentation.
fn body(text: &str, start: usize, end: usize, indent: usize) -> Cow<'_, str> {
    let raw = &text[start.min(end)..end];
    if indent == 0 {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(
        raw.split_inclusive('\n')
            .map(|l| deindent(l, indent))
            .collect(),
    )
}

/// All fenced code blocks in order, as CommonMark reads them: a fence is three or more
/// backticks or tildes indented at most three columns (counted from the content of the list
/// item it is in, if any; four or more make an indented code block instead); it is closed by
/// a line of at least as many of the same character, indented at most three columns (a fence
/// indented four or more is content), and each content line loses as much indentation as the
/// opening fence had. A closing fence indented less than its list item's content (the item
/// ended) closes it too. An unclosed last block runs to the end of the text.
pub(crate) fn fences(text: &str) -> Vec<Fence<'_>> {
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    // The content columns of the list items that contain the current line, innermost last.
    let mut items: Vec<usize> = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let (col, bytes) = indentation(line);
        let rest = &line[bytes..];
        if let Some(o) = &open {
            if col.saturating_sub(o.container) <= 3 && closes(rest, o.ch, o.len) {
                out.push(Fence {
                    lang: o.lang,
                    body: body(text, o.body_start, start, o.indent),
                    closed: true,
                });
                open = None;
            }
            continue;
        }
        if rest.trim().is_empty() {
            continue;
        }
        while items.last().is_some_and(|&c| col < c) {
            items.pop();
        }
        let container = items.last().copied().unwrap_or(0);
        if col - container > 3 {
            continue;
        }
        // A list item, and a fence that opens on its first line.
        let (fence_col, fence_rest, container) = match list_item(rest, col) {
            Some((content, at)) => {
                items.push(content);
                (content, &rest[at..], content)
            }
            None => (col, rest, container),
        };
        if let Some((ch, len, lang)) = opening_fence(fence_rest) {
            open = Some(Open {
                ch,
                len,
                indent: fence_col,
                container,
                lang,
                body_start: pos,
            });
        }
    }
    if let Some(o) = open {
        out.push(Fence {
            lang: o.lang,
            body: body(text, o.body_start, text.len(), o.indent),
            closed: false,
        });
    }
    out
}

/// If the whole (trimmed) text is one fenced block tagged `json` or untagged, its body.
pub(crate) fn single_json_fence(text: &str) -> Option<&str> {
    let t = text.trim();
    let (first, rest) = t.split_once('\n')?;
    let (ch, len, lang) = opening_fence(first)?;
    if !(lang.is_empty() || lang.eq_ignore_ascii_case("json")) {
        return None;
    }
    let rest = rest.trim_end();
    let (body, last) = rest.rsplit_once('\n').unwrap_or(("", rest));
    // The last line closes the fence, and no line before it does.
    let closing = |l: &str| {
        let (col, bytes) = indentation(l);
        col <= 3 && closes(&l[bytes..], ch, len)
    };
    (closing(last) && !body.lines().any(closing)).then_some(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The one fence of `text`: (language, body, closed).
    fn only(text: &str) -> (String, String, bool) {
        let f = fences(text);
        assert_eq!(f.len(), 1, "{text:?}: {f:?}");
        (f[0].lang.to_string(), f[0].body.to_string(), f[0].closed)
    }

    fn body(text: &str) -> String {
        let (_, body, closed) = only(text);
        assert!(closed, "{text:?}");
        body
    }

    #[test]
    fn a_fence_in_a_list_item_loses_the_items_indentation() {
        let text = "1. Here:\n   ```python\n   def f():\n       return 1\n   ```\n2. Done.\n";
        let (lang, code, closed) = only(text);
        assert_eq!((lang.as_str(), closed), ("python", true));
        assert_eq!(code, "def f():\n    return 1\n");
        // Four columns in, under an item whose content starts at two: still a fence.
        let text = "- item\n\n    ```python\n    x = 1\n\n      y = 2\n    ```\n";
        assert_eq!(only(text).1, "x = 1\n\n  y = 2\n");
        // Opened on the item's own line.
        assert_eq!(only("1. ```python\n   x = 1\n   ```\n").1, "x = 1\n");
        // A content line indented less than the fence loses what it has.
        assert_eq!(body("  ```\n x\ny\n  ```\n"), "x\ny\n");
        // A closing fence back at the margin (the item ended) closes it too.
        assert_eq!(body("1. Code:\n   ```\n   a\n```\n"), "a\n");
    }

    #[test]
    fn a_closing_fence_is_indented_at_most_three_columns() {
        assert_eq!(
            body("```\ncode\n    ```\nmore\n```\n"),
            "code\n    ```\nmore\n"
        );
        assert_eq!(body("```\ncode\n   ```\n"), "code\n");
        assert_eq!(body("```\ncode\n\t```\n```\n"), "code\n\t```\n");
        // Inside a list item, counted from the item's content.
        let text = "- x\n  ```\n  a\n      ```\n  ```\n";
        assert_eq!(body(text), "a\n    ```\n");
        assert_eq!(body("- x\n  ```\n  a\n     ```\n"), "a\n");
    }

    #[test]
    fn a_fence_indented_four_columns_outside_a_list_is_indented_code() {
        assert!(fences("    ```python\n    x = 1\n    ```\n").is_empty());
        assert!(fences("\t```python\n\tx = 1\n").is_empty());
        assert_eq!(only("   ```python\n   x = 1\n   ```\n").1, "x = 1\n");
    }

    #[test]
    fn fences_of_backticks_or_tildes_close_with_as_many_of_the_same() {
        assert_eq!(body("~~~python\nx = '```'\n```\n~~~\n"), "x = '```'\n```\n");
        assert_eq!(body("````\na\n```\n`````\n"), "a\n```\n");
        assert_eq!(body("~~~~\na\n~~~\n~~~~\n"), "a\n~~~\n");
        // A closing fence has nothing after it but spaces.
        assert_eq!(body("```\na\n```python\n```  \n"), "a\n```python\n");
        // Two backticks are no fence; a backtick fence's info has no backtick, a tilde one's may.
        assert!(fences("``\na\n``\n").is_empty());
        assert!(fences("```a`b\nx\n```").len() == 1);
        assert_eq!(fences("```a`b\nx\n```")[0].body, "");
        assert_eq!(only("~~~ a`b  more\nx\n~~~").0, "a`b");
        // Unclosed: runs to the end, not closed.
        assert_eq!(
            only("```py\nx = 1"),
            ("py".to_string(), "x = 1".to_string(), false)
        );
        assert_eq!(body("```py\r\nx\r\n```\r\n"), "x\r\n");
    }

    #[test]
    fn a_single_json_fence_is_the_whole_text() {
        assert_eq!(
            single_json_fence("```json\n{\"a\": 1}\n```"),
            Some("{\"a\": 1}")
        );
        assert_eq!(single_json_fence("~~~json\n{}\n~~~"), Some("{}"));
        assert_eq!(
            single_json_fence("```json\n{}\n```\n```json\n{}\n```"),
            None
        );
        assert_eq!(single_json_fence("````json\n{}\n```"), None);
        assert_eq!(single_json_fence("```python\n{}\n```"), None);
    }
}
