/*
 * referral_read.c - what users read.
 *
 *   GET /api/referral/me           (user) code, invite path, referrer, stats
 *   GET /api/referral/referrals    (user) the two levels of the downline
 *   GET /api/referral/leaderboard  (anyone) a page of the ranking
 *
 * Accounts made before the plugin was enabled have no row yet: /me makes
 * it, in a transaction that also announces the new leaderboard row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

int ref_query_int(weft_req *r, const char *name, int64_t def, int64_t min,
                  int64_t max, int64_t *out)
{
    const char *s = weft_req_query(r, name);
    char msg[128];
    int64_t v = 0;
    size_t i;

    *out = def;
    if (s == NULL)
        return 0;
    for (i = 0; s[i] != '\0' && i < 12; i++) {
        if (s[i] < '0' || s[i] > '9')
            break;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0 || s[i] != '\0' || v < min || v > max) {
        snprintf(msg, sizeof(msg), "%s: a whole number in %lld..%lld", name,
                 (long long)min, (long long)max);
        weft_reply_error(r, 400, "invalid", msg);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- /me --------------------------------------------------------------- */

static const char ref_sql_me[] =
    "SELECT a.code, a.direct, a.second, ru.id, ru.username, ru.display_name"
    " FROM referral_accounts a LEFT JOIN weft_users ru"
    " ON ru.id = a.referrer_id WHERE a.user_id = $1::bigint";

static void ref_me_answer(weft_req *r, const weft_db_res *res)
{
    struct ref_rewards rw;
    char why[160], path[32];
    const char *code = weft_db_value(res, 0, 0);
    int64_t direct = strtoll(weft_db_value(res, 0, 1), NULL, 10),
            second = strtoll(weft_db_value(res, 0, 2), NULL, 10);
    json_t *stats, *ref, *j;

    if (ref_rewards_load(weft_req_plugin(r), &rw, why, sizeof(why)) != 0) {
        weft_req_log(r, WEFT_LOG_ERROR, "referral: %s", why);
        weft_reply_error(r, 500, "internal", "bad rewards configuration");
        return;
    }
    snprintf(path, sizeof(path), "/?ref=%s", code);
    ref = weft_db_isnull(res, 0, 3) ? json_null() : ref_user_json(res, 0, 3);
    stats = json_pack("{s:I, s:I}", "direct", (json_int_t)direct, "second",
                      (json_int_t)second);
    if (stats != NULL && ref_rewards_stats(&rw, direct, second, stats) != 0) {
        json_decref(stats);
        stats = NULL;
    }
    j = json_pack("{s:s, s:s, s:o, s:o}", "code", code, "invite_path", path,
                  "referrer", ref, "stats", stats);
    if (j == NULL)
        weft_reply_error(r, 503, "unavailable", "out of memory");
    else
        weft_reply_json(r, 200, j);
    json_decref(j);
}

static void ref_me_final(weft_req *r, const weft_db_res *res, void *arg)
{
    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    if (weft_db_rows(res) != 1) {
        weft_reply_error(r, 503, "unavailable", "try again");
        return;
    }
    ref_me_answer(r, res);
}

static void ref_me_requery(weft_req *r)
{
    char id[24];
    const char *p[1] = {id};

    snprintf(id, sizeof(id), "%lld", (long long)weft_req_user(r));
    if (weft_db_query(r, ref_sql_me, 1, p, ref_me_final, NULL) != WEFT_OK)
        weft_db_reply_error(r, NULL);
}

static void ref_lazy_free(struct ref_link *l)
{
    ref_link_clear(l);
    free(l);
}

static void ref_lazy_ended(weft_req *r, weft_tx *tx, const weft_db_res *res,
                           void *arg)
{
    (void)tx;
    ref_lazy_free(arg);
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    ref_me_requery(r);
}

static void ref_lazy_rolled_back(weft_req *r, weft_tx *tx,
                                 const weft_db_res *res, void *arg)
{
    (void)r;
    (void)tx;
    (void)res;
    ref_lazy_free(arg);
}

