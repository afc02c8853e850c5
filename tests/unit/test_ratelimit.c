/* Token buckets: bursts, refusals, refill on a simulated clock, bounds. */
#include <math.h>
#include <pthread.h>

#include "ratelimit.h"
#include "unit.h"

START_TEST(burst_then_refusal)
{
    struct wrl *rl = wrl_new(100);
    double ra = -1;

    ck_assert_ptr_nonnull(rl);
    /* 5 at once, then one every 2 s (0.5 per second) */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 0.5, 5, 100.0, &ra),
                         1);
        ck_assert(ra == 0);
    }
    ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 0.5, 5, 100.0, &ra), 0);
    ck_assert_double_eq_tol(ra, 2.0, 1e-9);
    /* refused takes cost nothing: half a period later, half the wait */
    ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 0.5, 5, 101.0, &ra), 0);
    ck_assert_double_eq_tol(ra, 1.0, 1e-9);
    ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 0.5, 5, 102.0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 0.5, 5, 102.0, &ra), 0);
    ck_assert_double_eq_tol(ra, 2.0, 1e-9);
    ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 0.5, 5, 102.0, NULL),
                     0);
    wrl_free(rl);
}
END_TEST

START_TEST(refill_over_time)
{
    struct wrl *rl = wrl_new(100);
    double ra;
    int allowed = 0;

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wrl_take(rl, "k", 1, 3, 0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "k", 1, 3, 0, &ra), 0);
    /* a long pause refills to the burst, never beyond */
    for (int i = 0; i < 10; i++)
        allowed += wrl_take(rl, "k", 1, 3, 1000, &ra);
    ck_assert_int_eq(allowed, 3);
    /* steady state: 10 s at 1/s lets 10 through, one per second */
    allowed = 0;
    for (int t = 1; t <= 10; t++)
        for (int i = 0; i < 4; i++)
            allowed += wrl_take(rl, "k", 1, 3, 1000 + t, &ra);
    ck_assert_int_eq(allowed, 10);
    /* a clock that steps back neither refills nor breaks the bucket */
    ck_assert_int_eq(wrl_take(rl, "k", 1, 3, 500, &ra), 0);
    ck_assert(ra > 0 && ra <= 1.0);
    ck_assert_int_eq(wrl_take(rl, "k", 1, 3, 1011, &ra), 1);
    wrl_free(rl);
}
END_TEST

START_TEST(keys_independent)
{
    struct wrl *rl = wrl_new(100);
    double ra;

    ck_assert_int_eq(wrl_take(rl, "login:acct:a@b.c", 1, 1, 0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "login:acct:a@b.c", 1, 1, 0, &ra), 0);
    ck_assert_int_eq(wrl_take(rl, "login:acct:a@b.d", 1, 1, 0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "login:ip:127.0.0.1", 1, 1, 0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "login:acct:a@b.c", 1, 1, 0.5, &ra), 0);
    ck_assert_double_eq_tol(ra, 0.5, 1e-9);
    ck_assert_uint_eq(wrl_count(rl), 3);
    wrl_free(rl);
}
END_TEST

START_TEST(bad_arguments)
{
    struct wrl *rl = wrl_new(10);
    char big[WRL_KEY_MAX + 2];
    double ra;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(wrl_take(rl, "", 1, 1, 0, &ra), -1);
    ck_assert_int_eq(wrl_take(rl, big, 1, 1, 0, &ra), -1);
    big[WRL_KEY_MAX] = '\0';
    ck_assert_int_eq(wrl_take(rl, big, 1, 1, 0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "k", 0, 1, 0, &ra), -1);
    ck_assert_int_eq(wrl_take(rl, "k", -1, 1, 0, &ra), -1);
    ck_assert_int_eq(wrl_take(rl, "k", 1, 0.5, 0, &ra), -1);
    ck_assert_int_eq(wrl_take(rl, "k", NAN, 1, 0, &ra), -1);
    ck_assert_int_eq(wrl_take(rl, "k", 1, 1, NAN, &ra), -1);
    ck_assert_ptr_null(wrl_new(0));
    wrl_free(rl);
}
END_TEST

