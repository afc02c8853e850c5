/* db_cancel.h - query cancellation on threads of its own.
 *
 * PQcancel blocks on a round trip to the server (forever, if the server is
 * stopped); libpq 15 has no non-blocking form. The pool's loops hand it
 * here instead of to the shared worker pool, so a stalled server never
 * takes the threads that serve static files or hash passwords. The queue
 * is bounded: a cancellation that cannot be queued or does not finish in
 * time makes the loop drop the connection instead. */
#ifndef WEFT_HOST_DB_CANCEL_H
#define WEFT_HOST_DB_CANCEL_H

#include <libpq-fe.h>

struct wdbc_job;

/* Start `nthreads` threads with room for `queue_max` waiting jobs. */
int wdbc_start(int nthreads, int queue_max);
/* Stop: drop what waits, give running jobs up to `wait_ms` to end (a job
 * stuck on a stopped server is left behind, detached). */
void wdbc_stop(int wait_ms);

/* Queue a cancel request for the statement running on `pg` (called on the
 * connection's loop). NULL when it cannot be queued. */
struct wdbc_job *wdbc_submit(PGconn *pg);
/* Has the job ended (delivered, failed or dropped)? */
int wdbc_done(struct wdbc_job *j);
/* The caller lets go of the job; it is freed once its thread is done. */
void wdbc_drop(struct wdbc_job *j);

#endif
