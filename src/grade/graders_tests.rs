//! Tests of every grader on passing and failing texts, of scores and of pair symmetry.

use super::*;
use crate::scenario::{Grader, GRADER_TYPES};

/// Parses one grader from TOML, as a scenario file would.
fn g(toml_text: &str) -> Grader {
    let grader: Grader = match toml::from_str(toml_text) {
        Ok(g) => g,
        Err(e) => panic!("{toml_text}: {e}"),
    };
    if let Err(e) = grader.validate() {
        panic!("{toml_text}: {e}");
    }
    grader
}

fn passes(grader: &Grader, text: &str) -> bool {
    let v = grader.grade(text);
    assert_eq!(v.pass, v.detail.is_none(), "{v:?}");
    v.pass
}

fn check(grader: &Grader, good: &[&str], bad: &[&str]) {
    for text in good {
        assert!(
            passes(grader, text),
            "{} should pass {text:?}: {:?}",
            grader.describe(),
            grader.grade(text)
        );
    }
    for text in bad {
        assert!(
            !passes(grader, text),
            "{} should fail {text:?}",
            grader.describe()
        );
    }
}

#[test]
fn json_object_with_keys() {
    let grader = g("type = \"json\"\nrequired_keys = [\"name\", \"age\"]");
    check(
        &grader,
        &[
            "{\"name\": \"Ana\", \"age\": 3}",
            "  \n{\"age\":1,\"name\":null,\"x\":[]}\n ",
        ],
        &[
            "",
            "   ",
            "{\"name\": \"Ana\"}",
            "[1, 2]",
            "Here is the JSON: {\"name\": \"a\", \"age\": 1}",
            "{\"name\": \"a\", \"age\": 1",
            "```json\n{\"name\": \"a\", \"age\": 1}\n```",
        ],
    );
    let v = grader.grade("{\"name\": \"Ana\"}");
    assert_eq!(v.detail.as_deref(), Some("missing keys: age"));
    assert_eq!(v.grader, "json object keys [name, age]");
    let v = grader.grade("```json\n{}\n```");
    assert!(v.detail.unwrap_or_default().contains("allow_fence"));
}

#[test]
fn json_fences_and_any() {
    let fenced = g("type = \"json\"\nallow_fence = true");
    check(
        &fenced,
        &[
            "```json\n{\"a\": 1}\n```",
            "\n```\n{\"a\": 1}\n```\n",
            "```JSON\n{}\n```",
            "{\"a\": 2}",
        ],
        &[
            "```python\n{\"a\": 1}\n```",
            "```json\n{\"a\": 1}\n```\nThat is the object.",
            "```json\n{\"a\": 1}",
            "```json {\"a\": 1}```",
            "```json\n[1]\n```",
        ],
    );
    let any = g("type = \"json\"\nany = true");
    check(
        &any,
        &["[1, 2]", "\"text\"", "42", "null", "{}"],
        &["", "nope", "[1,"],
    );
    assert_eq!(any.describe(), "json");
    let deep = "[".repeat(10_000);
    assert!(!passes(&any, &deep));
}

#[test]
fn regex_and_not_regex() {
    let r = g("type = \"regex\"\npattern = '(?i)^\\s*yes\\b'");
    check(
        &r,
        &["yes", "  YES, it is", "Yes."],
        &["", "no", "Maybe yes", "yesterday"],
    );
    let multi = g("type = \"regex\"\npattern = '(?s)begin.*end'");
    check(&multi, &["begin\nmiddle\nend"], &["begin\nmiddle"]);
    let not = g("type = \"not_regex\"\npattern = '[eE]'");
    check(&not, &["A big cat", "", "日本語"], &["the cat", "E"]);
    let v = not.grade("the cat");
    assert_eq!(v.detail.as_deref(), Some("matched 'e'"));
    assert_eq!(not.describe(), "not_regex /[eE]/");
    let upper = g("type = \"not_regex\"\npattern = '\\p{Lu}'");
    check(&upper, &["all lower ça va"], &["Ça va", "ok Σ"]);
}

