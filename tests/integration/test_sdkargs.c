/*
 * The SDK's answer to bad arguments (issue 8, items 2 and 12), against a
 * real weftd with its embedded PostgreSQL.
 *
 * sdk_null_and_bad_arguments: the nullargs test plugin
 * (tests/plugins/nullargs) calls every member of struct weft_api with NULL
 * handles, NULL strings, out-of-range numbers and in the wrong state, through
 * the inline wrappers and straight through the table, and answers each
 * return value next to what weft.h promises. Every probe must match, the
 * probes must cover every member of the table (counted here from the header,
 * so a new member without a probe fails), and weftd must still serve and
 * exit cleanly (under ASan: with no report).
 *
 * sdk_init_only_bad_arguments: the init-only members with bad arguments on
 * the plugin's own handle refuse the version (with reasons), weftd goes on,
 * and a good version loaded next reports what each call returned.
 *
 * request_id_is_ours: two changes made by requests carrying the same
 * X-Request-Id publish events with different "by" values, made by weftd;
 * the client's id is still echoed in X-Request-Id and logged.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "it_common.h"

#ifndef IT_NULLARGS_SO
#error "IT_NULLARGS_SO must be defined by the build"
#endif
#ifndef IT_TODO_SO
#error "IT_TODO_SO must be defined by the build"
#endif

#define SA_AUTH                                                                \
    "[auth]\nargon2_opslimit = 1\nargon2_memlimit = 64k\n"                     \
    "register_rate = 10000\nlogin_rate = 10000\n"

/* Members of struct weft_api as the plugin counts them (all functions). */
#define SA_MEMBERS                                                            \
    ((sizeof(weft_api) - offsetof(weft_api, plugin_name)) /                   \
     sizeof(void (*)(void)))

static weft_harness *sa_start(const char *nullargs_extra, int db)
{
    char *extra = it_strf("[database]\nenabled = %s\n%s"
                          "[plugin.nullargs]\npath = %s\nenabled = true\n%s",
                          db ? "true" : "false", db ? SA_AUTH : "",
                          IT_NULLARGS_SO,
                          nullargs_extra != NULL ? nullargs_extra : "");
    weft_harness *h = it_start(extra, 2);

    free(extra);
    return h;
}

/* Check one answer of the plugin: every probe as promised; the covered
 * slots are added to `seen`. Returns the number of probes. */
static size_t sa_check(const char *what, json_t *j, unsigned char *seen)
{
    json_t *probes = json_object_get(j, "probes"), *cov, *p, *v;
    size_t k, bad = 0;
    char *text;

    ck_assert_msg(json_is_array(probes), "%s: no probes", what);
    ck_assert_msg(json_integer_value(json_object_get(j, "members")) ==
                      (json_int_t)SA_MEMBERS,
                  "%s: the plugin counts %lld members, weft.h has %zu", what,
                  (long long)json_integer_value(json_object_get(j, "members")),
                  (size_t)SA_MEMBERS);
    json_array_foreach(probes, k, p) {
        if (json_equal(json_object_get(p, "got"), json_object_get(p, "want")))
            continue;
        text = json_dumps(p, JSON_COMPACT);
        fprintf(stderr, "%s: probe not as promised: %s\n", what, text);
        free(text);
        bad++;
    }
    ck_assert_msg(bad == 0, "%s: %zu of %zu probes answered otherwise than "
                            "weft.h promises (listed above)",
                  what, bad, json_array_size(probes));
    cov = json_object_get(j, "covered");
    json_array_foreach(cov, k, v) {
        json_int_t slot = json_integer_value(v);
        ck_assert_msg(slot >= 0 && (size_t)slot < SA_MEMBERS, "%s: slot %lld",
                      what, (long long)slot);
        seen[slot] = 1;
    }
    return json_array_size(probes);
}

/* GET `path`, assert 200 and check its probes. */
static size_t sa_get_check(weft_harness *h, const char *path,
                           unsigned char *seen)
{
    weft_hresp r;
    json_t *j;
    size_t n;

    it_get(h, path, &r);
    ck_assert_msg(r.status == 200, "GET %s: %d %.300s (did weftd crash?)",
                  path, r.status, r.body);
    j = it_json(&r);
    n = sa_check(path, j, seen);
    json_decref(j);
    weft_hresp_free(&r);
    return n;
}

