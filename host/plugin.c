/* plugin.c - loading, reloading and unloading plugins.
 *
 * Every operation runs on the control thread. A new version is loaded from a
 * private copy of its file (so a rebuilt file is really a new object, and an
 * in-place rewrite cannot corrupt the mapped one), initialised, and only then
 * swapped in: one new routing table goes to every loop, and the old version
 * is unloaded when the last table and request holding it let go. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "migrate.h"
#include "host.h"
#include "log.h"
#include "metrics.h"
#include "plugin.h"
#include "registry.h"
#include "request.h"
#include "router.h"
#include "settings.h"

extern char **environ;

struct wplug_block {
    size_t size;
    uint32_t layout;
    struct wplug_block *next;
    /* the plugin's bytes follow, max_align_t aligned */
    max_align_t data[];
};

struct wplugins {
    struct wplug_slot *slots;
    pthread_mutex_t info_mu;
    unsigned gen;
    struct wroute **host_routes;
    int nhost;
    /* publishing */
    pthread_mutex_t pub_mu;
    pthread_cond_t pub_cv;
    unsigned long long pub_gen; /* of the last table built (control) */
    /* What each loop serves, guarded by pub_mu: its table (alive while
     * shown here, as the loop drops it only after replacing it here) and
     * that table's generation. A reload waits on these, and /api/plugins
     * shows them, so "every loop switched" can be checked from outside. */
    int nloops;
    struct wrtable **loop_rt;
    unsigned long long *loop_gen;
};

static struct wplugins wpm;
static const size_t wplug_desc_min =
    offsetof(weft_plugin_desc, shutdown) + sizeof(void (*)(void));

int wplug_check_desc(const weft_plugin_desc *d, const char *expect, char *why,
                     size_t size)
{
    if (d == NULL) {
        snprintf(why, size, "%s() returned NULL", WEFT_ENTRY_SYMBOL);
        return -1;
    }
    if (d->abi_major != WEFT_ABI_MAJOR) {
        snprintf(why, size,
                 "plugin built for ABI major %u (ABI %u.%u), this weftd "
                 "provides ABI %d.%d: rebuild it against this SDK",
                 d->abi_major, d->abi_major, d->abi_minor, WEFT_ABI_MAJOR,
                 WEFT_ABI_MINOR);
        return -1;
    }
    if (d->struct_size < wplug_desc_min) {
        snprintf(why, size,
                 "descriptor is %u bytes, ABI %d needs at least %zu: "
                 "use WEFT_DESC_HEADER",
                 d->struct_size, WEFT_ABI_MAJOR, wplug_desc_min);
        return -1;
    }
    if (d->name == NULL || strcmp(d->name, expect) != 0) {
        snprintf(why, size,
                 "descriptor name '%s' does not match its section "
                 "[plugin.%s]",
                 d->name ? d->name : "(null)", expect);
        return -1;
    }
    if (d->version == NULL || d->version[0] == '\0' ||
        strlen(d->version) > 64) {
        snprintf(why, size, "descriptor has no version (1-64 characters)");
        return -1;
    }
    if (d->init == NULL) {
        snprintf(why, size, "descriptor has no init callback");
        return -1;
    }
    return 0;
}

int wplug_init(void)
{
    memset(&wpm, 0, sizeof(wpm));
    pthread_mutex_init(&wpm.info_mu, NULL);
    pthread_mutex_init(&wpm.pub_mu, NULL);
    pthread_cond_init(&wpm.pub_cv, NULL);
    return 0;
}

int wplug_host_route(const char *method, const char *pattern, unsigned flags,
                     weft_handler_fn fn)
{
    const char *why = NULL;
    struct wroute *r = wroute_new(method, pattern, flags, fn, NULL, &why);
    struct wroute **a;

    if (r == NULL)
        return -1;
    a = realloc(wpm.host_routes, (size_t)(wpm.nhost + 1) * sizeof(*a));
    if (a == NULL) {
        wroute_free(r);
        return -1;
    }
    wpm.host_routes = a;
    a[wpm.nhost++] = r;
    return 0;
}

/* ---- signatures: has the file or the section changed? ---------------- */

static char *wplug_file_sig(const char *path)
{
    struct stat st;
    char *s;

    if (path == NULL || stat(path, &st) != 0)
        return strdup("missing");
    if (asprintf(&s, "%llu:%llu:%lld:%lld.%09ld", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec) < 0)
        return NULL;
    return s;
}

static char *wplug_sect_sig(const struct wsettings *set,
                            const struct wsettings_plugin *sp)
{
    struct evbuffer *b = evbuffer_new();
    char prefix[128];
    size_t plen, len;
    char *s;

    if (b == NULL)
        return NULL;
    for (struct wcfg_entry *e = set->cfg->entries; e; e = e->next)
        if (strcmp(e->section, sp->section) == 0)
            evbuffer_add_printf(b, "%s=%s\n", e->key, e->value);
    /* The environment overrides count too. */
    wcfg_env_name(sp->section, "", prefix, sizeof(prefix));
    plen = strlen(prefix);
    for (char **env = environ; env && *env; env++)
        if (strncmp(*env, prefix, plen) == 0)
            evbuffer_add_printf(b, "env:%s\n", *env);
    len = evbuffer_get_length(b);
    s = malloc(len + 1);
    if (s != NULL) {
        evbuffer_remove(b, s, len);
        s[len] = '\0';
    }
    evbuffer_free(b);
    return s;
}

/* ---- config of one version ------------------------------------------- */

/* Resolve the declared keys of `d` against the section; problems go to
 * `diag`. Fills i->cfg when i is not NULL. */
