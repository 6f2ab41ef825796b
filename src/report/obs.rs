//! One normalized observation per sweep request or bench test: which machine, backend, model
//! and quantization it belongs to, and the figures the guide and the report read. Every field
//! a reader needs from a record is derived here, in one place per record kind.

use crate::hw::chips;
use crate::measure::gaps_ms;
use crate::record::{
    BackendId, Bandwidth, BenchRecord, BuildInfo, MachineInfo, MemoryUsage, ModelInfo,
    RequestRecord,
};
use crate::report::GIB;
use crate::scenario::ScenarioKind;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What makes two records come from the same machine: CPU, architecture, logical cores, RAM
/// (rounded to whole GiB, so a kernel update that moves MemTotal by a few MiB changes nothing)
/// and the accelerators llama.cpp saw.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Fingerprint {
    pub cpu: String,
    pub arch: String,
    pub logical_cores: usize,
    pub ram_gib: u64,
    /// Non-CPU compute devices, sorted: `name (description)`.
    pub accelerators: Vec<String>,
}

impl Fingerprint {
    pub fn of(m: &MachineInfo, build: &BuildInfo) -> Fingerprint {
        let mut accelerators: Vec<String> = build
            .devices
            .iter()
            .filter(|d| !d.backend.eq_ignore_ascii_case("cpu"))
            .map(|d| format!("{} ({})", d.name, d.description))
            .collect();
        accelerators.sort();
        accelerators.dedup();
        Fingerprint {
            cpu: m.cpu.trim().to_string(),
            arch: m.arch.clone(),
            logical_cores: m.logical_cores,
            ram_gib: (m.ram_bytes as f64 / GIB).round() as u64,
            accelerators,
        }
    }

    /// A short stable id: the first 8 hex digits of the sha256 of the fields.
    pub fn id(&self) -> String {
        let text = format!(
            "{}|{}|{}|{}|{}",
            self.cpu,
            self.arch,
            self.logical_cores,
            self.ram_gib,
            self.accelerators.join(",")
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..4])
    }
}

/// Which row of the guide a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RowKey {
    pub machine: Fingerprint,
    /// `native` (llama.cpp in-process) unless the record names another backend.
    pub backend: BackendId,
    pub model: String,
    /// Lowercase quantization type, e.g. `q4_k_m` (a sweep's `source` becomes the file's type).
    pub quant: String,
    /// Where a native run's weights sat; `None` for other backends, whose placement the
    /// records do not know.
    pub weights: Option<Weights>,
}

impl RowKey {
    /// `model quant`, plus the backend when it is not native, plus where the weights sat
    /// when that was not the machine's accelerator.
    pub fn series(&self) -> String {
        let on = self.site().suffix(&self.machine);
        if self.backend.is_native() {
            format!("{} {}{on}", self.model, self.quant)
        } else {
            format!("{} {} ({}){on}", self.model, self.quant, self.backend)
        }
    }

    /// Where the weights sat, taking the machine's default for backends that do not say.
    pub fn site(&self) -> Weights {
        self.weights
            .unwrap_or_else(|| Weights::default_on(&self.machine))
    }
}

/// Where a model's weights sat: all on the machine's accelerator, split between it and the
/// host, or all on the host. One machine measured both ways is two machines to the guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    Gpu,
    Split,
    Cpu,
}

impl Weights {
    /// Where `n_gpu_layers` put a model of `n_layer` repeating layers on machine `f`:
    /// llama.cpp keeps the output layer on the host unless asked for more layers than the
    /// model has.
    pub fn of(n_gpu_layers: u32, n_layer: u32, f: &Fingerprint) -> Weights {
        if f.accelerators.is_empty() || n_gpu_layers == 0 {
            Weights::Cpu
        } else if n_gpu_layers > n_layer {
            Weights::Gpu
        } else {
            Weights::Split
        }
    }

