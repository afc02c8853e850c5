/*
 * test_http.c - HTTP behaviour of weftd against a real process: request
 * parsing (split and pipelined requests, long URIs), limits (413, 414, 431),
 * HTTP/1.0 streaming, loop balance, error bodies, request ids, health,
 * metrics and the access log.
 *
 * Several of these guard against known libevhtp 1.2.18 defects (see
 * LIBRARY-NOTES.md): split request lines, 4-8 KB URIs, pipelining stalls,
 * huge form bodies, chunked answers to HTTP/1.0 clients, thread imbalance.
 */
#include "it_common.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PING_11 "GET /api/hello/ping HTTP/1.1\r\nHost: x\r\n\r\n"

/* Assert the peer closes fd within ms (EOF or reset), sending nothing. */
static void expect_closed(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c[256];
    ssize_t n;
    int rc;

    do {
        rc = poll(&p, 1, ms);
    } while (rc == -1 && errno == EINTR);
    ck_assert_msg(rc == 1, "the server kept the connection open for %d ms",
                  ms);
    n = recv(fd, c, sizeof(c), MSG_DONTWAIT);
    ck_assert_msg(n == 0 || (n == -1 && errno == ECONNRESET),
                  "expected the connection to be closed, got %zd bytes: "
                  "%.*s",
                  n, n > 0 ? (int)n : 0, c);
}

/* Read one response on fd; asserts one arrived. */
static void read_resp(int fd, weft_hresp *r, const char *what)
{
    int rc = weft_hresp_read(fd, r, IT_READ_MS);

    ck_assert_msg(rc == 0, "%s: no complete response (%s)", what,
                  strerror(errno));
}

static void assert_ping_body(const weft_hresp *r, const char *what)
{
    json_t *j;

    ck_assert_msg(r->status == 200, "%s: expected 200, got %d: %.300s", what,
                  r->status, r->body);
    j = it_json(r);
    ck_assert_msg(it_jstr(j, "plugin") != NULL &&
                      strcmp(it_jstr(j, "plugin"), "hello") == 0,
                  "%s: not the ping answer: %.300s", what, r->body);
    json_decref(j);
}

static long long ping_requests(const weft_hresp *r)
{
    json_t *j = it_json(r);
    json_t *n = json_object_get(j, "requests");
    long long v;

    ck_assert_msg(json_is_integer(n), "ping without requests: %s", r->body);
    v = (long long)json_integer_value(n);
    json_decref(j);
    return v;
}

/* a. A request line split across two TCP writes; a head in ten pieces. */
START_TEST(test_split_request)
{
    static const char ten[] =
        "GET /api/hello/ping?split=ten HTTP/1.1\r\nHost: x\r\n"
        "X-Request-Id: split-ten-pieces\r\nAccept: */*\r\n"
        "User-Agent: weft-it\r\nConnection: close\r\n\r\n";
    weft_harness *h = it_start_hello(NULL, 2);
    size_t len = sizeof(ten) - 1, piece = (len + 9) / 10, off;
    char rid[128];
    weft_hresp r;
    int fd;

    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, "GET /api/hel", 12), 0);
    it_sleep_ms(100);
    ck_assert_int_eq(
        weft_harness_send(fd, "lo/ping HTTP/1.1\r\nHost: x\r\n\r\n", 30), 0);
    read_resp(fd, &r, "request line split in two writes");
    assert_ping_body(&r, "\"GET /api/hel\" + 100 ms + \"lo/ping HTTP/1.1...\"");
    weft_hresp_free(&r);
    weft_harness_close(fd);

    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    for (off = 0; off < len; off += piece) {
        ck_assert_int_eq(
            weft_harness_send(fd, ten + off, off + piece > len ? len - off
                                                                : piece),
            0);
        it_sleep_ms(30);
    }
    read_resp(fd, &r, "head split in ten writes");
    assert_ping_body(&r, "head split in ten writes");
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      strcmp(rid, "split-ten-pieces") == 0,
                  "headers of a head split in ten were lost: %s", r.head);
    weft_hresp_free(&r);
    weft_harness_close(fd);
    it_stop_ok(h);
}
END_TEST

/* b. Sixteen requests pipelined in one write: sixteen answers, in order. */
START_TEST(test_pipelining)
{
    weft_harness *h = it_start_hello(NULL, 2);
    char *all = NULL, *next, rid[64], want[64];
    long long prev = -1, n;
    weft_hresp r;
    int fd, i;

    all = it_strf("%s", "");
    for (i = 0; i < 16; i++) {
        next = it_strf("%sGET /api/hello/ping HTTP/1.1\r\nHost: x\r\n"
                       "X-Request-Id: pipe-%02d\r\n\r\n",
                       all, i);
        free(all);
        all = next;
    }
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, all, strlen(all)), 0);
    for (i = 0; i < 16; i++) {
        ck_assert_msg(weft_hresp_read(fd, &r, 5000) == 0,
                      "16 requests pipelined in one write: only %d answers "
                      "arrived (%s)",
                      i, strerror(errno));
        assert_ping_body(&r, "pipelined request");
        snprintf(want, sizeof(want), "pipe-%02d", i);
        ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid,
                                        sizeof(rid)) != NULL &&
                          strcmp(rid, want) == 0,
                      "pipelined answer %d out of order: X-Request-Id %s",
                      i, weft_hresp_header(&r, "X-Request-Id", rid,
                                           sizeof(rid))
                             ? rid
                             : "(none)");
        n = ping_requests(&r);
        ck_assert_msg(n > prev, "requests counter did not increase: %lld "
                                "after %lld",
                      n, prev);
        prev = n;
        weft_hresp_free(&r);
    }
    weft_harness_close(fd);
    free(all);

    /* The same when some answers come later from the worker pool: the
     * requests behind a deferred one must not stall. */
    all = it_strf("%s", "");
    for (i = 0; i < 8; i++) {
        next = it_strf("%sGET /api/hello/%s HTTP/1.1\r\nHost: x\r\n"
                       "X-Request-Id: mixed-%02d\r\n\r\n",
                       all, i % 2 == 0 ? "slow?ms=20" : "ping", i);
        free(all);
        all = next;
    }
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, all, strlen(all)), 0);
    for (i = 0; i < 8; i++) {
        ck_assert_msg(weft_hresp_read(fd, &r, 5000) == 0,
                      "8 pipelined requests, every other one deferred "
                      "(/slow?ms=20): only %d answers arrived (%s)",
                      i, strerror(errno));
        ck_assert_msg(r.status == 200, "pipelined answer %d: %d %.200s", i,
                      r.status, r.body);
        snprintf(want, sizeof(want), "mixed-%02d", i);
        ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid,
                                        sizeof(rid)) != NULL &&
                          strcmp(rid, want) == 0,
                      "pipelined answer %d out of order", i);
        ck_assert_msg(strstr(r.body, i % 2 == 0 ? "\"slept_ms\"" : "\"requests\"")
                          != NULL,
                      "pipelined answer %d has the wrong body: %.200s", i,
                      r.body);
        weft_hresp_free(&r);
    }
    weft_harness_close(fd);
    free(all);
    it_stop_ok(h);
}
END_TEST

