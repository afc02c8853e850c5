/* main.c - weftd: command line, start-up, signals and shutdown. */
#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "auth.h"
#include "auth_session.h"
#include "builtin.h"
#include "db.h"
#include "bus.h"
#include "static.h"
#include "db_listen.h"
#include "migrate.h"
#include "pg_embed.h"
#include "host.h"
#include "http_conn.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "plugin.h"
#include "router.h"
#include "rt.h"
#include "settings.h"
#include "watch.h"
#include "worker.h"

static struct whost wmain_host;
static struct wpg_embed *wmain_pg;
static struct event *wmain_pg_watch;
static struct event *wmain_drain_timer;
static struct timespec wmain_deadline;

static void wmain_usage(FILE *f)
{
    fprintf(f, "usage: weftd --config FILE      run\n"
               "       weftd --check-config FILE  check a config and exit "
               "(0 valid, 2 not)\n"
               "       weftd --config FILE --create-admin EMAIL\n"
               "                                  make (or promote) an admin; "
               "password from\n"
               "                                  WEFT_ADMIN_PASSWORD or "
               "standard input\n"
               "       weftd --config FILE --seed-demo\n"
               "                                  demo accounts alex@mail.com "
               "and bob@mail.com\n"
               "       weftd --version\n");
}

static int wmain_check(const char *path)
{
    struct wdiag d = {0};
    struct wsettings *s = wsettings_load(path, &d, &d);
    int bad;

    if (s != NULL) {
        wauth_check_secret(s, &d);
        wplug_check_config(s, &d);
    }
    for (int i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    bad = d.n > 0 || s == NULL;
    if (!bad)
        printf("configuration ok: %s\n", path);
    wdiag_free(&d);
    wsettings_free(s);
    return bad ? 2 : 0;
}

static void wmain_limits(const struct wsettings *s, struct whost_limits *l)
{
    l->http.max_uri = (size_t)s->max_uri;
    l->http.max_headers = (int)s->max_headers;
    l->http.max_body = s->max_body;
    l->max_header = (size_t)s->max_header;
    l->max_connections = (int)s->max_connections;
    l->header_timeout_ms = (int)s->header_timeout;
    l->keepalive_timeout_ms = (int)s->keepalive_timeout;
    l->body_timeout_ms = (int)s->body_timeout;
    l->access_log = (int)s->access_log;
}

/* The per-address limits (peer.c); fixed for the life of the process. */
static int wmain_peer_init(const struct wsettings *s)
{
    struct wpeer_conf c = {0};
    const char *why = NULL;

    c.max_conns = (int)s->max_conns_per_addr;
    c.max_streams = (int)s->max_streams_per_addr;
    c.rate = (int)s->conn_rate_per_addr;
    c.burst = (int)s->conn_burst_per_addr;
    c.global_max = (int)s->max_connections;
    c.reserved = (int)(s->max_connections * s->reserved_conns_pct / 100);
    c.proxy_header = (int)s->proxy_header;
    if (wproxy_list_parse(s->trusted_proxies ? s->trusted_proxies : "",
                          &c.proxies, &why) != 0)
        return -1;
    if (wpeer_init(&c) != 0) {
        wproxy_list_free(&c.proxies);
        return -1;
    }
    return 0;
}

static void *wmain_loop_thread(void *arg)
{
    struct wloop *l = arg;

    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- shutdown ---------------------------------------------------------- */

static void wmain_loop_drain(void *arg)
{
    struct wloop *l = arg;

    l->draining = 1;
    if (l->lst != NULL) {
        evconnlistener_free(l->lst);
        l->lst = NULL;
    }
    wconn_drain(l);
}

static void wmain_loop_break(void *arg)
{
    struct wloop *l = arg;

    event_base_loopbreak(l->base);
}

static void wmain_drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct timespec now;
    struct timeval tv = {0, 50000};

    (void)fd;
    (void)what;
    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (atomic_load(&whost_g->nconns) == 0) {
        event_base_loopbreak(whost_g->ctl.base);
        return;
    }
    if (now.tv_sec > wmain_deadline.tv_sec ||
        (now.tv_sec == wmain_deadline.tv_sec &&
         now.tv_nsec >= wmain_deadline.tv_nsec)) {
        wlog(WLOG_WARN, "host",
             "shutdown timeout: closing %d connection(s) still open",
             atomic_load(&whost_g->nconns));
        event_base_loopbreak(whost_g->ctl.base);
        return;
    }
    evtimer_add(wmain_drain_timer, &tv);
}

static void wmain_on_stop(evutil_socket_t sig, short what, void *arg)
{
    int64_t ms = whost_g->set->shutdown_timeout;

    (void)what;
    (void)arg;
    if (atomic_exchange(&whost_g->stopping, 1))
        return;
    wlog(WLOG_INFO, "host", "signal %d: stop accepting, draining for up to "
                            "%lld ms",
         (int)sig, (long long)ms);
    for (int i = 0; i < whost_g->nloops; i++)
        wloop_post(&whost_g->loops[i], wmain_loop_drain, &whost_g->loops[i]);
    clock_gettime(CLOCK_MONOTONIC, &wmain_deadline);
    wmain_deadline.tv_sec += ms / 1000;
    wmain_deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (wmain_deadline.tv_nsec >= 1000000000L) {
        wmain_deadline.tv_sec++;
        wmain_deadline.tv_nsec -= 1000000000L;
    }
    wmain_drain_check(-1, 0, NULL);
}

/* ---- SIGHUP ------------------------------------------------------------ */

static void wmain_on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct wdiag d = {0}, pd = {0};
    struct wsettings *ns, *old = whost_g->set;

    (void)sig;
    (void)what;
    (void)arg;
    if (atomic_load(&whost_g->stopping))
        return;
    wlog(WLOG_INFO, "host", "SIGHUP: re-reading %s", whost_g->config_path);
    ns = wsettings_load(whost_g->config_path, &d, &pd);
    if (ns == NULL || d.n > 0) {
        for (int i = 0; i < d.n; i++)
            wlog(WLOG_ERROR, "host", "config: %s", d.msgs[i]);
        wlog(WLOG_ERROR, "host", "config not applied; still running the "
                                 "previous one");
        wdiag_free(&d);
        wdiag_free(&pd);
        wsettings_free(ns);
        return;
    }
    for (int i = 0; i < pd.n; i++)
        wlog(WLOG_WARN, "host", "config: %s", pd.msgs[i]);
    wdiag_free(&pd);
    if (strcmp(ns->listen_host, old->listen_host) != 0 ||
        ns->port != old->port || ns->threads != old->threads ||
        ns->workers != old->workers || strcmp(ns->data_dir, old->data_dir) != 0)
        wlog(WLOG_WARN, "host", "listen, threads, workers and data_dir "
                                "changes take effect after a restart");
    wlog_set_level((int)ns->log_level);
    pthread_mutex_lock(&whost_g->admin_mu);
    free(whost_g->admin_token);
    whost_g->admin_token = ns->admin_token ? strdup(ns->admin_token) : NULL;
    pthread_mutex_unlock(&whost_g->admin_mu);
    whost_g->set = ns;
    wplug_sync(ns);
    wwatch_update(ns);
    wsettings_free(old);
}

