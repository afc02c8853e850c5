# shellcheck shell=bash
# bench/lib.sh - shell helpers shared by the benchmark scripts (http_hello.sh,
# db_read.sh, rt_fanout.sh, referral.sh); each sources it right after its
# `set -euo pipefail`. Every function is named bench_*. The script provides
# NCPU and KEEP_TMP, and READY_TIMEOUT, WEFTD, PG_BINDIR where it uses the
# functions that read them.
# shellcheck disable=SC2154 # NCPU, KEEP_TMP, WEFTD, ... come from the script

BENCH_SCRIPT=${BASH_SOURCE[1]:-$0}
BENCH_NAME=${BENCH_SCRIPT##*/}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # for the script
BENCH_DIR=$REPO/bench
TMP=""               # the run's temp dir, once the script made it
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
MAX_OTHER=0          # most cores other processes took during one run
BENCH_HTTP_TIMEOUT=2 # s a probe waits for an answer (http_hello.sh: 1)
WEFTD_PID=""
PG_DATA=""
PG_RUN=""
PG_PORT=5432
PG_PID=""
PG_STARTED=0
PG_USER=""

# ------------------------------------------------------- output, options ---

# One report line; printf, as echo would eat a line that starts with -n or -e.
bench_say() { printf '%s\n' "$*"; }

# Fatal error, named after the script; its exit runs the EXIT trap, which cleans up.
bench_die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# --help is the script's header comment (line 2 up to `set -euo`): usage and docs cannot drift.
bench_usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$BENCH_SCRIPT"
}

# bench_options "$@": --help, and exit 2 on any other option; BUILD_DIR is the script's to read.
bench_options() {
    case "${1:-}" in
    -h | --help) bench_usage; exit 0 ;;
    -*) echo "unknown option: $1" >&2; bench_usage >&2; exit 2 ;;
    esac
}

# --------------------------------------------------------------- cleanup ---

# bench_stop_pid PID SIG SECONDS: stop a process we started: SIG, then SIGKILL after SECONDS.
bench_stop_pid() {
    local pid=$1 sig=$2 wait_s=$3 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_say "(pid $pid ignored SIG$sig for ${wait_s}s: SIGKILL)" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# bench_cleanup STOP_FN LOG... (the EXIT trap): stop all we started, tail the LOGs on failure, drop TMP.
bench_cleanup() {
    local rc=$? stop=$1 f
    shift
    trap - EXIT INT TERM
    set +e
    "$stop"
    if ((rc != 0)) && [[ -n $TMP ]]; then
        for f in "$@"; do
            [[ -s $f ]] || continue
            bench_say "---- last lines of ${f#"$TMP"/}" >&2
            tail -n 20 "$f" >&2
        done
    fi
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP_TMP == 1 ]]; then
            bench_say "temp dir kept: $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}

# ------------------------------------------------------- numbers, checks ---

# Every count and duration knob must be a non-negative integer.
bench_is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# bench_check_uints VAR...: reject the first knob that is not a non-negative integer, by name.
bench_check_uints() {
    local v
    for v; do
        bench_is_uint "${!v}" || bench_die "$v must be a non-negative integer, not '${!v}'"
    done
}

