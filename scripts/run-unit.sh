#!/usr/bin/env bash
# run-unit.sh -- run each unit-test binary, report every failure, exit non-zero if any failed.
set -u
fail=0
for t in "$@"; do
  if ! "$t"; then
    echo "FAILED: $t" >&2
    fail=1
  fi
done
[ $fail -eq 0 ] && echo "unit: $# test programs passed"
exit $fail
