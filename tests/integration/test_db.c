/*
 * Database integration: the embedded cluster, the pool under load and when
 * it is exhausted, PostgreSQL killed under load, migrations, transactions,
 * timeouts and cancellation. Uses the dbtest plugin (tests/plugins/dbtest).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "it_common.h"

/* A data directory that outlives one weftd, so restarts can reuse it. */
static char *db_tmpdir(void)
{
    /* it_mkdtemp() removes it even when a failed assertion ends the test */
    char *d = it_mkdtemp();

    /* as root the cluster runs as 'postgres', which must pass through */
    ck_assert_int_eq(chmod(d, 0711), 0);
    return d;
}

static void db_rmdir(const char *d)
{
    it_rmtree(d);
}

static char *db_config(const char *dir, const char *so, const char *db_extra)
{
    return it_strf("[server]\nlisten = 127.0.0.1:@PORT@\nthreads = 2\n"
                   "data_dir = %s/data\nshutdown_timeout = 10s\n"
                   "[admin]\ntoken = @TOKEN@\n"
                   "[database]\nenabled = true\n%s"
                   "[plugin.dbtest]\npath = %s\nenabled = true\n",
                   dir, db_extra ? db_extra : "", so);
}

static weft_harness *db_start(const char *dir, const char *so,
                              const char *db_extra)
{
    char *cfg = db_config(dir, so, db_extra);
    weft_harness *h = weft_harness_start_raw(cfg);

    free(cfg);
    ck_assert_msg(h != NULL, "weftd with the database did not start");
    return h;
}

/* The postmaster pid of the embedded cluster, or 0. */
static pid_t db_postmaster(const char *dir)
{
    char *path = it_strf("%s/data/pg/data/postmaster.pid", dir);
    FILE *f = fopen(path, "r");
    long pid = 0;

    free(path);
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static long db_create(weft_harness *h, const char *name, int *status)
{
    weft_hresp r;
    char *body = it_strf("{\"name\":\"%s\"}", name);
    long id = -1;

    if (weft_harness_request(h, "POST", "/api/dbtest/items",
                             "Content-Type: application/json\r\n", body,
                             strlen(body), &r) != 0) {
        free(body);
        *status = 0;
        return -1;
    }
    free(body);
    *status = r.status;
    if (r.status == 201) {
        json_t *j = it_json(&r);
        id = (long)json_integer_value(json_object_get(j, "id"));
        json_decref(j);
    }
    weft_hresp_free(&r);
    return id;
}

static long db_count(weft_harness *h)
{
    weft_hresp r;
    json_t *j;
    long n;

    it_get(h, "/api/dbtest/count", &r);
    ck_assert_int_eq(r.status, 200);
    j = it_json(&r);
    n = (long)json_integer_value(json_object_get(j, "count"));
    json_decref(j);
    weft_hresp_free(&r);
    return n;
}

START_TEST(embedded_cluster_lifecycle)
{
    char *dir = db_tmpdir(), *ver;
    weft_harness *h;
    pid_t pm;
    long id;
    int st;
    weft_hresp r;
    struct stat sb;

    h = db_start(dir, IT_DBTEST_M1_SO, NULL);
    ver = it_strf("%s/data/pg/data/PG_VERSION", dir);
    ck_assert_int_eq(stat(ver, &sb), 0); /* first start ran initdb */
    free(ver);
    pm = db_postmaster(dir);
    ck_assert_int_gt(pm, 0);
    id = db_create(h, "kept-across-restarts", &st);
    ck_assert_int_eq(st, 201);
    it_stop_ok(h);
    /* weftd's exit stopped the cluster */
    ck_assert_int_eq(db_postmaster(dir), 0);
    ck_assert(kill(pm, 0) != 0 && errno == ESRCH);

    h = db_start(dir, IT_DBTEST_M1_SO, NULL);
    {
        char *path = it_strf("/api/dbtest/items/%ld", id);
        it_get(h, path, &r);
        free(path);
    }
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "kept-across-restarts"));
    weft_hresp_free(&r);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- load --------------------------------------------------------------- */

struct db_load {
    weft_harness *h;
    const char *path;
    int n, ok, busy, other;
    long long max_ms;
};

