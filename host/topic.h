/* topic.h - topic names in NATS subject syntax: tokens separated by '.',
 * '*' matches one token, '>' (last token only) matches one or more. */
#ifndef WEFT_HOST_TOPIC_H
#define WEFT_HOST_TOPIC_H

#include <stddef.h>

/* Longest topic or pattern accepted anywhere (bytes). */
#define WTOPIC_MAX 200

/* 1 when `s` is a valid topic (wild = 0) or pattern (wild = 1). Tokens are
 * non-empty and made of ASCII letters, digits and "_-:@~"; a pattern may use
 * "*" as a whole token and ">" as its last token. */
int wtopic_valid(const char *s, int wild);

/* FNV-1a of a topic, for the hash tables that index topics. */
size_t wtopic_hash(const char *s);

/* 1 when the topic `subject` (no wildcards) matches `pattern`. */
int wtopic_match(const char *pattern, const char *subject);

/* 1 when every topic matched by `inner` is also matched by `outer`
 * (both patterns). Used to check a wildcard subscription against the
 * owner's registered pattern. */
int wtopic_covers(const char *outer, const char *inner);

#endif
