/* unit.h - shared bits of the host unit tests (Check, fork mode). */
#ifndef WEFT_TEST_UNIT_H
#define WEFT_TEST_UNIT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write `text` to a fresh temporary file; returns its malloc'd path. */
static inline char *unit_tmpfile(const char *text)
{
    char *path = strdup("/tmp/weft-unit-XXXXXX");
    int fd = mkstemp(path);
    size_t len = strlen(text);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Run one suite; the process exit status is the number of failures. */
static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif
