/* rt_ws.h - WebSocket sessions (RFC 6455, framing by wslay): the host's
 * topic endpoint GET /api/ws and plugin endpoints (weft_ws_route). */
#ifndef WEFT_HOST_RT_WS_H
#define WEFT_HOST_RT_WS_H

#include <weft/weft.h>

/* GET /api/ws: the JSON command protocol over the topic layer. */
int wrt_ws_handler(weft_req *r);
/* The route handler behind every weft_ws_route() endpoint. */
int wrt_ws_plugin_handler(weft_req *r);

/* The SDK's weft_ws_* calls. */
weft_plugin *wrt_ws_api_plugin(weft_ws *ws);
int wrt_ws_api_send(weft_ws *ws, const char *data, size_t len, int binary);
int wrt_ws_api_close(weft_ws *ws, int code, const char *reason);
int64_t wrt_ws_api_user(weft_ws *ws);
const char *wrt_ws_api_id(weft_ws *ws);
int wrt_ws_api_subscribe(weft_ws *ws, const char *topic);

#endif
