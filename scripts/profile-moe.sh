#!/usr/bin/env bash
# The bandwidth and profile figures of docs/results.md: this machine's measured bandwidth, then
# SmolLM2-135M and its upcycled MoE (4 experts, top 2) decoding (bytes per token, GB/s and
# utilisation), and both profiled op by op, with the routing overhead of the MoE against the
# dense model at equal active bytes.
# Extra arguments go to both `runner profile` runs (e.g. `--format json`, `-n 64`, `--pp`).
# Run it on an idle machine: other processes distort per-node timings far more than totals.
set -euo pipefail
cd "$(dirname "$0")/.."
runner=${RUNNER:-target/release/runner}
router=${ROUTER:-grouped}
dense=$("$runner" models fetch smollm2-135m)
dir=${RUNNER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runner}/moe
mkdir -p "$dir"
moe="$dir/SmolLM2-135M-Instruct-Q4_1-moe4x2-$router.gguf"
if [ ! -f "$moe" ]; then
    "$runner" moe upcycle "$dense" "$moe" --experts 4 --used 2 --router "$router"
fi
uptime
"$runner" hw
echo
"$runner" bench -m "$dense,$moe" -p 0 -n 128 -r 5 --no-progress
echo
"$runner" profile -m "$dense" "$@"
echo
"$runner" profile -m "$moe" --dense "$dense" "$@"
