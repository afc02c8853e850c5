/* Config parsing: values, locations of problems, environment overrides. */
#include <stdint.h>

#include "config.h"
#include "settings.h"
#include "unit.h"

/* Does some message in `d` contain `needle`? */
static int has_msg(const struct wdiag *d, const char *needle)
{
    for (int i = 0; i < d->n; i++)
        if (strstr(d->msgs[i], needle) != NULL)
            return 1;
    return 0;
}

START_TEST(defaults_and_values)
{
    char *p = unit_tmpfile("[server]\n"
                           "listen = 0.0.0.0:9090\n"
                           "threads = 3\n"
                           "max_body = 2m\n"
                           "max_uri = 4k\n"
                           "header_timeout = 2s\n"
                           "keepalive_timeout = 1500\n"
                           "access_log = off\n"
                           "[log]\nlevel = debug\n");
    struct wdiag d = {0}, pd = {0};
    struct wsettings *s = wsettings_load(p, &d, &pd);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(d.n, 0);
    ck_assert_str_eq(s->listen_host, "0.0.0.0");
    ck_assert_int_eq(s->port, 9090);
    ck_assert_int_eq(s->threads, 3);
    ck_assert_int_eq(s->max_body, 2 * 1024 * 1024);
    ck_assert_int_eq(s->max_uri, 4096);
    ck_assert_int_eq(s->header_timeout, 2000);
    ck_assert_int_eq(s->keepalive_timeout, 1500);
    ck_assert_int_eq(s->access_log, 0);
    ck_assert_int_eq(s->log_level, 3);
    /* untouched keys keep their defaults */
    ck_assert_int_eq(s->max_headers, 100);
    ck_assert_int_eq(s->workers, 4);
    /* data_dir is relative to the config file's directory */
    ck_assert_str_eq(s->data_dir, "/tmp/var");
    wsettings_free(s);
    wdiag_free(&d);
    wdiag_free(&pd);
    unlink(p);
    free(p);
}
END_TEST

START_TEST(problems_have_locations)
{
    char *p = unit_tmpfile("; comment\n"
                           "[server]\n"
                           "threads = lots\n"
                           "listen = nowhere\n"
                           "colour = blue\n"
                           "[servre]\n"
                           "x = 1\n"
                           "[plugin.ghost]\n"
                           "path = /nonexistent/ghost.so\n"
                           "enabled = true\n"
                           "[plugin.Bad_Name]\n"
                           "enabled = maybe\n");
    struct wdiag d = {0}, pd = {0};
    struct wsettings *s = wsettings_load(p, &d, &pd);
    char want[256];

    ck_assert_ptr_nonnull(s);
    snprintf(want, sizeof(want), "%s:3: [server] threads = 'lots'", p);
    ck_assert_msg(has_msg(&d, want), "missing: %s", want);
    snprintf(want, sizeof(want), "%s:4: [server] listen", p);
    ck_assert_msg(has_msg(&d, want), "missing: %s", want);
    snprintf(want, sizeof(want), "%s:5: unknown key 'colour' in [server]", p);
    ck_assert_msg(has_msg(&d, want), "missing: %s", want);
    snprintf(want, sizeof(want), "%s:6: unknown section [servre]", p);
    ck_assert_msg(has_msg(&d, want), "missing: %s", want);
    /* plugin problems are kept apart: they never stop the host */
    snprintf(want, sizeof(want), "%s:9: [plugin.ghost] path: plugin file "
                                 "/nonexistent/ghost.so not found", p);
    ck_assert_msg(has_msg(&pd, want), "missing: %s", want);
    snprintf(want, sizeof(want), "%s:11: [plugin.Bad_Name]", p);
    ck_assert_msg(has_msg(&pd, want), "missing: %s", want);
    ck_assert_int_eq(d.n, 4);
    wsettings_free(s);
    wdiag_free(&d);
    wdiag_free(&pd);
    unlink(p);
    free(p);
}
END_TEST

START_TEST(syntax_error_and_repeats)
{
    char *p = unit_tmpfile("[server]\nthreads = 2\nthreads = 3\nno equals "
                           "sign here\n");
    struct wdiag d = {0};
    struct wsettings *s = wsettings_load(p, &d, &d);
    char want[256];

    ck_assert_ptr_nonnull(s);
    snprintf(want, sizeof(want), "%s:3: key 'threads' repeated in [server] "
                                 "(first at line 2)", p);
    ck_assert_msg(has_msg(&d, want), "missing: %s", want);
    snprintf(want, sizeof(want), "%s:4: syntax error", p);
    ck_assert_msg(has_msg(&d, want), "missing: %s", want);
    ck_assert_int_eq(s->threads, 2);
    wsettings_free(s);
    wdiag_free(&d);
    unlink(p);
    free(p);
}
END_TEST

START_TEST(missing_file)
{
    struct wdiag d = {0};
    struct wsettings *s = wsettings_load("/nonexistent/weft.ini", &d, &d);

    ck_assert_ptr_null(s);
    ck_assert_int_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.msgs[0], "cannot read"));
    wdiag_free(&d);
}
END_TEST

