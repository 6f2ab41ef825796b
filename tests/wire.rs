//! The HTTP backends against a fixture server replaying the documented wire formats (OpenAI
//! chat.completion.chunk SSE with include_usage, Anthropic Messages streaming events, Ollama
//! /api/generate NDJSON) with controlled gaps, and every failure a server can hand us.

mod common;
use common::fixture::{data, event, serve, Received, Reply, Step};
use runner::backend::exchange::{text_allowance, Exchange};
use runner::backend::http::Client;
use runner::backend::remote::exchange;
use runner::backend::spec::{endpoint, Endpoint, Secret, UrlFlags};
use runner::backend::ChatRequest;
use runner::measure::FailureKind;
use runner::record::BackendId;
use runner::scenario::{Message, Prompt, Role, Sampling};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const KEY: &str = "sk-fixture-0123456789abcdef";

fn endpoint_for(kind: &str, base: &str) -> Endpoint {
    let spec: BackendId = format!("{kind}:fixture-model").parse().unwrap();
    let flags = UrlFlags {
        ollama_host: Some(base.into()),
        openai_base_url: Some(format!("{base}/v1")),
        anthropic_base_url: Some(base.into()),
        max_tokens_field: None,
        max_retry_wait: Duration::from_secs(3),
    };
    let mut ep = endpoint(&spec, &flags, &BTreeMap::new()).unwrap();
    ep.key = Some(Secret::new(KEY));
    ep
}

/// The prompt every exchange sends: a system message and a user message.
fn prompt(max_tokens: u32, time_limit: Duration) -> Prompt {
    Prompt {
        id: "p".into(),
        category: None,
        messages: messages(),
        raw_prompt: None,
        max_tokens,
        time_limit,
        sampling: Sampling::default(),
        stop: Vec::new(),
        pair: None,
        graders: Vec::new(),
    }
}

fn messages() -> Vec<Message> {
    vec![
        Message {
            role: Role::System,
            content: "Be brief.".into(),
        },
        Message {
            role: Role::User,
            content: "Say hello.".into(),
        },
    ]
}

fn ask(kind: &str, replies: Vec<Reply>, time_limit: Duration) -> (Exchange, Vec<Received>) {
    ask_keyed(kind, KEY, replies, time_limit)
}

/// [`ask`] with the API key `key`. Ollama streams JSON lines and says so: its answers carry
/// `application/x-ndjson` where the others' carry `text/event-stream`.
fn ask_keyed(
    kind: &str,
    key: &str,
    mut replies: Vec<Reply>,
    time_limit: Duration,
) -> (Exchange, Vec<Received>) {
    if kind == "ollama" {
        let headers = replies.iter_mut().flat_map(|r| r.headers.iter_mut());
        for (_, value) in headers.filter(|(_, v)| v == "text/event-stream") {
            *value = "application/x-ndjson".into();
        }
    }
    let f = serve(replies);
    let mut ep = endpoint_for(kind, &f.base());
    ep.key = Some(Secret::new(key));
    let p = prompt(16, time_limit);
    let req = ChatRequest::new(&p);
    let x = exchange(
        &Client::new(),
        &ep,
        &req,
        Some("<|user|>Say hello.<|assistant|>"),
    );
    let got = f.requests.try_iter().collect();
    (x, got)
}

const LIMIT: Duration = Duration::from_secs(20);

/// A chunk can only arrive after the server slept the gaps before it: each chunk's time is at
/// least the sum of the delays injected before it, and chunks are in order.
fn assert_after_delays(x: &Exchange, delays_ms: &[u64]) {
    assert_eq!(x.chunks.len(), delays_ms.len(), "{:?}", x.chunks);
    let mut sum = 0;
    for (c, d) in x.chunks.iter().zip(delays_ms) {
        sum += d;
        assert!(*c >= Duration::from_millis(sum), "{c:?} before {sum} ms");
    }
    assert!(x.chunks.windows(2).all(|w| w[0] <= w[1]));
    let t = x.trace(&[], 16, 100);
    let gaps: Duration = t.gaps().sum();
    assert_eq!(gaps, x.chunks[x.chunks.len() - 1] - x.chunks[0]);
}

fn openai_chunk(content: Option<&str>, finish: Option<&str>) -> String {
    let delta = match content {
        Some(c) => serde_json::json!({ "content": c }),
        None => serde_json::json!({ "role": "assistant", "content": "" }),
    };
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fixture-model",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }], "usage": null
    })
    .to_string()
}

const OPENAI_USAGE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"fixture-model","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4}},"timings":{"cache_n":4,"prompt_n":8,"prompt_ms":41.5,"prompt_per_second":192.7,"predicted_n":3,"predicted_ms":30.0,"predicted_per_second":100.0}}"#;

#[test]
fn openai_stream_timing_and_usage() {
    let steps = vec![
        data(&openai_chunk(None, None)),
        Step::Sleep(150),
        data(&openai_chunk(Some("Hel"), None)),
        Step::Sleep(100),
        data(&openai_chunk(Some("lo"), None)),
        Step::Sleep(50),
        data(&openai_chunk(Some("!"), Some("stop"))),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ];
    let (x, reqs) = ask("openai", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "Hello!");
    // TTFT at the first non-empty text, not at the role-only chunk
    assert_after_delays(&x, &[150, 100, 50]);
    assert_eq!(x.server.prompt_tokens, Some(12));
    assert_eq!(x.server.output_tokens, Some(3));
    assert_eq!(x.server.cached_prompt_tokens, Some(4));
    assert_eq!(x.server.prompt_ms, Some(41.5));
    assert_eq!(x.server.decode_tps, Some(100.0));
    assert_eq!(x.server.finish_reason.as_deref(), Some("stop"));
    let span = (x.chunks[2] - x.chunks[0]).as_secs_f64();
    let rate = x.trace(&[], 16, 100).metrics().decode_tps.unwrap();
    assert!((rate - 2.0 / span).abs() < 1e-9);
    let r = &reqs[0];
    assert!(
        r.head.starts_with("POST /v1/chat/completions "),
        "{}",
        r.head
    );
    assert!(r.head.contains(&format!("authorization: Bearer {KEY}")));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 16);
    assert_eq!(body["messages"][0]["role"], "system");
}

