//! Machine fingerprint: CPU, cores, memory and OS, recorded with every result.

use crate::record::MachineInfo;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

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
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown CPU".to_string());
    MachineInfo {
        cpu,
        arch: System::cpu_arch(),
        physical_cores: System::physical_core_count(),
        logical_cores: sys.cpus().len().max(1),
        ram_bytes: sys.total_memory(),
        os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_string()),
        kernel: System::kernel_version().unwrap_or_default(),
    }
}

/// Memory currently available for new allocations, in bytes.
pub fn available_memory() -> u64 {
    let sys = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    sys.available_memory()
}

#[cfg(test)]
mod tests {
    use super::*;

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
