/* signup.c - registration in one transaction with the plugins' steps.
 *
 * BEGIN; INSERT the account; each plugin's signup step in configuration
 * order (it runs its own statements on the same transaction and says
 * weft_signup_done); COMMIT. A refusal or failure anywhere rolls it all
 * back, so a referral link, say, exists if and only if its account does. */
#include "signup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "plugin.h"
#include "registry.h"
#include "request.h"

struct wsignup {
    struct weft_req *r;
    struct wdb_tx *tx;
    json_t *body;
    PGresult *row; /* the new account, kept until COMMIT */
    int64_t uid;
    struct wreg_ent *steps;
    int nsteps, next;
    int running; /* a plugin step has not said done yet */
    int status;
    char code[64], msg[256];
    char *sql; /* the INSERT and its parameters, until it is sent */
    char **params;
    int nparams;
    wsignup_fn done;
    void *arg;
};

/* A database callback, routed through wreq_complete so the request
 * stays open while the transaction runs. */
struct wsignup_call {
    void (*fn)(struct wsignup *, struct wdb_tx *, const struct weft_db_res *);
    struct wsignup *s;
    struct wdb_tx *tx;
    const struct weft_db_res *res;
};

static void wsignup_free(struct wsignup *s)
{
    for (int k = 0; k < s->nparams; k++)
        free(s->params[k]);
    free(s->params);
    free(s->sql);
    for (int k = 0; k < s->nsteps; k++)
        wplug_inst_release(s->steps[k].inst);
    free(s->steps);
    if (s->row != NULL)
        PQclear(s->row);
    json_decref(s->body);
    free(s);
}

static void wsignup_call(struct weft_req *r, void *ctx)
{
    struct wsignup_call *c = ctx;

    (void)r;
    c->fn(c->s, c->tx, c->res);
}

#define WSIGNUP_CB(name, fn)                                                 \
    static void name(struct wdb_tx *tx, const struct weft_db_res *res,        \
                     void *arg)                                              \
    {                                                                        \
        struct wsignup_call c = {fn, arg, tx, res};                           \
        wreq_complete(((struct wsignup *)arg)->r, wsignup_call, &c);         \
    }

static void wsignup_rolled_back(struct wsignup *s, struct wdb_tx *tx,
                                const struct weft_db_res *res)
{
    (void)tx;
    (void)res;
    s->done(s->r, NULL, s->status, s->code, s->msg, s->arg);
    wsignup_free(s);
}
WSIGNUP_CB(wsignup_rolled_back_cb, wsignup_rolled_back)

static void wsignup_after_error(struct wsignup *s, struct wdb_tx *tx,
                                const struct weft_db_res *res)
{
    (void)tx;
    (void)res;
    wsignup_free(s);
}
WSIGNUP_CB(wsignup_after_error_cb, wsignup_after_error)

/* A statement failed: answer with it now, roll back, then free. */
static void wsignup_db_failed(struct wsignup *s, struct wdb_tx *tx,
                              const struct weft_db_res *res)
{
    s->done(s->r, res, 0, NULL, NULL, s->arg);
    if (tx == NULL) {
        wsignup_free(s);
        return;
    }
    wreq_pending_add(s->r);
    if (wdb_tx_end(tx, 0, wsignup_after_error_cb, s) != 0) {
        s->r->pending--;
        wsignup_free(s); /* the request's end rolls it back */
    }
}

static void wsignup_refuse(struct wsignup *s)
{
    wreq_pending_add(s->r);
    if (wdb_tx_end(s->tx, 0, wsignup_rolled_back_cb, s) != 0) {
        s->r->pending--;
        wsignup_rolled_back(s, NULL, NULL);
    }
}

/* Refuse with 503 unavailable: the host could not go on (memory, queue). */
static void wsignup_unavailable(struct wsignup *s, const char *msg)
{
    s->status = 503;
    snprintf(s->code, sizeof(s->code), "unavailable");
    snprintf(s->msg, sizeof(s->msg), "%s", msg);
    wsignup_refuse(s);
}

static void wsignup_committed(struct wsignup *s, struct wdb_tx *tx,
                              const struct weft_db_res *res)
{
    struct weft_db_res ok = {&wapi_table, s->row, NULL, NULL};

    (void)tx;
    if (res->error != NULL)
        s->done(s->r, res, 0, NULL, NULL, s->arg);
    else
        s->done(s->r, &ok, 0, NULL, NULL, s->arg);
    wsignup_free(s);
}
WSIGNUP_CB(wsignup_committed_cb, wsignup_committed)