START_TEST(eviction_bounds_memory)
{
    struct wrl *rl = wrl_new(100);
    char key[64];
    double ra;

    /* "hot" is drained and kept in use: it must survive the flood */
    ck_assert_int_eq(wrl_take(rl, "hot", 1e-3, 1, 0, &ra), 1);
    ck_assert_int_eq(wrl_take(rl, "cold", 1e-3, 1, 0, &ra), 1);
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "login:ip:10.0.%d.%d", i / 256, i % 256);
        ck_assert_int_eq(wrl_take(rl, key, 1, 1, 1, &ra), 1);
        ck_assert_uint_le(wrl_count(rl), 100);
        if (i % 50 == 0)
            ck_assert_int_eq(wrl_take(rl, "hot", 1e-3, 1, 1, &ra), 0);
    }
    ck_assert_uint_eq(wrl_count(rl), 100);
    ck_assert_int_eq(wrl_take(rl, "hot", 1e-3, 1, 1, &ra), 0);
    /* "cold" was least recently used: forgotten, so full again */
    ck_assert_int_eq(wrl_take(rl, "cold", 1e-3, 1, 1, &ra), 1);
    /* the latest keys are still known */
    ck_assert_int_eq(wrl_take(rl, key, 1, 1, 1, &ra), 0);
    wrl_free(rl);
}
END_TEST

struct hammer {
    struct wrl *rl;
    int allowed;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char key[32];

    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i % 300);
        if (wrl_take(h->rl, "shared", 1e-9, 1000, 0, NULL) == 1)
            h->allowed++;
        wrl_take(h->rl, key, 1, 1, 0, NULL);
    }
    return NULL;
}

START_TEST(threads_share_buckets)
{
    struct wrl *rl = wrl_new(64);
    struct hammer h[4];
    pthread_t t[4];
    int total = 0;

    for (int i = 0; i < 4; i++) {
        h[i].rl = rl;
        h[i].allowed = 0;
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += h[i].allowed;
    }
    /* "shared" is touched every other call, so the churn of other keys
     * never makes it the oldest: exactly one burst, no refill, was granted
     * however the threads interleaved */
    ck_assert_int_eq(total, 1000);
    ck_assert_uint_le(wrl_count(rl), 64);
    wrl_free(rl);
}
END_TEST

/* wrl_level measures use without taking anything. */
START_TEST(level_without_taking)
{
    struct wrl *rl = wrl_new(16);

    ck_assert_ptr_nonnull(rl);
    ck_assert(wrl_level(rl, "k", 1, 5, 100) == 5); /* unknown: full */
    ck_assert_int_eq(wrl_take(rl, "k", 1, 5, 100, NULL), 1);
    ck_assert_int_eq(wrl_take(rl, "k", 1, 5, 100, NULL), 1);
    ck_assert(wrl_level(rl, "k", 1, 5, 100) == 3);
    ck_assert(wrl_level(rl, "k", 1, 5, 100) == 3); /* took nothing */
    ck_assert(wrl_level(rl, "k", 1, 5, 101.5) == 4.5);
    ck_assert(wrl_level(rl, "k", 1, 5, 1000) == 5);
    ck_assert(wrl_level(rl, "", 1, 5, 100) < 0);
    ck_assert(wrl_level(rl, "k", 0, 5, 100) < 0);
    wrl_free(rl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("ratelimit");

    tcase_add_test(tc, burst_then_refusal);
    tcase_add_test(tc, refill_over_time);
    tcase_add_test(tc, keys_independent);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, eviction_bounds_memory);
    tcase_add_test(tc, threads_share_buckets);
    tcase_add_test(tc, level_without_taking);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
