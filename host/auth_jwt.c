/* auth_jwt.c - HS256 access tokens: libjwt signs, we verify strictly.
 *
 * What libjwt 1.10.2 does, checked with probes against the Debian build
 * and its source (libjwt/jwt.c, jwt-openssl.c):
 * - jwt_decode() takes the algorithm from the token header, and matches
 *   it case-insensitively ("hs256" is HS256). A token signed HS512 with
 *   our key decodes fine (rc 0, jwt_get_alg() == JWT_ALG_HS512).
 * - With a NULL key (or key_len 0) an HS256 token decodes with rc 0 and
 *   the signature is NOT checked: the key is "scrubbed", the alg becomes
 *   none and jwt_get_alg() then reports JWT_ALG_NONE. An "alg":"none"
 *   token is accepted with a NULL key and refused (EINVAL) with a key.
 * - The HMAC is compared with strcmp(): not constant time.
 * - No claim is checked (exp, nbf, iat, iss, aud, sub): all ours.
 * - jwt_set_alg() accepts a 1-byte HS256 key.
 * - Each segment is decoded into alloca(strlen + 4): the token length
 *   must be bounded before jwt_decode() sees it.
 * - The payload is parsed without JSON_REJECT_DUPLICATES.
 * So we check the header and the HMAC ourselves (libsodium, constant
 * time), then let jwt_decode() with the key agree, then read the claims
 * from our own strict parse of the payload. */
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_jwt.h"

/* A decoded segment is at most 3/4 of the token. */
#define WJWT_SEG_MAX (WJWT_TOKEN_MAX / 4 * 3 + 3)
#define WJWT_LEEWAY_MAX 86400

/* sodium_init() takes a global lock on every call; verify runs on every
 * request of every loop, so initialise once. */
static pthread_once_t wjwt_once = PTHREAD_ONCE_INIT;
static int wjwt_sodium_rc;

static void wjwt_sodium(void)
{
    wjwt_sodium_rc = sodium_init();
}

static int wjwt_init(void)
{
    pthread_once(&wjwt_once, wjwt_sodium);
    return wjwt_sodium_rc < 0 ? -1 : 0;
}

static int wjwt_role_ok(const char *r)
{
    size_t n = strnlen(r, WJWT_ROLE_MAX);

    if (n == 0 || n >= WJWT_ROLE_MAX)
        return 0;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || strchr("_.:-", *p) != NULL))
            return 0;
    return 1;
}

static int wjwt_jti_ok(const char *j)
{
    if (strnlen(j, WJWT_JTI_LEN + 1) != WJWT_JTI_LEN)
        return 0;
    for (; *j; j++)
        if (!((*j >= '0' && *j <= '9') || (*j >= 'a' && *j <= 'f')))
            return 0;
    return 1;
}

static int wjwt_sid_ok(const char *s)
{
    size_t n = strnlen(s, WJWT_SID_MAX);

    if (n >= WJWT_SID_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
              *s == '-'))
            return 0;
    return 1;
}

static int wjwt_name_ok(const char *s)
{
    size_t n = strnlen(s, WJWT_NAME_MAX);

    return n > 0 && n < WJWT_NAME_MAX;
}

static int wjwt_copy_name(char dst[WJWT_NAME_MAX], const char *src)
{
    if (src == NULL || !wjwt_name_ok(src))
        return -1;
    strcpy(dst, src);
    return 0;
}

int wjwt_claims_init(struct wjwt_claims *c, int64_t sub, const char *iss,
                     const char *aud, time_t now, long ttl_s)
{
    unsigned char raw[WJWT_JTI_LEN / 2];

    memset(c, 0, sizeof(*c));
    if (sub <= 0 || ttl_s <= 0 || now < 0 || wjwt_init() != 0 ||
        wjwt_copy_name(c->iss, iss) != 0 || wjwt_copy_name(c->aud, aud) != 0)
        return -1;
    c->sub = sub;
    c->sv = -1;
    c->iat = c->nbf = (int64_t)now;
    c->exp = (int64_t)now + ttl_s;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(c->jti, sizeof(c->jti), raw, sizeof(raw));
    return 0;
}

