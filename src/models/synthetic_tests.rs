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
        (
            "synth:llama-2-7b:layers=4294967296",
            "--layers 4294967296 is out of range",
        ),
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

/// A GGUF array of `items` of type `elem`.
fn array(elem: crate::gguf::ValueType, items: Vec<MetaValue>) -> MetaValue {
    MetaValue::Array(crate::gguf::ArrayValue {
        elem_type: elem,
        len: items.len() as u64,
        head: items,
    })
}

/// Writes a GGUF at `path` whose tokenizer lists `tokens`, with the `extra` keys after it.
pub(crate) fn donor(path: &Path, tokens: &[&str], extra: &[(&str, MetaValue)]) {
    use crate::gguf::{GgufWriter, ValueType};
    let mut w = GgufWriter::new();
    w.set("general.architecture", &MetaValue::Str("llama".into()))
        .unwrap();
    let tokens = tokens
        .iter()
        .map(|t| MetaValue::Str(t.to_string()))
        .collect();
    w.set("tokenizer.ggml.tokens", &array(ValueType::Str, tokens))
        .unwrap();
    for (k, v) in extra {
        w.set(k, v).unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    w.write_to(&mut f, None).unwrap();
}

#[test]
fn a_tokenizer_file_names_the_cached_model_by_its_name_and_contents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bos = |v: MetaValue| [("tokenizer.ggml.bos_token_id", v)];
    let (a, same, renamed, other, typed) = (
        d.join("a.gguf"),
        d.join("copy/a.gguf"),
        d.join("b.gguf"),
        d.join("c/a.gguf"),
        d.join("i/a.gguf"),
    );
    donor(&a, &["x", "y", "z"], &bos(MetaValue::U32(1)));
    donor(&same, &["x", "y", "z"], &bos(MetaValue::U32(1)));
    donor(&renamed, &["x", "y", "z"], &bos(MetaValue::U32(1)));
    donor(&other, &["x", "y", "w"], &bos(MetaValue::U32(1)));
    donor(&typed, &["x", "y", "z"], &bos(MetaValue::I32(1)));
    let spec = |p: &Path| {
        SynthSpec::parse(&format!(
            "synth:llama-2-7b:layers=1:tokenizer={}",
            p.display()
        ))
        .unwrap()
    };
    let sa = spec(&a);
    let TokenizerSource::File { path, digest } = &sa.tokenizer else {
        panic!("{:?}", sa.tokenizer)
    };
    assert_eq!(path, &a);
    assert_eq!(digest.len(), 8);
    assert_eq!(
        sa.file_name("b1"),
        format!("llama-2-7b-q4_k_m-1l-s42-t{digest}-v2-b1.gguf")
    );
    let name = |p: &Path| spec(p).file_name("b1");
    assert_eq!(name(&a), name(&same), "same name and tokenizer, same model");
    for p in [&renamed, &other, &typed] {
        assert_ne!(name(&a), name(p), "{}", p.display());
    }
    assert_eq!(TokenizerSource::file_label(&a), "a.gguf (file)");
    let none = SynthSpec::parse("synth:llama-2-7b:tokenizer=none").unwrap();
    assert_eq!(none.tokenizer, TokenizerSource::None);
    for (bad, says) in [
        (
            format!("synth:llama-2-7b:tokenizer={}", d.join("no.gguf").display()),
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

/// A tokenizer the synthesizer could not pad into a loadable file is refused up front.
#[test]
fn a_tokenizer_padding_cannot_serve_is_refused() {
    use crate::gguf::ValueType;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids = |elem: ValueType, v: fn(u8) -> MetaValue| array(elem, (0..3).map(v).collect());
    let u8_types = (
        "tokenizer.ggml.token_type",
        ids(ValueType::U8, MetaValue::U8),
    );
    let i32_types = (
        "tokenizer.ggml.token_type",
        ids(ValueType::I32, |i| MetaValue::I32(i.into())),
    );
    // (file, its tokens, other keys, what the refusal says: nothing when accepted)
    type Case<'a> = (&'a str, &'a [&'a str], Vec<(&'a str, MetaValue)>, &'a str);
    let cases: [Case; 3] = [
        (
            "u8.gguf",
            &["x", "y", "z"],
            vec![u8_types],
            "token_type is a list of u8",
        ),
        (
            "pad.gguf",
            &["x", "[PAD5]", "z"],
            vec![],
            "token 1 is \"[PAD5]\"",
        ),
        (
            "ok.gguf",
            &["x", "[PAD2]", "[PAD32000]"],
            vec![i32_types],
            "",
        ),
    ];
    for (file, tokens, extra, says) in cases {
        let p = d.join(file);
        donor(&p, tokens, &extra);
        let got = TokenizerSource::file(&p, 32_000);
        match says {
            "" => assert!(got.is_ok(), "{file}: {got:?}"),
            _ => assert!(
                got.as_ref().is_err_and(|e| e.contains(says)),
                "{file}: {got:?}"
            ),
        }
    }
    // Ids where strings belong.
    let p = d.join("ids.gguf");
    let mut w = crate::gguf::GgufWriter::new();
    w.set(
        "tokenizer.ggml.tokens",
        &ids(ValueType::U32, |i| MetaValue::U32(i.into())),
    )
    .unwrap();
    w.write_to(&mut std::fs::File::create(&p).unwrap(), None)
        .unwrap();
    let e = TokenizerSource::file(&p, 32_000).unwrap_err();
    assert!(e.contains("not a list of strings"), "{e}");
}
