/* worker.h - a bounded pool of threads for blocking work. */
#ifndef WEFT_HOST_WORKER_H
#define WEFT_HOST_WORKER_H

struct wpool;

struct wpool *wpool_start(int nthreads, int queue_max);
/* Queue fn(arg). Returns 0, or -1 when the queue is full or stopping. */
int wpool_submit(struct wpool *p, void (*fn)(void *), void *arg);
/* Run what is queued, then join the threads and free. */
void wpool_stop(struct wpool *p);

#endif
