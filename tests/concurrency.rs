//! Load levels through the built binary: continuous batching in-process on the real model
//! (overlapping requests, answers equal to those run alone, a request stopped by its time
//! limit while the others go on), seeded open-loop schedules, a level refused for memory, an
//! HTTP server that rate-limits the third concurrent request, a 429 retry wait counted from
//! arrival, and bad load flags.

mod common;
use common::fixture::{data, serve_concurrent, Reply, Step};
use common::*;
use serde_json::Value;
use std::path::Path;

fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("results dir") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("results file");
        out.extend(
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a record")),
        );
    }
    out
}

/// The requests of one load level (`c=N` closed loops, by concurrency).
fn level(recs: &[Value], concurrency: u64) -> Vec<&Value> {
    recs.iter()
        .filter(|r| r["traffic"]["shape"] == "closed" && r["traffic"]["concurrency"] == concurrency)
        .collect()
}

/// Start and end of a request from its level's start, in ms.
fn lifetime(r: &Value) -> (f64, f64) {
    let t = &r["traffic"];
    let start = t["arrival_ms"].as_f64().unwrap() + t["queue_ms"].as_f64().unwrap();
    (start, start + r["e2e_ms"].as_f64().unwrap())
}

/// `runner sweep` of the real model as given, results in `dir`, with `extra` arguments
/// (separated by spaces).
fn sweep(dir: &Path, model: &Path, extra: &str) -> std::process::Output {
    let m = model.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "sweep",
        "-m",
        m,
        "-q",
        "source",
        "--results",
        d,
        "--no-progress",
    ];
    args.extend(extra.split_whitespace());
    run(&args)
}

/// A level that the duration alone bounds records the requests it sent as its size, not the
/// cap on how many it could have sent.
#[test]
fn a_level_bounded_by_its_duration_records_what_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let _g = heavy();
    let o = sweep(
        dir.path(),
        model(),
        "-s short-response --limit 1 --max-tokens 4 --concurrency 1 --duration 1",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = records(dir.path());
    let one = level(&recs, 1);
    assert!(!one.is_empty());
    for r in &one {
        assert_eq!(r["traffic"]["level_requests"], one.len(), "{r}");
    }
}

#[test]
fn three_at_once_overlap_complete_and_answer_as_alone() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let o = sweep(
        dir.path(),
        model(),
        "-s short-response --limit 3 --concurrency 1,3 --requests 6 --slo ttft=60s,e2e=120s",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("c=3") && out.contains("out tok/s"), "{out}");
    // Objectives every request meets: both levels meet them, the knee is the highest.
    assert!(out.contains("100% "), "{out}");
    assert!(
        out.contains("knee (highest load whose requests meet ttft=60s,e2e=120s)"),
        "{out}"
    );
    assert!(out.contains("/source: concurrency 3"), "{out}");
    // Run again with other objectives: nothing is left to run, and the levels recorded are
    // judged by the objectives given now.
    let again = sweep(
        dir.path(),
        model(),
        "-s short-response --limit 3 --concurrency 1,3 --requests 6 --slo ttft=1ms",
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let out = stdout(&again);
    assert!(out.contains("meet ttft=1ms)"), "{out}");
    assert!(!out.contains("100% ") && out.contains("0% "), "{out}");
    let recs = records(dir.path());
    let alone = level(&recs, 1);
    let three = level(&recs, 3);
    assert_eq!(
        (alone.len(), three.len()),
        (6, 6),
        "every request is recorded"
    );
    for r in &three {
        assert_eq!(r["failed"], false, "{r}");
        assert!(r["output_tokens"].as_u64().unwrap() > 0);
        assert_eq!(r["traffic"]["level_requests"], 6);
        assert_eq!(r["traffic"]["slo"], "ttft=60s,e2e=120s", "{}", r["traffic"]);
    }
    // Lifetimes overlap: some request starts before another has ended.
    let spans: Vec<(f64, f64)> = three.iter().map(|r| lifetime(r)).collect();
    let overlapping = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans.iter().skip(i + 1).any(|b| a.0 < b.1 && b.0 < a.1));
    assert!(overlapping, "{spans:?}");
    assert!(three
        .iter()
        .any(|r| r["traffic"]["concurrent"].as_u64().unwrap() >= 2));
    // Alone, nothing overlaps.
    assert!(alone.iter().all(|r| r["traffic"]["concurrent"] == 0));
    // Batching must not change greedy answers; where kernels round differently the record
    // says at which token, and that stays rare.
    let same = three
        .iter()
        .filter(|r| r["traffic"]["same_as_alone"] == true)
        .count();
    for r in &three {
        match r["traffic"]["same_as_alone"].as_bool() {
            Some(true) => assert!(r["traffic"].get("diverged_at").is_none()),
            Some(false) => assert!(r["traffic"]["diverged_at"].is_u64(), "{r}"),
            None => panic!("no comparison with the answer alone: {r}"),
        }
    }
    assert!(same >= 5, "{same} of 6 answers equal to the answer alone");
}

