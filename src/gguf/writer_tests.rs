//! Unit tests for the GGUF writer: round trips through the reader, exact bytes, raw copies.

use super::*;
use crate::gguf::{ArrayValue, GgufFile};
use std::io::Cursor;
use std::path::Path;

fn parse(bytes: &[u8]) -> GgufFile {
    GgufFile::from_reader(Cursor::new(bytes), bytes.len() as u64, Path::new("w.gguf"))
        .expect("the written image parses")
}

fn write(w: &GgufWriter, source: Option<&mut dyn Source>) -> Vec<u8> {
    let mut out = Vec::new();
    let n = w.write_to(&mut out, source).expect("writes");
    assert_eq!(n, out.len() as u64, "returns the bytes written");
    assert_eq!(w.file_size().unwrap(), n, "file_size predicts the size");
    out
}

fn array(elem_type: ValueType, head: Vec<MetaValue>) -> MetaValue {
    MetaValue::Array(ArrayValue {
        elem_type,
        len: head.len() as u64,
        head,
    })
}

fn every_value_type() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        ("t.u8", MetaValue::U8(200)),
        ("t.i8", MetaValue::I8(-100)),
        ("t.u16", MetaValue::U16(60_000)),
        ("t.i16", MetaValue::I16(-30_000)),
        ("t.u32", MetaValue::U32(4_000_000_000)),
        ("t.i32", MetaValue::I32(-2_000_000_000)),
        ("t.f32", MetaValue::F32(1.5)),
        ("t.bool", MetaValue::Bool(true)),
        ("t.u64", MetaValue::U64(u64::MAX)),
        ("t.i64", MetaValue::I64(i64::MIN)),
        ("t.f64", MetaValue::F64(-0.25)),
        ("t.empty_str", MetaValue::Str(String::new())),
        (
            "t.arr_i32",
            array(ValueType::I32, (0..5).map(MetaValue::I32).collect()),
        ),
        (
            "t.arr_str",
            array(
                ValueType::Str,
                ["a", "", "ünï"]
                    .iter()
                    .map(|s| MetaValue::Str(s.to_string()))
                    .collect(),
            ),
        ),
        ("t.arr_empty", array(ValueType::F32, vec![])),
    ]
}

/// Three tensors of different types; data bytes follow a pattern per tensor.
fn add_tensors(w: &mut GgufWriter) -> Vec<Vec<u8>> {
    let specs: [(&str, &[u64], GgmlType); 3] = [
        ("token_embd.weight", &[64, 3], GgmlType::Q8_0),
        ("norm.weight", &[7], GgmlType::F32),
        ("blk.0.ffn_up_exps.weight", &[256, 2, 2], GgmlType::Q4_K),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (name, dims, ty))| {
            let n = ty.n_bytes(dims).unwrap();
            let data: Vec<u8> = (0..n).map(|j| (j as usize * 7 + i) as u8).collect();
            w.add_tensor(name, dims, *ty, TensorData::Bytes(data.clone()))
                .unwrap();
            data
        })
        .collect()
}

#[test]
fn round_trip_through_the_reader() {
    let mut w = GgufWriter::new();
    for (k, v) in every_value_type() {
        w.set(k, &v).unwrap();
    }
    let data = add_tensors(&mut w);
    let bytes = write(&w, None);
    let f = parse(&bytes);
    assert_eq!(f.version, 3);
    assert_eq!(f.alignment, 32);
    let keys: Vec<&str> = f.metadata.iter().map(|(k, _)| k.as_str()).collect();
    let want: Vec<&str> = every_value_type().iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, want, "keys in insertion order");
    for (k, v) in every_value_type() {
        assert_eq!(f.get(k), Some(&v), "{k}");
    }
    assert_eq!(f.tensors.len(), 3);
    assert_eq!(f.tensors[2].dims, [256, 2, 2]);
    assert_eq!(f.tensors[2].ggml_type, GgmlType::Q4_K);
    for (t, d) in f.tensors.iter().zip(&data) {
        assert_eq!(t.offset % 32, 0, "{} aligned", t.name);
        assert_eq!(t.n_bytes, d.len() as u64);
        let at = (f.data_offset + t.offset) as usize;
        assert_eq!(&bytes[at..at + d.len()], d.as_slice(), "{} data", t.name);
    }
    assert_eq!(f.data_offset % 32, 0);
    assert_eq!(bytes.len() % 32, 0, "the last tensor is padded too");
}