# Median of the arguments (mean of the middle two; n/a for none): runs are summed up by medians.
bench_median() {
    (($#)) || { echo n/a; return 0; }
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.2f\n", a[(NR + 1) / 2];
              else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B: weftd / peer, what the reports compare (2 decimals; n/a when B is not positive).
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# The load generators report µs; the tables print ms.
bench_us_to_ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# bench_per_req CORES REQ_PER_S: the CPU µs one request cost ("-" when not measured).
bench_per_req() { awk -v c="$1" -v r="$2" 'BEGIN { if (c == "-" || r <= 0) print "-"; else printf "%.1f", c * 1e6 / r }'; }

# ------------------------------------------------------------ ports, HTTP ---

# bench_pick_port [EXCLUDED...]: a free loopback port below the ephemeral range, for a server of ours.
bench_pick_port() {
    local used="" sl addr rest p i
    while read -r sl addr rest; do
        [[ $sl == sl ]] && continue
        used+=" $((16#${addr##*:}))"
    done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    used+=" $* "
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ $used == *" $p "* ]] && continue
        echo "$p"
        return 0
    done
    return 1
}

# bench_http_code [CURL_OPTION...] URL: the HTTP status, 000 for no answer (a later -m overrides ours).
bench_http_code() { curl -s -o /dev/null -m "$BENCH_HTTP_TIMEOUT" -w '%{http_code}' "$@" 2>/dev/null || true; }

# bench_wait_http PID URL SECONDS [PAUSE]: 0 once URL answers 200, 1 if PID exits, 2 at timeout (HTTP_CODE).
bench_wait_http() {
    local pid=$1 url=$2 deadline=$((SECONDS + $3)) pause=${4:-0.1}
    HTTP_CODE=""
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || return 1
        HTTP_CODE=$(bench_http_code "$url")
        [[ $HTTP_CODE == 200 ]] && return 0
        sleep "$pause"
    done
    return 2
}

# ----------------------------------------------------------------- weftd ---

# bench_weft_ini_head PORT [SERVER_LINE...]: the [server] and [log] sections every generated weft.ini has.
bench_weft_ini_head() {
    local port=$1
    shift
    cat <<EOF
[server]
listen = 127.0.0.1:$port
threads = $THREADS
data_dir = $TMP/var
access_log = false
keepalive_timeout = 60s
shutdown_timeout = 2s
max_connections_per_address = 0
max_streams_per_address = 0
connection_rate_per_address = 0
EOF
    if (($#)); then
        printf '%s\n' "$@"
    fi
    printf '\n[log]\nlevel = %s\n' "$LOG_LEVEL"
}

# bench_start_weftd [--append] WRITE_INI [ARG...]: weftd ready on a free port; sets WEFT_PORT, WEFT_URL, WEFTD_PID.
bench_start_weftd() {
    local append=0 write_ini unset_env=() v
    if [[ $1 == --append ]]; then
        append=1
        shift
    fi
    write_ini=$1
    shift
    # Our config must win: drop WEFT_* overrides from the caller's environment.
    for v in $(compgen -e); do
        [[ $v == WEFT_* ]] && unset_env+=(-u "$v")
    done
    mkdir -p "$TMP/var"
    for _ in 1 2 3; do
        WEFT_PORT=$(bench_pick_port "${WEFT_PORT:-}") || bench_die "no free loopback port found"
        WEFT_URL=http://127.0.0.1:$WEFT_PORT
        "$write_ini" "$@"
        "$WEFTD" --check-config "$TMP/weft.ini" >"$TMP/check.log" 2>&1 ||
            bench_die "weftd --check-config rejected the generated config: $(cat "$TMP/check.log")"
        ((append)) || : >"$TMP/weftd.log" # --append: a restart keeps the lines before it
        env "${unset_env[@]}" "$WEFTD" --config "$TMP/weft.ini" >>"$TMP/weftd.log" 2>&1 &
        WEFTD_PID=$!
        bench_wait_http "$WEFTD_PID" "$WEFT_URL/readyz" "$READY_TIMEOUT" && return 0
        if kill -0 "$WEFTD_PID" 2>/dev/null; then
            bench_die "weftd not ready after ${READY_TIMEOUT}s (GET /readyz answered '${HTTP_CODE:-nothing}'; 000 = no answer)"
        fi
        wait "$WEFTD_PID" 2>/dev/null || true
        WEFTD_PID=""
        grep -qi 'in use' "$TMP/weftd.log" || break
        bench_say "(port $WEFT_PORT was taken, trying another)" >&2
    done
    bench_die "weftd exited during start-up"
}

# bench_weftd_alive WHAT: a run's figures mean nothing if weftd died during it.
bench_weftd_alive() {
    local v
    kill -0 "$WEFTD_PID" 2>/dev/null && return 0
    wait "$WEFTD_PID" 2>/dev/null && v=0 || v=$?
    WEFTD_PID=""
    bench_die "weftd died (exit status $v) during $1"
}

# ------------------------------------------------------------ PostgreSQL ---

# For check_tools: add missing PostgreSQL tools to its missing and pkgs lists.
bench_need_pg_tools() {
    local t
    for t in psql pgbench; do
        command -v "$t" >/dev/null || { missing+=("$t"); pkgs+=(postgresql-client); }
    done
    for t in initdb pg_ctl; do
        [[ -x $PG_BINDIR/$t ]] || { missing+=("$PG_BINDIR/$t"); pkgs+=(postgresql); }
    done
}

# For check_tools: as root, PostgreSQL runs as `postgres` (bench_as_pg), which needs runuser and that user.
bench_need_pg_user() {
    if ((EUID == 0)); then
        command -v runuser >/dev/null || { missing+=(runuser); pkgs+=(util-linux); }
        id postgres >/dev/null 2>&1 ||
            bench_die "running as root, PostgreSQL must run as the 'postgres' user, which does not exist (install the postgresql package, or run as another user)"
    fi
}

# Run a command as the PostgreSQL user (postgres when root: initdb refuses root), from /, which it can enter.
bench_as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# psql on the bench database: unaligned, quiet, stopping at the first error.
bench_psql() {
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" -d bench "$@"
}

# bench_start_pg [CONF_LINE...]: a private PostgreSQL in $TMP/pg (socket only, database bench) for weftd and peers.
bench_start_pg() {
    local pg=$TMP/pg extra=""
    if (($#)); then
        extra=$(printf '%s\n' "$@")
    fi
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
    bench_as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -A trust -U "$PG_USER" -E UTF8 --locale=C.UTF-8 -N \
        >"$TMP/initdb.log" 2>&1 || bench_die "initdb failed: $(tail -n 20 "$TMP/initdb.log")"
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# added by bench/$BENCH_NAME
listen_addresses = ''
unix_socket_directories = '$PG_RUN'
port = $PG_PORT
max_connections = 200
shared_buffers = 128MB
${extra:+$extra
}logging_collector = off
log_line_prefix = '%m [%p] '
EOF
    PG_STARTED=1
    bench_as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$pg/postgres.log" -w -t 60 start \
        >"$TMP/pg_ctl.log" 2>&1 || bench_die "pg_ctl start failed: $(cat "$TMP/pg_ctl.log") $(tail -n 20 "$pg/postgres.log")"
    PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" -d postgres \
        -c 'CREATE DATABASE bench' >"$TMP/psql.log" 2>&1 || bench_die "CREATE DATABASE failed: $(cat "$TMP/psql.log")"
    # shellcheck disable=SC2034 # for the script's report and its clients
    PG_VERSION=$(bench_psql -c 'SHOW server_version')
    # shellcheck disable=SC2034
    PG_CONNINFO="host=$PG_RUN port=$PG_PORT dbname=bench user=$PG_USER"
}

# Stop bench_start_pg's server: pg_ctl's fast shutdown, else SIGQUIT, then SIGKILL to the postmaster.
bench_stop_pg() {
    local pid i
    ((PG_STARTED)) || return 0
    PG_STARTED=0
    [[ -f $PG_DATA/postmaster.pid ]] || return 0
    pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    # Fast shutdown: abort open transactions, disconnect clients, stop.
    bench_as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >>"$TMP/pg_ctl.log" 2>&1 && return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    bench_say "(pg_ctl stop failed: SIGQUIT to postmaster $pid)" >&2
    kill -QUIT "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# -------------------------------------------------------- CPU accounting ---
# The cores are shared by the load generator, the server under test,
# PostgreSQL and whatever else runs on the machine: every run records how
# much CPU each one used.

# Sets CPU_BUSY and CPU_ALL, jiffies of all CPUs (/proc/stat): the machine's side of CPU accounting.
bench_cpu_sample() {
    local _u n s i w q sq st
    read -r _ _u n s i w q sq st _ </proc/stat
    CPU_BUSY=$((_u + n + s + q + sq + st))
    CPU_ALL=$((CPU_BUSY + i + w))
}

# Sets TREE_TICKS: CPU jiffies of the pids and their reaped and live children (a reap in between loses nothing).
bench_tree_ticks() {
    local pid kid stat fields
    TREE_TICKS=0
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        read -r stat <"/proc/$pid/stat" || continue
        read -ra fields <<<"${stat##*) }"
        TREE_TICKS=$((TREE_TICKS + fields[11] + fields[12] + fields[13] + fields[14]))
        for kid in $(pgrep -P "$pid" || true); do
            read -r stat 2>/dev/null <"/proc/$kid/stat" || continue
            read -ra fields <<<"${stat##*) }"
            TREE_TICKS=$((TREE_TICKS + fields[11] + fields[12] + fields[13] + fields[14]))
        done
    done
}

# Sets CHILD_MS: CPU ms of this shell's reaped children (wrk, pgbench); not in a $(...), it has its own.
bench_child_ms() {
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

# bench_cores JIFFIES ALL_JIFFIES: CPU time as cores busy, the unit of every CPU column.
bench_cores() { awk -v t="$1" -v all="$2" -v n="$NCPU" 'BEGIN { printf "%.2f", (all > 0 ? t * n / all : 0) }'; }

declare -gA C=() # CPU of the last run, in cores (bench_acct_end)

# bench_acct_start [SERVER_PID...]: before a run, so that bench_acct_end can split its CPU.
bench_acct_start() {
    ACCT_SRV=("$@")
    bench_cpu_sample
    A_B0=$CPU_BUSY A_A0=$CPU_ALL
    bench_tree_ticks "${ACCT_SRV[@]}"
    A_S0=$TREE_TICKS
    bench_tree_ticks "$PG_PID"
    A_P0=$TREE_TICKS
    A_K0=$(pgrep -c -P "$PG_PID" || true)
    bench_child_ms
    A_C0=$CHILD_MS
}

# After a run: C[srv] (- without pids), C[pg], C[load], C[other] in cores; raises MAX_OTHER.
bench_acct_end() {
    local srv pg gen all i
    bench_cpu_sample
    all=$((CPU_ALL - A_A0))
    bench_child_ms
    gen=$(((CHILD_MS - A_C0) * CLK_TCK / 1000))
    bench_tree_ticks "${ACCT_SRV[@]}"
    srv=$((TREE_TICKS - A_S0))
    # pgbench's backends take a moment to exit and be reaped after pgbench
    # did; until then their CPU shows nowhere (an exited, unreaped process
    # reads as 0). Wait for them (at most 5 s) before counting PostgreSQL.
    for ((i = 0; i < 50; i++)); do
        (($(pgrep -c -P "$PG_PID" || true) <= A_K0)) && break
        sleep 0.1
    done
    bench_tree_ticks "$PG_PID"
    pg=$((TREE_TICKS - A_P0))
    C[srv]=$(bench_cores "$srv" "$all")
    ((${#ACCT_SRV[@]})) || C[srv]=-
    C[pg]=$(bench_cores "$pg" "$all")
    C[load]=$(bench_cores "$gen" "$all")
    # pg may include the backends' exit after the run, which CPU_BUSY (sampled
    # at the run's end) does not: never below 0.
    i=$((CPU_BUSY - A_B0 - srv - pg - gen))
    C[other]=$(bench_cores "$((i > 0 ? i : 0))" "$all")
    awk -v o="${C[other]}" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }' && MAX_OTHER=${C[other]}
    return 0
}

# ------------------------------------------------------------ load output ---

# bench_wrk_result FILE ARRAY: the WEFTBENCH line of a bench/lua script, plus sockerr and p50/p99/max_ms.
bench_wrk_result() {
    local out=$1 line kv
    local -n bench_wr_=$2
    line=$(grep '^WEFTBENCH ' "$out" | tail -n 1) || bench_die "wrk printed no summary: $(cat "$out")"
    bench_wr_=()
    for kv in $line; do
        [[ $kv == *=* ]] && bench_wr_[${kv%%=*}]=${kv#*=}
    done
    bench_wr_[sockerr]=$((bench_wr_[err_connect] + bench_wr_[err_read] + bench_wr_[err_write] + bench_wr_[err_timeout]))
    bench_wr_[p50_ms]=$(bench_us_to_ms "${bench_wr_[p50_us]}")
    bench_wr_[p99_ms]=$(bench_us_to_ms "${bench_wr_[p99_us]}")
    bench_wr_[max_ms]=$(bench_us_to_ms "${bench_wr_[max_us]}")
}

# bench_wrk_errtext ARRAY: ARRAY[errtext], none or the non-2xx by status and socket errors by kind.
bench_wrk_errtext() {
    local -n bench_we_=$1
    if ((bench_we_[non2xx] + bench_we_[sockerr] == 0)); then
        bench_we_[errtext]=none
    else
        bench_we_[errtext]="non-2xx ${bench_we_[non2xx]} (404 ${bench_we_[s404]}, 429 ${bench_we_[s429]}, 5xx ${bench_we_[s5xx]}, other ${bench_we_[sother]}), socket errors ${bench_we_[sockerr]} (connect ${bench_we_[err_connect]} read ${bench_we_[err_read]} write ${bench_we_[err_write]} timeout ${bench_we_[err_timeout]})"
    fi
}

# bench_pgbench_result FILE ARRAY: pgbench's summary as a row: rps, avg_ms, p50_ms, p99_ms, failed.
bench_pgbench_result() {
    local out=$1
    local -n bench_pr_=$2
    bench_pr_=()
    # -T counts from the start, connecting included: a short run on a busy
    # machine may end before any transaction (then there is no tps line).
    bench_pr_[rps]=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out")
    [[ -n ${bench_pr_[rps]} ]] || bench_pr_[rps]=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | tail -n 1)
    bench_pr_[rps]=$(awk -v t="${bench_pr_[rps]:-0}" 'BEGIN { printf "%.2f", t }')
    bench_pr_[avg_ms]=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out")
    bench_pr_[failed]=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    bench_pr_[p50_ms]="avg ${bench_pr_[avg_ms]:-?}"
    bench_pr_[p99_ms]="-"
}

# ---------------------------------------------------------------- report ---

# bench_header TITLE: a report's first lines: what, when, which commit (+ local changes), which machine.
bench_header() {
    local commit
    commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "none yet")
    if [[ -n $(git -C "$REPO" status --porcelain 2>/dev/null || true) ]]; then
        commit+=" (+ local changes)"
    fi
    bench_say "== Weft benchmark: $1"
    bench_say "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    bench_say "commit    $commit"
    bench_say "machine   $NCPU cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(free -h | awk '/^Mem:/ { print $2 }') RAM, Linux $(uname -r)"
}

# bench_summary LINE...: the == summary block, none when empty.
bench_summary() {
    (($#)) || return 0
    bench_say "== summary"
    printf '  %s\n' "$@"
}

# Other work skews every figure: warn when it took over 0.2 cores during a run (MAX_OTHER).
bench_warn_if_busy() {
    if awk -v o="$MAX_OTHER" 'BEGIN { exit !(o > 0.2) }'; then
        bench_say "WARNING: other work competed for the CPU during the runs: figures are noisy; rerun on a quiet machine"
    fi
}

# bench_fail_if_any FAILURE...: list the failed checks and exit 1; return when there are none.
bench_fail_if_any() {
    (($#)) || return 0
    bench_say "== CHECKS FAILED ($#):"
    printf '  - %s\n' "$@"
    exit 1
}
