#!/usr/bin/env bash
# run.sh -- the benchmarks behind `make bench`: one function per benchmark, run in turn.
#
# usage: bench/run.sh [NAME ...]     NAME: balance, proxy, idle (the default: all three), or
#                                    soak (10 minutes; only when named)
#
# Each benchmark prints a markdown section, ready for docs/benchmarks.md. To add one, write
# a bench_NAME function and add NAME to BENCHES.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CC=${CC:-cc}
BENCHES=(balance proxy idle)

machine() {
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')),"\
       "$(uname -sr), $(date -u +%Y-%m-%d)."
  echo
}

# The balancing library alone: ns per pick for every strategy at 10..10k servers, rebuild
# times. Compiled like the release build (-O2, hardened) against the library sources.
bench_balance() {
  echo "## Balancing library (bench/bench_balance.c)"
  echo
  mkdir -p "$BUILD"
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  "$CC" -O2 -std=c11 -Wall -Wextra -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE -pie \
    -Isrc $(pkg-config --cflags libxxhash 2>/dev/null) \
    bench/bench_balance.c src/balance/*.c \
    -o "$BUILD/bench_balance" -lxxhash -lm -lpthread
  "$BUILD/bench_balance" ${BENCH_PICKS:-}
}

# fulcrum beside HAProxy and nginx in one run: req/s, p99, CPU per request (bench/proxy.sh).
bench_proxy() {
  make -s BUILD="$BUILD" "$BUILD/fulcrum" >&2 || true
  FULCRUM_BIN="$BUILD/fulcrum" bench/proxy.sh
}

# Memory per idle keep-alive client connection at 10,000 connections (bench/idle.sh).
bench_idle() {
  make -s BUILD="$BUILD" "$BUILD/fulcrum" >&2 || true
  FULCRUM_BIN="$BUILD/fulcrum" bench/idle.sh
}

# Ten minutes of mixed load with reloads and a flapping server: RSS and failures
# (bench/soak.sh). Not in the default list: it takes SOAK_SECONDS (600).
bench_soak() {
  make -s BUILD="$BUILD" "$BUILD/fulcrum" >&2 || true
  FULCRUM_BIN="$BUILD/fulcrum" bench/soak.sh
}

main() {
  local names=("$@")
  [ ${#names[@]} -eq 0 ] && names=("${BENCHES[@]}")
  for n in "${names[@]}"; do
    if ! declare -F "bench_$n" >/dev/null; then
      echo "bench/run.sh: unknown benchmark '$n' (have: ${BENCHES[*]} soak)" >&2
      exit 2
    fi
  done
  machine
  for n in "${names[@]}"; do
    "bench_$n"
  done
}

main "$@"
