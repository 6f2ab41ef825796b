//! One streamed HTTP answer as runner sees it: text chunks stamped on one monotonic clock as
//! they arrive, what the server reported, and why the exchange failed if it did.

use crate::measure::{FailureKind, StopReason, TokenUnit, Trace};
use crate::record::{HttpReport, ServerReport};
use std::time::{Duration, Instant};
use thiserror::Error;

/// A failed exchange: its kind and a one-line reason (never holding an API key).
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into().replace('\n', " "),
        }
    }
}

/// One request's stream, as it arrived.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// When runner started sending the request: every time below counts from here.
    pub start: Instant,
    pub headers: Option<Duration>,
    pub status: Option<u16>,
    /// Arrival time of each non-empty text chunk.
    pub chunks: Vec<Duration>,
    pub text: String,
    pub server: ServerReport,
    /// The protocol's final event arrived (`[DONE]`, `message_stop`, `done: true`).
    pub done: bool,
    /// A usage block (token counts) arrived.
    pub usage: bool,
    /// End of the exchange (the final event, or the failure).
    pub end: Duration,
    pub retries: u32,
    pub retry_wait: Duration,
    pub failure: Option<Failure>,
}

impl Exchange {
    pub fn new(start: Instant) -> Exchange {
        Exchange {
            start,
            headers: None,
            status: None,
            chunks: Vec::new(),
            text: String::new(),
            server: ServerReport::default(),
            done: false,
            usage: false,
            end: Duration::ZERO,
            retries: 0,
            retry_wait: Duration::ZERO,
            failure: None,
        }
    }

    /// Appends a text delta that arrived at `at`; empty deltas (a role-only chunk, an empty
    /// content block) are not text and leave the timing alone.
    pub fn text(&mut self, delta: &str, at: Instant) {
        if delta.is_empty() {
            return;
        }
        self.chunks.push(at.saturating_duration_since(self.start));
        self.text.push_str(delta);
    }

    /// The exchange as a trace: every non-empty chunk's arrival, the server's token counts,
    /// the text cut before the first stop string (servers that were not given a stop string,
    /// or refused one, run past it) and why it ended.
    pub fn trace(&self, stops: &[String]) -> Trace {
        let (text, stopped) = cut_at_stop(&self.text, stops);
        Trace {
            prompt_tokens: self
                .server
                .prompt_tokens
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            output_tokens: self.server.output_tokens,
            prompt_eval: None,
            first_text: self.chunks.first().copied(),
            tokens: self.chunks.clone(),
            unit: TokenUnit::Chunk,
            end: self.end,
            engine: None,
            text,
            stop: Some(self.stop_reason(stopped)),
        }
    }

    /// The client-side facts of the exchange, for the record.
    pub fn http_report(&self) -> HttpReport {
        HttpReport {
            headers_ms: self.headers.map(crate::measure::ms),
            chunks: self.chunks.len(),
            status: self.status,
            retries: self.retries,
            retry_wait_ms: crate::measure::ms(self.retry_wait),
        }
    }

    /// The stop reason in native's words.
    fn stop_reason(&self, stopped: bool) -> StopReason {
        if let Some(f) = &self.failure {
            return match f.kind {
                FailureKind::TimeLimit => StopReason::TimeLimit,
                _ => StopReason::Error,
            };
        }
        if stopped {
            return StopReason::StopString;
        }
        match self.server.finish_reason.as_deref() {
            Some("length" | "max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopString,
            _ => StopReason::Eos,
        }
    }

    /// Marks the end of the exchange now, and its failure if any (the first one wins).
    pub fn finish(&mut self, failure: Option<Failure>) {
        self.end = self.start.elapsed();
        if self.failure.is_none() {
            self.failure = failure;
        }
    }

    /// The failure a finished stream implies: no final event, or no token counts.
    pub fn completeness(&self) -> Option<Failure> {
        if !self.done {
            return Some(Failure::new(
                FailureKind::Truncated,
                "the stream ended before its final event",
            ));
        }
        if !self.usage {
            return Some(Failure::new(
                FailureKind::NoUsage,
                "the stream ended without token counts (usage)",
            ));
        }
        None
    }
}

/// The text cut before the first stop string, and whether one was found.
pub fn cut_at_stop(text: &str, stops: &[String]) -> (String, bool) {
    match super::native::chat::find_stop(text.as_bytes(), 0, stops) {
        Some(at) => (text[..at].to_string(), true),
        None => (text.to_string(), false),
    }
}

/// Milliseconds of a duration in nanoseconds (Ollama's unit); `None` stays `None`.
pub fn ns_to_ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_becomes_a_trace_of_chunks() {
        let t0 = Instant::now();
        let mut x = Exchange::new(t0);
        x.text("", t0 + Duration::from_millis(5)); // a role-only chunk: not text
        x.text("Hel", t0 + Duration::from_millis(120));
        x.text("lo\n\nmore", t0 + Duration::from_millis(150));
        x.server.output_tokens = Some(4);
        x.server.finish_reason = Some("length".into());
        x.done = true;
        x.usage = true;
        x.finish(None);
        let t = x.trace(&["\n\n".to_string()]);
        assert_eq!(t.first_text, Some(Duration::from_millis(120)));
        assert_eq!(t.tokens.len(), 2);
        assert_eq!(t.unit, TokenUnit::Chunk);
        assert_eq!(t.text, "Hello");
        assert_eq!(
            t.stop,
            Some(StopReason::StopString),
            "cut at the stop string"
        );
        assert_eq!(x.trace(&[]).stop, Some(StopReason::MaxTokens));
        x.failure = Some(Failure::new(FailureKind::TimeLimit, "slow"));
        assert_eq!(x.trace(&[]).stop, Some(StopReason::TimeLimit));
        assert_eq!(x.http_report().chunks, 2);
    }

    #[test]
    fn completeness_names_what_is_missing() {
        let mut x = Exchange::new(Instant::now());
        assert_eq!(x.completeness().unwrap().kind, FailureKind::Truncated);
        x.done = true;
        assert_eq!(x.completeness().unwrap().kind, FailureKind::NoUsage);
        x.usage = true;
        assert!(x.completeness().is_none());
    }

    #[test]
    fn stop_strings_cut_the_text() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(cut_at_stop("ab\n\ncd", &stops), ("ab".into(), true));
        assert_eq!(cut_at_stop("abc", &stops), ("abc".into(), false));
        assert_eq!(cut_at_stop("xENDy\n\n", &stops), ("x".into(), true));
    }
}