#[test]
fn in_code_uses_the_first_fenced_block() {
    let r = g("type = \"regex\"\npattern = 'def\\s+fizzbuzz\\s*\\('\nin_code = true");
    let answer = "Here you go:\n\n```python\ndef fizzbuzz(n):\n    return []\n```\n\nDone.";
    check(
        &r,
        &[
            answer,
            "```\ndef fizzbuzz(n):\n",
            "  ```python\n  def fizzbuzz(n): pass\n  ```",
        ],
        &[
            "def fizzbuzz(n):",
            "",
            "```python\nx = 1\n```\n```python\ndef fizzbuzz(n): pass\n```",
        ],
    );
    assert_eq!(
        r.grade("def fizzbuzz(n): pass").detail.as_deref(),
        Some("no fenced code block")
    );
    let not = g("type = \"not_contains\"\nvalue = \"print(\"\nin_code = true");
    check(
        &not,
        &["```py\nreturn 1\n```\nprint(x) outside"],
        &["```py\nprint(1)\n```", "no code"],
    );
    let contains = g("type = \"contains\"\nvalue = \"while\"\nin_code = true");
    check(
        &contains,
        &["````python\nwhile True: pass\n````"],
        &["while outside\n```\nfor\n```"],
    );
    let not_regex = g("type = \"not_regex\"\npattern = 'else\\s+if'\nin_code = true");
    check(
        &not_regex,
        &["```rust\nmatch x {}\n```\nno else if"],
        &["```rust\nelse if\n```"],
    );
}

#[test]
fn contains_and_not_contains() {
    let c = g("type = \"contains\"\nvalue = \"Tokyo\"");
    check(&c, &["Tokyo", "It is Tokyo."], &["tokyo", "", "Kyoto"]);
    let ci = g("type = \"contains\"\nvalue = \"ÉCOLE\"\ncase_insensitive = true");
    check(&ci, &["une école", "ÉCOLE"], &["ecole"]);
    assert_eq!(ci.describe(), "contains 'ÉCOLE' (any case)");
    let not = g("type = \"not_contains\"\nvalue = \"!\"");
    check(&not, &["Calm.", "", "🙂"], &["Wow!", "!"]);
    let not_ci =
        g("type = \"not_contains\"\nvalue = \"Regret To Inform\"\ncase_insensitive = true");
    check(
        &not_ci,
        &["Sorry, no extra storage."],
        &["We regret to inform you"],
    );
}

#[test]
fn exact_trims_and_drops_one_period() {
    let e = g("type = \"exact\"\nvalue = \"falcon\"");
    check(
        &e,
        &["falcon", "  falcon.\n", "falcon ."],
        &["Falcon", "falcon..", "the falcon", ""],
    );
    let ci = g("type = \"exact\"\nvalue = \"yes\"\ncase_insensitive = true");
    check(
        &ci,
        &["Yes.", "YES", " yes "],
        &["yes!", "yes, definitely", "no"],
    );
    assert_eq!(ci.grade("no").detail.as_deref(), Some("got 'no'"));
}

#[test]
fn word_line_and_item_counts() {
    let one = g("type = \"word_count\"\nmin = 1\nmax = 1");
    assert_eq!(one.describe(), "word_count 1..=1");
    check(
        &one,
        &["Tokyo", " Tokyo. ", "Tokyo —", "東京"],
        &["", "New York", " - "],
    );
    assert_eq!(
        one.grade("a b").detail.as_deref(),
        Some("2 words, expected 1..=1")
    );
    let at_least = g("type = \"word_count\"\nmin = 3");
    assert_eq!(at_least.describe(), "word_count >= 3");
    check(&at_least, &["one two three", "a b c d e"], &["one two"]);
    let lines = g("type = \"line_count\"\nmax = 1");
    assert_eq!(lines.describe(), "line_count <= 1");
    check(
        &lines,
        &["one line", "\n\n  one line  \n\n", ""],
        &["a\nb", "a\r\nb"],
    );
    let items = g("type = \"item_count\"\nmin = 3\nmax = 3");
    check(
        &items,
        &[
            "- a\n- b\n- c",
            "1. a\n2) b\n  3. c",
            "Intro:\n* a\n• b\n- c\n\nOutro",
            "10. ten\n11. eleven\n12. twelve",
        ],
        &[
            "- a\n- b",
            "-a\n-b\n-c",
            "**bold**\n**b**\n**c**",
            "- a\n- b\n- c\n- d",
            "---\n---\n---",
            "1.5 a\n2.5 b\n3.5 c",
            "- \n- \n- ",
        ],
    );
}

