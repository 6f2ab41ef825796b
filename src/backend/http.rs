//! The HTTP side of the backends, over `ureq` (rustls for HTTPS): a streamed POST with the
//! request's time limit as the deadline of the whole request (429 retries and their waits
//! included), redirects refused rather than followed, an interrupted run waking a request
//! blocked on a silent server, and errors sorted into failure kinds with any API key scrubbed
//! from their text.

use super::exchange::{Exchange, Failure};
use super::spec::Endpoint;
use super::ChatRequest;
use crate::measure::FailureKind;
use crate::util::interrupt;
use std::io::{ErrorKind, Read};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

/// At most this many retries after HTTP 429, however short the waits.
const MAX_RETRIES: u32 = 5;
/// Bytes of an error body kept for the message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;
/// How often a request in flight looks at the interrupt flag.
const INTERRUPT_POLL: Duration = Duration::from_millis(200);
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
            // A chat API does not redirect a POST; following one would resend the request,
            // key headers and all, to wherever the answer points.
            .max_redirects(0)
            .max_idle_age(Duration::from_secs(30))
            .build();
        // Default transports that note a reset, which ureq reads as the end of a body that
        // runs until the connection closes.
        let connector = super::resets::NotingConnector::default();
        let resolver = ureq::unversioned::resolver::DefaultResolver::default();
        Client {
            agent: ureq::Agent::with_parts(config, connector, resolver),
        }
    }

    /// POSTs the body as JSON to `ep.base_url + post.path` and returns the response once its
    /// headers arrived with a success status, retrying after HTTP 429 as long as the
    /// endpoint's retry budget and the time limit allow: `time_limit` bounds the whole request,
    /// every attempt and wait included. `x.start` is moved to the attempt that answered (its
    /// timings count from there); a failed request keeps the start of the first attempt.
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
        let deadline = x.start + time_limit;
        loop {
            let attempt = Instant::now();
            let left = deadline.saturating_duration_since(attempt);
            if left.is_zero() {
                return Err(time_limit_failure());
            }
            let req = timed(self.agent.post(&url), left).header("content-type", "application/json");
            let req = headed(req, ep, &post.headers);
            let mut resp = req.send(&payload[..]).map_err(|e| classify(&e, ep, &url))?;
            let status = resp.status().as_u16();
            x.status = Some(status);
            if status < 300 {
                x.start = attempt;
                x.headers = Some(attempt.elapsed());
                return Ok(resp);
            }
            x.headers = Some(x.start.elapsed());
            if status < 400 {
                return Err(redirected(status, &resp, ep));
            }
            let header = resp.headers().get("retry-after");
            let header = header.and_then(|v| v.to_str().ok());
            let wait = retry_wait(header, x.retries, SystemTime::now());
            let message = error_body(&mut resp, ep);
            if Instant::now() >= deadline {
                return Err(time_limit_failure());
            }
            if status == 429 {
                let fits = |w: &Duration| {
                    x.retries < MAX_RETRIES
                        && x.retry_wait.saturating_add(*w) <= ep.max_retry_wait
                        && Instant::now() + *w < deadline
                };
                if let Some(w) = wait.duration().filter(fits) {
                    let end = Instant::now() + w;
                    if !interrupt::sleep_until(end, INTERRUPT_POLL, interrupt::requested) {
                        return Err(interrupted());
                    }
                    x.retries += 1;
                    x.retry_wait += w;
                    continue;
                }
                // Why no retry: none left, or the wait asked for is longer than allowed.
                let why = match x.retries >= MAX_RETRIES {
                    true => format!("no retry left, at most {MAX_RETRIES}"),
                    false => wait.refused(x.retry_wait, ep.max_retry_wait),
                };
                return Err(Failure::new(
                    FailureKind::RateLimited,
                    format!(
                        "HTTP 429 after {} retries ({:.1} s waited; {why}): {message}",
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

    /// While the returned guard lives, a thread that shuts the client's connections down once
    /// the run is interrupted: that wakes a request blocked on a server that does not answer.
    fn watch(&self) -> Watch {
        let (tx, rx) = mpsc::channel::<()>();
        let agent = self.agent.clone();
        let _ = std::thread::Builder::new()
            .name("http-interrupt".into())
            .spawn(move || loop {
                match rx.recv_timeout(INTERRUPT_POLL) {
                    Err(RecvTimeoutError::Timeout) if crate::util::interrupt::requested() => {
                        agent.shutdown();
                        return;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            });
        Watch { _stop: tx }
    }

    /// GETs (or POSTs, with a body) a small JSON document, for preflight checks, with the
    /// endpoint's configured headers and the call's own `headers` (its API key's).
    pub fn json(
        &self,
        ep: &Endpoint,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, String)],
        time_limit: Duration,
    ) -> Result<serde_json::Value, Failure> {
        let url = format!("{}{}", ep.base_url, path);
        let _watch = self.watch();
        let result = match body {
            None => headed(timed(self.agent.get(&url), time_limit), ep, headers).call(),
            Some(b) => headed(timed(self.agent.post(&url), time_limit), ep, headers)
                .header("content-type", "application/json")
                .send(b.to_string().as_bytes()),
        };
        // Past the time limit, the call's own limit is the one to name.
        let within = |f: Failure| match f.kind {
            FailureKind::TimeLimit => Failure::new(
                f.kind,
                format!(
                    "{path}: no complete answer within {} s",
                    time_limit.as_secs_f64()
                ),
            ),
            _ => f,
        };
        let mut resp = result.map_err(|e| interrupted_or(within(classify(&e, ep, &url))))?;
        let status = resp.status().as_u16();
        if status >= 300 {
            let message = match status {
                300..400 => redirected(status, &resp, ep).message,
                _ => format!("HTTP {status}: {}", error_body(&mut resp, ep)),
            };
            let message = format!("{path}: {message}");
            return Err(Failure::new(FailureKind::HttpStatus, message));
        }
        let mut text = String::new();
        resp.body_mut()
            .as_reader()
            .take(4 << 20)
            .read_to_string(&mut text)
            .map_err(|e| interrupted_or(within(io_failure(&e, ep))))?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::new(FailureKind::Malformed, format!("{path}: not JSON: {e}")))
    }
}

/// Ends the thread [`Client::watch`] started when dropped.
struct Watch {
    _stop: mpsc::Sender<()>,
}

fn interrupted() -> Failure {
    Failure::new(FailureKind::Other, "interrupted")
}

/// `f`, unless the run was interrupted (which is what broke the request then).
fn interrupted_or(f: Failure) -> Failure {
    if crate::util::interrupt::requested() {
        interrupted()
    } else {
        f
    }
}

/// A 3xx answer, which runner does not follow: the status and where it pointed (the host and
/// port only, or "this server" for a path).
fn redirected(status: u16, resp: &Response, ep: &Endpoint) -> Failure {
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let target = match ureq::http::Uri::try_from(location) {
        Ok(u) if u.host().is_some() => u
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_string())
            .unwrap_or_default(),
        _ if location.is_empty() => "nowhere (no Location)".to_string(),
        _ => "another path on this server".to_string(),
    };
    Failure::new(
        FailureKind::HttpStatus,
        format!(
            "HTTP {status}: redirected to {}, which runner does not follow for API requests (check the base URL)",
            excerpt(&scrub(&target, ep))
        ),
    )
}

/// The endpoint's API key as a bearer token (`authorization: Bearer KEY`), when it has one.
pub fn bearer(ep: &Endpoint) -> Vec<(&'static str, String)> {
    (ep.key.iter())
        .map(|k| ("authorization", format!("Bearer {}", k.expose())))
        .collect()
}

/// The request with the endpoint's configured headers, then `headers` (the request's own:
/// its API key's, the API version).
fn headed<B>(
    mut req: ureq::RequestBuilder<B>,
    ep: &Endpoint,
    headers: &[(&str, String)],
) -> ureq::RequestBuilder<B> {
    for (k, v) in &ep.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    req
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

/// The media type of a stream of server-sent events (OpenAI, Anthropic, llama-server, vLLM).
pub const EVENT_STREAM: &[&str] = &["text/event-stream"];

/// The media types of a stream of JSON lines: Ollama's `application/x-ndjson`, and the other
/// names the format goes by.
pub const NDJSON: &[&str] = &[
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
];

/// Refuses (`malformed`) a successful answer to a streamed request whose `Content-Type` is not
/// one of `expected` (what the stream is, named by `what`): a web page (a proxy's error page, a
/// captive portal) or one JSON document (a server that ignored `stream: true`) is no stream,
/// and read as one would only seem cut short. No `Content-Type` is no reason, and neither are
/// parameters (`; charset=utf-8`) or letter case.
pub fn check_stream_type(
    resp: &Response,
    ep: &Endpoint,
    expected: &[&str],
    what: &str,
) -> Result<(), Failure> {
    let Some(value) = resp.headers().get("content-type") else {
        return Ok(());
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    let media = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.is_empty() || expected.contains(&media.as_str()) {
        return Ok(());
    }
    Err(Failure::new(
        FailureKind::Malformed,
        format!("the answer is {}, not {what}", excerpt(&scrub(&media, ep))),
    ))
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
    req: &ChatRequest<'_>,
    on_event: OnEvent,
) -> Exchange {
    stream(client, ep, post, req, |resp, x, deadline| {
        check_stream_type(resp, ep, EVENT_STREAM, "an event stream")?;
        let mut parser = super::sse::Parser::default();
        let within_a_line = pump(resp, x, ep, deadline, |line, at, x| {
            match parser.line(line) {
                Some(ev) if ev.oversized => Err(oversized()),
                Some(ev) => on_event(&ev, at, x, ep),
                None => Ok(true),
            }
        })?;
        // The last event, without its blank line; if the body ended within its last line,
        // what does not parse there was cut off.
        match parser.dispatch() {
            Some(ev) if ev.oversized => Err(oversized()),
            Some(ev) if !x.done => on_event(&ev, Instant::now(), x, ep)
                .map(|_| ())
                .map_err(|f| if within_a_line { cut_off(f) } else { f }),
            _ => Ok(()),
        }
    })
}

/// Sends the streamed POST of chat request `req` and reads its body with `read` (given the
/// deadline the request's time limit sets), the stream held to its token limit
/// ([`Exchange::limited`]), then records how the exchange ended: one exchange, however it
/// ends, with the API key taken out of everything the server sent.
pub fn stream(
    client: &Client,
    ep: &Endpoint,
    post: &Post<'_>,
    req: &ChatRequest<'_>,
    read: impl FnOnce(&mut Response, &mut Exchange, Instant) -> Result<(), Failure>,
) -> Exchange {
    let limit = req.prompt.time_limit;
    let mut x = Exchange::limited(Instant::now(), req.prompt.max_tokens);
    let began = x.start;
    let _watch = client.watch();
    let result = client
        .post_stream(ep, post, limit, &mut x)
        .and_then(|mut resp| read(&mut resp, &mut x, began + limit));
    let failure = match result {
        Ok(()) => x.completeness(ep.key.as_ref()),
        Err(f) => Some(interrupted_or(f)),
    };
    x.finish(failure);
    if let Some(k) = &ep.key {
        x.redact(k);
    }
    x
}

/// The failure of what the stream ended within (a line without its end, an event without
/// its blank line): what does not parse there was cut off, not garbage the server sent.
fn cut_off(f: Failure) -> Failure {
    match f.kind {
        FailureKind::Malformed => Failure::new(
            FailureKind::Truncated,
            format!("the stream ended in the middle of a line: {}", f.message),
        ),
        _ => f,
    }
}

/// Reads the response body line by line as it arrives and hands each complete line to
/// `on_line` with the time its bytes were read. Stops when `on_line` says so, at the end of
/// the body, or with a failure (a read error, the deadline, a line over [`MAX_LINE_BYTES`]).
/// `Ok(true)`: the body ended within a line, which was handed on as it was.
pub fn pump(
    resp: &mut Response,
    x: &mut Exchange,
    ep: &Endpoint,
    deadline: Instant,
    mut on_line: impl FnMut(&str, Instant, &mut Exchange) -> Result<bool, Failure>,
) -> Result<bool, Failure> {
    let mut reader = resp.body_mut().as_reader();
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Lines::default();
    super::resets::take();
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| interrupted_or(io_failure(&e, ep)))?;
        let at = Instant::now();
        if crate::util::interrupt::requested() {
            return Err(interrupted());
        }
        if n == 0 && super::resets::take() {
            // The end of a body that runs until the connection closes: it was reset.
            let reset = std::io::Error::from(ErrorKind::ConnectionReset).to_string();
            return Err(io_failure_of(ErrorKind::ConnectionReset, reset));
        }
        if n == 0 {
            // A last line without its end that does not parse was cut off: the stream
            // ended early, it did not send garbage.
            let Some(last) = lines.rest() else {
                return Ok(false);
            };
            on_line(&String::from_utf8_lossy(&last), at, x).map_err(cut_off)?;
            return Ok(true);
        }
        lines.push(&buf[..n]);
        while let Some(line) = lines.next_line() {
            if !on_line(&String::from_utf8_lossy(&line), at, x)? {
                return Ok(false);
            }
        }
        if lines.pending.len() > MAX_LINE_BYTES {
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

/// Splits a byte stream into lines that end at LF, CR or CRLF (the line ends
/// `text/event-stream` allows), a CRLF split across two reads counting once.
#[derive(Debug, Default)]
struct Lines {
    pending: Vec<u8>,
    /// The last line ended at a CR with nothing after it yet: an LF first in the next bytes
    /// belongs to that line end.
    after_cr: bool,
}

impl Lines {
    fn push(&mut self, mut bytes: &[u8]) {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            bytes = bytes.strip_prefix(b"\n").unwrap_or(bytes);
        }
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete line, without its line end.
    fn next_line(&mut self) -> Option<Vec<u8>> {
        let i = self
            .pending
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')?;
        let mut line: Vec<u8> = self.pending.drain(..=i).collect();
        if line.pop() == Some(b'\r') {
            match self.pending.first() {
                Some(b'\n') => {
                    self.pending.remove(0);
                }
                Some(_) => {}
                None => self.after_cr = true,
            }
        }
        Some(line)
    }

    /// What is left when the stream ends (a last line without its line end), if anything.
    fn rest(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
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

/// How long to wait after an HTTP 429.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    /// What its `Retry-After` asks for.
    Asked(Duration),
    /// runner's own backoff, where it has no `Retry-After` runner can read.
    Backoff(Duration),
    /// A number of seconds too large for a duration, which no limit allows.
    Unbounded,
}

impl Wait {
    fn duration(self) -> Option<Duration> {
        match self {
            Wait::Asked(d) | Wait::Backoff(d) => Some(d),
            Wait::Unbounded => None,
        }
    }

    /// Why this wait is not taken, given the time already waited and the limits.
    fn refused(self, waited: Duration, max_wait: Duration) -> String {
        let (who, w) = match self {
            Wait::Unbounded => return "Retry-After asks for a wait longer than any limit".into(),
            Wait::Asked(w) => ("Retry-After asks for", w),
            Wait::Backoff(w) => ("the next backoff is", w),
        };
        let past = match waited.saturating_add(w) > max_wait {
            true => "--max-retry-wait",
            false => "the time limit",
        };
        format!("{who} {:.1} s more, past {past}", w.as_secs_f64())
    }
}

/// How long HTTP 429 asks us to wait after `retries` retries: its `Retry-After` value in
/// seconds (digits, a fraction allowed) or as an HTTP date (a date already past is no wait),
/// else (no header, or one that is neither: negative, not digits) 1, 2, 4 ... s.
fn retry_wait(header: Option<&str>, retries: u32, now: SystemTime) -> Wait {
    let backoff = Wait::Backoff(Duration::from_secs(1u64 << retries.min(6)));
    let Some(v) = header.map(str::trim) else {
        return backoff;
    };
    if let Some(at) = http_date(v) {
        return Wait::Asked(at.duration_since(now).unwrap_or(Duration::ZERO));
    }
    // Seconds are digits (a fraction allowed); anything else ("-1", "inf", "1e3") is no value.
    let seconds = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match v.parse::<f64>() {
        Ok(s) if seconds => Duration::try_from_secs_f64(s).map_or(Wait::Unbounded, Wait::Asked),
        _ => backoff,
    }
}

/// An HTTP date in its preferred form (RFC 9110 IMF-fixdate: `Wed, 21 Oct 2015 07:28:00 GMT`).
fn http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [weekday, day, month, year, clock, "GMT"] = parts[..] else {
        return None;
    };
    if !weekday.ends_with(',') {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u8 + 1;
    let date = time::Date::from_calendar_date(
        year.parse().ok()?,
        time::Month::try_from(month).ok()?,
        day.parse().ok()?,
    )
    .ok()?;
    let mut hms = clock.split(':').map(|p| p.parse::<u8>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(sec)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    let t = time::Time::from_hms(h, m, sec).ok()?;
    let secs = date.with_time(t).assume_utc().unix_timestamp();
    let since = Duration::from_secs(secs.unsigned_abs());
    if secs < 0 {
        SystemTime::UNIX_EPOCH.checked_sub(since)
    } else {
        SystemTime::UNIX_EPOCH.checked_add(since)
    }
}

/// The error a server sent: `error.message` or `error` of a JSON body, else the text,
/// shortened, on one line, without the API key: taken out before anything else is done to the
/// text, and with any start of it that the cut at [`ERROR_BODY_LIMIT`] left at the end.
fn error_body(resp: &mut Response, ep: &Endpoint) -> String {
    let mut bytes = Vec::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(ERROR_BODY_LIMIT as u64)
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let text = match &ep.key {
        Some(k) if bytes.len() >= ERROR_BODY_LIMIT => k.redact_cut(&text),
        Some(k) => k.redact(&text),
        None => text,
    };
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
        _ if not_http(e) => not_http_failure(&msg),
        _ => Failure::new(FailureKind::Other, msg),
    }
}

/// Whether a ureq error says the answer breaks HTTP itself: a status line, header or chunk
/// that does not parse, headers past ureq's limit.
fn not_http(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..)
    )
}

/// An answer that is not the HTTP the protocol documents is malformed, as a stream line that
/// is not its JSON is.
fn not_http_failure(msg: &str) -> Failure {
    Failure::new(
        FailureKind::Malformed,
        format!("the answer is not well-formed HTTP: {msg}"),
    )
}

fn io_failure(e: &std::io::Error, ep: &Endpoint) -> Failure {
    let msg = scrub(&e.to_string(), ep);
    // ureq hands an error of its own met while reading a body (a bad chunk) over as I/O.
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>());
    if inner.is_some_and(not_http) {
        return not_http_failure(&msg);
    }
    io_failure_of(e.kind(), msg)
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

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        // Wed, 21 Oct 2015 07:28:00 GMT
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let wait = |v: Option<&str>, retries| retry_wait(v, retries, now).duration();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(wait(Some("Wed, 21 Oct 2015 07:28:03 GMT"), 0), secs(3));
        assert_eq!(wait(Some("Thu, 22 Oct 2015 07:28:00 GMT"), 0), secs(86_400));
        assert_eq!(wait(Some("Wed, 21 Oct 2015 07:27:00 GMT"), 0), secs(0));
        // A date before 1970 is a date already past too.
        assert_eq!(wait(Some("Thu, 01 Jan 1920 00:00:00 GMT"), 2), secs(0));
        assert_eq!(wait(Some(" 2 "), 0), secs(2));
        assert_eq!(wait(None, 2), secs(4));
        // Which it is, the header's or runner's own, is what a refusal names.
        assert_eq!(
            retry_wait(Some("3"), 0, now),
            Wait::Asked(Duration::from_secs(3))
        );
        assert_eq!(
            retry_wait(Some("-3"), 0, now),
            Wait::Backoff(Duration::from_secs(1))
        );
        let limit = Duration::from_secs(3);
        assert_eq!(
            Wait::Backoff(Duration::from_secs(4)).refused(Duration::ZERO, limit),
            "the next backoff is 4.0 s more, past --max-retry-wait"
        );
        assert_eq!(
            Wait::Asked(Duration::from_secs(2)).refused(Duration::ZERO, limit),
            "Retry-After asks for 2.0 s more, past the time limit"
        );
        // A value that is neither seconds nor a date is no header: the usual backoff.
        for bad in [
            "soon",
            "-1",
            "NaN",
            "inf",
            "1e20",
            "",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 21 Oct 2015 25:28:00 GMT",
        ] {
            assert_eq!(wait(Some(bad), 1), secs(2), "{bad}");
        }
        // More seconds than a duration holds: no wait any limit allows.
        for huge in ["100000000000000000000", "1".repeat(400).as_str()] {
            assert_eq!(wait(Some(huge), 0), None, "{huge}");
        }
    }

    #[test]
    fn lines_end_at_lf_cr_or_crlf_even_split_across_reads() {
        let mut l = Lines::default();
        let mut got = Vec::new();
        for piece in ["a\rb\r", "\nc\n", "\r\nd\r", "\r", "e"] {
            l.push(piece.as_bytes());
            while let Some(line) = l.next_line() {
                got.push(String::from_utf8(line).unwrap());
            }
        }
        got.extend(l.rest().map(|r| String::from_utf8(r).unwrap()));
        assert_eq!(got, ["a", "b", "c", "", "d", "", "e"]);
    }
}
