/* registry.c - topic owners, plugin subscriptions and WebSocket endpoints
 * of the serving plugin versions (see registry.h). */
#include "registry.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "hub.h"
#include "log.h"
#include "plugin.h"
#include "rt_ws.h"
#include "topic.h"

/* Entries live in their version; a version keeps them in a small array. */
struct wreg_list {
    struct wreg_ent *e;
    int n, cap;
};

struct wreg_snap {
    struct wreg_ent **e; /* every entry of every serving version */
    int n, nsubs;
    struct weft_plugin **insts; /* references held by the snapshot */
    int ninsts;
};

static struct {
    pthread_rwlock_t lock;
    struct wreg_snap *cur;
    char **pub; /* [realtime] public_topics */
    int npub;
} wreg = {.lock = PTHREAD_RWLOCK_INITIALIZER};

static void wreg_snap_free(struct wreg_snap *s)
{
    if (s == NULL)
        return;
    for (int k = 0; k < s->ninsts; k++)
        wplug_inst_release(s->insts[k]);
    free(s->insts);
    free(s->e);
    free(s);
}

int wreg_init(const char *public_topics)
{
    char *copy = strdup(public_topics != NULL ? public_topics : ""), *tok,
         *save = NULL;

    if (copy == NULL)
        return -1;
    for (tok = strtok_r(copy, ", ", &save); tok != NULL;
         tok = strtok_r(NULL, ", ", &save)) {
        char **a;
        if (!wtopic_valid(tok, 1)) {
            wlog(WLOG_ERROR, "realtime",
                 "[realtime] public_topics: '%s' is not a topic pattern", tok);
            free(copy);
            return -1;
        }
        a = realloc(wreg.pub, (size_t)(wreg.npub + 1) * sizeof(*a));
        if (a == NULL || (a[wreg.npub] = strdup(tok)) == NULL) {
            if (a != NULL)
                wreg.pub = a;
            free(copy);
            return -1;
        }
        wreg.pub = a;
        wreg.npub++;
    }
    free(copy);
    return 0;
}

void wreg_fini(void)
{
    pthread_rwlock_wrlock(&wreg.lock);
    wreg_snap_free(wreg.cur);
    wreg.cur = NULL;
    pthread_rwlock_unlock(&wreg.lock);
    for (int k = 0; k < wreg.npub; k++)
        free(wreg.pub[k]);
    free(wreg.pub);
    wreg.pub = NULL;
    wreg.npub = 0;
}

/* ---- registration (init of a version, control thread) ---------------- */

static struct wreg_ent *wreg_new(struct weft_plugin *i, int kind,
                                 const char *pattern)
{
    struct wreg_list *l = i->regs;
    struct wreg_ent *e;

    if (l == NULL) {
        l = calloc(1, sizeof(*l));
        if (l == NULL)
            return NULL;
        i->regs = l;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        struct wreg_ent *a = realloc(l->e, (size_t)cap * sizeof(*a));
        if (a == NULL)
            return NULL;
        l->e = a;
        l->cap = cap;
    }
    e = &l->e[l->n];
    memset(e, 0, sizeof(*e));
    e->pattern = strdup(pattern);
    if (e->pattern == NULL)
        return NULL;
    e->kind = kind;
    e->inst = i;
    l->n++;
    return e;
}

/* Topics a plugin owns start with its name and a dot. */
static int wreg_owned(struct weft_plugin *i, const char *pattern)
{
    size_t nl = strlen(i->slot->name);

    return strncmp(pattern, i->slot->name, nl) == 0 && pattern[nl] == '.';
}

static int wreg_in_init(struct weft_plugin *i, const char *what)
{
    if (i->in_init)
        return 1;
    wlog(WLOG_ERROR, i->comp, "%s is only allowed during init", what);
    return 0;
}

int wreg_topic(struct weft_plugin *i, const char *pattern, unsigned flags,
               weft_topic_auth_fn auth)
{
    struct wreg_ent *e;

    if (!wreg_in_init(i, "weft_topic()"))
        return WEFT_EINVAL;
    if (!wtopic_valid(pattern, 1) || !wreg_owned(i, pattern)) {
        weft_plugin_fail(i, "topic '%s' is not a pattern under '%s.'",
                         pattern ? pattern : "(null)", i->slot->name);
        return WEFT_EINVAL;
    }
    if (flags & ~(WEFT_TOPIC_PUBLIC | WEFT_TOPIC_USERS | WEFT_TOPIC_OWNER |
                  WEFT_TOPIC_CLIENT_PUBLISH)) {
        weft_plugin_fail(i, "topic %s: unknown flags 0x%x", pattern, flags);
        return WEFT_EINVAL;
    }
    if ((flags & WEFT_TOPIC_OWNER) && strchr(pattern, '*') == NULL) {
        weft_plugin_fail(i, "topic %s: WEFT_TOPIC_OWNER needs a '*' token "
                            "for the user id", pattern);
        return WEFT_EINVAL;
    }
    e = wreg_new(i, WREG_TOPIC, pattern);
    if (e == NULL)
        return WEFT_ERR;
    e->flags = flags;
    e->auth = auth;
    return WEFT_OK;
}

