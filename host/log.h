/* log.h - one line per event on stderr, written with a single write(2). */
#ifndef WEFT_HOST_LOG_H
#define WEFT_HOST_LOG_H

#include <stdarg.h>

enum { WLOG_ERROR = 0, WLOG_WARN = 1, WLOG_INFO = 2, WLOG_DEBUG = 3 };

void wlog_set_level(int level);
int wlog_enabled(int level);
/* Parse "error", "warn", "info", "debug"; returns -1 when unknown. */
int wlog_level_parse(const char *s);

/* `component` is e.g. "host", "http", "plugin:hello"; `rid` may be NULL. */
void wlog_v(int level, const char *component, const char *rid,
            const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
void wlog(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wlog_rid(int level, const char *component, const char *rid,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Write an already formatted line (the access log). */
void wlog_raw(const char *line, int len);

#endif
