/* Cookies: parsing what browsers send, building safe Set-Cookie values. */
#include "cookie.h"
#include "unit.h"

START_TEST(get_multiple)
{
    char v[64];
    const char *h = "sid=abc123; csrf=tok-1;theme=dark ;  lang = en ";

    ck_assert_int_eq(wcookie_get(h, "sid", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "abc123");
    ck_assert_int_eq(wcookie_get(h, "csrf", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "tok-1");
    ck_assert_int_eq(wcookie_get(h, "theme", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "dark");
    ck_assert_int_eq(wcookie_get(h, "lang", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "en");
    /* names are case-sensitive and matched whole */
    ck_assert_int_eq(wcookie_get(h, "SID", v, sizeof(v)), 1);
    ck_assert_int_eq(wcookie_get(h, "si", v, sizeof(v)), 1);
    ck_assert_int_eq(wcookie_get(h, "id", v, sizeof(v)), 1);
    /* the first of two equal names wins */
    ck_assert_int_eq(wcookie_get("a=1; a=2", "a", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "1");
    /* '=' inside the value is kept, an empty value is a value */
    ck_assert_int_eq(wcookie_get("t=YQ==; e=", "t", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "YQ==");
    ck_assert_int_eq(wcookie_get("t=YQ==; e=", "e", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "");
    /* a pair without '=' is skipped, not mistaken for a name */
    ck_assert_int_eq(wcookie_get("junk; x=1", "junk", v, sizeof(v)), 1);
    ck_assert_int_eq(wcookie_get("junk; x=1", "x", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "1");
    /* a value is not searched for names */
    ck_assert_int_eq(wcookie_get("a=b=c", "b", v, sizeof(v)), 1);
}
END_TEST

START_TEST(get_quoted)
{
    char v[64];

    ck_assert_int_eq(wcookie_get("q=\"hello\"; r=1", "q", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "hello");
    ck_assert_int_eq(wcookie_get("q=\"\"", "q", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "");
    /* a lone or inner quote is not a cookie-octet */
    ck_assert_int_eq(wcookie_get("q=\"abc", "q", v, sizeof(v)), -1);
    ck_assert_int_eq(wcookie_get("q=a\"b\"", "q", v, sizeof(v)), -1);
    ck_assert_int_eq(wcookie_get("q=\"a\"b\"\"", "q", v, sizeof(v)), -1);
}
END_TEST

START_TEST(get_missing_and_oversized)
{
    char v[8];

    ck_assert_int_eq(wcookie_get(NULL, "a", v, sizeof(v)), 1);
    ck_assert_int_eq(wcookie_get("", "a", v, sizeof(v)), 1);
    ck_assert_int_eq(wcookie_get(";;; ;", "a", v, sizeof(v)), 1);
    ck_assert_int_eq(wcookie_get("b=1", "a", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(wcookie_get("a=1234567", "a", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "1234567");
    ck_assert_int_eq(wcookie_get("a=12345678", "a", v, sizeof(v)), -1);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(wcookie_get("a=1", "a", v, 0), -1);
    /* bytes a browser never sends in a value */
    ck_assert_int_eq(wcookie_get("a=x y", "a", v, sizeof(v)), -1);
    ck_assert_int_eq(wcookie_get("a=x\\y", "a", v, sizeof(v)), -1);
    ck_assert_int_eq(wcookie_get("a=x,y", "a", v, sizeof(v)), -1);
    ck_assert_int_eq(wcookie_get("a=x\x01y", "a", v, sizeof(v)), -1);
}
END_TEST

START_TEST(set_values)
{
    char b[256];

    ck_assert_int_eq(wcookie_set(b, sizeof(b), "sid", "abc", 3600,
                                 WCOOKIE_HTTPONLY | WCOOKIE_SECURE |
                                     WCOOKIE_SAMESITE_STRICT |
                                     WCOOKIE_PATH_ROOT),
                     0);
    ck_assert_str_eq(
        b, "sid=abc; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Strict");
    ck_assert_int_eq(
        wcookie_set(b, sizeof(b), "csrf", "t0k", -1, WCOOKIE_SAMESITE_LAX), 0);
    ck_assert_str_eq(b, "csrf=t0k; SameSite=Lax");
    /* deletion */
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "sid", "", 0, WCOOKIE_PATH_ROOT),
                     0);
    ck_assert_str_eq(b, "sid=; Max-Age=0; Path=/");
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "__Host-sid", "v", 60,
                                 WCOOKIE_SECURE | WCOOKIE_PATH_ROOT),
                     0);
    ck_assert_str_eq(b, "__Host-sid=v; Max-Age=60; Path=/; Secure");
    /* what we build, we read back */
    {
        char v[16];
        ck_assert_int_eq(wcookie_set(b, sizeof(b), "k", "a-b_c.d~e!", -1, 0),
                         0);
        ck_assert_int_eq(wcookie_get(b, "k", v, sizeof(v)), 0);
        ck_assert_str_eq(v, "a-b_c.d~e!");
    }
}
END_TEST

START_TEST(set_refusals)
{
    char b[64];
    const char *bad_values[] = {
        "a;b",
        "a; Domain=evil.example",
        "a\r\nSet-Cookie: x=1",
        "a\nb",
        "a\rb",
        "a b",
        "a,b",
        "\"quoted\"",
        "a\\b",
        "a\x7f",
        "caf\xc3\xa9",
    };

    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        ck_assert_int_eq(wcookie_set(b, sizeof(b), "x", bad_values[i], 1, 0),
                         -1);
        ck_assert_str_eq(b, "");
    }
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "", "v", 1, 0), -1);
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "a b", "v", 1, 0), -1);
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "a=b", "v", 1, 0), -1);
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "a;b", "v", 1, 0), -1);
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "a\r\nb", "v", 1, 0), -1);
    ck_assert_int_eq(
        wcookie_set(b, sizeof(b), "x", "v", 1,
                    WCOOKIE_SAMESITE_LAX | WCOOKIE_SAMESITE_STRICT),
        -1);
    /* prefix rules */
    ck_assert_int_eq(wcookie_set(b, sizeof(b), "__Secure-x", "v", 1, 0), -1);
    ck_assert_int_eq(
        wcookie_set(b, sizeof(b), "__Host-x", "v", 1, WCOOKIE_SECURE), -1);
    /* too small: refused whole, never truncated */
    ck_assert_int_eq(wcookie_set(b, 10, "name", "value", 1, 0), -1);
    ck_assert_str_eq(b, "");
    ck_assert_int_eq(wcookie_set(b, 24, "name", "value", 60, WCOOKIE_HTTPONLY),
                     -1);
    ck_assert_str_eq(b, "");
    ck_assert_int_eq(wcookie_set(b, 0, "name", "value", 1, 0), -1);
}
END_TEST

START_TEST(constant_time_eq)
{
    ck_assert_int_eq(wct_eq("abcdef", "abcdef"), 1);
    ck_assert_int_eq(wct_eq("abcdef", "abcdeg"), 0);
    ck_assert_int_eq(wct_eq("abcdef", "bbcdef"), 0);
    ck_assert_int_eq(wct_eq("abcdef", "abcde"), 0);
    ck_assert_int_eq(wct_eq("abc", "abcdef"), 0);
    /* a missing cookie never equals a missing header */
    ck_assert_int_eq(wct_eq("", ""), 0);
    ck_assert_int_eq(wct_eq(NULL, NULL), 0);
    ck_assert_int_eq(wct_eq("a", NULL), 0);
    ck_assert_int_eq(wct_eq(NULL, "a"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cookie");
    TCase *tc = tcase_create("cookie");

    tcase_add_test(tc, get_multiple);
    tcase_add_test(tc, get_quoted);
    tcase_add_test(tc, get_missing_and_oversized);
    tcase_add_test(tc, set_values);
    tcase_add_test(tc, set_refusals);
    tcase_add_test(tc, constant_time_eq);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
