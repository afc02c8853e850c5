/*
 * referral_signup.c - the signup step (weft_on_signup).
 *
 * It runs inside the registration's transaction, right after the account
 * row was inserted: the account, its referral row, the referrer's counts
 * and the events commit together or not at all. An unknown code refuses
 * the registration (400), so a typo never silently creates an account
 * without its link.
 *
 *   registration JSON: {..., "referral_code": "ABCD2345"}   (optional)
 */
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

static void ref_signup_fail(weft_req *r, struct ref_link *l, int status,
                            const char *code, const char *message,
                            const weft_db_res *res)
{
    if (res != NULL)
        weft_req_log(r, WEFT_LOG_ERROR, "referral: signup step: %s",
                     weft_db_error(res));
    if (code == NULL)
        code = status == 503 ? "unavailable" : "internal";
    if (message == NULL)
        message = status == 503 ? "the database is busy, try again"
                                : "the referral step failed";
    ref_link_clear(l);
    free(l);
    /* The host rolls the registration back and answers with this. */
    weft_signup_done(r, status, code, message);
}

static void ref_signup_finish(weft_req *r, struct ref_link *l)
{
    ref_link_clear(l);
    free(l);
    weft_signup_done(r, WEFT_OK, NULL, NULL);
}

static void ref_signup_created(weft_req *r, struct ref_link *l)
{
    ref_link_publish(r, l, ref_signup_finish);
}

static void ref_signup_counted(weft_req *r, struct ref_link *l)
{
    /* l->referrer_id is now set: the new row points at it. */
    ref_link_create(r, l, ref_signup_created);
}

/*
 * The code the client sent: 0 with l->code set (or "" for none), or -1
 * after refusing the registration. Absent, null, "" or only spaces mean
 * no code (a form's empty field).
 */
static int ref_signup_code(weft_req *r, struct ref_link *l, json_t *body)
{
    json_t *c = json_object_get(body, "referral_code");
    const char *s;
    size_t n;

    l->code[0] = '\0';
    if (c == NULL || json_is_null(c))
        return 0;
    s = json_string_value(c);
    n = json_string_length(c);
    if (s == NULL || n > REF_CODE_INPUT_MAX) {
        ref_signup_fail(r, l, 400, "invalid",
                        "referral_code: a string of at most 32 bytes", NULL);
        return -1;
    }
    if (strspn(s, " \t\r\n") == n)
        return 0;
    /* An embedded NUL would make a prefix match: refuse it as unknown. */
    if (strlen(s) != n || !ref_code_normalise(s, l->code)) {
        ref_signup_fail(r, l, 400, "unknown_referral_code",
                        "no account has that referral code", NULL);
        return -1;
    }
    return 0;
}

void ref_signup_step(weft_req *r, weft_tx *tx, int64_t user_id, json_t *body,
                     void *arg)
{
    struct ref_link *l = malloc(sizeof(*l));

    (void)arg;
    if (l == NULL ||
        ref_link_init(l, weft_req_plugin(r), user_id, ref_signup_fail) != 0) {
        free(l);
        weft_signup_done(r, 503, "unavailable", "out of memory");
        return;
    }
    l->tx = tx;
    l->unknown_status = 400;
    if (ref_signup_code(r, l, body) != 0)
        return;
    if (l->code[0] != '\0')
        ref_link_count(r, l, ref_signup_counted);
    else
        ref_link_create(r, l, ref_signup_created);
}
