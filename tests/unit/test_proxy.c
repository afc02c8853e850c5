/* Trusted proxies: addresses, CIDR lists, and the client taken from
 * X-Forwarded-For / Forwarded (rightmost untrusted hop, headers ignored
 * from untrusted peers). */
#include "proxy.h"
#include "unit.h"

static struct wproxy_addr ip(const char *s)
{
    struct wproxy_addr a;

    ck_assert_msg(wproxy_parse_ip(s, strlen(s), &a) == 0, "parse %s", s);
    return a;
}

static struct wproxy_list list(const char *spec)
{
    struct wproxy_list l;
    const char *why = NULL;

    ck_assert_msg(wproxy_list_parse(spec, &l, &why) == 0, "%s: %s", spec,
                  why ? why : "");
    return l;
}

/* The client for a request from `peer` with headers name/value pairs. */
static const char *client(const char *trusted, int which, const char *peer,
                          const char *const *hv, char *buf)
{
    struct whttp_header h[8];
    struct whttp_head head = {0};
    struct wproxy_list l = list(trusted);
    struct wproxy_addr p = ip(peer), out;
    int n = 0;

    for (; hv != NULL && hv[2 * n] != NULL; n++) {
        h[n].name = hv[2 * n];
        h[n].value = hv[2 * n + 1];
    }
    head.headers = h;
    head.nheaders = n;
    wproxy_client(&l, which, &p, &head, &out);
    wproxy_format(&out, buf, 64);
    wproxy_list_free(&l);
    return buf;
}

START_TEST(addresses)
{
    struct wproxy_addr a;
    char buf[64];

    a = ip("192.0.2.1");
    ck_assert_int_eq(a.fam, 4);
    a = ip("::ffff:192.0.2.1"); /* mapped: the same client as IPv4 */
    ck_assert_int_eq(a.fam, 4);
    wproxy_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, "192.0.2.1");
    a = ip("2001:db8::1");
    ck_assert_int_eq(a.fam, 6);
    wproxy_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2001:db8::1");
    ck_assert_int_eq(wproxy_parse_ip("1.2.3", 5, &a), -1);
    ck_assert_int_eq(wproxy_parse_ip("", 0, &a), -1);
    ck_assert_int_eq(wproxy_parse_ip("1.2.3.4:80", 10, &a), -1);
    ck_assert_int_eq(wproxy_parse_ip(" 1.2.3.4", 8, &a), -1);
}
END_TEST

START_TEST(cidr_lists)
{
    struct wproxy_list l = list("10.0.0.0/8, 192.0.2.7 fd00::/8,::1");
    struct wproxy_addr a;
    const char *why;

    ck_assert_int_eq(l.n, 4);
    ck_assert(wproxy_trusted(&l, (a = ip("10.255.1.2"), &a)));
    ck_assert(!wproxy_trusted(&l, (a = ip("11.0.0.1"), &a)));
    ck_assert(wproxy_trusted(&l, (a = ip("192.0.2.7"), &a)));
    ck_assert(!wproxy_trusted(&l, (a = ip("192.0.2.8"), &a)));
    ck_assert(wproxy_trusted(&l, (a = ip("fdab::5"), &a)));
    ck_assert(!wproxy_trusted(&l, (a = ip("fe00::5"), &a)));
    ck_assert(wproxy_trusted(&l, (a = ip("::1"), &a)));
    ck_assert(!wproxy_trusted(&l, (a = ip("::2"), &a)));
    /* an IPv4 address never matches an IPv6 block and back */
    ck_assert(!wproxy_trusted(&l, (a = ip("0.0.0.1"), &a)));
    wproxy_list_free(&l);

    l = list("192.168.1.128/25");
    ck_assert(wproxy_trusted(&l, (a = ip("192.168.1.200"), &a)));
    ck_assert(!wproxy_trusted(&l, (a = ip("192.168.1.127"), &a)));
    wproxy_list_free(&l);
    l = list("0.0.0.0/0");
    ck_assert(wproxy_trusted(&l, (a = ip("203.0.113.9"), &a)));
    ck_assert(!wproxy_trusted(&l, (a = ip("2001:db8::"), &a)));
    wproxy_list_free(&l);
    l = list("::ffff:10.0.0.0/104");
    ck_assert(wproxy_trusted(&l, (a = ip("10.1.2.3"), &a)));
    wproxy_list_free(&l);
    l = list("  ");
    ck_assert_int_eq(l.n, 0);
    wproxy_list_free(&l);

    const char *bad[] = {"10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/",
                         "10.0.0.0/8x", "example.com", "::1/129",
                         "10.0.0.0/-1", "1.2.3.4/0008"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        why = NULL;
        ck_assert_msg(wproxy_list_parse(bad[i], &l, &why) == -1, "%s", bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_ptr_null(l.v);
    }
}
END_TEST

START_TEST(xff_rightmost_untrusted)
{
    char b[64];
    const char *one[] = {"X-Forwarded-For", "203.0.113.5", NULL};
    const char *forged[] = {"X-Forwarded-For", "198.51.100.1, 203.0.113.5",
                            NULL};
    const char *chain[] = {"X-Forwarded-For",
                           "198.51.100.1, 203.0.113.5, 10.0.0.2", NULL};
    const char *lines[] = {"X-Forwarded-For", "198.51.100.1",
                           "x-forwarded-for", "203.0.113.5 , 10.0.0.3",
                           NULL};
    const char *ports[] = {"X-Forwarded-For", "203.0.113.5:4711", NULL};
    const char *v6[] = {"X-Forwarded-For", "[2001:db8::7]:443", NULL};
    const char *v6b[] = {"X-Forwarded-For", "2001:db8::8", NULL};
    const char *garbage[] = {"X-Forwarded-For", "203.0.113.5, unknown", NULL};
    const char *alltrust[] = {"X-Forwarded-For", "10.0.0.9, 10.0.0.8", NULL};
    const char *empty[] = {"X-Forwarded-For", "", NULL};
    const char *other[] = {"Forwarded", "for=203.0.113.5", NULL};

    /* from an untrusted peer the header says nothing */
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "192.0.2.1", one, b),
                     "192.0.2.1");
    ck_assert_str_eq(client("", WPROXY_XFF, "10.0.0.1", one, b), "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", one, b),
                     "203.0.113.5");
    /* what the client wrote left of the proxy's entry is not believed */
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", forged, b),
                     "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", chain, b),
                     "203.0.113.5");
    /* trusting the middle hop as well reaches one further left */
    ck_assert_str_eq(client("10.0.0.0/8 203.0.113.5", WPROXY_XFF, "10.0.0.1",
                            chain, b),
                     "198.51.100.1");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", lines, b),
                     "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", ports, b),
                     "203.0.113.5");
    ck_assert_str_eq(client("::1", WPROXY_XFF, "::1", v6, b), "2001:db8::7");
    ck_assert_str_eq(client("::1", WPROXY_XFF, "::1", v6b, b), "2001:db8::8");
    /* an unreadable hop: the trusted hop right of it */
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", garbage, b),
                     "10.0.0.1");
    /* every hop trusted: the leftmost */
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", alltrust, b),
                     "10.0.0.9");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", empty, b),
                     "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", NULL, b),
                     "10.0.0.1");
    /* only the configured header is read */
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", other, b),
                     "10.0.0.1");
}
END_TEST

