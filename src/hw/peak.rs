//! The peaks decode is held against: this machine's measured bandwidth (probed once and cached
//! per machine; `runner hw` measures it again) and the published peak of its chip or GPU.

use super::chips::{self, Chip, ChipKind};
use super::machine::MachineInfo;
use super::stream::{self, Kernel, KernelResult, ProbeConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A probe's results, saved so later runs on the same machine need not probe again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub machine: MachineKey,
    /// RFC 3339 time of the measurement.
    pub time: String,
    pub array_bytes: u64,
    pub passes: u32,
    pub results: Vec<KernelResult>,
    /// Mean load other processes put on the machine while it was measured, in cores.
    #[serde(default)]
    pub other_cores: f64,
    /// Other processes kept the machine busy meanwhile: the figures are low, and such a
    /// measurement is never saved for later runs.
    #[serde(default)]
    pub busy: bool,
}

/// What makes two machines the same for a saved measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineKey {
    pub cpu: String,
    pub arch: String,
    pub logical_cores: usize,
    pub ram_bytes: u64,
}

impl MachineKey {
    pub fn of(m: &MachineInfo) -> MachineKey {
        MachineKey {
            cpu: m.cpu.clone(),
            arch: m.arch.clone(),
            logical_cores: m.logical_cores,
            ram_bytes: m.ram_bytes,
        }
    }
}

/// Where the measurement is kept.
pub fn path(cache: &Path) -> PathBuf {
    cache.join("hw").join("bandwidth.json")
}

/// The bandwidths a saved measurement may hold, in GB/s: from 0.1 (slower than any memory a
/// model runs from) to 100,000 (beyond any memory system's). A file with a figure outside
/// them, or one that is not a number, was damaged or edited and is not believed.
pub const PLAUSIBLE_GBPS: std::ops::RangeInclusive<f64> = 0.1..=100_000.0;

/// The saved measurement, if it was taken on this machine (and is a regular file; anything
/// else there is measured again). One holding a bandwidth outside [`PLAUSIBLE_GBPS`] is
/// ignored with a warning, as if none were saved.
pub fn load(cache: &Path, machine: &MachineInfo) -> Option<Measurement> {
    let path = path(cache);
    let text = crate::util::fs::read_input(&path, crate::util::fs::Input::Config).ok()?;
    let m: Measurement = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "warning: {}: not a saved bandwidth measurement ({e}); it is measured again",
                path.display()
            );
            return None;
        }
    };
    if m.machine != MachineKey::of(machine) || m.busy {
        return None;
    }
    if let Err(why) = believable(&m) {
        eprintln!(
            "warning: {}: the saved bandwidth measurement is not believed ({why}); it is \
             ignored as if none were saved",
            path.display()
        );
        return None;
    }
    Some(m)
}

/// Every figure of `m` is a bandwidth within [`PLAUSIBLE_GBPS`] read by at least one thread,
/// and one of them is a `read` (the measured peak); else why not.
fn believable(m: &Measurement) -> Result<(), String> {
    if let Some(r) = m.results.iter().find(|r| r.threads == 0) {
        return Err(format!(
            "{}, 0 threads: no thread ran it",
            r.kernel.as_str()
        ));
    }
    if !m.results.iter().any(|r| r.kernel == Kernel::Read) {
        return Err("it holds no read figure, the measured peak".into());
    }
    let (lo, hi) = (PLAUSIBLE_GBPS.start(), PLAUSIBLE_GBPS.end());
    let Some(r) = m.results.iter().find(|r| !PLAUSIBLE_GBPS.contains(&r.gbps)) else {
        return Ok(());
    };
    let gbps = match (1e-3..1e9).contains(&r.gbps.abs()) {
        true => r.gbps.to_string(),
        false => format!("{:e}", r.gbps),
    };
    Err(format!(
        "{}, {} thread(s): {gbps} GB/s is outside {lo} to {hi} GB/s",
        r.kernel.as_str(),
        r.threads
    ))
}

