/* exporter: spans as OTLP/JSON to a file (one ExportTraceServiceRequest per
 * line) and to a collector on a loopback server playing OTLP/HTTP
 * (POST /v1/traces), checked against the field names of the OTLP/JSON
 * encoding; a collector that fails keeps the spans for the next round, and
 * spans the ring overwrote meanwhile are counted as dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/tracer.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "ops/exporter.h"

#define T0 1764112255000000LL

/* ---- a collector ---------------------------------------------------------------- */

typedef struct collector {
	pthread_mutex_t mu;
	int status; /* what it answers */
	int posts;
	char path[128];
	char ctype[128];
	json_t *bodies; /* every body received with status 2xx */
} collector;

static void collect(void *ud, msg_req *req, msg_resp *resp)
{
	collector *c = ud;
	pthread_mutex_lock(&c->mu);
	c->posts++;
	snprintf(c->path, sizeof(c->path), "%s %s", req->method, req->path);
	const char *ct = msg_req_header(req, "Content-Type");
	snprintf(c->ctype, sizeof(c->ctype), "%s", ct ? ct : "");
	int status = c->status;
	if (status >= 200 && status < 300)
		json_array_append_new(c->bodies, json_loadb(req->body ? req->body : "", req->body_len,
							     0, NULL));
	pthread_mutex_unlock(&c->mu);
	msg_resp_json(resp, status, json_object()); /* OTLP's ExportTraceServiceResponse */
}

/* ---- spans ---------------------------------------------------------------------- */

static void make_span(span *s, int i, const span *parent, const char *service)
{
	trace_ctx self = { .flags = 1 };
	memset(self.trace_id, 0x4b, 16);
	self.span_id[0] = (uint8_t)(i + 1);
	self.span_id[7] = 0x77;
	trace_ctx par = { .flags = 1 };
	if (parent) {
		memcpy(par.trace_id, parent->trace_id, 16);
		memcpy(par.span_id, parent->span_id, 8);
	}
	span_begin(s, parent ? &par : NULL, &self, service, parent ? "POST /v1/payments" : "POST /v1/orders",
		   parent ? SPAN_CLIENT : SPAN_SERVER, T0 + i * 1000);
	s->dur_us = 500;
	s->status = i == 2 ? SPAN_ERROR : SPAN_OK;
	if (i == 2)
		snprintf(s->status_msg, sizeof(s->status_msg), "HTTP 503");
	span_attr_set(s, "http.status_code", i == 2 ? "503" : "200");
}

