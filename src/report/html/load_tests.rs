//! Tests of the report's load-level section, on the fixed records of tests/data/records with
//! load levels made from one of their requests.

use super::*;
use crate::measure::load::{Pcts, Shape};
use crate::record::{Records, RequestRecord, Traffic};
use crate::report::guide;

fn fixed() -> Records {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    crate::record::read::load(&dir).expect("the fixed records read")
}

/// `n` copies of `q` as one level of `shape`: 20 tokens `gap_ms` apart, the first `ttft_ms`
/// into each request's work, after `queue_ms` of waiting; arrivals 100 ms apart.
fn level(
    q: &RequestRecord,
    shape: Shape,
    n: usize,
    ttft_ms: f64,
    gap_ms: f64,
) -> Vec<RequestRecord> {
    let queue_ms = ttft_ms / 4.0;
    (0..n)
        .map(|seq| {
            let mut r = q.clone();
            r.ttft_ms = Some(ttft_ms);
            r.token_ms = (0..20).map(|k| ttft_ms + f64::from(k) * gap_ms).collect();
            r.output_tokens = 20;
            r.e2e_ms = ttft_ms + 19.0 * gap_ms;
            r.failed = false;
            r.traffic = Some(Traffic {
                shape,
                level_requests: n,
                seq,
                arrival_ms: seq as f64 * 100.0,
                queue_ms,
                concurrent: shape.slots() as usize - 1,
                level_wall_ms: (n - 1) as f64 * 100.0 + queue_ms + r.e2e_ms,
                slo: None,
                same_as_alone: None,
                diverged_at: None,
                level_run: None,
                level_records: None,
            });
            r
        })
        .collect()
}

/// Closed-loop levels at concurrency 1, 2 and 4, and open-loop ones at 1.5 and 3 req/s.
fn loaded(q: &RequestRecord) -> Vec<RequestRecord> {
    let open = |rate| Shape::Open {
        rate,
        slots: 4,
        seed: 7,
    };
    [
        level(q, Shape::Closed { concurrency: 1 }, 2, 40.0, 20.0),
        level(q, Shape::Closed { concurrency: 2 }, 4, 60.0, 24.0),
        level(q, Shape::Closed { concurrency: 4 }, 8, 150.0, 35.0),
        level(q, open(1.5), 6, 80.0, 25.0),
        level(q, open(3.0), 6, 400.0, 40.0),
    ]
    .concat()
}

/// The first of the fixed requests that produced tokens.
fn producing(records: &Records) -> RequestRecord {
    records
        .requests
        .iter()
        .find(|q| !q.failed && !q.token_ms.is_empty())
        .expect("a request that produced tokens")
        .clone()
}

fn page_of(records: &Records) -> String {
    let g = guide::build("records", records, &[], guide::predict::DEFAULT_EFFICIENCY);
    super::super::page(&g, records).expect("the page draws")
}

const TITLES: [&str; 3] = [
    "Throughput against per-user speed",
    "p99 TTFT against load (closed loop)",
    "p99 TTFT against load (open loop)",
];

#[test]
fn the_page_charts_load_levels_only_when_records_have_them() {
    let mut records = fixed();
    assert!(records.requests.iter().all(|q| q.traffic.is_none()));
    let plain = page_of(&records);
    for text in TITLES.iter().chain(&["Load levels", "out tok/s"]) {
        assert!(!plain.contains(text), "{text} drawn without load levels");
    }
    let q = producing(&records);
    records.requests.extend(loaded(&q));
    let html = page_of(&records);
    let curve = format!("{} {}/{}", q.cell.backend, q.cell.model, q.cell.quant);
    for text in TITLES.iter().chain(&[
        "<h2>Load levels</h2>",
        curve.as_str(),
        &format!("{curve} (open loop)"),
        "c=4",
        "1.5 req/s",
        "<th>user tok/s</th>",
    ]) {
        assert!(html.contains(text), "{text} missing");
    }
    assert_eq!(
        html.matches("<svg").count(),
        plain.matches("<svg").count() + 3
    );
    assert_eq!(html, page_of(&records), "the same records, other bytes");
}

/// Records of load levels alone: their machine is listed, and the inter-token latency chart
/// (which leaves load-level requests to their own section) says so.
#[test]
fn a_machine_only_load_levels_ran_on_is_listed() {
    let fixed = fixed();
    let q = producing(&fixed);
    let key = crate::report::obs::from_request(&q).key;
    let label = crate::report::obs::machine_label(&key.machine, key.site());
    let item = format!("<li><code>{}</code> {}</li>", key.machine.id(), esc(&label));
    let only = Records {
        requests: loaded(&q),
        ..Default::default()
    };
    let html = page_of(&only);
    assert!(html.contains(&item), "{item} not in {html}");
    assert!(!html.contains("<h2>Machines</h2>\n<ul>\n</ul>"), "{html}");
    assert!(
        html.contains("every sweep request outside load levels"),
        "{html}"
    );
    assert!(!html.contains("every sweep request and bench"), "{html}");
    // The same machine in the guide's records and in load levels is listed once.
    let mut both = fixed;
    both.requests.extend(loaded(&q));
    assert_eq!(page_of(&both).matches(&item).count(), 1);
}

#[test]
fn only_the_kinds_of_load_present_get_a_ttft_chart() {
    let records = fixed();
    let q = &records.requests[0];
    let closed = level(q, Shape::Closed { concurrency: 2 }, 4, 60.0, 24.0);
    let s = section(&load::of_requests(&closed)).unwrap();
    assert!(s.contains(TITLES[0]) && s.contains(TITLES[1]) && !s.contains(TITLES[2]));
    assert_eq!(s.matches("<svg").count(), 2);
    assert_eq!(section(&[]).unwrap(), "");
}

