/*
 * The database pool under a stalled cluster and under clients that vanish
 * (host/db.c), against a real weftd with its embedded PostgreSQL and the
 * referral and todo plugins.
 *
 * The cluster is stalled by stopping every one of its processes (SIGSTOP,
 * postmaster first so it spawns nothing meanwhile), which is what a hung
 * disk or a frozen VM looks like from weftd: sockets stay open, nothing
 * answers. Clients vanish by resetting their connections (SO_LINGER 0),
 * timed around [database] query_timeout so that a client's departure and
 * its statement's timeout land on the same turn of the loop.
 *
 * Under the ASan build (build-asan) any use after free in the completion
 * path aborts weftd; in the plain build it dies of SIGSEGV. Either way
 * /healthz stops answering and weftd's exit status is not 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "it_common.h"

#ifndef IT_TODO_SO
#error "IT_TODO_SO must be defined by the build"
#endif
#ifndef IT_REFERRAL_SO
#error "IT_REFERRAL_SO must be defined by the build"
#endif

#define DS_JSON "Content-Type: application/json\r\n"
#define DS_AUTH                                                                \
    "argon2_opslimit = 1\nargon2_memlimit = 64k\n"                             \
    "register_rate = 10000\nlogin_rate = 10000\n"
#define DS_MAXC 256
/* How long a read waits for its answer while the cluster is stopped. */
#define DS_READ_MS 8000

/* ---- weftd ---------------------------------------------------------------- */

struct ds_env {
    weft_harness *h;
    char *dir; /* the plugins' copies and todo's asset folder */
};

/* weftd with both plugins; todo is loaded from a copy next to a todo.web
 * folder holding widget.js, so a static file exists without the web
 * client's build. */
static void ds_start(struct ds_env *e, const char *db_extra,
                     const char *server_extra)
{
    char *so, *web, *js, *extra;

    e->dir = it_mkdtemp();
    so = it_strf("%s/todo.so", e->dir);
    web = it_strf("%s/todo.web", e->dir);
    js = it_strf("%s/widget.js", web);
    it_copy_file(IT_TODO_SO, so);
    ck_assert_msg(mkdir(web, 0755) == 0, "mkdir %s: %s", web, strerror(errno));
    it_write_file(js, "export const widget = 'todo';\n");
    extra = it_strf("[database]\nenabled = true\n%s"
                    "[auth]\n" DS_AUTH "%s%s"
                    "[plugin.todo]\npath = %s\nenabled = true\n"
                    "[plugin.referral]\npath = %s\nenabled = true\n",
                    db_extra, server_extra != NULL ? "[server]\n" : "",
                    server_extra != NULL ? server_extra : "", so,
                    IT_REFERRAL_SO);
    e->h = it_start(extra, 2);
    free(extra);
    free(js);
    free(web);
    free(so);
}

/* Stop weftd; it must exit 0 with no sanitizer report in its log. */
static void ds_stop(struct ds_env *e)
{
    char *log = weft_harness_log(e->h);

    ck_assert_msg(log != NULL, "no log");
    it_stop_ok(e->h);
    ck_assert_msg(strstr(log, "AddressSanitizer") == NULL &&
                      strstr(log, "runtime error") == NULL,
                  "sanitizer report:\n%s", log);
    /* db.c refuses a second outcome for one operation, and says so. */
    ck_assert_msg(strstr(log, "decided twice") == NULL,
                  "an operation was completed twice:\n%s", log);
    free(log);
    it_rmtree(e->dir);
    free(e->dir);
}

/* The end of weftd's log on stderr (a sanitizer report, a crash). */
static void ds_dump_log(struct ds_env *e)
{
    char *log = weft_harness_log(e->h);
    size_t n = log != NULL ? strlen(log) : 0;

    fprintf(stderr, "---- weftd log (end) ----\n%s\n----\n",
            n > 12000 ? log + n - 12000 : (log != NULL ? log : ""));
    free(log);
}