int wreg_subscribe(struct weft_plugin *i, const char *pattern,
                   weft_event_fn fn, void *arg)
{
    struct wreg_ent *e;

    if (!wreg_in_init(i, "weft_subscribe()"))
        return WEFT_EINVAL;
    if (!wtopic_valid(pattern, 1) || fn == NULL) {
        weft_plugin_fail(i, "subscribe: '%s' is not a topic pattern",
                         pattern ? pattern : "(null)");
        return WEFT_EINVAL;
    }
    e = wreg_new(i, WREG_SUB, pattern);
    if (e == NULL)
        return WEFT_ERR;
    e->event = fn;
    e->arg = arg;
    return WEFT_OK;
}

int wreg_ws(struct weft_plugin *i, const char *pattern, unsigned flags,
            const weft_ws_handlers *h)
{
    struct wreg_ent *e;
    int rc;

    if (!wreg_in_init(i, "weft_ws_route()"))
        return WEFT_EINVAL;
    if (h == NULL ||
        h->struct_size < offsetof(weft_ws_handlers, message) +
                             sizeof(h->message) ||
        h->message == NULL) {
        weft_plugin_fail(i, "ws route %s: handlers need at least message()",
                         pattern ? pattern : "(null)");
        return WEFT_EINVAL;
    }
    rc = wplug_route(i, "GET", pattern, flags | WEFT_ROUTE_NO_BODY,
                     wrt_ws_plugin_handler);
    if (rc != WEFT_OK)
        return rc;
    e = wreg_new(i, WREG_WS, pattern);
    if (e == NULL)
        return WEFT_ERR;
    e->flags = flags;
    e->ws = h;
    return WEFT_OK;
}

int wreg_signup(struct weft_plugin *i, weft_signup_fn fn, void *arg)
{
    struct wreg_ent *e;

    if (!wreg_in_init(i, "weft_on_signup()"))
        return WEFT_EINVAL;
    if (fn == NULL)
        return WEFT_EINVAL;
    e = wreg_new(i, WREG_SIGNUP, "signup");
    if (e == NULL)
        return WEFT_ERR;
    e->signup = fn;
    e->arg = arg;
    return WEFT_OK;
}

void wreg_inst_free(struct weft_plugin *i)
{
    struct wreg_list *l = i->regs;

    if (l == NULL)
        return;
    for (int k = 0; k < l->n; k++)
        free(l->e[k].pattern);
    free(l->e);
    free(l);
    i->regs = NULL;
}

/* ---- the snapshot ----------------------------------------------------- */

void wreg_rebuild(void)
{
    struct wreg_snap *s = calloc(1, sizeof(*s)), *old;
    int n = 0, ni = 0, oldsubs;

    if (s == NULL) {
        wlog(WLOG_ERROR, "host", "out of memory: registry not updated");
        return;
    }
    for (struct weft_plugin *i = wplug_first_serving(); i != NULL;
         i = wplug_next_serving(i)) {
        ni++;
        if (i->regs != NULL)
            n += i->regs->n;
    }
    s->e = calloc((size_t)(n ? n : 1), sizeof(*s->e));
    s->insts = calloc((size_t)(ni ? ni : 1), sizeof(*s->insts));
    if (s->e == NULL || s->insts == NULL) {
        wreg_snap_free(s);
        wlog(WLOG_ERROR, "host", "out of memory: registry not updated");
        return;
    }
    for (struct weft_plugin *i = wplug_first_serving(); i != NULL;
         i = wplug_next_serving(i)) {
        wplug_inst_acquire(i);
        s->insts[s->ninsts++] = i;
        for (int k = 0; i->regs != NULL && k < i->regs->n; k++) {
            s->e[s->n++] = &i->regs->e[k];
            if (i->regs->e[k].kind == WREG_SUB)
                s->nsubs++;
        }
    }
    pthread_rwlock_wrlock(&wreg.lock);
    old = wreg.cur;
    wreg.cur = s;
    pthread_rwlock_unlock(&wreg.lock);
    oldsubs = old != NULL ? old->nsubs : 0;
    if (s->nsubs != oldsubs)
        whub_interest(&whost_g->ctl, s->nsubs - oldsubs);
    wreg_snap_free(old);
}

