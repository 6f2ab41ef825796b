//! The HTTP side of the backends, over `ureq` (rustls for HTTPS): a streamed POST with the
//! request's time limit as a deadline on every read, bounded retries after HTTP 429, and
//! errors sorted into failure kinds with any API key scrubbed from their text.

use super::exchange::{Exchange, Failure};
use super::spec::Endpoint;
use crate::measure::FailureKind;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

/// At most this many retries after HTTP 429, however short the waits.
const MAX_RETRIES: u32 = 5;
/// Bytes of an error body kept for the message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// The longest line of a stream runner reads; a longer one is malformed (a server sending
/// megabytes without a line break would otherwise grow the buffer without bound).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// A client shared by a cell's requests (connections are kept alive between them).
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

/// A response whose body is being streamed.
pub type Response = ureq::http::Response<ureq::Body>;

impl Client {
    pub fn new() -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("runner/", env!("CARGO_PKG_VERSION")))
            .max_idle_age(Duration::from_secs(30))
            .build();
        Client {
            agent: config.new_agent(),
        }
    }

    /// POSTs the body as JSON to `ep.base_url + post.path` and returns the response once its
    /// headers arrived with a success status, retrying after HTTP 429 as long as the
    /// endpoint's retry budget allows. `x.start` is reset at each attempt: timings count
    /// from the attempt that answered.
    pub fn post_stream(
        &self,
        ep: &Endpoint,
        post: &Post<'_>,
        time_limit: Duration,
        x: &mut Exchange,
    ) -> Result<Response, Failure> {
        let url = format!("{}{}", ep.base_url, post.path);
        let payload = serde_json::to_vec(&post.body)
            .map_err(|e| Failure::new(FailureKind::Other, format!("request body: {e}")))?;
        loop {
            x.start = Instant::now();
            let mut req =
                timed(self.agent.post(&url), time_limit).header("content-type", "application/json");
            for (k, v) in &ep.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            for (k, v) in &post.headers {
                req = req.header(*k, v.as_str());
            }
            let mut resp = req.send(&payload[..]).map_err(|e| classify(&e, ep, &url))?;
            x.headers = Some(x.start.elapsed());
            let status = resp.status().as_u16();
            x.status = Some(status);
            if status < 400 {
                return Ok(resp);
            }
            let wait = retry_after(&resp, x.retries);
            let message = error_body(&mut resp, ep);
            if status == 429 {
                if let Some(w) = wait
                    .filter(|w| x.retries < MAX_RETRIES && x.retry_wait + *w <= ep.max_retry_wait)
                {
                    std::thread::sleep(w);
                    x.retries += 1;
                    x.retry_wait += w;
                    continue;
                }
                return Err(Failure::new(
                    FailureKind::RateLimited,
                    format!(
                        "HTTP 429 after {} retries ({:.1} s waited): {message}",
                        x.retries,
                        x.retry_wait.as_secs_f64()
                    ),
                ));
            }
            return Err(Failure::new(
                FailureKind::HttpStatus,
                format!("HTTP {status}: {message}"),
            ));
        }
    }

    /// GETs (or POSTs, with a body) a small JSON document, for preflight checks.
    pub fn json(
        &self,
        ep: &Endpoint,
        path: &str,
        body: Option<&serde_json::Value>,
        time_limit: Duration,
    ) -> Result<serde_json::Value, Failure> {
        let url = format!("{}{}", ep.base_url, path);
        let result = match body {
            None => timed(self.agent.get(&url), time_limit).call(),
            Some(b) => timed(self.agent.post(&url), time_limit)
                .header("content-type", "application/json")
                .send(b.to_string().as_bytes()),
        };
        let mut resp = result.map_err(|e| classify(&e, ep, &url))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let message = error_body(&mut resp, ep);
            return Err(Failure::new(
                FailureKind::HttpStatus,
                format!("{path}: HTTP {status}: {message}"),
            ));
        }
        let mut text = String::new();
        resp.body_mut()
            .as_reader()
            .take(4 << 20)
            .read_to_string(&mut text)
            .map_err(|e| io_failure(&e, ep))?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::new(FailureKind::Malformed, format!("{path}: not JSON: {e}")))
    }
}

/// The request, given `limit` in all (connecting, sending, reading the whole answer).
fn timed<B>(req: ureq::RequestBuilder<B>, limit: Duration) -> ureq::RequestBuilder<B> {
    req.config().timeout_global(Some(limit)).build()
}

