//! Flags of a sweep's load levels (`--concurrency`, `--rate`, `--slo`, ...), and the validated
//! load configuration they become.

use super::values::{parse_positive, parse_seconds, parse_seed, parse_slots};
use crate::measure::load::{arrivals, parse_concurrency, parse_rates, Shape, Slo};
use crate::plan::load::{LoadConfig, MAX_REQUESTS};
use clap::Args;
use std::time::Duration;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Load levels (several requests at once)")]
pub struct LoadArgs {
    /// Closed-loop load levels: N requests in flight, a new one as soon as one ends; each
    /// cell runs once per level, e.g. 1,2,4,8.
    #[arg(long, value_name = "LIST", allow_negative_numbers = true)]
    pub concurrency: Option<String>,
    /// Open-loop load levels in requests per second: Poisson arrivals (seeded by --seed), at
    /// most --slots in flight, the rest waiting, e.g. 0.5,1,2 (each from 0.0001 to 10000).
    #[arg(long, value_name = "LIST", allow_negative_numbers = true)]
    pub rate: Option<String>,
    /// Requests in flight at most in an open-loop level, 1 to 256 [default: 4].
    #[arg(long, value_name = "N", value_parser = parse_slots, allow_negative_numbers = true)]
    pub slots: Option<u32>,
    /// Requests per level [default: 4 per request in flight, at least one per prompt; with
    /// --duration, as many as it allows]. Prompts are cycled.
    #[arg(long, value_name = "N", value_parser = parse_positive, allow_negative_numbers = true)]
    pub requests: Option<u32>,
    /// No request of a level starts after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Service-level objectives that goodput counts, e.g. ttft=2s,itl=150ms,e2e=30s
    /// (optionally share=95%: the share of requests a level must serve within them).
    #[arg(long, value_name = "SPEC")]
    pub slo: Option<String>,
    /// Seed of the open-loop arrival schedules, 0 to 18446744073709551615 [default: 1].
    #[arg(long, value_name = "N", value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: Option<u64>,
}

impl LoadArgs {
    /// The load configuration, `None` without --concurrency or --rate.
    pub fn validate(&self) -> Result<Option<LoadConfig>, String> {
        let mut levels: Vec<Shape> = Vec::new();
        if let Some(list) = &self.concurrency {
            for concurrency in parse_concurrency(list)? {
                levels.push(Shape::Closed { concurrency });
            }
        }
        if let Some(list) = &self.rate {
            let (slots, seed) = (self.slots.unwrap_or(4), self.seed.unwrap_or(1));
            for rate in parse_rates(list)? {
                levels.push(Shape::Open { rate, slots, seed });
            }
        }
        // The open-loop settings mean nothing to closed-loop levels alone.
        let open_only = (self.slots.map(|_| "--slots")).or(self.seed.map(|_| "--seed"));
        if let Some(flag) = open_only.filter(|_| self.rate.is_none()) {
            return Err(format!("{flag} needs open-loop load levels: give --rate"));
        }
        if levels.is_empty() {
            let needs_levels = (self.requests.map(|_| "--requests"))
                .or(self.duration.map(|_| "--duration"))
                .or(self.slo.as_ref().map(|_| "--slo"));
            if let Some(flag) = needs_levels {
                return Err(format!(
                    "{flag} needs load levels: give --concurrency or --rate"
                ));
            }
            return Ok(None);
        }
        if self.requests.is_some_and(|n| n as usize > MAX_REQUESTS) {
            return Err(format!("--requests: at most {MAX_REQUESTS} per level"));
        }
        let duration = match self.duration {
            None => None,
            Some(s) if (1.0..=86_400.0).contains(&s) => Duration::try_from_secs_f64(s).ok(),
            Some(_) => return Err("--duration: give seconds from 1 to a day (86400)".into()),
        };
        // An open-loop level whose schedule's first arrival comes after the duration would
        // send nothing and leave no record of itself.
        for level in &levels {
            if let (Shape::Open { rate, seed, .. }, Some(d)) = (level, duration) {
                let first = arrivals(*rate, 1, *seed).first().copied();
                if first.is_none_or(|t| t > d) {
                    return Err(format!(
                        "--rate {rate}: the first request of its schedule arrives {}, after \
                         --duration {} s; give a higher rate or a longer duration",
                        first.map_or("never".into(), |t| format!("at {t:?}")),
                        d.as_secs_f64()
                    ));
                }
            }
        }
        let slo = self
            .slo
            .as_deref()
            .map(Slo::parse)
            .transpose()
            .map_err(|e| format!("--slo: {e}"))?;
        Ok(Some(LoadConfig {
            levels,
            requests: self.requests.map(|n| n as usize),
            duration,
            slo,
        }))
    }
}
