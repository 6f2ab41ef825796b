//! Bounds-checked little-endian parser for the GGUF header, metadata and tensor-info table.
//!
//! Every read is checked against the known file size before any bytes are read or any
//! memory is allocated, so a corrupt length (say 10^18) fails cleanly instead of allocating.
//! The checks mirror `gguf_init_from_file_impl` in llama.cpp's ggml/src/gguf.cpp, so a file
//! that passes here is not refused (or aborted on) by llama.cpp's GGUF loader.

use std::collections::HashSet;
use std::io::{BufReader, ErrorKind, Read, Seek};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::types::{
    ArrayValue, GgmlType, MetaValue, TensorInfo, ValueType, ARRAY_HEAD_LEN, NUMBER_ARRAY_HEAD_LEN,
};
use super::vocab::{Tokens, TOKENS_KEY};
use super::{GgufError, GgufFile};

const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Whether `path` is an existing file that starts with the GGUF magic: a model, which an
/// output of another kind (a table, records) must never replace.
pub fn is_model_file(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
        && magic == GGUF_MAGIC
}
/// `GGUF_DEFAULT_ALIGNMENT` in gguf.h.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// `GGML_MAX_DIMS` in ggml.h.
pub(super) const MAX_DIMS: u32 = 4;
/// `GGML_MAX_NAME` in ggml.h: a tensor name must be shorter than this.
pub(super) const MAX_TENSOR_NAME: usize = 64;
/// `GGUF_MAX_STRING_LENGTH` and `GGUF_MAX_ARRAY_ELEMENTS` in gguf.cpp.
const MAX_STRING_LEN: u64 = 1 << 30;
const MAX_ARRAY_LEN: u64 = 1 << 30;

/// A low-level read failure, before it is given context.
enum Short {
    Eof,
    Io(std::io::Error),
}

fn short(e: std::io::Error) -> Short {
    if e.kind() == ErrorKind::UnexpectedEof {
        Short::Eof
    } else {
        Short::Io(e)
    }
}

/// A buffered reader that knows its position and the file size (`pos <= size` always holds).
struct Reader<R> {
    inner: BufReader<R>,
    pos: u64,
    size: u64,
    path: PathBuf,
}

impl<R: Read + Seek> Reader<R> {
    fn ensure(&self, n: u64) -> Result<(), Short> {
        if n > self.size - self.pos {
            Err(Short::Eof)
        } else {
            Ok(())
        }
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        self.ensure(N as u64)?;
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b).map_err(short)?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, Short> {
        self.fixed().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Short> {
        self.fixed().map(u64::from_le_bytes)
    }

    /// Reads `n` bytes; checks `n` against the remaining file before allocating.
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, Short> {
        self.ensure(n)?;
        let len = usize::try_from(n).map_err(|_| Short::Io(ErrorKind::OutOfMemory.into()))?;
        let mut v = vec![0u8; len];
        self.inner.read_exact(&mut v).map_err(short)?;
        self.pos += n;
        Ok(v)
    }

    fn skip(&mut self, n: u64) -> Result<(), Short> {
        self.ensure(n)?;
        let off = i64::try_from(n).map_err(|_| Short::Eof)?;
        self.inner.seek_relative(off).map_err(Short::Io)?;
        self.pos += n;
        Ok(())
    }
}

impl<R> Reader<R> {
    fn invalid(&self, reason: impl Into<String>) -> GgufError {
        GgufError::Invalid {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }
}

/// Attaches "what was being read" to a low-level read failure.
trait Ctx<T> {
    fn ctx<R>(self, rd: &Reader<R>, what: impl FnOnce() -> String) -> Result<T, GgufError>;
}

impl<T> Ctx<T> for Result<T, Short> {
    fn ctx<R>(self, rd: &Reader<R>, what: impl FnOnce() -> String) -> Result<T, GgufError> {
        self.map_err(|e| match e {
            Short::Eof => GgufError::Truncated {
                path: rd.path.clone(),
                offset: rd.size,
                what: what(),
            },
            Short::Io(err) => GgufError::Io {
                path: rd.path.clone(),
                err,
            },
        })
    }
}

type What<'a> = &'a dyn Fn() -> String;

/// Parses a whole GGUF header from `inner` (positioned at the file start) and checks
/// that every tensor's data lies within `file_size` bytes.
pub(super) fn parse<R: Read + Seek>(
    inner: R,
    file_size: u64,
    path: &Path,
) -> Result<GgufFile, GgufError> {
    let rd = &mut Reader {
        inner: BufReader::with_capacity(1 << 16, inner),
        pos: 0,
        size: file_size,
        path: path.to_path_buf(),
    };
    let version = read_preamble(rd)?;
    let n_tensors = read_count(rd, "tensors")?;
    let n_kv = read_count(rd, "metadata entries")?;
    let (metadata, metadata_spans, tokens) = read_metadata(rd, n_kv)?;
    let alignment = alignment_of(rd, &metadata)?;
    let tensors = read_tensor_infos(rd, n_tensors)?;
    let data_offset = if tensors.is_empty() {
        rd.pos
    } else {
        rd.pos
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| rd.invalid("data section offset overflows"))?
    };
    let data_end = check_extents(rd, &tensors, data_offset, alignment)?;
    let file = GgufFile {
        version,
        file_size,
        alignment,
        data_offset,
        data_end,
        metadata,
        metadata_spans,
        tensors,
    };
    super::limits::check(&file).map_err(|reason| rd.invalid(reason))?;
    super::vocab::check(&file, &tokens).map_err(|reason| rd.invalid(reason))?;
    Ok(file)
}

fn read_preamble<R: Read + Seek>(rd: &mut Reader<R>) -> Result<u32, GgufError> {
    let magic: [u8; 4] = rd.fixed().ctx(rd, || "the magic number".into())?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic {
            path: rd.path.clone(),
            magic,
        });
    }
    let version = rd.u32().ctx(rd, || "the GGUF version".into())?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion {
            path: rd.path.clone(),
            version,
        });
    }
    Ok(version)
}

