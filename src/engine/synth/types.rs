//! The type of every tensor for a file type, as llama.cpp's quantizer chooses it (Q4_K_M's
//! Q6_K tensors, fallbacks for rows that are not whole 256-blocks, tensors kept in F32): a
//! dry run of `llama_model_quantize` over a skeleton file (the real header, with a sparse,
//! never-read data section) reports each tensor's target type in llama.cpp's log.

use super::SynthError;
use crate::engine::quant::QuantType;
use crate::gguf::{GgmlType, GgufWriter, MetaValue, TensorData};
use crate::models::catalogue::TensorSpec;
use crate::util::fs::io_err;
use llama_cpp_sys_2 as sys;
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The types llama.cpp gives `specs` when quantizing to `quant`, in the order of `specs`.
/// `dir` holds the skeleton for the duration of the call.
pub fn choose(
    specs: &[TensorSpec],
    metadata: &[(String, MetaValue)],
    quant: &QuantType,
    dir: &Path,
) -> Result<Vec<GgmlType>, SynthError> {
    let mut w = GgufWriter::new();
    for (k, v) in metadata {
        w.set(k, v)?;
    }
    let one = Arc::new(vec![0u8]);
    for s in specs {
        let data = TensorData::Tiled {
            chunk: one.clone(),
            len: super::tensor_bytes(s, s.source_type)?,
        };
        w.add_tensor(&s.name, &s.dims, s.source_type, data)?;
    }
    let skeleton = tempfile::Builder::new()
        .prefix(".skeleton-")
        .suffix(".gguf")
        .tempfile_in(dir)
        .map_err(io_err("create a skeleton file in", dir))?;
    let path = skeleton.path().to_path_buf();
    let (header, size) = (w.header()?, w.file_size()?);
    let mut f = skeleton.as_file();
    f.write_all(&header)
        .and_then(|_| f.set_len(size))
        .map_err(io_err("write the skeleton", &path))?;
    let log = dry_run(&path, quant)?;
    let named = parse_log(&log);
    specs
        .iter()
        .map(|s| {
            named
                .get(s.name.as_str())
                .copied()
                .ok_or_else(|| SynthError::Types {
                    tensor: s.name.clone(),
                    reason: super::super::log::last_reason(),
                })
        })
        .collect()
}

/// Runs llama.cpp's quantizer on `skeleton` without writing anything; returns its log.
fn dry_run(skeleton: &Path, quant: &QuantType) -> Result<String, SynthError> {
    let c_src = CString::new(skeleton.as_os_str().as_encoded_bytes())
        .map_err(|_| io_err("name", skeleton)(std::io::Error::other("NUL in path")))?;
    // SAFETY: takes no arguments and returns a struct by value (its pointer fields null).
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = 1;
    params.ftype = quant.ftype as sys::llama_ftype;
    params.allow_requantize = true;
    params.dry_run = true;
    let _one = super::super::log::quantizer();
    let (rc, log) = super::super::log::capture(|| {
        // SAFETY: the source path is NUL-terminated, the output path too (never opened in a
        // dry run), `params` comes from llama_model_quantize_default_params; all live for the
        // call. The skeleton was written by runner's GGUF writer, so llama.cpp's loader reads a
        // well-formed header; its data section is never read in a dry run.
        unsafe { sys::llama_model_quantize(c_src.as_ptr(), c_src.as_ptr(), &params) }
    });
    if rc != 0 {
        return Err(SynthError::Types {
            tensor: "(all)".into(),
            reason: super::super::log::last_reason(),
        });
    }
    Ok(log)
}

/// Tensor name → chosen type, from lines like
/// `[  12/ 291] blk.0.attn_q.weight - [ 4096,  4096,     1,     1], type =    f16, size =
/// 32.000 MiB ->     9.000 MiB (q4_K)` (converted) or `... type =    f32, size =    0.016 MiB`
/// (kept).
fn parse_log(log: &str) -> HashMap<&str, GgmlType> {
    let re = regex::Regex::new(
        r"(?m)^\[\s*\d+/\s*\d+\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\S+), size =\s*[\d.]+ MiB(?: ->\s*[\d.]+ MiB \((\S+)\))?",
    )
    .expect("a valid pattern");
    re.captures_iter(log)
        .filter_map(|c| {
            let name = c.get(1)?.as_str();
            let ty = c.get(3).or_else(|| c.get(2))?.as_str();
            Some((
                name,
                GgmlType::ALL.iter().copied().find(|t| t.as_str() == ty)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converted_and_kept_tensors_are_read_from_the_log() {
        let log = "[   1/ 291]                    token_embd.weight - [ 4096, 32000,     1,     1], type =    f16, size =   250.000 MiB ->    70.312 MiB (q4_K)\n\
                   [   2/ 291]               blk.0.attn_norm.weight - [ 4096,     1,     1,     1], type =    f32, size =    0.016 MiB\n\
                   llama_model_quantize_impl: something else\n";
        let m = parse_log(log);
        assert_eq!(m["token_embd.weight"], GgmlType::Q4_K);
        assert_eq!(m["blk.0.attn_norm.weight"], GgmlType::F32);
        assert_eq!(m.len(), 2);
    }
}
