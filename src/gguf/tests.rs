//! Unit tests for the GGUF reader: a synthetic file built in memory, corrupted in many ways.

use std::io::Cursor;
use std::path::Path;

use super::types::ARRAY_HEAD_LEN;
use super::*;

/// Byte positions inside a synthetic file, for targeted corruption.
struct Layout {
    /// Position of the first key's u64 length.
    first_key_len: usize,
    /// Per tensor: positions of n_dims, the type id and the offset.
    n_dims_at: Vec<usize>,
    type_at: Vec<usize>,
    offset_at: Vec<usize>,
    /// End of the tensor-info table, and the start of the data section.
    infos_end: usize,
    data_offset: usize,
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_u64(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

fn key(b: &mut Vec<u8>, k: &str, type_id: u32) {
    put_str(b, k);
    put_u32(b, type_id);
}

/// (name, dims, ggml type id, n_bytes) of the synthetic tensors.
const TENSORS: [(&str, &[u64], u32, u64); 3] = [
    ("token_embd.weight", &[64, 4], 8, 2 * 34 * 4), // q8_0: 272 bytes
    ("blk.0.attn_norm.weight", &[64], 0, 64 * 4),   // f32: 256 bytes
    ("output.weight", &[256, 2], 12, 144 * 2),      // q4_K: 288 bytes
];
const N_PARAMS: u64 = 256 + 64 + 512;
const TENSOR_BYTES: u64 = 272 + 256 + 288;
const N_TOKENS: usize = 20;

fn put_metadata(b: &mut Vec<u8>, alignment: Option<u32>) {
    key(b, "general.architecture", 8);
    put_str(b, "llama");
    key(b, "general.name", 8);
    put_str(b, "synthetic");
    if let Some(a) = alignment {
        key(b, "general.alignment", 4);
        put_u32(b, a);
    }
    key(b, "llama.context_length", 4);
    put_u32(b, 2048);
    key(b, "llama.block_count", 10);
    put_u64(b, 1);
    key(b, "llama.rope.freq_base", 6);
    b.extend_from_slice(&10000.0f32.to_le_bytes());
    key(b, "general.file_type", 5);
    b.extend_from_slice(&7i32.to_le_bytes());
    key(b, "test.negative", 11);
    b.extend_from_slice(&(-5i64).to_le_bytes());
    key(b, "test.flag", 7);
    b.push(1);
    key(b, "test.f64", 12);
    b.extend_from_slice(&0.5f64.to_le_bytes());
    key(b, "tokenizer.ggml.scores", 9);
    put_u32(b, 6);
    put_u64(b, N_TOKENS as u64);
    for i in 0..N_TOKENS {
        b.extend_from_slice(&(i as f32).to_le_bytes());
    }
    key(b, "tokenizer.ggml.tokens", 9);
    put_u32(b, 8);
    put_u64(b, N_TOKENS as u64);
    for i in 0..N_TOKENS {
        put_str(b, &format!("tok{i}"));
    }
}

const N_KV: u64 = 12;

/// Builds a valid GGUF v3 image. `alignment` None: no general.alignment key (default 32).
fn build(alignment: Option<u32>) -> (Vec<u8>, Layout) {
    let align = alignment.map_or(32, |a| a as usize);
    let mut b = b"GGUF".to_vec();
    put_u32(&mut b, 3);
    put_u64(&mut b, TENSORS.len() as u64);
    put_u64(&mut b, N_KV - u64::from(alignment.is_none()));
    let first_key_len = b.len();
    put_metadata(&mut b, alignment);
    let (mut n_dims_at, mut type_at, mut offset_at) = (vec![], vec![], vec![]);
    let mut offset = 0u64;
    for (name, dims, type_id, n_bytes) in TENSORS {
        put_str(&mut b, name);
        n_dims_at.push(b.len());
        put_u32(&mut b, dims.len() as u32);
        dims.iter().for_each(|&d| put_u64(&mut b, d));
        type_at.push(b.len());
        put_u32(&mut b, type_id);
        offset_at.push(b.len());
        put_u64(&mut b, offset);
        offset += n_bytes.div_ceil(align as u64) * align as u64;
    }
    let infos_end = b.len();
    b.resize(infos_end.div_ceil(align) * align, 0);
    let data_offset = b.len();
    for (i, (_, _, _, n_bytes)) in TENSORS.iter().enumerate() {
        b.resize(b.len().div_ceil(align) * align, 0);
        b.extend((0..*n_bytes).map(|j| (i as u64 * 31 + j) as u8));
    }
    let layout = Layout {
        first_key_len,
        n_dims_at,
        type_at,
        offset_at,
        infos_end,
        data_offset,
    };
    (b, layout)
}

fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    GgufFile::from_reader(Cursor::new(bytes), bytes.len() as u64, Path::new("t.gguf"))
}

fn patch_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn patch_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn invalid_reason(r: Result<GgufFile, GgufError>) -> String {
    match r {
        Err(GgufError::Invalid { reason, .. }) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn parses_valid_file() {
    for alignment in [None, Some(32), Some(64)] {
        let (bytes, layout) = build(alignment);
        let f = parse(&bytes).expect("valid file parses");
        assert_eq!(f.version, 3);
        assert_eq!(f.file_size, bytes.len() as u64);
        assert_eq!(f.alignment, u64::from(alignment.unwrap_or(32)));
        assert_eq!(f.data_offset, layout.data_offset as u64);
        assert_eq!(f.data_end, bytes.len() as u64);
        assert_eq!(f.data_offset % f.alignment, 0);
        assert_eq!(
            f.metadata.len() as u64,
            N_KV - u64::from(alignment.is_none())
        );
        assert_eq!(f.metadata[0].0, "general.architecture");
        assert_eq!(f.architecture(), Some("llama"));
        assert_eq!(f.get_str("general.name"), Some("synthetic"));
        assert_eq!(f.arch_u64("context_length"), Some(2048));
        assert_eq!(f.arch_u64("block_count"), Some(1));
        assert_eq!(f.arch_u64("expert_count"), None);
        assert_eq!(f.file_type(), Some(7));
        assert_eq!(file_type_name(7), Some("Q8_0"));
        assert_eq!(f.get_u64("test.negative"), None);
        assert_eq!(f.get("test.flag"), Some(&MetaValue::Bool(true)));
        assert_eq!(f.get("test.f64"), Some(&MetaValue::F64(0.5)));
        assert_eq!(
            f.get("llama.rope.freq_base"),
            Some(&MetaValue::F32(10000.0))
        );
        assert_eq!(f.n_params(), N_PARAMS);
        assert_eq!(f.tensor_bytes(), TENSOR_BYTES);
        let bpw = TENSOR_BYTES as f64 * 8.0 / N_PARAMS as f64;
        assert!((f.bits_per_weight() - bpw).abs() < 1e-12);
    }
}

#[test]
fn tensor_table_and_arrays() {
    let (bytes, _) = build(Some(32));
    let f = parse(&bytes).unwrap();
    let names: Vec<&str> = f.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "token_embd.weight",
            "blk.0.attn_norm.weight",
            "output.weight"
        ]
    );
    let types: Vec<&str> = f.tensors.iter().map(|t| t.ggml_type.as_str()).collect();
    assert_eq!(types, ["q8_0", "f32", "q4_K"]);
    let offsets: Vec<u64> = f.tensors.iter().map(|t| t.offset).collect();
    assert_eq!(offsets, [0, 288, 544]);
    assert_eq!(f.tensor("output.weight").unwrap().dims, [256, 2]);
    assert_eq!(f.tensor("output.weight").unwrap().n_elements(), 512);
    let Some(MetaValue::Array(tokens)) = f.get("tokenizer.ggml.tokens") else {
        panic!("tokens array missing");
    };
    assert_eq!(tokens.elem_type, ValueType::Str);
    assert_eq!(tokens.len, N_TOKENS as u64);
    assert_eq!(tokens.head.len(), ARRAY_HEAD_LEN);
    assert_eq!(tokens.head[3], MetaValue::Str("tok3".into()));
    let Some(MetaValue::Array(scores)) = f.get("tokenizer.ggml.scores") else {
        panic!("scores array missing");
    };
    assert_eq!(scores.elem_type, ValueType::F32);
    assert_eq!(scores.head[2], MetaValue::F32(2.0));
    // Numbers are held whole up to a value per layer of the largest model.
    assert_eq!(scores.head.len(), N_TOKENS);
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["tensors"][2]["ggml_type"], "q4_K");
    assert_eq!(json["metadata"][0][1], "llama");
}

