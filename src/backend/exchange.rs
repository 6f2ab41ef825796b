//! One streamed HTTP answer as runner sees it: text chunks stamped on one monotonic clock as
//! they arrive, what the server reported, and why the exchange failed if it did.

use super::spec::Secret;
use crate::measure::{FailureKind, StopReason, TokenUnit, Trace};
use crate::record::plausible::{MAX_MS, MAX_TPS};
use crate::record::{HttpReport, ServerReport};
use std::time::{Duration, Instant};
use thiserror::Error;

/// More tokens than any chat template adds around a prompt's text (role markers, a server's
/// default system message): templates add tens.
pub const TEMPLATE_TOKENS: u64 = 1024;

/// The most a provider's reported cost of one request (US dollars) can be believed to be.
pub const MAX_COST_USD: f64 = 1e6;

/// The most non-empty text chunks a stream may deliver for `tokens` tokens: each chunk carries
/// at least one token, and twice that plus 16 leaves room for a server that splits a token's
/// text (a character's bytes) over two chunks. More than that, and the server does not stream
/// the tokens it says, or does not honour the token limit.
pub fn chunk_allowance(tokens: u64) -> u64 {
    tokens.saturating_mul(2).saturating_add(16)
}

/// Bytes of text allowed for each chunk of a [`chunk_allowance`].
const BYTES_PER_CHUNK: u64 = 64;

/// The most bytes of text a stream may deliver for `tokens` tokens: 64 for each chunk of
/// their [`chunk_allowance`], so at least 128 a token and 1 KiB more, where real text runs to
/// a few bytes a token and no tokenizer's longest token comes near. More than that, and the
/// server does not honour the token limit (or sends its text in chunks no token limit bounds).
pub fn text_allowance(tokens: u64) -> u64 {
    chunk_allowance(tokens).saturating_mul(BYTES_PER_CHUNK)
}

/// The most characters of an output token count that is not believed kept as sent: the
/// failure names its start, and the key is taken out of it before it is cut to that.
const UNREAD_KEPT: usize = 1024;

/// The characters of such a count the failure's message shows.
const UNREAD_SHOWN: usize = 40;

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
    /// When runner started sending the attempt that answered (after HTTP 429 retries, the
    /// last one; a request that got no answer, its first): every time below counts from here.
    pub start: Instant,
    /// When runner started sending the request's first attempt.
    pub began: Instant,
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
    /// An output token count the server sent that is not a whole number of 0 or more, as
    /// sent (its first [`UNREAD_KEPT`] characters): not believed, and named when the request
    /// fails for want of a count.
    pub unread_count: Option<String>,
    /// End of the exchange (the final event, or the failure).
    pub end: Duration,
    pub retries: u32,
    pub retry_wait: Duration,
    pub failure: Option<Failure>,
    /// The request's token limit (`max_tokens`), when the stream is held to it: text past
    /// [`chunk_allowance`] or [`text_allowance`] of it ends the exchange.
    pub max_tokens: Option<u32>,
}

impl Exchange {
    pub fn new(start: Instant) -> Exchange {
        Exchange {
            start,
            began: start,
            headers: None,
            status: None,
            chunks: Vec::new(),
            text: String::new(),
            server: ServerReport::default(),
            done: false,
            usage: false,
            unread_count: None,
            end: Duration::ZERO,
            retries: 0,
            retry_wait: Duration::ZERO,
            failure: None,
            max_tokens: None,
        }
    }

    /// An exchange for a request allowed `max_tokens` tokens, held to that limit.
    pub fn limited(start: Instant, max_tokens: u32) -> Exchange {
        Exchange {
            max_tokens: Some(max_tokens),
            ..Exchange::new(start)
        }
    }

