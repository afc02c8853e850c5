/* peer.h - per-address accounting shared by every event loop: open
 * connections, open realtime streams, new connections per second (a token
 * bucket) and the share of the connection limit kept for light addresses.
 * IPv6 addresses count per /64, the block one subscriber gets. */
#ifndef WEFT_HOST_PEER_H
#define WEFT_HOST_PEER_H

#include <stdint.h>

#include <event2/buffer.h>

#include "proxy.h"

/* An address holding fewer connections than this may use the reserve. */
#define WPEER_LIGHT 8

struct wpeer_conf {
    int max_conns;   /* open connections per address; 0: no limit   */
    int max_streams; /* open SSE + WebSocket sessions; 0: no limit   */
    int rate;        /* new connections per second; 0: no limit     */
    int burst;       /* ... of which this many at once               */
    int global_max;  /* [server] max_connections                     */
    int reserved;    /* connections kept for light addresses         */
    int proxy_header;          /* WPROXY_XFF or WPROXY_FORWARDED     */
    struct wproxy_list proxies; /* [server] trusted_proxies           */
};

/* Why a connection or stream was refused (metrics labels). */
enum {
    WPEER_OK = 0,
    WPEER_GLOBAL,  /* max_connections reached                     */
    WPEER_RESERVE, /* only the reserve is left, the address is heavy */
    WPEER_CONNS,   /* the address holds max_connections_per_address */
    WPEER_RATE,    /* the address opens connections too fast       */
    WPEER_STREAMS, /* the address holds max_streams_per_address    */
    WPEER_NREASONS
};

/* Before the loops start; takes over c->proxies. 0, or -1 (no memory). */
int wpeer_init(const struct wpeer_conf *c);
/* After the loops stopped. */
void wpeer_shutdown(void);

/* Is `a` one of the trusted proxies? */
int wpeer_is_proxy(const struct wproxy_addr *a);
/* The configuration (valid between init and shutdown). */
const struct wpeer_conf *wpeer_conf(void);

/* Count a new connection of `a`; `in_use` is the number of connections
 * open host-wide, this one included; `rate`: it is a new connection (not
 * one a proxy names `a` on), so it takes from the rate bucket. Returns
 * WPEER_OK or the reason for refusing it (then nothing was counted). */
int wpeer_conn_take(const struct wproxy_addr *a, int in_use, int rate,
                    int64_t now_ms);
void wpeer_conn_drop(const struct wproxy_addr *a, int64_t now_ms);

/* Count an open realtime stream of `a`: WPEER_OK or WPEER_STREAMS. */
int wpeer_stream_take(const struct wproxy_addr *a, int64_t now_ms);
void wpeer_stream_drop(const struct wproxy_addr *a, int64_t now_ms);

/* Count a refusal and log it, at most once every few seconds. */
void wpeer_refused(int reason, const struct wproxy_addr *a, int64_t now_ms);

/* The refusal counters in Prometheus text format. */
void wpeer_render(struct evbuffer *out);

#endif
