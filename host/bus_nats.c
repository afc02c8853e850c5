/* bus_nats.c - the bus across nodes over NATS (nats.c with its libevent
 * adapter, on a loop this module owns).
 *
 * Threads: wnats_start() and wnats_stop() run on the caller's thread (the
 * control thread); the socket is read and written by our own event-loop
 * thread; nats.c adds its own threads: a flusher and a reconnect thread per
 * connection, and library threads: timers, connection callbacks, message
 * delivery (it calls `fn`), garbage collection. Publishes come from any
 * thread: natsConnection_Publish only appends to a buffer (the loop thread
 * writes it), or to the 8 MiB reconnect buffer while disconnected.
 *
 * "Reconnect forever" needs one thing nats.c 3.4.1 does not do by itself:
 * when the very first connect reaches a TCP listener that does not complete
 * the NATS handshake (a proxy or load balancer in front of a NATS server
 * that is down, a server still starting, TLS trouble), it closes the
 * connection for good instead of retrying (fixed upstream in 3.12, commit
 * 77843e72). It also gives up after the same authorization error twice in a
 * row. So when a connection is closed while we are not stopping, we make a
 * new one, after 250 ms doubling up to 30 s (wn_on_closed, wn_renew).
 *
 * Locks, always taken in this order:
 * - `wn_life` serialises wnats_start() and wnats_stop();
 * - `wn_swap` serialises installing a connection (start, renew) with taking
 *   it down (stop) and with the closed callback's decision to renew;
 * - `wn_conn_lock` (read-locked by publishers) guards the pointer only, so a
 *   publisher never uses a freed connection and never waits for the network.
 */
#include "bus_nats.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <nats/nats.h>
/* The adapter defines its functions in the header (no prototypes, unused
 * parameters): this is the one file that includes it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <nats/adapters/libevent.h>
#pragma GCC diagnostic pop

#include "log.h"

#define WN_RECONNECT_WAIT_MS 250
#define WN_RENEW_MAX_MS 30000
#define WN_RECONNECT_JITTER_MS 100
#define WN_RECONNECT_BUF (8 * 1024 * 1024)
#define WN_CONNECT_TIMEOUT_MS 2000
#define WN_PING_INTERVAL_MS 10000
#define WN_CLOSE_WAIT_MS 5000
/* Subjects up to this length are built on the stack. */
#define WN_SUBJECT_STACK 256

static pthread_mutex_t wn_life = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wn_swap = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t wn_conn_lock = PTHREAD_RWLOCK_INITIALIZER;
/* Written under wn_swap and wn_conn_lock; NULL when stopped. */
static natsConnection *wn_conn;

/* Set by start and freed by stop (under wn_life); read by nats.c's threads
 * and ours in between (they start after these are set and end before
 * nats_CloseAndWait returns). `sub` changes under wn_swap. */
static struct {
    natsOptions *opts;
    natsSubscription *sub;
    char *subject; /* "<prefix>.>" */
    struct event_base *base;
    pthread_t thread;
    int thread_up;
    char *prefix; /* "<prefix>." */
    size_t prefix_len;
    wnats_recv_fn fn;
    char *url_log; /* the URL without credentials */
} wn;

/* Subscriptions whose last message may not be freed yet (wn_wait_subs). */
static pthread_mutex_t wn_subs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wn_subs_cv = PTHREAD_COND_INITIALIZER;
static int wn_subs_live;

static atomic_int wn_stopping; /* set under wn_swap */
static atomic_int wn_renew_ms = WN_RECONNECT_WAIT_MS; /* next renewal delay */
static atomic_int wn_fail_logged;
static atomic_ullong wn_pub, wn_recv, wn_fail, wn_reconnects;

/* ---- URLs in logs: never credentials ---------------------------------- */

/* Copy `in` to `out` without any "user:pass@" / "token@" part. `in` is a
 * comma-separated list of URLs; with `bare`, a URL without "scheme://" may
 * carry credentials too (nats.c accepts "user:pass@host:4222"), otherwise
 * only text after a "://" is treated as an authority (free text). */
