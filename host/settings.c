/* settings.c - the host's keys: one table, checked with locations. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"
#include "settings.h"

/* A host key: where it goes in struct wsettings, its type and bounds. */
struct wset_key {
    const char *section, *key;
    int type;
    const char *def;
    int64_t min, max;
    size_t off;
};

#define WSET_OFF(f) offsetof(struct wsettings, f)
#define WSET_LISTEN 100 /* host:port, parsed specially */
#define WSET_LEVEL 101  /* log level name */
#define WSET_PROXIES 102   /* CIDR list, kept as text once it parses */
#define WSET_PROXY_HDR 103 /* x-forwarded-for or forwarded */

static const struct wset_key wset_keys[] = {
    {"server", "listen", WSET_LISTEN, "127.0.0.1:8080", 0, 0, 0},
    {"server", "threads", WCFG_INT, "0", 0, 256, WSET_OFF(threads)},
    {"server", "workers", WCFG_INT, "4", 1, 256, WSET_OFF(workers)},
    {"server", "worker_queue", WCFG_INT, "1024", 1, 1000000,
     WSET_OFF(worker_queue)},
    {"server", "data_dir", WCFG_STRING, "var", 0, 0, WSET_OFF(data_dir)},
    {"server", "web_root", WCFG_STRING, "", 0, 0, WSET_OFF(web_root)},
    {"server", "max_body", WCFG_SIZE, "1m", 0, 1LL << 32, WSET_OFF(max_body)},
    {"server", "max_uri", WCFG_SIZE, "8k", 64, 1 << 20, WSET_OFF(max_uri)},
    {"server", "max_header", WCFG_SIZE, "16k", 256, 1 << 20,
     WSET_OFF(max_header)},
    {"server", "max_headers", WCFG_INT, "100", 4, 1000, WSET_OFF(max_headers)},
    {"server", "max_connections", WCFG_INT, "10000", 1, 1000000,
     WSET_OFF(max_connections)},
    {"server", "header_timeout", WCFG_MS, "10s", 100, 3600000,
     WSET_OFF(header_timeout)},
    {"server", "keepalive_timeout", WCFG_MS, "60s", 100, 3600000,
     WSET_OFF(keepalive_timeout)},
    {"server", "body_timeout", WCFG_MS, "30s", 100, 3600000,
     WSET_OFF(body_timeout)},
    {"server", "shutdown_timeout", WCFG_MS, "10s", 0, 3600000,
     WSET_OFF(shutdown_timeout)},
    {"server", "access_log", WCFG_BOOL, "true", 0, 0, WSET_OFF(access_log)},
    {"server", "max_connections_per_address", WCFG_INT, "256", 0, 1000000,
     WSET_OFF(max_conns_per_addr)},
    {"server", "max_streams_per_address", WCFG_INT, "64", 0, 1000000,
     WSET_OFF(max_streams_per_addr)},
    {"server", "connection_rate_per_address", WCFG_INT, "20", 0, 1000000,
     WSET_OFF(conn_rate_per_addr)},
    {"server", "connection_burst_per_address", WCFG_INT, "100", 1, 1000000,
     WSET_OFF(conn_burst_per_addr)},
    {"server", "reserved_connections_percent", WCFG_INT, "10", 0, 90,
     WSET_OFF(reserved_conns_pct)},
    {"server", "trusted_proxies", WSET_PROXIES, "", 0, 0,
     WSET_OFF(trusted_proxies)},
    {"server", "proxy_header", WSET_PROXY_HDR, "x-forwarded-for", 0, 0,
     WSET_OFF(proxy_header)},
    {"log", "level", WSET_LEVEL, "info", 0, 0, WSET_OFF(log_level)},
    {"admin", "token", WCFG_STRING, "", 0, 0, WSET_OFF(admin_token)},
    {"plugins", "watch", WCFG_BOOL, "false", 0, 0, WSET_OFF(watch)},
    {"database", "enabled", WCFG_BOOL, "true", 0, 0, WSET_OFF(db_enabled)},
    {"database", "url", WCFG_STRING, "", 0, 0, WSET_OFF(db_url)},
    {"database", "pool_size", WCFG_INT, "4", 1, 64, WSET_OFF(db_pool_size)},
    {"database", "queue_max", WCFG_INT, "256", 1, 100000,
     WSET_OFF(db_queue_max)},
    {"database", "query_timeout", WCFG_MS, "5s", 50, 600000,
     WSET_OFF(db_query_timeout)},
    {"auth", "secret", WCFG_STRING, "", 0, 0, WSET_OFF(auth_secret)},
    {"auth", "issuer", WCFG_STRING, "weft", 0, 0, WSET_OFF(auth_issuer)},
    {"auth", "audience", WCFG_STRING, "weft", 0, 0, WSET_OFF(auth_audience)},
    {"auth", "access_ttl", WCFG_MS, "15m", 1000, 86400000LL,
     WSET_OFF(auth_access_ttl)},
    {"auth", "refresh_ttl", WCFG_MS, "30d", 60000, 31536000000LL,
     WSET_OFF(auth_refresh_ttl)},
    {"auth", "cookie_secure", WCFG_BOOL, "false", 0, 0,
     WSET_OFF(auth_cookie_secure)},
    {"auth", "hash_concurrency", WCFG_INT, "2", 1, 64,
     WSET_OFF(auth_hash_concurrency)},
    {"auth", "argon2_opslimit", WCFG_INT, "2", 1, 10,
     WSET_OFF(auth_argon2_opslimit)},
    {"auth", "argon2_memlimit", WCFG_SIZE, "64m", 8192, 1LL << 30,
     WSET_OFF(auth_argon2_memlimit)},
    {"auth", "login_rate", WCFG_INT, "10", 1, 1000000,
     WSET_OFF(auth_login_rate)},
    {"auth", "login_account_rate", WCFG_INT, "5", 1, 1000000,
     WSET_OFF(auth_login_account_rate)},
    {"auth", "register_rate", WCFG_INT, "5", 1, 1000000,
     WSET_OFF(auth_register_rate)},
    {"auth", "refresh_rate", WCFG_INT, "30", 1, 1000000,
     WSET_OFF(auth_refresh_rate)},
    {"auth", "login_slow_max", WCFG_MS, "2s", 0, 60000,
     WSET_OFF(auth_login_slow_max)},
    {"auth", "session_cache_ttl", WCFG_MS, "5s", 100, 600000,
     WSET_OFF(auth_session_cache_ttl)},
    {"bus", "nats_url", WCFG_STRING, "", 0, 0, WSET_OFF(bus_nats_url)},
    {"bus", "nats_prefix", WCFG_STRING, "weft", 0, 0,
     WSET_OFF(bus_nats_prefix)},
    {"bus", "outbox_relay", WCFG_BOOL, "true", 0, 0,
     WSET_OFF(bus_outbox_relay)},
    {"bus", "outbox_batch", WCFG_INT, "100", 1, 10000,
     WSET_OFF(bus_outbox_batch)},
    {"realtime", "history_size", WCFG_INT, "100", 0, 100000,
     WSET_OFF(rt_history_size)},
    {"realtime", "history_ttl", WCFG_MS, "5m", 1000, 86400000LL,
     WSET_OFF(rt_history_ttl)},
    {"realtime", "max_topics", WCFG_INT, "100000", 1, 10000000,
     WSET_OFF(rt_max_topics)},
    {"realtime", "heartbeat", WCFG_MS, "15s", 100, 3600000LL,
     WSET_OFF(rt_heartbeat)},
    {"realtime", "max_subscriptions", WCFG_INT, "64", 1, 10000,
     WSET_OFF(rt_max_subs)},
    {"realtime", "send_buffer", WCFG_SIZE, "1m", 4096, 1LL << 30,
     WSET_OFF(rt_send_buffer)},
    {"realtime", "ws_max_message", WCFG_SIZE, "64k", 128, 16LL << 20,
     WSET_OFF(rt_ws_max_message)},
    {"realtime", "allowed_origins", WCFG_STRING, "", 0, 0,
     WSET_OFF(rt_allowed_origins)},
    {"realtime", "public_topics", WCFG_STRING, "", 0, 0,
     WSET_OFF(rt_public_topics)},
};

