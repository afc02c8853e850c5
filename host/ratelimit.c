/* ratelimit.c - token buckets in a hash table with an LRU list, one mutex.
 *
 * One mutex is enough: a take is a hash, a short chain walk and a few
 * float operations, far below the cost of the request it guards. */
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratelimit.h"

struct wrl_entry {
    struct wrl_entry *next;          /* hash chain */
    struct wrl_entry *newer, *older; /* LRU list */
    double tokens, last;
    uint64_t hash;
    size_t keylen;
    char key[];
};

struct wrl {
    pthread_mutex_t mu;
    struct wrl_entry **slots;
    size_t nslots; /* a power of two >= max */
    size_t count, max;
    struct wrl_entry *newest, *oldest;
    unsigned char seed[crypto_shorthash_KEYBYTES];
};

struct wrl *wrl_new(size_t max_entries)
{
    struct wrl *rl;
    size_t n = 16;

    if (max_entries == 0 || max_entries > SIZE_MAX / 4 || sodium_init() < 0)
        return NULL;
    while (n < max_entries)
        n <<= 1;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->slots = calloc(n, sizeof(*rl->slots));
    if (rl->slots == NULL) {
        free(rl);
        return NULL;
    }
    rl->nslots = n;
    rl->max = max_entries;
    randombytes_buf(rl->seed, sizeof(rl->seed));
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

void wrl_free(struct wrl *rl)
{
    struct wrl_entry *e, *next;

    if (rl == NULL)
        return;
    for (e = rl->newest; e != NULL; e = next) {
        next = e->older;
        free(e);
    }
    pthread_mutex_destroy(&rl->mu);
    free(rl->slots);
    free(rl);
}

static void wrl_unlink_lru(struct wrl *rl, struct wrl_entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        rl->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        rl->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void wrl_push_newest(struct wrl *rl, struct wrl_entry *e)
{
    e->older = rl->newest;
    e->newer = NULL;
    if (rl->newest != NULL)
        rl->newest->newer = e;
    rl->newest = e;
    if (rl->oldest == NULL)
        rl->oldest = e;
}

static void wrl_evict_oldest(struct wrl *rl)
{
    struct wrl_entry *e = rl->oldest, **pp;

    wrl_unlink_lru(rl, e);
    for (pp = &rl->slots[e->hash & (rl->nslots - 1)]; *pp != e;
         pp = &(*pp)->next)
        ;
    *pp = e->next;
    rl->count--;
    free(e);
}

int wrl_take(struct wrl *rl, const char *key, double rate_per_s, double burst,
             double now, double *retry_after_s)
{
    struct wrl_entry *e;
    uint64_t h;
    size_t kl = strnlen(key, WRL_KEY_MAX + 1), slot;
    double wait = 0;
    int rc;

    if (retry_after_s != NULL)
        *retry_after_s = 0;
    /* Written so that NaN fails every test. */
    if (!(rate_per_s > 0) || !(burst >= 1) || !isfinite(now) || kl == 0 ||
        kl > WRL_KEY_MAX)
        return -1;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, kl,
                     rl->seed);
    slot = h & (rl->nslots - 1);

    pthread_mutex_lock(&rl->mu);
    for (e = rl->slots[slot]; e != NULL; e = e->next)
        if (e->hash == h && e->keylen == kl && memcmp(e->key, key, kl) == 0)
            break;
    if (e != NULL) {
        wrl_unlink_lru(rl, e);
        if (now > e->last) {
            e->tokens += (now - e->last) * rate_per_s;
            e->last = now;
        }
        if (e->tokens > burst)
            e->tokens = burst;
    } else {
        if (rl->count >= rl->max)
            wrl_evict_oldest(rl);
        e = malloc(sizeof(*e) + kl);
        if (e == NULL) {
            pthread_mutex_unlock(&rl->mu);
            return -1;
        }
        memcpy(e->key, key, kl);
        e->keylen = kl;
        e->hash = h;
        e->tokens = burst;
        e->last = now;
        e->next = rl->slots[slot];
        rl->slots[slot] = e;
        rl->count++;
    }
    wrl_push_newest(rl, e);
    if (e->tokens >= 1) {
        e->tokens -= 1;
        rc = 1;
    } else {
        wait = (1 - e->tokens) / rate_per_s;
        rc = 0;
    }
    pthread_mutex_unlock(&rl->mu);
    if (retry_after_s != NULL)
        *retry_after_s = wait;
    return rc;
}

double wrl_level(struct wrl *rl, const char *key, double rate_per_s,
                 double burst, double now)
{
    struct wrl_entry *e;
    uint64_t h;
    size_t kl = strnlen(key, WRL_KEY_MAX + 1);
    double level = burst;

    if (!(rate_per_s > 0) || !(burst >= 1) || !isfinite(now) || kl == 0 ||
        kl > WRL_KEY_MAX)
        return -1;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, kl,
                     rl->seed);
    pthread_mutex_lock(&rl->mu);
    for (e = rl->slots[h & (rl->nslots - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->keylen == kl && memcmp(e->key, key, kl) == 0)
            break;
    if (e != NULL) {
        level = e->tokens;
        if (now > e->last)
            level += (now - e->last) * rate_per_s;
        if (level > burst)
            level = burst;
    }
    pthread_mutex_unlock(&rl->mu);
    return level;
}

size_t wrl_count(struct wrl *rl)
{
    size_t n;

    pthread_mutex_lock(&rl->mu);
    n = rl->count;
    pthread_mutex_unlock(&rl->mu);
    return n;
}

double wrl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
