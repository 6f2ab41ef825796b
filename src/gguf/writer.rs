//! GGUF v3 writer: metadata, the tensor-info table and aligned tensor data, streamed to any
//! `Write`.
//!
//! Metadata values are encoded from [`MetaValue`]s (arrays only when complete) or copied as raw
//! encoded bytes from another file ([`GgufFile::raw_value`](super::GgufFile::raw_value)), so a
//! tokenizer's 50k-entry arrays pass through unchanged. Tensor data comes from memory or from
//! byte ranges of a source file, copied in chunks (optionally several times in a row): a
//! multi-GB model is never held in memory. The layout follows gguf.cpp's `gguf_write_to_buf`:
//! header, key/values, tensor infos, padding to the alignment, then each tensor's data padded
//! to the alignment, offsets packed in table order.

use super::reader::{DEFAULT_ALIGNMENT, MAX_DIMS, MAX_TENSOR_NAME};
use super::types::{GgmlType, MetaValue, ValueType};
use std::io::{Read, Seek, SeekFrom, Write};

/// Bytes copied from a source per read when streaming tensor data.
const COPY_CHUNK: usize = 1 << 20;

/// Why a GGUF image could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("metadata key '{key}': {reason}")]
    BadValue { key: String, reason: String },
    #[error("tensor '{name}': {reason}")]
    BadTensor { name: String, reason: String },
    #[error("tensor '{0}' is added twice")]
    DuplicateTensor(String),
    #[error("tensor '{0}' copies from a source file, but none was given")]
    NoSource(String),
    #[error("cannot write the GGUF file: {0}")]
    Io(#[from] std::io::Error),
}

/// Where a tensor's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorData {
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// `len` bytes at absolute offset `offset` of the source file, written `repeat` times in
    /// a row (an expert tensor is its dense tensor repeated once per expert).
    Source { offset: u64, len: u64, repeat: u64 },
    /// `len` bytes made of `chunk` repeated (the last copy cut short): a large tensor filled
    /// with a few rows of generated values. `chunk` must not be empty.
    Tiled {
        chunk: std::sync::Arc<Vec<u8>>,
        len: u64,
    },
}

/// One metadata entry, already encoded (the bytes after its type id).
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    ty: ValueType,
    encoded: Vec<u8>,
}

/// One tensor to write.
#[derive(Debug, Clone)]
struct Tensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    n_bytes: u64,
    data: TensorData,
}

/// A GGUF image being assembled: metadata in insertion order, tensors in table order.
#[derive(Debug, Clone, Default)]
pub struct GgufWriter {
    metadata: Vec<Entry>,
    tensors: Vec<Tensor>,
}

