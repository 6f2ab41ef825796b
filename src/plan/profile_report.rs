//! A profile's report from its runs: each phase's times and op shares per model, expert
//! statistics, and the routing overhead against the dense reference.

use super::*;

impl ProfilePlan {
    /// The report, once every step ran; `None` when a step failed.
    pub(super) fn report(&self, info: &CellInfo) -> Option<ProfileReport> {
        if self.stopped() {
            return None;
        }
        let infos: Vec<ModelInfo> = match info.models.is_empty() {
            true => vec![info.model.clone()],
            false => info.models.clone(),
        };
        // Each model's plain and profiled sessions are next to each other.
        let mut profiles: Vec<ModelProfile> = (infos.into_iter().zip(self.runs.chunks(2)))
            .map(|(mi, runs)| model_profile(mi, &self.settings, &runs[0], &runs[1]))
            .collect();
        let dense = (profiles.len() > 1).then(|| profiles.remove(1));
        let mut model = profiles.into_iter().next()?;
        model.upcycled = self.upcycled.clone();
        let routing = routing(&model, dense.as_ref(), self.no_dense.clone());
        Some(ProfileReport {
            provenance: Provenance::now(),
            model,
            dense,
            dense_source: self.dense_source.clone(),
            routing,
            engine: info.engine.clone(),
            build: info.build.clone(),
            machine: info.machine.clone(),
            load: LoadReport::default(),
            notes: self.notes.clone(),
        })
    }
}

/// One phase of a model from its plain and profiled runs; `None` when it did not run.
fn phase(name: Phase, plain: &Runs, profiled: &Runs, s: &ProfileSettings) -> Option<PhaseReport> {
    let (plain, profiled) = (&plain[name as usize], &profiled[name as usize]);
    let (tokens_per_call, depth) = match name {
        Phase::ShortResponse => (1, s.prompt_tokens),
        Phase::LongForm => (1, s.depth),
        Phase::Prompt => (s.depth, 0),
    };
    let unprofiled_ms = median_ms(&plain.calls)?;
    let profiled_ms = median_ms(&profiled.calls)?;
    let tps = |ms: f64| f64::from(tokens_per_call) * 1000.0 / ms;
    let measured: Duration = profiled.calls.iter().sum();
    let tokens = profiled.calls.len() as u64 * u64::from(tokens_per_call);
    Some(PhaseReport {
        phase: name,
        tokens_per_call,
        calls: profiled.calls.len(),
        depth,
        unprofiled_ms,
        profiled_ms,
        unprofiled_tps: tps(unprofiled_ms),
        profiled_tps: tps(profiled_ms),
        perturbation: unprofiled_ms / profiled_ms,
        breakdown: breakdown(&profiled.profile.totals, measured, tokens),
        top_nodes: profiled.profile.nodes.top(s.top as usize, tokens),
    })
}

/// The profile of a model from its plain and profiled runs.
fn model_profile(
    model: ModelInfo,
    s: &ProfileSettings,
    plain: &Runs,
    profiled: &Runs,
) -> ModelProfile {
    let phases = Phase::ALL
        .iter()
        .filter(|&&name| s.pp || name != Phase::Prompt)
        .filter_map(|&name| phase(name, plain, profiled, s))
        .collect();
    let experts = match (model.expert_count, model.expert_used_count) {
        (Some(n), Some(k)) => experts::stats(
            &profiled[Phase::LongForm as usize].profile.trace,
            u32::try_from(n).unwrap_or(u32::MAX),
            u32::try_from(k).unwrap_or(u32::MAX),
            s.window as usize,
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

/// The routing block of an MoE profile, against `dense` when there is one (else with why
/// not); `None` for a dense model.
fn routing(
    moe: &ModelProfile,
    dense: Option<&ModelProfile>,
    no_dense_reason: Option<String>,
) -> Option<RoutingSummary> {
    if !moe.is_moe() {
        return None;
    }
    let of = |name: Phase| {
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
        of(Phase::ShortResponse),
        of(Phase::LongForm),
        moe.experts.as_ref(),
        dense.map(|d| d.model.path.clone()),
        no_dense_reason.filter(|_| dense.is_none()),
    ))
}