/* Read exactly n bytes; asserts. */
static void sa_read_n(int fd, char *buf, size_t n)
{
    long long deadline = it_now_ms() + IT_READ_MS;
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long long left = deadline - it_now_ms();
        ssize_t k;

        ck_assert_msg(left > 0 && poll(&pfd, 1, (int)left) > 0,
                      "WebSocket: timed out after %zu of %zu bytes", got, n);
        k = recv(fd, buf + got, n - got, 0);
        ck_assert_msg(k > 0, "WebSocket: connection closed after %zu of %zu "
                             "bytes",
                      got, n);
        got += (size_t)k;
    }
}

/* GET /api/nullargs/ws: the open() probes arrive as the first text frame;
 * then a close frame from us, which runs close() (its probes are kept). */
static void sa_ws(weft_harness *h, unsigned char *seen)
{
    static const char hs[] =
        "GET /api/nullargs/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /* Close 1000, masked with 0x01020304 as a client must. */
    static const unsigned char bye[] = {0x88, 0x82, 1, 2, 3, 4,
                                        0x03 ^ 1, 0xe8 ^ 2};
    char head[4096], hdr[8], *payload, c;
    size_t n = 0, len;
    json_t *j;
    int fd = weft_harness_connect(h);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, hs, sizeof(hs) - 1), 0);
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
        ck_assert_msg(n < sizeof(head) - 1, "WebSocket head too long");
        sa_read_n(fd, &c, 1);
        head[n++] = c;
    }
    head[n] = '\0';
    ck_assert_msg(strncmp(head, "HTTP/1.1 101", 12) == 0,
                  "WebSocket handshake: %s", head);
    sa_read_n(fd, hdr, 2);
    ck_assert_msg((unsigned char)hdr[0] == 0x81, "not a text frame: 0x%02x",
                  (unsigned char)hdr[0]);
    len = (unsigned char)hdr[1] & 0x7f;
    if (len == 126) {
        sa_read_n(fd, hdr, 2);
        len = ((size_t)(unsigned char)hdr[0] << 8) | (unsigned char)hdr[1];
    } else if (len == 127) {
        sa_read_n(fd, hdr, 8);
        len = 0;
        for (int k = 0; k < 8; k++)
            len = (len << 8) | (unsigned char)hdr[k];
    }
    ck_assert_msg(len < (1u << 20), "frame of %zu bytes", len);
    payload = calloc(1, len + 1);
    ck_assert_ptr_nonnull(payload);
    sa_read_n(fd, payload, len);
    j = json_loads(payload, 0, NULL);
    ck_assert_msg(j != NULL, "open() probes are not JSON: %.300s", payload);
    sa_check("ws open()", j, seen);
    json_decref(j);
    free(payload);
    ck_assert_int_eq(weft_harness_send(fd, bye, sizeof(bye)), 0);
    /* The server's close frame, then the end of the connection. */
    {
        long long deadline = it_now_ms() + IT_READ_MS;
        char sink[256];

        for (;;) {
            struct pollfd pfd = {fd, POLLIN, 0};
            ssize_t k;

            ck_assert_msg(it_now_ms() < deadline &&
                              poll(&pfd, 1, IT_READ_MS) > 0,
                          "the WebSocket was not closed");
            k = recv(fd, sink, sizeof(sink), 0);
            if (k <= 0)
                break;
        }
    }
    weft_harness_close(fd);
}

static void sa_assert_serving(weft_harness *h)
{
    it_get_status(h, "/healthz", 200);
}