START_TEST(forwarded_rfc7239)
{
    char b[64];
    const char *simple[] = {"Forwarded", "for=203.0.113.5", NULL};
    const char *pairs[] = {"Forwarded",
                           "for=198.51.100.1;proto=http, "
                           "For=\"203.0.113.5:8080\";by=10.0.0.1;proto=https",
                           NULL};
    const char *v6[] = {"Forwarded", "for=\"[2001:db8:cafe::17]:4711\"", NULL};
    const char *quoted_comma[] = {
        "Forwarded", "for=198.51.100.1, host=\"a,b\";for=203.0.113.5", NULL};
    const char *hidden[] = {"Forwarded", "for=203.0.113.5, for=_hidden",
                            NULL};
    const char *unknown[] = {"Forwarded", "for=203.0.113.5, for=unknown",
                             NULL};
    const char *nofor[] = {"Forwarded", "for=203.0.113.5, proto=https", NULL};
    const char *twofor[] = {"Forwarded", "for=203.0.113.5;for=198.51.100.1",
                            NULL};
    const char *unterminated[] = {"Forwarded", "for=\"203.0.113.5", NULL};
    const char *bare_v6[] = {"Forwarded", "for=2001:db8::1", NULL};
    const char *two_lines[] = {"Forwarded", "for=198.51.100.1", "Forwarded",
                               "for=203.0.113.5", NULL};
    const char *xff[] = {"X-Forwarded-For", "203.0.113.5", NULL};

    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", simple,
                            b),
                     "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", pairs,
                            b),
                     "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", v6, b),
                     "2001:db8:cafe::17");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1",
                            quoted_comma, b),
                     "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", hidden,
                            b),
                     "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", unknown,
                            b),
                     "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", nofor,
                            b),
                     "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", twofor,
                            b),
                     "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1",
                            unterminated, b),
                     "10.0.0.1");
    /* RFC 7239 wants IPv6 quoted and bracketed; bare is still one address */
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", bare_v6,
                            b),
                     "2001:db8::1");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1",
                            two_lines, b),
                     "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.1", WPROXY_FORWARDED, "10.0.0.1", xff, b),
                     "10.0.0.1");
    ck_assert_str_eq(client("10.0.0.2", WPROXY_FORWARDED, "10.0.0.1", simple,
                            b),
                     "10.0.0.1");
}
END_TEST

START_TEST(many_hops_bounded)
{
    char b[64], *v = malloc(20000);
    const char *h[] = {"X-Forwarded-For", v, NULL};
    size_t n = 0;

    /* a client's thousand forged hops, then the proxy's entry */
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(v + n, "10.0.%d.%d, ", i / 256, i % 256);
    sprintf(v + n, "203.0.113.5");
    ck_assert_str_eq(client("10.0.0.0/8", WPROXY_XFF, "10.0.0.1", h, b),
                     "203.0.113.5");
    free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");

    tcase_add_test(tc, addresses);
    tcase_add_test(tc, cidr_lists);
    tcase_add_test(tc, xff_rightmost_untrusted);
    tcase_add_test(tc, forwarded_rfc7239);
    tcase_add_test(tc, many_hops_bounded);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
