/*
 * nullargs - the plugin behind tests/integration/test_sdkargs.c: its routes
 * call every member of struct weft_api with NULL handles, NULL strings,
 * out-of-range numbers and in the wrong state, both through the inline
 * wrappers of weft.h and straight through the table (as a plugin built
 * with an older header, or one that calls weft_api_of(h)->member, does),
 * and answer what each call returned next to what weft.h promises.
 *
 * Every probe names the table member it exercises; the answers list the
 * members covered, and the test compares them with the table's size, so a
 * member added to struct weft_api without a probe here fails the test.
 *
 * With the config key init_bad = true, init also calls the init-only
 * members with bad arguments on its own (valid) handle; each of those is
 * refused and recorded as a failure, so that version is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

static const weft_config_key na_keys[] = {
    {"init_bad", WEFT_CFG_BOOL, "false", 0, 0,
     "call the init-only members with bad arguments (refuses the version)"},
    {NULL, 0, NULL, 0, 0, NULL}};

typedef void (*na_fnptr)(void);

/* The table's members as slots 0..N-1 (every member is a function). */
#define NA_SLOT(m)                                                            \
    ((offsetof(weft_api, m) - offsetof(weft_api, plugin_name)) /              \
     sizeof(na_fnptr))
#define NA_MEMBERS                                                            \
    ((sizeof(weft_api) - offsetof(weft_api, plugin_name)) / sizeof(na_fnptr))

/* One route's probes: [{"member", "what", "got", "want"}] and the slots. */
struct na_run {
    json_t *probes;
    unsigned char seen[NA_MEMBERS];
};

static void na_add(struct na_run *run, size_t slot, const char *what,
                   json_t *got, json_t *want)
{
    if (slot < NA_MEMBERS)
        run->seen[slot] = 1;
    json_array_append_new(run->probes,
                          json_pack("{s:I,s:s,s:o,s:o}", "slot",
                                    (json_int_t)slot, "what", what, "got",
                                    got ? got : json_null(), "want",
                                    want ? want : json_null()));
}

