/* peer.c - per-address counters, shared by the loops.
 *
 * Every accept and close touches one entry, so the table is split into
 * shards with a mutex each: loops seldom meet on one lock, and no lock is
 * held for more than a short chain walk. An entry lives while its address
 * holds a connection or a stream, and afterwards only until its token
 * bucket is full again (it remembers a burst); a sweep of one chain per
 * accept and a cap on such idle entries bound the memory an address
 * scan can take. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "peer.h"

#define WPEER_SHARDS 64
#define WPEER_CHAINS 128
/* Idle entries kept for their token buckets; beyond, an idle entry is
 * dropped at once and its address starts with a full bucket next time. */
#define WPEER_IDLE_MAX 65536
/* At most one refusal line in the log this often. */
#define WPEER_LOG_MS 10000

struct wpeer_ent {
    struct wproxy_addr k;
    int conns, streams;
    double tokens;
    int64_t at_ms; /* tokens as of then */
    struct wpeer_ent *next;
};

struct wpeer_shard {
    pthread_mutex_t mu;
    struct wpeer_ent *chain[WPEER_CHAINS];
};

static struct {
    struct wpeer_conf conf;
    struct wpeer_shard *shards;
    uint32_t seed; /* keyed hash: a client cannot pick colliding addresses */
    atomic_int idle;
    atomic_uint sweep;
    atomic_ullong refused[WPEER_NREASONS];
    atomic_llong log_at;
    atomic_ullong unlogged;
} wpeer;

static const char *const wpeer_reason[WPEER_NREASONS] = {
    "", "max_connections", "reserve", "per_address", "rate", "streams"};

int wpeer_init(const struct wpeer_conf *c)
{
    wpeer.conf = *c;
    if (getrandom(&wpeer.seed, sizeof(wpeer.seed), 0) !=
        (ssize_t)sizeof(wpeer.seed))
        wpeer.seed = (uint32_t)(uintptr_t)&wpeer ^ 0x9e3779b9u;
    wpeer.shards = calloc(WPEER_SHARDS, sizeof(*wpeer.shards));
    if (wpeer.shards == NULL)
        return -1;
    for (int i = 0; i < WPEER_SHARDS; i++)
        pthread_mutex_init(&wpeer.shards[i].mu, NULL);
    atomic_store(&wpeer.log_at, -WPEER_LOG_MS);
    return 0;
}

void wpeer_shutdown(void)
{
    if (wpeer.shards != NULL) {
        for (int i = 0; i < WPEER_SHARDS; i++) {
            for (int j = 0; j < WPEER_CHAINS; j++) {
                struct wpeer_ent *e = wpeer.shards[i].chain[j], *n;
                for (; e != NULL; e = n) {
                    n = e->next;
                    free(e);
                }
            }
            pthread_mutex_destroy(&wpeer.shards[i].mu);
        }
        free(wpeer.shards);
        wpeer.shards = NULL;
    }
    wproxy_list_free(&wpeer.conf.proxies);
}

const struct wpeer_conf *wpeer_conf(void)
{
    return &wpeer.conf;
}

int wpeer_is_proxy(const struct wproxy_addr *a)
{
    return wproxy_trusted(&wpeer.conf.proxies, a);
}

/* The key: IPv6 by its /64. */
static struct wproxy_addr wpeer_key(const struct wproxy_addr *a)
{
    struct wproxy_addr k;

    memset(&k, 0, sizeof(k));
    k.fam = a->fam;
    memcpy(k.b, a->b, a->fam == 4 ? 4 : 8);
    return k;
}

static uint32_t wpeer_hash(const struct wproxy_addr *k)
{
    uint32_t h = 2166136261u ^ wpeer.seed;

    h = (h ^ (uint32_t)k->fam) * 16777619u;
    for (int i = 0; i < 16; i++)
        h = (h ^ k->b[i]) * 16777619u;
    return h ^ (h >> 15);
}

static void wpeer_refill(struct wpeer_ent *e, int64_t now)
{
    if (wpeer.conf.rate <= 0)
        return;
    if (now > e->at_ms) {
        e->tokens += (double)(now - e->at_ms) * wpeer.conf.rate / 1000.0;
        if (e->tokens > wpeer.conf.burst)
            e->tokens = wpeer.conf.burst;
        e->at_ms = now;
    }
}

