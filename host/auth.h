/* auth.h - identity: accounts, sessions, tokens, roles (/api/auth/...). */
#ifndef WEFT_HOST_AUTH_H
#define WEFT_HOST_AUTH_H

#include <stdint.h>

#include <weft/weft.h>

#include "diag.h"

struct weft_req;
struct wsettings;

/* The host's own schema (owner "weft"). */
extern const weft_migration wauth_migrations[];

/* Load the signing secret, set up hashing and rate limits. Returns 0, or
 * -1 with the reason in `d`. */
int wauth_init(const struct wsettings *s, struct wdiag *d);
void wauth_fini(void);
/* --check-config: is a configured [auth] secret usable? */
int wauth_check_secret(const struct wsettings *s, struct wdiag *d);
/* Register /api/auth/... (answer 503 while there is no database). */
int wauth_routes(void);

/* A host route flag: the route never asks who is asking (static files),
 * so its requests never wait for an account lookup. */
#define WAUTH_ROUTE_ANON 0x8000u

/* Who is asking: Bearer token or cookie (with CSRF check on state
 * changes), and whether the token's session is still what it was (the
 * account's session version, roles, existence: auth_session.c). Enforces
 * WEFT_ROUTE_USER and WEFT_ROUTE_ADMIN. Returns 0 to go on, -1 after
 * answering (401, 403, 503), or 1 when the account is being looked up:
 * the request is then routed again (wreq_reroute) once it is known. */
int wauth_request(struct weft_req *r, unsigned route_flags);

/* SDK accessors. */
int64_t wauth_user(struct weft_req *r);
/* When the request's credentials expire (s since the epoch), 0: none. */
int64_t wauth_expiry(struct weft_req *r);
int wauth_has_role(struct weft_req *r, const char *role);
int wauth_profile(struct weft_req *r, int64_t id, weft_db_fn cb, void *arg);

/* Command line (blocking): the database to use. */
extern const char *wauth_cli_conninfo;
int wauth_create_admin(const struct wsettings *s, const char *email,
                       const char *password, struct wdiag *d);
int wauth_seed_demo(const struct wsettings *s, struct wdiag *d);
/* At start (blocking): fill the username skeletons rows lack (rows from
 * before migration 3). Returns 0, or -1 with the reason in `d`. */
int wauth_backfill(const char *conninfo, struct wdiag *d);

#endif
