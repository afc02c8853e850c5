/* http_conn.c - HTTP/1.x connection handling on a bufferevent.
 *
 * A head is parsed only once its terminating blank line is buffered, so no
 * parser state ever spans two reads. Requests on a connection are served
 * strictly one at a time: after an answer, whatever the client already sent
 * (pipelining) is processed at once, without waiting for more bytes. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "db.h"
#include "host.h"
#include "http_conn.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "proxy.h"
#include "request.h"

/* Stop taking pipelined requests while this much output is unsent. */
#define WCONN_OUT_HIGH (256 * 1024)
/* How long to keep discarding input after an answer that ends the
 * connection early (e.g. 413), so the client sees the answer, not a reset. */
#define WCONN_LINGER_MS 2000
/* Chunk-size lines longer than this are malformed. */
#define WCONN_CHUNK_LINE 128

enum { CH_SIZE = 0, CH_DATA, CH_DATA_CRLF, CH_TRAILER };

static void wconn_process(struct wconn *c);
static void wconn_free(struct wconn *c);

static void wconn_arm(struct wconn *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(c->timer, &tv);
}

static void wconn_disarm(struct wconn *c)
{
    evtimer_del(c->timer);
}

struct evbuffer *wconn_input(struct wconn *c)
{
    return c->bev != NULL ? bufferevent_get_input(c->bev) : NULL;
}

void wconn_set_takeover(struct wconn *c, const struct wconn_up *up,
                        void *ctx)
{
    c->up = up;
    c->up_ctx = ctx;
}

void wconn_end(struct wconn *c, int flush_ms)
{
    if (c->state == WC_CLOSING)
        return;
    if (c->state == WC_BUSY) {
        /* Still inside the handler that takes it over: end right after. */
        c->up_end = 1;
        return;
    }
    c->state = WC_CLOSING;
    /* Half-close and drain after the last byte, so a client still sending
     * gets our close frame rather than a reset. */
    c->linger_after_write = 1;
    c->up_kick = 0;
    wconn_flush(c);
    if (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        flush_ms = 0; /* nothing to send: close on the next turn */
    wconn_arm(c, flush_ms);
}

struct evbuffer *wconn_output(struct wconn *c)
{
    return c->bev != NULL ? bufferevent_get_output(c->bev) : NULL;
}

/*
 * Send what is queued now, with one writev, instead of arming the write
 * event and waiting a turn of the loop: that saves two epoll_ctl calls per
 * answer. Whatever the socket does not take (or an error) arms the event,
 * and the bufferevent finishes the job (or reports the error).
 */
void wconn_flush(struct wconn *c)
{
    struct evbuffer *out;

    if (c->bev == NULL || c->write_armed)
        return;
    out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0)
        return;
    /* A bufferevent keeps the start of its output frozen against readers
     * other than itself; thaw it for our own write. */
    evbuffer_unfreeze(out, 1);
    (void)evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0) {
        c->write_armed = 1;
        bufferevent_enable(c->bev, EV_WRITE);
    }
}

/* Drop the socket; the struct lives on while a request still refers to it. */
static void wconn_close(struct wconn *c)
{
    if (c->req != NULL && c->state == WC_BUSY) {
        if (c->bev != NULL) {
            bufferevent_free(c->bev);
            c->bev = NULL;
        }
        wconn_disarm(c);
        /* Nobody will read the answer: stop its queries. */
        c->req->gone = 1;
        wdb_req_gone(c->req);
        return; /* freed in wconn_request_done() */
    }
    wconn_free(c);
}

static void wconn_free(struct wconn *c)
{
    struct wloop *l = c->loop;

    if (c->in_process) {
        /* wconn_process() is on the stack: it frees on its way out. */
        c->zombie = 1;
        if (c->bev != NULL) {
            bufferevent_free(c->bev);
            c->bev = NULL;
        }
        return;
    }
    if (c->req != NULL) {
        struct weft_req *r = c->req;
        c->req = NULL;
        wreq_free(r);
    }
    if (c->up != NULL) {
        const struct wconn_up *up = c->up;
        c->up = NULL;
        up->closed(c->up_ctx);
    }
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->counted || c->streamed) {
        int64_t now = wloop_now_ms();
        if (c->streamed)
            wpeer_stream_drop(&c->client, now);
        if (c->counted)
            wpeer_conn_drop(&c->client, now);
    }
    l->nconns--;
    wmet_conn_close(l->met);
    atomic_fetch_sub(&whost_g->nconns, 1);
    free(c);
    if (l->draining && l->nconns == 0)
        event_base_loopexit(l->base, NULL);
}

