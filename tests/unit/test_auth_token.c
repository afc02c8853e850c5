/* Refresh tokens and the signing-secret loader. */
#include <errno.h>
#include <sodium.h>
#include <sys/stat.h>

#include "auth_token.h"
#include "unit.h"

START_TEST(token_shape)
{
    char a[WTOK_LEN + 1], b[WTOK_LEN + 1];

    ck_assert_int_eq(wtok_new(a), 0);
    ck_assert_int_eq(wtok_new(b), 0);
    ck_assert_uint_eq(strlen(a), 43);
    ck_assert_str_ne(a, b);
    ck_assert_uint_eq(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                                "qrstuvwxyz0123456789-_"),
                      43);
    ck_assert_int_eq(wtok_valid(a), 1);
}
END_TEST

START_TEST(token_validity)
{
    /* bytes 0..31 in base64url: the last char carries 2 zero bits */
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
                     1);
    /* same length, non-zero padding bits: another spelling, refused */
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9"),
                     0);
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                     0);
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh"),
                     0);
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw+Hh8"),
                     0);
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw/Hh8"),
                     0);
    ck_assert_int_eq(wtok_valid("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw Hh8"),
                     0);
    ck_assert_int_eq(wtok_valid(""), 0);
    ck_assert_int_eq(wtok_valid(NULL), 0);
}
END_TEST

START_TEST(token_hash)
{
    char tok[WTOK_LEN + 1], hex[65];
    unsigned char h1[32], h2[32], ref[32];

    memset(tok, 'A', WTOK_LEN);
    tok[WTOK_LEN] = '\0';
    ck_assert_int_eq(wtok_hash(tok, h1), 0);
    wtok_hex(h1, hex);
    /* python3 -c "import hashlib; print(hashlib.sha256(b'A'*43).hexdigest())"
     */
    ck_assert_str_eq(
        hex,
        "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a");
    ck_assert_int_eq(wtok_new(tok), 0);
    ck_assert_int_eq(wtok_hash(tok, h1), 0);
    ck_assert_int_eq(wtok_hash(tok, h2), 0);
    ck_assert_mem_eq(h1, h2, 32);
    crypto_hash_sha256(ref, (const unsigned char *)tok, WTOK_LEN);
    ck_assert_mem_eq(h1, ref, 32);
    ck_assert_int_eq(wtok_hash("not a token", h1), -1);
}
END_TEST

static int zeroed(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

START_TEST(secret_configured)
{
    unsigned char key[WSECRET_MAX];
    size_t len = sizeof(key);
    const char *why = NULL;
    char hex[4 + 2 * 40 + 1];

    ck_assert_int_eq(
        wsecret_load("0123456789abcdef0123456789abcdef", NULL, key, &len, &why),
        0);
    ck_assert_uint_eq(len, 32);
    ck_assert_mem_eq(key, "0123456789abcdef0123456789abcdef", 32);

    strcpy(hex, "hex:");
    for (int i = 0; i < 40; i++)
        snprintf(hex + 4 + 2 * i, 3, "%02x", i + 0xa0);
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(hex, "/nonexistent/never", key, &len, &why),
                     0);
    ck_assert_uint_eq(len, 40);
    ck_assert_int_eq(key[0], 0xa0);
    ck_assert_int_eq(key[39], 0xa0 + 39);

    len = sizeof(key);
    ck_assert_int_eq(wsecret_load("short secret", NULL, key, &len, &why), -1);
    ck_assert_str_eq(why, "too_short");
    ck_assert_uint_eq(len, 0);
    ck_assert(zeroed(key, sizeof(key)));
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load("hex:00112233445566778899aabbccddeeff", NULL,
                                  key, &len, &why),
                     -1);
    ck_assert_str_eq(why, "too_short"); /* 16 bytes, though 32 hex digits */
    len = sizeof(key);
    hex[20] = 'z';
    ck_assert_int_eq(wsecret_load(hex, NULL, key, &len, &why), -1);
    ck_assert_str_eq(why, "bad_hex");
    hex[20] = 'a';
    hex[strlen(hex) - 1] = '\0'; /* odd digit count */
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(hex, NULL, key, &len, &why), -1);
    ck_assert_str_eq(why, "bad_hex");
    len = 33; /* a buffer smaller than the secret */
    ck_assert_int_eq(wsecret_load("0123456789abcdef0123456789abcdef01", NULL,
                                  key, &len, &why),
                     -1);
    ck_assert_str_eq(why, "too_long");
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load("", NULL, key, &len, &why), -1);
    ck_assert_str_eq(why, "no_path");
}
END_TEST

