//! The `tests` grader: the answer's code, extracted from its fenced blocks, executed against
//! the prompt's hidden tests in the sandbox, one verdict per test case (pass@1 of the prompt:
//! every case passes). Python and SQL (an in-memory SQLite database, through Python's sqlite3)
//! run wherever `python3` does; JavaScript where `node` does, else the grader is skipped with
//! the reason recorded.

use super::sandbox::{self, Limits};
use super::text;
use crate::scenario::{CaseVerdict, Execution, TestSpec, Verdict};

/// Runs Python tests: imports `solution`, runs every `test_*` function of tests.py, prints one
/// JSON line per case. A failure to import is one failed case.
const PYTHON_DRIVER: &str = r#"
import json, sys
def report(case, ok, detail=None):
    print(json.dumps({"case": case, "pass": ok, "detail": detail}), flush=True)
sys.path.insert(0, ".")
try:
    import solution
except BaseException as e:
    report("import", False, (type(e).__name__ + ": " + str(e))[:300])
    sys.exit(0)
ns = {"__name__": "tests"}
try:
    exec(compile(open("tests.py").read(), "tests.py", "exec"), ns)
except BaseException as e:
    report("load tests", False, (type(e).__name__ + ": " + str(e))[:300])
    sys.exit(0)
names = [n for n, f in ns.items() if n.startswith("test_") and callable(f)]
if not names:
    report("tests", False, "no test_ functions")
for n in names:
    try:
        ns[n]()
        report(n, True)
    except BaseException as e:
        report(n, False, (type(e).__name__ + ": " + str(e))[:300])
"#;

/// Runs the answer's SQL against a database built by setup.sql and compares its rows with
/// expect.json.
const SQL_DRIVER: &str = r#"
import json, sqlite3
def report(case, ok, detail=None):
    print(json.dumps({"case": case, "pass": ok, "detail": detail}), flush=True)
spec = json.load(open("expect.json"))
db = sqlite3.connect(":memory:")
db.executescript(open("setup.sql").read())
query = open("answer.sql").read().strip()
try:
    rows = [list(r) for r in db.execute(query.rstrip().rstrip(";")).fetchall()]
except Exception as e:
    report("query", False, (type(e).__name__ + ": " + str(e))[:300])
    raise SystemExit(0)
want = spec["expect"]
def norm(r):
    return [round(v, 6) if isinstance(v, float) else v for v in r]
got = [norm(r) for r in rows]
want = [norm(r) for r in want]
if not spec["ordered"]:
    key = lambda r: json.dumps(r, sort_keys=True)
    got, want = sorted(got, key=key), sorted(want, key=key)
report("row count", len(got) == len(want), None if len(got) == len(want) else f"{len(got)} rows, want {len(want)}")
same = got == want
report("rows", same, None if same else ("first rows " + json.dumps(got[:3]))[:300])
"#;

/// Runs JavaScript tests: tests.js uses `solution` (the answer's module.exports, or its
/// top-level functions) and defines `test_*` functions.
const JS_DRIVER: &str = r#"
const fs = require("fs");
const vm = require("vm");
function report(c, ok, detail) { console.log(JSON.stringify({case: c, pass: ok, detail: detail || null})); }
// One context for the answer and the tests, so that both see the same Error and builtins.
const ctx = vm.createContext({ module: { exports: {} }, console, require, assert: require("assert"),
  setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask });
ctx.exports = ctx.module.exports;
try {
  vm.runInContext(fs.readFileSync("solution.js", "utf8"), ctx, { filename: "solution.js" });
} catch (e) { report("load", false, String(e).slice(0, 300)); process.exit(0); }
ctx.solution = ctx.module.exports;
for (const [k, v] of Object.entries(ctx.module.exports || {})) { if (!(k in ctx)) ctx[k] = v; }
try {
  vm.runInContext(fs.readFileSync("tests.js", "utf8"), ctx, { filename: "tests.js" });
} catch (e) { report("load tests", false, String(e).slice(0, 300)); process.exit(0); }
const names = Object.keys(ctx).filter(n => n.startsWith("test_") && typeof ctx[n] === "function");
if (names.length === 0) report("tests", false, "no test_ functions");
for (const n of names) {
  try { ctx[n](); report(n, true); } catch (e) { report(n, false, String(e).slice(0, 300)); }
}
"#;

/// rustc's sysroot (the toolchain itself, not rustup's proxy, which needs its home), found
/// once; `None` without rustc.
fn rust_sysroot() -> Option<std::path::PathBuf> {
    static SYSROOT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    SYSROOT
        .get_or_init(|| {
            let o = std::process::Command::new("rustc")
                .args(["--print", "sysroot"])
                .output()
                .ok()?;
            let root = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            (o.status.success() && root.join("bin/rustc").is_file()).then_some(root)
        })
        .clone()
}

