/* Access tokens: what we sign we accept; everything else is refused with
 * a stable reason, including the classic algorithm-confusion forgeries. */
#include <jwt.h>
#include <sodium.h>

#include "auth_jwt.h"
#include "unit.h"

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN 32
#define ISS "https://weft.example"
#define AUD "weft-api"
#define NOW 1700000000
#define JTI "0123456789abcdef0123456789abcdef"

/* A payload that verifies at NOW; tests forge variations of it. */
static const char VALID[] =
    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
    "\",\"sub\":\"42\",\"iat\":1700000000,"
    "\"nbf\":1700000000,\"exp\":1700000900,\"jti\":\"" JTI "\","
    "\"roles\":[\"user\"]}";
static const char HS256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static char *b64(const void *p, size_t n)
{
    size_t sz =
        sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(sz);

    sodium_bin2base64(s, sz, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return s;
}

/*
 * Build header.payload.signature by hand. `how`: "HS256" or "HS512" (HMAC
 * under KEY), "none" (empty signature).
 */
static char *forge(const char *header, const char *payload, const char *how)
{
    char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
    char *input, *sig, *tok;
    unsigned char mac[crypto_auth_hmacsha512_BYTES];
    size_t maclen = 0;

    ck_assert_int_ne(asprintf(&input, "%s.%s", h, p), -1);
    if (strcmp(how, "HS256") == 0) {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, KEY, KEYLEN);
        crypto_auth_hmacsha256_update(&st, (unsigned char *)input,
                                      strlen(input));
        crypto_auth_hmacsha256_final(&st, mac);
        maclen = crypto_auth_hmacsha256_BYTES;
    } else if (strcmp(how, "HS512") == 0) {
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, KEY, KEYLEN);
        crypto_auth_hmacsha512_update(&st, (unsigned char *)input,
                                      strlen(input));
        crypto_auth_hmacsha512_final(&st, mac);
        maclen = crypto_auth_hmacsha512_BYTES;
    }
    sig = maclen ? b64(mac, maclen) : strdup("");
    ck_assert_int_ne(asprintf(&tok, "%s.%s", input, sig), -1);
    free(h);
    free(p);
    free(input);
    free(sig);
    return tok;
}

/* Verify at NOW, no leeway; returns the reason ("ok" when valid). */
static const char *check(const char *tok)
{
    struct wjwt_claims c;
    const char *why = "unset";

    if (wjwt_verify(KEY, KEYLEN, tok, ISS, AUD, NOW, 0, &c, &why) == 0)
        return "ok";
    ck_assert_str_ne(why, "unset");
    ck_assert_int_eq(c.sub, 0); /* nothing leaks out of a refusal */
    return why;
}

/* check() for a forged token, freed. */
static const char *check_forged(const char *header, const char *payload,
                                const char *how)
{
    char *tok = forge(header, payload, how);
    const char *why = check(tok);

    free(tok);
    return why;
}

static char *signed_token(void)
{
    struct wjwt_claims c;
    char *tok;

    ck_assert_int_eq(wjwt_claims_init(&c, 42, ISS, AUD, NOW, 900), 0);
    ck_assert_int_eq(wjwt_role_add(&c, "user"), 0);
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), 0);
    return tok;
}

