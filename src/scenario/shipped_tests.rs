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
    let paired = s.prompts.iter().filter(|p| p.pair.is_some()).count();
    assert!(paired >= 4, "{paired} prompts in pairs");
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
        .any(|g| matches!(g, Grader::WordCount(Bounds { min: Some(n), .. }) if *n >= 1500)));
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

/// The shipped files are the binary's own copies, found without the source tree, and they are
/// every `.toml` file of `scenarios/`, as they are there.
#[test]
fn shipped_files_come_from_the_binary_not_the_source_tree() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let dir = builtin_dir();
    assert!(!dir.starts_with(&source), "{}", dir.display());
    let mut in_source: Vec<String> = std::fs::read_dir(&source)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    in_source.sort();
    let embedded: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
    assert_eq!(in_source, embedded);
    for name in embedded {
        let copy = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(copy, std::fs::read_to_string(source.join(name)).unwrap());
    }
}