/* c. A 12 MB form-encoded body: 413 (no crash), then service as usual. */
START_TEST(test_huge_form_body)
{
    weft_harness *h = it_start_hello(NULL, 2);
    size_t len = (size_t)12 << 20, i;
    char *body = malloc(len), *head;
    weft_hresp r;
    int fd;

    ck_assert_ptr_nonnull(body);
    for (i = 0; i < len; i++)
        body[i] = "a=b&"[i % 4];
    it_req(h, "POST", "/api/hello/echo",
           "Content-Type: application/x-www-form-urlencoded\r\n", body, len,
           &r);
    it_assert_error(&r, 413, "payload_too_large");
    weft_hresp_free(&r);
    free(body);
    ck_assert_msg(kill(weft_harness_pid(h), 0) == 0,
                  "weftd died after a 12 MB form body");
    it_get_status(h, "/api/hello/ping", 200);

    /* Decided from Content-Length alone, and the connection is closed. */
    head = it_strf("POST /api/hello/echo HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   len);
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, head, strlen(head)), 0);
    ck_assert_msg(weft_hresp_read(fd, &r, 5000) == 0,
                  "no 413 before the body was sent (%s)", strerror(errno));
    it_assert_error(&r, 413, "payload_too_large");
    weft_hresp_free(&r);
    expect_closed(fd, 3000);
    weft_harness_close(fd);
    free(head);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

static char *padded_path(size_t total)
{
    static const char base[] = "/api/hello/ping?pad=";
    size_t blen = sizeof(base) - 1;
    char *p;

    ck_assert(total > blen);
    p = malloc(total + 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, base, blen);
    memset(p + blen, 'x', total - blen);
    p[total] = '\0';
    return p;
}

/* d. Long URIs: 5 KB and just under 8 KB work, 9 KB gets 414. */
START_TEST(test_long_uri)
{
    weft_harness *h = it_start_hello(NULL, 2);
    char *p5 = padded_path(5000), *p8 = padded_path(8000),
         *p9 = padded_path(9216);
    weft_hresp r;

    it_get(h, p5, &r);
    assert_ping_body(&r, "GET of a 5000-byte target");
    weft_hresp_free(&r);
    it_get(h, p8, &r);
    assert_ping_body(&r, "GET of an 8000-byte target");
    weft_hresp_free(&r);
    it_get(h, p9, &r);
    it_assert_error(&r, 414, "uri_too_long");
    weft_hresp_free(&r);
    it_get_status(h, "/api/hello/ping", 200);
    free(p5);
    free(p8);
    free(p9);
    it_stop_ok(h);
}
END_TEST

/* e. A streamed answer: close-delimited for HTTP/1.0, chunked for 1.1. */
START_TEST(test_stream_http10)
{
    static const char req10[] =
        "GET /api/hello/stream?n=3 HTTP/1.0\r\nHost: x\r\n\r\n";
    static const char req11[] =
        "GET /api/hello/stream?n=3 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char want[] = "line 0\nline 1\nline 2\n";
    weft_harness *h = it_start_hello(NULL, 2);
    char te[128];
    weft_hresp r;
    int fd;

    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, req10, sizeof(req10) - 1), 0);
    read_resp(fd, &r, "HTTP/1.0 stream");
    ck_assert_msg(r.status == 200, "HTTP/1.0 stream: status %d", r.status);
    ck_assert_msg(weft_hresp_header(&r, "Transfer-Encoding", te,
                                    sizeof(te)) == NULL,
                  "HTTP/1.0 client got Transfer-Encoding: %s", te);
    ck_assert_int_eq(r.chunked, 0);
    ck_assert_msg(r.body_len == sizeof(want) - 1 &&
                      memcmp(r.body, want, r.body_len) == 0,
                  "HTTP/1.0 stream body: %zu bytes \"%.200s\"", r.body_len,
                  r.body);
    weft_hresp_free(&r);
    expect_closed(fd, 3000);
    weft_harness_close(fd);

    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, req11, sizeof(req11) - 1), 0);
    read_resp(fd, &r, "HTTP/1.1 stream");
    ck_assert_msg(r.status == 200, "HTTP/1.1 stream: status %d", r.status);
    ck_assert_msg(r.chunked == 1 &&
                      it_header_has(&r, "Transfer-Encoding", "chunked"),
                  "HTTP/1.1 stream not chunked:\n%s", r.head);
    ck_assert_msg(r.body_len == sizeof(want) - 1 &&
                      memcmp(r.body, want, r.body_len) == 0,
                  "HTTP/1.1 stream body: %zu bytes \"%.200s\"", r.body_len,
                  r.body);
    weft_hresp_free(&r);
    /* The connection stays usable after a chunked answer. */
    ck_assert_int_eq(weft_harness_send(fd, PING_11, sizeof(PING_11) - 1), 0);
    read_resp(fd, &r, "ping after a chunked stream on the same connection");
    assert_ping_body(&r, "ping after a chunked stream");
    weft_hresp_free(&r);
    weft_harness_close(fd);
    it_stop_ok(h);
}
END_TEST

