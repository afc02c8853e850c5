/* db.c - PostgreSQL connections on the event loops.
 *
 * Each loop owns `pool_size` non-blocking libpq connections and a bounded
 * queue of statements waiting for one; nothing here is shared between loops
 * except the "connections up" counter. A statement is prepared once per
 * connection and then executed by name. A transaction reserves its
 * connection until it ends (or its request ends: then it is rolled back).
 *
 * An operation (a statement, or a transaction's BEGIN, step or end) is in
 * exactly one state: new, queued (in the loop's wait queue), sent (on a
 * connection) or decided (its outcome is set and it waits on the loop's
 * ready list). wdb_decide() is the only way out of the first three: it
 * takes the operation off the queue or its connection and disarms its
 * timer, once. Completion callbacks run only from wdb_deliver(), an event
 * of the loop's own, which owns the operations it takes off the ready
 * list: so a callback never runs inside a call into the pool, and whatever
 * happens to an operation after its outcome was decided (its client goes,
 * its timer was due, its connection breaks, the request is freed) can no
 * longer find it to complete it a second time.
 *
 * A statement that times out fails at once: the server may never answer.
 * Its connection is abandoned, not reused while the statement may still
 * be running: a cancel request goes out on threads of its own
 * (db_cancel.c; PQcancel blocks, and must not take the shared worker
 * pool), and the connection settles until its result has been drained and
 * the cancel request ended, or is dropped and re-opened when that takes
 * longer than query_timeout. A broken connection fails its statement with
 * SQLSTATE 08006 and is re-opened with backoff; while none is up,
 * statements fail at once instead of waiting, so clients get a quick 503. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "db.h"
#include "db_cancel.h"
#include "host.h"
#include "log.h"
#include "loop.h"
#include "request.h"

#define WDB_MAX_STMTS 128   /* prepared statements kept per connection */
#define WDB_BACKOFF_MIN 100 /* ms */
#define WDB_BACKOFF_MAX 5000
#define WDB_SETTLE_POLL 20   /* ms between looks at a settling connection */
#define WDB_CONNECT_MIN 2000 /* ms a connection attempt may take, at least */
#define WDB_CANCEL_THREADS 2
#define WDB_CANCEL_WAIT 1000 /* ms given to cancel requests at shutdown */

/* SETTLING: an abandoned statement may still run; not reused until it has
 * been drained and its cancel request ended (or the deadline drops it). */
enum { DBC_DOWN = 0, DBC_CONNECTING, DBC_IDLE, DBC_BUSY, DBC_SETTLING };
enum { PH_DEALLOC = 0, PH_PREPARE, PH_EXEC };
enum { OP_QUERY = 0, OP_BEGIN, OP_END };
enum { OPS_NEW = 0, OPS_QUEUED, OPS_SENT, OPS_DECIDED };

struct wdb_stmt {
    char *sql;
    char name[24];
    int nparams;
    struct wdb_stmt *next;
};

struct wdb_conn {
    struct wdb_loop *dl;
    int id;
    PGconn *pg;
    int state;
    struct event *rev, *wev, *retry;
    struct event *ctimer; /* bounds a connection attempt     */
    struct event *settle; /* polls a settling connection     */
    long long settle_until;
    struct wdbc_job *cancel; /* a cancel request not yet let go of */
    int sent;                /* a command's results are outstanding */
    int backoff_ms;
    struct wdb_op *op;
    struct wdb_tx *tx; /* reserved by a transaction */
    struct wdb_stmt *stmts;
    int nstmts, gen;
    unsigned next_stmt;
};

struct wdb_loop {
    struct wloop *loop;
    struct wdb_conn *conns;
    int n, nup;
    struct wdb_op *qhead, *qtail; /* waiting for a connection */
    int qlen;
    struct wdb_op *rhead, *rtail; /* decided, waiting for delivery */
    struct event *deliver;
};

struct wdb_op {
    struct wdb_loop *dl;
    int state, kind, phase;
    char *sql;
    int nparams;
    char **params;
    wdb_cb cb; /* NULL once its request is gone */
    void *arg;
    struct weft_req *req;
    struct wdb_op *req_next;
    struct wdb_tx *tx;
    struct wdb_conn *conn;
    struct event *timer;
    struct wdb_stmt *stmt;
    PGresult *res;
    char err[256];
    const char *sqlstate;
    int failed, cancelled;
    struct wdb_op *next; /* in the wait queue or on the ready list */
};

struct wdb_tx {
    const weft_api *api; /* first: the SDK's handle */
    struct wdb_loop *dl;
    struct wdb_conn *conn;
    struct weft_req *req;
    int busy, broken, ending;
};

static struct wdb_config wdb_cfg;
static struct wdb_loop *wdb_loops; /* one per event loop, by loop id */
static atomic_int wdb_up;       /* connections up, all loops       */
static atomic_int wdb_loops_up; /* loops with at least one up      */
static atomic_int wdb_gen;
static int wdb_on;

const struct weft_db_res wdb_busy_res = {
    &wapi_table, NULL, "the database wait queue is full", "53300"};

static void wdb_connect(struct wdb_conn *c);
static void wdb_pump(struct wdb_loop *dl);
static void wdb_send(struct wdb_conn *c);
static void wdb_down(struct wdb_conn *c, const char *why);
static int wdb_tx_step(struct wdb_tx *tx, int kind, const char *sql,
                       int nparams, const char *const *params, wdb_cb cb,
                       void *arg);

