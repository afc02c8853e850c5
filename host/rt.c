/* rt.c - realtime sessions and per-loop subscription indexes.
 *
 * Each loop indexes the subscriptions of its own sessions: exact topics in
 * a hash table, patterns with wildcards in a list. The hub posts every
 * message once per interested loop; the loop walks its index and queues
 * the message's shared bytes on each connection. Nothing here is touched
 * by another thread. */
#include "rt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#include "host.h"
#include "http_conn.h"
#include "hub.h"
#include "log.h"
#include "loop.h"
#include "topic.h"

#define WRT_BUCKETS 4096u  /* exact-topic index, per loop */
#define WRT_IDS 1024u      /* session id table, per loop  */
#define WRT_REPLAY_MAX 10000

struct wrt_cfg wrt_cfg;

struct wrt_loop {
    struct wloop *loop;
    struct wrt_sub *tab[WRT_BUCKETS];
    struct wrt_sub *wild;
    struct wrt_sess *sessions;
    struct wrt_sess *ids[WRT_IDS];
    struct event *hb;
    struct event *cred; /* ends sessions whose credentials expired */
    /* Broadcast messages are queued on each connection and written once
     * per loop turn: under load several messages go out in one write. */
    struct wrt_sess *dirty, *dirty_tail; /* in the order they got output */
    struct event *flush;
};

static struct wrt_loop *wrt_loops;
static int wrt_nloops;
static atomic_ullong wrt_nsess, wrt_nslow, wrt_ndelivered;

static struct wrt_loop *wrt_of(struct wloop *l)
{
    return l->id >= 0 && l->id < wrt_nloops ? &wrt_loops[l->id] : NULL;
}

int wrt_init(const struct wrt_cfg *cfg, int nloops)
{
    wrt_cfg = *cfg;
    wrt_cfg.allowed_origins = strdup(cfg->allowed_origins != NULL
                                         ? cfg->allowed_origins : "");
    wrt_loops = calloc((size_t)nloops, sizeof(*wrt_loops));
    if (wrt_loops == NULL || wrt_cfg.allowed_origins == NULL)
        return -1;
    wrt_nloops = nloops;
    return 0;
}

static void wrt_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    struct wrt_loop *rl = arg;
    struct wrt_sess *s, *next;

    (void)fd;
    (void)what;
    /* ops->heartbeat may end a session, which only schedules its close:
     * the list stays intact while we walk it. */
    for (s = rl->sessions; s != NULL; s = next) {
        next = s->next;
        if (!s->ending)
            s->ops->heartbeat(s);
    }
}

/* A session authorised by an access token lives no longer than it: the
 * client reconnects with a fresh one, which is authorised anew. */
static void wrt_end_signed_out(struct wrt_sess *s, const char *why)
{
    json_t *j = json_pack("{s:s}", "reason", why);

    if (j != NULL)
        s->ops->event(s, "session_ended", j);
    json_decref(j);
    s->ops->end(s, 1008, why);
}

static void wrt_cred_check(evutil_socket_t fd, short what, void *arg)
{
    struct wrt_loop *rl = arg;
    struct wrt_sess *s, *next;
    int64_t now = (int64_t)time(NULL);

    (void)fd;
    (void)what;
    for (s = rl->sessions; s != NULL; s = next) {
        next = s->next;
        if (!s->ending && s->exp != 0 && now >= s->exp)
            wrt_end_signed_out(s, "expired");
    }
}

struct wrt_revoke {
    struct wrt_loop *rl;
    int64_t user;
};

static void wrt_revoke_task(void *arg)
{
    struct wrt_revoke *v = arg;
    struct wrt_sess *s, *next;

    for (s = v->rl->sessions; s != NULL; s = next) {
        next = s->next;
        if (!s->ending && s->user == v->user)
            wrt_end_signed_out(s, "revoked");
    }
    free(v);
}

void wrt_revoke_user(int64_t user)
{
    for (int i = 0; i < wrt_nloops && user > 0; i++) {
        struct wrt_revoke *v = malloc(sizeof(*v));
        if (v == NULL || wrt_loops[i].loop == NULL) {
            free(v);
            continue;
        }
        v->rl = &wrt_loops[i];
        v->user = user;
        if (wloop_post(wrt_loops[i].loop, wrt_revoke_task, v) != 0) {
            wlog(WLOG_ERROR, "rt", "cannot end the sessions of an account "
                                   "whose credentials changed");
            free(v);
        }
    }
}

