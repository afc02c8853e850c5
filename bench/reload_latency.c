/*
 * reload_latency - time from a plugin reload request to the new version
 * serving. Built and run by bench/http_hello.sh; standalone use:
 *
 *   cc -std=c11 -O2 -o reload_latency bench/reload_latency.c
 *   reload_latency PORT TOKEN_FILE VERSION [TIMEOUT_MS [POLL_US]]
 *
 * Opens two keep-alive connections to 127.0.0.1:PORT first (so connecting
 * is not timed), takes t0, sends POST /admin/plugins/hello/reload on one
 * (Authorization: Bearer <first line of TOKEN_FILE>) and, without waiting
 * for its answer, polls GET /api/hello/ping on the other until the body
 * names "VERSION". Prints one line:
 *
 *   RESULT <first_new_ms> <reply_ms> <reply_status> <polls> <reconnects>
 *
 * first_new_ms: t0 to the first ping answer with the new version; reply_ms:
 * t0 to the complete reload answer. Exit status 0 when both happened within
 * TIMEOUT_MS (default 10000), 1 otherwise (the reload answer is printed).
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RL_BUFSZ 65536

struct rl_conn {
    int fd;
    size_t len;
    char buf[RL_BUFSZ];
};

struct rl_resp {
    int status;
    const char *body;
    size_t body_len;
    size_t total; /* bytes of buf taken by this response */
};

static int rl_port;

static double rl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int rl_connect(struct rl_conn *c)
{
    struct sockaddr_in sa;
    int one = 1;

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd == -1)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)rl_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
}

static int rl_send(struct rl_conn *c, const char *s)
{
    size_t n = strlen(s), off = 0;
    ssize_t w;

    while (off < n) {
        w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Find a header value (case-insensitive name) within the head. */
static const char *rl_header(const char *head, size_t head_len,
                             const char *name)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + head_len;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
        p = eol + 1;
    }
    return NULL;
}

/* 1: complete response parsed into r; 0: need more bytes; -1: bad. */
static int rl_parse(struct rl_conn *c, struct rl_resp *r)
{
    const char *hend, *v;
    size_t head_len;

    c->buf[c->len] = '\0';
    hend = strstr(c->buf, "\r\n\r\n");
    if (hend == NULL)
        return c->len >= RL_BUFSZ - 1 ? -1 : 0;
    head_len = (size_t)(hend - c->buf) + 4;
    if (strncmp(c->buf, "HTTP/1.", 7) != 0)
        return -1;
    r->status = atoi(c->buf + 9);
    r->body = c->buf + head_len;
    if ((v = rl_header(c->buf, head_len, "content-length")) != NULL) {
        size_t cl = strtoul(v, NULL, 10);
        if (c->len < head_len + cl)
            return c->len >= RL_BUFSZ - 1 ? -1 : 0;
        r->body_len = cl;
        r->total = head_len + cl;
        return 1;
    }
    if ((v = rl_header(c->buf, head_len, "transfer-encoding")) != NULL &&
        strncasecmp(v, "chunked", 7) == 0) {
        /* Small bodies only: the raw chunked text is good enough to search. */
        const char *last = strstr(r->body, "\r\n0\r\n\r\n");
        if (last == NULL && strncmp(r->body, "0\r\n\r\n", 5) != 0)
            return c->len >= RL_BUFSZ - 1 ? -1 : 0;
        r->body_len = last ? (size_t)(last - r->body) + 7 : 5;
        r->total = head_len + r->body_len;
        return 1;
    }
    if (r->status == 204 || r->status == 304) {
        r->body_len = 0;
        r->total = head_len;
        return 1;
    }
    return -1; /* close-delimited bodies are not expected from weftd */
}

/*
 * Read one response; wait at most timeout_ms (0: only what is already
 * there). 1: got it, 0: not yet (only with timeout 0 or timeout), -1: the
 * connection failed or closed.
 */
