/* rt_ws.c - WebSocket sessions (RFC 6455): the handshake, framing with
 * wslay's event API on a taken-over connection, the JSON command protocol
 * of GET /api/ws and the plugin endpoints of weft_ws_route().
 *
 * Output. wslay's send callback appends to the connection's output buffer
 * and always takes everything it is given, so wslay never holds a partly
 * written frame between two calls of wslay_event_send(): whenever control
 * is back in this file, the output buffer ends on a frame boundary. That
 * invariant is what lets a bus message's ready-made frame (wmsg->ws, built
 * once for every client) be appended to the same buffer directly, between
 * wslay's frames, shared and not copied. Keep it: a send callback that
 * could say WSLAY_ERR_WOULDBLOCK would let such a frame land in the middle
 * of a half-written one.
 *
 * Memory. A wslay context costs about 9 KiB (two 4 KiB buffers), more than
 * the rest of an idle connection together. So it exists only while there
 * is something to read or send: it is made on demand and freed as soon as
 * it holds no state, that is when every byte it was given belongs to a
 * frame it finished, no fragmented message is under way, nothing is
 * queued and no close was seen or sent. A fresh context is then the same
 * as the old one.
 *
 * Ending. A session never frees itself: ending queues a close frame and
 * asks the connection to close (wconn_end). The memory goes in the
 * connection's `closed` callback, which never runs inside our own calls,
 * so ending is safe in the middle of loops that walk sessions. */
#include "rt_ws.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "auth.h"
#include "http_conn.h"
#include "http_parse.h"
#include "hub.h"
#include "loop.h"
#include "plugin.h"
#include "registry.h"
#include "request.h"
#include "router.h"
#include "rt.h"
#include "rt_sse.h"
#include "topic.h"
#include "utf8.h"

#define WWS_FLUSH_MS 2000
#define WWS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Both kinds of session. The plugin API hands out the struct itself as
 * the weft_ws handle, so the API pointer comes first. */
struct weft_ws {
    const weft_api *api; /* first: the SDK's inline wrappers read it */
    struct wrt_sess s;
    wslay_event_context_ptr ctx; /* NULL while idle (see the top) */
    uint64_t fed;   /* bytes handed to this ctx by ws_recv_cb      */
    uint64_t eaten; /* of those, bytes of frames it finished        */
    uint64_t frame; /* size on the wire of the frame being received */
    json_t *cmd_id; /* /api/ws: "id" of the command being handled   */
    char *ep;       /* plugin endpoint "<plugin>\0<pattern>", or NULL */
    struct weft_plugin *cur; /* the version running a callback now */
    int busy;            /* inside wslay or the handler: keep ctx   */
    unsigned nevents;    /* events sent (to notice a silent command) */
    uint16_t close_code; /* received, else sent; 0: none yet         */
    unsigned frag : 1;       /* a fragmented message is under way     */
    unsigned opened : 1;     /* the plugin accepted it                */
    unsigned in_handler : 1; /* the HTTP request is not finished yet  */
    unsigned end_later : 1;  /* ended during the handler              */
    unsigned posted : 1;     /* ws_end_task is queued on the loop     */
    unsigned dead : 1;       /* closed: ws_end_task frees it          */
};

#define WWS_OF(sp) \
    ((struct weft_ws *)(void *)((char *)(sp) - offsetof(struct weft_ws, s)))

/* Does a plugin's handler table reach member m? */
#define WWS_HAS(h, m) \
    ((h)->struct_size >= offsetof(weft_ws_handlers, m) + sizeof((h)->m))

