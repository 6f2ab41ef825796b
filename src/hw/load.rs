//! Watches the load other processes put on the machine, before and during a run.
//!
//! A background thread samples every `interval` the machine's total CPU time and this
//! process's own, read together from the kernel's tick counters (`/proc/stat` and
//! `/proc/self/stat` on Linux, sysinfo elsewhere), and keeps `other = total - own` in cores
//! (1.0 = one core fully busy), with this process's resident memory. Sampling reads small
//! counters only; other processes are scanned only when load is found, to name the culprits.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// How often the monitor samples.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// How long the machine is watched before a run starts (two samples).
const IDLE_CHECK: Duration = Duration::from_millis(600);

/// Other load above this many cores marks a measurement as taken on a busy machine.
pub const DEFAULT_BUSY_CORES: f64 = 0.25;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    other_cores: f64,
    own_rss: u64,
}

/// Mean and peak other load over a window, in cores, and the peak RSS seen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub samples: usize,
    pub mean_other: f64,
    pub max_other: f64,
    pub peak_rss: u64,
}

/// The running monitor; stops its thread when dropped.
#[derive(Debug)]
pub struct LoadMonitor {
    started: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
    /// Other processes whose CPU time counts as the run's own (a local server answering it).
    serving: Arc<Mutex<Vec<u32>>>,
    /// Dropping (or sending on) this wakes the sampler thread and ends it.
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl LoadMonitor {
    /// Starts sampling every [`SAMPLE_INTERVAL`].
    pub fn start() -> LoadMonitor {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let serving = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = mpsc::channel();
        let (s, v) = (Arc::clone(&samples), Arc::clone(&serving));
        let handle = std::thread::Builder::new()
            .name("load-monitor".into())
            .spawn(move || sample_loop(SAMPLE_INTERVAL, &s, &v, &stopped))
            .ok();
        LoadMonitor {
            started: Instant::now(),
            samples,
            serving,
            stop: Some(stop),
            handle,
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Counts the CPU time of `pids` (a local server the run sends its requests to) as the
    /// run's own from the next sample on, not as other load; an empty list ends that.
    pub fn count_as_own(&self, pids: Vec<u32>) {
        if let Ok(mut s) = self.serving.lock() {
            *s = pids;
        }
    }

    /// Waits, at most `max`, until the monitor holds a sample taken after `t`; whether one came.
    /// A sample covers the interval since the one before it, so the first after `t` covers `t`:
    /// a run shorter than the sampling interval, or one that starts as the monitor does, is
    /// measured rather than read as no load at all.
    pub fn await_sample_after(&self, t: Instant, max: Duration) -> bool {
        let until = Instant::now() + max;
        loop {
            let last = self
                .samples
                .lock()
                .ok()
                .and_then(|s| s.last().map(|s| s.at));
            if last.is_some_and(|at| at > t) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Summary of the samples taken in `[from, to]`. Samples are kept in the order taken, so
    /// the window is found by bisection, under the lock, without copying the run's samples.
    pub fn window(&self, from: Instant, to: Instant) -> Window {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let lo = samples.partition_point(|s| s.at < from);
        let hi = samples.partition_point(|s| s.at <= to).max(lo);
        let inside = &samples[lo..hi];
        let n = inside.len();
        let sum: f64 = inside.iter().map(|s| s.other_cores).sum();
        Window {
            samples: n,
            mean_other: if n > 0 { sum / n as f64 } else { 0.0 },
            max_other: inside.iter().map(|s| s.other_cores).fold(0.0, f64::max),
            peak_rss: inside.iter().map(|s| s.own_rss).max().unwrap_or(0),
        }
    }
}

impl Drop for LoadMonitor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Takes a sample every `interval` until `stop` is dropped. The thread sleeps between
/// samples (no polling), so it takes no CPU time from the measurement in between.
fn sample_loop(
    interval: Duration,
    out: &Mutex<Vec<Sample>>,
    serving: &Mutex<Vec<u32>>,
    stop: &mpsc::Receiver<()>,
) {
    let mut counters = CpuCounters::new();
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
        let pids = serving.lock().map(|s| s.clone()).unwrap_or_default();
        let Some(other_cores) = counters.other_cores(&pids) else {
            continue;
        };
        let sample = Sample {
            at: Instant::now(),
            other_cores,
            own_rss: current_rss(),
        };
        if let Ok(mut v) = out.lock() {
            v.push(sample);
        }
    }
}

/// CPU time counters of the machine and of this process, read at the same moment.
struct CpuCounters {
    last: Option<Ticks>,
    fallback: Option<System>,
}

/// Busy and total ticks over all CPUs, and this process's ticks (user + system) with those
/// of the processes counted as its own.
#[derive(Debug, Clone)]
struct Ticks {
    busy: u64,
    total: u64,
    own: u64,
    serving: Vec<u32>,
}

impl CpuCounters {
    fn new() -> CpuCounters {
        let last = read_ticks(&[]);
        let fallback = last.is_none().then(|| {
            let mut sys = System::new();
            sys.refresh_cpu_usage();
            sys
        });
        CpuCounters { last, fallback }
    }

    /// Cores kept busy by other processes than this one and `serving` since the previous
    /// call (none the first time `serving` changes: its processes' earlier time is not the
    /// run's).
    fn other_cores(&mut self, serving: &[u32]) -> Option<f64> {
        if let Some(sys) = &mut self.fallback {
            return Some(sysinfo_other_cores(sys));
        }
        let now = read_ticks(serving)?;
        let prev = self.last.replace(now.clone())?;
        if prev.serving != now.serving {
            return None;
        }
        let total = now.total.checked_sub(prev.total)?;
        if total == 0 {
            return None;
        }
        let n_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let per_core = total as f64 / n_cpus;
        let busy = now.busy.saturating_sub(prev.busy) as f64 / per_core;
        let own = now.own.saturating_sub(prev.own) as f64 / per_core;
        Some((busy - own).max(0.0))
    }
}

/// Reads `/proc/stat`, `/proc/self/stat` and `/proc/PID/stat` of `serving` (Linux); `None`
/// elsewhere.
fn read_ticks(serving: &[u32]) -> Option<Ticks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    if cpu.len() < 8 {
        return None;
    }
    let total: u64 = cpu[..8].iter().sum();
    let busy = total - cpu[3] - cpu[4];
    let own = process_ticks("self")?
        + serving
            .iter()
            .filter_map(|p| process_ticks(&p.to_string()))
            .sum::<u64>();
    Some(Ticks {
        busy,
        total,
        own,
        serving: serving.to_vec(),
    })
}

/// User + system ticks of `/proc/<pid>/stat`.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the command name, which is in parentheses and may hold spaces
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The processes listening on TCP `port` on this machine (Linux: the listening sockets of
/// `/proc/net/tcp` and `tcp6`, matched to the processes holding them); empty elsewhere or
/// when they cannot be read (another user's processes).
pub fn listening_pids(port: u16) -> Vec<u32> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let local_port = f.get(1)?.rsplit(':').next()?;
                    let (listening, inode) = (*f.get(3)? == "0A", f.get(9)?);
                    (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                        .then(|| format!("socket:[{inode}]"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                    .any(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
            })
        })
        .collect()
}

/// The same through sysinfo, for systems without procfs.
fn sysinfo_other_cores(sys: &mut System) -> f64 {
    let pid = Pid::from_u32(std::process::id());
    sys.refresh_cpu_usage();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_cpu(),
    );
    let n_cpus = sys.cpus().len().max(1) as f64;
    let total = f64::from(sys.global_cpu_usage()) / 100.0 * n_cpus;
    let own = sys
        .process(pid)
        .map_or(0.0, |p| f64::from(p.cpu_usage()) / 100.0);
    (total - own).max(0.0)
}

/// Watches the machine for a moment before a run; when other processes keep more than
/// `threshold` cores busy, says so in one line naming the busiest of them.
pub fn busy_before_start(monitor: &LoadMonitor, threshold: f64) -> Option<String> {
    // Long enough after the start that a window from the start holds real samples.
    std::thread::sleep(IDLE_CHECK.saturating_sub(monitor.started().elapsed()));
    let w = monitor.window(monitor.started(), Instant::now());
    if w.mean_other <= threshold {
        return None;
    }
    let top = top_processes(5, 5.0);
    Some(format!(
        "the machine is busy: other processes use {:.2} cores{}",
        w.mean_other,
        culprits(&top)
    ))
}

/// ` (a 97%, b 12%)`, or nothing for no processes.
pub fn culprits(top: &[String]) -> String {
    if top.is_empty() {
        String::new()
    } else {
        format!(" ({})", top.join(", "))
    }
}

/// The busiest other processes right now, as `name pct%` (percent of one core), busiest first.
pub fn top_processes(limit: usize, min_percent: f32) -> Vec<String> {
    let own = Pid::from_u32(std::process::id());
    let mut sys = System::new();
    let kind = ProcessRefreshKind::nothing().with_cpu();
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    std::thread::sleep(Duration::from_millis(300));
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let mut busy: Vec<(f32, String)> = sys
        .processes()
        .values()
        .filter(|p| p.pid() != own && p.cpu_usage() >= min_percent)
        .map(|p| (p.cpu_usage(), p.name().to_string_lossy().into_owned()))
        .collect();
    busy.sort_by(|a, b| b.0.total_cmp(&a.0));
    busy.into_iter()
        .take(limit)
        .map(|(pct, name)| format!("{name} {pct:.0}%"))
        .collect()
}

/// Resident set size of this process now, in bytes (`/proc/self/status` on Linux, sysinfo
/// elsewhere).
pub fn current_rss() -> u64 {
    if let Some(rss) = proc_status_rss() {
        return rss;
    }
    let pid = Pid::from_u32(std::process::id());
    let mut sys = System::new();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().with_memory(),
    );
    sys.process(pid).map(|p| p.memory()).unwrap_or(0)
}

fn proc_status_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_sees_a_busy_thread_of_another_process() {
        // A child process spinning one core must show up as other load.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "i=0; while :; do i=$((i+1)); done"])
            .spawn()
            .expect("sh runs");
        let m = LoadMonitor::start();
        std::thread::sleep(Duration::from_millis(1600));
        let w = m.window(m.started(), Instant::now());
        let _ = child.kill();
        let _ = child.wait();
        assert!(w.samples >= 3, "samples {}", w.samples);
        assert!(w.max_other > 0.5, "max other {}", w.max_other);
        assert!(w.peak_rss > 0);
    }

    #[test]
    fn empty_window_is_zero() {
        let m = LoadMonitor::start();
        let now = Instant::now();
        let w = m.window(now, now);
        assert_eq!(w.samples, 0);
        assert_eq!(w.mean_other, 0.0);
    }

    #[test]
    fn a_window_holds_the_samples_taken_inside_it_ends_included() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let samples = (0..5)
            .map(|i| Sample {
                at: at(10 * i),
                other_cores: i as f64,
                own_rss: 100 * i,
            })
            .collect();
        let m = LoadMonitor {
            started: t0,
            samples: Arc::new(Mutex::new(samples)),
            serving: Arc::default(),
            stop: None,
            handle: None,
        };
        let w = m.window(at(10), at(30));
        assert_eq!((w.samples, w.mean_other, w.max_other), (3, 2.0, 3.0));
        assert_eq!(w.peak_rss, 300);
        assert_eq!(m.window(at(5), at(9)).samples, 0);
        assert_eq!(m.window(at(30), at(10)), Window::default());
        assert_eq!(m.window(at(0), at(1000)).samples, 5);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_local_servers_process_is_found_by_its_port() {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let pids = listening_pids(port);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(pids, vec![child.id()]);
        assert!(listening_pids(1).is_empty());
    }
}
