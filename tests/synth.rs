//! Synthetic models: every catalogue entry builds at a few layers, matches the catalogue, loads
//! in llama.cpp and decodes; types are llama.cpp's own choices; a seed makes the same file;
//! twins copy a real file's tensors; bad input is refused in one line.

mod common;

use common::{heavy, model, run, stderr, stdout};
use runner::gguf::{ArrayValue, GgmlType, GgufFile, GgufWriter, MetaValue, TensorData, ValueType};
use runner::models::catalogue::{self, Init, CATALOGUE};
use runner::models::synthetic::{Synthetic, VALUE_MODEL};
use std::path::Path;

/// Builds `name` with `args` into `out` through the CLI.
fn synth(name: &str, out: &Path, args: &[&str]) {
    let mut all = vec!["models", "synth", name, "-o", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "{name}: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), out.to_str().unwrap());
}

/// Each of `cases` (arguments, what stderr must say) exits 2 with one line and writes no `out`.
fn refused_in_one_line(cases: &[(Vec<&str>, &str)], out: &Path) {
    for (args, says) in cases {
        let r = run(args);
        let e = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(common::lines(&e).len(), 1, "{args:?}: {e}");
        assert!(!out.exists(), "{args:?} left a file");
    }
}

/// Runs a short bench on `path` and returns its one record.
fn bench(path: &Path) -> serde_json::Value {
    let o = run(&[
        "bench",
        "-m",
        path.to_str().unwrap(),
        "-p",
        "8",
        "-n",
        "4",
        "-r",
        "1",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}: {}", path.display(), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    v.as_array()
        .and_then(|a| a.first())
        .cloned()
        .expect("one record")
}

#[test]
fn every_catalogue_entry_builds_matches_the_catalogue_loads_and_decodes() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for a in &CATALOGUE {
        let layers = a.period().max(2);
        let out = dir.path().join(format!("{}.gguf", a.name));
        synth(
            a.name,
            &out,
            &["--layers", &layers.to_string(), "--ids-only"],
        );
        let g = GgufFile::open(&out).unwrap();
        let specs = a.tensors(layers);
        assert_eq!(g.tensors.len(), specs.len(), "{}", a.name);
        for (t, s) in g.tensors.iter().zip(&specs) {
            assert_eq!((&t.name, &t.dims), (&s.name, &s.dims), "{}", a.name);
            match s.init {
                Init::Norm | Init::Bias | Init::Decay | Init::One | Init::Zero => {
                    assert!(
                        matches!(t.ggml_type, GgmlType::F32),
                        "{} {}: {}",
                        a.name,
                        t.name,
                        t.ggml_type
                    )
                }
                Init::Matrix | Init::Embedding if t.dims[0] % 256 == 0 => assert!(
                    t.ggml_type.is_quantized(),
                    "{} {} is {}",
                    a.name,
                    t.name,
                    t.ggml_type
                ),
                _ => {}
            }
        }
        let s = Synthetic::from_gguf(&g).expect("synthetic keys");
        assert_eq!(
            (s.of.as_str(), s.layers, s.full_layers, s.values),
            (a.name, layers, a.layers, VALUE_MODEL)
        );
        assert_eq!(g.architecture(), Some(a.family.as_str()));
        let rec = bench(&out);
        let tps = rec["results"]["gen_tps"]["median"].as_f64().unwrap_or(0.0);
        assert!(tps > 0.0, "{}: {rec}", a.name);
        assert_eq!(rec["model"]["synthetic"]["of"], a.name, "{}", a.name);
        assert_eq!(
            rec["model"]["synthetic"]["values"], VALUE_MODEL,
            "{}",
            a.name
        );
        std::fs::remove_file(&out).unwrap();
        if a.dense_reference().is_some() {
            let dense = dir.path().join(format!("{}-dense.gguf", a.name));
            let l = layers.to_string();
            synth(a.name, &dense, &["--layers", &l, "--ids-only", "--dense"]);
            let rec = bench(&dense);
            assert_eq!(rec["model"]["synthetic"]["dense"], true, "{}", a.name);
            assert!(rec["model"]["expert_count"].is_null(), "{}: {rec}", a.name);
            std::fs::remove_file(&dense).unwrap();
        }
    }
}

#[test]
fn tensor_types_are_what_llamas_quantizer_makes() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let f16 = dir.path().join("f16.gguf");
    let direct = dir.path().join("q4_k_m.gguf");
    for out in [&f16, &direct] {
        let q = if out == &f16 { "f16" } else { "q4_k_m" };
        synth(
            "llama-3.1-8b",
            out,
            &["--layers", "2", "--ids-only", "-q", q],
        );
    }
    // llama.cpp quantizes the F16 model itself: the same types, tensor by tensor
    let backend = runner::engine::init(false).unwrap();
    let q4_k_m = runner::engine::quant::parse("q4_k_m").unwrap();
    let cache = dir.path().join("cache");
    let sha = "0".repeat(64);
    let quantized =
        runner::engine::quantize::quantize_cached(backend, &f16, &sha, q4_k_m, &cache, 2)
            .unwrap()
            .path;
    let a = GgufFile::open(&quantized).unwrap();
    let b = GgufFile::open(&direct).unwrap();
    let types = |g: &GgufFile| {
        g.tensors
            .iter()
            .map(|t| (t.name.clone(), t.ggml_type))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(types(&a), types(&b));
    assert_eq!(a.tensors.len(), b.tensors.len());
    assert!(types(&b).values().any(|t| *t == GgmlType::Q6_K));
    assert!(types(&b).values().any(|t| *t == GgmlType::Q4_K));
}

#[test]
fn a_seed_makes_the_same_file_and_another_seed_another() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let args = |seed: &'static str| ["--layers", "1", "--ids-only", "-q", "q4_0", "--seed", seed];
    synth("llama-2-7b", &p("a"), &args("5"));
    synth("llama-2-7b", &p("b"), &args("5"));
    synth("llama-2-7b", &p("c"), &args("6"));
    let read = |n: &str| std::fs::read(p(n)).unwrap();
    assert!(read("a") == read("b"), "same seed, different files");
    assert!(read("a") != read("c"), "another seed, the same file");
}