#[test]
fn odd_figures_are_left_out_not_drawn() {
    let records = fixed();
    let mut rows = load::of_requests(&loaded(&records.requests[0]));
    assert_eq!(rows.len(), 5);
    rows[0].level.output_tps = f64::NAN;
    rows[1].level.per_user_tps = Some(f64::INFINITY);
    rows[2].level.ttft_ms = None;
    let odd = |p99| {
        Some(Pcts {
            p50: 1.0,
            p90: 2.0,
            p99,
            max: f64::NAN,
        })
    };
    rows[3].level.ttft_ms = odd(f64::NAN);
    rows[4].level.ttft_ms = odd(-3.0);
    let drawn = |svg: &str, label: &str| svg.contains(&format!("\n{label}\n</text>"));
    let tp = throughput(&curves(&rows)).unwrap();
    assert!(!drawn(&tp, "c=1") && !drawn(&tp, "c=2"), "{tp}");
    assert!(
        drawn(&tp, "c=4") && drawn(&tp, "1.5 req/s") && drawn(&tp, "3 req/s"),
        "{tp}"
    );
    let closed = ttft(&curves(&rows), false).unwrap();
    assert!(drawn(&closed, "c=1") && drawn(&closed, "c=2") && !drawn(&closed, "c=4"));
    let open = ttft(&curves(&rows), true).unwrap();
    assert!(open.contains("no data: no level with a TTFT"), "{open}");
    for r in &mut rows {
        r.level.per_user_tps = None;
    }
    let s = section(&rows).unwrap();
    assert!(s.contains("no data: no level with both an output rate and a per-user decode rate"));
}

#[test]
fn levels_of_the_same_cell_on_two_machines_stay_apart() {
    let records = fixed();
    let q = producing(&records);
    let mut other = q.clone();
    other.info.machine.cpu = "Another CPU".into();
    let shape = Shape::Closed { concurrency: 2 };
    let reqs = [
        level(&q, shape, 4, 60.0, 24.0),
        level(&other, shape, 4, 90.0, 30.0),
    ]
    .concat();
    let rows = crate::report::load::of_requests(&reqs);
    assert_eq!(rows.len(), 2, "one row per machine");
    assert!(rows[1].machine.starts_with("Another CPU"));
    assert_ne!(rows[0].level.ttft_ms, rows[1].level.ttft_ms);
    let table = crate::report::load::render(crate::report::Format::Table, &rows).expect("table");
    assert!(table.starts_with("machine"), "{table}");
    // One machine: no machine column.
    let one = crate::report::load::of_requests(&reqs[..4]);
    let table = crate::report::load::render(crate::report::Format::Table, &one).expect("table");
    assert!(table.starts_with("backend"), "{table}");
}

#[test]
fn out_tokens_are_the_records_tokens_of_requests_that_did_not_fail() {
    let records = fixed();
    let q = producing(&records);
    let shape = Shape::Closed { concurrency: 2 };
    let base = load::of_requests(&level(&q, shape, 4, 60.0, 24.0));
    let wall = base[0].level.wall_s;
    assert_eq!(base[0].level.output_tps, 80.0 / wall);
    // Over HTTP, each request's 20 text chunks and the server's count.
    let mut reqs = level(&q, shape, 4, 60.0, 24.0);
    for r in &mut reqs {
        r.http = Some(crate::record::HttpReport::default());
    }
    // A server streaming 4 tokens a chunk: 5 chunks, and its count of 20 tokens.
    reqs[0].token_ms = reqs[0].token_ms.iter().step_by(4).copied().collect();
    // A count one above the chunks: the end-of-generation token, which streams no text.
    reqs[1].output_tokens = 21;
    // A server that gave no count: the chunks.
    reqs[2].output_tokens = 0;
    // A count below the chunks (a server splitting tokens' text): the count.
    reqs[3].output_tokens = 2;
    let rows = load::of_requests(&reqs);
    assert_eq!(rows[0].level.wall_s, wall);
    assert_eq!(rows[0].level.output_tps, 63.0 / wall);
    // A failed request's tokens count no more than it does in req/s.
    reqs[3].failed = true;
    let rows = load::of_requests(&reqs);
    assert_eq!(rows[0].level.output_tps, 61.0 / wall);
    // Each request's own decode rate is over the tokens its chunks span, as its record's is:
    // 19 gaps' worth over each of the three requests' first-to-last chunk.
    let rate = |r: &RequestRecord| 19.0 * 1000.0 / (r.token_ms.last().unwrap() - r.token_ms[0]);
    let mut rates: Vec<f64> = reqs[..3].iter().map(rate).collect();
    rates.sort_by(f64::total_cmp);
    let got = rows[0].level.per_user_tps.unwrap();
    assert!((got - rates[1]).abs() < 1e-9, "{got} {rates:?}");
    for q in &mut reqs {
        q.failed = true;
    }
    let none = load::of_requests(&reqs)[0].level.output_tps;
    assert!(none == 0.0 && none.is_sign_positive(), "{none}");
}

#[test]
fn the_section_is_the_same_whichever_file_the_levels_were_read_from_first() {
    let records = fixed();
    let q = producing(&records);
    let mut other = q.clone();
    other.cell.quant = "q2_k".into();
    let (a, b) = (loaded(&q), loaded(&other));
    let ab = [a.clone(), b.clone()].concat();
    let ba = [b, a].concat();
    let html = |reqs: &[RequestRecord]| section(&load::sorted(reqs)).unwrap();
    assert_eq!(html(&ab), html(&ba));
    // Read in the records' order, the two differ: the order is the sort's, not the files'.
    let unsorted = |reqs: &[RequestRecord]| section(&load::of_requests(reqs)).unwrap();
    assert_ne!(unsorted(&ab), unsorted(&ba));
}
