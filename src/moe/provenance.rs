//! Where an upcycled MoE came from, stored in its own GGUF metadata under `runner.upcycle.*`,
//! so later tools (a profiler comparing routing cost against the dense twin, `moe verify`) can
//! find and check the dense source.

use super::router::Router;
use crate::gguf::{GgufFile, GgufWriter, MetaValue, WriteError};
use serde::Serialize;

/// File name of the dense source (string).
pub const KEY_SOURCE_NAME: &str = "runner.upcycle.source_name";
/// sha256 of the dense source file, lowercase hex (string).
pub const KEY_SOURCE_SHA256: &str = "runner.upcycle.source_sha256";
/// Size of the dense source file in bytes (u64).
pub const KEY_SOURCE_SIZE: &str = "runner.upcycle.source_size";
/// Experts per layer (u32).
pub const KEY_EXPERTS: &str = "runner.upcycle.experts";
/// Experts used per token (u32).
pub const KEY_USED: &str = "runner.upcycle.used";
/// `random` or `uniform` (string).
pub const KEY_ROUTER: &str = "runner.upcycle.router";
/// Seed of a random router (u64; absent for a uniform one).
pub const KEY_SEED: &str = "runner.upcycle.seed";
/// Version of runner that wrote the file (string).
pub const KEY_TOOL_VERSION: &str = "runner.upcycle.runner_version";

/// The provenance of an upcycled model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub source_name: String,
    pub source_sha256: String,
    pub source_size: u64,
    pub experts: u32,
    pub used: u32,
    /// A router name the file holds that runner does not know reads as `random` (the one
    /// whose oracle is not exact).
    pub router: Router,
    pub seed: Option<u64>,
    pub runner_version: String,
}

impl Provenance {
    pub fn new(
        source_name: String,
        source_sha256: String,
        source_size: u64,
        opts: &super::UpcycleOptions,
    ) -> Provenance {
        Provenance {
            source_name,
            source_sha256,
            source_size,
            experts: opts.experts,
            used: opts.used,
            router: opts.router,
            seed: (opts.router != Router::Uniform).then_some(opts.seed),
            runner_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Whether the MoE's top-K weights are exact (1, or equal powers of two), so that its
    /// greedy output must equal the dense model's bit for bit. Otherwise the sum of identical
    /// experts equals the dense FFN only up to rounding, and a near-tie may flip a token.
    pub fn exact_oracle(&self) -> bool {
        self.used == 1 || (self.router != Router::Random && self.used.is_power_of_two())
    }

    /// Writes the provenance keys into `w`.
    pub fn write(&self, w: &mut GgufWriter) -> Result<(), WriteError> {
        let s = |v: &str| MetaValue::Str(v.to_string());
        w.set(KEY_SOURCE_NAME, &s(&self.source_name))?;
        w.set(KEY_SOURCE_SHA256, &s(&self.source_sha256))?;
        w.set(KEY_SOURCE_SIZE, &MetaValue::U64(self.source_size))?;
        w.set(KEY_EXPERTS, &MetaValue::U32(self.experts))?;
        w.set(KEY_USED, &MetaValue::U32(self.used))?;
        w.set(KEY_ROUTER, &s(self.router.as_str()))?;
        if let Some(seed) = self.seed {
            w.set(KEY_SEED, &MetaValue::U64(seed))?;
        }
        w.set(KEY_TOOL_VERSION, &s(&self.runner_version))
    }

    /// Reads the provenance of an upcycled model; `None` when `g` was not made by
    /// `runner moe upcycle` (the source's sha256 key is missing).
    pub fn read(g: &GgufFile) -> Option<Provenance> {
        let u32_of = |k| g.get_u64(k).and_then(|v| u32::try_from(v).ok());
        Some(Provenance {
            source_name: g.get_str(KEY_SOURCE_NAME).unwrap_or_default().to_string(),
            source_sha256: g.get_str(KEY_SOURCE_SHA256)?.to_string(),
            source_size: g.get_u64(KEY_SOURCE_SIZE).unwrap_or(0),
            experts: u32_of(KEY_EXPERTS).unwrap_or(0),
            used: u32_of(KEY_USED).unwrap_or(0),
            router: g
                .get_str(KEY_ROUTER)
                .and_then(|r| r.parse().ok())
                .unwrap_or(Router::Random),
            seed: g.get_u64(KEY_SEED),
            runner_version: g.get_str(KEY_TOOL_VERSION).unwrap_or_default().to_string(),
        })
    }
}
