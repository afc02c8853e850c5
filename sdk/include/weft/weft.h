/*
 * weft.h - the Weft plugin SDK, ABI 1 (minor 3).
 *
 * This is the only header a plugin includes. A plugin is a shared object that
 * exports one function, weft_plugin_entry(), returning a const descriptor. The
 * host hands the plugin its API as an append-only function table; the plugin
 * links nothing from the host and is loaded RTLD_LOCAL from a private copy, so
 * a rebuilt file can be loaded next to the running one.
 *
 * Stability rules (for the people who maintain this file):
 *   - struct weft_api only ever grows at the end; a field is never removed,
 *     reordered or retyped within a major version. Each addition bumps
 *     WEFT_ABI_MINOR and is marked "since 1.N".
 *   - No #ifdef-dependent layout anywhere in this file.
 *   - Handles are opaque. Each handle begins with a pointer to the API table
 *     (as JNI's JNIEnv does), which is how the inline wrappers below reach the
 *     host without any global variable in the plugin.
 *
 * Threading and reload rules for plugin authors (see sdk/README.md):
 *   - no mutable static or global state: keep state in the host-owned slot
 *     (weft_state()) or in the database;
 *   - no threads of your own, no atexit(), no signal handlers: blocking work
 *     goes to the host's worker pool through weft_defer();
 *   - every callback may run on any event-loop thread, concurrently with
 *     itself; a request's callbacks all run on that request's own loop;
 *   - never keep a weft_req pointer after the request was answered.
 *
 * Ownership, returns and jansson are set out once, in "Conventions" before
 * the inline wrappers; each call states only where it departs from them.
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_ABI_MAJOR 1
#define WEFT_ABI_MINOR 3

/* Name of the one symbol every plugin exports. */
#define WEFT_ENTRY_SYMBOL "weft_plugin_entry"

/* Return codes. Zero is success; errors are negative. */
#define WEFT_OK 0
#define WEFT_ERR (-1)      /* generic failure; details were logged     */
#define WEFT_ENOSYS (-2)   /* the host is older than this call         */
#define WEFT_EINVAL (-3)   /* bad argument                             */
#define WEFT_EBUSY (-4)    /* a bounded queue is full; answer 503      */
#define WEFT_ENOENT (-5)   /* no such key, parameter or header         */
#define WEFT_EPERM (-6)    /* not allowed (since 1.2)                  */

/* Log levels for weft_log() and weft_req_log(). */
enum weft_log_level {
    WEFT_LOG_ERROR = 0,
    WEFT_LOG_WARN = 1,
    WEFT_LOG_INFO = 2,
    WEFT_LOG_DEBUG = 3
};

/* Route flags, or-ed together in weft_route(). */
#define WEFT_ROUTE_NONE 0u
/* The route needs a user with the admin role (403 for other users, 401
 * when signed out); the host's [admin] token is accepted too. */
#define WEFT_ROUTE_ADMIN 0x01u
/* The handler reads no body: a request with a body is refused with 413. */
#define WEFT_ROUTE_NO_BODY 0x02u
/* The route needs a signed-in user (401 otherwise); since 1.1. */
#define WEFT_ROUTE_USER 0x04u

/* Types of declared configuration keys. */
enum weft_config_type {
    WEFT_CFG_STRING = 1,
    WEFT_CFG_INT = 2,   /* signed 64-bit, checked against min..max       */
    WEFT_CFG_BOOL = 3,  /* true/false, yes/no, on/off, 1/0               */
    WEFT_CFG_SIZE = 4,  /* bytes, with optional k, m or g suffix        */
    WEFT_CFG_MS = 5     /* duration in ms, with optional ms, s or m suffix */
};

/*
 * One configuration key of a plugin section. Plugins declare their keys in a
 * table so that `weftd --check-config` can check them, with file and line,
 * without running the plugin. `path` and `enabled` are the host's own keys and
 * must not be declared. The table ends with an entry whose key is NULL.
 */
typedef struct weft_config_key {
    const char *key;
    int type;          /* enum weft_config_type                         */
    const char *def;   /* default, as it would be written in the file   */
    int64_t min, max;  /* bounds for INT, SIZE and MS; ignored otherwise */
    const char *help;  /* one line, shown by --check-config             */
} weft_config_key;

typedef struct weft_api weft_api;
typedef struct weft_plugin weft_plugin; /* one loaded version of a plugin */
typedef struct weft_req weft_req;       /* one HTTP request               */
typedef struct weft_db_res weft_db_res; /* a query's result (since 1.1)   */
typedef struct weft_tx weft_tx;         /* a transaction (since 1.1)      */
typedef struct weft_ws weft_ws;         /* a WebSocket session (since 1.2) */

/*
 * A signup step (since 1.3), run inside the registration's transaction
 * right after the account row was inserted: `tx` is that transaction (run
 * statements with weft_tx_query; never end it), `user_id` the new
 * account, `body` the registration's JSON object (borrowed: the host's,
 * valid until weft_signup_done(); never json_decref it, and copy what you
 * keep; extra fields such as "referral_code" are the plugin's to read).
 * `tx` works until weft_signup_done(). Finish with
 * weft_signup_done(): WEFT_OK lets the registration go on; an error
 * status rolls back the whole registration, the account included.
 */
typedef void (*weft_signup_fn)(weft_req *r, weft_tx *tx, int64_t user_id,
                               json_t *body, void *arg);

/* ---- bus and realtime types (since 1.2) ---- */

/* What a client asks of a topic, for a topic's authorization hook. */
#define WEFT_TOPIC_SUBSCRIBE 1
#define WEFT_TOPIC_PUBLISH 2

/* Topic flags for weft_topic(): who may subscribe when there is no hook. */
/* Anyone, signed out too. */
#define WEFT_TOPIC_PUBLIC 0x01u
/* Any signed-in user. */
#define WEFT_TOPIC_USERS 0x02u
/* Only the user whose id is the token matched by the pattern's last "*"
 * ("todo.user.*": user 7 may subscribe to todo.user.7 only). */
