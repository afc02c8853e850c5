/*
 * hello - the plugin template. Copy this folder, rename the plugin, keep the
 * shape: a config table, route handlers, one descriptor, WEFT_PLUGIN().
 *
 * Routes:
 *   GET  /api/hello/ping          {"plugin","version","message","requests"}
 *   GET  /api/hello/slow?ms=N     answers after N ms of work on the host pool
 *   GET  /api/hello/stream?n=N    streams N lines ("line <i>\n")
 *   POST /api/hello/echo          echoes a JSON body back as {"echo": ...}
 */
/* nanosleep() is POSIX, not C11: say so here so any build system works. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/weft.h>

#ifndef HELLO_VERSION
#define HELLO_VERSION "1.0.0"
#endif

/* Bumped whenever struct hello_state changes shape. */
#define HELLO_STATE_LAYOUT 1

/* Lives in the host's state slot, so the count survives reloads. */
struct hello_state {
    unsigned long long requests;
};

static const weft_config_key hello_config[] = {
    {"greeting", WEFT_CFG_STRING, "hello", 0, 0, "message returned by /ping"},
    {"fail_init", WEFT_CFG_BOOL, "false", 0, 0,
     "make init fail (used to test refused reloads)"},
    {"max_sleep", WEFT_CFG_MS, "10s", 0, 600000, "upper bound of /slow?ms="},
    {NULL, 0, NULL, 0, 0, NULL}};

/* Parse a bounded non-negative integer query parameter. */
static int hello_query_uint(weft_req *r, const char *name, long max, long *out)
{
    const char *s = weft_req_query(r, name);
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return WEFT_ENOENT;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > max)
        return WEFT_EINVAL;
    *out = v;
    return WEFT_OK;
}

static int hello_ping(weft_req *r)
{
    weft_plugin *p = weft_req_plugin(r);
    struct hello_state *st;
    const char *greeting = "hello";
    unsigned long long n = 0;
    json_t *body;
    int rc;

    (void)weft_config_string(p, "greeting", &greeting);
    st = weft_state(p, sizeof(*st), HELLO_STATE_LAYOUT);
    if (st != NULL) {
        weft_state_lock(p);
        n = ++st->requests;
        weft_state_unlock(p);
    }
    body = json_pack("{s:s, s:s, s:s, s:I}", "plugin", weft_plugin_name(p),
                     "version", HELLO_VERSION, "message", greeting, "requests",
                     (json_int_t)n);
    if (body == NULL)
        return WEFT_ERR;
    rc = weft_reply_json(r, 200, body);
    json_decref(body);
    return rc;
}

/* Runs on a host worker thread: blocking is allowed here. */
static void hello_sleep(void *arg)
{
    long ms = *(long *)arg;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Back on the request's loop. */
static void hello_slept(weft_req *r, void *arg)
{
    long ms = *(long *)arg;
    json_t *body = json_pack("{s:s, s:i}", "version", HELLO_VERSION, "slept_ms",
                             (int)ms);

    free(arg);
    if (body == NULL) {
        weft_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    weft_reply_json(r, 200, body);
    json_decref(body);
}

static int hello_slow(weft_req *r)
{
    weft_plugin *p = weft_req_plugin(r);
    int64_t max = 10000;
    long *ms;
    int rc;

    (void)weft_config_int(p, "max_sleep", &max);
    ms = malloc(sizeof(*ms));
    if (ms == NULL)
        return WEFT_ERR;
    rc = hello_query_uint(r, "ms", (long)max, ms);
    if (rc == WEFT_ENOENT) {
        *ms = 100;
    } else if (rc != WEFT_OK) {
        free(ms);
        return weft_reply_error(r, 400, "bad_request",
                                "ms must be an integer within max_sleep");
    }
    rc = weft_defer(r, hello_sleep, hello_slept, ms);
    if (rc != WEFT_OK) {
        free(ms);
        return weft_reply_error(r, 503, "busy", "worker queue is full");
    }
    return WEFT_OK;
}

static int hello_stream(weft_req *r)
{
    char line[32];
    long n = 3, i;
    int len;

    if (hello_query_uint(r, "n", 1000, &n) == WEFT_EINVAL)
        return weft_reply_error(r, 400, "bad_request",
                                "n must be an integer from 0 to 1000");
    if (weft_stream_start(r, 200, "text/plain") != WEFT_OK)
        return WEFT_ERR;
    for (i = 0; i < n; i++) {
        len = snprintf(line, sizeof(line), "line %ld\n", i);
        weft_stream_write(r, line, (size_t)len);
    }
    return weft_stream_end(r);
}

static int hello_echo(weft_req *r)
{
    const char *err = NULL;
    json_t *in = weft_req_json(r, &err), *out;
    int rc;

    if (in == NULL)
        return weft_reply_error(r, 400, "bad_json", err);
    out = json_pack("{s:o}", "echo", in); /* steals `in` */
    if (out == NULL)
        return WEFT_ERR;
    rc = weft_reply_json(r, 200, out);
    json_decref(out);
    return rc;
}

static int hello_init(weft_plugin *p)
{
    int fail = 0;

    if (weft_config_bool(p, "fail_init", &fail) == WEFT_OK && fail) {
        weft_plugin_fail(p, "fail_init is set in [plugin.%s]",
                         weft_plugin_name(p));
        return WEFT_ERR;
    }
    if (weft_route(p, "GET", "/api/hello/ping", WEFT_ROUTE_NONE, hello_ping) ||
        weft_route(p, "GET", "/api/hello/slow", WEFT_ROUTE_NONE, hello_slow) ||
        weft_route(p, "GET", "/api/hello/stream", WEFT_ROUTE_NONE,
                   hello_stream) ||
        weft_route(p, "POST", "/api/hello/echo", WEFT_ROUTE_NONE, hello_echo))
        return WEFT_ERR;
    weft_log(p, WEFT_LOG_INFO, "version %s ready", HELLO_VERSION);
    return WEFT_OK;
}

static const weft_plugin_desc hello_desc = {
    WEFT_DESC_HEADER,
    .name = "hello",
    .version = HELLO_VERSION,
    .summary = "template plugin: ping, slow, stream, echo",
    .config = hello_config,
    .init = hello_init,
};

WEFT_PLUGIN(hello_desc)