START_TEST(round_trip)
{
    struct wjwt_claims c, v;
    const char *why = NULL;
    char *tok;

    ck_assert_int_eq(
        wjwt_claims_init(&c, 9007199254740993LL, ISS, AUD, NOW, 900), 0);
    ck_assert_int_eq(wjwt_role_add(&c, "user"), 0);
    ck_assert_int_eq(wjwt_role_add(&c, "admin"), 0);
    ck_assert_uint_eq(strlen(c.jti), 32);
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), 0);
    ck_assert_int_eq(strncmp(tok, "eyJ", 3), 0);
    ck_assert_int_eq(
        wjwt_verify(KEY, KEYLEN, tok, ISS, AUD, NOW + 10, 0, &v, &why), 0);
    ck_assert(v.sub == 9007199254740993LL); /* beyond 2^53: exact */
    ck_assert_int_eq(v.nroles, 2);
    ck_assert_str_eq(v.roles[0], "user");
    ck_assert_str_eq(v.roles[1], "admin");
    ck_assert(wjwt_has_role(&v, "admin"));
    ck_assert(!wjwt_has_role(&v, "root"));
    ck_assert_str_eq(v.iss, ISS);
    ck_assert_str_eq(v.aud, AUD);
    ck_assert(v.iat == NOW && v.nbf == NOW && v.exp == NOW + 900);
    ck_assert_str_eq(v.jti, c.jti);
    /* `out` may be NULL */
    ck_assert_int_eq(
        wjwt_verify(KEY, KEYLEN, tok, ISS, AUD, NOW, 0, NULL, &why), 0);
    free(tok);

    /* two tokens for the same claims differ by their jti */
    {
        char *a = signed_token(), *b = signed_token();
        ck_assert_str_ne(a, b);
        free(a);
        free(b);
    }
    /* the hand-built reference payload verifies: forge() is faithful */
    ck_assert_str_eq(check_forged(HS256, VALID, "HS256"), "ok");
    /* no roles is an empty array, fine */
    ck_assert_int_eq(wjwt_claims_init(&c, 1, ISS, AUD, NOW, 60), 0);
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), 0);
    ck_assert_str_eq(check(tok), "ok");
    free(tok);
}
END_TEST

START_TEST(expiry_and_leeway)
{
    struct wjwt_claims c;
    const char *why = NULL;
    char *tok = signed_token(); /* iat = nbf = NOW, exp = NOW + 900 */

#define V(now, leeway)                                                         \
    wjwt_verify(KEY, KEYLEN, tok, ISS, AUD, now, leeway, &c, &why)
    ck_assert_int_eq(V(NOW + 899, 0), 0);
    ck_assert_int_eq(V(NOW + 900, 0), -1); /* exp is the first bad second */
    ck_assert_str_eq(why, "expired");
    ck_assert_int_eq(V(NOW + 3600, 0), -1);
    ck_assert_str_eq(why, "expired");
    ck_assert_int_eq(V(NOW + 929, 30), 0);
    ck_assert_int_eq(V(NOW + 930, 30), -1);
    ck_assert_str_eq(why, "expired");
    /* a clock behind ours: nbf in the future */
    ck_assert_int_eq(V(NOW - 1, 0), -1);
    ck_assert_str_eq(why, "not_yet_valid");
    ck_assert_int_eq(V(NOW - 30, 30), 0);
    ck_assert_int_eq(V(NOW - 31, 30), -1);
    ck_assert_str_eq(why, "not_yet_valid");
    /* negative leeway is no leeway; a huge one is clamped */
    ck_assert_int_eq(V(NOW - 1, -100), -1);
    ck_assert_int_eq(V(NOW + 900 + 86400 + 1, 0x7fffffffL), -1);
    ck_assert_str_eq(why, "expired");
#undef V
    free(tok);
}
END_TEST