int wdb_enabled(void)
{
    return wdb_on;
}

/* Ready when every loop can run a statement: a loop without a connection
 * fails its statements at once. */
int wdb_ready(void)
{
    return wdb_on && atomic_load(&wdb_loops_up) == whost_g->nloops;
}

void wdb_schema_changed(void)
{
    atomic_fetch_add(&wdb_gen, 1);
}

static struct wdb_loop *wdb_loop_of(struct wloop *l)
{
    return wdb_on && l->id >= 0 && l->id < whost_g->nloops ? &wdb_loops[l->id]
                                                           : NULL;
}

static void wdb_tv(struct timeval *tv, long long ms)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* Counted in wdb_up: usable now or once it settled. */
static int wdb_state_up(int state)
{
    return state == DBC_IDLE || state == DBC_BUSY || state == DBC_SETTLING;
}

/* ---- operations ------------------------------------------------------- */

static void wdb_op_free(struct wdb_op *op)
{
    if (op->timer != NULL)
        event_free(op->timer);
    if (op->res != NULL)
        PQclear(op->res);
    for (int i = 0; i < op->nparams; i++)
        free(op->params[i]);
    free(op->params);
    free(op->sql);
    free(op);
}

static void wdb_req_unlink(struct wdb_op *op)
{
    struct wdb_op **pp;

    if (op->req == NULL)
        return;
    for (pp = &op->req->ops; *pp != NULL; pp = &(*pp)->req_next)
        if (*pp == op) {
            *pp = op->req_next;
            break;
        }
    op->req = NULL;
}

static void wdb_queue_remove(struct wdb_loop *dl, struct wdb_op *op)
{
    struct wdb_op **pp;

    dl->qtail = NULL;
    for (pp = &dl->qhead; *pp != NULL;) {
        if (*pp == op) {
            *pp = op->next;
            dl->qlen--;
            continue;
        }
        dl->qtail = *pp;
        pp = &(*pp)->next;
    }
    op->next = NULL;
}

/* Settle the outcome of `op`, once: a failure when `sqlstate` is set,
 * else op->res. The operation leaves the queue or its connection (the
 * caller puts the connection in its next state), its timer is disarmed
 * and it waits for wdb_deliver(). */
static void wdb_decide(struct wdb_op *op, const char *sqlstate,
                       const char *msg)
{
    struct wdb_loop *dl = op->dl;

    if (op->state == OPS_DECIDED) {
        wlog(WLOG_ERROR, "db", "an outcome was decided twice (ignored)");
        return;
    }
    if (op->state == OPS_QUEUED)
        wdb_queue_remove(dl, op);
    if (op->conn != NULL && op->conn->op == op)
        op->conn->op = NULL;
    op->conn = NULL;
    /* A statement being prepared is not in the connection's list yet: it
     * is the operation's alone (listed ones belong to the connection). */
    if (op->phase == PH_PREPARE && op->stmt != NULL) {
        free(op->stmt->sql);
        free(op->stmt);
    }
    op->stmt = NULL;
    evtimer_del(op->timer);
    if (sqlstate != NULL) {
        op->failed = 1;
        op->sqlstate = sqlstate;
        snprintf(op->err, sizeof(op->err), "%s", msg);
        if (op->res != NULL)
            PQclear(op->res);
        op->res = NULL;
    }
    op->state = OPS_DECIDED;
    op->next = NULL;
    if (dl->rtail != NULL)
        dl->rtail->next = op;
    else
        dl->rhead = op;
    dl->rtail = op;
    event_active(dl->deliver, EV_TIMEOUT, 0);
}

static void wdb_ignore(struct wdb_tx *tx, const struct weft_db_res *res,
                       void *arg)
{
    (void)tx;
    (void)arg;
    if (res->error != NULL)
        wlog(WLOG_WARN, "db", "automatic rollback: %s", res->error);
}

static void wdb_conn_release(struct wdb_conn *c);

/* Hand a decided outcome to the caller and free the operation. */
static void wdb_complete(struct wdb_op *op)
{
    struct weft_db_res r = {&wapi_table, op->res, NULL, NULL};
    struct wdb_tx *tx = op->tx;

    wdb_req_unlink(op);
    if (op->failed) {
        r.error = op->err;
        r.sqlstate = op->sqlstate;
    } else if (op->res != NULL &&
               PQresultStatus(op->res) != PGRES_COMMAND_OK &&
               PQresultStatus(op->res) != PGRES_TUPLES_OK) {
        r.error = PQresultErrorMessage(op->res);
        r.sqlstate = PQresultErrorField(op->res, PG_DIAG_SQLSTATE);
    }
    if (tx != NULL) {
        tx->busy = 0;
        if (op->kind == OP_END || (op->kind == OP_BEGIN && r.error != NULL)) {
            /* The transaction is over: its connection is free again. */
            struct wdb_conn *c = tx->conn;
            if (c != NULL && c->tx == tx) {
                c->tx = NULL;
                if (c->state == DBC_BUSY && c->op == NULL) {
                    wdb_conn_release(c);
                    wdb_pump(c->dl);
                }
            }
            free(tx);
            tx = NULL;
        }
    }
    if (op->cb != NULL) {
        op->cb(tx, &r, op->arg);
    } else if (tx != NULL && !tx->ending) {
        /* Its request is gone: nobody will end the transaction. */
        wlog(WLOG_WARN, "db", "request ended inside a transaction: rolling "
                              "back");
        if (wdb_tx_step(tx, OP_END, "ROLLBACK", 0, NULL, wdb_ignore, NULL) !=
            0)
            tx->broken = 1;
    }
    wdb_op_free(op);
}

