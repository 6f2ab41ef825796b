//! A sweep's load-level cells: the level as one request of the run loop, and the records of
//! its requests, each with its place in the level.

use super::SweepPlan;
use crate::backend::load::LoadRequest;
use crate::backend::Reply;
use crate::exec::Observed;
use crate::measure::load::Shape;
use crate::measure::ms;
use crate::plan::load as levels;
use crate::record::{Record, Traffic};

impl SweepPlan {
    /// The level of cell `c`: its prompts, cycled.
    pub(super) fn load_request(&self, c: usize, shape: Shape) -> LoadRequest<'_> {
        LoadRequest {
            prompts: (0..self.pending[c].0.len())
                .map(|id| self.prompt(c, id).1)
                .collect(),
            shape,
            requests: self.level_size(c, shape),
            duration: self.shared.load.as_ref().and_then(|l| l.duration),
        }
    }

    /// How many requests the level of cell `c` sends.
    fn level_size(&self, c: usize, shape: Shape) -> usize {
        let prompts = self.pending[c].0.len();
        (self.shared.load.as_ref()).map_or(prompts, |l| l.requests_for(&shape, prompts))
    }

    /// The records of a level: one per request that ran, in the order they ended.
    pub(super) fn load_records(
        &mut self,
        c: usize,
        shape: Shape,
        reply: Reply,
        seen: &Observed<'_>,
    ) -> Vec<Record> {
        let level = match reply {
            Reply::Load(l) => l,
            Reply::Failed(f) => {
                return vec![self.failure(c, format!("{}: {}", shape.label(), f.message))]
            }
            _ => return Vec::new(),
        };
        // A level of as many requests as the duration allows leaves the rest unsent by design.
        let counted = (self.shared.load.as_ref()).is_some_and(|l| l.requests.is_some());
        let label = &self.cells[c].label;
        if counted && level.unsent > 0 {
            seen.obs.warn(&format!(
                "{label}: {} of the level's {} requests were not sent (the duration ran out)",
                level.unsent,
                self.level_size(c, shape)
            ));
        } else if level.arrived_unsent > 0 && !crate::util::interrupt::requested() {
            seen.obs.warn(&format!(
                "{label}: {} request(s) that arrived within the duration were not sent (no slot \
                 came free in time)",
                level.arrived_unsent
            ));
        }
        // What every request of the level records of it; each adds its own place in it. A level
        // that the duration alone bounds holds the requests it sent, not the cap on them.
        let size = self.level_size(c, shape);
        let level_traffic = Traffic {
            shape,
            level_requests: if counted {
                size
            } else {
                size - level.unsent.min(size)
            },
            seq: 0,
            arrival_ms: 0.0,
            queue_ms: 0.0,
            concurrent: 0,
            level_wall_ms: ms(level.wall),
            slo: (self.shared.load.as_ref()).and_then(|l| Some(l.slo.as_ref()?.describe())),
            same_as_alone: None,
            diverged_at: None,
            level_run: Some(levels::run_name()),
            level_records: Some(level.served.len()),
        };
        let mut out = Vec::with_capacity(level.served.len());
        for mut s in level.served {
            let ends = std::mem::take(&mut s.reply.token_ends);
            let mut t = Traffic {
                seq: s.seq,
                arrival_ms: ms(s.arrival),
                queue_ms: ms(s.queue),
                concurrent: s.concurrent,
                ..level_traffic.clone()
            };
            let mut r = self.record(c, s.prompt, s.reply, seen);
            let greedy = self.prompt(c, s.prompt).1.sampling.is_greedy();
            if let (true, Some(reference), Some(text)) =
                (greedy, self.alone.get(&r.prompt_id), r.text.as_deref())
            {
                let (same, at) = levels::compare(reference, text, &ends);
                t.same_as_alone = Some(same);
                t.diverged_at = at;
            }
            r.traffic = Some(t);
            out.push(Record::Request(Box::new(r)));
        }
        out
    }
}
