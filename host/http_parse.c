/* http_parse.c - strict request-head parsing (RFC 9112), no allocation. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

/* RFC 9110 tchar. */
static int whttp_tchar(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A control character other than HTAB: never allowed in a field value. */
static int whttp_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static char *whttp_trim(char *s, char *e)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = '\0';
    return s;
}

/* Does the comma-separated list `v` contain token `tok`? */
static int whttp_has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);

    while (*v != '\0') {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        if (strncasecmp(v, tok, tl) == 0) {
            const char *e = v + tl;
            while (*e == ' ' || *e == '\t')
                e++;
            if (*e == ',' || *e == '\0')
                return 1;
        }
        while (*v != '\0' && *v != ',')
            v++;
    }
    return 0;
}

static int whttp_request_line(char *line, const struct whttp_limits *lim,
                              struct whttp_head *out, const char **why)
{
    char *sp1, *sp2;

    sp1 = strchr(line, ' ');
    if (sp1 == NULL || sp1 == line) {
        *why = "malformed request line";
        return 400;
    }
    *sp1 = '\0';
    for (char *p = line; *p; p++)
        if (!whttp_tchar((unsigned char)*p) || sp1 - line > 16) {
            *why = "malformed method";
            return 400;
        }
    sp2 = strrchr(sp1 + 1, ' ');
    if (sp2 == NULL || sp2 == sp1 + 1) {
        *why = "malformed request line";
        return 400;
    }
    *sp2 = '\0';
    if ((size_t)(sp2 - (sp1 + 1)) > lim->max_uri) {
        *why = "request target too long";
        return 414;
    }
    for (char *p = sp1 + 1; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            *why = "invalid character in request target";
            return 400;
        }
    if (strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] == '\0' ||
        sp2[9] != '\0' || !isdigit((unsigned char)sp2[8])) {
        if (strncmp(sp2 + 1, "HTTP/", 5) == 0) {
            *why = "only HTTP/1.0 and HTTP/1.1 are supported";
            return 505;
        }
        *why = "malformed HTTP version";
        return 400;
    }
    if (sp2[8] != '0' && sp2[8] != '1') {
        *why = "only HTTP/1.0 and HTTP/1.1 are supported";
        return 505;
    }
    if (sp1[1] != '/' && !(strcmp(sp1 + 1, "*") == 0)) {
        *why = "request target must be an absolute path";
        return 400;
    }
    out->method = line;
    out->target = sp1 + 1;
    out->minor = sp2[8] - '0';
    return 0;
}

static int whttp_content_length(struct whttp_head *out, const char *v,
                                 const struct whttp_limits *lim,
                                 const char **why)
{
    char *end;
    long long n;

    if (!isdigit((unsigned char)v[0])) {
        *why = "invalid Content-Length";
        return 400;
    }
    n = strtoll(v, &end, 10);
    if (*end != '\0' || n < 0 || strlen(v) > 18) {
        *why = "invalid Content-Length";
        return 400;
    }
    if (out->content_length >= 0 && out->content_length != n) {
        *why = "conflicting Content-Length headers";
        return 400;
    }
    out->content_length = n;
    if (n > lim->max_body) {
        *why = "request body larger than the server accepts";
        return 413;
    }
    return 0;
}

/* RFC 9110 7.2: uri-host [ ":" port ]; empty is allowed (RFC 9112 3.2). */
static int whttp_host_valid(const char *v)
{
    const char *p = v;

    if (*p == '[') { /* IP-literal */
        p++;
        while (isxdigit((unsigned char)*p) || *p == ':' || *p == '.')
            p++;
        if (*p++ != ']' || p == v + 2)
            return 0;
    } else {
        while (isalnum((unsigned char)*p) ||
               (*p != '\0' && strchr("-._~%!$&'()*+,;=", *p) != NULL))
            p++;
    }
    if (*p == ':')
        while (isdigit((unsigned char)*++p))
            ;
    return *p == '\0';
}