START_TEST(time_claims)
{
    /* nbf in the future (beyond no leeway) */
    ck_assert_str_eq(
        check_forged(HS256,
                     "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\","
                     "\"iat\":1700000000,\"nbf\":1700000060,"
                     "\"exp\":1700000900,\"jti\":\"" JTI "\",\"roles\":[]}",
                     "HS256"),
        "not_yet_valid");
    /* missing exp, and exp in forms that are not an integer */
    ck_assert_str_eq(check_forged(HS256,
                                  "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                                  "\",\"sub\":\"42\","
                                  "\"iat\":1700000000,\"nbf\":1700000000,"
                                  "\"jti\":\"" JTI "\",\"roles\":[]}",
                                  "HS256"),
                     "missing_exp");
    ck_assert_str_eq(
        check_forged(HS256,
                     "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\","
                     "\"iat\":1700000000,\"nbf\":1700000000,"
                     "\"exp\":\"1700000900\",\"jti\":\"" JTI "\",\"roles\":[]}",
                     "HS256"),
        "missing_exp");
    ck_assert_str_eq(
        check_forged(HS256,
                     "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\","
                     "\"iat\":1700000000,\"nbf\":1700000000,"
                     "\"exp\":1.7000009e9,\"jti\":\"" JTI "\",\"roles\":[]}",
                     "HS256"),
        "missing_exp");
    ck_assert_str_eq(check_forged(HS256,
                                  "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                                  "\",\"sub\":\"42\","
                                  "\"iat\":1700000000,\"exp\":1700000900,"
                                  "\"jti\":\"" JTI "\",\"roles\":[]}",
                                  "HS256"),
                     "missing_nbf");
    /* iat: missing, from the future, after exp */
    ck_assert_str_eq(check_forged(HS256,
                                  "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                                  "\",\"sub\":\"42\","
                                  "\"nbf\":1700000000,\"exp\":1700000900,"
                                  "\"jti\":\"" JTI "\",\"roles\":[]}",
                                  "HS256"),
                     "bad_iat");
    ck_assert_str_eq(
        check_forged(HS256,
                     "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\","
                     "\"iat\":1700000500,\"nbf\":1700000000,"
                     "\"exp\":1700000900,\"jti\":\"" JTI "\",\"roles\":[]}",
                     "HS256"),
        "bad_iat");
    ck_assert_str_eq(
        check_forged(HS256,
                     "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"42\","
                     "\"iat\":-5,\"nbf\":1700000000,"
                     "\"exp\":1700000900,\"jti\":\"" JTI "\",\"roles\":[]}",
                     "HS256"),
        "bad_iat");
}
END_TEST

START_TEST(tampered_payload)
{
    char *tok = signed_token(), *d1 = strchr(tok, '.'),
         *d2 = strchr(d1 + 1, '.');
    unsigned char json[1024];
    size_t n;
    char *sub, *p64, *forged;

    ck_assert_str_eq(check(tok), "ok");
    ck_assert_int_eq(
        sodium_base642bin(json, sizeof(json) - 1, d1 + 1, (size_t)(d2 - d1 - 1),
                          NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING),
        0);
    json[n] = '\0';
    /* become user 43: still valid JSON, still a valid-looking JWT */
    sub = strstr((char *)json, "\"sub\":\"42\"");
    ck_assert_ptr_nonnull(sub);
    sub[8] = '3';
    p64 = b64(json, n);
    *d1 = '\0';
    ck_assert_int_ne(asprintf(&forged, "%s.%s.%s", tok, p64, d2 + 1), -1);
    ck_assert_str_eq(check(forged), "bad_signature");
    free(forged);
    free(p64);
    free(tok);
}
END_TEST

START_TEST(tampered_signature)
{
    char *tok = signed_token(), *sig = strrchr(tok, '.') + 1;
    size_t n = strlen(tok);

    char first = sig[0];

    ck_assert_uint_eq(strlen(sig), 43);
    sig[0] = first == 'A' ? 'B' : 'A';
    ck_assert_str_eq(check(tok), "bad_signature");
    sig[0] = first;
    ck_assert_str_eq(check(tok), "ok");
    /* the last character carries 2 unused bits: setting one spells the
     * same 32 bytes differently, and that spelling is refused */
    {
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                  "qrstuvwxyz0123456789-_";
        char last = sig[42];
        int v = (int)(strchr(abc, last) - abc);
        ck_assert_int_eq(v & 3, 0);
        sig[42] = abc[v | 1];
        ck_assert_str_eq(check(tok), "bad_signature");
        sig[42] = last;
        ck_assert_str_eq(check(tok), "ok");
    }
    /* shortened, emptied, padded */
    tok[n - 1] = '\0';
    ck_assert_str_eq(check(tok), "bad_signature");
    sig[0] = '\0';
    ck_assert_str_eq(check(tok), "bad_signature");
    free(tok);
    tok = signed_token();
    {
        char *padded;
        ck_assert_int_ne(asprintf(&padded, "%s=", tok), -1);
        ck_assert_str_eq(check(padded), "bad_signature");
        free(padded);
    }
    free(tok);
    /* signed under another key */
    {
        static const unsigned char other[] = "another key of at least 32 bytes";
        struct wjwt_claims c;
        char *t;
        ck_assert_int_eq(wjwt_claims_init(&c, 42, ISS, AUD, NOW, 900), 0);
        ck_assert_int_eq(wjwt_sign(other, 32, &c, &t), 0);
        ck_assert_str_eq(check(t), "bad_signature");
        free(t);
    }
}
END_TEST

