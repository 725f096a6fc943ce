# lib.sh -- shared by bench/proxy.sh, bench/idle.sh and bench/soak.sh: ports, config rendering, starting
# and stopping the backends and the three proxies, every wait bounded. Source it; not a
# program. Everything it starts is recorded in BENCH_PIDS and stopped by bench_cleanup.
# shellcheck shell=bash disable=SC2034  # variables here are used by the sourcing scripts

BENCH_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_REPO="$(cd "$BENCH_LIB_DIR/../.." && pwd)"
BENCH_STATS=(python3 "$BENCH_LIB_DIR/stats.py")

# Ports below the ephemeral range, so no client connection of this run can hold one.
BENCH_PORT_BASE="${BENCH_PORT_BASE:-27100}"
BENCH_BACKEND_PORTS=($((BENCH_PORT_BASE + 1)) $((BENCH_PORT_BASE + 2)) \
    $((BENCH_PORT_BASE + 3)) $((BENCH_PORT_BASE + 4)))
declare -A BENCH_PORT=([fulcrum]=$((BENCH_PORT_BASE + 81)) [haproxy]=$((BENCH_PORT_BASE + 82))
    [nginx]=$((BENCH_PORT_BASE + 83)))
declare -A BENCH_PROXY_PID=()
FULCRUM_BIN="${FULCRUM_BIN:-$BENCH_REPO/build/fulcrum}"
BENCH_MAXCONN="${BENCH_MAXCONN:-4096}"
BENCH_PIDS=()
BENCH_TMP=""

# bench_need PACKAGES -- TOOLS: installs the Debian PACKAGES (unless BENCH_SKIP_DEPS is set),
# then exits with a message if any of TOOLS is missing.
bench_need() {
    local pkgs=() tool
    while [ $# -gt 0 ] && [ "$1" != -- ]; do pkgs+=("$1"); shift; done
    shift
    if [ -z "${BENCH_SKIP_DEPS:-}" ]; then
        "$BENCH_REPO/scripts/deps.sh" "${pkgs[@]}" >&2
    fi
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { bench_log "$tool not found"; exit 1; }
    done
}

# CPU pinning (BENCH_PIN=1, on two or more CPUs): the proxy under test gets CPU 1 and the
# load (wrk, backends) CPU 0. Off by default: on a machine shared with other work, pinning
# halves throughput whenever that work lands on the load's CPU.
PIN_PROXY=()
PIN_LOAD=()
if [ "${BENCH_PIN:-0}" != 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_PROXY=(taskset -c 1)
    PIN_LOAD=(taskset -c 0)
fi

bench_log() { echo "bench: $*" >&2; }

# Stop PID and anything below it (nginx workers): TERM, then KILL after 5 s.
bench_stop_pid() {
    local pid=$1 kids=() i
    kill -0 "$pid" 2>/dev/null || return 0
    mapfile -t kids < <(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" "${kids[@]}" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop_pid "$pid"
    done
    BENCH_PIDS=()
    if [ -n "$BENCH_TMP" ] && [ -z "${BENCH_KEEP_TMP:-}" ]; then
        rm -rf "$BENCH_TMP"
    fi
}

bench_init() {
    BENCH_LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"
    BENCH_TMP="$(mktemp -d /tmp/fulcrum-bench.XXXXXX)"
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    local p
    for p in "${BENCH_BACKEND_PORTS[@]}" "${BENCH_PORT[@]}"; do
        if ss -ltnH "sport = :$p" | grep -q .; then
            bench_log "port $p is in use; set BENCH_PORT_BASE to another value"
            exit 1
        fi
    done
}

# bench_render TEMPLATE OUT DIR PORT: fill the @NAME@ placeholders of a config template.
bench_render() {
    local user_line=""
    # As root nginx would switch its workers to nobody, who cannot enter the private temp dir.
    [ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
    sed -e "s|@DIR@|$3|g" -e "s|@PORT@|$4|g" -e "s|@USER_LINE@|$user_line|g" \
        -e "s|@B1@|${BENCH_BACKEND_PORTS[0]}|g" -e "s|@B2@|${BENCH_BACKEND_PORTS[1]}|g" \
        -e "s|@B3@|${BENCH_BACKEND_PORTS[2]}|g" -e "s|@B4@|${BENCH_BACKEND_PORTS[3]}|g" \
        -e "s|@MAXCONN@|$BENCH_MAXCONN|g" -e "s|@NOFILE@|$(ulimit -n)|g" \
        -e "s|@PAD@|$(printf 'x%.0s' $(seq 75))|g" "$1" >"$2"
}

# bench_wait_http PORT|URL PID: 0 once the URL (a bare PORT: http://127.0.0.1:PORT/)
# answers 200, 1 if PID died or 10 s passed.
bench_wait_http() {
    local i code url=$1
    [[ $url == http* ]] || url="http://127.0.0.1:$1/"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}

# bench_start_backends: one nginx worker serving the four backend ports.
bench_start_backends() {
    local dir="$BENCH_TMP/backend" p
    mkdir -p "$dir"
    bench_render "$BENCH_LIB_DIR/backend.nginx.conf.in" "$dir/nginx.conf" "$dir" 0
    "${PIN_LOAD[@]}" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        >"$dir/out.log" 2>&1 &
    BENCH_BACKEND_PID=$!
    BENCH_PIDS+=("$BENCH_BACKEND_PID")
    for p in "${BENCH_BACKEND_PORTS[@]}"; do
        if ! bench_wait_http "$p" "$BENCH_BACKEND_PID"; then
            bench_log "backend nginx did not answer on port $p:"
            cat "$dir/out.log" "$dir/error.log" >&2 2>/dev/null
            exit 1
        fi
    done
}

# bench_spawn NAME DIR CMD...: start CMD pinned to the proxy CPU, log to DIR/out.log.
bench_spawn() {
    local name=$1 dir=$2
    shift 2
    "${PIN_PROXY[@]}" "$@" >"$dir/out.log" 2>&1 &
    BENCH_PROXY_PID[$name]=$!
    BENCH_PIDS+=("$!")
}

# bench_start_proxy NAME: start one proxy and wait until it answers. 0, or 1 with a
# message (fulcrum is optional: a missing or broken binary is skipped, not fatal).
bench_start_proxy() {
    local name=$1 dir="$BENCH_TMP/$1" port=${BENCH_PORT[$1]}
    mkdir -p "$dir"
    case "$name" in
    fulcrum)
        if [ ! -x "$FULCRUM_BIN" ]; then
            bench_log "fulcrum: $FULCRUM_BIN not found (run make); skipping fulcrum"
            return 1
        fi
        bench_render "$BENCH_LIB_DIR/fulcrum.yaml.in" "$dir/fulcrum.yaml" "$dir" "$port"
        if ! "$FULCRUM_BIN" check "$dir/fulcrum.yaml" >"$dir/check.log" 2>&1; then
            bench_log "fulcrum: 'fulcrum check' rejected the bench config; skipping fulcrum:"
            cat "$dir/check.log" >&2
            return 1
        fi
        bench_spawn fulcrum "$dir" "$FULCRUM_BIN" run "$dir/fulcrum.yaml"
        ;;
    haproxy)
        bench_render "$BENCH_LIB_DIR/haproxy.cfg.in" "$dir/haproxy.cfg" "$dir" "$port"
        bench_spawn haproxy "$dir" haproxy -db -f "$dir/haproxy.cfg"
        ;;
    nginx)
        bench_render "$BENCH_LIB_DIR/nginx.conf.in" "$dir/nginx.conf" "$dir" "$port"
        bench_spawn nginx "$dir" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
        ;;
    *)
        bench_log "unknown proxy '$name' (fulcrum, haproxy, nginx)"
        return 1
        ;;
    esac
    if ! bench_wait_http "$port" "${BENCH_PROXY_PID[$name]}"; then
        bench_log "$name did not answer 200 on 127.0.0.1:$port within 10 s; skipping $name:"
        tail -n 20 "$dir/out.log" "$dir/error.log" >&2 2>/dev/null
        bench_stop_pid "${BENCH_PROXY_PID[$name]}"
        unset "BENCH_PROXY_PID[$name]"
        return 1
    fi
    bench_check_spread "$name" "$port"
}

