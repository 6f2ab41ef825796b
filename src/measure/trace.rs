//! A request as a backend observed it, and the figures every command reports from it: one
//! definition of each, used in-process and over HTTP alike.
//!
//! - TTFT: start (sending the request, or starting prompt evaluation in-process) → the first
//!   non-empty piece of text.
//! - ITL: the gaps between consecutive generated tokens (in-process) or streamed text chunks
//!   (HTTP; a chunk may carry several tokens).
//! - Decode rate: (tokens − 1) / (t_last − t_first).
//! - Prompt rate: prompt tokens / prompt-evaluation time (in-process only).

use super::histogram::{HistogramSummary, LatencyHistogram};
use std::time::Duration;

crate::util::names::named_enum! {
    /// Why generation ended.
    pub enum StopReason {
        /// An end-of-generation token (end of sequence or of turn).
        Eos = "eos",
        /// The text contained one of the stop strings.
        StopString = "stop_string",
        /// `max_tokens` tokens were generated.
        MaxTokens = "max_tokens",
        /// The time limit passed (during prompt evaluation, a decode call or between tokens).
        TimeLimit = "time_limit",
        /// The request failed (its error is recorded).
        Error = "error",
    }
}

crate::util::names::named_enum! {
    /// Why a request failed, as a kind (recorded as `error_kind`).
    pub enum FailureKind {
        /// Nothing listens at the address (or the host does not resolve).
        Refused = "refused",
        /// The connection broke before the answer was complete.
        Reset = "reset",
        /// The server answered with an HTTP error status.
        HttpStatus = "http_status",
        /// HTTP 429 and the retries allowed did not get through.
        RateLimited = "rate_limited",
        /// A line of the stream is not the JSON the protocol documents, or the answer is not
        /// the stream asked for (not well-formed HTTP, or typed as something else).
        Malformed = "malformed",
        /// The server reported an error inside the stream.
        StreamError = "stream_error",
        /// The answer was not complete within the request's time limit.
        TimeLimit = "time_limit",
        /// The stream ended without its final event.
        Truncated = "truncated",
        /// The stream ended properly but without token counts.
        NoUsage = "no_usage",
        /// The stream went on past what the request's token limit allows (in text chunks or
        /// in bytes of text).
        OverLimit = "over_limit",
        Other = "other",
    }
}

/// What a timestamp of [`Trace::tokens`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenUnit {
    /// One generated token (in-process).
    #[default]
    Token,
    /// One non-empty streamed text chunk, which may carry several tokens (HTTP).
    Chunk,
}

/// Time spent inside llama.cpp during a request (in-process only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineTime {
    /// Prompt evaluation.
    pub prompt: Duration,
    /// Decode calls between the first and the last generated token.
    pub decode: Duration,
}

/// One request as observed, every time from its start.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    pub prompt_tokens: u32,
    /// Generated tokens: counted in-process, reported by the server over HTTP (`None` when it
    /// reported none).
    pub output_tokens: Option<u64>,
    /// Start → prompt evaluated (in-process).
    pub prompt_eval: Option<Duration>,
    /// Start → the first non-empty piece of text.
    pub first_text: Option<Duration>,
    /// Start → each generated token, or each streamed chunk (see `unit`).
    pub tokens: Vec<Duration>,
    pub unit: TokenUnit,
    /// Start → end of the request.
    pub end: Duration,
    pub engine: Option<EngineTime>,
    pub text: String,
    pub stop: Option<StopReason>,
}

/// The figures of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub ttft: Option<Duration>,
    /// Prompt tokens / prompt-evaluation seconds.
    pub prompt_tps: Option<f64>,
    /// (tokens − 1) / (last − first timestamp), in tokens per second.
    pub decode_tps: Option<f64>,
    pub e2e: Duration,
    pub itl: Option<HistogramSummary>,
    /// Time between the first and the last token spent outside llama.cpp's decode calls
    /// (in-process).
    pub harness: Option<Duration>,
}

