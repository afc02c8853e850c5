/*
 * referral_util.h - what the files of the referral plugin share.
 *
 *   referral.c         descriptor, config keys, init (routes, topics, step)
 *   referral_code.c    random codes and normalising what clients type
 *   referral_config.c  rewards: points per level and the badge ladder
 *   referral_link.c    transaction steps shared by signup, claim and the
 *                      lazy creation of a row: create, count, publish
 *   referral_signup.c  the signup step (inside the registration's tx)
 *   referral_claim.c   POST /api/referral/claim
 *   referral_read.c    /me, /referrals, /leaderboard
 *   referral_admin.c   admin list and CSV export
 *   referral_csv.c     CSV field quoting with formula-injection safety
 *
 * The plugin keeps no state of its own: everything lives in the database,
 * and per-request state lives in heap structs freed when the request's
 * last callback ran.
 */
#ifndef REFERRAL_UTIL_H
#define REFERRAL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <weft/weft.h>

/* A code: 8 characters of REF_ALPHABET. */
#define REF_CODE_LEN 8
/* Longest "code" / "referral_code" a client may send (before trimming). */
#define REF_CODE_INPUT_MAX 32
/* No 0/O, 1/I/L: nothing a reader can confuse. 31 characters. */
#define REF_ALPHABET "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

#define REF_MAX_BADGES 32
#define REF_BADGE_NAME_MAX 64
/* At most this many rows per list in GET /referrals. */
#define REF_LIST_MAX 100
/* Attempts at a fresh code when one collides (31^8 codes: a second
 * collision in a row is already very unlikely). */
#define REF_CODE_TRIES 16

/* An ISO 8601 UTC timestamp of column `c`, as SQL text. */
#define REF_SQL_TIME(c)                                                       \
    "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* ---- referral_code.c ---- */

/* A fresh random code (getrandom(2)). 0, or -1 when no randomness. */
int ref_code_new(char out[REF_CODE_LEN + 1]);
/* Trim ASCII white space and upper-case `in` into `out`. Returns 1 when the
 * result is a well-formed code, 0 otherwise (then no code can match). */
int ref_code_normalise(const char *in, char out[REF_CODE_LEN + 1]);

/* ---- referral_config.c ---- */

struct ref_badge {
    int64_t threshold; /* direct referrals needed */
    char name[REF_BADGE_NAME_MAX + 1];
};

struct ref_rewards {
    int64_t points_direct, points_second;
    size_t nbadges;
    struct ref_badge badges[REF_MAX_BADGES]; /* thresholds increasing */
};

/* Parse "1:First friend,5:Connector" into rw->badges. 0, or -1 with why. */
int ref_badges_parse(const char *text, struct ref_rewards *rw, char *why,
                     size_t whylen);
/* The plugin version's rewards from its config. 0, or -1 with why. */
int ref_rewards_load(weft_plugin *p, struct ref_rewards *rw, char *why,
                     size_t whylen);
int64_t ref_points(const struct ref_rewards *rw, int64_t direct,
                   int64_t second);
/* {"points", "badges": [...earned], "next_badge": {...}|null} members
 * added to `stats`. 0 or -1 (out of memory). */
int ref_rewards_stats(const struct ref_rewards *rw, int64_t direct,
                      int64_t second, json_t *stats);

/* ---- referral_csv.c ---- */

struct ref_buf {
    char *data;
    size_t len, cap;
};

int ref_buf_add(struct ref_buf *b, const void *s, size_t n);
void ref_buf_free(struct ref_buf *b);
/* Append one CSV field: text fields are neutralised against formula
 * injection (a leading = + - @ tab or CR gets a ' before it) and quoted
 * when they hold a comma, quote, CR or LF (quotes doubled). `text` 0: a
 * number, written as is. 0 or -1 (out of memory). */
int ref_csv_field(struct ref_buf *b, const char *s, int text);

/* ---- small helpers (referral_link.c) ---- */

/* Parse a decimal id (1..2^63-1); 0 when not one. */
int64_t ref_parse_id(const char *s);
/* The HTTP status for a failed statement: 503 when retrying may help
 * (connection, timeout, lock conflicts), 500 otherwise. */