/* ---- start-up ---------------------------------------------------------- */

/* Refuse a port somebody already listens on: with SO_REUSEPORT alone, a
 * second weftd would silently share the traffic. */
static int wmain_port_free(const char *host, int port)
{
    struct sockaddr_storage ss;
    int fd, one = 1, rc;

    if (port == 0)
        return 1;
    memset(&ss, 0, sizeof(ss));
    fd = wloop_bind(host, 0, NULL); /* just to learn the address family */
    if (fd < 0)
        return 1;
    {
        socklen_t sl = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        close(fd);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    rc = bind(fd, (struct sockaddr *)&ss,
              ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in));
    /* Two SO_REUSEADDR sockets may bind the same port; the clash with a
     * listening socket only shows at listen(). */
    if (rc == 0)
        rc = listen(fd, 1);
    rc = rc == 0 || errno != EADDRINUSE;
    close(fd);
    return rc;
}

static void wmain_accept_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/*
 * accept() failed. Out of descriptors (EMFILE, ENFILE) or memory, the
 * listener would be readable again at once and spin: pause it for 100 ms
 * (the backlog waits), and say so at most once a second.
 */
static void wmain_accept_error(struct evconnlistener *lst, void *arg)
{
    static _Atomic long last_log;
    struct timeval tv = {0, 100000};
    int err = EVUTIL_SOCKET_ERROR();
    long now = (long)time(NULL);

    (void)arg;
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
        return;
    if (atomic_exchange(&last_log, now) != now)
        wlog(WLOG_WARN, "host", "accept: %s; pausing new connections for "
                                "100 ms", strerror(err));
    evconnlistener_disable(lst);
    if (event_base_once(evconnlistener_get_base(lst), -1, EV_TIMEOUT,
                        wmain_accept_again, lst, &tv) != 0)
        evconnlistener_enable(lst);
}

