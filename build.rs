//! Compiles runner's own C++ shim (vendor/runner_shim.cpp) for what llama-cpp-2 does not expose.

fn main() {
    println!("cargo:rerun-if-changed=vendor/runner_shim.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("vendor/runner_shim.cpp")
        .warnings(true)
        .compile("runner_shim");
}
