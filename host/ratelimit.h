/* ratelimit.h - token buckets keyed by string, bounded, thread-safe. */
#ifndef WEFT_HOST_RATELIMIT_H
#define WEFT_HOST_RATELIMIT_H

#include <stddef.h>

#define WRL_KEY_MAX 512 /* longer keys are refused */

struct wrl;

/*
 * A table of at most `max_entries` buckets (e.g. 100000). When full, the
 * least recently used bucket is forgotten; forgetting one only gives its
 * key a fresh burst, and reaching it takes max_entries other keys, each of
 * which the caller should itself limit (login keys by IP and by account).
 * Keys are hashed with SipHash under a random key, so chosen keys cannot
 * pile up in one chain. NULL when out of memory or max_entries is 0.
 */
struct wrl *wrl_new(size_t max_entries);
void wrl_free(struct wrl *rl);

/*
 * Take one token from the bucket of `key` ("login:ip:127.0.0.1"), which
 * refills at `rate_per_s` up to `burst` (a new key starts full). `now` is
 * in seconds from a monotonic clock (wrl_now()); time never runs backwards
 * for a bucket. Returns 1 when allowed, 0 when refused with
 * *retry_after_s set to the wait until one token is back, -1 for a bad
 * argument (rate <= 0, burst < 1, key empty or too long) or no memory;
 * callers should treat -1 as refused. `retry_after_s` may be NULL.
 */
int wrl_take(struct wrl *rl, const char *key, double rate_per_s, double burst,
             double now, double *retry_after_s);

/*
 * The tokens the bucket of `key` holds at `now` (refilled, clamped to
 * `burst`; `burst` for a key it does not hold), taking none: a measure of
 * recent use. -1 for a bad argument.
 */
double wrl_level(struct wrl *rl, const char *key, double rate_per_s,
                 double burst, double now);

/* Buckets currently held. */
size_t wrl_count(struct wrl *rl);

/* CLOCK_MONOTONIC in seconds. */
double wrl_now(void);

#endif
