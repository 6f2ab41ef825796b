//! What a synthetic model is: the `runner.synthetic.*` keys its file carries into every record
//! measured on it ([`Synthetic`]), and the `synth:NAME[@TYPE][:...]` names that ask for one
//! ([`SynthSpec`]).

use super::catalogue::{arch, Arch, CatalogueError, Family};
use crate::gguf::{GgufFile, MetaValue, ValueType, MAX_EXPERTS};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[cfg(test)]
#[path = "synthetic_tests.rs"]
pub(crate) mod tests;

/// What a synthetic model's file says about itself: its `runner.synthetic.*` keys, carried
/// into every record measured on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Synthetic {
    /// The catalogue entry (`llama-3.1-8b`), or `twin` for a random-weight copy of a file.
    pub of: String,
    /// The published model it stands for, or the file it copies.
    pub model: String,
    /// Layers in this file.
    pub layers: u32,
    /// Layers of the real model.
    pub full_layers: u32,
    pub seed: u64,
    /// Where the shapes come from.
    pub source: String,
    /// Where the tokenizer comes from (`none (token ids only)` when there is none).
    pub tokenizer: String,
    /// Routed experts, for MoE models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<u32>,
    /// The file type it was made in (`q4_k_m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant: Option<String>,
    /// Made as the dense reference of an MoE entry (equal active bytes, no routing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dense: bool,
    /// The value model it was filled with ([`VALUE_MODEL`]); 1 for files made before weights
    /// had a trained model's spread of scales.
    #[serde(
        default = "first_value_model",
        skip_serializing_if = "is_first_value_model"
    )]
    pub values: u32,
}

/// The value model synthetic files are filled with now: 2 spreads weights over rows, 32-value
/// groups and tensor roles and norm weights over channels as trained models do (1: one plain
/// Gaussian per tensor kind, norms near 1).
pub const VALUE_MODEL: u32 = 2;

fn first_value_model() -> u32 {
    1
}

fn is_first_value_model(v: &u32) -> bool {
    *v == 1
}

const KEY: &str = "runner.synthetic.";

impl Synthetic {
    /// The GGUF keys that describe it.
    pub fn metadata(&self) -> Vec<(String, MetaValue)> {
        let key = |k: &str| format!("{KEY}{k}");
        let s = |v: &str| MetaValue::Str(v.to_string());
        let mut m = vec![
            (key("of"), s(&self.of)),
            (key("model"), s(&self.model)),
            (key("layers"), MetaValue::U32(self.layers)),
            (key("full_layers"), MetaValue::U32(self.full_layers)),
            (key("seed"), MetaValue::U64(self.seed)),
            (key("source"), s(&self.source)),
            (key("tokenizer"), s(&self.tokenizer)),
        ];
        if let Some(x) = self.experts {
            m.push((key("experts"), MetaValue::U32(x)));
        }
        if let Some(q) = &self.quant {
            m.push((key("quant"), s(q)));
        }
        if self.dense {
            m.push((key("dense"), MetaValue::Bool(true)));
        }
        m.push((key("values"), MetaValue::U32(self.values)));
        m
    }

    /// Reads it back from a file's metadata; `None` for a real model.
    pub fn from_gguf(g: &crate::gguf::GgufFile) -> Option<Synthetic> {
        let s = |k: &str| g.get_str(&format!("{KEY}{k}")).map(str::to_string);
        let n = |k: &str| g.get_u64(&format!("{KEY}{k}"));
        Some(Synthetic {
            of: s("of")?,
            model: s("model").unwrap_or_default(),
            layers: n("layers").unwrap_or(0) as u32,
            full_layers: n("full_layers").unwrap_or(0) as u32,
            seed: n("seed").unwrap_or(0),
            source: s("source").unwrap_or_default(),
            tokenizer: s("tokenizer").unwrap_or_default(),
            experts: n("experts").map(|x| x as u32),
            quant: s("quant"),
            dense: matches!(g.get(&format!("{KEY}dense")), Some(MetaValue::Bool(true))),
            values: n("values").map_or(1, |v| v as u32),
        })
    }

    /// Whether only some of the real model's layers are here.
    pub fn layer_scaled(&self) -> bool {
        self.layers < self.full_layers
    }

