//! Tests of scenario loading: resolving names, defaults, and one-line errors for bad files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::shipped_tests::shipped;
use super::*;

/// The error message of loading `text` as `scenarios/x.toml`.
fn load_error(text: &str) -> String {
    match load_str(text, Path::new("scenarios/x.toml")) {
        Ok(_) => panic!("loaded, expected an error:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const HEADER: &str = "name = \"x\"\ndescription = \"test\"\nkind = \"short-response\"\n";

/// A file with HEADER and the given rest.
fn with_header(rest: &str) -> String {
    format!("{HEADER}{rest}")
}

fn assert_one_line(message: &str) {
    assert!(!message.contains('\n'), "not one line: {message}");
}

#[test]
fn available_and_resolve() {
    let dirs = [builtin_dir()];
    let names: Vec<String> = available(&dirs).into_iter().map(|(n, _)| n).collect();
    for n in ["coding", "long-form", "short-response"] {
        assert!(names.iter().any(|x| x == n), "{names:?}");
    }
    let path = resolve("coding", &dirs).expect("resolves");
    assert_eq!(path, builtin_dir().join("coding.toml"));
    let err = resolve("no-such-scenario", &dirs)
        .expect_err("unknown")
        .to_string();
    assert!(
        err.starts_with("unknown scenario 'no-such-scenario'"),
        "{err}"
    );
    assert!(err.contains("coding, long-form, short-response"), "{err}");
    assert_one_line(&err);
    // The price table beside the scenarios is not one of them.
    assert!(dirs[0].join("prices.toml").is_file());
    let prices = resolve("prices", &dirs).expect_err("not a scenario");
    let unknown = resolve("no-such-scenario", &dirs).expect_err("unknown");
    assert_eq!(
        prices.to_string(),
        unknown.to_string().replace("no-such-scenario", "prices")
    );
    let err = resolve("missing/x.toml", &dirs)
        .expect_err("missing")
        .to_string();
    assert_eq!(err, "missing/x.toml: no such file");
    let direct = builtin_dir().join("coding.toml");
    let direct = direct.to_str().expect("utf-8 path");
    assert_eq!(resolve(direct, &[]).expect("path"), PathBuf::from(direct));
    assert!(available(&[PathBuf::from("/no/such/dir")]).is_empty());
}

#[test]
fn missing_file_and_directory() {
    let err = load(Path::new("/no/such/file.toml"))
        .expect_err("missing")
        .to_string();
    assert_eq!(err, "/no/such/file.toml: no such file");
    // Two links to each other: the file is there, and unreadable.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.toml"), tmp.path().join("b.toml"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let found = resolve(a.to_str().unwrap(), &[]).expect("the link is there");
    let err = load(&found).expect_err("a loop").to_string();
    assert!(err.contains(": cannot read: "), "{err}");
    let dir = builtin_dir();
    let err = load(&dir).expect_err("directory").to_string();
    assert!(
        err.ends_with(": is a directory, not a scenario file"),
        "{err}"
    );
}

#[test]
fn defaults_apply_and_prompts_override() {
    let text = with_header(
        r#"
[defaults]
system = "default system"
max_tokens = 64
time_limit_s = 30
temperature = 0.7
seed = 7
top_p = 0.9
top_k = 40
stop = ["END"]

[[prompts]]
id = "inherits"
user = "hello"

[[prompts]]
id = "overrides"
user = "hello"
system = "own system"
max_tokens = 8
time_limit_s = 2.5
temperature = 0
seed = 9
top_p = 1.0
top_k = 0
stop = []

[[prompts]]
id = "no-system"
user = "hello"
system = ""
"#,
    );
    let s = load_str(&text, Path::new("x.toml")).expect("loads");
    let a = &s.prompts[0];
    assert_eq!(a.messages[0].role, Role::System);
    assert_eq!(a.messages[0].content, "default system");
    assert_eq!(a.messages[1].role, Role::User);
    assert_eq!(a.max_tokens, 64);
    assert_eq!(a.time_limit, Duration::from_secs(30));
    assert_eq!(a.sampling.temperature, 0.7);
    assert!(!a.sampling.is_greedy());
    assert_eq!(a.sampling.seed, 7);
    assert_eq!(a.sampling.top_p, Some(0.9));
    assert_eq!(a.sampling.top_k, Some(40));
    assert_eq!(a.stop, vec!["END".to_string()]);
    let b = &s.prompts[1];
    assert_eq!(b.messages[0].content, "own system");
    assert_eq!(b.max_tokens, 8);
    assert_eq!(b.time_limit, Duration::from_millis(2500));
    assert!(b.sampling.is_greedy());
    assert_eq!(b.sampling.seed, 9);
    assert_eq!(b.sampling.top_k, None);
    assert!(b.stop.is_empty());
    let c = &s.prompts[2];
    assert_eq!(c.messages.len(), 1);
    assert_eq!(c.messages[0].role, Role::User);
}

#[test]
fn built_in_defaults() {
    let text = with_header("[[prompts]]\nid = \"a\"\nuser = \"hi\"\n");
    let s = load_str(&text, Path::new("x.toml")).expect("loads");
    let p = &s.prompts[0];
    assert_eq!(p.messages.len(), 1);
    assert_eq!(p.max_tokens, 256);
    assert_eq!(p.time_limit, Duration::from_secs(60));
    assert_eq!(p.sampling, Sampling::default());
    assert!(p.sampling.is_greedy());
    assert_eq!(p.sampling.seed, 42);
    assert!(p.graders.is_empty() && p.pair.is_none() && p.raw_prompt.is_none());
}

#[test]
fn messages_and_raw_prompts() {
    let text = with_header(
        r#"
[defaults]
system = "sys"

[[prompts]]
id = "turns"
messages = [
  { role = "user", content = "a" },
  { role = "assistant", content = "b" },
  { role = "user", content = "c" },
]

[[prompts]]
id = "own-system"
messages = [{ role = "system", content = "mine" }, { role = "user", content = "c" }]

[[prompts]]
id = "raw"
raw = true
prompt = "Once upon a time"
"#,
    );
    let s = load_str(&text, Path::new("x.toml")).expect("loads");
    let roles: Vec<&str> = s.prompts[0]
        .messages
        .iter()
        .map(|m| m.role.as_str())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(s.prompts[1].messages[0].content, "mine");
    assert_eq!(s.prompts[1].messages.len(), 2);
    assert_eq!(s.prompts[2].raw_prompt.as_deref(), Some("Once upon a time"));
    assert!(s.prompts[2].messages.is_empty());
}

#[test]
fn syntax_error_has_line_and_column() {
    let err = load_error("name = \"x\"\ndescription = \"d\"\nkind \"short-response\"\n");
    assert!(
        err.starts_with("scenarios/x.toml: line 3, column "),
        "{err}"
    );
    assert_one_line(&err);
    let err = load_error("name = \"x\"\n\n[[prompts]]\nid = \"a\"\n    user = \"unterminated\n");
    assert!(
        err.starts_with("scenarios/x.toml: line 5, column "),
        "{err}"
    );
}

/// An error toml gives no place (a dotted key nested past its limit) is told without one, not
/// at line 1, column 1.
#[test]
fn a_syntax_error_without_a_place_names_none() {
    let deep = ["a"; 300].join(".");
    let err = load_error(&with_header(&format!("\n\nx.{deep} = 1\n")));
    assert_eq!(err, "scenarios/x.toml: recursion limit");
}

/// Loading `text` fails with a one-line error starting with `scenarios/x.toml: {want}`.
fn expect_error(text: &str, want: &str) {
    let err = load_error(text);
    let want = format!("scenarios/x.toml: {want}");
    assert!(err.starts_with(&want), "got:  {err}\nwant: {want}...");
    assert_one_line(&err);
}

/// A file with one prompt `a` (`user = "hi"`) followed by `extra` lines.
fn prompt_with(extra: &str) -> String {
    with_header(&format!("[[prompts]]\nid = \"a\"\nuser = \"hi\"\n{extra}"))
}

/// A file whose prompt `a` has one grader with these lines.
fn grader_with(lines: &str) -> String {
    prompt_with(&format!("  [[prompts.graders]]\n{lines}"))
}

#[test]
fn file_level_errors() {
    expect_error(&with_header(""), "no prompts");
    expect_error(&with_header("prompts = []\n"), "no prompts");
    let twice = prompt_with("[[prompts]]\nid = \"a\"\nuser = \"again\"\n");
    expect_error(&twice, "duplicate prompt id 'a'");
    expect_error(
        &format!("{HEADER}descripton = \"typo\"\n"),
        "unknown field `descripton`, expected one of `name`, `description`, `kind`",
    );
    expect_error(
        &with_header("[defaults]\nmax_token = 5\n"),
        "[defaults]: unknown field `max_token`",
    );
    expect_error(
        "name = \"x\"\nkind = \"short-response\"\n",
        "missing field `description`",
    );
    expect_error(
        "name = \"Bad Name\"\ndescription = \"d\"\nkind = \"short-response\"\n",
        "name 'Bad Name' must match [a-z0-9-]+",
    );
    expect_error(
        "name = \"x\"\ndescription = \"d\"\nkind = \"medium\"\n",
        "kind: unknown variant `medium`, expected `short-response` or `long-form`",
    );
    expect_error(
        &prompt_with("pair = \"tone-1\"\n"),
        "pair 'tone-1' has 1 prompt, needs exactly 2",
    );
}

#[test]
fn prompt_level_errors() {
    expect_error(
        &with_header("[[prompts]]\nid = \"a\"\n"),
        "prompt 'a': needs `user`, `messages` or (with raw = true) `prompt`",
    );
    expect_error(
        &prompt_with("colour = \"red\"\n"),
        "prompt 'a': unknown field `colour`",
    );
    expect_error(
        &prompt_with("max_tokens = 0\n"),
        "prompt 'a': max_tokens must be >= 1",
    );
    expect_error(
        &prompt_with("max_tokens = -1\n"),
        "prompt 'a': max_tokens: invalid value: integer `-1`, expected u32",
    );
    // toml's own message names a huge or tiny float in its exponent form, not in full digits.
    for (text, want) in [
        (
            "max_tokens = 1e300\n",
            "prompt 'a': max_tokens: invalid type: floating point `1e300`, expected u32",
        ),
        (
            "max_tokens = 1e-300\n",
            "prompt 'a': max_tokens: invalid type: floating point `1e-300`, expected u32",
        ),
        (
            "max_tokens = 1.5\n",
            "prompt 'a': max_tokens: invalid type: floating point `1.5`, expected u32",
        ),
        (
            "category = -1e100\n",
            "prompt 'a': category: invalid type: floating point `-1e100`, expected a string",
        ),
    ] {
        expect_error(&prompt_with(text), want);
        assert!(load_error(&prompt_with(text)).len() < 120, "{text}");
    }
    expect_error(
        &prompt_with("time_limit_s = -1\n"),
        "prompt 'a': time_limit_s -1 must be from 0.001 to 1e9 (seconds)",
    );
    expect_error(
        &prompt_with("time_limit_s = 1e-300\n"),
        "prompt 'a': time_limit_s 1e-300 must be from 0.001 to 1e9 (seconds)",
    );
    expect_error(
        &prompt_with("time_limit_s = 1e20\n"),
        "prompt 'a': time_limit_s 1e20 must be from 0.001 to 1e9 (seconds)",
    );
    expect_error(
        &prompt_with("temperature = 1e308\n"),
        "prompt 'a': temperature 1e308 must be from 0 to 3.4e38 (0 = greedy)",
    );
    // top_p is read wide: a value past f32 is named as written, not as `inf` or 0.
    for (top_p, shown) in [
        ("1e39", "1e39"),
        ("-1e-50", "-1e-50"),
        ("0", "0"),
        ("1.5", "1.5"),
    ] {
        expect_error(
            &prompt_with(&format!("top_p = {top_p}\n")),
            &format!("prompt 'a': top_p {shown} must be in (0, 1]"),
        );
    }
    expect_error(
        &prompt_with("top_p = 1e-50\n"),
        "prompt 'a': top_p 1e-50 is too small for llama.cpp's f32 (at least 1e-45)",
    );
    expect_error(
        &prompt_with("temperature = 0.7\nseed = 4294967295\n"),
        "prompt 'a': seed 4294967295 means a random seed to llama.cpp; choose another seed",
    );
    expect_error(
        &prompt_with("temperature = -0.5\n"),
        "prompt 'a': temperature -0.5 must be from 0 to 3.4e38 (0 = greedy)",
    );
    expect_error(
        &with_header("[[prompts]]\nid = \"a\"\nprompt = \"hi\"\n"),
        "prompt 'a': `prompt` needs raw = true",
    );
    expect_error(
        &prompt_with("messages = [{ role = \"user\", content = \"x\" }]\n"),
        "prompt 'a': has both `user` and `messages`; use one",
    );
    let last_assistant =
        "[[prompts]]\nid = \"a\"\nmessages = [{ role = \"assistant\", content = \"x\" }]\n";
    expect_error(
        &with_header(last_assistant),
        "prompt 'a': the last message must have role = \"user\"",
    );
    let nul = "prompt 'a': holds a NUL byte, which no chat template or tokenizer takes";
    for text in [
        "[[prompts]]\nid = \"a\"\nuser = \"hi\\u0000there\"\n",
        "[[prompts]]\nid = \"a\"\nmessages = [{ role = \"user\", content = \"x\\u0000\" }]\n",
        "[[prompts]]\nid = \"a\"\nsystem = \"\\u0000\"\nuser = \"hi\"\n",
    ] {
        expect_error(&with_header(text), nul);
    }
}

#[test]
fn grader_errors() {
    expect_error(
        &grader_with("type = \"jsonn\"\n"),
        "prompt 'a': unknown grader type 'jsonn' (expected one of: json, regex, not_regex,",
    );
    expect_error(
        &grader_with("type = \"regex\"\npatern = \"x\"\n"),
        "prompt 'a': grader 1 (regex): unknown field `patern`",
    );
    expect_error(
        &grader_with("value = \"x\"\n"),
        "prompt 'a': grader 1: missing `type`",
    );
    expect_error(
        &grader_with("type = \"regex\"\npattern = \"(abc\"\n"),
        "prompt 'a': invalid regex '(abc': unclosed group",
    );
    expect_error(
        &grader_with("type = \"word_count\"\nmin = 5\nmax = 2\n"),
        "prompt 'a': word_count min 5 > max 2",
    );
    expect_error(
        &grader_with("type = \"number\"\ntolerance = -1\n"),
        "prompt 'a': number: tolerance -1 must be >= 0",
    );
    expect_error(
        &grader_with("type = \"number\"\ntolerance = -1e300\n"),
        "prompt 'a': number: tolerance -1e300 must be >= 0",
    );
    for value in ["nan", "inf", "-inf"] {
        expect_error(
            &grader_with(&format!(
                "type = \"tests\"\nlanguage = \"sql\"\nsetup = \"create table t(a)\"\nexpect = [[1], [{value}]]\n"
            )),
            "prompt 'a': tests: expect holds nan or inf, which an SQL result cannot match",
        );
    }
    // SQL's keys on another language would be ignored: they are refused.
    for extra in [
        "setup = \"create table t(x)\"",
        "expect = [[1]]",
        "ordered = true",
    ] {
        expect_error(
            &grader_with(&format!(
                "type = \"tests\"\nlanguage = \"python\"\ntests = \"def test_a(): pass\"\n{extra}\n"
            )),
            "prompt 'a': tests: python takes tests (or implementation and broken), not setup, \
             expect or ordered",
        );
    }
}

/// Prompt `id` of the pair `p`, with `graders` (TOML) after it.
fn pair_half(id: &str, graders: &str) -> String {
    format!("[[prompts]]\nid = \"{id}\"\nuser = \"x\"\npair = \"p\"\n{graders}")
}

#[test]
fn pair_halves_need_matching_grader_types() {
    let text = with_header(
        &[
            pair_half("a", "[[prompts.graders]]\ntype = \"word_count\"\nmax = 3\n"),
            pair_half("b", "[[prompts.graders]]\ntype = \"json\"\n"),
        ]
        .concat(),
    );
    let err = load_error(&text);
    assert!(
        err.starts_with(
            "scenarios/x.toml: pair 'p': prompts 'a' and 'b' need the same grader types"
        ),
        "{err}"
    );
    let three = with_header(&["a", "b", "c"].map(|id| pair_half(id, "")).concat());
    assert_eq!(
        load_error(&three),
        "scenarios/x.toml: pair 'p' has 3 prompts, needs exactly 2"
    );
}

#[test]
fn scenario_serializes_kind_and_time_limit() {
    let s = shipped("short-response");
    let json = serde_json::to_value(&s).expect("serializes");
    assert_eq!(json["kind"], "short-response");
    assert_eq!(json["prompts"][0]["time_limit_s"], 60.0);
    assert_eq!(json["prompts"][0]["graders"][0]["type"], "json");
    assert_eq!(ScenarioKind::LongForm.to_string(), "long-form");
}