#[test]
fn anthropic_events_timing_and_usage() {
    let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"fixture-model","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":0,"output_tokens":1}}}"#;
    let delta = |t: &str| {
        format!(
            r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{t}"}}}}"#
        )
    };
    let steps = vec![
        event("message_start", start),
        event(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        event("ping", r#"{"type": "ping"}"#),
        Step::Sleep(120),
        event("content_block_delta", &delta("Hi")),
        Step::Sleep(80),
        event("content_block_delta", &delta(" there")),
        event(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        event(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4}}"#,
        ),
        event("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let (x, reqs) = ask("anthropic", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "Hi there");
    assert_after_delays(&x, &[120, 80]);
    assert_eq!(x.server.prompt_tokens, Some(15));
    assert_eq!(x.server.cached_prompt_tokens, Some(5));
    assert_eq!(x.server.output_tokens, Some(4));
    assert_eq!(x.server.finish_reason.as_deref(), Some("end_turn"));
    let r = &reqs[0];
    assert!(r.head.starts_with("POST /v1/messages "), "{}", r.head);
    assert!(r.head.contains(&format!("x-api-key: {KEY}")));
    assert!(r.head.contains("anthropic-version: 2023-06-01"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn ollama_ndjson_timing_and_durations() {
    let line = |t: &str| {
        Step::Send(format!("{{\"model\":\"fixture-model\",\"created_at\":\"2025-10-26T17:15:24.097767Z\",\"response\":\"{t}\",\"done\":false}}\n"))
    };
    let last = "{\"model\":\"fixture-model\",\"created_at\":\"2025-10-26T17:15:24.2Z\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"total_duration\":174560334,\"load_duration\":101397084,\"prompt_eval_count\":11,\"prompt_eval_duration\":13074791,\"eval_count\":18,\"eval_duration\":52479709}\n";
    let steps = vec![
        Step::Sleep(100),
        line("That"),
        Step::Sleep(60),
        line("'s"),
        Step::Send(last.into()),
    ];
    let (x, reqs) = ask("ollama", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "That's");
    assert_after_delays(&x, &[100, 60]);
    let s = &x.server;
    assert_eq!((s.prompt_tokens, s.output_tokens), (Some(11), Some(18)));
    assert!((s.load_ms.unwrap() - 101.397084).abs() < 1e-9);
    assert!((s.prompt_ms.unwrap() - 13.074791).abs() < 1e-9);
    assert!((s.decode_tps.unwrap() - 18.0 / 0.052479709).abs() < 1e-6);
    // The key a backend config names for Ollama (`api_key_env`) goes as a bearer token.
    let auth = format!("authorization: Bearer {KEY}");
    assert!(reqs[0].head.contains(&auth), "{}", reqs[0].head);
    let body: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(body["raw"], true);
    assert_eq!(body["prompt"], "<|user|>Say hello.<|assistant|>");
    assert_eq!(body["options"]["num_predict"], 16);
    assert_eq!(body["options"]["temperature"], 0.0);
}

#[test]
fn connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ep = endpoint_for("openai", &format!("http://127.0.0.1:{port}"));
    let p = prompt(4, LIMIT);
    let x = exchange(&Client::new(), &ep, &ChatRequest::new(&p), None);
    assert_eq!(
        x.failure.as_ref().unwrap().kind,
        FailureKind::Refused,
        "{:?}",
        x.failure
    );
}

#[test]
fn cut_mid_stream_keeps_what_came() {
    let steps = vec![data(&openai_chunk(Some("partial"), None)), Step::Cut];
    let (x, _) = ask("openai", vec![Reply::ok(steps)], LIMIT);
    let f = x.failure.unwrap();
    assert!(
        matches!(f.kind, FailureKind::Reset | FailureKind::Truncated),
        "{f:?}"
    );
    assert_eq!(x.text, "partial");
}

#[test]
fn http_errors_carry_the_servers_message_without_the_key() {
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}","type":"invalid_request_error"}}}}"#
    );
    let (x, _) = ask("openai", vec![Reply::status(401, &body)], LIMIT);
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::HttpStatus);
    assert!(
        f.message.contains("HTTP 401") && f.message.contains("Incorrect API key"),
        "{}",
        f.message
    );
    assert!(!f.message.contains(KEY), "{}", f.message);
    assert!(!format!("{f:?}").contains(KEY));
    let (x, _) = ask(
        "anthropic",
        vec![Reply::status(500, "upstream exploded")],
        LIMIT,
    );
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::HttpStatus);
    assert!(
        f.message.contains("500") && f.message.contains("upstream exploded"),
        "{}",
        f.message
    );
}

/// A key the error body's cut falls inside leaves no part of it in the message: the server
/// pads its body so that the 16 KiB kept ends within the key.
#[test]
fn a_key_cut_by_the_error_body_limit_leaves_no_prefix() {
    for kept in [4, 12, KEY.len() - 1] {
        let body = format!("{}{KEY} and more", " ".repeat(16 * 1024 - kept));
        let (x, _) = ask("openai", vec![Reply::status(401, &body)], LIMIT);
        let f = x.failure.unwrap();
        assert_eq!(f.kind, FailureKind::HttpStatus);
        assert!(!f.message.contains(&KEY[..4]), "{kept}: {}", f.message);
        assert!(f.message.contains("[redacted]"), "{kept}: {}", f.message);
    }
}

