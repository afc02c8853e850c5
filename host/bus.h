/* bus.h - the event bus as the rest of weftd sees it: start and stop of
 * the hub, the registry, realtime sessions, NATS and the outbox relay;
 * publishing on behalf of plugins and admins. */
#ifndef WEFT_HOST_BUS_H
#define WEFT_HOST_BUS_H

#include <jansson.h>
#include <weft/weft.h>

struct whost;
struct evbuffer;

/* Before the loop threads start. */
int wbus_start(struct whost *h);
/* Once the database is up (the outbox needs it). */
int wbus_start_outbox(const char *conninfo);
/* NOTIFY weft_outbox arrived (db_listen callback, control loop). */
void wbus_outbox_wake(const char *channel, const char *payload, void *arg);
/* After the loops stopped. */
void wbus_stop(void);

/* Routes: GET /api/realtime, POST /api/realtime/subscriptions, GET /api/ws,
 * POST /admin/publish. */
int wbus_routes(void);

/* weft_publish() for version `i`. */
int wbus_plugin_publish(struct weft_plugin *i, const char *topic, json_t *data);
/* Is `topic` one that version `i` may publish? */
int wbus_owns(struct weft_plugin *i, const char *topic);

/* SQL for weft_tx_publish(): $1 topic, $2 data. */
extern const char wbus_outbox_sql[];

/* For /metrics and /readyz. */
void wbus_metrics(struct evbuffer *out);
int wbus_nats_ok(void);

#endif
