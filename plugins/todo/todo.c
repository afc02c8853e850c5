/*
 * todo - per-user todo lists, live across sessions.
 *
 * Every route needs a signed-in user; every change is one transaction that
 * also publishes one event on todo.user.<uid> through the outbox, which
 * only that user may subscribe to (see README.md for routes and events).
 * Lists and items live in PostgreSQL (migrations/), nothing in memory, so
 * any number of weftd nodes and reloads serve the same lists.
 */
#include <weft/weft.h>

#include "todo.h"

#ifndef TODO_VERSION
#define TODO_VERSION "1.0.0"
#endif

extern const weft_migration weft_plugin_migrations[];

/* The limits are settings so that a test can reach them cheaply; the
 * defaults are the product's limits. */
static const weft_config_key todo_config[] = {
    {"max_lists", WEFT_CFG_INT, "50", 1, 10000, "lists one user may have"},
    {"max_items", WEFT_CFG_INT, "1000", 1, 100000,
     "items one list may hold"},
    {NULL, 0, NULL, 0, 0, NULL}};

struct todo_route {
    const char *method, *pattern;
    unsigned flags;
    weft_handler_fn fn;
};

/* Routes that read no body refuse one (413) rather than ignore it. */
#define TODO_BODYLESS (WEFT_ROUTE_USER | WEFT_ROUTE_NO_BODY)

static const struct todo_route todo_routes[] = {
    {"GET", "/api/todo/lists", TODO_BODYLESS, todo_lists_get},
    {"POST", "/api/todo/lists", WEFT_ROUTE_USER, todo_list_create},
    {"PATCH", "/api/todo/lists/:id", WEFT_ROUTE_USER, todo_list_rename},
    {"DELETE", "/api/todo/lists/:id", TODO_BODYLESS, todo_list_delete},
    {"GET", "/api/todo/lists/:id/items", TODO_BODYLESS, todo_items_get},
    {"POST", "/api/todo/lists/:id/items", WEFT_ROUTE_USER, todo_item_add},
    {"POST", "/api/todo/lists/:id/reorder", WEFT_ROUTE_USER,
     todo_items_reorder},
    {"POST", "/api/todo/lists/:id/clear-completed", WEFT_ROUTE_USER,
     todo_items_clear},
    {"PATCH", "/api/todo/items/:id", WEFT_ROUTE_USER, todo_item_update},
    {"DELETE", "/api/todo/items/:id", TODO_BODYLESS, todo_item_delete},
};

static int todo_init(weft_plugin *p)
{
    size_t i;
    int rc;

    /* User 7 alone may subscribe to todo.user.7. */
    rc = weft_topic(p, "todo.user.*", WEFT_TOPIC_OWNER, NULL);
    if (rc != WEFT_OK) {
        weft_plugin_fail(p, "cannot declare todo.user.* (%d): the host "
                            "needs ABI 1.2",
                         rc);
        return rc;
    }
    for (i = 0; i < sizeof(todo_routes) / sizeof(todo_routes[0]); i++) {
        const struct todo_route *t = &todo_routes[i];

        rc = weft_route(p, t->method, t->pattern, t->flags, t->fn);
        if (rc != WEFT_OK) {
            weft_plugin_fail(p, "cannot register %s %s (%d)", t->method,
                             t->pattern, rc);
            return rc;
        }
    }
    return WEFT_OK;
}

static const weft_plugin_desc todo_desc = {
    WEFT_DESC_HEADER,
    .name = "todo",
    .version = TODO_VERSION,
    .summary = "per-user todo lists with live updates",
    .config = todo_config,
    .init = todo_init,
    .migrations = weft_plugin_migrations,
    /* the web widget, built from web/widgets/todo by make */
    .assets = "todo.web",
};

WEFT_PLUGIN(todo_desc)
