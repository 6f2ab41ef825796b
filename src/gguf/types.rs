//! GGUF value and tensor types: metadata values, ggml tensor types and llama ftype names.

use serde::Serialize;

/// How many leading elements of a metadata array of strings are kept in memory.
/// Tokenizer arrays hold 50k-260k entries; the rest are bounds-checked and skipped.
pub const ARRAY_HEAD_LEN: usize = 16;
/// How many leading elements of an array of numbers or booleans are kept: a value for each
/// of the most layers llama.cpp loads ([`MAX_LAYERS`](super::limits::MAX_LAYERS)), so that
/// per-layer arrays (head counts, sliding-window patterns) are held whole.
pub const NUMBER_ARRAY_HEAD_LEN: usize = 512;

crate::util::names::named_enum! {
    /// The type tag of a GGUF metadata value (`gguf_type` in gguf.h), in id order, named as
    /// gguf.cpp's `gguf_type_name` spells them.
    pub enum ValueType {
        U8 = "u8",
        I8 = "i8",
        U16 = "u16",
        I16 = "i16",
        U32 = "u32",
        I32 = "i32",
        F32 = "f32",
        Bool = "bool",
        Str = "str",
        Array = "arr",
        U64 = "u64",
        I64 = "i64",
        F64 = "f64",
    }
}

impl ValueType {
    /// Maps the on-disk type id to a value type; `None` for ids GGUF does not define.
    pub fn from_id(id: u32) -> Option<ValueType> {
        ValueType::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The on-disk type id (`gguf_type` in gguf.h).
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Encoded size of one value, or `None` for variable-size types (strings, arrays).
    pub fn fixed_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            Str | Array => None,
        }
    }
}

/// One metadata value. Serialized untagged (a JSON number, string, bool or array summary).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(ArrayValue),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array: its element type and length, plus at most [`ARRAY_HEAD_LEN`] leading
/// strings or [`NUMBER_ARRAY_HEAD_LEN`] leading numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayValue {
    pub elem_type: ValueType,
    pub len: u64,
    /// The first `min(len, ARRAY_HEAD_LEN)` strings or `min(len, NUMBER_ARRAY_HEAD_LEN)`
    /// other elements.
    pub head: Vec<MetaValue>,
}

impl MetaValue {
    /// The value as an unsigned integer: any integer type with a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value's GGUF type.
    pub fn value_type(&self) -> ValueType {
        match self {
            MetaValue::U8(_) => ValueType::U8,
            MetaValue::I8(_) => ValueType::I8,
            MetaValue::U16(_) => ValueType::U16,
            MetaValue::I16(_) => ValueType::I16,
            MetaValue::U32(_) => ValueType::U32,
            MetaValue::I32(_) => ValueType::I32,
            MetaValue::F32(_) => ValueType::F32,
            MetaValue::Bool(_) => ValueType::Bool,
            MetaValue::Str(_) => ValueType::Str,
            MetaValue::Array(_) => ValueType::Array,
            MetaValue::U64(_) => ValueType::U64,
            MetaValue::I64(_) => ValueType::I64,
            MetaValue::F64(_) => ValueType::F64,
        }
    }
}

/// Declares [`GgmlType`], named as ggml's `type_name` spells it (e.g. "f32", "q4_0", "q4_K",
/// "iq4_xs", "bf16"), and its table from one list of (variant = ggml id, type_name, block
/// size, bytes per block).
macro_rules! ggml_types {
    ($($variant:ident = $id:literal, $name:literal, $block:literal, $size:literal;)+) => {
        crate::util::names::named_enum! {
            /// A ggml tensor type that may appear in a GGUF file (`enum ggml_type` in ggml.h).
            /// Removed ids (4, 5, 31-33, 36-38) are deliberately absent.
            #[allow(non_camel_case_types)]
            pub enum GgmlType {
                $($variant = $name),+
            }
        }

        /// Every type's ggml id, block size and bytes per block, in declaration order.
        const GGML_TYPES: &[(u32, u64, u64)] = &[$(($id, $block, $size)),+];
    };
}

