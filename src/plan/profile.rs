//! `runner profile` as a plan: the same phases decoded in a plain context and in a profiling
//! context (llama.cpp's graph-evaluation callback observing every node), for the model and,
//! for an MoE model, its dense reference, all interleaved so that the machine's drift affects
//! them alike.
//!
//! Phases: short-response (clear the cache, evaluate a short prompt, time the first decoded
//! token; repeated), long-form (evaluate a prompt of `depth` tokens, then time each of `n_gen`
//! greedily decoded tokens) and the depth prompt's evaluation itself (prompt processing). The
//! order: one untimed warm-up each, each short-response sample of every context in turn, the
//! depth prompts, then long-form blocks of 8 tokens in turn.
//!
//! With a dense reference, the profile runs as two cells: one loads the model first, the other
//! its reference. Where a model sits in memory can depend on the order of loading (on one VM,
//! with the files mapped, the MoE/dense decode ratio was 0.905 one way and 0.992 the other),
//! and the routing overhead compares the two models, so each is measured in both places: the
//! short-response samples are split between the cells, the long-form decode runs in full in
//! each (the same tokens at the same positions), and expert selection is counted in the first.

use super::dense::{self, DenseRef};
use super::{Invalid, Resolved};
use crate::backend::{
    ContextSettingsSpec, EngineSpec, ModelSource, Reply, Request, SessionSpec, Setup, Step,
    StepKind,
};
use crate::engine::profile::Profile;
use crate::engine::{ContextSettings, FlashAttn, KvType, ModelInfo};
use crate::exec::{self, Cell, Observed, Plan};
use crate::gguf::GgufFile;
use crate::measure::routing::experts;
use crate::measure::routing::overhead::median_ms;
use crate::measure::routing::summary::{routing_phase, DensePhase};
use crate::measure::routing::timing::breakdown;
use crate::measure::routing::RoutingSummary;
use crate::record::profile::{ModelProfile, Phase, PhaseReport, ProfileReport, Upcycled};
use crate::record::{CellInfo, CellKey, LoadReport, Provenance, Record};
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "profile_report.rs"]
mod report;
#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;

/// Text the prompts are cut from (repeated as needed), so that the router sees real text.
pub const TEXT: &str =
    "The history of the harbour town begins with a handful of fishing families who \
built their houses along the river mouth. Over two centuries the settlement grew into a busy \
port: merchants brought timber, salt and wool, shipwrights opened yards on the northern bank, \
and a stone bridge replaced the old ferry. When the railway arrived, the town changed again. \
Warehouses rose beside the station, the population doubled within a generation, and the \
council paved the market square. Today visitors walk along the restored quays, read the \
plaques that explain how the tides shaped every street, and eat smoked fish in the same \
taverns where sailors once waited for the wind to turn.";

/// The note of a profile against a dense reference.
pub const LOAD_ORDERS: &str = "each model measured in both load orders (the model loaded \
first, then its dense reference): the short-response samples split between them, the long-form \
decode run in full in each; expert selection from the first";

/// Tokens each context decodes in turn during the long-form phase.
const LONG_BLOCK: u32 = 8;

/// What one profile runs: token counts per phase and the context they run in.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSettings {
    pub prompt_tokens: u32,
    pub depth: u32,
    pub n_gen: u32,
    pub repetitions: u32,
    pub pp: bool,
    pub window: u32,
    pub top: u32,
    pub settings: ContextSettings,
    pub n_gpu_layers: u32,
}

/// Validated settings of `runner profile`.
#[derive(Debug, Clone)]
pub struct ProfileConfig {
    pub model: String,
    pub dense: Option<String>,
    pub plan: ProfileSettings,
    pub require_idle: bool,
    pub busy_threshold: f64,
}

/// The largest context a profile runs in (2^20 tokens).
pub const MAX_PROFILE_CTX: u32 = 1 << 20;