/* Answer an error found before any handler ran, then end the connection
 * (the input can no longer be trusted to be in step). */
static void wconn_fail(struct wconn *c, int status, const char *code,
                       const char *why)
{
    struct weft_req *r = c->req;

    if (r == NULL) {
        r = wreq_new(c);
        if (r == NULL) {
            wconn_free(c);
            return;
        }
        c->req = r;
    }
    c->keepalive = 0;
    /* With unread input (a body we refused), discard it for a while after
     * answering, so the client reads the answer instead of a reset. */
    c->linger_after_write = 1;
    c->state = WC_BUSY;
    wreq_reply_error(r, status, code, why);
}

/* Look for the end of the head. Returns its length, 0 if incomplete. */
static size_t wconn_find_head(struct wconn *c, struct evbuffer *in)
{
    struct evbuffer_ptr pos, start;
    size_t len = evbuffer_get_length(in);

    if (len < 4)
        return 0;
    /* Resume where the last search ended (minus a possible partial match). */
    evbuffer_ptr_set(in, &start, c->scan > 3 ? c->scan - 3 : 0,
                     EVBUFFER_PTR_SET);
    pos = evbuffer_search(in, "\r\n\r\n", 4, &start);
    if (pos.pos < 0) {
        c->scan = len;
        return 0;
    }
    return (size_t)pos.pos + 4;
}

/* The head is incomplete: decide whether it can still become valid. */
static int wconn_head_too_big(struct wconn *c, struct evbuffer *in)
{
    const struct whost_limits *lim = &whost_g->lim;
    size_t len = evbuffer_get_length(in);
    struct evbuffer_ptr eol;

    if (len <= lim->max_header)
        return 0;
    eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos < 0 || (size_t)eol.pos > lim->http.max_uri + 32)
        wconn_fail(c, 414, "uri_too_long", "request line too long");
    else
        wconn_fail(c, 431, "header_too_large", "request head too large");
    return 1;
}

int wconn_stream_open(struct wconn *c)
{
    int64_t now = wloop_now_ms();
    int rc;

    /* A trusted proxy's own requests are not limited (see [server]
     * trusted_proxies): only the clients it names are. */
    if (c->streamed || !c->has_peer || wpeer_is_proxy(&c->client))
        return 0;
    rc = wpeer_stream_take(&c->client, now);
    if (rc != WPEER_OK) {
        wpeer_refused(rc, &c->client, now);
        return -1;
    }
    c->streamed = 1;
    return 0;
}

/* A request from a trusted proxy: count the connection for the client the
 * proxy names, until the request is done (or, taken over, the stream
 * ends). Returns 0, or -1 after answering 429 (the client is over its
 * limit). */
static int wconn_attribute(struct wconn *c)
{
    struct wproxy_addr who;
    int64_t now;
    int rc;

    wproxy_client(&wpeer_conf()->proxies, wpeer_conf()->proxy_header,
                  &c->peer, &c->req->head, &who);
    if (c->counted && memcmp(&who, &c->client, sizeof(who)) == 0)
        return 0;
    now = wloop_now_ms();
    if (c->counted) {
        wpeer_conn_drop(&c->client, now);
        c->counted = 0;
    }
    c->client = who;
    wproxy_format(&who, c->client_ip, sizeof(c->client_ip));
    if (wpeer_is_proxy(&who))
        return 0; /* no header: the proxy itself, which is not limited */
    /* No rate: a proxy's connections are not its clients' (one per request
     * without upstream keep-alive, shared with it), so connections per
     * second of a client can only be limited at the proxy. */
    rc = wpeer_conn_take(&who, atomic_load(&whost_g->nconns), 0, now);
    if (rc == WPEER_OK) {
        c->counted = 1;
        return 0;
    }
    wpeer_refused(rc, &who, now);
    evbuffer_add_printf(c->req->rhdrs, "Retry-After: 1\r\n");
    wconn_fail(c, 429, "too_many_connections",
               "too many connections from your address");
    return -1;
}

