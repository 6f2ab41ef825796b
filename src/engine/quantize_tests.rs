//! Tests of quantizing into the cache: cache paths, the source-hash memo, cleanup of partial
//! files and a real quantization of the test model ($RUNNER_TEST_MODEL).

use super::*;
use crate::engine::quant;
use std::sync::{Mutex, MutexGuard};

const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn backend() -> &'static LlamaBackend {
    crate::engine::test_backend()
}

/// Quantizing tests take turns: they share llama.cpp's log and time their runs.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn leftovers(cache: &Path) -> Vec<String> {
    fs::read_dir(quant_dir(cache))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".partial-") || n.contains(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn slugs_keep_only_safe_characters() {
    assert_eq!(
        slug("llama-cpp-2 0.1.160 / llama-cpp-sys-2 0.1.161"),
        "llama-cpp-2-0.1.160-llama-cpp-sys-2-0.1.161"
    );
    assert_eq!(slug("  A_B//c "), "a-b-c");
    let s = build_slug();
    assert!(!s.is_empty());
    assert!(s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'));
}

#[test]
fn cache_path_is_stable_and_differs_per_type_and_source() {
    let cache = Path::new("/cache");
    let q4 = quant::parse("q4_0").unwrap();
    let q8 = quant::parse("q8_0").unwrap();
    let p = cache_path(cache, SMOLLM2_SHA256, q4);
    assert_eq!(p, cache_path(cache, SMOLLM2_SHA256, q4));
    assert_eq!(
        p,
        Path::new("/cache/quant").join(format!("b179c9523d0e6a0f-q4_0-{}.gguf", build_slug()))
    );
    assert_eq!(p, cache_path(cache, &SMOLLM2_SHA256.to_uppercase(), q4));
    assert_ne!(p, cache_path(cache, SMOLLM2_SHA256, q8));
    let other = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
    assert_ne!(p, cache_path(cache, other, q4));
}

#[test]
fn source_hashes_are_memoised_by_size_and_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let file = dir.path().join("model.gguf");
    fs::write(&file, b"abc").unwrap();
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(source_sha256(&file, &cache).unwrap(), abc);
    let memo = read_hashes(&hashes_path(&cache));
    let key = fs::canonicalize(&file)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(memo[&key].sha256, abc);
    assert_eq!(memo[&key].size, 3);
    // Another size: hashed again and the memo updated.
    fs::write(&file, b"abcd").unwrap();
    let abcd = "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589";
    assert_eq!(source_sha256(&file, &cache).unwrap(), abcd);
    assert_eq!(read_hashes(&hashes_path(&cache))[&key].sha256, abcd);
    assert!(leftovers(&cache).is_empty());
    // A damaged memo is ignored and rewritten.
    fs::write(hashes_path(&cache), b"{not json").unwrap();
    assert_eq!(source_sha256(&file, &cache).unwrap(), abcd);
    assert_eq!(read_hashes(&hashes_path(&cache))[&key].sha256, abcd);
    // A missing file is a one-line error naming it.
    let err = source_sha256(&dir.path().join("nope.gguf"), &cache).unwrap_err();
    assert!(err.to_string().contains("nope.gguf"), "{err}");
}

#[test]
fn source_sha256_of_the_real_model_is_served_from_the_memo() {
    let model = crate::util::test_model();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(source_sha256(&model, dir.path()).unwrap(), SMOLLM2_SHA256);
    let memo_path = hashes_path(dir.path());
    let mut memo = read_hashes(&memo_path);
    let key = fs::canonicalize(&model)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(memo[&key].sha256, SMOLLM2_SHA256);
    // Plant another hash under the same size and mtime: the next call must return it,
    // which proves the file was not read again.
    memo.get_mut(&key).unwrap().sha256 = "0".repeat(64);
    write_hashes(&memo_path, &memo).unwrap();
    assert_eq!(source_sha256(&model, dir.path()).unwrap(), "0".repeat(64));
}

#[test]
fn quantizes_the_real_model_and_serves_the_cache() {
    let model = crate::util::test_model();
    let backend = backend();
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    for name in ["q8_0", "q4_0"] {
        let qt = quant::parse(name).unwrap();
        let q = quantize_cached(backend, &model, SMOLLM2_SHA256, qt, cache, 2)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!q.cached, "{name}");
        assert!(q.requantized, "{name}: the source is Q4_1");
        assert!(q.elapsed > Duration::ZERO, "{name}");
        assert_eq!(q.path, cache_path(cache, SMOLLM2_SHA256, qt));
        let g = GgufFile::open(&q.path).unwrap();
        assert_eq!(g.file_type(), Some(u64::from(qt.ftype)), "{name}");
        assert_eq!(g.architecture(), Some("llama"));
        assert_eq!(
            g.tensors.len(),
            GgufFile::open(&model).unwrap().tensors.len()
        );

        let again = quantize_cached(backend, &model, SMOLLM2_SHA256, qt, cache, 2).unwrap();
        assert!(again.cached, "{name}");
        assert_eq!(again.path, q.path);
        assert_eq!(again.elapsed, Duration::ZERO);
        assert!(again.requantized);
    }
    assert!(leftovers(cache).is_empty(), "{:?}", leftovers(cache));
    // llama.cpp loads what it wrote.
    let q4 = cache_path(cache, SMOLLM2_SHA256, quant::parse("q4_0").unwrap());
    let opts = crate::engine::LoadOptions {
        n_gpu_layers: 0,
        use_mmap: true,
    };
    let loaded = crate::engine::Model::load(backend, &q4, opts).unwrap();
    assert_eq!(loaded.info.file_type.as_deref(), Some("Q4_0"));
    assert!(
        loaded.info.description.contains("Q4_0"),
        "{}",
        loaded.info.description
    );
    drop(loaded);
    // Q8_0 keeps more bits than Q4_0.
    let size = |n: &str| {
        let p = cache_path(cache, SMOLLM2_SHA256, quant::parse(n).unwrap());
        fs::metadata(p).unwrap().len()
    };
    assert!(size("q8_0") > size("q4_0"));
}

