/*
 * rttest - the plugin behind the realtime tests: topics with each kind of
 * owner rule, publishing (plain and through the outbox), a bus
 * subscription and a WebSocket endpoint that says which version answers.
 * Its version string comes from the config key `version`, so a test can
 * reload it by editing its section.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

static const weft_config_key rttest_keys[] = {
    {"version", WEFT_CFG_STRING, "v1", 0, 0, "version string it reports"},
    {NULL, 0, NULL, 0, 0, NULL}};

/* Survives reloads: what the bus subscription saw. */
struct rttest_state {
    long long seen;
};

static const char *rttest_version(weft_plugin *p)
{
    const char *v = "v?";

    weft_config_string(p, "version", &v);
    return v;
}

/* Only "rttest.hook.open" is open, to signed-in users. */
static int rttest_hook(weft_plugin *p, const char *topic, int action,
                       int64_t user, unsigned uflags)
{
    (void)p;
    (void)uflags;
    return action == WEFT_TOPIC_SUBSCRIBE && user != 0 &&
                   strcmp(topic, "rttest.hook.open") == 0
               ? WEFT_OK
               : WEFT_EPERM;
}

static void rttest_event(weft_plugin *p, const char *topic, const char *data,
                         size_t len, uint64_t offset, void *arg)
{
    struct rttest_state *st = weft_state(p, sizeof(*st), 1);

    (void)topic;
    (void)data;
    (void)len;
    (void)offset;
    (void)arg;
    if (st == NULL)
        return;
    weft_state_lock(p);
    st->seen++;
    weft_state_unlock(p);
}

/* POST /api/rttest/publish {"topic":..., "data":...} */
static int rttest_publish(weft_req *r)
{
    const char *err = NULL;
    json_t *in = weft_req_json(r, &err);
    const char *topic;
    int rc;

    if (in == NULL)
        return weft_reply_error(r, 400, "bad_json", err);
    topic = json_string_value(json_object_get(in, "topic"));
    rc = topic != NULL ? weft_publish(weft_req_plugin(r), topic,
                                      json_object_get(in, "data"))
                       : WEFT_EINVAL;
    json_decref(in);
    if (rc != WEFT_OK)
        return weft_reply_error(r, 400, "bad_topic", "cannot publish there");
    return weft_reply(r, 202, "application/json", "{\"ok\":true}", 11);
}

/* POST /api/rttest/outbox {"topic", "data", "commit": bool} */
struct rttest_ob {
    json_t *in;
    int step;
};

static void rttest_ob_done(weft_req *r, weft_tx *tx, const weft_db_res *res,
                           void *arg)
{
    struct rttest_ob *ob = arg;
    int commit = json_is_true(json_object_get(ob->in, "commit"));

    (void)tx;
    if (!weft_db_ok(res))
        weft_db_reply_error(r, res);
    else
        weft_reply(r, 200, "application/json",
                   commit ? "{\"committed\":true}" : "{\"committed\":false}",
                   commit ? 18 : 19);
    json_decref(ob->in);
    free(ob);
}

static void rttest_ob_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                           void *arg)
{
    struct rttest_ob *ob = arg;
    const char *topic = json_string_value(json_object_get(ob->in, "topic"));

    if (tx == NULL || !weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        if (tx == NULL || weft_tx_end(tx, 0, rttest_ob_done, ob) != WEFT_OK) {
            json_decref(ob->in);
            free(ob);
        }
        return;
    }
    if (ob->step++ == 0) {
        if (weft_tx_publish(tx, topic != NULL ? topic : "",
                            json_object_get(ob->in, "data"), rttest_ob_step,
                            ob) != WEFT_OK) {
            weft_reply_error(r, 400, "bad_topic", "cannot publish there");
            weft_tx_end(tx, 0, rttest_ob_done, ob);
        }
        return;
    }
    weft_tx_end(tx, json_is_true(json_object_get(ob->in, "commit")),
                rttest_ob_done, ob);
}