static void wconn_start_request(struct wconn *c, size_t headlen)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const struct whost_limits *lim = &whost_g->lim;
    struct weft_req *r;
    const char *why = NULL;
    int rc;

    c->scan = 0;
    r = wreq_new(c);
    if (r == NULL) {
        wconn_free(c);
        return;
    }
    c->req = r;
    r->headbuf = malloc(headlen + 1);
    r->hdrs = calloc((size_t)lim->http.max_headers, sizeof(*r->hdrs));
    if (r->headbuf == NULL || r->hdrs == NULL) {
        evbuffer_drain(in, headlen);
        wconn_fail(c, 503, "unavailable", "out of memory");
        return;
    }
    evbuffer_remove(in, r->headbuf, headlen);
    r->headbuf[headlen] = '\0';
    rc = whttp_parse_head(r->headbuf, headlen, &lim->http, r->hdrs, &r->head,
                          &why);
    if (rc != 0) {
        const char *code = rc == 413   ? "payload_too_large"
                           : rc == 414 ? "uri_too_long"
                           : rc == 431 ? "header_too_large"
                           : rc == 501 ? "not_implemented"
                           : rc == 505 ? "http_version_not_supported"
                                       : "bad_request";
        /* The rest of the head is unusable, but a minor version helps
         * answer in the client's own terms. */
        wconn_fail(c, rc, code, why);
        return;
    }
    c->keepalive = r->head.keepalive;
    r->is_head = strcmp(r->head.method, "HEAD") == 0;
    if (c->proxied && wconn_attribute(c) != 0)
        return;
    if (r->head.chunked) {
        c->state = WC_CHUNKED;
        r->chunk_state = CH_SIZE;
    } else if (r->head.content_length > 0) {
        c->state = WC_BODY;
        r->body_left = r->head.content_length;
    } else {
        c->state = WC_BUSY;
        c->ready = 1;
        return;
    }
    if (r->head.expect_continue && c->bev != NULL)
    {
        evbuffer_add(bufferevent_get_output(c->bev),
                     "HTTP/1.1 100 Continue\r\n\r\n", 25);
        wconn_flush(c);
    }
    wconn_arm(c, lim->body_timeout_ms);
}

/* Move Content-Length body bytes. Returns 1 when the body is complete. */
static int wconn_read_body(struct wconn *c, struct evbuffer *in)
{
    struct weft_req *r = c->req;
    size_t avail = evbuffer_get_length(in);
    size_t take = avail < (size_t)r->body_left ? avail : (size_t)r->body_left;

    if (take > 0) {
        evbuffer_remove_buffer(in, r->body, take);
        r->body_left -= (int64_t)take;
    }
    return r->body_left == 0;
}

