/* request.c - dispatching a request and writing its answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "auth.h"
#include "db.h"
#include "host.h"
#include "http_conn.h"
#include "log.h"
#include "metrics.h"
#include "plugin.h"
#include "request.h"
#include "worker.h"

struct wreq_job {
    struct weft_req *r;
    weft_work_fn work;
    weft_done_fn done;
    void *arg;
};

struct weft_req *wreq_new(struct wconn *conn)
{
    struct weft_req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->api = &wapi_table;
    r->conn = conn;
    r->loop = conn->loop;
    r->query = "";
    r->body = evbuffer_new();
    r->rhdrs = evbuffer_new();
    if (r->body == NULL || r->rhdrs == NULL) {
        wreq_free(r);
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    return r;
}

void wreq_free(struct weft_req *r)
{
    if (r == NULL)
        return;
    wdb_req_release(r);
    wapi_req_release(r);
    if (r->inst != NULL)
        wplug_inst_release(r->inst);
    for (int i = 0; i < r->nstrs; i++)
        free(r->strs[i]);
    free(r->strs);
    if (r->body != NULL)
        evbuffer_free(r->body);
    if (r->rhdrs != NULL)
        evbuffer_free(r->rhdrs);
    free(r->body_flat);
    free(r->headbuf);
    free(r->hdrs);
    free(r->path);
    free(r->scratch);
    free(r->user);
    free(r->acct);
    free(r);
}

const char *wreq_client_ip(const struct weft_req *r)
{
    return r->conn != NULL ? r->conn->client_ip : "?";
}

int wreq_stream_admit(struct weft_req *r)
{
    if (r->conn == NULL || wconn_stream_open(r->conn) == 0)
        return 0;
    wreq_reply_error(r, 429, "too_many_streams",
                     "too many open streams from your address");
    return -1;
}

const char *wreq_keep(struct weft_req *r, char *s)
{
    char **a;

    if (s == NULL)
        return NULL;
    a = realloc(r->strs, (size_t)(r->nstrs + 1) * sizeof(*a));
    if (a == NULL) {
        free(s);
        return NULL;
    }
    r->strs = a;
    a[r->nstrs++] = s;
    return s;
}

char *werr_json(const char *code, const char *message, size_t *len)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code ? code : "error",
                          "message", message ? message : "");
    char *s;

    /* A code or message that is not valid UTF-8 (from a plugin) must not
     * turn the answer into something other than JSON. */
    if (j == NULL)
        j = json_pack("{s:{s:s,s:s}}", "error", "code", "error", "message",
                      "(the error text was not valid UTF-8)");
    if (j == NULL)
        return NULL;
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s != NULL && len != NULL)
        *len = strlen(s);
    return s;
}

/* The request id is always ours: the loop's random prefix and its counter,
 * so no client can make two requests (or two events' "by") look like one.
 * The client's X-Request-Id, when it is safe to echo, is kept beside it
 * for the answer's header and the access log. */
