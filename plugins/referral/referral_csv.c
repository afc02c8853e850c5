/*
 * referral_csv.c - a growing buffer and RFC 4180 fields.
 *
 * Display names are chosen by users, and the export is opened by admins in
 * spreadsheets: a name like =HYPERLINK(...) must stay text there. So a text
 * field starting with a formula trigger gets a leading apostrophe (the
 * OWASP advice), and fields that could break the row are quoted.
 */
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

int ref_buf_add(struct ref_buf *b, const void *s, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        char *d;

        while (cap - b->len < n + 1) {
            if (cap > ((size_t)-1) / 2)
                return -1;
            cap *= 2;
        }
        d = realloc(b->data, cap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void ref_buf_free(struct ref_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int ref_csv_field(struct ref_buf *b, const char *s, int text)
{
    const char *p;
    int quote;

    if (s == NULL)
        s = "";
    if (!text)
        return ref_buf_add(b, s, strlen(s));
    quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote && ref_buf_add(b, "\"", 1) != 0)
        return -1;
    if (s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL &&
        ref_buf_add(b, "'", 1) != 0)
        return -1;
    for (p = s;;) {
        const char *q = strchr(p, '"');

        if (q == NULL)
            break;
        /* a quote inside a quoted field is written twice */
        if (ref_buf_add(b, p, (size_t)(q - p) + 1) != 0 ||
            ref_buf_add(b, "\"", 1) != 0)
            return -1;
        p = q + 1;
    }
    if (ref_buf_add(b, p, strlen(p)) != 0)
        return -1;
    if (quote && ref_buf_add(b, "\"", 1) != 0)
        return -1;
    return 0;
}
