/* diag.c - collected problems with their location. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void wdiag_add(struct wdiag *d, const char *file, int line, const char *fmt,
               ...)
{
    char msg[1024], *full;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (file != NULL && line > 0)
        n = asprintf(&full, "%s:%d: %s", file, line, msg);
    else if (file != NULL)
        n = asprintf(&full, "%s: %s", file, msg);
    else
        n = asprintf(&full, "%s", msg);
    if (n < 0)
        return;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 8;
        char **m = realloc(d->msgs, (size_t)cap * sizeof(*m));
        if (m == NULL) {
            free(full);
            return;
        }
        d->msgs = m;
        d->cap = cap;
    }
    d->msgs[d->n++] = full;
}

char *wdiag_join(const struct wdiag *d)
{
    size_t len = 1;
    char *s, *p;

    if (d->n == 0)
        return NULL;
    for (int i = 0; i < d->n; i++)
        len += strlen(d->msgs[i]) + 2;
    s = p = malloc(len);
    if (s == NULL)
        return NULL;
    for (int i = 0; i < d->n; i++) {
        size_t l = strlen(d->msgs[i]);
        if (i > 0) {
            memcpy(p, "; ", 2);
            p += 2;
        }
        memcpy(p, d->msgs[i], l);
        p += l;
    }
    *p = '\0';
    return s;
}

void wdiag_free(struct wdiag *d)
{
    for (int i = 0; i < d->n; i++)
        free(d->msgs[i]);
    free(d->msgs);
    d->msgs = NULL;
    d->n = d->cap = 0;
}