static void *db_load_thread(void *arg)
{
    struct db_load *l = arg;
    weft_hresp r;

    for (int i = 0; i < l->n; i++) {
        long long t0 = it_now_ms(), dt;
        if (weft_harness_request(l->h, "GET", l->path, NULL, NULL, 0, &r) !=
            0) {
            __atomic_add_fetch(&l->other, 1, __ATOMIC_RELAXED);
            continue;
        }
        dt = it_now_ms() - t0;
        if (r.status == 200)
            __atomic_add_fetch(&l->ok, 1, __ATOMIC_RELAXED);
        else if (r.status == 503 && strstr(r.body, "\"error\"") != NULL)
            __atomic_add_fetch(&l->busy, 1, __ATOMIC_RELAXED);
        else
            __atomic_add_fetch(&l->other, 1, __ATOMIC_RELAXED);
        if (dt > l->max_ms)
            l->max_ms = dt; /* racy max is fine for a bound check */
        weft_hresp_free(&r);
    }
    return NULL;
}

static void db_run_load(struct db_load *l, int threads)
{
    pthread_t t[128];

    ck_assert_int_le(threads, 128);
    for (int i = 0; i < threads; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, db_load_thread, l), 0);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
}

START_TEST(thousand_concurrent_queries)
{
    char *dir = db_tmpdir();
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO, "queue_max = 2000\n");
    struct db_load l = {.h = h, .path = "/api/dbtest/items/1", .n = 10};
    int st;

    db_create(h, "one", &st);
    ck_assert_int_eq(st, 201);
    /* 100 clients x 10 requests = 1000 queries over 2 x 4 connections */
    db_run_load(&l, 100);
    ck_assert_int_eq(l.ok, 1000);
    ck_assert_int_eq(l.busy + l.other, 0);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(pool_exhausted_is_a_fast_503)
{
    char *dir = db_tmpdir();
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO,
                               "pool_size = 1\nqueue_max = 1\n");
    struct db_load l = {.h = h, .path = "/api/dbtest/sleep?ms=1500", .n = 1};
    long long t0 = it_now_ms();

    /* 2 loops x (1 running + 1 waiting) can be served; the rest is 503 */
    db_run_load(&l, 12);
    ck_assert_int_ge(l.busy, 6);
    ck_assert_int_ge(l.ok, 2);
    ck_assert_int_eq(l.other, 0);
    ck_assert_int_lt(it_now_ms() - t0, 8000);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- PostgreSQL killed under load ------------------------------------- */

struct db_writer {
    weft_harness *h;
    volatile int stop;
    int n201, n503, nother;
    long ids[20000];
    char names[20000][24];
};

static void *db_writer_thread(void *arg)
{
    struct db_writer *w = arg;
    int st;

    for (int i = 0; !w->stop && w->n201 < 20000; i++) {
        char name[24];
        long id;
        snprintf(name, sizeof(name), "w-%d", i);
        id = db_create(w->h, name, &st);
        if (st == 201) {
            snprintf(w->names[w->n201], sizeof(w->names[0]), "%s", name);
            w->ids[w->n201++] = id;
        } else if (st == 503) {
            w->n503++;
            it_sleep_ms(20);
        } else {
            w->nother++;
            it_sleep_ms(20);
        }
    }
    return NULL;
}

START_TEST(postgres_killed_under_load)
{
    char *dir = db_tmpdir();
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO, NULL);
    struct db_writer *w = calloc(1, sizeof(*w));
    pthread_t t;
    pid_t pm = db_postmaster(dir);
    long long deadline;
    int ready = 0;
    weft_hresp r;

    ck_assert_int_gt(pm, 0);
    w->h = h;
    ck_assert_int_eq(pthread_create(&t, NULL, db_writer_thread, w), 0);
    it_sleep_ms(700);
    ck_assert_int_eq(kill(pm, SIGKILL), 0);
    /* weftd notices, answers 503 meanwhile, restarts the cluster */
    deadline = it_now_ms() + 60000;
    while (it_now_ms() < deadline) {
        it_sleep_ms(200);
        if (db_postmaster(dir) != pm && w->n503 > 0) {
            it_get(h, "/readyz", &r);
            ready = r.status == 200;
            weft_hresp_free(&r);
            if (ready)
                break;
        }
    }
    ck_assert_msg(ready, "weftd did not recover (503s seen: %d)", w->n503);
    it_sleep_ms(700); /* writes succeed again */
    w->stop = 1;
    pthread_join(t, NULL);
    ck_assert_int_gt(w->n503, 0);
    ck_assert_int_eq(w->nother, 0);
    /* no write that got a 201 is lost */
    for (int i = 0; i < w->n201; i++) {
        char *path = it_strf("/api/dbtest/items/%ld", w->ids[i]);
        it_get(h, path, &r);
        free(path);
        ck_assert_msg(r.status == 200 && strstr(r.body, w->names[i]) != NULL,
                      "acknowledged write %s (id %ld) lost", w->names[i],
                      w->ids[i]);
        weft_hresp_free(&r);
    }
    ck_assert_int_gt(w->n201, 2);
    free(w);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- migrations ---------------------------------------------------------- */