static void wreq_set_rid(struct weft_req *r)
{
    const char *h = r->head.nheaders ? whttp_header(&r->head, "X-Request-Id")
                                     : NULL;
    size_t n;

    snprintf(r->rid, sizeof(r->rid), "%s%012llx", r->loop->rid_prefix,
             (unsigned long long)(++r->loop->rid_next & 0xffffffffffffULL));
    r->client_rid[0] = '\0';
    if (h != NULL && (n = strlen(h)) > 0 && n <= 64 &&
        strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789._:-") == n)
        memcpy(r->client_rid, h, n + 1);
}

/* X-Request-Id echoes the client's id when it sent one (so it can match
 * answers to requests); ours then goes in X-Weft-Request-Id, the id that
 * events the request caused carry. */
static void wreq_write_rid(const struct weft_req *r, struct evbuffer *out)
{
    if (r->client_rid[0] != '\0')
        evbuffer_add_printf(out, "X-Request-Id: %s\r\nX-Weft-Request-Id: "
                                 "%s\r\n",
                            r->client_rid, r->rid);
    else
        evbuffer_add_printf(out, "X-Request-Id: %s\r\n", r->rid);
}

static void wreq_access_log(struct weft_req *r, double secs)
{
    char line[1024], ts[40];
    struct timespec now;
    struct tm tm;
    const struct wroute *rt = r->match.route;
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    /* The raw path (no query: it may carry secrets); the parser already
     * refused spaces and control characters in it. */
    const char *tg = r->head.target ? r->head.target : "-";
    int plen = (int)strcspn(tg, "?");

    n = snprintf(line, sizeof(line),
                 "%s.%03ldZ info access rid=%s client_rid=%s method=%.16s "
                 "path=%.*s status=%d bytes=%llu ms=%.3f plugin=%s "
                 "route=%.128s remote=%s loop=%d\n",
                 ts, now.tv_nsec / 1000000L, r->rid,
                 r->client_rid[0] != '\0' ? r->client_rid : "-",
                 r->head.method ? r->head.method : "-",
                 plen > 256 ? 256 : plen, tg, r->status,
                 (unsigned long long)r->bytes_out, secs * 1000.0,
                 rt && rt->inst ? rt->inst->slot->name : rt ? "host" : "-",
                 rt ? rt->pattern : "-", r->conn->remote, r->loop->id);
    if (n > (int)sizeof(line) - 1) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    wlog_raw(line, n);
}

/* The answer is complete: account for it and let the connection go on
 * (which frees the request). */
static void wreq_finish_now(struct weft_req *r)
{
    struct timespec now;
    const struct wroute *rt = r->match.route;
    double secs;
    int keep;

    clock_gettime(CLOCK_MONOTONIC, &now);
    secs = (double)(now.tv_sec - r->t0.tv_sec) +
           (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
    if (r->rid[0] == '\0')
        wreq_set_rid(r);
    if (whost_g->lim.access_log)
        wreq_access_log(r, secs);
    wmet_request(r->loop->met,
                 rt && rt->inst ? rt->inst->slot->name : rt ? "host" : "",
                 rt ? rt->pattern : "",
                 r->head.method ? r->head.method : "other", r->status, secs);
    /* An HTTP/1.0 stream is delimited by the close. */
    keep = !(r->head.minor == 0 && r->streaming);
    wconn_request_done(r->conn, keep);
}

/* While host code up the stack still uses the request (dispatch, a job's
 * completion), finishing is postponed to the end of that section. */
static void wreq_finish(struct weft_req *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    if (r->busy > 0)
        r->finish_wanted = 1;
    else
        wreq_finish_now(r);
}

static void wreq_enter(struct weft_req *r)
{
    r->busy++;
}

/* After this the request may be gone. */
static void wreq_leave(struct weft_req *r)
{
    if (--r->busy == 0 && r->finish_wanted) {
        r->finish_wanted = 0;
        wreq_finish_now(r);
    }
}

static int wreq_keepalive(struct weft_req *r)
{
    return r->conn->keepalive && !r->loop->draining &&
           !atomic_load(&whost_g->stopping);
}

/* Status line and headers. `clen` < 0: a stream. */
static void wreq_write_head(struct weft_req *r, struct evbuffer *out,
                            int status, const char *ctype, long long clen)
{
    int keep = wreq_keepalive(r);

    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                        whttp_reason(status), wloop_date(r->loop));
    if (ctype != NULL)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (clen >= 0 && status != 204 && status != 304)
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", clen);
    else if (clen < 0 && r->head.minor == 1)
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
    if (clen < 0 && r->head.minor == 0)
        keep = 0;
    wreq_write_rid(r, out);
    if (!keep) {
        evbuffer_add(out, "Connection: close\r\n", 19);
        r->conn->keepalive = 0;
    } else if (r->head.minor == 0) {
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    }
    evbuffer_add_buffer(out, r->rhdrs);
    evbuffer_add(out, "\r\n", 2);
}

int wreq_reply(struct weft_req *r, int status, const char *ctype,
               const void *body, size_t len)
{
    struct evbuffer *out;
    size_t before = 0;

    if (r->replied || r->finished) {
        wlog_rid(WLOG_WARN, "host", r->rid, "second answer to one request "
                                            "ignored");
        return WEFT_EINVAL;
    }
    if (status < 200 || status > 599)
        status = 500;
    if (r->rid[0] == '\0')
        wreq_set_rid(r);
    r->replied = 1;
    r->status = status;
    out = wconn_output(r->conn);
    if (out != NULL) {
        before = evbuffer_get_length(out);
        wreq_write_head(r, out, status, ctype, (long long)len);
        if (!r->is_head && len > 0 && status != 204 && status != 304)
            evbuffer_add(out, body, len);
        r->bytes_out = evbuffer_get_length(out) - before;
    }
    if (r->pending == 0)
        wreq_finish(r);
    return WEFT_OK;
}

int wreq_reply_error(struct weft_req *r, int status, const char *code,
                     const char *message)
{
    size_t len = 0;
    char *body = werr_json(code, message, &len);
    int rc;

    if (body == NULL)
        return wreq_reply(r, status, "text/plain", "error\n", 6);
    rc = wreq_reply(r, status, "application/json", body, len);
    free(body);
    return rc;
}

int wreq_reply_json(struct weft_req *r, int status, json_t *j)
{
    char *s;
    int rc;

    if (j == NULL)
        return wreq_reply_error(r, 500, "internal", "no JSON to send");
    s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        return wreq_reply_error(r, 500, "internal", "cannot encode JSON");
    rc = wreq_reply(r, status, "application/json", s, strlen(s));
    free(s);
    return rc;
}

int wreq_stream_start(struct weft_req *r, int status, const char *ctype)
{
    struct evbuffer *out;

    if (r->replied || r->finished)
        return WEFT_EINVAL;
    if (r->rid[0] == '\0')
        wreq_set_rid(r);
    r->replied = 1;
    r->streaming = 1;
    r->status = status;
    out = wconn_output(r->conn);
    if (out != NULL) {
        size_t before = evbuffer_get_length(out);
        wreq_write_head(r, out, status, ctype, -1);
        r->bytes_out += evbuffer_get_length(out) - before;
        wconn_flush(r->conn);
    }
    return WEFT_OK;
}

int wreq_stream_write(struct weft_req *r, const void *data, size_t len)
{
    struct evbuffer *out;

    if (!r->streaming || r->stream_done)
        return WEFT_EINVAL; /* bytes after the last chunk would be taken
                             * for the next answer on the connection */
    out = wconn_output(r->conn);
    if (out == NULL)
        return WEFT_ERR; /* the client is gone */
    if (r->is_head || len == 0)
        return WEFT_OK;
    if (r->head.minor == 1)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, data, len);
    if (r->head.minor == 1)
        evbuffer_add(out, "\r\n", 2);
    r->bytes_out += len;
    wconn_flush(r->conn);
    return WEFT_OK;
}