fn rate_limited(retry_after: &str) -> Reply {
    let mut r = Reply::status(429, r#"{"error":{"message":"slow down"}}"#);
    r.headers.push(("retry-after".into(), retry_after.into()));
    r
}

#[test]
fn http_429_is_retried_after_retry_after_within_a_bound() {
    let ok = vec![
        data(&openai_chunk(Some("ok"), Some("stop"))),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ];
    let (x, reqs) = ask(
        "openai",
        vec![rate_limited("1"), Reply::ok(ok.clone())],
        LIMIT,
    );
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!((x.retries, reqs.len()), (1, 2));
    assert!(x.retry_wait >= Duration::from_secs(1));
    // a wait beyond the endpoint's bound (3 s here) is not waited for
    let t = Instant::now();
    let (x, _) = ask("openai", vec![rate_limited("120")], LIMIT);
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::RateLimited);
    assert!(f.message.contains("slow down"), "{}", f.message);
    assert!(
        f.message.contains("after 0 retries (0.0 s waited; Retry-After asks for 120.0 s more, past --max-retry-wait)"),
        "{}",
        f.message
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // a wait too long to represent is refused, not panicked on, and the failure says why
    for absurd in ["100000000000000000000", "99999999999999999999999.5"] {
        let (x, _) = ask(
            "openai",
            vec![rate_limited(absurd), rate_limited("0")],
            LIMIT,
        );
        let f = x.failure.expect("rate limited");
        assert_eq!(f.kind, FailureKind::RateLimited, "{absurd}: {f:?}");
        assert!(
            f.message.contains("longer than any limit"),
            "{absurd}: {}",
            f.message
        );
    }
    // retries run out: the failure says so
    let (x, reqs) = ask("openai", vec![rate_limited("0"); 6], LIMIT);
    let f = x.failure.expect("rate limited");
    assert_eq!(reqs.len(), 6);
    assert!(
        f.message
            .contains("after 5 retries (0.0 s waited; no retry left, at most 5)"),
        "{}",
        f.message
    );
    // a value that is neither seconds nor a date counts as no header: the usual backoff
    for odd in ["-1", "soon", "inf", "1e20"] {
        let (x, reqs) = ask(
            "openai",
            vec![rate_limited(odd), Reply::ok(ok.clone())],
            LIMIT,
        );
        assert!(x.failure.is_none(), "{odd}: {:?}", x.failure);
        assert_eq!((x.retries, reqs.len()), (1, 2), "{odd}");
    }
}

#[test]
fn a_line_without_end_is_malformed_not_buffered_forever() {
    let endless = vec![Step::Send(format!("data: {}", "x".repeat(5 << 20)))];
    let (x, _) = ask("openai", vec![Reply::ok(endless)], LIMIT);
    let f = x.failure.expect("refused");
    assert_eq!(f.kind, FailureKind::Malformed, "{f:?}");
    assert!(f.message.contains("longer than"), "{}", f.message);
}

#[test]
fn malformed_lines_and_error_events_fail_with_their_kind() {
    let bad = vec![data(&openai_chunk(Some("a"), None)), data("{not json")];
    let (x, _) = ask("openai", vec![Reply::ok(bad)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::Malformed);
    let err = vec![
        data(&openai_chunk(Some("a"), None)),
        event("error", r#"{"error":{"message":"model crashed"}}"#),
    ];
    let (x, _) = ask("openai", vec![Reply::ok(err)], LIMIT);
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::StreamError);
    assert!(f.message.contains("model crashed"));
    let overloaded = vec![event(
        "error",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )];
    let (x, _) = ask("anthropic", vec![Reply::ok(overloaded)], LIMIT);
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::StreamError);
    assert!(
        f.message.contains("overloaded_error: Overloaded"),
        "{}",
        f.message
    );
    let ollama = vec![Step::Send("{\"error\":\"model 'x' not found\"}\n".into())];
    let (x, _) = ask("ollama", vec![Reply::ok(ollama)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::StreamError);
    let ollama = vec![Step::Send(
        "{\"response\":\"a\",\"done\":false}\nnot json\n".into(),
    )];
    let (x, _) = ask("ollama", vec![Reply::ok(ollama)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::Malformed);
}

/// An answer that breaks HTTP itself (a status line or a chunk length that does not parse, no
/// HTTP at all, headers past the client's limit) is malformed, not a kind the docs leave out.
#[test]
fn an_answer_that_is_not_http_is_malformed() {
    let chunk = |d: &str| format!("{:x}\r\n{d}\r\n", d.len());
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n";
    let answers = [
        vec![Step::Raw("HTTP/1.1 99999 WAT\r\n\r\n".into())],
        vec![Step::Raw("\u{1}garbage\r\n\r\n".into())],
        vec![Step::Raw(format!(
            "{head}x-big: {}\r\n\r\n",
            "a".repeat(100 << 10)
        ))],
        vec![Step::Raw(format!(
            "{head}transfer-encoding: chunked\r\n\r\n{}zz\r\ngarbage\r\n",
            chunk(&format!("data: {}\n\n", openai_chunk(Some("Hel"), None)))
        ))],
    ];
    for steps in answers {
        let what = format!("{:.60?}", steps[0]);
        let (x, _) = ask("openai", vec![Reply::raw(steps)], LIMIT);
        let f = x.failure.expect("a failure");
        assert_eq!(f.kind, FailureKind::Malformed, "{what}: {f:?}");
    }
}

/// A connection reset mid-answer is a `reset` however the body is framed: chunked, or running
/// until the connection closes (where a reset would otherwise read as the body's end).
#[test]
fn a_reset_mid_answer_is_a_reset_however_the_body_is_framed() {
    let first = |kind: &str| {
        match kind {
        "openai" => format!("data: {}\n\n", openai_chunk(Some("Hel"), None)),
        "anthropic" => "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n".into(),
        _ => "{\"model\":\"m\",\"response\":\"Hi\",\"done\":false}\n".into(),
    }
    };
    for kind in ["openai", "anthropic", "ollama"] {
        let stream = match kind {
            "ollama" => "application/x-ndjson",
            _ => "text/event-stream",
        };
        let head =
            format!("HTTP/1.1 200 OK\r\ncontent-type: {stream}\r\nconnection: close\r\n\r\n");
        let until_close = Reply::raw(vec![
            Step::Raw(format!("{head}{}", first(kind))),
            Step::Sleep(100),
            Step::Reset,
        ]);
        let chunked = Reply::ok(vec![Step::Send(first(kind)), Step::Sleep(100), Step::Reset]);
        for (framing, reply) in [("until close", until_close), ("chunked", chunked)] {
            let (x, _) = ask(kind, vec![reply], LIMIT);
            let f = x.failure.expect("a failure");
            assert_eq!(f.kind, FailureKind::Reset, "{kind}, {framing}: {f:?}");
        }
    }
    // A body that runs until the connection closes, closed, is no reset.
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let closed = Reply::raw(vec![Step::Raw(format!("{head}{}", first("openai")))]);
    let (x, _) = ask("openai", vec![closed], LIMIT);
    assert_eq!(x.failure.expect("a failure").kind, FailureKind::Truncated);
}

/// A successful answer to a streamed request that is not a stream (a proxy's web page, one
/// JSON completion from a server that ignored `stream: true`) is malformed, not an answer cut
/// short; an answer that is a stream passes whatever its parameters, letter case, or with no
/// `Content-Type` at all.
#[test]
fn an_answer_that_is_not_a_stream_is_malformed() {
    let typed = |ctype: Option<&str>, body: &str| Reply {
        status: 200,
        headers: ctype
            .map(|t| ("content-type".to_string(), t.to_string()))
            .into_iter()
            .collect(),
        steps: vec![Step::Send(body.into())],
    };
    let page = "<html><body>502 Bad Gateway</body></html>";
    let openai_whole = r#"{"choices":[{"message":{"content":"Hello"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#;
    let ollama_whole = r#"{"model":"fixture-model","response":"Hello","done":true,"eval_count":1}"#;
    for (kind, ctype, body, shown) in [
        ("openai", "text/html", page, "text/html"),
        (
            "openai",
            "application/json",
            openai_whole,
            "application/json",
        ),
        ("anthropic", "text/html; charset=utf-8", page, "text/html"),
        (
            "anthropic",
            "Application/JSON",
            openai_whole,
            "application/json",
        ),
    ] {
        let (x, _) = ask(kind, vec![typed(Some(ctype), body)], LIMIT);
        let f = x.failure.expect("a failure");
        assert_eq!(f.kind, FailureKind::Malformed, "{kind} {ctype}: {f:?}");
        assert_eq!(
            f.message,
            format!("the answer is {shown}, not an event stream")
        );
        assert_eq!(x.text, "");
    }
    for (ctype, body) in [("text/html", page), ("application/json", ollama_whole)] {
        let (x, _) = ask("ollama", vec![typed(Some(ctype), body)], LIMIT);
        let f = x.failure.expect("a failure");
        assert_eq!(f.kind, FailureKind::Malformed, "{ctype}: {f:?}");
        assert_eq!(
            f.message,
            format!("the answer is {ctype}, not a stream of JSON lines")
        );
        assert_eq!(x.text, "");
    }
    // Streams pass, typed as servers type them or not typed at all.
    let sse = format!(
        "data: {}\n\ndata: {OPENAI_USAGE}\n\ndata: [DONE]\n\n",
        openai_chunk(Some("Hi"), Some("stop"))
    );
    for ctype in [
        Some("text/event-stream; charset=utf-8"),
        Some("Text/Event-Stream"),
        None,
    ] {
        let (x, _) = ask("openai", vec![typed(ctype, &sse)], LIMIT);
        assert!(x.failure.is_none(), "{ctype:?}: {:?}", x.failure);
        assert_eq!(x.text, "Hi");
    }
    let ndjson = format!("{{\"response\":\"Hi\",\"done\":false}}\n{ollama_whole}\n");
    for ctype in [Some("application/x-ndjson; charset=utf-8"), None] {
        let (x, _) = ask("ollama", vec![typed(ctype, &ndjson)], LIMIT);
        assert!(x.failure.is_none(), "{ctype:?}: {:?}", x.failure);
        assert_eq!(x.text, "HiHello");
    }
}

/// An SSE `error` event whose data is not JSON is the server's error all the same, through
/// either API.
#[test]
fn an_error_event_with_plain_text_data_is_a_stream_error() {
    for kind in ["openai", "anthropic"] {
        let err = vec![Step::Send(
            "event: error\ndata: upstream overloaded\n\n".into(),
        )];
        let (x, _) = ask(kind, vec![Reply::ok(err)], LIMIT);
        let f = x.failure.unwrap();
        assert_eq!(f.kind, FailureKind::StreamError, "{kind}: {f:?}");
        assert!(f.message.contains("upstream overloaded"), "{kind}: {f:?}");
    }
}

#[test]
fn a_stall_past_the_time_limit_ends_the_request() {
    let steps = vec![data(&openai_chunk(Some("a"), None)), Step::Sleep(6000)];
    let t = Instant::now();
    let (x, _) = ask("openai", vec![Reply::ok(steps)], Duration::from_millis(800));
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::TimeLimit, "{f:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(x.text, "a");
    // a server that never sends headers is bounded too
    let t = Instant::now();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = endpoint_for("ollama", &format!("http://{}", l.local_addr().unwrap()));
    let p = prompt(4, Duration::from_millis(800));
    let x = exchange(&Client::new(), &ep, &ChatRequest::new(&p), None);
    assert_eq!(x.failure.unwrap().kind, FailureKind::TimeLimit);
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(l);
}

#[test]
fn streams_without_usage_or_final_event_are_failures() {
    let no_usage = vec![data(&openai_chunk(Some("a"), Some("stop"))), data("[DONE]")];
    let (x, _) = ask("openai", vec![Reply::ok(no_usage)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::NoUsage);
    assert_eq!(x.text, "a");
    let no_done = vec![
        data(&openai_chunk(Some("a"), Some("stop"))),
        data(OPENAI_USAGE),
    ];
    let (x, _) = ask("openai", vec![Reply::ok(no_done)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::Truncated);
    let no_stop = vec![event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}"#,
    )];
    let (x, _) = ask("anthropic", vec![Reply::ok(no_stop)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::Truncated);
    // A body that ends within a line was cut off, whatever the protocol.
    let half = openai_chunk(Some("b"), None);
    let cut = vec![
        data(&openai_chunk(Some("a"), None)),
        Step::Send(format!("data: {}", &half[..half.len() / 2])),
    ];
    let (x, _) = ask("openai", vec![Reply::ok(cut)], LIMIT);
    let f = x.failure.unwrap();
    assert_eq!(f.kind, FailureKind::Truncated, "{f:?}");
    assert!(f
        .message
        .starts_with("the stream ended in the middle of a line"));
    assert_eq!(x.text, "a");
    let cut = vec![Step::Send(
        "{\"response\":\"a\",\"done\":false}\n{\"response\":\"b\",\"do".into(),
    )];
    let (x, _) = ask("ollama", vec![Reply::ok(cut)], LIMIT);
    assert_eq!(x.failure.unwrap().kind, FailureKind::Truncated);
}

/// A server that ignores `max_tokens` and streams on: runner stops reading once the chunks are
/// clearly more than the limit allows, instead of holding the flood until the time limit.
#[test]
fn a_server_streaming_past_the_token_limit_is_cut_off() {
    for kind in ["openai", "anthropic", "ollama"] {
        let mut steps = Vec::new();
        for _ in 0..200 {
            steps.push(match kind {
                "openai" => data(&openai_chunk(Some("x"), None)),
                "anthropic" => event(
                    "content_block_delta",
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#,
                ),
                _ => Step::Send("{\"model\":\"fixture-model\",\"response\":\"x\",\"done\":false}\n".into()),
            });
        }
        steps.push(Step::Sleep(60_000));
        let (x, _) = ask(kind, vec![Reply::ok(steps)], LIMIT);
        let f = x.failure.clone().expect("failed");
        assert_eq!(f.kind, FailureKind::OverLimit, "{kind}: {f}");
        assert!(f.message.contains("token limit"), "{f}");
        // max_tokens 16 allows 2 × 16 + 16 chunks.
        assert_eq!(x.chunks.len(), 49, "{kind}");
        assert!(x.end < Duration::from_secs(10), "{kind}: {:?}", x.end);
    }
}

/// A server that sends a few chunks of megabytes of text for a token limit of 16: runner stops
/// reading at the bytes of text the limit allows, as it does at a flood of chunks, and keeps
/// no more text than that.
#[test]
fn a_server_streaming_huge_chunks_past_the_token_limit_is_cut_off() {
    let blob = "z".repeat(1 << 20);
    for kind in ["openai", "anthropic", "ollama"] {
        let chunk = match kind {
            "openai" => data(&openai_chunk(Some(&blob), None)),
            "anthropic" => event(
                "content_block_delta",
                &serde_json::json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": blob } })
                    .to_string(),
            ),
            _ => Step::Send(format!(
                "{}\n",
                serde_json::json!({ "model": "fixture-model", "response": blob, "done": false })
            )),
        };
        let steps = vec![chunk.clone(), chunk, Step::Sleep(60_000)];
        let (x, _) = ask(kind, vec![Reply::ok(steps)], LIMIT);
        let f = x.failure.clone().expect("failed");
        assert_eq!(f.kind, FailureKind::OverLimit, "{kind}: {f}");
        assert!(f.message.contains("bytes of text"), "{f}");
        assert_eq!(x.text.len() as u64, text_allowance(16), "{kind}");
        assert_eq!(x.chunks.len(), 1, "{kind}");
        assert!(x.end < Duration::from_secs(10), "{kind}: {:?}", x.end);
    }
}

/// A sweep through the built binary against a server that reports more cached prompt tokens
/// than prompt tokens and a negative cost: neither is recorded.
#[test]
fn impossible_cached_counts_and_costs_are_not_recorded() {
    for (cached, cost) in [(1_000_000u64, -5.0), (4, 1e308)] {
        let usage = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "fixture-model", "choices": [],
            "usage": { "prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13,
                       "prompt_tokens_details": { "cached_tokens": cached }, "cost": cost },
        });
        let steps = vec![
            data(&openai_chunk(Some("Hi"), Some("stop"))),
            data(&usage.to_string()),
            data("[DONE]"),
        ];
        let r = one_request_through_a_sweep(steps);
        let s = &r["server"];
        assert_eq!(s["prompt_tokens"], 12, "{s}");
        let kept = match cached {
            4 => serde_json::json!(4),
            _ => serde_json::Value::Null,
        };
        assert_eq!(s["cached_prompt_tokens"], kept, "{s}");
        assert_eq!(s["cost_usd"], serde_json::Value::Null, "{s}");
    }
}

/// The record of one short-response prompt that a sweep through the built binary sends to a
/// fixture OpenAI server answering with `steps`.
fn one_request_through_a_sweep(steps: Vec<Step>) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    one_request_of(steps, "short-response", dir.path(), common::runner())
}

/// The first record of a sweep of `scenario` that `runner` (the binary, maybe started through
/// a launcher) runs against a fixture OpenAI server answering with `steps`.
fn one_request_of(
    steps: Vec<Step>,
    scenario: &str,
    dir: &std::path::Path,
    runner: std::process::Command,
) -> serde_json::Value {
    let backend = ["--backend", "openai:fixture"];
    one_request_by(steps, scenario, dir, runner, &backend)
}

/// The first record of a sweep of `scenario` that `runner`, given its backend and any other
/// flags in `args`, runs against a fixture OpenAI server answering with `steps`.
fn one_request_by(
    steps: Vec<Step>,
    scenario: &str,
    dir: &std::path::Path,
    mut runner: std::process::Command,
    args: &[&str],
) -> serde_json::Value {
    let f = serve(vec![Reply::ok(steps)]);
    let base = format!("{}/v1", f.base());
    let results = dir.join("results");
    let o = runner
        .args(["sweep", "-m", common::model().to_str().unwrap(), "-s"])
        .args([scenario, "--limit", "1"])
        .args(args)
        .args(["--openai-base-url", &base, "--results"])
        .arg(&results)
        .arg("--no-progress")
        .output()
        .expect("runner starts");
    assert!(o.status.success(), "{}", common::stderr(&o));
    let file = std::fs::read_dir(&results).unwrap().next().unwrap();
    let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// A descriptor that runner's parent left open without close-on-exec does not reach the code
/// runner runs to grade an answer: the hidden test looks for it from inside the sandbox.
#[test]
fn graded_code_does_not_inherit_what_runners_parent_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "parent's secret").unwrap();
    let scenario = dir.path().join("fd.toml");
    std::fs::write(
        &scenario,
        r#"name = "fd"
description = "one answer graded by running it"
kind = "long-form"
[[prompts]]
id = "add"
user = "Write add(a, b) in Python."
max_tokens = 64
[[prompts.graders]]
type = "tests"
language = "python"
tests = """
import os
from solution import add
def test_add():
    assert add(2, 3) == 5
def test_no_inherited_descriptor():
    try:
        os.fstat(47)
    except OSError:
        return
    raise AssertionError("descriptor 47 is open")
"""
"#,
    )
    .unwrap();
    let answer = "```python\ndef add(a, b):\n    return a + b\n```";
    let steps = vec![
        data(&openai_chunk(Some(answer), Some("stop"))),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ];
    // The parent: opens the file on descriptor 47, inheritable, then becomes runner.
    let mut launcher = std::process::Command::new("python3");
    launcher.args([
        "-c",
        "import os, sys\n\
         fd = os.open(sys.argv[1], os.O_RDONLY)\n\
         os.dup2(fd, 47, inheritable=True)\n\
         os.execv(sys.argv[2], sys.argv[2:])",
    ]);
    launcher.arg(&secret).arg(env!("CARGO_BIN_EXE_runner"));
    let r = one_request_of(steps, scenario.to_str().unwrap(), dir.path(), launcher);
    let tests = r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["grader"] == "tests python")
        .expect("the executed verdict")
        .clone();
    let cases = tests["cases"].as_array().expect("cases ran");
    let case = |name: &str| {
        cases
            .iter()
            .find(|c| c["case"].as_str().is_some_and(|n| n.contains(name)))
            .unwrap_or_else(|| panic!("{name} in {tests}"))
            .clone()
    };
    assert_eq!(case("test_add")["pass"], true, "{tests}");
    assert_eq!(
        case("test_no_inherited_descriptor")["pass"],
        true,
        "{tests}"
    );
}