#[test]
fn a_request_past_its_time_limit_fails_while_the_others_finish() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("mixed.toml");
    std::fs::write(
        &scen,
        r#"name = "mixed"
description = "one slow request among quick ones"
kind = "short-response"
[defaults]
temperature = 0.0
max_tokens = 12
time_limit_s = 60.0
[[prompts]]
id = "slow"
max_tokens = 4000
time_limit_s = 0.3
user = "Write a very long story about the sea."
[[prompts]]
id = "a"
user = "Say hello."
[[prompts]]
id = "b"
user = "Name a colour."
"#,
    )
    .unwrap();
    let results = dir.path().join("runs");
    let o = sweep(
        &results,
        model(),
        &format!(
            "-s {} --concurrency 3 --requests 3 --ctx 4096",
            scen.display()
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = records(&results);
    let three = level(&recs, 3);
    assert_eq!(three.len(), 3);
    for r in &three {
        let slow = r["prompt_id"] == "slow";
        assert_eq!(r["failed"], slow, "{r}");
        if slow {
            assert_eq!(r["stop_reason"], "time_limit");
            assert!(r["output_tokens"].as_u64().unwrap() < 4000);
        } else {
            assert_ne!(r["stop_reason"], "time_limit");
        }
    }
}

#[test]
fn an_open_loop_seed_reproduces_its_schedule() {
    let _g = heavy();
    let arrivals = |seed: &str| -> Vec<f64> {
        let dir = tempfile::tempdir().unwrap();
        let o = sweep(
            dir.path(),
            model(),
            &format!("-s short-response --limit 2 --max-tokens 4 --rate 20 --slots 1 --requests 5 --seed {seed}"),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let recs = records(dir.path());
        assert!(stdout(&o).contains("20 req/s"), "{}", stdout(&o));
        let mut v: Vec<(u64, f64)> = recs
            .iter()
            .filter(|r| r["traffic"]["shape"] == "open")
            .map(|r| {
                let t = &r["traffic"];
                assert_eq!(t["seed"].as_u64(), seed.parse().ok());
                (
                    t["seq"].as_u64().unwrap(),
                    t["arrival_ms"].as_f64().unwrap(),
                )
            })
            .collect();
        v.sort_by_key(|x| x.0);
        assert_eq!(v.len(), 5);
        v.into_iter().map(|x| x.1).collect()
    };
    let a = arrivals("7");
    assert_eq!(a, arrivals("7"), "same seed, same arrivals");
    assert_ne!(a, arrivals("8"), "another seed, other arrivals");
    assert!(a.windows(2).all(|w| w[0] <= w[1]), "{a:?}");
}

#[test]
fn a_level_that_does_not_fit_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let o = sweep(
        dir.path(),
        model(),
        "-s short-response --limit 1 --concurrency 1,256 --requests 1 --max-memory 0.6 --ctx 2048",
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("c=256") && err.contains("KV cache"), "{err}");
    let recs = records(dir.path());
    assert_eq!(level(&recs, 1).len(), 1, "the level that fits ran");
    assert!(level(&recs, 256).is_empty());
    // Its record names the level, which the cell key does not.
    let failed: Vec<_> = recs.iter().filter(|r| r["kind"] == "cell_failed").collect();
    assert_eq!(failed.len(), 1);
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("c=256: needs about"), "{reason}");
}

