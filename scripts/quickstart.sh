#!/usr/bin/env bash
# Sets up everything on a fresh machine (system packages, the build, the default model) and
# runs the main job on the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
target_dir="${CARGO_TARGET_DIR:-target}"
runner="$target_dir/release/runner"
model=$("$runner" models fetch smollm2-135m)
"$runner" bench -m "$model" "$@"