/// A sweep through the built binary against a server whose usage and timings are absurd: the
/// request succeeds with its rate counted from the streamed chunks, and the server's
/// impossible timings are left out.
#[test]
fn absurd_token_counts_and_timings_from_a_server_are_not_believed() {
    for absurd in [u64::MAX, u64::from(u32::MAX)] {
        let usage = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "fixture-model", "choices": [],
            "usage": { "prompt_tokens": 12, "completion_tokens": absurd, "total_tokens": 15 },
            "timings": { "predicted_ms": 30.0, "predicted_per_second": 1e308 }
        });
        let steps = vec![
            data(&openai_chunk(Some("Hel"), None)),
            Step::Sleep(100),
            data(&openai_chunk(Some("lo"), None)),
            Step::Sleep(100),
            data(&openai_chunk(Some("!"), Some("stop"))),
            data(&usage.to_string()),
            data("[DONE]"),
        ];
        let r = one_request_through_a_sweep(steps);
        assert_eq!(r["failed"], false, "{r}");
        assert_eq!(r["output_tokens"], 3, "the chunks, not {absurd}");
        let tps = r["decode_tps"].as_f64().unwrap();
        // The span between chunks has 200 ms of sleeps and only grows on a busy machine.
        assert!(
            tps > 0.0 && tps < 10.5,
            "(3 - 1) chunks over 200 ms or more: {tps}"
        );
        assert_eq!(
            r["server"]["output_tokens"], absurd,
            "what the server said is kept"
        );
        assert_eq!(
            r["server"]["decode_tps"],
            serde_json::Value::Null,
            "{}",
            r["server"]
        );
    }
}