/* Idle and forgotten by its bucket: nothing worth keeping. */
static int wpeer_spent(struct wpeer_ent *e, int64_t now)
{
    if (e->conns > 0 || e->streams > 0)
        return 0;
    wpeer_refill(e, now);
    return wpeer.conf.rate <= 0 || e->tokens >= wpeer.conf.burst;
}

/* Find (or, with `make`, add) k's entry; the shard is locked. */
static struct wpeer_ent **wpeer_slot(struct wpeer_shard *s, uint32_t h,
                                     const struct wproxy_addr *k)
{
    struct wpeer_ent **pp = &s->chain[(h / WPEER_SHARDS) % WPEER_CHAINS];

    for (; *pp != NULL; pp = &(*pp)->next)
        if (memcmp(&(*pp)->k, k, sizeof(*k)) == 0)
            break;
    return pp;
}

/* Unlink *pp when it holds nothing and its bucket is full again, or when
 * too many idle entries are kept already. */
static void wpeer_settle(struct wpeer_ent **pp, int64_t now, int was_idle)
{
    struct wpeer_ent *e = *pp;
    int idle = e->conns == 0 && e->streams == 0;

    if (idle && (wpeer_spent(e, now) ||
                 (!was_idle && atomic_load(&wpeer.idle) >= WPEER_IDLE_MAX))) {
        *pp = e->next;
        if (was_idle)
            atomic_fetch_sub(&wpeer.idle, 1);
        free(e);
        return;
    }
    if (idle && !was_idle)
        atomic_fetch_add(&wpeer.idle, 1);
    else if (!idle && was_idle)
        atomic_fetch_sub(&wpeer.idle, 1);
}