int wjwt_role_add(struct wjwt_claims *c, const char *role)
{
    if (c->nroles >= WJWT_ROLES_MAX || !wjwt_role_ok(role))
        return -1;
    strcpy(c->roles[c->nroles++], role);
    return 0;
}

int wjwt_has_role(const struct wjwt_claims *c, const char *role)
{
    for (int i = 0; i < c->nroles; i++)
        if (strcmp(c->roles[i], role) == 0)
            return 1;
    return 0;
}

/* The claims rules shared by sign and verify. */
static int wjwt_claims_ok(const struct wjwt_claims *c)
{
    if (c->sub <= 0 || !wjwt_name_ok(c->iss) || !wjwt_name_ok(c->aud) ||
        !wjwt_jti_ok(c->jti) || c->iat < 0 || c->nbf < 0 || c->exp <= c->iat ||
        c->exp <= c->nbf || c->nroles < 0 || c->nroles > WJWT_ROLES_MAX ||
        c->sv < -1 || !wjwt_sid_ok(c->sid))
        return 0;
    for (int i = 0; i < c->nroles; i++)
        if (!wjwt_role_ok(c->roles[i]))
            return 0;
    return 1;
}

static json_t *wjwt_payload(const struct wjwt_claims *c)
{
    json_t *o = json_object(), *roles = json_array();
    char sub[24];
    int bad = o == NULL || roles == NULL;

    snprintf(sub, sizeof(sub), "%lld", (long long)c->sub);
    for (int i = 0; !bad && i < c->nroles; i++)
        bad |= json_array_append_new(roles, json_string(c->roles[i]));
    if (!bad) {
        bad |= json_object_set_new(o, "roles", roles);
        roles = NULL;
        bad |= json_object_set_new(o, "sub", json_string(sub));
        bad |= json_object_set_new(o, "iss", json_string(c->iss));
        bad |= json_object_set_new(o, "aud", json_string(c->aud));
        bad |= json_object_set_new(o, "iat", json_integer(c->iat));
        bad |= json_object_set_new(o, "nbf", json_integer(c->nbf));
        bad |= json_object_set_new(o, "exp", json_integer(c->exp));
        bad |= json_object_set_new(o, "jti", json_string(c->jti));
        if (c->sv >= 0)
            bad |= json_object_set_new(o, "sv", json_integer(c->sv));
        if (c->sid[0] != '\0')
            bad |= json_object_set_new(o, "sid", json_string(c->sid));
    }
    json_decref(roles);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int wjwt_sign(const unsigned char *key, size_t keylen,
              const struct wjwt_claims *c, char **out)
{
    json_t *payload;
    char *body = NULL, *tok = NULL;
    jwt_t *j = NULL;

    *out = NULL;
    if (keylen < WJWT_KEY_MIN || keylen > WJWT_KEY_MAX || !wjwt_claims_ok(c) ||
        wjwt_init() != 0)
        return -1;
    payload = wjwt_payload(c);
    if (payload == NULL)
        return -1;
    body = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (body != NULL && jwt_new(&j) == 0 && jwt_add_grants_json(j, body) == 0 &&
        jwt_set_alg(j, JWT_ALG_HS256, key, (int)keylen) == 0)
        tok = jwt_encode_str(j);
    jwt_free(j); /* wipes its copy of the key */
    free(body);
    if (tok == NULL)
        return -1;
    /* The bounds on the claims keep tokens far below the limit. */
    if (strlen(tok) > WJWT_TOKEN_MAX) {
        free(tok);
        return -1;
    }
    *out = tok;
    return 0;
}

/* Strict base64url (no padding, canonical) of one segment, then strict
 * JSON: an object, no duplicate keys, no trailing bytes. */
static json_t *wjwt_segment(const char *s, size_t len)
{
    unsigned char buf[WJWT_SEG_MAX];
    size_t n;
    json_t *js;

    if (len == 0 ||
        sodium_base642bin(buf, sizeof(buf), s, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return NULL;
    js = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (js != NULL && !json_is_object(js)) {
        json_decref(js);
        js = NULL;
    }
    return js;
}

static int wjwt_int(json_t *o, const char *name, int64_t *v)
{
    json_t *x = json_object_get(o, name);

    if (!json_is_integer(x))
        return -1;
    *v = json_integer_value(x);
    return 0;
}

static int wjwt_sub(json_t *o, int64_t *sub)
{
    const char *s = json_string_value(json_object_get(o, "sub"));
    char *end;
    long long v;

    /* Canonical: no sign, no leading zero, no blanks, so one user id has
     * one spelling. */
    if (s == NULL || s[0] < '1' || s[0] > '9' || strlen(s) > 19)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return -1;
    *sub = v;
    return 0;
}

static int wjwt_aud(json_t *o, const char *aud)
{
    json_t *a = json_object_get(o, "aud"), *v;
    size_t i;
    int found = 0;

    if (json_is_string(a))
        return strcmp(json_string_value(a), aud) == 0 ? 0 : -1;
    if (!json_is_array(a) || json_array_size(a) > WJWT_ROLES_MAX)
        return -1;
    json_array_foreach (a, i, v) {
        if (!json_is_string(v))
            return -1;
        if (strcmp(json_string_value(v), aud) == 0)
            found = 1;
    }
    return found ? 0 : -1;
}

static int wjwt_roles(json_t *o, struct wjwt_claims *c)
{
    json_t *a = json_object_get(o, "roles"), *v;
    size_t i;

    if (!json_is_array(a) || json_array_size(a) > WJWT_ROLES_MAX)
        return -1;
    json_array_foreach (a, i, v) {
        if (!json_is_string(v) || wjwt_role_add(c, json_string_value(v)) != 0)
            return -1;
    }
    return 0;
}

static int wjwt_header(json_t *h, const char **why)
{
    const char *alg = json_string_value(json_object_get(h, "alg"));
    json_t *typ = json_object_get(h, "typ");

    /* Exactly our algorithm: never the one the token asks for. */
    if (alg == NULL || strcmp(alg, "HS256") != 0) {
        *why = "bad_algorithm";
        return -1;
    }
    if ((typ != NULL && (!json_is_string(typ) ||
                         strcasecmp(json_string_value(typ), "JWT") != 0)) ||
        json_object_get(h, "crit") != NULL) {
        *why = "malformed";
        return -1;
    }
    return 0;
}

static int wjwt_hmac_ok(const unsigned char *key, size_t keylen,
                        const char *token, size_t signed_len, const char *sig,
                        size_t siglen)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES], got[sizeof(mac)];
    size_t n;
    int ok;

    if (sodium_base642bin(got, sizeof(got), sig, siglen, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof(got))
        return 0;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)token,
                                  signed_len);
    crypto_auth_hmacsha256_final(&st, mac);
    ok = crypto_verify_32(mac, got) == 0;
    sodium_memzero(&st, sizeof(st));
    return ok;
}