/* The loop's ready list, on a turn of its own. */
static void wdb_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct wdb_loop *dl = arg;
    struct wdb_op *op, *list = dl->rhead;

    (void)fd;
    (void)what;
    dl->rhead = dl->rtail = NULL;
    while ((op = list) != NULL) {
        list = op->next;
        op->next = NULL;
        wdb_complete(op);
    }
}

/* Ask the server to stop what `c` runs; at most one request in flight. */
static void wdb_cancel(struct wdb_conn *c)
{
    if (c->pg == NULL)
        return;
    if (c->cancel != NULL && wdbc_done(c->cancel)) {
        wdbc_drop(c->cancel);
        c->cancel = NULL;
    }
    if (c->cancel == NULL)
        c->cancel = wdbc_submit(c->pg);
}

static void wdb_settle_check(struct wdb_conn *c)
{
    if (c->state != DBC_SETTLING)
        return;
    if (!c->sent && (c->cancel == NULL || wdbc_done(c->cancel))) {
        wdbc_drop(c->cancel);
        c->cancel = NULL;
        evtimer_del(c->settle);
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
            wdb_down(c, "a statement was abandoned inside a transaction");
            return;
        }
        c->state = DBC_IDLE;
        wdb_pump(c->dl);
        return;
    }
    if (wloop_now_ms() >= c->settle_until)
        wdb_down(c, "an abandoned statement did not end within "
                    "query_timeout");
}

static void wdb_settle_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wdb_settle_check(arg);
}

static void wdb_settle(struct wdb_conn *c)
{
    struct timeval tv;

    if (c->state != DBC_SETTLING) {
        c->state = DBC_SETTLING;
        c->settle_until = wloop_now_ms() + wdb_cfg.query_timeout_ms;
        wdb_tv(&tv, WDB_SETTLE_POLL);
        if (evtimer_add(c->settle, &tv) != 0) {
            wdb_down(c, "out of memory");
            return;
        }
    }
    wdb_settle_check(c);
}

/* `c` has no operation and no transaction any more. */
static void wdb_conn_release(struct wdb_conn *c)
{
    if (c->sent || (c->cancel != NULL && !wdbc_done(c->cancel))) {
        /* A late cancel request would hit the next statement. */
        wdb_settle(c);
        return;
    }
    wdbc_drop(c->cancel);
    c->cancel = NULL;
    c->state = DBC_IDLE;
}

/* The statement on `c` was given up (its operation is decided already). */
static void wdb_abandon(struct wdb_conn *c)
{
    /* It may have left a prepared statement behind: start afresh. */
    c->gen = -1;
    if (c->tx != NULL) {
        c->tx->broken = 1;
        c->tx->conn = NULL;
        c->tx = NULL;
    }
    wdb_cancel(c);
    if (c->cancel == NULL) {
        wdb_down(c, "a timed-out statement cannot be cancelled");
        return;
    }
    wdb_settle(c);
}

static void wdb_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct wdb_op *op = arg;
    struct wdb_conn *c = op->conn;

    (void)fd;
    (void)what;
    if (op->state == OPS_QUEUED) {
        wdb_decide(op, "57014", "timed out waiting for a database connection");
    } else if (op->state == OPS_SENT && c != NULL) {
        wdb_decide(op, "57014", "the query timed out");
        wdb_abandon(c);
    }
}

static struct wdb_op *wdb_op_new(struct wdb_loop *dl, struct weft_req *req,
                                 int kind, const char *sql, int nparams,
                                 const char *const *params, wdb_cb cb,
                                 void *arg)
{
    struct wdb_op *op;
    struct timeval tv;

    if (sql == NULL || cb == NULL || nparams < 0 || nparams > WDB_MAX_PARAMS ||
        (nparams > 0 && params == NULL))
        return NULL;
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->dl = dl;
    op->kind = kind;
    op->cb = cb;
    op->arg = arg;
    op->sql = strdup(sql);
    op->nparams = nparams;
    op->params = calloc((size_t)(nparams > 0 ? nparams : 1), sizeof(char *));
    op->timer = evtimer_new(dl->loop->base, wdb_timeout, op);
    if (op->sql == NULL || op->params == NULL || op->timer == NULL) {
        wdb_op_free(op);
        return NULL;
    }
    for (int i = 0; i < nparams; i++)
        if (params[i] != NULL && (op->params[i] = strdup(params[i])) == NULL) {
            wdb_op_free(op);
            return NULL;
        }
    wdb_tv(&tv, wdb_cfg.query_timeout_ms);
    if (evtimer_add(op->timer, &tv) != 0) {
        wdb_op_free(op);
        return NULL;
    }
    if (req != NULL) {
        op->req = req;
        op->req_next = req->ops;
        req->ops = op;
    }
    return op;
}

/* Any connection up (or about to be usable) on this loop? */
static int wdb_loop_up(struct wdb_loop *dl)
{
    for (int i = 0; i < dl->n; i++)
        if (wdb_state_up(dl->conns[i].state))
            return 1;
    return 0;
}

