//! The crate's shape, checked: modules use only the layers below them, unsafe code lives in
//! the engine alone and explains itself, and every module says what it owns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom first: a module may use modules of lower rank (and itself).
const LAYERS: &[(&str, u32)] = &[
    ("util", 0),
    ("gguf", 1),
    ("models", 2),
    ("scenario", 2),
    ("hw", 2),
    ("moe", 3),
    ("engine", 4),
    ("measure", 5),
    ("record", 6),
    ("grade", 7),
    ("backend", 8),
    ("exec", 9),
    ("plan", 10),
    ("report", 11),
    ("cli", 12),
    ("app", 13),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Each file with its top-level module (`None` for lib.rs and main.rs).
fn sources() -> Vec<(PathBuf, Option<String>, String)> {
    let mut paths = Vec::new();
    files(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().to_path_buf();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .to_string();
            let module = match first.as_str() {
                "lib.rs" | "main.rs" => None,
                f => Some(f.trim_end_matches(".rs").to_string()),
            };
            let text = std::fs::read_to_string(&p).unwrap();
            (rel, module, text)
        })
        .collect()
}

/// The code of a line, without its comment.
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The top-level modules a line's code names as `crate::NAME`.
fn crate_paths(line: &str) -> Vec<String> {
    let code = code(line);
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    // `use crate::{a, b::c}` names several
    if let Some(i) = code.find("crate::{") {
        let inner = &code[i + "crate::{".len()..];
        for part in inner.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    let mut seen_modules = std::collections::BTreeSet::new();
    for (path, module, text) in sources() {
        let Some(module) = module else { continue };
        seen_modules.insert(module.clone());
        let Some(&mine) = rank.get(module.as_str()) else {
            wrong.push(format!(
                "{}: module '{module}' has no layer",
                path.display()
            ));
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for used in crate_paths(line) {
                if used == module {
                    continue;
                }
                match rank.get(used.as_str()) {
                    Some(&theirs) if theirs < mine => {}
                    Some(_) => wrong.push(format!(
                        "{}:{}: {module} uses {used}, a layer at or above it",
                        path.display(),
                        n + 1
                    )),
                    None => wrong.push(format!(
                        "{}:{}: unknown module {used}",
                        path.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let layered: std::collections::BTreeSet<String> = rank.keys().map(|s| s.to_string()).collect();
    assert_eq!(
        seen_modules, layered,
        "every layer is a module and every module a layer"
    );
}

#[test]
fn the_checker_sees_what_it_must() {
    assert_eq!(
        crate_paths("use crate::engine::Session; // crate::app"),
        ["engine"]
    );
    assert_eq!(
        crate_paths("    let x = crate::report::table::grid(a);"),
        ["report"]
    );
    let mut both = crate_paths("use crate::{exec, plan::bench};");
    both.sort();
    assert_eq!(both, ["exec", "plan"]);
}

#[test]
fn unsafe_code_is_the_engines_and_says_why_it_is_sound() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    assert!(
        lib.contains("#![deny(unsafe_code)]"),
        "the crate root denies unsafe code"
    );
    let mut wrong = Vec::new();
    for (path, module, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        let allows = text.contains("allow(unsafe_code)");
        if allows && path != Path::new("engine/mod.rs") {
            wrong.push(format!(
                "{}: only the engine may allow unsafe code",
                path.display()
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            let c = code(line);
            let before = |n: usize| lines[i.saturating_sub(n)..i].join("\n");
            if c.contains("unsafe {") && !before(8).contains("SAFETY:") && !c.contains("SAFETY") {
                wrong.push(format!(
                    "{}:{}: an unsafe block without a SAFETY comment",
                    path.display(),
                    i + 1
                ));
            }
            if c.contains("unsafe fn ") && !before(20).contains("# Safety") {
                wrong.push(format!(
                    "{}:{}: an unsafe fn without a # Safety section",
                    path.display(),
                    i + 1
                ));
            }
            let engine = module.as_deref() == Some("engine");
            if !engine
                && (c.contains("unsafe {") || c.contains("unsafe fn") || c.contains("unsafe impl"))
            {
                wrong.push(format!(
                    "{}:{}: unsafe code outside the engine",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(path, _, text)| {
            let name = path.file_name().unwrap().to_string_lossy();
            let is_test = name.ends_with("_tests.rs") || name == "tests.rs";
            !is_test && !text.trim_start().starts_with("//!")
        })
        .map(|(path, _, _)| path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a //! line: {missing:?}");
}

#[test]
fn command_line_types_stay_in_the_command_line_layers() {
    let wrong: Vec<String> = sources()
        .into_iter()
        .filter(|(_, module, _)| !matches!(module.as_deref(), Some("cli" | "app") | None))
        .flat_map(|(path, _, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, l)| code(l).contains("clap"))
                .map(|(i, _)| format!("{}:{}: clap below cli/", path.display(), i + 1))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
