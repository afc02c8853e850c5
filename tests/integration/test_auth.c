/*
 * Identity endpoints of the host (/api/auth/...), end to end against a real
 * weftd with its embedded PostgreSQL: registration and its validation,
 * login, refresh-token rotation and reuse detection, logout, access tokens
 * (expiry and forgeries: tampered, alg none, HS512, wrong issuer/audience,
 * wrong key), cookie sessions with CSRF double-submit, password change,
 * rate limits, admin routes for signed-in users, and the command-line
 * tools --create-admin and --seed-demo.
 *
 * Every test starts its own weftd on its own data directory (made 0711:
 * as root the cluster runs as 'postgres', which must pass through), and
 * runs many checks against it. Password hashing is made cheap in every
 * config (argon2_opslimit = 1, argon2_memlimit = 64k).
 *
 * Rate limits are per client address: the tests that need several
 * addresses connect from 127.0.0.x (any address of 127/8 is local on
 * Linux) to the 127.0.0.1 listener.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <poll.h>
#include <sodium.h>

#include "it_common.h"

#ifndef IT_TODO_SO
#error "IT_TODO_SO must be defined by the build"
#endif

extern char **environ;

/* Cheap hashing, and limits no test reaches unless it means to. */
#define AU_FAST "argon2_opslimit = 1\nargon2_memlimit = 64k\n"
#define AU_LOOSE                                                               \
    "login_rate = 10000\nlogin_account_rate = 10000\n"                         \
    "register_rate = 10000\nrefresh_rate = 10000\n"

/* A plain-text signing secret (>= 32 bytes) the tests forge tokens with. */
#define AU_SECRET "weft-it-auth-secret-0123456789-abcdefghij"
#define AU_ISS "https://weft.it.example"
#define AU_AUD "weft-it-api"

#define AU_JSON "Content-Type: application/json\r\n"

/* ---- data directory and weftd ------------------------------------------ */

/* A data directory that outlives one weftd, so restarts can reuse it. It
 * is removed when the test process ends, also after a failed assertion. */
static char *au_tmpdir(void)
{
    char *d = it_mkdtemp();

    /* as root the cluster runs as 'postgres', which must pass through */
    ck_assert_int_eq(chmod(d, 0711), 0);
    return d;
}

/* A complete config: database on, [auth] with cheap hashing plus
 * `auth_extra`, then `more` (other sections). */
static char *au_config(const char *dir, const char *auth_extra,
                       const char *more)
{
    return it_strf("[server]\nlisten = 127.0.0.1:@PORT@\nthreads = 2\n"
                   "data_dir = %s/data\nshutdown_timeout = 10s\n"
                   "[admin]\ntoken = @TOKEN@\n"
                   "[database]\nenabled = true\n"
                   "[auth]\n" AU_FAST "%s"
                   "%s",
                   dir, auth_extra ? auth_extra : "", more ? more : "");
}

static weft_harness *au_start(const char *dir, const char *auth_extra,
                              const char *more)
{
    char *cfg = au_config(dir, auth_extra, more);
    weft_harness *h = weft_harness_start_raw(cfg);

    ck_assert_msg(h != NULL, "weftd with the database did not start; "
                             "config:\n%s",
                  cfg);
    free(cfg);
    return h;
}

/* ---- HTTP helpers ------------------------------------------------------- */

/* One request; `extra` is NULL or header lines; a body gets a JSON
 * Content-Type. */
static void au_call(weft_harness *h, const char *method, const char *path,
                    const char *extra, const char *body, weft_hresp *out)
{
    char *hdrs = it_strf("%s%s", body != NULL ? AU_JSON : "",
                         extra != NULL ? extra : "");

    it_req(h, method, path, hdrs, body, body != NULL ? strlen(body) : 0, out);
    free(hdrs);
}

/* POST with credentials in cookie `cookie` (= `val`) and `csrf` both as
 * the weft_csrf cookie and the X-CSRF-Token header (the double submit). */
static void au_csrf_post(weft_harness *h, const char *path, const char *cookie,
                         const char *val, const char *csrf, const char *body,
                         weft_hresp *out)
{
    char *hdr = it_strf("Cookie: %s=%s; weft_csrf=%s\r\nX-CSRF-Token: %s\r\n",
                        cookie, val, csrf, csrf);

    au_call(h, "POST", path, hdr, body, out);
    free(hdr);
}

/* The same, from the local address `src` (e.g. "127.0.0.7"). */
static void au_call_from(weft_harness *h, const char *src, const char *method,
                         const char *path, const char *extra, const char *body,
                         weft_hresp *out)
{
    struct sockaddr_in a, d;
    size_t blen = body != NULL ? strlen(body) : 0;
    char *req;
    int fd, rc;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    ck_assert_int_eq(inet_pton(AF_INET, src, &a.sin_addr), 1);
    ck_assert_msg(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
                  "bind %s: %s", src, strerror(errno));
    memset(&d, 0, sizeof(d));
    d.sin_family = AF_INET;
    d.sin_port = htons((unsigned short)weft_harness_port(h));
    d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&d, sizeof(d)) == 0,
                  "connect from %s: %s", src, strerror(errno));
    req = it_strf("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                  "Connection: close\r\n%sContent-Length: %zu\r\n%s\r\n%s",
                  method, path, weft_harness_port(h),
                  body != NULL ? AU_JSON : "", blen, extra ? extra : "",
                  body ? body : "");
    ck_assert_int_eq(weft_harness_send(fd, req, strlen(req)), 0);
    rc = weft_hresp_read(fd, out, IT_READ_MS);
    ck_assert_msg(rc == 0, "%s %s from %s: no response: %s", method, path, src,
                  strerror(errno));
    weft_harness_close(fd);
    free(req);
}

static char *au_bearer(const char *token)
{
    return it_strf("Authorization: Bearer %s\r\n", token);
}

/* A JSON text of string pairs: au_obj("email", e, "password", p, NULL). */
static char *au_obj(const char *k, ...)
{
    json_t *o = json_object();
    va_list ap;
    char *s;

    va_start(ap, k);
    for (; k != NULL; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        ck_assert_int_eq(json_object_set_new(o, k, json_string(v)), 0);
    }
    va_end(ap);
    s = json_dumps(o, JSON_COMPACT);
    ck_assert_ptr_nonnull(s);
    json_decref(o);
    return s;
}

static char *au_register_body(const char *email, const char *username,
                              const char *display, const char *password)
{
    return au_obj("email", email, "username", username, "display_name",
                  display, "password", password, NULL);
}

/* The message of an error body (a copy), after it_assert_error(). */
static char *au_err_message(const weft_hresp *r)
{
    json_t *j = it_json(r);
    const char *m = it_jstr(json_object_get(j, "error"), "message");
    char *s = strdup(m != NULL ? m : "");

    json_decref(j);
    return s;
}

/* An error answer with this status and any code. */
static void au_assert_error_any(const weft_hresp *r, int status)
{
    json_t *j;
    const char *c;

    ck_assert_msg(r->status == status, "expected status %d, got %d: %.300s",
                  status, r->status, r->body);
    j = it_json(r);
    c = it_jstr(json_object_get(j, "error"), "code");
    ck_assert_msg(c != NULL, "no error code in %.300s", r->body);
    it_assert_error(r, status, c);
    json_decref(j);
}

/* it_assert_error() plus "the message names `what`". */
static void au_assert_invalid(const weft_hresp *r, const char *what,
                              const char *sent)
{
    char *m;

    ck_assert_msg(r->status == 400, "sent %.300s: expected 400 invalid, got "
                                    "%d: %.300s",
                  sent, r->status, r->body);
    it_assert_error(r, 400, "invalid");
    m = au_err_message(r);
    ck_assert_msg(it_contains_ci(m, what),
                  "sent %.300s: the message \"%s\" does not name the field %s",
                  sent, m, what);
    free(m);
}

/* Retry-After: integer seconds, 1..max. */
static void au_assert_rate_limited(const weft_hresp *r, long max,
                                   const char *what)
{
    char buf[64];
    char *end;
    long v;

    ck_assert_msg(r->status == 429, "%s: expected 429, got %d: %.300s", what,
                  r->status, r->body);
    it_assert_error(r, 429, "rate_limited");
    ck_assert_msg(weft_hresp_header(r, "Retry-After", buf, sizeof(buf)) !=
                      NULL,
                  "%s: 429 without Retry-After:\n%s", what, r->head);
    errno = 0;
    v = strtol(buf, &end, 10);
    ck_assert_msg(end != buf && *end == '\0' && errno == 0 && v >= 1 &&
                      v <= max,
                  "%s: Retry-After \"%s\" is not an integer in 1..%ld", what,
                  buf, max);
}

/* ---- sessions ----------------------------------------------------------- */

struct au_sess {
    char *access, *refresh, *id;
    json_t *user;
};

static void au_sess_free(struct au_sess *s)
{
    free(s->access);
    free(s->refresh);
    free(s->id);
    json_decref(s->user);
    memset(s, 0, sizeof(*s));
}

/* The user id as a decimal string (the API may give a number or string). */
static char *au_id_of(json_t *user, const char *body)
{
    json_t *id = json_object_get(user, "id");

    if (json_is_integer(id)) {
        ck_assert_msg(json_integer_value(id) > 0, "user id <= 0: %.300s",
                      body);
        return it_strf("%" JSON_INTEGER_FORMAT, json_integer_value(id));
    }
    ck_assert_msg(json_is_string(id) && *json_string_value(id) != '\0',
                  "user without an id: %.300s", body);
    return strdup(json_string_value(id));
}

/* roles is exactly ["user"]. */
static int au_roles_user(json_t *user)
{
    json_t *roles = json_object_get(user, "roles");

    return json_is_array(roles) && json_array_size(roles) == 1 &&
           json_is_string(json_array_get(roles, 0)) &&
           strcmp(json_string_value(json_array_get(roles, 0)), "user") == 0;
}

static int au_has_role(json_t *user, const char *role)
{
    json_t *roles = json_object_get(user, "roles"), *e;
    size_t i;

    json_array_foreach(roles, i, e) {
        if (json_is_string(e) && strcmp(json_string_value(e), role) == 0)
            return 1;
    }
    return 0;
}

/* The user object of an answer has these fields (email NULL: not checked). */
static void au_check_user(json_t *u, const char *email, const char *username,
                          const char *display, const char *body)
{
    ck_assert_msg(json_is_object(u), "no user object: %.500s", body);
    if (email != NULL)
        ck_assert_msg(it_jstr(u, "email") != NULL &&
                          strcmp(it_jstr(u, "email"), email) == 0,
                      "user.email is not %s: %.500s", email, body);
    if (username != NULL)
        ck_assert_msg(it_jstr(u, "username") != NULL &&
                          strcmp(it_jstr(u, "username"), username) == 0,
                      "user.username is not %s: %.500s", username, body);
    if (display != NULL)
        ck_assert_msg(it_jstr(u, "display_name") != NULL &&
                          strcmp(it_jstr(u, "display_name"), display) == 0,
                      "user.display_name is not \"%s\" byte for byte: %.500s",
                      display, body);
    ck_assert_msg(json_is_array(json_object_get(u, "roles")),
                  "user without roles array: %.500s", body);
}

/* A 201/200 answer with user + tokens: fill `s`. */
static void au_take_tokens(const weft_hresp *r, long expires_in,
                           struct au_sess *s)
{
    json_t *j = it_json(r);
    const char *a = it_jstr(j, "access_token"), *rt = it_jstr(j, "refresh_token");
    json_t *ex = json_object_get(j, "expires_in");

    ck_assert_msg(a != NULL && strchr(a, '.') != NULL &&
                      strchr(strchr(a, '.') + 1, '.') != NULL,
                  "no JWT access_token: %.500s", r->body);
    ck_assert_msg(rt != NULL && *rt != '\0', "no refresh_token: %.500s",
                  r->body);
    ck_assert_msg(it_jstr(j, "token_type") != NULL &&
                      strcmp(it_jstr(j, "token_type"), "Bearer") == 0,
                  "token_type is not Bearer: %.500s", r->body);
    ck_assert_msg(json_is_integer(ex) && json_integer_value(ex) == expires_in,
                  "expires_in is not %ld: %.500s", expires_in, r->body);
    memset(s, 0, sizeof(*s));
    s->access = strdup(a);
    s->refresh = strdup(rt);
    s->user = json_incref(json_object_get(j, "user"));
    ck_assert_msg(json_is_object(s->user), "no user object: %.500s", r->body);
    s->id = au_id_of(s->user, r->body);
    json_decref(j);
}

/* POST /api/auth/register; asserts 201 and the whole answer. */
static void au_register(weft_harness *h, const char *email,
                        const char *username, const char *display,
                        const char *password, long expires_in,
                        struct au_sess *s)
{
    char *body = au_register_body(email, username, display, password);
    weft_hresp r;

    au_call(h, "POST", "/api/auth/register", NULL, body, &r);
    ck_assert_msg(r.status == 201, "register %s: expected 201, got %d: %.500s",
                  body, r.status, r.body);
    ck_assert_msg(it_header_has(&r, "Content-Type", "application/json"),
                  "register: no JSON Content-Type:\n%s", r.head);
    au_take_tokens(&r, expires_in, s);
    au_check_user(s->user, email, username, display, r.body);
    ck_assert_msg(au_roles_user(s->user), "roles is not [\"user\"]: %.500s",
                  r.body);
    weft_hresp_free(&r);
    free(body);
}

/* POST /api/auth/register; the answer for the caller to judge. */
static void au_register_try(weft_harness *h, const char *body, weft_hresp *r)
{
    au_call(h, "POST", "/api/auth/register", NULL, body, r);
}

static void au_login_try(weft_harness *h, const char *email,
                         const char *password, weft_hresp *r)
{
    char *body = au_obj("email", email, "password", password, NULL);

    au_call(h, "POST", "/api/auth/login", NULL, body, r);
    free(body);
}

