/*
 * test_limits.c - per-address limits against a real weftd: one address
 * filling up idle connections, taking the last free slots, opening
 * connections too fast or too many SSE streams cannot lock other addresses
 * out; behind a trusted proxy the forwarded address counts, from anyone
 * else the forwarding header is ignored.
 *
 * Other clients come from 127.0.0.2 and 127.0.0.3: the client socket is
 * bound to that loopback address before it connects to weftd on 127.0.0.1.
 */
#include "it_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PING "GET /api/hello/ping HTTP/1.1\r\nHost: x\r\n\r\n"

/* A blocking socket from `src` to weftd. The connect itself succeeds even
 * when weftd then refuses (the kernel completes the handshake). */
static int connect_from(weft_harness *h, const char *src)
{
    struct sockaddr_in a = {0}, b = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    b.sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, src, &b.sin_addr), 1);
    ck_assert_msg(bind(fd, (struct sockaddr *)&b, sizeof(b)) == 0,
                  "bind %s: %s", src, strerror(errno));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)weft_harness_port(h));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
                  "connect from %s: %s", src, strerror(errno));
    return fd;
}

/* Send `req` on fd and read the answer: its status, or -1 when the
 * connection was closed without one. */
static int send_req(int fd, const char *req, weft_hresp *out)
{
    weft_hresp r;
    int st;

    if (weft_harness_send(fd, req, strlen(req)) != 0)
        return -1;
    if (weft_hresp_read(fd, &r, IT_READ_MS) != 0)
        return -1;
    st = r.status;
    if (out != NULL)
        *out = r;
    else
        weft_hresp_free(&r);
    return st;
}

/* One request from `src` on a new connection: the status or -1. */
static int req_from(weft_harness *h, const char *src, const char *req,
                    weft_hresp *out)
{
    int fd = connect_from(h, src), st = send_req(fd, req, out);

    weft_harness_close(fd);
    return st;
}

/* Has weftd closed fd (EOF or reset) within ms? */
static int closed_within(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c[64];
    ssize_t n;
    int rc;

    do {
        rc = poll(&p, 1, ms);
    } while (rc == -1 && errno == EINTR);
    if (rc != 1)
        return 0;
    n = recv(fd, c, sizeof(c), MSG_DONTWAIT | MSG_PEEK);
    return n == 0 || (n == -1 && errno == ECONNRESET);
}

/* Open n idle connections from src; how many weftd closed at once. */
static int open_idle(weft_harness *h, const char *src, int *fds, int n)
{
    int closed = 0;

    for (int i = 0; i < n; i++)
        fds[i] = connect_from(h, src);
    for (int i = 0; i < n; i++)
        if (closed_within(fds[i], i == 0 ? 1500 : 50)) {
            weft_harness_close(fds[i]);
            fds[i] = -1;
            closed++;
        }
    return closed;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            weft_harness_close(fds[i]);
}

/* Every one of `n` probes from src is answered 200. */
static void probes_served(weft_harness *h, const char *src, int n)
{
    for (int i = 0; i < n; i++) {
        int st = req_from(h, src, PING, NULL);
        ck_assert_msg(st == 200, "probe %d of %d from %s: got %d", i + 1, n,
                      src, st);
    }
}