static int is_hex(const char *s, size_t n)
{
	return s && strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* Checks one ExportTraceServiceRequest against OTLP/JSON's field names;
 * returns its spans. */
static int check_otlp(const json_t *doc)
{
	assert_true(json_is_object(doc));
	const json_t *rss = json_object_get(doc, "resourceSpans");
	assert_true(json_is_array(rss));
	int spans = 0;
	size_t i, j, k;
	const json_t *rs, *ss, *sp;
	json_array_foreach(rss, i, rs)
	{
		const json_t *attr = json_array_get(
			json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
		assert_string_equal(json_string_value(json_object_get(attr, "key")), "service.name");
		assert_non_null(json_string_value(
			json_object_get(json_object_get(attr, "value"), "stringValue")));
		json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
		{
			assert_string_equal(json_string_value(json_object_get(
						    json_object_get(ss, "scope"), "name")),
					    "ecom");
			json_array_foreach(json_object_get(ss, "spans"), k, sp)
			{
				assert_true(is_hex(json_string_value(json_object_get(sp, "traceId")), 32));
				assert_true(is_hex(json_string_value(json_object_get(sp, "spanId")), 16));
				const json_t *pid = json_object_get(sp, "parentSpanId");
				assert_true(!pid || is_hex(json_string_value(pid), 16));
				assert_non_null(json_string_value(json_object_get(sp, "name")));
				assert_true(json_is_integer(json_object_get(sp, "kind")));
				const char *st = json_string_value(json_object_get(sp, "startTimeUnixNano"));
				const char *en = json_string_value(json_object_get(sp, "endTimeUnixNano"));
				assert_non_null(st);
				assert_non_null(en);
				assert_true(strspn(st, "0123456789") == strlen(st));
				assert_true(strtoll(en, NULL, 10) - strtoll(st, NULL, 10) == 500000);
				const json_t *a = json_array_get(json_object_get(sp, "attributes"), 0);
				assert_string_equal(json_string_value(json_object_get(a, "key")),
						    "http.status_code");
				assert_non_null(json_string_value(json_object_get(
					json_object_get(a, "value"), "stringValue")));
				assert_true(json_is_integer(
					json_object_get(json_object_get(sp, "status"), "code")));
				spans++;
			}
		}
	}
	return spans;
}

typedef struct fx {
	char dir[64];
	char file[128];
	clock_src *clock;
	FILE *logf;
	logger *log;
	metrics *m;
	tracer *t;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/exporter.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->file, sizeof(f->file), "%s/spans.jsonl", f->dir);
	f->clock = clock_virtual_new(T0);
	f->logf = fopen("/dev/null", "w");
	f->log = log_new("test", f->logf, f->clock, LOG_DEBUG);
	f->m = metrics_new();
	f->t = tracer_new(8);
	http_client_global_init();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	unlink(f->file);
	rmdir(f->dir);
	tracer_free(f->t);
	metrics_free(f->m);
	log_free(f->log);
	fclose(f->logf);
	clock_free(f->clock);
	http_client_global_cleanup();
	free(f);
	return 0;
}

static void record_three(fx *f, int base)
{
	span s[3];
	make_span(&s[0], base, NULL, "gateway");
	make_span(&s[1], base + 1, &s[0], "order");
	make_span(&s[2], base + 2, &s[1], "payment");
	for (int i = 0; i < 3; i++)
		tracer_record(f->t, &s[i]);
}

static uint64_t counter(fx *f, const char *name, const char *sink)
{
	char labels[48];
	snprintf(labels, sizeof(labels), "sink=\"%s\"", sink);
	return metrics_counter_value(f->m, name, labels);
}

static void test_file(void **state)
{
	fx *f = *state;
	exporter_opts o = { .file = f->file, .batch = 2 };
	char err[128] = "";
	exporter *e = exporter_new(f->t, &o, f->log, f->m, err, sizeof(err));
	assert_non_null(e);
	record_three(f, 0);
	assert_int_equal(exporter_flush(e), 3);
	assert_int_equal(exporter_flush(e), 0); /* nothing new */
	record_three(f, 2); /* indices 2..4: one more batch line */
	assert_int_equal(exporter_flush(e), 3);
	exporter_free(e);

	FILE *in = fopen(f->file, "r");
	assert_non_null(in);
	char line[16384];
	int lines = 0, spans = 0, roots = 0;
	while (fgets(line, sizeof(line), in)) {
		json_error_t je;
		json_t *doc = json_loads(line, 0, &je);
		if (!doc)
			fail_msg("line %d is not JSON: %s", lines + 1, je.text);
		spans += check_otlp(doc);
		size_t i, k;
		json_t *rs, *sp;
		json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs)
			json_array_foreach(json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0),
							   "spans"),
					   k, sp) roots += json_object_get(sp, "parentSpanId") == NULL;
		json_decref(doc);
		lines++;
	}
	fclose(in);
	assert_int_equal(lines, 4); /* batches of 2: 2 + 1, then 2 + 1 */
	assert_int_equal(spans, 6);
	assert_int_equal(roots, 2);
	assert_int_equal(counter(f, "otel_spans_exported_total", "file"), 6);
}

