/* Tests for core/trace (W3C Trace Context), its parsing rules for a
 * receiver, case by case, and ids from a seeded rng; for core/tracer (the
 * ring of finished spans, its search and its JSON); and for core/otlp (the
 * OTLP/JSON export's field names and encodings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/otlp.h"
#include "core/rng.h"
#include "core/trace.h"
#include "core/tracer.h"

#define GOOD "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_parse_valid(void **state)
{
	trace_ctx t;
	assert_int_equal(trace_parse(GOOD, &t), 0);
	char tid[TRACE_ID_HEX], sid[TRACE_SPAN_HEX], buf[TRACE_PARENT_SIZE];
	trace_id_hex(t.trace_id, tid);
	trace_span_hex(t.span_id, sid);
	assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(sid, "00f067aa0ba902b7");
	assert_int_equal(t.flags, 1);
	trace_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, GOOD);
	/* Not sampled. */
	assert_int_equal(trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &t), 0);
	assert_int_equal(t.flags, 0);
	/* A future version: longer, with more after a '-', is read by its
	 * first fields and re-emitted as 00. */
	assert_int_equal(
		trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future", &t),
		0);
	trace_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, GOOD);
	assert_int_equal(trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &t), 0);
}

static void test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		NULL,
		"",
		"00",
		/* upper case hex */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
		"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* all-zero ids */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		/* version ff */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		/* version 00 with anything more */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		/* a later version with more that does not start with '-' */
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		/* short fields, wrong separators, non-hex */
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
		"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		trace_ctx t;
		memset(&t, 0xab, sizeof(t));
		if (trace_parse(bad[i], &t) != ERR_PARSE)
			fail_msg("accepted: %s", bad[i] ? bad[i] : "(null)");
		assert_false(trace_valid(&t));
	}
}

static void test_new_and_child(void **state)
{
	rng *r1 = rng_new(42), *r2 = rng_new(42);
	trace_ctx a, b, c;
	trace_new_root(&a, r1);
	trace_new_root(&b, r2);
	assert_memory_equal(&a, &b, sizeof(a)); /* same seed, same ids */
	assert_true(trace_valid(&a));
	assert_int_equal(a.flags, TRACE_FLAG_SAMPLED);
	trace_child(&a, &c, r1);
	assert_memory_equal(c.trace_id, a.trace_id, 16);
	assert_memory_not_equal(c.span_id, a.span_id, 8);
	char buf[TRACE_PARENT_SIZE];
	trace_format(&c, buf, sizeof(buf));
	trace_ctx back;
	assert_int_equal(trace_parse(buf, &back), 0);
	assert_memory_equal(&back, &c, sizeof(c));
	uint8_t id[16], sp[8];
	assert_int_equal(trace_id_from_hex("4bf92f3577b34da6a3ce929d0e0e4736", id), 0);
	assert_int_equal(trace_id_from_hex("4bf92f3577b34da6a3ce929d0e0e473", id), ERR_PARSE);
	assert_int_equal(trace_span_from_hex("00f067aa0ba902b7", sp), 0);
	assert_int_equal(trace_span_from_hex("00f067aa0ba902b7a", sp), ERR_PARSE);
	assert_int_equal(trace_span_from_hex(NULL, sp), ERR_PARSE);
	rng_free(r1);
	rng_free(r2);
}

/* A span of trace tr, its own id from the rng. */
static span make_span(const trace_ctx *parent, trace_ctx *self, rng *r, const char *service,
		      const char *name, int64_t start)
{
	span s;
	trace_child(parent, self, r);
	span_begin(&s, parent, self, service, name, SPAN_SERVER, start);
	s.dur_us = 1500;
	s.status = SPAN_OK;
	return s;
}

static void test_tracer_ring(void **state)
{
	rng *r = rng_new(1);
	tracer *t = tracer_new(8);
	trace_ctx a, b;
	trace_new_root(&a, r);
	trace_new_root(&b, r);
	for (int i = 0; i < 12; i++) {
		trace_ctx self;
		char name[16];
		snprintf(name, sizeof(name), "op%d", i);
		span s = make_span(i % 2 ? &b : &a, &self, r, "order", name, 1000 + i);
		tracer_record(t, &s);
	}
	assert_int_equal(tracer_count(t), 12);
	span out[16];
	/* The ring holds the last 8 (op4..op11); trace a has op4,6,8,10. */
	size_t n = tracer_find(t, a.trace_id, out, 16);
	assert_int_equal(n, 4);
	assert_string_equal(out[0].name, "op4");
	assert_string_equal(out[3].name, "op10");
	/* At most max, the newest, oldest first. */
	n = tracer_find(t, a.trace_id, out, 3);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].name, "op6");
	assert_string_equal(out[2].name, "op10");
	n = tracer_recent(t, out, 16);
	assert_int_equal(n, 8);
	assert_string_equal(out[0].name, "op4");
	assert_string_equal(out[7].name, "op11");
	uint8_t none[16] = { 9 };
	assert_int_equal(tracer_find(t, none, out, 16), 0);
	tracer_free(t);
	tracer_free(NULL);
	rng_free(r);
}

