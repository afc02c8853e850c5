/* cookie.h - Cookie request headers, Set-Cookie values (RFC 6265), and a
 * constant-time compare for CSRF double-submit tokens. */
#ifndef WEFT_HOST_COOKIE_H
#define WEFT_HOST_COOKIE_H

#include <stddef.h>

/*
 * Copy the value of cookie `name` from a Cookie header into `out` (`size`
 * bytes, NUL-terminated). Names match exactly (case-sensitive); when a name
 * repeats, the first wins (browsers send the most specific path first).
 * One pair of surrounding double quotes is removed. Returns 0 when found,
 * 1 when absent (or `header` is NULL), -1 when the value does not fit or
 * holds bytes a cookie-value may not (CTLs, space, '"', ',', ';', '\').
 */
int wcookie_get(const char *header, const char *name, char *out, size_t size);

enum {
    WCOOKIE_HTTPONLY = 1 << 0,
    WCOOKIE_SECURE = 1 << 1,
    WCOOKIE_SAMESITE_STRICT = 1 << 2,
    WCOOKIE_SAMESITE_LAX = 1 << 3,
    WCOOKIE_PATH_ROOT = 1 << 4, /* Path=/ */
};

/*
 * Write a Set-Cookie header value into `buf`: "name=value; Max-Age=N;
 * Path=/; Secure; HttpOnly; SameSite=Strict". `max_age_s` < 0 leaves out
 * Max-Age (a session cookie); 0 asks the browser to delete the cookie.
 * Refuses (-1) a name that is not an RFC 9110 token, a value with bytes
 * outside cookie-octet (so ';', ',', space, quotes, CR and LF can never
 * inject attributes or headers), both SameSite flags, the rules of the
 * "__Secure-" and "__Host-" name prefixes, and a `buf` too small.
 * Returns 0.
 */
int wcookie_set(char *buf, size_t size, const char *name, const char *value,
                long max_age_s, int flags);

/*
 * 1 when `a` and `b` are equal, 0 otherwise, in time that depends only on
 * their lengths (lengths are not secret: tokens have a fixed size). NULL or
 * empty never matches, so a missing cookie never equals a missing header.
 */
int wct_eq(const char *a, const char *b);

#endif
