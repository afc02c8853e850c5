/*
 * it_nats.c - a real nats-server for the tests (see it_nats.h).
 */
#include "it_nats.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

/* Debian's nats-server package installs /usr/sbin/nats-server (not bin). */
static const char *const itn_bins[] = {"/usr/sbin/nats-server",
                                       "/usr/bin/nats-server"};
/* How long a server may take to answer its first connection. */
#define ITN_READY_MS 10000
/* How long SIGTERM may take before SIGKILL. */
#define ITN_STOP_MS 5000

struct it_nats {
    const char *bin;
    pid_t pid; /* 0 while not running */
    int port;
    char *dir; /* private temporary directory */
    char *log; /* dir/nats-server.log: stdout and stderr of every run */
    pid_t watchdog; /* removes `dir` once the test process is gone */
    int watch_fd;   /* its pipe: EOF when we close it or die */
};

static long long itn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void itn_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static pid_t itn_waitpid(pid_t pid, int *st, int flags)
{
    pid_t r;

    do {
        r = waitpid(pid, st, flags);
    } while (r == -1 && errno == EINTR);
    return r;
}

/* The last `max` bytes of the server's log (malloc'd, never NULL). */
static char *itn_log_tail(const it_nats *n, size_t max)
{
    char *buf = calloc(1, max + 1);
    struct stat sb;
    ssize_t got;
    int fd;

    ck_assert_ptr_nonnull(buf);
    fd = open(n->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(buf, max + 1, "(no log: %s)", strerror(errno));
        return buf;
    }
    if (fstat(fd, &sb) == 0 && (size_t)sb.st_size > max)
        (void)lseek(fd, sb.st_size - (off_t)max, SEEK_SET);
    got = read(fd, buf, max);
    buf[got > 0 ? got : 0] = '\0';
    close(fd);
    return buf;
}

static void itn_log_line(const it_nats *n, const char *what)
{
    char line[128];
    int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int len;

    if (fd < 0)
        return;
    len = snprintf(line, sizeof(line), "=== it_nats: %s (port %d) ===\n",
                   what, n->port);
    if (write(fd, line, (size_t)len) < 0) {
        /* only a debugging aid */
    }
    close(fd);
}

/* A port nothing listens on right now (the kernel's pick for port 0). */
static int itn_free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                      getsockname(fd, (struct sockaddr *)&a, &alen) == 0,
                  "cannot pick a free port: %s", strerror(errno));
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Does 127.0.0.1:port answer with a NATS INFO line? */
static int itn_probe(int port)
{
    struct sockaddr_in a;
    struct pollfd p;
    char buf[8];
    size_t got = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return 0;
    }
    p.fd = fd;
    p.events = POLLIN;
    while (got < 5) {
        p.revents = 0;
        if (poll(&p, 1, 1000) <= 0)
            break;
        r = read(fd, buf + got, sizeof(buf) - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got >= 5 && memcmp(buf, "INFO ", 5) == 0;
}

/* fork + exec nats-server on n->port. */
static void itn_spawn(it_nats *n)
{
    char a0[] = "nats-server", a1[] = "-a", a2[] = "127.0.0.1", a3[] = "-p";
    char port[16];
    char *argv[] = {a0, a1, a2, a3, port, NULL};
    pid_t parent = getpid(), pid;
    sigset_t none;

    snprintf(port, sizeof(port), "%d", n->port);
    sigemptyset(&none);
    itn_log_line(n, "starting");
    pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Async-signal-safe calls only: the test process has threads. */
        int lfd, nfd;

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126); /* the test is already gone */
        lfd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        nfd = open("/dev/null", O_RDONLY);
        if (lfd < 0 || nfd < 0 || dup2(nfd, 0) < 0 || dup2(lfd, 1) < 0 ||
            dup2(lfd, 2) < 0)
            _exit(126);
        (void)close_range(3, ~0U, 0);
        /* nats.c ignores SIGPIPE in the test process, and an ignored
         * signal stays ignored across exec; a blocked one stays blocked. */
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(n->bin, argv);
        _exit(127);
    }
    n->pid = pid;
}

/* Wait for the server to answer: 0, or -1 when it exited (*st). */
static int itn_wait_ready(it_nats *n, int *st)
{
    long long deadline = itn_now_ms() + ITN_READY_MS;
    char *tail;

    for (;;) {
        if (itn_waitpid(n->pid, st, WNOHANG) == n->pid) {
            n->pid = 0;
            return -1;
        }
        if (itn_probe(n->port)) {
            /* The answer came from our server, not one that held the port
             * while ours failed to bind and exited. */
            if (itn_waitpid(n->pid, st, WNOHANG) == n->pid) {
                n->pid = 0;
                return -1;
            }
            return 0;
        }
        if (itn_now_ms() > deadline)
            break;
        itn_sleep_ms(10);
    }
    kill(n->pid, SIGKILL);
    itn_waitpid(n->pid, st, 0);
    n->pid = 0;
    tail = itn_log_tail(n, 3000);
    ck_assert_msg(0,
                  "nats-server on port %d did not answer within %d ms; "
                  "end of %s (WEFT_HARNESS_KEEP=1 keeps it):\n%s",
                  n->port, ITN_READY_MS, n->log, tail);
    free(tail);
    return -1;
}

