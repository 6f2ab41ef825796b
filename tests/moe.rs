//! `runner moe upcycle` and `runner moe verify` on the real SmolLM2: the MoE loads, reports its
//! experts, reproduces the dense model's greedy tokens, and bad arguments are refused clearly.

mod common;
use common::*;
use runner::gguf::{GgmlType, GgufFile, GgufWriter, MetaValue, TensorData, ValueType};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The real model upcycled to 4 experts, top 2 (default grouped router), once per test binary.
fn moe() -> &'static Path {
    static MOE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &MOE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("moe.gguf");
        let o = run(&[
            "moe",
            "upcycle",
            model().to_str().unwrap(),
            out.to_str().unwrap(),
            "--experts",
            "4",
            "--used",
            "2",
        ]);
        assert!(o.status.success(), "upcycle failed: {}", stderr(&o));
        let s = stdout(&o);
        assert!(
            s.contains("4 experts, 2 used per token, grouped router"),
            "{s}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only OUT is left in its directory");
        (dir, out)
    })
    .1
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn upcycled_tensors_sizes_metadata_and_provenance() {
    let dense = GgufFile::open(model()).unwrap();
    let m = GgufFile::open(moe()).unwrap();
    let ffn: u64 = (0..30)
        .flat_map(|i| ["ffn_gate", "ffn_up", "ffn_down"].map(|p| format!("blk.{i}.{p}.weight")))
        .map(|n| dense.tensor(&n).expect("dense FFN tensor").n_bytes)
        .sum();
    let exps: u64 = m
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("_exps.weight"))
        .map(|t| t.n_bytes)
        .sum();
    assert_eq!(exps, ffn * 4, "experts are the dense FFN bytes x 4");
    let router = m.tensor("blk.29.ffn_gate_inp.weight").unwrap();
    assert_eq!(router.dims, [576, 4]);
    assert_eq!(router.ggml_type, GgmlType::F32);
    let up = m.tensor("blk.0.ffn_up_exps.weight").unwrap();
    assert_eq!(up.dims, [576, 1536, 4]);
    assert_eq!(m.tensors.len(), dense.tensors.len() + 30);
    assert_eq!(
        m.tensor_bytes(),
        dense.tensor_bytes() + ffn * 3 + 30 * 576 * 4 * 4
    );
    assert_eq!(m.arch_u64("expert_count"), Some(4));
    assert_eq!(m.arch_u64("expert_used_count"), Some(2));
    assert_eq!(
        m.get("tokenizer.ggml.tokens"),
        dense.get("tokenizer.ggml.tokens")
    );
    let p = runner::moe::Provenance::read(&m).expect("provenance");
    let sha = runner::models::sha256_file(model()).unwrap();
    assert_eq!(p.source_sha256, sha);
    assert_eq!(p.source_size, dense.file_size);
    assert_eq!(
        p.source_name,
        model().file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(
        (p.experts, p.used, p.router.as_str(), p.seed),
        (4, 2, "grouped", Some(42))
    );
}