/* Decode chunked framing. Returns 1 complete, 0 need more, -1 failed. */
static int wconn_read_chunked(struct wconn *c, struct evbuffer *in)
{
    struct weft_req *r = c->req;
    int64_t max = whost_g->lim.http.max_body;
    char line[WCONN_CHUNK_LINE + 1];
    size_t n;

    for (;;) {
        switch (r->chunk_state) {
        case CH_SIZE:
        case CH_TRAILER: {
            struct evbuffer_ptr eol = evbuffer_search_eol(
                in, NULL, &n, EVBUFFER_EOL_CRLF_STRICT);
            if (eol.pos < 0) {
                if (evbuffer_get_length(in) > WCONN_CHUNK_LINE + 2) {
                    wconn_fail(c, 400, "bad_request", "malformed chunk");
                    return -1;
                }
                return 0;
            }
            if ((size_t)eol.pos > WCONN_CHUNK_LINE) {
                wconn_fail(c, 400, "bad_request", "chunk line too long");
                return -1;
            }
            evbuffer_remove(in, line, (size_t)eol.pos);
            line[eol.pos] = '\0';
            evbuffer_drain(in, 2);
            if (r->chunk_state == CH_TRAILER) {
                if (eol.pos == 0)
                    return 1; /* trailers are ignored */
                /* Only field lines, and no more of them than a head may
                 * hold: a request line here would be a request to a proxy
                 * that ends the body at "0". chunk_left is spent, so it
                 * counts the trailer bytes. */
                r->chunk_left += (int64_t)eol.pos + 2;
                if (whttp_trailer_line(line, (size_t)eol.pos) != 0 ||
                    r->chunk_left > (int64_t)whost_g->lim.max_header) {
                    wconn_fail(c, 400, "bad_request", "malformed trailer");
                    return -1;
                }
                continue;
            }
            int64_t sz;
            if (whttp_chunk_size(line, (size_t)eol.pos, &sz) != 0) {
                wconn_fail(c, 400, "bad_request", "malformed chunk size");
                return -1;
            }
            if (sz == 0) {
                r->chunk_state = CH_TRAILER;
                continue;
            }
            if ((int64_t)evbuffer_get_length(r->body) + sz > max) {
                wconn_fail(c, 413, "payload_too_large",
                           "request body larger than the server accepts");
                return -1;
            }
            r->chunk_left = sz;
            r->chunk_state = CH_DATA;
            continue;
        }
        case CH_DATA:
            n = evbuffer_get_length(in);
            if (n == 0)
                return 0;
            if (n > (size_t)r->chunk_left)
                n = (size_t)r->chunk_left;
            evbuffer_remove_buffer(in, r->body, n);
            r->chunk_left -= (int64_t)n;
            if (r->chunk_left == 0)
                r->chunk_state = CH_DATA_CRLF;
            continue;
        case CH_DATA_CRLF: {
            char crlf[2];
            if (evbuffer_get_length(in) < 2)
                return 0;
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n') {
                wconn_fail(c, 400, "bad_request", "malformed chunk end");
                return -1;
            }
            r->chunk_state = CH_SIZE;
            continue;
        }
        }
    }
}

static void wconn_process(struct wconn *c)
{
    const struct whost_limits *lim = &whost_g->lim;
    struct evbuffer *in;
    size_t headlen;

    if (c->in_process)
        return;
    c->in_process = 1;
    while (c->bev != NULL && !c->zombie) {
        in = bufferevent_get_input(c->bev);
        if (c->state == WC_LINGER) {
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (c->state == WC_BUSY && c->ready) {
            /* A complete request: run it. The answer may come now (the
             * state is then back to WC_HEAD) or later. */
            c->ready = 0;
            c->req->body_len = evbuffer_get_length(c->req->body);
            wreq_dispatch(c->req);
            continue;
        }
        if (c->state == WC_BUSY || c->state == WC_CLOSING ||
            c->state == WC_UPGRADED)
            break;
        if (c->state == WC_HEAD) {
            if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
                WCONN_OUT_HIGH) {
                c->wait_write = 1; /* resume from the write callback */
                break;
            }
            headlen = wconn_find_head(c, in);
            if (headlen == 0) {
                if (wconn_head_too_big(c, in))
                    continue;
                if (c->eof) {
                    c->zombie = 1;
                    break;
                }
                /* The head's clock starts at its first byte and is not
                 * reset by later ones: a client dripping a byte at a time
                 * (slowloris) still runs out of time. */
                if (evbuffer_get_length(in) > 0 && !c->head_timer) {
                    c->head_timer = 1;
                    wconn_arm(c, lim->header_timeout_ms);
                }
                break;
            }
            if (headlen > lim->max_header) {
                wconn_fail(c, 431, "header_too_large",
                           "request head too large");
                continue;
            }
            wconn_disarm(c);
            c->head_timer = 0;
            wconn_start_request(c, headlen);
            continue;
        }
        if (c->state == WC_BODY || c->state == WC_CHUNKED) {
            int done = c->state == WC_BODY ? wconn_read_body(c, in)
                                           : wconn_read_chunked(c, in);
            if (done < 0)
                continue;
            if (done == 0) {
                if (c->eof)
                    c->zombie = 1;
                break;
            }
            wconn_disarm(c);
            c->state = WC_BUSY;
            c->ready = 1;
        }
    }
    c->in_process = 0;
    if (c->zombie)
        wconn_free(c);
}

