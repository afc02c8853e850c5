/* rt_sse.c - Server-Sent Events over the topic layer.
 *
 * GET /api/realtime?topic=a.b,c.* opens a stream: first "connected" (with
 * the client id used to change subscriptions later), then "subscribed"
 * per topic (with recovered: true/false), replayed messages, live ones.
 * Every message's id is "<epoch>-<offset>" with one offset sequence per
 * node, delivered in order on a stream, so the browser's Last-Event-ID
 * alone says what a reconnecting client has seen on all its topics.
 * The answer is close-delimited (no chunked framing), so a message's
 * bytes are the same for every client and are shared, not copied. */
#include "rt_sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "auth.h"
#include "http_conn.h"
#include "http_parse.h"
#include "hub.h"
#include "log.h"
#include "registry.h"
#include "request.h"
#include "rt.h"
#include "topic.h"

#define WSSE_RETRY_MS 2000
#define WSSE_FLUSH_MS 2000

struct wsse {
    struct wrt_sess s;
};

unsigned wrt_user_flags(weft_req *r)
{
    return wauth_has_role(r, "admin") ? WEFT_USER_ADMIN : 0;
}

int wrt_check_topic(weft_req *r, int64_t user, unsigned uflags,
                    const char *topic, int action, const char **code,
                    const char **msg)
{
    int st;

    (void)r;
    if (!wtopic_valid(topic, action == WEFT_TOPIC_SUBSCRIBE)) {
        *code = "bad_topic";
        *msg = action == WEFT_TOPIC_SUBSCRIBE
                   ? "a topic is dot-separated tokens of letters, digits and "
                     "_-:@~, with * or a final > as wildcards"
                   : "a topic is dot-separated tokens of letters, digits and "
                     "_-:@~ (no wildcards)";
        return 400;
    }
    st = wreg_authorize(topic, action, user, uflags);
    switch (st) {
    case 0:
        return 0;
    case 401:
        *code = "unauthorized";
        *msg = "sign in to use this topic";
        return 401;
    case 404:
        *code = "unknown_topic";
        *msg = "no plugin owns this topic";
        return 404;
    default:
        *code = "forbidden";
        *msg = "this topic is not yours";
        return 403;
    }
}

/* ---- the session's operations --------------------------------------- */

static void wsse_send(struct wrt_sess *s, struct wmsg *m)
{
    wrt_write_msg(s, m, 0);
}

static void wsse_event(struct wrt_sess *s, const char *type, json_t *j)
{
    char *data = json_dumps(j, JSON_COMPACT);
    struct evbuffer *out;

    if (data == NULL || s->ending || s->conn == NULL ||
        (out = wconn_output(s->conn)) == NULL) {
        free(data);
        return;
    }
    evbuffer_add_printf(out, "event: %s\ndata: %s\n\n", type, data);
    free(data);
    wrt_write(s, "", 0); /* flush, and the slow-consumer check */
}

static void wsse_heartbeat(struct wrt_sess *s)
{
    wrt_write(s, ": ping\n\n", 8);
}

static void wsse_end(struct wrt_sess *s, int code, const char *reason)
{
    (void)code;
    (void)reason;
    if (s->ending || s->conn == NULL)
        return;
    s->ending = 1;
    wconn_end(s->conn, WSSE_FLUSH_MS);
}

static const struct wrt_ops wsse_ops = {
    .send = wsse_send,
    .event = wsse_event,
    .heartbeat = wsse_heartbeat,
    .end = wsse_end,
};

/* ---- the connection's callbacks -------------------------------------- */

