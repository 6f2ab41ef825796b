//! Errors from GGUF validation: each Display is one line that names the file and the problem.

use std::path::PathBuf;

/// Why a GGUF file was refused. Every message starts with the file's path.
#[derive(thiserror::Error, Debug)]
pub enum GgufError {
    /// The path does not exist.
    #[error("{}: no such file", path.display())]
    NotFound { path: PathBuf },

    /// The path is a directory, not a model file.
    #[error("{}: is a directory", path.display())]
    IsDirectory { path: PathBuf },

    /// Opening or reading failed for a reason other than the file being too short.
    #[error("{}: cannot read: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },

    /// The first four bytes are not "GGUF".
    #[error("{}: not a GGUF file (magic is {}, expected 'GGUF')", path.display(), hex_bytes(magic))]
    BadMagic { path: PathBuf, magic: [u8; 4] },

    /// A GGUF version other than 2 or 3.
    #[error("{}: GGUF version {version} is not supported{}", path.display(), version_hint(*version))]
    UnsupportedVersion { path: PathBuf, version: u32 },

    /// The file ends inside the header (metadata or tensor-info table).
    #[error("{}: header truncated at byte {offset} while reading {what}", path.display())]
    Truncated {
        path: PathBuf,
        /// Where the file ends.
        offset: u64,
        /// What was being read when the bytes ran out.
        what: String,
    },

    /// A tensor's data extends past the end of the file.
    #[error(
        "{}: truncated: tensor '{tensor}' data ends at byte {end} but the file has {file_size} bytes",
        path.display()
    )]
    TensorDataOutOfBounds {
        path: PathBuf,
        tensor: String,
        end: u64,
        file_size: u64,
    },

    /// A tensor uses a ggml type id this build does not know (or that ggml removed).
    #[error("{}: tensor '{tensor}' has unknown ggml type id {type_id}", path.display())]
    UnknownTensorType {
        path: PathBuf,
        tensor: String,
        type_id: u32,
    },

    /// Anything else that makes the file unusable (absurd counts or lengths, bad dims, ...).
    #[error("{}: invalid GGUF file: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

fn hex_bytes(b: &[u8; 4]) -> String {
    format!("{:02x} {:02x} {:02x} {:02x}", b[0], b[1], b[2], b[3])
}

fn version_hint(version: u32) -> &'static str {
    if version == 1 {
        " (GGUFv1 is obsolete; re-convert the model with a current llama.cpp)"
    } else if version != 0 && version & 0xFFFF == 0 {
        " (the file looks big-endian; only little-endian GGUF files are supported)"
    } else {
        " (only versions 2 and 3 are supported)"
    }
}
