//! The `tests` grader on real interpreters: each harness accepts its prompt's known-correct
//! answer and rejects its known-wrong one, and hostile answers are contained and graded as
//! failures without harming the machine or the run.

use runner::grade::execute;
use runner::grade::sandbox::{self, Limits};
use runner::scenario::{self, Grader, TestSpec};
use std::time::{Duration, Instant};

fn limits() -> Limits {
    Limits {
        wall: Duration::from_secs(5),
        cpu_s: 5,
        ..Limits::default()
    }
}

fn python(tests: &str) -> TestSpec {
    TestSpec {
        language: "python".into(),
        tests: tests.into(),
        setup: String::new(),
        expect: None,
        ordered: false,
        implementation: None,
        broken: None,
        reference: None,
        wrong: None,
    }
}

fn fenced(lang: &str, code: &str) -> String {
    format!("Here it is:\n\n```{lang}\n{code}\n```\n")
}

const ADD_TESTS: &str = "from solution import add\n\
def test_small():\n    assert add(2, 3) == 5\n\
def test_negative():\n    assert add(-2, 1) == -1\n";

fn grade(t: &TestSpec, answer: &str) -> runner::scenario::Verdict {
    execute::grade("tests".into(), t, answer, &limits())
}

#[test]
fn python_answers_are_graded_case_by_case() {
    let t = python(ADD_TESTS);
    let v = grade(&t, &fenced("python", "def add(a, b):\n    return a + b"));
    assert!(v.pass, "{v:?}");
    assert_eq!(v.cases.len(), 2);
    let e = v.execution.as_ref().unwrap();
    assert_eq!(
        (e.language.as_str(), e.limits.cpu_s, e.limits.processes),
        ("python", 5, 64)
    );
    let v = grade(&t, &fenced("py", "def add(a, b):\n    return a - b"));
    assert!(!v.pass);
    assert_eq!(v.cases.iter().filter(|c| !c.pass).count(), 2, "{v:?}");
    assert!(v.detail.unwrap().contains("2 of 2 case(s) failed"));
    // No code, or code that does not import: one failure with a reason.
    let v = grade(&t, "I would add them.");
    assert!(!v.pass && v.detail.unwrap().contains("no closed python code block"));
    let v = grade(&t, &fenced("python", "def add(a, b)\n    return a + b"));
    assert!(!v.pass && v.cases[0].case == "import", "{v:?}");
}

#[test]
fn python_code_inside_a_list_item_runs_without_the_items_indentation() {
    let answer = "1. Define the function:\n   ```python\n   def add(a, b):\n       return a + b\n   ```\n2. Done.\n";
    let v = grade(&python(ADD_TESTS), answer);
    assert!(v.pass, "{v:?}");
}

#[test]
fn sql_answers_must_return_the_expected_rows() {
    let t = TestSpec {
        language: "sql".into(),
        setup:
            "CREATE TABLE t(name TEXT, n INT); INSERT INTO t VALUES ('a', 1), ('b', 2), ('a', 3);"
                .into(),
        expect: Some(vec![vec!["a".into(), 4.into()], vec!["b".into(), 2.into()]]),
        ..python("")
    };
    let right = "SELECT name, SUM(n) FROM t GROUP BY name;";
    assert!(grade(&t, &fenced("sql", right)).pass);
    let wrong = "SELECT name, COUNT(*) FROM t GROUP BY name;";
    let v = grade(&t, &fenced("sql", wrong));
    assert!(
        !v.pass && v.cases.iter().any(|c| c.case == "rows" && !c.pass),
        "{v:?}"
    );
    let v = grade(&t, &fenced("sql", "SELEC nonsense"));
    assert!(!v.pass && v.cases[0].case == "query", "{v:?}");
}

#[test]
fn written_tests_must_accept_the_correct_version_and_reject_the_broken_one() {
    let t = TestSpec {
        implementation: Some("def is_even(n):\n    return n % 2 == 0\n".into()),
        broken: Some("def is_even(n):\n    return n % 2 == 0 or n == 3\n".into()),
        ..python("")
    };
    let good = "from solution import is_even\ndef test_even():\n    assert is_even(4)\ndef test_odd():\n    assert not is_even(3)\n";
    let v = grade(&t, &fenced("python", good));
    assert!(v.pass, "{v:?}");
    assert!(v
        .cases
        .iter()
        .any(|c| c.case == "broken version rejected" && c.pass));
    // Tests too weak to notice the bug.
    let weak = "from solution import is_even\ndef test_even():\n    assert is_even(4)\n";
    let v = grade(&t, &fenced("python", weak));
    assert!(
        !v.pass && v.detail.unwrap().contains("broken version rejected"),
        ""
    );
    // Tests that reject the correct version too.
    let wrong = "from solution import is_even\ndef test_bad():\n    assert is_even(3)\n";
    assert!(!grade(&t, &fenced("python", wrong)).pass);
}

