/*
 * harness.c - start a real weftd for tests and talk HTTP/1.1 to it.
 *
 * The harness forks weftd in its own process group with a private directory
 * and a generated config, and polls /readyz until it answers 200. The child
 * gets PR_SET_PDEATHSIG so that a test process that dies (a failed Check
 * assertion exits at once, without teardown) never leaves a weftd behind;
 * an atexit() handler removes the private directories of such harnesses.
 * Start the harness from the thread that lives as long as the harness (the
 * death signal follows the thread that forked, not the process).
 *
 * A failed Check assertion in fork mode ends the test process with _exit(),
 * which runs no atexit() handler, and a Check or ctest timeout kills it.
 * So each harness also has a watchdog process, in its own process group,
 * blocked on a pipe whose only writer is the test process: when that
 * process is gone, the watchdog kills weftd and removes the private
 * directory. weft_harness_stop() kills the watchdog first.
 *
 * The client is deliberately small and strict: it reads exactly one
 * response at a time and keeps the bytes that follow it in a per-fd table,
 * so pipelined responses can be read one by one.
 */
#include <weft/harness.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WEFT_HARNESS_DEFAULT_WEFTD
#define WEFT_HARNESS_DEFAULT_WEFTD "/usr/local/bin/weftd"
#endif

/* Defined (weak) by harness.h in the test's objects when they were built
 * against an installed SDK; NULL otherwise. */
extern const char weft_harness_installed_weftd[] __attribute__((weak));

#define HR_MAX_BUFFER ((size_t)64 << 20) /* most bytes one response may use */
#define HR_READ_CHUNK 65536
#define HR_READY_MS 15000
#define HR_READY_POLL_MS 50
#define HR_PROBE_MS 2000
#define HR_STOP_MS 30000
#define HR_REQUEST_MS 60000
#define HR_START_ATTEMPTS 3 /* a new port when the chosen one was taken */
#define HR_LOG_TAIL 4096

struct weft_harness {
    pid_t pid;
    pid_t owner;   /* the process that started it (atexit cleanup) */
    int port;
    int threads;
    int raw;       /* text is a complete config, not ini_extra */
    int exited;    /* reaped; status is valid */
    int status;
    char *text;    /* ini_extra or the raw config text; may be NULL */
    char *weftd;
    char *dir;
    char *config_path;
    char *log_path;
    char token[33];
    pid_t watchdog; /* cleans up if this process dies without stopping */
    int watchdog_fd; /* its pipe; EOF tells it we are gone */
    struct weft_harness *next; /* list of live harnesses */
};

/* ---- small utilities ------------------------------------------------- */

static long long hr_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hr_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* A growable byte buffer; `err` sticks once an allocation failed. */
struct hr_buf {
    char *p;
    size_t len, cap;
    int err;
};

