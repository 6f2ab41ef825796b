//! The `tests` grader: the answer's code, extracted from its fenced blocks, executed against
//! the prompt's hidden tests in the sandbox, one verdict per test case (pass@1 of the prompt:
//! every case passes). Python and SQL (an in-memory SQLite database, through Python's sqlite3)
//! run wherever `python3` does; JavaScript where `node` does, else the grader is skipped with
//! the reason recorded.

use super::sandbox::{self, Limits};
use super::text;
use crate::scenario::{CaseVerdict, Execution, RunLimits, TestSpec, Verdict};
use std::path::{Path, PathBuf};

/// Runs Python tests. Before the answer is imported it opens the verdict file (and removes its
/// name), reads tests.py, and announces the `test_*` functions that tests.py defines at top
/// level; then it imports `solution`, runs each of those tests and no other (awaiting a
/// coroutine), writes one JSON line per case and a closing line. A failure to import is one failed case. Everything it
/// uses after the import is a local name bound before it.
const PYTHON_DRIVER: &str = include_str!("drivers/tests.py");

/// Runs the answer's SQL against a database built by setup.sql and compares its rows with
/// expect.json.
const SQL_DRIVER: &str = include_str!("drivers/sql.py");

/// Runs JavaScript tests: tests.js uses `solution` (the answer's module.exports, or its
/// top-level functions) and declares `test_*` functions (`function test_x`, or `const`, `let`
/// or `var test_x =`). Before the answer runs it opens the verdict file (and removes its
/// name), reads tests.js, announces the tests it declares and freezes `assert`; it runs those
/// tests and no other (the answer's own `test_*` functions share the context), awaiting a
/// test that returns a promise.
const JS_DRIVER: &str = include_str!("drivers/tests.js");

/// rustc's sysroot (the toolchain itself, not rustup's proxy, which needs its home), found
/// once; `None` without rustc.
fn rust_sysroot() -> Option<PathBuf> {
    static SYSROOT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            let o = std::process::Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .ok()?;
            let root = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            (o.status.success() && root.join("bin/rustc").is_file()).then_some(root)
        })
        .clone()
}

/// Placed between the answer and the hidden tests: the assertion macros the tests call are
/// the standard ones, not a `macro_rules!` of the same name in the answer.
const RUST_GUARD: &str = "
#[allow(unused_macros)]
macro_rules! assert { ($($t:tt)*) => { ::core::assert!($($t)*) }; }
#[allow(unused_macros)]
macro_rules! assert_eq { ($($t:tt)*) => { ::core::assert_eq!($($t)*) }; }
#[allow(unused_macros)]
macro_rules! assert_ne { ($($t:tt)*) => { ::core::assert_ne!($($t)*) }; }
#[allow(unused_macros)]
macro_rules! panic { ($($t:tt)*) => { ::std::panic!($($t)*) }; }
";

/// The limits of compiling a Rust answer with its tests (`rustc` needs more than the test
/// run's `limits`).
fn compile_limits(limits: &Limits) -> Limits {
    Limits {
        wall: std::time::Duration::from_secs(120),
        cpu_s: 120,
        memory_bytes: 8 << 30,
        file_bytes: 256 << 20,
        processes: 512,
        ..*limits
    }
}

