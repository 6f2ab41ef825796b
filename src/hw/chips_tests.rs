//! Tests of the chip table: names matched to reported CPUs and GPUs, and every row usable.

use super::*;

fn name_of(s: &str, cores: Option<usize>) -> Option<&'static str> {
    recognise(s, cores).map(|c| c.name)
}

#[test]
fn apple_variants_are_told_apart() {
    assert_eq!(name_of("Apple M4", Some(10)), Some("Apple M4"));
    assert_eq!(name_of("Apple M4 Pro", Some(14)), Some("Apple M4 Pro"));
    assert_eq!(
        name_of("Apple M4 Max", Some(16)),
        Some("Apple M4 Max (16-core CPU)")
    );
    assert_eq!(
        name_of("Apple M4 Max", Some(14)),
        Some("Apple M4 Max (14-core CPU)")
    );
    assert_eq!(name_of("Apple M1 Ultra", Some(20)), Some("Apple M1 Ultra"));
    assert_eq!(name_of("Apple M2", None), Some("Apple M2"));
    assert_eq!(name_of("Apple M5 Max", Some(18)), Some("Apple M5 Max"));
    // A Max with an unknown binning is not guessed.
    assert_eq!(name_of("Apple M3 Max", Some(12)), None);
}

#[test]
fn cpus_and_gpus_match_their_reported_names() {
    assert_eq!(
        name_of("AMD Ryzen 9 7950X 16-Core Processor", Some(32)),
        Some("AMD Ryzen 9 7950X")
    );
    assert_eq!(
        name_of("AMD Ryzen 9 7950X3D 16-Core Processor", Some(32)),
        Some("AMD Ryzen 9 7950X3D")
    );
    assert_eq!(
        name_of("13th Gen Intel(R) Core(TM) i9-13900K", Some(32)),
        Some("Intel Core i9-13900K")
    );
    assert_eq!(
        name_of("NVIDIA H100 80GB HBM3", None),
        Some("NVIDIA H100 SXM")
    );
    assert_eq!(name_of("NVIDIA H100 PCIe", None), Some("NVIDIA H100 PCIe"));
    assert_eq!(
        name_of("NVIDIA GeForce RTX 3090", None),
        Some("NVIDIA GeForce RTX 3090")
    );
    assert_eq!(
        name_of("NVIDIA GeForce RTX 3090 Ti", None),
        Some("NVIDIA GeForce RTX 3090 Ti")
    );
    assert_eq!(
        name_of("NVIDIA GeForce RTX 5070 Ti", None),
        Some("NVIDIA GeForce RTX 5070 Ti")
    );
    assert_eq!(name_of("NVIDIA GeForce RTX 5070", None), None);
    assert_eq!(name_of("NVIDIA RTX A6000", None), Some("NVIDIA RTX A6000"));
    assert_eq!(
        name_of("NVIDIA RTX 6000 Ada Generation", None),
        Some("NVIDIA RTX 6000 Ada")
    );
    assert_eq!(name_of("Intel(R) Xeon(R) Processor", Some(2)), None);
}

#[test]
fn names_written_without_spaces_or_with_other_hyphens_are_recognised() {
    // nvidia-smi joins an A100's words with hyphens.
    assert_eq!(
        name_of("NVIDIA A100-SXM4-80GB", None),
        Some("NVIDIA A100 80GB SXM")
    );
    assert_eq!(
        name_of("NVIDIA A100-PCIE-80GB", None),
        Some("NVIDIA A100 80GB PCIe")
    );
    assert_eq!(name_of("NVIDIA H100-SXM", None), Some("NVIDIA H100 SXM"));
    assert_eq!(
        name_of("NVIDIA GeForce RTX4090", None),
        Some("NVIDIA GeForce RTX 4090")
    );
    assert_eq!(
        name_of("NVIDIA DGX Spark", None),
        Some("NVIDIA GB10 (DGX Spark)")
    );
    // Apple's pages write "M4\u{2011}Max" with a non-breaking hyphen.
    assert_eq!(
        name_of("Apple M4\u{2011}Max", Some(16)),
        Some("Apple M4 Max (16-core CPU)")
    );
    // A model number with a hyphen is still one word, and a short prefix is not split off.
    assert_eq!(
        name_of("13th Gen Intel(R) Core(TM) i9-14900K", None),
        Some("Intel Core i9-14900K")
    );
    assert_eq!(name_of("NVIDIA GeForce RTX 40", None), None);
}

