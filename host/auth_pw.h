/* auth_pw.h - password hashing (argon2id via libsodium) and policy.
 *
 * Hashing and verifying are deliberately slow and big: with the default
 * INTERACTIVE limits each call takes about 100 ms of CPU and 64 MiB of
 * memory. They block: call them on the worker pool (worker.h), never on
 * an event loop, and always through a wpw_gate, which bounds how many run
 * at once and so bounds memory (n * 64 MiB) whatever the login rate. */
#ifndef WEFT_HOST_AUTH_PW_H
#define WEFT_HOST_AUTH_PW_H

#include <pthread.h>
#include <sodium.h>
#include <stddef.h>

#define WPW_MIN 8    /* bytes */
#define WPW_MAX 1024 /* bytes; also caps what hash and verify accept */
#define WPW_HASHLEN crypto_pwhash_STRBYTES /* buffer for a hash string */

/* A counting semaphore, plus the argon2id limits its users hash with. */
struct wpw_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int free_slots;
    unsigned long long opslimit;
    size_t memlimit;
    int dummy_ready;
    char dummy[WPW_HASHLEN];
};

/* At most `n` (>= 1) hashes at once, INTERACTIVE limits. Returns 0, -1. */
int wpw_gate_init(struct wpw_gate *g, int n);
/* Other limits (tests use crypto_pwhash_OPSLIMIT_MIN/MEMLIMIT_MIN). Call
 * before the gate is shared. */
void wpw_gate_limits(struct wpw_gate *g, unsigned long long opslimit,
                     size_t memlimit);
void wpw_gate_destroy(struct wpw_gate *g);
/* Wait for a free slot / give it back. */
void wpw_gate_enter(struct wpw_gate *g);
void wpw_gate_leave(struct wpw_gate *g);

/*
 * Hash `pw` (`len` bytes, any bytes) into `out`, a NUL-terminated
 * "$argon2id$v=19$m=...,t=...,p=1$salt$hash" string with a random salt.
 * Returns 0, or -1 when len > WPW_MAX or memory ran out.
 */
int wpw_hash(struct wpw_gate *g, const char *pw, size_t len,
             char out[WPW_HASHLEN]);

/*
 * 0 when `pw` matches `hash`, -1 when it does not or `hash` is not an
 * argon2 string (as libsodium: the two cannot be told apart).
 */
int wpw_verify(struct wpw_gate *g, const char *hash, const char *pw,
               size_t len);

/*
 * For a login naming an account that does not exist: the same work as
 * wpw_verify against a real hash with the gate's limits, and always -1,
 * so the answer time does not reveal which accounts exist. The dummy hash
 * (of a random password) is made on first use; wpw_dummy_prepare() makes
 * it ahead, at start-up, on the worker pool. Returns 0 / -1.
 */
int wpw_dummy_prepare(struct wpw_gate *g);
int wpw_verify_dummy(struct wpw_gate *g, const char *pw, size_t len);

/*
 * 1 when `hash` was made with other limits than the gate's (or is not an
 * argon2id string): after a successful login, hash the password again and
 * store the new hash. 0 when it is current.
 */
int wpw_needs_rehash(const struct wpw_gate *g, const char *hash);

/*
 * Policy for new passwords: WPW_MIN..WPW_MAX bytes (bytes, not
 * characters: the cost of hashing depends on bytes), valid UTF-8, no NUL
 * (many clients and tools cut strings there). Any other character is
 * allowed, spaces included; no composition rules (NIST SP 800-63B).
 * Returns 1, or 0 with *why: "too_short", "too_long", "bad_utf8",
 * "nul_byte".
 */
int wpw_policy_ok(const char *pw, size_t len, const char **why);

#endif