#[test]
fn a_damaged_cache_file_is_replaced() {
    let model = crate::util::test_model();
    let backend = backend();
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let qt = quant::parse("q8_0").unwrap();
    let path = cache_path(dir.path(), SMOLLM2_SHA256, qt);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"GGUF but not really").unwrap();
    let q = quantize_cached(backend, &model, SMOLLM2_SHA256, qt, dir.path(), 2).unwrap();
    assert!(!q.cached);
    assert_eq!(q.path, path);
    assert!(GgufFile::open(&path).is_ok());
}

#[test]
fn a_truncated_source_is_a_clean_error() {
    let model = crate::util::test_model();
    let backend = backend();
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(&model).unwrap();
    let src = dir.path().join("truncated.gguf");
    fs::write(&src, &bytes[..bytes.len() / 2]).unwrap();
    let cache = dir.path().join("cache");
    let qt = quant::parse("q8_0").unwrap();
    let err = quantize_cached(backend, &src, SMOLLM2_SHA256, qt, &cache, 2).unwrap_err();
    assert!(matches!(err, QuantizeError::Source(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("truncated.gguf") && msg.contains("truncated"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    assert!(leftovers(&cache).is_empty());
    assert!(!cache_path(&cache, SMOLLM2_SHA256, qt).exists());
}

#[test]
fn a_source_hash_that_is_not_a_sha256_is_refused() {
    let model = crate::util::test_model();
    let backend = backend();
    let dir = tempfile::tempdir().unwrap();
    let qt = quant::parse("q8_0").unwrap();
    for bad in ["", "b179c9523d0e6a0f", &SMOLLM2_SHA256.replace('b', "x")] {
        let err = quantize_cached(backend, &model, bad, qt, dir.path(), 2).unwrap_err();
        assert!(matches!(err, QuantizeError::BadSha256 { .. }), "{err}");
    }
    assert!(!quant_dir(dir.path()).exists());
}

/// Partial files in the cache's quantized and synthetic models: those of a process that has
/// ended, or untouched for a day, go; a live process's fresh one, another host's fresh one,
/// this process's own and finished models stay.
#[test]
fn stale_partials_of_quantized_and_synthetic_models_are_removed() {
    let cache = tempfile::tempdir().unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let parent = std::os::unix::process::parent_id();
    let two_days = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let dirs = [
        quant_dir(cache.path()),
        crate::engine::synth::cache_dir(cache.path()),
    ];
    for dir in dirs {
        fs::create_dir_all(&dir).unwrap();
        let file = |name: String| {
            let p = dir.join(name);
            fs::write(&p, "half").unwrap();
            p
        };
        let aged = |p: &Path| {
            let f = fs::File::options().write(true).open(p).unwrap();
            f.set_modified(two_days).unwrap();
        };
        let dead = file(format!("a.gguf.partial-{}", gone.id()));
        let live = file(format!("b.gguf.partial-{parent}"));
        let old = file(format!("c.gguf.partial-{parent}"));
        aged(&old);
        let own = file(format!("d.gguf.partial-{}", std::process::id()));
        aged(&own);
        // Another host's (a container sharing the cache): its id says nothing here.
        let elsewhere = file(format!("f.gguf.partial-{}@elsewhere", gone.id()));
        let elsewhere_old = file(format!("g.gguf.partial-{}@elsewhere", gone.id()));
        aged(&elsewhere_old);
        let here = format!(
            "h.gguf.partial-{}@{}",
            gone.id(),
            crate::util::interrupt::host()
        );
        let here = file(here);
        let model = file("e.gguf".into());
        aged(&model);
        remove_stale_partials(cache.path());
        let name = dir.display();
        assert!(!dead.exists(), "{name}: a partial of an ended process");
        assert!(!old.exists(), "{name}: a partial untouched for two days");
        assert!(live.exists(), "{name}: a live process's fresh partial");
        assert!(own.exists(), "{name}: this process's partial");
        assert!(model.exists(), "{name}: a finished model");
        assert!(elsewhere.exists(), "{name}: another host's fresh partial");
        assert!(
            !elsewhere_old.exists(),
            "{name}: another host's, untouched for two days"
        );
        assert!(!here.exists(), "{name}: this host's, of an ended process");
    }
}

#[test]
fn a_failed_quantize_leaves_no_partial_file() {
    let model = crate::util::test_model();
    let backend = backend();
    let _turn = serial();
    // A structurally valid file whose last tensor holds NaNs: llama.cpp opens its output,
    // then refuses the tensor's data midway.
    let dir = tempfile::tempdir().unwrap();
    let g = GgufFile::open(&model).unwrap();
    let last = g.tensors.iter().max_by_key(|t| t.offset).unwrap();
    let mut bytes = fs::read(&model).unwrap();
    let start = usize::try_from(g.data_offset + last.offset).unwrap();
    let end = start + usize::try_from(last.n_bytes).unwrap();
    bytes[start..end].fill(0xFF);
    let src = dir.path().join("nan.gguf");
    fs::write(&src, &bytes).unwrap();
    drop(bytes);
    let cache = dir.path().join("cache");
    let qt = quant::parse("q8_0").unwrap();
    let sha = "feed".repeat(16);
    let err = quantize_cached(backend, &src, &sha, qt, &cache, 2).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, QuantizeError::Failed { .. }), "{msg}");
    assert!(msg.contains("nan.gguf") && msg.contains("q8_0"), "{msg}");
    assert!(msg.contains(&last.name), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(leftovers(&cache).is_empty(), "{:?}", leftovers(&cache));
    assert!(!cache_path(&cache, &sha, qt).exists());
}
