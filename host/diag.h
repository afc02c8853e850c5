/* diag.h - a list of "file:line: message" problems, for --check-config and
 * for the reasons a plugin was refused. */
#ifndef WEFT_HOST_DIAG_H
#define WEFT_HOST_DIAG_H

struct wdiag {
    char **msgs;
    int n, cap;
};

/* `file` may be NULL (no location) and `line` 0 (file only). */
void wdiag_add(struct wdiag *d, const char *file, int line, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));
/* All messages joined with "; " (malloc'd), or NULL when there are none. */
char *wdiag_join(const struct wdiag *d);
void wdiag_free(struct wdiag *d);

#endif
