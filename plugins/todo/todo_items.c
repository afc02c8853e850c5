/*
 * todo_items.c - the items of a list: read, add, edit/toggle, remove.
 *
 * Items have no owner column: every statement reaches the owner through
 * the item's list (todo_lists.user_id), so another user's id is simply not
 * found.
 */
#include <stdlib.h>
#include <string.h>

#include "todo.h"
#include "todo_op.h"
#include "todo_sql.h"
#include "todo_util.h"

static const struct todo_field todo_add_fields[] = {
    {"text", JSON_STRING, 1}, {NULL, JSON_NULL, 0}};
static const struct todo_field todo_update_fields[] = {
    {"text", JSON_STRING, 0}, {"done", JSON_TRUE, 0}, {NULL, JSON_NULL, 0}};

/* ---- GET /api/todo/lists/:id/items ------------------------------------- */

static void todo_items_got(weft_req *r, const weft_db_res *res, void *arg)
{
    json_t *list, *body;

    (void)arg;
    if (!weft_db_ok(res)) {
        (void)weft_db_reply_error(r, res);
        return;
    }
    if (weft_db_rows(res) == 0) {
        (void)weft_reply_error(r, 404, "not_found", "no such list");
        return;
    }
    /* One row: the list, with its items as one json array. */
    list = weft_db_json(res, 0);
    body = list != NULL ? json_pack("{s:O, s:O}", "list", list, "items",
                                    json_object_get(list, "items"))
                        : NULL;
    if (body != NULL)
        json_object_del(json_object_get(body, "list"), "items");
    json_decref(list);
    if (body == NULL) {
        (void)weft_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    (void)weft_reply_json(r, 200, body);
    json_decref(body);
}

int todo_items_get(weft_req *r)
{
    char id[TODO_ID_LEN], uid[TODO_ID_LEN];
    const char *p[2] = {id, uid};

    if (todo_path_id(r, id) != 0)
        return weft_reply_error(r, 404, "not_found", "no such list");
    todo_user_id(r, uid);
    /* One statement, so the list and its items are one snapshot. */
    if (weft_db_query(r,
                      "SELECT " TODO_LIST_COLS ", coalesce((SELECT json_agg("
                      TODO_ITEM_JSON " ORDER BY i.position, i.id) "
                      "FROM todo_items i WHERE i.list_id = l.id), "
                      "'[]'::json) AS items FROM todo_lists l "
                      "WHERE l.id = $1::bigint AND l.user_id = $2::bigint",
                      2, p, todo_items_got, NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

/* The one item a step's statement returned, as event and answer. */
static int todo_item_answer(weft_req *r, const weft_db_res *res,
                            struct todo_op *op, const char *type, int status)
{
    json_t *row = weft_db_json(res, 0);

    if (row == NULL ||
        todo_op_event(r, op, type, todo_row_id(row, "list_id"), "item",
                      json_incref(row)) != WEFT_OK) {
        json_decref(row);
        return WEFT_ERR;
    }
    return todo_op_commit(op, status, row);
}

/* ---- POST /api/todo/lists/:id/items {"text"} --------------------------- */

static int todo_add_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                         struct todo_op *op)
{
    const char *p[3] = {op->id, op->uid, op->text};

    switch (op->stage++) {
    case 0:
        /* Locking the list serialises adds, so the count and the next
         * position below are exact. */
        return todo_op_query(tx, op, TODO_SQL_LOCK_LIST, 2, p);
    case 1:
        if (weft_db_rows(res) == 0)
            return todo_op_abort(op, 404, "not_found", "no such list");
        p[1] = op->text;
        p[2] = op->limit;
        return todo_op_query(
            tx, op,
            "INSERT INTO todo_items AS i (list_id, text, position) "
            "SELECT $1::bigint, $2::text, coalesce(max(position) + 1, 0) "
            "FROM todo_items WHERE list_id = $1::bigint "
            "HAVING count(*) < $3::int RETURNING " TODO_ITEM_COLS,
            3, p);
    default:
        if (weft_db_rows(res) == 0)
            return todo_op_abort(op, 409, "limit",
                                 "too many items in this list: remove some "
                                 "first");
        return todo_item_answer(r, res, op, "item.added", 201);
    }
}

int todo_item_add(weft_req *r)
{
    char id[TODO_ID_LEN], why[160];
    const char *text = NULL;
    struct todo_op *op;
    json_error_t err;
    size_t len = 0;
    json_t *in;

    if (todo_path_id(r, id) != 0)
        return weft_reply_error(r, 404, "not_found", "no such list");
    if ((in = todo_body(r)) == NULL)
        return WEFT_OK; /* answered */
    if (json_unpack_ex(in, &err, JSON_STRICT, "{s:s%}", "text", &text,
                       &len) != 0) {
        todo_unpack_why(in, &err, todo_add_fields, why, sizeof(why));
        return todo_fail(r, in, 400, "invalid", why);
    }
    if (todo_check_text("text", text, len, TODO_TEXT_MAX, why, sizeof(why)))
        return todo_fail(r, in, 400, "invalid", why);
    op = todo_op_new(r, todo_add_step);
    if (op == NULL || (op->text = strdup(text)) == NULL) {
        todo_op_free(op);
        return todo_fail(r, in, 503, "unavailable", "out of memory");
    }
    json_decref(in);
    memcpy(op->id, id, sizeof(id));
    todo_limit(r, "max_items", TODO_MAX_ITEMS, op->limit);
    return todo_op_run(r, op);
}

/* ---- PATCH /api/todo/items/:id {"text"?, "done"?} ---------------------- */

static int todo_update_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            struct todo_op *op)
{
    const char *p[4] = {op->id, op->uid, op->text, op->done};

    /* NULL parameters (fields not given) keep the current values. */
    if (op->stage++ == 0)
        return todo_op_query(
            tx, op,
            "UPDATE todo_items i SET text = coalesce($3::text, i.text), "
            "done = coalesce($4::boolean, i.done), updated_at = now() "
            "FROM todo_lists l WHERE i.id = $1::bigint AND "
            "i.list_id = l.id AND l.user_id = $2::bigint "
            "RETURNING " TODO_ITEM_COLS,
            4, p);
    if (weft_db_rows(res) == 0)
        return todo_op_abort(op, 404, "not_found", "no such item");
    return todo_item_answer(r, res, op, "item.updated", 200);
}

int todo_item_update(weft_req *r)
{
    char id[TODO_ID_LEN], why[160];
    const char *text = NULL;
    struct todo_op *op;
    json_error_t err;
    size_t len = 0;
    int done = -1;
    json_t *in;

    if (todo_path_id(r, id) != 0)
        return weft_reply_error(r, 404, "not_found", "no such item");
    if ((in = todo_body(r)) == NULL)
        return WEFT_OK; /* answered */
    if (json_unpack_ex(in, &err, JSON_STRICT, "{s?s%, s?b}", "text", &text,
                       &len, "done", &done) != 0) {
        todo_unpack_why(in, &err, todo_update_fields, why, sizeof(why));
        return todo_fail(r, in, 400, "invalid", why);
    }
    if (text == NULL && done == -1)
        return todo_fail(r, in, 400, "invalid",
                         "nothing to change: give text and/or done");
    if (text != NULL &&
        todo_check_text("text", text, len, TODO_TEXT_MAX, why, sizeof(why)))
        return todo_fail(r, in, 400, "invalid", why);
    op = todo_op_new(r, todo_update_step);
    if (op == NULL || (text != NULL && (op->text = strdup(text)) == NULL)) {
        todo_op_free(op);
        return todo_fail(r, in, 503, "unavailable", "out of memory");
    }
    json_decref(in);
    memcpy(op->id, id, sizeof(id));
    op->done = done == -1 ? NULL : done ? "true" : "false";
    return todo_op_run(r, op);
}

/* ---- DELETE /api/todo/items/:id ---------------------------------------- */

static int todo_remove_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            struct todo_op *op)
{
    const char *p[2] = {op->id, op->uid};
    json_t *row;
    int rc;

    if (op->stage++ == 0)
        return todo_op_query(tx, op,
                             "DELETE FROM todo_items i USING todo_lists l "
                             "WHERE i.id = $1::bigint AND i.list_id = l.id "
                             "AND l.user_id = $2::bigint "
                             "RETURNING i.id, i.list_id",
                             2, p);
    if (weft_db_rows(res) == 0)
        return todo_op_abort(op, 404, "not_found", "no such item");
    row = weft_db_json(res, 0);
    if (row == NULL)
        return WEFT_ERR;
    rc = todo_op_event(r, op, "item.removed", todo_row_id(row, "list_id"),
                       "ids", json_pack("[I]", todo_row_id(row, "id")));
    json_decref(row);
    return rc != WEFT_OK ? rc : todo_op_commit(op, 204, NULL);
}

int todo_item_delete(weft_req *r)
{
    return todo_op_by_id(r, todo_remove_step, "no such item");
}