static int wdb_enqueue(struct wdb_loop *dl, struct wdb_op *op)
{
    if (!wdb_loop_up(dl)) {
        wdb_decide(op, "08006", "the database is unavailable");
        return 0;
    }
    if (dl->qlen >= wdb_cfg.queue_max) {
        wdb_req_unlink(op);
        wdb_op_free(op);
        return WEFT_EBUSY;
    }
    if (dl->qtail != NULL)
        dl->qtail->next = op;
    else
        dl->qhead = op;
    dl->qtail = op;
    dl->qlen++;
    op->state = OPS_QUEUED;
    wdb_pump(dl);
    return 0;
}

int wdb_query(struct wloop *l, struct weft_req *req, const char *sql,
              int nparams, const char *const *params, wdb_cb cb, void *arg)
{
    struct wdb_loop *dl = wdb_loop_of(l);
    struct wdb_op *op;

    if (dl == NULL)
        return WEFT_ENOSYS;
    op = wdb_op_new(dl, req, OP_QUERY, sql, nparams, params, cb, arg);
    if (op == NULL)
        return WEFT_EINVAL;
    return wdb_enqueue(dl, op);
}

int wdb_tx_begin(struct wloop *l, struct weft_req *req, wdb_cb cb, void *arg)
{
    struct wdb_loop *dl = wdb_loop_of(l);
    struct wdb_op *op;
    struct wdb_tx *tx;
    int rc;

    if (dl == NULL)
        return WEFT_ENOSYS;
    tx = calloc(1, sizeof(*tx));
    if (tx == NULL)
        return WEFT_EBUSY;
    tx->api = &wapi_table;
    tx->dl = dl;
    tx->req = req;
    tx->busy = 1;
    op = wdb_op_new(dl, req, OP_BEGIN, "BEGIN", 0, NULL, cb, arg);
    if (op == NULL) {
        free(tx);
        return WEFT_EINVAL;
    }
    op->tx = tx;
    rc = wdb_enqueue(dl, op);
    if (rc != 0)
        free(tx);
    return rc;
}

/* A step of a transaction goes straight to its connection. */
static int wdb_tx_step(struct wdb_tx *tx, int kind, const char *sql,
                       int nparams, const char *const *params, wdb_cb cb,
                       void *arg)
{
    struct wdb_op *op;

    if (tx == NULL || tx->busy || tx->ending)
        return WEFT_EINVAL;
    op = wdb_op_new(tx->dl, tx->req, kind, sql, nparams, params, cb, arg);
    if (op == NULL)
        return WEFT_EINVAL;
    op->tx = tx;
    tx->busy = 1;
    if (kind == OP_END)
        tx->ending = 1;
    if (tx->broken || tx->conn == NULL || tx->conn->state != DBC_BUSY ||
        tx->conn->op != NULL) {
        wdb_decide(op, "08006", "the transaction's connection was lost");
        return 0;
    }
    op->conn = tx->conn;
    op->state = OPS_SENT;
    tx->conn->op = op;
    op->phase = PH_EXEC;
    wdb_send(tx->conn);
    return 0;
}

int wdb_tx_query(struct wdb_tx *tx, const char *sql, int nparams,
                 const char *const *params, wdb_cb cb, void *arg)
{
    return wdb_tx_step(tx, OP_QUERY, sql, nparams, params, cb, arg);
}

int wdb_tx_end(struct wdb_tx *tx, int commit, wdb_cb cb, void *arg)
{
    return wdb_tx_step(tx, OP_END, commit ? "COMMIT" : "ROLLBACK", 0, NULL, cb,
                       arg);
}

struct weft_req *wdb_tx_req(const struct wdb_tx *tx)
{
    return tx != NULL ? tx->req : NULL;
}

/* Nobody reads the answer: waiting statements are dropped, running ones
 * asked to stop (their outcome still reaches the request). */
void wdb_req_gone(struct weft_req *req)
{
    struct wdb_op *op, *next;

    for (op = req->ops; op != NULL; op = next) {
        next = op->req_next;
        if (op->state == OPS_QUEUED) {
            wdb_decide(op, "57014", "the client went away");
        } else if (op->state == OPS_SENT && op->conn != NULL &&
                   !op->cancelled) {
            op->cancelled = 1;
            wdb_cancel(op->conn);
        }
    }
}

void wdb_req_release(struct weft_req *req)
{
    struct wdb_loop *dl;
    struct wdb_op *op, *next;

    if (!wdb_on || req->loop == NULL || (dl = wdb_loop_of(req->loop)) == NULL)
        return;
    /* Outcomes still bound for this request have nobody to go to: they
     * are dropped when they come (a transaction is rolled back then). */
    for (op = req->ops; op != NULL; op = next) {
        next = op->req_next;
        if (op->tx != NULL && op->tx->req == req)
            op->tx->req = NULL;
        op->req = NULL;
        op->req_next = NULL;
        op->cb = NULL;
        op->arg = NULL;
        if (op->state == OPS_QUEUED)
            wdb_decide(op, "57014", "the request ended");
    }
    req->ops = NULL;
    for (int i = 0; i < dl->n; i++) {
        struct wdb_tx *tx = dl->conns[i].tx;
        if (tx == NULL || tx->req != req)
            continue;
        tx->req = NULL;
        if (tx->ending || tx->busy)
            continue; /* its last step is on its way */
        wlog(WLOG_WARN, "db", "request ended inside a transaction: rolling "
                              "back");
        wdb_tx_end(tx, 0, wdb_ignore, NULL);
    }
}

/* ---- connections ------------------------------------------------------ */

