/* tracer: see tracer.h. */
#include "core/tracer.h"
#include "core/clock.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tracer {
	pthread_mutex_t mu;
	span *ring;
	size_t cap;
	uint64_t count; /* spans recorded; the next goes to ring[count % cap] */
};

tracer *tracer_new(size_t capacity)
{
	if (capacity < 1)
		capacity = 1;
	tracer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ring = calloc(capacity, sizeof(*t->ring));
	if (!t->ring) {
		free(t);
		return NULL;
	}
	t->cap = capacity;
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void tracer_free(tracer *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->ring);
	free(t);
}

void span_begin(span *s, const trace_ctx *parent, const trace_ctx *self, const char *service,
		const char *name, enum span_kind kind, int64_t start_us)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->trace_id, self->trace_id, sizeof(s->trace_id));
	memcpy(s->span_id, self->span_id, sizeof(s->span_id));
	if (parent && trace_valid(parent))
		memcpy(s->parent_id, parent->span_id, sizeof(s->parent_id));
	snprintf(s->service, sizeof(s->service), "%s", service ? service : "");
	snprintf(s->name, sizeof(s->name), "%s", name ? name : "");
	s->kind = kind;
	s->start_us = start_us;
}

void span_attr_set(span *s, const char *key, const char *value)
{
	if (s->nattrs >= SPAN_ATTRS || !key || !value)
		return;
	span_attr *a = &s->attrs[s->nattrs++];
	snprintf(a->key, sizeof(a->key), "%s", key);
	snprintf(a->value, sizeof(a->value), "%s", value);
}

void tracer_record(tracer *t, const span *s)
{
	if (!t || !s)
		return;
	pthread_mutex_lock(&t->mu);
	t->ring[t->count % t->cap] = *s;
	t->count++;
	pthread_mutex_unlock(&t->mu);
}

/* Copies the spans that match (all when trace_id is NULL), oldest first,
 * keeping the newest max when more match. */
static size_t tracer_copy(tracer *t, const uint8_t *trace_id, span *out, size_t max)
{
	if (!t || !out || max == 0)
		return 0;
	pthread_mutex_lock(&t->mu);
	size_t held = t->count < t->cap ? (size_t)t->count : t->cap;
	uint64_t first = t->count - held;
	size_t n = 0, matched = 0;
	for (uint64_t i = first; i < t->count; i++) {
		const span *s = &t->ring[i % t->cap];
		if (trace_id && memcmp(s->trace_id, trace_id, 16) != 0)
			continue;
		/* Keep the newest max: once full, shift by overwriting in a
		 * ring of out and fix the order below. */
		out[matched % max] = *s;
		matched++;
	}
	pthread_mutex_unlock(&t->mu);
	n = matched < max ? matched : max;
	if (matched > max) {
		/* out is a ring starting at matched % max: rotate it in place. */
		size_t start = matched % max;
		span *tmp = malloc(max * sizeof(*tmp));
		if (!tmp)
			return 0;
		for (size_t i = 0; i < max; i++)
			tmp[i] = out[(start + i) % max];
		memcpy(out, tmp, max * sizeof(*tmp));
		free(tmp);
	}
	return n;
}

size_t tracer_find(tracer *t, const uint8_t trace_id[16], span *out, size_t max)
{
	return trace_id ? tracer_copy(t, trace_id, out, max) : 0;
}

size_t tracer_recent(tracer *t, span *out, size_t max) { return tracer_copy(t, NULL, out, max); }

size_t tracer_since(tracer *t, uint64_t *pos, span *out, size_t max, uint64_t *lost)
{
	if (!t || !pos || !out || max == 0)
		return 0;
	pthread_mutex_lock(&t->mu);
	uint64_t first = t->count > t->cap ? t->count - t->cap : 0;
	if (*pos > t->count)
		*pos = t->count; /* a position from another tracer's life */
	if (*pos < first) {
		if (lost)
			*lost += first - *pos;
		*pos = first;
	}
	size_t n = 0;
	while (n < max && *pos < t->count) {
		out[n++] = t->ring[*pos % t->cap];
		(*pos)++;
	}
	pthread_mutex_unlock(&t->mu);
	return n;
}

