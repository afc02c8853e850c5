/*
 * The todo plugin (plugins/todo) end to end, against a real weftd with its
 * embedded PostgreSQL: the whole workflow, signed-out clients, other
 * users' and impossible ids, validation, limits, and the events every
 * change publishes on todo.user.<uid>, read the way a browser would, from
 * the realtime SSE endpoint.
 *
 * Each test starts its own weftd (so its own cluster) and runs many checks
 * against it; users are registered through /api/auth/register, with cheap
 * password hashing and a registration rate no test reaches.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "it_common.h"

#ifndef IT_TODO_SO
#error "IT_TODO_SO must be defined by the build"
#endif

extern char **environ;

#define TD_JSON "Content-Type: application/json\r\n"
#define TD_AUTH                                                                \
    "argon2_opslimit = 1\nargon2_memlimit = 64k\n"                             \
    "register_rate = 10000\nlogin_rate = 10000\n"

/* How long an event may take through the outbox relay. */
#define TD_EVENT_MS 10000
/* How long we wait to be sure that no further event comes. */
#define TD_QUIET_MS 1000

/* ---- weftd and users ---------------------------------------------------- */

/* weftd with the database, cheap identity and the todo plugin, whose
 * section gets `todo_extra` (e.g. "max_items = 3\n"). */
static weft_harness *td_start(const char *todo_extra)
{
    char *extra = it_strf("[database]\nenabled = true\n"
                          "[auth]\n" TD_AUTH
                          "[plugin.todo]\npath = %s\nenabled = true\n%s",
                          IT_TODO_SO, todo_extra != NULL ? todo_extra : "");
    weft_harness *h = it_start(extra, 2);

    free(extra);
    return h;
}

struct td_user {
    char *auth; /* "Authorization: Bearer ...\r\n" */
    json_int_t id;
};

static void td_user_free(struct td_user *u)
{
    free(u->auth);
    memset(u, 0, sizeof(*u));
}

/* One request; `u` NULL: signed out; a body is sent as JSON. */
static void td_call(weft_harness *h, const struct td_user *u,
                    const char *method, const char *path, const char *body,
                    weft_hresp *out)
{
    char *hdrs = it_strf("%s%s", body != NULL ? TD_JSON : "",
                         u != NULL ? u->auth : "");

    it_req(h, method, path, hdrs, body, body != NULL ? strlen(body) : 0, out);
    free(hdrs);
}

static void td_register(weft_harness *h, const char *name, struct td_user *u)
{
    char *body = it_strf("{\"email\":\"%s@example.com\",\"username\":\"%s\","
                         "\"display_name\":\"%s\",\"password\":\"%s-pass-1\"}",
                         name, name, name, name);
    weft_hresp r;
    json_t *j, *id;
    const char *tok;

    td_call(h, NULL, "POST", "/api/auth/register", body, &r);
    ck_assert_msg(r.status == 201, "register %s: %d %.300s", name, r.status,
                  r.body);
    j = it_json(&r);
    tok = it_jstr(j, "access_token");
    id = json_object_get(json_object_get(j, "user"), "id");
    ck_assert_msg(tok != NULL && json_is_integer(id),
                  "register: no token or user id: %.300s", r.body);
    u->auth = it_strf("Authorization: Bearer %s\r\n", tok);
    u->id = json_integer_value(id);
    json_decref(j);
    weft_hresp_free(&r);
    free(body);
}

/* ---- calls with expectations -------------------------------------------- */

/* Assert `status`; return the JSON body (NULL for 204) and, when `rid` is
 * given, the request id (64 bytes). */
static json_t *td_rid(weft_harness *h, const struct td_user *u,
                      const char *method, const char *path, const char *body,
                      int status, char *rid)
{
    weft_hresp r;
    json_t *j = NULL;

    td_call(h, u, method, path, body, &r);
    ck_assert_msg(r.status == status, "%s %s %s: expected %d, got %d: %.400s",
                  method, path, body != NULL ? body : "", status, r.status,
                  r.body);
    if (status == 204)
        ck_assert_msg(r.body_len == 0, "204 with a body: %.100s", r.body);
    else
        j = it_json(&r);
    if (rid != NULL)
        ck_assert_msg(weft_hresp_header(&r, "X-Request-Id", rid, 64) != NULL,
                      "no X-Request-Id:\n%s", r.head);
    weft_hresp_free(&r);
    return j;
}

static json_t *td_ok(weft_harness *h, const struct td_user *u,
                     const char *method, const char *path, const char *body,
                     int status)
{
    return td_rid(h, u, method, path, body, status, NULL);
}

/* Assert an error answer; return its message (malloc'd). */
static char *td_err(weft_harness *h, const struct td_user *u,
                    const char *method, const char *path, const char *body,
                    int status, const char *code)
{
    weft_hresp r;
    json_t *j;
    char *msg;

    td_call(h, u, method, path, body, &r);
    ck_assert_msg(r.status == status,
                  "%s %s %s: expected %d %s, got %d: %.400s", method, path,
                  body != NULL ? body : "", status, code, r.status, r.body);
    it_assert_error(&r, status, code);
    j = it_json(&r);
    msg = strdup(it_jstr(json_object_get(j, "error"), "message"));
    ck_assert_ptr_nonnull(msg);
    json_decref(j);
    weft_hresp_free(&r);
    return msg;
}

static void td_404(weft_harness *h, const struct td_user *u,
                   const char *method, const char *path, const char *body)
{
    free(td_err(h, u, method, path, body, 404, "not_found"));
}

/* 400 "invalid" whose message names `field`. */
static void td_invalid(weft_harness *h, const struct td_user *u,
                       const char *method, const char *path, const char *body,
                       const char *field)
{
    char *m = td_err(h, u, method, path, body, 400, "invalid");

    ck_assert_msg(it_contains_ci(m, field),
                  "%s %s %.200s: the message \"%s\" does not name %s", method,
                  path, body, m, field);
    free(m);
}

static json_int_t td_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "\"%s\" is not an integer", key);
    return json_integer_value(v);
}

