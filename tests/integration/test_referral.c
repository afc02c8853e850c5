/*
 * The referral plugin (plugins/referral/) end to end: a real weftd with its
 * embedded PostgreSQL, accounts registered through /api/auth/register with
 * the plugin's signup step, and the live events read from
 * GET /api/realtime (SSE) on raw sockets.
 *
 * What the Refwave defects (KNOWN-DEFECTS.md) turn into here: codes are
 * random and well-formed whatever the name (Unicode names included); a
 * code never collides into a failed signup; self-referral, double claims
 * and cycles are refused; rewards and two levels exist; events carry only
 * the rows that changed, through the host's realtime layer; and a bad code
 * leaves no account behind.
 *
 * Every test starts its own weftd on its own data directory (0711: as
 * root the cluster runs as 'postgres', which must pass through). Password
 * hashing is made cheap and the rate limits loose in every config.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "it_common.h"

#ifndef IT_REFERRAL_SO
#error "IT_REFERRAL_SO must be defined by the build"
#endif

extern char **environ;

#define RF_SECRET "weft-it-referral-secret-0123456789-abcdefgh"
#define RF_AUTH                                                                \
    "secret = " RF_SECRET "\n"                                                 \
    "argon2_opslimit = 1\nargon2_memlimit = 64k\n"                             \
    "login_rate = 10000\nlogin_account_rate = 10000\n"                         \
    "register_rate = 10000\nrefresh_rate = 10000\n"
#define RF_ALPHABET "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#define RF_JSON "Content-Type: application/json\r\n"
/* How long a live event may take: commit, outbox relay, fan-out. */
#define RF_EVENT_MS 15000

/* ---- weftd ------------------------------------------------------------- */

static char *rf_tmpdir(void)
{
    char *d = it_mkdtemp();

    ck_assert_int_eq(chmod(d, 0711), 0);
    return d;
}

/* The whole config; `plugin` NULL leaves the plugin out entirely. */
static char *rf_config(const char *dir, const char *plugin)
{
    char *sec = plugin != NULL
                    ? it_strf("[plugin.referral]\npath = %s\nenabled = true\n"
                              "%s",
                              IT_REFERRAL_SO, plugin)
                    : strdup("");
    char *cfg = it_strf("[server]\nlisten = 127.0.0.1:@PORT@\nthreads = 2\n"
                        "data_dir = %s/data\nshutdown_timeout = 10s\n"
                        "[admin]\ntoken = @TOKEN@\n"
                        "[database]\nenabled = true\n"
                        "[auth]\n" RF_AUTH "%s",
                        dir, sec);

    free(sec);
    return cfg;
}

static weft_harness *rf_start(const char *dir, const char *plugin)
{
    char *cfg = rf_config(dir, plugin);
    weft_harness *h = weft_harness_start_raw(cfg);

    ck_assert_msg(h != NULL, "weftd did not start; config:\n%s", cfg);
    free(cfg);
    return h;
}

/* ---- HTTP -------------------------------------------------------------- */

/* One request with an optional Bearer token; a body is JSON. */
static void rf_call(weft_harness *h, const char *method, const char *path,
                    const char *token, const char *body, weft_hresp *out)
{
    char *hdrs = it_strf("%s%s%s%s", body != NULL ? RF_JSON : "",
                         token != NULL ? "Authorization: Bearer " : "",
                         token != NULL ? token : "", token != NULL ? "\r\n" : "");

    it_req(h, method, path, hdrs, body, body != NULL ? strlen(body) : 0, out);
    free(hdrs);
}

/* GET that must answer 200 with JSON (new reference). */
static json_t *rf_get_ok(weft_harness *h, const char *path, const char *token)
{
    weft_hresp r;
    json_t *j;

    rf_call(h, "GET", path, token, NULL, &r);
    ck_assert_msg(r.status == 200, "GET %s: expected 200, got %d: %.500s",
                  path, r.status, r.body);
    j = it_json(&r);
    weft_hresp_free(&r);
    return j;
}

static int64_t rf_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer", key);
    return (int64_t)json_integer_value(v);
}

/* ---- accounts ---------------------------------------------------------- */

struct rf_user {
    int64_t id;
    char *access, *username, *display, *code;
};

static void rf_user_free(struct rf_user *u)
{
    free(u->access);
    free(u->username);
    free(u->display);
    free(u->code);
    memset(u, 0, sizeof(*u));
}

/* A registration body; `code` NULL: no referral_code member. */
static char *rf_reg_body(const char *username, const char *display,
                         const char *code)
{
    json_t *o = json_pack("{s:o, s:s, s:s, s:s}", "email",
                          json_sprintf("%s@example.com", username),
                          "username", username, "display_name", display,
                          "password", "password-123");
    char *s;

    ck_assert_ptr_nonnull(o);
    if (code != NULL)
        json_object_set_new(o, "referral_code", json_string(code));
    s = json_dumps(o, JSON_COMPACT);
    ck_assert_ptr_nonnull(s);
    json_decref(o);
    return s;
}

static void rf_register_try(weft_harness *h, const char *username,
                            const char *display, const char *code,
                            weft_hresp *r)
{
    char *body = rf_reg_body(username, display, code);

    rf_call(h, "POST", "/api/auth/register", NULL, body, r);
    free(body);
}

/* GET /api/referral/me of u (new reference); fills u->code. */
static json_t *rf_me(weft_harness *h, struct rf_user *u)
{
    json_t *j = rf_get_ok(h, "/api/referral/me", u->access);
    const char *c = it_jstr(j, "code");

    ck_assert_msg(c != NULL, "/me without a code");
    if (u->code == NULL)
        u->code = strdup(c);
    ck_assert_msg(strcmp(u->code, c) == 0, "%s's code changed: %s then %s",
                  u->username, u->code, c);
    return j;
}

/* Register (201 asserted) and read the code. */
static void rf_register(weft_harness *h, const char *username,
                        const char *display, const char *code,
                        struct rf_user *u)
{
    weft_hresp r;
    json_t *j, *me;

    rf_register_try(h, username, display, code, &r);
    ck_assert_msg(r.status == 201, "register %s (code %s): expected 201, got "
                                   "%d: %.500s",
                  username, code ? code : "none", r.status, r.body);
    j = it_json(&r);
    memset(u, 0, sizeof(*u));
    u->access = strdup(it_jstr(j, "access_token"));
    u->id = rf_int(json_object_get(j, "user"), "id");
    u->username = strdup(username);
    u->display = strdup(display);
    json_decref(j);
    weft_hresp_free(&r);
    me = rf_me(h, u);
    json_decref(me);
}

