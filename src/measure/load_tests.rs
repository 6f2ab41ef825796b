//! Tests of load shapes, arrival schedules and SLO parsing.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn shapes_give_their_slots_level_and_label() {
    let c = Shape::Closed { concurrency: 4 };
    assert_eq!(
        (c.slots(), c.level(), c.label()),
        (4, 4.0, "c=4".to_string())
    );
    let o = |rate| Shape::Open {
        rate,
        slots: 8,
        seed: 1,
    };
    assert_eq!((o(1.5).slots(), o(1.5).level()), (8, 1.5));
    assert_eq!(o(2.0).label(), "2 req/s");
    assert_eq!(o(0.25).label(), "0.25 req/s");
    assert_eq!(o(1.5).label(), "1.5 req/s");
    assert_eq!(o(0.0001).label(), "0.0001 req/s");
    assert_eq!(o(0.0042).label(), "0.0042 req/s");
    assert_eq!(o(0.01).label(), "0.01 req/s");
    assert_eq!(o(1.234).label(), "1.23 req/s");
    assert_eq!(o(10.0).label(), "10 req/s");
    let json = serde_json::to_string(&o(1.5)).unwrap();
    assert_eq!(json, r#"{"shape":"open","rate":1.5,"slots":8,"seed":1}"#);
    assert_eq!(serde_json::from_str::<Shape>(&json).unwrap(), o(1.5));
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(json, r#"{"shape":"closed","concurrency":4}"#);
}

#[test]
fn a_seed_reproduces_its_schedule_and_another_differs() {
    let a = arrivals(2.0, 100, 7);
    assert_eq!(a.len(), 100);
    assert_eq!(a, arrivals(2.0, 100, 7));
    assert_ne!(a, arrivals(2.0, 100, 8));
    // A prefix of a longer schedule is the shorter one.
    assert_eq!(&arrivals(2.0, 300, 7)[..100], &a[..]);
}

#[test]
fn arrivals_are_non_decreasing_with_the_rates_mean_gap() {
    let a = arrivals(4.0, 20_000, 42);
    assert_eq!(a.len(), 20_000);
    assert!(a.windows(2).all(|w| w[0] <= w[1]));
    let mean_gap = a.last().unwrap().as_secs_f64() / 20_000.0;
    assert!((mean_gap - 0.25).abs() < 0.25 * 0.03, "mean gap {mean_gap}");
    // Not evenly spaced: the gaps vary as exponential gaps do (sd about the mean).
    let gaps: Vec<f64> = std::iter::once(a[0].as_secs_f64())
        .chain(a.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()))
        .collect();
    let var = gaps.iter().map(|g| (g - mean_gap).powi(2)).sum::<f64>() / gaps.len() as f64;
    assert!((var.sqrt() / mean_gap - 1.0).abs() < 0.05);
}

#[test]
fn a_rate_that_is_not_positive_and_finite_gives_no_arrivals() {
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(arrivals(rate, 10, 1).is_empty(), "rate {rate}");
    }
    assert!(arrivals(1.0, 0, 1).is_empty());
    // Gaps far beyond what a Duration holds end the schedule.
    assert!(arrivals(1e-300, 10, 1).is_empty());
}

#[test]
fn slos_parse_units_decimals_shares_and_whitespace() {
    let s = Slo::parse("ttft=2s,itl=150ms,e2e=30s").unwrap();
    assert_eq!(s.ttft, Some(ms(2000)));
    assert_eq!(s.itl, Some(ms(150)));
    assert_eq!(s.e2e, Some(ms(30_000)));
    assert_eq!(s.share, 0.9);
    let s = Slo::parse(" ttft = 500us , e2e=1.5s ,share = 95% ").unwrap();
    assert_eq!(s.ttft, Some(Duration::from_micros(500)));
    assert_eq!(s.itl, None);
    assert_eq!(s.e2e, Some(ms(1500)));
    assert_eq!(s.share, 0.95);
    let s = Slo::parse("itl=0.1ms,share=0.8").unwrap();
    assert_eq!(s.itl, Some(Duration::from_micros(100)));
    assert_eq!(s.share, 0.8);
    assert_eq!(Slo::parse("e2e=86400s,share=1").unwrap().share, 1.0);
    assert_eq!(Slo::parse("e2e=1e3ms").unwrap().e2e, Some(ms(1000)));
}

