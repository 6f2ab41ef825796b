#!/usr/bin/env python3
"""Measure runner's own overhead in a quantization sweep.

Runs `runner sweep` from scratch (a fresh results file and an empty quantize cache, so the
quantizations are really made) and splits its wall time into what llama.cpp spent (quantizing,
loading the weights, evaluating prompts and decoding, as the records report them) and the
rest: process starts, model-file checks, tokenizing and templating, token choice, grading and
record writing. Prints the overhead as a share of the sweep's wall time.

Usage: scripts/sweep-overhead.py [-m MODEL] [--quant q4_k_m,q6_k,q8_0] [--scenario short-response] [--limit N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="smollm2-135m")
    ap.add_argument("--quant", default="q4_k_m,q6_k,q8_0")
    ap.add_argument("--scenario", default="short-response")
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runner = target / "release" / "runner"
    if not runner.exists():
        sys.exit(f"error: {runner} not found: run `cargo build --release` first")
    model = subprocess.run([str(runner), "models", "fetch", a.model], check=True,
                           capture_output=True, text=True).stdout.strip() \
        if not os.path.isfile(a.model) else a.model
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(runner), "sweep", "-m", model, "--quant", a.quant, "--scenario", a.scenario,
               "--results", f"{tmp}/results", "--cache-dir", f"{tmp}/cache", "--no-progress",
               "--busy-threshold", "1000"]
        if a.limit:
            cmd += ["--limit", str(a.limit)]
        start = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - start
        records = [json.loads(line) for f in Path(f"{tmp}/results").glob("*.jsonl")
                   for line in f.read_text().splitlines()]
    reqs = [r for r in records if r["kind"] == "request"]
    llama = sum(r["llama_ms"] for r in reqs) / 1000
    cells = {}
    for r in reqs:
        cells[(r["cell"]["model"], r["cell"]["quant"])] = r["info"]
    quantize = sum((i["quantize_ms"] or 0) for i in cells.values()) / 1000
    load = sum(i["model"]["load_ms"] for i in cells.values()) / 1000
    busy = sum(1 for r in reqs if r["load"]["busy"])
    inside = llama + quantize + load
    overhead = wall - inside
    print(f"sweep of {len(cells)} quantizations x {len(reqs) // max(len(cells), 1)} requests "
          f"({a.scenario}) on {os.path.basename(model)}")
    print(f"wall time                      {wall:8.2f} s")
    print(f"  llama.cpp quantize            {quantize:8.2f} s")
    print(f"  llama.cpp load                {load:8.2f} s")
    print(f"  llama.cpp prompt + decode     {llama:8.2f} s")
    print(f"  runner's own overhead         {overhead:8.2f} s  ({overhead / wall * 100:.2f} % of wall time)")
    if busy:
        print(f"note: {busy} request(s) ran on a busy machine")


if __name__ == "__main__":
    main()