/* Point [plugin.dbtest] path at `so` (via a copy at a fixed path) and ask
 * for a reload; returns the answer. */
static void db_reload_to(weft_harness *h, const char *fixed, const char *so,
                         weft_hresp *out)
{
    char *cmd = it_strf("cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", so, fixed,
                        fixed, fixed);

    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    ck_assert_int_eq(
        weft_harness_admin(h, "POST", "/admin/plugins/dbtest/reload", out), 0);
}

static char *db_version(weft_harness *h)
{
    weft_hresp r;
    json_t *j;
    char *v;

    it_get(h, "/api/dbtest/version", &r);
    ck_assert_int_eq(r.status, 200);
    j = it_json(&r);
    v = strdup(it_jstr(j, "version"));
    json_decref(j);
    weft_hresp_free(&r);
    return v;
}

START_TEST(migrations)
{
    char *dir = db_tmpdir(), *fixed = it_strf("%s/dbtest.so", dir), *cmd, *v,
         *log;
    weft_harness *h;
    weft_hresp r;
    int st;

    cmd = it_strf("cp '%s' '%s'", IT_DBTEST_M1_SO, fixed);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    h = db_start(dir, fixed, NULL);
    db_create(h, "before", &st);
    ck_assert_int_eq(st, 201);
    it_stop_ok(h);
    /* idempotent on restart: nothing applied the second time */
    h = db_start(dir, fixed, NULL);
    log = weft_harness_log(h);
    ck_assert_ptr_null(strstr(log, "applied 1 migration"));
    free(log);
    ck_assert_int_eq(db_count(h), 1);

    /* a new migration is applied before the new version serves */
    db_reload_to(h, fixed, IT_DBTEST_M2_SO, &r);
    ck_assert_msg(r.status == 200, "reload to m2: %d %s", r.status, r.body);
    weft_hresp_free(&r);
    v = db_version(h);
    ck_assert_str_eq(v, "1.0.m2");
    free(v);

    /* an applied migration whose SQL changed is refused; m2 keeps serving */
    db_reload_to(h, fixed, IT_DBTEST_CHANGED_SO, &r);
    it_assert_error(&r, 422, "reload_failed");
    ck_assert_ptr_nonnull(strstr(r.body, "changed after it was applied"));
    weft_hresp_free(&r);
    v = db_version(h);
    ck_assert_str_eq(v, "1.0.m2");
    free(v);

    /* a failing migration refuses the version, with the SQL error */
    db_reload_to(h, fixed, IT_DBTEST_M1_SO, &r); /* older: refused too */
    it_assert_error(&r, 422, "reload_failed");
    ck_assert_ptr_nonnull(strstr(r.body, "only 1"));
    weft_hresp_free(&r);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
    free(fixed);
}
END_TEST

