//! llama.cpp's conditions on a vocabulary, checked with the header: past them its vocabulary
//! loader asserts (`GGML_ASSERT`, a repeated token) or its SentencePiece tokenizer throws a C++
//! exception through the FFI (a byte without a token), and either aborts the process.

use super::GgufFile;

/// The metadata key of the vocabulary's strings.
pub(super) const TOKENS_KEY: &str = "tokenizer.ggml.tokens";

/// Every string of `tokenizer.ggml.tokens` as llama.cpp's vocabulary holds it: cut at the
/// first NUL byte (it reads them as C strings), an empty one named `[EMPTY_<id>]`. Kept in one
/// buffer, so that a large vocabulary costs little more than its bytes.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    bytes: Vec<u8>,
    /// Where each token ends in `bytes`.
    ends: Vec<usize>,
}

impl Tokens {
    /// Appends the next token as read from the file.
    pub(super) fn push(&mut self, raw: &[u8]) {
        let text = raw.split(|&b| b == 0).next().unwrap_or_default();
        match text.is_empty() {
            true => {
                let name = format!("[EMPTY_{}]", self.ends.len());
                self.bytes.extend_from_slice(name.as_bytes());
            }
            false => self.bytes.extend_from_slice(text),
        }
        self.ends.push(self.bytes.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        &self.bytes[start..self.ends[i]]
    }
}

/// Why llama.cpp cannot load the vocabulary of `g`, whose strings are `tokens`; checked only
/// where llama.cpp reads them (a model with `tokenizer.ggml.model` "none" or "no_vocab" has
/// none).
pub(super) fn check(g: &GgufFile, tokens: &Tokens) -> Result<(), String> {
    let model = g.get_str("tokenizer.ggml.model");
    if matches!(model, Some("none" | "no_vocab")) || tokens.len() == 0 {
        return Ok(());
    }
    // Token ids sorted by their text: a repeated token sits next to its twin, and a text is
    // found by binary search.
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_unstable_by(|&a, &b| tokens.get(a).cmp(tokens.get(b)).then(a.cmp(&b)));
    if let Some(w) = order
        .windows(2)
        .filter(|w| tokens.get(w[0]) == tokens.get(w[1]))
        .min_by_key(|w| w[1])
    {
        return Err(format!(
            "{TOKENS_KEY} holds {:?} twice (tokens {} and {}); llama.cpp's vocabulary loader \
             asserts every token is distinct",
            String::from_utf8_lossy(tokens.get(w[0])),
            w[0],
            w[1]
        ));
    }
    if model == Some("llama") {
        let has = |text: &[u8]| order.binary_search_by(|&i| tokens.get(i).cmp(text)).is_ok();
        // llama.cpp's SentencePiece tokenizer spells a piece it has no token for in byte
        // tokens: `<0xXX>`, or the byte itself (never NUL: a token ends there).
        let missing = (0..=255u8)
            .find(|&b| !has(format!("<0x{b:02X}>").as_bytes()) && (b == 0 || !has(&[b])));
        if let Some(b) = missing {
            return Err(format!(
                "tokenizer.ggml.model is \"llama\" (SentencePiece), but the vocabulary has no \
                 token for byte 0x{b:02X} (neither <0x{b:02X}> nor the byte itself); llama.cpp's \
                 tokenizer throws on text that needs it"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{ArrayValue, GgufError, GgufWriter, MetaValue, ValueType};
    use std::io::Cursor;
    use std::path::Path;

    /// A llama header with tokenizer `model` and the vocabulary `tokens`, parsed back.
    fn parse(model: &str, tokens: &[&str]) -> Result<GgufFile, GgufError> {
        let mut w = GgufWriter::new();
        let str = |s: &str| MetaValue::Str(s.into());
        w.set("general.architecture", &str("llama")).unwrap();
        w.set("tokenizer.ggml.model", &str(model)).unwrap();
        let head = tokens.iter().map(|t| str(t)).collect();
        let array = ArrayValue {
            elem_type: ValueType::Str,
            len: tokens.len() as u64,
            head,
        };
        w.set(TOKENS_KEY, &MetaValue::Array(array)).unwrap();
        let mut bytes = Vec::new();
        w.write_to(&mut bytes, None).unwrap();
        GgufFile::from_reader(Cursor::new(&bytes), bytes.len() as u64, Path::new("m.gguf"))
    }

    fn refused(model: &str, tokens: &[&str]) -> String {
        match parse(model, tokens) {
            Err(e @ GgufError::Invalid { .. }) => e.to_string(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_repeated_token_is_refused() {
        assert!(parse("gpt2", &["a", "b", "ab"]).is_ok());
        let e = refused("gpt2", &["a", "b", "ab", "b"]);
        assert_eq!(
            e,
            "m.gguf: invalid GGUF file: tokenizer.ggml.tokens holds \"b\" twice (tokens 1 and \
             3); llama.cpp's vocabulary loader asserts every token is distinct"
        );
        // As llama.cpp reads them: cut at a NUL, an empty one named after its id.
        assert!(refused("gpt2", &["a", "a\0b"]).contains("\"a\" twice"));
        assert!(parse("gpt2", &["", "x"]).is_ok());
        assert!(refused("gpt2", &["[EMPTY_1]", ""]).contains("tokens 0 and 1"));
        // A model without a vocabulary never reads its tokens.
        assert!(parse("none", &["a", "a"]).is_ok());
    }

    #[test]
    fn a_sentencepiece_vocabulary_needs_every_byte() {
        let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        let mut spm: Vec<&str> = bytes.iter().map(String::as_str).collect();
        spm.extend(["▁the", "▁a"]);
        assert!(parse("llama", &spm).is_ok());
        // The same vocabulary read as byte-level BPE needs none of them.
        assert!(parse("gpt2", &["a", "b"]).is_ok());
        let e = refused("llama", &["<unk>", "a", "b"]);
        assert!(
            e.contains("no token for byte 0x00 (neither <0x00> nor"),
            "{e}"
        );
        // A byte may stand for itself, except NUL.
        let plain: Vec<String> = (1..=127u8).map(|b| (b as char).to_string()).collect();
        let mut mixed: Vec<&str> = plain.iter().map(String::as_str).collect();
        mixed.push("<0x00>");
        mixed.extend(bytes[128..].iter().map(String::as_str));
        assert!(parse("llama", &mixed).is_ok());
        mixed.retain(|t| *t != "<0xE2>");
        assert!(refused("llama", &mixed).contains("byte 0xE2"));
    }
}
