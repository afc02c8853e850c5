/* router.c - compile patterns once, match by segments. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static int wroute_name_ok(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    return 1;
}

static int wroute_method_ok(const char *m)
{
    size_t n = strlen(m);

    if (n == 0 || n > 16)
        return 0;
    for (; *m; m++)
        if (!(*m >= 'A' && *m <= 'Z'))
            return 0;
    return 1;
}

struct wroute *wroute_new(const char *method, const char *pattern,
                          unsigned flags, weft_handler_fn fn,
                          struct weft_plugin *inst, const char **why)
{
    struct wroute *r;
    char *copy, *p, *slash;
    int n = 0;

    if (method == NULL || !wroute_method_ok(method)) {
        *why = "method must be an upper-case token such as GET";
        return NULL;
    }
    if (pattern == NULL || pattern[0] != '/' || strlen(pattern) > 1024) {
        *why = "pattern must start with '/'";
        return NULL;
    }
    if (fn == NULL) {
        *why = "handler is NULL";
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    copy = strdup(pattern + 1);
    if (r == NULL || copy == NULL)
        goto oom;
    r->segs = calloc(WROUTE_MAX_SEGS, sizeof(*r->segs));
    r->method = strdup(method);
    r->pattern = strdup(pattern);
    if (r->segs == NULL || r->method == NULL || r->pattern == NULL)
        goto oom;
    r->flags = flags;
    r->fn = fn;
    r->inst = inst;

    p = copy;
    if (*p != '\0') {
        for (;;) {
            slash = strchr(p, '/');
            if (slash != NULL)
                *slash = '\0';
            if (n == WROUTE_MAX_SEGS) {
                *why = "pattern has too many segments";
                goto bad;
            }
            /* Only the last segment may be empty: "/p/:name/" matches a
             * path with the trailing slash (and not without it). */
            if (*p == '\0' && slash != NULL) {
                *why = "pattern has an empty segment";
                goto bad;
            }
            if (*p == ':' || *p == '*') {
                if (!wroute_name_ok(p + 1)) {
                    *why = "parameter names are letters, digits and '_'";
                    goto bad;
                }
                if (*p == '*' && slash != NULL) {
                    *why = "a '*rest' parameter must be the last segment";
                    goto bad;
                }
                r->segs[n].kind = *p == ':' ? WSEG_PARAM : WSEG_REST;
                r->segs[n].text = strdup(p + 1);
            } else {
                r->segs[n].kind = WSEG_LITERAL;
                r->segs[n].text = strdup(p);
            }
            if (r->segs[n].text == NULL)
                goto oom;
            n++;
            r->nseg = n;
            if (slash == NULL)
                break;
            p = slash + 1;
        }
    }
    {
        int params = 0;
        for (int i = 0; i < n; i++)
            params += r->segs[i].kind != WSEG_LITERAL;
        if (params > WROUTE_MAX_PARAMS) {
            *why = "pattern has too many parameters";
            goto bad;
        }
    }
    free(copy);
    return r;
oom:
    *why = "out of memory";
bad:
    free(copy);
    wroute_free(r);
    return NULL;
}

void wroute_free(struct wroute *r)
{
    if (r == NULL)
        return;
    if (r->segs != NULL)
        for (int i = 0; i < r->nseg; i++)
            free(r->segs[i].text);
    free(r->segs);
    free(r->method);
    free(r->pattern);
    free(r);
}

/* Literal segments beat parameters, which beat a rest parameter; earlier
 * segments decide first. */
static int wroute_cmp(const void *a, const void *b)
{
    const struct wroute *x = *(struct wroute *const *)a;
    const struct wroute *y = *(struct wroute *const *)b;
    int n = x->nseg < y->nseg ? x->nseg : y->nseg;

    for (int i = 0; i < n; i++)
        if (x->segs[i].kind != y->segs[i].kind)
            return x->segs[i].kind - y->segs[i].kind;
    if (x->nseg != y->nseg)
        return y->nseg - x->nseg;
    return strcmp(x->method, y->method);
}

struct wrtable *wrtable_new(struct wroute *const *routes, int n)
{
    struct wrtable *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->routes = calloc((size_t)(n > 0 ? n : 1), sizeof(*t->routes));
    if (t->routes == NULL) {
        free(t);
        return NULL;
    }
    memcpy(t->routes, routes, (size_t)n * sizeof(*routes));
    t->n = n;
    qsort(t->routes, (size_t)n, sizeof(*t->routes), wroute_cmp);
    atomic_init(&t->refs, 1);
    return t;
}

void wrtable_free(struct wrtable *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < t->nwait; i++)
        free(t->wait[i].name);
    free(t->wait);
    free(t->routes);
    free(t->insts);
    free(t);
}

