//! `scripts/deps.sh --check` on simulated machines: it must ask for exactly what the build
//! loads, and never take the image's libclang-cpp for the libclang that bindgen opens.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real bash, by absolute path: the simulated PATH has none.
fn bash() -> PathBuf {
    ["/bin/bash", "/usr/bin/bash"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("bash is installed")
}

/// A simulated machine: a root for library and header lookups and a PATH of stub commands.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let m = Machine {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(m.bin()).unwrap();
        std::fs::create_dir_all(m.root()).unwrap();
        // The script needs `uname`, `dirname` and `sed` of the real machine.
        for tool in ["uname", "dirname", "sed"] {
            let real = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{tool} not found"));
            std::os::unix::fs::symlink(real, m.bin().join(tool)).unwrap();
        }
        m
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// A stub command that exits with `code`.
    fn command(&self, name: &str, code: i32) -> &Machine {
        let p = self.bin().join(name);
        std::fs::write(&p, format!("#!/bin/sh\nexit {code}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// An empty file under the simulated root.
    fn file(&self, rel: &str) -> &Machine {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
        self
    }

    /// The stock image: compilers, python with pip, libclang-cpp, nothing else.
    fn stock() -> Machine {
        let m = Machine::new();
        m.command("c++", 0)
            .command("python3", 0)
            .file("usr/lib/x86_64-linux-gnu/libclang-cpp.so.14")
            .file("usr/lib/llvm-14/lib/libclang-cpp.so.14");
        m
    }

    /// What `deps.sh --check` says is missing, and whether it exited 0.
    fn check(&self) -> (Vec<String>, bool) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deps.sh");
        let out = Command::new(bash())
            .arg(&script)
            .arg("--check")
            .env_clear()
            .env("PATH", self.bin())
            .env("RUNNER_DEPS_ROOT", self.root())
            .output()
            .expect("bash runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim().is_empty(), "unexpected stderr: {stderr}");
        let missing = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        (missing, out.status.success())
    }
}

#[test]
fn libclang_cpp_alone_asks_for_libclang_dev() {
    let m = Machine::stock();
    let (missing, ok) = m.check();
    assert!(!ok, "a machine without libclang passed the check");
    assert_eq!(missing, ["cmake", "ccache", "libclang-dev"]);
}

#[test]
fn a_complete_machine_needs_nothing() {
    let m = Machine::stock();
    m.command("cmake", 0)
        .command("ccache", 0)
        .file("usr/lib/llvm-14/lib/libclang-14.so.1")
        .file("usr/lib/llvm-14/lib/clang/14.0.6/include/stdbool.h");
    assert_eq!(m.check(), (Vec::new(), true));
}

#[test]
fn the_versioned_library_names_bindgen_accepts_all_count() {
    for lib in [
        "usr/lib/llvm-16/lib/libclang.so",
        "usr/lib/x86_64-linux-gnu/libclang-16.so",
        "usr/lib/x86_64-linux-gnu/libclang.so.1",
        "usr/local/lib/libclang-17.so.17",
    ] {
        let m = Machine::stock();
        m.command("cmake", 0)
            .command("ccache", 0)
            .file(lib)
            .file("usr/lib/clang/16/include/stdbool.h");
        assert_eq!(m.check(), (Vec::new(), true), "{lib}");
    }
}

#[test]
fn libclang_without_its_resource_headers_asks_for_libclang_dev() {
    let m = Machine::stock();
    m.command("cmake", 0)
        .command("ccache", 0)
        .file("usr/lib/x86_64-linux-gnu/libclang-14.so.1");
    assert_eq!(m.check(), (vec!["libclang-dev".to_string()], false));
}

#[test]
fn python_without_pip_asks_for_pip() {
    let m = Machine::stock();
    m.command("cmake", 0)
        .command("ccache", 0)
        .command("python3", 1)
        .file("usr/lib/llvm-14/lib/libclang.so")
        .file("usr/lib/llvm-14/lib/clang/14.0.6/include/stdbool.h");
    assert_eq!(m.check(), (vec!["python3-pip".to_string()], false));
    let bare = Machine::new();
    bare.command("cmake", 0)
        .command("ccache", 0)
        .command("c++", 0)
        .file("usr/lib/llvm-14/lib/libclang.so")
        .file("usr/lib/llvm-14/lib/clang/14.0.6/include/stdbool.h");
    assert_eq!(
        bare.check().0,
        ["python3", "python3-pip"],
        "no python3 at all"
    );
}

#[test]
fn an_unknown_argument_is_refused() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deps.sh");
    let out = Command::new(bash())
        .arg(&script)
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
}
