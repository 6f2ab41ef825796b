//! Anthropic's Messages API, streamed: `POST {base}/v1/messages` with `stream: true`,
//! answered with server-sent events `message_start` (usage so far), `content_block_start`,
//! `content_block_delta` (`text_delta`), `content_block_stop`, `message_delta` (stop reason
//! and output tokens), `message_stop`, `ping` and `error`.

use super::exchange::Exchange;
use super::http::{self, Client, Handled};
use super::spec::Endpoint;
use super::{messages_json, put, sse, stops, str_at, system_text, u64_at, with_extra, ChatRequest};
use serde_json::{json, Value};
use std::time::Instant;

/// The API version runner speaks.
pub const API_VERSION: &str = "2023-06-01";

/// The request body: the system prompt apart, user and assistant turns, the token limit,
/// sampling and stop sequences (the API refuses whitespace-only ones: those are applied by
/// runner to the text instead).
pub fn body(ep: &Endpoint, req: &ChatRequest<'_>) -> Value {
    let s = req.prompt.sampling;
    let mut b = json!({
        "model": ep.spec.model,
        "max_tokens": req.prompt.max_tokens,
        "messages": messages_json(req, false),
        "stream": true,
        "temperature": s.temperature.min(1.0),
    });
    put(&mut b, "system", system_text(req));
    put(&mut b, "top_p", s.top_p);
    put(&mut b, "top_k", s.top_k);
    put(
        &mut b,
        "stop_sequences",
        stops(req, |s| !s.trim().is_empty(), usize::MAX),
    );
    with_extra(b, ep)
}

/// Sends one request and reads its stream to the end.
pub fn request(client: &Client, ep: &Endpoint, req: &ChatRequest<'_>) -> Exchange {
    let mut headers: Vec<(&str, String)> = vec![("anthropic-version", API_VERSION.into())];
    if let Some(k) = &ep.key {
        headers.push(("x-api-key", k.expose().to_string()));
    }
    let post = http::Post {
        path: "/v1/messages",
        body: body(ep, req),
        headers,
    };
    http::sse_exchange(client, ep, &post, req, on_event)
}

/// Applies one event; `Ok(false)` after `message_stop`.
pub fn on_event(ev: &sse::Event, at: Instant, x: &mut Exchange, ep: &Endpoint) -> Handled {
    let quoted = || http::excerpt(&http::scrub(&ev.data, ep));
    let v: Value = match serde_json::from_str(ev.data.trim()) {
        Ok(v) => v,
        // An error event is the server's error, whether or not its data is JSON.
        Err(_) if ev.event == "error" => return Err(http::server_error(&quoted(), ep)),
        Err(e) => return Err(http::not_json("event", &e, &ev.data, ep)),
    };
    let kind = str_at(&v, "/type").unwrap_or(&ev.event);
    match kind {
        "error" => {
            let msg = http::error_message(&v).unwrap_or_else(quoted);
            return Err(http::server_error(&msg, ep));
        }
        "message_start" => {
            let model = str_at(&v, "/message/model").map(String::from);
            x.server.model = model.or(x.server.model.take());
            if let Some(u) = v.pointer("/message/usage") {
                usage(u, x);
            }
        }
        "content_block_delta" if str_at(&v, "/delta/type") == Some("text_delta") => {
            x.text(str_at(&v, "/delta/text").unwrap_or(""), at)?;
        }
        "message_delta" => {
            let reason = str_at(&v, "/delta/stop_reason").map(String::from);
            x.server.finish_reason = reason.or(x.server.finish_reason.take());
            if let Some(u) = v.get("usage") {
                usage(u, x);
                x.usage = x.server.output_tokens.is_some();
            }
        }
        "message_stop" => {
            x.done = true;
            return Ok(false);
        }
        _ => {}
    }
    Ok(true)
}

/// A usage block: input tokens are new + cache reads + cache writes (a sum past `u64` is not
/// believed: no prompt count).
fn usage(u: &Value, x: &mut Exchange) {
    x.output_count(u, "/output_tokens");
    let s = &mut x.server;
    let input = u64_at(u, "/input_tokens");
    let read = u64_at(u, "/cache_read_input_tokens");
    let write = u64_at(u, "/cache_creation_input_tokens");
    if let Some(input) = input {
        s.prompt_tokens = input
            .checked_add(read.unwrap_or(0))
            .and_then(|n| n.checked_add(write.unwrap_or(0)));
        s.cached_prompt_tokens = read;
        s.cache_write_tokens = write;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_tokens_sum_the_cache_and_an_overflowing_sum_is_not_believed() {
        let mut x = Exchange::new(Instant::now());
        usage(
            &json!({ "input_tokens": 10, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5 }),
            &mut x,
        );
        assert_eq!(x.server.prompt_tokens, Some(45));
        assert_eq!(x.server.cached_prompt_tokens, Some(30));
        for (input, read, write) in [
            (u64::MAX, u64::MAX, u64::MAX),
            (u64::MAX - 4, 10, 0),
            (10, u64::MAX, 0),
            (10, 0, u64::MAX),
        ] {
            let u = json!({
                "input_tokens": input,
                "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write,
            });
            usage(&u, &mut x);
            assert_eq!(x.server.prompt_tokens, None, "{u}");
        }
        usage(&json!({ "input_tokens": u64::MAX }), &mut x);
        assert_eq!(x.server.prompt_tokens, Some(u64::MAX), "no sum to overflow");
    }
}
