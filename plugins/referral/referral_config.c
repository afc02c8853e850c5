/*
 * referral_config.c - rewards from the plugin's config section.
 *
 * The config of a plugin version never changes while it runs, so the
 * rewards are re-read per request into a stack struct instead of being
 * cached in static memory (which the reload rules forbid). init parses the
 * same text once and refuses the version when it is bad, so a request
 * never meets a bad ladder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral_util.h"

static const char *ref_skip_space(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *ref_trim_end(const char *s, const char *end)
{
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end;
}

/* One "N:Name" item in [s, end) into b. 0, or -1 with why. */
static int ref_badge_item(const char *s, const char *end, struct ref_badge *b,
                          char *why, size_t whylen)
{
    const char *colon, *name, *p;
    json_t *check;
    int64_t n = 0;

    s = ref_skip_space(s, end);
    end = ref_trim_end(s, end);
    colon = memchr(s, ':', (size_t)(end - s));
    if (colon == NULL || colon == s) {
        snprintf(why, whylen, "badges: \"%.*s\" is not THRESHOLD:NAME",
                 (int)(end - s), s);
        return -1;
    }
    for (p = s; p < ref_trim_end(s, colon); p++) {
        if (*p < '0' || *p > '9' || n > 100000000) {
            snprintf(why, whylen,
                     "badges: threshold \"%.*s\" is not a whole number "
                     "in 1..1000000000",
                     (int)(colon - s), s);
            return -1;
        }
        n = n * 10 + (*p - '0');
    }
    if (n < 1 || n > 1000000000) {
        snprintf(why, whylen, "badges: threshold \"%.*s\" is not in "
                              "1..1000000000",
                 (int)(colon - s), s);
        return -1;
    }
    name = ref_skip_space(colon + 1, end);
    if (name == end || (size_t)(end - name) > REF_BADGE_NAME_MAX) {
        snprintf(why, whylen, "badges: the name after %lld: must be 1 to %d "
                              "bytes",
                 (long long)n, REF_BADGE_NAME_MAX);
        return -1;
    }
    for (p = name; p < end; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "badges: the name after %lld: has a "
                                  "control character",
                     (long long)n);
            return -1;
        }
    /* jansson refuses invalid UTF-8: the name must survive JSON. */
    check = json_stringn(name, (size_t)(end - name));
    if (check == NULL) {
        snprintf(why, whylen, "badges: the name after %lld: is not UTF-8",
                 (long long)n);
        return -1;
    }
    json_decref(check);
    b->threshold = n;
    memcpy(b->name, name, (size_t)(end - name));
    b->name[end - name] = '\0';
    return 0;
}

int ref_badges_parse(const char *text, struct ref_rewards *rw, char *why,
                     size_t whylen)
{
    const char *s = text, *end, *comma;

    rw->nbadges = 0;
    if (text == NULL)
        return 0;
    end = text + strlen(text);
    if (ref_skip_space(s, end) == end)
        return 0; /* an empty ladder: no badges */
    while (s <= end) {
        struct ref_badge *b;

        comma = memchr(s, ',', (size_t)(end - s));
        if (comma == NULL)
            comma = end;
        if (rw->nbadges == REF_MAX_BADGES) {
            snprintf(why, whylen, "badges: at most %d", REF_MAX_BADGES);
            return -1;
        }
        b = &rw->badges[rw->nbadges];
        if (ref_badge_item(s, comma, b, why, whylen) != 0)
            return -1;
        if (rw->nbadges > 0 &&
            b->threshold <= rw->badges[rw->nbadges - 1].threshold) {
            snprintf(why, whylen, "badges: thresholds must increase "
                                  "(%lld after %lld)",
                     (long long)b->threshold,
                     (long long)rw->badges[rw->nbadges - 1].threshold);
            return -1;
        }
        rw->nbadges++;
        s = comma + 1;
    }
    return 0;
}

int ref_rewards_load(weft_plugin *p, struct ref_rewards *rw, char *why,
                     size_t whylen)
{
    const char *badges = NULL;

    memset(rw, 0, sizeof(*rw));
    if (weft_config_int(p, "points_direct", &rw->points_direct) != WEFT_OK ||
        weft_config_int(p, "points_second", &rw->points_second) != WEFT_OK ||
        weft_config_string(p, "badges", &badges) != WEFT_OK) {
        snprintf(why, whylen, "cannot read the config keys");
        return -1;
    }
    return ref_badges_parse(badges, rw, why, whylen);
}

int64_t ref_points(const struct ref_rewards *rw, int64_t direct,
                   int64_t second)
{
    /* Bounded: counts are SQL integers and the factors at most 10^6. */
    return direct * rw->points_direct + second * rw->points_second;
}

int ref_rewards_stats(const struct ref_rewards *rw, int64_t direct,
                      int64_t second, json_t *stats)
{
    json_t *earned = json_array(), *next = json_null();
    size_t i;
    int bad = 0;

    if (earned == NULL)
        return -1;
    for (i = 0; i < rw->nbadges; i++) {
        const struct ref_badge *b = &rw->badges[i];

        if (b->threshold <= direct) {
            if (json_array_append_new(
                    earned, json_pack("{s:I, s:s}", "threshold",
                                      (json_int_t)b->threshold, "name",
                                      b->name)) != 0)
                goto fail;
            continue;
        }
        next = json_pack("{s:I, s:s, s:I}", "threshold",
                         (json_int_t)b->threshold, "name", b->name, "missing",
                         (json_int_t)(b->threshold - direct));
        if (next == NULL)
            goto fail;
        break;
    }
    /* Each set_new consumes its value even when it fails: call all. */
    bad |= json_object_set_new(stats, "points",
                               json_integer(ref_points(rw, direct, second)));
    bad |= json_object_set_new(stats, "badges", earned);
    bad |= json_object_set_new(stats, "next_badge", next);
    return bad != 0 ? -1 : 0;
fail:
    json_decref(earned);
    json_decref(next);
    return -1;
}