/// Saves a measurement (atomically; a failure to save is not fatal to a run). One taken on a
/// busy machine is refused, and so is a cache path that is not a regular file (a FIFO, a
/// device): nothing is written into it.
pub fn save(cache: &Path, m: &Measurement) -> anyhow::Result<()> {
    if let Some(why) = busy_reason(m, " while it was measured") {
        anyhow::bail!("not saved: {why}");
    }
    let text = serde_json::to_string_pretty(m)? + "\n";
    let file = path(cache);
    crate::util::fs::out_file(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    crate::util::fs::write_atomic(&file, &text)?;
    Ok(())
}

/// Runs the probe on this machine, watching what else runs meanwhile.
pub fn measure(machine: &MachineInfo, cfg: &ProbeConfig) -> Measurement {
    let monitor = super::load::LoadMonitor::start();
    let start = std::time::Instant::now();
    let results = stream::run(cfg);
    let end = std::time::Instant::now();
    let mut w = monitor.window(start, end);
    if w.samples == 0 {
        // A probe shorter than the sampling interval: the first sample after it covers it.
        let wait = std::time::Duration::from_secs(1);
        if monitor.await_sample_after(end, wait) {
            w = monitor.window(start, std::time::Instant::now());
        }
    }
    Measurement {
        machine: MachineKey::of(machine),
        time: crate::util::time::now_rfc3339(),
        array_bytes: cfg.array_bytes,
        passes: cfg.passes,
        results,
        other_cores: w.mean_other,
        // Load that was never sampled is not known to be none.
        busy: w.samples == 0 || w.mean_other > super::load::DEFAULT_BUSY_CORES,
    }
}

/// The default probe: all kernels on one thread and on every thread.
pub fn full_probe(machine: &MachineInfo) -> ProbeConfig {
    let largest = super::machine::caches().iter().map(|c| c.bytes).max();
    let all = machine.logical_cores.max(1);
    let mut threads = vec![1];
    if all > 1 {
        threads.push(all);
    }
    ProbeConfig {
        array_bytes: stream::default_array_bytes(largest, super::machine::available_memory()),
        passes: 5,
        threads,
        kernels: Kernel::ALL.to_vec(),
    }
}

/// The highest read bandwidth measured: the most a decode, which streams weights, can expect.
pub fn measured_peak(m: &Measurement) -> Option<(f64, String)> {
    m.results
        .iter()
        .filter(|r| r.kernel == Kernel::Read && r.gbps > 0.0)
        .max_by(|a, b| a.gbps.total_cmp(&b.gbps))
        .map(|r| {
            let s = if r.threads == 1 { "" } else { "s" };
            (r.gbps, format!("read, {} thread{s}", r.threads))
        })
}

/// The peaks a decode rate is held against. GB/s are 10^9 bytes per second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Peaks {
    /// Bandwidth measured on this machine, and how (e.g. "read, 8 threads").
    pub measured: Option<(f64, String)>,
    /// Published peak of the recognised chip, and the chip's name.
    pub published: Option<(f64, String)>,
}

/// The published peak for where the weights live: the GPU they are offloaded to (its name
/// and description), or the machine's chip.
pub fn published(machine: &MachineInfo, gpu: Option<(&str, &str)>) -> Option<&'static Chip> {
    let cores = Some(machine.logical_cores);
    match gpu {
        Some((name, description)) => {
            chips::recognise(description, cores).or_else(|| chips::recognise(name, cores))
        }
        None => chips::recognise(&machine.cpu, cores).filter(|c| c.kind == ChipKind::Cpu),
    }
}

/// The peaks for a run (weights on `gpu`, else on the host): the measurement of host memory
/// that `measured` gives (asked for only when the weights are on the host: a discrete GPU has
/// no measured peak) and the published figure.
pub fn peaks(
    machine: &MachineInfo,
    gpu: Option<(&str, &str)>,
    measured: impl FnOnce() -> Option<Measurement>,
) -> Peaks {
    let chip = published(machine, gpu);
    let on_host = chip.is_none_or(|c| c.kind == ChipKind::Cpu);
    let saved = if on_host { measured() } else { None };
    Peaks {
        measured: saved.as_ref().and_then(measured_peak),
        published: chip.map(|c| (c.peak_gbps, c.name.to_string())),
    }
}