/* Drop the spent entries of one chain, round robin over the table. */
static void wpeer_sweep(int64_t now)
{
    unsigned n = atomic_fetch_add(&wpeer.sweep, 1);
    struct wpeer_shard *s = &wpeer.shards[n % WPEER_SHARDS];
    struct wpeer_ent **pp;

    pthread_mutex_lock(&s->mu);
    pp = &s->chain[(n / WPEER_SHARDS) % WPEER_CHAINS];
    while (*pp != NULL) {
        struct wpeer_ent *e = *pp;
        if (e->conns == 0 && e->streams == 0 && wpeer_spent(e, now)) {
            *pp = e->next;
            atomic_fetch_sub(&wpeer.idle, 1);
            free(e);
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Lock k's shard and return its slot, making an entry when absent (NULL
 * when out of memory; the shard is then unlocked). */
static struct wpeer_ent **wpeer_get(const struct wproxy_addr *a, int64_t now,
                                    struct wpeer_shard **sp, int *was_idle)
{
    struct wproxy_addr k = wpeer_key(a);
    uint32_t h = wpeer_hash(&k);
    struct wpeer_shard *s = &wpeer.shards[h % WPEER_SHARDS];
    struct wpeer_ent **pp;

    pthread_mutex_lock(&s->mu);
    pp = wpeer_slot(s, h, &k);
    *was_idle = 0;
    if (*pp == NULL) {
        struct wpeer_ent *e = calloc(1, sizeof(*e));
        if (e == NULL) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        e->k = k;
        e->tokens = wpeer.conf.burst;
        e->at_ms = now;
        *pp = e;
    } else if ((*pp)->conns == 0 && (*pp)->streams == 0) {
        *was_idle = 1;
    }
    *sp = s;
    return pp;
}

int wpeer_conn_take(const struct wproxy_addr *a, int in_use, int rate,
                    int64_t now_ms)
{
    const struct wpeer_conf *c = &wpeer.conf;
    struct wpeer_shard *s;
    struct wpeer_ent **pp, *e;
    int was_idle, rc = WPEER_OK;

    pp = wpeer_get(a, now_ms, &s, &was_idle);
    if (pp == NULL)
        return WPEER_GLOBAL; /* out of memory: as if the host were full */
    e = *pp;
    wpeer_refill(e, now_ms);
    if (c->max_conns > 0 && e->conns >= c->max_conns)
        rc = WPEER_CONNS;
    else if (c->reserved > 0 && in_use > c->global_max - c->reserved &&
             e->conns >= WPEER_LIGHT)
        rc = WPEER_RESERVE;
    else if (rate && c->rate > 0 && e->tokens < 1.0)
        rc = WPEER_RATE;
    if (rc == WPEER_OK) {
        e->conns++;
        if (rate && c->rate > 0)
            e->tokens -= 1.0;
    }
    wpeer_settle(pp, now_ms, was_idle);
    pthread_mutex_unlock(&s->mu);
    wpeer_sweep(now_ms);
    return rc;
}

/* Undo one count (`streams`: a stream, else a connection). */
static void wpeer_drop(const struct wproxy_addr *a, int streams, int64_t now)
{
    struct wproxy_addr k = wpeer_key(a);
    uint32_t h = wpeer_hash(&k);
    struct wpeer_shard *s = &wpeer.shards[h % WPEER_SHARDS];
    struct wpeer_ent **pp;

    pthread_mutex_lock(&s->mu);
    pp = wpeer_slot(s, h, &k);
    if (*pp != NULL) {
        int *n = streams ? &(*pp)->streams : &(*pp)->conns;
        int was_idle = (*pp)->conns == 0 && (*pp)->streams == 0;
        if (*n > 0)
            (*n)--;
        wpeer_settle(pp, now, was_idle);
    }
    pthread_mutex_unlock(&s->mu);
}

void wpeer_conn_drop(const struct wproxy_addr *a, int64_t now_ms)
{
    wpeer_drop(a, 0, now_ms);
}

int wpeer_stream_take(const struct wproxy_addr *a, int64_t now_ms)
{
    struct wpeer_shard *s;
    struct wpeer_ent **pp;
    int was_idle, rc = WPEER_OK;

    if (wpeer.conf.max_streams <= 0)
        return WPEER_OK;
    pp = wpeer_get(a, now_ms, &s, &was_idle);
    if (pp == NULL)
        return WPEER_STREAMS;
    if ((*pp)->streams >= wpeer.conf.max_streams)
        rc = WPEER_STREAMS;
    else
        (*pp)->streams++;
    wpeer_settle(pp, now_ms, was_idle);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void wpeer_stream_drop(const struct wproxy_addr *a, int64_t now_ms)
{
    if (wpeer.conf.max_streams > 0)
        wpeer_drop(a, 1, now_ms);
}

void wpeer_refused(int reason, const struct wproxy_addr *a, int64_t now_ms)
{
    long long last;
    char ip[64];

    if (reason <= WPEER_OK || reason >= WPEER_NREASONS)
        return;
    atomic_fetch_add_explicit(&wpeer.refused[reason], 1, memory_order_relaxed);
    last = atomic_load(&wpeer.log_at);
    /* One line per period, by whichever loop wins the exchange; the others
     * only count, so a flood costs no more than its counters. */
    if (now_ms - last < WPEER_LOG_MS ||
        !atomic_compare_exchange_strong(&wpeer.log_at, &last, now_ms)) {
        atomic_fetch_add_explicit(&wpeer.unlogged, 1, memory_order_relaxed);
        return;
    }
    wproxy_format(a, ip, sizeof(ip));
    wlog(WLOG_WARN, "limits",
         "refused %s from %s (%s); %llu other refusals since the last report",
         reason == WPEER_STREAMS ? "a stream" : "a connection", ip,
         wpeer_reason[reason],
         (unsigned long long)atomic_exchange(&wpeer.unlogged, 0));
}

void wpeer_render(struct evbuffer *out)
{
    evbuffer_add_printf(out, "# HELP weft_http_refused_total Connections and "
                             "realtime streams refused by a limit.\n# TYPE "
                             "weft_http_refused_total counter\n");
    for (int i = 1; i < WPEER_NREASONS; i++)
        evbuffer_add_printf(out, "weft_http_refused_total{reason=\"%s\"} %llu\n",
                            wpeer_reason[i],
                            (unsigned long long)atomic_load(&wpeer.refused[i]));
}