/* f. Long-lived connections spread over the event loops. */
START_TEST(test_loop_balance)
{
    weft_harness *h = it_start_hello(NULL, 4);
    int fds[32], i, loops = 0, busy = 0;
    double open_sum = 0, acc_sum = 0, v;
    char label[32];
    const char *labels[2] = {label, NULL};
    weft_hresp r;

    for (i = 0; i < 32; i++) {
        fds[i] = weft_harness_connect(h);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(weft_harness_send(fds[i], PING_11,
                                           sizeof(PING_11) - 1),
                         0);
        read_resp(fds[i], &r, "keep-alive ping");
        assert_ping_body(&r, "keep-alive ping");
        ck_assert_msg(!it_header_has(&r, "Connection", "close"),
                      "a keep-alive request was answered with "
                      "Connection: close");
        weft_hresp_free(&r);
    }
    it_get(h, "/metrics", &r);
    ck_assert_int_eq(r.status, 200);
    for (i = 0; i < 64; i++) {
        snprintf(label, sizeof(label), "loop=\"%d\"", i);
        if (!it_metric(r.body, "weft_http_connections_open", labels, &v))
            continue;
        loops++;
        open_sum += v;
        if (v > 0)
            busy++;
        if (it_metric(r.body, "weft_http_connections_accepted_total", labels,
                      &v))
            acc_sum += v;
    }
    ck_assert_msg(loops == 4, "threads = 4 but %d loops in "
                              "weft_http_connections_open:\n%.2000s",
                  loops, r.body);
    ck_assert_msg(open_sum >= 32, "32 open connections, the gauges sum to "
                                  "%g:\n%.2000s",
                  open_sum, r.body);
    ck_assert_msg(acc_sum >= 33, "33 accepted connections, the counters sum "
                                 "to %g",
                  acc_sum);
    ck_assert_msg(busy >= 2, "32 long-lived connections all sit on %d "
                             "loop(s):\n%.2000s",
                  busy, r.body);
    weft_hresp_free(&r);
    for (i = 0; i < 32; i++)
        weft_harness_close(fds[i]);
    it_stop_ok(h);
}
END_TEST

/* g. Limits answer 413/414/431 and the next request works. */
START_TEST(test_limits)
{
    weft_harness *h = it_start_hello(NULL, 2);
    size_t blen = (size_t)2 << 20, i;
    char *body = malloc(blen + 1), *hdr, *p9, *many, *next;
    json_t *j;
    weft_hresp r;

    ck_assert_ptr_nonnull(body);
    /* Control: a small JSON body is echoed. */
    it_req(h, "POST", "/api/hello/echo", "Content-Type: application/json\r\n",
           "{\"a\":1}", 7, &r);
    ck_assert_msg(r.status == 200, "echo: %d %s", r.status, r.body);
    j = it_json(&r);
    ck_assert(json_integer_value(json_object_get(
                  json_object_get(j, "echo"), "a")) == 1);
    json_decref(j);
    weft_hresp_free(&r);

    /* 413: 2 MB with max_body = 1m. */
    memset(body, 'x', blen);
    memcpy(body, "{\"a\":\"", 6);
    memcpy(body + blen - 2, "\"}", 2);
    body[blen] = '\0';
    it_req(h, "POST", "/api/hello/echo", "Content-Type: application/json\r\n",
           body, blen, &r);
    it_assert_error(&r, 413, "payload_too_large");
    weft_hresp_free(&r);
    free(body);
    it_get_status(h, "/api/hello/ping", 200);

    /* 414. */
    p9 = padded_path(9000);
    it_get(h, p9, &r);
    it_assert_error(&r, 414, "uri_too_long");
    weft_hresp_free(&r);
    free(p9);
    it_get_status(h, "/api/hello/ping", 200);

    /* 431: one 20 KB header (max_header = 16k); a 10 KB one is fine. */
    hdr = malloc(20000 + 16);
    ck_assert_ptr_nonnull(hdr);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'a', 10000);
    memcpy(hdr + 7 + 10000, "\r\n", 3);
    it_req(h, "GET", "/api/hello/ping", hdr, NULL, 0, &r);
    ck_assert_msg(r.status == 200, "a 10 KB header: expected 200, got %d %s",
                  r.status, r.body);
    weft_hresp_free(&r);
    memset(hdr + 7, 'a', 20000);
    memcpy(hdr + 7 + 20000, "\r\n", 3);
    it_req(h, "GET", "/api/hello/ping", hdr, NULL, 0, &r);
    it_assert_error(&r, 431, "header_too_large");
    weft_hresp_free(&r);
    free(hdr);
    it_get_status(h, "/api/hello/ping", 200);

    /* 431: 150 small header fields (max_headers = 100); 90 are fine. */
    many = it_strf("%s", "");
    for (i = 0; i < 150; i++) {
        next = it_strf("%sX-H-%zu: v%zu\r\n", many, i, i);
        free(many);
        many = next;
        if (i == 89) {
            it_req(h, "GET", "/api/hello/ping", many, NULL, 0, &r);
            ck_assert_msg(r.status == 200,
                          "92 header fields: expected 200, got %d %s",
                          r.status, r.body);
            weft_hresp_free(&r);
        }
    }
    it_req(h, "GET", "/api/hello/ping", many, NULL, 0, &r);
    it_assert_error(&r, 431, "header_too_large");
    weft_hresp_free(&r);
    free(many);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

