/*
 * dbtest - a plugin for the database tests: statements, transactions,
 * timeouts and migrations (the SQL comes from a migrations folder chosen by
 * the build, see tests/plugins/CMakeLists.txt).
 *
 *   POST /api/dbtest/items        {"name": s}         -> 201 {"id": n}
 *   GET  /api/dbtest/items/:id                         -> 200 row | 404
 *   GET  /api/dbtest/count                             -> {"count": n}
 *   GET  /api/dbtest/sleep?ms=N   SELECT pg_sleep      -> 200
 *   POST /api/dbtest/pair         {"a": s, "b": s, "rollback": bool}
 *                                 both in one transaction
 *   GET  /api/dbtest/version                           -> {"version": s}
 *   GET  /api/dbtest/whoami   (signed in)  {"user": id, "admin": b,
 *                             "profile": {id, username, display_name}}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#ifndef DBTEST_VERSION
#define DBTEST_VERSION "1.0.0"
#endif

extern const weft_migration weft_plugin_migrations[];

static void dbtest_inserted(weft_req *r, const weft_db_res *res, void *arg)
{
    json_t *j;

    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    j = weft_db_json(res, 0);
    weft_reply_json(r, 201, j);
    json_decref(j);
}

static int dbtest_create(weft_req *r)
{
    const char *err = NULL, *name;
    json_t *in = weft_req_json(r, &err);
    int rc;

    if (in == NULL)
        return weft_reply_error(r, 400, "bad_json", err);
    name = json_string_value(json_object_get(in, "name"));
    if (name == NULL || strlen(name) > 200) {
        json_decref(in);
        return weft_reply_error(r, 400, "bad_request",
                                "name: a string of at most 200 bytes");
    }
    rc = weft_db_query(r, "INSERT INTO dbtest_items (name) VALUES ($1) "
                          "RETURNING id",
                       1, &name, dbtest_inserted, NULL);
    json_decref(in);
    if (rc != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

static void dbtest_got(weft_req *r, const weft_db_res *res, void *arg)
{
    json_t *j;

    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    if (weft_db_rows(res) == 0) {
        weft_reply_error(r, 404, "not_found", "no such item");
        return;
    }
    j = weft_db_json(res, 0);
    weft_reply_json(r, 200, j);
    json_decref(j);
}

static int dbtest_get(weft_req *r)
{
    const char *id = weft_req_param(r, "id");

    if (id == NULL || strspn(id, "0123456789") != strlen(id) ||
        strlen(id) > 18)
        return weft_reply_error(r, 404, "not_found", "no such item");
    if (weft_db_query(r, "SELECT id, name FROM dbtest_items WHERE id = $1",
                      1, &id, dbtest_got, NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

static int dbtest_count(weft_req *r)
{
    if (weft_db_query(r, "SELECT count(*)::int AS count FROM dbtest_items", 0,
                      NULL, dbtest_got, NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

static void dbtest_slept(weft_req *r, const weft_db_res *res, void *arg)
{
    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    weft_reply(r, 200, "application/json", "{\"slept\":true}", 14);
}

static int dbtest_sleep(weft_req *r)
{
    const char *ms = weft_req_query(r, "ms");
    char secs[32];

    if (ms == NULL || strspn(ms, "0123456789") != strlen(ms) ||
        strlen(ms) > 6)
        return weft_reply_error(r, 400, "bad_request", "ms: 0..999999");
    snprintf(secs, sizeof(secs), "%.3f", atoi(ms) / 1000.0);
    const char *p = secs;
    if (weft_db_query(r, "SELECT pg_sleep($1::float8)", 1, &p, dbtest_slept,
                      NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

/* The pair handler's state: lives until the transaction ended. */
struct dbtest_pair {
    char *a, *b;
    int rollback, step;
};

static void dbtest_pair_free(struct dbtest_pair *st)
{
    free(st->a);
    free(st->b);
    free(st);
}

static void dbtest_pair_ended(weft_req *r, weft_tx *tx, const weft_db_res *res,
                              void *arg)
{
    struct dbtest_pair *st = arg;

    (void)tx;
    if (!weft_db_ok(res))
        weft_db_reply_error(r, res);
    else if (st->rollback)
        weft_reply(r, 200, "application/json", "{\"committed\":false}", 19);
    else
        weft_reply(r, 201, "application/json", "{\"committed\":true}", 18);
    dbtest_pair_free(st);
}

static void dbtest_pair_aborted(weft_req *r, weft_tx *tx,
                                const weft_db_res *res, void *arg)
{
    (void)r;
    (void)tx;
    (void)res;
    dbtest_pair_free(arg);
}

