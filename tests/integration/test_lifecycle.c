/*
 * test_lifecycle.c - the command line (--check-config, --version) and the
 * process lifecycle (graceful shutdown on SIGTERM and SIGINT).
 */
#include "it_common.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ---- n. --check-config and --version ------------------------------------- */

/* Is there a stderr line containing "<base>:<line>: " that also mentions
 * `needle` (case-insensitive)? */
static int has_problem(const char *err, const char *base, int line,
                       const char *needle)
{
    char *copy = strdup(err), *l, *save = NULL, *tag;
    int found = 0;

    ck_assert_ptr_nonnull(copy);
    tag = it_strf("%s:%d: ", base, line);
    for (l = strtok_r(copy, "\n", &save); l != NULL && !found;
         l = strtok_r(NULL, "\n", &save))
        if (strstr(l, tag) != NULL && it_contains_ci(l, needle))
            found = 1;
    free(tag);
    free(copy);
    return found;
}

static int check_config(const char *path, char **out, char **err)
{
    char *argv[] = {(char *)it_weftd(), (char *)"--check-config",
                    (char *)path, NULL};

    return it_run(argv, out, err);
}

START_TEST(test_check_config)
{
    char *dir = it_mkdtemp(), *good = it_strf("%s/good.ini", dir),
         *bad = it_strf("%s/bad.ini", dir), *text, *out, *err;
    int st;

    text = it_strf("; a valid configuration\n"
                   "[server]\n"
                   "listen = 127.0.0.1:18080\n"
                   "threads = 2\n"
                   "data_dir = %s/data\n"
                   "max_body = 1m\n"
                   "shutdown_timeout = 5s\n"
                   "\n"
                   "[log]\n"
                   "level = info\n"
                   "\n"
                   "[admin]\n"
                   "token = 0123456789abcdef0123456789abcdef\n"
                   "\n"
                   "[plugin.hello]\n"
                   "path = %s\n"
                   "enabled = true\n"
                   "greeting = hi there\n"
                   "max_sleep = 2s\n",
                   dir, IT_HELLO_SO);
    it_write_file(good, text);
    free(text);
    st = check_config(good, &out, &err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "--check-config on a valid file: status %d\nstdout: %s\n"
                  "stderr: %s",
                  st, out, err);
    ck_assert_msg(strstr(out, "configuration ok") != NULL,
                  "--check-config on a valid file printed: %s", out);
    free(out);
    free(err);

    /* Problems on known lines. */
    text = it_strf("; problems on known lines\n"          /* 1 */
                   "[server]\n"                           /* 2 */
                   "listen = 127.0.0.1:18080\n"           /* 3 */
                   "threads = lots\n"                     /* 4 */
                   "data_dir = %s/data\n"                 /* 5 */
                   "colour = blue\n"                      /* 6 */
                   "\n"                                   /* 7 */
                   "[nosuchsection]\n"                    /* 8 */
                   "\n"                                   /* 9 */
                   "[plugin.hello]\n"                     /* 10 */
                   "path = /nonexistent/weft-it/hello.so\n" /* 11 */
                   "enabled = true\n",                    /* 12 */
                   dir);
    it_write_file(bad, text);
    free(text);
    st = check_config(bad, &out, &err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
                  "--check-config on a bad file: status %d (want exit 2)\n"
                  "stderr: %s",
                  st, err);
    ck_assert_msg(has_problem(err, "bad.ini", 4, "threads") ||
                      has_problem(err, "bad.ini", 4, "lots"),
                  "threads = lots not reported as bad.ini:4:\n%s", err);
    ck_assert_msg(has_problem(err, "bad.ini", 6, "colour"),
                  "unknown key colour not reported as bad.ini:6:\n%s", err);
    ck_assert_msg(has_problem(err, "bad.ini", 8, "nosuchsection"),
                  "unknown section not reported as bad.ini:8:\n%s", err);
    ck_assert_msg(has_problem(err, "bad.ini", 11, "hello"),
                  "missing plugin file not reported as bad.ini:11:\n%s", err);
    ck_assert_msg(strstr(out, "configuration ok") == NULL,
                  "a bad file was called ok: %s", out);
    free(out);
    free(err);
    free(good);
    free(bad);
    it_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_version)
{
    char *argv[] = {(char *)it_weftd(), (char *)"--version", NULL};
    char *out, *err;
    int st;

    st = it_run(argv, &out, &err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "--version: status %d, stderr %s", st, err);
    /* "weftd 0.1.0", possibly followed by details on the same line. */
    ck_assert_msg(strncmp(out, "weftd 0.1.0", 11) == 0 &&
                      (out[11] == '\0' || out[11] == '\n' || out[11] == ' '),
                  "--version printed \"%s\"", out);
    free(out);
    free(err);
}
END_TEST

/* ---- l. graceful shutdown ------------------------------------------------ */

struct slow {
    weft_harness *h;
    int rc, err;
    weft_hresp r;
    long long ms;
};

static void *slow_request(void *arg)
{
    struct slow *s = arg;
    long long t0 = it_now_ms();

    s->rc = weft_harness_request(s->h, "GET", "/api/hello/slow?ms=1500", NULL,
                                 NULL, 0, &s->r);
    s->err = errno;
    s->ms = it_now_ms() - t0;
    return NULL;
}

START_TEST(test_graceful_shutdown)
{
    weft_harness *h = it_start_hello(NULL, 2);
    struct slow s;
    pthread_t th;
    json_t *j;
    int st;

    memset(&s, 0, sizeof(s));
    s.h = h;
    ck_assert_int_eq(pthread_create(&th, NULL, slow_request, &s), 0);
    it_sleep_ms(300);
    ck_assert_int_eq(weft_harness_signal(h, SIGTERM), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(s.rc == 0, "the in-flight request got no answer after "
                             "SIGTERM (%s)",
                  strerror(s.err));
    ck_assert_msg(s.r.status == 200, "the in-flight request got %d: %.300s",
                  s.r.status, s.r.body);
    j = it_json(&s.r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "slept_ms")), 1500);
    json_decref(j);
    ck_assert_msg(s.ms >= 1400, "slow request answered after %lld ms", s.ms);
    weft_hresp_free(&s.r);
    st = weft_harness_wait(h, 15000);
    ck_assert_msg(st != -1, "weftd still runs 15 s after SIGTERM");
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "weftd exit after SIGTERM: waitpid status %d", st);
    ck_assert_int_eq(weft_harness_stop(h), st);
}
END_TEST

START_TEST(test_sigint_exits)
{
    weft_harness *h = it_start_hello(NULL, 2);
    int st;

    it_get_status(h, "/api/hello/ping", 200);
    ck_assert_int_eq(weft_harness_signal(h, SIGINT), 0);
    st = weft_harness_wait(h, 15000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "weftd after SIGINT: waitpid status %d", st);
    weft_harness_stop(h);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("integration_lifecycle");
    TCase *cli = tcase_create("cli"), *life = tcase_create("lifecycle");

    tcase_set_timeout(cli, 30);
    tcase_add_test(cli, test_check_config);
    tcase_add_test(cli, test_version);
    tcase_set_timeout(life, 60);
    tcase_add_test(life, test_graceful_shutdown);
    tcase_add_test(life, test_sigint_exits);
    suite_add_tcase(s, cli);
    suite_add_tcase(s, life);
    return s;
}

int main(void)
{
    return it_run_suite(lifecycle_suite());
}