/* weftd is alive and its loops answer. */
static void ds_alive(struct ds_env *e, const char *when)
{
    weft_hresp r;
    int ok = kill(weft_harness_pid(e->h), 0) == 0 &&
             weft_harness_request(e->h, "GET", "/healthz", NULL, NULL, 0,
                                  &r) == 0;

    if (!ok)
        ds_dump_log(e);
    ck_assert_msg(ok, "weftd died or does not answer %s", when);
    ck_assert_msg(r.status == 200, "/healthz %d %s", r.status, when);
    weft_hresp_free(&r);
}

/* ---- the cluster: stop and continue every process ---------------------- */

struct ds_pg {
    pid_t pids[256];
    int n;
};

static pid_t ds_postmaster(struct ds_env *e)
{
    char *path = it_strf("%s/data/pg/data/postmaster.pid",
                         weft_harness_dir(e->h));
    FILE *f = fopen(path, "r");
    long pid = -1;

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_msg(fscanf(f, "%ld", &pid) == 1 && pid > 1, "no pid in %s", path);
    fclose(f);
    free(path);
    return (pid_t)pid;
}

static pid_t ds_ppid(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    long ppid = -1;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) state ppid": comm may hold spaces and parentheses. */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1, " %*c %ld", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/* The cluster stopped now, continued when a failed check ends the test's
 * process (so that weftd can stop it). */
static struct ds_pg *ds_stopped;

static void ds_pg_cont(struct ds_pg *pg);

static void ds_atexit(void)
{
    if (ds_stopped != NULL)
        ds_pg_cont(ds_stopped);
}

static void ds_pg_stop(struct ds_env *e, struct ds_pg *pg)
{
    DIR *d;
    struct dirent *de;
    static int registered;

    if (!registered && atexit(ds_atexit) == 0)
        registered = 1;
    ds_stopped = pg;

    pg->n = 0;
    pg->pids[pg->n++] = ds_postmaster(e);
    ck_assert_int_eq(kill(pg->pids[0], SIGSTOP), 0);
    d = opendir("/proc");
    ck_assert(d != NULL);
    while ((de = readdir(d)) != NULL && pg->n < 256) {
        long pid = strtol(de->d_name, NULL, 10);
        if (pid > 1 && ds_ppid((pid_t)pid) == pg->pids[0]) {
            pg->pids[pg->n++] = (pid_t)pid;
            (void)kill((pid_t)pid, SIGSTOP);
        }
    }
    closedir(d);
    ck_assert_msg(pg->n > 1, "no children of the postmaster found");
}

static void ds_pg_cont(struct ds_pg *pg)
{
    for (int i = pg->n - 1; i >= 0; i--)
        (void)kill(pg->pids[i], SIGCONT);
    pg->n = 0;
    ds_stopped = NULL;
}

/* ---- users and data --------------------------------------------------- */

/* Register a user; returns "Authorization: Bearer ...\r\n" (malloc'd). */
static char *ds_user(struct ds_env *e, const char *name)
{
    char *body = it_strf("{\"email\":\"%s@example.com\",\"username\":\"%s\","
                         "\"display_name\":\"%s\",\"password\":\"%s-pass-1\"}",
                         name, name, name, name);
    weft_hresp r;
    json_t *j;
    char *auth;

    it_req(e->h, "POST", "/api/auth/register", DS_JSON, body, strlen(body), &r);
    ck_assert_msg(r.status == 201, "register: %d %.300s", r.status, r.body);
    j = it_json(&r);
    ck_assert(it_jstr(j, "access_token") != NULL);
    auth = it_strf("Authorization: Bearer %s\r\n", it_jstr(j, "access_token"));
    json_decref(j);
    weft_hresp_free(&r);
    free(body);
    return auth;
}