/* m. 404 and 405 JSON errors, with Allow. */
START_TEST(test_not_found_and_405)
{
    weft_harness *h = it_start_hello(NULL, 2);
    char allow[256];
    weft_hresp r;

    it_get(h, "/api/nope", &r);
    it_assert_error(&r, 404, "not_found");
    weft_hresp_free(&r);
    it_get(h, "/api/hello/nope", &r);
    it_assert_error(&r, 404, "not_found");
    weft_hresp_free(&r);
    it_get(h, "/nope", &r);
    it_assert_error(&r, 404, "not_found");
    weft_hresp_free(&r);

    it_req(h, "POST", "/api/hello/ping", NULL, NULL, 0, &r);
    it_assert_error(&r, 405, "method_not_allowed");
    ck_assert_msg(weft_hresp_header(&r, "Allow", allow, sizeof(allow)) != NULL,
                  "405 without Allow:\n%s", r.head);
    ck_assert_msg(strstr(allow, "GET") != NULL, "Allow: %s (want GET)", allow);
    ck_assert_msg(strstr(allow, "POST") == NULL, "Allow: %s lists POST",
                  allow);
    weft_hresp_free(&r);
    it_req(h, "GET", "/api/hello/echo", NULL, NULL, 0, &r);
    it_assert_error(&r, 405, "method_not_allowed");
    ck_assert_msg(weft_hresp_header(&r, "Allow", allow, sizeof(allow)) &&
                      strstr(allow, "POST") != NULL,
                  "GET /api/hello/echo: 405 without Allow: POST:\n%s", r.head);
    weft_hresp_free(&r);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

/* m. A malformed request gets a 400 JSON answer. */
START_TEST(test_bad_request)
{
    static const char bad[] = "GET /api/hello/ping HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: abc\r\n\r\n";
    weft_harness *h = it_start_hello(NULL, 2);
    weft_hresp r;

    it_raw(h, bad, sizeof(bad) - 1, &r);
    it_assert_error(&r, 400, "bad_request");
    weft_hresp_free(&r);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

static int rid_valid(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._:-") == n;
}

/* m. X-Request-Id: echoed when valid, generated otherwise, on every answer. */
START_TEST(test_request_id)
{
    weft_harness *h = it_start_hello(NULL, 2);
    char rid[256], rid2[256], long_id[80];
    weft_hresp r;

    it_req(h, "GET", "/api/hello/ping", "X-Request-Id: it-m.rid:42-A\r\n",
           NULL, 0, &r);
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      strcmp(rid, "it-m.rid:42-A") == 0,
                  "valid X-Request-Id not echoed:\n%s", r.head);
    weft_hresp_free(&r);

    it_get(h, "/api/hello/ping", &r);
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      rid_valid(rid),
                  "no generated X-Request-Id:\n%s", r.head);
    weft_hresp_free(&r);
    it_get(h, "/api/hello/ping", &r);
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid2, sizeof(rid2)) &&
                      rid_valid(rid2) && strcmp(rid, rid2) != 0,
                  "generated ids repeat: %s", rid);
    weft_hresp_free(&r);

    it_req(h, "GET", "/api/hello/ping",
           "X-Request-Id: bad id with spaces!\r\n", NULL, 0, &r);
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      rid_valid(rid) &&
                      strcmp(rid, "bad id with spaces!") != 0,
                  "invalid X-Request-Id handled wrongly:\n%s", r.head);
    weft_hresp_free(&r);

    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    {
        char *hdr = it_strf("X-Request-Id: %s\r\n", long_id);

        it_req(h, "GET", "/api/hello/ping", hdr, NULL, 0, &r);
        free(hdr);
    }
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      rid_valid(rid) && strcmp(rid, long_id) != 0,
                  "a 65-character X-Request-Id was echoed:\n%s", r.head);
    weft_hresp_free(&r);

    /* Errors carry it too. */
    it_req(h, "GET", "/api/nope", "X-Request-Id: nf-1\r\n", NULL, 0, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      strcmp(rid, "nf-1") == 0,
                  "404 without the X-Request-Id:\n%s", r.head);
    weft_hresp_free(&r);
    it_get(h, "/healthz", &r);
    ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, sizeof(rid)) &&
                      rid_valid(rid),
                  "/healthz without X-Request-Id:\n%s", r.head);
    weft_hresp_free(&r);
    it_stop_ok(h);
}
END_TEST