    /// How tables name it: the catalogue entry (a twin: its file's stem), marked synthetic,
    /// with the layers kept when they are not all.
    pub fn label(&self, file_stem: &str) -> String {
        let name = if self.of == "twin" {
            file_stem
        } else {
            self.of.as_str()
        };
        if self.layer_scaled() {
            format!(
                "{name} (synthetic) {}/{} layers",
                self.layers, self.full_layers
            )
        } else {
            format!("{name} (synthetic)")
        }
    }
}

const FILE_LABEL: &str = " (file)";

/// The element types of the tokenizer lists a synthetic model pads to its vocabulary (tokens,
/// scores, token types); a list of another type cannot be padded.
pub const PADDED_TYPES: [ValueType; 3] = [ValueType::Str, ValueType::F32, ValueType::I32];

/// The name padding gives token `i` of a synthetic model's vocabulary.
pub fn pad_token(i: u64) -> String {
    format!("[PAD{i}]")
}

/// The lists llama.cpp's vocabulary loader reads beside the `n` tokens, with the element
/// types it accepts: it refuses a list of another type, or shorter than the tokens, when the
/// model loads. Where the tokens are padded to the model's `vocab`, a list as long as the
/// tokens is padded with them, and one of another length must be as long as the padded tokens.
fn per_token_lists(g: &GgufFile, n: u64, vocab: u64) -> Result<(), String> {
    let lists = [
        (
            "tokenizer.ggml.scores",
            &[ValueType::F32, ValueType::I32][..],
        ),
        ("tokenizer.ggml.token_type", &[ValueType::I32][..]),
    ];
    for (key, types) in lists {
        let Some(value) = g.get(key) else {
            continue;
        };
        let names = || {
            types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        };
        match value {
            MetaValue::Array(a) if !types.contains(&a.elem_type) => {
                return Err(format!(
                    "{key} is a list of {}; llama.cpp reads a list of {}",
                    a.elem_type,
                    names()
                ))
            }
            MetaValue::Array(a) if a.len < n => {
                return Err(format!("{key} has {} entries for {n} tokens", a.len))
            }
            MetaValue::Array(a) if a.len != n && a.len < vocab => {
                return Err(format!(
                    "{key} has {} entries: more than its {n} tokens, fewer than the {vocab} \
                     they are padded to",
                    a.len
                ))
            }
            MetaValue::Array(_) => {}
            other => {
                return Err(format!(
                    "{key} is a {}, not a list of {}",
                    other.value_type(),
                    names()
                ))
            }
        }
    }
    Ok(())
}

/// Where a synthetic model's tokenizer comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum TokenizerSource {
    /// The catalogue entry's own (fetched), or none where the entry has none.
    #[default]
    Entry,
    /// None: token ids only.
    None,
    /// The `tokenizer.*` keys of a GGUF file; `digest` tells their contents apart.
    File { path: PathBuf, digest: String },
}

