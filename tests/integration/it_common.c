/*
 * it_common.c - helpers shared by the integration tests.
 */
#include "it_common.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void it_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

long long it_now_ms(void)
{
    struct timespec ts;

    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *it_strf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && s != NULL, "out of memory");
    return s;
}

char *it_hello_section(const char *so_path, const char *more)
{
    return it_strf("[plugin.hello]\npath = %s\nenabled = true\n%s", so_path,
                   more != NULL ? more : "");
}

weft_harness *it_start(const char *ini_extra, int threads)
{
    weft_harness *h = weft_harness_start(ini_extra, threads);

    ck_assert_msg(h != NULL, "weftd did not start (see the log above); "
                             "config extra:\n%s",
                  ini_extra != NULL ? ini_extra : "(none)");
    return h;
}

void it_write_config(weft_harness *h, const char *ini_extra)
{
    ck_assert_msg(weft_harness_write_config(h, ini_extra) == 0,
                  "cannot rewrite %s", weft_harness_config_path(h));
}

weft_harness *it_start_hello(const char *extra, int threads)
{
    char *ini = it_hello_section(IT_HELLO_SO, NULL);
    char *all = it_strf("%s%s", ini, extra != NULL ? extra : "");
    weft_harness *h = it_start(all, threads);

    free(ini);
    free(all);
    return h;
}

void it_stop_ok(weft_harness *h)
{
    int st = weft_harness_stop(h);

    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "weftd did not exit with status 0 after SIGTERM "
                  "(waitpid status %d: %s %d)",
                  st,
                  st == -1          ? "unknown"
                  : WIFEXITED(st)   ? "exit status"
                  : WIFSIGNALED(st) ? "signal"
                                    : "?",
                  st == -1          ? -1
                  : WIFEXITED(st)   ? WEXITSTATUS(st)
                  : WIFSIGNALED(st) ? WTERMSIG(st)
                                    : -1);
}

void it_req(weft_harness *h, const char *method, const char *path,
            const char *headers, const void *body, size_t len,
            weft_hresp *out)
{
    int rc = weft_harness_request(h, method, path, headers, body, len, out);

    ck_assert_msg(rc == 0, "%s %.200s: transport error (%s), no response",
                  method, path, strerror(errno));
}

void it_get(weft_harness *h, const char *path, weft_hresp *out)
{
    it_req(h, "GET", path, NULL, NULL, 0, out);
}

void it_get_status(weft_harness *h, const char *path, int status)
{
    weft_hresp r;

    it_get(h, path, &r);
    ck_assert_msg(r.status == status, "GET %.200s: expected %d, got %d: %.300s",
                  path, status, r.status, r.body);
    weft_hresp_free(&r);
}

void it_raw(weft_harness *h, const char *bytes, size_t len, weft_hresp *out)
{
    int fd = weft_harness_connect(h), rc;

    ck_assert_msg(fd >= 0, "connect: %s", strerror(errno));
    ck_assert_int_eq(weft_harness_send(fd, bytes, len), 0);
    rc = weft_hresp_read(fd, out, IT_READ_MS);
    ck_assert_msg(rc == 0, "no response to %.80s...: %s", bytes,
                  strerror(errno));
    weft_harness_close(fd);
}

json_t *it_json(const weft_hresp *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, 0, &err);

    ck_assert_msg(j != NULL, "body is not JSON (%s): %.300s", err.text,
                  r->body);
    return j;
}

const char *it_jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int it_contains_ci(const char *hay, const char *needle)
{
    return hay != NULL && needle != NULL && strcasestr(hay, needle) != NULL;
}

int it_header_has(const weft_hresp *r, const char *name, const char *needle)
{
    char buf[1024];

    return weft_hresp_header(r, name, buf, sizeof(buf)) != NULL &&
           it_contains_ci(buf, needle);
}

void it_assert_error(const weft_hresp *r, int status, const char *code)
{
    json_t *j, *e;
    const char *c, *m;

    ck_assert_msg(r->status == status, "expected status %d, got %d: %.300s",
                  status, r->status, r->body);
    ck_assert_msg(it_header_has(r, "Content-Type", "application/json"),
                  "error %d without a JSON Content-Type:\n%s", status,
                  r->head);
    j = it_json(r);
    e = json_object_get(j, "error");
    ck_assert_msg(json_is_object(e), "no \"error\" object in %.300s", r->body);
    c = it_jstr(e, "code");
    m = it_jstr(e, "message");
    ck_assert_msg(c != NULL && strcmp(c, code) == 0,
                  "error code: expected \"%s\", body %.300s", code, r->body);
    ck_assert_msg(m != NULL && *m != '\0', "error without message: %.300s",
                  r->body);
    json_decref(j);
}

char *it_ping_version(weft_harness *h)
{
    weft_hresp r;
    json_t *j;
    char *v;

    it_get(h, "/api/hello/ping", &r);
    ck_assert_msg(r.status == 200, "ping: status %d: %.300s", r.status,
                  r.body);
    j = it_json(&r);
    ck_assert_msg(it_jstr(j, "version") != NULL, "ping without version: %s",
                  r.body);
    v = strdup(it_jstr(j, "version"));
    ck_assert_ptr_nonnull(v);
    json_decref(j);
    weft_hresp_free(&r);
    return v;
}

