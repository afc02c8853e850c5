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

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$REPO/bench
NODE_DIR=$BENCH_DIR/node-peer

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}
case "${1:-}" in
-h | --help) usage; exit 0 ;;
-*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
esac

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

TMP=""
PG_DATA=""
PG_RUN=""
PG_PORT=5432
PG_STARTED=0
PG_USER=""
WEFTD_PID=""
LOAD_PID=""
declare -A NODE_PID=() NODE_KIDS=() NODE_URL=()
FAILURES=()
SUMMARY=()
MAX_OTHER=0
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
ITEM_PATH=/api/dbtest/items/

say() { printf '%s\n' "$*"; }
die() { printf 'db_read.sh: %s\n' "$*" >&2; exit 1; }

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

# Run a command as the PostgreSQL user: `postgres` when we are root (initdb
# and postgres refuse to run as root), ourselves otherwise. From /, which
# that user can always enter.
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

stop_pg() {
    local pid i
    ((PG_STARTED)) || return 0
    PG_STARTED=0
    [[ -f $PG_DATA/postmaster.pid ]] || return 0
    pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    # Fast shutdown: abort open transactions, disconnect clients, stop.
    as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >>"$TMP/pg_ctl.log" 2>&1 && return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    say "(pg_ctl stop failed: SIGQUIT to postmaster $pid)" >&2
    kill -QUIT "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

stop_node() {
    local mode=$1 pid
    [[ -n ${NODE_PID[$mode]:-} ]] || return 0
    stop_pid "${NODE_PID[$mode]}" TERM 10
    # Cluster workers outlive a SIGKILLed primary; stop the ones we saw, by pid.
    for pid in ${NODE_KIDS[$mode]:-}; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    NODE_PID[$mode]=""
}

cleanup() {
    local rc=$? mode f
    trap - EXIT INT TERM
    set +e
    [[ -n $LOAD_PID ]] && stop_pid "$LOAD_PID" TERM 5
    for mode in "${!NODE_PID[@]}"; do
        stop_node "$mode"
    done
    [[ -n $WEFTD_PID ]] && stop_pid "$WEFTD_PID" TERM 15
    stop_pg
    if ((rc != 0)) && [[ -n $TMP ]]; then
        for f in "$TMP/weftd.log" "$TMP"/node-*.log "$TMP/pg/postgres.log"; do
            [[ -s $f ]] || continue
            say "---- last lines of ${f#"$TMP"/}" >&2
            tail -n 20 "$f" >&2
        done
    fi
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP_TMP == 1 ]]; then
            say "temp dir kept: $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers --

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# Median of the arguments (mean of the two middle ones for an even count).
median() {
    (($#)) || { echo n/a; return 0; }
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.2f\n", a[(NR + 1) / 2];
              else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# CPU µs per request: per_req CORES REQ_PER_S ("-" when not measured).
per_req() { awk -v c="$1" -v r="$2" 'BEGIN { if (c == "-" || r <= 0) print "-"; else printf "%.1f", c * 1e6 / r }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
us_to_ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# A loopback port nobody uses, below the usual ephemeral range.
pick_port() {
    local used="" sl addr rest p i
    while read -r sl addr rest; do
        [[ $sl == sl ]] && continue
        used+=" $((16#${addr##*:}))"
    done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    used+=" "
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ $used == *" $p "* || " ${PORTS_TAKEN:-} " == *" $p "* ]] && continue
        PORTS_TAKEN="${PORTS_TAKEN:-} $p"
        echo "$p"
        return 0
    done
    return 1
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

psql_bench() {
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" -d bench "$@"
}

# --------------------------------------------------------------- checks ----

check_tools() {
    local missing=() pkgs=() t
    PATH=$PATH:/usr/sbin:/sbin
    command -v wrk >/dev/null || { missing+=(wrk); pkgs+=(wrk); }
    command -v curl >/dev/null || { missing+=(curl); pkgs+=(curl); }
    for t in psql pgbench; do
        command -v "$t" >/dev/null || { missing+=("$t"); pkgs+=(postgresql-client); }
    done
    for t in initdb pg_ctl; do
        [[ -x $PG_BINDIR/$t ]] || { missing+=("$PG_BINDIR/$t"); pkgs+=(postgresql); }
    done
    if [[ " $PHASES " == *" read "* && -n $NODE_MODES ]]; then
        command -v node >/dev/null || { missing+=(node); pkgs+=(nodejs); }
        command -v npm >/dev/null || { missing+=(npm); pkgs+=(npm); }
    fi
    if ((EUID == 0)); then
        command -v runuser >/dev/null || { missing+=(runuser); pkgs+=(util-linux); }
        id postgres >/dev/null 2>&1 ||
            die "running as root, PostgreSQL must run as the 'postgres' user, which does not exist (install the postgresql package, or run as another user)"
    fi
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
    for v in DURATION WARMUP RUNS CONNS WRK_THREADS PGBENCH_JOBS THREADS POOL_SIZE ROWS \
        NODE_WORKERS LOGIN_DURATION LOGIN_CONNS READY_TIMEOUT; do
        is_uint "${!v}" || die "$v must be a non-negative integer, not '${!v}'"
    done
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

start_pg() {
    local pg=$TMP/pg
    PG_USER=$(id -un)
    ((EUID == 0)) && PG_USER=postgres
    # As root, postgres must get through our (mode 700) temp dir to its own
    # directories: 0711 lets it through without listing anything.
    chmod 0711 "$TMP"
    mkdir -p "$pg/data" "$pg/run"
    chmod 0711 "$pg"
    chmod 0700 "$pg/data" "$pg/run"
    : >"$pg/postgres.log"
    if ((EUID == 0)); then
        chown postgres: "$pg/data" "$pg/run" "$pg/postgres.log"
    fi
    PG_DATA=$pg/data
    PG_RUN=$pg/run
    as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -A trust -U "$PG_USER" -E UTF8 --locale=C.UTF-8 -N \
        >"$TMP/initdb.log" 2>&1 || die "initdb failed: $(tail -n 20 "$TMP/initdb.log")"
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# added by bench/db_read.sh
listen_addresses = ''
unix_socket_directories = '$PG_RUN'
port = $PG_PORT
max_connections = 200
shared_buffers = 128MB
logging_collector = off
log_line_prefix = '%m [%p] '
EOF
    PG_STARTED=1
    as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$pg/postgres.log" -w -t 60 start \
        >"$TMP/pg_ctl.log" 2>&1 || die "pg_ctl start failed: $(cat "$TMP/pg_ctl.log") $(tail -n 20 "$pg/postgres.log")"
    PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" -d postgres \
        -c 'CREATE DATABASE bench' >"$TMP/psql.log" 2>&1 || die "CREATE DATABASE failed: $(cat "$TMP/psql.log")"
    PG_VERSION=$(psql_bench -c 'SHOW server_version')
}

# The table comes from the dbtest plugin's migration (weftd must run first).
seed_rows() {
    local n
    psql_bench -c "INSERT INTO dbtest_items (name) SELECT 'item-' || g FROM generate_series(1, $ROWS) g" \
        -c 'VACUUM ANALYZE dbtest_items' >"$TMP/psql.log" 2>&1 || die "seeding dbtest_items failed: $(cat "$TMP/psql.log")"
    n=$(psql_bench -c "SELECT count(*) FROM dbtest_items WHERE id BETWEEN 1 AND $ROWS AND name = 'item-' || id")
    [[ $n == "$ROWS" ]] || die "dbtest_items should hold ids 1..$ROWS named item-<id>, found $n such rows"
}

# ----------------------------------------------------------------- weftd ---

write_weft_ini() {
    cat >"$TMP/weft.ini" <<EOF
; generated by bench/db_read.sh
[server]
listen = 127.0.0.1:$WEFT_PORT
threads = $THREADS
data_dir = $TMP/var
access_log = false
keepalive_timeout = 60s
shutdown_timeout = 2s

[log]
level = $LOG_LEVEL

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
}

start_weftd() {
    local deadline code="" unset_env=() v
    # Our config must win: drop WEFT_* overrides from the caller's environment.
    for v in $(compgen -e); do
        [[ $v == WEFT_* ]] && unset_env+=(-u "$v")
    done
    mkdir -p "$TMP/var"
    for _ in 1 2 3; do
        WEFT_PORT=$(pick_port) || die "no free loopback port found"
        WEFT_URL=http://127.0.0.1:$WEFT_PORT
        write_weft_ini
        "$WEFTD" --check-config "$TMP/weft.ini" >"$TMP/check.log" 2>&1 ||
            die "weftd --check-config rejected the generated config: $(cat "$TMP/check.log")"
        env "${unset_env[@]}" "$WEFTD" --config "$TMP/weft.ini" >"$TMP/weftd.log" 2>&1 &
        WEFTD_PID=$!
        deadline=$((SECONDS + READY_TIMEOUT))
        while ((SECONDS < deadline)); do
            kill -0 "$WEFTD_PID" 2>/dev/null || break
            code=$(http_code "$WEFT_URL/readyz")
            [[ $code == 200 ]] && return 0
            sleep 0.1
        done
        if kill -0 "$WEFTD_PID" 2>/dev/null; then
            die "weftd not ready after ${READY_TIMEOUT}s (GET /readyz answered '${code:-nothing}'; 000 = no answer)"
        fi
        wait "$WEFTD_PID" 2>/dev/null || true
        WEFTD_PID=""
        grep -qi 'in use' "$TMP/weftd.log" || break
        say "(port $WEFT_PORT was taken, trying another)" >&2
    done
    die "weftd exited during start-up"
}

weftd_alive() {
    local v
    kill -0 "$WEFTD_PID" 2>/dev/null && return 0
    wait "$WEFTD_PID" 2>/dev/null && v=0 || v=$?
    WEFTD_PID=""
    die "weftd died (exit status $v) during $1"
}

# ------------------------------------------------------------------ node ---

start_node() {
    local mode=$1 workers=0 deadline port url
    [[ $mode == cluster ]] && workers=$NODE_WORKERS
    for _ in 1 2 3; do
        port=$(pick_port) || die "no free loopback port found"
        url=http://127.0.0.1:$port
        (cd "$NODE_DIR" && exec env NODE_ENV=production PORT="$port" PGHOST="$PG_RUN" PGPORT="$PG_PORT" \
            PGDATABASE=bench PGUSER="$PG_USER" POOL_TOTAL=$((POOL_SIZE * THREADS)) WORKERS="$workers" \
            node server.js) >"$TMP/node-$mode.log" 2>&1 &
        NODE_PID[$mode]=$!
        deadline=$((SECONDS + 30))
        while ((SECONDS < deadline)); do
            kill -0 "${NODE_PID[$mode]}" 2>/dev/null || break
            if [[ $(http_code "$url${ITEM_PATH}1") == 200 ]]; then
                NODE_URL[$mode]=$url
                NODE_KIDS[$mode]=$(pgrep -P "${NODE_PID[$mode]}" | tr '\n' ' ' || true)
                return 0
            fi
            sleep 0.2
        done
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

# ------------------------------------------------------- CPU accounting ----

# The cores are shared by the load generator, the server and PostgreSQL:
# every run records how much CPU each one used.
# Sets CPU_BUSY and CPU_ALL: jiffies of all CPUs (/proc/stat).
cpu_sample() {
    local _u n s i w q sq st
    read -r _ _u n s i w q sq st _ </proc/stat
    CPU_BUSY=$((_u + n + s + q + sq + st))
    CPU_ALL=$((CPU_BUSY + i + w))
}

# Sets TREE_TICKS: user+system jiffies of the processes, their reaped
# children and their live children (postgres backends, cluster workers).
# The difference of two samples is exact even when a child is reaped in
# between: it leaves the live sum and enters the parent's children account.
tree_ticks() {
    local pid kid stat f
    TREE_TICKS=0
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        read -r stat <"/proc/$pid/stat" || continue
        read -ra f <<<"${stat##*) }"
        TREE_TICKS=$((TREE_TICKS + f[11] + f[12] + f[13] + f[14]))
        for kid in $(pgrep -P "$pid" || true); do
            read -r stat 2>/dev/null <"/proc/$kid/stat" || continue
            read -ra f <<<"${stat##*) }"
            TREE_TICKS=$((TREE_TICKS + f[11] + f[12] + f[13] + f[14]))
        done
    done
}

# Sets CHILD_MS: CPU ms of this shell's reaped children (wrk, pgbench), from
# `times` (not in a $(...): a subshell has its own, empty, children account).
child_ms() {
    local a b m s
    times >"$TMP/times"
    { read -r _ _; read -r a b; } <"$TMP/times"
    CHILD_MS=0
    for m in "$a" "$b"; do
        s=${m#*m}
        s=${s%s}
        s=${s//,/.}
        CHILD_MS=$((CHILD_MS + ${m%%m*} * 60000 + 10#${s%.*} * 1000 + 10#${s#*.}))
    done
}

cores() { awk -v t="$1" -v all="$2" -v n="$NCPU" 'BEGIN { printf "%.2f", (all > 0 ? t * n / all : 0) }'; }

# Before and after a run: fills C[srv] (the HTTP server), C[pg]
# (PostgreSQL: postmaster and backends), C[load] (wrk or pgbench) and
# C[other] (everything else on the machine), in cores.
acct_start() {
    ACCT_SRV=("$@")
    cpu_sample
    A_B0=$CPU_BUSY A_A0=$CPU_ALL
    tree_ticks "${ACCT_SRV[@]}"
    A_S0=$TREE_TICKS
    tree_ticks "$PG_PID"
    A_P0=$TREE_TICKS
    A_K0=$(pgrep -c -P "$PG_PID" || true)
    child_ms
    A_C0=$CHILD_MS
}

acct_end() {
    local srv pg gen all i
    cpu_sample
    all=$((CPU_ALL - A_A0))
    child_ms
    gen=$(((CHILD_MS - A_C0) * CLK_TCK / 1000))
    tree_ticks "${ACCT_SRV[@]}"
    srv=$((TREE_TICKS - A_S0))
    # pgbench's backends take a moment to exit and be reaped after pgbench
    # did; until then their CPU shows nowhere (an exited, unreaped process
    # reads as 0). Wait for them (at most 5 s) before counting PostgreSQL.
    for ((i = 0; i < 50; i++)); do
        (($(pgrep -c -P "$PG_PID" || true) <= A_K0)) && break
        sleep 0.1
    done
    tree_ticks "$PG_PID"
    pg=$((TREE_TICKS - A_P0))
    C[srv]=$(cores "$srv" "$all")
    ((${#ACCT_SRV[@]})) || C[srv]=-
    C[pg]=$(cores "$pg" "$all")
    C[load]=$(cores "$gen" "$all")
    # pg may include the backends' exit after the run, which CPU_BUSY (sampled
    # at the run's end) does not: never below 0.
    i=$((CPU_BUSY - A_B0 - srv - pg - gen))
    C[other]=$(cores "$((i > 0 ? i : 0))" "$all")
    awk -v o="${C[other]}" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }' && MAX_OTHER=${C[other]}
    return 0
}

# ------------------------------------------------------------ load runs ----

RUN_SEQ=0
declare -A R=() C=()

# run_wrk NAME URL CONNS SECONDS TIMEOUT SERVER_PIDS -- LUA_ARGS...
# Fills R[...] from db_read.lua's summary line, plus the CPU accounting.
run_wrk() {
    local name=$1 url=$2 conns=$3 secs=$4 tmo=$5 pids=$6 out line kv
    shift 7
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-$name.txt
    # shellcheck disable=SC2086 # pid list
    acct_start $pids
    # In the background + wait: a foreground child would defer Ctrl-C (bash
    # runs the INT trap only when a foreground child dies of the signal).
    wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --timeout "$tmo" --latency \
        -s "$BENCH_DIR/lua/db_read.lua" "$url" -- "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "wrk failed: $(cat "$out")"
    LOAD_PID=""
    acct_end
    line=$(grep '^WEFTBENCH ' "$out" | tail -n 1) || die "wrk printed no summary: $(cat "$out")"
    R=()
    for kv in $line; do
        [[ $kv == *=* ]] && R[${kv%%=*}]=${kv#*=}
    done
    R[sockerr]=$((R[err_connect] + R[err_read] + R[err_write] + R[err_timeout]))
    R[p99_ms]=$(us_to_ms "${R[p99_us]}")
    R[p50_ms]=$(us_to_ms "${R[p50_us]}")
    R[max_ms]=$(us_to_ms "${R[max_us]}")
    if ((R[non2xx] + R[sockerr] == 0)); then
        R[errtext]=none
    else
        R[errtext]="non-2xx ${R[non2xx]} (404 ${R[s404]}, 429 ${R[s429]}, 5xx ${R[s5xx]}, other ${R[sother]}), socket errors ${R[sockerr]} (connect ${R[err_connect]} read ${R[err_read]} write ${R[err_write]} timeout ${R[err_timeout]})"
    fi
    return 0
}

# run_pgbench NAME SECONDS: pgbench -M prepared on the same SELECT.
run_pgbench() {
    local name=$1 secs=$2 out failed
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-$name.txt
    acct_start
    pgbench -n -M prepared -c "$CONNS" -j "$PGBENCH_JOBS" -T "$secs" -f "$TMP/select.pgbench" \
        -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" bench >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "pgbench failed: $(cat "$out")"
    LOAD_PID=""
    acct_end
    R=()
    # -T counts from the start, connecting included: a short run on a busy
    # machine may end before any transaction (then there is no tps line).
    R[rps]=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
    [[ -n ${R[rps]} ]] || R[rps]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | tail -n 1)
    R[rps]=$(awk -v t="${R[rps]:-0}" 'BEGIN { printf "%.2f", t }')
    R[avg_ms]=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    R[p99_ms]="-"
    R[p50_ms]="avg ${R[avg_ms]:-?}"
    R[errtext]=none
    if [[ -n $failed && $failed != 0 ]]; then
        R[errtext]="$failed failed transactions"
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
        weftd_alive "the $kind run"
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
            SRVUS[$t]+=" $(per_req "${C[srv]}" "${R[rps]}")"
            PGUS[$t]+=" $(per_req "${C[pg]}" "${R[rps]}")"
            [[ ${R[errtext]} == none ]] || FAILURES+=("read $t run $r: ${R[errtext]}")
        done
    done
    declare -gA MED=()
    for t in "${targets[@]}"; do
        # shellcheck disable=SC2086 # one number per word
        MED[$t]=$(median ${RPS[$t]})
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
            printf '  %-13s %11s tps    srv      - µs  pg %6s µs\n' "$t" "${MED[$t]}" "$(median ${PGUS[$t]})"
        else
            printf '  %-13s %11s req/s  srv %6s µs  pg %6s µs   p99 ms:%s\n' "$t" "${MED[$t]}" \
                "$(median ${SRVUS[$t]})" "$(median ${PGUS[$t]})" "${P99[$t]}"
        fi
    done
    RATIO_NODE=n/a RATIO_PG=$(ratio "${MED[weftd]}" "${MED[pgbench]}")
    if [[ -n $best_node ]]; then
        RATIO_NODE=$(ratio "${MED[weftd]}" "${MED[$best_node]}")
        say "weftd / node   = $RATIO_NODE  (against $best_node, the better node median)"
        for m in $NODE_MODES; do
            [[ node-$m == "$best_node" ]] && continue
            say "                 $(ratio "${MED[weftd]}" "${MED[node-$m]}")  against node-$m"
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
    LOGIN_ONE=$(median "${times[@]}")
    run_wrk login-weftd "$WEFT_URL/api/auth/login" "$LOGIN_CONNS" "$LOGIN_DURATION" 10s "$WEFTD_PID" -- post "$body"
    weftd_alive "the login run"
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

start_pg
start_weftd
seed_rows
if [[ " $PHASES " == *" read "* ]]; then
    for mode in $NODE_MODES; do
        start_node "$mode"
    done
fi
check_same_bytes

say "== Weft benchmark: a database read by primary key, weftd vs node vs pgbench; sign-in"
say "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "none yet")
if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null || true) ]]; then
    COMMIT+=" (+ local changes)"
fi
say "commit    $COMMIT"
say "machine   $NCPU cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -h | awk '/^Mem:/ { print $2 }') RAM, Linux $(uname -r)"
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
if ((${#SUMMARY[@]})); then
    say "== summary"
    printf '  %s\n' "${SUMMARY[@]}"
fi
say "most CPU taken by other processes during one run: $MAX_OTHER of $NCPU cores"
if awk -v o="$MAX_OTHER" 'BEGIN { exit !(o > 0.2) }'; then
    say "WARNING: other work competed for the CPU during the runs: figures are noisy; rerun on a quiet machine"
fi
if grep -q . "$TMP/weftd.log"; then
    say "weftd log ([log] level $LOG_LEVEL): $(wc -l <"$TMP/weftd.log") line(s), the last ones:"
    tail -n 10 "$TMP/weftd.log" | sed 's/^/  | /'
else
    say "weftd log ([log] level $LOG_LEVEL): empty"
fi
if ((${#FAILURES[@]})); then
    say "== CHECKS FAILED (${#FAILURES[@]}):"
    printf '  - %s\n' "${FAILURES[@]}"
    exit 1
fi
say "== all checks passed (same bytes on every server, zero non-2xx, zero socket errors, zero failed pgbench transactions)"
