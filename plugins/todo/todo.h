/*
 * todo.h - the route handlers of the todo plugin, one file per resource.
 * Every route is WEFT_ROUTE_USER and answers JSON (see README.md).
 */
#ifndef TODO_H
#define TODO_H

#include <weft/weft.h>

/* Defaults of the declared limits (todo.c declares them as config keys). */
#define TODO_MAX_LISTS 50
#define TODO_MAX_ITEMS 1000

/* todo_lists.c */
int todo_lists_get(weft_req *r);
int todo_list_create(weft_req *r);
int todo_list_rename(weft_req *r);
int todo_list_delete(weft_req *r);

/* todo_default.c: the first list of a user who has none; answers. */
int todo_lists_default(weft_req *r);

/* todo_items.c */
int todo_items_get(weft_req *r);
int todo_item_add(weft_req *r);
int todo_item_update(weft_req *r);
int todo_item_delete(weft_req *r);

/* todo_bulk.c */
int todo_items_reorder(weft_req *r);
int todo_items_clear(weft_req *r);

#endif /* TODO_H */
