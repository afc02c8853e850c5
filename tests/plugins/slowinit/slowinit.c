/*
 * slowinit - a test plugin whose init holds the control loop until a file
 * appears, for the start-up tests (tests/integration/test_startup.c): the
 * test decides when the load ends, so the window in which weftd serves
 * but the plugin is not loaded yet is as wide as the test needs, on any
 * machine. Never do this in a real plugin: init blocks every plugin
 * operation of the host.
 *
 *   [plugin.slowinit] gate = FILE   init waits (up to 60 s) until FILE exists
 *   GET /api/slowinit/ping          {"status":"ok"}
 */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

static int slowinit_ping(weft_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";

    return weft_reply(r, 200, "application/json", body, sizeof(body) - 1);
}

static int slowinit_init(weft_plugin *p)
{
    struct timespec ts = {0, 20000000L};
    const char *gate = NULL;

    if (weft_route(p, "GET", "/api/slowinit/ping", WEFT_ROUTE_NONE,
                   slowinit_ping) != WEFT_OK ||
        weft_config_string(p, "gate", &gate) != WEFT_OK)
        return WEFT_ERR;
    /* Bounded, so a test that dies first cannot leave weftd stuck. */
    for (int i = 0; gate != NULL && gate[0] != '\0' && i < 3000; i++) {
        if (access(gate, F_OK) == 0)
            break;
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
        ts.tv_nsec = 20000000L;
    }
    return WEFT_OK;
}

static const weft_config_key slowinit_keys[] = {
    {"gate", WEFT_CFG_STRING, "", 0, 0,
     "init waits until this file exists (empty: no wait)"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const weft_plugin_desc slowinit_desc = {
    WEFT_DESC_HEADER,
    .name = "slowinit",
    .version = "1.0.0",
    .summary = "test plugin: init waits for a file",
    .config = slowinit_keys,
    .init = slowinit_init,
};

WEFT_PLUGIN(slowinit_desc)
