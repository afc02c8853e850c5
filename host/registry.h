/* registry.h - what plugins register besides routes: topic owners (and
 * their authorization hooks), bus subscriptions and WebSocket endpoints.
 *
 * Each entry belongs to one loaded version. Whenever the serving versions
 * change, the control thread builds a new snapshot of all entries; readers
 * on any loop look things up in the current snapshot and take a reference
 * on the version before calling into it. So a hook or a WebSocket callback
 * always goes to the version serving at that moment. */
#ifndef WEFT_HOST_REGISTRY_H
#define WEFT_HOST_REGISTRY_H

#include <stdint.h>

#include <weft/weft.h>

struct wmsg;

enum { WREG_TOPIC = 1, WREG_SUB, WREG_WS, WREG_SIGNUP };

struct wreg_ent {
    int kind;
    struct weft_plugin *inst;
    char *pattern; /* topic pattern, or the WebSocket endpoint's path */
    unsigned flags;
    weft_topic_auth_fn auth;    /* WREG_TOPIC */
    weft_event_fn event;        /* WREG_SUB   */
    void *arg;                  /* WREG_SUB   */
    const weft_ws_handlers *ws; /* WREG_WS    */
    weft_signup_fn signup;      /* WREG_SIGNUP (arg too) */
};

int wreg_init(const char *public_topics);
void wreg_fini(void);

/* During init of version `i`. Return a WEFT_ code. */
int wreg_topic(struct weft_plugin *i, const char *pattern, unsigned flags,
               weft_topic_auth_fn auth);
int wreg_subscribe(struct weft_plugin *i, const char *pattern,
                   weft_event_fn fn, void *arg);
int wreg_ws(struct weft_plugin *i, const char *pattern, unsigned flags,
            const weft_ws_handlers *h);
int wreg_signup(struct weft_plugin *i, weft_signup_fn fn, void *arg);
/* Free a version's entries (it is being unloaded). */
void wreg_inst_free(struct weft_plugin *i);

/* Control thread: the serving versions changed; take their entries. */
void wreg_rebuild(void);

/* May user (0: signed out) do `action` on `topic` (a topic or, for
 * subscriptions, a pattern)? 0 yes; 401 sign in first; 403 refused;
 * 404 nobody owns that topic. */
int wreg_authorize(const char *topic, int action, int64_t user,
                   unsigned user_flags);

/* Control loop: hand a bus message to the plugin subscriptions. */
void wreg_deliver(struct wmsg *m);

/* The serving version's WebSocket endpoint `pattern` of plugin `name`:
 * fills *out and takes a reference on out->inst (release it with
 * wplug_inst_release). -1 when there is none now. */
int wreg_ws_find(const char *name, const char *pattern, struct wreg_ent *out);

/* Copies of the signup steps now, in configuration order, each holding a
 * reference on its version (release them). The count, or -1. */
int wreg_signups(struct wreg_ent **out);

#endif
