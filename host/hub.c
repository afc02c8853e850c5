/* hub.c - sequence, history and fan-out of bus messages.
 *
 * One mutex orders publishes: it assigns the offset, appends to the
 * topic's history and queues the message to every interested loop, so each
 * loop receives messages in offset order. That order is what makes SSE's
 * single Last-Event-ID enough for a connection with many topics. Delivery
 * to clients then runs on each loop with no shared lock at all. */
#include "hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>
#include <sodium.h>

#include "host.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "rt.h"
#include "topic.h"

struct whist {
    char *topic;
    struct wmsg **ring; /* cap slots; the oldest at `head` */
    int head, n;
    uint64_t evicted; /* highest offset dropped from this topic */
    struct whist *next; /* hash chain */
};

struct wpost {
    struct wloop *loop;
    struct wmsg *m;
};

static struct {
    pthread_mutex_t mu;
    struct whub_cfg cfg;
    char epoch[17];
    uint64_t seq;
    struct whist **tab;
    size_t nbuckets, ntopics, retained;
    uint64_t dropped; /* highest offset of a topic with no history left */
    uint64_t published;
    int on;
    int (*forward)(const char *topic, const char *data, size_t len);
} whub = {.mu = PTHREAD_MUTEX_INITIALIZER};

int whub_init(const struct whub_cfg *cfg)
{
    unsigned char rnd[8];

    whub.cfg = *cfg;
    whub.nbuckets = 4096;
    whub.tab = calloc(whub.nbuckets, sizeof(*whub.tab));
    if (whub.tab == NULL)
        return -1;
    randombytes_buf(rnd, sizeof(rnd));
    for (int i = 0; i < 8; i++)
        snprintf(whub.epoch + 2 * i, 3, "%02x", rnd[i]);
    whub.on = 1;
    return 0;
}

static void whist_free(struct whist *h)
{
    for (int i = 0; i < h->n; i++)
        wmsg_unref(h->ring[(h->head + i) % whub.cfg.history_size]);
    free(h->ring);
    free(h->topic);
    free(h);
}

void whub_fini(void)
{
    pthread_mutex_lock(&whub.mu);
    for (size_t b = 0; whub.tab != NULL && b < whub.nbuckets; b++)
        while (whub.tab[b] != NULL) {
            struct whist *h = whub.tab[b];
            whub.tab[b] = h->next;
            whist_free(h);
        }
    free(whub.tab);
    whub.tab = NULL;
    whub.ntopics = whub.retained = 0;
    whub.on = 0;
    pthread_mutex_unlock(&whub.mu);
}

