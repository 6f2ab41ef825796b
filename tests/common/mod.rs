//! Shared helpers of the integration tests: the built binary and the real test model.
#![allow(dead_code)]

use runner::gguf::{GgufFile, GgufWriter, TensorData, ValueType};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The runner binary cargo built for these tests.
pub fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.env_remove("RUST_LOG");
    c
}

/// Runs runner with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    runner().args(args).output().expect("runner starts")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The real SmolLM2-135M model, fetched through `runner models fetch` once per test binary
/// (or taken from $RUNNER_TEST_MODEL).
pub fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        if let Ok(p) = std::env::var("RUNNER_TEST_MODEL") {
            return PathBuf::from(p);
        }
        let o = run(&["models", "fetch", "smollm2-135m"]);
        assert!(
            o.status.success(),
            "fetching the test model failed: {}",
            stderr(&o)
        );
        let path = PathBuf::from(stdout(&o).trim());
        assert!(
            path.is_file(),
            "fetch printed {path:?}, which is not a file"
        );
        path
    })
}

/// Serialises tests that run llama.cpp: two at once on a small machine starve each other.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The non-empty lines of a text.
pub fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// `err` without the lines of runner's one-off memory-bandwidth probe, which the first run on
/// a machine (or every run while the probe finds the machine busy) prints: what is left is the
/// run's own output.
pub fn without_probe(err: &str) -> String {
    let probe = [
        "measuring this machine's memory bandwidth once",
        "warning: the bandwidth measurement is used for this run only",
    ];
    err.lines()
        .filter(|l| !probe.iter().any(|p| l.starts_with(p)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `runner bench -m <test model> --no-progress` followed by the whitespace-separated
/// `args`.
pub fn bench(args: &str) -> Output {
    let m = model().to_str().expect("a UTF-8 path").to_string();
    let mut v = vec!["bench", "-m", m.as_str(), "--no-progress"];
    v.extend(args.split_whitespace());
    run(&v)
}

/// Makes a FIFO at `path` with the system's `mkfifo`.
pub fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.unwrap().success(), "mkfifo {}", path.display());
}

/// Sends runner a SIGINT, as `kill -INT` does (to runner alone, not its children).
pub fn interrupt(child: &std::process::Child) -> bool {
    let sent = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status();
    sent.is_ok_and(|s| s.success())
}

/// Runs the command `command` makes (its stdout dropped) and, as soon as `seen` holds while it
/// runs, sends it `signals` SIGINTs: the output of the first of three tries caught that way,
/// else `None`. A run that ends before `seen` holds is tried again; so is one that ends well
/// after the signal where `done_first` allows it (its work can end as the signal comes).
pub fn interrupted_when(
    mut command: impl FnMut() -> Command,
    seen: impl Fn() -> bool,
    signals: u32,
    done_first: bool,
) -> Option<Output> {
    use std::time::{Duration, Instant};
    for _ in 0..3 {
        let mut cmd = command();
        cmd.stdout(std::process::Stdio::null());
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let start = Instant::now();
        let mut caught = false;
        while start.elapsed() < Duration::from_secs(120) {
            if seen() {
                caught = (0..signals)
                    .map(|_| interrupt(&child))
                    .fold(false, |a, b| a | b);
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !caught {
            let _ = child.kill();
        }
        let o = child.wait_with_output().unwrap();
        if caught && !(done_first && o.status.success()) {
            return Some(o);
        }
    }
    None
}

/// A metadata entry as the GGUF writer copies it: key, type and encoded value.
pub type Entry = (String, ValueType, Vec<u8>);

/// A copy of the real model in `dir`, named `name`, written by runner's GGUF writer with its
/// metadata as `edit` leaves it (the tensors laid out with the `general.alignment` it sets).
pub fn model_edited(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<Entry>)) -> PathBuf {
    file_edited(model(), dir, name, edit)
}

/// [`model_edited`] of the GGUF file at `source`.
pub fn file_edited(
    source: &Path,
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<Entry>),
) -> PathBuf {
    let g = GgufFile::open(source).unwrap();
    let mut src = std::fs::File::open(source).unwrap();
    let mut entries: Vec<Entry> = (g.metadata.iter().enumerate())
        .map(|(i, (k, v))| {
            let raw = g.raw_value(&mut src, i).unwrap().unwrap();
            (k.clone(), v.value_type(), raw)
        })
        .collect();
    edit(&mut entries);
    let mut w = GgufWriter::new();
    for (k, ty, raw) in entries {
        w.set_raw(&k, ty, raw).unwrap();
    }
    for t in &g.tensors {
        let data = TensorData::Source {
            offset: g.data_offset + t.offset,
            len: t.n_bytes,
            repeat: 1,
        };
        w.add_tensor(&t.name, &t.dims, t.ggml_type, data).unwrap();
    }
    let p = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    w.write_to(&mut out, Some(&mut src)).unwrap();
    out.flush().unwrap();
    p
}

/// Sets `key` (present or not) to the encoded `raw` of type `ty`.
pub fn set(entries: &mut Vec<Entry>, key: &str, ty: ValueType, raw: Vec<u8>) {
    entries.retain(|(k, _, _)| k != key);
    entries.push((key.to_string(), ty, raw));
}

/// The encoding of a GGUF string.
pub fn gguf_str(s: &[u8]) -> Vec<u8> {
    [&(s.len() as u64).to_le_bytes()[..], s].concat()
}

pub mod fixture;
