//! The short routing profile a sweep runs in each cell of an MoE model: a few tokens through
//! the short-response and long-form phases, plain and profiled, against the dense source the
//! model's upcycle metadata names when it can be found. It adds a few seconds to a cell.

use super::args::{plan_settings, ProfilePlan};
use super::dense::{self, DenseRef};
use super::report;
use crate::gguf::GgufFile;
use crate::llama::context::FlashAttn;
use crate::llama::model::{self, LoadOptions, LoadedModel};
use crate::measure::routing::RoutingSummary;
use llama_cpp_2::llama_backend::LlamaBackend;
use std::path::Path;

/// Short-response: 2 samples after a 16-token prompt; long-form: 8 tokens after 64.
pub fn quick_plan(threads: u32, flash_attn: FlashAttn, n_gpu_layers: u32) -> ProfilePlan {
    let (prompt_tokens, depth, n_gen) = (16, 64, 8);
    ProfilePlan {
        prompt_tokens,
        depth,
        n_gen,
        repetitions: 2,
        pp: false,
        window: 4,
        top: 0,
        settings: plan_settings(prompt_tokens, depth, n_gen, threads, flash_attn)
            .unwrap_or_else(|_| unreachable!("a fixed plan fits")),
        n_gpu_layers,
    }
}

/// The routing block of an MoE cell; a profile that fails is recorded as the block's note.
pub fn cell_routing(
    backend: &LlamaBackend,
    path: &Path,
    loaded: &LoadedModel,
    plan: &ProfilePlan,
    cache: &Path,
) -> RoutingSummary {
    match try_cell_routing(backend, path, loaded, plan, cache) {
        Ok(s) => s,
        Err(e) => RoutingSummary::new(
            None,
            None,
            None,
            None,
            Some(format!("the routing profile failed: {e:#}")),
        ),
    }
}

fn try_cell_routing(
    backend: &LlamaBackend,
    path: &Path,
    loaded: &LoadedModel,
    plan: &ProfilePlan,
    cache: &Path,
) -> anyhow::Result<RoutingSummary> {
    let (dense, reason) = match dense::find(None, path, &loaded.gguf, cache)? {
        DenseRef::Found { path, .. } => {
            let g = GgufFile::open(&path)?;
            let opts = LoadOptions {
                n_gpu_layers: plan.n_gpu_layers,
                use_mmap: true,
            };
            (Some(model::load_validated(backend, &path, g, opts)?), None)
        }
        DenseRef::Missing(why) => (None, Some(why)),
    };
    let mut models = vec![(&loaded.model, loaded.info.clone())];
    if let Some(d) = &dense {
        models.push((&d.model, d.info.clone()));
    }
    let (mut profiles, _) = super::profile_loaded(&models, plan)?;
    let dense = (profiles.len() > 1).then(|| profiles.remove(1));
    let moe = profiles
        .first()
        .ok_or_else(|| anyhow::anyhow!("nothing was profiled"))?;
    report::routing(
        moe,
        dense.as_ref(),
        dense.as_ref().map(|d| d.model.path.clone()),
        reason,
    )
    .ok_or_else(|| anyhow::anyhow!("the model has no experts"))
}