/// A sweep through the built binary of a priced cloud model (not local) whose server reports
/// more output tokens than the token limit allows: the cost prices the counts the record
/// believes (the 3 streamed chunks), not the server's.
#[test]
fn cost_prices_the_token_counts_the_record_believes() {
    for absurd in [4_000_000u64, u64::MAX] {
        let usage = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o", "choices": [],
            "usage": { "prompt_tokens": 12, "completion_tokens": absurd, "total_tokens": 15 },
        });
        let steps = vec![
            data(&openai_chunk(Some("Hel"), None)),
            data(&openai_chunk(Some("lo"), None)),
            data(&openai_chunk(Some("!"), Some("stop"))),
            data(&usage.to_string()),
            data("[DONE]"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cloud.toml");
        std::fs::write(&config, "[openai]\nlocal = false\n").unwrap();
        let args = ["--backend", "openai:gpt-4o", "--backend-config"];
        let args = [&args[..], &[config.to_str().unwrap()]].concat();
        let r = one_request_by(steps, "short-response", dir.path(), common::runner(), &args);
        assert_eq!(r["output_tokens"], 3, "{r}");
        assert_eq!(r["server"]["output_tokens"], absurd, "{r}");
        // gpt-4o in the shipped table: 2.50 US$ per million input tokens, 10.00 per million
        // output tokens.
        let want = (12.0 * 2.5 + 3.0 * 10.0) / 1e6;
        let cost = r["cost_usd"].as_f64().expect("a cost");
        assert!((cost - want).abs() < 1e-12, "{cost} for {absurd}: {r}");
    }
}