static void wrt_flush(evutil_socket_t fd, short what, void *arg)
{
    struct wrt_loop *rl = arg;
    struct wrt_sess *s;

    (void)fd;
    (void)what;
    /* First dirtied, first written: the earliest message of the turn
     * (say a user's own event before a big topic's) goes out first. */
    while ((s = rl->dirty) != NULL) {
        rl->dirty = s->dnext;
        if (rl->dirty == NULL)
            rl->dirty_tail = NULL;
        s->dnext = NULL;
        s->dirty = 0;
        if (!s->ending && s->conn != NULL)
            wconn_flush(s->conn);
    }
}

void wrt_loop_start(struct wloop *l)
{
    struct wrt_loop *rl = wrt_of(l);
    struct timeval tv = {wrt_cfg.heartbeat_ms / 1000,
                         (wrt_cfg.heartbeat_ms % 1000) * 1000};

    if (rl == NULL)
        return;
    rl->loop = l;
    rl->hb = event_new(l->base, -1, EV_PERSIST, wrt_heartbeat, rl);
    if (rl->hb != NULL)
        event_add(rl->hb, &tv);
    rl->cred = event_new(l->base, -1, EV_PERSIST, wrt_cred_check, rl);
    if (rl->cred != NULL) {
        struct timeval sec = {1, 0};
        event_add(rl->cred, &sec);
    }
    rl->flush = event_new(l->base, -1, 0, wrt_flush, rl);
}

void wrt_fini(void)
{
    for (int i = 0; i < wrt_nloops; i++) {
        if (wrt_loops[i].hb != NULL)
            event_free(wrt_loops[i].hb);
        if (wrt_loops[i].cred != NULL)
            event_free(wrt_loops[i].cred);
        if (wrt_loops[i].flush != NULL)
            event_free(wrt_loops[i].flush);
    }
    free(wrt_loops);
    wrt_loops = NULL;
    wrt_nloops = 0;
    free(wrt_cfg.allowed_origins);
    wrt_cfg.allowed_origins = NULL;
}

/* ---- sessions ---------------------------------------------------------- */

void wrt_sess_add(struct wrt_sess *s, struct wloop *l, struct wconn *c)
{
    struct wrt_loop *rl = wrt_of(l);
    unsigned char rnd[10];
    size_t b;

    s->loop = l;
    s->conn = c;
    s->seen_ms = wloop_now_ms();
    randombytes_buf(rnd, sizeof(rnd));
    snprintf(s->id, sizeof(s->id), "%d-", l->id);
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s->id + strlen(s->id), 3, "%02x", rnd[i]);
    s->next = rl->sessions;
    if (rl->sessions != NULL)
        rl->sessions->prev = s;
    rl->sessions = s;
    b = wtopic_hash(s->id) & (WRT_IDS - 1);
    s->hnext = rl->ids[b];
    rl->ids[b] = s;
    atomic_fetch_add(&wrt_nsess, 1);
}

static void wrt_sub_unindex(struct wrt_sub *u)
{
    if (u->iprev == NULL)
        return;
    *u->iprev = u->inext;
    if (u->inext != NULL)
        u->inext->iprev = u->iprev;
    u->iprev = NULL;
    u->inext = NULL;
}

static void wrt_sub_free(struct wrt_sub *u)
{
    wrt_sub_unindex(u);
    whub_interest(u->s->loop, -1);
    free(u->pattern);
    free(u);
}

void wrt_sess_remove(struct wrt_sess *s)
{
    struct wrt_loop *rl = wrt_of(s->loop);
    struct wrt_sess **pp;

    while (s->subs != NULL) {
        struct wrt_sub *u = s->subs;
        s->subs = u->snext;
        wrt_sub_free(u);
    }
    s->nsubs = 0;
    if (s->dirty) {
        struct wrt_sess *prev = NULL;
        for (pp = &rl->dirty; *pp != NULL; prev = *pp, pp = &(*pp)->dnext)
            if (*pp == s) {
                *pp = s->dnext;
                if (rl->dirty_tail == s)
                    rl->dirty_tail = prev;
                s->dirty = 0;
                break;
            }
    }
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        rl->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    for (pp = &rl->ids[wtopic_hash(s->id) & (WRT_IDS - 1)]; *pp != NULL;
         pp = &(*pp)->hnext)
        if (*pp == s) {
            *pp = s->hnext;
            break;
        }
    s->conn = NULL;
    atomic_fetch_sub(&wrt_nsess, 1);
}