START_TEST(alg_none)
{
    ck_assert_str_eq(
        check_forged("{\"alg\":\"none\",\"typ\":\"JWT\"}", VALID, "none"),
        "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"alg\":\"none\"}", VALID, "none"),
                     "bad_algorithm");
    ck_assert_str_eq(
        check_forged("{\"alg\":\"None\",\"typ\":\"JWT\"}", VALID, "none"),
        "bad_algorithm");
    ck_assert_str_eq(
        check_forged("{\"alg\":\"NONE\",\"typ\":\"JWT\"}", VALID, "HS256"),
        "bad_algorithm");
    /* a none header carrying a real HS256 signature */
    ck_assert_str_eq(
        check_forged("{\"alg\":\"none\",\"typ\":\"JWT\"}", VALID, "HS256"),
        "bad_algorithm");
}
END_TEST

START_TEST(other_algorithms)
{
    jwt_t *j;
    char *tok;

    /* HS512 under the very same key, made by libjwt itself */
    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_int_eq(jwt_add_grants_json(j, VALID), 0);
    ck_assert_int_eq(jwt_set_alg(j, JWT_ALG_HS512, KEY, KEYLEN), 0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    ck_assert_ptr_nonnull(tok);
    ck_assert_str_eq(check(tok), "bad_algorithm");
    free(tok);
    ck_assert_str_eq(
        check_forged("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", VALID, "HS512"),
        "bad_algorithm");
    ck_assert_str_eq(
        check_forged("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", VALID, "HS256"),
        "bad_algorithm");
    /* RS256 label with an HMAC made from the key (the public-key-as-secret
     * confusion) */
    ck_assert_str_eq(
        check_forged("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", VALID, "HS256"),
        "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"alg\":\"ES256\"}", VALID, "HS256"),
                     "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"alg\":\"PS256\"}", VALID, "HS256"),
                     "bad_algorithm");
    /* libjwt compares case-insensitively; we do not */
    ck_assert_str_eq(
        check_forged("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", VALID, "HS256"),
        "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"alg\":\"HS256 \"}", VALID, "HS256"),
                     "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"typ\":\"JWT\"}", VALID, "HS256"),
                     "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"alg\":256}", VALID, "HS256"),
                     "bad_algorithm");
    ck_assert_str_eq(check_forged("{\"alg\":[\"HS256\"]}", VALID, "HS256"),
                     "bad_algorithm");
    /* an alg hidden behind a duplicate key */
    ck_assert_str_eq(
        check_forged("{\"alg\":\"none\",\"alg\":\"HS256\"}", VALID, "HS256"),
        "malformed");
    /* header shapes we do not accept */
    ck_assert_str_eq(check_forged("{\"alg\":\"HS256\"}", VALID, "HS256"), "ok");
    ck_assert_str_eq(
        check_forged("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", VALID, "HS256"),
        "ok");
    ck_assert_str_eq(check_forged("{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}",
                                  VALID, "HS256"),
                     "malformed");
    ck_assert_str_eq(check_forged("{\"alg\":\"HS256\",\"crit\":[\"exp\"],"
                                  "\"exp\":1}",
                                  VALID, "HS256"),
                     "malformed");
}
END_TEST

/* What libjwt 1.10.2 itself does with these tokens: the reasons for the
 * checks above (see auth_jwt.c). If this fails, libjwt changed: re-read
 * the comment at the top of auth_jwt.c. */