uint64_t tracer_count(tracer *t)
{
	if (!t)
		return 0;
	pthread_mutex_lock(&t->mu);
	uint64_t n = t->count;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static const char *const status_names[] = { "unset", "ok", "error" };

static int all_zero8(const uint8_t *b)
{
	for (int i = 0; i < 8; i++)
		if (b[i])
			return 0;
	return 1;
}

json_t *span_json(const span *s)
{
	char tid[TRACE_ID_HEX], sid[TRACE_SPAN_HEX], pid[TRACE_SPAN_HEX], at[40];
	trace_id_hex(s->trace_id, tid);
	trace_span_hex(s->span_id, sid);
	trace_span_hex(s->parent_id, pid);
	clock_fmt_rfc3339(s->start_us, at, sizeof(at));
	json_t *attrs = json_object();
	for (int i = 0; attrs && i < s->nattrs; i++)
		json_object_set_new(attrs, s->attrs[i].key, json_string(s->attrs[i].value));
	int st = s->status >= SPAN_UNSET && s->status <= SPAN_ERROR ? (int)s->status : 0;
	json_t *v = json_pack("{s:s,s:s,s:o,s:s,s:s,s:i,s:s,s:I,s:I,s:s,s:o*}", "trace_id", tid,
			      "span_id", sid, "parent_span_id",
			      all_zero8(s->parent_id) ? json_null() : json_string(pid), "service",
			      s->service, "name", s->name, "kind", (int)s->kind, "start", at,
			      "start_us", (json_int_t)s->start_us, "duration_us",
			      (json_int_t)s->dur_us, "status", status_names[st], "attributes",
			      attrs);
	if (v && s->status_msg[0])
		json_object_set_new(v, "status_message", json_string(s->status_msg));
	return v;
}

json_t *tracer_find_json(tracer *t, const uint8_t trace_id[16], size_t max)
{
	json_t *arr = json_array();
	span *found = max ? calloc(max, sizeof(*found)) : NULL;
	if (!arr || (max && !found)) {
		json_decref(arr);
		free(found);
		return NULL;
	}
	size_t n = tracer_find(t, trace_id, found, max);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, span_json(&found[i]));
	free(found);
	return arr;
}

static int copy_str(const json_t *v, const char *key, char *out, size_t size, int required)
{
	const json_t *f = json_object_get(v, key);
	if (!f)
		return required ? ERR_PARSE : 0;
	if (!json_is_string(f))
		return ERR_PARSE;
	snprintf(out, size, "%s", json_string_value(f));
	return 0;
}

int span_from_json(const json_t *v, span *out)
{
	memset(out, 0, sizeof(*out));
	if (!json_is_object(v))
		return ERR_PARSE;
	const json_t *pid = json_object_get(v, "parent_span_id");
	if (trace_id_from_hex(json_string_value(json_object_get(v, "trace_id")), out->trace_id) ||
	    trace_span_from_hex(json_string_value(json_object_get(v, "span_id")), out->span_id) ||
	    (pid && !json_is_null(pid) &&
	     trace_span_from_hex(json_string_value(pid), out->parent_id)))
		return ERR_PARSE;
	if (copy_str(v, "service", out->service, sizeof(out->service), 1) ||
	    copy_str(v, "name", out->name, sizeof(out->name), 1) ||
	    copy_str(v, "status_message", out->status_msg, sizeof(out->status_msg), 0))
		return ERR_PARSE;
	const json_t *kind = json_object_get(v, "kind"), *start = json_object_get(v, "start_us"),
		     *dur = json_object_get(v, "duration_us"), *st = json_object_get(v, "status");
	if (!json_is_integer(kind) || !json_is_integer(start) || !json_is_integer(dur) ||
	    !json_is_string(st))
		return ERR_PARSE;
	out->kind = (enum span_kind)json_integer_value(kind);
	out->start_us = json_integer_value(start);
	out->dur_us = json_integer_value(dur);
	out->status = SPAN_UNSET;
	for (int i = 0; i < 3; i++)
		if (strcmp(json_string_value(st), status_names[i]) == 0)
			out->status = (enum span_status)i;
	const json_t *attrs = json_object_get(v, "attributes");
	const char *k;
	const json_t *a;
	if (json_is_object(attrs))
		json_object_foreach((json_t *)attrs, k, a)
			if (json_is_string(a))
				span_attr_set(out, k, json_string_value(a));
	return 0;
}
