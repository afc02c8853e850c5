#!/usr/bin/env bash
# bench/rt_fanout.sh - realtime fan-out: weftd against a Node.js peer, 10,000
# Server-Sent Events subscribers, then 10,000 WebSocket clients on one topic;
# then a 50,000-connection attempt on weftd. One command; everything it
# starts is stopped and its temp directory removed on exit (also on error or
# Ctrl-C).
#
#   bench/rt_fanout.sh [BUILD_DIR]   (default: <repo>/build-rel when it holds
#                                     a weftd, else <repo>/build)
#
# Every run starts a fresh server (so that the memory reading is not flattered
# by memory freed in an earlier run), runs bench/rt_load on it and stops it;
# only one server is ever under load. Per run (see bench/README.md):
#   memory    server VmRSS before connecting and with every client idle
#   latency   MESSAGES publishes one at a time: ms until EVERY client has
#             message k (p50/p99/max over the messages), all deliveries too
#   sustained SUSTAIN s of publishing (closed loop, WINDOW messages not yet
#             everywhere, or RATE msgs/s): deliveries per second received
#
# Environment (defaults in brackets):
#   BUILD_DIR   see above       CONNS [10000]   MODES ["sse ws"]
#   TARGETS ["weftd node"]      RUNS [3]  rounds; each round runs every target
#                               and mode once, targets alternated
#   MESSAGES [100]  GAP_MS [10]  latency phase    SUSTAIN [10] s  WINDOW [8]
#   RATE [0]  msgs/s open loop instead of the window (0: closed loop)
#   IDLE [3] s before the idle memory reading     WORKERS [auto]  rt_load
#                                                  subscriber processes
#   BIG_CONNS [50000]  the large attempt (0: skip)  BIG_MODES ["sse ws"]
#   BIG_TARGETS [weftd]         THREADS [nproc]  weftd event loops
#   WEFT_EXTRA_INI  lines appended to weftd's generated config (e.g. realtime
#                   limits), with real newlines
#   READY_TIMEOUT [60] s        LOG_LEVEL [warn]  weftd's [log] level
#   SETTLE [2] s pause between runs               KEEP_TMP [0]  1 keeps the
#                                                  temp dir (configs, logs)
#
# Needs: cc with OpenSSL's libcrypto headers (Debian package libssl-dev),
# curl, node >= 20 and npm (the peer's `ws` module comes from
# node-peer/package-lock.json via `npm ci` when node_modules lacks it).
# Raises its soft open-file limit to the hard one; the hard limit bounds how
# many connections one process (server or rt_load worker) can hold.
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_options "$@"
NODE_DIR=$BENCH_DIR/node-peer

if [[ -n ${1:-} ]]; then
    BUILD_DIR=$1
elif [[ -z ${BUILD_DIR:-} ]]; then
    BUILD_DIR=$REPO/build
    [[ -x $REPO/build-rel/weftd ]] && BUILD_DIR=$REPO/build-rel
fi
CONNS=${CONNS:-10000}
MODES=${MODES:-sse ws}
TARGETS=${TARGETS-weftd node}
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-100}
GAP_MS=${GAP_MS:-10}
SUSTAIN=${SUSTAIN:-10}
WINDOW=${WINDOW:-8}
RATE=${RATE:-0}
IDLE=${IDLE:-3}
WORKERS=${WORKERS:-0}
BIG_CONNS=${BIG_CONNS:-50000}
BIG_MODES=${BIG_MODES:-sse ws}
BIG_TARGETS=${BIG_TARGETS-weftd}
NCPU=$(nproc)
THREADS=${THREADS:-$NCPU}
WEFT_EXTRA_INI=${WEFT_EXTRA_INI:-}
READY_TIMEOUT=${READY_TIMEOUT:-60}
LOG_LEVEL=${LOG_LEVEL:-warn}
SETTLE=${SETTLE:-2}
KEEP_TMP=${KEEP_TMP:-0}
TOPIC=bench.fan

SRV_PID=""
SRV_URL=""
SRV_PORT=""
LOAD_PID=""
FAILURES=()
SUMMARY=()
WEFTD_LOGS=()
declare -A MET=() # "<target> <mode> <key>" -> space-separated values

# Short names for the report's many lines.
say() { bench_say "$@"; }
die() { bench_die "$@"; }

# ---------------------------------------------------------------- cleanup --

