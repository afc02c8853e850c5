/*
 * referral_latency - latency client for bench/referral.sh: the time from a
 * signup's answer to its friend_joined event on the referrer's open SSE
 * stream, with many other SSE subscribers connected; and the peer
 * measurement, PostgreSQL's own commit -> NOTIFY delivery. Built by the
 * script into its temp dir:
 *
 *   cc -std=c11 -O2 -I$(pg_config --includedir) -o referral_latency \
 *      bench/referral_latency.c -lpq
 *
 * sse mode:
 *   referral_latency sse --port P --subs S --signups N --tag TAG
 *       --code CODE --token ACCESS_TOKEN --user-id A [--gap-ms 10]
 *       [--out FILE] [--conninfo "host=... dbname=..."]
 *   1. opens S connections GET /api/realtime?topic=referral.leaderboard
 *      (no credentials: the topic is public) and one
 *      GET /api/realtime?topic=referral.user.<A> with
 *      "Authorization: Bearer ACCESS_TOKEN"; each counts as subscribed when
 *      its `event: subscribed` arrives;
 *   2. N signups one at a time on one keep-alive connection:
 *      POST /api/auth/register {"email","username","display_name",
 *      "password","referral_code":CODE}, username "<TAG>k<k>". For each:
 *        t_send  just before the request is written,
 *        t_ans   when the read() that completed the answer returned
 *                (status must be 201),
 *        t_ev    when the read() on A's stream returned that completed an
 *                event naming the new username (friend_joined, level 1),
 *        t_all   when the last of the S leaderboard subscribers had read
 *                one more `event: message` than before the signup;
 *      then waits until all three happened (or 30 s for the answer, 5 s
 *      after it for the events: then counted lost), then --gap-ms while
 *      still reading every socket. The events may arrive before the
 *      answer: weftd commits, then stores the refresh token, then answers,
 *      while the outbox relay publishes on commit; so t_ev - t_ans can be
 *      negative, and it is a lower bound of commit -> event.
 *   All times CLOCK_MONOTONIC, taken right after the read() / before the
 *   write(). One epoll loop for everything; every socket is drained.
 *   With --conninfo, also commit -> event: after the signups it reads
 *   each new account's commit timestamp, pg_xact_commit_timestamp(xmin) of
 *   its weft_users row (needs track_commit_timestamp = on; PostgreSQL
 *   takes it as it writes the commit record, before flushing it), and
 *   subtracts it from the CLOCK_REALTIME of the event's read() (same
 *   machine, same clock).
 *
 * notify mode (the peer):
 *   referral_latency notify --conninfo "host=... dbname=..." --signups N
 *       [--gap-ms 10] [--out FILE]
 *   One connection LISTENs on channel weft_bench_lat; another runs N times
 *   BEGIN; INSERT INTO weft_bench_lat (k, data) VALUES (...);
 *   SELECT pg_notify('weft_bench_lat', k); COMMIT. t_ans = when COMMIT's
 *   result arrived, t_ev = when the notification was read on the other
 *   connection, t_send = when COMMIT was sent; commit -> event from the
 *   row's commit timestamp as above. Creates the table weft_bench_lat if
 *   it does not exist and empties it at the end.
 *
 * Output: progress on stderr; per signup a line in --out
 *   k status send_to_answer_us answer_to_event_us send_to_event_us
 *   answer_to_all_us commit_to_event_us   ("lost" / "-" where not measured)
 * and one line on stdout, key=value (µs unless named otherwise; -1: not
 * measured):
 *   RESULT mode subs subscribed connect_ms signups ok lost_ev lost_all
 *          disconnects ae_p50 ae_p99 ae_max ae_min ae_neg se_p50 se_p99
 *          se_max sa_p50 sa_p99 sa_max aa_p50 aa_p99 aa_max ce_n ce_p50
 *          ce_p99 ce_max ce_min
 *   ae = answer -> event, se = send -> event, sa = send -> answer,
 *   aa = answer -> every leaderboard subscriber had it, ce = commit ->
 *   event; percentiles by nearest rank over the signups where both ends
 *   were seen.
 * Exit status 0 when every connection subscribed, every signup was
 * answered 201 and no event was lost; 1 otherwise (figures printed
 * anyway); 2 usage.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define RL_NONE INT64_MIN

enum { K_SUB = 0, K_USER, K_REG };

struct conn {
    int fd, kind, dead;
    int head_ok;              /* "HTTP/1.1 200" seen (streams) */
    int subscribed;
    uint64_t msgs, want;      /* `event: message` count; count awaited */
    char tail[32];            /* last bytes of the stream, for matching */
    size_t taillen;
    char *buf;                /* K_USER: stream text; K_REG: answer */
    size_t len, cap;
};

