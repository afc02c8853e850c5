/* rt.h - realtime sessions: the part SSE, the WebSocket command protocol
 * and plugin WebSocket endpoints share. A session lives on one loop and
 * holds subscriptions; each loop indexes its own subscriptions, so
 * delivering a message needs no lock shared with other loops. */
#ifndef WEFT_HOST_RT_H
#define WEFT_HOST_RT_H

#include <stdint.h>

#include <jansson.h>

struct wconn;
struct wloop;
struct wmsg;
struct wrt_sess;

struct wrt_cfg {
    int64_t heartbeat_ms;
    int max_subs;
    size_t send_buffer;
    size_t ws_max_message;
    char *allowed_origins; /* comma-separated; owned by rt.c */
};
extern struct wrt_cfg wrt_cfg;

struct wrt_sub {
    struct wrt_sess *s;
    char *pattern;
    uint64_t floor; /* live messages at or below this were history */
    int wild;
    struct wrt_sub *snext;           /* the session's list  */
    struct wrt_sub *inext, **iprev;  /* the loop's index    */
};

struct wrt_ops {
    /* Queue a bus message (shared bytes; take a reference to keep it). */
    void (*send)(struct wrt_sess *s, struct wmsg *m);
    /* Queue a control event, e.g. "subscribed" (j is borrowed). */
    void (*event)(struct wrt_sess *s, const char *type, json_t *j);
    void (*heartbeat)(struct wrt_sess *s);
    /* End the session: `code` is a WebSocket close code (SSE ignores it). */
    void (*end)(struct wrt_sess *s, int code, const char *reason);
};

struct wrt_sess {
    const struct wrt_ops *ops;
    struct wconn *conn; /* NULL once the connection is gone */
    struct wloop *loop;
    char id[40];
    int64_t user;
    int64_t exp; /* the credentials' expiry (s since the epoch), 0: none */
    unsigned uflags;
    struct wrt_sub *subs;
    int nsubs;
    uint64_t last_live; /* offset of the last live message sent */
    int64_t seen_ms;    /* last sign of life from the client     */
    unsigned ending : 1;
    unsigned dirty : 1;           /* output queued, flush pending */
    struct wrt_sess *dnext;       /* the loop's dirty list        */
    struct wrt_sess *prev, *next; /* the loop's sessions */
    struct wrt_sess *hnext;       /* the loop's id table  */
};

int wrt_init(const struct wrt_cfg *cfg, int nloops);
/* Per loop, on that loop: start the heartbeat. */
void wrt_loop_start(struct wloop *l);
/* After the loops stopped. */
void wrt_fini(void);
/* The account's credentials changed (logout, password, roles, deleted):
 * end its sessions on every loop; they reconnect with fresh credentials.
 * Any thread. */
void wrt_revoke_user(int64_t user);

/* Register a new session on its loop (fills id). */
void wrt_sess_add(struct wrt_sess *s, struct wloop *l, struct wconn *c);
/* Its connection closed: drop subscriptions, unlink. Does not free s. */
void wrt_sess_remove(struct wrt_sess *s);
/* The session with this id on loop l, or NULL. */
struct wrt_sess *wrt_sess_find(struct wloop *l, const char *id);
/* The loop an id belongs to, or NULL. */
struct wloop *wrt_id_loop(const char *id);

/* Subscribe s to `pattern` (authorization already done), replaying what it
 * missed after (epoch, since) when given. Sends "subscribed" with
 * {"topic","recovered","epoch","offset"} then the replayed messages.
 * 0 ok (also when already subscribed), -1 out of memory, -2 too many. */
int wrt_subscribe(struct wrt_sess *s, const char *pattern, const char *epoch,
                  uint64_t since);
/* 0 ok, -1 not subscribed. Sends "unsubscribed". */
int wrt_unsubscribe(struct wrt_sess *s, const char *pattern);

/* The hub's task on loop l: hand m to the matching subscriptions. */
void wrt_deliver(struct wloop *l, struct wmsg *m);

/* Queue bytes and send; ends the session as a slow consumer when its
 * unsent output passes [realtime] send_buffer. -1 when it ended. */
int wrt_write(struct wrt_sess *s, const void *data, size_t len);
int wrt_write_msg(struct wrt_sess *s, struct wmsg *m, int ws);

/* Parse "<epoch>-<offset>" (an SSE event id). 0 ok. */
int wrt_parse_pos(const char *s, char epoch[17], uint64_t *offset);

/* Counters for /metrics. */
void wrt_stats(uint64_t *sessions, uint64_t *slow, uint64_t *delivered);

#endif
