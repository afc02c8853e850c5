/*
 * it_common.h - helpers shared by the integration tests.
 *
 * The paths below come from tests/integration/CMakeLists.txt as compile
 * definitions. Every helper that can fail asserts (Check's ck_assert), so a
 * test reads as a sequence of expectations.
 */
#ifndef WEFT_IT_COMMON_H
#define WEFT_IT_COMMON_H

#include <stddef.h>

#include <check.h>
#include <jansson.h>

#include <weft/harness.h>
#include <weft/weft.h>

#ifndef IT_HELLO_SO
#error "IT_HELLO_SO must be defined by the build"
#endif

/* "1.1": the ABI of the SDK the in-tree plugins are built with. */
#define IT_STR2(x) #x
#define IT_STR(x) IT_STR2(x)
#define IT_ABI_STRING IT_STR(WEFT_ABI_MAJOR) "." IT_STR(WEFT_ABI_MINOR)

/* Per-request read timeout of the helpers. */
#define IT_READ_MS 10000

/* Sleep for ms milliseconds. */
void it_sleep_ms(long ms);
long long it_now_ms(void);

/* asprintf that asserts. */
char *it_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "[plugin.hello]\npath = <so>\nenabled = true\n" followed by `more`. */
char *it_hello_section(const char *so_path, const char *more);

/* Start weftd with the hello plugin (built one) plus `extra`; asserts. */
weft_harness *it_start_hello(const char *extra, int threads);
/* Start with `ini_extra`; asserts. */
weft_harness *it_start(const char *ini_extra, int threads);

/* Rewrite the config with `ini_extra` (weft_harness_write_config); asserts. */
void it_write_config(weft_harness *h, const char *ini_extra);

/* Stop it and assert that weftd exited with status 0. */
void it_stop_ok(weft_harness *h);

/* One request on a new connection; asserts there was no transport error. */
void it_req(weft_harness *h, const char *method, const char *path,
            const char *headers, const void *body, size_t len,
            weft_hresp *out);
void it_get(weft_harness *h, const char *path, weft_hresp *out);
/* GET and assert the status. */
void it_get_status(weft_harness *h, const char *path, int status);

/* Send raw bytes on a new connection and read one response. */
void it_raw(weft_harness *h, const char *bytes, size_t len, weft_hresp *out);

/* Parse a body as JSON; asserts it parses. json_decref() the result. */
json_t *it_json(const weft_hresp *r);

/* Assert the response is status + {"error":{"code":code,"message":...}}
 * with a JSON content type. */
void it_assert_error(const weft_hresp *r, int status, const char *code);

/* String member of an object, or NULL. */
const char *it_jstr(json_t *obj, const char *key);

/* GET /api/hello/ping: assert 200 and return the version (malloc'd). */
char *it_ping_version(weft_harness *h);

/* GET /api/plugins and return the entry for `name` (new reference), or NULL
 * when it is not listed. */
json_t *it_plugin_entry(weft_harness *h, const char *name);

/*
 * Find a metric sample "name{labels} value" whose labels include every
 * `label="value"` pair in the NULL-terminated `labels`. Returns 1 and sets
 * *value when found.
 */
int it_metric(const char *text, const char *name, const char *const *labels,
              double *value);

/* Does `hay` contain `needle`, ignoring case? */
int it_contains_ci(const char *hay, const char *needle);

/* Does the response header `name` exist and contain `needle` (case-
 * insensitive)? */
int it_header_has(const weft_hresp *r, const char *name, const char *needle);

/* Run argv (no shell); capture stdout and stderr (malloc'd). Returns the
 * waitpid status. */
int it_run(char *const argv[], char **out, char **err);

/* The weftd binary. */
const char *it_weftd(void);

/* A fresh private temporary directory (malloc'd) and its removal. */
char *it_mkdtemp(void);
void it_rmtree(const char *dir);

/* Copy a file; asserts. */
void it_copy_file(const char *from, const char *to);

/* Write a file; asserts. */
void it_write_file(const char *path, const char *text);

/* Run a suite in fork mode and return the process exit status. */
int it_run_suite(Suite *s);

/* Run a suite whose configs say everything they mean: environment
 * variables starting with any of `prefixes` (NULL-terminated, e.g.
 * "WEFT_DATABASE_") are removed first, so a developer's shell cannot
 * change what a test checks. The database stays as the configs say. */
int it_run_suite_clean(Suite *s, const char *const *prefixes);

#endif /* WEFT_IT_COMMON_H */
