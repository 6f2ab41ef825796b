//! Published peak memory bandwidth of common chips, with sources, used as the spec peak when
//! the machine (or the GPU a model is offloaded to) is recognised.
//!
//! Figures are the vendors' own where they publish one (Apple, NVIDIA, AMD Instinct); for
//! desktop and server CPUs they are the theoretical peak of the officially supported memory
//! configuration: channels × 8 bytes × transfer rate.

use serde::Serialize;

/// Processor kind: where the weights are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChipKind {
    /// CPU or SoC with unified memory (Apple silicon, Strix Halo, GB10).
    Cpu,
    /// Discrete GPU or accelerator with its own memory.
    Gpu,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chip {
    pub name: &'static str,
    pub kind: ChipKind,
    /// Peak bandwidth in GB/s (10^9 bytes per second).
    pub peak_gbps: f64,
    /// Memory the figure is for, e.g. "LPDDR5X-8533, 512-bit".
    pub memory: &'static str,
    /// Where the figure comes from.
    pub source: &'static str,
    /// Words that must all appear in the reported name (case-insensitive, whole words).
    #[serde(skip)]
    words: &'static [&'static str],
    /// Words that must not appear (to tell "M4" from "M4 Pro").
    #[serde(skip)]
    not: &'static [&'static str],
    /// Logical CPU count, where the bandwidth depends on the binned variant.
    #[serde(skip)]
    pub cores: Option<usize>,
}

const VARIANTS: &[&str] = &["pro", "max", "ultra"];

/// Declares [`CHIPS`] from one row per chip: kind, name, peak GB/s, memory, source and the
/// words to match, then optionally `not` (words that must be absent) and `cores` (a logical CPU
/// count).
macro_rules! chips {
    (@or $default:expr) => { $default };
    (@or $default:expr, $given:expr) => { $given };
    ($($kind:ident $name:literal, $gbps:literal, $memory:literal, $source:expr, [$($word:literal),+]
        $(, not $not:expr)? $(, cores $cores:literal)?;)+) => {
        /// The table, most specific first within a family.
        pub const CHIPS: &[Chip] = &[$(Chip {
            name: $name,
            kind: ChipKind::$kind,
            peak_gbps: $gbps,
            memory: $memory,
            source: $source,
            words: &[$($word),+],
            not: chips!(@or &[] $(, $not)?),
            cores: chips!(@or None $(, Some($cores))?),
        }),+];
    };
}

const APPLE_2021: &str = "Apple Newsroom, \"Introducing M1 Pro and M1 Max\", 2021-10-18";
const APPLE_M1: &str = "Apple M1 technical specifications: LPDDR4X-4266, 128-bit";
const APPLE_M1U: &str = "Apple Newsroom, \"Apple unveils M1 Ultra\", 2022-03-08";
const APPLE_M2: &str = "Apple Newsroom, \"Apple unveils M2\", 2022-06-06";
const APPLE_M2PM: &str = "Apple Newsroom, \"Apple unveils M2 Pro and M2 Max\", 2023-01-17";
const APPLE_M2U: &str = "Apple Newsroom, \"Apple introduces M2 Ultra\", 2023-06-05";
const APPLE_M3: &str = "Apple Newsroom, \"Apple unveils M3, M3 Pro, and M3 Max\", 2023-10-30";
const APPLE_M3U: &str = "Apple Newsroom, \"Apple reveals M3 Ultra\", 2025-03-05";
const APPLE_M4: &str = "Apple Newsroom, \"Apple introduces M4 chip\", 2024-05-07";
const APPLE_M4PM: &str = "Apple Newsroom, \"Apple introduces M4 Pro and M4 Max\", 2024-10-30";
const APPLE_M5: &str = "Apple Newsroom, \"Apple unleashes M5\", 2025-10-15";
const APPLE_M5PM: &str = "Apple Newsroom, M5 Pro and M5 Max announcement, 2026-03-03";
const JEDEC: &str = "vendor specification: officially supported memory, channels × 8 B × MT/s";

