/*
 * todo_util.c - ids, body validation and limits shared by the routes.
 */
#include "todo_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int todo_path_id(weft_req *r, char out[TODO_ID_LEN])
{
    const char *s = weft_req_param(r, "id");
    char *end;
    long long v;

    /* Digits only: strtoll alone would take " 7", "+7" and "-7". */
    if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return -1;
    snprintf(out, TODO_ID_LEN, "%lld", v);
    return 0;
}

void todo_user_id(weft_req *r, char out[TODO_ID_LEN])
{
    snprintf(out, TODO_ID_LEN, "%" PRId64, weft_req_user(r));
}

json_t *todo_body(weft_req *r)
{
    const char *err = NULL;
    json_t *in = weft_req_json(r, &err);

    if (in == NULL)
        (void)weft_reply_error(r, 400, "bad_json",
                               err != NULL ? err : "the body is not JSON");
    return in;
}

static const char *todo_type_name(json_type t)
{
    switch (t) {
    case JSON_STRING:
        return "a string";
    case JSON_TRUE:
    case JSON_FALSE:
        return "true or false";
    case JSON_ARRAY:
        return "an array";
    default:
        return "of another type";
    }
}

static int todo_type_ok(json_t *v, json_type want)
{
    if (want == JSON_TRUE)
        return json_is_boolean(v);
    return json_typeof(v) == want;
}

void todo_unpack_why(json_t *in, const json_error_t *err,
                     const struct todo_field *fields, char *why, size_t size)
{
    const struct todo_field *f;
    const char *key;
    json_t *v;

    if (!json_is_object(in)) {
        snprintf(why, size, "the body must be a JSON object");
        return;
    }
    /* Unknown members first: JSON_STRICT refused them, say which. */
    json_object_foreach(in, key, v) {
        for (f = fields; f->name != NULL; f++)
            if (strcmp(f->name, key) == 0)
                break;
        if (f->name == NULL) {
            snprintf(why, size, "unknown field \"%.60s\"", key);
            return;
        }
    }
    for (f = fields; f->name != NULL; f++) {
        v = json_object_get(in, f->name);
        if (v == NULL && f->required) {
            snprintf(why, size, "%s is required", f->name);
            return;
        }
        if (v != NULL && !todo_type_ok(v, f->type)) {
            snprintf(why, size, "%s must be %s", f->name,
                     todo_type_name(f->type));
            return;
        }
    }
    snprintf(why, size, "invalid body: %s", err->text);
}

/* Characters, not bytes: every UTF-8 sequence has one non-continuation
 * byte (the host's JSON parser already checked the encoding). */
static size_t todo_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

int todo_check_text(const char *field, const char *s, size_t len, size_t max,
                    char *why, size_t size)
{
    size_t n = todo_chars(s, len);

    /* A NUL inside would be cut by C strings and refused by PostgreSQL. */
    if (memchr(s, '\0', len) != NULL) {
        snprintf(why, size, "%s must not contain NUL characters", field);
        return -1;
    }
    if (n < 1 || n > max || strspn(s, " \t\r\n") == len) {
        snprintf(why, size, "%s must be 1 to %zu characters, not blank",
                 field, max);
        return -1;
    }
    return 0;
}

int todo_fail(weft_req *r, json_t *in, int status, const char *code,
              const char *msg)
{
    json_decref(in);
    return weft_reply_error(r, status, code, msg);
}

void todo_limit(weft_req *r, const char *key, int64_t def,
                char out[TODO_ID_LEN])
{
    int64_t v = def;

    /* Declared with a default, so only a host bug makes this fail. */
    if (weft_config_int(weft_req_plugin(r), key, &v) != WEFT_OK)
        v = def;
    snprintf(out, TODO_ID_LEN, "%" PRId64, v);
}

json_int_t todo_row_id(json_t *row, const char *key)
{
    return json_integer_value(json_object_get(row, key));
}