#[test]
fn a_twin_copies_the_tensors_and_not_the_values() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("twin.gguf");
    let o = run(&[
        "models",
        "twin",
        model().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (real, twin) = (
        GgufFile::open(model()).unwrap(),
        GgufFile::open(&out).unwrap(),
    );
    let shape = |g: &GgufFile| {
        g.tensors
            .iter()
            .map(|t| (t.name.clone(), t.dims.clone(), t.ggml_type))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&real), shape(&twin));
    for (k, v) in &real.metadata {
        assert_eq!(twin.get(k), Some(v), "{k}");
    }
    assert_eq!(Synthetic::from_gguf(&twin).unwrap().of, "twin");
    let data = |p: &Path, g: &GgufFile| {
        let t = g.tensor("blk.0.ffn_down.weight").unwrap();
        let bytes = std::fs::read(p).unwrap();
        let start = (g.data_offset + t.offset) as usize;
        bytes[start..start + t.n_bytes as usize].to_vec()
    };
    assert_ne!(data(model(), &real), data(&out, &twin));
    let rec = bench(&out);
    assert_eq!(rec["model"]["synthetic"]["of"], "twin");
}

#[test]
fn a_twin_is_never_written_over_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("m.gguf");
    std::fs::copy(model(), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let link = dir.path().join("link.gguf");
    std::os::unix::fs::symlink(&copy, &link).unwrap();
    for out in [&copy, &link] {
        let o = run(&[
            "models",
            "twin",
            copy.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("is the model the twin is made from"), "{err}");
    }
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "the model is untouched"
    );
}