/// Compiles `source` with its tests (`rustc --test`) and runs them, one case per `#[test]`.
fn run_rust(
    sysroot: &std::path::Path,
    source: String,
    limits: &Limits,
) -> Result<Vec<CaseVerdict>, String> {
    let dir = workdir([("solution.rs", source.as_str())])?;
    // The sandbox user may not read runner's home, where rustup keeps the toolchain: it is
    // mounted into the run's directory, read-only.
    let (rustc, mounts) = if sandbox::mounts_needed() {
        (
            dir.path().join(".rust/bin/rustc"),
            vec![(sysroot.to_path_buf(), ".rust")],
        )
    } else {
        (sysroot.join("bin/rustc"), Vec::new())
    };
    let compile = Limits {
        wall: std::time::Duration::from_secs(120),
        cpu_s: 120,
        memory_bytes: 8 << 30,
        file_bytes: 256 << 20,
        processes: 512,
        ..*limits
    };
    let args: Vec<String> = "--edition 2021 --test -C debuginfo=0 solution.rs -o t"
        .split(' ')
        .map(String::from)
        .collect();
    let o = sandbox::run(dir.path(), &rustc, &args, &compile, &mounts)
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
    let args = ["--test-threads=1".to_string()];
    let o = sandbox::run(dir.path(), &dir.path().join("t"), &args, limits, &[])
        .map_err(|e| format!("cannot start the tests: {e}"))?;
    let case = |l: &str| {
        let (name, result) = l.strip_prefix("test ")?.rsplit_once(" ... ")?;
        let pass = match result.trim() {
            "ok" => true,
            "FAILED" => false,
            _ => return None,
        };
        Some(CaseVerdict {
            case: name.to_string(),
            pass,
            detail: (!pass).then(|| "failed".into()),
        })
    };
    reported(&o, limits, case, || {
        "no test results (no #[test] functions ran)".into()
    })
}

/// A fresh sandbox directory holding `files` (name, contents).
fn workdir<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<tempfile::TempDir, String> {
    let dir = sandbox::workdir().map_err(|e| format!("sandbox directory: {e}"))?;
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).map_err(|e| format!("write {name}: {e}"))?;
    }
    Ok(dir)
}

/// The cases a run reported (`case`: the one a line of its stdout reports, if any), unless it
/// was stopped at a limit or reported none (`none`: why, then).
fn reported(
    o: &sandbox::Outcome,
    limits: &Limits,
    case: impl Fn(&str) -> Option<CaseVerdict>,
    none: impl FnOnce() -> String,
) -> Result<Vec<CaseVerdict>, String> {
    let cases: Vec<CaseVerdict> = o.stdout.lines().filter_map(case).collect();
    if let Some(why) = o.stopped(limits) {
        return Err(why);
    }
    if cases.is_empty() {
        return Err(none());
    }
    Ok(cases)
}

/// The code of the answer in `language`: every closed fenced block tagged with it, joined;
/// else every closed untagged block.
pub fn answer_code(response: &str, language: &str) -> Option<String> {
    let fences = text::fences(response);
    let pick = |f: &&text::Fence| {
        f.closed && text::canonical_language(f.lang) == text::canonical_language(language)
    };
    let mut blocks: Vec<&str> = fences.iter().filter(pick).map(|f| f.body).collect();
    if blocks.is_empty() {
        blocks = fences
            .iter()
            .filter(|f| f.closed && f.lang.is_empty())
            .map(|f| f.body)
            .collect();
    }
    (!blocks.is_empty()).then(|| blocks.join("\n"))
}

fn execution(t: &TestSpec, limits: &Limits, skipped: Option<String>) -> Execution {
    Execution {
        language: t.language.clone(),
        wall_s: limits.wall.as_secs_f64(),
        cpu_s: limits.cpu_s,
        memory_bytes: limits.memory_bytes,
        file_bytes: limits.file_bytes,
        processes: limits.processes,
        isolation: sandbox::isolation(),
        skipped,
    }
}

/// One run: writes `files` into a fresh directory and runs the driver; the cases it
/// reported, or why there are none.
fn run_cases(
    interpreter: &std::path::Path,
    driver: (&str, &str),
    files: &[(&str, String)],
    limits: &Limits,
) -> Result<Vec<CaseVerdict>, String> {
    let files = files.iter().map(|(name, body)| (*name, body.as_str()));
    let dir = workdir(files.chain([driver]))?;
    let o = sandbox::run(
        dir.path(),
        interpreter,
        &[driver.0.to_string()],
        limits,
        &[],
    )
    .map_err(|e| format!("cannot start {}: {e}", interpreter.display()))?;
    reported(
        &o,
        limits,
        |l| serde_json::from_str(l).ok(),
        || {
            let err = o.stderr.lines().last().unwrap_or("").trim();
            format!(
                "no test results (exit {}){}",
                o.exit.map_or("?".into(), |c| c.to_string()),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(": {}", text::snippet(err, 200))
                }
            )
        },
    )
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

/// The cases of the answer's `code` under `t`, run by `found` (rustc's sysroot, or the
/// interpreter of the `driver` script). Rust: the answer and the tests in one crate
/// (`rustc --test`); for a test-writing prompt, the implementation first and the answer's test
/// module after it.
fn cases(
    t: &TestSpec,
    found: &std::path::Path,
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
            let on = |imp: &String| run_rust(found, format!("{imp}\n\n{code}\n"), limits);
            written_tests(on(good), on(bad))
        }
        ("rust", ..) => run_rust(found, format!("{code}\n\n{}\n", t.tests), limits),
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
