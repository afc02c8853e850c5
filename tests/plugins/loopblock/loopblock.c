/*
 * loopblock - a test plugin that can hold its event loop, for the reload
 * tests (tests/integration/test_reload.c). Never do this in a real plugin:
 * a handler that sleeps stops every connection of its loop.
 *
 *   GET /api/loopblock/where        {"version", "thread"}: which loop serves
 *   GET /api/loopblock/block?ms=N   sleeps N ms (at most 5000) on the loop
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#endif

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#ifndef LOOPBLOCK_VERSION
#define LOOPBLOCK_VERSION "1.0.0"
#endif

static int loopblock_answer(weft_req *r, long ms)
{
    /* One loop is one thread: its id names the loop to the test. */
    json_t *body = json_pack("{s:s, s:I, s:i}", "version", LOOPBLOCK_VERSION,
                             "thread", (json_int_t)syscall(SYS_gettid),
                             "slept_ms", (int)ms);
    int rc;

    if (body == NULL)
        return WEFT_ERR;
    rc = weft_reply_json(r, 200, body);
    json_decref(body);
    return rc;
}

static int loopblock_where(weft_req *r)
{
    return loopblock_answer(r, 0);
}

static int loopblock_block(weft_req *r)
{
    const char *s = weft_req_query(r, "ms");
    struct timespec ts;
    char *end;
    long ms;

    if (s == NULL)
        return weft_reply_error(r, 400, "bad_request", "ms is required");
    errno = 0;
    ms = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || ms < 0 || ms > 5000)
        return weft_reply_error(r, 400, "bad_request",
                                "ms must be an integer from 0 to 5000");
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
    return loopblock_answer(r, ms);
}

static int loopblock_init(weft_plugin *p)
{
    if (weft_route(p, "GET", "/api/loopblock/where", WEFT_ROUTE_NONE,
                   loopblock_where) ||
        weft_route(p, "GET", "/api/loopblock/block", WEFT_ROUTE_NONE,
                   loopblock_block))
        return WEFT_ERR;
    return WEFT_OK;
}

static const weft_plugin_desc loopblock_desc = {
    WEFT_DESC_HEADER,
    .name = "loopblock",
    .version = LOOPBLOCK_VERSION,
    .summary = "test plugin: tells and holds its event loop",
    .init = loopblock_init,
};

WEFT_PLUGIN(loopblock_desc)
