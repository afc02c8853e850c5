/*
 * rt_load - load client for realtime fan-out (bench/rt_fanout.sh): many
 * Server-Sent Events or WebSocket subscribers on one topic, one publisher.
 * Built by the script into its temp dir; standalone:
 *
 *   cc -std=c11 -O2 -o rt_load bench/rt_load.c -lcrypto
 *   rt_load --mode sse|ws --port P --conns N --token T [options]
 *
 * Phases:
 *   1. memory baseline: VmRSS of --server-pid (/proc/PID/status);
 *   2. connect: N connections, at most --ramp handshakes in flight per
 *      worker process; SSE: GET /api/realtime?topic=T, subscribed when the
 *      `event: subscribed` event arrives; WS: GET /api/ws upgrade
 *      (Sec-WebSocket-Accept checked with SHA-1), then a masked text frame
 *      {"type":"subscribe","topic":T}, subscribed on {"type":"subscribed"}.
 *      Ends when every connection is subscribed or failed, or nothing
 *      progressed for --stall seconds. Then --idle seconds of idling and
 *      VmRSS again: (after - before) / subscribed = server bytes per idle
 *      connection;
 *   3. latency: --messages publishes, one at a time: POST /admin/publish
 *      {"topic":T,"data":{"t":<CLOCK_REALTIME µs>,"n":<seq>}} on a separate
 *      keep-alive connection, then wait until every live subscriber has it
 *      (or --msg-timeout), then --gap-ms. Each delivery's latency is
 *      receive time - t (receive time: CLOCK_REALTIME when the read()
 *      returned). Per message: the max over subscribers = time until every
 *      client had it; printed as p50/p99/max over the messages, and the
 *      distribution of all (client, message) deliveries;
 *   4. sustained: --sustain seconds of publishing, either closed loop (at
 *      most --window messages not yet delivered to every subscriber; the
 *      default) or open loop at --rate messages/s; then waits until every
 *      message is delivered (or --msg-timeout). Fan-out rate = deliveries
 *      received / (first publish .. last message complete). CPU used by
 *      the server, by rt_load and by everything else over the same time.
 *
 * Subscribers live in --workers processes (fork; one epoll loop each:
 * RLIMIT_NOFILE is per process), default one per 15000 connections.
 * --src-ips K binds connection i to 127.0.0.(2 + i % K) with
 * IP_BIND_ADDRESS_NO_PORT (ports picked per 4-tuple at connect time), for
 * more connections than the ephemeral port range holds towards one
 * address; default 0 (plain connect) up to 25000 connections, else
 * enough for 25000 per address.
 *
 * Output: progress and a readable summary on stderr, then one line on
 * stdout, key=value pairs (ms, bytes, cores; -1 when not measured):
 *   RESULT label mode target conns connect_s
 *          p50_ms p99_ms max_ms      every client had message k, over k
 *          first_p50_ms              the first client, p50 over k
 *          all_p50_ms all_p99_ms all_max_ms   over all deliveries
 *          lat_msgs lost_lat         messages completed / deliveries lost
 *          cli_us_per_deliv srv_us_per_deliv  CPU per delivery (latency)
 *          fanout_msgs_per_s pub_msgs_per_s sus_p50_ms sus_p99_ms lost_sus
 *          srv_cores load_cores other_cores fanout_per_srv_cpu_s
 *          rss0_kib rss1_kib rss2_kib rss_per_conn_bytes
 *          disconnects failed unanswered emfile addrnotavail refused
 *          bad_status closed_early pub_fail
 * Exit status: 0 when every connection subscribed, every publish was
 * answered 2xx and nothing was lost; 1 when some of that failed (the
 * figures are printed anyway); 2 usage; 3 the server does not speak the
 * protocol (bad status on the endpoints: message on stderr).
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXMSG (1u << 18)     /* message numbers tracked (latency + sustained) */
#define SCRATCH (256u * 1024) /* per-worker read buffer */
#define MAXREST (64u * 1024)  /* unparsed bytes kept per connection */
#define MAXWORKERS 64
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ------------------------------------------------------------ options -- */

static struct {
    int ws;
    const char *host;
    int port;
    int conns;
    const char *topic;
    const char *token;
    const char *label;
    int server_pid;
    int messages;
    int gap_ms;
    double sustain;
    int window;
    double rate;
    int ramp;
    int workers;
    int src_ips;
    double idle;
    double stall;
    double msg_timeout;
    int quiet;
} opt = {
    .host = "127.0.0.1",
    .topic = "bench.fan",
    .token = "",
    .label = "server",
    .messages = 100,
    .gap_ms = 10,
    .sustain = 10,
    .window = 8,
    .ramp = 256,
    .workers = 0,
    .src_ips = -1,
    .idle = 3,
    .stall = 10,
    .msg_timeout = 5,
};

/* ------------------------------------------------------- shared state -- */

enum { PH_CONNECT, PH_RUN, PH_STOP };

/* One per worker, in a MAP_SHARED mapping made before fork(). */
struct wstat {
    _Atomic uint32_t opened, subscribed, failed, disconnects, inflight;
    _Atomic uint32_t fail_connect, fail_status, fail_eof, fail_proto;
    _Atomic uint32_t fail_emfile, fail_addrnotavail, fail_refused, fail_other;
    _Atomic uint32_t gave_up; /* stopped opening: errno that made it stop */
    _Atomic uint32_t skipped; /* never opened after giving up */
    _Atomic uint64_t deliveries, bytes, pings;
    _Atomic uint64_t nsamples; /* latency-phase deliveries recorded */
    uint32_t *samples;         /* latency (µs) of latency-phase deliveries */
    uint64_t samples_cap;
    _Atomic uint32_t *cnt;    /* [MAXMSG] deliveries of message n */
    _Atomic uint32_t *maxlat; /* [MAXMSG] largest latency (µs) of message n */
    _Atomic uint32_t *minlat; /* [MAXMSG] smallest latency (µs) of message n */
};

struct shared {
    _Atomic int phase;
    _Atomic int have_err;
    char err[512]; /* first protocol failure, for the message on stderr */
    struct wstat w[MAXWORKERS];
};

static struct shared *sh;

static void *shmap(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("rt_load: mmap");
        exit(1);
    }
    return p;
}

static void set_err(const char *fmt, const char *a, size_t alen)
{
    int exp = 0;

    if (!atomic_compare_exchange_strong(&sh->have_err, &exp, 1))
        return;
    snprintf(sh->err, sizeof(sh->err), fmt, (int)alen, a);
}

/* -------------------------------------------------------------- time --- */

static int64_t now_us(clockid_t c)
{
    struct timespec ts;

    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono_s(void) { return (double)now_us(CLOCK_MONOTONIC) / 1e6; }

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ------------------------------------------------------- tiny parsers -- */

/* Position after the JSON key `qkey` (given with its quotes, "t" as
 * "\"t\"") and <ws> `:` <ws>, in buf; NULL when absent. */
static const char *json_after_key(const char *buf, size_t len, const char *qkey)
{
    size_t plen = strlen(qkey);
    const char *p = buf, *end = buf + len;

    while ((p = memmem(p, (size_t)(end - p), qkey, plen)) != NULL) {
        const char *q = p + plen;

        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t'))
                q++;
            return q;
        }
        p += plen;
    }
    return NULL;
}

static int json_num(const char *buf, size_t len, const char *key, int64_t *out)
{
    const char *q = json_after_key(buf, len, key), *end = buf + len;
    int64_t v = 0;
    int any = 0;

    if (q == NULL)
        return -1;
    while (q < end && *q >= '0' && *q <= '9') {
        v = v * 10 + (*q++ - '0');
        any = 1;
    }
    if (!any)
        return -1;
    *out = v;
    return 0;
}

