/* auth_session.c - the per-account session cache.
 *
 * A direct-mapped table: an account's entry lives in slot id % size, and
 * a collision only costs the other account a lookup. Bounded by
 * construction, one mutex (the critical sections are a few copies). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth_session.h"
#include "log.h"
#include "loop.h"

#define WSESS_SLOTS 16384

struct wsess_slot {
    int64_t id; /* 0: empty */
    int64_t born_ms;
    struct wsess_state st;
};

static struct {
    pthread_mutex_t mu;
    struct wsess_slot *slots;
    long long ttl_ms;
    uint64_t gen;
    void (*on_change)(int64_t id);
} wsess = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL};

void wsess_on_change(void (*fn)(int64_t id))
{
    wsess.on_change = fn;
}

int wsess_init(long long ttl_ms)
{
    wsess.slots = calloc(WSESS_SLOTS, sizeof(*wsess.slots));
    wsess.ttl_ms = ttl_ms;
    return wsess.slots != NULL ? 0 : -1;
}

void wsess_fini(void)
{
    pthread_mutex_lock(&wsess.mu);
    free(wsess.slots);
    wsess.slots = NULL;
    pthread_mutex_unlock(&wsess.mu);
}

int wsess_get(int64_t id, struct wsess_state *out)
{
    int hit = 0;
    int64_t now = wloop_now_ms();

    pthread_mutex_lock(&wsess.mu);
    if (wsess.slots != NULL && id > 0) {
        struct wsess_slot *s = &wsess.slots[(uint64_t)id % WSESS_SLOTS];
        if (s->id == id && now - s->born_ms < wsess.ttl_ms) {
            *out = s->st;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&wsess.mu);
    return hit;
}

uint64_t wsess_gen(void)
{
    uint64_t g;

    pthread_mutex_lock(&wsess.mu);
    g = wsess.gen;
    pthread_mutex_unlock(&wsess.mu);
    return g;
}

void wsess_put(int64_t id, const struct wsess_state *st, uint64_t gen)
{
    pthread_mutex_lock(&wsess.mu);
    if (wsess.slots != NULL && id > 0 && gen == wsess.gen) {
        struct wsess_slot *s = &wsess.slots[(uint64_t)id % WSESS_SLOTS];
        s->id = id;
        s->born_ms = wloop_now_ms();
        s->st = *st;
    }
    pthread_mutex_unlock(&wsess.mu);
}

void wsess_forget(int64_t id)
{
    pthread_mutex_lock(&wsess.mu);
    wsess.gen++;
    if (wsess.slots != NULL && id > 0) {
        struct wsess_slot *s = &wsess.slots[(uint64_t)id % WSESS_SLOTS];
        if (s->id == id)
            s->id = 0;
    }
    pthread_mutex_unlock(&wsess.mu);
    if (wsess.on_change != NULL)
        wsess.on_change(id);
}

void wsess_on_notify(const char *channel, const char *payload, void *arg)
{
    char *end = NULL;
    long long id;

    (void)channel;
    (void)arg;
    errno = 0;
    id = strtoll(payload != NULL ? payload : "", &end, 10);
    if (errno != 0 || end == payload || *end != '\0' || id <= 0) {
        wlog(WLOG_WARN, "auth", "weft_account: a payload that is no id");
        return;
    }
    wsess_forget((int64_t)id);
}
