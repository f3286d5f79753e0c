/* template: one pass over the text. */
#include "services/template.h"
#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 64

/* The placeholder starting at p ("{{"): its name into name and the text
 * after its "}}" into *next. 0 or ERR_PARSE. */
static int placeholder(const char *p, char *name, const char **next)
{
	const char *q = p + 2;
	while (*q == ' ')
		q++;
	size_t n = 0;
	while (isalnum((unsigned char)q[n]) || q[n] == '_')
		n++;
	if (n == 0 || n >= NAME_MAX_LEN)
		return ERR_PARSE;
	memcpy(name, q, n);
	name[n] = '\0';
	q += n;
	while (*q == ' ')
		q++;
	if (q[0] != '}' || q[1] != '}')
		return ERR_PARSE;
	*next = q + 2;
	return 0;
}

static int line_of(const char *text, const char *at)
{
	int line = 1;
	for (const char *p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

int template_render(const char *text, const json_t *vars, char **out, char *err, size_t errlen)
{
	*out = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return ERR_NOMEM;
	int rc = 0;
	const char *p = text;
	while (rc == 0 && *p) {
		const char *open = strstr(p, "{{");
		if (!open) {
			fputs(p, m);
			break;
		}
		fwrite(p, 1, (size_t)(open - p), m);
		char name[NAME_MAX_LEN];
		const char *next;
		if (placeholder(open, name, &next) != 0) {
			snprintf(err, errlen, "line %d: a malformed placeholder", line_of(text, open));
			rc = ERR_PARSE;
			break;
		}
		const json_t *v = json_object_get(vars, name);
		if (json_is_string(v))
			fputs(json_string_value(v), m);
		else if (json_is_integer(v))
			fprintf(m, "%lld", (long long)json_integer_value(v));
		else if (json_is_real(v))
			fprintf(m, "%g", json_real_value(v));
		else {
			snprintf(err, errlen, "line %d: no value for {{%s}}", line_of(text, open), name);
			rc = ERR_NOT_FOUND;
		}
		p = next;
	}
	if (fclose(m) != 0 && rc == 0)
		rc = ERR_NOMEM;
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

json_t *template_names(const char *text)
{
	json_t *names = json_array();
	for (const char *p = strstr(text, "{{"); p; p = strstr(p, "{{")) {
		char name[NAME_MAX_LEN];
		const char *next;
		if (placeholder(p, name, &next) != 0) {
			json_decref(names);
			return NULL;
		}
		int seen = 0;
		size_t i;
		json_t *v;
		json_array_foreach(names, i, v)
			seen |= strcmp(json_string_value(v), name) == 0;
		if (!seen)
			json_array_append_new(names, json_string(name));
		p = next;
	}
	return names;
}
