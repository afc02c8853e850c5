/* Per-address accounting: connection and stream limits, the reserve for
 * light addresses, the new-connection token bucket, IPv6 by /64, and the
 * entries released again. */
#include <pthread.h>

#include "peer.h"
#include "unit.h"

static struct wproxy_addr ip(const char *s)
{
    struct wproxy_addr a;

    ck_assert(wproxy_parse_ip(s, strlen(s), &a) == 0);
    return a;
}

static void init(int conns, int streams, int rate, int burst, int global,
                 int reserved)
{
    struct wpeer_conf c = {0};

    c.max_conns = conns;
    c.max_streams = streams;
    c.rate = rate;
    c.burst = burst;
    c.global_max = global;
    c.reserved = reserved;
    ck_assert_int_eq(wpeer_init(&c), 0);
}

START_TEST(per_address_connections)
{
    struct wproxy_addr a = ip("127.0.0.1"), b = ip("127.0.0.2");

    init(3, 0, 0, 1, 1000, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wpeer_conn_take(&a, i + 1, 1, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 4, 1, 0), WPEER_CONNS);
    ck_assert_int_eq(wpeer_conn_take(&b, 4, 1, 0), WPEER_OK);
    wpeer_conn_drop(&a, 0);
    ck_assert_int_eq(wpeer_conn_take(&a, 4, 1, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 5, 1, 0), WPEER_CONNS);
    /* a mapped IPv4 address is the same client */
    struct wproxy_addr m = ip("::ffff:127.0.0.1");
    ck_assert_int_eq(wpeer_conn_take(&m, 5, 1, 0), WPEER_CONNS);
    wpeer_shutdown();
}
END_TEST

START_TEST(ipv6_by_64)
{
    struct wproxy_addr a = ip("2001:db8:1:2::1"), b = ip("2001:db8:1:2:ffff::9"),
                       c = ip("2001:db8:1:3::1");

    init(2, 0, 0, 1, 1000, 0);
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&b, 2, 1, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 3, 1, 0), WPEER_CONNS);
    ck_assert_int_eq(wpeer_conn_take(&c, 3, 1, 0), WPEER_OK);
    wpeer_shutdown();
}
END_TEST

START_TEST(reserve_for_light_addresses)
{
    struct wproxy_addr heavy = ip("192.0.2.1"), light = ip("192.0.2.2");
    int in_use = 0;

    /* 100 in all, the last 10 kept */
    init(95, 0, 0, 1, 100, 10);
    while (wpeer_conn_take(&heavy, in_use + 1, 1, 0) == WPEER_OK)
        in_use++;
    ck_assert_int_eq(in_use, 90);
    ck_assert_int_eq(wpeer_conn_take(&heavy, in_use + 1, 1, 0), WPEER_RESERVE);
    for (int i = 0; i < WPEER_LIGHT; i++)
        ck_assert_int_eq(wpeer_conn_take(&light, ++in_use, 1, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&light, in_use + 1, 1, 0), WPEER_RESERVE);
    wpeer_shutdown();
}
END_TEST

START_TEST(new_connection_rate)
{
    struct wproxy_addr a = ip("198.51.100.7"), b = ip("198.51.100.8");

    /* 10 per second, 5 at once */
    init(0, 0, 10, 5, 1000, 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 1000), WPEER_OK);
        wpeer_conn_drop(&a, 1000);
    }
    /* closing them gave nothing back: the bucket counts arrivals */
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 1000), WPEER_RATE);
    ck_assert_int_eq(wpeer_conn_take(&b, 1, 1, 1000), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 1099), WPEER_RATE);
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 1100), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 1100), WPEER_RATE);
    /* after a second, the whole burst again but no more */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 60000), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 60000), WPEER_RATE);
    wpeer_shutdown();
}
END_TEST

START_TEST(streams)
{
    struct wproxy_addr a = ip("203.0.113.1"), b = ip("203.0.113.2");

    init(0, 2, 0, 1, 1000, 0);
    ck_assert_int_eq(wpeer_stream_take(&a, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_stream_take(&a, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_stream_take(&a, 0), WPEER_STREAMS);
    ck_assert_int_eq(wpeer_stream_take(&b, 0), WPEER_OK);
    wpeer_stream_drop(&a, 0);
    ck_assert_int_eq(wpeer_stream_take(&a, 0), WPEER_OK);
    wpeer_shutdown();
}
END_TEST

START_TEST(refusals_rendered)
{
    struct wproxy_addr a = ip("203.0.113.1");
    struct evbuffer *b = evbuffer_new();
    char *s;

    init(1, 0, 0, 1, 1000, 0);
    wpeer_refused(WPEER_CONNS, &a, 0);
    wpeer_refused(WPEER_CONNS, &a, 1);
    wpeer_refused(WPEER_STREAMS, &a, 2);
    evbuffer_add(b, "", 1);
    wpeer_render(b);
    evbuffer_add(b, "", 1);
    s = (char *)evbuffer_pullup(b, -1) + 1;
    ck_assert_ptr_nonnull(
        strstr(s, "weft_http_refused_total{reason=\"per_address\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(s, "weft_http_refused_total{reason=\"streams\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(s, "weft_http_refused_total{reason=\"rate\"} 0\n"));
    evbuffer_free(b);
    wpeer_shutdown();
}
END_TEST

struct thr {
    int base;
};

static void *hammer(void *arg)
{
    struct thr *t = arg;
    char s[32];

    for (int round = 0; round < 200; round++)
        for (int i = 0; i < 50; i++) {
            struct wproxy_addr a;
            snprintf(s, sizeof(s), "10.%d.0.%d", t->base, i);
            ck_assert(wproxy_parse_ip(s, strlen(s), &a) == 0);
            if (wpeer_conn_take(&a, 1, 1, round) == WPEER_OK)
                wpeer_conn_drop(&a, round);
        }
    return NULL;
}

START_TEST(threads_balance)
{
    pthread_t th[4];
    struct thr t[4];
    struct wproxy_addr a = ip("10.1.0.1");

    init(1, 0, 0, 1, 1000, 0);
    for (int i = 0; i < 4; i++) {
        t[i].base = i % 2; /* two threads per address set: contention */
        pthread_create(&th[i], NULL, hammer, &t[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* every take was dropped again: the limit of one is free */
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 0), WPEER_OK);
    ck_assert_int_eq(wpeer_conn_take(&a, 1, 1, 0), WPEER_CONNS);
    wpeer_shutdown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("peer");
    TCase *tc = tcase_create("peer");

    tcase_add_test(tc, per_address_connections);
    tcase_add_test(tc, ipv6_by_64);
    tcase_add_test(tc, reserve_for_light_addresses);
    tcase_add_test(tc, new_connection_rate);
    tcase_add_test(tc, streams);
    tcase_add_test(tc, refusals_rendered);
    tcase_add_test(tc, threads_balance);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
