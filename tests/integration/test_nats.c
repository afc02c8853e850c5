/*
 * test_nats.c - the NATS bridge of the bus (host/bus_nats.c) against a real
 * nats-server: both directions, no echo, buffering while the server is away
 * (delivered in order once it is back), a start while the server cannot be
 * reached, a first connect whose handshake fails, stop and start again, a
 * stop while a callback runs, a full reconnect buffer, no credentials in
 * the log. Under ASan, every test also checks that stop frees everything.
 *
 * The module is used directly (linked from weft_host); the other node is a
 * plain nats.c connection of the test (no echo, like a weftd node).
 *
 * Ordering without sleeps: NATS keeps no messages for subscribers that are
 * not there yet, so after a restart the other node must be subscribed again
 * before the module's connection flushes its buffer. The module therefore
 * reaches the server through a "gate", a small TCP relay in this file that
 * the test switches between relaying, dropping new connections (accept, then
 * close before any INFO: the handshake fails) and refusing them (not
 * listening). The test drops, kills the server, publishes, restarts the
 * server, waits for the other node's reconnect (its reconnected callback,
 * then a flush round trip so the server has its subscription again), and
 * only then lets the module through.
 *
 * Likewise "the server has the module's subscription" is established by a
 * message: the module's SUB precedes its PUBs on its connection, so once a
 * PUB of the module has arrived elsewhere, the SUB was processed.
 */
#include "it_nats.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <nats/nats.h>

#include "bus_nats.h"

#define WAIT_MS 15000

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Wait (bounded) for a state the module reports by polling only. */
static int wait_connected(int want, long ms)
{
    long long deadline = now_ms() + ms;

    while (wnats_connected() != want) {
        if (now_ms() > deadline)
            return 0;
        sleep_ms(5);
    }
    return 1;
}

/* ---- messages received (by the module's callback or the raw client) ---- */

#define INBOX_MAX 512

typedef struct inbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    char *subject[INBOX_MAX];
    char *data[INBOX_MAX];
    size_t len[INBOX_MAX];
} inbox;

