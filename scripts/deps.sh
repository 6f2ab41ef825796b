#!/usr/bin/env bash
# Installs the system packages runner's build needs, when they are missing:
# cmake (llama.cpp's build), libclang (bindgen), a C/C++ compiler, ccache (faster rebuilds),
# and Python 3 with pip (models are fetched from PyPI wheels).
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v ccache >/dev/null 2>&1 || missing+=(ccache)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)

if [ "$(uname -s)" = "Linux" ]; then
  if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libclang; then
    missing+=(libclang-dev)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "error: missing ${missing[*]} and no apt-get to install them; install them by hand" >&2
      exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]} ..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
elif [ "$(uname -s)" = "Darwin" ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    if command -v brew >/dev/null 2>&1; then
      brew install cmake ccache python
    else
      echo "error: missing ${missing[*]}; install Xcode command line tools and Homebrew, then rerun" >&2
      exit 1
    fi
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found: install Rust from https://rustup.rs and rerun" >&2
  exit 1
fi
python3 -m pip --version >/dev/null 2>&1 || {
  echo "error: python3 has no pip: install python3-pip" >&2
  exit 1
}
