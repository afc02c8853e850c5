/* auth_token.c - refresh tokens (random, stored hashed) and the signing key
 * file. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_token.h"
#include "log.h"

int wtok_new(char out[WTOK_LEN + 1])
{
    unsigned char raw[32];

    if (sodium_init() < 0)
        return -1;
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, WTOK_LEN + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

int wtok_valid(const char *token)
{
    unsigned char raw[32];
    size_t n;

    if (token == NULL || strnlen(token, WTOK_LEN + 1) != WTOK_LEN)
        return 0;
    /* Strict decode: also refuses non-zero padding bits, so each token
     * has one spelling and one hash. */
    if (sodium_base642bin(raw, sizeof(raw), token, WTOK_LEN, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n != sizeof(raw))
        return 0;
    return 1;
}

int wtok_hash(const char *token, unsigned char out[WTOK_HASHLEN])
{
    if (!wtok_valid(token))
        return -1;
    crypto_hash_sha256(out, (const unsigned char *)token, WTOK_LEN);
    return 0;
}

void wtok_hex(const unsigned char hash[WTOK_HASHLEN],
              char out[2 * WTOK_HASHLEN + 1])
{
    sodium_bin2hex(out, 2 * WTOK_HASHLEN + 1, hash, WTOK_HASHLEN);
}

static int wsecret_configured(const char *s, unsigned char *key, size_t *len,
                              const char **why)
{
    size_t sl = strlen(s), n;

    if (strncmp(s, "hex:", 4) == 0) {
        if ((sl - 4) / 2 > *len) {
            *why = "too_long";
            return -1;
        }
        /* No ignore set and the end must be reached: "hex:zz" and odd
         * lengths are refused, not read as a shorter key. */
        if (sl % 2 != 0 ||
            sodium_hex2bin(key, *len, s + 4, sl - 4, NULL, &n, NULL) != 0) {
            *why = "bad_hex";
            return -1;
        }
    } else {
        if (sl > *len) {
            *why = "too_long";
            return -1;
        }
        memcpy(key, s, sl);
        n = sl;
    }
    if (n < WSECRET_MIN) {
        *why = "too_short";
        return -1;
    }
    *len = n;
    return 0;
}

/* Read an existing key file; 1 when it does not exist. */
static int wsecret_read(const char *path, unsigned char *key, size_t *len,
                        const char **why)
{
    struct stat st;
    size_t got = 0;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0) {
        /* ELOOP: a symlink, which someone else may have pointed at a key
         * of their choosing. */
        *why = errno == ELOOP ? "not_regular" : "io_error";
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        *why = "io_error";
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not_regular";
        goto fail;
    }
    if (st.st_uid != geteuid()) {
        *why = "bad_owner";
        goto fail;
    }
    if ((st.st_mode & 077) != 0) {
        *why = "bad_mode";
        goto fail;
    }
    /* Read one byte more than fits, to tell "too long" from "exact". */
    for (;;) {
        unsigned char extra;
        if (got < *len)
            n = read(fd, key + got, *len - got);
        else
            n = read(fd, &extra, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *why = "io_error";
            goto fail;
        }
        if (n == 0)
            break;
        if (got >= *len) {
            *why = "too_long";
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    if (got < WSECRET_MIN) {
        *why = "too_short";
        return -1;
    }
    *len = got;
    return 0;
fail:
    close(fd);
    return -1;
}

static int wsecret_sync_dir(const char *path)
{
    char copy[PATH_MAX];
    int fd, rc;

    if (strlen(path) >= sizeof(copy))
        return -1;
    strcpy(copy, path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Create `path` with WSECRET_MIN random bytes; 1 when another process
 * created it first (read theirs). */
static int wsecret_create(const char *path, const char **why)
{
    unsigned char fresh[WSECRET_MIN];
    char tmp[PATH_MAX];
    int fd, rc = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp)) {
        *why = "io_error";
        return -1;
    }
    fd = mkostemp(tmp, O_CLOEXEC); /* O_CREAT | O_EXCL, mode 0600 */
    if (fd < 0) {
        *why = "io_error";
        return -1;
    }
    randombytes_buf(fresh, sizeof(fresh));
    if (fchmod(fd, 0600) != 0 ||
        write(fd, fresh, sizeof(fresh)) != (ssize_t)sizeof(fresh) ||
        fsync(fd) != 0) {
        *why = "io_error";
        goto done;
    }
    /* link(2), unlike rename(2), never replaces: O_EXCL for a name. */
    if (link(tmp, path) != 0) {
        if (errno == EEXIST)
            rc = 1;
        else
            *why = "io_error";
        goto done;
    }
    if (wsecret_sync_dir(path) != 0) {
        *why = "io_error";
        goto done;
    }
    wlog(WLOG_WARN, "auth",
         "created a new token-signing secret in %s: tokens issued before "
         "are no longer valid",
         path);
    rc = 0;
done:
    sodium_memzero(fresh, sizeof(fresh));
    close(fd);
    unlink(tmp);
    return rc;
}

int wsecret_load(const char *configured, const char *path, unsigned char *key,
                 size_t *len, const char **why)
{
    size_t cap = *len;
    int rc;

    if (sodium_init() < 0) {
        *why = "io_error";
        return -1;
    }
    if (configured != NULL && configured[0] != '\0') {
        rc = wsecret_configured(configured, key, len, why);
    } else if (path == NULL || path[0] == '\0') {
        *why = "no_path";
        rc = -1;
    } else {
        rc = wsecret_read(path, key, len, why);
        if (rc == 1) {
            /* 0: ours is in place; 1: another creator won, read theirs. */
            rc = wsecret_create(path, why);
            if (rc != -1) {
                *len = cap;
                rc = wsecret_read(path, key, len, why);
            }
            if (rc == 1) {
                *why = "io_error"; /* created, then gone */
                rc = -1;
            }
        }
    }
    if (rc != 0) {
        sodium_memzero(key, cap);
        *len = 0;
        return -1;
    }
    return 0;
}
