/* form: encoding and decoding of application/x-www-form-urlencoded bodies. */
#include "net/form.h"
#include "core/err.h"
#include "core/text.h"

#include <stdlib.h>
#include <string.h>

void form_init(form *f)
{
	memset(f, 0, sizeof(*f));
}

void form_clear(form *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->fields[i].name);
		free(f->fields[i].value);
	}
	free(f->fields);
	memset(f, 0, sizeof(*f));
}

/* Takes ownership of name and value (freed on failure). */
static int push(form *f, char *name, char *value)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		form_field *nf = realloc(f->fields, cap * sizeof(*nf));
		if (!nf) {
			free(name);
			free(value);
			return ERR_NOMEM;
		}
		f->fields = nf;
		f->cap = cap;
	}
	f->fields[f->n].name = name;
	f->fields[f->n].value = value;
	f->n++;
	return 0;
}

int form_add(form *f, const char *name, const char *value)
{
	if (!f || !name || !name[0] || !value)
		return ERR_INVALID;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return ERR_NOMEM;
	}
	return push(f, n, v);
}

/* Decodes n bytes of s into a new string; NULL with *rc set on a malformed
 * escape or a NUL byte (ERR_PARSE) or out of memory. */
static char *decode(const char *s, size_t n, int *rc)
{
	char *out = malloc(n + 1);
	if (!out) {
		*rc = ERR_NOMEM;
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < n ? text_hexval(s[i + 1]) : -1;
			int lo = hi >= 0 ? text_hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				free(out);
				*rc = ERR_PARSE;
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0') {
			free(out);
			*rc = ERR_PARSE;
			return NULL;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

int form_parse(form *f, const char *body, size_t len, size_t max_fields)
{
	if (!f || (!body && len))
		return ERR_INVALID;
	size_t start_n = f->n;
	int rc = 0;
	size_t i = 0;
	while (i < len && rc == 0) {
		const char *seg = body + i;
		const char *amp = memchr(seg, '&', len - i);
		size_t slen = amp ? (size_t)(amp - seg) : len - i;
		i += slen + 1;
		if (slen == 0)
			continue;
		if (f->n >= max_fields) {
			rc = ERR_TOO_LARGE;
			break;
		}
		const char *eq = memchr(seg, '=', slen);
		size_t klen = eq ? (size_t)(eq - seg) : slen;
		if (klen == 0) {
			rc = ERR_PARSE;
			break;
		}
		char *name = decode(seg, klen, &rc);
		if (!name)
			break;
		char *value = eq ? decode(eq + 1, slen - klen - 1, &rc) : strdup("");
		if (!value) {
			free(name);
			if (rc == 0)
				rc = ERR_NOMEM;
			break;
		}
		rc = push(f, name, value);
	}
	if (rc) {
		for (size_t k = start_n; k < f->n; k++) {
			free(f->fields[k].name);
			free(f->fields[k].value);
		}
		f->n = start_n;
	}
	return rc;
}

const char *form_get(const form *f, const char *name)
{
	for (size_t i = 0; f && name && i < f->n; i++)
		if (strcmp(f->fields[i].name, name) == 0)
			return f->fields[i].value;
	return NULL;
}

size_t form_count(const form *f, const char *name)
{
	size_t c = 0;
	for (size_t i = 0; f && name && i < f->n; i++)
		c += strcmp(f->fields[i].name, name) == 0;
	return c;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static size_t encoded_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += unreserved((unsigned char)*s) ? 1 : 3;
	return n;
}

static char *encode_into(char *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (unreserved(c)) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	return o;
}

char *form_encode(const form *f)
{
	size_t total = 1;
	for (size_t i = 0; f && i < f->n; i++)
		total += encoded_len(f->fields[i].name) + encoded_len(f->fields[i].value) + 2;
	char *out = malloc(total);
	if (!out)
		return NULL;
	char *o = out;
	for (size_t i = 0; f && i < f->n; i++) {
		if (i)
			*o++ = '&';
		o = encode_into(o, f->fields[i].name);
		*o++ = '=';
		o = encode_into(o, f->fields[i].value);
	}
	*o = '\0';
	return out;
}