static const char *const wset_sections[] = {"server", "log", "admin",
                                            "plugins", "database", "auth",
                                            "bus", "realtime"};

static int wset_listen(struct wsettings *s, const char *v, const char **why)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long port;

    if (colon == NULL || colon == v) {
        *why = "expected host:port, e.g. 127.0.0.1:8080";
        return -1;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535 || colon[1] == '\0') {
        *why = "port must be 0..65535";
        return -1;
    }
    free(s->listen_host);
    if (v[0] == '[' && colon[-1] == ']')
        s->listen_host = strndup(v + 1, (size_t)(colon - v - 2));
    else
        s->listen_host = strndup(v, (size_t)(colon - v));
    s->port = (int)port;
    return s->listen_host == NULL ? -1 : 0;
}

static void wset_apply(struct wsettings *s, const struct wset_key *k,
                       const char *v, const char *origin, int line,
                       struct wdiag *d)
{
    const char *why = NULL;
    int64_t n;
    char **sp;
    int lvl;

    switch (k->type) {
    case WSET_LISTEN:
        if (wset_listen(s, v, &why) != 0)
            wdiag_add(d, origin, line, "[server] listen = '%s': %s", v,
                      why ? why : "out of memory");
        return;
    case WSET_LEVEL:
        lvl = wlog_level_parse(v);
        if (lvl < 0)
            wdiag_add(d, origin, line,
                      "[log] level = '%s': expected error, warn, info or debug",
                      v);
        else
            s->log_level = lvl;
        return;
    case WSET_PROXIES: {
        struct wproxy_list pl;
        if (wproxy_list_parse(v, &pl, &why) != 0) {
            wdiag_add(d, origin, line, "[server] trusted_proxies = '%s': %s",
                      v, why);
            return;
        }
        wproxy_list_free(&pl);
        sp = (char **)(void *)((char *)s + k->off);
        free(*sp);
        *sp = strdup(v);
        return;
    }
    case WSET_PROXY_HDR:
        if (strcasecmp(v, "x-forwarded-for") == 0)
            s->proxy_header = WPROXY_XFF;
        else if (strcasecmp(v, "forwarded") == 0)
            s->proxy_header = WPROXY_FORWARDED;
        else
            wdiag_add(d, origin, line,
                      "[server] proxy_header = '%s': expected x-forwarded-for "
                      "or forwarded",
                      v);
        return;
    case WCFG_STRING:
        sp = (char **)(void *)((char *)s + k->off);
        free(*sp);
        *sp = strdup(v);
        return;
    default:
        if (wcfg_parse_value(k->type, v, k->min, k->max, &n, &why) != 0) {
            if (k->min != 0 || k->max != 0)
                wdiag_add(d, origin, line, "[%s] %s = '%s': %s (%lld..%lld)",
                          k->section, k->key, v, why, (long long)k->min,
                          (long long)k->max);
            else
                wdiag_add(d, origin, line, "[%s] %s = '%s': %s", k->section,
                          k->key, v, why);
            return;
        }
        *(int64_t *)(void *)((char *)s + k->off) = n;
    }
}

