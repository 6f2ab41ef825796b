//! Where a request stood in a load level: the level's shape, the request's place in its
//! schedule, when it arrived and how long it waited, and whether batching changed its answer.

use crate::measure::load::{Sample, Shape, Slo};
use serde::{Deserialize, Serialize};

/// A request's part in a load level (`runner sweep --concurrency` or `--rate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    #[serde(flatten)]
    pub shape: Shape,
    /// Requests the level's schedule holds.
    pub level_requests: usize,
    /// This request's number in the schedule (0, 1, ...).
    pub seq: usize,
    /// The level's start → this request's arrival.
    pub arrival_ms: f64,
    /// Arrival → the start of its work (a sequence slot in-process, the request sent over
    /// HTTP; a server's own queue is inside its TTFT). The record's other times run from
    /// the start of its work.
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
}

impl Traffic {
    /// The objectives, when the record names valid ones.
    pub fn objectives(&self) -> Option<Slo> {
        Slo::parse(self.slo.as_deref()?).ok()
    }

    /// The request as a load-level sample: latencies from its arrival.
    pub fn sample(
        &self,
        ttft_ms: Option<f64>,
        e2e_ms: f64,
        tokens: &[f64],
        failed: bool,
    ) -> Sample {
        Sample {
            arrival_ms: self.arrival_ms,
            queue_ms: self.queue_ms,
            ttft_ms: ttft_ms.map(|t| t + self.queue_ms),
            e2e_ms: e2e_ms + self.queue_ms,
            output_tokens: u32::try_from(tokens.len()).unwrap_or(u32::MAX),
            gaps_ms: crate::measure::gaps_ms(tokens).collect(),
            failed,
        }
    }
}