static int rttest_outbox(weft_req *r)
{
    const char *err = NULL;
    struct rttest_ob *ob = calloc(1, sizeof(*ob));

    if (ob == NULL)
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    ob->in = weft_req_json(r, &err);
    if (ob->in == NULL) {
        free(ob);
        return weft_reply_error(r, 400, "bad_json", err);
    }
    if (weft_tx_begin(r, rttest_ob_step, ob) != WEFT_OK) {
        json_decref(ob->in);
        free(ob);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}

/* GET /api/rttest/seen: messages the subscription got, and the version. */
static int rttest_seen(weft_req *r)
{
    weft_plugin *p = weft_req_plugin(r);
    struct rttest_state *st = weft_state(p, sizeof(*st), 1);
    long long n = 0;
    json_t *j;
    int rc;

    if (st != NULL) {
        weft_state_lock(p);
        n = st->seen;
        weft_state_unlock(p);
    }
    j = json_pack("{s:I, s:s}", "seen", (json_int_t)n, "version",
                  rttest_version(p));
    rc = weft_reply_json(r, 200, j);
    json_decref(j);
    return rc;
}

/* The echo endpoint: every answer names the version that gave it. */
static int rttest_ws_open(weft_ws *ws)
{
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "{\"hello\":\"%s\",\"user\":%lld}",
                     rttest_version(weft_ws_plugin(ws)),
                     (long long)weft_ws_user(ws));

    weft_ws_send(ws, buf, (size_t)n, 0);
    return WEFT_OK;
}

static void rttest_ws_message(weft_ws *ws, const char *data, size_t len,
                              int binary)
{
    const char *v = rttest_version(weft_ws_plugin(ws));
    json_t *j;
    char *s;

    if (len == 4 && memcmp(data, "quit", 4) == 0) {
        weft_ws_close(ws, 4000, "bye");
        return;
    }
    if (len > 4 && memcmp(data, "sub ", 4) == 0) {
        char topic[128];
        snprintf(topic, sizeof(topic), "%.*s", (int)(len - 4), data + 4);
        weft_ws_subscribe(ws, topic);
        return;
    }
    j = json_pack("{s:s, s:s%, s:b}", "version", v, "echo", data, len,
                  "binary", binary);
    s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s != NULL)
        weft_ws_send(ws, s, strlen(s), 0);
    free(s);
    json_decref(j);
}

static const weft_ws_handlers rttest_ws = {
    .struct_size = sizeof(weft_ws_handlers),
    .open = rttest_ws_open,
    .message = rttest_ws_message,
    .close = NULL,
};

static int rttest_init(weft_plugin *p)
{
    if (weft_topic(p, "rttest.user.*", WEFT_TOPIC_OWNER, NULL) ||
        weft_topic(p, "rttest.public.>",
                   WEFT_TOPIC_PUBLIC | WEFT_TOPIC_CLIENT_PUBLISH, NULL) ||
        weft_topic(p, "rttest.hook.*", 0, rttest_hook) ||
        weft_topic(p, "rttest.closed.>", 0, NULL) ||
        weft_subscribe(p, "rttest.public.>", rttest_event, NULL) ||
        weft_route(p, "POST", "/api/rttest/publish", 0, rttest_publish) ||
        weft_route(p, "POST", "/api/rttest/outbox", 0, rttest_outbox) ||
        weft_route(p, "GET", "/api/rttest/seen", 0, rttest_seen) ||
        weft_ws_route(p, "/api/rttest/echo", 0, &rttest_ws))
        return WEFT_ERR;
    return WEFT_OK;
}

static const weft_plugin_desc rttest_desc = {
    WEFT_DESC_HEADER,
    .name = "rttest",
    .version = "1.0",
    .summary = "realtime test plugin",
    .config = rttest_keys,
    .init = rttest_init,
    .assets = "rttest.web",
};

WEFT_PLUGIN(rttest_desc)
