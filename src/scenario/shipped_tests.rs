//! Tests of the shipped scenario files: they load, have the promised shape, and plausible good
//! answers pass their graders.

use std::time::Duration;

use super::*;

pub(super) fn shipped(name: &str) -> Scenario {
    let path = builtin_dir().join(format!("{name}.toml"));
    match load(&path) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn short_response_loads() {
    let s = shipped("short-response");
    assert_eq!(s.name, "short-response");
    assert_eq!(s.kind, ScenarioKind::ShortResponse);
    assert!(s.prompts.len() >= 12, "{} prompts", s.prompts.len());
    assert!(s.pairs().len() >= 2, "{:?}", s.pairs());
    for p in &s.prompts {
        assert!(p.sampling.is_greedy(), "{}", p.id);
        assert!(p.max_tokens <= 64, "{}", p.id);
        assert!(!p.graders.is_empty(), "{}", p.id);
    }
    let raw = s.prompt("raw-gold-symbol").expect("raw prompt");
    assert!(raw.messages.is_empty());
    assert_eq!(raw.stop, vec!["\n".to_string()]);
    let multi = s.prompt("code-word-recall").expect("multi-turn prompt");
    assert_eq!(multi.messages.len(), 4);
    assert_eq!(multi.messages[0].content, "You are a terse assistant.");
}

#[test]
fn long_form_loads() {
    let s = shipped("long-form");
    assert_eq!(s.kind, ScenarioKind::LongForm);
    assert!(s.prompts.len() >= 3);
    let log = s.prompt("build-log").expect("build-log prompt");
    assert!(log.max_tokens >= 4096);
    assert!(log.time_limit >= Duration::from_secs(1800));
    assert!(log
        .graders
        .iter()
        .any(|g| matches!(g, Grader::WordCount { min: Some(n), .. } if *n >= 1500)));
}

#[test]
fn coding_loads_with_seven_categories_of_three() {
    let s = shipped("coding");
    assert_eq!(s.kind, ScenarioKind::LongForm);
    assert_eq!(s.prompts.len(), 21);
    let mut categories: Vec<&str> = s
        .prompts
        .iter()
        .map(|p| p.category.as_deref().unwrap_or(""))
        .collect();
    categories.sort();
    categories.dedup();
    assert_eq!(categories.len(), 7, "{categories:?}");
    for c in categories {
        let n = s
            .prompts
            .iter()
            .filter(|p| p.category.as_deref() == Some(c))
            .count();
        assert_eq!(n, 3, "category {c}");
    }
    assert!(s.prompts.iter().all(|p| p.sampling.is_greedy()));
}

const FORMAL: &str =
    "I regret that I am unable to attend tomorrow's meeting due to an unforeseen matter.";
const DEPLOY_FAILED: &str = "```json
{\"status\": \"failure\", \"service\": \"billing-api\"}
```";
const FIZZBUZZ: &str = "```python
def fizzbuzz(n):
    out = []
    for i in range(1, n + 1):
        out.append(\"FizzBuzz\" if i % 15 == 0 else str(i))
    return out
```";
const GUARD_CLAUSES: &str = "```python
def shipping_cost(order):
    if order is None:
        raise ValueError(\"order is required\")
    return 5
```";
const RUST_MATCH: &str = "```rust
fn http_status_text(code: u16) -> &'static str {
    match code {
        200 => \"OK\",
        _ => \"Unknown\",
    }
}
```";
const SQL_REVENUE: &str = "```sql
SELECT c.country, COUNT(*) AS orders, SUM(o.total_cents) AS revenue
FROM orders o JOIN customers c ON c.id = o.customer_id
GROUP BY c.country
ORDER BY revenue DESC;
```";
const SQL_HAVING: &str = "```sql
SELECT c.name, COUNT(*) FROM customers c JOIN orders o ON o.customer_id = c.id
GROUP BY c.id, c.name HAVING COUNT(*) > 5;
```";
const GO_TOPO: &str = "```go
func TopoSort(graph map[string][]string) ([]string, error) {
\treturn nil, errors.New(\"cycle\")
}
```";

/// Plausible good answers pass every grader of their shipped prompt.
#[test]
fn shipped_graders_accept_good_answers() {
    let cases = [
        (
            "short-response",
            "json-person",
            r#"{"name": "Maria Lopez", "age": 34, "city": "Porto"}"#,
        ),
        ("short-response", "one-word-capital", "Tokyo."),
        ("short-response", "number-multiply", "51"),
        (
            "short-response",
            "list-five-languages",
            "- C\n- C++\n- Rust\n- Go\n- Zig",
        ),
        ("short-response", "yes-no-ocean", "Yes."),
        ("short-response", "no-letter-e", "A soft, curious cat"),
        ("short-response", "tone-formal-meeting", FORMAL),
        ("short-response", "deploy-status-failed", DEPLOY_FAILED),
        ("short-response", "raw-gold-symbol", " Au"),
        ("coding", "gen-fizzbuzz", FIZZBUZZ),
        ("coding", "refactor-guard-clauses", GUARD_CLAUSES),
        ("coding", "refactor-rust-match", RUST_MATCH),
        (
            "coding",
            "explain-complexity",
            "It is O(n^2): the nested loops compare every pair.",
        ),
        ("coding", "sql-revenue-by-country", SQL_REVENUE),
        ("coding", "sql-having-no-subquery", SQL_HAVING),
        ("coding", "algo-topo-sort", GO_TOPO),
    ];
    for (file, id, answer) in cases {
        let s = shipped(file);
        let p = s.prompt(id).unwrap_or_else(|| panic!("no prompt {id}"));
        let verdicts = grade(answer, &p.graders);
        assert!(verdicts.iter().all(|v| v.pass), "{id}: {verdicts:?}");
    }
}