static void wn_redact(const char *in, int bare, char *out, size_t size)
{
    size_t o = 0;
    const char *p = in;

    if (size == 0)
        return;
    while (*p != '\0') {
        const char *seg_end = strchr(p, ',');
        const char *auth = NULL, *auth_end, *at = NULL, *q;

        if (seg_end == NULL)
            seg_end = p + strlen(p);
        for (q = p; q + 3 <= seg_end; q++)
            if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
                auth = q + 3;
                break;
            }
        if (auth == NULL && bare) {
            auth = p;
            while (auth < seg_end && (*auth == ' ' || *auth == '\t'))
                auth++;
        }
        if (auth != NULL) {
            for (auth_end = auth; auth_end < seg_end &&
                                  *auth_end != '/' && *auth_end != ' ';
                 auth_end++)
                if (*auth_end == '@')
                    at = auth_end;
        }
        for (q = p; q < seg_end && o + 1 < size; q++) {
            if (at != NULL && q >= auth && q <= at)
                continue;
            out[o++] = *q;
        }
        if (*seg_end == '\0')
            break;
        if (o + 1 < size)
            out[o++] = ',';
        p = seg_end + 1;
    }
    out[o] = '\0';
}

/* nats.c's last error on this thread (redacted), or the status text. */
static void wn_last_error(natsStatus s, char *out, size_t size)
{
    const char *e = nats_GetLastError(NULL);

    if (e == NULL || *e == '\0')
        e = natsStatus_GetText(s);
    wn_redact(e, 0, out, size);
}

/* The server `nc` is (or was last) connected to, redacted. */
static void wn_server(natsConnection *nc, char *out, size_t size)
{
    char url[512];

    if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK ||
        url[0] == '\0')
        snprintf(url, sizeof(url), "%s", wn.url_log != NULL ? wn.url_log : "?");
    wn_redact(url, 1, out, size);
}

/* ---- nats.c callbacks (nats.c threads) --------------------------------- */

static void wn_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                      void *closure)
{
    const char *subject = natsMsg_GetSubject(msg);
    int len = natsMsg_GetDataLength(msg);

    (void)nc;
    (void)sub;
    (void)closure;
    if (subject != NULL && strncmp(subject, wn.prefix, wn.prefix_len) == 0 &&
        subject[wn.prefix_len] != '\0' && len >= 0) {
        atomic_fetch_add(&wn_recv, 1);
        wn.fn(subject + wn.prefix_len, natsMsg_GetData(msg), (size_t)len);
    }
    natsMsg_Destroy(msg);
}

/* The delivery thread is done with a closed subscription: every message it
 * had was handed to its callback (which returned) or dropped, and freed. */
static void wn_on_sub_complete(void *closure)
{
    (void)closure;
    pthread_mutex_lock(&wn_subs_mu);
    if (wn_subs_live > 0) /* 0 after a stop that gave up waiting */
        wn_subs_live--;
    pthread_cond_broadcast(&wn_subs_cv);
    pthread_mutex_unlock(&wn_subs_mu);
}

/*
 * nats.c 3.4.1 frees a message by handing it to its garbage-collector
 * thread, and that thread ends as soon as nats_CloseAndWait() begins: a
 * message freed later (by a callback still running, or dropped by the
 * delivery thread) is never freed. So before tearing nats.c down, wait until
 * the delivery thread has finished with every subscription (the connection
 * is closed: no new messages). This also makes wnats_stop() wait for a
 * running `fn`.
 */
static void wn_wait_subs(void)
{
    struct timespec until;
    int left, rc = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WN_CLOSE_WAIT_MS / 1000;
    pthread_mutex_lock(&wn_subs_mu);
    while (wn_subs_live > 0 && rc == 0)
        rc = pthread_cond_timedwait(&wn_subs_cv, &wn_subs_mu, &until);
    left = wn_subs_live;
    pthread_mutex_unlock(&wn_subs_mu);
    if (left > 0)
        wlog(WLOG_WARN, "nats", "stop: a message callback is still running "
                                "after %d ms",
             WN_CLOSE_WAIT_MS);
}

static void wn_on_connected(natsConnection *nc, void *closure)
{
    char srv[512];

    (void)closure;
    atomic_store(&wn_renew_ms, WN_RECONNECT_WAIT_MS);
    wn_server(nc, srv, sizeof(srv));
    wlog(WLOG_INFO, "nats", "connected to %s", srv);
}

static void wn_on_disconnected(natsConnection *nc, void *closure)
{
    char srv[512];

    (void)closure;
    if (atomic_load(&wn_stopping))
        return;
    wn_server(nc, srv, sizeof(srv));
    wlog(WLOG_WARN, "nats",
         "disconnected from %s; reconnecting every %d ms, publishes are "
         "buffered (up to %d MiB)",
         srv, WN_RECONNECT_WAIT_MS, WN_RECONNECT_BUF >> 20);
}

