//! Turns one HTTP exchange into a sweep record: client-side timing (TTFT at the first
//! non-empty text chunk, gaps between chunks, decode rate over the server's token count),
//! the server's own figures beside it, the failure if any, grading and cost.

use super::exchange::{Exchange, FailureKind};
use super::report::HttpReport;
use crate::llama::generate::find_stop;
use crate::measure::histogram::LatencyHistogram;
use crate::record::{self, CellInfo, CellKey, LoadReport, RequestRecord, SCHEMA_VERSION};
use crate::scenario::{self, Prompt, Scenario};
use std::time::Duration;

/// What the record needs besides the exchange.
pub struct Context<'a> {
    pub cell: &'a CellKey,
    pub info: &'a CellInfo,
    pub scenario: &'a Scenario,
    pub prompt: &'a Prompt,
    /// How the prompt was built (`server`: the server's chat template).
    pub template: &'a str,
    pub no_text: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The record of one exchange (load and cost are filled in by the caller).
pub fn record(c: &Context<'_>, x: &Exchange) -> RequestRecord {
    let (text, stopped) = cut_at_stop(&x.text, &c.prompt.stop);
    let mut itl = LatencyHistogram::new();
    for g in x.gaps() {
        itl.record(g);
    }
    let failed = x.failure.is_some();
    let verdicts = scenario::grade(&text, &c.prompt.graders);
    let all_pass = verdicts.iter().all(|v| v.pass);
    RequestRecord {
        schema: SCHEMA_VERSION,
        time: record::now_rfc3339(),
        runner_version: env!("CARGO_PKG_VERSION").to_string(),
        cell: c.cell.clone(),
        info: c.info.clone(),
        scenario: c.scenario.name.clone(),
        scenario_kind: c.scenario.kind.as_str().to_string(),
        prompt_id: c.prompt.id.clone(),
        category: c.prompt.category.clone(),
        pair: c.prompt.pair.clone(),
        template: c.template.to_string(),
        prompt_tokens: count(x.server.prompt_tokens),
        output_tokens: count(x.server.output_tokens),
        ttft_ms: x.ttft().map(ms),
        prompt_tps: None,
        decode_tps: x.decode_tps(),
        e2e_ms: ms(x.end),
        llama_ms: 0.0,
        itl_ms: itl.summary(),
        // The server's memory traffic is not runner's to measure.
        bandwidth: None,
        stop_reason: stop_reason(x, stopped),
        failed,
        error: x.failure.as_ref().map(|f| f.message.clone()),
        text: (!c.no_text).then(|| text.clone()),
        score: if failed {
            0.0
        } else {
            scenario::score(&verdicts)
        },
        pass: !failed && all_pass,
        verdicts,
        load: LoadReport::default(),
        token_ms: x.chunks.iter().map(|&d| ms(d)).collect(),
        error_kind: x.failure.as_ref().map(|f| f.kind.as_str().to_string()),
        server: Some(x.server.clone()),
        http: Some(HttpReport {
            headers_ms: x.headers.map(ms),
            chunks: x.chunks.len(),
            status: x.status,
            retries: x.retries,
            retry_wait_ms: ms(x.retry_wait),
        }),
        cost_usd: None,
        cost_source: None,
    }
}

fn count(n: Option<u64>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// The text cut before the first stop string (servers that were not given a stop string, or
/// refused one, run past it), and whether one was found.
pub fn cut_at_stop(text: &str, stops: &[String]) -> (String, bool) {
    match find_stop(text.as_bytes(), 0, stops) {
        Some(at) => (text[..at].to_string(), true),
        None => (text.to_string(), false),
    }
}

/// The stop reason in native's words: `eos`, `stop_string`, `max_tokens`, `time_limit`, or
/// `error`.
fn stop_reason(x: &Exchange, stopped: bool) -> String {
    if let Some(f) = &x.failure {
        return match f.kind {
            FailureKind::TimeLimit => "time_limit",
            _ => "error",
        }
        .into();
    }
    if stopped {
        return "stop_string".into();
    }
    match x.server.finish_reason.as_deref() {
        Some("length" | "max_tokens") => "max_tokens",
        Some("stop_sequence") => "stop_string",
        _ => "eos",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_cut_the_text() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        assert_eq!(cut_at_stop("ab\n\ncd", &stops), ("ab".into(), true));
        assert_eq!(cut_at_stop("abc", &stops), ("abc".into(), false));
        assert_eq!(cut_at_stop("xENDy\n\n", &stops), ("x".into(), true));
    }
}