fn read_count<R: Read + Seek>(rd: &mut Reader<R>, what: &str) -> Result<u64, GgufError> {
    let n = rd.u64().ctx(rd, || format!("the number of {what}"))?;
    if n > rd.size {
        return Err(rd.invalid(format!(
            "truncated or corrupt: the header claims {n} {what}, but the whole file has only {} bytes",
            rd.size
        )));
    }
    Ok(n)
}

/// Reads a GGUF string (u64 length + bytes) as raw bytes, refusing absurd lengths.
fn read_string_bytes<R: Read + Seek>(rd: &mut Reader<R>, what: What) -> Result<Vec<u8>, GgufError> {
    let len = rd.u64().ctx(rd, || format!("the length of {}", what()))?;
    if len > rd.size {
        return Err(rd.invalid(format!(
            "{} has length {len}, larger than the whole file ({} bytes)",
            what(),
            rd.size
        )));
    }
    if len > MAX_STRING_LEN {
        return Err(rd.invalid(format!(
            "{} has length {len}, over llama.cpp's limit of {MAX_STRING_LEN}",
            what()
        )));
    }
    rd.bytes(len).ctx(rd, what)
}

/// Reads a string that must be valid UTF-8 (keys and tensor names).
fn read_name<R: Read + Seek>(rd: &mut Reader<R>, what: What) -> Result<String, GgufError> {
    let bytes = read_string_bytes(rd, what)?;
    String::from_utf8(bytes).map_err(|e| rd.invalid(format!("{} is not valid UTF-8: {e}", what())))
}

/// Metadata entries in file order, where each value's encoding (after its type id) lies, and
/// every string of the vocabulary.
type Metadata = (Vec<(String, MetaValue)>, Vec<Range<u64>>, Tokens);

fn read_metadata<R: Read + Seek>(rd: &mut Reader<R>, n_kv: u64) -> Result<Metadata, GgufError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut spans = Vec::new();
    let mut tokens = Tokens::default();
    for i in 0..n_kv {
        let key = read_name(rd, &|| format!("the key of metadata entry {i}"))?;
        if key.is_empty() {
            return Err(rd.invalid(format!("metadata entry {i} has an empty key")));
        }
        if !seen.insert(key.clone()) {
            return Err(rd.invalid(format!("duplicate metadata key '{key}'")));
        }
        let type_id = rd.u32().ctx(rd, || format!("the type of key '{key}'"))?;
        let ty = ValueType::from_id(type_id)
            .ok_or_else(|| rd.invalid(format!("key '{key}' has unknown value type {type_id}")))?;
        let start = rd.pos;
        let value = if ty == ValueType::Array {
            let all = (key == TOKENS_KEY).then_some(&mut tokens);
            read_array(rd, &key, all)?
        } else {
            read_scalar(rd, ty, &|| format!("the value of key '{key}'"))?
        };
        spans.push(start..rd.pos);
        out.push((key, value));
    }
    Ok((out, spans, tokens))
}