static void wn_on_reconnected(natsConnection *nc, void *closure)
{
    char srv[512];

    (void)closure;
    atomic_store(&wn_renew_ms, WN_RECONNECT_WAIT_MS);
    atomic_fetch_add(&wn_reconnects, 1);
    wn_server(nc, srv, sizeof(srv));
    wlog(WLOG_INFO, "nats", "reconnected to %s", srv);
}

static void wn_renew(evutil_socket_t fd, short what, void *arg);

/* Make a new connection after the current delay (doubled for the next
 * time). Under wn_swap, not stopping: wn.base is alive. */
static void wn_schedule_renew(const char *why)
{
    int ms = atomic_load(&wn_renew_ms);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    atomic_store(&wn_renew_ms,
                 ms >= WN_RENEW_MAX_MS / 2 ? WN_RENEW_MAX_MS : ms * 2);
    wlog(WLOG_WARN, "nats", "connection to %s given up by nats.c (%s); "
                            "a new one in %d ms",
         wn.url_log, why, ms);
    if (event_base_once(wn.base, -1, EV_TIMEOUT, wn_renew, NULL, &tv) != 0)
        wlog(WLOG_ERROR, "nats", "cannot schedule a new connection; the bus "
                                 "is local only");
}

static void wn_on_closed(natsConnection *nc, void *closure)
{
    const char *last = NULL;
    char why[256];
    int current;

    (void)closure;
    pthread_mutex_lock(&wn_swap);
    pthread_rwlock_rdlock(&wn_conn_lock);
    current = wn_conn == nc;
    pthread_rwlock_unlock(&wn_conn_lock);
    /* Not ours to renew: we are stopping, or this is a replaced or
     * never-installed connection. */
    if (!atomic_load(&wn_stopping) && current) {
        (void)natsConnection_GetLastError(nc, &last);
        wn_redact(last != NULL && *last != '\0' ? last : "no reason given", 0,
                  why, sizeof(why));
        wn_schedule_renew(why);
    }
    pthread_mutex_unlock(&wn_swap);
}

static void wn_on_error(natsConnection *nc, natsSubscription *sub,
                        natsStatus err, void *closure)
{
    (void)nc;
    (void)closure;
    if (err == NATS_SLOW_CONSUMER && sub != NULL)
        wlog(WLOG_WARN, "nats",
             "slow consumer: messages from other nodes were dropped");
    else
        wlog(WLOG_WARN, "nats", "asynchronous error: %s",
             natsStatus_GetText(err));
}

/* ---- connections ---------------------------------------------------------- */

/* Connect (or start trying in the background) and subscribe. */
static natsStatus wn_connect(natsConnection **pnc, natsSubscription **psub)
{
    natsConnection *nc = NULL;
    natsStatus s;

    *pnc = NULL;
    *psub = NULL;
    s = natsConnection_Connect(&nc, wn.opts);
    if (s == NATS_NOT_YET_CONNECTED) {
        wlog(WLOG_WARN, "nats",
             "%s is not reachable yet; retrying every %d ms in the "
             "background, publishes are buffered (up to %d MiB)",
             wn.url_log, WN_RECONNECT_WAIT_MS, WN_RECONNECT_BUF >> 20);
        s = NATS_OK;
    } else if (s == NATS_OK) {
        atomic_store(&wn_renew_ms, WN_RECONNECT_WAIT_MS);
        wlog(WLOG_INFO, "nats", "connected to %s", wn.url_log);
    } else {
        return s;
    }
    /* While not connected, nats.c sends the SUB once it is. */
    s = natsConnection_Subscribe(psub, nc, wn.subject, wn_on_msg, NULL);
    if (s == NATS_CONNECTION_CLOSED) {
        /* nats.c gave it up already (see the top of this file): install it
         * all the same, its closed callback (waiting for wn_swap) renews. */
        *psub = NULL;
        s = NATS_OK;
    } else if (s != NATS_OK) {
        natsConnection_Destroy(nc);
        return s;
    } else {
        /* Counted only when set: a subscription closed before this call
         * refuses it (and its delivery thread is done with it at once). */
        pthread_mutex_lock(&wn_subs_mu);
        if (natsSubscription_SetOnCompleteCB(*psub, wn_on_sub_complete,
                                             NULL) == NATS_OK)
            wn_subs_live++;
        pthread_mutex_unlock(&wn_subs_mu);
    }
    *pnc = nc;
    return NATS_OK;
}

