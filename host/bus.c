/* bus.c - wiring of the event bus, publishing for plugins and admins, and
 * the outbox relay.
 *
 * The outbox: weft_tx_publish() inserts the event into weft_outbox inside
 * the plugin's transaction and NOTIFYs weft_outbox, which PostgreSQL only
 * delivers on commit. The relay (one thread with its own connection) wakes
 * on that notification, on start and every few seconds regardless (a
 * notification is lost while no listener is connected), takes a batch with
 * FOR UPDATE SKIP LOCKED (so several nodes never send one row twice),
 * publishes it and deletes it in the same transaction. A crash between
 * publish and commit sends those events again on restart: at least once. */
#include "bus.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "bus_nats.h"
#include "db_listen.h"
#include "host.h"
#include "hub.h"
#include "log.h"
#include "plugin.h"
#include "registry.h"
#include "request.h"
#include "rt.h"
#include "rt_sse.h"
#include "rt_ws.h"
#include "settings.h"
#include "topic.h"

#define WBUS_SWEEP_MS 10000
#define WBUS_OUTBOX_POLL_S 5
#define WBUS_MAX_DATA (256 * 1024) /* one message's data, bytes */

const char wbus_outbox_sql[] =
    "WITH i AS (INSERT INTO weft_outbox (topic, data) VALUES ($1, $2) "
    "RETURNING id) SELECT pg_notify('weft_outbox', '') FROM i";

static struct {
    struct event *sweep;
    int nats;
    /* outbox relay */
    pthread_t thr;
    int thr_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake, stop;
    char *conninfo;
    int batch;
    atomic_ullong relayed;
} wbus = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void wbus_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    whub_sweep();
}

static void wbus_from_nats(const char *topic, const char *data, size_t len)
{
    /* Another node's message: check it as we would our own. */
    if (!wtopic_valid(topic, 0) || len > WBUS_MAX_DATA)
        return;
    whub_publish(topic, data, len, 1);
}

int wbus_start(struct whost *h)
{
    const struct wsettings *s = h->set;
    struct whub_cfg hc = {(int)s->rt_history_size, s->rt_history_ttl,
                          (int)s->rt_max_topics};
    struct wrt_cfg rc = {s->rt_heartbeat, (int)s->rt_max_subs,
                         (size_t)s->rt_send_buffer,
                         (size_t)s->rt_ws_max_message, s->rt_allowed_origins};
    struct timeval tv = {WBUS_SWEEP_MS / 1000, 0};

    if (whub_init(&hc) != 0 || wreg_init(s->rt_public_topics) != 0 ||
        wrt_init(&rc, h->nloops) != 0)
        return -1;
    for (int i = 0; i < h->nloops; i++)
        wrt_loop_start(&h->loops[i]);
    wbus.sweep = event_new(h->ctl.base, -1, EV_PERSIST, wbus_sweep, NULL);
    if (wbus.sweep == NULL || event_add(wbus.sweep, &tv) != 0)
        return -1;
    wbus.batch = (int)s->bus_outbox_batch;
    if (s->bus_nats_url != NULL && s->bus_nats_url[0] != '\0') {
        if (wnats_start(s->bus_nats_url, s->bus_nats_prefix, wbus_from_nats) !=
            0)
            return -1;
        wbus.nats = 1;
        whub_set_forward(wnats_publish);
    }
    return 0;
}

/* ---- the outbox relay ------------------------------------------------- */

void wbus_outbox_wake(const char *channel, const char *payload, void *arg)
{
    (void)channel;
    (void)payload;
    (void)arg;
    pthread_mutex_lock(&wbus.mu);
    wbus.wake = 1;
    pthread_cond_signal(&wbus.cv);
    pthread_mutex_unlock(&wbus.mu);
}

