/*
 * test_hello - the template's own test: a real weftd with the hello plugin,
 * driven over HTTP. Copy it with the plugin and add a block per route.
 *
 * It needs nothing but the SDK: weft-harness (which starts weftd and speaks
 * HTTP) and jansson (to read the answers). The plugin to load is argv[1] or,
 * without an argument, the path the build baked in as HELLO_SO. The weftd
 * binary is the one installed with the SDK, or $WEFT_HARNESS_WEFTD.
 *
 *   ./test_hello [path/to/hello.so]
 *
 * Exit status 0 when every check passed; 1, with the reason and the tail of
 * weftd's log on stderr, at the first that did not.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath() */
#endif

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>
#include <weft/harness.h>

/* How much of the end of weftd's log a failed check shows. */
#define LOG_TAIL_BYTES 4096

/* The running weftd, so that a failed check can stop it and show its log. */
static weft_harness *harness;

/* Report a failed check, show weftd's log, stop weftd and exit 1. */
__attribute__((format(printf, 1, 2), noreturn)) static void
fail(const char *fmt, ...)
{
    va_list ap;
    char *log;
    size_t len;

    fputs("test_hello: FAIL: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);

    if (harness != NULL) {
        log = weft_harness_log(harness);
        if (log != NULL) {
            len = strlen(log);
            fprintf(stderr, "---- weftd log (%s), last bytes ----\n%s\n----\n",
                    weft_harness_log_path(harness),
                    len > LOG_TAIL_BYTES ? log + len - LOG_TAIL_BYTES : log);
            free(log);
        }
        weft_harness_stop(harness);
        harness = NULL;
    }
    exit(1);
}

/* Send one request and fail unless the answer has the expected status. */
static void request(const char *method, const char *path, const char *body,
                    int want_status, weft_hresp *out)
{
    const char *headers = body ? "Content-Type: application/json\r\n" : NULL;
    size_t len = body ? strlen(body) : 0;

    if (weft_harness_request(harness, method, path, headers, body, len, out))
        fail("%s %s: no answer (transport error)", method, path);
    if (out->status != want_status)
        fail("%s %s: status %d, want %d; body: %s", method, path, out->status,
             want_status, out->body);
}

/* Parse a response body as a JSON object, or fail. Caller json_decref()s. */
static json_t *body_json(const char *what, const weft_hresp *r)
{
    json_error_t err;
    json_t *j = json_loadb(r->body, r->body_len, 0, &err);

    if (j == NULL)
        fail("%s: body is not JSON (%s): %s", what, err.text, r->body);
    if (!json_is_object(j))
        fail("%s: body is not a JSON object: %s", what, r->body);
    return j;
}

/* GET /api/hello/ping names the plugin and its version, as JSON. */
static void test_ping(void)
{
    const char *what = "GET /api/hello/ping";
    char ctype[128];
    weft_hresp r;
    json_t *j, *v;

    request("GET", "/api/hello/ping", NULL, 200, &r);
    if (weft_hresp_header(&r, "Content-Type", ctype, sizeof(ctype)) == NULL ||
        strncmp(ctype, "application/json", strlen("application/json")) != 0)
        fail("%s: Content-Type is not application/json", what);
    j = body_json(what, &r);
    v = json_object_get(j, "plugin");
    if (!json_is_string(v) || strcmp(json_string_value(v), "hello") != 0)
        fail("%s: want \"plugin\":\"hello\" in %s", what, r.body);
    v = json_object_get(j, "version");
    if (!json_is_string(v) || json_string_length(v) == 0)
        fail("%s: want a non-empty \"version\" in %s", what, r.body);
    printf("ok - %s: plugin hello, version %s\n", what, json_string_value(v));
    json_decref(j);
    weft_hresp_free(&r);
}

/* POST /api/hello/echo answers {"echo": <the body>}. */
static void test_echo(void)
{
    const char *what = "POST /api/hello/echo";
    const char *sent = "{\"a\":1}";
    weft_hresp r;
    json_t *j, *want;

    request("POST", "/api/hello/echo", sent, 200, &r);
    j = body_json(what, &r);
    want = json_loads(sent, 0, NULL);
    if (want == NULL)
        fail("%s: out of memory", what);
    if (!json_equal(json_object_get(j, "echo"), want))
        fail("%s: want {\"echo\":%s}, got %s", what, sent, r.body);
    printf("ok - %s echoes %s\n", what, sent);
    json_decref(want);
    json_decref(j);
    weft_hresp_free(&r);
}

/* A body that is not JSON gets 400 and the platform's error object:
 * {"error": {"code": "...", "message": "..."}}. */
static void test_echo_bad_json(void)
{
    const char *what = "POST /api/hello/echo (bad JSON)";
    weft_hresp r;
    json_t *j, *e;

    request("POST", "/api/hello/echo", "{\"a\":", 400, &r);
    j = body_json(what, &r);
    e = json_object_get(j, "error");
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "code")) ||
        !json_is_string(json_object_get(e, "message")))
        fail("%s: want {\"error\":{\"code\":..,\"message\":..}}, got %s", what,
             r.body);
    printf("ok - %s: 400 %s\n", what,
           json_string_value(json_object_get(e, "code")));
    json_decref(j);
    weft_hresp_free(&r);
}

int main(int argc, char **argv)
{
    const char *so = argc > 1 ? argv[1] : NULL;
    char path[PATH_MAX], ini[PATH_MAX + 64];
    int status;

    /* Keep "ok" lines and failures in order when output goes to a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef HELLO_SO
    if (so == NULL)
        so = HELLO_SO;
#endif
    if (so == NULL) {
        fprintf(stderr, "usage: %s path/to/hello.so\n", argv[0]);
        return 2;
    }
    /* weftd resolves relative paths against its config file's directory,
     * which is the harness's private one: hand it an absolute path. */
    if (realpath(so, path) == NULL) {
        fprintf(stderr, "test_hello: FAIL: plugin %s: not found\n", so);
        return 1;
    }
    snprintf(ini, sizeof(ini), "[plugin.hello]\npath = %s\nenabled = true\n",
             path);

    harness = weft_harness_start(ini, 2);
    if (harness == NULL)
        fail("weftd did not start with %s (see above; set WEFT_HARNESS_WEFTD "
             "to use another weftd)", path);
    printf("weftd pid %ld on port %d with %s\n",
           (long)weft_harness_pid(harness), weft_harness_port(harness), path);

    test_ping();
    test_echo();
    test_echo_bad_json();

    /* A clean shutdown is part of the contract: SIGTERM, exit status 0. */
    status = weft_harness_stop(harness);
    harness = NULL;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("weftd did not exit cleanly (wait status %d)", status);
    printf("ok - weftd stopped with exit status 0\n");
    return 0;
}
