/* request.h - one HTTP request: what the SDK's weft_req handle points to. */
#ifndef WEFT_HOST_REQUEST_H
#define WEFT_HOST_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "http_parse.h"
#include "router.h"

struct wconn;
struct wdb_op;
struct wsignup;
struct wjwt_claims;
struct wsess_state;
struct wloop;
struct weft_plugin;
struct wapi_tx;
struct wdb_tx;

struct weft_req {
    const weft_api *api; /* first: the SDK's inline wrappers read it */
    struct wconn *conn;
    struct wloop *loop;

    char *headbuf; /* the head, parsed in place */
    struct whttp_head head;
    struct whttp_header *hdrs;
    char *path;        /* decoded path                      */
    const char *query; /* raw query (after '?'), or ""      */
    char *scratch;     /* router segment buffer             */
    struct wmatch match;
    struct weft_plugin *inst; /* version serving it (a reference) */

    struct evbuffer *body;
    char *body_flat; /* body made contiguous on demand */
    size_t body_len;
    int64_t body_left; /* Content-Length bytes still to read */
    int chunk_state;   /* for chunked bodies */
    int64_t chunk_left;

    /* Ours, unique: what the platform records (events' "by", logs). The
     * client's X-Request-Id is only echoed and logged next to it, since
     * anyone can send any value there. */
    char rid[72];
    char client_rid[72]; /* the client's, when safe to echo; else "" */
    struct timespec t0;
    int status;
    uint64_t bytes_out;
    struct evbuffer *rhdrs; /* extra response headers */
    char **strs;            /* strings handed out (freed with the request) */
    int nstrs;

    unsigned replied : 1;   /* an answer was produced         */
    unsigned streaming : 1; /* a streamed answer is open       */
    unsigned stream_done : 1; /* ...and its last chunk was written */
    unsigned is_head : 1;   /* HEAD: headers only              */
    unsigned finished : 1;
    unsigned gone : 1;      /* the client went away               */
    unsigned finish_wanted : 1; /* finish once `busy` drops to 0 */
    int busy;    /* host code up the stack still uses the request */
    struct wjwt_claims *user; /* the signed-in user, or NULL       */
    struct wsess_state *acct; /* the account as fetched for it (auth) */
    unsigned admin_token : 1; /* authenticated by the [admin] token */
    unsigned via_cookie : 1;  /* credentials came from a cookie     */
    int pending; /* jobs and queries not yet completed */
    struct wdb_op *ops; /* queries in flight (cancelled if the client goes) */
    struct wsignup *signup; /* a registration waiting for a plugin's step */
    struct wapi_tx *txs; /* plugins' transaction handles (api.c) */
};

extern const weft_api wapi_table;

/* api.c: the handle a signup step gets for the host's transaction `tx`:
 * the step may run statements on it but not end it, and it stops working
 * at weft_signup_done(). NULL when out of memory. */
weft_tx *wapi_tx_lend(struct weft_req *r, struct wdb_tx *tx);
/* api.c: free the request's transaction handles (when it is freed). */
void wapi_req_release(struct weft_req *r);

/* Make a request for `conn`; the head is parsed by the caller. */
struct weft_req *wreq_new(struct wconn *conn);
void wreq_free(struct weft_req *r);

/* Route the request again, from matching on (after auth fetched the
 * account it needed: wauth_request returned 1). */
void wreq_reroute(struct weft_req *r);

/* Send a complete answer (copied). `ctype` may be NULL (no body type). */
int wreq_reply(struct weft_req *r, int status, const char *ctype,
               const void *body, size_t len);
int wreq_reply_error(struct weft_req *r, int status, const char *code,
                     const char *message);
int wreq_reply_json(struct weft_req *r, int status, json_t *j);

int wreq_stream_start(struct weft_req *r, int status, const char *ctype);
int wreq_stream_write(struct weft_req *r, const void *data, size_t len);
int wreq_stream_end(struct weft_req *r);

/* Answer with `status` and `headers` (each ending in CRLF), then hand
 * the connection to a session (SSE, WebSocket): see wconn_set_takeover. */
struct wconn_up;
int wreq_takeover(struct weft_req *r, int status, const char *headers,
                  const struct wconn_up *up, void *ctx);

/* Route and run the handler (the head and body are complete). */
void wreq_dispatch(struct weft_req *r);

/* Run work on `target` (the control loop) or the pool when NULL, then
 * done(r, arg) on r's loop. */
int wreq_defer_on(struct weft_req *r, struct wloop *target,
                  weft_work_fn work, weft_done_fn done, void *arg);

/* Asynchronous work for a request (a job, a query): the request is not
 * finished while any is outstanding. wreq_complete() runs `call` on the
 * request's loop, then answers 500 if the last one left no answer. */
void wreq_pending_add(struct weft_req *r);
void wreq_complete(struct weft_req *r, void (*call)(struct weft_req *, void *),
                   void *ctx);

/* The client's address without a port: the socket's peer, or behind a
 * trusted proxy ([server] trusted_proxies) the address the proxy forwarded.
 * The key for per-client limits; req_remote stays the socket's. */
const char *wreq_client_ip(const struct weft_req *r);

/* Count a realtime stream (SSE, WebSocket) for the request's client
 * ([server] max_streams_per_address). Returns 0, or -1 after answering
 * 429 too_many_streams. */
int wreq_stream_admit(struct weft_req *r);

/* Keep a malloc'd string until the request ends; returns it. */
const char *wreq_keep(struct weft_req *r, char *s);

/* {"error":{"code":..., "message":...}} as a malloc'd string. */
char *werr_json(const char *code, const char *message, size_t *len);

#endif