#[test]
fn exact_bytes_of_a_small_file() {
    let mut w = GgufWriter::new();
    w.set("a", &MetaValue::U16(0x0102)).unwrap();
    w.add_tensor("t", &[2], GgmlType::F32, TensorData::Bytes(vec![9; 8]))
        .unwrap();
    let bytes = write(&w, None);
    let mut want = b"GGUF".to_vec();
    want.extend(3u32.to_le_bytes());
    want.extend(1u64.to_le_bytes()); // tensors
    want.extend(1u64.to_le_bytes()); // key/values
    want.extend(1u64.to_le_bytes());
    want.push(b'a');
    want.extend(2u32.to_le_bytes()); // u16
    want.extend([0x02, 0x01]);
    want.extend(1u64.to_le_bytes());
    want.push(b't');
    want.extend(1u32.to_le_bytes()); // n_dims
    want.extend(2u64.to_le_bytes());
    want.extend(0u32.to_le_bytes()); // f32
    want.extend(0u64.to_le_bytes()); // offset
    want.resize(96, 0); // 71 header bytes, padded to 32
    want.extend([9; 8]);
    want.resize(128, 0);
    assert_eq!(bytes, want);
}

#[test]
fn raw_copies_keep_large_arrays_whole() {
    let mut w = GgufWriter::new();
    let tokens: Vec<MetaValue> = (0..1000)
        .map(|i| MetaValue::Str(format!("tok{i}")))
        .collect();
    let scores: Vec<MetaValue> = (0..1000).map(|i| MetaValue::F32(i as f32)).collect();
    w.set("tokenizer.ggml.tokens", &array(ValueType::Str, tokens))
        .unwrap();
    w.set("tokenizer.ggml.scores", &array(ValueType::F32, scores))
        .unwrap();
    w.set("general.name", &MetaValue::Str("src".into()))
        .unwrap();
    let src = write(&w, None);
    let f = parse(&src);
    let MetaValue::Array(a) = f.get("tokenizer.ggml.tokens").unwrap() else {
        panic!("an array");
    };
    assert!(a.head.len() < 1000, "the reader keeps only the head");
    let mut copy = GgufWriter::new();
    let mut cur = Cursor::new(src.as_slice());
    for (i, (k, v)) in f.metadata.iter().enumerate() {
        let raw = f.raw_value(&mut cur, i).unwrap().unwrap();
        copy.set_raw(k, v.value_type(), raw).unwrap();
    }
    assert!(f.raw_value(&mut cur, f.metadata.len()).is_none());
    assert_eq!(write(&copy, None), src, "a raw copy is byte-identical");
}

#[test]
fn source_ranges_are_repeated() {
    let src: Vec<u8> = (0..200u8).collect();
    let mut w = GgufWriter::new();
    let data = TensorData::Source {
        offset: 100,
        len: 36,
        repeat: 3,
    };
    w.add_tensor("x", &[32, 1, 3], GgmlType::Q4_1, data.clone())
        .unwrap_err(); // q4_1 rows take 20 bytes: 3 x 20 != 3 x 36
    w.add_tensor("x", &[64, 1, 3], GgmlType::Q4_0, data.clone())
        .unwrap();
    w.add_tensor("y", &[4], GgmlType::F32, TensorData::Bytes(vec![1; 16]))
        .unwrap();
    let err = w.write_to(&mut Vec::new(), None).unwrap_err();
    assert!(
        matches!(err, WriteError::NoSource(ref n) if n == "x"),
        "{err}"
    );
    let bytes = write(&w, Some(&mut Cursor::new(src.as_slice())));
    let f = parse(&bytes);
    let x = f.tensor("x").unwrap();
    assert_eq!(x.n_bytes, 108);
    let at = (f.data_offset + x.offset) as usize;
    for r in 0..3 {
        assert_eq!(&bytes[at + r * 36..at + (r + 1) * 36], &src[100..136]);
    }
    assert_eq!(f.tensor("y").unwrap().offset, 128, "108 padded to 128");
}