int wreq_stream_end(struct weft_req *r)
{
    struct evbuffer *out;

    if (!r->streaming || r->stream_done || r->finished)
        return WEFT_EINVAL;
    r->stream_done = 1;
    out = wconn_output(r->conn);
    if (out != NULL && r->head.minor == 1 && !r->is_head)
        evbuffer_add(out, "0\r\n\r\n", 5);
    wconn_flush(r->conn);
    if (r->pending == 0)
        wreq_finish(r);
    return WEFT_OK;
}

int wreq_takeover(struct weft_req *r, int status, const char *headers,
                  const struct wconn_up *up, void *ctx)
{
    struct evbuffer *out;

    if (r->replied || r->finished)
        return WEFT_EINVAL;
    r->replied = 1;
    r->status = status;
    out = wconn_output(r->conn);
    if (out != NULL) {
        size_t before = evbuffer_get_length(out);
        evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n",
                            status, whttp_reason(status), wloop_date(r->loop));
        wreq_write_rid(r, out);
        evbuffer_add(out, headers, strlen(headers));
        evbuffer_add_buffer(out, r->rhdrs);
        evbuffer_add(out, "\r\n", 2);
        r->bytes_out = evbuffer_get_length(out) - before;
    }
    wconn_set_takeover(r->conn, up, ctx);
    if (r->pending == 0)
        wreq_finish(r);
    return WEFT_OK;
}

static void wreq_route(struct weft_req *r);

void wreq_dispatch(struct weft_req *r)
{
    wreq_enter(r);
    wreq_route(r);
    wreq_leave(r);
}

static void wreq_route(struct weft_req *r)
{
    const char *target = r->head.target, *q;
    size_t plen;
    long n;

    wreq_set_rid(r);
    q = strchr(target, '?');
    plen = q ? (size_t)(q - target) : strlen(target);
    r->query = q ? q + 1 : "";
    r->path = malloc(plen + 1);
    r->scratch = malloc(plen + 1);
    if (r->path == NULL || r->scratch == NULL) {
        wreq_reply_error(r, 503, "unavailable", "out of memory");
        return;
    }
    n = whttp_decode(target, plen, r->path, 0, 1);
    if (n < 0 || (size_t)n != strlen(r->path)) {
        wreq_reply_error(r, 400, "bad_request",
                         "invalid percent-encoding in the path");
        return;
    }
    wreq_reroute(r);
}

/* The URL space of a configured plugin that has no version serving:
 * 503, with Retry-After while it is starting. The load error itself (it
 * names files) is for admins, in /admin/plugins and the log. Returns 1
 * when it answered. */
