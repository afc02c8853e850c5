/* db.h - the PostgreSQL pool: non-blocking libpq connections owned by the
 * event loops, a bounded wait queue per loop, prepared statements,
 * transactions, timeouts, cancellation and reconnection with backoff. */
#ifndef WEFT_HOST_DB_H
#define WEFT_HOST_DB_H

#include <libpq-fe.h>
#include <weft/weft.h>

struct wloop;
struct weft_req;
struct wdb_op;
struct wdb_tx;

/* Parameters one statement may take (the SDK refuses more up front). */
#define WDB_MAX_PARAMS 64

struct wdb_config {
    char *conninfo;
    int pool_size;   /* connections per loop          */
    int queue_max;   /* waiting statements per loop    */
    int query_timeout_ms;
};

/* What a statement produced. `res` may be NULL when it never ran. */
struct weft_db_res {
    const weft_api *api; /* first: the SDK's inline wrappers read it */
    PGresult *res;
    const char *error;    /* NULL on success */
    const char *sqlstate; /* NULL, or e.g. "23505", "57014", "08006" */
};

/* Host-internal completion: runs on the loop that issued the statement.
 * `tx` is set for transaction steps (NULL once it ended). */
typedef void (*wdb_cb)(struct wdb_tx *tx, const struct weft_db_res *res,
                       void *arg);

/* Set up the pool for every loop; connections start on each loop. */
int wdb_start(const struct wdb_config *cfg);
/* Close every connection (after the loops stopped). */
void wdb_stop(void);
/* Is any connection up? (/readyz) */
int wdb_ready(void);
/* Was a pool configured at all? */
int wdb_enabled(void);

/* Statements issued on loop `l`. `req` (may be NULL) is cancelled-on-gone.
 * Return 0, WEFT_EBUSY (queue full) or WEFT_EINVAL. */
int wdb_query(struct wloop *l, struct weft_req *req, const char *sql,
              int nparams, const char *const *params, wdb_cb cb, void *arg);
int wdb_tx_begin(struct wloop *l, struct weft_req *req, wdb_cb cb, void *arg);
int wdb_tx_query(struct wdb_tx *tx, const char *sql, int nparams,
                 const char *const *params, wdb_cb cb, void *arg);
int wdb_tx_end(struct wdb_tx *tx, int commit, wdb_cb cb, void *arg);

/* The request a transaction belongs to (NULL once it ended). */
struct weft_req *wdb_tx_req(const struct wdb_tx *tx);

/* The client of `req` went away: cancel its statements. */
void wdb_req_gone(struct weft_req *req);
/* The request is being freed: roll back and release what it still holds. */
void wdb_req_release(struct weft_req *req);

/* Schema changed (migrations ran): prepared statements are re-prepared. */
void wdb_schema_changed(void);

/* The SDK side (api.c). */
extern const struct weft_db_res wdb_busy_res;
json_t *wdb_json(const struct weft_db_res *res, int row);
int wdb_reply_error(struct weft_req *r, const struct weft_db_res *res);
/* PostgreSQL's ISO text `v` of a date, timestamp or timestamptz (type
 * `oid`) as RFC 3339 in `out`: "2026-12-04", "2026-12-04T01:16:16.123"
 * (no zone: a timestamp has none), "2026-12-04T01:16:16.123Z" (a
 * timestamptz, converted to UTC). 0, or -1 when RFC 3339 cannot say it
 * (infinity, BC, a year past 9999, a DateStyle other than ISO) or `out`
 * is too small; wdb_json then keeps the text. Pure: unit-tested. */
int wdb_time_rfc3339(unsigned oid, const char *v, char *out, size_t n);

#endif