/* ---- wslay callbacks ---------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf,
                          size_t len, int flags, void *user)
{
    struct weft_ws *w = user;
    struct evbuffer *in;
    int n;

    (void)flags;
    if (w->s.ending || w->s.conn == NULL ||
        (in = wconn_input(w->s.conn)) == NULL ||
        (n = evbuffer_remove(in, buf, len)) <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    w->fed += (uint64_t)n;
    return n;
}

/* Takes everything (see the top of the file). */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user)
{
    struct weft_ws *w = user;
    struct evbuffer *out;

    (void)flags;
    if (w->s.conn == NULL || (out = wconn_output(w->s.conn)) == NULL ||
        evbuffer_add(out, data, len) != 0) {
        /* The client is gone (or no memory): `closed` follows. */
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a,
                           void *user)
{
    struct weft_ws *w = user;
    uint64_t hl = 2 + 4; /* a client's frames are masked: wslay checked */

    (void)ctx;
    /* wslay refuses lengths not written in their shortest form. */
    if (a->payload_length > 0xffff)
        hl += 8;
    else if (a->payload_length >= 126)
        hl += 2;
    w->frame = hl + a->payload_length;
    if (a->opcode < 8) /* data or continuation, not control */
        w->frag = !a->fin;
}

static void ws_frame_end(wslay_event_context_ptr ctx, void *user)
{
    struct weft_ws *w = user;

    (void)ctx;
    w->eaten += w->frame;
    w->frame = 0;
}

static void ws_api_message(struct weft_ws *w, const char *data, size_t len,
                           int binary);
static void ws_plugin_message(struct weft_ws *w, const char *data, size_t len,
                              int binary);

static void ws_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *a, void *user)
{
    struct weft_ws *w = user;
    const char *data = a->msg != NULL ? (const char *)a->msg : "";

    (void)ctx;
    if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        /* wslay queues the answering close itself. */
        if (w->close_code == 0)
            w->close_code = a->status_code != 0 ? a->status_code : 1005;
        return;
    }
    if (w->s.ending ||
        (a->opcode != WSLAY_TEXT_FRAME && a->opcode != WSLAY_BINARY_FRAME))
        return; /* pings are answered by wslay; pongs only show life */
    if (w->ep != NULL)
        ws_plugin_message(w, data, a->msg_length,
                          a->opcode == WSLAY_BINARY_FRAME);
    else
        ws_api_message(w, data, a->msg_length,
                       a->opcode == WSLAY_BINARY_FRAME);
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .genmask_callback = NULL,
    .on_frame_recv_start_callback = ws_frame_start,
    .on_frame_recv_chunk_callback = NULL,
    .on_frame_recv_end_callback = ws_frame_end,
    .on_msg_recv_callback = ws_msg,
};

/* ---- the wslay context: made on demand, dropped when idle --------------- */

static wslay_event_context_ptr ws_ctx(struct weft_ws *w)
{
    if (w->ctx != NULL)
        return w->ctx;
    if (wslay_event_context_server_init(&w->ctx, &ws_callbacks, w) != 0) {
        w->ctx = NULL;
        return NULL;
    }
    /* Larger messages are refused with close code 1009. */
    wslay_event_config_set_max_recv_msg_length(
        w->ctx, wrt_cfg.ws_max_message > 0 ? wrt_cfg.ws_max_message
                                           : (uint64_t)1 << 20);
    w->fed = w->eaten = w->frame = 0;
    w->frag = 0;
    return w->ctx;
}

static void ws_trim(struct weft_ws *w)
{
    wslay_event_context_ptr c = w->ctx;

    if (c == NULL || w->busy > 0 || w->s.ending || w->fed != w->eaten ||
        w->frag || wslay_event_want_write(c) ||
        !wslay_event_get_read_enabled(c) ||
        !wslay_event_get_write_enabled(c) ||
        wslay_event_get_close_received(c) || wslay_event_get_close_sent(c))
        return;
    wslay_event_context_free(c);
    w->ctx = NULL;
}

/* Remember the close code for the plugin's close callback. */
static void ws_note_close(struct weft_ws *w)
{
    wslay_event_context_ptr c = w->ctx;

    if (w->close_code != 0 || c == NULL)
        return;
    if (wslay_event_get_close_received(c))
        w->close_code = wslay_event_get_status_code_received(c);
    else if (wslay_event_get_close_sent(c))
        w->close_code = wslay_event_get_status_code_sent(c);
}

/* ---- ending -------------------------------------------------------------- */

static void ws_end_task(void *arg)
{
    struct weft_ws *w = arg;

    w->posted = 0;
    if (w->dead) {
        free(w);
        return;
    }
    if (w->s.conn != NULL)
        wconn_end(w->s.conn, WWS_FLUSH_MS);
}

/* Close the connection once its output is sent. While the handler still
 * runs, the connection finishes the HTTP request first (and would undo
 * an end asked for now), so it is asked from a task after that. */
