/* db_listen.h - LISTEN/NOTIFY for the host's own use, on the control loop:
 * one dedicated connection, re-established (and re-LISTENed) after any
 * failure. Payloads are wake-ups, never data (8000-byte limit, and lost
 * while the listener is away). */
#ifndef WEFT_HOST_DB_LISTEN_H
#define WEFT_HOST_DB_LISTEN_H

struct wloop;

typedef void (*wdbl_fn)(const char *channel, const char *payload, void *arg);

/* Register before wdbl_start(). Channel: [a-z0-9_]{1,63}. */
int wdbl_listen(const char *channel, wdbl_fn fn, void *arg);
int wdbl_start(struct wloop *ctl, const char *conninfo);
void wdbl_stop(void);
/* Is the listening connection up? */
int wdbl_up(void);

#endif
