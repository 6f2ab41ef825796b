//! Backends: the same scenario requests through llama.cpp in-process (`native`) or through an
//! HTTP server — Ollama (`ollama:MODEL`), any OpenAI-compatible server (`openai:MODEL`) or
//! Anthropic's Messages API (`anthropic:MODEL`) — timed on one client-side clock, with what
//! the server reports recorded beside it. Judges (any HTTP backend) score answers against a
//! rubric; a price table turns token counts into cost.

pub mod anthropic;
pub mod args;
pub mod cell;
pub mod cost;
pub mod exchange;
pub mod http;
pub mod judge;
pub mod native;
pub mod ollama;
pub mod openai;
pub mod plan;
pub mod render;
pub mod report;
pub mod request;
pub mod spec;
pub mod sse;

#[doc(hidden)]
pub mod fixture;
#[cfg(test)]
mod fixture_tests;

use crate::scenario::{Message, Prompt, Role, Sampling};
use crate::sweep::spec::CellSpec;
use exchange::Exchange;
use indicatif::ProgressBar;
use serde_json::{json, Value};
use spec::{Endpoint, Kind};
use std::time::Duration;

/// A backend runs the pending prompts of one sweep cell, appending a record for each request
/// to the results file as it completes. `Err` says why the whole cell could not run; a failed
/// request is a record, not an error.
pub trait Backend {
    fn run_cell(&self, spec: &CellSpec, bar: &ProgressBar) -> Result<(), String>;
}

/// One chat request, whatever the wire format.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    /// The messages, a system message first if any.
    pub messages: &'a [Message],
    /// A raw prompt (the scenario's `raw = true`): sent as one user message to chat APIs.
    pub raw: Option<&'a str>,
    /// The prompt rendered with the model's chat template (Ollama's raw mode).
    pub rendered: Option<&'a str>,
    pub max_tokens: u32,
    pub sampling: Sampling,
    pub stop: &'a [String],
    /// The whole answer must arrive within this time from sending the request.
    pub time_limit: Duration,
    /// Ask for JSON following this schema (judges).
    pub json_schema: Option<&'a Value>,
}

impl<'a> ChatRequest<'a> {
    /// A scenario prompt as a request.
    pub fn from_prompt(p: &'a Prompt, rendered: Option<&'a str>) -> ChatRequest<'a> {
        ChatRequest {
            messages: &p.messages,
            raw: p.raw_prompt.as_deref(),
            rendered,
            max_tokens: p.max_tokens,
            sampling: p.sampling,
            stop: &p.stop,
            time_limit: p.time_limit,
            json_schema: None,
        }
    }

    /// The prompt as one text: rendered, raw, or the messages joined with newlines.
    pub fn prompt_text(&self) -> String {
        if let Some(r) = self.rendered.or(self.raw) {
            return r.to_string();
        }
        let parts: Vec<&str> = self.messages.iter().map(|m| m.content.as_str()).collect();
        parts.join("\n")
    }
}

/// The messages as JSON `{role, content}` objects; the system message kept only when
/// `with_system` (Anthropic takes it apart).
pub fn messages_json(req: &ChatRequest<'_>, with_system: bool) -> Value {
    if let Some(raw) = req.raw {
        return json!([{ "role": "user", "content": raw }]);
    }
    let msgs: Vec<Value> = req
        .messages
        .iter()
        .filter(|m| with_system || m.role != Role::System)
        .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
        .collect();
    Value::Array(msgs)
}

/// The system prompt, if the request has one.
pub fn system_text(req: &ChatRequest<'_>) -> Option<String> {
    if req.raw.is_some() {
        return None;
    }
    req.messages
        .iter()
        .find(|m| m.role == Role::System)
        .map(|m| m.content.clone())
}

/// A whole non-negative number at a JSON pointer.
pub fn u64_at(v: &Value, pointer: &str) -> Option<u64> {
    let x = v.pointer(pointer)?;
    x.as_u64().or_else(|| {
        x.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
            .map(|f| f as u64)
    })
}

/// A finite number at a JSON pointer.
pub fn f64_at(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer)?.as_f64().filter(|f| f.is_finite())
}

/// Sends one request to an HTTP backend and reads its answer.
pub fn stream(client: &http::Client, ep: &Endpoint, req: &ChatRequest<'_>) -> Exchange {
    match ep.spec.kind {
        Kind::OpenAi => openai::request(client, ep, req),
        Kind::Anthropic => anthropic::request(client, ep, req),
        Kind::Ollama => ollama::request(client, ep, req),
        Kind::Native => {
            let mut x = Exchange::new(std::time::Instant::now());
            x.finish(Some(exchange::Failure::new(
                exchange::FailureKind::Other,
                "native is not an HTTP backend",
            )));
            x
        }
    }
}
