//! A STREAM-style memory bandwidth probe: read, copy and triad over arrays far larger than
//! the caches, on one thread and on all threads, median of several passes.
//!
//! Bytes are counted as STREAM counts them: what the kernel reads plus what it writes
//! (read: 8 B per element, copy: 16 B, triad: 24 B); write-allocate traffic is not counted.

use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

/// Smallest array the default picks, whatever the caches report: system-level caches
/// (Apple's SLC, AMD's 3D V-Cache) can reach ~100 MiB and are not always reported.
pub const MIN_ARRAY_BYTES: u64 = 256 << 20;
/// Largest array the default picks (three are allocated).
pub const MAX_ARRAY_BYTES: u64 = 1 << 30;
/// Most timed passes per kernel and thread count (each pass is kept).
pub const MAX_PASSES: u32 = 1000;
/// The share of the machine's RAM the three arrays may take, whatever size is asked.
pub const MAX_RAM_SHARE: f64 = 0.5;

crate::util::names::named_enum! {
    /// One of the probe's kernels.
    pub enum Kernel {
        /// `sum += a[i]`: reads only, like decode streaming the weights.
        Read = "read",
        /// `b[i] = a[i]`.
        Copy = "copy",
        /// `a[i] = b[i] + s * c[i]`.
        Triad = "triad",
    }
}

impl Kernel {
    /// Bytes moved per array element.
    pub fn bytes_per_element(self) -> u64 {
        match self {
            Kernel::Read => 8,
            Kernel::Copy => 16,
            Kernel::Triad => 24,
        }
    }
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Bytes of each of the three arrays.
    pub array_bytes: u64,
    pub passes: u32,
    /// Thread counts to measure, in order (e.g. `[1, 8]`).
    pub threads: Vec<usize>,
    pub kernels: Vec<Kernel>,
}

/// One kernel at one thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelResult {
    pub kernel: Kernel,
    pub threads: usize,
    /// Median over passes, in GB/s (10^9 bytes per second).
    pub gbps: f64,
    pub min_gbps: f64,
    pub max_gbps: f64,
    /// Every pass, in GB/s, in the order measured.
    pub passes_gbps: Vec<f64>,
}

/// Default array size: four times the largest cache (STREAM's rule), within bounds.
pub fn default_array_bytes(largest_cache: Option<u64>, available: u64) -> u64 {
    let want = largest_cache.map_or(MIN_ARRAY_BYTES, |c| c.saturating_mul(4));
    let cap = MAX_ARRAY_BYTES.min(available / 8).max(MIN_ARRAY_BYTES);
    want.clamp(MIN_ARRAY_BYTES, cap)
}

/// The largest array, in MiB, whose three copies fit in [`MAX_RAM_SHARE`] of `ram_bytes`.
pub fn max_array_mib(ram_bytes: u64) -> u64 {
    (ram_bytes as f64 * MAX_RAM_SHARE / 3.0) as u64 >> 20
}

/// Runs the probe: for each thread count, each kernel, `passes` timed passes.
/// Results come in the order of `cfg.threads`, then `cfg.kernels`.
pub fn run(cfg: &ProbeConfig) -> Vec<KernelResult> {
    let n = (cfg.array_bytes / 8).max(1024) as usize;
    let max_threads = cfg.threads.iter().copied().max().unwrap_or(1).max(1);
    let mut a = vec![0.0f64; n];
    let mut b = vec![0.0f64; n];
    let mut c = vec![0.0f64; n];
    // First touch on the threads that will use the pages, so they are resident before timing.
    let fill = |a: &mut [f64], b: &mut [f64], _: &[f64]| {
        a.fill(1.0);
        b.fill(2.0);
    };
    timed_split(max_threads, &mut a, &mut b, &c, fill, || {});
    timed_split(
        max_threads,
        &mut c,
        &mut b,
        &a,
        |c, _, _| c.fill(0.5),
        || {},
    );
    let mut out = Vec::new();
    for &threads in &cfg.threads {
        let threads = threads.max(1);
        for &kernel in &cfg.kernels {
            let mut passes = Vec::new();
            for _ in 0..cfg.passes.max(1) {
                let work = |a: &mut [f64], b: &mut [f64], c: &[f64]| run_kernel(kernel, a, b, c);
                let secs = timed_split(threads, &mut a, &mut b, &c, work, || {});
                let bytes = kernel.bytes_per_element() as f64 * n as f64;
                passes.push(bytes / secs.max(1e-9) / 1e9);
            }
            out.push(summarise(kernel, threads, passes));
        }
    }
    out
}

fn summarise(kernel: Kernel, threads: usize, passes: Vec<f64>) -> KernelResult {
    let median = crate::util::quantile::percentile(&passes, 0.5).unwrap_or(0.0);
    let min = passes.iter().copied().fold(f64::INFINITY, f64::min);
    let max = passes.iter().copied().fold(0.0, f64::max);
    KernelResult {
        kernel,
        threads,
        gbps: median,
        min_gbps: if min.is_finite() { min } else { 0.0 },
        max_gbps: max,
        passes_gbps: passes,
    }
}

