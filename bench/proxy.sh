#!/usr/bin/env bash
# proxy.sh -- fulcrum beside HAProxy and nginx in one run: req/s, p99 and CPU per request,
# each proxy on one worker in front of the same four backends, rounds interleaved.
#
# Usage: bench/proxy.sh            (from anywhere; prints a markdown report on stdout)
# Environment:
#   BENCH_SECONDS=10   measured wrk run per proxy and round
#   WARMUP_SECONDS=2   unmeasured wrk run just before each measured one
#   ROUNDS=3           rounds; the report gives the median over them
#   CONNS=50 THREADS=1 wrk connections and threads
#   PROXIES="fulcrum haproxy nginx"   which to run (fulcrum is skipped if it cannot start)
#   BENCH_PIN=0        1: pin the proxy to CPU 1 and wrk + backends to CPU 0
#   BENCH_PORT_BASE=27100  ports used: base+1..base+4 (backends), base+81..83 (proxies)
#   SYSCALL_SECONDS=3  a last, unmeasured wrk run per proxy under `perf stat`, counting
#                      syscalls per request (0, or no perf, skips it)
#   BENCH_OUT=FILE     also write the report there
#   BENCH_SKIP_DEPS=1  do not call scripts/deps.sh
#   FULCRUM_BIN=build/fulcrum
set -euo pipefail

BENCH_SECONDS="${BENCH_SECONDS:-10}"
WARMUP_SECONDS="${WARMUP_SECONDS:-2}"
ROUNDS="${ROUNDS:-3}"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-1}"
PROXIES="${PROXIES:-fulcrum haproxy nginx}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=proxy/lib.sh
. "$here/proxy/lib.sh"

bench_need haproxy nginx wrk -- haproxy nginx wrk curl python3 ss

bench_init
bench_start_backends

running=()
for name in $PROXIES; do
    if bench_start_proxy "$name"; then
        running+=("$name")
        bench_log "$name up on 127.0.0.1:${BENCH_PORT[$name]} (pid ${BENCH_PROXY_PID[$name]})"
    fi
done
[ ${#running[@]} -gt 0 ] || { bench_log "no proxy started"; exit 1; }

results="$BENCH_TMP/results.tsv"
printf 'round\tproxy\trequests\tseconds\trps\tp99_ms\tticks\terrors\tnon2xx\n' >"$results"

# measure ROUND NAME: warm up, then one wrk run with the proxy's CPU ticks read around it.
measure() {
    local round=$1 name=$2 url="http://127.0.0.1:${BENCH_PORT[$2]}/"
    local pid=${BENCH_PROXY_PID[$2]} out="$BENCH_TMP/wrk-$1-$2.txt" t0 t1 parsed
    local req sec rps p99 err non2xx
    if [ "$WARMUP_SECONDS" -gt 0 ]; then
        "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP_SECONDS}s" "$url" >/dev/null
    fi
    t0=$("${BENCH_STATS[@]}" cputicks "$pid")
    "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${BENCH_SECONDS}s" --latency "$url" >"$out"
    t1=$("${BENCH_STATS[@]}" cputicks "$pid")
    kill -0 "$pid" 2>/dev/null || { bench_log "$name died during the run"; exit 1; }
    parsed=$("${BENCH_STATS[@]}" wrk "$out")
    read -r req sec rps p99 err non2xx <<<"$parsed"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$req" "$sec" "$rps" \
        "$p99" $((t1 - t0)) "$err" "$non2xx" >>"$results"
    bench_log "round $round $name: $rps req/s, p99 $p99 ms, $((t1 - t0)) ticks, errors $err/$non2xx"
}

n=${#running[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order each round so no proxy always runs first (or right after another).
    for ((i = 0; i < n; i++)); do
        measure "$r" "${running[$(((i + r - 1) % n))]}"
    done
done

# count_syscalls NAME: syscalls per request in a run of its own, so perf's tracepoint cost
# stays out of the CPU figures above. Appends to $syscalls.
count_syscalls() {
    local name=$1 url="http://127.0.0.1:${BENCH_PORT[$1]}/" pids perf_pid i count req
    local out="$BENCH_TMP/perf-$1.txt" wout="$BENCH_TMP/wrk-syscalls-$1.txt"
    pids=$("${BENCH_STATS[@]}" pids "${BENCH_PROXY_PID[$name]}")
    perf stat -x, -e raw_syscalls:sys_enter -p "$pids" -o "$out" &
    perf_pid=$!
    BENCH_PIDS+=("$perf_pid")
    sleep 0.5 # perf attaches asynchronously
    "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${SYSCALL_SECONDS}s" "$url" >"$wout"
    kill -INT "$perf_pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$perf_pid" 2>/dev/null || break
        sleep 0.1
    done
    bench_stop_pid "$perf_pid"
    count=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$out")
    req=$("${BENCH_STATS[@]}" wrk "$wout" | cut -d' ' -f1)
    printf '%s\t%s\t%s\n' "$name" "${count:-x}" "$req" >>"$syscalls"
    bench_log "$name: ${count:-?} syscalls for $req requests"
}

syscalls="$BENCH_TMP/syscalls.tsv"
SYSCALL_SECONDS="${SYSCALL_SECONDS:-3}"
if [ "$SYSCALL_SECONDS" -gt 0 ] && command -v perf >/dev/null; then
    if perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
        printf 'proxy\tsyscalls\trequests\n' >"$syscalls"
        for name in "${running[@]}"; do
            count_syscalls "$name"
        done
    else
        bench_log "perf cannot count syscalls here (no tracepoint access); skipping that column"
    fi
fi

report() {
    echo "## Proxy throughput and CPU per request (bench/proxy.sh)"
    echo
    bench_machine
    echo "- load: wrk $(wrk -v 2>&1 | sed -n 1p | awk '{print $2}'), -t$THREADS" \
        "-c$CONNS -d${BENCH_SECONDS}s --latency, GET / returning 100 bytes; $ROUNDS rounds" \
        "(median), ${WARMUP_SECONDS}s warm-up before each run"
    bench_versions
    echo
    "${BENCH_STATS[@]}" report "$results" "$syscalls"
    echo
    echo "CPU µs/req = (utime+stime of the proxy's processes, from /proc/PID/stat) /" \
        "requests completed. Ratios compare with the best of the other proxies:" \
        "req/s higher is better, p99 and CPU lower is better. Proxy CPU % near 100 means" \
        "the proxy was the bottleneck. Syscalls/req (when perf is present) comes from" \
        "one more ${SYSCALL_SECONDS}s run per proxy under \`perf stat -e raw_syscalls:sys_enter\`."
}
if [ -n "${BENCH_OUT:-}" ]; then
    report | tee "$BENCH_OUT"
else
    report
fi
