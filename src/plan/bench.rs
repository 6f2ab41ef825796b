//! `runner bench`: llama-bench's workloads (pp, tg, pp+tg, at a depth) as a plan. Comma lists
//! expand to a cartesian product of instances, model outermost so each model loads once; each
//! instance runs a warm-up and its repetitions, and makes one record with every sample.

use super::{memory, Resolved};
use crate::backend::{EngineSpec, Reply, Request, Setup, WorkloadRequest};
use crate::engine::{ContextSettings, MAX_CTX};
use crate::exec::{Cell, Observed, Plan};
use crate::gguf::GgufFile;
use crate::hw::load::Window;
use crate::measure::RepetitionSample;
use crate::record::{BenchRecord, CellInfo, CellKey, LoadReport, Provenance, Record, TestSpec};
use crate::util::rng::SplitMix64;
use std::path::Path;
use std::time::{Duration, Instant};

/// Validated settings of `runner bench`.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub models: Vec<String>,
    pub n_prompt: Vec<u32>,
    pub n_gen: Vec<u32>,
    pub n_depth: Vec<u32>,
    pub repetitions: u32,
    pub warmup: bool,
    /// Every combination of engine settings; `n_ctx` 0 means "as the test needs".
    pub contexts: Vec<ContextSettings>,
    pub n_gpu_layers: u32,
    pub use_mmap: bool,
    pub require_idle: bool,
    pub busy_threshold: f64,
    /// Hash each model file (sha256) into its records.
    pub sha256: bool,
}

/// One test to run: a model (by index into the resolved models), engine settings, workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub model: usize,
    pub settings: ContextSettings,
    pub test: TestSpec,
}