static void wdb_stmts_clear(struct wdb_conn *c)
{
    struct wdb_stmt *s, *n;

    for (s = c->stmts; s != NULL; s = n) {
        n = s->next;
        free(s->sql);
        free(s);
    }
    c->stmts = NULL;
    c->nstmts = 0;
}

static struct wdb_stmt *wdb_stmt_find(struct wdb_conn *c, const char *sql,
                                      int nparams)
{
    for (struct wdb_stmt *s = c->stmts; s != NULL; s = s->next)
        if (s->nparams == nparams && strcmp(s->sql, sql) == 0)
            return s;
    return NULL;
}

static void wdb_down(struct wdb_conn *c, const char *why)
{
    struct timeval tv;
    struct wdb_op *op = c->op;
    int was_up = wdb_state_up(c->state);

    if (was_up) {
        atomic_fetch_sub(&wdb_up, 1);
        if (--c->dl->nup == 0)
            atomic_fetch_sub(&wdb_loops_up, 1);
        wlog(WLOG_WARN, "db", "loop %d connection %d lost: %s",
             c->dl->loop->id, c->id, why);
    }
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    evtimer_del(c->ctimer);
    evtimer_del(c->settle);
    /* A cancel request still running goes to a backend that is gone (or
     * about to be): harmless, and no longer ours to wait for. */
    wdbc_drop(c->cancel);
    c->cancel = NULL;
    c->sent = 0;
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->state = DBC_DOWN;
    if (c->tx != NULL) {
        c->tx->broken = 1;
        c->tx->conn = NULL;
        c->tx = NULL;
    }
    if (op != NULL)
        wdb_decide(op, "08006", "database connection lost");
    wdb_stmts_clear(c);
    /* Fail fast while nothing is up on this loop. */
    if (!wdb_loop_up(c->dl))
        while (c->dl->qhead != NULL)
            wdb_decide(c->dl->qhead, "08006", "the database is unavailable");
    if (atomic_load(&whost_g->stopping) && c->retry == NULL)
        return;
    wdb_tv(&tv, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > WDB_BACKOFF_MAX ? WDB_BACKOFF_MAX
                                                        : c->backoff_ms * 2;
    evtimer_add(c->retry, &tv);
}

static void wdb_flush(struct wdb_conn *c)
{
    int rc = PQflush(c->pg);

    if (rc < 0)
        wdb_down(c, PQerrorMessage(c->pg));
    else if (rc == 1)
        event_add(c->wev, NULL);
}

static void wdb_send(struct wdb_conn *c)
{
    struct wdb_op *op = c->op;
    int gen = atomic_load(&wdb_gen), ok;

    /* Only a schema change (or an abandoned statement) clears the
     * connection's prepared statements. */
    if (op->phase == PH_DEALLOC && gen == c->gen)
        op->phase = PH_PREPARE;
    if (op->phase == PH_DEALLOC) {
        c->gen = gen;
        wdb_stmts_clear(c);
        ok = PQsendQuery(c->pg, "DEALLOCATE ALL");
    } else if (op->kind != OP_QUERY || op->tx != NULL) {
        op->phase = PH_EXEC;
        ok = PQsendQueryParams(c->pg, op->sql, op->nparams, NULL,
                               (const char *const *)op->params, NULL, NULL, 0);
    } else if (op->phase == PH_PREPARE) {
        op->stmt = wdb_stmt_find(c, op->sql, op->nparams);
        if (op->stmt != NULL || c->nstmts >= WDB_MAX_STMTS) {
            op->phase = PH_EXEC;
            wdb_send(c);
            return;
        }
        op->stmt = calloc(1, sizeof(*op->stmt));
        if (op->stmt == NULL || (op->stmt->sql = strdup(op->sql)) == NULL) {
            free(op->stmt);
            op->stmt = NULL;
            op->phase = PH_EXEC;
            wdb_send(c);
            return;
        }
        snprintf(op->stmt->name, sizeof(op->stmt->name), "w%u",
                 c->next_stmt++);
        op->stmt->nparams = op->nparams;
        ok = PQsendPrepare(c->pg, op->stmt->name, op->sql, op->nparams, NULL);
    } else if (op->stmt != NULL) {
        ok = PQsendQueryPrepared(c->pg, op->stmt->name, op->nparams,
                                 (const char *const *)op->params, NULL, NULL,
                                 0);
    } else {
        ok = PQsendQueryParams(c->pg, op->sql, op->nparams, NULL,
                               (const char *const *)op->params, NULL, NULL, 0);
    }
    if (!ok) {
        wdb_down(c, PQerrorMessage(c->pg));
        return;
    }
    c->sent = 1;
    wdb_flush(c);
}

/* A statement's last result arrived. */
static void wdb_phase_done(struct wdb_conn *c)
{
    struct wdb_op *op = c->op;
    struct wdb_tx *tx = op->tx;
    ExecStatusType st = op->res ? PQresultStatus(op->res) : PGRES_FATAL_ERROR;

    if (op->phase == PH_DEALLOC) {
        if (op->res != NULL)
            PQclear(op->res);
        op->res = NULL;
        op->phase = PH_PREPARE;
        wdb_send(c);
        return;
    }
    if (op->phase == PH_PREPARE) {
        struct wdb_stmt *s = op->stmt;
        if (st != PGRES_COMMAND_OK) {
            free(s->sql);
            free(s);
            op->stmt = NULL; /* the error result is the answer */
        } else {
            s->next = c->stmts;
            c->stmts = s;
            c->nstmts++;
            PQclear(op->res);
            op->res = NULL;
            op->phase = PH_EXEC;
            wdb_send(c);
            return;
        }
    }
    if (tx != NULL && op->kind == OP_BEGIN && st == PGRES_COMMAND_OK) {
        tx->conn = c;
        c->tx = tx;
    } else if (tx != NULL && op->kind == OP_END && c->tx == tx) {
        c->tx = NULL;
        tx->conn = NULL;
    }
    wdb_decide(op, NULL, NULL);
    if (c->tx == NULL)
        wdb_conn_release(c);
    wdb_pump(c->dl);
}

static void wdb_readable(evutil_socket_t fd, short what, void *arg)
{
    struct wdb_conn *c = arg;
    PGresult *res;

    (void)fd;
    (void)what;
    if (!PQconsumeInput(c->pg)) {
        wdb_down(c, PQerrorMessage(c->pg));
        return;
    }
    while (c->pg != NULL && !PQisBusy(c->pg)) {
        res = PQgetResult(c->pg);
        if (res == NULL) {
            c->sent = 0;
            if (c->op != NULL)
                wdb_phase_done(c);
            else if (c->state == DBC_SETTLING)
                wdb_settle_check(c); /* an abandoned statement drained */
            return;
        }
        if (c->op == NULL) {
            PQclear(res); /* an abandoned statement's, or a stray result */
            continue;
        }
        if (c->op->res != NULL)
            PQclear(c->op->res);
        c->op->res = res;
    }
}

static void wdb_writable(evutil_socket_t fd, short what, void *arg)
{
    struct wdb_conn *c = arg;

    (void)fd;
    (void)what;
    wdb_flush(c);
}

/* Give waiting statements to idle connections. */
static void wdb_pump(struct wdb_loop *dl)
{
    for (int i = 0; i < dl->n && dl->qhead != NULL; i++) {
        struct wdb_conn *c = &dl->conns[i];
        struct wdb_op *op;

        if (c->state != DBC_IDLE || c->tx != NULL || c->op != NULL)
            continue;
        op = dl->qhead;
        wdb_queue_remove(dl, op);
        op->conn = c;
        op->state = OPS_SENT;
        op->phase = PH_DEALLOC;
        c->op = op;
        c->state = DBC_BUSY;
        wdb_send(c);
    }
}

/* Server notices go to the debug log, not raw to stderr. */
static void wdb_notice(void *arg, const char *msg)
{
    (void)arg;
    wlog(WLOG_DEBUG, "db", "%.*s", (int)strcspn(msg, "\n"), msg);
}

static void wdb_connect_poll(evutil_socket_t fd, short what, void *arg)
{
    struct wdb_conn *c = arg;
    PostgresPollingStatusType st;

    (void)fd;
    (void)what;
    st = PQconnectPoll(c->pg);
    if (c->rev != NULL) {
        event_free(c->rev);
        c->rev = NULL;
    }
    switch (st) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        c->rev = event_new(c->dl->loop->base, PQsocket(c->pg),
                           st == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
                           wdb_connect_poll, c);
        if (c->rev == NULL || event_add(c->rev, NULL) != 0)
            wdb_down(c, "out of memory");
        return;
    case PGRES_POLLING_OK:
        evtimer_del(c->ctimer);
        PQsetNoticeProcessor(c->pg, wdb_notice, NULL);
        if (PQsetnonblocking(c->pg, 1) != 0) {
            wdb_down(c, PQerrorMessage(c->pg));
            return;
        }
        c->rev = event_new(c->dl->loop->base, PQsocket(c->pg),
                           EV_READ | EV_PERSIST, wdb_readable, c);
        c->wev = event_new(c->dl->loop->base, PQsocket(c->pg), EV_WRITE,
                           wdb_writable, c);
        if (c->rev == NULL || c->wev == NULL || event_add(c->rev, NULL) != 0) {
            wdb_down(c, "out of memory");
            return;
        }
        c->state = DBC_IDLE;
        c->backoff_ms = WDB_BACKOFF_MIN;
        c->gen = atomic_load(&wdb_gen);
        if (atomic_fetch_add(&wdb_up, 1) == 0)
            wlog(WLOG_INFO, "db", "connected");
        if (c->dl->nup++ == 0)
            atomic_fetch_add(&wdb_loops_up, 1);
        wdb_pump(c->dl);
        return;
    default:
        c->state = DBC_CONNECTING; /* so wdb_down() logs nothing twice */
        wdb_down(c, PQerrorMessage(c->pg));
        return;
    }
}

