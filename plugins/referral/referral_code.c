/*
 * referral_code.c - referral codes.
 *
 * A code is random, never derived from the username: nothing about a name
 * (its length, its script) can make it fail or leak into the code. The
 * database's UNIQUE constraint, not this file, guarantees uniqueness; the
 * insertion retries with a new code on a collision (referral_link.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "referral_util.h"

/* Fill buf from the kernel's CSPRNG (getrandom may return short or be
 * interrupted). 0 or -1. */
static int ref_random(unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t k = getrandom(buf + got, n - got, 0);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)k;
    }
    return 0;
}

int ref_code_new(char out[REF_CODE_LEN + 1])
{
    const size_t na = sizeof(REF_ALPHABET) - 1;
    /* Bytes at or above the largest multiple of na are dropped, so every
     * character is equally likely (no modulo bias). */
    const unsigned limit = (unsigned)(256 / na * na);
    unsigned char rnd[32];
    size_t have = 0, i = sizeof(rnd);

    while (have < REF_CODE_LEN) {
        if (i == sizeof(rnd)) {
            if (ref_random(rnd, sizeof(rnd)) != 0)
                return -1;
            i = 0;
        }
        if (rnd[i] < limit)
            out[have++] = REF_ALPHABET[rnd[i] % na];
        i++;
    }
    out[REF_CODE_LEN] = '\0';
    return 0;
}

int ref_code_normalise(const char *in, char out[REF_CODE_LEN + 1])
{
    const char *end;
    size_t n, i;

    out[0] = '\0';
    if (in == NULL)
        return 0;
    while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n')
        in++;
    end = in + strlen(in);
    while (end > in && (end[-1] == ' ' || end[-1] == '\t' ||
                        end[-1] == '\r' || end[-1] == '\n'))
        end--;
    n = (size_t)(end - in);
    if (n != REF_CODE_LEN)
        return 0;
    for (i = 0; i < n; i++) {
        char c = in[i];

        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        /* Only the alphabet's ASCII bytes: a NUL or any UTF-8 byte fails. */
        if (c == '\0' || strchr(REF_ALPHABET, c) == NULL)
            return 0;
        out[i] = c;
    }
    out[n] = '\0';
    return 1;
}
