//! Backends side by side: for each HTTP backend, its figures next to the first native cell
//! on the same prompts (TTFT delta and decode-rate ratio: the runtime's overhead), the client's
//! overhead over the server's own timings, speed, quality and cost; and, when asked, the
//! published reference figures as labelled rows.

use super::reference::Published;
use super::sweep::{rows_with, SweepRow};
use super::table::{self, opt, or_dash, Column, Grid};
use super::{median, Format, ReportError};
use crate::record::{BackendId, Record, RequestRecord};
use std::collections::BTreeMap;

/// One HTTP backend against the native reference. Times in ms; rates in tokens per second.
#[derive(Debug, Clone, Default)]
pub struct CompareRow {
    pub backend: BackendId,
    pub requests: usize,
    pub failed_requests: usize,
    pub ttft_p50_ms: Option<f64>,
    /// Median over shared prompts of (this TTFT − native TTFT).
    pub ttft_delta_p50_ms: Option<f64>,
    pub decode_tps_p50: Option<f64>,
    /// Median decode rate here / median native decode rate, over shared prompts.
    pub decode_ratio: Option<f64>,
    /// Median of the server's own prompt time (llama-server `timings`, Ollama durations).
    pub server_prompt_ms_p50: Option<f64>,
    /// Median over requests of (client TTFT − server prompt time): network, HTTP, queueing,
    /// sampling of the first token and the client itself.
    pub client_overhead_p50_ms: Option<f64>,
    /// Median over requests of client decode rate / server-reported decode rate.
    pub decode_vs_server: Option<f64>,
    /// Share of prompt tokens the server took from its prompt cache (native evaluates every
    /// prompt: a cached prompt makes TTFT incomparable), over the requests whose server prompt
    /// count runner believed (the record's `prompt_tokens`).
    pub cached_prompt_share: Option<f64>,
    pub cost_usd: Option<f64>,
    pub quality: Option<f64>,
    pub cost_per_quality_point: Option<f64>,
}

/// The comparison.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// The native cell the HTTP rows are compared with (`model/quant`).
    pub reference: Option<String>,
    pub rows: Vec<CompareRow>,
    pub published: Vec<Published<String>>,
}

/// The published figures shipped with runner, built into the binary so that it shows them
/// wherever it runs.
const PUBLISHED_CSV: &str = include_str!("../../results/reference/published.csv");

/// The rows of [`PUBLISHED_CSV`].
fn read_published() -> Vec<Published<String>> {
    csv::Reader::from_reader(PUBLISHED_CSV.as_bytes())
        .deserialize()
        .filter_map(Result::ok)
        .collect()
}

/// Builds the comparison when any HTTP backend ran or references are asked for.
pub fn build(records: &[Record], power: f64, reference: bool) -> Option<Comparison> {
    // Requests of load levels shared the machine: they are compared in the load table.
    let reqs: Vec<&RequestRecord> = crate::record::requests(records)
        .filter(|q| q.traffic.is_none())
        .collect();
    let http = reqs.iter().any(|r| !r.cell.backend.is_native());
    if !http && !reference {
        return None;
    }
    let rows = rows_with(records, power);
    let native = reqs
        .iter()
        .find(|r| r.cell.backend.is_native())
        .map(|r| r.cell.clone());
    let base: Vec<&RequestRecord> = reqs
        .iter()
        .copied()
        .filter(|r| Some(&r.cell) == native.as_ref() && !r.failed)
        .collect();
    let out = rows
        .iter()
        .filter(|row| !row.backend.is_native())
        .map(|row| compare_row(row, &reqs, &base))
        .collect();
    Some(Comparison {
        reference: native.map(|k| format!("{}/{}", crate::models::display_name(&k.model), k.quant)),
        rows: out,
        published: reference.then(read_published).unwrap_or_default(),
    })
}

/// A request's scenario and prompt: what pairs it with the same prompt on another backend.
fn prompt(r: &RequestRecord) -> (&str, &str) {
    (&r.scenario, &r.prompt_id)
}

