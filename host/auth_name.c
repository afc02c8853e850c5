/* auth_name.c - names with ICU.
 *
 * The spoof checker is built once; ICU documents a configured
 * USpoofChecker as safe for concurrent checks, which the loops do. */
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uset.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>

#include "auth_name.h"
#include "utf8.h"

#define WNAME_U16 256 /* UTF-16 units of a name we look at */

static USpoofChecker *wname_sc;

static const char wname_bad_user[] =
    "username: 3 to 32 letters, digits, '_', '.' or '-' (letters of one "
    "script beyond ASCII are fine; no spaces, invisible or look-alike "
    "mixes)";

int wname_init(void)
{
    UErrorCode e = U_ZERO_ERROR;
    USet *allowed;

    if (wname_sc != NULL)
        return 0;
    wname_sc = uspoof_open(&e);
    if (U_FAILURE(e))
        return -1;
    /* UTS #39's identifier set plus the ASCII punctuation names may use. */
    allowed = uset_openEmpty();
    uset_addAll(allowed, uspoof_getRecommendedSet(&e));
    uset_add(allowed, '_');
    uset_add(allowed, '.');
    uset_add(allowed, '-');
    uspoof_setAllowedChars(wname_sc, allowed, &e);
    uset_close(allowed);
    uspoof_setChecks(wname_sc,
                     USPOOF_RESTRICTION_LEVEL | USPOOF_CHAR_LIMIT |
                         USPOOF_INVISIBLE | USPOOF_MIXED_NUMBERS,
                     &e);
    uspoof_setRestrictionLevel(wname_sc, USPOOF_MODERATELY_RESTRICTIVE);
    if (U_FAILURE(e)) {
        uspoof_close(wname_sc);
        wname_sc = NULL;
        return -1;
    }
    return 0;
}

void wname_fini(void)
{
    uspoof_close(wname_sc);
    wname_sc = NULL;
}

/* UTF-8 -> normalised UTF-8 (nfkc or NFKC_Casefold). 0, or -1. */
static int wname_normalize(const UNormalizer2 *n, const char *in, char *out,
                           size_t size)
{
    UChar a[WNAME_U16], b[WNAME_U16];
    int32_t la = 0, lb, lo = 0;
    UErrorCode e = U_ZERO_ERROR;

    u_strFromUTF8(a, WNAME_U16, &la, in, -1, &e);
    if (U_FAILURE(e) || la >= WNAME_U16)
        return -1;
    lb = unorm2_normalize(n, a, la, b, WNAME_U16, &e);
    if (U_FAILURE(e) || lb >= WNAME_U16)
        return -1;
    u_strToUTF8(out, (int32_t)size, &lo, b, lb, &e);
    if (U_FAILURE(e) || lo >= (int32_t)size)
        return -1;
    out[lo] = '\0';
    return 0;
}

const char *wname_username(const char *u, char norm[WNAME_MAX],
                           char skel[WNAME_MAX])
{
    static const char ascii[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
                                "tuvwxyz0123456789_.-";
    UErrorCode e = U_ZERO_ERROR;
    char folded[WNAME_MAX];
    const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&e);
    const UNormalizer2 *fold = unorm2_getNFKCCasefoldInstance(&e);
    size_t n = u != NULL ? strlen(u) : 0;
    int32_t chars = 0, len;

    if (U_FAILURE(e) || wname_sc == NULL || n == 0 || n > 128 ||
        !wutf8_valid(u, n) || wname_normalize(nfkc, u, norm, WNAME_MAX) != 0)
        return wname_bad_user;
    len = (int32_t)strlen(norm);
    for (int32_t i = 0; i < len;) {
        UChar32 c;
        U8_NEXT(norm, i, len, c);
        if (c < 0 || (c < 0x80 && strchr(ascii, (int)c) == NULL))
            return wname_bad_user;
        chars++;
    }
    if (chars < 3 || chars > 32)
        return wname_bad_user;
    if (uspoof_checkUTF8(wname_sc, norm, len, NULL, &e) != 0 || U_FAILURE(e))
        return wname_bad_user;
    if (wname_normalize(fold, norm, folded, sizeof(folded)) != 0)
        return wname_bad_user;
    len = uspoof_getSkeletonUTF8(wname_sc, 0, folded, -1, skel, WNAME_MAX,
                                 &e);
    if (U_FAILURE(e) || len >= WNAME_MAX)
        return wname_bad_user;
    skel[len] = '\0';
    return NULL;
}

/* Visible enough to be part of a name someone else reads. */
static int wname_display_cp_ok(UChar32 c)
{
    int8_t t = u_charType(c);

    if (c == ' ')
        return 1;
    /* U+2800 BRAILLE PATTERN BLANK is a symbol that draws nothing, and no
     * Unicode property says so: the one blank ICU's properties miss. */
    return !(t == U_CONTROL_CHAR || t == U_FORMAT_CHAR ||
             t == U_UNASSIGNED || t == U_PRIVATE_USE_CHAR ||
             t == U_SURROGATE || t == U_SPACE_SEPARATOR ||
             t == U_LINE_SEPARATOR || t == U_PARAGRAPH_SEPARATOR ||
             u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
             u_hasBinaryProperty(c, UCHAR_BIDI_CONTROL) || c == 0x2800);
}

const char *wname_display(const char *s)
{
    static const char bad[] =
        "display_name: 1 to 64 bytes of UTF-8 text (no control, invisible "
        "or direction-changing characters)";
    int32_t len = s != NULL ? (int32_t)strlen(s) : 0;
    int visible = 0;

    if (len < 1 || len > 64 || !wutf8_valid(s, (size_t)len))
        return bad;
    for (int32_t i = 0; i < len;) {
        UChar32 c;
        U8_NEXT(s, i, len, c);
        if (c < 0 || !wname_display_cp_ok(c))
            return bad;
        visible |= c != ' ';
    }
    return visible ? NULL : bad;
}