chips! {
    Cpu "Apple M1 Ultra", 800.0, "LPDDR5-6400, 1024-bit", APPLE_M1U, ["apple", "m1", "ultra"];
    Cpu "Apple M1 Max", 400.0, "LPDDR5-6400, 512-bit", APPLE_2021, ["apple", "m1", "max"];
    Cpu "Apple M1 Pro", 200.0, "LPDDR5-6400, 256-bit", APPLE_2021, ["apple", "m1", "pro"];
    Cpu "Apple M1", 68.25, "LPDDR4X-4266, 128-bit", APPLE_M1, ["apple", "m1"], not VARIANTS;
    Cpu "Apple M2 Ultra", 800.0, "LPDDR5-6400, 1024-bit", APPLE_M2U, ["apple", "m2", "ultra"];
    Cpu "Apple M2 Max", 400.0, "LPDDR5-6400, 512-bit", APPLE_M2PM, ["apple", "m2", "max"];
    Cpu "Apple M2 Pro", 200.0, "LPDDR5-6400, 256-bit", APPLE_M2PM, ["apple", "m2", "pro"];
    Cpu "Apple M2", 100.0, "LPDDR5-6400, 128-bit", APPLE_M2, ["apple", "m2"], not VARIANTS;
    Cpu "Apple M3 Ultra", 819.0, "LPDDR5-6400, 1024-bit", APPLE_M3U, ["apple", "m3", "ultra"];
    Cpu "Apple M3 Max (16-core CPU)", 400.0, "LPDDR5-6400, 512-bit",
        APPLE_M3, ["apple", "m3", "max"], cores 16;
    Cpu "Apple M3 Max (14-core CPU)", 300.0, "LPDDR5-6400, 384-bit",
        APPLE_M3, ["apple", "m3", "max"], cores 14;
    Cpu "Apple M3 Pro", 150.0, "LPDDR5-6400, 192-bit", APPLE_M3, ["apple", "m3", "pro"];
    Cpu "Apple M3", 100.0, "LPDDR5-6400, 128-bit", APPLE_M3, ["apple", "m3"], not VARIANTS;
    Cpu "Apple M4 Max (16-core CPU)", 546.0, "LPDDR5X-8533, 512-bit",
        APPLE_M4PM, ["apple", "m4", "max"], cores 16;
    Cpu "Apple M4 Max (14-core CPU)", 410.0, "LPDDR5X-8533, 384-bit",
        APPLE_M4PM, ["apple", "m4", "max"], cores 14;
    Cpu "Apple M4 Pro", 273.0, "LPDDR5X-8533, 256-bit", APPLE_M4PM, ["apple", "m4", "pro"];
    Cpu "Apple M4", 120.0, "LPDDR5X-7500, 128-bit", APPLE_M4, ["apple", "m4"], not VARIANTS;
    Cpu "Apple M5 Max", 614.0, "up to 614 GB/s (top configuration)",
        APPLE_M5PM, ["apple", "m5", "max"];
    Cpu "Apple M5 Pro", 307.0, "up to 307 GB/s", APPLE_M5PM, ["apple", "m5", "pro"];
    Cpu "Apple M5", 153.0, "LPDDR5X-9600, 128-bit", APPLE_M5, ["apple", "m5"], not VARIANTS;
    Cpu "AMD Ryzen AI Max+ 395", 256.0, "LPDDR5X-8000, 256-bit",
        JEDEC, ["ryzen", "ai", "max+", "395"];
    Cpu "NVIDIA GB10 (DGX Spark)", 273.0, "LPDDR5X, 256-bit",
        "NVIDIA DGX Spark specifications", ["gb10"];
    Cpu "AMD Ryzen 9 9950X3D", 89.6, "DDR5-5600, 2 channels", JEDEC, ["ryzen", "9950x3d"];
    Cpu "AMD Ryzen 9 9950X", 89.6, "DDR5-5600, 2 channels", JEDEC, ["ryzen", "9950x"];
    Cpu "AMD Ryzen 7 9800X3D", 89.6, "DDR5-5600, 2 channels", JEDEC, ["ryzen", "9800x3d"];
    Cpu "AMD Ryzen 9 7950X3D", 83.2, "DDR5-5200, 2 channels", JEDEC, ["ryzen", "7950x3d"];
    Cpu "AMD Ryzen 9 7950X", 83.2, "DDR5-5200, 2 channels", JEDEC, ["ryzen", "7950x"];
    Cpu "AMD Ryzen 7 7800X3D", 83.2, "DDR5-5200, 2 channels", JEDEC, ["ryzen", "7800x3d"];
    Cpu "Intel Core Ultra 9 285K", 102.4, "DDR5-6400, 2 channels", JEDEC, ["core", "ultra", "285k"];
    Cpu "Intel Core i9-14900K", 89.6, "DDR5-5600, 2 channels", JEDEC, ["i9-14900k"];
    Cpu "Intel Core i9-13900K", 89.6, "DDR5-5600, 2 channels", JEDEC, ["i9-13900k"];
    Cpu "AMD Threadripper PRO 7995WX", 332.8, "DDR5-5200, 8 channels",
        JEDEC, ["threadripper", "7995wx"];
    Cpu "AMD Threadripper 7980X", 166.4, "DDR5-5200, 4 channels", JEDEC, ["threadripper", "7980x"];
    Cpu "AMD EPYC 9654 (Genoa)", 460.8, "DDR5-4800, 12 channels", JEDEC, ["epyc", "9654"];
    Cpu "AMD EPYC 9965 (Turin)", 576.0, "DDR5-6000, 12 channels", JEDEC, ["epyc", "9965"];
    Cpu "AMD EPYC 9755 (Turin)", 576.0, "DDR5-6000, 12 channels", JEDEC, ["epyc", "9755"];
    Cpu "Intel Xeon Platinum 8480+ (Sapphire Rapids)", 307.2, "DDR5-4800, 8 channels",
        JEDEC, ["xeon", "8480+"];
    Cpu "Intel Xeon 6980P (Granite Rapids)", 614.4, "DDR5-6400, 12 channels",
        JEDEC, ["xeon", "6980p"];
    Gpu "NVIDIA H200", 4800.0, "HBM3e, 141 GB",
        "NVIDIA H200 Tensor Core GPU datasheet", ["nvidia", "h200"];
    Gpu "NVIDIA H100 PCIe", 2000.0, "HBM2e, 80 GB",
        "NVIDIA H100 Tensor Core GPU datasheet", ["nvidia", "h100", "pcie"];
    Gpu "NVIDIA H100 SXM", 3350.0, "HBM3, 80 GB",
        "NVIDIA H100 Tensor Core GPU datasheet", ["nvidia", "h100"], not &["pcie", "nvl"];
    Gpu "NVIDIA A100 80GB PCIe", 1935.0, "HBM2e, 80 GB",
        "NVIDIA A100 Tensor Core GPU datasheet", ["nvidia", "a100", "80gb", "pcie"];
    Gpu "NVIDIA A100 80GB SXM", 2039.0, "HBM2e, 80 GB",
        "NVIDIA A100 Tensor Core GPU datasheet", ["nvidia", "a100", "80gb"], not &["pcie"];
    Gpu "NVIDIA L40S", 864.0, "GDDR6, 48 GB", "NVIDIA L40S datasheet", ["nvidia", "l40s"];
    Gpu "NVIDIA L4", 300.0, "GDDR6, 24 GB", "NVIDIA L4 datasheet", ["nvidia", "l4"];
    Gpu "NVIDIA RTX 6000 Ada", 960.0, "GDDR6, 48 GB",
        "NVIDIA RTX 6000 Ada datasheet", ["nvidia", "rtx", "6000", "ada"];
    Gpu "NVIDIA GeForce RTX 5090", 1792.0, "GDDR7, 512-bit, 32 GB",
        "NVIDIA GeForce RTX 5090 specifications", ["geforce", "rtx", "5090"];
    Gpu "NVIDIA GeForce RTX 5080", 960.0, "GDDR7, 256-bit, 16 GB",
        "NVIDIA GeForce RTX 5080 specifications", ["geforce", "rtx", "5080"];
    Gpu "NVIDIA GeForce RTX 4090", 1008.0, "GDDR6X, 384-bit, 24 GB",
        "NVIDIA GeForce RTX 4090 specifications", ["geforce", "rtx", "4090"];
    Gpu "NVIDIA GeForce RTX 4080", 716.8, "GDDR6X, 256-bit, 16 GB",
        "NVIDIA GeForce RTX 4080 specifications", ["geforce", "rtx", "4080"], not &["super"];
    Gpu "NVIDIA GeForce RTX 3090 Ti", 1008.0, "GDDR6X, 384-bit, 24 GB",
        "NVIDIA GeForce RTX 3090 Ti specifications", ["geforce", "rtx", "3090", "ti"];
    Gpu "NVIDIA GeForce RTX 3090", 936.0, "GDDR6X, 384-bit, 24 GB",
        "NVIDIA GeForce RTX 3090 specifications", ["geforce", "rtx", "3090"], not &["ti"];
    Gpu "NVIDIA GeForce RTX 5070 Ti", 896.0, "GDDR7, 256-bit, 16 GB",
        "NVIDIA GeForce RTX 5070 Ti specifications", ["geforce", "rtx", "5070", "ti"];
    Gpu "NVIDIA GeForce RTX 5060 Ti", 448.0, "GDDR7, 128-bit",
        "NVIDIA GeForce RTX 5060 Ti specifications", ["geforce", "rtx", "5060", "ti"];
    Gpu "NVIDIA RTX A6000", 768.0, "GDDR6, 48 GB", "NVIDIA RTX A6000 datasheet",
        ["nvidia", "rtx", "a6000"];
    Gpu "AMD Instinct MI300X", 5300.0, "HBM3, 192 GB",
        "AMD Instinct MI300X datasheet", ["instinct", "mi300x"];
    Gpu "AMD Radeon RX 7900 XTX", 960.0, "GDDR6, 384-bit, 24 GB",
        "AMD Radeon RX 7900 XTX specifications", ["radeon", "7900", "xtx"];
}

