//! One streamed HTTP answer as runner sees it: text chunks stamped on one monotonic clock as
//! they arrive, what the server reported, and why the exchange failed if it did.

use super::report::ServerReport;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a request failed, as a kind (recorded as `error_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing listens at the address (or the host does not resolve).
    Refused,
    /// The connection broke before the answer was complete.
    Reset,
    /// The server answered with an HTTP error status.
    HttpStatus,
    /// HTTP 429 and the retries allowed did not get through.
    RateLimited,
    /// A line of the stream is not the JSON the protocol documents.
    Malformed,
    /// The server reported an error inside the stream.
    StreamError,
    /// The answer was not complete within the request's time limit.
    TimeLimit,
    /// The stream ended without its final event.
    Truncated,
    /// The stream ended properly but without token counts.
    NoUsage,
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Reset => "reset",
            FailureKind::HttpStatus => "http_status",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Malformed => "malformed",
            FailureKind::StreamError => "stream_error",
            FailureKind::TimeLimit => "time_limit",
            FailureKind::Truncated => "truncated",
            FailureKind::NoUsage => "no_usage",
            FailureKind::Other => "other",
        }
    }
}

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

    /// Start → first non-empty text chunk.
    pub fn ttft(&self) -> Option<Duration> {
        self.chunks.first().copied()
    }

    /// Gaps between consecutive text chunks.
    pub fn gaps(&self) -> Vec<Duration> {
        self.chunks
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect()
    }

    /// (tokens − 1) / (last chunk − first chunk). The tokens are the server's output-token
    /// count, or the chunk count when the server streams one token per chunk (llama-server,
    /// Ollama) and its count only adds the end-of-generation token, which streams no text.
    /// `None` when the count is unknown, below 2, or the chunks span no time.
    pub fn decode_tps(&self) -> Option<f64> {
        let counted = self.server.output_tokens?;
        let chunks = self.chunks.len() as u64;
        let tokens = if counted.saturating_sub(chunks) <= 1 {
            chunks.min(counted)
        } else {
            counted
        };
        let (first, last) = (self.chunks.first()?, self.chunks.last()?);
        let span = last.saturating_sub(*first);
        (tokens >= 2 && !span.is_zero()).then(|| (tokens - 1) as f64 / span.as_secs_f64())
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

/// Milliseconds of a duration in nanoseconds (Ollama's unit); `None` stays `None`.
pub fn ns_to_ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttft_gaps_and_decode_rate_over_injected_times() {
        let t0 = Instant::now();
        let mut x = Exchange::new(t0);
        x.text("", t0 + Duration::from_millis(5)); // a role-only chunk: not text
        x.text("Hel", t0 + Duration::from_millis(120));
        x.text("lo", t0 + Duration::from_millis(150));
        x.text("", t0 + Duration::from_millis(160));
        x.text(" world", t0 + Duration::from_millis(220));
        assert_eq!(x.ttft(), Some(Duration::from_millis(120)));
        assert_eq!(
            x.gaps(),
            vec![Duration::from_millis(30), Duration::from_millis(70)]
        );
        assert_eq!(x.text, "Hello world");
        assert_eq!(x.decode_tps(), None, "no token count yet");
        x.server.output_tokens = Some(5);
        // chunks carry several tokens: (5 - 1) tokens over 100 ms
        let r = x.decode_tps().unwrap();
        assert!((r - 40.0).abs() < 1e-9, "{r}");
        // one token per chunk, plus an end token that streamed nothing: (3 - 1) over 100 ms
        x.server.output_tokens = Some(4);
        let r = x.decode_tps().unwrap();
        assert!((r - 20.0).abs() < 1e-9, "{r}");
        x.server.output_tokens = Some(3);
        assert!((x.decode_tps().unwrap() - 20.0).abs() < 1e-9);
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
}
