/*
 * todo_lists.c - a user's lists: read, create, rename, delete.
 */
#include <stdlib.h>
#include <string.h>

#include "todo.h"
#include "todo_op.h"
#include "todo_sql.h"
#include "todo_util.h"

static const struct todo_field todo_title_fields[] = {
    {"title", JSON_STRING, 1}, {NULL, JSON_NULL, 0}};

/* ---- GET /api/todo/lists ----------------------------------------------- */

static void todo_lists_got(weft_req *r, const weft_db_res *res, void *arg)
{
    json_t *body;

    (void)arg;
    if (!weft_db_ok(res)) {
        (void)weft_db_reply_error(r, res);
        return;
    }
    /* A new user sees one list: make it (once, under a lock) and answer
     * from there. */
    if (weft_db_rows(res) == 0) {
        (void)todo_lists_default(r);
        return;
    }
    body = json_pack("{s:o}", "lists", weft_db_json(res, -1));
    if (body == NULL) {
        (void)weft_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    (void)weft_reply_json(r, 200, body);
    json_decref(body);
}

int todo_lists_get(weft_req *r)
{
    char uid[TODO_ID_LEN];
    const char *p[1] = {uid};

    todo_user_id(r, uid);
    if (weft_db_query(r,
                      "SELECT " TODO_LIST_COLS " FROM todo_lists l "
                      "WHERE l.user_id = $1::bigint ORDER BY l.position, l.id",
                      1, p, todo_lists_got, NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

/* Parse {"title": s}; NULL after answering 400. */
static char *todo_title_of(weft_req *r)
{
    json_error_t err;
    const char *title = NULL;
    size_t len = 0;
    json_t *in = todo_body(r);
    char why[160], *copy;

    if (in == NULL)
        return NULL;
    if (json_unpack_ex(in, &err, JSON_STRICT, "{s:s%}", "title", &title,
                       &len) != 0) {
        todo_unpack_why(in, &err, todo_title_fields, why, sizeof(why));
        (void)todo_fail(r, in, 400, "invalid", why);
        return NULL;
    }
    if (todo_check_text("title", title, len, TODO_TITLE_MAX, why,
                        sizeof(why)) != 0) {
        (void)todo_fail(r, in, 400, "invalid", why);
        return NULL;
    }
    copy = strdup(title);
    json_decref(in);
    if (copy == NULL)
        (void)weft_reply_error(r, 503, "unavailable", "out of memory");
    return copy;
}

/* The one row a step's statement returned, as the event's and answer's
 * object; commits with `status`. */
static int todo_list_answer(weft_req *r, const weft_db_res *res,
                            struct todo_op *op, const char *type, int status)
{
    json_t *row = weft_db_json(res, 0);

    if (row == NULL || todo_op_event(r, op, type, todo_row_id(row, "id"),
                                     "list", json_incref(row)) != WEFT_OK) {
        json_decref(row);
        return WEFT_ERR;
    }
    return todo_op_commit(op, status, row);
}

/* ---- POST /api/todo/lists {"title"} ------------------------------------ */

static int todo_create_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            struct todo_op *op)
{
    const char *p[3] = {op->uid, op->text, op->limit};

    switch (op->stage++) {
    case 0:
        return todo_op_query(tx, op, TODO_SQL_LOCK_USER, 1, p);
    case 1:
        /* Appended after the last list; no row when the limit is reached
         * (HAVING on the one aggregate row). */
        return todo_op_query(
            tx, op,
            "INSERT INTO todo_lists AS l (user_id, title, position) "
            "SELECT $1::bigint, $2::text, coalesce(max(position) + 1, 0) "
            "FROM todo_lists WHERE user_id = $1::bigint "
            "HAVING count(*) < $3::int RETURNING " TODO_LIST_COLS,
            3, p);
    default:
        if (weft_db_rows(res) == 0)
            return todo_op_abort(op, 409, "limit",
                                 "too many lists: delete one first");
        return todo_list_answer(r, res, op, "list.added", 201);
    }
}

int todo_list_create(weft_req *r)
{
    struct todo_op *op;
    char *title = todo_title_of(r);

    if (title == NULL)
        return WEFT_OK; /* answered */
    op = todo_op_new(r, todo_create_step);
    if (op == NULL) {
        free(title);
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    }
    op->text = title;
    todo_limit(r, "max_lists", TODO_MAX_LISTS, op->limit);
    return todo_op_run(r, op);
}

/* ---- PATCH /api/todo/lists/:id {"title"} ------------------------------- */

static int todo_rename_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            struct todo_op *op)
{
    const char *p[3] = {op->id, op->uid, op->text};

    if (op->stage++ == 0)
        return todo_op_query(tx, op,
                             "UPDATE todo_lists l SET title = $3::text "
                             "WHERE l.id = $1::bigint AND "
                             "l.user_id = $2::bigint RETURNING " TODO_LIST_COLS,
                             3, p);
    if (weft_db_rows(res) == 0)
        return todo_op_abort(op, 404, "not_found", "no such list");
    return todo_list_answer(r, res, op, "list.renamed", 200);
}

int todo_list_rename(weft_req *r)
{
    struct todo_op *op;
    char id[TODO_ID_LEN], *title;

    /* The id first: a list that cannot exist is 404 whatever the body. */
    if (todo_path_id(r, id) != 0)
        return weft_reply_error(r, 404, "not_found", "no such list");
    title = todo_title_of(r);
    if (title == NULL)
        return WEFT_OK; /* answered */
    op = todo_op_new(r, todo_rename_step);
    if (op == NULL) {
        free(title);
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    }
    memcpy(op->id, id, sizeof(id));
    op->text = title;
    return todo_op_run(r, op);
}

/* ---- DELETE /api/todo/lists/:id ---------------------------------------- */

static int todo_delete_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            struct todo_op *op)
{
    const char *p[2] = {op->id, op->uid};

    /* The items go with it (ON DELETE CASCADE). */
    if (op->stage++ == 0)
        return todo_op_query(tx, op,
                             "DELETE FROM todo_lists l WHERE l.id = $1::bigint "
                             "AND l.user_id = $2::bigint RETURNING l.id",
                             2, p);
    if (weft_db_rows(res) == 0)
        return todo_op_abort(op, 404, "not_found", "no such list");
    if (todo_op_event(r, op, "list.removed", strtoll(op->id, NULL, 10), NULL,
                      NULL) != WEFT_OK)
        return WEFT_ERR;
    return todo_op_commit(op, 204, NULL);
}

int todo_list_delete(weft_req *r)
{
    return todo_op_by_id(r, todo_delete_step, "no such list");
}