#[test]
fn bad_slos_are_refused_naming_the_item() {
    let err = |spec: &str| Slo::parse(spec).unwrap_err();
    assert!(err("").contains("empty SLO"));
    assert!(err("  ").contains("empty SLO"));
    let e = err("ttft=1s,foo=1s");
    assert!(
        e.contains("foo=1s") && e.contains("ttft, itl, e2e, share"),
        "{e}"
    );
    assert_eq!(err("itl=150"), "itl=150: give a unit: us, ms or s");
    let e = err("ttft=2h");
    assert!(e.starts_with("ttft=2h:") && e.contains("'h'") && e.contains("us, ms or s"));
    for spec in ["ttft=abc", "ttft=x1s", "ttft=1.2.3s", "ttft=s"] {
        let e = err(spec);
        assert!(e.starts_with(&format!("{spec}:")), "{e}");
        assert!(e.contains("duration") || e.contains("not a number"), "{e}");
    }
    assert!(err("ttft=0s").contains("above zero"));
    assert!(err("ttft=-1s").starts_with("ttft=-1s:"));
    assert!(err("ttft=0.0001us").starts_with("ttft=0.0001us:"));
    assert!(err("e2e=1e999s").contains("finite"));
    assert!(err("e2e=86401s").contains("at most one day"));
    assert!(err("e2e=1e20ms").starts_with("e2e=1e20ms:"));
    let e = err("ttft=1s,ttft=2s");
    assert!(e.starts_with("ttft=2s:") && e.contains("twice"), "{e}");
    let e = err("itl=1s,share=90%,share=95%");
    assert!(e.starts_with("share=95%:") && e.contains("twice"), "{e}");
    for spec in ["ttft=1s,share=0", "ttft=1s,share=1.5", "ttft=1s,share=150%"] {
        let e = err(spec);
        let item = spec.split(',').nth(1).unwrap();
        assert!(
            e.starts_with(&format!("{item}:")) && e.contains("95%"),
            "{e}"
        );
    }
    assert!(err("ttft=1s,share=NaN").starts_with("share=NaN:"));
    assert!(err("ttft=1s,share=lots").contains("'lots' is not a number"));
    let e = err("ttft=1s,itl");
    assert!(e.starts_with("itl:") && e.contains("key=value"), "{e}");
    let e = err("share=95%");
    assert!(
        e.starts_with("share=95%:") && e.contains("at least one objective"),
        "{e}"
    );
    let e = err("ttft=1s,,itl=1s");
    assert!(
        e.contains("ttft=1s,,itl=1s") && e.contains("empty item"),
        "{e}"
    );
}

#[test]
fn describe_is_canonical_and_parses_back() {
    let d = |spec: &str| Slo::parse(spec).unwrap().describe();
    assert_eq!(d("itl=150ms, ttft=2000ms"), "ttft=2s,itl=150ms");
    assert_eq!(d("e2e=1500ms"), "e2e=1.5s");
    assert_eq!(d("itl=500us"), "itl=0.5ms");
    assert_eq!(d("ttft=2s,share=0.95"), "ttft=2s,share=95%");
    assert_eq!(d("ttft=2s,share=90%"), "ttft=2s");
    for spec in [
        "ttft=2s,itl=150ms,e2e=30s",
        "ttft=1.25s,share=99.5%",
        "itl=0.1ms,e2e=86400s,share=1",
        "e2e=12.345678s,share=0.5",
        "ttft=999ms,itl=1us",
    ] {
        let slo = Slo::parse(spec).unwrap();
        assert_eq!(Slo::parse(&slo.describe()).unwrap(), slo, "{spec}");
    }
}