/* 1 when the first "type" key's value is the string `val`. */
static int json_type_is(const char *buf, size_t len, const char *val)
{
    const char *q = json_after_key(buf, len, "\"type\""), *end = buf + len;
    size_t vl = strlen(val);

    return q != NULL && (size_t)(end - q) >= vl + 2 && q[0] == '"' &&
           memcmp(q + 1, val, vl) == 0 && q[vl + 1] == '"';
}

/* Case-insensitive header lookup in a response head; value and its length. */
static const char *head_value(const char *head, size_t hlen, const char *name,
                              size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + hlen;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;

        if ((size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            const char *v = p + nl + 1;

            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            while (le > v && (le[-1] == '\r' || le[-1] == ' '))
                le--;
            *vlen = (size_t)(le - v);
            return v;
        }
        p = le + 1;
    }
    return NULL;
}

static void ws_key(uint32_t seed, char out[25])
{
    unsigned char raw[16];
    uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;

    for (int i = 0; i < 16; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        raw[i] = (unsigned char)x;
    }
    EVP_EncodeBlock((unsigned char *)out, raw, 16);
}

static void ws_accept(const char key[25], char out[29])
{
    unsigned char in[24 + sizeof(WS_GUID)], dg[SHA_DIGEST_LENGTH];

    memcpy(in, key, 24);
    memcpy(in + 24, WS_GUID, sizeof(WS_GUID) - 1);
    SHA1(in, 24 + sizeof(WS_GUID) - 1, dg);
    EVP_EncodeBlock((unsigned char *)out, dg, SHA_DIGEST_LENGTH);
}

/* ------------------------------------------------------------- worker -- */

enum { CS_FREE, CS_CONNECTING, CS_HEAD, CS_STREAM, CS_CLOSED };
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_END };
enum { EV_NONE, EV_MESSAGE, EV_SUBSCRIBED, EV_OTHER };

struct conn {
    int fd;
    uint32_t id; /* global index, seeds the WebSocket key */
    uint8_t state, subscribed, chunked, ch_state, ev, has_tn;
    uint32_t ch_left;
    int64_t ev_t, ev_n;
    char *rest;
    uint32_t rest_len, rest_cap;
    char *out;
    uint32_t out_len;
    char *frag; /* WebSocket fragmented message being assembled */
    uint32_t frag_len;
};

struct worker {
    int idx, epfd, first, count;
    struct wstat *st;
    struct conn *c;
    int next; /* next connection to open (relative) */
    int stop_opening;
    char *buf;
    uint64_t rng;
    struct sockaddr_in dst;
    char req[512];
    size_t req_len;
};

static uint32_t rng32(struct worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng >> 11);
}

static void conn_close(struct worker *w, struct conn *c, int kind)
{
    struct wstat *st = w->st;

    if (c->state == CS_CLOSED || c->state == CS_FREE)
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (c->subscribed) {
        atomic_fetch_add(&st->disconnects, 1);
    } else {
        atomic_fetch_sub(&st->inflight, 1);
        atomic_fetch_add(&st->failed, 1);
        switch (kind) {
        case 1: atomic_fetch_add(&st->fail_status, 1); break;
        case 2: atomic_fetch_add(&st->fail_proto, 1); break;
        case 3: break; /* connect failure, counted by the caller */
        default: atomic_fetch_add(&st->fail_eof, 1); break;
        }
    }
    c->state = CS_CLOSED;
    free(c->rest);
    free(c->out);
    free(c->frag);
    c->rest = c->out = c->frag = NULL;
    c->rest_len = c->rest_cap = c->out_len = c->frag_len = 0;
}

static void conn_write(struct worker *w, struct conn *c, const char *p, size_t n)
{
    ssize_t k = 0;

    if (c->out_len == 0) {
        k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_close(w, c, 0);
                return;
            }
            k = 0;
        }
        if ((size_t)k == n)
            return;
    }
    c->out = realloc(c->out, c->out_len + (n - (size_t)k));
    if (c->out == NULL) {
        perror("rt_load: realloc");
        exit(1);
    }
    memcpy(c->out + c->out_len, p + k, n - (size_t)k);
    c->out_len += (uint32_t)(n - (size_t)k);
    /* edge-triggered EPOLLOUT reports when there is room again */
}

static void conn_flush(struct worker *w, struct conn *c)
{
    ssize_t k = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);

    if (k < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_close(w, c, 0);
        return;
    }
    memmove(c->out, c->out + k, c->out_len - (size_t)k);
    c->out_len -= (uint32_t)k;
}

/* Masked client frame. */
static void ws_send(struct worker *w, struct conn *c, int op, const char *p,
                    size_t n)
{
    char f[14 + 256];
    size_t h = 0;
    uint32_t m = rng32(w);
    unsigned char mk[4];

    if (n > 256)
        n = 256; /* only subscribe frames and ping echoes: small */
    f[h++] = (char)(0x80 | op);
    if (n < 126) {
        f[h++] = (char)(0x80 | n);
    } else {
        f[h++] = (char)(0x80 | 126);
        f[h++] = (char)(n >> 8);
        f[h++] = (char)(n & 0xff);
    }
    memcpy(mk, &m, 4);
    memcpy(f + h, mk, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        f[h + i] = (char)(p[i] ^ mk[i & 3]);
    conn_write(w, c, f, h + n);
}

static void on_subscribed(struct worker *w, struct conn *c)
{
    if (c->subscribed)
        return;
    c->subscribed = 1;
    atomic_fetch_sub(&w->st->inflight, 1);
    atomic_fetch_add(&w->st->subscribed, 1);
}

static void on_message(struct worker *w, int64_t t, int64_t n, int64_t rx)
{
    struct wstat *st = w->st;
    int64_t lat = rx - t;
    uint32_t l, cur;

    if (lat < 0)
        lat = 0;
    if (lat > UINT32_MAX)
        lat = UINT32_MAX;
    l = (uint32_t)lat;
    atomic_fetch_add_explicit(&st->deliveries, 1, memory_order_relaxed);
    if (n < 0 || (uint64_t)n >= MAXMSG)
        return;
    if ((int)n < opt.messages) {
        uint64_t k = atomic_load_explicit(&st->nsamples, memory_order_relaxed);
        if (k < st->samples_cap) {
            st->samples[k] = l;
            atomic_store_explicit(&st->nsamples, k + 1, memory_order_release);
        }
    }
    /* one writer per wstat: plain load/store suffice, readers tolerate lag */
    cur = atomic_load_explicit(&st->maxlat[n], memory_order_relaxed);
    if (l > cur)
        atomic_store_explicit(&st->maxlat[n], l, memory_order_relaxed);
    cur = atomic_load_explicit(&st->minlat[n], memory_order_relaxed);
    if (cur == 0 || l < cur)
        atomic_store_explicit(&st->minlat[n], l ? l : 1, memory_order_relaxed);
    /* count last, with release: a reader that sees the count sees maxlat */
    atomic_fetch_add_explicit(&st->cnt[n], 1, memory_order_release);
}

/* One SSE line (without its \n). */
static void sse_line(struct worker *w, struct conn *c, const char *p, size_t n,
                     int64_t rx)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n == 0) { /* end of event */
        if (c->ev == EV_SUBSCRIBED)
            on_subscribed(w, c);
        else if ((c->ev == EV_MESSAGE || c->ev == EV_NONE) && c->has_tn)
            on_message(w, c->ev_t, c->ev_n, rx);
        c->ev = EV_NONE;
        c->has_tn = 0;
        return;
    }
    if (p[0] == ':')
        return; /* comment: heartbeat */
    if (n >= 6 && memcmp(p, "event:", 6) == 0) {
        const char *v = p + 6;
        size_t vl = n - 6;

        if (vl && *v == ' ')
            v++, vl--;
        if (vl == 7 && memcmp(v, "message", 7) == 0)
            c->ev = EV_MESSAGE;
        else if (vl == 10 && memcmp(v, "subscribed", 10) == 0)
            c->ev = EV_SUBSCRIBED;
        else
            c->ev = EV_OTHER;
        return;
    }
    if (n >= 5 && memcmp(p, "data:", 5) == 0) {
        const char *d = p + 5;
        size_t dl = n - 5;
        const char *inner = json_after_key(d, dl, "\"data\"");

        /* the publisher's fields are inside the message's "data" object */
        if (inner != NULL && json_type_is(d, dl, "message") &&
            json_num(inner, dl - (size_t)(inner - d), "\"t\"", &c->ev_t) == 0 &&
            json_num(inner, dl - (size_t)(inner - d), "\"n\"", &c->ev_n) == 0)
            c->has_tn = 1;
    }
}