/// Compiles `code` and `tests` into one crate with its tests (`rustc --test`), removes the
/// source, and runs the `#[test]` functions of `tests` (by their full names), one case each.
fn run_rust(
    sysroot: &Path,
    code: &str,
    tests: &str,
    limits: &Limits,
) -> Result<Vec<CaseVerdict>, String> {
    let expected = rust_test_names(tests);
    if expected.is_empty() {
        return Err("no #[test] functions in the tests".into());
    }
    let source = format!("{code}\n\n{RUST_GUARD}\n{tests}\n");
    let dir = workdir([("solution.rs", source.as_str())])?;
    let rustc = sysroot.join("bin/rustc");
    let compile = compile_limits(limits);
    let args: Vec<String> = "--edition 2021 --test -C debuginfo=0 solution.rs -o t"
        .split(' ')
        .map(String::from)
        .collect();
    let o = sandbox::run(dir.path(), &rustc, &args, &compile)
        .map_err(|e| format!("cannot start rustc: {e}"))?;
    if let Some(why) = o.stopped(&compile) {
        return Err(format!("compiling: {why}"));
    }
    if o.exit != Some(0) {
        let first = o
            .stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("rustc failed");
        return Err(format!("does not compile: {}", text::snippet(first, 200)));
    }
    // The running tests do not get to read the test source.
    std::fs::remove_file(dir.path().join("solution.rs"))
        .map_err(|e| format!("remove solution.rs: {e}"))?;
    // libtest writes each result to a log file that runner holds open, not only to stdout,
    // which the answer shares.
    let mut args: Vec<String> = ["--test-threads=1", "--exact", "--logfile", "verdicts"]
        .map(String::from)
        .to_vec();
    args.extend(expected.iter().cloned());
    let tests = dir.path().join("t");
    let (o, log) = run_logged(dir.path(), &tests, &args, limits, "the tests")?;
    // `ok NAME`, `failed NAME` or `ignored NAME`; the last two fail, saying which.
    let case = |l: &str| {
        let (result, name) = l.split_once(' ')?;
        matches!(result, "ok" | "failed" | "ignored").then(|| CaseVerdict {
            case: name.to_string(),
            pass: result == "ok",
            detail: (result != "ok").then(|| result.to_string()),
        })
    };
    let cases = log.lines().filter_map(case).collect();
    let done = o.stdout.lines().any(|l| l.starts_with("test result: "));
    // libtest exits with 101 when a test failed.
    Ok(checked(&expected, cases, done, ending(&o, &[0, 101])))
}

/// Runs `program args` in `dir` (`what` names it when it cannot start) beside the file
/// `verdicts`, made here and held open, which the sandbox user may write: how the run ended
/// and what it wrote to that file (from the start, at most the output limit), or why the run
/// was stopped.
fn run_logged(
    dir: &Path,
    program: &Path,
    args: &[String],
    limits: &Limits,
    what: &str,
) -> Result<(sandbox::Outcome, String), String> {
    use std::io::{Read, Seek};
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("verdicts");
    let failed = |e: std::io::Error| format!("verdict file: {e}");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(failed)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).map_err(failed)?;
    let o = sandbox::run(dir, program, args, limits)
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    if let Some(why) = o.stopped(limits) {
        return Err(why);
    }
    let mut written = Vec::new();
    file.rewind().map_err(failed)?;
    (file.take(limits.output_bytes as u64))
        .read_to_end(&mut written)
        .map_err(failed)?;
    Ok((o, String::from_utf8_lossy(&written).into_owned()))
}

/// The full names (`module::function`) of the `#[test]` functions in Rust `source`, as
/// libtest reports them, in order.
pub(crate) fn rust_test_names(source: &str) -> Vec<String> {
    let tokens = rust_tokens(source);
    let mut names = Vec::new();
    // (module name, brace depth inside it)
    let mut modules: Vec<(&str, usize)> = Vec::new();
    let (mut depth, mut pending_mod, mut test_attr) = (0usize, None, false);
    for (i, t) in tokens.iter().enumerate() {
        let next = |k: usize| tokens.get(i + k).copied().unwrap_or("");
        match *t {
            "{" => {
                depth += 1;
                if let Some(m) = pending_mod.take() {
                    modules.push((m, depth));
                }
            }
            "}" => {
                if modules.last().is_some_and(|&(_, d)| d == depth) {
                    modules.pop();
                }
                depth = depth.saturating_sub(1);
            }
            "mod" if next(2) == "{" => pending_mod = Some(next(1)),
            "#" if next(1) == "[" && next(2) == "test" && next(3) == "]" => test_attr = true,
            "fn" if test_attr => {
                test_attr = false;
                let path: Vec<&str> = modules.iter().map(|&(m, _)| m).chain([next(1)]).collect();
                names.push(path.join("::"));
            }
            ";" => pending_mod = None,
            _ => {}
        }
    }
    names
}