#[test]
fn javascript_runs_where_node_does_and_is_skipped_with_a_reason_elsewhere() {
    let t = TestSpec {
        language: "javascript".into(),
        tests: "function test_add() { assert.strictEqual(add(2, 3), 5); }".into(),
        ..python("")
    };
    let v = grade(&t, &fenced("js", "function add(a, b) { return a + b; }"));
    match sandbox::program("node") {
        Some(_) => {
            assert!(v.pass, "{v:?}");
            let v = grade(
                &t,
                &fenced("javascript", "function add(a, b) { return a * b; }"),
            );
            assert!(!v.pass, "{v:?}");
        }
        None => {
            let skipped = v.execution.unwrap().skipped.unwrap();
            assert!(skipped.contains("node not found"), "{skipped}");
        }
    }
}

/// A hostile answer: graded as a failure, within a bounded time.
fn contained(code: &str) -> runner::scenario::Verdict {
    let t = python(ADD_TESTS);
    let start = Instant::now();
    let v = grade(&t, &fenced("python", code));
    assert!(!v.pass, "{code}: {v:?}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{code}: {:?}",
        start.elapsed()
    );
    v
}

#[test]
fn hostile_answers_are_contained_and_fail() {
    let v = contained("def add(a, b):\n    while True:\n        pass");
    assert!(v.detail.unwrap().contains("time limit"), "infinite loop");
    let v = contained(
        "import sys\nsys.stdout.write('x' * 100_000_000)\ndef add(a, b):\n    return a + b",
    );
    assert!(
        v.detail.unwrap().contains("bytes of output"),
        "100 MB of output"
    );
    contained("x = bytearray(10 * 1024**3)\ndef add(a, b):\n    return a + b");
    contained(
        "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        pass\ndef add(a, b):\n    return a - b",
    );
    let outside = std::env::temp_dir().join(format!("runner-pwned-{}", std::process::id()));
    let code = format!(
        "open({:?}, 'w').write('x')\ndef add(a, b):\n    return a + b",
        outside.display().to_string()
    );
    let v = contained(&code);
    let iso = v.execution.unwrap().isolation;
    if iso.filesystem {
        assert!(!outside.exists(), "wrote outside its directory");
    }
    let _ = std::fs::remove_file(&outside);
    let v = contained(
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\ndef add(a, b):\n    return a + b",
    );
    assert!(v.cases.is_empty() || v.cases[0].case == "import", "{v:?}");
    // The machine is still fine: a normal answer passes right after.
    assert!(
        grade(
            &python(ADD_TESTS),
            &fenced("python", "def add(a, b):\n    return a + b")
        )
        .pass
    );
}