    /// Where weights sit on `f` with every layer offloaded: its accelerator, if it has one.
    pub fn default_on(f: &Fingerprint) -> Weights {
        Weights::of(u32::MAX, 0, f)
    }

    /// What a name of `f` adds to say where the weights sat: nothing for its default.
    pub fn suffix(self, f: &Fingerprint) -> &'static str {
        match self {
            _ if self == Weights::default_on(f) => "",
            Weights::Split => " (weights on CPU+GPU)",
            _ => " (weights on CPU)",
        }
    }
}

/// What kind of measurement an observation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// A short-response scenario request (TTFT and end-to-end latency matter).
    ShortResponse,
    /// A long-form scenario request (decode rate matters).
    LongForm,
    /// A `runner bench` test.
    Bench,
}

/// One request or bench test, reduced to what the readers use. Times in milliseconds.
#[derive(Debug, Clone)]
pub struct Obs {
    pub key: RowKey,
    pub workload: Workload,
    /// Scenario name or bench test name.
    pub test: String,
    /// TTFT of the request, or of each bench repetition.
    pub ttft_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
    /// (tokens - 1) / (last - first token time): the request's, or the bench median.
    pub decode_tps: Option<f64>,
    /// Every gap between consecutive tokens.
    pub itl_ms: Vec<f64>,
    pub bandwidth: Option<Bandwidth>,
    /// Graded pass/fail (sweep requests only).
    pub pass: Option<bool>,
    /// Money the run cost in USD; `None` when the record does not say (local runs).
    pub cost_usd: Option<f64>,
    /// Whether the request's executed graders (the answer's code run against tests) all
    /// passed; `None` without executed graders that ran.
    pub executed: Option<bool>,
    /// `(experts used, experts)` of a Mixture-of-Experts model.
    pub experts: Option<(u64, u64)>,
    /// Share of decode time spent routing tokens to experts (MoE records that carry it).
    pub routing_share: Option<f64>,
    /// llama.cpp's weights + KV cache + compute buffers.
    pub memory_needed_bytes: Option<u64>,
    /// What the machine has for the model: the largest accelerator's memory, else RAM.
    pub memory_present_bytes: u64,
    /// Other processes kept the machine busy: figures are suspect.
    pub busy: bool,
    pub time: String,
}

/// The observation of one sweep request.
pub fn from_request(r: &RequestRecord) -> Obs {
    let info = &r.info;
    let quant = if r.cell.quant == "source" {
        file_quant(info.model.file_type.as_deref())
    } else {
        r.cell.quant.to_ascii_lowercase()
    };
    let model = match &info.model.synthetic {
        Some(s) => s.label(info.model.file_name.trim_end_matches(".gguf")),
        None => model_name(
            Some(&r.cell.model),
            info.source_sha256.as_deref(),
            &info.source_path,
        ),
    };
    let workload = match r.scenario_kind {
        ScenarioKind::LongForm => Workload::LongForm,
        ScenarioKind::ShortResponse => Workload::ShortResponse,
    };
    let machine = Fingerprint::of(&info.machine, &info.build);
    let weights = r
        .cell
        .backend
        .is_native()
        .then(|| Weights::of(info.engine.n_gpu_layers, info.model.n_layer, &machine));
    Obs {
        memory_present_bytes: present(&info.machine, &info.build, weights),
        key: RowKey {
            machine,
            backend: r.cell.backend.clone(),
            model,
            quant,
            weights,
        },
        workload,
        test: r.scenario.clone(),
        ttft_ms: r.ttft_ms.filter(|_| r.waited()).into_iter().collect(),
        e2e_ms: r.waited().then_some(r.e2e_ms).into_iter().collect(),
        decode_tps: r.decode_tps,
        itl_ms: gaps_ms(&r.token_ms).collect(),
        bandwidth: r.bandwidth.clone(),
        // A request not graded here (every grader skipped) is neither passed nor failed.
        pass: (!r.ungraded).then_some(r.pass),
        executed: executed(&r.verdicts),
        cost_usd: r.cost_usd,
        experts: experts(&info.model),
        routing_share: info.routing.as_ref().and_then(routing_share),
        memory_needed_bytes: needed(&info.memory),
        busy: r.load.busy,
        time: r.provenance.time.clone(),
    }
}

