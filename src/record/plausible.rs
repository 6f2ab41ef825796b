//! Figures a record cannot truly hold. A rate, time, bandwidth, load, cost, size or count that
//! is negative, not a number, or past a generous physical bound, a judge's score outside its
//! rubric's scale, or bandwidth figures that do not agree with each other, were damaged or
//! edited after runner wrote them: the readers of records (guide, report, check) leave such a
//! record out and say why, rather than put the figure in a table, a sum or a fit.

use super::http::{HttpReport, ServerReport};
use super::schema::{BenchRecord, Judgement, LoadReport, Record, RequestRecord};
use crate::engine::{MemoryUsage, ModelInfo};
use crate::hw::machine::MachineInfo;
use crate::measure::bandwidth::Bandwidth;
use crate::measure::histogram::HistogramSummary;
use crate::measure::stats::Summary;
use crate::util::shown;

/// The most a figure of one kind may be (the least is 0), with its unit.
#[derive(Clone, Copy)]
struct Bound(f64, &'static str);

/// The most tokens per second a figure may be: a hundred million, far past any prompt
/// evaluation.
pub const MAX_TPS: f64 = 1e8;
/// The most milliseconds a time may be: a year.
pub const MAX_MS: f64 = 365.0 * 24.0 * 3600.0 * 1e3;

/// Tokens per second.
const RATE: Bound = Bound(MAX_TPS, "tok/s");
/// Milliseconds.
const MS: Bound = Bound(MAX_MS, "ms");
/// Microseconds: a year.
const US: Bound = Bound(MS.0 * 1e3, "µs");
/// GB/s: a million, ten times past any memory system.
const GBPS: Bound = Bound(1e6, "GB/s");
/// A share (of a peak, of token time): ten thousand times the whole.
const SHARE: Bound = Bound(1e4, "(share)");
/// Cores kept busy by other processes.
const CORES: Bound = Bound(1e5, "cores");
/// US dollars for one request, the most a provider's reported cost is believed to be.
const USD: Bound = Bound(1e6, "USD");
/// KV positions attended to per token.
const POSITIONS: Bound = Bound(1e9, "positions");
/// Bytes (of a model, a token's reads, a machine's memory): a pebibyte. Three such sizes still
/// add up within 64 bits.
const BYTES: Bound = Bound(1125899906842624.0, "bytes");
/// Parameters of a model: a thousand trillion.
const PARAMS: Bound = Bound(1e15, "parameters");
/// Bits a weight takes: 64, a double.
const BITS: Bound = Bound(64.0, "bits/weight");
/// A request's score: the share of its graders that passed.
const SCORE: Bound = Bound(1.0, "(share)");
/// The least bandwidth a measured or published peak may be, as `runner hw` saves it.
const LEAST_PEAK_GBPS: f64 = 0.1;

/// Why `record` cannot be true: a time that is not RFC 3339, or its first figure that is
/// negative, not finite or past its bound, named by field; `None` when every figure could be.
/// The figures of profiles are not checked.
pub fn implausible(record: &Record) -> Option<String> {
    let mut c = Check::default();
    let time = match record {
        Record::Bench(r) => &r.provenance.time,
        Record::Request(r) => &r.provenance.time,
        Record::CellFailed(f) => &f.provenance.time,
        Record::Judgement(j) => &j.provenance.time,
        Record::Profile(p) => &p.provenance.time,
    };
    c.time(time);
    match record {
        Record::Bench(r) => c.bench(r),
        Record::Request(r) => c.request(r),
        Record::Judgement(j) => c.judgement(j),
        Record::CellFailed(_) | Record::Profile(_) => {}
    }
    c.why
}

/// The first figure found out of its bounds.
#[derive(Default)]
struct Check {
    why: Option<String>,
}

impl Check {
    /// A record's time, which reports print as it is: RFC 3339, or empty (not known).
    fn time(&mut self, t: &str) {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        if !t.is_empty() && time::OffsetDateTime::parse(t, rfc3339).is_err() {
            let shown: String = t.chars().take(40).collect();
            self.why = Some(format!("time {:?} is not an RFC 3339 time", shown));
        }
    }

    fn num(&mut self, name: &str, v: f64, Bound(max, unit): Bound) {
        if !(v.is_finite() && (0.0..=max).contains(&v)) {
            self.fail(format!(
                "{name} {} is outside 0 to {max:e} {unit}",
                shown(v, 1e-3)
            ));
        }
    }

    /// A whole number of bytes or units, checked as a figure (so `u64::MAX` is named as past
    /// its bound instead of wrapping a later sum).
    fn int(&mut self, name: &str, v: u64, Bound(max, unit): Bound) {
        if v as f64 > max {
            self.fail(format!("{name} {v} is outside 0 to {max:e} {unit}"));
        }
    }

    /// `why` unless an earlier figure already failed.
    fn fail(&mut self, why: String) {
        if self.why.is_none() {
            self.why = Some(why);
        }
    }

    fn opt(&mut self, name: &str, v: Option<f64>, b: Bound) {
        if let Some(v) = v {
            self.num(name, v, b);
        }
    }

    fn all(&mut self, name: &str, vs: &[f64], b: Bound) {
        for &v in vs {
            self.num(name, v, b);
        }
    }

    fn summary(&mut self, name: &str, s: &Option<Summary>, b: Bound) {
        let Some(s) = s else { return };
        for (part, v) in [
            ("mean", s.mean),
            ("sd", s.sd),
            ("min", s.min),
            ("median", s.median),
            ("p90", s.p90),
            ("p99", s.p99),
            ("max", s.max),
        ] {
            self.num(&format!("{name}.{part}"), v, b);
        }
    }

    fn histogram(&mut self, name: &str, h: &Option<HistogramSummary>) {
        let Some(h) = h else { return };
        for (part, v) in [
            ("min_ms", h.min_ms),
            ("mean_ms", h.mean_ms),
            ("p50_ms", h.p50_ms),
            ("p90_ms", h.p90_ms),
            ("p99_ms", h.p99_ms),
            ("p999_ms", h.p999_ms),
            ("max_ms", h.max_ms),
        ] {
            self.num(&format!("{name}.{part}"), v, MS);
        }
    }

    fn bandwidth(&mut self, b: &Option<Bandwidth>) {
        let Some(b) = b else { return };
        self.int("bandwidth.bytes_per_token", b.bytes_per_token, BYTES);
        self.int(
            "bandwidth.weight_bytes_per_token",
            b.weight_bytes_per_token,
            BYTES,
        );
        self.int("bandwidth.kv_bytes_per_token", b.kv_bytes_per_token, BYTES);
        self.num("bandwidth.kv_depth", b.kv_depth, POSITIONS);
        self.num("bandwidth.decode_tps", b.decode_tps, RATE);
        self.num("bandwidth.achieved_gbps", b.achieved_gbps, GBPS);
        for (part, v, bound) in [
            ("measured_peak_gbps", b.measured_peak_gbps, GBPS),
            ("published_peak_gbps", b.published_peak_gbps, GBPS),
            ("utilisation_measured", b.utilisation_measured, SHARE),
            ("utilisation_published", b.utilisation_published, SHARE),
        ] {
            self.opt(&format!("bandwidth.{part}"), v, bound);
        }
        for (name, peak) in [
            ("bandwidth.measured_peak_gbps", b.measured_peak_gbps),
            ("bandwidth.published_peak_gbps", b.published_peak_gbps),
        ] {
            if let Some(v) = peak.filter(|&v| v < LEAST_PEAK_GBPS) {
                self.fail(format!(
                    "{name} {} is below {LEAST_PEAK_GBPS} GB/s",
                    shown(v, 1e-3)
                ));
            }
        }
        if self.why.is_some() {
            return;
        }
        // runner writes the total and the achieved bandwidth from the parts: figures that
        // disagree were edited.
        if b.bytes_per_token == 0 {
            self.fail("bandwidth.bytes_per_token is 0: a token reads its weights".into());
        } else if b.bytes_per_token != b.weight_bytes_per_token + b.kv_bytes_per_token {
            self.fail(format!(
                "bandwidth.bytes_per_token {} is not weight_bytes_per_token {} + \
                 kv_bytes_per_token {}",
                b.bytes_per_token, b.weight_bytes_per_token, b.kv_bytes_per_token
            ));
        } else if !agree(
            b.achieved_gbps,
            b.bytes_per_token as f64 * b.decode_tps / 1e9,
        ) {
            self.fail(format!(
                "bandwidth.achieved_gbps {} is not bytes_per_token {} × decode_tps {}",
                shown(b.achieved_gbps, 1e-3),
                b.bytes_per_token,
                shown(b.decode_tps, 1e-3)
            ));
        }
    }

    fn sizes(&mut self, at: &str, model: &ModelInfo, memory: &MemoryUsage, m: &MachineInfo) {
        self.int(&format!("{at}model.size_bytes"), model.size_bytes, BYTES);
        self.int(&format!("{at}model.n_params"), model.n_params, PARAMS);
        self.num(
            &format!("{at}model.bits_per_weight"),
            model.bits_per_weight,
            BITS,
        );
        for (part, v) in [
            ("peak_rss_bytes", memory.peak_rss_bytes),
            ("model_bytes", memory.model_bytes),
            ("kv_cache_bytes", memory.kv_cache_bytes),
            ("compute_buffer_bytes", memory.compute_buffer_bytes),
        ] {
            self.int(&format!("{at}memory.{part}"), v, BYTES);
        }
        self.int(&format!("{at}machine.ram_bytes"), m.ram_bytes, BYTES);
        self.int(
            &format!("{at}machine.logical_cores"),
            m.logical_cores as u64,
            CORES,
        );
        if let Some(p) = m.physical_cores {
            self.int(&format!("{at}machine.physical_cores"), p as u64, CORES);
        }
    }

    fn load(&mut self, l: &LoadReport) {
        for (part, v) in [
            ("before_other_cores", l.before_other_cores),
            ("during_other_cores_mean", l.during_other_cores_mean),
            ("during_other_cores_max", l.during_other_cores_max),
        ] {
            self.num(&format!("load.{part}"), v, CORES);
        }
    }

    fn bench(&mut self, r: &BenchRecord) {
        let s = &r.results;
        self.summary("results.prompt_tps", &s.prompt_tps, RATE);
        self.summary("results.gen_tps", &s.gen_tps, RATE);
        self.summary("results.ttft_ms", &s.ttft_ms, MS);
        self.histogram("results.itl_ms", &s.itl_ms);
        self.summary("results.e2e_ms", &s.e2e_ms, MS);
        self.opt("results.harness_us_per_token", s.harness_us_per_token, US);
        self.opt("results.harness_share", s.harness_share, SHARE);
        for x in &r.samples {
            self.num("samples.prompt_ms", x.prompt_ms, MS);
            self.opt("samples.ttft_ms", x.ttft_ms, MS);
            self.num("samples.e2e_ms", x.e2e_ms, MS);
            self.opt("samples.prompt_tps", x.prompt_tps, RATE);
            self.opt("samples.gen_tps", x.gen_tps, RATE);
            self.all("samples.token_ms", &x.token_ms, MS);
            self.num("samples.harness_ms", x.harness_ms, MS);
        }
        self.num("model.load_ms", r.model.load_ms, MS);
        self.sizes("", &r.model, &r.memory, &r.machine);
        self.bandwidth(&r.bandwidth);
        self.load(&r.load);
    }

    fn request(&mut self, r: &RequestRecord) {
        self.opt("ttft_ms", r.ttft_ms, MS);
        self.opt("prompt_tps", r.prompt_tps, RATE);
        self.opt("decode_tps", r.decode_tps, RATE);
        self.num("e2e_ms", r.e2e_ms, MS);
        // Its tokens came out within its end-to-end time: no faster than any decode can be.
        if r.e2e_ms > 0.0 {
            let rate = f64::from(r.output_tokens) * 1000.0 / r.e2e_ms;
            self.num("output_tokens per e2e second", rate, RATE);
        }
        self.num("llama_ms", r.llama_ms, MS);
        self.histogram("itl_ms", &r.itl_ms);
        self.all("token_ms", &r.token_ms, MS);
        self.opt("cost_usd", r.cost_usd, USD);
        self.num("info.model.load_ms", r.info.model.load_ms, MS);
        self.sizes("info.", &r.info.model, &r.info.memory, &r.info.machine);
        self.num("score", r.score, SCORE);
        self.opt("info.quantize_ms", r.info.quantize_ms, MS);
        self.bandwidth(&r.bandwidth);
        self.load(&r.load);
        if let Some(s) = &r.server {
            self.server(s);
        }
        if let Some(h) = &r.http {
            self.http(h);
        }
        if let Some(t) = &r.traffic {
            self.num("traffic.arrival_ms", t.arrival_ms, MS);
            self.num("traffic.queue_ms", t.queue_ms, MS);
            self.num("traffic.level_wall_ms", t.level_wall_ms, MS);
            // A level holds at most the requests a sweep schedules, and writes no more records
            // than it has requests.
            let requests = t.level_requests as f64;
            self.num("traffic.level_requests", requests, Bound(1e5, "requests"));
            if let Some(n) = t.level_records {
                self.num(
                    "traffic.level_records",
                    n as f64,
                    Bound(requests, "records"),
                );
            }
        }
    }

    fn server(&mut self, s: &ServerReport) {
        self.opt("server.prompt_ms", s.prompt_ms, MS);
        self.opt("server.prompt_tps", s.prompt_tps, RATE);
        self.opt("server.decode_ms", s.decode_ms, MS);
        self.opt("server.decode_tps", s.decode_tps, RATE);
        self.opt("server.load_ms", s.load_ms, MS);
        self.opt("server.total_ms", s.total_ms, MS);
        self.opt("server.cost_usd", s.cost_usd, USD);
    }

    fn http(&mut self, h: &HttpReport) {
        self.opt("http.headers_ms", h.headers_ms, MS);
        self.num("http.retry_wait_ms", h.retry_wait_ms, MS);
    }

    /// A judge's latency, its rubric (a positive scale, positive weights), and its scores and
    /// their weighted mean within the rubric's scale.
    fn judgement(&mut self, j: &Judgement) {
        self.num("latency_ms", j.latency_ms, MS);
        if let Err(e) = j.rubric.check() {
            self.fail(format!("rubric: {e}"));
            return;
        }
        let points = Bound(j.rubric.scale, "points");
        for &v in j.scores.values() {
            self.num("scores", v, points);
        }
        self.opt("weighted", j.weighted, points);
    }
}

/// Two figures the same to within a percent (a figure rounded to a few digits still agrees).
fn agree(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-2 * a.abs().max(b.abs()) + 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep_line() -> serde_json::Value {
        let text = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
        serde_json::from_str(text.lines().next().unwrap()).unwrap()
    }

    fn why(v: serde_json::Value) -> Option<String> {
        implausible(&Record::from_value(v).unwrap())
    }

    #[test]
    fn figures_that_cannot_be_true_are_named() {
        assert_eq!(why(sweep_line()), None);
        let cases: [(&str, serde_json::Value, &str); 7] = [
            (
                "/decode_tps",
                (-5.0).into(),
                "decode_tps -5 is outside 0 to 1e8 tok/s",
            ),
            (
                "/decode_tps",
                1e300.into(),
                "decode_tps 1e300 is outside 0 to 1e8 tok/s",
            ),
            (
                "/ttft_ms",
                (-1.0).into(),
                "ttft_ms -1 is outside 0 to 3.1536e10 ms",
            ),
            ("/token_ms/0", (-0.5).into(), "token_ms -0.5 is outside"),
            ("/load/busy", true.into(), ""),
            ("/e2e_ms", 1e20.into(), "e2e_ms 1e20 is outside"),
            (
                "/output_tokens",
                4_000_000_000u64.into(),
                "output_tokens per e2e second ",
            ),
        ];
        // A load level's counts: no more records than requests, no more requests than a sweep
        // schedules.
        let mut v = sweep_line();
        v["traffic"] = serde_json::json!({
            "shape": "closed", "concurrency": 2, "level_requests": 8, "seq": 0,
            "arrival_ms": 0.0, "queue_ms": 0.0, "concurrent": 0, "level_wall_ms": 1.0,
            "level_run": "r", "level_records": 8,
        });
        assert_eq!(why(v.clone()), None);
        v["traffic"]["level_records"] = u64::MAX.into();
        let w = why(v.clone()).expect("too many records");
        assert!(
            w.starts_with("traffic.level_records 1.8446744073709552e19 is outside 0 to 8e0"),
            "{w}"
        );
        v["traffic"]["level_records"] = 8.into();
        v["traffic"]["level_requests"] = 1_000_000.into();
        let w = why(v).expect("too many requests");
        assert!(
            w.starts_with("traffic.level_requests 1000000 is outside 0 to 1e5"),
            "{w}"
        );
        for (at, value, want) in cases {
            let mut v = sweep_line();
            *v.pointer_mut(at).unwrap() = value;
            match why(v) {
                None => assert!(want.is_empty(), "{at}: believed"),
                Some(w) => assert!(!want.is_empty() && w.starts_with(want), "{at}: {w}"),
            }
        }
        // A bench record's summaries and samples are checked too.
        let bench: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/records/bench-smollm2.json"))
                .unwrap();
        let bench = bench[0].clone();
        assert_eq!(why(bench.clone()), None);
        let mut fast = bench.clone();
        fast["results"]["gen_tps"]["max"] = 1e300.into();
        assert_eq!(
            why(fast).as_deref(),
            Some("results.gen_tps.max 1e300 is outside 0 to 1e8 tok/s")
        );
        let mut backwards = bench;
        backwards["samples"][0]["e2e_ms"] = (-3.0).into();
        assert_eq!(
            why(backwards).as_deref(),
            Some("samples.e2e_ms -3 is outside 0 to 3.1536e10 ms")
        );
    }

    /// A judgement's scores and weighted score lie within its rubric's scale, and the rubric
    /// is one runner would judge by.
    #[test]
    fn judge_scores_that_cannot_be_true_are_named() {
        use crate::record::{BackendId, CellKey, Provenance};
        let rubric = crate::scenario::Rubric::default();
        let scores: std::collections::BTreeMap<String, f64> = (rubric.criteria.iter())
            .map(|c| (c.name.clone(), 8.0))
            .collect();
        let judgement = Judgement {
            provenance: Provenance::now(),
            cell: CellKey {
                backend: BackendId::native(),
                model: "m".into(),
                quant: "q8_0".into(),
            },
            scenario: "s".into(),
            prompt_id: "p".into(),
            judge: BackendId::native(),
            judge_family: None,
            judged_family: None,
            self_judging: false,
            weighted: rubric.weighted_mean(&scores),
            rubric,
            scores,
            rationale: None,
            attempts: 1,
            error: None,
            answer: None,
            latency_ms: 800.0,
        };
        let judgement = serde_json::to_value(Record::Judgement(Box::new(judgement))).unwrap();
        assert_eq!(why(judgement.clone()), None);
        let cases: [(&str, serde_json::Value, Option<&str>); 7] = [
            (
                "/weighted",
                1e300.into(),
                Some("weighted 1e300 is outside 0 to 1e1 points"),
            ),
            (
                "/weighted",
                (-2.0).into(),
                Some("weighted -2 is outside 0 to 1e1 points"),
            ),
            ("/weighted", serde_json::Value::Null, None),
            (
                "/scores/clarity",
                10.5.into(),
                Some("scores 10.5 is outside 0 to 1e1 points"),
            ),
            ("/scores/clarity", 10.into(), None),
            (
                "/rubric/scale",
                0.into(),
                Some("rubric: scale must be more than 0"),
            ),
            (
                "/rubric/criteria/0/weight",
                (-1.0).into(),
                Some("rubric: criterion 'instruction_following': weight must be more than 0"),
            ),
        ];
        for (at, value, want) in cases {
            let mut v = judgement.clone();
            *v.pointer_mut(at).unwrap() = value;
            assert_eq!(why(v).as_deref(), want, "{at}");
        }
    }

    #[test]
    fn sizes_counts_and_peaks_that_cannot_be_true_are_named() {
        let bench: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/records/bench-smollm2.json"))
                .unwrap();
        let bench = bench[0].clone();
        assert!(bench["bandwidth"].is_object());
        let max: serde_json::Value = u64::MAX.into();
        let cases: [(&str, serde_json::Value, &str); 11] = [
            (
                "/memory/model_bytes",
                max.clone(),
                "memory.model_bytes 18446744073709551615 is outside 0 to 1.125899906842624e15 bytes",
            ),
            ("/machine/ram_bytes", max.clone(), "machine.ram_bytes "),
            ("/machine/logical_cores", max.clone(), "machine.logical_cores "),
            ("/model/n_params", max.clone(), "model.n_params "),
            ("/model/bits_per_weight", 1e6.into(), "model.bits_per_weight 1000000 "),
            (
                "/bandwidth/bytes_per_token",
                max,
                "bandwidth.bytes_per_token 18446744073709551615 is outside",
            ),
            (
                "/bandwidth/bytes_per_token",
                1.into(),
                "bandwidth.bytes_per_token 1 is not weight_bytes_per_token",
            ),
            ("/bandwidth/bytes_per_token", 0.into(), "bandwidth.bytes_per_token is 0"),
            (
                "/bandwidth/achieved_gbps",
                1.0.into(),
                "bandwidth.achieved_gbps 1 is not bytes_per_token",
            ),
            (
                "/bandwidth/measured_peak_gbps",
                0.0.into(),
                "bandwidth.measured_peak_gbps 0 is below 0.1 GB/s",
            ),
            (
                "/bandwidth/measured_peak_gbps",
                5e-324.into(),
                "bandwidth.measured_peak_gbps 5e-324 is below 0.1 GB/s",
            ),
        ];
        for (at, value, want) in cases {
            let mut v = bench.clone();
            *v.pointer_mut(at).unwrap() = value;
            match why(v) {
                None => panic!("{at}: believed"),
                Some(w) => assert!(w.starts_with(want), "{at}: {w}"),
            }
        }
        // A request's sizes and score are checked too.
        for (at, value) in [
            ("/info/memory/model_bytes", u64::MAX.into()),
            ("/info/machine/ram_bytes", u64::MAX.into()),
            ("/score", 7.0.into()),
        ] {
            let mut v = sweep_line();
            *v.pointer_mut(at).unwrap() = value;
            assert!(why(v).is_some(), "{at}: believed");
        }
    }
}
