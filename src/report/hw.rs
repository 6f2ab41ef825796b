//! `runner hw`: the machine's fingerprint, caches, measured bandwidth and published peak.

use super::table::{self, Column};
use super::{ListFormat, GIB, MIB};
use crate::hw::chips::{self, Chip};
use crate::hw::machine::{self, CacheLevel, MachineInfo};
use crate::hw::peak::{self, Measurement};
use crate::hw::stream::{self, KernelResult};
use crate::util::Invalid;
use serde::Serialize;
use std::path::Path;

/// Everything `runner hw` reports; the JSON output is this, serialized.
#[derive(Debug, Serialize)]
pub struct HwReport {
    pub machine: MachineInfo,
    pub caches: Vec<CacheLevel>,
    pub probe: Measurement,
    /// Highest read bandwidth measured, in GB/s, and how.
    pub measured_peak_gbps: Option<f64>,
    pub measured_peak_kind: Option<String>,
    /// The recognised chip's published peak.
    pub chip: Option<&'static Chip>,
    /// Measured peak / published peak.
    pub share_of_published: Option<f64>,
}

/// What `runner hw` is asked.
#[derive(Debug, Clone)]
pub struct HwOptions {
    pub format: ListFormat,
    /// Timed passes per kernel and thread count.
    pub passes: u32,
    /// Size of each array in MiB [default: 4 × the largest cache, at least 256].
    pub size_mib: Option<u32>,
    /// Thread counts to measure [default: 1 and every logical core].
    pub threads: Vec<u32>,
    /// List the table of published peaks instead of measuring.
    pub chips: bool,
    /// Do not save the measurement.
    pub no_save: bool,
}

/// Runs `runner hw`: measures (or lists the chip table) and returns the text to print.
pub fn run(args: &HwOptions, cache: &Path) -> anyhow::Result<String> {
    if args.chips {
        return chips_table(args.format);
    }
    let m = machine::fingerprint();
    let mut cfg = peak::full_probe(&m);
    cfg.passes = args.passes;
    if let Some(mib) = args.size_mib {
        cfg.array_bytes = array_bytes(mib, m.ram_bytes)?;
    }
    if !args.threads.is_empty() {
        cfg.threads = args.threads.iter().map(|&t| t as usize).collect();
    }
    if args.format == ListFormat::Table {
        eprintln!(
            "measuring: 3 arrays × {} MiB, {} passes per kernel, threads {:?}...",
            cfg.array_bytes >> 20,
            cfg.passes,
            cfg.threads
        );
    }
    let probe = peak::measure(&m, &cfg);
    if !args.no_save {
        match peak::save(cache, &probe) {
            Err(e) if probe.busy => {
                eprintln!("warning: the measurement is {e:#}; measure again on an idle machine")
            }
            Err(e) => eprintln!("warning: the measurement is not saved: {e:#}"),
            Ok(()) => {}
        }
    }
    let best = peak::measured_peak(&probe);
    let chip = peak::published(&m, None);
    let report = HwReport {
        share_of_published: chip.zip(best.as_ref()).map(|(c, b)| b.0 / c.peak_gbps),
        measured_peak_gbps: best.as_ref().map(|b| b.0),
        measured_peak_kind: best.map(|b| b.1),
        chip,
        caches: machine::caches(),
        machine: m,
        probe,
    };
    match args.format {
        ListFormat::Json => Ok(serde_json::to_string_pretty(&report)? + "\n"),
        ListFormat::Table => Ok(render(&report)),
    }
}

/// `--size-mib` in bytes; refused when the three arrays would take more than
/// [`stream::MAX_RAM_SHARE`] of `ram_bytes` (0: unknown, not checked).
fn array_bytes(mib: u32, ram_bytes: u64) -> Result<u64, Invalid> {
    let max = stream::max_array_mib(ram_bytes);
    if ram_bytes > 0 && u64::from(mib) > max {
        return Err(Invalid(format!(
            "--size-mib {mib}: 3 arrays of {mib} MiB need {:.1} GiB; this machine has {:.1} GiB \
             of RAM and the probe takes at most half: give at most {max}",
            3.0 * f64::from(mib) / 1024.0,
            ram_bytes as f64 / GIB
        )));
    }
    Ok(u64::from(mib) << 20)
}

