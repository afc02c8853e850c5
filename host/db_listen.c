/* db_listen.c - the control loop's LISTEN connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "db_listen.h"
#include "log.h"
#include "loop.h"

#define WDBL_MAX 8
#define WDBL_BACKOFF_MAX 5000

struct wdbl_sub {
    char channel[64];
    wdbl_fn fn;
    void *arg;
};

static struct {
    struct wloop *ctl;
    char *conninfo;
    PGconn *pg;
    struct event *ev, *retry;
    int backoff_ms, up;
    struct wdbl_sub subs[WDBL_MAX];
    int nsubs;
} wdbl;

static void wdbl_connect(void);

int wdbl_listen(const char *channel, wdbl_fn fn, void *arg)
{
    size_t n = strlen(channel);

    if (wdbl.nsubs == WDBL_MAX || n == 0 || n > 63 ||
        strspn(channel, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
        return -1;
    memcpy(wdbl.subs[wdbl.nsubs].channel, channel, n + 1);
    wdbl.subs[wdbl.nsubs].fn = fn;
    wdbl.subs[wdbl.nsubs++].arg = arg;
    return 0;
}

int wdbl_up(void)
{
    return wdbl.up;
}

static void wdbl_down(const char *why)
{
    struct timeval tv;

    if (wdbl.up)
        wlog(WLOG_WARN, "db", "LISTEN connection lost: %s", why);
    wdbl.up = 0;
    if (wdbl.ev != NULL)
        event_free(wdbl.ev);
    wdbl.ev = NULL;
    if (wdbl.pg != NULL)
        PQfinish(wdbl.pg);
    wdbl.pg = NULL;
    tv.tv_sec = wdbl.backoff_ms / 1000;
    tv.tv_usec = (wdbl.backoff_ms % 1000) * 1000;
    wdbl.backoff_ms = wdbl.backoff_ms * 2 > WDBL_BACKOFF_MAX
                          ? WDBL_BACKOFF_MAX
                          : wdbl.backoff_ms * 2;
    evtimer_add(wdbl.retry, &tv);
}

static void wdbl_readable(evutil_socket_t fd, short what, void *arg)
{
    PGnotify *n;
    PGresult *res;

    (void)fd;
    (void)what;
    (void)arg;
    if (!PQconsumeInput(wdbl.pg)) {
        wdbl_down(PQerrorMessage(wdbl.pg));
        return;
    }
    while (!PQisBusy(wdbl.pg) && (res = PQgetResult(wdbl.pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            wlog(WLOG_ERROR, "db", "LISTEN failed: %s",
                 PQresultErrorMessage(res));
        PQclear(res);
    }
    while ((n = PQnotifies(wdbl.pg)) != NULL) {
        for (int i = 0; i < wdbl.nsubs; i++)
            if (strcmp(wdbl.subs[i].channel, n->relname) == 0)
                wdbl.subs[i].fn(n->relname, n->extra, wdbl.subs[i].arg);
        PQfreemem(n);
    }
}

/* Connected: LISTEN on every channel, in one round trip. */
static void wdbl_ready(void)
{
    char sql[WDBL_MAX * 80] = "";

    for (int i = 0; i < wdbl.nsubs; i++) {
        /* channels are [a-z0-9_]: nothing to quote */
        strcat(sql, "LISTEN ");
        strcat(sql, wdbl.subs[i].channel);
        strcat(sql, ";");
    }
    wdbl.ev = event_new(wdbl.ctl->base, PQsocket(wdbl.pg), EV_READ | EV_PERSIST,
                        wdbl_readable, NULL);
    if (wdbl.ev == NULL || event_add(wdbl.ev, NULL) != 0 ||
        (sql[0] != '\0' && !PQsendQuery(wdbl.pg, sql))) {
        wdbl_down("cannot send LISTEN");
        return;
    }
    PQflush(wdbl.pg);
    wdbl.up = 1;
    wdbl.backoff_ms = 100;
    wlog(WLOG_DEBUG, "db", "listening on %d channel(s)", wdbl.nsubs);
}

static void wdbl_poll(evutil_socket_t fd, short what, void *arg)
{
    PostgresPollingStatusType st = PQconnectPoll(wdbl.pg);

    (void)fd;
    (void)what;
    (void)arg;
    if (wdbl.ev != NULL)
        event_free(wdbl.ev);
    wdbl.ev = NULL;
    if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
        wdbl.ev = event_new(wdbl.ctl->base, PQsocket(wdbl.pg),
                            st == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
                            wdbl_poll, NULL);
        if (wdbl.ev == NULL || event_add(wdbl.ev, NULL) != 0)
            wdbl_down("out of memory");
    } else if (st == PGRES_POLLING_OK && PQsetnonblocking(wdbl.pg, 1) == 0) {
        wdbl_ready();
    } else {
        wdbl_down(PQerrorMessage(wdbl.pg));
    }
}

static void wdbl_connect(void)
{
    wdbl.pg = PQconnectStart(wdbl.conninfo);
    if (wdbl.pg == NULL || PQstatus(wdbl.pg) == CONNECTION_BAD) {
        wdbl_down(wdbl.pg ? PQerrorMessage(wdbl.pg) : "out of memory");
        return;
    }
    wdbl_poll(-1, 0, NULL);
}

static void wdbl_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    wdbl_connect();
}

int wdbl_start(struct wloop *ctl, const char *conninfo)
{
    wdbl.ctl = ctl;
    wdbl.backoff_ms = 100;
    wdbl.conninfo = strdup(conninfo);
    wdbl.retry = evtimer_new(ctl->base, wdbl_retry, NULL);
    if (wdbl.conninfo == NULL || wdbl.retry == NULL)
        return -1;
    wdbl_connect();
    return 0;
}

void wdbl_stop(void)
{
    if (wdbl.ev != NULL)
        event_free(wdbl.ev);
    if (wdbl.retry != NULL)
        event_free(wdbl.retry);
    if (wdbl.pg != NULL)
        PQfinish(wdbl.pg);
    free(wdbl.conninfo);
    memset(&wdbl, 0, sizeof(wdbl));
}
