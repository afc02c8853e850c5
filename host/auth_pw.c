/* auth_pw.c - argon2id through libsodium, behind a counting semaphore. */
#include <string.h>

#include "auth_pw.h"
#include "utf8.h"

int wpw_gate_init(struct wpw_gate *g, int n)
{
    if (n < 1 || sodium_init() < 0)
        return -1;
    memset(g, 0, sizeof(*g));
    if (pthread_mutex_init(&g->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&g->cv, NULL) != 0) {
        pthread_mutex_destroy(&g->mu);
        return -1;
    }
    g->free_slots = n;
    g->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    g->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    return 0;
}

void wpw_gate_limits(struct wpw_gate *g, unsigned long long opslimit,
                     size_t memlimit)
{
    pthread_mutex_lock(&g->mu);
    g->opslimit = opslimit;
    g->memlimit = memlimit;
    g->dummy_ready = 0; /* it must cost what a real verify costs */
    pthread_mutex_unlock(&g->mu);
}

void wpw_gate_destroy(struct wpw_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

void wpw_gate_enter(struct wpw_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->free_slots == 0)
        pthread_cond_wait(&g->cv, &g->mu);
    g->free_slots--;
    pthread_mutex_unlock(&g->mu);
}

void wpw_gate_leave(struct wpw_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->free_slots++;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int wpw_hash(struct wpw_gate *g, const char *pw, size_t len,
             char out[WPW_HASHLEN])
{
    int rc;

    if (len > WPW_MAX)
        return -1;
    wpw_gate_enter(g);
    rc = crypto_pwhash_str(out, pw, len, g->opslimit, g->memlimit);
    wpw_gate_leave(g);
    return rc == 0 ? 0 : -1;
}

int wpw_verify(struct wpw_gate *g, const char *hash, const char *pw, size_t len)
{
    int rc;

    if (len > WPW_MAX)
        return -1;
    wpw_gate_enter(g);
    rc = crypto_pwhash_str_verify(hash, pw, len);
    wpw_gate_leave(g);
    return rc == 0 ? 0 : -1;
}

int wpw_dummy_prepare(struct wpw_gate *g)
{
    unsigned char pw[32];
    char h[WPW_HASHLEN];
    int rc;

    pthread_mutex_lock(&g->mu);
    rc = g->dummy_ready;
    pthread_mutex_unlock(&g->mu);
    if (rc)
        return 0;
    /* Two first logins may both get here: both hash, either result is
     * good, the mutex only keeps the copy whole. */
    randombytes_buf(pw, sizeof(pw));
    rc = wpw_hash(g, (const char *)pw, sizeof(pw), h);
    sodium_memzero(pw, sizeof(pw));
    if (rc != 0)
        return -1;
    pthread_mutex_lock(&g->mu);
    memcpy(g->dummy, h, sizeof(h));
    g->dummy_ready = 1;
    pthread_mutex_unlock(&g->mu);
    return 0;
}

int wpw_verify_dummy(struct wpw_gate *g, const char *pw, size_t len)
{
    char h[WPW_HASHLEN];

    if (wpw_dummy_prepare(g) != 0)
        return -1;
    pthread_mutex_lock(&g->mu);
    memcpy(h, g->dummy, sizeof(h));
    pthread_mutex_unlock(&g->mu);
    (void)wpw_verify(g, h, pw, len);
    return -1;
}

int wpw_needs_rehash(const struct wpw_gate *g, const char *hash)
{
    /* -1 (not an argon2id string) counts as "needs": a legacy hash. */
    return crypto_pwhash_str_needs_rehash(hash, g->opslimit, g->memlimit) != 0;
}

int wpw_policy_ok(const char *pw, size_t len, const char **why)
{
    if (len < WPW_MIN) {
        *why = "too_short";
        return 0;
    }
    if (len > WPW_MAX) {
        *why = "too_long";
        return 0;
    }
    if (memchr(pw, '\0', len) != NULL) {
        *why = "nul_byte";
        return 0;
    }
    if (!wutf8_valid(pw, len)) {
        *why = "bad_utf8";
        return 0;
    }
    return 1;
}
