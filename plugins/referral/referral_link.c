/*
 * referral_link.c - the transaction steps every change goes through.
 *
 * Signup, claim and the lazy creation of a row all do some of: insert an
 * account's row with a fresh code, count a new link at the referrer (and
 * at the referrer's referrer), publish what changed. They run on a
 * transaction someone else began (the registration's, or the handler's),
 * one statement at a time, and end in l->next or l->fail.
 *
 * Counting is UPDATE ... SET direct = direct + 1: the row lock orders
 * concurrent signups with the same code, so none is lost. Every change
 * takes a new rev from one sequence (see the README's snapshot rule).
 * Events go through the outbox (weft_tx_publish): they exist if and only
 * if the change committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

int64_t ref_parse_id(const char *s)
{
    int64_t v = 0;
    size_t i;

    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int ref_db_status(const weft_db_res *res)
{
    const char *st = res != NULL ? weft_db_sqlstate(res) : NULL;

    /* No SQLSTATE: the connection, the pool or the timeout failed. */
    if (st == NULL || strlen(st) != 5)
        return 503;
    /* connection (08), rollback: deadlock or serialization (40),
     * resources (53), cancelled e.g. by query_timeout (57), lock (55P03) */
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "40", 2) == 0 ||
        strncmp(st, "53", 2) == 0 || strncmp(st, "57", 2) == 0 ||
        strcmp(st, "55P03") == 0)
        return 503;
    return 500;
}

json_t *ref_user_json(const weft_db_res *res, int row, int idc)
{
    return json_pack("{s:I, s:s, s:s}", "id",
                     (json_int_t)ref_parse_id(weft_db_value(res, row, idc)),
                     "username", weft_db_value(res, row, idc + 1),
                     "display_name", weft_db_value(res, row, idc + 2));
}

int ref_link_init(struct ref_link *l, weft_plugin *p, int64_t user_id,
                  ref_fail_fn fail)
{
    char why[160];

    memset(l, 0, sizeof(*l));
    l->user_id = user_id;
    l->fail = fail;
    l->unknown_status = 400;
    l->changes = json_array();
    l->events = json_array();
    if (l->changes == NULL || l->events == NULL ||
        ref_rewards_load(p, &l->rw, why, sizeof(why)) != 0) {
        weft_log(p, WEFT_LOG_ERROR, "referral: %s",
                 l->changes && l->events ? why : "out of memory");
        ref_link_clear(l);
        return -1;
    }
    return 0;
}

void ref_link_clear(struct ref_link *l)
{
    json_decref(l->self);
    json_decref(l->via);
    json_decref(l->changes);
    json_decref(l->events);
    l->self = l->via = l->changes = l->events = NULL;
}

void ref_link_query(weft_req *r, struct ref_link *l, const char *sql, int n,
                    const char *const *params, weft_tx_fn cb)
{
    if (weft_tx_query(l->tx, sql, n, params, cb, l) != WEFT_OK)
        l->fail(r, l, 503, "unavailable", "the database is busy", NULL);
}

/* A failed statement ends the link; 1 when it did. */
static int ref_link_failed(weft_req *r, struct ref_link *l,
                           const weft_db_res *res)
{
    if (weft_db_ok(res))
        return 0;
    l->fail(r, l, ref_db_status(res), NULL, NULL, res);
    return 1;
}

/* Column `name` of `res` (-1 when absent). */
static int ref_col(const weft_db_res *res, const char *name)
{
    int i, n = weft_db_cols(res);

    for (i = 0; i < n; i++)
        if (strcmp(weft_db_colname(res, i), name) == 0)
            return i;
    return -1;
}

static int64_t ref_int_col(const weft_db_res *res, int row, const char *name)
{
    int c = ref_col(res, name);

    return c < 0 ? 0 : strtoll(weft_db_value(res, row, c), NULL, 10);
}

int ref_link_add_change(struct ref_link *l, const weft_db_res *res, int row)
{
    int64_t d = ref_int_col(res, row, "direct"),
            s = ref_int_col(res, row, "second");
    int cu = ref_col(res, "username"), cd = ref_col(res, "display_name");
    json_t *c;

    if (cu < 0 || cd < 0)
        return -1;
    c = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I}", "user_id",
                  (json_int_t)ref_int_col(res, row, "user_id"), "username",
                  weft_db_value(res, row, cu), "display_name",
                  weft_db_value(res, row, cd), "direct", (json_int_t)d,
                  "second", (json_int_t)s, "points",
                  (json_int_t)ref_points(&l->rw, d, s), "rev",
                  (json_int_t)ref_int_col(res, row, "rev"));
    return json_array_append_new(l->changes, c);
}

/* ---- create ---------------------------------------------------------- */

