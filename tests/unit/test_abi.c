/* The loader's refusals: descriptor checks and their messages. */
#include "plugin.h"
#include "settings.h"
#include "unit.h"

#define WEFT_STR2(x) #x
#define WEFT_STR(x) WEFT_STR2(x)

static int h_init(weft_plugin *p)
{
    (void)p;
    return WEFT_OK;
}

static weft_plugin_desc good(void)
{
    weft_plugin_desc d = {WEFT_DESC_HEADER, .name = "hello",
                          .version = "1.2.3", .init = h_init};
    return d;
}

START_TEST(accepts_a_good_descriptor)
{
    weft_plugin_desc d = good();
    char why[256] = "";

    ck_assert_int_eq(wplug_check_desc(&d, "hello", why, sizeof(why)), 0);
    /* a newer minor is accepted: feature tests use weft_api_has() */
    d.abi_minor = WEFT_ABI_MINOR + 5;
    ck_assert_int_eq(wplug_check_desc(&d, "hello", why, sizeof(why)), 0);
}
END_TEST

START_TEST(refusal_messages)
{
    weft_plugin_desc d;
    char why[256];

    ck_assert_int_eq(wplug_check_desc(NULL, "hello", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "weft_plugin_entry() returned NULL");

    d = good();
    d.abi_major = 2;
    d.abi_minor = 3;
    ck_assert_int_eq(wplug_check_desc(&d, "hello", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "plugin built for ABI major 2 (ABI 2.3), this weftd "
                          "provides ABI 1." WEFT_STR(WEFT_ABI_MINOR)
                          ": rebuild it against this SDK");

    d = good();
    d.struct_size = 8;
    ck_assert_int_eq(wplug_check_desc(&d, "hello", why, sizeof(why)), -1);
    ck_assert_ptr_nonnull(strstr(why, "descriptor is 8 bytes"));

    d = good();
    ck_assert_int_eq(wplug_check_desc(&d, "todo", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "descriptor name 'hello' does not match its section "
                          "[plugin.todo]");

    d = good();
    d.version = "";
    ck_assert_int_eq(wplug_check_desc(&d, "hello", why, sizeof(why)), -1);
    ck_assert_ptr_nonnull(strstr(why, "no version"));

    d = good();
    d.init = NULL;
    ck_assert_int_eq(wplug_check_desc(&d, "hello", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "descriptor has no init callback");
}
END_TEST

/* --check-config loads each descriptor and reports refusals in place. */
START_TEST(check_config_reports_broken_plugins)
{
    char text[2048], *p;
    struct wdiag d = {0};
    struct wsettings *s;
    int abi = 0, entry = 0, key = 0, value = 0;

    snprintf(text, sizeof(text),
             "[plugin.badabi]\npath = %s\nenabled = true\n"
             "[plugin.noentry]\npath = %s\nenabled = true\n"
             "[plugin.hello]\npath = %s\nenabled = true\ncolour = red\n"
             "max_sleep = forever\n",
             WEFT_TEST_BADABI, WEFT_TEST_NOENTRY, WEFT_TEST_HELLO);
    p = unit_tmpfile(text);
    s = wsettings_load(p, &d, &d);
    ck_assert_ptr_nonnull(s);
    wplug_check_config(s, &d);
    for (int i = 0; i < d.n; i++) {
        abi |= strstr(d.msgs[i], ":1: [plugin.badabi]: plugin built for ABI "
                                 "major 99") != NULL;
        entry |= strstr(d.msgs[i], ":4: [plugin.noentry]") != NULL &&
                 strstr(d.msgs[i], "has no symbol weft_plugin_entry") != NULL;
        key |= strstr(d.msgs[i], ":10: unknown key 'colour' in "
                                 "[plugin.hello]") != NULL;
        value |= strstr(d.msgs[i], ":11: [plugin.hello] max_sleep = "
                                   "'forever'") != NULL;
    }
    for (int i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    ck_assert(abi);
    ck_assert(entry);
    ck_assert(key);
    ck_assert(value);
    ck_assert_int_eq(d.n, 4);
    wsettings_free(s);
    wdiag_free(&d);
    unlink(p);
    free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("abi");

    tcase_add_test(tc, accepts_a_good_descriptor);
    tcase_add_test(tc, refusal_messages);
    tcase_add_test(tc, check_config_reports_broken_plugins);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
