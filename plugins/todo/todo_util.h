/*
 * todo_util.h - what every todo route shares: ids from the path and the
 * session, body validation with messages that name the field, limits.
 */
#ifndef TODO_UTIL_H
#define TODO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <weft/weft.h>

/* A bigint in decimal, sign and NUL included, with room to spare. */
#define TODO_ID_LEN 24

#define TODO_TITLE_MAX 100
#define TODO_TEXT_MAX 500

/* One member a request body may carry. `type` is JSON_STRING, JSON_TRUE
 * (meaning a boolean) or JSON_ARRAY. */
struct todo_field {
    const char *name;
    json_type type;
    int required;
};

/* The path parameter "id" as canonical decimal text. Returns 0, or -1 when
 * it is not a positive bigint: the caller answers 404 (an id that cannot
 * exist is simply not found). */
int todo_path_id(weft_req *r, char out[TODO_ID_LEN]);

/* The signed-in user's id as decimal text (routes are WEFT_ROUTE_USER). */
void todo_user_id(weft_req *r, char out[TODO_ID_LEN]);

/* The body as JSON, or NULL after answering 400 bad_json. */
json_t *todo_body(weft_req *r);

/* Why json_unpack_ex() refused `in`, naming the field, into `why`. */
void todo_unpack_why(json_t *in, const json_error_t *err,
                     const struct todo_field *fields, char *why, size_t size);

/* 0 when `s` (`len` bytes of UTF-8) is 1..max characters and not blank;
 * otherwise -1 with a message naming `field` in `why`. */
int todo_check_text(const char *field, const char *s, size_t len, size_t max,
                    char *why, size_t size);

/* Drop `in` (may be NULL) and answer an error; returns the answer's code. */
int todo_fail(weft_req *r, json_t *in, int status, const char *code,
              const char *msg);

/* The configured limit `key` (max_lists, max_items) as decimal text. */
void todo_limit(weft_req *r, const char *key, int64_t def,
                char out[TODO_ID_LEN]);

/* The member "id" of a row as an integer (0 when absent). */
json_int_t todo_row_id(json_t *row, const char *key);

#endif /* TODO_UTIL_H */
