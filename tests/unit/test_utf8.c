/* UTF-8 validation: every class of ill-formed input is refused. */
#include "unit.h"
#include "utf8.h"

#define OK(lit) ck_assert_int_eq(wutf8_valid(lit, sizeof(lit) - 1), 1)
#define BAD(lit) ck_assert_int_eq(wutf8_valid(lit, sizeof(lit) - 1), 0)

START_TEST(well_formed)
{
    OK("");
    OK("plain ascii ~\x7f");
    OK("caf\xc3\xa9");      /* U+00E9 */
    OK("\xc2\x80");         /* U+0080, smallest 2-byte */
    OK("\xdf\xbf");         /* U+07FF */
    OK("\xe0\xa0\x80");     /* U+0800, smallest 3-byte */
    OK("\xe2\x82\xac");     /* U+20AC euro */
    OK("\xed\x9f\xbf");     /* U+D7FF, just below surrogates */
    OK("\xee\x80\x80");     /* U+E000, just above */
    OK("\xef\xbf\xbf");     /* U+FFFF */
    OK("\xf0\x90\x80\x80"); /* U+10000, smallest 4-byte */
    OK("\xf0\x9f\x98\x80"); /* U+1F600 emoji */
    OK("\xf4\x8f\xbf\xbf"); /* U+10FFFF, the last */
    ck_assert_int_eq(wutf8_valid("a\0b", 3), 1); /* NUL is UTF-8 */
}
END_TEST

START_TEST(overlongs)
{
    BAD("\xc0\x80"); /* NUL as 2 bytes (Modified UTF-8) */
    BAD("\xc0\xaf"); /* '/' */
    BAD("\xc1\xbf");
    BAD("\xe0\x80\x80");
    BAD("\xe0\x80\xaf");
    BAD("\xe0\x9f\xbf"); /* U+07FF in 3 bytes */
    BAD("\xf0\x80\x80\x80");
    BAD("\xf0\x8f\xbf\xbf");         /* U+FFFF in 4 bytes */
    BAD("\xf8\x88\x80\x80\x80");     /* 5-byte form */
    BAD("\xfc\x84\x80\x80\x80\x80"); /* 6-byte form */
}
END_TEST

START_TEST(surrogates_and_range)
{
    BAD("\xed\xa0\x80");             /* U+D800 */
    BAD("\xed\xad\xbf");             /* U+DB7F */
    BAD("\xed\xb0\x80");             /* U+DC00 */
    BAD("\xed\xbf\xbf");             /* U+DFFF */
    BAD("\xed\xa0\xbd\xed\xb8\x80"); /* CESU-8 pair for U+1F600 */
    BAD("\xf4\x90\x80\x80");         /* U+110000 */
    BAD("\xf5\x80\x80\x80");
    BAD("\xfe");
    BAD("\xff");
}
END_TEST

START_TEST(truncated_and_stray)
{
    BAD("\xc3");
    BAD("abc\xc3");
    BAD("\xe2\x82");
    BAD("\xf0\x9f\x98");
    BAD("\xf0\x9f");
    BAD("\x80"); /* lone continuation */
    BAD("a\xbf"
        "b");
    BAD("\xc3\xa9\xa9"); /* one continuation too many */
    BAD("\xe2\x28\xa1"); /* second byte not a continuation */
    BAD("\xe2\x82\x28"); /* third byte not a continuation */
    BAD("\xf0\x9f\x98\x28");
    BAD("\xc3"
        "a");
    /* a valid sequence cut by the length, not by the bytes */
    ck_assert_int_eq(wutf8_valid("\xe2\x82\xac", 2), 0);
    ck_assert_int_eq(wutf8_valid("\xe2\x82\xac", 0), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("utf8");

    tcase_add_test(tc, well_formed);
    tcase_add_test(tc, overlongs);
    tcase_add_test(tc, surrogates_and_range);
    tcase_add_test(tc, truncated_and_stray);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