#[test]
fn every_row_is_usable() {
    for c in CHIPS {
        assert!(c.peak_gbps > 0.0, "{}", c.name);
        assert!(!c.source.is_empty() && !c.words.is_empty(), "{}", c.name);
        // Each row is reachable: its own name is recognised as itself or a sibling
        // of the same family differing only by binning.
        let found = recognise(c.name, c.cores).map(|f| f.name);
        assert_eq!(found, Some(c.name), "{}", c.name);
    }
}

/// Device descriptions as the CPU's brand string, llama.cpp's device list (`CUDA0 (...)`) and
/// nvidia-smi give them, those in results/ and tests/data among them: each keeps its chip.
#[test]
fn real_device_strings_keep_their_chip() {
    for (name, cores, chip) in [
        ("NVIDIA H100 80GB HBM3", None, Some("NVIDIA H100 SXM")),
        (
            "CUDA0 (NVIDIA H100 80GB HBM3)",
            None,
            Some("NVIDIA H100 SXM"),
        ),
        ("NVIDIA H200", None, Some("NVIDIA H200")),
        ("CUDA0 (NVIDIA H200)", None, Some("NVIDIA H200")),
        ("Intel(R) Xeon(R) Processor", Some(16), None),
        ("AMD EPYC", Some(16), None),
        ("Crafted CPU Z9", Some(8), None),
        ("Apple M4 Pro", Some(14), Some("Apple M4 Pro")),
        ("MTL0 (Apple M4 Pro)", None, Some("Apple M4 Pro")),
        ("Apple M4", Some(10), Some("Apple M4")),
        ("Apple M2 Ultra", Some(24), Some("Apple M2 Ultra")),
        ("Apple M3 Max", Some(16), Some("Apple M3 Max (16-core CPU)")),
        (
            "AMD Ryzen 9 7950X 16-Core Processor",
            Some(32),
            Some("AMD Ryzen 9 7950X"),
        ),
        (
            "AMD Ryzen 9 7950X3D 16-Core Processor",
            Some(32),
            Some("AMD Ryzen 9 7950X3D"),
        ),
        (
            "AMD EPYC 9654 96-Core Processor",
            Some(192),
            Some("AMD EPYC 9654 (Genoa)"),
        ),
        (
            "AMD Ryzen Threadripper PRO 7995WX 96-Cores",
            Some(192),
            Some("AMD Threadripper PRO 7995WX"),
        ),
        (
            "13th Gen Intel(R) Core(TM) i9-13900K",
            Some(32),
            Some("Intel Core i9-13900K"),
        ),
        (
            "Intel(R) Core(TM) Ultra 9 285K",
            Some(24),
            Some("Intel Core Ultra 9 285K"),
        ),
        (
            "Intel(R) Xeon(R) Platinum 8480+",
            Some(224),
            Some("Intel Xeon Platinum 8480+ (Sapphire Rapids)"),
        ),
        (
            "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S",
            Some(32),
            Some("AMD Ryzen AI Max+ 395"),
        ),
        (
            "NVIDIA GeForce RTX 4090",
            None,
            Some("NVIDIA GeForce RTX 4090"),
        ),
        (
            "CUDA0 (NVIDIA GeForce RTX 4090)",
            None,
            Some("NVIDIA GeForce RTX 4090"),
        ),
        (
            "NVIDIA GeForce RTX 3090 Ti",
            None,
            Some("NVIDIA GeForce RTX 3090 Ti"),
        ),
        ("NVIDIA A100-SXM4-80GB", None, Some("NVIDIA A100 80GB SXM")),
        ("NVIDIA A100 80GB PCIe", None, Some("NVIDIA A100 80GB PCIe")),
        (
            "NVIDIA RTX 6000 Ada Generation",
            None,
            Some("NVIDIA RTX 6000 Ada"),
        ),
        ("NVIDIA L40S", None, Some("NVIDIA L40S")),
        ("NVIDIA L4", None, Some("NVIDIA L4")),
        ("AMD Instinct MI300X", None, Some("AMD Instinct MI300X")),
        (
            "AMD Radeon RX 7900 XTX",
            None,
            Some("AMD Radeon RX 7900 XTX"),
        ),
        ("AMD Radeon RX 7900 XT", None, None),
        (
            "NVIDIA GeForce RTX 3090",
            None,
            Some("NVIDIA GeForce RTX 3090"),
        ),
        ("Apple M3 Max", Some(14), Some("Apple M3 Max (14-core CPU)")),
        // A Max whose binning is not known is not guessed.
        ("Apple M3 Max", None, None),
        ("NVIDIA H100 PCIe", None, Some("NVIDIA H100 PCIe")),
        (
            "AMD Radeon RX 7900 XTX (RADV NAVI31)",
            None,
            Some("AMD Radeon RX 7900 XTX"),
        ),
        (
            "AMD RYZEN AI MAX+ PRO 395 w/ Radeon 8060S",
            Some(32),
            Some("AMD Ryzen AI Max+ 395"),
        ),
        (
            "NVIDIA GeForce RTX 4090 D",
            None,
            Some("NVIDIA GeForce RTX 4090"),
        ),
        (
            "NVIDIA GeForce RTX 5090 D",
            None,
            Some("NVIDIA GeForce RTX 5090"),
        ),
        // Chips the table does not list are unknown, not a sibling: a Milan EPYC, Strix Halo's
        // GPU as Vulkan names it, a 24 GB 5090 D V2, a MIG slice.
        ("AMD EPYC 7763 64-Core Processor", Some(128), None),
        ("Radeon 8060S Graphics (RADV GFX1151)", None, None),
        ("NVIDIA GeForce RTX 5090 D V2", None, None),
        ("NVIDIA A100-SXM4-80GB MIG 3g.40gb", None, None),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", None, None),
        ("CUDA0 (NVIDIA H100 80GB HBM3 MIG 1g.10gb)", None, None),
    ] {
        assert_eq!(name_of(name, cores), chip, "{name}");
    }
}

