/*
 * The SDK test harness's own helpers (sdk/harness/harness_user.c,
 * harness_sse.c) against a real weftd: accounts registered and signed in
 * with one call each, whose tokens /api/auth/me accepts; SSE streams that
 * receive what is published on their topics, from the admin endpoint
 * (no database) and from the todo plugin through its outbox; waits that
 * time out cleanly and leave the stream usable; refusals reported with
 * weftd's answer.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "it_common.h"

#ifndef IT_TODO_SO
#error "IT_TODO_SO must be defined by the build"
#endif
#ifndef IT_RTTEST_SO
#error "IT_RTTEST_SO must be defined by the build"
#endif

#define HT_OPEN_MS 10000
#define HT_EVENT_MS 10000 /* through the outbox relay, at most */
#define HT_QUIET_MS 700   /* a wait that must come back empty */

static weft_harness *ht_start_todo(void)
{
    char *extra = it_strf(WEFT_HARNESS_IDENTITY
                          "[plugin.todo]\npath = %s\nenabled = true\n",
                          IT_TODO_SO);
    weft_harness *h = it_start(extra, 2);

    free(extra);
    return h;
}

/* GET /api/auth/me with `auth`: the user's id, or -status. */
static long long ht_me(weft_harness *h, const char *auth)
{
    weft_hresp r;
    json_t *j;
    long long id;

    it_req(h, "GET", "/api/auth/me", auth, NULL, 0, &r);
    if (r.status != 200) {
        id = -r.status;
        weft_hresp_free(&r);
        return id;
    }
    j = it_json(&r);
    id = (long long)json_integer_value(
        json_object_get(json_object_get(j, "user"), "id"));
    json_decref(j);
    weft_hresp_free(&r);
    return id;
}

/* The JSON of an event's data (new reference); asserts it parses. */
static json_t *ht_data(const weft_harness_sse_event *ev)
{
    json_error_t err;
    json_t *j = json_loads(ev->data, 0, &err);

    ck_assert_msg(j != NULL, "event data is not JSON (%s): %s", err.text,
                  ev->data);
    return j;
}

/* POST /admin/publish {"topic": topic, "data": {"n": n}}. */
static void ht_publish(weft_harness *h, const char *topic, int n)
{
    char *hdr = it_strf("Authorization: Bearer %s\r\n"
                        "Content-Type: application/json\r\n",
                        weft_harness_admin_token(h)),
         *body = it_strf("{\"topic\":\"%s\",\"data\":{\"n\":%d}}", topic, n);
    weft_hresp r;

    it_req(h, "POST", "/admin/publish", hdr, body, strlen(body), &r);
    ck_assert_msg(r.status == 200 || r.status == 202,
                  "publish %s: %d %.300s", topic, r.status, r.body);
    weft_hresp_free(&r);
    free(hdr);
    free(body);
}

/* ---- accounts ------------------------------------------------------------ */

