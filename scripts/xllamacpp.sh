#!/usr/bin/env bash
# Installs llama.cpp's own server (llama-server, as the prebuilt `xllamacpp` wheel from PyPI)
# into a virtualenv under the runner cache, once; prints the virtualenv's python.
# Idempotent and quick when already installed. Used by the HTTP-backend tests and benchmarks.
set -euo pipefail
version=2026.10.11549
cache="${RUNNER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runner}"
venv="$cache/xllamacpp-venv"
py="$venv/bin/python"
if [ -x "$py" ] && "$py" -c "import xllamacpp, sys; sys.exit(xllamacpp.__version__ != '$version')" 2>/dev/null; then
    echo "$py"
    exit 0
fi
mkdir -p "$cache"
python3 -m venv "$venv" >&2
"$py" -m pip install --quiet --disable-pip-version-check --no-deps "xllamacpp==$version" >&2
"$py" -c "import xllamacpp" >&2
echo "$py"
