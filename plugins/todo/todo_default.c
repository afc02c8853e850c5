/*
 * todo_default.c - "My list", made the first time a user reads their
 * lists and has none, so a new user starts with one list.
 *
 * Two first reads can run at once (two tabs): the user's advisory lock
 * makes the second wait, and its INSERT ... WHERE NOT EXISTS then sees the
 * first one's list, so exactly one list and one "list.added" event exist.
 */
#include "todo.h"
#include "todo_op.h"
#include "todo_sql.h"
#include "todo_util.h"

#define TODO_DEFAULT_TITLE "My list"

static int todo_default_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             struct todo_op *op)
{
    const char *p[2] = {op->uid, TODO_DEFAULT_TITLE};
    json_t *row, *body;

    switch (op->stage++) {
    case 0:
        return todo_op_query(tx, op, TODO_SQL_LOCK_USER, 1, p);
    case 1:
        return todo_op_query(
            tx, op,
            "INSERT INTO todo_lists AS l (user_id, title, position) "
            "SELECT $1::bigint, $2::text, 0 WHERE NOT EXISTS "
            "(SELECT 1 FROM todo_lists WHERE user_id = $1::bigint) "
            "RETURNING " TODO_LIST_COLS,
            2, p);
    case 2:
        /* No row: a concurrent request made it; no second event. */
        if (weft_db_rows(res) == 1) {
            row = weft_db_json(res, 0);
            if (row == NULL ||
                todo_op_event(r, op, "list.added", todo_row_id(row, "id"),
                              "list", row) != WEFT_OK)
                return WEFT_ERR;
        }
        return todo_op_query(tx, op,
                             "SELECT " TODO_LIST_COLS " FROM todo_lists l "
                             "WHERE l.user_id = $1::bigint "
                             "ORDER BY l.position, l.id",
                             1, p);
    default:
        body = json_pack("{s:o}", "lists", weft_db_json(res, -1));
        return body != NULL ? todo_op_commit(op, 200, body) : WEFT_ERR;
    }
}

int todo_lists_default(weft_req *r)
{
    struct todo_op *op = todo_op_new(r, todo_default_step);

    if (op == NULL)
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    return todo_op_run(r, op);
}