/// The context every phase fits in: the longer of prompt + 1 and depth + n_gen tokens, with
/// the whole depth prompt in one batch.
pub fn plan_settings(
    prompt_tokens: u32,
    depth: u32,
    n_gen: u32,
    threads: u32,
    flash_attn: FlashAttn,
) -> Result<ContextSettings, String> {
    let need = u64::from(prompt_tokens.max(depth)) + u64::from(n_gen) + 1;
    let n_ctx = u32::try_from(need)
        .ok()
        .filter(|&n| n <= MAX_PROFILE_CTX)
        .ok_or_else(|| {
            format!(
                "-p/-d and -n need {need} tokens of context; runner profiles at most \
                 {MAX_PROFILE_CTX}"
            )
        })?;
    let n_batch = prompt_tokens.max(depth);
    Ok(ContextSettings {
        n_ctx,
        n_batch,
        n_ubatch: n_batch.min(512),
        threads,
        threads_batch: threads,
        flash_attn,
        type_k: KvType::F16,
        type_v: KvType::F16,
    })
}

/// The short profile a sweep runs in each cell of an MoE model: short-response, 2 samples
/// after a 16-token prompt; long-form, 8 tokens after 64.
pub fn quick_settings(threads: u32, flash_attn: FlashAttn, n_gpu_layers: u32) -> ProfileSettings {
    let (prompt_tokens, depth, n_gen) = (16, 64, 8);
    ProfileSettings {
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

/// One request of the profile: a step in one session, and the phase it counts for.
#[derive(Debug, Clone, Copy)]
struct Slot {
    session: usize,
    what: What,
    /// `None` for a warm-up.
    phase: Option<Phase>,
}

#[derive(Debug, Clone, Copy)]
enum What {
    First,
    Depth,
    Decode(u32),
}

/// Time per call of each phase, and (in a profiling context) what the callback saw.
#[derive(Debug, Default, Clone)]
struct PhaseRun {
    calls: Vec<Duration>,
    profile: Profile,
}

impl PhaseRun {
    fn add(&mut self, calls: &[Duration], p: Option<Profile>) {
        self.calls.extend_from_slice(calls);
        if let Some(p) = p {
            self.profile.totals.merge(&p.totals);
            self.profile.nodes.merge(&p.nodes);
            self.profile.trace.append(&p.trace);
        }
    }
}

/// The runs of one session, per phase (indexed by [`Phase`]).
type Runs = [PhaseRun; 3];

/// A profile as a plan: one cell holding the model, a plain and a profiling session of it; with
/// a dense reference, two cells holding both, loaded in each order (sessions 0-1 the model's,
/// 2-3 the reference's in both).
pub struct ProfilePlan {
    settings: ProfileSettings,
    cells: Vec<Cell>,
    /// The requests of each cell.
    slots: Vec<Vec<Slot>>,
    /// Each cell's next request.
    next: Vec<usize>,
    /// What the first cell ran on (its models in the profile's order).
    first: Option<CellInfo>,
    runs: Vec<Runs>,
    dense_source: Option<String>,
    no_dense: Option<String>,
    upcycled: Option<Upcycled>,
    notes: Vec<String>,
    busy_threshold: f64,
}

impl ProfilePlan {
    /// The profile of `cfg.model`; for an MoE model, against its dense reference.
    pub fn new(cfg: &ProfileConfig, cache: &Path) -> anyhow::Result<ProfilePlan> {
        if let Some(d) = &cfg.dense {
            dense_by_name(&cfg.model, d)?;
        }
        let (model, gguf) = Resolved::valid(&cfg.model, cache)?;
        // The model alone first: where it does not fit, no dense reference is found or made.
        within_memory(cfg, &[Some(&gguf)])?;
        let mut notes = Vec::new();
        let mut sources = vec![model.source()];
        let (mut dense_source, mut no_dense, mut dense) = (None, None, None);
        if dense::is_moe(&gguf) {
            match dense::find(cfg.dense.as_deref(), &model.path, &gguf, cache)? {
                DenseRef::Found { path, how } => {
                    let g = GgufFile::open(&path)
                        .map_err(|e| Invalid(format!("dense reference: {e}")))?;
                    dense = Some(g);
                    dense_source = Some(format!("{} ({how})", path.display()));
                    sources.push(ModelSource::file(&path));
                }
                DenseRef::Missing(why) => {
                    notes.push(format!(
                        "{why}; the router and expert shares are reported alone"
                    ));
                    no_dense = Some(why);
                }
            }
        } else if let Some(d) = &cfg.dense {
            anyhow::bail!(Invalid(format!(
                "--dense {d}: {} is dense itself; --dense names the dense reference of an MoE model",
                model.path.display()
            )));
        }
        if let Some(dense) = &dense {
            within_memory(cfg, &[Some(&gguf), Some(dense)])?;
        }
        let upcycled = crate::moe::Provenance::read(&gguf).map(|p| Upcycled {
            source_name: p.source_name,
            router: p.router,
            seed: p.seed,
        });
        Ok(ProfilePlan {
            dense_source,
            no_dense,
            upcycled,
            notes,
            busy_threshold: cfg.busy_threshold,
            ..ProfilePlan::with_sources(&cfg.plan, &model.arg, sources, cache)
        })
    }

    /// A profile of models already resolved (the first one profiled, the second its dense
    /// reference): one cell, or two with the models loaded in each order.
    fn with_sources(
        s: &ProfileSettings,
        label: &str,
        models: Vec<ModelSource>,
        cache: &Path,
    ) -> ProfilePlan {
        let n = models.len();
        let sessions: Vec<SessionSpec> = (0..n)
            .flat_map(|m| [false, true].map(|profiled| SessionSpec { model: m, profiled }))
            .collect();
        let c = &s.settings;
        let setup = Setup {
            key: CellKey::native(label, "source"),
            models,
            sessions,
            engine: EngineSpec {
                threads: c.threads,
                n_ctx: Some(c.n_ctx),
                flash_attn: c.flash_attn,
                n_gpu_layers: s.n_gpu_layers,
                use_mmap: true,
            },
            context: Some(ContextSettingsSpec {
                n_ctx: c.n_ctx,
                n_batch: c.n_batch,
                n_ubatch: c.n_ubatch,
            }),
            cache_dir: cache.to_path_buf(),
            ..Default::default()
        };
        let label = crate::models::display_name(label);
        // Each cell's label, setup and share of the samples.
        let plans = match n {
            2 => {
                let [a, b] = halves(s);
                let reversed = Setup {
                    models: setup.models.iter().rev().cloned().collect(),
                    sessions: (0..4)
                        .map(|i| SessionSpec {
                            model: 1 - i / 2,
                            profiled: i % 2 == 1,
                        })
                        .collect(),
                    ..setup.clone()
                };
                let second = format!("{label} (reference loaded first)");
                vec![(label, setup, a), (second, reversed, b)]
            }
            _ => vec![(label, setup, s.clone())],
        };
        let (cells, slots): (Vec<Cell>, Vec<Vec<Slot>>) = (plans.into_iter())
            .map(|(label, setup, s)| {
                let slots = slots(&s, 2 * n);
                (Cell::new(label, 0, setup, slots.len()), slots)
            })
            .unzip();
        ProfilePlan {
            settings: s.clone(),
            next: vec![0; cells.len()],
            cells,
            slots,
            first: None,
            runs: vec![Runs::default(); 2 * n],
            dense_source: None,
            no_dense: None,
            upcycled: None,
            notes: Vec::new(),
            busy_threshold: 0.25,
        }
    }
}

/// Refuses `--dense` for a model its name alone says is dense (a `synth:` name of a dense
/// catalogue entry, or of an MoE entry's dense reference), before the model is made.
fn dense_by_name(model: &str, dense: &str) -> Result<(), Invalid> {
    use crate::models::synthetic::{SynthSpec, SYNTH_PREFIX};
    if !model.trim().starts_with(SYNTH_PREFIX) {
        return Ok(());
    }
    // A name that does not parse is refused, as it is, when it is resolved.
    match SynthSpec::parse(model) {
        Ok(spec) if spec.entry().experts == 0 => Err(Invalid(format!(
            "--dense {dense}: {} is dense itself; --dense names the dense reference of an MoE model",
            model.trim()
        ))),
        _ => Ok(()),
    }
}

/// Refuses a profile whose models would not fit in the memory free on this machine.
fn within_memory(cfg: &ProfileConfig, models: &[Option<&GgufFile>]) -> Result<(), Invalid> {
    let models: Vec<&GgufFile> = models.iter().flatten().copied().collect();
    let (need, what) = memory_need(&cfg.plan.settings, &models);
    let limit = super::memory::machine_bytes(cfg.plan.n_gpu_layers > 0);
    super::memory::within(need, limit, &what).map_err(Invalid)
}

/// The least memory a profile of `models` needs, and what it holds: each model's weights
/// with a plain and a profiling context, all held at once.
fn memory_need(s: &ContextSettings, models: &[&GgufFile]) -> (u64, String) {
    let need = (models.iter())
        .map(|g| {
            (super::memory::context_bytes(g, s).saturating_mul(2)).saturating_add(g.tensor_bytes())
        })
        .fold(super::memory::RUNTIME, u64::saturating_add);
    let what = match models.len() {
        1 => format!(
            "the weights, and the KV caches and attention buffers of two {}-token contexts",
            s.n_ctx
        ),
        n => format!(
            "the weights of {n} models, and the KV caches and attention buffers of {} \
             {}-token contexts",
            2 * n,
            s.n_ctx
        ),
    };
    (need, what)
}

/// What each of the two cells runs: the short-response samples split between them (the larger
/// half where the model loads first; at least one each), the depth prompt and the long-form
/// decode in full in both, so that each model is measured at the same positions in both
/// load orders.
fn halves(s: &ProfileSettings) -> [ProfileSettings; 2] {
    let first = s.repetitions - s.repetitions / 2;
    [first, (s.repetitions / 2).max(1)].map(|repetitions| ProfileSettings {
        repetitions,
        ..s.clone()
    })
}

/// The requests in order: warm-ups, short-response samples, depth prompts, long-form blocks,
/// every session in turn.
fn slots(s: &ProfileSettings, sessions: usize) -> Vec<Slot> {
    let each = |what: What, phase: Option<Phase>| {
        (0..sessions).map(move |session| Slot {
            session,
            what,
            phase,
        })
    };
    let mut out: Vec<Slot> = each(What::First, None).collect();
    for _ in 0..s.repetitions {
        out.extend(each(What::First, Some(Phase::ShortResponse)));
    }
    out.extend(each(What::Depth, Some(Phase::Prompt)));
    let mut left = s.n_gen;
    while left > 0 {
        let n = left.min(LONG_BLOCK);
        out.extend(each(What::Decode(n), Some(Phase::LongForm)));
        left -= n;
    }
    out
}

impl Plan for ProfilePlan {
    fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn next(&mut self, cell: usize) -> Option<usize> {
        exec::take_next(&mut self.next[cell], self.slots[cell].len())
    }

    fn request(&self, cell: usize, id: usize) -> Request<'_> {
        let slot = self.slots[cell][id];
        let kind = match slot.what {
            What::First => StepKind::FirstToken {
                text: TEXT,
                n_tokens: self.settings.prompt_tokens,
            },
            What::Depth => StepKind::Prefill {
                text: TEXT,
                n_tokens: self.settings.depth,
            },
            What::Decode(n) => StepKind::Decode { n },
        };
        Request::Step(Step {
            session: slot.session,
            kind,
        })
    }

    fn reply(&mut self, cell: usize, id: usize, reply: Reply, _seen: &Observed<'_>) -> Vec<Record> {
        let slot = self.slots[cell][id];
        match (reply, slot.phase) {
            (Reply::Step(mut r), Some(phase)) => {
                // Both cells decode the same tokens at the same positions: expert selection is
                // counted in the first alone, so each token counts once.
                if let Some(p) = r.profile.as_mut().filter(|_| cell > 0) {
                    p.trace = Default::default();
                }
                self.runs[slot.session][phase as usize].add(&r.calls, r.profile);
            }
            (Reply::Failed(f), _) => self.stop(&f.message),
            _ => {}
        }
        Vec::new()
    }

    fn cell_done(&mut self, cell: usize, info: &CellInfo) -> Vec<Record> {
        let first = self.first.get_or_insert_with(|| info.clone()).clone();
        if cell + 1 < self.cells.len() {
            return Vec::new();
        }
        if self.cells.len() == 2 && !self.stopped() {
            self.notes.push(LOAD_ORDERS.to_string());
        }
        let report = self.report(&first);
        report
            .map(|r| Record::Profile(Box::new(r)))
            .into_iter()
            .collect()
    }

    fn cell_failed(&mut self, _cell: usize, reason: &str) -> Vec<Record> {
        self.stop(reason);
        Vec::new()
    }
}

impl ProfilePlan {
    /// A profile needs every step: after a failure no further request runs, and a cell not
    /// started yet is not even prepared (its models are not loaded).
    fn stop(&mut self, why: &str) {
        for (next, slots) in self.next.iter_mut().zip(&self.slots) {
            *next = slots.len();
        }
        for c in &mut self.cells {
            c.requests = 0;
        }
        self.notes.push(format!("{STOPPED}: {why}"));
    }

    fn stopped(&self) -> bool {
        self.notes.iter().any(|n| n.starts_with(STOPPED))
    }
}

/// How the note of a profile that could not finish begins.
const STOPPED: &str = "the profile stopped";

/// Runs a profile in this process; its report.
pub fn run(
    plan: &mut ProfilePlan,
    obs: &dyn exec::Observer,
    monitor: &crate::hw::load::LoadMonitor,
    verbose: bool,
) -> anyhow::Result<ProfileReport> {
    let mut records: Vec<Record> = Vec::new();
    let start = Instant::now();
    let busy = plan.busy_threshold;
    let failures = exec::run_native(plan, &mut records, obs, monitor, busy, verbose)?;
    if !failures.is_empty() {
        anyhow::bail!("the profile could not run");
    }
    let mut report = records
        .into_iter()
        .find_map(|r| match r {
            Record::Profile(p) => Some(*p),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("{}", plan.notes.join("; ")))?;
    let w = monitor.window(start, Instant::now());
    report.load = LoadReport::of(&Default::default(), &w, plan.busy_threshold);
    Ok(report)
}

/// The routing block of an MoE sweep cell: a quick profile of the model file against the dense
/// source its upcycle metadata names, when that can be found. A profile that fails is
/// recorded as the block's note.
pub fn quick_routing(model: &Path, cache: &Path, e: &EngineSpec, verbose: bool) -> RoutingSummary {
    let failed = |why: String| RoutingSummary::new(None, None, None, None, Some(why));
    let profile = || {
        let gguf = GgufFile::open(model).map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut sources = vec![ModelSource::file(model)];
        let mut no_dense = None;
        match dense::find(None, model, &gguf, cache)? {
            DenseRef::Found { path, .. } => sources.push(ModelSource::file(&path)),
            DenseRef::Missing(why) => no_dense = Some(why),
        }
        let settings = quick_settings(e.threads, e.flash_attn, e.n_gpu_layers);
        let mut plan =
            ProfilePlan::with_sources(&settings, &model.display().to_string(), sources, cache);
        plan.no_dense = no_dense;
        let monitor = crate::hw::load::LoadMonitor::start();
        let quiet = exec::observer::Progress::new(false, "steps");
        run(&mut plan, &quiet, &monitor, verbose)
    };
    match profile() {
        Ok(r) => r
            .routing
            .unwrap_or_else(|| failed("the model has no experts".into())),
        Err(e) => failed(format!("the routing profile failed: {e:#}")),
    }
}