/* Second opinion from libjwt, always with the key (see the top). */
static int wjwt_libjwt_agrees(const unsigned char *key, size_t keylen,
                              const char *token)
{
    jwt_t *j = NULL;
    int ok;

    ok = jwt_decode(&j, token, key, (int)keylen) == 0 &&
         jwt_get_alg(j) == JWT_ALG_HS256;
    jwt_free(j);
    return ok;
}

static int wjwt_check(const unsigned char *key, size_t keylen,
                      const char *token, const char *iss, const char *aud,
                      time_t now, long leeway, struct wjwt_claims *c,
                      json_t **hp, json_t **pp, const char **why)
{
    const char *d1, *d2, *end, *s;
    size_t tl;
    int64_t t = (int64_t)now;
    json_t *p;

    if (keylen < WJWT_KEY_MIN || keylen > WJWT_KEY_MAX || wjwt_init() != 0) {
        *why = "bad_key";
        return -1;
    }
    if (token == NULL) {
        *why = "malformed";
        return -1;
    }
    tl = strnlen(token, WJWT_TOKEN_MAX + 1);
    if (tl > WJWT_TOKEN_MAX) {
        *why = "too_long";
        return -1;
    }
    end = token + tl;
    d1 = memchr(token, '.', tl);
    d2 = d1 == NULL ? NULL : memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL) {
        *why = "malformed";
        return -1;
    }
    *hp = wjwt_segment(token, (size_t)(d1 - token));
    if (*hp == NULL) {
        *why = "malformed";
        return -1;
    }
    if (wjwt_header(*hp, why) != 0)
        return -1;
    if (!wjwt_hmac_ok(key, keylen, token, (size_t)(d2 - token), d2 + 1,
                      (size_t)(end - d2 - 1))) {
        *why = "bad_signature";
        return -1;
    }
    p = *pp = wjwt_segment(d1 + 1, (size_t)(d2 - d1 - 1));
    if (p == NULL) {
        *why = "malformed";
        return -1;
    }
    /* libjwt parses the payload too, so ask it only once ours parsed. */
    if (!wjwt_libjwt_agrees(key, keylen, token)) {
        *why = "bad_signature";
        return -1;
    }

    if (leeway < 0)
        leeway = 0;
    if (leeway > WJWT_LEEWAY_MAX)
        leeway = WJWT_LEEWAY_MAX;
    if (wjwt_int(p, "exp", &c->exp) != 0) {
        *why = "missing_exp";
        return -1;
    }
    if (t - leeway >= c->exp) {
        *why = "expired";
        return -1;
    }
    if (wjwt_int(p, "nbf", &c->nbf) != 0) {
        *why = "missing_nbf";
        return -1;
    }
    if (c->nbf > t + leeway) {
        *why = "not_yet_valid";
        return -1;
    }
    if (wjwt_int(p, "iat", &c->iat) != 0 || c->iat < 0 || c->iat >= c->exp ||
        c->iat > t + leeway) {
        *why = "bad_iat";
        return -1;
    }
    s = json_string_value(json_object_get(p, "iss"));
    if (wjwt_copy_name(c->iss, iss) != 0 || s == NULL || strcmp(s, iss) != 0) {
        *why = "bad_issuer";
        return -1;
    }
    if (wjwt_copy_name(c->aud, aud) != 0 || wjwt_aud(p, aud) != 0) {
        *why = "bad_audience";
        return -1;
    }
    if (wjwt_sub(p, &c->sub) != 0) {
        *why = "bad_subject";
        return -1;
    }
    if (wjwt_roles(p, c) != 0) {
        *why = "bad_roles";
        return -1;
    }
    s = json_string_value(json_object_get(p, "jti"));
    if (s == NULL || !wjwt_jti_ok(s)) {
        *why = "bad_jti";
        return -1;
    }
    strcpy(c->jti, s);
    c->sv = -1;
    if (json_object_get(p, "sv") != NULL &&
        (wjwt_int(p, "sv", &c->sv) != 0 || c->sv < 0)) {
        *why = "bad_session";
        return -1;
    }
    if (json_object_get(p, "sid") != NULL) {
        s = json_string_value(json_object_get(p, "sid"));
        if (s == NULL || *s == '\0' || !wjwt_sid_ok(s)) {
            *why = "bad_session";
            return -1;
        }
        strcpy(c->sid, s);
    }
    return 0;
}

int wjwt_verify(const unsigned char *key, size_t keylen, const char *token,
                const char *iss, const char *aud, time_t now, long leeway_s,
                struct wjwt_claims *out, const char **why)
{
    struct wjwt_claims c;
    json_t *h = NULL, *p = NULL;
    const char *ignored;
    int rc;

    if (why == NULL)
        why = &ignored;
    memset(&c, 0, sizeof(c));
    rc = wjwt_check(key, keylen, token, iss, aud, now, leeway_s, &c, &h, &p,
                    why);
    json_decref(h);
    json_decref(p);
    if (out != NULL) {
        if (rc == 0)
            *out = c;
        else
            memset(out, 0, sizeof(*out));
    }
    return rc;
}