impl TokenizerSource {
    /// The tokenizer of the GGUF file at `path`, checked to fit a vocabulary of `vocab`
    /// tokens once padded (see the synthesizer's `pad`); errors are one line. The digest
    /// covers the file's name (which records carry) and every `tokenizer.*` key, its type and
    /// its value.
    pub fn file(path: &Path, vocab: u64) -> Result<TokenizerSource, String> {
        let bad = |why: String| format!("tokenizer {}: {why}", path.display());
        let g = GgufFile::open(path).map_err(|e| bad(e.to_string()))?;
        let n = match g.get("tokenizer.ggml.tokens") {
            Some(MetaValue::Array(a)) if a.elem_type == ValueType::Str => a.len,
            Some(_) => return Err(bad("tokenizer.ggml.tokens is not a list of strings".into())),
            None => return Err(bad("holds no tokenizer (no tokenizer.ggml.tokens)".into())),
        };
        if n == 0 || n > vocab {
            return Err(bad(format!(
                "its tokenizer has {n} tokens; the model's vocabulary holds at most {vocab}"
            )));
        }
        per_token_lists(&g, n, vocab).map_err(bad)?;
        let mut f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut h = Sha256::new();
        let mut frame = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        frame(Self::file_label(path).as_bytes());
        for (i, (key, value)) in g.metadata.iter().enumerate() {
            let Some(raw) = g
                .raw_value(&mut f, i)
                .filter(|_| key.starts_with("tokenizer."))
            else {
                continue;
            };
            let raw = raw.map_err(|e| bad(e.to_string()))?;
            if let MetaValue::Array(a) = value {
                if a.len == n && n < vocab && !PADDED_TYPES.contains(&a.elem_type) {
                    return Err(bad(format!(
                        "{key} is a list of {}; only lists of strings, f32 and i32 are padded \
                         to the model's vocabulary",
                        a.elem_type
                    )));
                }
                if key == "tokenizer.ggml.tokens" {
                    if let Some((i, t)) = padding_clash(&raw, n, vocab) {
                        return Err(bad(format!(
                            "token {i} is \"{t}\", a name the padding to the model's vocabulary \
                             gives another token"
                        )));
                    }
                }
            }
            frame(key.as_bytes());
            frame(value.value_type().as_str().as_bytes());
            frame(&raw);
        }
        Ok(TokenizerSource::File {
            path: path.to_path_buf(),
            digest: hex::encode(&h.finalize()[..4]),
        })
    }

    /// How records name a tokenizer taken from a file.
    pub fn file_label(path: &Path) -> String {
        let name = path.file_name().unwrap_or(path.as_os_str());
        format!("{}{FILE_LABEL}", name.to_string_lossy())
    }

    /// Whether a [`Synthetic::tokenizer`] names a file ([`TokenizerSource::file_label`]).
    pub fn is_file_label(label: &str) -> bool {
        label.ends_with(FILE_LABEL)
    }
}

/// The first of the `n` tokens in `raw` (a GGUF string array as stored: element type, count,
/// then each string's length and bytes) named `[PAD<i>]` ([`pad_token`]) with `i` from `n` to
/// `vocab`, which padding would give token `i` too.
fn padding_clash(raw: &[u8], n: u64, vocab: u64) -> Option<(u64, String)> {
    let mut at = 12usize;
    for i in 0..n {
        let len = u64::from_le_bytes(raw.get(at..at + 8)?.try_into().ok()?);
        let end = at.checked_add(8)?.checked_add(usize::try_from(len).ok()?)?;
        let t = String::from_utf8_lossy(raw.get(at + 8..end)?);
        let pad = t.strip_prefix("[PAD").and_then(|r| r.strip_suffix(']'));
        let index = pad.and_then(|p| p.parse::<u64>().ok());
        if index.is_some_and(|p| (n..vocab).contains(&p)) {
            return Some((i, t.into_owned()));
        }
        at = end;
    }
    None
}

/// A synthetic model named on the command line:
/// `synth:NAME[@QUANT][:layers=N][:seed=S][:experts=N][:tokenizer=none|FILE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    pub arch: &'static Arch,
    /// The file type as typed (`q4_k_m`); `None` for the entry's default.
    pub quant: Option<String>,
    /// Layers to keep; `None` for all.
    pub layers: Option<u32>,
    pub seed: u64,
    /// Routed experts instead of the published count (MoE entries).
    pub experts: Option<u32>,
    /// Where its tokenizer comes from.
    pub tokenizer: TokenizerSource,
    /// The dense reference of an MoE entry instead of the entry itself.
    pub dense: bool,
}

/// The prefix that names a synthetic model.
pub const SYNTH_PREFIX: &str = "synth:";

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 42;