/// Reads one non-array value. String values are decoded lossily (llama.cpp does not check UTF-8).
fn read_scalar<R: Read + Seek>(
    rd: &mut Reader<R>,
    ty: ValueType,
    what: What,
) -> Result<MetaValue, GgufError> {
    Ok(match ty {
        ValueType::U8 => MetaValue::U8(u8::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::I8 => MetaValue::I8(i8::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::U16 => MetaValue::U16(u16::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::I16 => MetaValue::I16(i16::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::U32 => MetaValue::U32(u32::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::I32 => MetaValue::I32(i32::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::F32 => MetaValue::F32(f32::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::Bool => MetaValue::Bool(rd.fixed::<1>().ctx(rd, what)?[0] != 0),
        ValueType::U64 => MetaValue::U64(u64::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::I64 => MetaValue::I64(i64::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::F64 => MetaValue::F64(f64::from_le_bytes(rd.fixed().ctx(rd, what)?)),
        ValueType::Str => {
            let bytes = read_string_bytes(rd, what)?;
            MetaValue::Str(String::from_utf8_lossy(&bytes).into_owned())
        }
        ValueType::Array => return Err(rd.invalid(format!("{} is a nested array", what()))),
    })
}

/// Reads an array: keeps the first [`ARRAY_HEAD_LEN`] strings or [`NUMBER_ARRAY_HEAD_LEN`]
/// other elements, bounds-checks and skips the rest.
/// An array of strings read into `all` keeps every string there as well.
fn read_array<R: Read + Seek>(
    rd: &mut Reader<R>,
    key: &str,
    all: Option<&mut Tokens>,
) -> Result<MetaValue, GgufError> {
    let type_id = rd
        .u32()
        .ctx(rd, || format!("the element type of array '{key}'"))?;
    let elem_type = ValueType::from_id(type_id)
        .ok_or_else(|| rd.invalid(format!("array '{key}' has unknown element type {type_id}")))?;
    if elem_type == ValueType::Array {
        return Err(rd.invalid(format!(
            "array '{key}' holds arrays, which llama.cpp does not support"
        )));
    }
    let len = rd
        .u64()
        .ctx(rd, || format!("the length of array '{key}'"))?;
    // A string element takes at least its 8-byte length prefix.
    let min_elem = elem_type.fixed_size().unwrap_or(8);
    match len.checked_mul(min_elem) {
        Some(min_bytes) if min_bytes <= rd.size && len <= MAX_ARRAY_LEN => {}
        _ => {
            return Err(rd.invalid(format!(
                "array '{key}' claims {len} elements of type {}, too many for a file of {} bytes",
                elem_type.as_str(),
                rd.size
            )))
        }
    }
    let keep = len.min(match elem_type {
        ValueType::Str => ARRAY_HEAD_LEN,
        _ => NUMBER_ARRAY_HEAD_LEN,
    } as u64);
    if let (Some(all), ValueType::Str) = (all, elem_type) {
        let mut head = Vec::new();
        for i in 0..len {
            let bytes = read_string_bytes(rd, &|| format!("element {i} of array '{key}'"))?;
            if i < keep {
                head.push(MetaValue::Str(String::from_utf8_lossy(&bytes).into_owned()));
            }
            all.push(&bytes);
        }
        return Ok(MetaValue::Array(ArrayValue {
            elem_type,
            len,
            head,
        }));
    }
    let head = (0..keep)
        .map(|i| read_scalar(rd, elem_type, &|| format!("element {i} of array '{key}'")))
        .collect::<Result<_, _>>()?;
    skip_elements(rd, key, elem_type, keep, len)?;
    Ok(MetaValue::Array(ArrayValue {
        elem_type,
        len,
        head,
    }))
}

/// Skips array elements `from..len` without keeping them, checking every length.
fn skip_elements<R: Read + Seek>(
    rd: &mut Reader<R>,
    key: &str,
    elem_type: ValueType,
    from: u64,
    len: u64,
) -> Result<(), GgufError> {
    if let Some(size) = elem_type.fixed_size() {
        // len * size was checked against the file size by the caller.
        let n = (len - from).saturating_mul(size);
        return rd
            .skip(n)
            .ctx(rd, || format!("elements {from}..{len} of array '{key}'"));
    }
    for i in from..len {
        let what = || format!("element {i} of array '{key}'");
        let n = rd.u64().ctx(rd, || format!("the length of {}", what()))?;
        if n > rd.size || n > MAX_STRING_LEN {
            return Err(rd.invalid(format!("{} has absurd length {n}", what())));
        }
        rd.skip(n).ctx(rd, what)?;
    }
    Ok(())
}

/// `general.alignment`: must be a u32 power of two (as gguf.cpp requires); 32 if absent.
fn alignment_of<R>(rd: &Reader<R>, metadata: &[(String, MetaValue)]) -> Result<u64, GgufError> {
    let Some((_, value)) = metadata.iter().find(|(k, _)| k == "general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let MetaValue::U32(a) = *value else {
        return Err(rd.invalid(format!(
            "general.alignment must be of type u32 but is {}",
            value.value_type().as_str()
        )));
    };
    if !a.is_power_of_two() {
        return Err(rd.invalid(format!("general.alignment {a} is not a power of 2")));
    }
    Ok(a.into())
}

fn read_tensor_infos<R: Read + Seek>(
    rd: &mut Reader<R>,
    n_tensors: u64,
) -> Result<Vec<TensorInfo>, GgufError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for i in 0..n_tensors {
        let t = read_tensor_info(rd, i)?;
        if !seen.insert(t.name.clone()) {
            return Err(rd.invalid(format!("duplicate tensor name '{}'", t.name)));
        }
        out.push(t);
    }
    Ok(out)
}

fn read_tensor_info<R: Read + Seek>(rd: &mut Reader<R>, i: u64) -> Result<TensorInfo, GgufError> {
    let name = read_name(rd, &|| format!("the name of tensor {i}"))?;
    if name.len() >= MAX_TENSOR_NAME {
        return Err(rd.invalid(format!(
            "tensor name '{name}' is {} bytes long; ggml allows at most {}",
            name.len(),
            MAX_TENSOR_NAME - 1
        )));
    }
    let n_dims = rd
        .u32()
        .ctx(rd, || format!("the dimension count of tensor '{name}'"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(rd.invalid(format!(
            "tensor '{name}' has {n_dims} dimensions (must be 1 to {MAX_DIMS})"
        )));
    }
    let dims = (0..n_dims)
        .map(|d| {
            rd.u64()
                .ctx(rd, || format!("dimension {d} of tensor '{name}'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_dims(rd, &name, &dims)?;
    let type_id = rd
        .u32()
        .ctx(rd, || format!("the type of tensor '{name}'"))?;
    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        path: rd.path.clone(),
        tensor: name.clone(),
        type_id,
    })?;
    let n_bytes = ggml_type
        .n_bytes(&dims)
        .map_err(|reason| rd.invalid(format!("tensor '{name}' {dims:?}: {reason}")))?;
    let offset = rd
        .u64()
        .ctx(rd, || format!("the data offset of tensor '{name}'"))?;
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
        n_bytes,
    })
}

/// Every dimension must be non-zero and the element count must fit in an i64 (as in ggml).
fn check_dims<R>(rd: &Reader<R>, name: &str, dims: &[u64]) -> Result<(), GgufError> {
    if dims.contains(&0) {
        return Err(rd.invalid(format!("tensor '{name}' has a zero dimension {dims:?}")));
    }
    let count = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    match count {
        Some(n) if n <= i64::MAX as u64 => Ok(()),
        _ => Err(rd.invalid(format!(
            "tensor '{name}' has an element count that overflows: {dims:?}"
        ))),
    }
}

/// Checks tensor offsets (aligned, packed in table order as llama.cpp requires) and that each
/// tensor's data lies inside the file. Returns the end of the last byte of tensor data.
fn check_extents<R>(
    rd: &Reader<R>,
    tensors: &[TensorInfo],
    data_offset: u64,
    alignment: u64,
) -> Result<u64, GgufError> {
    let mut expected = 0u64;
    let mut data_end = data_offset;
    for t in tensors {
        if t.offset % alignment != 0 {
            return Err(rd.invalid(format!(
                "tensor '{}' data offset {} is not a multiple of the alignment {alignment}",
                t.name, t.offset
            )));
        }
        if t.offset != expected {
            return Err(rd.invalid(format!(
                "tensor '{}' data offset is {} but llama.cpp expects {expected} \
                 (tensor data must be packed in table order)",
                t.name, t.offset
            )));
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|x| x.checked_add(t.n_bytes))
            .ok_or_else(|| rd.invalid(format!("tensor '{}' data end overflows", t.name)))?;
        if end > rd.size {
            return Err(GgufError::TensorDataOutOfBounds {
                path: rd.path.clone(),
                tensor: t.name.clone(),
                end,
                file_size: rd.size,
            });
        }
        data_end = data_end.max(end);
        expected = t
            .n_bytes
            .checked_next_multiple_of(alignment)
            .and_then(|n| expected.checked_add(n))
            .ok_or_else(|| rd.invalid(format!("tensor '{}' size overflows", t.name)))?;
    }
    Ok(data_end)
}
