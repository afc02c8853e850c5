/* The embedded PostgreSQL cluster: first start with initdb, data kept across
 * a clean restart, a restart after the postmaster was SIGKILLed, and a clear
 * refusal when the server programs are missing. Needs the Debian 12
 * postgresql package (or WEFT_PG_BINDIR). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>

#include "pg_embed.h"
#include "unit.h"

/* A fresh directory the server user can pass through when we are root. */
static char *pgt_tmpdir(void)
{
    char *dir = strdup("/tmp/weft-pg-XXXXXX");

    ck_assert_ptr_nonnull(dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    if (geteuid() == 0)
        ck_assert_int_eq(chmod(dir, 0711), 0);
    return dir;
}

static int pgt_rm_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void pgt_rmtree(char *dir)
{
    ck_assert_int_eq(nftw(dir, pgt_rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

static struct wpg_embed *pgt_start(const char *dir, char **ci)
{
    struct wdiag d = {0};
    struct wpg_embed *pg = wpg_embed_start(dir, "weft_test", 60000, ci, &d);
    char *why = wdiag_join(&d);

    ck_assert_msg(pg != NULL, "start failed: %s", why ? why : "(no reason)");
    ck_assert_int_eq(d.n, 0);
    ck_assert_ptr_nonnull(*ci);
    ck_assert_msg(strncmp(*ci, "host='", 6) == 0, "conninfo %s", *ci);
    ck_assert_int_gt(wpg_embed_pid(pg), 0);
    ck_assert_int_eq(wpg_embed_alive(pg), 1);
    /* its own process group, out of reach of a Ctrl-C meant for weftd */
    ck_assert_int_eq(getpgid(wpg_embed_pid(pg)), wpg_embed_pid(pg));
    free(why);
    wdiag_free(&d);
    return pg;
}

static PGconn *pgt_connect(const char *ci)
{
    PGconn *c = PQconnectdb(ci);

    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect %s: %s", ci,
                  PQerrorMessage(c));
    return c;
}

static void pgt_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    PQclear(r);
}

/* The one value in table t. */
static void pgt_expect_row(const char *ci, const char *want)
{
    PGconn *c = pgt_connect(ci);
    PGresult *r = PQexec(c, "SELECT v FROM t");

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "select: %s",
                  PQerrorMessage(c));
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), want);
    PQclear(r);
    PQfinish(c);
}

/* Is any process of group `pgid` still alive? Zombies do not count: the
 * orphaned backends of a SIGKILLed postmaster are reaped by init, whenever
 * init gets to it. */
static int pgt_group_alive(pid_t pgid)
{
    DIR *dp = opendir("/proc");
    struct dirent *e;
    char path[64], buf[512], *p;
    int alive = 0;

    ck_assert_ptr_nonnull(dp);
    while (!alive && (e = readdir(dp)) != NULL) {
        FILE *f;
        char state;
        long pgrp;
        size_t n;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%.20s/stat", e->d_name);
        if ((f = fopen(path, "re")) == NULL)
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "pid (comm) state ppid pgrp ..."; comm may hold anything */
        if ((p = strrchr(buf, ')')) != NULL &&
            sscanf(p + 1, " %c %*d %ld", &state, &pgrp) == 2 &&
            pgrp == (long)pgid && state != 'Z' && state != 'X')
            alive = 1;
    }
    closedir(dp);
    return alive;
}

START_TEST(lifecycle)
{
    char *tmp = pgt_tmpdir(), *dir, *ci = NULL;
    struct wpg_embed *pg;
    struct timespec ms50 = {0, 50000000L};
    PGconn *c;
    pid_t pid;
    int i;

    ck_assert_int_ge(asprintf(&dir, "%s/cluster", tmp), 0);

    /* first start: initdb, then the database is created */
    pg = pgt_start(dir, &ci);
    c = pgt_connect(ci);
    pgt_exec(c, "CREATE TABLE t (v text)");
    pgt_exec(c, "INSERT INTO t VALUES ('kept')");
    PQfinish(c);
    pid = wpg_embed_pid(pg);
    wpg_embed_stop(pg);
    free(ci);
    ci = NULL;
    ck_assert_msg(kill(pid, 0) != 0 && errno == ESRCH, "postmaster %ld lives",
                  (long)pid);
    ck_assert(!pgt_group_alive(pid));

    /* second start: reuse, the row is there */
    pg = pgt_start(dir, &ci);
    ck_assert_int_ne(wpg_embed_pid(pg), pid);
    pgt_expect_row(ci, "kept");

    /* a crash: weftd notices, and a new start recovers despite the stale
     * postmaster.pid and socket lock file */
    pid = wpg_embed_pid(pg);
    c = pgt_connect(ci); /* a backend that outlives its postmaster */
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    for (i = 0; i < 100 && wpg_embed_alive(pg); i++)
        nanosleep(&ms50, NULL);
    ck_assert_int_eq(wpg_embed_alive(pg), 0);
    ck_assert(!pgt_group_alive(pid));
    PQfinish(c);
    wpg_embed_stop(pg); /* only frees now */
    free(ci);
    ci = NULL;

    pg = pgt_start(dir, &ci);
    pgt_expect_row(ci, "kept");
    pid = wpg_embed_pid(pg);
    wpg_embed_stop(pg);
    ck_assert(!pgt_group_alive(pid));

    free(ci);
    free(dir);
    pgt_rmtree(tmp);
}
END_TEST

START_TEST(missing_binaries)
{
    char *tmp = pgt_tmpdir(), *dir, *ci = NULL, *why;
    struct wdiag d = {0};
    struct wpg_embed *pg;

    ck_assert_int_ge(asprintf(&dir, "%s/cluster", tmp), 0);
    setenv("WEFT_PG_BINDIR", "/nonexistent", 1);
    pg = wpg_embed_start(dir, "weft_test", 5000, &ci, &d);
    ck_assert_ptr_null(pg);
    ck_assert_ptr_null(ci);
    why = wdiag_join(&d);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, "/nonexistent") != NULL &&
                      strstr(why, "install the postgresql package") != NULL,
                  "message: %s", why);
    free(why);
    wdiag_free(&d);
    free(dir);
    pgt_rmtree(tmp);
}
END_TEST

START_TEST(bad_arguments)
{
    char *tmp = pgt_tmpdir(), *dir, *ci = NULL, *why;
    char name[80];
    struct wdiag d = {0};

    /* the socket path would not fit in sun_path */
    ck_assert_int_ge(asprintf(&dir, "%s/%0100d", tmp, 0), 0);
    ck_assert_ptr_null(wpg_embed_start(dir, "weft_test", 5000, &ci, &d));
    why = wdiag_join(&d);
    ck_assert_msg(why != NULL && strstr(why, "too long") != NULL, "%s", why);
    free(why);
    wdiag_free(&d);
    free(dir);

    /* PostgreSQL would truncate a name of 64 bytes or more */
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    ck_assert_ptr_null(wpg_embed_start(tmp, name, 5000, &ci, &d));
    ck_assert_int_eq(d.n, 1);
    wdiag_free(&d);
    ck_assert_ptr_null(ci);
    pgt_rmtree(tmp);
}
END_TEST

static Suite *pgt_suite(void)
{
    Suite *s = suite_create("pg_embed");
    TCase *tc = tcase_create("cluster");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, lifecycle);
    tcase_add_test(tc, missing_binaries);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(pgt_suite());
}
