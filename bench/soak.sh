#!/usr/bin/env bash
# soak.sh -- fulcrum under a long mixed load while its configuration is reloaded and a
# server flaps: does RSS stay flat, and does any request fail?
#
# What runs, all on 127.0.0.1 and all bounded by SOAK_SECONDS:
#   - four backends, one nginx process each (GET /small, GET /large = 64 KiB, POST /post);
#   - fulcrum with WORKERS workers, one HTTP frontend over them, active health checks every
#     500 ms (fall 2, rise 2), retries 2, the admin API, an access log file;
#   - wrk: CONNS keep-alive connections, each carrying a mix of GET small / GET large /
#     POST (bench/soak/mix.lua checks every answer);
#   - a client opening one connection per request (bench/soak/close_client.py, CLOSE_RATE
#     requests/s: GETs, HTTP/1.0, POSTs with Content-Length and chunked), so accepts and
#     closes are soaked too;
#   - every RELOAD_EVERY s a reload, alternately SIGHUP and POST /api/reload, alternately
#     config A (weighted_round_robin, s1 weight 2) and B (least_connections, s1 weight 1):
#     a strategy change makes a new pool at every reload (RELOAD_CHANGE=weight: B keeps
#     weighted_round_robin and only s1's weight changes, so the pool is kept);
#   - every FLAP_EVERY s one backend is stopped (FLAP_SIGNAL, KILL by default: a crash with
#     requests in flight), and started again FLAP_EVERY s later; s1..s4 in turn;
#   - every SAMPLE_EVERY s fulcrum's RSS, open fds and threads, the admin stats, and a
#     rotation of the access log (rename + SIGUSR1), whose non-2xx lines are kept.
# At the end fulcrum gets SIGTERM (drain; its exit status is reported) and a markdown
# report is printed on stdout: requests and failures per client and kind, reloads, flaps,
# RSS after warm-up / min / max / end and a flatness verdict, fds.
#
# Usage: bench/soak.sh             (build first: make)
# Environment:
#   SOAK_SECONDS=600  RELOAD_EVERY=5  FLAP_EVERY=7  SAMPLE_EVERY=5  WORKERS=2
#   WARMUP_SECONDS    excluded from the RSS baseline (default: 30, at most SOAK_SECONDS/6)
#   CONNS=32 THREADS=1   wrk connections and threads
#   CLOSE_RATE=50     requests/s of the connection-per-request client (0: off)
#   RELOAD_CHANGE=strategy  what config B changes: strategy (and s1's weight), or weight
#   FLAP_SIGNAL=KILL  KILL (crash), TERM (nginx fast stop) or QUIT (graceful drain); NONE: no flaps
#   SOAK_POST_BYTES=2048  body of wrk's POSTs
#   SOAK_PORT_BASE=27300  ports used: base+1..base+4 (backends), base+80 (fulcrum),
#                     base+90 (admin API)
#   SOAK_ACCESS_LOG=1 0: no access log (failures then cannot be told apart by request)
#   SOAK_OUT_DIR=DIR  also keep there: report.md, samples.tsv, events.tsv, fulcrum.log,
#                     failures from the access log and the client
#   SOAK_KEEP_TMP=1   keep the scratch directory (its path is logged)
#   BENCH_SKIP_DEPS=1 do not call scripts/deps.sh
#   FULCRUM_BIN=build/fulcrum
set -euo pipefail

SOAK_SECONDS="${SOAK_SECONDS:-600}"
RELOAD_EVERY="${RELOAD_EVERY:-5}"
FLAP_EVERY="${FLAP_EVERY:-7}"
SAMPLE_EVERY="${SAMPLE_EVERY:-5}"
WORKERS="${WORKERS:-2}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-1}"
CLOSE_RATE="${CLOSE_RATE:-50}"
FLAP_SIGNAL="${FLAP_SIGNAL:-KILL}"
RELOAD_CHANGE="${RELOAD_CHANGE:-strategy}"
SOAK_PORT_BASE="${SOAK_PORT_BASE:-27300}"
SOAK_ACCESS_LOG="${SOAK_ACCESS_LOG:-1}"
export SOAK_POST_BYTES="${SOAK_POST_BYTES:-2048}"
export SOAK_LARGE_BYTES=65536
if [ -z "${WARMUP_SECONDS:-}" ]; then
    WARMUP_SECONDS=$((SOAK_SECONDS / 6))
    [ "$WARMUP_SECONDS" -le 30 ] || WARMUP_SECONDS=30
