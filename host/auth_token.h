/* auth_token.h - opaque refresh tokens and the token-signing secret. */
#ifndef WEFT_HOST_AUTH_TOKEN_H
#define WEFT_HOST_AUTH_TOKEN_H

#include <stddef.h>

#define WTOK_LEN 43     /* 32 random bytes, base64url without padding */
#define WTOK_HASHLEN 32 /* SHA-256 */
#define WSECRET_MIN 32  /* bytes */
#define WSECRET_MAX 256

/*
 * A new refresh token: 32 bytes from randombytes_buf, base64url without
 * padding, NUL-terminated in `out`. Hand it to the client once; store
 * only wtok_hash() of it, so a leaked table holds no usable token (the
 * token has 256 bits of entropy: a plain hash, no salt or stretching, is
 * enough). Returns 0, or -1 when libsodium cannot start.
 */
int wtok_new(char out[WTOK_LEN + 1]);

/* 1 when `token` has the shape wtok_new() makes (43 base64url chars). */
int wtok_valid(const char *token);

/*
 * SHA-256 of the token text, what the database keeps and looks up.
 * Returns 0, or -1 without hashing when `token` is not wtok_valid(), so
 * garbage from a client never reaches a query.
 */
int wtok_hash(const char *token, unsigned char out[WTOK_HASHLEN]);

/* Lower-case hex of a hash, for text columns and logs. */
void wtok_hex(const unsigned char hash[WTOK_HASHLEN],
              char out[2 * WTOK_HASHLEN + 1]);

/*
 * The key that signs access tokens. On entry *len is the size of `key`
 * (at least WSECRET_MAX is always enough); on success it is the key
 * length, >= WSECRET_MIN.
 *
 * - `configured` non-empty (the config or WEFT_AUTH_SECRET): "hex:" then
 *   hex digits, or else the text itself; at least 32 bytes either way.
 * - else the file at `path`: raw bytes, a regular file owned by our
 *   effective user with no group or other permission bits (0600 or 0400),
 *   opened without following a symlink.
 * - else, when `path` does not exist, 32 random bytes are written to it
 *   (mode 0600, fsync'd, the directory too) so tokens survive restarts.
 *   The file appears complete or not at all: it is written under a
 *   temporary name and linked into place, and a concurrent creator's file
 *   wins. Its creation is logged (the path, never the bytes).
 *
 * Returns 0, or -1 with *why: "too_short", "too_long", "bad_hex",
 * "bad_owner", "bad_mode", "not_regular", "io_error", "no_path". The
 * secret is never logged; `key` is wiped on failure.
 */
int wsecret_load(const char *configured, const char *path, unsigned char *key,
                 size_t *len, const char **why);

#endif