static int g_port;
static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "referral_latency: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void buf_add(struct conn *c, const char *p, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n + 1)
            cap *= 2;
        c->buf = realloc(c->buf, cap);
        if (c->buf == NULL)
            die("realloc");
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

/* Occurrences of pat in (tail + p[0..n)), keeping the tail for the next
 * call so that a pattern split across reads still counts once. */
static unsigned count_pat(struct conn *c, const char *p, size_t n,
                          const char *pat, int keep)
{
    char tmp[4096 + 32];
    size_t plen = strlen(pat), off = 0;
    unsigned hits = 0;

    while (off < n) {
        size_t chunk = n - off > 4096 ? 4096 : n - off, tot, i;
        memcpy(tmp, c->tail, c->taillen);
        memcpy(tmp + c->taillen, p + off, chunk);
        tot = c->taillen + chunk;
        for (i = 0; i + plen <= tot; i++)
            if (memcmp(tmp + i, pat, plen) == 0)
                hits++;
        if (keep) {
            size_t k = tot < plen - 1 ? tot : plen - 1;
            memcpy(c->tail, tmp + tot - k, k);
            c->taillen = k;
        }
        off += chunk;
    }
    return hits;
}

static int connect_lo(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        die("socket");
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)g_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {fd, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

static void set_nb(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static int64_t pct(const int64_t *v, size_t n, double p)
{
    size_t r;

    if (n == 0)
        return -1;
    r = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return v[r - 1];
}

struct sample {
    int status;
    int64_t send, ans, ev, all; /* CLOCK_MONOTONIC ns */
    int64_t ev_rt, commit_rt;   /* CLOCK_REALTIME µs (RL_NONE: unknown) */
};

struct stats {
    int64_t p50, p99, max, min;
    size_t neg;
};

static struct stats stats_of(int64_t *v, size_t n)
{
    struct stats s = {-1, -1, -1, -1, 0};

    if (n == 0)
        return s;
    qsort(v, n, sizeof(*v), cmp_i64);
    s.p50 = pct(v, n, 50);
    s.p99 = pct(v, n, 99);
    s.max = v[n - 1];
    s.min = v[0];
    for (size_t i = 0; i < n; i++)
        s.neg += v[i] < 0;
    return s;
}

static void report(const char *mode, int subs, int subscribed,
                   int64_t connect_ns, struct sample *sm, int n, int ok,
                   int lost_ev, int lost_all, int disconnects,
                   const char *out)
{
    int64_t *ae = calloc((size_t)n + 1, sizeof(int64_t)),
            *se = calloc((size_t)n + 1, sizeof(int64_t)),
            *sa = calloc((size_t)n + 1, sizeof(int64_t)),
            *aa = calloc((size_t)n + 1, sizeof(int64_t)),
            *ce = calloc((size_t)n + 1, sizeof(int64_t));
    size_t ne = 0, na = 0, nsa = 0, nce = 0;
    FILE *f = out ? fopen(out, "w") : NULL;
    struct stats s1, s2, s3, s4, s5;

    if (ae == NULL || se == NULL || sa == NULL || aa == NULL || ce == NULL)
        die("calloc");
    if (f)
        fprintf(f, "# k status send_to_answer_us answer_to_event_us "
                   "send_to_event_us answer_to_all_us commit_to_event_us\n");
    for (int k = 0; k < n; k++) {
        struct sample *x = &sm[k];
        int64_t vsa = x->ans != RL_NONE ? (x->ans - x->send) / 1000 : -1;
        if (x->ans != RL_NONE)
            sa[nsa++] = vsa;
        if (x->ans != RL_NONE && x->ev != RL_NONE && x->status == 201) {
            ae[ne] = (x->ev - x->ans) / 1000;
            se[ne] = (x->ev - x->send) / 1000;
            ne++;
        }
        if (x->ans != RL_NONE && x->all != RL_NONE && x->status == 201)
            aa[na++] = (x->all - x->ans) / 1000;
        if (x->ev != RL_NONE && x->commit_rt != RL_NONE && x->status == 201)
            ce[nce++] = x->ev_rt - x->commit_rt;
        if (f) {
            fprintf(f, "%d %d %" PRId64, k + 1, x->status, vsa);
            if (x->ans != RL_NONE && x->ev != RL_NONE)
                fprintf(f, " %" PRId64 " %" PRId64, (x->ev - x->ans) / 1000,
                        (x->ev - x->send) / 1000);
            else
                fprintf(f, " lost lost");
            if (x->ans != RL_NONE && x->all != RL_NONE)
                fprintf(f, " %" PRId64, (x->all - x->ans) / 1000);
            else
                fprintf(f, " %s", subs > 0 ? "lost" : "-");
            if (x->ev != RL_NONE && x->commit_rt != RL_NONE)
                fprintf(f, " %" PRId64 "\n", x->ev_rt - x->commit_rt);
            else
                fprintf(f, " -\n");
        }
    }
    if (f)
        fclose(f);
    s1 = stats_of(ae, ne);
    s2 = stats_of(se, ne);
    s3 = stats_of(sa, nsa);
    s4 = stats_of(aa, na);
    s5 = stats_of(ce, nce);
    printf("RESULT mode=%s subs=%d subscribed=%d connect_ms=%.1f signups=%d "
           "ok=%d lost_ev=%d lost_all=%d disconnects=%d "
           "ae_p50=%" PRId64 " ae_p99=%" PRId64 " ae_max=%" PRId64
           " ae_min=%" PRId64 " ae_neg=%zu se_p50=%" PRId64 " se_p99=%" PRId64
           " se_max=%" PRId64 " sa_p50=%" PRId64 " sa_p99=%" PRId64
           " sa_max=%" PRId64 " aa_p50=%" PRId64 " aa_p99=%" PRId64
           " aa_max=%" PRId64 " ce_n=%zu ce_p50=%" PRId64 " ce_p99=%" PRId64
           " ce_max=%" PRId64 " ce_min=%" PRId64 "\n",
           mode, subs, subscribed, (double)connect_ns / 1e6, n, ok, lost_ev,
           lost_all, disconnects, s1.p50, s1.p99, s1.max, s1.min, s1.neg,
           s2.p50, s2.p99, s2.max, s3.p50, s3.p99, s3.max, s4.p50, s4.p99,
           s4.max, nce, s5.p50, s5.p99, s5.max, s5.min);
    fflush(stdout);
    free(ae);
    free(se);
    free(sa);
    free(aa);
    free(ce);
}

/* Commit timestamps: rows (k, µs since the epoch) of sql into
 * sm[k - 1].commit_rt. NULL timestamps (track_commit_timestamp off) stay
 * unknown. */
static void fetch_commits(const char *ci, const char *sql, const char *param,
                          struct sample *sm, int n)
{
    const char *p[1] = {param};
    PGconn *c = PQconnectdb(ci);
    PGresult *r;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "referral_latency: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return;
    }
    r = PQexecParams(c, sql, param != NULL, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "referral_latency: commit timestamps: %s",
                PQresultErrorMessage(r));
    } else {
        for (int i = 0; i < PQntuples(r); i++) {
            int k = atoi(PQgetvalue(r, i, 0));
            if (PQgetisnull(r, i, 0) || PQgetisnull(r, i, 1) || k < 1 ||
                k > n)
                continue;
            sm[k - 1].commit_rt = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        }
    }
    PQclear(r);
    PQfinish(c);
}