static void ref_lazy_fail(weft_req *r, struct ref_link *l, int status,
                          const char *code, const char *message,
                          const weft_db_res *res)
{
    if (res != NULL)
        weft_db_reply_error(r, res);
    else
        weft_reply_error(r, status, code != NULL ? code : "unavailable",
                         message != NULL ? message : "try again");
    if (l->tx == NULL ||
        weft_tx_end(l->tx, 0, ref_lazy_rolled_back, l) != WEFT_OK)
        ref_lazy_free(l);
}

static void ref_lazy_published(weft_req *r, struct ref_link *l)
{
    if (weft_tx_end(l->tx, 1, ref_lazy_ended, l) != WEFT_OK) {
        weft_reply_error(r, 503, "unavailable", "the database is busy");
        ref_lazy_free(l);
    }
}

static void ref_lazy_created(weft_req *r, struct ref_link *l)
{
    ref_link_publish(r, l, ref_lazy_published);
}

static void ref_lazy_begun(weft_req *r, weft_tx *tx, const weft_db_res *res,
                           void *arg)
{
    struct ref_link *l = arg;

    if (tx == NULL || !weft_db_ok(res)) {
        l->fail(r, l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    l->tx = tx;
    ref_link_create(r, l, ref_lazy_created);
}

static void ref_me_got(weft_req *r, const weft_db_res *res, void *arg)
{
    struct ref_link *l;

    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    if (weft_db_rows(res) == 1) {
        ref_me_answer(r, res);
        return;
    }
    /* No row yet: an account older than the plugin. */
    l = malloc(sizeof(*l));
    if (l == NULL || ref_link_init(l, weft_req_plugin(r), weft_req_user(r),
                                   ref_lazy_fail) != 0) {
        free(l);
        weft_reply_error(r, 503, "unavailable", "out of memory");
        return;
    }
    if (weft_tx_begin(r, ref_lazy_begun, l) != WEFT_OK) {
        ref_lazy_free(l);
        weft_db_reply_error(r, NULL);
    }
}

int ref_me(weft_req *r)
{
    char id[24];
    const char *p[1] = {id};

    snprintf(id, sizeof(id), "%lld", (long long)weft_req_user(r));
    if (weft_db_query(r, ref_sql_me, 1, p, ref_me_got, NULL) != WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

/* ---- /referrals -------------------------------------------------------- */

/* One round trip: both lists (numbered, so the aggregate keeps the order)
 * and both totals. Most recent link first; ties by id. */
#define REF_LIST_COLS                                                         \
    " u.id, u.username, u.display_name, " REF_SQL_TIME("a.linked_at")        \
    " AS joined_at, row_number() OVER (ORDER BY a.linked_at DESC,"           \
    " a.user_id DESC) AS n"

static const char ref_sql_referrals[] =
    "SELECT"
    " (SELECT count(*) FROM referral_accounts WHERE referrer_id = $1::bigint)"
    " AS direct_total,"
    " (SELECT coalesce(json_agg(json_build_object('id', x.id, 'username',"
    " x.username, 'display_name', x.display_name, 'joined_at', x.joined_at)"
    " ORDER BY x.n), '[]'::json) FROM (SELECT" REF_LIST_COLS
    " FROM referral_accounts a JOIN weft_users u ON u.id = a.user_id"
    " WHERE a.referrer_id = $1::bigint"
    " ORDER BY a.linked_at DESC, a.user_id DESC LIMIT $2::int) x) AS direct,"
    " (SELECT count(*) FROM referral_accounts a JOIN referral_accounts p"
    " ON p.user_id = a.referrer_id WHERE p.referrer_id = $1::bigint)"
    " AS second_total,"
    " (SELECT coalesce(json_agg(json_build_object('id', x.id, 'username',"
    " x.username, 'display_name', x.display_name, 'joined_at', x.joined_at,"
    " 'via', json_build_object('id', x.via_id, 'username', x.via_username,"
    " 'display_name', x.via_display_name)) ORDER BY x.n), '[]'::json)"
    " FROM (SELECT" REF_LIST_COLS ", v.id AS via_id,"
    " v.username AS via_username, v.display_name AS via_display_name"
    " FROM referral_accounts a JOIN referral_accounts p"
    " ON p.user_id = a.referrer_id JOIN weft_users u ON u.id = a.user_id"
    " JOIN weft_users v ON v.id = p.user_id WHERE p.referrer_id = $1::bigint"
    " ORDER BY a.linked_at DESC, a.user_id DESC LIMIT $2::int) x) AS second";

static void ref_referrals_got(weft_req *r, const weft_db_res *res, void *arg)
{
    json_t *j;

    (void)arg;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        return;
    }
    j = weft_db_json(res, 0);
    if (j == NULL)
        weft_reply_error(r, 503, "unavailable", "out of memory");
    else
        weft_reply_json(r, 200, j);
    json_decref(j);
}

int ref_referrals(weft_req *r)
{
    char id[24], lim[8];
    const char *p[2] = {id, lim};

    snprintf(id, sizeof(id), "%lld", (long long)weft_req_user(r));
    snprintf(lim, sizeof(lim), "%d", REF_LIST_MAX);
    if (weft_db_query(r, ref_sql_referrals, 2, p, ref_referrals_got, NULL) !=
        WEFT_OK)
        return weft_db_reply_error(r, NULL);
    return WEFT_OK;
}

/* ---- /leaderboard ------------------------------------------------------ */

/* Points are computed here with the configured factors as parameters, so
 * a config change re-ranks at once. Ties: more direct referrals first,
 * then the older account (smaller id): a stable order for paging. */
static const char ref_sql_board[] =
    "SELECT (SELECT count(*) FROM referral_accounts) AS total,"
    " (SELECT coalesce(json_agg(json_build_object('user_id', x.user_id,"
    " 'username', x.username, 'display_name', x.display_name, 'direct',"
    " x.direct, 'second', x.second, 'points', x.points, 'rev', x.rev)"
    " ORDER BY x.points DESC, x.direct DESC, x.user_id), '[]'::json)"
    " FROM (SELECT a.user_id, u.username, u.display_name, a.direct,"
    " a.second, a.direct::bigint * $1::bigint + a.second::bigint * $2::bigint"
    " AS points, a.rev FROM referral_accounts a"
    " JOIN weft_users u ON u.id = a.user_id"
    " ORDER BY points DESC, a.direct DESC, a.user_id"
    " LIMIT $3::bigint OFFSET $4::bigint) x) AS items";

static void ref_board_got(weft_req *r, const weft_db_res *res, void *arg)
{
    int64_t *page = arg; /* limit, offset */
    json_t *j, *items, *it;
    size_t i;
    int bad = 0;

    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        free(page);
        return;
    }
    j = weft_db_json(res, 0);
    items = json_object_get(j, "items");
    /* rank: the 1-based position in the order above */
    json_array_foreach(items, i, it) {
        bad |= json_object_set_new(it, "rank",
                                   json_integer(page[1] + (json_int_t)i + 1));
    }
    if (j == NULL || bad ||
        json_object_set_new(j, "limit", json_integer(page[0])) != 0 ||
        json_object_set_new(j, "offset", json_integer(page[1])) != 0)
        weft_reply_error(r, 503, "unavailable", "out of memory");
    else
        weft_reply_json(r, 200, j);
    json_decref(j);
    free(page);
}

int ref_leaderboard(weft_req *r)
{
    struct ref_rewards rw;
    char why[160], b[4][24];
    const char *p[4] = {b[0], b[1], b[2], b[3]};
    int64_t *page = malloc(2 * sizeof(*page));

    if (page == NULL)
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    if (ref_query_int(r, "limit", 20, 1, 100, &page[0]) != 0 ||
        ref_query_int(r, "offset", 0, 0, 1000000000, &page[1]) != 0) {
        free(page);
        return WEFT_OK;
    }
    if (ref_rewards_load(weft_req_plugin(r), &rw, why, sizeof(why)) != 0) {
        free(page);
        weft_req_log(r, WEFT_LOG_ERROR, "referral: %s", why);
        return weft_reply_error(r, 500, "internal", "bad configuration");
    }
    snprintf(b[0], sizeof(b[0]), "%lld", (long long)rw.points_direct);
    snprintf(b[1], sizeof(b[1]), "%lld", (long long)rw.points_second);
    snprintf(b[2], sizeof(b[2]), "%lld", (long long)page[0]);
    snprintf(b[3], sizeof(b[3]), "%lld", (long long)page[1]);
    if (weft_db_query(r, ref_sql_board, 4, p, ref_board_got, page) !=
        WEFT_OK) {
        free(page);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}
