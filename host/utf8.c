/* utf8.c - strict UTF-8 validation, one pass, no tables. */
#include "utf8.h"

/*
 * The second byte carries every restriction that is not "80..BF": it is
 * what excludes overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF)
 * and code points above U+10FFFF (F4 90..BF). Later bytes are plain
 * continuation bytes.
 */
int wutf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s, *end = p + len;
    unsigned char c, lo, hi;
    int more;

    while (p < end) {
        c = *p++;
        if (c < 0x80)
            continue;
        lo = 0x80;
        hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0; /* 80..C1 (continuation or overlong lead), F5..FF */
        }
        if (end - p < more || *p < lo || *p > hi)
            return 0;
        p++;
        while (--more > 0) {
            if (*p < 0x80 || *p > 0xbf)
                return 0;
            p++;
        }
    }
    return 1;
}