/// The routing overhead's share of an MoE token's time: steady decode when measured, else
/// the first token after a short prompt.
fn routing_share(r: &crate::measure::routing::RoutingSummary) -> Option<f64> {
    [&r.long, &r.short]
        .into_iter()
        .find_map(|p| p.as_ref()?.overhead.as_ref().map(|o| o.share))
}

/// The observation of one bench test (a record with generated tokens or not).
pub fn from_bench(r: &BenchRecord) -> Obs {
    let m = &r.model;
    let machine = Fingerprint::of(&r.machine, &r.build);
    let weights = Weights::of(r.engine.n_gpu_layers, m.n_layer, &machine);
    Obs {
        memory_present_bytes: present(&r.machine, &r.build, Some(weights)),
        key: RowKey {
            machine,
            backend: BackendId::native(),
            model: match &m.synthetic {
                Some(s) => s.label(m.file_name.trim_end_matches(".gguf")),
                None => model_name(None, m.sha256.as_deref(), &m.path),
            },
            quant: file_quant(m.file_type.as_deref()),
            weights: Some(weights),
        },
        workload: Workload::Bench,
        test: r.test.name.clone(),
        ttft_ms: r.samples.iter().filter_map(|s| s.ttft_ms).collect(),
        e2e_ms: r.samples.iter().map(|s| s.e2e_ms).collect(),
        decode_tps: r.results.gen_tps.as_ref().map(|s| s.median),
        itl_ms: r
            .samples
            .iter()
            .flat_map(|s| gaps_ms(&s.token_ms))
            .collect(),
        bandwidth: r.bandwidth.clone(),
        pass: None,
        executed: None,
        cost_usd: None,
        experts: experts(m),
        routing_share: None,
        memory_needed_bytes: needed(&r.memory),
        busy: r.load.busy,
        time: r.provenance.time.clone(),
    }
}

/// Every observation of a set of records, sorted by key, workload, test and time.
pub fn all(records: &crate::record::Records) -> Vec<Obs> {
    let mut v: Vec<Obs> = records
        .requests
        .iter()
        // Requests of load levels shared the machine: they have their own table and charts.
        .filter(|r| r.traffic.is_none())
        .map(from_request)
        .chain(records.bench.iter().map(from_bench))
        .collect();
    v.sort_by(|a, b| {
        (&a.key, a.workload, &a.test, &a.time).cmp(&(&b.key, b.workload, &b.test, &b.time))
    });
    v
}

/// A quantization name from a GGUF file type: `Q4_K - Medium` → `q4_k_m`, `Q4_1` → `q4_1`.
pub fn file_quant(file_type: Option<&str>) -> String {
    let Some(t) = file_type else {
        return "unknown".into();
    };
    let t = t.trim().to_ascii_lowercase();
    let (base, size) = match t.split_once(" - ") {
        Some((b, s)) => (b.trim().to_string(), s.trim().chars().next()),
        None => (t.clone(), None),
    };
    match size {
        Some(c @ ('s' | 'm' | 'l')) => format!("{base}_{c}"),
        _ => base.replace(' ', "_"),
    }
}

/// A model's name: the known model whose sha256, name or file name matches, else the name
/// given when it is not a path, else the file name without `.gguf`. (GGUF's `general.name`
/// is not used: an upcycled or fine-tuned model often keeps its parent's.)
pub fn model_name(given: Option<&str>, sha256: Option<&str>, path: &str) -> String {
    let known = crate::models::known_models();
    if let Some(m) = sha256.and_then(|s| known.iter().find(|m| m.sha256 == s)) {
        return m.name.to_string();
    }
    if let Some(m) = given.and_then(crate::models::find) {
        return m.name.to_string();
    }
    let file = std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path);
    if let Some(m) = known.iter().find(|m| m.file_name == file) {
        return m.name.to_string();
    }
    match given {
        Some(g) if !g.contains('/') && !g.ends_with(".gguf") && !g.is_empty() => g.to_string(),
        _ => file.trim_end_matches(".gguf").to_string(),
    }
}