#[test]
fn bad_requests_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.gguf");
    let o = out.to_str().unwrap();
    let not_gguf = dir.path().join("not.gguf");
    std::fs::write(&not_gguf, b"this is not a model").unwrap();
    // A model with a tensor of a type ggml quantizes only with an importance matrix.
    let iq1 = dir.path().join("iq1.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", &MetaValue::Str("llama".into()))
        .unwrap();
    let bytes = TensorData::Bytes(vec![0; GgmlType::IQ1_S.type_size() as usize]);
    w.add_tensor("blk.0.ffn_down.weight", &[256, 1], GgmlType::IQ1_S, bytes)
        .unwrap();
    w.write_to(&mut std::fs::File::create(&iq1).unwrap(), None)
        .unwrap();
    let cases = [
        (
            vec!["models", "synth", "llama-9b", "-o", o],
            "unknown architecture",
        ),
        (
            vec!["models", "synth", "llama-2-7b", "--layers", "0", "-o", o],
            "1 to 32",
        ),
        (
            vec!["models", "synth", "llama-2-7b", "--layers", "33", "-o", o],
            "1 to 32",
        ),
        (
            vec!["models", "synth", "qwen3.6-27b", "--layers", "2", "-o", o],
            "multiple of 4",
        ),
        (
            vec!["models", "synth", "llama-2-7b", "-q", "mxfp4_moe", "-o", o],
            "Mixture-of-Experts",
        ),
        (
            vec!["models", "synth", "llama-2-7b", "-q", "iq2_xxs", "-o", o],
            "importance matrix",
        ),
        (
            vec!["models", "twin", not_gguf.to_str().unwrap(), "-o", o],
            "not.gguf",
        ),
        (
            vec!["models", "twin", iq1.to_str().unwrap(), "-o", o],
            "importance matrix",
        ),
        (
            vec!["bench", "-m", "synth:llama-2-7b:layers=40", "-n", "1"],
            "1 to 32",
        ),
        (
            vec![
                "models",
                "synth",
                "mixtral-8x7b",
                "--layers",
                "1",
                "--experts",
                "0",
                "-o",
                o,
            ],
            "--experts 0: must be at least 2",
        ),
        (
            vec![
                "models",
                "synth",
                "gpt-oss-20b",
                "--layers",
                "1",
                "--experts",
                "3",
                "-o",
                o,
            ],
            "--experts 3: must be at least 4",
        ),
        (
            vec![
                "bench",
                "-m",
                "synth:mixtral-8x7b:layers=1:experts=0",
                "-n",
                "1",
            ],
            "must be at least 2",
        ),
        (
            vec![
                "bench",
                "-m",
                "synth:llama-2-7b:layers=1:layers=2",
                "-n",
                "1",
            ],
            "layers is given twice",
        ),
    ];
    refused_in_one_line(&cases, &out);
}

#[test]
fn a_model_is_never_written_over_records_into_a_directory_or_under_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let records = d.join("rec.jsonl");
    let sweep = include_str!("data/records/sweep-0ad6ba95c6e9.jsonl");
    std::fs::write(&records, sweep).unwrap();
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let under_file = d.join("rec.jsonl/x.gguf");
    let (m, r, s, u) = (
        model().to_str().unwrap(),
        records.to_str().unwrap(),
        sub.to_str().unwrap(),
        under_file.to_str().unwrap(),
    );
    let holds =
        |what: &str| format!("{r}: holds records (a results file); write {what} to another file");
    let (holds_model, holds_moe) = (holds("the model"), holds("the MoE"));
    for (args, says) in [
        (
            vec![
                "models",
                "synth",
                "llama-2-7b",
                "--layers",
                "1",
                "--ids-only",
                "-o",
                r,
            ],
            holds_model.as_str(),
        ),
        (vec!["models", "twin", m, "-o", r], holds_model.as_str()),
        (
            vec!["moe", "upcycle", m, r, "--experts", "2", "--used", "1"],
            holds_moe.as_str(),
        ),
        (
            vec![
                "models",
                "synth",
                "llama-2-7b",
                "--layers",
                "1",
                "--ids-only",
                "-o",
                s,
            ],
            "is a directory",
        ),
        (vec!["models", "twin", m, "-o", s], "is a directory"),
        (
            vec![
                "models",
                "synth",
                "llama-2-7b",
                "--layers",
                "1",
                "--ids-only",
                "-o",
                u,
            ],
            "rec.jsonl is not a directory",
        ),
        (
            vec!["models", "twin", m, "-o", u],
            "rec.jsonl is not a directory",
        ),
    ] {
        let o = run(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert_eq!(common::lines(&e).len(), 1, "{args:?}: {e}");
        assert!(!e.contains("wrote"), "{args:?}: {e}");
    }
    assert_eq!(std::fs::read_to_string(&records).unwrap(), sweep);
    assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(d).unwrap().count(),
        2,
        "nothing else written"
    );
}

