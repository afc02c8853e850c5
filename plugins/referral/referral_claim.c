/*
 * referral_claim.c - POST /api/referral/claim {"code": "ABCD2345"}
 *
 * For an account that registered without a code. One transaction:
 *
 *   1. a transaction-scoped advisory lock that only claims take: two
 *      claims checking for cycles at once could each see no cycle and
 *      together make one (A claims B's code while B claims A's); signups
 *      cannot make cycles (a new account has no downline), so they never
 *      wait for it;
 *   2. the claimer's row (created when the account predates the plugin);
 *   3. the referrer by code: unknown 404, the claimer's own 400;
 *   4. the claimer's row locked: already referred 409;
 *   5. the referrer must not be in the claimer's downline: 400;
 *   6. link, count and publish as a signup does (referral_link.c); the
 *      claimer's own referrals become the referrer's second level.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

struct ref_claim {
    struct ref_link l; /* first: the link's callbacks get this pointer */
    char code[REF_CODE_LEN + 1];
    char ids[2][24]; /* claimer, referrer */
};

static void ref_claim_free(struct ref_claim *c)
{
    ref_link_clear(&c->l);
    free(c);
}

static void ref_claim_rolled_back(weft_req *r, weft_tx *tx,
                                  const weft_db_res *res, void *arg)
{
    (void)r;
    (void)tx;
    (void)res;
    ref_claim_free(arg);
}

/* Answer the refusal or failure, then roll back (the request stays open
 * until the ROLLBACK ran). */
static void ref_claim_fail(weft_req *r, struct ref_link *l, int status,
                           const char *code, const char *message,
                           const weft_db_res *res)
{
    struct ref_claim *c = (struct ref_claim *)l;

    if (res != NULL)
        weft_db_reply_error(r, res);
    else
        weft_reply_error(r, status, code != NULL ? code : "unavailable",
                         message != NULL ? message : "try again");
    if (l->tx == NULL ||
        weft_tx_end(l->tx, 0, ref_claim_rolled_back, c) != WEFT_OK)
        ref_claim_free(c); /* the request's end rolls back */
}

static void ref_claim_committed(weft_req *r, weft_tx *tx,
                                const weft_db_res *res, void *arg)
{
    struct ref_claim *c = arg;
    json_t *j;

    (void)tx;
    if (!weft_db_ok(res)) {
        weft_db_reply_error(r, res);
        ref_claim_free(c);
        return;
    }
    j = json_pack("{s:O}", "referrer", c->l.via != NULL ? c->l.via
                                                          : json_null());
    if (j == NULL)
        weft_reply_error(r, 503, "unavailable", "out of memory");
    else
        weft_reply_json(r, 200, j);
    json_decref(j);
    ref_claim_free(c);
}

static void ref_claim_published(weft_req *r, struct ref_link *l)
{
    struct ref_claim *c = (struct ref_claim *)l;

    if (weft_tx_end(l->tx, 1, ref_claim_committed, c) != WEFT_OK) {
        weft_reply_error(r, 503, "unavailable", "the database is busy");
        ref_claim_free(c);
    }
}

static void ref_claim_counted(weft_req *r, struct ref_link *l)
{
    ref_link_publish(r, l, ref_claim_published);
}

static const char ref_sql_set_referrer[] =
    "WITH up AS (UPDATE referral_accounts SET referrer_id = $2::bigint,"
    " linked_at = now(), rev = nextval('referral_rev_seq')"
    " WHERE user_id = $1::bigint AND referrer_id IS NULL RETURNING user_id)"
    " SELECT u.id, u.username, u.display_name FROM up"
    " JOIN weft_users u ON u.id = up.user_id";