impl SynthSpec {
    /// Parses a `synth:` argument (the prefix optional); errors are one line.
    pub fn parse(arg: &str) -> Result<SynthSpec, String> {
        let body = arg.trim();
        let body = body.strip_prefix(SYNTH_PREFIX).unwrap_or(body);
        let mut parts = body.split(':');
        let head = parts.next().unwrap_or_default();
        let (name, quant) = match head.split_once('@') {
            Some((n, q)) if !q.is_empty() => (n, Some(q.to_ascii_lowercase())),
            Some((_, _)) => {
                return Err(format!(
                    "'{arg}': nothing after '@' (a type such as q4_k_m)"
                ))
            }
            None => (head, None),
        };
        let arch = arch(name).map_err(|e| e.to_string())?;
        let mut spec = SynthSpec {
            arch,
            quant,
            layers: None,
            seed: DEFAULT_SEED,
            experts: None,
            tokenizer: TokenizerSource::Entry,
            dense: false,
        };
        let mut seen = Vec::new();
        for part in parts {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            if seen.contains(&k) {
                return Err(format!("'{arg}': {k} is given twice"));
            }
            seen.push(k);
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| format!("'{arg}': {k}={v} is not a whole number"))
            };
            match k {
                "layers" => {
                    let n = num()?;
                    let too_many = |_| CatalogueError::Layers {
                        name: arch.name.to_string(),
                        asked: n,
                        layers: arch.layers,
                    };
                    spec.layers = Some(u32::try_from(n).map_err(too_many).map_err(|e| e.to_string())?)
                }
                "seed" => spec.seed = num()?,
                "experts" => spec.experts = Some(u32::try_from(num()?).unwrap_or(u32::MAX)),
                "tokenizer" if v == "none" => spec.tokenizer = TokenizerSource::None,
                "tokenizer" if !v.is_empty() => {
                    spec.tokenizer =
                        TokenizerSource::file(Path::new(v), arch.vocab).map_err(|e| format!("'{arg}': {e}"))?
                }
                "dense" if v.is_empty() => spec.dense = true,
                _ => {
                    return Err(format!(
                        "'{arg}': unknown option '{part}' (layers=N, seed=S, experts=N, tokenizer=none|FILE, dense)"
                    ))
                }
            }
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the layer count and the changed entry.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = self.experts {
            if self.arch.experts == 0 {
                return Err(format!(
                    "--experts {n}: {} is not a Mixture-of-Experts model",
                    self.arch.name
                ));
            }
            if n < self.arch.used {
                return Err(format!(
                    "--experts {n}: must be at least {}, the experts {} uses per token",
                    self.arch.used, self.arch.name
                ));
            }
            if n > MAX_EXPERTS {
                return Err(format!(
                    "--experts {n} is more than llama.cpp supports ({MAX_EXPERTS})"
                ));
            }
        }
        if self.dense && self.arch.dense_reference().is_none() {
            return Err(format!(
                "{} has no dense equivalent in llama.cpp to serve as its reference",
                self.arch.name
            ));
        }
        let a = self.entry();
        a.check_layers(self.layers()).map_err(|e| e.to_string())?;
        a.check().map_err(|e| e.to_string())
    }

    /// The catalogue entry with this spec's changes (expert count, dense reference).
    pub fn entry(&self) -> Arch {
        let mut a = self.arch.clone();
        if let Some(x) = self.experts {
            a.experts = x;
        }
        match self.dense {
            true => a.dense_reference().unwrap_or(a),
            false => a,
        }
    }

    pub fn layers(&self) -> u32 {
        self.layers.unwrap_or(self.arch.layers)
    }

    /// The file type, the entry's default when none was given: MXFP4 experts for gpt-oss (as
    /// published), Q4_K_M otherwise.
    pub fn quant_name(&self) -> String {
        self.quant.clone().unwrap_or_else(|| {
            match self.arch.family {
                Family::GptOss => "mxfp4_moe",
                _ => "q4_k_m",
            }
            .to_string()
        })
    }

    /// A file name that tells the spec apart from every other (`build` names the llama.cpp
    /// build, whose quantizer chose the types).
    pub fn file_name(&self, build: &str) -> String {
        let experts = self.experts.map(|x| format!("-x{x}")).unwrap_or_default();
        let ids = match &self.tokenizer {
            TokenizerSource::Entry => String::new(),
            TokenizerSource::None => "-ids".into(),
            TokenizerSource::File { digest, .. } => format!("-t{digest}"),
        };
        let dense = if self.dense { "-dense" } else { "" };
        format!(
            "{}{experts}{dense}-{}-{}l-s{}{ids}-v{VALUE_MODEL}-{build}.gguf",
            self.arch.name,
            self.quant_name(),
            self.layers(),
            self.seed
        )
    }
}