fn render(r: &HwReport) -> String {
    let m = &r.machine;
    let cores = match m.physical_cores {
        Some(p) => format!("{} logical / {p} physical cores", m.logical_cores),
        None => format!("{} logical cores", m.logical_cores),
    };
    let mut out = format!(
        "machine  {} ({}), {cores}, {:.1} GiB RAM\nos       {} (kernel {})\n",
        m.cpu,
        m.arch,
        m.ram_bytes as f64 / GIB,
        m.os,
        m.kernel
    );
    if !r.caches.is_empty() {
        let list: Vec<String> = r
            .caches
            .iter()
            .map(|c| format!("L{} {} {}", c.level, c.kind, size(c.bytes)))
            .collect();
        out.push_str(&format!("caches   {}\n", list.join(", ")));
    }
    out.push_str(&format!(
        "probe    3 arrays × {} MiB, median of {} passes, GB/s = 10^9 bytes/s\n\n",
        r.probe.array_bytes >> 20,
        r.probe.passes
    ));
    out.push_str(&table::aligned(KERNELS, &r.probe.results));
    out.push('\n');
    match (&r.measured_peak_gbps, &r.measured_peak_kind) {
        (Some(g), Some(kind)) => out.push_str(&format!("measured peak   {g:.1} GB/s ({kind})\n")),
        _ => out.push_str("measured peak   none (no read kernel measured)\n"),
    }
    match r.chip {
        Some(c) => out.push_str(&format!(
            "published peak  {:.1} GB/s: {} ({}; {}){}\n",
            c.peak_gbps,
            c.name,
            c.memory,
            c.source,
            r.share_of_published
                .map(|s| format!("; measured is {:.0}% of it", s * 100.0))
                .unwrap_or_default()
        )),
        None => out.push_str(
            "published peak  unknown: this CPU is not in the table (`runner hw --chips`)\n",
        ),
    }
    out
}

/// A probe result's columns.
const KERNELS: &[Column<KernelResult>] = &[
    Column::text("kernel", |k| k.kernel.to_string()),
    Column::number("threads", |k| k.threads.to_string()),
    Column::number("GB/s", |k| format!("{:.1}", k.gbps)),
    Column::number("min", |k| format!("{:.1}", k.min_gbps)),
    Column::number("max", |k| format!("{:.1}", k.max_gbps)),
];

/// A published chip's columns.
const CHIPS: &[Column<Chip>] = &[
    Column::text("chip", |c| c.name.to_string()),
    Column::text("kind", |c| format!("{:?}", c.kind).to_lowercase()),
    Column::number("GB/s", |c| format!("{:.1}", c.peak_gbps)),
    Column::text("memory", |c| c.memory.to_string()),
    Column::text("source", |c| c.source.to_string()),
];

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / MIB),
        b => format!("{} KiB", b >> 10),
    }
}

fn chips_table(format: ListFormat) -> anyhow::Result<String> {
    if format == ListFormat::Json {
        return Ok(serde_json::to_string_pretty(chips::CHIPS)? + "\n");
    }
    Ok(table::aligned(CHIPS, chips::CHIPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(48 << 10), "48 KiB");
        assert_eq!(size(2 << 20), "2 MiB");
        assert_eq!(size(107520 << 10), "105 MiB");
        assert_eq!(size((3 << 20) + (1 << 19)), "3.5 MiB");
    }

    #[test]
    fn arrays_larger_than_half_the_ram_are_refused() {
        let ram = 47 << 29; // 23.5 GiB
        assert_eq!(array_bytes(4010, ram).unwrap(), 4010 << 20);
        let e = array_bytes(8000, ram).unwrap_err().to_string();
        assert_eq!(
            e,
            "--size-mib 8000: 3 arrays of 8000 MiB need 23.4 GiB; this machine has 23.5 GiB of \
             RAM and the probe takes at most half: give at most 4010"
        );
        assert!(array_bytes(u32::MAX, ram).is_err());
        assert_eq!(array_bytes(8000, 0).unwrap(), 8000 << 20);
    }

    #[test]
    fn chip_table_lists_every_row() {
        let t = chips_table(ListFormat::Table).unwrap();
        assert_eq!(t.lines().count(), chips::CHIPS.len() + 2);
        let j: serde_json::Value =
            serde_json::from_str(&chips_table(ListFormat::Json).unwrap()).unwrap();
        assert_eq!(j.as_array().unwrap().len(), chips::CHIPS.len());
        assert_eq!(j[0]["name"], "Apple M1 Ultra");
    }
}