#define WEFT_TOPIC_OWNER 0x04u
/* Clients allowed to subscribe may also publish (WebSocket "publish"). */
#define WEFT_TOPIC_CLIENT_PUBLISH 0x08u

/* user_flags bits passed to a topic hook. */
#define WEFT_USER_ADMIN 0x01u

/*
 * A topic's authorization hook: return WEFT_OK to allow `action` on
 * `topic` (a topic, or a pattern when the client subscribes with
 * wildcards) for `user_id` (0: signed out), WEFT_EPERM to refuse. Called
 * on the client's loop; it must not block (no queries: keep what it needs
 * in the state slot). Called through the serving version of the plugin.
 * `topic` is the host's, valid during the call only.
 */
typedef int (*weft_topic_auth_fn)(weft_plugin *p, const char *topic,
                                  int action, int64_t user_id,
                                  unsigned user_flags);

/* A bus message for a plugin subscription: `data` is compact JSON of
 * `len` bytes, `topic` the message's topic; both are the host's, valid
 * during the call only (copy what you keep). Runs on the host's control
 * loop, through the version that subscribed; must not block. */
typedef void (*weft_event_fn)(weft_plugin *p, const char *topic,
                              const char *data, size_t len, uint64_t offset,
                              void *arg);

/* Callbacks of a plugin WebSocket endpoint (weft_ws_route). The session
 * belongs to the host: each call goes to the version of the plugin
 * serving at that moment, so a reload keeps the connection open. */
typedef struct weft_ws_handlers {
    uint32_t struct_size; /* sizeof(weft_ws_handlers) */
    /* A client connected. Return WEFT_OK to keep it, anything else closes
     * it with 1008 (policy violation). May be NULL. */
    int (*open)(weft_ws *ws);
    /* One complete message (text is valid UTF-8; binary != 0 for binary).
     * `data` is the host's, valid during the call only. */
    void (*message)(weft_ws *ws, const char *data, size_t len, int binary);
    /* The session ended (code as received or chosen, 1006 when the
     * connection dropped). Do not send from here. May be NULL. After it
     * returns the handle is freed: keep none. */
    void (*close)(weft_ws *ws, int code);
} weft_ws_handlers;

/*
 * One schema migration of a plugin (since 1.1). Versions start at 1 and
 * increase without gaps; the table ends with an entry whose version is 0.
 * The host applies the missing ones in one transaction, under an advisory
 * lock, before the version goes live, and records each with a checksum of
 * its SQL: an applied migration whose SQL changed is refused. Usually
 * generated from plugins/<name>/migrations/NNNN_name.sql by the CMake
 * function weft_embed_migrations(), so the SQL ships inside the .so.
 * The table and its strings are read while the version is loaded: keep
 * them static, like the descriptor's.
 */
typedef struct weft_migration {
    int version;
    const char *name;
    const char *sql;
} weft_migration;

/* A route handler. Return WEFT_OK once it answered the request or handed
 * it to weft_defer() or a query; any other value makes the host answer
 * 500. `req` is valid until the request ends: its answer is complete and
 * no callback of it is pending. */
typedef int (*weft_handler_fn)(weft_req *req);

/* Blocking work run on a host worker thread; it must not touch the request. */
typedef void (*weft_work_fn)(void *arg);
/* Completion of weft_defer(), run on the request's own loop. */
typedef void (*weft_done_fn)(weft_req *req, void *arg);

/* Completion of a query (since 1.1), on the request's own loop. `res`, and
 * every string its accessors return, are the host's and valid only during
 * the call: copy (weft_db_json, strdup) what you keep. */
typedef void (*weft_db_fn)(weft_req *req, const weft_db_res *res, void *arg);
/* Completion of a step of a transaction (since 1.1). `res` as for
 * weft_db_fn; `tx` is NULL after BEGIN failed and after weft_tx_end(). */
typedef void (*weft_tx_fn)(weft_req *req, weft_tx *tx, const weft_db_res *res,
                           void *arg);

/*
 * The descriptor returned by weft_plugin_entry(). The host reads abi_major
 * first and refuses a mismatch; it reads only the first struct_size bytes.
 * It stays the plugin's and is read while the version is loaded, its
 * config table and strings included: make it all static const.
 */
typedef struct weft_plugin_desc {
    uint32_t abi_major;   /* WEFT_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;   /* WEFT_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(weft_plugin_desc)                 */
    const char *name;     /* must equal the config section's name     */
    const char *version;  /* free text, shown in /api/plugins         */
    const char *summary;  /* one line                                 */
    const weft_config_key *config; /* declared keys, or NULL          */

    /* Called once per loaded version, before it serves. Register routes
     * here. Return WEFT_OK, or an error after weft_plugin_fail() to say why;
     * the previous version (if any) keeps serving. */
    int (*init)(weft_plugin *p);

    /* Called on the running version when a new one is about to replace it.
     * Return WEFT_OK to allow the reload, or an error after
     * weft_plugin_fail() to veto it; may be NULL. */
    int (*quiesce)(weft_plugin *p);

    /* Called once the version served its last request, just before the
     * host unloads it; may be NULL. Must not block. */
    void (*shutdown)(weft_plugin *p);

    /* since 1.1: schema migrations, or NULL. */
    const weft_migration *migrations;

    /* since 1.3: a folder of static files (the web widget) next to the
     * .so, relative to the .so's directory, e.g. "todo.web"; or NULL.
     * weftd serves it under /p/<name>/ with ETag and cache headers; a
     * widget.js there is the plugin's widget (see web/README.md). */
    const char *assets;
} weft_plugin_desc;