/* A JSON text {"key": "value"} with `value` properly escaped. */
static char *td_obj1(const char *key, const char *value)
{
    json_t *o = json_pack("{s:s}", key, value);
    char *s = json_dumps(o, JSON_COMPACT);

    ck_assert_ptr_nonnull(s);
    json_decref(o);
    return s;
}

/* `n` copies of `unit`. */
static char *td_repeat(const char *unit, int n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * (size_t)n + 1);

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < n; i++)
        memcpy(s + ul * (size_t)i, unit, ul);
    s[ul * (size_t)n] = '\0';
    return s;
}

static json_int_t td_new_list(weft_harness *h, const struct td_user *u,
                              const char *title)
{
    char *body = td_obj1("title", title);
    json_t *j = td_ok(h, u, "POST", "/api/todo/lists", body, 201);
    json_int_t id = td_int(j, "id");

    ck_assert_str_eq(it_jstr(j, "title"), title);
    json_decref(j);
    free(body);
    return id;
}

static json_int_t td_new_item(weft_harness *h, const struct td_user *u,
                              json_int_t list, const char *text)
{
    char *body = td_obj1("text", text),
         *path = it_strf("/api/todo/lists/%lld/items", (long long)list);
    json_t *j = td_ok(h, u, "POST", path, body, 201);
    json_int_t id = td_int(j, "id");

    ck_assert_str_eq(it_jstr(j, "text"), text);
    ck_assert_int_eq(td_int(j, "list_id"), list);
    json_decref(j);
    free(body);
    free(path);
    return id;
}

/* GET /api/todo/lists: the lists array (new reference). */
static json_t *td_lists(weft_harness *h, const struct td_user *u)
{
    json_t *j = td_ok(h, u, "GET", "/api/todo/lists", NULL, 200),
           *l = json_incref(json_object_get(j, "lists"));

    ck_assert_msg(json_is_array(l), "no lists array");
    json_decref(j);
    return l;
}

/* GET /api/todo/lists/:id/items: the whole answer. */
static json_t *td_items(weft_harness *h, const struct td_user *u,
                        json_int_t list)
{
    char *path = it_strf("/api/todo/lists/%lld/items", (long long)list);
    json_t *j = td_ok(h, u, "GET", path, NULL, 200);

    ck_assert_msg(json_is_object(json_object_get(j, "list")) &&
                      json_is_array(json_object_get(j, "items")),
                  "items answer without list and items");
    free(path);
    return j;
}

/* The ids of the items answer, in order, as "a,b,c". */
static char *td_item_ids(json_t *answer)
{
    json_t *items = json_object_get(answer, "items"), *it;
    char *s = strdup(""), *n;
    size_t i;

    json_array_foreach(items, i, it) {
        n = it_strf("%s%s%lld", s, i > 0 ? "," : "",
                    (long long)td_int(it, "id"));
        free(s);
        s = n;
    }
    return s;
}

/* The shape of an item. */
static void td_check_item(json_t *it)
{
    static const char *const keys[] = {"id",       "list_id",    "text",
                                       "done",     "position",   "created_at",
                                       "updated_at"};

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        ck_assert_msg(json_object_get(it, keys[k]) != NULL,
                      "item without %s", keys[k]);
    ck_assert_uint_eq(json_object_size(it), 7);
    ck_assert(json_is_boolean(json_object_get(it, "done")));
    ck_assert(json_is_string(json_object_get(it, "created_at")));
    ck_assert(json_is_string(json_object_get(it, "updated_at")));
}

/* The shape of a list, with its counts. */
static void td_check_list(json_t *l, const char *title, json_int_t open,
                          json_int_t done)
{
    ck_assert_uint_eq(json_object_size(l), 6);
    ck_assert(json_is_integer(json_object_get(l, "id")));
    ck_assert(json_is_integer(json_object_get(l, "position")));
    ck_assert(json_is_string(json_object_get(l, "created_at")));
    ck_assert_str_eq(it_jstr(l, "title"), title);
    ck_assert_int_eq(td_int(l, "open"), open);
    ck_assert_int_eq(td_int(l, "done"), done);
}

/* ---- the realtime stream ------------------------------------------------ */

struct td_sse {
    int fd;
    char *buf;
    size_t len, cap;
};

/* Read more into the buffer; 0, or -1 on timeout or end of stream. */
static int td_sse_fill(struct td_sse *s, long long deadline)
{
    struct pollfd pfd = {s->fd, POLLIN, 0};
    long long left = deadline - it_now_ms();
    ssize_t n;

    if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
        return -1;
    if (s->cap - s->len < 4097) {
        s->cap = s->cap ? s->cap * 2 : 8192;
        s->buf = realloc(s->buf, s->cap);
        ck_assert_ptr_nonnull(s->buf);
    }
    n = recv(s->fd, s->buf + s->len, s->cap - s->len - 1, 0);
    if (n <= 0)
        return -1;
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
    return 0;
}

/* Drop the first `n` bytes of the buffer. */
static void td_sse_take(struct td_sse *s, size_t n)
{
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
    s->buf[s->len] = '\0';
}

/* The next event ("event:" and "data:" of one block, malloc'd); 0, or -1
 * when none came in time. Comments (": ping") are skipped. */
static int td_sse_event(struct td_sse *s, int timeout_ms, char **event,
                        char **data)
{
    long long deadline = it_now_ms() + timeout_ms;
    char *end, *line, *next;

    *event = *data = NULL;
    for (;;) {
        while (s->buf == NULL || (end = strstr(s->buf, "\n\n")) == NULL)
            if (td_sse_fill(s, deadline) != 0)
                return -1;
        *end = '\0';
        for (line = s->buf; line != NULL && *line != '\0'; line = next) {
            next = strchr(line, '\n');
            if (next != NULL)
                *next++ = '\0';
            if (strncmp(line, "event: ", 7) == 0)
                *event = strdup(line + 7);
            else if (strncmp(line, "data: ", 6) == 0)
                *data = strdup(line + 6);
        }
        td_sse_take(s, (size_t)(end + 2 - s->buf));
        if (*event != NULL || *data != NULL)
            return 0;
    }
}

/* Subscribe `u` to todo.user.<uid> (which must be allowed) and wait until
 * the subscription is live. */
