//! Ollama's native API: `POST {host}/api/generate` with `raw: true` (the prompt already
//! rendered with the model's chat template, so the prompt tokens match the native run),
//! streamed as newline-delimited JSON: `{"response": "..", "done": false}` objects, then one
//! with `done: true` and the server's counts and nanosecond durations. Before a cell runs:
//! `/api/version`, `/api/show` and a warm-up request that loads the model, then `/api/ps`.

use super::exchange::{ns_to_ms, Exchange, Failure};
use super::http::{self, Client};
use super::spec::Endpoint;
use super::{put, stops, str_at, u64_at, with_extra, ChatRequest};
use crate::measure::FailureKind;
use crate::record::EndpointInfo;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Time allowed for each preflight call; the warm-up (a model load) gets the endpoint's
/// `warmup_limit`.
const PREFLIGHT: Duration = Duration::from_secs(10);

/// The request body: the rendered prompt, raw, with the options that fix the work.
pub fn body(ep: &Endpoint, req: &ChatRequest<'_>, prompt: &str) -> Value {
    let s = req.prompt.sampling;
    let mut options = json!({
        "num_predict": req.prompt.max_tokens,
        "temperature": s.temperature,
        "seed": s.seed,
    });
    put(&mut options, "top_p", s.top_p);
    put(&mut options, "top_k", s.top_k);
    put(
        &mut options,
        "stop",
        stops(req, |s| !s.is_empty(), usize::MAX),
    );
    put(&mut options, "num_ctx", ep.num_ctx);
    put(&mut options, "num_thread", ep.num_thread);
    let mut b = json!({
        "model": ep.spec.model,
        "prompt": prompt,
        "raw": true,
        "stream": true,
        "keep_alive": ep.keep_alive,
        "options": options,
    });
    put(&mut b, "format", req.json_schema.map(|_| "json"));
    with_extra(b, ep)
}

/// Sends one request and reads its stream to the end.
/// `prompt` is the request rendered with the model's chat template (Ollama's raw mode).
pub fn request(client: &Client, ep: &Endpoint, req: &ChatRequest<'_>, prompt: &str) -> Exchange {
    let post = http::Post {
        path: "/api/generate",
        body: body(ep, req, prompt),
        // Ollama itself asks for no key, but a proxy or hosted service in front of it may.
        headers: http::bearer(ep),
    };
    http::stream(client, ep, &post, req, |resp, x, deadline| {
        http::check_stream_type(resp, ep, http::NDJSON, "a stream of JSON lines")?;
        http::pump(resp, x, ep, deadline, |line, at, x| {
            on_line(line, at, x, ep)
        })
        .map(drop)
    })
}

/// Applies one line; `Ok(false)` after the `done` object.
pub fn on_line(line: &str, at: Instant, x: &mut Exchange, ep: &Endpoint) -> Result<bool, Failure> {
    if line.trim().is_empty() {
        return Ok(true);
    }
    let v: Value = serde_json::from_str(line).map_err(|e| http::not_json("line", &e, line, ep))?;
    if let Some(e) = v.get("error") {
        let msg = e.as_str().map_or_else(|| e.to_string(), str::to_string);
        return Err(http::server_error(&msg, ep));
    }
    x.server.model = str_at(&v, "/model")
        .map(String::from)
        .or(x.server.model.take());
    x.text(str_at(&v, "/response").unwrap_or(""), at)?;
    if v.get("done").and_then(Value::as_bool) == Some(true) {
        finals(&v, x);
        x.done = true;
        return Ok(false);
    }
    Ok(true)
}

/// The counts and durations of the last object.
fn finals(v: &Value, x: &mut Exchange) {
    x.output_count(v, "/eval_count");
    let s = &mut x.server;
    s.finish_reason = str_at(v, "/done_reason").map(String::from);
    s.prompt_tokens = u64_at(v, "/prompt_eval_count");
    s.prompt_ms = ns_to_ms(u64_at(v, "/prompt_eval_duration"));
    s.decode_ms = ns_to_ms(u64_at(v, "/eval_duration"));
    s.load_ms = ns_to_ms(u64_at(v, "/load_duration"));
    s.total_ms = ns_to_ms(u64_at(v, "/total_duration"));
    s.prompt_tps = rate(s.prompt_tokens, s.prompt_ms);
    s.decode_tps = rate(s.output_tokens, s.decode_ms);
    x.usage = s.output_tokens.is_some();
}

fn rate(tokens: Option<u64>, ms: Option<f64>) -> Option<f64> {
    let (t, ms) = (tokens?, ms?);
    (ms > 0.0).then(|| t as f64 / (ms / 1000.0))
}

/// Checks the server and the model, then loads the model (a warm-up request with an empty
/// prompt, kept loaded for `keep_alive`) and asks what it takes in memory.
pub fn preflight(client: &Client, ep: &Endpoint, info: &mut EndpointInfo) -> Result<(), Failure> {
    let headers = http::bearer(ep);
    let version = client.json(ep, "/api/version", None, &headers, PREFLIGHT)?;
    info.server_version = str_at(&version, "/version").map(|v| http::scrub(v, ep));
    let show = client.json(
        ep,
        "/api/show",
        Some(&json!({ "model": ep.spec.model })),
        &headers,
        PREFLIGHT,
    )?;
    // What the server said, without the key should it echo it.
    info.details = show
        .get("details")
        .and_then(|d| serde_json::from_str(&http::scrub(&d.to_string(), ep)).ok());
    let start = Instant::now();
    let warm = client
        .json(
            ep,
            "/api/generate",
            Some(&json!({ "model": ep.spec.model, "prompt": "", "stream": false, "keep_alive": ep.keep_alive })),
            &headers,
            ep.warmup_limit,
        )
        .map_err(|f| match f.kind {
            FailureKind::TimeLimit => Failure::new(
                f.kind,
                format!(
                    "the warm-up (loading the model) did not finish within {} s; a model that takes longer to load needs a larger warmup_limit in the backend config's [ollama] section",
                    ep.warmup_limit.as_secs_f64()
                ),
            ),
            _ => f,
        })?;
    let warmup_ms = start.elapsed().as_secs_f64() * 1000.0;
    info.warmup_ms = Some(warmup_ms);
    // A load longer than the warm-up that loaded the model is not believed.
    info.load_ms =
        ns_to_ms(u64_at(&warm, "/load_duration")).filter(|&ms| ms <= warmup_ms * 1.01 + 1.0);
    let ps = client.json(ep, "/api/ps", None, &headers, PREFLIGHT)?;
    let loaded = ps
        .get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| {
            let tagged = format!("{}:latest", ep.spec.model);
            [m.get("name"), m.get("model")]
                .iter()
                .filter_map(|n| n.and_then(Value::as_str))
                .any(|n| n == ep.spec.model || n == tagged)
        });
    if let Some(m) = loaded {
        info.loaded_bytes = u64_at(m, "/size");
        info.loaded_vram_bytes = u64_at(m, "/size_vram");
    }
    Ok(())
}
