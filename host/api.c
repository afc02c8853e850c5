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

/* A transaction as plugins hold it. It lives until its request is freed,
 * longer than the pool's transaction, so a step on a transaction that
 * ended is recognised and refused instead of reaching freed memory. */
#define WAPI_TX_MAGIC 0x77747821u /* "wtx!" */
struct wapi_tx {
    const weft_api *api; /* first: the SDK's inline wrappers read it */
    uint32_t magic;      /* tells a transaction from another handle */
    struct weft_req *r;
    struct wdb_tx *tx; /* the pool's; NULL until BEGIN completed */
    unsigned busy : 1;  /* a step is on its way                     */
    unsigned done : 1;  /* ended, ending, or handed back (signup)   */
    unsigned lent : 1;  /* the host's (a signup step's): no end     */
    struct wapi_tx *next;
};

/* Bad arguments are answered, never followed (see weft.h): these name the
 * plugin (and the request) in the warning. */
static void wapi_warn(const struct weft_plugin *i, const char *call,
                      const char *why)
{
    wlog(WLOG_WARN, i != NULL ? i->comp : "sdk", "%s: %s", call, why);
}

static int wapi_bad(const struct weft_plugin *i, const char *call,
                    const char *why)
{
    wapi_warn(i, call, why);
    return WEFT_EINVAL;
}

static int wapi_bad_req(const struct weft_req *q, const char *call,
                        const char *why)
{
    if (q == NULL)
        return wapi_bad(NULL, call, "NULL request");
    wlog_rid(WLOG_WARN, q->inst != NULL ? q->inst->comp : "host", q->rid,
             "%s: %s", call, why);
    return WEFT_EINVAL;
}

static int wapi_level(int level)
{
    return level < WLOG_ERROR ? WLOG_ERROR : level > WLOG_DEBUG ? WLOG_DEBUG
                                                                : level;
}

static const char *wapi_plugin_name(weft_plugin *p)
{
    if (p == NULL) {
        wapi_warn(NULL, "weft_plugin_name", "NULL plugin");
        return NULL;
    }
    return WAPI_INST(p)->slot->name;
}

__attribute__((format(printf, 3, 0))) static void
wapi_plugin_logv(weft_plugin *p, int level, const char *fmt, va_list ap)
{
    if (fmt == NULL) {
        wapi_warn(p ? WAPI_INST(p) : NULL, "weft_log", "NULL format");
        return;
    }
    /* A line logged without its plugin is still worth keeping. */
    wlog_v(wapi_level(level), p != NULL ? WAPI_INST(p)->comp : "sdk", NULL,
           fmt, ap);
}

