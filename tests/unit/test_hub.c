/* The hub's history and recovery rules: offsets, replay of exactly what
 * was missed, recovered=false when anything above the position is gone. */
#include <stdlib.h>

#include "host.h"
#include "hub.h"
#include "unit.h"

static struct whost hub_host; /* no loops: nothing is posted */

static void hub_setup(int size, int64_t ttl_ms, int max_topics)
{
    struct whub_cfg c = {size, ttl_ms, max_topics};

    whost_g = &hub_host;
    ck_assert_int_eq(whub_init(&c), 0);
}

static uint64_t pub(const char *topic, const char *data)
{
    uint64_t off = whub_publish(topic, data, strlen(data), 1);

    ck_assert_uint_gt(off, 0);
    return off;
}

/* Replay `pattern` after `since` in our epoch; returns the count. */
static size_t replay(const char *pattern, uint64_t since, int *recovered,
                     uint64_t *first)
{
    struct wmsg **v;
    size_t n;
    uint64_t floor;

    ck_assert_int_eq(whub_start(pattern, whub_epoch(), since, 1000, &v, &n,
                                recovered, &floor),
                     0);
    if (first != NULL)
        *first = n > 0 ? v[0]->seq : 0;
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_gt(v[i]->seq, v[i - 1]->seq); /* in order */
    for (size_t i = 0; i < n; i++)
        wmsg_unref(v[i]);
    free(v);
    return n;
}

START_TEST(wire_forms)
{
    struct wmsg **v;
    size_t n;
    int rec;
    uint64_t floor, off;
    char expect[256];

    hub_setup(10, 60000, 100);
    pub("a.first", "0"); /* offset 0 means "no position": start above it */
    off = pub("a.b", "{\"x\":1}");
    ck_assert_int_eq(whub_start("a.b", whub_epoch(), off - 1, 10, &v, &n,
                                &rec, &floor),
                     0);
    ck_assert_uint_eq(n, 1);
    snprintf(expect, sizeof(expect),
             "{\"type\":\"message\",\"topic\":\"a.b\",\"epoch\":\"%s\","
             "\"offset\":%llu,\"data\":{\"x\":1}}",
             whub_epoch(), (unsigned long long)off);
    ck_assert_str_eq(v[0]->json, expect);
    /* The SSE event and the WebSocket frame carry the same JSON. */
    ck_assert_ptr_nonnull(strstr(v[0]->sse, expect));
    ck_assert_int_eq(strncmp(v[0]->sse, "id: ", 4), 0);
    ck_assert_uint_eq(v[0]->ws[0], 0x81);
    ck_assert_uint_eq(v[0]->ws[1], strlen(expect));
    ck_assert_int_eq(memcmp(v[0]->ws + 2, expect, strlen(expect)), 0);
    wmsg_unref(v[0]);
    free(v);
    whub_fini();
}
END_TEST

START_TEST(replay_exactly_missed)
{
    int rec;
    uint64_t first, mark;

    hub_setup(10, 60000, 100);
    pub("t.one", "1");
    mark = pub("t.one", "2");
    pub("t.two", "x"); /* another topic: not replayed */
    pub("t.one", "3");
    pub("t.one", "4");
    ck_assert_uint_eq(replay("t.one", mark, &rec, &first), 2);
    ck_assert_int_eq(rec, 1);
    ck_assert_uint_eq(first, mark + 2);
    ck_assert_uint_eq(replay("t.*", mark, &rec, NULL), 3);
    ck_assert_int_eq(rec, 1);
    ck_assert_uint_eq(replay("t.one", whub_offset(), &rec, NULL), 0);
    ck_assert_int_eq(rec, 1); /* nothing missed is a recovery too */
    whub_fini();
}
END_TEST

START_TEST(overflow_is_not_recovered)
{
    int rec;
    uint64_t mark;

    hub_setup(5, 60000, 100);
    mark = pub("t.one", "0");
    for (int i = 0; i < 5; i++)
        pub("t.one", "1");
    /* Six after the mark would be needed; the history keeps five. */
    ck_assert_uint_eq(replay("t.one", mark - 1, &rec, NULL), 0);
    ck_assert_int_eq(rec, 0);
    ck_assert_uint_eq(replay("t.one", mark, &rec, NULL), 5);
    ck_assert_int_eq(rec, 1);
    whub_fini();
}
END_TEST

START_TEST(foreign_positions)
{
    struct wmsg **v;
    size_t n;
    int rec;
    uint64_t floor, off;

    hub_setup(5, 60000, 100);
    off = pub("t.one", "0");
    ck_assert_int_eq(whub_start("t.one", "0000000000000000", off - 1, 10, &v,
                                &n, &rec, &floor),
                     0);
    ck_assert_int_eq(rec, 0); /* another epoch: a restart happened */
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(floor, off);
    ck_assert_int_eq(whub_start("t.one", whub_epoch(), off + 100, 10, &v, &n,
                                &rec, &floor),
                     0);
    ck_assert_int_eq(rec, 0); /* from the future */
    whub_fini();
}
END_TEST

START_TEST(topics_beyond_the_limit)
{
    int rec;
    uint64_t mark;

    hub_setup(5, 60000, 1);
    mark = pub("t.kept", "0");
    pub("t.lost", "1"); /* no room for its history */
    ck_assert_uint_eq(replay("t.lost", mark, &rec, NULL), 0);
    ck_assert_int_eq(rec, 0);
    whub_fini();
}
END_TEST

START_TEST(age_limit)
{
    int rec;
    uint64_t mark;

    hub_setup(5, 1, 100); /* 1 ms */
    mark = pub("t.one", "0");
    pub("t.one", "1");
    usleep(20000);
    whub_sweep();
    ck_assert_uint_eq(replay("t.one", mark, &rec, NULL), 0);
    ck_assert_int_eq(rec, 0); /* it expired and the topic was forgotten */
    pub("t.one", "2");        /* a new history: still not recovered */
    ck_assert_uint_eq(replay("t.one", mark, &rec, NULL), 0);
    ck_assert_int_eq(rec, 0);
    whub_fini();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("hub");

    tcase_add_test(tc, wire_forms);
    tcase_add_test(tc, replay_exactly_missed);
    tcase_add_test(tc, overflow_is_not_recovered);
    tcase_add_test(tc, foreign_positions);
    tcase_add_test(tc, topics_beyond_the_limit);
    tcase_add_test(tc, age_limit);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