/* One batch: 1 when there may be more, 0 when empty, -1 on error. */
static int wbus_outbox_pass(PGconn *pg)
{
    char lim[16];
    const char *p[1] = {lim};
    PGresult *res;
    int n, rc = 0;

    snprintf(lim, sizeof(lim), "%d", wbus.batch);
    res = PQexec(pg, "BEGIN");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        return -1;
    }
    PQclear(res);
    /* The rows leave in id order (commit order of their inserts, as far as
     * one node can tell); RETURNING alone has no order. */
    res = PQexecParams(pg,
                       "WITH d AS (DELETE FROM weft_outbox WHERE id IN "
                       "(SELECT id FROM weft_outbox ORDER BY id LIMIT $1 "
                       "FOR UPDATE SKIP LOCKED) RETURNING id, topic, data) "
                       "SELECT topic, data FROM d ORDER BY id",
                       1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        wlog(WLOG_WARN, "outbox", "%s", PQresultErrorMessage(res));
        PQclear(res);
        PQclear(PQexec(pg, "ROLLBACK"));
        return -1;
    }
    n = PQntuples(res);
    for (int k = 0; k < n; k++)
        if (wtopic_valid(PQgetvalue(res, k, 0), 0))
            whub_publish(PQgetvalue(res, k, 0), PQgetvalue(res, k, 1),
                         (size_t)PQgetlength(res, k, 1), 0);
    PQclear(res);
    res = PQexec(pg, "COMMIT");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = -1;
    PQclear(res);
    if (rc == 0) {
        atomic_fetch_add(&wbus.relayed, (unsigned long long)n);
        rc = n == wbus.batch;
    }
    return rc;
}

static void *wbus_outbox_thread(void *arg)
{
    PGconn *pg = NULL;
    int backoff = 1;

    (void)arg;
    for (;;) {
        struct timespec until;

        pthread_mutex_lock(&wbus.mu);
        if (wbus.stop) {
            pthread_mutex_unlock(&wbus.mu);
            break;
        }
        wbus.wake = 0;
        pthread_mutex_unlock(&wbus.mu);
        if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
            PQfinish(pg);
            pg = PQconnectdb(wbus.conninfo);
            if (PQstatus(pg) != CONNECTION_OK) {
                PQfinish(pg);
                pg = NULL;
                backoff = backoff < 8 ? backoff * 2 : 8;
            } else {
                backoff = 1;
            }
        }
        if (pg != NULL) {
            int rc;
            while ((rc = wbus_outbox_pass(pg)) == 1 && !wbus.stop)
                ;
            if (rc < 0 && PQstatus(pg) != CONNECTION_OK) {
                PQfinish(pg);
                pg = NULL;
            }
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += pg != NULL ? WBUS_OUTBOX_POLL_S : backoff;
        pthread_mutex_lock(&wbus.mu);
        while (!wbus.wake && !wbus.stop)
            if (pthread_cond_timedwait(&wbus.cv, &wbus.mu, &until) ==
                ETIMEDOUT)
                break;
        pthread_mutex_unlock(&wbus.mu);
    }
    PQfinish(pg);
    return NULL;
}

int wbus_start_outbox(const char *conninfo)
{
    wbus.conninfo = strdup(conninfo);
    if (wbus.conninfo == NULL)
        return -1;
    if (pthread_create(&wbus.thr, NULL, wbus_outbox_thread, NULL) != 0)
        return -1;
    wbus.thr_on = 1;
    return 0;
}

void wbus_stop(void)
{
    if (wbus.thr_on) {
        pthread_mutex_lock(&wbus.mu);
        wbus.stop = 1;
        pthread_cond_signal(&wbus.cv);
        pthread_mutex_unlock(&wbus.mu);
        pthread_join(wbus.thr, NULL);
        wbus.thr_on = 0;
    }
    free(wbus.conninfo);
    wbus.conninfo = NULL;
    whub_set_forward(NULL);
    if (wbus.nats)
        wnats_stop();
    wbus.nats = 0;
    if (wbus.sweep != NULL)
        event_free(wbus.sweep);
    wbus.sweep = NULL;
    wrt_fini();
    whub_fini();
    wreg_fini();
}


/* ---- publishing ------------------------------------------------------- */

int wbus_owns(struct weft_plugin *i, const char *topic)
{
    size_t nl = strlen(i->slot->name);

    return wtopic_valid(topic, 0) && strncmp(topic, i->slot->name, nl) == 0 &&
           topic[nl] == '.';
}

/* Compact JSON of `data`, or NULL (too big, not encodable). */
static char *wbus_encode(json_t *data, size_t *len)
{
    char *s = data != NULL
                  ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY)
                  : NULL;

    if (s == NULL)
        return NULL;
    *len = strlen(s);
    if (*len > WBUS_MAX_DATA) {
        free(s);
        return NULL;
    }
    return s;
}

int wbus_plugin_publish(struct weft_plugin *i, const char *topic, json_t *data)
{
    size_t len;
    char *s;
    uint64_t off;

    if (topic == NULL || !wbus_owns(i, topic)) {
        wlog(WLOG_WARN, i->comp, "publish: '%s' is not a topic under '%s.'",
             topic ? topic : "(null)", i->slot->name);
        return WEFT_EINVAL;
    }
    s = wbus_encode(data, &len);
    if (s == NULL)
        return WEFT_EINVAL;
    off = whub_publish(topic, s, len, 0);
    free(s);
    return off > 0 ? WEFT_OK : WEFT_EBUSY;
}

