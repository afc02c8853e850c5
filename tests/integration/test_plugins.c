/*
 * test_plugins.c - broken plugins beside a good one: a wrong ABI major and
 * a shared object without the entry symbol are refused with a clear reason,
 * both at run time (/api/plugins) and by --check-config, while hello serves.
 */
#include "it_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* 1-based line number of the first line of `text` equal to `line`. */
static int line_of(const char *text, const char *line)
{
    size_t len = strlen(line);
    const char *p = text;
    int n = 1;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            return n;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
        n++;
    }
    return 0;
}

/* Does stderr have a line "...weft.ini:N: ..." with N in [lo, hi] that
 * mentions `needle` (case-insensitive)? */
static int reported(const char *err, int lo, int hi, const char *needle)
{
    char *copy = strdup(err), *line, *save = NULL, tag[64];
    int n, found = 0;

    ck_assert_ptr_nonnull(copy);
    for (line = strtok_r(copy, "\n", &save); line != NULL && !found;
         line = strtok_r(NULL, "\n", &save)) {
        for (n = lo; n <= hi; n++) {
            snprintf(tag, sizeof(tag), "weft.ini:%d: ", n);
            if (strstr(line, tag) != NULL && it_contains_ci(line, needle))
                found = 1;
        }
    }
    free(copy);
    return found;
}

START_TEST(test_bad_plugins_refused)
{
    char *ini, *cfg, *out = NULL, *err = NULL;
    weft_harness *h;
    json_t *e;
    const char *le;
    int st, bad_lo, bad_hi, noe_lo, noe_hi;
    char *argv[4];

    ini = it_strf("[plugin.hello]\npath = %s\nenabled = true\n\n"
                  "[plugin.badabi]\npath = %s\nenabled = true\n\n"
                  "[plugin.noentry]\npath = %s\nenabled = true\n",
                  IT_HELLO_SO, IT_BADABI_SO, IT_NOENTRY_SO);
    h = it_start(ini, 2);
    free(ini);

    it_get_status(h, "/api/hello/ping", 200);

    e = it_plugin_entry(h, "hello");
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(it_jstr(e, "state"), "running");
    json_decref(e);

    e = it_plugin_entry(h, "badabi");
    ck_assert_msg(e != NULL, "badabi is not listed in /api/plugins");
    ck_assert_msg(it_jstr(e, "state") && !strcmp(it_jstr(e, "state"),
                                                 "failed"),
                  "badabi state: %s", it_jstr(e, "state"));
    ck_assert_msg(json_is_null(json_object_get(e, "version")),
                  "a plugin that never loaded has a version");
    le = it_jstr(e, "last_error");
    ck_assert_msg(le != NULL && it_contains_ci(le, "ABI") &&
                      strstr(le, "99") != NULL,
                  "badabi last_error does not mention ABI major 99: %s",
                  le ? le : "null");
    ck_assert_msg(strchr(le, '/') == NULL, "badabi last_error shows a path: %s",
                  le);
    json_decref(e);

    e = it_plugin_entry(h, "noentry");
    ck_assert_msg(e != NULL, "noentry is not listed in /api/plugins");
    ck_assert_msg(it_jstr(e, "state") && !strcmp(it_jstr(e, "state"),
                                                 "failed"),
                  "noentry state: %s", it_jstr(e, "state"));
    ck_assert(json_is_null(json_object_get(e, "version")));
    le = it_jstr(e, "last_error");
    ck_assert_msg(le != NULL && strstr(le, "weft_plugin_entry") != NULL,
                  "noentry last_error does not name the missing symbol: %s",
                  le ? le : "null");
    /* anonymous: no directory of the server's in the message */
    ck_assert_msg(strchr(le, '/') == NULL, "noentry last_error shows a path: %s",
                  le);
    json_decref(e);

    /* --check-config on the very same file reports both. */
    {
        FILE *f = fopen(weft_harness_config_path(h), "r");
        size_t cap = 1 << 16, len;

        ck_assert_ptr_nonnull(f);
        cfg = calloc(1, cap);
        ck_assert_ptr_nonnull(cfg);
        len = fread(cfg, 1, cap - 1, f);
        cfg[len] = '\0';
        fclose(f);
    }
    bad_lo = line_of(cfg, "[plugin.badabi]");
    noe_lo = line_of(cfg, "[plugin.noentry]");
    ck_assert(bad_lo > 0 && noe_lo > bad_lo);
    bad_hi = bad_lo + 2;
    noe_hi = noe_lo + 2;
    argv[0] = (char *)it_weftd();
    argv[1] = (char *)"--check-config";
    argv[2] = (char *)weft_harness_config_path(h);
    argv[3] = NULL;
    st = it_run(argv, &out, &err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
                  "--check-config with two broken plugins: status %d, "
                  "stderr:\n%s",
                  st, err);
    ck_assert_msg(reported(err, bad_lo, bad_hi, "99"),
                  "--check-config does not report badabi's ABI major at "
                  "weft.ini:%d..%d:\n%s",
                  bad_lo, bad_hi, err);
    ck_assert_msg(reported(err, noe_lo, noe_hi, "weft_plugin_entry"),
                  "--check-config does not report noentry's missing symbol "
                  "at weft.ini:%d..%d:\n%s",
                  noe_lo, noe_hi, err);
    ck_assert_msg(!reported(err, 1, bad_lo - 1, ""),
                  "--check-config reports problems in the good part:\n%s",
                  err);
    free(out);
    free(err);
    free(cfg);
    it_get_status(h, "/api/hello/ping", 200);
    it_stop_ok(h);
}
END_TEST

static Suite *plugins_suite(void)
{
    Suite *s = suite_create("integration_plugins");
    TCase *tc = tcase_create("plugins");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_bad_plugins_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return it_run_suite(plugins_suite());
}
