//! One load level as a request: a scenario's prompts, cycled, sent as a closed loop (N in
//! flight, a new one as soon as one ends) or an open loop (seeded Poisson arrivals, at most
//! N in flight, the rest waiting), and every request's answer with its arrival and queueing
//! time. The native backend serves a level with continuous batching in one context; an HTTP
//! backend with one client thread per slot.

use super::exchange::Failure;
use super::{ChatReply, ChatRequest};
use crate::measure::load::{arrivals, Shape};
use crate::measure::{FailureKind, StopReason, Trace};
use crate::scenario::Prompt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A load level to run.
#[derive(Debug, Clone)]
pub struct LoadRequest<'a> {
    /// Sent in order, cycled as needed.
    pub prompts: Vec<&'a Prompt>,
    pub shape: Shape,
    /// How many requests the level sends.
    pub requests: usize,
    /// No request starts after this much time from the level's start.
    pub duration: Option<Duration>,
}

/// A level's requests, in the order they ended.
#[derive(Debug, Clone, Default)]
pub struct LoadReply {
    pub served: Vec<Served>,
    /// Requests of the schedule never sent (the duration ran out, or the run was
    /// interrupted).
    pub unsent: usize,
    /// Of those, the requests of an open loop that arrived within the duration (or before
    /// an interrupt) and found no slot in time.
    pub arrived_unsent: usize,
    /// The level's start → its last request's end.
    pub wall: Duration,
}

/// One request of a level.
#[derive(Debug, Clone)]
pub struct Served {
    /// The index of its prompt in [`LoadRequest::prompts`].
    pub prompt: usize,
    /// Its number in the level's schedule (0, 1, ...).
    pub seq: usize,
    /// The level's start → its arrival.
    pub arrival: Duration,
    /// Arrival → the start of its work (a slot in the batch, or the HTTP attempt that
    /// answered: waits for a slot, and for HTTP 429 retries, count here). Its trace's times
    /// run from there.
    pub queue: Duration,
    /// How many other requests were in flight when it started.
    pub concurrent: usize,
    pub reply: ChatReply,
}

/// Which request comes next and when, shared by the slots of a level.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    shape: Shape,
    /// Open loop: each request's arrival from the start.
    times: Vec<Duration>,
    total: usize,
    issued: usize,
    deadline: Option<Instant>,
    n_prompts: usize,
}

impl Schedule {
    pub fn new(req: &LoadRequest<'_>, start: Instant) -> Schedule {
        let (times, total) = match req.shape {
            Shape::Open { rate, seed, .. } => {
                let times = arrivals(rate, req.requests, seed);
                let total = times.len();
                (times, total)
            }
            Shape::Closed { .. } => (Vec::new(), req.requests),
        };
        Schedule {
            start,
            shape: req.shape,
            times,
            total,
            issued: 0,
            deadline: req.duration.and_then(|d| start.checked_add(d)),
            n_prompts: req.prompts.len(),
        }
    }

    /// The level's start.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Whether nothing more starts at `now`: past the duration, unless the next request of an
    /// open loop arrived within it and `now` is within [`WAKE_SLACK`] of its arrival (its
    /// sender woke a moment late; it did not wait for a slot).
    fn over(&self, now: Instant) -> bool {
        let Some(d) = self.deadline.filter(|&d| now > d) else {
            return false;
        };
        match (self.shape, self.times.get(self.issued)) {
            (Shape::Open { .. }, Some(&at)) => {
                let at = self.start + at;
                at > d || now > at + WAKE_SLACK
            }
            _ => true,
        }
    }

    /// The next request if it has arrived by `now`: (its number, its prompt, its arrival).
    pub fn take(&mut self, now: Instant) -> Option<(usize, usize, Duration)> {
        if self.issued >= self.total || self.n_prompts == 0 || self.over(now) {
            return None;
        }
        let arrival = match self.shape {
            Shape::Closed { .. } => now.saturating_duration_since(self.start),
            Shape::Open { .. } => {
                let at = self.times[self.issued];
                if self.start + at > now {
                    return None;
                }
                at
            }
        };
        let n = self.issued;
        self.issued += 1;
        Some((n, n % self.n_prompts, arrival))
    }

