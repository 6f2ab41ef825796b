//! The schema reads every record file earlier releases wrote and writes it back unchanged.

use super::*;

#[test]
fn test_names_follow_llama_bench() {
    assert_eq!(TestSpec::name_for(512, 0, 0), "pp512");
    assert_eq!(TestSpec::name_for(0, 128, 0), "tg128");
    assert_eq!(TestSpec::name_for(64, 16, 0), "pp64+tg16");
    assert_eq!(TestSpec::name_for(0, 16, 1024), "tg16@d1024");
}

/// The records kept in tests/data, written by earlier releases.
fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/records")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every value of a JSON document, re-serialised through the schema, comes back identical;
/// the only addition allowed is a field the file predates, written with its default.
fn round_trips(v: serde_json::Value) -> Record {
    let rec = Record::from_value(v.clone()).expect("a record");
    let back = serde_json::to_value(&rec).unwrap();
    let mut added = Vec::new();
    contains(&back, &v, "", &mut added);
    assert!(
        added.iter().all(|k| k == "cell.backend"),
        "fields added in a round trip: {added:?}"
    );
    rec
}

/// Asserts that `outer` holds every value of `inner` unchanged; lists the keys it adds.
fn contains(
    outer: &serde_json::Value,
    inner: &serde_json::Value,
    at: &str,
    added: &mut Vec<String>,
) {
    use serde_json::Value;
    match (outer, inner) {
        (Value::Object(o), Value::Object(i)) => {
            for (k, ov) in o {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match i.get(k) {
                    Some(iv) => contains(ov, iv, &path, added),
                    None => added.push(path),
                }
            }
            assert!(
                i.keys().all(|k| o.contains_key(k)),
                "{at}: a field was lost"
            );
        }
        (Value::Array(o), Value::Array(i)) => {
            assert_eq!(o.len(), i.len(), "{at}");
            for (n, (ov, iv)) in o.iter().zip(i).enumerate() {
                contains(ov, iv, &format!("{at}[{n}]"), added);
            }
        }
        _ => assert_eq!(outer, inner, "{at} changed"),
    }
}

#[test]
fn old_sweep_lines_read_and_write_back_unchanged() {
    let text = fixture("sweep-0ad6ba95c6e9.jsonl");
    let mut kinds = std::collections::BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec = round_trips(serde_json::from_str(line).unwrap());
        kinds.insert(match rec {
            Record::Request(r) => {
                assert!(!r.provenance.time.is_empty());
                "request"
            }
            Record::CellFailed(_) => "cell_failed",
            Record::Judgement(_) => "judgement",
            Record::Bench(_) | Record::Profile(_) => panic!("a sweep line read as another record"),
        });
    }
    assert!(kinds.contains("request"), "{kinds:?}");
}

#[test]
fn old_records_with_executed_graders_read_and_write_back_unchanged() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/coding/sweep-ee91125fef6e.jsonl");
    let text = std::fs::read_to_string(p).unwrap();
    let mut executed = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Record::Request(r) = round_trips(serde_json::from_str(line).unwrap()) else {
            continue;
        };
        assert!(!r.ungraded);
        executed += r.verdicts.iter().filter(|v| v.execution.is_some()).count();
        let back = serde_json::to_string(&r).unwrap();
        assert!(!back.contains("ungraded"), "{back}");
    }
    assert!(executed > 0);
}

#[test]
fn old_bench_records_read_and_write_back_unchanged() {
    for name in ["bench-smollm2.json", "bench-moe.json"] {
        let v: serde_json::Value = serde_json::from_str(&fixture(name)).unwrap();
        let items = match v {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        assert!(!items.is_empty());
        for item in items {
            assert!(matches!(round_trips(item), Record::Bench(_)), "{name}");
        }
    }
}

#[test]
fn closed_sets_are_written_as_before() {
    let key = CellKey {
        backend: "openai:gpt-4o-mini".parse().unwrap(),
        model: "m".into(),
        quant: "-".into(),
    };
    let v = serde_json::to_value(&key).unwrap();
    assert_eq!(v["backend"], "openai:gpt-4o-mini");
    let old: CellKey = serde_json::from_str(r#"{"model":"m","quant":"q8_0"}"#).unwrap();
    assert!(
        old.backend.is_native(),
        "records from before backends read as native"
    );
    for bad in ["", "ollama", "ollama:", "vllm:x"] {
        assert!(bad.parse::<BackendId>().is_err(), "{bad}");
    }
    assert_eq!(key.label(), "openai:gpt-4o-mini");
}

#[test]
fn other_json_is_not_a_record() {
    for v in [
        serde_json::json!({"machine": {}}),
        serde_json::json!([1, 2]),
        serde_json::json!({"kind": "nonsense", "schema": 1}),
    ] {
        assert!(Record::from_value(v).is_err());
    }
}

#[test]
fn a_record_of_another_schema_is_not_read_as_this_one() {
    let line = fixture("sweep-0ad6ba95c6e9.jsonl");
    let first = line.lines().next().expect("a line");
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    assert!(Record::from_value(v.clone()).is_ok());
    for schema in [
        serde_json::json!(0),
        serde_json::json!(2),
        serde_json::json!("1"),
    ] {
        let mut other = v.clone();
        other["schema"] = schema.clone();
        let e = Record::from_value(other).expect_err("another layout");
        assert!(e.contains("this runner reads schema 1"), "{schema}: {e}");
    }
}

impl CellKey {
    /// `model/quant` for native cells, the backend name for HTTP ones.
    fn label(&self) -> String {
        match self.backend.is_native() {
            true => format!("{}/{}", self.model, self.quant),
            false => self.backend.to_string(),
        }
    }
}
