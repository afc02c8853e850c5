/* metrics.c - request counters, latency histogram and connection gauges. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "metrics.h"

#define WMET_SLOTS 1024 /* distinct (plugin, route, method, status) per loop */

static const double wmet_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,  0.1,    0.25,  0.5,
                                     1,      2.5,   5,      10};
#define WMET_NB (sizeof(wmet_bounds) / sizeof(wmet_bounds[0]))

struct wmet_entry {
    char *key; /* "plugin\troute\tmethod\tstatus"; NULL when free */
    atomic_ullong count;
};

struct wmet_loop {
    pthread_mutex_t mu; /* insertion (owner) vs. iteration (scraper) */
    struct wmet_entry slots[WMET_SLOTS];
    int used;
    atomic_ullong overflow; /* requests whose key found no slot */
    atomic_ullong hist[WMET_NB + 1];
    atomic_ullong sum_us, count;
    atomic_llong conns_open;
    atomic_ullong conns_accepted;
};

struct wmet_loop *wmet_loop_new(void)
{
    struct wmet_loop *m = calloc(1, sizeof(*m));

    if (m != NULL)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void wmet_loop_free(struct wmet_loop *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < WMET_SLOTS; i++)
        free(m->slots[i].key);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void wmet_conn_open(struct wmet_loop *m)
{
    atomic_fetch_add_explicit(&m->conns_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->conns_accepted, 1, memory_order_relaxed);
}

void wmet_conn_close(struct wmet_loop *m)
{
    atomic_fetch_sub_explicit(&m->conns_open, 1, memory_order_relaxed);
}

static uint32_t wmet_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Unmatched requests keep their method only when it is a common one, so a
 * client cannot grow the label set with made-up methods. */
static const char *wmet_method(const char *route, const char *method)
{
    static const char *const known[] = {"GET",    "HEAD",  "POST",   "PUT",
                                        "DELETE", "PATCH", "OPTIONS"};

    if (route[0] != '\0')
        return method;
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        if (strcmp(method, known[i]) == 0)
            return method;
    return "other";
}

void wmet_request(struct wmet_loop *m, const char *plugin, const char *route,
                  const char *method, int status, double seconds)
{
    char key[512];
    uint32_t h;
    size_t i;
    uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;

    for (i = 0; i < WMET_NB && seconds > wmet_bounds[i]; i++)
        ;
    atomic_fetch_add_explicit(&m->hist[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);

    snprintf(key, sizeof(key), "%s\t%s\t%s\t%d", plugin, route,
             wmet_method(route, method), status);
    h = wmet_hash(key);
    for (int probe = 0; probe < WMET_SLOTS; probe++) {
        struct wmet_entry *e = &m->slots[(h + (uint32_t)probe) % WMET_SLOTS];
        if (e->key == NULL) {
            char *k = strdup(key);
            if (k == NULL)
                break;
            pthread_mutex_lock(&m->mu);
            e->key = k;
            m->used++;
            pthread_mutex_unlock(&m->mu);
            atomic_fetch_add_explicit(&e->count, 1, memory_order_relaxed);
            return;
        }
        if (strcmp(e->key, key) == 0) {
            atomic_fetch_add_explicit(&e->count, 1, memory_order_relaxed);
            return;
        }
    }
    atomic_fetch_add_explicit(&m->overflow, 1, memory_order_relaxed);
}

void wmet_label(char *buf, size_t size, const char *v)
{
    size_t n = 0;

    for (; *v && n + 3 < size; v++) {
        if (*v == '\\' || *v == '"') {
            buf[n++] = '\\';
            buf[n++] = *v;
        } else if (*v == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *v;
        }
    }
    buf[n] = '\0';
}

struct wmet_sum {
    const char *key;
    unsigned long long count;
};

static int wmet_sum_cmp(const void *a, const void *b)
{
    return strcmp(((const struct wmet_sum *)a)->key,
                  ((const struct wmet_sum *)b)->key);
}

static void wmet_render_requests(struct evbuffer *out, struct wloop *loops,
                                 int nloops)
{
    struct wmet_sum *all;
    int n = 0;
    unsigned long long overflow = 0;

    all = calloc((size_t)nloops * WMET_SLOTS, sizeof(*all));
    if (all == NULL)
        return;
    for (int l = 0; l < nloops; l++)
        pthread_mutex_lock(&loops[l].met->mu);
    for (int l = 0; l < nloops; l++) {
        struct wmet_loop *m = loops[l].met;
        overflow += atomic_load(&m->overflow);
        for (int i = 0; i < WMET_SLOTS; i++)
            if (m->slots[i].key != NULL) {
                all[n].key = m->slots[i].key;
                all[n++].count = atomic_load(&m->slots[i].count);
            }
    }
    qsort(all, (size_t)n, sizeof(*all), wmet_sum_cmp);
    evbuffer_add_printf(out,
                        "# HELP weft_http_requests_total HTTP requests "
                        "answered, by plugin, route, method and status.\n"
                        "# TYPE weft_http_requests_total counter\n");
    for (int i = 0; i < n; i++) {
        char plugin[80], route[1100], method[40], tmp[512];
        const char *f[4];
        char *p;
        unsigned long long sum = all[i].count;

        while (i + 1 < n && strcmp(all[i].key, all[i + 1].key) == 0)
            sum += all[++i].count;
        snprintf(tmp, sizeof(tmp), "%s", all[i].key);
        f[0] = tmp;
        for (int k = 1; k < 4; k++) {
            p = strchr(f[k - 1], '\t');
            if (p == NULL) {
                f[k] = "";
                continue;
            }
            *p = '\0';
            f[k] = p + 1;
        }
        wmet_label(plugin, sizeof(plugin), f[0]);
        wmet_label(route, sizeof(route), f[1]);
        wmet_label(method, sizeof(method), f[2]);
        evbuffer_add_printf(out,
                            "weft_http_requests_total{plugin=\"%s\",route=\"%s\","
                            "method=\"%s\",status=\"%s\"} %llu\n",
                            plugin, route, method, f[3], sum);
    }
    for (int l = nloops - 1; l >= 0; l--)
        pthread_mutex_unlock(&loops[l].met->mu);
    free(all);
    evbuffer_add_printf(out,
                        "# HELP weft_http_requests_unlabelled_total Requests "
                        "counted without labels because the label table was "
                        "full.\n# TYPE weft_http_requests_unlabelled_total "
                        "counter\nweft_http_requests_unlabelled_total %llu\n",
                        overflow);
}

void wmet_render(struct evbuffer *out, struct wloop *loops, int nloops)
{
    unsigned long long hist[WMET_NB + 1] = {0}, sum_us = 0, count = 0, cum = 0;

    wmet_render_requests(out, loops, nloops);
    for (int l = 0; l < nloops; l++) {
        struct wmet_loop *m = loops[l].met;
        for (size_t i = 0; i <= WMET_NB; i++)
            hist[i] += atomic_load(&m->hist[i]);
        sum_us += atomic_load(&m->sum_us);
        count += atomic_load(&m->count);
    }
    evbuffer_add_printf(out, "# HELP weft_http_request_duration_seconds Time "
                             "from a complete request head to the answer "
                             "queued.\n# TYPE weft_http_request_duration_seconds"
                             " histogram\n");
    for (size_t i = 0; i < WMET_NB; i++) {
        cum += hist[i];
        evbuffer_add_printf(out,
                            "weft_http_request_duration_seconds_bucket{le=\"%g\"}"
                            " %llu\n",
                            wmet_bounds[i], cum);
    }
    cum += hist[WMET_NB];
    evbuffer_add_printf(out,
                        "weft_http_request_duration_seconds_bucket{le=\"+Inf\"} "
                        "%llu\nweft_http_request_duration_seconds_sum %.6f\n"
                        "weft_http_request_duration_seconds_count %llu\n",
                        cum, (double)sum_us / 1e6, count);
    evbuffer_add_printf(out, "# HELP weft_http_connections_open Open client "
                             "connections per event loop.\n# TYPE "
                             "weft_http_connections_open gauge\n");
    for (int l = 0; l < nloops; l++)
        evbuffer_add_printf(out, "weft_http_connections_open{loop=\"%d\"} %lld\n",
                            loops[l].id,
                            (long long)atomic_load(&loops[l].met->conns_open));
    evbuffer_add_printf(out, "# HELP weft_http_connections_accepted_total "
                             "Connections accepted per event loop.\n# TYPE "
                             "weft_http_connections_accepted_total counter\n");
    for (int l = 0; l < nloops; l++)
        evbuffer_add_printf(
            out, "weft_http_connections_accepted_total{loop=\"%d\"} %llu\n",
            loops[l].id, atomic_load(&loops[l].met->conns_accepted));
}