static void rf_login_fails(weft_harness *h, const char *username)
{
    char *body = it_strf("{\"email\":\"%s@example.com\",\"password\":"
                         "\"password-123\"}",
                         username);
    weft_hresp r;

    rf_call(h, "POST", "/api/auth/login", NULL, body, &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    free(body);
}

/* A well-formed code nobody has (a random one equals it with odds of
 * 1 in 31^8 per account). */
static const char *rf_unknown_code(void)
{
    return "ZZZZ2222";
}

/* POST /api/referral/claim {"code": code} as u. */
static void rf_claim(weft_harness *h, struct rf_user *u, const char *code,
                     weft_hresp *r)
{
    json_t *o = json_pack("{s:s}", "code", code);
    char *body = json_dumps(o, JSON_COMPACT);

    rf_call(h, "POST", "/api/referral/claim", u->access, body, r);
    free(body);
    json_decref(o);
}

/* stats of /me: direct, second, points. */
static void rf_assert_stats(weft_harness *h, struct rf_user *u, int64_t direct,
                            int64_t second, int64_t points)
{
    json_t *me = rf_me(h, u), *st = json_object_get(me, "stats");

    ck_assert_msg(json_is_object(st), "/me without stats");
    /* the text only on failure: message arguments are always evaluated */
    if (rf_int(st, "direct") != direct || rf_int(st, "second") != second ||
        rf_int(st, "points") != points)
        ck_abort_msg("%s: expected direct %lld second %lld points %lld, "
                     "got %s",
                     u->username, (long long)direct, (long long)second,
                     (long long)points, json_dumps(st, JSON_COMPACT));
    json_decref(me);
}

/* The referrer of u per /me: its id, or 0 for null. */
static int64_t rf_referrer_of(weft_harness *h, struct rf_user *u)
{
    json_t *me = rf_me(h, u), *ref = json_object_get(me, "referrer");
    int64_t id = 0;

    if (!json_is_null(ref)) {
        ck_assert_msg(json_is_object(ref), "referrer is neither null nor an "
                                           "object");
        id = rf_int(ref, "id");
        ck_assert_msg(it_jstr(ref, "username") != NULL &&
                          it_jstr(ref, "display_name") != NULL,
                      "referrer without username/display_name");
    }
    json_decref(me);
    return id;
}

/* The leaderboard row of `id` from one page of 100 (new reference) or
 * NULL; *total gets the total. */
static json_t *rf_board_row(weft_harness *h, int64_t id, int64_t *total)
{
    json_t *j = rf_get_ok(h, "/api/referral/leaderboard?limit=100", NULL),
           *items = json_object_get(j, "items"), *it, *found = NULL;
    size_t i;

    if (total != NULL)
        *total = rf_int(j, "total");
    json_array_foreach(items, i, it) {
        if (rf_int(it, "user_id") == id)
            found = json_incref(it);
    }
    json_decref(j);
    return found;
}

/* ---- SSE --------------------------------------------------------------- */

struct rf_sse {
    int fd;
    int status;
    char *buf; /* bytes after the head not yet consumed */
    size_t len, cap;
};

/* Read more bytes (up to timeout_ms). 1 read, 0 timeout, -1 EOF/error. */
static int rf_sse_fill(struct rf_sse *s, int timeout_ms)
{
    struct pollfd pfd = {s->fd, POLLIN, 0};
    ssize_t n;
    int rc;

    rc = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
    if (rc <= 0)
        return rc == 0 ? 0 : -1;
    if (s->cap - s->len < 8192) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->buf = realloc(s->buf, s->cap);
        ck_assert_ptr_nonnull(s->buf);
    }
    n = recv(s->fd, s->buf + s->len, s->cap - s->len - 1, 0);
    if (n <= 0)
        return -1;
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
    return 1;
}

/* The next event: its name and data (malloc'd), or 0 on timeout. */
static int rf_sse_event(struct rf_sse *s, int timeout_ms, char **event,
                        char **data)
{
    long long end = it_now_ms() + timeout_ms;

    for (;;) {
        char *sep = s->buf != NULL ? strstr(s->buf, "\n\n") : NULL;

        if (sep != NULL) {
            char *block = strndup(s->buf, (size_t)(sep - s->buf)), *line,
                 *save = NULL;

            ck_assert_ptr_nonnull(block);
            /* drop the block and its blank line, keep the rest */
            s->len -= (size_t)(sep + 2 - s->buf);
            memmove(s->buf, sep + 2, s->len + 1);
            *event = NULL;
            *data = NULL;
            for (line = strtok_r(block, "\n", &save); line != NULL;
                 line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "event: ", 7) == 0) {
                    free(*event);
                    *event = strdup(line + 7);
                } else if (strncmp(line, "data: ", 6) == 0) {
                    free(*data);
                    *data = strdup(line + 6);
                }
            }
            free(block);
            if (*event == NULL && *data == NULL)
                continue; /* a comment (": ping") or retry: only */
            if (*event == NULL)
                *event = strdup("message");
            return 1;
        }
        if (it_now_ms() >= end)
            return 0;
        if (rf_sse_fill(s, (int)(end - it_now_ms())) < 0)
            return 0;
    }
}

/* Open GET /api/realtime?topic=...; returns the status. On 200 it waits
 * for the "subscribed" event, so later publishes reach the stream; other
 * statuses leave the error body in s->buf. */
static int rf_sse_open(weft_harness *h, const char *topic, const char *token,
                       struct rf_sse *s)
{
    char *req = it_strf("GET /api/realtime?topic=%s HTTP/1.1\r\n"
                        "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                        "%s%s%s\r\n",
                        topic, token ? "Authorization: Bearer " : "",
                        token ? token : "", token ? "\r\n" : "");
    long long end = it_now_ms() + 10000;
    char *head_end, *ev, *data;

