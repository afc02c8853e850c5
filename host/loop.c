/* loop.c - per-thread event bases and the cross-thread task queue. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

static void wloop_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wloop_run_tasks(arg);
}

int wloop_init(struct wloop *l, int id)
{
    unsigned char rnd[8];

    memset(l, 0, sizeof(*l));
    l->id = id;
    if (pthread_mutex_init(&l->mu, NULL) != 0)
        return -1;
    l->base = event_base_new();
    if (l->base == NULL)
        return -1;
    l->wake = event_new(l->base, -1, EV_PERSIST, wloop_wake_cb, l);
    if (l->wake == NULL)
        return -1;
    /* Request ids: a random per-loop prefix and a counter. Events carry
     * them as "by" across nodes and restarts, so 64 random bits, and no
     * fixed fallback that would make every node's ids the same. */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -1;
    for (size_t k = 0; k < sizeof(rnd); k++)
        snprintf(l->rid_prefix + 2 * k, 3, "%02x", rnd[k]);
    return 0;
}

void wloop_destroy(struct wloop *l)
{
    wloop_run_tasks(l);
    if (l->lst != NULL)
        evconnlistener_free(l->lst);
    if (l->wake != NULL)
        event_free(l->wake);
    if (l->base != NULL)
        event_base_free(l->base);
    pthread_mutex_destroy(&l->mu);
    l->lst = NULL;
    l->wake = NULL;
    l->base = NULL;
}

int wloop_post(struct wloop *l, void (*fn)(void *), void *arg)
{
    struct wtask *t = malloc(sizeof(*t));
    int first;

    if (t == NULL)
        return -1;
    t->fn = fn;
    t->arg = arg;
    t->next = NULL;
    pthread_mutex_lock(&l->mu);
    first = l->head == NULL;
    if (l->tail != NULL)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    pthread_mutex_unlock(&l->mu);
    /* One wake-up per batch: the callback drains the whole queue. */
    if (first)
        event_active(l->wake, EV_READ, 0);
    return 0;
}

void wloop_run_tasks(struct wloop *l)
{
    struct wtask *t, *next;

    pthread_mutex_lock(&l->mu);
    t = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    for (; t != NULL; t = next) {
        next = t->next;
        t->fn(t->arg);
        free(t);
    }
}

int wloop_bind(const char *host, int port, int *bound_port)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd, one = 1, rc;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (rc != 0) {
        errno = EINVAL;
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        freeaddrinfo(res);
        errno = e;
        return -1;
    }
    freeaddrinfo(res);
    if (bound_port != NULL && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound_port = ss.ss_family == AF_INET6
                          ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                          : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

const char *wloop_date(struct wloop *l)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now != l->date_at) {
        gmtime_r(&now, &tm);
        strftime(l->date, sizeof(l->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        l->date_at = now;
    }
    return l->date;
}

int64_t wloop_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
