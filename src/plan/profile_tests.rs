//! Tests of the profile plan: the order of steps and contexts, and the two load orders of a
//! reference.

use super::*;

#[test]
fn every_context_runs_each_step_in_turn() {
    let s = quick_settings(2, FlashAttn::Auto, 0);
    let order = slots(&s, 4);
    // 4 warm-ups, 2 samples x 4, 4 depth prompts, one block of 8 tokens x 4
    assert_eq!(order.len(), 4 + 8 + 4 + 4);
    assert!(order[..4].iter().all(|o| o.phase.is_none()));
    let sessions: Vec<usize> = order[4..8].iter().map(|o| o.session).collect();
    assert_eq!(sessions, [0, 1, 2, 3]);
    assert!(matches!(order.last().unwrap().what, What::Decode(8)));
    let long = ProfileSettings { n_gen: 20, ..s };
    let blocks: Vec<u32> = slots(&long, 1)
        .iter()
        .filter_map(|o| match o.what {
            What::Decode(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(blocks, [8, 8, 4]);
}

#[test]
fn a_reference_makes_two_cells_loading_the_models_in_each_order() {
    let s = ProfileSettings {
        repetitions: 5,
        n_gen: 9,
        ..quick_settings(2, FlashAttn::Auto, 0)
    };
    let [a, b] = halves(&s);
    assert_eq!(
        (a.repetitions, b.repetitions, a.n_gen, b.n_gen),
        (3, 2, 9, 9)
    );
    // One sample asked for: one in each load order.
    let one = halves(&ProfileSettings {
        repetitions: 1,
        ..s.clone()
    });
    assert_eq!((one[0].repetitions, one[1].repetitions), (1, 1));
    let src = |p: &str| ModelSource::file(Path::new(p));
    let plan = ProfilePlan::with_sources(&s, "moe", vec![src("moe"), src("dense")], Path::new("c"));
    assert_eq!(plan.cells.len(), 2);
    let (first, second) = (&plan.cells[0].setup, &plan.cells[1].setup);
    let paths = |x: &Setup| -> Vec<String> {
        x.models
            .iter()
            .map(|m| m.path.display().to_string())
            .collect()
    };
    assert_eq!(
        (paths(first), paths(second)),
        (
            vec!["moe".into(), "dense".to_string()],
            vec!["dense".into(), "moe".to_string()]
        )
    );
    // Sessions 0-1 are the model's and 2-3 the reference's in both cells.
    let of = |x: &Setup| -> Vec<String> {
        let p = paths(x);
        x.sessions.iter().map(|s| p[s.model].clone()).collect()
    };
    assert_eq!(of(first), of(second));
    assert_eq!(of(first), ["moe", "moe", "dense", "dense"]);
    // A dense model alone: one cell with every sample.
    let one = ProfilePlan::with_sources(&s, "d", vec![src("dense")], Path::new("c"));
    assert_eq!(
        (one.cells.len(), one.slots[0].len()),
        (1, slots(&s, 2).len())
    );
}

#[test]
fn contexts_fit_every_phase() {
    let c = plan_settings(16, 256, 32, 4, FlashAttn::Auto).unwrap();
    assert_eq!((c.n_ctx, c.n_batch, c.threads), (256 + 32 + 1, 256, 4));
    let e = plan_settings(16, 4_000_000, 8, 1, FlashAttn::Auto).unwrap_err();
    assert_eq!(
        e,
        "-p/-d and -n need 4000009 tokens of context; runner profiles at most 1048576"
    );
}

/// A profile holds a plain and a profiling context of each model at once, and with a dense
/// reference both models: its memory check counts them all.
#[test]
fn the_memory_check_counts_every_context_and_model_held_at_once() {
    let g = GgufFile::open(&crate::util::test_model()).unwrap();
    let s = plan_settings(16, 64, 15, 1, FlashAttn::Auto).unwrap();
    let one = g.tensor_bytes() + super::super::memory::context_bytes(&g, &s);
    let ctx = super::super::memory::context_bytes(&g, &s);
    let runtime = super::super::memory::RUNTIME;
    let (need, what) = memory_need(&s, &[&g]);
    assert_eq!(need, one + ctx + runtime);
    assert!(what.ends_with("two 80-token contexts"), "{what}");
    let (need, what) = memory_need(&s, &[&g, &g]);
    assert_eq!(need, 2 * (one + ctx) + runtime);
    assert!(what.starts_with("the weights of 2 models,"), "{what}");
    assert!(what.ends_with("of 4 80-token contexts"), "{what}");
}
