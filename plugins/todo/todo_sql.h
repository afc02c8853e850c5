/*
 * todo_sql.h - the column lists that give lists and items their JSON shape
 * (weft_db_json keeps integers, booleans and jsonb as such; timestamps go
 * through to_jsonb so clients get ISO 8601 text).
 */
#ifndef TODO_SQL_H
#define TODO_SQL_H

/* A list as the API shows it, from a todo_lists row aliased `l`. */
#define TODO_LIST_COLS                                                        \
    "l.id, l.title, l.position, to_jsonb(l.created_at) AS created_at, "       \
    "(SELECT count(*) FROM todo_items c WHERE c.list_id = l.id "              \
    "AND NOT c.done) AS open, "                                               \
    "(SELECT count(*) FROM todo_items c WHERE c.list_id = l.id "              \
    "AND c.done) AS done"

/* An item, from a todo_items row aliased `i`. */
#define TODO_ITEM_COLS                                                        \
    "i.id, i.list_id, i.text, i.done, i.position, "                           \
    "to_jsonb(i.created_at) AS created_at, "                                  \
    "to_jsonb(i.updated_at) AS updated_at"

/* The same item as one json value, for aggregates (json, not jsonb:
 * jsonb would reorder the keys). */
#define TODO_ITEM_JSON                                                        \
    "json_build_object('id', i.id, 'list_id', i.list_id, 'text', i.text, "    \
    "'done', i.done, 'position', i.position, 'created_at', i.created_at, "    \
    "'updated_at', i.updated_at)"

/* The owner's list, locked: ownership check and serialisation point for
 * everything that counts or orders its items. $1 list, $2 user. */
#define TODO_SQL_LOCK_LIST                                                    \
    "SELECT l.id FROM todo_lists l WHERE l.id = $1::bigint "                  \
    "AND l.user_id = $2::bigint FOR UPDATE"

/* One user's list changes wait for each other, so the list limit and the
 * default list hold under concurrency (rows that do not exist yet cannot
 * be locked). Two int4 keys: 'todo' and the user id folded into int4; a
 * collision only makes two users wait for each other. $1 user. */
#define TODO_SQL_LOCK_USER                                                    \
    "SELECT pg_advisory_xact_lock(1953457263, "                               \
    "($1::bigint % 2147483647)::int)"

#endif /* TODO_SQL_H */
