/* window: requests, errors and latencies of the last seconds, the JSON the
 * admin API shows, and the merge of several processes' windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/window.h"

#define SEC 1000000LL
#define T0 (1764112255LL * SEC)

static double num(const json_t *v, const char *key)
{
	const json_t *f = json_object_get(v, key);
	assert_true(json_is_number(f));
	return json_number_value(f);
}

static void test_counts_and_rates(void **unused)
{
	window *w = window_new(10, T0);
	assert_non_null(w);
	/* 90 fast requests and 10 slow failures over 5 s. */
	for (int i = 0; i < 100; i++) {
		window_enter(w);
		int slow = i % 10 == 9;
		window_leave(w, T0 + (i / 20) * SEC + 1000, slow ? 200000 : 2000, slow);
	}
	window_enter(w); /* one still running */
	hist *h = hist_new();
	window_stats st = { .latency = h };
	window_sum(w, T0 + 5 * SEC, &st);
	assert_int_equal(st.requests, 100);
	assert_int_equal(st.errors, 10);
	assert_true(st.seconds > 4.99 && st.seconds < 5.01); /* the life, shorter than 10 s */
	assert_true(hist_percentile(h, 50) <= 2100);
	assert_true(hist_percentile(h, 99) >= 190000);
	assert_int_equal(window_in_flight(w), 1);

	json_t *v = window_json(w, T0 + 5 * SEC);
	assert_non_null(v);
	assert_true(num(v, "rps") > 19.9 && num(v, "rps") < 20.1);
	assert_true(num(v, "error_rate") > 0.099 && num(v, "error_rate") < 0.101);
	assert_true(num(v, "p50_ms") > 1.9 && num(v, "p50_ms") < 2.1);
	assert_true(num(v, "p99_ms") > 190 && num(v, "p99_ms") < 210);
	assert_int_equal(num(v, "in_flight"), 1);
	assert_int_equal(num(v, "window_s"), 10);
	assert_true(json_array_size(json_object_get(v, "latency_buckets")) >= 2);
	json_decref(v);

	/* 20 s later everything has left the window. */
	window_sum(w, T0 + 25 * SEC, &st);
	assert_int_equal(st.requests, 0);
	assert_true(st.seconds > 8.99 && st.seconds < 10.01); /* 9 whole seconds and the current one */
	hist_free(h);
	window_free(w);
	window_free(NULL);
}

static void test_slots_reused(void **unused)
{
	window *w = window_new(3, T0);
	for (int s = 0; s < 10; s++) {
		window_enter(w);
		window_leave(w, T0 + s * SEC, 1000, 0);
	}
	window_stats st = { .latency = NULL };
	window_sum(w, T0 + 9 * SEC + SEC / 2, &st);
	assert_int_equal(st.requests, 3); /* seconds 7, 8 and 9 */
	window_free(w);
}

static void test_merge(void **unused)
{
	window *a = window_new(10, T0), *b = window_new(10, T0);
	for (int i = 0; i < 30; i++) {
		window_enter(a);
		window_leave(a, T0 + SEC, 1000, 0);
	}
	for (int i = 0; i < 10; i++) {
		window_enter(b);
		window_leave(b, T0 + SEC, 100000, 1);
	}
	json_t *ja = window_json(a, T0 + 2 * SEC), *jb = window_json(b, T0 + 2 * SEC);
	json_t *acc = json_object();
	hist *h = hist_new();
	window_merge_json(acc, h, ja);
	window_merge_json(acc, h, jb);
	window_finish_json(acc, h);
	assert_int_equal(num(acc, "requests"), 40);
	assert_int_equal(num(acc, "errors"), 10);
	assert_true(num(acc, "error_rate") > 0.249 && num(acc, "error_rate") < 0.251);
	assert_true(num(acc, "rps") > 19.9 && num(acc, "rps") < 20.1);
	assert_true(num(acc, "p50_ms") < 1.1);
	assert_true(num(acc, "p99_ms") > 95);
	assert_int_equal(num(acc, "instances_reporting"), 2);
	/* An empty accumulator still has the whole shape. */
	json_t *none = json_object();
	hist_reset(h);
	window_finish_json(none, h);
	assert_int_equal(num(none, "requests"), 0);
	assert_int_equal(num(none, "rps"), 0);
	assert_int_equal(num(none, "p99_ms"), 0);
	json_decref(none);
	json_decref(acc);
	json_decref(ja);
	json_decref(jb);
	hist_free(h);
	window_free(a);
	window_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_and_rates),
		cmocka_unit_test(test_slots_reused),
		cmocka_unit_test(test_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
