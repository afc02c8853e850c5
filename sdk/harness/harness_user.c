/*
 * harness_user.c - accounts for tests: register and sign in through
 * /api/auth/..., the way a client does, and keep the tokens.
 *
 * Bodies are built and answers read with jansson (weft.h's JSON library,
 * already a dependency of every plugin), so names with quotes or non-ASCII
 * characters are sent as they are.
 */
#include <weft/harness.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define HU_JSON "Content-Type: application/json\r\n"
#define HU_SHOW_BODY 400 /* bytes of a refusal printed on stderr */

static char *hu_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* Fill `out` from a signed-in answer {"user":{...},"access_token":...}.
 * `email` and `password` are what was sent (copied). 0, or -1 (EPROTO,
 * ENOMEM). */
static int hu_take(const weft_hresp *r, const char *email,
                   const char *password, weft_harness_user *out)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL), *user, *id;
    const char *access, *refresh, *uname, *mail;
    int rc = -1;

    user = json_object_get(j, "user");
    id = json_object_get(user, "id");
    access = json_string_value(json_object_get(j, "access_token"));
    refresh = json_string_value(json_object_get(j, "refresh_token"));
    uname = json_string_value(json_object_get(user, "username"));
    mail = json_string_value(json_object_get(user, "email"));
    if (!json_is_integer(id) || access == NULL || *access == '\0' ||
        uname == NULL) {
        fprintf(stderr, "weft-harness: not a signed-in answer: %.*s\n",
                HU_SHOW_BODY, r->body != NULL ? r->body : "");
        errno = EPROTO;
        goto done;
    }
    out->id = (long long)json_integer_value(id);
    out->username = hu_strdup(uname);
    out->email = hu_strdup(mail != NULL ? mail : email);
    out->password = hu_strdup(password);
    out->access_token = hu_strdup(access);
    out->refresh_token = hu_strdup(refresh);
    if (asprintf(&out->auth, "Authorization: Bearer %s\r\n", access) < 0)
        out->auth = NULL;
    if (out->username == NULL || out->email == NULL ||
        (password != NULL && out->password == NULL) ||
        out->access_token == NULL || (refresh != NULL &&
                                      out->refresh_token == NULL) ||
        out->auth == NULL) {
        weft_harness_user_free(out);
        errno = ENOMEM;
        goto done;
    }
    rc = 0;
done:
    json_decref(j);
    return rc;
}

/* POST `body` to `path`; `want` is the success status. Returns as the
 * public functions. */
static int hu_post(weft_harness *h, const char *path, const char *body,
                   int want, const char *email, const char *password,
                   weft_harness_user *out)
{
    weft_hresp r;
    int rc;

    if (weft_harness_request(h, "POST", path, HU_JSON, body, strlen(body),
                             &r) != 0)
        return -1;
    if (r.status != want) {
        fprintf(stderr, "weft-harness: POST %s: %d %.*s\n", path, r.status,
                HU_SHOW_BODY, r.body);
        rc = r.status > 0 ? r.status : -1;
        if (rc == -1)
            errno = EPROTO;
    } else {
        rc = hu_take(&r, email, password, out);
    }
    weft_hresp_free(&r);
    return rc;
}

int weft_harness_user_register_json(weft_harness *h, const char *body_json,
                                    weft_harness_user *out)
{
    json_t *j;
    char *email = NULL, *password = NULL;
    int rc;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (h == NULL || body_json == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    /* Keep what a later sign-in needs; the body may be anything, even
     * something weftd refuses (that is for weftd to answer). */
    j = json_loads(body_json, 0, NULL);
    email = hu_strdup(json_string_value(json_object_get(j, "email")));
    password = hu_strdup(json_string_value(json_object_get(j, "password")));
    json_decref(j);
    rc = hu_post(h, "/api/auth/register", body_json, 201, email, password,
                 out);
    free(email);
    free(password);
    return rc;
}

int weft_harness_user_register(weft_harness *h, const char *username,
                               const char *password, weft_harness_user *out)
{
    char *email = NULL, *pw = NULL, *body = NULL;
    json_t *j = NULL;
    int rc = -1;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (h == NULL || username == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (asprintf(&email, "%s@example.com", username) < 0)
        email = NULL;
    if (password == NULL && asprintf(&pw, "%s-password", username) < 0)
        pw = NULL;
    if (email == NULL || (password == NULL && pw == NULL))
        goto nomem;
    j = json_pack("{s:s, s:s, s:s, s:s}", "email", email, "username",
                  username, "display_name", username, "password",
                  password != NULL ? password : pw);
    body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    if (body == NULL)
        goto nomem;
    rc = hu_post(h, "/api/auth/register", body, 201, email,
                 password != NULL ? password : pw, out);
    goto done;
nomem:
    errno = ENOMEM;
done:
    json_decref(j);
    free(body);
    free(email);
    free(pw);
    return rc;
}

int weft_harness_user_login(weft_harness *h, const char *email,
                            const char *password, weft_harness_user *out)
{
    json_t *j;
    char *body;
    int rc;

    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (h == NULL || email == NULL || password == NULL || out == NULL) {
        errno = EINVAL;
        return -1;
    }
    j = json_pack("{s:s, s:s}", "email", email, "password", password);
    body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (body == NULL) {
        errno = ENOMEM;
        return -1;
    }
    rc = hu_post(h, "/api/auth/login", body, 200, email, password, out);
    free(body);
    return rc;
}

void weft_harness_user_free(weft_harness_user *u)
{
    if (u == NULL)
        return;
    free(u->username);
    free(u->email);
    free(u->password);
    free(u->access_token);
    free(u->refresh_token);
    free(u->auth);
    memset(u, 0, sizeof(*u));
}
