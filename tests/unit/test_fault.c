/* Tests for resil/fault: the table (set, replace, clear, expiry, limits),
 * the per-call decision (error-rate statistics with a seeded rng, latency
 * and jitter bounds, outage), the JSON listing and the PUT body parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/jval.h"
#include "core/rng.h"
#include "resil/fault.h"

#define T0 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define MS 1000LL
#define SEC 1000000LL

static fault_spec spec(int latency, int jitter, double rate, int status, bool outage, int64_t until)
{
	fault_spec s = {.latency_ms = latency, .jitter_ms = jitter, .error_rate = rate,
			.error_status = status, .outage = outage, .until_us = until};
	return s;
}

static void test_spec_check(void **state)
{
	fault_spec s = spec(0, 0, 0, 503, false, 0);
	assert_int_equal(fault_spec_check(&s), 0);
	s = spec(60000, 60000, 1, 599, true, T0);
	assert_int_equal(fault_spec_check(&s), 0);
	s = spec(400, 0, 0, 400, false, 0);
	assert_int_equal(fault_spec_check(&s), 0);
	fault_spec bad[] = {
		spec(-1, 0, 0, 503, false, 0),   spec(60001, 0, 0, 503, false, 0),
		spec(0, -1, 0, 503, false, 0),   spec(0, 60001, 0, 503, false, 0),
		spec(0, 0, -0.01, 503, false, 0), spec(0, 0, 1.01, 503, false, 0),
		spec(0, 0, 0, 399, false, 0),    spec(0, 0, 0, 600, false, 0),
		spec(0, 0, 0, 503, false, -1),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fault_spec_check(&bad[i]), ERR_INVALID);
	assert_int_equal(fault_spec_check(NULL), ERR_INVALID);
}

static void test_set_get_clear(void **state)
{
	fault_table *t = fault_table_new();
	fault_spec s = spec(100, 10, 0.5, 503, false, 0), got;
	assert_int_equal(fault_get(t, "catalog", T0, &got), ERR_NOT_FOUND);
	assert_int_equal(fault_set(t, "catalog", &s), 0);
	assert_int_equal(fault_get(t, "catalog", T0, &got), 0);
	assert_int_equal(got.latency_ms, 100);
	assert_int_equal(got.jitter_ms, 10);
	assert_true(got.error_rate == 0.5);
	assert_int_equal(got.error_status, 503);
	/* Replacing keeps one entry. */
	s = spec(0, 0, 0, 502, true, 0);
	assert_int_equal(fault_set(t, "catalog", &s), 0);
	assert_int_equal(fault_get(t, "catalog", T0, &got), 0);
	assert_true(got.outage);
	assert_int_equal(got.error_status, 502);
	json_t *l = fault_list(t, T0);
	assert_int_equal(json_array_size(l), 1);
	json_decref(l);
	/* Bad target names and specs are refused. */
	assert_int_equal(fault_set(t, "", &s), ERR_INVALID);
	assert_int_equal(fault_set(t, "a/b", &s), ERR_INVALID);
	assert_int_equal(fault_set(t, "a b", &s), ERR_INVALID);
	assert_int_equal(fault_set(t, NULL, &s), ERR_INVALID);
	char longname[FAULT_MAX_TARGET + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(fault_set(t, longname, &s), ERR_INVALID);
	longname[FAULT_MAX_TARGET] = '\0';
	assert_int_equal(fault_set(t, longname, &s), 0);
	assert_int_equal(fault_set(t, "stripe.eu-1_a", &s), 0);
	fault_spec bad = spec(0, 0, 2, 503, false, 0);
	assert_int_equal(fault_set(t, "paypal", &bad), ERR_INVALID);
	assert_int_equal(fault_get(t, "paypal", T0, &got), ERR_NOT_FOUND);
	/* Clear. */
	assert_int_equal(fault_clear(t, "catalog"), 0);
	assert_int_equal(fault_clear(t, "catalog"), ERR_NOT_FOUND);
	assert_int_equal(fault_get(t, "catalog", T0, &got), ERR_NOT_FOUND);
	assert_int_equal(fault_get(t, "stripe.eu-1_a", T0, NULL), 0);
	fault_table_free(t);
	fault_table_free(NULL);
}

