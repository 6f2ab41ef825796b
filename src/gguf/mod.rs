//! GGUF header and tensor-table reader: validates a file before llama.cpp sees it.
//!
//! [`GgufFile::open`] reads only the header region (magic, version, metadata, tensor-info
//! table) through a buffered reader, then checks that every tensor's data lies inside the
//! file. Nothing here panics or allocates on untrusted lengths, so a corrupt or truncated
//! model gives a one-line [`GgufError`] instead of an `abort()` inside llama.cpp. So do layer
//! and expert counts beyond those llama.cpp's model loader asserts on ([`MAX_LAYERS`](limits::MAX_LAYERS),
//! [`MAX_EXPERTS`]), a negative or NaN norm epsilon, a vocabulary with a repeated token, and a
//! SentencePiece vocabulary without a token for every byte. Tensor data llama.cpp cannot
//! memory-map is found by [`GgufFile::unmappable`].
//! The parsed tensor table also feeds "bytes read per token" estimates by tensor type.
//! [`GgufWriter`] writes new files (metadata copied raw from a source, tensor data streamed).

mod error;
mod limits;
mod reader;
mod types;
mod vocab;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

pub use error::GgufError;
pub use limits::MAX_EXPERTS;
pub use reader::is_model_file;
pub use types::{file_type_name, ArrayValue, GgmlType, MetaValue, TensorInfo, ValueType};
pub use writer::{GgufWriter, Source, TensorData, WriteError};

/// `TENSOR_ALIGNMENT` in ggml's ggml-impl.h: where llama.cpp's memory map may start a buffer.
pub const MAPPED_ALIGNMENT: u64 = 32;

/// A validated GGUF header: metadata in file order and the full tensor-info table.
#[derive(Debug, Clone, Serialize)]
pub struct GgufFile {
    /// GGUF version (2 or 3).
    pub version: u32,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// `general.alignment`, or 32 when absent.
    pub alignment: u64,
    /// Start of the tensor data section (absolute file offset).
    pub data_offset: u64,
    /// End of the last tensor's data: max over tensors of `data_offset + offset + n_bytes`.
    pub data_end: u64,
    /// Metadata key/values in file order. Large arrays keep only their first elements.
    pub metadata: Vec<(String, MetaValue)>,
    /// Where each metadata value's encoding (after its type id) lies in the file, in the order
    /// of `metadata`: the bytes to copy a value whole, arrays included, into another file.
    #[serde(skip)]
    pub metadata_spans: Vec<Range<u64>>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
}

