//! Tests of the guide's calibration: the fit to published rows, leave-one-out errors and a
//! machine fitted to its own decodes.

use super::*;
use crate::report::guide::local::{Local, LocalPoint};
use crate::report::guide::validation::{summarise, validate, Validation};

fn row(machine: &str, quant: &str, size: f64, moe: bool, pp: f64, tg: f64) -> RefRow {
    RefRow {
        source: "s".into(),
        url: "u".into(),
        machine: machine.into(),
        backend: "Metal".into(),
        model: "m".into(),
        catalogue: String::new(),
        moe,
        quant: quant.into(),
        model_size_gib: Some(size),
        params_b: Some(7.0),
        active_params_b: Some(if moe { 1.0 } else { 7.0 }),
        test_pp: "pp512".into(),
        pp_tps: Some(pp),
        test_tg: "tg128".into(),
        tg_tps: Some(tg),
        note: String::new(),
    }
}

/// Rows made by the model itself: efficiency 60 %, 5 ms per token, MoE at half; prompts at
/// 200 GFLOP/s per GPU core, MoE ones at 40 % of that.
fn synthetic_rows() -> Vec<Resolved> {
    let truth = DecodeFit {
        efficiency: 0.6,
        fixed_ms: 5.0,
        moe_factor: Some(0.5),
        dense_rows: 0,
        moe_rows: 0,
    };
    let mut rows = Vec::new();
    for (machine, cores) in [
        ("Apple M1 Max", 32u32),
        ("Apple M2 Ultra", 76),
        ("Apple M2", 10),
    ] {
        for (quant, size, moe) in [
            ("F16", 13.0, false),
            ("Q8_0", 7.0, false),
            ("Q4_0", 3.6, false),
            ("Q4_0", 16.0, true),
        ] {
            let mut r = row(machine, quant, size, moe, 0.0, 0.0);
            r.note = format!("{cores}-core GPU");
            let chip = r.chip().unwrap();
            let work = work_from_columns(&r).unwrap();
            r.tg_tps = Some(truth.predict(&work, chip.peak_gbps));
            let share = if moe { 0.4 } else { 1.0 };
            r.pp_tps = Some(200e9 * share * cores as f64 / work.flops_per_token);
            rows.push(Resolved { row: r, chip, work });
        }
    }
    rows
}

#[test]
fn the_fit_recovers_the_parameters_that_made_the_rows() {
    let rows = synthetic_rows();
    let refs: Vec<&Resolved> = rows.iter().collect();
    let m = Model::fit(&refs);
    let fit = m.decode["Metal"];
    assert!((fit.efficiency - 0.6).abs() < 0.006, "{fit:?}");
    assert!((fit.fixed_ms - 5.0).abs() < 0.2, "{fit:?}");
    assert!((fit.moe_factor.unwrap() - 0.5).abs() < 0.01, "{fit:?}");
    assert_eq!((fit.dense_rows, fit.moe_rows), (9, 3));
    assert!((m.apple_per_core[&2].flops - 200e9).abs() < 1.0);
    // One share per backend, from the two generations with dense and MoE rows.
    let (share, n) = m.moe_compute["Metal"];
    assert!((share - 0.4).abs() < 1e-9 && n == 2, "{share} {n}");
    let moe = &rows.iter().find(|r| r.work.moe).unwrap();
    let (pp, basis) = m.prompt(moe.chip, "Metal", None, &moe.work).unwrap();
    assert!((pp / moe.row.pp_tps.unwrap() - 1.0).abs() < 0.01, "{pp}");
    assert!(
        basis.ends_with(
            "× 40 % for MoE, the median MoE/dense share of 2 Metal Apple generation(s))"
        ),
        "{basis}"
    );
    // Leave-one-out on rows the model can represent: every error is small.
    let v = validate(&rows);
    assert_eq!(v.len(), 24);
    assert!(v.iter().all(|x| x.error.unwrap().abs() < 0.02), "{v:?}");
    let s = summarise(&v);
    let tg = s.iter().find(|s| s.group == "tg all").unwrap();
    assert_eq!((tg.rows, tg.predicted), (12, 12));
    assert!(s.iter().any(|s| s.group == "tg Metal MoE"));
}

