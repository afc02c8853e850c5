/* metrics.h - Prometheus counters kept per loop (no shared lock on the hot
 * path), summed when /metrics is scraped. */
#ifndef WEFT_HOST_METRICS_H
#define WEFT_HOST_METRICS_H

#include <event2/buffer.h>

struct wmet_loop;
struct wloop;

struct wmet_loop *wmet_loop_new(void);
void wmet_loop_free(struct wmet_loop *m);

void wmet_conn_open(struct wmet_loop *m);
void wmet_conn_close(struct wmet_loop *m);
/* One finished request. `plugin` and `route` are "" when nothing matched. */
void wmet_request(struct wmet_loop *m, const char *plugin, const char *route,
                  const char *method, int status, double seconds);

/* Append the HTTP metrics of all loops in Prometheus text format. */
void wmet_render(struct evbuffer *out, struct wloop *loops, int nloops);

/* Escape a label value into buf (Prometheus rules). */
void wmet_label(char *buf, size_t size, const char *v);

#endif