static void test_table_limit(void **state)
{
	fault_table *t = fault_table_new();
	fault_spec s = spec(1, 0, 0, 503, false, 0);
	char name[32];
	for (int i = 0; i < FAULT_MAX_TARGETS; i++) {
		snprintf(name, sizeof(name), "svc-%03d", i);
		assert_int_equal(fault_set(t, name, &s), 0);
	}
	assert_int_equal(fault_set(t, "one-more", &s), ERR_TOO_LARGE);
	/* Replacing an existing one still works when full. */
	assert_int_equal(fault_set(t, "svc-007", &s), 0);
	assert_int_equal(fault_clear(t, "svc-007"), 0);
	assert_int_equal(fault_set(t, "one-more", &s), 0);
	/* Lookups are right across the sorted table. */
	for (int i = 0; i < FAULT_MAX_TARGETS; i++) {
		snprintf(name, sizeof(name), "svc-%03d", i);
		assert_int_equal(fault_get(t, name, T0, NULL), i == 7 ? ERR_NOT_FOUND : 0);
	}
	fault_table_free(t);
}

static void test_expiry(void **state)
{
	fault_table *t = fault_table_new();
	fault_spec s = spec(0, 0, 1, 500, false, T0 + 10 * SEC);
	fault_spec forever = spec(0, 0, 1, 500, false, 0);
	assert_int_equal(fault_set(t, "stripe", &s), 0);
	assert_int_equal(fault_set(t, "smtp", &forever), 0);
	rng *r = rng_new(1);
	fault_decision d;
	assert_int_equal(fault_decide(t, "stripe", T0 + 10 * SEC - 1, r, &d), 0);
	assert_true(d.active && d.fail);
	assert_int_equal(d.status, 500);
	assert_int_equal(fault_get(t, "stripe", T0 + 10 * SEC - 1, NULL), 0);
	/* At until_us it is gone, for good (an earlier now does not revive it). */
	assert_int_equal(fault_decide(t, "stripe", T0 + 10 * SEC, r, &d), 0);
	assert_false(d.active);
	assert_false(d.fail);
	assert_int_equal(fault_get(t, "stripe", T0, NULL), ERR_NOT_FOUND);
	assert_int_equal(fault_clear(t, "stripe"), ERR_NOT_FOUND);
	/* The list drops expired faults too. */
	s.until_us = T0 + 20 * SEC;
	assert_int_equal(fault_set(t, "paypal", &s), 0);
	json_t *l = fault_list(t, T0 + 20 * SEC);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "target")),
			    "smtp");
	json_decref(l);
	assert_int_equal(fault_get(t, "paypal", T0, NULL), ERR_NOT_FOUND);
	/* The forever fault is still there a year on. */
	assert_int_equal(fault_get(t, "smtp", T0 + 365LL * 86400 * SEC, NULL), 0);
	rng_free(r);
	fault_table_free(t);
}

static void test_error_rate_statistics(void **state)
{
	fault_table *t = fault_table_new();
	fault_spec s = spec(0, 0, 0.3, 429, false, 0);
	assert_int_equal(fault_set(t, "catalog", &s), 0);
	rng *r = rng_new(2024);
	fault_decision d;
	int fails = 0;
	const int n = 20000;
	for (int i = 0; i < n; i++) {
		assert_int_equal(fault_decide(t, "catalog", T0, r, &d), 0);
		assert_true(d.active);
		assert_false(d.outage);
		assert_int_equal(d.delay_us, 0);
		if (d.fail) {
			assert_int_equal(d.status, 429);
			fails++;
		} else {
			assert_int_equal(d.status, 0);
		}
	}
	/* 30% of 20000, sd ~ 65: a +-400 band is over 6 sd. */
	assert_true(fails > 5600 && fails < 6400);

	/* Same seed, same decisions. */
	rng *a = rng_new(99), *b = rng_new(99);
	fault_decision da, db;
	for (int i = 0; i < 1000; i++) {
		fault_decide(t, "catalog", T0, a, &da);
		fault_decide(t, "catalog", T0, b, &db);
		assert_int_equal(da.fail, db.fail);
	}
	rng_free(a);
	rng_free(b);

	/* 0 never fails; 1 always does. */
	s.error_rate = 0;
	fault_set(t, "catalog", &s);
	for (int i = 0; i < 1000; i++) {
		fault_decide(t, "catalog", T0, r, &d);
		assert_false(d.fail);
	}
	s.error_rate = 1;
	fault_set(t, "catalog", &s);
	for (int i = 0; i < 1000; i++) {
		fault_decide(t, "catalog", T0, r, &d);
		assert_true(d.fail);
	}
	/* Another target is untouched, and costs no draw. */
	rng *c = rng_new(5), *e = rng_new(5);
	assert_int_equal(fault_decide(t, "cart", T0, c, &d), 0);
	assert_false(d.active || d.fail || d.outage);
	assert_int_equal(d.delay_us, 0);
	assert_true(rng_u64(c) == rng_u64(e));
	rng_free(c);
	rng_free(e);
	assert_int_equal(fault_decide(NULL, "cart", T0, r, &d), ERR_INVALID);
	assert_int_equal(fault_decide(t, "cart", T0, NULL, &d), ERR_INVALID);
	rng_free(r);
	fault_table_free(t);
}