int whttp_parse_head(char *buf, size_t len, const struct whttp_limits *lim,
                     struct whttp_header *hdrs, struct whttp_head *out,
                     const char **why)
{
    char *p = buf, *end = buf + len, *eol, *colon;
    int rc, first = 1, te_seen = 0;
    const char *conn;

    memset(out, 0, sizeof(*out));
    out->buf = buf;
    out->headers = hdrs;
    out->content_length = -1;

    /* RFC 9112 2.2: ignore at least one empty line before the request. */
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL || eol == p || eol[-1] != '\r') {
            *why = "lines must end with CRLF";
            return 400;
        }
        eol[-1] = '\0';
        if (eol - 1 == p)
            break; /* the blank line */
        if (memchr(p, '\0', (size_t)(eol - 1 - p)) != NULL) {
            *why = "NUL byte in request head";
            return 400;
        }
        if (first) {
            rc = whttp_request_line(p, lim, out, why);
            if (rc != 0)
                return rc;
            first = 0;
            p = eol + 1;
            continue;
        }
        if (*p == ' ' || *p == '\t') {
            *why = "obsolete header line folding";
            return 400;
        }
        colon = strchr(p, ':');
        if (colon == NULL || colon == p) {
            *why = "malformed header line";
            return 400;
        }
        for (char *q = p; q < colon; q++)
            if (!whttp_tchar((unsigned char)*q)) {
                *why = "invalid header name";
                return 400;
            }
        if (out->nheaders >= lim->max_headers) {
            *why = "too many header fields";
            return 431;
        }
        *colon = '\0';
        hdrs[out->nheaders].name = p;
        hdrs[out->nheaders].value = whttp_trim(colon + 1, eol - 1);
        for (const char *q = hdrs[out->nheaders].value; *q; q++)
            if (whttp_ctl((unsigned char)*q)) {
                *why = "control character in header value";
                return 400;
            }
        out->nheaders++;
        p = eol + 1;
    }
    if (first) {
        *why = "empty request";
        return 400;
    }
    for (int i = 0; i < out->nheaders; i++) {
        if (strcasecmp(hdrs[i].name, "Content-Length") == 0) {
            rc = whttp_content_length(out, hdrs[i].value, lim, why);
            if (rc != 0)
                return rc;
        } else if (strcasecmp(hdrs[i].name, "Transfer-Encoding") == 0) {
            if (te_seen || strcasecmp(hdrs[i].value, "chunked") != 0) {
                *why = "only Transfer-Encoding: chunked is supported";
                return 501;
            }
            te_seen = 1;
        }
    }
    if (te_seen) {
        if (out->content_length >= 0) {
            /* Both framings at once is how requests get smuggled. */
            *why = "both Content-Length and Transfer-Encoding";
            return 400;
        }
        if (out->minor == 0) {
            *why = "chunked encoding in an HTTP/1.0 request";
            return 400;
        }
        out->chunked = 1;
    }
    conn = whttp_header(out, "Connection");
    if (out->minor == 1)
        out->keepalive = !(conn != NULL && whttp_has_token(conn, "close"));
    else
        out->keepalive = conn != NULL && whttp_has_token(conn, "keep-alive");
    if (out->minor == 1) {
        const char *ex = whttp_header(out, "Expect");
        out->expect_continue = ex != NULL && strcasecmp(ex, "100-continue") == 0;
        if (whttp_header(out, "Host") == NULL) {
            *why = "HTTP/1.1 request without Host";
            return 400;
        }
    }
    /* RFC 9112 3.2: two Host lines could name two different origins to us
     * and to a proxy in front; any version. */
    for (int i = 0, hosts = 0; i < out->nheaders; i++)
        if (strcasecmp(hdrs[i].name, "Host") == 0) {
            if (++hosts > 1) {
                *why = "more than one Host header";
                return 400;
            }
            if (!whttp_host_valid(hdrs[i].value)) {
                *why = "invalid Host header";
                return 400;
            }
        }
    return 0;
}