/* A list with `n` items, added over one keep-alive connection. */
static long long ds_list(struct ds_env *e, const char *auth, int n)
{
    const char *lb = "{\"title\":\"big\"}";
    weft_hresp r;
    json_t *j;
    long long id;
    int fd;
    char *hdrs = it_strf(DS_JSON "%s", auth);

    it_req(e->h, "POST", "/api/todo/lists", hdrs, lb, strlen(lb), &r);
    ck_assert_msg(r.status == 201, "list: %d %.300s", r.status, r.body);
    j = it_json(&r);
    id = (long long)json_integer_value(json_object_get(j, "id"));
    ck_assert(id > 0);
    json_decref(j);
    weft_hresp_free(&r);
    fd = weft_harness_connect(e->h);
    ck_assert(fd >= 0);
    for (int i = 0; i < n; i++) {
        char body[64];
        char *req;
        int len = snprintf(body, sizeof(body), "{\"text\":\"item %d\"}", i);
        req = it_strf("POST /api/todo/lists/%lld/items HTTP/1.1\r\n"
                      "Host: t\r\n%sContent-Length: %d\r\n\r\n%s",
                      id, hdrs, len, body);
        ck_assert_int_eq(weft_harness_send(fd, req, strlen(req)), 0);
        ck_assert_int_eq(weft_hresp_read(fd, &r, IT_READ_MS), 0);
        ck_assert_msg(r.status == 201, "item %d: %d %.300s", i, r.status,
                      r.body);
        weft_hresp_free(&r);
        free(req);
    }
    weft_harness_close(fd);
    free(hdrs);
    return id;
}

/* ---- a small load client ------------------------------------------------ */

struct ds_conn {
    int fd;
    long long reset_at;
};

static unsigned ds_seed = 12345;

static long long ds_rand(long long lo, long long hi)
{
    ds_seed = ds_seed * 1103515245u + 12345u;
    return lo + (long long)((ds_seed >> 8) % (unsigned)(hi - lo + 1));
}

