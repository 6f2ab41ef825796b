#!/usr/bin/env bash
# Sets up everything on a fresh machine (system packages, the build, the default model) and
# runs the main job: the quantization sweep of the default model through the short-response
# and long-form scenarios. Extra arguments go to `runner sweep` (e.g. --limit 3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
target_dir="${CARGO_TARGET_DIR:-target}"
runner="$target_dir/release/runner"
"$runner" models fetch smollm2-135m >/dev/null
"$runner" sweep -m smollm2-135m --quant q4_k_m,q6_k,q8_0 "$@"