/// The first chip whose words all appear in `name` (as whole words, case-insensitive), whose
/// excluded words do not, and whose core count (when it has one) equals `logical_cores`.
pub fn recognise(name: &str, logical_cores: Option<usize>) -> Option<&'static Chip> {
    let lower = normalise(name);
    let words = name_words(&lower);
    let has = |w: &str| words.contains(&w);
    CHIPS.iter().find(|c| {
        c.words.iter().all(|w| has(w))
            && !c.not.iter().any(|w| has(w))
            && c.cores.is_none_or(|n| Some(n) == logical_cores)
    })
}

/// Other names of a chip, as the words the table matches: a product named after its chip.
const ALIASES: &[(&str, &str)] = &[("dgx spark", "gb10")];

/// `name` in lowercase, with plain hyphens and a product's name followed by its chip's.
fn normalise(name: &str) -> String {
    let mut lower = plain_hyphens(&name.to_lowercase());
    for (alias, words) in ALIASES {
        if lower.contains(alias) && !name_words(&lower).contains(words) {
            lower = format!("{lower} {words}");
        }
    }
    lower
}

/// `name` with typographic hyphens and minus signs (Apple writes "16\u{2011}core") as '-'.
pub fn plain_hyphens(name: &str) -> String {
    const DASHES: [char; 7] = [
        '\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2212}', '\u{fe63}', '\u{ff0d}',
    ];
    name.chars()
        .map(|c| if DASHES.contains(&c) { '-' } else { c })
        .collect()
}

