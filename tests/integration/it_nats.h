/*
 * it_nats.h - a real nats-server for the tests, one process per it_nats:
 * $WEFT_NATS_SERVER if set, else Debian's /usr/sbin/nats-server (package
 * nats-server), else /usr/bin/nats-server.
 *
 * Helpers assert (Check's ck_assert_msg) instead of returning errors; a
 * failure message quotes the end of the server's log. The server listens on
 * 127.0.0.1 only, without JetStream, and writes its log to a private temporary
 * directory. It gets PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that
 * started it, so start and restart it from the test's own thread (in Check's
 * fork mode, the test process's main thread), not from a helper thread that
 * ends earlier. If a test fails before it_nats_stop(), a watchdog process
 * removes the temporary directory once the test process is gone (kept when
 * WEFT_HARNESS_KEEP is set, as with it_common.c).
 */
#ifndef WEFT_IT_NATS_H
#define WEFT_IT_NATS_H

/* Start nats-server on 127.0.0.1 at a free port (or `port` if > 0, to restart on the same port) in its own temp dir; wait until it accepts TCP. */
typedef struct it_nats it_nats;
it_nats *it_nats_start(int port);
int it_nats_port(const it_nats *n);
char *it_nats_url(const it_nats *n); /* malloc'd "nats://127.0.0.1:PORT" */
void it_nats_kill(it_nats *n);  /* SIGKILL and reap, keep the struct (port stays known) */
int it_nats_restart(it_nats *n); /* start again on the same port */
void it_nats_stop(it_nats *n);  /* SIGTERM, reap, remove temp dir, free */

/* "Accepts TCP" means: a connection gets the server's INFO line. A restart
 * kills a still running server first and returns 0 (failures assert). A
 * free port is picked by binding port 0; if another process takes it before
 * the server does, another port is tried. it_nats_stop(NULL) does nothing. */

#endif /* WEFT_IT_NATS_H */
