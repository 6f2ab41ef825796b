//! Bad input never crashes: each gets one clear line on stderr and a non-zero exit.

mod common;
use common::*;
use runner::gguf::{GgufFile, MetaValue, ValueType};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs a bench that must be refused and returns its single stderr line.
fn refused(args: &[&str], code: i32) -> String {
    let mut full = vec!["bench", "--no-progress"];
    full.extend_from_slice(args);
    refused_by(&full, code)
}

/// Runs a command that must be refused and returns its single stderr line.
fn refused_by(args: &[&str], code: i32) -> String {
    let o = run(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}: stderr {err}");
    let l = lines(&err);
    assert_eq!(l.len(), 1, "{args:?}: expected one line, got {err}");
    assert!(l[0].starts_with("error: "), "{}", l[0]);
    assert!(stdout(&o).is_empty(), "{args:?}: stdout {}", stdout(&o));
    l[0].to_string()
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let m = model().to_str().unwrap();
    let e = refused(&["-m", m, "-o", d], 2);
    assert!(e.contains("is a directory; name a file"), "{e}");
    let o = run(&["sweep", "--no-progress", "-m", m, "-o", d]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is a directory; name a file"), "{err}");
    // A directory that is a file cannot hold the output.
    let under_file = dir.path().join("plain");
    std::fs::write(&under_file, "x").unwrap();
    let under_file = under_file.join("table.md");
    // Nor can /proc, for root neither (whom access() lets write any directory).
    for o in [under_file.to_str().unwrap(), "/proc/runner-test.json"] {
        let e = refused(&["-m", m, "-o", o], 2);
        assert!(e.contains("cannot be written: "), "{e}");
        for args in [
            &["sweep", "--no-progress", "-m", m, "-o", o][..],
            &["report", "--results", d, "-o", o],
            &["guide", "--results", d, "-o", o],
        ] {
            let e = refused_by(args, 2);
            assert!(e.contains("cannot be written: "), "{args:?}: {e}");
        }
    }
}

/// A bench's `-o` never replaces records already taken (a sweep's results file, an earlier
/// bench's output): it is refused before any model loads, the file left as it was.
#[test]
fn a_bench_output_that_holds_records_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let m = model().to_str().unwrap();
    for name in ["sweep-0ad6ba95c6e9.jsonl", "bench-smollm2.json"] {
        let victim = dir.path().join(name);
        std::fs::copy(data.join(name), &victim).unwrap();
        let before = std::fs::read(&victim).unwrap();
        let v = victim.to_str().unwrap();
        let args = ["-m", m, "-p", "8", "-n", "4", "-r", "1", "-o", v];
        let e = refused(&args, 2);
        assert_eq!(
            e,
            format!(
                "error: -o {v}: holds records (a results file); write the results to another file"
            )
        );
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            before,
            "{name} was changed"
        );
    }
}

/// An output FIFO that no process reads is waited for, but a Ctrl-C ends the wait: the run
/// does not hang after its work is done.
#[test]
fn a_ctrl_c_ends_the_wait_for_an_output_fifos_reader() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.fifo");
    mkfifo(&fifo);
    let m = model().to_str().unwrap();
    let f = fifo.to_str().unwrap();
    let _g = heavy();
    let child = runner()
        .args([
            "bench",
            "--no-progress",
            "-m",
            m,
            "-p",
            "8",
            "-n",
            "2",
            "-r",
            "1",
        ])
        .args(["-o", f])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the bench to finish and wait on the FIFO.
    std::thread::sleep(std::time::Duration::from_secs(10));
    std::process::Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .unwrap();
    let sent = std::time::Instant::now();
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if sent.elapsed().as_secs() >= 5 {
            let _ = child.kill();
            panic!("still running 5 s after Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: interrupted")),
        "{err}"
    );
}