/* Decode chunked transfer coding in place: buf[0..len) raw -> returns the
 * decoded length (at buf[0..)). -1 on a malformed stream; sets *ended when
 * the last chunk arrived. */
static long dechunk(struct conn *c, char *buf, size_t len, int *ended)
{
    size_t i = 0, o = 0;

    while (i < len) {
        char ch;

        switch (c->ch_state) {
        case CH_SIZE:
            ch = buf[i++];
            if (ch >= '0' && ch <= '9')
                c->ch_left = c->ch_left * 16 + (uint32_t)(ch - '0');
            else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
                c->ch_left = c->ch_left * 16 + (uint32_t)((ch | 0x20) - 'a' + 10);
            else if (ch == ';' || ch == ' ')
                c->ch_state = CH_EXT;
            else if (ch == '\r')
                c->ch_state = CH_SIZE_LF;
            else if (ch == '\n')
                goto size_done;
            else
                return -1;
            if (c->ch_left > (1u << 28))
                return -1;
            break;
        case CH_EXT:
            ch = buf[i++];
            if (ch == '\r')
                c->ch_state = CH_SIZE_LF;
            else if (ch == '\n')
                goto size_done;
            break;
        case CH_SIZE_LF:
            if (buf[i++] != '\n')
                return -1;
        size_done:
            if (c->ch_left == 0) {
                c->ch_state = CH_END;
                *ended = 1;
                return (long)o;
            }
            c->ch_state = CH_DATA;
            break;
        case CH_DATA: {
            size_t k = len - i;

            if (k > c->ch_left)
                k = c->ch_left;
            memmove(buf + o, buf + i, k);
            o += k;
            i += k;
            c->ch_left -= (uint32_t)k;
            if (c->ch_left == 0)
                c->ch_state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            ch = buf[i++];
            if (ch == '\r')
                c->ch_state = CH_DATA_LF;
            else if (ch == '\n')
                c->ch_state = CH_SIZE;
            else
                return -1;
            break;
        case CH_DATA_LF:
            if (buf[i++] != '\n')
                return -1;
            c->ch_state = CH_SIZE;
            break;
        default:
            *ended = 1;
            return (long)o;
        }
    }
    return (long)o;
}

static void ws_text(struct worker *w, struct conn *c, const char *p, size_t n,
                    int64_t rx)
{
    int64_t t, seq;

    if (json_type_is(p, n, "message")) {
        const char *inner = json_after_key(p, n, "\"data\"");

        if (inner != NULL &&
            json_num(inner, n - (size_t)(inner - p), "\"t\"", &t) == 0 &&
            json_num(inner, n - (size_t)(inner - p), "\"n\"", &seq) == 0)
            on_message(w, t, seq, rx);
    } else if (json_type_is(p, n, "subscribed")) {
        on_subscribed(w, c);
    } else if (json_type_is(p, n, "error") && !c->subscribed) {
        set_err("WebSocket subscribe answered: %.*s", p, n);
        conn_close(w, c, 2);
    }
}

/* Parse WebSocket frames in buf[0..len); returns bytes consumed, -1 when
 * the connection was closed. */
static long ws_frames(struct worker *w, struct conn *c, char *buf, size_t len,
                      int64_t rx)
{
    size_t off = 0;

    while (len - off >= 2) {
        unsigned char *f = (unsigned char *)buf + off;
        int fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80;
        uint64_t pl = f[1] & 0x7f;
        size_t h = 2;

        if (pl == 126) {
            if (len - off < 4)
                break;
            pl = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (pl == 127) {
            if (len - off < 10)
                break;
            pl = 0;
            for (int i = 0; i < 8; i++)
                pl = (pl << 8) | f[2 + i];
            h = 10;
        }
        if (masked)
            h += 4;
        if (pl > MAXREST) {
            set_err("WebSocket frame too large (%.*s)", "", 0);
            conn_close(w, c, 2);
            return -1;
        }
        if (len - off < h + pl)
            break;
        char *p = (char *)f + h;
        if (masked)
            for (uint64_t i = 0; i < pl; i++)
                p[i] ^= (char)f[h - 4 + (i & 3)];
        off += h + pl;
        switch (op) {
        case 0x1:
        case 0x2:
            if (fin) {
                ws_text(w, c, p, pl, rx);
            } else {
                free(c->frag);
                c->frag = malloc(pl ? pl : 1);
                memcpy(c->frag, p, pl);
                c->frag_len = (uint32_t)pl;
            }
            break;
        case 0x0:
            if (c->frag == NULL || c->frag_len + pl > MAXREST) {
                conn_close(w, c, 2);
                return -1;
            }
            c->frag = realloc(c->frag, c->frag_len + pl);
            memcpy(c->frag + c->frag_len, p, pl);
            c->frag_len += (uint32_t)pl;
            if (fin) {
                char *m = c->frag;

                c->frag = NULL;
                ws_text(w, c, m, c->frag_len, rx);
                free(m);
                c->frag_len = 0;
            }
            break;
        case 0x8:
            conn_close(w, c, 0);
            return -1;
        case 0x9:
            atomic_fetch_add_explicit(&w->st->pings, 1, memory_order_relaxed);
            ws_send(w, c, 0xA, p, pl);
            break;
        default:
            break; /* pong, others */
        }
        if (c->state != CS_STREAM)
            return -1;
    }
    return (long)off;
}

static void keep_rest(struct worker *w, struct conn *c, const char *p, size_t n)
{
    if (n > MAXREST) {
        set_err("more than 64 KiB without a complete line / frame / head (%.*s)",
                "", 0);
        conn_close(w, c, 2);
        return;
    }
    if (n > c->rest_cap) {
        c->rest_cap = (uint32_t)(n < 256 ? 256 : n);
        c->rest = realloc(c->rest, c->rest_cap);
        if (c->rest == NULL) {
            perror("rt_load: realloc");
            exit(1);
        }
    }
    memmove(c->rest, p, n);
    c->rest_len = (uint32_t)n;
}

/* The stream after the response head: buf[0..pre) decoded leftovers,
 * buf[pre..pre+raw) new raw bytes. */
static void stream_data(struct worker *w, struct conn *c, char *buf, size_t pre,
                        size_t raw, int64_t rx)
{
    size_t len;

    if (opt.ws) {
        long k = ws_frames(w, c, buf, pre + raw, rx);

        if (k >= 0)
            keep_rest(w, c, buf + k, pre + raw - (size_t)k);
        return;
    }
    len = pre + raw;
    if (c->chunked) {
        int ended = 0;
        long d = dechunk(c, buf + pre, raw, &ended);

        if (d < 0) {
            set_err("malformed chunked encoding on the SSE stream%.*s", "", 0);
            conn_close(w, c, 2);
            return;
        }
        len = pre + (size_t)d;
        if (ended) {
            conn_close(w, c, 0);
            return;
        }
    }
    size_t off = 0;
    for (;;) {
        char *nl = memchr(buf + off, '\n', len - off);

        if (nl == NULL)
            break;
        sse_line(w, c, buf + off, (size_t)(nl - (buf + off)), rx);
        off = (size_t)(nl - buf) + 1;
    }
    keep_rest(w, c, buf + off, len - off);
}

static void on_head(struct worker *w, struct conn *c, char *buf, size_t len,
                    size_t hend, int64_t rx)
{
    int status = 0;
    size_t vl;
    const char *v;

    if (len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0)
        status = atoi(buf + 9);
    if (status != (opt.ws ? 101 : 200)) {
        char *eol = memchr(buf, '\r', hend);
        size_t show = len < 300 ? len : 300;

        (void)eol;
        set_err(opt.ws ? "GET /api/ws answered: %.*s"
                       : "GET /api/realtime answered: %.*s",
                buf, show);
        conn_close(w, c, 1);
        return;
    }
    if (opt.ws) {
        char key[25], want[29];

        ws_key(c->id, key);
        ws_accept(key, want);
        v = head_value(buf, hend, "sec-websocket-accept", &vl);
        if (v == NULL || vl != 28 || memcmp(v, want, 28) != 0) {
            set_err("wrong or missing Sec-WebSocket-Accept in: %.*s", buf,
                    hend < 400 ? hend : 400);
            conn_close(w, c, 2);
            return;
        }
    } else {
        v = head_value(buf, hend, "transfer-encoding", &vl);
        c->chunked = v != NULL && memmem(v, vl, "chunked", 7) != NULL;
        c->ch_state = CH_SIZE;
        c->ch_left = 0;
    }
    c->state = CS_STREAM;
    if (opt.ws) {
        char sub[256];
        int n = snprintf(sub, sizeof(sub),
                         "{\"type\":\"subscribe\",\"topic\":\"%s\"}", opt.topic);
        ws_send(w, c, 0x1, sub, (size_t)n);
        if (c->state != CS_STREAM)
            return;
    }
    memmove(buf, buf + hend, len - hend);
    stream_data(w, c, buf, 0, len - hend, rx);
}

/* Edge-triggered: read until a short read (the socket is then drained; data
 * arriving later raises a new edge). */
static void on_readable(struct worker *w, struct conn *c)
{
    char *buf = w->buf;

    for (;;) {
        size_t pre = c->rest_len, room = SCRATCH - pre;
        ssize_t n;
        int64_t rx;

        memcpy(buf, c->rest, pre);
        n = read(c->fd, buf + pre, room);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return;
            conn_close(w, c, 0);
            return;
        }
        rx = now_us(CLOCK_REALTIME);
        atomic_fetch_add_explicit(&w->st->bytes, (uint64_t)n,
                                  memory_order_relaxed);
        c->rest_len = 0;
        if (c->state == CS_HEAD) {
            size_t len = pre + (size_t)n;
            char *e = memmem(buf, len, "\r\n\r\n", 4);

            if (e == NULL)
                keep_rest(w, c, buf, len);
            else
                on_head(w, c, buf, len, (size_t)(e - buf) + 4, rx);
        } else {
            stream_data(w, c, buf, pre, (size_t)n, rx);
        }
        if ((size_t)n < room || (c->state != CS_HEAD && c->state != CS_STREAM))
            return;
    }
}

static void on_connected(struct worker *w, struct conn *c)
{
    int err = 0;
    socklen_t sl = sizeof(err);

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
    if (err != 0) {
        atomic_fetch_add(&w->st->fail_connect, 1);
        if (err == ECONNREFUSED)
            atomic_fetch_add(&w->st->fail_refused, 1);
        else if (err == EADDRNOTAVAIL)
            atomic_fetch_add(&w->st->fail_addrnotavail, 1);
        else
            atomic_fetch_add(&w->st->fail_other, 1);
        conn_close(w, c, 3);
        return;
    }
    c->state = CS_HEAD;
    if (opt.ws) {
        char key[25];
        char req[600];
        int n;

        ws_key(c->id, key);
        n = snprintf(req, sizeof(req),
                     "GET /api/ws HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     opt.host, opt.port, key);
        conn_write(w, c, req, (size_t)n);
    } else {
        conn_write(w, c, w->req, w->req_len);
    }
}

/* Open one connection; 0 on success (connect in progress). */
static int open_one(struct worker *w)
{
    struct conn *c = &w->c[w->next];
    struct epoll_event ev;
    int one = 1, fd, e;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        e = errno;
        goto fail;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.src_ips > 0) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        uint32_t gid = (uint32_t)(w->first + w->next);

        src.sin_addr.s_addr = htonl(0x7f000002u + gid % (uint32_t)opt.src_ips);
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            e = errno;
            close(fd);
            goto fail;
        }
    }
    if (connect(fd, (struct sockaddr *)&w->dst, sizeof(w->dst)) != 0 &&
        errno != EINPROGRESS) {
        e = errno;
        close(fd);
        goto fail;
    }
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->id = (uint32_t)(w->first + w->next);
    c->state = CS_CONNECTING;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = (uint32_t)w->next;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror("rt_load: epoll_ctl");
        exit(1);
    }
    w->next++;
    atomic_fetch_add(&w->st->opened, 1);
    atomic_fetch_add(&w->st->inflight, 1);
    return 0;
