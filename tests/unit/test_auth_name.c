/* Usernames and display names (auth_name.c, ICU): NFKC, UTS #39 checks and
 * the confusable skeleton that makes look-alikes collide. */
#include "unit.h"

#include "auth_name.h"

static void skel_of(const char *u, char *skel)
{
    char norm[WNAME_MAX];
    const char *why = wname_username(u, norm, skel);

    ck_assert_msg(why == NULL, "\"%s\" refused: %s", u, why);
}

START_TEST(lookalikes_share_a_skeleton)
{
    static const char *const like_admin[] = {
        "admin", "ADMIN", "Admin",
        "\xef\xbd\x81\xef\xbd\x84\xef\xbd\x8d\xef\xbd\x89\xef\xbd\x8e",
        "adrnin", "\xd0\xb0" "dmin"};
    char a[WNAME_MAX], b[WNAME_MAX], norm[WNAME_MAX], skel[WNAME_MAX];

    ck_assert_int_eq(wname_init(), 0);
    skel_of("admin", a);
    for (size_t i = 1; i < sizeof(like_admin) / sizeof(like_admin[0]); i++) {
        if (wname_username(like_admin[i], norm, b) != NULL)
            continue; /* refused outright is fine too */
        ck_assert_msg(strcmp(a, b) == 0, "\"%s\": skeleton \"%s\", not \"%s\"",
                      like_admin[i], b, a);
    }
    /* fullwidth is stored as its NFKC form */
    ck_assert_ptr_null(wname_username(
        "\xef\xbd\x82\xef\xbd\x85\xef\xbd\x8e", norm, skel));
    ck_assert_str_eq(norm, "ben");
    skel_of("alice", b);
    ck_assert_str_ne(a, b);
    wname_fini();
}
END_TEST

START_TEST(usernames_refused)
{
    static const char *const bad[] = {
        "\xd0\xb0" "dmin",                         /* Cyrillic a + Latin */
        "admin\xe2\xa0\x80",                       /* U+2800 */
        "\xe3\x85\xa4\xe3\x85\xa4\xe3\x85\xa4",    /* U+3164 x3 */
        "ab\xe2\x80\x8b" "cd",                     /* zero-width space */
        "ab\xe2\x80\xae" "cd",                     /* RLO */
        "ab\xc2\xad" "cd",                         /* soft hyphen */
        "a b c", "ab", "a!b", "", "\xff\xfe\xfd",
        "abcdefghijklmnopqrstuvwxyz0123456"};      /* 33 */
    char norm[WNAME_MAX], skel[WNAME_MAX];

    ck_assert_int_eq(wname_init(), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(wname_username(bad[i], norm, skel) != NULL,
                      "username #%zu was accepted", i);
    ck_assert_ptr_null(wname_username("Zo\xc3\xab", norm, skel));
    ck_assert_ptr_null(wname_username("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                                      norm, skel));
    ck_assert_ptr_null(wname_username("a.b-c_d", norm, skel));
    wname_fini();
}
END_TEST

START_TEST(display_names)
{
    ck_assert_ptr_null(wname_display("Zo\xc3\xab Li"));
    ck_assert_ptr_null(wname_display("\xe6\x97\xa5\xe6\x9c\xac"));
    ck_assert_ptr_null(wname_display("Ann \xf0\x9f\x98\x80")); /* emoji */
    ck_assert_ptr_nonnull(wname_display("evil\xe2\x80\xae" "gpj"));
    ck_assert_ptr_nonnull(wname_display("a\xe2\x81\xa6" "b"));
    ck_assert_ptr_nonnull(wname_display("\xe3\x85\xa4"));
    ck_assert_ptr_nonnull(wname_display("\xe2\xa0\x80"));
    ck_assert_ptr_nonnull(wname_display("a\xe2\x80\x8b" "b"));
    ck_assert_ptr_nonnull(wname_display("a\tb"));
    ck_assert_ptr_nonnull(wname_display("   "));
    ck_assert_ptr_nonnull(wname_display(""));
    ck_assert_ptr_nonnull(wname_display(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth_name");
    TCase *tc = tcase_create("auth_name");

    tcase_add_test(tc, lookalikes_share_a_skeleton);
    tcase_add_test(tc, usernames_refused);
    tcase_add_test(tc, display_names);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