static void ws_conn_end(struct weft_ws *w)
{
    if (w->s.conn == NULL)
        return;
    if (w->in_handler) {
        w->end_later = 1;
        return;
    }
    wconn_end(w->s.conn, WWS_FLUSH_MS);
}

/* A close frame written without wslay (when it has no context to spare,
 * or queued a close without a status code on a malformed frame). */
static void ws_raw_close(struct weft_ws *w, int code)
{
    unsigned char f[4] = {0x88, 2, (unsigned char)(code >> 8),
                          (unsigned char)code};
    struct evbuffer *out;

    if (w->s.conn != NULL && (out = wconn_output(w->s.conn)) != NULL)
        evbuffer_add(out, f, sizeof(f));
    if (w->close_code == 0)
        w->close_code = (uint16_t)code;
}

/* Queue a close frame, stop reading, end the connection. Never frees. */
static void ws_close(struct weft_ws *w, int code, const char *reason)
{
    wslay_event_context_ptr c;
    size_t rl = reason != NULL ? strlen(reason) : 0;

    if (w->s.ending || w->s.conn == NULL)
        return;
    w->s.ending = 1;
    if (rl > 123)
        rl = 0;
    c = ws_ctx(w);
    if (c == NULL) {
        ws_raw_close(w, code);
    } else {
        if (wslay_event_queue_close(c, (uint16_t)code,
                                    (const uint8_t *)reason, rl) == 0) {
            if (w->close_code == 0)
                w->close_code = (uint16_t)code;
            wslay_event_send(c);
        }
        /* Otherwise a close was already exchanged. */
        wslay_event_shutdown_read(c);
    }
    ws_conn_end(w);
}

/* ---- sending --------------------------------------------------------------- */

/* Queue one message through wslay and send it. WEFT_OK; WEFT_ERR when it
 * could not be queued; WEFT_EBUSY when it was but the session then ended
 * as a slow consumer. */
static int ws_queue(struct weft_ws *w, uint8_t opcode, const void *data,
                    size_t len)
{
    struct wslay_event_msg m = {opcode, data, len};
    wslay_event_context_ptr c;

    if (w->s.ending || w->s.conn == NULL || wconn_output(w->s.conn) == NULL ||
        (c = ws_ctx(w)) == NULL)
        return WEFT_ERR;
    if (wslay_event_queue_msg(c, &m) != 0) {
        ws_trim(w);
        return WEFT_ERR;
    }
    wslay_event_send(c);
    /* Flush, and the slow-consumer check (which may end the session). */
    if (wrt_write(&w->s, "", 0) != 0)
        return WEFT_EBUSY;
    ws_trim(w);
    return WEFT_OK;
}

/* A text frame of `j` with "type" first (and the command's "id"). */
static void ws_send_event(struct weft_ws *w, const char *type, json_t *j)
{
    json_t *o = json_object();
    char *txt;

    if (o == NULL)
        return;
    json_object_set_new(o, "type", json_string(type));
    if (w->cmd_id != NULL)
        json_object_set(o, "id", w->cmd_id);
    if (j != NULL && json_is_object(j))
        json_object_update(o, j);
    txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (txt == NULL)
        return;
    w->nevents++;
    ws_queue(w, WSLAY_TEXT_FRAME, txt, strlen(txt));
    free(txt);
}

/* ---- the session operations (rt.h) ----------------------------------------- */

static void ws_op_send(struct wrt_sess *s, struct wmsg *m)
{
    /* The shared ready-made frame, appended between wslay's frames. */
    wrt_write_msg(s, m, 1);
}

static void ws_op_event(struct wrt_sess *s, const char *type, json_t *j)
{
    ws_send_event(WWS_OF(s), type, j);
}

/* A plugin endpoint speaks its own protocol: "subscribed" and the like
 * are for the command protocol's clients, who asked for them. */
static void ws_op_plugin_event(struct wrt_sess *s, const char *type,
                               json_t *j)
{
    (void)s;
    (void)type;
    (void)j;
}

static void ws_op_heartbeat(struct wrt_sess *s)
{
    struct weft_ws *w = WWS_OF(s);

    if (wloop_now_ms() - s->seen_ms > 3 * wrt_cfg.heartbeat_ms) {
        ws_close(w, 1001, "ping timeout");
        return;
    }
    ws_queue(w, WSLAY_PING, NULL, 0);
}

