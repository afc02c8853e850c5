/* The SDK's inline wrappers against an older host: a call added after the
 * host's ABI minor answers WEFT_ENOSYS or its neutral value instead of
 * reading past the end of the host's (shorter) function table. */
#include <weft/weft.h>

#include "unit.h"

/* Where each minor's table ended: the first member of the next minor. */
#define END_1_0 offsetof(weft_api, db_query)
#define END_1_1 offsetof(weft_api, topic)
#define END_1_2 offsetof(weft_api, on_signup)

/* A handle of any kind: it only begins with the API pointer. */
struct fake {
    const weft_api *api;
};

/* A table that says it is `size` bytes. Every member past it is NULL, so
 * a wrapper that calls one without checking crashes the test (Check runs
 * each test in a child and reports the signal). */
static weft_api *old_table(size_t size)
{
    weft_api *a = calloc(1, sizeof(*a));

    ck_assert_ptr_nonnull(a);
    a->abi_major = 1;
    a->abi_minor = size == END_1_0 ? 0 : size == END_1_1 ? 1 : 2;
    a->struct_size = (uint32_t)size;
    return a;
}

static void noop_db(weft_req *r, const weft_db_res *res, void *arg)
{
    (void)r, (void)res, (void)arg;
}
static void noop_tx(weft_req *r, weft_tx *tx, const weft_db_res *res,
                    void *arg)
{
    (void)r, (void)tx, (void)res, (void)arg;
}
static void noop_ev(weft_plugin *p, const char *t, const char *d, size_t n,
                    uint64_t o, void *arg)
{
    (void)p, (void)t, (void)d, (void)n, (void)o, (void)arg;
}
static void noop_signup(weft_req *r, weft_tx *tx, int64_t u, json_t *b,
                        void *arg)
{
    (void)r, (void)tx, (void)u, (void)b, (void)arg;
}

static void db_calls_answer_enosys(size_t size)
{
    struct fake f = {old_table(size)};
    weft_req *r = (weft_req *)&f;
    weft_tx *tx = (weft_tx *)&f;
    const weft_db_res *res = (const weft_db_res *)&f;
    const char *p1 = "1";
    json_t *j;

    ck_assert_int_eq(weft_db_query(r, "SELECT 1", 1, &p1, noop_db, NULL),
                     WEFT_ENOSYS);
    ck_assert_int_eq(weft_tx_begin(r, noop_tx, NULL), WEFT_ENOSYS);
    ck_assert_int_eq(weft_tx_query(tx, "SELECT 1", 0, NULL, noop_tx, NULL),
                     WEFT_ENOSYS);
    ck_assert_int_eq(weft_tx_end(tx, 1, noop_tx, NULL), WEFT_ENOSYS);
    ck_assert_int_eq(weft_db_ok(res), 0);
    ck_assert_str_eq(weft_db_error(res), "no result");
    ck_assert_ptr_null(weft_db_sqlstate(res));
    ck_assert_int_eq(weft_db_rows(res), 0);
    ck_assert_int_eq(weft_db_cols(res), 0);
    ck_assert_ptr_null(weft_db_colname(res, 0));
    ck_assert_ptr_null(weft_db_value(res, 0, 0));
    ck_assert_int_eq(weft_db_isnull(res, 0, 0), 1);
    ck_assert_ptr_null(weft_db_json(res, 0));
    j = weft_db_json(res, -1);
    ck_assert(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    ck_assert_int_eq(weft_db_reply_error(r, res), WEFT_ENOSYS);
    ck_assert_int_eq(weft_db_reply_error(r, NULL), WEFT_ENOSYS);
    ck_assert_int_eq(weft_req_user(r), 0);
    ck_assert_int_eq(weft_req_has_role(r, "admin"), 0);
    ck_assert_int_eq(weft_user_profile(r, 1, noop_db, NULL), WEFT_ENOSYS);
    free((void *)f.api);
}

static void bus_calls_answer_enosys(size_t size)
{
    static const weft_ws_handlers h = {sizeof(h), NULL, NULL, NULL};
    struct fake f = {old_table(size)};
    weft_plugin *p = (weft_plugin *)&f;
    weft_tx *tx = (weft_tx *)&f;
    weft_ws *ws = (weft_ws *)&f;
    json_t *d = json_object();

    ck_assert_int_eq(weft_topic(p, "x.>", WEFT_TOPIC_PUBLIC, NULL),
                     WEFT_ENOSYS);
    ck_assert_int_eq(weft_publish(p, "x.y", d), WEFT_ENOSYS);
    ck_assert_int_eq(weft_subscribe(p, "x.>", noop_ev, NULL), WEFT_ENOSYS);
    ck_assert_int_eq(weft_tx_publish(tx, "x.y", d, noop_tx, NULL),
                     WEFT_ENOSYS);
    ck_assert_int_eq(weft_ws_route(p, "/api/x/ws", 0, &h), WEFT_ENOSYS);
    ck_assert_ptr_null(weft_ws_plugin(ws));
    ck_assert_int_eq(weft_ws_send(ws, "x", 1, 0), WEFT_ENOSYS);
    ck_assert_int_eq(weft_ws_close(ws, 1000, NULL), WEFT_ENOSYS);
    ck_assert_int_eq(weft_ws_user(ws), 0);
    ck_assert_str_eq(weft_ws_id(ws), "");
    ck_assert_int_eq(weft_ws_subscribe(ws, "x.y"), WEFT_ENOSYS);
    json_decref(d);
    free((void *)f.api);
}

static void signup_calls_answer_enosys(size_t size)
{
    struct fake f = {old_table(size)};

    ck_assert_int_eq(weft_on_signup((weft_plugin *)&f, noop_signup, NULL),
                     WEFT_ENOSYS);
    ck_assert_int_eq(weft_signup_done((weft_req *)&f, 0, NULL, NULL),
                     WEFT_ENOSYS);
    free((void *)f.api);
}

START_TEST(host_1_0)
{
    db_calls_answer_enosys(END_1_0);
    bus_calls_answer_enosys(END_1_0);
    signup_calls_answer_enosys(END_1_0);
}
END_TEST

START_TEST(host_1_1)
{
    bus_calls_answer_enosys(END_1_1);
    signup_calls_answer_enosys(END_1_1);
}
END_TEST

START_TEST(host_1_2)
{
    signup_calls_answer_enosys(END_1_2);
}
END_TEST

/* A table cut inside a member (a host whose table ends mid-pointer
 * cannot exist, but the check must still be on the member's end). */
START_TEST(a_member_must_fit_whole)
{
    struct fake f = {old_table(END_1_0 + sizeof(void *) - 1)};

    ck_assert(!weft_api_has((weft_req *)&f, db_query));
    ck_assert_int_eq(weft_db_query((weft_req *)&f, "SELECT 1", 0, NULL,
                                   noop_db, NULL),
                     WEFT_ENOSYS);
    free((void *)f.api);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sdkguard");
    TCase *tc = tcase_create("sdkguard");

    tcase_add_test(tc, host_1_0);
    tcase_add_test(tc, host_1_1);
    tcase_add_test(tc, host_1_2);
    tcase_add_test(tc, a_member_must_fit_whole);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
