//! Machine fingerprint: CPU, cores, memory and OS, recorded with every result.

use serde::{Deserialize, Serialize};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The machine the test ran on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineInfo {
    pub cpu: String,
    pub arch: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
    pub ram_bytes: u64,
    pub os: String,
    pub kernel: String,
}

/// Reads the machine's fingerprint.
pub fn fingerprint() -> MachineInfo {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    let cpu = sys
        .cpus()
        .first()
        .map(|c| printable(c.brand()))
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown CPU".to_string());
    MachineInfo {
        cpu,
        arch: printable(&System::cpu_arch()),
        physical_cores: System::physical_core_count(),
        logical_cores: sys.cpus().len().max(1),
        ram_bytes: sys.total_memory(),
        os: printable(
            &System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_string()),
        ),
        kernel: printable(&System::kernel_version().unwrap_or_default()),
    }
}

/// A name the OS reports (`/proc/cpuinfo`, os-release), with each control character (a
/// newline, a NUL) made a space and the ends trimmed: records and tables hold it on one line.
fn printable(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s.trim().to_string()
}

/// Memory currently available for new allocations, in bytes.
pub fn available_memory() -> u64 {
    let sys = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    sys.available_memory()
}

/// One level of the CPU's cache hierarchy, as the OS reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheLevel {
    pub level: u32,
    /// `data`, `instruction` or `unified`.
    pub kind: String,
    pub bytes: u64,
}

/// The caches of the first CPU (Linux: sysfs; macOS: sysctl); empty when unknown.
pub fn caches() -> Vec<CacheLevel> {
    if cfg!(target_os = "macos") {
        return macos_caches();
    }
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache") else {
        return out;
    };
    for entry in dir.flatten() {
        let read = |f: &str| std::fs::read_to_string(entry.path().join(f)).unwrap_or_default();
        let (level, kind, size) = (read("level"), read("type"), read("size"));
        if let (Ok(level), Some(bytes)) = (level.trim().parse(), parse_size(size.trim())) {
            out.push(CacheLevel {
                level,
                kind: kind.trim().to_lowercase(),
                bytes,
            });
        }
    }
    out.sort_by(|a, b| (a.level, &a.kind).cmp(&(b.level, &b.kind)));
    out
}

fn macos_caches() -> Vec<CacheLevel> {
    let keys = [
        (1, "data", "hw.l1dcachesize"),
        (2, "unified", "hw.l2cachesize"),
        (3, "unified", "hw.l3cachesize"),
    ];
    keys.iter()
        .filter_map(|&(level, kind, key)| {
            let out = std::process::Command::new("sysctl")
                .args(["-n", key])
                .output()
                .ok()?;
            let bytes: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
            (bytes > 0).then(|| CacheLevel {
                level,
                kind: kind.to_string(),
                bytes,
            })
        })
        .collect()
}

/// Parses sysfs sizes such as `48K`, `2048K`, `32M`.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("107520K"), Some(107520 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
        for c in caches() {
            assert!(c.level >= 1 && c.bytes > 0, "{c:?}");
        }
    }

    use super::*;

    #[test]
    fn names_the_os_reports_lose_their_control_characters() {
        assert_eq!(printable(" Evil\nCPU\0 @ 3GHz\r\n"), "Evil CPU  @ 3GHz");
        assert_eq!(printable("\u{1b}[31mRed"), "[31mRed");
        assert_eq!(printable("Apple M4 Pro"), "Apple M4 Pro");
        let m = fingerprint();
        for name in [&m.cpu, &m.arch, &m.os, &m.kernel] {
            assert!(!name.contains(char::is_control), "{name:?}");
        }
    }

    #[test]
    fn fingerprint_is_filled_in() {
        let m = fingerprint();
        assert!(m.logical_cores >= 1);
        assert!(m.ram_bytes > 64 * 1024 * 1024);
        assert!(!m.cpu.is_empty());
        assert!(!m.arch.is_empty());
        assert!(available_memory() > 0);
    }
}