    /// When the next request arrives, if one will (open loop; a closed loop's next request
    /// is always waiting while any is left).
    pub fn next_arrival(&self) -> Option<Instant> {
        // Past the duration nothing more starts, arrived or not: requests still waiting for a
        // slot then are not sent.
        if self.issued >= self.total || self.n_prompts == 0 || self.over(Instant::now()) {
            return None;
        }
        let at = match self.shape {
            Shape::Closed { .. } => Instant::now(),
            Shape::Open { .. } => self.start + self.times[self.issued],
        };
        Some(at).filter(|&at| self.deadline.is_none_or(|d| at <= d))
    }

    /// Requests of the schedule not sent.
    pub fn unsent(&self) -> usize {
        self.total - self.issued
    }

    /// Requests of an open loop's schedule not sent that had arrived by `end` and within the
    /// duration (a closed loop's requests only arrive as slots come free).
    pub fn arrived_unsent(&self, end: Instant) -> usize {
        let by = self.deadline.map_or(end, |d| d.min(end));
        match self.shape {
            Shape::Closed { .. } => 0,
            Shape::Open { .. } => self.times[self.issued.min(self.times.len())..]
                .iter()
                .take_while(|&&t| self.start + t <= by)
                .count(),
        }
    }
}

/// How late past the duration an open loop's request that arrived within it still starts:
/// the time its sender may wake after the arrival it slept until.
const WAKE_SLACK: Duration = Duration::from_millis(50);

/// Runs a level over HTTP: one thread per slot, each taking the next request when it has
/// arrived and sending it with `send`.
pub fn run_threads(
    req: &LoadRequest<'_>,
    send: &(dyn Fn(&ChatRequest<'_>) -> ChatReply + Sync),
) -> LoadReply {
    let start = Instant::now();
    let schedule = Mutex::new(Schedule::new(req, start));
    let served = Mutex::new(Vec::new());
    let in_flight = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..req.shape.slots() {
            scope.spawn(|| loop {
                if crate::util::interrupt::requested() {
                    return;
                }
                // The next request if it has arrived, else when the next one will.
                let next = {
                    let mut s = schedule.lock().unwrap_or_else(PoisonError::into_inner);
                    s.take(Instant::now()).ok_or_else(|| s.next_arrival())
                };
                let (seq, p, arrival) = match next {
                    Ok(n) => n,
                    Err(Some(t)) => {
                        nap_until(t);
                        continue;
                    }
                    Err(None) => return,
                };
                let sent = start.elapsed();
                let concurrent = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = send(&ChatRequest::new(req.prompts[p]));
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                served
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Served {
                        prompt: p,
                        seq,
                        arrival,
                        queue: sent.saturating_sub(arrival) + reply.before_answer,
                        concurrent,
                        reply,
                    });
            });
        }
    });
    let schedule = schedule
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    LoadReply {
        served: served.into_inner().unwrap_or_else(PoisonError::into_inner),
        unsent: schedule.unsent(),
        arrived_unsent: schedule.arrived_unsent(Instant::now()),
        wall: start.elapsed(),
    }
}

/// Sleeps until `t` (at most 50 ms at a time, so an interrupt is seen).
fn nap_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep((t - now).min(Duration::from_millis(50)));
    }
}