/*
 * The host's function table. Append-only; check weft_api_has() before using
 * a member marked "since 1.N" with N > 0 (the inline wrappers below do).
 * History: 1.0 is plugin_name .. defer; 1.1 added db_query ..
 * user_profile; 1.2 topic .. ws_subscribe; 1.3 on_signup, signup_done. A
 * host hands out a table of its own struct_size: members past it are not
 * there at all (reading them reads past the host's table).
 */
struct weft_api {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(struct weft_api) in the host */

    /* plugin (since 1.0) */
    const char *(*plugin_name)(weft_plugin *p);
    void (*plugin_logv)(weft_plugin *p, int level, const char *fmt, va_list ap);
    void (*plugin_fail)(weft_plugin *p, const char *fmt, va_list ap);
    int (*route)(weft_plugin *p, const char *method, const char *pattern,
                 unsigned flags, weft_handler_fn fn);
    int (*config_string)(weft_plugin *p, const char *key, const char **out);
    int (*config_int)(weft_plugin *p, const char *key, int64_t *out);
    int (*config_bool)(weft_plugin *p, const char *key, int *out);
    void *(*state)(weft_plugin *p, size_t size, uint32_t layout);
    void (*state_lock)(weft_plugin *p);
    void (*state_unlock)(weft_plugin *p);

    /* request (since 1.0) */
    weft_plugin *(*req_plugin)(weft_req *r);
    const char *(*req_method)(weft_req *r);
    const char *(*req_path)(weft_req *r);
    const char *(*req_param)(weft_req *r, const char *name);
    const char *(*req_query)(weft_req *r, const char *name);
    const char *(*req_header)(weft_req *r, const char *name);
    const char *(*req_id)(weft_req *r);
    const char *(*req_remote)(weft_req *r);
    const void *(*req_body)(weft_req *r, size_t *len);
    json_t *(*req_json)(weft_req *r, const char **error);
    void (*req_logv)(weft_req *r, int level, const char *fmt, va_list ap);

    /* response (since 1.0) */
    int (*resp_header)(weft_req *r, const char *name, const char *value);
    int (*reply)(weft_req *r, int status, const char *content_type,
                 const void *body, size_t len);
    int (*reply_json)(weft_req *r, int status, json_t *body);
    int (*reply_error)(weft_req *r, int status, const char *code,
                       const char *message);
    int (*stream_start)(weft_req *r, int status, const char *content_type);
    int (*stream_write)(weft_req *r, const void *data, size_t len);
    int (*stream_end)(weft_req *r);

    /* worker pool (since 1.0) */
    int (*defer)(weft_req *r, weft_work_fn work, weft_done_fn done, void *arg);

    /* database (since 1.1) */
    int (*db_query)(weft_req *r, const char *sql, int nparams,
                    const char *const *params, weft_db_fn cb, void *arg);
    int (*tx_begin)(weft_req *r, weft_tx_fn cb, void *arg);
    int (*tx_query)(weft_tx *tx, const char *sql, int nparams,
                    const char *const *params, weft_tx_fn cb, void *arg);
    int (*tx_end)(weft_tx *tx, int commit, weft_tx_fn cb, void *arg);
    int (*db_ok)(const weft_db_res *res);
    const char *(*db_error)(const weft_db_res *res);
    const char *(*db_sqlstate)(const weft_db_res *res);
    int (*db_rows)(const weft_db_res *res);
    int (*db_cols)(const weft_db_res *res);
    const char *(*db_colname)(const weft_db_res *res, int col);
    const char *(*db_value)(const weft_db_res *res, int row, int col);
    int (*db_isnull)(const weft_db_res *res, int row, int col);
    json_t *(*db_json)(const weft_db_res *res, int row);
    int (*db_reply_error)(weft_req *r, const weft_db_res *res);

    /* identity (since 1.1) */
    int64_t (*req_user)(weft_req *r);
    int (*req_has_role)(weft_req *r, const char *role);
    int (*user_profile)(weft_req *r, int64_t user_id, weft_db_fn cb,
                        void *arg);

    /* bus and realtime (since 1.2) */
    int (*topic)(weft_plugin *p, const char *pattern, unsigned flags,
                 weft_topic_auth_fn auth);
    int (*publish)(weft_plugin *p, const char *topic, json_t *data);
    int (*subscribe)(weft_plugin *p, const char *pattern, weft_event_fn fn,
                     void *arg);
    int (*tx_publish)(weft_tx *tx, const char *topic, json_t *data,
                      weft_tx_fn cb, void *arg);
    int (*ws_route)(weft_plugin *p, const char *pattern, unsigned flags,
                    const weft_ws_handlers *h);
    weft_plugin *(*ws_plugin)(weft_ws *ws);
    int (*ws_send)(weft_ws *ws, const char *data, size_t len, int binary);
    int (*ws_close)(weft_ws *ws, int code, const char *reason);
    int64_t (*ws_user)(weft_ws *ws);
    const char *(*ws_id)(weft_ws *ws);
    int (*ws_subscribe)(weft_ws *ws, const char *topic);

    /* signup (since 1.3) */
    int (*on_signup)(weft_plugin *p, weft_signup_fn fn, void *arg);
    int (*signup_done)(weft_req *r, int status, const char *code,
                       const char *message);
};

/* The entry point every plugin defines (use WEFT_PLUGIN below). */
typedef const weft_plugin_desc *(*weft_entry_fn)(void);

/* Define the entry point returning `desc`. */
#define WEFT_PLUGIN(desc)                                                     \
    __attribute__((visibility("default"))) const weft_plugin_desc *           \
    weft_plugin_entry(void);                                                  \
    const weft_plugin_desc *weft_plugin_entry(void) { return &(desc); }

/* Fill the first three fields of a descriptor. */
#define WEFT_DESC_HEADER                                                      \
    .abi_major = WEFT_ABI_MAJOR, .abi_minor = WEFT_ABI_MINOR,                 \
    .struct_size = (uint32_t)sizeof(weft_plugin_desc)

/* ---- inline wrappers: what plugins call ------------------------------- */