static int hr_buf_reserve(struct hr_buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->err)
        return -1;
    if (more > SIZE_MAX - b->len - 1) {
        b->err = 1;
        return -1;
    }
    if (b->len + more + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            cap = b->len + more + 1;
            break;
        }
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (p == NULL) {
        b->err = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int hr_buf_add(struct hr_buf *b, const void *data, size_t len)
{
    if (hr_buf_reserve(b, len) != 0)
        return -1;
    if (len > 0)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static int hr_buf_adds(struct hr_buf *b, const char *s)
{
    return hr_buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static int
hr_buf_addf(struct hr_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = 1;
        return -1;
    }
    if (hr_buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = 1;
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

static void hr_buf_free(struct hr_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

__attribute__((format(printf, 1, 2))) static char *hr_strf(const char *fmt,
                                                           ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* Read a whole file; NULL on error. */
static char *hr_read_file(const char *path, size_t *lenp)
{
    struct hr_buf b = {0};
    char chunk[8192];
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;
    if (hr_buf_reserve(&b, 0) != 0) {
        close(fd);
        return NULL;
    }
    b.p[0] = '\0';
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            close(fd);
            hr_buf_free(&b);
            return NULL;
        }
        if (n == 0)
            break;
        if (hr_buf_add(&b, chunk, (size_t)n) != 0) {
            close(fd);
            hr_buf_free(&b);
            return NULL;
        }
    }
    close(fd);
    if (lenp != NULL)
        *lenp = b.len;
    return b.p;
}

/* Write `len` bytes to `path` through a temporary file and rename(2), so a
 * weftd that re-reads the file on SIGHUP never sees half of it. */
static int hr_write_file(const char *path, const char *data, size_t len)
{
    char *tmp = hr_strf("%s.tmp.%ld", path, (long)getpid());
    size_t off = 0;
    ssize_t n;
    int fd;

    if (tmp == NULL)
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        fprintf(stderr, "weft-harness: %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    while (off < len) {
        n = write(fd, data + off, len - off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "weft-harness: write %s: %s\n", tmp,
                    strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "weft-harness: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

static int hr_rm_entry(const char *path, const struct stat *sb, int flag,
                       struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "weft-harness: remove %s: %s\n", path,
                strerror(errno));
    return 0; /* keep going */
}

static void hr_remove_dir(const char *dir)
{
    if (dir == NULL)
        return;
    if (getenv("WEFT_HARNESS_KEEP") != NULL) {
        fprintf(stderr, "weft-harness: keeping %s\n", dir);
        return;
    }
    if (nftw(dir, hr_rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 &&
        errno != ENOENT)
        fprintf(stderr, "weft-harness: cannot remove %s: %s\n", dir,
                strerror(errno));
}

static int hr_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t off = 0, i;
    ssize_t n;
    int fd;

    if (nbytes > sizeof(raw))
        return -1;
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    while (off < nbytes) {
        n = read(fd, raw + off, nbytes - off);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    close(fd);
    for (i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
    return 0;
}

static int hr_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t slen = sizeof(sa);
    int fd, port;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) != 0) {
        close(fd);
        return -1;
    }
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* ---- live harnesses, for the atexit cleanup ----------------------------- */

static pthread_mutex_t hr_live_mu = PTHREAD_MUTEX_INITIALIZER;
static weft_harness *hr_live;
static int hr_atexit_set;

/* A test that failed an assertion exits without stopping its harness: kill
 * its weftd (the death signal only fires when the forking thread ends) and
 * remove its directory. */
static void hr_atexit(void)
{
    weft_harness *h;
    pid_t self = getpid();

    if (pthread_mutex_lock(&hr_live_mu) != 0)
        return;
    for (h = hr_live; h != NULL; h = h->next) {
        if (h->owner != self)
            continue;
        if (!h->exited && h->pid > 0) {
            (void)kill(-h->pid, SIGKILL);
            (void)kill(h->pid, SIGKILL);
            while (waitpid(h->pid, &h->status, 0) == -1 && errno == EINTR)
                ;
            h->exited = 1;
        }
        hr_remove_dir(h->dir);
        if (h->watchdog > 0) {
            (void)kill(h->watchdog, SIGKILL);
            while (waitpid(h->watchdog, NULL, 0) == -1 && errno == EINTR)
                ;
            h->watchdog = 0;
        }
    }
    hr_live = NULL;
    (void)pthread_mutex_unlock(&hr_live_mu);
}

static void hr_live_add(weft_harness *h)
{
    if (pthread_mutex_lock(&hr_live_mu) != 0)
        return;
    if (!hr_atexit_set && atexit(hr_atexit) == 0)
        hr_atexit_set = 1;
    h->next = hr_live;
    hr_live = h;
    (void)pthread_mutex_unlock(&hr_live_mu);
}

static void hr_live_remove(weft_harness *h)
{
    weft_harness **pp;

    if (pthread_mutex_lock(&hr_live_mu) != 0)
        return;
    for (pp = &hr_live; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    h->next = NULL;
    (void)pthread_mutex_unlock(&hr_live_mu);
}

/* ---- per-fd leftover bytes ---------------------------------------------- */

struct hr_left {
    int fd;
    char *buf;
    size_t len;
};

static pthread_mutex_t hr_left_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hr_left *hr_lefts;
static size_t hr_nlefts, hr_caplefts;

/* Take (and remove) the bytes kept for fd. */
static void hr_left_take(int fd, char **buf, size_t *len)
{
    size_t i;

    *buf = NULL;
    *len = 0;
    if (pthread_mutex_lock(&hr_left_mu) != 0)
        return;
    for (i = 0; i < hr_nlefts; i++) {
        if (hr_lefts[i].fd == fd) {
            *buf = hr_lefts[i].buf;
            *len = hr_lefts[i].len;
            hr_lefts[i] = hr_lefts[--hr_nlefts];
            break;
        }
    }
    if (hr_nlefts == 0) {
        free(hr_lefts);
        hr_lefts = NULL;
        hr_caplefts = 0;
    }
    (void)pthread_mutex_unlock(&hr_left_mu);
}

static void hr_left_drop(int fd)
{
    char *buf;
    size_t len;

    hr_left_take(fd, &buf, &len);
    free(buf);
}

/* Keep `len` bytes from `data` for fd. Returns 0 or -1. */
static int hr_left_put(int fd, const char *data, size_t len)
{
    struct hr_left *nl;
    char *copy;
    size_t cap;

    hr_left_drop(fd);
    if (len == 0)
        return 0;
    copy = malloc(len);
    if (copy == NULL)
        return -1;
    memcpy(copy, data, len);
    if (pthread_mutex_lock(&hr_left_mu) != 0) {
        free(copy);
        return -1;
    }
    if (hr_nlefts == hr_caplefts) {
        cap = hr_caplefts ? hr_caplefts * 2 : 16;
        nl = realloc(hr_lefts, cap * sizeof(*nl));
        if (nl == NULL) {
            (void)pthread_mutex_unlock(&hr_left_mu);
            free(copy);
            return -1;
        }
        hr_lefts = nl;
        hr_caplefts = cap;
    }
    hr_lefts[hr_nlefts].fd = fd;
    hr_lefts[hr_nlefts].buf = copy;
    hr_lefts[hr_nlefts].len = len;
    hr_nlefts++;
    (void)pthread_mutex_unlock(&hr_left_mu);
    return 0;
}

/* ---- socket I/O ---------------------------------------------------------- */

/* Wait for `events` on fd until the deadline. 1 ready, 0 timeout, -1 error. */
static int hr_poll(int fd, short events, long long deadline, short *revents)
{
    struct pollfd pfd;
    long long left;
    int rc;

    for (;;) {
        left = deadline - hr_now_ms();
        if (left < 0)
            left = 0;
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, (int)(left > INT_MAX ? INT_MAX : left));
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc == -1)
            return -1;
        if (rc == 0) {
            errno = ETIMEDOUT;
            return 0;
        }
        if (revents != NULL)
            *revents = pfd.revents;
        return 1;
    }
}

/* Read more bytes into b. 1 some bytes, 0 EOF, -1 error or timeout. */
static int hr_fill(int fd, struct hr_buf *b, long long deadline)
{
    ssize_t n;
    int rc;

    if (b->len >= HR_MAX_BUFFER) {
        errno = EMSGSIZE;
        return -1;
    }
    if (hr_buf_reserve(b, HR_READ_CHUNK) != 0) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        rc = hr_poll(fd, POLLIN, deadline, NULL);
        if (rc <= 0)
            return -1;
        n = recv(fd, b->p + b->len, HR_READ_CHUNK, MSG_DONTWAIT);
        if (n == -1 && errno == ENOTSOCK)
            n = read(fd, b->p + b->len, HR_READ_CHUNK);
        if (n == -1 && (errno == EINTR || errno == EAGAIN ||
                        errno == EWOULDBLOCK))
            continue;
        if (n == -1)
            return -1;
        if (n == 0)
            return 0;
        b->len += (size_t)n;
        b->p[b->len] = '\0';
        return 1;
    }
}

int weft_harness_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    ssize_t n;
    int rc;

    while (len > 0) {
        n = send(fd, p, len, MSG_NOSIGNAL);
        if (n == -1 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            rc = hr_poll(fd, POLLOUT, hr_now_ms() + HR_REQUEST_MS, NULL);
            if (rc <= 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int weft_harness_connect(const weft_harness *h)
{
    struct sockaddr_in sa;
    socklen_t elen;
    int fd, one = 1, err = 0, rc;

    if (h == NULL)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        close(fd);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)h->port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINTR && errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        /* Interrupted: the connection completes in the background. */
        rc = hr_poll(fd, POLLOUT, hr_now_ms() + HR_REQUEST_MS, NULL);
        elen = sizeof(err);
        if (rc <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
            err != 0) {
            close(fd);
            return -1;
        }
    }
    hr_left_drop(fd); /* a stale entry of an fd closed with close(2) */
    return fd;
}

void weft_harness_close(int fd)
{
    if (fd < 0)
        return;
    hr_left_drop(fd);
    close(fd);
}

/* ---- response parsing ---------------------------------------------------- */

/* Offset just past the blank line ending the head, searching from *scan;
 * 0 when it is not complete yet. *line_end gets the end of the last header
 * line (including its '\n'). */
static size_t hr_head_end(const struct hr_buf *b, size_t *scan,
                          size_t *line_end)
{
    size_t i;

    for (i = *scan; i < b->len; i++) {
        if (b->p[i] != '\n')
            continue;
        if (i + 1 < b->len && b->p[i + 1] == '\n') {
            *line_end = i + 1;
            return i + 2;
        }
        if (i + 2 < b->len && b->p[i + 1] == '\r' && b->p[i + 2] == '\n') {
            *line_end = i + 1;
            return i + 3;
        }
        if (i + 2 >= b->len) /* cannot decide yet: rescan from here */
            break;
    }
    *scan = i;
    return 0;
}

/* Does the comma-separated list `v` end with the coding "chunked"? */
static int hr_is_chunked(const char *v, size_t len)
{
    size_t end = len, start;

    while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t' ||
                       v[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && v[start - 1] != ',')
        start--;
    while (start < end && (v[start] == ' ' || v[start] == '\t'))
        start++;
    return end - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
}

struct hr_framing {
    int status, minor, chunked, has_length;
    unsigned long long length;
};

/* Parse the status line and framing headers of head[0..len). */
static int hr_parse_head(const char *head, size_t len, struct hr_framing *f)
{
    const char *p = head, *end = head + len, *eol, *colon, *v;
    unsigned long long cl;
    char num[32];
    size_t vlen;
    char *numend;

    memset(f, 0, sizeof(*f));
    if (len < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' ||
        p[7] > '9' || p[8] != ' ' || p[9] < '1' || p[9] > '9' ||
        p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    f->minor = p[7] - '0';
    f->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL)
        return -1;
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL)
            continue;
        v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        vlen = (size_t)(eol - v);
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' ||
                            v[vlen - 1] == '\t'))
            vlen--;
        if ((size_t)(colon - p) == 17 &&
            strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            if (hr_is_chunked(v, vlen))
                f->chunked = 1;
        } else if ((size_t)(colon - p) == 14 &&
                   strncasecmp(p, "Content-Length", 14) == 0) {
            if (vlen == 0 || vlen >= sizeof(num))
                return -1;
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            if (num[0] < '0' || num[0] > '9')
                return -1;
            errno = 0;
            cl = strtoull(num, &numend, 10);
            if (errno != 0 || *numend != '\0')
                return -1;
            if (f->has_length && f->length != cl)
                return -1; /* conflicting lengths */
            f->has_length = 1;
            f->length = cl;
        }
    }
    return 0;
}

/* Make sure b holds at least `need` bytes. 0 ok, -1 error/EOF/timeout. */
static int hr_need(int fd, struct hr_buf *b, size_t need, long long deadline)
{
    int rc;

    if (need > HR_MAX_BUFFER) {
        errno = EMSGSIZE;
        return -1;
    }
    while (b->len < need) {
        rc = hr_fill(fd, b, deadline);
        if (rc == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Find a line starting at pos; returns the offset after its '\n' or 0. */
static size_t hr_line(int fd, struct hr_buf *b, size_t pos, long long deadline,
                      int *err)
{
    const char *nl;
    size_t from = pos;

    *err = 0;
    for (;;) {
        nl = memchr(b->p + from, '\n', b->len - from);
        if (nl != NULL)
            return (size_t)(nl - b->p) + 1;
        from = b->len;
        if (b->len - pos > 65536 || hr_need(fd, b, b->len + 1, deadline)) {
            if (b->len - pos > 65536)
                errno = EPROTO;
            *err = 1;
            return 0;
        }
    }
}

/* Decode a chunked body starting at *pos into body; *pos ends past it. */
static int hr_read_chunked(int fd, struct hr_buf *b, size_t *pos,
                           struct hr_buf *body, long long deadline)
{
    unsigned long long size;
    size_t eol, dend;
    char *end;
    int err;

    for (;;) {
        eol = hr_line(fd, b, *pos, deadline, &err);
        if (err)
            return -1;
        if (!((b->p[*pos] >= '0' && b->p[*pos] <= '9') ||
              (b->p[*pos] >= 'a' && b->p[*pos] <= 'f') ||
              (b->p[*pos] >= 'A' && b->p[*pos] <= 'F'))) {
            errno = EPROTO;
            return -1;
        }
        errno = 0;
        size = strtoull(b->p + *pos, &end, 16);
        if (errno != 0 || (*end != '\r' && *end != '\n' && *end != ';' &&
                           *end != ' ' && *end != '\t')) {
            errno = EPROTO;
            return -1;
        }
        *pos = eol;
        if (size == 0)
            break;
        if (size > HR_MAX_BUFFER || body->len + size > HR_MAX_BUFFER) {
            errno = EMSGSIZE;
            return -1;
        }
        if (hr_need(fd, b, *pos + (size_t)size + 1, deadline) != 0)
            return -1;
        dend = *pos + (size_t)size;
        if (b->p[dend] == '\r') {
            if (hr_need(fd, b, dend + 2, deadline) != 0)
                return -1;
            if (b->p[dend + 1] != '\n') {
                errno = EPROTO;
                return -1;
            }
            if (hr_buf_add(body, b->p + *pos, (size_t)size) != 0)
                return -1;
            *pos = dend + 2;
        } else if (b->p[dend] == '\n') {
            if (hr_buf_add(body, b->p + *pos, (size_t)size) != 0)
                return -1;
            *pos = dend + 1;
        } else {
            errno = EPROTO;
            return -1;
        }
    }
    /* Trailer fields, up to the empty line. */
    for (;;) {
        eol = hr_line(fd, b, *pos, deadline, &err);
        if (err)
            return -1;
        if (eol - *pos == 1 || (eol - *pos == 2 && b->p[*pos] == '\r')) {
            *pos = eol;
            return 0;
        }
        *pos = eol;
    }
}

static int hr_read_response(int fd, weft_hresp *out, int timeout_ms,
                            int head_only)
{
    struct hr_buf b = {0}, body = {0};
    struct hr_framing f;
    long long deadline;
    size_t scan = 0, hend = 0, line_end = 0, pos;
    char *left;
    size_t left_len;
    int rc, saved;

    if (out == NULL || fd < 0) {
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof(*out));
    deadline = hr_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);

    hr_left_take(fd, &left, &left_len);
    if (left != NULL) {
        rc = hr_buf_add(&b, left, left_len);
        free(left);
        if (rc != 0)
            return -1;
    }

    for (;;) {
        /* The head. */
        while ((hend = hr_head_end(&b, &scan, &line_end)) == 0) {
            rc = hr_fill(fd, &b, deadline);
            if (rc == 0) {
                errno = ECONNRESET;
                goto fail;
            }
            if (rc < 0)
                goto fail;
        }
        if (hr_parse_head(b.p, line_end, &f) != 0) {
            errno = EPROTO;
            goto fail;
        }
        /* Skip interim responses (100 Continue and the like). */
        if (f.status >= 100 && f.status < 200 && f.status != 101) {
            memmove(b.p, b.p + hend, b.len - hend);
            b.len -= hend;
            b.p[b.len] = '\0';
            scan = 0;
            continue;
        }
        break;
    }

    if (hr_buf_reserve(&body, 0) != 0)
        goto fail;
    body.p[0] = '\0';
    pos = hend;
    if (head_only || (f.status >= 100 && f.status < 200) ||
        f.status == 204 || f.status == 304) {
        /* no body */
    } else if (f.chunked) {
        out->chunked = 1;
        if (hr_read_chunked(fd, &b, &pos, &body, deadline) != 0)
            goto fail;
    } else if (f.has_length) {
        if (f.length > HR_MAX_BUFFER) {
            errno = EMSGSIZE;
            goto fail;
        }
        if (hr_need(fd, &b, hend + (size_t)f.length, deadline) != 0)
            goto fail;
        if (hr_buf_add(&body, b.p + hend, (size_t)f.length) != 0)
            goto fail;
        pos = hend + (size_t)f.length;
    } else {
        /* Close-delimited: everything up to EOF. */
        for (;;) {
            rc = hr_fill(fd, &b, deadline);
            if (rc == 0)
                break;
            if (rc < 0)
                goto fail;
        }
        if (hr_buf_add(&body, b.p + hend, b.len - hend) != 0)
            goto fail;
        pos = b.len;
    }

    out->head = malloc(line_end + 1);
    if (out->head == NULL)
        goto fail;
    memcpy(out->head, b.p, line_end);
    out->head[line_end] = '\0';
    out->status = f.status;
    out->http_minor = f.minor;
    out->body = body.p;
    out->body_len = body.len;
    body.p = NULL;
    if (hr_left_put(fd, b.p + pos, b.len - pos) != 0) {
        weft_hresp_free(out);
        hr_buf_free(&b);
        errno = ENOMEM;
        return -1;
    }
    hr_buf_free(&b);
    return 0;

fail:
    saved = errno;
    /* On a timeout keep what arrived, so a later call can go on. */
    if (saved == ETIMEDOUT && b.len > 0)
        (void)hr_left_put(fd, b.p, b.len);
    hr_buf_free(&b);
    hr_buf_free(&body);
    memset(out, 0, sizeof(*out));
    errno = saved;
    return -1;
}

int weft_hresp_read(int fd, weft_hresp *out, int timeout_ms)
{
    return hr_read_response(fd, out, timeout_ms, 0);
}

const char *weft_hresp_header(const weft_hresp *r, const char *name,
                              char *buf, size_t size)
{
    const char *p, *eol, *colon, *v;
    size_t nlen, vlen;

    if (r == NULL || r->head == NULL || name == NULL || buf == NULL ||
        size == 0)
        return NULL;
    nlen = strlen(name);
    p = strchr(r->head, '\n');
    while (p != NULL && *++p != '\0') {
        eol = strchr(p, '\n');
        if (eol == NULL)
            eol = p + strlen(p);
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon != NULL && (size_t)(colon - p) == nlen &&
            strncasecmp(p, name, nlen) == 0) {
            v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            vlen = (size_t)(eol - v);
            while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' ' ||
                                v[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= size)
                vlen = size - 1;
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            return buf;
        }
        p = *eol == '\0' ? NULL : eol;
    }
    return NULL;
}

void weft_hresp_free(weft_hresp *r)
{
    if (r == NULL)
        return;
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- requests ------------------------------------------------------------ */

/* Send head and body, but stop sending as soon as the server answers (an
 * early 413 followed by a close must still be read), then read. */
static int hr_exchange(int fd, const char *head, size_t head_len,
                       const void *body, size_t body_len, weft_hresp *out,
                       int head_only)
{
    long long deadline = hr_now_ms() + HR_REQUEST_MS;
    const char *parts[2] = {head, body};
    size_t lens[2] = {head_len, body_len}, off;
    short rev;
    ssize_t n;
    int i, rc;

    for (i = 0; i < 2; i++) {
        off = 0;
        while (off < lens[i]) {
            rc = hr_poll(fd, POLLOUT | POLLIN, deadline, &rev);
            if (rc <= 0)
                goto read;
            if (rev & (POLLIN | POLLHUP | POLLERR))
                goto read; /* an early answer, or the peer went away */
            n = send(fd, parts[i] + off, lens[i] - off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n == -1 && (errno == EINTR || errno == EAGAIN ||
                            errno == EWOULDBLOCK))
                continue;
            if (n <= 0)
                goto read;
            off += (size_t)n;
        }
    }
read:
    rc = (int)(deadline - hr_now_ms());
    return hr_read_response(fd, out, rc > 0 ? rc : 0, head_only);
}

int weft_harness_request(weft_harness *h, const char *method,
                         const char *path, const char *headers,
                         const void *body, size_t body_len, weft_hresp *out)
{
    struct hr_buf head = {0};
    int fd, rc, head_only, needs_length;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (h == NULL || method == NULL || path == NULL || out == NULL ||
        (body == NULL && body_len > 0)) {
        errno = EINVAL;
        return -1;
    }
    head_only = strcmp(method, "HEAD") == 0;
    /* A POST without a body still says so, as curl -d '' does. */
    needs_length = body != NULL || strcmp(method, "POST") == 0 ||
                   strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    hr_buf_addf(&head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Connection: close\r\n",
                method, path, h->port);
    if (headers != NULL)
        hr_buf_adds(&head, headers);
    if (needs_length)
        hr_buf_addf(&head, "Content-Length: %zu\r\n", body_len);
    hr_buf_adds(&head, "\r\n");
    if (head.err) {
        hr_buf_free(&head);
        errno = ENOMEM;
        return -1;
    }
    fd = weft_harness_connect(h);
    if (fd < 0) {
        hr_buf_free(&head);
        return -1;
    }
    rc = hr_exchange(fd, head.p, head.len, body, body_len, out, head_only);
    hr_buf_free(&head);
    weft_harness_close(fd);
    return rc;
}

int weft_harness_admin(weft_harness *h, const char *method, const char *path,
                       weft_hresp *out)
{
    char hdr[96];
    int n;

    if (h == NULL) {
        if (out != NULL)
            memset(out, 0, sizeof(*out));
        return -1;
    }
    n = snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", h->token);
    if (n < 0 || (size_t)n >= sizeof(hdr))
        return -1;
    return weft_harness_request(h, method, path, hdr, NULL, 0, out);
}

/* ---- the weftd process --------------------------------------------------- */

/* Replace every `from` in s with `to`. */
static int hr_subst(struct hr_buf *out, const char *s, const char *const *from,
                    const char *const *to, size_t n)
{
    const char *best;
    size_t i, bi = 0;
    const char *hit;

    while (*s != '\0') {
        best = NULL;
        for (i = 0; i < n; i++) {
            hit = strstr(s, from[i]);
            if (hit != NULL && (best == NULL || hit < best)) {
                best = hit;
                bi = i;
            }
        }
        if (best == NULL)
            return hr_buf_adds(out, s);
        if (hr_buf_add(out, s, (size_t)(best - s)) != 0 ||
            hr_buf_adds(out, to[bi]) != 0)
            return -1;
        s = best + strlen(from[bi]);
    }
    return out->err ? -1 : 0;
}

static const char *const hr_peer_keys[] = {
    "max_connections_per_address", "max_streams_per_address",
    "connection_rate_per_address"};

/* Loopback is one address for every client of every test: the per-address
 * limits would count them all as one. A test of the limits sets the keys
 * itself (a key may not be repeated, so those are left out). */
static int hr_peer_limits_off(struct hr_buf *b, const weft_harness *h)
{
    for (size_t i = 0; i < sizeof(hr_peer_keys) / sizeof(hr_peer_keys[0]);
         i++)
        if (h->text == NULL || strstr(h->text, hr_peer_keys[i]) == NULL)
            hr_buf_addf(b, "[server]\n%s = 0\n", hr_peer_keys[i]);
    return b->err ? -1 : 0;
}

static char *hr_config_text(const weft_harness *h)
{
    struct hr_buf b = {0};
    char port[16];
    const char *from[3] = {"@PORT@", "@DIR@", "@TOKEN@"};
    const char *to[3] = {port, h->dir, h->token};

    snprintf(port, sizeof(port), "%d", h->port);
    if (h->raw) {
        if (hr_subst(&b, h->text != NULL ? h->text : "", from, to, 3) != 0 ||
            hr_buf_adds(&b, "\n") != 0 || hr_peer_limits_off(&b, h) != 0) {
            hr_buf_free(&b);
            return NULL;
        }
        return b.p;
    }
    hr_buf_addf(&b,
                "; generated by the weft test harness\n"
                "[server]\n"
                "listen = 127.0.0.1:%d\n"
                "threads = %d\n"
                "data_dir = %s/data\n"
                "shutdown_timeout = 10s\n"
                "\n"
                "[admin]\n"
                "token = %s\n"
                "\n",
                h->port, h->threads, h->dir, h->token);
    hr_peer_limits_off(&b, h);
    if (h->text != NULL) {
        hr_buf_adds(&b, h->text);
        if (b.len > 0 && b.p[b.len - 1] != '\n')
            hr_buf_adds(&b, "\n");
    }
    if (b.err) {
        hr_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static int hr_write_config(weft_harness *h)
{
    char *text = hr_config_text(h);
    int rc;

    if (text == NULL)
        return -1;
    rc = hr_write_file(h->config_path, text, strlen(text));
    free(text);
    return rc;
}

static void hr_print_log_tail(const weft_harness *h)
{
    size_t len = 0, off = 0;
    char *log = hr_read_file(h->log_path, &len);

    if (log == NULL) {
        fprintf(stderr, "weft-harness: (no log at %s)\n", h->log_path);
        return;
    }
    if (len > HR_LOG_TAIL) {
        off = len - HR_LOG_TAIL;
        while (off < len && log[off - 1] != '\n')
            off++;
    }
    if (len == 0)
        fprintf(stderr, "weft-harness: %s is empty\n", h->log_path);
    else
        fprintf(stderr, "weft-harness: last lines of %s:\n%s%s", h->log_path,
                log + off, log[len - 1] != '\n' ? "\n" : "");
    free(log);
}

/* A sanitizer report starts with its banner; print from there (bounded),
 * else the tail like any other failure. */
static void hr_print_log_report(const weft_harness *h)
{
    static const char *const banners[] = {"==ERROR: ", "runtime error:",
                                          "==WARNING: "};
    size_t len = 0, i;
    char *log = hr_read_file(h->log_path, &len), *at = NULL;

    for (i = 0; log != NULL && at == NULL && i < sizeof banners / sizeof *banners; i++)
        at = strstr(log, banners[i]);
    if (at == NULL) {
        free(log);
        hr_print_log_tail(h);
        return;
    }
    while (at > log && at[-1] != '\n')
        at--;
    fprintf(stderr, "weft-harness: sanitizer report in %s:\n%.*s\n",
            h->log_path, (int)(strlen(at) > 32768 ? 32768 : strlen(at)), at);
    free(log);
}

/* Reap the child if it exited. 1 exited, 0 running. */
static int hr_reap(weft_harness *h, int flags)
{
    pid_t r;
    int st;

    if (h->exited)
        return 1;
    for (;;) {
        r = waitpid(h->pid, &st, flags);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == h->pid) {
            h->exited = 1;
            h->status = st;
            return 1;
        }
        if (r == -1) { /* reaped by someone else: nothing left to wait */
            h->exited = 1;
            h->status = -1;
            return 1;
        }
        return 0;
    }
}

static int hr_wait_ms(weft_harness *h, int timeout_ms)
{
    long long deadline = hr_now_ms() + timeout_ms;

    for (;;) {
        if (hr_reap(h, WNOHANG))
            return 0;
        if (hr_now_ms() >= deadline)
            return -1;
        hr_sleep_ms(10);
    }
}

static void hr_kill_hard(weft_harness *h)
{
    if (h->exited || h->pid <= 0)
        return;
    (void)kill(-h->pid, SIGKILL);
    (void)kill(h->pid, SIGKILL);
    (void)hr_reap(h, 0);
}

/* Fork the watchdog (see the top of this file). Async-signal-safe calls
 * only in the child: the test process may have threads. */
static int hr_watchdog_start(weft_harness *h)
{
    char rm[] = "rm", rf[] = "-rf", dashes[] = "--";
    char *argv[5];
    struct sigaction sa;
    int p[2], nullfd, keep = getenv("WEFT_HARNESS_KEEP") != NULL;
    pid_t pid, target = 0, v;
    ssize_t n;

    argv[0] = rm;
    argv[1] = rf;
    argv[2] = dashes;
    argv[3] = h->dir;
    argv[4] = NULL;
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nullfd == -1) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    pid = fork();
    if (pid == -1) {
        close(p[0]);
        close(p[1]);
        close(nullfd);
        return -1;
    }
    if (pid == 0) {
        (void)setpgid(0, 0); /* outlives a killpg() of the test's group */
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGHUP, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        if (dup2(p[0], 0) == -1 || dup2(nullfd, 1) == -1 ||
            dup2(nullfd, 2) == -1)
            _exit(1);
        (void)close_range(3, ~0U, 0);
        for (;;) {
            n = read(0, &v, sizeof(v));
            if (n == (ssize_t)sizeof(v)) {
                target = v; /* the current weftd */
                continue;
            }
            if (n == -1 && errno == EINTR)
                continue;
            break; /* EOF: the test process is gone */
        }
        if (target > 0) {
            (void)kill(-target, SIGKILL);
            (void)kill(target, SIGKILL);
        }
        if (keep)
            _exit(0);
        {
            struct timespec ts = {0, 200000000L};
            (void)nanosleep(&ts, NULL);
        }
        execv("/bin/rm", argv);
        _exit(127);
    }
    close(p[0]);
    close(nullfd);
    h->watchdog = pid;
    h->watchdog_fd = p[1];
    return 0;
}

/* Tell the watchdog which weftd to kill. */
static void hr_watchdog_target(weft_harness *h)
{
    pid_t v = h->pid;
    ssize_t n;

    if (h->watchdog_fd < 0)
        return;
    do {
        n = write(h->watchdog_fd, &v, sizeof(v));
    } while (n == -1 && errno == EINTR);
}

/* Stop the watchdog without letting it act. */
static void hr_watchdog_stop(weft_harness *h)
{
    if (h->watchdog > 0) {
        (void)kill(h->watchdog, SIGKILL);
        while (waitpid(h->watchdog, NULL, 0) == -1 && errno == EINTR)
            ;
        h->watchdog = 0;
    }
    if (h->watchdog_fd >= 0) {
        close(h->watchdog_fd);
        h->watchdog_fd = -1;
    }
}

static int hr_spawn(weft_harness *h)
{
    char arg_config[] = "--config";
    char *argv[4];
    struct sigaction sa;
    sigset_t none;
    pid_t parent = getpid(), pid;
    int logfd, nullfd;
    static const int sigs[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD,
                               SIGUSR1, SIGUSR2, SIGALRM, SIGQUIT};
    size_t i;

    argv[0] = h->weftd;
    argv[1] = arg_config;
    argv[2] = h->config_path;
    argv[3] = NULL;
    logfd = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd == -1) {
        fprintf(stderr, "weft-harness: %s: %s\n", h->log_path,
                strerror(errno));
        return -1;
    }
    nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd == -1) {
        close(logfd);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&none);

    pid = fork();
    if (pid == -1) {
        fprintf(stderr, "weft-harness: fork: %s\n", strerror(errno));
        close(logfd);
        close(nullfd);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here on. */
        (void)setpgid(0, 0);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            (void)sigaction(sigs[i], &sa, NULL);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(nullfd, 0) == -1 || dup2(logfd, 1) == -1 ||
            dup2(logfd, 2) == -1)
            _exit(127);
        (void)close_range(3, ~0U, 0);
        execv(argv[0], argv);
        {
            static const char msg[] = "weft-harness: cannot execute weftd\n";
            ssize_t w = write(2, msg, sizeof(msg) - 1);
            (void)w;
        }
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    (void)setpgid(pid, pid); /* same as the child's; avoids a race */
    h->pid = pid;
    h->exited = 0;
    h->status = 0;
    hr_watchdog_target(h);
    return 0;
}

/* 1 when GET /readyz answers 200. */
static int hr_probe_ready(weft_harness *h)
{
    static const char fmt[] = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                              "Connection: close\r\n\r\n";
    weft_hresp r;
    char req[128];
    int fd, n, ok = 0;

    fd = weft_harness_connect(h);
    if (fd < 0)
        return 0;
    n = snprintf(req, sizeof(req), fmt, h->port);
    if (n > 0 && (size_t)n < sizeof(req) &&
        weft_harness_send(fd, req, (size_t)n) == 0 &&
        weft_hresp_read(fd, &r, HR_PROBE_MS) == 0) {
        ok = r.status == 200;
        weft_hresp_free(&r);
    }
    weft_harness_close(fd);
    return ok;
}

/* The log says the port was taken: worth another port. */
static int hr_port_taken(const weft_harness *h)
{
    char *log = hr_read_file(h->log_path, NULL);
    int taken;

    if (log == NULL)
        return 0;
    taken = strstr(log, "in use") != NULL || strstr(log, "EADDRINUSE") != NULL;
    free(log);
    return taken;
}

static void hr_free(weft_harness *h)
{
    if (h == NULL)
        return;
    hr_watchdog_stop(h);
    free(h->text);
    free(h->weftd);
    free(h->dir);
    free(h->config_path);
    free(h->log_path);
    free(h);
}

static weft_harness *hr_start(const char *text, int raw, int threads)
{
    const char *tmpdir = getenv("TMPDIR"), *weftd;
    weft_harness *h;
    long long deadline;
    int attempt, ready;

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->owner = getpid();
    h->watchdog_fd = -1;
    h->raw = raw;
    h->threads = threads < 0 ? 0 : threads;
    weftd = getenv("WEFT_HARNESS_WEFTD");
    if ((weftd == NULL || *weftd == '\0') &&
        weft_harness_installed_weftd != NULL)
        weftd = weft_harness_installed_weftd;
    if (weftd == NULL || *weftd == '\0')
        weftd = WEFT_HARNESS_DEFAULT_WEFTD;
    h->weftd = strdup(weftd);
    if (text != NULL)
        h->text = strdup(text);
    if (tmpdir == NULL || *tmpdir == '\0')
        tmpdir = "/tmp";
    h->dir = hr_strf("%s/weft-harness-XXXXXX", tmpdir);
    if (h->weftd == NULL || (text != NULL && h->text == NULL) ||
        h->dir == NULL) {
        hr_free(h);
        return NULL;
    }
    if (mkdtemp(h->dir) == NULL) {
        fprintf(stderr, "weft-harness: mkdtemp %s: %s\n", h->dir,
                strerror(errno));
        hr_free(h);
        return NULL;
    }
    /* weftd may run helpers as another user (the embedded PostgreSQL runs
     * as `postgres` when weftd is root): let others traverse, not list.
     * The files in it are 0600. */
    if (chmod(h->dir, 0711) != 0)
        fprintf(stderr, "weft-harness: chmod %s: %s\n", h->dir,
                strerror(errno));
    h->config_path = hr_strf("%s/weft.ini", h->dir);
    h->log_path = hr_strf("%s/weftd.log", h->dir);
    if (h->config_path == NULL || h->log_path == NULL ||
        hr_random_hex(h->token, 16) != 0) {
        fprintf(stderr, "weft-harness: out of memory or no /dev/urandom\n");
        hr_remove_dir(h->dir);
        hr_free(h);
        return NULL;
    }
    if (hr_watchdog_start(h) != 0)
        fprintf(stderr, "weft-harness: no watchdog (%s); a crashed test "
                        "may leave %s behind\n",
                strerror(errno), h->dir);
    if (access(h->weftd, X_OK) != 0) {
        fprintf(stderr, "weft-harness: weftd %s: %s (set WEFT_HARNESS_WEFTD)\n",
                h->weftd, strerror(errno));
        hr_remove_dir(h->dir);
        hr_free(h);
        return NULL;
    }

    for (attempt = 0; attempt < HR_START_ATTEMPTS; attempt++) {
        h->port = hr_free_port();
        if (h->port <= 0) {
            fprintf(stderr, "weft-harness: no free port: %s\n",
                    strerror(errno));
            break;
        }
        if (hr_write_config(h) != 0)
            break;
        if (hr_spawn(h) != 0)
            break;
        hr_live_add(h);
        ready = 0;
        deadline = hr_now_ms() + HR_READY_MS;
        for (;;) {
            if (hr_reap(h, WNOHANG))
                break;
            if (hr_probe_ready(h)) {
                ready = 1;
                break;
            }
            if (hr_now_ms() >= deadline)
                break;
            hr_sleep_ms(HR_READY_POLL_MS);
        }
        if (ready)
            return h;
        if (h->exited && attempt + 1 < HR_START_ATTEMPTS && hr_port_taken(h)) {
            hr_live_remove(h);
            continue; /* another port */
        }
        if (h->exited) {
            if (h->status != -1 && WIFEXITED(h->status))
                fprintf(stderr, "weft-harness: weftd exited with status %d "
                                "before it was ready\n",
                        WEXITSTATUS(h->status));
            else if (h->status != -1 && WIFSIGNALED(h->status))
                fprintf(stderr, "weft-harness: weftd was killed by signal %d "
                                "before it was ready\n",
                        WTERMSIG(h->status));
            else
                fprintf(stderr, "weft-harness: weftd went away before it "
                                "was ready\n");
        } else {
            fprintf(stderr, "weft-harness: weftd (pid %ld, port %d) was not "
                            "ready within %d ms\n",
                    (long)h->pid, h->port, HR_READY_MS);
            hr_kill_hard(h);
        }
        hr_live_remove(h);
        hr_print_log_tail(h);
        break;
    }
    hr_live_remove(h);
    hr_remove_dir(h->dir);
    hr_free(h);
    return NULL;
}

weft_harness *weft_harness_start(const char *ini_extra, int threads)
{
    return hr_start(ini_extra, 0, threads);
}

weft_harness *weft_harness_start_raw(const char *ini_text)
{
    if (ini_text == NULL)
        return NULL;
    return hr_start(ini_text, 1, 0);
}

int weft_harness_stop(weft_harness *h)
{
    int status;

    if (h == NULL)
        return -1;
    if (!h->exited) {
        if (kill(h->pid, SIGTERM) != 0 && errno != ESRCH)
            fprintf(stderr, "weft-harness: kill %ld: %s\n", (long)h->pid,
                    strerror(errno));
        if (hr_wait_ms(h, HR_STOP_MS) != 0) {
            fprintf(stderr, "weft-harness: weftd did not exit within %d ms "
                            "of SIGTERM; killing it\n",
                    HR_STOP_MS);
            hr_kill_hard(h);
        }
    }
    status = h->status;
    /* The directory is about to go: a weftd that did not exit cleanly
     * (a sanitizer report, a leak, a crash) must leave its reason in the
     * test's output, or CI shows only a status number. */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        hr_print_log_report(h);
    hr_live_remove(h);
    hr_remove_dir(h->dir);
    hr_free(h);
    return status;
}

int weft_harness_port(const weft_harness *h)
{
    return h != NULL ? h->port : -1;
}

pid_t weft_harness_pid(const weft_harness *h)
{
    return h != NULL ? h->pid : -1;
}

const char *weft_harness_dir(const weft_harness *h)
{
    return h != NULL ? h->dir : NULL;
}

const char *weft_harness_config_path(const weft_harness *h)
{
    return h != NULL ? h->config_path : NULL;
}

const char *weft_harness_log_path(const weft_harness *h)
{
    return h != NULL ? h->log_path : NULL;
}

const char *weft_harness_admin_token(const weft_harness *h)
{
    return h != NULL ? h->token : NULL;
}

int weft_harness_write_config(weft_harness *h, const char *ini_extra)
{
    char *copy = NULL;

    if (h == NULL)
        return -1;
    if (ini_extra != NULL) {
        copy = strdup(ini_extra);
        if (copy == NULL)
            return -1;
    }
    free(h->text);
    h->text = copy;
    return hr_write_config(h);
}

int weft_harness_signal(weft_harness *h, int sig)
{
    if (h == NULL || h->exited || h->pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    return kill(h->pid, sig) == 0 ? 0 : -1;
}

int weft_harness_wait(weft_harness *h, int timeout_ms)
{
    if (h == NULL)
        return -1;
    if (hr_wait_ms(h, timeout_ms < 0 ? 0 : timeout_ms) != 0)
        return -1;
    return h->status;
}

char *weft_harness_log(const weft_harness *h)
{
    if (h == NULL)
        return NULL;
    return hr_read_file(h->log_path, NULL);
}