/// The saved measurement for this machine; without one, a read-only probe on every thread
/// (about a second), saved for later runs. A probe taken on a busy machine reads low: it is
/// neither saved nor used (a warning says so), and the run has no measured peak.
pub fn ensure_measured(cache: &Path, machine: &MachineInfo) -> Option<Measurement> {
    if let Some(m) = load(cache, machine) {
        return Some(m);
    }
    eprintln!("measuring this machine's memory bandwidth once (see `runner hw`)...");
    let mut cfg = full_probe(machine);
    cfg.passes = 3;
    cfg.kernels = vec![Kernel::Read];
    cfg.threads = vec![machine.logical_cores.max(1)];
    usable(cache, measure(machine, &cfg))
}

/// A fresh probe `m` as a run may use it: saved when the machine was idle, else (with a
/// warning) none.
fn usable(cache: &Path, m: Measurement) -> Option<Measurement> {
    if let Some(why) = busy_reason(&m, "") {
        eprintln!(
            "warning: the bandwidth probe was taken on a busy machine ({why}) and is not used: \
             records carry no measured peak (run `runner hw` on an idle machine)"
        );
        return None;
    }
    if let Err(e) = save(cache, &m) {
        eprintln!("warning: the bandwidth measurement is used for this run only: {e:#}");
    }
    Some(m)
}

