/* hub.h - the bus's core: one sequence per node, a bounded history per
 * topic, and fan-out of each message to the loops that have subscribers.
 *
 * A message is encoded once per wire format when it is published (the SSE
 * event and the WebSocket frame are the same bytes for every client) and
 * shared by reference. Offsets come from one node-wide sequence, so they
 * increase along every topic but are not contiguous; the epoch changes
 * when weftd restarts (history lives in memory), which is how a client
 * learns that its position means nothing any more. */
#ifndef WEFT_HOST_HUB_H
#define WEFT_HOST_HUB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct wloop;

struct wmsg {
    atomic_int refs;
    uint64_t seq;
    int64_t at_ms; /* monotonic clock at publish, for the history's age */
    char *topic;
    char *data; /* the payload, compact JSON */
    size_t data_len;
    char *json; /* {"type":"message","topic",..,"epoch",..,"offset",..,"data"} */
    size_t json_len;
    char *sse; /* the whole SSE event */
    size_t sse_len;
    unsigned char *ws; /* the whole WebSocket text frame (server side) */
    size_t ws_len;
};

struct whub_cfg {
    int history_size;
    int64_t history_ttl_ms;
    int max_topics;
};

int whub_init(const struct whub_cfg *cfg);
/* After the loops stopped: drop the history. */
void whub_fini(void);

void wmsg_ref(struct wmsg *m);
void wmsg_unref(struct wmsg *m);

/* Publish `data` (compact JSON, len bytes) on `topic` (already valid).
 * From any thread. `remote`: it came from another node (NATS), so it is
 * not sent there again. Returns the offset, or 0 when out of memory. */
uint64_t whub_publish(const char *topic, const char *data, size_t len,
                      int remote);

/* Where local publishes also go (NATS), or NULL; set before the loops
 * start. */
void whub_set_forward(int (*fn)(const char *topic, const char *data,
                                size_t len));

/* The node's epoch (16 hex digits) and its current offset. */
const char *whub_epoch(void);
uint64_t whub_offset(void);

/*
 * Where a new subscription to `pattern` starts. `*floor` is the current
 * offset: live messages at or below it are skipped (they are history).
 * With `since` > 0 (and `epoch` equal to ours), the retained messages of
 * matching topics with offsets above `since` are returned in offset order
 * in *out (references; the caller unrefs each and frees the array) and
 * *recovered tells whether that is everything the client missed. With
 * since == 0 nothing is replayed and *recovered is 1 only if `epoch` was
 * given and equals ours... callers pass NULL then. Returns 0, or -1 when
 * out of memory. At most `max` messages are replayed; more means
 * recovered = 0 and none.
 */
int whub_start(const char *pattern, const char *epoch, uint64_t since,
               size_t max, struct wmsg ***out, size_t *n, int *recovered,
               uint64_t *floor);

/* Loops with subscribers: the hub posts messages only to those. Counted
 * by rt.c (sessions) and registry.c (plugin subscriptions, control loop). */
void whub_interest(struct wloop *l, int delta);

/* Drop history older than the TTL (called by a timer). */
void whub_sweep(void);

/* Counters for /metrics. */
void whub_stats(uint64_t *published, uint64_t *topics, uint64_t *retained);

#endif