int ref_db_status(const weft_db_res *res);
/* A user object {id, username, display_name} from a result row's columns
 * `idc`, `idc+1`, `idc+2`. New reference or NULL. */
json_t *ref_user_json(const weft_db_res *res, int row, int idc);

/* ---- referral_link.c: the shared transaction steps ---- */

struct ref_link;
typedef void (*ref_link_fn)(weft_req *r, struct ref_link *l);
/* A refusal (status 400..499 with code/message) or a failure (res is the
 * failed statement, or NULL with status 503 for "could not even start"). */
typedef void (*ref_fail_fn)(weft_req *r, struct ref_link *l, int status,
                            const char *code, const char *message,
                            const weft_db_res *res);

struct ref_link {
    weft_tx *tx;
    int64_t user_id;     /* the account being created or linked */
    char code[REF_CODE_LEN + 1]; /* the referrer's code, "" for none */
    int64_t referrer_id; /* set by ref_link_count (or by the caller) */
    int64_t second_id;   /* the referrer's referrer, 0 for none */
    /* The linked account's own direct referrals: they become the
     * referrer's second level (non-zero only when an account with a
     * downline claims a code). */
    int64_t carried;
    int created;         /* ref_link_create inserted the row */
    int linked;          /* user_id got a referrer in this transaction */
    int tries;
    int unknown_status;  /* 400 at signup, 404 for a claim */
    struct ref_rewards rw;
    json_t *self;    /* {id, username, display_name} of user_id */
    json_t *via;     /* the same of the referrer (for level-2 events) */
    json_t *changes; /* leaderboard rows changed, in order */
    json_t *events;  /* [[topic, data], ...] still to publish */
    ref_link_fn next;
    ref_fail_fn fail;
    char nbuf[5][24]; /* number parameters; live as long as the link */
};

/* Initialise `l` for `user_id` on `tx` (may be NULL until BEGIN ran).
 * 0, or -1 when the config cannot be read or memory is short. */
int ref_link_init(struct ref_link *l, weft_plugin *p, int64_t user_id,
                  ref_fail_fn fail);
void ref_link_clear(struct ref_link *l);
/* Insert the row of l->user_id with a fresh code (retrying on a code
 * collision) and l->referrer_id (0: none). An existing row is left as it
 * is (l->created stays 0). Then next(). */
void ref_link_create(weft_req *r, struct ref_link *l, ref_link_fn next);
/* The referrer (by l->code when set, else l->referrer_id) gets direct+1
 * and second+l->carried, its own referrer second+1; both rows join
 * l->changes. Unknown code:
 * fail(l->unknown_status, "unknown_referral_code"). Then next(). */
void ref_link_count(weft_req *r, struct ref_link *l, ref_link_fn next);
/* Publish through the outbox: friend_joined to the referrer (level 1) and
 * to its referrer (level 2) when l->linked, and one "changes" event with
 * l->changes when not empty. Then next(). */
void ref_link_publish(weft_req *r, struct ref_link *l, ref_link_fn next);
/* Append a leaderboard row built from columns user_id, username,
 * display_name, direct, second, rev (by name) of `res` row `row`. */
int ref_link_add_change(struct ref_link *l, const weft_db_res *res, int row);
/* Run a statement of the link's transaction and continue with `cb`. A
 * refused call ends in l->fail (503). */
void ref_link_query(weft_req *r, struct ref_link *l, const char *sql,
                    int n, const char *const *params, weft_tx_fn cb);

/* ---- route handlers and the signup step ---- */

void ref_signup_step(weft_req *r, weft_tx *tx, int64_t user_id, json_t *body,
                     void *arg);
int ref_claim(weft_req *r);
int ref_me(weft_req *r);
int ref_referrals(weft_req *r);
int ref_leaderboard(weft_req *r);
int ref_admin_accounts(weft_req *r);
int ref_admin_export(weft_req *r);

/* Parse ?name= as an integer in min..max (absent: def). 0, or -1 after
 * answering 400. */
int ref_query_int(weft_req *r, const char *name, int64_t def, int64_t min,
                  int64_t max, int64_t *out);

#endif /* REFERRAL_UTIL_H */