static void test_span_json_round_trip(void **state)
{
	rng *r = rng_new(3);
	trace_ctx root, self;
	trace_new_root(&root, r);
	span s = make_span(&root, &self, r, "inventory", "POST /v1/reservations",
			   1764112255000000LL);
	s.status = SPAN_ERROR;
	snprintf(s.status_msg, sizeof(s.status_msg), "409 insufficient_stock");
	span_attr_set(&s, "http.status_code", "409");
	span_attr_set(&s, "order_id", "ord-1");
	json_t *v = span_json(&s);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "error");
	assert_string_equal(json_string_value(json_object_get(v, "start")), "2025-11-25T23:10:55.000Z");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(v, "attributes"), "order_id")),
		"ord-1");
	span back;
	assert_int_equal(span_from_json(v, &back), 0);
	assert_memory_equal(back.trace_id, s.trace_id, 16);
	assert_memory_equal(back.span_id, s.span_id, 8);
	assert_memory_equal(back.parent_id, root.span_id, 8);
	assert_string_equal(back.name, s.name);
	assert_string_equal(back.status_msg, s.status_msg);
	assert_int_equal(back.status, SPAN_ERROR);
	assert_int_equal(back.dur_us, 1500);
	assert_int_equal(back.nattrs, 2);
	json_decref(v);
	/* A root span: parent null. */
	span rs;
	span_begin(&rs, NULL, &root, "gateway", "GET /", SPAN_SERVER, 5);
	v = span_json(&rs);
	assert_true(json_is_null(json_object_get(v, "parent_span_id")));
	assert_int_equal(span_from_json(v, &back), 0);
	json_decref(v);
	v = json_pack("{s:s}", "trace_id", "nothex");
	assert_int_equal(span_from_json(v, &back), ERR_PARSE);
	json_decref(v);
	rng_free(r);
}

static void test_otlp_export(void **state)
{
	rng *r = rng_new(5);
	trace_ctx root, c1, c2;
	trace_new_root(&root, r);
	span sp[3];
	span_begin(&sp[0], NULL, &root, "gateway", "POST /v1/orders", SPAN_SERVER, 1000);
	sp[0].dur_us = 5000;
	sp[1] = make_span(&root, &c1, r, "order", "checkout", 1100);
	sp[2] = make_span(&c1, &c2, r, "gateway", "POST /v1/payments", 1200);
	span_attr_set(&sp[2], "peer.service", "payment");
	json_t *v = otlp_export(sp, 3);
	assert_non_null(v);
	json_t *rs = json_object_get(v, "resourceSpans");
	assert_int_equal(json_array_size(rs), 2); /* gateway, order */
	json_t *first = json_array_get(rs, 0);
	json_t *attr = json_array_get(json_object_get(json_object_get(first, "resource"), "attributes"), 0);
	assert_string_equal(json_string_value(json_object_get(attr, "key")), "service.name");
	assert_string_equal(json_string_value(json_object_get(json_object_get(attr, "value"), "stringValue")),
			    "gateway");
	json_t *ss = json_array_get(json_object_get(first, "scopeSpans"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")), "ecom");
	json_t *spans = json_object_get(ss, "spans");
	assert_int_equal(json_array_size(spans), 2);
	json_t *s0 = json_array_get(spans, 0), *s1 = json_array_get(spans, 1);
	char tid[TRACE_ID_HEX];
	trace_id_hex(root.trace_id, tid);
	assert_string_equal(json_string_value(json_object_get(s0, "traceId")), tid);
	assert_int_equal(strlen(json_string_value(json_object_get(s0, "spanId"))), 16);
	assert_null(json_object_get(s0, "parentSpanId")); /* a root has none */
	assert_int_equal(json_integer_value(json_object_get(s0, "kind")), 2);
	assert_string_equal(json_string_value(json_object_get(s0, "startTimeUnixNano")), "1000000");
	assert_string_equal(json_string_value(json_object_get(s0, "endTimeUnixNano")), "6000000");
	char pid[TRACE_SPAN_HEX];
	trace_span_hex(c1.span_id, pid);
	assert_string_equal(json_string_value(json_object_get(s1, "parentSpanId")), pid);
	json_t *a0 = json_array_get(json_object_get(s1, "attributes"), 0);
	assert_string_equal(json_string_value(json_object_get(a0, "key")), "peer.service");
	assert_string_equal(json_string_value(json_object_get(json_object_get(a0, "value"), "stringValue")),
			    "payment");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s1, "status"), "code")), 1);
	/* It serialises and parses back. */
	char *text = json_dumps(v, JSON_COMPACT);
	json_error_t e;
	json_t *again = json_loads(text, 0, &e);
	assert_non_null(again);
	assert_true(json_equal(v, again));
	free(text);
	json_decref(again);
	json_decref(v);
	v = otlp_export(NULL, 0);
	assert_int_equal(json_array_size(json_object_get(v, "resourceSpans")), 0);
	json_decref(v);
	rng_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_new_and_child),
		cmocka_unit_test(test_tracer_ring),
		cmocka_unit_test(test_span_json_round_trip),
		cmocka_unit_test(test_otlp_export),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
