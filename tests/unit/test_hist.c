/* Tests of core/hist: bucket layout, percentiles, merge, clamping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/hist.h"

static void test_bucket_layout(void **state)
{
	/* Small values are exact. */
	for (int64_t v = 0; v < HIST_SUB; v++) {
		assert_int_equal(hist_bucket_of(v), v);
		assert_int_equal(hist_bucket_upper((int)v), v);
	}
	assert_int_equal(hist_bucket_of(-5), 0);
	/* Buckets are contiguous and monotonic; every value lies within its
	 * bucket, and the bucket is no wider than 1/HIST_SUB of the value. */
	int prev = -1;
	for (int64_t v = 0; v < 200000; v += 1 + v / 1000) {
		int b = hist_bucket_of(v);
		assert_true(b >= prev);
		assert_true(b < HIST_BUCKETS);
		int64_t up = hist_bucket_upper(b);
		assert_true(up >= v);
		assert_true(b == 0 || hist_bucket_upper(b - 1) < v);
		assert_true((double)(up - v) <= (double)v / HIST_SUB);
		prev = b;
	}
	/* Consecutive buckets leave no gaps. */
	for (int i = 1; i < HIST_BUCKETS; i++) {
		assert_int_equal(hist_bucket_of(hist_bucket_upper(i - 1) + 1), i);
		assert_int_equal(hist_bucket_of(hist_bucket_upper(i)), i);
	}
	/* The top bucket ends at 2^HIST_MAX_EXP - 1. */
	assert_int_equal(hist_bucket_upper(HIST_BUCKETS - 1), ((int64_t)1 << HIST_MAX_EXP) - 1);
	assert_int_equal(hist_bucket_of(((int64_t)1 << HIST_MAX_EXP) - 1), HIST_BUCKETS - 1);
	assert_int_equal(hist_bucket_of(INT64_MAX), HIST_BUCKETS - 1);
}

static void assert_within(int64_t got, double want, double rel)
{
	double err = (double)got - want;
	if (err < 0)
		err = -err;
	if (err > want * rel)
		fail_msg("got %lld, want %.1f within %.1f%%", (long long)got, want, rel * 100);
}

static void test_percentiles_uniform(void **state)
{
	hist *h = hist_new();
	assert_non_null(h);
	for (int64_t v = 1; v <= 10000; v++)
		hist_record(h, v);
	assert_int_equal(h->count, 10000);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 10000);
	assert_int_equal(h->sum, 50005000);
	assert_within(hist_percentile(h, 50), 5000, 0.02);
	assert_within(hist_percentile(h, 90), 9000, 0.02);
	assert_within(hist_percentile(h, 99), 9900, 0.02);
	assert_within(hist_percentile(h, 99.9), 9990, 0.02);
	assert_within(hist_percentile(h, 1), 100, 0.02);
	assert_int_equal(hist_percentile(h, 100), 10000);
	assert_int_equal(hist_percentile(h, 0), 1);
	/* Out-of-range p is clamped. */
	assert_int_equal(hist_percentile(h, 250), 10000);
	assert_int_equal(hist_percentile(h, -3), 1);
	/* Monotonic in p. */
	int64_t prev = 0;
	for (double p = 0; p <= 100; p += 0.5) {
		int64_t v = hist_percentile(h, p);
		assert_true(v >= prev);
		prev = v;
	}
	assert_true(hist_mean(h) > 5000.4 && hist_mean(h) < 5000.6);
	hist_free(h);
}

static void test_percentile_capped_at_max(void **state)
{
	hist *h = hist_new();
	/* 1000 lies in a bucket whose upper bound is above 1000. */
	hist_record(h, 1000);
	assert_true(hist_bucket_upper(hist_bucket_of(1000)) > 1000);
	assert_int_equal(hist_percentile(h, 50), 1000);
	assert_int_equal(hist_percentile(h, 100), 1000);
	hist_record(h, 7);
	assert_int_equal(hist_percentile(h, 50), 7);
	assert_int_equal(hist_percentile(h, 51), 1000);
	hist_free(h);
}

