//! Tests of `runner check`: verdicts within and beyond noise, round-by-round pairing of an
//! A/B run and sides with different settings.

use super::*;
use crate::plan::ab::{pair, RoundOutcome};
use crate::record::Record;
use crate::util::rng::SplitMix64;

/// One bench record (the shipped SmolLM2 fixture) whose repetitions ran at `rates` tok/s
/// for prompt and generation (TTFT the matching time), on an idle machine, with `threads`.
fn records(rates: &[f64], threads: u32) -> Records {
    let text = include_str!("../../tests/data/records/bench-smollm2.json");
    let mut r: Vec<BenchRecord> = serde_json::from_str(text).unwrap();
    let mut r = r.remove(0);
    r.load = LoadReport::default();
    r.engine.threads = threads;
    let template = r.samples[0].clone();
    r.samples = rates
        .iter()
        .map(|&v| crate::record::RepetitionSample {
            prompt_tps: Some(v),
            gen_tps: Some(v),
            ttft_ms: Some(1000.0 / v),
            ..template.clone()
        })
        .collect();
    Records {
        bench: vec![r],
        ..Records::default()
    }
}

fn opts() -> AbOptions {
    AbOptions {
        base: "base/runner".into(),
        candidate: "cand/runner".into(),
        rounds: 0,
        out: "out".into(),
        bench_args: Vec::new(),
        base_args: Vec::new(),
        candidate_args: Vec::new(),
    }
}

const CHECK: CheckOptions = CheckOptions {
    tolerance: 0.05,
    busy_threshold: 1.0,
};

/// `rounds` rounds of 3 repetitions each: the machine's speed drifts by up to ±10 % from
/// round to round (on both sides alike), each repetition has ±3 % noise of its own, and the
/// candidate runs at `factor` of the base's speed.
fn noisy_run(rounds: u32, factor: f64, seed: u64) -> AbRun {
    let mut rng = SplitMix64(seed);
    let mut unit = move || (rng.next_u64() % 2001) as f64 / 1000.0 - 1.0;
    let outcomes = (1..=rounds)
        .map(|round| {
            let drift = 100.0 * (1.0 + 0.10 * unit());
            let mut reps = |f: f64| -> Vec<f64> {
                (0..3).map(|_| drift * f * (1.0 + 0.03 * unit())).collect()
            };
            let (b, c) = (reps(1.0), reps(factor));
            RoundOutcome {
                round,
                base: Ok(records(&b, 2)),
                candidate: Ok(records(&c, 2)),
            }
        })
        .collect();
    pair(outcomes)
}

fn verdicts(r: &CheckReport) -> Vec<Verdict> {
    r.rows.iter().map(|r| r.verdict).collect()
}

#[test]
fn a_two_percent_change_within_noise_is_not_flagged_a_real_one_is() {
    for seed in 1..=20 {
        let mut o = opts();
        o.rounds = 5;
        let r = check_ab(&o, &noisy_run(5, 0.98, seed), &CHECK);
        assert_eq!(r.rows.len(), 3, "{r:?}");
        assert!(!r.regressed(), "seed {seed}: {}", render(&r));
        assert!(
            r.rows
                .iter()
                .all(|x| x.ratio.unwrap().paired && x.ratio.unwrap().n == 5),
            "{r:?}"
        );
        let r = check_ab(&o, &noisy_run(5, 0.80, seed), &CHECK);
        assert_eq!(
            verdicts(&r),
            [Verdict::Slower; 3],
            "seed {seed}: {}",
            render(&r)
        );
    }
}

#[test]
fn a_dropped_round_leaves_the_others_paired_round_by_round() {
    // Each round at its own speed: pairing round 3's base with round 4's candidate (or any
    // other misalignment) would not give exactly 0.9.
    let speeds = [100.0, 50.0, 200.0, 80.0];
    let outcomes = speeds
        .iter()
        .zip(1..)
        .map(|(&v, round)| RoundOutcome {
            round,
            base: Ok(records(&[v, v], 2)),
            candidate: match round {
                2 => Err("exited 101 (see round2-cand.log)".into()),
                _ => Ok(records(&[v * 0.9, v * 0.9], 2)),
            },
        })
        .collect();
    let run = pair(outcomes);
    let mut o = opts();
    o.rounds = 4;
    let r = check_ab(&o, &run, &CHECK);
    for row in &r.rows {
        let x = row.ratio.unwrap();
        assert_eq!(x.n, 3);
        assert!(
            (x.speed - 0.9).abs() < 1e-9 && (x.high - 0.9).abs() < 1e-9,
            "{row:?}"
        );
        assert_eq!(row.verdict, Verdict::Slower);
    }
    let text = render(&r);
    assert!(
        text.contains("round 2 dropped: candidate exited 101 (see round2-cand.log)"),
        "{text}"
    );
    assert!(text.contains("3 of 4 rounds paired"), "{text}");
    assert!(text.contains("runner 0.1.0, llama-cpp-2"), "{text}");
}

#[test]
fn sides_with_other_settings_still_pair_and_say_what_changed() {
    let outcomes = (1..=3)
        .map(|round| RoundOutcome {
            round,
            base: Ok(records(&[100.0, 101.0], 2)),
            candidate: Ok(records(&[60.0, 61.0], 1)),
        })
        .collect();
    let mut o = opts();
    o.rounds = 3;
    let r = check_ab(&o, &pair(outcomes), &CHECK);
    assert_eq!(verdicts(&r), [Verdict::Slower; 3], "{}", render(&r));
    assert!(
        r.rows[0].key.settings.starts_with("t2 "),
        "{:?}",
        r.rows[0].key
    );
    assert!(
        r.rows[0].key.settings.ends_with(" → t1"),
        "{:?}",
        r.rows[0].key
    );
}