/* weft_http_refused_total{reason=...}, read from 127.0.0.2. */
static double refused(weft_harness *h, const char *reason)
{
    const char *labels[2];
    char *lab = it_strf("reason=\"%s\"", reason);
    weft_hresp r;
    double v = -1;

    labels[0] = lab;
    labels[1] = NULL;
    ck_assert_int_eq(req_from(h, "127.0.0.2",
                              "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r),
                     200);
    ck_assert_msg(it_metric(r.body, "weft_http_refused_total", labels, &v),
                  "no weft_http_refused_total{%s} in /metrics", lab);
    weft_hresp_free(&r);
    free(lab);
    return v;
}

/* Idle sockets from one address up to and over its limit (and over the
 * whole process's): the ones over are closed at once, the rest stay usable,
 * and another address is served every time. */
START_TEST(test_idle_connections_per_address)
{
    weft_harness *h = it_start_hello("[server]\nmax_connections = 40\n"
                                     "max_connections_per_address = 20\n"
                                     "reserved_connections_percent = 0\n"
                                     "trusted_proxies =\n"
                                     "connection_rate_per_address = 0\n",
                                     2);
    int fds[45], closed;
    char *log;

    closed = open_idle(h, "127.0.0.1", fds, 45);
    probes_served(h, "127.0.0.2", 20);
    ck_assert_msg(closed == 25, "expected 25 of 45 refused, %d were", closed);
    /* the accepted ones work */
    for (int i = 0, n = 0; i < 45 && n < 3; i++)
        if (fds[i] >= 0) {
            ck_assert_int_eq(send_req(fds[i], PING, NULL), 200);
            n++;
        }
    ck_assert(refused(h, "per_address") >= 25);
    /* closing some frees the address's slots again */
    for (int i = 0, n = 0; i < 45 && n < 5; i++)
        if (fds[i] >= 0) {
            weft_harness_close(fds[i]);
            fds[i] = -1;
            n++;
        }
    it_sleep_ms(200);
    probes_served(h, "127.0.0.1", 5);
    close_all(fds, 45);
    log = weft_harness_log(h);
    ck_assert_msg(strstr(log, "refused a connection from 127.0.0.1 "
                              "(per_address)") != NULL,
                  "no refusal in the log");
    /* rate-limited: 25+ refusals, one line */
    ck_assert_msg(strstr(strstr(log, "(per_address)") + 1, "(per_address)") ==
                      NULL,
                  "refusals were logged more than once");
    free(log);
    it_stop_ok(h);
}
END_TEST

/* Two addresses each under their limit cannot take the last free slots:
 * the reserve is kept for addresses holding few connections. */
START_TEST(test_reserve_for_light_addresses)
{
    weft_harness *h = it_start_hello("[server]\nmax_connections = 40\n"
                                     "max_connections_per_address = 30\n"
                                     "reserved_connections_percent = 25\n"
                                     "trusted_proxies =\n"
                                     "connection_rate_per_address = 0\n",
                                     2);
    int a[30], b[20], closed;

    closed = open_idle(h, "127.0.0.1", a, 30);
    ck_assert_msg(closed == 0, "%d of the first 30 refused", closed);
    /* 10 slots are left, all in the reserve: .3 gets 8 (WPEER_LIGHT) */
    closed = open_idle(h, "127.0.0.3", b, 20);
    probes_served(h, "127.0.0.2", 10);
    ck_assert_msg(closed == 12, "expected 12 of 20 refused, %d were", closed);
    ck_assert(refused(h, "reserve") >= 12);
    close_all(a, 30);
    close_all(b, 20);
    it_stop_ok(h);
}
END_TEST

/* New connections per second: past the burst, one address's new
 * connections are refused until the bucket refills; others are served. */
START_TEST(test_connection_rate)
{
    weft_harness *h = it_start_hello("[server]\n"
                                     "trusted_proxies =\n"
                                     "connection_rate_per_address = 4\n"
                                     "connection_burst_per_address = 5\n",
                                     2);
    int ok = 0, refusedn = 0;

    /* the harness's readiness probes came from 127.0.0.1: let the bucket
     * fill up again */
    it_sleep_ms(1500);
    for (int i = 0; i < 15; i++) {
        if (req_from(h, "127.0.0.1", PING, NULL) == 200)
            ok++;
        else
            refusedn++;
    }
    /* the burst, plus what trickled in meanwhile (4 per second) */
    ck_assert_msg(ok >= 5 && ok <= 7 && refusedn >= 8,
                  "15 quick connections: %d served, %d refused", ok, refusedn);
    /* .3 for the probes: .2 reads the metrics, each has its own bucket */
    probes_served(h, "127.0.0.3", 5);
    ck_assert(refused(h, "rate") >= 8);
    it_sleep_ms(1300);
    probes_served(h, "127.0.0.1", 4);
    it_stop_ok(h);
}
END_TEST

static char *rttest_ini(const char *more)
{
    char *hello = it_hello_section(IT_HELLO_SO, NULL);
    char *s = it_strf("%s[plugin.rttest]\npath = %s\nenabled = true\n"
                      "[server]\n%s",
                      hello, IT_RTTEST_SO, more);

    free(hello);
    return s;
}

#define SSE "GET /api/realtime?topic=rttest.public.a HTTP/1.1\r\nHost: x\r\n\r\n"
#define WS                                                                     \
    "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"             \
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"  \
    "Sec-WebSocket-Version: 13\r\n\r\n"

/* Send `req` (an SSE request) and read the head of its answer on fd: its
 * status, or -1. */
static int sse_open_req(int fd, const char *req)
{
    char buf[2048];
    size_t n = 0;
    int st = -1;

    if (weft_harness_send(fd, req, strlen(req)) != 0)
        return -1;
    while (n < sizeof(buf) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t k;
        if (poll(&p, 1, IT_READ_MS) != 1)
            return -1;
        k = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            break;
    }
    if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1)
        return -1;
    if (st == 200)
        ck_assert_msg(it_contains_ci(buf, "text/event-stream"),
                      "200 but not a stream: %s", buf);
    else if (st >= 400)
        ck_assert_msg(strstr(buf, "too_many_streams") != NULL ||
                          it_contains_ci(buf, "content-length"),
                      "refusal without a body: %s", buf);
    return st;
}