# bench_check_spread NAME PORT: warn unless 8 requests reach all four backends with the
# full 100-byte body (a proxy that serves an error page fast would win any benchmark).
bench_check_spread() {
    local i body seen="" n
    for ((i = 0; i < 8; i++)); do
        body=$(curl -s -m 2 "http://127.0.0.1:$2/" || true)
        if [ "${#body}" -ne 99 ]; then # $(...) drops the trailing newline
            bench_log "$1: unexpected response body '${body:0:80}'"
            return 1
        fi
        seen+="${body:22:1}"$'\n'
    done
    n=$(printf '%s' "$seen" | sort -u | grep -c .)
    [ "$n" -eq 4 ] || bench_log "$1: warning: 8 requests reached $n of 4 backends"
    return 0
}

# bench_versions: one markdown line per program, for the report header.
bench_versions() {
    local v
    v=$(haproxy -v 2>&1 | sed -n 1p | sed 's/ - https.*//' || true)
    echo "- haproxy: ${v:-not found}"
    echo "- nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    if [ -x "$FULCRUM_BIN" ]; then
        echo "- fulcrum: $("$FULCRUM_BIN" --version 2>&1 | sed -n 1p)"
    fi
}

bench_machine() {
    local cpu
    cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs (${cpu:-unknown}), $(free -g | awk '/^Mem:/ {print $2}') GiB," \
        "Linux $(uname -r)"
    if [ ${#PIN_PROXY[@]} -gt 0 ]; then
        echo "- pinning: proxy under test on CPU 1; wrk and the backends on CPU 0"
    else
        echo "- pinning: none"
    fi
    echo "- load average at start: $BENCH_LOADAVG"
}
