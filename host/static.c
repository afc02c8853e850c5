/* static.c - files for browsers: the web client under [server] web_root and
 * each plugin's asset folder (weft_plugin_desc.assets) under /p/<name>/.
 *
 * Files are read on the worker pool (never on a loop), bounded in size,
 * and resolved with realpath so neither ".." nor a symbolic link leads
 * outside their folder. Vite's hashed files under /assets/ are immutable;
 * everything else (pages, widget.js, which changes with a plugin reload) is
 * revalidated with its ETag on every use. */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "http_parse.h"
#include "log.h"

#define WSTATIC_FLAGS (WEFT_ROUTE_NO_BODY | WAUTH_ROUTE_ANON)
#include "plugin.h"
#include "request.h"

#define WSTATIC_MAX (16 * 1024 * 1024) /* largest file served, bytes */

static char *wstatic_root; /* the web client's folder, or NULL */

struct wstatic_job {
    char *dir;  /* the folder it must stay in */
    char *file; /* relative name inside it   */
    int immutable;
    int status; /* after the work: 200, 404, 500 */
    char *body;
    size_t len;
    char etag[64];
};

static const struct {
    const char *ext, *type;
} wstatic_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *wstatic_type(const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < sizeof(wstatic_types) / sizeof(*wstatic_types);
         i++) {
        size_t e = strlen(wstatic_types[i].ext);
        if (n > e && strcmp(name + n - e, wstatic_types[i].ext) == 0)
            return wstatic_types[i].type;
    }
    return "application/octet-stream";
}

/* A relative name made of ordinary segments only. */
static int wstatic_name_ok(const char *f)
{
    const char *seg = f;

    if (*f == '\0' || *f == '/' || strlen(f) > 512)
        return 0;
    for (const char *p = f;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') ||
                (n == 2 && seg[0] == '.' && seg[1] == '.') || seg[0] == '.')
                return 0; /* also hidden files like .env */
            if (*p == '\0')
                return 1;
            seg = p + 1;
        } else if (*p == '\\' || (unsigned char)*p < 0x20) {
            return 0;
        }
    }
}

/* On a worker: find, check and read the file. */
static void wstatic_read(void *arg)
{
    struct wstatic_job *j = arg;
    char path[4700], *real;
    size_t dl = strlen(j->dir);
    struct stat st;
    ssize_t got;
    int fd;

    j->status = 404;
    snprintf(path, sizeof(path), "%s/%s", j->dir, j->file);
    real = realpath(path, NULL);
    if (real == NULL)
        return;
    if (strncmp(real, j->dir, dl) != 0 || real[dl] != '/') {
        free(real); /* a link out of the folder */
        return;
    }
    fd = open(real, O_RDONLY | O_CLOEXEC);
    free(real);
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > WSTATIC_MAX) {
        close(fd);
        return;
    }
    j->body = malloc((size_t)st.st_size + 1);
    j->status = 500;
    if (j->body == NULL) {
        close(fd);
        return;
    }
    for (j->len = 0; j->len < (size_t)st.st_size; j->len += (size_t)got) {
        got = read(fd, j->body + j->len, (size_t)st.st_size - j->len);
        if (got <= 0)
            break;
    }
    close(fd);
    if (j->len != (size_t)st.st_size)
        return;
    /* Size, change time and inode change whenever the file is rewritten
     * (a rebuild, a new plugin version). */
    snprintf(j->etag, sizeof(j->etag), "\"%llx-%llx-%llx\"",
             (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec,
             (unsigned long long)st.st_ino);
    j->status = 200;
}

static void wstatic_free(struct wstatic_job *j)
{
    free(j->dir);
    free(j->file);
    free(j->body);
    free(j);
}

/* If-None-Match: a list of tags, or "*". */
static int wstatic_not_modified(weft_req *r, const char *etag)
{
    const char *inm = whttp_header(&r->head, "If-None-Match");

    return inm != NULL && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0);
}

