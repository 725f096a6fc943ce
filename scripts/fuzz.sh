#!/usr/bin/env bash
# fuzz.sh SECONDS BIN... -- run each libFuzzer target for SECONDS with its seed corpus and
# dictionary (tests/fuzz/NAME.dict, tests/fuzz/corpus/NAME/). New inputs go to a scratch
# corpus under build/, never into the repo. Exits non-zero on the first crash.
set -u
secs=$1; shift
rm -rf build/fuzz/artifacts # a crash counts only when this run finds it
for bin in "$@"; do
  name=$(basename "$bin")
  seeds=tests/fuzz/corpus/$name
  work=build/fuzz/corpus/$name
  mkdir -p "$work" build/fuzz/artifacts
  dict=()
  [ -f tests/fuzz/$name.dict ] && dict=(-dict=tests/fuzz/$name.dict)
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/"$name"- \
       "${dict[@]}" "$work" $( [ -d "$seeds" ] && echo "$seeds" ) 2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|crash-|Done'; then
    :
  fi
  if ls build/fuzz/artifacts/"$name"-* >/dev/null 2>&1; then
    echo "fuzz: $name FOUND A CRASH: $(ls build/fuzz/artifacts/"$name"-*)" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran clean"
