/* auth.c - identity: register, login, refresh, logout, me, password.
 *
 * Access tokens are short-lived JWTs (HS256) whose signature is checked
 * without the database, and whose session (claim sv, the account's
 * session version) is checked against the account as auth_session.c
 * caches it: logout, a password change or deletion end every token of the
 * account on the next request. Refresh tokens are random, stored only as
 * SHA-256 hashes, rotated on every use, and grouped in families (a
 * session, claim sid): presenting a rotated token again means it was
 * stolen, so its whole family is revoked. Password hashing (argon2id)
 * runs on the worker pool behind a gate that bounds its concurrency.
 * Browsers may use HttpOnly cookies instead of the Authorization header;
 * then every state change must carry the session's CSRF token. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "auth.h"
#include "auth_jwt.h"
#include "auth_pw.h"
#include "auth_session.h"
#include "auth_name.h"
#include "auth_token.h"
#include "cookie.h"
#include "db.h"
#include "host.h"
#include "log.h"
#include "loop.h"
#include "plugin.h"
#include "ratelimit.h"
#include "request.h"
#include "settings.h"
#include "signup.h"
#include "utf8.h"

#define WAUTH_EMAIL_MAX 254

const weft_migration wauth_migrations[] = {
    {1, "identity",
     "CREATE TABLE weft_users (\n"
     "    id bigserial PRIMARY KEY,\n"
     "    email text NOT NULL,\n"
     "    username text NOT NULL,\n"
     "    display_name text NOT NULL,\n"
     "    password_hash text NOT NULL,\n"
     "    roles text[] NOT NULL DEFAULT '{user}',\n"
     "    created_at timestamptz NOT NULL DEFAULT now(),\n"
     "    updated_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE UNIQUE INDEX weft_users_email ON weft_users (lower(email));\n"
     "CREATE UNIQUE INDEX weft_users_username ON weft_users "
     "(lower(username));\n"
     "CREATE TABLE weft_refresh_tokens (\n"
     "    token_hash text PRIMARY KEY,\n"
     "    user_id bigint NOT NULL REFERENCES weft_users (id) "
     "ON DELETE CASCADE,\n"
     "    family uuid NOT NULL,\n"
     "    created_at timestamptz NOT NULL DEFAULT now(),\n"
     "    expires_at timestamptz NOT NULL,\n"
     "    used_at timestamptz,\n"
     "    revoked_at timestamptz\n"
     ");\n"
     "CREATE INDEX weft_refresh_tokens_family ON weft_refresh_tokens "
     "(family);\n"
     "CREATE INDEX weft_refresh_tokens_user ON weft_refresh_tokens "
     "(user_id);\n"},
    /* Events published inside plugin transactions (bus.c relays them). */
    {2, "outbox",
     "CREATE TABLE weft_outbox (\n"
     "    id bigserial PRIMARY KEY,\n"
     "    topic text NOT NULL,\n"
     "    data text NOT NULL,\n"
     "    created_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"},
    /* Sessions end on the next request after a logout, a password change
     * or the account's deletion: every access token carries the account's
     * session_version, and hosts cache it (auth_session.c) until told, by
     * this NOTIFY, that the row changed. The triggers cover SQL done by
     * hand too (a DELETE, or roles changed by an operator). The username's
     * confusable skeleton (auth_name.c) is unique; it is computed in C, so
     * rows from before are filled in at start (wauth_backfill). */
    {3, "sessions and name skeletons",
     "ALTER TABLE weft_users ADD COLUMN session_version bigint NOT NULL\n"
     "    DEFAULT 0;\n"
     "ALTER TABLE weft_users ADD COLUMN username_skeleton text;\n"
     "CREATE UNIQUE INDEX weft_users_username_skeleton ON weft_users\n"
     "    (username_skeleton);\n"
     "CREATE FUNCTION weft_users_bump() RETURNS trigger LANGUAGE plpgsql\n"
     "AS $$ BEGIN\n"
     "  IF NEW.password_hash IS DISTINCT FROM OLD.password_hash THEN\n"
     "    NEW.session_version := OLD.session_version + 1;\n"
     "  END IF;\n"
     "  RETURN NEW;\n"
     "END $$;\n"
     "CREATE TRIGGER weft_users_bump BEFORE UPDATE ON weft_users\n"
     "    FOR EACH ROW EXECUTE FUNCTION weft_users_bump();\n"
     "CREATE FUNCTION weft_users_changed() RETURNS trigger\n"
     "LANGUAGE plpgsql AS $$ BEGIN\n"
     "  IF TG_OP = 'DELETE' THEN\n"
     "    PERFORM pg_notify('weft_account', OLD.id::text);\n"
     "  ELSIF NEW.session_version IS DISTINCT FROM OLD.session_version\n"
     "     OR NEW.roles IS DISTINCT FROM OLD.roles THEN\n"
     "    PERFORM pg_notify('weft_account', NEW.id::text);\n"
     "  END IF;\n"
     "  RETURN NULL;\n"
     "END $$;\n"
     "CREATE TRIGGER weft_users_changed AFTER UPDATE OR DELETE ON\n"
     "    weft_users FOR EACH ROW EXECUTE FUNCTION weft_users_changed();\n"},
    {0, NULL, NULL}};

/* What the handlers need, fixed at start. */
static struct {
    int on;
    unsigned char key[WSECRET_MAX];
    size_t keylen;
    char *issuer, *audience;
    long access_ttl_s;
    long long refresh_ttl_ms;
    int cookie_secure;
    double login_rate, login_account_rate, register_rate, refresh_rate;
    long login_slow_max_ms;
    struct wpw_gate gate;
    struct wrl *rl;
} wauth;

/* created_at as RFC 3339 in UTC (PostgreSQL's text form is not). */
#define WAUTH_CREATED(t)                                                       \
    "to_char(" t "created_at AT TIME ZONE 'UTC',"                              \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
static const char wauth_user_cols[] =
    "id, email, username, display_name, roles, " WAUTH_CREATED("")
    ", session_version";

int wauth_check_secret(const struct wsettings *s, struct wdiag *d)
{
    unsigned char key[WSECRET_MAX];
    size_t len = sizeof(key);
    const char *why = NULL;

    if (s->auth_secret == NULL || s->auth_secret[0] == '\0')
        return 0; /* generated on first start */
    if (wsecret_load(s->auth_secret, "/nonexistent", key, &len, &why) != 0) {
        wdiag_add(d, NULL, 0, "[auth] secret: %s", why ? why : "unusable");
        return -1;
    }
    sodium_memzero(key, sizeof(key));
    return 0;
}