#[test]
fn a_row_no_other_row_can_predict_is_counted_not_guessed() {
    let mut rows = synthetic_rows();
    rows.retain(|r| r.chip.name == "Apple M2 Ultra" || !r.work.moe);
    // The only MoE row: without it there is no MoE factor, so the dense efficiency is
    // used and the prediction is too fast.
    let v = validate(&rows);
    let moe = v.iter().find(|x| x.moe && x.metric == "tg").unwrap();
    assert!(moe.error.unwrap() > 0.3, "{moe:?}");
    // One chip of a non-Apple backend: its prompt rate has no other row to come from.
    let mut r = row("NVIDIA GeForce RTX 4090", "Q4_0", 3.6, false, 5000.0, 150.0);
    r.backend = "CUDA".into();
    let chip = r.chip().unwrap();
    let work = work_from_columns(&r).unwrap();
    let v = validate(&[Resolved { row: r, chip, work }]);
    assert!(v.iter().all(|x| x.predicted.is_none()), "{v:?}");
}

#[test]
fn a_machine_with_records_is_fitted_to_its_own_decodes() {
    let truth = DecodeFit {
        efficiency: 0.8,
        fixed_ms: 2.0,
        moe_factor: Some(0.6),
        dense_rows: 0,
        moe_rows: 0,
    };
    let points: Vec<LocalPoint> = [
        (1e8, false),
        (1e9, false),
        (4e9, false),
        (2e9, true),
        (5e8, true),
    ]
    .iter()
    .map(|&(bpt, moe)| {
        let work = Work {
            bytes_per_token: bpt,
            flops_per_token: 0.0,
            moe,
        };
        LocalPoint {
            model: format!("{bpt}"),
            quant: "q4_0".into(),
            work,
            tps: truth.predict(&work, 40.0),
        }
    })
    .collect();
    let m = Local {
        label: "here".into(),
        id: "h".into(),
        chip: None,
        backend: "CPU".into(),
        gbps: 40.0,
        gbps_from: "measured here",
        memory_bytes: None,
        fit: super::fit_decode(&Local::obs(&points, 40.0)),
        points,
        busy_decodes: 0,
        known: Vec::new(),
    };
    let fit = m.fit.unwrap();
    assert!(
        (fit.efficiency - 0.8).abs() < 0.006 && (fit.fixed_ms - 2.0).abs() < 0.2,
        "{fit:?}"
    );
    let v = m.validate();
    assert_eq!(v.len(), 5);
    assert!(
        v.iter().all(|x| x.here && x.error.unwrap().abs() < 0.03),
        "{v:?}"
    );
    let s = summarise(&v);
    let groups: Vec<&str> = s.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(groups, ["tg here MoE", "tg here dense"]);
    let (tps, basis) = m.decode(&v[0].clone().into_work()).unwrap();
    assert!(tps > 0.0 && basis.contains("GB/s measured here"), "{basis}");

    // The machine's own decodes have their own clause in the trust paragraph; they are no
    // backend of the published rows.
    let cal =
        crate::report::guide::Calibration::new(Vec::new(), Vec::new(), Default::default(), &[m]);
    let trust = crate::report::guide::render::trust(&cal);
    assert!(
        trust.contains("each recorded machine's own decodes, predicted from its others: dense"),
        "{trust}"
    );
    assert!(!trust.contains("by backend"), "{trust}");
}