static void test_empty(void **state)
{
	hist *h = hist_new();
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 100), 0);
	assert_int_equal(hist_count_le(h, 1000), 0);
	assert_true(hist_mean(h) == 0.0);
	hist_record(h, 5);
	hist_reset(h);
	assert_int_equal(h->count, 0);
	assert_int_equal(hist_percentile(h, 99), 0);
	hist_free(h);
	hist_free(NULL);
}

static void test_negative_and_huge(void **state)
{
	hist *h = hist_new();
	hist_record(h, -42);
	assert_int_equal(h->min, 0);
	assert_int_equal(h->buckets[0], 1);
	int64_t huge = (int64_t)1 << 50;
	hist_record(h, huge);
	assert_int_equal(h->max, huge);
	assert_int_equal(h->buckets[HIST_BUCKETS - 1], 1);
	/* The top bucket's bound is below max, and the result never exceeds
	 * max nor falls below min. */
	int64_t p = hist_percentile(h, 100);
	assert_int_equal(p, ((int64_t)1 << HIST_MAX_EXP) - 1);
	assert_true(p <= h->max);
	hist_record(h, INT64_MAX);
	assert_int_equal(h->max, INT64_MAX);
	assert_int_equal(h->buckets[HIST_BUCKETS - 1], 2);
	assert_int_equal(h->count, 3);
	hist_free(h);

	/* A lone huge value: p50 is capped at max but kept >= min. */
	h = hist_new();
	hist_record(h, huge);
	assert_int_equal(hist_percentile(h, 50), huge);
	hist_free(h);
}

static void test_merge(void **state)
{
	hist *a = hist_new(), *b = hist_new(), *both = hist_new();
	for (int64_t v = 0; v < 5000; v++) {
		int64_t x = v * 37 % 9973, y = 100000 + v * 13;
		hist_record(a, x);
		hist_record(b, y);
		hist_record(both, x);
		hist_record(both, y);
	}
	hist_merge(a, b);
	assert_int_equal(a->count, both->count);
	assert_int_equal(a->sum, both->sum);
	assert_int_equal(a->min, both->min);
	assert_int_equal(a->max, both->max);
	assert_memory_equal(a->buckets, both->buckets, sizeof(a->buckets));
	for (int p = 0; p <= 100; p += 5)
		assert_int_equal(hist_percentile(a, p), hist_percentile(both, p));

	/* Merging into an empty one copies min and max. */
	hist *e = hist_new();
	hist_merge(e, b);
	assert_int_equal(e->min, b->min);
	assert_int_equal(e->max, b->max);
	/* Merging an empty one changes nothing. */
	hist_reset(b);
	hist_merge(e, b);
	assert_int_equal(e->count, 5000);
	assert_int_equal(e->min, 100000);
	hist_free(a);
	hist_free(b);
	hist_free(both);
	hist_free(e);
}

static void test_count_le(void **state)
{
	hist *h = hist_new();
	for (int64_t v = 1; v <= 100; v++)
		hist_record(h, v);
	hist_record(h, 500);
	hist_record(h, 1000000);
	assert_int_equal(hist_count_le(h, -1), 0);
	assert_int_equal(hist_count_le(h, 0), 0);
	assert_int_equal(hist_count_le(h, 10), 10);
	assert_int_equal(hist_count_le(h, 63), 63);
	assert_int_equal(hist_count_le(h, 100), 100);
	/* A value equal to the bound is included. */
	assert_int_equal(hist_count_le(h, 499), 100);
	assert_int_equal(hist_count_le(h, 500), 101);
	/* Below the value's bucket it is not counted; within it, it is (to
	 * bucket precision, 1/HIST_SUB). */
	assert_int_equal(hist_count_le(h, 980000), 101);
	assert_int_equal(hist_count_le(h, 999999), 102);
	assert_int_equal(hist_count_le(h, 1000000), 102);
	assert_int_equal(hist_count_le(h, INT64_MAX), 102);
	hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_layout),
		cmocka_unit_test(test_percentiles_uniform),
		cmocka_unit_test(test_percentile_capped_at_max),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_negative_and_huge),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_count_le),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
