#!/usr/bin/env bash
# The test command: installs what the build needs, builds, fetches the test model and runs
# every test (unit tests and integration tests on the real SmolLM2-135M model).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
# The integration tests fetch the model themselves; fetching here first shows progress once.
target_dir="${CARGO_TARGET_DIR:-target}"
"$target_dir/release/runner" models fetch smollm2-135m >/dev/null
cargo test --release --locked -- --test-threads=2
