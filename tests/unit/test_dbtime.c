/* weft_db_json's dates and timestamps: RFC 3339, whatever PostgreSQL's
 * text form; values RFC 3339 cannot say stay PostgreSQL's text. */
#include "db.h"
#include "unit.h"

#define DATE 1082
#define TS 1114
#define TSTZ 1184

/* One row of `n` text values of type `oid`, as a query would give it. */
static struct weft_db_res one_row(unsigned oid, const char *const *v, int n)
{
    struct weft_db_res r = {0};
    PGresAttDesc att[8];
    char names[8][3];

    ck_assert_int_le(n, 8);
    r.res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    ck_assert_ptr_nonnull(r.res);
    memset(att, 0, sizeof(att));
    for (int i = 0; i < n; i++) {
        names[i][0] = 'c';
        names[i][1] = (char)('0' + i);
        names[i][2] = '\0';
        att[i].name = names[i];
        att[i].typid = oid;
        att[i].typlen = 8;
        att[i].atttypmod = -1;
    }
    ck_assert_int_eq(PQsetResultAttrs(r.res, n, att), 1);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(
            PQsetvalue(r.res, 0, i, (char *)v[i], (int)strlen(v[i])), 1);
    return r;
}

static void expect(unsigned oid, const char *pg, const char *want)
{
    struct weft_db_res r = one_row(oid, &pg, 1);
    json_t *row = wdb_json(&r, 0);

    ck_assert_ptr_nonnull(row);
    ck_assert_msg(json_is_string(json_object_get(row, "c0")), "%s", pg);
    ck_assert_msg(strcmp(json_string_value(json_object_get(row, "c0")),
                         want) == 0,
                  "%s gave %s, want %s", pg,
                  json_string_value(json_object_get(row, "c0")), want);
    json_decref(row);
    PQclear(r.res);
}

START_TEST(timestamptz_is_utc_with_z)
{
    expect(TSTZ, "2026-12-04 01:16:16.123+00", "2026-12-04T01:16:16.123Z");
    expect(TSTZ, "2026-12-04 01:16:16+00", "2026-12-04T01:16:16Z");
    expect(TSTZ, "2026-12-04 01:16:16.123456+00",
           "2026-12-04T01:16:16.123456Z");
    /* other session time zones: the same instant, in UTC */
    expect(TSTZ, "2026-12-04 06:46:16.5+05:30", "2026-12-04T01:16:16.5Z");
    expect(TSTZ, "2026-12-03 17:16:16-08", "2026-12-04T01:16:16Z");
    /* across a day, a month, a year and a leap day */
    expect(TSTZ, "2027-01-01 00:30:00+01", "2026-12-31T23:30:00Z");
    expect(TSTZ, "2024-02-28 23:00:00-02", "2024-02-29T01:00:00Z");
    expect(TSTZ, "2023-02-28 23:00:00-02", "2023-03-01T01:00:00Z");
    /* old local mean time offsets carry seconds */
    expect(TSTZ, "1890-06-01 12:00:00+00:09:21", "1890-06-01T11:50:39Z");
    expect(TSTZ, "1969-12-31 23:59:59+00", "1969-12-31T23:59:59Z");
    expect(TSTZ, "0001-01-01 00:00:00+00", "0001-01-01T00:00:00Z");
}
END_TEST

START_TEST(timestamp_and_date)
{
    /* a timestamp has no zone: none is invented */
    expect(TS, "2026-12-04 01:16:16.123", "2026-12-04T01:16:16.123");
    expect(TS, "2026-12-04 01:16:16", "2026-12-04T01:16:16");
    expect(DATE, "2026-12-04", "2026-12-04");
    expect(DATE, "2024-02-29", "2024-02-29");
}
END_TEST

START_TEST(what_rfc3339_cannot_say_stays_text)
{
    const char *keep[] = {"infinity", "-infinity",
                          "0044-03-15 12:00:00+00 BC",
                          "10000-01-01 00:00:00+00",
                          "12/04/2026 01:16:16.123 UTC", /* DateStyle SQL */
                          "2026-13-04 01:16:16+00", "2026-02-30 00:00:00+00",
                          "2026-12-04 25:00:00+00", "2026-12-04 01:16:16",
                          "2026-12-04 01:16:16.+00", "2026-12-04 01:16:16+0",
                          "9999-12-31 23:30:00-01", ""};

    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        expect(TSTZ, keep[i], keep[i]);
    expect(DATE, "2023-02-29", "2023-02-29");
    expect(DATE, "0044-03-15 BC", "0044-03-15 BC");
    expect(TS, "2026-12-04 01:16:16+00", "2026-12-04 01:16:16+00");
}
END_TEST

START_TEST(whole_results_and_other_types)
{
    const char *v[] = {"2026-12-04 01:16:16.123+00", "2026-12-05 00:00:00+00"};
    struct weft_db_res r = one_row(TSTZ, v, 2);
    json_t *all = wdb_json(&r, -1), *row;

    ck_assert_int_eq(json_array_size(all), 1);
    row = json_array_get(all, 0);
    ck_assert_str_eq(json_string_value(json_object_get(row, "c0")),
                     "2026-12-04T01:16:16.123Z");
    ck_assert_str_eq(json_string_value(json_object_get(row, "c1")),
                     "2026-12-05T00:00:00Z");
    json_decref(all);
    PQclear(r.res);
    /* text columns that look like times are left alone */
    expect(25, "2026-12-04 01:16:16+00", "2026-12-04 01:16:16+00");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dbtime");
    TCase *tc = tcase_create("dbtime");

    tcase_add_test(tc, timestamptz_is_utc_with_z);
    tcase_add_test(tc, timestamp_and_date);
    tcase_add_test(tc, what_rfc3339_cannot_say_stays_text);
    tcase_add_test(tc, whole_results_and_other_types);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
