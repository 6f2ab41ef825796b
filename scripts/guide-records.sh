#!/usr/bin/env bash
# This machine's rows of the hardware guide, measured on real-shape synthetic models (run it
# idle; each run refuses to start on a busy machine):
#   - the 7-8B catalogue entries at full size (Llama-2-7B Q4_0, the model of the community's
#     Apple silicon table, and Llama-3.1-8B Q4_K_M);
#   - the larger entries layer-scaled (two depths each, whole attention periods), which the
#     guide extrapolates to full depth.
# Records go to results/records/ (or $OUT); then `runner guide` regenerates the guide. A
# record file already there is skipped with a note, before its model is built, so a rerun
# measures only what is missing and keeps every record taken before (move a file away to
# measure it again). Extra arguments go to every `runner bench` run (e.g. -t 2).
set -euo pipefail
cd "$(dirname "$0")/.."
runner="${CARGO_TARGET_DIR:-target}/release/runner"
[ -x "$runner" ] || { echo "error: $runner is missing: cargo build --release --locked" >&2; exit 2; }
out="${OUT:-results/records}"
mkdir -p "$out"
# The synthetic files go to a throwaway cache, removed at the end.
. scripts/synth-cache.sh
bench() {
  "$runner" bench --require-idle --no-progress -p 64 -n 32 -r 3 "$@"
}
# Whether the output FILE is already there: then it says so, and the caller skips it.
there() {
  [ -e "$1" ] || return 1
  echo "skip $1: already there (move it away to measure it again)"
}

for spec in llama-2-7b@q4_0 llama-3.1-8b@q4_k_m; do
  file="$out/synthetic-${spec/@/-}.json"
  if there "$file"; then continue; fi
  echo "== $spec, full size"
  bench -m "synth:$spec:tokenizer=none" -o "$file" "${@}"
  synth_done
done
for spec in qwen2.5-coder-14b@q4_k_m:4,8 qwen2.5-coder-32b@q4_k_m:4,8 \
  qwen3-30b-a3b@q4_k_m:4,8 mixtral-8x7b@q4_k_m:4,8 gpt-oss-20b@mxfp4_moe:4,8 \
  gemma-3-12b@q4_k_m:6,12 gemma-3-27b@q4_k_m:6,12 \
  qwen3.6-35b-a3b@q4_k_m:4,8 qwen3.6-27b@q4_k_m:4,8; do
  model="${spec%:*}" layers="${spec##*:}"
  file="$out/synthetic-${model/@/-}-layers.json"
  if there "$file"; then continue; fi
  echo "== $model, layers $layers"
  bench -m "synth:$model:tokenizer=none" --layers "$layers" -o "$file" "${@}"
  synth_done
done
echo "now: $runner guide"
