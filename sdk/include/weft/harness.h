/*
 * weft/harness.h - test harness for plugin authors (and Weft's own tests).
 *
 * It starts a real weftd on a free loopback port with a private data
 * directory and a generated config, waits until it is ready, and gives a
 * small HTTP/1.1 client to talk to it, helpers for accounts (register, sign
 * in) and a Server-Sent Events reader for the realtime endpoint. Link with
 * `pkg-config --libs weft-harness` (or Weft::weft_harness in CMake).
 *
 * The weftd it starts is, in this order: the path in the environment
 * variable WEFT_HARNESS_WEFTD; the weftd installed next to the SDK your test
 * was compiled against, when the test is compiled with
 * WEFT_HARNESS_INSTALLED_WEFTD defined as its path (a string literal): the
 * WeftSDK CMake package does so for Weft::weft_harness, and
 * `pkg-config --variable=weftd weft-harness` gives the path for a Makefile
 * (see the template's); both locate themselves, so a prefix moved or
 * installed with `cmake --install --prefix` still works. Else the path
 * configured when the SDK was built.
 *
 * Ownership: the harness never keeps a pointer you pass in (strings are
 * copied before a call returns); what it gives back is either owned by the
 * harness object (the accessors below: valid until weft_harness_stop()) or
 * malloc'd for you, with the function that frees it named where it is
 * declared.
 *
 * Return convention: 0 on success, -1 on a transport or local error (errno
 * says which), and where weftd answered something other than what was asked
 * for, that HTTP status (> 0): each function says which of these it uses.
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

/* The installed weftd, as the SDK's CMake package (or a Makefile, from
 * weft-harness.pc) defines it for the code that includes this header. The harness library is
 * static and cannot know where it was installed; a weak definition here,
 * in the test's own objects, tells it (one copy is kept however many files
 * include the header). */
#ifdef WEFT_HARNESS_INSTALLED_WEFTD
#ifdef __cplusplus /* a const object is internal there unless extern */
__attribute__((weak)) extern const char weft_harness_installed_weftd[] =
    WEFT_HARNESS_INSTALLED_WEFTD;
#else
extern const char weft_harness_installed_weftd[];
__attribute__((weak)) const char weft_harness_installed_weftd[] =
    WEFT_HARNESS_INSTALLED_WEFTD;
#endif
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

/* ---- accounts -------------------------------------------------------------
 *
 * /api/auth/... needs the database and identity: put WEFT_HARNESS_IDENTITY
 * (below) in the config text, or the equivalent sections of your own. */

/* The [database] and [auth] settings for tests: weftd's embedded
 * PostgreSQL, password hashing as cheap as argon2id allows and rate limits
 * no test reaches. A string literal: `weft_harness_start(
 * WEFT_HARNESS_IDENTITY "[plugin.my]\npath = ...\n", 2)`. Do not repeat
 * its keys in your own text; environment variables such as
 * WEFT_DATABASE_ENABLED still override them (weftd's rule). */
#define WEFT_HARNESS_IDENTITY                                                 \
    "[database]\nenabled = true\n"                                            \
    "[auth]\nargon2_opslimit = 1\nargon2_memlimit = 64k\n"                    \
    "register_rate = 100000\nlogin_rate = 100000\n"                          \
    "login_account_rate = 100000\nrefresh_rate = 100000\n"

/* A signed-in account. Every string is malloc'd and belongs to the struct:
 * free them all with weft_harness_user_free(). */
typedef struct weft_harness_user {
    long long id;        /* the account's id (user.id)                       */
    char *username;      /* as stored (NFKC)                                 */
    char *email;
    char *password;      /* the one used, so the test can sign in again      */
    char *access_token;  /* JWT for "Authorization: Bearer"                  */
    char *refresh_token; /* for POST /api/auth/refresh and /logout           */
    char *auth;          /* "Authorization: Bearer <access_token>\r\n":
                            pass it as `headers` to weft_harness_request()  */
} weft_harness_user;

