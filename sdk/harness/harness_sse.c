/*
 * harness_sse.c - a Server-Sent Events reader for GET /api/realtime.
 *
 * weftd answers the stream close-delimited (docs/realtime.md), so after the
 * head the bytes are the event stream itself. Events are parsed as the
 * HTML standard says (fields "event", "data", "id", comments, CR, LF or
 * CRLF line ends) but only as far as a test needs: "retry" is ignored.
 * Everything read but not yet returned stays in the stream's buffer, so a
 * wait that times out loses nothing.
 */
#include <weft/harness.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HS_MAX_BUFFER ((size_t)16 << 20) /* one event, or the head, at most */
#define HS_READ_CHUNK 16384
#define HS_MAX_TOPICS 256 /* distinct topics counted in one open */
#define HS_HEAD_MAX 16384

struct weft_harness_sse {
    int fd;
    char *buf; /* unparsed bytes, NUL-terminated */
    size_t len, cap;
    char client[64];
    char last_id[128];
};

static long long hs_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what is there, waiting until `deadline`. 1 bytes came, 0 timeout,
 * -1 end of stream (ECONNRESET) or error. */
static int hs_fill(weft_harness_sse *s, long long deadline)
{
    struct pollfd pfd;
    long long left;
    ssize_t n;
    char *p;
    int rc;

    if (s->len >= HS_MAX_BUFFER) {
        errno = EMSGSIZE;
        return -1;
    }
    if (s->cap - s->len < HS_READ_CHUNK + 1) {
        p = realloc(s->buf, s->cap + HS_READ_CHUNK + 1);
        if (p == NULL) {
            errno = ENOMEM;
            return -1;
        }
        s->buf = p;
        s->cap += HS_READ_CHUNK + 1;
    }
    for (;;) {
        left = deadline - hs_now_ms();
        pfd.fd = s->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        rc = poll(&pfd, 1, left <= 0 ? 0 : (int)(left > 60000 ? 60000 : left));
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc == -1)
            return -1;
        if (rc == 0) {
            if (left > 60000)
                continue;
            return 0;
        }
        n = recv(s->fd, s->buf + s->len, HS_READ_CHUNK, MSG_DONTWAIT);
        if (n == -1 && (errno == EINTR || errno == EAGAIN ||
                        errno == EWOULDBLOCK))
            continue;
        if (n == -1)
            return -1;
        if (n == 0) {
            errno = ECONNRESET;
            return -1;
        }
        s->len += (size_t)n;
        s->buf[s->len] = '\0';
        return 1;
    }
}

static void hs_take(weft_harness_sse *s, size_t n)
{
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
    s->buf[s->len] = '\0';
}

/* The end of the line starting at `from` (the offset of its terminator),
 * and in *next the offset after the terminator; -1 when the line is not
 * complete yet. A CR at the very end might be followed by LF: wait. */
static long hs_line_end(const weft_harness_sse *s, size_t from, size_t *next)
{
    for (size_t i = from; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            *next = i + 1;
            return (long)i;
        }
        if (s->buf[i] == '\r') {
            if (i + 1 == s->len)
                return -1;
            *next = s->buf[i + 1] == '\n' ? i + 2 : i + 1;
            return (long)i;
        }
    }
    return -1;
}

/* Append `v` (len bytes) to *dst, after a "\n" when `join`. 0 or -1. */
static int hs_append(char **dst, const char *v, size_t len, int join)
{
    size_t old = *dst != NULL ? strlen(*dst) : 0;
    char *p = realloc(*dst, old + len + 2);

    if (p == NULL)
        return -1;
    if (join && *dst != NULL)
        p[old++] = '\n';
    memcpy(p + old, v, len);
    p[old + len] = '\0';
    *dst = p;
    return 0;
}

/* Parse one complete event from the buffer into `ev`. 1 an event, 0 need
 * more bytes, -1 out of memory. Blocks of comments only are dropped. */