/// The machines of the reference tables (results/reference/*.csv and their copies in
/// tests/data): the chip each names, as the table's own name or the vendor's, and "cloud" none.
#[test]
fn reference_machines_are_their_chips() {
    for (machine, cores, chip) in [
        ("AMD Radeon RX 7900 XT", None, None),
        ("AMD Ryzen AI Max+ 395", None, Some("AMD Ryzen AI Max+ 395")),
        ("Apple M1", None, Some("Apple M1")),
        ("Apple M1 Max", None, Some("Apple M1 Max")),
        ("Apple M1 Pro", None, Some("Apple M1 Pro")),
        ("Apple M1 Ultra", None, Some("Apple M1 Ultra")),
        ("Apple M2", None, Some("Apple M2")),
        ("Apple M2 Max", None, Some("Apple M2 Max")),
        ("Apple M2 Pro", None, Some("Apple M2 Pro")),
        ("Apple M2 Ultra", None, Some("Apple M2 Ultra")),
        ("Apple M3", None, Some("Apple M3")),
        (
            "Apple M3 Max (14-core CPU)",
            Some(14),
            Some("Apple M3 Max (14-core CPU)"),
        ),
        (
            "Apple M3 Max (16-core CPU)",
            Some(16),
            Some("Apple M3 Max (16-core CPU)"),
        ),
        ("Apple M3 Pro", None, Some("Apple M3 Pro")),
        ("Apple M3 Ultra", None, Some("Apple M3 Ultra")),
        ("Apple M4", None, Some("Apple M4")),
        (
            "Apple M4 Max (14-core CPU)",
            Some(14),
            Some("Apple M4 Max (14-core CPU)"),
        ),
        (
            "Apple M4 Max (16-core CPU)",
            Some(16),
            Some("Apple M4 Max (16-core CPU)"),
        ),
        ("Apple M4 Pro", None, Some("Apple M4 Pro")),
        ("Apple M5 Max", None, Some("Apple M5 Max")),
        ("NVIDIA A100 80GB PCIe", None, Some("NVIDIA A100 80GB PCIe")),
        (
            "NVIDIA GB10 (DGX Spark)",
            None,
            Some("NVIDIA GB10 (DGX Spark)"),
        ),
        (
            "NVIDIA GeForce RTX 3090",
            None,
            Some("NVIDIA GeForce RTX 3090"),
        ),
        (
            "NVIDIA GeForce RTX 4080",
            None,
            Some("NVIDIA GeForce RTX 4080"),
        ),
        (
            "NVIDIA GeForce RTX 4090",
            None,
            Some("NVIDIA GeForce RTX 4090"),
        ),
        (
            "NVIDIA GeForce RTX 5060 Ti",
            None,
            Some("NVIDIA GeForce RTX 5060 Ti"),
        ),
        (
            "NVIDIA GeForce RTX 5070 Ti",
            None,
            Some("NVIDIA GeForce RTX 5070 Ti"),
        ),
        (
            "NVIDIA GeForce RTX 5080",
            None,
            Some("NVIDIA GeForce RTX 5080"),
        ),
        (
            "NVIDIA GeForce RTX 5090",
            None,
            Some("NVIDIA GeForce RTX 5090"),
        ),
        ("NVIDIA H100 SXM", None, Some("NVIDIA H100 SXM")),
        ("NVIDIA RTX 6000 Ada", None, Some("NVIDIA RTX 6000 Ada")),
        ("NVIDIA RTX A6000", None, Some("NVIDIA RTX A6000")),
        ("cloud", None, None),
    ] {
        assert_eq!(name_of(machine, cores), chip, "{machine}");
    }
}

