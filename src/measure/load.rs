//! Load levels, pure: seeded Poisson arrival schedules, service-level objectives (parsing and
//! checking), the statistics of one load level (latency percentiles, throughput, goodput) and
//! the knee of a load curve. Latencies run from a request's arrival, so waiting for a slot
//! counts against it.

use crate::util::quantile::percentile;
use crate::util::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How requests arrive at one load level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "shape")]
pub enum Shape {
    /// `concurrency` requests in flight; a new one starts as soon as one ends.
    Closed { concurrency: u32 },
    /// Poisson arrivals at `rate` requests per second (seeded), at most `slots` in flight; the
    /// rest wait.
    Open { rate: f64, slots: u32, seed: u64 },
}

impl Shape {
    /// Requests that may be in flight at once.
    pub fn slots(&self) -> u32 {
        match *self {
            Shape::Closed { concurrency } => concurrency,
            Shape::Open { slots, .. } => slots,
        }
    }

    /// The load as one number: the concurrency, or the rate in requests per second.
    pub fn level(&self) -> f64 {
        match *self {
            Shape::Closed { concurrency } => f64::from(concurrency),
            Shape::Open { rate, .. } => rate,
        }
    }

    /// "c=4" or "1.5 req/s".
    pub fn label(&self) -> String {
        match *self {
            Shape::Closed { concurrency } => format!("c={concurrency}"),
            // Two significant digits below 0.01 (0.0001 req/s is not "0 req/s").
            Shape::Open { rate, .. } => {
                let places = 2usize.max((-rate.log10()).ceil() as usize + 1);
                format!("{} req/s", decimals(rate, places))
            }
        }
    }
}

/// `x` with at most `places` decimals, trailing zeros (and a bare point) trimmed.
fn decimals(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// Arrival times (from the start of the level) of `n` requests of a Poisson process with
/// `rate` per second, drawn from `seed`: exponential gaps `-ln(1 - u) / rate` with `u` uniform
/// in [0, 1). The same (rate, n, seed) gives the same schedule. A rate that is not finite and
/// positive gives no arrivals; a gap (or a time) that a `Duration` cannot hold ends the
/// schedule there.
pub fn arrivals(rate: f64, n: usize, seed: u64) -> Vec<Duration> {
    if !(rate.is_finite() && rate > 0.0) {
        return Vec::new();
    }
    let mut rng = SplitMix64(seed);
    let mut out = Vec::with_capacity(n.min(1 << 16));
    let mut t = Duration::ZERO;
    for _ in 0..n {
        let gap_s = -(1.0 - rng.unit()).ln() / rate;
        let Some(next) = Duration::try_from_secs_f64(gap_s)
            .ok()
            .and_then(|gap| t.checked_add(gap))
        else {
            break;
        };
        t = next;
        out.push(t);
    }
    out
}

/// Service-level objectives: a request meets them when every one given holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Arrival to first token.
    pub ttft: Option<Duration>,
    /// The request's mean gap between tokens (time per output token after the first).
    pub itl: Option<Duration>,
    /// Arrival to the last token.
    pub e2e: Option<Duration>,
    /// The share of requests that must meet them for a load level to count as meeting the
    /// SLOs.
    pub share: f64,
}

/// The longest objective accepted, in seconds (one day).
const MAX_OBJECTIVE_S: f64 = 86_400.0;

impl Slo {
    /// The share of requests that must meet the objectives when `share` is not given.
    pub const DEFAULT_SHARE: f64 = 0.9;

