/* static.h - the web client and plugins' asset folders, served as files
 * with ETag and cache headers. */
#ifndef WEFT_HOST_STATIC_H
#define WEFT_HOST_STATIC_H

/* GET /, /assets/<file>, /p/<plugin>/ and /p/<plugin>/<file>.
 * `web_root` may be empty (no web client: only plugin assets). */
int wstatic_routes(const char *web_root);
void wstatic_fini(void);

#endif