#define RL_COMMIT_US                                                         \
    "(extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint"

/* ---- sse mode ----------------------------------------------------------- */

static struct conn *g_conns; /* subs, then the user stream */
static int g_nconns, g_ep;
static struct conn g_reg;
static int g_disconnects, g_bad;

static void stream_open(struct conn *c, int kind, const char *topic,
                        const char *token)
{
    char req[1024];
    int n;
    struct epoll_event ev;

    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->fd = connect_lo();
    n = snprintf(req, sizeof(req),
                 "GET /api/realtime?topic=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Accept: text/event-stream\r\n%s%s%s\r\n",
                 topic, token ? "Authorization: Bearer " : "",
                 token ? token : "", token ? "\r\n" : "");
    write_all(c->fd, req, (size_t)n);
    set_nb(c->fd);
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl");
}

static void conn_close(struct conn *c)
{
    epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->dead = 1;
}

static void reg_open(void)
{
    struct epoll_event ev;

    free(g_reg.buf);
    memset(&g_reg, 0, sizeof(g_reg));
    g_reg.kind = K_REG;
    g_reg.fd = connect_lo();
    set_nb(g_reg.fd);
    ev.events = EPOLLIN;
    ev.data.ptr = &g_reg;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, g_reg.fd, &ev) != 0)
        die("epoll_ctl");
}