static int wmain_listen(struct whost *h)
{
    int port = h->set->port, fd;

    if (!wmain_port_free(h->set->listen_host, port)) {
        wlog(WLOG_ERROR, "host", "%s:%d is already in use",
             h->set->listen_host, port);
        return -1;
    }
    for (int i = 0; i < h->nloops; i++) {
        fd = wloop_bind(h->set->listen_host, port, i == 0 ? &port : NULL);
        if (fd < 0) {
            wlog(WLOG_ERROR, "host", "cannot listen on %s:%d: %s",
                 h->set->listen_host, port, strerror(errno));
            return -1;
        }
        h->loops[i].lst = evconnlistener_new(h->loops[i].base, wconn_accept,
                                             &h->loops[i],
                                             LEV_OPT_CLOSE_ON_FREE, 0, fd);
        if (h->loops[i].lst == NULL) {
            close(fd);
            return -1;
        }
        evconnlistener_set_error_cb(h->loops[i].lst, wmain_accept_error);
    }
    wlog(WLOG_INFO, "host", "listening on %s:%d with %d event loop(s)",
         h->set->listen_host, port, h->nloops);
    return 0;
}

/* The embedded cluster died (killed, OOM): start it again. The pool
 * reconnects by itself; meanwhile statements fail fast with 503. */
static void wmain_pg_check(evutil_socket_t fd, short what, void *arg)
{
    struct timeval tv = {0, 500000};
    struct wdiag d = {0};
    char dir[4096], *conninfo = NULL;

    (void)fd;
    (void)what;
    (void)arg;
    if (atomic_load(&whost_g->stopping))
        return;
    if (wmain_pg != NULL && !wpg_embed_alive(wmain_pg)) {
        /* wpg_embed_alive() logged how it ended. The restart blocks this
         * thread (plugin operations and signals wait); the event loops
         * keep serving, with 503s for statements meanwhile. */
        wpg_embed_stop(wmain_pg);
        wmain_pg = NULL;
    }
    if (wmain_pg == NULL) {
        snprintf(dir, sizeof(dir), "%s/pg", whost_g->set->data_dir);
        wmain_pg = wpg_embed_start(dir, "weft", 60000, &conninfo, &d);
        for (int i = 0; i < d.n; i++)
            wlog(WLOG_ERROR, "db", "%s", d.msgs[i]);
        wdiag_free(&d);
        free(conninfo);
        if (wmain_pg != NULL)
            wlog(WLOG_INFO, "db", "the embedded PostgreSQL is back");
        else
            tv.tv_sec = 2; /* try again, not in a tight loop */
    }
    evtimer_add(wmain_pg_watch, &tv);
}

static char wmain_node[64];

/* Another weftd on the same database applied migrations: our prepared
 * statements may describe an old shape of its tables. */
static void wmain_on_schema(const char *channel, const char *payload,
                            void *arg)
{
    const char *sp = strchr(payload, ' ');

    (void)channel;
    (void)arg;
    if (sp == NULL || strcmp(sp + 1, wmain_node) == 0)
        return;
    wlog(WLOG_INFO, "db", "schema of %.*s changed on another node (%s); "
                          "statements will be prepared again",
         (int)(sp - payload), payload, sp + 1);
    wdb_schema_changed();
}

/* Bring up the database (the embedded cluster unless a url is set), the
 * migration connection and the per-loop pools. Control thread. */
static char *wmain_conninfo; /* kept for the outbox relay */

