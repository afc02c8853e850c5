/*
 * test_startup.c - what weftd answers while it is starting: the host's
 * endpoints answer, /readyz says "not yet", and a configured plugin's URLs
 * answer 503 with Retry-After until that plugin serves; a plugin that
 * failed to load answers 503 without telling anonymous clients its files.
 *
 * The start-up case runs weftd itself (not through the harness, which
 * returns only once weftd is ready); the slowinit test plugin holds its
 * init until the test creates a file, so the window does not depend on
 * the machine's speed.
 */
#include "it_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IT_SLOWINIT_SO
#error "IT_SLOWINIT_SO must be defined by the build"
#endif

/* A loopback port nobody listens on now (weftd binds it next). */
static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* GET `path` on a new connection; 0 and *out filled, or -1 (not
 * listening yet, or no answer). */
static int get_port(int port, const char *path, weft_hresp *out)
{
    struct sockaddr_in sa;
    char req[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0), n, rc = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                   "Connection: close\r\n\r\n",
                 path, port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        weft_harness_send(fd, req, (size_t)n) == 0 &&
        weft_hresp_read(fd, out, IT_READ_MS) == 0)
        rc = 0;
    weft_harness_close(fd);
    return rc;
}

static void get_ok(int port, const char *path, weft_hresp *out)
{
    ck_assert_msg(get_port(port, path, out) == 0, "GET %s: no answer", path);
}

static void assert_starting(const weft_hresp *r)
{
    char ra[32];

    it_assert_error(r, 503, "plugin_starting");
    ck_assert_msg(weft_hresp_header(r, "Retry-After", ra, sizeof(ra)) != NULL,
                  "503 while starting has no Retry-After:\n%s", r->head);
    ck_assert_str_eq(ra, "1");
}

START_TEST(test_plugin_routes_while_starting)
{
    char *dir = it_mkdtemp(), *ini, *gate, *ini_path, *log_path;
    int port = free_port(), st = 0, healthy = 0;
    long long deadline;
    weft_hresp r;
    json_t *j, *e;
    pid_t pid;

    gate = it_strf("%s/gate", dir);
    ini_path = it_strf("%s/weft.ini", dir);
    log_path = it_strf("%s/weftd.log", dir);
    ini = it_strf("[server]\nlisten = 127.0.0.1:%d\nthreads = 2\n"
                  "data_dir = %s/data\nshutdown_timeout = 10s\n\n"
                  "[plugin.slowinit]\npath = %s\nenabled = true\n"
                  "gate = %s\n",
                  port, dir, IT_SLOWINIT_SO, gate);
    it_write_file(ini_path, ini);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *f = freopen(log_path, "w", stderr);
        (void)f;
        execl(it_weftd(), it_weftd(), "--config", ini_path, (char *)NULL);
        _exit(127);
    }

    /* The host answers as soon as it listens... */
    deadline = it_now_ms() + 20000;
    while (!healthy && it_now_ms() < deadline) {
        if (get_port(port, "/healthz", &r) == 0) {
            healthy = r.status == 200;
            weft_hresp_free(&r);
        }
        if (!healthy)
            it_sleep_ms(50);
    }
    ck_assert_msg(healthy, "no 200 from /healthz within 20 s");

    /* ...while the plugin's init still waits for the gate. */
    get_ok(port, "/readyz", &r);
    it_assert_error(&r, 503, "not_ready");
    weft_hresp_free(&r);
    get_ok(port, "/api/slowinit/ping", &r);
    assert_starting(&r);
    weft_hresp_free(&r);
    /* Any path of its URL space, routes it will have or not. */
    get_ok(port, "/api/slowinit/nosuch", &r);
    assert_starting(&r);
    weft_hresp_free(&r);
    get_ok(port, "/p/slowinit/widget.js", &r);
    assert_starting(&r);
    weft_hresp_free(&r);
    /* Other names stay unknown. */
    get_ok(port, "/api/slowinitx/ping", &r);
    it_assert_error(&r, 404, "not_found");
    weft_hresp_free(&r);
    get_ok(port, "/api/plugins", &r);
    ck_assert_int_eq(r.status, 200);
    j = it_json(&r);
    e = json_array_get(json_object_get(j, "plugins"), 0);
    ck_assert_str_eq(it_jstr(e, "name"), "slowinit");
    ck_assert_str_eq(it_jstr(e, "state"), "starting");
    json_decref(j);
    weft_hresp_free(&r);

    /* Let init finish: ready, and the real route. */
    it_write_file(gate, "go\n");
    deadline = it_now_ms() + 20000;
    for (st = 0; st != 200 && it_now_ms() < deadline;) {
        get_ok(port, "/readyz", &r);
        st = r.status;
        weft_hresp_free(&r);
        if (st != 200)
            it_sleep_ms(50);
    }
    ck_assert_msg(st == 200, "/readyz still %d 20 s after the gate opened",
                  st);
    get_ok(port, "/api/slowinit/ping", &r);
    ck_assert_msg(r.status == 200, "ping after start-up: %d %.300s", r.status,
                  r.body);
    weft_hresp_free(&r);
    get_ok(port, "/api/slowinit/nosuch", &r);
    it_assert_error(&r, 404, "not_found");
    weft_hresp_free(&r);

    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "weftd exit: waitpid status %d", st);
    it_rmtree(dir);
    free(dir);
    free(ini);
    free(gate);
    free(ini_path);
    free(log_path);
}
END_TEST

