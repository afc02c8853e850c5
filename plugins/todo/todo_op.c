/*
 * todo_op.c - the transaction behind every mutating route (see todo_op.h).
 *
 * The callbacks below have nobody to return an error to: a failed answer
 * was already logged by the host, so their answers' codes are dropped.
 */
#include "todo_op.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct todo_op *todo_op_new(weft_req *r, todo_step_fn step)
{
    struct todo_op *op = calloc(1, sizeof(*op));

    if (op == NULL)
        return NULL;
    op->step = step;
    todo_user_id(r, op->uid);
    snprintf(op->topic, sizeof(op->topic), "todo.user.%s", op->uid);
    return op;
}

void todo_op_free(struct todo_op *op)
{
    if (op == NULL)
        return;
    free(op->text);
    free(op->ids);
    json_decref(op->event);
    json_decref(op->reply);
    free(op);
}

static void todo_op_next(weft_req *r, weft_tx *tx, const weft_db_res *res,
                         void *arg);

static void todo_op_dropped(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            void *arg)
{
    (void)r;
    (void)tx;
    (void)res;
    todo_op_free(arg);
}

/* Roll back after the answer went out; the request waits for it. If even
 * the ROLLBACK cannot be queued, the host rolls back when the request
 * ends. */
static void todo_op_rollback(weft_tx *tx, struct todo_op *op)
{
    if (tx == NULL || weft_tx_end(tx, 0, todo_op_dropped, op) != WEFT_OK)
        todo_op_free(op);
}

/* A statement (or BEGIN, then tx is NULL) failed. */
static void todo_op_db_failed(weft_req *r, weft_tx *tx, const weft_db_res *res,
                              struct todo_op *op)
{
    (void)weft_db_reply_error(r, res);
    todo_op_rollback(tx, op);
}

/* Nothing could be started: the pool is full (503) or this is a bug. */
static void todo_op_not_started(weft_req *r, weft_tx *tx, int rc,
                                struct todo_op *op)
{
    if (rc == WEFT_EBUSY)
        (void)weft_db_reply_error(r, NULL);
    else
        (void)weft_reply_error(r, 500, "internal",
                               "the change could not be made");
    todo_op_rollback(tx, op);
}

static void todo_op_committed(weft_req *r, weft_tx *tx, const weft_db_res *res,
                              void *arg)
{
    struct todo_op *op = arg;

    (void)tx;
    /* A failed COMMIT is a failure: neither the change nor its event. */
    if (!weft_db_ok(res))
        (void)weft_db_reply_error(r, res);
    else if (op->reply == NULL)
        (void)weft_reply(r, op->status, NULL, NULL, 0);
    else
        (void)weft_reply_json(r, op->status, op->reply);
    todo_op_free(op);
}

static void todo_op_aborted(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            void *arg)
{
    struct todo_op *op = arg;

    /* Whatever the ROLLBACK said, nothing was committed. */
    (void)tx;
    (void)res;
    (void)weft_reply_error(r, op->fail_status, op->fail_code, op->fail_msg);
    todo_op_free(op);
}

static void todo_op_published(weft_req *r, weft_tx *tx, const weft_db_res *res,
                              void *arg)
{
    struct todo_op *op = arg;
    int rc;

    if (!weft_db_ok(res)) {
        todo_op_db_failed(r, tx, res, op);
        return;
    }
    rc = weft_tx_end(tx, 1, todo_op_committed, op);
    if (rc != WEFT_OK)
        todo_op_not_started(r, tx, rc, op);
}

static void todo_op_next(weft_req *r, weft_tx *tx, const weft_db_res *res,
                         void *arg)
{
    struct todo_op *op = arg;
    int rc;

    if (tx == NULL || !weft_db_ok(res)) {
        todo_op_db_failed(r, tx, res, op);
        return;
    }
    rc = op->step(r, tx, res, op);
    if (rc == WEFT_OK)
        return;
    if (rc == TODO_ABORT) {
        if (weft_tx_end(tx, 0, todo_op_aborted, op) != WEFT_OK) {
            (void)weft_reply_error(r, op->fail_status, op->fail_code,
                                   op->fail_msg);
            todo_op_free(op);
        }
        return;
    }
    if (rc == TODO_COMMIT) {
        rc = op->event != NULL ? weft_tx_publish(tx, op->topic, op->event,
                                                 todo_op_published, op)
                               : weft_tx_end(tx, 1, todo_op_committed, op);
        if (rc == WEFT_OK)
            return;
    }
    todo_op_not_started(r, tx, rc, op);
}

int todo_op_run(weft_req *r, struct todo_op *op)
{
    int rc = weft_tx_begin(r, todo_op_next, op);

    if (rc != WEFT_OK) {
        todo_op_free(op);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}

int todo_op_query(weft_tx *tx, struct todo_op *op, const char *sql,
                  int nparams, const char *const *params)
{
    return weft_tx_query(tx, sql, nparams, params, todo_op_next, op);
}

int todo_op_abort(struct todo_op *op, int status, const char *code,
                  const char *msg)
{
    op->fail_status = status;
    op->fail_code = code;
    snprintf(op->fail_msg, sizeof(op->fail_msg), "%s", msg);
    return TODO_ABORT;
}

int todo_op_event(weft_req *r, struct todo_op *op, const char *type,
                  json_int_t list_id, const char *key, json_t *val)
{
    json_t *ev = json_pack("{s:s, s:I, s:s}", "type", type, "list_id",
                           list_id, "by", weft_req_id(r));

    if (ev == NULL) {
        json_decref(val);
        return WEFT_ERR;
    }
    /* json_object_set_new() takes `val` even when it fails (or is NULL). */
    if (key != NULL && json_object_set_new(ev, key, val) != 0) {
        json_decref(ev);
        return WEFT_ERR;
    }
    json_decref(op->event);
    op->event = ev;
    return WEFT_OK;
}

int todo_op_commit(struct todo_op *op, int status, json_t *reply)
{
    op->status = status;
    json_decref(op->reply);
    op->reply = reply;
    return status != 204 && reply == NULL ? WEFT_ERR : TODO_COMMIT;
}

int todo_op_by_id(weft_req *r, todo_step_fn step, const char *missing)
{
    struct todo_op *op;
    char id[TODO_ID_LEN];

    if (todo_path_id(r, id) != 0)
        return weft_reply_error(r, 404, "not_found", missing);
    op = todo_op_new(r, step);
    if (op == NULL)
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    memcpy(op->id, id, sizeof(id));
    return todo_op_run(r, op);
}