/// A bench with several tests writes an output FIFO once, when it ends: its reader gets every
/// test, and the bench does not wait for a second reader after the first has seen its end.
#[test]
fn an_output_fifo_gets_every_test_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.fifo");
    mkfifo(&fifo);
    let reader = std::process::Command::new("cat")
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let m = model().to_str().unwrap();
    let f = fifo.to_str().unwrap();
    let _g = heavy();
    let args = [
        "bench",
        "--no-progress",
        "-m",
        m,
        "-p",
        "8,16",
        "-n",
        "2",
        "-r",
        "1",
    ];
    let mut child = runner()
        .args(args)
        .args(["-o", f, "--format", "jsonl"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() >= 120 {
            let _ = child.kill();
            panic!("the bench still waits on its output FIFO after 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let read = reader.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&read.stdout);
    let tests: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| r["test"]["name"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(tests, ["pp8+tg2", "pp16+tg2"], "{text}");
}

#[test]
fn missing_file_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.gguf");
    let e = refused(&["-m", missing.to_str().unwrap()], 2);
    assert!(e.contains("no such file") && e.contains("none.gguf"), "{e}");
    let e = refused(&["-m", dir.path().to_str().unwrap()], 2);
    assert!(e.contains("is a directory"), "{e}");
}

#[test]
fn non_gguf_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, "not a model\n").unwrap();
    let e = refused(&["-m", bad.to_str().unwrap()], 2);
    assert!(e.contains("not a GGUF file"), "{e}");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, "").unwrap();
    let e = refused(&["-m", empty.to_str().unwrap()], 2);
    assert!(e.contains("truncated"), "{e}");
    // A sweep refuses them with bench's line, before it measures or writes anything.
    let results = dir.path().join("results");
    let r = results.to_str().unwrap();
    for f in [&bad, &empty] {
        let f = f.to_str().unwrap();
        let sweep = [
            "sweep",
            "--no-progress",
            "-m",
            f,
            "--results",
            r,
            "--scenario",
            "short-response",
        ];
        let e = refused_by(&sweep, 2);
        assert_eq!(e, refused(&["-m", f], 2));
        assert!(!results.exists(), "{e}");
    }
}

#[test]
fn truncated_copies_of_the_real_model() {
    let model = std::fs::read(model()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // inside the header, inside the tensor table/metadata, inside the data, one byte short
    for cut in [24, 1000, 1_000_000, 4_000_000, model.len() - 1] {
        let p = dir.path().join(format!("cut{cut}.gguf"));
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&model[..cut])
            .unwrap();
        let e = refused(
            &["-m", p.to_str().unwrap(), "-p", "8", "-n", "4", "-r", "1"],
            2,
        );
        assert!(e.contains("truncated"), "cut at {cut}: {e}");
    }
}

