/* worker.c - blocking work off the event loops, with a bounded queue so an
 * overload becomes a fast 503 instead of unbounded memory. */
#include <pthread.h>
#include <stdlib.h>

#include "worker.h"

struct wjob {
    void (*fn)(void *);
    void *arg;
    struct wjob *next;
};

struct wpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wjob *head, *tail;
    int queued, queue_max, stopping, nthreads;
    pthread_t *thr;
};

static void *wpool_main(void *arg)
{
    struct wpool *p = arg;
    struct wjob *j;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->head == NULL && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        j = p->head;
        if (j == NULL) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
    }
}

struct wpool *wpool_start(int nthreads, int queue_max)
{
    struct wpool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->thr = calloc((size_t)nthreads, sizeof(*p->thr));
    if (p->thr == NULL) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->queue_max = queue_max;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->thr[i], NULL, wpool_main, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        wpool_stop(p);
        return NULL;
    }
    return p;
}

int wpool_submit(struct wpool *p, void (*fn)(void *), void *arg)
{
    struct wjob *j;

    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->queued >= p->queue_max) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    j = malloc(sizeof(*j));
    if (j == NULL) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    if (p->tail != NULL)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void wpool_stop(struct wpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->thr[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->thr);
    free(p);
}
