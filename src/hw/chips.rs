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
    /// Words a name may hold besides the chip's own, for a part sold under another name with
    /// the very same memory (the "PRO" of AMD's business part, the "D" of NVIDIA's China cards).
    #[serde(skip)]
    also: &'static [&'static str],
    /// Logical CPU count, where the bandwidth depends on the binned variant.
    #[serde(skip)]
    pub cores: Option<usize>,
}

const VARIANTS: &[&str] = &["pro", "max", "ultra"];

/// Declares [`CHIPS`] from one row per chip: kind, name, peak GB/s, memory, source and the
/// words to match, then optionally `not` (words that must be absent), `also` (words that may be
/// there, see `Chip::also`) and `cores` (a logical CPU count).
macro_rules! chips {
    (@or $default:expr) => { $default };
    (@or $default:expr, $given:expr) => { $given };
    ($($kind:ident $name:literal, $gbps:literal, $memory:literal, $source:expr, [$($word:literal),+]
        $(, not $not:expr)? $(, also $also:expr)? $(, cores $cores:literal)?;)+) => {
        /// The table, most specific first within a family.
        pub const CHIPS: &[Chip] = &[$(Chip {
            name: $name,
            kind: ChipKind::$kind,
            peak_gbps: $gbps,
            memory: $memory,
            source: $source,
            words: &[$($word),+],
            not: chips!(@or &[] $(, $not)?),
            also: chips!(@or &[] $(, $also)?),
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
    // The business part, "AMD RYZEN AI MAX+ PRO 395 w/ Radeon 8060S", has the same memory:
    // LPDDR5X-8000 on a 256-bit bus (AMD's product specifications of the Ryzen AI Max+ 395 and
    // the Ryzen AI Max+ PRO 395, amd.com), so its PRO tells it from no other peak.
    Cpu "AMD Ryzen AI Max+ 395", 256.0, "LPDDR5X-8000, 256-bit",
        JEDEC, ["ryzen", "ai", "max+", "395"], also &["pro"];
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
    // NVIDIA's China-market "D" cards have the memory of the card they are named after, so its
    // published peak (NVIDIA's RTX 4090 D specifications: 24 GB GDDR6X, 384-bit, 21 Gbps =
    // 1008 GB/s; RTX 5090 D: 32 GB GDDR7, 512-bit, 28 Gbps = 1792 GB/s); they differ in
    // compute only (the 4090 D has 114 of the 4090's 128 SMs, the 5090 D capped AI TOPS). The
    // RTX 5090 D V2 has 24 GB on a 384-bit bus (1344 GB/s): the "V2" past its "D" is beside
    // the model number (see `other_word`), so it is no 5090, and `guide --machine` refuses a
    // 5090 of 24 GB ("sold with 32 GB only").
    Gpu "NVIDIA GeForce RTX 5090", 1792.0, "GDDR7, 512-bit, 32 GB",
        "NVIDIA GeForce RTX 5090 specifications", ["geforce", "rtx", "5090"], also &["d"];
    Gpu "NVIDIA GeForce RTX 5080", 960.0, "GDDR7, 256-bit, 16 GB",
        "NVIDIA GeForce RTX 5080 specifications", ["geforce", "rtx", "5080"];
    Gpu "NVIDIA GeForce RTX 4090", 1008.0, "GDDR6X, 384-bit, 24 GB",
        "NVIDIA GeForce RTX 4090 specifications", ["geforce", "rtx", "4090"], also &["d"];
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
/// excluded words do not, whose core count (when it has one) equals `logical_cores`, and from
/// which no other word of `name` tells it apart (see [`near`]): "RTX 4090 Laptop GPU" is no
/// RTX 4090, and an unknown chip has no published peak.
pub fn recognise(name: &str, logical_cores: Option<usize>) -> Option<&'static Chip> {
    let lower = normalise(name);
    let words = name_words(&lower);
    CHIPS
        .iter()
        .find(|c| listed(c, &words, logical_cores) && other_word(c, &lower).is_none())
}

/// The chip `name` would be were it not for one of its words, and that word (lowercase): a word
/// that says several devices ("2x", "dual", see [`several_devices`]), a variant word the chip's
/// name lacks ("laptop", "mobile", "max-q", "super", "ti", "ultra", "max", "pro", "extreme",
/// "mig"), another vendor's ("intel" in "Intel H100"), or, beside the chip's model number (or past a word the chip
/// allows there, as the "D" of an RTX 4090 D), a word that is none of the chip's, no vendor's or
/// trademark's, no memory size, core count or plain number ("prox" in "M4 Prox", "v2" in "RTX
/// 5090 D V2"). `None` when no chip's words are all in `name`, or `name` is a chip.
pub fn near(name: &str, logical_cores: Option<usize>) -> Option<(&'static Chip, String)> {
    let lower = normalise(name);
    let words = name_words(&lower);
    let first = CHIPS.iter().find(|c| listed(c, &words, logical_cores))?;
    Some((first, other_word(first, &lower)?))
}

/// `c`'s words all appear in `words`, its excluded words do not, and its core count (when it
/// has one) is `logical_cores`.
fn listed(c: &Chip, words: &[&str], logical_cores: Option<usize>) -> bool {
    let has = |w: &str| words.contains(&w);
    c.words.iter().all(|w| has(w))
        && !c.not.iter().any(|w| has(w))
        && c.cores.is_none_or(|n| Some(n) == logical_cores)
}

/// Words that tell a chip from its variants (a laptop part, a refresh, a higher tier) or from a
/// slice of it (a MIG instance, "A100-SXM4-80GB MIG 3g.40gb", has a share of the chip's
/// bandwidth that no one publishes): a name holding one, anywhere, that the chip's own name
/// lacks is another chip.
const DISTINGUISHING: &[&str] = &[
    "laptop", "mobile", "max-q", "super", "ti", "ultra", "max", "pro", "extreme", "mig",
];

/// The vendors whose chips the table lists: a name holding another vendor's word than the
/// chip's ("Intel H100") is not that chip.
pub const VENDORS: &[&str] = &["amd", "apple", "intel", "nvidia"];

/// `word` (a lowercase word of a name) says several devices: "dual", "quad", a count of cards
/// or sockets ("2x", "x2", "2p"; of 2 to 99, so that no model number such as "9950x" is one),
/// unless some chip's name holds it.
pub fn several_devices(word: &str) -> bool {
    let count = |n: &str| {
        (1..=2).contains(&n.len())
            && n.chars().all(|ch| ch.is_ascii_digit())
            && n.parse::<u32>().is_ok_and(|n| n >= 2)
    };
    let counted = word.strip_suffix('x').is_some_and(count)
        || word.strip_prefix('x').is_some_and(count)
        || word.strip_suffix('p').is_some_and(count);
    (matches!(word, "dual" | "quad") || counted) && !CHIPS.iter().any(|c| c.words.contains(&word))
}

/// The first word of `name` (lowercase) that says several devices (see [`several_devices`]):
/// runner answers for one GPU or one CPU socket.
pub fn several(name: &str) -> Option<String> {
    let lower = normalise(name);
    let found = name_words(&lower).into_iter().find(|w| several_devices(w));
    found.map(str::to_string)
}

/// Words that real device descriptions carry beside a model number and that name no chip:
/// vendors' and series' names, trademarks ("Intel(R) Core(TM)"), a form factor or memory type
/// ("A100-SXM4-80GB", "H100 80GB HBM3"), "w/ Radeon", a virtual function ("MI300X VF").
const NOISE: &[&str] = &[
    "amd",
    "apple",
    "core",
    "cpu",
    "epyc",
    "gen",
    "geforce",
    "gold",
    "gpu",
    "graphics",
    "hbm2e",
    "hbm3",
    "hbm3e",
    "instinct",
    "intel",
    "nvidia",
    "platinum",
    "processor",
    "r",
    "radeon",
    "rx",
    "ryzen",
    "silver",
    "sxm4",
    "sxm5",
    "threadripper",
    "tm",
    "vf",
    "w",
    "with",
    "xeon",
];

/// The word of `lower` (a normalised name holding `c`'s words) that tells it from `c`, as
/// [`near`] describes.
fn other_word(c: &Chip, lower: &str) -> Option<String> {
    let own_name = normalise(c.name);
    let own: Vec<&str> = name_words(&own_name)
        .into_iter()
        .chain(c.words.iter().copied())
        .chain(c.also.iter().copied())
        .collect();
    let is_own = |w: &str| own.contains(&w);
    let words = name_words(lower);
    if let Some(w) = words.iter().copied().find(|w| several_devices(w)) {
        return Some(w.to_string());
    }
    if let Some(w) = words
        .iter()
        .copied()
        .find(|w| (DISTINGUISHING.contains(w) || VENDORS.contains(w)) && !is_own(w))
    {
        return Some(w.to_string());
    }
    // A unit is a word, or a part of one where hyphens join parts that are not the chip's
    // word or a core count ("A100-SXM4-80GB", but "i9-13900k" and "96-core").
    let units: Vec<&str> = whole_words(lower)
        .flat_map(|w| {
            if is_own(w) || is_core_count(w) {
                vec![w]
            } else {
                w.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>()
            }
        })
        .collect();
    let known = |u: &str| is_own(u) || split_series(u).is_some_and(|(a, b)| is_own(a) && is_own(b));
    let model = |u: &str| known(u) && u.contains(|ch: char| ch.is_ascii_digit());
    let harmless = |u: &str| {
        known(u)
            || NOISE.contains(&u)
            || is_memory_size(u)
            || is_core_count(u)
            || (u.chars().all(|ch| ch.is_ascii_digit())
                && !CHIPS.iter().any(|x| x.words.contains(&u)))
    };
    // A word the chip allows stands with its model number: the unit past it is beside the
    // number too ("V2" in "RTX 5090 D V2").
    let also = |u: &str| c.also.contains(&u);
    for (i, &u) in units.iter().enumerate() {
        if !model(u) {
            continue;
        }
        let before = units[..i].iter().rev().copied().find(|&n| !also(n));
        let after = units[i + 1..].iter().copied().find(|&n| !also(n));
        if let Some(n) = [before, after]
            .into_iter()
            .flatten()
            .find(|&n| !harmless(n))
        {
            return Some(n.to_string());
        }
    }
    None
}

/// "48gb", "80gb", "1.5tb": a memory size.
fn is_memory_size(w: &str) -> bool {
    let Some(n) = ["gib", "gb", "tib", "tb"]
        .iter()
        .find_map(|&u| w.strip_suffix(u))
    else {
        return false;
    };
    n.starts_with(|ch: char| ch.is_ascii_digit())
        && n.chars().all(|ch| ch.is_ascii_digit() || ch == '.')
}

/// "16-core", "96-cores": a core count.
fn is_core_count(w: &str) -> bool {
    let n = w.strip_suffix("-cores").or_else(|| w.strip_suffix("-core"));
    n.is_some_and(|n| !n.is_empty() && n.chars().all(|ch| ch.is_ascii_digit()))
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

/// The words of a normalised name, split at spaces, parentheses, commas, slashes and '@'.
fn whole_words(lower: &str) -> impl Iterator<Item = &str> {
    lower
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '/' | '@'))
        .filter(|w| !w.is_empty())
}

/// A series name run into its number ("rtx4090"), as its two halves.
fn split_series(part: &str) -> Option<(&str, &str)> {
    let letters = part.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(0);
    (letters >= 3 && part[letters..].starts_with(|c: char| c.is_ascii_digit()))
        .then(|| part.split_at(letters))
}

/// The words of a normalised chip name, as [`recognise`] matches them: each word, and also
/// its parts where hyphens join them ("A100-SXM4-80GB", as nvidia-smi reports it) or where a
/// series name runs into its number ("RTX4090").
fn name_words(lower: &str) -> Vec<&str> {
    let mut words = Vec::new();
    for word in whole_words(lower) {
        words.push(word);
        let parts: Vec<&str> = word.split('-').filter(|p| !p.is_empty()).collect();
        if parts.len() > 1 {
            words.extend(&parts);
        }
        for part in parts {
            if let Some((series, number)) = split_series(part) {
                words.extend([series, number]);
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
