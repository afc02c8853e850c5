/* router.h - method + path patterns with named parameters.
 *
 * A table is immutable once built; each event loop holds its own reference
 * and swaps to a new table between requests, which is what makes a reload
 * atomic for every request. */
#ifndef WEFT_HOST_ROUTER_H
#define WEFT_HOST_ROUTER_H

#include <stdatomic.h>

#include <weft/weft.h>

#define WROUTE_MAX_SEGS 32
#define WROUTE_MAX_PARAMS 16

enum { WSEG_LITERAL = 0, WSEG_PARAM = 1, WSEG_REST = 2 };

struct weft_plugin;

struct wseg {
    char *text; /* literal text, or the parameter's name */
    int kind;
};

struct wroute {
    char *method;
    char *pattern;
    unsigned flags;
    int nseg;
    struct wseg *segs;
    weft_handler_fn fn;
    struct weft_plugin *inst; /* NULL for the host's own routes */
};

struct wparam {
    const char *name, *value;
};

struct wmatch {
    const struct wroute *route;
    struct wparam params[WROUTE_MAX_PARAMS];
    int nparams;
    char allow[128]; /* for 405: "GET, HEAD" */
};

/* A configured plugin with no version in the table: its URL space answers
 * 503 rather than 404, so a client retries instead of concluding the API
 * does not exist. */
enum { WRWAIT_STARTING = 1, WRWAIT_FAILED = 2 };

struct wrwait {
    char *name;
    int why; /* WRWAIT_* */
};

struct wrtable {
    atomic_int refs;
    int n;
    struct wroute **routes; /* most specific first */
    int ninsts;
    struct weft_plugin **insts; /* instances this table keeps alive */
    int nwait;
    struct wrwait *wait; /* owned by the table */
};

/* Compile a route. Returns NULL with *why set on a bad pattern/method. */
struct wroute *wroute_new(const char *method, const char *pattern,
                          unsigned flags, weft_handler_fn fn,
                          struct weft_plugin *inst, const char **why);
void wroute_free(struct wroute *r);

/* Build a table over `routes` (not copied: they must outlive the table).
 * Refs start at 1. */
struct wrtable *wrtable_new(struct wroute *const *routes, int n);
/* Add a waiting plugin (the name is copied). Returns 0 or -1. */
int wrtable_add_wait(struct wrtable *t, const char *name, int why);
/* Free the table itself and its waiting list (not the routes). */
void wrtable_free(struct wrtable *t);

/*
 * Match `path` (decoded, starting with '/'). `scratch` must hold
 * strlen(path) + 1 bytes and live as long as the parameters are used.
 * Returns 200 (found; HEAD matches GET routes), 404 or 405 (m->allow set).
 */
int wrtable_match(const struct wrtable *t, const char *method,
                  const char *path, char *scratch, struct wmatch *m);

/*
 * The waiting plugin whose URL space `path` is in, or NULL: /api/<name>,
 * /api/<name>/..., and /p/<name>/<file> (the plugin's own files; the
 * standalone page /p/<name>/ is the web client's and says itself that the
 * plugin is not running).
 */
const struct wrwait *wrtable_waiting(const struct wrtable *t,
                                     const char *path);

#endif