/// Rust source as tokens: identifiers, and every other character alone; comments, strings and
/// character literals left out.
fn rust_tokens(source: &str) -> Vec<&str> {
    let b = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let rest = &b[i..];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if rest.starts_with(b"//") {
            i += rest.iter().position(|&x| x == b'\n').unwrap_or(rest.len());
        } else if rest.starts_with(b"/*") {
            let mut nest = 0usize;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    nest += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r' && (rest.starts_with(b"r\"") || rest.starts_with(b"r#")) {
            let hashes = rest[1..].iter().take_while(|&&x| x == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                out.push("r");
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body = 2 + hashes;
            i += body
                + rest[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(rest.len() - body, |p| p + close.len());
        } else if c == b'"'
            || (c == b'\'' && (rest.get(1) == Some(&b'\\') || rest.get(2) == Some(&b'\'')))
        {
            // A string or character literal, to its closing quote.
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let n = rest
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric() || **x == b'_')
                .count();
            out.push(&source[i..i + n]);
            i += n;
        } else {
            let n = source[i..].chars().next().map_or(1, char::len_utf8);
            out.push(&source[i..i + n]);
            i += n;
        }
    }
    out
}

/// A fresh sandbox directory holding `files` (name, contents), which the sandbox user may read
/// but not write.
fn workdir<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<tempfile::TempDir, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = sandbox::workdir().map_err(|e| format!("sandbox directory: {e}"))?;
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, body).map_err(|e| format!("write {name}: {e}"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
            .map_err(|e| format!("write {name}: {e}"))?;
    }
    Ok(dir)
}

/// How a run ended: fine when it exited with one of `ok`, else why not.
fn ending(o: &sandbox::Outcome, ok: &[i32]) -> Result<(), String> {
    match o.exit {
        Some(c) if ok.contains(&c) => Ok(()),
        Some(c) => Err(format!("the run exited with status {c}")),
        None => Err("the run was killed by a signal (a crash)".into()),
    }
}

/// The cases a run reported, checked against those it was `expected` to run: each must be
/// reported exactly once, no other may pass, the run must have reached its closing line
/// (`done`) and ended normally. Each shortfall is a failed case.
fn checked(
    expected: &[String],
    reported: Vec<CaseVerdict>,
    done: bool,
    ending: Result<(), String>,
) -> Vec<CaseVerdict> {
    let mut cases: Vec<CaseVerdict> = Vec::new();
    for c in reported {
        if let Some(seen) = cases.iter_mut().find(|s| s.case == c.case) {
            seen.pass = false;
            seen.detail = Some("reported more than once".into());
        } else if c.pass && !expected.contains(&c.case) {
            cases.push(CaseVerdict {
                pass: false,
                detail: Some("not one of the tests".into()),
                ..c
            });
        } else {
            cases.push(c);
        }
    }
    let ended = match ending {
        Err(why) => Some(why),
        Ok(()) if !done => Some("the run ended before its last test".into()),
        Ok(()) => None,
    };
    for name in expected {
        if !cases.iter().any(|c| &c.case == name) {
            cases.push(CaseVerdict {
                case: name.clone(),
                pass: false,
                detail: Some(match &ended {
                    Some(why) => format!("no result: {why}"),
                    None => "did not run".into(),
                }),
            });
        }
    }
    if let Some(why) = ended {
        cases.push(CaseVerdict {
            case: "exit".into(),
            pass: false,
            detail: Some(why),
        });
    }
    cases
}

/// The code of the answer in `language`: every closed fenced block tagged with it, joined;
/// else every closed untagged block.
pub fn answer_code(response: &str, language: &str) -> Option<String> {
    let fences = text::fences(response);
    let pick = |f: &&text::Fence| {
        f.closed && text::canonical_language(f.lang) == text::canonical_language(language)
    };
    let mut blocks: Vec<&str> = fences.iter().filter(pick).map(|f| &*f.body).collect();
    if blocks.is_empty() {
        blocks = fences
            .iter()
            .filter(|f| f.closed && f.lang.is_empty())
            .map(|f| &*f.body)
            .collect();
    }
    (!blocks.is_empty()).then(|| blocks.join("\n"))
}

/// `l` as a record states it.
fn run_limits(l: &Limits) -> RunLimits {
    RunLimits {
        wall_s: l.wall.as_secs_f64(),
        cpu_s: l.cpu_s,
        memory_bytes: l.memory_bytes,
        file_bytes: l.file_bytes,
        processes: l.processes,
    }
}

