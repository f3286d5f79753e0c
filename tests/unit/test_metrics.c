/* Tests of core/metrics: counters, gauges, histograms, text rendering and
 * thread safety. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "core/metrics.h"

/* Asserts that text holds line as a whole line. */
static void assert_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	}
	fail_msg("line not found: %s\n--- in ---\n%s", line, text);
}

static const char *find_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return p;
	return NULL;
}

static void test_counter(void **state)
{
	metrics *m = metrics_new();
	assert_non_null(m);
	assert_int_equal(metrics_counter_value(m, "http_requests_total", NULL), 0);
	metrics_count(m, "http_requests_total", "route=\"/a\",status=\"200\"", 1);
	metrics_count(m, "http_requests_total", "route=\"/a\",status=\"200\"", 2);
	metrics_count(m, "http_requests_total", "route=\"/a\",status=\"500\"", 1);
	metrics_count(m, "plain_total", NULL, 5);
	metrics_count(m, "plain_total", "", 1);
	assert_int_equal(metrics_counter_value(m, "http_requests_total", "route=\"/a\",status=\"200\""), 3);
	assert_int_equal(metrics_counter_value(m, "http_requests_total", "route=\"/a\",status=\"500\""), 1);
	assert_int_equal(metrics_counter_value(m, "http_requests_total", "route=\"/b\""), 0);
	assert_int_equal(metrics_counter_value(m, "plain_total", NULL), 6);
	assert_int_equal(metrics_counter_value(m, "plain_total", ""), 6);

	/* A name holds one type: a gauge update on a counter is ignored. */
	metrics_gauge(m, "plain_total", "x=\"1\"", 3.0);
	assert_int_equal(metrics_counter_value(m, "plain_total", "x=\"1\""), 0);

	char *r = metrics_render(m);
	assert_non_null(r);
	assert_line(r, "# TYPE http_requests_total counter");
	assert_line(r, "http_requests_total{route=\"/a\",status=\"200\"} 3");
	assert_line(r, "http_requests_total{route=\"/a\",status=\"500\"} 1");
	assert_line(r, "plain_total 6");
	assert_null(strstr(r, "x=\"1\""));
	free(r);
	metrics_free(m);
	metrics_free(NULL);
}

static void test_render_exact(void **state)
{
	metrics *m = metrics_new();
	metrics_help(m, "zeta_total", "Last family.");
	metrics_help(m, "zeta_total", "Ignored: the first HELP wins.");
	metrics_count(m, "zeta_total", NULL, 2);
	metrics_gauge(m, "alpha_depth", "queue=\"orders\"", 12);
	metrics_gauge(m, "alpha_depth", "queue=\"email\"", 0.25);
	metrics_help(m, "alpha_depth", "Queue depth.\nSecond line with \\.");
	metrics_help(m, "unused", "Declared but never used.");
	char *r = metrics_render(m);
	assert_non_null(r);
	/* Families sorted by name, series by labels, HELP escaped. */
	assert_string_equal(r, "# HELP alpha_depth Queue depth.\\nSecond line with \\\\.\n"
			       "# TYPE alpha_depth gauge\n"
			       "alpha_depth{queue=\"email\"} 0.25\n"
			       "alpha_depth{queue=\"orders\"} 12\n"
			       "# HELP zeta_total Last family.\n"
			       "# TYPE zeta_total counter\n"
			       "zeta_total 2\n");
	free(r);

	/* Gauges are overwritten, not added; odd values render as Prometheus
	 * reads them. */
	metrics_gauge(m, "alpha_depth", "queue=\"orders\"", 0.1);
	metrics_gauge(m, "beta", NULL, -1.0 / 0.0);
	r = metrics_render(m);
	assert_line(r, "alpha_depth{queue=\"orders\"} 0.1");
	assert_line(r, "beta -Inf");
	assert_line(r, "# TYPE beta gauge");
	free(r);
	metrics_free(m);

	/* An empty registry renders as an empty string. */
	m = metrics_new();
	r = metrics_render(m);
	assert_string_equal(r, "");
	free(r);
	metrics_free(m);
}