START_TEST(sdk_null_and_bad_arguments)
{
    weft_harness *h = sa_start(NULL, 1);
    unsigned char seen[SA_MEMBERS];
    size_t total = 0, missing = 0;
    weft_hresp r;
    json_t *j;
    int fd;
    static const char two[] =
        "GET /api/nullargs/stream HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /api/nullargs/kept/after HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char reg[] =
        "{\"email\":\"na@example.com\",\"username\":\"nullargs1\","
        "\"display_name\":\"N A\",\"password\":\"nullargs-pass-1\"}";

    memset(seen, 0, sizeof(seen));
    total += sa_get_check(h, "/api/nullargs/kept/init", seen);
    total += sa_get_check(h, "/api/nullargs/probe", seen);
    total += sa_get_check(h, "/api/nullargs/db", seen);
    sa_assert_serving(h);

    /* A stream, then (pipelined on the same connection) what the handler
     * saw after its end: writes after the last chunk must not reach the
     * wire, where they would be read as the next answer. */
    fd = weft_harness_connect(h);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(weft_harness_send(fd, two, sizeof(two) - 1), 0);
    ck_assert_msg(weft_hresp_read(fd, &r, IT_READ_MS) == 0,
                  "no streamed answer: %s", strerror(errno));
    ck_assert_msg(r.status == 200, "stream: %d %.300s", r.status, r.body);
    j = it_json(&r);
    total += sa_check("stream", j, seen);
    json_decref(j);
    weft_hresp_free(&r);
    ck_assert_msg(weft_hresp_read(fd, &r, IT_READ_MS) == 0,
                  "no answer after the stream: %s", strerror(errno));
    ck_assert_msg(r.status == 200, "after the stream: %d %.300s", r.status,
                  r.body);
    j = it_json(&r);
    total += sa_check("after the stream", j, seen);
    json_decref(j);
    weft_hresp_free(&r);
    weft_harness_close(fd);

    /* The signup step: a lent transaction, answers refused. */
    it_req(h, "POST", "/api/auth/register",
           "Content-Type: application/json\r\n", reg, sizeof(reg) - 1, &r);
    ck_assert_msg(r.status == 201, "register: %d %.300s", r.status, r.body);
    weft_hresp_free(&r);
    total += sa_get_check(h, "/api/nullargs/kept/signup", seen);

    /* A live WebSocket session, and one that is closing. */
    sa_ws(h, seen);
    for (int tries = 0;; tries++) {
        weft_hresp w;
        int empty;

        it_get(h, "/api/nullargs/kept/ws_close", &w);
        empty = w.status == 200 && w.body_len == 0;
        if (!empty || tries == 50) {
            weft_hresp_free(&w);
            break;
        }
        weft_hresp_free(&w);
        it_sleep_ms(100);
    }
    total += sa_get_check(h, "/api/nullargs/kept/ws_close", seen);

    /* A status outside 200..599 is answered as 500. */
    it_get_status(h, "/api/nullargs/status42", 500);

    for (size_t k = 0; k < SA_MEMBERS; k++)
        if (!seen[k]) {
            fprintf(stderr, "member slot %zu of struct weft_api has no "
                            "probe in tests/plugins/nullargs\n",
                    k);
            missing++;
        }
    ck_assert_msg(missing == 0, "%zu of %zu members of struct weft_api were "
                                "not called (slots listed above)",
                  missing, (size_t)SA_MEMBERS);
    ck_assert_msg(total > 2 * SA_MEMBERS, "only %zu probes", total);
    fprintf(stderr, "sdkargs: %zu probes, all %zu members of struct weft_api "
                    "covered\n",
            total, (size_t)SA_MEMBERS);

    /* Still up, still answering, still the same process. */
    sa_assert_serving(h);
    it_get_status(h, "/api/nullargs/kept/init", 200);
    it_stop_ok(h);
}
END_TEST

START_TEST(sdk_init_only_bad_arguments)
{
    weft_harness *h = sa_start("init_bad = true\n", 0);
    unsigned char seen[SA_MEMBERS];
    json_t *e;
    const char *le;
    weft_hresp r;
    char *ini;

    memset(seen, 0, sizeof(seen));
    e = it_plugin_entry(h, "nullargs");
    ck_assert_msg(e != NULL, "nullargs not in /api/plugins");
    ck_assert_msg(it_jstr(e, "state") != NULL &&
                      strcmp(it_jstr(e, "state"), "failed") == 0,
                  "a version whose init made refused calls serves: %s",
                  it_jstr(e, "state"));
    le = it_jstr(e, "last_error");
    ck_assert_msg(le != NULL && strstr(le, "route") != NULL &&
                      strstr(le, "topic") != NULL &&
                      strstr(le, "without a reason") != NULL &&
                      strstr(le, "without a step") != NULL,
                  "the refusal does not say why: %s", le ? le : "(null)");
    json_decref(e);
    sa_assert_serving(h);
    /* No version: its URL space says so (503), not "no such route". */
    it_get(h, "/api/nullargs/probe", &r);
    it_assert_error(&r, 503, "plugin_unavailable");
    weft_hresp_free(&r);

    /* A good version next: it reports what the refused one's calls
     * returned (kept in the state slot). */
    ini = it_strf("[database]\nenabled = false\n"
                  "[plugin.nullargs]\npath = %s\nenabled = true\n",
                  IT_NULLARGS_SO);
    it_write_config(h, ini);
    free(ini);
    ck_assert_int_eq(
        weft_harness_admin(h, "POST", "/admin/plugins/nullargs/reload", &r),
        0);
    ck_assert_msg(r.status == 200, "reload: %d %.300s", r.status, r.body);
    weft_hresp_free(&r);
    sa_get_check(h, "/api/nullargs/kept/init_bad", seen);
    sa_get_check(h, "/api/nullargs/kept/init", seen);
    sa_assert_serving(h);
    it_stop_ok(h);
}
END_TEST

