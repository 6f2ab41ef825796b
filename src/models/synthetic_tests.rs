//! Tests of synthetic model specs (`synth:NAME[@TYPE][:key=value]`).

use super::*;

#[test]
fn synthetic_specs_parse_or_say_why() {
    let s = SynthSpec::parse("synth:qwen3-30b-a3b@Q8_0:layers=8:seed=7:experts=32").unwrap();
    assert_eq!(s.arch.name, "qwen3-30b-a3b");
    assert_eq!(s.quant_name(), "q8_0");
    assert_eq!((s.layers(), s.seed, s.entry().experts), (8, 7, 32));
    assert_eq!(s.file_name("b1"), "qwen3-30b-a3b-x32-q8_0-8l-s7-v2-b1.gguf");
    assert!(SynthSpec::parse("synth:qwen3-30b-a3b:experts=1024").is_ok());
    let d = SynthSpec::parse("synth:gpt-oss-20b").unwrap();
    assert_eq!((d.quant_name().as_str(), d.layers()), ("mxfp4_moe", 24));
    for (bad, says) in [
        ("synth:nope", "unknown architecture"),
        ("synth:llama-2-7b:layers=0", "out of range"),
        ("synth:llama-2-7b:layers=99", "1 to 32"),
        ("synth:llama-2-7b:layers=x", "not a whole number"),
        ("synth:llama-2-7b:colour=red", "unknown option"),
        ("synth:mixtral-8x7b:experts=1", "must be at least 2"),
        ("synth:mixtral-8x7b:experts=0", "must be at least 2"),
        ("synth:gpt-oss-20b:experts=3", "must be at least 4"),
        (
            "synth:llama-2-7b:experts=4",
            "not a Mixture-of-Experts model",
        ),
        (
            "synth:llama-2-7b:layers=1:layers=2",
            "layers is given twice",
        ),
        (
            "synth:qwen3-30b-a3b:experts=1025",
            "more than llama.cpp supports (1024)",
        ),
        (
            "synth:qwen3-30b-a3b:experts=99999999999",
            "more than llama.cpp supports",
        ),
        ("synth:llama-2-7b@", "nothing after"),
    ] {
        let e = SynthSpec::parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

/// Writes a GGUF at `path` whose only tokenizer key lists `tokens`.
fn donor(path: &Path, tokens: &[&str]) {
    use crate::gguf::{ArrayValue, GgufWriter, ValueType};
    let mut w = GgufWriter::new();
    w.set("general.architecture", &MetaValue::Str("llama".into()))
        .unwrap();
    let head = tokens
        .iter()
        .map(|t| MetaValue::Str(t.to_string()))
        .collect();
    let arr = ArrayValue {
        elem_type: ValueType::Str,
        len: tokens.len() as u64,
        head,
    };
    w.set("tokenizer.ggml.tokens", &MetaValue::Array(arr))
        .unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    w.write_to(&mut f, None).unwrap();
}

#[test]
fn a_tokenizer_file_names_the_cached_model_by_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.gguf"),
        dir.path().join("b.gguf"),
        dir.path().join("c.gguf"),
    );
    donor(&a, &["x", "y", "z"]);
    donor(&b, &["x", "y", "z"]);
    donor(&c, &["x", "y", "w"]);
    let spec = |p: &Path| {
        SynthSpec::parse(&format!(
            "synth:llama-2-7b:layers=1:tokenizer={}",
            p.display()
        ))
        .unwrap()
    };
    let (sa, sb, sc) = (spec(&a), spec(&b), spec(&c));
    let TokenizerSource::File { path, digest } = &sa.tokenizer else {
        panic!("{:?}", sa.tokenizer)
    };
    assert_eq!(path, &a);
    assert_eq!(digest.len(), 8);
    assert_eq!(
        sa.file_name("b1"),
        format!("llama-2-7b-q4_k_m-1l-s42-t{digest}-v2-b1.gguf")
    );
    assert_eq!(
        sa.file_name("b1"),
        sb.file_name("b1"),
        "same tokenizer, same model"
    );
    assert_ne!(sa.file_name("b1"), sc.file_name("b1"));
    assert_eq!(TokenizerSource::file_label(&a), "a.gguf (file)");
    let none = SynthSpec::parse("synth:llama-2-7b:tokenizer=none").unwrap();
    assert_eq!(none.tokenizer, TokenizerSource::None);
    for (bad, says) in [
        (
            format!(
                "synth:llama-2-7b:tokenizer={}",
                dir.path().join("no.gguf").display()
            ),
            "no.gguf",
        ),
        (
            format!("synth:llama-2-7b:tokenizer=none:tokenizer={}", a.display()),
            "given twice",
        ),
    ] {
        let e = SynthSpec::parse(&bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}