/* The user id a WEFT_TOPIC_OWNER topic names: the token under the
 * pattern's last '*'. */
static int64_t wreg_owner_id(const char *pattern, const char *topic)
{
    const char *p = pattern, *t = topic, *last = NULL;
    char *end;
    long long v;

    while (*p != '\0' && *t != '\0') {
        size_t pl = strcspn(p, "."), tl = strcspn(t, ".");
        if (pl == 1 && *p == '*')
            last = t;
        else if (pl == 1 && *p == '>')
            break;
        p += pl;
        t += tl;
        if (*p == '.')
            p++;
        if (*t == '.')
            t++;
    }
    if (last == NULL || *last == '*' || *last == '>')
        return -1;
    v = strtoll(last, &end, 10);
    if (end == last || (*end != '.' && *end != '\0') || v <= 0)
        return -1;
    return v;
}

int wreg_authorize(const char *topic, int action, int64_t user,
                   unsigned user_flags)
{
    struct wreg_ent e = {0};
    int found = 0, rc;

    if (action == WEFT_TOPIC_SUBSCRIBE)
        for (int k = 0; k < wreg.npub; k++)
            if (wtopic_covers(wreg.pub[k], topic))
                return 0;
    pthread_rwlock_rdlock(&wreg.lock);
    for (int k = 0; wreg.cur != NULL && k < wreg.cur->n; k++) {
        const struct wreg_ent *c = wreg.cur->e[k];
        if (c->kind == WREG_TOPIC && wtopic_covers(c->pattern, topic)) {
            e = *c;
            wplug_inst_acquire(e.inst);
            found = 1;
            break;
        }
    }
    pthread_rwlock_unlock(&wreg.lock);
    if (!found)
        return 404;
    if (e.auth != NULL) {
        rc = e.auth(e.inst, topic, action, user, user_flags) == WEFT_OK
                 ? 0
                 : (user == 0 ? 401 : 403);
    } else if (action == WEFT_TOPIC_PUBLISH &&
               !(e.flags & WEFT_TOPIC_CLIENT_PUBLISH)) {
        rc = 403;
    } else if (e.flags & WEFT_TOPIC_PUBLIC) {
        rc = 0;
    } else if (user == 0) {
        rc = 401;
    } else if (e.flags & WEFT_TOPIC_USERS) {
        rc = 0;
    } else if (e.flags & WEFT_TOPIC_OWNER) {
        rc = wreg_owner_id(e.pattern, topic) == user ? 0 : 403;
    } else {
        rc = 403; /* declared, but closed to clients */
    }
    wplug_inst_release(e.inst);
    return rc;
}

void wreg_deliver(struct wmsg *m)
{
    struct wreg_snap *s;

    /* The snapshot changes only on this (the control) thread. */
    s = wreg.cur;
    for (int k = 0; s != NULL && k < s->n; k++) {
        const struct wreg_ent *e = s->e[k];
        if (e->kind == WREG_SUB && wtopic_match(e->pattern, m->topic))
            e->event(e->inst, m->topic, m->data, m->data_len, m->seq,
                     e->arg);
    }
}

int wreg_ws_find(const char *name, const char *pattern, struct wreg_ent *out)
{
    int rc = -1;

    pthread_rwlock_rdlock(&wreg.lock);
    for (int k = 0; wreg.cur != NULL && k < wreg.cur->n; k++) {
        const struct wreg_ent *c = wreg.cur->e[k];
        if (c->kind == WREG_WS && strcmp(c->inst->slot->name, name) == 0 &&
            strcmp(c->pattern, pattern) == 0) {
            *out = *c;
            wplug_inst_acquire(out->inst);
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&wreg.lock);
    return rc;
}

int wreg_signups(struct wreg_ent **out)
{
    int n = 0;

    *out = NULL;
    pthread_rwlock_rdlock(&wreg.lock);
    for (int k = 0; wreg.cur != NULL && k < wreg.cur->n; k++)
        n += wreg.cur->e[k]->kind == WREG_SIGNUP;
    if (n > 0 && (*out = calloc((size_t)n, sizeof(**out))) == NULL) {
        pthread_rwlock_unlock(&wreg.lock);
        return -1;
    }
    n = 0;
    for (int k = 0; wreg.cur != NULL && k < wreg.cur->n; k++)
        if (wreg.cur->e[k]->kind == WREG_SIGNUP) {
            (*out)[n] = *wreg.cur->e[k];
            (*out)[n].pattern = NULL; /* not the copy's to keep */
            wplug_inst_acquire((*out)[n].inst);
            n++;
        }
    pthread_rwlock_unlock(&wreg.lock);
    return n;
}
