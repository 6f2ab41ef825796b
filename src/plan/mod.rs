//! Plans: what each measuring command runs through the one loop (`exec`), and what the replies
//! record. `bench` (llama-bench workloads), `sweep` (quantizations × scenarios × backends),
//! `profile` (op-level timing, routing overhead), `verify` (an upcycled MoE against its dense
//! source) and `judge` (the judge panel over a results file). Each checks its input up front,
//! so that bad input is refused before anything long runs.

pub mod ab;
pub mod baselines;
pub mod bench;
pub(crate) mod dense;
pub mod judge;
pub mod load;
pub(crate) mod memory;
pub mod profile;
pub mod sweep;
pub mod synth;
pub mod verify;

use crate::engine::EngineSettings;
use crate::gguf::GgufFile;
use crate::hw::peak::Measurement;
use crate::measure::bandwidth::{self, Bandwidth, DecodeReads, Peaks};
use crate::models;
use crate::record::CellInfo;
use std::path::{Path, PathBuf};

pub use crate::util::Invalid;

/// A model named on the command line: a known name (fetched on first use) or a path.
#[derive(Debug)]
pub struct Resolved {
    /// As given.
    pub arg: String,
    pub path: PathBuf,
    /// The sha256 verified when a known model was fetched.
    pub sha256: Option<String>,
    /// The synthetic model a `synth:` argument names.
    pub synth: Option<models::synthetic::SynthSpec>,
}

impl Resolved {
    /// Resolves a name or a path; an unknown name is bad input
    /// ([`models::ResolveError::Unknown`]), a failed fetch is not.
    pub fn get(arg: &str, cache: &Path) -> anyhow::Result<Resolved> {
        if arg.trim().starts_with(models::synthetic::SYNTH_PREFIX) {
            let spec = models::synthetic::SynthSpec::parse(arg).map_err(Invalid)?;
            return Ok(Resolved {
                arg: arg.to_string(),
                path: synth::cached(&spec, cache)?,
                sha256: None,
                synth: Some(spec),
            });
        }
        let path = models::resolve(arg, cache, &models::FetchOptions::default())?;
        let sha256 = models::verified_sha256(&path, cache);
        Ok(Resolved {
            arg: arg.to_string(),
            path,
            sha256,
            synth: None,
        })
    }

    /// Resolves and validates the file's GGUF structure: a missing, truncated or non-GGUF
    /// file is [`Invalid`].
    pub fn valid(arg: &str, cache: &Path) -> anyhow::Result<(Resolved, GgufFile)> {
        let r = Resolved::get(arg, cache)?;
        let g = GgufFile::open(&r.path).map_err(|e| Invalid(e.to_string()))?;
        Ok((r, g))
    }

    /// The file to load, with its sha256 when known.
    fn source(&self) -> crate::backend::ModelSource {
        crate::backend::ModelSource {
            sha256: self.sha256.clone(),
            ..crate::backend::ModelSource::file(&self.path)
        }
    }

    /// How tables name the model: the name as given when it is a known model, else the file
    /// name without `.gguf`, never the full path.
    pub fn display(&self) -> String {
        models::display_name(&self.arg)
    }
}

/// What a decoded token of a prepared cell's model reads, and the peaks to hold the decode
/// rate against.
struct Meter {
    reads: DecodeReads,
    peaks: Peaks,
}

impl Meter {
    /// The meter of the model a cell prepared; `measured` as [`bandwidth::peaks`] takes it.
    fn new(
        info: &CellInfo,
        n_gpu_layers: u32,
        measured: impl FnOnce() -> Option<Measurement>,
    ) -> Result<Meter, String> {
        let gguf = GgufFile::open(Path::new(&info.model.path)).map_err(|e| e.to_string())?;
        Ok(Meter {
            reads: DecodeReads::from_gguf(&gguf),
            peaks: bandwidth::peaks(&info.machine, &info.build, n_gpu_layers, measured),
        })
    }

    /// The bandwidth of a decode at `tps` tokens per second, `depth` tokens deep on average.
    fn figures(&self, depth: f64, tps: f64, engine: &EngineSettings) -> Bandwidth {
        let bytes = self.reads.at_depth(depth, engine.type_k, engine.type_v);
        bandwidth::figures(&bytes, tps, &self.peaks)
    }
}

/// Threads a llama-bench run would use by default: the physical cores, within llama.cpp's
/// limit.
pub fn default_threads() -> u32 {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let physical = sysinfo::System::physical_core_count().unwrap_or(logical);
    let cores = u32::try_from(physical.clamp(1, logical)).unwrap_or(1);
    cores.min(crate::engine::MAX_THREADS)
}