/// A sweep through the built binary against llama-server `timings` that cannot be true (a time
/// of 1e300 ms or longer than the request, no time or 1e-300 ms for the tokens, 1e308 tok/s):
/// they are left out, so the record keeps runner's own figures and its readers believe it.
#[test]
fn impossible_server_timings_are_left_out_and_the_record_stays_plausible() {
    for timings in [
        serde_json::json!({ "prompt_ms": 1e300, "predicted_ms": 0, "predicted_per_second": 1e308 }),
        serde_json::json!({ "prompt_ms": 5e6, "prompt_per_second": 1e-300,
                            "predicted_ms": 1e-300, "predicted_per_second": 1e300 }),
    ] {
        let usage = serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "fixture-model", "choices": [],
            "usage": { "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15 },
            "timings": timings,
        });
        let steps = vec![
            data(&openai_chunk(Some("Hel"), None)),
            Step::Sleep(20),
            data(&openai_chunk(Some("lo"), None)),
            data(&openai_chunk(Some("!"), Some("stop"))),
            data(&usage.to_string()),
            data("[DONE]"),
        ];
        let r = one_request_through_a_sweep(steps);
        assert_eq!(r["failed"], false, "{r}");
        let s = &r["server"];
        for field in ["prompt_ms", "prompt_tps", "decode_ms", "decode_tps"] {
            assert_eq!(s[field], serde_json::Value::Null, "{field}: {s}");
        }
        assert!(r["decode_tps"].as_f64().is_some(), "{r}");
        let record = runner::record::Record::from_value(r.clone()).unwrap();
        assert_eq!(runner::record::plausible::implausible(&record), None);
    }
}

