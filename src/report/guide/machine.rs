//! `--machine "M4 Pro 48GB"`: a machine named by chip and memory, recognised in the chip
//! table, for the question "what should I run on it?".

use super::catalog::device_memory;
use crate::hw::chips::{self, Chip};
use crate::report::GIB;
use regex::Regex;
use std::sync::LazyLock;

/// A machine known only by its name: a chip from the table and a memory size.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    /// The text as given.
    pub given: String,
    pub chip: &'static Chip,
    /// Memory in bytes; "48GB" is read as 48 GiB, as memory is sold.
    pub memory_bytes: u64,
}

impl MachineSpec {
    pub fn label(&self) -> String {
        format!("{}, {} GB", self.chip.name, fmt_gb(self.memory_bytes))
    }
}

fn fmt_gb(bytes: u64) -> String {
    let gb = bytes as f64 / GIB;
    if gb.fract() == 0.0 {
        format!("{gb:.0}")
    } else {
        format!("{gb:.1}")
    }
}

static MEMORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d+(?:\.\d+)?)\s*(tb|tib|gb|gib|g)\b").expect("a valid pattern")
});

static CORES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(\d+)[- ]?core(s)?(\s+cpu)?\b").expect("a valid pattern"));

/// Words that name no chip: a Mac's product name ("MacBook Pro", "Mac mini"), and a GPU's
/// core count ("40-core GPU"; the chip table tells Apple's binned chips apart by CPU cores).
static MAC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(macbook\s+(pro|air)|mac\s+(pro|mini|studio)|imac(\s+pro)?|\d+[- ]?core(s)?\s+gpu)\b",
    )
    .expect("a valid pattern")
});

/// The most memory a machine named on the command line may have: more is a typo.
const MAX_GIB: f64 = 32.0 * 1024.0;