START_TEST(register_and_sign_in)
{
    weft_harness *h = ht_start_todo();
    weft_harness_user u, again, dup, bad;

    ck_assert_int_eq(weft_harness_user_register(h, "alice", NULL, &u), 0);
    ck_assert_int_gt(u.id, 0);
    ck_assert_str_eq(u.username, "alice");
    ck_assert_str_eq(u.email, "alice@example.com");
    ck_assert_ptr_nonnull(u.password);
    ck_assert_ptr_nonnull(u.refresh_token);
    ck_assert_msg(strncmp(u.auth, "Authorization: Bearer ", 22) == 0 &&
                      strstr(u.auth, u.access_token) != NULL,
                  "auth header: %s", u.auth);
    /* the token stands for the account it was given to */
    ck_assert_int_eq(ht_me(h, u.auth), u.id);
    ck_assert_int_eq(ht_me(h, NULL), -401);

    /* a new sign-in: another session, the same account */
    ck_assert_int_eq(weft_harness_user_login(h, u.email, u.password, &again),
                     0);
    ck_assert_int_eq(again.id, u.id);
    ck_assert_str_eq(again.username, "alice");
    ck_assert_str_ne(again.access_token, u.access_token);
    ck_assert_int_eq(ht_me(h, again.auth), u.id);

    /* what weftd refuses comes back as its status, `out` zeroed */
    ck_assert_int_eq(weft_harness_user_login(h, u.email, "wrong-password",
                                             &bad),
                     401);
    ck_assert_ptr_null(bad.access_token);
    ck_assert_int_eq(weft_harness_user_register(h, "alice", NULL, &dup), 409);
    ck_assert_ptr_null(dup.auth);
    ck_assert_int_eq(weft_harness_user_register(h, "bob", "short", &dup), 400);

    /* a body of one's own: quotes and non-ASCII go through as they are */
    ck_assert_int_eq(
        weft_harness_user_register_json(
            h,
            "{\"email\":\"c@example.com\",\"username\":\"carol\","
            "\"display_name\":\"Carol \\\"C\\\" Ünal\","
            "\"password\":\"carol-password\"}",
            &dup),
        0);
    ck_assert_str_eq(dup.email, "c@example.com");
    ck_assert_str_eq(dup.password, "carol-password");
    ck_assert_int_eq(ht_me(h, dup.auth), dup.id);
    ck_assert_int_ne(dup.id, u.id);

    weft_harness_user_free(&u);
    weft_harness_user_free(&again);
    weft_harness_user_free(&dup);
    weft_harness_user_free(&bad); /* zeroed: harmless */
    it_stop_ok(h);
}
END_TEST

/* ---- SSE ------------------------------------------------------------------ */

START_TEST(sse_todo_event)
{
    weft_harness *h = ht_start_todo();
    weft_harness_user u, other;
    weft_harness_sse *s = NULL;
    weft_harness_sse_event ev;
    weft_hresp r, refused;
    char *topic, *theirs, *hdr;
    json_t *m;
    long long t0;

    ck_assert_int_eq(weft_harness_user_register(h, "dora", NULL, &u), 0);
    ck_assert_int_eq(weft_harness_user_register(h, "erin", NULL, &other), 0);
    topic = it_strf("todo.user.%lld", u.id);
    theirs = it_strf("todo.user.%lld", other.id);

    /* refusals: weftd's status and answer, no stream */
    ck_assert_int_eq(weft_harness_sse_open(h, topic, NULL, HT_OPEN_MS, &s,
                                           &refused),
                     401);
    ck_assert_ptr_null(s);
    it_assert_error(&refused, 401, "unauthorized");
    weft_hresp_free(&refused);
    ck_assert_int_eq(weft_harness_sse_open(h, theirs, u.access_token,
                                           HT_OPEN_MS, &s, NULL),
                     403);
    ck_assert_ptr_null(s);

    ck_assert_int_eq(weft_harness_sse_open(h, topic, u.access_token,
                                           HT_OPEN_MS, &s, NULL),
                     0);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(weft_harness_sse_client(s)[0] != '\0',
                  "no client id from \"connected\"");

    /* nothing published yet: the wait comes back empty, on time */
    t0 = it_now_ms();
    ck_assert_int_eq(weft_harness_sse_next(s, "message", HT_QUIET_MS, &ev), 1);
    ck_assert_ptr_null(ev.event);
    ck_assert_int_ge(it_now_ms() - t0, HT_QUIET_MS - 50);
    ck_assert_int_lt(it_now_ms() - t0, HT_QUIET_MS + 5000);

    /* a list added by the same user reaches the stream */
    hdr = it_strf("%sContent-Type: application/json\r\n", u.auth);
    it_req(h, "POST", "/api/todo/lists", hdr, "{\"title\":\"groceries\"}",
           21, &r);
    free(hdr);
    ck_assert_msg(r.status == 201, "create list: %d %.300s", r.status,
                  r.body);
    weft_hresp_free(&r);
    ck_assert_int_eq(weft_harness_sse_next(s, "message", HT_EVENT_MS, &ev), 0);
    ck_assert_str_eq(ev.event, "message");
    ck_assert_msg(ev.id != NULL && strchr(ev.id, '-') != NULL,
                  "message without an <epoch>-<offset> id");
    ck_assert_str_eq(weft_harness_sse_last_id(s), ev.id);
    m = ht_data(&ev);
    ck_assert_str_eq(it_jstr(m, "topic"), topic);
    ck_assert_msg(strstr(ev.data, "groceries") != NULL,
                  "the event does not carry the list: %s", ev.data);
    json_decref(m);
    weft_harness_sse_event_free(&ev);

    /* after the event, quiet again */
    ck_assert_int_eq(weft_harness_sse_next(s, "message", HT_QUIET_MS, &ev), 1);

    weft_harness_sse_close(s);
    free(topic);
    free(theirs);
    weft_harness_user_free(&u);
    weft_harness_user_free(&other);
    it_stop_ok(h);
}
END_TEST

