/* Router: matching, parameters, precedence, 404/405, bad patterns. */
#include "router.h"
#include "unit.h"

static int h_a(weft_req *r) { (void)r; return 0; }
static int h_b(weft_req *r) { (void)r; return 1; }

static struct wroute *mk(const char *m, const char *p, weft_handler_fn fn)
{
    const char *why = NULL;
    struct wroute *r = wroute_new(m, p, 0, fn, NULL, &why);

    ck_assert_msg(r != NULL, "%s %s: %s", m, p, why);
    return r;
}

struct fixture {
    struct wroute *r[8];
    int n;
    struct wrtable *t;
};

static void fixture_build(struct fixture *f)
{
    f->t = wrtable_new(f->r, f->n);
    ck_assert_ptr_nonnull(f->t);
}

static void fixture_free(struct fixture *f)
{
    wrtable_free(f->t);
    for (int i = 0; i < f->n; i++)
        wroute_free(f->r[i]);
}

static int match(struct fixture *f, const char *method, const char *path,
                 struct wmatch *m)
{
    char scratch[512];
    static char keep[512]; /* params point into it; one match at a time */
    int st = wrtable_match(f->t, method, path, scratch, m);

    /* copy scratch so parameter pointers stay valid for the asserts */
    memcpy(keep, scratch, sizeof(keep));
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].value >= scratch &&
            m->params[i].value < scratch + sizeof(scratch))
            m->params[i].value = keep + (m->params[i].value - scratch);
    return st;
}

START_TEST(params_and_literals)
{
    struct fixture f = {0};
    struct wmatch m;

    f.r[f.n++] = mk("GET", "/api/todo/items/:id", h_a);
    f.r[f.n++] = mk("GET", "/api/todo/items/done", h_b);
    f.r[f.n++] = mk("DELETE", "/api/todo/items/:id", h_a);
    f.r[f.n++] = mk("GET", "/api/todo/lists/:list/items/:item", h_a);
    f.r[f.n++] = mk("GET", "/api/files/*rest", h_a);
    f.r[f.n++] = mk("GET", "/healthz", h_a);
    fixture_build(&f);

    ck_assert_int_eq(match(&f, "GET", "/api/todo/items/42", &m), 200);
    ck_assert_str_eq(m.route->pattern, "/api/todo/items/:id");
    ck_assert_int_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_str_eq(m.params[0].value, "42");

    /* a literal segment beats a parameter, whatever the order of
     * registration */
    ck_assert_int_eq(match(&f, "GET", "/api/todo/items/done", &m), 200);
    ck_assert_str_eq(m.route->pattern, "/api/todo/items/done");
    ck_assert_int_eq(m.nparams, 0);

    ck_assert_int_eq(match(&f, "GET", "/api/todo/lists/7/items/9", &m), 200);
    ck_assert_int_eq(m.nparams, 2);
    ck_assert_str_eq(m.params[0].value, "7");
    ck_assert_str_eq(m.params[1].value, "9");

    ck_assert_int_eq(match(&f, "GET", "/api/files/a/b/c.txt", &m), 200);
    ck_assert_str_eq(m.params[0].name, "rest");
    ck_assert_str_eq(m.params[0].value, "a/b/c.txt");
    ck_assert_int_eq(match(&f, "GET", "/api/files/", &m), 404);

    ck_assert_int_eq(match(&f, "GET", "/healthz", &m), 200);
    ck_assert_int_eq(match(&f, "GET", "/healthz/", &m), 404);
    ck_assert_int_eq(match(&f, "GET", "/api/todo/items/", &m), 404);
    ck_assert_int_eq(match(&f, "GET", "/api/todo/items/1/x", &m), 404);
    ck_assert_int_eq(match(&f, "GET", "/nope", &m), 404);
    ck_assert_int_eq(match(&f, "GET", "", &m), 404);
    fixture_free(&f);
}
END_TEST

START_TEST(method_not_allowed_and_head)
{
    struct fixture f = {0};
    struct wmatch m;

    f.r[f.n++] = mk("GET", "/api/hello/ping", h_a);
    f.r[f.n++] = mk("PUT", "/api/hello/ping", h_b);
    f.r[f.n++] = mk("POST", "/api/hello/echo", h_a);
    fixture_build(&f);

    ck_assert_int_eq(match(&f, "DELETE", "/api/hello/ping", &m), 405);
    ck_assert_str_eq(m.allow, "GET, HEAD, PUT");
    ck_assert_int_eq(match(&f, "GET", "/api/hello/echo", &m), 405);
    ck_assert_str_eq(m.allow, "POST");
    /* HEAD is answered by the GET route */
    ck_assert_int_eq(match(&f, "HEAD", "/api/hello/ping", &m), 200);
    ck_assert_str_eq(m.route->method, "GET");
    ck_assert_int_eq(match(&f, "PUT", "/api/hello/ping", &m), 200);
    ck_assert_ptr_eq(m.route->fn, h_b);
    fixture_free(&f);
}
END_TEST

