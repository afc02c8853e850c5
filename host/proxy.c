/* proxy.c - trusted proxies and the client address they forward.
 *
 * Only the hops a trusted proxy appended can be believed: a client may send
 * any X-Forwarded-For it likes, and a proxy appends to it. So the list is
 * read from the right, skipping our own proxies, and the first address not
 * ours is the client. Which header the proxies write is configured, never
 * guessed from what is present: a client could add the other one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy.h"

struct wproxy_hops {
    struct wproxy_addr a[WPROXY_MAX_HOPS];
    unsigned char ok[WPROXY_MAX_HOPS];
    int n;     /* hops kept (the rightmost WPROXY_MAX_HOPS) */
    int first; /* ring start */
};

int wproxy_parse_ip(const char *s, size_t len, struct wproxy_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, buf, out->b) == 1) {
        out->fam = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        out->fam = 4;
        memcpy(out->b, a6.s6_addr + 12, 4);
        return 0;
    }
    out->fam = 6;
    memcpy(out->b, a6.s6_addr, 16);
    return 0;
}

int wproxy_from_sockaddr(const struct sockaddr *sa, struct wproxy_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        out->fam = 4;
        memcpy(out->b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
               4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 =
            &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            out->fam = 4;
            memcpy(out->b, a6->s6_addr + 12, 4);
        } else {
            out->fam = 6;
            memcpy(out->b, a6->s6_addr, 16);
        }
        return 0;
    }
    return -1;
}

void wproxy_format(const struct wproxy_addr *a, char *buf, size_t size)
{
    if (size == 0)
        return;
    if (inet_ntop(a->fam == 4 ? AF_INET : AF_INET6, a->b, buf,
                  (socklen_t)size) == NULL)
        snprintf(buf, size, "?");
}

static int wproxy_in(const struct wproxy_net *n, const struct wproxy_addr *a)
{
    int full = n->bits / 8, rest = n->bits % 8;

    if (n->a.fam != a->fam)
        return 0;
    if (memcmp(n->a.b, a->b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (n->a.b[full] & mask) == (a->b[full] & mask);
}

int wproxy_trusted(const struct wproxy_list *l, const struct wproxy_addr *a)
{
    for (int i = 0; i < l->n; i++)
        if (wproxy_in(&l->v[i], a))
            return 1;
    return 0;
}

/* One "addr" or "addr/bits" of `len` bytes. */
static int wproxy_net_parse(const char *s, size_t len, struct wproxy_net *out,
                            const char **why)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    int max;

    if (wproxy_parse_ip(s, alen, &out->a) != 0) {
        *why = "not an IP address or CIDR block";
        return -1;
    }
    max = out->a.fam == 4 ? 32 : 128;
    out->bits = max;
    if (slash != NULL) {
        size_t dl = len - alen - 1;
        int bits = 0;
        if (dl == 0 || dl > 3) {
            *why = "bad prefix length";
            return -1;
        }
        for (size_t i = 0; i < dl; i++) {
            if (slash[1 + i] < '0' || slash[1 + i] > '9') {
                *why = "bad prefix length";
                return -1;
            }
            bits = bits * 10 + (slash[1 + i] - '0');
        }
        /* An IPv4-mapped block ("::ffff:10.0.0.0/104") is its IPv4 part. */
        if (out->a.fam == 4 && memchr(s, ':', alen) != NULL)
            bits -= 96;
        if (bits < 0 || bits > max) {
            *why = "prefix length out of range";
            return -1;
        }
        out->bits = bits;
    }
    /* Host bits set ("10.0.0.1/8") are a typo more often than not. */
    for (int i = out->bits; i < max; i++)
        if (out->a.b[i / 8] & (0x80 >> (i % 8))) {
            *why = "host bits set after the prefix";
            return -1;
        }
    return 0;
}

int wproxy_list_parse(const char *spec, struct wproxy_list *out,
                      const char **why)
{
    const char *p = spec;
    int cap = 0;

    out->v = NULL;
    out->n = 0;
    for (;;) {
        size_t len;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            return 0;
        len = strcspn(p, " \t,");
        if (out->n == cap) {
            int ncap = cap ? cap * 2 : 4;
            struct wproxy_net *v = realloc(out->v, (size_t)ncap * sizeof(*v));
            if (v == NULL) {
                *why = "out of memory";
                wproxy_list_free(out);
                return -1;
            }
            out->v = v;
            cap = ncap;
        }
        if (wproxy_net_parse(p, len, &out->v[out->n], why) != 0) {
            wproxy_list_free(out);
            return -1;
        }
        out->n++;
        p += len;
    }
}

void wproxy_list_free(struct wproxy_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void wproxy_hop(struct wproxy_hops *h, int ok,
                       const struct wproxy_addr *a)
{
    int at;

    if (h->n < WPROXY_MAX_HOPS) {
        at = (h->first + h->n) % WPROXY_MAX_HOPS;
        h->n++;
    } else {
        at = h->first;
        h->first = (h->first + 1) % WPROXY_MAX_HOPS;
    }
    h->ok[at] = (unsigned char)ok;
    if (ok)
        h->a[at] = *a;
}

/* A node: "192.0.2.1", "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]" or
 * "[2001:db8::1]:80". */
static int wproxy_node(const char *s, size_t len, struct wproxy_addr *out)
{
    const char *colon;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        size_t rest;
        if (close == NULL)
            return -1;
        rest = len - (size_t)(close - s) - 1;
        if (rest > 0 && close[1] != ':')
            return -1;
        if (wproxy_parse_ip(s + 1, (size_t)(close - s - 1), out) != 0)
            return -1;
        return out->fam == 6 ? 0 : -1;
    }
    colon = memchr(s, ':', len);
    if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1)
                             == NULL) {
        /* One colon: IPv4 with a port. */
        if (wproxy_parse_ip(s, (size_t)(colon - s), out) != 0)
            return -1;
        return out->fam == 4 ? 0 : -1;
    }
    return wproxy_parse_ip(s, len, out);
}

