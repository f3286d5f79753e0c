/* form: application/x-www-form-urlencoded bodies, the encoding Stripe's API
 * takes. A form is an ordered list of decoded (name, value) pairs; the same
 * type is built by a client (form_add, then form_encode) and read by a
 * server (form_parse, then form_get), so the two sides of the Stripe adapter
 * and its simulator agree on one implementation of the escaping rules. */
#ifndef ECOM_FORM_H
#define ECOM_FORM_H

#include <stddef.h>

typedef struct form_field {
	char *name;
	char *value;
} form_field;

typedef struct form {
	form_field *fields;
	size_t n;
	size_t cap;
} form;

/* An empty form; a zeroed struct is one too. form_clear() frees what it
 * owns (not f itself). */
void form_init(form *f);
void form_clear(form *f);

/* Appends a copy of (name, value). ERR_INVALID for a NULL or empty name or a
 * NULL value, ERR_NOMEM. */
int form_add(form *f, const char *name, const char *value);

/* Appends the pairs of body (len bytes, form-encoded: '&'-separated
 * name=value, '+' a space, %XX a byte). Empty segments are skipped; a
 * segment without '=' has the value "". Refused, leaving f as it was:
 * ERR_PARSE for a malformed %-escape, a decoded NUL byte or an empty name;
 * ERR_TOO_LARGE past max_fields pairs in total. */
int form_parse(form *f, const char *body, size_t len, size_t max_fields);

/* The value of the first pair called name, or NULL. Borrowed. */
const char *form_get(const form *f, const char *name);
/* How many pairs are called name. */
size_t form_count(const form *f, const char *name);

/* The form encoded as "name=value&..." in order: RFC 3986 unreserved
 * characters (letters, digits, "-._~") stay as they are, every other byte
 * becomes %XX (upper-case hex; a space is %20). A new string the caller
 * frees; "" for an empty form; NULL out of memory. */
char *form_encode(const form *f);

#endif