/// A streamed POST: the path under the base URL, the JSON body and the request's own headers.
pub struct Post<'a> {
    pub path: &'a str,
    pub body: serde_json::Value,
    pub headers: Vec<(&'a str, String)>,
}

/// What applies one server-sent event to an exchange: `Ok(false)` ends the stream.
pub type OnEvent = fn(&super::sse::Event, Instant, &mut Exchange, &Endpoint) -> Handled;

/// Whether a stream goes on after an event, or why it failed.
pub type Handled = Result<bool, Failure>;

/// Sends a streamed POST and reads its server-sent events to the end, applying `on_event` to
/// each (`Ok(false)` ends the stream): one exchange, however it ends.
pub fn sse_exchange(
    client: &Client,
    ep: &Endpoint,
    post: &Post<'_>,
    limit: Duration,
    on_event: OnEvent,
) -> Exchange {
    stream(client, ep, post, limit, |resp, x, deadline| {
        let mut parser = super::sse::Parser::default();
        pump(resp, x, ep, deadline, |line, at, x| {
            match parser.line(line) {
                Some(ev) if ev.oversized => Err(oversized()),
                Some(ev) => on_event(&ev, at, x, ep),
                None => Ok(true),
            }
        })?;
        match parser.finish() {
            Some(ev) if !x.done => on_event(&ev, Instant::now(), x, ep).map(|_| ()),
            _ => Ok(()),
        }
    })
}

/// Sends a streamed POST and reads its body with `read` (given the deadline the request's
/// time limit sets), then records how the exchange ended: one exchange, however it ends, with
/// the API key taken out of everything the server sent.
pub fn stream(
    client: &Client,
    ep: &Endpoint,
    post: &Post<'_>,
    limit: Duration,
    read: impl FnOnce(&mut Response, &mut Exchange, Instant) -> Result<(), Failure>,
) -> Exchange {
    let mut x = Exchange::new(Instant::now());
    let result = client
        .post_stream(ep, post, limit, &mut x)
        .and_then(|mut resp| {
            let deadline = x.start + limit;
            read(&mut resp, &mut x, deadline)
        });
    let failure = match result {
        Ok(()) => x.completeness(),
        Err(f) => Some(f),
    };
    x.finish(failure);
    x
}

