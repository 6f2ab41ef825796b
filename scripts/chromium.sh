#!/usr/bin/env bash
# Installs Debian's headless Chromium (/usr/bin/chromium) for the report's rendering test,
# when it is missing. Quick and silent when it is already there. On a machine without apt
# (macOS) it prints why it cannot and exits 0: the test then says it is skipped and why.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(uname -s)" != "Linux" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed and no apt-get here; the report's rendering test will be skipped" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing chromium (for the report's rendering test) ..." >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
