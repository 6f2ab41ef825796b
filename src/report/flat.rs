//! Flattens a record's JSON into dotted column names (`results.gen_tps.median`), so that
//! tabular formats follow the schema without a hand-kept column list.

use serde_json::Value;

/// Scalar leaves of `v` in schema order. Arrays of scalars are joined with spaces; arrays
/// of objects (raw samples, devices) are left out; nulls produce no column.
pub fn flatten(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Null => {}
        Value::Object(map) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, child, out);
            }
        }
        Value::Array(items) => {
            if items.iter().all(|i| !i.is_object() && !i.is_array()) {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                out.push((prefix.to_string(), joined.join(" ")));
            }
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Column names over several flattened rows, in order of first appearance.
pub fn columns(rows: &[Vec<(String, String)>]) -> Vec<String> {
    super::distinct(rows.iter().flatten().map(|(k, _)| k.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_nested_objects_and_skips_sample_arrays() {
        let v = json!({"a": 1, "b": {"c": "x", "d": null, "e": [1, 2]}, "s": [{"t": 1}]});
        let f = flatten(&v);
        assert_eq!(
            f,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b.c".to_string(), "x".to_string()),
                ("b.e".to_string(), "1 2".to_string()),
            ]
        );
        let cols = columns(&[f, vec![("z".into(), "1".into()), ("a".into(), "2".into())]]);
        assert_eq!(cols, ["a", "b.c", "b.e", "z"]);
    }
}
