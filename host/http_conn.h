/* http_conn.h - one client connection on one loop: reading heads and bodies,
 * pipelining in order, limits, timeouts, lingering close. */
#ifndef WEFT_HOST_HTTP_CONN_H
#define WEFT_HOST_HTTP_CONN_H

#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "proxy.h"

struct wloop;
struct weft_req;

enum {
    WC_HEAD = 0, /* waiting for a request head                 */
    WC_BODY,     /* reading a Content-Length body              */
    WC_CHUNKED,  /* reading a chunked body                     */
    WC_BUSY,     /* the handler has the request                */
    WC_CLOSING,  /* flushing the last answer, then close       */
    WC_LINGER,   /* answered and half-closed: discard input     */
    WC_UPGRADED  /* taken over by a session (SSE, WebSocket)    */
};

/* What a session that took a connection over is told. */
struct wconn_up {
    void (*read)(void *ctx);   /* input is buffered: wconn_input()      */
    void (*closed)(void *ctx); /* the connection is gone: forget it     */
    void (*drain)(void *ctx);  /* weftd is stopping: say goodbye, end   */
};

struct wconn {
    struct wloop *loop;
    struct bufferevent *bev; /* NULL once the socket is gone */
    int state;
    struct weft_req *req;
    size_t scan; /* bytes of input already searched for CRLF CRLF */
    char remote[64];
    struct wproxy_addr peer;   /* the socket's address                  */
    struct wproxy_addr client; /* whom it counts for (see peer.h)       */
    char client_ip[48];        /* `client` as text, without a port      */
    unsigned counted : 1;  /* `client` holds one of its connections     */
    unsigned streamed : 1; /* `client` holds one of its streams         */
    unsigned proxied : 1;  /* from a trusted proxy: the client is in
                              each request's forwarding header          */
    unsigned has_peer : 1; /* `peer` is known (an IP socket)            */
    unsigned keepalive : 1;
    unsigned eof : 1;
    unsigned in_process : 1;
    unsigned wait_write : 1;
    unsigned linger_after_write : 1;
    unsigned write_armed : 1; /* the socket was full: libevent writes */
    unsigned head_timer : 1; /* the header timeout runs for this head */
    unsigned ready : 1;  /* WC_BUSY: complete, not yet dispatched */
    unsigned zombie : 1; /* freed when wconn_process() returns */
    unsigned up_kick : 1; /* the timer means: call up->read */
    unsigned up_end : 1;  /* ended while its request was still open */
    struct event *timer;
    const struct wconn_up *up; /* set once taken over */
    void *up_ctx;
    struct wconn *prev, *next;
};

/* evconnlistener callback argument is the loop. */
void wconn_accept(struct evconnlistener *lst, evutil_socket_t fd,
                  struct sockaddr *sa, int salen, void *arg);

/* Count an open realtime stream for the connection's client (released
 * when the connection closes). 0, or -1 when the client holds
 * max_streams_per_address already (answer 429). */
int wconn_stream_open(struct wconn *c);

/* The connection's output, or NULL when the client is gone. */
struct evbuffer *wconn_output(struct wconn *c);

/* The connection's input (taken-over connections). */
struct evbuffer *wconn_input(struct wconn *c);

/* After the current request's answer head, hand the connection to `up`
 * (called by wreq_takeover before the request finishes). */
void wconn_set_takeover(struct wconn *c, const struct wconn_up *up,
                        void *ctx);

/* End a taken-over connection once its output is sent, or after flush_ms
 * at most. Never frees at once: up->closed comes from the loop later. */
void wconn_end(struct wconn *c, int flush_ms);

/* Send queued output now (see http_conn.c). */
void wconn_flush(struct wconn *c);

/* The request's answer is fully queued: log, release, go on or close. */
void wconn_request_done(struct wconn *c, int keepalive);

/* Pick up buffered input again (after an asynchronous answer). */
void wconn_resume(struct wconn *c);

/* Graceful shutdown: close idle connections, others close after their
 * current answer. */
void wconn_drain(struct wloop *l);
/* Close every connection now (after the shutdown timeout). */
void wconn_close_all(struct wloop *l);

#endif