    memset(s, 0, sizeof(*s));
    s->fd = weft_harness_connect(h);
    ck_assert_msg(s->fd >= 0, "connect: %s", strerror(errno));
    ck_assert_int_eq(weft_harness_send(s->fd, req, strlen(req)), 0);
    free(req);
    while ((head_end = s->buf ? strstr(s->buf, "\r\n\r\n") : NULL) == NULL) {
        ck_assert_msg(it_now_ms() < end, "no answer head from /api/realtime");
        ck_assert_msg(rf_sse_fill(s, 1000) >= 0, "realtime: connection "
                                                 "closed before the head");
    }
    ck_assert_msg(sscanf(s->buf, "HTTP/1.%*d %d", &s->status) == 1,
                  "bad status line: %.100s", s->buf);
    memmove(s->buf, head_end + 4, strlen(head_end + 4) + 1);
    s->len = strlen(s->buf);
    if (s->status != 200) {
        /* the error body: read what comes within a moment */
        while (rf_sse_fill(s, 300) > 0)
            ;
        return s->status;
    }
    for (;;) {
        ck_assert_msg(rf_sse_event(s, 10000, &ev, &data),
                      "no \"subscribed\" event for %s", topic);
        if (strcmp(ev, "subscribed") == 0) {
            free(ev);
            free(data);
            break;
        }
        free(ev);
        free(data);
    }
    return 200;
}

/* The data of the next "message" event's message (new reference), or
 * NULL on timeout. */
static json_t *rf_sse_message(struct rf_sse *s, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    char *ev, *data;

    while (it_now_ms() < end &&
           rf_sse_event(s, (int)(end - it_now_ms()), &ev, &data)) {
        json_t *m = NULL, *d;

        if (strcmp(ev, "message") == 0 && data != NULL) {
            json_error_t err;
            m = json_loads(data, 0, &err);
            ck_assert_msg(m != NULL, "message data is not JSON: %s", data);
        }
        free(ev);
        free(data);
        if (m == NULL)
            continue;
        d = json_incref(json_object_get(m, "data"));
        json_decref(m);
        ck_assert_msg(json_is_object(d), "message without data object");
        return d;
    }
    return NULL;
}

static void rf_sse_close(struct rf_sse *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    memset(s, 0, sizeof(*s));
    s->fd = -1;
}

/* Wait for a friend_joined of `friend_id` on s (new reference). */
static json_t *rf_wait_joined(struct rf_sse *s, int64_t friend_id)
{
    long long end = it_now_ms() + RF_EVENT_MS;
    json_t *d;

    while (it_now_ms() < end &&
           (d = rf_sse_message(s, (int)(end - it_now_ms()))) != NULL) {
        const char *t = it_jstr(d, "type");
        json_t *u = json_object_get(d, "user");

        if (t != NULL && strcmp(t, "friend_joined") == 0 &&
            json_is_integer(json_object_get(u, "id")) &&
            json_integer_value(json_object_get(u, "id")) == friend_id)
            return d;
        json_decref(d);
    }
    ck_abort_msg("no friend_joined for user %lld within %d ms",
                 (long long)friend_id, RF_EVENT_MS);
    return NULL;
}

/* ======================================================================== */

/* Codes: unique, 8 characters of the alphabet, random (not the name),
 * case- and space-insensitive; Unicode names work everywhere. */