/// A reply with no body but a status and a `Location`.
fn redirect(status: u16, location: &str) -> Reply {
    Reply {
        status,
        headers: vec![("location".into(), location.into())],
        steps: Vec::new(),
    }
}

#[test]
fn redirects_are_refused_not_followed_with_the_key() {
    for kind in ["anthropic", "openai"] {
        for status in [301, 302, 307, 308] {
            let target = serve(vec![Reply::ok(vec![data("[DONE]")])]);
            let to = format!("{}/v1/messages", target.base());
            let (x, _) = ask(kind, vec![redirect(status, &to)], LIMIT);
            let f = x.failure.expect("a redirect fails the request");
            assert_eq!(f.kind, FailureKind::HttpStatus, "{kind} {status}: {f:?}");
            let host = format!("127.0.0.1:{}", target.port);
            assert!(
                f.message.contains(&format!("HTTP {status}")) && f.message.contains(&host),
                "{}",
                f.message
            );
            assert!(!f.message.contains('\n') && !f.message.contains(KEY));
            assert!(
                target
                    .requests
                    .recv_timeout(Duration::from_millis(300))
                    .is_err(),
                "{kind} {status}: the redirect was followed"
            );
        }
    }
}

#[test]
fn a_key_the_server_echoes_is_redacted_from_the_exchange() {
    let echo = serde_json::json!({
        "model": format!("m-{KEY}"),
        "choices": [{ "index": 0, "delta": { "content": format!("key={KEY}") },
                      "finish_reason": format!("stop{KEY}") }]
    });
    let steps = vec![data(&echo.to_string()), data(OPENAI_USAGE), data("[DONE]")];
    let (x, _) = ask("openai", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "key=[redacted]");
    assert!(!format!("{x:?}").contains(KEY), "{x:?}");
    let malformed = vec![
        data(&openai_chunk(Some("a"), None)),
        data(&format!("not json, your key was {KEY}")),
    ];
    let (x, _) = ask("openai", vec![Reply::ok(malformed)], LIMIT);
    let f = x.failure.clone().expect("malformed");
    assert_eq!(f.kind, FailureKind::Malformed);
    assert!(f.message.contains("[redacted]"), "{}", f.message);
    assert!(!format!("{x:?}").contains(KEY), "{x:?}");
    // An answer cut off mid-key (by the token or time limit) keeps no start of it either.
    let cut = vec![
        data(&openai_chunk(Some(&format!("key={}", &KEY[..10])), None)),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ];
    let (x, _) = ask("openai", vec![Reply::ok(cut)], LIMIT);
    assert_eq!(x.text, "key=[redacted]");
    // So does Ollama's, which is sent the key a backend config names.
    let echo = |response: String, done: bool| {
        let line = serde_json::json!({ "model": format!("m-{KEY}"), "response": response, "done": done, "eval_count": 2, "done_reason": format!("stop{KEY}") });
        Step::Send(format!("{line}\n"))
    };
    let steps = vec![echo(format!("key={KEY}"), false), echo(String::new(), true)];
    let (x, _) = ask("ollama", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "key=[redacted]");
    assert!(!format!("{x:?}").contains(KEY), "{x:?}");
}

