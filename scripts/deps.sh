#!/usr/bin/env bash
# deps.sh -- install the Debian packages fulcrum's build and tests need.
# Idempotent: installs only what is missing, runs apt-get update only when it must.
# Usage: scripts/deps.sh [extra-package ...]   (bench/ passes haproxy, nginx, wrk)
set -euo pipefail

PKGS=(
  make gcc clang libclang-rt-14-dev pkg-config clang-format
  libcmocka-dev libxxhash-dev libyaml-dev libjansson-dev libsystemd-dev
  python3 python3-pytest python3-prometheus-client
  chromium
)
# The dashboard's browser test runs playwright-core under Node.js. A Node.js from outside
# Debian (e.g. a newer one already on the machine) is used as it is; else Debian's.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
PKGS+=("$@")

# npm packages of the browser test (playwright-core only: it drives /usr/bin/chromium and
# downloads no browser), from tests/browser/package-lock.json; again only when missing.
browser_modules() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules/playwright-core" ]; then
    echo "deps: npm ci in tests/browser"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  browser_modules
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
browser_modules
