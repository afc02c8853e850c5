/* http_parse.h - HTTP/1.x request heads, parsed only once complete.
 *
 * The connection layer hands over a head only after it found the blank line
 * that ends it, so a request line split across TCP reads, or a long URI,
 * is never parsed in pieces (libevhtp 1.2.18's defect). */
#ifndef WEFT_HOST_HTTP_PARSE_H
#define WEFT_HOST_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

struct whttp_header {
    const char *name, *value; /* NUL-terminated, inside the head copy */
};

struct whttp_limits {
    size_t max_uri;
    int max_headers;
    int64_t max_body;
};

struct whttp_head {
    char *buf; /* the head, modified in place (NULs written) */
    const char *method;
    const char *target; /* raw request target */
    int minor;          /* 0 or 1 */
    struct whttp_header *headers;
    int nheaders;
    int64_t content_length; /* -1 when absent */
    int chunked;
    int keepalive;
    int expect_continue;
};

/*
 * Parse `len` bytes at `buf` (the head, ending with CRLF CRLF, writable).
 * `hdrs` has room for lim->max_headers entries. Returns 0, or the HTTP
 * status to answer (400, 413, 414, 431, 501, 505) with *why set.
 */
int whttp_parse_head(char *buf, size_t len, const struct whttp_limits *lim,
                     struct whttp_header *hdrs, struct whttp_head *out,
                     const char **why);

/* Case-insensitive header lookup; NULL when absent. */
const char *whttp_header(const struct whttp_head *h, const char *name);

/* Percent-decode `in` (len bytes) into `out` (room for len + 1). With
 * `plus`, '+' becomes a space (query strings). Refuses invalid escapes and
 * NUL; with `path`, also an encoded '/'. Returns decoded length or -1. */
long whttp_decode(const char *in, size_t len, char *out, int plus, int path);

/* The value of query parameter `name` in `query` (without '?'), decoded
 * into `out` (size bytes). Returns 0, 1 when absent, -1 when bad. */
int whttp_query_get(const char *query, const char *name, char *out,
                    size_t size);

/* Bounds of a chunk-size line: hex digits of the size (15 keep it below
 * 2^60, far over any max_body) and bytes of its extensions. */
#define WHTTP_CHUNK_DIGITS 15
#define WHTTP_CHUNK_EXT 100

/*
 * Parse one chunk-size line, `len` bytes without its CRLF (RFC 9112 7.1):
 * 1*HEXDIG, then only chunk extensions ( BWS ";" BWS token [ BWS "=" BWS
 * ( token / quoted-string ) ] ), which are ignored. Returns 0 with *size
 * set, or -1 for anything else (a sign, "0x", spaces around the size).
 */
int whttp_chunk_size(const char *line, size_t len, int64_t *size);

/* Is this (len bytes, without CRLF) a field line, as a trailer must be:
 * token ":" then no control character? 0 yes, -1 no. */
int whttp_trailer_line(const char *line, size_t len);

/* Reason phrase for a status code ("" for an unregistered one). */
const char *whttp_reason(int status);

#endif