static double ping_counter(weft_harness *h)
{
    static const char *const labels[] = {
        "plugin=\"hello\"", "route=\"/api/hello/ping\"", "method=\"GET\"",
        "status=\"200\"", NULL};
    weft_hresp r;
    double v = -1;

    it_get(h, "/metrics", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(it_metric(r.body, "weft_http_requests_total", labels, &v),
                  "no weft_http_requests_total for GET /api/hello/ping 200:"
                  "\n%.3000s",
                  r.body);
    weft_hresp_free(&r);
    return v;
}

/* m. /healthz, /readyz, /api/plugins and /metrics. */
START_TEST(test_health_and_metrics)
{
    static const char *const hello[] = {"plugin=\"hello\"", NULL};
    static const char *const loop0[] = {"loop=\"0\"", NULL};
    weft_harness *h = it_start_hello(NULL, 2);
    json_t *j, *e;
    double before, after, v;
    weft_hresp r;
    int i;

    it_get(h, "/healthz", &r);
    ck_assert_int_eq(r.status, 200);
    j = it_json(&r);
    ck_assert_msg(it_jstr(j, "status") && !strcmp(it_jstr(j, "status"), "ok"),
                  "/healthz: %s", r.body);
    json_decref(j);
    weft_hresp_free(&r);
    it_get(h, "/readyz", &r);
    ck_assert_int_eq(r.status, 200);
    j = it_json(&r);
    ck_assert_msg(it_jstr(j, "status") &&
                      !strcmp(it_jstr(j, "status"), "ready"),
                  "/readyz: %s", r.body);
    json_decref(j);
    weft_hresp_free(&r);

    e = it_plugin_entry(h, "hello");
    ck_assert_msg(e != NULL, "hello not in /api/plugins");
    ck_assert_str_eq(it_jstr(e, "version"), "1.0.0");
    ck_assert_str_eq(it_jstr(e, "abi"), IT_ABI_STRING); /* hello is built with this SDK */
    ck_assert_str_eq(it_jstr(e, "state"), "running");
    ck_assert(json_is_true(json_object_get(e, "enabled")));
    /* where the .so lives is for admins only (no admin user here) */
    ck_assert_ptr_null(json_object_get(e, "path"));
    ck_assert(json_is_null(json_object_get(e, "last_error")));
    ck_assert(json_integer_value(json_object_get(e, "loads")) >= 1);
    ck_assert(json_is_integer(json_object_get(e, "reloads")));
    ck_assert(json_integer_value(json_object_get(e, "failures")) == 0);
    json_decref(e);

    it_get_status(h, "/api/hello/ping", 200);
    before = ping_counter(h);
    ck_assert_msg(before >= 1, "ping counter %g after one ping", before);
    for (i = 0; i < 3; i++)
        it_get_status(h, "/api/hello/ping", 200);
    after = ping_counter(h);
    ck_assert_msg(after >= before + 3, "ping counter went from %g to %g "
                                       "over 3 pings",
                  before, after);

    it_get(h, "/metrics", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(it_header_has(&r, "Content-Type", "text/plain"),
                  "/metrics Content-Type:\n%s", r.head);
    ck_assert_msg(strstr(r.body, "weft_http_request_duration_seconds_bucket{")
                      && strstr(r.body, "le=\"+Inf\"") &&
                      strstr(r.body, "weft_http_request_duration_seconds_sum")
                      && strstr(r.body,
                                "weft_http_request_duration_seconds_count"),
                  "no request duration histogram:\n%.3000s", r.body);
    ck_assert_msg(it_metric(r.body, "weft_http_connections_open", loop0, &v),
                  "no weft_http_connections_open{loop=\"0\"}");
    ck_assert_msg(it_metric(r.body, "weft_http_connections_accepted_total",
                            loop0, &v) &&
                      v >= 1,
                  "no weft_http_connections_accepted_total{loop=\"0\"}");
    ck_assert_msg(it_metric(r.body, "weft_plugin_loads_total", hello, &v) &&
                      v >= 1,
                  "weft_plugin_loads_total{plugin=\"hello\"} missing or 0");
    ck_assert_msg(it_metric(r.body, "weft_plugin_reloads_total", hello, &v),
                  "no weft_plugin_reloads_total{plugin=\"hello\"}");
    ck_assert_msg(it_metric(r.body, "weft_plugin_failures_total", hello, &v),
                  "no weft_plugin_failures_total{plugin=\"hello\"}");
    weft_hresp_free(&r);
    it_stop_ok(h);
}
END_TEST

/* m. The admin endpoints need the bearer token. */
START_TEST(test_admin_auth)
{
    weft_harness *h = it_start_hello(NULL, 2);
    weft_hresp r;

    it_req(h, "POST", "/admin/plugins/hello/reload", NULL, NULL, 0, &r);
    it_assert_error(&r, 401, "unauthorized");
    weft_hresp_free(&r);
    it_req(h, "POST", "/admin/plugins/hello/reload",
           "Authorization: Bearer wrong-token\r\n", NULL, 0, &r);
    it_assert_error(&r, 401, "unauthorized");
    weft_hresp_free(&r);
    it_req(h, "POST", "/admin/plugins/hello/reload",
           "Authorization: Basic YWRtaW46YWRtaW4=\r\n", NULL, 0, &r);
    it_assert_error(&r, 401, "unauthorized");
    weft_hresp_free(&r);

    ck_assert_int_eq(weft_harness_admin(h, "POST",
                                        "/admin/plugins/nosuch/reload", &r),
                     0);
    it_assert_error(&r, 404, "not_found");
    weft_hresp_free(&r);
    ck_assert_int_eq(weft_harness_admin(h, "POST",
                                        "/admin/plugins/hello/reload", &r),
                     0);
    ck_assert_msg(r.status == 200, "admin reload with the token: %d %s",
                  r.status, r.body);
    weft_hresp_free(&r);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

/* Is there an access line carrying rid=<rid> (and `also`)? */
static int log_has_access(const char *log, const char *rid, const char *also)
{
    char *want = it_strf("rid=%s", rid);
    const char *line = log, *eol;
    size_t wl = strlen(want);
    int found = 0;
    char *copy;

    for (; line != NULL && *line != '\0'; line = eol ? eol + 1 : NULL) {
        const char *p;

        eol = strchr(line, '\n');
        copy = strndup(line, eol ? (size_t)(eol - line) : strlen(line));
        ck_assert_ptr_nonnull(copy);
        if (strstr(copy, " access ") != NULL) {
            for (p = strstr(copy, want); p != NULL; p = strstr(p + 1, want))
                if (p[wl] == ' ' || p[wl] == '\0')
                    break;
            if (p != NULL && (also == NULL || strstr(copy, also) != NULL))
                found = 1;
        }
        free(copy);
        if (found)
            break;
    }
    free(want);
    return found;
}

/* o. Every access log line carries the request's id. */
START_TEST(test_access_log_rid)
{
    weft_harness *h = it_start_hello(NULL, 2);
    char gen[128], *log = NULL, *line, *save = NULL;
    long long deadline;
    weft_hresp r;
    int ok = 0, lines = 0;

    it_req(h, "GET", "/api/hello/ping", "X-Request-Id: log-ping-1\r\n", NULL,
           0, &r);
    ck_assert_int_eq(r.status, 200);
    weft_hresp_free(&r);
    it_req(h, "GET", "/api/nope", "X-Request-Id: log-404-1\r\n", NULL, 0, &r);
    ck_assert_int_eq(r.status, 404);
    weft_hresp_free(&r);
    it_req(h, "POST", "/api/hello/ping", "X-Request-Id: log-405-1\r\n", NULL,
           0, &r);
    ck_assert_int_eq(r.status, 405);
    weft_hresp_free(&r);
    it_get(h, "/api/hello/ping?gen=1", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(weft_hresp_header(&r, "X-Request-Id", gen,
                                            sizeof(gen)));
    weft_hresp_free(&r);

    deadline = it_now_ms() + 3000;
    while (!ok) {
        free(log);
        log = weft_harness_log(h);
        ck_assert_ptr_nonnull(log);
        ok = log_has_access(log, "log-ping-1", "status=200") &&
             log_has_access(log, "log-404-1", "status=404") &&
             log_has_access(log, "log-405-1", "status=405") &&
             log_has_access(log, gen, "path=/api/hello/ping");
        if (ok || it_now_ms() > deadline)
            break;
        it_sleep_ms(100);
    }
    ck_assert_msg(ok, "access lines missing or without their rid (want "
                      "log-ping-1, log-404-1, log-405-1, %s); log:\n%.4000s",
                  gen, log);
    for (line = strtok_r(log, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *rid;

        if (strstr(line, " access ") == NULL)
            continue;
        lines++;
        rid = strstr(line, " rid=");
        ck_assert_msg(rid != NULL && rid[5] != ' ' && rid[5] != '\0',
                      "access line without a rid: %s", line);
    }
    ck_assert_int_ge(lines, 4);
    free(log);
    it_stop_ok(h);
}
END_TEST

/* A client dripping its head a byte at a time still gets 408 once
 * header_timeout has passed since the first byte (slowloris). */
START_TEST(test_slow_head_times_out)
{
    weft_harness *h;
    const char *head = "GET /api/hello/ping HTTP/1.1\r\nHost: x\r\n"
                       "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    long long t0;
    int fd, got408 = 0;
    weft_hresp r;

    h = it_start("[server]\nheader_timeout = 1s\n", 2);
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    t0 = it_now_ms();
    for (size_t i = 0; i < strlen(head) && it_now_ms() - t0 < 4000; i++) {
        if (weft_harness_send(fd, head + i, 1) != 0)
            break; /* closed by the server: expected */
        it_sleep_ms(100);
    }
    if (weft_hresp_read(fd, &r, 3000) == 0) {
        got408 = r.status == 408;
        weft_hresp_free(&r);
    }
    weft_harness_close(fd);
    ck_assert_msg(got408, "no 408 for a head dripped over %lld ms",
                  it_now_ms() - t0);
    ck_assert_int_lt(it_now_ms() - t0, 3500);
    it_get_status(h, "/healthz", 200);
    it_stop_ok(h);
}
END_TEST

/* ---- framing refusals end to end (issue 8, items 10, 11, 14, 16) ------- */

#define ECHO_CHUNKED_HEAD                                                    \
    "POST /api/hello/echo HTTP/1.1\r\nHost: x\r\n"                           \
    "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"

/*
 * Send `bytes` with a ping pipelined right behind them on one connection:
 * the answer must be `status` with error `code` and Connection: close, and
 * the connection must then close with the ping unanswered. A server that
 * frames a request differently from a strict proxy in front would answer
 * the ping: that is request smuggling.
 */
static void expect_refused_closed(weft_harness *h, const char *bytes,
                                  size_t len, int status, const char *code,
                                  const char *what)
{
    char *all = malloc(len + sizeof(PING_11));
    weft_hresp r;
    int fd;

    ck_assert_ptr_nonnull(all);
    memcpy(all, bytes, len);
    memcpy(all + len, PING_11, sizeof(PING_11));
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, all, len + sizeof(PING_11) - 1), 0);
    ck_assert_msg(weft_hresp_read(fd, &r, 5000) == 0, "%s: no answer (%s)",
                  what, strerror(errno));
    ck_assert_msg(r.status == status,
                  "%s: expected %d %s, got %d: %.300s", what, status, code,
                  r.status, r.body);
    it_assert_error(&r, status, code);
    ck_assert_msg(it_header_has(&r, "Connection", "close"),
                  "%s: answered without Connection: close:\n%s", what,
                  r.head);
    weft_hresp_free(&r);
    if (weft_hresp_read(fd, &r, 3000) == 0) {
        ck_abort_msg("%s: the request pipelined behind it was answered "
                     "(%d %.200s)",
                     what, r.status, r.body);
    }
    expect_closed(fd, 3000);
    weft_harness_close(fd);
    free(all);
}

/* Send `bytes` + a pipelined ping: `status` first, then the ping's 200 on
 * the same connection. */
static void expect_served_then_ping(weft_harness *h, const char *bytes,
                                    size_t len, int status, const char *what)
{
    char *all = malloc(len + sizeof(PING_11));
    weft_hresp r;
    int fd;

    ck_assert_ptr_nonnull(all);
    memcpy(all, bytes, len);
    memcpy(all + len, PING_11, sizeof(PING_11));
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, all, len + sizeof(PING_11) - 1), 0);
    read_resp(fd, &r, what);
    ck_assert_msg(r.status == status, "%s: expected %d, got %d: %.300s", what,
                  status, r.status, r.body);
    weft_hresp_free(&r);
    read_resp(fd, &r, "the ping pipelined after it");
    assert_ping_body(&r, what);
    weft_hresp_free(&r);
    weft_harness_close(fd);
    free(all);
}

/* Item 10: chunk sizes are 1*HEXDIG (plus extensions), nothing else. */
START_TEST(test_chunk_size_strict)
{
    /* Each would be read as 2 (or 0) by strtoll; a strict proxy in front
     * would refuse or frame it differently. */
    static const char *const bad[] = {"0x2", "+2", " 2", "2 ", "\t2", "2\t",
                                      "0X2", "2;", "2;a b", "1 0", NULL};
    static const char body26[] = "{\"a\":\"xxxxxxxxxxxxxxxxxx\"}";
    static const char *const good[] = {"2", "2;ext=1", "2 ;ext=\"a b\"",
                                       "002", NULL};
    weft_harness *h = it_start_hello(NULL, 2);
    char *req, what[96];

    for (int i = 0; bad[i] != NULL; i++) {
        req = it_strf(ECHO_CHUNKED_HEAD "%s\r\n{}\r\n0\r\n\r\n", bad[i]);
        snprintf(what, sizeof(what), "chunk size \"%s\"", bad[i]);
        expect_refused_closed(h, req, strlen(req), 400, "bad_request", what);
        free(req);
    }
    /* "-0" would end the body at once: the empty body, then the ping. */
    req = it_strf(ECHO_CHUNKED_HEAD "-0\r\n\r\n");
    expect_refused_closed(h, req, strlen(req), 400, "bad_request",
                          "chunk size \"-0\"");
    free(req);
    /* A request line where a trailer goes: a proxy that ends the body at
     * the last chunk would take it for the next request. */
    req = it_strf(ECHO_CHUNKED_HEAD "2\r\n{}\r\n0\r\nGET /api/hello/ping "
                                    "HTTP/1.1\r\n\r\n");
    expect_refused_closed(h, req, strlen(req), 400, "bad_request",
                          "a request line as a trailer");
    free(req);
    /* Trailers are bounded like a head (max_header, 16k): 200 lines of
     * 100 bytes are refused. */
    {
        char *t = it_strf(ECHO_CHUNKED_HEAD "2\r\n{}\r\n0\r\n"), *next;
        for (int i = 0; i < 200; i++) {
            next = it_strf("%sX-T-%03d: %090d\r\n", t, i, 0);
            free(t);
            t = next;
        }
        next = it_strf("%s\r\n", t);
        free(t);
        expect_refused_closed(h, next, strlen(next), 400, "bad_request",
                              "20 KB of trailers");
        free(next);
    }
    req = it_strf(ECHO_CHUNKED_HEAD "1\r\n{\r\n+1\r\n}\r\n0\r\n\r\n");
    expect_refused_closed(h, req, strlen(req), 400, "bad_request",
                          "second chunk size \"+1\"");
    free(req);

    for (int i = 0; good[i] != NULL; i++) {
        req = it_strf(ECHO_CHUNKED_HEAD "%s\r\n{}\r\n0\r\n\r\n", good[i]);
        snprintf(what, sizeof(what), "chunk size \"%s\"", good[i]);
        expect_served_then_ping(h, req, strlen(req), 200, what);
        free(req);
    }
    ck_assert_int_eq((int)strlen(body26), 0x1a);
    req = it_strf(ECHO_CHUNKED_HEAD "1a\r\n%s\r\n0\r\n\r\n", body26);
    expect_served_then_ping(h, req, strlen(req), 200, "chunk size \"1a\"");
    free(req);
    req = it_strf(ECHO_CHUNKED_HEAD "1A;x=\"y\"\r\n%s\r\n0;z\r\nX-Sum: "
                                    "1\r\n\r\n",
                  body26);
    expect_served_then_ping(h, req, strlen(req), 200, "chunk size \"1A\"");
    free(req);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

/* Item 11: RFC 9112 3.2: two Host lines, none in HTTP/1.1, or a bad one,
 * 400, and the connection ends. */
START_TEST(test_host_header_rules)
{
    static const char *const heads[] = {
        "GET /api/hello/ping HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
        "GET /api/hello/ping HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n",
        "GET /api/hello/ping HTTP/1.1\r\nhOST: a\r\nX: 1\r\nHOST: a\r\n\r\n",
        "GET /api/hello/ping HTTP/1.0\r\nHost: x\r\nHost: y\r\n"
        "Connection: keep-alive\r\n\r\n",
        "GET /api/hello/ping HTTP/1.1\r\nX: 1\r\n\r\n",
        "GET /api/hello/ping HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET /api/hello/ping HTTP/1.1\r\nHost: a/b\r\n\r\n",
        NULL};
    static const char one_host[] =
        "GET /api/hello/ping HTTP/1.1\r\nhOsT: 127.0.0.1:1\r\n\r\n";
    static const char no_host10[] = "GET /api/hello/ping HTTP/1.0\r\n\r\n";
    weft_harness *h = it_start_hello(NULL, 2);
    char what[200];
    weft_hresp r;

    for (int i = 0; heads[i] != NULL; i++) {
        snprintf(what, sizeof(what), "head %d (%.60s...)", i, heads[i] + 29);
        expect_refused_closed(h, heads[i], strlen(heads[i]), 400,
                              "bad_request", what);
    }
    /* One Host, in any case, and HTTP/1.0 without one: served. */
    expect_served_then_ping(h, one_host, sizeof(one_host) - 1, 200,
                            "one Host header");
    it_raw(h, no_host10, sizeof(no_host10) - 1, &r);
    assert_ping_body(&r, "HTTP/1.0 without Host");
    weft_hresp_free(&r);
    it_stop_ok(h);
}
END_TEST

/* Item 13: the status line of a 308 (and every status the host sends) has
 * its registered reason phrase. */
START_TEST(test_reason_phrases)
{
    weft_harness *h = it_start_hello(NULL, 2);
    weft_hresp r;

    it_get(h, "/p/hello", &r);
    ck_assert_int_eq(r.status, 308);
    ck_assert_msg(strncmp(r.head, "HTTP/1.1 308 Permanent Redirect\r\n", 33) ==
                      0,
                  "308 status line: %.60s", r.head);
    weft_hresp_free(&r);
    it_get(h, "/api/nope", &r);
    ck_assert_msg(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0,
                  "404 status line: %.60s", r.head);
    weft_hresp_free(&r);
    it_stop_ok(h);
}
END_TEST

/* A JSON body of exactly `len` bytes: {"a":"xxx...x"}. */
static char *json_of_len(size_t len)
{
    char *b = malloc(len + 1);

    ck_assert_ptr_nonnull(b);
    ck_assert(len >= 8);
    memset(b, 'x', len);
    memcpy(b, "{\"a\":\"", 6);
    memcpy(b + len - 2, "\"}", 2);
    b[len] = '\0';
    return b;
}

/* `body` as chunks of at most `piece` bytes, behind ECHO_CHUNKED_HEAD. */
static char *chunked_request(const char *body, size_t len, size_t piece,
                             size_t *out_len)
{
    size_t cap = len + (len / piece + 2) * 32 + sizeof(ECHO_CHUNKED_HEAD);
    char *req = malloc(cap), *p = req;

    ck_assert_ptr_nonnull(req);
    p += sprintf(p, "%s", ECHO_CHUNKED_HEAD);
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        p += sprintf(p, "%zx\r\n", n);
        memcpy(p, body + off, n);
        p += n;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    p += sprintf(p, "0\r\n\r\n");
    *out_len = (size_t)(p - req);
    return req;
}

/* Item 14: max_body holds for chunked bodies as for Content-Length ones,
 * to the byte. */
START_TEST(test_max_body_chunked)
{
    const size_t max = 64 * 1024;
    char *body, *req;
    weft_hresp r;
    size_t len;
    weft_harness *h;

    /* The environment override, so a test config cannot mask it. */
    ck_assert_int_eq(setenv("WEFT_SERVER_MAX_BODY", "64k", 1), 0);
    h = it_start_hello(NULL, 2);

    /* Just at the limit, in 1000-byte chunks: served. */
    body = json_of_len(max);
    req = chunked_request(body, max, 1000, &len);
    expect_served_then_ping(h, req, len, 200,
                            "a chunked body of exactly max_body");
    free(req);
    /* One whole chunk at the limit. */
    req = chunked_request(body, max, max, &len);
    expect_served_then_ping(h, req, len, 200,
                            "one chunk of exactly max_body");
    free(req);
    free(body);

    /* One byte over, in pieces: 413 once the sum passes the limit. */
    body = json_of_len(max + 1);
    req = chunked_request(body, max + 1, 1000, &len);
    expect_refused_closed(h, req, len, 413, "payload_too_large",
                          "a chunked body of max_body + 1 in 1000-byte "
                          "chunks");
    free(req);
    /* One byte over in one chunk: refused from its size line. */
    req = chunked_request(body, max + 1, max + 1, &len);
    expect_refused_closed(h, req, len, 413, "payload_too_large",
                          "one chunk of max_body + 1");
    free(req);

    /* The same edge with Content-Length. */
    it_req(h, "POST", "/api/hello/echo", "Content-Type: application/json\r\n",
           body, max + 1, &r);
    it_assert_error(&r, 413, "payload_too_large");
    weft_hresp_free(&r);
    free(body);
    body = json_of_len(max);
    it_req(h, "POST", "/api/hello/echo", "Content-Type: application/json\r\n",
           body, max, &r);
    ck_assert_msg(r.status == 200, "Content-Length = max_body: %d %.200s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(body);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

/* Item 16: Content-Length with Transfer-Encoding, through a connection. */
START_TEST(test_cl_and_te_end_to_end)
{
    static const char *const reqs[] = {
        "POST /api/hello/echo HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n"
        "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "POST /api/hello/echo HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 12\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "POST /api/hello/echo HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\ncontent-length: 0\r\n"
        "transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        NULL};
    weft_harness *h = it_start_hello(NULL, 2);
    char what[64];

    for (int i = 0; reqs[i] != NULL; i++) {
        snprintf(what, sizeof(what), "Content-Length and Transfer-Encoding "
                                     "(%d)",
                 i);
        expect_refused_closed(h, reqs[i], strlen(reqs[i]), 400, "bad_request",
                              what);
    }
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("integration_http");
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_split_request);
    tcase_add_test(tc, test_pipelining);
    tcase_add_test(tc, test_huge_form_body);
    tcase_add_test(tc, test_long_uri);
    tcase_add_test(tc, test_stream_http10);
    tcase_add_test(tc, test_loop_balance);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_not_found_and_405);
    tcase_add_test(tc, test_bad_request);
    tcase_add_test(tc, test_request_id);
    tcase_add_test(tc, test_health_and_metrics);
    tcase_add_test(tc, test_admin_auth);
    tcase_add_test(tc, test_access_log_rid);
    tcase_add_test(tc, test_slow_head_times_out);
    tcase_add_test(tc, test_chunk_size_strict);
    tcase_add_test(tc, test_host_header_rules);
    tcase_add_test(tc, test_reason_phrases);
    tcase_add_test(tc, test_max_body_chunked);
    tcase_add_test(tc, test_cl_and_te_end_to_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return it_run_suite(http_suite());
}