/* Without the database: the admin publishes on public topics; a pattern
 * (with its '>' sent percent-encoded) and a plain topic on one stream. */
START_TEST(sse_public_topics)
{
    char *extra = it_strf("[database]\nenabled = false\n"
                          "[plugin.rttest]\npath = %s\nenabled = true\n",
                          IT_RTTEST_SO);
    weft_harness *h = it_start(extra, 2);
    weft_harness_sse *s = NULL, *late = NULL;
    weft_harness_sse_event ev;
    json_t *m;
    char *last;

    ck_assert_int_eq(weft_harness_sse_open(h, "rttest.public.>,rttest.public.a,"
                                              "rttest.public.a",
                                           NULL, HT_OPEN_MS, &s, NULL),
                     0);
    ck_assert_int_eq(weft_harness_sse_next(s, NULL, HT_QUIET_MS, &ev), 1);
    ht_publish(h, "rttest.public.b.c", 1);
    ck_assert_int_eq(weft_harness_sse_next(s, "message", HT_EVENT_MS, &ev), 0);
    m = ht_data(&ev);
    ck_assert_str_eq(it_jstr(m, "topic"), "rttest.public.b.c");
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(m, "data"), "n")),
        1);
    json_decref(m);
    weft_harness_sse_event_free(&ev);
    last = strdup(weft_harness_sse_last_id(s));
    ck_assert_ptr_nonnull(last);

    /* events come in order, each once per stream */
    ht_publish(h, "rttest.public.a", 2);
    ht_publish(h, "rttest.public.a", 3);
    for (int n = 2; n <= 3; n++) {
        ck_assert_int_eq(weft_harness_sse_next(s, "message", HT_EVENT_MS, &ev),
                         0);
        m = ht_data(&ev);
        ck_assert_int_eq(json_integer_value(json_object_get(
                             json_object_get(m, "data"), "n")),
                         n);
        json_decref(m);
        weft_harness_sse_event_free(&ev);
    }
    ck_assert_int_eq(weft_harness_sse_next(s, "message", HT_QUIET_MS, &ev), 1);
    ck_assert_str_ne(weft_harness_sse_last_id(s), last);

    /* a topic nobody declared */
    ck_assert_int_eq(weft_harness_sse_open(h, "nobody.here", NULL, HT_OPEN_MS,
                                           &late, NULL),
                     404);
    ck_assert_ptr_null(late);

    /* the stream ends with weftd: -1, not a timeout */
    weft_harness_sse_close(s);
    ck_assert_int_eq(weft_harness_sse_open(h, "rttest.public.a", NULL,
                                           HT_OPEN_MS, &late, NULL),
                     0);
    ck_assert_int_eq(weft_harness_signal(h, SIGTERM), 0);
    ck_assert_int_eq(weft_harness_sse_next(late, NULL, 30000, &ev), -1);
    weft_harness_sse_close(late);
    free(last);
    free(extra);
    it_stop_ok(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration_harness");
    TCase *tc = tcase_create("harness");
    static const char *const clean[] = {"WEFT_AUTH_", "WEFT_DATABASE_",
                                        "WEFT_PLUGIN_TODO_", NULL};

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, register_and_sign_in);
    tcase_add_test(tc, sse_todo_event);
    tcase_add_test(tc, sse_public_topics);
    suite_add_tcase(s, tc);
    return it_run_suite_clean(s, clean);
}