void wmsg_ref(struct wmsg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void wmsg_unref(struct wmsg *m)
{
    if (m == NULL ||
        atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(m->topic);
    free(m->data);
    free(m->json);
    free(m->sse);
    free(m->ws);
    free(m);
}

/* Build every wire form once. The topic is valid (no characters to
 * escape) and the data is compact JSON (no newline, so one SSE data line). */
static struct wmsg *wmsg_new(const char *topic, const char *data, size_t len,
                             uint64_t seq)
{
    struct wmsg *m = calloc(1, sizeof(*m));
    char head[64];
    size_t hl, jl;
    int n;

    if (m == NULL)
        return NULL;
    atomic_init(&m->refs, 1);
    m->seq = seq;
    m->at_ms = wloop_now_ms();
    m->topic = strdup(topic);
    m->data = malloc(len + 1);
    jl = len + strlen(topic) + 128;
    m->json = malloc(jl);
    if (m->topic == NULL || m->data == NULL || m->json == NULL)
        goto fail;
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    m->data_len = len;
    n = snprintf(m->json, jl,
                 "{\"type\":\"message\",\"topic\":\"%s\",\"epoch\":\"%s\","
                 "\"offset\":%llu,\"data\":",
                 topic, whub.epoch, (unsigned long long)seq);
    memcpy(m->json + n, data, len);
    m->json[n + len] = '}';
    m->json_len = (size_t)n + len + 1;
    m->json[m->json_len] = '\0';

    hl = (size_t)snprintf(head, sizeof(head), "id: %s-%llu\nevent: message\ndata: ",
                          whub.epoch, (unsigned long long)seq);
    m->sse = malloc(hl + m->json_len + 2);
    if (m->sse == NULL)
        goto fail;
    memcpy(m->sse, head, hl);
    memcpy(m->sse + hl, m->json, m->json_len);
    memcpy(m->sse + hl + m->json_len, "\n\n", 2);
    m->sse_len = hl + m->json_len + 2;

    m->ws = malloc(m->json_len + 10);
    if (m->ws == NULL)
        goto fail;
    m->ws[0] = 0x81; /* FIN, text */
    if (m->json_len < 126) {
        m->ws[1] = (unsigned char)m->json_len;
        hl = 2;
    } else if (m->json_len <= 0xffff) {
        m->ws[1] = 126;
        m->ws[2] = (unsigned char)(m->json_len >> 8);
        m->ws[3] = (unsigned char)m->json_len;
        hl = 4;
    } else {
        m->ws[1] = 127;
        for (int i = 0; i < 8; i++)
            m->ws[2 + i] = (unsigned char)((uint64_t)m->json_len >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(m->ws + hl, m->json, m->json_len);
    m->ws_len = hl + m->json_len;
    return m;
fail:
    wmsg_unref(m);
    return NULL;
}

static struct whist *whub_find(const char *topic, int create)
{
    size_t b = wtopic_hash(topic) & (whub.nbuckets - 1);
    struct whist *h;

    for (h = whub.tab[b]; h != NULL; h = h->next)
        if (strcmp(h->topic, topic) == 0)
            return h;
    if (!create || whub.cfg.history_size == 0 ||
        whub.ntopics >= (size_t)whub.cfg.max_topics)
        return NULL;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->topic = strdup(topic);
    h->ring = calloc((size_t)whub.cfg.history_size, sizeof(*h->ring));
    if (h->topic == NULL || h->ring == NULL) {
        free(h->topic);
        free(h->ring);
        free(h);
        return NULL;
    }
    /* It may have existed before, been swept and forgotten: what it
     * dropped then is unknown, so assume the worst. */
    h->evicted = whub.dropped;
    h->next = whub.tab[b];
    whub.tab[b] = h;
    whub.ntopics++;
    return h;
}

static void whist_drop_oldest(struct whist *h)
{
    struct wmsg *m = h->ring[h->head];

    h->ring[h->head] = NULL;
    h->head = (h->head + 1) % whub.cfg.history_size;
    h->n--;
    whub.retained--;
    if (m->seq > h->evicted)
        h->evicted = m->seq;
    wmsg_unref(m);
}

/* Age limit, applied lazily (on append and read) and by the sweep. */
static void whist_expire(struct whist *h, int64_t now)
{
    while (h->n > 0 &&
           h->ring[h->head]->at_ms < now - whub.cfg.history_ttl_ms)
        whist_drop_oldest(h);
}

static void whub_deliver(void *arg)
{
    struct wpost *p = arg;

    if (p->loop->id < 0)
        wreg_deliver(p->m);
    else
        wrt_deliver(p->loop, p->m);
    wmsg_unref(p->m);
    free(p);
}

static void whub_post(struct wloop *l, struct wmsg *m)
{
    struct wpost *p;

    if (atomic_load_explicit(&l->rt_interest, memory_order_acquire) <= 0)
        return;
    p = malloc(sizeof(*p));
    if (p == NULL)
        return;
    p->loop = l;
    p->m = m;
    wmsg_ref(m);
    if (wloop_post(l, whub_deliver, p) != 0) {
        wmsg_unref(m);
        free(p);
    }
}

uint64_t whub_publish(const char *topic, const char *data, size_t len,
                      int remote)
{
    struct wmsg *m;
    struct whist *h;
    uint64_t seq;

    pthread_mutex_lock(&whub.mu);
    if (!whub.on) {
        pthread_mutex_unlock(&whub.mu);
        return 0;
    }
    m = wmsg_new(topic, data, len, whub.seq + 1);
    if (m == NULL) {
        pthread_mutex_unlock(&whub.mu);
        return 0;
    }
    seq = ++whub.seq;
    whub.published++;
    h = whub_find(topic, 1);
    if (h != NULL) {
        whist_expire(h, m->at_ms);
        if (h->n == whub.cfg.history_size)
            whist_drop_oldest(h);
        h->ring[(h->head + h->n) % whub.cfg.history_size] = m;
        h->n++;
        whub.retained++;
        wmsg_ref(m);
    } else {
        /* No history for it: a reconnecting subscriber must reload. */
        whub.dropped = seq;
    }
    for (int i = 0; i < whost_g->nloops; i++)
        whub_post(&whost_g->loops[i], m);
    whub_post(&whost_g->ctl, m);
    pthread_mutex_unlock(&whub.mu);
    if (!remote && whub.forward != NULL)
        whub.forward(topic, m->data, m->data_len);
    wmsg_unref(m);
    return seq;
}

void whub_set_forward(int (*fn)(const char *topic, const char *data,
                                size_t len))
{
    whub.forward = fn;
}

const char *whub_epoch(void)
{
    return whub.epoch;
}

uint64_t whub_offset(void)
{
    uint64_t s;

    pthread_mutex_lock(&whub.mu);
    s = whub.seq;
    pthread_mutex_unlock(&whub.mu);
    return s;
}

void whub_interest(struct wloop *l, int delta)
{
    atomic_fetch_add_explicit(&l->rt_interest, delta, memory_order_acq_rel);
}

/* Collect h's messages above `since` into the growing array. */
static int whub_collect(struct whist *h, uint64_t since, size_t max,
                        struct wmsg ***out, size_t *n, size_t *cap)
{
    for (int i = 0; i < h->n; i++) {
        struct wmsg *m = h->ring[(h->head + i) % whub.cfg.history_size];
        if (m->seq <= since)
            continue;
        if (*n == max)
            return 1; /* too many */
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct wmsg **a = realloc(*out, nc * sizeof(*a));
            if (a == NULL)
                return -1;
            *out = a;
            *cap = nc;
        }
        wmsg_ref(m);
        (*out)[(*n)++] = m;
    }
    return 0;
}

static int whub_cmp(const void *a, const void *b)
{
    uint64_t x = (*(struct wmsg *const *)a)->seq;
    uint64_t y = (*(struct wmsg *const *)b)->seq;

    return x < y ? -1 : x > y;
}

int whub_start(const char *pattern, const char *epoch, uint64_t since,
               size_t max, struct wmsg ***out, size_t *n, int *recovered,
               uint64_t *floor)
{
    size_t cap = 0;
    int64_t now = wloop_now_ms();
    int rc = 0, ok;

    *out = NULL;
    *n = 0;
    *recovered = 0;
    pthread_mutex_lock(&whub.mu);
    *floor = whub.seq;
    if (since == 0 || epoch == NULL || strcmp(epoch, whub.epoch) != 0 ||
        since > whub.seq || whub.tab == NULL) {
        pthread_mutex_unlock(&whub.mu);
        return 0;
    }
    /* Recovered unless something above `since` is gone: evicted from a
     * matching topic, or published on a topic without history. */
    ok = whub.dropped <= since;
    if (strpbrk(pattern, "*>") == NULL) {
        struct whist *h = whub_find(pattern, 0);
        if (h != NULL) {
            whist_expire(h, now);
            ok = h->evicted <= since;
            if (ok)
                rc = whub_collect(h, since, max, out, n, &cap);
        }
    } else {
        for (size_t b = 0; b < whub.nbuckets && rc == 0; b++)
            for (struct whist *h = whub.tab[b]; h != NULL && rc == 0;
                 h = h->next) {
                if (!wtopic_match(pattern, h->topic))
                    continue;
                whist_expire(h, now);
                if (h->evicted > since)
                    ok = 0;
                if (ok)
                    rc = whub_collect(h, since, max, out, n, &cap);
            }
    }
    pthread_mutex_unlock(&whub.mu);
    if (rc != 0 || !ok) {
        for (size_t i = 0; i < *n; i++)
            wmsg_unref((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
        return rc < 0 ? -1 : 0;
    }
    if (*n > 1)
        qsort(*out, *n, sizeof(**out), whub_cmp);
    *recovered = 1;
    return 0;
}

void whub_sweep(void)
{
    int64_t now = wloop_now_ms();

    pthread_mutex_lock(&whub.mu);
    for (size_t b = 0; whub.tab != NULL && b < whub.nbuckets; b++) {
        struct whist **pp = &whub.tab[b];
        while (*pp != NULL) {
            struct whist *h = *pp;
            whist_expire(h, now);
            if (h->n > 0) {
                pp = &h->next;
                continue;
            }
            /* Empty: forget the topic, remembering what it dropped. */
            if (h->evicted > whub.dropped)
                whub.dropped = h->evicted;
            *pp = h->next;
            whist_free(h);
            whub.ntopics--;
        }
    }
    pthread_mutex_unlock(&whub.mu);
}

void whub_stats(uint64_t *published, uint64_t *topics, uint64_t *retained)
{
    pthread_mutex_lock(&whub.mu);
    *published = whub.published;
    *topics = whub.ntopics;
    *retained = whub.retained;
    pthread_mutex_unlock(&whub.mu);
}
