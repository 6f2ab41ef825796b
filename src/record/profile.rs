//! What `runner profile` reports (one schema for the table and JSON): each model's phases,
//! plain and profiled, their op breakdown, expert statistics and the routing overhead.

use super::schema::{LoadReport, Provenance};
use crate::engine::profile::NodeRow;
use crate::engine::{BuildInfo, EngineSettings, ModelInfo};
use crate::hw::machine::MachineInfo;
use crate::measure::routing::experts::ExpertStats;
use crate::measure::routing::{Breakdown, RoutingSummary};
use crate::moe::Router;
use serde::{Deserialize, Serialize};

crate::util::names::named_enum! {
    /// The phases a profile times.
    pub enum Phase {
        /// The first decoded token after a short prompt.
        ShortResponse = "short-response",
        /// Steady decode at depth.
        LongForm = "long-form",
        /// The evaluation of the depth prompt.
        Prompt = "prompt",
    }
}

/// One phase of one model, plain and profiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub phase: Phase,
    /// Tokens per timed llama_decode call (1 for decode, the prompt length for `prompt`).
    pub tokens_per_call: u32,
    /// Timed calls.
    pub calls: usize,
    /// Tokens in the KV cache before the phase's first timed call.
    pub depth: u32,
    /// Median time per call without the callback (context created without `cb_eval`), ms.
    pub unprofiled_ms: f64,
    /// Median time per call with the callback observing every computing node, ms.
    pub profiled_ms: f64,
    /// tokens_per_call / median call time.
    pub unprofiled_tps: f64,
    pub profiled_tps: f64,
    /// profiled_tps / unprofiled_tps: 1 means the callback costs nothing.
    pub perturbation: f64,
    /// Time and bytes per op category in the profiled run.
    pub breakdown: Option<Breakdown>,
    /// The most expensive node names (layers merged).
    pub top_nodes: Vec<NodeRow>,
}

/// Where an upcycled model came from (its `runner.upcycle.*` metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upcycled {
    pub source_name: String,
    pub router: Router,
    pub seed: Option<u64>,
}

/// One model's profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelProfile {
    pub model: ModelInfo,
    /// Set for a model made by `runner moe upcycle`.
    pub upcycled: Option<Upcycled>,
    pub phases: Vec<PhaseReport>,
    /// Expert selection over the long-form tokens (MoE models).
    pub experts: Option<ExpertStats>,
}

impl ModelProfile {
    pub fn phase(&self, phase: Phase) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.phase == phase)
    }

    pub fn is_moe(&self) -> bool {
        self.model.expert_count.is_some_and(|n| n > 0)
    }
}

/// The output of `runner profile`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileReport {
    #[serde(flatten)]
    pub provenance: Provenance,
    pub model: ModelProfile,
    /// The dense reference, profiled the same way.
    pub dense: Option<ModelProfile>,
    /// Where the dense reference came from (`--dense`, or the upcycle metadata).
    pub dense_source: Option<String>,
    /// Routing figures (MoE models only).
    pub routing: Option<RoutingSummary>,
    pub engine: EngineSettings,
    pub build: BuildInfo,
    pub machine: MachineInfo,
    /// Load from other processes while the profile ran.
    pub load: LoadReport,
    pub notes: Vec<String>,
}