#[test]
fn moe_loads_in_bench_and_reports_its_experts() {
    let _g = heavy();
    let o = run(&[
        "bench",
        "-m",
        arg(moe()),
        "-p",
        "8",
        "-n",
        "8",
        "-r",
        "1",
        "--format",
        "json",
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let model = &v[0]["model"];
    assert_eq!(model["expert_count"], 4, "{model}");
    assert_eq!(model["expert_used_count"], 2, "{model}");
    assert_eq!(model["architecture"], "llama");
}

#[test]
fn moe_reproduces_the_dense_greedy_tokens() {
    let _g = heavy();
    let o = run(&["moe", "verify", arg(model()), arg(moe()), "-n", "8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("MoE matches dense: 8 greedy tokens identical")
            && s.contains("largest logit difference 0.000e0"),
        "{s}"
    );
}

#[test]
fn upcycle_with_verify_and_a_broken_moe_fails_the_oracle() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.gguf");
    let o = run(&[
        "moe",
        "upcycle",
        arg(model()),
        arg(&out),
        "--experts",
        "4",
        "--used",
        "1",
        "--router",
        "random",
        "--seed",
        "7",
        "--verify",
        "-n",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("MoE matches dense: 4 greedy tokens"),
        "{}",
        stdout(&o)
    );
    // Zero every layer's down-projection experts: the MoE loses its FFNs.
    let g = GgufFile::open(&out).unwrap();
    let mut bytes = std::fs::read(&out).unwrap();
    for t in g
        .tensors
        .iter()
        .filter(|t| t.name.contains("ffn_down_exps"))
    {
        let at = (g.data_offset + t.offset) as usize;
        bytes[at..at + t.n_bytes as usize].fill(0);
    }
    std::fs::write(&out, bytes).unwrap();
    let o = run(&["moe", "verify", arg(model()), arg(&out), "-n", "4"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(
        err.contains("MoE differs from dense at generated token"),
        "{err}"
    );
    assert!(
        !err.contains("rounding"),
        "K = 1 is exact: no excuse offered: {err}"
    );
}

#[test]
fn verify_fails_on_logits_that_are_not_finite() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (dense, moe) = (dir.path().join("rb.gguf"), dir.path().join("rbm.gguf"));
    let o = run(&[
        "models",
        "twin",
        arg(model()),
        "--random-bytes",
        "-o",
        arg(&dense),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "moe",
        "upcycle",
        arg(&dense),
        arg(&moe),
        "--experts",
        "2",
        "--used",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["moe", "verify", arg(&dense), arg(&moe), "-n", "4"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(err.contains("the logits are not finite"), "{err}");
    assert!(!stdout(&o).contains("MoE matches dense"), "{}", stdout(&o));
}

/// Runs `runner` with `args`, expects exit 2 with one `error:` line and no output files in
/// `dir` other than those listed in `keep`; returns the line.
fn refused(args: &[&str], dir: &Path, keep: usize) -> String {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    let l = lines(&err);
    assert_eq!(l.len(), 1, "{args:?}: {err}");
    assert!(l[0].starts_with("error: "), "{}", l[0]);
    assert!(stdout(&o).is_empty(), "{args:?}");
    let n = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(
        n, keep,
        "{args:?}: no OUT and no temporary file left behind"
    );
    l[0].to_string()
}

#[test]
fn bad_arguments_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out.gguf");
    let (m, o) = (arg(model()), arg(&out));
    let up = |input: &str, out: &str, n: &str, k: &str| {
        refused(
            &["moe", "upcycle", input, out, "--experts", n, "--used", k],
            d,
            0,
        )
    };
    assert!(up(m, o, "2", "3").contains("--used 3 is more than --experts 2"));
    assert!(up(m, o, "1", "1").contains("--experts must be at least 2"));
    assert!(up(m, o, "4", "0").contains("--used must be at least 1"));
    assert!(up(m, o, "6", "4").contains("--router grouped needs --used to divide"));
    assert!(up(m, m, "4", "2").contains("is the input file"));
    // A directory that cannot be made (under a file); a missing one is created.
    let e = up(m, arg(&model().join("sub/out.gguf")), "4", "2");
    assert!(e.contains("could not create directory"), "{e}");
    assert!(up(m, arg(d), "4", "2").contains("is a directory"));
    let e = up(arg(&d.join("none.gguf")), o, "4", "2");
    assert!(e.contains("no such file"), "{e}");
    let e = up(arg(moe()), o, "8", "2");
    assert!(e.contains("already a Mixture-of-Experts model"), "{e}");
    assert!(e.contains("llama.expert_count = 4"), "{e}");
    let e = refused(&["moe", "upcycle", m, o, "--experts", "4"], d, 0);
    assert!(e.contains("--used"), "{e}");
}

#[test]
fn bad_input_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = arg(&d.join("out.gguf")).to_string();
    let bad = d.join("bad.gguf");
    std::fs::write(&bad, "not a model\n").unwrap();
    let cut = d.join("cut.gguf");
    let bytes = std::fs::read(model()).unwrap();
    std::fs::write(&cut, &bytes[..1_000_000]).unwrap();
    let gemma = d.join("gemma.gguf");
    let mut w = GgufWriter::new();
    w.set("general.architecture", &MetaValue::Str("gemma3".into()))
        .unwrap();
    w.add_tensor("x", &[4], GgmlType::F32, TensorData::Bytes(vec![0; 16]))
        .unwrap();
    w.write_to(&mut std::fs::File::create(&gemma).unwrap(), None)
        .unwrap();
    let up = |input: &Path| {
        let args = [
            "moe",
            "upcycle",
            arg(input),
            &out,
            "--experts",
            "4",
            "--used",
            "2",
        ];
        refused(&args, d, 3)
    };
    assert!(up(&bad).contains("not a GGUF file"));
    assert!(up(&cut).contains("truncated"));
    let e = up(&gemma);
    assert!(
        e.contains("architecture 'gemma3' cannot be upcycled (supported: llama)"),
        "{e}"
    );
    // The oracle's prompt is text: a dense model of token ids only is refused before the MoE
    // is written.
    let ids = model_edited(d, "ids.gguf", |e| {
        set(e, "tokenizer.ggml.model", ValueType::Str, gguf_str(b"none"))
    });
    let (o, i) = (out.as_str(), arg(&ids));
    let verify = [
        "moe",
        "upcycle",
        i,
        o,
        "--experts",
        "4",
        "--used",
        "2",
        "--verify",
    ];
    let no_text =
        "ids.gguf: has no tokenizer (token ids only), so the oracle cannot give it its prompt";
    let e = refused(&verify, d, 4);
    assert!(e.contains(no_text), "{e}");
    let e = refused(&["moe", "verify", i, arg(moe())], d, 4);
    assert!(e.contains(no_text), "{e}");
    // Where OUT cannot hold the file, nothing is written: checked before the write, as for
    // synthetic models.
    if cfg!(target_os = "linux") {
        let proc = [
            "moe",
            "upcycle",
            arg(model()),
            "/proc/runner-moe.gguf",
            "--experts",
            "2",
            "--used",
            "1",
        ];
        let o = run(&proc);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("/proc is on a file system that holds no files"),
            "{err}"
        );
    }
}

#[test]
fn verify_refuses_mismatched_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = refused(&["moe", "verify", arg(model()), arg(model())], d, 0);
    assert!(e.contains("not a Mixture-of-Experts model"), "{e}");
    let other = d.join("other.gguf");
    let mut bytes = std::fs::read(model()).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    let e = refused(&["moe", "verify", arg(&other), arg(moe())], d, 1);
    assert!(
        e.contains("was upcycled from") && e.contains("bytes), not from"),
        "{e}"
    );
    // A file of the same size is told apart by its sha256.
    let mut bytes = std::fs::read(model()).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&other, bytes).unwrap();
    let e = refused(&["moe", "verify", arg(&other), arg(moe())], d, 1);
    assert!(
        e.contains("was upcycled from") && e.contains("(sha256 ") && e.contains("not from"),
        "{e}"
    );
    let e = refused(
        &["moe", "verify", arg(model()), arg(moe()), "-n", "0"],
        d,
        1,
    );
    assert!(e.contains("'--n-gen <TOKENS>': must be at least 1"), "{e}");
    let e = refused(
        &["moe", "verify", arg(model()), arg(moe()), "-t", "0"],
        d,
        1,
    );
    assert!(
        e.contains("'--threads <THREADS>': must be at least 1"),
        "{e}"
    );
}

/// An MoE that does not name its dense source is held to the dense model's shape before
/// anything is loaded: a dense model of another width is refused in one line.
#[test]
fn verify_refuses_a_dense_model_of_another_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bare = file_edited(moe(), d, "bare.gguf", |e| {
        e.retain(|(k, _, _)| !k.starts_with("runner.upcycle."))
    });
    let wide = model_edited(d, "wide.gguf", |e| {
        let width = 640u32.to_le_bytes().to_vec();
        set(e, "llama.embedding_length", ValueType::U32, width)
    });
    let e = refused(&["moe", "verify", arg(&wide), arg(&bare)], d, 2);
    assert!(
        e.contains("wide.gguf: hidden size 640 (llama), the MoE model's 576 (llama)"),
        "{e}"
    );
    assert!(e.contains("not the dense model"), "{e}");
}

/// A generation no context or memory can hold is bad usage, said once: past llama.cpp's
/// largest context as a flag value, with the prompt added, and more than the machine's memory.
#[test]
fn verify_refuses_a_generation_that_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let verify = |n: &str| refused(&["moe", "verify", arg(model()), arg(moe()), "-n", n], d, 0);
    let e = verify("4294967295");
    assert!(
        e.contains(
            "'--n-gen <TOKENS>': must be at most 2147483392 (the largest context llama.cpp holds)"
        ),
        "{e}"
    );
    let e = verify("2147483392");
    assert!(
        e.contains("-n 2147483392 with a 50-byte prompt needs a context of 2147483450 tokens, more than llama.cpp's largest (2147483392)"),
        "{e}"
    );
    // 2 x 49,152 logits of 4 bytes a generated token alone are about 0.4 MB.
    let e = verify("2000000000");
    assert!(
        e.contains("comparing 2000000000 generated tokens (-n) in a 2000000058-token context needs at least")
            && e.contains("GiB of memory free on this machine"),
        "{e}"
    );
    let up = d.join("up.gguf");
    let args = [
        "moe",
        "upcycle",
        arg(model()),
        arg(&up),
        "--experts",
        "2",
        "--used",
        "1",
        "--verify",
        "-n",
        "2000000000",
    ];
    // Refused before the MoE is written.
    assert!(refused(&args, d, 0).contains("needs at least"));
}