/* A fresh private directory; returns the malloc'd path of "dir/secret". */
static char *secret_path(void)
{
    char *dir = strdup("/tmp/weft-unit-secret-XXXXXX"), *p;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_ne(asprintf(&p, "%s/secret", dir), -1);
    free(dir);
    return p;
}

START_TEST(secret_file_created_then_reused)
{
    unsigned char k1[WSECRET_MAX], k2[WSECRET_MAX];
    size_t l1 = sizeof(k1), l2 = sizeof(k2);
    const char *why = NULL;
    char *path = secret_path(), *dir;
    struct stat st;

    ck_assert_int_eq(wsecret_load(NULL, path, k1, &l1, &why), 0);
    ck_assert_uint_eq(l1, 32);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, 32);
    ck_assert_int_eq(st.st_nlink, 1); /* the temporary name is gone */
    ck_assert_int_eq(wsecret_load("", path, k2, &l2, &why), 0);
    ck_assert_uint_eq(l2, 32);
    ck_assert_mem_eq(k1, k2, 32);
    ck_assert(!zeroed(k1, 32));
    /* a configured secret wins over the file */
    l2 = sizeof(k2);
    ck_assert_int_eq(
        wsecret_load("0123456789abcdef0123456789abcdef", path, k2, &l2, &why),
        0);
    ck_assert_mem_eq(k2, "0123456789abcdef0123456789abcdef", 32);
    ck_assert_int_eq(unlink(path), 0);
    dir = strdup(path);
    dir[strlen(dir) - strlen("/secret")] = '\0';
    ck_assert_int_eq(rmdir(dir), 0); /* nothing else was left behind */
    free(dir);
    free(path);
}
END_TEST

START_TEST(secret_file_refusals)
{
    unsigned char key[WSECRET_MAX];
    size_t len;
    const char *why = NULL;
    char *path = unit_tmpfile("an admin-provided key of 40 bytes.......");
    char *link_path;

    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), 0);
    ck_assert_uint_eq(len, 40);

    ck_assert_int_eq(chmod(path, 0644), 0);
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), -1);
    ck_assert_str_eq(why, "bad_mode");
    ck_assert(zeroed(key, sizeof(key)));
    ck_assert_int_eq(chmod(path, 0640), 0);
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), -1);
    ck_assert_str_eq(why, "bad_mode");
    ck_assert_int_eq(chmod(path, 0400), 0); /* read-only is fine */
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), 0);

    len = 39;
    ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), -1);
    ck_assert_str_eq(why, "too_long");

    /* a symlink to a good file is still refused */
    ck_assert_int_ne(asprintf(&link_path, "%s.link", path), -1);
    ck_assert_int_eq(symlink(path, link_path), 0);
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, link_path, key, &len, &why), -1);
    ck_assert_str_eq(why, "not_regular");
    unlink(link_path);
    free(link_path);

    if (geteuid() == 0) {
        ck_assert_int_eq(chown(path, 65534, 65534), 0);
        len = sizeof(key);
        ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), -1);
        ck_assert_str_eq(why, "bad_owner");
    }
    unlink(path);
    free(path);

    path = unit_tmpfile("too short");
    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, path, key, &len, &why), -1);
    ck_assert_str_eq(why, "too_short");
    unlink(path);
    free(path);

    len = sizeof(key);
    ck_assert_int_eq(wsecret_load(NULL, "/tmp", key, &len, &why), -1);
    ck_assert_str_eq(why, "not_regular");
    len = sizeof(key);
    ck_assert_int_eq(
        wsecret_load(NULL, "/nonexistent-dir/secret", key, &len, &why), -1);
    ck_assert_str_eq(why, "io_error");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth_token");
    TCase *tc = tcase_create("auth_token");

    tcase_add_test(tc, token_shape);
    tcase_add_test(tc, token_validity);
    tcase_add_test(tc, token_hash);
    tcase_add_test(tc, secret_configured);
    tcase_add_test(tc, secret_file_created_then_reused);
    tcase_add_test(tc, secret_file_refusals);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