static void ws_op_end(struct wrt_sess *s, int code, const char *reason)
{
    ws_close(WWS_OF(s), code, reason);
}

static const struct wrt_ops ws_api_ops = {
    .send = ws_op_send,
    .event = ws_op_event,
    .heartbeat = ws_op_heartbeat,
    .end = ws_op_end,
};

static const struct wrt_ops ws_plugin_ops = {
    .send = ws_op_send,
    .event = ws_op_plugin_event,
    .heartbeat = ws_op_heartbeat,
    .end = ws_op_end,
};

/* ---- the connection's callbacks ---------------------------------------------- */

/* After a read pass: send what wslay queued (pongs, closes), and end the
 * connection when the close handshake is over or the stream is broken. */
static void ws_after_recv(struct weft_ws *w, int rc)
{
    wslay_event_context_ptr c = w->ctx;

    if (c == NULL || w->s.ending) /* ended by a callback: done already */
        return;
    if (rc != 0) {
        /* A malformed frame header (wslay then queued a close without a
         * status code: we say 1002 instead) or no memory. */
        if (!wslay_event_get_close_sent(c))
            ws_raw_close(w, rc == WSLAY_ERR_NOMEM ? 1011 : 1002);
        wslay_event_shutdown_read(c);
        wslay_event_shutdown_write(c);
        w->s.ending = 1;
        ws_conn_end(w);
        return;
    }
    rc = wslay_event_send(c);
    ws_note_close(w);
    if (rc != 0 || (!wslay_event_want_read(c) && !wslay_event_want_write(c))) {
        /* Close handshake done (the client's close answered, or ours
         * sent for 1002, 1007, 1009), or the client is gone. */
        w->s.ending = 1;
        ws_conn_end(w);
        return;
    }
    if (wrt_write(&w->s, "", 0) != 0) /* flush + slow-consumer check */
        return;
    ws_trim(w);
}

static void ws_read(void *arg)
{
    struct weft_ws *w = arg;
    struct evbuffer *in;
    wslay_event_context_ptr c;
    int rc;

    if (w->s.conn == NULL || (in = wconn_input(w->s.conn)) == NULL)
        return;
    if (w->s.ending) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (evbuffer_get_length(in) == 0)
        return;
    w->s.seen_ms = wloop_now_ms();
    if ((c = ws_ctx(w)) == NULL) {
        ws_close(w, 1011, "out of memory");
        return;
    }
    w->busy++;
    rc = wslay_event_recv(c);
    w->busy--;
    ws_after_recv(w, rc);
}

static int ws_find(struct weft_ws *w, struct wreg_ent *ent)
{
    return wreg_ws_find(w->ep, w->ep + strlen(w->ep) + 1, ent);
}

static void ws_closed(void *arg)
{
    struct weft_ws *w = arg;
    struct wreg_ent ent;

    wrt_sess_remove(&w->s); /* s.conn is NULL from here */
    w->s.ending = 1;
    ws_note_close(w);
    if (w->ep != NULL && w->opened && ws_find(w, &ent) == 0) {
        if (WWS_HAS(ent.ws, close) && ent.ws->close != NULL) {
            struct weft_plugin *prev = w->cur;
            w->cur = ent.inst;
            ent.ws->close(w, w->close_code != 0 ? w->close_code : 1006);
            w->cur = prev;
        }
        wplug_inst_release(ent.inst);
    }
    if (w->ctx != NULL)
        wslay_event_context_free(w->ctx);
    w->ctx = NULL;
    free(w->ep);
    w->ep = NULL;
    if (w->posted) {
        w->dead = 1; /* ws_end_task frees it */
        return;
    }
    free(w);
}

static void ws_drain(void *arg)
{
    struct weft_ws *w = arg;

    ws_close(w, 1001, "going away");
}

static const struct wconn_up ws_up = {
    .read = ws_read,
    .closed = ws_closed,
    .drain = ws_drain,
};

/* ---- GET /api/ws: the command protocol --------------------------------------- */