/* POST /admin/publish {"topic": "...", "data": ...}: for admins and
 * tools; any valid topic. */
static int wbus_admin_publish(weft_req *r)
{
    const char *err = NULL, *topic = NULL;
    json_t *body = r->api->req_json(r, &err), *data = NULL, *ans;
    size_t len;
    char *s;
    uint64_t off;

    if (body == NULL)
        return wreq_reply_error(r, 400, "bad_request", err);
    if (json_unpack_ex(body, NULL, JSON_STRICT, "{s:s, s:o}", "topic", &topic,
                       "data", &data) != 0 ||
        !wtopic_valid(topic, 0)) {
        json_decref(body);
        return wreq_reply_error(r, 400, "bad_request",
                                "expected {\"topic\":\"a.b\",\"data\":...} "
                                "with a topic without wildcards");
    }
    s = wbus_encode(data, &len);
    if (s == NULL) {
        json_decref(body);
        return wreq_reply_error(r, 413, "payload_too_large",
                                "data is larger than 256 KiB");
    }
    off = whub_publish(topic, s, len, 0);
    free(s);
    json_decref(body);
    if (off == 0)
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    ans = json_pack("{s:I, s:s}", "offset", (json_int_t)off, "epoch",
                    whub_epoch());
    wreq_reply_json(r, 202, ans);
    json_decref(ans);
    return WEFT_OK;
}

int wbus_routes(void)
{
    if (wplug_host_route("GET", "/api/realtime", WEFT_ROUTE_NO_BODY,
                         wrt_sse_handler) ||
        wplug_host_route("POST", "/api/realtime/subscriptions", 0,
                         wrt_sse_subs_handler) ||
        wplug_host_route("GET", "/api/ws", WEFT_ROUTE_NO_BODY,
                         wrt_ws_handler) ||
        wplug_host_route("POST", "/admin/publish", WEFT_ROUTE_ADMIN,
                         wbus_admin_publish))
        return -1;
    return 0;
}

int wbus_nats_ok(void)
{
    return !wbus.nats || wnats_connected();
}

void wbus_metrics(struct evbuffer *out)
{
    uint64_t pub, topics, retained, sess, slow, delivered;
    unsigned long long np = 0, nr = 0, nf = 0, nrc = 0;

    whub_stats(&pub, &topics, &retained);
    wrt_stats(&sess, &slow, &delivered);
    evbuffer_add_printf(
        out,
        "# TYPE weft_bus_published_total counter\n"
        "weft_bus_published_total %llu\n"
        "# TYPE weft_bus_topics gauge\nweft_bus_topics %llu\n"
        "# TYPE weft_bus_retained_messages gauge\n"
        "weft_bus_retained_messages %llu\n"
        "# TYPE weft_realtime_sessions gauge\nweft_realtime_sessions %llu\n"
        "# TYPE weft_realtime_slow_consumers_total counter\n"
        "weft_realtime_slow_consumers_total %llu\n"
        "# TYPE weft_realtime_delivered_total counter\n"
        "weft_realtime_delivered_total %llu\n"
        "# TYPE weft_outbox_relayed_total counter\n"
        "weft_outbox_relayed_total %llu\n",
        (unsigned long long)pub, (unsigned long long)topics,
        (unsigned long long)retained, (unsigned long long)sess,
        (unsigned long long)slow, (unsigned long long)delivered,
        (unsigned long long)atomic_load(&wbus.relayed));
    if (wbus.nats) {
        wnats_stats(&np, &nr, &nf, &nrc);
        evbuffer_add_printf(out,
                            "# TYPE weft_nats_connected gauge\n"
                            "weft_nats_connected %d\n"
                            "# TYPE weft_nats_published_total counter\n"
                            "weft_nats_published_total %llu\n"
                            "# TYPE weft_nats_received_total counter\n"
                            "weft_nats_received_total %llu\n"
                            "# TYPE weft_nats_publish_failures_total counter\n"
                            "weft_nats_publish_failures_total %llu\n"
                            "# TYPE weft_nats_reconnects_total counter\n"
                            "weft_nats_reconnects_total %llu\n",
                            wnats_connected(), np, nr, nf, nrc);
    }
}
