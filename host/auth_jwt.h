/* auth_jwt.h - access tokens: JWT (RFC 7519) with HS256 only.
 *
 * libjwt 1.10.2 signs; verification is strict and done here, because
 * libjwt checks no claim, takes the algorithm from the token, and skips
 * the signature when given no key (facts in auth_jwt.c). */
#ifndef WEFT_HOST_AUTH_JWT_H
#define WEFT_HOST_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define WJWT_KEY_MIN 32 /* bytes; shorter keys are refused */
#define WJWT_KEY_MAX 4096
#define WJWT_TOKEN_MAX 4096 /* longer tokens are refused unparsed */
#define WJWT_ROLES_MAX 8
#define WJWT_ROLE_MAX 32  /* bytes with the NUL: [A-Za-z0-9_.:-]{1,31} */
#define WJWT_NAME_MAX 128 /* iss, aud: bytes with the NUL */
#define WJWT_JTI_LEN 32   /* 128 random bits, lower-case hex */
#define WJWT_SID_MAX 40   /* bytes with the NUL: [0-9a-f-]{1,39} */

/*
 * On the wire: {"aud":"...","exp":N,"iat":N,"iss":"...","jti":"<hex>",
 * "nbf":N,"roles":["admin",...],"sub":"42","sv":3,"sid":"<uuid>"}. `sub`
 * is the user id as a decimal string, as RFC 7519 4.1.2 wants a string;
 * `roles` is a JSON array (possibly empty). Times are seconds since the
 * epoch. `sv` (the account's session version when the token was made) and
 * `sid` (the session: its refresh-token family) are optional here: this
 * module checks their form, auth.c requires them and what they mean.
 */
struct wjwt_claims {
    int64_t sub; /* user id, > 0 */
    int nroles;
    char roles[WJWT_ROLES_MAX][WJWT_ROLE_MAX];
    char iss[WJWT_NAME_MAX];
    char aud[WJWT_NAME_MAX];
    int64_t iat, nbf, exp;
    char jti[WJWT_JTI_LEN + 1];
    int64_t sv;              /* -1: absent */
    char sid[WJWT_SID_MAX];  /* "": absent */
};

/*
 * Fill `c` for a token valid from `now` for `ttl_s` seconds, no roles, a
 * fresh random jti (keep it to revoke the token), no sv, no sid. Returns 0, or -1 when
 * an argument is out of range (sub <= 0, iss/aud empty or too long,
 * ttl_s <= 0).
 */
int wjwt_claims_init(struct wjwt_claims *c, int64_t sub, const char *iss,
                     const char *aud, time_t now, long ttl_s);
/* Returns 0, or -1 when the role is malformed or the list is full. */
int wjwt_role_add(struct wjwt_claims *c, const char *role);
int wjwt_has_role(const struct wjwt_claims *c, const char *role);

/*
 * Sign `c` with HS256 under `key` (WJWT_KEY_MIN..WJWT_KEY_MAX bytes).
 * *out is a malloc'd token for free(). Returns 0, or -1 when the key or a
 * claim is invalid (the same rules wjwt_verify applies, so what we sign
 * we accept) or memory ran out.
 */
int wjwt_sign(const unsigned char *key, size_t keylen,
              const struct wjwt_claims *c, char **out);

/*
 * Verify `token` at time `now` with `leeway_s` seconds of clock skew
 * (clamped to 0..86400) against the expected issuer and audience. All of
 * this must hold, else -1 with *why, a stable reason:
 *
 *   "bad_key"        key shorter than WJWT_KEY_MIN (or absurdly long)
 *   "too_long"       token over WJWT_TOKEN_MAX bytes, not parsed
 *   "malformed"      not three base64url segments of strict JSON objects
 *                    (duplicate keys refused), typ other than "JWT", or a
 *                    "crit" header (we understand no extension)
 *   "bad_algorithm"  header alg other than exactly "HS256"
 *   "bad_signature"  HMAC-SHA256 mismatch (compared in constant time)
 *   "missing_exp", "expired"        exp integer, now < exp + leeway
 *   "missing_nbf", "not_yet_valid"  nbf integer, nbf <= now + leeway
 *   "bad_iat"        iat missing, negative, not before exp, or in the future
 *                    beyond the leeway
 *   "bad_issuer"     iss is not a string equal to `iss`
 *   "bad_audience"   aud is neither a string equal to `aud` nor an array
 *                    of at most 8 strings one of which equals `aud`
 *   "bad_subject"    sub is not a canonical decimal string of an int64 > 0
 *   "bad_roles"      roles is not an array of at most 8 valid role names
 *   "bad_jti"        jti is not 32 lower-case hex digits
 *   "bad_session"    sv present but not an integer >= 0, or sid present
 *                    but not 1..39 of [0-9a-f-]
 *
 * Unknown claims are ignored. Returns 0 and fills `out` (may be NULL);
 * on failure `out` is zeroed. `why` may be NULL.
 */
int wjwt_verify(const unsigned char *key, size_t keylen, const char *token,
                const char *iss, const char *aud, time_t now, long leeway_s,
                struct wjwt_claims *out, const char **why);

#endif