static void test_latency_and_jitter(void **state)
{
	fault_table *t = fault_table_new();
	rng *r = rng_new(7);
	fault_decision d;
	/* No jitter: the latency exactly, and no draw. */
	fault_spec s = spec(250, 0, 0, 503, false, 0);
	fault_set(t, "inventory", &s);
	rng *a = rng_new(3), *b = rng_new(3);
	fault_decide(t, "inventory", T0, a, &d);
	assert_true(d.active);
	assert_false(d.fail);
	assert_int_equal(d.delay_us, 250 * MS);
	assert_true(rng_u64(a) == rng_u64(b));
	rng_free(a);
	rng_free(b);

	/* 100 +- 20 ms: within bounds, both ends reached, centred. */
	s = spec(100, 20, 0, 503, false, 0);
	fault_set(t, "inventory", &s);
	int64_t lo = INT64_MAX, hi = 0;
	double sum = 0;
	for (int i = 0; i < 20000; i++) {
		fault_decide(t, "inventory", T0, r, &d);
		assert_true(d.delay_us >= 80 * MS && d.delay_us <= 120 * MS);
		lo = d.delay_us < lo ? d.delay_us : lo;
		hi = d.delay_us > hi ? d.delay_us : hi;
		sum += (double)d.delay_us;
	}
	assert_true(lo < 81 * MS);
	assert_true(hi > 119 * MS);
	assert_true(sum / 20000 > 99.5 * MS && sum / 20000 < 100.5 * MS);

	/* Jitter over the latency never gives a negative delay. */
	s = spec(10, 50, 0, 503, false, 0);
	fault_set(t, "inventory", &s);
	int zeros = 0;
	for (int i = 0; i < 2000; i++) {
		fault_decide(t, "inventory", T0, r, &d);
		assert_true(d.delay_us >= 0 && d.delay_us <= 60 * MS);
		zeros += d.delay_us == 0;
	}
	assert_true(zeros > 500); /* 40 of the 100 ms span clamps to 0 */

	/* Latency applies to failed calls too. */
	s = spec(30, 0, 1, 504, false, 0);
	fault_set(t, "inventory", &s);
	fault_decide(t, "inventory", T0, r, &d);
	assert_true(d.fail);
	assert_int_equal(d.status, 504);
	assert_int_equal(d.delay_us, 30 * MS);
	rng_free(r);
	fault_table_free(t);
}

static void test_outage(void **state)
{
	fault_table *t = fault_table_new();
	fault_spec s = spec(500, 100, 0, 503, true, T0 + 60 * SEC);
	fault_set(t, "payment", &s);
	rng *a = rng_new(11), *b = rng_new(11);
	fault_decision d;
	for (int i = 0; i < 60; i++) {
		assert_int_equal(fault_decide(t, "payment", T0 + i * SEC, a, &d), 0);
		assert_true(d.active && d.fail && d.outage);
		assert_int_equal(d.status, 503);
		assert_int_equal(d.delay_us, 0); /* fails at once: no latency */
	}
	assert_true(rng_u64(a) == rng_u64(b)); /* and no draws */
	/* The outage ends on time. */
	assert_int_equal(fault_decide(t, "payment", T0 + 60 * SEC, a, &d), 0);
	assert_false(d.active || d.fail || d.outage);
	rng_free(a);
	rng_free(b);
	fault_table_free(t);
}

static void test_list_json(void **state)
{
	fault_table *t = fault_table_new();
	fault_spec s1 = spec(100, 20, 0.25, 503, false, T0 + 10 * SEC);
	fault_spec s2 = spec(0, 0, 0, 502, true, 0);
	fault_set(t, "stripe", &s1);
	fault_set(t, "catalog", &s2);
	json_t *l = fault_list(t, T0);
	assert_true(json_is_array(l));
	assert_int_equal(json_array_size(l), 2);
	char *txt = jval_dump(l);
	assert_string_equal(txt,
			    "[{\"target\":\"catalog\",\"latency_ms\":0,\"jitter_ms\":0,"
			    "\"error_rate\":0.0,\"error_status\":502,\"outage\":true,"
			    "\"expires_at\":null},"
			    "{\"target\":\"stripe\",\"latency_ms\":100,\"jitter_ms\":20,"
			    "\"error_rate\":0.25,\"error_status\":503,\"outage\":false,"
			    "\"expires_at\":\"2025-11-25T23:11:05.000Z\"}]");
	free(txt);
	json_decref(l);
	fault_table *empty = fault_table_new();
	l = fault_list(empty, T0);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);
	fault_table_free(empty);
	fault_table_free(t);
}