/// A name with a word that tells it from a chip's (a laptop part, a refresh, a higher tier,
/// an unknown word beside the model number) is not that chip: it has no published peak.
#[test]
fn a_variant_the_table_lacks_is_no_chip() {
    for (name, chip, word) in [
        (
            "NVIDIA GeForce RTX 4090 Laptop GPU",
            "NVIDIA GeForce RTX 4090",
            "laptop",
        ),
        (
            "NVIDIA GeForce RTX 4090 Mobile",
            "NVIDIA GeForce RTX 4090",
            "mobile",
        ),
        (
            "NVIDIA GeForce RTX 4090 Super",
            "NVIDIA GeForce RTX 4090",
            "super",
        ),
        (
            "NVIDIA GeForce RTX 4090 Ti",
            "NVIDIA GeForce RTX 4090",
            "ti",
        ),
        (
            "NVIDIA GeForce RTX 5090 D V2",
            "NVIDIA GeForce RTX 5090",
            "v2",
        ),
        (
            "NVIDIA GeForce RTX 4080 Laptop GPU",
            "NVIDIA GeForce RTX 4080",
            "laptop",
        ),
        (
            "NVIDIA GeForce RTX 4080 Max-Q",
            "NVIDIA GeForce RTX 4080",
            "max-q",
        ),
        ("Apple M4 Prox", "Apple M4", "prox"),
        ("Apple M4 Prox 48GB", "Apple M4", "prox"),
        ("Apple M2 Extreme", "Apple M2", "extreme"),
        ("NVIDIA H200 NVL", "NVIDIA H200", "nvl"),
        (
            "NVIDIA A100-SXM4-80GB MIG 3g.40gb",
            "NVIDIA A100 80GB SXM",
            "mig",
        ),
        (
            "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
            "NVIDIA H100 SXM",
            "mig",
        ),
    ] {
        assert_eq!(name_of(name, None), None, "{name}");
        let found = near(name, None).map(|(c, w)| (c.name, w));
        assert_eq!(found, Some((chip, word.to_string())), "{name}");
    }
    // A chip's own name, or none in the table, is near none.
    assert_eq!(near("NVIDIA GeForce RTX 4090", None), None);
    assert_eq!(near("Commodore 64", None), None);
}

/// The business part of the Ryzen AI Max+ 395 has its memory (LPDDR5X-8000, 256-bit): its PRO
/// tells it from no other peak.
#[test]
fn the_pro_part_of_a_chip_with_the_same_memory_is_that_chip() {
    for name in [
        "AMD RYZEN AI MAX+ PRO 395 w/ Radeon 8060S",
        "AMD Ryzen AI Max+ PRO 395",
    ] {
        assert_eq!(
            name_of(name, Some(32)),
            Some("AMD Ryzen AI Max+ 395"),
            "{name}"
        );
        assert_eq!(near(name, Some(32)), None, "{name}");
    }
    // PRO still tells an Apple chip from another.
    assert_eq!(name_of("Apple M4 Pro", Some(14)), Some("Apple M4 Pro"));
    assert_eq!(name_of("AMD Ryzen AI Max PRO 390", Some(24)), None);
}