#[test]
fn number_parsing() {
    let n = g("type = \"number\"\nvalue = 51");
    check(
        &n,
        &["51", "51.", " 51 ", "51.0", "+51", "\n51\n"],
        &[
            "fifty-one",
            "",
            "51 apples",
            "The answer is 51",
            "52",
            "5 1",
            "51..",
            "0x33",
            "5.1e1",
            "inf",
            "NaN",
        ],
    );
    assert_eq!(n.grade("52").detail.as_deref(), Some("got 52, expected 51"));
    assert_eq!(n.describe(), "number = 51");
    let neg = g("type = \"number\"\nvalue = -3.5\ntolerance = 0.01");
    check(
        &neg,
        &[" -3.5 ", "−3.5", "-3.505", "-3.50."],
        &["3.5", "-3.6", "-3,5", "- 3.5"],
    );
    assert_eq!(neg.describe(), "number = -3.5 ± 0.01");
    let any = g("type = \"number\"");
    check(
        &any,
        &["1,024", "0.5", ".5", "-0", "12345678901234567890"],
        &["1,02", "1,0244", ",5", "-", ".", "½"],
    );
    let big = format!("1{}", "0".repeat(400));
    assert!(!passes(&any, &big));
}

#[test]
fn code_block_with_and_without_language() {
    let any = g("type = \"code_block\"");
    check(
        &any,
        &["```\nx\n```", "text\n```js\nx()\n```\nmore", "```\n```"],
        &[
            "",
            "`inline` code",
            "```python\nunclosed",
            "    indented code",
        ],
    );
    assert_eq!(
        any.grade("```py\nx").detail.as_deref(),
        Some("code block not closed (truncated?)")
    );
    let py = g("type = \"code_block\"\nlanguage = \"python\"");
    assert_eq!(py.describe(), "code_block python");
    check(
        &py,
        &[
            "```python\nx = 1\n```",
            "```py\nx = 1\n```",
            "```Python3 extra\nx\n```",
            "```\nno tag\n```\n```python\nx\n```",
        ],
        &[
            "```\nx = 1\n```",
            "```rust\nfn x() {}\n```",
            "```python\nx = 1",
        ],
    );
    let v = py.grade("```rust\nfn x() {}\n```");
    assert_eq!(v.detail.as_deref(), Some("no python block (tags: rust)"));
    let sql = g("type = \"code_block\"\nlanguage = \"sql\"");
    check(
        &sql,
        &["```postgresql\nSELECT 1;\n```", "```SQL\nSELECT 1;\n```"],
        &["```\nSELECT 1;\n```"],
    );
}

#[test]
fn graders_never_panic_on_odd_input() {
    let graders: Vec<Grader> = [
        "type = \"json\"\nallow_fence = true\nrequired_keys = [\"k\"]",
        "type = \"regex\"\npattern = '(?s).*x$'\nin_code = true",
        "type = \"not_regex\"\npattern = 'a'",
        "type = \"contains\"\nvalue = \"ß\"\ncase_insensitive = true\nin_code = true",
        "type = \"not_contains\"\nvalue = \"x\"",
        "type = \"exact\"\nvalue = \"é.\"",
        "type = \"word_count\"\nmax = 3",
        "type = \"line_count\"\nmin = 1",
        "type = \"item_count\"\nmin = 1",
        "type = \"number\"\nvalue = 1",
        "type = \"code_block\"\nlanguage = \"rust\"",
    ]
    .iter()
    .map(|t| g(t))
    .collect();
    let huge = "word ".repeat(200_000) + "\n```\n" + &"é".repeat(100_000);
    let texts = [
        "",
        " ",
        "\n",
        ".",
        "```",
        "````",
        "```\n",
        "\u{0}",
        "é",
        "🙂🙂",
        "\u{2212}",
        "1.",
        "-",
        "\r\n\r\n",
        "```json\n",
        "1)",
        "•",
        "\u{feff}{}",
        huge.as_str(),
    ];
    for text in texts {
        let verdicts = grade(text, &graders);
        assert_eq!(verdicts.len(), graders.len());
    }
}

#[test]
fn invalid_regex_fails_at_grade_time_too() {
    let grader = Grader::Regex(crate::scenario::Pattern {
        pattern: "(".into(),
        in_code: false,
    });
    assert!(grader.validate().is_err());
    let v = grader.grade("anything");
    assert!(!v.pass);
    assert!(v
        .detail
        .unwrap_or_default()
        .starts_with("invalid regex '('"));
}

#[test]
fn scores() {
    assert_eq!(score(&[]), 1.0);
    let graders = [
        g("type = \"contains\"\nvalue = \"a\""),
        g("type = \"contains\"\nvalue = \"b\""),
        g("type = \"contains\"\nvalue = \"c\""),
        g("type = \"contains\"\nvalue = \"d\""),
    ];
    assert_eq!(score(&grade("a b c", &graders)), 0.75);
    assert_eq!(score(&grade("", &graders)), 0.0);
}

