#!/usr/bin/env bash
# deps.sh -- install the Debian packages fulcrum's build and tests need.
# Idempotent: installs only what is missing, runs apt-get update only when it must.
# Usage: scripts/deps.sh [extra-package ...]   (bench/ passes haproxy, nginx, wrk)
set -euo pipefail

PKGS=(
  make gcc clang libclang-rt-14-dev pkg-config clang-format
  libcmocka-dev libxxhash-dev libyaml-dev libjansson-dev
  python3 python3-pytest
)
PKGS+=("$@")

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