/* Our loop thread: replace a connection nats.c gave up. */
static void wn_renew(evutil_socket_t fd, short what, void *arg)
{
    natsConnection *nc, *old = NULL;
    natsSubscription *sub, *old_sub = NULL;
    natsStatus s;
    char err[512];

    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&wn_swap);
    if (atomic_load(&wn_stopping)) {
        pthread_mutex_unlock(&wn_swap);
        return;
    }
    s = wn_connect(&nc, &sub);
    if (s == NATS_OK) {
        pthread_rwlock_wrlock(&wn_conn_lock);
        old = wn_conn;
        wn_conn = nc;
        pthread_rwlock_unlock(&wn_conn_lock);
        old_sub = wn.sub;
        wn.sub = sub;
    } else {
        wn_last_error(s, err, sizeof(err));
        wn_schedule_renew(err);
    }
    pthread_mutex_unlock(&wn_swap);
    natsSubscription_Destroy(old_sub);
    natsConnection_Destroy(old); /* closed already */
}

/* ---- the loop thread ---------------------------------------------------- */

static void *wn_loop_main(void *arg)
{
    struct event_base *base = arg;

    /* The loop may be empty between connections: nats.c attaches its
     * events only once connected. wnats_stop() ends it with loopexit. */
    if (event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY) == -1)
        wlog(WLOG_ERROR, "nats", "event loop failed");
    return NULL;
}

/* Block the asynchronous signals while nats.c's threads and ours are
 * created (they inherit the mask): the host's signals go to its own loop.
 * Synchronous ones stay open so crashes are still reported. */
static void wn_block_signals(sigset_t *old)
{
    sigset_t set;

    sigfillset(&set);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGBUS);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGILL);
    sigdelset(&set, SIGTRAP);
    sigdelset(&set, SIGABRT);
    sigdelset(&set, SIGSYS);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

/* ---- start and stop ----------------------------------------------------- */

/* A prefix is one or more NATS tokens without wildcards: "weft", "a.b". */
static int wn_prefix_ok(const char *p)
{
    size_t i, n = strlen(p);

    if (n == 0 || p[0] == '.' || p[n - 1] == '.')
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c <= ' ' || c == 0x7f || c == '*' || c == '>' ||
            (c == '.' && p[i + 1] == '.'))
            return 0;
    }
    return 1;
}

/* Free everything start made. The connection `nc` (the installed one, taken
 * out of wn_conn) is closed already or never was. */
static void wn_release(natsConnection *nc)
{
    natsStatus s;

    if (wn.thread_up) {
        /* loopexit (not loopbreak) also works if the loop has not started
         * yet: it is an event, the loop runs it once it starts. */
        event_base_loopexit(wn.base, NULL);
        pthread_join(wn.thread, NULL);
        wn.thread_up = 0;
    }
    natsSubscription_Destroy(wn.sub);
    wn.sub = NULL;
    natsConnection_Destroy(nc);
    natsOptions_Destroy(wn.opts);
    wn.opts = NULL;
    if (wn.base != NULL)
        event_base_free(wn.base); /* and a pending renewal with it */
    wn.base = NULL;
    /* Waits for nats.c's threads (delivery, callbacks) to end: after this,
     * nothing calls `fn` or reads `wn`. */
    s = nats_CloseAndWait(WN_CLOSE_WAIT_MS);
    if (s != NATS_OK && s != NATS_NOT_INITIALIZED)
        wlog(WLOG_WARN, "nats", "library shutdown: %s", natsStatus_GetText(s));
    free(wn.prefix);
    free(wn.subject);
    free(wn.url_log);
    wn.prefix = NULL;
    wn.subject = NULL;
    wn.url_log = NULL;
    wn.prefix_len = 0;
    wn.fn = NULL;
}

