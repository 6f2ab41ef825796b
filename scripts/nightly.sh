#!/usr/bin/env bash
# The nightly regression job (run by .github/workflows/nightly.yml, or by hand):
# a fixed sweep and bench of the CI model into OUT, then `runner check` against the committed
# baseline for this runner class, then the HTML report.
#
#   scripts/nightly.sh CLASS OUT [--update-baseline]
#
# CLASS names the baseline: results/baselines/CLASS.jsonl. Exits 1 on a regression.
# Without a committed baseline for CLASS (a new runner class), or with --update-baseline, it
# writes OUT/baseline-CLASS.jsonl from this run's records instead: commit that file to
# results/baselines/ to start checking.
set -euo pipefail
cd "$(dirname "$0")/.."
class="${1:?usage: scripts/nightly.sh CLASS OUT [--update-baseline]}"
out="${2:?usage: scripts/nightly.sh CLASS OUT [--update-baseline]}"
update="${3:-}"
bin="${CARGO_TARGET_DIR:-target}/release/runner"
model=$("$bin" models fetch smollm2-135m)
mkdir -p "$out"
"$bin" hw --format json > "$out/hw.json"
"$bin" bench -m "$model" -p 128 -n 64 -r 5 --no-progress -o "$out/bench.json"
"$bin" sweep -m "$model" --quant q4_0,q8_0 --scenario short-response,long-form --limit 3 \
  --no-progress --no-text --results "$out"
baseline="results/baselines/$class.jsonl"
if [ "$update" = "--update-baseline" ] || [ ! -f "$baseline" ]; then
  [ -f "$baseline" ] || echo "no baseline for runner class $class yet ($baseline): writing one from this run"
  "$bin" check --baseline "$out/baseline-$class.jsonl" --current "$out" --update-baseline
  echo "commit $out/baseline-$class.jsonl as $baseline to check later runs against it"
  exit 0
fi
status=0
"$bin" check --baseline "$baseline" --current "$out" | tee "$out/check.txt" || status=$?
exit "$status"