/* Start on n->port (`fixed`) or on a free port; asserts. */
static void itn_launch(it_nats *n, int fixed)
{
    int attempt, tries = fixed ? 50 : 5, st = 0;
    char *tail;

    for (attempt = 0; attempt < tries; attempt++) {
        if (!fixed)
            n->port = itn_free_port();
        itn_spawn(n);
        if (itn_wait_ready(n, &st) == 0)
            return;
        /* Exited: the port was taken, by another process or (same port)
         * not yet released. */
        if (fixed)
            itn_sleep_ms(100);
    }
    tail = itn_log_tail(n, 3000);
    ck_assert_msg(0,
                  "nats-server did not start on port %d (%s %d); end of %s "
                  "(WEFT_HARNESS_KEEP=1 keeps it):\n%s",
                  n->port, WIFEXITED(st) ? "exit status" : "signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), n->log, tail);
    free(tail);
}

/*
 * A failed assertion ends the test process at once (Check's fork mode), so
 * no clean-up of ours runs: a watchdog process removes the directory when
 * the pipe only we write to reaches EOF, i.e. when we close it or die.
 * WEFT_HARNESS_KEEP set: it is kept (as by it_common.c).
 */
static void itn_watch(it_nats *n)
{
    char rm[] = "rm", rf[] = "-rf", dd[] = "--";
    char *argv[] = {rm, rf, dd, n->dir, NULL};
    int p[2], nfd, keep = getenv("WEFT_HARNESS_KEEP") != NULL;
    pid_t pid;
    char c;

    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(nfd, 0);
    pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) { /* async-signal-safe calls only, then exec */
        (void)setpgid(0, 0);
        if (dup2(p[0], 0) < 0 || dup2(nfd, 1) < 0 || dup2(nfd, 2) < 0)
            _exit(1);
        (void)close_range(3, ~0U, 0);
        for (;;) {
            ssize_t r = read(0, &c, 1);

            if (r > 0 || (r == -1 && errno == EINTR))
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
    n->watchdog = pid;
    n->watch_fd = p[1];
}

it_nats *it_nats_start(int port)
{
    const char *t = getenv("TMPDIR");
    it_nats *n = calloc(1, sizeof(*n));

    ck_assert_ptr_nonnull(n);
    n->bin = getenv("WEFT_NATS_SERVER");
    for (size_t i = 0; i < sizeof(itn_bins) / sizeof(itn_bins[0]) &&
                       (n->bin == NULL || *n->bin == '\0');
         i++)
        if (access(itn_bins[i], X_OK) == 0)
            n->bin = itn_bins[i];
    ck_assert_msg(n->bin != NULL && *n->bin != '\0' &&
                      access(n->bin, X_OK) == 0,
                  "no nats-server: install the Debian package nats-server "
                  "(/usr/sbin/nats-server) or set WEFT_NATS_SERVER");
    ck_assert_int_ge(asprintf(&n->dir, "%s/weft-nats-XXXXXX",
                              t != NULL && *t != '\0' ? t : "/tmp"),
                     0);
    ck_assert_msg(mkdtemp(n->dir) != NULL, "mkdtemp %s: %s", n->dir,
                  strerror(errno));
    itn_watch(n);
    ck_assert_int_ge(asprintf(&n->log, "%s/nats-server.log", n->dir), 0);
    n->port = port > 0 ? port : 0;
    itn_launch(n, port > 0);
    return n;
}

int it_nats_port(const it_nats *n)
{
    return n->port;
}

char *it_nats_url(const it_nats *n)
{
    char *u = NULL;

    ck_assert_int_ge(asprintf(&u, "nats://127.0.0.1:%d", n->port), 0);
    return u;
}

void it_nats_kill(it_nats *n)
{
    int st;

    if (n == NULL || n->pid <= 0)
        return;
    ck_assert_msg(kill(n->pid, SIGKILL) == 0, "kill nats-server: %s",
                  strerror(errno));
    ck_assert_msg(itn_waitpid(n->pid, &st, 0) == n->pid,
                  "waitpid nats-server: %s", strerror(errno));
    n->pid = 0;
    itn_log_line(n, "killed (SIGKILL)");
}

int it_nats_restart(it_nats *n)
{
    ck_assert_ptr_nonnull(n);
    it_nats_kill(n);
    itn_launch(n, 1);
    return 0;
}

static int itn_rm(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void it_nats_stop(it_nats *n)
{
    long long deadline;
    int st;

    if (n == NULL)
        return;
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        deadline = itn_now_ms() + ITN_STOP_MS;
        while (itn_waitpid(n->pid, &st, WNOHANG) == 0) {
            if (itn_now_ms() > deadline) {
                kill(n->pid, SIGKILL);
                itn_waitpid(n->pid, &st, 0);
                break;
            }
            itn_sleep_ms(10);
        }
        n->pid = 0;
    }
    if (getenv("WEFT_HARNESS_KEEP") == NULL)
        (void)nftw(n->dir, itn_rm, 16, FTW_DEPTH | FTW_PHYS);
    close(n->watch_fd); /* the watchdog finds nothing left, and ends */
    itn_waitpid(n->watchdog, &st, 0);
    free(n->dir);
    free(n->log);
    free(n);
}