fi

for v in SOAK_SECONDS RELOAD_EVERY FLAP_EVERY SAMPLE_EVERY WORKERS CONNS THREADS CLOSE_RATE \
    WARMUP_SECONDS SOAK_POST_BYTES SOAK_PORT_BASE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "soak: $v must be a whole number" >&2; exit 2; }
done
for v in SOAK_SECONDS RELOAD_EVERY FLAP_EVERY SAMPLE_EVERY WORKERS CONNS THREADS; do
    [ "${!v}" -gt 0 ] || { echo "soak: $v must be > 0" >&2; exit 2; }
done
case "$FLAP_SIGNAL" in
KILL | TERM | QUIT | NONE) ;;
*) echo "soak: FLAP_SIGNAL is KILL, TERM, QUIT or NONE" >&2; exit 2 ;;
esac
case "$RELOAD_CHANGE" in
strategy) STRATEGY_B=least_connections ;;
weight) STRATEGY_B=weighted_round_robin ;;
*) echo "soak: RELOAD_CHANGE is strategy or weight" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# lib.sh gives bench_log, bench_stop_pid, bench_machine; its ports and BENCH_PIDS are unused.
# shellcheck source-path=SCRIPTDIR source=proxy/lib.sh
. "$here/proxy/lib.sh"
SOAK_DIR="$here/soak"

bench_need nginx wrk -- nginx wrk curl python3 ss timeout
[ -x "$FULCRUM_BIN" ] || { bench_log "$FULCRUM_BIN not found: run make first"; exit 1; }

BPORT=("" $((SOAK_PORT_BASE + 1)) $((SOAK_PORT_BASE + 2)) $((SOAK_PORT_BASE + 3)) \
    $((SOAK_PORT_BASE + 4)))
FE_PORT=$((SOAK_PORT_BASE + 80))
ADMIN_PORT=$((SOAK_PORT_BASE + 90))
ADMIN="http://127.0.0.1:$ADMIN_PORT"
BPID=("" "" "" "" "")
FULCRUM_PID=""
WRK_PID=""
CLIENT_PID=""
T=""

# ---- clean-up: every process this script started, by its pid ----

soak_cleanup() {
    local i
    trap - EXIT INT TERM
    for pid in "$WRK_PID" "$CLIENT_PID" "$FULCRUM_PID"; do
        if [ -n "$pid" ]; then bench_stop_pid "$pid"; fi
    done
    for i in 1 2 3 4; do
        if [ -n "${BPID[$i]}" ]; then bench_stop_pid "${BPID[$i]}"; fi
    done
    wait 2>/dev/null || true
    if [ -n "$T" ]; then
        if [ -n "${SOAK_KEEP_TMP:-}" ]; then
            bench_log "scratch directory kept: $T"
        else
            rm -rf "$T"
        fi
    fi
}
trap soak_cleanup EXIT
trap 'exit 130' INT TERM