fn compare_row(row: &SweepRow, reqs: &[&RequestRecord], base: &[&RequestRecord]) -> CompareRow {
    let mine: Vec<&RequestRecord> = reqs
        .iter()
        .copied()
        .filter(|r| r.cell.backend == row.backend && r.cell.model == row.model)
        .collect();
    let ok: Vec<&RequestRecord> = mine.iter().copied().filter(|r| !r.failed).collect();
    let by_prompt: BTreeMap<(&str, &str), &RequestRecord> =
        base.iter().map(|r| (prompt(r), *r)).collect();
    let pairs: Vec<(&RequestRecord, &RequestRecord)> = ok
        .iter()
        .filter_map(|r| Some((*r, *by_prompt.get(&prompt(r))?)))
        .collect();
    let (h_rates, n_rates): (Vec<f64>, Vec<f64>) = pairs
        .iter()
        .filter_map(|(h, n)| Some((h.decode_tps?, n.decode_tps?)))
        .unzip();
    // The server's own figures: its prompt time, and the prompt tokens it took from its cache.
    let servers = || ok.iter().filter_map(|r| Some((*r, r.server.as_ref()?)));
    // Only counts runner believed: the server's prompt count is the record's (one not believed
    // was replaced by runner's own count, or by 0), and the cached count is within it.
    let (mut prompt, mut cached) = (0u128, 0u128);
    for (r, s) in servers() {
        let believed = Some(u64::from(r.prompt_tokens)).filter(|&p| p > 0);
        if let (Some(p), Some(c)) = (
            believed.filter(|&p| s.prompt_tokens == Some(p)),
            s.cached_prompt_tokens,
        ) {
            if c <= p {
                prompt = prompt.saturating_add(u128::from(p));
                cached = cached.saturating_add(u128::from(c));
            }
        }
    }
    CompareRow {
        cached_prompt_share: (prompt > 0).then(|| cached as f64 / prompt as f64),
        backend: row.backend.clone(),
        requests: mine.len(),
        failed_requests: mine.len() - ok.len(),
        ttft_p50_ms: median(ok.iter().filter_map(|r| r.ttft_ms)),
        ttft_delta_p50_ms: median(
            pairs
                .iter()
                .filter_map(|(h, n)| Some(h.ttft_ms? - n.ttft_ms?)),
        ),
        decode_tps_p50: median(ok.iter().filter_map(|r| r.decode_tps)),
        decode_ratio: match (median(h_rates), median(n_rates)) {
            (Some(h), Some(n)) if n > 0.0 => Some(h / n),
            _ => None,
        },
        server_prompt_ms_p50: median(servers().filter_map(|(_, s)| s.prompt_ms)),
        client_overhead_p50_ms: median(
            servers().filter_map(|(r, s)| Some(r.ttft_ms? - s.prompt_ms?)),
        ),
        decode_vs_server: median(
            servers().filter_map(|(r, s)| Some(r.decode_tps? / s.decode_tps.filter(|s| *s > 0.0)?)),
        ),
        cost_usd: row.cost_usd,
        quality: row.quality,
        cost_per_quality_point: row.cost_per_quality_point,
    }
}

fn signed(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:+.1}"))
}

/// One HTTP backend's columns.
const BACKENDS: &[Column<CompareRow>] = &[
    Column::text("backend", |r| r.backend.to_string()),
    Column::number("requests", |r| r.requests.to_string()),
    Column::number("failed", |r| r.failed_requests.to_string()),
    Column::number("TTFT p50 ms", |r| opt(r.ttft_p50_ms, 1)),
    Column::number("ΔTTFT vs native ms", |r| signed(r.ttft_delta_p50_ms)),
    Column::number("decode tok/s", |r| opt(r.decode_tps_p50, 2)),
    Column::number("decode ratio vs native", |r| opt(r.decode_ratio, 3)),
    Column::number("server prompt ms", |r| opt(r.server_prompt_ms_p50, 1)),
    Column::number("client overhead ms", |r| opt(r.client_overhead_p50_ms, 2)),
    Column::number("decode vs server", |r| opt(r.decode_vs_server, 3)),
    Column::number("prompt cached", |r| {
        r.cached_prompt_share
            .map_or("-".into(), |c| format!("{:.0}%", c * 100.0))
    }),
    Column::number("cost $/run", |r| opt(r.cost_usd, 4)),
    Column::number("quality", |r| opt(r.quality, 1)),
    Column::number("$/quality pt", |r| opt(r.cost_per_quality_point, 6)),
];

/// A published reference row's columns.
const PUBLISHED: &[Column<Published<String>>] = &[
    Column::text("published", |r| or_dash(r.published.as_deref())),
    Column::text("runtime", |r| or_dash(r.runtime.as_deref())),
    Column::text("model", |r| or_dash(r.model.as_str())),
    Column::text("machine", |r| or_dash(r.machine.as_str())),
    Column::text("quant", |r| or_dash(r.quant.as_deref())),
    Column::text("scenario", |r| or_dash(r.scenario.as_deref())),
    Column::number("gen tok/s", |r| or_dash(r.gen_tok_s.as_deref())),
    Column::number("TTFT s", |r| or_dash(r.ttft_s.as_deref())),
    Column::number("quality", |r| match (&r.quality, &r.quality_scale) {
        (None, _) => "-".to_string(),
        (Some(q), None) => q.clone(),
        (Some(q), Some(s)) => format!("{q}/{s}"),
    }),
    Column::number("cost $", |r| or_dash(r.cost_usd.as_deref())),
    Column::text("source", |r| or_dash(r.source.as_str())),
];

