/*
 * weft/harness.h - test harness for plugin authors (and Weft's own tests).
 *
 * It starts a real weftd on a free loopback port with a private data
 * directory and a generated config, waits until it is ready, and gives a
 * small HTTP/1.1 client to talk to it. Link with `pkg-config --libs
 * weft-harness`. The weftd binary is the one installed with the SDK, or the
 * path in the environment variable WEFT_HARNESS_WEFTD.
 *
 * Nothing here is thread-safe except weft_harness_request() and the fd
 * helpers, which may be used from several threads on one harness.
 */
#ifndef WEFT_HARNESS_H
#define WEFT_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_harness weft_harness;

/* One parsed HTTP response. */
typedef struct weft_hresp {
    int status;        /* e.g. 200                                      */
    int http_minor;    /* 0 for HTTP/1.0, 1 for HTTP/1.1                */
    int chunked;       /* 1 if the body came with chunked encoding      */
    char *head;        /* status line and headers, NUL-terminated       */
    char *body;        /* decoded body, NUL-terminated                  */
    size_t body_len;
} weft_hresp;

/*
 * Start weftd. `ini_extra` is appended to the generated config, which has a
 * [server] section (listen on the chosen port, `threads` loops) and an
 * [admin] token; pass further sections, e.g. "[plugin.hello]\npath = ...\n".
 * Every test client is on loopback, so the generated [server] section turns
 * the per-address limits off (max_connections_per_address,
 * max_streams_per_address, connection_rate_per_address = 0), each unless
 * `ini_extra` sets that key itself.
 * Returns NULL and prints why on stderr if weftd did not become ready
 * within 15 seconds.
 */
weft_harness *weft_harness_start(const char *ini_extra, int threads);

/* Like weft_harness_start() but with a complete config text; "@PORT@",
 * "@DIR@" and "@TOKEN@" in it are replaced with the port, the private
 * directory and the admin token (see weft_harness_admin_token()). The
 * per-address limits are turned off as above, each unless the text sets it. */
weft_harness *weft_harness_start_raw(const char *ini_text);

/* Send SIGTERM, wait (up to 30 s, then SIGKILL) and free. Returns the exit
 * status as from waitpid() (use WIFEXITED/WEXITSTATUS), or -1. */
int weft_harness_stop(weft_harness *h);

int weft_harness_port(const weft_harness *h);
pid_t weft_harness_pid(const weft_harness *h);
const char *weft_harness_dir(const weft_harness *h);        /* private dir */
const char *weft_harness_config_path(const weft_harness *h);
const char *weft_harness_log_path(const weft_harness *h);   /* its stderr  */
const char *weft_harness_admin_token(const weft_harness *h);

/* Replace the config file: the generated [server]/[admin] part plus
 * `ini_extra` (with weft_harness_start()) or the raw text, re-substituted. */
int weft_harness_write_config(weft_harness *h, const char *ini_extra);

/* Send a signal to weftd. */
int weft_harness_signal(weft_harness *h, int sig);

/* Wait until weftd exited, up to timeout_ms; returns the waitpid status or
 * -1 on timeout. After it, only weft_harness_stop() (which frees) is valid. */
int weft_harness_wait(weft_harness *h, int timeout_ms);

/* Read the log so far (malloc'd, NUL-terminated; free() it). */
char *weft_harness_log(const weft_harness *h);

/*
 * One request on a new connection. `headers` is NULL or extra header lines,
 * each ending in "\r\n". A body sets Content-Length. Returns 0 and fills
 * `out` (free with weft_hresp_free()), or -1 on a transport error.
 */
int weft_harness_request(weft_harness *h, const char *method,
                         const char *path, const char *headers,
                         const void *body, size_t body_len, weft_hresp *out);

/* The same with the admin token in an Authorization header. */
int weft_harness_admin(weft_harness *h, const char *method, const char *path,
                       weft_hresp *out);

/* A connected socket to weftd (blocking, TCP_NODELAY), or -1. */
int weft_harness_connect(const weft_harness *h);

/* Write all bytes. Returns 0 or -1. */
int weft_harness_send(int fd, const void *data, size_t len);

/* Read one response from `fd` (Content-Length, chunked or close-delimited).
 * Not for answers to HEAD, which carry a Content-Length but no body: use
 * weft_harness_request() for those. Returns 0, or -1 on error/timeout/EOF
 * before a complete response. Bytes past the response stay buffered per fd
 * for the next call (so pipelined answers can be read one by one). */
int weft_hresp_read(int fd, weft_hresp *out, int timeout_ms);

/* Forget the per-fd buffer and close. */
void weft_harness_close(int fd);

/* A response header value (case-insensitive name) copied into buf, or NULL. */
const char *weft_hresp_header(const weft_hresp *r, const char *name,
                              char *buf, size_t size);

void weft_hresp_free(weft_hresp *r);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_HARNESS_H */