/// Why `m` counts as taken on a busy machine, if it does; `during` follows the load when it
/// was sampled (`" while it was measured"`).
fn busy_reason(m: &Measurement, during: &str) -> Option<String> {
    if !m.busy {
        return None;
    }
    Some(if m.other_cores <= super::load::DEFAULT_BUSY_CORES {
        "the load of other processes could not be sampled meanwhile".into()
    } else {
        format!(
            "other processes kept {:.2} cores busy{during}",
            m.other_cores
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(cpu: &str, cores: usize) -> MachineInfo {
        MachineInfo {
            cpu: cpu.into(),
            arch: "aarch64".into(),
            logical_cores: cores,
            ram_bytes: 64 << 30,
            ..Default::default()
        }
    }

    /// A probe far shorter than the load monitor's sampling interval, on a machine another
    /// process keeps busy, is measured busy: not saved as an idle machine's figure.
    #[test]
    fn a_probe_shorter_than_a_load_sample_is_not_taken_for_idle() {
        let mut spin = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh runs");
        // Let the spinning process run for a full sample before the probe starts.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let cfg = ProbeConfig {
            array_bytes: 1 << 16,
            passes: 1,
            threads: vec![1],
            kernels: vec![Kernel::Read],
        };
        let m = measure(&machine("test cpu", 2), &cfg);
        let _ = spin.kill();
        let _ = spin.wait();
        assert!(m.busy && m.other_cores > 0.5, "{m:?}");
        let dir = tempfile::tempdir().unwrap();
        assert!(save(dir.path(), &m).is_err());
    }

    fn result(kernel: Kernel, threads: usize, gbps: f64) -> KernelResult {
        KernelResult {
            kernel,
            threads,
            gbps,
            min_gbps: gbps,
            max_gbps: gbps,
            passes_gbps: vec![gbps],
        }
    }

    #[test]
    fn measured_peak_is_the_best_read() {
        let m = Measurement {
            machine: MachineKey::of(&machine("x", 8)),
            time: String::new(),
            array_bytes: 1,
            passes: 1,
            results: vec![
                result(Kernel::Read, 1, 40.0),
                result(Kernel::Triad, 8, 120.0),
                result(Kernel::Read, 8, 100.0),
            ],
            other_cores: 0.0,
            busy: false,
        };
        assert_eq!(measured_peak(&m), Some((100.0, "read, 8 threads".into())));
    }

    /// An idle measurement on `here` whose one figure is a 14-thread read at `gbps`.
    fn read_at(here: &MachineInfo, gbps: f64) -> Measurement {
        Measurement {
            machine: MachineKey::of(here),
            time: "t".into(),
            array_bytes: 1,
            passes: 1,
            results: vec![result(Kernel::Read, 14, gbps)],
            other_cores: 0.0,
            busy: false,
        }
    }

    #[test]
    fn saved_measurement_is_only_used_on_the_same_machine() {
        let dir = tempfile::tempdir().unwrap();
        let here = machine("Apple M4 Pro", 14);
        let m = read_at(&here, 200.0);
        save(dir.path(), &m).unwrap();
        assert_eq!(load(dir.path(), &here), Some(m.clone()));
        // A measurement taken on a busy machine is neither saved nor read back.
        let busy = Measurement {
            busy: true,
            other_cores: 1.2,
            ..m.clone()
        };
        assert_eq!(
            save(dir.path(), &busy).unwrap_err().to_string(),
            "not saved: other processes kept 1.20 cores busy while it was measured"
        );
        let unsampled = Measurement {
            other_cores: 0.0,
            ..busy.clone()
        };
        assert_eq!(
            save(dir.path(), &unsampled).unwrap_err().to_string(),
            "not saved: the load of other processes could not be sampled meanwhile"
        );
        assert_eq!(load(dir.path(), &here), Some(m));
        assert_eq!(load(dir.path(), &machine("Apple M4 Pro", 12)), None);
        let p = peaks(&here, None, || load(dir.path(), &here));
        assert_eq!(p.measured, Some((200.0, "read, 14 threads".into())));
        assert_eq!(p.published, Some((273.0, "Apple M4 Pro".into())));
        // Another machine, not measured: nothing measured, nothing published.
        let other = peaks(&machine("Some CPU", 4), None, || None);
        assert_eq!(other, Peaks::default());
    }

    /// A probe a run took on a busy machine reads low: it is not the machine's measured peak,
    /// so the run gets none (and nothing is saved); an idle one is used and saved.
    #[test]
    fn a_probe_taken_on_a_busy_machine_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let here = machine("Apple M4 Pro", 14);
        let busy = |other_cores: f64| Measurement {
            busy: true,
            other_cores,
            ..read_at(&here, 90.0)
        };
        // Busy, and busy for want of a load sample.
        for other_cores in [2.0, 0.0] {
            assert_eq!(usable(dir.path(), busy(other_cores)), None, "{other_cores}");
            let p = peaks(&here, None, || usable(dir.path(), busy(other_cores)));
            assert_eq!(p.measured, None);
            assert_eq!(p.published, Some((273.0, "Apple M4 Pro".into())));
            assert!(!path(dir.path()).exists());
        }
        let p = peaks(&here, None, || usable(dir.path(), read_at(&here, 150.0)));
        assert_eq!(p.measured, Some((150.0, "read, 14 threads".into())));
        assert_eq!(load(dir.path(), &here), Some(read_at(&here, 150.0)));
    }

    #[test]
    fn a_cache_that_is_not_a_regular_file_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().unwrap();
        let here = machine("Apple M4 Pro", 14);
        let cache = path(dir.path());
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&cache).status();
        assert!(made.unwrap().success());
        // Neither waits for a writer or a reader on the FIFO (the test would hang).
        assert_eq!(load(dir.path(), &here), None);
        let m = read_at(&here, 200.0);
        let e = save(dir.path(), &m).unwrap_err().to_string();
        assert!(
            e.ends_with("is not a regular file (a device or FIFO); write to a file"),
            "{e}"
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&cache)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn a_saved_bandwidth_beyond_belief_is_as_none_saved() {
        let dir = tempfile::tempdir().unwrap();
        let here = machine("Apple M4 Pro", 14);
        let saved = |gbps: f64| {
            let m = Measurement {
                machine: MachineKey::of(&here),
                time: "t".into(),
                array_bytes: 1,
                passes: 1,
                results: vec![
                    result(Kernel::Copy, 1, 50.0),
                    result(Kernel::Read, 14, gbps),
                ],
                other_cores: 0.0,
                busy: false,
            };
            // Written by hand: a file damaged or edited after `runner hw` saved it.
            let text = serde_json::to_string(&m).unwrap();
            std::fs::create_dir_all(path(dir.path()).parent().unwrap()).unwrap();
            std::fs::write(path(dir.path()), text).unwrap();
            m
        };
        for absurd in [1e-300, 1e300, 0.0, -200.0, 0.099, 100_001.0] {
            saved(absurd);
            assert_eq!(load(dir.path(), &here), None, "{absurd}");
            let p = peaks(&here, None, || load(dir.path(), &here));
            assert_eq!(p.measured, None, "{absurd}");
            let why = believable(&saved(absurd)).unwrap_err();
            assert!(why.contains("read, 14 thread(s)"), "{why}");
            assert!(why.ends_with("is outside 0.1 to 100000 GB/s"), "{why}");
        }
        for fine in [0.1, 200.0, 100_000.0] {
            let m = saved(fine);
            assert_eq!(load(dir.path(), &here), Some(m), "{fine}");
        }
    }

    #[test]
    fn a_saved_measurement_without_a_read_by_some_threads_is_as_none_saved() {
        let dir = tempfile::tempdir().unwrap();
        let here = machine("Apple M4 Pro", 14);
        let save_raw = |m: &Measurement| {
            std::fs::create_dir_all(path(dir.path()).parent().unwrap()).unwrap();
            std::fs::write(path(dir.path()), serde_json::to_string(m).unwrap()).unwrap();
        };
        let mut no_read = read_at(&here, 200.0);
        no_read.results = vec![result(Kernel::Copy, 14, 50.0)];
        let mut no_threads = read_at(&here, 200.0);
        no_threads.results[0].threads = 0;
        let mut none = read_at(&here, 200.0);
        none.results.clear();
        for m in [no_read, no_threads, none] {
            save_raw(&m);
            assert_eq!(load(dir.path(), &here), None, "{m:?}");
        }
        std::fs::write(path(dir.path()), "{\"machine\": 1").unwrap();
        assert_eq!(load(dir.path(), &here), None);
        let fine = read_at(&here, 200.0);
        save_raw(&fine);
        assert_eq!(load(dir.path(), &here), Some(fine));
    }

    #[test]
    fn an_offloaded_model_is_held_against_its_gpu() {
        let gpu = Some(("CUDA0", "NVIDIA GeForce RTX 4090"));
        let m = machine("AMD Ryzen 9 7950X 16-Core Processor", 32);
        let gpu = peaks(&m, gpu, || panic!("a GPU's peak is not measured"));
        assert_eq!(
            gpu.published,
            Some((1008.0, "NVIDIA GeForce RTX 4090".into()))
        );
        assert_eq!(gpu.measured, None);
        let cpu = peaks(&m, None, || None);
        assert_eq!(cpu.published, Some((83.2, "AMD Ryzen 9 7950X".into())));
    }

    /// A laptop part is another chip than the desktop card it shares a number with: it has no
    /// published peak, and its host memory is measured instead.
    #[test]
    fn a_gpu_variant_the_table_lacks_has_no_published_peak() {
        let m = machine("AMD Ryzen 9 7950X 16-Core Processor", 32);
        for description in [
            "NVIDIA GeForce RTX 4090 Laptop GPU",
            "NVIDIA GeForce RTX 4090 Ti",
            "NVIDIA GeForce RTX 4080 Laptop GPU",
        ] {
            assert_eq!(published(&m, Some(("CUDA0", description))), None);
        }
        let here = machine("Apple M4 Prox", 10);
        assert_eq!(published(&here, None), None);
    }
}