static void wplug_resolve_cfg(const weft_plugin_desc *d,
                              const struct wsettings *set,
                              const struct wsettings_plugin *sp,
                              struct weft_plugin *i, struct wdiag *diag)
{
    const weft_config_key *k;
    int n = 0;

    for (k = d->config; k != NULL && k->key != NULL; k++)
        n++;
    if (i != NULL && n > 0) {
        i->cfg = calloc((size_t)n, sizeof(*i->cfg));
        if (i->cfg == NULL) {
            wdiag_add(diag, NULL, 0, "out of memory");
            return;
        }
    }
    for (k = d->config; k != NULL && k->key != NULL; k++) {
        struct wcfg_entry *e = wcfg_lookup(set->cfg, sp->section, k->key);
        const char *v = e != NULL ? e->value : k->def;
        const char *why = NULL;
        int64_t num = 0;

        if (strcmp(k->key, "path") == 0 || strcmp(k->key, "enabled") == 0) {
            wdiag_add(diag, NULL, 0,
                      "plugin declares the host's own key '%s'", k->key);
            continue;
        }
        if (e != NULL)
            e->used = 1;
        if (v == NULL)
            v = "";
        if (k->type < WCFG_STRING || k->type > WCFG_MS) {
            wdiag_add(diag, NULL, 0, "plugin declares key '%s' with bad type %d",
                      k->key, k->type);
            continue;
        }
        if (k->type != WCFG_STRING &&
            wcfg_parse_value(k->type, v, k->min, k->max, &num, &why) != 0) {
            if (k->min != 0 || k->max != 0)
                wdiag_add(diag, e ? e->origin : NULL, e ? e->line : 0,
                          "[%s] %s = '%s': %s (%lld..%lld)", sp->section,
                          k->key, v, why, (long long)k->min, (long long)k->max);
            else
                wdiag_add(diag, e ? e->origin : NULL, e ? e->line : 0,
                          "[%s] %s = '%s': %s", sp->section, k->key, v, why);
            continue;
        }
        if (i != NULL) {
            struct wplug_cfgval *cv = &i->cfg[i->ncfg++];
            cv->key = k->key;
            cv->type = k->type;
            cv->str = strdup(v);
            cv->num = num;
        }
    }
    for (struct wcfg_entry *e = set->cfg->entries; e != NULL; e = e->next)
        if (strcmp(e->section, sp->section) == 0 && !e->used &&
            strcmp(e->key, "path") != 0 && strcmp(e->key, "enabled") != 0)
            wdiag_add(diag, e->origin, e->line,
                      "unknown key '%s' in [%s] (plugin %s declares no such "
                      "key)",
                      e->key, sp->section, sp->name);
}

/* ---- loading ---------------------------------------------------------- */