#[test]
fn unknown_model_name() {
    let e = refused(&["-m", "no-such-model"], 2);
    assert!(e.contains("unknown model 'no-such-model'"), "{e}");
    assert!(e.contains("smollm2-135m"), "{e}");
    let o = run(&["models", "fetch", "no-such-model"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(lines(&stderr(&o)).len(), 1);
}

/// A list value given twice would run the same tests twice: refused before anything runs.
#[test]
fn a_bench_list_value_given_twice_is_refused() {
    let m = model().to_str().unwrap();
    let (twice, model_twice) = (format!("{m},{m}"), format!("error: -m {m}: given twice"));
    for (args, want) in [
        (vec!["-m", m, "-t", "1,1"], "error: -t 1: given twice"),
        (vec!["-m", m, "-p", "8,8"], "error: -p 8: given twice"),
        (vec!["-m", twice.as_str()], model_twice.as_str()),
    ] {
        assert_eq!(refused(&args, 2), want, "{args:?}");
    }
}

#[test]
fn bad_counts() {
    let m = model().to_str().unwrap();
    for (args, needle) in [
        (&["-p", "-5"][..], "must be 0 or more"),
        (&["-n", "-1"], "must be 0 or more"),
        (&["-r", "0"], "at least 1"),
        (&["-r", "4294967295"], "at most 10000"),
        (&["-t", "0"], "at least 1"),
        (&["-t", "100000"], "at most 512"),
        (&["-t", "4,513"], "at most 512"),
        (&["--ctx", "0"], "must be 1 to 2147483392"),
        (
            &["--ctx", "4294967295"],
            "must be 1 to 2147483392 (the largest context llama.cpp holds)",
        ),
        (&["--ctx", "64,2147483393"], "got 2147483393"),
        (&["-b", "0"], "at least 1"),
        (&["-p", "abc"], "whole number"),
        (&["-p", "0", "-n", "0"], "nothing to measure"),
        (&["--flash-attn", "sometimes"], "invalid value"),
        // A negative number is a value, not a flag.
        (
            &["--busy-threshold", "-1"],
            "--busy-threshold must be 0 or more",
        ),
        (&["--ngl", "-1"], "invalid value '-1' for '--n-gpu-layers"),
    ] {
        let mut a = vec!["-m", m];
        a.extend_from_slice(args);
        let e = refused(&a, 2);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
}

#[test]
fn threads_above_llama_cpps_limit() {
    let m = model().to_str().unwrap();
    for line in [
        "hw --no-save --size-mib 1 --passes 1 -t 1,513",
        "hw --no-save --size-mib 1 --passes 1 -t 100000",
        "sweep -m MODEL -t 100000",
        "profile -m MODEL -t 513",
        "moe verify MODEL MODEL -t 100000",
        "moe upcycle MODEL out.gguf --experts 2 --used 1 --verify -t 513",
    ] {
        let args: Vec<&str> = line
            .split_whitespace()
            .map(|a| if a == "MODEL" { m } else { a })
            .collect();
        let e = refused_by(&args, 2);
        assert!(e.contains("at most 512"), "{line}: {e}");
    }
}

#[test]
fn context_beyond_llama_cpps_largest() {
    let m = model().to_str().unwrap();
    for cmd in [&["bench", "--no-progress"][..], &["sweep", "--no-progress"]] {
        let o = run(&[cmd, &["-m", m, "--ctx", "4294967295"]].concat());
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{cmd:?}: {err}");
        assert!(err.contains("must be 1 to 2147483392"), "{cmd:?}: {err}");
    }
}

/// Token counts no context or memory can hold are refused before anything is allocated,
/// saying which limit they pass; a context the machine holds is not.
#[test]
fn token_counts_past_the_context_or_memory_are_refused() {
    let m = model().to_str().unwrap();
    for (args, needle) in [
        (
            &["-p", "4000000000", "-n", "1"][..],
            "must be at most 2147483392 (the largest context llama.cpp holds), got 4000000000",
        ),
        (&["-n", "4294967295"], "must be at most 2147483392"),
        (&["-d", "4294967295"], "must be at most 2147483392"),
        (
            &["-p", "2147483392", "-n", "1"],
            "pp2147483392+tg1 needs 2147483393 tokens of context (depth 0 + prompt 2147483392 + generated 1), more than llama.cpp's largest (2147483392)",
        ),
        // SmolLM2-135M's f16 cache is 23,040 bytes a token, about 42 TiB, and one 512-token
        // ubatch's f16 attention mask over it 1,024 bytes a token, about 1.9 TiB.
        (
            &["-p", "2000000000", "-n", "1"],
            "pp2000000000+tg1: the weights, KV cache and attention buffers of a 2000000001-token context (f16/f16) needs at least 44830.39 GiB, more than the",
        ),
        (&["-p", "1", "-n", "1", "-d", "1000000000"], "GiB of memory free on this machine"),
        (&["-p", "8", "-n", "1", "--ctx", "2147483392"], "needs at least 48128.24 GiB"),
    ] {
        let mut a = vec!["-m", m, "-r", "1"];
        a.extend_from_slice(args);
        let e = refused(&a, 2);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    for line in [
        "profile -m MODEL -d 4294967295",
        "profile -m MODEL -n 4294967295",
        "profile -m MODEL -p 4294967295",
    ] {
        let args: Vec<&str> = line
            .split_whitespace()
            .map(|a| if a == "MODEL" { m } else { a })
            .collect();
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{line}: {err}");
        assert_eq!(lines(&err).len(), 1, "{line}: {err}");
        assert!(err.contains("must be at most 2147483392"), "{line}: {err}");
    }
}

#[test]
fn context_too_small_for_the_prompt() {
    let m = model().to_str().unwrap();
    let e = refused(&["-m", m, "-p", "64", "-n", "16", "--ctx", "32"], 2);
    assert!(e.contains("context too small") && e.contains("80"), "{e}");
}

#[test]
fn unknown_subcommand_and_flag() {
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(lines(&stderr(&o)).len(), 1, "{}", stderr(&o));
    let o = run(&["bench", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(lines(&stderr(&o)).len(), 1, "{}", stderr(&o));
}

/// A structurally valid GGUF with one string key and no tensors.
fn gguf_with_architecture(arch: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // tensors
    b.extend_from_slice(&1u64.to_le_bytes()); // metadata keys
    let key = b"general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(&8u32.to_le_bytes()); // string
    b.extend_from_slice(&(arch.len() as u64).to_le_bytes());
    b.extend_from_slice(arch.as_bytes());
    b
}

#[test]
fn valid_gguf_that_llama_cpp_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("odd.gguf");
    std::fs::write(&p, gguf_with_architecture("no-such-arch")).unwrap();
    let p = p.to_str().unwrap();
    // Bad input, as the other refused files: one line, exit 2 (a busy machine's warning aside).
    let quiet = ["--busy-threshold", "1000", "-t", "2"];
    let bench = [&["-m", p, "-p", "8", "-n", "2", "-r", "1"][..], &quiet].concat();
    let e = refused(&bench, 2);
    assert!(
        e.contains("odd.gguf: llama.cpp could not load the model"),
        "{e}"
    );
    assert!(e.contains("no-such-arch"), "says why: {e}");
    let profile = [
        &["profile", "-m", p, "-n", "2", "-d", "8", "-r", "1"][..],
        &quiet,
    ]
    .concat();
    let o = run(&profile);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(lines(&err), [e.as_str()], "the same one line");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

/// Runs runner with `args` and returns its output; fails when it has not finished within a
/// minute, so that a hang fails the test instead of stalling the suite.
fn finishes(args: &[&str]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = runner()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runner starts");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{args:?} did not finish within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Copies the test records into `dir`, each of the sweep's and bench's rates replaced as
/// `edit` decides.
fn records_with(dir: &std::path::Path, edit: impl Fn(&mut serde_json::Value)) {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let sweep = std::fs::read_to_string(data.join("sweep-0ad6ba95c6e9.jsonl")).unwrap();
    let mut out = String::new();
    for line in sweep.lines() {
        let mut r: serde_json::Value = serde_json::from_str(line).unwrap();
        edit(&mut r);
        out.push_str(&format!("{r}\n"));
    }
    std::fs::write(dir.join("sweep-0ad6ba95c6e9.jsonl"), out).unwrap();
    let bench = std::fs::read_to_string(data.join("bench-smollm2.json")).unwrap();
    let mut b: serde_json::Value = serde_json::from_str(&bench).unwrap();
    b.as_array_mut().unwrap().iter_mut().for_each(&edit);
    std::fs::write(dir.join("bench-smollm2.json"), b.to_string()).unwrap();
}

#[test]
fn reports_on_absurd_rates_finish() {
    let rates = |v: f64| {
        move |r: &mut serde_json::Value| {
            if r.get("decode_tps").is_some() {
                r["decode_tps"] = v.into();
            }
            if r.get("results").is_some() {
                r["results"]["gen_tps"]["median"] = v.into();
            }
        }
    };
    for v in [1e308, 1e-320] {
        let dir = tempfile::tempdir().unwrap();
        records_with(dir.path(), rates(v));
        let (results, html) = (dir.path().to_str().unwrap(), dir.path().join("r.html"));
        let o = finishes(&["report", "--results", results, "-o", html.to_str().unwrap()]);
        assert!(o.status.success(), "{v:e}: {}", stderr(&o));
        assert!(std::fs::read_to_string(html).unwrap().contains("</html>"));
    }
    // A published table whose every figure is absurd.
    let dir = tempfile::tempdir().unwrap();
    records_with(dir.path(), |_| {});
    let reference = dir.path().join("reference");
    std::fs::create_dir(&reference).unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let published = std::fs::read_to_string(data.join("reference/published.csv")).unwrap();
    let mut w = csv::Writer::from_path(reference.join("published.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(published.as_bytes());
    w.write_record(rows.headers().unwrap()).unwrap();
    for r in rows.records() {
        let r = r.unwrap();
        let absurd = r.iter().map(|f| match f.parse::<f64>() {
            Ok(_) => "1e308",
            Err(_) => f,
        });
        w.write_record(absurd).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    // It is refused in one line, naming the file, line and figure.
    let html = dir.path().join("r.html");
    let results = dir.path().to_str().unwrap();
    let o = finishes(&["report", "--results", results, "-o", html.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("published.csv: line 2: ") && err.contains("1e308 is more than 1e9"));
}

/// A copy of the real model in `dir` with the u32 value of `key` set to `value`.
fn model_with(dir: &Path, key: &str, value: u32) -> PathBuf {
    let g = GgufFile::open(model()).unwrap();
    let i = g.metadata.iter().position(|(k, _)| k == key).expect(key);
    assert!(
        matches!(g.metadata[i].1, MetaValue::U32(_)),
        "{key} is a u32"
    );
    let at = g.metadata_spans[i].start as usize;
    let mut bytes = std::fs::read(model()).unwrap();
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    let p = dir.join(format!("{key}-{value}.gguf"));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn shapes_llama_cpp_asserts_on() {
    let dir = tempfile::tempdir().unwrap();
    for layers in [100_000, 0] {
        let p = model_with(dir.path(), "llama.block_count", layers);
        let args = [
            "-m",
            p.to_str().unwrap(),
            "-p",
            "8",
            "-n",
            "4",
            "-r",
            "1",
            "-t",
            "2",
        ];
        let e = refused(&args, 2);
        assert!(
            e.contains(&format!(
                "llama.block_count is {layers}; llama.cpp loads 1 to 512"
            )),
            "{e}"
        );
    }
    let out = dir.path().join("x.gguf");
    let cache = dir.path().to_str().unwrap();
    let o = run(&[
        "--cache-dir",
        cache,
        "models",
        "synth",
        "qwen3-30b-a3b",
        "--experts",
        "1025",
        "--layers",
        "1",
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert!(
        err.contains("--experts 1025 is more than llama.cpp supports (1024)"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn input_files_that_are_not_regular_files_are_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let fifo = path("input.toml");
    mkfifo(Path::new(&fifo));
    // A results directory whose records include a FIFO.
    let results = path("results");
    std::fs::create_dir_all(&results).unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/records");
    let records = data
        .join("bench-smollm2.json")
        .to_str()
        .unwrap()
        .to_string();
    std::fs::copy(&records, Path::new(&results).join("bench.json")).unwrap();
    mkfifo(&Path::new(&results).join("more.jsonl"));
    let m = model().to_str().unwrap().to_string();
    let sweep = |flag: &str, file: &str| {
        let out = path("runs");
        [
            "sweep",
            "--no-progress",
            "-m",
            &m,
            "-q",
            "source",
            "--results",
            &out,
            flag,
            file,
        ]
        .map(String::from)
        .to_vec()
    };
    let zero = "/dev/zero".to_string();
    let (md, html) = (path("guide.md"), path("report.html"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (sweep("-s", &fifo), &fifo),
        (sweep("-s", &zero), &zero),
        (sweep("--prices", &fifo), &fifo),
        (sweep("--backend-config", &fifo), &fifo),
        (
            ["check", "--baseline", &fifo, "--current", &records]
                .map(String::from)
                .to_vec(),
            &fifo,
        ),
        (
            ["check", "--baseline", &zero, "--current", &records]
                .map(String::from)
                .to_vec(),
            &zero,
        ),
        (
            ["check", "--baseline", &records, "--current", &fifo]
                .map(String::from)
                .to_vec(),
            &fifo,
        ),
        (
            ["guide", "--results", &results, "-o", &md]
                .map(String::from)
                .to_vec(),
            "more.jsonl",
        ),
        (
            ["report", "--results", &results, "-o", &html]
                .map(String::from)
                .to_vec(),
            "more.jsonl",
        ),
    ];
    for (args, named) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = finishes(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{args:?}: {err}");
        assert!(
            err.contains(named) && err.contains("not a regular file"),
            "{args:?}: {err}"
        );
    }
    assert!(!Path::new(&md).exists() && !Path::new(&html).exists());
}

/// The strings of an encoded string array.
fn strings(raw: &[u8]) -> Vec<Vec<u8>> {
    let n = u64::from_le_bytes(raw[4..12].try_into().unwrap());
    let mut at = 12;
    (0..n)
        .map(|_| {
            let len = u64::from_le_bytes(raw[at..at + 8].try_into().unwrap()) as usize;
            at += 8 + len;
            raw[at - len..at].to_vec()
        })
        .collect()
}

/// Metadata llama.cpp aborts the process on (an assert, or a C++ exception through the FFI)
/// is refused before it loads: one line naming the file and the problem, exit 2, for every
/// command that loads a model.
#[test]
fn metadata_llama_cpp_aborts_on() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().unwrap();
    let f32_entry = |x: f32| (ValueType::F32, x.to_le_bytes().to_vec());
    let rms = "llama.attention.layer_norm_rms_epsilon";
    type Edit = Box<dyn FnOnce(&mut Vec<Entry>)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "eps-negative.gguf",
            Box::new(move |e| {
                let (ty, raw) = f32_entry(-1e-5);
                set(e, rms, ty, raw)
            }),
            "layer_norm_rms_epsilon is -0.00001; llama.cpp's norms need an epsilon of 0 or more",
        ),
        (
            "eps-nan.gguf",
            Box::new(move |e| {
                let (ty, raw) = f32_entry(f32::NAN);
                set(e, rms, ty, raw)
            }),
            "layer_norm_rms_epsilon is NaN",
        ),
        (
            "eps-plain.gguf",
            Box::new(move |e| {
                let (ty, raw) = f32_entry(-1.0);
                set(e, "llama.attention.layer_norm_epsilon", ty, raw)
            }),
            "llama.attention.layer_norm_epsilon is -1;",
        ),
        (
            "align16.gguf",
            Box::new(|e| {
                set(
                    e,
                    "general.alignment",
                    ValueType::U32,
                    16u32.to_le_bytes().into(),
                )
            }),
            "(general.alignment is 16), but llama.cpp maps tensor data only at 32-byte boundaries",
        ),
        (
            "repeated-token.gguf",
            Box::new(|e| {
                let (_, _, raw) = e
                    .iter_mut()
                    .find(|(k, _, _)| k == "tokenizer.ggml.tokens")
                    .unwrap();
                let mut tokens = strings(raw);
                tokens[5] = tokens[4].clone();
                let mut enc = raw[..12].to_vec();
                tokens.iter().for_each(|t| enc.extend(gguf_str(t)));
                *raw = enc;
            }),
            "tokenizer.ggml.tokens holds \"<reponame>\" twice (tokens 4 and 5)",
        ),
        (
            "rope-scaling.gguf",
            Box::new(|e| {
                set(
                    e,
                    "llama.rope.scaling.type",
                    ValueType::Str,
                    gguf_str(b"bogus"),
                )
            }),
            "llama.rope.scaling.type is \"bogus\"; llama.cpp knows none, linear, yarn, longrope",
        ),
        (
            "spm.gguf",
            Box::new(|e| {
                set(
                    e,
                    "tokenizer.ggml.model",
                    ValueType::Str,
                    gguf_str(b"llama"),
                )
            }),
            "tokenizer.ggml.model is \"llama\" (SentencePiece), but the vocabulary has no token \
             for byte 0x00",
        ),
    ];
    let quiet = ["--busy-threshold", "1000", "-t", "2"];
    for (name, edit, needle) in cases {
        let p = model_edited(dir.path(), name, edit);
        let p = p.to_str().unwrap();
        let bench = [&["-m", p, "-p", "8", "-n", "2", "-r", "1"][..], &quiet].concat();
        let e = refused(&bench, 2);
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
        let profile = [
            "profile", "-m", p, "-n", "2", "-p", "4", "-d", "8", "-r", "1",
        ];
        let mut commands = vec![[&profile[..], &quiet].concat()];
        // moe verify reads both headers first; a file that passes them is no MoE.
        if name != "align16.gguf" {
            commands.push(vec!["moe", "verify", p, p, "-n", "2", "-t", "2"]);
        }
        for cmd in commands {
            let o = run(&cmd);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{name} {cmd:?}: {err}");
            assert_eq!(lines(&err).len(), 1, "{name} {cmd:?}: {err}");
            assert!(err.contains(needle), "{name} {cmd:?}: {err}");
        }
    }
    // Read into memory instead of mapped, the 16-byte aligned file runs.
    let p = dir.path().join("align16.gguf");
    let args = ["-p", "8", "-n", "2", "-r", "1", "--mmap", "off"];
    let o = run(&[
        &["bench", "--no-progress", "-m", p.to_str().unwrap()][..],
        &args,
        &quiet,
    ]
    .concat());
    assert!(o.status.success(), "{}", stderr(&o));
}

/// An assert of one architecture's own loader, which runner does not check for, ends runner
/// with one line naming it and exit status 1: no SIGABRT and no backtrace. A bench writes the
/// records of the models before it.
#[test]
fn an_architectures_own_assert_ends_runner_with_one_line() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().unwrap();
    // SmolLM2's tensors under gemma-embedding's name, whose loader asserts that
    // dense_2_feat_in, when given, is the embedding length.
    let p = model_edited(dir.path(), "embedding.gguf", |e| {
        for (k, _, _) in e.iter_mut() {
            if let Some(rest) = k.strip_prefix("llama.") {
                *k = format!("gemma-embedding.{rest}");
            }
        }
        set(
            e,
            "general.architecture",
            ValueType::Str,
            gguf_str(b"gemma-embedding"),
        );
        for (key, n) in [("attention.sliding_window", 512u32), ("dense_2_feat_in", 7)] {
            let key = format!("gemma-embedding.{key}");
            set(e, &key, ValueType::U32, n.to_le_bytes().into());
        }
    });
    let (p, m) = (p.to_str().unwrap(), model().to_str().unwrap());
    let out = dir.path().join("b.jsonl");
    let models = format!("{m},{p}");
    let quiet = ["--busy-threshold", "1000", "-t", "2"];
    let bench = [
        "bench",
        "--no-progress",
        "-m",
        &models,
        "-p",
        "8",
        "-n",
        "2",
        "-r",
        "1",
        "-o",
        out.to_str().unwrap(),
    ];
    let profile = [
        "profile", "-m", p, "-n", "2", "-p", "4", "-d", "8", "-r", "1",
    ];
    for cmd in [&bench[..], &profile[..]] {
        let o = run(&[cmd, &quiet].concat());
        let err = without_probe(&stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{cmd:?}: {err}");
        assert!(
            err.starts_with("error: llama.cpp aborted: gemma-embedding.cpp:")
                && err.contains("dense_2_feat_in must be equal to n_embd"),
            "{cmd:?}: {err}"
        );
    }
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(written.lines().count(), 1, "{written}");
    assert!(written.contains(m), "{written}");
}

#[test]
fn a_directory_flag_that_names_a_file_is_refused_as_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let under = file.join("sub");
    let u = under.to_str().unwrap();
    let m = model().to_str().unwrap();
    let sweep = |results: &str| -> Vec<String> {
        [
            "sweep",
            "--no-progress",
            "-m",
            m,
            "-q",
            "source",
            "--results",
            results,
        ]
        .map(String::from)
        .to_vec()
    };
    let cases: Vec<(Vec<String>, String)> = vec![
        (sweep(f), format!("--results {f}: not a directory")),
        (sweep(u), format!("--results {u}: not a directory")),
        (
            ["--cache-dir", f, "models", "list"]
                .map(String::from)
                .to_vec(),
            format!("--cache-dir {f}: not a directory"),
        ),
        (
            ["check", "--ab", m, m, "--out", f]
                .map(String::from)
                .to_vec(),
            format!("--out {f}: not a directory"),
        ),
        (
            ["guide", "--results", f].map(String::from).to_vec(),
            format!("--results {f}: not a directory"),
        ),
        (
            ["report", "--results", f].map(String::from).to_vec(),
            format!("--results {f}: not a directory"),
        ),
    ];
    for (args, want) in cases {
        let o = runner().args(&args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{args:?}: {err}");
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    // The cache set in the environment is checked as the flag is.
    for args in [
        &["models", "list"][..],
        &["models", "fetch", "smollm2-135m"],
    ] {
        let o = runner()
            .env("RUNNER_CACHE_DIR", f)
            .args(args)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("RUNNER_CACHE_DIR {f}: not a directory")),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

/// Output that cannot be written (a full disk here; a pipe closed early alike) ends runner
/// with one line and exit code 1, not a panic.
#[test]
fn output_that_cannot_be_written_is_one_line_of_error() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full here");
        return;
    }
    for args in [&["models", "list"][..], &["hw", "--chips"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = runner().args(args).stdout(full).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: cannot write the output: No space left on device"),
            "{args:?}: {err}"
        );
    }
}

/// `-o` never writes a table or records over a file the run reads: the model, a scenario,
/// the price table or the backend config (exit 2, the file left as it was).
#[test]
fn an_output_over_a_file_the_run_reads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, name: &str| {
        let to = dir.path().join(name);
        std::fs::copy(from, &to).unwrap();
        to
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let m = copy(model(), "m.gguf");
    let sc = copy(&repo.join("scenarios/short-response.toml"), "s.toml");
    let prices = copy(&repo.join("scenarios/prices.toml"), "p.toml");
    let config = dir.path().join("b.toml");
    std::fs::write(&config, "[openai]\nlocal = true\n").unwrap();
    let results = dir.path().join("results");
    let (m_, s_) = (m.to_str().unwrap(), sc.to_str().unwrap());
    let r_ = results.to_str().unwrap();
    let sweep = |out: &Path| -> Vec<String> {
        [
            "sweep",
            "--no-progress",
            "-q",
            "source",
            "-m",
            m_,
            "-s",
            s_,
            "--limit",
            "1",
            "--results",
            r_,
            "--prices",
            prices.to_str().unwrap(),
            "--backend-config",
            config.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let bench = [
        "bench",
        "--no-progress",
        "-m",
        m_,
        "-p",
        "8",
        "-n",
        "2",
        "-r",
        "1",
        "-o",
        m_,
    ]
    .map(String::from)
    .to_vec();
    let cases = [
        (bench, &m, "is a model (a GGUF file)"),
        (sweep(&m), &m, "is a model (a GGUF file)"),
        (sweep(&sc), &sc, "is a file the sweep reads"),
        (sweep(&prices), &prices, "is a file the sweep reads"),
        (sweep(&config), &config, "is a file the sweep reads"),
    ];
    for (args, input, needle) in cases {
        let before = std::fs::read(input).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(lines(&err).len(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            std::fs::read(input).unwrap() == before,
            "{}",
            input.display()
        );
    }
}
