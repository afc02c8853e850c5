/* pg_embed.c - a private PostgreSQL cluster as a child of weftd.
 *
 * Layout under `dir`: data/ (PGDATA), run/ (the Unix socket), initdb.log
 * and postgres.log. The server listens on no TCP address; its socket
 * directory is mode 0700 and owned by the user the server runs as, so only
 * that user and root can reach it. That is why initdb's trust
 * authentication is safe here: whoever can open the socket could read the
 * data files anyway.
 *
 * Every child is prepared completely before fork (argv, environment,
 * groups, file descriptors), so the child only makes async-signal-safe
 * calls before exec: weftd has threads, and with ASan even malloc between
 * fork and exec can deadlock. Every wait polls with a deadline. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "pg_embed.h"

#define WPG_BINDIR "/usr/lib/postgresql/15/bin"
#define WPG_PORT "5432"
#define WPG_SOCKET_NAME "/.s.PGSQL." WPG_PORT
#define WPG_RUN_AS "postgres"
#define WPG_POLL_MS 50
#define WPG_DEFAULT_MS 30000
#define WPG_INITDB_MS 120000
#define WPG_STOP_MS 30000
#define WPG_QUIT_MS 5000
#define WPG_KILL_MS 5000
#define WPG_START_FAIL_MS 5000 /* fast-shutdown grace after a failed start */
#define WPG_TAIL_LINES 8
#define WPG_NAMEDATALEN 64

struct wpg_embed {
    pid_t pid;     /* the postmaster, also its process group */
    int running;   /* 0 once reaped */
    char *dir;     /* absolute */
    char *data;    /* <dir>/data, PGDATA */
    char *run;     /* <dir>/run, the socket directory */
    char *pidfile; /* <dir>/data/postmaster.pid */
    char *log;     /* <dir>/postgres.log */
};

/* Who initdb and postgres run as. */
struct wpg_user {
    int drop; /* weftd is root: switch to uid/gid/groups in the child */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int ngroups;
    char name[64];
};

/* Everything a child needs, ready before fork. */
struct wpg_spawn {
    const char *path;
    char **argv;
    char **envp;
    int in, out; /* /dev/null and the log file, both >= 3 */
    const struct wpg_user *u;
    pid_t parent;
    int maxfd; /* for closing fds when close_range is missing */
};

/* ---- small helpers ----------------------------------------------------- */

static int64_t wpg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wpg_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *wpg_join(const char *a, const char *b)
{
    char *s;

    if (asprintf(&s, "%s/%s", a, b) < 0)
        return NULL;
    return s;
}

/* Open with O_CLOEXEC and make sure the fd is >= 3, so that dup2 onto
 * 0..2 in the child never meets itself. */
static int wpg_open_high(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags | O_CLOEXEC, mode), hi;

    if (fd < 0 || fd > 2)
        return fd;
    hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return hi;
}

/* Append `v` to `f` as a conninfo value: single-quoted, \ and ' escaped. */
static void wpg_put_value(FILE *f, const char *v)
{
    fputc('\'', f);
    for (; *v != '\0'; v++) {
        if (*v == '\'' || *v == '\\')
            fputc('\\', f);
        fputc(*v, f);
    }
    fputc('\'', f);
}

/* The conninfo weftd gets back; `extra` (trusted, already formatted) is
 * appended for the internal connections with timeouts. */
static char *wpg_conninfo(const char *run, const char *dbname,
                          const char *extra)
{
    char *s = NULL;
    size_t len;
    FILE *f = open_memstream(&s, &len);

    if (f == NULL)
        return NULL;
    fputs("host=", f);
    wpg_put_value(f, run);
    fputs(" port=" WPG_PORT " dbname=", f);
    wpg_put_value(f, dbname);
    fputs(" user=" WPG_EMBED_USER, f);
    if (extra != NULL)
        fprintf(f, " %s", extra);
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void wpg_status_str(int status, char *buf, size_t cap)
{
    const char *abbr;

    if (status == -1)
        snprintf(buf, cap, "exited (status unknown: reaped elsewhere)");
    else if (WIFEXITED(status))
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) {
        abbr = sigabbrev_np(WTERMSIG(status));
        snprintf(buf, cap, "was killed by signal %d (SIG%s)",
                 WTERMSIG(status), abbr != NULL ? abbr : "?");
    } else
        snprintf(buf, cap, "stopped with wait status %#x", status);
}

