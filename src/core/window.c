/* window: see window.h. */
#include "core/window.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define US 1000000LL

typedef struct slot {
	int64_t sec; /* the second this slot holds (now / 1 s), -1 when unused */
	uint64_t requests;
	uint64_t errors;
	hist *latency;
} slot;

struct window {
	pthread_mutex_t mu;
	int n;
	int64_t born_us;
	int64_t in_flight;
	slot slots[WINDOW_MAX_S];
};

window *window_new(int seconds, int64_t now_us)
{
	if (seconds < 1)
		seconds = 1;
	if (seconds > WINDOW_MAX_S)
		seconds = WINDOW_MAX_S;
	window *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->n = seconds;
	w->born_us = now_us;
	for (int i = 0; i < w->n; i++) {
		w->slots[i].sec = -1;
		if (!(w->slots[i].latency = hist_new())) {
			window_free(w);
			return NULL;
		}
	}
	pthread_mutex_init(&w->mu, NULL);
	return w;
}

void window_free(window *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->n; i++)
		hist_free(w->slots[i].latency);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void window_enter(window *w)
{
	if (w)
		__atomic_add_fetch(&w->in_flight, 1, __ATOMIC_RELAXED);
}

int64_t window_in_flight(window *w)
{
	return w ? __atomic_load_n(&w->in_flight, __ATOMIC_RELAXED) : 0;
}

void window_leave(window *w, int64_t now_us, int64_t dur_us, int error)
{
	if (!w)
		return;
	__atomic_sub_fetch(&w->in_flight, 1, __ATOMIC_RELAXED);
	int64_t sec = now_us / US;
	pthread_mutex_lock(&w->mu);
	slot *s = &w->slots[sec % w->n];
	if (s->sec != sec) {
		s->sec = sec;
		s->requests = s->errors = 0;
		hist_reset(s->latency);
	}
	s->requests++;
	if (error)
		s->errors++;
	hist_record(s->latency, dur_us);
	pthread_mutex_unlock(&w->mu);
}

void window_sum(window *w, int64_t now_us, window_stats *out)
{
	out->requests = out->errors = 0;
	out->seconds = 0;
	if (out->latency)
		hist_reset(out->latency);
	if (!w)
		return;
	int64_t sec = now_us / US;
	/* The current second is partly over: the window is n - 1 whole
	 * seconds and that part, or the life when it is shorter. */
	double covered = (double)(w->n - 1) + (double)(now_us % US) / (double)US;
	double life = (double)(now_us - w->born_us) / (double)US;
	out->seconds = life < covered ? life : covered;
	if (out->seconds < 0.001)
		out->seconds = 0.001;
	pthread_mutex_lock(&w->mu);
	for (int i = 0; i < w->n; i++) {
		const slot *s = &w->slots[i];
		if (s->sec < 0 || s->sec > sec || s->sec <= sec - w->n)
			continue;
		out->requests += s->requests;
		out->errors += s->errors;
		if (out->latency)
			hist_merge(out->latency, s->latency);
	}
	pthread_mutex_unlock(&w->mu);
}

static double ms(int64_t us) { return (double)us / 1000.0; }

json_t *window_json(window *w, int64_t now_us)
{
	int64_t in_flight = window_in_flight(w);
	hist *h = hist_new();
	if (!h)
		return NULL;
	window_stats st = { .latency = h };
	window_sum(w, now_us, &st);
	json_t *buckets = json_array();
	for (int i = 0; buckets && i < HIST_BUCKETS; i++)
		if (h->buckets[i])
			json_array_append_new(buckets, json_pack("[i,I]", i, (json_int_t)h->buckets[i]));
	json_t *v = json_pack("{s:i,s:I,s:I,s:f,s:f,s:f,s:f,s:I,s:o*}", "window_s", w ? w->n : 0,
			      "requests", (json_int_t)st.requests, "errors", (json_int_t)st.errors,
			      "rps", (double)st.requests / st.seconds, "p50_ms",
			      ms(hist_percentile(h, 50)), "p99_ms", ms(hist_percentile(h, 99)),
			      "error_rate",
			      st.requests ? (double)st.errors / (double)st.requests : 0.0, "in_flight",
			      (json_int_t)in_flight, "latency_buckets", buckets);
	hist_free(h);
	return v;
}

static void add_int(json_t *acc, const json_t *one, const char *key)
{
	json_int_t a = json_integer_value(json_object_get(acc, key));
	json_object_set_new(acc, key, json_integer(a + json_integer_value(json_object_get(one, key))));
}

void window_merge_json(json_t *acc, hist *h, const json_t *one)
{
	if (!json_is_object(acc) || !json_is_object(one))
		return;
	add_int(acc, one, "requests");
	add_int(acc, one, "errors");
	add_int(acc, one, "in_flight");
	json_object_set_new(acc, "instances_reporting",
			    json_integer(json_integer_value(json_object_get(acc, "instances_reporting")) + 1));
	double rps = json_number_value(json_object_get(acc, "rps")) +
		     json_number_value(json_object_get(one, "rps"));
	json_object_set_new(acc, "rps", json_real(rps));
	json_t *ws = json_object_get(one, "window_s");
	if (json_is_integer(ws))
		json_object_set_new(acc, "window_s", json_integer(json_integer_value(ws)));
	size_t i;
	const json_t *b;
	json_array_foreach(json_object_get(one, "latency_buckets"), i, b)
	{
		json_int_t idx = json_integer_value(json_array_get(b, 0));
		json_int_t n = json_integer_value(json_array_get(b, 1));
		if (idx >= 0 && idx < HIST_BUCKETS && n > 0)
			hist_record_n(h, hist_bucket_upper((int)idx), (uint64_t)n);
	}
}

void window_finish_json(json_t *acc, const hist *h)
{
	json_int_t req = json_integer_value(json_object_get(acc, "requests"));
	json_int_t err = json_integer_value(json_object_get(acc, "errors"));
	json_object_set_new(acc, "p50_ms", json_real(ms(hist_percentile(h, 50))));
	json_object_set_new(acc, "p99_ms", json_real(ms(hist_percentile(h, 99))));
	json_object_set_new(acc, "error_rate", json_real(req ? (double)err / (double)req : 0.0));
	if (!json_object_get(acc, "rps"))
		json_object_set_new(acc, "rps", json_real(0));
	static const char *const ints[] = { "requests", "errors", "in_flight", NULL };
	for (int i = 0; ints[i]; i++)
		if (!json_object_get(acc, ints[i]))
			json_object_set_new(acc, ints[i], json_integer(0));
}