/* No conflict target: a clash on the code (retry with a new one) and a
 * row that already exists (nothing to do) both leave the transaction
 * intact, where a unique violation would abort it. */
static const char ref_sql_create[] =
    "WITH ins AS (INSERT INTO referral_accounts"
    " (user_id, code, referrer_id, linked_at)"
    " VALUES ($1::bigint, $2, $3::bigint,"
    " CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() END)"
    " ON CONFLICT DO NOTHING RETURNING user_id, direct, second, rev)"
    " SELECT ins.user_id, u.username, u.display_name, ins.direct,"
    " ins.second, ins.rev FROM ins JOIN weft_users u ON u.id = ins.user_id";

static const char ref_sql_exists[] =
    "SELECT 1 FROM referral_accounts WHERE user_id = $1::bigint";

static void ref_create_try(weft_req *r, struct ref_link *l);

static void ref_create_checked(weft_req *r, weft_tx *tx,
                               const weft_db_res *res, void *arg)
{
    struct ref_link *l = arg;

    (void)tx;
    if (ref_link_failed(r, l, res))
        return;
    if (weft_db_rows(res) > 0) {
        l->next(r, l); /* the row was there: leave it as it is */
        return;
    }
    if (++l->tries >= REF_CODE_TRIES) {
        weft_req_log(r, WEFT_LOG_ERROR,
                     "referral: %d code collisions in a row", l->tries);
        l->fail(r, l, 503, "unavailable", "no free referral code", NULL);
        return;
    }
    ref_create_try(r, l); /* the code was taken: draw another */
}

static void ref_create_done(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            void *arg)
{
    struct ref_link *l = arg;
    const char *p[1];

    (void)tx;
    if (ref_link_failed(r, l, res))
        return;
    if (weft_db_rows(res) == 1) {
        l->created = 1;
        l->linked = l->referrer_id != 0;
        json_decref(l->self);
        l->self = ref_user_json(res, 0, 0);
        if (l->self == NULL || ref_link_add_change(l, res, 0) != 0) {
            l->fail(r, l, 503, "unavailable", "out of memory", NULL);
            return;
        }
        l->next(r, l);
        return;
    }
    p[0] = l->nbuf[0];
    ref_link_query(r, l, ref_sql_exists, 1, p, ref_create_checked);
}

static void ref_create_try(weft_req *r, struct ref_link *l)
{
    const char *p[3];

    if (ref_code_new(l->nbuf[2]) != 0) {
        weft_req_log(r, WEFT_LOG_ERROR, "referral: getrandom failed");
        l->fail(r, l, 503, "unavailable", "no randomness", NULL);
        return;
    }
    snprintf(l->nbuf[0], sizeof(l->nbuf[0]), "%lld", (long long)l->user_id);
    snprintf(l->nbuf[1], sizeof(l->nbuf[1]), "%lld",
             (long long)l->referrer_id);
    p[0] = l->nbuf[0];
    p[1] = l->nbuf[2];
    p[2] = l->referrer_id != 0 ? l->nbuf[1] : NULL;
    ref_link_query(r, l, ref_sql_create, 3, p, ref_create_done);
}

void ref_link_create(weft_req *r, struct ref_link *l, ref_link_fn next)
{
    l->next = next;
    l->tries = 0;
    ref_create_try(r, l);
}

/* ---- count ----------------------------------------------------------- */

#define REF_SQL_BUMP(set, where)                                              \
    "WITH up AS (UPDATE referral_accounts SET " set ","                       \
    " rev = nextval('referral_rev_seq') WHERE " where                         \
    " RETURNING user_id, referrer_id, direct, second, rev)"                   \
    " SELECT up.user_id, u.username, u.display_name, up.direct, up.second,"  \
    " up.rev, up.referrer_id FROM up JOIN weft_users u ON u.id = up.user_id"

static const char ref_sql_direct_code[] =
    REF_SQL_BUMP("direct = direct + 1", "code = $1");
static const char ref_sql_direct_id[] =
    REF_SQL_BUMP("direct = direct + 1, second = second + $2::int",
                 "user_id = $1::bigint");
static const char ref_sql_second_id[] =
    REF_SQL_BUMP("second = second + 1", "user_id = $1::bigint");

static void ref_count_second(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             void *arg)
{
    struct ref_link *l = arg;

    (void)tx;
    if (ref_link_failed(r, l, res))
        return;
    /* No row: that account was deleted meanwhile; nothing to count. */
    if (weft_db_rows(res) == 1 && ref_link_add_change(l, res, 0) != 0) {
        l->fail(r, l, 503, "unavailable", "out of memory", NULL);
        return;
    }
    l->next(r, l);
}