static int wmain_database(struct whost *h)
{
    struct wdiag d = {0};
    struct wdb_config cfg;
    char *conninfo = NULL, dir[4096];

    if (!h->set->db_enabled) {
        wlog(WLOG_WARN, "db", "[database] enabled = false: running without "
                              "a database");
        return 0;
    }
    if (h->set->db_url == NULL || h->set->db_url[0] == '\0') {
        snprintf(dir, sizeof(dir), "%s/pg", h->set->data_dir);
        /* As root the cluster runs as the postgres user, which must be
         * able to pass through (not list) our private data directory. */
        if (geteuid() == 0 && chmod(h->set->data_dir, 0711) != 0)
            wlog(WLOG_WARN, "db", "chmod %s: %s", h->set->data_dir,
                 strerror(errno));
        wlog(WLOG_INFO, "db", "starting the embedded PostgreSQL in %s", dir);
        wmain_pg = wpg_embed_start(dir, "weft", 60000, &conninfo, &d);
        if (wmain_pg == NULL) {
            for (int i = 0; i < d.n; i++)
                wlog(WLOG_ERROR, "db", "%s", d.msgs[i]);
            wdiag_free(&d);
            return -1;
        }
    } else {
        conninfo = strdup(h->set->db_url);
        if (conninfo == NULL)
            return -1;
    }
    if (wmain_pg != NULL) {
        struct timeval tv = {0, 500000};
        wmain_pg_watch = evtimer_new(h->ctl.base, wmain_pg_check, NULL);
        if (wmain_pg_watch == NULL) {
            free(conninfo);
            return -1;
        }
        evtimer_add(wmain_pg_watch, &tv);
    }
    cfg.conninfo = conninfo;
    cfg.pool_size = (int)h->set->db_pool_size;
    cfg.queue_max = (int)h->set->db_queue_max;
    cfg.query_timeout_ms = (int)h->set->db_query_timeout;
    snprintf(wmain_node, sizeof(wmain_node), "pid-%ld-%08x", (long)getpid(),
             (unsigned)(time(NULL) ^ (getpid() << 8)));
    wmig_set_node(wmain_node);
    if (wmig_init(conninfo) != 0 ||
        wmig_apply("weft", wauth_migrations, &d) < 0 ||
        wauth_backfill(conninfo, &d) != 0 ||
        wdbl_listen("weft_account", wsess_on_notify, NULL) != 0 ||
        wdbl_listen("weft_schema", wmain_on_schema, NULL) != 0 ||
        wdbl_listen("weft_outbox", wbus_outbox_wake, NULL) != 0 ||
        wdbl_start(&h->ctl, conninfo) != 0) {
        for (int i = 0; i < d.n; i++)
            wlog(WLOG_ERROR, "db", "%s", d.msgs[i]);
        wdiag_free(&d);
        free(conninfo);
        return -1;
    }
    if (wdb_start(&cfg) != 0) {
        free(conninfo);
        return -1;
    }
    /* The outbox relay starts once the plugins (and their subscriptions)
     * are loaded: see wmain_run. */
    wmain_conninfo = conninfo;
    return 0;
}

