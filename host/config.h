/* config.h - the INI file as entries with locations, environment overrides,
 * and typed value parsing shared by the host's keys and the plugins'. */
#ifndef WEFT_HOST_CONFIG_H
#define WEFT_HOST_CONFIG_H

#include <stdint.h>

#include "diag.h"

/* Same numbers as enum weft_config_type in the SDK. */
enum { WCFG_STRING = 1, WCFG_INT = 2, WCFG_BOOL = 3, WCFG_SIZE = 4,
       WCFG_MS = 5 };

struct wcfg_entry {
    char *section, *key, *value;
    const char *origin; /* the file, or "environment"          */
    int line;           /* 0 for the environment               */
    int used;           /* claimed by a known key              */
    struct wcfg_entry *next;
};

struct wcfg_section {
    char *name;
    int line;
    struct wcfg_section *next;
};

struct wcfg {
    char *path; /* as given                                    */
    char *dir;  /* its directory, for relative paths            */
    struct wcfg_entry *entries;
    struct wcfg_section *sections;
};

/* Read `path`. Syntax problems go to `d`; returns NULL only when the file
 * cannot be read at all (also reported in `d`). */
struct wcfg *wcfg_read(const char *path, struct wdiag *d);
void wcfg_free(struct wcfg *c);

/* The entry for section/key, after applying WEFT_<SECTION>_<KEY> from the
 * environment (which wins, and may create the entry). NULL if neither. */
struct wcfg_entry *wcfg_lookup(struct wcfg *c, const char *section,
                               const char *key);

/* "plugin.event-bridge", "enabled" -> "WEFT_PLUGIN_EVENT_BRIDGE_ENABLED" */
void wcfg_env_name(const char *section, const char *key, char *out,
                   unsigned size);

/* Parse a value of `type` (not STRING) within [min, max] (ignored when
 * min == max == 0). Returns 0, or -1 with *why set. */
int wcfg_parse_value(int type, const char *s, int64_t min, int64_t max,
                     int64_t *out, const char **why);

/* `rel` resolved against the config file's directory (malloc'd). */
char *wcfg_path(const struct wcfg *c, const char *rel);

#endif