    /// Parses `ttft=2s,itl=150ms,e2e=30s[,share=95%]`: durations with a unit (`us`, `ms`,
    /// `s`; decimals allowed), `share` a fraction 0<x<=1 or a percentage. At least one of
    /// ttft, itl, e2e must be given. Errors are one line naming the offending item.
    pub fn parse(spec: &str) -> Result<Slo, String> {
        const EXAMPLE: &str = "like ttft=2s,itl=150ms,e2e=30s,share=95%";
        const KEYS: &str = "valid keys: ttft, itl, e2e, share";
        if spec.trim().is_empty() {
            return Err(format!("empty SLO: give objectives {EXAMPLE}"));
        }
        let mut slo = Slo {
            ttft: None,
            itl: None,
            e2e: None,
            share: Self::DEFAULT_SHARE,
        };
        let mut share_given = false;
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!(
                    "'{spec}': an empty item; give objectives {EXAMPLE}"
                ));
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!("{item}: give key=value, {EXAMPLE}"));
            };
            let (key, value) = (key.trim(), value.trim());
            let slot = match key {
                "ttft" => &mut slo.ttft,
                "itl" => &mut slo.itl,
                "e2e" => &mut slo.e2e,
                "share" if share_given => return Err(format!("{item}: share given twice")),
                "share" => {
                    share_given = true;
                    slo.share = parse_share(value).map_err(|e| format!("{item}: {e}"))?;
                    continue;
                }
                _ => return Err(format!("{item}: unknown key '{key}'; {KEYS}")),
            };
            if slot.is_some() {
                return Err(format!("{item}: {key} given twice"));
            }
            *slot = Some(parse_duration(value).map_err(|e| format!("{item}: {e}"))?);
        }
        if slo.ttft.is_none() && slo.itl.is_none() && slo.e2e.is_none() {
            return Err(format!(
                "{}: give at least one objective (ttft, itl or e2e), {EXAMPLE}",
                spec.trim()
            ));
        }
        Ok(slo)
    }

    /// Canonical text, e.g. "ttft=2s,itl=150ms" (share only when not the default, as
    /// "share=95%"). [`Slo::parse`] reads it back.
    pub fn describe(&self) -> String {
        let durations = [("ttft", self.ttft), ("itl", self.itl), ("e2e", self.e2e)];
        let mut parts: Vec<String> = durations
            .into_iter()
            .filter_map(|(key, d)| Some(format!("{key}={}", describe_duration(d?))))
            .collect();
        if (self.share - Self::DEFAULT_SHARE).abs() > 1e-12 {
            parts.push(format!("share={}%", decimals(self.share * 100.0, 6)));
        }
        parts.join(",")
    }

    /// Whether one request met every objective. A failed request never does; one with no first
    /// token fails a ttft objective; one with fewer than 2 tokens has no gap and meets an itl
    /// objective.
    pub fn met(&self, s: &Sample) -> bool {
        if s.failed {
            return false;
        }
        let within = |x: f64, limit: Duration| x <= duration_ms(limit);
        let ttft_ok = self
            .ttft
            .is_none_or(|l| s.ttft_ms.is_some_and(|t| within(t, l)));
        let itl_ok = self
            .itl
            .is_none_or(|l| s.output_tokens < 2 || s.mean_itl_ms().is_some_and(|m| within(m, l)));
        let e2e_ok = self.e2e.is_none_or(|l| within(s.e2e_ms, l));
        ttft_ok && itl_ok && e2e_ok
    }
}

/// Milliseconds of a duration (exact for whole nanoseconds up to about 104 days).
fn duration_ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// A positive duration of at most a day, with a unit: `1.5s`, `150ms`, `500us`.
fn parse_duration(value: &str) -> Result<Duration, String> {
    const UNITS: &str = "give a unit: us, ms or s";
    let unit_at = value.trim_end_matches(char::is_alphabetic).len();
    let (number, unit) = (value[..unit_at].trim(), &value[unit_at..]);
    if number.is_empty() {
        return Err("give a duration like 2s, 150ms or 500us".to_string());
    }
    let nanos_per_unit = match unit {
        "" => return Err(UNITS.to_string()),
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("unknown unit '{unit}'; {UNITS}")),
    };
    let x: f64 = number
        .parse()
        .map_err(|_| format!("'{number}' is not a number; give a duration like 2s or 150ms"))?;
    if !(x.is_finite() && x > 0.0) {
        return Err("give a finite duration above zero".to_string());
    }
    let nanos = (x * nanos_per_unit).round();
    if nanos > MAX_OBJECTIVE_S * 1e9 {
        return Err("give a duration of at most one day".to_string());
    }
    if nanos < 1.0 {
        return Err("give a duration of at least 1 ns".to_string());
    }
    // A whole number of nanoseconds from 1 to a day's worth: exact as u64.
    Ok(Duration::from_nanos(nanos as u64))
}

/// A share 0 < x <= 1: a fraction like `0.95` or a percentage like `95%`.
pub fn parse_share(value: &str) -> Result<f64, String> {
    const RANGE: &str = "give a fraction above 0 and at most 1 like 0.95, or a percentage like 95%";
    let (number, scale) = match value.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (value, 1.0),
    };
    let x = number
        .parse::<f64>()
        .map_err(|_| format!("'{number}' is not a number; {RANGE}"))?
        / scale;
    if x > 0.0 && x <= 1.0 {
        Ok(x)
    } else {
        Err(RANGE.to_string())
    }
}