static void inbox_init(inbox *b)
{
    pthread_condattr_t ca;

    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void inbox_add(inbox *b, const char *subject, const char *data,
                      size_t len)
{
    pthread_mutex_lock(&b->mu);
    if (b->n < INBOX_MAX) {
        b->subject[b->n] = strdup(subject);
        b->data[b->n] = malloc(len + 1);
        if (b->data[b->n] != NULL) {
            if (len > 0)
                memcpy(b->data[b->n], data, len);
            b->data[b->n][len] = '\0';
        }
        b->len[b->n] = len;
        b->n++;
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Wait until the inbox holds at least `count` messages; returns how many
 * it holds. */
static int inbox_wait(inbox *b, int count, long ms)
{
    struct timespec ts;
    int n;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    while (b->n < count &&
           pthread_cond_timedwait(&b->cv, &b->mu, &ts) != ETIMEDOUT)
        ;
    n = b->n;
    pthread_mutex_unlock(&b->mu);
    return n;
}

static int inbox_count(inbox *b)
{
    int n;

    pthread_mutex_lock(&b->mu);
    n = b->n;
    pthread_mutex_unlock(&b->mu);
    return n;
}

/* Assert message i is (subject, data); call when no more can arrive or
 * after inbox_wait() (entries never change once added). */
static void inbox_expect(inbox *b, int i, const char *subject,
                         const char *data)
{
    pthread_mutex_lock(&b->mu);
    ck_assert_msg(i < b->n, "message %d missing (%d received)", i, b->n);
    ck_assert_msg(b->subject[i] != NULL && strcmp(b->subject[i], subject) == 0,
                  "message %d: subject \"%s\", expected \"%s\"", i,
                  b->subject[i], subject);
    ck_assert_msg(b->data[i] != NULL && b->len[i] == strlen(data) &&
                      strcmp(b->data[i], data) == 0,
                  "message %d on %s: data \"%s\" (%zu bytes), expected "
                  "\"%s\"",
                  i, subject, b->data[i], b->len[i], data);
    pthread_mutex_unlock(&b->mu);
}

static void inbox_free(inbox *b)
{
    for (int i = 0; i < b->n; i++) {
        free(b->subject[i]);
        free(b->data[i]);
    }
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

/* The module's callback has no closure: one inbox per test process. */
static inbox bus_in;

static void on_bus(const char *topic, const char *data, size_t len)
{
    inbox_add(&bus_in, topic, data, len);
}

/* ---- the other node: a plain nats.c connection ------------------------- */

typedef struct raw {
    natsOptions *opts;
    natsConnection *nc;
    natsSubscription *sub;
    inbox in;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int reconnects;
    int complete; /* the delivery thread is done with the subscription */
} raw;

static void raw_on_msg(natsConnection *nc, natsSubscription *sub,
                       natsMsg *msg, void *closure)
{
    raw *r = closure;

    (void)nc;
    (void)sub;
    inbox_add(&r->in, natsMsg_GetSubject(msg), natsMsg_GetData(msg),
              (size_t)natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}

static void raw_on_reconnected(natsConnection *nc, void *closure)
{
    raw *r = closure;

    (void)nc;
    pthread_mutex_lock(&r->mu);
    r->reconnects++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void raw_on_complete(void *closure)
{
    raw *r = closure;

    pthread_mutex_lock(&r->mu);
    r->complete = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Connect to `url`, subscribe to "weft.>" and make sure the server has the
 * subscription (flush: a PING/PONG round trip after the SUB). It
 * reconnects forever, quickly, and resubscribes by itself. */
static void raw_start(raw *r, const char *url)
{
    natsStatus s;

    memset(r, 0, sizeof(*r));
    inbox_init(&r->in);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    s = natsOptions_Create(&r->opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(r->opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(r->opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(r->opts, 20);
    if (s == NATS_OK) /* like a weftd node: its own publishes stay away */
        s = natsOptions_SetNoEcho(r->opts, true);
    if (s == NATS_OK) /* as the module does; see test_stop_during_callback */
        s = natsOptions_UseGlobalMessageDelivery(r->opts, true);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(r->opts, raw_on_reconnected, r);
    ck_assert_msg(s == NATS_OK, "raw client options: %s",
                  natsStatus_GetText(s));
    s = natsConnection_Connect(&r->nc, r->opts);
    ck_assert_msg(s == NATS_OK, "raw client: connect %s: %s", url,
                  nats_GetLastError(NULL));
    s = natsConnection_Subscribe(&r->sub, r->nc, "weft.>", raw_on_msg, r);
    ck_assert_msg(s == NATS_OK, "raw client: subscribe: %s",
                  natsStatus_GetText(s));
    s = natsSubscription_SetOnCompleteCB(r->sub, raw_on_complete, r);
    ck_assert_msg(s == NATS_OK, "raw client: on complete: %s",
                  natsStatus_GetText(s));
    s = natsConnection_Flush(r->nc);
    ck_assert_msg(s == NATS_OK, "raw client: flush: %s",
                  natsStatus_GetText(s));
}

/* Wait for the raw client's reconnect number `n`, then flush so that the
 * server has its subscription again. */
static void raw_wait_reconnect(raw *r, int n)
{
    long long deadline = now_ms() + WAIT_MS;
    natsStatus s;

    pthread_mutex_lock(&r->mu);
    while (r->reconnects < n && now_ms() < deadline) {
        pthread_mutex_unlock(&r->mu);
        sleep_ms(5);
        pthread_mutex_lock(&r->mu);
    }
    ck_assert_msg(r->reconnects >= n, "raw client did not reconnect");
    pthread_mutex_unlock(&r->mu);
    s = natsConnection_FlushTimeout(r->nc, WAIT_MS);
    ck_assert_msg(s == NATS_OK, "raw client: flush after reconnect: %s",
                  natsStatus_GetText(s));
}

static void raw_publish(raw *r, const char *subject, const char *data)
{
    natsStatus s = natsConnection_PublishString(r->nc, subject, data);

    if (s == NATS_OK)
        s = natsConnection_Flush(r->nc);
    ck_assert_msg(s == NATS_OK, "raw client: publish %s: %s", subject,
                  natsStatus_GetText(s));
}

/* Must come before wnats_stop(): that tears the nats.c library down. It
 * waits until the last message given to raw_on_msg() has been freed (see
 * wn_wait_subs() in bus_nats.c for why that matters). */
static void raw_stop(raw *r)
{
    natsConnection_Close(r->nc);
    pthread_mutex_lock(&r->mu);
    while (!r->complete)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    natsSubscription_Destroy(r->sub);
    natsConnection_Destroy(r->nc);
    natsOptions_Destroy(r->opts);
    inbox_free(&r->in);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

/* ---- a subscriber that does not use nats.c ----------------------------- */

/* 127.0.0.1 with the kernel's pick of port (port 0 in, real port out). */
static int listen_local(int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                      listen(fd, 16) == 0 &&
                      getsockname(fd, (struct sockaddr *)&a, &alen) == 0,
                  "listen on 127.0.0.1: %s", strerror(errno));
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nothing listens on. */
static int free_port(void)
{
    int port, fd = listen_local(&port);

    close(fd);
    return port;
}

static int connect_local(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read from `fd` until what arrived contains `needle`; 1 when it did. */
static int proto_expect(int fd, const char *needle, long ms)
{
    char buf[65536];
    size_t got = 0;
    long long deadline = now_ms() + ms;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n;

    while (got + 1 < sizeof(buf)) {
        long left = (long)(deadline - now_ms());

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            return 0;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, needle) != NULL)
            return 1;
    }
    return 0;
}

/* Subscribe to `subject` (sid 1) with the NATS text protocol; returns the
 * socket once the server has answered a PING sent after the SUB. */
static int proto_sub(int port, const char *subject)
{
    char cmd[256];
    int fd = connect_local(port), len;

    ck_assert_msg(fd >= 0, "connect to nats-server: %s", strerror(errno));
    ck_assert_msg(proto_expect(fd, "\r\n", WAIT_MS), "no INFO from the server");
    len = snprintf(cmd, sizeof(cmd),
                   "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"
                   "SUB %s 1\r\nPING\r\n",
                   subject);
    ck_assert_int_eq(write(fd, cmd, (size_t)len), len);
    ck_assert_msg(proto_expect(fd, "PONG\r\n", WAIT_MS), "no PONG");
    return fd;
}

/* ---- the gate: a TCP relay to the server that the test opens/closes ---- */

#define GATE_PAIRS 8

enum {
    GATE_OPEN,   /* relay new connections to the server */
    GATE_DROP,   /* accept new connections and close them at once */
    GATE_REFUSE, /* do not listen: connecting is refused */
};

typedef struct gate {
    int lfd, port, upstream;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int want, mode, stop; /* under mu; `mode` is applied by the thread */
} gate;

static int gate_listen(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int gate_write_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Apply a mode change asked for by gate_set() (gate thread). */
static int gate_apply(gate *g)
{
    int stop;

    pthread_mutex_lock(&g->mu);
    if (g->want == GATE_REFUSE && g->lfd >= 0) {
        close(g->lfd);
        g->lfd = -1;
    } else if (g->want != GATE_REFUSE && g->lfd < 0) {
        g->lfd = gate_listen(g->port); /* checked by gate_set() */
    }
    g->mode = g->want;
    stop = g->stop;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return stop;
}

/* One thread relays every pair with blocking writes: enough for the few
 * kilobytes these tests send through it. */
static void *gate_main(void *arg)
{
    gate *g = arg;
    int pair[GATE_PAIRS][2], np = 0, i, k, c, u, mode;
    struct pollfd pfd[2 + 2 * GATE_PAIRS];
    char buf[65536];
    ssize_t n;

    for (;;) {
        pfd[0].fd = g->lfd; /* -1 (ignored by poll) while refusing */
        pfd[0].events = POLLIN;
        pfd[1].fd = g->wake[0];
        pfd[1].events = POLLIN;
        for (i = 0; i < np; i++)
            for (k = 0; k < 2; k++) {
                pfd[2 + 2 * i + k].fd = pair[i][k];
                pfd[2 + 2 * i + k].events = POLLIN;
            }
        for (i = 0; i < 2 + 2 * np; i++)
            pfd[i].revents = 0;
        if (poll(pfd, (nfds_t)(2 + 2 * np), -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[1].revents != 0) {
            while (read(g->wake[0], buf, sizeof(buf)) > 0)
                ;
            if (gate_apply(g))
                break;
            continue; /* pfd[0] may be stale */
        }
        for (i = np - 1; i >= 0; i--) {
            int dead = 0;

            for (k = 0; k < 2 && !dead; k++) {
                if (pfd[2 + 2 * i + k].revents == 0)
                    continue;
                n = read(pair[i][k], buf, sizeof(buf));
                if (n <= 0 ||
                    gate_write_all(pair[i][1 - k], buf, (size_t)n) != 0)
                    dead = 1;
            }
            if (dead) { /* one side went away: close both */
                close(pair[i][0]);
                close(pair[i][1]);
                pair[i][0] = pair[np - 1][0];
                pair[i][1] = pair[np - 1][1];
                np--;
            }
        }
        if (g->lfd >= 0 && pfd[0].revents != 0) {
            c = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            pthread_mutex_lock(&g->mu);
            mode = g->mode;
            pthread_mutex_unlock(&g->mu);
            u = -1;
            if (mode == GATE_OPEN && np < GATE_PAIRS)
                u = connect_local(g->upstream);
            if (u < 0) {
                close(c); /* the client sees EOF before any INFO */
                continue;
            }
            pair[np][0] = c;
            pair[np][1] = u;
            np++;
        }
    }
    for (i = 0; i < np; i++) {
        close(pair[i][0]);
        close(pair[i][1]);
    }
    return NULL;
}

/* Takes effect before it returns, for new connections; relayed ones stay. */
static void gate_set(gate *g, int mode)
{
    int lfd;

    pthread_mutex_lock(&g->mu);
    g->want = mode;
    ck_assert_int_eq(write(g->wake[1], "x", 1), 1);
    while (g->mode != mode)
        pthread_cond_wait(&g->cv, &g->mu);
    lfd = g->lfd;
    pthread_mutex_unlock(&g->mu);
    ck_assert_msg(mode == GATE_REFUSE || lfd >= 0,
                  "gate: cannot listen on port %d again", g->port);
}

static void gate_start(gate *g, int upstream, int mode)
{
    memset(g, 0, sizeof(*g));
    g->upstream = upstream;
    g->lfd = listen_local(&g->port);
    g->want = g->mode = GATE_OPEN;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    ck_assert_int_eq(pipe2(g->wake, O_CLOEXEC | O_NONBLOCK), 0);
    ck_assert_int_eq(pthread_create(&g->thread, NULL, gate_main, g), 0);
    gate_set(g, mode);
}

static char *gate_url(const gate *g, const char *userinfo)
{
    char *u = NULL;

    ck_assert_int_ge(asprintf(&u, "nats://%s%s127.0.0.1:%d",
                              userinfo != NULL ? userinfo : "",
                              userinfo != NULL ? "@" : "", g->port),
                     0);
    return u;
}

static void gate_stop(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_mutex_unlock(&g->mu);
    ck_assert_int_eq(write(g->wake[1], "x", 1), 1);
    pthread_join(g->thread, NULL);
    if (g->lfd >= 0)
        close(g->lfd);
    close(g->wake[0]);
    close(g->wake[1]);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* ---- the host's log (stderr) captured --------------------------------- */

typedef struct capture {
    int fd, saved;
} capture;

static void capture_start(capture *c)
{
    char tmpl[] = "/tmp/weft-nats-log-XXXXXX";

    c->fd = mkstemp(tmpl);
    ck_assert_int_ge(c->fd, 0);
    unlink(tmpl);
    c->saved = dup(2);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_ge(dup2(c->fd, 2), 0);
}

/* What was logged so far (malloc'd). */
static char *capture_text(capture *c)
{
    char *log = calloc(1, 1 << 20);
    ssize_t n;

    ck_assert_ptr_nonnull(log);
    n = pread(c->fd, log, (1 << 20) - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    return log;
}

/* Wait until the log contains `needle`; 1 when it did. */
static int capture_wait(capture *c, const char *needle, long ms)
{
    long long deadline = now_ms() + ms;
    char *log;
    int found;

    for (;;) {
        log = capture_text(c);
        found = strstr(log, needle) != NULL;
        free(log);
        if (found || now_ms() > deadline)
            return found;
        sleep_ms(10);
    }
}

/* Stop capturing; returns the text (malloc'd) and echoes it to stderr. */
static char *capture_stop(capture *c)
{
    char *log = capture_text(c);

    ck_assert_int_ge(dup2(c->saved, 2), 0);
    close(c->saved);
    close(c->fd);
    if (write(2, log, strlen(log)) < 0) {
        /* only a copy for the reader of the test output */
    }
    return log;
}

static void expect_stats(unsigned long long pub, unsigned long long recv,
                         unsigned long long fail)
{
    unsigned long long p, r, f;

    wnats_stats(&p, &r, &f, NULL);
    ck_assert_msg(p == pub && r == recv && f == fail,
                  "stats: published %llu, received %llu, failed %llu; "
                  "expected %llu, %llu, %llu",
                  p, r, f, pub, recv, fail);
}

/* Before any start, and after a stop: nothing to do, nothing published. */
START_TEST(test_not_started)
{
    unsigned long long f;

    wnats_stop(); /* never started: a no-op */
    ck_assert_int_eq(wnats_connected(), 0);
    ck_assert_int_eq(wnats_publish("a.b", "x", 1), -1);
    wnats_stats(NULL, NULL, &f, NULL);
    ck_assert_msg(f == 1, "a publish before start counts as a failure");
    /* Bad prefixes are refused before anything starts. */
    ck_assert_int_eq(wnats_start("nats://127.0.0.1:1", "", on_bus), -1);
    ck_assert_int_eq(wnats_start("nats://127.0.0.1:1", "we ft", on_bus), -1);
    ck_assert_int_eq(wnats_start("nats://127.0.0.1:1", "weft.>", on_bus), -1);
    ck_assert_int_eq(wnats_start("nats://127.0.0.1:1", "weft.", on_bus), -1);
    ck_assert_int_eq(wnats_start("nats://127.0.0.1:1", "weft", NULL), -1);
    wnats_stop();
}
END_TEST

/* Both directions, no echo; then the server dies, 100 publishes wait in
 * the module's buffer and reach the other node, in order, once the server
 * is back on the same port. */
START_TEST(test_bridge_and_reconnect)
{
    it_nats *ns = it_nats_start(0);
    char *direct = it_nats_url(ns), *via_gate, msg[64], subj[64];
    unsigned long long reconnects = 0;
    long long deadline;
    raw r;
    gate g;
    int i, pfd;

    inbox_init(&bus_in);
    gate_start(&g, it_nats_port(ns), GATE_OPEN);
    via_gate = gate_url(&g, NULL);
    ck_assert_int_eq(wnats_connected(), 0);
    ck_assert_int_eq(wnats_start(via_gate, "weft", on_bus), 0);
    ck_assert_int_eq(wnats_start(via_gate, "weft", on_bus), -1); /* twice */
    ck_assert_msg(wait_connected(1, WAIT_MS), "the module did not connect");

    /* This node -> the other: "a.b" is "weft.a.b" on NATS. */
    raw_start(&r, direct);
    ck_assert_int_eq(wnats_publish("a.b", "{\"x\":1}", 7), 0);
    ck_assert_int_eq(inbox_wait(&r.in, 1, WAIT_MS), 1);
    inbox_expect(&r.in, 0, "weft.a.b", "{\"x\":1}");

    /* The other node -> this one, with the prefix stripped. The server
     * queued "a.b" for every subscriber when the raw client got it, so an
     * echo would arrive before "c.d": the first message must be "c.d". */
    raw_publish(&r, "weft.c.d", "{\"y\":2}");
    ck_assert_int_eq(inbox_wait(&bus_in, 1, WAIT_MS), 1);
    inbox_expect(&bus_in, 0, "c.d", "{\"y\":2}");
    /* Subjects outside the prefix never arrive; the next one does. */
    raw_publish(&r, "other.c.d", "no");
    raw_publish(&r, "weft.e", "");
    ck_assert_int_eq(inbox_wait(&bus_in, 2, WAIT_MS), 2);
    inbox_expect(&bus_in, 1, "e", "");
    expect_stats(1, 2, 0);

    /* The server goes away; the module notices and buffers. Its reconnect
     * attempts reach the gate, which drops them (a failed handshake). */
    gate_set(&g, GATE_DROP);
    it_nats_kill(ns);
    ck_assert_msg(wait_connected(0, WAIT_MS),
                  "wnats_connected() still 1 after the server was killed");
    for (i = 0; i < 100; i++) {
        snprintf(subj, sizeof(subj), "buf.%d", i);
        snprintf(msg, sizeof(msg), "{\"i\":%d}", i);
        ck_assert_msg(wnats_publish(subj, msg, strlen(msg)) == 0,
                      "publish %d while the server is down", i);
    }
    expect_stats(101, 2, 0);

    /* Back on the same port: the raw client first, then the module. */
    it_nats_restart(ns);
    raw_wait_reconnect(&r, 1);
    ck_assert_msg(wnats_connected() == 0, "the module got past the gate");
    ck_assert_int_eq(inbox_count(&r.in), 1);
    gate_set(&g, GATE_OPEN);
    ck_assert_msg(inbox_wait(&r.in, 101, WAIT_MS) == 101,
                  "%d of the 100 buffered messages arrived",
                  inbox_count(&r.in) - 1);
    for (i = 0; i < 100; i++) {
        snprintf(subj, sizeof(subj), "weft.buf.%d", i);
        snprintf(msg, sizeof(msg), "{\"i\":%d}", i);
        inbox_expect(&r.in, 1 + i, subj, msg);
    }
    ck_assert_int_eq(wnats_connected(), 1);

    /* The module resubscribed by itself. */
    raw_publish(&r, "weft.after", "1");
    ck_assert_int_eq(inbox_wait(&bus_in, 3, WAIT_MS), 3);
    inbox_expect(&bus_in, 2, "after", "1");
    /* The reconnect is counted by a callback nats.c runs on its own thread. */
    deadline = now_ms() + WAIT_MS;
    for (;;) {
        wnats_stats(NULL, NULL, NULL, &reconnects);
        if (reconnects >= 1 || now_ms() > deadline)
            break;
        sleep_ms(5);
    }
    ck_assert_msg(reconnects == 1, "reconnects: %llu", reconnects);
    expect_stats(101, 3, 0);

    /* A publish right before stop still goes out. The subscriber is not
     * nats.c: wnats_stop() tears the library down. */
    pfd = proto_sub(it_nats_port(ns), "weft.last");
    raw_stop(&r);
    ck_assert_int_eq(wnats_publish("last", "bye", 3), 0);
    wnats_stop();
    ck_assert_msg(proto_expect(pfd, "MSG weft.last 1 3\r\nbye\r\n", WAIT_MS),
                  "the publish made right before wnats_stop() was lost");
    close(pfd);
    ck_assert_int_eq(wnats_connected(), 0);
    ck_assert_int_eq(wnats_publish("a.b", "x", 1), -1);
    wnats_stop(); /* twice: a no-op */
    gate_stop(&g);
    it_nats_stop(ns);
    inbox_free(&bus_in);
    free(direct);
    free(via_gate);
}
END_TEST

/* Nothing listens at start (connection refused): wnats_start returns at
 * once, the subscription and the publishes wait, and both work once the
 * server can be reached. */
START_TEST(test_start_while_unreachable)
{
    it_nats *ns = it_nats_start(0);
    char *direct = it_nats_url(ns), *via_gate, msg[32];
    long long t0;
    raw r;
    gate g;
    int i;

    inbox_init(&bus_in);
    gate_start(&g, it_nats_port(ns), GATE_REFUSE);
    via_gate = gate_url(&g, NULL);
    t0 = now_ms();
    ck_assert_int_eq(wnats_start(via_gate, "weft", on_bus), 0);
    ck_assert_msg(now_ms() - t0 < 1000, "wnats_start took %lld ms",
                  now_ms() - t0);
    ck_assert_int_eq(wnats_connected(), 0);
    for (i = 0; i < 3; i++) {
        snprintf(msg, sizeof(msg), "early %d", i);
        ck_assert_int_eq(wnats_publish("early", msg, strlen(msg)), 0);
    }
    raw_start(&r, direct);
    ck_assert_int_eq(wnats_connected(), 0);
    gate_set(&g, GATE_OPEN);
    ck_assert_int_eq(inbox_wait(&r.in, 3, WAIT_MS), 3);
    for (i = 0; i < 3; i++) {
        snprintf(msg, sizeof(msg), "early %d", i);
        inbox_expect(&r.in, i, "weft.early", msg);
    }
    ck_assert_msg(wait_connected(1, WAIT_MS), "not connected");
    raw_publish(&r, "weft.late", "ok");
    ck_assert_int_eq(inbox_wait(&bus_in, 1, WAIT_MS), 1);
    inbox_expect(&bus_in, 0, "late", "ok");
    expect_stats(3, 1, 0);

    raw_stop(&r);
    wnats_stop();
    gate_stop(&g);
    it_nats_stop(ns);
    inbox_free(&bus_in);
    free(direct);
    free(via_gate);
}
END_TEST

/* The first connect reaches a listener that closes without a handshake (a
 * proxy in front of a NATS server that is down). nats.c 3.4.1 then closes
 * the connection for good; the module makes a new one, and the bus works
 * once the server can be reached. */
START_TEST(test_first_handshake_fails)
{
    it_nats *ns = it_nats_start(0);
    char *direct = it_nats_url(ns), *via_gate, *log;
    capture c;
    raw r;
    gate g;

    inbox_init(&bus_in);
    gate_start(&g, it_nats_port(ns), GATE_DROP);
    via_gate = gate_url(&g, NULL);
    capture_start(&c);
    ck_assert_int_eq(wnats_start(via_gate, "weft", on_bus), 0);
    ck_assert_msg(capture_wait(&c, "given up by nats.c", WAIT_MS),
                  "no new connection after nats.c closed the first one");
    ck_assert_int_eq(wnats_connected(), 0);
    gate_set(&g, GATE_OPEN);
    ck_assert_msg(wait_connected(1, WAIT_MS), "not connected");
    log = capture_stop(&c);
    free(log);
    /* The module's SUB went out before its PUB on the same connection: once
     * "y" has arrived, the server has the subscription. */
    raw_start(&r, direct);
    ck_assert_int_eq(wnats_publish("y", "2", 1), 0);
    ck_assert_int_eq(inbox_wait(&r.in, 1, WAIT_MS), 1);
    inbox_expect(&r.in, 0, "weft.y", "2");
    raw_publish(&r, "weft.x", "1");
    ck_assert_int_eq(inbox_wait(&bus_in, 1, WAIT_MS), 1);
    inbox_expect(&bus_in, 0, "x", "1");

    raw_stop(&r);
    wnats_stop();
    gate_stop(&g);
    it_nats_stop(ns);
    inbox_free(&bus_in);
    free(direct);
    free(via_gate);
}
END_TEST

/* Stop, then start again in the same process (a config reload may do
 * that): nats.c is torn down and set up again. */
START_TEST(test_stop_then_start_again)
{
    it_nats *ns = it_nats_start(0);
    char *direct = it_nats_url(ns);
    raw r;

    inbox_init(&bus_in);
    ck_assert_int_eq(wnats_start(direct, "weft", on_bus), 0);
    ck_assert_msg(wait_connected(1, WAIT_MS), "not connected");
    wnats_stop();
    ck_assert_int_eq(wnats_connected(), 0);
    ck_assert_int_eq(wnats_publish("a", "1", 1), -1);
    ck_assert_int_eq(wnats_start(direct, "w2", on_bus), 0);
    ck_assert_msg(wait_connected(1, WAIT_MS), "not connected the 2nd time");
    wnats_stop();
    /* The test's own nats.c connection only now: wnats_stop() would wait
     * for it (nats_CloseAndWait) and leave nats.c unusable. */
    ck_assert_int_eq(wnats_start(direct, "weft", on_bus), 0);
    ck_assert_msg(wait_connected(1, WAIT_MS), "not connected the 3rd time");
    raw_start(&r, direct);
    ck_assert_int_eq(wnats_publish("b", "2", 1), 0);
    ck_assert_int_eq(inbox_wait(&r.in, 1, WAIT_MS), 1);
    inbox_expect(&r.in, 0, "weft.b", "2");
    raw_publish(&r, "weft.c", "3");
    ck_assert_int_eq(inbox_wait(&bus_in, 1, WAIT_MS), 1);
    inbox_expect(&bus_in, 0, "c", "3");
    raw_stop(&r);
    wnats_stop();
    it_nats_stop(ns);
    inbox_free(&bus_in);
    free(direct);
}
END_TEST

/* A callback still running when wnats_stop() is called: stop waits for it,
 * and the message it was given is freed (under ASan a leak fails the test:
 * nats.c's garbage collector thread must not be gone before the message is
 * handed back to it). */
static atomic_int slow_done;

static void on_bus_slow(const char *topic, const char *data, size_t len)
{
    inbox_add(&bus_in, topic, data, len);
    sleep_ms(300); /* the test thread goes on to wnats_stop() meanwhile */
    atomic_store(&slow_done, 1);
}

START_TEST(test_stop_during_callback)
{
    it_nats *ns = it_nats_start(0);
    char *direct = it_nats_url(ns);
    raw r;

    inbox_init(&bus_in);
    ck_assert_int_eq(wnats_start(direct, "weft", on_bus_slow), 0);
    ck_assert_msg(wait_connected(1, WAIT_MS), "not connected");
    raw_start(&r, direct);
    ck_assert_int_eq(wnats_publish("sync", "", 0), 0); /* SUB is in */
    ck_assert_int_eq(inbox_wait(&r.in, 1, WAIT_MS), 1);
    raw_publish(&r, "weft.slow", "a message the callback still holds");
    ck_assert_int_eq(inbox_wait(&bus_in, 1, WAIT_MS), 1);
    raw_stop(&r);
    wnats_stop();
    ck_assert_msg(atomic_load(&slow_done) == 1,
                  "wnats_stop() returned while the callback was running");
    it_nats_stop(ns);
    inbox_free(&bus_in);
    free(direct);
}
END_TEST

/* Nothing listens: start anyway; the reconnect buffer (8 MiB) fills and
 * publishes fail (-1, counted); stop is prompt; the credentials in the URL
 * never reach the log. */
START_TEST(test_buffer_full_and_no_credentials_logged)
{
    static const char secret[] = "s3cr3t-pw";
    size_t big = 512 * 1024;
    char *payload = malloc(big), *url = NULL, *log;
    unsigned long long pub, fail;
    int i, first_fail = -1;
    long long t0;
    capture c;

    ck_assert_ptr_nonnull(payload);
    memset(payload, 'x', big);
    ck_assert_int_ge(asprintf(&url, "nats://weftuser:%s@127.0.0.1:%d", secret,
                              free_port()),
                     0);
    capture_start(&c);
    t0 = now_ms();
    ck_assert_int_eq(wnats_start(url, "weft", on_bus), 0);
    ck_assert_msg(now_ms() - t0 < 1000, "wnats_start took %lld ms",
                  now_ms() - t0);
    ck_assert_int_eq(wnats_connected(), 0);
    for (i = 0; i < 40 && first_fail < 0; i++)
        if (wnats_publish("big", payload, big) != 0)
            first_fail = i;
    /* 16 x 512 KiB (plus protocol lines) exceed 8 MiB; nats.c checks the
     * limit before appending, so the 17th still goes in. */
    ck_assert_msg(first_fail >= 15 && first_fail <= 17,
                  "first failed publish: %d", first_fail);
    ck_assert_int_eq(wnats_publish("big", payload, big), -1);
    ck_assert_int_eq(wnats_publish("small", "x", 1), -1);
    wnats_stats(&pub, NULL, &fail, NULL);
    ck_assert_msg(pub == (unsigned long long)first_fail && fail == 3,
                  "published %llu, failed %llu", pub, fail);
    t0 = now_ms();
    wnats_stop();
    ck_assert_msg(now_ms() - t0 < 3000, "wnats_stop took %lld ms",
                  now_ms() - t0);
    log = capture_stop(&c);
    ck_assert_msg(strstr(log, secret) == NULL && strstr(log, "weftuser") == NULL,
                  "credentials in the log:\n%s", log);
    ck_assert_msg(strstr(log, "127.0.0.1:") != NULL,
                  "the log does not name the server:\n%s", log);
    ck_assert_msg(strstr(log, "full") != NULL,
                  "the full buffer is not logged:\n%s", log);
    /* One line for the series of failures, not one per publish. */
    ck_assert_msg(strstr(strstr(log, "full") + 1, "full") == NULL,
                  "a series of failures logs more than one line:\n%s", log);
    free(log);
    free(url);
    free(payload);
}
END_TEST

static Suite *nats_suite(void)
{
    Suite *s = suite_create("integration_nats");
    TCase *tc = tcase_create("nats");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_not_started);
    tcase_add_test(tc, test_bridge_and_reconnect);
    tcase_add_test(tc, test_start_while_unreachable);
    tcase_add_test(tc, test_first_handshake_fails);
    tcase_add_test(tc, test_stop_then_start_again);
    tcase_add_test(tc, test_stop_during_callback);
    tcase_add_test(tc, test_buffer_full_and_no_credentials_logged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nats_suite());
    int failed;

    /* Fork mode stays on: every test gets a fresh process (and a fresh
     * nats.c library), and a crash fails one test, not the run. */
    srunner_run_all(sr, getenv("CK_VERBOSITY") != NULL ? CK_ENV : CK_VERBOSE);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