/// Parses `M4 Pro 48GB`, `Apple M4 Max 16-core 128 GB`, `RTX 4090 24GB`, `48GB M2 Max`; a GPU
/// the chip table states one memory size for needs none (`RTX 4090`).
pub fn parse(given: &str) -> Result<MachineSpec, String> {
    let plain = chips::plain_hyphens(given);
    let text = plain.trim();
    if text.chars().any(char::is_control) {
        let shown: String = text.chars().flat_map(char::escape_debug).collect();
        return Err(format!(
            "--machine \"{shown}\": holds a control character; name the chip in plain text"
        ));
    }
    let err = |e: &str| format!("--machine '{text}': {e}");
    // Before the sizes are read: the "3g" of "MIG 3g.40gb" is a slice, not a memory size.
    if words(text).iter().any(|w| w == "mig") {
        return Err(err(&format!(
            "'{}' is a slice of a GPU, whose share of its bandwidth no one publishes: name the \
             whole GPU",
            as_given(text, "mig")
        )));
    }
    // "2x RTX 4090", "Dual EPYC 9654": one device's figures would be given for several.
    if let Some(word) = chips::several(text) {
        return Err(err(&format!(
            "'{}' says several devices: guide --machine answers for one GPU or one CPU socket",
            as_given(text, &word)
        )));
    }
    let sizes: Vec<&str> = MEMORY.find_iter(text).map(|m| m.as_str()).collect();
    if let [first, second, ..] = sizes[..] {
        return Err(err(&format!(
            "give one memory size, not {first} and {second}"
        )));
    }
    let gib = MEMORY
        .captures(text)
        .map(|m| size_gib(text, &m).map_err(|e| err(&e)))
        .transpose()?;
    // A Mac's product name is not its chip's: the "Pro" of "MacBook Pro M4 Max" is no tier.
    let rest = MAC
        .replace_all(&MEMORY.replace_all(text, " "), " ")
        .into_owned();
    if let [first, second, ..] = CORES.find_iter(&rest).collect::<Vec<_>>()[..] {
        return Err(err(&format!(
            "give one core count, not {} and {}",
            first.as_str(),
            second.as_str()
        )));
    }
    let cores = CORES
        .captures(&rest)
        .and_then(|c| c[1].parse::<usize>().ok());
    let tidy = |s: &str| -> String {
        let s = CORES.replace_all(s, " ");
        s.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let name = tidy(&rest);
    if name.is_empty() {
        return Err(err("name a chip, e.g. 'M4 Pro 48GB'"));
    }
    // Some chips are named with their memory ("A100 80GB"): the name is tried with it too.
    let named = tidy(&MAC.replace_all(text, " "));
    // A memory size cut from a hyphenated name ("A100-SXM4-40GB") leaves it ending in '-':
    // such a name is quoted with its size, as given.
    let cut = name.split(' ').any(|w| w.len() > 1 && w.ends_with('-'));
    let shown = if cut { &named } else { &name };
    let chip = find_chip(&name, &named, shown, cores).map_err(|e| err(&e))?;
    if let Some(other) = chips::conflict(&name, chip) {
        return Err(err(&format!("names {other}: give one chip")));
    }
    let gib = match (gib, device_memory(chip)) {
        (None, None) => return Err(err("say how much memory it has, e.g. 'M4 Pro 48GB'")),
        (None, Some(sold)) => sold as f64 / GIB,
        (Some(g), Some(sold)) if (g - sold as f64 / GIB).abs() > 0.5 => {
            return Err(err(&format!(
                "the {} is sold with {} GB only: give that or leave the size out",
                chip.name,
                fmt_gb(sold)
            )))
        }
        (Some(g), _) => g,
    };
    Ok(MachineSpec {
        given: text.to_string(),
        chip,
        memory_bytes: (gib * GIB).round() as u64,
    })
}

/// The memory size `m` matched in `text`, in GiB, when it is a size a machine can have.
fn size_gib(text: &str, m: &regex::Captures) -> Result<f64, String> {
    let amount: f64 = m[1].parse().map_err(|_| "bad memory size".to_string())?;
    let gib = if m[2].to_ascii_lowercase().starts_with('t') {
        amount * 1024.0
    } else {
        amount
    };
    // A minus sign, not a hyphen joining it to a word ("16-core-128GB").
    let before = &text[..m.get(0).map_or(0, |g| g.start())];
    let negative = before
        .strip_suffix('-')
        .is_some_and(|b| !b.ends_with(char::is_alphanumeric));
    if negative || !(gib > 0.0 && gib.is_finite()) {
        return Err("memory must be more than 0".into());
    }
    if gib > MAX_GIB {
        return Err(format!(
            "{} is more memory than a machine has (at most {:.0} TB)",
            &m[0],
            MAX_GIB / 1024.0
        ));
    }
    Ok(gib)
}

/// The chip a short name means (`named` is the name with the memory size; `shown`, the one
/// quoted in errors), trying the vendors' prefixes; a binned chip needs its cores, and a name
/// that several chips share (an H100 is a PCIe or an SXM card) its variant. A name with a word
/// that tells it from the chip it would be ("RTX 4090 Laptop GPU") is not that chip.
fn find_chip(
    name: &str,
    named: &str,
    shown: &str,
    cores: Option<usize>,
) -> Result<&'static Chip, String> {
    let prefixes = [
        "",
        "Apple ",
        "NVIDIA ",
        "NVIDIA GeForce ",
        "AMD ",
        "AMD Radeon ",
        "AMD Instinct ",
    ];
    let names: Vec<String> = [name, named]
        .iter()
        .flat_map(|n| prefixes.iter().map(move |p| format!("{p}{n}")))
        .collect();
    let exact = chips::CHIPS
        .iter()
        .any(|c| names.iter().any(|n| n.eq_ignore_ascii_case(c.name)));
    // The chips, not told apart by their core count, whose names have every word given (a
    // name of no words, such as "(", has none).
    let sharing = |n: &str| -> Vec<&'static str> {
        let given = words(n);
        chips::CHIPS
            .iter()
            .filter(|c| c.cores.is_none() && !given.is_empty())
            .filter(|c| given.iter().all(|w| words(c.name).contains(w)))
            .map(|c| c.name)
            .collect()
    };
    let (short, long) = (sharing(name), sharing(named));
    if !exact && short.len() > 1 && long.len() != 1 {
        return Err(format!("'{name}' names {}: say which", short.join(" and ")));
    }
    for n in &names {
        if let Some(c) = chips::recognise(n, cores) {
            return one_form(c, name);
        }
    }
    if cores.is_none() {
        // A chip whose bandwidth depends on the binned variant: list the variants.
        let mut found: Vec<&'static Chip> = Vec::new();
        for n in &names {
            for c in (1..=256).filter_map(|k| chips::recognise(n, Some(k))) {
                if !found.iter().any(|f| f.name == c.name) {
                    found.push(c);
                }
            }
        }
        match found.as_slice() {
            [one] => return Ok(one),
            [] => {}
            many => {
                let list: Vec<&str> = many.iter().map(|c| c.name).collect();
                return Err(format!(
                    "bandwidth depends on the variant, say which: {} (e.g. '{name} 16-core')",
                    list.join(", ")
                ));
            }
        }
    }
    for n in &names {
        if let Some((chip, word)) = chips::near(n, cores) {
            if let Some(other) = chips::conflict(name, chip) {
                return Err(format!("names {other}: give one chip"));
            }
            // Another vendor's word: "Intel H100" is no NVIDIA H100.
            if chips::VENDORS.contains(&word.as_str()) {
                let vendor = chip.name.split(' ').next().unwrap_or_default();
                return Err(format!(
                    "'{shown}' is not in the chip table: the {} is {vendor}'s, not {}'s \
                     (runner hw --chips lists it)",
                    chip.name,
                    as_given(shown, &word)
                ));
            }
            return Err(format!(
                "'{shown}' is not in the chip table: the {} has no '{}' (runner hw --chips \
                 lists it)",
                chip.name,
                as_given(shown, &word)
            ));
        }
    }
    let close = close_matches(name);
    if close.is_empty() {
        return Err(format!(
            "'{shown}' is not in the chip table (runner hw --chips lists it)"
        ));
    }
    Err(format!(
        "'{shown}' is not in the chip table; close: {} (runner hw --chips lists all)",
        close.join(", ")
    ))
}

