/* builtin.c - health, readiness, metrics, the plugin list and the admin
 * endpoints. These are ordinary routes in the table, owned by the host. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "auth.h"
#include "builtin.h"
#include "bus.h"
#include "db.h"
#include "host.h"
#include "metrics.h"
#include "peer.h"
#include "plugin.h"
#include "request.h"

static int wb_healthz(weft_req *r)
{
    static const char body[] = "{\"status\":\"ok\"}";

    return wreq_reply(r, 200, "application/json", body, sizeof(body) - 1);
}

static int wb_readyz(weft_req *r)
{
    static const char body[] = "{\"status\":\"ready\",\"nats\":\"ok\"}";
    static const char degraded[] =
        "{\"status\":\"ready\",\"nats\":\"disconnected\"}";

    if (!atomic_load(&whost_g->ready) || atomic_load(&whost_g->stopping))
        return wreq_reply_error(r, 503, "not_ready",
                                atomic_load(&whost_g->stopping)
                                    ? "shutting down"
                                    : "starting");
    if (wdb_enabled() && !wdb_ready())
        return wreq_reply_error(r, 503, "not_ready",
                                "the database is unreachable");
    /* NATS away still serves this node's clients (publishes are
     * buffered): ready, and saying so. */
    if (!wbus_nats_ok())
        return wreq_reply(r, 200, "application/json", degraded,
                          sizeof(degraded) - 1);
    return wreq_reply(r, 200, "application/json", body, sizeof(body) - 1);
}

static int wb_metrics(weft_req *r)
{
    struct evbuffer *b = evbuffer_new();
    size_t len;
    char *s;
    int rc;

    if (b == NULL)
        return WEFT_ERR;
    evbuffer_add_printf(b, "# HELP weft_info Build information.\n# TYPE "
                           "weft_info gauge\nweft_info{version=\"%s\","
                           "abi=\"%d.%d\"} 1\n",
                        WEFT_VERSION, WEFT_ABI_MAJOR, WEFT_ABI_MINOR);
    wmet_render(b, whost_g->loops, whost_g->nloops);
    wpeer_render(b);
    wplug_metrics(b);
    wbus_metrics(b);
    len = evbuffer_get_length(b);
    s = (char *)evbuffer_pullup(b, -1);
    rc = wreq_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", s, len);
    evbuffer_free(b);
    return rc;
}

/* A load error quotes file paths (dlopen's messages do): anonymous
 * clients get each path's last component only, not the server's layout. */
static void wb_strip_paths(json_t *o)
{
    const char *e = json_string_value(json_object_get(o, "last_error"));
    char *out;
    size_t n = 0;

    if (e == NULL || strchr(e, '/') == NULL ||
        (out = malloc(strlen(e) + 1)) == NULL)
        return;
    for (const char *p = e; *p != '\0'; p++) {
        if (*p == '/' && (p == e || p[-1] == ' ' || p[-1] == '\'' ||
                          p[-1] == '"' || p[-1] == '(' || p[-1] == '=')) {
            const char *end = p + strcspn(p, " :'\"),"), *base = p;
            for (const char *q = p; q < end; q++)
                if (*q == '/')
                    base = q + 1;
            memcpy(out + n, base, (size_t)(end - base));
            n += (size_t)(end - base);
            p = end - 1;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    json_object_set_new(o, "last_error", json_string(out));
    free(out);
}

static int wb_plugin_list(weft_req *r, int admin)
{
    json_t *arr = wplug_info(), *body;
    int rc;

    if (arr == NULL)
        return WEFT_ERR;
    /* Where the files live, and what each loop serves (the check that a
     * reload reached every loop), are the admins' business. */
    if (!admin) {
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o) {
            json_object_del(o, "path");
            json_object_del(o, "loops");
            wb_strip_paths(o);
        }
    }
    body = json_pack("{s:o}", "plugins", arr);
    if (body == NULL)
        return WEFT_ERR;
    rc = wreq_reply_json(r, 200, body);
    json_decref(body);
    return rc;
}

static int wb_plugins(weft_req *r)
{
    return wb_plugin_list(r, wauth_has_role(r, "admin"));
}

/* The same list for the [admin] token, which only admin routes take. */
static int wb_admin_plugins(weft_req *r)
{
    return wb_plugin_list(r, 1);
}

/* An admin reload: the work runs on the control thread, which owns every
 * plugin operation; the answer comes back on the request's loop. */
struct wb_reload {
    char *name;
    int status;
    json_t *body;
};

static void wb_reload_work(void *arg)
{
    struct wb_reload *job = arg;

    if (atomic_load(&whost_g->stopping)) {
        job->status = 503;
        job->body = json_pack("{s:{s:s,s:s}}", "error", "code", "unavailable",
                              "message", "shutting down");
        return;
    }
    job->status = wplug_reload(whost_g->config_path, job->name, &job->body);
}

static void wb_reload_done(weft_req *r, void *arg)
{
    struct wb_reload *job = arg;

    if (job->body != NULL)
        wreq_reply_json(r, job->status, job->body);
    else
        wreq_reply_error(r, 500, "internal", "out of memory");
    json_decref(job->body);
    free(job->name);
    free(job);
}

static int wb_reload(weft_req *r)
{
    const char *name = r->api->req_param(r, "name");
    struct wb_reload *job = calloc(1, sizeof(*job));

    if (job == NULL || (job->name = strdup(name ? name : "")) == NULL) {
        free(job);
        return WEFT_ERR;
    }
    if (wreq_defer_on(r, &whost_g->ctl, wb_reload_work, wb_reload_done, job) !=
        WEFT_OK) {
        free(job->name);
        free(job);
        return wreq_reply_error(r, 503, "unavailable", "try again");
    }
    return WEFT_OK;
}

int wbuiltin_register(void)
{
    if (wplug_host_route("GET", "/healthz", 0, wb_healthz) ||
        wplug_host_route("GET", "/readyz", 0, wb_readyz) ||
        wplug_host_route("GET", "/metrics", 0, wb_metrics) ||
        wplug_host_route("GET", "/api/plugins", 0, wb_plugins) ||
        wplug_host_route("GET", "/admin/plugins", WEFT_ROUTE_ADMIN,
                         wb_admin_plugins) ||
        wplug_host_route("POST", "/admin/plugins/:name/reload",
                         WEFT_ROUTE_ADMIN, wb_reload))
        return -1;
    return 0;
}
