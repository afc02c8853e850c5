/*
 * todo_op.h - one mutating request as a transaction: BEGIN, the route's
 * statements, the event through the outbox (weft_tx_publish), COMMIT, and
 * only then the answer. So an event exists if and only if the change
 * committed, and a client that got its answer can rely on both.
 */
#ifndef TODO_OP_H
#define TODO_OP_H

#include <weft/weft.h>

#include "todo_util.h"

/* What a step returns besides WEFT_OK (a statement is under way) and
 * negative codes (nothing could be started: answer 500/503, roll back). */
#define TODO_COMMIT 1 /* publish the event, if any, commit, answer      */
#define TODO_ABORT 2  /* roll back and answer the failure set by the step */

/* "todo.user." and a bigint. */
#define TODO_TOPIC_LEN (10 + TODO_ID_LEN)

struct todo_op;

/* A route's statements: called after BEGIN and after each statement it
 * started (with that statement's successful result), `stage` counting. */
typedef int (*todo_step_fn)(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            struct todo_op *op);

struct todo_op {
    todo_step_fn step;
    int stage;
    /* Statement parameters live here, for as long as the transaction. */
    char uid[TODO_ID_LEN];   /* the signed-in user                 */
    char id[TODO_ID_LEN];    /* the list or item from the path     */
    char limit[TODO_ID_LEN]; /* max_lists or max_items             */
    char *text;              /* a title or an item text, or NULL   */
    const char *done;        /* "true", "false" or NULL (unchanged) */
    char *ids;               /* reorder: a bigint[] literal        */
    char topic[TODO_TOPIC_LEN];
    /* The outcome, set by the steps. */
    json_t *event; /* published before COMMIT, or NULL    */
    json_t *reply; /* answered after COMMIT, NULL: no body */
    int status;
    int fail_status;
    const char *fail_code;
    char fail_msg[160];
};

/* A new operation for the signed-in user of `r`, or NULL (out of memory). */
struct todo_op *todo_op_new(weft_req *r, todo_step_fn step);
void todo_op_free(struct todo_op *op);

/* Start the transaction; `op` is the transaction's from now on, also when
 * this fails (then it answered). Returns the handler's return code. */
int todo_op_run(weft_req *r, struct todo_op *op);

/* The whole handler of a route that needs only the :id of its path (no
 * body): 404 with `missing` for an impossible id, else run `step`. */
int todo_op_by_id(weft_req *r, todo_step_fn step, const char *missing);

/* Run the next statement of the steps. */
int todo_op_query(weft_tx *tx, struct todo_op *op, const char *sql,
                  int nparams, const char *const *params);

/* Set the failure to answer after the rollback; returns TODO_ABORT. */
int todo_op_abort(struct todo_op *op, int status, const char *code,
                  const char *msg);

/* The event {"type", "list_id", key: val, "by": request id}; `val` is
 * stolen (key NULL: none). Returns WEFT_OK or WEFT_ERR. */
int todo_op_event(weft_req *r, struct todo_op *op, const char *type,
                  json_int_t list_id, const char *key, json_t *val);

/* Commit, then answer `status` with `reply` (stolen; NULL: no body).
 * Returns TODO_COMMIT, or WEFT_ERR when `reply` is a failed allocation. */
int todo_op_commit(struct todo_op *op, int status, json_t *reply);

#endif /* TODO_OP_H */