static int wset_plugin_name_ok(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len > 32 || !((n[0] >= 'a' && n[0] <= 'z') ||
                                  (n[0] >= '0' && n[0] <= '9')))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') ||
              n[i] == '-' || n[i] == '_'))
            return 0;
    return 1;
}

static void wset_plugin(struct wsettings *s, struct wcfg_section *sec,
                        struct wdiag *d)
/* `d` here is the plugin-problems list: those never stop the host. */
{
    struct wsettings_plugin *p, *arr;
    struct wcfg_entry *e;
    const char *why = NULL;
    const char *name = sec->name + strlen("plugin.");
    int64_t b;
    struct stat st;

    if (!wset_plugin_name_ok(name)) {
        wdiag_add(d, s->cfg->path, sec->line,
                  "[%s]: plugin names are 1-32 of a-z, 0-9, '-', '_'",
                  sec->name);
        return;
    }
    for (int i = 0; i < s->nplugins; i++)
        if (strcmp(s->plugins[i].name, name) == 0)
            return; /* the section was repeated; entries are merged */
    arr = realloc(s->plugins, (size_t)(s->nplugins + 1) * sizeof(*arr));
    if (arr == NULL)
        return;
    s->plugins = arr;
    p = &arr[s->nplugins++];
    memset(p, 0, sizeof(*p));
    p->name = strdup(name);
    p->section = strdup(sec->name);
    p->origin = s->cfg->path;
    p->line = sec->line;

    e = wcfg_lookup(s->cfg, sec->name, "enabled");
    if (e != NULL) {
        e->used = 1;
        if (wcfg_parse_value(WCFG_BOOL, e->value, 0, 0, &b, &why) != 0)
            wdiag_add(d, e->origin, e->line, "[%s] enabled = '%s': %s",
                      sec->name, e->value, why);
        else
            p->enabled = (int)b;
    }
    e = wcfg_lookup(s->cfg, sec->name, "path");
    if (e == NULL || e->value[0] == '\0') {
        if (p->enabled)
            wdiag_add(d, s->cfg->path, sec->line, "[%s]: missing key 'path'",
                      sec->name);
        return;
    }
    e->used = 1;
    p->path = wcfg_path(s->cfg, e->value);
    if (p->enabled && p->path != NULL && stat(p->path, &st) != 0)
        wdiag_add(d, e->origin, e->line, "[%s] path: plugin file %s not found",
                  sec->name, p->path);
}

