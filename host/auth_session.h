/* auth_session.h - what an access token stands for, now: each account's
 * session version, roles and existence, cached per account for a short
 * time and forgotten at once when the account changes (locally, and on
 * every node through PostgreSQL NOTIFY on channel "weft_account"). */
#ifndef WEFT_HOST_AUTH_SESSION_H
#define WEFT_HOST_AUTH_SESSION_H

#include <stdint.h>

#include "auth_jwt.h"

struct wsess_state {
    int64_t ver; /* weft_users.session_version */
    int gone;    /* the account no longer exists */
    int nroles;
    char roles[WJWT_ROLES_MAX][WJWT_ROLE_MAX];
};

/* `ttl_ms` bounds how stale an entry can be when a notification is lost
 * (the LISTEN connection was down). Returns 0, or -1 without memory. */
int wsess_init(long long ttl_ms);
void wsess_fini(void);

/* 1 and *out filled when a fresh entry is cached, else 0. */
int wsess_get(int64_t id, struct wsess_state *out);
/* The invalidation count: read it before a fetch, hand it to wsess_put,
 * which then keeps nothing if an invalidation happened in between (the
 * fetched row may predate it). */
uint64_t wsess_gen(void);
void wsess_put(int64_t id, const struct wsess_state *st, uint64_t gen);
/* Who hears of a changed account (set once before the loops start): the
 * wiring hands realtime's session revocation here, since realtime sits
 * above identity and this file must not call up into it. */
void wsess_on_change(void (*fn)(int64_t id));
/* The account changed: drop its entry and tell the on_change hook. */
void wsess_forget(int64_t id);
/* A wdbl_fn for "weft_account" (payload: the account id). */
void wsess_on_notify(const char *channel, const char *payload, void *arg);

#endif