void wconn_resume(struct wconn *c)
{
    if (c->bev != NULL)
        wconn_process(c);
}

static void wconn_linger(struct wconn *c)
{
    c->state = WC_LINGER;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    wconn_arm(c, WCONN_LINGER_MS);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
}

void wconn_request_done(struct wconn *c, int keepalive)
{
    struct weft_req *r = c->req;

    c->req = NULL;
    wreq_free(r);
    if (c->proxied && c->counted && c->up == NULL) {
        /* A proxy keeps its connections open between clients: one counts
         * for a client while it carries the client's request (or stream),
         * else an idle pool would fill the client's quota. */
        wpeer_conn_drop(&c->client, wloop_now_ms());
        c->counted = 0;
    }
    if (c->bev == NULL) {
        wconn_free(c);
        return;
    }
    wconn_flush(c);
    if (c->up != NULL) {
        /* Taken over: the session reads what follows the head (a client
         * may have sent its first frame already) on the next turn. */
        c->state = WC_UPGRADED;
        if (c->up_end) {
            c->up_end = 0;
            wconn_end(c, 2000);
            return;
        }
        c->up_kick = 1;
        wconn_arm(c, 0);
        return;
    }
    if (!keepalive || !c->keepalive || c->loop->draining) {
        c->state = WC_CLOSING;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            if (c->linger_after_write)
                wconn_linger(c);
            else
                wconn_free(c);
        }
        return;
    }
    c->state = WC_HEAD;
    wconn_arm(c, whost_g->lim.keepalive_timeout_ms);
    if (!c->in_process)
        wconn_process(c);
}

static void wconn_readcb(struct bufferevent *bev, void *arg)
{
    struct wconn *c = arg;

    (void)bev;
    if (c->state == WC_UPGRADED) {
        c->up->read(c->up_ctx);
        return;
    }
    if (c->state == WC_CLOSING && c->up != NULL) {
        /* Ending a session: what the client still sends is dropped. */
        evbuffer_drain(bufferevent_get_input(bev),
                       evbuffer_get_length(bufferevent_get_input(bev)));
        return;
    }
    wconn_process(c);
}

static void wconn_writecb(struct bufferevent *bev, void *arg)
{
    struct wconn *c = arg;

    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return;
    if (c->write_armed) {
        c->write_armed = 0;
        bufferevent_disable(bev, EV_WRITE);
    }
    if (c->state == WC_CLOSING) {
        if (c->linger_after_write)
            wconn_linger(c);
        else
            wconn_free(c);
        return;
    }
    if (c->wait_write) {
        c->wait_write = 0;
        wconn_process(c);
    }
}

static void wconn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct wconn *c = arg;

    (void)bev;
    if (c->state == WC_UPGRADED) {
        wconn_free(c); /* the session hears it through up->closed */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->eof = 1;
        if (c->state == WC_LINGER) {
            wconn_free(c);
            return;
        }
        /* The client may have only shut down its side after pipelining:
         * answer what it sent, then close. */
        if (c->state == WC_BUSY || c->state == WC_CLOSING)
            return;
        wconn_process(c);
        return;
    }
    wconn_close(c);
}

static void wconn_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct wconn *c = arg;
    struct evbuffer *in;

    (void)fd;
    (void)what;
    if (c->bev == NULL)
        return;
    in = bufferevent_get_input(c->bev);
    switch (c->state) {
    case WC_UPGRADED:
        if (c->up_kick) {
            c->up_kick = 0;
            if (evbuffer_get_length(in) > 0)
                c->up->read(c->up_ctx);
        }
        return;
    case WC_HEAD:
        if (evbuffer_get_length(in) == 0) {
            wconn_free(c); /* idle keep-alive: close quietly */
            return;
        }
        wconn_fail(c, 408, "request_timeout",
                   "the request did not arrive in time");
        return;
    case WC_BODY:
    case WC_CHUNKED:
        wconn_fail(c, 408, "request_timeout",
                   "the request did not arrive in time");
        return;
    case WC_CLOSING:
        /* A session's end (wconn_end): everything sent, linger; the
         * flush deadline passed with output left, drop it. */
        if (c->linger_after_write &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            wconn_linger(c);
            return;
        }
        wconn_free(c);
        return;
    default:
        wconn_free(c);
    }
}

