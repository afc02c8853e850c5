/* host.h - the one weftd process: its loops, pool, plugins and settings. */
#ifndef WEFT_HOST_HOST_H
#define WEFT_HOST_HOST_H

#include <pthread.h>
#include <stdatomic.h>

#include "http_parse.h"
#include "loop.h"

#define WEFT_VERSION "0.1.0"

struct wsettings;
struct wpool;
struct wplugins;

/* What the connection layer needs, fixed at start. */
struct whost_limits {
    struct whttp_limits http;
    size_t max_header;
    int max_connections;
    int header_timeout_ms, keepalive_timeout_ms, body_timeout_ms;
    int access_log;
};

struct whost {
    char *config_path;
    struct wsettings *set; /* current settings; control thread only */
    struct whost_limits lim;

    int nloops;
    struct wloop *loops;
    struct wloop ctl; /* the control loop, on the main thread */
    struct wpool *pool;
    struct wplugins *pm;

    pthread_mutex_t admin_mu; /* guards admin_token (SIGHUP changes it) */
    char *admin_token;

    atomic_int nconns;
    atomic_int stopping;
    atomic_int ready;
};

extern struct whost *whost_g;

/* Copy of the admin token (free it), or NULL when admin is disabled. */
char *whost_admin_token(void);

#endif
