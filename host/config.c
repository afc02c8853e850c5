/* config.c - INI reading with inih, plus locations for every entry.
 *
 * inih's handler does not get line numbers in Debian's build, so the file is
 * fed through ini_parse_stream() with a reader that counts lines; the reader
 * also sees section headers, which inih does not report for empty sections. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "config.h"

struct wcfg_reader {
    FILE *fp;
    int line;
    struct wcfg *cfg;
    struct wdiag *diag;
    int long_line_reported;
};

static void wcfg_note_section(struct wcfg_reader *rd, const char *buf)
{
    const char *s = buf, *e;
    struct wcfg_section *sec, **tail;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '[')
        return;
    e = strchr(s, ']');
    if (e == NULL)
        return; /* inih reports the syntax error */
    sec = calloc(1, sizeof(*sec));
    if (sec == NULL)
        return;
    sec->name = strndup(s + 1, (size_t)(e - s - 1));
    sec->line = rd->line;
    for (tail = &rd->cfg->sections; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = sec;
}

static char *wcfg_reader_fn(char *str, int num, void *stream)
{
    struct wcfg_reader *rd = stream;
    char *r = fgets(str, num, rd->fp);
    size_t len;
    int c;

    if (r == NULL)
        return NULL;
    rd->line++;
    len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && !feof(rd->fp)) {
        /* Longer than inih's line buffer: report, and skip the rest. */
        wdiag_add(rd->diag, rd->cfg->path, rd->line,
                  "line longer than %d characters", num - 2);
        while ((c = fgetc(rd->fp)) != EOF && c != '\n')
            ;
        str[0] = '\0';
        return str;
    }
    wcfg_note_section(rd, str);
    return r;
}

static int wcfg_handler(void *user, const char *section, const char *name,
                        const char *value)
{
    struct wcfg_reader *rd = user;
    struct wcfg_entry *e, **tail;

    for (e = rd->cfg->entries; e != NULL; e = e->next)
        if (strcmp(e->section, section) == 0 && strcmp(e->key, name) == 0) {
            wdiag_add(rd->diag, rd->cfg->path, rd->line,
                      "key '%s' repeated in [%s] (first at line %d)", name,
                      section, e->line);
            return 1;
        }
    if (section[0] == '\0') {
        wdiag_add(rd->diag, rd->cfg->path, rd->line,
                  "key '%s' outside any section", name);
        return 1;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return 0;
    e->section = strdup(section);
    e->key = strdup(name);
    e->value = strdup(value);
    e->origin = rd->cfg->path;
    e->line = rd->line;
    if (e->section == NULL || e->key == NULL || e->value == NULL) {
        free(e->section);
        free(e->key);
        free(e->value);
        free(e);
        return 0;
    }
    for (tail = &rd->cfg->entries; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = e;
    return 1;
}

struct wcfg *wcfg_read(const char *path, struct wdiag *d)
{
    struct wcfg_reader rd = {0};
    struct wcfg *c;
    char *slash;
    int rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->path = strdup(path);
    c->dir = strdup(path);
    if (c->path == NULL || c->dir == NULL) {
        wcfg_free(c);
        return NULL;
    }
    slash = strrchr(c->dir, '/');
    if (slash == NULL)
        strcpy(c->dir, ".");
    else if (slash == c->dir)
        slash[1] = '\0';
    else
        *slash = '\0';

    rd.fp = fopen(path, "r");
    if (rd.fp == NULL) {
        wdiag_add(d, path, 0, "cannot read: %s", strerror(errno));
        wcfg_free(c);
        return NULL;
    }
    rd.cfg = c;
    rd.diag = d;
    rc = ini_parse_stream(wcfg_reader_fn, &rd, wcfg_handler, &rd);
    fclose(rd.fp);
    if (rc > 0)
        wdiag_add(d, path, rc, "syntax error (expected [section] or key = value)");
    else if (rc < 0)
        wdiag_add(d, path, 0, "out of memory while reading");
    return c;
}

void wcfg_free(struct wcfg *c)
{
    struct wcfg_entry *e, *en;
    struct wcfg_section *s, *sn;

    if (c == NULL)
        return;
    for (e = c->entries; e != NULL; e = en) {
        en = e->next;
        free(e->section);
        free(e->key);
        free(e->value);
        free(e);
    }
    for (s = c->sections; s != NULL; s = sn) {
        sn = s->next;
        free(s->name);
        free(s);
    }
    free(c->path);
    free(c->dir);
    free(c);
}

void wcfg_env_name(const char *section, const char *key, char *out,
                   unsigned size)
{
    unsigned n = 0;
    const char *parts[2] = {section, key};

    if (size == 0)
        return;
    for (const char *p = "WEFT_"; *p != '\0' && n + 1 < size; p++)
        out[n++] = *p;
    for (int i = 0; i < 2; i++) {
        if (i == 1 && n + 1 < size)
            out[n++] = '_';
        for (const char *p = parts[i]; *p != '\0' && n + 1 < size; p++)
            out[n++] = isalnum((unsigned char)*p)
                           ? (char)toupper((unsigned char)*p)
                           : '_';
    }
    out[n] = '\0';
}

struct wcfg_entry *wcfg_lookup(struct wcfg *c, const char *section,
                               const char *key)
{
    struct wcfg_entry *e, **tail;
    char name[256], *v;
    const char *env;

    for (tail = &c->entries; *tail != NULL; tail = &(*tail)->next)
        ;
    for (e = c->entries; e != NULL; e = e->next)
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            break;
    wcfg_env_name(section, key, name, sizeof(name));
    env = getenv(name);
    if (env == NULL)
        return e;
    v = strdup(env);
    if (v == NULL)
        return e;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            free(v);
            return NULL;
        }
        e->section = strdup(section);
        e->key = strdup(key);
        if (e->section == NULL || e->key == NULL) {
            free(e->section);
            free(e->key);
            free(e);
            free(v);
            return NULL;
        }
        *tail = e;
    } else {
        free(e->value);
    }
    e->value = v;
    e->origin = "environment";
    e->line = 0;
    return e;
}