/* ---- item 12: the request id in events ------------------------------- */

struct sa_sse {
    int fd;
    char buf[65536];
    size_t len;
};

/* The data line of the next "message" event, or NULL after timeout_ms. */
static char *sa_sse_message(struct sa_sse *s, int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;

    for (;;) {
        char *end = strstr(s->buf, "\n\n");

        if (end != NULL) {
            size_t n = (size_t)(end + 2 - s->buf);
            char *blk = strndup(s->buf, n), *data = NULL, *line;

            memmove(s->buf, s->buf + n, s->len - n + 1);
            s->len -= n;
            ck_assert_ptr_nonnull(blk);
            if (strstr(blk, "event: message\n") != NULL &&
                (line = strstr(blk, "\ndata: ")) != NULL)
                data = strndup(line + 7, strcspn(line + 7, "\n"));
            free(blk);
            if (data != NULL)
                return data;
            continue;
        }
        struct pollfd pfd = {s->fd, POLLIN, 0};
        long long left = deadline - it_now_ms();
        ssize_t got;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return NULL;
        ck_assert_msg(s->len < sizeof(s->buf) - 1, "SSE buffer full");
        got = recv(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len, 0);
        if (got <= 0)
            return NULL;
        s->len += (size_t)got;
        s->buf[s->len] = '\0';
    }
}

