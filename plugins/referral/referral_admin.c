/*
 * referral_admin.c - admin views (WEFT_ROUTE_ADMIN: an admin account or
 * the host's [admin] token).
 *
 *   GET /api/referral/admin/accounts?limit=50&offset=0   JSON page
 *   GET /api/referral/admin/export.csv                   every account
 *
 * Only public profile fields (id, username, display_name) leave the
 * plugin: never e-mail addresses or anything else of weft_users.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

/* Rows per statement of the export: bounded results, keyset paging. */
#define REF_EXPORT_PAGE 1000

static const char ref_sql_accounts[] =
    "SELECT (SELECT count(*) FROM referral_accounts) AS total,"
    " (SELECT coalesce(json_agg(json_build_object('id', x.user_id,"
    " 'username', x.username, 'display_name', x.display_name, 'code',"
    " x.code, 'referrer_id', x.referrer_id, 'direct', x.direct, 'second',"
    " x.second, 'points', x.points, 'created_at', x.created_at)"
    " ORDER BY x.user_id), '[]'::json)"
    " FROM (SELECT a.user_id, u.username, u.display_name, a.code,"
    " a.referrer_id, a.direct, a.second,"
    " a.direct::bigint * $1::bigint + a.second::bigint * $2::bigint"
    " AS points, " REF_SQL_TIME("a.created_at") " AS created_at"
    " FROM referral_accounts a JOIN weft_users u ON u.id = a.user_id"
    " ORDER BY a.user_id LIMIT $3::bigint OFFSET $4::bigint) x) AS items";

/* The rewards' factors as text parameters. 0, or -1 after answering. */
static int ref_points_params(weft_req *r, char pd[24], char ps[24])
{
    struct ref_rewards rw;
    char why[160];

    if (ref_rewards_load(weft_req_plugin(r), &rw, why, sizeof(why)) != 0) {
        weft_req_log(r, WEFT_LOG_ERROR, "referral: %s", why);
        weft_reply_error(r, 500, "internal", "bad configuration");
        return -1;
    }
    snprintf(pd, 24, "%lld", (long long)rw.points_direct);
    snprintf(ps, 24, "%lld", (long long)rw.points_second);
    return 0;
}

static void ref_accounts_got(weft_req *r, const weft_db_res *res, void *arg)
{
    int64_t *page = arg;
    json_t *j;

    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        free(page);
        return;
    }
    j = weft_db_json(res, 0);
    if (j == NULL ||
        json_object_set_new(j, "limit", json_integer(page[0])) != 0 ||
        json_object_set_new(j, "offset", json_integer(page[1])) != 0)
        weft_reply_error(r, 503, "unavailable", "out of memory");
    else
        weft_reply_json(r, 200, j);
    json_decref(j);
    free(page);
}

int ref_admin_accounts(weft_req *r)
{
    char b[4][24];
    const char *p[4] = {b[0], b[1], b[2], b[3]};
    int64_t *page = malloc(2 * sizeof(*page));

    if (page == NULL)
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    if (ref_query_int(r, "limit", 50, 1, 500, &page[0]) != 0 ||
        ref_query_int(r, "offset", 0, 0, 1000000000, &page[1]) != 0 ||
        ref_points_params(r, b[0], b[1]) != 0) {
        free(page);
        return WEFT_OK;
    }
    snprintf(b[2], sizeof(b[2]), "%lld", (long long)page[0]);
    snprintf(b[3], sizeof(b[3]), "%lld", (long long)page[1]);
    if (weft_db_query(r, ref_sql_accounts, 4, p, ref_accounts_got, page) !=
        WEFT_OK) {
        free(page);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}

/* ---- export.csv -------------------------------------------------------- */

static const char ref_sql_export[] =
    "SELECT a.user_id, u.username, u.display_name, a.code, a.referrer_id,"
    " a.direct, a.second,"
    " a.direct::bigint * $1::bigint + a.second::bigint * $2::bigint,"
    " " REF_SQL_TIME("a.created_at") ", " REF_SQL_TIME("a.linked_at")
    " FROM referral_accounts a JOIN weft_users u ON u.id = a.user_id"
    " WHERE a.user_id > $3::bigint ORDER BY a.user_id LIMIT $4::int";

static const char ref_csv_header[] =
    "user_id,username,display_name,code,referrer_id,direct,second,points,"
    "created_at,linked_at\r\n";

/* Which columns of ref_sql_export are text (formula-neutralised). */
static const int ref_csv_text[] = {0, 1, 1, 1, 0, 0, 0, 0, 1, 1};

/* The export is built whole before answering, so a database failure
 * halfway is still a clean error status, never a truncated file that
 * looks complete. Memory: about 100 bytes per account. */
struct ref_export {
    struct ref_buf out;
    char pd[24], ps[24], after[24], page[16];
};

static void ref_export_free(struct ref_export *x)
{
    ref_buf_free(&x->out);
    free(x);
}

static int ref_export_page(weft_req *r, struct ref_export *x);

static int ref_export_rows(struct ref_export *x, const weft_db_res *res)
{
    int i, c, n = weft_db_rows(res);

    for (i = 0; i < n; i++) {
        for (c = 0; c < 10; c++) {
            if ((c > 0 && ref_buf_add(&x->out, ",", 1) != 0) ||
                ref_csv_field(&x->out, weft_db_value(res, i, c),
                              ref_csv_text[c]) != 0)
                return -1;
        }
        if (ref_buf_add(&x->out, "\r\n", 2) != 0)
            return -1;
    }
    return 0;
}

static void ref_export_got(weft_req *r, const weft_db_res *res, void *arg)
{
    struct ref_export *x = arg;
    int n;

    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        ref_export_free(x);
        return;
    }
    n = weft_db_rows(res);
    if (ref_export_rows(x, res) != 0) {
        weft_reply_error(r, 503, "unavailable", "out of memory");
        ref_export_free(x);
        return;
    }
    if (n == REF_EXPORT_PAGE) {
        snprintf(x->after, sizeof(x->after), "%s",
                 weft_db_value(res, n - 1, 0));
        if (ref_export_page(r, x) != 0) {
            weft_db_reply_error(r, NULL);
            ref_export_free(x);
        }
        return;
    }
    if (weft_resp_header(r, "Content-Disposition",
                         "attachment; filename=\"referral-accounts.csv\"") !=
            WEFT_OK ||
        weft_resp_header(r, "Cache-Control", "no-store") != WEFT_OK)
        weft_req_log(r, WEFT_LOG_WARN, "referral: cannot set export headers");
    weft_reply(r, 200, "text/csv; charset=utf-8", x->out.data, x->out.len);
    ref_export_free(x);
}

static int ref_export_page(weft_req *r, struct ref_export *x)
{
    const char *p[4] = {x->pd, x->ps, x->after, x->page};

    return weft_db_query(r, ref_sql_export, 4, p, ref_export_got, x) ==
                   WEFT_OK
               ? 0
               : -1;
}

int ref_admin_export(weft_req *r)
{
    struct ref_export *x = calloc(1, sizeof(*x));

    if (x == NULL)
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    if (ref_points_params(r, x->pd, x->ps) != 0) {
        ref_export_free(x);
        return WEFT_OK;
    }
    snprintf(x->after, sizeof(x->after), "0");
    snprintf(x->page, sizeof(x->page), "%d", REF_EXPORT_PAGE);
    if (ref_buf_add(&x->out, ref_csv_header, sizeof(ref_csv_header) - 1) !=
        0) {
        ref_export_free(x);
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    }
    if (ref_export_page(r, x) != 0) {
        ref_export_free(x);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}