/// The shortest text [`parse_duration`] reads back: whole seconds as `s`, under a second as
/// `ms`, else decimal seconds.
fn describe_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", duration_ms(d))
    } else {
        format!("{}s", d.as_nanos() as f64 / 1e9)
    }
}

/// One request of a load level, all times in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// From the start of the level.
    pub arrival_ms: f64,
    /// Arrival to the start of its work (admission to a slot / the request being sent).
    pub queue_ms: f64,
    /// Arrival to the first token.
    pub ttft_ms: Option<f64>,
    /// Arrival to the end.
    pub e2e_ms: f64,
    /// The tokens its gaps span (its decode rate and mean gap are over these).
    pub output_tokens: u32,
    /// The tokens it produced, where counted apart from those (a server's count): what the
    /// level's output throughput counts, else `output_tokens`.
    pub counted: Option<u32>,
    /// Gaps between consecutive tokens of this request.
    pub gaps_ms: Vec<f64>,
    pub failed: bool,
}

impl Sample {
    /// Time from the first to the last token: the sum of the gaps, or without gaps, end minus
    /// first token. None with fewer than 2 tokens or a time that is negative or not finite.
    fn decode_ms(&self) -> Option<f64> {
        if self.output_tokens < 2 {
            return None;
        }
        let span = if self.gaps_ms.is_empty() {
            self.e2e_ms - self.ttft_ms?
        } else {
            self.gaps_ms.iter().sum()
        };
        (span.is_finite() && span >= 0.0).then_some(span)
    }

    /// The request's own decode rate: (tokens - 1) / (sum of gaps) in tokens per second; None
    /// with fewer than 2 tokens or no time.
    pub fn decode_tps(&self) -> Option<f64> {
        let ms = self.decode_ms().filter(|&ms| ms > 0.0)?;
        Some(f64::from(self.output_tokens - 1) * 1000.0 / ms)
    }

    /// Mean gap between tokens (ms): (sum of gaps) / (tokens - 1); None with fewer than 2
    /// tokens.
    pub fn mean_itl_ms(&self) -> Option<f64> {
        Some(self.decode_ms()? / f64::from(self.output_tokens - 1))
    }
}