static void td_sse_open(weft_harness *h, const struct td_user *u,
                        json_int_t uid, struct td_sse *s)
{
    char *req = it_strf("GET /api/realtime?topic=todo.user.%lld HTTP/1.1\r\n"
                        "Host: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                        "%s\r\n",
                        (long long)uid, u->auth);
    long long deadline = it_now_ms() + IT_READ_MS;
    char *head_end, *ev, *data;

    memset(s, 0, sizeof(*s));
    s->fd = weft_harness_connect(h);
    ck_assert_msg(s->fd >= 0, "connect: %s", strerror(errno));
    ck_assert_int_eq(weft_harness_send(s->fd, req, strlen(req)), 0);
    free(req);
    while (s->buf == NULL || (head_end = strstr(s->buf, "\r\n\r\n")) == NULL)
        ck_assert_msg(td_sse_fill(s, deadline) == 0,
                      "no answer head from /api/realtime");
    ck_assert_msg(strncmp(s->buf, "HTTP/1.1 200", 12) == 0,
                  "/api/realtime: %.300s", s->buf);
    ck_assert_msg(it_contains_ci(s->buf, "text/event-stream"),
                  "not an event stream: %.300s", s->buf);
    td_sse_take(s, (size_t)(head_end + 4 - s->buf));
    for (;;) {
        ck_assert_msg(td_sse_event(s, IT_READ_MS, &ev, &data) == 0,
                      "no \"subscribed\" event");
        int done = ev != NULL && strcmp(ev, "subscribed") == 0;
        free(ev);
        free(data);
        if (done)
            break;
    }
}