#[test]
fn help_describes_the_oracle() {
    let o = run(&["moe", "upcycle", "--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    for needle in [
        "--experts",
        "--used",
        "--router",
        "--seed",
        "--verify",
        "greedy",
    ] {
        assert!(h.contains(needle), "help lacks {needle}: {h}");
    }
}

/// Hashing a dense model of many GB (its sha256 goes into the MoE's provenance) stops at the
/// first Ctrl-C, as the writing does: a sparse 16 GiB copy takes a minute to hash here.
#[test]
fn an_interrupt_stops_the_hashing_of_a_large_dense_model() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.gguf");
    std::fs::copy(model(), &big).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(16 << 30)
        .unwrap();
    let out = dir.path().join("moe.gguf");
    let child = runner()
        .args(["moe", "upcycle", arg(&big), arg(&out), "--experts", "2"])
        .args(["--used", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(took.as_secs() < 5, "stopped {took:?} after the interrupt");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the dense copy is left: {left:?}");
}

/// OUT is written to a partial file beside it, which Ctrl-C removes: a second Ctrl-C, which
/// ends runner at once, too.
#[test]
fn an_interrupted_upcycle_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("moe.gguf");
    let left = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect()
    };
    let command = || {
        let _ = std::fs::remove_file(&out);
        let mut c = runner();
        c.args(["moe", "upcycle", arg(model()), arg(&out), "--experts", "4"]);
        c.args(["--used", "1"]);
        c
    };
    let partial = || left().iter().any(|n| n.starts_with("moe.gguf.partial-"));
    let o = common::interrupted_when(command, partial, 2, true)
        .expect("the write ended each time before it could be interrupted");
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(left(), Vec::<String>::new(), "nothing is left");
}