static void wproxy_xff(struct wproxy_hops *h, const char *v)
{
    for (;;) {
        size_t len = strcspn(v, ",");
        const char *s = v, *e = v + len;
        struct wproxy_addr a;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        /* Empty list members are allowed by the list syntax (RFC 9110 5.6.1). */
        if (e > s)
            wproxy_hop(h, wproxy_node(s, (size_t)(e - s), &a) == 0, &a);
        if (v[len] == '\0')
            return;
        v += len + 1;
    }
}

/* RFC 7239: elements by ',', pairs by ';', values tokens or quoted strings
 * (so a ',' inside quotes does not end an element). */
static void wproxy_forwarded(struct wproxy_hops *h, const char *v)
{
    const char *p = v;

    while (*p != '\0') {
        char val[80];
        size_t vl = 0;
        int have_for = 0, bad = 0, any = 0, more;
        struct wproxy_addr a;

        do {
            const char *name;
            size_t nl;
            char pv[80];
            size_t pl = 0;

            while (*p == ' ' || *p == '\t')
                p++;
            name = p;
            while (*p != '\0' && *p != '=' && *p != ';' && *p != ',')
                p++;
            nl = (size_t)(p - name);
            while (nl > 0 && (name[nl - 1] == ' ' || name[nl - 1] == '\t'))
                nl--;
            if (nl > 0)
                any = 1;
            if (*p == '=') {
                p++;
                if (*p == '"') {
                    for (p++; *p != '\0' && *p != '"'; p++) {
                        if (*p == '\\' && p[1] != '\0')
                            p++;
                        if (pl < sizeof(pv) - 1)
                            pv[pl++] = *p;
                        else
                            bad = 1;
                    }
                    if (*p != '"')
                        bad = 1;
                    else
                        p++;
                } else {
                    for (; *p != '\0' && *p != ';' && *p != ',' && *p != ' ' &&
                           *p != '\t';
                         p++) {
                        if (pl < sizeof(pv) - 1)
                            pv[pl++] = *p;
                        else
                            bad = 1;
                    }
                }
                while (*p == ' ' || *p == '\t')
                    p++;
            } else if (nl > 0) {
                bad = 1; /* a pair without a value */
            }
            if (nl == 3 && strncasecmp(name, "for", 3) == 0) {
                if (have_for)
                    bad = 1; /* two for= in one element: which one? */
                have_for = 1;
                memcpy(val, pv, pl);
                vl = pl;
            }
            more = *p == ';';
            if (more)
                p++;
            else if (*p != ',' && *p != '\0') {
                bad = 1;
                while (*p != '\0' && *p != ',' && *p != ';')
                    p++;
                more = *p == ';';
                if (more)
                    p++;
            }
        } while (more);
        if (*p == ',')
            p++;
        /* An element without for= is still a hop, one we cannot read: a
         * proxy that appended it hides everything to its left. An empty
         * list member (",,") is no hop at all. */
        if (have_for || bad || any)
            wproxy_hop(h, have_for && !bad && wproxy_node(val, vl, &a) == 0,
                       &a);
    }
}

int wproxy_client(const struct wproxy_list *l, int which,
                  const struct wproxy_addr *peer, const struct whttp_head *h,
                  struct wproxy_addr *out)
{
    const char *name = which == WPROXY_FORWARDED ? "forwarded"
                                                 : "x-forwarded-for";
    struct wproxy_hops hops;
    struct wproxy_addr cur = *peer;
    int from_header = 0;

    *out = *peer;
    if (l->n == 0 || !wproxy_trusted(l, peer))
        return 0;
    memset(&hops, 0, sizeof(hops));
    for (int i = 0; i < h->nheaders; i++) {
        if (strcasecmp(h->headers[i].name, name) != 0)
            continue;
        if (which == WPROXY_FORWARDED)
            wproxy_forwarded(&hops, h->headers[i].value);
        else
            wproxy_xff(&hops, h->headers[i].value);
    }
    for (int k = hops.n - 1; k >= 0; k--) {
        int at = (hops.first + k) % WPROXY_MAX_HOPS;
        if (!hops.ok[at])
            break;
        cur = hops.a[at];
        from_header = 1;
        if (!wproxy_trusted(l, &cur))
            break;
    }
    *out = cur;
    return from_header;
}