/* After start-up, a plugin that failed to load: 503 with its own code, no
 * Retry-After (it will not come back by itself), and nothing of the
 * loader's message (it names files) for an anonymous client. */
START_TEST(test_failed_plugin_unavailable)
{
    char *ini = it_strf("[plugin.badabi]\npath = %s\nenabled = true\n",
                        IT_BADABI_SO);
    weft_harness *h = it_start(ini, 2);
    const char *base = strrchr(IT_BADABI_SO, '/');
    weft_hresp r;
    char ra[32];

    it_get(h, "/api/badabi/anything", &r);
    it_assert_error(&r, 503, "plugin_unavailable");
    ck_assert_msg(weft_hresp_header(&r, "Retry-After", ra, sizeof(ra)) == NULL,
                  "a failed plugin says Retry-After:\n%s", r.head);
    ck_assert_msg(strstr(r.body, base + 1) == NULL &&
                      strstr(r.body, "ABI") == NULL,
                  "the 503 tells the load error: %s", r.body);
    weft_hresp_free(&r);
    it_get(h, "/p/badabi/widget.js", &r);
    it_assert_error(&r, 503, "plugin_unavailable");
    weft_hresp_free(&r);
    it_get_status(h, "/readyz", 200);
    it_stop_ok(h);
    free(ini);
}
END_TEST

static int ping_status(weft_harness *h, weft_hresp *keep)
{
    weft_hresp r;
    int st;

    it_get(h, "/api/slowinit/ping", &r);
    st = r.status;
    if (keep != NULL)
        *keep = r;
    else
        weft_hresp_free(&r);
    return st;
}

/* A plugin enabled by SIGHUP is "starting" too while its init runs, and
 * serves once it is loaded. */
START_TEST(test_enabled_by_sighup_starting)
{
    char *dir = it_mkdtemp(), *gate = it_strf("%s/gate", dir), *ini;
    weft_harness *h;
    weft_hresp r;
    long long deadline;
    int st = 0;

    ini = it_strf("[plugin.slowinit]\npath = %s\nenabled = false\n"
                  "gate = %s\n",
                  IT_SLOWINIT_SO, gate);
    h = it_start(ini, 2);
    free(ini);
    it_get(h, "/api/slowinit/ping", &r);
    it_assert_error(&r, 404, "not_found"); /* disabled: no such API */
    weft_hresp_free(&r);

    ini = it_strf("[plugin.slowinit]\npath = %s\nenabled = true\n"
                  "gate = %s\n",
                  IT_SLOWINIT_SO, gate);
    it_write_config(h, ini);
    free(ini);
    ck_assert_int_eq(weft_harness_signal(h, SIGHUP), 0);
    /* Until the control thread reads the file it is still disabled; then
     * starting, for as long as the gate stays shut. */
    deadline = it_now_ms() + 20000;
    while ((st = ping_status(h, NULL)) == 404 && it_now_ms() < deadline)
        it_sleep_ms(20);
    ck_assert_int_eq(ping_status(h, &r), 503);
    assert_starting(&r);
    weft_hresp_free(&r);
    it_get_status(h, "/healthz", 200);

    it_write_file(gate, "go\n");
    deadline = it_now_ms() + 20000;
    while ((st = ping_status(h, NULL)) != 200 && it_now_ms() < deadline)
        it_sleep_ms(20);
    ck_assert_msg(st == 200, "ping still %d 20 s after the gate opened", st);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(gate);
}
END_TEST

static Suite *startup_suite(void)
{
    Suite *s = suite_create("integration_startup");
    TCase *tc = tcase_create("startup");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_plugin_routes_while_starting);
    tcase_add_test(tc, test_failed_plugin_unavailable);
    tcase_add_test(tc, test_enabled_by_sighup_starting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return it_run_suite(startup_suite());
}