/// A server that sends a long API key back as its output token count: the request fails for
/// want of a count, quoting the count's start, and no start of the key reaches the exchange
/// (the quote is cut after the key is taken out, not before).
#[test]
fn a_key_sent_back_as_the_token_count_leaves_no_start_of_it() {
    let long = format!("sk-long-{}", "0123456789abcdef".repeat(10));
    let count = serde_json::json!(long);
    let openai = vec![
        data(&openai_chunk(Some("Hello"), Some("stop"))),
        data(
            &serde_json::json!({ "choices": [], "usage": { "prompt_tokens": 5, "completion_tokens": count } })
                .to_string(),
        ),
        data("[DONE]"),
    ];
    let anthropic = vec![
        event(
            "message_start",
            r#"{"type":"message_start","message":{"model":"fixture-model","usage":{"input_tokens":5,"output_tokens":1}}}"#,
        ),
        event(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        ),
        event(
            "message_delta",
            &serde_json::json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn" }, "usage": { "output_tokens": count } })
                .to_string(),
        ),
        event("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let last = serde_json::json!({ "model": "fixture-model", "response": "", "done": true, "prompt_eval_count": 5, "eval_count": count });
    let ollama = vec![
        Step::Send("{\"model\":\"fixture-model\",\"response\":\"Hello\",\"done\":false}\n".into()),
        Step::Send(format!("{last}\n")),
    ];
    for (kind, steps) in [
        ("openai", openai),
        ("anthropic", anthropic),
        ("ollama", ollama),
    ] {
        let (x, _) = ask_keyed(kind, &long, vec![Reply::ok(steps)], LIMIT);
        let f = x.failure.clone().expect("no count believed");
        assert_eq!(f.kind, FailureKind::NoUsage, "{kind}: {f:?}");
        assert_eq!(
            f.message,
            "the stream's output token count (\"[redacted]\") is not a whole number of 0 or more",
            "{kind}"
        );
        assert_eq!(x.text, "Hello", "{kind}");
        assert!(!format!("{x:?}").contains(&long[..8]), "{kind}: {x:?}");
    }
}

#[test]
fn a_429_whose_body_stalls_is_bounded_by_the_time_limit_in_all() {
    let f = common::fixture::serve_concurrent(|_, _, _| {
        let mut r = Reply::status(429, "{\"err");
        r.headers.push(("retry-after".into(), "0".into()));
        r.steps.push(Step::Sleep(3000));
        r
    });
    let ep = endpoint_for("openai", &f.base());
    let p = prompt(4, Duration::from_millis(1000));
    let client = Client::new();
    let t = Instant::now();
    let x = exchange(&client, &ep, &ChatRequest::new(&p), None);
    let took = t.elapsed();
    let f_ = x.failure.clone().expect("fails");
    assert_eq!(f_.kind, FailureKind::TimeLimit, "{f_:?}");
    let attempts = f.requests.try_iter().count();
    assert!(attempts < 3, "{attempts} attempts within a 1 s limit");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        x.end + Duration::from_millis(500) >= took,
        "the end counts the whole request: {:?} of {took:?}",
        x.end
    );
}

#[test]
fn retry_after_as_an_http_date_is_waited_for() {
    let ok = vec![
        data(&openai_chunk(Some("ok"), Some("stop"))),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ];
    let past = rate_limited("Wed, 21 Oct 2015 07:28:00 GMT");
    let (x, reqs) = ask("openai", vec![past, Reply::ok(ok)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!((x.retries, reqs.len()), (1, 2));
}

#[test]
fn sse_lines_may_end_in_a_bare_cr() {
    let steps: Vec<Step> = [
        data(&openai_chunk(Some("Hel"), None)),
        data(&openai_chunk(Some("lo"), Some("stop"))),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ]
    .into_iter()
    .map(|s| match s {
        Step::Send(t) => Step::Send(t.replace('\n', "\r")),
        other => other,
    })
    .collect();
    let (x, _) = ask("openai", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "Hello");
}

#[test]
fn only_the_first_openai_choice_is_the_answer() {
    let chunk = |choices: serde_json::Value| serde_json::json!({ "choices": choices }).to_string();
    let steps = vec![
        data(&chunk(
            serde_json::json!([{ "index": 1, "delta": { "content": "B1" } }]),
        )),
        data(&chunk(serde_json::json!([
            { "index": 0, "delta": { "content": "A0" } },
            { "index": 1, "delta": { "content": "B2" } }
        ]))),
        data(&chunk(
            serde_json::json!([{ "index": 1, "delta": {}, "finish_reason": "length" }]),
        )),
        data(&chunk(
            serde_json::json!([{ "index": 0, "delta": {}, "finish_reason": "stop" }]),
        )),
        data(OPENAI_USAGE),
        data("[DONE]"),
    ];
    let (x, _) = ask("openai", vec![Reply::ok(steps)], LIMIT);
    assert!(x.failure.is_none(), "{:?}", x.failure);
    assert_eq!(x.text, "A0");
    assert_eq!(x.server.finish_reason.as_deref(), Some("stop"));
}

/// A sweep interrupted while its request waits on a server that accepted the connection and
/// never answers stops at once with exit code 130, not when the prompt's time limit (60 s)
/// runs out.
#[test]
fn an_interrupt_stops_a_request_waiting_on_a_silent_server() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept() {
            held.push(s);
            let _ = tx.send(());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::runner()
        .args([
            "sweep",
            "-m",
            common::model().to_str().unwrap(),
            "-s",
            "short-response",
            "--limit",
            "1",
            "--backend",
            "openai:fixture",
            "--openai-base-url",
            &base,
            "--results",
            dir.path().to_str().unwrap(),
            "--no-progress",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the sweep connects");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let t = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running 10 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(130));
}

/// An Ollama server that sends the warm-up's headers and then nothing holds the cell only
/// for the backend config's `warmup_limit`, whatever the prompts' time limits, and the error
/// names that limit; a limit that is no time is refused before the run.
#[test]
fn a_stalled_ollama_warm_up_ends_at_the_configured_warm_up_limit() {
    let f = common::fixture::serve_fn(3, |req, _| {
        if req.head.starts_with("POST /api/generate") {
            Reply::ok(vec![Step::Sleep(120_000)])
        } else if req.head.starts_with("GET /api/version") {
            Reply::status(200, r#"{"version":"0.9.0"}"#)
        } else {
            Reply::status(200, r#"{"details":{"family":"llama"}}"#)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backends.toml");
    let sweep = |config: &std::path::Path, err: &std::path::Path| {
        common::runner()
            .args(["sweep", "-m", common::model().to_str().unwrap()])
            .args(["-s", "short-response", "--limit", "1"])
            .args(["--backend", "ollama:fixture", "--ollama-host", &f.base()])
            .arg("--backend-config")
            .arg(config)
            .arg("--results")
            .arg(dir.path().join("results"))
            .arg("--no-progress")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(err).unwrap())
            .spawn()
            .unwrap()
    };
    std::fs::write(&config, "[ollama]\nwarmup_limit = 0\n").unwrap();
    let err = dir.path().join("zero.txt");
    let code = sweep(&config, &err).wait().unwrap().code();
    let text = std::fs::read_to_string(&err).unwrap();
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("warmup_limit"), "{text}");

    std::fs::write(&config, "[ollama]\nwarmup_limit = 2\n").unwrap();
    let err = dir.path().join("stall.txt");
    let mut child = sweep(&config, &err);
    let t = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still waiting on the warm-up after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&err).unwrap();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("warm-up") && text.contains("within 2 s") && text.contains("warmup_limit"),
        "{text}"
    );
    assert!(!text.contains("request's time limit"), "{text}");
}

/// A cell whose every request ended in an error (nothing listens at the address) measured
/// nothing: the sweep says so and exits 1, its records kept; so does running it again, which
/// finds them done.
#[test]
fn a_cell_whose_every_request_failed_fails_the_sweep() {
    // Port 1 (tcpmux): nothing listens there, and no fixture server of another test can take it.
    let port = 1;
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let base = format!("http://127.0.0.1:{port}/v1");
    for _ in 0..2 {
        let o = common::runner()
            .args(["sweep", "-m", common::model().to_str().unwrap()])
            .args([
                "-s",
                "short-response",
                "--limit",
                "2",
                "--backend",
                "openai:m",
            ])
            .args(["--openai-base-url", &base, "--no-progress", "--results"])
            .arg(&results)
            .output()
            .expect("runner starts");
        let err = common::stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("error: cell openai:m: all 2 request(s) failed (the first: refused: "),
            "{err}"
        );
        assert!(err.contains("error: 1 cell(s) failed"), "{err}");
        let file = std::fs::read_dir(&results).unwrap().next().unwrap();
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
