#!/usr/bin/env bash
# The test command: installs what the build needs, builds, fetches the test model and runs
# every test (unit tests and integration tests on the real SmolLM2-135M model).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# Headless Chromium for the report's rendering test (Debian's package; skipped when present).
scripts/chromium.sh
cargo build --release --locked
# Fetch (or find in the cache) the real test models once; unit and integration tests use them
# and fail when they are missing: SmolLM2-135M for everything, gemma-3-270m (a base model
# without a chat template) for the built-in template of its architecture.
target_dir="${CARGO_TARGET_DIR:-target}"
RUNNER_TEST_MODEL=$("$target_dir/release/runner" models fetch smollm2-135m)
RUNNER_TEST_MODEL_GEMMA=$("$target_dir/release/runner" models fetch gemma-3-270m)
export RUNNER_TEST_MODEL RUNNER_TEST_MODEL_GEMMA
# llama.cpp's own server (the xllamacpp wheel, in a virtualenv under the runner cache) for the
# HTTP-backend tests; quick when already installed.
scripts/xllamacpp.sh >/dev/null
cargo test --release --locked -- --test-threads=2