__attribute__((format(printf, 2, 0))) static void
wapi_plugin_fail(weft_plugin *p, const char *fmt, va_list ap)
{
    char msg[512];

    if (p == NULL || fmt == NULL) {
        wapi_warn(p ? WAPI_INST(p) : NULL, "weft_plugin_fail",
                  p == NULL ? "NULL plugin" : "NULL format");
        if (p != NULL) /* the failure itself must not get lost */
            wdiag_add(&WAPI_INST(p)->fail, NULL, 0, "%s",
                      "weft_plugin_fail() without a reason");
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    wdiag_add(&WAPI_INST(p)->fail, NULL, 0, "%s", msg);
    wlog(WLOG_ERROR, WAPI_INST(p)->comp, "%s", msg);
}

static int wapi_route(weft_plugin *p, const char *method, const char *pattern,
                      unsigned flags, weft_handler_fn fn)
{
    if (p == NULL)
        return wapi_bad(NULL, "weft_route", "NULL plugin");
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

/* NULL plugin or output: refused before the key is looked at. */
static int wapi_cfg_args(weft_plugin *p, const void *out, const char *call)
{
    if (p == NULL)
        return wapi_bad(NULL, call, "NULL plugin");
    if (out == NULL)
        return wapi_bad(WAPI_INST(p), call, "NULL output");
    return WEFT_OK;
}

static int wapi_config_string(weft_plugin *p, const char *key,
                              const char **out)
{
    const struct wplug_cfgval *v;

    if (wapi_cfg_args(p, out, "weft_config_string") != WEFT_OK)
        return WEFT_EINVAL;
    if ((v = wapi_cfg(p, key)) == NULL)
        return WEFT_ENOENT;
    *out = v->str;
    return WEFT_OK;
}

static int wapi_config_int(weft_plugin *p, const char *key, int64_t *out)
{
    const struct wplug_cfgval *v;

    if (wapi_cfg_args(p, out, "weft_config_int") != WEFT_OK)
        return WEFT_EINVAL;
    if ((v = wapi_cfg(p, key)) == NULL)
        return WEFT_ENOENT;
    if (v->type == WEFT_CFG_STRING || v->type == WEFT_CFG_BOOL)
        return WEFT_EINVAL;
    *out = v->num;
    return WEFT_OK;
}

static int wapi_config_bool(weft_plugin *p, const char *key, int *out)
{
    const struct wplug_cfgval *v;

    if (wapi_cfg_args(p, out, "weft_config_bool") != WEFT_OK)
        return WEFT_EINVAL;
    if ((v = wapi_cfg(p, key)) == NULL)
        return WEFT_ENOENT;
    if (v->type != WEFT_CFG_BOOL)
        return WEFT_EINVAL;
    *out = (int)v->num;
    return WEFT_OK;
}

static void *wapi_state(weft_plugin *p, size_t size, uint32_t layout)
{
    void *b;

    if (p == NULL) {
        wapi_warn(NULL, "weft_state", "NULL plugin");
        return NULL;
    }
    b = wplug_state(WAPI_INST(p), size, layout);
    if (b == NULL)
        wlog(WLOG_WARN, WAPI_INST(p)->comp,
             "weft_state: no block of %zu bytes (0, above 64 MiB, or out of "
             "memory)", size);
    return b;
}

/* The slot's mutex checks errors (plugin.c): a second lock or a stray
 * unlock comes back as an error, logged here, instead of a hang. */
static void wapi_state_lock(weft_plugin *p)
{
    int rc;

    if (p == NULL) {
        wapi_warn(NULL, "weft_state_lock", "NULL plugin");
        return;
    }
    rc = pthread_mutex_lock(&WAPI_INST(p)->slot->user_mu);
    if (rc != 0)
        wapi_warn(WAPI_INST(p), "weft_state_lock", strerror(rc));
}

static void wapi_state_unlock(weft_plugin *p)
{
    int rc;

    if (p == NULL) {
        wapi_warn(NULL, "weft_state_unlock", "NULL plugin");
        return;
    }
    rc = pthread_mutex_unlock(&WAPI_INST(p)->slot->user_mu);
    if (rc != 0)
        wapi_warn(WAPI_INST(p), "weft_state_unlock", strerror(rc));
}

/* Request accessors: a NULL request answers NULL (see weft.h). */
#define WAPI_NEED_REQ(r, call, val)                                           \
    do {                                                                      \
        if ((r) == NULL) {                                                    \
            wapi_bad(NULL, call, "NULL request");                             \
            return val;                                                       \
        }                                                                     \
    } while (0)

static weft_plugin *wapi_req_plugin(weft_req *r)
{
    WAPI_NEED_REQ(r, "weft_req_plugin", NULL);
    return (weft_plugin *)(void *)WAPI_REQ(r)->inst;
}

static const char *wapi_req_method(weft_req *r)
{
    WAPI_NEED_REQ(r, "weft_req_method", NULL);
    return WAPI_REQ(r)->head.method;
}

static const char *wapi_req_path(weft_req *r)
{
    WAPI_NEED_REQ(r, "weft_req_path", NULL);
    return WAPI_REQ(r)->path;
}

static const char *wapi_req_param(weft_req *r, const char *name)
{
    const struct wmatch *m;

    WAPI_NEED_REQ(r, "weft_req_param", NULL);
    m = &WAPI_REQ(r)->match;
    for (int i = 0; name != NULL && i < m->nparams; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return m->params[i].value;
    return NULL;
}

static const char *wapi_req_query(weft_req *r, const char *name)
{
    struct weft_req *q = WAPI_REQ(r);
    size_t n;
    char *buf;
    int rc;

    WAPI_NEED_REQ(r, "weft_req_query", NULL);
    n = strlen(q->query) + 1;
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
    WAPI_NEED_REQ(r, "weft_req_header", NULL);
    return name ? whttp_header(&WAPI_REQ(r)->head, name) : NULL;
}

static const char *wapi_req_id(weft_req *r)
{
    WAPI_NEED_REQ(r, "weft_req_id", NULL);
    return WAPI_REQ(r)->rid;
}

static const char *wapi_req_remote(weft_req *r)
{
    WAPI_NEED_REQ(r, "weft_req_remote", NULL);
    return WAPI_REQ(r)->conn->remote;
}

static const void *wapi_req_body(weft_req *r, size_t *len)
{
    struct weft_req *q = WAPI_REQ(r);
    size_t n;

    if (q == NULL) {
        wapi_bad(NULL, "weft_req_body", "NULL request");
        if (len != NULL)
            *len = 0;
        return "";
    }
    n = evbuffer_get_length(q->body);
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
    const char *ct;
    json_error_t jerr;
    const void *body;
    size_t len;
    json_t *j;
    char *msg;

    if (q == NULL) {
        wapi_bad(NULL, "weft_req_json", "NULL request");
        if (error != NULL)
            *error = "no request";
        return NULL;
    }
    ct = whttp_header(&q->head, "Content-Type");
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

    if (q == NULL || fmt == NULL) {
        wapi_bad_req(q, "weft_req_log", "NULL format");
        return;
    }
    wlog_v(wapi_level(level), q->inst ? q->inst->comp : "host", q->rid, fmt,
           ap);
}

/* Headers the host frames itself; a plugin may not set them. */
static int wapi_reserved_header(const char *name)
{
    static const char *const names[] = {"content-length", "transfer-encoding",
                                        "connection", "date", "x-request-id",
                                        "x-weft-request-id", "content-type",
                                        "upgrade"};

    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (strcasecmp(name, names[i]) == 0)
            return 1;
    return 0;
}

static int wapi_resp_header(weft_req *r, const char *name, const char *value)
{
    struct weft_req *q = WAPI_REQ(r);

    if (q == NULL)
        return wapi_bad(NULL, "weft_resp_header", "NULL request");
    if (name == NULL || value == NULL || q->replied || name[0] == '\0' ||
        strlen(name) > 128 || strlen(value) > 8192 ||
        strpbrk(name, " \t\r\n:") != NULL || strpbrk(value, "\r\n") != NULL ||
        wapi_reserved_header(name))
        return WEFT_EINVAL;
    evbuffer_add_printf(q->rhdrs, "%s: %s\r\n", name, value);
    return WEFT_OK;
}

/* May the plugin answer `q` now? During a signup step the request is the
 * registration's: the step answers with weft_signup_done(). */
static int wapi_may_answer(const struct weft_req *q, const char *call)
{
    if (q == NULL)
        return wapi_bad(NULL, call, "NULL request");
    if (q->signup != NULL)
        return wapi_bad_req(q, call, "a signup step answers with "
                                     "weft_signup_done()");
    if (q->replied || q->finished)
        return wapi_bad_req(q, call, "the request was answered already");
    return WEFT_OK;
}

static int wapi_reply(weft_req *r, int status, const char *ctype,
                      const void *body, size_t len)
{
    int rc = wapi_may_answer(WAPI_REQ(r), "weft_reply");

    if (rc != WEFT_OK)
        return rc;
    if (ctype != NULL && strpbrk(ctype, "\r\n") != NULL)
        return wapi_bad_req(WAPI_REQ(r), "weft_reply",
                            "CR or LF in the content type");
    if (body != NULL && len > WEFT_MAX_LEN)
        return wapi_bad_req(WAPI_REQ(r), "weft_reply", "length out of range");
    return wreq_reply(WAPI_REQ(r), status, ctype, body ? body : "",
                      body ? len : 0);
}

static int wapi_reply_json(weft_req *r, int status, json_t *body)
{
    int rc = wapi_may_answer(WAPI_REQ(r), "weft_reply_json");

    return rc != WEFT_OK ? rc : wreq_reply_json(WAPI_REQ(r), status, body);
}

static int wapi_reply_error(weft_req *r, int status, const char *code,
                            const char *message)
{
    int rc = wapi_may_answer(WAPI_REQ(r), "weft_reply_error");

    return rc != WEFT_OK ? rc
                         : wreq_reply_error(WAPI_REQ(r), status, code, message);
}

static int wapi_stream_start(weft_req *r, int status, const char *ctype)
{
    int rc = wapi_may_answer(WAPI_REQ(r), "weft_stream_start");

    if (rc != WEFT_OK)
        return rc;
    if (status < 200 || status > 599)
        return wapi_bad_req(WAPI_REQ(r), "weft_stream_start",
                            "status outside 200..599");
    if (ctype != NULL && strpbrk(ctype, "\r\n") != NULL)
        return wapi_bad_req(WAPI_REQ(r), "weft_stream_start",
                            "CR or LF in the content type");
    return wreq_stream_start(WAPI_REQ(r), status, ctype);
}

static int wapi_stream_write(weft_req *r, const void *data, size_t len)
{
    struct weft_req *q = WAPI_REQ(r);

    if (q == NULL)
        return wapi_bad(NULL, "weft_stream_write", "NULL request");
    if ((data == NULL && len > 0) || len > WEFT_MAX_LEN)
        return wapi_bad_req(q, "weft_stream_write",
                            data == NULL ? "NULL data" : "length out of range");
    if (!q->streaming || q->stream_done)
        return wapi_bad_req(q, "weft_stream_write",
                            q->streaming ? "the stream ended"
                                         : "no stream was started");
    return wreq_stream_write(q, data, len);
}

static int wapi_stream_end(weft_req *r)
{
    struct weft_req *q = WAPI_REQ(r);

    if (q == NULL)
        return wapi_bad(NULL, "weft_stream_end", "NULL request");
    if (!q->streaming || q->stream_done)
        return wapi_bad_req(q, "weft_stream_end",
                            q->streaming ? "the stream ended already"
                                         : "no stream was started");
    return wreq_stream_end(q);
}

static int wapi_defer(weft_req *r, weft_work_fn work, weft_done_fn done,
                      void *arg)
{
    if (r == NULL)
        return wapi_bad(NULL, "weft_defer", "NULL request");
    if (work == NULL || done == NULL)
        return wapi_bad_req(WAPI_REQ(r), "weft_defer", "NULL function");
    return wreq_defer_on(WAPI_REQ(r), NULL, work, done, arg);
}

/* ---- database (1.1) ---------------------------------------------------- */

/* One outstanding plugin statement: which callback, and the request. */
struct wapi_dbcall {
    weft_db_fn fn;
    weft_tx_fn tfn;
    void *arg;
    struct weft_req *r;
    struct wapi_tx *wtx; /* the transaction's handle, for its steps */
    const struct weft_db_res *res;
};

static void wapi_db_call(struct weft_req *r, void *ctx)
{
    struct wapi_dbcall *c = ctx;

    if (c->fn != NULL)
        c->fn(r, c->res, c->arg);
    else
        c->tfn(r, c->wtx != NULL && !c->wtx->done ? (weft_tx *)(void *)c->wtx
                                                  : NULL,
               c->res, c->arg);
}

static void wapi_db_done(struct wdb_tx *tx, const struct weft_db_res *res,
                         void *arg)
{
    struct wapi_dbcall *c = arg;
    struct wapi_tx *w = c->wtx;

    if (w != NULL) {
        w->busy = 0;
        /* NULL: the pool's transaction is over (ended, or BEGIN failed)
         * and its memory gone; the handle only says so from now on. */
        w->tx = tx;
        if (tx == NULL)
            w->done = 1;
    }
    c->res = res;
    wreq_complete(c->r, wapi_db_call, c);
    free(c);
}

static struct wapi_dbcall *wapi_dbcall_new(struct weft_req *r, weft_db_fn fn,
                                           weft_tx_fn tfn, void *arg)
{
    /* The arguments were checked by wapi_sql_args(). */
    struct wapi_dbcall *c = calloc(1, sizeof(*c));

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

/* What every statement needs, checked before anything is queued. */
static int wapi_sql_args(struct weft_req *q, const char *call,
                         const char *sql, int nparams,
                         const char *const *params, const void *cb)
{
    if (q == NULL)
        return wapi_bad(NULL, call, "NULL request");
    if (q->finished)
        return wapi_bad_req(q, call, "the request has ended");
    if (cb == NULL)
        return wapi_bad_req(q, call, "NULL callback");
    if (sql == NULL)
        return wapi_bad_req(q, call, "NULL SQL");
    if (nparams < 0 || nparams > WDB_MAX_PARAMS ||
        (nparams > 0 && params == NULL))
        return wapi_bad_req(q, call, "parameter count out of range");
    return WEFT_OK;
}

static int wapi_db_query(weft_req *r, const char *sql, int nparams,
                         const char *const *params, weft_db_fn cb, void *arg)
{
    struct wapi_dbcall *c;
    int rc = wapi_sql_args(WAPI_REQ(r), "weft_db_query", sql, nparams, params,
                           (const void *)cb);

    if (rc != WEFT_OK)
        return rc;
    if ((c = wapi_dbcall_new(WAPI_REQ(r), cb, NULL, arg)) == NULL)
        return WEFT_EBUSY; /* out of memory */
    rc = wdb_query(WAPI_REQ(r)->loop, WAPI_REQ(r), sql, nparams, params,
                   wapi_db_done, c);
    return rc == 0 ? WEFT_OK : wapi_dbcall_refused(c, rc);
}

static struct wapi_tx *wapi_tx_new(struct weft_req *r, struct wdb_tx *tx,
                                   int lent)
{
    struct wapi_tx *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->api = &wapi_table;
    w->magic = WAPI_TX_MAGIC;
    w->r = r;
    w->tx = tx;
    w->lent = lent ? 1u : 0u;
    w->next = r->txs;
    r->txs = w;
    return w;
}

static int wapi_tx_begin(weft_req *r, weft_tx_fn cb, void *arg)
{
    struct weft_req *q = WAPI_REQ(r);
    struct wapi_dbcall *c;
    int rc = wapi_sql_args(q, "weft_tx_begin", "BEGIN", 0, NULL,
                           (const void *)cb);

    if (rc != WEFT_OK)
        return rc;
    if ((c = wapi_dbcall_new(q, NULL, cb, arg)) == NULL)
        return WEFT_EBUSY;
    if ((c->wtx = wapi_tx_new(q, NULL, 0)) == NULL)
        return wapi_dbcall_refused(c, WEFT_EBUSY);
    c->wtx->busy = 1;
    rc = wdb_tx_begin(q->loop, q, wapi_db_done, c);
    if (rc != 0)
        c->wtx->done = 1; /* never began: the handle was not handed out */
    return rc == 0 ? WEFT_OK : wapi_dbcall_refused(c, rc);
}

/* A plugin's transaction handle, if `tx` is one that can take a step. */
static struct wapi_tx *wapi_tx_live(weft_tx *tx, const char *call)
{
    struct wapi_tx *w = (struct wapi_tx *)(void *)tx;

    if (w == NULL) {
        wapi_bad(NULL, call, "NULL transaction");
        return NULL;
    }
    if (w->magic != WAPI_TX_MAGIC) {
        wapi_bad(NULL, call, "not a transaction handle");
        return NULL;
    }
    if (w->done || w->tx == NULL || w->r->finished) {
        wapi_bad_req(w->r, call, "the transaction has ended");
        return NULL;
    }
    if (w->busy) {
        wapi_bad_req(w->r, call, "the transaction's previous step is still "
                                 "running");
        return NULL;
    }
    return w;
}

/* A step of a transaction: a statement (sql != NULL) or its end. */
static int wapi_tx_step(struct wapi_tx *w, const char *call, const char *sql,
                        int commit, int nparams, const char *const *params,
                        weft_tx_fn cb, void *arg)
{
    struct wapi_dbcall *c;
    int rc = wapi_sql_args(w->r, call, sql != NULL ? sql : "END", nparams,
                           params, (const void *)cb);

    if (rc != WEFT_OK)
        return rc;
    if ((c = wapi_dbcall_new(w->r, NULL, cb, arg)) == NULL)
        return WEFT_EBUSY;
    c->wtx = w;
    /* Set first: the pool may complete the step before it returns. */
    w->busy = 1;
    if (sql == NULL)
        w->done = 1; /* ending: no step may follow */
    rc = sql != NULL ? wdb_tx_query(w->tx, sql, nparams, params,
                                    wapi_db_done, c)
                     : wdb_tx_end(w->tx, commit, wapi_db_done, c);
    if (rc != 0) {
        w->busy = 0;
        w->done = 0;
        return wapi_dbcall_refused(c, rc);
    }
    return WEFT_OK;
}

static int wapi_tx_query(weft_tx *tx, const char *sql, int nparams,
                         const char *const *params, weft_tx_fn cb, void *arg)
{
    struct wapi_tx *w = wapi_tx_live(tx, "weft_tx_query");

    if (w == NULL)
        return WEFT_EINVAL;
    if (sql == NULL)
        return wapi_bad_req(w->r, "weft_tx_query", "NULL SQL");
    return wapi_tx_step(w, "weft_tx_query", sql, 0, nparams, params, cb, arg);
}

static int wapi_tx_end(weft_tx *tx, int commit, weft_tx_fn cb, void *arg)
{
    struct wapi_tx *w = wapi_tx_live(tx, "weft_tx_end");

    if (w == NULL)
        return WEFT_EINVAL;
    if (w->lent)
        return wapi_bad_req(w->r, "weft_tx_end", "a signup step's transaction "
                                                 "is the host's to end");
    return wapi_tx_step(w, "weft_tx_end", NULL, commit, 0, NULL, cb, arg);
}

weft_tx *wapi_tx_lend(struct weft_req *r, struct wdb_tx *tx)
{
    return (weft_tx *)(void *)wapi_tx_new(r, tx, 1);
}

void wapi_req_release(struct weft_req *r)
{
    struct wapi_tx *w, *next;

    for (w = r->txs; w != NULL; w = next) {
        next = w->next;
        free(w);
    }
    r->txs = NULL;
}

/* The step is over: the lent transaction goes back to the host. */
static void wapi_tx_return(struct weft_req *r)
{
    for (struct wapi_tx *w = r->txs; w != NULL; w = w->next)
        if (w->lent)
            w->done = 1;
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
    return row < -1 ? NULL : wdb_json(res, row);
}

static int wapi_db_reply_error(weft_req *r, const weft_db_res *res)
{
    int rc = wapi_may_answer(WAPI_REQ(r), "weft_db_reply_error");

    return rc != WEFT_OK ? rc : wdb_reply_error(WAPI_REQ(r), res);
}

/* ---- identity (1.1) ---------------------------------------------------- */

static int64_t wapi_req_user(weft_req *r)
{
    WAPI_NEED_REQ(r, "weft_req_user", 0);
    return wauth_user(WAPI_REQ(r));
}

static int wapi_req_has_role(weft_req *r, const char *role)
{
    WAPI_NEED_REQ(r, "weft_req_has_role", 0);
    return wauth_has_role(WAPI_REQ(r), role);
}

static int wapi_user_profile(weft_req *r, int64_t id, weft_db_fn cb,
                             void *arg)
{
    int rc = wapi_sql_args(WAPI_REQ(r), "weft_user_profile", "", 0, NULL,
                           (const void *)cb);

    if (rc != WEFT_OK)
        return rc;
    if (id < 1)
        return wapi_bad_req(WAPI_REQ(r), "weft_user_profile",
                            "user id below 1");
    return wauth_profile(WAPI_REQ(r), id, cb, arg);
}

/* ---- bus and realtime (since 1.2) ---------------------------------- */

static int wapi_topic(weft_plugin *p, const char *pattern, unsigned flags,
                      weft_topic_auth_fn auth)
{
    if (p == NULL)
        return wapi_bad(NULL, "weft_topic", "NULL plugin");
    return wreg_topic(WAPI_INST(p), pattern, flags, auth);
}

static int wapi_publish(weft_plugin *p, const char *topic, json_t *data)
{
    if (p == NULL)
        return wapi_bad(NULL, "weft_publish", "NULL plugin");
    if (data == NULL)
        return wapi_bad(WAPI_INST(p), "weft_publish", "NULL data");
    return wbus_plugin_publish(WAPI_INST(p), topic, data);
}

static int wapi_subscribe(weft_plugin *p, const char *pattern,
                          weft_event_fn fn, void *arg)
{
    if (p == NULL)
        return wapi_bad(NULL, "weft_subscribe", "NULL plugin");
    return wreg_subscribe(WAPI_INST(p), pattern, fn, arg);
}

static int wapi_tx_publish(weft_tx *tx, const char *topic, json_t *data,
                           weft_tx_fn cb, void *arg)
{
    struct wapi_tx *w = wapi_tx_live(tx, "weft_tx_publish");
    const char *params[2];
    char *s;
    int rc;

    if (w == NULL)
        return WEFT_EINVAL;
    if (w->r->inst == NULL)
        return wapi_bad_req(w->r, "weft_tx_publish", "not a plugin's request");
    if (topic == NULL || !wbus_owns(w->r->inst, topic))
        return wapi_bad_req(w->r, "weft_tx_publish",
                            "not a topic under the plugin's name");
    if (data == NULL)
        return wapi_bad_req(w->r, "weft_tx_publish", "NULL data");
    s = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return wapi_bad_req(w->r, "weft_tx_publish", "data not encodable");
    params[0] = topic;
    params[1] = s;
    rc = wapi_tx_step(w, "weft_tx_publish", wbus_outbox_sql, 0, 2, params, cb,
                      arg);
    free(s); /* the pool copies parameters when it sends */
    return rc;
}

static int wapi_ws_route(weft_plugin *p, const char *pattern, unsigned flags,
                         const weft_ws_handlers *h)
{
    if (p == NULL)
        return wapi_bad(NULL, "weft_ws_route", "NULL plugin");
    return wreg_ws(WAPI_INST(p), pattern, flags, h);
}

/* rt_ws.c answers NULL sessions itself; lengths are checked here, where
 * the rule (WEFT_MAX_LEN) is the SDK's. */
static int wapi_ws_send(weft_ws *ws, const char *data, size_t len, int binary)
{
    if (ws != NULL && len > WEFT_MAX_LEN)
        return wapi_bad(wrt_ws_api_plugin(ws) != NULL
                            ? WAPI_INST(wrt_ws_api_plugin(ws))
                            : NULL,
                        "weft_ws_send", "length out of range");
    return wrt_ws_api_send(ws, data, len, binary);
}

/* ---- signup steps (since 1.3) --------------------------------------- */

static int wapi_on_signup(weft_plugin *p, weft_signup_fn fn, void *arg)
{
    if (p == NULL)
        return wapi_bad(NULL, "weft_on_signup", "NULL plugin");
    if (fn == NULL && WAPI_INST(p)->in_init) {
        /* Like a bad route: the version is refused, saying why. */
        wdiag_add(&WAPI_INST(p)->fail, NULL, 0, "%s",
                  "weft_on_signup() without a step function");
        return wapi_bad(WAPI_INST(p), "weft_on_signup", "NULL step");
    }
    return wreg_signup(WAPI_INST(p), fn, arg);
}

static int wapi_signup_done(weft_req *r, int status, const char *code,
                            const char *message)
{
    struct weft_req *q = WAPI_REQ(r);

    if (q == NULL)
        return wapi_bad(NULL, "weft_signup_done", "NULL request");
    if (q->signup == NULL)
        return wapi_bad_req(q, "weft_signup_done", "no signup step is "
                                                   "running");
    wapi_tx_return(q);
    return wsignup_step_done(q, status, code, message);
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
    .ws_send = wapi_ws_send,
    .ws_close = wrt_ws_api_close,
    .ws_user = wrt_ws_api_user,
    .ws_id = wrt_ws_api_id,
    .ws_subscribe = wrt_ws_api_subscribe,
    .on_signup = wapi_on_signup,
    .signup_done = wapi_signup_done,
};