struct wsettings *wsettings_load(const char *path, struct wdiag *d,
                                 struct wdiag *pd)
{
    struct wsettings *s;
    struct wcfg_section *sec;
    struct wcfg_entry *e;
    size_t nkeys = sizeof(wset_keys) / sizeof(wset_keys[0]);

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = wcfg_read(path, d);
    if (s->cfg == NULL) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < nkeys; i++)
        wset_apply(s, &wset_keys[i], wset_keys[i].def, NULL, 0, d);
    for (size_t i = 0; i < nkeys; i++) {
        e = wcfg_lookup(s->cfg, wset_keys[i].section, wset_keys[i].key);
        if (e == NULL)
            continue;
        e->used = 1;
        wset_apply(s, &wset_keys[i], e->value, e->origin, e->line, d);
    }
    /* data_dir and web_root are relative to the config file, like plugin
     * paths. */
    if (s->data_dir != NULL && s->data_dir[0] != '/') {
        char *abs = wcfg_path(s->cfg, s->data_dir);
        free(s->data_dir);
        s->data_dir = abs;
    }
    if (s->web_root != NULL && s->web_root[0] != '\0' &&
        s->web_root[0] != '/') {
        char *abs = wcfg_path(s->cfg, s->web_root);
        free(s->web_root);
        s->web_root = abs;
    }

    for (sec = s->cfg->sections; sec != NULL; sec = sec->next) {
        int known = 0;
        if (strncmp(sec->name, "plugin.", 7) == 0) {
            wset_plugin(s, sec, pd);
            continue;
        }
        for (size_t i = 0; i < sizeof(wset_sections) / sizeof(*wset_sections);
             i++)
            known |= strcmp(sec->name, wset_sections[i]) == 0;
        if (!known)
            wdiag_add(d, s->cfg->path, sec->line, "unknown section [%s]",
                      sec->name);
    }
    /* Keys in host sections that no table entry claimed. Plugin sections'
     * own keys are checked against the plugin's declared table later. */
    for (e = s->cfg->entries; e != NULL; e = e->next) {
        int host_section = 0;
        if (e->used || strncmp(e->section, "plugin.", 7) == 0)
            continue;
        for (size_t i = 0; i < sizeof(wset_sections) / sizeof(*wset_sections);
             i++)
            host_section |= strcmp(e->section, wset_sections[i]) == 0;
        if (host_section)
            wdiag_add(d, e->origin, e->line, "unknown key '%s' in [%s]",
                      e->key, e->section);
    }
    return s;
}

void wsettings_free(struct wsettings *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->nplugins; i++) {
        free(s->plugins[i].name);
        free(s->plugins[i].section);
        free(s->plugins[i].path);
    }
    free(s->plugins);
    free(s->listen_host);
    free(s->data_dir);
    free(s->web_root);
    free(s->admin_token);
    free(s->db_url);
    free(s->auth_secret);
    free(s->auth_issuer);
    free(s->auth_audience);
    free(s->bus_nats_url);
    free(s->bus_nats_prefix);
    free(s->rt_allowed_origins);
    free(s->rt_public_topics);
    free(s->trusted_proxies);
    wcfg_free(s->cfg);
    free(s);
}

const struct wsettings_plugin *wsettings_plugin(const struct wsettings *s,
                                                const char *name)
{
    for (int i = 0; i < s->nplugins; i++)
        if (strcmp(s->plugins[i].name, name) == 0)
            return &s->plugins[i];
    return NULL;
}