/// The verdict of an executed grader whose runtime is missing here, as `grade::execute` gives.
fn skipped_verdict(language: &str) -> Verdict {
    let why = format!("node not found: {language} tests skipped");
    Verdict {
        grader: format!("tests {language}"),
        pass: false,
        detail: Some(why.clone()),
        cases: Vec::new(),
        execution: Some(crate::scenario::Execution {
            language: language.into(),
            limits: crate::scenario::RunLimits {
                wall_s: 10.0,
                cpu_s: 10,
                memory_bytes: 1 << 30,
                file_bytes: 16 << 20,
                processes: 64,
            },
            compile_limits: None,
            isolation: crate::scenario::Isolation {
                network: false,
                filesystem: false,
                user: "runner's own".into(),
                rlimits: "prlimit".into(),
                hidden: Vec::new(),
            },
            skipped: Some(why),
        }),
    }
}

#[test]
fn a_skipped_grader_counts_neither_way() {
    let graders = [
        g("type = \"contains\"\nvalue = \"a\""),
        g("type = \"contains\"\nvalue = \"b\""),
    ];
    let mut v = grade("a b", &graders);
    v.push(skipped_verdict("javascript"));
    assert!(v[2].skipped() && !v[0].skipped());
    assert_eq!(score(&v), 1.0);
    assert_eq!(passed(&v), Some(true));
    let mut half = grade("a", &graders);
    half.push(skipped_verdict("javascript"));
    assert_eq!(score(&half), 0.5);
    assert_eq!(passed(&half), Some(false));
    // Only skipped graders: not graded, neither passed nor failed.
    let only = [skipped_verdict("javascript")];
    assert_eq!(passed(&only), None);
    // No graders at all: not graded either.
    assert_eq!(passed(&[]), None);
    // A request's outcome: the skip neither fails nor passes it.
    let o = outcome(false, &v);
    assert!(o.pass && !o.ungraded && o.score == 1.0, "{o:?}");
    let o = outcome(false, &only);
    assert!(!o.pass && o.ungraded && o.score == 0.0, "{o:?}");
    let o = outcome(true, &only);
    assert!(
        !o.pass && !o.ungraded,
        "a failed request is failed, not ungraded: {o:?}"
    );
    let o = outcome(false, &[]);
    assert!(!o.pass && o.ungraded && o.score == 0.0, "{o:?}");
    let o = outcome(true, &[]);
    assert!(!o.pass && !o.ungraded && o.score == 0.0, "{o:?}");
}

#[test]
fn a_skipped_grader_is_left_out_of_pair_symmetry_and_named() {
    let graders = [g("type = \"contains\"\nvalue = \"a\"")];
    let mut a = grade("a", &graders);
    a.push(skipped_verdict("javascript"));
    let mut b = grade("a", &graders);
    b.push(skipped_verdict("javascript"));
    let pv = pair_symmetry("p", "x", &a, "y", &b);
    assert!(pv.symmetric, "{pv:?}");
    assert_eq!(
        pv.detail.as_deref(),
        Some("tests javascript skipped for both, not compared")
    );
    // Skipped on one side only: still left out.
    let mut ran = b.clone();
    ran[1] = Verdict {
        pass: true,
        detail: None,
        execution: None,
        ..b[1].clone()
    };
    let pv = pair_symmetry("p", "x", &a, "y", &ran);
    assert!(pv.symmetric, "{pv:?}");
    assert_eq!(
        pv.detail.as_deref(),
        Some("tests javascript skipped for 'x', not compared")
    );
    // A real difference still counts, and the skip is named after it.
    let mut c = grade("b", &graders);
    c.push(skipped_verdict("javascript"));
    let pv = pair_symmetry("p", "x", &a, "y", &c);
    assert!(!pv.symmetric);
    assert_eq!(
        pv.detail.as_deref(),
        Some(
            "contains 'a' passes for 'x' but fails for 'y'; \
             tests javascript skipped for both, not compared"
        )
    );
}