impl GgufFile {
    /// Opens and validates a GGUF file. Reads only the header region, however large the file.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io_err = |err: std::io::Error| GgufError::Io {
            path: path.to_path_buf(),
            err,
        };
        let meta = std::fs::metadata(path).map_err(|err| match err.kind() {
            ErrorKind::NotFound => GgufError::NotFound {
                path: path.to_path_buf(),
            },
            _ => io_err(err),
        })?;
        if meta.is_dir() {
            return Err(GgufError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        if !meta.is_file() {
            return Err(GgufError::Invalid {
                path: path.to_path_buf(),
                reason: "not a regular file".into(),
            });
        }
        let file = File::open(path).map_err(io_err)?;
        let file_size = file.metadata().map_err(io_err)?.len();
        reader::parse(file, file_size, path)
    }

    /// Parses a GGUF image from any seekable reader positioned at its start.
    /// `file_size` is the total length of the image; `path` is only used in error messages.
    pub fn from_reader<R: Read + Seek>(
        reader: R,
        file_size: u64,
        path: &Path,
    ) -> Result<GgufFile, GgufError> {
        reader::parse(reader, file_size, path)
    }

    /// The metadata value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The string value for `key`, if present and a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(MetaValue::as_str)
    }

    /// The value for `key` as u64: any integer type with a non-negative value.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(MetaValue::as_u64)
    }

    /// `general.architecture`, e.g. "llama".
    pub fn architecture(&self) -> Option<&str> {
        self.get_str("general.architecture")
    }

    /// The value for `<arch>.<suffix>`, e.g. `arch_get("context_length")` reads
    /// "llama.context_length".
    pub fn arch_get(&self, suffix: &str) -> Option<&MetaValue> {
        let arch = self.architecture()?;
        self.get(&format!("{arch}.{suffix}"))
    }

    /// [`GgufFile::arch_get`] as u64.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        self.arch_get(suffix).and_then(MetaValue::as_u64)
    }

    /// Whether the model has a tokenizer: one made for token ids only
    /// (`tokenizer.ggml.model` "none" or "no_vocab") has no text.
    pub fn has_vocab(&self) -> bool {
        !matches!(
            self.get_str("tokenizer.ggml.model"),
            Some("none" | "no_vocab")
        )
    }

    /// The number of tokens in the vocabulary (the length of `tokenizer.ggml.tokens`), 0
    /// without one.
    pub fn n_tokens(&self) -> u64 {
        match self.get(vocab::TOKENS_KEY) {
            Some(MetaValue::Array(a)) => a.len,
            _ => 0,
        }
    }

    /// `<arch>.<suffix>` for layer `il`: a scalar counts for every layer, an array holds one
    /// value per layer. `None` when absent, not an integer, or an array too long to be held.
    pub fn arch_per_layer(&self, suffix: &str, il: u64) -> Option<u64> {
        match self.arch_get(suffix)? {
            MetaValue::Array(a) if a.len == a.head.len() as u64 => {
                a.head.get(usize::try_from(il).ok()?)?.as_u64()
            }
            MetaValue::Array(_) => None,
            other => other.as_u64(),
        }
    }

    /// Total number of elements over all tensors.
    pub fn n_params(&self) -> u64 {
        self.tensors
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.n_elements()))
    }

    /// Total bytes of tensor data (without alignment padding).
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors
            .iter()
            .fold(0u64, |acc, t| acc.saturating_add(t.n_bytes))
    }

    /// Average storage bits per parameter (0.0 for a file without tensors).
    pub fn bits_per_weight(&self) -> f64 {
        match self.n_params() {
            0 => 0.0,
            n => self.tensor_bytes() as f64 * 8.0 / n as f64,
        }
    }

    /// `general.file_type` (a `llama_ftype`; see [`file_type_name`]).
    pub fn file_type(&self) -> Option<u64> {
        self.get_u64("general.file_type")
    }

    /// The encoded value of metadata entry `index` (the bytes after its type id: for an array,
    /// its element type, length and every element), read from `source`, the file or image this
    /// header was parsed from. `None` when `index` is out of range.
    pub fn raw_value<R: Read + Seek + ?Sized>(
        &self,
        source: &mut R,
        index: usize,
    ) -> Option<std::io::Result<Vec<u8>>> {
        let span = self.metadata_spans.get(index)?;
        Some(read_span(source, span))
    }

    /// Why llama.cpp cannot memory-map this file's tensor data, if it cannot: it places each
    /// tensor at its file offset and asserts the first of each buffer is
    /// [`MAPPED_ALIGNMENT`]-byte aligned, which a `general.alignment` below that may not give.
    /// Loaded without a map (read into memory), such a file is fine.
    pub fn unmappable(&self) -> Option<String> {
        let t = self.tensors.iter().find(|t| {
            self.data_offset
                .checked_add(t.offset)
                .is_none_or(|at| at % MAPPED_ALIGNMENT != 0)
        })?;
        Some(format!(
            "tensor '{}' data starts at byte {} (general.alignment is {}), but llama.cpp maps \
             tensor data only at {MAPPED_ALIGNMENT}-byte boundaries (runner bench --mmap off \
             reads it instead)",
            t.name,
            self.data_offset.saturating_add(t.offset),
            self.alignment
        ))
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// The bytes of `span` in `source`.
fn read_span<R: Read + Seek + ?Sized>(
    source: &mut R,
    span: &Range<u64>,
) -> std::io::Result<Vec<u8>> {
    let len = usize::try_from(span.end - span.start)
        .map_err(|_| std::io::Error::from(ErrorKind::OutOfMemory))?;
    source.seek(SeekFrom::Start(span.start))?;
    let mut buf = vec![0u8; len];
    source.read_exact(&mut buf)?;
    Ok(buf)
}