static void ws_api_error(struct weft_ws *w, const char *code,
                         const char *message)
{
    json_t *j = json_pack("{s:s, s:s}", "code", code, "message", message);

    ws_send_event(w, "error", j);
    json_decref(j);
}

static void ws_api_subscribe(struct weft_ws *w, json_t *m, const char *topic)
{
    json_t *since = json_object_get(m, "since");
    const char *epoch = NULL, *code = NULL, *msg = NULL;
    uint64_t offset = 0;
    unsigned before;
    char why[96];
    int rc;

    if (topic == NULL) {
        ws_api_error(w, "bad_message", "\"topic\" must be a string");
        return;
    }
    if (since != NULL && !json_is_null(since)) {
        json_t *e = json_object_get(since, "epoch");
        json_t *o = json_object_get(since, "offset");
        if (!json_is_object(since) || !json_is_string(e) ||
            !json_is_integer(o) || json_integer_value(o) < 0) {
            ws_api_error(w, "bad_message",
                         "\"since\" is {\"epoch\": string, \"offset\": "
                         "integer >= 0}");
            return;
        }
        epoch = json_string_value(e);
        offset = (uint64_t)json_integer_value(o);
    }
    if (wrt_check_topic(NULL, w->s.user, w->s.uflags, topic,
                        WEFT_TOPIC_SUBSCRIBE, &code, &msg) != 0) {
        ws_api_error(w, code, msg);
        return;
    }
    before = w->nevents;
    rc = wrt_subscribe(&w->s, topic, epoch, offset);
    if (rc == -2) {
        snprintf(why, sizeof(why), "at most %d subscriptions per connection",
                 wrt_cfg.max_subs);
        ws_api_error(w, "too_many_subscriptions", why);
    } else if (rc != 0) {
        ws_api_error(w, "unavailable", "out of memory");
    } else if (w->nevents == before && !w->s.ending) {
        /* Subscribed already: wrt_subscribe said nothing. */
        json_t *j = json_pack("{s:s, s:b}", "topic", topic, "already", 1);
        ws_send_event(w, "subscribed", j);
        json_decref(j);
    }
}

static void ws_api_unsubscribe(struct weft_ws *w, const char *topic)
{
    if (topic == NULL || !wtopic_valid(topic, 1)) {
        ws_api_error(w, "bad_message",
                     "\"topic\" must be a topic or pattern you subscribed to");
        return;
    }
    if (wrt_unsubscribe(&w->s, topic) != 0)
        ws_api_error(w, "not_subscribed", "not subscribed to this topic");
}

static void ws_api_publish(struct weft_ws *w, json_t *m, const char *topic)
{
    json_t *data = json_object_get(m, "data"), *j;
    const char *code = NULL, *msg = NULL;
    uint64_t offset;
    char *txt;

    if (topic == NULL || data == NULL) {
        ws_api_error(w, "bad_message",
                     "publish needs \"topic\" (a string) and \"data\"");
        return;
    }
    if (wrt_check_topic(NULL, w->s.user, w->s.uflags, topic,
                        WEFT_TOPIC_PUBLISH, &code, &msg) != 0) {
        ws_api_error(w, code, msg);
        return;
    }
    txt = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (txt == NULL) {
        ws_api_error(w, "unavailable", "out of memory");
        return;
    }
    offset = whub_publish(topic, txt, strlen(txt), 0);
    free(txt);
    if (offset == 0) {
        ws_api_error(w, "unavailable", "the bus took no message");
        return;
    }
    j = json_pack("{s:s, s:I}", "topic", topic, "offset", (json_int_t)offset);
    ws_send_event(w, "published", j);
    json_decref(j);
}

