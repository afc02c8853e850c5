/*
 * todo_bulk.c - changes to many items of a list at once: reorder and
 * clear completed. Both lock the list first: that checks ownership (404)
 * and keeps adds out while the set of items is compared or rewritten.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "todo.h"
#include "todo_op.h"
#include "todo_sql.h"
#include "todo_util.h"

static const struct todo_field todo_reorder_fields[] = {
    {"ids", JSON_ARRAY, 1}, {NULL, JSON_NULL, 0}};

/* The "id" members of an array of rows, as an array. */
static json_t *todo_ids_of(json_t *rows)
{
    json_t *ids = json_array(), *row;
    size_t i;

    json_array_foreach(rows, i, row) {
        if (ids == NULL ||
            json_array_append_new(ids,
                                  json_integer(todo_row_id(row, "id"))) != 0) {
            json_decref(ids);
            return NULL;
        }
    }
    return ids;
}

/* ---- POST /api/todo/lists/:id/reorder {"ids": [...]} ------------------- */

static int todo_reorder_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             struct todo_op *op)
{
    const char *p[2] = {op->id, op->uid};
    json_t *items, *ids;

    switch (op->stage++) {
    case 0:
        return todo_op_query(tx, op, TODO_SQL_LOCK_LIST, 2, p);
    case 1:
        if (weft_db_rows(res) == 0)
            return todo_op_abort(op, 404, "not_found", "no such list");
        /* Same set, each once: the sorted arrays are equal. The items are
         * locked so edits and removals wait for the rewrite. */
        p[1] = op->ids;
        return todo_op_query(
            tx, op,
            "SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}') = "
            "(SELECT coalesce(array_agg(x ORDER BY x), '{}') "
            "FROM unnest($2::bigint[]) x) AS same "
            "FROM (SELECT id FROM todo_items WHERE list_id = $1::bigint "
            "FOR UPDATE) s",
            2, p);
    case 2:
        if (strcmp(weft_db_value(res, 0, 0), "t") != 0)
            return todo_op_abort(op, 409, "conflict",
                                 "the list changed: ids must be exactly the "
                                 "list's item ids, each once; reload it");
        p[1] = op->ids;
        return todo_op_query(
            tx, op,
            "WITH u AS (UPDATE todo_items i SET position = o.n::int - 1 "
            "FROM unnest($2::bigint[]) WITH ORDINALITY AS o(id, n) "
            "WHERE i.list_id = $1::bigint AND i.id = o.id "
            "RETURNING " TODO_ITEM_COLS ") "
            "SELECT * FROM u ORDER BY position, id",
            2, p);
    default:
        items = weft_db_json(res, -1);
        ids = items != NULL ? todo_ids_of(items) : NULL;
        if (ids == NULL ||
            todo_op_event(r, op, "items.reordered", strtoll(op->id, NULL, 10),
                          "ids", ids) != WEFT_OK) {
            json_decref(items);
            return WEFT_ERR;
        }
        return todo_op_commit(op, 200, json_pack("{s:o}", "items", items));
    }
}

/* Every id a positive integer (bigint ids start at 1). */
static int todo_ids_valid(json_t *arr)
{
    json_t *v;
    size_t i;

    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return 0;
    }
    return 1;
}

/* The ids as a bigint[] literal ("{3,1,2}"), NULL when out of memory. */
static char *todo_ids_literal(json_t *arr)
{
    size_t i, n = json_array_size(arr), cap = n * 21 + 3, len = 0;
    char *s = malloc(cap);
    json_t *v;

    if (s == NULL)
        return NULL;
    s[len++] = '{';
    json_array_foreach(arr, i, v) {
        len += (size_t)snprintf(s + len, cap - len, "%s%" JSON_INTEGER_FORMAT,
                                i > 0 ? "," : "", json_integer_value(v));
    }
    snprintf(s + len, cap - len, "}");
    return s;
}

int todo_items_reorder(weft_req *r)
{
    char id[TODO_ID_LEN], why[160];
    struct todo_op *op;
    json_t *in, *ids = NULL;
    json_error_t err;

    if (todo_path_id(r, id) != 0)
        return weft_reply_error(r, 404, "not_found", "no such list");
    if ((in = todo_body(r)) == NULL)
        return WEFT_OK; /* answered */
    if (json_unpack_ex(in, &err, JSON_STRICT, "{s:o}", "ids", &ids) != 0) {
        todo_unpack_why(in, &err, todo_reorder_fields, why, sizeof(why));
        return todo_fail(r, in, 400, "invalid", why);
    }
    if (!json_is_array(ids) || !todo_ids_valid(ids))
        return todo_fail(r, in, 400, "invalid",
                         "ids must be an array of item ids (positive "
                         "integers)");
    op = todo_op_new(r, todo_reorder_step);
    if (op == NULL || (op->ids = todo_ids_literal(ids)) == NULL) {
        todo_op_free(op);
        return todo_fail(r, in, 503, "unavailable", "out of memory");
    }
    json_decref(in);
    memcpy(op->id, id, sizeof(id));
    return todo_op_run(r, op);
}

/* ---- POST /api/todo/lists/:id/clear-completed -------------------------- */

static int todo_clear_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                           struct todo_op *op)
{
    const char *p[2] = {op->id, op->uid};
    json_t *rows, *ids;
    int n;

    switch (op->stage++) {
    case 0:
        return todo_op_query(tx, op, TODO_SQL_LOCK_LIST, 2, p);
    case 1:
        if (weft_db_rows(res) == 0)
            return todo_op_abort(op, 404, "not_found", "no such list");
        return todo_op_query(tx, op,
                             "DELETE FROM todo_items WHERE "
                             "list_id = $1::bigint AND done RETURNING id",
                             1, p);
    default:
        n = weft_db_rows(res);
        /* Nothing removed is no change, hence no event. */
        if (n > 0) {
            rows = weft_db_json(res, -1);
            ids = rows != NULL ? todo_ids_of(rows) : NULL;
            json_decref(rows);
            if (ids == NULL ||
                todo_op_event(r, op, "items.cleared",
                              strtoll(op->id, NULL, 10), "ids",
                              ids) != WEFT_OK)
                return WEFT_ERR;
        }
        return todo_op_commit(op, 200, json_pack("{s:i}", "removed", n));
    }
}

int todo_items_clear(weft_req *r)
{
    /* No body is read: there is nothing to say but the list. */
    return todo_op_by_id(r, todo_clear_step, "no such list");
}