/* A server that accepts but never answers (stopped) holds a non-blocking
 * connection attempt forever: libpq's connect_timeout is ours to apply. */
static void wdb_connect_expired(evutil_socket_t fd, short what, void *arg)
{
    struct wdb_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == DBC_CONNECTING)
        wdb_down(c, "connecting timed out");
}

static void wdb_connect(struct wdb_conn *c)
{
    struct timeval tv;
    long long ms = 2LL * wdb_cfg.query_timeout_ms;

    c->pg = PQconnectStart(wdb_cfg.conninfo);
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        c->state = DBC_CONNECTING;
        wdb_down(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    c->state = DBC_CONNECTING;
    wdb_tv(&tv, ms < WDB_CONNECT_MIN ? WDB_CONNECT_MIN : ms);
    evtimer_add(c->ctimer, &tv);
    wdb_connect_poll(-1, 0, c);
}

static void wdb_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wdb_connect(arg);
}

static void wdb_loop_start(void *arg)
{
    struct wdb_loop *dl = arg;

    for (int i = 0; i < dl->n; i++)
        wdb_connect(&dl->conns[i]);
}

int wdb_start(const struct wdb_config *cfg)
{
    wdb_cfg = *cfg;
    wdb_cfg.conninfo = strdup(cfg->conninfo);
    wdb_loops = calloc((size_t)whost_g->nloops, sizeof(*wdb_loops));
    if (wdb_cfg.conninfo == NULL || wdb_loops == NULL)
        return -1;
    for (int l = 0; l < whost_g->nloops; l++) {
        struct wdb_loop *dl = &wdb_loops[l];
        dl->loop = &whost_g->loops[l];
        dl->n = cfg->pool_size;
        dl->conns = calloc((size_t)dl->n, sizeof(*dl->conns));
        dl->deliver = event_new(dl->loop->base, -1, 0, wdb_deliver, dl);
        if (dl->conns == NULL || dl->deliver == NULL)
            return -1;
        for (int i = 0; i < dl->n; i++) {
            struct wdb_conn *c = &dl->conns[i];
            c->dl = dl;
            c->id = i;
            c->backoff_ms = WDB_BACKOFF_MIN;
            c->retry = evtimer_new(dl->loop->base, wdb_retry, c);
            c->ctimer = evtimer_new(dl->loop->base, wdb_connect_expired, c);
            c->settle = event_new(dl->loop->base, -1, EV_PERSIST,
                                  wdb_settle_tick, c);
            if (c->retry == NULL || c->ctimer == NULL || c->settle == NULL)
                return -1;
        }
    }
    /* One cancel request per connection may wait; more are not needed. */
    if (wdbc_start(WDB_CANCEL_THREADS, whost_g->nloops * cfg->pool_size) != 0)
        return -1;
    wdb_on = 1;
    for (int l = 0; l < whost_g->nloops; l++)
        if (wloop_post(&whost_g->loops[l], wdb_loop_start, &wdb_loops[l]) != 0)
            return -1;
    return 0;
}