/* Add the last lines written to `path` after byte `from` to `d`: that is
 * where initdb and postgres say why they failed. */
static void wpg_tail(const char *path, off_t from, struct wdiag *d)
{
    char buf[4096], *lines[WPG_TAIL_LINES], *p, *nl;
    off_t end, at;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC), nlines = 0;

    if (fd < 0)
        return;
    end = lseek(fd, 0, SEEK_END);
    at = end - (off_t)(sizeof(buf) - 1);
    if (at < from)
        at = from;
    if (end <= at || (n = pread(fd, buf, sizeof(buf) - 1, at)) <= 0) {
        close(fd);
        return;
    }
    close(fd);
    buf[n] = '\0';
    p = buf;
    if (at > from && (nl = strchr(p, '\n')) != NULL)
        p = nl + 1; /* skip the partial first line */
    for (; p != NULL; p = nl) {
        if ((nl = strchr(p, '\n')) != NULL)
            *nl++ = '\0';
        if (*p == '\0')
            continue;
        if (nlines == WPG_TAIL_LINES) {
            memmove(lines, lines + 1, sizeof(lines) - sizeof(lines[0]));
            nlines--;
        }
        lines[nlines++] = p;
    }
    for (int i = 0; i < nlines; i++)
        wdiag_add(d, path, 0, "%s", lines[i]);
}

static off_t wpg_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* ---- who runs the server ----------------------------------------------- */

static int wpg_user_get(struct wpg_user *u, struct wdiag *d)
{
    struct passwd pw, *res = NULL;
    char buf[16384];
    int n = 16, rc;

    memset(u, 0, sizeof(*u));
    if (geteuid() != 0) {
        u->uid = geteuid();
        u->gid = getegid();
        if (getpwuid_r(u->uid, &pw, buf, sizeof(buf), &res) == 0 &&
            res != NULL)
            snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
        else
            snprintf(u->name, sizeof(u->name), "uid %ld", (long)u->uid);
        return 0;
    }
    /* initdb and postgres refuse to run as root. */
    rc = getpwnam_r(WPG_RUN_AS, &pw, buf, sizeof(buf), &res);
    if (res == NULL) {
        wdiag_add(d, NULL, 0, "weftd runs as root, and the embedded PostgreSQL "
                              "must run as the '" WPG_RUN_AS "' system user, "
                              "which does not exist%s%s (install the postgresql "
                              "package, or run weftd as an unprivileged user)",
                  rc != 0 ? ": " : "", rc != 0 ? strerror(rc) : "");
        return -1;
    }
    if (pw.pw_uid == 0) {
        wdiag_add(d, NULL, 0, "the '" WPG_RUN_AS "' user has uid 0; "
                              "PostgreSQL refuses to run as root");
        return -1;
    }
    u->drop = 1;
    u->uid = pw.pw_uid;
    u->gid = pw.pw_gid;
    snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
    /* initgroups() reads /etc/group through NSS, which is not safe after
     * fork; learn the groups now and only setgroups() in the child. */
    for (;;) {
        gid_t *g = realloc(u->groups, (size_t)n * sizeof(*g));
        int want = n;

        if (g == NULL) {
            wdiag_add(d, NULL, 0, "out of memory");
            return -1;
        }
        u->groups = g;
        if (getgrouplist(pw.pw_name, pw.pw_gid, g, &want) >= 0) {
            u->ngroups = want;
            return 0;
        }
        if (want <= n || want > 65536) {
            u->groups[0] = pw.pw_gid;
            u->ngroups = 1;
            return 0;
        }
        n = want;
    }
}

static void wpg_user_free(struct wpg_user *u)
{
    free(u->groups);
    u->groups = NULL;
}

/* Could `u` search (traverse) a directory with this stat? */
static int wpg_can_search(const struct wpg_user *u, const struct stat *st)
{
    if (st->st_uid == u->uid)
        return (st->st_mode & S_IXUSR) != 0;
    for (int i = 0; i < u->ngroups; i++)
        if (st->st_gid == u->groups[i])
            return (st->st_mode & S_IXGRP) != 0;
    if (st->st_gid == u->gid)
        return (st->st_mode & S_IXGRP) != 0;
    return (st->st_mode & S_IXOTH) != 0;
}