START_TEST(trailing_slash)
{
    const char *why = NULL;
    struct wroute *r = wroute_new("GET", "/p/:name/", 0, h_a, NULL, &why);
    struct wrtable *t;
    struct wmatch m;
    char scratch[64];

    ck_assert_ptr_nonnull(r);
    t = wrtable_new(&r, 1);
    ck_assert_int_eq(wrtable_match(t, "GET", "/p/todo/", scratch, &m), 200);
    ck_assert_str_eq(m.params[0].value, "todo");
    ck_assert_int_eq(wrtable_match(t, "GET", "/p/todo", scratch, &m), 404);
    ck_assert_int_eq(wrtable_match(t, "GET", "/p//", scratch, &m), 404);
    ck_assert_int_eq(wrtable_match(t, "GET", "/p/todo/x", scratch, &m), 404);
    wrtable_free(t);
    wroute_free(r);
}
END_TEST

START_TEST(bad_patterns)
{
    const char *why = NULL;

    ck_assert_ptr_null(wroute_new("GET", "api/x", 0, h_a, NULL, &why));
    ck_assert_ptr_null(wroute_new("GET", "/api//x", 0, h_a, NULL, &why));
    ck_assert_str_eq(why, "pattern has an empty segment");
    ck_assert_ptr_null(wroute_new("GET", "/api/:1x", 0, h_a, NULL, &why));
    ck_assert_ptr_null(wroute_new("GET", "/api/*rest/x", 0, h_a, NULL, &why));
    ck_assert_str_eq(why, "a '*rest' parameter must be the last segment");
    ck_assert_ptr_null(wroute_new("get", "/api/x", 0, h_a, NULL, &why));
    ck_assert_ptr_null(wroute_new("GET", "/api/x", 0, NULL, NULL, &why));
    ck_assert_ptr_null(wroute_new(NULL, "/api/x", 0, h_a, NULL, &why));
}
END_TEST

START_TEST(many_segments)
{
    char path[256] = "";
    struct fixture f = {0};
    struct wmatch m;

    f.r[f.n++] = mk("GET", "/a/:x", h_a);
    fixture_build(&f);
    for (int i = 0; i < 40; i++)
        strcat(path, "/s");
    ck_assert_int_eq(match(&f, "GET", path, &m), 404);
    fixture_free(&f);
}
END_TEST

/* Which paths belong to a plugin that has no version in the table. */
START_TEST(waiting_plugins)
{
    struct wroute *none[1] = {NULL};
    struct wrtable *t = wrtable_new(none, 0);
    const struct wrwait *w;

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(wrtable_waiting(t, "/api/todo/items"));
    ck_assert_int_eq(wrtable_add_wait(t, "todo", WRWAIT_STARTING), 0);
    ck_assert_int_eq(wrtable_add_wait(t, "chat", WRWAIT_FAILED), 0);
    w = wrtable_waiting(t, "/api/todo/items");
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(w->name, "todo");
    ck_assert_int_eq(w->why, WRWAIT_STARTING);
    ck_assert_ptr_nonnull(wrtable_waiting(t, "/api/todo"));
    ck_assert_ptr_nonnull(wrtable_waiting(t, "/api/todo/"));
    ck_assert_ptr_nonnull(wrtable_waiting(t, "/p/todo/widget.js"));
    ck_assert_ptr_nonnull(wrtable_waiting(t, "/p/todo/a/b.css"));
    w = wrtable_waiting(t, "/api/chat/rooms/1");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->why, WRWAIT_FAILED);
    /* The standalone page and its redirect are the web client's. */
    ck_assert_ptr_null(wrtable_waiting(t, "/p/todo/"));
    ck_assert_ptr_null(wrtable_waiting(t, "/p/todo"));
    /* Only the whole segment names a plugin. */
    ck_assert_ptr_null(wrtable_waiting(t, "/api/todos/x"));
    ck_assert_ptr_null(wrtable_waiting(t, "/api/tod/x"));
    ck_assert_ptr_null(wrtable_waiting(t, "/api/"));
    ck_assert_ptr_null(wrtable_waiting(t, "/api//todo"));
    ck_assert_ptr_null(wrtable_waiting(t, "/todo/x"));
    ck_assert_ptr_null(wrtable_waiting(t, "/apix/todo"));
    ck_assert_ptr_null(wrtable_waiting(t, "/healthz"));
    wrtable_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");

    tcase_add_test(tc, params_and_literals);
    tcase_add_test(tc, method_not_allowed_and_head);
    tcase_add_test(tc, bad_patterns);
    tcase_add_test(tc, trailing_slash);
    tcase_add_test(tc, many_segments);
    tcase_add_test(tc, waiting_plugins);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
