#!/usr/bin/env bash
# bench/http_hello.sh - weftd against nginx on GET /api/hello/ping, then the
# cost of plugin reloads. One command, nothing installed, everything it starts
# is stopped and its temp directory removed on exit (also on error or Ctrl-C).
#
#   bench/http_hello.sh [BUILD_DIR]          (default: <repo>/build)
#
# Phases (see bench/README.md for what each one measures):
#   throughput  wrk at 64 and 256 connections, weftd and nginx alternating
#   reload      p99 at 64 connections, with and without a reload every 200 ms
#   swap        ms from a reload request to the new plugin version serving
#
# Environment (defaults in brackets):
#   BUILD_DIR [<repo>/build]  where weftd and plugins/hello.so are
#   DURATION [10]  seconds per measured wrk run    WARMUP [2]  warm-up seconds
#   RUNS [3]  repetitions per connection count     CONNS ["64 256"]
#   WRK_THREADS [2]           THREADS [nproc]  weftd loops = nginx workers
#   PHASES ["throughput reload swap"]
#   RELOAD_CONNS [64]  RELOAD_INTERVAL [0.2] s    SWAP_SAMPLES [20]
#   POLL_US [200]  pause between version polls in the swap phase
#   READY_TIMEOUT [60] s      LOG_LEVEL [warn]  weftd's [log] level
#   KEEP_TMP [0]  1 keeps the temp dir (configs, logs, raw wrk output)
#
# Needs: wrk (Debian package `wrk`), nginx (Debian package `nginx-light`),
# curl and cc; the project's `make` installs all of them. This script never
# installs anything.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$REPO/bench

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}
case "${1:-}" in
-h | --help) usage; exit 0 ;;
-*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
esac

BUILD_DIR=${1:-${BUILD_DIR:-$REPO/build}}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-3}
CONNS=${CONNS:-64 256}
WRK_THREADS=${WRK_THREADS:-2}
NCPU=$(nproc)
THREADS=${THREADS:-$NCPU}
PHASES=${PHASES:-throughput reload swap}
RELOAD_CONNS=${RELOAD_CONNS:-64}
RELOAD_INTERVAL=${RELOAD_INTERVAL:-0.2}
SWAP_SAMPLES=${SWAP_SAMPLES:-20}
POLL_US=${POLL_US:-200}
READY_TIMEOUT=${READY_TIMEOUT:-60}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}

TMP=""
WEFTD_PID=""
NGINX_PID=""
NGINX_WORKERS=""
RELOADER_PID=""
FAILURES=()

