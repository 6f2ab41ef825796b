#!/usr/bin/env bash
# Installs the system packages runner's build needs, when they are missing. It checks for
# exactly what each build step loads:
#   - the libclang shared library that bindgen opens (libclang.so, libclang-N.so, libclang.so.N;
#     the image's libclang-cpp.so.N is a different library and does not count), searched where
#     bindgen's clang-sys searches: $LIBCLANG_PATH, llvm-config's prefix, $LD_LIBRARY_PATH and
#     the system library directories;
#   - clang's resource headers (stdbool.h), without which bindgen stops on llama.h;
#   - cmake (llama.cpp's build), a C++ compiler, ccache (rebuilds in seconds);
#   - python3 with pip (models are fetched from PyPI wheels).
#
#   scripts/deps.sh           install what is missing (apt-get on Debian/Ubuntu, brew on macOS)
#   scripts/deps.sh --check   print what is missing, one package per line; exit 1 if anything is
#
# RUNNER_DEPS_ROOT=DIR makes the library and header search look under DIR instead of / (tests
# use it to simulate a machine); commands are looked up on $PATH.
set -euo pipefail
shopt -s nullglob

mode=install
case "${1:-}" in
  --check) mode=check ;;
  "") ;;
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "error: unknown argument '$1' (try --check or --help)" >&2; exit 2 ;;
esac

root="${RUNNER_DEPS_ROOT:-}"
os="$(uname -s)"

# The file names clang-sys accepts for libclang at run time, minus libclang-cpp.
is_libclang() {
  local name="${1##*/}"
  case "$name" in
    *-cpp.*) return 1 ;;
    libclang.so|libclang-*.so|libclang.so.*|libclang-*.so.*|libclang.dylib|libclang-*.dylib) return 0 ;;
  esac
  return 1
}

# Prints the first directory (of those bindgen searches) that holds a libclang it can load.
libclang_dir() {
  local dirs=() d f
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    if [ -f "$LIBCLANG_PATH" ]; then
      is_libclang "$LIBCLANG_PATH" && { dirname "$LIBCLANG_PATH"; return 0; }
      return 1
    fi
    dirs=("$LIBCLANG_PATH")
  else
    if command -v llvm-config >/dev/null 2>&1; then
      local prefix
      prefix="$(llvm-config --prefix 2>/dev/null || true)"
      [ -n "$prefix" ] && dirs+=("$prefix/lib" "$prefix/lib64")
    fi
    local IFS=:
    for d in ${LD_LIBRARY_PATH:-}; do dirs+=("$d"); done
    unset IFS
    if [ "$os" = "Darwin" ]; then
      dirs+=("$root"/Library/Developer/CommandLineTools/usr/lib
             "$root"/Applications/Xcode.app/Contents/Developer/Toolchains/XcodeDefault.xctoolchain/usr/lib
             "$root"/usr/local/opt/llvm*/lib "$root"/opt/homebrew/opt/llvm*/lib)
    else
      dirs+=("$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/*
             "$root"/usr/local/lib* "$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*)
    fi
  fi
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/libclang*; do
      if is_libclang "$f" && [ -e "$f" ]; then
        echo "$d"
        return 0
      fi
    done
  done
  return 1
}

# True when clang's resource headers are installed next to libclang or in a system location.
have_clang_headers() {
  local dir="$1" h
  for h in "$dir"/clang/*/include/stdbool.h "$dir"/../lib/clang/*/include/stdbool.h \
           "$root"/usr/lib/llvm-*/lib/clang/*/include/stdbool.h \
           "$root"/usr/lib/clang/*/include/stdbool.h "$root"/usr/local/lib/clang/*/include/stdbool.h \
           "$root"/Library/Developer/CommandLineTools/usr/lib/clang/*/include/stdbool.h; do
    [ -f "$h" ] && return 0
  done
  return 1
}

missing=()
need() { local p; for p in "$@"; do [[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p"); done; }

command -v cmake >/dev/null 2>&1 || need cmake
command -v c++ >/dev/null 2>&1 || need g++
command -v ccache >/dev/null 2>&1 || need ccache
if ! command -v python3 >/dev/null 2>&1; then
  need python3 python3-pip
elif ! python3 -m pip --version >/dev/null 2>&1; then
  need python3-pip
fi
if dir="$(libclang_dir)"; then
  have_clang_headers "$dir" || need libclang-dev
else
  need libclang-dev
fi

if [ "$mode" = check ]; then
  for p in "${missing[@]}"; do echo "$p"; done
  [ ${#missing[@]} -eq 0 ]
  exit
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$os" = "Linux" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "error: missing ${missing[*]} and no apt-get to install them; install them by hand" >&2
      exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing ${missing[*]} ..." >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  elif [ "$os" = "Darwin" ]; then
    brew_pkgs=()
    for p in "${missing[@]}"; do
      case "$p" in
        cmake|ccache) brew_pkgs+=("$p") ;;
        python3|python3-pip) brew_pkgs+=(python) ;;
        g++|libclang-dev)
          echo "error: no C++ compiler or libclang: install the Xcode command line tools" \
               "(xcode-select --install) and rerun" >&2
          exit 1 ;;
      esac
    done
    if ! command -v brew >/dev/null 2>&1; then
      echo "error: missing ${brew_pkgs[*]}; install Homebrew (https://brew.sh) and rerun" >&2
      exit 1
    fi
    brew install "${brew_pkgs[@]}"
  else
    echo "error: missing ${missing[*]}; install them by hand" >&2
    exit 1
  fi
  # What was installed must now be found where the build looks for it.
  still=$("$0" --check || true)
  if [ -n "$still" ]; then
    echo "error: still missing after installing: $(echo $still)" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found: install Rust from https://rustup.rs and rerun" >&2
  exit 1
fi
