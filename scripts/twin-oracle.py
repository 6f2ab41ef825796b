#!/usr/bin/env python3
"""Check that synthetic models decode at the real model's speed: for each fetchable model, a
twin (random-weight copy with the same tensors, shapes and types, `runner models twin`) must
reach 0.97-1.03 of the real file's prompt (pp) and generation (tg) tok/s. A second twin made
of plain random bytes shows why the values must be well scaled (it is expected to differ).

The real file and its twins run in alternation (real, twin, bytes, real, twin, ...) with
`runner bench --mmap off`, and each round's ratios are paired with that round's real run; the
verdict is on the median ratio. The models are read into memory rather than memory-mapped:
the speed of a memory-mapped model also depends on how its file's pages came into the page
cache (a file written just now decoded up to 20 % faster here than the same bytes read in by
page faults), which is not what this compares.

Usage: scripts/twin-oracle.py [-m MODEL[,MODEL...]] [-p 64] [-n 32] [-r 5] [--rounds 5]
                              [-t THREADS] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
BAND = (0.97, 1.03)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def runner() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    exe = Path(target) / "release" / "runner"
    if not exe.exists():
        sys.exit(f"error: {exe} is missing: run `cargo build --release --locked` first")
    return str(exe)


def run(args: list) -> str:
    p = subprocess.run([runner(), *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"error: runner {' '.join(args)}: {p.stderr.strip().splitlines()[-1:]}")
    return p.stdout


def bench(path: str, a) -> dict:
    out = run(["bench", "-m", path, "-p", str(a.p), "-n", str(a.n), "-r", str(a.r),
               "-t", str(a.threads), "--mmap", "off", "--format", "json", "--no-progress",
               "--require-idle"])
    rec = json.loads(out)[0]
    res = rec["results"]
    return {"pp": res["prompt_tps"]["median"], "tg": res["gen_tps"]["median"],
            "busy": rec["load"]["busy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--models", default=",".join(MODELS))
    ap.add_argument("-p", type=int, default=64)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="also write every measurement here")
    a = ap.parse_args()
    rows, raw = [], {}
    for name in a.models.split(","):
        real = run(["models", "fetch", name]).strip()
        log(f"{name}: making its twins ...")
        twin = run(["models", "twin", real]).strip()
        noise = run(["models", "twin", real, "--random-bytes"]).strip()
        runs = {"real": [], "twin": [], "bytes": []}
        for i in range(a.rounds):
            for kind, path in (("real", real), ("twin", twin), ("bytes", noise)):
                runs[kind].append(bench(path, a))
            log(f"{name}: round {i + 1}/{a.rounds} done")
        raw[name] = runs
        if any(r["busy"] for rs in runs.values() for r in rs):
            sys.exit(f"error: {name}: the machine was busy during a run; measure on an idle machine")
        for kind in ("twin", "bytes"):
            for test in ("pp", "tg"):
                ratios = [t[test] / r[test] for t, r in zip(runs[kind], runs["real"])]
                med = statistics.median(ratios)
                rows.append((name, kind, test, statistics.median(r[test] for r in runs["real"]),
                             statistics.median(t[test] for t in runs[kind]), med,
                             min(ratios), max(ratios)))
    print(f"{'model':<20} {'file':<6} {'test':<5} {'real tok/s':>10} {'file tok/s':>10} "
          f"{'ratio':>7}  per-round (min..max)  verdict")
    ok = True
    for name, kind, test, real, copy, med, lo, hi in rows:
        inside = BAND[0] <= med <= BAND[1]
        verdict = ("within 3 %" if inside else "outside 3 %") if kind == "twin" else \
            "(contrast: random bytes)"
        ok &= inside or kind != "twin"
        print(f"{name:<20} {kind:<6} {test:<5} {real:>10.2f} {copy:>10.2f} {med:>7.3f}  "
              f"{lo:.3f}..{hi:.3f}         {verdict}")
    print(f"p={a.p} n={a.n} r={a.r} threads={a.threads} rounds={a.rounds}")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "runs": raw}, indent=1) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