/* Log in with Bearer tokens; asserts 200 and the shape. */
static void au_login(weft_harness *h, const char *email, const char *password,
                     long expires_in, struct au_sess *s)
{
    weft_hresp r;

    au_login_try(h, email, password, &r);
    ck_assert_msg(r.status == 200, "login %s: expected 200, got %d: %.500s",
                  email, r.status, r.body);
    au_take_tokens(&r, expires_in, s);
    au_check_user(s->user, NULL, NULL, NULL, r.body);
    weft_hresp_free(&r);
}

static void au_assert_bad_login(weft_harness *h, const char *email,
                                const char *password)
{
    weft_hresp r;

    au_login_try(h, email, password, &r);
    ck_assert_msg(r.status == 401, "login %s / %s: expected 401, got %d: "
                                   "%.300s",
                  email, password, r.status, r.body);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
}

static void au_refresh_try(weft_harness *h, const char *refresh, weft_hresp *r)
{
    char *body = au_obj("refresh_token", refresh, NULL);

    au_call(h, "POST", "/api/auth/refresh", NULL, body, r);
    free(body);
}

/* The status of GET /api/auth/me with this access token (NULL: none). */
static int au_me_status(weft_harness *h, const char *access)
{
    char *hdr = access != NULL ? au_bearer(access) : NULL;
    weft_hresp r;
    int st;

    au_call(h, "GET", "/api/auth/me", hdr, NULL, &r);
    st = r.status;
    if (st == 401)
        it_assert_error(&r, st, "unauthorized");
    weft_hresp_free(&r);
    free(hdr);
    return st;
}

/* GET /api/auth/me with a Bearer token (or header lines `hdr`): 200 and
 * the user (new reference). */
static json_t *au_me_hdr(weft_harness *h, const char *hdr)
{
    weft_hresp r;
    json_t *j, *u;

    au_call(h, "GET", "/api/auth/me", hdr, NULL, &r);
    ck_assert_msg(r.status == 200, "/me with %s: expected 200, got %d: %.300s",
                  hdr, r.status, r.body);
    j = it_json(&r);
    u = json_incref(json_object_get(j, "user"));
    ck_assert_msg(json_is_object(u), "/me without user: %.300s", r.body);
    json_decref(j);
    weft_hresp_free(&r);
    return u;
}

static json_t *au_me(weft_harness *h, const char *access)
{
    char *hdr = au_bearer(access);
    json_t *u = au_me_hdr(h, hdr);

    free(hdr);
    return u;
}

/* /me with `hdr` is 401 "unauthorized". */
static void au_me_refused(weft_harness *h, const char *hdr, const char *what)
{
    weft_hresp r;

    au_call(h, "GET", "/api/auth/me", hdr, NULL, &r);
    ck_assert_msg(r.status == 401, "/me with %s: expected 401, got %d: %.300s",
                  what, r.status, r.body);
    it_assert_error(&r, 401, "unauthorized");
    weft_hresp_free(&r);
}

/* ---- tokens by hand ----------------------------------------------------- */

static char *au_b64(const void *p, size_t n)
{
    size_t sz =
        sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(sz);

    ck_assert_ptr_nonnull(s);
    sodium_bin2base64(s, sz, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

/* HMAC of `input` under key; how: "HS256" or "HS512". Returns base64url. */
static char *au_mac(const unsigned char *key, size_t keylen, const char *input,
                    const char *how)
{
    unsigned char mac[crypto_auth_hmacsha512_BYTES];
    size_t maclen;

    if (strcmp(how, "HS512") == 0) {
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, key, keylen);
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)input,
                                      strlen(input));
        crypto_auth_hmacsha512_final(&st, mac);
        maclen = crypto_auth_hmacsha512_BYTES;
    } else {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, keylen);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)input,
                                      strlen(input));
        crypto_auth_hmacsha256_final(&st, mac);
        maclen = crypto_auth_hmacsha256_BYTES;
    }
    return au_b64(mac, maclen);
}

/* header.payload.signature; how: "HS256", "HS512" (HMAC under key) or
 * "none" (empty signature). */
static char *au_forge(const unsigned char *key, size_t keylen,
                      const char *header, const char *payload, const char *how)
{
    char *h = au_b64(header, strlen(header)),
         *p = au_b64(payload, strlen(payload)), *input, *sig, *tok;

    input = it_strf("%s.%s", h, p);
    sig = strcmp(how, "none") == 0 ? strdup("") : au_mac(key, keylen, input, how);
    tok = it_strf("%s.%s", input, sig);
    free(h);
    free(p);
    free(input);
    free(sig);
    return tok;
}

/* The payload of a token, parsed (new reference). */
static json_t *au_payload(const char *token)
{
    const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
    unsigned char buf[4096];
    size_t n = 0;
    json_t *j;
    json_error_t err;

    ck_assert_msg(a != NULL && b != NULL, "not a JWT: %s", token);
    ck_assert_msg(sodium_base642bin(buf, sizeof(buf), a + 1, (size_t)(b - a - 1),
                                    NULL, &n, NULL,
                                    sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                      0,
                  "payload is not base64url: %s", token);
    j = json_loadb((const char *)buf, n, 0, &err);
    ck_assert_msg(json_is_object(j), "payload is not a JSON object: %.*s",
                  (int)n, buf);
    return j;
}

/* The token's signature is HMAC-SHA256(key, header.payload): the tests
 * hold the very key weftd signs with. */
static void au_assert_signed_by(const char *token, const unsigned char *key,
                                size_t keylen)
{
    const char *dot = strrchr(token, '.');
    char *input = strndup(token, (size_t)(dot - token)), *sig;

    sig = au_mac(key, keylen, input, "HS256");
    ck_assert_msg(strcmp(sig, dot + 1) == 0,
                  "the access token is not HMAC-SHA256 under the configured "
                  "[auth] secret: %s",
                  token);
    free(sig);
    free(input);
}

/* A copy of `payload` with `key` set to `v` (stolen); v NULL deletes. */
static char *au_payload_with(json_t *payload, const char *key, json_t *v)
{
    json_t *c = json_deep_copy(payload);
    char *s;

    if (v != NULL)
        json_object_set_new(c, key, v);
    else
        json_object_del(c, key);
    s = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    return s;
}

/* ---- cookies ------------------------------------------------------------ */

/* The Set-Cookie header for `name`: its value and attributes (copies), or
 * 0 when there is none. With several, the last one counts. */
static int au_set_cookie(const weft_hresp *r, const char *name, char **value,
                         char **attrs)
{
    const char *line = r->head, *eol, *p, *eq, *semi;
    size_t nlen = strlen(name);
    int found = 0;

    for (; line != NULL && *line != '\0'; line = eol ? eol + 1 : NULL) {
        eol = strchr(line, '\n');
        if (strncasecmp(line, "Set-Cookie:", 11) != 0)
            continue;
        p = line + 11;
        while (*p == ' ' || *p == '\t')
            p++;
        eq = strchr(p, '=');
        if (eq == NULL || (size_t)(eq - p) != nlen ||
            strncmp(p, name, nlen) != 0)
            continue;
        {
            const char *end = eol != NULL ? eol : p + strlen(p);
            if (end > p && end[-1] == '\r')
                end--;
            semi = memchr(eq + 1, ';', (size_t)(end - (eq + 1)));
            if (found) {
                free(*value);
                free(*attrs);
            }
            *value = strndup(eq + 1, (size_t)((semi ? semi : end) - (eq + 1)));
            *attrs = semi ? strndup(semi + 1, (size_t)(end - semi - 1))
                          : strdup("");
            found = 1;
        }
    }
    return found;
}

/* Does the attribute list hold `attr` exactly (case-insensitive)? With a
 * trailing '=' in `attr`, only the name is compared (value ignored). */
static int au_attr(const char *attrs, const char *attr)
{
    char *copy = strdup(attrs), *save = NULL, *tok;
    size_t alen = strlen(attr);
    int prefix = alen > 0 && attr[alen - 1] == '=', hit = 0;

    for (tok = strtok_r(copy, ";", &save); tok != NULL;
         tok = strtok_r(NULL, ";", &save)) {
        char *e;
        while (*tok == ' ')
            tok++;
        e = tok + strlen(tok);
        while (e > tok && e[-1] == ' ')
            *--e = '\0';
        if (prefix ? strncasecmp(tok, attr, alen) == 0
                   : strcasecmp(tok, attr) == 0)
            hit = 1;
    }
    free(copy);
    return hit;
}

/* The value of attribute `name=` (e.g. "Max-Age="), a copy, or NULL. */
static char *au_attr_value(const char *attrs, const char *name)
{
    const char *p = attrs;
    size_t n = strlen(name);

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncasecmp(p, name, n) == 0) {
            const char *e = strchr(p, ';');
            return strndup(p + n, e ? (size_t)(e - p - n) : strlen(p + n));
        }
        p = strchr(p, ';');
    }
    return NULL;
}

/* The Set-Cookie for `name` deletes it (Max-Age=0 or an Expires in the
 * past). */
static void au_assert_cleared(const weft_hresp *r, const char *name)
{
    char *v = NULL, *a = NULL, *ma, *ex;
    int gone;

    ck_assert_msg(au_set_cookie(r, name, &v, &a),
                  "logout with cookies did not clear %s:\n%s", name, r->head);
    ma = au_attr_value(a, "Max-Age=");
    ex = au_attr_value(a, "Expires=");
    gone = (ma != NULL && atol(ma) <= 0) ||
           (ex != NULL && (strstr(ex, "1970") != NULL));
    ck_assert_msg(gone, "Set-Cookie for %s does not delete it: %s=%s;%s",
                  name, name, v, a);
    free(ma);
    free(ex);
    free(v);
    free(a);
}

/* ---- running weftd's command-line tools --------------------------------- */

/* Run argv with `input` on stdin (NULL: /dev/null); capture stdout/stderr.
 * Returns the waitpid status. */