static void ref_count_direct(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             void *arg)
{
    struct ref_link *l = arg;
    const char *p[1];

    (void)tx;
    if (ref_link_failed(r, l, res))
        return;
    if (weft_db_rows(res) != 1) {
        l->fail(r, l, l->unknown_status, "unknown_referral_code",
                "no account has that referral code", NULL);
        return;
    }
    l->referrer_id = ref_parse_id(weft_db_value(res, 0, 0));
    l->second_id = weft_db_isnull(res, 0, 6)
                       ? 0
                       : ref_parse_id(weft_db_value(res, 0, 6));
    json_decref(l->via);
    l->via = ref_user_json(res, 0, 0);
    if (l->via == NULL || ref_link_add_change(l, res, 0) != 0) {
        l->fail(r, l, 503, "unavailable", "out of memory", NULL);
        return;
    }
    if (l->second_id == 0) {
        l->next(r, l);
        return;
    }
    snprintf(l->nbuf[3], sizeof(l->nbuf[3]), "%lld", (long long)l->second_id);
    p[0] = l->nbuf[3];
    ref_link_query(r, l, ref_sql_second_id, 1, p, ref_count_second);
}

void ref_link_count(weft_req *r, struct ref_link *l, ref_link_fn next)
{
    const char *p[2];

    l->next = next;
    if (l->code[0] != '\0') {
        p[0] = l->code; /* a new account: nothing carried */
        ref_link_query(r, l, ref_sql_direct_code, 1, p, ref_count_direct);
        return;
    }
    snprintf(l->nbuf[1], sizeof(l->nbuf[1]), "%lld",
             (long long)l->referrer_id);
    snprintf(l->nbuf[4], sizeof(l->nbuf[4]), "%lld", (long long)l->carried);
    p[0] = l->nbuf[1];
    p[1] = l->nbuf[4];
    ref_link_query(r, l, ref_sql_direct_id, 2, p, ref_count_direct);
}

/* ---- publish --------------------------------------------------------- */

/* Queue [topic, data] (data stolen). 0 or -1. */
static int ref_event(struct ref_link *l, const char *topic, json_t *data)
{
    json_t *e = json_pack("[s, o]", topic, data);

    return e != NULL ? json_array_append_new(l->events, e) : -1;
}

static json_t *ref_friend_joined(struct ref_link *l, int level)
{
    json_t *self = l->self != NULL
                       ? json_incref(l->self)
                       : json_pack("{s:I}", "id", (json_int_t)l->user_id);
    char id[64];
    json_t *j;

    /* The id makes redelivery (the outbox is at least once) harmless: one
     * account joins one referrer's tree once. */
    snprintf(id, sizeof(id), "friend_joined.%lld.%d", (long long)l->user_id,
             level);
    j = json_pack("{s:s, s:s, s:i, s:o}", "type", "friend_joined", "id", id,
                  "level", level, "user", self);
    if (j != NULL && level == 2 && l->via != NULL &&
        json_object_set(j, "via", l->via) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int ref_queue_events(struct ref_link *l)
{
    char topic[64];
    int bad = 0;

    if (l->linked && l->referrer_id != 0) {
        snprintf(topic, sizeof(topic), "referral.user.%lld",
                 (long long)l->referrer_id);
        bad |= ref_event(l, topic, ref_friend_joined(l, 1));
    }
    if (l->linked && l->second_id != 0) {
        snprintf(topic, sizeof(topic), "referral.user.%lld",
                 (long long)l->second_id);
        bad |= ref_event(l, topic, ref_friend_joined(l, 2));
    }
    if (json_array_size(l->changes) > 0)
        bad |= ref_event(l, "referral.leaderboard",
                         json_pack("{s:s, s:O}", "type", "changes", "changes",
                                   l->changes));
    return bad != 0 ? -1 : 0;
}

static void ref_publish_next(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             void *arg)
{
    struct ref_link *l = arg;
    json_t *e;

    (void)tx;
    if (res != NULL && ref_link_failed(r, l, res))
        return;
    if (json_array_size(l->events) == 0) {
        l->next(r, l);
        return;
    }
    e = json_incref(json_array_get(l->events, 0));
    json_array_remove(l->events, 0);
    if (weft_tx_publish(l->tx, json_string_value(json_array_get(e, 0)),
                        json_array_get(e, 1), ref_publish_next,
                        l) != WEFT_OK) {
        json_decref(e);
        weft_req_log(r, WEFT_LOG_ERROR, "referral: cannot publish");
        l->fail(r, l, 503, "unavailable", "cannot publish the event", NULL);
        return;
    }
    json_decref(e);
}

void ref_link_publish(weft_req *r, struct ref_link *l, ref_link_fn next)
{
    l->next = next;
    if (ref_queue_events(l) != 0) {
        l->fail(r, l, 503, "unavailable", "out of memory", NULL);
        return;
    }
    ref_publish_next(r, l->tx, NULL, l);
}
