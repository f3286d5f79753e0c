/* jval: helpers over jansson for reading request bodies with field-level
 * validation. On a bad field they fill a jval_error naming the field, which
 * the caller turns into the API's 400 invalid_argument with details.field. */
#ifndef ECOM_JVAL_H
#define ECOM_JVAL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Deepest nesting of objects and arrays a request body may have (the
 * top-level object is level 1). Deeper bodies are refused before parsing:
 * nothing in the API nests that far, and a parser's recursion should not be
 * the client's to choose. */
#define JVAL_MAX_DEPTH 32

typedef struct jval_error {
	char field[64];
	char message[160];
} jval_error;

/* Parses a JSON object from buf (len bytes). Returns a new reference, or
 * NULL with e filled ("body" / reason) when it is not valid JSON, not an
 * object, or nested deeper than JVAL_MAX_DEPTH. */
json_t *jval_parse_object(const char *buf, size_t len, jval_error *e);

/* Reads string field name of obj. required: absent is an error; otherwise
 * absent leaves *out NULL and returns 0. The length is checked in bytes
 * against [minlen, maxlen] and must be valid UTF-8 without NUL. *out is
 * borrowed from obj. Returns 0 or ERR_INVALID with e filled. */
int jval_str(json_t *obj, const char *name, int required, size_t minlen, size_t maxlen,
	     const char **out, jval_error *e);
/* Reads an integer field within [min, max]. *present (may be NULL) tells
 * whether it was there. Reals, strings and booleans are type errors. */
int jval_int(json_t *obj, const char *name, int required, int64_t min, int64_t max,
	     int64_t *out, int *present, jval_error *e);
/* Fills e; returns ERR_INVALID, for callers' own checks. */
int jval_fail(jval_error *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Serialises v compactly into a new malloc'd string (caller frees). */
char *jval_dump(const json_t *v);

/* Adds n to the integer obj[key] (absent counts as 0): for tallies. */
void jval_add_int(json_t *obj, const char *key, int64_t n);

#endif