/*
 * Register an account with POST /api/auth/register: the email is
 * "<username>@example.com", the display name the username, the password
 * `password` or, when NULL, "<username>-password". The copies land in
 * `out`. Returns 0 (the answer was 201 with a token), -1 on a transport
 * error or an answer that is not the documented JSON (errno EPROTO), or
 * the HTTP status weftd answered instead (e.g. 409 when the name is taken;
 * its body is printed on stderr). On anything but 0, `out` is zeroed.
 */
int weft_harness_user_register(weft_harness *h, const char *username,
                               const char *password, weft_harness_user *out);

/*
 * The same with a request body of your own: `body_json` is the whole JSON
 * object sent (e.g. with a signup step's "referral_code"); its "email" and
 * "password" are copied to `out` when they are strings. Returns as
 * weft_harness_user_register().
 */
int weft_harness_user_register_json(weft_harness *h, const char *body_json,
                                    weft_harness_user *out);

/*
 * Sign in with POST /api/auth/login (a new session with its own tokens).
 * Returns 0 (the answer was 200 with a token), -1 as above, or the HTTP
 * status weftd answered instead (401 for a wrong password, 429 when rate
 * limited). On anything but 0, `out` is zeroed.
 */
int weft_harness_user_login(weft_harness *h, const char *email,
                            const char *password, weft_harness_user *out);

/* Free the strings of `u` and zero it; NULL or a zeroed struct is fine. */
void weft_harness_user_free(weft_harness_user *u);

/* ---- Server-Sent Events (GET /api/realtime) ------------------------------- */

typedef struct weft_harness_sse weft_harness_sse;

/* One event of a stream. The strings are malloc'd and belong to the event:
 * free them with weft_harness_sse_event_free(). */
typedef struct weft_harness_sse_event {
    char *event; /* its "event:" field, "message" when it had none         */
    char *data;  /* its "data:" lines joined with "\n"; "" when none       */
    char *id;    /* its "id:" field ("<epoch>-<offset>"), or NULL           */
} weft_harness_sse_event;

/*
 * Open a stream on `topics` (comma-separated topics or patterns, as in
 * ?topic=) as the account whose access token is `token` (NULL: signed
 * out), and wait, up to timeout_ms in all, for the answer and for the
 * "subscribed" event of every distinct topic: once it returned, every
 * event published on them reaches the stream. The "connected" and
 * "subscribed" events are consumed.
 * Returns 0 and sets *out (close it with weft_harness_sse_close()); the
 * HTTP status when weftd refused the stream (e.g. 401, 403, 404; then, if
 * `refused` is not NULL, it gets the answer: free it with
 * weft_hresp_free()); or -1 on a transport error, a timeout (errno
 * ETIMEDOUT) or a stream that is not one (errno EPROTO). *out is NULL
 * unless 0 is returned.
 */
int weft_harness_sse_open(weft_harness *h, const char *topics,
                          const char *token, int timeout_ms,
                          weft_harness_sse **out, weft_hresp *refused);

/*
 * Wait up to timeout_ms for the next event named `event` (NULL: any event;
 * "message" for published messages); other events and comments (": ping")
 * are skipped and dropped.
 * Returns 0 and fills *ev; 1 when none came in time (the stream stays
 * usable, *ev is zeroed); -1 when the stream ended or broke (errno
 * ECONNRESET at its end, EMSGSIZE beyond 16 MiB for one event, ENOMEM),
 * after which only weft_harness_sse_close() is useful.
 */
int weft_harness_sse_next(weft_harness_sse *s, const char *event,
                          int timeout_ms, weft_harness_sse_event *ev);

/* The stream's client id (from "connected": for POST
 * /api/realtime/subscriptions), and the id of the last event read (for
 * ?last_event_id= on a new stream; "" before any). Owned by the stream:
 * valid until weft_harness_sse_close(). */
const char *weft_harness_sse_client(const weft_harness_sse *s);
const char *weft_harness_sse_last_id(const weft_harness_sse *s);

/* Close the connection and free the stream; NULL is fine. */
void weft_harness_sse_close(weft_harness_sse *s);

/* Free the strings of `ev` and zero it; NULL or a zeroed struct is fine. */
void weft_harness_sse_event_free(weft_harness_sse_event *ev);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_HARNESS_H */
