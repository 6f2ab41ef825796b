#!/usr/bin/env bash
# Sets up everything on a fresh machine (system packages, the build, the default model) and runs
# the main job: the quantization sweep of the default model (q4_k_m, q6_k, q8_0) through the
# short-response and long-form scenarios, with every answer capped at 512 tokens so that it
# finishes in minutes on a small machine. Then it writes the HTML report beside the records and
# says where it is and how to open the hardware guide.
#
#   scripts/quickstart.sh             the quick sweep (long-form answers capped at 512 tokens)
#   scripts/quickstart.sh --full      the full suite (long-form answers of thousands of tokens)
#   scripts/quickstart.sh ARGS...     other arguments go to `runner sweep` (e.g. --limit 2)
set -euo pipefail
cd "$(dirname "$0")/.."

cap=(--max-tokens 512)
args=()
for a in "$@"; do
  if [ "$a" = "--full" ]; then
    cap=()
  else
    args+=("$a")
  fi
done

scripts/deps.sh
cargo build --release --locked
runner="${CARGO_TARGET_DIR:-target}/release/runner"
"$runner" models fetch smollm2-135m >/dev/null

results=results/runs
status=0
"$runner" sweep -m smollm2-135m --quant q4_k_m,q6_k,q8_0 \
  --scenario short-response,long-form --results "$results" \
  ${cap[@]+"${cap[@]}"} ${args[@]+"${args[@]}"} || status=$?
# Interrupted (it said how to resume) or refused: nothing to report.
if [ "$status" -eq 130 ] || [ "$status" -eq 2 ]; then
  exit "$status"
fi

"$runner" report --results "$results" -o "$results/report.html" >/dev/null
echo
echo "report:         $results/report.html  (open it in a browser, e.g. xdg-open $results/report.html)"
echo "hardware guide: less results/hardware-guide.md  (or: $runner guide --machine \"M4 Pro 48GB\")"
exit "$status"
