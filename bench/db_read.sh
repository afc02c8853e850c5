#!/usr/bin/env bash
# bench/db_read.sh - a database read through weftd's async PostgreSQL pool,
# against a Node.js peer (fastify + pg) and PostgreSQL's own ceiling
# (pgbench), all on one PostgreSQL server; then sign-in throughput. One
# command; everything it starts is stopped and its temp directory removed on
# exit (also on error or Ctrl-C).
#
#   bench/db_read.sh [BUILD_DIR]          (default: <repo>/build)
#
# Phases (see bench/README.md, section db_read.sh):
#   read   GET /api/dbtest/items/<random 1..ROWS> on weftd (dbtest plugin)
#          and on node (one process, and cluster), pgbench -M prepared on
#          the same SELECT; wrk/pgbench at 64 connections, targets alternated
#   login  POST /api/auth/login of one account, 16 connections (argon2id-bound)
#
# Environment (defaults in brackets):
#   BUILD_DIR [<repo>/build]  where weftd and tests/plugins/dbtest_m1.so are
#   DURATION [10]  seconds per measured run   WARMUP [3]  warm-up s per target
#   RUNS [3]       rounds (one run of every target per round)
#   CONNS [64]     wrk connections = pgbench clients    WRK_THREADS [2]
#   PGBENCH_JOBS [2]          THREADS [nproc]  weftd event loops
#   POOL_SIZE [4]  weftd connections per loop; node gets POOL_SIZE x THREADS
#   ROWS [10000]   rows in dbtest_items, ids requested uniformly from 1..ROWS
#   NODE_MODES ["single cluster"]  node as one process and/or with the
#                  cluster module             NODE_WORKERS [nproc]
#   PHASES ["read login"]     LOGIN_DURATION [10]  LOGIN_CONNS [16]
#   PG_BINDIR [/usr/lib/postgresql/15/bin]     READY_TIMEOUT [60] s
#   LOG_LEVEL [warn]  weftd's [log] level      KEEP_TMP [0]  1 keeps the
#                                              temp dir (configs, logs, output)
#
# Needs: wrk, curl, PostgreSQL 15 server and client (initdb, pg_ctl, psql,
# pgbench), node >= 20 and npm (node-peer's modules are installed with
# `npm ci` from the committed package-lock.json when node_modules is
# missing). As root, PostgreSQL runs as the `postgres` user (runuser).
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_options "$@"
NODE_DIR=$BENCH_DIR/node-peer

BUILD_DIR=${1:-${BUILD_DIR:-$REPO/build}}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
RUNS=${RUNS:-3}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
PGBENCH_JOBS=${PGBENCH_JOBS:-2}
NCPU=$(nproc)
THREADS=${THREADS:-$NCPU}
POOL_SIZE=${POOL_SIZE:-4}
ROWS=${ROWS:-10000}
NODE_MODES=${NODE_MODES-single cluster}
NODE_WORKERS=${NODE_WORKERS:-$NCPU}
PHASES=${PHASES:-read login}
LOGIN_DURATION=${LOGIN_DURATION:-10}
LOGIN_CONNS=${LOGIN_CONNS:-16}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
READY_TIMEOUT=${READY_TIMEOUT:-60}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}

LOAD_PID=""
declare -A NODE_PID=() NODE_KIDS=() NODE_URL=()
FAILURES=()
SUMMARY=()
ITEM_PATH=/api/dbtest/items/

# Short names for the report's many lines.
say() { bench_say "$@"; }
die() { bench_die "$@"; }

# ---------------------------------------------------------------- cleanup --

stop_node() {
    local mode=$1 pid
    [[ -n ${NODE_PID[$mode]:-} ]] || return 0
    bench_stop_pid "${NODE_PID[$mode]}" TERM 10
    # Cluster workers outlive a SIGKILLed primary; stop the ones we saw, by pid.
    for pid in ${NODE_KIDS[$mode]:-}; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    NODE_PID[$mode]=""
}