static void wdb_free_list(struct wdb_op *op)
{
    struct wdb_op *next;

    for (; op != NULL; op = next) {
        next = op->next;
        wdb_op_free(op);
    }
}

void wdb_stop(void)
{
    if (wdb_loops == NULL)
        return;
    for (int l = 0; l < whost_g->nloops; l++) {
        struct wdb_loop *dl = &wdb_loops[l];
        /* The requests are gone already (connections closed first): the
         * operations are freed without touching them. */
        wdb_free_list(dl->qhead);
        wdb_free_list(dl->rhead);
        dl->qhead = dl->qtail = dl->rhead = dl->rtail = NULL;
        for (int i = 0; dl->conns != NULL && i < dl->n; i++) {
            struct wdb_conn *c = &dl->conns[i];
            if (c->op != NULL)
                wdb_op_free(c->op);
            free(c->tx);
            wdbc_drop(c->cancel);
            if (c->rev != NULL)
                event_free(c->rev);
            if (c->wev != NULL)
                event_free(c->wev);
            if (c->retry != NULL)
                event_free(c->retry);
            if (c->ctimer != NULL)
                event_free(c->ctimer);
            if (c->settle != NULL)
                event_free(c->settle);
            if (c->pg != NULL)
                PQfinish(c->pg);
            wdb_stmts_clear(c);
        }
        if (dl->deliver != NULL)
            event_free(dl->deliver);
        free(dl->conns);
    }
    wdbc_stop(WDB_CANCEL_WAIT);
    free(wdb_loops);
    wdb_loops = NULL;
    free(wdb_cfg.conninfo);
    wdb_cfg.conninfo = NULL;
    wdb_on = 0;
    atomic_store(&wdb_up, 0);
    atomic_store(&wdb_loops_up, 0);
}

/* ---- results as JSON, errors as answers -------------------------------- */

/* Type OIDs from PostgreSQL's catalog (stable across versions). */
#define WDB_BOOLOID 16
#define WDB_INT8OID 20
#define WDB_INT2OID 21
#define WDB_INT4OID 23
#define WDB_JSONOID 114
#define WDB_FLOAT4OID 700
#define WDB_FLOAT8OID 701
#define WDB_JSONBOID 3802
#define WDB_DATEOID 1082
#define WDB_TIMESTAMPOID 1114
#define WDB_TIMESTAMPTZOID 1184

/* Read exactly `n` digits; -1 when one is missing. */
static long wdb_digits(const char **s, int n)
{
    long v = 0;

    for (int i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9')
            return -1;
        v = v * 10 + (**s - '0');
    }
    return v;
}