static void ws_api_message(struct weft_ws *w, const char *data, size_t len,
                           int binary)
{
    json_error_t err;
    json_t *m;
    const char *type, *topic;
    char why[240];

    if (binary) {
        ws_api_error(w, "bad_message",
                     "binary messages are not understood: send JSON text");
        return;
    }
    m = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (m == NULL) {
        snprintf(why, sizeof(why), "invalid JSON: %s", err.text);
        ws_api_error(w, "bad_message", why);
        return;
    }
    if (!json_is_object(m)) {
        json_decref(m);
        ws_api_error(w, "bad_message", "a message is a JSON object");
        return;
    }
    w->cmd_id = json_object_get(m, "id"); /* answers carry it */
    type = json_string_value(json_object_get(m, "type"));
    topic = json_string_value(json_object_get(m, "topic"));
    if (type == NULL)
        ws_api_error(w, "bad_message", "\"type\" must be a string");
    else if (strcmp(type, "subscribe") == 0)
        ws_api_subscribe(w, m, topic);
    else if (strcmp(type, "unsubscribe") == 0)
        ws_api_unsubscribe(w, topic);
    else if (strcmp(type, "publish") == 0)
        ws_api_publish(w, m, topic);
    else if (strcmp(type, "ping") == 0)
        ws_send_event(w, "pong", NULL);
    else
        ws_api_error(w, "bad_message",
                     "\"type\" is subscribe, unsubscribe, publish or ping");
    w->cmd_id = NULL;
    json_decref(m);
}

/* ---- plugin endpoints ---------------------------------------------------------- */

static void ws_plugin_message(struct weft_ws *w, const char *data, size_t len,
                              int binary)
{
    struct wreg_ent ent;
    struct weft_plugin *prev = w->cur;

    /* Through the version serving now: a reload keeps the session. */
    if (ws_find(w, &ent) != 0) {
        ws_close(w, 1001, "endpoint gone");
        return;
    }
    if (!WWS_HAS(ent.ws, message) || ent.ws->message == NULL) {
        wplug_inst_release(ent.inst);
        ws_close(w, 1011, "no message handler");
        return;
    }
    w->cur = ent.inst;
    ent.ws->message(w, data, len, binary);
    w->cur = prev;
    wplug_inst_release(ent.inst);
}

/* ---- the handshake --------------------------------------------------------------- */

/* Is `tok` one of the comma-separated tokens of `list` (any case)? */
static int ws_has_token(const char *list, const char *tok)
{
    size_t tl = strlen(tok);

    while (*list != '\0') {
        size_t n;
        while (*list == ' ' || *list == '\t' || *list == ',')
            list++;
        n = strcspn(list, ",");
        while (n > 0 && (list[n - 1] == ' ' || list[n - 1] == '\t'))
            n--;
        if (n == tl && strncasecmp(list, tok, tl) == 0)
            return 1;
        list += strcspn(list, ",");
    }
    return 0;
}