/* As root, every directory above the cluster must let the server user
 * through; say which one does not rather than let initdb fail obscurely. */
static int wpg_check_path(const struct wpg_user *u, const char *abs,
                          struct wdiag *d)
{
    char *p = strdup(abs), *s;
    struct stat st;
    int rc = 0;

    if (p == NULL)
        return -1;
    for (s = p;; s++) {
        char c = *s;

        if (c != '/' && c != '\0')
            continue;
        *s = '\0';
        if (stat(s == p ? "/" : p, &st) == 0 && !wpg_can_search(u, &st)) {
            wdiag_add(d, s == p ? "/" : p, 0,
                      "the '%s' user, which runs the embedded PostgreSQL, "
                      "cannot enter this directory (mode %03o); allow it "
                      "(chmod o+x) or put the data directory elsewhere",
                      u->name, (unsigned)(st.st_mode & 07777));
            rc = -1;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return rc;
}

/* ---- directories ------------------------------------------------------- */

/* mkdir -p. Directories made here get `mode` for the last component and,
 * as root, 0711 for the others so the server user can pass through. */
static int wpg_mkdirs(const char *path, mode_t mode, struct wdiag *d)
{
    char *p = strdup(path), *s;
    struct stat st;
    int rc = 0;

    if (p == NULL)
        return -1;
    for (s = p + 1;; s++) {
        char c = *s;
        int last;

        if (c != '/' && c != '\0')
            continue;
        last = c == '\0' || s[1] == '\0';
        *s = '\0';
        if (mkdir(p, 0700) == 0) {
            /* chmod, not mkdir's mode: the umask must not take bits away */
            if (chmod(p, last ? mode : (geteuid() == 0 ? 0711 : 0755)) != 0) {
                wdiag_add(d, p, 0, "chmod: %s", strerror(errno));
                rc = -1;
                break;
            }
        } else if (errno != EEXIST) {
            wdiag_add(d, p, 0, "cannot create directory: %s", strerror(errno));
            rc = -1;
            break;
        }
        *s = c;
        if (c == '\0' || last)
            break;
    }
    if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
        wdiag_add(d, path, 0, "not a directory");
        rc = -1;
    }
    free(p);
    return rc;
}

/* A private 0700 directory owned by `u`, made if missing. */
static int wpg_private_dir(const char *path, const struct wpg_user *u,
                           struct wdiag *d)
{
    struct stat st;

    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        wdiag_add(d, path, 0, "cannot create directory: %s", strerror(errno));
        return -1;
    }
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        wdiag_add(d, path, 0, "not a directory");
        return -1;
    }
    if (u->drop && st.st_uid != u->uid &&
        lchown(path, u->uid, u->gid) != 0) {
        wdiag_add(d, path, 0, "chown %s: %s", u->name, strerror(errno));
        return -1;
    }
    if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) != 0) {
        wdiag_add(d, path, 0, "chmod: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int wpg_dir_empty(const char *path)
{
    DIR *dp = opendir(path);
    struct dirent *e;
    int empty = 1;

    if (dp == NULL)
        return errno == ENOENT;
    while (empty && (e = readdir(dp)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(dp);
    return empty;
}

/* ---- children ---------------------------------------------------------- */

/* Report a failure between fork and exec on the log (our stderr by then)
 * with write(2) only. */
static void wpg_child_fail(const char *what, const char *path, int err)
{
    char num[16];
    int i = (int)sizeof(num);

    num[--i] = '\n';
    do
        num[--i] = (char)('0' + err % 10);
    while ((err /= 10) > 0 && i > 0);
    (void)!write(2, "weftd: ", 7);
    (void)!write(2, what, strlen(what));
    (void)!write(2, " ", 1);
    (void)!write(2, path, strlen(path));
    (void)!write(2, ": errno ", 8);
    (void)!write(2, num + i, sizeof(num) - (size_t)i);
}

static __attribute__((noreturn)) void wpg_child(const struct wpg_spawn *s)
{
    static const int dfl[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE,
                              SIGCHLD, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    sigset_t none;

    /* Own process group: a Ctrl-C on weftd's terminal must not reach the
     * server before weftd has shut it down in order. */
    setpgid(0, 0);
    /* Blocked and ignored signals survive exec; weftd blocks and ignores
     * some, and we must be able to stop initdb with SIGINT. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        sigaction(dfl[i], &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(s->in, 0) < 0 || dup2(s->out, 1) < 0 || dup2(s->out, 2) < 0)
        _exit(126);
    /* Nothing else of weftd's (listening sockets, plugin files) may leak
     * into the server, whatever forgot O_CLOEXEC. */
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < s->maxfd; fd++)
            close(fd);
    umask(077);
    if (s->u->drop &&
        (setgroups((size_t)s->u->ngroups, s->u->groups) != 0 ||
         setgid(s->u->gid) != 0 || setuid(s->u->uid) != 0)) {
        wpg_child_fail("cannot switch to user", s->u->name, errno);
        _exit(126);
    }
    /* If weftd dies without stopping us, shut down fast rather than live
     * on as an orphan holding the data directory. Set after setuid, which
     * clears it; then close the race with a parent that is already gone. */
    prctl(PR_SET_PDEATHSIG, SIGINT);
    if (getppid() != s->parent)
        _exit(126);
    if (chdir("/") != 0)
        _exit(126);
    execve(s->path, s->argv, s->envp);
    wpg_child_fail("cannot execute", s->path, errno);
    _exit(127);
}

/* Fork and exec; returns the pid or -1 (reason in `d`). */
static pid_t wpg_spawn(struct wpg_spawn *s, struct wdiag *d)
{
    pid_t pid;
    long max = sysconf(_SC_OPEN_MAX);

    s->maxfd = max > 0 && max < 65536 ? (int)max : 65536;
    s->parent = getpid();
    pid = fork();
    if (pid < 0) {
        wdiag_add(d, NULL, 0, "fork %s: %s", s->path, strerror(errno));
        return -1;
    }
    if (pid == 0)
        wpg_child(s);
    /* Also from this side, so a signal to the group right away finds it. */
    setpgid(pid, pid);
    return pid;
}

/* Is any process of group `pgid` still running (zombies do not count)?
 * Linux-only, like the rest of weftd: /proc is the one place that tells. */
static int wpg_group_running(pid_t pgid)
{
    DIR *dp = opendir("/proc");
    struct dirent *e;
    char path[64], buf[512], *p, state;
    long pgrp;
    ssize_t n;
    int fd, running = 0;

    if (dp == NULL)
        return 0;
    while (!running && (e = readdir(dp)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%.20s/stat", e->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            continue;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        /* "pid (comm) state ppid pgrp ..."; comm may hold anything */
        if ((p = strrchr(buf, ')')) != NULL &&
            sscanf(p + 1, " %c %*d %ld", &state, &pgrp) == 2 &&
            pgrp == (long)pgid && state != 'Z' && state != 'X')
            running = 1;
    }
    closedir(dp);
    return running;
}

/* SIGKILL what is left of a dead postmaster's group and wait (bounded) for
 * it to be gone: its orphaned backends keep the shared memory attached,
 * and while they do a new postmaster refuses to start. */
static void wpg_kill_group(pid_t pgid)
{
    int64_t end;

    if (kill(-pgid, SIGKILL) != 0)
        return; /* ESRCH: nobody left, the usual case */
    end = wpg_now_ms() + WPG_KILL_MS;
    while (wpg_group_running(pgid) && wpg_now_ms() < end)
        wpg_sleep_ms(10);
}

/* Wait up to `ms` (0: just look) for `pid` to exit. Returns 1 and fills
 * *status once it is reaped (-1 when someone else reaped it), 0 while it
 * runs. Before reaping, whatever is left in its process group is killed:
 * the backends of a crashed postmaster would otherwise keep the shared
 * memory busy and make the next start fail. The zombie keeps the group's
 * id from being reused until then. */
static int wpg_reap(pid_t pid, int ms, int *status)
{
    int64_t end = wpg_now_ms() + ms;
    siginfo_t si;

    for (;;) {
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
            if (errno == EINTR)
                continue;
            *status = -1; /* ECHILD: not ours to wait for any more */
            return 1;
        }
        if (si.si_pid == pid) {
            wpg_kill_group(pid);
            while (waitpid(pid, status, 0) < 0) {
                if (errno != EINTR) {
                    *status = -1;
                    break;
                }
            }
            return 1;
        }
        if (wpg_now_ms() >= end)
            return 0;
        wpg_sleep_ms(WPG_POLL_MS);
    }
}

/* Bring the postmaster down: SIGINT (fast shutdown), then SIGQUIT
 * (immediate), then SIGKILL to its whole group, each with a deadline. */
static void wpg_halt(struct wpg_embed *pg, int grace_ms)
{
    int status;

    if (!pg->running)
        return;
    kill(pg->pid, SIGINT);
    if (!wpg_reap(pg->pid, grace_ms, &status)) {
        wlog(WLOG_WARN, "pg", "postgres (pid %ld) did not stop within %d ms; "
                              "sending SIGQUIT",
             (long)pg->pid, grace_ms);
        kill(pg->pid, SIGQUIT);
        if (!wpg_reap(pg->pid, WPG_QUIT_MS, &status)) {
            kill(-pg->pid, SIGKILL);
            if (!wpg_reap(pg->pid, WPG_KILL_MS, &status)) {
                wlog(WLOG_ERROR, "pg", "postgres (pid %ld) survives SIGKILL; "
                                       "giving up on it",
                     (long)pg->pid);
                return;
            }
        }
    }
    pg->running = 0;
}

/* ---- initdb ------------------------------------------------------------ */

static int wpg_initdb(const char *initdb, const char *dir, const char *data,
                      char **envp, const struct wpg_user *u, struct wdiag *d)
{
    char *argv[] = {(char *)initdb, "-D", (char *)data, "-A", "trust",
                    "--username=" WPG_EMBED_USER, "--encoding=UTF8",
                    "--locale=C.UTF-8", "--no-instructions", NULL};
    struct wpg_spawn s = {initdb, argv, envp, -1, -1, u, 0, 0};
    char *log = wpg_join(dir, "initdb.log"), st[96];
    int status, rc = -1;
    pid_t pid;

    if (log == NULL)
        return -1;
    s.in = wpg_open_high("/dev/null", O_RDONLY, 0);
    s.out = wpg_open_high(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (s.in < 0 || s.out < 0) {
        wdiag_add(d, s.out < 0 ? log : "/dev/null", 0, "open: %s",
                  strerror(errno));
        goto out;
    }
    wlog(WLOG_INFO, "pg", "creating a PostgreSQL cluster in %s (as %s)", data,
         u->name);
    if ((pid = wpg_spawn(&s, d)) < 0)
        goto out;
    if (!wpg_reap(pid, WPG_INITDB_MS, &status)) {
        kill(-pid, SIGKILL);
        wpg_reap(pid, WPG_KILL_MS, &status);
        wdiag_add(d, NULL, 0, "initdb did not finish within %d s; killed it "
                              "(%s may be half made: remove it)",
                  WPG_INITDB_MS / 1000, data);
        goto out;
    }
    if (status != 0) {
        wpg_status_str(status, st, sizeof(st));
        wdiag_add(d, NULL, 0, "initdb %s", st);
        wpg_tail(log, 0, d);
        goto out;
    }
    rc = 0;
out:
    if (s.in >= 0)
        close(s.in);
    if (s.out >= 0)
        close(s.out);
    free(log);
    return rc;
}

/* ---- readiness and the application database ---------------------------- */

/* The pid on the first line of postmaster.pid, or -1. */
static long wpg_pidfile_pid(const char *pidfile)
{
    char buf[32];
    ssize_t n;
    int fd = open(pidfile, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* Ready means: something answers on our socket, and postmaster.pid says it
 * is our child. Another postmaster still running on the same directory
 * would answer too; ours then exits with "lock file already exists". */
static int wpg_wait_ready(struct wpg_embed *pg, const char *ping,
                          int timeout_ms, off_t from, struct wdiag *d)
{
    int64_t end = wpg_now_ms() + timeout_ms;
    char st[96];
    int status;

    for (;;) {
        PGPing r = PQping(ping);

        if (r == PQPING_OK && wpg_pidfile_pid(pg->pidfile) == (long)pg->pid)
            return 0;
        if (r == PQPING_NO_ATTEMPT) {
            wdiag_add(d, NULL, 0, "libpq refuses the conninfo: %s", ping);
            return -1;
        }
        if (wpg_reap(pg->pid, 0, &status)) {
            pg->running = 0;
            wpg_status_str(status, st, sizeof(st));
            wdiag_add(d, NULL, 0, "postgres %s during start-up", st);
            wpg_tail(pg->log, from, d);
            return -1;
        }
        if (wpg_now_ms() >= end) {
            if (r == PQPING_OK)
                wdiag_add(d, pg->pidfile, 0,
                          "another postmaster (pid %ld) runs on this cluster",
                          wpg_pidfile_pid(pg->pidfile));
            else
                wdiag_add(d, NULL, 0, "postgres did not accept connections "
                                      "within %d ms (%s)",
                          timeout_ms,
                          r == PQPING_REJECT ? "still starting or recovering"
                                             : "no answer on its socket");
            wpg_tail(pg->log, from, d);
            return -1;
        }
        wpg_sleep_ms(WPG_POLL_MS);
    }
}

static int wpg_ensure_db(const char *admin, const char *dbname,
                         struct wdiag *d)
{
    const char *params[1] = {dbname};
    PGconn *c = PQconnectdb(admin);
    PGresult *r = NULL;
    char *id = NULL, *sql = NULL;
    const char *state;
    int rc = -1;

    if (PQstatus(c) != CONNECTION_OK) {
        wdiag_add(d, NULL, 0, "cannot connect to the embedded PostgreSQL: %s",
                  PQerrorMessage(c));
        goto out;
    }
    r = PQexecParams(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1,
                     NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        wdiag_add(d, NULL, 0, "looking up database '%s': %s", dbname,
                  PQerrorMessage(c));
        goto out;
    }
    if (PQntuples(r) > 0) {
        rc = 0;
        goto out;
    }
    PQclear(r);
    r = NULL;
    id = PQescapeIdentifier(c, dbname, strlen(dbname));
    if (id == NULL || asprintf(&sql, "CREATE DATABASE %s", id) < 0) {
        sql = NULL;
        wdiag_add(d, NULL, 0, "cannot quote database name '%s'", dbname);
        goto out;
    }
    r = PQexec(c, sql);
    state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        wlog(WLOG_INFO, "pg", "created database %s", id);
        rc = 0;
    } else if (state != NULL && strcmp(state, "42P04") == 0)
        rc = 0; /* duplicate_database: somebody made it meanwhile */
    else
        wdiag_add(d, NULL, 0, "%s: %s", sql, PQerrorMessage(c));
out:
    PQclear(r);
    PQfreemem(id);
    free(sql);
    PQfinish(c);
    return rc;
}

/* ---- public ------------------------------------------------------------ */

static int wpg_find_bins(char **initdb, char **postgres, struct wdiag *d)
{
    const char *dir = getenv("WEFT_PG_BINDIR");

    if (dir == NULL || *dir == '\0')
        dir = WPG_BINDIR;
    *initdb = wpg_join(dir, "initdb");
    *postgres = wpg_join(dir, "postgres");
    if (*initdb == NULL || *postgres == NULL)
        return -1;
    if (access(*initdb, X_OK) != 0 || access(*postgres, X_OK) != 0) {
        wdiag_add(d, NULL, 0, "the PostgreSQL server programs (initdb, "
                              "postgres) are not in %s: install the "
                              "postgresql package (apt-get install "
                              "postgresql) or set WEFT_PG_BINDIR",
                  dir);
        return -1;
    }
    return 0;
}

static int wpg_check_args(const char *dir, const char *dbname,
                          char **conninfo, struct wdiag *d)
{
    if (dir == NULL || *dir == '\0' || conninfo == NULL) {
        wdiag_add(d, NULL, 0, "embedded PostgreSQL: no directory given");
        return -1;
    }
    if (dbname == NULL || *dbname == '\0' ||
        strlen(dbname) >= WPG_NAMEDATALEN) {
        /* PostgreSQL would silently truncate a longer name. */
        wdiag_add(d, NULL, 0, "database name '%s' must have 1 to %d bytes",
                  dbname != NULL ? dbname : "", WPG_NAMEDATALEN - 1);
        return -1;
    }
    return 0;
}

/* data/ either holds a cluster for `u` (1), is missing or empty (0), or is
 * something we must not touch (-1). */
static int wpg_data_state(const char *data, const struct wpg_user *u,
                          struct wdiag *d)
{
    char *ver = wpg_join(data, "PG_VERSION");
    struct stat st;
    int have;

    if (ver == NULL)
        return -1;
    have = access(ver, F_OK) == 0;
    free(ver);
    if (!have) {
        if (wpg_dir_empty(data))
            return 0;
        wdiag_add(d, data, 0, "exists but holds no cluster (no PG_VERSION), "
                              "perhaps from an interrupted initdb; remove it "
                              "and weftd will create a fresh one");
        return -1;
    }
    if (stat(data, &st) == 0 && st.st_uid != u->uid) {
        wdiag_add(d, data, 0, "belongs to uid %ld, but the embedded "
                              "PostgreSQL runs as %s (uid %ld); chown -R it",
                  (long)st.st_uid, u->name, (long)u->uid);
        return -1;
    }
    return 1;
}

/* Start the postmaster; fills pg->pid. */
static int wpg_postmaster(struct wpg_embed *pg, const char *postgres,
                          char **envp, const struct wpg_user *u,
                          struct wdiag *d)
{
    char *argv[] = {(char *)postgres,
                    "-D", pg->data,
                    "-k", pg->run,
                    "-p", WPG_PORT,
                    "-c", "listen_addresses=",
                    "-c", "unix_socket_permissions=0700",
                    "-c", "fsync=on",
                    "-c", "max_connections=100",
                    "-c", "shared_buffers=128MB",
                    "-c", "logging_collector=off",
                    "-c", "log_destination=stderr",
                    "-c", "log_line_prefix=%m [%p] ",
                    "-c", "cluster_name=weft",
                    NULL};
    struct wpg_spawn s = {postgres, argv, envp, -1, -1, u, 0, 0};
    int rc = -1;

    s.in = wpg_open_high("/dev/null", O_RDONLY, 0);
    s.out = wpg_open_high(pg->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (s.in < 0 || s.out < 0) {
        wdiag_add(d, s.out < 0 ? pg->log : "/dev/null", 0, "open: %s",
                  strerror(errno));
        goto out;
    }
    pg->pid = wpg_spawn(&s, d);
    if (pg->pid > 0) {
        pg->running = 1;
        rc = 0;
    }
out:
    if (s.in >= 0)
        close(s.in);
    if (s.out >= 0)
        close(s.out);
    return rc;
}

static void wpg_free(struct wpg_embed *pg)
{
    free(pg->dir);
    free(pg->data);
    free(pg->run);
    free(pg->pidfile);
    free(pg->log);
    free(pg);
}

/* Make `dir` and run/, fill in the paths. */
static int wpg_layout(struct wpg_embed *pg, const char *dir,
                      const struct wpg_user *u, struct wdiag *d)
{
    const size_t sun = sizeof(((struct sockaddr_un *)0)->sun_path);
    struct stat st;

    if (wpg_mkdirs(dir, u->drop ? 0711 : 0700, d) != 0)
        return -1;
    if ((pg->dir = realpath(dir, NULL)) == NULL) {
        wdiag_add(d, dir, 0, "%s", strerror(errno));
        return -1;
    }
    /* As root, our own directory must let the server user through to
     * data/ and run/; it lists nothing to others (no r bit). */
    if (u->drop && stat(pg->dir, &st) == 0 && st.st_uid == 0 &&
        (st.st_mode & 0711) != 0711 &&
        chmod(pg->dir, (st.st_mode & 07777) | 0711) != 0) {
        wdiag_add(d, pg->dir, 0, "chmod: %s", strerror(errno));
        return -1;
    }
    if (u->drop && wpg_check_path(u, pg->dir, d) != 0)
        return -1;
    pg->data = wpg_join(pg->dir, "data");
    pg->run = wpg_join(pg->dir, "run");
    pg->pidfile = wpg_join(pg->dir, "data/postmaster.pid");
    pg->log = wpg_join(pg->dir, "postgres.log");
    if (pg->data == NULL || pg->run == NULL || pg->pidfile == NULL ||
        pg->log == NULL)
        return -1;
    if (strlen(pg->run) + strlen(WPG_SOCKET_NAME) >= sun) {
        wdiag_add(d, pg->run, 0, "path too long for a Unix socket (at most "
                                 "%zu bytes); choose a shorter data directory",
                  sun - strlen(WPG_SOCKET_NAME) - 1);
        return -1;
    }
    return wpg_private_dir(pg->run, u, d);
}

/* Start the postmaster, wait until it is ready and the database exists. */
static int wpg_run(struct wpg_embed *pg, const char *postgres,
                   const char *dbname, char **envp, const struct wpg_user *u,
                   int timeout_ms, char **conninfo, struct wdiag *d)
{
    off_t from = wpg_size(pg->log);
    char *ping = NULL, *admin = NULL, *ci = NULL, extra[96];
    int rc = -1;

    if (wpg_postmaster(pg, postgres, envp, u, d) != 0)
        return -1;
    /* connect_timeout counts whole seconds, at least 2: the shortest bound
     * for a ping that meets a wedged server. */
    ping = wpg_conninfo(pg->run, "postgres", "connect_timeout=2");
    snprintf(extra, sizeof(extra),
             "connect_timeout=%d options='-c statement_timeout=%d'",
             timeout_ms / 1000 > 2 ? timeout_ms / 1000 : 2, timeout_ms);
    admin = wpg_conninfo(pg->run, "postgres", extra);
    ci = wpg_conninfo(pg->run, dbname, NULL);
    if (ping != NULL && admin != NULL && ci != NULL &&
        wpg_wait_ready(pg, ping, timeout_ms, from, d) == 0 &&
        wpg_ensure_db(admin, dbname, d) == 0) {
        *conninfo = ci;
        ci = NULL;
        rc = 0;
    }
    free(ping);
    free(admin);
    free(ci);
    return rc;
}

struct wpg_embed *wpg_embed_start(const char *dir, const char *dbname,
                                  int timeout_ms, char **conninfo,
                                  struct wdiag *d)
{
    struct wpg_embed *pg = NULL;
    struct wpg_user u = {0};
    char *initdb = NULL, *postgres = NULL, *tz, envtz[256];
    char *envp[4] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL, NULL};
    int state, ok = 0;

    if (timeout_ms <= 0)
        timeout_ms = WPG_DEFAULT_MS;
    if (wpg_check_args(dir, dbname, conninfo, d) != 0 ||
        wpg_find_bins(&initdb, &postgres, d) != 0 || wpg_user_get(&u, d) != 0)
        goto out;
    /* A minimal environment: weftd's own (secrets in WEFT_* overrides, PG*
     * variables meant for clients) is none of the server's business. */
    if ((tz = getenv("TZ")) != NULL &&
        snprintf(envtz, sizeof(envtz), "TZ=%s", tz) < (int)sizeof(envtz))
        envp[2] = envtz;
    if ((pg = calloc(1, sizeof(*pg))) == NULL ||
        wpg_layout(pg, dir, &u, d) != 0 ||
        (state = wpg_data_state(pg->data, &u, d)) < 0)
        goto out;
    if (state == 0 &&
        (wpg_private_dir(pg->data, &u, d) != 0 ||
         wpg_initdb(initdb, pg->dir, pg->data, envp, &u, d) != 0))
        goto out;
    if (wpg_run(pg, postgres, dbname, envp, &u, timeout_ms, conninfo, d) != 0)
        goto out;
    wlog(WLOG_INFO, "pg", "PostgreSQL ready (pid %ld, socket in %s, log %s)",
         (long)pg->pid, pg->run, pg->log);
    ok = 1;
out:
    if (!ok && pg != NULL) {
        wpg_halt(pg, WPG_START_FAIL_MS);
        wpg_free(pg);
        pg = NULL;
    }
    wpg_user_free(&u);
    free(initdb);
    free(postgres);
    return pg;
}

void wpg_embed_stop(struct wpg_embed *pg)
{
    if (pg == NULL)
        return;
    if (pg->running) {
        wpg_halt(pg, WPG_STOP_MS);
        if (!pg->running)
            wlog(WLOG_INFO, "pg", "PostgreSQL stopped");
    }
    wpg_free(pg);
}

pid_t wpg_embed_pid(const struct wpg_embed *pg)
{
    return pg != NULL ? pg->pid : 0;
}

int wpg_embed_alive(struct wpg_embed *pg)
{
    char st[96];
    int status;

    if (pg == NULL || !pg->running)
        return 0;
    if (!wpg_reap(pg->pid, 0, &status))
        return 1;
    pg->running = 0;
    wpg_status_str(status, st, sizeof(st));
    wlog(WLOG_ERROR, "pg", "PostgreSQL (pid %ld) %s; see %s", (long)pg->pid,
         st, pg->log);
    return 0;
}