/// An OUT that is a symbolic link into a directory not there yet: the directory is made and
/// the model written where the link points, for `models twin` and `moe upcycle` alike.
#[test]
fn an_output_linked_into_a_missing_directory_is_written_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let m = model().to_str().unwrap();
    let commands = [
        vec!["models", "twin", m, "-o"],
        vec!["moe", "upcycle", m, "--experts", "2", "--used", "1"],
    ];
    for (i, command) in commands.iter().enumerate() {
        let target = d.join(format!("nodir{i}/zz/x.gguf"));
        let link = d.join(format!("link{i}.gguf"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut args = command.clone();
        args.push(link.to_str().unwrap());
        let o = run(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(GgufFile::open(&target).is_ok(), "{args:?}");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["x.gguf"], "{args:?}: only the model");
    }
}

#[test]
fn a_damaged_cached_synthetic_model_is_made_again() {
    let _g = heavy();
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    let spec = "synth:llama-2-7b:layers=1:tokenizer=none";
    let bench = || {
        run(&[
            "--cache-dir",
            c,
            "bench",
            "-m",
            spec,
            "-p",
            "8",
            "-n",
            "1",
            "-r",
            "1",
            "--no-progress",
        ])
    };
    let o = bench();
    assert!(o.status.success(), "{}", stderr(&o));
    let files: Vec<_> = std::fs::read_dir(cache.path().join("synth"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap();
    let full = file.metadata().unwrap().len();
    file.set_len(full / 2).unwrap();
    let o = bench();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("the cached synthetic model is damaged"), "{e}");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), full);
}

#[test]
fn an_interrupted_model_write_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.gguf");
    let partial = |d: &Path| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.contains(".partial-") || n.ends_with(".part"))
    };
    let command = || {
        let _ = std::fs::remove_file(&out);
        let mut c = common::runner();
        c.args([
            "models",
            "synth",
            "llama-2-7b",
            "--layers",
            "1",
            "--ids-only",
            "-o",
        ]);
        c.arg(&out);
        c
    };
    let o = common::interrupted_when(command, || partial(dir.path()).is_some(), 1, true)
        .expect("the write ended each time before it could be interrupted");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(partial(dir.path()), None);
    assert!(!out.exists());
}