static void dbtest_pair_step(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             void *arg)
{
    struct dbtest_pair *st = arg;
    const char *sql = "INSERT INTO dbtest_items (name) VALUES ($1)";

    if (tx == NULL || !weft_db_ok(res)) {
        /* BEGIN failed (tx is NULL), or a statement did: answer with that
         * error, then roll back (the request waits for it). */
        weft_db_reply_error(r, res);
        if (tx == NULL ||
            weft_tx_end(tx, 0, dbtest_pair_aborted, st) != WEFT_OK)
            dbtest_pair_free(st);
        return;
    }
    switch (st->step++) {
    case 0:
        weft_tx_query(tx, sql, 1, (const char *const *)&st->a,
                      dbtest_pair_step, st);
        break;
    case 1:
        weft_tx_query(tx, sql, 1, (const char *const *)&st->b,
                      dbtest_pair_step, st);
        break;
    default:
        weft_tx_end(tx, !st->rollback, dbtest_pair_ended, st);
    }
}

static int dbtest_pair(weft_req *r)
{
    const char *err = NULL;
    json_t *in = weft_req_json(r, &err);
    struct dbtest_pair *st;
    const char *a, *b;

    if (in == NULL)
        return weft_reply_error(r, 400, "bad_json", err);
    a = json_string_value(json_object_get(in, "a"));
    b = json_string_value(json_object_get(in, "b"));
    st = calloc(1, sizeof(*st));
    if (a == NULL || b == NULL || st == NULL) {
        free(st);
        json_decref(in);
        return weft_reply_error(r, 400, "bad_request", "a and b: strings");
    }
    st->a = strdup(a);
    st->b = strdup(b);
    st->rollback = json_is_true(json_object_get(in, "rollback"));
    json_decref(in);
    if (st->a == NULL || st->b == NULL ||
        weft_tx_begin(r, dbtest_pair_step, st) != WEFT_OK) {
        dbtest_pair_free(st);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}

static int dbtest_version(weft_req *r)
{
    json_t *j = json_pack("{s:s}", "version", DBTEST_VERSION);
    int rc = weft_reply_json(r, 200, j);

    json_decref(j);
    return rc;
}

/* The SDK's identity calls: who is asking, and their public profile. */
static void dbtest_profile(weft_req *r, const weft_db_res *res, void *arg)
{
    json_t *j;

    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    j = json_pack("{s:I, s:b, s:o}", "user", (json_int_t)weft_req_user(r),
                  "admin", weft_req_has_role(r, "admin"), "profile",
                  weft_db_rows(res) ? weft_db_json(res, 0) : json_null());
    weft_reply_json(r, 200, j);
    json_decref(j);
}

static int dbtest_whoami(weft_req *r)
{
    if (weft_user_profile(r, weft_req_user(r), dbtest_profile, NULL) !=
        WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

/* Dates and times as weft_db_json gives them; the session's TimeZone is
 * +05:30 for this statement only (set_config(..., true) ends with it),
 * which must not change the instants. */
static int dbtest_times(weft_req *r)
{
    if (weft_db_query(r,
                      "SELECT set_config('TimeZone', '5.5', true) AS zone,"
                      " timestamptz '2026-12-04 01:16:16.123+00' AS tz,"
                      " timestamp '2026-12-04 01:16:16.5' AS ts,"
                      " date '2026-12-04' AS d,"
                      " timestamptz 'infinity' AS inf",
                      0, NULL, dbtest_got, NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

static int dbtest_init(weft_plugin *p)
{
    if (weft_route(p, "POST", "/api/dbtest/items", 0, dbtest_create) ||
        weft_route(p, "GET", "/api/dbtest/items/:id", 0, dbtest_get) ||
        weft_route(p, "GET", "/api/dbtest/count", 0, dbtest_count) ||
        weft_route(p, "GET", "/api/dbtest/sleep", 0, dbtest_sleep) ||
        weft_route(p, "POST", "/api/dbtest/pair", 0, dbtest_pair) ||
        weft_route(p, "GET", "/api/dbtest/version", 0, dbtest_version) ||
        weft_route(p, "GET", "/api/dbtest/times", 0, dbtest_times) ||
        weft_route(p, "GET", "/api/dbtest/whoami", WEFT_ROUTE_USER,
                   dbtest_whoami))
        return WEFT_ERR;
    return WEFT_OK;
}

static const weft_plugin_desc dbtest_desc = {
    WEFT_DESC_HEADER,
    .name = "dbtest",
    .version = DBTEST_VERSION,
    .summary = "database test plugin",
    .init = dbtest_init,
    .migrations = weft_plugin_migrations,
};

WEFT_PLUGIN(dbtest_desc)