/// The reply of a request that could not run.
pub fn failed_reply(why: String) -> ChatReply {
    ChatReply {
        trace: Trace {
            stop: Some(StopReason::Error),
            ..Default::default()
        },
        failure: Some(Failure::new(FailureKind::Other, why)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Prompt;

    fn request<'a>(prompts: &'a [Prompt], shape: Shape, n: usize) -> LoadRequest<'a> {
        LoadRequest {
            prompts: prompts.iter().collect(),
            shape,
            requests: n,
            duration: None,
        }
    }

    fn prompts(n: usize) -> Vec<Prompt> {
        let p = crate::scenario::Prompt::default();
        (0..n)
            .map(|i| Prompt {
                id: format!("p{i}"),
                ..p.clone()
            })
            .collect()
    }

    #[test]
    fn a_closed_loop_hands_out_every_request_at_once_and_cycles_the_prompts() {
        let ps = prompts(2);
        let start = Instant::now();
        let mut s = Schedule::new(&request(&ps, Shape::Closed { concurrency: 2 }, 5), start);
        let got: Vec<(usize, usize)> = (0..6)
            .filter_map(|_| s.take(start).map(|(n, p, _)| (n, p)))
            .collect();
        assert_eq!(got, vec![(0, 0), (1, 1), (2, 0), (3, 1), (4, 0)]);
        assert_eq!(s.unsent(), 0);
        assert_eq!(s.next_arrival(), None);
    }

    #[test]
    fn an_open_loop_hands_out_a_request_only_once_it_has_arrived() {
        let ps = prompts(3);
        let shape = Shape::Open {
            rate: 10.0,
            slots: 2,
            seed: 3,
        };
        let start = Instant::now();
        let req = request(&ps, shape, 4);
        let mut s = Schedule::new(&req, start);
        let times = arrivals(10.0, 4, 3);
        assert!(s.take(start + times[0] / 2).is_none(), "not arrived yet");
        assert_eq!(s.next_arrival(), Some(start + times[0]));
        let (n, p, at) = s.take(start + times[0]).expect("arrived");
        assert_eq!((n, p, at), (0, 0, times[0]));
        // Late: every request that has arrived is handed out, each with its own arrival.
        let late = start + times[3] + Duration::from_secs(1);
        let rest: Vec<Duration> = (0..5).filter_map(|_| s.take(late).map(|x| x.2)).collect();
        assert_eq!(rest, times[1..].to_vec());
    }

    #[test]
    fn no_request_starts_after_the_duration() {
        let ps = prompts(1);
        let start = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .expect("uptime");
        // A closed loop; and an open loop whose arrivals came before the end but waited for
        // a slot past it: none is handed out or waited for (a slot would otherwise spin on an
        // arrival in the past).
        let open = Shape::Open {
            rate: 100.0,
            slots: 1,
            seed: 1,
        };
        for shape in [Shape::Closed { concurrency: 1 }, open] {
            let mut req = request(&ps, shape, 100);
            req.duration = Some(Duration::from_secs(5));
            let mut s = Schedule::new(&req, start);
            assert!(s.take(Instant::now()).is_none(), "{shape:?}");
            assert_eq!(s.next_arrival(), None, "{shape:?}");
            assert_eq!(s.unsent(), 100, "{shape:?}");
            // Of those, only an open loop's arrivals within the 5 s had come and found no
            // slot: at 100 req/s, about 500 of the schedule, here all 100.
            let arrived = match shape {
                Shape::Closed { .. } => 0,
                Shape::Open { .. } => 100,
            };
            assert_eq!(s.arrived_unsent(Instant::now()), arrived, "{shape:?}");
        }
        // Arrivals after the duration, or not yet come, are not counted as arrived.
        let mut req = request(&ps, open, 1000);
        req.duration = Some(Duration::from_secs(1));
        let s = Schedule::new(&req, start);
        let within = arrivals(100.0, 1000, 1)
            .iter()
            .filter(|&&t| t <= Duration::from_secs(1))
            .count();
        assert!((50..200).contains(&within), "{within}");
        assert_eq!(s.arrived_unsent(Instant::now()), within);
        assert_eq!(s.arrived_unsent(start), 0);
        // A request arriving just within the duration, taken a moment after it ends (its
        // sender woke late), still starts: the level sends what its schedule promised.
        let shape = Shape::Open {
            rate: 1.0,
            slots: 1,
            seed: 1,
        };
        let first = arrivals(1.0, 1, 1)[0];
        let mut req = request(&ps, shape, 1);
        req.duration = Some(first);
        let start = Instant::now();
        let mut s = Schedule::new(&req, start);
        let woke = start + first + Duration::from_millis(2);
        assert_eq!(s.take(woke).map(|x| x.2), Some(first));
        // One taken well after it (a wait for a slot) does not.
        let mut s = Schedule::new(&req, start);
        assert!(s.take(start + first + Duration::from_secs(1)).is_none());
    }
}