    /// Appends a text delta that arrived at `at`; empty deltas (a role-only chunk, an empty
    /// content block) are not text and leave the timing alone. A chunk past the
    /// [`chunk_allowance`] of the token limit fails the exchange (`over_limit`), and so does
    /// text past its [`text_allowance`], which is kept only up to that many bytes: a server that
    /// ignores the limit would otherwise stream until the time limit, into memory (a line of
    /// the stream may hold megabytes of text).
    pub fn text(&mut self, delta: &str, at: Instant) -> Result<(), Failure> {
        if delta.is_empty() {
            return Ok(());
        }
        self.chunks.push(at.saturating_duration_since(self.start));
        let Some(max) = self.max_tokens else {
            self.text.push_str(delta);
            return Ok(());
        };
        let over = |what: String| {
            Failure::new(
                FailureKind::OverLimit,
                format!("the server does not honour the token limit: more than {what} for max_tokens {max}"),
            )
        };
        let bytes = text_allowance(max.into());
        let room = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .saturating_sub(self.text.len());
        if delta.len() > room {
            let mut end = room;
            while !delta.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&delta[..end]);
            return Err(over(format!("{bytes} bytes of text")));
        }
        self.text.push_str(delta);
        let chunks = chunk_allowance(max.into());
        match self.chunks.len() as u64 > chunks {
            true => Err(over(format!("{chunks} text chunks"))),
            false => Ok(()),
        }
    }

    /// The output tokens of a request allowed `max_tokens`: the server's count, unless it is
    /// more than that limit, which no server honouring it reports, or fewer than the streamed
    /// chunks need (more chunks than its [`chunk_allowance`]); then the streamed chunks, each
    /// of which carries at least one token.
    pub fn output_tokens(&self, max_tokens: u32) -> Option<u64> {
        let chunks = self.chunks.len() as u64;
        match self.server.output_tokens {
            Some(n) if n > u64::from(max_tokens) || chunks > chunk_allowance(n) => Some(chunks),
            n => n,
        }
    }

    /// The server's prompt-token count for a prompt of `prompt_bytes` bytes of text, where it
    /// can be true: every prompt token but the template's covers at least one byte of the
    /// text, and no chat template adds [`TEMPLATE_TOKENS`]. Otherwise (or when the server gave
    /// none) 0, which the backend fills from its own count where it has one.
    pub fn prompt_tokens(&self, prompt_bytes: usize) -> u32 {
        self.server
            .prompt_tokens
            .filter(|&n| n <= prompt_bytes as u64 + TEMPLATE_TOKENS)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    /// Leaves out (as `None`) server timings no server could have measured for a request
    /// allowed `max_tokens` for a prompt of `prompt_bytes`, so that a record holds only figures
    /// its readers believe ([`crate::record::plausible`]):
    /// - a time or rate that is not a number, negative, or past those readers' bounds (a year,
    ///   [`MAX_TPS`]);
    /// - a time (load, prompt, decode, total) longer than the exchange itself, from the
    ///   sending of the request that was answered to the end of the answer;
    /// - a phase's time too short for the tokens it processed at [`MAX_TPS`] (no time at all
    ///   for tokens): the prompt tokens believed ([`Exchange::prompt_tokens`]) less those read
    ///   from the cache, and the output tokens ([`Exchange::output_tokens`]);
    /// - a rate and time whose product (the tokens they imply) is more than the phase can
    ///   have: the prompt's tokens (at most [`TEMPLATE_TOKENS`] past its bytes), or
    ///   `max_tokens` while decoding.
    ///
    /// A phase's rate is its tokens over its time: it goes with a time left out.
    pub fn drop_impossible_timings(&mut self, max_tokens: u32, prompt_bytes: usize) {
        // One percent and a millisecond of slack for a time the server rounds.
        let wall = crate::measure::ms(self.end) * 1.01 + 1.0;
        let prompt_cap = prompt_bytes as u64 + TEMPLATE_TOKENS;
        let cached = self.server.cached_prompt_tokens.unwrap_or(0);
        let evaluated = u64::from(self.prompt_tokens(prompt_bytes)).saturating_sub(cached);
        let generated = self.output_tokens(max_tokens).unwrap_or(0);
        let s = &mut self.server;
        let prompt_max = s.prompt_tokens.map_or(prompt_cap, |n| n.min(prompt_cap));
        let max_tokens = u64::from(max_tokens);
        let time = |v: &mut Option<f64>, tokens: u64| {
            *v = v.filter(|&ms| {
                ms.is_finite()
                    && (0.0..=MAX_MS.min(wall)).contains(&ms)
                    && ms >= tokens as f64 / MAX_TPS * 1e3
            });
        };
        time(&mut s.load_ms, 0);
        time(&mut s.total_ms, 0);
        for (ms, tps, tokens, most) in [
            (&mut s.prompt_ms, &mut s.prompt_tps, evaluated, prompt_max),
            (&mut s.decode_ms, &mut s.decode_tps, generated, max_tokens),
        ] {
            let given = ms.is_some();
            time(ms, tokens);
            *tps = tps.filter(|&r| r.is_finite() && (0.0..=MAX_TPS).contains(&r));
            // One percent and a token of slack for a rate rounded by the server.
            let possible = |tps: f64, ms: f64| tps * ms / 1e3 <= most as f64 * 1.01 + 1.0;
            let impossible = tps.zip(*ms).is_some_and(|(r, t)| !possible(r, t));
            if given && ms.is_none() || impossible {
                (*tps, *ms) = (None, None);
            }
        }
    }

    /// Leaves out (as `None`) server counts and costs that cannot be true: more cached prompt
    /// tokens than prompt tokens, and a provider cost below 0 or not below [`MAX_COST_USD`].
    pub fn drop_impossible_usage(&mut self) {
        let s = &mut self.server;
        if let (Some(cached), Some(prompt)) = (s.cached_prompt_tokens, s.prompt_tokens) {
            if cached > prompt {
                s.cached_prompt_tokens = None;
            }
        }
        s.cost_usd = s.cost_usd.filter(|c| (0.0..MAX_COST_USD).contains(c));
    }

    /// The exchange as a trace of a request allowed `max_tokens` for a prompt of
    /// `prompt_bytes`: every non-empty chunk's arrival, the prompt and output tokens
    /// ([`Exchange::prompt_tokens`], [`Exchange::output_tokens`]), the text cut before the
    /// first stop string (servers that were not given a stop string, or refused one, run past
    /// it) and why it ended.
    pub fn trace(&self, stops: &[String], max_tokens: u32, prompt_bytes: usize) -> Trace {
        let (text, stopped) = cut_at_stop(&self.text, stops);
        Trace {
            prompt_tokens: self.prompt_tokens(prompt_bytes),
            output_tokens: self.output_tokens(max_tokens),
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
        match (&self.failure, self.server.finish_reason.as_deref()) {
            (Some(f), _) if f.kind == FailureKind::TimeLimit => StopReason::TimeLimit,
            (Some(_), _) => StopReason::Error,
            _ if stopped => StopReason::StopString,
            (_, Some("length" | "max_tokens")) => StopReason::MaxTokens,
            (_, Some("stop_sequence")) => StopReason::StopString,
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

    /// Takes the API key out of everything the server sent that a record keeps: the text (and
    /// a start of the key it ends with, where a limit cut the answer off), the failure's
    /// reason, the model name, the finish reason and an output token count not believed (a
    /// server may echo the key).
    pub fn redact(&mut self, key: &Secret) {
        self.text = key.redact_cut(&self.text);
        if let Some(c) = &mut self.unread_count {
            *c = key.redact_cut(c);
        }
        if let Some(f) = &mut self.failure {
            f.message = key.redact(&f.message);
        }
        for s in [&mut self.server.model, &mut self.server.finish_reason]
            .into_iter()
            .flatten()
        {
            *s = key.redact(s);
        }
    }

    /// Takes the output token count at `pointer` in a usage block, when there is one: a
    /// count that is not a whole number of 0 or more is kept aside as sent, not believed.
    pub fn output_count(&mut self, usage: &serde_json::Value, pointer: &str) {
        let Some(given) = usage.pointer(pointer) else {
            return;
        };
        self.server.output_tokens = super::u64_at(usage, pointer);
        if self.server.output_tokens.is_none() {
            self.unread_count = Some(given.to_string().chars().take(UNREAD_KEPT).collect());
        }
    }

    /// The failure a finished stream implies: no final event, or no token counts. A count not
    /// believed is quoted by its start, `key` taken out of it first (with the start of a key
    /// the [`UNREAD_KEPT`] cut went through): cut short first, a key it held would leave its
    /// start in the message, which a redaction of the whole key no longer finds.
    pub fn completeness(&self, key: Option<&Secret>) -> Option<Failure> {
        let (kind, why) = match (self.done, self.usage, &self.unread_count) {
            (false, ..) => (
                FailureKind::Truncated,
                "the stream ended before its final event".to_string(),
            ),
            (_, false, Some(count)) => {
                let count = key.map_or_else(|| count.clone(), |k| k.redact_cut(count));
                let count: String = count.chars().take(UNREAD_SHOWN).collect();
                (
                    FailureKind::NoUsage,
                    format!(
                        "the stream's output token count ({count}) is not a whole number of 0 or more"
                    ),
                )
            }
            (_, false, None) => (
                FailureKind::NoUsage,
                "the stream ended without token counts (usage)".to_string(),
            ),
            _ => return None,
        };
        Some(Failure::new(kind, why))
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
    use serde_json::json;

    #[test]
    fn a_stream_becomes_a_trace_of_chunks() {
        let t0 = Instant::now();
        let mut x = Exchange::new(t0);
        x.text("", t0 + Duration::from_millis(5)).unwrap(); // a role-only chunk: not text
        x.text("Hel", t0 + Duration::from_millis(120)).unwrap();
        x.text("lo\n\nmore", t0 + Duration::from_millis(150))
            .unwrap();
        x.server.output_tokens = Some(4);
        x.server.finish_reason = Some("length".into());
        x.done = true;
        x.usage = true;
        x.finish(None);
        let t = x.trace(&["\n\n".to_string()], 64, 100);
        assert_eq!(t.first_text, Some(Duration::from_millis(120)));
        assert_eq!(t.tokens.len(), 2);
        assert_eq!(t.unit, TokenUnit::Chunk);
        assert_eq!(t.text, "Hello");
        assert_eq!(
            t.stop,
            Some(StopReason::StopString),
            "cut at the stop string"
        );
        assert_eq!(x.trace(&[], 64, 100).stop, Some(StopReason::MaxTokens));
        x.failure = Some(Failure::new(FailureKind::TimeLimit, "slow"));
        assert_eq!(x.trace(&[], 64, 100).stop, Some(StopReason::TimeLimit));
        assert_eq!(x.http_report().chunks, 2);
    }

    #[test]
    fn counts_and_timings_past_the_token_limit_are_not_believed() {
        let t0 = Instant::now();
        let mut x = Exchange::new(t0);
        x.text("a", t0 + Duration::from_millis(100)).unwrap();
        x.text("b", t0 + Duration::from_millis(110)).unwrap();
        x.text("c", t0 + Duration::from_millis(120)).unwrap();
        for (reported, used) in [
            (Some(40), Some(40)),
            (Some(u64::MAX), Some(3)),
            (None, None),
        ] {
            x.server.output_tokens = reported;
            assert_eq!(x.trace(&[], 64, 100).output_tokens, used, "{reported:?}");
        }
        // A prompt of 100 bytes is at most 100 + TEMPLATE_TOKENS tokens.
        for (reported, used) in [
            (Some(30), 30),
            (Some(1124), 1124),
            (Some(1125), 0),
            (Some(u64::MAX), 0),
            (None, 0),
        ] {
            x.server.prompt_tokens = reported;
            assert_eq!(x.trace(&[], 64, 100).prompt_tokens, used, "{reported:?}");
        }
        x.server.output_tokens = Some(4_294_967_295);
        let m = x.trace(&[], 64, 100).metrics();
        assert!(
            (m.decode_tps.unwrap() - 100.0).abs() < 1e-6,
            "(3 - 1) chunks over 20 ms"
        );
        // llama-server's timings in an exchange of a second: 40 tokens in 400 ms is 100 tok/s;
        // 1e308 tok/s is not.
        x.end = Duration::from_secs(1);
        let s = &mut x.server;
        (s.prompt_tokens, s.prompt_ms, s.prompt_tps) = (Some(20), Some(10.0), Some(2000.0));
        (s.decode_ms, s.decode_tps) = (Some(400.0), Some(100.0));
        x.drop_impossible_timings(64, 100);
        assert_eq!(x.server.decode_tps, Some(100.0));
        assert_eq!(x.server.prompt_tps, Some(2000.0));
        x.server.decode_tps = Some(1e308);
        x.server.prompt_ms = Some(-1.0);
        x.drop_impossible_timings(64, 100);
        let s = &x.server;
        assert_eq!((s.decode_tps, s.prompt_ms), (None, None));
        assert_eq!(s.decode_ms, Some(400.0), "a true time without its rate");
        assert_eq!(s.prompt_tps, None, "a rate over a time left out");
        x.server.prompt_tps = Some(2000.0);
        x.drop_impossible_timings(64, 100);
        assert_eq!(
            x.server.prompt_tps,
            Some(2000.0),
            "a rate given without a time: none to check it against"
        );
    }

    /// The server's report after `drop_impossible_timings` on an exchange of `wall` that
    /// streamed 3 chunks for a prompt of 100 bytes, allowed 8 tokens.
    fn believed(wall: Duration, server: ServerReport) -> ServerReport {
        let t0 = Instant::now();
        let mut x = Exchange::new(t0);
        for ms in [10, 20, 30] {
            x.text("x", t0 + Duration::from_millis(ms)).unwrap();
        }
        x.end = wall;
        x.server = server;
        x.drop_impossible_timings(8, 100);
        x.server
    }

    #[test]
    fn server_timings_past_the_readers_bounds_or_the_exchange_are_left_out() {
        let wall = Duration::from_millis(50);
        let counts = ServerReport {
            prompt_tokens: Some(10),
            output_tokens: Some(3),
            ..Default::default()
        };
        // What a real server says is kept.
        let real = ServerReport {
            prompt_ms: Some(5.0),
            prompt_tps: Some(2000.0),
            decode_ms: Some(20.0),
            decode_tps: Some(150.0),
            load_ms: Some(0.001),
            total_ms: Some(45.0),
            ..counts.clone()
        };
        assert_eq!(believed(wall, real.clone()), real);
        let timings = |prompt_ms, prompt_tps, decode_ms, decode_tps| ServerReport {
            prompt_ms,
            prompt_tps,
            decode_ms,
            decode_tps,
            ..counts.clone()
        };
        // llama-server's timings: 1e300 ms, no time for 3 tokens, 1e308 tok/s; then a time
        // longer than the exchange, 1e-300 ms for 3 tokens and its 1e300 tok/s.
        for server in [
            timings(Some(1e300), None, Some(0.0), Some(1e308)),
            timings(Some(5e6), Some(1e-300), Some(1e-300), Some(1e300)),
            timings(Some(f64::NAN), Some(f64::INFINITY), Some(51.6), Some(58.0)),
        ] {
            let s = believed(wall, server.clone());
            assert_eq!(s, counts, "{server:?}");
        }
        // Ollama's durations of 2^64 - 1 ns, and a prompt count of 2^64 - 1 (whose rate over
        // a real time is past any) with its time kept.
        let ns = ns_to_ms(Some(u64::MAX));
        let ollama = ServerReport {
            load_ms: ns,
            total_ms: ns,
            prompt_ms: ns,
            decode_ms: ns,
            prompt_tps: Some(10.0 / ns.unwrap() * 1e3),
            decode_tps: Some(3.0 / ns.unwrap() * 1e3),
            ..counts.clone()
        };
        assert_eq!(believed(wall, ollama), counts);
        let huge = ServerReport {
            prompt_tokens: Some(u64::MAX),
            prompt_ms: Some(5.0),
            prompt_tps: Some(u64::MAX as f64 / 5.0 * 1e3),
            ..counts.clone()
        };
        let s = believed(wall, huge);
        assert_eq!((s.prompt_ms, s.prompt_tps), (Some(5.0), None));
    }

    #[test]
    fn a_stream_past_the_token_limit_fails_and_outnumbered_counts_are_not_believed() {
        let t0 = Instant::now();
        let mut x = Exchange::limited(t0, 8);
        let allowed = chunk_allowance(8);
        assert_eq!(allowed, 32);
        for i in 0..allowed {
            x.text("x", t0 + Duration::from_millis(i)).unwrap();
        }
        let f = x.text("x", t0).unwrap_err();
        assert_eq!(f.kind, FailureKind::OverLimit);
        assert!(f.message.contains("does not honour the token limit"), "{f}");
        assert!(
            x.text("", t0).is_ok(),
            "an empty delta is no chunk: {}",
            x.chunks.len()
        );
        // Unlimited (as built by hand) it goes on.
        let mut y = Exchange::new(t0);
        for _ in 0..1000 {
            y.text("x", t0).unwrap();
        }
        // 33 chunks cannot carry 3 tokens (at most 2 × 3 + 16 chunks): the chunks count.
        x.server.output_tokens = Some(3);
        assert_eq!(x.output_tokens(64), Some(33));
        x.server.output_tokens = Some(9);
        assert_eq!(x.output_tokens(64), Some(9), "33 chunks may carry 9 tokens");
        y.server.output_tokens = Some(3);
        assert_eq!(y.output_tokens(u32::MAX), Some(1000));
        assert_eq!(chunk_allowance(u64::MAX), u64::MAX);
    }

    /// Few chunks of huge text fail the exchange as many chunks do, the text kept up to the
    /// allowance and cut at a character's boundary.
    #[test]
    fn text_past_the_bytes_the_token_limit_allows_fails_the_exchange() {
        let t0 = Instant::now();
        let mut x = Exchange::limited(t0, 8);
        assert_eq!(text_allowance(8), 2048);
        x.text(&"x".repeat(2001), t0).unwrap();
        let f = x.text(&"é".repeat(100), t0).unwrap_err();
        assert_eq!(f.kind, FailureKind::OverLimit);
        assert_eq!(
            f.message,
            "the server does not honour the token limit: more than 2048 bytes of text for max_tokens 8"
        );
        assert_eq!(x.text.len(), 2047, "up to the last whole character");
        assert_eq!(x.text.matches('é').count(), 23);
        assert_eq!(x.chunks.len(), 2);
        // Exactly the allowance is allowed.
        let mut y = Exchange::limited(t0, 8);
        y.text(&"x".repeat(2048), t0).unwrap();
        assert!(y.text("x", t0).is_err());
        // Unlimited (as built by hand) it goes on.
        let mut z = Exchange::new(t0);
        z.text(&"x".repeat(1 << 20), t0).unwrap();
        assert_eq!(text_allowance(u64::MAX), u64::MAX);
    }

    #[test]
    fn cached_counts_above_the_prompt_and_absurd_costs_are_not_believed() {
        let mut x = Exchange::new(Instant::now());
        for (prompt, cached, kept) in [
            (Some(10), Some(10), Some(10)),
            (Some(10), Some(4), Some(4)),
            (Some(10), Some(1_000_000), None),
            (None, Some(7), Some(7)),
        ] {
            (x.server.prompt_tokens, x.server.cached_prompt_tokens) = (prompt, cached);
            x.drop_impossible_usage();
            assert_eq!(x.server.cached_prompt_tokens, kept, "{prompt:?} {cached:?}");
        }
        for (cost, kept) in [
            (0.0, Some(0.0)),
            (0.002, Some(0.002)),
            (999_999.0, Some(999_999.0)),
            (-5.0, None),
            (-0.0001, None),
            (1e6, None),
            (1e308, None),
        ] {
            x.server.cost_usd = Some(cost);
            x.drop_impossible_usage();
            assert_eq!(x.server.cost_usd, kept, "{cost}");
        }
    }

    #[test]
    fn completeness_names_what_is_missing() {
        let mut x = Exchange::new(Instant::now());
        assert_eq!(x.completeness(None).unwrap().kind, FailureKind::Truncated);
        x.done = true;
        assert_eq!(x.completeness(None).unwrap().kind, FailureKind::NoUsage);
        // A count that cannot be true is named, not called missing.
        for (sent, shown) in [
            (json!(-5), "-5"),
            (json!(2.5), "2.5"),
            (json!("7"), "\"7\""),
        ] {
            let mut y = Exchange::new(Instant::now());
            y.done = true;
            y.output_count(&json!({ "n": sent }), "/n");
            y.usage = y.server.output_tokens.is_some();
            let f = y.completeness(None).unwrap();
            assert_eq!(f.kind, FailureKind::NoUsage);
            assert_eq!(
                f.message,
                format!(
                    "the stream's output token count ({shown}) is not a whole number of 0 or more"
                )
            );
        }
        x.output_count(&json!({ "n": 12 }), "/n");
        x.output_count(&json!({}), "/n");
        assert_eq!(x.server.output_tokens, Some(12));
        // A later count that cannot be true replaces an earlier one (Anthropic's
        // message_start count): it is not believed, and neither is the stale one.
        let mut y = x.clone();
        y.output_count(&json!({ "n": -5 }), "/n");
        assert_eq!(y.server.output_tokens, None);
        x.usage = true;
        assert!(x.completeness(None).is_none());
    }

    /// A server that sends the API key as its output token count: the failure quotes the
    /// count's start with the key taken out before the cut, so no start of a long key is left.
    #[test]
    fn a_key_sent_as_the_token_count_leaves_no_start_in_the_failure() {
        let key = format!("sk-long-{}", "0123456789abcdef".repeat(10));
        let secret = Secret::new(key.clone());
        for sent in [
            json!(key),
            json!(format!("{}{key}", "a".repeat(30))),
            json!({ "n": key }),
            json!(format!("{}{key}", " ".repeat(1000))),
        ] {
            let mut x = Exchange::new(Instant::now());
            x.done = true;
            x.output_count(&json!({ "n": sent }), "/n");
            let f = x.completeness(Some(&secret)).expect("no count believed");
            assert_eq!(f.kind, FailureKind::NoUsage);
            x.finish(Some(f));
            x.redact(&secret);
            let shown = format!("{x:?}");
            assert!(!shown.contains(&key[..4]), "{shown}");
            let message = &x.failure.as_ref().unwrap().message;
            assert!(
                message.starts_with("the stream's output token count ("),
                "{message}"
            );
        }
        let mut x = Exchange::new(Instant::now());
        x.done = true;
        x.output_count(&json!({ "n": key }), "/n");
        assert_eq!(
            x.completeness(Some(&secret)).unwrap().message,
            "the stream's output token count (\"[redacted]\") is not a whole number of 0 or more"
        );
    }

    #[test]
    fn stop_strings_cut_the_text() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(cut_at_stop("ab\n\ncd", &stops), ("ab".into(), true));
        assert_eq!(cut_at_stop("abc", &stops), ("abc".into(), false));
        assert_eq!(cut_at_stop("xENDy\n\n", &stops), ("x".into(), true));
    }
}