/*
 * Conventions.
 *
 * Returns. A call that returns int answers WEFT_OK (0) or a negative
 * WEFT_E* code, never anything else. The exceptions answer a value, never
 * an error code, and say so where they are declared: the predicates
 * weft_db_ok(), weft_db_isnull() and weft_req_has_role() (1 or 0), the
 * counts weft_db_rows() and weft_db_cols(), and the ids weft_req_user()
 * and weft_ws_user() (int64_t, 0 for none). The plugin's own callbacks
 * follow the same rule: a handler, init, quiesce and a WebSocket open()
 * return WEFT_OK or an error; a topic hook WEFT_OK or WEFT_EPERM.
 *
 * Older hosts. A plugin built with this header may load on a host of an
 * older minor. Every wrapper of a call added after 1.0 checks
 * weft_api_has() first and, when the host's table has no such member,
 * answers WEFT_ENOSYS (int status calls) or the call's neutral value
 * (what it answers for a NULL handle), without reading past the host's
 * table. Calls of 1.0 are always there.
 *
 * Ownership of what you pass. Every pointer argument is borrowed for the
 * call only: the host copies what it keeps (SQL, query parameters, topics,
 * patterns, header names and values, bodies, log text) or encodes it
 * (JSON) before the call returns, so stack buffers and memory you free
 * right after are fine. The exceptions, stated at each call: the
 * descriptor, its config and migration tables and weft_ws_handlers are
 * read for as long as the version is loaded (static const); and `arg`
 * pointers are never read or freed by the host: it hands them back to
 * your callback, so they must live until it ran (for a subscription or a
 * signup step: as long as the version). A completion callback (of a
 * query, a transaction step, weft_defer, weft_user_profile) runs exactly
 * once when its call answered WEFT_OK, and never when the call answered
 * an error: then free `arg` yourself.
 *
 * Ownership of what you get. Every pointer the host returns or passes to
 * a callback is the host's: never free it, never write to it, and copy
 * what you keep past its lifetime, which is
 *   - the version's lifetime for weft_plugin_name(), weft_config_string()
 *     values and a weft_plugin handle (a reload gives the new version new
 *     ones; the old version's stay valid while it runs);
 *   - the request's for its accessors (method, path, parameters, headers,
 *     id, remote address, body, weft_req_json()'s error text): until the
 *     request ends, i.e. its answer is complete and none of its callbacks
 *     is pending;
 *   - the callback's for a result (weft_db_res) and every string its
 *     accessors return, and for an event's topic and data;
 *   - the session's for weft_ws_id() (until close() returned);
 *   - until the plugin is disabled for the weft_state() block.
 *
 * jansson. JSON crosses the ABI as jansson's json_t: weft_req_json(),
 * weft_db_json() (new references: you json_decref() them),
 * weft_reply_json(), weft_publish() and weft_tx_publish() (borrowed: the
 * host encodes the value during the call and neither keeps nor steals
 * it), and a signup step's body (the host's: never decref it). Because a
 * json_t made by one copy of jansson must be freed by the same copy, the
 * plugin must use the libjansson.so that weftd uses (link with
 * `pkg-config --libs jansson`, no static jansson): the host loads it
 * first, and the dynamic linker then binds the plugin's libjansson.so.4
 * to that same copy. Never call json_set_alloc_funcs(): it is
 * process-wide and the host's. A json_t is not thread-safe: do not share
 * one between callbacks that may run on different loops without a lock.
 */

/*
 * Bad arguments. No SDK call crashes on one: a NULL handle, a NULL string
 * or pointer where one is needed, a negative or out-of-range index, count
 * or length, and a call in the wrong state (a second answer, a write to a
 * stream that ended, a step on a transaction that ended or is still
 * running one, a transaction call after weft_signup_done(), an init-only
 * call outside init) do nothing and answer
 *   - WEFT_EINVAL from calls that return an int status;
 *   - a neutral value from accessors: NULL for strings and pointers, 0 for
 *     numbers, ids and flags, unless the call's comment says otherwise;
 *   - nothing from calls that return void.
 * A NULL handle is answered by the inline wrapper itself (it cannot reach
 * the host, so nothing is logged); for anything else the host logs a
 * warning naming the plugin. Lengths above WEFT_MAX_LEN are refused: they
 * are negative numbers cast to size_t. A handle that was freed (a request
 * after its answer completed, a result after its callback returned, a
 * session after close()) cannot be recognised: keep none. Plugins built
 * with an older weft.h dereference NULL handles in their own wrappers.
 */
#define WEFT_MAX_LEN ((size_t)1 << 30)

/* Every handle begins with the API pointer. */
#define WEFT__API(h) (*(const weft_api *const *)(const void *)(h))

/* True when the host provides member `m` of struct weft_api (false for a
 * NULL handle). */
#define weft_api_has(h, m)                                                    \
    ((h) != NULL && offsetof(weft_api, m) + sizeof(((weft_api *)0)->m) <=     \
                        WEFT__API(h)->struct_size)

/* The host's table behind any handle, or NULL for a NULL handle. The
 * table is the host's and lives as long as the process; it may be shorter
 * than this header's struct weft_api (check weft_api_has). */
static inline const weft_api *weft_api_of(const void *handle)
{
    return handle != NULL ? WEFT__API(handle) : NULL;
}

/* The plugin's section name, e.g. "hello" (the host's; lives with the
 * version). */
static inline const char *weft_plugin_name(weft_plugin *p)
{
    if (p == NULL)
        return NULL;
    return WEFT__API(p)->plugin_name(p);
}

/* Log a line tagged with the plugin's name. */
__attribute__((format(printf, 3, 4))) static inline void
weft_log(weft_plugin *p, int level, const char *fmt, ...)
{
    va_list ap;
    if (p == NULL)
        return;
    va_start(ap, fmt);
    WEFT__API(p)->plugin_logv(p, level, fmt, ap);
    va_end(ap);
}

/* Record why init or quiesce failed; shown in logs, /api/plugins and the
 * admin reload response. */