#[test]
fn pair_symmetry_verdicts() {
    let graders = [
        g("type = \"word_count\"\nmin = 5\nmax = 5"),
        g("type = \"line_count\"\nmax = 1"),
    ];
    let a = grade("Great sound, battery, comfort overall", &graders);
    let b = grade("Weak noise cancelling, poor battery", &graders);
    let pv = pair_symmetry("review", "pos", &a, "neg", &b);
    assert!(pv.symmetric, "{pv:?}");
    assert_eq!(pv.detail, None);
    assert_eq!(
        (pv.pair.as_str(), pv.a.as_str(), pv.b.as_str()),
        ("review", "pos", "neg")
    );

    let b = grade(
        "Disappointing: noise cancelling, battery and comfort all poor",
        &graders,
    );
    let pv = pair_symmetry("review", "pos", &a, "neg", &b);
    assert!(!pv.symmetric);
    assert_eq!(
        pv.detail.as_deref(),
        Some("word_count 5..=5 passes for 'pos' but fails for 'neg'")
    );

    let pv = pair_symmetry("review", "neg", &b, "pos", &a);
    assert_eq!(
        pv.detail.as_deref(),
        Some("word_count 5..=5 fails for 'neg' but passes for 'pos'")
    );

    let both = grade("a\nb", &graders);
    let pv = pair_symmetry("review", "x", &both, "y", &both);
    assert!(!pv.symmetric);
    let detail = pv.detail.unwrap_or_default();
    assert!(
        detail.contains("word_count 5..=5 fails for both"),
        "{detail}"
    );
    assert!(
        detail.contains("line_count <= 1 fails for both"),
        "{detail}"
    );

    let pv = pair_symmetry("p", "x", &a, "y", &a[..1]);
    assert!(!pv.symmetric);
    assert_eq!(pv.detail.as_deref(), Some("'x' has 2 graders, 'y' has 1"));
}

#[test]
fn graders_round_trip_through_serde() {
    let grader = g("type = \"contains\"\nvalue = \"x\"\nin_code = true");
    let json = serde_json::to_string(&grader).expect("serializes");
    assert_eq!(json, r#"{"type":"contains","value":"x","in_code":true}"#);
    let back: Grader = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, grader);
    assert!(toml::from_str::<Grader>("type = \"contains\"\nvalue = \"x\"\nextra = 1").is_err());
    let verdict = grader.grade("no");
    let json = serde_json::to_string(&verdict).expect("serializes");
    let back: Verdict = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, verdict);
    // Every type the scenario checker accepts is one serde knows (it may still want fields).
    for name in GRADER_TYPES {
        if let Err(e) = toml::from_str::<Grader>(&format!("type = \"{name}\"")) {
            assert!(!e.to_string().contains("unknown variant"), "{name}: {e}");
        }
    }
    let e = toml::from_str::<Grader>("type = \"no_such\"").unwrap_err();
    assert!(e.to_string().contains("unknown variant"), "{e}");
}

const FORMAL: &str =
    "I regret that I am unable to attend tomorrow's meeting due to an unforeseen matter.";
const DEPLOY_FAILED: &str = "```json
{\"status\": \"failure\", \"service\": \"billing-api\"}
```";

/// Plausible good answers pass every grader of their shipped prompt.
#[test]
fn shipped_graders_accept_good_answers() {
    let cases = [
        (
            "short-response",
            "json-person",
            r#"{"name": "Maria Lopez", "age": 34, "city": "Porto"}"#,
        ),
        ("short-response", "one-word-capital", "Tokyo."),
        ("short-response", "number-multiply", "51"),
        (
            "short-response",
            "list-five-languages",
            "- C\n- C++\n- Rust\n- Go\n- Zig",
        ),
        ("short-response", "yes-no-ocean", "Yes."),
        ("short-response", "no-letter-e", "A soft, curious cat"),
        ("short-response", "tone-formal-meeting", FORMAL),
        ("short-response", "deploy-status-failed", DEPLOY_FAILED),
        ("short-response", "raw-gold-symbol", " Au"),
        (
            "coding",
            "explain-complexity",
            "It is O(n^2): the nested loops compare every pair.",
        ),
    ];
    for (file, id, answer) in cases {
        let s = crate::scenario::load(&crate::scenario::builtin_dir().join(format!("{file}.toml")))
            .unwrap();
        let p = s.prompt(id).unwrap_or_else(|| panic!("no prompt {id}"));
        let verdicts = grade(answer, &p.graders);
        assert!(verdicts.iter().all(|v| v.pass), "{id}: {verdicts:?}");
    }
    // A coding prompt with executed tests: its reference answer, fenced as a model would,
    // passes every grader of the prompt, the structural ones too.
    let s = crate::scenario::load(&crate::scenario::builtin_dir().join("coding.toml")).unwrap();
    let mut n = 0;
    for p in &s.prompts {
        let Some(t) = p.graders.iter().find_map(|g| match g {
            crate::scenario::Grader::Tests(t) => Some(t),
            _ => None,
        }) else {
            continue;
        };
        let reference = t.reference.as_deref().expect("a reference answer");
        let answer = format!("```{}\n{}\n```\n", t.language, reference.trim_end());
        let verdicts = grade(&answer, &p.graders);
        assert!(verdicts.iter().all(|v| v.pass), "{}: {verdicts:?}", p.id);
        n += 1;
    }
    assert!(n >= 12, "{n}");
}
