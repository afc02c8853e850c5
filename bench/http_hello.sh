#!/usr/bin/env bash
# bench/http_hello.sh - weftd against nginx on GET /api/hello/ping, then the
# cost of plugin reloads. One command, nothing installed, everything it starts
# is stopped and its temp directory removed on exit (also on error or Ctrl-C).
#
#   bench/http_hello.sh [BUILD_DIR]          (default: <repo>/build)
#
# Phases (see bench/README.md for what each one measures):
#   throughput  wrk at 64 and 256 connections, weftd and nginx alternating
#   reload      p99 at 64 connections: alone, beside a control loop, beside a
#               reload every 200 ms (zero non-2xx and socket errors required)
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
#   DATABASE [none]  none: [database] enabled = false (hello needs none);
#                    embedded: weftd's private PostgreSQL cluster, as in production
#   KEEP_TMP [0]  1 keeps the temp dir (configs, logs, raw wrk output)
#
# Needs: wrk (Debian package `wrk`), nginx (Debian package `nginx-light`),
# curl and cc; the project's `make` installs all of them. This script never
# installs anything.
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_options "$@"
BENCH_HTTP_TIMEOUT=1 # its readiness probes have always given up after 1 s

BUILD_DIR=${1:-${BUILD_DIR:-$REPO/build}}
# A Debug build measures the compiler's -O0, not weftd: say so loudly.
if grep -qs '^CMAKE_BUILD_TYPE:STRING=Debug$' "$BUILD_DIR/CMakeCache.txt"; then
    echo "warning: $BUILD_DIR is a Debug build; use RelWithDebInfo (make build) for figures" >&2
fi
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
DATABASE=${DATABASE:-none}

NGINX_PID=""
NGINX_WORKERS=""
RELOADER_PID=""
WRK_PID=""
FAILURES=()

# Short names for the report's many lines.
say() { bench_say "$@"; }
die() { bench_die "$@"; }

# ---------------------------------------------------------------- cleanup --

# Ask the reload loop to stop after its current request, so that no reload
# is left half-sent; signal it only if it does not finish within 15 s.
stop_reloader() {
    local i
    [[ -n $RELOADER_PID ]] || return 0
    touch "$TMP/reloader.stop"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$RELOADER_PID" 2>/dev/null || break
        sleep 0.1
    done
    bench_stop_pid "$RELOADER_PID" TERM 5
    RELOADER_PID=""
}

# Everything this script starts, stopped on exit (bench_cleanup).
stop_all() {
    local pid
    [[ -n $WRK_PID ]] && bench_stop_pid "$WRK_PID" TERM 5
    stop_reloader
    if [[ -n $NGINX_PID ]]; then
        bench_stop_pid "$NGINX_PID" TERM 5
        # Workers outlive a SIGKILLed master; stop the ones we saw, by pid.
        for pid in $NGINX_WORKERS; do
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        done
    fi
    [[ -n $WEFTD_PID ]] && bench_stop_pid "$WEFTD_PID" TERM 15
}
trap 'bench_cleanup stop_all "$TMP/weftd.log" "$TMP/nginx-error.log"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers --

# Nearest-rank percentile: percentile P VALUES...
percentile() {
    local p=$1
    shift
    (($#)) || { echo n/a; return 0; }
    printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ a[NR] = $1 }
        END { i = int(p / 100 * NR); if (i < p / 100 * NR) i++; if (i < 1) i = 1;
              printf "%.2f\n", a[i] }'
}

# --------------------------------------------------------------- checks ----

check_tools() {
    local missing=() pkgs=()
    PATH=$PATH:/usr/sbin:/sbin
    command -v wrk >/dev/null || { missing+=(wrk); pkgs+=(wrk); }
    command -v nginx >/dev/null || { missing+=(nginx); pkgs+=(nginx-light); }
    command -v curl >/dev/null || { missing+=(curl); pkgs+=(curl); }
    if [[ " $PHASES " == *" swap "* ]]; then
        command -v cc >/dev/null || { missing+=(cc); pkgs+=(gcc); }
    fi
    if ((${#missing[@]})); then
        {
            say "missing tool(s): ${missing[*]}"
            say "They come from the Debian package(s): ${pkgs[*]}."
            say "This script installs nothing: run the project's 'make' (it installs them),"
            say "or as root: apt-get install -y ${pkgs[*]}"
        } >&2
        exit 1
    fi
}

check_args() {
    local v c
    bench_check_uints DURATION WARMUP RUNS WRK_THREADS THREADS RELOAD_CONNS SWAP_SAMPLES \
        POLL_US READY_TIMEOUT
    ((DURATION > 0 && RUNS > 0 && WRK_THREADS > 0 && THREADS > 0)) ||
        die "DURATION, RUNS, WRK_THREADS and THREADS must be positive"
    for c in $CONNS $RELOAD_CONNS; do
        if ! bench_is_uint "$c" || ((c < WRK_THREADS)); then
            die "connection counts must be integers >= WRK_THREADS ($WRK_THREADS): '$c'"
        fi
    done
    [[ $RELOAD_INTERVAL =~ ^[0-9]*\.?[0-9]+$ ]] || die "RELOAD_INTERVAL must be seconds, e.g. 0.2"
    RELOAD_INTERVAL_US=$(awk -v s="$RELOAD_INTERVAL" 'BEGIN { printf "%d", s * 1000000 }')
    [[ $DATABASE == none || $DATABASE == embedded ]] ||
        die "DATABASE must be 'none' or 'embedded', not '$DATABASE'"
    for v in $PHASES; do
        [[ $v == throughput || $v == reload || $v == swap ]] ||
            die "unknown phase '$v' (throughput, reload, swap)"
    done
}

check_build() {
    WEFTD=$BUILD_DIR/weftd
    HELLO_SO=$BUILD_DIR/plugins/hello.so
    [[ -x $WEFTD ]] || die "no weftd at $WEFTD: build first (cmake -S . -B build && cmake --build build) or pass BUILD_DIR"
    [[ -f $HELLO_SO ]] || die "no hello plugin at $HELLO_SO: build first or pass BUILD_DIR"
    WEFTD_VERSION=$("$WEFTD" --version 2>&1 | head -n 1) || die "'$WEFTD --version' failed: $WEFTD_VERSION"
}

# ----------------------------------------------------------------- weftd ---

write_weft_ini() {
    {
        echo "; generated by bench/http_hello.sh"
        bench_weft_ini_head "$WEFT_PORT"
        cat <<EOF

[database]
; hello needs no database; DATABASE=embedded runs weftd's private cluster.
enabled = $([[ $DATABASE == embedded ]] && echo true || echo false)

[admin]
token = $(cat "$TMP/token")

[plugins]
watch = false

[plugin.hello]
path = $TMP/plugin/hello.so
enabled = true
EOF
    } >"$TMP/weft.ini"
}

start_weftd() {
    mkdir -p "$TMP/plugin"
    # Run as root, weftd runs the embedded PostgreSQL as 'postgres', which
    # must be able to reach data_dir inside our (mode 700) temp dir.
    [[ $DATABASE == embedded ]] && chmod 711 "$TMP"
    cp "$HELLO_SO" "$TMP/plugin/hello.so"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TMP/token"
    printf 'Authorization: Bearer %s\n' "$(cat "$TMP/token")" >"$TMP/auth.header"
    chmod 600 "$TMP/token" "$TMP/auth.header"
    bench_start_weftd write_weft_ini
}

# Fetch GET /api/hello/ping from weftd: the bytes nginx will serve.
fetch_ping() {
    local code
    code=$(curl -sS -m 5 -D "$TMP/ping.head" -o "$TMP/ping.body" -w '%{http_code}' \
        "$WEFT_URL/api/hello/ping") || die "GET /api/hello/ping on weftd failed"
    [[ $code == 200 ]] || die "GET /api/hello/ping on weftd answered $code: $(head -c 300 "$TMP/ping.body")"
    PING_TYPE=$(tr -d '\r' <"$TMP/ping.head" | sed -n 's/^[Cc]ontent-[Tt]ype: *//p' | tail -n 1)
    PING_TYPE=${PING_TYPE:-application/json}
    PING_VERSION=$(sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p' "$TMP/ping.body")
}

# ----------------------------------------------------------------- nginx ---

write_nginx_conf() {
    local body
    # Keep every byte (a trailing newline too); escape for a '...' string.
    body=$(cat "$TMP/ping.body"; printf x)
    body=${body%x}
    body=${body//\\/\\\\}
    body=${body//\'/\\\'}
    body=${body//$'\n'/\\n}
    body=${body//$'\r'/\\r}
    body=${body//$'\t'/\\t}
    body=${body//\$/\$\{dollar\}}
    cat >"$TMP/nginx/nginx.conf" <<EOF
# generated by bench/http_hello.sh
worker_processes $THREADS;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx-error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    # A literal \$ in the body (nginx has no escape for it in strings).
    geo \$dollar { default "\$"; }

    server {
        # weftd binds one socket per loop with SO_REUSEPORT; so does this.
        listen 127.0.0.1:$NGINX_PORT reuseport;
        location = /api/hello/ping {
            default_type $PING_TYPE;
            return 200 '$body';
        }
    }
}
EOF
}

start_nginx() {
    mkdir -p "$TMP/nginx"
    for _ in 1 2 3; do
        NGINX_PORT=$(bench_pick_port "${WEFT_PORT:-}") || die "no free loopback port found"
        NGINX_URL=http://127.0.0.1:$NGINX_PORT
        write_nginx_conf
        nginx -t -q -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx-error.log" ||
            die "nginx -t rejected the generated config ($TMP/nginx/nginx.conf)"
        nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx-error.log" &
        NGINX_PID=$!
        if bench_wait_http "$NGINX_PID" "$NGINX_URL/api/hello/ping" 10; then
            NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ' || true)
            return 0
        fi
        kill -0 "$NGINX_PID" 2>/dev/null && die "nginx did not answer within 10 s"
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=""
        grep -qi 'in use' "$TMP/nginx-error.log" || break
        say "(port $NGINX_PORT was taken, trying another)" >&2
    done
    die "nginx exited during start-up"
}

check_same_bytes() {
    curl -sS -m 5 -o "$TMP/nginx.body" "$NGINX_URL/api/hello/ping" || die "GET on nginx failed"
    cmp -s "$TMP/ping.body" "$TMP/nginx.body" ||
        die "nginx does not return the bytes weftd returned (see $TMP/nginx/nginx.conf)"
    HEAD_WEFT=$(curl -s -o /dev/null -w '%{size_header}' "$WEFT_URL/api/hello/ping")
    HEAD_NGINX=$(curl -s -o /dev/null -w '%{size_header}' "$NGINX_URL/api/hello/ping")
}

# ------------------------------------------------------------------- wrk ---

WRK_SEQ=0
declare -A W

# CPU accounting (bench_cpu_sample, bench_child_ms, bench_cores), because
# the cores are shared with whatever else runs on the machine.

# Sets PID_TICKS: user+system jiffies of the pids and their reaped children.
pid_ticks() {
    local pid stat f
    PID_TICKS=0
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        read -r stat <"/proc/$pid/stat" || continue
        read -ra f <<<"${stat##*) }"
        PID_TICKS=$((PID_TICKS + f[11] + f[12] + f[13] + f[14]))
    done
}

# run_wrk NAME URL CONNS SECONDS: fills W[...] from the summary.lua line,
# plus the CPU (in cores) the server, wrk and everything else used meanwhile.
run_wrk() {
    local name=$1 url=$2 conns=$3 secs=$4 out pids b0 a0 s0 r0 c0 srv wrk rel all other
    WRK_SEQ=$((WRK_SEQ + 1))
    out=$TMP/wrk/$(printf '%03d' "$WRK_SEQ")-$name-c$conns.txt
    pids=$WEFTD_PID
    [[ $url == "$NGINX_URL" ]] && pids="$NGINX_PID $NGINX_WORKERS"
    # shellcheck disable=SC2086 # pid lists
    { bench_cpu_sample; pid_ticks $pids; s0=$PID_TICKS; pid_ticks $RELOADER_PID; r0=$PID_TICKS; }
    bench_child_ms
    c0=$CHILD_MS b0=$CPU_BUSY a0=$CPU_ALL
    # In the background + wait: a foreground wrk would defer Ctrl-C (bash
    # runs the INT trap only when a foreground child dies of the signal).
    wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --timeout 5s --latency \
        -s "$BENCH_DIR/lua/summary.lua" "$url/api/hello/ping" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed: $(cat "$out")"
    WRK_PID=""
    bench_child_ms
    # shellcheck disable=SC2086
    { bench_cpu_sample; pid_ticks $pids; srv=$((PID_TICKS - s0)); pid_ticks $RELOADER_PID; rel=$((PID_TICKS - r0)); }
    wrk=$(((CHILD_MS - c0) * CLK_TCK / 1000))
    all=$((CPU_ALL - a0))
    bench_wrk_result "$out" W
    W[srv_cores]=$(bench_cores "$srv" "$all")
    W[wrk_cores]=$(bench_cores "$wrk" "$all")
    W[rel_cores]=$(bench_cores "$rel" "$all")
    # The rest: other processes, and kernel (softirq) work on our loopback
    # traffic that was not charged to our processes; < 0.05 when quiet.
    other=$((CPU_BUSY - b0 - srv - wrk - rel))
    ((other > 0)) || other=0
    W[other_cores]=$(bench_cores "$other" "$all")
    W[req_cpu_s]=$(awk -v r="${W[requests]}" -v t="$srv" -v hz="$CLK_TCK" \
        'BEGIN { printf "%.0f", (t > 0 ? r / (t / hz) : 0) }')
    if ((W[non2xx] + W[sockerr] == 0)); then
        W[errtext]=none
    else
        W[errtext]="non2xx ${W[non2xx]}, socket errors ${W[sockerr]} (connect ${W[err_connect]} read ${W[err_read]} write ${W[err_write]} timeout ${W[err_timeout]})"
    fi
    awk -v o="${W[other_cores]}" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }' && MAX_OTHER=${W[other_cores]}
    return 0
}

row_head() { printf '%-5s %-4s %-6s %10s %8s %6s %6s %6s %10s  %s\n' conns run server "req/s" "p99 ms" \
    "srv" "wrk" "other" "req/cpu-s" errors; }
row() { printf '%-5s %-4s %-6s %10s %8s %6s %6s %6s %10s  %s\n' "$1" "$2" "$3" "${W[rps]}" "${W[p99_ms]}" \
    "${W[srv_cores]}" "${W[wrk_cores]}" "${W[other_cores]}" "${W[req_cpu_s]}" "${W[errtext]}"; }

# ---------------------------------------------------------------- phases ---

phase_throughput() {
    local c r srv url rps_w rps_n eff_w eff_n
    declare -gA MED_W MED_N EFF_W EFF_N
    say ""
    say "== throughput: GET /api/hello/ping, wrk -t$WRK_THREADS, ${DURATION}s runs after a ${WARMUP}s warm-up, $RUNS runs"
    say "   srv/wrk/other: CPU cores used during the run by the server, by wrk, and by the rest: other"
    say "   processes and kernel network work not charged to srv/wrk (under 0.05 on a quiet machine);"
    say "   req/cpu-s: requests per CPU-second of the server (less sensitive to a busy machine)"
    row_head
    for c in $CONNS; do
        if ((WARMUP > 0)); then
            run_wrk warmup-weftd "$WEFT_URL" "$c" "$WARMUP"
            run_wrk warmup-nginx "$NGINX_URL" "$c" "$WARMUP"
        fi
        rps_w=() rps_n=() eff_w=() eff_n=()
        for ((r = 1; r <= RUNS; r++)); do
            for srv in weftd nginx; do
                url=$WEFT_URL
                [[ $srv == nginx ]] && url=$NGINX_URL
                run_wrk "$srv" "$url" "$c" "$DURATION"
                row "$c" "$r" "$srv"
                if [[ $srv == weftd ]]; then
                    rps_w+=("${W[rps]}") eff_w+=("${W[req_cpu_s]}")
                else
                    rps_n+=("${W[rps]}") eff_n+=("${W[req_cpu_s]}")
                fi
                if ((W[non2xx] + W[sockerr] > 0)); then
                    FAILURES+=("throughput $srv c=$c run $r: ${W[errtext]}")
                fi
            done
        done
        MED_W[$c]=$(bench_median "${rps_w[@]}") MED_N[$c]=$(bench_median "${rps_n[@]}")
        EFF_W[$c]=$(bench_median "${eff_w[@]}") EFF_N[$c]=$(bench_median "${eff_n[@]}")
    done
    say ""
    say "medians over $RUNS runs:"
    printf '%-6s %12s %12s %12s   %14s %14s %12s\n' conns "weftd req/s" "nginx req/s" weftd/nginx \
        "weftd req/cpu-s" "nginx req/cpu-s" weftd/nginx
    for c in $CONNS; do
        printf '%-6s %12s %12s %12s   %14s %14s %12s\n' "$c" "${MED_W[$c]}" "${MED_N[$c]}" \
            "$(bench_ratio "${MED_W[$c]}" "${MED_N[$c]}")" "${EFF_W[$c]}" "${EFF_N[$c]}" \
            "$(bench_ratio "${EFF_W[$c]}" "${EFF_N[$c]}")"
    done
}

# http_ka METHOD PATH [HEADER]: one request on the keep-alive connection on
# fd 3 (opened on demand), with bash builtins only, so the loop below costs
# next to no CPU. Sets HK_STATUS (000 on a transport error, after which the
# connection is closed) and HK_BODY.
http_ka() {
    local method=$1 path=$2 hdr=${3:-} req line clen=0 chunked=0 close=0 size chunk
    local LC_ALL=C
    HK_STATUS=000 HK_BODY=""
    if [[ -z ${HK_OPEN:-} ]]; then
        exec 3<>"/dev/tcp/127.0.0.1/$WEFT_PORT" || return 0
        HK_OPEN=1
    fi
    # One write (echo, unlike printf, does not flush line by line): several
    # small segments would meet Nagle and delayed ACKs, 40 ms each time.
    printf -v req '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: 0\r\n\r\n' \
        "$method" "$path" "${hdr:+$hdr$'\r\n'}"
    if ! echo -n "$req" >&3 2>/dev/null || ! IFS= read -r -t 15 line <&3; then
        exec 3>&-
        HK_OPEN=""
        return 0
    fi
    line=${line%$'\r'}
    HK_STATUS=${line#* }
    HK_STATUS=${HK_STATUS%% *}
    while IFS= read -r -t 15 line <&3; do
        line=${line%$'\r'}
        [[ -z $line ]] && break
        case ${line,,} in
        content-length:*) clen=${line#*:} clen=${clen//[!0-9]/} ;;
        transfer-encoding:*chunked*) chunked=1 ;;
        connection:*close*) close=1 ;;
        esac
    done
    if ((chunked)); then
        while IFS= read -r -t 15 size <&3; do
            size=$((16#${size//[!0-9a-fA-F]/}))
            chunk=""
            ((size > 0)) && IFS= read -r -N "$size" -t 15 chunk <&3
            HK_BODY+=$chunk
            IFS= read -r -t 15 line <&3 # CRLF after the chunk / trailer end
            ((size > 0)) || break
        done
    elif ((clen > 0)); then
        IFS= read -r -N "$clen" -t 15 HK_BODY <&3 || HK_STATUS=000
    fi
    if ((close)) || [[ $HK_STATUS == 000 ]]; then
        exec 3>&-
        HK_OPEN=""
    fi
    return 0
}

# reloader MODE LOG: POST a reload (MODE reload) or, as a control, GET
# /healthz (MODE control) every RELOAD_INTERVAL on a fixed schedule (the
# next one starts at once if one took longer), on one keep-alive
# connection; one line per request in LOG: "<status> <seconds> <body>".
reloader() {
    local mode=$1 log=$2 next now left pause t0 el token
    read -r token <"$TMP/token" || true # no newline at its end
    next=${EPOCHREALTIME//[!0-9]/}
    while [[ ! -e $TMP/reloader.stop ]]; do
        t0=${EPOCHREALTIME//[!0-9]/}
        if [[ $mode == reload ]]; then
            http_ka POST /admin/plugins/hello/reload "Authorization: Bearer $token"
        else
            http_ka GET /healthz
        fi
        now=${EPOCHREALTIME//[!0-9]/}
        el=$((now - t0))
        printf '%s %d.%06d %s\n' "$HK_STATUS" $((el / 1000000)) $((el % 1000000)) \
            "${HK_BODY//$'\n'/ }" >>"$log"
        next=$((next + RELOAD_INTERVAL_US))
        if ((next > now)); then
            left=$((next - now))
            printf -v pause '%d.%06d' $((left / 1000000)) $((left % 1000000))
            sleep "$pause"
        else
            next=$now
        fi
    done
}

# One wrk run on weftd with the loop of MODE beside it; sets W.
run_with_loop() {
    local mode=$1 log=$2
    : >"$log"
    rm -f "$TMP/reloader.stop"
    reloader "$mode" "$log" &
    RELOADER_PID=$!
    run_wrk "reload-$mode" "$WEFT_URL" "$RELOAD_CONNS" "$DURATION"
    stop_reloader
}

phase_reload() {
    local base_p99 ctl_p99 rel_p99 n ok bad tmed tmax log=$TMP/reloads.log
    say ""
    say "== reload: p99 of GET /api/hello/ping at $RELOAD_CONNS connections, ${DURATION}s each:"
    say "   weftd: alone; +ctl: with a loop doing GET /healthz every ${RELOAD_INTERVAL}s on a keep-alive"
    say "   connection (control); +rel: the same loop doing POST /admin/plugins/hello/reload"
    say "   (same weftd, same .so file: a full load/init/swap/drain/unload each time)"
    if ((WARMUP > 0)); then
        run_wrk warmup-weftd "$WEFT_URL" "$RELOAD_CONNS" "$WARMUP"
    fi
    row_head
    run_wrk reload-base "$WEFT_URL" "$RELOAD_CONNS" "$DURATION"
    row "$RELOAD_CONNS" - "weftd"
    base_p99=${W[p99_ms]}
    ((W[non2xx] + W[sockerr] == 0)) || FAILURES+=("reload phase, alone: ${W[errtext]}")

    run_with_loop control "$TMP/control.log"
    row "$RELOAD_CONNS" - "+ctl"
    ctl_p99=${W[p99_ms]}
    ((W[non2xx] + W[sockerr] == 0)) || FAILURES+=("reload phase, control loop: ${W[errtext]}")
    if grep -qv '^200 ' "$TMP/control.log"; then
        FAILURES+=("reload phase: a control GET /healthz failed: $(grep -v '^200 ' "$TMP/control.log" | head -n 1)")
    fi

    run_with_loop reload "$log"
    row "$RELOAD_CONNS" - "+rel"
    rel_p99=${W[p99_ms]}
    ((W[non2xx] + W[sockerr] == 0)) || FAILURES+=("reload phase, with reloads: ${W[errtext]}")
    say "   (the loop itself used ${W[rel_cores]} cores during +rel, not counted in 'other')"

    n=$(wc -l <"$log")
    ok=$(grep -c '^200 .*"state" *: *"running"' "$log" || true)
    bad=$((n - ok))
    # shellcheck disable=SC2046 # one number per word
    tmed=$(bench_median $(awk '$1 == 200 { printf "%.2f\n", $2 * 1000 }' "$log"))
    # shellcheck disable=SC2046
    tmax=$(percentile 100 $(awk '$1 == 200 { printf "%.2f\n", $2 * 1000 }' "$log"))
    say "p99: alone $base_p99 ms, control loop $ctl_p99 ms, reloads $rel_p99 ms;" \
        "with reloads / alone: $(bench_ratio "$rel_p99" "$base_p99")x, with reloads / control: $(bench_ratio "$rel_p99" "$ctl_p99")x"
    say "reloads: $n sent in ${DURATION}s, $ok answered 200 state=running, $bad other"
    say "reload answer time under load: median $tmed ms, max $tmax ms"
    if ((bad > 0)); then
        FAILURES+=("reload phase: $bad reload(s) not answered 200 running, e.g.: $(grep -v '^200 ' "$log" | head -n 1)")
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
    cflags=(-std=c11 -shared -fPIC -O2 -I"$REPO/sdk/include")
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
    SWAP_FIRST="median $(bench_median "${firsts[@]}") ms, p90 $(percentile 90 "${firsts[@]}") ms, max $(percentile 100 "${firsts[@]}") ms"
    SWAP_REPLY="median $(bench_median "${replies[@]}") ms, p90 $(percentile 90 "${replies[@]}") ms, max $(percentile 100 "${replies[@]}") ms"
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

bench_header "weftd vs nginx, GET /api/hello/ping"
say "weftd     $WEFTD_VERSION, $THREADS event loops, $WEFT_URL, plugin hello $PING_VERSION, database: $DATABASE"
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
say "largest 'other' CPU during one wrk run: $MAX_OTHER of $NCPU cores (under 0.05 on a quiet machine)"
bench_warn_if_busy
bench_fail_if_any "${FAILURES[@]}"
say "== all checks passed (zero non-2xx responses, zero socket errors, every reload answered 200)"