__attribute__((format(printf, 2, 3))) static inline void
weft_plugin_fail(weft_plugin *p, const char *fmt, ...)
{
    va_list ap;
    if (p == NULL)
        return;
    va_start(ap, fmt);
    WEFT__API(p)->plugin_fail(p, fmt, ap);
    va_end(ap);
}

/*
 * Register a route; call from init only. `pattern` must start with
 * "/api/<plugin-name>/" (or equal "/api/<plugin-name>"); a segment ":name"
 * binds a path parameter, a last segment "*name" binds the rest of the path.
 * Method is an upper-case token ("GET", "POST", ...). Routes belong to this
 * version: they vanish with it. A bad method, pattern, flag or handler
 * during init also records a failure (weft_plugin_fail): the version is
 * refused, so the mistake shows at load time.
 */
static inline int weft_route(weft_plugin *p, const char *method,
                             const char *pattern, unsigned flags,
                             weft_handler_fn fn)
{
    if (p == NULL)
        return WEFT_EINVAL;
    return WEFT__API(p)->route(p, method, pattern, flags, fn);
}

/* Typed config accessors for keys declared in the descriptor. The value is
 * the file's, overridden by WEFT_PLUGIN_<NAME>_<KEY>, or the default.
 * WEFT_ENOENT for an undeclared (or NULL) key, WEFT_EINVAL for a key of
 * another type or a NULL `out`; *out is left alone on any error. A string
 * in *out is the host's, valid while this version is loaded (a changed
 * config comes with a new version): never free it. */
static inline int weft_config_string(weft_plugin *p, const char *key,
                                     const char **out)
{
    if (p == NULL)
        return WEFT_EINVAL;
    return WEFT__API(p)->config_string(p, key, out);
}
static inline int weft_config_int(weft_plugin *p, const char *key,
                                  int64_t *out)
{
    if (p == NULL)
        return WEFT_EINVAL;
    return WEFT__API(p)->config_int(p, key, out);
}
static inline int weft_config_bool(weft_plugin *p, const char *key, int *out)
{
    if (p == NULL)
        return WEFT_EINVAL;
    return WEFT__API(p)->config_bool(p, key, out);
}

/*
 * The plugin's host-owned state slot: `size` zeroed bytes that survive
 * reloads of the plugin and are freed when it is disabled. The memory is the
 * same block for every version that asks for the same size and layout; a
 * different size or layout number gives a fresh zeroed block (so a version
 * that changed its struct never reads the old one). Keep no pointers into the
 * plugin's code or static data in it: that code is unloaded on reload.
 * Returns NULL when out of memory, and for a size of 0 or above 64 MiB.
 */
static inline void *weft_state(weft_plugin *p, size_t size, uint32_t layout)
{
    if (p == NULL)
        return NULL;
    return WEFT__API(p)->state(p, size, layout);
}
/* A mutex that guards the state slot, shared by all versions. Locking it
 * twice from one thread, or unlocking it without holding it, is refused
 * (and logged) instead of deadlocking or corrupting it. */
static inline void weft_state_lock(weft_plugin *p)
{
    if (p != NULL)
        WEFT__API(p)->state_lock(p);
}
static inline void weft_state_unlock(weft_plugin *p)
{
    if (p != NULL)
        WEFT__API(p)->state_unlock(p);
}

/* The version of the plugin serving this request (valid while the
 * request is). The request accessors below return the host's strings,
 * valid until the request ends; `name` arguments are borrowed. */
static inline weft_plugin *weft_req_plugin(weft_req *r)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_plugin(r);
}
/* "GET", "POST", ... */
static inline const char *weft_req_method(weft_req *r)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_method(r);
}
/* The decoded path, without the query string. */
static inline const char *weft_req_path(weft_req *r)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_path(r);
}
/* A path parameter bound by ":name" in the route pattern, or NULL. */
static inline const char *weft_req_param(weft_req *r, const char *name)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_param(r, name);
}
/* The first query parameter `name`, percent-decoded, or NULL. */
static inline const char *weft_req_query(weft_req *r, const char *name)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_query(r, name);
}
/* A request header (case-insensitive name), or NULL. */
static inline const char *weft_req_header(weft_req *r, const char *name)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_header(r, name);
}
/* The request id: made by weftd, unique, and what the answer's
 * X-Request-Id carries unless the client sent its own (then the answer
 * carries this one as X-Weft-Request-Id). Put this id, never a header the
 * client chose, in anything other users see (an event's "by"). */
static inline const char *weft_req_id(weft_req *r)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_id(r);
}
/* The client's address, "ip:port". */
static inline const char *weft_req_remote(weft_req *r)
{
    if (r == NULL)
        return NULL;
    return WEFT__API(r)->req_remote(r);
}
/* The raw body (never NULL, "" with *len 0 for a NULL request;
 * NUL-terminated past len for convenience). `len` may be NULL. The bytes
 * are the host's, valid until the request ends. */
static inline const void *weft_req_body(weft_req *r, size_t *len)
{
    if (r == NULL) {
        if (len != NULL)
            *len = 0;
        return "";
    }
    return WEFT__API(r)->req_body(r, len);
}
/*
 * The body parsed as JSON (strict: valid UTF-8, no trailing data, no
 * duplicate keys). Returns a new reference the caller must json_decref(),
 * or NULL with *error (when `error` is not NULL) set to a message fit for
 * a 400 answer: the host's string, valid until the request ends.
 */
static inline json_t *weft_req_json(weft_req *r, const char **error)
{
    if (r == NULL) {
        if (error != NULL)
            *error = "no request";
        return NULL;
    }
    return WEFT__API(r)->req_json(r, error);
}
/* Log a line tagged with the plugin and the request id. */
__attribute__((format(printf, 3, 4))) static inline void
weft_req_log(weft_req *r, int level, const char *fmt, ...)
{
    va_list ap;
    if (r == NULL)
        return;
    va_start(ap, fmt);
    WEFT__API(r)->req_logv(r, level, fmt, ap);
    va_end(ap);
}

