/* metrics: a registry of families (name, type, help) and their series (one
 * per label set). Series live in a chained hash table keyed by (name, labels)
 * because metrics_count runs on every request; families are few and are only
 * searched when a series or a HELP text is first seen. One mutex guards
 * everything. */
#include "core/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mtype { MT_NONE = 0, MT_COUNTER, MT_GAUGE, MT_HIST };

struct series;

struct family {
	char *name;
	char *help;
	enum mtype type;
	struct series **series;
	size_t nseries, capseries;
};

struct series {
	struct family *fam;
	char *labels;
	uint64_t hash;
	struct series *next; /* hash chain */
	uint64_t counter;
	double gauge;
	hist *h;
};

struct metrics {
	pthread_mutex_t mu;
	struct family **fams;
	size_t nfams, capfams;
	struct series **table;
	size_t tcap; /* power of two */
	size_t count;
};

/* Prometheus le bounds: microseconds for hist_count_le, text as rendered. */
static const int64_t le_us[] = {500,    1000,   2500,   5000,    10000,   25000,   50000,
				100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const le_text[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
				      "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
				      "1",      "2.5",   "5",      "10"};
#define NLE (sizeof(le_us) / sizeof(le_us[0]))

static uint64_t key_hash(const char *name, const char *labels)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL; /* separator no name byte can be */
	for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h;
}

metrics *metrics_new(void)
{
	metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->tcap = 64;
	m->table = calloc(m->tcap, sizeof(*m->table));
	if (!m->table) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void metrics_free(metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nfams; i++) {
		struct family *f = m->fams[i];
		for (size_t j = 0; j < f->nseries; j++) {
			hist_free(f->series[j]->h);
			free(f->series[j]->labels);
			free(f->series[j]);
		}
		free(f->series);
		free(f->name);
		free(f->help);
		free(f);
	}
	free(m->fams);
	free(m->table);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* Returns arr with room for element n (reallocating when full), or NULL on
 * allocation failure with arr untouched. */
static void *grow_array(void *arr, size_t n, size_t *cap, size_t elsz)
{
	if (n < *cap)
		return arr;
	size_t nc = *cap ? *cap * 2 : 8;
	void *p = realloc(arr, nc * elsz);
	if (p)
		*cap = nc;
	return p;
}

static struct family *family_find(metrics *m, const char *name)
{
	for (size_t i = 0; i < m->nfams; i++)
		if (strcmp(m->fams[i]->name, name) == 0)
			return m->fams[i];
	return NULL;
}

static struct family *family_get(metrics *m, const char *name)
{
	struct family *f = family_find(m, name);
	if (f)
		return f;
	struct family **fams = grow_array(m->fams, m->nfams, &m->capfams, sizeof(*fams));
	if (!fams)
		return NULL;
	m->fams = fams;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->name = strdup(name);
	if (!f->name) {
		free(f);
		return NULL;
	}
	m->fams[m->nfams++] = f;
	return f;
}

static struct series *series_find(metrics *m, const char *name, const char *labels, uint64_t h)
{
	for (struct series *s = m->table[h & (m->tcap - 1)]; s; s = s->next)
		if (s->hash == h && strcmp(s->labels, labels) == 0 && strcmp(s->fam->name, name) == 0)
			return s;
	return NULL;
}

static void table_grow(metrics *m)
{
	size_t nc = m->tcap * 2;
	struct series **t = calloc(nc, sizeof(*t));
	if (!t)
		return; /* chains just get longer */
	for (size_t i = 0; i < m->tcap; i++) {
		struct series *s = m->table[i];
		while (s) {
			struct series *next = s->next;
			s->next = t[s->hash & (nc - 1)];
			t[s->hash & (nc - 1)] = s;
			s = next;
		}
	}
	free(m->table);
	m->table = t;
	m->tcap = nc;
}

/* The series name{labels} of type t, created if needed. NULL when the family
 * already has another type (the update is dropped: a registry must not
 * render one name under two types) or on allocation failure. */
static struct series *series_get(metrics *m, const char *name, const char *labels, enum mtype t)
{
	if (!labels)
		labels = "";
	uint64_t h = key_hash(name, labels);
	struct series *s = series_find(m, name, labels, h);
	if (s)
		return s->fam->type == t ? s : NULL;

	struct family *f = family_get(m, name);
	if (!f)
		return NULL;
	if (f->type == MT_NONE)
		f->type = t;
	else if (f->type != t)
		return NULL;
	struct series **arr = grow_array(f->series, f->nseries, &f->capseries, sizeof(*arr));
	if (!arr)
		return NULL;
	f->series = arr;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->labels = strdup(labels);
	if (t == MT_HIST)
		s->h = hist_new();
	if (!s->labels || (t == MT_HIST && !s->h)) {
		free(s->labels);
		hist_free(s->h);
		free(s);
		return NULL;
	}
	s->fam = f;
	s->hash = h;
	f->series[f->nseries++] = s;
	size_t b = h & (m->tcap - 1);
	s->next = m->table[b];
	m->table[b] = s;
	if (++m->count > m->tcap / 4 * 3)
		table_grow(m);
	return s;
}

void metrics_help(metrics *m, const char *name, const char *help)
{
	if (!m || !name || !help)
		return;
	pthread_mutex_lock(&m->mu);
	struct family *f = family_get(m, name);
	if (f && !f->help)
		f->help = strdup(help);
	pthread_mutex_unlock(&m->mu);
}

void metrics_count(metrics *m, const char *name, const char *labels, uint64_t delta)
{
	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, name, labels, MT_COUNTER);
	if (s)
		s->counter += delta;
	pthread_mutex_unlock(&m->mu);
}