static int wplug_copy(const char *src, const char *dst, struct wdiag *d)
{
    char buf[65536];
    int in, out;
    ssize_t n;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        wdiag_add(d, NULL, 0, "cannot open %s: %s", src, strerror(errno));
        return -1;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (out < 0) {
        wdiag_add(d, NULL, 0, "cannot create %s: %s", dst, strerror(errno));
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    if (n < 0 || close(out) != 0) {
        wdiag_add(d, NULL, 0, "cannot copy %s to %s: %s", src, dst,
                  strerror(errno));
        close(in);
        unlink(dst);
        return -1;
    }
    close(in);
    return 0;
}

static void wplug_inst_free(struct weft_plugin *i)
{
    wreg_inst_free(i);
    free(i->assets);
    for (int k = 0; k < i->nroutes; k++)
        wroute_free(i->routes[k]);
    free(i->routes);
    for (int k = 0; k < i->ncfg; k++)
        free(i->cfg[k].str);
    free(i->cfg);
    wdiag_free(&i->fail);
    if (i->dl != NULL)
        dlclose(i->dl);
    free(i);
}

/* The descriptor's asset folder, relative to the directory of the .so as
 * configured (not of the private copy). A missing folder is only logged:
 * the plugin still serves its API. */
static void wplug_find_assets(struct weft_plugin *i, const char *so_path)
{
    const weft_plugin_desc *d = i->desc;
    char dir[4096], path[4200];
    const char *slash;
    struct stat st;

    if (d->struct_size < offsetof(weft_plugin_desc, assets) + sizeof(d->assets) ||
        d->assets == NULL || d->assets[0] == '\0')
        return;
    slash = strrchr(so_path, '/');
    if (d->assets[0] == '/' || strstr(d->assets, "..") != NULL) {
        wlog(WLOG_WARN, i->comp, "assets '%s' must be a folder next to the "
                                 ".so", d->assets);
        return;
    }
    snprintf(dir, sizeof(dir), "%.*s/%s",
             slash != NULL ? (int)(slash - so_path) : 1,
             slash != NULL ? so_path : ".", d->assets);
    i->assets = realpath(dir, NULL);
    if (i->assets == NULL) {
        wlog(WLOG_WARN, i->comp, "asset folder %s: %s (no web widget)", dir,
             strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/widget.js", i->assets);
    i->widget = stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Open the plugin's file (from a private copy) and find its descriptor. */
static void *wplug_open(const char *name, const char *path,
                        const char *data_dir, unsigned gen,
                        const weft_plugin_desc **desc, struct wdiag *d)
{
    char copy[4096], why[512];
    weft_entry_fn entry;
    void *dl;

    snprintf(copy, sizeof(copy), "%s/plugins/%s.%ld.%u.so", data_dir, name,
             (long)getpid(), gen);
    if (wplug_copy(path, copy, d) != 0)
        return NULL;
    dl = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    /* The mapping stays valid; nothing is left behind if we crash later. */
    unlink(copy);
    if (dl == NULL) {
        wdiag_add(d, NULL, 0, "cannot load %s: %s", path, dlerror());
        return NULL;
    }
    *(void **)&entry = dlsym(dl, WEFT_ENTRY_SYMBOL);
    if (entry == NULL) {
        wdiag_add(d, NULL, 0,
                  "%s has no symbol %s (did the plugin use WEFT_PLUGIN()?)",
                  path, WEFT_ENTRY_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    *desc = entry();
    if (wplug_check_desc(*desc, name, why, sizeof(why)) != 0) {
        wdiag_add(d, NULL, 0, "%s: %s", path, why);
        dlclose(dl);
        return NULL;
    }
    return dl;
}

static struct weft_plugin *wplug_load(struct wplug_slot *s,
                                     const struct wsettings *set,
                                     const struct wsettings_plugin *sp,
                                     struct wdiag *d)
{
    struct weft_plugin *i;
    char dir[4096];
    int rc;

    if (sp->path == NULL) {
        wdiag_add(d, sp->origin, sp->line, "[%s]: missing key 'path'",
                  sp->section);
        return NULL;
    }
    snprintf(dir, sizeof(dir), "%s/plugins", set->data_dir);
    if (mkdir(set->data_dir, 0700) != 0 && errno != EEXIST) {
        wdiag_add(d, NULL, 0, "cannot create %s: %s", set->data_dir,
                  strerror(errno));
        return NULL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        wdiag_add(d, NULL, 0, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    i = calloc(1, sizeof(*i));
    if (i == NULL)
        return NULL;
    i->api = &wapi_table;
    i->slot = s;
    atomic_init(&i->refs, 1);
    snprintf(i->comp, sizeof(i->comp), "plugin:%s", s->name);
    i->dl = wplug_open(s->name, sp->path, set->data_dir, ++wpm.gen, &i->desc,
                       d);
    if (i->dl == NULL) {
        free(i);
        return NULL;
    }
    if (i->desc->abi_minor > WEFT_ABI_MINOR)
        wlog(WLOG_WARN, i->comp,
             "built for ABI 1.%u, this weftd provides 1.%d: calls it "
             "checks with weft_api_has() will be unavailable",
             i->desc->abi_minor, WEFT_ABI_MINOR);
    wplug_resolve_cfg(i->desc, set, sp, i, d);
    if (d->n > 0) {
        wplug_inst_free(i);
        return NULL;
    }
    wplug_find_assets(i, sp->path);
    /* Migrations run before init and before the swap: a new version's
     * schema changes must keep the running version working (expand, then
     * contract in a later version). A failure refuses this version. */
    if (i->desc->struct_size >= offsetof(weft_plugin_desc, migrations) +
                                    sizeof(i->desc->migrations) &&
        i->desc->migrations != NULL && i->desc->migrations[0].version != 0) {
        int n;
        if (!wdb_enabled()) {
            wdiag_add(d, NULL, 0, "%s needs a database, and [database] "
                                  "enabled is false", s->name);
            wplug_inst_free(i);
            return NULL;
        }
        n = wmig_apply(s->name, i->desc->migrations, d);
        if (n < 0) {
            wplug_inst_free(i);
            return NULL;
        }
        if (n > 0)
            wdb_schema_changed();
    }
    i->in_init = 1;
    rc = i->desc->init(i);
    i->in_init = 0;
    if (rc != WEFT_OK || i->fail.n > 0) {
        char *why = wdiag_join(&i->fail);
        wdiag_add(d, NULL, 0, "init of %s %s failed: %s", s->name,
                  i->desc->version,
                  why ? why : "init returned an error without a reason");
        free(why);
        /* A failed init may have half-registered: shutdown still runs. */
        i->init_ok = 1;
        if (i->desc->shutdown != NULL)
            i->desc->shutdown(i);
        wplug_inst_free(i);
        return NULL;
    }
    i->init_ok = 1;
    s->live++;
    return i;
}

static void wplug_blocks_free(struct wplug_slot *s)
{
    struct wplug_block *b, *n;

    pthread_mutex_lock(&s->state_mu);
    for (b = s->blocks; b != NULL; b = n) {
        n = b->next;
        free(b);
    }
    s->blocks = NULL;
    pthread_mutex_unlock(&s->state_mu);
}

/* Last reference gone: on the control loop. */
static void wplug_inst_destroy(void *arg)
{
    struct weft_plugin *i = arg;
    struct wplug_slot *s = i->slot;

    if (i->init_ok && i->desc->shutdown != NULL)
        i->desc->shutdown(i);
    wlog(WLOG_INFO, i->comp, "version %s unloaded", i->desc->version);
    wplug_inst_free(i);
    s->live--;
    /* The state slot outlives reloads, not the plugin being switched off. */
    if (s->live == 0 && s->cur == NULL && !s->enabled)
        wplug_blocks_free(s);
}

void wplug_inst_acquire(struct weft_plugin *i)
{
    atomic_fetch_add_explicit(&i->refs, 1, memory_order_relaxed);
}

void wplug_inst_release(struct weft_plugin *i)
{
    if (atomic_fetch_sub_explicit(&i->refs, 1, memory_order_acq_rel) == 1) {
        if (wloop_post(&whost_g->ctl, wplug_inst_destroy, i) != 0)
            wlog(WLOG_ERROR, i->comp, "out of memory: version leaked");
    }
}

void wrtable_release(struct wrtable *t)
{
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        for (int k = 0; k < t->ninsts; k++)
            wplug_inst_release(t->insts[k]);
        wrtable_free(t);
    }
}

/* ---- publishing a routing table -------------------------------------- */

static struct wrtable *wplug_build_table(int refs)
{
    struct wroute **all;
    struct wrtable *t;
    int n = wpm.nhost, ni = 0;

    for (struct wplug_slot *s = wpm.slots; s; s = s->next)
        if (s->cur != NULL) {
            n += s->cur->nroutes;
            ni++;
        }
    all = calloc((size_t)(n > 0 ? n : 1), sizeof(*all));
    if (all == NULL)
        return NULL;
    n = 0;
    for (int k = 0; k < wpm.nhost; k++)
        all[n++] = wpm.host_routes[k];
    for (struct wplug_slot *s = wpm.slots; s; s = s->next)
        if (s->cur != NULL)
            for (int k = 0; k < s->cur->nroutes; k++)
                all[n++] = s->cur->routes[k];
    t = wrtable_new(all, n);
    free(all);
    if (t == NULL)
        return NULL;
    t->insts = calloc((size_t)(ni > 0 ? ni : 1), sizeof(*t->insts));
    if (t->insts == NULL) {
        wrtable_free(t);
        return NULL;
    }
    for (struct wplug_slot *s = wpm.slots; s; s = s->next)
        if (s->cur != NULL) {
            wplug_inst_acquire(s->cur);
            t->insts[t->ninsts++] = s->cur;
        } else if ((s->state == WPS_STARTING || s->state == WPS_FAILED) &&
                   wrtable_add_wait(t, s->name,
                                    s->state == WPS_STARTING
                                        ? WRWAIT_STARTING
                                        : WRWAIT_FAILED) != 0) {
            wrtable_release(t);
            return NULL;
        }
    atomic_store(&t->refs, refs);
    return t;
}

static struct wplug_slot *wplug_slot_get(const char *name, int create);

struct wrtable *wplug_first_table(int nloops, const struct wsettings *set)
{
    struct wrtable *t;

    /* Listeners accept before the database and the plugins are up (so
     * /healthz answers): until then a configured plugin's URLs say
     * "starting", not "no such route". */
    for (int k = 0; k < set->nplugins; k++) {
        struct wplug_slot *s;
        if (!set->plugins[k].enabled)
            continue;
        s = wplug_slot_get(set->plugins[k].name, 1);
        if (s == NULL)
            return NULL;
        pthread_mutex_lock(&wpm.info_mu);
        s->state = WPS_STARTING;
        pthread_mutex_unlock(&wpm.info_mu);
    }

    wpm.loop_rt = calloc((size_t)(nloops > 0 ? nloops : 1),
                         sizeof(*wpm.loop_rt));
    wpm.loop_gen = calloc((size_t)(nloops > 0 ? nloops : 1),
                          sizeof(*wpm.loop_gen));
    if (wpm.loop_rt == NULL || wpm.loop_gen == NULL)
        return NULL;
    wreg_rebuild();
    t = wplug_build_table(nloops);
    if (t == NULL)
        return NULL;
    pthread_mutex_lock(&wpm.pub_mu);
    wpm.pub_gen = 1;
    wpm.nloops = nloops;
    for (int k = 0; k < nloops; k++) {
        wpm.loop_rt[k] = t;
        wpm.loop_gen[k] = 1;
    }
    pthread_mutex_unlock(&wpm.pub_mu);
    return t;
}

struct weft_plugin *wplug_first_serving(void)
{
    for (struct wplug_slot *s = wpm.slots; s != NULL; s = s->next)
        if (s->cur != NULL)
            return s->cur;
    return NULL;
}

struct weft_plugin *wplug_next_serving(struct weft_plugin *i)
{
    for (struct wplug_slot *s = i->slot->next; s != NULL; s = s->next)
        if (s->cur != NULL)
            return s->cur;
    return NULL;
}

struct weft_pluginall {
    struct wloop *loop;
    struct wrtable *t;
    unsigned long long gen;
};

/* On loop `in->loop`, between two of its events: no request of this loop
 * is running, so the swap is atomic for it. */
static void wplug_install(void *arg)
{
    struct weft_pluginall *in = arg;
    struct wrtable *old = in->loop->rt;

    in->loop->rt = in->t;
    pthread_mutex_lock(&wpm.pub_mu);
    if (in->loop->id >= 0 && in->loop->id < wpm.nloops) {
        wpm.loop_rt[in->loop->id] = in->t;
        wpm.loop_gen[in->loop->id] = in->gen;
    }
    pthread_cond_broadcast(&wpm.pub_cv);
    pthread_mutex_unlock(&wpm.pub_mu);
    wrtable_release(old);
    free(in);
}

/* How many loops serve a table older than generation `gen` (pub_mu). */
static int wplug_behind(unsigned long long gen)
{
    int n = 0;

    for (int k = 0; k < wpm.nloops; k++)
        n += wpm.loop_gen[k] < gen;
    return n;
}

/*
 * Give every loop the new table and wait until all of them use it, so an
 * admin reload answers only once the new version serves everywhere.
 * Each loop acknowledges the generation it installed, not just "a" table:
 * a late acknowledgement of an earlier publish that timed out must not
 * count for this one. Returns 0 when every loop switched, the number of
 * loops still on an older table after 10 s (or that could not be told),
 * or -1 when no table could be built.
 */
static int wplug_publish(void)
{
    struct wrtable *t = wplug_build_table(whost_g->nloops);
    struct timespec deadline;
    unsigned long long gen;
    int behind;

    wreg_rebuild();
    if (t == NULL) {
        wlog(WLOG_ERROR, "host", "out of memory building the routing table");
        return -1;
    }
    gen = ++wpm.pub_gen;
    for (int k = 0; k < whost_g->nloops; k++) {
        struct weft_pluginall *in = malloc(sizeof(*in));
        if (in == NULL ||
            (in->loop = &whost_g->loops[k], in->t = t, in->gen = gen,
             wloop_post(in->loop, wplug_install, in) != 0)) {
            free(in);
            wrtable_release(t); /* this loop's share */
            wlog(WLOG_ERROR, "host", "out of memory: loop %d keeps its "
                                     "routing table",
                 k);
        }
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&wpm.pub_mu);
    while ((behind = wplug_behind(gen)) > 0)
        if (pthread_cond_timedwait(&wpm.pub_cv, &wpm.pub_mu, &deadline) != 0) {
            behind = wplug_behind(gen);
            if (behind > 0)
                wlog(WLOG_WARN, "host",
                     "%d loop(s) did not take the new routing table within "
                     "10 s",
                     behind);
            break;
        }
    pthread_mutex_unlock(&wpm.pub_mu);
    return behind;
}

/* ---- slots ------------------------------------------------------------ */

static struct wplug_slot *wplug_slot_get(const char *name, int create)
{
    struct wplug_slot *s, **tail = &wpm.slots;

    for (s = wpm.slots; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0)
            return s;
        tail = &s->next;
    }
    if (!create)
        return NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->name = strdup(name);
    if (s->name == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->state_mu, NULL);
    {
        /* weft_state_lock(): a plugin's double lock or stray unlock comes
         * back as an error (logged by api.c), not a hang or a corrupt
         * mutex. */
        pthread_mutexattr_t ma;

        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
        pthread_mutex_init(&s->user_mu, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    *tail = s;
    return s;
}

static void wplug_set_str(char **dst, const char *v)
{
    char *n = v ? strdup(v) : NULL;

    free(*dst);
    *dst = n;
}

/* Load a new version of `s` and make it current (not yet published).
 * Returns the version it replaced (to release after publishing) through
 * *old; 0 on success, -1 with the reason recorded. */
static int wplug_replace(struct wplug_slot *s, const struct wsettings *set,
                         const struct wsettings_plugin *sp,
                         struct weft_plugin **old, char **reason)
{
    struct wdiag d = {0};
    struct weft_plugin *ni;
    char *why;

    *old = NULL;
    ni = wplug_load(s, set, sp, &d);
    if (ni != NULL && s->cur != NULL && s->cur->desc->quiesce != NULL) {
        wdiag_free(&s->cur->fail);
        if (s->cur->desc->quiesce(s->cur) != WEFT_OK) {
            char *v = wdiag_join(&s->cur->fail);
            wdiag_add(&d, NULL, 0, "running version %s vetoed the reload: %s",
                      s->cur->desc->version, v ? v : "no reason given");
            free(v);
            wdiag_free(&s->cur->fail);
            wplug_inst_release(ni); /* shutdown + unload, on this loop */
            ni = NULL;
        }
    }
    if (ni == NULL) {
        why = wdiag_join(&d);
        wdiag_free(&d);
        if (why == NULL)
            why = strdup("unknown failure");
        wlog(WLOG_ERROR, "host", "plugin %s not (re)loaded: %s%s", s->name,
             why ? why : "", s->cur ? "; the running version keeps serving" : "");
        pthread_mutex_lock(&wpm.info_mu);
        s->failures++;
        wplug_set_str(&s->last_error, why);
        if (s->cur == NULL)
            s->state = WPS_FAILED;
        pthread_mutex_unlock(&wpm.info_mu);
        if (reason != NULL)
            *reason = why;
        else
            free(why);
        return -1;
    }
    wdiag_free(&d);
    free(s->file_sig);
    free(s->sect_sig);
    s->file_sig = wplug_file_sig(sp->path);
    s->sect_sig = wplug_sect_sig(set, sp);
    *old = s->cur;
    s->cur = ni;
    pthread_mutex_lock(&wpm.info_mu);
    s->loads++;
    if (*old != NULL)
        s->reloads++;
    s->state = WPS_RUNNING;
    wplug_set_str(&s->version, ni->desc->version);
    snprintf(s->abi, sizeof(s->abi), "%u.%u", ni->desc->abi_major,
             ni->desc->abi_minor);
    wplug_set_str(&s->path, sp->path);
    wplug_set_str(&s->last_error, NULL);
    wplug_set_str(&s->assets, ni->assets);
    s->widget = ni->widget;
    pthread_mutex_unlock(&wpm.info_mu);
    wlog(WLOG_INFO, "host", "plugin %s %s %s", s->name, ni->desc->version,
         *old ? "reloaded" : "loaded");
    return 0;
}

static void wplug_disable(struct wplug_slot *s, struct weft_plugin **old)
{
    *old = s->cur;
    s->cur = NULL;
    s->enabled = 0;
    pthread_mutex_lock(&wpm.info_mu);
    s->state = WPS_DISABLED;
    wplug_set_str(&s->assets, NULL);
    s->widget = 0;
    pthread_mutex_unlock(&wpm.info_mu);
    if (*old == NULL && s->live == 0)
        wplug_blocks_free(s);
    wlog(WLOG_INFO, "host", "plugin %s disabled", s->name);
}

void wplug_sync(const struct wsettings *set)
{
    struct weft_plugin **olds;
    int nold = 0, cap = set->nplugins + 8, marked = 0;

    for (struct wplug_slot *s = wpm.slots; s; s = s->next)
        cap++;
    olds = calloc((size_t)cap, sizeof(*olds));
    if (olds == NULL)
        return;
    /* Plugins about to get their first version say so while they load
     * (start-up marked them in the first table already). */
    for (int k = 0; k < set->nplugins; k++) {
        struct wplug_slot *s;
        if (!set->plugins[k].enabled)
            continue;
        s = wplug_slot_get(set->plugins[k].name, 1);
        if (s == NULL || s->cur != NULL || s->state == WPS_STARTING)
            continue;
        pthread_mutex_lock(&wpm.info_mu);
        s->state = WPS_STARTING;
        pthread_mutex_unlock(&wpm.info_mu);
        marked = 1;
    }
    if (marked)
        (void)wplug_publish(); /* logged by itself */
    for (int k = 0; k < set->nplugins; k++) {
        const struct wsettings_plugin *sp = &set->plugins[k];
        struct wplug_slot *s = wplug_slot_get(sp->name, 1);
        struct weft_plugin *old = NULL;
        char *fsig, *ssig;
        int changed, first;

        if (s == NULL)
            continue;
        if (!sp->enabled) {
            if (s->cur != NULL || s->state != WPS_DISABLED)
                wplug_disable(s, &old);
            if (old != NULL)
                olds[nold++] = old;
            continue;
        }
        s->enabled = 1;
        fsig = wplug_file_sig(sp->path);
        ssig = wplug_sect_sig(set, sp);
        changed = s->cur == NULL || fsig == NULL || ssig == NULL ||
                  s->file_sig == NULL || strcmp(fsig, s->file_sig) != 0 ||
                  strcmp(ssig, s->sect_sig) != 0;
        free(fsig);
        free(ssig);
        if (!changed)
            continue;
        first = s->cur == NULL;
        if (wplug_replace(s, set, sp, &old, NULL) != 0)
            continue;
        if (old != NULL)
            olds[nold++] = old;
        /* A first version serves at once, not after the slowest of the
         * plugins after it. */
        if (first)
            (void)wplug_publish(); /* logged by itself */
    }
    /* Sections that disappeared from the file. */
    for (struct wplug_slot *s = wpm.slots; s; s = s->next) {
        struct weft_plugin *old = NULL;
        if (wsettings_plugin(set, s->name) == NULL &&
            (s->cur != NULL || s->state != WPS_DISABLED)) {
            wplug_disable(s, &old);
            if (old != NULL)
                olds[nold++] = old;
        }
    }
    /* Its problems are logged; SIGHUP has no one else to tell. */
    (void)wplug_publish();
    for (int k = 0; k < nold; k++)
        wplug_inst_release(olds[k]);
    free(olds);
}

void wplug_reload_changed(const struct wsettings *set)
{
    for (int k = 0; k < set->nplugins; k++) {
        const struct wsettings_plugin *sp = &set->plugins[k];
        struct wplug_slot *s = wplug_slot_get(sp->name, 0);
        struct weft_plugin *old = NULL;
        char *fsig;
        int changed;

        if (s == NULL || !sp->enabled || s->file_sig == NULL)
            continue;
        fsig = wplug_file_sig(sp->path);
        changed = fsig != NULL && strcmp(fsig, "missing") != 0 &&
                  strcmp(fsig, s->file_sig) != 0;
        free(fsig);
        if (!changed)
            continue;
        wlog(WLOG_INFO, "host", "plugin %s: file changed, reloading",
             sp->name);
        if (wplug_replace(s, set, sp, &old, NULL) == 0) {
            (void)wplug_publish(); /* logged, as for SIGHUP */
            if (old != NULL)
                wplug_inst_release(old);
        }
    }
}

int wplug_reload(const char *config_path, const char *name, json_t **body)
{
    struct wdiag d = {0};
    struct wsettings *set;
    const struct wsettings_plugin *sp;
    struct wplug_slot *s = wplug_slot_get(name, 0);
    struct weft_plugin *old = NULL;
    char *why = NULL;
    int status;

    if (s == NULL) {
        *body = json_pack("{s:{s:s,s:s}}", "error", "code", "not_found",
                          "message", "no such plugin");
        return 404;
    }
    set = wsettings_load(config_path, &d, &d);
    sp = set != NULL ? wsettings_plugin(set, name) : NULL;
    if (sp == NULL || !sp->enabled) {
        *body = json_pack("{s:{s:s,s:s}}", "error", "code", "conflict",
                          "message",
                          sp == NULL ? "the plugin's section is gone from the "
                                       "config file (send SIGHUP to apply)"
                                     : "the plugin is disabled in the config "
                                       "file (send SIGHUP to apply)");
        wdiag_free(&d);
        wsettings_free(set);
        return 409;
    }
    wdiag_free(&d); /* problems elsewhere in the file are SIGHUP's business */
    if (wplug_replace(s, set, sp, &old, &why) != 0) {
        *body = json_pack("{s:{s:s,s:s}}", "error", "code", "reload_failed",
                          "message", why ? why : "reload failed");
        status = 422;
    } else {
        int behind = wplug_publish();
        if (old != NULL)
            wplug_inst_release(old);
        if (behind == 0) {
            *body = json_pack("{s:s,s:s,s:s}", "plugin", name, "version",
                              s->cur->desc->version, "state", "running");
            status = 200;
        } else {
            /* Loaded, but not what every loop serves: a 200 would be a
             * promise the next request might break. */
            char msg[160];
            if (behind > 0)
                snprintf(msg, sizeof(msg),
                         "version %s is loaded but %d of %d event loops "
                         "still serve the previous one",
                         s->cur->desc->version, behind, whost_g->nloops);
            else
                snprintf(msg, sizeof(msg), "version %s is loaded but no "
                                           "routing table could be built",
                         s->cur->desc->version);
            *body = json_pack("{s:{s:s,s:s}}", "error", "code",
                              "reload_incomplete", "message", msg);
            status = 503;
        }
    }
    free(why);
    wsettings_free(set);
    return status;
}

void wplug_check_config(const struct wsettings *set, struct wdiag *d)
{
    for (int k = 0; k < set->nplugins; k++) {
        const struct wsettings_plugin *sp = &set->plugins[k];
        const weft_plugin_desc *desc = NULL;
        struct wdiag pd = {0};
        struct stat st;
        char why[512];
        weft_entry_fn entry;
        void *dl;

        if (!sp->enabled || sp->path == NULL || stat(sp->path, &st) != 0)
            continue; /* already reported by the settings check */
        /* No private copy needed: nothing is initialised or kept. */
        dl = dlopen(sp->path, RTLD_NOW | RTLD_LOCAL);
        if (dl == NULL) {
            wdiag_add(d, sp->origin, sp->line, "[%s]: cannot load %s: %s",
                      sp->section, sp->path, dlerror());
            continue;
        }
        *(void **)&entry = dlsym(dl, WEFT_ENTRY_SYMBOL);
        if (entry == NULL) {
            wdiag_add(d, sp->origin, sp->line,
                      "[%s]: %s has no symbol %s (did the plugin use "
                      "WEFT_PLUGIN()?)",
                      sp->section, sp->path, WEFT_ENTRY_SYMBOL);
        } else if (desc = entry(),
                   wplug_check_desc(desc, sp->name, why, sizeof(why)) != 0) {
            wdiag_add(d, sp->origin, sp->line, "[%s]: %s", sp->section, why);
        } else {
            wplug_resolve_cfg(desc, set, sp, NULL, &pd);
            for (int m = 0; m < pd.n; m++)
                wdiag_add(d, NULL, 0, "%s", pd.msgs[m]);
            wdiag_free(&pd);
        }
        dlclose(dl);
    }
}

void wplug_fini(void)
{
    struct wplug_slot *s, *n;

    /* The loops are gone: drop every version, run the unloads queued on
     * the control loop, then free the slots. */
    for (s = wpm.slots; s != NULL; s = s->next) {
        struct weft_plugin *old = s->cur;
        s->cur = NULL;
        s->enabled = 0;
        if (old != NULL)
            wplug_inst_release(old);
    }
    wreg_rebuild(); /* an empty registry: its references go too */
    wloop_run_tasks(&whost_g->ctl);
    for (s = wpm.slots; s != NULL; s = n) {
        n = s->next;
        wplug_blocks_free(s);
        pthread_mutex_destroy(&s->state_mu);
        pthread_mutex_destroy(&s->user_mu);
        free(s->name);
        free(s->file_sig);
        free(s->sect_sig);
        free(s->version);
        free(s->path);
        free(s->last_error);
        free(s->assets);
        free(s);
    }
    wpm.slots = NULL;
    pthread_mutex_lock(&wpm.pub_mu);
    free(wpm.loop_rt);
    free(wpm.loop_gen);
    wpm.loop_rt = NULL;
    wpm.loop_gen = NULL;
    wpm.nloops = 0;
    pthread_mutex_unlock(&wpm.pub_mu);
    for (int k = 0; k < wpm.nhost; k++)
        wroute_free(wpm.host_routes[k]);
    free(wpm.host_routes);
    wpm.host_routes = NULL;
    wpm.nhost = 0;
}

/* ---- what /api/plugins and /metrics show ------------------------------ */

static const char *wplug_state_name(int st)
{
    return st == WPS_RUNNING    ? "running"
           : st == WPS_FAILED   ? "failed"
           : st == WPS_STARTING ? "starting"
                                : "disabled";
}

/* Per loop: the generation of its table and the version of `s` in it
 * (null when that table has none). info_mu is held; pub_mu nests in it. */
static json_t *wplug_loops_info(const struct wplug_slot *s)
{
    json_t *arr = json_array();

    if (arr == NULL)
        return json_null();
    pthread_mutex_lock(&wpm.pub_mu);
    for (int k = 0; k < wpm.nloops; k++) {
        const struct wrtable *t = wpm.loop_rt[k];
        const char *v = NULL;
        for (int j = 0; t != NULL && j < t->ninsts; j++)
            if (t->insts[j]->slot == s)
                v = t->insts[j]->desc->version;
        json_array_append_new(
            arr, json_pack("{s:i, s:I, s:o}", "loop", k, "generation",
                           (json_int_t)wpm.loop_gen[k], "version",
                           v != NULL ? json_string(v) : json_null()));
    }
    pthread_mutex_unlock(&wpm.pub_mu);
    return arr;
}

json_t *wplug_info(void)
{
    json_t *arr = json_array();

    if (arr == NULL)
        return NULL;
    pthread_mutex_lock(&wpm.info_mu);
    for (struct wplug_slot *s = wpm.slots; s; s = s->next) {
        json_t *o = json_pack(
            "{s:s, s:o, s:o, s:s, s:b, s:o, s:o, s:I, s:I, s:I}", "name",
            s->name, "version", s->version ? json_string(s->version) : json_null(),
            "abi", s->abi[0] ? json_string(s->abi) : json_null(), "state", wplug_state_name(s->state), "enabled",
            s->state != WPS_DISABLED, "path",
            s->path ? json_string(s->path) : json_null(), "last_error",
            s->last_error ? json_string(s->last_error) : json_null(), "loads",
            (json_int_t)s->loads, "reloads", (json_int_t)s->reloads,
            "failures", (json_int_t)s->failures);
        if (o != NULL)
            json_object_set_new(o, "loops", wplug_loops_info(s));
        if (o != NULL && s->state == WPS_RUNNING && s->widget) {
            char url[160];
            snprintf(url, sizeof(url), "/p/%s/widget.js", s->name);
            json_object_set_new(o, "widget", json_string(url));
        }
        if (o != NULL)
            json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&wpm.info_mu);
    return arr;
}

char *wplug_assets(const char *name)
{
    char *dir = NULL;

    pthread_mutex_lock(&wpm.info_mu);
    for (struct wplug_slot *s = wpm.slots; s; s = s->next)
        if (strcmp(s->name, name) == 0 && s->state == WPS_RUNNING &&
            s->assets != NULL) {
            dir = strdup(s->assets);
            break;
        }
    pthread_mutex_unlock(&wpm.info_mu);
    return dir;
}

void wplug_metrics(struct evbuffer *out)
{
    static const char *const names[] = {"loads", "reloads", "failures"};
    static const char *const help[] = {
        "Plugin versions loaded (first loads and reloads).",
        "Plugin versions that replaced a running one.",
        "Plugin loads or reloads that were refused."};
    char name[80], ver[160];

    pthread_mutex_lock(&wpm.info_mu);
    for (int m = 0; m < 3; m++) {
        evbuffer_add_printf(out,
                            "# HELP weft_plugin_%s_total %s\n# TYPE "
                            "weft_plugin_%s_total counter\n",
                            names[m], help[m], names[m]);
        for (struct wplug_slot *s = wpm.slots; s; s = s->next) {
            unsigned long long v =
                m == 0 ? s->loads : m == 1 ? s->reloads : s->failures;
            wmet_label(name, sizeof(name), s->name);
            evbuffer_add_printf(out, "weft_plugin_%s_total{plugin=\"%s\"} %llu\n",
                                names[m], name, v);
        }
    }
    evbuffer_add_printf(out, "# HELP weft_routing_generation Generation of "
                             "the routing table each loop serves.\n# TYPE "
                             "weft_routing_generation gauge\n");
    pthread_mutex_lock(&wpm.pub_mu);
    for (int k = 0; k < wpm.nloops; k++)
        evbuffer_add_printf(out, "weft_routing_generation{loop=\"%d\"} %llu\n",
                            k, wpm.loop_gen[k]);
    pthread_mutex_unlock(&wpm.pub_mu);
    evbuffer_add_printf(out, "# HELP weft_plugin_up 1 when a version of the "
                             "plugin serves.\n# TYPE weft_plugin_up gauge\n");
    for (struct wplug_slot *s = wpm.slots; s; s = s->next) {
        wmet_label(name, sizeof(name), s->name);
        wmet_label(ver, sizeof(ver), s->version ? s->version : "");
        evbuffer_add_printf(out, "weft_plugin_up{plugin=\"%s\",version=\"%s\"} %d\n",
                            name, ver, s->state == WPS_RUNNING);
    }
    pthread_mutex_unlock(&wpm.info_mu);
}

/* ---- plugin-facing ---------------------------------------------------- */

int wplug_route(struct weft_plugin *i, const char *method, const char *pattern,
                unsigned flags, weft_handler_fn fn)
{
    char prefix[64];
    size_t pl;
    const char *why = NULL;
    struct wroute *r, **a;

    if (!i->in_init) {
        wlog(WLOG_ERROR, i->comp, "weft_route() is only allowed during init");
        return WEFT_EINVAL;
    }
    pl = (size_t)snprintf(prefix, sizeof(prefix), "/api/%s", i->slot->name);
    if (pattern == NULL || strncmp(pattern, prefix, pl) != 0 ||
        (pattern[pl] != '\0' && pattern[pl] != '/')) {
        weft_plugin_fail(i, "route %s is outside %s/", pattern ? pattern : "(null)",
                         prefix);
        return WEFT_EINVAL;
    }
    if (flags & ~(WEFT_ROUTE_ADMIN | WEFT_ROUTE_NO_BODY | WEFT_ROUTE_USER)) {
        weft_plugin_fail(i, "route %s %s: unknown flags 0x%x", method, pattern,
                         flags);
        return WEFT_EINVAL;
    }
    r = wroute_new(method, pattern, flags, fn, i, &why);
    if (r == NULL) {
        weft_plugin_fail(i, "route %s %s: %s", method ? method : "(null)",
                         pattern, why);
        return WEFT_EINVAL;
    }
    for (int k = 0; k < i->nroutes; k++)
        if (strcmp(i->routes[k]->method, r->method) == 0 &&
            strcmp(i->routes[k]->pattern, r->pattern) == 0) {
            weft_plugin_fail(i, "route %s %s registered twice", method,
                             pattern);
            wroute_free(r);
            return WEFT_EINVAL;
        }
    if (i->nroutes == i->caproutes) {
        int cap = i->caproutes ? i->caproutes * 2 : 8;
        a = realloc(i->routes, (size_t)cap * sizeof(*a));
        if (a == NULL) {
            wroute_free(r);
            return WEFT_ERR;
        }
        i->routes = a;
        i->caproutes = cap;
    }
    i->routes[i->nroutes++] = r;
    return WEFT_OK;
}

void *wplug_state(struct weft_plugin *i, size_t size, uint32_t layout)
{
    struct wplug_slot *s = i->slot;
    struct wplug_block *b;

    if (size == 0 || size > (64u << 20))
        return NULL;
    pthread_mutex_lock(&s->state_mu);
    for (b = s->blocks; b != NULL; b = b->next)
        if (b->size == size && b->layout == layout)
            break;
    if (b == NULL) {
        /* A new shape gets its own block; an older version that still
         * drains keeps using the old one, which is freed with the plugin. */
        b = calloc(1, sizeof(*b) + size);
        if (b != NULL) {
            b->size = size;
            b->layout = layout;
            b->next = s->blocks;
            s->blocks = b;
        }
    }
    pthread_mutex_unlock(&s->state_mu);
    return b != NULL ? (void *)b->data : NULL;
}

const struct wplug_cfgval *wplug_cfg(struct weft_plugin *i, const char *key)
{
    for (int k = 0; k < i->ncfg; k++)
        if (strcmp(i->cfg[k].key, key) == 0)
            return &i->cfg[k];
    return NULL;
}
