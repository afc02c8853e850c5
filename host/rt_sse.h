/* rt_sse.h - Server-Sent Events: GET /api/realtime and
 * POST /api/realtime/subscriptions. */
#ifndef WEFT_HOST_RT_SSE_H
#define WEFT_HOST_RT_SSE_H

#include <weft/weft.h>

int wrt_sse_handler(weft_req *r);
int wrt_sse_subs_handler(weft_req *r);

/* Validate and authorize a client's subscription request for `topic`
 * (shared with the WebSocket protocol). 0 ok, else an HTTP-like status
 * with *code and *msg set for the error answer. */
int wrt_check_topic(weft_req *r, int64_t user, unsigned uflags,
                    const char *topic, int action, const char **code,
                    const char **msg);

/* The user flags (WEFT_USER_ADMIN) of a request's user. */
unsigned wrt_user_flags(weft_req *r);

#endif