static json_t *parse(const char *txt)
{
	json_error_t err;
	json_t *v = json_loads(txt, JSON_DECODE_ANY, &err);
	assert_non_null(v);
	return v;
}

/* Expects fault_parse_json to refuse txt, naming field. */
static void refuses(const char *txt, const char *field)
{
	json_t *v = parse(txt);
	fault_spec s;
	jval_error e = {0};
	assert_int_equal(fault_parse_json(v, T0, &s, &e), ERR_INVALID);
	assert_string_equal(e.field, field);
	assert_true(e.message[0] != '\0');
	json_decref(v);
}

static void test_parse_json(void **state)
{
	fault_spec s;
	jval_error e;
	json_t *v = parse("{\"latency_ms\":1500,\"jitter_ms\":200,\"error_rate\":0.5,"
			  "\"error_status\":502,\"outage\":false,\"duration_s\":60}");
	assert_int_equal(fault_parse_json(v, T0, &s, &e), 0);
	assert_int_equal(s.latency_ms, 1500);
	assert_int_equal(s.jitter_ms, 200);
	assert_true(s.error_rate == 0.5);
	assert_int_equal(s.error_status, 502);
	assert_false(s.outage);
	assert_int_equal(s.until_us, T0 + 60 * SEC);
	assert_int_equal(fault_spec_check(&s), 0);
	json_decref(v);

	/* Everything optional; null is absent. */
	v = parse("{\"outage\":true,\"latency_ms\":null}");
	assert_int_equal(fault_parse_json(v, T0, &s, &e), 0);
	assert_int_equal(s.latency_ms, 0);
	assert_int_equal(s.jitter_ms, 0);
	assert_true(s.error_rate == 0);
	assert_int_equal(s.error_status, 503);
	assert_true(s.outage);
	assert_int_equal(s.until_us, 0);
	json_decref(v);
	v = parse("{}");
	assert_int_equal(fault_parse_json(v, T0, &s, &e), 0);
	assert_int_equal(s.until_us, 0);
	json_decref(v);

	/* Range ends are inclusive; an integer error_rate is a number. */
	v = parse("{\"latency_ms\":60000,\"jitter_ms\":60000,\"error_rate\":1,"
		  "\"error_status\":599,\"duration_s\":86400}");
	assert_int_equal(fault_parse_json(v, T0, &s, &e), 0);
	assert_true(s.error_rate == 1.0);
	assert_int_equal(s.until_us, T0 + 86400 * SEC);
	json_decref(v);
	v = parse("{\"error_status\":400,\"error_rate\":0,\"duration_s\":0}");
	assert_int_equal(fault_parse_json(v, T0, &s, &e), 0);
	json_decref(v);

	refuses("{\"latency_ms\":-1}", "latency_ms");
	refuses("{\"latency_ms\":60001}", "latency_ms");
	refuses("{\"latency_ms\":1.5}", "latency_ms");
	refuses("{\"latency_ms\":\"100\"}", "latency_ms");
	refuses("{\"jitter_ms\":60001}", "jitter_ms");
	refuses("{\"jitter_ms\":-5}", "jitter_ms");
	refuses("{\"error_rate\":1.0001}", "error_rate");
	refuses("{\"error_rate\":-0.1}", "error_rate");
	refuses("{\"error_rate\":\"0.5\"}", "error_rate");
	refuses("{\"error_rate\":true}", "error_rate");
	refuses("{\"error_status\":399}", "error_status");
	refuses("{\"error_status\":600}", "error_status");
	refuses("{\"error_status\":200}", "error_status");
	refuses("{\"outage\":1}", "outage");
	refuses("{\"outage\":\"yes\"}", "outage");
	refuses("{\"duration_s\":86401}", "duration_s");
	refuses("{\"duration_s\":-1}", "duration_s");
	refuses("{\"latency\":100}", "latency");
	refuses("{\"duration_s\":10,\"expires\":1}", "expires");
	refuses("{\"\\u00e9t\\u00e9\":1}", "body"); /* not echoed */
	refuses("[]", "body");
	refuses("42", "body");
	/* NULL error buffer is allowed. */
	v = parse("{\"latency_ms\":-1}");
	assert_int_equal(fault_parse_json(v, T0, &s, NULL), ERR_INVALID);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_check),
		cmocka_unit_test(test_set_get_clear),
		cmocka_unit_test(test_table_limit),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_error_rate_statistics),
		cmocka_unit_test(test_latency_and_jitter),
		cmocka_unit_test(test_outage),
		cmocka_unit_test(test_list_json),
		cmocka_unit_test(test_parse_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