/* The signup in flight. */
static struct {
    int active;
    char needle[96];
    struct sample *s;
    int pending; /* leaderboard subscribers still missing the event */
} g_cur;

static void on_stream_data(struct conn *c, const char *p, size_t n,
                           int64_t t, int64_t rt)
{
    if (!c->head_ok) {
        /* the status line comes in the first read on loopback */
        if (n < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) {
            fprintf(stderr, "referral_latency: stream answered: %.*s\n",
                    (int)(n < 200 ? n : 200), p);
            g_bad++;
            conn_close(c);
            return;
        }
        c->head_ok = 1;
    }
    if (!c->subscribed) {
        /* `event: subscribed` is short and comes whole, early */
        if (memmem(p, n, "event: subscribed", 17) != NULL)
            c->subscribed = 1;
    }
    c->msgs += count_pat(c, p, n, "event: message", 1);
    if (c->kind == K_SUB) {
        if (g_cur.active && c->want != 0 && c->msgs >= c->want) {
            c->want = 0;
            if (--g_cur.pending == 0)
                g_cur.s->all = t;
        }
        return;
    }
    /* K_USER: keep the text; look for the current signup's name */
    buf_add(c, p, n);
    if (g_cur.active && g_cur.s->ev == RL_NONE &&
        strstr(c->buf, g_cur.needle) != NULL) {
        g_cur.s->ev = t;
        g_cur.s->ev_rt = rt;
        c->len = 0; /* consumed */
        c->buf[0] = '\0';
    } else if (c->len > (1 << 20)) {
        c->len = 0; /* nothing of ours: drop old text */
        c->buf[0] = '\0';
    }
}

static void on_reg_data(const char *p, size_t n, int64_t t)
{
    char *he, *cl;
    size_t hlen, blen;

    buf_add(&g_reg, p, n);
    he = strstr(g_reg.buf, "\r\n\r\n");
    if (he == NULL)
        return;
    hlen = (size_t)(he - g_reg.buf) + 4;
    cl = strcasestr(g_reg.buf, "\r\nContent-Length:");
    blen = cl != NULL && cl < he ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    if (g_reg.len < hlen + blen)
        return;
    if (g_cur.active && g_cur.s->ans == RL_NONE) {
        g_cur.s->ans = t;
        g_cur.s->status = atoi(g_reg.buf + 9);
        if (g_cur.s->status != 201)
            fprintf(stderr, "referral_latency: signup answered %.*s\n",
                    (int)(g_reg.len < 300 ? g_reg.len : 300), g_reg.buf);
    }
    memmove(g_reg.buf, g_reg.buf + hlen + blen, g_reg.len - hlen - blen);
    g_reg.len -= hlen + blen;
    g_reg.buf[g_reg.len] = '\0';
}