START_TEST(codes_and_unicode)
{
    char *dir = rf_tmpdir();
    weft_harness *h = rf_start(dir, "");
    enum { N = 40 };
    struct rf_user u[N], z, k, j, e, lc;
    weft_hresp r;
    json_t *me, *row;
    char name[32], *typed;

    for (int i = 0; i < N; i++) {
        /* same-prefix names: a code derived from the name would clash */
        snprintf(name, sizeof(name), "samename%02d", i);
        rf_register(h, name, "Same Name", NULL, &u[i]);
        ck_assert_msg(strlen(u[i].code) == 8 &&
                          strspn(u[i].code, RF_ALPHABET) == 8,
                      "code \"%s\" is not 8 characters of %s", u[i].code,
                      RF_ALPHABET);
        for (int k2 = 0; k2 < i; k2++)
            ck_assert_msg(strcmp(u[i].code, u[k2].code) != 0,
                          "two accounts share the code %s", u[i].code);
    }
    me = rf_me(h, &u[0]);
    typed = it_strf("/?ref=%s", u[0].code);
    ck_assert_str_eq(it_jstr(me, "invite_path"), typed);
    ck_assert_msg(json_is_null(json_object_get(me, "referrer")),
                  "a new account without a code has a referrer");
    free(typed);
    json_decref(me);

    /* Unicode display names: codes, /me, the leaderboard, events */
    rf_register(h, "zoe", "Zo\xc3\xab", NULL, &z);
    rf_register(h, "nihongo", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83"
                              "\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc",
                z.code, &j);
    rf_register(h, "emoji", "\xf0\x9f\xa7\xb5\xf0\x9f\x8e\x89", j.code, &e);
    ck_assert_int_eq(rf_referrer_of(h, &j), z.id);
    ck_assert_int_eq(rf_referrer_of(h, &e), j.id);
    row = rf_board_row(h, j.id, NULL);
    ck_assert_ptr_nonnull(row);
    ck_assert_str_eq(it_jstr(row, "display_name"), j.display);
    json_decref(row);
    /* Unicode usernames (Refwave crashed slicing their first bytes): a
     * Japanese name and one with an accent register, get a code and
     * appear as they are. */
    {
        static const char *const names[] = {
            "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\xa6", "Zo\xc3\xab_2"};
        for (size_t i = 0; i < 2; i++) {
            json_t *jj;
            struct rf_user uu = {0};
            rf_register_try(h, names[i], "U", z.code, &r);
            ck_assert_msg(r.status == 201, "register %s: %d %.200s", names[i],
                          r.status, r.body);
            jj = it_json(&r);
            uu.access = strdup(it_jstr(jj, "access_token"));
            uu.username = strdup(names[i]);
            me = rf_me(h, &uu);
            ck_assert_int_eq(strlen(it_jstr(me, "code")), 8);
            json_decref(me);
            rf_user_free(&uu);
            json_decref(jj);
            weft_hresp_free(&r);
        }
    }

    /* typed in lower case with spaces around: the same code */
    typed = it_strf("  %s\t", u[1].code);
    for (char *c = typed; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    rf_register(h, "lowercase", "LC", typed, &lc);
    ck_assert_int_eq(rf_referrer_of(h, &lc), u[1].id);
    free(typed);
    /* an empty code is no code */
    rf_register(h, "emptycode", "E", "", &k);
    ck_assert_int_eq(rf_referrer_of(h, &k), 0);

    for (int i = 0; i < N; i++)
        rf_user_free(&u[i]);
    rf_user_free(&z);
    rf_user_free(&j);
    rf_user_free(&e);
    rf_user_free(&k);
    rf_user_free(&lc);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

/* Links, two levels, points and badges from the config; /me, /referrals
 * and the leaderboard agree; a bad code refuses the whole registration. */
START_TEST(signup_links_and_rewards)
{
    char *dir = rf_tmpdir();
    weft_harness *h = rf_start(dir, "points_direct = 7\npoints_second = 2\n"
                                    "badges = 1:One, 2:Two,4:Four\n");
    struct rf_user a, b, c, d, again;
    weft_hresp r;
    json_t *me, *st, *ref, *row, *list;
    int64_t total_before, total_after;

    rf_register(h, "alice", "Alice", NULL, &a);
    rf_register(h, "bob", "Bob", a.code, &b);
    rf_register(h, "carol", "Carol", b.code, &c);
    rf_register(h, "dave", "Dave", a.code, &d);

    /* alice: 2 direct (bob, dave), 1 second (carol) */
    rf_assert_stats(h, &a, 2, 1, 2 * 7 + 1 * 2);
    me = rf_me(h, &a);
    st = json_object_get(me, "stats");
    ck_assert_uint_eq(json_array_size(json_object_get(st, "badges")), 2);
    ck_assert_str_eq(it_jstr(json_array_get(json_object_get(st, "badges"), 0),
                             "name"),
                     "One");
    ck_assert_int_eq(rf_int(json_array_get(json_object_get(st, "badges"), 1),
                            "threshold"),
                     2);
    ref = json_object_get(st, "next_badge");
    ck_assert_msg(json_is_object(ref), "no next_badge");
    ck_assert_str_eq(it_jstr(ref, "name"), "Four");
    ck_assert_int_eq(rf_int(ref, "threshold"), 4);
    ck_assert_int_eq(rf_int(ref, "missing"), 2);
    json_decref(me);
    /* bob: referred by alice, 1 direct */
    rf_assert_stats(h, &b, 1, 0, 7);
    ck_assert_int_eq(rf_referrer_of(h, &b), a.id);
    ck_assert_int_eq(rf_referrer_of(h, &c), b.id);
    ck_assert_int_eq(rf_referrer_of(h, &a), 0);
    rf_assert_stats(h, &c, 0, 0, 0);
    me = rf_me(h, &c);
    st = json_object_get(me, "stats");
    ck_assert_uint_eq(json_array_size(json_object_get(st, "badges")), 0);
    ck_assert_int_eq(rf_int(json_object_get(st, "next_badge"), "missing"), 1);
    json_decref(me);

    /* /referrals: most recent first, both levels, totals */
    me = rf_get_ok(h, "/api/referral/referrals", a.access);
    list = json_object_get(me, "direct");
    ck_assert_uint_eq(json_array_size(list), 2);
    ck_assert_int_eq(rf_int(json_array_get(list, 0), "id"), d.id);
    ck_assert_int_eq(rf_int(json_array_get(list, 1), "id"), b.id);
    ck_assert_str_eq(it_jstr(json_array_get(list, 1), "username"), "bob");
    ck_assert_msg(it_jstr(json_array_get(list, 0), "joined_at") != NULL,
                  "no joined_at");
    ck_assert_int_eq(rf_int(me, "direct_total"), 2);
    list = json_object_get(me, "second");
    ck_assert_uint_eq(json_array_size(list), 1);
    ck_assert_int_eq(rf_int(json_array_get(list, 0), "id"), c.id);
    ck_assert_int_eq(rf_int(me, "second_total"), 1);
    json_decref(me);

    /* the leaderboard agrees with /me */
    row = rf_board_row(h, a.id, &total_before);
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(rf_int(row, "direct"), 2);
    ck_assert_int_eq(rf_int(row, "second"), 1);
    ck_assert_int_eq(rf_int(row, "points"), 16);
    ck_assert_int_eq(rf_int(row, "rank"), 1);
    ck_assert_str_eq(it_jstr(row, "username"), "alice");
    json_decref(row);
    ck_assert_int_eq(total_before, 4);

    /* an unknown code: 400, and no account exists afterwards */
    rf_register_try(h, "eve", "Eve", rf_unknown_code(), &r);
    it_assert_error(&r, 400, "unknown_referral_code");
    weft_hresp_free(&r);
    rf_register_try(h, "eve", "Eve", "not a code", &r);
    it_assert_error(&r, 400, "unknown_referral_code");
    weft_hresp_free(&r);
    rf_login_fails(h, "eve");
    row = rf_board_row(h, a.id, &total_after);
    json_decref(row);
    ck_assert_int_eq(total_after, total_before);
    /* wrong types and sizes: 400, nothing created either */
    rf_call(h, "POST", "/api/auth/register", NULL,
            "{\"email\":\"eve@example.com\",\"username\":\"eve\","
            "\"display_name\":\"Eve\",\"password\":\"password-123\","
            "\"referral_code\":12345678}",
            &r);
    it_assert_error(&r, 400, "invalid");
    weft_hresp_free(&r);
    rf_register_try(h, "eve", "Eve", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &r);
    it_assert_error(&r, 400, "invalid");
    weft_hresp_free(&r);
    rf_call(h, "POST", "/api/auth/register", NULL,
            "{\"email\":\"eve@example.com\",\"username\":\"eve\","
            "\"display_name\":\"Eve\",\"password\":\"password-123\","
            "\"referral_code\":\"ABCD2345\\u0000xyz\"}",
            &r);
    ck_assert_msg(r.status == 400, "a code with a NUL: %d %s", r.status,
                  r.body);
    weft_hresp_free(&r);
    rf_login_fails(h, "eve");
    /* the same email and username are free: register for real */
    rf_register(h, "eve", "Eve", c.code, &again);
    ck_assert_int_eq(rf_referrer_of(h, &again), c.id);
    rf_assert_stats(h, &b, 1, 1, 9);
    rf_assert_stats(h, &a, 2, 1, 16); /* third level counts for nobody */

    rf_user_free(&a);
    rf_user_free(&b);
    rf_user_free(&c);
    rf_user_free(&d);
    rf_user_free(&again);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

/* POST /claim: self, unknown, double, cycles; and an account older than
 * the plugin (enabled later by SIGHUP) gets its row lazily. */
START_TEST(claim_rules_and_legacy_accounts)
{
    char *dir = rf_tmpdir(), *cfg;
    weft_harness *h = rf_start(dir, NULL); /* without the plugin */
    struct rf_user old, old2, a, b, c, d, x;
    weft_hresp r;
    json_t *me, *row;
    int64_t total;
    int st = 0;

    /* "oldtimer" and "veteran" predate the plugin */
    for (int i = 0; i < 2; i++) {
        struct rf_user *o = i == 0 ? &old : &old2;
        const char *name = i == 0 ? "oldtimer" : "veteran";

        rf_register_try(h, name, "Old Timer", NULL, &r);
        ck_assert_msg(r.status == 201, "register without the plugin: %d %s",
                      r.status, r.body);
        memset(o, 0, sizeof(*o));
        me = it_json(&r);
        o->access = strdup(it_jstr(me, "access_token"));
        o->id = rf_int(json_object_get(me, "user"), "id");
        o->username = strdup(name);
        json_decref(me);
        weft_hresp_free(&r);
    }
    /* now enable it, by SIGHUP (migrations run, routes appear) */
    cfg = rf_config(dir, "");
    ck_assert_int_eq(weft_harness_write_config(h, cfg), 0);
    free(cfg);
    ck_assert_int_eq(weft_harness_signal(h, SIGHUP), 0);
    for (int i = 0; i < 300 && st != 200; i++) {
        if (i > 0)
            it_sleep_ms(50);
        rf_call(h, "GET", "/api/referral/leaderboard", NULL, NULL, &r);
        st = r.status;
        weft_hresp_free(&r);
    }
    ck_assert_msg(st == 200, "the plugin did not come up after SIGHUP: %d",
                  st);

    /* the old accounts are not on the board until they show up */
    row = rf_board_row(h, old.id, &total);
    ck_assert_ptr_null(row);
    ck_assert_int_eq(total, 0);
    /* the first /me makes the row (twice at once is fine too) */
    {
        weft_hresp r2;
        rf_call(h, "GET", "/api/referral/me", old2.access, NULL, &r);
        rf_call(h, "GET", "/api/referral/me", old2.access, NULL, &r2);
        ck_assert_msg(r.status == 200 && r2.status == 200,
                      "lazy /me: %d %s / %d %s", r.status, r.body, r2.status,
                      r2.body);
        weft_hresp_free(&r);
        weft_hresp_free(&r2);
    }
    rf_assert_stats(h, &old2, 0, 0, 0);
    ck_assert_int_eq(rf_referrer_of(h, &old2), 0);
    row = rf_board_row(h, old2.id, &total);
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(total, 1);
    json_decref(row);

    rf_register(h, "anna", "Anna", NULL, &a);
    rf_register(h, "ben", "Ben", a.code, &b);  /* anna <- ben */
    rf_register(h, "cleo", "Cleo", b.code, &c); /* ben <- cleo */
    rf_register(h, "dan", "Dan", NULL, &d);
    rf_register(h, "xena", "Xena", NULL, &x);

    /* the legacy account claims first: its row is made on the way */
    rf_claim(h, &old, a.code, &r);
    ck_assert_msg(r.status == 200, "legacy claim: %d %s", r.status, r.body);
    me = it_json(&r);
    ck_assert_int_eq(rf_int(json_object_get(me, "referrer"), "id"), a.id);
    json_decref(me);
    weft_hresp_free(&r);
    ck_assert_int_eq(rf_referrer_of(h, &old), a.id);
    rf_assert_stats(h, &a, 2, 1, 2 * 10 + 3);

    /* signed out: 401 */
    rf_call(h, "POST", "/api/referral/claim", NULL, "{\"code\":\"ABCD2345\"}",
            &r);
    it_assert_error(&r, 401, "unauthorized");
    weft_hresp_free(&r);
    /* own code: 400 */
    rf_claim(h, &d, d.code, &r);
    it_assert_error(&r, 400, "self_referral");
    weft_hresp_free(&r);
    /* unknown: 404, also for what cannot be a code */
    rf_claim(h, &d, rf_unknown_code(), &r);
    it_assert_error(&r, 404, "unknown_referral_code");
    weft_hresp_free(&r);
    rf_claim(h, &d, "x", &r);
    it_assert_error(&r, 404, "unknown_referral_code");
    weft_hresp_free(&r);
    rf_call(h, "POST", "/api/referral/claim", d.access, "{\"code\":7}", &r);
    it_assert_error(&r, 400, "invalid");
    weft_hresp_free(&r);
    /* a good claim (lower case) */
    {
        char *lower = strdup(x.code);
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        rf_claim(h, &d, lower, &r);
        free(lower);
    }
    ck_assert_msg(r.status == 200, "claim: %d %s", r.status, r.body);
    weft_hresp_free(&r);
    ck_assert_int_eq(rf_referrer_of(h, &d), x.id);
    rf_assert_stats(h, &x, 1, 0, 10);
    /* a second code: 409, whoever it is */
    rf_claim(h, &d, a.code, &r);
    it_assert_error(&r, 409, "already_referred");
    weft_hresp_free(&r);
    rf_claim(h, &b, d.code, &r); /* ben was referred at signup */
    it_assert_error(&r, 409, "already_referred");
    weft_hresp_free(&r);
    /* cycles: anna is above ben and cleo */
    rf_claim(h, &a, b.code, &r);
    it_assert_error(&r, 400, "referral_cycle");
    weft_hresp_free(&r);
    rf_claim(h, &a, c.code, &r);
    it_assert_error(&r, 400, "referral_cycle");
    weft_hresp_free(&r);
    /* x (above dan) claiming dan's code is a cycle too */
    rf_claim(h, &x, d.code, &r);
    it_assert_error(&r, 400, "referral_cycle");
    weft_hresp_free(&r);
    /* nothing changed by the refusals */
    rf_assert_stats(h, &a, 2, 1, 23);
    ck_assert_int_eq(rf_referrer_of(h, &a), 0);
    /* anna may still claim someone outside her tree: xena, above dan */
    rf_claim(h, &a, x.code, &r);
    ck_assert_msg(r.status == 200, "claim: %d %s", r.status, r.body);
    weft_hresp_free(&r);
    rf_assert_stats(h, &x, 2, 2, 2 * 10 + 2 * 3); /* dan, anna; ben, old */

    rf_user_free(&old);
    rf_user_free(&old2);
    rf_user_free(&a);
    rf_user_free(&b);
    rf_user_free(&c);
    rf_user_free(&d);
    rf_user_free(&x);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

/* Pages, limits and the order on ties. */
START_TEST(leaderboard_pages)
{
    char *dir = rf_tmpdir();
    weft_harness *h = rf_start(dir, "points_direct = 1\npoints_second = 1\n");
    struct rf_user u[8];
    static const char *const bad[] = {
        "limit=0", "limit=101", "limit=abc", "limit=-1", "offset=-1",
        "offset=x", "limit=", "limit=1e2",
    };
    weft_hresp r;
    json_t *all, *items;
    char name[16];

    /* u0: 2 direct (u2, u3) = 2 points; u1: 1 direct (u4), 1 second (u5)
     * = 2 points; so u0 before u1 (more direct). u2, u6, u7: 0 each... */
    for (int i = 0; i < 8; i++) {
        const char *code = NULL;
        if (i == 2 || i == 3)
            code = u[0].code;
        else if (i == 4)
            code = u[1].code;
        else if (i == 5)
            code = u[4].code;
        snprintf(name, sizeof(name), "rank%d", i);
        rf_register(h, name, name, code, &u[i]);
    }
    /* expected order: u0 (2,0=2), u1 (1,1=2), u4 (1,0=1), then the zeros
     * by id: u2, u3, u5, u6, u7 */
    {
        const int want[] = {0, 1, 4, 2, 3, 5, 6, 7};

        all = rf_get_ok(h, "/api/referral/leaderboard?limit=100", NULL);
        items = json_object_get(all, "items");
        ck_assert_int_eq(rf_int(all, "total"), 8);
        ck_assert_int_eq(rf_int(all, "limit"), 100);
        ck_assert_int_eq(rf_int(all, "offset"), 0);
        ck_assert_uint_eq(json_array_size(items), 8);
        for (int i = 0; i < 8; i++) {
            json_t *it = json_array_get(items, (size_t)i);
            ck_assert_msg(rf_int(it, "user_id") == u[want[i]].id,
                          "position %d: expected rank%d, got %s", i + 1,
                          want[i], it_jstr(it, "username"));
            ck_assert_int_eq(rf_int(it, "rank"), i + 1);
            ck_assert_msg(json_is_integer(json_object_get(it, "rev")),
                          "no rev");
        }
    }
    /* pages of 3 give the same sequence, and repeat identically */
    for (int rep = 0; rep < 2; rep++) {
        size_t seen = 0;
        for (int off = 0; off < 9; off += 3) {
            char *path = it_strf("/api/referral/leaderboard?limit=3"
                                 "&offset=%d",
                                 off);
            json_t *pg = rf_get_ok(h, path, NULL), *its, *it;
            size_t i;
            its = json_object_get(pg, "items");
            ck_assert_int_eq(rf_int(pg, "total"), 8);
            ck_assert_int_eq(rf_int(pg, "offset"), off);
            json_array_foreach(its, i, it) {
                json_t *want = json_array_get(items, seen++);
                ck_assert_int_eq(rf_int(it, "user_id"),
                                 rf_int(want, "user_id"));
                ck_assert_int_eq(rf_int(it, "rank"), rf_int(want, "rank"));
            }
            json_decref(pg);
            free(path);
        }
        ck_assert_uint_eq(seen, 8);
    }
    json_decref(all);
    /* beyond the end: empty, total still there */
    all = rf_get_ok(h, "/api/referral/leaderboard?offset=50", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(all, "items")), 0);
    ck_assert_int_eq(rf_int(all, "total"), 8);
    ck_assert_int_eq(rf_int(all, "limit"), 20);
    json_decref(all);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *path = it_strf("/api/referral/leaderboard?%s", bad[i]);
        rf_call(h, "GET", path, NULL, NULL, &r);
        it_assert_error(&r, 400, "invalid");
        weft_hresp_free(&r);
        free(path);
    }
    for (int i = 0; i < 8; i++)
        rf_user_free(&u[i]);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

/* ---- 32 registrations at once with one code ---------------------------- */

enum { RF_PAR = 32 };

struct rf_par {
    weft_harness *h;
    pthread_barrier_t *go;
    const char *code;
    int idx;
    int status;
    int64_t id;
};

static void *rf_par_run(void *arg)
{
    struct rf_par *p = arg;
    char name[32], *body;
    weft_hresp r;
    json_t *o;

    snprintf(name, sizeof(name), "crowd%02d", p->idx);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "email", name, "username",
                  name, "display_name", name, "password", "password-123",
                  "referral_code", p->code);
    json_object_set_new(o, "email", json_sprintf("%s@example.com", name));
    body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    pthread_barrier_wait(p->go);
    if (weft_harness_request(p->h, "POST", "/api/auth/register", RF_JSON,
                             body, strlen(body), &r) == 0) {
        p->status = r.status;
        if (r.status == 201) {
            json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
            p->id = json_integer_value(
                json_object_get(json_object_get(j, "user"), "id"));
            json_decref(j);
        }
        weft_hresp_free(&r);
    } else {
        p->status = -1;
    }
    free(body);
    return NULL;
}

START_TEST(concurrent_signups_same_code)
{
    char *dir = rf_tmpdir(), *topic;
    weft_harness *h = rf_start(dir, "");
    struct rf_user g, ref;
    struct rf_par par[RF_PAR];
    pthread_t th[RF_PAR];
    pthread_barrier_t go;
    struct rf_sse s, sg;
    int got[RF_PAR] = {0}, events = 0, level2 = 0;
    json_t *d;

    rf_register(h, "grandpa", "Grandpa", NULL, &g);
    rf_register(h, "popular", "Popular", g.code, &ref);
    topic = it_strf("referral.user.%lld", (long long)ref.id);
    ck_assert_int_eq(rf_sse_open(h, topic, ref.access, &s), 200);
    free(topic);
    topic = it_strf("referral.user.%lld", (long long)g.id);
    ck_assert_int_eq(rf_sse_open(h, topic, g.access, &sg), 200);
    free(topic);

    ck_assert_int_eq(pthread_barrier_init(&go, NULL, RF_PAR), 0);
    for (int i = 0; i < RF_PAR; i++) {
        par[i] = (struct rf_par){h, &go, ref.code, i, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, rf_par_run, &par[i]), 0);
    }
    for (int i = 0; i < RF_PAR; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < RF_PAR; i++)
        ck_assert_msg(par[i].status == 201 && par[i].id > 0,
                      "concurrent registration %d: status %d", i,
                      par[i].status);

    /* exactly 32, at both levels */
    rf_assert_stats(h, &ref, RF_PAR, 0, RF_PAR * 10);
    rf_assert_stats(h, &g, 1, RF_PAR, 10 + RF_PAR * 3);

    /* 32 friend_joined events, one per new account, then nothing more */
    {
        long long end = it_now_ms() + RF_EVENT_MS;
        while (events < RF_PAR && it_now_ms() < end &&
               (d = rf_sse_message(&s, (int)(end - it_now_ms()))) != NULL) {
            int64_t id = rf_int(json_object_get(d, "user"), "id");
            ck_assert_str_eq(it_jstr(d, "type"), "friend_joined");
            ck_assert_int_eq(rf_int(d, "level"), 1);
            for (int i = 0; i < RF_PAR; i++)
                if (par[i].id == id) {
                    ck_assert_msg(!got[i], "two friend_joined for %lld",
                                  (long long)id);
                    got[i] = 1;
                    events++;
                }
            json_decref(d);
        }
    }
    ck_assert_msg(events == RF_PAR, "%d friend_joined events, expected %d",
                  events, RF_PAR);
    d = rf_sse_message(&s, 500);
    ck_assert_msg(d == NULL, "an extra event: %s",
                  d ? json_dumps(d, JSON_COMPACT) : "");
    /* grandpa got level 2 for each */
    {
        long long end = it_now_ms() + RF_EVENT_MS;
        while (level2 < RF_PAR && it_now_ms() < end &&
               (d = rf_sse_message(&sg, (int)(end - it_now_ms()))) != NULL) {
            if (json_integer_value(json_object_get(d, "level")) == 2) {
                ck_assert_int_eq(
                    rf_int(json_object_get(d, "via"), "id"), ref.id);
                level2++;
            }
            json_decref(d);
        }
    }
    ck_assert_int_eq(level2, RF_PAR);
    rf_sse_close(&s);
    rf_sse_close(&sg);
    rf_user_free(&g);
    rf_user_free(&ref);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

/* Topic permissions; friend_joined; the leaderboard's "changes" carry the
 * changed rows only, with revs newer than the snapshot's. */
START_TEST(live_events)
{
    char *dir = rf_tmpdir(), *topic;
    weft_harness *h = rf_start(dir, "points_direct = 5\npoints_second = 1\n");
    struct rf_user g, ref, other, f;
    struct rf_sse s, board, no;
    json_t *d, *row, *ch, *it;
    int64_t rev_before;
    int seen[3] = {0, 0, 0};
    size_t i;

    rf_register(h, "gina", "Gina", NULL, &g);
    rf_register(h, "rick", "Rick \"R\" <b>", g.code, &ref);
    rf_register(h, "olga", "Olga", NULL, &other);
    row = rf_board_row(h, ref.id, NULL);
    rev_before = rf_int(row, "rev");
    json_decref(row);

    topic = it_strf("referral.user.%lld", (long long)ref.id);
    /* someone else: 403; signed out: 401 */
    ck_assert_int_eq(rf_sse_open(h, topic, other.access, &no), 403);
    ck_assert_msg(strstr(no.buf, "forbidden") != NULL, "403 body: %s",
                  no.buf);
    rf_sse_close(&no);
    ck_assert_int_eq(rf_sse_open(h, topic, NULL, &no), 401);
    rf_sse_close(&no);
    ck_assert_int_eq(rf_sse_open(h, topic, ref.access, &s), 200);
    free(topic);
    /* the leaderboard: anyone, signed out too */
    ck_assert_int_eq(rf_sse_open(h, "referral.leaderboard", NULL, &board),
                     200);

    rf_register(h, "fred", "Fr\xc3\xa9" "d", ref.code, &f);

    d = rf_wait_joined(&s, f.id);
    ck_assert_int_eq(rf_int(d, "level"), 1);
    ck_assert_str_eq(it_jstr(json_object_get(d, "user"), "username"),
                     "fred");
    ck_assert_str_eq(it_jstr(json_object_get(d, "user"), "display_name"),
                     "Fr\xc3\xa9" "d");
    json_decref(d);

    /* the one changes event of fred's signup: rick, gina and fred */
    for (;;) {
        int has_f = 0;
        d = rf_sse_message(&board, RF_EVENT_MS);
        ck_assert_msg(d != NULL, "no changes event for fred's signup");
        ck_assert_str_eq(it_jstr(d, "type"), "changes");
        ch = json_object_get(d, "changes");
        json_array_foreach(ch, i, it) has_f |= rf_int(it, "user_id") == f.id;
        if (has_f)
            break;
        json_decref(d);
    }
    if (json_array_size(ch) != 3)
        ck_abort_msg("changes has %zu rows, not 3: %s", json_array_size(ch),
                     json_dumps(ch, JSON_COMPACT));
    json_array_foreach(ch, i, it) {
        int64_t id = rf_int(it, "user_id");
        ck_assert_msg(id != other.id, "an unchanged row was sent");
        if (id == ref.id) {
            seen[0] = 1;
            ck_assert_int_eq(rf_int(it, "direct"), 1);
            ck_assert_int_eq(rf_int(it, "points"), 5);
            ck_assert_msg(rf_int(it, "rev") > rev_before,
                          "rev did not grow: %lld <= %lld",
                          (long long)rf_int(it, "rev"),
                          (long long)rev_before);
            ck_assert_str_eq(it_jstr(it, "display_name"), ref.display);
        } else if (id == g.id) {
            seen[1] = 1;
            ck_assert_int_eq(rf_int(it, "direct"), 1);
            ck_assert_int_eq(rf_int(it, "second"), 1);
            ck_assert_int_eq(rf_int(it, "points"), 6);
        } else if (id == f.id) {
            seen[2] = 1;
            ck_assert_int_eq(rf_int(it, "points"), 0);
        }
        ck_assert_msg(it_jstr(it, "username") != NULL &&
                          json_is_integer(json_object_get(it, "second")),
                      "a change without its fields");
    }
    ck_assert_msg(seen[0] && seen[1] && seen[2], "changes lack a row");
    /* the snapshot taken now has these revs: a client applying only newer
     * revs keeps it */
    row = rf_board_row(h, ref.id, NULL);
    json_array_foreach(ch, i, it) if (rf_int(it, "user_id") == ref.id)
        ck_assert_int_eq(rf_int(row, "rev"), rf_int(it, "rev"));
    json_decref(row);
    json_decref(d);

    /* a claim counts and announces like a signup: olga joins rick */
    {
        weft_hresp r;
        int64_t n_rows;
        rf_claim(h, &other, ref.code, &r);
        ck_assert_msg(r.status == 200, "claim: %d %s", r.status, r.body);
        weft_hresp_free(&r);
        d = rf_wait_joined(&s, other.id);
        ck_assert_int_eq(rf_int(d, "level"), 1);
        json_decref(d);
        for (;;) {
            int has_ref = 0;
            d = rf_sse_message(&board, RF_EVENT_MS);
            ck_assert_msg(d != NULL, "no changes event for the claim");
            ch = json_object_get(d, "changes");
            json_array_foreach(ch, i, it) has_ref |=
                rf_int(it, "user_id") == ref.id && rf_int(it, "direct") == 2;
            if (has_ref)
                break;
            json_decref(d);
        }
        /* rick and gina changed; olga's counts did not */
        n_rows = (int64_t)json_array_size(ch);
        if (n_rows != 2)
            ck_abort_msg("claim changes: %s", json_dumps(ch, JSON_COMPACT));
        json_decref(d);
    }

    rf_sse_close(&s);
    rf_sse_close(&board);
    rf_user_free(&g);
    rf_user_free(&ref);
    rf_user_free(&other);
    rf_user_free(&f);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

/* Admin routes: credentials, no e-mail, CSV quoting and formula safety;
 * a bad badges value refuses a reload and the old version keeps serving. */
START_TEST(admin_and_config)
{
    char *dir = rf_tmpdir(), *cfg;
    weft_harness *h = rf_start(dir, "");
    static const char *const paths[] = {
        "/api/referral/admin/accounts",
        "/api/referral/admin/export.csv",
    };
    static const char evil[] = "=HYPERLINK(\"http://x.example\",\"a, b\")";
    struct rf_user a, m, p;
    weft_hresp r;
    json_t *j, *items;
    char ct[128], *line;

    rf_register(h, "admin-viewer", "Plain", NULL, &a);
    rf_register(h, "-minus", evil, a.code, &m);
    rf_register(h, "plus", "+1 @home, \"quoted\"", NULL, &p);

    for (size_t i = 0; i < 2; i++) {
        rf_call(h, "GET", paths[i], NULL, NULL, &r);
        it_assert_error(&r, 401, "unauthorized");
        weft_hresp_free(&r);
        rf_call(h, "GET", paths[i], a.access, NULL, &r);
        it_assert_error(&r, 403, "forbidden");
        weft_hresp_free(&r);
    }
    ck_assert_int_eq(weft_harness_admin(h, "GET", paths[0], &r), 0);
    ck_assert_msg(r.status == 200, "accounts: %d %s", r.status, r.body);
    ck_assert_msg(strstr(r.body, "@example.com") == NULL &&
                      strstr(r.body, "email") == NULL,
                  "the admin list shows e-mail addresses: %.300s", r.body);
    j = it_json(&r);
    items = json_object_get(j, "items");
    ck_assert_int_eq(rf_int(j, "total"), 3);
    ck_assert_uint_eq(json_array_size(items), 3);
    ck_assert_int_eq(rf_int(json_array_get(items, 1), "referrer_id"), a.id);
    ck_assert_str_eq(it_jstr(json_array_get(items, 1), "code"), m.code);
    ck_assert_str_eq(it_jstr(json_array_get(items, 1), "display_name"), evil);
    json_decref(j);
    weft_hresp_free(&r);
    ck_assert_int_eq(weft_harness_admin(h, "GET",
                                        "/api/referral/admin/accounts?limit=0",
                                        &r),
                     0);
    it_assert_error(&r, 400, "invalid");
    weft_hresp_free(&r);

    ck_assert_int_eq(weft_harness_admin(h, "GET", paths[1], &r), 0);
    ck_assert_msg(r.status == 200, "export: %d %s", r.status, r.body);
    ck_assert_msg(weft_hresp_header(&r, "Content-Type", ct, sizeof(ct)) &&
                      strncmp(ct, "text/csv", 8) == 0,
                  "export Content-Type: %s", ct);
    ck_assert_msg(strncmp(r.body, "user_id,username,display_name,code,", 35) ==
                      0,
                  "no header row: %.200s", r.body);
    ck_assert_msg(strstr(r.body, "@example.com") == NULL,
                  "the export has e-mail addresses");
    /* -minus: the username is neutralised; the display name quoted, its
     * quotes doubled, and neutralised too */
    line = it_strf("%lld,'-minus,\"'=HYPERLINK(\"\"http://x.example\"\","
                   "\"\"a, b\"\")\",%s,%lld,0,0,0,",
                   (long long)m.id, m.code, (long long)a.id);
    ck_assert_msg(strstr(r.body, line) != NULL, "CSV row of -minus is not\n%s\n"
                                                "in\n%s",
                  line, r.body);
    free(line);
    line = it_strf("%lld,plus,\"'+1 @home, \"\"quoted\"\"\",%s,,0,0,0,",
                   (long long)p.id, p.code);
    ck_assert_msg(strstr(r.body, line) != NULL, "CSV row of plus is not\n%s\n"
                                                "in\n%s",
                  line, r.body);
    free(line);
    weft_hresp_free(&r);

    /* bad badges: the reload is refused, saying why; the running version
     * keeps answering */
    cfg = rf_config(dir, "badges = 5:Five,3:Three\n");
    ck_assert_int_eq(weft_harness_write_config(h, cfg), 0);
    free(cfg);
    ck_assert_int_eq(weft_harness_admin(h, "POST",
                                        "/admin/plugins/referral/reload", &r),
                     0);
    ck_assert_msg(r.status == 422 && strstr(r.body, "badges") != NULL,
                  "reload with bad badges: %d %s", r.status, r.body);
    weft_hresp_free(&r);
    json_decref(rf_get_ok(h, "/api/referral/leaderboard", NULL));
    cfg = rf_config(dir, "badges = 1:One,x:Two\n");
    ck_assert_int_eq(weft_harness_write_config(h, cfg), 0);
    free(cfg);
    ck_assert_int_eq(weft_harness_admin(h, "POST",
                                        "/admin/plugins/referral/reload", &r),
                     0);
    ck_assert_msg(r.status == 422 && strstr(r.body, "badges") != NULL,
                  "reload with bad badges: %d %s", r.status, r.body);
    weft_hresp_free(&r);

    rf_user_free(&a);
    rf_user_free(&m);
    rf_user_free(&p);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration_referral");
    TCase *tc = tcase_create("referral");
    static const char *const clean[] = {
        "WEFT_AUTH_",
        "WEFT_DATABASE_",
        "WEFT_ADMIN_",
        "WEFT_PLUGIN_REFERRAL_", NULL};

    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, codes_and_unicode);
    tcase_add_test(tc, signup_links_and_rewards);
    tcase_add_test(tc, claim_rules_and_legacy_accounts);
    tcase_add_test(tc, leaderboard_pages);
    tcase_add_test(tc, concurrent_signups_same_code);
    tcase_add_test(tc, live_events);
    tcase_add_test(tc, admin_and_config);
    suite_add_tcase(s, tc);
    /* the configs here say what they mean: no environment overrides */
    return it_run_suite_clean(s, clean);
}
