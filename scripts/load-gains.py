#!/usr/bin/env python3
"""Aggregate throughput gained by running several requests at once, in-process and through
llama.cpp's own llama-server, side by side on the same GGUF.

For each model, llama-server (the xllamacpp wheel, see scripts/xllamacpp.sh) is started with
--parallel set to the largest level, then `runner sweep --concurrency LEVELS` runs the same
prompts natively (continuous batching in one context) and through the server (one client per
slot), in alternating order over --rounds rounds. Every request of a level has its own prompt
(a generated scenario of --requests story prompts) and the server's prompt cache is off
(`cache_prompt: false`), so both sides evaluate every prompt in full. Per backend and level it prints the
aggregate output rate (all output tokens / level wall time), its gain over concurrency 1, the
median per-user decode rate and p99 TTFT (from arrival), as medians over the rounds. Run it on
an idle machine. Usage:

  scripts/load-gains.py [-m smollm2-135m,qwen2.5-coder-1.5b] [--levels 1,2,4,8]
                        [--requests 16] [--max-tokens 64] [--rounds 2] [--threads 2] [--keep DIR]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(*args):
    return subprocess.run(args, check=True, text=True, capture_output=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def levels_of(results):
    """{(backend, concurrency): (out tok/s, per-user tok/s, p99 TTFT ms)} from a results dir."""
    groups = {}
    for f in Path(results).glob("*.jsonl"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            t = r.get("traffic")
            if r.get("kind") != "request" or not t or t.get("shape") != "closed":
                continue
            groups.setdefault((r["cell"]["backend"], t["concurrency"]), []).append(r)
    out = {}
    for key, reqs in groups.items():
        start = min(r["traffic"]["arrival_ms"] for r in reqs)
        end = max(r["traffic"]["arrival_ms"] + r["traffic"]["queue_ms"] + r["e2e_ms"] for r in reqs)
        tokens = sum(r["output_tokens"] for r in reqs)
        user = [r["decode_tps"] for r in reqs if r.get("decode_tps")]
        ttft = sorted(r["ttft_ms"] + r["traffic"]["queue_ms"] for r in reqs if r.get("ttft_ms") is not None)
        busy = sum(1 for r in reqs if r["load"]["busy"])
        if busy:
            print(f"warning: {key}: {busy} request(s) measured on a busy machine", file=sys.stderr)
        p99 = ttft[min(len(ttft) - 1, round(0.99 * (len(ttft) - 1)))] if ttft else float("nan")
        out[key] = (tokens / ((end - start) / 1000), statistics.median(user) if user else float("nan"), p99)
    return out


def scenario(path, n, max_tokens):
    """A scenario of n distinct story prompts, greedy, max_tokens each."""
    topics = ["a lighthouse keeper", "a lost robot", "a mountain village", "a river journey",
              "a clockmaker", "a desert caravan", "a winter market", "a deep-sea station",
              "a forgotten library", "a night train", "a bee colony", "a comet watcher"]
    lines = ['name = "load-gains"', 'description = "Distinct story prompts for load levels"',
             'kind = "long-form"', "", "[defaults]", f"max_tokens = {max_tokens}",
             "time_limit_s = 600.0", "temperature = 0.0", ""]
    for i in range(n):
        text = f"Write a long, detailed story about {topics[i % len(topics)]} (version {i})."
        lines += ["[[prompts]]", f'id = "story-{i}"', f'user = "{text}"', ""]
    Path(path).write_text("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--models", default="smollm2-135m,qwen2.5-coder-1.5b")
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", metavar="DIR", help="also copy every round's results file into DIR")
    ap.add_argument("--runner", default=str(ROOT / "target/release/runner"))
    a = ap.parse_args()
    py = sh(str(ROOT / "scripts/xllamacpp.sh"))
    work = tempfile.TemporaryDirectory()
    sc = Path(work.name) / "load-gains.toml"
    scenario(sc, a.requests, a.max_tokens)
    cfg = Path(work.name) / "backends.toml"
    cfg.write_text("[openai]\nextra = { cache_prompt = false }\n")
    top = max(int(x) for x in a.levels.split(","))
    for name in a.models.split(","):
        model = name if os.path.isfile(name) else sh(a.runner, "models", "fetch", name)
        port = free_port()
        server = subprocess.Popen([py, str(ROOT / "scripts/llama-server.py"), model, str(port),
                                   "--threads", str(a.threads), "--ctx", str(1024 * top),
                                   "--parallel", str(top)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        server.stdout.readline()
        rounds = []
        try:
            for r in range(a.rounds):
                order = ["native", "openai:server"] if r % 2 == 0 else ["openai:server", "native"]
                got = {}
                for backend in order:
                    with tempfile.TemporaryDirectory() as d:
                        subprocess.run([a.runner, "sweep", "-m", model, "-q", "source", "-s", str(sc),
                                        "--backend-config", str(cfg), "--concurrency", a.levels,
                                        "--requests", str(a.requests), "--threads", str(a.threads),
                                        "--backend", backend, "--openai-base-url", f"http://127.0.0.1:{port}/v1",
                                        "--results", d, "--no-progress", "--no-text"],
                                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        got.update(levels_of(d))
                        if a.keep:
                            Path(a.keep).mkdir(parents=True, exist_ok=True)
                            side = "native" if backend == "native" else "llama-server"
                            for f in Path(d).glob("*.jsonl"):
                                dest = Path(a.keep) / f"{Path(model).stem}-{side}-round{r}.jsonl"
                                dest.write_text(f.read_text())
                rounds.append(got)
        finally:
            server.stdin.close()
            server.wait(timeout=30)
        print(f"\n{Path(model).name}: {a.requests} requests per level, {a.max_tokens} tokens at most, "
              f"{a.threads} threads, medians of {a.rounds} round(s)")
        print(f"{'backend':<15} {'c':>3} {'out tok/s':>10} {'gain':>6} {'user tok/s':>11} {'TTFT p99 ms':>12}")
        for backend in ["native", "openai:server"]:
            base = None
            for c in [int(x) for x in a.levels.split(",")]:
                vals = [g[(backend, c)] for g in rounds if (backend, c) in g]
                if not vals:
                    continue
                out, user, ttft = (statistics.median(v[i] for v in vals) for i in range(3))
                base = base or (out if c == 1 else None)
                gain = f"{out / base:.2f}x" if base else "-"
                print(f"{backend:<15} {c:>3} {out:>10.1f} {gain:>6} {user:>11.1f} {ttft:>12.0f}")


if __name__ == "__main__":
    main()
