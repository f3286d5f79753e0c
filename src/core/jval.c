/* jval: request-body parsing and field validation over jansson.
 *
 * Parsing uses JSON_REJECT_DUPLICATES: with duplicate keys, two components
 * (a proxy and a service, say) could each see a different value for the same
 * field. Jansson already rejects invalid UTF-8, control characters in strings,
 * trailing garbage, raw NUL bytes and the \u0000 escape (JSON_ALLOW_NUL is not
 * given), and integers that overflow. */
#include "core/jval.h"
#include "core/text.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int jval_fail(jval_error *e, const char *field, const char *fmt, ...)
{
	if (!e)
		return ERR_INVALID;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return ERR_INVALID;
}

/* 1 if the JSON text buf[0..len) opens more than max objects or arrays at
 * once. A linear scan that counts brackets outside strings (a backslash in a
 * string escapes the next byte), so a hostile body costs one pass and no
 * recursion; whether the text is valid JSON is left to the parser. */
static int nested_deeper(const char *buf, size_t len, int max)
{
	int depth = 0, in_string = 0;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			in_string = 1;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return 1;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

json_t *jval_parse_object(const char *buf, size_t len, jval_error *e)
{
	if (!buf || len == 0) {
		jval_fail(e, "body", "must be a JSON object");
		return NULL;
	}
	if (nested_deeper(buf, len, JVAL_MAX_DEPTH)) {
		jval_fail(e, "body", "nested deeper than %d levels", JVAL_MAX_DEPTH);
		return NULL;
	}
	json_error_t jerr;
	json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v) {
		/* Jansson appends " near '<input>'"; drop it so client bytes are
		 * never echoed back (they may not even be valid UTF-8). */
		char *near = strstr(jerr.text, " near ");
		if (near)
			*near = '\0';
		jval_fail(e, "body", "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
			  jerr.text);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		jval_fail(e, "body", "must be a JSON object");
		return NULL;
	}
	return v;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF) without NUL. Values built in code with json_stringn_nocheck
 * skip jansson's own check, hence this one. */
static int utf8_clean(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t len = s[i] ? text_utf8_len(s + i, n - i) : 0;
		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

/* Looks name up in obj. JSON null counts as absent, so clients that send
 * every key with null for "not given" work. Returns 1 when present, 0 when
 * absent and allowed, ERR_INVALID when absent and required. */
static int lookup(json_t *obj, const char *name, int required, json_t **v, jval_error *e)
{
	*v = json_is_object(obj) ? json_object_get(obj, name) : NULL;
	if (*v && !json_is_null(*v))
		return 1;
	*v = NULL;
	return required ? jval_fail(e, name, "is required") : 0;
}

int jval_str(json_t *obj, const char *name, int required, size_t minlen, size_t maxlen,
	     const char **out, jval_error *e)
{
	json_t *v;
	int rc = lookup(obj, name, required, &v, e);
	if (rc <= 0) {
		if (out)
			*out = NULL;
		return rc;
	}
	if (!json_is_string(v))
		return jval_fail(e, name, "must be a string");
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!utf8_clean((const unsigned char *)s, len))
		return jval_fail(e, name, "must be valid UTF-8 without NUL characters");
	if (len < minlen || len > maxlen) {
		if (len == 0)
			return jval_fail(e, name, "must not be empty");
		if (maxlen == SIZE_MAX)
			return jval_fail(e, name, "must be at least %zu bytes long", minlen);
		if (minlen == 0)
			return jval_fail(e, name, "must be at most %zu bytes long", maxlen);
		if (minlen == maxlen)
			return jval_fail(e, name, "must be exactly %zu bytes long", minlen);
		return jval_fail(e, name, "must be between %zu and %zu bytes long", minlen, maxlen);
	}
	if (out)
		*out = s;
	return 0;
}

static int int_fail(jval_error *e, const char *name, int64_t min, int64_t max)
{
	if (min == INT64_MIN && max == INT64_MAX)
		return jval_fail(e, name, "must be an integer");
	if (min == INT64_MIN)
		return jval_fail(e, name, "must be an integer of at most %lld", (long long)max);
	if (max == INT64_MAX)
		return jval_fail(e, name, "must be an integer of at least %lld", (long long)min);
	return jval_fail(e, name, "must be an integer between %lld and %lld", (long long)min,
			 (long long)max);
}

/* *out is written only when the field is present and valid, so a caller may
 * preset it to a default. */
int jval_int(json_t *obj, const char *name, int required, int64_t min, int64_t max,
	     int64_t *out, int *present, jval_error *e)
{
	if (present)
		*present = 0;
	json_t *v;
	int rc = lookup(obj, name, required, &v, e);
	if (rc <= 0)
		return rc;
	if (present)
		*present = 1;
	if (!json_is_integer(v))
		return int_fail(e, name, min, max);
	int64_t x = (int64_t)json_integer_value(v);
	if (x < min || x > max)
		return int_fail(e, name, min, max);
	if (out)
		*out = x;
	return 0;
}

char *jval_dump(const json_t *v)
{
	if (!v)
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void jval_add_int(json_t *obj, const char *key, int64_t n)
{
	json_object_set_new(obj, key,
			    json_integer(json_integer_value(json_object_get(obj, key)) + n));
}
