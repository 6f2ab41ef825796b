//! Why an upcycle or a verification was refused or failed; each message is one line.

use crate::gguf::{GgufError, WriteError};
use std::path::PathBuf;

/// The architectures `runner moe upcycle` knows how to turn into an MoE.
pub const SUPPORTED_ARCHS: &[&str] = &["llama"];

#[derive(Debug, thiserror::Error)]
pub enum UpcycleError {
    /// A bad flag value (`--experts`, `--used`).
    #[error("{0}")]
    BadOption(String),
    /// The input is not a readable, valid GGUF file.
    #[error(transparent)]
    Input(#[from] GgufError),
    #[error("{}: architecture '{arch}' cannot be upcycled (supported: {})", path.display(), SUPPORTED_ARCHS.join(", "))]
    UnsupportedArch { path: PathBuf, arch: String },
    #[error("{}: already a Mixture-of-Experts model ({why}); upcycle a dense model", path.display())]
    AlreadyMoe { path: PathBuf, why: String },
    /// The dense model lacks something the transform needs, or has something it cannot carry.
    #[error("{}: {reason}", path.display())]
    NotDense { path: PathBuf, reason: String },
    /// OUT is unusable: the input itself, a directory, or in a missing directory.
    #[error("{}: {reason}", path.display())]
    BadOutput { path: PathBuf, reason: String },
    /// Reading the input or writing OUT failed.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{}: {err}", path.display())]
    Write { path: PathBuf, err: WriteError },
    /// No room for OUT (see [`check_room`](crate::util::fs::check_room)).
    #[error("{0}")]
    Disk(String),
}

impl UpcycleError {
    /// Whether the error is the user's input (exit 2) rather than a failure while working.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            UpcycleError::Io { .. }
                | UpcycleError::Write { .. }
                | UpcycleError::Disk(_)
                | UpcycleError::Input(GgufError::Io { .. })
        )
    }
}