/* Add a response header; call before replying. Names and values with CR,
 * LF or NUL are refused, as are the host's own framing headers. Both are
 * copied. */
static inline int weft_resp_header(weft_req *r, const char *name,
                                   const char *value)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->resp_header(r, name, value);
}
/* Answer with a body; the bytes and content type are copied. A status
 * outside 200..599 is answered as 500; a NULL body is an empty one. A
 * second answer, or one during a signup step (answer with
 * weft_signup_done), is refused. */
static inline int weft_reply(weft_req *r, int status, const char *content_type,
                             const void *body, size_t len)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->reply(r, status, content_type, body, len);
}
/* Answer with JSON. Does not steal the reference: the body is encoded
 * during the call, then yours to change or json_decref(). A NULL body is
 * answered 500. */
static inline int weft_reply_json(weft_req *r, int status, json_t *body)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->reply_json(r, status, body);
}
/* Answer {"error":{"code":code,"message":message}} with `status`; both
 * strings are copied. */
static inline int weft_reply_error(weft_req *r, int status, const char *code,
                                   const char *message)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->reply_error(r, status, code, message);
}
/* Streaming answer: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
 * A status outside 200..599 is refused (nothing is sent). Writes need a
 * started stream that did not end. Written bytes are copied. */
static inline int weft_stream_start(weft_req *r, int status,
                                    const char *content_type)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->stream_start(r, status, content_type);
}
static inline int weft_stream_write(weft_req *r, const void *data, size_t len)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->stream_write(r, data, len);
}
static inline int weft_stream_end(weft_req *r)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->stream_end(r);
}

/*
 * Run `work(arg)` on a host worker thread, then `done(req, arg)` on the
 * request's own loop, where the handler may answer. The plugin version stays
 * loaded until done() returned. If the client went away meanwhile, done() is
 * still called and its answer is discarded. Returns WEFT_EBUSY when the
 * bounded queue is full (answer 503). `arg` stays yours: work() and done()
 * get it, done() is where to free it (neither runs when the call failed).
 */
static inline int weft_defer(weft_req *r, weft_work_fn work, weft_done_fn done,
                             void *arg)
{
    if (r == NULL)
        return WEFT_EINVAL;
    return WEFT__API(r)->defer(r, work, done, arg);
}

/* ---- database (since 1.1) ---------------------------------------------
 *
 * Statements are parameterised ($1, $2, ...; text values, NULL for SQL
 * NULL): never build SQL from client input. Each call returns at once;
 * the callback runs later on the request's own loop, and the request stays
 * open until it ran. A query is cancelled when its client goes away or it
 * exceeds [database] query_timeout. When the wait queue is full the call
 * returns WEFT_EBUSY (answer 503, e.g. with weft_db_reply_error(r, NULL)).
 * `nparams` is 0..64 and `params` must hold that many entries; a NULL
 * `sql` or `cb` is refused. `sql`, `params` (the array and its strings)
 * are copied before the call returns; `arg` is handed to `cb`. The result
 * accessors take NULL (the result a busy pool stands for) and any row or
 * column: outside the result they answer as described per call. A result
 * and the strings its accessors return are the host's and live until the
 * callback returns.
 */

/* Run one statement on a pooled connection (autocommit). */
static inline int weft_db_query(weft_req *r, const char *sql, int nparams,
                                const char *const *params, weft_db_fn cb,
                                void *arg)
{
    if (r == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(r, db_query))
        return WEFT_ENOSYS;
    return WEFT__API(r)->db_query(r, sql, nparams, params, cb, arg);
}
/*
 * Start a transaction: one connection is reserved for it until
 * weft_tx_end(). cb gets the transaction (NULL if BEGIN failed; see res).
 * One statement at a time per transaction (a step while one runs is
 * refused). If the request ends without weft_tx_end(), the host rolls
 * back. The handle is the host's and stays recognisable until the request
 * ends: steps on a transaction that ended (or is ending) answer
 * WEFT_EINVAL.
 */
static inline int weft_tx_begin(weft_req *r, weft_tx_fn cb, void *arg)
{
    if (r == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(r, tx_begin))
        return WEFT_ENOSYS;
    return WEFT__API(r)->tx_begin(r, cb, arg);
}
static inline int weft_tx_query(weft_tx *tx, const char *sql, int nparams,
                                const char *const *params, weft_tx_fn cb,
                                void *arg)
{
    if (tx == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(tx, tx_query))
        return WEFT_ENOSYS;
    return WEFT__API(tx)->tx_query(tx, sql, nparams, params, cb, arg);
}
/* COMMIT (commit != 0) or ROLLBACK; cb gets tx == NULL (it is gone) and the
 * result: check weft_db_ok() to know the commit succeeded. A signup
 * step's transaction belongs to the host: ending it is refused. */
static inline int weft_tx_end(weft_tx *tx, int commit, weft_tx_fn cb,
                              void *arg)
{
    if (tx == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(tx, tx_end))
        return WEFT_ENOSYS;
    return WEFT__API(tx)->tx_end(tx, commit, cb, arg);
}
/* 1 when the statement succeeded, else 0 (for NULL too): a predicate,
 * not a status. */
static inline int weft_db_ok(const weft_db_res *res)
{
    if (!weft_api_has(res, db_ok))
        return 0;
    return WEFT__API(res)->db_ok(res);
}
/* The error text (for logs, never for clients), or NULL on success;
 * "no result" for NULL. */
static inline const char *weft_db_error(const weft_db_res *res)
{
    if (!weft_api_has(res, db_error))
        return "no result";
    return WEFT__API(res)->db_error(res);
}
/* The SQLSTATE, e.g. "23505" for a unique violation, or NULL. */
static inline const char *weft_db_sqlstate(const weft_db_res *res)
{
    if (!weft_api_has(res, db_sqlstate))
        return NULL;
    return WEFT__API(res)->db_sqlstate(res);
}
/* The number of rows, and of columns (0 for NULL or a failed statement):
 * counts, not statuses. */