START_TEST(failing_migration_rolls_back)
{
    char *dir = db_tmpdir(), *fixed = it_strf("%s/dbtest.so", dir), *cmd, *v;
    weft_harness *h;
    weft_hresp r;

    cmd = it_strf("cp '%s' '%s'", IT_DBTEST_M1_SO, fixed);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    h = db_start(dir, fixed, NULL);
    db_reload_to(h, fixed, IT_DBTEST_BROKEN_SO, &r);
    it_assert_error(&r, 422, "reload_failed");
    ck_assert_ptr_nonnull(strstr(r.body, "no_such_table"));
    ck_assert_ptr_nonnull(strstr(r.body, "0002_broken"));
    weft_hresp_free(&r);
    v = db_version(h);
    ck_assert_str_eq(v, "1.0.m1"); /* the running version keeps serving */
    free(v);
    /* nothing of the failed migration stuck: version 2 is still free */
    db_reload_to(h, fixed, IT_DBTEST_M2_SO, &r);
    ck_assert_msg(r.status == 200, "reload to m2: %d %s", r.status, r.body);
    weft_hresp_free(&r);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
    free(fixed);
}
END_TEST

/* ---- transactions, timeouts, cancellation -------------------------------- */

static int db_pair(weft_harness *h, const char *body)
{
    weft_hresp r;
    int st;

    ck_assert_int_eq(weft_harness_request(h, "POST", "/api/dbtest/pair",
                                          NULL, body, strlen(body), &r),
                     0);
    st = r.status;
    weft_hresp_free(&r);
    return st;
}

START_TEST(transactions)
{
    char *dir = db_tmpdir();
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO, NULL);

    ck_assert_int_eq(db_pair(h, "{\"a\":\"p1\",\"b\":\"p2\"}"), 201);
    ck_assert_int_eq(db_count(h), 2);
    ck_assert_int_eq(db_pair(h, "{\"a\":\"p3\",\"b\":\"p4\",\"rollback\":true}"),
                     200);
    ck_assert_int_eq(db_count(h), 2);
    /* the second insert violates UNIQUE: 409 and the first is undone */
    ck_assert_int_eq(db_pair(h, "{\"a\":\"p5\",\"b\":\"p1\"}"), 409);
    ck_assert_int_eq(db_count(h), 2);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

/* weft_db_json gives RFC 3339, whatever the session's TimeZone. */
START_TEST(times_are_rfc3339)
{
    char *dir = db_tmpdir();
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO, NULL);
    weft_hresp r;
    json_t *j;

    it_get(h, "/api/dbtest/times", &r);
    ck_assert_int_eq(r.status, 200);
    j = it_json(&r);
    ck_assert_str_eq(it_jstr(j, "zone"), "<+05:30>-05:30"); /* it took */
    ck_assert_str_eq(it_jstr(j, "tz"), "2026-12-04T01:16:16.123Z");
    ck_assert_str_eq(it_jstr(j, "ts"), "2026-12-04T01:16:16.5");
    ck_assert_str_eq(it_jstr(j, "d"), "2026-12-04");
    ck_assert_str_eq(it_jstr(j, "inf"), "infinity");
    json_decref(j);
    weft_hresp_free(&r);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

START_TEST(query_timeout_and_client_gone)
{
    char *dir = db_tmpdir();
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO,
                               "query_timeout = 500ms\npool_size = 1\n");
    weft_hresp r;
    long long t0 = it_now_ms();
    int fd;
    const char *req = "GET /api/dbtest/sleep?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n";

    it_get(h, "/api/dbtest/sleep?ms=5000", &r);
    it_assert_error(&r, 503, "db_timeout");
    ck_assert_int_lt(it_now_ms() - t0, 3000);
    weft_hresp_free(&r);

    /* a client that leaves has its query cancelled: with one connection
     * per loop, later queries would otherwise wait behind it */
    for (int i = 0; i < 4; i++) {
        fd = weft_harness_connect(h);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(weft_harness_send(fd, req, strlen(req)), 0);
        it_sleep_ms(50);
        weft_harness_close(fd);
    }
    it_sleep_ms(100);
    t0 = it_now_ms();
    for (int i = 0; i < 4; i++)
        it_get_status(h, "/api/dbtest/count", 200);
    ck_assert_int_lt(it_now_ms() - t0, 1000);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