fail:
    /* Out of descriptors or ports: stop opening, keep what we have. */
    atomic_fetch_add(&w->st->fail_connect, 1);
    atomic_fetch_add(&w->st->failed, 1);
    atomic_fetch_add(&w->st->opened, 1);
    if (e == EMFILE || e == ENFILE)
        atomic_fetch_add(&w->st->fail_emfile, 1);
    else if (e == EADDRNOTAVAIL || e == EADDRINUSE)
        atomic_fetch_add(&w->st->fail_addrnotavail, 1);
    else if (e == ECONNREFUSED)
        atomic_fetch_add(&w->st->fail_refused, 1);
    else
        atomic_fetch_add(&w->st->fail_other, 1);
    w->c[w->next].state = CS_FREE;
    w->next++;
    if (e == EMFILE || e == ENFILE || e == EADDRNOTAVAIL || e == ENOBUFS ||
        e == ENOMEM) {
        w->stop_opening = 1;
        atomic_store(&w->st->skipped, (uint32_t)(w->count - w->next));
        atomic_store(&w->st->gave_up, (uint32_t)e);
    }
    return -1;
}

static void worker_run(struct worker *w)
{
    struct epoll_event evs[4096];

    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0) {
        perror("rt_load: epoll_create1");
        exit(1);
    }
    w->buf = malloc(SCRATCH);
    w->c = calloc((size_t)w->count + 1, sizeof(struct conn));
    if (w->buf == NULL || w->c == NULL) {
        perror("rt_load: malloc");
        exit(1);
    }
    w->rng = 0x2545F4914F6CDD1Dull ^ ((uint64_t)w->idx << 32) ^ (uint64_t)getpid();
    w->req_len = (size_t)snprintf(
        w->req, sizeof(w->req),
        "GET /api/realtime?topic=%s HTTP/1.1\r\nHost: %s:%d\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        opt.topic, opt.host, opt.port);
    for (;;) {
        int ph = atomic_load(&sh->phase), n;

        if (ph == PH_STOP)
            break;
        /* ramp: keep at most opt.ramp handshakes in flight */
        while (ph == PH_CONNECT && !w->stop_opening && w->next < w->count &&
               (int)atomic_load(&w->st->inflight) < opt.ramp)
            open_one(w);
        n = epoll_wait(w->epfd, evs, 4096, 20);
        for (int i = 0; i < n; i++) {
            struct conn *c = &w->c[evs[i].data.u32];
            uint32_t e = evs[i].events;

            if (c->state == CS_CONNECTING) {
                if (!(e & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                    continue;
                on_connected(w, c);
                e |= EPOLLIN; /* the answer may be in already: no new edge */
            }
            if ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->out_len > 0 &&
                c->state != CS_CLOSED)
                conn_flush(w, c);
            if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) &&
                (c->state == CS_HEAD || c->state == CS_STREAM))
                on_readable(w, c);
        }
    }
    _exit(0);
}

