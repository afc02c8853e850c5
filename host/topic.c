/* topic.c - NATS-style subject matching, with no allocation: topics are
 * matched on every publish for every wildcard subscription of a loop. */
#include "topic.h"

#include <string.h>

static int wtopic_tokch(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == ':' ||
           c == '@' || c == '~';
}

int wtopic_valid(const char *s, int wild)
{
    size_t len, i, tok = 0;

    if (s == NULL || (len = strlen(s)) == 0 || len > WTOPIC_MAX)
        return 0;
    for (i = 0; i <= len; i++) {
        if (s[i] != '.' && s[i] != '\0')
            continue;
        /* token is s[tok, i) */
        if (i == tok)
            return 0;
        if (i - tok == 1 && (s[tok] == '*' || s[tok] == '>')) {
            if (!wild || (s[tok] == '>' && s[i] != '\0'))
                return 0;
        } else {
            for (size_t k = tok; k < i; k++)
                if (!wtopic_tokch((unsigned char)s[k]))
                    return 0;
        }
        tok = i + 1;
    }
    return 1;
}

size_t wtopic_hash(const char *s)
{
    size_t h = 14695981039346656037ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Length of the token starting at s. */
static size_t wtopic_toklen(const char *s)
{
    const char *dot = strchr(s, '.');

    return dot != NULL ? (size_t)(dot - s) : strlen(s);
}

int wtopic_match(const char *p, const char *s)
{
    for (;;) {
        size_t pl = wtopic_toklen(p), sl = wtopic_toklen(s);

        if (pl == 1 && p[0] == '>')
            return 1; /* one or more tokens remain in s (s is non-empty) */
        if (!(pl == 1 && p[0] == '*') && (pl != sl || memcmp(p, s, pl) != 0))
            return 0;
        p += pl;
        s += sl;
        if (*p == '\0' || *s == '\0')
            return *p == '\0' && *s == '\0';
        p++;
        s++;
    }
}

int wtopic_covers(const char *o, const char *i)
{
    for (;;) {
        size_t ol = wtopic_toklen(o), il = wtopic_toklen(i);

        if (ol == 1 && o[0] == '>')
            return 1;
        if (il == 1 && i[0] == '>')
            return 0; /* inner matches any depth, outer does not */
        if (ol == 1 && o[0] == '*') {
            /* any single token of inner, '*' included */
        } else if ((il == 1 && i[0] == '*') || ol != il ||
                   memcmp(o, i, ol) != 0) {
            return 0;
        }
        o += ol;
        i += il;
        if (*o == '\0' || *i == '\0')
            return *o == '\0' && *i == '\0';
        o++;
        i++;
    }
}
