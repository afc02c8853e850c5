/* Password hashing, policy and the gate that bounds concurrent hashes. */
#include <pthread.h>

#include "auth_pw.h"
#include "unit.h"

/* Small limits: each hash takes well under a millisecond. */
static void gate_small(struct wpw_gate *g, int n)
{
    ck_assert_int_eq(wpw_gate_init(g, n), 0);
    wpw_gate_limits(g, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
}

START_TEST(hash_verify_round_trip)
{
    struct wpw_gate g;
    char h1[WPW_HASHLEN], h2[WPW_HASHLEN];
    const char *pw = "correct horse battery staple";

    gate_small(&g, 2);
    ck_assert_int_eq(wpw_hash(&g, pw, strlen(pw), h1), 0);
    ck_assert_int_eq(strncmp(h1, "$argon2id$", 10), 0);
    ck_assert_int_eq(wpw_verify(&g, h1, pw, strlen(pw)), 0);
    /* a fresh salt each time */
    ck_assert_int_eq(wpw_hash(&g, pw, strlen(pw), h2), 0);
    ck_assert_str_ne(h1, h2);
    ck_assert_int_eq(wpw_verify(&g, h2, pw, strlen(pw)), 0);
    /* non-UTF-8 and NUL bytes are hashed as bytes, length included */
    ck_assert_int_eq(wpw_hash(&g, "a\0b\xff", 4, h1), 0);
    ck_assert_int_eq(wpw_verify(&g, h1, "a\0b\xff", 4), 0);
    ck_assert_int_eq(wpw_verify(&g, h1, "a", 1), -1);
    wpw_gate_destroy(&g);
}
END_TEST

START_TEST(wrong_password)
{
    struct wpw_gate g;
    char h[WPW_HASHLEN];
    char big[WPW_MAX + 1];

    gate_small(&g, 1);
    ck_assert_int_eq(wpw_hash(&g, "password1", 9, h), 0);
    ck_assert_int_eq(wpw_verify(&g, h, "password2", 9), -1);
    ck_assert_int_eq(wpw_verify(&g, h, "password", 8), -1);
    ck_assert_int_eq(wpw_verify(&g, h, "Password1", 9), -1);
    ck_assert_int_eq(wpw_verify(&g, h, "", 0), -1);
    /* garbage or truncated hashes never match */
    ck_assert_int_eq(wpw_verify(&g, "", "password1", 9), -1);
    ck_assert_int_eq(wpw_verify(&g, "$argon2id$v=19$", "password1", 9), -1);
    h[strlen(h) - 5] = '\0';
    ck_assert_int_eq(wpw_verify(&g, h, "password1", 9), -1);
    /* too long to hash or verify at all */
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(wpw_hash(&g, big, sizeof(big), h), -1);
    ck_assert_int_eq(wpw_hash(&g, big, WPW_MAX, h), 0);
    ck_assert_int_eq(wpw_verify(&g, h, big, WPW_MAX), 0);
    ck_assert_int_eq(wpw_verify(&g, h, big, sizeof(big)), -1);
    wpw_gate_destroy(&g);
}
END_TEST

START_TEST(rehash_detection)
{
    struct wpw_gate old, cur;
    char h[WPW_HASHLEN];

    gate_small(&old, 1);
    ck_assert_int_eq(wpw_gate_init(&cur, 1), 0);
    wpw_gate_limits(&cur, crypto_pwhash_OPSLIMIT_MIN + 1,
                    crypto_pwhash_MEMLIMIT_MIN);
    ck_assert_int_eq(wpw_hash(&old, "password1", 9, h), 0);
    ck_assert_int_eq(wpw_needs_rehash(&old, h), 0);
    ck_assert_int_eq(wpw_needs_rehash(&cur, h), 1);
    /* a hash from older limits still verifies: login, then rehash */
    ck_assert_int_eq(wpw_verify(&cur, h, "password1", 9), 0);
    ck_assert_int_eq(wpw_hash(&cur, "password1", 9, h), 0);
    ck_assert_int_eq(wpw_needs_rehash(&cur, h), 0);
    /* memory limit changes count too */
    wpw_gate_limits(&cur, crypto_pwhash_OPSLIMIT_MIN + 1,
                    2 * crypto_pwhash_MEMLIMIT_MIN);
    ck_assert_int_eq(wpw_needs_rehash(&cur, h), 1);
    /* not an argon2id string (an imported bcrypt hash, say) */
    ck_assert_int_eq(
        wpw_needs_rehash(&cur, "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQ"
                               "RSTUVWXYZ0123"),
        1);
    ck_assert_int_eq(wpw_needs_rehash(&cur, ""), 1);
    /* the default limits are INTERACTIVE */
    ck_assert_int_eq(wpw_gate_init(&old, 1), 0);
    ck_assert(old.opslimit == crypto_pwhash_OPSLIMIT_INTERACTIVE);
    ck_assert(old.memlimit == crypto_pwhash_MEMLIMIT_INTERACTIVE);
    wpw_gate_destroy(&old);
    wpw_gate_destroy(&cur);
}
END_TEST

START_TEST(dummy_never_matches)
{
    struct wpw_gate g;

    gate_small(&g, 1);
    ck_assert_int_eq(wpw_verify_dummy(&g, "password1", 9), -1);
    ck_assert_int_eq(g.dummy_ready, 1);
    ck_assert_int_eq(strncmp(g.dummy, "$argon2id$", 10), 0);
    /* the dummy costs what a current hash costs */
    ck_assert_int_eq(wpw_needs_rehash(&g, g.dummy), 0);
    ck_assert_int_eq(wpw_dummy_prepare(&g), 0);
    ck_assert_int_eq(wpw_verify_dummy(&g, "", 0), -1);
    /* new limits, new dummy */
    wpw_gate_limits(&g, crypto_pwhash_OPSLIMIT_MIN + 1,
                    crypto_pwhash_MEMLIMIT_MIN);
    ck_assert_int_eq(g.dummy_ready, 0);
    ck_assert_int_eq(wpw_verify_dummy(&g, "password1", 9), -1);
    ck_assert_int_eq(wpw_needs_rehash(&g, g.dummy), 0);
    wpw_gate_destroy(&g);
}
END_TEST

struct observed {
    pthread_mutex_t mu;
    pthread_barrier_t start;
    struct wpw_gate gate;
    int inside, peak;
};

static void *occupant(void *arg)
{
    struct observed *o = arg;

    pthread_barrier_wait(&o->start);
    wpw_gate_enter(&o->gate);
    pthread_mutex_lock(&o->mu);
    if (++o->inside > o->peak)
        o->peak = o->inside;
    pthread_mutex_unlock(&o->mu);
    usleep(20000); /* long enough for the others to pile up at the gate */
    pthread_mutex_lock(&o->mu);
    o->inside--;
    pthread_mutex_unlock(&o->mu);
    wpw_gate_leave(&o->gate);
    return NULL;
}

START_TEST(gate_bounds_concurrency)
{
    struct observed o = {.inside = 0, .peak = 0};
    pthread_t t[6];

    pthread_mutex_init(&o.mu, NULL);
    pthread_barrier_init(&o.start, NULL, 6);
    ck_assert_int_eq(wpw_gate_init(&o.gate, 2), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, occupant, &o), 0);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(o.peak, 2);
    ck_assert_int_eq(o.inside, 0);
    ck_assert_int_eq(o.gate.free_slots, 2);
    wpw_gate_destroy(&o.gate);
    pthread_barrier_destroy(&o.start);
    pthread_mutex_destroy(&o.mu);
    ck_assert_int_eq(wpw_gate_init(&o.gate, 0), -1);
}
END_TEST