/* One pass of the event loop, waiting at most ms. */
static void pump(int ms)
{
    struct epoll_event evs[256];
    char rb[65536];
    int n = epoll_wait(g_ep, evs, 256, ms);

    if (n < 0 && errno != EINTR)
        die("epoll_wait");
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        for (;;) {
            ssize_t r;
            int64_t t, rt;
            if (c->dead)
                break;
            r = read(c->fd, rb, sizeof(rb));
            t = now_ns();
            rt = real_us();
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && errno == EAGAIN)
                break;
            if (r <= 0) {
                if (c->kind == K_REG) {
                    conn_close(c); /* reopened before the next signup */
                } else {
                    g_disconnects++;
                    if (g_cur.active && c->kind == K_SUB && c->want != 0) {
                        c->want = 0;
                        if (--g_cur.pending == 0)
                            g_cur.s->all = t;
                    }
                    conn_close(c);
                }
                break;
            }
            if (c->kind == K_REG)
                on_reg_data(rb, (size_t)r, t);
            else
                on_stream_data(c, rb, (size_t)r, t, rt);
            if ((size_t)r < sizeof(rb))
                break;
        }
    }
}

static int run_sse(int subs, int signups, const char *tag, const char *code,
                   const char *token, long long uid, int gap_ms,
                   const char *out, const char *ci)
{
    char topic[64], body[512], req[1024];
    int64_t t0, deadline;
    int subscribed = 0, ok = 0, lost_ev = 0, lost_all = 0, n;
    struct sample *sm = calloc((size_t)signups + 1, sizeof(*sm));
    struct conn *user;

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0 || sm == NULL)
        die("setup");
    g_nconns = subs + 1;
    g_conns = calloc((size_t)g_nconns, sizeof(*g_conns));
    if (g_conns == NULL)
        die("calloc");
    user = &g_conns[subs];
    t0 = now_ns();
    snprintf(topic, sizeof(topic), "referral.user.%lld", uid);
    stream_open(user, K_USER, topic, token);
    for (int i = 0; i < subs; i++) {
        stream_open(&g_conns[i], K_SUB, "referral.leaderboard", NULL);
        if (i % 64 == 63)
            pump(0); /* keep the first ones drained */
    }
    deadline = now_ns() + 60 * (int64_t)1000000000;
    while (now_ns() < deadline) {
        subscribed = 0;
        for (int i = 0; i < g_nconns; i++)
            subscribed += g_conns[i].subscribed && !g_conns[i].dead;
        if (subscribed == g_nconns || g_bad > 0)
            break;
        pump(50);
    }
    fprintf(stderr, "referral_latency: %d of %d streams subscribed in %.2f s\n",
            subscribed, g_nconns, (double)(now_ns() - t0) / 1e9);
    if (subscribed != g_nconns) {
        report("sse", subs, subscribed, now_ns() - t0, sm, 0, 0, 0, 0,
               g_disconnects, out);
        return 1;
    }
    t0 = now_ns() - t0;
    /* a moment for the server to settle after the connections */
    for (int64_t until = now_ns() + 500000000; now_ns() < until;)
        pump(50);
    reg_open();
    for (int k = 0; k < signups; k++) {
        struct sample *s = &sm[k];
        int64_t ans_dl, ev_dl;
        s->ans = s->ev = s->all = s->ev_rt = s->commit_rt = RL_NONE;
        if (g_reg.dead || g_reg.fd < 0)
            reg_open();
        snprintf(g_cur.needle, sizeof(g_cur.needle), "\"username\":\"%sk%d\"",
                 tag, k + 1);
        n = snprintf(body, sizeof(body),
                     "{\"email\":\"%sk%d@example.com\",\"username\":\"%sk%d\","
                     "\"display_name\":\"Latency %d\",\"password\":"
                     "\"bench-password-lat\",\"referral_code\":\"%s\"}",
                     tag, k + 1, tag, k + 1, k + 1, code);
        n = snprintf(req, sizeof(req),
                     "POST /api/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d"
                     "\r\n\r\n%s",
                     n, body);
        g_cur.pending = 0;
        for (int i = 0; i < subs; i++) {
            struct conn *c = &g_conns[i];
            c->want = c->dead ? 0 : c->msgs + 1;
            g_cur.pending += !c->dead;
        }
        g_cur.s = s;
        g_cur.active = 1;
        s->send = now_ns();
        write_all(g_reg.fd, req, (size_t)n);
        ans_dl = s->send + 30 * (int64_t)1000000000;
        ev_dl = INT64_MAX;
        for (;;) {
            int64_t t = now_ns();
            if (s->ans != RL_NONE && ev_dl == INT64_MAX)
                ev_dl = s->ans + 5 * (int64_t)1000000000;
            if (s->ans != RL_NONE && s->status != 201)
                break;
            if (s->ans != RL_NONE && s->ev != RL_NONE &&
                (subs == 0 || g_cur.pending == 0))
                break;
            if ((s->ans == RL_NONE && t > ans_dl) || t > ev_dl)
                break;
            pump(5);
        }
        if (subs > 0 && g_cur.pending == 0 && s->all == RL_NONE)
            s->all = now_ns(); /* every subscriber was already gone */
        g_cur.active = 0;
        if (s->status == 201)
            ok++;
        if (s->ans == RL_NONE)
            fprintf(stderr, "referral_latency: signup %d: no answer in 30 s\n",
                    k + 1);
        if (s->status == 201 && s->ev == RL_NONE)
            lost_ev++;
        if (s->status == 201 && subs > 0 && s->all == RL_NONE)
            lost_all++;
        for (int64_t until = now_ns() + (int64_t)gap_ms * 1000000;
             now_ns() < until;)
            pump(1);
    }
    if (ci != NULL) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "%sk", tag);
        fetch_commits(ci,
                      "SELECT substr(username, length($1) + 1)::int, "
                      RL_COMMIT_US " FROM weft_users WHERE username LIKE $1 "
                      "|| '%'",
                      prefix, sm, signups);
    }
    report("sse", subs, subscribed, t0, sm, signups, ok, lost_ev, lost_all,
           g_disconnects, out);
    return ok == signups && lost_ev == 0 && lost_all == 0 &&
                   g_disconnects == 0
               ? 0
               : 1;
}

