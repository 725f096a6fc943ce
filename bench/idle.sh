#!/usr/bin/env bash
# idle.sh -- memory per idle keep-alive client connection: fulcrum beside HAProxy and nginx
# in one run, each on one worker in front of the same four backends.
#
# For each proxy: RSS (VmRSS of the proxy and its children) after a short warm-up, then
# again while IDLE_CONNS client connections are open, each having sent one request and
# read its response; bytes per connection = (after - before) / connections held.
#
# Usage: bench/idle.sh            (prints a markdown report on stdout)
# Environment:
#   IDLE_CONNS=10000   client connections held open (capped by the open-file limit)
#   PROXIES="fulcrum haproxy nginx"   BENCH_PORT_BASE=27100   BENCH_OUT=FILE
#   BENCH_SKIP_DEPS=1  do not call scripts/deps.sh
#   FULCRUM_BIN=build/fulcrum
set -euo pipefail

IDLE_CONNS="${IDLE_CONNS:-10000}"
PROXIES="${PROXIES:-fulcrum haproxy nginx}"

# The client holds IDLE_CONNS sockets and each proxy as many plus its server side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
limit=$(ulimit -n)
if [ "$IDLE_CONNS" -gt $((limit - 200)) ]; then
    echo "bench: open-file limit is $limit; holding $((limit - 200)) connections" >&2
    IDLE_CONNS=$((limit - 200))
fi
export BENCH_MAXCONN=$((IDLE_CONNS + 1000)) # read by lib.sh

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=proxy/lib.sh
. "$here/proxy/lib.sh"

bench_need haproxy nginx wrk -- haproxy nginx wrk curl python3 ss

bench_init
bench_start_backends
results="$BENCH_TMP/idle.tsv"
printf 'proxy\theld\tdropped\trss_before\trss_after\n' >"$results"

# hold NAME: warm up, read RSS, hold the connections, read RSS again, release them.
hold() {
    local name=$1 port=${BENCH_PORT[$1]} pid=${BENCH_PROXY_PID[$1]} before after line
    local held=0 dropped=0
    wrk -t1 -c50 -d1s "http://127.0.0.1:$port/" >/dev/null
    sleep 1
    before=$("${BENCH_STATS[@]}" rss "$pid")
    coproc CLIENT { exec python3 "$BENCH_LIB_DIR/idle_client.py" "$port" "$IDLE_CONNS" 200 300; }
    local cpid=$CLIENT_PID out=${CLIENT[0]} in=${CLIENT[1]}
    BENCH_PIDS+=("$cpid")
    if read -t 240 -r line <&"$out" && [[ $line == held* ]]; then
        held=${line#held }
    fi
    sleep 2 # let the proxy finish any deferred work (pool trims, idle server closes)
    after=$("${BENCH_STATS[@]}" rss "$pid")
    eval "exec $in>&-" # closing its stdin tells the client to let go
    if read -t 60 -r line <&"$out" && [[ $line == dropped* ]]; then
        dropped=${line#dropped }
    fi
    bench_stop_pid "$cpid"
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$held" "$dropped" "$before" "$after" >>"$results"
    bench_log "$name: held $held (proxy closed $dropped), RSS $before -> $after KiB"
    [ "$dropped" = 0 ] || bench_log "$name: warning: connections closed while idle"
}

for name in $PROXIES; do
    if bench_start_proxy "$name"; then
        hold "$name"
        # One proxy at a time, so the others' sockets do not share the kernel's memory.
        bench_stop_pid "${BENCH_PROXY_PID[$name]}"
    fi
done

report() {
    echo "## Memory per idle keep-alive connection (bench/idle.sh)"
    echo
    bench_machine
    echo "- load: $IDLE_CONNS client connections, each sends one GET / (100-byte answer)" \
        "and then idles; opened 200 at a time"
    bench_versions
    echo
    "${BENCH_STATS[@]}" idle-report "$results"
    echo
    echo "RSS is VmRSS from /proc/PID/status, summed over the proxy's processes (nginx:" \
        "master and worker), after a 1 s warm-up and again with every connection held." \
        "Kernel socket buffers are not in RSS."
}
if [ -n "${BENCH_OUT:-}" ]; then
    report | tee "$BENCH_OUT"
else
    report
fi
