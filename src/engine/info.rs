//! What the linked llama.cpp build is: version, the CPU/GPU features it uses, its devices.

use llama_cpp_sys_2 as sys;
use serde::{Deserialize, Serialize};
use std::ffi::{c_char, CStr};

/// Which llama.cpp build ran the test.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The bindings and the llama.cpp they vendor, e.g. `llama-cpp-sys-2 0.1.161`.
    pub llama_cpp: String,
    pub ggml_version: String,
    pub ggml_commit: String,
    /// llama.cpp's `llama_print_system_info()` line.
    pub system_info: String,
    /// CPU and backend features the build uses (AVX2, NEON, METAL, ...).
    pub features: Vec<String>,
    /// Compute devices llama.cpp sees.
    pub devices: Vec<DeviceInfo>,
}

/// A compute device llama.cpp sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    pub backend: String,
    pub memory_total_bytes: u64,
}

/// The bindings that carry llama.cpp, as pinned in Cargo.toml.
pub const BINDINGS: &str = "llama-cpp-2 0.1.160 / llama-cpp-sys-2 0.1.161";

fn c_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: non-null pointers from llama.cpp/ggml point to static NUL-terminated strings.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}

/// Features switched on in a system-info line (`NAME = 1`), plus backend names (`Metal : ...`).
pub fn features_of(system_info: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in system_info.split('|') {
        let part = part.trim();
        // "CPU : SSE3 = 1" starts a backend section: keep the backend name unless it is CPU.
        let (backend, kv) = match part.split_once(" : ") {
            Some((b, rest)) => (Some(b.trim()), rest.trim()),
            None => (None, part),
        };
        if let Some(b) = backend.filter(|b| !b.eq_ignore_ascii_case("cpu") && !b.is_empty()) {
            out.push(b.to_uppercase());
        }
        if let Some((name, value)) = kv.split_once('=') {
            let value = value.trim();
            if !value.is_empty() && value != "0" {
                out.push(name.trim().to_string());
            }
        }
    }
    out.dedup();
    out
}

/// Everything about the build, for the record.
pub fn build_info() -> BuildInfo {
    // SAFETY: returns a pointer to a static buffer inside llama.cpp; read before any other call.
    let system_info = c_string(unsafe { sys::llama_print_system_info() });
    let devices = llama_cpp_2::list_llama_ggml_backend_devices().into_iter();
    BuildInfo {
        llama_cpp: BINDINGS.to_string(),
        // SAFETY: both return pointers to static strings compiled into ggml.
        ggml_version: c_string(unsafe { sys::ggml_version() }),
        ggml_commit: c_string(unsafe { sys::ggml_commit() }),
        features: features_of(&system_info),
        system_info,
        devices: devices
            .map(|d| DeviceInfo {
                name: d.name,
                description: d.description,
                backend: d.backend,
                memory_total_bytes: d.memory_total as u64,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_read_from_system_info() {
        let line = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | \
                    AVX512 = 0 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ";
        let f = features_of(line);
        assert!(f.contains(&"AVX2".to_string()));
        assert!(f.contains(&"OPENMP".to_string()));
        assert!(!f.contains(&"AVX512".to_string()));
        let mac = "Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 | ACCELERATE = 1 |";
        let f = features_of(mac);
        assert_eq!(f[0], "METAL");
        assert!(f.contains(&"NEON".to_string()));
    }
}