static int hs_parse(weft_harness_sse *s, weft_harness_sse_event *ev)
{
    size_t pos = 0, next, flen, vlen;
    const char *line, *colon, *v;
    long end;
    int have_data = 0, any = 0;

    memset(ev, 0, sizeof(*ev));
    for (;;) {
        end = hs_line_end(s, pos, &next);
        if (end < 0) {
            weft_harness_sse_event_free(ev);
            return 0;
        }
        line = s->buf + pos;
        flen = (size_t)end - pos;
        pos = next;
        if (flen == 0) { /* a blank line ends the block */
            if (!any) {
                hs_take(s, pos);
                pos = 0;
                continue;
            }
            break;
        }
        if (line[0] == ':')
            continue; /* a comment, e.g. ": ping" */
        colon = memchr(line, ':', flen);
        v = colon != NULL ? colon + 1 : line + flen;
        vlen = (size_t)(line + flen - v);
        if (colon != NULL && vlen > 0 && *v == ' ') {
            v++;
            vlen--;
        }
        if (colon != NULL)
            flen = (size_t)(colon - line);
        if (flen == 5 && strncmp(line, "event", 5) == 0) {
            free(ev->event);
            ev->event = NULL;
            if (hs_append(&ev->event, v, vlen, 0) != 0)
                goto nomem;
            any = 1;
        } else if (flen == 4 && strncmp(line, "data", 4) == 0) {
            if (hs_append(&ev->data, v, vlen, have_data) != 0)
                goto nomem;
            have_data = any = 1;
        } else if (flen == 2 && strncmp(line, "id", 2) == 0) {
            free(ev->id);
            ev->id = NULL;
            if (hs_append(&ev->id, v, vlen, 0) != 0)
                goto nomem;
            any = 1;
        }
        /* "retry" and unknown fields are ignored, as a browser does */
    }
    hs_take(s, pos);
    if ((ev->event == NULL && hs_append(&ev->event, "message", 7, 0) != 0) ||
        (ev->data == NULL && hs_append(&ev->data, "", 0, 0) != 0))
        goto nomem;
    if (ev->id != NULL)
        snprintf(s->last_id, sizeof(s->last_id), "%s", ev->id);
    return 1;
nomem:
    weft_harness_sse_event_free(ev);
    errno = ENOMEM;
    return -1;
}

/* The next event of any name before `deadline`: 0, 1 timeout, -1. */
static int hs_next_any(weft_harness_sse *s, long long deadline,
                       weft_harness_sse_event *ev)
{
    int rc;

    for (;;) {
        rc = s->buf != NULL ? hs_parse(s, ev) : 0;
        if (rc == 1)
            return 0;
        if (rc < 0)
            return -1;
        rc = hs_fill(s, deadline);
        if (rc == 0)
            return 1;
        if (rc < 0)
            return -1;
    }
}

int weft_harness_sse_next(weft_harness_sse *s, const char *event,
                          int timeout_ms, weft_harness_sse_event *ev)
{
    long long deadline = hs_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    int rc;

    if (ev != NULL)
        memset(ev, 0, sizeof(*ev));
    if (s == NULL || ev == NULL) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        rc = hs_next_any(s, deadline, ev);
        if (rc != 0)
            return rc;
        if (event == NULL || strcmp(ev->event, event) == 0)
            return 0;
        weft_harness_sse_event_free(ev);
    }
}

/* ---- opening ------------------------------------------------------------- */

/* The number of distinct topics in the comma-separated list, as weftd
 * counts them (empty items are not topics); -1 beyond HS_MAX_TOPICS. */
static int hs_count_topics(const char *list)
{
    const char *seen[HS_MAX_TOPICS], *p = list, *e;
    size_t lens[HS_MAX_TOPICS];
    int n = 0, i, dup;

    while (*p != '\0') {
        e = strchr(p, ',');
        if (e == NULL)
            e = p + strlen(p);
        if (e > p) {
            dup = 0;
            for (i = 0; i < n && !dup; i++)
                dup = lens[i] == (size_t)(e - p) &&
                      memcmp(seen[i], p, lens[i]) == 0;
            if (!dup) {
                if (n == HS_MAX_TOPICS)
                    return -1;
                seen[n] = p;
                lens[n++] = (size_t)(e - p);
            }
        }
        p = *e == ',' ? e + 1 : e;
    }
    return n;
}

/* `list` percent-encoded for a query, the commas kept as separators. */
static char *hs_query_topics(const char *list)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(list);
    char *q = malloc(3 * n + 1), *o = q;
    unsigned char c;

    if (q == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        c = (unsigned char)list[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
            c == '~' || c == ',' || c == '*') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return q;
}

/* The head (up to and with its blank line): its length, 0 if incomplete. */
static size_t hs_head_len(const weft_harness_sse *s)
{
    const char *e = s->buf != NULL ? strstr(s->buf, "\r\n\r\n") : NULL;

    return e != NULL ? (size_t)(e - s->buf) + 4 : 0;
}

/* A refusal: the head and what follows up to Content-Length (or the end
 * of the connection: the request said Connection: close). */