START_TEST(environment_overrides)
{
    char *p = unit_tmpfile("[server]\nthreads = 2\n"
                           "[plugin.event-bridge]\npath = /x.so\n"
                           "enabled = true\n");
    struct wdiag d = {0}, pd = {0};
    struct wsettings *s;
    struct wcfg_entry *e;

    setenv("WEFT_SERVER_THREADS", "7", 1);
    setenv("WEFT_ADMIN_TOKEN", "from-env", 1);
    setenv("WEFT_PLUGIN_EVENT_BRIDGE_ENABLED", "false", 1);
    setenv("WEFT_PLUGIN_EVENT_BRIDGE_COLOUR", "red", 1);
    s = wsettings_load(p, &d, &pd);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(d.n, 0);
    ck_assert_int_eq(s->threads, 7);
    ck_assert_str_eq(s->admin_token, "from-env");
    ck_assert_int_eq(s->nplugins, 1);
    ck_assert_str_eq(s->plugins[0].name, "event-bridge");
    ck_assert_int_eq(s->plugins[0].enabled, 0);
    /* a plugin's own key is resolved when the plugin asks for it */
    e = wcfg_lookup(s->cfg, "plugin.event-bridge", "colour");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->value, "red");
    ck_assert_str_eq(e->origin, "environment");
    /* a bad value from the environment is reported as such */
    setenv("WEFT_SERVER_THREADS", "many", 1);
    wsettings_free(s);
    wdiag_free(&d);
    s = wsettings_load(p, &d, &pd);
    ck_assert_int_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.msgs[0], "environment: [server] threads"));
    wsettings_free(s);
    wdiag_free(&d);
    wdiag_free(&pd);
    unlink(p);
    free(p);
}
END_TEST

START_TEST(env_names)
{
    char buf[128];

    wcfg_env_name("server", "max_body", buf, sizeof(buf));
    ck_assert_str_eq(buf, "WEFT_SERVER_MAX_BODY");
    wcfg_env_name("plugin.event-bridge", "nats_url", buf, sizeof(buf));
    ck_assert_str_eq(buf, "WEFT_PLUGIN_EVENT_BRIDGE_NATS_URL");
    wcfg_env_name("plugin.hello", "greeting", buf, 12);
    ck_assert_str_eq(buf, "WEFT_PLUGIN"); /* truncated, still terminated */
}
END_TEST

START_TEST(value_parsing)
{
    int64_t v;
    const char *why;

    ck_assert_int_eq(wcfg_parse_value(WCFG_SIZE, "16k", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 16384);
    ck_assert_int_eq(wcfg_parse_value(WCFG_SIZE, "1G", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 1073741824LL);
    ck_assert_int_eq(wcfg_parse_value(WCFG_SIZE, "1t", 0, 0, &v, &why), -1);
    ck_assert_int_eq(
        wcfg_parse_value(WCFG_SIZE, "99999999999999999g", 0, 0, &v, &why), -1);
    ck_assert_int_eq(wcfg_parse_value(WCFG_MS, "2m", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 120000);
    ck_assert_int_eq(wcfg_parse_value(WCFG_MS, "250ms", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 250);
    ck_assert_int_eq(wcfg_parse_value(WCFG_MS, "1h", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 3600000);
    ck_assert_int_eq(wcfg_parse_value(WCFG_MS, "30d", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 2592000000LL);
    ck_assert_int_eq(wcfg_parse_value(WCFG_MS, "1w", 0, 0, &v, &why), -1);
    ck_assert_int_eq(wcfg_parse_value(WCFG_INT, "12", 1, 10, &v, &why), -1);
    ck_assert_str_eq(why, "out of range");
    ck_assert_int_eq(wcfg_parse_value(WCFG_INT, "-3", -5, 5, &v, &why), 0);
    ck_assert_int_eq(v, -3);
    ck_assert_int_eq(wcfg_parse_value(WCFG_INT, "3x", 0, 0, &v, &why), -1);
    ck_assert_int_eq(wcfg_parse_value(WCFG_INT, "", 0, 0, &v, &why), -1);
    ck_assert_int_eq(wcfg_parse_value(WCFG_INT, " 3", 0, 0, &v, &why), -1);
    ck_assert_int_eq(wcfg_parse_value(WCFG_BOOL, "Yes", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(wcfg_parse_value(WCFG_BOOL, "off", 0, 0, &v, &why), 0);
    ck_assert_int_eq(v, 0);
    ck_assert_int_eq(wcfg_parse_value(WCFG_BOOL, "maybe", 0, 0, &v, &why), -1);
}
END_TEST

START_TEST(sample_config_is_valid)
{
    /* The shipped config/weft.ini must parse with no host-level problem. */
    char path[1024];
    struct wdiag d = {0}, pd = {0};
    struct wsettings *s;
    const char *src = getenv("WEFT_SOURCE_DIR");

    ck_assert_ptr_nonnull(src);
    snprintf(path, sizeof(path), "%s/config/weft.ini", src);
    s = wsettings_load(path, &d, &pd);
    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.msgs[i]);
    ck_assert_int_eq(d.n, 0);
    ck_assert_ptr_nonnull(wsettings_plugin(s, "hello"));
    wsettings_free(s);
    wdiag_free(&d);
    wdiag_free(&pd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");

    tcase_add_test(tc, defaults_and_values);
    tcase_add_test(tc, problems_have_locations);
    tcase_add_test(tc, syntax_error_and_repeats);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, environment_overrides);
    tcase_add_test(tc, env_names);
    tcase_add_test(tc, value_parsing);
    tcase_add_test(tc, sample_config_is_valid);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
