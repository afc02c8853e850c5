/* proxy.h - the client's address behind trusted reverse proxies: IP
 * addresses, CIDR lists ([server] trusted_proxies) and the rightmost
 * untrusted hop of X-Forwarded-For or RFC 7239 Forwarded. Pure. */
#ifndef WEFT_HOST_PROXY_H
#define WEFT_HOST_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "http_parse.h"

/* An IPv4 (fam 4, b[0..3]) or IPv6 (fam 6) address; an IPv4-mapped IPv6
 * address is stored as IPv4, so both spellings are one client. */
struct wproxy_addr {
    int fam;
    uint8_t b[16];
};

struct wproxy_net {
    struct wproxy_addr a;
    int bits;
};

struct wproxy_list {
    struct wproxy_net *v;
    int n;
};

/* Which header the trusted proxies write. */
enum { WPROXY_XFF = 0, WPROXY_FORWARDED = 1 };

/* Hops read from one request at most (the rightmost ones count). */
#define WPROXY_MAX_HOPS 32

/* Parse a bare address (no port, no brackets) of `len` bytes. 0 or -1. */
int wproxy_parse_ip(const char *s, size_t len, struct wproxy_addr *out);

/* The address of a socket peer. 0, or -1 for other families. */
int wproxy_from_sockaddr(const struct sockaddr *sa, struct wproxy_addr *out);

/* "192.0.2.1" or "2001:db8::1" into buf (46 bytes are enough). */
void wproxy_format(const struct wproxy_addr *a, char *buf, size_t size);

/* Parse "10.0.0.0/8, 192.0.2.7 ::1 fd00::/8" (commas or blanks). Returns 0,
 * or -1 with *why set (out of memory: why is "out of memory"). */
int wproxy_list_parse(const char *spec, struct wproxy_list *out,
                      const char **why);
void wproxy_list_free(struct wproxy_list *l);

int wproxy_trusted(const struct wproxy_list *l, const struct wproxy_addr *a);

/*
 * The client of a request that arrived from `peer`. When peer is not in
 * `l`, that is peer itself, whatever the headers say. Otherwise the hops of
 * the `which` header (every line, in order) are walked from the right:
 * the first one not in `l` is the client; when every hop is trusted, the
 * leftmost; when a hop cannot be read (garbage, "unknown", an obfuscated
 * Forwarded node), the trusted hop to its right, since nothing left of it
 * can be believed. Returns 1 when the answer came from a header.
 */
int wproxy_client(const struct wproxy_list *l, int which,
                  const struct wproxy_addr *peer, const struct whttp_head *h,
                  struct wproxy_addr *out);

#endif