#[test]
fn every_truncation_is_an_error_of_the_right_kind() {
    let (bytes, layout) = build(Some(32));
    for cut in 0..bytes.len() {
        let err = parse(&bytes[..cut]).expect_err("truncated file must fail");
        let msg = err.to_string();
        assert!(!msg.contains('\n') && msg.starts_with("t.gguf: "), "{msg}");
        if cut < layout.infos_end {
            assert!(
                matches!(err, GgufError::Truncated { offset, .. } if offset == cut as u64),
                "cut {cut}: {err}"
            );
        } else {
            assert!(
                matches!(err, GgufError::TensorDataOutOfBounds { file_size, .. } if file_size == cut as u64),
                "cut {cut}: {err}"
            );
        }
    }
    let err = parse(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
    let want = format!(
        "t.gguf: truncated: tensor 'output.weight' data ends at byte {} but the file has {} bytes",
        bytes.len(),
        bytes.len() - 1
    );
    assert_eq!(err, want);
}

#[test]
fn truncated_files_on_disk() {
    let (bytes, layout) = build(None);
    let dir = tempfile::tempdir().unwrap();
    let cuts = [0, 3, 10, 30, layout.infos_end - 1, layout.data_offset + 1];
    for cut in cuts.into_iter().chain([bytes.len() - 1, bytes.len() - 300]) {
        let path = dir.path().join(format!("cut{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = GgufFile::open(&path).unwrap_err();
        assert!(err.to_string().starts_with(&path.display().to_string()));
        let header = cut < layout.infos_end;
        assert_eq!(matches!(err, GgufError::Truncated { .. }), header, "{err}");
        assert_eq!(
            matches!(err, GgufError::TensorDataOutOfBounds { .. }),
            !header
        );
    }
    let path = dir.path().join("whole.gguf");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(GgufFile::open(&path).unwrap().n_params(), N_PARAMS);
}

#[test]
fn bad_magic_and_versions() {
    let (mut bytes, _) = build(None);
    bytes[..4].copy_from_slice(b"Not ");
    let err = parse(&bytes).unwrap_err();
    assert!(matches!(err, GgufError::BadMagic { .. }));
    assert_eq!(
        err.to_string(),
        "t.gguf: not a GGUF file (magic is 4e 6f 74 20, expected 'GGUF')"
    );
    bytes[..4].copy_from_slice(b"GGUF");
    for (version, ok) in [(0, false), (1, false), (2, true), (3, true), (4, false)] {
        patch_u32(&mut bytes, 4, version);
        let r = parse(&bytes);
        assert_eq!(r.is_ok(), ok, "version {version}");
        if !ok {
            assert!(
                matches!(r, Err(GgufError::UnsupportedVersion { version: v, .. }) if v == version)
            );
        }
    }
    patch_u32(&mut bytes, 4, 1);
    let msg = parse(&bytes).unwrap_err().to_string();
    assert!(
        msg.starts_with("t.gguf: GGUF version 1 is not supported"),
        "{msg}"
    );
    patch_u32(&mut bytes, 4, 3u32.swap_bytes());
    let msg = parse(&bytes).unwrap_err().to_string();
    assert!(msg.contains("big-endian"), "{msg}");
}

#[test]
fn huge_lengths_and_counts_do_not_allocate() {
    let (mut bytes, layout) = build(None);
    patch_u64(&mut bytes, layout.first_key_len, 1_000_000_000_000_000_000);
    let reason = invalid_reason(parse(&bytes));
    assert!(reason.contains("larger than the whole file"), "{reason}");
    let (mut bytes, _) = build(None);
    patch_u64(&mut bytes, 8, u64::MAX);
    assert!(invalid_reason(parse(&bytes)).contains("tensors"));
    let (mut bytes, _) = build(None);
    patch_u64(&mut bytes, 16, 1 << 40);
    assert!(invalid_reason(parse(&bytes)).contains("metadata entries"));
    // The tokens array length: find it after its key and element type.
    let (mut bytes, _) = build(None);
    let needle = b"tokenizer.ggml.tokens";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    patch_u64(&mut bytes, at + needle.len() + 8, u64::MAX / 4);
    assert!(invalid_reason(parse(&bytes)).contains("too many"));
}

#[test]
fn bad_tensor_infos() {
    let (mut bytes, layout) = build(None);
    patch_u32(&mut bytes, layout.n_dims_at[0], 5);
    assert!(invalid_reason(parse(&bytes)).contains("5 dimensions"));
    patch_u32(&mut bytes, layout.n_dims_at[0], 0);
    assert!(invalid_reason(parse(&bytes)).contains("0 dimensions"));

    for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
        let (mut bytes, layout) = build(None);
        patch_u32(&mut bytes, layout.type_at[1], id);
        let err = parse(&bytes).unwrap_err();
        assert!(
            matches!(&err, GgufError::UnknownTensorType { type_id, tensor, .. }
                if *type_id == id && tensor == "blk.0.attn_norm.weight"),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("type id {id}")));
    }

    let (mut bytes, layout) = build(None);
    patch_u64(&mut bytes, layout.offset_at[1], 288 + 4);
    assert!(invalid_reason(parse(&bytes)).contains("not a multiple of the alignment"));
    patch_u64(&mut bytes, layout.offset_at[1], 320);
    assert!(invalid_reason(parse(&bytes)).contains("packed"));

    // Row length 64 is not a multiple of the q4_K block (256).
    let (mut bytes, layout) = build(None);
    patch_u32(&mut bytes, layout.type_at[0], 12);
    assert!(invalid_reason(parse(&bytes)).contains("block size"));

    // A zero dimension, and an element count that overflows.
    let (mut bytes, layout) = build(None);
    patch_u64(&mut bytes, layout.n_dims_at[0] + 4 + 8, 0);
    assert!(invalid_reason(parse(&bytes)).contains("zero dimension"));
    patch_u64(&mut bytes, layout.n_dims_at[0] + 4 + 8, 1 << 62);
    assert!(invalid_reason(parse(&bytes)).contains("overflows"));
}

#[test]
fn bad_metadata() {
    // Unknown value type on the first key.
    let (mut bytes, layout) = build(None);
    let type_at = layout.first_key_len + 8 + "general.architecture".len();
    patch_u32(&mut bytes, type_at, 13);
    assert!(invalid_reason(parse(&bytes)).contains("unknown value type 13"));
    // Duplicate key: rename general.file_type to llama.block_count (same length).
    let (mut bytes, _) = build(None);
    let at = bytes
        .windows(17)
        .position(|w| w == b"general.file_type")
        .unwrap();
    bytes[at..at + 17].copy_from_slice(b"llama.block_count");
    let reason = invalid_reason(parse(&bytes));
    assert!(
        reason.contains("duplicate metadata key 'llama.block_count'"),
        "{reason}"
    );
    // Invalid UTF-8 in a key.
    let (mut bytes, layout) = build(None);
    bytes[layout.first_key_len + 8] = 0xff;
    assert!(invalid_reason(parse(&bytes)).contains("UTF-8"));
    // general.alignment that is not a power of two.
    let (mut bytes, _) = build(Some(32));
    let at = bytes
        .windows(17)
        .position(|w| w == b"general.alignment")
        .unwrap();
    patch_u32(&mut bytes, at + 17 + 4, 48);
    assert!(invalid_reason(parse(&bytes)).contains("power of 2"));
}

#[test]
fn no_tensors_and_empty_file() {
    let mut b = b"GGUF".to_vec();
    put_u32(&mut b, 2);
    put_u64(&mut b, 0);
    put_u64(&mut b, 1);
    key(&mut b, "general.architecture", 8);
    put_str(&mut b, "llama");
    let f = parse(&b).unwrap();
    assert_eq!((f.version, f.n_params(), f.bits_per_weight()), (2, 0, 0.0));
    assert_eq!(f.data_end, b.len() as u64);
    assert!(matches!(
        parse(&[]),
        Err(GgufError::Truncated { offset: 0, .. })
    ));
}

#[test]
fn paths_that_are_not_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = GgufFile::open(dir.path()).unwrap_err();
    assert!(matches!(err, GgufError::IsDirectory { .. }));
    assert_eq!(
        err.to_string(),
        format!("{}: is a directory", dir.path().display())
    );
    let missing = dir.path().join("missing.gguf");
    let err = GgufFile::open(&missing).unwrap_err();
    assert!(matches!(err, GgufError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!("{}: no such file", missing.display())
    );
}

#[test]
fn type_tables() {
    for (i, &t) in GgmlType::ALL.iter().enumerate() {
        assert_eq!(t as usize, i, "table order");
        assert_eq!(GgmlType::from_id(t.id()), Some(t));
        assert!(t.block_size() >= 1 && t.type_size() >= 1);
    }
    assert_eq!(GgmlType::ALL.len(), 35);
    let bpw = |id| GgmlType::from_id(id).unwrap().bits_per_weight();
    assert_eq!(bpw(0), 32.0);
    assert_eq!(bpw(2), 4.5); // q4_0
    assert_eq!(bpw(3), 5.0); // q4_1
    assert_eq!(bpw(8), 8.5); // q8_0
    assert_eq!(bpw(12), 4.5); // q4_K
    assert_eq!(bpw(14), 6.5625); // q6_K
    assert_eq!(bpw(23), 4.25); // iq4_xs
    assert_eq!(bpw(39), 4.25); // mxfp4
    assert_eq!(GgmlType::Q4_K.as_str(), "q4_K");
    assert_eq!(GgmlType::BF16.as_str(), "bf16");
    assert_eq!(GgmlType::IQ4_XS.to_string(), "iq4_xs");
    assert_eq!(GgmlType::Q8_0.n_bytes(&[64, 4]), Ok(272));
    assert!(GgmlType::Q8_0.n_bytes(&[33]).is_err());
    assert_eq!(file_type_name(15), Some("Q4_K_M"));
    assert_eq!(file_type_name(38), Some("MXFP4_MOE"));
    assert_eq!(file_type_name(4), None);
    assert_eq!(file_type_name(1024), None);
}

/// Parses the real model named by RUNNER_TEST_MODEL (a SmolLM2-135M GGUF).
#[test]
fn the_real_model_parses() {
    let path = crate::util::test_model();
    let f = GgufFile::open(Path::new(&path)).expect("real model parses");
    assert_eq!(f.architecture(), Some("llama"));
    assert!(!f.tensors.is_empty());
    assert!(f.data_end <= f.file_size && f.file_size - f.data_end < f.alignment);
    let n = f.n_params();
    assert!((130_000_000..=140_000_000).contains(&n), "n_params {n}");
    assert!(f.arch_u64("context_length").is_some());
}

#[test]
fn corrupted_header_bytes_never_panic() {
    let (bytes, layout) = build(Some(32));
    let mut oks = 0;
    for at in 0..layout.infos_end {
        for v in [0x00, 0xff, 0x80, 0x7f, bytes[at] ^ 0x01] {
            let mut b = bytes.clone();
            b[at] = v;
            // Must return (Ok or Err) without panicking or allocating absurdly.
            oks += usize::from(parse(&b).is_ok());
        }
    }
    assert!(
        oks > 0,
        "some value bytes can change without breaking the file"
    );
}
