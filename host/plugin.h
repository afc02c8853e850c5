/* plugin.h - plugin slots (one per [plugin.<name>]) and loaded versions. */
#ifndef WEFT_HOST_PLUGIN_H
#define WEFT_HOST_PLUGIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <weft/weft.h>

#include "diag.h"

struct wsettings;
struct wroute;
struct wrtable;

/* STARTING: enabled, its first version not loaded yet (start-up, or just
 * enabled by SIGHUP); FAILED: enabled, no version could be loaded. */
enum { WPS_DISABLED = 0, WPS_RUNNING, WPS_FAILED, WPS_STARTING };

struct wplug_block; /* one state block per (size, layout) */
struct wreg_list;

struct wplug_slot {
    char *name;
    int enabled;                /* as last configured                */
    struct weft_plugin *cur;     /* serving version (control thread)  */
    char *file_sig, *sect_sig;  /* what `cur` was loaded from        */
    int live;                   /* versions not yet unloaded         */

    /* shown by /api/plugins and /metrics; guarded by wplugins.info_mu */
    int state;
    char *version, *path, *last_error;
    char abi[24]; /* the ABI the serving version was built for, "1.1" */
    char *assets; /* the serving version's asset folder (info_mu) */
    int widget;
    unsigned long long loads, reloads, failures;

    pthread_mutex_t state_mu; /* the state blocks list */
    pthread_mutex_t user_mu;  /* weft_state_lock()      */
    struct wplug_block *blocks;
    struct wplug_slot *next;
};

struct wplug_cfgval {
    const char *key; /* points into the descriptor (lives with the .so) */
    int type;
    char *str;
    int64_t num;
};

/* One loaded version: what the SDK's weft_plugin handle points to. */
struct weft_plugin {
    const weft_api *api; /* first: the SDK's inline wrappers read it */
    struct wplug_slot *slot;
    void *dl;
    const weft_plugin_desc *desc;
    atomic_int refs;
    int in_init, init_ok;
    struct wroute **routes;
    int nroutes, caproutes;
    struct wdiag fail; /* reasons given with weft_plugin_fail() */
    struct wplug_cfgval *cfg;
    int ncfg;
    char comp[48]; /* "plugin:<name>" for log lines */
    struct wreg_list *regs; /* topics, subscriptions, ws endpoints */
    char *assets; /* absolute folder of its static files, or NULL */
    int widget;   /* the folder has a widget.js */
};

/* Check a descriptor the way the loader does. Returns 0, or -1 with a
 * message in `why` (size bytes). `expect` is the section's plugin name. */
int wplug_check_desc(const weft_plugin_desc *d, const char *expect, char *why,
                     size_t size);

int wplug_init(void);
void wplug_fini(void); /* unload everything (after the loops stopped) */

/* Bring the plugins in line with `set` (start-up and SIGHUP), then publish
 * one routing table to every loop. Control thread only. */
void wplug_sync(const struct wsettings *set);

/* Reload one plugin from the config file as it is now. Control thread.
 * Returns an HTTP status; *body gets the JSON answer (a new reference). */
int wplug_reload(const char *config_path, const char *name, json_t **body);

/* Reload slots whose file changed on disk (inotify). Control thread. */
void wplug_reload_changed(const struct wsettings *set);

/* --check-config: load each enabled plugin's descriptor (no init) and check
 * it and its section's keys. */
void wplug_check_config(const struct wsettings *set, struct wdiag *d);

/* References held by routing tables and in-flight requests. Release may be
 * called from any thread; the last one unloads on the control loop. */
void wplug_inst_acquire(struct weft_plugin *i);
void wplug_inst_release(struct weft_plugin *i);
void wrtable_release(struct wrtable *t);

json_t *wplug_info(void);
/* A copy of plugin `name`'s asset folder (free it), or NULL. Any thread. */
char *wplug_assets(const char *name);
/* The serving versions, in slot order (control thread). */
struct weft_plugin *wplug_first_serving(void);
struct weft_plugin *wplug_next_serving(struct weft_plugin *i);
void wplug_metrics(struct evbuffer *out);

/* The host's own routes, registered before the first table is built. */
int wplug_host_route(const char *method, const char *pattern, unsigned flags,
                     weft_handler_fn fn);
/* The initial table, refs = nloops: the host routes, and every enabled
 * plugin of `set` as starting (503 until wplug_sync() loads it). */
struct wrtable *wplug_first_table(int nloops, const struct wsettings *set);

/* Plugin-facing helpers used by the API table. */
int wplug_route(struct weft_plugin *i, const char *method, const char *pattern,
                unsigned flags, weft_handler_fn fn);
void *wplug_state(struct weft_plugin *i, size_t size, uint32_t layout);
const struct wplug_cfgval *wplug_cfg(struct weft_plugin *i, const char *key);

#endif
