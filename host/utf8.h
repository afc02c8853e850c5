/* utf8.h - strict UTF-8 validation (RFC 3629, Unicode table 3-7). */
#ifndef WEFT_HOST_UTF8_H
#define WEFT_HOST_UTF8_H

#include <stddef.h>

/*
 * Returns 1 when the `len` bytes at `s` are well-formed UTF-8, else 0.
 * Refused: overlong forms, UTF-16 surrogates (U+D800..U+DFFF), code points
 * above U+10FFFF, stray continuation bytes and truncated sequences. NUL
 * bytes are valid UTF-8; callers that cannot carry them check separately.
 */
int wutf8_valid(const void *s, size_t len);

#endif