int wrtable_add_wait(struct wrtable *t, const char *name, int why)
{
    struct wrwait *a = realloc(t->wait, (size_t)(t->nwait + 1) * sizeof(*a));

    if (a == NULL)
        return -1;
    t->wait = a;
    a[t->nwait].name = strdup(name);
    if (a[t->nwait].name == NULL)
        return -1;
    a[t->nwait++].why = why;
    return 0;
}

const struct wrwait *wrtable_waiting(const struct wrtable *t,
                                     const char *path)
{
    const char *name, *end;
    size_t len;
    int files;

    if (t->nwait == 0)
        return NULL;
    if (strncmp(path, "/api/", 5) == 0) {
        name = path + 5;
        files = 0;
    } else if (strncmp(path, "/p/", 3) == 0) {
        name = path + 3;
        files = 1;
    } else {
        return NULL;
    }
    end = strchr(name, '/');
    len = end != NULL ? (size_t)(end - name) : strlen(name);
    if (len == 0 || (files && (end == NULL || end[1] == '\0')))
        return NULL;
    for (int i = 0; i < t->nwait; i++)
        if (strlen(t->wait[i].name) == len &&
            memcmp(t->wait[i].name, name, len) == 0)
            return &t->wait[i];
    return NULL;
}

/* Does `r` match the split path? Fills params on success. */
static int wroute_match(const struct wroute *r, char **segs, int nseg,
                        const char *path, const int *offs, struct wmatch *m)
{
    int np = 0;

    for (int i = 0; i < r->nseg; i++) {
        if (r->segs[i].kind == WSEG_REST) {
            if (i >= nseg || segs[i][0] == '\0')
                return 0;
            m->params[np].name = r->segs[i].text;
            m->params[np++].value = path + offs[i];
            m->nparams = np;
            return 1;
        }
        if (i >= nseg)
            return 0;
        if (r->segs[i].kind == WSEG_LITERAL) {
            if (strcmp(r->segs[i].text, segs[i]) != 0)
                return 0;
        } else {
            if (segs[i][0] == '\0')
                return 0;
            m->params[np].name = r->segs[i].text;
            m->params[np++].value = segs[i];
        }
    }
    if (r->nseg != nseg)
        return 0;
    m->nparams = np;
    return 1;
}

static void wmatch_allow_add(struct wmatch *m, const char *method)
{
    size_t len = strlen(m->allow), ml = strlen(method);
    char *p = m->allow;

    /* skip duplicates */
    while ((p = strstr(p, method)) != NULL) {
        if ((p == m->allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
            return;
        p += ml;
    }
    if (len + ml + 3 >= sizeof(m->allow))
        return;
    if (len > 0) {
        memcpy(m->allow + len, ", ", 2);
        len += 2;
    }
    memcpy(m->allow + len, method, ml + 1);
}

int wrtable_match(const struct wrtable *t, const char *method,
                  const char *path, char *scratch, struct wmatch *m)
{
    char *segs[WROUTE_MAX_SEGS + 1];
    int offs[WROUTE_MAX_SEGS + 1];
    int nseg = 0, any = 0;
    int head = strcmp(method, "HEAD") == 0;
    char *p;

    m->route = NULL;
    m->nparams = 0;
    m->allow[0] = '\0';
    if (path[0] != '/')
        return 404;
    strcpy(scratch, path + 1);
    p = scratch;
    if (*p != '\0') {
        for (;;) {
            if (nseg > WROUTE_MAX_SEGS)
                return 404;
            segs[nseg] = p;
            offs[nseg++] = (int)(p - scratch) + 1;
            p = strchr(p, '/');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
    }
    for (int i = 0; i < t->n; i++) {
        const struct wroute *r = t->routes[i];
        struct wmatch tmp;
        if (!wroute_match(r, segs, nseg, path, offs, &tmp))
            continue;
        if (strcmp(r->method, method) == 0) {
            m->route = r;
            m->nparams = tmp.nparams;
            memcpy(m->params, tmp.params,
                   sizeof(tmp.params[0]) * (size_t)tmp.nparams);
            return 200;
        }
        /* HEAD is served by a GET route unless a HEAD route exists. */
        if (head && m->route == NULL && strcmp(r->method, "GET") == 0) {
            m->route = r;
            m->nparams = tmp.nparams;
            memcpy(m->params, tmp.params,
                   sizeof(tmp.params[0]) * (size_t)tmp.nparams);
        }
        any = 1;
        wmatch_allow_add(m, r->method);
        if (strcmp(r->method, "GET") == 0)
            wmatch_allow_add(m, "HEAD");
    }
    if (m->route != NULL)
        return 200;
    return any ? 405 : 404;
}
