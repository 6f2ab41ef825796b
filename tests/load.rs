//! A busy machine is noticed, recorded, warned about, and refused with --require-idle.

mod common;
use common::*;
use std::process::{Child, Command};

struct Spinners(Vec<Child>);

impl Drop for Spinners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Keeps `n` cores busy until dropped.
fn spin(n: usize) -> Spinners {
    Spinners(
        (0..n)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "i=0; while :; do i=$((i+1)); done"])
                    .spawn()
                    .expect("sh runs")
            })
            .collect(),
    )
}

#[test]
fn busy_machine_is_refused_with_require_idle_and_recorded_otherwise() {
    let _g = heavy();
    let _busy = spin(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = bench("-p 8 -n 2 -r 1 --require-idle");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(
        err.contains("busy") && err.contains("--require-idle"),
        "{err}"
    );
    assert!(err.contains("sh "), "names the busy processes: {err}");

    let o = bench("-p 8 -n 2 -r 1 -t 1 --format json");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the machine is busy"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["load"]["busy"], true);
    assert!(v[0]["load"]["before_other_cores"].as_f64().unwrap() > 0.5);
}

#[test]
fn a_bandwidth_measured_while_busy_is_neither_saved_nor_recorded() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (results, cache) = (dir.path().join("results"), dir.path().join("cache"));
    let busy = spin(2);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let m = model().display().to_string();
    let o = run(&[
        "sweep",
        "--no-progress",
        "--results",
        results.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--busy-threshold",
        "64",
        "-m",
        &m,
        "--quant",
        "source",
        "--scenario",
        "short-response",
        "--limit",
        "1",
        "--max-tokens",
        "8",
    ]);
    drop(busy);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let warned: Vec<&str> = (err.lines())
        .filter(|l| l.contains("bandwidth probe was taken on a busy machine"))
        .collect();
    assert_eq!(warned.len(), 1, "{err}");
    assert!(warned[0].contains("and is not used"), "{err}");
    assert!(!err.contains("used for this run only"), "{err}");
    assert!(!cache.join("hw/bandwidth.json").exists());
    let file = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a records file");
    let text = std::fs::read_to_string(file).unwrap();
    let decoded: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "request" && r["decode_tps"].is_f64())
        .collect();
    assert!(!decoded.is_empty(), "{text}");
    // A busy probe is no measured peak: the records carry none, as with no probe at all.
    for r in decoded {
        let b = &r["bandwidth"];
        assert!(b["achieved_gbps"].as_f64().is_some_and(|g| g > 0.0), "{b}");
        assert!(b["measured_peak_gbps"].is_null(), "{b}");
        assert!(b["utilisation_measured"].is_null(), "{b}");
    }
}
