#!/usr/bin/env python3
"""Client overhead of runner's HTTP backends, against llama.cpp's own llama-server.

Serves a GGUF model with llama-server (the xllamacpp wheel, see scripts/xllamacpp.sh) on
127.0.0.1, runs `runner sweep --backend openai:...` through it on N generated prompts (each
generating exactly -n tokens: ignore_eos, no prompt cache), and compares per request:

  TTFT overhead = runner's TTFT (send -> first text chunk) - llama-server's timings.prompt_ms
  decode ratio  = runner's decode rate ((tokens-1)/(last chunk - first chunk))
                  / llama-server's timings.predicted_per_second

It also measures the loopback round trip of a small HTTP request (GET /health), the network
part of the overhead, and sends the same requests through a minimal raw-socket client in
this script: what that client sees beyond the server's prompt time is the server's own work
outside prompt evaluation (request parsing, chat template, tokenizing, sampling the first
token); runner's overhead minus it is what runner's client adds. Usage:

  scripts/http-overhead.py [-m smollm2-135m] [--requests 10] [-n 128] [--threads 2]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_rtt_ms(port, n=50):
    """Median time of GET /health on one kept-alive connection."""
    times = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for _ in range(n):
            t = time.perf_counter()
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                data += s.recv(4096)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def raw_client(port, prompt, n_gen):
    """One streamed chat request over a plain socket: (TTFT ms, server prompt ms)."""
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": prompt}],
                       "stream": True, "stream_options": {"include_usage": True},
                       "max_tokens": n_gen, "temperature": 0, "seed": 42,
                       "cache_prompt": False, "ignore_eos": True}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    ttft = None
    prompt_ms = None
    buf = b""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        s.sendall(head + body)
        while True:
            data = s.recv(65536)
            if not data:
                break
            now = time.perf_counter()
            buf += data
            if ttft is None and b'"content":"' in buf.split(b"\r\n\r\n", 1)[-1].replace(b'"content":""', b""):
                ttft = (now - t0) * 1000
    for line in buf.decode(errors="replace").splitlines():
        if line.startswith("data: {") and '"timings"' in line:
            prompt_ms = json.loads(line[6:])["timings"]["prompt_ms"]
    return ttft, prompt_ms


def prompt_text(i):
    topics = ["a lighthouse keeper", "a lost robot", "a mountain village", "a river journey",
              "a clockmaker", "a desert caravan", "a winter market", "a deep-sea station",
              "a forgotten library", "a night train", "a bee colony", "a comet watcher"]
    return f"Write a long, detailed story about {topics[i % len(topics)]} (version {i})."


def scenario(path, i, n_gen):
    lines = ['name = "http-overhead"', 'description = "Long answers for the HTTP overhead benchmark"',
             'kind = "long-form"', "", "[defaults]", f"max_tokens = {n_gen}",
             "time_limit_s = 600.0", "temperature = 0.0", ""]
    lines += ["[[prompts]]", f'id = "story-{i}"', f'user = "{prompt_text(i)}"', ""]
    Path(path).write_text("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="smollm2-135m")
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runner", default=str(ROOT / "target/release/runner"))
    a = ap.parse_args()
    model = a.model if os.path.isfile(a.model) else sh(a.runner, "models", "fetch", a.model)
    py = sh(str(ROOT / "scripts/xllamacpp.sh"))
    port = free_port()
    server = subprocess.Popen([py, str(ROOT / "scripts/llama-server.py"), model, str(port),
                               "--threads", str(a.threads), "--ctx", "4096"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()
        rtt = loopback_rtt_ms(port)
        recs, raw = [], []
        with tempfile.TemporaryDirectory() as d:
            cfg = Path(d) / "backends.toml"
            cfg.write_text("[openai]\nextra = { cache_prompt = false, ignore_eos = true }\n")
            # interleaved: runner, then the minimal client, on the same prompt
            for i in range(a.requests):
                sc = Path(d) / f"http-overhead-{i}.toml"
                scenario(sc, i, a.n_gen)
                out = Path(d) / f"r{i}"
                subprocess.run([a.runner, "sweep", "--backend", "openai:bench", "--openai-base-url",
                                f"http://127.0.0.1:{port}/v1", "--backend-config", str(cfg),
                                "--scenario", str(sc), "--results", str(out), "--no-progress",
                                "--busy-threshold", "64"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                recs += [json.loads(l) for f in out.glob("*.jsonl") for l in f.read_text().splitlines()]
                raw.append(raw_client(port, prompt_text(i), a.n_gen))
    finally:
        server.kill()
        server.wait()
    rows = [r for r in recs if r.get("kind") == "request" and not r["failed"]]
    over = [r["ttft_ms"] - r["server"]["prompt_ms"] for r in rows]
    ratio = [r["decode_tps"] / r["server"]["decode_tps"] for r in rows]
    print(f"model {Path(model).name}, llama-server (xllamacpp) on 127.0.0.1, {a.threads} threads, "
          f"{len(rows)} requests x {a.n_gen} tokens, load average {os.getloadavg()[0]:.2f}")
    print(f"{'request':<10} {'TTFT ms':>9} {'server prompt ms':>17} {'overhead ms':>12} "
          f"{'runner tok/s':>13} {'server tok/s':>13} {'ratio':>7}")
    for r, o, q in zip(rows, over, ratio):
        print(f"{r['prompt_id']:<10} {r['ttft_ms']:>9.2f} {r['server']['prompt_ms']:>17.2f} {o:>12.2f} "
              f"{r['decode_tps']:>13.2f} {r['server']['decode_tps']:>13.2f} {q:>7.4f}")
    print(f"loopback round trip (GET /health, kept-alive): median {rtt:.3f} ms")
    print(f"TTFT overhead (runner TTFT - server prompt time): median {statistics.median(over):.2f} ms, "
          f"min {min(over):.2f}, max {max(over):.2f}")
    raw_over = [t - p for t, p in raw if t is not None and p is not None]
    if raw_over:
        print(f"same requests, minimal raw-socket client: TTFT - server prompt time median "
              f"{statistics.median(raw_over):.2f} ms (the server's own work outside prompt evaluation)")
        pairs = [o - (t - p) for o, (t, p) in zip(over, raw) if t is not None and p is not None]
        print(f"runner's overhead beyond the minimal client, pairwise: median "
              f"{statistics.median(pairs):.2f} ms, min {min(pairs):.2f}, max {max(pairs):.2f}")
    print(f"decode rate runner / server: median {statistics.median(ratio):.4f}, "
          f"min {min(ratio):.4f}, max {max(ratio):.4f}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