void metrics_gauge(metrics *m, const char *name, const char *labels, double value)
{
	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, name, labels, MT_GAUGE);
	if (s)
		s->gauge = value;
	pthread_mutex_unlock(&m->mu);
}

void metrics_observe_us(metrics *m, const char *name, const char *labels, int64_t us)
{
	if (!m || !name)
		return;
	pthread_mutex_lock(&m->mu);
	struct series *s = series_get(m, name, labels, MT_HIST);
	if (s)
		hist_record(s->h, us);
	pthread_mutex_unlock(&m->mu);
}

uint64_t metrics_counter_value(metrics *m, const char *name, const char *labels)
{
	if (!m || !name)
		return 0;
	if (!labels)
		labels = "";
	pthread_mutex_lock(&m->mu);
	struct series *s = series_find(m, name, labels, key_hash(name, labels));
	uint64_t v = s && s->fam->type == MT_COUNTER ? s->counter : 0;
	pthread_mutex_unlock(&m->mu);
	return v;
}

int metrics_hist_merged(metrics *m, const char *name, hist *out)
{
	hist_reset(out);
	if (!m || !name)
		return 0;
	int n = 0;
	pthread_mutex_lock(&m->mu);
	struct family *f = family_find(m, name);
	if (f && f->type == MT_HIST) {
		for (size_t i = 0; i < f->nseries; i++, n++)
			hist_merge(out, f->series[i]->h);
	}
	pthread_mutex_unlock(&m->mu);
	return n;
}

/* Writes a float the way Prometheus reads it: the shortest of %.15g..%.17g
 * that reads back exactly, so 0.1 is "0.1" and not "0.10000000000000001". */
static void put_double(FILE *o, double v)
{
	if (isnan(v)) {
		fputs("NaN", o);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", o);
		return;
	}
	char buf[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, o);
}

/* HELP text escaping per the text format: backslash and newline. */
static void put_help(FILE *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", o);
		else if (*s == '\n')
			fputs("\\n", o);
		else
			fputc(*s, o);
	}
}

static void put_name_labels(FILE *o, const char *name, const char *suffix, const char *labels)
{
	fputs(name, o);
	fputs(suffix, o);
	if (*labels) {
		fputc('{', o);
		fputs(labels, o);
		fputc('}', o);
	}
	fputc(' ', o);
}

static int cmp_family(const void *a, const void *b)
{
	return strcmp((*(struct family *const *)a)->name, (*(struct family *const *)b)->name);
}

static int cmp_series(const void *a, const void *b)
{
	return strcmp((*(struct series *const *)a)->labels, (*(struct series *const *)b)->labels);
}

static const char *type_name(enum mtype t)
{
	switch (t) {
	case MT_COUNTER: return "counter";
	case MT_GAUGE: return "gauge";
	case MT_HIST: return "histogram";
	default: return "untyped";
	}
}

static void render_series(FILE *o, struct family *f, struct series *s)
{
	switch (f->type) {
	case MT_COUNTER:
		put_name_labels(o, f->name, "", s->labels);
		fprintf(o, "%" PRIu64 "\n", s->counter);
		break;
	case MT_GAUGE:
		put_name_labels(o, f->name, "", s->labels);
		put_double(o, s->gauge);
		fputc('\n', o);
		break;
	case MT_HIST: {
		const char *sep = *s->labels ? "," : "";
		for (size_t i = 0; i <= NLE; i++) {
			uint64_t n = i < NLE ? hist_count_le(s->h, le_us[i]) : s->h->count;
			fprintf(o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name, s->labels, sep,
				i < NLE ? le_text[i] : "+Inf", n);
		}
		put_name_labels(o, f->name, "_sum", s->labels);
		put_double(o, (double)s->h->sum / 1e6);
		fputc('\n', o);
		put_name_labels(o, f->name, "_count", s->labels);
		fprintf(o, "%" PRIu64 "\n", s->h->count);
		break;
	}
	default:
		break;
	}
}

char *metrics_render(metrics *m)
{
	char *out = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&out, &len);
	if (!o)
		return NULL;
	if (m) {
		pthread_mutex_lock(&m->mu);
		/* Sorting in place is harmless: lookups go through the hash
		 * table, and a stable order makes the output diffable. */
		if (m->nfams > 1)
			qsort(m->fams, m->nfams, sizeof(*m->fams), cmp_family);
		for (size_t i = 0; i < m->nfams; i++) {
			struct family *f = m->fams[i];
			if (f->type == MT_NONE || f->nseries == 0)
				continue; /* HELP declared but never used */
			if (f->nseries > 1)
				qsort(f->series, f->nseries, sizeof(*f->series), cmp_series);
			if (f->help) {
				fprintf(o, "# HELP %s ", f->name);
				put_help(o, f->help);
				fputc('\n', o);
			}
			fprintf(o, "# TYPE %s %s\n", f->name, type_name(f->type));
			for (size_t j = 0; j < f->nseries; j++)
				render_series(o, f, f->series[j]);
		}
		pthread_mutex_unlock(&m->mu);
	}
	int bad = ferror(o);
	if (fclose(o) != 0 || bad) {
		free(out);
		return NULL;
	}
	return out;
}