static void test_collector(void **state)
{
	fx *f = *state;
	collector c = { .status = 200, .bodies = json_array() };
	pthread_mutex_init(&c.mu, NULL);
	http_server_opts so = { .host = "127.0.0.1", .port = 0, .threads = 1, .body_limit = 1 << 20,
				.conn_timeout_s = 5 };
	char err[128] = "";
	http_server *srv = http_server_start(&so, collect, &c, NULL, err, sizeof(err));
	assert_non_null(srv);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(srv));
	exporter_opts o = { .endpoint = url, .batch = 100, .timeout_ms = 2000 };
	exporter *e = exporter_new(f->t, &o, f->log, f->m, err, sizeof(err));
	assert_non_null(e);

	record_three(f, 0);
	assert_int_equal(exporter_flush(e), 3);
	pthread_mutex_lock(&c.mu);
	assert_string_equal(c.path, "POST /v1/traces");
	assert_string_equal(c.ctype, "application/json");
	assert_int_equal(json_array_size(c.bodies), 1);
	assert_int_equal(check_otlp(json_array_get(c.bodies, 0)), 3);
	/* One resourceSpans per service, in the order they first appear. */
	json_t *rss = json_object_get(json_array_get(c.bodies, 0), "resourceSpans");
	assert_int_equal(json_array_size(rss), 3);
	c.status = 503; /* the collector is unwell */
	pthread_mutex_unlock(&c.mu);

	/* Failing: the spans wait; 20 recorded into a ring of 8 while it
	 * fails: 12 are dropped, the last 8 go once it is well again. */
	for (int i = 0; i < 20; i++) {
		span s;
		make_span(&s, 10 + i, NULL, "catalog");
		tracer_record(f->t, &s);
	}
	assert_int_equal(exporter_flush(e), 0);
	assert_int_equal(counter(f, "otel_export_failures_total", "otlp_http"), 1);
	pthread_mutex_lock(&c.mu);
	c.status = 200;
	pthread_mutex_unlock(&c.mu);
	assert_int_equal(exporter_flush(e), 8);
	assert_int_equal(counter(f, "otel_spans_dropped_total", "otlp_http"), 12);
	assert_int_equal(counter(f, "otel_spans_exported_total", "otlp_http"), 11);
	pthread_mutex_lock(&c.mu);
	assert_int_equal(json_array_size(c.bodies), 2);
	assert_int_equal(check_otlp(json_array_get(c.bodies, 1)), 8);
	pthread_mutex_unlock(&c.mu);

	/* A collector that is gone: the export fails, nothing waits long. */
	http_server_stop(srv);
	span s;
	make_span(&s, 40, NULL, "catalog");
	tracer_record(f->t, &s);
	assert_int_equal(exporter_flush(e), 0);
	exporter_free(e);
	json_decref(c.bodies);
	pthread_mutex_destroy(&c.mu);
}

/* The thread exports on its own, every flush_ms. */
static void test_thread(void **state)
{
	fx *f = *state;
	exporter_opts o = { .file = f->file, .flush_ms = 20 };
	char err[128] = "";
	exporter *e = exporter_new(f->t, &o, f->log, f->m, err, sizeof(err));
	assert_non_null(e);
	assert_int_equal(exporter_start(e), 0);
	record_three(f, 0);
	int seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		usleep(10000);
		seen = counter(f, "otel_spans_exported_total", "file") == 3;
	}
	assert_true(seen);
	exporter_free(e);
}

static void test_bad_options(void **state)
{
	fx *f = *state;
	char err[128] = "";
	exporter_opts none = { 0 };
	assert_null(exporter_new(f->t, &none, f->log, f->m, err, sizeof(err)));
	assert_non_null(strstr(err, "otel."));
	exporter_opts bad = { .endpoint = "ftp://collector" };
	assert_null(exporter_new(f->t, &bad, f->log, f->m, err, sizeof(err)));
	assert_non_null(strstr(err, "otel.endpoint"));
	exporter_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
