//! OpenAI Chat Completions, streamed: `POST {base}/chat/completions` with `stream: true` and
//! `stream_options.include_usage`, answered with server-sent events of
//! `chat.completion.chunk` objects (`choices[].delta.content`, `finish_reason`), a last chunk
//! with `usage` (and, from llama-server, `timings`), then `data: [DONE]`. Covers llama.cpp's
//! llama-server, vLLM, LM Studio, OpenRouter and OpenAI.

use super::exchange::{Exchange, Failure};
use super::http::{self, Client, Handled};
use super::spec::Endpoint;
use super::{f64_at, messages_json, put, sse, stops, str_at, u64_at, with_extra, ChatRequest};
use serde_json::{json, Value};
use std::time::Instant;

/// The request body: messages, the token limit under the endpoint's field name, greedy or
/// seeded sampling, up to four stop strings, and the endpoint's extra fields.
pub fn body(ep: &Endpoint, req: &ChatRequest<'_>) -> Value {
    let s = req.prompt.sampling;
    let mut b = json!({
        "model": ep.spec.model,
        "messages": messages_json(req, true),
        "stream": true,
        "stream_options": { "include_usage": true },
        "temperature": s.temperature,
        "seed": s.seed,
    });
    b[ep.max_tokens_field.as_str()] = json!(req.prompt.max_tokens);
    put(&mut b, "top_p", s.top_p);
    put(&mut b, "stop", stops(req, |s| !s.is_empty(), 4));
    let format = req.json_schema.map(|schema| {
        json!({ "type": "json_schema", "json_schema": { "name": "scores", "schema": schema } })
    });
    put(&mut b, "response_format", format);
    with_extra(b, ep)
}

/// Sends one request and reads its stream to the end.
pub fn request(client: &Client, ep: &Endpoint, req: &ChatRequest<'_>) -> Exchange {
    let post = http::Post {
        path: "/chat/completions",
        body: body(ep, req),
        headers: http::bearer(ep),
    };
    http::sse_exchange(client, ep, &post, req, on_event)
}

/// Applies one event; `Ok(false)` after `[DONE]`.
pub fn on_event(ev: &sse::Event, at: Instant, x: &mut Exchange, ep: &Endpoint) -> Handled {
    let data = ev.data.trim();
    if ev.event == "error" {
        return Err(stream_error(data, ep));
    }
    if data == "[DONE]" {
        x.done = true;
        return Ok(false);
    }
    let v: Value = serde_json::from_str(data).map_err(|e| http::not_json("event", &e, data, ep))?;
    if v.get("error").is_some() {
        return Err(stream_error(data, ep));
    }
    x.server.model = str_at(&v, "/model")
        .map(String::from)
        .or(x.server.model.take());
    // Only the first choice is the answer (a server asked for one may still send others).
    let first = |c: &&Value| c.get("index").is_none_or(|i| i.as_u64() == Some(0));
    for choice in v
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(first)
    {
        x.text(str_at(choice, "/delta/content").unwrap_or(""), at)?;
        let reason = str_at(choice, "/finish_reason").map(String::from);
        x.server.finish_reason = reason.or(x.server.finish_reason.take());
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        usage(u, x);
    }
    if let Some(t) = v.get("timings").filter(|t| t.is_object()) {
        timings(t, x);
    }
    Ok(true)
}

fn usage(u: &Value, x: &mut Exchange) {
    x.output_count(u, "/completion_tokens");
    let s = &mut x.server;
    s.prompt_tokens = u64_at(u, "/prompt_tokens").or(s.prompt_tokens);
    s.cached_prompt_tokens =
        u64_at(u, "/prompt_tokens_details/cached_tokens").or(s.cached_prompt_tokens);
    s.cost_usd = f64_at(u, "/cost").or(s.cost_usd);
    x.usage = s.output_tokens.is_some();
}

/// llama-server's `timings` block.
fn timings(t: &Value, x: &mut Exchange) {
    let s = &mut x.server;
    s.prompt_ms = f64_at(t, "/prompt_ms");
    s.prompt_tps = f64_at(t, "/prompt_per_second");
    s.decode_ms = f64_at(t, "/predicted_ms");
    s.decode_tps = f64_at(t, "/predicted_per_second");
    if let Some(c) = u64_at(t, "/cache_n") {
        s.cached_prompt_tokens.get_or_insert(c);
    }
}

fn stream_error(data: &str, ep: &Endpoint) -> Failure {
    let msg = serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|v| http::error_message(&v))
        .unwrap_or_else(|| data.to_string());
    http::server_error(&msg, ep)
}