# now_ms: milliseconds since the epoch, into NOW (no subshell).
now_ms() {
    local t=$EPOCHREALTIME
    NOW=$((${t%.*} * 1000 + 10#${t#*.} / 1000))
}

# ---- backends ----

render() { # render TEMPLATE OUT SED-EXPRESSIONS...
    local in=$1 out=$2
    shift 2
    sed "$@" "$in" >"$out"
}

backend_setup() { # backend_setup N: its directory, config and 64 KiB file
    local n=$1 d="$T/b$1" user_line=""
    mkdir -p "$d/www"
    # As root nginx would switch to nobody, who cannot enter the private scratch directory.
    [ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
    head -c "$SOAK_LARGE_BYTES" /dev/urandom >"$d/www/large"
    render "$SOAK_DIR/backend.nginx.conf.in" "$d/nginx.conf" -e "s|@DIR@|$d|g" \
        -e "s|@WWW@|$d/www|g" -e "s|@PORT@|${BPORT[$n]}|g" -e "s|@N@|$n|g" \
        -e "s|@USER_LINE@|$user_line|g" -e "s|@NOFILE@|$(ulimit -n)|g" \
        -e "s|@PAD@|$(printf 'x%.0s' $(seq 78))|g" # a 100-byte body
}

backend_start() { # backend_start N
    local n=$1 d="$T/b$1"
    nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >>"$d/out.log" 2>&1 &
    BPID[n]=$!
    if ! bench_wait_http "http://127.0.0.1:${BPORT[$n]}/health" "${BPID[$n]}"; then
        bench_log "backend $n did not answer on port ${BPORT[$n]}:"
        tail -n 5 "$d/out.log" "$d/error.log" >&2 2>/dev/null || true
        return 1
    fi
}

backend_stop() { # backend_stop N SIGNAL: stop it, wait for it (QUIT drains: 10 s at most)
    local n=$1 pid=${BPID[$1]} i
    kill -"$2" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    BPID[n]=""
}

# ---- fulcrum ----

fulcrum_render() { # fulcrum_render OUT STRATEGY S1_WEIGHT
    local alog="$T/access.log"
    [ "$SOAK_ACCESS_LOG" = 0 ] && alog=off
    render "$SOAK_DIR/fulcrum.yaml.in" "$1" -e "s|@WORKERS@|$WORKERS|g" \
        -e "s|@ACCESS_LOG@|$alog|g" -e "s|@ADMIN_PORT@|$ADMIN_PORT|g" \
        -e "s|@PORT@|$FE_PORT|g" -e "s|@STRATEGY@|$2|g" -e "s|@W1@|$3|g" \
        -e "s|@B1@|${BPORT[1]}|g" -e "s|@B2@|${BPORT[2]}|g" -e "s|@B3@|${BPORT[3]}|g" \
        -e "s|@B4@|${BPORT[4]}|g"
    if ! "$FULCRUM_BIN" check "$1" >"$T/check.log" 2>&1; then
        bench_log "fulcrum check rejected $1:"
        cat "$T/check.log" >&2
        exit 1
    fi
}

# metric NAME{LABELS}: its value in the last /metrics read (METRICS), NA if missing.
metric() {
    local v
    v=$(grep -F "$1 " <<<"$METRICS" | head -n 1 | awk '{print $NF}' || true)
    echo "${v:-NA}"
}

read_metrics() { METRICS=$(curl -s -m 2 "$ADMIN/metrics" || true); }

# reload_counts: "SUCCESS FAILURE" from fulcrum_reloads_total, or "" if unreadable.
reload_counts() {
    curl -s -m 2 "$ADMIN/metrics" 2>/dev/null | awk '
        /^fulcrum_reloads_total\{result="success"\}/ {s = $2}
        /^fulcrum_reloads_total\{result="failure"\}/ {f = $2}
        END {if (s != "" && f != "") print s, f}' || true
}

# event WHAT DETAIL RESULT T_START: one line of events.tsv: when it began (s into the
# run, ms precision) and how long it took (ms).
event() {
    now_ms
    printf '%s.%03d\t%s\t%s\t%s\t%s\n' $((($4 - T0) / 1000)) $((($4 - T0) % 1000)) "$1" "$2" \
        "$3" $((NOW - $4)) >>"$T/events.tsv"
}

RELOADS=0
reload_once() {
    local variant method before after code="" i result=failed t_start
    RELOADS=$((RELOADS + 1))
    variant=$([ $((RELOADS % 2)) = 1 ] && echo B || echo A)
    method=$([ $((RELOADS % 2)) = 1 ] && echo sighup || echo api)
    cp "$T/fulcrum-$variant.yaml" "$T/fulcrum.yaml.new"
    mv -f "$T/fulcrum.yaml.new" "$T/fulcrum.yaml"
    before=$(reload_counts)
    now_ms
    t_start=$NOW
    if [ "$method" = sighup ]; then
        kill -HUP "$FULCRUM_PID"
    else
        code=$(curl -s -o "$T/reload-answer.json" -m 10 -w '%{http_code}' -X POST \
            "$ADMIN/api/reload" || true)
    fi
    # Both ways end in fulcrum_reloads_total: wait (5 s at most) for it to move.
    for ((i = 0; i < 250; i++)); do
        after=$(reload_counts)
        [ -n "$after" ] && [ "$after" != "$before" ] && break
        sleep 0.02
    done
    if [ -n "$before" ] && [ -n "$after" ] && [ "${after% *}" -gt "${before% *}" ] &&
        { [ "$method" = sighup ] || [ "$code" = 200 ]; }; then
        result=ok
    fi
    [ "$result" = ok ] || bench_log "reload $RELOADS ($method, $variant) failed: HTTP ${code:-none}," \
        "counters '$before' -> '$after' $(cat "$T/reload-answer.json" 2>/dev/null || true)"
    event reload "$method $variant" "$result" "$t_start"
}

FLAP_DOWN=""
FLAP_NEXT=1
flap_once() {
    local t_start result=ok
    now_ms
    t_start=$NOW
    if [ -z "$FLAP_DOWN" ]; then
        FLAP_DOWN=$FLAP_NEXT
        FLAP_NEXT=$((FLAP_NEXT % 4 + 1))
        # stderr off: bash would report the killed job ("Killed ...") as a harness error.
        backend_stop "$FLAP_DOWN" "$FLAP_SIGNAL" 2>/dev/null
        event stop "s$FLAP_DOWN SIG$FLAP_SIGNAL" ok "$t_start"
    else
        backend_start "$FLAP_DOWN" || result=failed
        event start "s$FLAP_DOWN" "$result" "$t_start"
        FLAP_DOWN=""
    fi
}

# Access log: rename it and have fulcrum reopen the path (SIGUSR1). The file renamed one
# round earlier is complete by now: count its lines by request and status, keep the non-2xx
# ones, delete it. Bounded disk use whatever the run's length.
ALOG_SEQ=0
alog_rotate() {
    [ "$SOAK_ACCESS_LOG" = 0 ] && return 0
    ALOG_SEQ=$((ALOG_SEQ + 1))
    [ -f "$T/access.log" ] && mv "$T/access.log" "$T/access.$ALOG_SEQ.log"
    kill -USR1 "$FULCRUM_PID" 2>/dev/null || true
    alog_digest "$T/access.$((ALOG_SEQ - 1)).log"
}

alog_digest() { # alog_digest FILE
    [ -f "$1" ] || return 0
    awk -F'"' -v fail="$T/access-fail.log" '
        { split($3, a, " "); st = a[1]; r = $2; sub(/ HTTP\/1\.[01]$/, "", r)
          sub(/\?.*/, "", r); n[r "\t" st]++
          if (st !~ /^2/) print >> fail }
        END { for (k in n) print k "\t" n[k] }' "$1" >>"$T/access-counts.tsv"
    rm -f "$1"
}

sample() {
    local rss fds thr
    now_ms
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$FULCRUM_PID/status" 2>/dev/null || echo NA)
    thr=$(awk '/^Threads:/ {print $2}' "/proc/$FULCRUM_PID/status" 2>/dev/null || echo NA)
    fds=$(find "/proc/$FULCRUM_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    read_metrics
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(((NOW - T0) / 1000))" "${rss:-NA}" "$fds" \
        "${thr:-NA}" "$(metric 'fulcrum_backend_requests_total{backend="app"}')" \
        "$(metric 'fulcrum_backend_failures_total{backend="app"}')" \
        "$(metric 'fulcrum_backend_servers{backend="app",state="healthy"}')" \
        "${FLAP_DOWN:+s$FLAP_DOWN}" >>"$T/samples.tsv"
}

# ---- the run ----

BENCH_LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"
T="$(mktemp -d /tmp/fulcrum-soak.XXXXXX)"
for p in "${BPORT[@]:1}" "$FE_PORT" "$ADMIN_PORT"; do
    if ss -ltnH "sport = :$p" | grep -q .; then
        bench_log "port $p is in use; set SOAK_PORT_BASE to another value"
        exit 1
    fi
done

for n in 1 2 3 4; do
    backend_setup "$n"
    backend_start "$n" || exit 1
done
fulcrum_render "$T/fulcrum-A.yaml" weighted_round_robin 2
fulcrum_render "$T/fulcrum-B.yaml" "$STRATEGY_B" 1
cp "$T/fulcrum-A.yaml" "$T/fulcrum.yaml"
"$FULCRUM_BIN" run "$T/fulcrum.yaml" >"$T/fulcrum.log" 2>&1 &
FULCRUM_PID=$!
if ! bench_wait_http "http://127.0.0.1:$FE_PORT/small" "$FULCRUM_PID" ||
    ! bench_wait_http "$ADMIN/api/backends" "$FULCRUM_PID"; then
    bench_log "fulcrum did not start:"
    tail -n 20 "$T/fulcrum.log" >&2
    exit 1
fi
for ((i = 0; i < 100; i++)); do # all four healthy before the load starts (10 s at most)
    read_metrics
    [ "$(metric 'fulcrum_backend_servers{backend="app",state="healthy"}')" = 4 ] && break
    sleep 0.1
done
bench_log "fulcrum up on 127.0.0.1:$FE_PORT (pid $FULCRUM_PID), admin $ADMIN; scratch $T"

printf 't_s\trss_kib\tfds\tthreads\ttotal_requests\tfailed_requests\thealthy_servers\tdown\n' \
    >"$T/samples.tsv"
printf 't_s\tevent\tdetail\tresult\tms\n' >"$T/events.tsv"
: >"$T/access-counts.tsv"
: >"$T/access-fail.log"
: >"$T/client-fail.log"

now_ms
T0=$NOW
echo "$T0" >"$T/t0"
timeout $((SOAK_SECONDS + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${SOAK_SECONDS}s" --timeout 15s \
    -s "$SOAK_DIR/mix.lua" "http://127.0.0.1:$FE_PORT/" >"$T/wrk.txt" 2>&1 &
WRK_PID=$!
if [ "$CLOSE_RATE" -gt 0 ]; then
    timeout $((SOAK_SECONDS + 60)) python3 "$SOAK_DIR/close_client.py" "$FE_PORT" \
        "$SOAK_SECONDS" "$CLOSE_RATE" "$T/client.json" "$T/client-fail.log" \
        >"$T/client.out" 2>&1 &
    CLIENT_PID=$!
fi
bench_log "load for ${SOAK_SECONDS}s: wrk -c$CONNS, ${CLOSE_RATE} conn/s; reload every" \
    "${RELOAD_EVERY}s, flap every ${FLAP_EVERY}s (SIG$FLAP_SIGNAL), sample every ${SAMPLE_EVERY}s"

end=$((T0 + SOAK_SECONDS * 1000))
next_sample=$T0
next_reload=$((T0 + RELOAD_EVERY * 1000))
next_flap=$((T0 + FLAP_EVERY * 1000))
next_note=$((T0 + 60000))
died=""
while :; do
    now_ms
    [ "$NOW" -lt "$end" ] || break
    if ! kill -0 "$FULCRUM_PID" 2>/dev/null; then
        died=yes
        bench_log "fulcrum died during the run:"
        tail -n 20 "$T/fulcrum.log" >&2
        break
    fi
    if [ "$NOW" -ge "$next_sample" ]; then
        sample
        alog_rotate
        next_sample=$((next_sample + SAMPLE_EVERY * 1000))
    fi
    if [ "$NOW" -ge "$next_reload" ]; then
        reload_once
        next_reload=$((next_reload + RELOAD_EVERY * 1000))
    fi
    if [ "$FLAP_SIGNAL" != NONE ] && [ "$NOW" -ge "$next_flap" ]; then
        flap_once
        next_flap=$((next_flap + FLAP_EVERY * 1000))
    fi
    if [ "$NOW" -ge "$next_note" ]; then
        bench_log "$(((NOW - T0) / 1000))s: RSS $(tail -n 1 "$T/samples.tsv" | cut -f2) KiB," \
            "$RELOADS reloads, $(grep -c "	stop	" "$T/events.tsv" || true) flaps"
        next_note=$((next_note + 60000))
    fi
    sleep 0.2
done

# The load ends by itself (wrk -d, the client's own clock): wait for both, 60 s at most;
# with fulcrum dead there is nothing to wait for.
for pid in "$WRK_PID" "$CLIENT_PID"; do
    if [ -n "$pid" ] && [ -n "$died" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
done
WRK_PID=""
CLIENT_PID=""
drain_status=NA
if [ -z "$died" ]; then
    sample
    alog_rotate
    # Drain: SIGTERM, exit 0 expected within fulcrum's 10 s drain.
    kill -TERM "$FULCRUM_PID"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$FULCRUM_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$FULCRUM_PID" 2>/dev/null; then
        drain_status="still running 15 s after SIGTERM"
        kill -KILL "$FULCRUM_PID" 2>/dev/null || true
    fi
    rc=0
    wait "$FULCRUM_PID" 2>/dev/null || rc=$?
    [ "$drain_status" = NA ] && drain_status="exit $rc"
else
    rc=0
    wait "$FULCRUM_PID" 2>/dev/null || rc=$?
    drain_status="died during the run (wait status $rc)"
fi
FULCRUM_PID=""
for ((k = ALOG_SEQ - 1; k <= ALOG_SEQ; k++)); do
    alog_digest "$T/access.$k.log"
done
alog_digest "$T/access.log"

report() {
    local alog_text="access log to a file, rotated (SIGUSR1) every ${SAMPLE_EVERY}s"
    [ "$SOAK_ACCESS_LOG" = 0 ] && alog_text="access log off"
    echo "## Soak: mixed load, reloads and a flapping server (bench/soak.sh)"
    echo
    bench_machine
    echo "- fulcrum: $("$FULCRUM_BIN" --version 2>&1 | sed -n 1p), $WORKERS workers;" \
        "backends: 4 × $(nginx -v 2>&1 | sed 's/^nginx version: //') (one process each)"
    echo "- load for ${SOAK_SECONDS}s: wrk $(wrk -v 2>&1 | sed -n 1p | awk '{print $2}')" \
        "-t$THREADS -c$CONNS keep-alive, cycle of 6 GET /small (100 B) : 2 GET /large" \
        "(64 KiB) : 2 POST /post (${SOAK_POST_BYTES} B); plus one new connection per request at" \
        "$CLOSE_RATE req/s (GET /small, HTTP/1.0 GET /large, POST 32 KiB with Content-Length" \
        "and chunked)"
    echo "- every ${RELOAD_EVERY}s a reload (SIGHUP and POST /api/reload in turn; config A" \
        "weighted_round_robin + s1 weight 2 <-> B $STRATEGY_B + s1 weight 1); every" \
        "${FLAP_EVERY}s a backend stopped with SIG$FLAP_SIGNAL or started again; health checks" \
        "every 500 ms (fall 2, rise 2), retries 2; $alog_text; RSS baseline after a" \
        "${WARMUP_SECONDS}s warm-up"
    echo
    python3 "$SOAK_DIR/report.py" "$T" "$WARMUP_SECONDS" "$SOAK_SECONDS" "$FLAP_SIGNAL" \
        "$drain_status"
}
report >"$T/report.md"
cat "$T/report.md"
if [ -n "${SOAK_OUT_DIR:-}" ]; then
    mkdir -p "$SOAK_OUT_DIR"
    for f in report.md samples.tsv events.tsv fulcrum.log access-fail.log access-counts.tsv \
        client-fail.log client.json wrk.txt t0; do
        [ -f "$T/$f" ] && cp "$T/$f" "$SOAK_OUT_DIR/"
    done
    bench_log "report and samples written to $SOAK_OUT_DIR"
fi
[ -z "$died" ] || exit 1
