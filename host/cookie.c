/* cookie.c - RFC 6265 cookies: parse what browsers send, build what we set. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cookie.h"

/* RFC 6265 4.1.1 cookie-octet: no CTLs, space, '"', ',', ';' or '\'. */
static int wcookie_octet(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' &&
           c != '\\';
}

/* RFC 9110 tchar. */
static int wcookie_tchar(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int wcookie_get(const char *header, const char *name, char *out, size_t size)
{
    const char *p = header, *pair, *eq, *v, *ve;
    size_t nl = strlen(name), vl;

    if (size == 0)
        return -1;
    out[0] = '\0';
    if (header == NULL || nl == 0)
        return 1;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        pair = p;
        while (*p != '\0' && *p != ';')
            p++;
        /* [pair, p) is one "name=value", possibly with trailing blanks */
        eq = memchr(pair, '=', (size_t)(p - pair));
        if (eq == NULL)
            continue; /* no '=': not a pair we can name */
        ve = eq;
        while (ve > pair && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if ((size_t)(ve - pair) != nl || memcmp(pair, name, nl) != 0)
            continue;
        v = eq + 1;
        ve = p;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        vl = (size_t)(ve - v);
        if (vl >= size)
            return -1;
        for (const char *q = v; q < ve; q++)
            if (!wcookie_octet((unsigned char)*q))
                return -1;
        memcpy(out, v, vl);
        out[vl] = '\0';
        return 0;
    }
    return 1;
}

int wcookie_set(char *buf, size_t size, const char *name, const char *value,
                long max_age_s, int flags)
{
    size_t len = 0;
    int n;

    if (size == 0)
        return -1;
    buf[0] = '\0';
    if (name[0] == '\0')
        return -1;
    for (const char *q = name; *q; q++)
        if (!wcookie_tchar((unsigned char)*q))
            return -1;
    for (const char *q = value; *q; q++)
        if (!wcookie_octet((unsigned char)*q))
            return -1;
    if ((flags & WCOOKIE_SAMESITE_STRICT) && (flags & WCOOKIE_SAMESITE_LAX))
        return -1;
    /* Browsers drop prefixed cookies that break these rules; refusing
     * here turns a silent loss into a bug the developer sees. */
    if ((strncmp(name, "__Secure-", 9) == 0 ||
         strncmp(name, "__Host-", 7) == 0) &&
        !(flags & WCOOKIE_SECURE))
        return -1;
    if (strncmp(name, "__Host-", 7) == 0 && !(flags & WCOOKIE_PATH_ROOT))
        return -1;

#define WCOOKIE_PUT(...)                                                       \
    do {                                                                       \
        n = snprintf(buf + len, size - len, __VA_ARGS__);                      \
        if (n < 0 || (size_t)n >= size - len) {                                \
            buf[0] = '\0';                                                     \
            return -1;                                                         \
        }                                                                      \
        len += (size_t)n;                                                      \
    } while (0)

    WCOOKIE_PUT("%s=%s", name, value);
    if (max_age_s >= 0)
        WCOOKIE_PUT("; Max-Age=%ld", max_age_s);
    if (flags & WCOOKIE_PATH_ROOT)
        WCOOKIE_PUT("; Path=/");
    if (flags & WCOOKIE_SECURE)
        WCOOKIE_PUT("; Secure");
    if (flags & WCOOKIE_HTTPONLY)
        WCOOKIE_PUT("; HttpOnly");
    if (flags & WCOOKIE_SAMESITE_STRICT)
        WCOOKIE_PUT("; SameSite=Strict");
    if (flags & WCOOKIE_SAMESITE_LAX)
        WCOOKIE_PUT("; SameSite=Lax");
#undef WCOOKIE_PUT
    return 0;
}

int wct_eq(const char *a, const char *b)
{
    size_t la, lb;
    volatile unsigned char d = 0;

    if (a == NULL || b == NULL)
        return 0;
    la = strlen(a);
    lb = strlen(b);
    if (la == 0 || la != lb)
        return 0;
    /* No early exit: the time must not tell how many bytes matched. */
    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}
