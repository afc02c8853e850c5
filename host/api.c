/* api.c - the function table handed to plugins (struct weft_api, ABI 1.0).
 * Append-only: new members go at the end, with WEFT_ABI_MINOR bumped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "db.h"
#include "http_conn.h"
#include "log.h"
#include "plugin.h"
#include "request.h"
#include "bus.h"
#include "registry.h"
#include "rt_ws.h"
#include "signup.h"

#define WAPI_INST(p) ((struct weft_plugin *)(void *)(p))
#define WAPI_REQ(r) ((struct weft_req *)(r))

static int wapi_level(int level)
{
    return level < WLOG_ERROR ? WLOG_ERROR : level > WLOG_DEBUG ? WLOG_DEBUG
                                                                : level;
}

static const char *wapi_plugin_name(weft_plugin *p)
{
    return WAPI_INST(p)->slot->name;
}

__attribute__((format(printf, 3, 0))) static void
wapi_plugin_logv(weft_plugin *p, int level, const char *fmt, va_list ap)
{
    wlog_v(wapi_level(level), WAPI_INST(p)->comp, NULL, fmt, ap);
}

__attribute__((format(printf, 2, 0))) static void
wapi_plugin_fail(weft_plugin *p, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    wdiag_add(&WAPI_INST(p)->fail, NULL, 0, "%s", msg);
    wlog(WLOG_ERROR, WAPI_INST(p)->comp, "%s", msg);
}

static int wapi_route(weft_plugin *p, const char *method, const char *pattern,
                      unsigned flags, weft_handler_fn fn)
{
    return wplug_route(WAPI_INST(p), method, pattern, flags, fn);
}

static const struct wplug_cfgval *wapi_cfg(weft_plugin *p, const char *key)
{
    const struct wplug_cfgval *v = key ? wplug_cfg(WAPI_INST(p), key) : NULL;

    if (v == NULL)
        wlog(WLOG_WARN, WAPI_INST(p)->comp,
             "config key '%s' is not declared in the plugin's table",
             key ? key : "(null)");
    return v;
}

static int wapi_config_string(weft_plugin *p, const char *key,
                              const char **out)
{
    const struct wplug_cfgval *v = wapi_cfg(p, key);

    if (v == NULL)
        return WEFT_ENOENT;
    *out = v->str;
    return WEFT_OK;
}

static int wapi_config_int(weft_plugin *p, const char *key, int64_t *out)
{
    const struct wplug_cfgval *v = wapi_cfg(p, key);

    if (v == NULL)
        return WEFT_ENOENT;
    if (v->type == WEFT_CFG_STRING || v->type == WEFT_CFG_BOOL)
        return WEFT_EINVAL;
    *out = v->num;
    return WEFT_OK;
}

static int wapi_config_bool(weft_plugin *p, const char *key, int *out)
{
    const struct wplug_cfgval *v = wapi_cfg(p, key);

    if (v == NULL)
        return WEFT_ENOENT;
    if (v->type != WEFT_CFG_BOOL)
        return WEFT_EINVAL;
    *out = (int)v->num;
    return WEFT_OK;
}

static void *wapi_state(weft_plugin *p, size_t size, uint32_t layout)
{
    return wplug_state(WAPI_INST(p), size, layout);
}

static void wapi_state_lock(weft_plugin *p)
{
    pthread_mutex_lock(&WAPI_INST(p)->slot->user_mu);
}

static void wapi_state_unlock(weft_plugin *p)
{
    pthread_mutex_unlock(&WAPI_INST(p)->slot->user_mu);
}

static weft_plugin *wapi_req_plugin(weft_req *r)
{
    return (weft_plugin *)(void *)WAPI_REQ(r)->inst;
}

static const char *wapi_req_method(weft_req *r)
{
    return WAPI_REQ(r)->head.method;
}

static const char *wapi_req_path(weft_req *r)
{
    return WAPI_REQ(r)->path;
}

static const char *wapi_req_param(weft_req *r, const char *name)
{
    const struct wmatch *m = &WAPI_REQ(r)->match;

    for (int i = 0; name != NULL && i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return m->params[i].value;
    return NULL;
}

static const char *wapi_req_query(weft_req *r, const char *name)
{
    struct weft_req *q = WAPI_REQ(r);
    size_t n = strlen(q->query) + 1;
    char *buf;
    int rc;

    if (name == NULL || q->query[0] == '\0')
        return NULL;
    buf = malloc(n);
    if (buf == NULL)
        return NULL;
    rc = whttp_query_get(q->query, name, buf, n);
    if (rc != 0) {
        free(buf);
        return NULL;
    }
    return wreq_keep(q, buf);
}

static const char *wapi_req_header(weft_req *r, const char *name)
{
    return name ? whttp_header(&WAPI_REQ(r)->head, name) : NULL;
}

static const char *wapi_req_id(weft_req *r)
{
    return WAPI_REQ(r)->rid;
}

static const char *wapi_req_remote(weft_req *r)
{
    return WAPI_REQ(r)->conn->remote;
}

static const void *wapi_req_body(weft_req *r, size_t *len)
{
    struct weft_req *q = WAPI_REQ(r);
    size_t n = evbuffer_get_length(q->body);

    if (q->body_flat == NULL) {
        q->body_flat = malloc(n + 1);
        if (q->body_flat == NULL) {
            if (len != NULL)
                *len = 0;
            return "";
        }
        evbuffer_copyout(q->body, q->body_flat, n);
        q->body_flat[n] = '\0';
    }
    if (len != NULL)
        *len = n;
    return q->body_flat;
}

static json_t *wapi_req_json(weft_req *r, const char **error)
{
    struct weft_req *q = WAPI_REQ(r);
    const char *ct = whttp_header(&q->head, "Content-Type");
    json_error_t jerr;
    const void *body;
    size_t len;
    json_t *j;
    char *msg;

    if (ct != NULL && strncasecmp(ct, "application/json", 16) != 0 &&
        strstr(ct, "+json") == NULL) {
        if (error != NULL)
            *error = "Content-Type must be application/json";
        return NULL;
    }
    body = wapi_req_body(r, &len);
    if (len == 0) {
        if (error != NULL)
            *error = "the request body is empty; JSON was expected";
        return NULL;
    }
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL && error != NULL) {
        if (asprintf(&msg, "invalid JSON at line %d, column %d: %s", jerr.line,
                     jerr.column, jerr.text) < 0)
            msg = NULL;
        *error = msg ? wreq_keep(q, msg) : "invalid JSON";
        if (*error == NULL)
            *error = "invalid JSON";
    }
    return j;
}

__attribute__((format(printf, 3, 0))) static void
wapi_req_logv(weft_req *r, int level, const char *fmt, va_list ap)
{
    struct weft_req *q = WAPI_REQ(r);

    wlog_v(wapi_level(level), q->inst ? q->inst->comp : "host", q->rid, fmt,
           ap);
}

/* Headers the host frames itself; a plugin may not set them. */
static int wapi_reserved_header(const char *name)
{
    static const char *const names[] = {"content-length", "transfer-encoding",
                                        "connection", "date", "x-request-id",
                                        "content-type", "upgrade"};

    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int wapi_resp_header(weft_req *r, const char *name, const char *value)
{
    struct weft_req *q = WAPI_REQ(r);

    if (name == NULL || value == NULL || q->replied || name[0] == '\0' ||
        strlen(name) > 128 || strlen(value) > 8192 ||
        strpbrk(name, " \t\r\n:") != NULL || strpbrk(value, "\r\n") != NULL ||
        wapi_reserved_header(name))
        return WEFT_EINVAL;
    evbuffer_add_printf(q->rhdrs, "%s: %s\r\n", name, value);
    return WEFT_OK;
}

static int wapi_reply(weft_req *r, int status, const char *ctype,
                      const void *body, size_t len)
{
    if (ctype != NULL && strpbrk(ctype, "\r\n") != NULL)
        return WEFT_EINVAL;
    return wreq_reply(WAPI_REQ(r), status, ctype, body ? body : "",
                      body ? len : 0);
}

static int wapi_reply_json(weft_req *r, int status, json_t *body)
{
    return wreq_reply_json(WAPI_REQ(r), status, body);
}

static int wapi_reply_error(weft_req *r, int status, const char *code,
                            const char *message)
{
    return wreq_reply_error(WAPI_REQ(r), status, code, message);
}

static int wapi_stream_start(weft_req *r, int status, const char *ctype)
{
    if (ctype != NULL && strpbrk(ctype, "\r\n") != NULL)
        return WEFT_EINVAL;
    return wreq_stream_start(WAPI_REQ(r), status, ctype);
}

static int wapi_stream_write(weft_req *r, const void *data, size_t len)
{
    return wreq_stream_write(WAPI_REQ(r), data, len);
}

static int wapi_stream_end(weft_req *r)
{
    return wreq_stream_end(WAPI_REQ(r));
}

static int wapi_defer(weft_req *r, weft_work_fn work, weft_done_fn done,
                      void *arg)
{
    return wreq_defer_on(WAPI_REQ(r), NULL, work, done, arg);
}

/* ---- database (1.1) ---------------------------------------------------- */

/* One outstanding plugin statement: which callback, and the request. */
struct wapi_dbcall {
    weft_db_fn fn;
    weft_tx_fn tfn;
    void *arg;
    struct weft_req *r;
    struct wdb_tx *tx;
    const struct weft_db_res *res;
};

static void wapi_db_call(struct weft_req *r, void *ctx)
{
    struct wapi_dbcall *c = ctx;

    if (c->fn != NULL)
        c->fn(r, c->res, c->arg);
    else
        c->tfn(r, (weft_tx *)(void *)c->tx, c->res, c->arg);
}

static void wapi_db_done(struct wdb_tx *tx, const struct weft_db_res *res,
                         void *arg)
{
    struct wapi_dbcall *c = arg;

    c->tx = tx;
    c->res = res;
    wreq_complete(c->r, wapi_db_call, c);
    free(c);
}

static struct wapi_dbcall *wapi_dbcall_new(struct weft_req *r, weft_db_fn fn,
                                           weft_tx_fn tfn, void *arg)
{
    struct wapi_dbcall *c;

    if (r == NULL || r->finished || (fn == NULL && tfn == NULL))
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fn = fn;
    c->tfn = tfn;
    c->arg = arg;
    c->r = r;
    wreq_pending_add(r);
    return c;
}

/* The call was refused: undo the pending count. */
static int wapi_dbcall_refused(struct wapi_dbcall *c, int rc)
{
    c->r->pending--;
    free(c);
    return rc;
}

static int wapi_db_query(weft_req *r, const char *sql, int nparams,
                         const char *const *params, weft_db_fn cb, void *arg)
{
    struct wapi_dbcall *c = wapi_dbcall_new(WAPI_REQ(r), cb, NULL, arg);
    int rc;

    if (c == NULL)
        return WEFT_EINVAL;
    rc = wdb_query(WAPI_REQ(r)->loop, WAPI_REQ(r), sql, nparams, params,
                   wapi_db_done, c);
    return rc == 0 ? WEFT_OK : wapi_dbcall_refused(c, rc);
}

static int wapi_tx_begin(weft_req *r, weft_tx_fn cb, void *arg)
{
    struct wapi_dbcall *c = wapi_dbcall_new(WAPI_REQ(r), NULL, cb, arg);
    int rc;

    if (c == NULL)
        return WEFT_EINVAL;
    rc = wdb_tx_begin(WAPI_REQ(r)->loop, WAPI_REQ(r), wapi_db_done, c);
    return rc == 0 ? WEFT_OK : wapi_dbcall_refused(c, rc);
}

/* A step of a transaction: a statement (sql != NULL) or its end. */
static int wapi_tx_step(weft_tx *tx, const char *sql, int commit, int nparams,
                        const char *const *params, weft_tx_fn cb, void *arg)
{
    struct wdb_tx *t = (struct wdb_tx *)(void *)tx;
    struct wapi_dbcall *c;
    int rc;

    if (t == NULL || wdb_tx_req(t) == NULL)
        return WEFT_EINVAL;
    c = wapi_dbcall_new(wdb_tx_req(t), NULL, cb, arg);
    if (c == NULL)
        return WEFT_EINVAL;
    rc = sql != NULL
             ? wdb_tx_query(t, sql, nparams, params, wapi_db_done, c)
             : wdb_tx_end(t, commit, wapi_db_done, c);
    return rc == 0 ? WEFT_OK : wapi_dbcall_refused(c, rc);
}

static int wapi_tx_query(weft_tx *tx, const char *sql, int nparams,
                         const char *const *params, weft_tx_fn cb, void *arg)
{
    if (sql == NULL)
        return WEFT_EINVAL;
    return wapi_tx_step(tx, sql, 0, nparams, params, cb, arg);
}

static int wapi_tx_end(weft_tx *tx, int commit, weft_tx_fn cb, void *arg)
{
    return wapi_tx_step(tx, NULL, commit, 0, NULL, cb, arg);
}

static int wapi_db_ok(const weft_db_res *res)
{
    return res != NULL && res->error == NULL;
}

static const char *wapi_db_error(const weft_db_res *res)
{
    return res != NULL ? res->error : "no result";
}

static const char *wapi_db_sqlstate(const weft_db_res *res)
{
    return res != NULL ? res->sqlstate : NULL;
}

static int wapi_db_rows(const weft_db_res *res)
{
    return res != NULL && res->res != NULL ? PQntuples(res->res) : 0;
}

static int wapi_db_cols(const weft_db_res *res)
{
    return res != NULL && res->res != NULL ? PQnfields(res->res) : 0;
}

static const char *wapi_db_colname(const weft_db_res *res, int col)
{
    if (res == NULL || res->res == NULL || col < 0 ||
        col >= PQnfields(res->res))
        return NULL;
    return PQfname(res->res, col);
}

static int wapi_db_inside(const weft_db_res *res, int row, int col)
{
    return res != NULL && res->res != NULL && row >= 0 && col >= 0 &&
           row < PQntuples(res->res) && col < PQnfields(res->res);
}

static const char *wapi_db_value(const weft_db_res *res, int row, int col)
{
    return wapi_db_inside(res, row, col) ? PQgetvalue(res->res, row, col)
                                          : NULL;
}

static int wapi_db_isnull(const weft_db_res *res, int row, int col)
{
    return wapi_db_inside(res, row, col) ? PQgetisnull(res->res, row, col)
                                          : 1;
}

static json_t *wapi_db_json(const weft_db_res *res, int row)
{
    return wdb_json(res, row);
}

static int wapi_db_reply_error(weft_req *r, const weft_db_res *res)
{
    return wdb_reply_error(WAPI_REQ(r), res);
}

/* ---- identity (1.1) ---------------------------------------------------- */

static int64_t wapi_req_user(weft_req *r)
{
    return wauth_user(WAPI_REQ(r));
}

static int wapi_req_has_role(weft_req *r, const char *role)
{
    return wauth_has_role(WAPI_REQ(r), role);
}

static int wapi_user_profile(weft_req *r, int64_t id, weft_db_fn cb,
                             void *arg)
{
    return wauth_profile(WAPI_REQ(r), id, cb, arg);
}

/* ---- bus and realtime (since 1.2) ---------------------------------- */

static int wapi_topic(weft_plugin *p, const char *pattern, unsigned flags,
                      weft_topic_auth_fn auth)
{
    return wreg_topic(WAPI_INST(p), pattern, flags, auth);
}

static int wapi_publish(weft_plugin *p, const char *topic, json_t *data)
{
    return wbus_plugin_publish(WAPI_INST(p), topic, data);
}

static int wapi_subscribe(weft_plugin *p, const char *pattern,
                          weft_event_fn fn, void *arg)
{
    return wreg_subscribe(WAPI_INST(p), pattern, fn, arg);
}

static int wapi_tx_publish(weft_tx *tx, const char *topic, json_t *data,
                           weft_tx_fn cb, void *arg)
{
    struct wdb_tx *t = (struct wdb_tx *)(void *)tx;
    struct weft_req *r = t != NULL ? wdb_tx_req(t) : NULL;
    const char *params[2];
    char *s;
    int rc;

    if (r == NULL || r->inst == NULL || topic == NULL || data == NULL ||
        !wbus_owns(r->inst, topic))
        return WEFT_EINVAL;
    s = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return WEFT_EINVAL;
    params[0] = topic;
    params[1] = s;
    rc = wapi_tx_query(tx, wbus_outbox_sql, 2, params, cb, arg);
    free(s); /* the pool copies parameters when it sends */
    return rc;
}

static int wapi_ws_route(weft_plugin *p, const char *pattern, unsigned flags,
                         const weft_ws_handlers *h)
{
    return wreg_ws(WAPI_INST(p), pattern, flags, h);
}

/* ---- signup steps (since 1.3) --------------------------------------- */

static int wapi_on_signup(weft_plugin *p, weft_signup_fn fn, void *arg)
{
    return wreg_signup(WAPI_INST(p), fn, arg);
}

static int wapi_signup_done(weft_req *r, int status, const char *code,
                            const char *message)
{
    return wsignup_step_done(WAPI_REQ(r), status, code, message);
}

const weft_api wapi_table = {
    .abi_major = WEFT_ABI_MAJOR,
    .abi_minor = WEFT_ABI_MINOR,
    .struct_size = (uint32_t)sizeof(weft_api),
    .plugin_name = wapi_plugin_name,
    .plugin_logv = wapi_plugin_logv,
    .plugin_fail = wapi_plugin_fail,
    .route = wapi_route,
    .config_string = wapi_config_string,
    .config_int = wapi_config_int,
    .config_bool = wapi_config_bool,
    .state = wapi_state,
    .state_lock = wapi_state_lock,
    .state_unlock = wapi_state_unlock,
    .req_plugin = wapi_req_plugin,
    .req_method = wapi_req_method,
    .req_path = wapi_req_path,
    .req_param = wapi_req_param,
    .req_query = wapi_req_query,
    .req_header = wapi_req_header,
    .req_id = wapi_req_id,
    .req_remote = wapi_req_remote,
    .req_body = wapi_req_body,
    .req_json = wapi_req_json,
    .req_logv = wapi_req_logv,
    .resp_header = wapi_resp_header,
    .reply = wapi_reply,
    .reply_json = wapi_reply_json,
    .reply_error = wapi_reply_error,
    .stream_start = wapi_stream_start,
    .stream_write = wapi_stream_write,
    .stream_end = wapi_stream_end,
    .defer = wapi_defer,
    .db_query = wapi_db_query,
    .tx_begin = wapi_tx_begin,
    .tx_query = wapi_tx_query,
    .tx_end = wapi_tx_end,
    .db_ok = wapi_db_ok,
    .db_error = wapi_db_error,
    .db_sqlstate = wapi_db_sqlstate,
    .db_rows = wapi_db_rows,
    .db_cols = wapi_db_cols,
    .db_colname = wapi_db_colname,
    .db_value = wapi_db_value,
    .db_isnull = wapi_db_isnull,
    .db_json = wapi_db_json,
    .db_reply_error = wapi_db_reply_error,
    .req_user = wapi_req_user,
    .req_has_role = wapi_req_has_role,
    .user_profile = wapi_user_profile,
    .topic = wapi_topic,
    .publish = wapi_publish,
    .subscribe = wapi_subscribe,
    .tx_publish = wapi_tx_publish,
    .ws_route = wapi_ws_route,
    .ws_plugin = wrt_ws_api_plugin,
    .ws_send = wrt_ws_api_send,
    .ws_close = wrt_ws_api_close,
    .ws_user = wrt_ws_api_user,
    .ws_id = wrt_ws_api_id,
    .ws_subscribe = wrt_ws_api_subscribe,
    .on_signup = wapi_on_signup,
    .signup_done = wapi_signup_done,
};
