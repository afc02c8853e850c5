/* db_cancel.c - cancel requests on dedicated threads (see db_cancel.h).
 *
 * A job has two owners, the loop that asked and the thread that runs it;
 * whichever lets go last frees it. Everything is under one mutex: jobs
 * are rare (timeouts, clients gone) and each costs a network round trip.
 * The state is static so that a thread left stuck in PQcancel at shutdown
 * still finds its mutex and queue. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "db_cancel.h"
#include "log.h"

enum { WDBC_QUEUED = 0, WDBC_RUNNING, WDBC_DONE };

struct wdbc_job {
    PGcancel *pc;
    int state, refs;
    struct wdbc_job *next;
};

static pthread_mutex_t wdbc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wdbc_cv = PTHREAD_COND_INITIALIZER;   /* work queued */
static pthread_cond_t wdbc_gone = PTHREAD_COND_INITIALIZER; /* a thread ended */
static struct wdbc_job *wdbc_head, *wdbc_tail;
static int wdbc_queued, wdbc_max, wdbc_threads, wdbc_stopping;

static void wdbc_unref(struct wdbc_job *j)
{
    if (--j->refs > 0)
        return;
    if (j->pc != NULL)
        PQfreeCancel(j->pc);
    free(j);
}

static void *wdbc_main(void *arg)
{
    struct wdbc_job *j;
    char err[256];
    int ok;

    (void)arg;
    pthread_mutex_lock(&wdbc_mu);
    for (;;) {
        while (wdbc_head == NULL && !wdbc_stopping)
            pthread_cond_wait(&wdbc_cv, &wdbc_mu);
        if (wdbc_stopping)
            break;
        j = wdbc_head;
        wdbc_head = j->next;
        if (wdbc_head == NULL)
            wdbc_tail = NULL;
        wdbc_queued--;
        j->state = WDBC_RUNNING;
        pthread_mutex_unlock(&wdbc_mu);
        ok = PQcancel(j->pc, err, sizeof(err));
        if (!ok)
            wlog(WLOG_WARN, "db", "cancel failed: %s", err);
        pthread_mutex_lock(&wdbc_mu);
        j->state = WDBC_DONE;
        wdbc_unref(j);
    }
    wdbc_threads--;
    pthread_cond_broadcast(&wdbc_gone);
    pthread_mutex_unlock(&wdbc_mu);
    return NULL;
}

int wdbc_start(int nthreads, int queue_max)
{
    pthread_attr_t at;
    pthread_t t;
    int rc = 0;

    pthread_mutex_lock(&wdbc_mu);
    wdbc_stopping = 0;
    wdbc_max = queue_max;
    if (wdbc_threads > 0) {
        /* Still there from an earlier start (a stuck thread or two). */
        pthread_mutex_unlock(&wdbc_mu);
        return 0;
    }
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&t, &at, wdbc_main, NULL) != 0) {
            rc = wdbc_threads > 0 ? 0 : -1;
            break;
        }
        wdbc_threads++;
    }
    pthread_attr_destroy(&at);
    pthread_mutex_unlock(&wdbc_mu);
    return rc;
}

void wdbc_stop(int wait_ms)
{
    struct timespec until;
    struct wdbc_job *j;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&wdbc_mu);
    wdbc_stopping = 1;
    while ((j = wdbc_head) != NULL) {
        wdbc_head = j->next;
        j->state = WDBC_DONE;
        wdbc_unref(j); /* the thread's share */
    }
    wdbc_tail = NULL;
    wdbc_queued = 0;
    pthread_cond_broadcast(&wdbc_cv);
    while (wdbc_threads > 0)
        if (pthread_cond_timedwait(&wdbc_gone, &wdbc_mu, &until) == ETIMEDOUT)
            break;
    if (wdbc_threads > 0)
        wlog(WLOG_WARN, "db", "%d cancel request(s) still waiting for the "
                              "server at shutdown", wdbc_threads);
    pthread_mutex_unlock(&wdbc_mu);
}

struct wdbc_job *wdbc_submit(PGconn *pg)
{
    struct wdbc_job *j;

    j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->pc = PQgetCancel(pg);
    if (j->pc == NULL) {
        free(j);
        return NULL;
    }
    j->refs = 2;
    pthread_mutex_lock(&wdbc_mu);
    if (wdbc_stopping || wdbc_threads == 0 || wdbc_queued >= wdbc_max) {
        pthread_mutex_unlock(&wdbc_mu);
        PQfreeCancel(j->pc);
        free(j);
        return NULL;
    }
    if (wdbc_tail != NULL)
        wdbc_tail->next = j;
    else
        wdbc_head = j;
    wdbc_tail = j;
    wdbc_queued++;
    pthread_cond_signal(&wdbc_cv);
    pthread_mutex_unlock(&wdbc_mu);
    return j;
}

int wdbc_done(struct wdbc_job *j)
{
    int done;

    pthread_mutex_lock(&wdbc_mu);
    done = j->state == WDBC_DONE;
    pthread_mutex_unlock(&wdbc_mu);
    return done;
}

void wdbc_drop(struct wdbc_job *j)
{
    struct wdbc_job **pp, *prev = NULL;

    if (j == NULL)
        return;
    pthread_mutex_lock(&wdbc_mu);
    if (j->state == WDBC_QUEUED) {
        /* Not started: nobody needs it any more. */
        for (pp = &wdbc_head; *pp != NULL; prev = *pp, pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        if (wdbc_tail == j)
            wdbc_tail = prev;
        wdbc_queued--;
        j->state = WDBC_DONE;
        j->refs--; /* the thread's share: it never took the job */
    }
    wdbc_unref(j);
    pthread_mutex_unlock(&wdbc_mu);
}