START_TEST(libjwt_facts)
{
    jwt_t *j = NULL;
    char *tok = forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", VALID, "HS512");

    ck_assert_int_eq(jwt_decode(&j, tok, KEY, KEYLEN), 0);
    ck_assert_int_eq(jwt_get_alg(j), JWT_ALG_HS512);
    jwt_free(j);
    free(tok);
    tok = signed_token();
    tok[strlen(tok) - 3] ^= 1;                         /* broken signature */
    ck_assert_int_eq(jwt_decode(&j, tok, NULL, 0), 0); /* not checked! */
    ck_assert_int_eq(jwt_get_alg(j), JWT_ALG_NONE);
    jwt_free(j);
    ck_assert_int_ne(jwt_decode(&j, tok, KEY, KEYLEN), 0);
    free(tok);
    tok = forge("{\"alg\":\"none\"}", VALID, "none");
    ck_assert_int_eq(jwt_decode(&j, tok, NULL, 0), 0);
    jwt_free(j);
    ck_assert_int_ne(jwt_decode(&j, tok, KEY, KEYLEN), 0);
    free(tok);
    tok = forge("{\"alg\":\"hs256\"}", VALID, "HS256");
    ck_assert_int_eq(jwt_decode(&j, tok, KEY, KEYLEN), 0);
    jwt_free(j);
    free(tok);
}
END_TEST

START_TEST(audience_and_issuer)
{
    struct wjwt_claims c;
    const char *why = NULL;
    char *tok = signed_token();

    ck_assert_int_eq(
        wjwt_verify(KEY, KEYLEN, tok, ISS, "other-api", NOW, 0, &c, &why), -1);
    ck_assert_str_eq(why, "bad_audience");
    ck_assert_int_eq(wjwt_verify(KEY, KEYLEN, tok, "https://evil.example", AUD,
                                 NOW, 0, &c, &why),
                     -1);
    ck_assert_str_eq(why, "bad_issuer");
    ck_assert_int_eq(
        wjwt_verify(KEY, KEYLEN, tok, ISS "/", AUD, NOW, 0, &c, &why), -1);
    ck_assert_str_eq(why, "bad_issuer");
    free(tok);

#define P(iss, aud)                                                            \
    "{\"iss\":" iss ",\"aud\":" aud ",\"sub\":\"42\",\"iat\":1700000000,"      \
    "\"nbf\":1700000000,\"exp\":1700000900,\"jti\":\"" JTI "\",\"roles\":[]}"
    ck_assert_str_eq(
        check_forged(HS256, P("\"" ISS "\"", "[\"x\",\"" AUD "\"]"), "HS256"),
        "ok");
    ck_assert_str_eq(
        check_forged(HS256, P("\"" ISS "\"", "[\"x\",\"y\"]"), "HS256"),
        "bad_audience");
    ck_assert_str_eq(check_forged(HS256, P("\"" ISS "\"", "[]"), "HS256"),
                     "bad_audience");
    ck_assert_str_eq(
        check_forged(HS256, P("\"" ISS "\"", "[\"" AUD "\",7]"), "HS256"),
        "bad_audience");
    ck_assert_str_eq(
        check_forged(HS256,
                     P("\"" ISS "\"", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\","
                                      "\"7\",\"8\",\"" AUD "\"]"),
                     "HS256"),
        "bad_audience");
    ck_assert_str_eq(check_forged(HS256, P("\"" ISS "\"", "null"), "HS256"),
                     "bad_audience");
    ck_assert_str_eq(
        check_forged(HS256, P("\"" ISS "\"", "\"WEFT-API\""), "HS256"),
        "bad_audience");
    ck_assert_str_eq(
        check_forged(HS256, P("[\"" ISS "\"]", "\"" AUD "\""), "HS256"),
        "bad_issuer");
    ck_assert_str_eq(check_forged(HS256, P("null", "\"" AUD "\""), "HS256"),
                     "bad_issuer");
#undef P
}
END_TEST

