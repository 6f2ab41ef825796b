//! A TOML error as one short line: its line and column where toml knows the place, then toml's
//! own message, never the source text toml's `Display` quotes (a secret on that line, or a
//! line of megabytes) nor a string value its message quotes (a secret in the wrong place).

use super::shown;

/// The most characters of toml's message told: a message quoting a huge key or value is cut
/// there.
const MAX_MESSAGE_CHARS: usize = 1000;

/// toml's error on `text`: the 1-based line and column where toml knows where it is (a nesting
/// too deep has no place), and its message on one line without the source excerpt, each string
/// value it quotes left out ([`without_strings`]) and each long float in exponent form.
pub fn located(e: &toml::de::Error, text: &str) -> (Option<(usize, usize)>, String) {
    let mut message = one_line(&short_floats(&without_strings(e.message())));
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    let place = e.span().map(|s| line_column(text, s.start));
    (place, message)
}

/// [`located`] as one line: `line 2, column 61: invalid type: integer `5`, expected a string`,
/// or the message alone where toml knows no place. Callers put the file's name before it.
pub fn describe(e: &toml::de::Error, text: &str) -> String {
    match located(e, text) {
        (Some((line, column)), message) => format!("line {line}, column {column}: {message}"),
        (None, message) => message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// toml's (serde's) message with each `floating point `DIGITS`` it quotes that is longer than
/// 20 characters in its plain-or-exponent form (`1e300`, not 301 digits).
pub fn short_floats(message: &str) -> String {
    const TAG: &str = "floating point `";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(TAG) {
        let (head, tail) = rest.split_at(i + TAG.len());
        out.push_str(head);
        let end = tail.find('`').unwrap_or(tail.len());
        let digits = &tail[..end];
        match digits.parse::<f64>() {
            Ok(v) if digits.len() > 20 => out.push_str(&shown(v, 1e-4)),
            _ => out.push_str(digits),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// What stands for a string value of the file in a message.
const NOT_SHOWN: &str = "(not shown)";

/// toml's (serde's) message with each string value of the file it quotes replaced by
/// `(not shown)`: `invalid type: string "Authorization: Bearer sk-…", expected a map` becomes
/// `invalid type: string (not shown), expected a map`, and `unknown variant `sk-…`, expected
/// …` becomes `unknown variant (not shown), expected …`, so a secret written where another
/// value belongs is never printed. Numbers, booleans and key names stay.
pub fn without_strings(message: &str) -> String {
    // serde quotes a string as Rust's `{:?}` writes it, escapes included, and a variant name
    // as it is between backticks.
    const STRING: &str = "string ";
    const VARIANT: &str = "unknown variant ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let string = rest.find("string \"").map(|i| (i, STRING));
        let variant = rest.find("unknown variant `").map(|i| (i, VARIANT));
        let Some((i, tag)) = [string, variant].into_iter().flatten().min() else {
            break;
        };
        let (head, quoted) = rest.split_at(i + tag.len());
        out.push_str(head);
        out.push_str(NOT_SHOWN);
        let end = if tag == STRING {
            end_of_debug_string(quoted)
        } else {
            // `NAME`, expected … or `NAME`, there are no variants (serde's two endings);
            // else the last backtick closes it.
            let close = ["`, expected ", "`, there are no variants"]
                .iter()
                .find_map(|ending| quoted[1..].find(ending));
            match close {
                Some(j) => j + 2,
                None => quoted
                    .rfind('`')
                    .filter(|&j| j > 0)
                    .map_or(quoted.len(), |j| j + 1),
            }
        };
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

/// The length in bytes of the `{:?}`-quoted string `quoted` starts with (its quotes included),
/// or all of it when it is not closed.
fn end_of_debug_string(quoted: &str) -> usize {
    let mut escaped = false;
    for (i, c) in quoted.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    quoted.len()
}

/// The words of `message` on one line, single spaces between them.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        describe(&e, text)
    }

    #[test]
    fn an_error_names_its_place_and_never_quotes_the_source() {
        let text =
            "[openai]\nheaders = { \"X-Api-Key\" = \"sk-live-HEADERSECRET\", \"X-Org\" = 5 }\n";
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Config {
            openai: Headers,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Headers {
            headers: std::collections::BTreeMap<String, String>,
        }
        let e = toml::from_str::<Config>(text).unwrap_err();
        assert_eq!(
            describe(&e, text),
            "line 2, column 61: invalid type: integer `5`, expected a string"
        );
        // A syntax error on a line of a megabyte is told in a few words.
        let long = format!("a = \"{}\" b\n", "x".repeat(1 << 20));
        let e = error(&long);
        assert!(e.starts_with("line 1, column "), "{e}");
        assert!(e.len() < 200, "{} characters", e.len());
        assert!(!e.contains("xxxx"), "{e}");
    }

    #[test]
    fn a_string_value_the_message_would_quote_is_not_shown() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Config {
            headers: Option<std::collections::BTreeMap<String, String>>,
            kind: Option<Kind>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(rename_all = "lowercase")]
        #[allow(dead_code)]
        enum Kind {
            Openai,
        }
        let shown = |text: &str| describe(&toml::from_str::<Config>(text).unwrap_err(), text);
        let text = "headers = \"Authorization: Bearer sk-live-HEADERSECRET\"\n";
        let e = shown(text);
        assert!(
            e.ends_with(": invalid type: string (not shown), expected a map"),
            "{e}"
        );
        assert!(!e.contains("sk-live"), "{e}");
        // Quotes and backslashes inside the value end nothing early.
        let text = "headers = 'say \"sk-\\\" 1\" sk-live-QUOTED'\n";
        let e = shown(text);
        assert!(e.ends_with("string (not shown), expected a map"), "{e}");
        assert!(!e.contains("sk-live"), "{e}");
        let e = shown("kind = \"sk-live-VARIANT\"\n");
        assert!(
            e.ends_with(": unknown variant (not shown), expected `openai`"),
            "{e}"
        );
        // Numbers stay, as does what toml expected.
        let e = shown("headers = 5\n");
        assert!(
            e.ends_with(": invalid type: integer `5`, expected a map"),
            "{e}"
        );
    }

    #[test]
    fn without_strings_leaves_out_each_quoted_string() {
        for (message, want) in [
            (
                r#"invalid type: string "a\"b\\", expected u32 or string "c""#,
                "invalid type: string (not shown), expected u32 or string (not shown)",
            ),
            (
                "unknown variant `x`, y`, expected `a`, `b`",
                "unknown variant (not shown), expected `a`, `b`",
            ),
            (
                "unknown variant `x`, there are no variants",
                "unknown variant (not shown), there are no variants",
            ),
            (
                r#"invalid value: string "open"#,
                "invalid value: string (not shown)",
            ),
            ("unknown variant `cut", "unknown variant (not shown)"),
            (
                "expected a string, found a table",
                "expected a string, found a table",
            ),
        ] {
            assert_eq!(without_strings(message), want);
        }
    }

    #[test]
    fn a_long_message_is_cut() {
        let key = "k".repeat(5000);
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Empty {}
        let text = format!("{key} = 1\n");
        let e = toml::from_str::<Empty>(&text).unwrap_err();
        let (_, message) = located(&e, &text);
        assert!(
            message.chars().count() <= MAX_MESSAGE_CHARS + 1,
            "{message}"
        );
        assert!(message.ends_with('…'), "{message}");
    }

    #[test]
    fn short_floats_shortens_only_long_quoted_floats() {
        let long = format!("1{}.0", "0".repeat(40));
        assert_eq!(
            short_floats(&format!(
                "invalid type: floating point `{long}`, expected u32"
            )),
            "invalid type: floating point `1e40`, expected u32"
        );
        for kept in [
            "invalid type: floating point `2.5`, expected u32",
            "invalid type: integer `100000000000000000000000`, expected a string",
            "floating point `not a number at all, really`",
            "floating point `unterminated",
        ] {
            assert_eq!(short_floats(kept), kept);
        }
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nxé", 5), (2, 2));
        assert_eq!(line_column("é", 1), (1, 1));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
