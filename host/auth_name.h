/* auth_name.h - usernames and display names that look like themselves:
 * NFKC, UTS #39 (ICU's spoof checker) and a unique confusable skeleton. */
#ifndef WEFT_HOST_AUTH_NAME_H
#define WEFT_HOST_AUTH_NAME_H

#include <stddef.h>

#define WNAME_MAX 512 /* bytes of a normalised name or skeleton, NUL included */

int wname_init(void);
void wname_fini(void);

/*
 * Check a username and give its stored form `norm` (NFKC) and its
 * skeleton `skel` (the UTS #39 skeleton of its NFKC case fold: two names
 * that look alike have the same one). Refused: not 3..32 characters after
 * NFKC; ASCII other than letters, digits and "_.-"; characters outside
 * UTS #39's recommended identifier set (invisible fillers such as U+3164
 * and U+2800, controls, spaces, bidirectional controls); scripts mixed
 * beyond UTS #39's moderately restrictive level (Latin with Cyrillic).
 * Returns NULL, or why (a message for the client).
 */
const char *wname_username(const char *u, char norm[WNAME_MAX],
                           char skel[WNAME_MAX]);

/* Check a display name: 1..64 bytes of UTF-8 text with at least one
 * visible character, and no controls, format or bidirectional-control
 * characters, default-ignorable (invisible) code points, unassigned or
 * private-use ones, or separators other than U+0020. NULL, or why. */
const char *wname_display(const char *s);

#endif