/// p50/p90/p99 (and max) of a set of samples, type-7 percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pcts {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Pcts {
    /// None when `samples` is empty or holds a value that is not finite.
    pub fn of(samples: &[f64]) -> Option<Pcts> {
        if !samples.iter().all(|x| x.is_finite()) {
            return None;
        }
        Some(Pcts {
            p50: percentile(samples, 0.5)?,
            p90: percentile(samples, 0.9)?,
            p99: percentile(samples, 0.99)?,
            max: samples.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// Goodput of a level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// Requests meeting the SLOs.
    pub met: usize,
    /// Their share of all requests of the level.
    pub share: f64,
    /// Requests meeting the SLOs per second of the level.
    pub rps: f64,
    /// Whether `share` reaches the SLOs' share.
    pub meets: bool,
}

/// What one load level did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub requests: usize,
    pub failed: usize,
    /// First arrival to the last end, seconds.
    pub wall_s: f64,
    /// Completed (not failed) requests per second of wall time.
    pub achieved_rps: f64,
    /// Output tokens of the completed (not failed) requests / wall seconds.
    pub output_tps: f64,
    /// Median over requests of each request's own decode rate (what one user sees).
    pub per_user_tps: Option<f64>,
    pub ttft_ms: Option<Pcts>,
    /// Every gap of every request, pooled.
    pub itl_ms: Option<Pcts>,
    pub e2e_ms: Option<Pcts>,
    pub queue_ms: Option<Pcts>,
    pub goodput: Option<Goodput>,
}

impl Level {
    /// Statistics of a level's samples. Latencies, gaps and per-user rates are over the
    /// requests that did not fail; wall time runs from the first arrival to the last end over
    /// all requests; output tokens count the requests that did not fail. No samples give zeros and no figures;
    /// no wall time gives zero rates.
    pub fn of(samples: &[Sample], slo: Option<&Slo>) -> Level {
        let requests = samples.len();
        let failed = samples.iter().filter(|s| s.failed).count();
        let (mut start, mut end) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in samples
            .iter()
            .filter(|s| (s.arrival_ms + s.e2e_ms).is_finite())
        {
            (start, end) = (start.min(s.arrival_ms), end.max(s.arrival_ms + s.e2e_ms));
        }
        let wall_s = Some((end - start) / 1000.0)
            .filter(|w| w.is_finite() && *w > 0.0)
            .unwrap_or(0.0);
        let per_s = |n: f64| if wall_s > 0.0 { n / wall_s } else { 0.0 };
        let done: Vec<&Sample> = samples.iter().filter(|s| !s.failed).collect();
        let of = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<f64> {
            done.iter().filter_map(|s| f(s)).collect()
        };
        let gaps: Vec<f64> = done
            .iter()
            .flat_map(|s| s.gaps_ms.iter().copied())
            .collect();
        // A fold from 0, not a sum (which starts at -0.0): no tokens print as 0.0.
        let tokens = (done.iter())
            .map(|s| f64::from(s.counted.unwrap_or(s.output_tokens)))
            .fold(0.0, |a, b| a + b);
        let goodput = slo.filter(|_| requests > 0).map(|slo| {
            let met = samples.iter().filter(|s| slo.met(s)).count();
            let share = met as f64 / requests as f64;
            Goodput {
                met,
                share,
                rps: per_s(met as f64),
                meets: share >= slo.share,
            }
        });
        Level {
            requests,
            failed,
            wall_s,
            achieved_rps: per_s(done.len() as f64),
            output_tps: per_s(tokens),
            per_user_tps: percentile(&of(&Sample::decode_tps), 0.5),
            ttft_ms: Pcts::of(&of(&|s| s.ttft_ms)),
            itl_ms: Pcts::of(&gaps),
            e2e_ms: Pcts::of(&of(&|s| Some(s.e2e_ms))),
            queue_ms: Pcts::of(&of(&|s| Some(s.queue_ms))),
            goodput,
        }
    }
}

/// The knee of a load curve: the highest level value such that it and every lower level meet
/// the SLOs (the last point before the first that misses them). Levels are taken in order of
/// their value. None when the lowest level misses them or no SLO was given.
pub fn knee(levels: &[(f64, &Level)]) -> Option<f64> {
    let mut sorted: Vec<&(f64, &Level)> = levels.iter().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted
        .iter()
        .take_while(|(_, l)| l.goodput.is_some_and(|g| g.meets))
        .last()
        .map(|(v, _)| *v)
}

/// The items of a comma-separated `flag` value, each read by `read` (None: refused), none
/// twice, in the order given. Errors are one line naming the flag and the item.
fn parse_list<T: PartialEq>(
    flag: &str,
    s: &str,
    expect: &str,
    read: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if s.trim().is_empty() || items.iter().any(|i| i.is_empty()) {
        return Err(format!("{flag} '{s}': {expect}, separated by commas"));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let x = read(item).ok_or_else(|| format!("{flag} {item}: {expect}"))?;
        crate::util::given_twice(flag, &out, &x, item)?;
        out.push(x);
    }
    Ok(out)
}

/// The most requests one level keeps in flight: `--concurrency` and `--slots`.
pub const MAX_IN_FLIGHT: u32 = 256;

/// Parses a `--concurrency` list like "1,2,4,8": whole numbers from 1 to [`MAX_IN_FLIGHT`],
/// no duplicates, in the order given.
pub fn parse_concurrency(s: &str) -> Result<Vec<u32>, String> {
    parse_list(
        "--concurrency",
        s,
        "give whole numbers from 1 to 256",
        |i| {
            i.parse::<u32>()
                .ok()
                .filter(|c| (1..=MAX_IN_FLIGHT).contains(c))
        },
    )
}

/// Parses a `--rate` list like "0.5,1,2" (requests per second): from [`MIN_RATE`] to 10000,
/// no duplicates, in the order given.
pub fn parse_rates(s: &str) -> Result<Vec<f64>, String> {
    let expect = "give requests per second from 0.0001 to 10000";
    let rates = parse_list("--rate", s, expect, |i| {
        let r = i.parse::<f64>().ok()?;
        (MIN_RATE..=10_000.0).contains(&r).then_some(r)
    })?;
    // Tables and records name a level by its label: two that read the same are one level.
    let label = |rate| {
        let (slots, seed) = (1, 0);
        Shape::Open { rate, slots, seed }.label()
    };
    for (i, &r) in rates.iter().enumerate() {
        if let Some(&same) = rates[..i].iter().find(|&&o| label(o) == label(r)) {
            return Err(format!(
                "--rate {same} and {r}: both are shown as {}, one level; give rates that \
                 differ there",
                label(r)
            ));
        }
    }
    Ok(rates)
}

/// The least open-loop rate: one request every 10 000 s (under three hours) on average, well
/// within a day (the longest `--duration`); a far lower one (1e-300) would schedule its first
/// arrival past any level's end (past what a `Duration` holds) and run nothing.
pub const MIN_RATE: f64 = 1e-4;

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
