//! `runner sweep` on the real SmolLM2 model: quantizations through scenarios, records with
//! grader verdicts, the quantize cache, resume after a kill, failed cells, bad scenario files.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A sweep with its own results and cache directories.
struct Sweep {
    dir: tempfile::TempDir,
}

impl Sweep {
    fn new() -> Sweep {
        Sweep {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    fn args(&self, extra: &str) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "sweep".into(),
            "--no-progress".into(),
            "--results".into(),
            self.results().display().to_string(),
            "--cache-dir".into(),
            self.dir.path().join("cache").display().to_string(),
            "--busy-threshold".into(),
            "64".into(),
        ];
        v.extend(extra.split_whitespace().map(str::to_string));
        v
    }

    fn run(&self, extra: &str) -> Output {
        let _g = heavy();
        let args = self.args(extra);
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Every line of the one results file.
    fn records(&self) -> Vec<Value> {
        let files: Vec<PathBuf> = std::fs::read_dir(self.results())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        std::fs::read_to_string(&files[0])
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }
}

fn requests(recs: &[Value]) -> Vec<&Value> {
    recs.iter().filter(|r| r["kind"] == "request").collect()
}

fn m() -> String {
    model().display().to_string()
}

#[test]
fn two_quantizations_give_a_table_and_graded_records_and_hit_the_cache() {
    let s = Sweep::new();
    let o = s.run(&format!(
        "-m {} --quant q8_0,q4_0 --scenario short-response --limit 3",
        m()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    // A probe taken on a busy machine is not used: the records carry no measured peak.
    let busy_probe = stderr(&o).contains("bandwidth probe was taken on a busy machine");
    let out = stdout(&o);
    assert!(out.contains("q8_0*") && out.contains("q4_0*"), "{out}");
    assert!(out.contains("short-response"), "{out}");
    assert!(out.contains("re-quantized"), "{out}");
    let recs = s.records();
    let reqs = requests(&recs);
    assert_eq!(reqs.len(), 6);
    for r in &reqs {
        assert!(!r["verdicts"].as_array().unwrap().is_empty(), "{r}");
        assert!(r["prompt_tokens"].as_u64().unwrap() > 0);
        assert!(r["e2e_ms"].as_f64().unwrap() > 0.0);
        assert!(r["text"].is_string());
        assert_eq!(r["info"]["requantized"], true);
        assert!(
            r["info"].get("routing").is_none(),
            "a dense model has no routing block"
        );
        assert_eq!(r["template"], "model");
        assert!(["eos", "stop_string", "max_tokens"].contains(&r["stop_reason"].as_str().unwrap()));
        // Every request that decoded carries its memory traffic, held against the bandwidth
        // the sweep measured on this machine before its first cell.
        if let Some(tps) = r["decode_tps"].as_f64() {
            let b = &r["bandwidth"];
            let total = b["bytes_per_token"].as_f64().unwrap();
            let weights = b["weight_bytes_per_token"].as_f64().unwrap();
            assert!(weights > 1e7 && total > weights, "{b}");
            let gbps = b["achieved_gbps"].as_f64().unwrap();
            assert!(
                (gbps - total * tps / 1e9).abs() < 1e-6 * gbps.max(1.0),
                "{b}"
            );
            let peak = b["measured_peak_gbps"].as_f64();
            assert_eq!(peak.is_none(), busy_probe, "{b}");
            assert!(peak.is_none_or(|p| p > 0.0), "{b}");
        }
    }
    // Saved for later runs unless the machine was busy while it was measured.
    assert_eq!(
        s.dir.path().join("cache/hw/bandwidth.json").is_file(),
        !busy_probe && !stderr(&o).contains("used for this run only"),
        "{}",
        stderr(&o)
    );
    let q8: Vec<_> = reqs
        .iter()
        .filter(|r| r["cell"]["quant"] == "q8_0")
        .collect();
    assert_eq!(q8[0]["info"]["model"]["file_type"], "Q8_0");
    assert_eq!(q8[0]["info"]["quantize_cached"], false);
    // a fresh run of the same sweep takes both quantizations from the cache
    let o = s.run(&format!(
        "-m {} --quant q8_0,q4_0 --scenario short-response --limit 3 --fresh",
        m()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = s.records();
    let reqs = requests(&recs);
    assert_eq!(reqs.len(), 6);
    assert!(reqs.iter().all(|r| r["info"]["quantize_cached"] == true));
    assert!(stdout(&o).contains("cached"));
}

#[test]
fn a_second_sweep_on_the_same_file_is_refused_while_the_first_runs() {
    let s = Sweep::new();
    // Four long answers: seconds of work left after the first, for both checks.
    let sc = stories(s.dir.path());
    let extra = format!("-m {} --quant source --scenario {}", m(), sc.display());
    let _g = heavy();
    let first = runner()
        .args(s.args(&extra))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a request is recorded the first sweep is under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_dir(s.results())
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .is_none_or(|t| !t.contains("\"kind\":\"request\""))
    {
        assert!(std::time::Instant::now() < deadline, "no request recorded");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut first = first;
    for again in [extra.clone(), format!("{extra} --fresh")] {
        let running = first.try_wait().unwrap().is_none();
        assert!(running, "the first sweep ended before the check could run");
        let o = runner().args(s.args(&again)).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{again}: {err}");
        assert!(err.contains("another runner sweep is writing"), "{err}");
        assert_eq!(lines(&err).len(), 1, "{err}");
    }
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = s.records();
    let ids: Vec<_> = requests(&recs)
        .iter()
        .map(|r| r["prompt_id"].clone())
        .collect();
    assert_eq!(ids.len(), 4, "each prompt once: {ids:?}");
    let unique: std::collections::HashSet<String> = ids.iter().map(|v| v.to_string()).collect();
    assert_eq!(unique.len(), 4, "{ids:?}");
}

#[test]
fn a_killed_sweep_resumes_without_duplicates() {
    use std::os::unix::process::CommandExt;
    let s = Sweep::new();
    let extra = format!(
        "-m {} --quant q8_0 --scenario short-response --limit 4",
        m()
    );
    let _g = heavy();
    let mut child = runner()
        .args(s.args(&extra))
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait for the first recorded request, then kill the sweep and its cell process
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = std::fs::read_dir(s.results())
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .map_or(0, |t| t.matches("\"kind\":\"request\"").count());
        if n >= 1 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pgid = child.id() as i32;
    std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    let _ = child.wait();
    let before = requests(&s.records()).len();
    assert!((1..4).contains(&before), "killed after {before} requests");
    drop(_g);
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
    let recs = s.records();
    let ids: Vec<&str> = requests(&recs)
        .iter()
        .map(|r| r["prompt_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 4, "duplicates: {ids:?}");
}

#[test]
fn a_corrupt_model_fails_its_cell_and_the_others_complete() {
    let s = Sweep::new();
    let bad = s.dir.path().join("corrupt.gguf");
    let bytes = std::fs::read(model()).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let o = s.run(&format!(
        "-m {},{} --quant q8_0 --scenario short-response --limit 2",
        bad.display(),
        m()
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 cell(s) failed"), "{}", stderr(&o));
    // The cell's reason is told once, not also as its process's own last line.
    assert_eq!(stderr(&o).matches("truncated").count(), 1, "{}", stderr(&o));
    let recs = s.records();
    let failed: Vec<&Value> = recs.iter().filter(|r| r["kind"] == "cell_failed").collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("truncated"),
        "{}",
        failed[0]
    );
    assert_eq!(requests(&recs).len(), 2);
    assert!(stdout(&o).contains("cell failed"), "{}", stdout(&o));
}

#[test]
fn a_cell_too_big_for_memory_is_refused_up_front() {
    let s = Sweep::new();
    let o = s.run(&format!(
        "-m {} --quant source --scenario short-response --limit 1 --max-memory 0.05",
        m()
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = s.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["kind"], "cell_failed");
    assert!(
        recs[0]["reason"].as_str().unwrap().contains("needs about"),
        "{}",
        recs[0]
    );
}

/// A prompt whose output limit takes it past the model's context (SmolLM2's 8,192 tokens) or
/// past `--ctx` fails its cell before any request runs, naming the prompt; before, each run
/// of it failed and counted against the model's pass rate, and the sweep ended well.
#[test]
fn a_prompt_past_the_context_fails_its_cell_up_front() {
    for (max_tokens, ctx, words) in [
        (
            9000,
            "",
            "more than the cell's 8192 (the model's training context)",
        ),
        (100, "--ctx 64", "more than the cell's 64 (--ctx)"),
    ] {
        let s = Sweep::new();
        let text = format!(
            "name = \"long\"\ndescription = \"d\"\nkind = \"long-form\"\n\
             [[prompts]]\nid = \"fits\"\nuser = \"Hi.\"\nmax_tokens = 4\n\
             [[prompts]]\nid = \"long\"\nuser = \"Tell a story.\"\nmax_tokens = {max_tokens}\n"
        );
        let sc = write(s.dir.path(), "long.toml", &text);
        let o = s.run(&format!(
            "-m {} --quant source --scenario {} {ctx}",
            m(),
            sc.display()
        ));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let recs = s.records();
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!(recs[0]["kind"], "cell_failed");
        let reason = recs[0]["reason"].as_str().unwrap();
        assert!(reason.starts_with("prompt long: "), "{reason}");
        assert!(
            reason.contains(&format!("+ {max_tokens} max tokens")),
            "{reason}"
        );
        assert!(reason.contains(words), "{reason}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The sweep's results files, by name.
fn results_files(s: &Sweep) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(s.results())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    names.sort();
    names
}

/// `--limit` is part of the configuration: a capped sweep after a full one writes its own
/// results file and its table counts only its prompts; a limit that leaves no prompt out is
/// the full sweep, and resumes its file.
#[test]
fn a_limited_sweep_has_its_own_results_file_and_counts_only_its_prompts() {
    let s = Sweep::new();
    let sc = write(
        s.dir.path(),
        "two.toml",
        r#"name = "two"
description = "two short prompts"
kind = "short-response"
[[prompts]]
id = "first"
user = "Say hello."
max_tokens = 4
[[prompts.graders]]
type = "word_count"
min = 1
[[prompts]]
id = "second"
user = "Say goodbye."
max_tokens = 4
[[prompts.graders]]
type = "word_count"
min = 1
"#,
    );
    let base = format!("-m {} --quant source -t 1 --scenario {}", m(), sc.display());
    let o = s.run(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    let full = results_files(&s);
    assert_eq!(full.len(), 1, "{full:?}");
    let o = s.run(&format!("{base} --limit 1"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("resuming"), "{}", stderr(&o));
    let files = results_files(&s);
    assert_eq!(files.len(), 2, "{files:?}");
    let limited = files.iter().find(|f| !full.contains(f)).unwrap();
    let text = std::fs::read_to_string(s.results().join(limited)).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "request")
        .map(|r| r["prompt_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["first"]);
    let table = stdout(&o);
    // The pass column names the scenario and counts its prompts: "two N/1", not "two N/2".
    let pass = |cell: &str| cell.starts_with("two ") && cell.ends_with("/1");
    assert!(
        table
            .lines()
            .any(|l| l.split("  ").map(str::trim).any(pass)),
        "{table}"
    );
    // A limit above every scenario's prompt count leaves nothing out.
    let o = s.run(&format!("{base} --limit 5"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resuming: 2 request(s)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(results_files(&s), files);
}

#[test]
fn a_time_limit_marks_the_request_failed_and_the_sweep_goes_on() {
    let s = Sweep::new();
    let sc = write(
        s.dir.path(),
        "slow.toml",
        r#"name = "slow"
description = "one request with an impossible time limit, one without"
kind = "short-response"
[[prompts]]
id = "too-slow"
user = "Write a long story about a lighthouse."
max_tokens = 200
time_limit_s = 0.001
[[prompts.graders]]
type = "word_count"
min = 1
[[prompts]]
id = "fine"
user = "Say hello."
max_tokens = 8
[[prompts.graders]]
type = "word_count"
min = 1
"#,
    );
    let o = s.run(&format!(
        "-m {} --quant source --scenario {}",
        m(),
        sc.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = s.records();
    let reqs = requests(&recs);
    assert_eq!(reqs.len(), 2);
    let slow = reqs.iter().find(|r| r["prompt_id"] == "too-slow").unwrap();
    assert_eq!(slow["stop_reason"], "time_limit");
    assert_eq!(slow["failed"], true);
    assert_eq!(slow["pass"], false);
    let fine = reqs.iter().find(|r| r["prompt_id"] == "fine").unwrap();
    assert_eq!(fine["failed"], false);
}

#[test]
fn malformed_scenarios_and_unknown_quants_are_clear_errors() {
    let s = Sweep::new();
    let cases = [
        ("bad.toml", "name = \"x\"\ndescription = \n", "line 2"),
        (
            "grader.toml",
            "name = \"x\"\ndescription = \"d\"\nkind = \"short-response\"\n[[prompts]]\nid = \"a\"\nuser = \"hi\"\n[[prompts.graders]]\ntype = \"jsonn\"\n",
            "unknown grader type",
        ),
        (
            "noprompt.toml",
            "name = \"x\"\ndescription = \"d\"\nkind = \"short-response\"\n[[prompts]]\nid = \"a\"\n",
            "prompt 'a'",
        ),
        (
            "sql.toml",
            "name = \"x\"\ndescription = \"d\"\nkind = \"short-response\"\n[[prompts]]\nid = \"q\"\nuser = \"hi\"\n[[prompts.graders]]\ntype = \"tests\"\nlanguage = \"sql\"\nsetup = \"create tabel t(a);\"\nexpect = [[1]]\n",
            "prompt 'q': tests: setup fails in SQLite: OperationalError: near \"tabel\": syntax error",
        ),
    ];
    for (name, text, needle) in cases {
        let p = write(s.dir.path(), name, text);
        let o = s.run(&format!(
            "-m {} --quant source --scenario {}",
            m(),
            p.display()
        ));
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(lines(&err).len(), 1, "{name}: {err}");
        assert!(err.contains(needle) && err.contains(name), "{name}: {err}");
    }
    let o = s.run(&format!("-m {} --quant q7_k", m()));
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("unknown quantization 'q7_k'") && err.contains("q4_k_m"),
        "{err}"
    );
    let o = s.run(&format!("-m {} --scenario no-such-scenario", m()));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no-such-scenario"), "{}", stderr(&o));
}

/// How many request lines the one results file holds now (0 before it exists).
fn recorded(s: &Sweep) -> usize {
    std::fs::read_dir(s.results())
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .map_or(0, |t| t.matches("\"kind\":\"request\"").count())
}

#[test]
fn progress_without_a_terminal_is_one_line_per_cell() {
    let s = Sweep::new();
    let _g = heavy();
    let args: Vec<String> = s
        .args(&format!(
            "-m {} --quant q8_0,q4_0 --scenario short-response --limit 2",
            m()
        ))
        .into_iter()
        .filter(|a| a != "--no-progress")
        .collect();
    let o = runner().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let cells: Vec<&str> = err.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(cells.len(), 2, "{err}");
    // The model is named by its file's stem, never by its path.
    let name = model().file_stem().unwrap().to_string_lossy().to_string();
    assert!(
        cells[0].starts_with(&format!("[1/2] {name}/q8_0: 2 requests in ")),
        "{err}"
    );
    assert!(cells[0].contains("2/4 requests done, about "), "{err}");
    assert!(
        cells[1].starts_with(&format!("[2/2] {name}/q4_0: 2 requests in ")),
        "{err}"
    );
    assert!(cells[1].ends_with("4/4 requests done"), "{err}");
    assert!(stdout(&o).contains(&format!("\n{name} ")), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains(&model().display().to_string()),
        "no paths in the table"
    );
    assert!(
        !err.contains('\r') && !err.contains("\x1b["),
        "no bar drawing in a log: {err:?}"
    );
}

#[test]
fn an_interrupted_sweep_says_how_to_resume_and_resumes() {
    let s = Sweep::new();
    let extra = format!(
        "-m {} --quant q8_0 --scenario short-response --limit 8",
        m()
    );
    let g = heavy();
    let child = runner()
        .args(s.args(&extra))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while recorded(&s) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SIGINT to the sweep alone, as `kill -INT` would send it; its cell process is its to stop.
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-s", "INT", &pid])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    drop(g);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("interrupted: "))
        .unwrap_or_else(|| panic!("no interruption line: {err}"));
    let kept = requests(&s.records()).len();
    assert!(
        (1..8).contains(&kept),
        "interrupted after {kept} of 8: {line}"
    );
    assert!(
        line.starts_with(&format!("interrupted: {kept} request(s) recorded in ")),
        "{line}"
    );
    assert!(line.contains(&s.results().display().to_string()), "{line}");
    let resume = line
        .split("; resume with: ")
        .nth(1)
        .expect("a resume command");
    assert!(!resume.contains("--fresh"));
    let _g = heavy();
    let o = std::process::Command::new("sh")
        .args(["-c", resume])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("resuming: {kept} request(s)")),
        "{}",
        stderr(&o)
    );
    let recs = s.records();
    let ids: Vec<&str> = requests(&recs)
        .iter()
        .map(|r| r["prompt_id"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (8, 8), "{ids:?}");
}

#[test]
fn executed_graders_are_recorded_case_by_case_and_reported_by_category() {
    let s = Sweep::new();
    let sc = write(
        s.dir.path(),
        "code.toml",
        r#"name = "code"
description = "one coding prompt graded by running the answer"
kind = "long-form"
[[prompts]]
id = "add"
category = "generation"
user = "Write a Python function add(a, b) that returns the sum. Put it in a python code block."
max_tokens = 48
[[prompts.graders]]
type = "code_block"
[[prompts.graders]]
type = "tests"
language = "python"
tests = """
from solution import add
def test_add():
    assert add(2, 3) == 5
"""
"#,
    );
    let o = s.run(&format!(
        "-m {} --quant source --scenario {}",
        m(),
        sc.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("executed pass@1 by category"), "{out}");
    assert!(
        out.contains("generation 0/1") || out.contains("generation 1/1"),
        "{out}"
    );
    let recs = s.records();
    let req = requests(&recs)[0];
    let verdicts = req["verdicts"].as_array().unwrap();
    let executed = verdicts
        .iter()
        .find(|v| v["grader"] == "tests python")
        .expect("the executed verdict");
    let exec = &executed["execution"];
    for k in ["wall_s", "cpu_s", "memory_bytes", "file_bytes", "processes"] {
        assert!(exec[k].as_f64().unwrap() > 0.0, "{k}: {executed}");
    }
    assert!(exec["isolation"]["user"].is_string(), "{executed}");
    // Either cases ran, or a reason says why none did (no code block in a 135M model's answer).
    assert!(
        executed["cases"].as_array().is_some_and(|c| !c.is_empty())
            || executed["detail"].is_string(),
        "{executed}"
    );
    assert!(verdicts
        .iter()
        .any(|v| v["grader"] == "code_block" && v["execution"].is_null()));
}

/// A base model (gemma-3-270m has no chat template) is warned about under the name its
/// progress line uses, not the path its cell's child process was given.
#[test]
fn a_base_model_is_warned_about_by_its_name() {
    let gemma = std::env::var_os("RUNNER_TEST_MODEL_GEMMA")
        .map(PathBuf::from)
        .expect("RUNNER_TEST_MODEL_GEMMA names gemma-3-270m (scripts/test.sh sets it)");
    let s = Sweep::new();
    let o = s.run(&format!(
        "-m {} --quant source --scenario short-response --limit 1 --max-tokens 4 --no-text",
        gemma.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let name = gemma.file_stem().unwrap().to_string_lossy().to_string();
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "warning: {name}/source has no chat template (a base model)"
        )),
        "{err}"
    );
    assert!(!err.contains(&gemma.display().to_string()), "{err}");
}

/// The processes `runner sweep-cell` whose parent is `pid`.
fn cell_processes(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": the fields after the command's closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        if ppid == Some(pid) && String::from_utf8_lossy(&cmd).contains("sweep-cell") {
            out.push(p);
        }
    }
    out
}

/// Whether process `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(!s.rsplit_once(')')?.1.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// A scenario of four prompts with long answers.
fn stories(dir: &Path) -> PathBuf {
    let mut text = String::from(
        "name = \"stories\"\ndescription = \"long answers\"\nkind = \"short-response\"\n\
         [defaults]\nmax_tokens = 96\n",
    );
    for n in 0..4 {
        text.push_str(&format!(
            "[[prompts]]\nid = \"p{n}\"\nuser = \"Write a long story about the number {n}.\"\n"
        ));
    }
    write(dir, "stories.toml", &text)
}

/// Each request record's (cell, scenario, prompt, level, place in the level), as text.
fn request_keys(recs: &[Value]) -> Vec<String> {
    requests(recs)
        .iter()
        .map(|r| {
            let t = &r["traffic"];
            format!(
                "{} {} {} {} {} {}",
                r["cell"], r["scenario"], r["prompt_id"], t["shape"], t["concurrency"], t["seq"]
            )
        })
        .collect()
}

#[test]
fn a_sweep_killed_outright_takes_its_cell_process_with_it() {
    let s = Sweep::new();
    let sc = stories(s.dir.path());
    let extra = format!(
        "-m {} --quant source --scenario {} -t 1 --concurrency 2 --requests 24",
        m(),
        sc.display()
    );
    let g = heavy();
    let mut sweep = runner()
        .args(s.args(&extra))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let cell = loop {
        if let Some(&c) = cell_processes(sweep.id()).first() {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "no cell process");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The level under way, then the sweep killed, as by `kill -9` (its cell process not).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(alive(cell), "the level ended before the sweep was killed");
    sweep.kill().unwrap();
    let _ = sweep.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(cell) {
        assert!(
            std::time::Instant::now() < deadline,
            "the cell process {cell} outlived its sweep"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(g);
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let keys = request_keys(&s.records());
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!((keys.len(), unique.len()), (24, 24), "{keys:#?}");
}

#[test]
fn records_of_other_sweeps_and_lines_recorded_twice_are_left_out_of_resume_and_table() {
    let s = Sweep::new();
    let extra = format!(
        "-m {} --quant source --scenario short-response --limit 2 --max-tokens 8",
        m()
    );
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("short-response "), "{table}");
    let file = std::fs::read_dir(s.results())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    // A line twice, a request of another scenario, of another cell and of a prompt the
    // scenario does not have.
    let mut other_scenario = first.clone();
    other_scenario["scenario"] = "coding".into();
    let mut other_cell = first.clone();
    other_cell["cell"]["quant"] = "q2_k".into();
    let mut other_prompt = first.clone();
    other_prompt["prompt_id"] = "no-such-prompt".into();
    let mut added = text.clone();
    for v in [&first, &other_scenario, &other_cell, &other_prompt] {
        added.push_str(&format!("{v}\n"));
    }
    std::fs::write(&file, added).unwrap();
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("resuming: 2 request(s)"), "{err}");
    let warning: Vec<&str> = err.lines().filter(|l| l.contains("left out")).collect();
    assert_eq!(warning.len(), 1, "{err}");
    assert!(
        warning[0].starts_with("warning: ") && warning[0].contains(": 4 record(s) left out"),
        "{err}"
    );
    // The table is the one the sweep showed before.
    assert_eq!(stdout(&o), table);
    // A hand-edited record with a TTFT that cannot be true is left out of the table, as
    // `report` and `check` leave it out.
    let mut odd = first.clone();
    odd["ttft_ms"] = (-5.0).into();
    let lines: Vec<String> = text.lines().skip(1).map(String::from).collect();
    std::fs::write(&file, format!("{odd}\n{}\n", lines.join("\n"))).unwrap();
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("1 record(s) hold figures that cannot be true"),
        "{err}"
    );
    assert!(!stdout(&o).contains("-5"), "{}", stdout(&o));
}

/// A model file replaced under the same path is another model: its sweep measures it into a
/// results file of its own instead of taking the old file's requests as done. A results file
/// whose requests ran on another machine is not resumed.
#[test]
fn a_replaced_model_or_another_machines_records_are_not_resumed() {
    let gemma = std::env::var_os("RUNNER_TEST_MODEL_GEMMA")
        .map(PathBuf::from)
        .expect("RUNNER_TEST_MODEL_GEMMA names gemma-3-270m (scripts/test.sh sets it)");
    let s = Sweep::new();
    let m2 = s.dir.path().join("m2.gguf");
    std::fs::copy(model(), &m2).unwrap();
    let extra = format!(
        "-m {} --quant source --scenario short-response --limit 1 --max-tokens 4 --no-text -t 1",
        m2.display()
    );
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::copy(&gemma, &m2).unwrap();
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("resuming"), "{}", stderr(&o));
    let files: Vec<PathBuf> = std::fs::read_dir(s.results())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let size = std::fs::metadata(&gemma).unwrap().len();
    let measured: Vec<u64> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let sizes: Vec<u64> = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .map(|r| r["info"]["model"]["size_bytes"].as_u64().unwrap())
                .collect();
            sizes
        })
        .collect();
    assert!(measured.contains(&size), "{measured:?}");

    // The records say they ran on another machine: the sweep stops, the file as it was.
    let file = files
        .iter()
        .find(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains(&size.to_string())
        })
        .unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let moved: String = text
        .lines()
        .map(|l| {
            let mut r: Value = serde_json::from_str(l).unwrap();
            r["info"]["machine"]["cpu"] = "Apple M4 Pro".into();
            r["info"]["machine"]["logical_cores"] = 14.into();
            format!("{r}\n")
        })
        .collect();
    std::fs::write(file, &moved).unwrap();
    let o = s.run(&extra);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(
        err.contains("another machine (Apple M4 Pro, 14 cores") && err.contains("--fresh"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(file).unwrap(), moved);
    let o = s.run(&format!("{extra} --fresh"));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The partial files in a quantize cache, by name.
fn partials(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache.join("quant"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.contains(".partial-"))
                .collect()
        })
        .unwrap_or_default()
}

/// A sweep interrupted while its cell quantizes leaves no partial file in the cache; a
/// partial left by a process that has ended is removed when the cache is next used, and one of
/// a process still running (another sweep quantizing into the same cache) is left alone.
#[test]
fn an_interrupted_quantize_leaves_no_partial_file_and_stale_ones_are_removed() {
    let s = Sweep::new();
    let cache = s.dir.path().join("cache");
    let quant = cache.join("quant");
    std::fs::create_dir_all(&quant).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = format!("x-q8_0.gguf.partial-{}", gone.id());
    let live = format!("x-q8_0.gguf.partial-{}", std::process::id());
    std::fs::write(quant.join(&stale), "half").unwrap();
    std::fs::write(quant.join(&live), "half").unwrap();
    let extra = format!(
        "-m {} --quant q8_0 --scenario short-response --limit 1 -t 1",
        m()
    );
    let g = heavy();
    let child = runner()
        .args(s.args(&extra))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mine = |n: &String| n != &stale && n != &live;
    while !partials(&cache).iter().any(mine) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(partials(&cache).iter().any(mine), "{:?}", partials(&cache));
    std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    drop(g);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(
        partials(&cache),
        vec![live],
        "only the live process's partial stays"
    );
}

/// Records that cannot be written (here a file size limit, as a full disk would) stop the sweep
/// with one error line and exit 1, not a failed cell too; the same command then resumes.
#[test]
fn a_results_file_that_cannot_grow_stops_the_sweep_with_one_line_and_resumes() {
    let s = Sweep::new();
    let sc = write(
        s.dir.path(),
        "four.toml",
        "name = \"four\"\ndescription = \"d\"\nkind = \"short-response\"\n\
         [defaults]\nmax_tokens = 4\n\
         [[prompts]]\nid = \"a\"\nuser = \"Say hi\"\n\
         [[prompts]]\nid = \"b\"\nuser = \"Say yes\"\n\
         [[prompts]]\nid = \"c\"\nuser = \"Say no\"\n\
         [[prompts]]\nid = \"d\"\nuser = \"Count to three\"\n",
    );
    let extra = format!("-m {} --quant source -s {} -t 1", m(), sc.display());
    let words: Vec<String> = s.args(&extra).iter().map(|a| format!("'{a}'")).collect();
    // Writes past 8 blocks fail (EFBIG) instead of ending the process (SIGXFSZ ignored).
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec '{}' {}",
        env!("CARGO_BIN_EXE_runner"),
        words.join(" ")
    );
    let g = heavy();
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    drop(g);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with("error: ") && errors[0].contains("File too large"),
        "{err}"
    );
    let o = s.run(&extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = s.records();
    let ids: std::collections::HashSet<&str> = requests(&recs)
        .iter()
        .map(|r| r["prompt_id"].as_str().unwrap())
        .collect();
    assert_eq!((requests(&recs).len(), ids.len()), (4, 4), "{ids:?}");
}

#[test]
fn the_shipped_scenarios_are_written_into_the_cache_the_command_names() {
    let dir = tempfile::tempdir().unwrap();
    let (flag, env) = (dir.path().join("cX"), dir.path().join("cY"));
    std::fs::create_dir(&flag).unwrap();
    let o = runner()
        .env("RUNNER_CACHE_DIR", &env)
        .arg("--cache-dir")
        .arg(&flag)
        .args(["sweep", "-m", "/nonexistent/m.gguf", "-q", "source"])
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    // Refused for its model, after reading its scenarios and prices.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let shipped: Vec<String> = std::fs::read_dir(flag.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        shipped.len() == 1 && shipped[0].starts_with("shipped-"),
        "{shipped:?}"
    );
    assert!(flag
        .join("scenarios")
        .join(&shipped[0])
        .join("prices.toml")
        .is_file());
    assert!(!env.exists(), "$RUNNER_CACHE_DIR was written");
}