START_TEST(request_id_is_ours)
{
    char *extra = it_strf("[database]\nenabled = true\n" SA_AUTH
                          "[plugin.todo]\npath = %s\nenabled = true\n",
                          IT_TODO_SO);
    weft_harness *h = it_start(extra, 2);
    static const char reg[] =
        "{\"email\":\"rid@example.com\",\"username\":\"ridtest\","
        "\"display_name\":\"R\",\"password\":\"ridtest-pass-1\"}";
    char *auth, *req, *logp, *log, *by[2] = {NULL, NULL}, rid[128];
    char wrid[2][128];
    struct sa_sse s;
    json_int_t uid;
    weft_hresp r;
    json_t *j;
    int got = 0;

    free(extra);
    it_req(h, "POST", "/api/auth/register",
           "Content-Type: application/json\r\n", reg, sizeof(reg) - 1, &r);
    ck_assert_msg(r.status == 201, "register: %d %.300s", r.status, r.body);
    j = it_json(&r);
    auth = it_strf("Authorization: Bearer %s\r\n",
                   it_jstr(j, "access_token"));
    uid = json_integer_value(json_object_get(json_object_get(j, "user"), "id"));
    json_decref(j);
    weft_hresp_free(&r);

    memset(&s, 0, sizeof(s));
    s.fd = weft_harness_connect(h);
    ck_assert_int_ge(s.fd, 0);
    req = it_strf("GET /api/realtime?topic=todo.user.%lld HTTP/1.1\r\n"
                  "Host: x\r\nAccept: text/event-stream\r\n%s\r\n",
                  (long long)uid, auth);
    ck_assert_int_eq(weft_harness_send(s.fd, req, strlen(req)), 0);
    free(req);
    /* Wait for "subscribed" before changing anything. */
    for (long long dl = it_now_ms() + IT_READ_MS;
         strstr(s.buf, "event: subscribed") == NULL;) {
        struct pollfd pfd = {s.fd, POLLIN, 0};
        ssize_t n;

        ck_assert_msg(it_now_ms() < dl && poll(&pfd, 1, 1000) >= 0,
                      "not subscribed: %s", s.buf);
        n = recv(s.fd, s.buf + s.len, sizeof(s.buf) - 1 - s.len,
                 MSG_DONTWAIT);
        if (n > 0) {
            s.len += (size_t)n;
            s.buf[s.len] = '\0';
        }
    }
    {
        char *sub = strstr(s.buf, "event: subscribed");
        char *end = strstr(sub, "\n\n");
        size_t n = (size_t)(end + 2 - s.buf);

        memmove(s.buf, s.buf + n, s.len - n + 1);
        s.len -= n;
    }

    /* Two changes, the same client-chosen X-Request-Id. */
    for (int i = 0; i < 2; i++) {
        char *hdrs = it_strf("Content-Type: application/json\r\n"
                             "X-Request-Id: same-id-12\r\n%s",
                             auth);
        char *body = it_strf("{\"title\":\"list %d\"}", i);

        it_req(h, "POST", "/api/todo/lists", hdrs, body, strlen(body), &r);
        ck_assert_msg(r.status == 201, "POST lists: %d %.300s", r.status,
                      r.body);
        ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid,
                                        sizeof(rid)) != NULL &&
                          strcmp(rid, "same-id-12") == 0,
                      "the client's X-Request-Id is not echoed:\n%s", r.head);
        /* Checked after the events, which say more when this is missing. */
        if (weft_hresp_header(&r, "X-Weft-Request-Id", wrid[i],
                              sizeof(wrid[i])) == NULL)
            wrid[i][0] = '\0';
        weft_hresp_free(&r);
        free(hdrs);
        free(body);
    }

    /* The events: "by" is weftd's id of each request, never the client's. */
    while (got < 2) {
        char *data = sa_sse_message(&s, 10000);
        json_t *m, *d;
        const char *title;
        int k;

        ck_assert_msg(data != NULL, "only %d of 2 events arrived", got);
        m = json_loads(data, 0, NULL);
        ck_assert_msg(m != NULL, "event data is not JSON: %s", data);
        d = json_object_get(m, "data");
        title = json_string_value(
            json_object_get(json_object_get(d, "list"), "title"));
        if (title == NULL || strncmp(title, "list ", 5) != 0) {
            json_decref(m); /* "My list", made with the account */
            free(data);
            continue;
        }
        k = title[5] - '0';
        ck_assert_msg(k == 0 || k == 1, "event for %s", title);
        if (by[k] != NULL) { /* the outbox delivers at least once */
            json_decref(m);
            free(data);
            continue;
        }
        ck_assert_msg(it_jstr(d, "by") != NULL, "no \"by\": %s", data);
        by[k] = strdup(it_jstr(d, "by"));
        ck_assert_msg(strcmp(by[k], "same-id-12") != 0,
                      "an event's \"by\" is the client's X-Request-Id: %s",
                      data);
        json_decref(m);
        free(data);
        got++;
    }
    ck_assert_msg(strcmp(by[0], by[1]) != 0,
                  "two changes published the same \"by\": %s", by[0]);
    /* The client learns weftd's id from the answer. */
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(wrid[i][0] != '\0' && strcmp(wrid[i], "same-id-12") != 0,
                      "answer %d has no X-Weft-Request-Id of weftd's own", i);
        ck_assert_msg(strcmp(by[i], wrid[i]) == 0,
                      "\"by\" %s is not the request's X-Weft-Request-Id %s",
                      by[i], wrid[i]);
    }
    weft_harness_close(s.fd);

    /* The access log keeps both ids (a line per request, written when it
     * finished). */
    logp = it_strf("%s/weftd.log", weft_harness_dir(h));
    {
        FILE *f = fopen(logp, "r");
        size_t n = 0, cap = 1 << 20;

        ck_assert_msg(f != NULL, "no log at %s", logp);
        log = calloc(1, cap + 1);
        ck_assert_ptr_nonnull(log);
        n = fread(log, 1, cap, f);
        log[n] = '\0';
        fclose(f);
    }
    for (int i = 0; i < 2; i++) {
        char *want = it_strf("rid=%s client_rid=same-id-12 ", wrid[i]);

        ck_assert_msg(strstr(log, want) != NULL,
                      "the access log does not show both ids (%s)", want);
        free(want);
    }
    free(log);
    free(logp);
    it_stop_ok(h);
    free(by[0]);
    free(by[1]);
    free(auth);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration_sdkargs");
    TCase *tc = tcase_create("sdkargs");
    static const char *const clean[] = {"WEFT_AUTH_", "WEFT_DATABASE_",
                                        "WEFT_PLUGIN_", NULL};

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, sdk_null_and_bad_arguments);
    tcase_add_test(tc, sdk_init_only_bad_arguments);
    tcase_add_test(tc, request_id_is_ours);
    suite_add_tcase(s, tc);
    return it_run_suite_clean(s, clean);
}