stop_server() {
    [[ -n $SRV_PID ]] || return 0
    bench_stop_pid "$SRV_PID" TERM 15
    SRV_PID=""
}

# Everything this script starts, stopped on exit (bench_cleanup).
stop_all() {
    [[ -n $LOAD_PID ]] && bench_stop_pid "$LOAD_PID" TERM 5
    stop_server
}
trap 'bench_cleanup stop_all "$TMP"/srv-*.log' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers --

# uses TARGET: does any phase run that server?
uses() { [[ " $TARGETS " == *" $1 "* ]] || { ((BIG_CONNS > 0)) && [[ " $BIG_TARGETS " == *" $1 "* ]]; }; }
is_num() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# Comparisons and ratio that take "n/a" (a median of nothing).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "n/a" && b != "n/a" && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 < b + 0) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 <= b + 0) }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "n/a" && a + 0 >= b + 0) }'; }
fmt0() { awk -v a="$1" 'BEGIN { if (a == "n/a" || a == "") print "n/a"; else printf "%.0f", a }'; }

# --------------------------------------------------------------- checks ----

check_args() {
    local v
    bench_check_uints CONNS RUNS MESSAGES GAP_MS WINDOW WORKERS BIG_CONNS THREADS READY_TIMEOUT
    for v in SUSTAIN RATE IDLE SETTLE; do
        is_num "${!v}" || die "$v must be a non-negative number, not '${!v}'"
    done
    ((CONNS > 0 && RUNS > 0 && WINDOW > 0 && THREADS > 0)) ||
        die "CONNS, RUNS, WINDOW and THREADS must be positive"
    for v in $MODES $BIG_MODES; do
        [[ $v == sse || $v == ws ]] || die "unknown mode '$v' (sse, ws)"
    done
    for v in $TARGETS $BIG_TARGETS; do
        [[ $v == weftd || $v == node ]] || die "unknown target '$v' (weftd, node)"
    done
    [[ -n $TARGETS || ($BIG_CONNS -gt 0 && -n $BIG_TARGETS) ]] || die "nothing to run"
}

check_tools() {
    local missing=() pkgs=()
    command -v cc >/dev/null || { missing+=(cc); pkgs+=(gcc); }
    command -v curl >/dev/null || { missing+=(curl); pkgs+=(curl); }
    [[ -f /usr/include/openssl/sha.h ]] || { missing+=(openssl/sha.h); pkgs+=(libssl-dev); }
    if uses node; then
        command -v node >/dev/null || { missing+=(node); pkgs+=(nodejs); }
        if [[ ! -d $NODE_DIR/node_modules/ws ]]; then
            command -v npm >/dev/null || { missing+=(npm); pkgs+=(npm); }
        fi
    fi
    if ((${#missing[@]})); then
        {
            say "missing: ${missing[*]}"
            say "Debian package(s): $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
            say "This script installs no system package (as root: apt-get install -y <packages above>)."
        } >&2
        exit 1
    fi
    if uses node; then
        NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
        ((NODE_MAJOR >= 20)) || die "node >= 20 needed, found $(node --version 2>&1)"
    fi
}

check_build() {
    WEFTD=$BUILD_DIR/weftd
    uses weftd || return 0
    [[ -x $WEFTD ]] || die "no weftd at $WEFTD: build first (cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-rel) or pass BUILD_DIR"
    if grep -qs '^CMAKE_BUILD_TYPE:STRING=Debug$' "$BUILD_DIR/CMakeCache.txt"; then
        say "warning: $BUILD_DIR is a Debug build; use an optimised build (RelWithDebInfo) for figures" >&2
    fi
    WEFTD_VERSION=$("$WEFTD" --version 2>&1 | head -n 1) || die "'$WEFTD --version' failed: $WEFTD_VERSION"
    WEFTD_BUILT=$(date -u -r "$WEFTD" +%Y-%m-%dT%H:%M:%SZ)
}

# Open-file limits: the soft limit up to the hard one (raising the hard one
# needs CAP_SYS_RESOURCE). Every process we start inherits it.
raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard == unlimited ]]; then
        ulimit -n 1048576 2>/dev/null || true
    else
        ulimit -n "$hard"
    fi
    NOFILE=$(ulimit -n)
    if [[ $NOFILE != unlimited ]] && ((NOFILE < CONNS + 200)); then
        die "open-file limit $NOFILE is below CONNS + 200 = $((CONNS + 200)): one server process must hold every connection (raise the hard limit: ulimit -Hn, or run as a user with CAP_SYS_RESOURCE)"
    fi
}

