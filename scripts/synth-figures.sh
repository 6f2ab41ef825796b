#!/usr/bin/env bash
# The synthetic-model figures of docs/results.md, on this machine (run it idle):
#   1. a full-size Llama-3.1-8B Q4_K_M: how long it takes to build, and its speed measured
#      whole beside the full depth extrapolated from 4, 8 and 16 of its layers;
#   2. routing overhead at real MoE shapes: Qwen3-30B-A3B (8 of 128 experts) against its dense
#      reference of equal active bytes, and the same active size spread over 32 and 256 experts;
#   3. Qwen3.6-35B-A3B at 4 bits against the dense Qwen3.6-27B at 6 bits (4, 8 and 12 layers), beside
#      the ratio that bytes per token predict.
# Output goes to results/synthetic/ (or $OUT). A file already there is skipped with a note,
# before anything is built for it, so a rerun measures only what is missing and keeps what was
# measured before (move a file away to measure it again).
# Extra arguments go to every `runner bench` and `runner profile` run (e.g. -t 2).
set -euo pipefail
cd "$(dirname "$0")/.."
runner="${CARGO_TARGET_DIR:-target}/release/runner"
[ -x "$runner" ] || { echo "error: $runner is missing: cargo build --release --locked" >&2; exit 2; }
out="${OUT:-results/synthetic}"
mkdir -p "$out"
# The synthetic files go to a throwaway cache, removed at the end.
. scripts/synth-cache.sh
idle=(--require-idle)
# Whether the output FILE is already there: then it says so, and the caller skips it.
there() {
  [ -e "$1" ] || return 1
  echo "skip $1: already there (move it away to measure it again)"
}

echo "== 1. Llama-3.1-8B Q4_K_M, full size"
file="$out/llama-3.1-8b-full.json"
if ! there "$file"; then
  tmp="$synth_cache/full"
  mkdir -p "$tmp"
  /usr/bin/time -f "built in %e s (wall), peak memory %M KiB" \
    "$runner" models synth llama-3.1-8b -q q4_k_m --ids-only -o "$tmp/llama-3.1-8b.gguf"
  "$runner" bench -m "$tmp/llama-3.1-8b.gguf" -p 64 -n 32 -r 3 "${idle[@]}" --no-progress \
    -o "$file" "$@"
  rm -f "$tmp/llama-3.1-8b.gguf"
fi
file="$out/llama-3.1-8b-layers.json"
if ! there "$file"; then
  "$runner" bench -m synth:llama-3.1-8b@q4_k_m:tokenizer=none --layers 4,8,16 -p 64 -n 32 -r 3 \
    "${idle[@]}" --no-progress -o "$file" "$@"
fi
synth_done

echo "== 2. Routing overhead at real MoE shapes (Qwen3-30B-A3B, 8 layers)"
for experts in 128 32 256; do
  file="$out/qwen3-30b-a3b-x$experts-profile.txt"
  if there "$file"; then continue; fi
  # Kept under its own name only once the profile has run to its end.
  "$runner" profile -m "synth:qwen3-30b-a3b@q4_k_m:layers=8:experts=$experts:tokenizer=none" \
    -n 64 -r 10 "${idle[@]}" "$@" | tee "$file.part" |
    sed -n '/^routing overhead/,/^$/p'
  mv "$file.part" "$file"
  synth_done
done

echo "== 3. Qwen3.6-35B-A3B Q4_K_M against Qwen3.6-27B Q6_K (4, 8 and 12 layers, extrapolated)"
file="$out/qwen3.6-headline.json"
if ! there "$file"; then
  "$runner" bench -m synth:qwen3.6-35b-a3b@q4_k_m:tokenizer=none,synth:qwen3.6-27b@q6_k:tokenizer=none \
    --layers 4,8,12 -p 64 -n 32 -r 3 "${idle[@]}" --no-progress -o "$file" "$@"
fi