/// The record of how `t` runs under `limits` (a Rust answer compiled under larger ones).
fn execution(t: &TestSpec, limits: &Limits, skipped: Option<String>) -> Execution {
    Execution {
        language: t.language.clone(),
        limits: run_limits(limits),
        compile_limits: (t.language == "rust").then(|| run_limits(&compile_limits(limits))),
        isolation: sandbox::isolation(),
        skipped,
    }
}

/// One run: writes `files` into a fresh directory and runs the driver, which writes its
/// verdicts to a file runner created (not to stdout, which the answer shares); the cases it
/// reported, checked against those it announced, or why there are none.
fn run_cases(
    interpreter: &Path,
    driver: (&str, &str),
    files: &[(&str, String)],
    limits: &Limits,
) -> Result<Vec<CaseVerdict>, String> {
    let files = files.iter().map(|(name, body)| (*name, body.as_str()));
    let dir = workdir(files.chain([driver]))?;
    let args = [driver.0.to_string()];
    let what = interpreter.display().to_string();
    let (o, written) = run_logged(dir.path(), interpreter, &args, limits, &what)?;
    let (mut expected, mut cases, mut done) = (None, Vec::new(), false);
    for line in written.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(names) = v.get("expect").filter(|_| expected.is_none()) {
            expected =
                Some(serde_json::from_value::<Vec<String>>(names.clone()).unwrap_or_default());
        } else if v.get("done") == Some(&serde_json::Value::Bool(true)) {
            done = true;
        } else if let Ok(c) = serde_json::from_value::<CaseVerdict>(v) {
            cases.push(c);
        }
    }
    let Some(expected) = expected else {
        let err = o.stderr.lines().last().unwrap_or("").trim();
        return Err(format!(
            "no test results (exit {}){}",
            o.exit.map_or("?".into(), |c| c.to_string()),
            if err.is_empty() {
                String::new()
            } else {
                format!(": {}", text::snippet(err, 200))
            }
        ));
    };
    Ok(checked(&expected, cases, done, ending(&o, &[0])))
}

fn verdict(
    grader: String,
    cases: Result<Vec<CaseVerdict>, String>,
    execution: Execution,
) -> Verdict {
    let (cases, detail) = match cases {
        Ok(cases) => {
            let failed: Vec<&CaseVerdict> = cases.iter().filter(|c| !c.pass).collect();
            let detail = failed.first().map(|first| {
                format!(
                    "{} of {} case(s) failed; {}: {}",
                    failed.len(),
                    cases.len(),
                    first.case,
                    first.detail.as_deref().unwrap_or("failed")
                )
            });
            (cases, detail)
        }
        Err(why) => (Vec::new(), Some(why)),
    };
    Verdict {
        grader,
        pass: detail.is_none(),
        detail,
        cases,
        execution: Some(execution),
    }
}

/// The cases of the answer's own tests: every one on the correct version, then whether any
/// failed on the broken version.
fn written_tests(
    good: Result<Vec<CaseVerdict>, String>,
    bad: Result<Vec<CaseVerdict>, String>,
) -> Result<Vec<CaseVerdict>, String> {
    let good = good.map_err(|e| format!("on the correct version: {e}"))?;
    let bad = bad.map_err(|e| format!("on the broken version: {e}"))?;
    let caught = bad.iter().any(|c| !c.pass);
    let mut cases: Vec<CaseVerdict> = good
        .into_iter()
        .map(|c| CaseVerdict {
            case: format!("correct version: {}", c.case),
            ..c
        })
        .collect();
    cases.push(CaseVerdict {
        case: "broken version rejected".into(),
        pass: caught,
        detail: (!caught).then(|| "every test passed on the broken version".into()),
    });
    Ok(cases)
}