int wnats_start(const char *url, const char *prefix, wnats_recv_fn fn)
{
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsOptions *o = NULL;
    natsStatus s;
    sigset_t old;
    int masked = 0;
    char err[512], url_log[512];
    const char *what = NULL;

    if (url == NULL || *url == '\0' || prefix == NULL || fn == NULL) {
        wlog(WLOG_ERROR, "nats", "start: no URL, prefix or callback");
        return -1;
    }
    if (!wn_prefix_ok(prefix)) {
        wlog(WLOG_ERROR, "nats",
             "start: subject prefix \"%s\" is not a NATS subject without "
             "wildcards (e.g. \"weft\")",
             prefix);
        return -1;
    }
    wn_redact(url, 1, url_log, sizeof(url_log));
    pthread_mutex_lock(&wn_life);
    if (wn.base != NULL) {
        pthread_mutex_unlock(&wn_life);
        wlog(WLOG_ERROR, "nats", "start: already started");
        return -1;
    }
    atomic_store(&wn_stopping, 0);
    atomic_store(&wn_renew_ms, WN_RECONNECT_WAIT_MS);
    pthread_mutex_lock(&wn_subs_mu);
    wn_subs_live = 0;
    pthread_mutex_unlock(&wn_subs_mu);
    wn.fn = fn;
    wn.prefix_len = strlen(prefix) + 1;
    wn.prefix = malloc(wn.prefix_len + 1);
    wn.url_log = strdup(url_log);
    if (wn.prefix == NULL || wn.url_log == NULL ||
        asprintf(&wn.subject, "%s.>", prefix) < 0) {
        wn.subject = NULL;
        what = "out of memory";
        s = NATS_OK; /* not a nats.c error */
        goto fail;
    }
    memcpy(wn.prefix, prefix, wn.prefix_len - 1);
    memcpy(wn.prefix + wn.prefix_len - 1, ".", 2);

    wn_block_signals(&old);
    masked = 1;
    natsLibevent_Init(); /* evthread_use_pthreads: the adapter is called
                            from nats.c's threads */
    wn.base = event_base_new();
    if (wn.base == NULL) {
        what = "cannot create an event loop";
        s = NATS_OK;
        goto fail;
    }
    if (pthread_create(&wn.thread, NULL, wn_loop_main, wn.base) != 0) {
        what = "cannot start the NATS thread";
        s = NATS_OK;
        goto fail;
    }
    wn.thread_up = 1;
    (void)pthread_setname_np(wn.thread, "weft-nats");

    s = natsOptions_Create(&o);
    wn.opts = o;
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "weftd");
    if (s == NATS_OK)
        s = natsOptions_SetNoEcho(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, WN_CONNECT_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* forever */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, WN_RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, WN_RECONNECT_JITTER_MS,
                                           WN_RECONNECT_JITTER_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, WN_RECONNECT_BUF);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, WN_PING_INTERVAL_MS);
    /* Messages go through the library's delivery thread (not a thread per
     * subscription, whose leftovers would be freed whenever the last
     * reference goes): see wn_wait_subs(). */
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    /* With a connected callback the first connect does not wait: it
     * returns NATS_NOT_YET_CONNECTED and retries in the background (with
     * NULL it would retry in this call, forever with max reconnect -1). */
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, wn_on_connected,
                                                NULL);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, wn_on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, wn_on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, wn_on_closed, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, wn_on_error, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, wn.base, natsLibevent_Attach,
                                     natsLibevent_Read, natsLibevent_Write,
                                     natsLibevent_Detach);
    if (s != NATS_OK) {
        what = "options";
        goto fail;
    }

    /* Under wn_swap: a closed callback for this connection waits until it
     * is installed, and then renews it. */
    pthread_mutex_lock(&wn_swap);
    s = wn_connect(&nc, &sub);
    if (s == NATS_OK) {
        pthread_rwlock_wrlock(&wn_conn_lock);
        wn_conn = nc;
        pthread_rwlock_unlock(&wn_conn_lock);
        wn.sub = sub;
    }
    pthread_mutex_unlock(&wn_swap);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    masked = 0;
    if (s != NATS_OK) {
        what = "connect";
        goto fail;
    }
    pthread_mutex_unlock(&wn_life);
    wlog(WLOG_INFO, "nats", "bus bridged to %s on subjects %s", url_log,
         wn.subject);
    return 0;

fail:
    if (masked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    err[0] = '\0';
    if (s != NATS_OK)
        wn_last_error(s, err, sizeof(err));
    wlog(WLOG_ERROR, "nats", "start (%s, prefix %s): %s%s%s", url_log, prefix,
         what, err[0] ? ": " : "", err);
    pthread_mutex_lock(&wn_swap);
    atomic_store(&wn_stopping, 1);
    pthread_mutex_unlock(&wn_swap);
    wn_release(NULL);
    pthread_mutex_unlock(&wn_life);
    return -1;
}