static int wmain_run(const char *path)
{
    struct whost *h = &wmain_host;
    struct wdiag d = {0}, pd = {0};
    struct event *ev_term, *ev_int, *ev_hup;
    sigset_t block, old;
    int rc = 1, started = 0;
    long ncpu;

    whost_g = h;
    pthread_mutex_init(&h->admin_mu, NULL);
    if (evthread_use_pthreads() != 0) {
        wlog(WLOG_ERROR, "host", "libevent has no pthreads support");
        return 1;
    }
    h->config_path = realpath(path, NULL);
    if (h->config_path == NULL) {
        wlog(WLOG_ERROR, "host", "%s: %s", path, strerror(errno));
        return 2;
    }
    h->set = wsettings_load(h->config_path, &d, &pd);
    if (h->set == NULL || d.n > 0) {
        for (int i = 0; i < d.n; i++)
            wlog(WLOG_ERROR, "host", "config: %s", d.msgs[i]);
        wdiag_free(&d);
        wdiag_free(&pd);
        wsettings_free(h->set);
        free(h->config_path);
        return 2;
    }
    for (int i = 0; i < pd.n; i++)
        wlog(WLOG_WARN, "host", "config: %s", pd.msgs[i]);
    wdiag_free(&pd);
    wlog_set_level((int)h->set->log_level);
    wmain_limits(h->set, &h->lim);
    if (wmain_peer_init(h->set) != 0) {
        wlog(WLOG_ERROR, "host", "cannot set up the per-address limits");
        goto out;
    }
    h->admin_token = h->set->admin_token ? strdup(h->set->admin_token) : NULL;
    if (mkdir(h->set->data_dir, 0700) != 0 && errno != EEXIST) {
        wlog(WLOG_ERROR, "host", "cannot create data_dir %s: %s",
             h->set->data_dir, strerror(errno));
        goto out;
    }
    {
        char *real = realpath(h->set->data_dir, NULL);
        if (real != NULL) {
            free(h->set->data_dir);
            h->set->data_dir = real;
        }
    }

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    h->nloops = h->set->threads > 0 ? (int)h->set->threads
                                    : (int)(ncpu > 0 ? ncpu : 1);
    h->loops = calloc((size_t)h->nloops, sizeof(*h->loops));
    if (h->loops == NULL || wloop_init(&h->ctl, -1) != 0)
        goto out;
    for (int i = 0; i < h->nloops; i++)
        if (wloop_init(&h->loops[i], i) != 0 ||
            (h->loops[i].met = wmet_loop_new()) == NULL)
            goto out;
    if (wauth_init(h->set, &d) != 0) {
        for (int i = 0; i < d.n; i++)
            wlog(WLOG_ERROR, "auth", "%s", d.msgs[i]);
        wdiag_free(&d);
        goto out;
    }
    /* A changed account ends its realtime sessions. */
    wsess_on_change(wrt_revoke_user);
    if (wplug_init() != 0 || wbuiltin_register() != 0 || wauth_routes() != 0 ||
        wbus_routes() != 0 || wstatic_routes(h->set->web_root) != 0 ||
        wbus_start(h) != 0) {
        wlog(WLOG_ERROR, "host", "cannot set up the host's routes and bus");
        goto out;
    }
    {
        struct wrtable *t = wplug_first_table(h->nloops, h->set);
        if (t == NULL)
            goto out;
        for (int i = 0; i < h->nloops; i++)
            h->loops[i].rt = t;
    }
    if (wmain_listen(h) != 0)
        goto out;
    h->pool = wpool_start((int)h->set->workers, (int)h->set->worker_queue);
    if (h->pool == NULL)
        goto out;

    signal(SIGPIPE, SIG_IGN);
    ev_term = evsignal_new(h->ctl.base, SIGTERM, wmain_on_stop, NULL);
    ev_int = evsignal_new(h->ctl.base, SIGINT, wmain_on_stop, NULL);
    ev_hup = evsignal_new(h->ctl.base, SIGHUP, wmain_on_hup, NULL);
    wmain_drain_timer = evtimer_new(h->ctl.base, wmain_drain_check, NULL);
    if (ev_term == NULL || ev_int == NULL || ev_hup == NULL ||
        wmain_drain_timer == NULL || evsignal_add(ev_term, NULL) != 0 ||
        evsignal_add(ev_int, NULL) != 0 || evsignal_add(ev_hup, NULL) != 0)
        goto out;

    /* Signals are for the control thread only. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (int i = 0; i < h->nloops; i++) {
        if (pthread_create(&h->loops[i].thr, NULL, wmain_loop_thread,
                           &h->loops[i]) != 0) {
            wlog(WLOG_ERROR, "host", "cannot start loop threads");
            break;
        }
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started == h->nloops && wmain_database(h) != 0) {
        wlog(WLOG_ERROR, "host", "cannot start the database; stopping");
        rc = 1;
    } else if (started == h->nloops) {
        wplug_sync(h->set);
        wwatch_update(h->set);
        if (wmain_conninfo != NULL && h->set->bus_outbox_relay &&
            wbus_start_outbox(wmain_conninfo) != 0)
            wlog(WLOG_ERROR, "outbox", "cannot start the outbox relay");
        atomic_store(&h->ready, 1);
        wlog(WLOG_INFO, "host", "weftd %s ready (ABI %d.%d, pid %ld)",
             WEFT_VERSION, WEFT_ABI_MAJOR, WEFT_ABI_MINOR, (long)getpid());
        event_base_loop(h->ctl.base, EVLOOP_NO_EXIT_ON_EMPTY);
        rc = 0;
    }

    /* Shut down: the loops stop, queued work finishes, then plugins go. */
    wwatch_stop();
    for (int i = 0; i < started; i++)
        wloop_post(&h->loops[i], wmain_loop_break, &h->loops[i]);
    for (int i = 0; i < started; i++)
        pthread_join(h->loops[i].thr, NULL);
    wpool_stop(h->pool);
    h->pool = NULL;
    for (int i = 0; i < h->nloops; i++) {
        wloop_run_tasks(&h->loops[i]);
        wconn_close_all(&h->loops[i]);
        wrtable_release(h->loops[i].rt);
        h->loops[i].rt = NULL;
    }
    wplug_fini();
    wbus_stop();
    if (wmain_pg_watch != NULL)
        event_free(wmain_pg_watch);
    wmain_pg_watch = NULL;
    wdb_stop();
    wdbl_stop();
    wmig_fini();
    wpg_embed_stop(wmain_pg);
    wmain_pg = NULL;
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    event_free(wmain_drain_timer);
    wlog(WLOG_INFO, "host", "stopped");
out:
    wbus_stop(); /* again is harmless: after a failed start it is needed */
    wstatic_fini();
    free(wmain_conninfo);
    wmain_conninfo = NULL;
    if (h->pool != NULL)
        wpool_stop(h->pool);
    if (h->loops != NULL) {
        for (int i = 0; i < h->nloops; i++) {
            if (h->loops[i].base != NULL)
                wloop_destroy(&h->loops[i]);
            wmet_loop_free(h->loops[i].met);
        }
        free(h->loops);
    }
    if (h->ctl.base != NULL)
        wloop_destroy(&h->ctl);
    wauth_fini();
    wpeer_shutdown();
    wsettings_free(h->set);
    free(h->admin_token);
    free(h->config_path);
    libevent_global_shutdown();
    return rc;
}