static int au_run(char *const argv[], const char *input, char **out,
                  char **err)
{
    char ip[] = "/tmp/weft-it-in-XXXXXX", op[] = "/tmp/weft-it-out-XXXXXX",
         ep[] = "/tmp/weft-it-err-XXXXXX";
    int ifd = mkstemp(ip), ofd = mkstemp(op), efd = mkstemp(ep), st = -1;
    pid_t pid;

    ck_assert_msg(ifd >= 0 && ofd >= 0 && efd >= 0, "mkstemp: %s",
                  strerror(errno));
    unlink(ip);
    unlink(op);
    unlink(ep);
    if (input != NULL)
        ck_assert_int_eq(write(ifd, input, strlen(input)),
                         (ssize_t)strlen(input));
    ck_assert_int_eq(lseek(ifd, 0, SEEK_SET), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int nfd = open("/dev/null", O_RDONLY);
        if (nfd < 0 || dup2(input != NULL ? ifd : nfd, 0) < 0 ||
            dup2(ofd, 1) < 0 || dup2(efd, 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
        ;
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? ofd : efd;
        char **dst = i == 0 ? out : err;
        struct stat sb;
        char *buf;

        ck_assert_int_eq(fstat(fd, &sb), 0);
        buf = calloc(1, (size_t)sb.st_size + 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq(pread(fd, buf, (size_t)sb.st_size, 0),
                         (ssize_t)sb.st_size);
        if (dst != NULL)
            *dst = buf;
        else
            free(buf);
    }
    close(ifd);
    close(ofd);
    close(efd);
    return st;
}

/* weftd --config cfg <flag> [arg]: assert exit status 0. */
static void au_weftd_tool(const char *cfg, const char *flag, const char *arg,
                          const char *input)
{
    char *argv[6] = {(char *)it_weftd(), "--config", (char *)cfg,
                     (char *)flag, (char *)arg, NULL};
    char *out = NULL, *err = NULL;
    int st = au_run(argv, input, &out, &err);

    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "weftd --config %s %s %s: status %d (exit %d)\n"
                  "stdout:\n%.2000s\nstderr:\n%.4000s",
                  cfg, flag, arg ? arg : "", st,
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1, out, err);
    free(out);
    free(err);
}

/* The postmaster pid of the embedded cluster, or 0. */
static pid_t au_postmaster(const char *dir)
{
    char *path = it_strf("%s/data/pg/data/postmaster.pid", dir);
    FILE *f = fopen(path, "r");
    long pid = 0;

    free(path);
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* ======================================================================== */

START_TEST(register_validation)
{
    char *dir = au_tmpdir(), *body, *auth;
    weft_harness *h;
    struct au_sess s, t;
    weft_hresp r;
    json_t *u;
    char big[1100], name[40], email[300], disp[80];

    auth = it_strf("secret = %s\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);

    /* success: 201 and the whole answer; /me agrees */
    au_register(h, "alice@example.com", "alice", "Alice A.", "alicepass1",
                900, &s);
    u = au_me(h, s.access);
    au_check_user(u, "alice@example.com", "alice", "Alice A.", "/me");
    ck_assert_msg(au_roles_user(u), "/me roles is not [\"user\"]");
    {
        char *id = au_id_of(u, "/me");
        ck_assert_str_eq(id, s.id);
        free(id);
    }
    json_decref(u);

    /* email unique case-insensitively, username too */
    body = au_register_body("Alice@Example.com", "alice2", "A2", "alicepass2");
    au_register_try(h, body, &r);
    it_assert_error(&r, 409, "email_taken");
    weft_hresp_free(&r);
    free(body);
    body = au_register_body("alice@example.com", "alice3", "A3", "alicepass3");
    au_register_try(h, body, &r);
    it_assert_error(&r, 409, "email_taken");
    weft_hresp_free(&r);
    free(body);
    body = au_register_body("other@example.com", "ALICE", "A4", "alicepass4");
    au_register_try(h, body, &r);
    it_assert_error(&r, 409, "username_taken");
    weft_hresp_free(&r);
    free(body);

    /* each field's rules: 400 "invalid", the message names the field */
    {
        static const struct {
            const char *email, *username, *display, *password, *field;
        } bad[] = {
            {"no-at-sign.example.com", "v01", "V", "password1", "email"},
            {"a@b@example.com", "v02", "V", "password1", "email"},
            {"a@", "v03", "V", "password1", "email"},
            {"", "v04", "V", "password1", "email"},
            {"v05@example.com", "ab", "V", "password1", "username"},
            {"v06@example.com", "abcdefghijklmnopqrstuvwxyz0123456", "V",
             "password1", "username"},
            {"v07@example.com", "bad name", "V", "password1", "username"},
            {"v08@example.com", "bad/name", "V", "password1", "username"},
            /* a zero-width space hides in a name that looks like another */
            {"v09@example.com", "na\xe2\x80\x8bme", "V", "password1",
             "username"},
            {"v10@example.com", "bad'name", "V", "password1", "username"},
            {"v11@example.com", "v11", "", "password1", "display"},
            {"v12@example.com", "v12", "tab\there", "password1", "display"},
            {"v13@example.com", "v13", "line\nbreak", "password1", "display"},
            {"v14@example.com", "v14", "bell\x07", "password1", "display"},
            {"v15@example.com", "v15", "del\x7f", "password1", "display"},
            {"v16@example.com", "v16", "esc\x1b[31m", "password1", "display"},
            /* U+009B CSI, a C1 control character */
            {"v17@example.com", "v17", "c1\xc2\x9b" "31m", "password1",
             "display"},
            {"v18@example.com", "v18", "V", "short7!", "password"},
            {"v19@example.com", "v19", "V", "", "password"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            body = au_register_body(bad[i].email, bad[i].username,
                                    bad[i].display, bad[i].password);
            au_register_try(h, body, &r);
            au_assert_invalid(&r, bad[i].field, body);
            weft_hresp_free(&r);
            free(body);
        }
    }
    /* lengths at and beyond the limits */
    memset(email, 'e', 242);
    strcpy(email + 242, "@example.com"); /* 254 bytes: fine */
    ck_assert_uint_eq(strlen(email), 254);
    au_register(h, email, "len254", "L", "password1", 900, &t);
    au_sess_free(&t);
    memset(email, 'f', 243);
    strcpy(email + 243, "@example.com"); /* 255 bytes */
    body = au_register_body(email, "len255", "L", "password1");
    au_register_try(h, body, &r);
    au_assert_invalid(&r, "email", "a 255-byte email");
    weft_hresp_free(&r);
    free(body);
    au_register(h, "a@b", "abc", "x", "12345678", 900, &t); /* minima */
    au_sess_free(&t);
    memset(name, 'u', 32);
    name[32] = '\0';
    au_register(h, "u32@example.com", name, "U", "password1", 900, &t);
    au_sess_free(&t);
    au_register(h, "chars@example.com", "A.b-c_9", "U", "password1", 900, &t);
    au_sess_free(&t);
    disp[0] = '\0';
    for (int i = 0; i < 32; i++)
        strcat(disp, "\xc3\xa9"); /* 64 bytes of "é" */
    au_register(h, "d64@example.com", "d64", disp, "password1", 900, &t);
    au_sess_free(&t);
    strcat(disp, "x"); /* 65 bytes */
    body = au_register_body("d65@example.com", "d65", disp, "password1");
    au_register_try(h, body, &r);
    au_assert_invalid(&r, "display", "a 65-byte display_name");
    weft_hresp_free(&r);
    free(body);
    memset(big, 'p', 1024);
    big[1024] = '\0';
    au_register(h, "p1024@example.com", "p1024", "P", big, 900, &t);
    au_sess_free(&t);
    au_login(h, "p1024@example.com", big, 900, &t); /* it really is that one */
    au_sess_free(&t);
    big[1024] = 'p';
    big[1025] = '\0';
    body = au_register_body("p1025@example.com", "p1025", "P", big);
    au_register_try(h, body, &r);
    au_assert_invalid(&r, "password", "a 1025-byte password");
    weft_hresp_free(&r);
    free(body);

    /* missing fields and wrong types */
    {
        static const struct {
            const char *body, *field;
        } bad[] = {
            {"{\"username\":\"mf1\",\"display_name\":\"M\","
             "\"password\":\"password1\"}",
             "email"},
            {"{\"email\":\"m2@example.com\",\"display_name\":\"M\","
             "\"password\":\"password1\"}",
             "username"},
            {"{\"email\":\"m3@example.com\",\"username\":\"mf3\","
             "\"password\":\"password1\"}",
             "display"},
            {"{\"email\":\"m4@example.com\",\"username\":\"mf4\","
             "\"display_name\":\"M\"}",
             "password"},
            {"{\"email\":5,\"username\":\"mf5\",\"display_name\":\"M\","
             "\"password\":\"password1\"}",
             "email"},
            {"{\"email\":\"m6@example.com\",\"username\":[\"mf6\"],"
             "\"display_name\":\"M\",\"password\":\"password1\"}",
             "username"},
            {"{\"email\":\"m7@example.com\",\"username\":\"mf7\","
             "\"display_name\":null,\"password\":\"password1\"}",
             "display"},
            {"{\"email\":\"m8@example.com\",\"username\":\"mf8\","
             "\"display_name\":\"M\",\"password\":12345678}",
             "password"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            au_register_try(h, bad[i].body, &r);
            au_assert_invalid(&r, bad[i].field, bad[i].body);
            weft_hresp_free(&r);
        }
    }
    /* not JSON, not an object, invalid UTF-8: 400 (whatever the code) */
    {
        static const char *const bad[] = {
            "not json",
            "",
            "[\"email\"]",
            "{\"email\":\"u1@example.com\",\"username\":\"u1x\","
            "\"display_name\":\"bad \xff utf8\",\"password\":\"password1\"}",
            "{\"email\":\"u2@example.com\",\"username\":\"u2x\","
            "\"display_name\":\"overlong \xc0\xaf\",\"password\":\"password1\"}",
            "{\"email\":\"u3@example.com\",\"username\":\"u3x\","
            "\"display_name\":\"U\",\"password\":\"pass\xed\xa0\x80word\"}",
            "{\"email\":\"u4@example.com\",\"username\":\"u4x\","
            "\"display_name\":\"lone \\ud800\",\"password\":\"password1\"}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            au_register_try(h, bad[i], &r);
            ck_assert_msg(r.status == 400, "register with %s: expected 400, "
                                           "got %d: %.300s",
                          bad[i], r.status, r.body);
            au_assert_error_any(&r, 400);
            weft_hresp_free(&r);
        }
    }
    /* a client cannot give itself roles */
    au_register_try(h,
                    "{\"email\":\"sneaky@example.com\",\"username\":\"sneaky\","
                    "\"display_name\":\"S\",\"password\":\"password1\","
                    "\"roles\":[\"admin\"],\"role\":\"admin\","
                    "\"is_admin\":true}",
                    &r);
    ck_assert_msg(r.status == 201 || r.status == 400,
                  "register with roles: got %d: %.300s", r.status, r.body);
    if (r.status == 201) {
        au_take_tokens(&r, 900, &t);
        ck_assert_msg(au_roles_user(t.user), "a client chose its roles: %.300s",
                      r.body);
        u = au_payload(t.access);
        ck_assert_msg(!au_has_role(u, "admin"),
                      "the access token of a self-registered user has the "
                      "admin role");
        json_decref(u);
        u = au_me(h, t.access);
        ck_assert_msg(au_roles_user(u), "a client chose its roles (/me)");
        json_decref(u);
        au_sess_free(&t);
    } else {
        au_assert_error_any(&r, 400);
    }
    weft_hresp_free(&r);

    /* stored literally: SQL and markup come back byte for byte */
    {
        static const char disp_sql[] = "x'); DROP TABLE weft_users;--";
        static const char disp_mix[] =
            "Zo\xc3\xab \xf0\x9f\xa7\xb5 <b>\"q\"</b> \\ %s %n $1 ' OR '1'='1";
        static const char email_sql[] = "o'brien+x@example.com";
        static const char pw_sql[] = "' OR '1'='1' --";

        au_register(h, email_sql, "o.brien_-", disp_sql, pw_sql, 900, &t);
        u = au_me(h, t.access);
        au_check_user(u, email_sql, "o.brien_-", disp_sql, "/me");
        json_decref(u);
        au_sess_free(&t);
        au_login(h, email_sql, pw_sql, 900, &t);
        u = au_me(h, t.access);
        au_check_user(u, email_sql, "o.brien_-", disp_sql, "/me after login");
        json_decref(u);
        au_sess_free(&t);
        au_assert_bad_login(h, email_sql, "' OR 1=1 --");
        au_assert_bad_login(h, "' OR '1'='1", "' OR '1'='1");
        au_register(h, "mix@example.com", "mix", disp_mix, "password1", 900,
                    &t);
        u = au_me(h, t.access);
        au_check_user(u, "mix@example.com", "mix", disp_mix, "/me");
        json_decref(u);
        au_sess_free(&t);
        /* the table is still there, with alice in it */
        au_login(h, "alice@example.com", "alicepass1", 900, &t);
        au_sess_free(&t);
    }
    au_sess_free(&s);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

START_TEST(login_refresh_logout)
{
    char *dir = au_tmpdir(), *auth, *m1, *m2, *body;
    weft_harness *h;
    struct au_sess reg, l1, l2, l3, x;
    weft_hresp r;
    json_t *u;

    auth = it_strf("secret = %s\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "bob@example.com", "bob", "Bob", "bobpass123", 900, &reg);

    /* login: the same shape as register; a wrong password and an unknown
     * email look the same */
    au_login(h, "bob@example.com", "bobpass123", 900, &l1);
    au_check_user(l1.user, "bob@example.com", "bob", "Bob", "login");
    ck_assert_msg(au_roles_user(l1.user), "login: roles is not [\"user\"]");
    ck_assert_str_eq(l1.id, reg.id);
    ck_assert_str_ne(l1.refresh, reg.refresh);
    au_login_try(h, "bob@example.com", "wrongpass1", &r);
    it_assert_error(&r, 401, "invalid_credentials");
    m1 = au_err_message(&r);
    weft_hresp_free(&r);
    au_login_try(h, "nobody@example.com", "bobpass123", &r);
    it_assert_error(&r, 401, "invalid_credentials");
    m2 = au_err_message(&r);
    weft_hresp_free(&r);
    ck_assert_msg(strcmp(m1, m2) == 0,
                  "wrong password and unknown email differ: \"%s\" vs \"%s\"",
                  m1, m2);
    free(m1);
    free(m2);
    au_assert_bad_login(h, "bob@example.com", "");
    au_assert_bad_login(h, "bob@example.com", "bobpass12");
    au_assert_bad_login(h, "bob@example.com", "bobpass1234");

    /* /me */
    u = au_me(h, l1.access);
    au_check_user(u, "bob@example.com", "bob", "Bob", "/me");
    json_decref(u);
    au_me_refused(h, NULL, "no credentials");
    au_me_refused(h, "Authorization: Bearer\r\n", "an empty Bearer");
    au_me_refused(h, "Authorization: Bearer garbage\r\n", "a garbage token");
    au_me_refused(h, "Authorization: Bearer a.b.c\r\n", "a.b.c");
    {
        char *hdr = it_strf("Authorization: Basic %s\r\n", l1.access);
        au_me_refused(h, hdr, "the token under Basic");
        free(hdr);
        hdr = it_strf("Authorization: Bearer %s\r\n", l1.refresh);
        au_me_refused(h, hdr, "a refresh token as Bearer");
        free(hdr);
    }

    /* a second login: a separate family */
    au_login(h, "bob@example.com", "bobpass123", 900, &l2);

    /* rotation: new tokens; the old access token still works */
    au_refresh_try(h, l1.refresh, &r);
    ck_assert_msg(r.status == 200, "refresh: expected 200, got %d: %.300s",
                  r.status, r.body);
    {
        json_t *j = it_json(&r);
        const char *na = it_jstr(j, "access_token"),
                   *nr = it_jstr(j, "refresh_token");
        ck_assert_msg(na != NULL && nr != NULL,
                      "refresh without tokens: %.300s", r.body);
        ck_assert_str_ne(na, l1.access);
        ck_assert_str_ne(nr, l1.refresh);
        x.access = strdup(na);
        x.refresh = strdup(nr);
        x.id = NULL;
        x.user = NULL;
        json_decref(j);
    }
    weft_hresp_free(&r);
    u = au_me(h, x.access);
    {
        char *id = au_id_of(u, "/me");
        ck_assert_str_eq(id, reg.id);
        free(id);
    }
    json_decref(u);
    ck_assert_int_eq(au_me_status(h, l1.access), 200);
    /* rotate once more: x2 is the newest of the family */
    au_refresh_try(h, x.refresh, &r);
    ck_assert_msg(r.status == 200, "second refresh: got %d: %.300s", r.status,
                  r.body);
    {
        json_t *j = it_json(&r);
        char *newest = strdup(it_jstr(j, "refresh_token"));
        json_decref(j);
        weft_hresp_free(&r);

        /* reuse of a rotated token: token_reused, and the family is gone */
        au_refresh_try(h, l1.refresh, &r);
        ck_assert_msg(r.status == 401, "reused refresh token: expected 401, "
                                       "got %d: %.300s",
                      r.status, r.body);
        it_assert_error(&r, 401, "token_reused");
        weft_hresp_free(&r);
        au_refresh_try(h, newest, &r);
        ck_assert_msg(r.status == 401,
                      "the newest token of a family revoked for reuse: "
                      "expected 401, got %d: %.300s",
                      r.status, r.body);
        au_assert_error_any(&r, 401);
        weft_hresp_free(&r);
        au_refresh_try(h, x.refresh, &r);
        ck_assert_int_eq(r.status, 401);
        weft_hresp_free(&r);
        free(newest);
    }
    /* another login's family is untouched */
    au_refresh_try(h, l2.refresh, &r);
    ck_assert_msg(r.status == 200, "another login's refresh token after a "
                                   "reuse elsewhere: got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    /* and so is the registration's */
    au_refresh_try(h, reg.refresh, &r);
    ck_assert_msg(r.status == 200, "the registration's refresh token: got %d: "
                                   "%.300s",
                  r.status, r.body);
    weft_hresp_free(&r);

    /* garbage */
    {
        unsigned char rnd[32];
        char *unknown;
        static const char *const garbage[] = {
            "garbage", "x", "not-a-token-at-all-but-it-is-long-enough-to-be",
            "'; DELETE FROM weft_refresh_tokens;--",
        };

        for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
            au_refresh_try(h, garbage[i], &r);
            ck_assert_msg(r.status == 401, "refresh %s: expected 401, got %d",
                          garbage[i], r.status);
            it_assert_error(&r, 401, "invalid_token");
            weft_hresp_free(&r);
        }
        randombytes_buf(rnd, sizeof(rnd));
        unknown = au_b64(rnd, sizeof(rnd)); /* the right shape, unknown */
        au_refresh_try(h, unknown, &r);
        it_assert_error(&r, 401, "invalid_token");
        weft_hresp_free(&r);
        free(unknown);
    }

    /* logout: 204, and that token is done; the others are not */
    au_login(h, "bob@example.com", "bobpass123", 900, &l3);
    body = au_obj("refresh_token", l3.refresh, NULL);
    au_call(h, "POST", "/api/auth/logout", NULL, body, &r);
    ck_assert_msg(r.status == 204, "logout: expected 204, got %d: %.300s",
                  r.status, r.body);
    ck_assert_uint_eq(r.body_len, 0);
    weft_hresp_free(&r);
    free(body);
    au_refresh_try(h, l3.refresh, &r);
    ck_assert_msg(r.status == 401, "refresh after logout: expected 401, got "
                                   "%d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    au_sess_free(&l3);
    au_login(h, "bob@example.com", "bobpass123", 900, &l3);
    au_refresh_try(h, l3.refresh, &r);
    ck_assert_int_eq(r.status, 200);
    weft_hresp_free(&r);

    free(x.access);
    free(x.refresh);
    au_sess_free(&l3);
    au_sess_free(&reg);
    au_sess_free(&l1);
    au_sess_free(&l2);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

START_TEST(access_token_forgeries)
{
    const unsigned char *key = (const unsigned char *)AU_SECRET;
    size_t keylen = strlen(AU_SECRET);
    static const char HS256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *dir = au_tmpdir(), *auth, *tok, *pl, *hdr;
    weft_harness *h;
    struct au_sess s, other;
    json_t *p, *u;
    long long now = (long long)time(NULL);

    auth = it_strf("secret = %s\nissuer = %s\naudience = %s\n" AU_LOOSE,
                   AU_SECRET, AU_ISS, AU_AUD);
    h = au_start(dir, auth, NULL);
    au_register(h, "carol@example.com", "carol", "Carol", "carolpass1", 900,
                &s);
    au_register(h, "dan@example.com", "dan", "Dan", "danpass123", 900,
                &other);

    /* what weftd issues: HS256 under the configured secret, our claims */
    au_assert_signed_by(s.access, key, keylen);
    p = au_payload(s.access);
    ck_assert_msg(json_is_string(json_object_get(p, "sub")) &&
                      strcmp(it_jstr(p, "sub"), s.id) == 0,
                  "sub is not the user id \"%s\" as a string", s.id);
    ck_assert_msg(it_jstr(p, "iss") && strcmp(it_jstr(p, "iss"), AU_ISS) == 0,
                  "iss is not the configured issuer");
    ck_assert_msg(it_jstr(p, "aud") && strcmp(it_jstr(p, "aud"), AU_AUD) == 0,
                  "aud is not the configured audience");
    ck_assert_msg(au_roles_user(p), "token roles is not [\"user\"]");
    ck_assert_msg(json_integer_value(json_object_get(p, "exp")) -
                          json_integer_value(json_object_get(p, "iat")) ==
                      900,
                  "exp - iat is not 900");
    ck_assert_msg(json_integer_value(json_object_get(p, "iat")) >= now - 60 &&
                      json_integer_value(json_object_get(p, "iat")) <=
                          now + 60,
                  "iat is not now");
    ck_assert_msg(json_is_integer(json_object_get(p, "nbf")), "no nbf");
    ck_assert_msg(it_jstr(p, "jti") && strlen(it_jstr(p, "jti")) == 32 &&
                      strspn(it_jstr(p, "jti"), "0123456789abcdef") == 32,
                  "jti is not 32 hex digits");
    ck_assert_int_eq(au_me_status(h, s.access), 200);

    /* control: the same claims, serialized and signed here, are accepted
     * (so the refusals below are about what was changed) */
    pl = json_dumps(p, JSON_COMPACT);
    tok = au_forge(key, keylen, HS256, pl, "HS256");
    ck_assert_msg(au_me_status(h, tok) == 200,
                  "a token with weftd's own claims, signed here with the "
                  "configured secret, was refused: the forgeries below "
                  "would prove nothing");
    free(tok);

    /* alg none, with and without a signature */
    tok = au_forge(key, keylen, "{\"alg\":\"none\",\"typ\":\"JWT\"}", pl,
                   "none");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "alg none");
    free(hdr);
    free(tok);
    tok = au_forge(key, keylen, "{\"alg\":\"none\",\"typ\":\"JWT\"}", pl,
                   "HS256");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "alg none with an HS256 signature");
    free(hdr);
    free(tok);
    tok = au_forge(key, keylen, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pl,
                   "none");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "HS256 without a signature");
    free(hdr);
    free(tok);
    tok = au_forge(key, keylen, "{\"typ\":\"JWT\"}", pl, "HS256");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "no alg");
    free(hdr);
    free(tok);
    /* HS512 under the right key */
    tok = au_forge(key, keylen, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", pl,
                   "HS512");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "HS512 under the configured secret");
    free(hdr);
    free(tok);
    tok = au_forge(key, keylen, "{\"alg\":\"HS384\",\"typ\":\"JWT\"}", pl,
                   "HS256");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "alg HS384 with an HS256 signature");
    free(hdr);
    free(tok);
    /* HS256 under another key */
    tok = au_forge((const unsigned char *)"another-secret-of-at-least-32-bytes!",
                   36, HS256, pl, "HS256");
    hdr = au_bearer(tok);
    au_me_refused(h, hdr, "HS256 under another key");
    free(hdr);
    free(tok);
    free(pl);

    /* tampered: another subject under the original signature; a changed
     * signature byte; a truncated token */
    {
        const char *d1 = strchr(s.access, '.'), *d2 = strrchr(s.access, '.');
        char *hd = strndup(s.access, (size_t)(d1 - s.access)), *p64, *t2;

        pl = au_payload_with(p, "sub", json_string(other.id));
        p64 = au_b64(pl, strlen(pl));
        t2 = it_strf("%s.%s%s", hd, p64, d2);
        hdr = au_bearer(t2);
        au_me_refused(h, hdr, "another sub under the original signature");
        free(hdr);
        free(t2);
        free(p64);
        free(pl);
        free(hd);

        t2 = strdup(s.access);
        {
            char *c = strrchr(t2, '.') + 10;
            *c = *c == 'A' ? 'B' : 'A';
        }
        hdr = au_bearer(t2);
        au_me_refused(h, hdr, "one signature character changed");
        free(hdr);
        free(t2);

        t2 = strndup(s.access, (size_t)(d2 - s.access));
        hdr = au_bearer(t2);
        au_me_refused(h, hdr, "header.payload without the signature part");
        free(hdr);
        free(t2);

        t2 = it_strf("%s.", s.access);
        hdr = au_bearer(t2);
        au_me_refused(h, hdr, "a fourth segment");
        free(hdr);
        free(t2);
    }

    /* correctly signed, but a claim is wrong */
    {
        struct {
            const char *what, *key;
            json_t *v;
        } bad[] = {
            {"an expired token", "exp", json_integer(now - 3600)},
            {"a token valid only in an hour", "nbf", json_integer(now + 3600)},
            {"another audience", "aud", json_string("someone-else")},
            {"the default audience", "aud", json_string("weft")},
            {"another issuer", "iss", json_string("https://evil.example")},
            {"the default issuer", "iss", json_string("weft")},
            {"no exp", "exp", NULL},
            {"sub as a number", "sub", json_integer(atoll(s.id))},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            json_t *q = json_deep_copy(p);

            if (strcmp(bad[i].key, "exp") == 0 && bad[i].v != NULL) {
                /* a consistent past: issued two hours ago */
                json_object_set_new(q, "iat", json_integer(now - 7200));
                json_object_set_new(q, "nbf", json_integer(now - 7200));
            }
            if (strcmp(bad[i].key, "nbf") == 0)
                json_object_set_new(q, "exp", json_integer(now + 7200));
            pl = au_payload_with(q, bad[i].key, bad[i].v);
            tok = au_forge(key, keylen, HS256, pl, "HS256");
            hdr = au_bearer(tok);
            au_me_refused(h, hdr, bad[i].what);
            free(hdr);
            free(tok);
            free(pl);
            json_decref(q);
        }
    }
    /* the issuer and audience as issued are the configured ones, and the
     * token of the other user is still that user's */
    u = au_me(h, other.access);
    au_check_user(u, "dan@example.com", "dan", "Dan", "/me");
    json_decref(u);

    json_decref(p);
    au_sess_free(&s);
    au_sess_free(&other);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

START_TEST(token_expiry)
{
    char *dir = au_tmpdir(), *auth;
    weft_harness *h;
    struct au_sess reg, lg;
    weft_hresp r;
    json_t *j, *p;
    long long t_login;

    /* refresh_ttl can be no shorter than a minute */
    auth = it_strf("secret = %s\naccess_ttl = 2s\nrefresh_ttl = 1m\n" AU_LOOSE,
                   AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "erin@example.com", "erin", "Erin", "erinpass1", 2, &reg);
    t_login = it_now_ms();
    au_login(h, "erin@example.com", "erinpass1", 2, &lg);
    p = au_payload(reg.access);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "exp")) -
                         json_integer_value(json_object_get(p, "iat")),
                     2);
    json_decref(p);
    ck_assert_int_eq(au_me_status(h, reg.access), 200);
    ck_assert_int_eq(au_me_status(h, lg.access), 200);
    it_sleep_ms(3000);
    ck_assert_msg(au_me_status(h, reg.access) == 401,
                  "an access token with access_ttl = 2s still works after 3 s");
    ck_assert_int_eq(au_me_status(h, lg.access), 401);
    /* the refresh token is still good and gives a working access token */
    au_refresh_try(h, reg.refresh, &r);
    ck_assert_msg(r.status == 200, "refresh at 3 s of 60: got %d: %.300s",
                  r.status, r.body);
    j = it_json(&r);
    ck_assert_int_eq(au_me_status(h, it_jstr(j, "access_token")), 200);
    json_decref(j);
    weft_hresp_free(&r);
    /* a minute and a bit after the login: its refresh token has expired */
    it_sleep_ms(t_login + 62000 - it_now_ms());
    au_refresh_try(h, lg.refresh, &r);
    ck_assert_msg(r.status == 401, "refresh token used after refresh_ttl: "
                                   "expected 401, got %d: %.300s",
                  r.status, r.body);
    au_assert_error_any(&r, 401);
    weft_hresp_free(&r);
    au_sess_free(&reg);
    au_sess_free(&lg);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

/* Cookie login; fills the three cookie values, checks their attributes. */
static void au_cookie_login(weft_harness *h, const char *email,
                            const char *password, int secure, char **access,
                            char **refresh, char **csrf)
{
    char *body = it_strf("{\"email\":\"%s\",\"password\":\"%s\","
                         "\"session\":\"cookie\"}",
                         email, password);
    char *attrs = NULL;
    weft_hresp r;
    json_t *j;

    au_call(h, "POST", "/api/auth/login", NULL, body, &r);
    ck_assert_msg(r.status == 200, "cookie login: expected 200, got %d: "
                                   "%.300s",
                  r.status, r.body);
    j = it_json(&r);
    ck_assert_msg(json_is_object(json_object_get(j, "user")),
                  "cookie login without user: %.300s", r.body);
    ck_assert_msg(it_jstr(j, "csrf_token") && *it_jstr(j, "csrf_token"),
                  "cookie login without csrf_token: %.300s", r.body);
    ck_assert_msg(json_object_get(j, "access_token") == NULL &&
                      json_object_get(j, "refresh_token") == NULL,
                  "a cookie login put tokens in the body: %.300s", r.body);
    ck_assert_msg(strstr(r.body, "eyJ") == NULL,
                  "a JWT in the body of a cookie login: %.300s", r.body);

    ck_assert_msg(au_set_cookie(&r, "weft_access", access, &attrs),
                  "no weft_access cookie:\n%s", r.head);
    ck_assert_msg(**access != '\0', "empty weft_access");
    ck_assert_msg(au_attr(attrs, "HttpOnly") && au_attr(attrs, "SameSite=Strict") &&
                      au_attr(attrs, "Path=/"),
                  "weft_access attributes: %s", attrs);
    ck_assert_msg(au_attr(attrs, "Secure") == secure,
                  "weft_access Secure is %d, cookie_secure %d: %s",
                  au_attr(attrs, "Secure"), secure, attrs);
    free(attrs);
    ck_assert_msg(au_set_cookie(&r, "weft_refresh", refresh, &attrs),
                  "no weft_refresh cookie:\n%s", r.head);
    ck_assert_msg(**refresh != '\0', "empty weft_refresh");
    ck_assert_msg(au_attr(attrs, "HttpOnly") && au_attr(attrs, "SameSite=Strict") &&
                      au_attr(attrs, "Path=/api/auth"),
                  "weft_refresh attributes: %s", attrs);
    ck_assert_msg(au_attr(attrs, "Secure") == secure,
                  "weft_refresh Secure is %d, cookie_secure %d: %s",
                  au_attr(attrs, "Secure"), secure, attrs);
    free(attrs);
    ck_assert_msg(au_set_cookie(&r, "weft_csrf", csrf, &attrs),
                  "no weft_csrf cookie:\n%s", r.head);
    ck_assert_msg(!au_attr(attrs, "HttpOnly") &&
                      au_attr(attrs, "SameSite=Strict") && au_attr(attrs, "Path=/"),
                  "weft_csrf attributes (must be readable by scripts): %s",
                  attrs);
    ck_assert_msg(au_attr(attrs, "Secure") == secure,
                  "weft_csrf Secure is %d, cookie_secure %d: %s",
                  au_attr(attrs, "Secure"), secure, attrs);
    ck_assert_msg(strcmp(*csrf, it_jstr(j, "csrf_token")) == 0,
                  "weft_csrf cookie \"%s\" differs from csrf_token \"%s\"",
                  *csrf, it_jstr(j, "csrf_token"));
    free(attrs);
    json_decref(j);
    weft_hresp_free(&r);
    free(body);
}

START_TEST(cookie_session_and_csrf)
{
    char *dir = au_tmpdir(), *auth, *ca, *cr, *cc, *cookies, *hdr;
    weft_harness *h;
    struct au_sess s;
    weft_hresp r;
    json_t *u;
    static const char pw_body[] =
        "{\"current_password\":\"fionapass1\",\"new_password\":\"fionapass2\"}";
    static const char pw_wrong[] =
        "{\"current_password\":\"not-hers-1\",\"new_password\":\"fionapass3\"}";

    auth = it_strf("secret = %s\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "fiona@example.com", "fiona", "Fiona", "fionapass1", 900,
                &s);
    au_cookie_login(h, "fiona@example.com", "fionapass1", 0, &ca, &cr, &cc);

    /* the access cookie authenticates */
    hdr = it_strf("Cookie: weft_access=%s\r\n", ca);
    u = au_me_hdr(h, hdr);
    au_check_user(u, "fiona@example.com", "fiona", "Fiona", "/me (cookie)");
    json_decref(u);
    free(hdr);
    hdr = it_strf("Cookie: weft_csrf=%s; weft_access=%s; weft_refresh=%s\r\n",
                  cc, ca, cr);
    u = au_me_hdr(h, hdr);
    json_decref(u);
    free(hdr);
    au_me_refused(h, "Cookie: weft_access=garbage\r\n", "a garbage cookie");
    hdr = it_strf("Cookie: weft_csrf=%s; weft_refresh=%s\r\n", cc, cr);
    au_me_refused(h, hdr, "cookies without weft_access");
    free(hdr);

    /* a state change on cookies needs the CSRF header */
    cookies = it_strf("Cookie: weft_access=%s; weft_refresh=%s; weft_csrf=%s\r\n",
                      ca, cr, cc);
    au_call(h, "POST", "/api/auth/password", cookies, pw_body, &r);
    ck_assert_msg(r.status == 403, "cookie password change without "
                                   "X-CSRF-Token: expected 403, got %d: %.300s",
                  r.status, r.body);
    it_assert_error(&r, 403, "csrf");
    weft_hresp_free(&r);
    hdr = it_strf("%sX-CSRF-Token: %s\r\n", cookies, "0123456789abcdef");
    au_call(h, "POST", "/api/auth/password", hdr, pw_body, &r);
    it_assert_error(&r, 403, "csrf");
    weft_hresp_free(&r);
    free(hdr);
    hdr = it_strf("%sX-CSRF-Token: \r\n", cookies);
    au_call(h, "POST", "/api/auth/password", hdr, pw_body, &r);
    it_assert_error(&r, 403, "csrf");
    weft_hresp_free(&r);
    free(hdr);
    /* the header alone, with the cookie missing, is no proof either */
    hdr = it_strf("Cookie: weft_access=%s\r\nX-CSRF-Token: %s\r\n", ca, cc);
    au_call(h, "POST", "/api/auth/password", hdr, pw_body, &r);
    it_assert_error(&r, 403, "csrf");
    weft_hresp_free(&r);
    free(hdr);
    /* nothing changed so far */
    au_assert_bad_login(h, "fiona@example.com", "fionapass2");
    /* with the header it proceeds: a wrong current password is judged... */
    hdr = it_strf("%sX-CSRF-Token: %s\r\n", cookies, cc);
    au_call(h, "POST", "/api/auth/password", hdr, pw_wrong, &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    /* ...and the right one changes it */
    au_call(h, "POST", "/api/auth/password", hdr, pw_body, &r);
    ck_assert_msg(r.status == 204, "cookie password change with the CSRF "
                                   "header: expected 204, got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(hdr);
    free(cookies);
    au_assert_bad_login(h, "fiona@example.com", "fionapass1");
    free(ca);
    free(cr);
    free(cc);

    /* Bearer needs no CSRF header */
    au_sess_free(&s);
    au_login(h, "fiona@example.com", "fionapass2", 900, &s);
    hdr = au_bearer(s.access);
    au_call(h, "POST", "/api/auth/password", hdr,
            "{\"current_password\":\"fionapass2\","
            "\"new_password\":\"fionapass3\"}",
            &r);
    ck_assert_msg(r.status == 204, "Bearer password change without a CSRF "
                                   "header: expected 204, got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(hdr);

    /* logout with cookies clears them, and the refresh token is done */
    au_cookie_login(h, "fiona@example.com", "fionapass3", 0, &ca, &cr, &cc);
    hdr = it_strf("Cookie: weft_access=%s; weft_refresh=%s; weft_csrf=%s\r\n"
                  "X-CSRF-Token: %s\r\n",
                  ca, cr, cc, cc);
    au_call(h, "POST", "/api/auth/logout", hdr, "{}", &r);
    ck_assert_msg(r.status == 204, "cookie logout: expected 204, got %d: "
                                   "%.300s",
                  r.status, r.body);
    au_assert_cleared(&r, "weft_access");
    au_assert_cleared(&r, "weft_refresh");
    au_assert_cleared(&r, "weft_csrf");
    weft_hresp_free(&r);
    free(hdr);
    au_refresh_try(h, cr, &r);
    ck_assert_msg(r.status == 401, "the weft_refresh token after a cookie "
                                   "logout: expected 401, got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(ca);
    free(cr);
    free(cc);

    au_sess_free(&s);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

START_TEST(password_change)
{
    char *dir = au_tmpdir(), *auth, *hdr, *ca, *cr, *cc;
    weft_harness *h;
    struct au_sess reg, l1, l2;
    weft_hresp r;

    /* also: cookie_secure = true marks every cookie Secure */
    auth = it_strf("secret = %s\ncookie_secure = true\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "gus@example.com", "gus", "Gus", "guspass123", 900, &reg);
    au_login(h, "gus@example.com", "guspass123", 900, &l1);
    au_cookie_login(h, "gus@example.com", "guspass123", 1, &ca, &cr, &cc);

    au_call(h, "POST", "/api/auth/password", NULL,
            "{\"current_password\":\"guspass123\","
            "\"new_password\":\"guspass456\"}",
            &r);
    it_assert_error(&r, 401, "unauthorized");
    weft_hresp_free(&r);
    hdr = au_bearer(l1.access);
    au_call(h, "POST", "/api/auth/password", hdr,
            "{\"current_password\":\"guspass999\","
            "\"new_password\":\"guspass456\"}",
            &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    au_call(h, "POST", "/api/auth/password", hdr,
            "{\"current_password\":\"guspass123\",\"new_password\":\"short\"}",
            &r);
    au_assert_invalid(&r, "password", "a 5-byte new password");
    weft_hresp_free(&r);
    au_call(h, "POST", "/api/auth/password", hdr,
            "{\"current_password\":\"guspass123\","
            "\"new_password\":\"guspass456\"}",
            &r);
    ck_assert_msg(r.status == 204, "password change: expected 204, got %d: "
                                   "%.300s",
                  r.status, r.body);
    ck_assert_uint_eq(r.body_len, 0);
    weft_hresp_free(&r);
    free(hdr);

    au_assert_bad_login(h, "gus@example.com", "guspass123");
    au_login(h, "gus@example.com", "guspass456", 900, &l2);
    /* every refresh token from before is revoked */
    au_refresh_try(h, reg.refresh, &r);
    ck_assert_msg(r.status == 401, "the registration's refresh token after a "
                                   "password change: got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    au_refresh_try(h, l1.refresh, &r);
    ck_assert_msg(r.status == 401, "the changing session's refresh token after "
                                   "a password change: got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    au_refresh_try(h, cr, &r);
    ck_assert_msg(r.status == 401, "a cookie session's refresh token after a "
                                   "password change: got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    /* the new session is fine */
    au_refresh_try(h, l2.refresh, &r);
    ck_assert_msg(r.status == 200, "a refresh token issued after the change: "
                                   "got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    ck_assert_int_eq(au_me_status(h, l2.access), 200);

    free(ca);
    free(cr);
    free(cc);
    au_sess_free(&reg);
    au_sess_free(&l1);
    au_sess_free(&l2);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

START_TEST(rate_limits)
{
    /* a hex secret this time (32 bytes), and ttl suffixes h and d */
    static const char hex[] =
        "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    unsigned char key[32];
    size_t keylen = 0;
    char *dir = au_tmpdir(), *auth, *body, *cur;
    weft_harness *h;
    struct au_sess u1, u2, u3, l;
    weft_hresp r;
    json_t *p;

    ck_assert_int_eq(sodium_hex2bin(key, sizeof(key), hex, strlen(hex), NULL,
                                    &keylen, NULL),
                     0);
    ck_assert_uint_eq(keylen, 32);
    auth = it_strf("secret = hex:%s\naccess_ttl = 1h\nrefresh_ttl = 30d\n"
                   "login_rate = 3\nlogin_account_rate = 2\n"
                   "register_rate = 2\nrefresh_rate = 3\n",
                   hex);
    h = au_start(dir, auth, NULL);

    /* register: 2 per minute per address */
    au_register(h, "rl1@example.com", "rl1", "R1", "rl1pass12", 3600, &u1);
    au_assert_signed_by(u1.access, key, keylen);
    p = au_payload(u1.access);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "exp")) -
                         json_integer_value(json_object_get(p, "iat")),
                     3600);
    json_decref(p);
    au_register(h, "rl2@example.com", "rl2", "R2", "rl2pass12", 3600, &u2);
    body = au_register_body("rl3@example.com", "rl3", "R3", "rl3pass12");
    au_register_try(h, body, &r);
    au_assert_rate_limited(&r, 60, "3rd registration from one address");
    weft_hresp_free(&r);
    /* another address is not affected, and the refused one was not made */
    au_call_from(h, "127.0.0.2", "POST", "/api/auth/register", NULL, body, &r);
    ck_assert_msg(r.status == 201, "registration from another address: got %d: "
                                   "%.300s",
                  r.status, r.body);
    au_take_tokens(&r, 3600, &u3);
    weft_hresp_free(&r);
    free(body);

    /* login: 3 per minute per address, whatever the outcome */
    for (int i = 1; i <= 3; i++) {
        char *e = it_strf("nobody%d@example.com", i);
        au_assert_bad_login(h, e, "whatever1");
        free(e);
    }
    au_login_try(h, "rl1@example.com", "rl1pass12", &r);
    au_assert_rate_limited(&r, 60, "4th login from one address");
    ck_assert_ptr_null(strstr(r.body, "access_token"));
    weft_hresp_free(&r);
    body = au_obj("email", "rl1@example.com", "password", "rl1pass12", NULL);
    au_call_from(h, "127.0.0.3", "POST", "/api/auth/login", NULL, body, &r);
    ck_assert_msg(r.status == 200, "login from another address: got %d: "
                                   "%.300s",
                  r.status, r.body);
    au_take_tokens(&r, 3600, &l);
    weft_hresp_free(&r);
    free(body);

    /* login: 2 per minute per (account, address); the account alone is
     * only slowed down, so its owner elsewhere still gets in */
    body = au_obj("email", "rl2@example.com", "password", "wrongpass1", NULL);
    au_call_from(h, "127.0.0.10", "POST", "/api/auth/login", NULL, body, &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    au_call_from(h, "127.0.0.10", "POST", "/api/auth/login", NULL, body, &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    au_call_from(h, "127.0.0.10", "POST", "/api/auth/login", NULL, body, &r);
    au_assert_rate_limited(&r, 60, "3rd login on one account, one address");
    weft_hresp_free(&r);
    free(body);
    body = au_obj("email", "rl2@example.com", "password", "rl2pass12", NULL);
    au_call_from(h, "127.0.0.12", "POST", "/api/auth/login", NULL, body, &r);
    ck_assert_msg(r.status == 200, "the account's owner from another address: "
                                   "got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(body);
    /* other accounts are not affected */
    body = au_obj("email", "rl3@example.com", "password", "rl3pass12", NULL);
    au_call_from(h, "127.0.0.13", "POST", "/api/auth/login", NULL, body, &r);
    ck_assert_msg(r.status == 200, "login on another account: got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(body);
    body = au_obj("email", "nobody9@example.com", "password", "whatever1",
                  NULL);
    au_call_from(h, "127.0.0.14", "POST", "/api/auth/login", NULL, body, &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    free(body);

    /* refresh: 3 per minute per address; a refused refresh uses nothing up */
    cur = strdup(u1.refresh);
    for (int i = 0; i < 3; i++) {
        json_t *j;
        au_refresh_try(h, cur, &r);
        ck_assert_msg(r.status == 200, "refresh %d: got %d: %.300s", i + 1,
                      r.status, r.body);
        j = it_json(&r);
        free(cur);
        cur = strdup(it_jstr(j, "refresh_token"));
        json_decref(j);
        weft_hresp_free(&r);
    }
    au_refresh_try(h, cur, &r);
    au_assert_rate_limited(&r, 60, "4th refresh from one address");
    weft_hresp_free(&r);
    body = au_obj("refresh_token", cur, NULL);
    au_call_from(h, "127.0.0.4", "POST", "/api/auth/refresh", NULL, body, &r);
    ck_assert_msg(r.status == 200, "the token whose refresh was rate limited, "
                                   "from another address: got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(body);
    free(cur);
    /* limits are about the auth endpoints only */
    ck_assert_int_eq(au_me_status(h, l.access), 200);

    au_sess_free(&u1);
    au_sess_free(&u2);
    au_sess_free(&u3);
    au_sess_free(&l);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

/* The admin routes that exist. */
static const struct {
    const char *method, *path;
} au_admin_routes[] = {
    {"POST", "/admin/plugins/hello/reload"},
};

static int au_admin_status(weft_harness *h, const char *method,
                           const char *path, const char *hdr, weft_hresp *r)
{
    au_call(h, method, path, hdr, NULL, r);
    return r->status;
}

START_TEST(admin_routes_and_create_admin)
{
    char *dir = au_tmpdir(), *hello = it_hello_section(IT_HELLO_SO, NULL),
         *cli = it_strf("%s/cli.ini", dir), *hdr, *path;
    weft_harness *h;
    struct au_sess user, promo, root;
    weft_hresp r;
    struct stat sb;
    json_t *u;

    /* no secret configured: generated into data_dir/auth.secret */
    h = au_start(dir, AU_LOOSE, hello);
    path = it_strf("%s/data/auth.secret", dir);
    ck_assert_msg(lstat(path, &sb) == 0, "%s: %s", path, strerror(errno));
    ck_assert_msg(S_ISREG(sb.st_mode) && (sb.st_mode & 0777) == 0600,
                  "%s: mode %o, not a 0600 file", path,
                  (unsigned)sb.st_mode);
    ck_assert_int_ge(sb.st_size, 32);
    free(path);

    au_register(h, "user@example.com", "plainuser", "User", "userpass1", 900,
                &user);
    au_register(h, "promo@example.com", "promo", "Promo", "promopass1", 900,
                &promo);
    for (size_t i = 0; i < sizeof(au_admin_routes) / sizeof(au_admin_routes[0]);
         i++) {
        const char *m = au_admin_routes[i].method, *p = au_admin_routes[i].path;

        au_admin_status(h, m, p, NULL, &r);
        ck_assert_msg(r.status == 401, "%s %s without credentials: expected "
                                       "401, got %d: %.300s",
                      m, p, r.status, r.body);
        it_assert_error(&r, 401, "unauthorized");
        weft_hresp_free(&r);
        au_admin_status(h, m, p, "Authorization: Bearer garbage\r\n", &r);
        ck_assert_msg(r.status == 401, "%s %s with a garbage Bearer: expected "
                                       "401, got %d: %.300s",
                      m, p, r.status, r.body);
        weft_hresp_free(&r);
        hdr = au_bearer(user.access);
        au_admin_status(h, m, p, hdr, &r);
        ck_assert_msg(r.status == 403, "%s %s as a signed-in user: expected "
                                       "403, got %d: %.300s",
                      m, p, r.status, r.body);
        it_assert_error(&r, 403, "forbidden");
        weft_hresp_free(&r);
        free(hdr);
        hdr = it_strf("Cookie: weft_access=%s\r\n", user.access);
        au_admin_status(h, m, p, hdr, &r);
        ck_assert_msg(r.status == 403 || r.status == 401,
                      "%s %s as a user by cookie: expected 403 (or 401), got "
                      "%d: %.300s",
                      m, p, r.status, r.body);
        weft_hresp_free(&r);
        free(hdr);
        ck_assert_int_eq(weft_harness_admin(h, m, p, &r), 0);
        ck_assert_msg(r.status == 200, "%s %s with the [admin] token: "
                                       "expected 200, got %d: %.300s",
                      m, p, r.status, r.body);
        weft_hresp_free(&r);
    }
    /* the same config for the command-line tools; weftd must be stopped */
    it_copy_file(weft_harness_config_path(h), cli);
    it_stop_ok(h);
    ck_assert_int_eq(au_postmaster(dir), 0);

    /* a new admin (password from the environment) ... */
    ck_assert_int_eq(setenv("WEFT_ADMIN_PASSWORD", "rootpass-1234", 1), 0);
    au_weftd_tool(cli, "--create-admin", "root@example.com", NULL);
    ck_assert_int_eq(unsetenv("WEFT_ADMIN_PASSWORD"), 0);
    ck_assert_msg(au_postmaster(dir) == 0,
                  "--create-admin left the cluster running");
    /* ... and a promoted user (password from stdin, its own) */
    au_weftd_tool(cli, "--create-admin", "promo@example.com",
                  "promopass1\nignored second line\n");
    ck_assert_msg(au_postmaster(dir) == 0,
                  "--create-admin left the cluster running");

    h = au_start(dir, AU_LOOSE, hello);
    /* the generated secret survived the restart: old tokens still work */
    u = au_me(h, user.access);
    json_decref(u);
    au_login(h, "root@example.com", "rootpass-1234", 900, &root);
    ck_assert_msg(au_has_role(root.user, "admin"),
                  "--create-admin: the account has no admin role");
    au_sess_free(&promo);
    au_login(h, "promo@example.com", "promopass1", 900, &promo);
    ck_assert_msg(au_has_role(promo.user, "admin"),
                  "--create-admin on an existing account did not promote it");
    au_check_user(promo.user, "promo@example.com", "promo", "Promo",
                  "promoted");
    for (size_t i = 0; i < sizeof(au_admin_routes) / sizeof(au_admin_routes[0]);
         i++) {
        const char *m = au_admin_routes[i].method, *p = au_admin_routes[i].path;
        struct au_sess *who[] = {&root, &promo};

        for (int k = 0; k < 2; k++) {
            hdr = au_bearer(who[k]->access);
            au_admin_status(h, m, p, hdr, &r);
            ck_assert_msg(r.status == 200, "%s %s as an admin account: "
                                           "expected 200, got %d: %.300s",
                          m, p, r.status, r.body);
            weft_hresp_free(&r);
            free(hdr);
        }
        hdr = au_bearer(user.access);
        au_admin_status(h, m, p, hdr, &r);
        it_assert_error(&r, 403, "forbidden");
        weft_hresp_free(&r);
        free(hdr);
        ck_assert_int_eq(weft_harness_admin(h, m, p, &r), 0);
        ck_assert_int_eq(r.status, 200);
        weft_hresp_free(&r);
    }
    /* an unknown plugin: 404, not a credential problem */
    hdr = au_bearer(root.access);
    au_admin_status(h, "POST", "/admin/plugins/no-such-plugin/reload", hdr,
                    &r);
    ck_assert_msg(r.status == 404, "reload of an unknown plugin as admin: "
                                   "expected 404, got %d: %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    free(hdr);
    /* a user's old token stays a user's */
    u = au_me(h, user.access);
    ck_assert_msg(au_roles_user(u), "a plain user gained roles");
    json_decref(u);

    au_sess_free(&user);
    au_sess_free(&promo);
    au_sess_free(&root);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(hello);
    free(cli);
}
END_TEST

START_TEST(seed_demo)
{
    char *dir = au_tmpdir(), *cli = it_strf("%s/cli.ini", dir), *auth;
    weft_harness *h;
    struct au_sess s;

    auth = it_strf("secret = %s\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_assert_bad_login(h, "alex@mail.com", "alexpass");
    it_copy_file(weft_harness_config_path(h), cli);
    it_stop_ok(h);
    au_weftd_tool(cli, "--seed-demo", NULL, NULL);
    au_weftd_tool(cli, "--seed-demo", NULL, NULL); /* twice is fine */
    ck_assert_int_eq(au_postmaster(dir), 0);
    h = au_start(dir, auth, NULL);
    au_login(h, "alex@mail.com", "alexpass", 900, &s);
    ck_assert_int_eq(au_me_status(h, s.access), 200);
    au_sess_free(&s);
    au_login(h, "bob@mail.com", "bobpass", 900, &s);
    ck_assert_int_eq(au_me_status(h, s.access), 200);
    au_sess_free(&s);
    au_assert_bad_login(h, "alex@mail.com", "bobpass");
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(cli);
    free(auth);
}
END_TEST

/* weftd --check-config on [auth] values: no database is started. */
START_TEST(check_config_auth)
{
    char *dir = it_mkdtemp(), *path = it_strf("%s/w.ini", dir);
    static const struct {
        const char *auth;
        int ok;
    } cases[] = {
        {"secret = " AU_SECRET "\nissuer = i\naudience = a\n"
         "access_ttl = 15m\nrefresh_ttl = 30d\ncookie_secure = false\n"
         "hash_concurrency = 2\nargon2_opslimit = 2\nargon2_memlimit = 64m\n"
         "login_rate = 10\nlogin_account_rate = 5\nregister_rate = 5\n"
         "refresh_rate = 30\n",
         1},
        {"secret =\n", 1},
        {"secret = hex:00112233445566778899aabbccddeeff"
         "00112233445566778899aabbccddeeff\n",
         1},
        {"access_ttl = 2s\nrefresh_ttl = 12h\n", 1},
        {"access_ttl = soon\n", 0},
        {"refresh_ttl = 3w\n", 0},
        {"login_rate = many\n", 0},
        {"cookie_secure = perhaps\n", 0},
        {"no_such_key = 1\n", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = it_strf("[server]\nlisten = 127.0.0.1:8080\n"
                             "data_dir = %s/data\n[database]\nenabled = true\n"
                             "[auth]\n%s",
                             dir, cases[i].auth);
        char *argv[] = {(char *)it_weftd(), "--check-config", path, NULL};
        char *out = NULL, *err = NULL;
        int st;

        it_write_file(path, text);
        st = au_run(argv, NULL, &out, &err);
        if (cases[i].ok)
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                          "--check-config refused a valid [auth]:\n%s\n%s%s",
                          cases[i].auth, out, err);
        else
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
                          "--check-config did not refuse (status 2) [auth]:\n"
                          "%s\n(wait status %d) %s%s",
                          cases[i].auth, st, out, err);
        free(out);
        free(err);
        free(text);
    }
    it_rmtree(dir);
    free(dir);
    free(path);
}
END_TEST

/* A secret under 32 bytes, or bad hex, is refused: weftd does not start,
 * and --check-config (status 2 for an invalid config, says weft.ini)
 * reports it. */
START_TEST(bad_secret_refused)
{
    char *dir = it_mkdtemp(), *path = it_strf("%s/w.ini", dir);
    static const char *const bad[] = {
        "only-31-bytes-long-secret-text!",
        "hex:00112233445566778899aabbccddeeff00112233445566778899aabbccddee",
        "hex:zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    };

    ck_assert_uint_eq(strlen(bad[0]), 31);
    ck_assert_int_eq(chmod(dir, 0711), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *auth = it_strf("secret = %s\n", bad[i]),
             *cfg = au_config(dir, auth, NULL);
        weft_harness *h = weft_harness_start_raw(cfg);

        if (h != NULL)
            weft_harness_stop(h);
        ck_assert_msg(h == NULL, "weftd started with [auth] secret = %s",
                      bad[i]);
        free(cfg);
        free(auth);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *text = it_strf("[server]\nlisten = 127.0.0.1:8080\n"
                             "data_dir = %s/data\n[database]\nenabled = true\n"
                             "[auth]\nsecret = %s\n",
                             dir, bad[i]);
        char *argv[] = {(char *)it_weftd(), "--check-config", path, NULL};
        char *out = NULL, *err = NULL;
        int st;

        it_write_file(path, text);
        st = au_run(argv, NULL, &out, &err);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
                      "--check-config did not refuse (status 2) [auth] "
                      "secret = %s, which weftd refuses at start:\n"
                      "(wait status %d) %s%s",
                      bad[i], st, out, err);
        free(out);
        free(err);
        free(text);
    }
    it_rmtree(dir);
    free(dir);
    free(path);
}
END_TEST


/* ======================== sessions (issue 8) ============================ */

/* Run SQL on the embedded cluster of a weftd using data directory `dir`,
 * as an operator would by hand (demotion and deletion have no endpoint). */
static void au_sql(const char *dir, const char *sql)
{
    char *ci = it_strf("host=%s/data/pg/run port=5432 dbname=weft user=weft",
                       dir);
    PGconn *pg = PQconnectdb(ci);
    PGresult *res;

    ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "connect %s: %s", ci,
                  PQerrorMessage(pg));
    res = PQexec(pg, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK ||
                      PQresultStatus(res) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(pg);
    free(ci);
}

/* A Bearer header line, freed at the next call (one at a time). */
static const char *au_bearer_tmp(const char *access)
{
    static char *last;

    free(last);
    last = au_bearer(access);
    return last;
}

/* The status of `method path` with a Bearer token. */
static int au_status_bearer(weft_harness *h, const char *method,
                            const char *path, const char *access,
                            const char *body)
{
    char *hdr = au_bearer(access);
    weft_hresp r;
    int st;

    au_call(h, method, path, hdr, body, &r);
    st = r.status;
    weft_hresp_free(&r);
    free(hdr);
    return st;
}

/* Poll until `method path` answers `want` with this token (at most
 * `ms`): changes made by SQL reach weftd by NOTIFY, which is fast but
 * not synchronous with the UPDATE's commit as seen from here. */
static int au_poll_status(weft_harness *h, const char *method,
                          const char *path, const char *access, int want,
                          long ms)
{
    long long end = it_now_ms() + ms;
    int st;

    do {
        st = au_status_bearer(h, method, path, access, NULL);
        if (st == want)
            return st;
        it_sleep_ms(50);
    } while (it_now_ms() < end);
    return st;
}

/* weftd with the todo plugin (a plugin route and a private topic) and an
 * account "sam" signed in as `s`. A long account cache: only the
 * invalidation can make these tests pass. */
static weft_harness *au_start_sam(const char *dir, const char *auth_more,
                                  long ttl, struct au_sess *s)
{
    char *auth = it_strf("secret = %s\nsession_cache_ttl = 10m\n%s" AU_LOOSE,
                         AU_SECRET, auth_more != NULL ? auth_more : "");
    char *more = it_strf("[plugin.todo]\npath = %s\nenabled = true\n",
                         IT_TODO_SO);
    weft_harness *h = au_start(dir, auth, more);

    au_register(h, "sam@example.com", "sam", "Sam", "sampass123", ttl, s);
    free(auth);
    free(more);
    return h;
}

static void au_stop_sam(weft_harness *h, char *dir, struct au_sess *s)
{
    au_sess_free(s);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
}

START_TEST(session_logout)
{
    char *dir = au_tmpdir(), *body;
    struct au_sess a, b;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a);
    weft_hresp r;

    ck_assert_int_eq(au_me_status(h, a.access), 200);
    ck_assert_int_eq(au_status_bearer(h, "GET", "/api/todo/lists", a.access,
                                      NULL),
                     200);
    au_login(h, "sam@example.com", "sampass123", 900, &b);
    body = au_obj("refresh_token", a.refresh, NULL);
    au_call(h, "POST", "/api/auth/logout", NULL, body, &r);
    ck_assert_int_eq(r.status, 204);
    weft_hresp_free(&r);
    free(body);
    ck_assert_msg(au_me_status(h, a.access) == 401,
                  "the access token still works right after its logout");
    ck_assert_int_eq(au_status_bearer(h, "GET", "/api/todo/lists", a.access,
                                      NULL),
                     401);
    /* the account's other session gets a new access token by refreshing */
    ck_assert_int_eq(au_me_status(h, b.access), 401);
    au_refresh_try(h, b.refresh, &r);
    ck_assert_msg(r.status == 200, "another device's refresh after a logout: "
                                   "%d %.300s",
                  r.status, r.body);
    au_sess_free(&b);
    au_take_tokens(&r, 900, &b);
    weft_hresp_free(&r);
    ck_assert_int_eq(au_me_status(h, b.access), 200);
    /* logout with only the access token also ends it */
    au_call(h, "POST", "/api/auth/logout", au_bearer_tmp(b.access), "{}", &r);
    ck_assert_int_eq(r.status, 204);
    weft_hresp_free(&r);
    ck_assert_int_eq(au_me_status(h, b.access), 401);
    au_sess_free(&b);
    au_stop_sam(h, dir, &a);
}
END_TEST

START_TEST(session_password_change)
{
    char *dir = au_tmpdir();
    struct au_sess a, b;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a);

    au_login(h, "sam@example.com", "sampass123", 900, &b);
    ck_assert_int_eq(au_me_status(h, a.access), 200);
    ck_assert_int_eq(au_me_status(h, b.access), 200);
    ck_assert_int_eq(au_status_bearer(h, "POST", "/api/auth/password",
                                      b.access,
                                      "{\"current_password\":\"sampass123\","
                                      "\"new_password\":\"sampass456\"}"),
                     204);
    ck_assert_msg(au_me_status(h, b.access) == 401,
                  "the access token still works after a password change");
    ck_assert_msg(au_me_status(h, a.access) == 401,
                  "another access token still works after a password change");
    au_sess_free(&b);
    au_login(h, "sam@example.com", "sampass456", 900, &b);
    ck_assert_int_eq(au_me_status(h, b.access), 200);
    au_sess_free(&b);
    au_stop_sam(h, dir, &a);
}
END_TEST

START_TEST(session_demotion)
{
    char *dir = au_tmpdir(), *sql;
    struct au_sess a, adm;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a);
    int st;

    /* promoted and demoted by SQL, as an operator would (no endpoint) */
    sql = it_strf("UPDATE weft_users SET roles = '{user,admin}' WHERE id = %s",
                  a.id);
    au_sql(dir, sql);
    free(sql);
    au_login(h, "sam@example.com", "sampass123", 900, &adm);
    ck_assert_msg(au_has_role(adm.user, "admin"), "the promotion did not "
                                                  "show");
    ck_assert_int_eq(au_status_bearer(h, "POST", "/admin/plugins/todo/reload",
                                      adm.access, NULL),
                     200);
    sql = it_strf("UPDATE weft_users SET roles = '{user}' WHERE id = %s",
                  a.id);
    au_sql(dir, sql);
    free(sql);
    st = au_poll_status(h, "POST", "/admin/plugins/todo/reload", adm.access,
                        403, 2000);
    ck_assert_msg(st == 403, "an admin route with a demoted admin's token: "
                             "expected 403, got %d",
                  st);
    /* still signed in, as a plain user */
    ck_assert_int_eq(au_me_status(h, adm.access), 200);
    au_sess_free(&adm);
    au_stop_sam(h, dir, &a);
}
END_TEST

START_TEST(session_deletion)
{
    char *dir = au_tmpdir(), *sql;
    struct au_sess a;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a);
    int st;

    ck_assert_int_eq(au_status_bearer(h, "GET", "/api/todo/lists", a.access,
                                      NULL),
                     200);
    ck_assert_int_eq(au_me_status(h, a.access), 200);
    sql = it_strf("DELETE FROM weft_users WHERE id = %s", a.id);
    au_sql(dir, sql);
    free(sql);
    st = au_poll_status(h, "GET", "/api/todo/lists", a.access, 401, 2000);
    ck_assert_msg(st == 401, "a plugin route with a deleted account's token: "
                             "expected 401, got %d",
                  st);
    ck_assert_int_eq(au_status_bearer(h, "POST", "/api/todo/lists", a.access,
                                      "{\"title\":\"x\"}"),
                     401);
    ck_assert_int_eq(au_me_status(h, a.access), 401);
    au_stop_sam(h, dir, &a);
}
END_TEST

/* GET /api/realtime on a raw connection: returns the fd after a 200 head. */
static int au_sse_open(weft_harness *h, const char *topic, const char *access)
{
    struct sockaddr_in d;
    char *req, buf[4096] = "";
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    long long end = it_now_ms() + 5000;

    ck_assert_int_ge(fd, 0);
    memset(&d, 0, sizeof(d));
    d.sin_family = AF_INET;
    d.sin_port = htons((unsigned short)weft_harness_port(h));
    d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&d, sizeof(d)), 0);
    req = it_strf("GET /api/realtime?topic=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n"
                  "\r\n",
                  topic, access);
    ck_assert_int_eq(weft_harness_send(fd, req, strlen(req)), 0);
    free(req);
    while (strstr(buf, "event: subscribed") == NULL && it_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, 200) <= 0)
            continue;
        n = read(fd, buf + got, sizeof(buf) - 1 - got);
        ck_assert_msg(n > 0, "the SSE stream closed before it was set up");
        got += (size_t)n;
        buf[got] = '\0';
    }
    buf[got] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0 &&
                      strstr(buf, "event: subscribed") != NULL,
                  "SSE on %s: %.500s", topic, buf);
    return fd;
}

/* Milliseconds until the stream ends (EOF), or -1 after `ms`; *ended says
 * whether a session_ended event came first. */
static long au_sse_wait_end(int fd, long ms, int *ended)
{
    long long t0 = it_now_ms(), end = t0 + ms;
    char buf[4096], tail[64] = "";

    *ended = 0;
    while (it_now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        char joined[4096 + 64];
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
            return (long)(it_now_ms() - t0);
        buf[n] = '\0';
        snprintf(joined, sizeof(joined), "%s%s", tail, buf);
        if (strstr(joined, "event: session_ended") != NULL)
            *ended = 1;
        {
            size_t keep = n > 40 ? 40 : (size_t)n;
            memcpy(tail, buf + n - (ssize_t)keep, keep);
            tail[keep] = '\0';
        }
    }
    return -1;
}

START_TEST(realtime_expiry)
{
    char *dir = au_tmpdir(), *topic;
    struct au_sess a;
    weft_harness *h = au_start_sam(dir, "access_ttl = 3s\n", 3, &a);
    long t;
    int fd, ended;

    /* a stream opened with a 3 s token ends when the token does */
    au_sess_free(&a);
    au_login(h, "sam@example.com", "sampass123", 3, &a);
    topic = it_strf("todo.user.%s", a.id);
    fd = au_sse_open(h, topic, a.access);
    t = au_sse_wait_end(fd, 1000, &ended);
    ck_assert_msg(t < 0, "the stream ended before its token expired");
    t = au_sse_wait_end(fd, 6000, &ended);
    ck_assert_msg(t >= 0, "an SSE stream on %s kept going after its access "
                          "token expired",
                  topic);
    ck_assert_msg(ended, "the stream ended without a session_ended event");
    close(fd);
    free(topic);
    au_stop_sam(h, dir, &a);
}
END_TEST

START_TEST(realtime_logout)
{
    char *dir = au_tmpdir(), *topic, *body;
    struct au_sess a;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a);
    weft_hresp r;
    long t;
    int fd, ended;

    topic = it_strf("todo.user.%s", a.id);
    fd = au_sse_open(h, topic, a.access);
    t = au_sse_wait_end(fd, 500, &ended);
    ck_assert_msg(t < 0, "the stream ended by itself");
    body = au_obj("refresh_token", a.refresh, NULL);
    au_call(h, "POST", "/api/auth/logout", NULL, body, &r);
    ck_assert_int_eq(r.status, 204);
    weft_hresp_free(&r);
    free(body);
    t = au_sse_wait_end(fd, 3000, &ended);
    ck_assert_msg(t >= 0, "an SSE stream on %s kept going after logout",
                  topic);
    ck_assert_msg(ended, "the stream ended without a session_ended event");
    close(fd);
    /* and it cannot be reopened with that token */
    body = it_strf("/api/realtime?topic=%s", topic);
    ck_assert_int_eq(au_status_bearer(h, "GET", body, a.access, NULL), 401);
    free(body);
    free(topic);
    au_stop_sam(h, dir, &a);
}
END_TEST

START_TEST(csrf_bound_to_session)
{
    char *dir = au_tmpdir(), *auth, *ca, *cr, *cc, *ba, *br, *bc;
    weft_harness *h;
    struct au_sess s1, s2;
    weft_hresp r;
    static const char pw[] =
        "{\"current_password\":\"wrong-pass-1\",\"new_password\":\"x-pass-999\"}";

    auth = it_strf("secret = %s\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "tia@example.com", "tia", "Tia", "tiapass123", 900, &s1);
    au_register(h, "mal@example.com", "mal", "Mal", "malpass123", 900, &s2);
    au_cookie_login(h, "tia@example.com", "tiapass123", 0, &ca, &cr, &cc);
    au_cookie_login(h, "mal@example.com", "malpass123", 0, &ba, &br, &bc);

    /* a tossed cookie with a matching header: "x" / "x" */
    au_csrf_post(h, "/api/auth/password", "weft_access", ca, "x", pw, &r);
    ck_assert_msg(r.status == 403, "a tossed weft_csrf=x with X-CSRF-Token: x "
                                   "was accepted: %d %.300s",
                  r.status, r.body);
    it_assert_error(&r, 403, "csrf");
    weft_hresp_free(&r);
    /* the attacker's own, genuine token, tossed into the victim's jar */
    au_csrf_post(h, "/api/auth/password", "weft_access", ca, bc, pw, &r);
    ck_assert_msg(r.status == 403, "another session's CSRF token was "
                                   "accepted: %d %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    /* the same for refresh and logout on cookies */
    au_csrf_post(h, "/api/auth/refresh", "weft_refresh", cr, "x", NULL, &r);
    it_assert_error(&r, 403, "csrf");
    weft_hresp_free(&r);
    au_csrf_post(h, "/api/auth/logout", "weft_refresh", cr, "x", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    weft_hresp_free(&r);
    au_csrf_post(h, "/api/auth/refresh", "weft_refresh", cr, bc, NULL, &r);
    ck_assert_msg(r.status == 401 || r.status == 403,
                  "a refresh with another session's CSRF token: %d %.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    /* the session's own token works (the password is judged: 401) */
    au_csrf_post(h, "/api/auth/password", "weft_access", ca, cc, pw, &r);
    it_assert_error(&r, 401, "invalid_credentials");
    weft_hresp_free(&r);
    au_csrf_post(h, "/api/auth/refresh", "weft_refresh", cr, cc, NULL, &r);
    ck_assert_msg(r.status == 200, "cookie refresh with its own CSRF token: "
                                   "%d %.300s",
                  r.status, r.body);
    /* a refresh gives a new CSRF token (the web client's sign that another
     * tab refreshed), still bound to the session, and the old one still
     * names the session too */
    {
        char *na = NULL, *nc = NULL, *at1 = NULL, *at2 = NULL;
        ck_assert(au_set_cookie(&r, "weft_access", &na, &at1));
        ck_assert(au_set_cookie(&r, "weft_csrf", &nc, &at2));
        free(at1);
        free(at2);
        ck_assert_str_ne(nc, cc);
        weft_hresp_free(&r);
        au_csrf_post(h, "/api/auth/password", "weft_access", na, nc, pw, &r);
        it_assert_error(&r, 401, "invalid_credentials");
        weft_hresp_free(&r);
        au_csrf_post(h, "/api/auth/password", "weft_access", na, bc, pw, &r);
        it_assert_error(&r, 403, "csrf");
        weft_hresp_free(&r);
        free(na);
        free(nc);
    }

    free(ca);
    free(cr);
    free(cc);
    free(ba);
    free(br);
    free(bc);
    au_sess_free(&s1);
    au_sess_free(&s2);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

START_TEST(login_lockout)
{
    char *dir = au_tmpdir(), *auth, *good, *bad;
    weft_harness *h;
    struct au_sess s;
    weft_hresp r;
    long long t0;

    auth = it_strf("secret = %s\nlogin_rate = 100\nlogin_account_rate = 5\n"
                   "login_slow_max = 2s\nregister_rate = 100\n",
                   AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "vic@example.com", "vic", "Vic", "vicpass123", 900, &s);
    bad = au_obj("email", "vic@example.com", "password", "not-his-pw", NULL);
    good = au_obj("email", "vic@example.com", "password", "vicpass123", NULL);
    /* an attacker at 127.0.0.1 tries 5 wrong passwords, then is refused */
    for (int i = 0; i < 5; i++) {
        au_call(h, "POST", "/api/auth/login", NULL, bad, &r);
        it_assert_error(&r, 401, "invalid_credentials");
        weft_hresp_free(&r);
    }
    au_call(h, "POST", "/api/auth/login", NULL, bad, &r);
    au_assert_rate_limited(&r, 60, "6th try on one account from one address");
    weft_hresp_free(&r);
    /* the owner, elsewhere, signs in: slowed down, not refused */
    t0 = it_now_ms();
    au_call_from(h, "127.0.0.2", "POST", "/api/auth/login", NULL, good, &r);
    ck_assert_msg(r.status == 200, "the right password from another address "
                                   "after 5 wrong ones: expected 200, got %d: "
                                   "%.300s",
                  r.status, r.body);
    weft_hresp_free(&r);
    ck_assert_msg(it_now_ms() - t0 >= 1000,
                  "sign-in after 5 failures was not slowed down (%lld ms)",
                  it_now_ms() - t0);
    /* wrong passwords from other addresses are slowed, never locked out */
    for (int i = 3; i < 6; i++) {
        char *src = it_strf("127.0.0.%d", i);
        au_call_from(h, src, "POST", "/api/auth/login", NULL, bad, &r);
        it_assert_error(&r, 401, "invalid_credentials");
        weft_hresp_free(&r);
        free(src);
    }
    au_call_from(h, "127.0.0.2", "POST", "/api/auth/login", NULL, good, &r);
    ck_assert_int_eq(r.status, 200);
    weft_hresp_free(&r);

    free(good);
    free(bad);
    au_sess_free(&s);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

/* Registration of `username`/`display` answers `status` (and `code`). */
/* Every case is tried and the mismatches are reported together, so one
 * run shows each case that fails. */
static char au_name_fails[4096];

static void au_register_expect(weft_harness *h, const char *email,
                               const char *username, const char *display,
                               int status, const char *code, const char *what)
{
    char *body = au_register_body(email, username, display, "somepass123");
    weft_hresp r;
    json_t *j;
    const char *got;
    int ok;

    au_register_try(h, body, &r);
    /* status 0: refused as invalid or as taken, either will do */
    ok = r.status == status ||
         (status == 0 && (r.status == 400 || r.status == 409));
    if (ok && code != NULL) {
        j = it_json(&r);
        got = it_jstr(json_object_get(j, "error"), "code");
        ok = got != NULL && strcmp(got, code) == 0;
        json_decref(j);
    }
    if (!ok) {
        size_t n = strlen(au_name_fails);
        snprintf(au_name_fails + n, sizeof(au_name_fails) - n,
                 "\n  %s: expected %d %s, got %d", what, status,
                 code ? code : "", r.status);
    }
    weft_hresp_free(&r);
    free(body);
}

START_TEST(confusable_names)
{
    char *dir = au_tmpdir(), *auth;
    weft_harness *h;
    struct au_sess s, s2;
    weft_hresp r;
    json_t *lb;

    auth = it_strf("secret = %s\n" AU_LOOSE, AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "admin@example.com", "admin", "Admin", "adminpass1", 900,
                &s);
    /* look-alikes of "admin" */
    au_register_expect(h, "c1@example.com", "\xd0\xb0" "dmin", "C1", 0, NULL,
                       "Cyrillic a + dmin");
    au_register_expect(h, "c2@example.com",
                       "\xef\xbd\x81\xef\xbd\x84\xef\xbd\x8d\xef\xbd\x89"
                       "\xef\xbd\x8e",
                       "C2", 409, "username_taken", "fullwidth admin");
    au_register_expect(h, "c3@example.com", "adrnin", "C3", 409,
                       "username_taken", "adrnin (rn for m)");
    au_register_expect(h, "c4@example.com", "ADMIN", "C4", 409,
                       "username_taken", "ADMIN");
    /* invisible characters */
    au_register_expect(h, "c5@example.com", "admin\xe2\xa0\x80", "C5", 400,
                       "invalid", "admin + U+2800");
    au_register_expect(h, "c6@example.com", "\xe3\x85\xa4\xe3\x85\xa4\xe3\x85\xa4",
                       "C6", 400, "invalid", "U+3164 x3");
    au_register_expect(h, "c7@example.com", "bob\xe2\x80\x8b" "by", "C7", 400,
                       "invalid", "a zero-width space");
    /* Cyrillic mixed with Latin, even when nothing looks like it yet */
    au_register_expect(h, "c8@example.com", "p\xd0\xb0ypal", "C8", 400,
                       "invalid", "Latin with a Cyrillic a");
    /* display names: no direction overrides, no invisible ones */
    au_register_expect(h, "c9@example.com", "carol", "evil\xe2\x80\xae" "gpj",
                       400, "invalid", "display name with U+202E");
    au_register_expect(h, "c10@example.com", "carol2", "\xe3\x85\xa4", 400,
                       "invalid", "display name of U+3164 only");
    au_register_expect(h, "c11@example.com", "carol3",
                       "a\xe2\x81\xa6" "b", 400, "invalid",
                       "display name with U+2066 (isolate)");
    /* ordinary names of any one script still work */
    au_register_expect(h, "ok1@example.com", "Zo\xc3\xab", "Zo\xc3\xab Li",
                       201, NULL, "Zoë");
    au_register_expect(h, "ok2@example.com",
                       "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe6\x97\xa5",
                       201, NULL, "日本語");
    au_register_expect(h, "ok3@example.com",
                       "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd", "\xd0\x98\xd0\xb2",
                       201, NULL, "иван (Cyrillic alone)");
    ck_assert_msg(au_name_fails[0] == '\0', "names judged wrongly:%s",
                  au_name_fails);
    /* a fullwidth name is stored in its NFKC form */
    au_call(h, "POST", "/api/auth/register", NULL,
            "{\"email\":\"fw@example.com\",\"username\":\"\xef\xbd\x82\xef\xbd"
            "\x85\xef\xbd\x8e\",\"display_name\":\"Ben\",\"password\":"
            "\"benpass123\"}",
            &r);
    ck_assert_int_eq(r.status, 201);
    lb = it_json(&r);
    ck_assert_str_eq(it_jstr(json_object_get(lb, "user"), "username"), "ben");
    json_decref(lb);
    weft_hresp_free(&r);

    /* rows from before skeletons existed get theirs at start, also when
     * two of them look alike (the later one gets one of its own) */
    au_sql(dir, "UPDATE weft_users SET username_skeleton = NULL");
    au_sql(dir, "INSERT INTO weft_users (email, username, display_name,"
                " password_hash) VALUES ('old@example.com', 'adm\xc4\xb1n',"
                " 'Old', 'x')");
    it_stop_ok(h);
    h = au_start(dir, auth, NULL);
    au_register_expect(h, "c12@example.com",
                       "\xef\xbc\xa1\xef\xbc\xa4\xef\xbc\xad\xef\xbc\xa9"
                       "\xef\xbc\xae",
                       "C12", 409, "username_taken",
                       "fullwidth ADMIN after the backfill");
    au_register_expect(h, "c13@example.com", "ben", "C13", 409,
                       "username_taken", "ben after the backfill");
    ck_assert_msg(au_name_fails[0] == '\0', "after the backfill:%s",
                  au_name_fails);
    au_login(h, "admin@example.com", "adminpass1", 900, &s2);
    au_sess_free(&s2);

    au_sess_free(&s);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

/* Registration says an address is taken (409 email_taken), deliberately
 * (README, "Identity"); the register rate limit covers that answer. */
START_TEST(register_enumeration_limited)
{
    char *dir = au_tmpdir(), *auth, *body;
    weft_harness *h;
    struct au_sess s;
    weft_hresp r;
    json_t *j;
    const char *ts;

    auth = it_strf("secret = %s\nregister_rate = 3\nlogin_rate = 100\n",
                   AU_SECRET);
    h = au_start(dir, auth, NULL);
    au_register(h, "una@example.com", "una", "Una", "unapass123", 900, &s);
    /* created_at is RFC 3339 (UTC, 'T', 'Z') in every /api/auth answer */
    ts = it_jstr(s.user, "created_at");
    ck_assert_msg(ts != NULL && strlen(ts) >= 20 && ts[4] == '-' &&
                      ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' &&
                      ts[16] == ':' && ts[strlen(ts) - 1] == 'Z',
                  "created_at is not RFC 3339: %s", ts ? ts : "(none)");
    j = au_me(h, s.access);
    ck_assert_str_eq(it_jstr(j, "created_at"), ts);
    json_decref(j);
    body = au_register_body("una@example.com", "una2", "Una", "unapass123");
    for (int i = 0; i < 2; i++) {
        au_register_try(h, body, &r);
        it_assert_error(&r, 409, "email_taken");
        weft_hresp_free(&r);
    }
    au_register_try(h, body, &r);
    au_assert_rate_limited(&r, 60, "a 4th registration (taken addresses)");
    ck_assert_ptr_null(strstr(r.body, "email_taken"));
    weft_hresp_free(&r);
    free(body);

    au_sess_free(&s);
    it_stop_ok(h);
    it_rmtree(dir);
    free(dir);
    free(auth);
}
END_TEST

/* Signal the whole embedded cluster: the postmaster and its children
 * (each of which PostgreSQL puts in a session of its own). */
static void au_cluster_signal(const char *dir, int sig)
{
    pid_t pm = au_postmaster(dir);
    DIR *d = opendir("/proc");
    struct dirent *e;

    ck_assert_int_gt(pm, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(kill(pm, sig), 0);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], *rp;
        long ppid = 0;
        FILE *f;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) != NULL &&
            (rp = strrchr(buf, ')')) != NULL &&
            sscanf(rp + 1, " %*c %ld", &ppid) == 1 && ppid == pm)
            kill((pid_t)atol(e->d_name), sig);
        fclose(f);
    }
    closedir(d);
}

/* Static files never wait for an account lookup: with the whole cluster
 * stopped, a request for one carrying credentials nobody has looked up
 * yet is still answered at once. */
START_TEST(static_files_skip_lookup)
{
    char *dir = au_tmpdir(), *hdr;
    struct au_sess a;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a);
    weft_hresp r;
    long long t0;

    au_cluster_signal(dir, SIGSTOP);
    hdr = it_strf("Authorization: Bearer %s\r\nCookie: weft_access=%s\r\n",
                  a.access, a.access);
    t0 = it_now_ms();
    au_call(h, "GET", "/p/todo/widget.js", hdr, NULL, &r);
    au_cluster_signal(dir, SIGCONT);
    ck_assert_msg(r.status > 0 && r.status < 500 && it_now_ms() - t0 < 2000,
                  "a static file with credentials while the database is "
                  "stopped: %d after %lld ms",
                  r.status, it_now_ms() - t0);
    weft_hresp_free(&r);
    free(hdr);
    ck_assert_int_eq(au_me_status(h, a.access), 200);
    au_stop_sam(h, dir, &a);
}
END_TEST

/* Two nodes sharing one database: a logout on one ends the token on the
 * other at once, though the other had the account cached (10 minutes). */
START_TEST(session_across_nodes)
{
    char *dir = au_tmpdir(), *dir2 = au_tmpdir(), *auth, *more, *body;
    struct au_sess a;
    weft_harness *h = au_start_sam(dir, NULL, 900, &a), *h2;
    weft_hresp r;
    int st;

    auth = it_strf("secret = %s\nsession_cache_ttl = 10m\n" AU_LOOSE,
                   AU_SECRET);
    more = it_strf("[database]\nurl = host=%s/data/pg/run port=5432 "
                   "dbname=weft user=weft\n",
                   dir);
    h2 = au_start(dir2, auth, more);
    ck_assert_int_eq(au_me_status(h2, a.access), 200); /* cached on h2 */
    ck_assert_int_eq(au_me_status(h, a.access), 200);
    body = au_obj("refresh_token", a.refresh, NULL);
    au_call(h, "POST", "/api/auth/logout", NULL, body, &r);
    ck_assert_int_eq(r.status, 204);
    weft_hresp_free(&r);
    free(body);
    ck_assert_int_eq(au_me_status(h, a.access), 401);
    st = au_poll_status(h2, "GET", "/api/auth/me", a.access, 401, 2000);
    ck_assert_msg(st == 401, "the other node still takes a token logged "
                             "out on the first: %d",
                  st);
    it_stop_ok(h2);
    it_rmtree(dir2);
    free(dir2);
    free(auth);
    free(more);
    au_stop_sam(h, dir, &a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("integration_auth");
    TCase *tc = tcase_create("auth");
    static const char *const clean[] = {
        "WEFT_AUTH_",
        "WEFT_DATABASE_",
        "WEFT_ADMIN_",
        NULL};

    if (sodium_init() < 0)
        return 1;

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, check_config_auth);
    tcase_add_test(tc, bad_secret_refused);
    tcase_add_test(tc, register_validation);
    tcase_add_test(tc, login_refresh_logout);
    tcase_add_test(tc, access_token_forgeries);
    tcase_add_test(tc, token_expiry);
    tcase_add_test(tc, cookie_session_and_csrf);
    tcase_add_test(tc, password_change);
    tcase_add_test(tc, rate_limits);
    tcase_add_test(tc, admin_routes_and_create_admin);
    tcase_add_test(tc, seed_demo);
    suite_add_tcase(s, tc);
    /* CK_RUN_CASE=sessions runs these alone (ctest integration_auth_session) */
    tc = tcase_create("sessions");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, session_logout);
    tcase_add_test(tc, session_password_change);
    tcase_add_test(tc, session_demotion);
    tcase_add_test(tc, session_deletion);
    tcase_add_test(tc, session_across_nodes);
    tcase_add_test(tc, realtime_expiry);
    tcase_add_test(tc, realtime_logout);
    tcase_add_test(tc, static_files_skip_lookup);
    tcase_add_test(tc, csrf_bound_to_session);
    tcase_add_test(tc, login_lockout);
    tcase_add_test(tc, confusable_names);
    tcase_add_test(tc, register_enumeration_limited);
    suite_add_tcase(s, tc);
    /* the configs here say what they mean: no environment overrides */
    return it_run_suite_clean(s, clean);
}