/* ---- notify mode (the peer) --------------------------------------------- */

static PGconn *pg_open(const char *ci)
{
    PGconn *c = PQconnectdb(ci);

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "referral_latency: connect: %s", PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static void pg_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "referral_latency: %s: %s", sql,
                PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

static int run_notify(const char *ci, int signups, int gap_ms, const char *out)
{
    PGconn *l = pg_open(ci), *w = pg_open(ci);
    struct sample *sm = calloc((size_t)signups + 1, sizeof(*sm));
    int ok = 0, lost = 0;
    char sql[256];

    if (sm == NULL)
        die("calloc");
    pg_ok(w, "CREATE TABLE IF NOT EXISTS weft_bench_lat (id bigserial "
             "PRIMARY KEY, k int NOT NULL, data text NOT NULL, created_at "
             "timestamptz NOT NULL DEFAULT now())");
    pg_ok(l, "LISTEN weft_bench_lat");
    for (int k = 0; k < signups; k++) {
        struct sample *s = &sm[k];
        int64_t dl;
        PGnotify *nt;
        s->ans = s->ev = s->all = s->ev_rt = s->commit_rt = RL_NONE;
        pg_ok(w, "BEGIN");
        snprintf(sql, sizeof(sql),
                 "INSERT INTO weft_bench_lat (k, data) VALUES "
                 "(%d, '{\"type\":\"friend_joined\",\"n\":%d}')",
                 k + 1, k + 1);
        pg_ok(w, sql);
        snprintf(sql, sizeof(sql),
                 "SELECT pg_notify('weft_bench_lat', '%d')", k + 1);
        pg_ok(w, sql);
        s->send = now_ns();
        if (!PQsendQuery(w, "COMMIT")) {
            fprintf(stderr, "referral_latency: COMMIT: %s", PQerrorMessage(w));
            exit(1);
        }
        dl = s->send + 5 * (int64_t)1000000000;
        while ((s->ans == RL_NONE || s->ev == RL_NONE) && now_ns() < dl) {
            struct pollfd pf[2] = {{PQsocket(w), POLLIN, 0},
                                   {PQsocket(l), POLLIN, 0}};
            int64_t t, rt;
            if (poll(pf, 2, 5) < 0 && errno != EINTR)
                die("poll");
            t = now_ns();
            rt = real_us();
            if (s->ans == RL_NONE && (pf[0].revents & POLLIN)) {
                PQconsumeInput(w);
                while (!PQisBusy(w)) {
                    PGresult *r = PQgetResult(w);
                    if (r == NULL) {
                        s->ans = t;
                        break;
                    }
                    s->status =
                        PQresultStatus(r) == PGRES_COMMAND_OK ? 201 : 500;
                    PQclear(r);
                }
            }
            if (pf[1].revents & POLLIN) {
                PQconsumeInput(l);
                while ((nt = PQnotifies(l)) != NULL) {
                    if (atoi(nt->extra) == k + 1 && s->ev == RL_NONE) {
                        s->ev = t;
                        s->ev_rt = rt;
                    }
                    PQfreemem(nt);
                }
            }
        }
        if (s->status == 201 && s->ans != RL_NONE)
            ok++;
        if (s->ev == RL_NONE)
            lost++;
        if (gap_ms > 0)
            usleep((useconds_t)gap_ms * 1000);
    }
    fetch_commits(ci, "SELECT k, " RL_COMMIT_US " FROM weft_bench_lat", NULL,
                  sm, signups);
    report("notify", 0, 0, 0, sm, signups, ok, lost, 0, 0, out);
    pg_ok(w, "TRUNCATE weft_bench_lat");
    PQfinish(l);
    PQfinish(w);
    return ok == signups && lost == 0 ? 0 : 1;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: referral_latency sse --port P --subs S --signups N --tag "
            "TAG --code CODE\n"
            "                            --token TOKEN --user-id A [--gap-ms "
            "MS] [--out FILE]\n"
            "                            [--conninfo CI]\n"
            "       referral_latency notify --conninfo CI --signups N "
            "[--gap-ms MS] [--out FILE]\n"
            "(see the comment at the top of bench/referral_latency.c)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", 1, 0, 'p'},   {"subs", 1, 0, 's'},  {"signups", 1, 0, 'n'},
        {"tag", 1, 0, 't'},    {"code", 1, 0, 'c'},  {"token", 1, 0, 'T'},
        {"user-id", 1, 0, 'u'}, {"gap-ms", 1, 0, 'g'}, {"out", 1, 0, 'o'},
        {"conninfo", 1, 0, 'C'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int subs = 1000, signups = 200, gap = 10, o;
    long long uid = 0;
    const char *mode, *tag = NULL, *code = NULL, *token = NULL, *out = NULL,
                      *ci = NULL;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    mode = argv[1];
    optind = 2;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p': g_port = atoi(optarg); break;
        case 's': subs = atoi(optarg); break;
        case 'n': signups = atoi(optarg); break;
        case 't': tag = optarg; break;
        case 'c': code = optarg; break;
        case 'T': token = optarg; break;
        case 'u': uid = atoll(optarg); break;
        case 'g': gap = atoi(optarg); break;
        case 'o': out = optarg; break;
        case 'C': ci = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (signups < 1 || gap < 0) {
        usage(stderr);
        return 2;
    }
    if (strcmp(mode, "sse") == 0) {
        if (g_port <= 0 || subs < 0 || tag == NULL || code == NULL ||
            token == NULL || uid <= 0 || strlen(tag) > 20) {
            usage(stderr);
            return 2;
        }
        return run_sse(subs, signups, tag, code, token, uid, gap, out, ci);
    }
    if (strcmp(mode, "notify") == 0 && ci != NULL)
        return run_notify(ci, signups, gap, out);
    usage(stderr);
    return 2;
}