static int rl_read(struct rl_conn *c, struct rl_resp *r, int timeout_ms)
{
    struct pollfd pfd;
    double deadline = rl_now_ms() + timeout_ms;
    ssize_t n;
    int rc, left;

    for (;;) {
        rc = rl_parse(c, r);
        if (rc != 0)
            return rc;
        left = (int)(deadline - rl_now_ms());
        pfd.fd = c->fd;
        pfd.events = POLLIN;
        rc = poll(&pfd, 1, left > 0 ? left : 0);
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc == 0 ? 0 : -1;
        n = recv(c->fd, c->buf + c->len, RL_BUFSZ - 1 - c->len, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        c->len += (size_t)n;
    }
}

static void rl_consume(struct rl_conn *c, const struct rl_resp *r)
{
    memmove(c->buf, c->buf + r->total, c->len - r->total);
    c->len -= r->total;
}

static int rl_has_version(const struct rl_resp *r, const char *quoted)
{
    char tmp[RL_BUFSZ];
    size_t n = r->body_len < sizeof(tmp) - 1 ? r->body_len : sizeof(tmp) - 1;

    memcpy(tmp, r->body, n);
    tmp[n] = '\0';
    return strstr(tmp, "\"version\"") != NULL && strstr(tmp, quoted) != NULL;
}

int main(int argc, char **argv)
{
    static struct rl_conn ping, rel;
    static const char get[] = "GET /api/hello/ping HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n\r\n";
    char token[512], post[1024], quoted[256];
    struct rl_resp r;
    struct timespec pause = {0, 0};
    double t0, t_new = -1, t_reply = -1, timeout_ms = 10000;
    int reply_status = 0, polls = 0, reconnects = 0, rc;
    FILE *f;

    if (argc < 4) {
        fprintf(stderr, "usage: %s PORT TOKEN_FILE VERSION [TIMEOUT_MS "
                        "[POLL_US]]\n", argv[0]);
        return 2;
    }
    rl_port = atoi(argv[1]);
    if (argc > 4)
        timeout_ms = atof(argv[4]);
    if (argc > 5)
        pause.tv_nsec = atol(argv[5]) * 1000L;
    if ((f = fopen(argv[2], "r")) == NULL || fgets(token, sizeof(token), f) == NULL) {
        fprintf(stderr, "reload_latency: cannot read token from %s\n", argv[2]);
        return 2;
    }
    fclose(f);
    token[strcspn(token, "\r\n")] = '\0';
    snprintf(quoted, sizeof(quoted), "\"%s\"", argv[3]);
    snprintf(post, sizeof(post),
             "POST /admin/plugins/hello/reload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n", token);

    /* Connect both and warm the ping connection before the clock starts. */
    if (rl_connect(&ping) == -1 || rl_connect(&rel) == -1 ||
        rl_send(&ping, get) == -1 || rl_read(&ping, &r, 5000) != 1) {
        fprintf(stderr, "reload_latency: cannot reach 127.0.0.1:%d\n", rl_port);
        return 1;
    }
    rl_consume(&ping, &r);

    t0 = rl_now_ms();
    if (rl_send(&rel, post) == -1) {
        fprintf(stderr, "reload_latency: cannot send the reload request\n");
        return 1;
    }
    while (t_new < 0 || t_reply < 0) {
        if (rl_now_ms() - t0 > timeout_ms)
            break;
        if (t_reply < 0) {
            rc = rl_read(&rel, &r, t_new < 0 ? 0 : 100);
            if (rc == 1) {
                t_reply = rl_now_ms();
                reply_status = r.status;
                if (r.status != 200)
                    fprintf(stderr, "reload_latency: reload answered %d: %.*s\n",
                            r.status, (int)r.body_len, r.body);
                rl_consume(&rel, &r);
            } else if (rc == -1) {
                fprintf(stderr, "reload_latency: reload connection failed\n");
                return 1;
            }
        }
        if (t_new >= 0)
            continue;
        polls++;
        if (rl_send(&ping, get) == -1 || (rc = rl_read(&ping, &r, 5000)) != 1) {
            /* A reload must drop no connection: count it, reconnect. */
            close(ping.fd);
            reconnects++;
            if (rl_connect(&ping) == -1) {
                fprintf(stderr, "reload_latency: reconnect failed\n");
                return 1;
            }
            continue;
        }
        if (r.status == 200 && rl_has_version(&r, quoted))
            t_new = rl_now_ms();
        rl_consume(&ping, &r);
        if (t_new < 0 && pause.tv_nsec > 0)
            nanosleep(&pause, NULL);
    }
    printf("RESULT %.3f %.3f %d %d %d\n", t_new < 0 ? -1.0 : t_new - t0,
           t_reply < 0 ? -1.0 : t_reply - t0, reply_status, polls, reconnects);
    if (t_new < 0 || t_reply < 0) {
        fprintf(stderr, "reload_latency: %s within %.0f ms\n",
                t_new < 0 ? "new version not served" : "no reload answer",
                timeout_ms);
        return 1;
    }
    return reply_status == 200 ? 0 : 1;
}
