/* bus_nats.h - the bus across nodes: publishes go to NATS, messages from other nodes come back.
 *
 * One process-wide connection (nats.c 3.4, libnats), driven by a libevent loop
 * that this module owns and runs on its own thread, so neither the host's
 * loops nor NATS wait for each other. Every function is thread-safe.
 *
 * nats.c is a process-wide library: wnats_stop() tears it down
 * (nats_CloseAndWait), so nothing else in the process may still hold a nats.c
 * object then. The libevent adapter header of nats.c is included by
 * bus_nats.c only (it defines non-static functions). nats.c sets SIGPIPE to
 * SIG_IGN process-wide when it initialises.
 */
#ifndef WEFT_HOST_BUS_NATS_H
#define WEFT_HOST_BUS_NATS_H

#include <stddef.h>

typedef void (*wnats_recv_fn)(const char *topic, const char *data, size_t len);

/* Connect to `url` (e.g. "nats://127.0.0.1:4222"), subscribe to "<prefix>.>" and call `fn(topic, data, len)` for every
 * message published by OTHER nodes (use natsOptions_SetNoEcho so this node's own publishes do not come back), with
 * `topic` being the subject with "<prefix>." stripped. `fn` may be called on any thread (it is thread-safe).
 * Returns 0, or -1 with a logged reason. Must not block forever when the server is down at start: start anyway
 * (natsOptions_SetRetryOnFailedConnect(true, ...)) and keep reconnecting forever in the background.
 *
 * `data` is valid during the call only (not NUL-terminated in general: use
 * `len`). Calls come from nats.c's message delivery thread, one at a time,
 * in the order the server sent the messages. Reconnects every 250 ms (plus up to 100 ms of jitter);
 * the server is pinged every 10 s so a silent network failure is noticed. An
 * initial connect to a reachable server may take up to the 2 s connect timeout. */
int wnats_start(const char *url, const char *prefix, wnats_recv_fn fn);

/* Publish data on "<prefix>.<topic>"; any thread; never blocks on the network. While the server is away, nats.c
 * buffers (set the reconnect buffer to 8 MiB, natsOptions_SetReconnectBufSize); returns 0 or -1 when the buffer is full / not started.
 *
 * Also -1 for an empty topic or a message larger than the server's maximum
 * payload (1 MiB by default). Failures are counted; the first of a series is
 * logged. */
int wnats_publish(const char *topic, const char *data, size_t len);

/* 1 when connected now, 0 otherwise (for /readyz and /metrics). */
int wnats_connected(void);

/* Counters for /metrics: published, received, publish failures, reconnects.
 * Any pointer may be NULL. Not reset by wnats_stop(). */
void wnats_stats(unsigned long long *pub, unsigned long long *recv, unsigned long long *fail,
                 unsigned long long *reconnects);

/* Close and free everything (natsConnection_Destroy, nats_CloseAndWait per LIBRARY-NOTES); safe if never started.
 *
 * Publishes still buffered while connected are flushed first (up to 500 ms);
 * those buffered while disconnected are dropped. A running `fn` is waited for
 * (up to 5 s): once this returns, `fn` is not called any more. Call it before
 * libevent_global_shutdown(), never from inside `fn`. */
void wnats_stop(void);

#endif /* WEFT_HOST_BUS_NATS_H */