static void td_sse_close(struct td_sse *s)
{
    weft_harness_close(s->fd);
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

/* The data of the next message on the stream (new reference), or NULL
 * when none came within timeout_ms. Asserts the message's topic. */
static json_t *td_sse_next(struct td_sse *s, json_int_t uid, int timeout_ms)
{
    char *ev, *data, *topic = it_strf("todo.user.%lld", (long long)uid);
    json_t *m, *d;
    json_error_t err;

    for (;;) {
        if (td_sse_event(s, timeout_ms, &ev, &data) != 0) {
            free(topic);
            return NULL;
        }
        if (ev != NULL && strcmp(ev, "message") == 0)
            break;
        free(ev);
        free(data);
    }
    ck_assert_msg(data != NULL, "message event without data");
    m = json_loads(data, 0, &err);
    ck_assert_msg(m != NULL, "message data is not JSON (%s): %s", err.text,
                  data);
    ck_assert_msg(it_jstr(m, "topic") != NULL &&
                      strcmp(it_jstr(m, "topic"), topic) == 0,
                  "a message on another topic: %s", data);
    d = json_incref(json_object_get(m, "data"));
    ck_assert_msg(json_is_object(d), "message without data object: %s", data);
    json_decref(m);
    free(ev);
    free(data);
    free(topic);
    return d;
}

/* The next event must be `type` about `list`, made by request `rid`;
 * returns it for more checks. */
static json_t *td_expect_event(struct td_sse *s, json_int_t uid,
                               const char *type, json_int_t list,
                               const char *rid)
{
    json_t *d = td_sse_next(s, uid, TD_EVENT_MS);
    char *text;

    ck_assert_msg(d != NULL, "no %s event within %d ms", type, TD_EVENT_MS);
    text = json_dumps(d, JSON_COMPACT);
    ck_assert_msg(it_jstr(d, "type") != NULL &&
                      strcmp(it_jstr(d, "type"), type) == 0,
                  "expected a %s event, got %s", type, text);
    ck_assert_msg(td_int(d, "list_id") == list, "%s: list_id is not %lld: %s",
                  type, (long long)list, text);
    ck_assert_msg(it_jstr(d, "by") != NULL &&
                      strcmp(it_jstr(d, "by"), rid) == 0,
                  "%s: \"by\" is not the request id %s: %s", type, rid, text);
    free(text);
    return d;
}

/* No further event within TD_QUIET_MS. */
static void td_expect_quiet(struct td_sse *s, json_int_t uid)
{
    json_t *d = td_sse_next(s, uid, TD_QUIET_MS);
    char *text = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;

    ck_assert_msg(d == NULL, "an unexpected event: %s", text);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(workflow)
{
    weft_harness *h = td_start(NULL);
    struct td_user a;
    json_t *lists, *j, *l;
    json_int_t mine, shop, milk, eggs, bread, again;
    char *path, *ids;

    td_register(h, "alice", &a);

    /* a new user has one list, made once */
    lists = td_lists(h, &a);
    ck_assert_uint_eq(json_array_size(lists), 1);
    td_check_list(json_array_get(lists, 0), "My list", 0, 0);
    mine = td_int(json_array_get(lists, 0), "id");
    json_decref(lists);
    lists = td_lists(h, &a);
    ck_assert_uint_eq(json_array_size(lists), 1);
    ck_assert_int_eq(td_int(json_array_get(lists, 0), "id"), mine);
    json_decref(lists);

    /* list create and rename */
    j = td_ok(h, &a, "POST", "/api/todo/lists", "{\"title\":\"Groceries\"}",
              201);
    td_check_list(j, "Groceries", 0, 0);
    shop = td_int(j, "id");
    ck_assert_int_gt(td_int(j, "position"), 0);
    json_decref(j);
    path = it_strf("/api/todo/lists/%lld", (long long)shop);
    j = td_ok(h, &a, "PATCH", path, "{\"title\":\"Shopping\"}", 200);
    td_check_list(j, "Shopping", 0, 0);
    ck_assert_int_eq(td_int(j, "id"), shop);
    json_decref(j);
    free(path);
    lists = td_lists(h, &a);
    ck_assert_uint_eq(json_array_size(lists), 2);
    ck_assert_str_eq(it_jstr(json_array_get(lists, 0), "title"), "My list");
    ck_assert_str_eq(it_jstr(json_array_get(lists, 1), "title"), "Shopping");
    json_decref(lists);

    /* items are appended */
    milk = td_new_item(h, &a, shop, "milk");
    eggs = td_new_item(h, &a, shop, "eggs");
    bread = td_new_item(h, &a, shop, "bread");
    j = td_items(h, &a, shop);
    ids = td_item_ids(j);
    path = it_strf("%lld,%lld,%lld", (long long)milk, (long long)eggs,
                   (long long)bread);
    ck_assert_str_eq(ids, path);
    free(ids);
    free(path);
    td_check_item(json_array_get(json_object_get(j, "items"), 0));
    td_check_list(json_object_get(j, "list"), "Shopping", 3, 0);
    json_decref(j);

    /* edit, toggle, toggle back, both at once */
    path = it_strf("/api/todo/items/%lld", (long long)eggs);
    j = td_ok(h, &a, "PATCH", path, "{\"text\":\"6 eggs\"}", 200);
    td_check_item(j);
    ck_assert_str_eq(it_jstr(j, "text"), "6 eggs");
    ck_assert(json_is_false(json_object_get(j, "done")));
    json_decref(j);
    free(path);
    path = it_strf("/api/todo/items/%lld", (long long)milk);
    j = td_ok(h, &a, "PATCH", path, "{\"done\":true}", 200);
    ck_assert(json_is_true(json_object_get(j, "done")));
    ck_assert_str_eq(it_jstr(j, "text"), "milk");
    json_decref(j);
    j = td_ok(h, &a, "PATCH", path, "{\"done\":false}", 200);
    ck_assert(json_is_false(json_object_get(j, "done")));
    json_decref(j);
    j = td_ok(h, &a, "PATCH", path, "{\"text\":\"oat milk\",\"done\":true}",
              200);
    ck_assert(json_is_true(json_object_get(j, "done")));
    ck_assert_str_eq(it_jstr(j, "text"), "oat milk");
    json_decref(j);
    free(path);
    lists = td_lists(h, &a);
    td_check_list(json_array_get(lists, 1), "Shopping", 2, 1);
    json_decref(lists);

    /* reorder */
    path = it_strf("/api/todo/lists/%lld/reorder", (long long)shop);
    ids = it_strf("{\"ids\":[%lld,%lld,%lld]}", (long long)bread,
                  (long long)milk, (long long)eggs);
    j = td_ok(h, &a, "POST", path, ids, 200);
    free(ids);
    ids = td_item_ids(j);
    free(path);
    path = it_strf("%lld,%lld,%lld", (long long)bread, (long long)milk,
                   (long long)eggs);
    ck_assert_str_eq(ids, path);
    for (int i = 0; i < 3; i++) {
        json_t *it = json_array_get(json_object_get(j, "items"), (size_t)i);
        td_check_item(it);
        ck_assert_int_eq(td_int(it, "position"), i);
    }
    json_decref(j);
    free(ids);
    j = td_items(h, &a, shop);
    ids = td_item_ids(j);
    ck_assert_str_eq(ids, path);
    free(ids);
    free(path);
    json_decref(j);

    /* remove one */
    path = it_strf("/api/todo/items/%lld", (long long)eggs);
    j = td_ok(h, &a, "DELETE", path, NULL, 204);
    td_404(h, &a, "DELETE", path, NULL);
    td_404(h, &a, "PATCH", path, "{\"done\":true}");
    free(path);

    /* clear completed: oat milk goes, bread stays; then nothing to clear */
    path = it_strf("/api/todo/lists/%lld/clear-completed", (long long)shop);
    j = td_ok(h, &a, "POST", path, NULL, 200);
    ck_assert_int_eq(td_int(j, "removed"), 1);
    json_decref(j);
    j = td_ok(h, &a, "POST", path, NULL, 200);
    ck_assert_int_eq(td_int(j, "removed"), 0);
    json_decref(j);
    free(path);
    j = td_items(h, &a, shop);
    ids = td_item_ids(j);
    path = it_strf("%lld", (long long)bread);
    ck_assert_str_eq(ids, path);
    td_check_list(json_object_get(j, "list"), "Shopping", 1, 0);
    free(ids);
    free(path);
    json_decref(j);
    /* an item added now goes after the last one */
    again = td_new_item(h, &a, shop, "apples");
    j = td_items(h, &a, shop);
    l = json_object_get(j, "items");
    ck_assert_int_eq(td_int(json_array_get(l, 1), "id"), again);
    ck_assert_int_gt(td_int(json_array_get(l, 1), "position"),
                     td_int(json_array_get(l, 0), "position"));
    json_decref(j);

    /* delete a list: its items go with it */
    path = it_strf("/api/todo/lists/%lld", (long long)shop);
    j = td_ok(h, &a, "DELETE", path, NULL, 204);
    td_404(h, &a, "DELETE", path, NULL);
    free(path);
    path = it_strf("/api/todo/lists/%lld/items", (long long)shop);
    td_404(h, &a, "GET", path, NULL);
    free(path);
    path = it_strf("/api/todo/items/%lld", (long long)bread);
    td_404(h, &a, "PATCH", path, "{\"done\":true}");
    free(path);
    lists = td_lists(h, &a);
    ck_assert_uint_eq(json_array_size(lists), 1);
    ck_assert_int_eq(td_int(json_array_get(lists, 0), "id"), mine);
    json_decref(lists);

    /* with no list left, a user starts again from "My list" */
    path = it_strf("/api/todo/lists/%lld", (long long)mine);
    j = td_ok(h, &a, "DELETE", path, NULL, 204);
    free(path);
    lists = td_lists(h, &a);
    ck_assert_uint_eq(json_array_size(lists), 1);
    td_check_list(json_array_get(lists, 0), "My list", 0, 0);
    ck_assert_int_ne(td_int(json_array_get(lists, 0), "id"), mine);
    json_decref(lists);

    td_user_free(&a);
    it_stop_ok(h);
}
END_TEST

/* Every route of the plugin, with `%s` for an id. */
static const struct {
    const char *method, *path, *body;
} td_routes[] = {
    {"GET", "/api/todo/lists", NULL},
    {"POST", "/api/todo/lists", "{\"title\":\"x\"}"},
    {"PATCH", "/api/todo/lists/%s", "{\"title\":\"x\"}"},
    {"DELETE", "/api/todo/lists/%s", NULL},
    {"GET", "/api/todo/lists/%s/items", NULL},
    {"POST", "/api/todo/lists/%s/items", "{\"text\":\"x\"}"},
    {"POST", "/api/todo/lists/%s/reorder", "{\"ids\":[]}"},
    {"POST", "/api/todo/lists/%s/clear-completed", NULL},
    {"PATCH", "/api/todo/items/%s", "{\"done\":true}"},
    {"DELETE", "/api/todo/items/%s", NULL},
};
#define TD_NROUTES (sizeof(td_routes) / sizeof(td_routes[0]))

/* A route's path with `id` in place of its "%s". */
static char *td_route_path(size_t i, const char *id)
{
    const char *pat = td_routes[i].path, *at = strstr(pat, "%s");

    if (at == NULL)
        return strdup(pat);
    return it_strf("%.*s%s%s", (int)(at - pat), pat, id, at + 2);
}

START_TEST(signed_out)
{
    weft_harness *h = td_start(NULL);
    struct td_user bad = {strdup("Authorization: Bearer not.a.token\r\n"), 0};

    for (size_t i = 0; i < TD_NROUTES; i++) {
        char *path = td_route_path(i, "1");

        free(td_err(h, NULL, td_routes[i].method, path, td_routes[i].body,
                    401, "unauthorized"));
        free(td_err(h, &bad, td_routes[i].method, path, td_routes[i].body,
                    401, "unauthorized"));
        free(path);
    }
    td_user_free(&bad);
    it_stop_ok(h);
}
END_TEST

START_TEST(other_users_and_unknown_ids)
{
    weft_harness *h = td_start(NULL);
    struct td_user a, b;
    json_t *lists, *before, *after;
    json_int_t list, open, done;
    char *s, *sbefore, *safter;
    static const char *const bad_ids[] = {
        "999999",   "0",  "-1", "abc", "1.5", "1e3", "0x10",
        "9223372036854775808", "99999999999999999999999", "%2B1"};

    td_register(h, "alice", &a);
    td_register(h, "bob", &b);
    lists = td_lists(h, &a);
    list = td_int(json_array_get(lists, 0), "id");
    json_decref(lists);
    open = td_new_item(h, &a, list, "open item");
    done = td_new_item(h, &a, list, "done item");
    s = it_strf("/api/todo/items/%lld", (long long)done);
    json_decref(td_ok(h, &a, "PATCH", s, "{\"done\":true}", 200));
    free(s);
    before = td_items(h, &a, list);

    /* bob sees only his own list */
    lists = td_lists(h, &b);
    ck_assert_uint_eq(json_array_size(lists), 1);
    ck_assert_int_ne(td_int(json_array_get(lists, 0), "id"), list);
    json_decref(lists);

    /* alice's ids are not found for bob, on every route; the reorder
     * carries alice's exact item ids, so only ownership can refuse it */
    for (size_t i = 0; i < TD_NROUTES; i++) {
        const char *m = td_routes[i].method, *body = td_routes[i].body;
        char *id, *path, *ro = NULL;

        if (strstr(td_routes[i].path, "%s") == NULL)
            continue;
        if (strstr(td_routes[i].path, "/items/") != NULL) {
            /* both items, and both kinds of change */
            for (int k = 0; k < 2; k++) {
                id = it_strf("%lld", (long long)(k ? done : open));
                path = td_route_path(i, id);
                td_404(h, &b, m, path, body);
                if (strcmp(m, "PATCH") == 0)
                    td_404(h, &b, m, path, "{\"text\":\"mine now\"}");
                free(path);
                free(id);
            }
            continue;
        }
        id = it_strf("%lld", (long long)list);
        path = td_route_path(i, id);
        if (strstr(path, "/reorder") != NULL)
            body = ro = it_strf("{\"ids\":[%lld,%lld]}", (long long)done,
                                (long long)open);
        td_404(h, &b, m, path, body);
        free(path);
        free(id);
        free(ro);
    }
    /* ... and nothing of alice's changed */
    after = td_items(h, &a, list);
    sbefore = json_dumps(before, JSON_SORT_KEYS | JSON_COMPACT);
    safter = json_dumps(after, JSON_SORT_KEYS | JSON_COMPACT);
    ck_assert_str_eq(safter, sbefore);
    free(sbefore);
    free(safter);
    json_decref(before);
    json_decref(after);

    /* unknown and impossible ids: 404 for the owner too */
    for (size_t k = 0; k < sizeof(bad_ids) / sizeof(bad_ids[0]); k++)
        for (size_t i = 0; i < TD_NROUTES; i++) {
            char *path;

            if (strstr(td_routes[i].path, "%s") == NULL)
                continue;
            path = td_route_path(i, bad_ids[k]);
            td_404(h, &a, td_routes[i].method, path, td_routes[i].body);
            free(path);
        }

    td_user_free(&a);
    td_user_free(&b);
    it_stop_ok(h);
}
END_TEST

START_TEST(validation)
{
    weft_harness *h = td_start(NULL);
    struct td_user a;
    json_t *lists, *j;
    json_int_t list, other, x, y, z, w;
    char *path, *ipath, *s, *body, *msg;

    td_register(h, "alice", &a);
    lists = td_lists(h, &a);
    list = td_int(json_array_get(lists, 0), "id");
    json_decref(lists);
    path = it_strf("/api/todo/lists/%lld", (long long)list);

    /* titles: 1..100 characters (not bytes), on create and rename */
    static const char *const bad_titles[] = {"{\"title\":\"\"}",
                                             "{\"title\":\"   \"}",
                                             "{}",
                                             "{\"title\":5}",
                                             "{\"title\":null}",
                                             "{\"title\":[\"a\"]}"};
    for (size_t i = 0; i < sizeof(bad_titles) / sizeof(bad_titles[0]); i++) {
        td_invalid(h, &a, "POST", "/api/todo/lists", bad_titles[i], "title");
        td_invalid(h, &a, "PATCH", path, bad_titles[i], "title");
    }
    s = td_repeat("a", 101);
    body = td_obj1("title", s);
    td_invalid(h, &a, "POST", "/api/todo/lists", body, "title");
    td_invalid(h, &a, "PATCH", path, body, "title");
    free(s);
    free(body);
    s = td_repeat("\xc3\xa9", 101); /* é */
    body = td_obj1("title", s);
    td_invalid(h, &a, "POST", "/api/todo/lists", body, "title");
    free(s);
    free(body);
    s = td_repeat("a", 100);
    td_new_list(h, &a, s);
    free(s);
    s = td_repeat("\xc3\xa9", 100);
    td_new_list(h, &a, s);
    free(s);
    s = td_repeat("\xf0\x9f\x98\x80", 100); /* an emoji, 4 bytes */
    td_new_list(h, &a, s);
    free(s);

    /* unknown fields, bad JSON, not an object */
    td_invalid(h, &a, "POST", "/api/todo/lists",
               "{\"title\":\"x\",\"color\":\"red\"}", "color");
    td_invalid(h, &a, "PATCH", path, "{\"title\":\"x\",\"id\":3}", "id");
    free(td_err(h, &a, "POST", "/api/todo/lists", "{\"title\":", 400,
                "bad_json"));
    free(td_err(h, &a, "POST", "/api/todo/lists", "{\"title\":\"a\"} x", 400,
                "bad_json"));
    free(td_err(h, &a, "POST", "/api/todo/lists", "", 400, "bad_json"));
    msg = td_err(h, &a, "POST", "/api/todo/lists", "[\"title\"]", 400,
                 "invalid");
    ck_assert_msg(it_contains_ci(msg, "object"), "message: %s", msg);
    free(msg);
    /* the rename refused above changed nothing */
    lists = td_lists(h, &a);
    ck_assert_str_eq(it_jstr(json_array_get(lists, 0), "title"), "My list");
    json_decref(lists);

    /* item text: 1..500 characters */
    free(path);
    path = it_strf("/api/todo/lists/%lld/items", (long long)list);
    static const char *const bad_texts[] = {"{\"text\":\"\"}",
                                            "{\"text\":\"\\n\\t \"}",
                                            "{}",
                                            "{\"text\":true}",
                                            "{\"title\":\"x\"}"};
    for (size_t i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++)
        td_invalid(h, &a, "POST", path, bad_texts[i],
                   i == 4 ? "title" : "text");
    td_invalid(h, &a, "POST", path, "{\"text\":\"x\",\"done\":true}", "done");
    s = td_repeat("b", 501);
    body = td_obj1("text", s);
    td_invalid(h, &a, "POST", path, body, "text");
    free(s);
    free(body);
    s = td_repeat("\xe2\x82\xac", 500); /* € */
    x = td_new_item(h, &a, list, s);
    free(s);
    s = td_repeat("b", 500);
    y = td_new_item(h, &a, list, s);
    free(s);

    /* the edit: at least one field, each checked */
    ipath = it_strf("/api/todo/items/%lld", (long long)x);
    td_invalid(h, &a, "PATCH", ipath, "{}", "text");
    td_invalid(h, &a, "PATCH", ipath, "{\"text\":\"\"}", "text");
    td_invalid(h, &a, "PATCH", ipath, "{\"done\":\"yes\"}", "done");
    td_invalid(h, &a, "PATCH", ipath, "{\"done\":1}", "done");
    td_invalid(h, &a, "PATCH", ipath, "{\"done\":true,\"position\":0}",
               "position");
    s = td_repeat("c", 501);
    body = td_obj1("text", s);
    td_invalid(h, &a, "PATCH", ipath, body, "text");
    free(s);
    free(body);
    free(td_err(h, &a, "PATCH", ipath, "{\"done\":tru}", 400, "bad_json"));
    j = td_ok(h, &a, "GET", path, NULL, 200);
    ck_assert(json_is_false(json_object_get(
        json_array_get(json_object_get(j, "items"), 0), "done")));
    json_decref(j);
    free(ipath);

    /* reorder: the exact set of the list's ids, each once, or 409 */
    other = td_new_list(h, &a, "Other");
    w = td_new_item(h, &a, other, "elsewhere");
    z = td_new_item(h, &a, list, "third");
    free(path);
    path = it_strf("/api/todo/lists/%lld/reorder", (long long)list);
    td_invalid(h, &a, "POST", path, "{}", "ids");
    td_invalid(h, &a, "POST", path, "{\"ids\":\"1,2\"}", "ids");
    td_invalid(h, &a, "POST", path, "{\"ids\":[1,\"2\"]}", "ids");
    td_invalid(h, &a, "POST", path, "{\"ids\":[1.5]}", "ids");
    td_invalid(h, &a, "POST", path, "{\"ids\":[],\"list\":1}", "list");
    {
        /* missing one, an extra one, a duplicate, another list's, none */
        char *sets[] = {
            it_strf("{\"ids\":[%lld,%lld]}", (long long)x, (long long)y),
            it_strf("{\"ids\":[%lld,%lld,%lld,%lld]}", (long long)x,
                    (long long)y, (long long)z, (long long)z + 1000),
            it_strf("{\"ids\":[%lld,%lld,%lld,%lld]}", (long long)x,
                    (long long)y, (long long)z, (long long)x),
            it_strf("{\"ids\":[%lld,%lld,%lld]}", (long long)x, (long long)y,
                    (long long)w),
            it_strf("{\"ids\":[%lld,%lld,%lld,%lld]}", (long long)x,
                    (long long)y, (long long)z, (long long)w),
            it_strf("{\"ids\":[]}"),
        };
        for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
            msg = td_err(h, &a, "POST", path, sets[i], 409, "conflict");
            ck_assert_msg(it_contains_ci(msg, "changed"),
                          "the conflict does not say the list changed: %s",
                          msg);
            free(msg);
            free(sets[i]);
        }
    }
    body = it_strf("{\"ids\":[%lld,%lld,%lld]}", (long long)z, (long long)x,
                   (long long)y);
    json_decref(td_ok(h, &a, "POST", path, body, 200));
    free(body);
    free(path);
    /* an empty list reorders to nothing */
    path = it_strf("/api/todo/items/%lld", (long long)w);
    json_decref(td_ok(h, &a, "DELETE", path, NULL, 204));
    free(path);
    path = it_strf("/api/todo/lists/%lld/reorder", (long long)other);
    j = td_ok(h, &a, "POST", path, "{\"ids\":[]}", 200);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    free(path);

    /* routes that take no body refuse one */
    path = it_strf("/api/todo/lists/%lld", (long long)other);
    {
        weft_hresp r;

        td_call(h, &a, "DELETE", path, "{}", &r);
        ck_assert_msg(r.status == 413, "DELETE with a body: %d", r.status);
        weft_hresp_free(&r);
    }
    free(path);

    td_user_free(&a);
    it_stop_ok(h);
}
END_TEST

START_TEST(limits)
{
    /* max_lists keeps its default (50); max_items is lowered to 3 */
    weft_harness *h = td_start("max_items = 3\n");
    struct td_user a, b;
    json_t *lists;
    json_int_t list, last = 0, item = 0;
    char *msg, *path;

    td_register(h, "alice", &a);
    td_register(h, "bob", &b);
    lists = td_lists(h, &a); /* "My list" is the first of 50 */
    list = td_int(json_array_get(lists, 0), "id");
    json_decref(lists);
    for (int i = 2; i <= 50; i++) {
        char title[32];

        snprintf(title, sizeof(title), "list %d", i);
        last = td_new_list(h, &a, title);
    }
    msg = td_err(h, &a, "POST", "/api/todo/lists", "{\"title\":\"51\"}", 409,
                 "limit");
    ck_assert_msg(it_contains_ci(msg, "list"), "limit message: %s", msg);
    free(msg);
    lists = td_lists(h, &a);
    ck_assert_uint_eq(json_array_size(lists), 50);
    json_decref(lists);
    /* per user: bob is not affected */
    td_new_list(h, &b, "bob's");
    /* deleting one makes room for one */
    path = it_strf("/api/todo/lists/%lld", (long long)last);
    json_decref(td_ok(h, &a, "DELETE", path, NULL, 204));
    free(path);
    td_new_list(h, &a, "room again");
    free(td_err(h, &a, "POST", "/api/todo/lists", "{\"title\":\"51\"}", 409,
                "limit"));

    /* items per list */
    for (int i = 0; i < 3; i++)
        item = td_new_item(h, &a, list, "thing");
    path = it_strf("/api/todo/lists/%lld/items", (long long)list);
    msg = td_err(h, &a, "POST", path, "{\"text\":\"one too many\"}", 409,
                 "limit");
    ck_assert_msg(it_contains_ci(msg, "item"), "limit message: %s", msg);
    free(msg);
    free(path);
    path = it_strf("/api/todo/items/%lld", (long long)item);
    json_decref(td_ok(h, &a, "DELETE", path, NULL, 204));
    free(path);
    td_new_item(h, &a, list, "fits again");

    td_user_free(&a);
    td_user_free(&b);
    it_stop_ok(h);
}
END_TEST

START_TEST(events)
{
    weft_harness *h = td_start(NULL);
    struct td_user a, b;
    struct td_sse sa, sb;
    json_t *j, *d;
    json_int_t trip, first, second, bob_list;
    char rid[64], *path, *topic, *body;

    td_register(h, "alice", &a);
    td_register(h, "bob", &b);

    /* a topic is its user's alone */
    topic = it_strf("/api/realtime?topic=todo.user.%lld", (long long)a.id);
    free(td_err(h, &b, "GET", topic, NULL, 403, "forbidden"));
    free(td_err(h, NULL, "GET", topic, NULL, 401, "unauthorized"));
    free(topic);
    topic = it_strf("/api/realtime?topic=todo.user.*");
    free(td_err(h, &b, "GET", topic, NULL, 403, "forbidden"));
    free(topic);

    td_sse_open(h, &a, a.id, &sa);
    td_sse_open(h, &b, b.id, &sb);

    /* the default list is a change too: subscribed first, so its event
     * cannot slip in later (the outbox relay is asynchronous) */
    j = td_rid(h, &a, "GET", "/api/todo/lists", NULL, 200, rid);
    d = td_expect_event(&sa, a.id, "list.added",
                        td_int(json_array_get(json_object_get(j, "lists"), 0),
                               "id"),
                        rid);
    json_decref(d);
    json_decref(j);
    j = td_rid(h, &b, "GET", "/api/todo/lists", NULL, 200, rid);
    d = td_expect_event(&sb, b.id, "list.added",
                        td_int(json_array_get(json_object_get(j, "lists"), 0),
                               "id"),
                        rid);
    json_decref(d);
    json_decref(j);

    /* list.added */
    j = td_rid(h, &a, "POST", "/api/todo/lists", "{\"title\":\"Trip\"}", 201,
               rid);
    trip = td_int(j, "id");
    json_decref(j);
    d = td_expect_event(&sa, a.id, "list.added", trip, rid);
    ck_assert_str_eq(it_jstr(json_object_get(d, "list"), "title"), "Trip");
    json_decref(d);

    /* bob's change goes to bob only (alice's next event must be hers) */
    j = td_rid(h, &b, "POST", "/api/todo/lists", "{\"title\":\"Bob\"}", 201,
               rid);
    bob_list = td_int(j, "id");
    json_decref(j);
    json_decref(td_expect_event(&sb, b.id, "list.added", bob_list, rid));

    /* list.renamed */
    path = it_strf("/api/todo/lists/%lld", (long long)trip);
    json_decref(td_rid(h, &a, "PATCH", path, "{\"title\":\"Holiday\"}", 200,
                       rid));
    d = td_expect_event(&sa, a.id, "list.renamed", trip, rid);
    ck_assert_str_eq(it_jstr(json_object_get(d, "list"), "title"), "Holiday");
    json_decref(d);
    free(path);

    /* item.added */
    path = it_strf("/api/todo/lists/%lld/items", (long long)trip);
    j = td_rid(h, &a, "POST", path, "{\"text\":\"passport\"}", 201, rid);
    first = td_int(j, "id");
    json_decref(j);
    d = td_expect_event(&sa, a.id, "item.added", trip, rid);
    td_check_item(json_object_get(d, "item"));
    ck_assert_int_eq(td_int(json_object_get(d, "item"), "id"), first);
    ck_assert_str_eq(it_jstr(json_object_get(d, "item"), "text"), "passport");
    json_decref(d);

    /* refused changes publish nothing (the next event is the next change) */
    free(td_err(h, &a, "POST", path, "{\"text\":\"\"}", 400, "invalid"));
    td_404(h, &a, "PATCH", "/api/todo/items/999999", "{\"done\":true}");
    td_404(h, &b, "POST", path, "{\"text\":\"bob was here\"}");
    free(path);
    path = it_strf("/api/todo/lists/%lld/reorder", (long long)trip);
    free(td_err(h, &a, "POST", path, "{\"ids\":[]}", 409, "conflict"));
    free(path);

    /* item.updated */
    path = it_strf("/api/todo/items/%lld", (long long)first);
    json_decref(td_rid(h, &a, "PATCH", path, "{\"done\":true}", 200, rid));
    d = td_expect_event(&sa, a.id, "item.updated", trip, rid);
    ck_assert(json_is_true(json_object_get(json_object_get(d, "item"),
                                           "done")));
    json_decref(d);
    free(path);

    second = td_new_item(h, &a, trip, "tickets");
    json_decref(td_sse_next(&sa, a.id, TD_EVENT_MS)); /* its item.added */

    /* items.reordered: the ids in their new order */
    path = it_strf("/api/todo/lists/%lld/reorder", (long long)trip);
    body = it_strf("{\"ids\":[%lld,%lld]}", (long long)second,
                   (long long)first);
    json_decref(td_rid(h, &a, "POST", path, body, 200, rid));
    d = td_expect_event(&sa, a.id, "items.reordered", trip, rid);
    j = json_object_get(d, "ids");
    ck_assert_uint_eq(json_array_size(j), 2);
    ck_assert_int_eq(json_integer_value(json_array_get(j, 0)), second);
    ck_assert_int_eq(json_integer_value(json_array_get(j, 1)), first);
    json_decref(d);
    free(body);
    free(path);

    /* items.cleared: the removed ids; clearing nothing publishes nothing */
    path = it_strf("/api/todo/lists/%lld/clear-completed", (long long)trip);
    json_decref(td_rid(h, &a, "POST", path, NULL, 200, rid));
    d = td_expect_event(&sa, a.id, "items.cleared", trip, rid);
    j = json_object_get(d, "ids");
    ck_assert_uint_eq(json_array_size(j), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(j, 0)), first);
    json_decref(d);
    json_decref(td_ok(h, &a, "POST", path, NULL, 200));
    free(path);

    /* item.removed */
    path = it_strf("/api/todo/items/%lld", (long long)second);
    td_rid(h, &a, "DELETE", path, NULL, 204, rid);
    d = td_expect_event(&sa, a.id, "item.removed", trip, rid);
    ck_assert_int_eq(json_integer_value(json_array_get(
                         json_object_get(d, "ids"), 0)),
                     second);
    json_decref(d);
    free(path);

    /* list.removed */
    path = it_strf("/api/todo/lists/%lld", (long long)trip);
    td_rid(h, &a, "DELETE", path, NULL, 204, rid);
    json_decref(td_expect_event(&sa, a.id, "list.removed", trip, rid));
    free(path);

    /* and nothing more, on either stream */
    td_expect_quiet(&sa, a.id);
    td_expect_quiet(&sb, b.id);
    td_sse_close(&sa);
    td_sse_close(&sb);
    td_user_free(&a);
    td_user_free(&b);
    it_stop_ok(h);
}
END_TEST