struct wrt_sess *wrt_sess_find(struct wloop *l, const char *id)
{
    struct wrt_loop *rl = wrt_of(l);

    if (rl == NULL)
        return NULL;
    for (struct wrt_sess *s = rl->ids[wtopic_hash(id) & (WRT_IDS - 1)];
         s != NULL; s = s->hnext)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

struct wloop *wrt_id_loop(const char *id)
{
    char *end;
    long n = strtol(id, &end, 10);

    if (end == id || *end != '-' || n < 0 || n >= wrt_nloops)
        return NULL;
    return &whost_g->loops[n];
}

/* ---- writing ------------------------------------------------------------ */

static void wrt_slow(struct wrt_sess *s)
{
    atomic_fetch_add(&wrt_nslow, 1);
    wlog(WLOG_INFO, "realtime", "session %s is a slow consumer "
                                "(more than %zu bytes unsent): closing it",
         s->id, wrt_cfg.send_buffer);
    s->ops->end(s, 1008, "slow consumer");
}

int wrt_write(struct wrt_sess *s, const void *data, size_t len)
{
    struct evbuffer *out;

    if (s->ending || s->conn == NULL || (out = wconn_output(s->conn)) == NULL)
        return -1;
    evbuffer_add(out, data, len);
    wconn_flush(s->conn);
    if (evbuffer_get_length(out) > wrt_cfg.send_buffer) {
        wrt_slow(s);
        return -1;
    }
    return 0;
}

static void wrt_msg_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    wmsg_unref(arg);
}

int wrt_write_msg(struct wrt_sess *s, struct wmsg *m, int ws)
{
    struct evbuffer *out;

    if (s->ending || s->conn == NULL || (out = wconn_output(s->conn)) == NULL)
        return -1;
    /* The message's bytes are shared by every connection: referenced, not
     * copied. */
    wmsg_ref(m);
    if (evbuffer_add_reference(out, ws ? (const void *)m->ws : m->sse,
                               ws ? m->ws_len : m->sse_len, wrt_msg_cleanup,
                               m) != 0) {
        wmsg_unref(m);
        return -1;
    }
    atomic_fetch_add_explicit(&wrt_ndelivered, 1, memory_order_relaxed);
    if (!s->dirty) {
        struct wrt_loop *rl = wrt_of(s->loop);
        if (rl->flush == NULL) {
            wconn_flush(s->conn);
        } else {
            s->dirty = 1;
            s->dnext = NULL;
            if (rl->dirty == NULL) {
                rl->dirty = s;
                event_active(rl->flush, EV_TIMEOUT, 0);
            } else {
                rl->dirty_tail->dnext = s;
            }
            rl->dirty_tail = s;
        }
    }
    if (evbuffer_get_length(out) > wrt_cfg.send_buffer) {
        /* Maybe only this turn's batch: send first, then judge. */
        wconn_flush(s->conn);
        if (evbuffer_get_length(out) > wrt_cfg.send_buffer) {
            wrt_slow(s);
            return -1;
        }
    }
    return 0;
}

/* ---- subscriptions ------------------------------------------------------ */

static void wrt_index(struct wrt_sub *u)
{
    struct wrt_loop *rl = wrt_of(u->s->loop);
    struct wrt_sub **head =
        u->wild ? &rl->wild : &rl->tab[wtopic_hash(u->pattern) & (WRT_BUCKETS - 1)];

    u->inext = *head;
    if (*head != NULL)
        (*head)->iprev = &u->inext;
    *head = u;
    u->iprev = head;
}