/* `v` without surrounding blanks into out (size bytes); -1 when longer. */
static int ws_trimmed(const char *v, char *out, size_t size)
{
    size_t n;

    while (*v == ' ' || *v == '\t')
        v++;
    n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (n >= size)
        return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* A key is 16 bytes in base64: 22 characters and "==". */
static int ws_key_ok(const char *key)
{
    if (strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    for (int i = 0; i < 22; i++) {
        char ch = key[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

/* Is host:port `a` the same as `b` plus the scheme's default port? */
static int ws_same_with_port(const char *a, const char *b, const char *port)
{
    size_t bl = strlen(b), pl = strlen(port);

    return strlen(a) == bl + pl && strncasecmp(a, b, bl) == 0 &&
           strcasecmp(a + bl, port) == 0;
}

static int ws_origin_ok(weft_req *r, const char *origin)
{
    const char *host, *hp, *port = NULL;

    if (wrt_cfg.allowed_origins != NULL && wrt_cfg.allowed_origins[0] != '\0')
        return ws_has_token(wrt_cfg.allowed_origins, origin);
    /* Same origin: the page came from the host the client asks. */
    host = whttp_header(&r->head, "Host");
    hp = strstr(origin, "://");
    if (host == NULL || hp == NULL)
        return 0;
    hp += 3;
    if (strchr(hp, '/') != NULL || hp[0] == '\0')
        return 0;
    if (strcasecmp(hp, host) == 0)
        return 1;
    if (strncasecmp(origin, "https://", 8) == 0)
        port = ":443";
    else if (strncasecmp(origin, "http://", 7) == 0)
        port = ":80";
    return port != NULL && (ws_same_with_port(host, hp, port) ||
                            ws_same_with_port(hp, host, port));
}

/* Check the upgrade request and compute Sec-WebSocket-Accept. 0 to go
 * on; -1 when it was answered. */
static int ws_handshake(weft_req *r, char accept[32])
{
    const char *v;
    char key[25], ver[8], buf[24 + sizeof(WWS_GUID)];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (strcmp(r->head.method, "GET") != 0 || r->head.minor != 1) {
        wreq_reply_error(r, 400, "bad_websocket_handshake",
                         "a WebSocket handshake is a GET in HTTP/1.1");
        return -1;
    }
    v = whttp_header(&r->head, "Upgrade");
    if (v == NULL || !ws_has_token(v, "websocket")) {
        wreq_reply_error(r, 400, "bad_websocket_handshake",
                         "this is a WebSocket endpoint: send "
                         "Upgrade: websocket");
        return -1;
    }
    v = whttp_header(&r->head, "Connection");
    if (v == NULL || !ws_has_token(v, "upgrade")) {
        wreq_reply_error(r, 400, "bad_websocket_handshake",
                         "Connection: Upgrade is missing");
        return -1;
    }
    v = whttp_header(&r->head, "Sec-WebSocket-Version");
    if (v == NULL || ws_trimmed(v, ver, sizeof(ver)) != 0 ||
        strcmp(ver, "13") != 0) {
        evbuffer_add_printf(r->rhdrs, "Sec-WebSocket-Version: 13\r\n");
        wreq_reply_error(r, 426, "unsupported_websocket_version",
                         "only WebSocket version 13 is spoken here");
        return -1;
    }
    v = whttp_header(&r->head, "Sec-WebSocket-Key");
    if (v == NULL || ws_trimmed(v, key, sizeof(key)) != 0 || !ws_key_ok(key)) {
        wreq_reply_error(r, 400, "bad_websocket_handshake",
                         "Sec-WebSocket-Key must be 16 bytes in base64");
        return -1;
    }
    v = whttp_header(&r->head, "Origin");
    if (v != NULL && !ws_origin_ok(r, v)) {
        wreq_reply_error(r, 403, "origin_not_allowed",
                         "pages from this origin may not connect here");
        return -1;
    }
    memcpy(buf, key, 24);
    memcpy(buf + 24, WWS_GUID, sizeof(WWS_GUID) - 1);
    if (EVP_Digest(buf, 24 + sizeof(WWS_GUID) - 1, md, &mdlen, EVP_sha1(),
                   NULL) != 1 ||
        mdlen != 20) {
        wreq_reply_error(r, 500, "internal", "SHA-1 is not available");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)accept, md, 20); /* 28 chars + NUL */
    return 0;
}

static struct weft_ws *ws_new(weft_req *r, const struct wrt_ops *ops,
                              const char *name, const char *pattern)
{
    struct weft_ws *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->api = &wapi_table;
    w->s.ops = ops;
    w->s.user = wauth_user(r);
    w->s.exp = wauth_expiry(r);
    w->s.uflags = wrt_user_flags(r);
    if (name != NULL) {
        size_t nl = strlen(name), pl = strlen(pattern);
        w->ep = malloc(nl + pl + 2);
        if (w->ep == NULL) {
            free(w);
            return NULL;
        }
        memcpy(w->ep, name, nl + 1);
        memcpy(w->ep + nl + 1, pattern, pl + 1);
    }
    return w;
}

/* Answer 101 and take the connection over. 0, or -1 (nothing sent). */
static int ws_takeover(weft_req *r, struct weft_ws *w, const char *accept)
{
    char hdrs[160];

    snprintf(hdrs, sizeof(hdrs),
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\n",
             accept);
    if (wreq_takeover(r, 101, hdrs, &ws_up, w) != WEFT_OK)
        return -1;
    wrt_sess_add(&w->s, r->loop, r->conn);
    w->in_handler = 1;
    w->busy++;
    return 0;
}

/* The handler is returning: the connection becomes the session's. */
static void ws_handler_done(struct weft_ws *w)
{
    w->busy--;
    w->in_handler = 0;
    if (w->end_later) {
        w->end_later = 0;
        if (wloop_post(w->s.loop, ws_end_task, w) == 0)
            w->posted = 1;
        return;
    }
    ws_trim(w);
}

int wrt_ws_handler(weft_req *r)
{
    char accept[32];
    struct weft_ws *w;
    json_t *j;

    if (ws_handshake(r, accept) != 0)
        return WEFT_OK;
    if (wreq_stream_admit(r) != 0)
        return WEFT_OK;
    w = ws_new(r, &ws_api_ops, NULL, NULL);
    if (w == NULL)
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    if (ws_takeover(r, w, accept) != 0) {
        free(w);
        return WEFT_ERR;
    }
    j = json_pack("{s:s, s:s, s:I}", "client", w->s.id, "epoch",
                  whub_epoch(), "offset", (json_int_t)whub_offset());
    ws_send_event(w, "connected", j);
    json_decref(j);
    ws_handler_done(w);
    return WEFT_OK;
}

int wrt_ws_plugin_handler(weft_req *r)
{
    struct wreg_ent ent;
    char accept[32];
    struct weft_ws *w;
    int rc = WEFT_OK;

    if (r->inst == NULL || r->match.route == NULL)
        return wreq_reply_error(r, 500, "internal",
                                "not a plugin WebSocket endpoint");
    if (ws_handshake(r, accept) != 0)
        return WEFT_OK;
    if (wreg_ws_find(r->inst->slot->name, r->match.route->pattern, &ent) != 0)
        return wreq_reply_error(r, 503, "unavailable",
                                "this WebSocket endpoint is not available "
                                "now");
    if (wreq_stream_admit(r) != 0) {
        wplug_inst_release(ent.inst);
        return WEFT_OK;
    }
    w = ws_new(r, &ws_plugin_ops, r->inst->slot->name,
               r->match.route->pattern);
    if (w == NULL) {
        wplug_inst_release(ent.inst);
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    }
    if (ws_takeover(r, w, accept) != 0) {
        wplug_inst_release(ent.inst);
        free(w->ep);
        free(w);
        return WEFT_ERR;
    }
    if (WWS_HAS(ent.ws, open) && ent.ws->open != NULL) {
        w->cur = ent.inst;
        rc = ent.ws->open(w);
        w->cur = NULL;
    }
    wplug_inst_release(ent.inst);
    if (rc == WEFT_OK)
        w->opened = 1;
    else
        ws_close(w, 1008, "refused");
    ws_handler_done(w);
    return WEFT_OK;
}

/* ---- the SDK's weft_ws_* calls ------------------------------------------------ */

weft_plugin *wrt_ws_api_plugin(weft_ws *ws)
{
    return ws != NULL ? ws->cur : NULL;
}

int wrt_ws_api_send(weft_ws *ws, const char *data, size_t len, int binary)
{
    struct evbuffer *out;

    if (ws == NULL || (data == NULL && len > 0))
        return WEFT_EINVAL;
    if (data == NULL)
        data = "";
    if (!binary && !wutf8_valid(data, len))
        return WEFT_EINVAL;
    if (ws->s.ending || ws->s.conn == NULL ||
        (out = wconn_output(ws->s.conn)) == NULL)
        return WEFT_ERR;
    if (evbuffer_get_length(out) > wrt_cfg.send_buffer) {
        wrt_write(&ws->s, "", 0); /* ends it as a slow consumer */
        return WEFT_EBUSY;
    }
    return ws_queue(ws, binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME, data,
                    len);
}

int wrt_ws_api_close(weft_ws *ws, int code, const char *reason)
{
    if (ws == NULL || (code != 1000 && (code < 3000 || code > 4999)))
        return WEFT_EINVAL;
    if (reason != NULL &&
        (strlen(reason) > 123 || !wutf8_valid(reason, strlen(reason))))
        return WEFT_EINVAL;
    ws_close(ws, code, reason);
    return WEFT_OK;
}

int64_t wrt_ws_api_user(weft_ws *ws)
{
    return ws != NULL ? ws->s.user : 0;
}

const char *wrt_ws_api_id(weft_ws *ws)
{
    return ws != NULL ? ws->s.id : "";
}

int wrt_ws_api_subscribe(weft_ws *ws, const char *topic)
{
    int rc;

    if (ws == NULL || topic == NULL || !wtopic_valid(topic, 1))
        return WEFT_EINVAL;
    if (ws->s.ending || ws->s.conn == NULL)
        return WEFT_ERR;
    rc = wrt_subscribe(&ws->s, topic, NULL, 0);
    return rc == 0 ? WEFT_OK : rc == -2 ? WEFT_EBUSY : WEFT_ERR;
}