static void wsse_read(void *ctx)
{
    struct wsse *e = ctx;
    struct evbuffer *in = wconn_input(e->s.conn);

    /* An SSE client has nothing to say; what it sends is dropped. */
    if (in != NULL)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void wsse_closed(void *ctx)
{
    struct wsse *e = ctx;

    wrt_sess_remove(&e->s);
    free(e);
}

static void wsse_drain(void *ctx)
{
    struct wsse *e = ctx;

    wsse_end(&e->s, 1001, "going away");
}

static const struct wconn_up wsse_up = {
    .read = wsse_read,
    .closed = wsse_closed,
    .drain = wsse_drain,
};

/* ---- GET /api/realtime ------------------------------------------------- */

/* The topics of ?topic=a,b as a malloc'd NULL-terminated array. */
static char **wsse_topics(weft_req *r, int *n, const char **why)
{
    const char *list = r->api->req_query(r, "topic");
    char *copy, *tok, *save = NULL, **v;
    int cap;

    *n = 0;
    if (list == NULL || list[0] == '\0') {
        *why = "give at least one topic: ?topic=a.b,c.*";
        return NULL;
    }
    cap = wrt_cfg.max_subs;
    v = calloc((size_t)cap + 1, sizeof(*v));
    copy = strdup(list);
    if (v == NULL || copy == NULL) {
        free(v);
        free(copy);
        *why = "out of memory";
        return NULL;
    }
    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int dup = 0;
        for (int i = 0; i < *n; i++)
            dup |= strcmp(v[i], tok) == 0;
        if (dup)
            continue;
        if (*n == cap) {
            *why = "too many topics for one connection";
            goto fail;
        }
        if ((v[(*n)++] = strdup(tok)) == NULL) {
            *why = "out of memory";
            goto fail;
        }
    }
    free(copy);
    return v;
fail:
    free(copy);
    for (int i = 0; i < *n; i++)
        free(v[i]);
    free(v);
    return NULL;
}