static void wstatic_answer(weft_req *r, void *arg)
{
    struct wstatic_job *j = arg;
    const char *type = wstatic_type(j->file);

    if (j->status != 200) {
        wreq_reply_error(r, j->status, j->status == 404 ? "not_found"
                                                        : "internal",
                         j->status == 404 ? "no such file" : "cannot read it");
        wstatic_free(j);
        return;
    }
    r->api->resp_header(r, "ETag", j->etag);
    r->api->resp_header(r, "Cache-Control",
                        j->immutable ? "public, max-age=31536000, immutable"
                                     : "no-cache");
    r->api->resp_header(r, "X-Content-Type-Options", "nosniff");
    if (strncmp(type, "text/html", 9) == 0) {
        r->api->resp_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; "
                            "style-src 'self' 'unsafe-inline'; "
                            "frame-ancestors 'none'; base-uri 'none'");
        r->api->resp_header(r, "Referrer-Policy", "same-origin");
    }
    if (wstatic_not_modified(r, j->etag))
        wreq_reply(r, 304, NULL, NULL, 0);
    else
        wreq_reply(r, 200, type, j->body, j->len);
    wstatic_free(j);
}

static int wstatic_serve(weft_req *r, char *dir, const char *file,
                         int immutable)
{
    struct wstatic_job *j;

    if (dir == NULL)
        return wreq_reply_error(r, 404, "not_found", "no such file");
    if (!wstatic_name_ok(file)) {
        free(dir);
        return wreq_reply_error(r, 404, "not_found", "no such file");
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->file = strdup(file)) == NULL) {
        free(j);
        free(dir);
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    }
    j->dir = dir;
    j->immutable = immutable;
    if (wreq_defer_on(r, NULL, wstatic_read, wstatic_answer, j) != WEFT_OK) {
        wstatic_free(j);
        return wreq_reply_error(r, 503, "busy", "try again");
    }
    return WEFT_OK;
}

static char *wstatic_web(void)
{
    return wstatic_root != NULL ? strdup(wstatic_root) : NULL;
}

static int wstatic_index(weft_req *r)
{
    return wstatic_serve(r, wstatic_web(), "index.html", 0);
}

static int wstatic_assets(weft_req *r)
{
    const char *f = r->api->req_param(r, "file");
    char name[600];

    snprintf(name, sizeof(name), "assets/%s", f != NULL ? f : "");
    return wstatic_serve(r, wstatic_web(), name, 1);
}

/* /p/<plugin>/ is the standalone page of the web client; /p/<plugin>/x
 * is the plugin's own file x. */
static int wstatic_plugin(weft_req *r)
{
    const char *name = r->api->req_param(r, "plugin");
    const char *f = r->api->req_param(r, "file");
    char *dir;

    if (name == NULL)
        return wreq_reply_error(r, 404, "not_found", "no such plugin");
    /* The standalone page itself says when its plugin is off. */
    if (f == NULL || f[0] == '\0')
        return wstatic_serve(r, wstatic_web(), "standalone.html", 0);
    dir = wplug_assets(name);
    if (dir == NULL)
        return wreq_reply_error(r, 404, "not_found",
                                "no such plugin, or it serves no files");
    return wstatic_serve(r, dir, f, 0);
}

/* /p/<plugin> without the slash: relative URLs in the page need it. */
static int wstatic_plugin_slash(weft_req *r)
{
    const char *name = r->api->req_param(r, "plugin");
    char loc[200];

    if (name == NULL || strlen(name) > 100 || strpbrk(name, "\r\n") != NULL)
        return wreq_reply_error(r, 404, "not_found", "no such plugin");
    snprintf(loc, sizeof(loc), "/p/%s/", name);
    r->api->resp_header(r, "Location", loc);
    return wreq_reply(r, 308, NULL, NULL, 0);
}

int wstatic_routes(const char *web_root)
{
    if (web_root != NULL && web_root[0] != '\0') {
        wstatic_root = realpath(web_root, NULL);
        if (wstatic_root == NULL)
            wlog(WLOG_WARN, "host", "[server] web_root %s: %s (the web "
                                    "client is not served)",
                 web_root, strerror(errno));
    }
    /* Files are the same for everyone: their requests never wait for the
     * account lookup credentials would need (WAUTH_ROUTE_ANON). */
    if (wplug_host_route("GET", "/", WSTATIC_FLAGS, wstatic_index) ||
        wplug_host_route("GET", "/assets/*file", WSTATIC_FLAGS,
                         wstatic_assets) ||
        wplug_host_route("GET", "/p/:plugin", WSTATIC_FLAGS,
                         wstatic_plugin_slash) ||
        wplug_host_route("GET", "/p/:plugin/", WSTATIC_FLAGS,
                         wstatic_plugin) ||
        wplug_host_route("GET", "/p/:plugin/*file", WSTATIC_FLAGS,
                         wstatic_plugin))
        return -1;
    return 0;
}

void wstatic_fini(void)
{
    free(wstatic_root);
    wstatic_root = NULL;
}