/* --------------------------------------------------- main: accounting -- */

static long read_rss_kib(int pid)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* utime + stime of a process (ticks), -1 when gone. */
static long long proc_ticks(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, stt = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &stt) != 2)
        return -1;
    return (long long)(ut + stt);
}

static void cpu_total(long long *busy, long long *all)
{
    FILE *f = fopen("/proc/stat", "r");
    long long u = 0, ni = 0, s = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;

    *busy = *all = 0;
    if (f == NULL)
        return;
    if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &u, &ni, &s,
               &id, &io, &irq, &sirq, &st) == 8) {
        *busy = u + ni + s + irq + sirq + st;
        *all = *busy + id + io;
    }
    fclose(f);
}

static pid_t kids[MAXWORKERS];
static int nworkers;

struct cpusnap {
    long long busy, all, srv, load;
};

static void cpu_snap(struct cpusnap *s)
{
    long long t;

    cpu_total(&s->busy, &s->all);
    s->srv = opt.server_pid > 0 ? proc_ticks(opt.server_pid) : 0;
    s->load = proc_ticks(getpid());
    for (int i = 0; i < nworkers; i++)
        if ((t = proc_ticks(kids[i])) > 0)
            s->load += t;
}

/* --------------------------------------------------- main: publisher --- */

static int pub_fd = -1;
static struct sockaddr_in pub_dst;
static char pub_buf[65536];
static size_t pub_len;
static int pub_last_status;
static char pub_last_body[300];