fn request(ttft: Option<f64>, e2e: f64, gaps: &[f64]) -> Sample {
    Sample {
        ttft_ms: ttft,
        e2e_ms: e2e,
        output_tokens: gaps.len() as u32 + u32::from(ttft.is_some()),
        counted: None,
        gaps_ms: gaps.to_vec(),
        ..Default::default()
    }
}

#[test]
fn met_checks_every_objective_given() {
    let slo = Slo::parse("ttft=200ms,itl=100ms,e2e=1s").unwrap();
    let ok = request(Some(200.0), 1000.0, &[100.0, 100.0]);
    assert!(slo.met(&ok));
    assert!(!slo.met(&Sample {
        failed: true,
        ..ok.clone()
    }));
    assert!(!slo.met(&request(Some(201.0), 900.0, &[50.0])));
    assert!(!slo.met(&request(None, 500.0, &[])));
    assert!(!slo.met(&request(Some(100.0), 1000.1, &[50.0])));
    // The mean gap counts, not the worst one.
    assert!(slo.met(&request(Some(100.0), 500.0, &[10.0, 190.0])));
    assert!(!slo.met(&request(Some(100.0), 500.0, &[110.0, 100.0])));
    // Fewer than two tokens: no gap, the itl objective holds.
    assert!(slo.met(&request(Some(100.0), 500.0, &[])));
    // Without gaps the mean gap is (e2e - ttft) / (tokens - 1).
    let no_gaps = |e2e| Sample {
        output_tokens: 3,
        counted: None,
        ..request(Some(100.0), e2e, &[])
    };
    assert_eq!(no_gaps(400.0).mean_itl_ms(), Some(150.0));
    assert!(slo.met(&no_gaps(300.0)) && !slo.met(&no_gaps(400.0)));
    // Only the objectives given are checked.
    let e2e_only = Slo::parse("e2e=1s").unwrap();
    assert!(e2e_only.met(&request(None, 999.0, &[])));
    assert!(!e2e_only.met(&request(Some(1.0), f64::NAN, &[])));
}

#[test]
fn a_samples_rate_and_mean_gap() {
    let s = request(Some(100.0), 500.0, &[100.0, 300.0]);
    assert_eq!(s.decode_tps(), Some(5.0));
    assert_eq!(s.mean_itl_ms(), Some(200.0));
    let one = request(Some(100.0), 100.0, &[]);
    assert_eq!((one.decode_tps(), one.mean_itl_ms()), (None, None));
    let instant = request(Some(100.0), 100.0, &[0.0]);
    assert_eq!(
        (instant.decode_tps(), instant.mean_itl_ms()),
        (None, Some(0.0))
    );
    let broken = request(Some(100.0), 100.0, &[f64::NAN]);
    assert_eq!((broken.decode_tps(), broken.mean_itl_ms()), (None, None));
}