say() { printf '%s\n' "$*"; }
die() { printf 'http_hello.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup --

# Signal one process we started, wait up to $3 seconds, then SIGKILL it.
stop_pid() {
    local pid=$1 sig=$2 wait_s=$3 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "(pid $pid ignored SIG$sig for ${wait_s}s: SIGKILL)" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Ask the reload loop to stop after its current request, so that no reload
# is left half-sent; signal it only if it does not finish within 15 s.
stop_# POST a reload every RELOAD_INTERVAL on a fixed schedule (the next one
# starts at once if a reload took longer); one line per reload in
# reloads.log: "<status> <seconds> <body>". Only curl and sleep are forked:
# CPU is scarce while wrk runs.
reloader() {
    local next now left pause body
    next=${EPOCHREALTIME//[!0-9]/}
    while [[ ! -e $TMP/reloader.stop ]]; do
        : >"$TMP/reload.body"
        curl -s -m 10 -o "$TMP/reload.body" -w '%{http_code} %{time_total}' -X POST \
            -H @"$TMP/auth.header" "$WEFT_URL/admin/plugins/hello/reload" \
            >>"$TMP/reloads.log" 2>/dev/null || true
        body=""
        IFS= read -r -d '' body <"$TMP/reload.body" || true
        printf ' %s\n' "${body//$'\n'/ }" >>"$TMP/reloads.log"
        next=$((next + RELOAD_INTERVAL_US))
        now=${EPOCHREALTIME//[!0-9]/}
        if ((next > now)); then
            left=$((next - now))
            printf -v pause '%d.%06d' $((left / 1000000)) $((left % 1000000))
            sleep "$pause"
        else
            next=$now
        fi
    done
}

phase_reload() {
    local base_rps base_p99 base_err rel_rps rel_p99 rel_err n ok bad tmed tmax
    say ""
    say "== reload: p99 of GET /api/hello/ping at $RELOAD_CONNS connections, ${DURATION}s, without and with"
    say "   POST /admin/plugins/hello/reload every ${RELOAD_INTERVAL}s (same weftd, same file)"
    if ((WARMUP > 0)); then
        run_wrk warmup-weftd "$WEFT_URL" "$RELOAD_CONNS" "$WARMUP"
    fi
    run_wrk reload-base "$WEFT_URL" "$RELOAD_CONNS" "$DURATION"
    base_rps=${W[rps]} base_p99=${W[p99_ms]} base_err=${W[errtext]}
    ((W[non2xx] + W[sockerr] == 0)) || FAILURES+=("reload phase, no reloads: $base_err")

    : >"$TMP/reloads.log"
    rm -f "$TMP/reloader.stop"
    reloader &
    RELOADER_PID=$!
    run_wrk reload-live "$WEFT_URL" "$RELOAD_CONNS" "$DURATION"
    stop_reloader
    rel_rps=${W[rps]} rel_p99=${W[p99_ms]} rel_err=${W[errtext]}
    ((W[non2xx] + W[sockerr] == 0)) || FAILURES+=("reload phase, with reloads: $rel_err")

    n=$(wc -l <"$TMP/reloads.log")
    ok=$(grep -c '^200 .*"state" *: *"running"' "$TMP/reloads.log" || true)
    bad=$((n - ok))
    # shellcheck disable=SC2046 # one number per word
    tmed=$(median $(awk '$1 == 200 { printf "%.2f\n", $2 * 1000 }' "$TMP/reloads.log"))
    # shellcheck disable=SC2046
    tmax=$(percentile 100 $(awk '$1 == 200 { printf "%.2f\n", $2 * 1000 }' "$TMP/reloads.log"))
    printf '%-16s %12s %10s  %s\n' "" "req/s" "p99 ms" errors
    printf '%-16s %12s %10s  %s\n' "no reloads" "$base_rps" "$base_p99" "$base_err"
    printf '%-16s %12s %10s  %s\n' "with reloads" "$rel_rps" "$rel_p99" "$rel_err"
    say "p99 with/without reloads: $(ratio "$rel_p99" "$base_p99")x"
    say "reloads: $n sent in ${DURATION}s, $ok answered 200 state=running, $bad other"
    say "reload answer time under load (curl time_total): median $tmed ms, max $tmax ms"
    if ((bad > 0)); then
        FAILURES+=("reload phase: $bad reload(s) not answered 200 running, e.g.: $(grep -v '^200 ' "$TMP/reloads.log" | head -n 1)")
    fi
    ((n > 0)) || FAILURES+=("reload phase: no reload was sent")
}

phase_swap() {
    local i ver res first reply status polls reconn firsts=() replies=() cflags
    say ""
    say "== swap: rebuild hello.so with a new HELLO_VERSION, mv it over the configured path,"
    say "   POST /admin/plugins/hello/reload, poll GET /api/hello/ping until the new version answers"
    say "   ($SWAP_SAMPLES samples, idle server, poll pause ${POLL_US}us)"
    cc -std=c11 -O2 -o "$TMP/reload_latency" "$BENCH_DIR/reload_latency.c" ||
        die "cannot build bench/reload_latency.c"
    # _GNU_SOURCE as in the CMake build (hello.c uses nanosleep under -std=c11).
    cflags=(-std=c11 -shared -fPIC -O2 -D_GNU_SOURCE -I"$REPO/sdk/include")
    printf '%-7s %-12s %14s %10s %7s %7s %6s\n' sample version "new serves ms" "reply ms" status polls reconn
    for ((i = 1; i <= SWAP_SAMPLES; i++)); do
        ver=bench-$i
        cc "${cflags[@]}" -DHELLO_VERSION="\"$ver\"" "$REPO/sdk/template/hello.c" \
            -o "$TMP/plugin/.hello.so.tmp" 2>"$TMP/cc.log" ||
            die "building hello.so failed: $(cat "$TMP/cc.log")"
        mv -f "$TMP/plugin/.hello.so.tmp" "$TMP/plugin/hello.so"
        res=$("$TMP/reload_latency" "$WEFT_PORT" "$TMP/token" "$ver" 10000 "$POLL_US" 2>"$TMP/rl.err") || {
            FAILURES+=("swap sample $i ($ver): $(tr '\n' ' ' <"$TMP/rl.err") $res")
            say "sample $i: FAILED: $(cat "$TMP/rl.err")"
            continue
        }
        read -r _ first reply status polls reconn <<<"$res"
        printf '%-7s %-12s %14s %10s %7s %7s %6s\n' "$i" "$ver" "$first" "$reply" "$status" "$polls" "$reconn"
        firsts+=("$first")
        replies+=("$reply")
        ((reconn == 0)) || FAILURES+=("swap sample $i: the ping connection was dropped $reconn time(s)")
    done
    ((${#firsts[@]})) || die "no swap sample succeeded"
    SWAP_FIRST="median $(median "${firsts[@]}") ms, p90 $(percentile 90 "${firsts[@]}") ms, max $(percentile 100 "${firsts[@]}") ms"
    SWAP_REPLY="median $(median "${replies[@]}") ms, p90 $(percentile 90 "${replies[@]}") ms, max $(percentile 100 "${replies[@]}") ms"
    say "request -> new version serving: $SWAP_FIRST (${#firsts[@]} samples)"
    say "request -> reload answered:     $SWAP_REPLY"
}

# ------------------------------------------------------------------ main ---

check_args
check_tools
check_build

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX")
mkdir -p "$TMP/wrk"

start_weftd
fetch_ping
start_nginx
check_same_bytes

say "== Weft benchmark: weftd vs nginx, GET /api/hello/ping"
say "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "none yet")
if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null || true) ]]; then
    COMMIT+=" (+ local changes)"
fi
say "commit    $COMMIT"
say "machine   $NCPU cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -h | awk '/^Mem:/ { print $2 }') RAM, Linux $(uname -r)"
say "weftd     $WEFTD_VERSION, $THREADS event loops, $WEFT_URL, plugin hello $PING_VERSION"
say "nginx     $(nginx -v 2>&1 | sed 's/^nginx version: //'), $THREADS workers, $NGINX_URL"
say "wrk       $(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }'), $WRK_THREADS threads, --timeout 5s"
say "response  same body on both ($(wc -c <"$TMP/ping.body") bytes, $PING_TYPE); headers: weftd $HEAD_WEFT bytes, nginx $HEAD_NGINX bytes"
say "load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min averages before the first run; other work on the machine skews every figure)"
say "NOTE      this machine has $NCPU core(s), shared by wrk ($WRK_THREADS threads) and the server under test"
say "          (and, in the reload phase, the reload loop): absolute figures are lower than on a"
say "          machine with a separate load generator; compare the ratios, not the req/s."

for phase in $PHASES; do
    "phase_$phase"
done

say ""
if ((${#FAILURES[@]})); then
    say "== CHECKS FAILED (${#FAILURES[@]}):"
    printf '  - %s\n' "${FAILURES[@]}"
    exit 1
fi
say "== all checks passed (zero non-2xx responses, zero socket errors, every reload answered 200)"