static int pub_connect(void)
{
    int one = 1;
    struct timeval tv = {10, 0};

    pub_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (pub_fd < 0)
        return -1;
    setsockopt(pub_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(pub_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(pub_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(pub_fd, (struct sockaddr *)&pub_dst, sizeof(pub_dst)) != 0) {
        close(pub_fd);
        pub_fd = -1;
        return -1;
    }
    pub_len = 0;
    return 0;
}

/* Read one response on the publisher connection: its status (0: none). */
static int pub_response(void)
{
    for (;;) {
        char *e = memmem(pub_buf, pub_len, "\r\n\r\n", 4);

        if (e != NULL) {
            size_t hend = (size_t)(e - pub_buf) + 4, vl, blen = 0;
            const char *v;
            int status = atoi(pub_buf + 9), chunked, closing;

            v = head_value(pub_buf, hend, "content-length", &vl);
            if (v != NULL)
                blen = (size_t)atol(v);
            v = head_value(pub_buf, hend, "transfer-encoding", &vl);
            chunked = v != NULL && memmem(v, vl, "chunked", 7) != NULL;
            v = head_value(pub_buf, hend, "connection", &vl);
            closing = v != NULL && vl == 5 && strncasecmp(v, "close", 5) == 0;
            if (chunked) {
                char *z = memmem(pub_buf + hend, pub_len - hend, "0\r\n\r\n", 5);

                blen = z != NULL ? (size_t)(z - (pub_buf + hend)) + 5 : SIZE_MAX;
            }
            if (blen != SIZE_MAX && pub_len >= hend + blen) {
                size_t show = blen < sizeof(pub_last_body) - 1
                                  ? blen : sizeof(pub_last_body) - 1;

                memcpy(pub_last_body, pub_buf + hend, show);
                pub_last_body[show] = 0;
                memmove(pub_buf, pub_buf + hend + blen, pub_len - hend - blen);
                pub_len -= hend + blen;
                if (closing) {
                    close(pub_fd);
                    pub_fd = -1;
                }
                pub_last_status = status;
                return status;
            }
        }
        if (pub_len == sizeof(pub_buf))
            return 0;
        ssize_t n = read(pub_fd, pub_buf + pub_len, sizeof(pub_buf) - pub_len);
        if (n <= 0) {
            /* -1: closed before any byte of the answer (an idle keep-alive
             * connection the server had just closed): worth one retry */
            int fresh = pub_len == 0;

            close(pub_fd);
            pub_fd = -1;
            pub_len = 0;
            return fresh ? -1 : 0;
        }
        pub_len += (size_t)n;
    }
}

/* One request on the publisher's keep-alive connection, reconnecting (once)
 * when the server closed it. seq < 0: GET /healthz, which only keeps the
 * connection in use (servers close idle keep-alive connections, and at the
 * open-file limit a new one may not be accepted). Otherwise POST one
 * message; *t_us gets the CLOCK_REALTIME µs written into it. Returns the
 * HTTP status (0: no answer). */
static int pub_request(int64_t seq, int64_t *t_us)
{
    char req[1024], body[256];
    int bl, rl, st;

    for (int tries = 0; tries < 2; tries++) {
        if (pub_fd < 0 && pub_connect() != 0)
            return 0;
        if (seq < 0) {
            rl = snprintf(req, sizeof(req),
                          "GET /healthz HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
                          opt.host, opt.port);
        } else {
            *t_us = now_us(CLOCK_REALTIME);
            bl = snprintf(body, sizeof(body),
                          "{\"topic\":\"%s\",\"data\":{\"t\":%" PRId64
                          ",\"n\":%" PRId64 "}}",
                          opt.topic, *t_us, seq);
            rl = snprintf(req, sizeof(req),
                          "POST /admin/publish HTTP/1.1\r\nHost: %s:%d\r\n"
                          "Authorization: Bearer %s\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n%s",
                          opt.host, opt.port, opt.token, bl, body);
        }
        if (send(pub_fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) {
            close(pub_fd);
            pub_fd = -1;
            pub_len = 0;
            continue;
        }
        st = pub_response();
        if (st >= 0)
            return st;
    }
    return 0;
}

static int publish(int64_t seq, int64_t *t_us) { return pub_request(seq, t_us); }

/* Keep the publisher's connection busy at most every second. */
static void pub_keepalive(void)
{
    static double last;
    double t = mono_s();
    int64_t dummy;

    if (t - last < 1.0)
        return;
    last = t;
    pub_request(-1, &dummy);
}

/* ------------------------------------------------- main: aggregation --- */

static uint64_t sum_at(size_t off, size_t size)
{
    uint64_t s = 0;

    for (int i = 0; i < nworkers; i++) {
        char *base = (char *)&sh->w[i] + off;

        if (size == sizeof(uint64_t))
            s += atomic_load((_Atomic uint64_t *)(void *)base);
        else
            s += atomic_load((_Atomic uint32_t *)(void *)base);
    }
    return s;
}

#define SUM(field) \
    sum_at(offsetof(struct wstat, field), sizeof(((struct wstat *)0)->field))

static uint32_t msg_count(uint32_t n)
{
    uint32_t s = 0;

    for (int i = 0; i < nworkers; i++)
        s += atomic_load_explicit(&sh->w[i].cnt[n], memory_order_acquire);
    return s;
}

static uint32_t msg_max(uint32_t n)
{
    uint32_t m = 0, v;

    for (int i = 0; i < nworkers; i++)
        if ((v = atomic_load(&sh->w[i].maxlat[n])) > m)
            m = v;
    return m;
}

static uint32_t msg_min(uint32_t n)
{
    uint32_t m = UINT32_MAX, v;

    for (int i = 0; i < nworkers; i++)
        if ((v = atomic_load(&sh->w[i].minlat[n])) != 0 && v < m)
            m = v;
    return m == UINT32_MAX ? 0 : m;
}

static uint32_t alive(void)
{
    return (uint32_t)(SUM(subscribed) - SUM(disconnects));
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of a sorted array, in ms */
static double pct_ms(const uint32_t *v, size_t n, double p)
{
    size_t k;

    if (n == 0)
        return -1;
    k = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1] / 1000.0;
}

/* ---------------------------------------------------------------- main -- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rt_load --mode sse|ws --port P --conns N --token T [options]\n"
            "  --host A          server address [127.0.0.1]\n"
            "  --topic T         [bench.fan]\n"
            "  --label L         name printed in the RESULT line [server]\n"
            "  --server-pid P    server process, for VmRSS and CPU\n"
            "  --messages M      latency-phase publishes [100]\n"
            "  --gap-ms G        pause between latency publishes [10]\n"
            "  --sustain S       seconds of sustained publishing [10] (0: skip)\n"
            "  --window W        closed loop: messages not yet everywhere [8]\n"
            "  --rate R          open loop at R messages/s instead (0: closed) [0]\n"
            "  --ramp K          handshakes in flight per worker [256]\n"
            "  --workers W       subscriber processes [1 per 15000 conns]\n"
            "  --src-ips K       source addresses 127.0.0.2.. [auto]\n"
            "  --idle S          idle seconds before the memory reading [3]\n"
            "  --stall S         give up connecting after S s without progress [10]\n"
            "  --msg-timeout S   a message not everywhere after S s is lost [5]\n"
            "  --quiet           no progress lines\n");
}

static void stop_workers(void)
{
    atomic_store(&sh->phase, PH_STOP);
    for (int i = 0; i < nworkers; i++)
        if (kids[i] > 0)
            waitpid(kids[i], NULL, 0);
}

static void on_signal(int sig)
{
    for (int i = 0; i < nworkers; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"mode", 1, 0, 'm'},        {"host", 1, 0, 'h'},
        {"port", 1, 0, 'p'},        {"conns", 1, 0, 'c'},
        {"topic", 1, 0, 't'},       {"token", 1, 0, 'k'},
        {"label", 1, 0, 'l'},       {"server-pid", 1, 0, 'P'},
        {"messages", 1, 0, 'M'},    {"gap-ms", 1, 0, 'g'},
        {"sustain", 1, 0, 's'},     {"window", 1, 0, 'w'},
        {"rate", 1, 0, 'r'},        {"ramp", 1, 0, 'R'},
        {"workers", 1, 0, 'W'},     {"src-ips", 1, 0, 'S'},
        {"idle", 1, 0, 'i'},        {"stall", 1, 0, 'x'},
        {"msg-timeout", 1, 0, 'T'}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'H'},        {0, 0, 0, 0}};
    int o, rc = 0;
    const char *mode = NULL;

    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'm': mode = optarg; break;
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'c': opt.conns = atoi(optarg); break;
        case 't': opt.topic = optarg; break;
        case 'k': opt.token = optarg; break;
        case 'l': opt.label = optarg; break;
        case 'P': opt.server_pid = atoi(optarg); break;
        case 'M': opt.messages = atoi(optarg); break;
        case 'g': opt.gap_ms = atoi(optarg); break;
        case 's': opt.sustain = atof(optarg); break;
        case 'w': opt.window = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'R': opt.ramp = atoi(optarg); break;
        case 'W': opt.workers = atoi(optarg); break;
        case 'S': opt.src_ips = atoi(optarg); break;
        case 'i': opt.idle = atof(optarg); break;
        case 'x': opt.stall = atof(optarg); break;
        case 'T': opt.msg_timeout = atof(optarg); break;
        case 'q': opt.quiet = 1; break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (mode == NULL || (strcmp(mode, "sse") && strcmp(mode, "ws")) ||
        opt.port <= 0 || opt.conns <= 0 || opt.messages < 0 ||
        opt.messages >= (int)MAXMSG / 2 || opt.window < 1 || opt.ramp < 1 ||
        strlen(opt.topic) > 200) {
        usage(stderr);
        return 2;
    }
    opt.ws = strcmp(mode, "ws") == 0;
    if (opt.workers <= 0)
        opt.workers = (opt.conns + 14999) / 15000;
    if (opt.workers > MAXWORKERS)
        opt.workers = MAXWORKERS;
    if (opt.workers > opt.conns)
        opt.workers = opt.conns;
    if (opt.src_ips < 0)
        opt.src_ips = opt.conns > 25000 ? (opt.conns + 24999) / 25000 : 0;
    if (opt.src_ips > 250)
        opt.src_ips = 250;

    /* descriptors: every worker needs its share plus a few */
    {
        struct rlimit rl;
        long need = (opt.conns + opt.workers - 1) / opt.workers + 64;

        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        getrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < need)
            fprintf(stderr,
                    "rt_load: warning: RLIMIT_NOFILE %ld < %ld descriptors per "
                    "worker; use more --workers\n",
                    (long)rl.rlim_cur, need);
    }

    memset(&pub_dst, 0, sizeof(pub_dst));
    pub_dst.sin_family = AF_INET;
    pub_dst.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &pub_dst.sin_addr) != 1) {
        fprintf(stderr, "rt_load: --host must be an IPv4 address\n");
        return 2;
    }

    sh = shmap(sizeof(*sh));
    nworkers = opt.workers;
    for (int i = 0; i < nworkers; i++) {
        struct wstat *st = &sh->w[i];
        int share = opt.conns / nworkers + (i < opt.conns % nworkers);

        st->cnt = shmap(MAXMSG * sizeof(uint32_t));
        st->maxlat = shmap(MAXMSG * sizeof(uint32_t));
        st->minlat = shmap(MAXMSG * sizeof(uint32_t));
        st->samples_cap = (uint64_t)share * (uint64_t)(opt.messages + 1);
        st->samples = shmap(st->samples_cap * sizeof(uint32_t) + 4);
    }

    long rss0 = read_rss_kib(opt.server_pid);
    if (opt.server_pid > 0 && rss0 < 0) {
        fprintf(stderr, "rt_load: cannot read /proc/%d/status\n", opt.server_pid);
        return 2;
    }

    /* Fail fast when publishing does not work (nobody is subscribed yet). */
    {
        int64_t t;
        int st = publish(MAXMSG - 1, &t);

        if (st < 200 || st > 299) {
            fprintf(stderr,
                    "rt_load: POST /admin/publish on %s:%d answered %d%s%s\n",
                    opt.host, opt.port, st, st ? ": " : " (no answer)",
                    st ? pub_last_body : "");
            return 3;
        }
    }

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    atomic_store(&sh->phase, PH_CONNECT);
    {
        int first = 0;

        for (int i = 0; i < nworkers; i++) {
            int share = opt.conns / nworkers + (i < opt.conns % nworkers);
            pid_t pid = fork();

            if (pid < 0) {
                perror("rt_load: fork");
                on_signal(SIGTERM);
            }
            if (pid == 0) {
                struct worker w = {.idx = i, .first = first, .count = share,
                                   .st = &sh->w[i]};

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                w.dst = pub_dst;
                worker_run(&w);
            }
            kids[i] = pid;
            first += share;
        }
    }

    /* ---- connect */
    double t0 = mono_s(), last_prog = t0, last_print = t0;
    uint64_t prog = 0;

    for (;;) {
        uint64_t sub = SUM(subscribed), fail = SUM(failed), op = SUM(opened);
        double t = mono_s();

        if (sub + fail + SUM(skipped) >= (uint64_t)opt.conns)
            break;
        if (atomic_load(&sh->have_err) && sub == 0 && fail >= 8) {
            fprintf(stderr, "rt_load: %s\n", sh->err);
            stop_workers();
            return 3;
        }
        if (sub + fail != prog) {
            prog = sub + fail;
            last_prog = t;
        } else if (t - last_prog > opt.stall) {
            fprintf(stderr,
                    "rt_load: no progress for %.0f s: %" PRIu64
                    " subscribed, %" PRIu64 " failed, %" PRIu64
                    " handshakes unanswered\n",
                    opt.stall, sub, fail, op - sub - fail);
            break;
        }
        if (!opt.quiet && t - last_print >= 2) {
            fprintf(stderr, "  [%s %s] %5.1fs opened %" PRIu64 " subscribed %" PRIu64
                            " failed %" PRIu64 "\n",
                    opt.label, mode, t - t0, op, sub, fail);
            last_print = t;
        }
        pub_keepalive();
        sleep_us(20000);
    }
    double connect_s = mono_s() - t0;
    atomic_store(&sh->phase, PH_RUN);
    uint64_t subscribed = SUM(subscribed);
    uint64_t unanswered = SUM(opened) - subscribed - SUM(failed);

    if (subscribed == 0) {
        fprintf(stderr, "rt_load: no connection subscribed%s%s\n",
                atomic_load(&sh->have_err) ? ": " : "",
                atomic_load(&sh->have_err) ? sh->err : "");
        stop_workers();
        return 3;
    }
    if (!opt.quiet)
        fprintf(stderr, "  [%s %s] %" PRIu64 " subscribed in %.2f s; idle %.0f s\n",
                opt.label, mode, subscribed, connect_s, opt.idle);
    for (double until = mono_s() + opt.idle; mono_s() < until;) {
        pub_keepalive();
        sleep_us(50000);
    }
    long rss1 = read_rss_kib(opt.server_pid);
    double rss_per_conn =
        rss0 >= 0 && rss1 >= 0 ? (double)(rss1 - rss0) * 1024.0 / (double)subscribed : -1;

    /* ---- latency */
    uint32_t *comp = calloc((size_t)opt.messages + 1, sizeof(uint32_t));
    uint32_t *first = calloc((size_t)opt.messages + 1, sizeof(uint32_t));
    size_t ncomp = 0;
    uint64_t lost_lat = 0, expected_lat = 0;
    int pub_fail = 0;
    struct cpusnap l0, l1;
    uint64_t ld0 = SUM(deliveries);

    cpu_snap(&l0);
    for (int k = 0; k < opt.messages; k++) {
        int64_t t;
        uint32_t want = alive();
        int st = publish(k, &t);
        double ts = mono_s();

        if (st < 200 || st > 299) {
            pub_fail++;
            fprintf(stderr, "rt_load: publish %d answered %d %s\n", k, st,
                    pub_last_body);
            continue;
        }
        expected_lat += want;
        for (;;) {
            uint32_t got = msg_count((uint32_t)k);

            if (got >= alive() || got >= want) {
                comp[ncomp] = msg_max((uint32_t)k);
                first[ncomp] = msg_min((uint32_t)k);
                ncomp++;
                break;
            }
            if (mono_s() - ts > opt.msg_timeout) {
                lost_lat += want > got ? want - got : 0;
                break;
            }
            sleep_us(200);
        }
        if (opt.gap_ms > 0)
            sleep_us(opt.gap_ms * 1000L);
    }
    /* let stragglers of the last message land before counting */
    sleep_us(100000);
    cpu_snap(&l1);
    /* CPU per delivery in the latency phase: what one message to every
     * subscriber costs rt_load (its floor on "every client had it" with
     * one worker) and the server */
    uint64_t ldel = SUM(deliveries) - ld0;
    double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    double cli_us = ldel ? (double)(l1.load - l0.load) * tick_us / (double)ldel : -1;
    double srv_us = ldel && opt.server_pid > 0
                        ? (double)(l1.srv - l0.srv) * tick_us / (double)ldel : -1;
    uint64_t got_lat = 0;
    for (int k = 0; k < opt.messages; k++)
        got_lat += msg_count((uint32_t)k);

    /* all (client, message) deliveries */
    size_t nall = 0;
    for (int i = 0; i < nworkers; i++)
        nall += (size_t)atomic_load(&sh->w[i].nsamples);
    uint32_t *all = malloc((nall + 1) * sizeof(uint32_t));
    nall = 0;
    for (int i = 0; i < nworkers; i++) {
        uint64_t k = atomic_load(&sh->w[i].nsamples);
        memcpy(all + nall, sh->w[i].samples, k * sizeof(uint32_t));
        nall += (size_t)k;
    }
    qsort(all, nall, sizeof(uint32_t), cmp_u32);
    qsort(comp, ncomp, sizeof(uint32_t), cmp_u32);
    qsort(first, ncomp, sizeof(uint32_t), cmp_u32);

    /* ---- sustained */
    double fanout = 0, pub_rate = 0, sus_s = 0, srv_cores = -1, load_cores = -1,
           other_cores = -1;
    uint64_t sus_pubs = 0, sus_deliv = 0, sus_lost = 0;
    uint32_t *scomp = NULL;
    size_t nscomp = 0;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);

    if (opt.sustain > 0) {
        uint32_t base = (uint32_t)opt.messages + 1, next = base, done = base;
        uint32_t cap = MAXMSG - base - 2;
        double *pubt = calloc(cap + 1, sizeof(double));
        uint32_t *want = calloc(cap + 1, sizeof(uint32_t));
        struct cpusnap c0, c1;
        uint64_t d0 = SUM(deliveries);
        double ts, tend, tlast;

        scomp = calloc(cap + 1, sizeof(uint32_t));
        cpu_snap(&c0);
        ts = mono_s();
        tend = ts + opt.sustain;
        for (;;) {
            double t = mono_s();
            uint32_t a = alive();

            /* retire messages that every live subscriber has */
            while (done < next) {
                uint32_t got = msg_count(done);

                if (got >= a || got >= want[done - base]) {
                    scomp[nscomp++] = msg_max(done);
                    done++;
                } else if (t - pubt[done - base] > opt.msg_timeout) {
                    sus_lost += want[done - base] - got;
                    done++;
                } else {
                    break;
                }
            }
            if (t >= tend || next - base >= cap) {
                if (done == next)
                    break;
                sleep_us(200);
                continue;
            }
            int can;
            if (opt.rate > 0)
                can = t >= ts + (double)(next - base) / opt.rate;
            else
                can = next - done < (uint32_t)opt.window;
            if (!can) {
                sleep_us(200);
                continue;
            }
            int64_t tt;
            want[next - base] = a;
            pubt[next - base] = t;
            int st = publish(next, &tt);
            if (st < 200 || st > 299) {
                pub_fail++;
                fprintf(stderr, "rt_load: publish %u answered %d %s\n", next,
                        st, pub_last_body);
                if (pub_fail > 10)
                    break;
                continue;
            }
            next++;
        }
        tlast = mono_s();
        cpu_snap(&c1);
        sus_s = tlast - ts;
        sus_pubs = next - base;
        sus_deliv = SUM(deliveries) - d0;
        fanout = sus_s > 0 ? (double)sus_deliv / sus_s : 0;
        pub_rate = sus_s > 0 ? (double)sus_pubs / sus_s : 0;
        if (c1.all > c0.all) {
            double span = (double)(c1.all - c0.all);
            srv_cores = (double)(c1.srv - c0.srv) * ncpu / span;
            load_cores = (double)(c1.load - c0.load) * ncpu / span;
            other_cores = (double)(c1.busy - c0.busy) * ncpu / span - srv_cores -
                          load_cores;
            if (other_cores < 0)
                other_cores = 0;
            if (opt.server_pid <= 0)
                srv_cores = other_cores = -1;
        }
        qsort(scomp, nscomp, sizeof(uint32_t), cmp_u32);
        free(pubt);
        free(want);
    }
    long rss2 = read_rss_kib(opt.server_pid);
    uint64_t disc = SUM(disconnects), pings = SUM(pings);

    /* ---- report */
    struct wstat tot = {0};