#[test]
fn pcts_are_type_7_and_refuse_non_finite() {
    let p = Pcts::of(&[4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
    assert_eq!((p.p50, p.max), (3.0, 5.0));
    assert!(close(p.p90, 4.6) && close(p.p99, 4.96));
    assert_eq!(Pcts::of(&[]), None);
    assert_eq!(Pcts::of(&[1.0, f64::NAN]), None);
    assert_eq!(Pcts::of(&[1.0, f64::INFINITY]), None);
}

/// Four requests over 4 s: two meet ttft=200ms,itl=200ms, one is too slow to start, one fails.
fn level_samples() -> Vec<Sample> {
    vec![
        Sample {
            arrival_ms: 0.0,
            queue_ms: 0.0,
            ttft_ms: Some(100.0),
            e2e_ms: 1000.0,
            output_tokens: 10,
            counted: None,
            gaps_ms: vec![100.0; 9],
            failed: false,
        },
        Sample {
            arrival_ms: 500.0,
            queue_ms: 200.0,
            ttft_ms: Some(300.0),
            e2e_ms: 1300.0,
            output_tokens: 5,
            counted: None,
            gaps_ms: vec![250.0; 4],
            failed: false,
        },
        Sample {
            arrival_ms: 1000.0,
            queue_ms: 100.0,
            ttft_ms: Some(150.0),
            e2e_ms: 1000.0,
            output_tokens: 1,
            counted: None,
            gaps_ms: vec![],
            failed: false,
        },
        Sample {
            arrival_ms: 1500.0,
            queue_ms: 0.0,
            ttft_ms: None,
            e2e_ms: 2500.0,
            output_tokens: 3,
            counted: None,
            gaps_ms: vec![50.0, 50.0],
            failed: true,
        },
    ]
}

#[test]
fn a_level_of_hand_made_samples() {
    let slo = Slo::parse("ttft=200ms,itl=200ms").unwrap();
    let l = Level::of(&level_samples(), Some(&slo));
    assert_eq!((l.requests, l.failed), (4, 1));
    assert_eq!(l.wall_s, 4.0);
    assert_eq!(l.achieved_rps, 0.75);
    // The failed request's 3 tokens are left out, as it is from req/s.
    assert_eq!(l.output_tps, 16.0 / 4.0);
    // Median of 10 and 4 tok/s; the one-token request has no rate.
    assert_eq!(l.per_user_tps, Some(7.0));
    let ttft = l.ttft_ms.unwrap();
    assert_eq!((ttft.p50, ttft.max), (150.0, 300.0));
    assert!(close(ttft.p99, 297.0));
    // 9 gaps of 100 and 4 of 250; the failed request's gaps are left out.
    let itl = l.itl_ms.unwrap();
    assert_eq!((itl.p50, itl.p90, itl.max), (100.0, 250.0, 250.0));
    let e2e = l.e2e_ms.unwrap();
    assert_eq!((e2e.p50, e2e.max), (1000.0, 1300.0));
    let queue = l.queue_ms.unwrap();
    assert_eq!((queue.p50, queue.max), (100.0, 200.0));
    let g = l.goodput.unwrap();
    assert_eq!((g.met, g.share, g.rps, g.meets), (2, 0.5, 0.5, false));
    let half = Slo::parse("ttft=200ms,itl=200ms,share=50%").unwrap();
    assert!(
        Level::of(&level_samples(), Some(&half))
            .goodput
            .unwrap()
            .meets
    );
    assert_eq!(Level::of(&level_samples(), None).goodput, None);
}

#[test]
fn an_empty_or_instant_level_has_zeros_and_no_figures() {
    let slo = Slo::parse("ttft=1s").unwrap();
    let l = Level::of(&[], Some(&slo));
    assert_eq!(
        (l.requests, l.failed, l.wall_s, l.achieved_rps),
        (0, 0, 0.0, 0.0)
    );
    assert_eq!(l.output_tps, 0.0);
    assert!(l.per_user_tps.is_none() && l.ttft_ms.is_none() && l.itl_ms.is_none());
    assert!(l.e2e_ms.is_none() && l.queue_ms.is_none() && l.goodput.is_none());
    let instant = Level::of(&[request(Some(0.0), 0.0, &[])], Some(&slo));
    assert_eq!(
        (instant.wall_s, instant.achieved_rps, instant.output_tps),
        (0.0, 0.0, 0.0)
    );
    let g = instant.goodput.unwrap();
    assert_eq!((g.met, g.share, g.rps, g.meets), (1, 1.0, 0.0, true));
    let all_failed = Level::of(
        &[Sample {
            failed: true,
            e2e_ms: 1000.0,
            output_tokens: 40,
            counted: None,
            ..Default::default()
        }],
        Some(&slo),
    );
    assert_eq!(
        (
            all_failed.wall_s,
            all_failed.achieved_rps,
            all_failed.output_tps
        ),
        (1.0, 0.0, 0.0)
    );
    // No tokens are 0.0, not -0.0 (which the tables would print as "-0.0").
    assert!(all_failed.output_tps.is_sign_positive());
    assert!(all_failed.ttft_ms.is_none() && !all_failed.goodput.unwrap().meets);
}

fn level_meeting(meets: Option<bool>) -> Level {
    Level {
        goodput: meets.map(|meets| Goodput {
            met: 0,
            share: 0.0,
            rps: 0.0,
            meets,
        }),
        ..Level::of(&[], None)
    }
}

#[test]
fn the_knee_is_the_last_level_before_the_first_miss() {
    let (yes, no) = (level_meeting(Some(true)), level_meeting(Some(false)));
    let monotone = [
        (1.0, &yes),
        (2.0, &yes),
        (4.0, &yes),
        (8.0, &no),
        (16.0, &no),
    ];
    assert_eq!(knee(&monotone), Some(4.0));
    let dip = [(1.0, &yes), (2.0, &no), (4.0, &yes)];
    assert_eq!(knee(&dip), Some(1.0));
    let all = [(0.5, &yes), (1.0, &yes)];
    assert_eq!(knee(&all), Some(1.0));
    // Taken in order of load whatever the order given.
    assert_eq!(knee(&[(8.0, &no), (2.0, &yes), (1.0, &yes)]), Some(2.0));
    assert_eq!(knee(&[(1.0, &no), (2.0, &yes)]), None);
    let none = level_meeting(None);
    assert_eq!(knee(&[(1.0, &none), (2.0, &none)]), None);
    assert_eq!(knee(&[]), None);
}

#[test]
fn concurrency_lists_parse_and_bad_ones_are_refused() {
    assert_eq!(parse_concurrency("1,2,4,8").unwrap(), vec![1, 2, 4, 8]);
    assert_eq!(parse_concurrency(" 8 , 1 ,256").unwrap(), vec![8, 1, 256]);
    assert_eq!(
        parse_concurrency("0").unwrap_err(),
        "--concurrency 0: give whole numbers from 1 to 256"
    );
    for bad in ["-1", "1.5", "257", "a"] {
        let e = parse_concurrency(&format!("1,{bad}")).unwrap_err();
        assert!(e.starts_with(&format!("--concurrency {bad}:")), "{e}");
    }
    for bad in ["", " ", "1,,2", "1,"] {
        let e = parse_concurrency(bad).unwrap_err();
        assert!(e.contains("from 1 to 256") && e.contains("commas"), "{e}");
    }
    assert_eq!(
        parse_concurrency("1,2,1").unwrap_err(),
        "--concurrency 1: given twice"
    );
}

#[test]
fn rate_lists_parse_and_bad_ones_are_refused() {
    assert_eq!(parse_rates("0.5,1,2").unwrap(), vec![0.5, 1.0, 2.0]);
    assert_eq!(parse_rates(" 10000 , 0.01").unwrap(), vec![10_000.0, 0.01]);
    assert_eq!(parse_rates("0.0001").unwrap(), vec![MIN_RATE]);
    for bad in [
        "0", "-1", "NaN", "inf", "20000", "a", "1e400", "1e-300", "0.00009",
    ] {
        let e = parse_rates(&format!("1,{bad}")).unwrap_err();
        assert!(e.starts_with(&format!("--rate {bad}:")), "{e}");
        assert!(e.contains("from 0.0001 to 10000"), "{e}");
    }
    // The least rate's schedule is whole: every gap fits a `Duration`, unlike 1e-300's.
    assert_eq!(arrivals(MIN_RATE, 100, 7).len(), 100);
    assert!(arrivals(1e-300, 100, 7).is_empty());
    for bad in ["", "1,,2"] {
        assert!(parse_rates(bad).unwrap_err().contains("commas"));
    }
    assert_eq!(parse_rates("1,1.0").unwrap_err(), "--rate 1.0: given twice");
    assert_eq!(
        parse_rates("3.001,3.004").unwrap_err(),
        "--rate 3.001 and 3.004: both are shown as 3 req/s, one level; give rates that differ there"
    );
    assert!(parse_rates("3.01,3.02").is_ok());
}
