#!/usr/bin/env python3
"""Serves a GGUF model with llama.cpp's llama-server (the xllamacpp wheel) on 127.0.0.1.

Usage: llama-server.py MODEL PORT [--threads N] [--ctx N] [--parallel N]
Prints "listening on http://127.0.0.1:PORT" once /health answers, then serves until stdin
closes or the process is killed. Run it with the python scripts/xllamacpp.sh prints.
"""
import argparse
import sys
import time
import urllib.request

import xllamacpp as xlc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("port", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096)
    # Slots (llama-server -np): requests decoded together, each with --ctx / N tokens of cache.
    ap.add_argument("--parallel", type=int, default=1)
    a = ap.parse_args()
    p = xlc.CommonParams()
    p.model.path = a.model
    p.port = a.port
    p.hostnames = ["127.0.0.1"]
    p.n_ctx = a.ctx
    p.n_parallel = a.parallel
    p.cpuparams.n_threads = a.threads
    p.cpuparams_batch.n_threads = a.threads
    server = xlc.Server(p)
    url = f"http://127.0.0.1:{a.port}/health"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    print(f"listening on http://127.0.0.1:{a.port}", flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    del server


if __name__ == "__main__":
    main()