#define ADD(f) atomic_store(&tot.f, (uint32_t)SUM(f))
    ADD(fail_connect);
    ADD(fail_status);
    ADD(fail_eof);
    ADD(fail_proto);
    ADD(fail_emfile);
    ADD(fail_addrnotavail);
    ADD(fail_refused);
    ADD(fail_other);
#undef ADD
    uint32_t gave = 0;
    for (int i = 0; i < nworkers; i++)
        if (atomic_load(&sh->w[i].gave_up))
            gave = atomic_load(&sh->w[i].gave_up);
    uint64_t failed = SUM(failed);
    double fanout_per_cpu = srv_cores > 0 ? fanout / srv_cores : -1;

    fprintf(stderr,
            "  [%s %s] connections: %" PRIu64 " of %d subscribed in %.2f s "
            "(%d worker(s), %d source address(es)); failed %" PRIu64
            " (connect %u: EMFILE %u, EADDRNOTAVAIL %u, refused %u, other %u;"
            " bad status %u; closed early %u; protocol %u); unanswered %" PRIu64
            "%s%s\n",
            opt.label, mode, subscribed, opt.conns, connect_s, nworkers,
            opt.src_ips ? opt.src_ips : 1, failed,
            atomic_load(&tot.fail_connect), atomic_load(&tot.fail_emfile),
            atomic_load(&tot.fail_addrnotavail), atomic_load(&tot.fail_refused),
            atomic_load(&tot.fail_other), atomic_load(&tot.fail_status),
            atomic_load(&tot.fail_eof), atomic_load(&tot.fail_proto), unanswered,
            gave ? "; stopped opening on " : "", gave ? strerror((int)gave) : "");
    if (atomic_load(&sh->have_err))
        fprintf(stderr, "  [%s %s] first error: %s\n", opt.label, mode, sh->err);
    fprintf(stderr,
            "  [%s %s] server RSS: %.1f MiB before, %.1f MiB idle with %" PRIu64
            " subscribers -> %.0f bytes per connection; %.1f MiB after the "
            "sustained phase\n",
            opt.label, mode, rss0 / 1024.0, rss1 / 1024.0, subscribed, rss_per_conn,
            rss2 / 1024.0);
    fprintf(stderr,
            "  [%s %s] latency, %zu messages one at a time: every client had it "
            "after p50 %.2f / p99 %.2f / max %.2f ms (first client: p50 %.2f ms);"
            " all %zu deliveries: p50 %.2f / p99 %.2f / max %.2f ms; lost %" PRIu64
            "\n",
            opt.label, mode, ncomp, pct_ms(comp, ncomp, 50), pct_ms(comp, ncomp, 99),
            pct_ms(comp, ncomp, 100), pct_ms(first, ncomp, 50), nall,
            pct_ms(all, nall, 50), pct_ms(all, nall, 99), pct_ms(all, nall, 100),
            lost_lat);
    fprintf(stderr,
            "  [%s %s] CPU per delivery in that phase: rt_load %.2f us, server "
            "%.2f us -> rt_load alone needs about %.1f ms of CPU for one "
            "message to all %" PRIu64 " (spread over %d worker(s))\n",
            opt.label, mode, cli_us, srv_us,
            cli_us * (double)subscribed / 1000.0, subscribed, nworkers);
    if (opt.sustain > 0)
        fprintf(stderr,
                "  [%s %s] sustained %.1f s (%s): %" PRIu64 " publishes (%.0f/s), %"
                PRIu64 " deliveries -> %.0f msgs/s fan-out; every client had a "
                "message after p50 %.1f / p99 %.1f ms; lost %" PRIu64
                "; CPU cores: server %.2f, rt_load %.2f, other %.2f -> %.0f "
                "deliveries per server CPU-s\n",
                opt.label, mode, sus_s, opt.rate > 0 ? "open loop" : "closed loop",
                sus_pubs, pub_rate, sus_deliv, fanout, pct_ms(scomp, nscomp, 50),
                pct_ms(scomp, nscomp, 99), sus_lost, srv_cores, load_cores,
                other_cores, fanout_per_cpu);
    fprintf(stderr, "  [%s %s] disconnects after subscribing: %" PRIu64
                    "; server pings seen: %" PRIu64 "\n",
            opt.label, mode, disc, pings);

    printf("RESULT label=%s mode=%s target=%d conns=%" PRIu64 " connect_s=%.2f "
           "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f first_p50_ms=%.2f "
           "all_p50_ms=%.2f all_p99_ms=%.2f all_max_ms=%.2f lat_msgs=%zu "
           "lost_lat=%" PRIu64 " cli_us_per_deliv=%.2f srv_us_per_deliv=%.2f "
           "fanout_msgs_per_s=%.0f pub_msgs_per_s=%.1f "
           "sus_p50_ms=%.2f sus_p99_ms=%.2f lost_sus=%" PRIu64 " "
           "srv_cores=%.2f load_cores=%.2f other_cores=%.2f "
           "fanout_per_srv_cpu_s=%.0f rss0_kib=%ld rss1_kib=%ld rss2_kib=%ld "
           "rss_per_conn_bytes=%.0f disconnects=%" PRIu64 " failed=%" PRIu64
           " unanswered=%" PRIu64 " emfile=%u addrnotavail=%u refused=%u "
           "bad_status=%u closed_early=%u pub_fail=%d\n",
           opt.label, mode, opt.conns, subscribed, connect_s,
           pct_ms(comp, ncomp, 50), pct_ms(comp, ncomp, 99),
           pct_ms(comp, ncomp, 100), pct_ms(first, ncomp, 50),
           pct_ms(all, nall, 50), pct_ms(all, nall, 99), pct_ms(all, nall, 100),
           ncomp, lost_lat, cli_us, srv_us, fanout, pub_rate, pct_ms(scomp, nscomp, 50),
           pct_ms(scomp, nscomp, 99), sus_lost, srv_cores, load_cores,
           other_cores, fanout_per_cpu, rss0, rss1, rss2, rss_per_conn, disc,
           failed, unanswered, atomic_load(&tot.fail_emfile),
           atomic_load(&tot.fail_addrnotavail), atomic_load(&tot.fail_refused),
           atomic_load(&tot.fail_status), atomic_load(&tot.fail_eof), pub_fail);
    fflush(stdout);

    stop_workers();
    if (subscribed < (uint64_t)opt.conns || pub_fail || lost_lat || sus_lost ||
        disc)
        rc = 1;
    return rc;
}