const char *whttp_header(const struct whttp_head *h, const char *name)
{
    for (int i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

static int whttp_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long whttp_decode(const char *in, size_t len, char *out, int plus, int path)
{
    size_t i, o = 0;
    int hi, lo, c;

    for (i = 0; i < len; i++) {
        c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            hi = whttp_hex((unsigned char)in[i + 1]);
            lo = whttp_hex((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            if (c == 0 || (path && c == '/'))
                return -1;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        } else if (c == 0) {
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

int whttp_query_get(const char *query, const char *name, char *out,
                    size_t size)
{
    size_t nl = strlen(name);
    const char *p = query, *amp, *eq;
    size_t kl, vl;
    char key[256];

    while (p != NULL && *p != '\0') {
        amp = strchr(p, '&');
        eq = memchr(p, '=', amp ? (size_t)(amp - p) : strlen(p));
        kl = eq ? (size_t)(eq - p) : (amp ? (size_t)(amp - p) : strlen(p));
        if (kl < sizeof(key) && whttp_decode(p, kl, key, 1, 0) == (long)nl &&
            memcmp(key, name, nl) == 0) {
            if (eq == NULL) {
                if (size == 0)
                    return -1;
                out[0] = '\0';
                return 0;
            }
            vl = amp ? (size_t)(amp - eq - 1) : strlen(eq + 1);
            if (vl + 1 > size)
                return -1;
            return whttp_decode(eq + 1, vl, out, 1, 0) < 0 ? -1 : 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 1;
}

static const char *whttp_ows(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static const char *whttp_token_end(const char *p, const char *e)
{
    while (p < e && whttp_tchar((unsigned char)*p))
        p++;
    return p;
}

/* RFC 9110 5.6.4 quoted-string starting at the DQUOTE at p; returns the
 * byte after the closing DQUOTE, or NULL. */
static const char *whttp_quoted_end(const char *p, const char *e)
{
    unsigned char c;

    for (p++; p < e; p++) {
        c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c == '\\') {
            if (++p == e)
                return NULL;
            c = (unsigned char)*p;
            if (whttp_ctl(c))
                return NULL;
            continue;
        }
        if (whttp_ctl(c))
            return NULL;
    }
    return NULL;
}

int whttp_chunk_size(const char *line, size_t len, int64_t *size)
{
    const char *p = line, *e = line + len, *q;
    int64_t n = 0;
    int d;

    /* strtoll would take "0x2", "+2", " 2" and "-0": a proxy in front
     * that reads the size strictly would then frame the body differently
     * and the bytes after it would become a request of their own. */
    while (p < e && (d = whttp_hex((unsigned char)*p)) >= 0) {
        if (p - line >= WHTTP_CHUNK_DIGITS)
            return -1;
        n = n * 16 + d;
        p++;
    }
    if (p == line)
        return -1;
    if (e - p > WHTTP_CHUNK_EXT)
        return -1;
    /* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ) */
    while (p < e) {
        p = whttp_ows(p, e);
        if (p == e || *p != ';')
            return -1;
        p = whttp_ows(p + 1, e);
        q = whttp_token_end(p, e);
        if (q == p)
            return -1;
        p = whttp_ows(q, e);
        if (p == e || *p != '=') {
            p = q; /* BWS belongs only before ";" or "=" */
            continue;
        }
        p = whttp_ows(p + 1, e);
        if (p < e && *p == '"')
            q = whttp_quoted_end(p, e);
        else
            q = (q = whttp_token_end(p, e)) == p ? NULL : q;
        if (q == NULL)
            return -1;
        p = q;
    }
    *size = n;
    return 0;
}

int whttp_trailer_line(const char *line, size_t len)
{
    const char *e = line + len, *q = whttp_token_end(line, e);

    if (q == line || q == e || *q != ':')
        return -1;
    for (q++; q < e; q++)
        if (whttp_ctl((unsigned char)*q))
            return -1;
    return 0;
}

/* Every code registered with IANA: the host sends 101 and 200-599, and a
 * plugin may choose any code from 200 to 599. An unregistered one gets an
 * empty phrase, which RFC 9112 section 4 allows; clients read the code. */
const char *whttp_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}
