/* fault: a small sorted table of faults by target, and the per-call draw. */
#include "resil/fault.h"
#include "core/clock.h"
#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
	char target[FAULT_MAX_TARGET + 1];
	fault_spec spec;
} entry;

/* Entries sorted by target: few of them, so a flat array keeps list order
 * stable and lookups cheap. */
struct fault_table {
	pthread_mutex_t mu;
	entry *v;
	int n;
	int cap;
};

int fault_spec_check(const fault_spec *s)
{
	if (!s)
		return ERR_INVALID;
	if (s->latency_ms < 0 || s->latency_ms > FAULT_MAX_LATENCY_MS)
		return ERR_INVALID;
	if (s->jitter_ms < 0 || s->jitter_ms > FAULT_MAX_JITTER_MS)
		return ERR_INVALID;
	if (!(s->error_rate >= 0.0 && s->error_rate <= 1.0)) /* NaN fails */
		return ERR_INVALID;
	if (s->error_status < FAULT_MIN_STATUS || s->error_status > FAULT_MAX_STATUS)
		return ERR_INVALID;
	if (s->until_us < 0)
		return ERR_INVALID;
	return 0;
}

static int target_ok(const char *target)
{
	if (!target)
		return 0;
	size_t n = strlen(target);
	if (n == 0 || n > FAULT_MAX_TARGET)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = target[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int expired(const fault_spec *s, int64_t now_us)
{
	return s->until_us != 0 && now_us >= s->until_us;
}

fault_table *fault_table_new(void)
{
	fault_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void fault_table_free(fault_table *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->v);
	free(t);
}

/* Index of target, or -(insertion point) - 1. */
static int find(const fault_table *t, const char *target)
{
	int lo = 0, hi = t->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		int c = strcmp(t->v[mid].target, target);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -lo - 1;
}

static void remove_at(fault_table *t, int i)
{
	memmove(&t->v[i], &t->v[i + 1], (size_t)(t->n - i - 1) * sizeof(*t->v));
	t->n--;
}

/* The active entry for target, removing it when expired; NULL if none. */
static entry *active(fault_table *t, const char *target, int64_t now_us)
{
	int i = find(t, target);
	if (i < 0)
		return NULL;
	if (expired(&t->v[i].spec, now_us)) {
		remove_at(t, i);
		return NULL;
	}
	return &t->v[i];
}

int fault_set(fault_table *t, const char *target, const fault_spec *spec)
{
	if (!t || !target_ok(target) || fault_spec_check(spec) != 0)
		return ERR_INVALID;
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	int i = find(t, target);
	if (i >= 0) {
		t->v[i].spec = *spec;
		goto out;
	}
	if (t->n >= FAULT_MAX_TARGETS) {
		rc = ERR_TOO_LARGE;
		goto out;
	}
	if (t->n == t->cap) {
		int cap = t->cap ? t->cap * 2 : 8;
		entry *v = realloc(t->v, (size_t)cap * sizeof(*v));
		if (!v) {
			rc = ERR_NOMEM;
			goto out;
		}
		t->v = v;
		t->cap = cap;
	}
	i = -i - 1;
	memmove(&t->v[i + 1], &t->v[i], (size_t)(t->n - i) * sizeof(*t->v));
	snprintf(t->v[i].target, sizeof(t->v[i].target), "%s", target);
	t->v[i].spec = *spec;
	t->n++;
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

int fault_clear(fault_table *t, const char *target)
{
	if (!t || !target)
		return ERR_INVALID;
	pthread_mutex_lock(&t->mu);
	int i = find(t, target);
	if (i >= 0)
		remove_at(t, i);
	pthread_mutex_unlock(&t->mu);
	return i >= 0 ? 0 : ERR_NOT_FOUND;
}

int fault_get(fault_table *t, const char *target, int64_t now_us, fault_spec *out)
{
	if (!t || !target)
		return ERR_INVALID;
	pthread_mutex_lock(&t->mu);
	entry *e = active(t, target, now_us);
	if (e && out)
		*out = e->spec;
	pthread_mutex_unlock(&t->mu);
	return e ? 0 : ERR_NOT_FOUND;
}

json_t *fault_spec_json(const char *target, const fault_spec *spec)
{
	json_t *expires = json_null();
	if (spec->until_us != 0) {
		char ts[40];
		clock_fmt_rfc3339(spec->until_us, ts, sizeof(ts));
		expires = json_string(ts);
	}
	return json_pack("{s:s, s:i, s:i, s:f, s:i, s:b, s:o}", "target", target, "latency_ms",
			 spec->latency_ms, "jitter_ms", spec->jitter_ms, "error_rate",
			 spec->error_rate, "error_status", spec->error_status, "outage",
			 spec->outage ? 1 : 0, "expires_at", expires);
}

json_t *fault_list(fault_table *t, int64_t now_us)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < t->n;) {
		if (expired(&t->v[i].spec, now_us)) {
			remove_at(t, i);
			continue;
		}
		if (json_array_append_new(arr, fault_spec_json(t->v[i].target, &t->v[i].spec)) != 0) {
			pthread_mutex_unlock(&t->mu);
			json_decref(arr);
			return NULL;
		}
		i++;
	}
	pthread_mutex_unlock(&t->mu);
	return arr;
}

int fault_decide(fault_table *t, const char *target, int64_t now_us, rng *r,
		 fault_decision *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (!t || !target || !r || !out)
		return ERR_INVALID;
	pthread_mutex_lock(&t->mu);
	entry *e = active(t, target, now_us);
	fault_spec s;
	if (e)
		s = e->spec;
	pthread_mutex_unlock(&t->mu);
	if (!e)
		return 0;

	out->active = true;
	if (s.outage) {
		out->fail = true;
		out->outage = true;
		out->status = s.error_status;
		return 0;
	}
	int64_t delay = (int64_t)s.latency_ms * 1000;
	if (s.jitter_ms > 0) {
		int64_t j = (int64_t)s.jitter_ms * 1000;
		delay += (int64_t)rng_below(r, (uint64_t)(2 * j + 1)) - j;
	}
	out->delay_us = delay > 0 ? delay : 0;
	if (s.error_rate > 0.0 && rng_double(r) < s.error_rate) {
		out->fail = true;
		out->status = s.error_status;
	}
	return 0;
}

static const char *const known_fields[] = {"latency_ms", "jitter_ms",  "error_rate",
					   "error_status", "outage", "duration_s"};

int fault_parse_json(json_t *body, int64_t now_us, fault_spec *out, jval_error *e)
{
	if (!json_is_object(body))
		return jval_fail(e, "body", "must be a JSON object");
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val)
	{
		size_t k = 0;
		while (k < sizeof(known_fields) / sizeof(known_fields[0]) &&
		       strcmp(key, known_fields[k]) != 0)
			k++;
		if (k < sizeof(known_fields) / sizeof(known_fields[0]))
			continue;
		/* The name is client text: echo it only when it is short and
		 * plain, so it can neither be truncated mid-character nor
		 * carry anything odd into the error body. */
		size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
		if (key[n] == '\0' && n > 0 && n < sizeof(e->field))
			return jval_fail(e, key, "is not a known field");
		return jval_fail(e, "body", "has an unknown field");
	}

	int64_t latency = 0, jitter = 0, status = FAULT_DEFAULT_STATUS, duration = 0;
	int rc;
	if ((rc = jval_int(body, "latency_ms", 0, 0, FAULT_MAX_LATENCY_MS, &latency, NULL, e)) ||
	    (rc = jval_int(body, "jitter_ms", 0, 0, FAULT_MAX_JITTER_MS, &jitter, NULL, e)) ||
	    (rc = jval_int(body, "error_status", 0, FAULT_MIN_STATUS, FAULT_MAX_STATUS, &status,
			   NULL, e)) ||
	    (rc = jval_int(body, "duration_s", 0, 0, FAULT_MAX_DURATION_S, &duration, NULL, e)))
		return rc;

	double rate = 0.0;
	json_t *v = json_object_get(body, "error_rate");
	if (v && !json_is_null(v)) {
		if (!json_is_number(v))
			return jval_fail(e, "error_rate", "must be a number between 0 and 1");
		rate = json_number_value(v);
		if (!(rate >= 0.0 && rate <= 1.0))
			return jval_fail(e, "error_rate", "must be a number between 0 and 1");
	}
	bool outage = false;
	v = json_object_get(body, "outage");
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return jval_fail(e, "outage", "must be a boolean");
		outage = json_is_true(v);
	}

	memset(out, 0, sizeof(*out));
	out->latency_ms = (int)latency;
	out->jitter_ms = (int)jitter;
	out->error_rate = rate;
	out->error_status = (int)status;
	out->outage = outage;
	out->until_us = duration > 0 ? now_us + duration * 1000000 : 0;
	return 0;
}
