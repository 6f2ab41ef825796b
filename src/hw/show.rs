//! `runner hw`: the machine's fingerprint, caches, measured bandwidth and published peak.

use super::chips::{self, Chip};
use super::machine::{self, CacheLevel};
use super::peak::{self, Measurement};
use crate::cli::{HwArgs, ListFormat};
use crate::record::MachineInfo;
use crate::report::table::Grid;
use serde::Serialize;
use std::path::Path;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

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

/// Runs `runner hw`: measures (or lists the chip table) and returns the text to print.
pub fn run(args: &HwArgs, cache: &Path) -> anyhow::Result<String> {
    if args.chips {
        return chips_table(args.format);
    }
    let m = machine::fingerprint();
    let mut cfg = peak::full_probe(&m);
    cfg.passes = args.passes;
    if let Some(mib) = args.size_mib {
        cfg.array_bytes = u64::from(mib) << 20;
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
        peak::save(cache, &probe)?;
    }
    let best = peak::measured_peak(&probe);
    let chip = peak::published(&m, &crate::record::BuildInfo::default(), 0);
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
    let grid = Grid {
        headers: vec!["kernel", "threads", "GB/s", "min", "max"],
        numeric: vec![false, true, true, true, true],
        rows: r
            .probe
            .results
            .iter()
            .map(|k| {
                vec![
                    k.kernel.name().to_string(),
                    k.threads.to_string(),
                    format!("{:.1}", k.gbps),
                    format!("{:.1}", k.min_gbps),
                    format!("{:.1}", k.max_gbps),
                ]
            })
            .collect(),
    };
    out.push_str(&grid.aligned());
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

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b => format!("{} KiB", b >> 10),
    }
}

fn chips_table(format: ListFormat) -> anyhow::Result<String> {
    if format == ListFormat::Json {
        return Ok(serde_json::to_string_pretty(chips::CHIPS)? + "\n");
    }
    let grid = Grid {
        headers: vec!["chip", "kind", "GB/s", "memory", "source"],
        numeric: vec![false, false, true, false, false],
        rows: chips::CHIPS
            .iter()
            .map(|c| {
                vec![
                    c.name.to_string(),
                    format!("{:?}", c.kind).to_lowercase(),
                    format!("{:.1}", c.peak_gbps),
                    c.memory.to_string(),
                    c.source.to_string(),
                ]
            })
            .collect(),
    };
    Ok(grid.aligned())
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
    fn chip_table_lists_every_row() {
        let t = chips_table(ListFormat::Table).unwrap();
        assert_eq!(t.lines().count(), chips::CHIPS.len() + 2);
        let j: serde_json::Value =
            serde_json::from_str(&chips_table(ListFormat::Json).unwrap()).unwrap();
        assert_eq!(j.as_array().unwrap().len(), chips::CHIPS.len());
        assert_eq!(j[0]["name"], "Apple M1 Ultra");
    }
}