void wconn_accept(struct evconnlistener *lst, evutil_socket_t fd,
                  struct sockaddr *sa, int salen, void *arg)
{
    struct wloop *l = arg;
    struct wconn *c;
    struct wproxy_addr peer;
    char ip[INET6_ADDRSTRLEN] = "?";
    int one = 1, port = 0, in_use, has_peer, proxied, rc = WPEER_OK;
    int64_t now = wloop_now_ms();

    (void)lst;
    (void)salen;
    has_peer = wproxy_from_sockaddr(sa, &peer) == 0;
    proxied = has_peer && wpeer_is_proxy(&peer);
    in_use = atomic_fetch_add(&whost_g->nconns, 1) + 1;
    /* Refused connections are closed at once, before a byte is read: an
     * answer would cost the buffers and time the limit is there to save,
     * and a flood would get it written back at the rate it connects. */
    if (l->draining || in_use > whost_g->lim.max_connections)
        rc = WPEER_GLOBAL;
    else if (has_peer && !proxied)
        rc = wpeer_conn_take(&peer, in_use, 1, now);
    if (rc != WPEER_OK) {
        atomic_fetch_sub(&whost_g->nconns, 1);
        evutil_closesocket(fd);
        if (!l->draining && has_peer)
            wpeer_refused(rc, &peer, now);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        if (has_peer && !proxied)
            wpeer_conn_drop(&peer, now);
        atomic_fetch_sub(&whost_g->nconns, 1);
        evutil_closesocket(fd);
        return;
    }
    if (has_peer) {
        c->has_peer = 1;
        c->peer = peer;
        c->client = peer;
        c->proxied = proxied;
        c->counted = !c->proxied;
        wproxy_format(&peer, c->client_ip, sizeof(c->client_ip));
    } else {
        snprintf(c->client_ip, sizeof(c->client_ip), "?");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip,
                  sizeof(ip));
        port = ntohs(((struct sockaddr_in *)sa)->sin_port);
        snprintf(c->remote, sizeof(c->remote), "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip,
                  sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(c->remote, sizeof(c->remote), "[%s]:%d", ip, port);
    }
    c->loop = l;
    c->keepalive = 1;
    c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(l->base, wconn_timeout, c);
    if (c->bev == NULL || c->timer == NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->timer != NULL)
            event_free(c->timer);
        if (c->counted)
            wpeer_conn_drop(&c->client, now);
        free(c);
        atomic_fetch_sub(&whost_g->nconns, 1);
        return;
    }
    /* Stop reading while this much is buffered: bounded memory even when
     * a client pipelines faster than the handlers answer. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             whost_g->lim.max_header + 64 * 1024);
    bufferevent_setcb(c->bev, wconn_readcb, wconn_writecb, wconn_eventcb, c);
    /* Writing is direct (wconn_flush); the write event is armed only when
     * the socket cannot take everything at once. */
    bufferevent_disable(c->bev, EV_WRITE); /* enabled by default */
    bufferevent_enable(c->bev, EV_READ);
    c->next = l->conns;
    if (l->conns != NULL)
        l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    wmet_conn_open(l->met);
    /* A new connection has header_timeout for its first head. */
    c->head_timer = 1;
    wconn_arm(c, whost_g->lim.header_timeout_ms);
}

void wconn_drain(struct wloop *l)
{
    struct wconn *c, *next;

    for (c = l->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == WC_UPGRADED) {
            c->up->drain(c->up_ctx); /* ends it with wconn_end() */
            continue;
        }
        if (c->state == WC_HEAD && c->req == NULL && c->bev != NULL &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            wconn_free(c);
        else
            c->keepalive = 0;
    }
}

void wconn_close_all(struct wloop *l)
{
    /* Called once the worker pool has stopped and the loop's tasks ran, so
     * no job refers to any of these requests any more. */
    while (l->conns != NULL)
        wconn_free(l->conns);
}