static void wsignup_next(struct wsignup *s)
{
    struct wreg_ent *e;
    weft_tx *tx;

    if (s->next == s->nsteps) {
        wreq_pending_add(s->r);
        if (wdb_tx_end(s->tx, 1, wsignup_committed_cb, s) != 0) {
            s->r->pending--;
            wsignup_unavailable(s, "the database is busy");
        }
        return;
    }
    /* The step's own handle: it stops working at weft_signup_done, so a
     * plugin that keeps it cannot reach the transaction after COMMIT. */
    if ((tx = wapi_tx_lend(s->r, s->tx)) == NULL) {
        wsignup_unavailable(s, "out of memory");
        return;
    }
    e = &s->steps[s->next++];
    /* During its step the request belongs to the plugin: its statements,
     * logs and weft_req_plugin() see that version. */
    wplug_inst_acquire(e->inst);
    s->r->inst = e->inst;
    s->r->signup = s;
    s->running = 1;
    e->signup(s->r, tx, s->uid, s->body, e->arg);
}

static void wsignup_inserted(struct wsignup *s, struct wdb_tx *tx,
                             const struct weft_db_res *res)
{
    if (res->error != NULL || tx == NULL) {
        wsignup_db_failed(s, tx, res);
        return;
    }
    s->row = PQcopyResult(res->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
    if (s->row == NULL || PQntuples(s->row) != 1) {
        wsignup_unavailable(s, "out of memory");
        return;
    }
    s->uid = strtoll(PQgetvalue(s->row, 0, 0), NULL, 10);
    wsignup_next(s);
}
WSIGNUP_CB(wsignup_inserted_cb, wsignup_inserted)

static void wsignup_begun(struct wsignup *s, struct wdb_tx *tx,
                          const struct weft_db_res *res)
{
    if (res->error != NULL || tx == NULL) {
        wsignup_db_failed(s, tx, res);
        return;
    }
    s->tx = tx;
    wreq_pending_add(s->r);
    if (wdb_tx_query(tx, s->sql, s->nparams, (const char *const *)s->params,
                     wsignup_inserted_cb, s) != 0) {
        s->r->pending--;
        wsignup_unavailable(s, "the database is busy");
    }
}
WSIGNUP_CB(wsignup_begun_cb, wsignup_begun)

int wsignup_start(struct weft_req *r, const char *insert_sql, int nparams,
                  const char *const *params, json_t *body, wsignup_fn done,
                  void *arg)
{
    struct wsignup *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -1;
    s->r = r;
    s->done = done;
    s->arg = arg;
    s->body = json_incref(body);
    s->sql = strdup(insert_sql);
    s->params = calloc((size_t)nparams + 1, sizeof(*s->params));
    if (s->sql == NULL || s->params == NULL)
        goto fail;
    for (; s->nparams < nparams; s->nparams++)
        if (params[s->nparams] != NULL &&
            (s->params[s->nparams] = strdup(params[s->nparams])) == NULL)
            goto fail;
    s->nsteps = wreg_signups(&s->steps);
    if (s->nsteps < 0) {
        s->nsteps = 0;
        goto fail;
    }
    wreq_pending_add(r);
    if (wdb_tx_begin(r->loop, r, wsignup_begun_cb, s) != 0) {
        r->pending--;
        goto fail;
    }
    return 0;
fail:
    wsignup_free(s);
    return -1;
}

int wsignup_step_done(struct weft_req *r, int status, const char *code,
                      const char *message)
{
    struct wsignup *s = r->signup;

    if (s == NULL || !s->running)
        return WEFT_EINVAL;
    s->running = 0;
    r->signup = NULL;
    if (r->inst != NULL) {
        wplug_inst_release(r->inst);
        r->inst = NULL;
    }
    if (status == 0) {
        wsignup_next(s);
        return WEFT_OK;
    }
    if (status < 400 || status > 599)
        status = 500;
    s->status = status;
    snprintf(s->code, sizeof(s->code), "%s",
             code != NULL ? code : (status >= 500 ? "internal" : "refused"));
    snprintf(s->msg, sizeof(s->msg), "%s",
             message != NULL ? message : "the registration was refused");
    wsignup_refuse(s);
    return WEFT_OK;
}
