#!/usr/bin/env bash
# bench/referral.sh - the referral plugin (issue 5): signups per second,
# leaderboard reads per second, and the time from a signup's commit to its
# event on the referrer's open SSE stream with 1,000 other subscribers
# connected; each against a peer in the same run (pgbench running the same
# SQL on the same PostgreSQL server; PostgreSQL's own commit -> NOTIFY
# delivery). One command; everything it starts is stopped and its temp
# directory removed on exit (also on error or Ctrl-C).
#
#   bench/referral.sh [BUILD_DIR]         (default: <repo>/build-rel)
#
# Phases (see bench/README.md, section referral.sh), in this order:
#   read     GET /api/referral/leaderboard?limit=20&offset=<random> over
#            ACCOUNTS seeded accounts, wrk at 64 connections; pgbench
#            -M prepared on the same SELECT
#   signup   POST /api/auth/register with a referral code (REFERRERS
#            codes) and a new name per request, wrk at 32 connections;
#            pgbench running the registration's statements; once per
#            hashing setting (HASHING): argon2id defaults, then the
#            lightest the config accepts
#   latency  SUBS subscribers on referral.leaderboard plus the referrer's
#            own stream; SIGNUPS signups one at a time with its code:
#            commit -> friend_joined event (commit timestamps), answer ->
#            event, send -> event; the same with no other subscriber
#            (control); peer: PostgreSQL's commit -> NOTIFY read on a
#            LISTEN connection
#
# Environment (defaults in brackets):
#   BUILD_DIR [<repo>/build-rel]  weftd and plugins/referral.so
#   DURATION [10]  seconds per measured run   WARMUP [2]  warm-up s per target
#   RUNS [3]       rounds (one run of each target per round, order alternated)
#   READ_CONNS [64]  SIGNUP_CONNS [32]  wrk connections
#   WRK_THREADS [2]  PGBENCH_JOBS [2]   THREADS [nproc] weftd event loops
#   POOL_SIZE [4]  weftd connections per loop
#   PG_CLIENTS [POOL_SIZE x THREADS]  pgbench clients: as many connections
#                  as weftd's pool (more only add lock and CPU contention)
#   ACCOUNTS [10000]  seeded accounts (referral tree)   PAGE [20]  limit
#   REFERRERS [4]  codes the signups use (1..7), each with its own referrer
#   HASHING ["default light"]  default: argon2 opslimit 2, memlimit 64m,
#                  hash_concurrency 2; light: LIGHT_OPSLIMIT [1],
#                  LIGHT_MEMLIMIT [8k] (the smallest the config accepts),
#                  LIGHT_CONCURRENCY [2]
#   SUBS [1000]  SIGNUPS [200]  LAT_RUNS [3]  GAP_MS [10]  latency phase
#   LAT_CONTROL [1]  1: each latency round also runs weftd with no other
#                  subscriber (what the SUBS subscribers cost)
#   LAT_HASHING [default]  hashing setting weftd runs in the latency phase
#   PHASES ["read signup latency"]
#   PG_BINDIR [/usr/lib/postgresql/15/bin]     READY_TIMEOUT [60] s
#   LOG_LEVEL [warn]  weftd's [log] level      KEEP_TMP [0]  1 keeps the
#                                              temp dir (configs, logs, output)
#
# Needs: wrk, curl, cc and libpq's headers (Debian libpq-dev), PostgreSQL 15
# server and client (initdb, pg_ctl, psql, pgbench). As root, PostgreSQL runs
# as the `postgres` user (runuser).
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_options "$@"

BUILD_DIR=${1:-${BUILD_DIR:-$REPO/build-rel}}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-3}
READ_CONNS=${READ_CONNS:-64}
SIGNUP_CONNS=${SIGNUP_CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
PGBENCH_JOBS=${PGBENCH_JOBS:-2}
NCPU=$(nproc)
THREADS=${THREADS:-$NCPU}
POOL_SIZE=${POOL_SIZE:-4}
PG_CLIENTS=${PG_CLIENTS:-$((POOL_SIZE * THREADS))}
ACCOUNTS=${ACCOUNTS:-10000}
PAGE=${PAGE:-20}
REFERRERS=${REFERRERS:-4}
HASHING=${HASHING:-default light}
LIGHT_OPSLIMIT=${LIGHT_OPSLIMIT:-1}
LIGHT_MEMLIMIT=${LIGHT_MEMLIMIT:-8k}
LIGHT_CONCURRENCY=${LIGHT_CONCURRENCY:-2}
SUBS=${SUBS:-1000}
SIGNUPS=${SIGNUPS:-200}
LAT_RUNS=${LAT_RUNS:-3}
GAP_MS=${GAP_MS:-10}
LAT_HASHING=${LAT_HASHING:-default}
LAT_CONTROL=${LAT_CONTROL:-1}
PHASES=${PHASES:-read signup latency}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
READY_TIMEOUT=${READY_TIMEOUT:-60}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}

WEFTD_HASHING=""
LOAD_PID=""
FAILURES=()
SUMMARY=()
MD=()
# A well-formed argon2id string for accounts made with SQL (seeded, and the
# pgbench peer's): nobody signs in with them.
# shellcheck disable=SC2016 # a literal, not an expansion
PW_HASH='$argon2id$v=19$m=65536,t=2,p=1$YmVuY2hzZWVkc2FsdDAwMA$Zm9yIHRoZSBiZW5jaCBvbmx5LCBuZXZlciBhIHJlYWwgcGFzc3dvcmQ'

# Short names for the report's many lines.
say() { bench_say "$@"; }
die() { bench_die "$@"; }

# ---------------------------------------------------------------- cleanup --

stop_weftd() {
    [[ -n $WEFTD_PID ]] || return 0
    bench_stop_pid "$WEFTD_PID" TERM 15
    WEFTD_PID=""
}

# Everything this script starts, stopped on exit (bench_cleanup).
stop_all() {
    [[ -n $LOAD_PID ]] && bench_stop_pid "$LOAD_PID" TERM 5
    stop_weftd
    bench_stop_pg
}
trap 'bench_cleanup stop_all "$TMP/weftd.log" "$TMP/pg/postgres.log"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers --

# medof "N N N": the median of a space-separated list.
medof() {
    # shellcheck disable=SC2086 # one number per word
    bench_median $1
}
# weftd / peer with 3 decimals (bench_ratio has 2), n/a when the peer is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

# A JSON string member of a file's (compact) JSON: json_str FILE KEY.
json_str() { sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" "$1" | head -n 1; }
# The id of the "user" object of a registration answer.
json_user_id() { sed -n 's/.*"user":{"id":\([0-9]*\).*/\1/p' "$1" | head -n 1; }

# --------------------------------------------------------------- checks ----

check_args() {
    local v
    bench_check_uints DURATION WARMUP RUNS READ_CONNS SIGNUP_CONNS WRK_THREADS PGBENCH_JOBS THREADS \
        POOL_SIZE PG_CLIENTS ACCOUNTS PAGE REFERRERS LIGHT_OPSLIMIT LIGHT_CONCURRENCY SUBS SIGNUPS \
        LAT_RUNS GAP_MS LAT_CONTROL READY_TIMEOUT
    ((DURATION > 0 && RUNS > 0 && WRK_THREADS > 0 && THREADS > 0 && POOL_SIZE > 0 &&
        PGBENCH_JOBS > 0 && PG_CLIENTS > 0 && PAGE > 0 && PAGE <= 100 && SIGNUPS > 0 && LAT_RUNS > 0)) ||
        die "DURATION, RUNS, WRK_THREADS, THREADS, POOL_SIZE, PGBENCH_JOBS, SIGNUPS, LAT_RUNS must be positive; PAGE 1..100"
    ((REFERRERS >= 1 && REFERRERS <= 7)) || die "REFERRERS must be 1..7"
    ((ACCOUNTS >= 1000)) || die "ACCOUNTS must be at least 1000 (the referrers are taken from the last 1000)"
    ((ACCOUNTS > PAGE)) || die "ACCOUNTS must be larger than PAGE"
    ((READ_CONNS >= WRK_THREADS && SIGNUP_CONNS >= WRK_THREADS)) ||
        die "READ_CONNS and SIGNUP_CONNS must be >= WRK_THREADS"
    ((PG_CLIENTS + POOL_SIZE * THREADS + 20 <= 200)) ||
        die "PG_CLIENTS + POOL_SIZE x THREADS exceed the server's max_connections (200)"
    for v in $PHASES; do
        [[ $v == read || $v == signup || $v == latency ]] || die "unknown phase '$v' (read, signup, latency)"
    done
    for v in $HASHING $LAT_HASHING; do
        [[ $v == default || $v == light ]] || die "unknown hashing setting '$v' (default, light)"
    done
}

check_tools() {
    local missing=() pkgs=()
    PATH=$PATH:/usr/sbin:/sbin
    command -v wrk >/dev/null || { missing+=(wrk); pkgs+=(wrk); }
    command -v curl >/dev/null || { missing+=(curl); pkgs+=(curl); }
    command -v cc >/dev/null || { missing+=(cc); pkgs+=(gcc); }
    bench_need_pg_tools
    PG_INC=$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
    [[ -f $PG_INC/libpq-fe.h ]] || { missing+=("$PG_INC/libpq-fe.h"); pkgs+=(libpq-dev); }
    bench_need_pg_user
    if ((${#missing[@]})); then
        {
            say "missing tool(s): ${missing[*]}"
            say "They come from the Debian package(s): $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
            say "This script installs no system package: run the project's 'make', or as root:"
            say "apt-get install -y <packages above>"
        } >&2
        exit 1
    fi
}

check_build() {
    WEFTD=$BUILD_DIR/weftd
    REFERRAL_SO=$BUILD_DIR/plugins/referral.so
    [[ -x $WEFTD ]] || die "no weftd at $WEFTD: build first (cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-rel -j2) or pass BUILD_DIR"
    [[ -f $REFERRAL_SO ]] || die "no referral plugin at $REFERRAL_SO: build it (cmake --build $BUILD_DIR --target referral) or pass a BUILD_DIR that has plugins/referral.so"
    WEFTD_VERSION=$("$WEFTD" --version 2>&1 | head -n 1) || die "'$WEFTD --version' failed: $WEFTD_VERSION"
    BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
    [[ $BUILD_TYPE == Debug ]] && say "WARNING: $BUILD_DIR is a Debug build: this measures the compiler, not weftd" >&2
    return 0
}

# The open-file limit must hold SUBS streams in weftd and in the client.
raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard == unlimited ]]; then
        ulimit -n 1048576 2>/dev/null || true
    else
        ulimit -n "$hard" 2>/dev/null || true
    fi
    (($(ulimit -n) >= SUBS + 200)) ||
        die "open-file limit $(ulimit -n) is below SUBS + 200 = $((SUBS + 200)) (hard limit $(ulimit -Hn))"
}

build_client() {
    cc -std=c11 -O2 -Wall -I"$PG_INC" -o "$TMP/referral_latency" "$BENCH_DIR/referral_latency.c" -lpq \
        >"$TMP/cc.log" 2>&1 || die "building referral_latency failed: $(cat "$TMP/cc.log")"
}

# ----------------------------------------------------------------- weftd ---

# write_weft_ini HASHING
write_weft_ini() {
    local ops=2 mem=64m conc=2
    if [[ $1 == light ]]; then
        ops=$LIGHT_OPSLIMIT mem=$LIGHT_MEMLIMIT conc=$LIGHT_CONCURRENCY
    fi
    {
        echo "; generated by bench/referral.sh ($1 hashing)"
        bench_weft_ini_head "$WEFT_PORT" "max_connections = $((SUBS + 1000))"
        cat <<EOF

[database]
enabled = true
url = $PG_CONNINFO
pool_size = $POOL_SIZE

[auth]
argon2_opslimit = $ops
argon2_memlimit = $mem
hash_concurrency = $conc
; the largest the config accepts: the rate limiter must not answer 429
login_rate = 1000000
login_account_rate = 1000000
register_rate = 1000000
; the latency phase subscribes with one access token per run
access_ttl = 1h

[plugins]
watch = false

[plugin.referral]
path = $REFERRAL_SO
enabled = true
EOF
    } >"$TMP/weft.ini"
}

# start_weftd HASHING: (re)start weftd with that hashing setting; its log
# is kept across restarts.
start_weftd() {
    local code
    [[ $WEFTD_HASHING == "$1" && -n $WEFTD_PID ]] && return 0
    stop_weftd
    bench_start_weftd --append write_weft_ini "$1"
    WEFTD_HASHING=$1
    # the plugin's migrations ran when it loaded
    code=$(bench_http_code "$WEFT_URL/api/referral/leaderboard?limit=1")
    [[ $code == 200 ]] || die "GET /api/referral/leaderboard answered $code: is the referral plugin loaded? ($(tail -n 5 "$TMP/weftd.log"))"
    return 0
}

# ------------------------------------------------------------------ data ---

# ACCOUNTS accounts with a referral tree, inserted with SQL into the tables
# weftd's and the plugin's migrations made: account g (1..ACCOUNTS) is
# referred by account 1 + floor((g - 1) * random()^2) (early accounts refer
# many: a skewed leaderboard); direct and second are then counted from the
# links, as the plugin would have counted them. Codes: 8 letters from the
# id. Then REFERRERS late accounts with distinct referrers get the codes
# 2222222<k> (k = 3..), the ones the signups use.
seed_accounts() {
    local n k
    bench_psql >"$TMP/seed.log" 2>&1 <<EOF || die "seeding failed: $(cat "$TMP/seed.log")"
SELECT setseed(0.5);
INSERT INTO weft_users (email, username, display_name, password_hash)
SELECT 'seed' || g || '@example.com', 'seed' || g, 'Seed account ' || g, '$PW_HASH'
FROM generate_series(1, $ACCOUNTS) g;
CREATE TEMP TABLE s AS
SELECT id, g, CASE WHEN g = 1 THEN NULL ELSE 1 + floor((g - 1) * power(random(), 2))::bigint END AS pg
FROM (SELECT id, row_number() OVER (ORDER BY id) AS g FROM weft_users WHERE username LIKE 'seed%') x;
INSERT INTO referral_accounts (user_id, code, referrer_id, linked_at)
SELECT s.id, translate(lpad(to_hex(s.id), 8, '0'), '0123456789abcdef', 'ABCDEFGHJKMNPQRS'), p.id,
       CASE WHEN p.id IS NULL THEN NULL ELSE now() END
FROM s LEFT JOIN s p ON p.g = s.pg;
UPDATE referral_accounts a SET direct = c.n
FROM (SELECT referrer_id, count(*) AS n FROM referral_accounts WHERE referrer_id IS NOT NULL GROUP BY 1) c
WHERE a.user_id = c.referrer_id;
UPDATE referral_accounts a SET second = c.n
FROM (SELECT referrer_id, sum(direct) AS n FROM referral_accounts WHERE referrer_id IS NOT NULL GROUP BY 1) c
WHERE a.user_id = c.referrer_id AND c.n > 0;
CREATE TABLE bench_referrers AS
SELECT row_number() OVER (ORDER BY user_id) AS k, user_id, referrer_id
FROM (SELECT DISTINCT ON (referrer_id) user_id, referrer_id FROM referral_accounts
      WHERE referrer_id IS NOT NULL
        AND user_id > (SELECT max(user_id) - 1000 FROM referral_accounts)
        AND referrer_id <= (SELECT max(user_id) - 1000 FROM referral_accounts)
      ORDER BY referrer_id DESC, user_id LIMIT $REFERRERS) x;
UPDATE referral_accounts a SET code = (22222222 + b.k)::text
FROM bench_referrers b WHERE a.user_id = b.user_id;
VACUUM ANALYZE weft_users;
VACUUM ANALYZE referral_accounts;
EOF
    n=$(bench_psql -c 'SELECT count(*) FROM referral_accounts')
    [[ $n == "$ACCOUNTS" ]] || die "referral_accounts should hold $ACCOUNTS rows after seeding, holds $n"
    k=$(bench_psql -c 'SELECT count(*) FROM bench_referrers')
    [[ $k == "$REFERRERS" ]] || die "found $k of $REFERRERS referrers with distinct referrers"
    CODES=()
    for ((k = 1; k <= REFERRERS; k++)); do
        CODES+=("$((22222222 + k))")
    done
    SEED_TOP=$(bench_psql -c "SELECT max(direct) || ' / ' || max(second) FROM referral_accounts")
    check_counts "seeding" || die "the seeded counts differ from the links"
}

# Every account's counts equal its links: direct = accounts it referred,
# second = the sum of their direct. A lost update would break it.
check_counts() {
    local bad
    bad=$(bench_psql -c "SELECT count(*) FROM referral_accounts a
        LEFT JOIN (SELECT referrer_id, count(*) AS n, sum(direct) AS s FROM referral_accounts
                   WHERE referrer_id IS NOT NULL GROUP BY 1) c ON c.referrer_id = a.user_id
        WHERE a.direct <> coalesce(c.n, 0) OR a.second <> coalesce(c.s, 0)") ||
        die "count check failed"
    if [[ $bad != 0 ]]; then
        FAILURES+=("after $1: $bad account(s) whose direct/second counts differ from their links")
        return 1
    fi
    return 0
}

# One account through the API (it answers the access token and the id).
# register_one NAME CODE OUTFILE -> sets REG_CODE (HTTP status) and REG_MS.
register_one() {
    local body t
    body=$(printf '{"email":"%s@example.com","username":"%s","display_name":"Bench %s","password":"bench-password-1","referral_code":"%s"}' \
        "$1" "$1" "$1" "$2")
    t=$(curl -sS -m 60 -o "$3" -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
        --data-binary "$body" "$WEFT_URL/api/auth/register") || die "POST /api/auth/register failed"
    REG_CODE=${t%% *}
    REG_MS=$(awk -v s="${t#* }" 'BEGIN { printf "%.1f", s * 1000 }')
}

# ------------------------------------------------------------ load runs ----
# Around every run, bench_acct_start "$WEFTD_PID" and bench_acct_end fill
# C[...]: weftd is C[srv] in every run (its outbox relay works in the
# pgbench runs too).

# Before a run: wait (at most 60 s) until weftd is idle (below 0.05 of a
# core over 0.5 s) and the outbox is empty. After a signup run with the
# default hashing, weftd still hashes the registrations that wrk left
# queued when it stopped; that must not land in the next run.
settle() {
    local t0 t1 i n
    bench_tree_ticks "$WEFTD_PID"
    t0=$TREE_TICKS
    for ((i = 0; i < 120; i++)); do
        sleep 0.5
        bench_tree_ticks "$WEFTD_PID"
        t1=$TREE_TICKS
        n=$(bench_psql -c 'SELECT count(*) FROM weft_outbox' 2>/dev/null || echo 1)
        ((t1 - t0 <= CLK_TCK / 40 && n == 0)) && return 0
        t0=$t1
    done
    say "(weftd still busy or the outbox not empty after 60 s: measuring anyway)" >&2
}

RUN_SEQ=0
declare -A R=()

# run_wrk NAME PATH CONNS SECONDS TIMEOUT LUA_ARGS...
run_wrk() {
    local name=$1 path=$2 conns=$3 secs=$4 tmo=$5 out
    shift 5
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-$name.txt
    settle
    bench_acct_start "$WEFTD_PID"
    # In the background + wait: a foreground child would defer Ctrl-C.
    wrk -t"$WRK_THREADS" -c"$conns" -d"${secs}s" --timeout "$tmo" --latency \
        -s "$BENCH_DIR/lua/referral.lua" "$WEFT_URL$path" -- "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "wrk failed: $(cat "$out")"
    LOAD_PID=""
    bench_acct_end
    bench_weftd_alive "the $name run"
    bench_wrk_result "$out" R
    R[rps]=${R[ok_rps]}
    bench_wrk_errtext R
}

# run_pgbench NAME SCRIPT CLIENTS SECONDS [pgbench options...]
run_pgbench() {
    local name=$1 script=$2 clients=$3 secs=$4 out jobs=$PGBENCH_JOBS
    shift 4
    ((jobs > clients)) && jobs=$clients
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-$name.txt
    settle
    bench_acct_start "$WEFTD_PID"
    pgbench -n -M prepared -c "$clients" -j "$jobs" -T "$secs" "$@" -f "$script" \
        -h "$PG_RUN" -p "$PG_PORT" -U "$PG_USER" bench >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || die "pgbench failed: $(tail -n 20 "$out")"
    LOAD_PID=""
    bench_acct_end
    bench_pgbench_result "$out" R
    R[errtext]=none
    if [[ -n ${R[failed]} && ${R[failed]} != 0 ]]; then
        R[errtext]="${R[failed]} failed transactions"
    elif grep -q 'aborted' "$out"; then
        R[errtext]="client(s) aborted: $(grep -m 1 'aborted' "$out")"
    elif ! grep -q '^tps = ' "$out"; then
        R[errtext]="no transaction completed within ${secs}s"
    fi
}

row_head() {
    printf '%-4s %-15s %10s %11s %8s %5s %5s %5s %5s  %s\n' run target "per s" "p50 ms" "p99 ms" \
        srv pg load other errors
}
row() {
    printf '%-4s %-15s %10s %11s %8s %5s %5s %5s %5s  %s\n' "$1" "$2" "${R[rps]}" "${R[p50_ms]}" \
        "${R[p99_ms]}" "${C[srv]}" "${C[pg]}" "${C[load]}" "${C[other]}" "${R[errtext]}"
}

# rounds KIND TARGET_A TARGET_B: RUNS rounds of both targets, the first
# target alternating; fills RPS[target] and P99[target] (space-separated).
rounds() {
    local kind=$1 r t
    local targets=("$2" "$3")
    declare -gA RPS=() P99=() SRVUS=() PGUS=()
    row_head
    if ((WARMUP > 0)); then
        for t in "${targets[@]}"; do
            "run_$kind" "$t" "$WARMUP" warm
            row warm "$t"
        done
    fi
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${targets[@]:$(((r - 1) % 2))}" "${targets[@]:0:$(((r - 1) % 2))}"; do
            "run_$kind" "$t" "$DURATION" "run$r"
            row "$r" "$t"
            RPS[$t]+=" ${R[rps]}"
            P99[$t]+=" ${R[p99_ms]}"
            SRVUS[$t]+=" $(bench_per_req "${C[srv]}" "${R[rps]}")"
            PGUS[$t]+=" $(bench_per_req "${C[pg]}" "${R[rps]}")"
            [[ ${R[errtext]} == none ]] || FAILURES+=("$kind $t run $r: ${R[errtext]}")
        done
    done
}

# ---------------------------------------------------------------- phases ---

write_board_pgbench() {
    # The plugin's SELECT (plugins/referral/referral_read.c, ref_sql_board),
    # its four parameters as pgbench variables: prepared, like weftd's.
    cat >"$TMP/board.pgbench" <<EOF
\\set pd 10
\\set ps 3
\\set lim $PAGE
\\set off random(0, $((ACCOUNTS - PAGE)))
SELECT (SELECT count(*) FROM referral_accounts) AS total, (SELECT coalesce(json_agg(json_build_object('user_id', x.user_id, 'username', x.username, 'display_name', x.display_name, 'direct', x.direct, 'second', x.second, 'points', x.points, 'rev', x.rev) ORDER BY x.points DESC, x.direct DESC, x.user_id), '[]'::json) FROM (SELECT a.user_id, u.username, u.display_name, a.direct, a.second, a.direct::bigint * :pd::bigint + a.second::bigint * :ps::bigint AS points, a.rev FROM referral_accounts a JOIN weft_users u ON u.id = a.user_id ORDER BY points DESC, a.direct DESC, a.user_id LIMIT :lim::bigint OFFSET :off::bigint) x) AS items;
EOF
}

run_read() {
    local t=$1 secs=$2 tag=$3
    if [[ $t == weftd ]]; then
        run_wrk "read-$tag-weftd" "/api/referral/leaderboard" "$READ_CONNS" "$secs" 5s \
            board "$PAGE" "$((ACCOUNTS - PAGE))"
    else
        run_pgbench "read-$tag-pgbench" "$TMP/board.pgbench" "$PG_CLIENTS" "$secs"
    fi
}

phase_read() {
    local code items
    say ""
    say "== read: GET /api/referral/leaderboard?limit=$PAGE&offset=<random 0..$((ACCOUNTS - PAGE))> over $ACCOUNTS accounts"
    say "   wrk -t$WRK_THREADS -c$READ_CONNS; pgbench -M prepared -c$PG_CLIENTS (= weftd's pool) on the plugin's SELECT"
    say "   (count(*) of the table + one page sorted by points, direct, user_id, as JSON);"
    say "   ${DURATION}s runs, $RUNS rounds, targets alternated, one ${WARMUP}s warm-up each. CPU in cores:"
    say "   srv = weftd, pg = PostgreSQL (all backends), load = wrk or pgbench, other = everything else"
    code=$(curl -sS -m 10 -o "$TMP/board.body" -w '%{http_code}' \
        "$WEFT_URL/api/referral/leaderboard?limit=$PAGE&offset=$((ACCOUNTS / 2))") || die "GET leaderboard failed"
    [[ $code == 200 ]] || die "GET /api/referral/leaderboard answered $code: $(head -c 300 "$TMP/board.body")"
    items=$(grep -o '"rank":' "$TMP/board.body" | wc -l)
    if ! grep -q "\"total\":${ACCOUNTS}[,}]" "$TMP/board.body" || ((items != PAGE)); then
        die "the leaderboard page should hold $PAGE items of $ACCOUNTS: $(head -c 300 "$TMP/board.body")"
    fi
    say "   a page is $(wc -c <"$TMP/board.body") bytes of JSON"
    rounds read weftd pgbench
    READ_W=$(medof "${RPS[weftd]}")
    READ_P=$(medof "${RPS[pgbench]}")
    READ_RATIO=$(ratio "$READ_W" "$READ_P")
    say "medians over $RUNS runs (CPU µs per request: weftd, PostgreSQL):"
    say "  weftd    $READ_W req/s   srv $(medof "${SRVUS[weftd]}") µs  pg $(medof "${PGUS[weftd]}") µs   p99 ms:${P99[weftd]}"
    say "  pgbench  $READ_P tps     pg $(medof "${PGUS[pgbench]}") µs"
    say "  weftd / pgbench = $READ_RATIO"
    SUMMARY+=("leaderboard reads: weftd $READ_W req/s, pgbench $READ_P tps: weftd/pgbench = $READ_RATIO")
    MD+=("| leaderboard reads/s (limit $PAGE, random offset, $ACCOUNTS accounts, $READ_CONNS conns) | $READ_W | $READ_P tps | **$READ_RATIO** | $(medof "${PGUS[weftd]}") / $(medof "${PGUS[pgbench]}") |")
}

write_signup_pgbench() {
    # The statements of one registration with a referral code, in weftd's
    # order (host/auth.c, host/signup.c, plugins/referral/referral_link.c,
    # host/bus.c): BEGIN; the account; the referrer's direct count (by code)
    # and its referrer's second count; the new account's row; three outbox
    # events (friend_joined to the referrer and to its referrer, changes to
    # the leaderboard) each with pg_notify; COMMIT; then, as the answer
    # does, the refresh token. New names come from a per-client counter
    # (:n, defined with -D n=0), the new account's code (8 digits 2..9)
    # from its id. JSON colons are followed by a space: ":word" would be a
    # pgbench variable.
    cat >"$TMP/signup.pgbench" <<EOF
\\set n :n + 1
\\set k random(1, $REFERRERS)
\\set c 22222222 + :k
BEGIN;
INSERT INTO weft_users (email, username, display_name, password_hash) VALUES ('p' || :tag::text || 'c' || :client_id::text || 'n' || :n::text || '@example.com', 'p' || :tag::text || 'c' || :client_id::text || 'n' || :n::text, 'Peer account', '$PW_HASH') RETURNING id, email, username, display_name, roles, created_at \\gset u_
WITH up AS (UPDATE referral_accounts SET direct = direct + 1, rev = nextval('referral_rev_seq') WHERE code = :c RETURNING user_id, referrer_id, direct, second, rev) SELECT up.user_id, u.username, u.display_name, up.direct, up.second, up.rev, up.referrer_id FROM up JOIN weft_users u ON u.id = up.user_id \\gset r_
WITH up AS (UPDATE referral_accounts SET second = second + 1, rev = nextval('referral_rev_seq') WHERE user_id = :r_referrer_id::bigint RETURNING user_id, referrer_id, direct, second, rev) SELECT up.user_id, u.username, u.display_name, up.direct, up.second, up.rev, up.referrer_id FROM up JOIN weft_users u ON u.id = up.user_id;
\\set r (:u_id + 1000) % 16777216
\\set code 22222222 + (:r % 8) + 10 * ((:r / 8) % 8) + 100 * ((:r / 64) % 8) + 1000 * ((:r / 512) % 8) + 10000 * ((:r / 4096) % 8) + 100000 * ((:r / 32768) % 8) + 1000000 * ((:r / 262144) % 8) + 10000000 * ((:r / 2097152) % 8)
WITH ins AS (INSERT INTO referral_accounts (user_id, code, referrer_id, linked_at) VALUES (:u_id::bigint, :code::text, :r_user_id::bigint, CASE WHEN :r_user_id::bigint IS NULL THEN NULL ELSE now() END) ON CONFLICT DO NOTHING RETURNING user_id, direct, second, rev) SELECT ins.user_id, u.username, u.display_name, ins.direct, ins.second, ins.rev FROM ins JOIN weft_users u ON u.id = ins.user_id;
WITH i AS (INSERT INTO weft_outbox (topic, data) VALUES ('referral.user.' || :r_user_id::text, '{"type": "friend_joined", "id": "friend_joined.' || :u_id::text || '.1", "level": 1, "user": {"id": ' || :u_id::text || ', "username": "peer", "display_name": "Peer account"}}') RETURNING id) SELECT pg_notify('weft_outbox', '') FROM i;
WITH i AS (INSERT INTO weft_outbox (topic, data) VALUES ('referral.user.' || :r_referrer_id::text, '{"type": "friend_joined", "id": "friend_joined.' || :u_id::text || '.2", "level": 2, "user": {"id": ' || :u_id::text || ', "username": "peer", "display_name": "Peer account"}, "via": {"id": ' || :r_user_id::text || ', "username": "seed", "display_name": "Seed account"}}') RETURNING id) SELECT pg_notify('weft_outbox', '') FROM i;
WITH i AS (INSERT INTO weft_outbox (topic, data) VALUES ('referral.leaderboard', '{"type": "changes", "changes": [{"user_id": ' || :r_user_id::text || ', "username": "seed", "display_name": "Seed account", "direct": 1, "second": 0, "points": 10, "rev": 1}, {"user_id": ' || :r_referrer_id::text || ', "username": "seed", "display_name": "Seed account", "direct": 1, "second": 1, "points": 13, "rev": 2}, {"user_id": ' || :u_id::text || ', "username": "peer", "display_name": "Peer account", "direct": 0, "second": 0, "points": 0, "rev": 3}]}') RETURNING id) SELECT pg_notify('weft_outbox', '') FROM i;
COMMIT;
INSERT INTO weft_refresh_tokens (token_hash, user_id, family, expires_at) VALUES (lpad(:u_id::text, 64, 'f'), :u_id::bigint, gen_random_uuid(), now() + '2592000000 milliseconds'::interval);
EOF
}

SIGNUP_HASHING=""
run_signup() {
    local t=$1 secs=$2 tag=$3
    RUN_TAG=$((RUN_TAG + 1))
    if [[ $t == weftd ]]; then
        run_wrk "signup-$SIGNUP_HASHING-$tag-weftd" "/api/auth/register" "$SIGNUP_CONNS" "$secs" 10s \
            register "w${RUN_TAG}x" "${CODES[@]}"
    else
        run_pgbench "signup-$SIGNUP_HASHING-$tag-pgbench" "$TMP/signup.pgbench" "$PG_CLIENTS" "$secs" \
            -D n=0 -D tag="$RUN_TAG"
    fi
}

phase_signup() {
    local h=$1 times=() i ops=2 mem=64m conc=2 one
    [[ $h == light ]] && ops=$LIGHT_OPSLIMIT mem=$LIGHT_MEMLIMIT conc=$LIGHT_CONCURRENCY
    start_weftd "$h"
    SIGNUP_HASHING=$h
    say ""
    say "== signup ($h hashing: argon2id opslimit $ops, memlimit $mem, hash_concurrency $conc):"
    say "   POST /api/auth/register, a new account per request with one of ${#CODES[@]} referral codes"
    say "   (${CODES[*]}; each referrer has its own referrer: two counts per signup),"
    say "   wrk -t$WRK_THREADS -c$SIGNUP_CONNS --timeout 10s; pgbench -M prepared -c$PG_CLIENTS (= weftd's pool) on"
    say "   the same statements (BEGIN, 8 statements, COMMIT, refresh token); rate limits at their maximum"
    for i in 1 2 3 4 5; do
        RUN_TAG=$((RUN_TAG + 1))
        register_one "one${RUN_TAG}x$i" "${CODES[0]}" "$TMP/one.body"
        [[ $REG_CODE == 201 ]] || die "a registration answered $REG_CODE: $(head -c 300 "$TMP/one.body")"
        times+=("$REG_MS")
    done
    one=$(bench_median "${times[@]}")
    say "   one signup alone on the idle server (curl, median of 5): $one ms"
    rounds signup weftd pgbench
    SIGNUP_W[$h]=$(medof "${RPS[weftd]}")
    SIGNUP_P[$h]=$(medof "${RPS[pgbench]}")
    SIGNUP_R[$h]=$(ratio "${SIGNUP_W[$h]}" "${SIGNUP_P[$h]}")
    say "medians over $RUNS runs (CPU µs per signup: weftd, PostgreSQL):"
    say "  weftd    ${SIGNUP_W[$h]} signups/s   srv $(medof "${SRVUS[weftd]}") µs  pg $(medof "${PGUS[weftd]}") µs   p99 ms:${P99[weftd]}"
    say "  pgbench  ${SIGNUP_P[$h]} tps         pg $(medof "${PGUS[pgbench]}") µs"
    say "  weftd / pgbench = ${SIGNUP_R[$h]}"
    say "  hashing ceiling: hash_concurrency / one signup alone = $(awk -v c="$conc" -v t="$one" 'BEGIN { printf "%.1f", (t > 0 ? c * 1000 / t : 0) }')/s (if the hashes had the cores)"
    check_counts "the $h signup phase" && say "  counts checked: every account's direct/second equal its links"
    SUMMARY+=("signups ($h hashing): weftd ${SIGNUP_W[$h]}/s, pgbench ${SIGNUP_P[$h]} tps: weftd/pgbench = ${SIGNUP_R[$h]} (one alone: $one ms)")
    MD+=("| signups/s, $h hashing (opslimit $ops, memlimit $mem, concurrency $conc; $SIGNUP_CONNS conns) | ${SIGNUP_W[$h]} | ${SIGNUP_P[$h]} tps | **${SIGNUP_R[$h]}** | $(medof "${PGUS[weftd]}") / $(medof "${PGUS[pgbench]}") |")
}

# The latency client's RESULT line into L[...].
parse_result() {
    local kv
    L=()
    for kv in $(grep '^RESULT ' "$1" | tail -n 1); do
        [[ $kv == *=* ]] && L[${kv%%=*}]=${kv#*=}
    done
    [[ -n ${L[ok]:-} ]] || die "the latency client printed no RESULT: $(tail -n 5 "$1")"
}

# lat_row RUN TARGET: one row of the latency table from L[...].
lat_row() {
    printf '%-4s %-7s %8s %8s %8s | %8s %8s %8s %5s | %8s %8s %8s | %8s %8s %5s  %s\n' "$1" "$2" \
        "${L[ce_p50]}" "${L[ce_p99]}" "${L[ce_max]}" "${L[ae_p50]}" "${L[ae_p99]}" "${L[ae_max]}" \
        "${L[ae_neg]}" "${L[se_p50]}" "${L[se_p99]}" "${L[se_max]}" "${L[aa_p50]}" "${L[aa_p99]}" \
        "${C[other]}" "$3"
}

# lat_sse RUN SUBS LABEL CODE TOKEN A_ID: one run of the latency client on
# weftd; fills L[...] and prints its row.
lat_sse() {
    local r=$1 subs=$2 label=$3 out rc
    RUN_TAG=$((RUN_TAG + 1))
    RUN_SEQ=$((RUN_SEQ + 1))
    out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-latency-$r-$label
    bench_acct_start "$WEFTD_PID"
    "$TMP/referral_latency" sse --port "$WEFT_PORT" --subs "$subs" --signups "$SIGNUPS" \
        --tag "l${RUN_TAG}x" --code "$4" --token "$5" --user-id "$6" --gap-ms "$GAP_MS" \
        --conninfo "$PG_CONNINFO" --out "$out.samples" >"$out.txt" 2>"$out.err" &
    LOAD_PID=$!
    wait "$LOAD_PID" && rc=0 || rc=$?
    LOAD_PID=""
    bench_acct_end
    bench_weftd_alive "latency run $r ($label)"
    ((rc <= 1)) || die "the latency client failed ($rc): $(tail -n 5 "$out.err")"
    parse_result "$out.txt"
    ((L[subscribed] == subs + 1)) ||
        die "only ${L[subscribed]} of $((subs + 1)) streams subscribed: $(tail -n 5 "$out.err")"
    ((L[ce_n] == L[ok])) ||
        FAILURES+=("latency run $r ($label): commit timestamps of ${L[ce_n]} of ${L[ok]} signups (track_commit_timestamp?)")
    lat_row "$r" "$label" "${L[lost_ev]}/${L[lost_all]}, ${L[disconnects]}"
    ((rc == 0)) || FAILURES+=("latency run $r ($label): ${L[ok]} of $SIGNUPS signups answered 201, ${L[lost_ev]} events lost on A's stream, ${L[lost_all]} not reaching every subscriber, ${L[disconnects]} disconnects")
    return 0
}

phase_latency() {
    local r out aid token code rc k
    declare -A L=() W=() P=() Z=()
    start_weftd "$LAT_HASHING"
    build_client
    say ""
    say "== latency ($LAT_HASHING hashing): $SUBS subscribers on GET /api/realtime?topic=referral.leaderboard"
    say "   (public; each gets every signup's changes event) and referrer A's own stream"
    say "   GET /api/realtime?topic=referral.user.<A> (Bearer token); A is a new account per run, referred by"
    say "   ${CODES[0]}. Then $SIGNUPS signups one at a time with A's code, the next ${GAP_MS} ms after every stream had"
    say "   its event. Per signup, until the friend_joined event was read on A's stream:"
    say "     ce  from the commit: the signup's commit timestamp (pg_xact_commit_timestamp of its weft_users"
    say "         row; PostgreSQL takes it as it writes the commit record, before the WAL flush)"
    say "     ae  from the moment the 201 answer was read (negative: the event came first; weftd commits,"
    say "         then stores the refresh token, then answers)"
    say "     se  from sending the request (includes the $LAT_HASHING argon2id hash)"
    say "     aa  answer -> the last of the $SUBS leaderboard subscribers read the changes event"
    ((LAT_CONTROL && SUBS > 0)) &&
        say "   weftd-0: the same on the same weftd with no other subscriber connected (control)"
    say "   Peer (notify): PostgreSQL alone, BEGIN; INSERT; SELECT pg_notify(); COMMIT on one connection, LISTEN on"
    say "   another: ce = commit timestamp -> notification read, ae = COMMIT answered -> notification read,"
    say "   se = COMMIT sent -> notification read. µs; p50/p99/max over the $SIGNUPS signups of a run (nearest rank);"
    say "   other = cores used by other processes during the run"
    printf '%-4s %-7s %8s %8s %8s | %8s %8s %8s %5s | %8s %8s %8s | %8s %8s %5s  %s\n' run target "ce p50" \
        "ce p99" "ce max" "ae p50" "ae p99" "ae max" "neg" "se p50" "se p99" "se max" "aa p50" "aa p99" \
        other "lost ev/all, disconn."
    for ((r = 1; r <= LAT_RUNS; r++)); do
        RUN_TAG=$((RUN_TAG + 1))
        register_one "lat${RUN_TAG}a" "${CODES[0]}" "$TMP/a.body"
        [[ $REG_CODE == 201 ]] || die "registering A answered $REG_CODE: $(head -c 300 "$TMP/a.body")"
        token=$(json_str "$TMP/a.body" access_token)
        aid=$(json_user_id "$TMP/a.body")
        [[ -n $token && -n $aid ]] || die "no access token or user id in the registration answer: $(head -c 300 "$TMP/a.body")"
        curl -sS -m 10 -o "$TMP/me.body" -H "Authorization: Bearer $token" "$WEFT_URL/api/referral/me" ||
            die "GET /api/referral/me failed"
        code=$(json_str "$TMP/me.body" code)
        [[ -n $code ]] || die "GET /api/referral/me gave no code: $(head -c 300 "$TMP/me.body")"
        settle
        lat_sse "$r" "$SUBS" weftd "$code" "$token" "$aid"
        for k in ce_p50 ce_p99 ce_max ae_p50 ae_p99 ae_max ae_neg se_p50 se_p99 se_max sa_p50 aa_p50 aa_p99; do
            W[$k]+=" ${L[$k]}"
        done
        if ((LAT_CONTROL && SUBS > 0)); then
            settle
            lat_sse "$r" 0 weftd-0 "$code" "$token" "$aid"
            for k in ce_p50 ce_p99 ce_max ae_p50 ae_p99; do
                Z[$k]+=" ${L[$k]}"
            done
        fi
        # the peer, right after, on the same PostgreSQL server
        RUN_SEQ=$((RUN_SEQ + 1))
        out=$TMP/runs/$(printf '%03d' "$RUN_SEQ")-latency-$r-notify
        bench_acct_start "$WEFTD_PID"
        "$TMP/referral_latency" notify --conninfo "$PG_CONNINFO" --signups "$SIGNUPS" --gap-ms "$GAP_MS" \
            --out "$out.samples" >"$out.txt" 2>"$out.err" &
        LOAD_PID=$!
        wait "$LOAD_PID" && rc=0 || rc=$?
        LOAD_PID=""
        bench_acct_end
        ((rc <= 1)) || die "the NOTIFY peer failed ($rc): $(tail -n 5 "$out.err")"
        parse_result "$out.txt"
        L[aa_p50]=- L[aa_p99]=-
        lat_row "$r" notify "${L[lost_ev]}"
        ((rc == 0)) || FAILURES+=("NOTIFY peer run $r: ${L[lost_ev]} notifications lost")
        for k in ce_p50 ce_p99 ce_max ae_p50 ae_p99 se_p50; do
            P[$k]+=" ${L[$k]}"
        done
    done
    for k in "${!W[@]}"; do
        W[$k]=$(medof "${W[$k]}")
    done
    for k in "${!P[@]}"; do
        P[$k]=$(medof "${P[$k]}")
    done
    for k in "${!Z[@]}"; do
        Z[$k]=$(medof "${Z[$k]}")
    done
    LAT_RATIO=$(ratio "${W[ce_p50]}" "${P[ce_p50]}")
    LAT_RATIO99=$(ratio "${W[ce_p99]}" "${P[ce_p99]}")
    say "medians over $LAT_RUNS runs, ms:"
    say "  weftd   commit -> event  p50 $(bench_us_to_ms "${W[ce_p50]}")  p99 $(bench_us_to_ms "${W[ce_p99]}")  max $(bench_us_to_ms "${W[ce_max]}")"
    say "          answer -> event  p50 $(bench_us_to_ms "${W[ae_p50]}")  p99 $(bench_us_to_ms "${W[ae_p99]}")  max $(bench_us_to_ms "${W[ae_max]}")  (event first in ${W[ae_neg]} of $SIGNUPS)"
    say "          send -> event    p50 $(bench_us_to_ms "${W[se_p50]}")  p99 $(bench_us_to_ms "${W[se_p99]}")  max $(bench_us_to_ms "${W[se_max]}")  (send -> answer p50 $(bench_us_to_ms "${W[sa_p50]}"))"
    say "          answer -> every one of the $SUBS leaderboard subscribers  p50 $(bench_us_to_ms "${W[aa_p50]}")  p99 $(bench_us_to_ms "${W[aa_p99]}")"
    if ((${#Z[@]})); then
        say "  weftd-0 (no other subscriber) commit -> event  p50 $(bench_us_to_ms "${Z[ce_p50]}")  p99 $(bench_us_to_ms "${Z[ce_p99]}")  max $(bench_us_to_ms "${Z[ce_max]}");"
        say "          answer -> event  p50 $(bench_us_to_ms "${Z[ae_p50]}")  p99 $(bench_us_to_ms "${Z[ae_p99]}")"
    fi
    say "  notify  commit -> NOTIFY read  p50 $(bench_us_to_ms "${P[ce_p50]}")  p99 $(bench_us_to_ms "${P[ce_p99]}")  max $(bench_us_to_ms "${P[ce_max]}")  (COMMIT answered -> NOTIFY p50 $(bench_us_to_ms "${P[ae_p50]}"))"
    say "  weftd / notify, commit -> event: p50 $LAT_RATIO, p99 $LAT_RATIO99"
    SUMMARY+=("signup -> friend_joined on the referrer's stream ($SUBS other subscribers): from the commit p50 $(bench_us_to_ms "${W[ce_p50]}") ms, p99 $(bench_us_to_ms "${W[ce_p99]}") ms; from the answer p50 $(bench_us_to_ms "${W[ae_p50]}") ms, p99 $(bench_us_to_ms "${W[ae_p99]}") ms, max $(bench_us_to_ms "${W[ae_max]}") ms (event first in ${W[ae_neg]} of $SIGNUPS); from sending p50 $(bench_us_to_ms "${W[se_p50]}") ms, p99 $(bench_us_to_ms "${W[se_p99]}") ms")
    SUMMARY+=("PostgreSQL commit -> NOTIFY read: p50 $(bench_us_to_ms "${P[ce_p50]}") ms, p99 $(bench_us_to_ms "${P[ce_p99]}") ms: weftd/notify p50 $LAT_RATIO, p99 $LAT_RATIO99")
    MD+=("| commit → friend_joined on A's stream, $SUBS other subscribers, p50 / p99 / max ms | $(bench_us_to_ms "${W[ce_p50]}") / $(bench_us_to_ms "${W[ce_p99]}") / $(bench_us_to_ms "${W[ce_max]}") | $(bench_us_to_ms "${P[ce_p50]}") / $(bench_us_to_ms "${P[ce_p99]}") / $(bench_us_to_ms "${P[ce_max]}") (commit → NOTIFY) | **$LAT_RATIO** (p50), $LAT_RATIO99 (p99) | – |")
    if ((${#Z[@]})); then
        MD+=("| the same with no other subscriber (control), p50 / p99 / max ms | $(bench_us_to_ms "${Z[ce_p50]}") / $(bench_us_to_ms "${Z[ce_p99]}") / $(bench_us_to_ms "${Z[ce_max]}") | – | $(ratio "${Z[ce_p50]}" "${P[ce_p50]}") (p50), $(ratio "${Z[ce_p99]}" "${P[ce_p99]}") (p99) | – |")
        SUMMARY+=("control, no other subscriber: commit -> event p50 $(bench_us_to_ms "${Z[ce_p50]}") ms, p99 $(bench_us_to_ms "${Z[ce_p99]}") ms")
    fi
    MD+=("| 201 answer read → friend_joined, p50 / p99 / max ms (event first in ${W[ae_neg]} of $SIGNUPS) | $(bench_us_to_ms "${W[ae_p50]}") / $(bench_us_to_ms "${W[ae_p99]}") / $(bench_us_to_ms "${W[ae_max]}") | $(bench_us_to_ms "${P[ae_p50]}") / $(bench_us_to_ms "${P[ae_p99]}") (COMMIT answered → NOTIFY) | – | – |")
    MD+=("| request sent → friend_joined ($LAT_HASHING argon2id hash included), p50 / p99 / max ms | $(bench_us_to_ms "${W[se_p50]}") / $(bench_us_to_ms "${W[se_p99]}") / $(bench_us_to_ms "${W[se_max]}") | – | – | – |")
    MD+=("| 201 answer read → all $SUBS leaderboard subscribers had the changes event, p50 / p99 ms | $(bench_us_to_ms "${W[aa_p50]}") / $(bench_us_to_ms "${W[aa_p99]}") | – | – | – |")
}

# ------------------------------------------------------------------ main ---

check_args
check_tools
check_build

LOAD_AVG=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-refbench.XXXXXX")
mkdir -p "$TMP/runs"
RUN_TAG=$((RANDOM % 1000 * 1000))
declare -A SIGNUP_W=() SIGNUP_P=() SIGNUP_R=()

raise_nofile
bench_start_pg "# commit -> event: the latency phase reads each signup's commit time" \
    "track_commit_timestamp = on"
first=default
[[ " $PHASES " == *" signup "* ]] && first=${HASHING%% *}
[[ " $PHASES " == *" read "* || " $PHASES " == *" signup "* ]] || first=$LAT_HASHING
start_weftd "$first"
seed_accounts
write_board_pgbench
write_signup_pgbench

bench_header "the referral plugin (issue 5) - signups, leaderboard reads, signup -> event latency"
say "load      $LOAD_AVG (1/5/15 min averages at the start)"
say "postgres  $PG_VERSION, one server for weftd and pgbench, Unix socket only, max_connections 200, fsync on"
say "weftd     $WEFTD_VERSION (${BUILD_TYPE:-unknown} build, $BUILD_DIR), $THREADS event loops, pool $POOL_SIZE x $THREADS = $((POOL_SIZE * THREADS)) connections"
say "data      $ACCOUNTS seeded accounts in a referral tree (largest direct / second: $SEED_TOP); signup referrers: ${CODES[*]}"
say "tools     wrk $(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }') (bench/lua/referral.lua), pgbench $(pgbench --version | awk '{ print $3 }')"
say "NOTE      $NCPU core(s) shared by the load generator, weftd and PostgreSQL (and other work on the"
say "          machine: see 'other'); compare ratios, not absolute figures"

for phase in $PHASES; do
    case $phase in
    read) phase_read ;;
    signup)
        for h in $HASHING; do
            phase_signup "$h"
            # the latency phase runs on the setting it asks for, right after it
            if [[ $h == "$LAT_HASHING" && " $PHASES " == *" latency "* ]]; then
                phase_latency
                LAT_DONE=1
            fi
        done
        ;;
    latency) [[ -n ${LAT_DONE:-} ]] || phase_latency ;;
    esac
done

say ""
bench_summary "${SUMMARY[@]}"
say "most CPU taken by other processes during one run: $MAX_OTHER of $NCPU cores"
bench_warn_if_busy
if ((${#MD[@]})); then
    say ""
    say "== for bench/RESULTS.md (medians of $RUNS runs, $LAT_RUNS for the latency)"
    say "| figure | weftd | peer | ratio weftd/peer | PostgreSQL CPU µs per op (weftd / peer) |"
    say "| --- | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${MD[@]}"
fi
if grep -q . "$TMP/weftd.log"; then
    say "weftd log ([log] level $LOG_LEVEL): $(wc -l <"$TMP/weftd.log") line(s), the most frequent (digits as N):"
    sed 's/[0-9][0-9]*/N/g' "$TMP/weftd.log" | sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  | /'
else
    say "weftd log ([log] level $LOG_LEVEL): empty"
fi
bench_fail_if_any "${FAILURES[@]}"
say "== all checks passed (zero non-2xx, zero socket errors, zero failed pgbench transactions, counts equal links, no event lost)"
