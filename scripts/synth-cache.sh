# Sourced by the scripts that measure synthetic models: a throwaway runner cache for the
# synthetic files they generate (tens of GB for the larger entries), removed on exit, sharing
# the machine's saved bandwidth measurement with the real cache. Sets RUNNER_CACHE_DIR.
real_cache="${RUNNER_CACHE_DIR:-}"
if [ -z "$real_cache" ]; then
  case "$(uname -s)" in
    Darwin) real_cache="$HOME/Library/Caches/runner" ;;
    *) real_cache="${XDG_CACHE_HOME:-$HOME/.cache}/runner" ;;
  esac
fi
synth_cache="$(mktemp -d "${TMPDIR:-/tmp}/runner-synth-cache.XXXXXX")"
trap 'rm -rf "$synth_cache"' EXIT
mkdir -p "$real_cache/hw"
ln -s "$real_cache/hw" "$synth_cache/hw"
export RUNNER_CACHE_DIR="$synth_cache"
# Removes the synthetic files made so far (call it after each model: the layer-scaled files of
# every entry together need more disk than a machine may have).
synth_done() { rm -rf "$synth_cache/synth"; }