static int wreq_waiting(struct weft_req *r)
{
    const struct wrwait *w = wrtable_waiting(r->loop->rt, r->path);
    char msg[200];

    if (w == NULL)
        return 0;
    r->match.route = NULL; /* a 404/405 match may have left a route */
    if (w->why == WRWAIT_STARTING) {
        evbuffer_add(r->rhdrs, "Retry-After: 1\r\n", 16);
        snprintf(msg, sizeof(msg), "plugin %.64s is starting; try again "
                                   "shortly", w->name);
        wreq_reply_error(r, 503, "plugin_starting", msg);
    } else {
        snprintf(msg, sizeof(msg), "plugin %.64s failed to load; an "
                                   "administrator can see why in "
                                   "/admin/plugins", w->name);
        wreq_reply_error(r, 503, "plugin_unavailable", msg);
    }
    return 1;
}

void wreq_reroute(struct weft_req *r)
{
    int st, rc;
    const struct wroute *rt;

    st = wrtable_match(r->loop->rt, r->head.method, r->path, r->scratch,
                       &r->match);
    /* A plugin without a version has no routes of its own; the host's
     * /p/ routes would answer for its files with a 404. */
    if ((st != 200 || (r->match.route->inst == NULL &&
                       strncmp(r->path, "/p/", 3) == 0)) &&
        wreq_waiting(r))
        return;
    if (st == 404) {
        char msg[300];
        snprintf(msg, sizeof(msg), "no route for %s %.200s", r->head.method,
                 r->path);
        wreq_reply_error(r, 404, "not_found", msg);
        return;
    }
    if (st == 405) {
        char msg[300];
        evbuffer_add_printf(r->rhdrs, "Allow: %s\r\n", r->match.allow);
        snprintf(msg, sizeof(msg), "%s is not allowed here; allowed: %s",
                 r->head.method, r->match.allow);
        wreq_reply_error(r, 405, "method_not_allowed", msg);
        return;
    }
    rt = r->match.route;
    /* 1: the account is being looked up; wreq_reroute() follows. */
    if (wauth_request(r, rt->flags) != 0)
        return;
    if ((rt->flags & WEFT_ROUTE_NO_BODY) && r->body_len > 0) {
        wreq_reply_error(r, 413, "payload_too_large",
                         "this route takes no request body");
        return;
    }
    if (rt->inst != NULL) {
        /* The loop's table keeps the version alive; the request takes its
         * own reference so a reload cannot unload it mid-request. */
        wplug_inst_acquire(rt->inst);
        r->inst = rt->inst;
    }
    rc = rt->fn(r);
    if (r->replied || r->pending > 0 || r->finished)
        return;
    if (rc != WEFT_OK)
        wreq_reply_error(r, 500, "internal", "the handler failed");
    else
        wreq_reply_error(r, 500, "internal", "the handler gave no answer");
}

/* ---- handing work to other threads ----------------------------------- */

void wreq_pending_add(struct weft_req *r)
{
    r->pending++;
}

void wreq_complete(struct weft_req *r, void (*call)(struct weft_req *, void *),
                   void *ctx)
{
    wreq_enter(r);
    call(r, ctx);
    r->pending--;
    if (r->pending == 0 && !r->finished) {
        if (!r->replied)
            wreq_reply_error(r, 500, "internal", "the handler gave no answer");
        else if (!r->streaming)
            wreq_finish(r);
    }
    wreq_leave(r);
}

static void wreq_job_call(struct weft_req *r, void *ctx)
{
    struct wreq_job *j = ctx;

    j->done(r, j->arg);
    free(j);
}

static void wreq_job_done(void *arg)
{
    struct wreq_job *j = arg;

    wreq_complete(j->r, wreq_job_call, j);
}

static void wreq_job_run(void *arg)
{
    struct wreq_job *j = arg;
    struct timespec ms = {0, 1000000L};

    j->work(j->arg);
    /* Only out of memory makes posting fail; the request must not be lost. */
    while (wloop_post(j->r->loop, wreq_job_done, j) != 0)
        nanosleep(&ms, NULL);
}

int wreq_defer_on(struct weft_req *r, struct wloop *target, weft_work_fn work,
                  weft_done_fn done, void *arg)
{
    struct wreq_job *j;
    int rc;

    if (work == NULL || done == NULL || r->finished)
        return WEFT_EINVAL;
    j = malloc(sizeof(*j));
    if (j == NULL)
        return WEFT_EBUSY;
    j->r = r;
    j->work = work;
    j->done = done;
    j->arg = arg;
    r->pending++;
    rc = target != NULL ? wloop_post(target, wreq_job_run, j)
                        : wpool_submit(whost_g->pool, wreq_job_run, j);
    if (rc != 0) {
        r->pending--;
        free(j);
        return WEFT_EBUSY;
    }
    return WEFT_OK;
}