/// Whether every executed grader that ran passed, `None` when none ran.
pub fn executed(verdicts: &[crate::scenario::Verdict]) -> Option<bool> {
    let ran: Vec<bool> = verdicts
        .iter()
        .filter(|v| v.execution.as_ref().is_some_and(|x| x.skipped.is_none()))
        .map(|v| v.pass)
        .collect();
    (!ran.is_empty()).then(|| ran.iter().all(|&p| p))
}

fn experts(m: &ModelInfo) -> Option<(u64, u64)> {
    Some((m.expert_used_count?, m.expert_count?)).filter(|&(_, n)| n > 1)
}

fn needed(m: &MemoryUsage) -> Option<u64> {
    let total = m
        .model_bytes
        .saturating_add(m.kv_cache_bytes)
        .saturating_add(m.compute_buffer_bytes);
    (total > 0).then_some(total)
}

/// What the machine has for weights that sat where `weights` says: the largest accelerator's
/// memory, else (weights on the host, or no accelerator) RAM.
fn present(m: &MachineInfo, build: &BuildInfo, weights: Option<Weights>) -> u64 {
    build
        .devices
        .iter()
        .filter(|d| !d.backend.eq_ignore_ascii_case("cpu") && weights != Some(Weights::Cpu))
        .map(|d| d.memory_total_bytes)
        .max()
        .filter(|&b| b > 0)
        .unwrap_or(m.ram_bytes)
}

/// The chip table's entry for where a machine's weights sat: its first recognised
/// accelerator (where llama.cpp puts them by default), else, or with weights on the host,
/// its CPU.
pub fn chip_of(f: &Fingerprint, weights: Weights) -> Option<&'static chips::Chip> {
    f.accelerators
        .iter()
        .filter(|_| weights != Weights::Cpu)
        .find_map(|a| chips::recognise(a, None))
        .or_else(|| chips::recognise(&f.cpu, Some(f.logical_cores)))
}

