//! Load levels in a sweep (`--concurrency`, `--rate`): each (backend, model, quantization)
//! cell runs once per level, as one request of the run loop that sends the level's whole
//! schedule; what a level needs: its size, which levels are already recorded, the answers a
//! prompt got alone.

use crate::measure::load::{Shape, Slo};
use crate::record::{CellKey, Record};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The load levels of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadConfig {
    /// In the order they run: closed-loop levels, then open-loop ones.
    pub levels: Vec<Shape>,
    /// Requests per level [default: 4 per slot, at least one per prompt].
    pub requests: Option<usize>,
    /// No request of a level starts after this long.
    pub duration: Option<Duration>,
    pub slo: Option<Slo>,
}

/// The most requests a level may hold: a level with a --duration and no --requests schedules
/// this many and stops starting them when the time is up.
pub const MAX_REQUESTS: usize = 100_000;

impl LoadConfig {
    /// How many requests a level sends over `prompts` prompts.
    pub fn requests_for(&self, shape: &Shape, prompts: usize) -> usize {
        match (self.requests, self.duration) {
            (Some(n), _) => n,
            // A duration with no count: as many as the time allows.
            (None, Some(_)) => MAX_REQUESTS,
            (None, None) => (4 * shape.slots() as usize).max(prompts),
        }
    }

    /// What names the configuration in the results file's id (so that a different load
    /// is a different file).
    pub fn id_part(&self) -> serde_json::Value {
        serde_json::json!({
            "levels": self.levels,
            "requests": self.requests,
            "duration_s": self.duration.map(|d| d.as_secs_f64()),
        })
    }
}

/// Whether `records` hold a level of cell `key` with this shape: a run of it that ran to its
/// end (a level's records are written together when it ends) with none of its records lost.
pub fn level_done(records: &[Record], key: &CellKey, shape: &Shape) -> bool {
    crate::record::traffic::level_runs(crate::record::requests(records))
        .iter()
        .any(|r| r.cell == *key && r.shape == *shape && r.complete())
}

/// The answers of cell `key`'s prompts run alone (a closed loop of 1) in `records`, by
/// prompt id: the references that batched answers are compared with.
pub fn alone_answers(records: &[Record], key: &CellKey) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for q in crate::record::requests(records) {
        let alone = q.traffic.as_ref().map(|t| t.shape) == Some(Shape::Closed { concurrency: 1 });
        if let (true, Some(text)) = (alone && q.cell == *key && !q.failed, &q.text) {
            out.entry(q.prompt_id.clone())
                .or_insert_with(|| text.clone());
        }
    }
    out
}

/// Whether `text` is `reference`, and if not, the first generated token whose text differs
/// (`ends`: the text's length in bytes after each token).
pub fn compare(reference: &str, text: &str, ends: &[usize]) -> (bool, Option<u32>) {
    if reference == text {
        return (true, None);
    }
    let common = reference
        .bytes()
        .zip(text.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let at = ends.iter().position(|&e| e > common).unwrap_or(ends.len());
    (false, u32::try_from(at).ok())
}

/// A name for one run of a level: this process and the time it ended.
pub fn run_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_the_first_differing_token() {
        // Tokens "The", " cat", " sat" / " ran".
        let ends = [3, 7, 11];
        assert_eq!(compare("The cat sat", "The cat sat", &ends), (true, None));
        assert_eq!(
            compare("The cat sat", "The cat ran", &ends),
            (false, Some(2))
        );
        assert_eq!(
            compare("The dog sat", "The cat sat", &ends),
            (false, Some(1))
        );
        // A shorter answer that is a prefix: it differs where it ended.
        assert_eq!(
            compare("The cat sat on", "The cat sat", &ends),
            (false, Some(3))
        );
    }

    #[test]
    fn default_level_size_follows_the_slots_and_prompts() {
        let cfg = LoadConfig {
            levels: vec![],
            requests: None,
            duration: None,
            slo: None,
        };
        assert_eq!(cfg.requests_for(&Shape::Closed { concurrency: 4 }, 3), 16);
        assert_eq!(cfg.requests_for(&Shape::Closed { concurrency: 1 }, 10), 10);
        let fixed = LoadConfig {
            requests: Some(5),
            ..cfg
        };
        assert_eq!(fixed.requests_for(&Shape::Closed { concurrency: 8 }, 3), 5);
    }
}