struct hasher {
    struct wpw_gate *g;
    int ok;
};

static void *hash_one(void *arg)
{
    struct hasher *h = arg;
    char out[WPW_HASHLEN];

    h->ok = wpw_hash(h->g, "password1", 9, out) == 0 &&
            wpw_verify(h->g, out, "password1", 9) == 0;
    return NULL;
}

START_TEST(gate_many_hashers)
{
    struct wpw_gate g;
    struct hasher h[6];
    pthread_t t[6];

    gate_small(&g, 2);
    for (int i = 0; i < 6; i++) {
        h[i].g = &g;
        ck_assert_int_eq(pthread_create(&t[i], NULL, hash_one, &h[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(h[i].ok, 1);
    }
    ck_assert_int_eq(g.free_slots, 2);
    wpw_gate_destroy(&g);
}
END_TEST

START_TEST(policy)
{
    const char *why = NULL;
    char big[WPW_MAX + 1];

    ck_assert_int_eq(wpw_policy_ok("1234567", 7, &why), 0);
    ck_assert_str_eq(why, "too_short");
    ck_assert_int_eq(wpw_policy_ok("12345678", 8, &why), 1);
    ck_assert_int_eq(wpw_policy_ok("", 0, &why), 0);
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(wpw_policy_ok(big, WPW_MAX, &why), 1);
    ck_assert_int_eq(wpw_policy_ok(big, WPW_MAX + 1, &why), 0);
    ck_assert_str_eq(why, "too_long");
    ck_assert_int_eq(wpw_policy_ok("pass word with spaces", 21, &why), 1);
    ck_assert_int_eq(wpw_policy_ok("p\xc3\xa4ssw\xc3\xb6rd", 10, &why), 1);
    /* 3 characters, 12 bytes: the bound is on bytes */
    ck_assert_int_eq(wpw_policy_ok("\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f"
                                   "\x94\x91",
                                   12, &why),
                     1);
    ck_assert_int_eq(wpw_policy_ok("passw\xc3rd1", 9, &why), 0);
    ck_assert_str_eq(why, "bad_utf8");
    ck_assert_int_eq(wpw_policy_ok("password\xc0\x80", 10, &why), 0);
    ck_assert_str_eq(why, "bad_utf8");
    ck_assert_int_eq(wpw_policy_ok("pass\xed\xa0\x80word", 11, &why), 0);
    ck_assert_str_eq(why, "bad_utf8");
    ck_assert_int_eq(wpw_policy_ok("pass\0word", 9, &why), 0);
    ck_assert_str_eq(why, "nul_byte");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auth_pw");
    TCase *tc = tcase_create("auth_pw");

    tcase_add_test(tc, hash_verify_round_trip);
    tcase_add_test(tc, wrong_password);
    tcase_add_test(tc, rehash_detection);
    tcase_add_test(tc, dummy_never_matches);
    tcase_add_test(tc, gate_bounds_concurrency);
    tcase_add_test(tc, gate_many_hashers);
    tcase_add_test(tc, policy);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