static void ref_claim_linked(weft_req *r, weft_tx *tx, const weft_db_res *res,
                             void *arg)
{
    struct ref_link *l = arg;

    (void)tx;
    if (!weft_db_ok(res)) {
        l->fail(r, l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    if (weft_db_rows(res) != 1) { /* the row is locked: cannot happen */
        l->fail(r, l, 409, "already_referred",
                "this account already has a referrer", NULL);
        return;
    }
    json_decref(l->self);
    l->self = ref_user_json(res, 0, 0);
    l->linked = 1;
    if (l->self == NULL) {
        l->fail(r, l, 503, "unavailable", "out of memory", NULL);
        return;
    }
    ref_link_count(r, l, ref_claim_counted);
}

static void ref_claim_cycle_checked(weft_req *r, weft_tx *tx,
                                    const weft_db_res *res, void *arg)
{
    struct ref_claim *c = arg;
    const char *p[2] = {c->ids[0], c->ids[1]};

    (void)tx;
    if (!weft_db_ok(res)) {
        c->l.fail(r, &c->l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    if (weft_db_rows(res) != 1 || strcmp(weft_db_value(res, 0, 0), "f") != 0) {
        c->l.fail(r, &c->l, 400, "referral_cycle",
                  "that account was referred by you, directly or not", NULL);
        return;
    }
    ref_link_query(r, &c->l, ref_sql_set_referrer, 2, p, ref_claim_linked);
}

/* Does walking up from the referrer ($1) reach the claimer ($2)? UNION
 * (not ALL) ends the walk even if the data ever held a loop. */
static const char ref_sql_cycle[] =
    "WITH RECURSIVE up(id) AS ("
    " SELECT referrer_id FROM referral_accounts WHERE user_id = $1::bigint"
    " UNION SELECT a.referrer_id FROM referral_accounts a"
    " JOIN up ON a.user_id = up.id)"
    " SELECT EXISTS (SELECT 1 FROM up WHERE id = $2::bigint)";

static void ref_claim_locked_self(weft_req *r, weft_tx *tx,
                                  const weft_db_res *res, void *arg)
{
    struct ref_claim *c = arg;
    const char *p[2] = {c->ids[1], c->ids[0]};

    (void)tx;
    if (!weft_db_ok(res)) {
        c->l.fail(r, &c->l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    if (weft_db_rows(res) != 1) {
        c->l.fail(r, &c->l, 503, "unavailable", "the account is gone", NULL);
        return;
    }
    if (!weft_db_isnull(res, 0, 0)) {
        c->l.fail(r, &c->l, 409, "already_referred",
                  "this account already has a referrer", NULL);
        return;
    }
    /* Stable: signups with the claimer's code wait for this row lock. */
    c->l.carried = strtoll(weft_db_value(res, 0, 1), NULL, 10);
    ref_link_query(r, &c->l, ref_sql_cycle, 2, p, ref_claim_cycle_checked);
}

static void ref_claim_found(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            void *arg)
{
    struct ref_claim *c = arg;
    const char *p[1] = {c->ids[0]};

    (void)tx;
    if (!weft_db_ok(res)) {
        c->l.fail(r, &c->l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    if (weft_db_rows(res) != 1) {
        c->l.fail(r, &c->l, 404, "unknown_referral_code",
                  "no account has that referral code", NULL);
        return;
    }
    c->l.referrer_id = ref_parse_id(weft_db_value(res, 0, 0));
    if (c->l.referrer_id == c->l.user_id) {
        c->l.fail(r, &c->l, 400, "self_referral",
                  "that is your own referral code", NULL);
        return;
    }
    snprintf(c->ids[1], sizeof(c->ids[1]), "%lld",
             (long long)c->l.referrer_id);
    ref_link_query(r, &c->l,
                   "SELECT referrer_id, direct FROM referral_accounts"
                   " WHERE user_id = $1::bigint FOR UPDATE",
                   1, p, ref_claim_locked_self);
}

static void ref_claim_has_row(weft_req *r, struct ref_link *l)
{
    struct ref_claim *c = (struct ref_claim *)l;
    const char *p[1] = {c->code};

    /* The row was made with no referrer: keep the link for step 6. */
    l->linked = 0;
    ref_link_query(r, l,
                   "SELECT user_id FROM referral_accounts WHERE code = $1", 1,
                   p, ref_claim_found);
}

static void ref_claim_serialised(weft_req *r, weft_tx *tx,
                                 const weft_db_res *res, void *arg)
{
    struct ref_link *l = arg;

    (void)tx;
    if (!weft_db_ok(res)) {
        l->fail(r, l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    ref_link_create(r, l, ref_claim_has_row);
}

static void ref_claim_begun(weft_req *r, weft_tx *tx, const weft_db_res *res,
                            void *arg)
{
    struct ref_claim *c = arg;

    if (tx == NULL || !weft_db_ok(res)) {
        c->l.fail(r, &c->l, ref_db_status(res), NULL, NULL, res);
        return;
    }
    c->l.tx = tx;
    ref_link_query(r, &c->l,
                   "SELECT pg_advisory_xact_lock(hashtext('referral.claim'))",
                   0, NULL, ref_claim_serialised);
}

/* The "code" member: 0 with out set, or -1 after answering. A code that
 * cannot exist is simply unknown (404). */
static int ref_claim_code(weft_req *r, char out[REF_CODE_LEN + 1])
{
    const char *err = NULL, *s;
    json_t *in = weft_req_json(r, &err), *c;
    size_t n;
    int ok;

    if (in == NULL) {
        weft_reply_error(r, 400, "bad_json", err);
        return -1;
    }
    c = json_object_get(in, "code");
    s = json_string_value(c);
    n = json_string_length(c);
    if (s == NULL || n > REF_CODE_INPUT_MAX) {
        json_decref(in);
        weft_reply_error(r, 400, "invalid",
                         "code: a string of at most 32 bytes");
        return -1;
    }
    ok = strlen(s) == n && ref_code_normalise(s, out);
    json_decref(in);
    if (!ok) {
        weft_reply_error(r, 404, "unknown_referral_code",
                         "no account has that referral code");
        return -1;
    }
    return 0;
}

int ref_claim(weft_req *r)
{
    struct ref_claim *c;
    char code[REF_CODE_LEN + 1];

    if (ref_claim_code(r, code) != 0)
        return WEFT_OK;
    c = malloc(sizeof(*c));
    if (c == NULL || ref_link_init(&c->l, weft_req_plugin(r),
                                   weft_req_user(r), ref_claim_fail) != 0) {
        free(c);
        return weft_reply_error(r, 503, "unavailable", "out of memory");
    }
    memcpy(c->code, code, sizeof(code));
    c->l.unknown_status = 404;
    snprintf(c->ids[0], sizeof(c->ids[0]), "%lld", (long long)c->l.user_id);
    if (weft_tx_begin(r, ref_claim_begun, c) != WEFT_OK) {
        ref_claim_free(c);
        return weft_db_reply_error(r, NULL);
    }
    return WEFT_OK;
}