int wauth_init(const struct wsettings *s, struct wdiag *d)
{
    char path[4096];
    const char *why = NULL;

    snprintf(path, sizeof(path), "%s/auth.secret", s->data_dir);
    wauth.keylen = sizeof(wauth.key);
    if (wsecret_load(s->auth_secret, path, wauth.key, &wauth.keylen, &why) !=
        0) {
        wdiag_add(d, NULL, 0, "[auth] secret: %s", why ? why : "unusable");
        return -1;
    }
    if (wpw_gate_init(&wauth.gate, (int)s->auth_hash_concurrency) != 0) {
        wdiag_add(d, NULL, 0, "cannot set up password hashing");
        return -1;
    }
    wpw_gate_limits(&wauth.gate, (unsigned long long)s->auth_argon2_opslimit,
                    (size_t)s->auth_argon2_memlimit);
    wauth.rl = wrl_new(100000);
    wauth.issuer = strdup(s->auth_issuer);
    wauth.audience = strdup(s->auth_audience);
    if (wauth.rl == NULL || wauth.issuer == NULL || wauth.audience == NULL) {
        wdiag_add(d, NULL, 0, "out of memory");
        return -1;
    }
    wauth.access_ttl_s = (long)(s->auth_access_ttl / 1000);
    wauth.refresh_ttl_ms = s->auth_refresh_ttl;
    wauth.cookie_secure = (int)s->auth_cookie_secure;
    wauth.login_rate = (double)s->auth_login_rate;
    wauth.login_account_rate = (double)s->auth_login_account_rate;
    wauth.register_rate = (double)s->auth_register_rate;
    wauth.refresh_rate = (double)s->auth_refresh_rate;
    wauth.login_slow_max_ms = (long)s->auth_login_slow_max;
    if (wsess_init(s->auth_session_cache_ttl) != 0) {
        wdiag_add(d, NULL, 0, "out of memory");
        return -1;
    }
    if (wname_init() != 0) {
        wdiag_add(d, NULL, 0, "cannot set up ICU's spoof checker");
        return -1;
    }
    wauth.on = 1;
    return 0;
}

void wauth_fini(void)
{
    if (!wauth.on)
        return;
    wpw_gate_destroy(&wauth.gate);
    wrl_free(wauth.rl);
    wsess_fini();
    wname_fini();
    free(wauth.issuer);
    free(wauth.audience);
    sodium_memzero(wauth.key, sizeof(wauth.key));
    memset(&wauth, 0, sizeof(wauth));
}

/* ---- small helpers ----------------------------------------------------- */

/* Take a token from bucket `what:key`; answers 429 and returns 0 when the
 * bucket is empty. */
static int wauth_limit(struct weft_req *r, const char *what, const char *key,
                       double per_minute)
{
    char k[WRL_KEY_MAX], ra[32];
    double retry = 0;

    snprintf(k, sizeof(k), "%s:%s", what, key);
    if (wrl_take(wauth.rl, k, per_minute / 60.0, per_minute, wrl_now(),
                 &retry) == 1)
        return 1;
    snprintf(ra, sizeof(ra), "%ld", (long)(retry < 1 ? 1 : retry + 0.999));
    evbuffer_add_printf(r->rhdrs, "Retry-After: %s\r\n", ra);
    wreq_reply_error(r, 429, "rate_limited",
                     "too many attempts; try again later");
    return 0;
}

/* No control characters: C0, DEL, and C1 (U+0080..U+009F, which UTF-8
 * writes as C2 80..C2 9F; U+009B starts terminal escape sequences). */
static int wauth_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return 0;
    }
    return 1;
}

static const char *wauth_check_email(const char *e)
{
    size_t n = e ? strlen(e) : 0;
    const char *at = e ? strchr(e, '@') : NULL;

    if (n < 3 || n > WAUTH_EMAIL_MAX || at == NULL || at == e ||
        at[1] == '\0' || strchr(at + 1, '@') != NULL ||
        strpbrk(e, " \t\r\n") != NULL || !wutf8_valid(e, n) ||
        !wauth_printable(e, n))
        return "email: an address like name@example.com";
    return NULL;
}

/* A string member of the JSON body, or NULL. */
static const char *wauth_jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* PostgreSQL's text[] literal "{user,admin}" as a JSON array (and into the
 * claims when given). Role names never need quoting: we write them. */
static json_t *wauth_roles(const char *lit, struct wjwt_claims *c)
{
    json_t *a = json_array();
    char buf[512], *p, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", lit);
    p = buf;
    if (*p == '{')
        p++;
    p[strcspn(p, "}")] = '\0';
    for (char *t = strtok_r(p, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        json_array_append_new(a, json_string(t));
        if (c != NULL)
            wjwt_role_add(c, t);
    }
    return a;
}

/* Columns from wauth_user_cols as the "user" object. */
static json_t *wauth_user_json(const PGresult *res, int row)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:s}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10),
                     "email", PQgetvalue(res, row, 1), "username",
                     PQgetvalue(res, row, 2), "display_name",
                     PQgetvalue(res, row, 3), "roles",
                     wauth_roles(PQgetvalue(res, row, 4), NULL), "created_at",
                     PQgetvalue(res, row, 5));
}

static void wauth_cookie(struct weft_req *r, const char *name,
                         const char *value, long max_age, int httponly,
                         const char *path)
{
    char buf[1024];
    int flags = WCOOKIE_SAMESITE_STRICT |
                (httponly ? WCOOKIE_HTTPONLY : 0) |
                (wauth.cookie_secure ? WCOOKIE_SECURE : 0) |
                (path == NULL ? WCOOKIE_PATH_ROOT : 0);

    if (wcookie_set(buf, sizeof(buf), name, value, max_age, flags) != 0)
        return;
    evbuffer_add_printf(r->rhdrs, "Set-Cookie: %s%s%s\r\n", buf,
                        path ? "; Path=" : "", path ? path : "");
}

static void wauth_clear_cookies(struct weft_req *r)
{
    wauth_cookie(r, "weft_access", "", 0, 1, NULL);
    wauth_cookie(r, "weft_refresh", "", 0, 1, "/api/auth");
    wauth_cookie(r, "weft_csrf", "", 0, 0, NULL);
}

/* ---- who is asking ------------------------------------------------------ */

static int wauth_unsafe_method(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
           strcmp(m, "OPTIONS") != 0;
}

/* The CSRF token of a session: "<sid>.<nonce>.<HMAC-SHA256(secret, sid
 * and nonce)>". A cookie tossed from a sibling domain cannot carry a token
 * for the victim's session without the secret, so a forged pair is
 * refused; the sid in it also tells refresh and logout which family they
 * may touch. The nonce is new at every sign-in and refresh: the web
 * client takes a changed cookie as "another tab has just refreshed". */
#define WAUTH_NONCE_LEN 22 /* 16 random bytes, base64url */
#define WAUTH_CSRF_MAX (WJWT_SID_MAX + 1 + WAUTH_NONCE_LEN + 1 + 44)