static int wcfg_parse_bool(const char *s, int64_t *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Multiply with overflow check. */
static int wcfg_scale(int64_t v, int64_t by, int64_t *out)
{
    if (v > INT64_MAX / by)
        return -1;
    *out = v * by;
    return 0;
}

int wcfg_parse_value(int type, const char *s, int64_t min, int64_t max,
                     int64_t *out, const char **why)
{
    char *end;
    long long v;
    int64_t r;

    if (type == WCFG_BOOL) {
        if (wcfg_parse_bool(s, out) != 0) {
            *why = "expected true or false";
            return -1;
        }
        return 0;
    }
    if (*s == '\0' || isspace((unsigned char)*s)) {
        *why = "expected a number";
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s) {
        *why = type == WCFG_INT ? "expected an integer"
               : type == WCFG_SIZE ? "expected a size such as 512k or 1m"
                                   : "expected a duration such as 500ms or 10s";
        return -1;
    }
    r = v;
    if (type == WCFG_SIZE) {
        int64_t by = 1;
        if (strcasecmp(end, "k") == 0)
            by = 1024;
        else if (strcasecmp(end, "m") == 0)
            by = 1024 * 1024;
        else if (strcasecmp(end, "g") == 0)
            by = 1024LL * 1024 * 1024;
        else if (*end != '\0') {
            *why = "expected a size such as 512k or 1m";
            return -1;
        }
        if (wcfg_scale(v, by, &r) != 0) {
            *why = "size too large";
            return -1;
        }
    } else if (type == WCFG_MS) {
        int64_t by = 1;
        if (*end == '\0' || strcasecmp(end, "ms") == 0)
            by = 1;
        else if (strcasecmp(end, "s") == 0)
            by = 1000;
        else if (strcasecmp(end, "m") == 0)
            by = 60000;
        else if (strcasecmp(end, "h") == 0)
            by = 3600000;
        else if (strcasecmp(end, "d") == 0)
            by = 86400000;
        else {
            *why = "expected a duration such as 500ms, 10s, 2m, 12h or 30d";
            return -1;
        }
        if (wcfg_scale(v, by, &r) != 0) {
            *why = "duration too large";
            return -1;
        }
    } else if (*end != '\0') {
        *why = "expected an integer";
        return -1;
    }
    if ((min != 0 || max != 0) && (r < min || r > max)) {
        *why = "out of range";
        return -1;
    }
    *out = r;
    return 0;
}

char *wcfg_path(const struct wcfg *c, const char *rel)
{
    char *p, *real;

    if (rel[0] == '/')
        return strdup(rel);
    if (asprintf(&p, "%s/%s", c->dir, rel) < 0)
        return NULL;
    /* Show "/srv/weft/var", not "/srv/weft/config/../var", when it exists. */
    real = realpath(p, NULL);
    if (real != NULL) {
        free(p);
        return real;
    }
    return p;
}