START_TEST(subject_roles_jti)
{
#define P(sub, roles, jti)                                                     \
    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":" sub ","                \
    "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700000900,"                \
    "\"jti\":" jti ",\"roles\":" roles "}"
    static const char *bad_subs[] = {
        "42",
        "\"0\"",
        "\"-1\"",
        "\"+1\"",
        "\"042\"",
        "\"4 2\"",
        "\" 42\"",
        "\"42 \"",
        "\"abc\"",
        "\"\"",
        "null",
        "\"9223372036854775808\"",
        "\"99999999999999999999\"",
    };
    for (size_t i = 0; i < sizeof(bad_subs) / sizeof(bad_subs[0]); i++) {
        char *payload;
        ck_assert_int_ne(
            asprintf(&payload, P("%s", "[]", "\"" JTI "\""), bad_subs[i]), -1);
        ck_assert_str_eq(check_forged(HS256, payload, "HS256"), "bad_subject");
        free(payload);
    }
    ck_assert_str_eq(
        check_forged(HS256, P("\"9223372036854775807\"", "[]", "\"" JTI "\""),
                     "HS256"),
        "ok");
    /* missing sub */
    ck_assert_str_eq(check_forged(HS256,
                                  "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
                                  "\"iat\":1700000000,\"nbf\":1700000000,"
                                  "\"exp\":1700000900,\"jti\":\"" JTI "\","
                                  "\"roles\":[]}",
                                  "HS256"),
                     "bad_subject");
    ck_assert_str_eq(
        check_forged(HS256, P("\"1\"", "\"admin\"", "\"" JTI "\""), "HS256"),
        "bad_roles");
    ck_assert_str_eq(check_forged(HS256,
                                  P("\"1\"",
                                    "[\"a\",\"b\",\"c\",\"d\",\"e\","
                                    "\"f\",\"g\",\"h\",\"i\"]",
                                    "\"" JTI "\""),
                                  "HS256"),
                     "bad_roles");
    ck_assert_str_eq(
        check_forged(HS256, P("\"1\"", "[\"a b\"]", "\"" JTI "\""), "HS256"),
        "bad_roles");
    ck_assert_str_eq(
        check_forged(HS256, P("\"1\"", "[1]", "\"" JTI "\""), "HS256"),
        "bad_roles");
    ck_assert_str_eq(
        check_forged(HS256,
                     P("\"1\"", "[\"0123456789012345678901234567890123\"]",
                       "\"" JTI "\""),
                     "HS256"),
        "bad_roles");
    ck_assert_str_eq(check_forged(HS256, P("\"1\"", "[]", "\"abc\""), "HS256"),
                     "bad_jti");
    ck_assert_str_eq(
        check_forged(HS256,
                     P("\"1\"", "[]", "\"0123456789ABCDEF0123456789ABCDEF\""),
                     "HS256"),
        "bad_jti");
    ck_assert_str_eq(check_forged(HS256, P("\"1\"", "[]", "7"), "HS256"),
                     "bad_jti");
#undef P
}
END_TEST

START_TEST(garbage)
{
    static const char *junk[] = {
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "not a jwt",
        "eyJ",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9..",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "eyJhbGciOiJIUzI1NiJ9.e30.e30.e30",
        "\xff\xfe.\x01.\x02",
        "e30.e30.AAAA",
        " eyJhbGciOiJIUzI1NiJ9.e30.x",
        /* valid base64 of non-objects / invalid JSON */
        "WzFd.e30.AAAA",
        "bnVsbA.e30.AAAA",
        "e30ge30.e30.AAAA",
        /* standard-alphabet and padded base64 */
        "eyJhbGciOiJIUzI1NiJ9==.e30.AAAA",
        "eyJhbGciOiJIUzI1Ni+9.e30.AAAA",
    };
    const char *why;

    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        why = check(junk[i]);
        ck_assert_msg(strcmp(why, "malformed") == 0 ||
                          strcmp(why, "bad_algorithm") == 0 ||
                          strcmp(why, "bad_signature") == 0,
                      "%s: %s", junk[i], why);
    }
    ck_assert_str_eq(check(NULL), "malformed");
    ck_assert_str_eq(check("e30.e30.AAAA"), "bad_algorithm");
    /* a good header and signature over a payload that is not JSON */
    ck_assert_str_eq(check_forged(HS256, "{\"sub\":", "HS256"), "malformed");
    ck_assert_str_eq(check_forged(HS256, "[]", "HS256"), "malformed");
    ck_assert_str_eq(check_forged(HS256, "{} x", "HS256"), "malformed");
    /* a duplicate claim: which one would a reader take? */
    {
        char *dup;
        ck_assert_int_ne(asprintf(&dup, "{\"sub\":\"1\",%s", VALID + 1), -1);
        ck_assert_str_eq(check_forged(HS256, dup, "HS256"), "malformed");
        free(dup);
    }
}
END_TEST