/// `bench` and `profile` make a `synth:` model before they run: Ctrl-C while it is written
/// stops them (exit 130), and no partial file is left in the cache.
#[test]
fn an_interrupt_while_a_run_makes_its_synthetic_model_leaves_no_partial_file() {
    let _g = heavy();
    let cache = tempfile::tempdir().unwrap();
    let c_dir = cache.path().to_str().unwrap();
    let synth = cache.path().join("synth");
    let partials = || -> Vec<String> {
        std::fs::read_dir(&synth)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.contains(".partial-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let spec = "synth:llama-2-7b:layers=1:tokenizer=none";
    let runs = [
        format!("bench -m {spec} -p 8 -n 1 -r 1 --no-progress"),
        format!("profile -m {spec} -p 8 -d 8 -n 1 -r 1"),
    ];
    for run in &runs {
        let args: Vec<&str> = run.split_whitespace().collect();
        let command = || {
            let _ = std::fs::remove_dir_all(&synth);
            let mut c = common::runner();
            c.args(["--cache-dir", c_dir]).args(&args);
            c
        };
        let o = common::interrupted_when(command, || !partials().is_empty(), 1, false);
        let o = o.unwrap_or_else(|| panic!("{args:?}: the write ended each time first"));
        assert_eq!(o.status.code(), Some(130), "{args:?}: {}", stderr(&o));
        assert_eq!(partials(), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn the_catalogue_is_listed_beside_the_fetchable_models() {
    let o = run(&["models", "list"]);
    assert!(o.status.success());
    let s = stdout(&o);
    for a in &CATALOGUE {
        assert!(s.contains(a.name), "{} missing from:\n{s}", a.name);
    }
    assert!(s.contains("synthetic"));
    assert!(catalogue::arch("qwen3-coder-30b-a3b").is_ok());
}

#[test]
fn layer_scaled_runs_give_a_labelled_full_depth_extrapolation() {
    let _g = heavy();
    let cache = tempfile::tempdir().unwrap();
    let o = common::runner()
        .args([
            "bench",
            "-m",
            "synth:llama-2-7b@q4_0:tokenizer=none",
            "--layers",
            "1,2",
        ])
        .args(["-p", "16", "-n", "8", "-r", "2", "--no-progress"])
        .env("RUNNER_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("llama-2-7b (synthetic) 1/32 layers"), "{out}");
    assert!(out.contains("llama-2-7b (synthetic) 2/32 layers"), "{out}");
    let block = out
        .split("extrapolated from layer-scaled synthetic runs")
        .nth(1)
        .unwrap_or_else(|| panic!("no extrapolation:\n{out}"));
    for phase in ["prompt", "generation"] {
        let row = block
            .lines()
            .find(|l| l.contains(phase))
            .unwrap_or_else(|| panic!("no {phase} row:\n{block}"));
        assert!(
            row.contains("1, 2") && row.contains("32") && row.contains("2 depths"),
            "{row}"
        );
    }
    // both were cached, and the same command measures without building again
    let built = std::fs::read_dir(cache.path().join("synth"))
        .unwrap()
        .count();
    assert_eq!(built, 2);
    let r = run(&["bench", "-m", "smollm2-135m", "--layers", "4", "-n", "1"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("synthetic"), "{}", stderr(&r));
}

#[test]
fn a_tokenizer_from_a_file_lets_an_entry_without_one_run_scenarios() {
    let _g = heavy();
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_str().unwrap();
    let donor = model();
    let d = donor.to_str().unwrap();
    let donor_g = GgufFile::open(donor).unwrap();
    let tokens = |g: &GgufFile| match g.get("tokenizer.ggml.tokens") {
        Some(runner::gguf::MetaValue::Array(a)) => a.len,
        other => panic!("tokens: {other:?}"),
    };
    // Without a tokenizer the entry cannot run scenarios, and the refusal names the way out.
    let o = run(&[
        "--cache-dir",
        c,
        "sweep",
        "-m",
        "synth:llama-3.1-8b:layers=1",
        "-q",
        "source",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("add tokenizer=FILE"), "{e}");

    let out = cache.path().join("l8.gguf");
    synth(
        "llama-3.1-8b",
        &out,
        &["--layers", "1", "-q", "q4_0", "--tokenizer", d],
    );
    let g = GgufFile::open(&out).unwrap();
    assert_eq!(tokens(&g), 128_256, "padded to the model's vocabulary");
    for key in ["tokenizer.ggml.model", "tokenizer.chat_template"] {
        assert_eq!(g.get_str(key), donor_g.get_str(key), "{key}");
        assert!(g.get_str(key).is_some(), "{key}");
    }
    let s = Synthetic::from_gguf(&g).unwrap();
    let name = donor.file_name().unwrap().to_str().unwrap();
    assert_eq!(s.tokenizer, format!("{name} (file)"));

    // As a synth: name, the sweep builds it into the cache and runs a prompt through it.
    let results = cache.path().join("runs");
    let spec = format!("synth:llama-3.1-8b@q4_0:layers=1:tokenizer={d}");
    let o = run(&[
        "--cache-dir",
        c,
        "sweep",
        "-m",
        &spec,
        "-q",
        "source",
        "-s",
        "short-response",
        "--limit",
        "1",
        "--max-tokens",
        "2",
        "--no-progress",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cached: Vec<_> = std::fs::read_dir(cache.path().join("synth"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].contains("-t"), "{cached:?}");
    let file = std::fs::read_dir(&results).unwrap().next().unwrap();
    let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
    let req: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "request")
        .expect("a request record");
    assert!(req["prompt_tokens"].as_u64().unwrap() > 5, "{req}");
    assert_eq!(
        req["info"]["model"]["synthetic"]["tokenizer"],
        format!("{name} (file)")
    );
}

#[test]
fn a_tokenizer_file_that_cannot_serve_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.gguf");
    let o = out.to_str().unwrap();
    let not_gguf = dir.path().join("not.gguf");
    std::fs::write(&not_gguf, b"this is not a model").unwrap();
    let ids_only = dir.path().join("ids.gguf");
    synth(
        "llama-2-7b",
        &ids_only,
        &["--layers", "1", "-q", "q4_0", "--ids-only"],
    );
    let smol = model().to_str().unwrap();
    let too_many = format!("synth:llama-2-7b:tokenizer={smol}");
    let mine = dir.path().join("mine.gguf");
    std::fs::copy(model(), &mine).unwrap();
    let m = mine.to_str().unwrap();
    // Three tokens with a scores list llama.cpp's vocabulary loader refuses.
    let list = |t: ValueType, v: Vec<MetaValue>| {
        MetaValue::Array(ArrayValue {
            elem_type: t,
            len: v.len() as u64,
            head: v,
        })
    };
    let with_scores = |name: &str, scores: MetaValue| {
        let path = dir.path().join(name);
        let mut w = GgufWriter::new();
        let tokens = ["a", "b", "c"].map(|t| MetaValue::Str(t.into())).to_vec();
        for (k, v) in [
            ("general.architecture", MetaValue::Str("llama".into())),
            ("tokenizer.ggml.model", MetaValue::Str("gpt2".into())),
            ("tokenizer.ggml.tokens", list(ValueType::Str, tokens)),
            ("tokenizer.ggml.scores", scores),
        ] {
            w.set(k, &v).unwrap();
        }
        w.write_to(&mut std::fs::File::create(&path).unwrap(), None)
            .unwrap();
        path.to_str().unwrap().to_string()
    };
    let short = with_scores(
        "short.gguf",
        list(ValueType::F32, vec![MetaValue::F32(0.0); 2]),
    );
    let strings = with_scores(
        "str.gguf",
        list(ValueType::Str, vec![MetaValue::Str("x".into()); 3]),
    );
    let scalar = with_scores("scalar.gguf", MetaValue::U32(3));
    let long = with_scores(
        "long.gguf",
        list(ValueType::F32, vec![MetaValue::F32(0.0); 4]),
    );
    fn synth_with<'a>(tokenizer: &'a str, o: &'a str) -> Vec<&'a str> {
        let args = ["models", "synth", "llama-3.1-8b", "--tokenizer", tokenizer];
        [&args[..], &["-o", o]].concat()
    }
    let cases = [
        (
            synth_with(&short, o),
            "tokenizer.ggml.scores has 2 entries for 3 tokens",
        ),
        (
            synth_with(&strings, o),
            "tokenizer.ggml.scores is a list of str; llama.cpp reads a list of f32 or i32",
        ),
        (
            synth_with(&long, o),
            "tokenizer.ggml.scores has 4 entries: more than its 3 tokens, fewer than the 128256 \
             they are padded to",
        ),
        (
            synth_with(&scalar, o),
            "tokenizer.ggml.scores is a u32, not a list of f32 or i32",
        ),
        (
            vec!["models", "synth", "llama-3.1-8b", "--tokenizer", m, "-o", m],
            "is the file the tokenizer comes from",
        ),
        (
            vec![
                "models",
                "synth",
                "llama-3.1-8b",
                "--tokenizer",
                "/no/such.gguf",
                "-o",
                o,
            ],
            "tokenizer /no/such.gguf",
        ),
        (
            vec![
                "models",
                "synth",
                "llama-3.1-8b",
                "--tokenizer",
                not_gguf.to_str().unwrap(),
                "-o",
                o,
            ],
            "not.gguf",
        ),
        (
            vec![
                "models",
                "synth",
                "llama-3.1-8b",
                "--tokenizer",
                ids_only.to_str().unwrap(),
                "-o",
                o,
            ],
            "holds no tokenizer",
        ),
        (
            vec![
                "models",
                "synth",
                "llama-2-7b",
                "--tokenizer",
                smol,
                "-o",
                o,
            ],
            "its tokenizer has 49152 tokens; the model's vocabulary holds at most 32000",
        ),
        (
            vec![
                "models",
                "synth",
                "llama-3.1-8b",
                "--tokenizer",
                smol,
                "--ids-only",
                "-o",
                o,
            ],
            "cannot be used with",
        ),
        (vec!["bench", "-m", &too_many, "-n", "1"], "at most 32000"),
    ];
    refused_in_one_line(&cases, &out);
    let kept = std::fs::read(&mine).unwrap();
    assert!(
        kept == std::fs::read(model()).unwrap(),
        "the tokenizer's model was changed"
    );
}

/// Writes a small GGUF file of one tensor at `path`, with the string `keys` besides its
/// architecture.
fn tiny_gguf(path: &Path, keys: &[(&str, &str)]) {
    let mut w = GgufWriter::new();
    w.set("general.architecture", &MetaValue::Str("llama".into()))
        .unwrap();
    for (k, v) in keys {
        w.set(k, &MetaValue::Str(v.to_string())).unwrap();
    }
    w.add_tensor("x", &[4], GgmlType::F32, TensorData::Bytes(vec![0; 16]))
        .unwrap();
    w.write_to(&mut std::fs::File::create(path).unwrap(), None)
        .unwrap();
}

#[test]
fn a_model_runner_did_not_make_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.gguf");
    tiny_gguf(&real, &[("general.name", "someone's model")]);
    let before = std::fs::read(&real).unwrap();
    let link = dir.path().join("link.gguf");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for out in [real.to_str().unwrap(), link.to_str().unwrap()] {
        let cases = [
            vec![
                "models",
                "synth",
                "llama-2-7b",
                "--layers",
                "1",
                "--ids-only",
                "-o",
                out,
            ],
            vec!["models", "twin", "/nonexistent/m.gguf", "-o", out],
            vec![
                "moe",
                "upcycle",
                "/nonexistent/m.gguf",
                out,
                "--experts",
                "2",
                "--used",
                "1",
            ],
            // Refused before a known model is fetched.
            vec![
                "moe",
                "upcycle",
                "smollm2-135m",
                out,
                "--experts",
                "2",
                "--used",
                "1",
            ],
        ];
        for args in cases {
            let o = run(&args);
            let e = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
            assert_eq!(common::lines(&e).len(), 1, "{args:?}: {e}");
            assert!(
                e.contains(&format!("{out}: is a GGUF model runner did not make")),
                "{args:?}: {e}"
            );
            assert!(std::fs::read(&real).unwrap() == before, "{args:?}");
        }
    }
    // What runner made (a synthetic model or a twin, an upcycled MoE) is replaced as before.
    let _g = heavy();
    for key in [
        ("runner.synthetic.of", "twin"),
        ("runner.upcycle.source_sha256", "00"),
    ] {
        tiny_gguf(&real, &[key]);
        synth(
            "llama-2-7b",
            &real,
            &["--layers", "1", "--ids-only", "-q", "q4_0"],
        );
        let g = GgufFile::open(&real).unwrap();
        assert_eq!(
            Synthetic::from_gguf(&g).unwrap().of,
            "llama-2-7b",
            "{key:?}"
        );
    }
}