/* ---- the default list under concurrency --------------------------------- */

#define TD_RACERS 8

struct td_racer {
    weft_harness *h;
    const struct td_user *u;
    pthread_barrier_t *go;
    int status;
    long long nlists, id;
};

/* No Check assertions here (other thread): the main thread judges. */
static void *td_race(void *arg)
{
    struct td_racer *t = arg;
    weft_hresp r;
    json_t *j, *l;

    pthread_barrier_wait(t->go);
    if (weft_harness_request(t->h, "GET", "/api/todo/lists", t->u->auth, NULL,
                             0, &r) != 0)
        return NULL;
    t->status = r.status;
    j = json_loadb(r.body, r.body_len, 0, NULL);
    l = json_object_get(j, "lists");
    t->nlists = (long long)json_array_size(l);
    t->id = json_integer_value(json_object_get(json_array_get(l, 0), "id"));
    json_decref(j);
    weft_hresp_free(&r);
    return NULL;
}

START_TEST(default_list_once)
{
    weft_harness *h = td_start(NULL);
    struct td_racer t[TD_RACERS];
    pthread_t th[TD_RACERS];
    pthread_barrier_t go;
    struct td_user c;
    struct td_sse s;
    json_t *d;

    td_register(h, "carol", &c);
    td_sse_open(h, &c, c.id, &s);
    ck_assert_int_eq(pthread_barrier_init(&go, NULL, TD_RACERS), 0);
    for (int i = 0; i < TD_RACERS; i++) {
        t[i] = (struct td_racer){h, &c, &go, 0, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, td_race, &t[i]), 0);
    }
    for (int i = 0; i < TD_RACERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < TD_RACERS; i++) {
        ck_assert_msg(t[i].status == 200 && t[i].nlists == 1,
                      "first reads at once: status %d, %lld lists",
                      t[i].status, t[i].nlists);
        ck_assert_int_eq(t[i].id, t[0].id);
    }
    /* one list, one event */
    d = td_sse_next(&s, c.id, TD_EVENT_MS);
    ck_assert_msg(d != NULL, "no list.added for the default list");
    ck_assert_str_eq(it_jstr(d, "type"), "list.added");
    ck_assert_int_eq(td_int(d, "list_id"), t[0].id);
    ck_assert_str_eq(it_jstr(json_object_get(d, "list"), "title"), "My list");
    json_decref(d);
    td_expect_quiet(&s, c.id);
    td_sse_close(&s);
    td_user_free(&c);
    it_stop_ok(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration_todo");
    TCase *tc = tcase_create("todo");
    static const char *const clean[] = {
        "WEFT_AUTH_",
        "WEFT_DATABASE_",
        "WEFT_PLUGIN_TODO_", NULL};

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, workflow);
    tcase_add_test(tc, signed_out);
    tcase_add_test(tc, other_users_and_unknown_ids);
    tcase_add_test(tc, validation);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, events);
    tcase_add_test(tc, default_list_once);
    suite_add_tcase(s, tc);
    /* the configs here say what they mean: no environment overrides */
    return it_run_suite_clean(s, clean);
}