/// Anything tensor data can be copied from: a `File`, or a `Cursor` in tests.
pub trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Sets `key` to `value`: replaces an existing entry in place, or appends a new one.
    /// Arrays must be complete (`head` holds all `len` elements) and of one scalar type.
    pub fn set(&mut self, key: &str, value: &MetaValue) -> Result<(), WriteError> {
        let bad = |reason: String| WriteError::BadValue {
            key: key.to_string(),
            reason,
        };
        let mut encoded = Vec::new();
        encode_value(&mut encoded, value).map_err(bad)?;
        self.set_raw(key, value.value_type(), encoded)
    }

    /// Sets `key` to an already encoded value of type `ty`, as read by
    /// [`GgufFile::raw_value`](super::GgufFile::raw_value) (replacing an existing entry in place).
    pub fn set_raw(
        &mut self,
        key: &str,
        ty: ValueType,
        encoded: Vec<u8>,
    ) -> Result<(), WriteError> {
        if key.is_empty() {
            return Err(WriteError::BadValue {
                key: key.into(),
                reason: "empty key".into(),
            });
        }
        let entry = Entry {
            key: key.to_string(),
            ty,
            encoded,
        };
        match self.metadata.iter_mut().find(|e| e.key == key) {
            Some(e) => *e = entry,
            None => self.metadata.push(entry),
        }
        Ok(())
    }

    /// Removes `key` if present; says whether it was.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.metadata.len();
        self.metadata.retain(|e| e.key != key);
        self.metadata.len() != before
    }

    /// Appends a tensor. Its data must hold exactly the bytes its type and dims take.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ggml_type: GgmlType,
        data: TensorData,
    ) -> Result<(), WriteError> {
        let bad = |reason: String| WriteError::BadTensor {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() || name.len() >= MAX_TENSOR_NAME {
            return Err(bad(format!(
                "a name must be 1 to {} bytes long",
                MAX_TENSOR_NAME - 1
            )));
        }
        if dims.is_empty() || dims.len() > MAX_DIMS as usize || dims.contains(&0) {
            return Err(bad(format!("bad dimensions {dims:?}")));
        }
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(WriteError::DuplicateTensor(name.to_string()));
        }
        let n_bytes = ggml_type.n_bytes(dims).map_err(bad)?;
        let have = match &data {
            TensorData::Bytes(b) => Some(b.len() as u64),
            TensorData::Source { len, repeat, .. } => len.checked_mul(*repeat),
            TensorData::Tiled { chunk, len } => (!chunk.is_empty()).then_some(*len),
        };
        if have != Some(n_bytes) {
            return Err(bad(format!(
                "{ggml_type} {dims:?} takes {n_bytes} bytes, but the data holds {have:?}"
            )));
        }
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ggml_type,
            n_bytes,
            data,
        });
        Ok(())
    }

    /// The data alignment: `general.alignment` when set (a u32 power of two), else 32.
    pub fn alignment(&self) -> Result<u64, WriteError> {
        let Some(e) = self.metadata.iter().find(|e| e.key == "general.alignment") else {
            return Ok(DEFAULT_ALIGNMENT);
        };
        let bad = |reason: &str| WriteError::BadValue {
            key: e.key.clone(),
            reason: reason.into(),
        };
        let bytes: [u8; 4] = match (e.ty, e.encoded.as_slice().try_into()) {
            (ValueType::U32, Ok(b)) => b,
            _ => return Err(bad("must be a u32")),
        };
        let a = u32::from_le_bytes(bytes);
        if !a.is_power_of_two() {
            return Err(bad("must be a power of 2"));
        }
        Ok(a.into())
    }

    /// The header: magic, version, counts, key/values and tensor infos, padded to the
    /// alignment (the start of the data section).
    pub fn header(&self) -> Result<Vec<u8>, WriteError> {
        let alignment = self.alignment()?;
        let mut b = b"GGUF".to_vec();
        put_u32(&mut b, 3);
        put_u64(&mut b, self.tensors.len() as u64);
        put_u64(&mut b, self.metadata.len() as u64);
        for e in &self.metadata {
            put_str(&mut b, e.key.as_bytes());
            put_u32(&mut b, e.ty.id());
            b.extend_from_slice(&e.encoded);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut b, t.name.as_bytes());
            put_u32(&mut b, t.dims.len() as u32);
            t.dims.iter().for_each(|&d| put_u64(&mut b, d));
            put_u32(&mut b, t.ggml_type.id());
            put_u64(&mut b, offset);
            offset += t.n_bytes.next_multiple_of(alignment);
        }
        b.resize((b.len() as u64).next_multiple_of(alignment) as usize, 0);
        Ok(b)
    }

    /// The size of the file [`GgufWriter::write_to`] writes.
    pub fn file_size(&self) -> Result<u64, WriteError> {
        let alignment = self.alignment()?;
        let data: u64 = self
            .tensors
            .iter()
            .map(|t| t.n_bytes.next_multiple_of(alignment))
            .sum();
        Ok(self.header()?.len() as u64 + data)
    }

    /// Writes the whole image to `out`, copying [`TensorData::Source`] ranges from `source`.
    /// Returns the number of bytes written.
    pub fn write_to<W: Write>(
        &self,
        out: &mut W,
        mut source: Option<&mut dyn Source>,
    ) -> Result<u64, WriteError> {
        let alignment = self.alignment()?;
        let header = self.header()?;
        out.write_all(&header)?;
        let mut written = header.len() as u64;
        let mut buf = Vec::new();
        for t in &self.tensors {
            match &t.data {
                TensorData::Bytes(b) => out.write_all(b)?,
                TensorData::Source {
                    offset,
                    len,
                    repeat,
                } => {
                    let src = source
                        .as_deref_mut()
                        .ok_or_else(|| WriteError::NoSource(t.name.clone()))?;
                    for _ in 0..*repeat {
                        copy_range(src, *offset, *len, out, &mut buf)?;
                    }
                }
                TensorData::Tiled { chunk, len } => {
                    let mut left = *len;
                    while left > 0 {
                        let n = chunk
                            .len()
                            .min(usize::try_from(left).unwrap_or(chunk.len()));
                        out.write_all(&chunk[..n])?;
                        left -= n as u64;
                    }
                }
            }
            let pad = t.n_bytes.next_multiple_of(alignment) - t.n_bytes;
            out.write_all(&vec![0u8; pad as usize])?;
            written += t.n_bytes + pad;
        }
        out.flush()?;
        Ok(written)
    }
}

/// Copies `len` bytes at `offset` of `src` to `out` through `buf`, in chunks.
fn copy_range<W: Write>(
    src: &mut dyn Source,
    offset: u64,
    len: u64,
    out: &mut W,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    src.seek(SeekFrom::Start(offset))?;
    buf.resize(COPY_CHUNK, 0);
    let mut left = len;
    while left > 0 {
        let n = COPY_CHUNK.min(usize::try_from(left).unwrap_or(COPY_CHUNK));
        src.read_exact(&mut buf[..n])?;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    put_u64(b, s.len() as u64);
    b.extend_from_slice(s);
}

/// Appends the encoding of `v` (without its type id); a reason when it cannot be encoded.
fn encode_value(b: &mut Vec<u8>, v: &MetaValue) -> Result<(), String> {
    match v {
        MetaValue::U8(x) => b.push(*x),
        MetaValue::I8(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => put_u32(b, *x),
        MetaValue::I32(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => b.push(u8::from(*x)),
        MetaValue::Str(s) => put_str(b, s.as_bytes()),
        MetaValue::U64(x) => put_u64(b, *x),
        MetaValue::I64(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => b.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Array(a) => {
            if a.elem_type == ValueType::Array {
                return Err("arrays of arrays are not supported".into());
            }
            if a.head.len() as u64 != a.len {
                return Err(format!(
                    "array holds {} of its {} elements; only complete arrays can be written \
                     (copy large arrays raw)",
                    a.head.len(),
                    a.len
                ));
            }
            put_u32(b, a.elem_type.id());
            put_u64(b, a.len);
            for (i, x) in a.head.iter().enumerate() {
                if x.value_type() != a.elem_type {
                    return Err(format!(
                        "element {i} is {}, not {}",
                        x.value_type().as_str(),
                        a.elem_type.as_str()
                    ));
                }
                encode_value(b, x)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
