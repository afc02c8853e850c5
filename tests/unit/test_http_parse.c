/* HTTP head parsing: framing, limits and the answers for bad input. */
#include "http_parse.h"
#include "unit.h"

static const struct whttp_limits lim = {.max_uri = 8192, .max_headers = 10,
                                        .max_body = 1024 * 1024};

/* Parse a copy of `text`; returns the status (0 when valid). */
static int parse(const char *text, struct whttp_head *h, char **keep)
{
    static struct whttp_header hdrs[10];
    const char *why = NULL;
    char *buf = strdup(text);
    int rc = whttp_parse_head(buf, strlen(buf), &lim, hdrs, h, &why);

    if (rc != 0)
        ck_assert_ptr_nonnull(why);
    *keep = buf;
    return rc;
}

START_TEST(valid_heads)
{
    struct whttp_head h;
    char *b;

    ck_assert_int_eq(parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Thing:  v "
                           "\r\n\r\n",
                           &h, &b),
                     0);
    ck_assert_str_eq(h.method, "GET");
    ck_assert_str_eq(h.target, "/a?b=c");
    ck_assert_int_eq(h.minor, 1);
    ck_assert_int_eq(h.keepalive, 1);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_str_eq(whttp_header(&h, "x-thing"), "v");
    ck_assert_ptr_null(whttp_header(&h, "missing"));
    free(b);

    ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n", &h, &b), 0);
    ck_assert_int_eq(h.minor, 0);
    ck_assert_int_eq(h.keepalive, 0); /* HTTP/1.0 closes by default */
    free(b);
    ck_assert_int_eq(
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, &b), 0);
    ck_assert_int_eq(h.keepalive, 1);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: "
                           "foo, close\r\n\r\n",
                           &h, &b),
                     0);
    ck_assert_int_eq(h.keepalive, 0);
    free(b);
    /* a leading empty line is tolerated (RFC 9112 2.2) */
    ck_assert_int_eq(parse("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &h, &b), 0);
    free(b);
    ck_assert_int_eq(parse("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: "
                           "12\r\nExpect: 100-continue\r\n\r\n",
                           &h, &b),
                     0);
    ck_assert_int_eq(h.content_length, 12);
    ck_assert_int_eq(h.expect_continue, 1);
    free(b);
    ck_assert_int_eq(parse("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                           "chunked\r\n\r\n",
                           &h, &b),
                     0);
    ck_assert_int_eq(h.chunked, 1);
    free(b);
}
END_TEST

START_TEST(long_uri_in_one_piece)
{
    /* libevhtp 1.2.18 corrupted URIs over ~4 KB; ours is parsed whole. */
    char *text = malloc(6000), *b;
    struct whttp_head h;
    int n = sprintf(text, "GET /api/hello/ping?pad=");

    memset(text + n, 'x', 5000);
    strcpy(text + n + 5000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(parse(text, &h, &b), 0);
    ck_assert_int_eq(strlen(h.target), 5000 + strlen("/api/hello/ping?pad="));
    ck_assert_int_eq(strncmp(h.target, "/api/hello/ping?pad=xxx", 23), 0);
    free(b);
    free(text);
}
END_TEST

START_TEST(bad_heads)
{
    struct whttp_head h;
    char *b, big[9300];
    int n;

#define BAD(text, status)                                                    \
    do {                                                                     \
        ck_assert_int_eq(parse(text, &h, &b), status);                       \
        free(b);                                                             \
    } while (0)
    BAD("GET / HTTP/1.1\r\n\r\n", 400);                 /* no Host */
    BAD("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    BAD("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505);
    BAD("GET / FOO/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400);      /* not a path */
    BAD("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\nHost: x\r\n\r\n", 400);        /* bare LF */
    BAD("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: "
        "6\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413);
    BAD("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: "
        "chunked\r\n\r\n", 400);                        /* smuggling */
    BAD("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: "
        "5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nJ: 10\r\n\r\n", 431);
    n = sprintf(big, "GET /");
    memset(big + n, 'a', 9000);
    strcpy(big + n + 9000, " HTTP/1.1\r\nHost: x\r\n\r\n");
    BAD(big, 414);
#undef BAD
}
END_TEST

START_TEST(decoding)
{
    char out[64];

    ck_assert_int_eq(whttp_decode("/a%20b", 6, out, 0, 1), 4);
    ck_assert_str_eq(out, "/a b");
    ck_assert_int_eq(whttp_decode("/a+b", 4, out, 0, 1), 4);
    ck_assert_str_eq(out, "/a+b"); /* '+' is literal in paths */
    ck_assert_int_eq(whttp_decode("a+b%2B", 6, out, 1, 0), 4);
    ck_assert_str_eq(out, "a b+");
    ck_assert_int_eq(whttp_decode("/a%2Fb", 6, out, 0, 1), -1);
    ck_assert_int_eq(whttp_decode("/a%00", 5, out, 0, 1), -1);
    ck_assert_int_eq(whttp_decode("/a%4", 4, out, 0, 1), -1);
    ck_assert_int_eq(whttp_decode("/a%", 3, out, 0, 1), -1);
    ck_assert_int_eq(whttp_decode("/a%zz", 5, out, 0, 1), -1);
}
END_TEST

START_TEST(query)
{
    char out[32];

    ck_assert_int_eq(whttp_query_get("a=1&b=two%20words&c", "b", out, 32), 0);
    ck_assert_str_eq(out, "two words");
    ck_assert_int_eq(whttp_query_get("a=1&b=2", "a", out, 32), 0);
    ck_assert_str_eq(out, "1");
    ck_assert_int_eq(whttp_query_get("a=1&c", "c", out, 32), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(whttp_query_get("a=1", "z", out, 32), 1);
    ck_assert_int_eq(whttp_query_get("a=%zz", "a", out, 32), -1);
    ck_assert_int_eq(whttp_query_get("a=123456", "a", out, 4), -1);
    ck_assert_int_eq(whttp_query_get("x%3Dy=1", "x=y", out, 32), 0);
    ck_assert_str_eq(out, "1");
}
END_TEST

START_TEST(reasons)
{
    ck_assert_str_eq(whttp_reason(413), "Content Too Large");
    ck_assert_str_eq(whttp_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(whttp_reason(303), "See Other");
    ck_assert_str_eq(whttp_reason(307), "Temporary Redirect");
    ck_assert_str_eq(whttp_reason(308), "Permanent Redirect");
    ck_assert_str_eq(whttp_reason(410), "Gone");
    ck_assert_str_eq(whttp_reason(412), "Precondition Failed");
    ck_assert_str_eq(whttp_reason(451), "Unavailable For Legal Reasons");
    ck_assert_str_eq(whttp_reason(511), "Network Authentication Required");
    /* Unregistered codes: an empty phrase (RFC 9112 4), never a made-up
     * word; every phrase is reason-phrase text. */
    ck_assert_str_eq(whttp_reason(299), "");
    ck_assert_str_eq(whttp_reason(599), "");
    for (int st = 100; st <= 599; st++) {
        const char *p = whttp_reason(st);
        ck_assert_msg(strcmp(p, "Unknown") != 0, "%d reads Unknown", st);
        for (; *p; p++)
            ck_assert_msg(*p == ' ' || (*p > 0x20 && *p < 0x7f),
                          "%d: bad reason character", st);
    }
}
END_TEST

static int chunk(const char *line, int64_t *sz)
{
    *sz = -7;
    return whttp_chunk_size(line, strlen(line), sz);
}

START_TEST(chunk_sizes)
{
    static const char *const bad[] = {
        "", "0x2", "0X2", "+2", "-0", "-2", " 2", "\t2", "2 ", "2\t", "x",
        "2x", "g", "2;", "2; ", "2;=v", "2;a=", "2;a=\"x", "2;a b", "2;a=b c",
        "2;a ", "2,a", "2;a=\"\x01\"", "2;a=\"x\\\x7f\"", "2\r", "1 0",
        "0000000000000001" /* 16 digits */, "fffffffffffffffff", NULL};
    char ext[200];
    int64_t sz;

    ck_assert_int_eq(chunk("2", &sz), 0);
    ck_assert_int_eq(sz, 2);
    ck_assert_int_eq(chunk("0", &sz), 0);
    ck_assert_int_eq(sz, 0);
    ck_assert_int_eq(chunk("1aF", &sz), 0);
    ck_assert_int_eq(sz, 0x1af);
    ck_assert_int_eq(chunk("FF", &sz), 0);
    ck_assert_int_eq(sz, 255);
    ck_assert_int_eq(chunk("ff", &sz), 0);
    ck_assert_int_eq(sz, 255);
    ck_assert_int_eq(chunk("000000000000010", &sz), 0); /* 15 digits */
    ck_assert_int_eq(sz, 16);
    ck_assert_int_eq(chunk("fffffffffffffff", &sz), 0);
    ck_assert(sz == 0xfffffffffffffffLL);
    /* Extensions, RFC 9112 7.1.1, with the BWS it allows. */
    ck_assert_int_eq(chunk("2;ext=1", &sz), 0);
    ck_assert_int_eq(sz, 2);
    ck_assert_int_eq(chunk("2;a", &sz), 0);
    ck_assert_int_eq(chunk("2;a;b=c", &sz), 0);
    ck_assert_int_eq(chunk("2 ; a = b ;c", &sz), 0);
    ck_assert_int_eq(chunk("2;a=\"q \\\" ;x\"", &sz), 0);
    ck_assert_int_eq(sz, 2);
    for (int i = 0; bad[i] != NULL; i++) {
        ck_assert_msg(chunk(bad[i], &sz) == -1, "chunk size \"%s\" accepted",
                      bad[i]);
        ck_assert_msg(sz == -7, "size written for \"%s\"", bad[i]);
    }
    /* NUL inside the line (the length says where it ends). */
    ck_assert_int_eq(whttp_chunk_size("2\0;a", 4, &sz), -1);
    /* Extensions are bounded. */
    ext[0] = '1';
    ext[1] = ';';
    memset(ext + 2, 'a', WHTTP_CHUNK_EXT - 1);
    ext[WHTTP_CHUNK_EXT + 1] = '\0';
    ck_assert_int_eq(chunk(ext, &sz), 0);
    memset(ext + 2, 'a', WHTTP_CHUNK_EXT);
    ext[WHTTP_CHUNK_EXT + 2] = '\0';
    ck_assert_int_eq(chunk(ext, &sz), -1);
}
END_TEST

START_TEST(trailer_lines)
{
    static const char *const good[] = {"X-Sum: 1", "a:", "a:b\tc", NULL};
    static const char *const bad[] = {"GET / HTTP/1.1", ": v", "a b: v",
                                      "a", " a: v", "a: \x01", "a: \x7f",
                                      NULL};

    for (int i = 0; good[i] != NULL; i++)
        ck_assert_msg(whttp_trailer_line(good[i], strlen(good[i])) == 0,
                      "trailer \"%s\" refused", good[i]);
    for (int i = 0; bad[i] != NULL; i++)
        ck_assert_msg(whttp_trailer_line(bad[i], strlen(bad[i])) == -1,
                      "trailer \"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(host_headers)
{
    struct whttp_head h;
    char *b;

    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", &h,
                           &b),
                     400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n", &h,
                           &b),
                     400);
    free(b);
    /* Also for HTTP/1.0, which need not send one at all. */
    ck_assert_int_eq(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", &h,
                           &b),
                     400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\n\r\n", &h, &b), 400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", &h, &b), 400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", &h, &b), 400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", &h, &b), 400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", &h, &b), 400);
    free(b);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: []\r\n\r\n", &h, &b), 400);
    free(b);
    static const char *const good[] = {"x", "127.0.0.1:8080", "[::1]:80",
                                       "ex-ample.org", "", "a.b:", NULL};
    for (int i = 0; good[i] != NULL; i++) {
        char *t = malloc(strlen(good[i]) + 64);
        sprintf(t, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", good[i]);
        ck_assert_msg(parse(t, &h, &b) == 0, "Host: %s refused", good[i]);
        free(b);
        free(t);
    }
    ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n", &h, &b), 0);
    free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_parse");
    TCase *tc = tcase_create("http_parse");

    tcase_add_test(tc, valid_heads);
    tcase_add_test(tc, long_uri_in_one_piece);
    tcase_add_test(tc, bad_heads);
    tcase_add_test(tc, decoding);
    tcase_add_test(tc, query);
    tcase_add_test(tc, reasons);
    tcase_add_test(tc, chunk_sizes);
    tcase_add_test(tc, host_headers);
    tcase_add_test(tc, trailer_lines);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
