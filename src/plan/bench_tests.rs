//! The bench plan: its cartesian product, context sizes, inputs.

use super::*;
use crate::engine::{FlashAttn, KvType};

fn config(
    models: usize,
    n_prompt: &[u32],
    n_gen: &[u32],
    n_depth: &[u32],
    threads: &[u32],
) -> (BenchConfig, usize) {
    let contexts = threads
        .iter()
        .map(|&t| ContextSettings {
            n_ctx: 0,
            n_batch: 2048,
            n_ubatch: 512,
            threads: t,
            threads_batch: t,
            flash_attn: FlashAttn::Auto,
            type_k: KvType::F16,
            type_v: KvType::F16,
        })
        .collect();
    let cfg = BenchConfig {
        models: (0..models).map(|i| format!("m{i}.gguf")).collect(),
        n_prompt: n_prompt.to_vec(),
        n_gen: n_gen.to_vec(),
        n_depth: n_depth.to_vec(),
        repetitions: 5,
        warmup: true,
        contexts,
        n_gpu_layers: 0,
        use_mmap: true,
        require_idle: false,
        busy_threshold: 0.25,
        sha256: false,
    };
    (cfg, models)
}

#[test]
fn expands_a_product_with_models_outermost() {
    let (cfg, n) = config(2, &[0, 64], &[0, 16], &[0], &[1, 2]);
    let plan = expand(&cfg, n);
    // 2 models x 2 thread counts x 3 workloads (pp0+tg0 is dropped)
    assert_eq!(plan.len(), 12);
    assert!(plan[..6].iter().all(|i| i.model == 0));
    assert!(plan[6..].iter().all(|i| i.model == 1));
    let names: Vec<&str> = plan[..3].iter().map(|i| i.test.name.as_str()).collect();
    assert_eq!(names, ["tg16", "pp64", "pp64+tg16"]);
}

#[test]
fn context_defaults_to_what_the_test_needs() {
    let (cfg, n) = config(1, &[32], &[16], &[8], &[2]);
    assert_eq!(expand(&cfg, n)[0].settings.n_ctx, 56);
    let (cfg, n) = config(1, &[0], &[16], &[0], &[2]);
    let plan = expand(&cfg, n);
    assert_eq!(plan[0].settings.n_ctx, 17);
    assert!(check(&plan).is_ok());
}

#[test]
fn a_context_too_small_is_refused_up_front() {
    let (mut cfg, n) = config(1, &[512], &[128], &[0], &[2]);
    cfg.contexts[0].n_ctx = 256;
    let e = check(&expand(&cfg, n)).unwrap_err();
    assert!(e.contains("context too small") && e.contains("640"), "{e}");
}

#[test]
fn inputs_are_deterministic_and_in_range() {
    let t = TestSpec {
        name: "pp64+tg4@d16".into(),
        n_prompt: 64,
        n_gen: 4,
        n_depth: 16,
        repetitions: 1,
        warmup: false,
    };
    let a = Inputs::new(&t, 1000);
    assert_eq!(a, Inputs::new(&t, 1000));
    assert_eq!((a.depth.len(), a.prompt.len()), (16, 64));
    assert!(a
        .prompt
        .iter()
        .chain(&a.depth)
        .all(|&x| (0..1000).contains(&x)));
    let tg = Inputs::new(&TestSpec { n_prompt: 0, ..t }, 1000);
    assert!(
        tg.prompt.is_empty(),
        "a generation-only test starts from BOS"
    );
}

/// A GGUF header with SmolLM2-135M's attention shape (30 layers, 3 KV heads of 64).
fn smollm2_shape() -> GgufFile {
    use crate::gguf::{GgmlType, GgufWriter, MetaValue, TensorData};
    let mut w = GgufWriter::new();
    for (k, v) in [
        ("general.architecture", MetaValue::Str("llama".into())),
        ("llama.block_count", MetaValue::U32(30)),
        ("llama.embedding_length", MetaValue::U32(576)),
        ("llama.attention.head_count", MetaValue::U32(9)),
        ("llama.attention.head_count_kv", MetaValue::U32(3)),
    ] {
        w.set(k, &v).unwrap();
    }
    let data = TensorData::Bytes(vec![0; 16]);
    w.add_tensor("x", &[4], GgmlType::F32, data).unwrap();
    let mut bytes = Vec::new();
    w.write_to(&mut bytes, None).unwrap();
    let n = bytes.len() as u64;
    GgufFile::from_reader(std::io::Cursor::new(bytes), n, Path::new("m.gguf"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_test_that_cannot_fit_in_memory_is_refused_and_a_long_one_that_fits_is_not() {
    let models = [("m".to_string(), smollm2_shape())];
    let gib = 1u64 << 30;
    // 32,896 tokens of f16 cache (23,040 bytes a token, 0.71 GiB) its f16 attention mask and the
    // process.
    let (cfg, n) = config(1, &[32768], &[128], &[0], &[1]);
    assert_eq!(check_memory(&expand(&cfg, n), &models, gib), Ok(()));
    let e = check_memory(&expand(&cfg, n), &models, gib / 2).unwrap_err();
    assert!(e.starts_with("m pp32768+tg128: the weights, KV cache and attention buffers of a 32896-token context (f16/f16) needs at least 0.80 GiB, more than the 0.50 GiB"), "{e}");
    let (cfg, n) = config(1, &[2_000_000_000], &[1], &[0], &[1]);
    assert!(check_memory(&expand(&cfg, n), &models, 1 << 40).is_err());
    assert!(
        check(&expand(&config(1, &[MAX_CTX], &[1], &[0], &[1]).0, 1))
            .unwrap_err()
            .contains("more than llama.cpp's largest")
    );
}