/// `word` (lowercase) as `text` writes it: "Laptop" in "RTX 4090 Laptop GPU".
fn as_given(text: &str, word: &str) -> String {
    let at = text.to_ascii_lowercase().find(word);
    at.and_then(|i| text.get(i..i + word.len()))
        .unwrap_or(word)
        .to_string()
}

/// The lowercase words of a name, split at anything but letters and digits.
/// Words that tell the forms of one chip apart: a PCIe card or an SXM module (`sxm4`, `sxm5`).
const FORMS: [&str; 2] = ["pcie", "sxm"];

/// `c`, unless the table holds it in several forms (the H100 as a PCIe card and an SXM module,
/// of other bandwidths) and `name` says none: then which one is asked for, whatever other words
/// the name holds ("H100 80GB GPU").
fn one_form(c: &'static Chip, name: &str) -> Result<&'static Chip, String> {
    let form = |w: &String| FORMS.iter().any(|f| w.starts_with(f));
    let rest = |n: &str| {
        words(n)
            .into_iter()
            .filter(|w| !form(w))
            .collect::<Vec<_>>()
    };
    let forms: Vec<&str> = (chips::CHIPS.iter())
        .filter(|o| o.cores.is_none() && rest(o.name) == rest(c.name))
        .map(|o| o.name)
        .collect();
    match forms.len() > 1 && !words(name).iter().any(form) {
        true => Err(format!("'{name}' names {}: say which", forms.join(" and "))),
        false => Ok(c),
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect()
}

/// Up to three chip names sharing the most words with `name` (a word counts when one is a
/// prefix of the other: "4090" and "RTX" match "NVIDIA GeForce RTX 4090").
fn close_matches(name: &str) -> Vec<&'static str> {
    let given = words(name);
    let mut scored: Vec<(usize, &'static str)> = chips::CHIPS
        .iter()
        .map(|c| {
            let cw = words(c.name);
            let shared = given
                .iter()
                .filter(|g| {
                    g.len() > 1
                        && cw.iter().any(|w| {
                            w.starts_with(g.as_str()) || g.starts_with(w.as_str()) && w.len() > 1
                        })
                })
                .count();
            (shared, c.name)
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .filter(|(n, _)| *n == best)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_memory_are_recognised() {
        let m = parse("M4 Pro 48GB").unwrap();
        assert_eq!(m.chip.name, "Apple M4 Pro");
        assert_eq!(m.memory_bytes, 48 << 30);
        assert_eq!(m.label(), "Apple M4 Pro, 48 GB");
        let m = parse("48 GB Apple M2 Max").unwrap();
        assert_eq!(m.chip.name, "Apple M2 Max");
        let m = parse("M4 Max 16-core 128GB").unwrap();
        assert_eq!(m.chip.name, "Apple M4 Max (16-core CPU)");
        assert_eq!(m.memory_bytes, 128 << 30);
        let m = parse("RTX 4090, 24 GB").unwrap();
        assert_eq!(m.chip.name, "NVIDIA GeForce RTX 4090");
        let m = parse("M3 Ultra 0.5TB").unwrap();
        assert_eq!(m.memory_bytes, 512 << 30);
        // Names as nvidia-smi and Apple's pages write them, and a product named for its chip.
        for (given, chip) in [
            ("A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
            ("H100-SXM", "NVIDIA H100 SXM"),
            ("RTX4090", "NVIDIA GeForce RTX 4090"),
            ("DGX Spark 128GB", "NVIDIA GB10 (DGX Spark)"),
            ("GB10 DGX Spark 128GB", "NVIDIA GB10 (DGX Spark)"),
        ] {
            assert_eq!(parse(given).unwrap().chip.name, chip, "{given}");
        }
        // Every row of the table is found by the name it is listed under.
        for c in chips::CHIPS {
            let name = match device_memory(c) {
                Some(_) => c.name.to_string(),
                None => format!("{} 64GB", c.name),
            };
            let m = parse(&name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.chip.name, c.name);
        }
        let m = parse("M4 Max 16\u{2011}core 128\u{a0}GB").unwrap();
        assert_eq!(m.chip.name, "Apple M4 Max (16-core CPU)");
        assert_eq!(m.memory_bytes, 128 << 30);
    }

    #[test]
    fn unclear_machines_are_refused_with_a_reason() {
        for bad in ["M4 Pro\n48GB", "M4\0Pro 48GB", "M4 Pro 48GB\u{1b}[2J"] {
            let e = parse(bad).unwrap_err();
            assert!(!e.contains(|c: char| c.is_control()), "{e:?}");
            assert!(e.ends_with("holds a control character; name the chip in plain text"));
        }
        assert_eq!(
            parse("M4\0Pro 48GB").unwrap_err(),
            "--machine \"M4\\0Pro 48GB\": holds a control character; name the chip in plain text"
        );
        assert!(parse("M4 Pro").unwrap_err().contains("how much memory"));
        assert!(parse("48GB").unwrap_err().contains("name a chip"));
        assert!(parse("Commodore 64 1GB")
            .unwrap_err()
            .contains("not in the chip table (runner hw --chips lists it)"));
        // A near miss lists the chips it may mean.
        let e = parse("RTX 4070 12GB").unwrap_err();
        assert!(
            e.contains("close: ") && e.contains("NVIDIA GeForce RTX"),
            "{e}"
        );
        let e = parse("Apple M7 Pro 48GB").unwrap_err();
        assert!(
            e.contains("close: Apple M1 Pro, Apple M2 Pro, Apple M3 Pro"),
            "{e}"
        );
        let e = parse("M4 Max 64GB").unwrap_err();
        assert!(
            e.contains("16-core CPU") && e.contains("14-core CPU"),
            "{e}"
        );
        // A name of two chips is refused, whichever the table would find first.
        for two in [
            "RTX 4090 H100",
            "H100 RTX 4090",
            "M4 Pro M3 Max 48GB",
            "M2 Ultra EPYC 9654 192GB",
            "M4 Max M4 Pro 48GB",
            "M4 Pro M4 48GB",
            "M4 Pro Max 48GB",
            "M3 Ultra M3 Max 16-core 128GB",
            "H100 PCIe SXM 80GB",
            "RTX 3090 3090 Ti",
        ] {
            let e = parse(two).unwrap_err();
            assert!(e.contains(": give one chip"), "{two}: {e}");
        }
        let e = parse("M4 Max 14-core 16-core 128GB").unwrap_err();
        assert!(
            e.contains("give one core count, not 14-core and 16-core"),
            "{e}"
        );
        // A Mac's product name is not its chip's tier.
        for mac in [
            "MacBook Pro 2024 M4 Max 16-core 128GB",
            "Mac Studio M4 Max 16-core 128GB",
        ] {
            assert_eq!(parse(mac).unwrap().chip.name, "Apple M4 Max (16-core CPU)");
        }
        let e = parse("MacBook Pro M4 Max 128GB").unwrap_err();
        assert!(
            e.contains("16-core CPU") && e.contains("14-core CPU"),
            "{e}"
        );
        assert_eq!(
            parse("Mac mini M4 Pro 48GB").unwrap().chip.name,
            "Apple M4 Pro"
        );
        assert_eq!(
            parse("Mac Pro M2 Ultra 192GB").unwrap().chip.name,
            "Apple M2 Ultra"
        );
        assert_eq!(
            parse("MacBook Pro M3 Pro 36GB").unwrap().chip.name,
            "Apple M3 Pro"
        );
        // A GPU's core count is no CPU's.
        let m = parse("MacBook Pro M4 Max 16-core CPU 40-core GPU 128GB").unwrap();
        assert_eq!(m.chip.name, "Apple M4 Max (16-core CPU)");
        let e = parse("M4 Max 40-core GPU 128GB").unwrap_err();
        assert!(
            e.contains("16-core CPU") && e.contains("14-core CPU"),
            "{e}"
        );
        assert_eq!(
            parse("MI300X 192GB").unwrap().chip.name,
            "AMD Instinct MI300X"
        );
        assert!(parse("M4 Pro 0GB").is_err());
        assert!(parse("RTX 5060 Ti")
            .unwrap_err()
            .contains("how much memory"));
        for typo in ["RTX 4090 -5GB", "M4 Pro -48 GB"] {
            let e = parse(typo).unwrap_err();
            assert!(e.ends_with("memory must be more than 0"), "{typo}: {e}");
        }
        let e = parse("M4 Pro 16GB 48GB").unwrap_err();
        assert!(
            e.ends_with("give one memory size, not 16GB and 48GB"),
            "{e}"
        );
        let e = parse("M4 Max 16-core 99999GB").unwrap_err();
        assert!(
            e.ends_with("99999GB is more memory than a machine has (at most 32 TB)"),
            "{e}"
        );
        assert_eq!(
            parse("M4 Max 16-core-128GB").map(|m| m.memory_bytes),
            Ok(128 << 30)
        );
        let e = parse("M3 Ultra 40TB").unwrap_err();
        assert!(
            e.ends_with("40TB is more memory than a machine has (at most 32 TB)"),
            "{e}"
        );
        // A GPU sold in one size: another size is a mistake, not a variant.
        let e = parse("RTX 4090 48GB").unwrap_err();
        assert!(
            e.ends_with("the NVIDIA GeForce RTX 4090 is sold with 24 GB only: give that or leave the size out"),
            "{e}"
        );
        // A name of no words is no chip, not every chip.
        let e = parse("( 48GB").unwrap_err();
        assert!(e.contains("'(' is not in the chip table"), "{e}");
        // A name two cards share: the variant is asked for, not guessed.
        let e = parse("H100 80GB").unwrap_err();
        assert!(
            e.contains("'H100' names NVIDIA H100 PCIe and NVIDIA H100 SXM: say which"),
            "{e}"
        );
        let e = parse("A100 80GB").unwrap_err();
        assert!(
            e.contains("NVIDIA A100 80GB PCIe and NVIDIA A100 80GB SXM"),
            "{e}"
        );
        // Also with words beside it that say nothing of the form.
        for given in [
            "H100 GPU",
            "H100 80GB GPU",
            "H100 with 80GB",
            "A100 80GB GPU",
        ] {
            let e = parse(given).unwrap_err();
            assert!(
                e.contains("PCIe and NVIDIA") && e.ends_with("say which"),
                "{given}: {e}"
            );
        }
        for (given, chip) in [
            ("H100 SXM5 80GB", "NVIDIA H100 SXM"),
            ("H100 PCIe", "NVIDIA H100 PCIe"),
            ("A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
        ] {
            assert_eq!(parse(given).map(|m| m.chip.name), Ok(chip), "{given}");
        }
    }

    #[test]
    fn a_variant_the_table_lacks_is_not_taken_for_its_sibling() {
        for (given, chip, word) in [
            (
                "NVIDIA GeForce RTX 4090 Laptop GPU",
                "NVIDIA GeForce RTX 4090",
                "Laptop",
            ),
            ("RTX 4090 Mobile", "NVIDIA GeForce RTX 4090", "Mobile"),
            ("RTX 4090 Super", "NVIDIA GeForce RTX 4090", "Super"),
            ("RTX 4090 Ti", "NVIDIA GeForce RTX 4090", "Ti"),
            ("RTX 4080 Laptop GPU", "NVIDIA GeForce RTX 4080", "Laptop"),
            ("M4 Prox 48GB", "Apple M4", "Prox"),
            ("M2 Extreme 64GB", "Apple M2", "Extreme"),
        ] {
            let e = parse(given).unwrap_err();
            let why = format!("the {chip} has no '{word}' (runner hw --chips lists it)");
            assert!(e.ends_with(&why), "{given}: {e}");
            assert!(e.contains("is not in the chip table"), "{given}: {e}");
        }
        // A memory size joined to the name by a hyphen: the name is quoted as given.
        let e = parse("A100-SXM4-40GB").unwrap_err();
        assert!(
            e.starts_with("--machine 'A100-SXM4-40GB': 'A100-SXM4-40GB' is not in the chip table"),
            "{e}"
        );
    }

    #[test]
    fn a_mig_slice_is_refused_as_one() {
        for (given, word) in [
            ("A100-SXM4-80GB MIG 3g.40gb", "MIG"),
            ("A100 80GB SXM MIG 1g.10gb", "MIG"),
            ("H100 SXM mig 7g.80gb", "mig"),
            ("H100-MIG", "MIG"),
            ("MIG 2g.20gb H100 PCIe 80GB", "MIG"),
        ] {
            assert_eq!(
                parse(given).map(|m| m.chip.name),
                Err(format!(
                    "--machine '{given}': '{word}' is a slice of a GPU, whose share of its \
                     bandwidth no one publishes: name the whole GPU"
                )),
                "{given}"
            );
        }
        // "Mighty" is no MIG.
        let e = parse("Mighty 64GB").unwrap_err();
        assert!(e.contains("not in the chip table"), "{e}");
    }

    #[test]
    fn several_devices_are_refused_wherever_they_stand() {
        for (given, word) in [
            ("2x RTX 4090", "2x"),
            ("RTX 4090 x2", "x2"),
            ("RTX 4090 (x2)", "x2"),
            ("Dual EPYC 9654 1536GB", "Dual"),
            ("EPYC 9654 2P 768GB", "2P"),
            ("Quad RTX 3090", "Quad"),
            ("4x H100 SXM", "4x"),
            ("H100 SXM 8X 640GB", "8X"),
            ("2x M4 Max 64GB", "2x"),
        ] {
            assert_eq!(
                parse(given).map(|m| m.chip.name),
                Err(format!(
                    "--machine '{given}': '{word}' says several devices: guide --machine \
                     answers for one GPU or one CPU socket"
                )),
                "{given}"
            );
        }
        // One device, with a model number that ends in X or P, is still answered.
        for (given, chip) in [
            ("Ryzen 9 9950X 64GB", "AMD Ryzen 9 9950X"),
            ("Xeon 6980P 768GB", "Intel Xeon 6980P (Granite Rapids)"),
            ("MI300X", "AMD Instinct MI300X"),
        ] {
            assert_eq!(parse(given).map(|m| m.chip.name), Ok(chip), "{given}");
        }
    }

    #[test]
    fn another_vendors_chip_is_refused() {
        for (given, why) in [
            ("Intel H100", "the NVIDIA H100 SXM is NVIDIA's, not Intel's"),
            ("AMD H100 SXM", "the NVIDIA H100 SXM is NVIDIA's, not AMD's"),
            (
                "Intel M4 Pro 48GB",
                "the Apple M4 Pro is Apple's, not Intel's",
            ),
            (
                "Apple RTX 4090",
                "the NVIDIA GeForce RTX 4090 is NVIDIA's, not Apple's",
            ),
        ] {
            let e = parse(given).unwrap_err();
            assert!(
                e.ends_with(&format!("{why} (runner hw --chips lists it)")),
                "{given}: {e}"
            );
            assert!(e.contains("is not in the chip table"), "{given}: {e}");
        }
        assert_eq!(
            parse("NVIDIA H100 SXM").map(|m| m.chip.name),
            Ok("NVIDIA H100 SXM")
        );
    }

    #[test]
    fn a_chip_named_with_its_memory_is_found() {
        for (given, chip) in [
            ("A100 80GB PCIe", "NVIDIA A100 80GB PCIe"),
            ("A100 SXM 80GB", "NVIDIA A100 80GB SXM"),
            ("H100 SXM 80GB", "NVIDIA H100 SXM"),
            ("H100 PCIe 80GB", "NVIDIA H100 PCIe"),
            ("RTX 3090 24GB", "NVIDIA GeForce RTX 3090"),
            ("RTX 3090 Ti 24GB", "NVIDIA GeForce RTX 3090 Ti"),
            ("M4 16GB", "Apple M4"),
            ("Apple M1 16GB", "Apple M1"),
        ] {
            assert_eq!(parse(given).map(|m| m.chip.name), Ok(chip), "{given}");
        }
    }

    #[test]
    fn a_gpu_sold_in_one_size_needs_no_size() {
        for (given, gib) in [
            ("RTX 4090", 24),
            ("H100 SXM", 80),
            ("H200", 141),
            ("A100 80GB PCIe", 80),
        ] {
            let m = parse(given).unwrap();
            assert_eq!(m.memory_bytes, gib << 30, "{given}");
        }
        assert_eq!(
            parse("RTX 4090").unwrap().label(),
            "NVIDIA GeForce RTX 4090, 24 GB"
        );
    }
}