/// A readable machine name: the recognised chip or the CPU, its cores, memory and
/// accelerators, and where the weights sat when not on the accelerator.
pub fn machine_label(f: &Fingerprint, weights: Weights) -> String {
    let name = chip_of(f, weights).map_or(f.cpu.as_str(), |c| c.name);
    let mut s = format!("{name}, {} cores, {} GiB", f.logical_cores, f.ram_gib);
    for a in &f.accelerators {
        s.push_str(&format!(" + {a}"));
    }
    s + weights.suffix(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_types_become_quant_names() {
        assert_eq!(file_quant(Some("Q4_1")), "q4_1");
        assert_eq!(file_quant(Some("Q4_K - Medium")), "q4_k_m");
        assert_eq!(file_quant(Some("Q3_K - Small")), "q3_k_s");
        assert_eq!(file_quant(Some("Q6_K")), "q6_k");
        assert_eq!(file_quant(Some("BF16")), "bf16");
        assert_eq!(file_quant(None), "unknown");
    }

    #[test]
    fn models_are_named_by_hash_name_or_file() {
        let smol = crate::models::find("smollm2-135m").unwrap();
        assert_eq!(
            model_name(None, Some(smol.sha256), "/x/y.gguf"),
            "smollm2-135m"
        );
        assert_eq!(
            model_name(Some("smollm2-135m"), None, "/x/y.gguf"),
            "smollm2-135m"
        );
        assert_eq!(
            model_name(None, None, &format!("/c/{}", smol.file_name)),
            "smollm2-135m"
        );
        assert_eq!(
            model_name(Some("/m/Foo-7B.gguf"), None, "/m/Foo-7B.gguf"),
            "Foo-7B"
        );
        assert_eq!(model_name(Some("My Model"), None, "/m/a.gguf"), "My Model");
    }

    #[test]
    fn fingerprints_ignore_small_ram_changes_and_see_accelerators() {
        let m = MachineInfo {
            cpu: "Apple M4 Pro".into(),
            arch: "aarch64".into(),
            logical_cores: 14,
            ram_bytes: 48 << 30,
            ..Default::default()
        };
        let mut m2 = m.clone();
        m2.ram_bytes -= 5 << 20;
        m2.os = "other".into();
        let b = BuildInfo::default();
        assert_eq!(Fingerprint::of(&m, &b), Fingerprint::of(&m2, &b));
        assert_eq!(Fingerprint::of(&m, &b).id().len(), 8);
        let f = Fingerprint::of(&m, &b);
        assert_eq!(
            machine_label(&f, Weights::Cpu),
            "Apple M4 Pro, 14 cores, 48 GiB"
        );
        let mut gpu = BuildInfo::default();
        gpu.devices.push(crate::record::DeviceInfo {
            name: "CUDA0".into(),
            description: "NVIDIA H100 80GB HBM3".into(),
            backend: "CUDA".into(),
            memory_total_bytes: 80 << 30,
        });
        let g = Fingerprint::of(&m, &gpu);
        assert_ne!(g, f);
        assert_ne!(g.id(), f.id());
        assert_eq!(present(&m, &gpu, Some(Weights::Gpu)), 80 << 30);
        assert_eq!(present(&m, &gpu, None), 80 << 30);
        assert_eq!(present(&m, &gpu, Some(Weights::Cpu)), 48 << 30);
        assert_eq!(present(&m, &b, Some(Weights::Cpu)), 48 << 30);
    }

    #[test]
    fn weights_sit_where_the_offloaded_layer_count_puts_them() {
        let cpu_only = Fingerprint {
            cpu: "AMD EPYC".into(),
            arch: "x86_64".into(),
            logical_cores: 16,
            ram_gib: 128,
            accelerators: Vec::new(),
        };
        let gpu = Fingerprint {
            accelerators: vec!["CUDA0 (NVIDIA H100 80GB HBM3)".into()],
            ..cpu_only.clone()
        };
        assert_eq!(Weights::of(999, 32, &cpu_only), Weights::Cpu);
        assert_eq!(Weights::of(999, 32, &gpu), Weights::Gpu);
        assert_eq!(Weights::of(33, 32, &gpu), Weights::Gpu);
        // The output layer stays on the host at exactly the model's layer count.
        assert_eq!(Weights::of(32, 32, &gpu), Weights::Split);
        assert_eq!(Weights::of(0, 32, &gpu), Weights::Cpu);
        assert_eq!(Weights::default_on(&gpu), Weights::Gpu);
        assert_eq!(Weights::default_on(&cpu_only), Weights::Cpu);
        // Names say where the weights sat only when it was not the default, and name the chip
        // they sat on.
        assert_eq!(Weights::Cpu.suffix(&cpu_only), "");
        assert_eq!(Weights::Gpu.suffix(&gpu), "");
        assert_eq!(Weights::Split.suffix(&gpu), " (weights on CPU+GPU)");
        assert!(machine_label(&gpu, Weights::Gpu).starts_with("NVIDIA H100 SXM, 16 cores"));
        assert_eq!(
            machine_label(&gpu, Weights::Cpu),
            "AMD EPYC, 16 cores, 128 GiB + CUDA0 (NVIDIA H100 80GB HBM3) (weights on CPU)"
        );
        let key = RowKey {
            machine: gpu,
            backend: BackendId::native(),
            model: "m".into(),
            quant: "q8_0".into(),
            weights: Some(Weights::Cpu),
        };
        assert_eq!(key.series(), "m q8_0 (weights on CPU)");
    }
}
