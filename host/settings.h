/* settings.h - the host's validated configuration. */
#ifndef WEFT_HOST_SETTINGS_H
#define WEFT_HOST_SETTINGS_H

#include <stdint.h>

#include "config.h"

struct wsettings_plugin {
    char *name;    /* "hello" for [plugin.hello]                  */
    char *section; /* "plugin.hello"                               */
    char *path;    /* resolved against the config's directory      */
    int enabled;
    const char *origin; /* where the section starts               */
    int line;
};

struct wsettings {
    struct wcfg *cfg; /* kept for plugin keys and their locations */

    char *listen_host;
    int port;
    int64_t threads, workers, worker_queue;
    char *data_dir;
    char *web_root; /* the web client's files; empty: none */
    int64_t max_body, max_uri, max_header, max_headers, max_connections;
    int64_t header_timeout, keepalive_timeout, body_timeout, shutdown_timeout;
    int64_t access_log;
    /* Per client address (peer.c) and trusted proxies (proxy.c). */
    int64_t max_conns_per_addr, max_streams_per_addr;
    int64_t conn_rate_per_addr, conn_burst_per_addr, reserved_conns_pct;
    char *trusted_proxies; /* CIDR list, checked when loaded */
    int64_t proxy_header;  /* WPROXY_XFF or WPROXY_FORWARDED */
    int64_t log_level;
    char *admin_token;
    int64_t watch;

    int64_t db_enabled;
    char *db_url; /* empty: the embedded cluster under data_dir/pg */
    int64_t db_pool_size, db_queue_max, db_query_timeout;

    char *auth_secret, *auth_issuer, *auth_audience;
    int64_t auth_access_ttl, auth_refresh_ttl, auth_cookie_secure;
    int64_t auth_hash_concurrency, auth_argon2_opslimit, auth_argon2_memlimit;
    int64_t auth_login_rate, auth_login_account_rate, auth_register_rate;
    int64_t auth_refresh_rate;
    int64_t auth_login_slow_max, auth_session_cache_ttl;

    char *bus_nats_url, *bus_nats_prefix; /* empty url: in-process bus */
    int64_t bus_outbox_batch, bus_outbox_relay;

    int64_t rt_history_size, rt_history_ttl, rt_max_topics, rt_heartbeat;
    int64_t rt_max_subs, rt_send_buffer, rt_ws_max_message;
    char *rt_allowed_origins, *rt_public_topics; /* comma-separated */

    struct wsettings_plugin *plugins;
    int nplugins;
};

/* Read and check `path`. Problems of the host's own sections go to `d`,
 * those of [plugin.*] sections to `pd` (which may be `d`): one bad plugin
 * must not stop the host. Returns NULL when the file could not be read. */
struct wsettings *wsettings_load(const char *path, struct wdiag *d,
                                 struct wdiag *pd);
void wsettings_free(struct wsettings *s);

const struct wsettings_plugin *wsettings_plugin(const struct wsettings *s,
                                                const char *name);

#endif
