/* signup.h - registration as one transaction: the account row, then the
 * plugins' signup steps (weft_on_signup), then COMMIT. */
#ifndef WEFT_HOST_SIGNUP_H
#define WEFT_HOST_SIGNUP_H

#include <jansson.h>

struct weft_req;
struct weft_db_res;

/*
 * The outcome, on the request's loop. Either `res` is the INSERT's result
 * (the new row, committed) or a failed statement (res->error set; rolled
 * back), with status 0; or a step refused: status 400..599 with code and
 * message, res NULL. Called once.
 */
typedef void (*wsignup_fn)(struct weft_req *r, const struct weft_db_res *res,
                           int status, const char *code, const char *message,
                           void *arg);

/* Run `insert_sql` (RETURNING the account row, id first) and the steps.
 * `body` is the registration JSON (a reference is taken). 0, or -1 when
 * nothing started (answer 503). */
int wsignup_start(struct weft_req *r, const char *insert_sql, int nparams,
                  const char *const *params, json_t *body, wsignup_fn done,
                  void *arg);

/* weft_signup_done() */
int wsignup_step_done(struct weft_req *r, int status, const char *code,
                      const char *message);

#endif