/// A GPU's decodes of one model in three quantizations: Q8_0 decodes faster than Q6_K though
/// it reads more, so the rows cannot tell a fixed cost from a type's kernel speed. Without an
/// MoE decode the fit predicts no MoE model.
#[test]
fn one_model_in_several_types_fits_no_fixed_cost_and_no_moe_model() {
    let point = |quant: &str, gb: f64, tps: f64| LocalPoint {
        model: "gemma-3-12b".into(),
        quant: quant.into(),
        work: Work {
            bytes_per_token: gb * 1e9,
            flops_per_token: 0.0,
            moe: false,
        },
        tps,
    };
    let gpu = |points: Vec<LocalPoint>| {
        let fit = super::fit_decode(&Local::obs(&points, 3350.0));
        Local {
            label: "gpu".into(),
            id: "g".into(),
            chip: None,
            backend: "native".into(),
            gbps: 3350.0,
            gbps_from: "published",
            memory_bytes: None,
            fit,
            points,
            busy_decodes: 0,
            known: Vec::new(),
        }
    };
    let types = vec![
        point("q4_k_m", 7.5, 140.1),
        point("Q6_K", 9.8, 116.3),
        point("q8_0", 12.6, 119.6),
    ];
    let fit = gpu(types.clone()).fit.unwrap();
    assert_eq!(fit.fixed_ms, 0.0, "{fit:?}");
    // The same type at another size (another model) tells them apart.
    let mut two_models = types;
    two_models.push(point("Q4_K_M", 4.7, 198.0));
    let fit = gpu(two_models.clone()).fit.unwrap();
    assert!(fit.fixed_ms > 0.0, "{fit:?}");

    let m = gpu(two_models);
    let moe = Work {
        bytes_per_token: 2e9,
        flops_per_token: 0.0,
        moe: true,
    };
    assert!(m.declines(&moe) && m.decode(&moe).is_none());
    let dense = Work { moe: false, ..moe };
    assert!(!m.declines(&dense) && m.decode(&dense).is_some());
}

impl Validation {
    fn into_work(self) -> Work {
        Work {
            bytes_per_token: 1e9,
            flops_per_token: 0.0,
            moe: self.moe,
        }
    }
}

#[test]
fn gpu_cores_come_from_the_note_else_the_chip() {
    let mut r = row("Apple M2 Max", "Q4_0", 3.6, false, 1.0, 1.0);
    assert_eq!(r.gpu_cores(), Some(38));
    r.note = "full offload; 30-core GPU".into();
    assert_eq!(r.gpu_cores(), Some(30));
    assert_eq!(apple_generation("Apple M4 Pro"), Some(4));
    assert_eq!(apple_generation("NVIDIA H100 SXM"), None);
}

#[test]
fn a_published_figure_out_of_any_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("results")
        .join(PATH);
    let text = std::fs::read_to_string(shipped).unwrap();
    std::fs::create_dir_all(dir.path().join("reference")).unwrap();
    assert!(load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .as_path()
    )
    .is_ok());
    for bad in ["1e308", "NaN", "-3", "0", "1e-300"] {
        // The first row's tg128 rate.
        let edited = text.replacen(",tg128,7.92,", &format!(",tg128,{bad},"), 1);
        assert_ne!(edited, text);
        std::fs::write(dir.path().join(PATH), edited).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.contains("is not a number from 1e-6 to 1e9"), "{bad}: {e}");
        assert!(e.len() < 300, "{bad}: {e}");
    }
    // A note that states a GPU without cores would predict 0 tok/s from its row.
    let edited = text.replacen("\"7-core GPU; M1;", "\"0-core GPU; M1;", 1);
    assert_ne!(edited, text);
    std::fs::write(dir.path().join(PATH), edited).unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(
        e.ends_with("LLaMA 7B v2 Q8_0 Q8_0 on Apple M1: the note states a 0-core GPU"),
        "{e}"
    );
}

#[test]
fn a_damaged_reference_file_is_an_error_never_fewer_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("reference")).unwrap();
    let path = dir.path().join(PATH);
    let error = |text: &[u8]| {
        std::fs::write(&path, text).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(!e.contains('\n'), "{e}");
        e
    };
    assert!(error(&[0xff, 0xfe, 0, 7, b'\n', 0x80]).ends_with("not valid UTF-8 text"));
    // A header alone, of junk or of too few columns: it would read as no rows.
    let e = error(b"\x01\x02\x03");
    assert!(e.contains("no source, url, machine"), "{e}");
    let e = error(b"source,url,machine,backend,model,moe,quant\n");
    assert!(
        e.contains("no model_size_gib, params_b, active_params_b, pp_tps, tg_tps columns"),
        "{e}"
    );
    // An absent file is no rows.
    std::fs::remove_file(&path).unwrap();
    assert!(load(dir.path()).unwrap().is_empty());
}