impl Trace {
    /// Gaps between consecutive timestamps.
    pub fn gaps(&self) -> impl Iterator<Item = Duration> + '_ {
        self.tokens.windows(2).map(|w| w[1].saturating_sub(w[0]))
    }

    /// The first to last timestamp.
    pub fn span(&self) -> Option<Duration> {
        Some(self.tokens.last()?.saturating_sub(*self.tokens.first()?))
    }

    /// The tokens the timestamps span: each timestamp is a token in-process; over HTTP the
    /// server's count, or the chunk count when the server streams one token per chunk and its
    /// count only adds the end-of-generation token (which streams no text).
    pub fn tokens_spanned(&self) -> Option<u64> {
        let stamps = self.tokens.len() as u64;
        match self.unit {
            TokenUnit::Token => Some(stamps),
            TokenUnit::Chunk => {
                let counted = self.output_tokens?;
                Some(match counted.saturating_sub(stamps) <= 1 {
                    true => stamps.min(counted),
                    false => counted,
                })
            }
        }
    }

    pub fn metrics(&self) -> Metrics {
        let span = self.span().filter(|s| !s.is_zero());
        let decode_tps = match (self.tokens_spanned(), span) {
            (Some(n), Some(span)) if n >= 2 => Some((n - 1) as f64 / span.as_secs_f64()),
            _ => None,
        };
        let prompt_tps = self
            .prompt_eval
            .filter(|d| !d.is_zero() && self.prompt_tokens > 0)
            .map(|d| f64::from(self.prompt_tokens) / d.as_secs_f64());
        let harness = match (self.engine, self.span()) {
            (Some(e), Some(span)) => Some(span.saturating_sub(e.decode)),
            _ => None,
        };
        let mut itl = LatencyHistogram::new();
        self.gaps().for_each(|gap| itl.record(gap));
        Metrics {
            ttft: self.first_text,
            prompt_tps,
            decode_tps,
            e2e: self.end,
            itl: itl.summary(),
            harness,
        }
    }
}

/// The gaps between recorded token times (milliseconds since a request's start) of several
/// requests, pooled in one histogram.
pub fn itl_histogram_ms<'a>(token_ms: impl IntoIterator<Item = &'a [f64]>) -> LatencyHistogram {
    let mut h = LatencyHistogram::new();
    for times in token_ms {
        for gap in gaps_ms(times) {
            h.record_ms(gap);
        }
    }
    h
}

/// The gaps between recorded token times (milliseconds since a request's start).
pub fn gaps_ms(token_ms: &[f64]) -> impl Iterator<Item = f64> + '_ {
    token_ms.windows(2).map(|w| w[1] - w[0])
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn in_process_figures_follow_their_definitions() {
        let t = Trace {
            prompt_tokens: 100,
            output_tokens: Some(3),
            prompt_eval: Some(d(50)),
            first_text: Some(d(80)),
            tokens: vec![d(60), d(80), d(100)],
            end: d(101),
            engine: Some(EngineTime {
                prompt: d(50),
                decode: d(39),
            }),
            ..Default::default()
        };
        let m = t.metrics();
        assert!((m.prompt_tps.unwrap() - 2000.0).abs() < 1e-6);
        // (3 - 1) tokens / (100 - 60) ms
        assert!((m.decode_tps.unwrap() - 50.0).abs() < 1e-6);
        assert_eq!(
            m.ttft,
            Some(d(80)),
            "TTFT is the first text, not the first token"
        );
        assert_eq!(m.e2e, d(101));
        assert_eq!(m.harness, Some(d(1)));
        assert_eq!(m.itl.unwrap().count, 2);
        let none = Trace::default().metrics();
        assert!(none.decode_tps.is_none() && none.prompt_tps.is_none() && none.itl.is_none());
    }

    #[test]
    fn streamed_chunks_count_the_servers_tokens() {
        let mut t = Trace {
            unit: TokenUnit::Chunk,
            tokens: vec![d(120), d(150), d(220)],
            ..Default::default()
        };
        assert_eq!(t.metrics().decode_tps, None, "no token count yet");
        // chunks carry several tokens: (5 - 1) tokens over 100 ms
        t.output_tokens = Some(5);
        assert!((t.metrics().decode_tps.unwrap() - 40.0).abs() < 1e-9);
        // one token per chunk plus an end token that streamed nothing: (3 - 1) over 100 ms
        t.output_tokens = Some(4);
        assert!((t.metrics().decode_tps.unwrap() - 20.0).abs() < 1e-9);
        t.output_tokens = Some(3);
        assert!((t.metrics().decode_tps.unwrap() - 20.0).abs() < 1e-9);
        assert_eq!(t.metrics().prompt_tps, None, "no prompt time over HTTP");
    }

    #[test]
    fn pooled_gaps_from_recorded_times() {
        let h = itl_histogram_ms([&[10.0, 12.5, 16.0][..], &[1.0, 2.0][..], &[][..]]);
        let s = h.summary().unwrap();
        assert_eq!(s.count, 3);
        assert!((s.max_ms - 3.5).abs() < 0.01 && (s.min_ms - 1.0).abs() < 0.01);
        assert_eq!(StopReason::StopString.as_str(), "stop_string");
        assert_eq!(
            serde_json::to_value(FailureKind::HttpStatus).unwrap(),
            "http_status"
        );
    }
}
