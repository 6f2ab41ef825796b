#!/usr/bin/env python3
"""At concurrency 1, does the batched in-process path (`runner sweep --concurrency 1`, the
engine's continuous batcher with one sequence) match the single-request path (`runner sweep`,
one Session per request)? Runs the same prompts through both, alternating which goes first,
and prints per round the ratio batched / single of the median decode rate and of the median
TTFT. Run it on an idle machine. Usage:

  scripts/load-c1.py [-m smollm2-135m] [-s long-form] [--limit 4] [--max-tokens 128] [--rounds 6]
"""
import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def medians(results):
    reqs = []
    for f in Path(results).glob("*.jsonl"):
        reqs += [json.loads(l) for l in f.read_text().splitlines()]
    reqs = [r for r in reqs if r.get("kind") == "request" and not r["failed"]]
    busy = sum(1 for r in reqs if r["load"]["busy"])
    tps = statistics.median(r["decode_tps"] for r in reqs if r.get("decode_tps"))
    ttft = statistics.median(r["ttft_ms"] for r in reqs if r.get("ttft_ms") is not None)
    return tps, ttft, busy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", default="smollm2-135m")
    ap.add_argument("-s", "--scenario", default="long-form")
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runner", default=str(ROOT / "target/release/runner"))
    a = ap.parse_args()
    base = [a.runner, "sweep", "-m", a.model, "-q", "source", "-s", a.scenario, "--limit", str(a.limit),
            "--max-tokens", str(a.max_tokens), "--no-progress", "--no-text"]
    paths = {"single": [], "batched": ["--concurrency", "1", "--requests", str(a.limit)]}
    tps_ratio, ttft_ratio = [], []
    print(f"{'round':>5} {'single tok/s':>13} {'batched tok/s':>14} {'ratio':>7} {'single TTFT':>12} {'batched TTFT':>13} {'ratio':>7}")
    for r in range(a.rounds):
        order = ["single", "batched"] if r % 2 == 0 else ["batched", "single"]
        got = {}
        for p in order:
            with tempfile.TemporaryDirectory() as d:
                subprocess.run(base + paths[p] + ["--results", d], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                got[p] = medians(d)
                if got[p][2]:
                    print(f"warning: round {r}: {p}: {got[p][2]} request(s) on a busy machine")
        (st, sf, _), (bt, bf, _) = got["single"], got["batched"]
        tps_ratio.append(bt / st)
        ttft_ratio.append(bf / sf)
        print(f"{r:>5} {st:>13.2f} {bt:>14.2f} {bt / st:>7.3f} {sf:>12.1f} {bf:>13.1f} {bf / sf:>7.3f}")
    print(f"median ratio batched / single: decode {statistics.median(tps_ratio):.3f} "
          f"(range {min(tps_ratio):.3f}-{max(tps_ratio):.3f}), TTFT {statistics.median(ttft_ratio):.3f} "
          f"(range {min(ttft_ratio):.3f}-{max(ttft_ratio):.3f})")


if __name__ == "__main__":
    main()