// From ggml.c `type_traits` and the block structs in ggml-common.h (llama.cpp bundled with
// llama-cpp-sys-2 0.1.161).
ggml_types! {
    F32 = 0, "f32", 1, 4;
    F16 = 1, "f16", 1, 2;
    Q4_0 = 2, "q4_0", 32, 18;
    Q4_1 = 3, "q4_1", 32, 20;
    Q5_0 = 6, "q5_0", 32, 22;
    Q5_1 = 7, "q5_1", 32, 24;
    Q8_0 = 8, "q8_0", 32, 34;
    Q8_1 = 9, "q8_1", 32, 36;
    Q2_K = 10, "q2_K", 256, 84;
    Q3_K = 11, "q3_K", 256, 110;
    Q4_K = 12, "q4_K", 256, 144;
    Q5_K = 13, "q5_K", 256, 176;
    Q6_K = 14, "q6_K", 256, 210;
    Q8_K = 15, "q8_K", 256, 292;
    IQ2_XXS = 16, "iq2_xxs", 256, 66;
    IQ2_XS = 17, "iq2_xs", 256, 74;
    IQ3_XXS = 18, "iq3_xxs", 256, 98;
    IQ1_S = 19, "iq1_s", 256, 50;
    IQ4_NL = 20, "iq4_nl", 32, 18;
    IQ3_S = 21, "iq3_s", 256, 110;
    IQ2_S = 22, "iq2_s", 256, 82;
    IQ4_XS = 23, "iq4_xs", 256, 136;
    I8 = 24, "i8", 1, 1;
    I16 = 25, "i16", 1, 2;
    I32 = 26, "i32", 1, 4;
    I64 = 27, "i64", 1, 8;
    F64 = 28, "f64", 1, 8;
    IQ1_M = 29, "iq1_m", 256, 56;
    BF16 = 30, "bf16", 1, 2;
    TQ1_0 = 34, "tq1_0", 256, 54;
    TQ2_0 = 35, "tq2_0", 256, 66;
    MXFP4 = 39, "mxfp4", 32, 17;
    NVFP4 = 40, "nvfp4", 64, 36;
    Q1_0 = 41, "q1_0", 128, 18;
    Q2_0 = 42, "q2_0", 64, 18;
}

impl GgmlType {
    /// Maps a ggml type id to a type; `None` for removed or unknown ids.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.iter().copied().find(|t| t.id() == id)
    }

    fn row(self) -> &'static (u32, u64, u64) {
        // The table holds every variant exactly once, in declaration order.
        &GGML_TYPES[self as usize]
    }

    /// The ggml type id as stored in the file.
    pub fn id(&self) -> u32 {
        self.row().0
    }

    /// Elements per block (1 for plain types, 32 or 256 for most quantized ones).
    pub fn block_size(&self) -> u64 {
        self.row().1
    }

    /// Bytes per block.
    pub fn type_size(&self) -> u64 {
        self.row().2
    }

    /// Storage bits per element, e.g. 4.5 for q4_K, 8.5 for q8_0.
    pub fn bits_per_weight(&self) -> f64 {
        (self.type_size() * 8) as f64 / self.block_size() as f64
    }

    /// Whether the type is block-quantized (block size > 1).
    pub fn is_quantized(&self) -> bool {
        self.block_size() > 1
    }

    /// Bytes taken by a tensor of this type with the given dims (ne0 first).
    /// Errors (as a reason string) if ne0 is not a multiple of the block size or the size overflows.
    pub fn n_bytes(&self, dims: &[u64]) -> Result<u64, String> {
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % self.block_size() != 0 {
            return Err(format!(
                "row length {ne0} is not a multiple of the {} block size {}",
                self.as_str(),
                self.block_size()
            ));
        }
        let mut n = (ne0 / self.block_size())
            .checked_mul(self.type_size())
            .ok_or_else(|| "byte size overflows".to_string())?;
        for &d in dims.iter().skip(1) {
            n = n
                .checked_mul(d)
                .ok_or_else(|| "byte size overflows".to_string())?;
        }
        Ok(n)
    }
}

/// One entry of the tensor-info table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    /// ne0 first (ne0 is the row length), as in ggml.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the tensor data relative to the start of the data section.
    pub offset: u64,
    /// Size of the tensor data in bytes.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements (product of dims; validated at parse time not to overflow).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }
}

/// Short name of a `general.file_type` value (`enum llama_ftype` in llama.h without the
/// `LLAMA_FTYPE_MOSTLY_` prefix), e.g. 15 -> "Q4_K_M". `None` for unknown or removed values.
pub fn file_type_name(ftype: u64) -> Option<&'static str> {
    Some(match ftype {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return None,
    })
}
