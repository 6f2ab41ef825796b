//! Where a request stood in a load level: the level's shape, the request's place in its
//! schedule, when it arrived and how long it waited, and whether batching changed its answer;
//! which run of the level a record came from, and which of a level's runs the readers use.

use super::schema::{CellKey, RequestRecord};
use crate::measure::load::{Sample, Shape, Slo};
use serde::{Deserialize, Serialize};

/// A request's part in a load level (`runner sweep --concurrency` or `--rate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    #[serde(flatten)]
    pub shape: Shape,
    /// Requests the level's schedule holds (of a level that `--duration` alone bounds, those it
    /// sent before the time ran out).
    pub level_requests: usize,
    /// This request's number in the schedule (0, 1, ...).
    pub seq: usize,
    /// The level's start → this request's arrival.
    pub arrival_ms: f64,
    /// Arrival → the start of its work (a sequence slot in-process, the attempt that was
    /// answered over HTTP, HTTP 429 retries and their waits included; a server's own queue is
    /// inside its TTFT). The record's other times run from the start of its work.
    pub queue_ms: f64,
    /// Other requests in flight when it started.
    pub concurrent: usize,
    /// The level's start → its last request's end.
    pub level_wall_ms: f64,
    /// The objectives the level was judged by, as `--slo` reads them (`ttft=2s,itl=150ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<String>,
    /// Greedy answers only, when the same prompt ran alone (concurrency 1) earlier in the
    /// same results file: whether the answer is the same text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as_alone: Option<bool>,
    /// Where it differs: the index of the first generated token whose text differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<u32>,
    /// Names the run of the level this record came from: a level run again (after an
    /// interruption, or with records lost) writes its records under a new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_run: Option<String>,
    /// How many records that run of the level wrote (its requests that ran): a run with fewer
    /// in the file lost some and is not a complete level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_records: Option<usize>,
}

impl Traffic {
    /// The objectives, when the record names valid ones.
    pub fn objectives(&self) -> Option<Slo> {
        Slo::parse(self.slo.as_deref()?).ok()
    }

    /// The request as a load-level sample: latencies from its arrival. Its tokens are the
    /// record's count (the timestamps where it has none); those its gaps span are counted as
    /// for the record's decode rate (`measure::Trace::tokens_spanned`): in-process every
    /// timestamp; over HTTP the server's count, or the streamed chunks where that count is
    /// at most one more (the end-of-generation token, which streams no text).
    pub fn sample(&self, q: &RequestRecord) -> Sample {
        let tokens = &q.token_ms;
        let stamps = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        let count = q.output_tokens;
        let spanned = match (q.http.is_some(), count) {
            (false, _) | (true, 0) => stamps,
            (true, n) if n.saturating_sub(stamps) <= 1 => stamps.min(n),
            (true, n) => n,
        };
        Sample {
            arrival_ms: self.arrival_ms,
            queue_ms: self.queue_ms,
            ttft_ms: q.ttft_ms.map(|t| t + self.queue_ms),
            e2e_ms: q.e2e_ms + self.queue_ms,
            output_tokens: spanned,
            counted: (count > 0).then_some(count),
            gaps_ms: crate::measure::gaps_ms(tokens).collect(),
            failed: q.failed,
        }
    }
}

/// One run of one load level of one cell, as a results file holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelRun {
    pub cell: CellKey,
    pub shape: Shape,
    /// Its name; `None` for records written before levels named their runs (each level's
    /// such records count as one run).
    pub run: Option<String>,
    /// Its records in the file.
    pub found: usize,
    /// The records it wrote, where they say.
    pub wrote: Option<usize>,
    /// The time of its latest record, where it reads as RFC 3339.
    pub latest: Option<time::OffsetDateTime>,
}

impl LevelRun {
    /// Whether the file holds every record the run wrote (records that do not say how many
    /// there were count as complete).
    pub fn complete(&self) -> bool {
        self.wrote.is_none_or(|n| self.found >= n)
    }
}

/// The runs of load levels among `requests`, in the order they first appear.
pub fn level_runs<'a>(requests: impl IntoIterator<Item = &'a RequestRecord>) -> Vec<LevelRun> {
    let mut out: Vec<LevelRun> = Vec::new();
    for q in requests {
        let Some(t) = &q.traffic else { continue };
        let time = q.provenance.instant();
        let at = out
            .iter()
            .position(|r| r.run == t.level_run && r.shape == t.shape && r.cell == q.cell);
        match at {
            Some(i) => {
                out[i].found += 1;
                out[i].latest = out[i].latest.max(time);
            }
            None => out.push(LevelRun {
                cell: q.cell.clone(),
                shape: t.shape,
                run: t.level_run.clone(),
                found: 1,
                wrote: t.level_records,
                latest: time,
            }),
        }
    }
    out
}

/// Of each level of each cell in `runs`, the run the readers use: its latest complete run
/// (by the time of its records, then the order they appear in), else its latest run.
fn picks(runs: &[LevelRun]) -> impl Iterator<Item = &LevelRun> {
    runs.iter().enumerate().filter_map(|(i, r)| {
        let same = |o: &&LevelRun| o.cell == r.cell && o.shape == r.shape;
        if runs[..i].iter().any(|o| same(&o)) {
            return None;
        }
        let latest = |complete: bool| {
            (runs.iter().filter(same))
                .filter(|o| !complete || o.complete())
                .max_by_key(|o| o.latest)
        };
        latest(true).or_else(|| latest(false))
    })
}

/// Which of `requests` the readers use: every request outside load levels, and of each level
/// of each cell one run, its latest complete one (else its latest), so that a level run again
/// (after losing records, or in another sweep) is counted once, from one run.
pub fn one_run_per_level(requests: &[&RequestRecord]) -> Vec<bool> {
    let runs = level_runs(requests.iter().copied());
    let chosen: Vec<&LevelRun> = picks(&runs).collect();
    requests
        .iter()
        .map(|q| match &q.traffic {
            None => true,
            Some(t) => chosen
                .iter()
                .any(|r| r.run == t.level_run && r.shape == t.shape && r.cell == q.cell),
        })
        .collect()
}

/// The runs [`one_run_per_level`] picks although they lost records: those of the levels
/// that have no complete run.
pub fn incomplete(runs: &[LevelRun]) -> impl Iterator<Item = &LevelRun> {
    picks(runs).filter(|r| !r.complete())
}