static void test_histogram(void **state)
{
	metrics *m = metrics_new();
	const char *lb = "route=\"/v1/products\",method=\"GET\"";
	metrics_help(m, "http_request_duration_seconds", "Request latency.");
	metrics_observe_us(m, "http_request_duration_seconds", lb, 400);
	metrics_observe_us(m, "http_request_duration_seconds", lb, 800);
	metrics_observe_us(m, "http_request_duration_seconds", lb, 3000);
	metrics_observe_us(m, "http_request_duration_seconds", lb, 20000000); /* 20 s */
	metrics_observe_us(m, "http_request_duration_seconds", lb, -5);      /* counts as 0 */
	metrics_observe_us(m, "rpc_seconds", NULL, 500);

	char *r = metrics_render(m);
	assert_non_null(r);
	assert_line(r, "# HELP http_request_duration_seconds Request latency.");
	assert_line(r, "# TYPE http_request_duration_seconds histogram");
	static const struct {
		const char *le;
		int n;
	} want[] = {{"0.0005", 2}, {"0.001", 3}, {"0.0025", 3}, {"0.005", 4}, {"0.01", 4},
		    {"0.025", 4},  {"0.05", 4},  {"0.1", 4},    {"0.25", 4},  {"0.5", 4},
		    {"1", 4},      {"2.5", 4},   {"5", 4},      {"10", 4},    {"+Inf", 5}};
	const char *prev = r;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line),
			 "http_request_duration_seconds_bucket{%s,le=\"%s\"} %d", lb, want[i].le,
			 want[i].n);
		const char *at = find_line(r, line);
		if (!at)
			fail_msg("missing %s in\n%s", line, r);
		assert_true(at > prev); /* in increasing le order */
		prev = at;
	}
	assert_line(r, "http_request_duration_seconds_sum{route=\"/v1/products\",method=\"GET\"} 20.0042");
	assert_line(r, "http_request_duration_seconds_count{route=\"/v1/products\",method=\"GET\"} 5");
	/* No labels: only le in the braces; a value on the bound is counted. */
	assert_line(r, "rpc_seconds_bucket{le=\"0.0005\"} 1");
	assert_line(r, "rpc_seconds_bucket{le=\"+Inf\"} 1");
	assert_line(r, "rpc_seconds_sum 0.0005");
	assert_line(r, "rpc_seconds_count 1");
	free(r);

	/* Merged view over series. */
	metrics_observe_us(m, "http_request_duration_seconds", "route=\"/x\"", 100);
	hist *h = hist_new();
	assert_int_equal(metrics_hist_merged(m, "http_request_duration_seconds", h), 2);
	assert_int_equal(h->count, 6);
	assert_int_equal(h->max, 20000000);
	assert_int_equal(metrics_hist_merged(m, "nothing", h), 0);
	assert_int_equal(h->count, 0);
	hist_free(h);
	metrics_free(m);
}

static void test_many_series(void **state)
{
	/* Enough series to force the table to grow several times. */
	metrics *m = metrics_new();
	char lb[64];
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 2000; i++) {
			snprintf(lb, sizeof(lb), "id=\"%d\"", i);
			metrics_count(m, i % 2 ? "odd_total" : "even_total", lb, (uint64_t)i);
		}
	for (int i = 0; i < 2000; i++) {
		snprintf(lb, sizeof(lb), "id=\"%d\"", i);
		assert_int_equal(metrics_counter_value(m, i % 2 ? "odd_total" : "even_total", lb),
				 3 * (uint64_t)i);
		assert_int_equal(metrics_counter_value(m, i % 2 ? "even_total" : "odd_total", lb), 0);
	}
	char *r = metrics_render(m);
	assert_line(r, "even_total{id=\"1998\"} 5994");
	assert_true(strstr(r, "# TYPE even_total") < strstr(r, "# TYPE odd_total"));
	free(r);
	metrics_free(m);
}

struct worker_arg {
	metrics *m;
	int id;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	char lb[32];
	snprintf(lb, sizeof(lb), "thread=\"%d\"", a->id);
	for (int i = 0; i < 10000; i++) {
		metrics_count(a->m, "shared_total", NULL, 1);
		metrics_count(a->m, "per_thread_total", lb, 1);
		if (i % 100 == 0)
			metrics_observe_us(a->m, "lat_seconds", NULL, i);
		if (i % 1000 == 0)
			free(metrics_render(a->m));
	}
	return NULL;
}

static void test_concurrency(void **state)
{
	metrics *m = metrics_new();
	pthread_t t[4];
	struct worker_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct worker_arg){m, i};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(metrics_counter_value(m, "shared_total", NULL), 40000);
	for (int i = 0; i < 4; i++) {
		char lb[32];
		snprintf(lb, sizeof(lb), "thread=\"%d\"", i);
		assert_int_equal(metrics_counter_value(m, "per_thread_total", lb), 10000);
	}
	char *r = metrics_render(m);
	assert_line(r, "shared_total 40000");
	assert_line(r, "lat_seconds_count 400");
	free(r);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter),     cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_histogram),   cmocka_unit_test(test_many_series),
		cmocka_unit_test(test_concurrency),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