static int ds_open(struct ds_env *e, const char *req, size_t len)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)weft_harness_port(e->h));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = errno;
        ds_dump_log(e);
        ck_abort_msg("connect: %s (weftd died?)", strerror(err));
    }
    /* Blocking for the request (it fits the socket buffer), then not. */
    ck_assert(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
    ck_assert(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
    return fd;
}

/* Close with an RST instead of a FIN. */
static void ds_reset(int fd)
{
    struct linger lg = {1, 0};

    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/*
 * `n` connections, each sending `req` (one or more pipelined requests) and
 * reset after a random delay in [lo, hi] ms; while `refill`, a reset
 * connection is replaced by a new one, until `until` (ms, it_now_ms()).
 * Answers are read and thrown away.
 */
static void ds_blast(struct ds_env *e, const char *req, int n, long long lo,
                     long long hi, int refill, long long until)
{
    struct ds_conn c[DS_MAXC];
    struct pollfd pf[DS_MAXC];
    size_t len = strlen(req);
    char buf[65536];
    int live = n;

    ck_assert(n <= DS_MAXC);
    for (int i = 0; i < n; i++) {
        c[i].fd = ds_open(e, req, len);
        c[i].reset_at = it_now_ms() + ds_rand(lo, hi);
    }
    while (live > 0) {
        long long now = it_now_ms();
        for (int i = 0; i < n; i++) {
            if (c[i].fd >= 0 && now >= c[i].reset_at) {
                ds_reset(c[i].fd);
                c[i].fd = -1;
                live--;
                if (refill && now < until) {
                    c[i].fd = ds_open(e, req, len);
                    c[i].reset_at = now + ds_rand(lo, hi);
                    live++;
                }
            }
            pf[i].fd = c[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        if (live == 0)
            break;
        (void)poll(pf, (nfds_t)n, 5);
        for (int i = 0; i < n; i++)
            if (c[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                while (read(c[i].fd, buf, sizeof(buf)) > 0)
                    ;
    }
}

/* ---- tests ------------------------------------------------------------ */

/* The first scenario: anonymous leaderboard reads on 100
 * connections while the cluster is stopped, reset around query_timeout
 * (1 s here), cycle after cycle for more than 30 s. */
START_TEST(test_reset_during_stall)
{
    struct ds_env e;
    struct ds_pg pg;
    const char *req = "GET /api/referral/leaderboard HTTP/1.1\r\nHost: t\r\n\r\n"
                      "GET /api/referral/leaderboard HTTP/1.1\r\nHost: t\r\n\r\n";
    long long end;
    int cycles = 0;

    ds_start(&e, "query_timeout = 1s\npool_size = 2\n", NULL);
    it_get_status(e.h, "/api/referral/leaderboard", 200);
    end = it_now_ms() + 32000;
    while (it_now_ms() < end) {
        ds_pg_stop(&e, &pg);
        ds_blast(&e, req, 100, 700, 1300, 0, 0);
        ds_alive(&e, "while the cluster is stopped");
        ds_pg_cont(&pg);
        it_sleep_ms(200);
        cycles++;
    }
    ds_alive(&e, "after the last cycle");
    fprintf(stderr, "dbstall: %d stall cycles\n", cycles);
    /* The pool recovers. */
    for (long long t = it_now_ms() + 20000;; it_sleep_ms(200)) {
        weft_hresp r;
        it_get(e.h, "/api/referral/leaderboard", &r);
        int st = r.status;
        weft_hresp_free(&r);
        if (st == 200)
            break;
        ck_assert_msg(it_now_ms() < t, "no recovery: still %d", st);
    }
    ds_stop(&e);
}
END_TEST

/* The second scenario, scaled to a small machine: connections
 * each pipelining 20 authenticated reads of a big todo list, reset at
 * random while their reads queue and time out, for 30 s; no stall. */
START_TEST(test_reset_under_load)
{
    struct ds_env e;
    char *auth, *one, *req;
    long long list;
    size_t cap, off = 0;

    ds_start(&e, "query_timeout = 250ms\npool_size = 2\n", NULL);
    auth = ds_user(&e, "loader");
    list = ds_list(&e, auth, 400);
    one = it_strf("GET /api/todo/lists/%lld/items HTTP/1.1\r\nHost: t\r\n%s\r\n",
                  list, auth);
    cap = strlen(one) * 20 + 1;
    req = malloc(cap);
    ck_assert(req != NULL);
    for (int i = 0; i < 20; i++) {
        memcpy(req + off, one, strlen(one));
        off += strlen(one);
    }
    req[off] = '\0';
    ds_blast(&e, req, 120, 100, 1500, 1, it_now_ms() + 30000);
    ds_alive(&e, "after the load");
    /* Reads work again once the load is gone. */
    for (long long t = it_now_ms() + 20000;; it_sleep_ms(200)) {
        weft_hresp r;
        char *path = it_strf("/api/todo/lists/%lld/items", list);
        it_req(e.h, "GET", path, auth, NULL, 0, &r);
        int st = r.status;
        weft_hresp_free(&r);
        free(path);
        if (st == 200)
            break;
        ck_assert_msg(it_now_ms() < t, "no recovery: still %d", st);
    }
    free(req);
    free(one);
    free(auth);
    ds_stop(&e);
}
END_TEST

struct ds_timed {
    struct ds_env *e;
    const char *path, *hdrs;
    int status;
    char code[32];
    long long ms;
};

static void *ds_timed_get(void *arg)
{
    struct ds_timed *t = arg;
    long long t0 = it_now_ms();
    weft_hresp r;

    char *req = it_strf("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n", t->path,
                        t->hdrs != NULL ? t->hdrs : "");
    int fd = weft_harness_connect(t->e->h);

    t->status = -1;
    t->code[0] = '\0';
    /* Bounded, so that a read that waits for the cluster fails the test
     * instead of holding it until the cluster is continued. */
    if (fd >= 0 && weft_harness_send(fd, req, strlen(req)) == 0 &&
        weft_hresp_read(fd, &r, DS_READ_MS) == 0) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *c = json_string_value(
            json_object_get(json_object_get(j, "error"), "code"));
        t->status = r.status;
        snprintf(t->code, sizeof(t->code), "%s", c != NULL ? c : "");
        json_decref(j);
        weft_hresp_free(&r);
    }
    t->ms = it_now_ms() - t0;
    if (fd >= 0)
        weft_harness_close(fd);
    free(req);
    return NULL;
}

/* A stalled cluster: statements fail at query_timeout (not when the
 * cluster comes back), cancellation does not take the worker pool (static
 * files are read there), /healthz answers, and the pool recovers. */
START_TEST(test_stall_timeout)
{
    enum { N = 12, T_MS = 1000 };
    struct ds_env e;
    struct ds_pg pg;
    struct ds_timed t[N];
    pthread_t th[N];
    char *auth, *items;
    long long list, stall_end;
    int timeouts = 0;

    /* Two workers and eight connections: eight timed-out statements are
     * more cancellations than workers. */
    ds_start(&e, "query_timeout = 1s\npool_size = 4\n", "workers = 2\n");
    auth = ds_user(&e, "staller");
    list = ds_list(&e, auth, 3);
    items = it_strf("/api/todo/lists/%lld/items", list);
    it_get_status(e.h, "/p/todo/widget.js", 200);

    ds_pg_stop(&e, &pg);
    stall_end = it_now_ms() + 12000;
    for (int round = 0; round < 3; round++) {
        struct ds_timed s[2] = {{&e, "/p/todo/widget.js", NULL, 0, "", 0},
                                {&e, "/healthz", NULL, 0, "", 0}};
        for (int i = 0; i < N; i++) {
            t[i].e = &e;
            t[i].path = items;
            t[i].hdrs = auth;
            ck_assert(pthread_create(&th[i], NULL, ds_timed_get, &t[i]) == 0);
        }
        /* Past query_timeout: the statements on connections are being
         * cancelled now, while they still wait (before the fix). */
        it_sleep_ms(T_MS + 500);
        for (int k = 0; k < 2; k++)
            ds_timed_get(&s[k]);
        for (int i = 0; i < N; i++)
            pthread_join(th[i], NULL);
        for (int k = 0; k < 2; k++)
            fprintf(stderr, "dbstall: round %d: %s: %d after %lld ms\n",
                    round, s[k].path, s[k].status, s[k].ms);
        for (int i = 0; i < N; i++)
            fprintf(stderr, "dbstall: round %d: read: %d %s after %lld ms\n",
                    round, t[i].status, t[i].code, t[i].ms);
        for (int k = 0; k < 2; k++)
            ck_assert_msg(s[k].status == 200 && s[k].ms < 1000,
                          "round %d: %s answered %d after %lld ms while the "
                          "cluster is stopped",
                          round, s[k].path, s[k].status, s[k].ms);
        for (int i = 0; i < N; i++) {
            ck_assert_msg(t[i].status == 503,
                          "round %d: a read answered %d (%s) after %lld ms "
                          "while the cluster is stopped",
                          round, t[i].status, t[i].code, t[i].ms);
            ck_assert_msg(t[i].ms < 3 * T_MS + 2000,
                          "round %d: a read took %lld ms (%s) with "
                          "query_timeout = %d ms",
                          round, t[i].ms, t[i].code, T_MS);
            if (strcmp(t[i].code, "db_timeout") == 0)
                timeouts++;
        }
    }
    /* The first round's statements were sent and never answered. */
    ck_assert_msg(timeouts >= 1, "no db_timeout answer");
    while (it_now_ms() < stall_end) {
        it_sleep_ms(100);
    }
    ds_pg_cont(&pg);
    /* Each loop reconnects on its own backoff (up to 5 s): until /readyz
     * says every loop has a connection, a loop without one answers 503 at
     * once by design. */
    for (long long t_end = it_now_ms() + 20000;; it_sleep_ms(200)) {
        weft_hresp r;
        it_req(e.h, "GET", "/readyz", NULL, NULL, 0, &r);
        int st = r.status;
        weft_hresp_free(&r);
        if (st == 200)
            break;
        ck_assert_msg(it_now_ms() < t_end, "no recovery: /readyz still %d",
                      st);
    }
    for (int i = 0; i < 20; i++) {
        weft_hresp r;
        it_req(e.h, "GET", items, auth, NULL, 0, &r);
        ck_assert_msg(r.status == 200, "after recovery: %d %.200s", r.status,
                      r.body);
        weft_hresp_free(&r);
    }
    free(items);
    free(auth);
    ds_stop(&e);
}
END_TEST

static Suite *ds_suite(void)
{
    Suite *s = suite_create("dbstall");
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {{"timeout", test_stall_timeout},
                 {"reset_stall", test_reset_during_stall},
                 {"reset_load", test_reset_under_load}};

    /* One case each, so that CK_RUN_CASE can pick one. */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    static const char *const prefixes[] = {"WEFT_DATABASE_", "WEFT_AUTH_",
                                           "WEFT_SERVER_", NULL};

    return it_run_suite_clean(ds_suite(), prefixes);
}