/// The words of a normalised chip name, as [`recognise`] matches them: each word, and also
/// its parts where hyphens join them ("A100-SXM4-80GB", as nvidia-smi reports it) or where a
/// series name runs into its number ("RTX4090").
fn name_words(lower: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let whole = lower
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '/' | '@'))
        .filter(|w| !w.is_empty());
    for word in whole {
        words.push(word);
        let parts: Vec<&str> = word.split('-').filter(|p| !p.is_empty()).collect();
        if parts.len() > 1 {
            words.extend(&parts);
        }
        for part in parts {
            let letters = part.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(0);
            if letters >= 3 && part[letters..].starts_with(|c: char| c.is_ascii_digit()) {
                words.extend([&part[..letters], &part[letters..]]);
            }
        }
    }
    words
}

/// What in `name` names another chip than `chip`: a word that is another chip's model number
/// (a word with a digit that some chip's name must hold, as "h100" in "RTX 4090 H100"), one
/// given twice ("3090 3090 Ti"), or two of the words that tell a family's chips apart ("M4
/// Pro Max", "H100 PCIe SXM").
pub fn conflict(name: &str, chip: &Chip) -> Option<String> {
    let lower = normalise(name);
    let words = name_words(&lower);
    let model = |w: &str| {
        w.contains(|c: char| c.is_ascii_digit()) && CHIPS.iter().any(|c| c.words.contains(&w))
    };
    for (i, w) in words.iter().enumerate().filter(|(_, w)| model(w)) {
        if !chip.words.contains(w) {
            return Some(format!("'{w}' too"));
        }
        if words[..i].contains(w) {
            return Some(format!("'{w}' twice"));
        }
    }
    for apart in [VARIANTS, &["pcie", "sxm"]] {
        let given: Vec<&&str> = apart.iter().filter(|t| words.contains(t)).collect();
        if let [a, b, ..] = given[..] {
            return Some(format!("both '{a}' and '{b}'"));
        }
    }
    None
}

#[cfg(test)]
#[path = "chips_tests.rs"]
mod tests;