void wnats_stop(void)
{
    natsConnection *nc;

    pthread_mutex_lock(&wn_life);
    if (wn.base == NULL) { /* never started, or stopped */
        pthread_mutex_unlock(&wn_life);
        return;
    }
    /* From here on nothing renews the connection. */
    pthread_mutex_lock(&wn_swap);
    atomic_store(&wn_stopping, 1);
    pthread_rwlock_wrlock(&wn_conn_lock);
    nc = wn_conn;
    wn_conn = NULL;
    pthread_rwlock_unlock(&wn_conn_lock);
    pthread_mutex_unlock(&wn_swap);
    /* Close while the loop still runs: it flushes what is buffered (when
     * connected) and detaches nats.c's events from our loop. */
    if (nc != NULL)
        natsConnection_Close(nc);
    wn_wait_subs();
    wn_release(nc);
    pthread_mutex_unlock(&wn_life);
    wlog(WLOG_INFO, "nats", "stopped");
}

/* ---- any thread --------------------------------------------------------- */

static void wn_publish_failed(const char *topic, const char *why)
{
    atomic_fetch_add(&wn_fail, 1);
    /* One line per series of failures (a full buffer fails every publish). */
    if (atomic_exchange(&wn_fail_logged, 1) == 0)
        wlog(WLOG_WARN, "nats", "publish on \"%s\" failed: %s", topic, why);
}

int wnats_publish(const char *topic, const char *data, size_t len)
{
    char stack[WN_SUBJECT_STACK], *subject = stack, err[256];
    size_t tlen;
    natsStatus s;

    if (topic == NULL || *topic == '\0' || (data == NULL && len > 0) ||
        len > INT_MAX) {
        wn_publish_failed(topic != NULL ? topic : "(null)",
                          "invalid topic or payload");
        return -1;
    }
    tlen = strlen(topic);
    pthread_rwlock_rdlock(&wn_conn_lock);
    if (wn_conn == NULL) {
        pthread_rwlock_unlock(&wn_conn_lock);
        wn_publish_failed(topic, "not started");
        return -1;
    }
    if (wn.prefix_len + tlen + 1 > sizeof(stack)) {
        subject = malloc(wn.prefix_len + tlen + 1);
        if (subject == NULL) {
            pthread_rwlock_unlock(&wn_conn_lock);
            wn_publish_failed(topic, "out of memory");
            return -1;
        }
    }
    memcpy(subject, wn.prefix, wn.prefix_len);
    memcpy(subject + wn.prefix_len, topic, tlen + 1);
    s = natsConnection_Publish(wn_conn, subject, data, (int)len);
    pthread_rwlock_unlock(&wn_conn_lock);
    if (subject != stack)
        free(subject);
    if (s != NATS_OK) {
        if (s == NATS_INSUFFICIENT_BUFFER)
            snprintf(err, sizeof(err),
                     "the reconnect buffer (%d MiB) is full while NATS is "
                     "away",
                     WN_RECONNECT_BUF >> 20);
        else
            wn_last_error(s, err, sizeof(err));
        wn_publish_failed(topic, err);
        return -1;
    }
    if (atomic_load_explicit(&wn_fail_logged, memory_order_relaxed))
        atomic_store(&wn_fail_logged, 0);
    atomic_fetch_add_explicit(&wn_pub, 1, memory_order_relaxed);
    return 0;
}

int wnats_connected(void)
{
    int up;

    pthread_rwlock_rdlock(&wn_conn_lock);
    up = wn_conn != NULL &&
         natsConnection_Status(wn_conn) == NATS_CONN_STATUS_CONNECTED;
    pthread_rwlock_unlock(&wn_conn_lock);
    return up;
}

void wnats_stats(unsigned long long *pub, unsigned long long *recv,
                 unsigned long long *fail, unsigned long long *reconnects)
{
    if (pub != NULL)
        *pub = atomic_load(&wn_pub);
    if (recv != NULL)
        *recv = atomic_load(&wn_recv);
    if (fail != NULL)
        *fail = atomic_load(&wn_fail);
    if (reconnects != NULL)
        *reconnects = atomic_load(&wn_reconnects);
}