/* The password for --create-admin: WEFT_ADMIN_PASSWORD, else the first
 * line of standard input (so it never shows in `ps`). */
static char *wmain_password(void)
{
    const char *env = getenv("WEFT_ADMIN_PASSWORD");
    char buf[1100];

    if (env != NULL)
        return strdup(env);
    if (fgets(buf, sizeof(buf), stdin) == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

/* --create-admin EMAIL and --seed-demo: one-off commands against the same
 * database weftd uses (the embedded cluster is started for them; weftd
 * must not be running on the same data directory). */
static int wmain_cli(const char *path, const char *email)
{
    struct wdiag d = {0}, pd = {0};
    struct wsettings *s;
    struct wpg_embed *pg = NULL;
    char *conninfo = NULL, dir[4096], *pw = NULL;
    int rc = 1;

    whost_g = &wmain_host;
    pthread_mutex_init(&wmain_host.admin_mu, NULL);
    s = wsettings_load(path, &d, &pd);
    if (s == NULL || d.n > 0)
        goto out;
    if (!s->db_enabled) {
        wdiag_add(&d, NULL, 0, "[database] enabled is false");
        goto out;
    }
    if (mkdir(s->data_dir, 0700) != 0 && errno != EEXIST) {
        wdiag_add(&d, NULL, 0, "cannot create %s: %s", s->data_dir,
                  strerror(errno));
        goto out;
    }
    if (s->db_url == NULL || s->db_url[0] == '\0') {
        if (geteuid() == 0)
            chmod(s->data_dir, 0711);
        snprintf(dir, sizeof(dir), "%s/pg", s->data_dir);
        pg = wpg_embed_start(dir, "weft", 60000, &conninfo, &d);
        if (pg == NULL)
            goto out;
    } else if ((conninfo = strdup(s->db_url)) == NULL) {
        goto out;
    }
    if (wmig_init(conninfo) != 0 ||
        wmig_apply("weft", wauth_migrations, &d) < 0 ||
        wauth_init(s, &d) != 0)
        goto out;
    wauth_cli_conninfo = conninfo;
    if (email != NULL) {
        pw = wmain_password();
        if (pw == NULL) {
            wdiag_add(&d, NULL, 0, "no password: set WEFT_ADMIN_PASSWORD or "
                                   "give it on standard input");
            goto out;
        }
        rc = wauth_create_admin(s, email, pw, &d) == 0 ? 0 : 1;
        if (rc == 0)
            printf("admin %s ready\n", email);
    } else {
        rc = wauth_seed_demo(s, &d) == 0 ? 0 : 1;
        if (rc == 0)
            printf("demo accounts ready: alex@mail.com, bob@mail.com\n");
    }
out:
    for (int i = 0; i < d.n; i++)
        fprintf(stderr, "weftd: %s\n", d.msgs[i]);
    if (pw != NULL) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    wauth_fini();
    wmig_fini();
    wpg_embed_stop(pg);
    free(conninfo);
    wdiag_free(&d);
    wdiag_free(&pd);
    wsettings_free(s);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("weftd %s (plugin ABI %d.%d)\n", WEFT_VERSION, WEFT_ABI_MAJOR,
               WEFT_ABI_MINOR);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        wmain_usage(stdout);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--check-config") == 0)
        return wmain_check(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--config") == 0)
        return wmain_run(argv[2]);
    if (argc == 5 && strcmp(argv[1], "--config") == 0 &&
        strcmp(argv[3], "--create-admin") == 0)
        return wmain_cli(argv[2], argv[4]);
    if (argc == 4 && strcmp(argv[1], "--config") == 0 &&
        strcmp(argv[3], "--seed-demo") == 0)
        return wmain_cli(argv[2], NULL);
    wmain_usage(stderr);
    return 2;
}