/// Every combination of models × engine settings × (depth, prompt, generation), model
/// outermost. A context size of 0 becomes exactly what the test needs.
pub fn expand(cfg: &BenchConfig, n_models: usize) -> Vec<Instance> {
    let mut out = Vec::new();
    for model in 0..n_models {
        for settings in &cfg.contexts {
            for &n_depth in &cfg.n_depth {
                for &n_prompt in &cfg.n_prompt {
                    for &n_gen in &cfg.n_gen {
                        if n_prompt == 0 && n_gen == 0 {
                            continue;
                        }
                        let test = TestSpec {
                            name: TestSpec::name_for(n_prompt, n_gen, n_depth),
                            n_prompt,
                            n_gen,
                            n_depth,
                            repetitions: cfg.repetitions,
                            warmup: cfg.warmup,
                        };
                        let mut settings = settings.clone();
                        if settings.n_ctx == 0 {
                            settings.n_ctx =
                                u32::try_from(test.tokens_needed()).unwrap_or(u32::MAX);
                        }
                        out.push(Instance {
                            model,
                            settings,
                            test,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Checks every instance before anything runs: the context must hold the test's tokens, and
/// llama.cpp must be able to make a context that large.
pub fn check(instances: &[Instance]) -> Result<(), String> {
    for i in instances {
        let need = i.test.tokens_needed();
        let parts = format!(
            "depth {} + prompt {} + generated {}",
            i.test.n_depth,
            i.test.n_prompt.max(1),
            i.test.n_gen
        );
        let name = &i.test.name;
        if need > u64::from(MAX_CTX) {
            return Err(format!(
                "{name} needs {need} tokens of context ({parts}), more than llama.cpp's largest ({MAX_CTX})"
            ));
        }
        if u64::from(i.settings.n_ctx) < need {
            return Err(format!(
                "context too small: {name} needs {need} tokens ({parts}), but --ctx is {}",
                i.settings.n_ctx
            ));
        }
    }
    Ok(())
}

/// Checks every instance against the memory free on this machine (`limit` bytes) before
/// anything runs: the model's weights, the least KV cache and attention buffers its context
/// takes (`models`: each model's GGUF, by index), and the token ids it feeds. A test that
/// cannot fit is refused instead of being killed by the system.
pub fn check_memory(
    instances: &[Instance],
    models: &[(String, GgufFile)],
    limit: u64,
) -> Result<(), String> {
    for i in instances {
        let Some((name, g)) = models.get(i.model) else {
            continue;
        };
        let s = &i.settings;
        let ids = (u64::from(i.test.n_depth) + u64::from(i.test.n_prompt)) * 4;
        let need = [
            g.tensor_bytes(),
            memory::context_bytes(g, s),
            ids,
            memory::RUNTIME,
        ]
        .into_iter()
        .fold(0, u64::saturating_add);
        let what = format!(
            "{name} {}: the weights, KV cache and attention buffers of a {}-token context ({}/{})",
            i.test.name,
            s.n_ctx,
            s.type_k.as_str(),
            s.type_v.as_str()
        );
        memory::within(need, limit, &what)?;
    }
    Ok(())
}

/// The token ids a test feeds: fixed pseudo-random ids (as llama-bench uses) so that every
/// repetition does identical work. A generation-only test starts from the model's BOS token
/// (an empty prompt here; the backend feeds BOS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub depth: Vec<i32>,
    pub prompt: Vec<i32>,
}

impl Inputs {
    /// Draws `n_depth` + `n_prompt` ids in `[0, n_vocab)` from a fixed seed.
    pub fn new(test: &TestSpec, n_vocab: i32) -> Inputs {
        let mut rng = SplitMix64(0x9E37_79B9_7F4A_7C15);
        let n = usize::try_from(n_vocab.max(1)).unwrap_or(1);
        let mut draw = |k: u32| -> Vec<i32> { (0..k).map(|_| rng.below(n) as i32).collect() };
        let depth = draw(test.n_depth);
        let prompt = draw(test.n_prompt);
        Inputs { depth, prompt }
    }
}

/// What the requests of the instance being run have given so far.
#[derive(Debug, Default)]
struct Running {
    /// Index into `instances`, and the next request of it (0 = warm-up when there is one).
    instance: usize,
    step: u32,
    inputs: Option<Inputs>,
    samples: Vec<RepetitionSample>,
    first_start: Option<Instant>,
    reps_start: Option<Instant>,
    peak_rss: u64,
    engine: Option<crate::engine::EngineSettings>,
    memory: Option<crate::engine::MemoryUsage>,
}

/// The bench as a plan: one cell per model.
pub struct BenchPlan {
    cfg: BenchConfig,
    cells: Vec<Cell>,
    instances: Vec<Instance>,
    running: Running,
    /// The running cell's vocabulary size, what a decoded token reads and the peaks to hold
    /// it against.
    n_vocab: i32,
    meter: Option<super::Meter>,
    /// This machine's memory bandwidth once the first cell on the host asked for it (`None`
    /// inside when none could be used): measured once per run, shared by every model.
    bandwidth: Option<Option<crate::hw::peak::Measurement>>,
    /// Tests that could not run (their model did not load, or llama.cpp failed).
    pub failures: usize,
}

impl BenchPlan {
    /// Resolves and validates every model (a bad one fails before any long test runs) and
    /// plans the instances.
    pub fn new(cfg: BenchConfig, cache: &Path) -> anyhow::Result<BenchPlan> {
        let (mut models, mut ggufs) = (Vec::new(), Vec::new());
        for name in &cfg.models {
            let (r, g) = Resolved::valid(name, cache)?;
            ggufs.push((r.display(), g));
            models.push(r);
        }
        let instances = expand(&cfg, models.len());
        check(&instances).map_err(super::Invalid)?;
        let limit = memory::machine_bytes(cfg.n_gpu_layers > 0);
        check_memory(&instances, &ggufs, limit).map_err(super::Invalid)?;
        let cells = models
            .iter()
            .enumerate()
            .map(|(m, r)| {
                let mine = instances.iter().filter(|i| i.model == m);
                let requests = mine.map(|i| runs(&i.test) as usize).sum();
                Cell::new(r.display(), 0, setup(r, &cfg, cache), requests)
            })
            .collect();
        Ok(BenchPlan {
            cfg,
            cells,
            instances,
            running: Running::default(),
            n_vocab: 0,
            meter: None,
            bandwidth: None,
            failures: 0,
        })
    }
}

/// The requests a test makes: its repetitions and the warm-up.
fn runs(t: &TestSpec) -> u32 {
    t.repetitions.saturating_add(u32::from(t.warmup))
}

fn setup(r: &Resolved, cfg: &BenchConfig, cache: &Path) -> Setup {
    Setup {
        key: CellKey::native(&r.arg, "source"),
        models: vec![r.source()],
        engine: EngineSpec {
            threads: cfg.contexts.first().map_or(1, |c| c.threads),
            n_gpu_layers: cfg.n_gpu_layers,
            use_mmap: cfg.use_mmap,
            ..Default::default()
        },
        cache_dir: cache.to_path_buf(),
        ..Default::default()
    }
}

impl Plan for BenchPlan {
    fn cells(&self) -> &[Cell] {
        &self.cells
    }

    fn prepared(&mut self, c: usize, info: &mut CellInfo) -> Result<(), String> {
        if info.model.sha256.is_none() && self.cfg.sha256 {
            let path = Path::new(&info.model.path);
            let sha = crate::models::sha256_file(path)
                .map_err(|e| format!("hashing {}: {e}", path.display()))?;
            info.model.sha256 = Some(sha);
        }
        let cache = &self.cells[c].setup.cache_dir;
        let bandwidth = &mut self.bandwidth;
        let measured = || {
            let once = || crate::hw::peak::ensure_measured(cache, &info.machine);
            bandwidth.get_or_insert_with(once).clone()
        };
        self.meter = Some(super::Meter::new(info, self.cfg.n_gpu_layers, measured)?);
        self.n_vocab = info.model.n_vocab;
        self.running = Running {
            instance: usize::MAX,
            ..Default::default()
        };
        Ok(())
    }

    fn next(&mut self, c: usize) -> Option<usize> {
        // A cell's instances are next to each other (model outermost).
        let r = &self.running;
        let next = match self.instances.get(r.instance).filter(|i| i.model == c) {
            Some(i) if r.step < runs(&i.test) => return Some(r.instance),
            Some(_) => r.instance + 1,
            None => self.instances.iter().position(|i| i.model == c)?,
        };
        let test = &self.instances.get(next).filter(|i| i.model == c)?.test;
        self.running = Running {
            instance: next,
            inputs: Some(Inputs::new(test, self.n_vocab)),
            ..Default::default()
        };
        Some(next)
    }

    fn request(&self, _c: usize, id: usize) -> Request<'_> {
        let inst = &self.instances[id];
        let t = &inst.test;
        let warm = t.warmup && self.running.step == 0;
        let inputs = self.running.inputs.as_ref();
        Request::Workload(WorkloadRequest {
            settings: &inst.settings,
            depth: inputs.map_or(&[][..], |i| &i.depth),
            prompt: inputs.map_or(&[][..], |i| &i.prompt),
            n_prompt: t.n_prompt,
            n_gen: if warm { t.n_gen.min(2) } else { t.n_gen },
        })
    }

    fn reply(&mut self, c: usize, id: usize, reply: Reply, seen: &Observed<'_>) -> Vec<Record> {
        let inst = self.instances[id].clone();
        let warm = inst.test.warmup && self.running.step == 0;
        let r = &mut self.running;
        r.step += 1;
        r.first_start.get_or_insert(seen.start);
        let w = match reply {
            Reply::Workload(w) => w,
            Reply::Failed(f) => {
                let label = &self.cells[c].label;
                seen.obs
                    .note(&format!("error: {label} {}: {}", inst.test.name, f.message));
                r.step = u32::MAX;
                self.failures += 1;
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        if warm {
            return Vec::new();
        }
        r.reps_start.get_or_insert(seen.start);
        r.peak_rss = r.peak_rss.max(seen.peak_rss);
        r.samples.push(RepetitionSample::of(&w.trace));
        r.engine = Some(w.engine);
        r.memory = Some(w.memory);
        if r.step < runs(&inst.test) {
            return Vec::new();
        }
        vec![self.record(&inst, seen)]
    }

    fn cell_failed(&mut self, c: usize, _reason: &str) -> Vec<Record> {
        self.failures += self.instances.iter().filter(|i| i.model == c).count();
        Vec::new()
    }
}

impl BenchPlan {
    /// The record of an instance whose repetitions are all in.
    fn record(&mut self, inst: &Instance, seen: &Observed<'_>) -> Record {
        let r = std::mem::take(&mut self.running);
        self.running.instance = r.instance;
        self.running.step = r.step;
        let start = r.reps_start.unwrap_or(seen.start);
        let before_from = r.first_start.unwrap_or(start);
        let before = seen.monitor.window(
            before_from
                .checked_sub(Duration::from_secs(2))
                .unwrap_or(before_from),
            start,
        );
        let during = seen.monitor.window(start, seen.end);
        let load = load_report(&inst.test.name, &before, &during, seen);
        let mut memory = r.memory.unwrap_or_default();
        memory.peak_rss_bytes = r.peak_rss.max(during.peak_rss);
        let engine = r.engine.unwrap_or_default();
        let results = crate::measure::results(&r.samples);
        let t = &inst.test;
        let depth = f64::from(t.n_depth) + f64::from(t.n_prompt) + f64::from(t.n_gen) / 2.0;
        let bandwidth = (self.meter.as_ref().zip(results.gen_tps.as_ref()))
            .map(|(meter, tps)| meter.figures(depth, tps.median, &engine));
        let info = seen.info;
        Record::Bench(Box::new(BenchRecord {
            provenance: Provenance::now(),
            test: inst.test.clone(),
            model: info.model.clone(),
            engine,
            build: info.build.clone(),
            machine: info.machine.clone(),
            memory,
            load,
            results,
            bandwidth,
            samples: r.samples,
        }))
    }
}

/// The load around a test; when busy, the busiest processes and a warning.
fn load_report(test: &str, before: &Window, during: &Window, seen: &Observed<'_>) -> LoadReport {
    let mut load = LoadReport::of(before, during, seen.busy_threshold);
    if load.busy {
        load.top_processes = crate::hw::load::top_processes(5, 5.0);
        seen.obs.warn(&format!(
            "{test}: other processes kept {:.2} cores busy on average around it (peak {:.2}){}; its figures are suspect",
            during.mean_other.max(before.mean_other),
            during.max_other.max(before.max_other),
            crate::hw::load::culprits(&load.top_processes)
        ));
    }
    load
}

#[cfg(test)]
#[path = "bench_tests.rs"]
mod tests;