static void wsse_free_topics(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int wrt_sse_handler(weft_req *r)
{
    int n = 0, st = 0;
    const char *why = NULL, *code = "bad_request", *last;
    char **topics = wsse_topics(r, &n, &why), epoch[17] = "";
    int64_t user = wauth_user(r);
    unsigned uflags = wrt_user_flags(r);
    uint64_t since = 0;
    struct wsse *e;
    json_t *hello;
    char *hs;

    if (topics == NULL)
        return wreq_reply_error(r, strcmp(why, "out of memory") ? 400 : 503,
                                strcmp(why, "out of memory") ? "bad_request"
                                                              : "unavailable",
                                why);
    for (int i = 0; i < n && st == 0; i++)
        st = wrt_check_topic(r, user, uflags, topics[i], WEFT_TOPIC_SUBSCRIBE,
                             &code, &why);
    if (st != 0) {
        wsse_free_topics(topics, n);
        return wreq_reply_error(r, st, code, why);
    }
    if (wreq_stream_admit(r) != 0) {
        wsse_free_topics(topics, n);
        return WEFT_OK;
    }
    last = whttp_header(&r->head, "Last-Event-ID");
    if (last == NULL)
        last = r->api->req_query(r, "last_event_id");
    if (last != NULL && last[0] != '\0' &&
        wrt_parse_pos(last, epoch, &since) != 0) {
        /* Not one of ours: start afresh (recovered: false). */
        epoch[0] = '\0';
        since = 0;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        wsse_free_topics(topics, n);
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    }
    e->s.ops = &wsse_ops;
    e->s.user = user;
    e->s.exp = wauth_expiry(r);
    e->s.uflags = uflags;
    wreq_takeover(r, 200,
                  "Content-Type: text/event-stream; charset=utf-8\r\n"
                  "Cache-Control: no-store\r\n"
                  "X-Accel-Buffering: no\r\n"
                  "Connection: close\r\n",
                  &wsse_up, e);
    wrt_sess_add(&e->s, r->loop, r->conn);
    hello = json_pack("{s:s, s:s, s:I}", "client", e->s.id, "epoch",
                      whub_epoch(), "offset", (json_int_t)whub_offset());
    hs = hello != NULL ? json_dumps(hello, JSON_COMPACT) : NULL;
    json_decref(hello);
    if (hs != NULL) {
        char buf[256];
        int len = snprintf(buf, sizeof(buf),
                           "retry: %d\nevent: connected\ndata: %s\n\n",
                           WSSE_RETRY_MS, hs);
        if (len > 0 && (size_t)len < sizeof(buf))
            wrt_write(&e->s, buf, (size_t)len);
        free(hs);
    }
    for (int i = 0; i < n; i++)
        if (wrt_subscribe(&e->s, topics[i], epoch[0] ? epoch : NULL,
                          since) != 0)
            wlog_rid(WLOG_WARN, "realtime", r->rid,
                     "subscription to %s failed", topics[i]);
    wsse_free_topics(topics, n);
    return WEFT_OK;
}

/* ---- POST /api/realtime/subscriptions ----------------------------------- */

struct wsse_change {
    char client[40];
    char topic[WTOPIC_MAX + 1];
    char epoch[17];
    uint64_t since;
    int subscribe;
    int64_t user;
    int result; /* 0 ok, 404 no such client, 409 not subscribed, ... */
};

/* On the session's loop. */
static void wsse_change_run(void *arg)
{
    struct wsse_change *c = arg;
    struct wloop *l = wrt_id_loop(c->client);
    struct wrt_sess *s = l != NULL ? wrt_sess_find(l, c->client) : NULL;
    int rc;

    /* A stream opened by someone else is not yours to change (and not
     * worth admitting it exists). */
    if (s == NULL || s->ending || s->user != c->user || s->ops != &wsse_ops) {
        c->result = 404;
        return;
    }
    if (c->subscribe) {
        rc = wrt_subscribe(s, c->topic, c->epoch[0] ? c->epoch : NULL,
                           c->since);
        c->result = rc == 0 ? 0 : rc == -2 ? 429 : 503;
    } else {
        c->result = wrt_unsubscribe(s, c->topic) == 0 ? 0 : 409;
    }
}

static void wsse_change_done(weft_req *r, void *arg)
{
    struct wsse_change *c = arg;
    json_t *j;

    switch (c->result) {
    case 0:
        j = json_pack("{s:s, s:s, s:b}", "client", c->client, "topic",
                      c->topic, "subscribed", c->subscribe);
        wreq_reply_json(r, 200, j);
        json_decref(j);
        break;
    case 404:
        wreq_reply_error(r, 404, "unknown_client",
                         "no open stream with this client id");
        break;
    case 409:
        wreq_reply_error(r, 409, "not_subscribed",
                         "the stream is not subscribed to this topic");
        break;
    case 429:
        wreq_reply_error(r, 429, "too_many_subscriptions",
                         "this stream has [realtime] max_subscriptions");
        break;
    default:
        wreq_reply_error(r, 503, "unavailable", "out of memory");
    }
    free(c);
}

int wrt_sse_subs_handler(weft_req *r)
{
    const char *err = NULL, *client = NULL, *topic = NULL, *action = NULL,
               *last = NULL, *code = NULL, *why = NULL;
    json_t *body = r->api->req_json(r, &err);
    struct wsse_change *c;
    struct wloop *target;
    int st;

    if (body == NULL)
        return wreq_reply_error(r, 400, "bad_request", err);
    if (json_unpack_ex(body, NULL, JSON_STRICT, "{s:s, s:s, s?s, s?s}",
                       "client", &client, "topic", &topic, "action", &action,
                       "last_event_id", &last) != 0 ||
        (action != NULL && strcmp(action, "subscribe") != 0 &&
         strcmp(action, "unsubscribe") != 0)) {
        json_decref(body);
        return wreq_reply_error(
            r, 400, "bad_request",
            "expected {\"client\":\"...\",\"topic\":\"...\", \"action\":"
            "\"subscribe\"|\"unsubscribe\", \"last_event_id\":\"...\"}");
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_decref(body);
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    }
    c->subscribe = action == NULL || strcmp(action, "subscribe") == 0;
    c->user = wauth_user(r);
    st = strlen(client) < sizeof(c->client) && strlen(topic) <= WTOPIC_MAX
             ? 0
             : 400;
    if (st == 0) {
        snprintf(c->client, sizeof(c->client), "%s", client);
        snprintf(c->topic, sizeof(c->topic), "%s", topic);
        if (last != NULL && wrt_parse_pos(last, c->epoch, &c->since) != 0)
            c->epoch[0] = '\0';
        st = c->subscribe
                 ? wrt_check_topic(r, c->user, wrt_user_flags(r), topic,
                                   WEFT_TOPIC_SUBSCRIBE, &code, &why)
                 : (wtopic_valid(topic, 1) ? 0 : 400);
    } else {
        why = "client or topic too long";
    }
    json_decref(body);
    if (st != 0) {
        free(c);
        return wreq_reply_error(r, st, code != NULL ? code : "bad_request",
                                why != NULL ? why : "invalid topic");
    }
    target = wrt_id_loop(c->client);
    if (target == NULL) {
        free(c);
        return wreq_reply_error(r, 404, "unknown_client",
                                "no open stream with this client id");
    }
    if (wreq_defer_on(r, target, wsse_change_run, wsse_change_done, c) !=
        WEFT_OK) {
        free(c);
        return wreq_reply_error(r, 503, "unavailable", "busy");
    }
    return WEFT_OK;
}
