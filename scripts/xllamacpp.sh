#!/usr/bin/env bash
# Installs llama.cpp's own server (llama-server, as the prebuilt `xllamacpp` wheel from PyPI)
# under the runner cache, once; prints the python to run it with. Idempotent and quick when
# already installed. Used by the HTTP-backend tests and scripts/http-overhead.py.
# A virtualenv when python3 can make one; else `pip install --target` and a small wrapper.
set -euo pipefail
version=2026.10.11549
cache="${RUNNER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runner}"
venv="$cache/xllamacpp-venv"
wrapper="$cache/xllamacpp-python"
check="import xllamacpp, sys; sys.exit(xllamacpp.__version__ != '$version')"
for py in "$venv/bin/python" "$wrapper"; do
    if [ -x "$py" ] && "$py" -c "$check" 2>/dev/null; then
        echo "$py"
        exit 0
    fi
done
mkdir -p "$cache"
pip_args=(--quiet --disable-pip-version-check --no-deps "xllamacpp==$version")
if python3 -m venv "$venv" >&2 2>/dev/null && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    "$venv/bin/python" -m pip install "${pip_args[@]}" >&2
    py="$venv/bin/python"
else
    rm -rf "$venv"
    python3 -m pip install --target "$cache/xllamacpp-lib" --upgrade "${pip_args[@]}" >&2
    printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec python3 "$@"\n' \
        "$cache/xllamacpp-lib" > "$wrapper"
    chmod +x "$wrapper"
    py="$wrapper"
fi
"$py" -c "$check" >&2
echo "$py"