/// Grades `response` with `t` under `limits`.
pub fn grade(grader: String, t: &TestSpec, response: &str, limits: &Limits) -> Verdict {
    let (program, driver, ext) = match t.language.as_str() {
        "rust" => ("rustc", "", "rs"),
        "python" => ("python3", PYTHON_DRIVER, "py"),
        "sql" => ("python3", SQL_DRIVER, "py"),
        _ => ("node", JS_DRIVER, "js"),
    };
    let found = match program {
        "rustc" => rust_sysroot(),
        _ => sandbox::program(program),
    };
    let Some(found) = found else {
        // No runtime here: not passed, the reason recorded as a skip (not the answer's failure).
        let why = format!("{program} not found: {} tests skipped", t.language);
        return verdict(grader, Err(why.clone()), execution(t, limits, Some(why)));
    };
    let exec = execution(t, limits, None);
    let Some(code) = answer_code(response, &t.language) else {
        return verdict(
            grader,
            Err(format!("no closed {} code block in the answer", t.language)),
            exec,
        );
    };
    let cases = cases(t, &found, driver, ext, code, limits);
    verdict(grader, cases, exec)
}

/// The case an SQL run reports when the scenario's own `setup` fails.
const SQL_SETUP_CASE: &str = "setup";

/// Why the scenario's own part of `t` cannot run, found before any answer is graded: an SQL
/// `setup` that SQLite refuses (every answer would fail on it). Nothing to check for other
/// languages, or where Python is missing (the grader is skipped then); a run that fails for
/// another reason (the sandbox, a Python without sqlite3) is the machine's, not the
/// scenario's, and grading says so.
pub fn check_setup(t: &TestSpec) -> Result<(), String> {
    if t.language != "sql" {
        return Ok(());
    }
    let Some(python) = sandbox::program("python3") else {
        return Ok(());
    };
    let limits = Limits::default();
    let ran = cases(t, &python, SQL_DRIVER, "py", "SELECT 1".into(), &limits);
    let setup = (ran.unwrap_or_default().into_iter()).find(|c| c.case == SQL_SETUP_CASE);
    match setup {
        Some(c) if !c.pass => Err(format!(
            "setup fails in SQLite: {}",
            c.detail.unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

/// The cases of the answer's `code` under `t`, run by `found` (rustc's sysroot, or the
/// interpreter of the `driver` script). Rust: the answer and the tests in one crate
/// (`rustc --test`); for a test-writing prompt, the implementation first and the answer's test
/// module after it.
fn cases(
    t: &TestSpec,
    found: &Path,
    driver: &str,
    ext: &str,
    code: String,
    limits: &Limits,
) -> Result<Vec<CaseVerdict>, String> {
    let [solution, tests, driver_name] =
        ["solution", "tests", "driver"].map(|f| format!("{f}.{ext}"));
    let driver = (driver_name.as_str(), driver);
    let on = |files: &[(&str, String)]| run_cases(found, driver, files, limits);
    match (t.language.as_str(), &t.implementation, &t.broken) {
        ("rust", Some(good), Some(bad)) => {
            let on = |imp: &String| run_rust(found, imp, &code, limits);
            written_tests(on(good), on(bad))
        }
        ("rust", ..) => run_rust(found, &code, &t.tests, limits),
        ("sql", ..) => {
            let expect = serde_json::json!({"expect": t.expect, "ordered": t.ordered});
            on(&[
                ("setup.sql", t.setup.clone()),
                ("answer.sql", code),
                ("expect.json", expect.to_string()),
            ])
        }
        // The answer is tests: they must accept the correct version and reject the broken.
        (_, Some(good), Some(bad)) => {
            let on = |imp: &String| on(&[(&solution, imp.clone()), (&tests, code.clone())]);
            written_tests(on(good), on(bad))
        }
        _ => on(&[(&solution, code), (&tests, t.tests.clone())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, pass: bool) -> CaseVerdict {
        CaseVerdict {
            case: name.into(),
            pass,
            detail: None,
        }
    }

    fn spec(language: &str) -> TestSpec {
        TestSpec {
            language: language.into(),
            tests: String::new(),
            setup: String::new(),
            expect: None,
            ordered: false,
            implementation: None,
            broken: None,
            reference: None,
            wrong: None,
        }
    }

    #[test]
    fn an_sql_setup_sqlite_refuses_is_found_before_grading_and_named_when_grading() {
        let sql = |setup: &str| TestSpec {
            setup: setup.into(),
            expect: Some(vec![vec![serde_json::json!(1)]]),
            ..spec("sql")
        };
        assert_eq!(
            check_setup(&sql("create table t(a); insert into t values (1);")),
            Ok(())
        );
        let bad = sql("create tabel t(a);");
        let e = check_setup(&bad).unwrap_err();
        assert_eq!(
            e,
            "setup fails in SQLite: OperationalError: near \"tabel\": syntax error"
        );
        // Graded anyway, the verdict names the setup, not a missing result.
        let v = grade(
            "tests".into(),
            &bad,
            "```sql\nSELECT 1\n```",
            &Limits::default(),
        );
        assert!(!v.pass);
        let detail = v.detail.unwrap();
        assert!(detail.contains("setup: OperationalError"), "{detail}");
        // Nothing of the scenario's own runs for other languages.
        assert_eq!(check_setup(&spec("python")), Ok(()));
    }

    #[test]
    fn a_rust_record_states_its_compile_limits_and_others_have_none() {
        let limits = Limits::default();
        let rust = execution(&spec("rust"), &limits, None);
        let run = &rust.limits;
        assert_eq!((run.wall_s, run.cpu_s, run.processes), (10.0, 10, 64));
        assert_eq!(
            rust.compile_limits,
            Some(RunLimits {
                wall_s: 120.0,
                cpu_s: 120,
                memory_bytes: 8 << 30,
                file_bytes: 256 << 20,
                processes: 512,
            })
        );
        let json = serde_json::to_string(&rust).unwrap();
        assert!(
            json.contains(r#""compile_limits":{"wall_s":120.0,"cpu_s":120,"#),
            "{json}"
        );
        for language in ["python", "javascript", "sql"] {
            let e = execution(&spec(language), &limits, None);
            assert_eq!(e.compile_limits, None);
            let json = serde_json::to_string(&e).unwrap();
            assert!(!json.contains("compile_limits"), "{json}");
            let back: Execution = serde_json::from_str(&json).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn code_in_a_list_item_loses_the_items_indentation() {
        let answer = "Steps:\n\n1. Define it:\n   ```python\n   def f(x):\n       return x + 1\n   ```\n2. Call it:\n   ```python\n   y = f(1)\n   ```\n";
        assert_eq!(
            answer_code(answer, "python").as_deref(),
            Some("def f(x):\n    return x + 1\n\ny = f(1)\n")
        );
    }

    #[test]
    fn rust_test_names_follow_modules_and_skip_comments_and_strings() {
        let src = r##"
#[cfg(test)]
mod hidden_tests {
    use super::*;
    // #[test] fn in_a_comment() {}
    const S: &str = "}} #[test] fn in_a_string() {";
    const R: &str = r#"{ "#;
    const C: char = '{';
    #[test]
    fn first() { assert_eq!(f(), '}'); }
    mod inner {
        #[test]
        #[should_panic]
        fn second<'a>() { /* { */ }
    }
    #[test]
    fn third() {}
}
#[test]
fn top() {}
"##;
        assert_eq!(
            rust_test_names(src),
            [
                "hidden_tests::first",
                "hidden_tests::inner::second",
                "hidden_tests::third",
                "top"
            ]
        );
        assert!(rust_test_names("fn main() {}").is_empty());
    }

    #[test]
    fn every_expected_case_must_be_reported_once_and_no_other_may_pass() {
        let expected = ["a".to_string(), "b".to_string()];
        let all = checked(
            &expected,
            vec![case("a", true), case("b", true)],
            true,
            Ok(()),
        );
        assert!(all.iter().all(|c| c.pass), "{all:?}");
        let bad = |cases: Vec<CaseVerdict>, done: bool, ending: Result<(), String>| {
            let out = checked(&expected, cases, done, ending);
            assert!(out.iter().any(|c| !c.pass), "{out:?}");
            out
        };
        let out = bad(vec![case("a", true)], true, Ok(()));
        assert!(out.iter().any(|c| c.case == "b" && !c.pass));
        bad(vec![case("a", true), case("a", true)], true, Ok(()));
        bad(
            vec![case("a", true), case("b", true), case("c", true)],
            true,
            Ok(()),
        );
        bad(vec![case("made up", true)], true, Ok(()));
        bad(vec![case("a", true), case("b", true)], false, Ok(()));
        let out = bad(
            vec![case("a", true), case("b", true)],
            true,
            Err("the run was killed by a signal (a crash)".into()),
        );
        assert!(out.iter().any(|c| c.case == "exit"));
    }
}