static inline int weft_db_rows(const weft_db_res *res)
{
    if (!weft_api_has(res, db_rows))
        return 0;
    return WEFT__API(res)->db_rows(res);
}
static inline int weft_db_cols(const weft_db_res *res)
{
    if (!weft_api_has(res, db_cols))
        return 0;
    return WEFT__API(res)->db_cols(res);
}
/* A column's name, or NULL outside 0..cols-1. */
static inline const char *weft_db_colname(const weft_db_res *res, int col)
{
    if (!weft_api_has(res, db_colname))
        return NULL;
    return WEFT__API(res)->db_colname(res, col);
}
/* A value in PostgreSQL's text form ("" for NULL: check
 * weft_db_isnull()); NULL outside the result. Timestamps here are the
 * server's text ("2026-12-04 01:16:16.123+00"); weft_db_json() gives
 * them as RFC 3339. */
static inline const char *weft_db_value(const weft_db_res *res, int row,
                                        int col)
{
    if (!weft_api_has(res, db_value))
        return NULL;
    return WEFT__API(res)->db_value(res, row, col);
}
/* 1 for SQL NULL, and outside the result (there is no value there); 0
 * otherwise. A predicate, not a status. */
static inline int weft_db_isnull(const weft_db_res *res, int row, int col)
{
    if (!weft_api_has(res, db_isnull))
        return 1;
    return WEFT__API(res)->db_isnull(res, row, col);
}
/*
 * A row as a JSON object keyed by column name (row >= 0), or all rows as an
 * array of objects (row == -1). Integers, floats, booleans, json/jsonb and
 * NULL keep their JSON types; everything else is a string. Dates and
 * times are RFC 3339 strings: a date "2026-12-04", a timestamptz in UTC
 * "2026-12-04T01:16:16.123Z" (the same instant whatever the session's
 * TimeZone; fraction digits as the server gave them), a timestamp without
 * time zone "2026-12-04T01:16:16.123" (it has no zone, so none is
 * added). Values RFC 3339 cannot express (infinity, BC, years past 9999)
 * stay PostgreSQL's text, as do all of them on a database whose DateStyle
 * is not ISO (PostgreSQL's default, and the embedded cluster's). A new
 * reference: json_decref() it; it does not depend on `res` and may
 * outlive the callback. NULL for a row outside the result or below -1;
 * an empty array for row == -1 of a NULL or failed result.
 */
static inline json_t *weft_db_json(const weft_db_res *res, int row)
{
    if (!weft_api_has(res, db_json))
        return row == -1 ? json_array() : NULL;
    return WEFT__API(res)->db_json(res, row);
}
/*
 * Answer a failed statement: 503 when the database is unreachable, the pool
 * is busy (res == NULL) or the query timed out; 409 for unique and
 * exclusion violations; 500 otherwise. The SQL error goes to the log with
 * the request id, never to the client. Returns the answer's status
 * (WEFT_OK once answered); WEFT_ENOSYS on a 1.0 host, which has no
 * database (nothing is answered: answer yourself).
 */
static inline int weft_db_reply_error(weft_req *r, const weft_db_res *res)
{
    if (r == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(r, db_reply_error))
        return WEFT_ENOSYS;
    return WEFT__API(r)->db_reply_error(r, res);
}

/* ---- identity (since 1.1) ----------------------------------------------
 *
 * The host signs users in (/api/auth/...); a route flagged WEFT_ROUTE_USER
 * is only called with a signed-in user. On other routes the user is known
 * when the client sent credentials, else 0.
 */

/* The signed-in user's id, or 0 (an id, not a status). */
static inline int64_t weft_req_user(weft_req *r)
{
    if (!weft_api_has(r, req_user))
        return 0;
    return WEFT__API(r)->req_user(r);
}
/* 1 when the signed-in user has `role` ("user", "admin"); 0 otherwise and
 * for a NULL role. */
static inline int weft_req_has_role(weft_req *r, const char *role)
{
    if (!weft_api_has(r, req_has_role))
        return 0;
    return WEFT__API(r)->req_has_role(r, role);
}
/* Look up the public profile of any user: cb gets zero or one row with the
 * columns id, username, display_name (a result, as for weft_db_query).
 * An id below 1 is refused. */
static inline int weft_user_profile(weft_req *r, int64_t user_id,
                                    weft_db_fn cb, void *arg)
{
    if (r == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(r, user_profile))
        return WEFT_ENOSYS;
    return WEFT__API(r)->user_profile(r, user_id, cb, arg);
}

/* ---- bus and realtime (since 1.2) --------------------------------------
 *
 * Topics use NATS subject syntax: tokens of letters, digits and "_-:@~"
 * separated by dots ("todo.user.7"); a pattern may use "*" for one token
 * and ">" for one or more at the end. A plugin owns the topics under its
 * name ("todo." for the plugin todo): it alone publishes there and decides
 * who may subscribe. Messages are JSON. Clients reach topics through
 * GET /api/realtime (SSE) and GET /api/ws (WebSocket); see sdk/README.md.
 */

/* Declare topics `pattern` (under "<plugin>.") and who may subscribe:
 * `auth` decides when given, otherwise `flags` do. Call from init only.
 * A topic nobody declared is closed to clients. `pattern` is copied. */
static inline int weft_topic(weft_plugin *p, const char *pattern,
                             unsigned flags, weft_topic_auth_fn auth)
{
    if (p == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(p, topic))
        return WEFT_ENOSYS;
    return WEFT__API(p)->topic(p, pattern, flags, auth);
}
/* Publish `data` (any JSON value; borrowed: encoded during the call, not
 * stolen, then yours again) on `topic` (under "<plugin>.", copied), from
 * any thread: it reaches subscribers on this node at once and other
 * nodes through NATS when configured. Not transactional: use
 * weft_tx_publish() for events that must follow a commit. */