static int wdb_mdays(long y, long m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back: an
 * offset with seconds (old local mean times) or minutes only becomes
 * exact UTC this way, whatever the session's TimeZone is. */
static long long wdb_days(long y, long m, long d)
{
    long long yy = y - (m <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;

    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void wdb_civil(long long z, long *y, long *m, long *d)
{
    long long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (long)(doy - (153 * mp + 2) / 5 + 1);
    *m = (long)(mp < 10 ? mp + 3 : mp - 9);
    *y = (long)(yoe + era * 400 + (*m <= 2));
}

int wdb_time_rfc3339(unsigned oid, const char *v, char *out, size_t n)
{
    long y, mo, d, h = 0, mi = 0, s = 0, oh = 0, om = 0, os = 0;
    const char *frac = "", *p = v;
    int nfrac = 0, sign = 0, len;

    if (v == NULL || out == NULL)
        return -1;
    /* ISO DateStyle only: PostgreSQL's default. Other styles, BC dates,
     * years past 9999 and infinities fail here and stay text. */
    if ((y = wdb_digits(&p, 4)) < 0 || *p++ != '-' ||
        (mo = wdb_digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
        (d = wdb_digits(&p, 2)) < 1 || d > wdb_mdays(y, mo))
        return -1;
    if (oid == WDB_DATEOID) {
        if (*p != '\0')
            return -1;
        len = snprintf(out, n, "%04ld-%02ld-%02ld", y, mo, d);
        return len > 0 && (size_t)len < n ? 0 : -1;
    }
    if (*p++ != ' ' || (h = wdb_digits(&p, 2)) < 0 || h > 23 ||
        *p++ != ':' || (mi = wdb_digits(&p, 2)) < 0 || mi > 59 ||
        *p++ != ':' || (s = wdb_digits(&p, 2)) < 0 || s > 59)
        return -1;
    if (*p == '.') {
        frac = ++p;
        while (p[0] >= '0' && p[0] <= '9' && nfrac < 9)
            p++, nfrac++;
        if (nfrac == 0)
            return -1;
    }
    if (oid == WDB_TIMESTAMPTZOID) {
        if (*p != '+' && *p != '-')
            return -1;
        sign = *p++ == '-' ? -1 : 1;
        if ((oh = wdb_digits(&p, 2)) < 0 ||
            (*p == ':' && (p++, (om = wdb_digits(&p, 2)) < 0)) ||
            (*p == ':' && (p++, (os = wdb_digits(&p, 2)) < 0)))
            return -1;
    }
    if (*p != '\0')
        return -1;
    if (sign != 0) {
        long long t = wdb_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s -
                      sign * (oh * 3600 + om * 60 + os);
        long long day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
        long long sec = t - day * 86400;

        wdb_civil(day, &y, &mo, &d);
        if (y < 0 || y > 9999)
            return -1;
        h = (long)(sec / 3600);
        mi = (long)(sec / 60 % 60);
        s = (long)(sec % 60);
    }
    len = snprintf(out, n, "%04ld-%02ld-%02ldT%02ld:%02ld:%02ld%s%.*s%s", y,
                   mo, d, h, mi, s, nfrac ? "." : "", nfrac, frac,
                   sign != 0 ? "Z" : "");
    return len > 0 && (size_t)len < n ? 0 : -1;
}

static json_t *wdb_value_json(const PGresult *res, int row, int col)
{
    const char *v;

    if (PQgetisnull(res, row, col))
        return json_null();
    v = PQgetvalue(res, row, col);
    switch (PQftype(res, col)) {
    case WDB_BOOLOID:
        return json_boolean(v[0] == 't');
    case WDB_INT2OID:
    case WDB_INT4OID:
    case WDB_INT8OID:
        return json_integer((json_int_t)strtoll(v, NULL, 10));
    case WDB_FLOAT4OID:
    case WDB_FLOAT8OID:
        return json_real(strtod(v, NULL));
    case WDB_JSONOID:
    case WDB_JSONBOID: {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        return j != NULL ? j : json_string(v);
    }
    case WDB_DATEOID:
    case WDB_TIMESTAMPOID:
    case WDB_TIMESTAMPTZOID: {
        char t[64];

        return wdb_time_rfc3339(PQftype(res, col), v, t, sizeof(t)) == 0
                   ? json_string(t)
                   : json_string(v);
    }
    default:
        return json_string(v);
    }
}

static json_t *wdb_row_json(const PGresult *res, int row)
{
    json_t *o = json_object();

    for (int c = 0; o != NULL && c < PQnfields(res); c++)
        json_object_set_new(o, PQfname(res, c), wdb_value_json(res, row, c));
    return o;
}

json_t *wdb_json(const struct weft_db_res *r, int row)
{
    json_t *a;

    if (r == NULL || r->res == NULL || r->error != NULL)
        return row < 0 ? json_array() : NULL;
    if (row >= 0)
        return row < PQntuples(r->res) ? wdb_row_json(r->res, row) : NULL;
    a = json_array();
    for (int i = 0; a != NULL && i < PQntuples(r->res); i++)
        json_array_append_new(a, wdb_row_json(r->res, i));
    return a;
}

int wdb_reply_error(struct weft_req *r, const struct weft_db_res *res)
{
    const char *st = res ? res->sqlstate : NULL;

    if (res == NULL || res == &wdb_busy_res)
        return wreq_reply_error(r, 503, "db_busy",
                                "the database is busy; try again");
    wlog_rid(WLOG_WARN, "db", r->rid, "statement failed: %s (%s)",
             res->error ? res->error : "?", st ? st : "-");
    if (st != NULL && strncmp(st, "08", 2) == 0)
        return wreq_reply_error(r, 503, "db_unavailable",
                                "the database is unavailable; try again");
    if (st != NULL && strcmp(st, "57014") == 0)
        return wreq_reply_error(r, 503, "db_timeout",
                                "the database did not answer in time");
    if (st != NULL && strcmp(st, "53300") == 0)
        return wreq_reply_error(r, 503, "db_busy",
                                "the database is busy; try again");
    if (st != NULL && (strcmp(st, "23505") == 0 || strcmp(st, "23P01") == 0))
        return wreq_reply_error(r, 409, "conflict",
                                "that conflicts with existing data");
    return wreq_reply_error(r, 500, "db_error", "a database error occurred");
}