static int hs_refusal(weft_harness_sse *s, size_t hlen, long long deadline,
                      weft_hresp *out)
{
    char buf[32];
    unsigned long long want = ULLONG_MAX;
    int rc;

    memset(out, 0, sizeof(*out));
    out->head = strndup(s->buf, hlen - 2);
    if (out->head == NULL)
        return -1;
    if (weft_hresp_header(out, "Content-Length", buf, sizeof(buf)) != NULL)
        want = strtoull(buf, NULL, 10);
    while (s->len - hlen < want) {
        rc = hs_fill(s, deadline);
        if (rc <= 0)
            break; /* the end of the connection, or time is up */
    }
    out->body_len = s->len - hlen < want ? s->len - hlen : (size_t)want;
    out->body = strndup(s->buf + hlen, out->body_len);
    if (out->body == NULL) {
        weft_hresp_free(out);
        return -1;
    }
    out->http_minor = s->buf[7] - '0';
    out->status = atoi(s->buf + 9);
    return 0;
}

/* "client" from the connected event's data. */
static void hs_client(weft_harness_sse *s, const char *data)
{
    const char *p = strstr(data, "\"client\":\""), *e;

    if (p == NULL)
        return;
    p += 10;
    e = strchr(p, '"');
    if (e != NULL && (size_t)(e - p) < sizeof(s->client))
        snprintf(s->client, sizeof(s->client), "%.*s", (int)(e - p), p);
}

int weft_harness_sse_open(weft_harness *h, const char *topics,
                          const char *token, int timeout_ms,
                          weft_harness_sse **out, weft_hresp *refused)
{
    long long deadline = hs_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    weft_harness_sse *s = NULL;
    weft_harness_sse_event ev;
    char *q = NULL, *req = NULL;
    int want, got = 0, rc, status, saved;
    size_t hlen;

    if (out != NULL)
        *out = NULL;
    if (refused != NULL)
        memset(refused, 0, sizeof(*refused));
    if (h == NULL || topics == NULL || out == NULL ||
        (want = hs_count_topics(topics)) < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((token != NULL && strpbrk(token, "\r\n") != NULL)) {
        errno = EINVAL;
        return -1;
    }
    s = calloc(1, sizeof(*s));
    q = hs_query_topics(topics);
    if (s == NULL || q == NULL ||
        asprintf(&req,
                 "GET /api/realtime?topic=%s HTTP/1.1\r\n"
                 "Host: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n"
                 "Connection: close\r\n%s%s%s\r\n",
                 q, weft_harness_port(h),
                 token != NULL ? "Authorization: Bearer " : "",
                 token != NULL ? token : "", token != NULL ? "\r\n" : "") < 0) {
        free(s);
        free(q);
        errno = ENOMEM;
        return -1;
    }
    free(q);
    s->fd = weft_harness_connect(h);
    if (s->fd < 0 || weft_harness_send(s->fd, req, strlen(req)) != 0)
        goto fail;
    free(req);
    req = NULL;
    while ((hlen = hs_head_len(s)) == 0) {
        if (s->len > HS_HEAD_MAX) {
            errno = EPROTO;
            goto fail;
        }
        rc = hs_fill(s, deadline);
        if (rc == 0)
            errno = ETIMEDOUT;
        if (rc <= 0)
            goto fail;
    }
    if (hlen < 13 || strncmp(s->buf, "HTTP/1.", 7) != 0) {
        errno = EPROTO;
        goto fail;
    }
    status = atoi(s->buf + 9);
    if (status != 200) {
        if (refused != NULL && hs_refusal(s, hlen, deadline, refused) != 0)
            goto fail;
        weft_harness_sse_close(s);
        return status > 0 ? status : -1;
    }
    if (strcasestr(s->buf, "text/event-stream") == NULL ||
        strcasestr(s->buf, "Transfer-Encoding") != NULL) {
        errno = EPROTO; /* not the close-delimited stream of realtime.md */
        goto fail;
    }
    hs_take(s, hlen);
    while (got < want) {
        rc = hs_next_any(s, deadline, &ev);
        if (rc == 1)
            errno = ETIMEDOUT;
        if (rc != 0)
            goto fail;
        if (strcmp(ev.event, "connected") == 0)
            hs_client(s, ev.data);
        else if (strcmp(ev.event, "subscribed") == 0)
            got++;
        weft_harness_sse_event_free(&ev);
    }
    *out = s;
    return 0;
fail:
    saved = errno;
    free(req);
    weft_harness_sse_close(s);
    errno = saved;
    return -1;
}

const char *weft_harness_sse_client(const weft_harness_sse *s)
{
    return s != NULL ? s->client : NULL;
}

const char *weft_harness_sse_last_id(const weft_harness_sse *s)
{
    return s != NULL ? s->last_id : NULL;
}

void weft_harness_sse_close(weft_harness_sse *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        weft_harness_close(s->fd);
    free(s->buf);
    free(s);
}

void weft_harness_sse_event_free(weft_harness_sse_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->event);
    free(ev->data);
    free(ev->id);
    memset(ev, 0, sizeof(*ev));
}