#[test]
fn alignment_comes_from_general_alignment() {
    let mut w = GgufWriter::new();
    w.set("general.alignment", &MetaValue::U32(64)).unwrap();
    add_tensors(&mut w);
    let f = parse(&write(&w, None));
    assert_eq!(f.alignment, 64);
    assert!(f.tensors.iter().all(|t| t.offset % 64 == 0));
    assert_eq!(f.data_offset % 64, 0);
    w.set("general.alignment", &MetaValue::U32(48)).unwrap();
    assert!(w.header().unwrap_err().to_string().contains("power of 2"));
    w.set("general.alignment", &MetaValue::U64(64)).unwrap();
    assert!(w.header().unwrap_err().to_string().contains("u32"));
    assert!(w.remove("general.alignment"));
    assert!(!w.remove("general.alignment"));
    assert_eq!(w.alignment().unwrap(), 32);
}

#[test]
fn set_replaces_in_place() {
    let mut w = GgufWriter::new();
    w.set("a", &MetaValue::U32(1)).unwrap();
    w.set("b", &MetaValue::U32(2)).unwrap();
    w.set("a", &MetaValue::Str("x".into())).unwrap();
    let f = parse(&write(&w, None));
    assert_eq!(f.metadata[0], ("a".to_string(), MetaValue::Str("x".into())));
    assert_eq!(f.metadata.len(), 2);
}

#[test]
fn bad_values_and_tensors_are_refused() {
    let mut w = GgufWriter::new();
    let partial = MetaValue::Array(ArrayValue {
        elem_type: ValueType::U8,
        len: 5,
        head: vec![MetaValue::U8(1)],
    });
    let e = w.set("p", &partial).unwrap_err().to_string();
    assert!(e.contains("only complete arrays"), "{e}");
    let mixed = array(ValueType::U8, vec![MetaValue::U8(1), MetaValue::I8(1)]);
    assert!(w
        .set("m", &mixed)
        .unwrap_err()
        .to_string()
        .contains("element 1"));
    assert!(w.set("", &MetaValue::U8(1)).is_err());
    let f32x4 = || TensorData::Bytes(vec![0; 16]);
    assert!(w.add_tensor("t", &[5], GgmlType::F32, f32x4()).is_err());
    assert!(w.add_tensor("t", &[4, 0], GgmlType::F32, f32x4()).is_err());
    assert!(w
        .add_tensor("t", &[1, 1, 1, 1, 4], GgmlType::F32, f32x4())
        .is_err());
    assert!(w
        .add_tensor(&"n".repeat(64), &[4], GgmlType::F32, f32x4())
        .is_err());
    assert!(w.add_tensor("", &[4], GgmlType::F32, f32x4()).is_err());
    assert!(w.add_tensor("q", &[48], GgmlType::Q4_0, f32x4()).is_err());
    w.add_tensor("t", &[4], GgmlType::F32, f32x4()).unwrap();
    let e = w.add_tensor("t", &[4], GgmlType::F32, f32x4()).unwrap_err();
    assert!(matches!(e, WriteError::DuplicateTensor(_)), "{e}");
}

/// Rewriting the real model (metadata copied raw, tensors streamed from it) gives a file the
/// reader accepts with the same metadata, tensor table and data.
#[test]
fn real_model_rewrites_faithfully() {
    let path = crate::util::test_model();
    let src = GgufFile::open(Path::new(&path)).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let mut w = GgufWriter::new();
    for (i, (k, v)) in src.metadata.iter().enumerate() {
        let raw = src.raw_value(&mut file, i).unwrap().unwrap();
        w.set_raw(k, v.value_type(), raw).unwrap();
    }
    for t in &src.tensors {
        let data = TensorData::Source {
            offset: src.data_offset + t.offset,
            len: t.n_bytes,
            repeat: 1,
        };
        w.add_tensor(&t.name, &t.dims, t.ggml_type, data).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("copy.gguf");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&out_path).unwrap());
    w.write_to(&mut out, Some(&mut file)).unwrap();
    drop(out);
    let copy = GgufFile::open(&out_path).unwrap();
    assert_eq!(copy.metadata, src.metadata);
    assert_eq!(copy.tensors, src.tensors);
    assert_eq!(copy.data_offset, src.data_offset);
    let (a, b) = (
        std::fs::read(&path).unwrap(),
        std::fs::read(&out_path).unwrap(),
    );
    assert!(
        a == b,
        "the rewritten file is byte-identical to the original"
    );
}