static inline int weft_publish(weft_plugin *p, const char *topic,
                               json_t *data)
{
    if (p == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(p, publish))
        return WEFT_ENOSYS;
    return WEFT__API(p)->publish(p, topic, data);
}
/* Receive every message on topics matching `pattern` (any topic, other
 * plugins' too; copied). Call from init only; ends with the version.
 * `arg` is passed to every call of `fn`: it must live as long as the
 * version (e.g. NULL, or a pointer into the state slot). */
static inline int weft_subscribe(weft_plugin *p, const char *pattern,
                                 weft_event_fn fn, void *arg)
{
    if (p == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(p, subscribe))
        return WEFT_ENOSYS;
    return WEFT__API(p)->subscribe(p, pattern, fn, arg);
}
/* Publish inside transaction `tx` (the transactional outbox): the event
 * goes out if and only if the transaction commits, also when weftd
 * restarts in between. At least once: a crash between sending and
 * recording it sends it again, so make consumers idempotent (put an id in
 * the data). `data` is borrowed: encoded (compact JSON) during the call,
 * neither kept nor stolen, so json_decref() it when you like; `topic` is
 * copied. cb runs like a tx step (res is the INSERT's result). Outside
 * a live transaction (NULL, ended, ending) it answers WEFT_EINVAL. */
static inline int weft_tx_publish(weft_tx *tx, const char *topic,
                                  json_t *data, weft_tx_fn cb, void *arg)
{
    if (tx == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(tx, tx_publish))
        return WEFT_ENOSYS;
    return WEFT__API(tx)->tx_publish(tx, topic, data, cb, arg);
}
/*
 * A WebSocket endpoint at `pattern` (under /api/<plugin>/, like a route;
 * WEFT_ROUTE_USER makes it need a signed-in user). The host does the
 * handshake, framing, pings, limits and Origin check; `h` must be static
 * (it is read at each call through the serving version). Init only.
 * `pattern` is copied. The session handle passed to the handlers is the
 * host's, valid until close() returned.
 */
static inline int weft_ws_route(weft_plugin *p, const char *pattern,
                                unsigned flags, const weft_ws_handlers *h)
{
    if (p == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(p, ws_route))
        return WEFT_ENOSYS;
    return WEFT__API(p)->ws_route(p, pattern, flags, h);
}
/* The version of the plugin handling this call (valid during it). */
static inline weft_plugin *weft_ws_plugin(weft_ws *ws)
{
    if (!weft_api_has(ws, ws_plugin))
        return NULL;
    return WEFT__API(ws)->ws_plugin(ws);
}
/* Send a message (`data` is copied). Text must be valid UTF-8. WEFT_EBUSY
 * when the client is too slow (the host then closes it), WEFT_ERR once the
 * session is closing. Only from the session's callbacks. */
static inline int weft_ws_send(weft_ws *ws, const char *data, size_t len,
                               int binary)
{
    if (ws == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(ws, ws_send))
        return WEFT_ENOSYS;
    return WEFT__API(ws)->ws_send(ws, data, len, binary);
}
/* Close with `code` (1000, or 3000-4999 for the application) and a reason
 * of at most 123 bytes of UTF-8 (or NULL; copied). */
static inline int weft_ws_close(weft_ws *ws, int code, const char *reason)
{
    if (ws == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(ws, ws_close))
        return WEFT_ENOSYS;
    return WEFT__API(ws)->ws_close(ws, code, reason);
}
/* The signed-in user of the session, or 0 (an id, not a status). */
static inline int64_t weft_ws_user(weft_ws *ws)
{
    if (!weft_api_has(ws, ws_user))
        return 0;
    return WEFT__API(ws)->ws_user(ws);
}
/* The session's id (unique on this node; "" for NULL): the host's string,
 * valid until close() returned. */
static inline const char *weft_ws_id(weft_ws *ws)
{
    if (!weft_api_has(ws, ws_id))
        return "";
    return WEFT__API(ws)->ws_id(ws);
}
/* Also deliver messages of `topic` (a topic or pattern) to this session,
 * as {"type":"message",...} text frames; no client authorization is
 * applied: the plugin decides. `topic` is copied. */
static inline int weft_ws_subscribe(weft_ws *ws, const char *topic)
{
    if (ws == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(ws, ws_subscribe))
        return WEFT_ENOSYS;
    return WEFT__API(ws)->ws_subscribe(ws, topic);
}

/* ---- signup steps (since 1.3) ------------------------------------------
 *
 * Plugins that keep per-account data created with the account itself (a
 * referral link, a default list) register a signup step: it runs in the
 * registration's own transaction, so the account and the plugin's rows
 * exist together or not at all. Steps run one after another, in the order
 * the plugins are configured. `arg` is passed to every step: it must live
 * as long as the version.
 */
static inline int weft_on_signup(weft_plugin *p, weft_signup_fn fn, void *arg)
{
    if (p == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(p, on_signup))
        return WEFT_ENOSYS;
    return WEFT__API(p)->on_signup(p, fn, arg);
}
/* The signup step is finished: status WEFT_OK (0) to go on, or an HTTP
 * status 400..499 with an error code and a message for the client (the
 * registration is rolled back and answered with it), or 500..599 for a
 * failure of the plugin's own (any other status counts as 500). Call
 * exactly once per step: a second call, or one outside a step, is
 * refused; the step's transaction handle and body stop working here.
 * `code` and `message` are copied. */
static inline int weft_signup_done(weft_req *r, int status, const char *code,
                                   const char *message)
{
    if (r == NULL)
        return WEFT_EINVAL;
    if (!weft_api_has(r, signup_done))
        return WEFT_ENOSYS;
    return WEFT__API(r)->signup_done(r, status, code, message);
}

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WEFT_H */