/* A plugin sees the signed-in user and looks up profiles (SDK 1.1). */
START_TEST(plugin_sees_the_user)
{
    char *dir = db_tmpdir(), *hdr;
    weft_harness *h = db_start(dir, IT_DBTEST_M1_SO,
                               "[auth]\nargon2_opslimit = 1\n"
                               "argon2_memlimit = 64k\n[database]\n");
    const char *reg = "{\"email\":\"pat@example.com\",\"username\":\"pat\","
                      "\"display_name\":\"Pat O'Hara\",\"password\":"
                      "\"long enough\"}";
    weft_hresp r;
    json_t *j, *prof;
    json_int_t uid;

    it_get_status(h, "/api/dbtest/whoami", 401);
    ck_assert_int_eq(weft_harness_request(h, "POST", "/api/auth/register",
                                          "Content-Type: application/json\r\n",
                                          reg, strlen(reg), &r),
                     0);
    ck_assert_msg(r.status == 201, "register: %d %s", r.status, r.body);
    j = it_json(&r);
    uid = json_integer_value(json_object_get(json_object_get(j, "user"), "id"));
    hdr = it_strf("Authorization: Bearer %s\r\n", it_jstr(j, "access_token"));
    json_decref(j);
    weft_hresp_free(&r);
    it_req(h, "GET", "/api/dbtest/whoami", hdr, NULL, 0, &r);
    ck_assert_msg(r.status == 200, "whoami: %d %s", r.status, r.body);
    j = it_json(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "user")), uid);
    ck_assert(json_is_false(json_object_get(j, "admin")));
    prof = json_object_get(j, "profile");
    ck_assert_str_eq(it_jstr(prof, "username"), "pat");
    ck_assert_str_eq(it_jstr(prof, "display_name"), "Pat O'Hara");
    ck_assert_ptr_null(json_object_get(prof, "email")); /* public fields only */
    json_decref(j);
    weft_hresp_free(&r);
    free(hdr);
    it_stop_ok(h);
    db_rmdir(dir);
    free(dir);
}
END_TEST

/* Two nodes on one database: a migration applied by one is announced
 * (LISTEN/NOTIFY) so the other re-prepares its statements. */
START_TEST(schema_change_reaches_other_nodes)
{
    char *dir = db_tmpdir(), *dir_b = db_tmpdir();
    char *fixed = it_strf("%s/dbtest.so", dir), *cmd, *url, *cfg, *log;
    weft_harness *a, *b;
    weft_hresp r;
    long long deadline;
    int seen = 0;

    cmd = it_strf("cp '%s' '%s'", IT_DBTEST_M1_SO, fixed);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    a = db_start(dir, fixed, NULL);
    url = it_strf("url = host=%s/data/pg/run port=5432 dbname=weft "
                  "user=weft\n",
                  dir);
    cfg = db_config(dir_b, fixed, url);
    b = weft_harness_start_raw(cfg);
    ck_assert_msg(b != NULL, "the second node did not start");
    it_get_status(b, "/api/dbtest/count", 200);

    db_reload_to(a, fixed, IT_DBTEST_M2_SO, &r);
    ck_assert_msg(r.status == 200, "reload to m2: %d %s", r.status, r.body);
    weft_hresp_free(&r);
    deadline = it_now_ms() + 5000;
    while (!seen && it_now_ms() < deadline) {
        log = weft_harness_log(b);
        seen = strstr(log, "schema of dbtest changed on another node") != NULL;
        free(log);
        if (!seen)
            it_sleep_ms(100);
    }
    ck_assert_msg(seen, "node B was not told about node A's migration");
    log = weft_harness_log(a);
    ck_assert_ptr_null(strstr(log, "changed on another node"));
    free(log);
    it_get_status(b, "/api/dbtest/count", 200);
    it_stop_ok(b);
    it_stop_ok(a);
    db_rmdir(dir_b);
    db_rmdir(dir);
    free(dir_b);
    free(dir);
    free(fixed);
    free(url);
    free(cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration_db");
    TCase *tc = tcase_create("db");

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, embedded_cluster_lifecycle);
    tcase_add_test(tc, thousand_concurrent_queries);
    tcase_add_test(tc, pool_exhausted_is_a_fast_503);
    tcase_add_test(tc, postgres_killed_under_load);
    tcase_add_test(tc, migrations);
    tcase_add_test(tc, failing_migration_rolls_back);
    tcase_add_test(tc, transactions);
    tcase_add_test(tc, times_are_rfc3339);
    tcase_add_test(tc, query_timeout_and_client_gone);
    tcase_add_test(tc, schema_change_reaches_other_nodes);
    tcase_add_test(tc, plugin_sees_the_user);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