fn openai_chunk(content: &str, finish: Option<&str>) -> String {
    serde_json::json!({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{ "index": 0, "delta": { "content": content }, "finish_reason": finish }]
    })
    .to_string()
}

#[test]
fn a_server_that_rate_limits_the_third_concurrent_request() {
    let usage = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#;
    let server = serve_concurrent(move |_, _, in_flight| match in_flight {
        // Long enough that the third request arrives while both are in flight.
        1 | 2 => Reply::ok(vec![
            Step::Sleep(1500),
            data(&openai_chunk("a", None)),
            Step::Sleep(300),
            data(&openai_chunk("b", None)),
            Step::Sleep(300),
            data(&openai_chunk("c", Some("stop"))),
            data(usage),
            data("[DONE]"),
        ]),
        _ => Reply::status(429, r#"{"error":{"message":"too many requests"}}"#),
    });
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.base());
    let o = run(&[
        "sweep",
        "-m",
        model().to_str().unwrap(),
        "-s",
        "short-response",
        "--limit",
        "3",
        "--backend",
        "openai:fixture",
        "--openai-base-url",
        &base,
        "--max-retry-wait",
        "0",
        "--concurrency",
        "3",
        "--requests",
        "3",
        "--results",
        dir.path().to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = records(dir.path());
    let three = level(&recs, 3);
    assert_eq!(three.len(), 3);
    let limited: Vec<_> = three
        .iter()
        .filter(|r| r["error_kind"] == "rate_limited")
        .collect();
    assert_eq!(limited.len(), 1, "{three:?}");
    assert_eq!(limited[0]["failed"], true);
    let served = three.iter().filter(|r| r["failed"] == false).count();
    assert_eq!(served, 2);
    assert!(stdout(&o).contains("openai:fixture"));
}

/// A request of a load level that the server answers with HTTP 429 first waits for its
/// retry: that wait is the request's queueing, so its TTFT and e2e from arrival, and the
/// level's wall time, hold it.
#[test]
fn a_429_retry_wait_counts_in_a_levels_queue_ttft_and_wall_time() {
    let usage = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
    // Every first attempt is turned away for a second; its retry is answered.
    let server = serve_concurrent(move |_, i, _| {
        if i % 2 == 0 {
            let mut r = Reply::status(429, r#"{"error":{"message":"slow down"}}"#);
            r.headers.push(("retry-after".into(), "1".into()));
            r
        } else {
            Reply::ok(vec![
                data(&openai_chunk("a", None)),
                data(&openai_chunk("b", Some("stop"))),
                data(usage),
                data("[DONE]"),
            ])
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.base());
    let o = run(&[
        "sweep",
        "-m",
        model().to_str().unwrap(),
        "-s",
        "short-response",
        "--limit",
        "1",
        "--backend",
        "openai:fixture",
        "--openai-base-url",
        &base,
        "--max-retry-wait",
        "5",
        "--concurrency",
        "1",
        "--requests",
        "1",
        "--results",
        dir.path().to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = records(dir.path());
    let one = level(&recs, 1);
    assert_eq!(one.len(), 1, "{recs:?}");
    let r = one[0];
    assert_eq!(r["failed"], false, "{r}");
    assert_eq!(r["http"]["retries"], 1, "{r}");
    let t = &r["traffic"];
    let queue = t["queue_ms"].as_f64().unwrap();
    assert!(queue >= 1000.0, "the retry wait is queueing: {r}");
    let ttft = queue + r["ttft_ms"].as_f64().unwrap();
    let (_, end) = lifetime(r);
    assert!(ttft >= 1000.0 && end >= 1000.0, "{r}");
    assert!(t["level_wall_ms"].as_f64().unwrap() >= end - 1.0, "{r}");
}

#[test]
fn bad_load_flags_are_refused_with_one_line() {
    for (args, want) in [
        (vec!["--concurrency", "0"], "--concurrency 0"),
        (vec!["--concurrency", "1,x"], "--concurrency x"),
        (vec!["--rate", "0"], "--rate 0"),
        (vec!["--rate", "-1"], "--rate -1"),
        (
            vec!["--rate", "1e-300"],
            "--rate 1e-300: give requests per second from 0.0001",
        ),
        (vec!["--concurrency", "-2"], "--concurrency -2"),
        (
            vec!["--concurrency", "2", "--slo", "latency=2s"],
            "unknown key",
        ),
        (vec!["--concurrency", "2", "--slo", "ttft=2"], "give a unit"),
        (vec!["--slo", "ttft=2s"], "needs load levels"),
        (vec!["--slots", "3"], "--slots needs open-loop load levels"),
        // However far out of range, --slots says its range.
        (
            vec!["--rate", "1", "--slots", "0"],
            "must be 1 to 256, got 0",
        ),
        (
            vec!["--rate", "1", "--slots", "257"],
            "must be 1 to 256, got 257",
        ),
        (
            vec!["--rate", "1", "--slots", "99999999999"],
            "must be 1 to 256, got 99999999999",
        ),
        (
            vec!["--rate", "1", "--seed", "-1"],
            "must be 0 to 18446744073709551615, got -1",
        ),
        (vec!["--seed", "3"], "--seed needs open-loop load levels"),
        (
            vec!["--concurrency", "2", "--seed", "3"],
            "--seed needs open-loop load levels: give --rate",
        ),
        (vec!["--concurrency", "2", "--duration", "-3"], "duration"),
        (
            vec!["--concurrency", "1", "--duration", "1e-12"],
            "--duration: give seconds from 1 to a day",
        ),
        (
            vec!["--concurrency", "1", "--duration", "1e300"],
            "--duration: give seconds from 1 to a day",
        ),
        (
            vec!["--rate", "2,0.001", "--duration", "1"],
            "--rate 0.001: the first request of its schedule arrives at 836.",
        ),
        (vec!["--judge-time-limit", "nan"], "a number of seconds"),
        (vec!["--judge-time-limit", "0"], "more than 0"),
    ] {
        let mut a = vec!["sweep", "-m", "smollm2-135m", "--no-progress"];
        a.extend(args.iter().copied());
        let o = run(&a);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn a_level_that_lost_records_runs_again_and_is_counted_once() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let extra = "-s short-response --limit 2 --max-tokens 8 --concurrency 2 --requests 6 \
                 --format json";
    let o = sweep(dir.path(), model(), extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Two of the level's six records lost, as a full disk loses them.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    std::fs::write(&file, format!("{}\n", lines[..4].join("\n"))).unwrap();
    let o = sweep(dir.path(), model(), extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("1 load level(s) lost records and run again"),
        "{err}"
    );
    let recs = records(dir.path());
    assert_eq!(level(&recs, 2).len(), 10, "the level ran again");
    // The table is the new run's six requests, not those of both runs.
    let rows: Value = serde_json::from_str(&stdout(&o)).expect("JSON rows");
    let rows = rows.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["level"]["requests"], 6, "{}", rows[0]);
    // A third run finds the level complete.
    let o = sweep(dir.path(), model(), extra);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("lost records"), "{}", stderr(&o));
    assert_eq!(level(&records(dir.path()), 2).len(), 10);
}
