#!/usr/bin/env python3
"""Check that synthetic models decode at the real model's speed: for each fetchable model, a
twin (random-weight copy with the same tensors, shapes and types, `runner models twin`) must
reach 0.97-1.03 of the real file's prompt (pp) and generation (tg) tok/s. A second twin made
of plain random bytes shows why the values must be well scaled (it is expected to differ).

By default the files are compared inside one process (the engine's `interleaved_speed_probe`,
built with `cargo test --release`): both files are loaded (read into memory, not mapped) and
timed in alternation every round, so that a machine whose speed drifts over seconds or
minutes affects both alike. A file loaded first can run at another speed than one loaded
later in the same process (up to 10 % here), so every pair is measured twice, in both load
orders, and each round's ratio is the geometric mean of the two orders' ratios.

`--processes` measures the older way instead: `runner bench --mmap off` per file, one process
each, in alternation (real, twin, bytes, real, ...), each round's ratios paired with that
round's real run. It is simpler, and unreliable where the machine's speed drifts between
processes.

The verdict is on the median ratio.

Usage: scripts/twin-oracle.py [-m MODEL[,MODEL...]] [-p 64] [-n 32] [-r 5] [--rounds N]
                              [-t THREADS] [--processes] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
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


def processes(real: str, copy: str, a, what: str):
    """Each file in its own `runner bench` process, alternating; ratios paired per round."""
    runs = {"real": [], "copy": []}
    for i in range(a.rounds):
        for kind, path in (("real", real), ("copy", copy)):
            runs[kind].append(bench(path, a))
        log(f"{what}: round {i + 1}/{a.rounds} done")
    if any(r["busy"] for rs in runs.values() for r in rs):
        sys.exit(f"error: {what}: the machine was busy during a run; measure on an idle machine")
    rates = {k: {t: [r[t] for r in v] for t in ("pp", "tg")} for k, v in runs.items()}
    ratios = {t: [c / r for c, r in zip(rates["copy"][t], rates["real"][t])] for t in ("pp", "tg")}
    return rates["real"], rates["copy"], ratios


def probe(paths: list, a) -> dict:
    """One run of the engine's interleaved speed probe over `paths`, in that load order."""
    env = dict(os.environ, RUNNER_PROBE_MODELS=",".join(paths),
               RUNNER_PROBE_ROUNDS=str(a.rounds), RUNNER_PROBE_THREADS=str(a.threads),
               RUNNER_PROBE_PROMPT=str(a.p), RUNNER_PROBE_GEN=str(a.n))
    p = subprocess.run(["cargo", "test", "--release", "--locked", "--lib",
                        "interleaved_speed_probe", "--", "--ignored", "--nocapture"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [l for l in p.stdout.splitlines() if l.startswith("PROBE ")]
    if p.returncode != 0 or not lines:
        sys.exit(f"error: the speed probe failed: {p.stderr.strip().splitlines()[-3:]}")
    return json.loads(lines[-1][len("PROBE "):])


def interleaved(real: str, copy: str, a, what: str):
    """Both files in one process, alternating, in both load orders; per-round ratios are the
    geometric mean of the two orders'."""
    if busy():
        sys.exit(f"error: {what}: the machine is busy; measure on an idle machine")
    first = probe([real, copy], a)
    log(f"{what}: real loaded first done")
    second = probe([copy, real], a)
    log(f"{what}: real loaded second done")
    if busy():
        sys.exit(f"error: {what}: the machine was busy during the probe; measure on an idle machine")
    real_rates = {t: first[t][0] + second[t][1] for t in ("pp", "tg")}
    copy_rates = {t: first[t][1] + second[t][0] for t in ("pp", "tg")}
    ratios = {t: [((c1 / r1) * (c2 / r2)) ** 0.5
                  for c1, r1, c2, r2 in zip(first[t][1], first[t][0], second[t][0], second[t][1])]
              for t in ("pp", "tg")}
    return real_rates, copy_rates, ratios


def busy(seconds: float = 2.0, threshold: float = 0.25) -> bool:
    """Whether other processes keep the machine busy: more than `threshold` cores in use over
    `seconds` (the default of `runner bench --busy-threshold`), from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - v[4], sum(v)
    if not os.path.exists("/proc/stat"):
        return False
    b0, t0 = sample()
    time.sleep(seconds)
    b1, t1 = sample()
    return (b1 - b0) / max(t1 - t0, 1) * (os.cpu_count() or 1) > threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--models", default=",".join(MODELS))
    ap.add_argument("-p", type=int, default=64)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds per pair (default: 20 interleaved, 5 with --processes)")
    ap.add_argument("--processes", action="store_true",
                    help="one runner bench process per file instead of the interleaved probe")
    ap.add_argument("--json", help="also write every measurement here")
    a = ap.parse_args()
    if a.rounds is None:
        a.rounds = 5 if a.processes else 20
    rows, raw = [], {}
    for name in a.models.split(","):
        real = run(["models", "fetch", name]).strip()
        log(f"{name}: making its twins ...")
        twin = run(["models", "twin", real]).strip()
        noise = run(["models", "twin", real, "--random-bytes"]).strip()
        measure = processes if a.processes else interleaved
        raw[name] = {}
        for kind, path in (("twin", twin), ("bytes", noise)):
            real_rates, copy_rates, ratios = measure(real, path, a, f"{name} {kind}")
            raw[name][kind] = {"real": real_rates, kind: copy_rates, "ratios": ratios}
            for test in ("pp", "tg"):
                r = ratios[test]
                rows.append((name, kind, test, statistics.median(real_rates[test]),
                             statistics.median(copy_rates[test]), statistics.median(r),
                             min(r), max(r)))
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
    how = f"processes r={a.r}" if a.processes else "interleaved in one process, both load orders"
    print(f"p={a.p} n={a.n} threads={a.threads} rounds={a.rounds} ({how})")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "runs": raw}, indent=1) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