/// Reads the response body line by line as it arrives and hands each complete line to
/// `on_line` with the time its bytes were read. Stops when `on_line` says so, at the end of
/// the body, or with a failure (a read error, the deadline, a line over [`MAX_LINE_BYTES`]).
pub fn pump(
    resp: &mut Response,
    x: &mut Exchange,
    ep: &Endpoint,
    deadline: Instant,
    mut on_line: impl FnMut(&str, Instant, &mut Exchange) -> Result<bool, Failure>,
) -> Result<(), Failure> {
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = reader.read(&mut buf).map_err(|e| io_failure(&e, ep))?;
        let at = Instant::now();
        if n == 0 {
            if !pending.is_empty() {
                let line = String::from_utf8_lossy(&pending).into_owned();
                on_line(line.trim_end_matches('\r'), at, x)?;
            }
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            if !on_line(text.trim_end_matches('\r'), at, x)? {
                return Ok(());
            }
        }
        if pending.len() > MAX_LINE_BYTES {
            return Err(Failure::new(
                FailureKind::Malformed,
                format!(
                    "a line of the stream is longer than {} MiB",
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        if at >= deadline {
            return Err(time_limit_failure());
        }
    }
}

fn oversized() -> Failure {
    Failure::new(
        FailureKind::Malformed,
        format!(
            "an event of the stream holds more than {} MiB",
            super::sse::MAX_EVENT_BYTES >> 20
        ),
    )
}

fn time_limit_failure() -> Failure {
    Failure::new(
        FailureKind::TimeLimit,
        "the answer did not finish within the request's time limit",
    )
}

/// How long HTTP 429 asks us to wait: `Retry-After` in seconds, else 1, 2, 4 ... s.
fn retry_after(resp: &Response, retries: u32) -> Option<Duration> {
    let header = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match header {
        // A number too large for a duration (or not a number) is no usable wait.
        Some(v) => v
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        None => Some(Duration::from_secs(1u64 << retries.min(6))),
    }
}

/// The error a server sent: `error.message` or `error` of a JSON body, else the text,
/// shortened, on one line, without the API key.
fn error_body(resp: &mut Response, ep: &Endpoint) -> String {
    let mut bytes = Vec::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(ERROR_BODY_LIMIT as u64)
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let msg = serde_json::from_str(&text)
        .ok()
        .and_then(|v| error_message(&v))
        .unwrap_or(text);
    let msg: String = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    let msg = scrub(&msg, ep);
    let short: String = msg.chars().take(300).collect();
    if short.is_empty() {
        "(no message)".into()
    } else {
        short
    }
}

/// The message of an error object: `{"error": {"message": ..}}`, `{"error": ".."}`,
/// `{"message": ..}`.
pub fn error_message(v: &serde_json::Value) -> Option<String> {
    if let Some(k) = &ep.key {
        x.redact(k);
    }
    let e = v.get("error").unwrap_or(v);
    if let Some(s) = e.as_str() {
        return Some(s.to_string());
    }
    let m = e.get("message").and_then(|m| m.as_str())?;
    Some(match e.get("type").and_then(|t| t.as_str()) {
        Some(t) => format!("{t}: {m}"),
        None => m.to_string(),
    })
}

/// A stream event or line that does not parse (`what`: "event", "line"), quoted without the
/// API key (taken out before the quote is shortened, which could cut the key in two).
pub fn not_json(what: &str, e: &serde_json::Error, data: &str, ep: &Endpoint) -> Failure {
    let message = format!(
        "a stream {what} is not JSON ({e}): {}",
        excerpt(&scrub(data, ep))
    );
    Failure::new(FailureKind::Malformed, message)
}

/// An error the server sent in the stream.
pub fn server_error(message: &str, ep: &Endpoint) -> Failure {
    let message = format!("the server sent an error: {}", scrub(message, ep));
    Failure::new(FailureKind::StreamError, message)
}

/// The start of a line, for a message.
pub fn excerpt(s: &str) -> String {
    let e: String = s.chars().take(80).collect();
    if e.len() < s.len() {
        format!("{e}...")
    } else {
        e
    }
}

/// A message without the endpoint's API key in it.
pub fn scrub(text: &str, ep: &Endpoint) -> String {
    match &ep.key {
        Some(k) => k.redact(text),
        None => text.to_string(),
    }
}

/// Sorts a ureq error into a failure kind.
fn classify(e: &ureq::Error, ep: &Endpoint, url: &str) -> Failure {
    let msg = scrub(&e.to_string(), ep);
    match e {
        ureq::Error::Timeout(_) => time_limit_failure(),
        ureq::Error::Io(io) => io_failure(io, ep),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Failure::new(
            FailureKind::Refused,
            format!("cannot connect to {}: {msg}", scrub(url, ep)),
        ),
        _ => Failure::new(FailureKind::Other, msg),
    }
}

fn io_failure(e: &std::io::Error, ep: &Endpoint) -> Failure {
    io_failure_of(e.kind(), scrub(&e.to_string(), ep))
}

/// The failure of an I/O error of `kind` that says `msg` (scrubbed).
fn io_failure_of(kind: ErrorKind, msg: String) -> Failure {
    let lower = msg.to_ascii_lowercase();
    let timed_out = lower.contains("timeout") || lower.contains("timed out");
    // The system resolver's error has no kind of its own; its text is the standard library's.
    let no_host = lower.contains("failed to lookup address");
    match kind {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => time_limit_failure(),
        _ if timed_out => time_limit_failure(),
        ErrorKind::ConnectionRefused | ErrorKind::NotFound | ErrorKind::AddrNotAvailable => {
            Failure::new(FailureKind::Refused, format!("cannot connect: {msg}"))
        }
        _ if no_host => Failure::new(FailureKind::Refused, format!("cannot connect: {msg}")),
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => Failure::new(
            FailureKind::Reset,
            format!("the connection broke mid-answer: {msg}"),
        ),
        _ => Failure::new(FailureKind::Other, msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_sorted_by_what_they_mean_for_the_request() {
        let kind = |k: ErrorKind, msg: &str| io_failure_of(k, msg.into()).kind;
        let lookup = "failed to lookup address information: Name or service not known";
        assert_eq!(kind(ErrorKind::Other, lookup), FailureKind::Refused);
        assert_eq!(
            kind(ErrorKind::ConnectionRefused, "x"),
            FailureKind::Refused
        );
        assert_eq!(kind(ErrorKind::ConnectionReset, "x"), FailureKind::Reset);
        assert_eq!(kind(ErrorKind::TimedOut, "x"), FailureKind::TimeLimit);
        assert_eq!(kind(ErrorKind::Other, "x"), FailureKind::Other);
    }
}
