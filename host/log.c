/* log.c - leveled logging. Each line is formatted into one buffer and written
 * with one write(2) so lines from different threads never interleave. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static atomic_int wlog_level_cur = WLOG_INFO;
static const char *const wlog_names[] = {"error", "warn", "info", "debug"};

void wlog_set_level(int level)
{
    atomic_store(&wlog_level_cur, level);
}

int wlog_enabled(int level)
{
    return level <= atomic_load_explicit(&wlog_level_cur, memory_order_relaxed);
}

int wlog_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, wlog_names[i]) == 0)
            return i;
    return -1;
}

void wlog_raw(const char *line, int len)
{
    ssize_t n;

    while (len > 0) {
        n = write(STDERR_FILENO, line, (size_t)len);
        if (n <= 0)
            return; /* nowhere left to report a logging failure */
        line += n;
        len -= (int)n;
    }
}

void wlog_v(int level, const char *component, const char *rid,
            const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    int n, m;

    if (!wlog_enabled(level))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000L, wlog_names[level], component);
    if (rid != NULL && n < (int)sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, "rid=%s ", rid);
    if (n >= (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2; /* truncated: keep the newline */
    /* A message must stay on one line, whatever a plugin passed in. */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    wlog_raw(line, n);
}

void wlog(int level, const char *component, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    wlog_v(level, component, NULL, fmt, ap);
    va_end(ap);
}

void wlog_rid(int level, const char *component, const char *rid,
              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    wlog_v(level, component, rid, fmt, ap);
    va_end(ap);
}