/// The comparison as text under the sweep's table (table and Markdown formats; the machine
/// formats carry the sweep's rows only, from which the comparison is computed).
pub fn render(format: Format, c: Option<&Comparison>) -> Result<String, ReportError> {
    let Some(c) = c else {
        return Ok(String::new());
    };
    type Title = fn(&str) -> String;
    let (grid, title): (fn(Grid) -> String, Title) = match format {
        Format::Table => (|g| g.aligned(), |t| format!("\n{t}\n")),
        Format::Md => (|g| g.markdown(), |t| format!("\n**{t}**\n\n")),
        _ => return Ok(String::new()),
    };
    let mut s = String::new();
    if !c.rows.is_empty() {
        let against = c.reference.as_deref().unwrap_or("no native cell");
        s.push_str(&title(&format!(
            "backends against native ({against}), same prompts:"
        )));
        s.push_str(&grid(table::grid(BACKENDS, &c.rows)));
    }
    if !c.published.is_empty() {
        s.push_str(&title(
            "published reference figures (results/reference/published.csv; not measured here):",
        ));
        s.push_str(&grid(table::grid(PUBLISHED, &c.published)));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comparison_and_the_published_rows_render() {
        let c = Comparison {
            reference: Some("m/source".into()),
            rows: vec![CompareRow {
                backend: "openai:m".parse().unwrap(),
                cached_prompt_share: Some(0.5),
                ..Default::default()
            }],
            published: read_published(),
        };
        assert!(!c.published.is_empty(), "the shipped reference rows load");
        let t = render(Format::Table, Some(&c)).unwrap();
        assert!(t.contains("prompt cached") && t.contains("50%"), "{t}");
        assert!(t.contains("published reference figures") && t.contains("Claude Haiku 4.5"));
        assert_eq!(render(Format::Json, Some(&c)).unwrap(), "");
    }

    /// The prompt-cache share counts only the requests whose server counts runner believed:
    /// a server prompt count that is not the record's (not believed: the record holds runner's
    /// own count, or 0) is left out with its cached count, and a backend with none shows `-`.
    #[test]
    fn the_prompt_cache_share_counts_only_believed_counts() {
        let line = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl")
            .lines()
            .next()
            .unwrap();
        let native = Record::from_value(serde_json::from_str(line).unwrap()).unwrap();
        let Record::Request(native) = native else {
            panic!("the first line is a request")
        };
        let http = |backend: &str, record: u32, prompt: u64, cached: u64| {
            let mut r = native.clone();
            r.cell = crate::record::CellKey::http(&backend.parse::<BackendId>().unwrap());
            r.failed = false;
            r.prompt_tokens = record;
            r.server = Some(crate::record::ServerReport {
                prompt_tokens: Some(prompt),
                cached_prompt_tokens: Some(cached),
                ..Default::default()
            });
            Record::Request(r)
        };
        let records = vec![
            Record::Request(native.clone()),
            http("openai:m", 100, 100, 50),
            // Counts not believed: the record's prompt count is 0, or runner's own.
            http("openai:m", 0, 50_000, 49_990),
            http("openai:m", 30, 50_000, 49_990),
            http("openai:m", 0, u64::MAX, u64::MAX - 10),
            http("anthropic:m", 0, 50_000, 49_990),
            http("anthropic:m", 12, 50_000, 49_990),
        ];
        let c = build(&records, 1.0, false).expect("an HTTP backend ran");
        let row = |b: &str| {
            let b: BackendId = b.parse().unwrap();
            c.rows.iter().find(|r| r.backend == b).unwrap().clone()
        };
        let share = row("openai:m")
            .cached_prompt_share
            .expect("counts believed");
        assert!((share - 0.5).abs() < 1e-9, "{share}");
        assert_eq!(row("anthropic:m").cached_prompt_share, None);
        let t = render(Format::Table, Some(&c)).unwrap();
        let anthropic = t.lines().find(|l| l.starts_with("anthropic:m")).unwrap();
        assert!(!anthropic.contains('%'), "{anthropic}");
        assert!(t.contains("50%"), "{t}");
    }

    #[test]
    fn every_shipped_published_row_is_read() {
        let rows = csv::Reader::from_reader(PUBLISHED_CSV.as_bytes())
            .records()
            .count();
        assert!(rows >= 5);
        assert_eq!(
            read_published().len(),
            rows,
            "a published row did not parse"
        );
    }
}