node_deps() {
    uses node || return 0
    if [[ ! -d $NODE_DIR/node_modules/ws ]]; then
        say "(installing the node peer's modules: npm ci in bench/node-peer)"
        (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
            die "npm ci in $NODE_DIR failed: $(tail -n 20 "$TMP/npm.log")"
    fi
    WS_VERSION=$(node -p "require('$NODE_DIR/node_modules/ws/package.json').version" 2>/dev/null || echo '?')
}

build_load() {
    cc -std=c11 -O2 -Wall -o "$TMP/rt_load" "$BENCH_DIR/rt_load.c" -lcrypto 2>"$TMP/cc.log" ||
        die "cannot build bench/rt_load.c: $(cat "$TMP/cc.log")"
}

# ---------------------------------------------------------------- servers --

write_weft_ini() {
    local maxc=$1
    {
        echo "; generated by bench/rt_fanout.sh"
        bench_weft_ini_head "$SRV_PORT" "max_connections = $maxc"
        cat <<EOF

[database]
enabled = false

[admin]
token = $TOKEN

[plugins]
watch = false

[realtime]
public_topics = bench.>
EOF
    } >"$TMP/weft.ini"
    if [[ -n $WEFT_EXTRA_INI ]]; then
        printf '\n; WEFT_EXTRA_INI\n%s\n' "$WEFT_EXTRA_INI" >>"$TMP/weft.ini"
    fi
}

check_weft_config() {
    if ! "$WEFTD" --check-config "$TMP/weft.ini" >"$TMP/check.log" 2>&1; then
        if grep -qi 'realtime\|public_topics' "$TMP/check.log"; then
            die "this weftd ($WEFTD, built $WEFTD_BUILT) does not know [realtime] public_topics: it predates the realtime endpoints of issue 4; rebuild it ($(cat "$TMP/check.log"))"
        fi
        die "weftd --check-config rejected the generated config: $(cat "$TMP/check.log")"
    fi
}

# Does the running server speak the protocol? Clear failure when not.
probe_endpoints() {
    local name=$1 code
    # An SSE stream (and a WebSocket) never ends: curl gives up after 0.5 s and
    # still prints the status.
    code=$(bench_http_code -m 0.5 -H 'Accept: text/event-stream' "$SRV_URL/api/realtime?topic=$TOPIC")
    [[ $code == 200 ]] ||
        die "$name does not serve GET /api/realtime?topic=$TOPIC (answered ${code:-nothing}; 000 = no answer): it needs the realtime endpoints of issue 4 (rebuild: cmake --build $(basename "$BUILD_DIR"))"
    code=$(bench_http_code -m 0.5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
        -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$SRV_URL/api/ws")
    [[ $code == 101 ]] ||
        die "$name does not upgrade GET /api/ws to a WebSocket (answered ${code:-nothing}, want 101)"
    code=$(curl -s -o "$TMP/probe.body" -m 5 -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "{\"topic\":\"$TOPIC\",\"data\":{\"t\":0,\"n\":-1}}" \
        "$SRV_URL/admin/publish" 2>/dev/null || true)
    [[ $code == 2* ]] ||
        die "$name: POST /admin/publish answered ${code:-nothing} (want 202): $(head -c 300 "$TMP/probe.body" 2>/dev/null)"
}

start_weftd() {
    local maxc=$1 unset_env=() v
    for v in $(compgen -e); do
        [[ $v == WEFT_* ]] && unset_env+=(-u "$v")
    done
    mkdir -p "$TMP/var"
    for _ in 1 2 3; do
        SRV_PORT=$(bench_pick_port) || die "no free loopback port found"
        SRV_URL=http://127.0.0.1:$SRV_PORT
        write_weft_ini "$maxc"
        check_weft_config
        env "${unset_env[@]}" "$WEFTD" --config "$TMP/weft.ini" >"$TMP/srv-weftd.log" 2>&1 &
        SRV_PID=$!
        if bench_wait_http "$SRV_PID" "$SRV_URL/readyz" "$READY_TIMEOUT"; then
            probe_endpoints weftd
            return 0
        fi
        if kill -0 "$SRV_PID" 2>/dev/null; then
            die "weftd not ready after ${READY_TIMEOUT}s (GET /readyz answered '${HTTP_CODE:-nothing}')"
        fi
        wait "$SRV_PID" 2>/dev/null || true
        SRV_PID=""
        grep -qi 'in use' "$TMP/srv-weftd.log" || break
        say "(port $SRV_PORT was taken, trying another)" >&2
    done
    die "weftd exited during start-up: $(tail -n 5 "$TMP/srv-weftd.log")"
}

start_node() {
    for _ in 1 2 3; do
        SRV_PORT=$(bench_pick_port) || die "no free loopback port found"
        SRV_URL=http://127.0.0.1:$SRV_PORT
        (cd "$NODE_DIR" && exec env NODE_ENV=production PORT="$SRV_PORT" ADMIN_TOKEN="$TOKEN" \
            PUBLIC_PREFIX=bench. node rt_peer.js) >"$TMP/srv-node.log" 2>&1 &
        SRV_PID=$!
        if bench_wait_http "$SRV_PID" "$SRV_URL/healthz" 30; then
            probe_endpoints node
            return 0
        fi
        kill -0 "$SRV_PID" 2>/dev/null && die "node did not answer within 30 s"
        wait "$SRV_PID" 2>/dev/null || true
        SRV_PID=""
        grep -qi 'EADDRINUSE' "$TMP/srv-node.log" || break
        say "(port $SRV_PORT was taken, trying another)" >&2
    done
    die "node exited during start-up: $(tail -n 5 "$TMP/srv-node.log")"
}

# ------------------------------------------------------------------- runs ---

# Sets LOG_LINES and LOG_DIGEST (the 5 most frequent lines of a server log,
# digits replaced by N, with counts), then keeps only the first and last
# 1000 lines of a log above 10 MB (a server looping on an error can write
# hundreds of MB).
log_digest() {
    local f=$1
    LOG_LINES=0 LOG_DIGEST=""
    [[ -s $f ]] || return 0
    LOG_LINES=$(wc -l <"$f")
    LOG_DIGEST=$(sed -E 's/[0-9]+/N/g' "$f" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^ */       /' || true)
    if (($(stat -c %s "$f") > 10 * 1024 * 1024)); then
        { head -n 1000 "$f"; echo "[... cut by rt_fanout.sh ...]"; tail -n 1000 "$f"; } >"$f.cut"
        mv "$f.cut" "$f"
    fi
}

declare -A R=()

# run_one TARGET MODE CONNS TAG [rt_load options...]: fresh server, one
# rt_load run, server stopped; fills R[] from the RESULT line.
run_one() {
    local target=$1 mode=$2 conns=$3 tag=$4 maxc kv k v rc=0 fdmax=0 n
    shift 4
    maxc=$((conns + 1000))
    if [[ $target == weftd ]]; then start_weftd "$maxc"; else start_node; fi
    SRV_START_LIMIT=$(awk '/^Max open files/ { print $4 }' "/proc/$SRV_PID/limits" 2>/dev/null || echo '?')
    "$TMP/rt_load" --mode "$mode" --port "$SRV_PORT" --conns "$conns" --topic "$TOPIC" \
        --token "$TOKEN" --label "$target" --server-pid "$SRV_PID" --messages "$MESSAGES" \
        --gap-ms "$GAP_MS" --sustain "$SUSTAIN" --window "$WINDOW" --rate "$RATE" \
        --idle "$IDLE" --workers "$WORKERS" --quiet "$@" \
        >"$TMP/runs/$tag.out" 2>"$TMP/runs/$tag.err" &
    LOAD_PID=$!
    # the server's open descriptors, sampled once a second (largest seen)
    while kill -0 "$LOAD_PID" 2>/dev/null; do
        n=$(find "/proc/$SRV_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || echo 0)
        ((n > fdmax)) && fdmax=$n
        sleep 1
    done
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    SRV_HWM=$(awk '/^VmHWM/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo '?')
    SRV_ALIVE=yes
    kill -0 "$SRV_PID" 2>/dev/null || SRV_ALIVE=no
    stop_server
    log_digest "$TMP/srv-$target.log"
    if ((rc == 3)) || ! grep -q '^RESULT ' "$TMP/runs/$tag.out"; then
        cat "$TMP/runs/$tag.err" >&2
        die "rt_load against $target ($mode) failed (exit $rc)"
    fi
    R=()
    for kv in $(grep '^RESULT ' "$TMP/runs/$tag.out" | head -n 1 | cut -d' ' -f2-); do
        k=${kv%%=*} v=${kv#*=}
        R[$k]=$v
    done
    R[rc]=$rc
    R[fdmax]=$fdmax
    R[hwm_kib]=$SRV_HWM
    R[alive]=$SRV_ALIVE
    R[nofile]=$SRV_START_LIMIT
    R[log_lines]=$LOG_LINES
    R[log_digest]=$LOG_DIGEST
    if [[ $target == weftd && -n $LOG_DIGEST && $tag != big-* ]]; then
        WEFTD_LOGS+=("$tag: $LOG_LINES line(s)")
        WEFTD_LOGS+=("$LOG_DIGEST")
    fi
    if [[ ${R[other_cores]:-0} != -* ]] && awk -v o="${R[other_cores]}" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }'; then
        MAX_OTHER=${R[other_cores]}
    fi
    sleep "$SETTLE"
}

row_head() {
    printf '%-3s %-6s %-4s %6s %6s | %8s %8s %8s %8s | %9s %6s %5s %5s %5s %9s | %7s | %s\n' \
        run target mode conns conn_s "p50 ms" "p99 ms" "max ms" "all p99" \
        "fanout/s" "pub/s" srv load other "per srvCPU" "B/conn" "lost / disconnects / failed"
}

row() {
    printf '%-3s %-6s %-4s %6s %6s | %8s %8s %8s %8s | %9s %6s %5s %5s %5s %9s | %7s | %s\n' \
        "$1" "$2" "$3" "${R[conns]}" "${R[connect_s]}" "${R[p50_ms]}" "${R[p99_ms]}" "${R[max_ms]}" \
        "${R[all_p99_ms]}" "${R[fanout_msgs_per_s]}" "${R[pub_msgs_per_s]}" "${R[srv_cores]}" \
        "${R[load_cores]}" "${R[other_cores]}" "${R[fanout_per_srv_cpu_s]}" "${R[rss_per_conn_bytes]}" \
        "$((R[lost_lat] + R[lost_sus])) / ${R[disconnects]} / ${R[failed]}"
}

record() {
    local key=$1 k
    for k in p50_ms p99_ms max_ms all_p50_ms all_p99_ms fanout_msgs_per_s fanout_per_srv_cpu_s \
        rss_per_conn_bytes srv_cores cli_us_per_deliv srv_us_per_deliv sus_p99_ms; do
        MET["$key $k"]+=" ${R[$k]}"
    done
}

med() {
    # shellcheck disable=SC2086 # one number per word
    bench_median ${MET["$1 $2"]:-}
}

phase_main() {
    local r i n t mode targets=() tag
    read -ra targets <<<"$TARGETS"
    n=${#targets[@]}
    ((n > 0)) || return 0
    say ""
    say "== fan-out at $CONNS connections: every target and mode once per round, $RUNS rounds,"
    say "   targets alternated; a fresh server per run. Columns: p50/p99/max = ms until EVERY"
    say "   client had a message (over $MESSAGES messages published one at a time); all p99 = over"
    say "   all (client, message) deliveries; fanout/s = deliveries per second in ${SUSTAIN}s of"
    say "   sustained publishing ($(if [[ $RATE != 0 ]]; then echo "open loop, $RATE msgs/s"; else echo "closed loop, window $WINDOW"; fi)); srv/load/other = CPU cores used then by the"
    say "   server, rt_load and everything else; per srvCPU = deliveries per server CPU-second;"
    say "   B/conn = server RSS growth per idle subscriber"
    row_head
    for ((r = 1; r <= RUNS; r++)); do
        for ((i = 0; i < n; i++)); do
            t=${targets[$(((r - 1 + i) % n))]}
            for mode in $MODES; do
                tag=$t-$mode-$r
                run_one "$t" "$mode" "$CONNS" "$tag"
                row "$r" "$t" "$mode"
                record "$t $mode"
                [[ ${R[alive]} == yes ]] || FAILURES+=("$t $mode run $r: the server died")
                if ((R[rc] != 0)); then
                    FAILURES+=("$t $mode run $r: $(grep -h 'connections:' "$TMP/runs/$tag.err" | head -n 1 | sed 's/^ *//') lost $((R[lost_lat] + R[lost_sus])), disconnects ${R[disconnects]}, publish failures ${R[pub_fail]}")
                fi
            done
        done
    done
    say ""
    say "medians over $RUNS runs (CPU µs per delivery from the latency phase: what one client"
    say "receiving one message costs the server, and costs rt_load):"
    printf '  %-6s %-4s %8s %8s %8s %8s | %10s %10s | %7s | %7s %7s\n' target mode "p50 ms" "p99 ms" "max ms" \
        "all p99" "fanout/s" "per srvCPU" "B/conn" "srv µs" "load µs"
    for t in "${targets[@]}"; do
        for mode in $MODES; do
            printf '  %-6s %-4s %8s %8s %8s %8s | %10s %10s | %7s | %7s %7s\n' "$t" "$mode" \
                "$(med "$t $mode" p50_ms)" "$(med "$t $mode" p99_ms)" "$(med "$t $mode" max_ms)" \
                "$(med "$t $mode" all_p99_ms)" "$(fmt0 "$(med "$t $mode" fanout_msgs_per_s)")" \
                "$(fmt0 "$(med "$t $mode" fanout_per_srv_cpu_s)")" "$(fmt0 "$(med "$t $mode" rss_per_conn_bytes)")" \
                "$(med "$t $mode" srv_us_per_deliv)" "$(med "$t $mode" cli_us_per_deliv)"
        done
    done
    targets_check
}

targets_check() {
    local mode p99 mem fw fn fcw fcn rt rc m
    [[ " $TARGETS " == *" weftd "* ]] || return 0
    say "targets (issue 4), weftd at $CONNS connections:"
    for mode in $MODES; do
        p99=$(med "weftd $mode" p99_ms)
        mem=$(med "weftd $mode" rss_per_conn_bytes)
        if lt "$p99" 100; then m=MET; else m="NOT MET"; fi
        say "  $mode  p99 until every client had it < 100 ms:   $m ($p99 ms)"
        SUMMARY+=("$mode: weftd p99 (every client) $p99 ms: target < 100 ms: $m")
        if le "$mem" 8192; then m=MET; else m="NOT MET"; fi
        say "  $mode  memory per idle connection <= 8 KiB:      $m ($(fmt0 "$mem") bytes)"
        SUMMARY+=("$mode: weftd $(fmt0 "$mem") bytes per idle connection: target <= 8192: $m")
        if [[ " $TARGETS " == *" node "* ]]; then
            fw=$(med "weftd $mode" fanout_msgs_per_s) fn=$(med "node $mode" fanout_msgs_per_s)
            fcw=$(med "weftd $mode" fanout_per_srv_cpu_s) fcn=$(med "node $mode" fanout_per_srv_cpu_s)
            rt=$(ratio "$fw" "$fn") rc=$(ratio "$fcw" "$fcn")
            if ge "$rt" 5; then m=MET; else m="NOT MET"; fi
            say "  $mode  fan-out rate >= 5 x node:                 $m (weftd/node = $rt; per server CPU-s: $rc)"
            SUMMARY+=("$mode: fan-out weftd $(fmt0 "$fw")/s, node $(fmt0 "$fn")/s: weftd/node = $rt (per server CPU-s $rc): target >= 5: $m")
        fi
    done
}

phase_big() {
    local t mode tag lim
    ((BIG_CONNS > 0)) && [[ -n $BIG_TARGETS ]] || return 0
    say ""
    say "== $BIG_CONNS connections (one run each; what limits it)"
    lim=$(ulimit -Hn)
    say "   open-file limit: soft $(ulimit -n), hard $lim per process$(
        if [[ $lim != unlimited ]] && ((lim < BIG_CONNS + 100)); then
            printf ' -- below %d: one server process cannot hold them all' "$BIG_CONNS"
        fi)"
    say "   ephemeral ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range) per source address towards one"
    say "   server port; rt_load spreads the clients over $(( (BIG_CONNS + 24999) / 25000 )) source address(es) (127.0.0.2..) and"
    say "   $(( (BIG_CONNS + 14999) / 15000 )) subscriber processes (the open-file limit is per process)"
    row_head
    for t in $BIG_TARGETS; do
        for mode in $BIG_MODES; do
            tag=big-$t-$mode
            run_one "$t" "$mode" "$BIG_CONNS" "$tag" --stall 15 --workers 0
            row big "$t" "$mode"
            say "     $(grep -h 'connections:' "$TMP/runs/$tag.err" | head -n 1 | sed 's/^ *//')"
            grep -h 'first error' "$TMP/runs/$tag.err" | head -n 1 | sed 's/^ */     /' || true
            say "     server: open-file limit ${R[nofile]}, most descriptors seen ${R[fdmax]}, peak RSS $(awk -v k="${R[hwm_kib]}" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.0f MiB", k / 1024; else print "?" }'), alive at the end: ${R[alive]}"
            if [[ -n ${R[log_digest]} ]]; then
                say "     $t log: ${R[log_lines]} line(s); the most frequent (digits as N):"
                say "${R[log_digest]}"
            fi
            big_verdict "$t" "$mode"
        done
    done
}

# One sentence on what stopped the large run.
big_verdict() {
    local t=$1 mode=$2 why=() joined
    if ((R[conns] >= BIG_CONNS)); then
        why+=("all $BIG_CONNS subscribed")
    fi
    [[ ${R[nofile]} =~ ^[0-9]+$ ]] && ((R[fdmax] >= R[nofile] - 16)) &&
        why+=("the server reached its open-file limit (${R[nofile]}): RLIMIT_NOFILE, hard limit, not raisable here")
    ((R[emfile] > 0)) && why+=("rt_load ran out of descriptors (EMFILE x ${R[emfile]})")
    ((R[addrnotavail] > 0)) && why+=("ephemeral ports ran out (EADDRNOTAVAIL x ${R[addrnotavail]})")
    ((R[refused] > 0)) && why+=("connections refused x ${R[refused]} (listen backlog or server gone)")
    ((R[closed_early] > 0)) && why+=("${R[closed_early]} closed by the server before subscribing (max_connections, or accept-and-close at the fd limit)")
    ((R[unanswered] > 0)) && why+=("${R[unanswered]} connected but never answered (left in the accept queue)")
    ((R[disconnects] > 0)) && why+=("${R[disconnects]} subscribers dropped later")
    [[ ${R[alive]} == yes ]] || why+=("the server died")
    ((${#why[@]})) || why+=("nothing obvious: see the rt_load lines above")
    joined=$(IFS=';'; echo "${why[*]}")
    say "     => ${joined//;/; }"
    SUMMARY+=("$BIG_CONNS $mode on $t: ${R[conns]} subscribed; fan-out $(fmt0 "${R[fanout_msgs_per_s]}")/s, p99 ${R[p99_ms]} ms, $(fmt0 "${R[rss_per_conn_bytes]}") B/conn; ${why[0]}")
}

# ------------------------------------------------------------------ main ---

check_args
check_tools
check_build
raise_nofile

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-rtbench.XXXXXX")
mkdir -p "$TMP/runs"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
node_deps
build_load
if uses weftd; then
    # before any figure: does this weftd know the realtime settings at all?
    SRV_PORT=8080
    write_weft_ini $((CONNS + 1000))
    check_weft_config
fi

bench_header "realtime fan-out (SSE and WebSocket), weftd vs a Node.js peer"
if uses weftd; then
    say "weftd     $WEFTD_VERSION ($WEFTD, built $WEFTD_BUILT), $THREADS event loops, [database] enabled = false"
fi
if uses node; then
    say "node      $(node --version), ws $WS_VERSION, one process (bench/node-peer/rt_peer.js)"
fi
say "rt_load   bench/rt_load.c (cc -O2), one epoll loop per subscriber process (auto: 1 per 15000 connections)"
say "limits    open files $(ulimit -n) (hard $(ulimit -Hn)); ephemeral ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)"
say "load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min averages before the first run)"
say "NOTE      $NCPU core(s) shared by rt_load and the server under test; latencies include the time"
say "          rt_load takes to read every socket (its CPU per delivery is printed)."

phase_main
phase_big

say ""
bench_summary "${SUMMARY[@]}"
if ((${#WEFTD_LOGS[@]})); then
    say "weftd log ([log] level $LOG_LEVEL), per run: the most frequent lines (digits as N):"
    printf '  %s\n' "${WEFTD_LOGS[@]}"
elif uses weftd; then
    say "weftd log ([log] level $LOG_LEVEL): empty in every run"
fi
say "most CPU taken by other processes during one sustained phase: $MAX_OTHER of $NCPU cores"
bench_warn_if_busy
bench_fail_if_any "${FAILURES[@]}"
say "== all checks passed (every client subscribed, every publish answered 2xx, no message lost, no disconnect)"