/// An RTX 4090 D or 5090 D has the memory of the card it is named after, so its published
/// peak; the RTX 5090 D V2 has 24 GB on a 384-bit bus and is no 5090.
#[test]
fn a_d_card_with_its_siblings_memory_is_that_card() {
    for (name, chip) in [
        ("NVIDIA GeForce RTX 4090 D", "NVIDIA GeForce RTX 4090"),
        (
            "CUDA0 (NVIDIA GeForce RTX 4090 D)",
            "NVIDIA GeForce RTX 4090",
        ),
        ("NVIDIA GeForce RTX 5090 D", "NVIDIA GeForce RTX 5090"),
    ] {
        assert_eq!(name_of(name, None), Some(chip), "{name}");
        assert_eq!(near(name, None), None, "{name}");
    }
    for name in [
        "NVIDIA GeForce RTX 5090 D V2",
        "NVIDIA GeForce RTX 5090 D v2",
        "CUDA0 (NVIDIA GeForce RTX 5090 D V2)",
    ] {
        assert_eq!(name_of(name, None), None, "{name}");
        let found = near(name, None).map(|(c, w)| (c.name, w));
        assert_eq!(
            found,
            Some(("NVIDIA GeForce RTX 5090", "v2".to_string())),
            "{name}"
        );
    }
    // A laptop part is refused still, and only the 4090 and 5090 allow a D.
    assert_eq!(name_of("NVIDIA GeForce RTX 4090 D Laptop GPU", None), None);
    assert_eq!(name_of("NVIDIA GeForce RTX 4080 D", None), None);
    // `guide --machine` tells a 24 GB "5090 D" from the 5090 by the size the table states.
    let rtx5090 = CHIPS.iter().find(|c| c.name == "NVIDIA GeForce RTX 5090");
    assert!(rtx5090.is_some_and(|c| c.memory.ends_with(", 32 GB")));
}

/// A MIG instance has a share of its GPU's bandwidth that no one publishes: "MIG" anywhere in
/// its name (the CUDA backend's and nvidia-smi's "<GPU> MIG 1g.10gb") makes it no chip.
#[test]
fn a_mig_slice_is_no_chip() {
    for name in [
        "NVIDIA A100-SXM4-80GB MIG 3g.40gb",
        "NVIDIA A100-SXM4-80GB MIG 1g.10gb",
        "NVIDIA A100 80GB PCIe MIG 7g.80gb",
        "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
        "NVIDIA H100 80GB HBM3 MIG 7g.80gb",
        "CUDA0 (NVIDIA H100 80GB HBM3 MIG 1g.10gb)",
        "NVIDIA H100 PCIe MIG 3g.40gb",
        "NVIDIA H200 MIG 1g.18gb",
        "NVIDIA H100-MIG",
    ] {
        assert_eq!(name_of(name, None), None, "{name}");
        assert!(near(name, None).is_some_and(|(_, w)| w == "mig"), "{name}");
    }
}

/// A name of several devices ("2x RTX 4090", "Dual EPYC 9654", "EPYC 9654 2P") is no chip,
/// wherever the count stands, while model numbers that end in X or P are still their chips.
#[test]
fn several_devices_are_no_chip() {
    for (name, word) in [
        ("2x NVIDIA GeForce RTX 4090", "2x"),
        ("NVIDIA GeForce RTX 4090 x2", "x2"),
        ("NVIDIA 4x H100 80GB HBM3", "4x"),
        ("Dual AMD EPYC 9654 96-Core Processor", "dual"),
        ("AMD EPYC 9654 2P", "2p"),
        ("Quad NVIDIA GeForce RTX 3090", "quad"),
        ("AMD EPYC 9654 dual-socket", "dual"),
    ] {
        assert_eq!(name_of(name, None), None, "{name}");
        assert!(near(name, None).is_some_and(|(_, w)| w == word), "{name}");
        assert_eq!(several(name).as_deref(), Some(word), "{name}");
    }
    for word in [
        "9950x", "7980x", "6980p", "mi300x", "1x", "x1", "1080p", "x3d",
    ] {
        assert!(!several_devices(word), "{word}");
    }
    for (name, chip) in [
        ("AMD Ryzen 9 9950X", "AMD Ryzen 9 9950X"),
        ("AMD Threadripper 7980X", "AMD Threadripper 7980X"),
        ("Intel Xeon 6980P", "Intel Xeon 6980P (Granite Rapids)"),
    ] {
        assert_eq!(name_of(name, None), Some(chip), "{name}");
        assert_eq!(several(name), None, "{name}");
    }
}

/// A vendor's word that is not the chip's vendor ("Intel H100") tells the name from the chip.
#[test]
fn another_vendors_word_is_no_chip() {
    for (name, chip, word) in [
        ("Intel NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM", "intel"),
        ("AMD NVIDIA H100 SXM", "NVIDIA H100 SXM", "amd"),
        (
            "Apple NVIDIA GeForce RTX 4090",
            "NVIDIA GeForce RTX 4090",
            "apple",
        ),
        ("NVIDIA AMD EPYC 9654", "AMD EPYC 9654 (Genoa)", "nvidia"),
        ("Intel Apple M4 Pro", "Apple M4 Pro", "intel"),
    ] {
        assert_eq!(name_of(name, None), None, "{name}");
        let found = near(name, None).map(|(c, w)| (c.name, w));
        assert_eq!(found, Some((chip, word.to_string())), "{name}");
    }
}