/// Runs `work` over matching chunks of the arrays on `threads` threads released together.
/// Each thread stamps its own start and end, so the time is the span of the work itself
/// (earliest start to latest end) however late the calling thread runs after the release;
/// `after_release` runs on the calling thread once the threads are released.
fn timed_split(
    threads: usize,
    a: &mut [f64],
    b: &mut [f64],
    c: &[f64],
    work: impl Fn(&mut [f64], &mut [f64], &[f64]) + Sync,
    after_release: impl FnOnce(),
) -> f64 {
    let threads = threads.max(1);
    let start = Barrier::new(threads + 1);
    let chunk = a.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = a
            .chunks_mut(chunk)
            .zip(b.chunks_mut(chunk))
            .zip(c.chunks(chunk))
            .map(|((a, b), c)| {
                let (start, work) = (&start, &work);
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    work(a, b, c);
                    (t0, Instant::now())
                })
            })
            .collect();
        // Chunks can be fewer than threads for tiny arrays: release the barrier anyway.
        for _ in handles.len()..threads {
            s.spawn(|| {
                start.wait();
            });
        }
        start.wait();
        after_release();
        let spans: Vec<(Instant, Instant)> =
            handles.into_iter().filter_map(|h| h.join().ok()).collect();
        span_secs(&spans)
    })
}

/// Seconds from the earliest start to the latest end of `spans` (0 when there are none).
fn span_secs(spans: &[(Instant, Instant)]) -> f64 {
    let first = spans.iter().map(|s| s.0).min();
    let last = spans.iter().map(|s| s.1).max();
    match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
        _ => 0.0,
    }
}

fn run_kernel(kernel: Kernel, a: &mut [f64], b: &mut [f64], c: &[f64]) {
    match kernel {
        Kernel::Read => {
            black_box(sum(a));
        }
        Kernel::Copy => b.copy_from_slice(a),
        Kernel::Triad => {
            let s = black_box(3.0);
            for ((a, b), c) in a.iter_mut().zip(b.iter()).zip(c) {
                *a = *b + s * *c;
            }
        }
    }
    black_box((a, b));
}

/// A sum with independent accumulators, so the compiler can keep several vector adds in
/// flight and the loop is limited by memory, not by the add latency.
fn sum(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_compute_what_they_say() {
        let mut a = vec![1.0; 19];
        let mut b = vec![2.0; 19];
        let c = vec![0.5; 19];
        assert_eq!(sum(&a), 19.0);
        run_kernel(Kernel::Triad, &mut a, &mut b, &c);
        assert!(a.iter().all(|&x| x == 3.5));
        run_kernel(Kernel::Copy, &mut a, &mut b, &c);
        assert!(b.iter().all(|&x| x == 3.5));
    }

    #[test]
    fn probe_returns_positive_results_in_a_fixed_order() {
        let cfg = ProbeConfig {
            array_bytes: 4 << 20,
            passes: 3,
            threads: vec![1, 2],
            kernels: Kernel::ALL.to_vec(),
        };
        let r = run(&cfg);
        let order: Vec<(Kernel, usize)> = r.iter().map(|k| (k.kernel, k.threads)).collect();
        assert_eq!(
            order,
            [
                (Kernel::Read, 1),
                (Kernel::Copy, 1),
                (Kernel::Triad, 1),
                (Kernel::Read, 2),
                (Kernel::Copy, 2),
                (Kernel::Triad, 2)
            ]
        );
        for k in &r {
            assert_eq!(k.passes_gbps.len(), 3);
            assert!(k.gbps > 0.0 && k.gbps.is_finite(), "{k:?}");
            assert!(k.min_gbps <= k.gbps && k.gbps <= k.max_gbps, "{k:?}");
        }
    }

    #[test]
    fn a_pass_is_timed_by_its_threads_not_by_the_caller() {
        // The calling thread runs late after the release; the pass still takes as long as
        // the threads' work, not what is left of it when the caller gets to run.
        for threads in [1, 2, 3] {
            let mut a = vec![1.0; 64];
            let mut b = vec![2.0; 64];
            let c = vec![0.5; 64];
            let secs = timed_split(
                threads,
                &mut a,
                &mut b,
                &c,
                |_, _, _| std::thread::sleep(std::time::Duration::from_millis(200)),
                || std::thread::sleep(std::time::Duration::from_millis(150)),
            );
            assert!(secs >= 0.2, "{threads} threads: {secs} s");
        }
    }

    #[test]
    fn array_size_follows_the_cache_within_bounds() {
        let gib = 1u64 << 30;
        assert_eq!(default_array_bytes(None, 16 * gib), MIN_ARRAY_BYTES);
        assert_eq!(default_array_bytes(Some(105 << 20), 16 * gib), 420 << 20);
        assert_eq!(
            default_array_bytes(Some(2 * gib), 64 * gib),
            MAX_ARRAY_BYTES
        );
        // Three arrays of the largest size asked fit in half the RAM.
        assert_eq!(max_array_mib(24 << 30), 4096);
        assert_eq!(max_array_mib(0), 0);
        // A small machine never gets arrays larger than an eighth of its free memory.
        assert_eq!(default_array_bytes(Some(gib), 4 * gib), 512 << 20);
        assert_eq!(default_array_bytes(Some(gib), gib), MIN_ARRAY_BYTES);
    }
}