START_TEST(size_limit)
{
    char *pad = malloc(10001), *payload, *tok;
    size_t n;

    memset(pad, 'x', 10000);
    pad[10000] = '\0';
    ck_assert_int_ne(asprintf(&payload, "{\"pad\":\"%s\",%s", pad, VALID + 1),
                     -1);
    tok = forge(HS256, payload, "HS256"); /* properly signed, 13+ KB */
    ck_assert_uint_gt(strlen(tok), 10240);
    ck_assert_str_eq(check(tok), "too_long");
    free(tok);
    free(payload);
    /* the largest token under the limit is still parsed */
    tok = NULL;
    for (n = 2900; n > 0 && tok == NULL; n--) {
        pad[n] = '\0';
        ck_assert_int_ne(
            asprintf(&payload, "{\"pad\":\"%s\",%s", pad, VALID + 1), -1);
        tok = forge(HS256, payload, "HS256");
        free(payload);
        if (strlen(tok) > WJWT_TOKEN_MAX) {
            ck_assert_str_eq(check(tok), "too_long");
            free(tok);
            tok = NULL;
        }
    }
    ck_assert_ptr_nonnull(tok);
    ck_assert_uint_ge(strlen(tok), WJWT_TOKEN_MAX - 3);
    ck_assert_str_eq(check(tok), "ok");
    free(tok);
    free(pad);
    /* 10 KB of garbage without a single dot */
    pad = malloc(10241);
    memset(pad, 'A', 10240);
    pad[10240] = '\0';
    ck_assert_str_eq(check(pad), "too_long");
    free(pad);
}
END_TEST

START_TEST(key_rules)
{
    struct wjwt_claims c;
    const char *why = NULL;
    char *tok = NULL;

    ck_assert_int_eq(wjwt_claims_init(&c, 42, ISS, AUD, NOW, 900), 0);
    ck_assert_int_eq(wjwt_sign(KEY, 31, &c, &tok), -1);
    ck_assert_ptr_null(tok);
    ck_assert_int_eq(wjwt_sign(KEY, 0, &c, &tok), -1);
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), 0);
    ck_assert_int_eq(wjwt_verify(KEY, 31, tok, ISS, AUD, NOW, 0, NULL, &why),
                     -1);
    ck_assert_str_eq(why, "bad_key");
    ck_assert_int_eq(wjwt_verify(NULL, 0, tok, ISS, AUD, NOW, 0, NULL, &why),
                     -1);
    ck_assert_str_eq(why, "bad_key");
    free(tok);
}
END_TEST

START_TEST(sign_refusals)
{
    struct wjwt_claims c, bad;
    char *tok = NULL;

    ck_assert_int_eq(wjwt_claims_init(&c, 0, ISS, AUD, NOW, 900), -1);
    ck_assert_int_eq(wjwt_claims_init(&c, -3, ISS, AUD, NOW, 900), -1);
    ck_assert_int_eq(wjwt_claims_init(&c, 1, "", AUD, NOW, 900), -1);
    ck_assert_int_eq(wjwt_claims_init(&c, 1, ISS, NULL, NOW, 900), -1);
    ck_assert_int_eq(wjwt_claims_init(&c, 1, ISS, AUD, NOW, 0), -1);
    ck_assert_int_eq(wjwt_claims_init(&c, 1, ISS, AUD, NOW, 900), 0);
    ck_assert_int_eq(wjwt_role_add(&c, ""), -1);
    ck_assert_int_eq(wjwt_role_add(&c, "a,b"), -1);
    ck_assert_int_eq(wjwt_role_add(&c, "\"admin\""), -1);
    ck_assert_int_eq(wjwt_role_add(&c, "0123456789012345678901234567890"), 0);
    ck_assert_int_eq(wjwt_role_add(&c, "01234567890123456789012345678901"), -1);
    for (int i = 1; i < WJWT_ROLES_MAX; i++)
        ck_assert_int_eq(wjwt_role_add(&c, "plugin:chat.moderator"), 0);
    ck_assert_int_eq(wjwt_role_add(&c, "one-too-many"), -1);
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), 0);
    ck_assert_str_eq(check(tok), "ok");
    free(tok);

    bad = c;
    bad.sub = 0;
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &bad, &tok), -1);
    bad = c;
    bad.exp = bad.iat;
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &bad, &tok), -1);
    bad = c;
    bad.jti[0] = '\0';
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &bad, &tok), -1);
    bad = c;
    bad.nroles = WJWT_ROLES_MAX + 1;
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &bad, &tok), -1);
    bad = c;
    strcpy(bad.roles[0], "x y");
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &bad, &tok), -1);
    bad = c;
    memset(bad.iss, 'a', sizeof(bad.iss)); /* unterminated */
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &bad, &tok), -1);
    ck_assert_ptr_null(tok);
}
END_TEST

