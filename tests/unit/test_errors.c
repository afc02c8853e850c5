/* Error bodies and label escaping: what clients and scrapers parse. */
#include <jansson.h>

#include "metrics.h"
#include "request.h"
#include "unit.h"

START_TEST(error_shape)
{
    size_t len = 0;
    char *s = werr_json("not_found", "no route for GET /x", &len);
    json_t *j, *e;
    json_error_t err;

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(len, strlen(s));
    ck_assert_str_eq(s, "{\"error\":{\"code\":\"not_found\",\"message\":\"no "
                        "route for GET /x\"}}");
    j = json_loads(s, 0, &err);
    ck_assert_ptr_nonnull(j);
    e = json_object_get(j, "error");
    ck_assert(json_is_object(e));
    ck_assert_int_eq(json_object_size(j), 1);
    ck_assert_int_eq(json_object_size(e), 2);
    json_decref(j);
    free(s);
}
END_TEST

START_TEST(error_escaping)
{
    char *s = werr_json("bad", "quote \" backslash \\ newline \n tab \t é",
                        NULL);
    json_t *j;
    json_error_t err;

    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(strchr(s, '\n'));
    j = json_loads(s, 0, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "error"),
                                          "message")),
        "quote \" backslash \\ newline \n tab \t é");
    json_decref(j);
    free(s);
    /* NULL message still yields a valid body */
    s = werr_json("x", NULL, NULL);
    ck_assert_str_eq(s, "{\"error\":{\"code\":\"x\",\"message\":\"\"}}");
    free(s);
}
END_TEST

START_TEST(error_invalid_utf8_message)
{
    /* A plugin passing invalid UTF-8 must not produce an invalid body. */
    char *s = werr_json("bad", "\xff\xfe", NULL);
    json_error_t err;
    json_t *j;

    ck_assert_ptr_nonnull(s);
    j = json_loads(s, 0, &err);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_string(
        json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
    free(s);
}
END_TEST

START_TEST(prometheus_labels)
{
    char buf[64];

    wmet_label(buf, sizeof(buf), "a\"b\\c\nd");
    ck_assert_str_eq(buf, "a\\\"b\\\\c\\nd");
    wmet_label(buf, 6, "abcdefgh");
    ck_assert_int_le(strlen(buf), 5);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");

    tcase_add_test(tc, error_shape);
    tcase_add_test(tc, error_escaping);
    tcase_add_test(tc, error_invalid_utf8_message);
    tcase_add_test(tc, prometheus_labels);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
