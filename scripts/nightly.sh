#!/usr/bin/env bash
# The nightly regression job (run by .github/workflows/nightly.yml, or by hand). Three modes:
#
#   scripts/nightly.sh --ab OUT BASE_BIN [CANDIDATE_BIN]
#       The paired check: `runner check --ab` runs the two builds side by side on this machine
#       (alternating rounds of the same bench of the CI model) and exits 1 only on a
#       significant slowdown of the candidate. Records, logs and the check go to OUT/ab,
#       the check also to OUT/ab-check.txt. CANDIDATE_BIN defaults to this checkout's build.
#       ROUNDS (default 5) and TOLERANCE (default 5%) tune it; BASE_SHA and CANDIDATE_SHA,
#       when set, are written above the check.
#
#   scripts/nightly.sh --ollama OUT
#       Real Ollama against runner's native engine on the same prompts (macOS job): installs
#       Ollama with Homebrew when missing, starts `ollama serve`, pulls SmolLM2-135M (Q4_1,
#       the quantization runner fetches; smollm2:135m if that tag is missing) and writes
#       `runner compare`'s table to OUT/ollama-compare.txt, then the same prompts at concurrency
#       1, 2 and 4 natively and through Ollama (started with OLLAMA_NUM_PARALLEL=4) to
#       OUT/ollama-load.txt. Each failure is a ::warning:: and
#       exit 1; the workflow runs it with continue-on-error, so it never decides the verdict.
#
#   scripts/nightly.sh CLASS OUT [--update-baseline]
#       The committed-baseline check: a fixed sweep and bench of the CI model into OUT, then
#       `runner check` against results/baselines/CLASS.jsonl. Exits 1 on a regression.
#       Without a committed baseline for CLASS (a new runner class), or with
#       --update-baseline, it writes OUT/baseline-CLASS.jsonl from this run's records
#       instead: commit that file to results/baselines/ to start checking.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/runner"

if [ "${1:-}" = "--ab" ]; then
  usage="usage: scripts/nightly.sh --ab OUT BASE_BIN [CANDIDATE_BIN]"
  out="${2:?$usage}"
  base="${3:?$usage}"
  cand="${4:-$bin}"
  model=$("$cand" models fetch smollm2-135m)
  mkdir -p "$out"
  "$cand" hw --format json > "$out/hw.json"
  {
    [ -z "${BASE_SHA:-}" ] || echo "base commit:      $BASE_SHA"
    [ -z "${CANDIDATE_SHA:-}" ] || echo "candidate commit: $CANDIDATE_SHA"
  } > "$out/ab-check.txt"
  cat "$out/ab-check.txt"
  status=0
  "$cand" check --ab "$base" "$cand" --rounds "${ROUNDS:-5}" --tolerance "${TOLERANCE:-5%}" \
    --out "$out/ab" -- -m "$model" -p 128 -n 64 -r 3 | tee -a "$out/ab-check.txt" || status=$?
  exit "$status"
fi

if [ "${1:-}" = "--ollama" ]; then
  out="${2:?usage: scripts/nightly.sh --ollama OUT}"
  host=http://127.0.0.1:11434
  mkdir -p "$out"
  warn() { echo "::warning::Ollama comparison: $*"; exit 1; }
  if ! command -v ollama >/dev/null 2>&1; then
    brew install ollama >"$out/ollama-install.log" 2>&1 || warn "brew install ollama failed (see ollama-install.log)"
  fi
  ollama --version || true
  # Parallel slots, so that load levels through Ollama run requests at once.
  OLLAMA_NUM_PARALLEL=4 ollama serve >"$out/ollama-serve.log" 2>&1 &
  server=$!
  trap 'kill "$server" 2>/dev/null || true' EXIT
  for _ in $(seq 60); do
    curl -fsS "$host/api/version" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || warn "ollama serve exited (see ollama-serve.log)"
    sleep 1
  done
  curl -fsS "$host/api/version" || warn "ollama serve did not answer at $host within 60 s"
  echo
  tag=smollm2:135m-instruct-q4_1
  ollama pull "$tag" || { tag=smollm2:135m; ollama pull "$tag"; } || warn "ollama pull smollm2 failed"
  model=$("$bin" models fetch smollm2-135m)
  "$bin" compare -m "$model" --backend "native,ollama:$tag" --ollama-host "$host" \
    --scenario short-response --limit 5 --no-progress --no-text --results "$out" \
    | tee "$out/ollama-compare.txt" || warn "runner compare with ollama:$tag failed"
  "$bin" sweep -m "$model" -q source --backend "native,ollama:$tag" --ollama-host "$host" \
    --scenario short-response --limit 5 --concurrency 1,2,4 --requests 8 --no-progress \
    --no-text --results "$out/load" \
    | tee "$out/ollama-load.txt" || warn "load levels through ollama:$tag failed"
  exit 0
fi

class="${1:?usage: scripts/nightly.sh CLASS OUT [--update-baseline] (or --ab, --ollama)}"
out="${2:?usage: scripts/nightly.sh CLASS OUT [--update-baseline]}"
update="${3:-}"
model=$("$bin" models fetch smollm2-135m)
mkdir -p "$out"
"$bin" hw --format json > "$out/hw.json"
# The bench file is this check's own: a rerun into the same OUT measures it afresh (runner
# refuses to write over a file that holds records).
rm -f "$out/bench.json"
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