static void wauth_csrf_mac(const char *sid_nonce, size_t n, char *out,
                           size_t size)
{
    static const char domain[] = "weft-csrf-v1";
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, wauth.key, wauth.keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain,
                                  sizeof(domain));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)sid_nonce, n);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(out, size, mac, sizeof(mac),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void wauth_csrf_make(const char *sid, char out[WAUTH_CSRF_MAX])
{
    unsigned char nonce[16];
    size_t n;

    randombytes_buf(nonce, sizeof(nonce));
    n = (size_t)snprintf(out, WAUTH_CSRF_MAX, "%s.", sid);
    sodium_bin2base64(out + n, WAUTH_CSRF_MAX - n, nonce, sizeof(nonce),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    n += WAUTH_NONCE_LEN;
    out[n] = '.';
    wauth_csrf_mac(out, n, out + n + 1, WAUTH_CSRF_MAX - n - 1);
}

/* The X-CSRF-Token header repeats the weft_csrf cookie (double submit)
 * and is a token this host made: copy its sid into `sid` and return 1.
 * Compared in constant time. */
static int wauth_csrf_sid(struct weft_req *r, char sid[WJWT_SID_MAX])
{
    const char *got = whttp_header(&r->head, "X-CSRF-Token");
    const char *cookies = whttp_header(&r->head, "Cookie");
    const char *dot = got != NULL ? strchr(got, '.') : NULL;
    char want[WAUTH_CSRF_MAX], cookie[WAUTH_CSRF_MAX];
    size_t n = dot != NULL ? (size_t)(dot - got) : 0, m;

    if (n == 0 || n >= WJWT_SID_MAX ||
        strspn(got, "0123456789abcdef-") != n || cookies == NULL ||
        wcookie_get(cookies, "weft_csrf", cookie, sizeof(cookie)) != 0 ||
        !wct_eq(got, cookie))
        return 0;
    m = n + 1 + WAUTH_NONCE_LEN;
    if (strlen(got) <= m || got[m] != '.')
        return 0;
    memcpy(want, got, m + 1);
    wauth_csrf_mac(got, m, want + m + 1, sizeof(want) - m - 1);
    if (!wct_eq(got, want))
        return 0;
    memcpy(sid, got, n);
    sid[n] = '\0';
    return 1;
}

/* A cookie-authenticated state change must carry the session's CSRF token
 * in a header: a cross-site form can send cookies but not headers, and a
 * tossed cookie does not help (see wauth_csrf_make). */
static int wauth_csrf_ok(struct weft_req *r, const char *session)
{
    char sid[WJWT_SID_MAX];

    return session != NULL && session[0] != '\0' && wauth_csrf_sid(r, sid) &&
           strcmp(sid, session) == 0;
}

static int wauth_verify(const char *token, struct wjwt_claims *c)
{
    const char *why = NULL;

    /* No leeway: the tokens come from this host or its peers, whose
     * clocks are synchronised; a leeway would stretch every lifetime.
     * Tokens without a session (made before sessions had versions) are
     * refused: sign in again. */
    return wjwt_verify(wauth.key, wauth.keylen, token, wauth.issuer,
                       wauth.audience, time(NULL), 0, c, &why) != 0 ||
                   c->sv < 0 || c->sid[0] == '\0'
               ? -1
               : 0;
}

/* ---- the account behind a token ---------------------------------------- */

struct wauth_fetch {
    struct weft_req *r;
    int64_t id;
    uint64_t gen;
};

static void wauth_fetched_call(struct weft_req *r, void *ctx)
{
    const struct weft_db_res *res = ((void **)ctx)[0];
    struct wauth_fetch *f = ((void **)ctx)[1];
    struct wsess_state st;
    struct wjwt_claims tmp;
    json_t *roles;

    if (res->error != NULL) {
        wdb_reply_error(r, res);
        free(f);
        return;
    }
    memset(&st, 0, sizeof(st));
    memset(&tmp, 0, sizeof(tmp));
    if (PQntuples(res->res) == 0) {
        st.gone = 1;
    } else {
        st.ver = strtoll(PQgetvalue(res->res, 0, 0), NULL, 10);
        roles = wauth_roles(PQgetvalue(res->res, 0, 1), &tmp);
        json_decref(roles);
        st.nroles = tmp.nroles;
        memcpy(st.roles, tmp.roles, sizeof(st.roles));
    }
    wsess_put(f->id, &st, f->gen);
    free(r->acct);
    r->acct = malloc(sizeof(*r->acct));
    free(f);
    if (r->acct == NULL) {
        wreq_reply_error(r, 503, "unavailable", "out of memory");
        return;
    }
    *r->acct = st;
    wreq_reroute(r);
}

static void wauth_fetched(struct wdb_tx *tx, const struct weft_db_res *res,
                          void *arg)
{
    struct wauth_fetch *f = arg;
    void *ctx[2] = {(void *)res, f};

    (void)tx;
    wreq_complete(f->r, wauth_fetched_call, ctx);
}

/* What the account is now. 0 with *st filled, 1 when a lookup started
 * (the request is routed again once it is back), -1 after answering. */
static int wauth_account(struct weft_req *r, int64_t id,
                         struct wsess_state *st)
{
    struct wauth_fetch *f;
    char sid[32];
    const char *p[1] = {sid};

    if (r->acct != NULL) {
        *st = *r->acct;
        return 0;
    }
    if (wsess_get(id, st))
        return 0;
    if (!wdb_enabled()) {
        wreq_reply_error(r, 503, "unavailable", "identity needs the database");
        return -1;
    }
    f = malloc(sizeof(*f));
    if (f == NULL) {
        wreq_reply_error(r, 503, "unavailable", "out of memory");
        return -1;
    }
    f->r = r;
    f->id = id;
    f->gen = wsess_gen();
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    wreq_pending_add(r);
    if (wdb_query(r->loop, r,
                  "SELECT session_version, roles FROM weft_users WHERE id = $1",
                  1, p, wauth_fetched, f) != 0) {
        r->pending--;
        free(f);
        wdb_reply_error(r, NULL);
        return -1;
    }
    return 1;
}

static void wauth_invalid_token(struct weft_req *r, const char *msg)
{
    evbuffer_add_printf(r->rhdrs, "WWW-Authenticate: Bearer "
                                  "realm=\"weft\", "
                                  "error=\"invalid_token\"\r\n");
    wreq_reply_error(r, 401, "unauthorized", msg);
}

int wauth_request(struct weft_req *r, unsigned flags)
{
    const char *authz = whttp_header(&r->head, "Authorization");
    const char *cookies = whttp_header(&r->head, "Cookie");
    char token[WJWT_TOKEN_MAX + 1];
    struct wjwt_claims c;
    struct wsess_state st;
    int have = 0, rc;

    if ((flags & WAUTH_ROUTE_ANON) &&
        !(flags & (WEFT_ROUTE_USER | WEFT_ROUTE_ADMIN)))
        return 0;
    if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0) {
        const char *t = authz + 7;
        char *admin = (flags & WEFT_ROUTE_ADMIN) ? whost_admin_token() : NULL;
        if (admin != NULL && wct_eq(t, admin)) {
            free(admin);
            r->admin_token = 1;
            return 0;
        }
        free(admin);
        if (!wauth.on || wauth_verify(t, &c) != 0) {
            wauth_invalid_token(r, "the access token is not valid");
            return -1;
        }
        have = 1;
    } else if (wauth.on && cookies != NULL &&
               wcookie_get(cookies, "weft_access", token, sizeof(token)) ==
                   0 &&
               wauth_verify(token, &c) == 0) {
        if (wauth_unsafe_method(r->head.method) && !wauth_csrf_ok(r, c.sid)) {
            wreq_reply_error(r, 403, "csrf",
                             "missing or wrong X-CSRF-Token header");
            return -1;
        }
        r->via_cookie = 1;
        have = 2;
    }
    if (have) {
        /* The token is genuine; is its session still what it was? Logout,
         * a password change or deletion end it on the next request; the
         * roles are the account's current ones (a demotion counts now). */
        rc = wauth_account(r, c.sub, &st);
        if (rc != 0)
            return rc;
        if (st.gone || st.ver != c.sv) {
            if (have == 1) {
                wauth_invalid_token(r, st.gone ? "the account is gone"
                                               : "the session has ended; "
                                                 "sign in again");
                return -1;
            }
            have = 0; /* a stale cookie is no cookie */
            r->via_cookie = 0;
        } else {
            c.nroles = st.nroles;
            memcpy(c.roles, st.roles, sizeof(c.roles));
        }
    }
    if (have) {
        r->user = malloc(sizeof(*r->user));
        if (r->user == NULL) {
            wreq_reply_error(r, 503, "unavailable", "out of memory");
            return -1;
        }
        *r->user = c;
    }
    if ((flags & (WEFT_ROUTE_USER | WEFT_ROUTE_ADMIN)) && r->user == NULL) {
        evbuffer_add_printf(r->rhdrs, "WWW-Authenticate: Bearer "
                                      "realm=\"weft\"\r\n");
        wreq_reply_error(r, 401, "unauthorized", "sign in first");
        return -1;
    }
    if ((flags & WEFT_ROUTE_ADMIN) && !wjwt_has_role(r->user, "admin")) {
        wreq_reply_error(r, 403, "forbidden", "the admin role is required");
        return -1;
    }
    return 0;
}

int64_t wauth_expiry(struct weft_req *r)
{
    return r->user != NULL ? r->user->exp : 0;
}

int64_t wauth_user(struct weft_req *r)
{
    return r->user != NULL ? r->user->sub : 0;
}

int wauth_has_role(struct weft_req *r, const char *role)
{
    return r->user != NULL && role != NULL && wjwt_has_role(r->user, role);
}

/* ---- one sign-in flow: state carried through queries and workers ------ */

struct wauth_op {
    struct weft_req *r;
    json_t *in;
    const char *email, *username, *display, *password, *newpw;
    int cookie;
    char hash[WPW_HASHLEN];
    char stored[WPW_HASHLEN];
    int found, ok;
    char refresh[WTOK_LEN + 1];
    char uname[WNAME_MAX], skel[WNAME_MAX]; /* register: stored forms */
    json_t *user;
    PGresult *row; /* login: the account row, kept across the worker */
    struct wjwt_claims claims;
    char sid[WJWT_SID_MAX]; /* cookie refresh/logout: the CSRF token's */
    char acct[WAUTH_EMAIL_MAX + 1]; /* login: the email, lower case */
};

static void wauth_op_free(struct wauth_op *op)
{
    if (op->row != NULL)
        PQclear(op->row);
    json_decref(op->in);
    json_decref(op->user);
    sodium_memzero(op->hash, sizeof(op->hash));
    free(op);
}

static struct wauth_op *wauth_op_new(struct weft_req *r)
{
    const char *err = NULL;
    struct wauth_op *op;

    if (!wauth.on || !wdb_enabled()) {
        wreq_reply_error(r, 503, "unavailable",
                         "identity needs the database, which is disabled");
        return NULL;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        wreq_reply_error(r, 503, "unavailable", "out of memory");
        return NULL;
    }
    op->r = r;
    op->in = r->api->req_json(r, &err);
    if (op->in == NULL || !json_is_object(op->in)) {
        wreq_reply_error(r, 400, "bad_json",
                         err ? err : "a JSON object is expected");
        wauth_op_free(op);
        return NULL;
    }
    return op;
}

static void wauth_db_failed(struct wauth_op *op, const struct weft_db_res *res)
{
    wdb_reply_error(op->r, res);
    wauth_op_free(op);
}

static int wauth_query(struct wauth_op *op, const char *sql, int n,
                       const char *const *p, wdb_cb cb)
{
    struct weft_req *r = op->r;
    int rc;

    wreq_pending_add(r);
    rc = wdb_query(r->loop, r, sql, n, p, cb, op);
    if (rc != 0) {
        r->pending--;
        wdb_reply_error(r, NULL);
        wauth_op_free(op);
        return -1;
    }
    return 0;
}

/* Database callbacks arrive outside the request's pending accounting:
 * route them through wreq_complete() so the request stays alive. */
struct wauth_step {
    void (*fn)(struct wauth_op *, const struct weft_db_res *);
    struct wauth_op *op;
    const struct weft_db_res *res;
};

static void wauth_step_call(struct weft_req *r, void *ctx)
{
    struct wauth_step *s = ctx;

    (void)r;
    s->fn(s->op, s->res);
}

#define WAUTH_STEP(name, fn)                                                 \
    static void name(struct wdb_tx *tx, const struct weft_db_res *res,        \
                     void *arg)                                              \
    {                                                                        \
        struct wauth_step s = {fn, arg, res};                                \
        (void)tx;                                                            \
        wreq_complete(((struct wauth_op *)arg)->r, wauth_step_call, &s);     \
    }

/* A new session id (the refresh-token family): a random UUID. */
static void wauth_new_sid(char out[WJWT_SID_MAX])
{
    unsigned char b[16];

    randombytes_buf(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, WJWT_SID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
             b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* The claims of an access token for the account row (wauth_user_cols
 * first) in session `sid`. */
static void wauth_claims(struct wauth_op *op, const PGresult *res,
                         const char *sid)
{
    json_t *roles;

    wjwt_claims_init(&op->claims, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                     wauth.issuer, wauth.audience, time(NULL),
                     wauth.access_ttl_s);
    roles = wauth_roles(PQgetvalue(res, 0, 4), &op->claims);
    json_decref(roles);
    op->claims.sv = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    snprintf(op->claims.sid, sizeof(op->claims.sid), "%s", sid);
}

/* Send the signed-in answer: an access token and a new refresh token
 * (already stored), in the body or as cookies. */
static void wauth_answer(struct wauth_op *op, int status)
{
    struct weft_req *r = op->r;
    char *access = NULL, csrf[WAUTH_CSRF_MAX];
    json_t *body;

    if (wjwt_sign(wauth.key, wauth.keylen, &op->claims, &access) != 0) {
        wreq_reply_error(r, 500, "internal", "cannot sign the token");
        return;
    }
    if (op->cookie) {
        wauth_csrf_make(op->claims.sid, csrf);
        wauth_cookie(r, "weft_access", access, wauth.access_ttl_s, 1, NULL);
        wauth_cookie(r, "weft_refresh", op->refresh,
                     (long)(wauth.refresh_ttl_ms / 1000), 1, "/api/auth");
        wauth_cookie(r, "weft_csrf", csrf, (long)(wauth.refresh_ttl_ms / 1000),
                     0, NULL);
        body = json_pack("{s:O, s:s}", "user", op->user, "csrf_token", csrf);
    } else {
        body = json_pack("{s:O, s:s, s:s, s:I, s:s}", "user", op->user,
                         "access_token", access, "token_type", "Bearer",
                         "expires_in", (json_int_t)wauth.access_ttl_s,
                         "refresh_token", op->refresh);
    }
    free(access);
    if (body == NULL) {
        wreq_reply_error(r, 500, "internal", "out of memory");
        return;
    }
    evbuffer_add_printf(r->rhdrs, "Cache-Control: no-store\r\n");
    wreq_reply_json(r, status, body);
    json_decref(body);
}

static void wauth_issued(struct wauth_op *op, const struct weft_db_res *res)
{
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    wauth_answer(op, op->found == 201 ? 201 : 200);
    wauth_op_free(op);
}
WAUTH_STEP(wauth_issued_cb, wauth_issued)

/* The user row is in `res` (wauth_user_cols first): store a new refresh
 * token in a new family and answer. */
static void wauth_issue(struct wauth_op *op, const PGresult *res)
{
    unsigned char h[WTOK_HASHLEN];
    char hex[2 * WTOK_HASHLEN + 1], ttl[64];
    char sid[WJWT_SID_MAX];
    const char *p[4] = {hex, PQgetvalue(res, 0, 0), ttl, sid};

    json_decref(op->user);
    op->user = wauth_user_json(res, 0);
    wauth_new_sid(sid);
    wauth_claims(op, res, sid);
    if (op->user == NULL || wtok_new(op->refresh) != 0 ||
        wtok_hash(op->refresh, h) != 0) {
        wreq_reply_error(op->r, 500, "internal", "cannot make a token");
        wauth_op_free(op);
        return;
    }
    wtok_hex(h, hex);
    snprintf(ttl, sizeof(ttl), "%lld milliseconds", wauth.refresh_ttl_ms);
    wauth_query(op,
                "INSERT INTO weft_refresh_tokens (token_hash, user_id, family,"
                " expires_at) VALUES ($1, $2, $4::uuid,"
                " now() + $3::interval)",
                4, p, wauth_issued_cb);
}

/* ---- register ----------------------------------------------------------- */

static void wauth_registered(struct wauth_op *op, const struct weft_db_res *res)
{
    const char *constraint;

    if (res == NULL) {
        wauth_op_free(op); /* a refused signup step answered already */
        return;
    }
    if (res->error != NULL && res->sqlstate != NULL &&
        strcmp(res->sqlstate, "23505") == 0) {
        constraint = PQresultErrorField(res->res, PG_DIAG_CONSTRAINT_NAME);
        /* Saying that an address has an account is a choice: an honest
         * answer lets people who forgot they signed up sign in instead,
         * and the alternative (a neutral answer) needs a mail round trip
         * this platform does not have. The enumeration it allows goes
         * at register_rate per address like every registration attempt
         * (README, "Identity"). */
        if (constraint != NULL &&
            (strcmp(constraint, "weft_users_username") == 0 ||
             strcmp(constraint, "weft_users_username_skeleton") == 0))
            wreq_reply_error(op->r, 409, "username_taken",
                             "that username is taken");
        else
            wreq_reply_error(op->r, 409, "email_taken",
                             "an account with that email exists");
        wauth_op_free(op);
        return;
    }
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    op->found = 201;
    wauth_issue(op, res->res);
}

/* The registration's transaction ended (signup.c). */
static void wauth_signed_up(struct weft_req *r, const struct weft_db_res *res,
                            int status, const char *code, const char *message,
                            void *arg)
{
    if (status != 0) {
        wreq_reply_error(r, status, code, message);
        res = NULL;
    }
    wauth_registered(arg, res);
}

static void wauth_hash_work(void *arg)
{
    struct wauth_op *op = arg;

    op->ok = wpw_hash(&wauth.gate, op->password, strlen(op->password),
                      op->hash) == 0;
}

static void wauth_hashed(weft_req *r, void *arg)
{
    struct wauth_op *op = arg;
    const char *p[5] = {op->email, op->uname, op->display, op->hash,
                        op->skel};
    char sql[640];

    if (!op->ok) {
        wreq_reply_error(r, 503, "unavailable", "cannot hash the password");
        wauth_op_free(op);
        return;
    }
    snprintf(sql, sizeof(sql),
             "INSERT INTO weft_users (email, username, display_name,"
             " password_hash, username_skeleton) VALUES ($1, $2, $3, $4, $5)"
             " RETURNING %s",
             wauth_user_cols);
    /* One transaction with the plugins' signup steps (weft_on_signup). */
    if (wsignup_start(r, sql, 5, p, op->in, wauth_signed_up, op) != 0) {
        wdb_reply_error(r, NULL);
        wauth_op_free(op);
    }
}

static int wauth_register(weft_req *r)
{
    struct wauth_op *op;
    /* The rate-limit key: behind a trusted proxy the client it names, or
     * every client would share the proxy's buckets. */
    const char *addr = wreq_client_ip(r);
    char msg[160];
    const char *why = NULL, *pwhy = NULL;

    if (!wauth_limit(r, "register", addr, wauth.register_rate))
        return WEFT_OK;
    op = wauth_op_new(r);
    if (op == NULL)
        return WEFT_OK;
    op->email = wauth_jstr(op->in, "email");
    op->username = wauth_jstr(op->in, "username");
    op->display = wauth_jstr(op->in, "display_name");
    op->password = wauth_jstr(op->in, "password");
    op->cookie = wauth_jstr(op->in, "session") != NULL &&
                 strcmp(wauth_jstr(op->in, "session"), "cookie") == 0;
    why = wauth_check_email(op->email);
    if (why == NULL)
        why = wname_username(op->username, op->uname, op->skel);
    if (why == NULL)
        why = wname_display(op->display);
    if (why == NULL && op->password == NULL)
        why = "password: required";
    if (why == NULL &&
        !wpw_policy_ok(op->password, strlen(op->password), &pwhy)) {
        snprintf(msg, sizeof(msg), "password: %s (8 to 1024 bytes of UTF-8)",
                 pwhy ? pwhy : "not acceptable");
        why = msg;
    }
    if (why != NULL) {
        wreq_reply_error(r, 400, "invalid", why);
        wauth_op_free(op);
        return WEFT_OK;
    }
    if (wreq_defer_on(r, NULL, wauth_hash_work, wauth_hashed, op) != WEFT_OK) {
        wauth_op_free(op);
        return wreq_reply_error(r, 503, "busy", "try again");
    }
    return WEFT_OK;
}

/* ---- login -------------------------------------------------------------- */

static void wauth_verify_work(void *arg)
{
    struct wauth_op *op = arg;
    size_t n = strlen(op->password);

    /* Unknown accounts cost the same as wrong passwords. */
    op->ok = op->found ? wpw_verify(&wauth.gate, op->stored, op->password,
                                    n) == 0
                       : (wpw_verify_dummy(&wauth.gate, op->password, n), 0);
}

/* Recent wrong passwords for an account, from anywhere, slow its sign-ins
 * down (up to [auth] login_slow_max) but never refuse them: refusing by
 * account alone would let anyone lock its owner out. Refusals are by
 * address, and by (account, address). */
static void wauth_login_failed(struct wauth_op *op)
{
    char k[WRL_KEY_MAX];

    snprintf(k, sizeof(k), "login-fail:%s", op->acct);
    if (wrl_take(wauth.rl, k, wauth.login_account_rate / 60.0,
                 wauth.login_account_rate, wrl_now(), NULL) < 0)
        wlog(WLOG_WARN, "auth", "cannot count a failed sign-in");
}

static long wauth_login_delay_ms(const struct wauth_op *op)
{
    char k[WRL_KEY_MAX];
    double burst = wauth.login_account_rate, level;

    snprintf(k, sizeof(k), "login-fail:%s", op->acct);
    level = wrl_level(wauth.rl, k, burst / 60.0, burst, wrl_now());
    if (level < 0 || level >= burst)
        return 0;
    return (long)((double)wauth.login_slow_max_ms * (burst - level) / burst);
}

static void wauth_login_checked(weft_req *r, void *arg)
{
    struct wauth_op *op = arg;
    PGresult *row = op->row;

    if (!op->ok) {
        wauth_login_failed(op);
        wreq_reply_error(r, 401, "invalid_credentials",
                         "wrong email or password");
        wauth_op_free(op);
        return;
    }
    op->row = NULL; /* wauth_issue() may free `op`; the row is ours now */
    wauth_issue(op, row);
    PQclear(row);
}

static void wauth_login_found(struct wauth_op *op,
                              const struct weft_db_res *res)
{
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    op->found = PQntuples(res->res) > 0;
    if (op->found) {
        snprintf(op->stored, sizeof(op->stored), "%s",
                 PQgetvalue(res->res, 0, 7));
        /* Keep the row for wauth_issue(): the result is freed after this
         * callback, so copy what is needed into a fresh PGresult. */
        op->row = PQcopyResult(res->res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
        if (op->row == NULL) {
            wreq_reply_error(op->r, 503, "unavailable", "out of memory");
            wauth_op_free(op);
            return;
        }
    }
    if (wreq_defer_on(op->r, NULL, wauth_verify_work, wauth_login_checked,
                      op) != WEFT_OK) {
        wreq_reply_error(op->r, 503, "busy", "try again");
        wauth_op_free(op);
    }
}
WAUTH_STEP(wauth_login_found_cb, wauth_login_found)

static void wauth_login_go(struct wauth_op *op)
{
    char sql[640];
    const char *p[1] = {op->email};

    snprintf(sql, sizeof(sql),
             "SELECT %s, password_hash FROM weft_users"
             " WHERE lower(email) = lower($1)",
             wauth_user_cols);
    wauth_query(op, sql, 1, p, wauth_login_found_cb);
}

static void wauth_login_resume(struct weft_req *r, void *arg)
{
    (void)r;
    wauth_login_go(arg);
}

static void wauth_login_slowed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wreq_complete(((struct wauth_op *)arg)->r, wauth_login_resume, arg);
}

static int wauth_login(weft_req *r)
{
    struct wauth_op *op;
    const char *addr = wreq_client_ip(r);
    char key[WRL_KEY_MAX];
    const char *session;
    long delay;

    if (!wauth_limit(r, "login", addr, wauth.login_rate))
        return WEFT_OK;
    op = wauth_op_new(r);
    if (op == NULL)
        return WEFT_OK;
    op->email = wauth_jstr(op->in, "email");
    op->password = wauth_jstr(op->in, "password");
    session = wauth_jstr(op->in, "session");
    op->cookie = session != NULL && strcmp(session, "cookie") == 0;
    if (op->email == NULL || op->password == NULL ||
        strlen(op->email) > WAUTH_EMAIL_MAX ||
        strlen(op->password) > WPW_MAX) {
        wreq_reply_error(r, 400, "invalid", "email and password are required");
        wauth_op_free(op);
        return WEFT_OK;
    }
    for (size_t i = 0; i <= strlen(op->email); i++)
        op->acct[i] = (char)tolower((unsigned char)op->email[i]);
    snprintf(key, sizeof(key), "%s|%s", op->acct, addr);
    if (!wauth_limit(r, "login-account", key, wauth.login_account_rate)) {
        wauth_op_free(op);
        return WEFT_OK;
    }
    delay = wauth_login_delay_ms(op);
    if (delay > 0) {
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        wreq_pending_add(r);
        if (event_base_once(r->loop->base, -1, EV_TIMEOUT, wauth_login_slowed,
                            op, &tv) == 0)
            return WEFT_OK;
        r->pending--;
        wreq_reply_error(r, 503, "busy", "try again");
        wauth_op_free(op);
        return WEFT_OK;
    }
    wauth_login_go(op);
    return WEFT_OK;
}

/* ---- refresh, logout ---------------------------------------------------- */

/* The refresh token from the body, or from the cookie (then CSRF applies).
 * Returns 0, or -1 after answering. */
static int wauth_refresh_token(struct wauth_op *op, char *out)
{
    struct weft_req *r = op->r;
    const char *t = wauth_jstr(op->in, "refresh_token");
    const char *cookies = whttp_header(&r->head, "Cookie");

    if (t == NULL && cookies != NULL &&
        wcookie_get(cookies, "weft_refresh", out, WTOK_LEN + 1) == 0) {
        /* The CSRF token names the session it was made for: only that
         * family is touched (see the statements' "family" conditions). */
        if (!wauth_csrf_sid(r, op->sid)) {
            wreq_reply_error(r, 403, "csrf",
                             "missing or wrong X-CSRF-Token header");
            return -1;
        }
        op->cookie = 1;
        return 0;
    }
    if (t == NULL || strlen(t) != WTOK_LEN) {
        wreq_reply_error(r, 401, "invalid_token", "no valid refresh token");
        return -1;
    }
    memcpy(out, t, WTOK_LEN + 1);
    return 0;
}

/* The body may be empty for cookie clients: accept that as {}. */
static struct wauth_op *wauth_op_new_lenient(struct weft_req *r)
{
    struct wauth_op *op;
    size_t len = 0;

    r->api->req_body(r, &len);
    if (len > 0)
        return wauth_op_new(r);
    if (!wauth.on || !wdb_enabled()) {
        wreq_reply_error(r, 503, "unavailable",
                         "identity needs the database, which is disabled");
        return NULL;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL || (op->in = json_object()) == NULL) {
        free(op);
        wreq_reply_error(r, 503, "unavailable", "out of memory");
        return NULL;
    }
    op->r = r;
    return op;
}

static void wauth_reuse_checked(struct wauth_op *op,
                                const struct weft_db_res *res)
{
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    if (PQntuples(res->res) > 0 && atoi(PQgetvalue(res->res, 0, 0)) > 0) {
        wlog_rid(WLOG_WARN, "auth", op->r->rid,
                 "a rotated refresh token was used again: its family is "
                 "revoked");
        wreq_reply_error(op->r, 401, "token_reused",
                         "this refresh token was already used; sign in "
                         "again");
    } else {
        wreq_reply_error(op->r, 401, "invalid_token",
                         "the refresh token is not valid");
    }
    if (op->cookie)
        wauth_clear_cookies(op->r);
    wauth_op_free(op);
}
WAUTH_STEP(wauth_reuse_checked_cb, wauth_reuse_checked)

static void wauth_rotated(struct wauth_op *op, const struct weft_db_res *res)
{
    const char *p[1] = {op->hash};

    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    if (PQntuples(res->res) == 1) {
        /* The new token is stored: answer with it. */
        op->user = wauth_user_json(res->res, 0);
        wauth_claims(op, res->res, PQgetvalue(res->res, 0, 7));
        wauth_answer(op, 200);
        wauth_op_free(op);
        return;
    }
    /* Not rotatable: unknown, expired, revoked, or already used. In the
     * last case the token was stolen (or replayed): revoke its family. */
    wauth_query(op,
                "WITH t AS (SELECT family FROM weft_refresh_tokens"
                "  WHERE token_hash = $1 AND used_at IS NOT NULL),"
                " r AS (UPDATE weft_refresh_tokens SET revoked_at = now()"
                "  WHERE family IN (SELECT family FROM t)"
                "  AND revoked_at IS NULL RETURNING 1)"
                " SELECT count(*) FROM t",
                1, p, wauth_reuse_checked_cb);
}
WAUTH_STEP(wauth_rotated_cb, wauth_rotated)

static int wauth_refresh(weft_req *r)
{
    struct wauth_op *op;
    const char *addr = wreq_client_ip(r);
    char tok[WTOK_LEN + 1], newhex[2 * WTOK_HASHLEN + 1], ttl[64],
        sql[1024];
    unsigned char h[WTOK_HASHLEN], nh[WTOK_HASHLEN];
    const char *p[4];

    if (!wauth_limit(r, "refresh", addr, wauth.refresh_rate))
        return WEFT_OK;
    op = wauth_op_new_lenient(r);
    if (op == NULL)
        return WEFT_OK;
    if (wauth_refresh_token(op, tok) != 0) {
        wauth_op_free(op);
        return WEFT_OK;
    }
    if (wtok_hash(tok, h) != 0) {
        wreq_reply_error(r, 401, "invalid_token", "the refresh token is not "
                                                  "valid");
        wauth_op_free(op);
        return WEFT_OK;
    }
    wtok_hex(h, op->hash); /* op->hash holds the presented token's hash */
    if (wtok_new(op->refresh) != 0 || wtok_hash(op->refresh, nh) != 0) {
        wauth_op_free(op);
        return wreq_reply_error(r, 500, "internal", "no randomness");
    }
    wtok_hex(nh, newhex);
    snprintf(ttl, sizeof(ttl), "%lld milliseconds", wauth.refresh_ttl_ms);
    /* One statement: mark the presented token used (only if it is live),
     * store its successor in the same family, return the user. Two
     * concurrent uses serialise on the row; the loser sees it used. */
    snprintf(sql, sizeof(sql),
             "WITH old AS (UPDATE weft_refresh_tokens SET used_at = now()"
             "  WHERE token_hash = $1 AND used_at IS NULL"
             "  AND revoked_at IS NULL AND expires_at > now()"
             "  AND ($4 = '' OR family::text = $4)"
             "  RETURNING user_id, family),"
             " ins AS (INSERT INTO weft_refresh_tokens (token_hash, user_id,"
             "  family, expires_at) SELECT $2, user_id, family,"
             "  now() + $3::interval FROM old RETURNING user_id, family)"
             " SELECT u.id, u.email, u.username, u.display_name, u.roles, "
             WAUTH_CREATED("u.") ", u.session_version, ins.family::text"
             "  FROM weft_users u JOIN ins ON u.id = ins.user_id");
    p[0] = op->hash;
    p[1] = newhex;
    p[2] = ttl;
    p[3] = op->sid;
    wauth_query(op, sql, 4, p, wauth_rotated_cb);
    return WEFT_OK;
}

static void wauth_logged_out(struct wauth_op *op, const struct weft_db_res *res)
{
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    /* This node at once; the others by the trigger's NOTIFY. */
    for (int i = 0; i < PQntuples(res->res); i++)
        wsess_forget(strtoll(PQgetvalue(res->res, i, 0), NULL, 10));
    wauth_clear_cookies(op->r);
    wreq_reply(op->r, 204, NULL, "", 0);
    wauth_op_free(op);
}
WAUTH_STEP(wauth_logged_out_cb, wauth_logged_out)

/* Logout ends the refresh token's family, and bumps the account's session
 * version: the access token in hand (and any other of the account's)
 * stops working on the next request. Other devices keep their refresh
 * tokens and get new access tokens on their next refresh. */
static int wauth_logout(weft_req *r)
{
    struct wauth_op *op = wauth_op_new_lenient(r);
    char tok[WTOK_LEN + 1], uid[32];
    unsigned char h[WTOK_HASHLEN];
    const char *p[3];

    if (op == NULL)
        return WEFT_OK;
    snprintf(uid, sizeof(uid), "%lld", (long long)wauth_user(r));
    if (r->user != NULL && wauth_jstr(op->in, "refresh_token") == NULL &&
        !r->via_cookie) {
        op->hash[0] = '\0'; /* a Bearer logout: the token's account */
    } else if (wauth_refresh_token(op, tok) != 0 ||
               wtok_hash(tok, h) != 0) {
        if (op->r->replied || r->user == NULL) {
            /* Nothing to revoke: still forget the cookies. */
            if (!op->r->replied) {
                wauth_clear_cookies(r);
                wreq_reply(r, 204, NULL, "", 0);
            }
            wauth_op_free(op);
            return WEFT_OK;
        }
        op->hash[0] = '\0'; /* only the access token's account */
    } else {
        wtok_hex(h, op->hash);
    }
    p[0] = op->hash;
    p[1] = op->sid;
    p[2] = uid;
    wauth_query(op,
                "WITH f AS (SELECT family, user_id FROM weft_refresh_tokens"
                "  WHERE token_hash = $1 AND ($2 = '' OR family::text = $2)),"
                " x AS (UPDATE weft_refresh_tokens SET revoked_at = now()"
                "  WHERE family IN (SELECT family FROM f)"
                "  AND revoked_at IS NULL)"
                " UPDATE weft_users SET session_version = session_version + 1"
                " WHERE id IN (SELECT user_id FROM f) OR id = $3::bigint"
                " RETURNING id",
                3, p, wauth_logged_out_cb);
    return WEFT_OK;
}

/* ---- me, password ------------------------------------------------------ */

static void wauth_me_found(struct wauth_op *op, const struct weft_db_res *res)
{
    json_t *body;

    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    if (PQntuples(res->res) == 0) {
        wsess_forget(op->r->user->sub); /* before its NOTIFY, maybe */
        wreq_reply_error(op->r, 401, "unauthorized", "the account is gone");
        wauth_op_free(op);
        return;
    }
    body = json_pack("{s:o}", "user", wauth_user_json(res->res, 0));
    wreq_reply_json(op->r, 200, body);
    json_decref(body);
    wauth_op_free(op);
}
WAUTH_STEP(wauth_me_found_cb, wauth_me_found)

static int wauth_me(weft_req *r)
{
    struct wauth_op *op;
    char id[32], sql[640];
    const char *p[1] = {id};

    if (!wdb_enabled())
        return wreq_reply_error(r, 503, "unavailable",
                                "identity needs the database");
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        return wreq_reply_error(r, 503, "unavailable", "out of memory");
    op->r = r;
    snprintf(id, sizeof(id), "%lld", (long long)r->user->sub);
    snprintf(sql, sizeof(sql), "SELECT %s FROM weft_users WHERE id = $1",
             wauth_user_cols);
    wauth_query(op, sql, 1, p, wauth_me_found_cb);
    return WEFT_OK;
}

static void wauth_password_done(struct wauth_op *op,
                                const struct weft_db_res *res)
{
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    /* The trigger bumped the session version: forget it here at once. */
    wsess_forget(op->r->user->sub);
    wreq_reply(op->r, 204, NULL, "", 0);
    wauth_op_free(op);
}
WAUTH_STEP(wauth_password_done_cb, wauth_password_done)

static void wauth_password_work(void *arg)
{
    struct wauth_op *op = arg;

    op->ok = op->found &&
             wpw_verify(&wauth.gate, op->stored, op->password,
                        strlen(op->password)) == 0 &&
             wpw_hash(&wauth.gate, op->newpw, strlen(op->newpw), op->hash) ==
                 0;
}

static void wauth_password_checked(weft_req *r, void *arg)
{
    struct wauth_op *op = arg;
    char id[32];
    const char *p[2] = {id, op->hash};

    if (!op->ok) {
        wreq_reply_error(r, 401, "invalid_credentials",
                         "the current password is wrong");
        wauth_op_free(op);
        return;
    }
    snprintf(id, sizeof(id), "%lld", (long long)r->user->sub);
    /* New password, and every session of the account ends. */
    wauth_query(op,
                "WITH u AS (UPDATE weft_users SET password_hash = $2,"
                " updated_at = now() WHERE id = $1 RETURNING id)"
                " UPDATE weft_refresh_tokens SET revoked_at = now()"
                " WHERE user_id IN (SELECT id FROM u) AND revoked_at IS NULL",
                2, p, wauth_password_done_cb);
}

static void wauth_password_found(struct wauth_op *op,
                                 const struct weft_db_res *res)
{
    if (res->error != NULL) {
        wauth_db_failed(op, res);
        return;
    }
    op->found = PQntuples(res->res) > 0;
    if (op->found)
        snprintf(op->stored, sizeof(op->stored), "%s",
                 PQgetvalue(res->res, 0, 0));
    if (wreq_defer_on(op->r, NULL, wauth_password_work,
                      wauth_password_checked, op) != WEFT_OK) {
        wreq_reply_error(op->r, 503, "busy", "try again");
        wauth_op_free(op);
    }
}
WAUTH_STEP(wauth_password_found_cb, wauth_password_found)

static int wauth_password(weft_req *r)
{
    struct wauth_op *op = wauth_op_new(r);
    const char *why = NULL;
    char id[32];
    const char *p[1] = {id};

    if (op == NULL)
        return WEFT_OK;
    op->password = wauth_jstr(op->in, "current_password");
    op->newpw = wauth_jstr(op->in, "new_password");
    if (op->password == NULL || strlen(op->password) > WPW_MAX ||
        op->newpw == NULL ||
        !wpw_policy_ok(op->newpw, strlen(op->newpw), &why)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "new_password: %s",
                 why ? why : "current_password and new_password are required");
        wreq_reply_error(r, 400, "invalid", msg);
        wauth_op_free(op);
        return WEFT_OK;
    }
    snprintf(id, sizeof(id), "%lld", (long long)r->user->sub);
    wauth_query(op, "SELECT password_hash FROM weft_users WHERE id = $1", 1, p,
                wauth_password_found_cb);
    return WEFT_OK;
}

/* ---- for plugins -------------------------------------------------------- */

int wauth_profile(struct weft_req *r, int64_t id, weft_db_fn cb, void *arg)
{
    char sid[32];
    const char *p[1] = {sid};

    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    return r->api->db_query(r,
                            "SELECT id, username, display_name FROM weft_users"
                            " WHERE id = $1",
                            1, p, cb, arg);
}

int wauth_routes(void)
{
    if (wplug_host_route("POST", "/api/auth/register", 0, wauth_register) ||
        wplug_host_route("POST", "/api/auth/login", 0, wauth_login) ||
        wplug_host_route("POST", "/api/auth/refresh", 0, wauth_refresh) ||
        wplug_host_route("POST", "/api/auth/logout", 0, wauth_logout) ||
        wplug_host_route("GET", "/api/auth/me", WEFT_ROUTE_USER, wauth_me) ||
        wplug_host_route("POST", "/api/auth/password", WEFT_ROUTE_USER,
                         wauth_password))
        return -1;
    return 0;
}

/* ---- command line ------------------------------------------------------- */

/* Create or update one account with a blocking connection. */
static int wauth_upsert(PGconn *pg, const char *email, const char *username,
                        const char *display, const char *password, int admin,
                        struct wdiag *d)
{
    char hash[WPW_HASHLEN], norm[WNAME_MAX], skel[WNAME_MAX];
    const char *p[6] = {email, norm, display, hash,
                        admin ? "{user,admin}" : "{user}", skel};
    const char *why = wname_username(username, norm, skel);
    PGresult *res;
    int ok;

    if (why != NULL) {
        wdiag_add(d, NULL, 0, "%s: %s", email, why);
        return -1;
    }
    if (wpw_hash(&wauth.gate, password, strlen(password), hash) != 0) {
        wdiag_add(d, NULL, 0, "cannot hash the password");
        return -1;
    }
    res = PQexecParams(
        pg,
        "INSERT INTO weft_users (email, username, display_name, password_hash,"
        " roles, username_skeleton) VALUES ($1, $2, $3, $4, $5::text[], $6)"
        " ON CONFLICT ((lower(email))) DO UPDATE SET"
        " password_hash = EXCLUDED.password_hash,"
        " roles = ARRAY(SELECT DISTINCT unnest(weft_users.roles ||"
        " EXCLUDED.roles)), updated_at = now()",
        6, NULL, p, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        wdiag_add(d, NULL, 0, "%s: %s", email, PQresultErrorMessage(res));
    PQclear(res);
    sodium_memzero(hash, sizeof(hash));
    return ok ? 0 : -1;
}

static PGconn *wauth_cli_conn(const char *conninfo, struct wdiag *d)
{
    PGconn *pg = PQconnectdb(conninfo);

    if (PQstatus(pg) != CONNECTION_OK) {
        wdiag_add(d, NULL, 0, "cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

const char *wauth_cli_conninfo;

int wauth_create_admin(const struct wsettings *s, const char *email,
                       const char *password, struct wdiag *d)
{
    char username[33];
    const char *why = NULL;
    size_t n = 0;
    PGconn *pg;
    int rc;

    (void)s;
    if ((why = wauth_check_email(email)) != NULL ||
        !wpw_policy_ok(password, strlen(password), &why)) {
        wdiag_add(d, NULL, 0, "%s", why ? why : "invalid");
        return -1;
    }
    /* The username starts as the address's local part. */
    for (const char *c = email; *c != '@' && n < 24; c++)
        if (isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-')
            username[n++] = *c;
    while (n < 3)
        username[n++] = '_';
    username[n] = '\0';
    pg = wauth_cli_conn(wauth_cli_conninfo, d);
    if (pg == NULL)
        return -1;
    rc = wauth_upsert(pg, email, username, username, password, 1, d);
    PQfinish(pg);
    return rc;
}

int wauth_seed_demo(const struct wsettings *s, struct wdiag *d)
{
    /* The demo accounts of the pipeline seed; "bobpass" is shorter than
     * the password policy allows, which is why this is demo-only. */
    static const char *const demo[][4] = {
        {"alex@mail.com", "alex", "Alex", "alexpass"},
        {"bob@mail.com", "bob", "Bob", "bobpass"}};
    PGconn *pg;
    int rc = 0;

    (void)s;
    pg = wauth_cli_conn(wauth_cli_conninfo, d);
    if (pg == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++)
        rc |= wauth_upsert(pg, demo[i][0], demo[i][1], demo[i][2], demo[i][3],
                           0, d);
    PQfinish(pg);
    return rc;
}

int wauth_backfill(const char *conninfo, struct wdiag *d)
{
    PGconn *pg;
    PGresult *res;
    int rc = 0;

    /* wauth_init() set up the spoof checker (wname_init). */
    pg = wauth_cli_conn(conninfo, d);
    if (pg == NULL)
        return -1;
    res = PQexec(pg, "SELECT id, username FROM weft_users"
                     " WHERE username_skeleton IS NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        wdiag_add(d, NULL, 0, "username skeletons: %s",
                  PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(pg);
        return -1;
    }
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        char norm[WNAME_MAX], skel[WNAME_MAX + 32];
        const char *id = PQgetvalue(res, i, 0);
        const char *p[2] = {skel, id};
        PGresult *u;

        /* A name from before that today's rules refuse, or that looks
         * like an older one, keeps a skeleton of its own (its id makes it
         * unique): it stays usable, and it blocks nobody. */
        if (wname_username(PQgetvalue(res, i, 1), norm, skel) != NULL)
            snprintf(skel, sizeof(skel), "#%s", id);
        u = PQexecParams(pg,
                         "UPDATE weft_users SET username_skeleton ="
                         " CASE WHEN EXISTS (SELECT 1 FROM weft_users"
                         "  WHERE username_skeleton = $1) THEN $1 || '#' || $2"
                         "  ELSE $1 END WHERE id = $2::bigint",
                         2, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(u) != PGRES_COMMAND_OK) {
            wdiag_add(d, NULL, 0, "username skeleton of account %s: %s", id,
                      PQresultErrorMessage(u));
            rc = -1;
        }
        PQclear(u);
    }
    PQclear(res);
    PQfinish(pg);
    return rc;
}