static json_t *na_strj(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static void na_int(struct na_run *run, size_t slot, const char *what,
                   long long got, long long want)
{
    na_add(run, slot, what, json_integer(got), json_integer(want));
}

static void na_str(struct na_run *run, size_t slot, const char *what,
                   const char *got, const char *want)
{
    na_add(run, slot, what, na_strj(got), na_strj(want));
}

/* A pointer result: only whether it is NULL matters. */
static void na_ptr(struct na_run *run, size_t slot, const char *what,
                   const void *got, int want_null)
{
    na_add(run, slot, what, json_string(got == NULL ? "NULL" : "non-NULL"),
           json_string(want_null ? "NULL" : "non-NULL"));
}

/* A void call: reaching the next line is the result. */
static void na_void(struct na_run *run, size_t slot, const char *what)
{
    na_add(run, slot, what, json_string("returned"), json_string("returned"));
}

#define NA_I(m, what, expr, want) na_int(run, NA_SLOT(m), what, (expr), want)
#define NA_S(m, what, expr, want) na_str(run, NA_SLOT(m), what, (expr), want)
#define NA_P(m, what, expr, wnull) na_ptr(run, NA_SLOT(m), what, (expr), wnull)
#define NA_V(m, what, stmt)                                                   \
    do {                                                                      \
        stmt;                                                                 \
        na_void(run, NA_SLOT(m), what);                                       \
    } while (0)

static int na_run_init(struct na_run *run)
{
    memset(run, 0, sizeof(*run));
    run->probes = json_array();
    return run->probes != NULL ? 0 : -1;
}

/* {"probes": [...], "covered": [slots], "members": N} (new reference). */
static json_t *na_run_json(struct na_run *run)
{
    json_t *cov = json_array();

    for (size_t k = 0; k < NA_MEMBERS; k++)
        if (run->seen[k])
            json_array_append_new(cov, json_integer((json_int_t)k));
    return json_pack("{s:o,s:o,s:I}", "probes", run->probes, "covered", cov,
                     "members", (json_int_t)NA_MEMBERS);
}

/* Survives reloads: what init and the signup step saw (JSON text). */
struct na_state {
    char init[16384];
    char init_bad[16384]; /* kept by a refused version for the next one */
    char signup[8192];
    char after[8192];
    char ws_close[4096];
};

static void na_keep(weft_plugin *p, char *dst, size_t size, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    weft_state_lock(p);
    snprintf(dst, size, "%s", s != NULL ? s : "null");
    weft_state_unlock(p);
    free(s);
}

static int na_answer_kept(weft_req *r, const char *which)
{
    struct na_state *st =
        weft_state(weft_req_plugin(r), sizeof(struct na_state), 1);
    char *copy;
    int rc;

    if (st == NULL)
        return weft_reply_error(r, 503, "no_state", "no state slot");
    weft_state_lock(weft_req_plugin(r));
    copy = strdup(strcmp(which, "init") == 0       ? st->init
                  : strcmp(which, "init_bad") == 0 ? st->init_bad
                  : strcmp(which, "signup") == 0   ? st->signup
                  : strcmp(which, "ws_close") == 0 ? st->ws_close
                                                   : st->after);
    weft_state_unlock(weft_req_plugin(r));
    if (copy == NULL)
        return weft_reply_error(r, 503, "oom", "out of memory");
    rc = weft_reply(r, 200, "application/json", copy, strlen(copy));
    free(copy);
    return rc;
}

/* The table's log and fail members take a va_list. */
static void na_logv(const weft_api *a, weft_plugin *p, int level,
                    const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    a->plugin_logv(p, level, fmt, ap);
    va_end(ap);
}

static void na_failv(const weft_api *a, weft_plugin *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    a->plugin_fail(p, fmt, ap);
    va_end(ap);
}

static void na_req_logv(const weft_api *a, weft_req *r, int level,
                        const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    a->req_logv(r, level, fmt, ap);
    va_end(ap);
}

static int na_handler(weft_req *r)
{
    return weft_reply(r, 204, NULL, NULL, 0);
}

static void na_event(weft_plugin *p, const char *topic, const char *data,
                     size_t len, uint64_t offset, void *arg)
{
    (void)p;
    (void)topic;
    (void)data;
    (void)len;
    (void)offset;
    (void)arg;
}

static void na_ws_message(weft_ws *ws, const char *data, size_t len,
                          int binary)
{
    (void)ws;
    (void)data;
    (void)len;
    (void)binary;
}

static void na_work(void *arg)
{
    (void)arg;
}

static void na_done(weft_req *r, void *arg)
{
    (void)r;
    (void)arg;
}

static void na_db_cb(weft_req *r, const weft_db_res *res, void *arg)
{
    (void)r;
    (void)res;
    (void)arg;
}

static void na_tx_cb(weft_req *r, weft_tx *tx, const weft_db_res *res,
                     void *arg)
{
    (void)r;
    (void)tx;
    (void)res;
    (void)arg;
}

static void na_signup_step(weft_req *r, weft_tx *tx, int64_t uid,
                           json_t *body, void *arg);
static const weft_ws_handlers na_ws_h;

/* ---- the init-only members, called with a NULL plugin (during init) -- */

static const weft_ws_handlers na_ws_ok = {sizeof(weft_ws_handlers), NULL,
                                          na_ws_message, NULL};
static const weft_ws_handlers na_ws_short = {0, NULL, na_ws_message, NULL};

static void na_probe_init_null(struct na_run *run, const weft_api *a)
{
    NA_I(route, "weft_route(NULL)",
         weft_route(NULL, "GET", "/api/nullargs/x", 0, na_handler),
         WEFT_EINVAL);
    NA_I(route, "api->route(NULL)",
         a->route(NULL, "GET", "/api/nullargs/x", 0, na_handler), WEFT_EINVAL);
    NA_I(topic, "weft_topic(NULL)",
         weft_topic(NULL, "nullargs.x", WEFT_TOPIC_PUBLIC, NULL), WEFT_EINVAL);
    NA_I(topic, "api->topic(NULL)",
         a->topic(NULL, "nullargs.x", WEFT_TOPIC_PUBLIC, NULL), WEFT_EINVAL);
    NA_I(subscribe, "weft_subscribe(NULL)",
         weft_subscribe(NULL, "nullargs.>", na_event, NULL), WEFT_EINVAL);
    NA_I(subscribe, "api->subscribe(NULL)",
         a->subscribe(NULL, "nullargs.>", na_event, NULL), WEFT_EINVAL);
    NA_I(ws_route, "weft_ws_route(NULL)",
         weft_ws_route(NULL, "/api/nullargs/ws2", 0, &na_ws_ok), WEFT_EINVAL);
    NA_I(ws_route, "api->ws_route(NULL)",
         a->ws_route(NULL, "/api/nullargs/ws2", 0, &na_ws_ok), WEFT_EINVAL);
    NA_I(on_signup, "weft_on_signup(NULL)",
         weft_on_signup(NULL, na_signup_step, NULL), WEFT_EINVAL);
    NA_I(on_signup, "api->on_signup(NULL)",
         a->on_signup(NULL, na_signup_step, NULL), WEFT_EINVAL);
    NA_V(plugin_fail, "api->plugin_fail(NULL)",
         na_failv(a, NULL, "%s", "no plugin"));
}

/* With init_bad: the same members, with the plugin's own handle and bad
 * arguments. Each is refused and recorded (so this version is refused). */
static void na_probe_init_bad(struct na_run *run, weft_plugin *p,
                              const weft_api *a)
{
    NA_I(route, "route NULL method",
         weft_route(p, NULL, "/api/nullargs/a", 0, na_handler), WEFT_EINVAL);
    NA_I(route, "route NULL pattern", weft_route(p, "GET", NULL, 0, na_handler),
         WEFT_EINVAL);
    NA_I(route, "route NULL handler",
         weft_route(p, "GET", "/api/nullargs/b", 0, NULL), WEFT_EINVAL);
    NA_I(route, "route unknown flags",
         weft_route(p, "GET", "/api/nullargs/c", 0xff00u, na_handler),
         WEFT_EINVAL);
    NA_I(topic, "topic NULL", weft_topic(p, NULL, 0, NULL), WEFT_EINVAL);
    NA_I(topic, "topic unknown flags",
         weft_topic(p, "nullargs.y", 0x100u, NULL), WEFT_EINVAL);
    NA_I(subscribe, "subscribe NULL pattern",
         weft_subscribe(p, NULL, na_event, NULL), WEFT_EINVAL);
    NA_I(subscribe, "subscribe NULL fn",
         weft_subscribe(p, "nullargs.>", NULL, NULL), WEFT_EINVAL);
    NA_I(ws_route, "ws_route NULL handlers",
         weft_ws_route(p, "/api/nullargs/w1", 0, NULL), WEFT_EINVAL);
    NA_I(ws_route, "ws_route struct_size 0",
         weft_ws_route(p, "/api/nullargs/w2", 0, &na_ws_short), WEFT_EINVAL);
    NA_I(on_signup, "on_signup NULL fn", weft_on_signup(p, NULL, NULL),
         WEFT_EINVAL);
    NA_V(plugin_fail, "api->plugin_fail(p, NULL)", na_failv(a, p, NULL));
    NA_V(plugin_logv, "api->plugin_logv(p, 99, NULL)",
         na_logv(a, p, 99, NULL));
}

static int na_probe(weft_req *r);
static int na_db(weft_req *r);
static int na_stream(weft_req *r);
static int na_kept(weft_req *r);
static int na_status42(weft_req *r);

static int na_init(weft_plugin *p)
{
    const weft_api *a = weft_api_of(p);
    struct na_state *st = weft_state(p, sizeof(struct na_state), 1);
    struct na_run run;
    int bad = 0;
    json_t *j;

    if (st == NULL || na_run_init(&run) != 0) {
        weft_plugin_fail(p, "out of memory");
        return WEFT_ERR;
    }
    na_probe_init_null(&run, a);
    if (weft_config_bool(p, "init_bad", &bad) == WEFT_OK && bad)
        na_probe_init_bad(&run, p, a);
    j = na_run_json(&run);
    if (bad)
        na_keep(p, st->init_bad, sizeof(st->init_bad), j);
    else
        na_keep(p, st->init, sizeof(st->init), j);
    json_decref(j);
    if (bad)
        return WEFT_OK; /* the failures recorded above refuse it */
    if (weft_route(p, "GET", "/api/nullargs/probe", 0, na_probe) != WEFT_OK ||
        weft_route(p, "GET", "/api/nullargs/db", 0, na_db) != WEFT_OK ||
        weft_route(p, "GET", "/api/nullargs/stream", 0, na_stream) !=
            WEFT_OK ||
        weft_route(p, "GET", "/api/nullargs/kept/:which", 0, na_kept) !=
            WEFT_OK ||
        weft_route(p, "GET", "/api/nullargs/status42", 0, na_status42) !=
            WEFT_OK ||
        weft_topic(p, "nullargs.t", WEFT_TOPIC_PUBLIC, NULL) != WEFT_OK ||
        weft_ws_route(p, "/api/nullargs/ws", 0, &na_ws_h) != WEFT_OK ||
        weft_on_signup(p, na_signup_step, NULL) != WEFT_OK)
        return WEFT_ERR;
    return WEFT_OK;
}

/* ---- GET /api/nullargs/probe: every member, no database --------------- */

static void na_probe_plugin(struct na_run *run, weft_req *r,
                            const weft_api *a)
{
    weft_plugin *p = weft_req_plugin(r);
    const char *s = "unset";
    int64_t i64 = 7;
    int b = 7;

    NA_S(plugin_name, "weft_plugin_name(NULL)", weft_plugin_name(NULL), NULL);
    NA_S(plugin_name, "api->plugin_name(NULL)", a->plugin_name(NULL), NULL);
    NA_S(plugin_name, "api->plugin_name(p)", a->plugin_name(p), "nullargs");
    NA_V(plugin_logv, "weft_log(NULL)", weft_log(NULL, WEFT_LOG_INFO, "x"));
    NA_V(plugin_logv, "api->plugin_logv(NULL)",
         na_logv(a, NULL, WEFT_LOG_INFO, "%s", "no plugin"));
    NA_V(plugin_logv, "api->plugin_logv(p, -5, NULL)",
         na_logv(a, p, -5, NULL));
    NA_V(plugin_fail, "weft_plugin_fail(NULL)",
         weft_plugin_fail(NULL, "%s", "x"));
    NA_I(route, "route outside init",
         weft_route(p, "GET", "/api/nullargs/late", 0, na_handler),
         WEFT_EINVAL);
    NA_I(route, "api->route outside init, NULL args",
         a->route(p, NULL, NULL, 0, NULL), WEFT_EINVAL);

    NA_I(config_string, "weft_config_string(NULL)",
         weft_config_string(NULL, "init_bad", &s), WEFT_EINVAL);
    NA_I(config_string, "api->config_string(NULL)",
         a->config_string(NULL, "init_bad", &s), WEFT_EINVAL);
    NA_I(config_string, "config_string NULL key",
         weft_config_string(p, NULL, &s), WEFT_ENOENT);
    NA_I(config_string, "config_string NULL out",
         weft_config_string(p, "init_bad", NULL), WEFT_EINVAL);
    NA_S(config_string, "config_string left *out alone", s, "unset");
    NA_I(config_int, "weft_config_int(NULL)",
         weft_config_int(NULL, "init_bad", &i64), WEFT_EINVAL);
    NA_I(config_int, "api->config_int(NULL)",
         a->config_int(NULL, "init_bad", &i64), WEFT_EINVAL);
    NA_I(config_int, "config_int NULL out",
         weft_config_int(p, "init_bad", NULL), WEFT_EINVAL);
    NA_I(config_int, "config_int of a bool", weft_config_int(p, "init_bad",
                                                             &i64),
         WEFT_EINVAL);
    NA_I(config_int, "config_int undeclared",
         weft_config_int(p, "nope", &i64), WEFT_ENOENT);
    NA_I(config_int, "config_int left *out alone", i64, 7);
    NA_I(config_bool, "weft_config_bool(NULL)",
         weft_config_bool(NULL, "init_bad", &b), WEFT_EINVAL);
    NA_I(config_bool, "api->config_bool(NULL)",
         a->config_bool(NULL, "init_bad", &b), WEFT_EINVAL);
    NA_I(config_bool, "config_bool NULL out",
         weft_config_bool(p, "init_bad", NULL), WEFT_EINVAL);
    NA_I(config_bool, "config_bool NULL key", weft_config_bool(p, NULL, &b),
         WEFT_ENOENT);

    NA_P(state, "weft_state(NULL)", weft_state(NULL, 16, 1), 1);
    NA_P(state, "api->state(NULL)", a->state(NULL, 16, 1), 1);
    NA_P(state, "state size 0", weft_state(p, 0, 1), 1);
    NA_P(state, "state size SIZE_MAX", weft_state(p, SIZE_MAX, 1), 1);
    NA_P(state, "state size (size_t)-1 from an int",
         weft_state(p, (size_t)(int)-1, 2), 1);
    NA_V(state_lock, "weft_state_lock(NULL)", weft_state_lock(NULL));
    NA_V(state_lock, "api->state_lock(NULL)", a->state_lock(NULL));
    NA_V(state_unlock, "weft_state_unlock(NULL)", weft_state_unlock(NULL));
    NA_V(state_unlock, "api->state_unlock(NULL)", a->state_unlock(NULL));
    /* Wrong state: a stray unlock, then a double lock (which must not
     * hang), then the unlock that balances the first lock. */
    NA_V(state_unlock, "state_unlock without the lock", weft_state_unlock(p));
    NA_V(state_lock, "state_lock twice", {
        weft_state_lock(p);
        weft_state_lock(p);
        weft_state_unlock(p);
    });
    NA_V(state_unlock, "state_unlock twice", weft_state_unlock(p));
}

static void na_probe_request(struct na_run *run, weft_req *r,
                             const weft_api *a)
{
    size_t len = 99;
    const char *err = NULL;
    const void *body;

    NA_P(req_plugin, "weft_req_plugin(NULL)", weft_req_plugin(NULL), 1);
    NA_P(req_plugin, "api->req_plugin(NULL)", a->req_plugin(NULL), 1);
    NA_S(req_method, "weft_req_method(NULL)", weft_req_method(NULL), NULL);
    NA_S(req_method, "api->req_method(NULL)", a->req_method(NULL), NULL);
    NA_S(req_path, "weft_req_path(NULL)", weft_req_path(NULL), NULL);
    NA_S(req_path, "api->req_path(NULL)", a->req_path(NULL), NULL);
    NA_S(req_param, "weft_req_param(NULL)", weft_req_param(NULL, "x"), NULL);
    NA_S(req_param, "api->req_param(NULL)", a->req_param(NULL, "x"), NULL);
    NA_S(req_param, "req_param NULL name", a->req_param(r, NULL), NULL);
    NA_S(req_query, "weft_req_query(NULL)", weft_req_query(NULL, "x"), NULL);
    NA_S(req_query, "api->req_query(NULL)", a->req_query(NULL, "x"), NULL);
    NA_S(req_query, "req_query NULL name", a->req_query(r, NULL), NULL);
    NA_S(req_header, "weft_req_header(NULL)", weft_req_header(NULL, "Host"),
         NULL);
    NA_S(req_header, "api->req_header(NULL)", a->req_header(NULL, "Host"),
         NULL);
    NA_S(req_header, "req_header NULL name", a->req_header(r, NULL), NULL);
    NA_S(req_id, "weft_req_id(NULL)", weft_req_id(NULL), NULL);
    NA_S(req_id, "api->req_id(NULL)", a->req_id(NULL), NULL);
    NA_S(req_remote, "weft_req_remote(NULL)", weft_req_remote(NULL), NULL);
    NA_S(req_remote, "api->req_remote(NULL)", a->req_remote(NULL), NULL);
    body = weft_req_body(NULL, &len);
    NA_S(req_body, "weft_req_body(NULL)", (const char *)body, "");
    NA_I(req_body, "weft_req_body(NULL) length", (long long)len, 0);
    len = 99;
    body = a->req_body(NULL, &len);
    NA_S(req_body, "api->req_body(NULL)", (const char *)body, "");
    NA_I(req_body, "api->req_body(NULL) length", (long long)len, 0);
    NA_S(req_body, "api->req_body(NULL, NULL)",
         (const char *)a->req_body(NULL, NULL), "");
    NA_P(req_json, "weft_req_json(NULL)", weft_req_json(NULL, &err), 1);
    NA_S(req_json, "weft_req_json(NULL) error", err, "no request");
    err = NULL;
    NA_P(req_json, "api->req_json(NULL)", a->req_json(NULL, &err), 1);
    NA_S(req_json, "api->req_json(NULL) error", err, "no request");
    NA_P(req_json, "api->req_json(NULL, NULL)", a->req_json(NULL, NULL), 1);
    NA_P(req_json, "req_json without a body, NULL error",
         a->req_json(r, NULL), 1);
    NA_V(req_logv, "weft_req_log(NULL)", weft_req_log(NULL, 1, "x"));
    NA_V(req_logv, "api->req_logv(NULL)",
         na_req_logv(a, NULL, 1, "%s", "x"));
    NA_V(req_logv, "api->req_logv(r, 42, NULL)", na_req_logv(a, r, 42, NULL));

    NA_I(resp_header, "weft_resp_header(NULL)",
         weft_resp_header(NULL, "X-A", "1"), WEFT_EINVAL);
    NA_I(resp_header, "api->resp_header(NULL)",
         a->resp_header(NULL, "X-A", "1"), WEFT_EINVAL);
    NA_I(resp_header, "resp_header NULL name", a->resp_header(r, NULL, "1"),
         WEFT_EINVAL);
    NA_I(resp_header, "resp_header NULL value", a->resp_header(r, "X-A", NULL),
         WEFT_EINVAL);
    NA_I(resp_header, "resp_header X-Weft-Request-Id",
         a->resp_header(r, "X-Weft-Request-Id", "forged"), WEFT_EINVAL);
    NA_I(reply, "weft_reply(NULL)", weft_reply(NULL, 200, NULL, "x", 1),
         WEFT_EINVAL);
    NA_I(reply, "api->reply(NULL)", a->reply(NULL, 200, NULL, "x", 1),
         WEFT_EINVAL);
    NA_I(reply_json, "weft_reply_json(NULL)",
         weft_reply_json(NULL, 200, NULL), WEFT_EINVAL);
    NA_I(reply_json, "api->reply_json(NULL)", a->reply_json(NULL, 200, NULL),
         WEFT_EINVAL);
    NA_I(reply_error, "weft_reply_error(NULL)",
         weft_reply_error(NULL, 400, NULL, NULL), WEFT_EINVAL);
    NA_I(reply_error, "api->reply_error(NULL)",
         a->reply_error(NULL, 400, NULL, NULL), WEFT_EINVAL);
    NA_I(stream_start, "weft_stream_start(NULL)",
         weft_stream_start(NULL, 200, NULL), WEFT_EINVAL);
    NA_I(stream_start, "api->stream_start(NULL)",
         a->stream_start(NULL, 200, NULL), WEFT_EINVAL);
    NA_I(stream_write, "weft_stream_write(NULL)",
         weft_stream_write(NULL, "x", 1), WEFT_EINVAL);
    NA_I(stream_write, "api->stream_write(NULL)",
         a->stream_write(NULL, "x", 1), WEFT_EINVAL);
    NA_I(stream_write, "stream_write before stream_start",
         a->stream_write(r, "x", 1), WEFT_EINVAL);
    NA_I(stream_end, "weft_stream_end(NULL)", weft_stream_end(NULL),
         WEFT_EINVAL);
    NA_I(stream_end, "api->stream_end(NULL)", a->stream_end(NULL),
         WEFT_EINVAL);
    NA_I(stream_end, "stream_end before stream_start", a->stream_end(r),
         WEFT_EINVAL);
    NA_I(defer, "weft_defer(NULL)", weft_defer(NULL, na_work, na_done, NULL),
         WEFT_EINVAL);
    NA_I(defer, "api->defer(NULL)", a->defer(NULL, na_work, na_done, NULL),
         WEFT_EINVAL);
    NA_I(defer, "defer NULL work", a->defer(r, NULL, na_done, NULL),
         WEFT_EINVAL);
    NA_I(defer, "defer NULL done", a->defer(r, na_work, NULL, NULL),
         WEFT_EINVAL);
}

/* The database members that need no result; with a NULL result. */
static void na_probe_db(struct na_run *run, weft_req *r, const weft_api *a)
{
    const char *one[1] = {"1"};
    const char *many[65];
    json_t *j;

    for (int k = 0; k < 65; k++)
        many[k] = "1";
    NA_I(db_query, "weft_db_query(NULL)",
         weft_db_query(NULL, "SELECT 1", 0, NULL, na_db_cb, NULL),
         WEFT_EINVAL);
    NA_I(db_query, "api->db_query(NULL)",
         a->db_query(NULL, "SELECT 1", 0, NULL, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(db_query, "db_query NULL sql",
         a->db_query(r, NULL, 0, NULL, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(db_query, "db_query nparams -1",
         a->db_query(r, "SELECT 1", -1, one, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(db_query, "db_query nparams 65",
         a->db_query(r, "SELECT 1", 65, many, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(db_query, "db_query params NULL, nparams 1",
         a->db_query(r, "SELECT $1", 1, NULL, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(db_query, "db_query NULL callback",
         a->db_query(r, "SELECT 1", 0, NULL, NULL, NULL), WEFT_EINVAL);
    NA_I(tx_begin, "weft_tx_begin(NULL)", weft_tx_begin(NULL, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_begin, "api->tx_begin(NULL)", a->tx_begin(NULL, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_begin, "tx_begin NULL callback", a->tx_begin(r, NULL, NULL),
         WEFT_EINVAL);
    NA_I(tx_query, "weft_tx_query(NULL)",
         weft_tx_query(NULL, "SELECT 1", 0, NULL, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_query, "api->tx_query(NULL)",
         a->tx_query(NULL, "SELECT 1", 0, NULL, na_tx_cb, NULL), WEFT_EINVAL);
    /* A request handle where a transaction is expected: "outside a
     * transaction". */
    NA_I(tx_query, "tx_query on a request handle",
         a->tx_query((weft_tx *)(void *)r, "SELECT 1", 0, NULL, na_tx_cb,
                     NULL),
         WEFT_EINVAL);
    NA_I(tx_end, "weft_tx_end(NULL)", weft_tx_end(NULL, 1, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_end, "api->tx_end(NULL)", a->tx_end(NULL, 1, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_end, "tx_end on a request handle",
         a->tx_end((weft_tx *)(void *)r, 1, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(db_ok, "weft_db_ok(NULL)", weft_db_ok(NULL), 0);
    NA_I(db_ok, "api->db_ok(NULL)", a->db_ok(NULL), 0);
    NA_S(db_error, "weft_db_error(NULL)", weft_db_error(NULL), "no result");
    NA_S(db_error, "api->db_error(NULL)", a->db_error(NULL), "no result");
    NA_S(db_sqlstate, "weft_db_sqlstate(NULL)", weft_db_sqlstate(NULL), NULL);
    NA_S(db_sqlstate, "api->db_sqlstate(NULL)", a->db_sqlstate(NULL), NULL);
    NA_I(db_rows, "weft_db_rows(NULL)", weft_db_rows(NULL), 0);
    NA_I(db_rows, "api->db_rows(NULL)", a->db_rows(NULL), 0);
    NA_I(db_cols, "weft_db_cols(NULL)", weft_db_cols(NULL), 0);
    NA_I(db_cols, "api->db_cols(NULL)", a->db_cols(NULL), 0);
    NA_S(db_colname, "weft_db_colname(NULL)", weft_db_colname(NULL, 0), NULL);
    NA_S(db_colname, "api->db_colname(NULL, -1)", a->db_colname(NULL, -1),
         NULL);
    NA_S(db_value, "weft_db_value(NULL)", weft_db_value(NULL, 0, 0), NULL);
    NA_S(db_value, "api->db_value(NULL, -1, -1)", a->db_value(NULL, -1, -1),
         NULL);
    NA_I(db_isnull, "weft_db_isnull(NULL)", weft_db_isnull(NULL, 0, 0), 1);
    NA_I(db_isnull, "api->db_isnull(NULL)", a->db_isnull(NULL, 0, 0), 1);
    j = weft_db_json(NULL, -1);
    NA_I(db_json, "weft_db_json(NULL, -1) is []",
         json_is_array(j) && json_array_size(j) == 0, 1);
    json_decref(j);
    j = a->db_json(NULL, -1);
    NA_I(db_json, "api->db_json(NULL, -1) is []",
         json_is_array(j) && json_array_size(j) == 0, 1);
    json_decref(j);
    NA_P(db_json, "api->db_json(NULL, 0)", a->db_json(NULL, 0), 1);
    NA_P(db_json, "api->db_json(NULL, -7)", a->db_json(NULL, -7), 1);
    NA_I(db_reply_error, "weft_db_reply_error(NULL)",
         weft_db_reply_error(NULL, NULL), WEFT_EINVAL);
    NA_I(db_reply_error, "api->db_reply_error(NULL)",
         a->db_reply_error(NULL, NULL), WEFT_EINVAL);
}

static void na_probe_identity_bus(struct na_run *run, weft_req *r,
                                  const weft_api *a)
{
    weft_plugin *p = weft_req_plugin(r);
    json_t *d = json_pack("{s:i}", "n", 1);

    NA_I(req_user, "weft_req_user(NULL)", weft_req_user(NULL), 0);
    NA_I(req_user, "api->req_user(NULL)", a->req_user(NULL), 0);
    NA_I(req_has_role, "weft_req_has_role(NULL)",
         weft_req_has_role(NULL, "admin"), 0);
    NA_I(req_has_role, "api->req_has_role(NULL)",
         a->req_has_role(NULL, "admin"), 0);
    NA_I(req_has_role, "req_has_role NULL role", a->req_has_role(r, NULL), 0);
    NA_I(user_profile, "weft_user_profile(NULL)",
         weft_user_profile(NULL, 1, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(user_profile, "api->user_profile(NULL)",
         a->user_profile(NULL, 1, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(user_profile, "user_profile id 0", a->user_profile(r, 0, na_db_cb,
                                                            NULL),
         WEFT_EINVAL);
    NA_I(user_profile, "user_profile id -1",
         a->user_profile(r, -1, na_db_cb, NULL), WEFT_EINVAL);
    NA_I(user_profile, "user_profile NULL callback",
         a->user_profile(r, 1, NULL, NULL), WEFT_EINVAL);

    NA_I(topic, "topic outside init",
         weft_topic(p, "nullargs.late", WEFT_TOPIC_PUBLIC, NULL), WEFT_EINVAL);
    NA_I(publish, "weft_publish(NULL)", weft_publish(NULL, "nullargs.t", d),
         WEFT_EINVAL);
    NA_I(publish, "api->publish(NULL)", a->publish(NULL, "nullargs.t", d),
         WEFT_EINVAL);
    NA_I(publish, "publish NULL topic", a->publish(p, NULL, d), WEFT_EINVAL);
    NA_I(publish, "publish NULL data", a->publish(p, "nullargs.t", NULL),
         WEFT_EINVAL);
    NA_I(publish, "publish another plugin's topic",
         a->publish(p, "todo.user.1", d), WEFT_EINVAL);
    NA_I(subscribe, "subscribe outside init",
         weft_subscribe(p, "nullargs.>", na_event, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "weft_tx_publish(NULL)",
         weft_tx_publish(NULL, "nullargs.t", d, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "api->tx_publish(NULL)",
         a->tx_publish(NULL, "nullargs.t", d, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish on a request handle (no transaction)",
         a->tx_publish((weft_tx *)(void *)r, "nullargs.t", d, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(ws_route, "ws_route outside init",
         weft_ws_route(p, "/api/nullargs/ws3", 0, &na_ws_ok), WEFT_EINVAL);
    NA_P(ws_plugin, "weft_ws_plugin(NULL)", weft_ws_plugin(NULL), 1);
    NA_P(ws_plugin, "api->ws_plugin(NULL)", a->ws_plugin(NULL), 1);
    NA_I(ws_send, "weft_ws_send(NULL)", weft_ws_send(NULL, "x", 1, 0),
         WEFT_EINVAL);
    NA_I(ws_send, "api->ws_send(NULL)", a->ws_send(NULL, "x", 1, 0),
         WEFT_EINVAL);
    NA_I(ws_send, "api->ws_send(NULL, NULL, SIZE_MAX)",
         a->ws_send(NULL, NULL, SIZE_MAX, 1), WEFT_EINVAL);
    NA_I(ws_close, "weft_ws_close(NULL)", weft_ws_close(NULL, 1000, NULL),
         WEFT_EINVAL);
    NA_I(ws_close, "api->ws_close(NULL)", a->ws_close(NULL, 1000, "bye"),
         WEFT_EINVAL);
    NA_I(ws_user, "weft_ws_user(NULL)", weft_ws_user(NULL), 0);
    NA_I(ws_user, "api->ws_user(NULL)", a->ws_user(NULL), 0);
    NA_S(ws_id, "weft_ws_id(NULL)", weft_ws_id(NULL), "");
    NA_S(ws_id, "api->ws_id(NULL)", a->ws_id(NULL), "");
    NA_I(ws_subscribe, "weft_ws_subscribe(NULL)",
         weft_ws_subscribe(NULL, "nullargs.t"), WEFT_EINVAL);
    NA_I(ws_subscribe, "api->ws_subscribe(NULL)",
         a->ws_subscribe(NULL, "nullargs.t"), WEFT_EINVAL);
    NA_I(on_signup, "on_signup outside init",
         weft_on_signup(p, na_signup_step, NULL), WEFT_EINVAL);
    NA_I(signup_done, "weft_signup_done(NULL)",
         weft_signup_done(NULL, 0, NULL, NULL), WEFT_EINVAL);
    NA_I(signup_done, "api->signup_done(NULL)",
         a->signup_done(NULL, 0, NULL, NULL), WEFT_EINVAL);
    NA_I(signup_done, "signup_done outside a signup step",
         a->signup_done(r, 0, NULL, NULL), WEFT_EINVAL);
    json_decref(d);
}

static int na_probe(weft_req *r)
{
    const weft_api *a = weft_api_of(r);
    struct na_run run;
    json_t *j;
    int rc;

    if (na_run_init(&run) != 0)
        return weft_reply_error(r, 503, "oom", "out of memory");
    na_probe_plugin(&run, r, a);
    na_probe_request(&run, r, a);
    na_probe_db(&run, r, a);
    na_probe_identity_bus(&run, r, a);
    j = na_run_json(&run);
    rc = weft_reply_json(r, 200, j);
    json_decref(j);
    return rc;
}

/* ---- GET /api/nullargs/db: results and transactions in every state --- */

struct na_dbrun {
    struct na_run run;
    weft_tx *kept; /* the transaction, kept past its end on purpose */
};

static void na_dbrun_answer(weft_req *r, struct na_dbrun *d)
{
    json_t *j = na_run_json(&d->run);

    weft_reply_json(r, 200, j);
    json_decref(j);
    free(d);
}

static void na_db_ended(weft_req *r, weft_tx *tx, const weft_db_res *res,
                        void *arg)
{
    struct na_dbrun *d = arg;
    struct na_run *run = &d->run;
    const weft_api *a = weft_api_of(r);
    json_t *ev = json_pack("{s:s}", "by", weft_req_id(r));

    NA_P(tx_end, "tx_end callback gets NULL", tx, 1);
    NA_I(db_ok, "COMMIT succeeded", weft_db_ok(res), 1);
    /* The pool's transaction is gone: its handle must say so. */
    NA_I(tx_query, "tx_query after the end",
         weft_tx_query(d->kept, "SELECT 1", 0, NULL, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_query, "api->tx_query after the end",
         a->tx_query(d->kept, "SELECT 1", 0, NULL, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish after the end",
         weft_tx_publish(d->kept, "nullargs.t", ev, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_end, "tx_end after the end",
         weft_tx_end(d->kept, 1, na_tx_cb, NULL), WEFT_EINVAL);
    json_decref(ev);
    na_dbrun_answer(r, d);
}

static void na_db_stepped(weft_req *r, weft_tx *tx, const weft_db_res *res,
                          void *arg)
{
    struct na_dbrun *d = arg;
    struct na_run *run = &d->run;
    json_t *ev = json_pack("{s:s}", "by", weft_req_id(r));

    NA_I(tx_query, "SELECT 2 succeeded", weft_db_ok(res), 1);
    NA_I(tx_end, "tx_end", weft_tx_end(tx, 1, na_db_ended, d), WEFT_OK);
    NA_I(tx_query, "tx_query while ending",
         weft_tx_query(tx, "SELECT 1", 0, NULL, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish while ending",
         weft_tx_publish(tx, "nullargs.t", ev, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_end, "tx_end while ending", weft_tx_end(tx, 0, na_tx_cb, NULL),
         WEFT_EINVAL);
    json_decref(ev);
}

static void na_db_begun(weft_req *r, weft_tx *tx, const weft_db_res *res,
                        void *arg)
{
    struct na_dbrun *d = arg;
    struct na_run *run = &d->run;
    const weft_api *a = weft_api_of(r);
    json_t *ev = json_pack("{s:s}", "by", weft_req_id(r));
    const char *one[1] = {"1"};

    NA_I(tx_begin, "BEGIN succeeded", weft_db_ok(res) && tx != NULL, 1);
    if (tx == NULL) {
        json_decref(ev);
        na_dbrun_answer(r, d);
        return;
    }
    d->kept = tx;
    NA_I(tx_query, "tx_query NULL sql",
         a->tx_query(tx, NULL, 0, NULL, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_query, "tx_query nparams -1",
         a->tx_query(tx, "SELECT 1", -1, one, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_query, "tx_query params NULL",
         a->tx_query(tx, "SELECT $1", 1, NULL, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_query, "tx_query NULL callback",
         a->tx_query(tx, "SELECT 1", 0, NULL, NULL, NULL), WEFT_EINVAL);
    NA_I(tx_end, "tx_end NULL callback", a->tx_end(tx, 1, NULL, NULL),
         WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish NULL topic",
         a->tx_publish(tx, NULL, ev, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish another plugin's topic",
         a->tx_publish(tx, "todo.user.1", ev, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish NULL data",
         a->tx_publish(tx, "nullargs.t", NULL, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish NULL callback",
         a->tx_publish(tx, "nullargs.t", ev, NULL, NULL), WEFT_EINVAL);
    NA_I(tx_query, "tx_query", weft_tx_query(tx, "SELECT 2", 0, NULL,
                                             na_db_stepped, d),
         WEFT_OK);
    /* One statement at a time. */
    NA_I(tx_query, "tx_query while a step runs",
         weft_tx_query(tx, "SELECT 3", 0, NULL, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_end, "tx_end while a step runs",
         weft_tx_end(tx, 1, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish while a step runs",
         weft_tx_publish(tx, "nullargs.t", ev, na_tx_cb, NULL), WEFT_EINVAL);
    json_decref(ev);
}

static void na_db_result(weft_req *r, const weft_db_res *res, void *arg)
{
    struct na_dbrun *d = arg;
    struct na_run *run = &d->run;
    const weft_api *a = weft_api_of(r);
    json_t *j;

    NA_I(db_ok, "SELECT succeeded", weft_db_ok(res), 1);
    NA_S(db_error, "no error", weft_db_error(res), NULL);
    NA_S(db_sqlstate, "no sqlstate", weft_db_sqlstate(res), NULL);
    NA_I(db_rows, "one row", weft_db_rows(res), 1);
    NA_I(db_cols, "two columns", weft_db_cols(res), 2);
    NA_S(db_colname, "colname 0", weft_db_colname(res, 0), "one");
    NA_S(db_colname, "colname -1", a->db_colname(res, -1), NULL);
    NA_S(db_colname, "colname 2", a->db_colname(res, 2), NULL);
    NA_S(db_colname, "colname INT32_MIN", a->db_colname(res, INT32_MIN), NULL);
    NA_S(db_value, "value 0,0", weft_db_value(res, 0, 0), "1");
    NA_S(db_value, "value -1,0", a->db_value(res, -1, 0), NULL);
    NA_S(db_value, "value 1,0", a->db_value(res, 1, 0), NULL);
    NA_S(db_value, "value 0,5", a->db_value(res, 0, 5), NULL);
    NA_S(db_value, "value 0,INT32_MAX", a->db_value(res, 0, INT32_MAX), NULL);
    NA_I(db_isnull, "isnull 0,1", weft_db_isnull(res, 0, 1), 1);
    NA_I(db_isnull, "isnull 0,0", weft_db_isnull(res, 0, 0), 0);
    NA_I(db_isnull, "isnull 9,9", a->db_isnull(res, 9, 9), 1);
    NA_I(db_isnull, "isnull -1,-1", a->db_isnull(res, -1, -1), 1);
    NA_P(db_json, "db_json row -2", a->db_json(res, -2), 1);
    NA_P(db_json, "db_json row 5", a->db_json(res, 5), 1);
    j = weft_db_json(res, -1);
    NA_I(db_json, "db_json all rows", (long long)json_array_size(j), 1);
    json_decref(j);
    NA_I(tx_begin, "tx_begin", weft_tx_begin(r, na_db_begun, d), WEFT_OK);
}

static int na_db(weft_req *r)
{
    struct na_dbrun *d = calloc(1, sizeof(*d));
    int rc;

    if (d == NULL || na_run_init(&d->run) != 0) {
        free(d);
        return weft_reply_error(r, 503, "oom", "out of memory");
    }
    rc = weft_db_query(r, "SELECT 1 AS one, NULL::text AS n", 0, NULL,
                       na_db_result, d);
    if (rc != WEFT_OK) {
        json_decref(d->run.probes);
        free(d);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}

/* ---- GET /api/nullargs/stream: a streamed answer in every state ------- */

static int na_stream(weft_req *r)
{
    struct na_state *st =
        weft_state(weft_req_plugin(r), sizeof(struct na_state), 1);
    const weft_api *a = weft_api_of(r);
    struct na_run first, after, *run = &first;
    char *text;
    json_t *j;

    if (st == NULL || na_run_init(&first) != 0 || na_run_init(&after) != 0)
        return weft_reply_error(r, 503, "oom", "out of memory");
    NA_I(stream_start, "stream_start status 99",
         a->stream_start(r, 99, "text/plain"), WEFT_EINVAL);
    NA_I(stream_start, "stream_start status 600",
         a->stream_start(r, 600, "text/plain"), WEFT_EINVAL);
    NA_I(stream_start, "stream_start CR in type",
         a->stream_start(r, 200, "text/plain\r\nX-Evil: 1"), WEFT_EINVAL);
    NA_I(stream_start, "stream_start", weft_stream_start(r, 200,
                                                         "application/json"),
         WEFT_OK);
    NA_I(stream_start, "stream_start twice", a->stream_start(r, 200, NULL),
         WEFT_EINVAL);
    NA_I(reply, "reply while streaming", a->reply(r, 200, NULL, "x", 1),
         WEFT_EINVAL);
    NA_I(reply_json, "reply_json while streaming",
         a->reply_json(r, 200, NULL), WEFT_EINVAL);
    NA_I(reply_error, "reply_error while streaming",
         a->reply_error(r, 500, "x", "y"), WEFT_EINVAL);
    NA_I(resp_header, "resp_header after the head",
         a->resp_header(r, "X-Late", "1"), WEFT_EINVAL);
    NA_I(stream_write, "stream_write NULL data, length 5",
         a->stream_write(r, NULL, 5), WEFT_EINVAL);
    NA_I(stream_write, "stream_write length SIZE_MAX",
         a->stream_write(r, "x", SIZE_MAX), WEFT_EINVAL);
    NA_I(stream_write, "stream_write length (size_t)-1 from an int",
         a->stream_write(r, "x", (size_t)(int)-1), WEFT_EINVAL);
    NA_I(stream_write, "stream_write NULL data, length 0",
         a->stream_write(r, NULL, 0), WEFT_OK);
    j = na_run_json(&first);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    run = &after;
    NA_I(stream_write, "stream_write", weft_stream_write(r, text,
                                                         strlen(text)),
         WEFT_OK);
    free(text);
    NA_I(stream_end, "stream_end", weft_stream_end(r), WEFT_OK);
    /* After the last chunk: anything written now would be read as the
     * next answer on this connection. */
    NA_I(stream_write, "stream_write after the end",
         a->stream_write(r, "junk", 4), WEFT_EINVAL);
    NA_I(stream_end, "stream_end twice", a->stream_end(r), WEFT_EINVAL);
    NA_I(reply, "reply after the end", a->reply(r, 200, NULL, "junk", 4),
         WEFT_EINVAL);
    NA_I(db_reply_error, "db_reply_error after the end",
         a->db_reply_error(r, NULL), WEFT_EINVAL);
    NA_I(defer, "defer after the end", a->defer(r, na_work, na_done, NULL),
         WEFT_EINVAL);
    j = na_run_json(&after);
    na_keep(weft_req_plugin(r), st->after, sizeof(st->after), j);
    json_decref(j);
    return WEFT_OK;
}

/* GET /api/nullargs/kept/{init,init_bad,signup,after,ws_close} */
static int na_kept(weft_req *r)
{
    const char *w = weft_req_param(r, "which");

    if (w == NULL ||
        (strcmp(w, "init") != 0 && strcmp(w, "init_bad") != 0 &&
         strcmp(w, "signup") != 0 && strcmp(w, "after") != 0 &&
         strcmp(w, "ws_close") != 0))
        return weft_reply_error(r, 404, "not_found",
                                "init, init_bad, signup, after, ws_close");
    return na_answer_kept(r, w);
}

/* A status outside 200..599 is answered as 500. */
static int na_status42(weft_req *r)
{
    return weft_reply(r, 42, "text/plain", "x", 1);
}

/* ---- the signup step: a lent transaction ------------------------------ */

struct na_signup {
    struct na_run run;
    weft_tx *tx;
};

static void na_signup_stepped(weft_req *r, weft_tx *tx, const weft_db_res *res,
                              void *arg)
{
    struct na_signup *s = arg;
    struct na_run *run = &s->run;
    struct na_state *st =
        weft_state(weft_req_plugin(r), sizeof(struct na_state), 1);
    weft_plugin *p = weft_req_plugin(r);
    json_t *ev = json_pack("{s:s}", "by", weft_req_id(r));
    json_t *j;

    (void)tx;
    NA_I(tx_query, "the step's statement succeeded", weft_db_ok(res), 1);
    NA_I(signup_done, "signup_done", weft_signup_done(r, WEFT_OK, NULL, NULL),
         WEFT_OK);
    NA_I(signup_done, "signup_done twice",
         weft_signup_done(r, WEFT_OK, NULL, NULL), WEFT_EINVAL);
    NA_I(tx_query, "tx_query after signup_done",
         weft_tx_query(s->tx, "SELECT 1", 0, NULL, na_tx_cb, NULL),
         WEFT_EINVAL);
    NA_I(tx_publish, "tx_publish after signup_done",
         weft_tx_publish(s->tx, "nullargs.t", ev, na_tx_cb, NULL),
         WEFT_EINVAL);
    json_decref(ev);
    j = na_run_json(run);
    if (st != NULL)
        na_keep(p, st->signup, sizeof(st->signup), j);
    json_decref(j);
    free(s);
}

static void na_signup_step(weft_req *r, weft_tx *tx, int64_t uid,
                           json_t *body, void *arg)
{
    struct na_signup *s = calloc(1, sizeof(*s));
    struct na_run *run;
    const weft_api *a = weft_api_of(r);
    int rc;

    (void)uid;
    (void)body;
    (void)arg;
    if (s == NULL || na_run_init(&s->run) != 0) {
        free(s);
        weft_signup_done(r, 503, "oom", "out of memory");
        return;
    }
    run = &s->run;
    s->tx = tx;
    NA_I(tx_end, "tx_end on the step's transaction",
         a->tx_end(tx, 1, na_tx_cb, NULL), WEFT_EINVAL);
    NA_I(reply, "reply during the step", a->reply(r, 200, NULL, "x", 1),
         WEFT_EINVAL);
    NA_I(reply_json, "reply_json during the step",
         a->reply_json(r, 200, NULL), WEFT_EINVAL);
    NA_I(db_reply_error, "db_reply_error during the step",
         a->db_reply_error(r, NULL), WEFT_EINVAL);
    NA_I(stream_start, "stream_start during the step",
         a->stream_start(r, 200, NULL), WEFT_EINVAL);
    rc = weft_tx_query(tx, "SELECT 1", 0, NULL, na_signup_stepped, s);
    if (rc != WEFT_OK) {
        json_decref(s->run.probes);
        free(s);
        weft_signup_done(r, 503, "unavailable", "the step's statement failed");
    }
}

/* ---- GET /api/nullargs/ws: a live session, then a closing one ------- */

static int na_ws_open(weft_ws *ws)
{
    const weft_api *a = weft_api_of(ws);
    struct na_run r0, *run = &r0;
    char reason[200];
    char *text;
    json_t *j;
    int rc;

    if (na_run_init(&r0) != 0)
        return WEFT_ERR;
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    NA_P(ws_plugin, "ws_plugin in open", weft_ws_plugin(ws), 0);
    NA_P(ws_plugin, "api->ws_plugin in open", a->ws_plugin(ws), 0);
    NA_I(ws_send, "ws_send NULL data, length 5", a->ws_send(ws, NULL, 5, 0),
         WEFT_EINVAL);
    NA_I(ws_send, "ws_send text that is not UTF-8",
         a->ws_send(ws, "\xff\xfe", 2, 0), WEFT_EINVAL);
    NA_I(ws_send, "ws_send length SIZE_MAX", a->ws_send(ws, "x", SIZE_MAX, 1),
         WEFT_EINVAL);
    NA_I(ws_send, "ws_send length (size_t)-1 from an int",
         a->ws_send(ws, "x", (size_t)(int)-1, 0), WEFT_EINVAL);
    NA_I(ws_close, "ws_close code 999", a->ws_close(ws, 999, NULL),
         WEFT_EINVAL);
    NA_I(ws_close, "ws_close code 2000", a->ws_close(ws, 2000, NULL),
         WEFT_EINVAL);
    NA_I(ws_close, "ws_close code 5000", a->ws_close(ws, 5000, NULL),
         WEFT_EINVAL);
    NA_I(ws_close, "ws_close reason of 199 bytes",
         a->ws_close(ws, 1000, reason), WEFT_EINVAL);
    NA_I(ws_close, "ws_close reason not UTF-8", a->ws_close(ws, 1000, "\xff"),
         WEFT_EINVAL);
    NA_I(ws_user, "ws_user signed out", weft_ws_user(ws), 0);
    NA_I(ws_id, "ws_id not empty", weft_ws_id(ws)[0] != '\0', 1);
    NA_I(ws_subscribe, "ws_subscribe NULL", a->ws_subscribe(ws, NULL),
         WEFT_EINVAL);
    NA_I(ws_subscribe, "ws_subscribe not a topic",
         a->ws_subscribe(ws, "not a topic!"), WEFT_EINVAL);
    NA_I(ws_subscribe, "ws_subscribe empty", a->ws_subscribe(ws, ""),
         WEFT_EINVAL);
    j = na_run_json(&r0);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    rc = text != NULL ? weft_ws_send(ws, text, strlen(text), 0) : WEFT_ERR;
    free(text);
    return rc;
}

static void na_ws_close(weft_ws *ws, int code)
{
    weft_plugin *p = weft_ws_plugin(ws);
    struct na_state *st =
        p != NULL ? weft_state(p, sizeof(struct na_state), 1) : NULL;
    struct na_run r0, *run = &r0;
    json_t *j;

    (void)code;
    if (st == NULL || na_run_init(&r0) != 0)
        return;
    /* The session is ending: sends and subscriptions are refused. */
    NA_I(ws_send, "ws_send from close()", weft_ws_send(ws, "x", 1, 0),
         WEFT_ERR);
    NA_I(ws_subscribe, "ws_subscribe from close()",
         weft_ws_subscribe(ws, "nullargs.t"), WEFT_ERR);
    j = na_run_json(&r0);
    na_keep(p, st->ws_close, sizeof(st->ws_close), j);
    json_decref(j);
}

static const weft_ws_handlers na_ws_h = {sizeof(weft_ws_handlers), na_ws_open,
                                         na_ws_message, na_ws_close};

static const weft_plugin_desc na_desc = {
    WEFT_DESC_HEADER,
    .name = "nullargs",
    .version = "1.0",
    .summary = "calls every SDK member with bad arguments (tests)",
    .config = na_keys,
    .init = na_init,
};

WEFT_PLUGIN(na_desc)
