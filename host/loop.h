/* loop.h - event-loop threads: each owns an event_base, a listener bound to
 * the shared port with SO_REUSEPORT, its connections and its routing table.
 * Other threads reach a loop only through wloop_post(). */
#ifndef WEFT_HOST_LOOP_H
#define WEFT_HOST_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

struct wrtable;
struct wconn;
struct wmet_loop;

struct wtask {
    void (*fn)(void *arg);
    void *arg;
    struct wtask *next;
};

struct wloop {
    int id; /* -1 for the control loop */
    pthread_t thr;
    struct event_base *base;
    struct event *wake;
    pthread_mutex_t mu;
    struct wtask *head, *tail;

    struct evconnlistener *lst;
    struct wrtable *rt;      /* this loop's current routing table */
    struct wmet_loop *met;   /* this loop's metrics               */
    struct wconn *conns;     /* all open connections (list)       */
    int nconns;
    int draining;
    atomic_int rt_interest; /* subscriptions served here (hub.c posts) */

    char date[40]; /* "Mon, 23 Nov 2026 01:02:03 GMT" */
    time_t date_at;
    char rid_prefix[17];
    uint64_t rid_next;
};

int wloop_init(struct wloop *l, int id);
void wloop_destroy(struct wloop *l);

/* Run fn(arg) on loop `l`. Safe from any thread. Returns 0, or -1 when out
 * of memory (fn is then not run). */
int wloop_post(struct wloop *l, void (*fn)(void *), void *arg);

/* Run queued tasks now (after the loop stopped, so none is lost). */
void wloop_run_tasks(struct wloop *l);

/* Bind a SO_REUSEPORT listening socket; returns the fd or -1 (errno). */
int wloop_bind(const char *host, int port, int *bound_port);

/* Monotonic clock in milliseconds. */
int64_t wloop_now_ms(void);

/* The cached Date header value for this loop. */
const char *wloop_date(struct wloop *l);

#endif