json_t *it_plugin_entry(weft_harness *h, const char *name)
{
    weft_hresp r;
    json_t *j, *list, *e, *found = NULL;
    size_t i;

    it_get(h, "/api/plugins", &r);
    ck_assert_msg(r.status == 200, "/api/plugins: status %d: %.300s",
                  r.status, r.body);
    j = it_json(&r);
    list = json_object_get(j, "plugins");
    ck_assert_msg(json_is_array(list), "/api/plugins without a plugins "
                                       "array: %.500s",
                  r.body);
    json_array_foreach(list, i, e) {
        const char *n = it_jstr(e, "name");

        if (n != NULL && strcmp(n, name) == 0) {
            found = json_incref(e);
            break;
        }
    }
    json_decref(j);
    weft_hresp_free(&r);
    return found;
}

/* Is `pair` (label="value") among the labels in [lb, le)? */
static int it_has_label(const char *lb, const char *le, const char *pair)
{
    size_t n = strlen(pair);
    const char *p;

    for (p = lb; p + n <= le; p++) {
        if ((p == lb || p[-1] == ',' || p[-1] == '{' || p[-1] == ' ') &&
            strncmp(p, pair, n) == 0 &&
            (p + n == le || p[n] == ',' || p[n] == '}'))
            return 1;
    }
    return 0;
}

int it_metric(const char *text, const char *name, const char *const *labels,
              double *value)
{
    size_t nlen = strlen(name);
    const char *line, *eol, *lb, *le, *v;
    char *end;
    size_t i;
    int ok;

    for (line = text; line != NULL && *line != '\0';
         line = eol != NULL ? eol + 1 : NULL) {
        eol = strchr(line, '\n');
        if (*line == '#' || strncmp(line, name, nlen) != 0)
            continue;
        lb = line + nlen;
        if (*lb == '{') {
            le = memchr(lb, '}', (size_t)((eol ? eol : lb + strlen(lb)) - lb));
            if (le == NULL)
                continue;
            v = le + 1;
        } else if (*lb == ' ') {
            le = lb;
            v = lb;
        } else {
            continue;
        }
        ok = 1;
        for (i = 0; labels != NULL && labels[i] != NULL; i++)
            if (!it_has_label(lb, le, labels[i]))
                ok = 0;
        if (!ok)
            continue;
        errno = 0;
        *value = strtod(v, &end);
        if (end == v || errno != 0)
            continue;
        return 1;
    }
    return 0;
}