int wrt_subscribe(struct wrt_sess *s, const char *pattern, const char *epoch,
                  uint64_t since)
{
    struct wrt_sub *u;
    struct wmsg **replay = NULL;
    size_t n = 0;
    int recovered = 0;
    uint64_t floor = 0;
    json_t *ev;

    for (u = s->subs; u != NULL; u = u->snext)
        if (strcmp(u->pattern, pattern) == 0)
            return 0;
    if (s->nsubs >= wrt_cfg.max_subs)
        return -2;
    u = calloc(1, sizeof(*u));
    if (u == NULL || (u->pattern = strdup(pattern)) == NULL) {
        free(u);
        return -1;
    }
    u->s = s;
    u->wild = strpbrk(pattern, "*>") != NULL;
    /* Interest first, then the starting point: a message published in
     * between is either at or below the floor or posted to this loop. */
    whub_interest(s->loop, 1);
    if (whub_start(pattern, epoch, since, WRT_REPLAY_MAX, &replay, &n,
                   &recovered, &floor) != 0) {
        whub_interest(s->loop, -1);
        free(u->pattern);
        free(u);
        return -1;
    }
    u->floor = floor;
    u->snext = s->subs;
    s->subs = u;
    s->nsubs++;
    wrt_index(u);
    ev = json_pack("{s:s, s:b, s:s, s:I}", "topic", pattern, "recovered",
                   recovered, "epoch", whub_epoch(), "offset",
                   (json_int_t)floor);
    if (ev != NULL) {
        s->ops->event(s, "subscribed", ev);
        json_decref(ev);
    }
    for (size_t i = 0; i < n; i++) {
        s->ops->send(s, replay[i]);
        wmsg_unref(replay[i]);
    }
    free(replay);
    return 0;
}

int wrt_unsubscribe(struct wrt_sess *s, const char *pattern)
{
    struct wrt_sub **pp, *u;
    json_t *ev;

    for (pp = &s->subs; (u = *pp) != NULL; pp = &u->snext)
        if (strcmp(u->pattern, pattern) == 0)
            break;
    if (u == NULL)
        return -1;
    *pp = u->snext;
    s->nsubs--;
    wrt_sub_free(u);
    ev = json_pack("{s:s}", "topic", pattern);
    if (ev != NULL) {
        s->ops->event(s, "unsubscribed", ev);
        json_decref(ev);
    }
    return 0;
}

/* ---- delivery ------------------------------------------------------------ */

static void wrt_offer(struct wrt_sub *u, struct wmsg *m)
{
    struct wrt_sess *s = u->s;

    /* At or below the floor: it was history when the subscription began.
     * last_live: a session with two matching subscriptions gets it once. */
    if (m->seq <= u->floor || s->last_live == m->seq || s->ending)
        return;
    s->last_live = m->seq;
    s->ops->send(s, m);
}

void wrt_deliver(struct wloop *l, struct wmsg *m)
{
    struct wrt_loop *rl = wrt_of(l);
    struct wrt_sub *u;

    if (rl == NULL)
        return;
    /* Ending a session (slow consumer) only schedules its close, so the
     * index is not changed under these walks. */
    for (u = rl->tab[wtopic_hash(m->topic) & (WRT_BUCKETS - 1)]; u != NULL;
         u = u->inext)
        if (strcmp(u->pattern, m->topic) == 0)
            wrt_offer(u, m);
    for (u = rl->wild; u != NULL; u = u->inext)
        if (wtopic_match(u->pattern, m->topic))
            wrt_offer(u, m);
}

int wrt_parse_pos(const char *s, char epoch[17], uint64_t *offset)
{
    const char *dash = strchr(s, '-');
    char *end;
    unsigned long long v;

    if (dash == NULL || dash - s != 16 ||
        strspn(s, "0123456789abcdef") != 16 || dash[1] == '\0')
        return -1;
    v = strtoull(dash + 1, &end, 10);
    if (*end != '\0' || dash[1] == '-' || dash[1] == '+')
        return -1;
    memcpy(epoch, s, 16);
    epoch[16] = '\0';
    *offset = v;
    return 0;
}

void wrt_stats(uint64_t *sessions, uint64_t *slow, uint64_t *delivered)
{
    *sessions = atomic_load(&wrt_nsess);
    *slow = atomic_load(&wrt_nslow);
    *delivered = atomic_load(&wrt_ndelivered);
}
