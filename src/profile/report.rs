//! What `runner profile` reports (one serde schema for the table and JSON), built from the
//! plain and profiled runs of each model.

use super::args::ProfilePlan;
use super::runs::{PhaseRun, Runs};
use crate::measure::routing::experts::{self, ExpertStats};
use crate::measure::routing::overhead::median_ms;
use crate::measure::routing::summary::{routing_phase, DensePhase};
use crate::measure::routing::timing::breakdown;
use crate::measure::routing::{Breakdown, NodeRow, RoutingSummary};
use crate::record::{BuildInfo, EngineSettings, LoadReport, MachineInfo, ModelInfo};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Phase names.
pub const SHORT: &str = "short-response";
pub const LONG: &str = "long-form";
pub const PROMPT: &str = "prompt";

/// One phase of one model, plain and profiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// `short-response`, `long-form` or `prompt`.
    pub phase: String,
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
    /// `grouped`, `random` or `uniform`.
    pub router: String,
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
    pub fn phase(&self, name: &str) -> Option<&PhaseReport> {
        self.phases.iter().find(|p| p.phase == name)
    }

    pub fn is_moe(&self) -> bool {
        self.model.expert_count.is_some_and(|n| n > 0)
    }
}

/// The output of `runner profile`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileReport {
    pub schema: u32,
    pub time: String,
    pub runner_version: String,
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

fn phase(
    name: &str,
    plain: &PhaseRun,
    profiled: &PhaseRun,
    tokens_per_call: u32,
    depth: u32,
    top: u32,
) -> Option<PhaseReport> {
    let unprofiled_ms = median_ms(&plain.calls)?;
    let profiled_ms = median_ms(&profiled.calls)?;
    let tps = |ms: f64| f64::from(tokens_per_call) * 1000.0 / ms;
    let measured: Duration = profiled.calls.iter().sum();
    let tokens = profiled.calls.len() as u64 * u64::from(tokens_per_call);
    Some(PhaseReport {
        phase: name.to_string(),
        tokens_per_call,
        calls: profiled.calls.len(),
        depth,
        unprofiled_ms,
        profiled_ms,
        unprofiled_tps: tps(unprofiled_ms),
        profiled_tps: tps(profiled_ms),
        perturbation: unprofiled_ms / profiled_ms,
        breakdown: breakdown(&profiled.profile.totals, measured, tokens),
        top_nodes: profiled.profile.nodes.top(top as usize, tokens),
    })
}

/// The profile of a model from its plain and profiled runs.
pub fn model_profile(
    model: ModelInfo,
    plan: &ProfilePlan,
    plain: &Runs,
    profiled: &Runs,
) -> ModelProfile {
    let mut phases = Vec::new();
    phases.extend(phase(
        SHORT,
        &plain.short,
        &profiled.short,
        1,
        plan.prompt_tokens,
        plan.top,
    ));
    phases.extend(phase(
        LONG,
        &plain.long,
        &profiled.long,
        1,
        plan.depth,
        plan.top,
    ));
    if plan.pp {
        phases.extend(phase(
            PROMPT,
            &plain.prompt,
            &profiled.prompt,
            plan.depth,
            0,
            plan.top,
        ));
    }
    let experts = match (model.expert_count, model.expert_used_count) {
        (Some(n), Some(k)) => experts::stats(
            &profiled.long.profile.trace,
            u32::try_from(n).unwrap_or(u32::MAX),
            u32::try_from(k).unwrap_or(u32::MAX),
            plan.window as usize,
        ),
        _ => None,
    };
    ModelProfile {
        model,
        upcycled: None,
        phases,
        experts,
    }
}

/// The routing block of an MoE profile, against `dense` when there is one; `None` for a
/// dense model.
pub fn routing(
    moe: &ModelProfile,
    dense: Option<&ModelProfile>,
    dense_label: Option<String>,
    no_dense_reason: Option<String>,
) -> Option<RoutingSummary> {
    if !moe.is_moe() {
        return None;
    }
    let of = |name: &str| {
        let p = moe.phase(name)?;
        let reference = dense.and_then(|d| d.phase(name)).and_then(|d| {
            Some(DensePhase {
                ms_per_token: d.unprofiled_ms,
                breakdown: d.breakdown.as_ref()?,
            })
        });
        Some(routing_phase(
            p.unprofiled_ms,
            p.breakdown.as_ref()?,
            reference,
        ))
    };
    Some(RoutingSummary::new(
        of(SHORT),
        of(LONG),
        moe.experts.as_ref(),
        dense.and(dense_label),
        if dense.is_some() {
            None
        } else {
            no_dense_reason
        },
    ))
}