/* sv (session version) and sid (session id): carried when set, absent
 * when not, refused when malformed. */
START_TEST(session_claims)
{
#define S(extra)                                                               \
    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"7\","                \
    "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700000900,"                \
    "\"jti\":\"" JTI "\",\"roles\":[]" extra "}"
    struct wjwt_claims c, v;
    const char *why = NULL;
    char *tok;

    ck_assert_int_eq(wjwt_claims_init(&c, 7, ISS, AUD, NOW, 900), 0);
    ck_assert(c.sv == -1 && c.sid[0] == '\0');
    c.sv = 3;
    strcpy(c.sid, "0f0e2c1a-9b8d-4c3e-8f7a-112233445566");
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), 0);
    ck_assert_int_eq(
        wjwt_verify(KEY, KEYLEN, tok, ISS, AUD, NOW, 0, &v, &why), 0);
    ck_assert(v.sv == 3);
    ck_assert_str_eq(v.sid, c.sid);
    free(tok);
    /* absent: -1 and "" */
    ck_assert_str_eq(check_forged(HS256, S(""), "HS256"), "ok");
    ck_assert_str_eq(check_forged(HS256, S(",\"sv\":0,\"sid\":\"ab-12\""),
                                  "HS256"),
                     "ok");
    ck_assert_str_eq(check_forged(HS256, S(",\"sv\":-1"), "HS256"),
                     "bad_session");
    ck_assert_str_eq(check_forged(HS256, S(",\"sv\":\"3\""), "HS256"),
                     "bad_session");
    ck_assert_str_eq(check_forged(HS256, S(",\"sid\":\"\""), "HS256"),
                     "bad_session");
    ck_assert_str_eq(check_forged(HS256, S(",\"sid\":\"AB\""), "HS256"),
                     "bad_session");
    ck_assert_str_eq(check_forged(HS256, S(",\"sid\":7"), "HS256"),
                     "bad_session");
    /* what cannot be verified is not signed */
    ck_assert_int_eq(wjwt_claims_init(&c, 7, ISS, AUD, NOW, 900), 0);
    strcpy(c.sid, "x y");
    ck_assert_int_eq(wjwt_sign(KEY, KEYLEN, &c, &tok), -1);
#undef S
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth_jwt");
    TCase *tc = tcase_create("auth_jwt");

    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, expiry_and_leeway);
    tcase_add_test(tc, time_claims);
    tcase_add_test(tc, tampered_payload);
    tcase_add_test(tc, tampered_signature);
    tcase_add_test(tc, alg_none);
    tcase_add_test(tc, other_algorithms);
    tcase_add_test(tc, libjwt_facts);
    tcase_add_test(tc, audience_and_issuer);
    tcase_add_test(tc, subject_roles_jti);
    tcase_add_test(tc, garbage);
    tcase_add_test(tc, size_limit);
    tcase_add_test(tc, key_rules);
    tcase_add_test(tc, sign_refusals);
    tcase_add_test(tc, session_claims);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