static int sse_open(int fd)
{
    return sse_open_req(fd, SSE);
}

/* Anonymous SSE streams on a public topic from one address: those over
 * max_streams_per_address are answered 429; another address still gets
 * its stream and its requests. */
START_TEST(test_sse_streams_per_address)
{
    char *ini = rttest_ini("max_connections = 30\n"
                           "max_connections_per_address = 25\n"
                           "max_streams_per_address = 5\n"
                           "trusted_proxies =\n"
                           "connection_rate_per_address = 0\n");
    weft_harness *h = it_start(ini, 2);
    int fds[25], ok = 0, refusedn = 0, other, last429 = -1;

    for (int i = 0; i < 25; i++) {
        int st;
        fds[i] = connect_from(h, "127.0.0.1");
        st = sse_open(fds[i]);
        if (st == 200)
            ok++;
        else if (st == 429)
            refusedn++, last429 = i;
        else
            ck_abort_msg("stream %d: status %d", i, st);
    }
    ck_assert_msg(ok == 5 && refusedn == 20,
                  "25 streams from one address: %d opened, %d refused", ok,
                  refusedn);
    other = connect_from(h, "127.0.0.2");
    ck_assert_int_eq(sse_open(other), 200);
    /* WebSocket sessions share the count with SSE streams */
    {
        int ws1, ws2;
        /* .1 holds all its 25 connections: give one back first */
        weft_harness_close(fds[last429]);
        fds[last429] = connect_from(h, "127.0.0.2"); /* closed below */
        it_sleep_ms(200);
        ws1 = connect_from(h, "127.0.0.1");
        ck_assert_int_eq(sse_open_req(ws1, WS), 429);
        weft_harness_close(ws1);
        ws2 = connect_from(h, "127.0.0.2");
        ck_assert_int_eq(sse_open_req(ws2, WS), 101);
        weft_harness_close(ws2);
    }
    probes_served(h, "127.0.0.2", 10);
    ck_assert(refused(h, "streams") >= 21);
    /* a closed stream frees its place */
    for (int i = 0; i < 25; i++)
        weft_harness_close(fds[i]);
    it_sleep_ms(300);
    fds[0] = connect_from(h, "127.0.0.1");
    ck_assert_int_eq(sse_open(fds[0]), 200);
    weft_harness_close(fds[0]);
    weft_harness_close(other);
    free(ini);
    it_stop_ok(h);
}
END_TEST

static char *xff_req(const char *client)
{
    return it_strf("GET /api/hello/ping HTTP/1.1\r\nHost: x\r\n"
                   "X-Forwarded-For: 198.51.100.99, %s\r\n\r\n",
                   client);
}

/* From a trusted proxy (here loopback's 127.0.0.1), the
 * forwarded address is the one limited, while the proxy's connection
 * carries its request (an idle pool belongs to no client), and the proxy
 * itself is not limited; from an untrusted peer the header is ignored. */
START_TEST(test_trusted_proxy)
{
    weft_harness *h = it_start_hello("[server]\n"
                                     "max_connections_per_address = 3\n"
                                     "trusted_proxies = 127.0.0.1\n"
                                     "connection_rate_per_address = 0\n",
                                     2);
    char *r7 = xff_req("203.0.113.7"), *r8 = xff_req("203.0.113.8");
    const char *slow = "POST /api/hello/echo HTTP/1.1\r\nHost: x\r\n"
                       "X-Forwarded-For: 203.0.113.7\r\n"
                       "Content-Type: application/json\r\n"
                       "Content-Length: 7\r\n\r\n";
    int fds[6];
    char ra[16];
    weft_hresp r;

    /* six pooled proxy connections, each has carried a request of .7:
     * finished requests hold nothing */
    for (int i = 0; i < 6; i++) {
        fds[i] = connect_from(h, "127.0.0.1");
        ck_assert_int_eq(send_req(fds[i], r7, NULL), 200);
    }
    /* three requests of .7 in flight (bodies not sent yet) */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(weft_harness_send(fds[i], slow, strlen(slow)), 0);
    it_sleep_ms(300);
    ck_assert_int_eq(send_req(fds[3], r7, &r), 429);
    it_assert_error(&r, 429, "too_many_connections");
    ck_assert_ptr_nonnull(weft_hresp_header(&r, "Retry-After", ra, sizeof(ra)));
    weft_hresp_free(&r);
    ck_assert_msg(closed_within(fds[3], 3000), "429 kept the connection");
    /* another client through the same proxy, and the proxy itself */
    ck_assert_int_eq(send_req(fds[4], r8, NULL), 200);
    probes_served(h, "127.0.0.1", 5);
    /* one of .7's requests ends: its place is free again */
    ck_assert_int_eq(weft_harness_send(fds[0], "{\"a\":1}", 7), 0);
    ck_assert_int_eq(send_req(fds[0], "", NULL), 200);
    ck_assert_int_eq(send_req(fds[5], r7, NULL), 200);
    for (int i = 0; i < 6; i++)
        weft_harness_close(fds[i]);

    /* 127.0.0.2 is no proxy: its X-Forwarded-For counts for nothing, each
     * connection is 127.0.0.2's own */
    {
        int u[4], closed;
        char *rq[3] = {xff_req("203.0.113.20"), xff_req("203.0.113.21"),
                       xff_req("203.0.113.22")};
        for (int i = 0; i < 3; i++) {
            u[i] = connect_from(h, "127.0.0.2");
            ck_assert_int_eq(send_req(u[i], rq[i], NULL), 200);
            free(rq[i]);
        }
        closed = open_idle(h, "127.0.0.2", &u[3], 1);
        ck_assert_msg(closed == 1, "a 4th connection from 127.0.0.2 was kept");
        for (int i = 0; i < 3; i++)
            weft_harness_close(u[i]);
    }
    free(r7);
    free(r8);
    it_stop_ok(h);
}
END_TEST