#[test]
fn every_shipped_harness_accepts_its_reference_and_rejects_its_wrong_answer() {
    let mut checked = 0;
    for entry in std::fs::read_dir(scenario::builtin_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml")
            || path.ends_with("prices.toml")
        {
            continue;
        }
        let s = scenario::load(&path).unwrap();
        for p in &s.prompts {
            for g in &p.graders {
                let Grader::Tests(t) = g else { continue };
                let lang = t.language.as_str();
                let (Some(good), Some(bad)) = (&t.reference, &t.wrong) else {
                    panic!(
                        "{}: a tests grader without reference and wrong answers",
                        p.id
                    );
                };
                let v = grade(t, &fenced(lang, good));
                assert!(v.pass, "{}: the reference answer fails: {v:?}", p.id);
                let v = grade(t, &fenced(lang, bad));
                assert!(!v.pass, "{}: the wrong answer passes: {v:?}", p.id);
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 12,
        "only {checked} executed graders in the shipped scenarios"
    );
}

#[test]
fn rust_answers_compile_with_hidden_tests_and_run_case_by_case() {
    let t = TestSpec {
        language: "rust".into(),
        tests: "#[cfg(test)]\nmod hidden {\n    use super::*;\n    #[test]\n    fn small() { assert_eq!(add(2, 3), 5); }\n    #[test]\n    fn negative() { assert_eq!(add(-2, 1), -1); }\n}".into(),
        ..python("")
    };
    let v = grade(
        &t,
        &fenced("rust", "pub fn add(a: i32, b: i32) -> i32 { a + b }"),
    );
    let skipped = v.execution.as_ref().and_then(|e| e.skipped.clone());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if let Some(why) = skipped {
        assert!(!rustc && why.contains("rustc not found"), "{why}");
        return;
    }
    assert!(v.pass, "{v:?}");
    assert_eq!(v.cases.len(), 2, "{v:?}");
    let v = grade(
        &t,
        &fenced("rust", "pub fn add(a: i32, b: i32) -> i32 { a - b }"),
    );
    assert!(!v.pass && v.cases.iter().any(|c| !c.pass), "{v:?}");
    let v = grade(
        &t,
        &fenced("rust", "pub fn add(a: i32, b: i32) -> i32 { a + }"),
    );
    assert!(
        !v.pass && v.detail.as_deref().unwrap().starts_with("does not compile"),
        "{v:?}"
    );
}

fn javascript(tests: &str) -> TestSpec {
    TestSpec {
        language: "javascript".into(),
        tests: tests.into(),
        ..python("")
    }
}

fn rust(tests: &str) -> TestSpec {
    TestSpec {
        language: "rust".into(),
        tests: tests.into(),
        ..python("")
    }
}

/// Whether `t`'s runtime is here; where it is not, the grader must have been skipped (with a
/// failed verdict), which `v` shows.
fn runs(v: &runner::scenario::Verdict, program: &str) -> bool {
    match v.execution.as_ref().and_then(|e| e.skipped.as_deref()) {
        Some(why) => {
            assert!(why.contains(&format!("{program} not found")), "{why}");
            false
        }
        None => true,
    }
}

const ADD_RUST_TESTS: &str = "#[cfg(test)]\nmod hidden {\n    use super::*;\n    #[test]\n    fn small() { assert_eq!(add(2, 3), 5); }\n    #[test]\n    fn negative() { assert_eq!(add(-2, 1), -1); }\n}";

const ADD_JS_TESTS: &str = "function test_small() { assert.strictEqual(add(2, 3), 5); }\n\
function test_negative() { assert.strictEqual(add(-2, 1), -1); }\n";

#[test]
fn answers_that_die_partway_fail_with_the_tests_that_never_ran() {
    // The first test passes, then the process dies: by a signal, or by exiting early.
    let t = python(ADD_TESTS);
    for death in [
        "import os, signal\n        os.kill(os.getpid(), signal.SIGSEGV)",
        "import os\n        os._exit(0)",
        "import sys\n        sys.setrecursionlimit(10**6)\n        def f(n):\n            return 0 if n == 0 else 1 + f(n - 1)\n        return f(10**6)",
    ] {
        let code = format!("def add(a, b):\n    if a == -2:\n        {death}\n    return a + b");
        let v = grade(&t, &fenced("python", &code));
        assert!(!v.pass, "{code}: {v:?}");
        let negative = v.cases.iter().find(|c| c.case == "test_negative");
        assert!(negative.is_some_and(|c| !c.pass), "{code}: {v:?}");
    }
    // A BLOB column in the answer's rows is a failed case, not a crash of the SQL harness.
    let t = TestSpec {
        language: "sql".into(),
        setup: "CREATE TABLE t(name TEXT, n INT); INSERT INTO t VALUES ('a', 1), ('b', 2);".into(),
        expect: Some(vec![vec!["a".into(), 1.into()], vec!["b".into(), 2.into()]]),
        ..python("")
    };
    let v = grade(&t, &fenced("sql", "SELECT CAST(name AS BLOB), n FROM t;"));
    assert!(!v.pass, "{v:?}");
    assert!(v.cases.iter().any(|c| c.case == "rows" && !c.pass), "{v:?}");
    // Rust: a stack overflow aborts the test binary in the second test.
    let t = rust(ADD_RUST_TESTS);
    let code = "fn deep(n: u64) -> u64 { if n == 0 { 0 } else { 1 + deep(n - 1) } }\n\
        pub fn add(a: i32, b: i32) -> i32 { if a == 2 { return deep(u64::MAX) as i32; } a + b }";
    let v = grade(&t, &fenced("rust", code));
    if runs(&v, "rustc") {
        assert!(!v.pass, "{v:?}");
        assert!(
            v.cases.iter().any(|c| c.case == "hidden::small" && !c.pass),
            "{v:?}"
        );
    }
    // JavaScript: the process exits in the second test.
    let t = javascript(ADD_JS_TESTS);
    let code = "function add(a, b) { if (a === -2) require('process').exit(0); return a + b; }";
    let v = grade(&t, &fenced("js", code));
    if runs(&v, "node") {
        assert!(!v.pass, "{v:?}");
    }
}

#[test]
fn verdicts_forged_by_the_answer_do_not_count() {
    let forgeries = [
        // Lines that look like the harness's on stdout, then a clean exit.
        "import os, sys\nprint('{\"case\": \"test_small\", \"pass\": true, \"detail\": null}')\n\
         print('{\"case\": \"test_negative\", \"pass\": true, \"detail\": null}')\n\
         sys.stdout.flush()\nos._exit(0)",
        // The harness's own functions replaced.
        "import __main__, json\n__main__.report = lambda *a, **k: None\n\
         json.dumps = lambda *a, **k: '{\"case\": \"test_small\", \"pass\": true}'\n\
         def add(a, b):\n    return a - b",
        // The tests rewritten on disk.
        "import os\nos.remove('tests.py')\n\
         open('tests.py', 'w').write('def test_small():\\n    pass\\ndef test_negative():\\n    pass\\n')\n\
         def add(a, b):\n    return a - b",
    ];
    for code in forgeries {
        let v = grade(&python(ADD_TESTS), &fenced("python", code));
        assert!(!v.pass, "{code}: {v:?}");
    }
    let t = rust(ADD_RUST_TESTS);
    let forgeries = [
        "pub fn add(_: i32, _: i32) -> i32 {\n    use std::io::Write;\n    let mut o = std::io::stdout();\n    \
         let _ = o.write_all(b\"test hidden::negative ... ok\\ntest hidden::small ... ok\\n\\ntest result: ok. 2 passed; 0 failed\\n\");\n    \
         let _ = o.flush();\n    std::process::exit(0)\n}",
        "macro_rules! assert_eq { ($($t:tt)*) => {} }\npub fn add(a: i32, b: i32) -> i32 { a - b }",
    ];
    for code in forgeries {
        let v = grade(&t, &fenced("rust", code));
        if runs(&v, "rustc") {
            assert!(!v.pass, "{code}: {v:?}");
        }
    }
    let t = javascript(ADD_JS_TESTS);
    let forgeries = [
        "console.log(JSON.stringify({case: 'test_small', pass: true}));\n\
         console.log(JSON.stringify({case: 'test_negative', pass: true}));\nrequire('process').exit(0);",
        "assert.strictEqual = () => {};\nfunction add(a, b) { return a - b; }",
        "require('assert').strictEqual = () => {};\nfunction add(a, b) { return a - b; }",
        "require('fs').unlinkSync('tests.js');\n\
         require('fs').writeFileSync('tests.js', 'function test_small() {}');\nfunction add(a, b) { return a - b; }",
    ];
    for code in forgeries {
        let v = grade(&t, &fenced("js", code));
        if runs(&v, "node") {
            assert!(!v.pass, "{code}: {v:?}");
        }
    }
}

#[test]
fn an_answer_that_carries_its_own_test_functions_is_graded_on_the_hidden_tests_alone() {
    // Models often append their own checks; those are not the prompt's tests and must not
    // change the verdict, whether they pass or fail.
    let star = python(
        "from solution import *\n\
         def test_small():\n    assert add(2, 3) == 5\n\
         def test_negative():\n    assert add(-2, 1) == -1\n",
    );
    for own in [
        "def test_mine():\n    assert add(1, 1) == 2",
        "def test_mine():\n    assert False",
    ] {
        let answer = format!("def add(a, b):\n    return a + b\n\n{own}");
        let v = grade(&star, &fenced("python", &answer));
        assert!(v.pass, "{v:?}");
        assert_eq!(v.cases.len(), 2, "{v:?}");
    }
    let t = javascript(ADD_JS_TESTS);
    for own in [
        "function test_mine() { assert.strictEqual(add(1, 1), 2); }",
        "function test_mine() { throw new Error(\"no\"); }",
    ] {
        let answer = format!("function add(a, b) {{ return a + b; }}\n{own}");
        let v = grade(&t, &fenced("javascript", &answer));
        if runs(&v, "node") {
            assert!(v.pass, "{v:?}");
            assert_eq!(v.cases.len(), 2, "{v:?}");
        }
    }
}