static char *it_slurp_fd(int fd)
{
    char *buf = NULL, *nb;
    size_t len = 0, cap = 0;
    ssize_t n;

    if (lseek(fd, 0, SEEK_SET) == (off_t)-1)
        return NULL;
    for (;;) {
        if (cap - len < 4097) {
            cap = cap ? cap * 2 : 8192;
            nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n == -1 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

int it_run(char *const argv[], char **out, char **err)
{
    char opath[] = "/tmp/weft-it-out-XXXXXX", epath[] = "/tmp/weft-it-err-XXXXXX";
    int ofd, efd, st = -1;
    pid_t pid, r;

    ofd = mkstemp(opath);
    ck_assert_msg(ofd >= 0, "mkstemp: %s", strerror(errno));
    efd = mkstemp(epath);
    ck_assert_msg(efd >= 0, "mkstemp: %s", strerror(errno));
    unlink(opath);
    unlink(epath);
    pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int nfd = open("/dev/null", O_RDONLY);

        if (nfd < 0 || dup2(nfd, 0) < 0 || dup2(ofd, 1) < 0 ||
            dup2(efd, 2) < 0)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    do {
        r = waitpid(pid, &st, 0);
    } while (r == -1 && errno == EINTR);
    ck_assert_msg(r == pid, "waitpid: %s", strerror(errno));
    if (out != NULL) {
        *out = it_slurp_fd(ofd);
        ck_assert_ptr_nonnull(*out);
    }
    if (err != NULL) {
        *err = it_slurp_fd(efd);
        ck_assert_ptr_nonnull(*err);
    }
    close(ofd);
    close(efd);
    return st;
}

const char *it_weftd(void)
{
    const char *p = getenv("WEFT_HARNESS_WEFTD");

    return p != NULL && *p != '\0' ? p : IT_WEFTD;
}

/*
 * Temporary directories of the tests. A failed assertion ends the test
 * process with _exit() (Check's fork mode), so no teardown runs: each
 * directory gets a watchdog process that removes it once the test process
 * is gone (EOF on a pipe only the test process writes to). it_rmtree()
 * removes the directory and stops its watchdog.
 */
struct it_tmpdir {
    char *dir;
    pid_t watchdog;
    int fd;
};

static struct it_tmpdir it_tmpdirs[16];

static void it_watch_dir(const char *dir)
{
    char rm[] = "rm", rf[] = "-rf", dd[] = "--";
    char *argv[5];
    struct it_tmpdir *t = NULL;
    int p[2], nfd, keep = getenv("WEFT_HARNESS_KEEP") != NULL;
    char c;
    size_t i;
    pid_t pid;

    for (i = 0; i < sizeof(it_tmpdirs) / sizeof(it_tmpdirs[0]); i++)
        if (it_tmpdirs[i].dir == NULL) {
            t = &it_tmpdirs[i];
            break;
        }
    if (t == NULL)
        return; /* no watchdog: only a leftover directory on failure */
    t->dir = strdup(dir);
    ck_assert_ptr_nonnull(t->dir);
    argv[0] = rm;
    argv[1] = rf;
    argv[2] = dd;
    argv[3] = t->dir;
    argv[4] = NULL;
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(nfd, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        (void)setpgid(0, 0);
        if (dup2(p[0], 0) < 0 || dup2(nfd, 1) < 0 || dup2(nfd, 2) < 0)
            _exit(1);
        (void)close_range(3, ~0U, 0);
        for (;;) { /* until EOF: the test process is gone */
            ssize_t n = read(0, &c, 1);

            if (n > 0 || (n == -1 && errno == EINTR))
                continue;
            break;
        }
        if (keep)
            _exit(0);
        execv("/bin/rm", argv);
        _exit(127);
    }
    close(p[0]);
    close(nfd);
    t->watchdog = pid;
    t->fd = p[1];
}

char *it_mkdtemp(void)
{
    const char *t = getenv("TMPDIR");
    char *d = it_strf("%s/weft-it-XXXXXX", t != NULL && *t ? t : "/tmp");

    ck_assert_msg(mkdtemp(d) != NULL, "mkdtemp %s: %s", d, strerror(errno));
    it_watch_dir(d);
    return d;
}

static int it_rm_entry(const char *path, const struct stat *sb, int flag,
                       struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void it_rmtree(const char *dir)
{
    size_t i;

    if (dir == NULL)
        return;
    if (getenv("WEFT_HARNESS_KEEP") == NULL)
        (void)nftw(dir, it_rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    for (i = 0; i < sizeof(it_tmpdirs) / sizeof(it_tmpdirs[0]); i++) {
        struct it_tmpdir *t = &it_tmpdirs[i];

        if (t->dir == NULL || strcmp(t->dir, dir) != 0)
            continue;
        (void)kill(t->watchdog, SIGKILL);
        while (waitpid(t->watchdog, NULL, 0) == -1 && errno == EINTR)
            ;
        close(t->fd);
        free(t->dir);
        memset(t, 0, sizeof(*t));
    }
}

void it_copy_file(const char *from, const char *to)
{
    char buf[65536];
    ssize_t n, w, off;
    int in, out;

    in = open(from, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    ck_assert_msg(out >= 0, "%s: %s", to, strerror(errno));
    for (;;) {
        n = read(in, buf, sizeof(buf));
        if (n == -1 && errno == EINTR)
            continue;
        ck_assert_msg(n >= 0, "read %s: %s", from, strerror(errno));
        if (n == 0)
            break;
        for (off = 0; off < n; off += w) {
            w = write(out, buf + off, (size_t)(n - off));
            ck_assert_msg(w > 0, "write %s: %s", to, strerror(errno));
        }
    }
    close(in);
    ck_assert_int_eq(close(out), 0);
}

void it_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Fork mode stays on: a crash fails one test, not the run. */
static int it_srunner(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, getenv("CK_VERBOSITY") != NULL ? CK_ENV : CK_VERBOSE);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

int it_run_suite_clean(Suite *s, const char *const *prefixes)
{
    char *drop[64];
    size_t n = 0;

    for (char **e = environ; *e != NULL && n < 64; e++)
        for (const char *const *p = prefixes; *p != NULL; p++)
            if (strncmp(*e, *p, strlen(*p)) == 0) {
                const char *eq = strchr(*e, '=');
                drop[n++] = eq ? strndup(*e, (size_t)(eq - *e)) : strdup(*e);
                break;
            }
    for (size_t i = 0; i < n; i++) {
        if (drop[i] != NULL)
            unsetenv(drop[i]);
        free(drop[i]);
    }
    if (getenv("WEFT_HARNESS_WEFTD") == NULL &&
        setenv("WEFT_HARNESS_WEFTD", IT_WEFTD, 1) != 0)
        return 1;
    return it_srunner(s);
}

int it_run_suite(Suite *s)
{
    /* Run by hand, outside ctest: the same environment as ctest gives
     * (tests/integration/CMakeLists.txt), i.e. the weftd of this build and
     * no database (these tests are about HTTP and plugins). */
    if (getenv("WEFT_HARNESS_WEFTD") == NULL &&
        setenv("WEFT_HARNESS_WEFTD", IT_WEFTD, 1) != 0)
        return 1;
    if (getenv("WEFT_DATABASE_ENABLED") == NULL &&
        setenv("WEFT_DATABASE_ENABLED", "false", 1) != 0)
        return 1;
    return it_srunner(s);
}