/* Streams through a trusted proxy count for the forwarded client; the
 * proxy's own streams are not limited. */
START_TEST(test_proxy_streams)
{
    char *ini = rttest_ini("max_streams_per_address = 2\n"
                           "trusted_proxies = 127.0.0.1\n"
                           "connection_rate_per_address = 0\n");
    weft_harness *h = it_start(ini, 2);
    const char *fwd = "GET /api/realtime?topic=rttest.public.a HTTP/1.1\r\n"
                      "Host: x\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n";
    int fds[8];

    for (int i = 0; i < 3; i++) {
        fds[i] = connect_from(h, "127.0.0.1");
        ck_assert_int_eq(sse_open_req(fds[i], fwd), i < 2 ? 200 : 429);
    }
    for (int i = 3; i < 8; i++) {
        fds[i] = connect_from(h, "127.0.0.1");
        ck_assert_int_eq(sse_open(fds[i]), 200);
    }
    for (int i = 0; i < 8; i++)
        weft_harness_close(fds[i]);
    free(ini);
    it_stop_ok(h);
}
END_TEST

/* The keys are checked like every other: a bad CIDR block stops weftd. */
START_TEST(test_bad_trusted_proxies)
{
    char *dir = it_mkdtemp(), *cfg = it_strf("%s/weft.ini", dir), *out, *err;
    char *argv[] = {(char *)it_weftd(), "--check-config", cfg, NULL};
    int st;

    it_write_file(cfg, "[server]\nlisten = 127.0.0.1:8080\n"
                       "trusted_proxies = 10.0.0.0/8 192.0.2.7, fd00::/8\n"
                       "proxy_header = forwarded\n"
                       "max_connections_per_address = 0\n"
                       "max_streams_per_address = 10\n"
                       "connection_rate_per_address = 5\n"
                       "connection_burst_per_address = 5\n"
                       "reserved_connections_percent = 20\n");
    st = it_run(argv, &out, &err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "--check-config refused valid limits: %s%s", out, err);
    free(out);
    free(err);
    it_write_file(cfg, "[server]\nlisten = 127.0.0.1:8080\n"
                       "trusted_proxies = 10.0.0.0/8, 10.0.0.1/33\n"
                       "proxy_header = via\n");
    st = it_run(argv, &out, &err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
                  "--check-config accepted it: %s%s", out, err);
    ck_assert_msg(strstr(err, "trusted_proxies") != NULL &&
                      strstr(err, "prefix length out of range") != NULL &&
                      strstr(err, "expected x-forwarded-for or forwarded") !=
                          NULL,
                  "both keys should be named, with the reason: %s", err);
    free(out);
    free(err);
    it_rmtree(dir);
    free(cfg);
    free(dir);
}
END_TEST

static Suite *limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_idle_connections_per_address);
    tcase_add_test(tc, test_reserve_for_light_addresses);
    tcase_add_test(tc, test_connection_rate);
    tcase_add_test(tc, test_sse_streams_per_address);
    tcase_add_test(tc, test_trusted_proxy);
    tcase_add_test(tc, test_proxy_streams);
    tcase_add_test(tc, test_bad_trusted_proxies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return it_run_suite(limits_suite());
}