# Everything this script starts, stopped on exit (bench_cleanup).
stop_all() {
    local mode
    [[ -n $LOAD_PID ]] && bench_stop_pid "$LOAD_PID" TERM 5
    for mode in "${!NODE_PID[@]}"; do
        stop_node "$mode"
    done
    [[ -n $WEFTD_PID ]] && bench_stop_pid "$WEFTD_PID" TERM 15
    bench_stop_pg
}
trap 'bench_cleanup stop_all "$TMP/weftd.log" "$TMP"/node-*.log "$TMP/pg/postgres.log"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers --

ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# --------------------------------------------------------------- checks ----

check_tools() {
    local missing=() pkgs=()
    PATH=$PATH:/usr/sbin:/sbin
    command -v wrk >/dev/null || { missing+=(wrk); pkgs+=(wrk); }
    command -v curl >/dev/null || { missing+=(curl); pkgs+=(curl); }
    bench_need_pg_tools
    if [[ " $PHASES " == *" read "* && -n $NODE_MODES ]]; then
        command -v node >/dev/null || { missing+=(node); pkgs+=(nodejs); }
        command -v npm >/dev/null || { missing+=(npm); pkgs+=(npm); }
    fi
    bench_need_pg_user
    if ((${#missing[@]})); then
        {
            say "missing tool(s): ${missing[*]}"
            say "They come from the Debian package(s): $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
            say "This script installs no system package: run the project's 'make' (it installs"
            say "wrk and PostgreSQL), or as root: apt-get install -y <packages above>"
        } >&2
        exit 1
    fi
    if [[ " $PHASES " == *" read "* && -n $NODE_MODES ]]; then
        NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
        ((NODE_MAJOR >= 20)) || die "node >= 20 needed (fastify 5), found $(node --version 2>&1)"
    fi
}

check_args() {
    local v
    bench_check_uints DURATION WARMUP RUNS CONNS WRK_THREADS PGBENCH_JOBS THREADS POOL_SIZE ROWS \
        NODE_WORKERS LOGIN_DURATION LOGIN_CONNS READY_TIMEOUT
    ((DURATION > 0 && RUNS > 0 && WRK_THREADS > 0 && THREADS > 0 && POOL_SIZE > 0 &&
        ROWS > 0 && LOGIN_DURATION > 0 && PGBENCH_JOBS > 0 && NODE_WORKERS > 0)) ||
        die "DURATION, RUNS, WRK_THREADS, PGBENCH_JOBS, THREADS, POOL_SIZE, ROWS, NODE_WORKERS and LOGIN_DURATION must be positive"
    ((CONNS >= WRK_THREADS && CONNS >= PGBENCH_JOBS && LOGIN_CONNS >= WRK_THREADS)) ||
        die "CONNS and LOGIN_CONNS must be >= WRK_THREADS, CONNS >= PGBENCH_JOBS"
    ((CONNS + POOL_SIZE * THREADS * 3 + 10 <= 200)) ||
        die "CONNS + 3 x POOL_SIZE x THREADS exceeds the server's max_connections (200)"
    for v in $PHASES; do
        [[ $v == read || $v == login ]] || die "unknown phase '$v' (read, login)"
    done
    for v in $NODE_MODES; do
        [[ $v == single || $v == cluster ]] || die "unknown node mode '$v' (single, cluster)"
    done
}

check_build() {
    WEFTD=$BUILD_DIR/weftd
    DBTEST_SO=$BUILD_DIR/tests/plugins/dbtest_m1.so
    [[ -x $WEFTD ]] || die "no weftd at $WEFTD: build first (cmake -S . -B build && cmake --build build, or 'make test') or pass BUILD_DIR"
    [[ -f $DBTEST_SO ]] || die "no dbtest plugin at $DBTEST_SO: build the test plugins (cmake --build build --target weft_test_dbtest_m1) or pass BUILD_DIR"
    WEFTD_VERSION=$("$WEFTD" --version 2>&1 | head -n 1) || die "'$WEFTD --version' failed: $WEFTD_VERSION"
}

# npm ci from the committed lock file, only when node_modules is missing.
node_deps() {
    [[ -n $NODE_MODES && " $PHASES " == *" read "* ]] || return 0
    if [[ ! -d $NODE_DIR/node_modules ]]; then
        say "(installing the node peer's modules: npm ci in bench/node-peer)"
        (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1 ||
            die "npm ci in $NODE_DIR failed: $(tail -n 20 "$TMP/npm.log")"
    fi
    FASTIFY_VERSION=$(node -p "require('$NODE_DIR/node_modules/fastify/package.json').version" 2>/dev/null || echo '?')
    PGJS_VERSION=$(node -p "require('$NODE_DIR/node_modules/pg/package.json').version" 2>/dev/null || echo '?')
}

# ------------------------------------------------------------ PostgreSQL ---

# The table comes from the dbtest plugin's migration (weftd must run first).
seed_rows() {
    local n
    bench_psql -c "INSERT INTO dbtest_items (name) SELECT 'item-' || g FROM generate_series(1, $ROWS) g" \
        -c 'VACUUM ANALYZE dbtest_items' >"$TMP/psql.log" 2>&1 || die "seeding dbtest_items failed: $(cat "$TMP/psql.log")"
    n=$(bench_psql -c "SELECT count(*) FROM dbtest_items WHERE id BETWEEN 1 AND $ROWS AND name = 'item-' || id")
    [[ $n == "$ROWS" ]] || die "dbtest_items should hold ids 1..$ROWS named item-<id>, found $n such rows"
}

# ----------------------------------------------------------------- weftd ---

write_weft_ini() {
    {
        echo "; generated by bench/db_read.sh"
        bench_weft_ini_head "$WEFT_PORT"
        cat <<EOF

[database]
enabled = true
url = host=$PG_RUN port=$PG_PORT dbname=bench user=$PG_USER
pool_size = $POOL_SIZE

[auth]
; the defaults, written out: argon2id bounds sign-in throughput by design
hash_concurrency = 2
argon2_opslimit = 2
argon2_memlimit = 64m
; high enough that the rate limiter never answers 429 during the bench
login_rate = 1000000
login_account_rate = 1000000
register_rate = 1000000

[plugins]
watch = false

[plugin.dbtest]
path = $DBTEST_SO
enabled = true
EOF
    } >"$TMP/weft.ini"
}

# ------------------------------------------------------------------ node ---

start_node() {
    local mode=$1 workers=0 port url
    [[ $mode == cluster ]] && workers=$NODE_WORKERS
    for _ in 1 2 3; do
        port=$(bench_pick_port) || die "no free loopback port found"
        url=http://127.0.0.1:$port
        (cd "$NODE_DIR" && exec env NODE_ENV=production PORT="$port" PGHOST="$PG_RUN" PGPORT="$PG_PORT" \
            PGDATABASE=bench PGUSER="$PG_USER" POOL_TOTAL=$((POOL_SIZE * THREADS)) WORKERS="$workers" \
            node server.js) >"$TMP/node-$mode.log" 2>&1 &
        NODE_PID[$mode]=$!
        if bench_wait_http "${NODE_PID[$mode]}" "$url${ITEM_PATH}1" 30 0.2; then
            NODE_URL[$mode]=$url
            NODE_KIDS[$mode]=$(pgrep -P "${NODE_PID[$mode]}" | tr '\n' ' ' || true)
            return 0
        fi
        kill -0 "${NODE_PID[$mode]}" 2>/dev/null && die "node ($mode) did not answer within 30 s"
        wait "${NODE_PID[$mode]}" 2>/dev/null || true
        NODE_PID[$mode]=""
        grep -qi 'EADDRINUSE' "$TMP/node-$mode.log" || break
        say "(port $port was taken, trying another)" >&2
    done
    die "node ($mode) exited during start-up: $(tail -n 5 "$TMP/node-$mode.log")"
}

# weftd's exact bytes, and the peer's, for a few ids and a missing one.
check_same_bytes() {
    local mode id code
    for id in 1 "$((ROWS / 2))" "$ROWS" "$((ROWS + 1))"; do
        code=$(curl -sS -m 5 -o "$TMP/weftd.body" -w '%{http_code}' "$WEFT_URL$ITEM_PATH$id") ||
            die "GET $ITEM_PATH$id on weftd failed"
        if ((id <= ROWS)); then
            [[ $code == 200 ]] || die "GET $ITEM_PATH$id on weftd answered $code: $(head -c 300 "$TMP/weftd.body")"
        else
            [[ $code == 404 ]] || die "GET $ITEM_PATH$id (no such row) on weftd answered $code, not 404"
        fi
        [[ $id == 1 ]] && cp "$TMP/weftd.body" "$TMP/sample.body"
        for mode in $NODE_MODES; do
            code=$(curl -sS -m 5 -o "$TMP/node.body" -w '%{http_code}' "${NODE_URL[$mode]}$ITEM_PATH$id") ||
                die "GET $ITEM_PATH$id on node ($mode) failed"
            cmp -s "$TMP/weftd.body" "$TMP/node.body" ||
                die "node ($mode) answers $ITEM_PATH$id with $code $(head -c 200 "$TMP/node.body"), weftd with $(head -c 200 "$TMP/weftd.body")"
        done
    done
    HEAD_WEFT=$(curl -s -D "$TMP/weftd.head" -o /dev/null -w '%{size_header}' "$WEFT_URL${ITEM_PATH}1")
    HEAD_NODE=""
    for mode in $NODE_MODES; do
        HEAD_NODE=$(curl -s -D "$TMP/node-$mode.head" -o /dev/null -w '%{size_header}' "${NODE_URL[$mode]}${ITEM_PATH}1")
    done
}

# ------------------------------------------------------------ load runs ----

RUN_SEQ=0
declare -A R=()

# run_wrk NAME URL CONNS SECONDS TIMEOUT SERVER_PIDS -- LUA_ARGS...
# Fills R[...] from db_read.lua's summary line, plus the CPU accounting
# (C[...], bench_acct_start/end).
run_wrk() {
    local name=$1 url=$2 conns=$3 secs=$4 tmo=$5 pids=$6 out
    shift 7
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-$name.txt
    # shellcheck disable=SC2086 # pid list
    bench_acct_start $pids
    # In the background + wait: a foreground child would defer Ctrl-C (bash
    # runs the INT trap only when a foreground child dies of the signal).
    wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --timeout "$tmo" --latency \
        -s "$BENCH_DIR/lua/db_read.lua" "$url" -- "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "wrk failed: $(cat "$out")"
    LOAD_PID=""
    bench_acct_end
    bench_wrk_result "$out" R
    bench_wrk_errtext R
    return 0
}

# run_pgbench NAME SECONDS: pgbench -M prepared on the same SELECT.
run_pgbench() {
    local name=$1 secs=$2 out
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-$name.txt
    bench_acct_start
    pgbench -n -M prepared -c "$CONNS" -j "$PGBENCH_JOBS" -T "$secs" -f "$TMP/select.pgbench" \
        -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" bench >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "pgbench failed: $(cat "$out")"
    LOAD_PID=""
    bench_acct_end
    bench_pgbench_result "$out" R
    R[errtext]=none
    if [[ -n ${R[failed]} && ${R[failed]} != 0 ]]; then
        R[errtext]="${R[failed]} failed transactions"
    elif ! grep -q '^tps = ' "$out"; then
        R[errtext]="no transaction completed within ${secs}s: $(grep -m 1 'actually processed' "$out" || true)"
    fi
}

row_head() {
    printf '%-4s %-13s %11s %8s %8s %6s %6s %6s %6s  %s\n' run target "req/s" "p50 ms" "p99 ms" \
        srv pg load other errors
}
row() {
    printf '%-4s %-13s %11s %8s %8s %6s %6s %6s %6s  %s\n' "$1" "$2" "${R[rps]}" "${R[p50_ms]}" \
        "${R[p99_ms]}" "${C[srv]}" "${C[pg]}" "${C[load]}" "${C[other]}" "${R[errtext]}"
}

# ---------------------------------------------------------------- phases ---

# run_target TARGET SECONDS: one run of one target.
run_target() {
    local t=$1 secs=$2 kind=$3
    case $t in
    pgbench) run_pgbench "$kind-pgbench" "$secs" ;;
    weftd)
        run_wrk "$kind-weftd" "$WEFT_URL" "$CONNS" "$secs" 5s "$WEFTD_PID" -- items "$ITEM_PATH" "$ROWS"
        bench_weftd_alive "the $kind run"
        ;;
    node-*)
        # shellcheck disable=SC2086 # pid list
        run_wrk "$kind-$t" "${NODE_URL[${t#node-}]}" "$CONNS" "$secs" 5s "${NODE_PID[${t#node-}]}" \
            -- items "$ITEM_PATH" "$ROWS"
        ;;
    esac
}

phase_read() {
    local targets=(pgbench) t r i n start best_node="" best=0 m
    declare -gA RPS=() P99=() SRVUS=() PGUS=()
    for m in $NODE_MODES; do
        targets+=("node-$m")
    done
    targets+=(weftd)
    n=${#targets[@]}
    say ""
    say "== read: GET $ITEM_PATH<random 1..$ROWS> (SELECT id, name FROM dbtest_items WHERE id = \$1)"
    say "   wrk -t$WRK_THREADS -c$CONNS --latency; pgbench -M prepared -c$CONNS -j$PGBENCH_JOBS on the same SELECT"
    say "   ${DURATION}s runs, $RUNS rounds, targets alternated (each round starts one target later),"
    say "   one ${WARMUP}s warm-up per target first. CPU in cores during the run: srv = the HTTP server,"
    say "   pg = PostgreSQL (all backends), load = wrk or pgbench, other = everything else"
    row_head
    if ((WARMUP > 0)); then
        for t in "${targets[@]}"; do
            run_target "$t" "$WARMUP" warmup
            row warm "$t"
        done
    fi
    for ((r = 1; r <= RUNS; r++)); do
        start=$(((r - 1) % n))
        for ((i = 0; i < n; i++)); do
            t=${targets[$(((start + i) % n))]}
            run_target "$t" "$DURATION" run$r
            row "$r" "$t"
            RPS[$t]+=" ${R[rps]}"
            P99[$t]+=" ${R[p99_ms]}"
            SRVUS[$t]+=" $(bench_per_req "${C[srv]}" "${R[rps]}")"
            PGUS[$t]+=" $(bench_per_req "${C[pg]}" "${R[rps]}")"
            [[ ${R[errtext]} == none ]] || FAILURES+=("read $t run $r: ${R[errtext]}")
        done
    done
    declare -gA MED=()
    for t in "${targets[@]}"; do
        # shellcheck disable=SC2086 # one number per word
        MED[$t]=$(bench_median ${RPS[$t]})
    done
    for m in $NODE_MODES; do
        if ge "${MED[node-$m]}" "$best" && [[ ${MED[node-$m]} != "$best" || -z $best_node ]]; then
            best=${MED[node-$m]} best_node=node-$m
        fi
    done
    say ""
    say "medians over $RUNS runs; CPU µs per request of the server and of PostgreSQL (medians);"
    say "p99 of every run, in run order:"
    for t in "${targets[@]}"; do
        # shellcheck disable=SC2086 # one number per word
        if [[ $t == pgbench ]]; then
            printf '  %-13s %11s tps    srv      - µs  pg %6s µs\n' "$t" "${MED[$t]}" "$(bench_median ${PGUS[$t]})"
        else
            printf '  %-13s %11s req/s  srv %6s µs  pg %6s µs   p99 ms:%s\n' "$t" "${MED[$t]}" \
                "$(bench_median ${SRVUS[$t]})" "$(bench_median ${PGUS[$t]})" "${P99[$t]}"
        fi
    done
    RATIO_NODE=n/a RATIO_PG=$(bench_ratio "${MED[weftd]}" "${MED[pgbench]}")
    if [[ -n $best_node ]]; then
        RATIO_NODE=$(bench_ratio "${MED[weftd]}" "${MED[$best_node]}")
        say "weftd / node   = $RATIO_NODE  (against $best_node, the better node median)"
        for m in $NODE_MODES; do
            [[ node-$m == "$best_node" ]] && continue
            say "                 $(bench_ratio "${MED[weftd]}" "${MED[node-$m]}")  against node-$m"
        done
    fi
    say "weftd / pgbench tps = $RATIO_PG"
    say "targets:"
    SUMMARY+=("read medians: weftd ${MED[weftd]} req/s, pgbench ${MED[pgbench]} tps$(
        for m in $NODE_MODES; do printf ', node-%s %s req/s' "$m" "${MED[node-$m]}"; done)")
    if [[ -n $best_node ]]; then
        if ge "$RATIO_NODE" 3; then m=MET; else m="NOT MET"; fi
        say "  weftd >= 3x node:                $m ($RATIO_NODE)"
        SUMMARY+=("weftd / node = $RATIO_NODE (vs $best_node): target >= 3: $m")
    fi
    if ge "$RATIO_PG" 0.6; then m=MET; else m="NOT MET"; fi
    say "  weftd >= 0.6 x pgbench ceiling:  $m ($RATIO_PG)"
    SUMMARY+=("weftd / pgbench tps = $RATIO_PG: target >= 0.6: $m")
}

phase_login() {
    local email=bench@example.com pw body code i t times=() share
    pw=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    say ""
    say "== login: POST /api/auth/login {email, password} of one account, wrk -t$WRK_THREADS -c$LOGIN_CONNS,"
    say "   ${LOGIN_DURATION}s, --timeout 10s; argon2id opslimit 2, memlimit 64m, hash_concurrency 2 (the defaults);"
    say "   login_rate and login_account_rate raised to 1000000/min so that no 429 is answered"
    body=$(printf '{"email":"%s","username":"bench","display_name":"Bench","password":"%s"}' "$email" "$pw")
    code=$(curl -sS -m 30 -o "$TMP/register.body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$body" "$WEFT_URL/api/auth/register") || die "POST /api/auth/register failed"
    [[ $code == 2* ]] || die "POST /api/auth/register answered $code: $(head -c 300 "$TMP/register.body")"
    body=$(printf '{"email":"%s","password":"%s"}' "$email" "$pw")
    # One login at a time on an idle server: the cost of one verification.
    for i in 1 2 3 4 5; do
        t=$(curl -sS -m 30 -o "$TMP/login.body" -w '%{http_code} %{time_total}' \
            -H 'Content-Type: application/json' --data-binary "$body" "$WEFT_URL/api/auth/login") ||
            die "POST /api/auth/login failed"
        [[ $t == 200\ * ]] || die "POST /api/auth/login answered ${t%% *}: $(head -c 300 "$TMP/login.body")"
        times+=("$(awk -v s="${t#* }" 'BEGIN { printf "%.1f", s * 1000 }')")
    done
    LOGIN_ONE=$(bench_median "${times[@]}")
    run_wrk login-weftd "$WEFT_URL/api/auth/login" "$LOGIN_CONNS" "$LOGIN_DURATION" 10s "$WEFTD_PID" -- post "$body"
    bench_weftd_alive "the login run"
    row_head
    row 1 weftd-login
    share=$(awk -v b="${R[non2xx]}" -v n="${R[requests]}" 'BEGIN { printf "%.2f", (n > 0 ? 100 * b / n : 0) }')
    SUMMARY+=("login: ${R[rps]} req/s, p99 ${R[p99_ms]} ms, non-2xx $share% at $LOGIN_CONNS connections (one login alone: $LOGIN_ONE ms)")
    say "login: ${R[rps]} req/s, p50 ${R[p50_ms]} ms, p99 ${R[p99_ms]} ms, max ${R[max_ms]} ms;"
    say "       ${R[requests]} answered, non-2xx ${R[non2xx]} = $share% (429 ${R[s429]}, 5xx ${R[s5xx]}), socket errors ${R[sockerr]}"
    say "one login on the idle server (curl, median of 5): $LOGIN_ONE ms"
    say "       -> hash_concurrency / that time = $(awk -v t="$LOGIN_ONE" 'BEGIN { printf "%.1f", (t > 0 ? 2000 / t : 0) }') logins/s if the hashes had the cores to themselves"
    [[ ${R[errtext]} == none ]] || FAILURES+=("login: ${R[errtext]}")
}

# ------------------------------------------------------------------ main ---

check_args
check_tools
check_build

TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-dbbench.XXXXXX")
mkdir -p "$TMP/runs"
node_deps
printf '\\set id random(1, %d)\nSELECT id, name FROM dbtest_items WHERE id = :id;\n' "$ROWS" >"$TMP/select.pgbench"

# shellcheck disable=SC2119 # no postgresql.conf lines of its own
bench_start_pg
bench_start_weftd write_weft_ini
seed_rows
if [[ " $PHASES " == *" read "* ]]; then
    for mode in $NODE_MODES; do
        start_node "$mode"
    done
fi
check_same_bytes

bench_header "a database read by primary key, weftd vs node vs pgbench; sign-in"
say "postgres  $PG_VERSION, one server for all, Unix socket only, max_connections 200, $ROWS rows in dbtest_items"
say "weftd     $WEFTD_VERSION, $THREADS event loops, pool $POOL_SIZE x $THREADS = $((POOL_SIZE * THREADS)) connections, $WEFT_URL"
if [[ " $PHASES " == *" read "* && -n $NODE_MODES ]]; then
    say "node      $(node --version), fastify $FASTIFY_VERSION, pg $PGJS_VERSION, pool $((POOL_SIZE * THREADS)) connections in all;"
    for mode in $NODE_MODES; do
        if [[ $mode == single ]]; then
            say "          single: one process, ${NODE_URL[$mode]}"
        else
            say "          cluster: $NODE_WORKERS workers x $(((POOL_SIZE * THREADS + NODE_WORKERS - 1) / NODE_WORKERS)) connections, ${NODE_URL[$mode]}"
        fi
    done
    say "response  same body on all ($(cat "$TMP/sample.body") for id 1; also checked: a missing id -> same 404 body);"
    say "          headers: weftd $HEAD_WEFT bytes, node $HEAD_NODE bytes"
fi
say "pgbench   $(pgbench --version | sed 's/^pgbench (PostgreSQL) //'), -M prepared -c$CONNS -j$PGBENCH_JOBS, script: \\set id random(1, $ROWS); SELECT id, name ... WHERE id = :id"
say "wrk       $(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }'), $WRK_THREADS threads, bench/lua/db_read.lua"
say "load      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min averages before the first run)"
say "NOTE      $NCPU core(s) shared by the load generator, the server under test and PostgreSQL:"
say "          absolute figures are far below a machine with separate hosts; compare ratios."

for phase in $PHASES; do
    "phase_$phase"
done

say ""
bench_summary "${SUMMARY[@]}"
say "most CPU taken by other processes during one run: $MAX_OTHER of $NCPU cores"
bench_warn_if_busy
if grep -q . "$TMP/weftd.log"; then
    say "weftd log ([log] level $LOG_LEVEL): $(wc -l <"$TMP/weftd.log") line(s), the last ones:"
    tail -n 10 "$TMP/weftd.log" | sed 's/^/  | /'
else
    say "weftd log ([log] level $LOG_LEVEL): empty"
fi
bench_fail_if_any "${FAILURES[@]}"
say "== all checks passed (same bytes on every server, zero non-2xx, zero socket errors, zero failed pgbench transactions)"