#[test]
fn a_side_whose_test_measured_nothing_has_too_few_samples_not_a_new_or_missing_series() {
    let measured = records(&[100.0, 101.0, 99.0], 2);
    let nothing = records(&[], 2);
    for (b, c) in [(&nothing, &measured), (&measured, &nothing)] {
        let r = check(b, c, &CHECK);
        assert_eq!(verdicts(&r), [Verdict::Insufficient; 3], "{}", render(&r));
    }
    // Another test than the baseline's is still new.
    let mut other = records(&[100.0, 101.0, 99.0], 2);
    other.bench[0].test.name = "pp64".into();
    let r = check(&nothing, &other, &CHECK);
    assert_eq!(verdicts(&r), [Verdict::New; 3], "{}", render(&r));
}

#[test]
fn requests_that_all_failed_have_too_few_samples_and_one_success_keeps_its_series() {
    let text = include_str!("../../tests/data/records/sweep-0ad6ba95c6e9.jsonl");
    let requests: Vec<RequestRecord> = text
        .lines()
        .filter_map(|l| match serde_json::from_str(l).unwrap() {
            Record::Request(r) => Some(*r),
            _ => None,
        })
        .collect();
    let side = |requests: Vec<RequestRecord>| Records {
        requests,
        ..Records::default()
    };
    let ok = side(requests.clone());
    let mut failed = side(requests.clone());
    for q in &mut failed.requests {
        q.failed = true;
    }
    let r = check(&failed, &ok, &CHECK);
    assert!(!r.rows.is_empty());
    for row in &r.rows {
        assert_eq!(row.verdict, Verdict::Insufficient, "{}", render(&r));
    }
    // With one request of each series measured, the others failing, its series is kept.
    let mut one = side(failed.requests.clone());
    let mut seen = BTreeSet::new();
    for q in &mut one.requests {
        if seen.insert(request_key(q, "")) {
            q.failed = false;
        }
    }
    let r = check(&one, &ok, &CHECK);
    assert!(
        r.rows.iter().all(|x| x.baseline_median.is_some()),
        "{}",
        render(&r)
    );
}

#[test]
fn only_a_busy_current_run_excuses_a_slowdown() {
    let busy = |mut r: Records| {
        r.bench[0].load.busy = true;
        r
    };
    let fast = || records(&[100.0, 102.0, 98.0, 101.0, 99.0], 2);
    let slow = || records(&[50.0, 51.0, 49.0, 50.5, 49.5], 2);
    // A busy baseline is slower than the machine: a slowdown against it is real.
    let r = check(&busy(fast()), &slow(), &CHECK);
    assert_eq!(verdicts(&r), [Verdict::Slower; 3], "{}", render(&r));
    assert!(r.regressed());
    let r = check(&fast(), &busy(slow()), &CHECK);
    assert_eq!(verdicts(&r), [Verdict::SlowerBusy; 3], "{}", render(&r));
    assert!(!r.regressed());
    assert_eq!(busy(slow()).busy_count(1.0), 1);
    assert_eq!(slow().busy_count(1.0), 0);
}

#[test]
fn runs_on_another_accelerator_are_another_machine() {
    let gpu = |name: &str| crate::record::DeviceInfo {
        name: "CUDA0".into(),
        description: name.into(),
        backend: "CUDA".into(),
        memory_total_bytes: 80 << 30,
    };
    let on = |name: &str, rates: &[f64]| {
        let mut r = records(rates, 2);
        r.bench[0].build.devices.push(gpu(name));
        r
    };
    let fast = [100.0, 102.0, 98.0, 101.0, 99.0];
    let slow = [50.0, 51.0, 49.0, 50.5, 49.5];
    let r = check(&on("NVIDIA H200", &fast), &on("NVIDIA H200", &slow), &CHECK);
    assert_eq!(verdicts(&r), [Verdict::Slower; 3], "{}", render(&r));
    assert!(
        r.rows[0].key.machine.ends_with(" + CUDA0 (NVIDIA H200)"),
        "{r:?}"
    );
    // An H100 run is not held against an H200 baseline, nor a CPU-only run against either.
    let r = check(&on("NVIDIA H200", &fast), &on("NVIDIA H100", &slow), &CHECK);
    assert!(!r.regressed(), "{}", render(&r));
    assert_eq!(r.count(Verdict::New), 3, "{}", render(&r));
    // But a check that compared nothing does not pass: it names both machine classes.
    let why = r.nothing_compared().expect("nothing compared");
    assert!(
        why.contains("(NVIDIA H200) and the current records on "),
        "{why}"
    );
    assert!(
        why.ends_with("accelerator list is another machine class"),
        "{why}"
    );
    let r = check(&on("NVIDIA H200", &fast), &records(&slow, 2), &CHECK);
    assert_eq!(r.count(Verdict::New), 3, "{}", render(&r));
    assert!(r.nothing_compared().is_some());
    // Series on the same machine with other settings: nothing compared either.
    let r = check(&records(&fast, 2), &records(&slow, 4), &CHECK);
    let why = r.nothing_compared().expect("nothing compared");
    assert!(why.starts_with("no series of the current records"), "{why}");
    // A baseline whose every series measured nothing compares with nothing either.
    let r = check(&records(&[], 2), &records(&slow, 4), &CHECK);
    assert!(r.nothing_compared().is_some(), "{}", render(&r));
    // One series compared is a check.
    let mut both = records(&slow, 2);
    both.bench.extend(records(&slow, 4).bench);
    let r = check(&records(&fast, 2), &both, &CHECK);
    assert_eq!(r.nothing_compared(), None, "{}", render(&r));
}
