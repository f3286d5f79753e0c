/* Tests for resil/backoff: full-jitter bounds and spread, the cap, overflow
 * at large retry numbers, attempts and deadlines, determinism by seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/rng.h"
#include "resil/backoff.h"

#define MS 1000LL
#define SEC 1000000LL
#define T0 1764112255000000LL

static void test_policy_check(void **state)
{
	backoff_policy p = {.max_attempts = 3, .base_us = 100 * MS, .cap_us = 5 * SEC};
	assert_int_equal(backoff_policy_check(&p), 0);
	p.max_attempts = 0;
	assert_int_equal(backoff_policy_check(&p), ERR_INVALID);
	p.max_attempts = 1;
	p.base_us = -1;
	assert_int_equal(backoff_policy_check(&p), ERR_INVALID);
	p.base_us = 1;
	p.cap_us = -1;
	assert_int_equal(backoff_policy_check(&p), ERR_INVALID);
	assert_int_equal(backoff_policy_check(NULL), ERR_INVALID);
	rng *r = rng_new(1);
	assert_int_equal(backoff_delay_us(NULL, 0, r), 0);
	assert_int_equal(backoff_delay_us(&p, 0, r), 0); /* invalid policy */
	rng_free(r);
}

/* Every draw lies in [0, ceiling], and the draws cover the range: the
 * lowest and highest tenths are both hit, and the mean is near half. */
static void check_spread(const backoff_policy *p, int retry, int64_t ceiling, rng *r)
{
	const int n = 20000;
	int64_t lo = INT64_MAX, hi = -1;
	double sum = 0;
	int low_tenth = 0, high_tenth = 0;
	for (int i = 0; i < n; i++) {
		int64_t d = backoff_delay_us(p, retry, r);
		assert_true(d >= 0);
		assert_true(d <= ceiling);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += (double)d;
		low_tenth += d < ceiling / 10;
		high_tenth += d > ceiling - ceiling / 10;
	}
	double mean = sum / n / (double)ceiling;
	assert_true(mean > 0.48 && mean < 0.52);
	assert_true(low_tenth > n / 20 && low_tenth < n * 3 / 20);
	assert_true(high_tenth > n / 20 && high_tenth < n * 3 / 20);
	assert_true(lo < ceiling / 100);
	assert_true(hi > ceiling - ceiling / 100);
}

static void test_full_jitter_bounds(void **state)
{
	backoff_policy p = {.max_attempts = 10, .base_us = 100 * MS, .cap_us = 5 * SEC};
	rng *r = rng_new(42);
	check_spread(&p, 0, 100 * MS, r);
	check_spread(&p, 1, 200 * MS, r);
	check_spread(&p, 3, 800 * MS, r);
	check_spread(&p, 5, 3200 * MS, r);
	/* 100 ms * 2^6 = 6.4 s > cap: the cap is the ceiling from here on. */
	check_spread(&p, 6, 5 * SEC, r);
	check_spread(&p, 20, 5 * SEC, r);
	/* A negative retry counts as the first. */
	check_spread(&p, -3, 100 * MS, r);
	rng_free(r);
}

static void test_inclusive_and_degenerate(void **state)
{
	rng *r = rng_new(3);
	/* Ceiling 1 us: both 0 and 1 come up (the ceiling is inclusive). */
	backoff_policy p = {.max_attempts = 2, .base_us = 1, .cap_us = 100};
	int seen0 = 0, seen1 = 0;
	for (int i = 0; i < 200; i++) {
		int64_t d = backoff_delay_us(&p, 0, r);
		assert_true(d == 0 || d == 1);
		seen0 |= d == 0;
		seen1 |= d == 1;
	}
	assert_true(seen0 && seen1);
	/* base 0 or cap 0: always 0. */
	p.base_us = 0;
	assert_int_equal(backoff_delay_us(&p, 5, r), 0);
	p.base_us = 100;
	p.cap_us = 0;
	assert_int_equal(backoff_delay_us(&p, 5, r), 0);
	rng_free(r);
}

static void test_no_overflow_at_large_retry(void **state)
{
	rng *r = rng_new(9);
	backoff_policy p = {.max_attempts = 100, .base_us = 100 * MS, .cap_us = 30 * SEC};
	int retries[] = {30, 61, 62, 63, 64, 100, 1000, INT32_MAX};
	for (size_t k = 0; k < sizeof(retries) / sizeof(retries[0]); k++) {
		for (int i = 0; i < 1000; i++) {
			int64_t d = backoff_delay_us(&p, retries[k], r);
			assert_true(d >= 0 && d <= 30 * SEC);
		}
	}
	/* With an unbounded cap, the ceiling saturates at the cap rather than
	 * wrapping: base 1 at retry 62 is 2^62, still below INT64_MAX. */
	p.base_us = 1;
	p.cap_us = INT64_MAX;
	int64_t big = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t d = backoff_delay_us(&p, 62, r);
		assert_true(d >= 0 && d <= (INT64_C(1) << 62));
		big = d > big ? d : big;
	}
	assert_true(big > (INT64_C(1) << 61)); /* it really draws that wide */
	for (int i = 0; i < 1000; i++)
		assert_true(backoff_delay_us(&p, 63, r) >= 0);
	p.base_us = INT64_MAX;
	for (int i = 0; i < 1000; i++)
		assert_true(backoff_delay_us(&p, 62, r) >= 0);
	rng_free(r);
}

static void test_next_attempts(void **state)
{
	rng *r = rng_new(5);
	backoff_policy p = {.max_attempts = 3, .base_us = 100 * MS, .cap_us = 1 * SEC};
	int64_t d = -1;
	/* Three attempts in all: retries 0 and 1, then exhausted. */
	assert_int_equal(backoff_next(&p, 0, T0, BACKOFF_NO_DEADLINE, r, &d), 0);
	assert_true(d >= 0 && d <= 100 * MS);
	assert_int_equal(backoff_next(&p, 1, T0, BACKOFF_NO_DEADLINE, r, &d), 0);
	assert_true(d >= 0 && d <= 200 * MS);
	d = -1;
	assert_int_equal(backoff_next(&p, 2, T0, BACKOFF_NO_DEADLINE, r, &d), ERR_UNAVAILABLE);
	assert_int_equal(d, 0);
	/* max_attempts 1: never retry. */
	p.max_attempts = 1;
	assert_int_equal(backoff_next(&p, 0, T0, BACKOFF_NO_DEADLINE, r, &d), ERR_UNAVAILABLE);
	/* Bad arguments. */
	assert_int_equal(backoff_next(&p, -1, T0, BACKOFF_NO_DEADLINE, r, &d), ERR_INVALID);
	assert_int_equal(backoff_next(&p, 0, T0, BACKOFF_NO_DEADLINE, NULL, &d), ERR_INVALID);
	assert_int_equal(backoff_next(&p, 0, T0, BACKOFF_NO_DEADLINE, r, NULL), ERR_INVALID);
	p.max_attempts = 0;
	assert_int_equal(backoff_next(&p, 0, T0, BACKOFF_NO_DEADLINE, r, &d), ERR_INVALID);
	/* Exhaustion is decided before any draw: the sequence is untouched. */
	rng *a = rng_new(77), *b = rng_new(77);
	p.max_attempts = 2;
	assert_int_equal(backoff_next(&p, 1, T0, BACKOFF_NO_DEADLINE, a, &d), ERR_UNAVAILABLE);
	assert_true(rng_u64(a) == rng_u64(b));
	rng_free(a);
	rng_free(b);
	rng_free(r);
}

static void test_next_deadline(void **state)
{
	rng *r = rng_new(11);
	backoff_policy p = {.max_attempts = 1000, .base_us = 100 * MS, .cap_us = 1 * SEC};
	int64_t d;
	/* Deadline passed or reached: no retry, no draw needed. */
	assert_int_equal(backoff_next(&p, 0, T0, T0, r, &d), ERR_TIMEOUT);
	assert_int_equal(backoff_next(&p, 0, T0, T0 - 1, r, &d), ERR_TIMEOUT);
	/* ...and the past deadline costs no draw. */
	rng *a = rng_new(8), *b = rng_new(8);
	assert_int_equal(backoff_next(&p, 0, T0, T0 - 1, a, &d), ERR_TIMEOUT);
	assert_true(rng_u64(a) == rng_u64(b));
	rng_free(a);
	rng_free(b);
	/* A deadline 1 us away only admits a delay of 0 (now + delay must be
	 * strictly before it): with delays of 0 or 1, both answers come up. */
	backoff_policy tiny = {.max_attempts = 2, .base_us = 1, .cap_us = 1};
	int zero = 0, timeout = 0;
	for (int i = 0; i < 200; i++) {
		int rc = backoff_next(&tiny, 0, T0, T0 + 1, r, &d);
		if (rc == 0) {
			assert_int_equal(d, 0);
			zero++;
		} else {
			assert_int_equal(rc, ERR_TIMEOUT);
			timeout++;
		}
	}
	assert_true(zero > 50 && timeout > 50);
	/* Deadline 50 ms away, ceiling 100 ms: about half the draws fit, and
	 * every accepted one starts strictly before the deadline. */
	int ok = 0, late = 0;
	for (int i = 0; i < 10000; i++) {
		int rc = backoff_next(&p, 0, T0, T0 + 50 * MS, r, &d);
		if (rc == 0) {
			assert_true(T0 + d < T0 + 50 * MS);
			ok++;
		} else {
			assert_int_equal(rc, ERR_TIMEOUT);
			assert_int_equal(d, 0);
			late++;
		}
	}
	assert_true(ok > 4500 && ok < 5500);
	assert_true(late > 4500);
	/* A deadline beyond the ceiling always fits. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(backoff_next(&p, 40, T0, T0 + 1 * SEC + 1, r, &d), 0);
	/* No overflow at the ends of the time range: 1 us of room admits only
	 * a zero delay; deadline - now past INT64_MAX is no limit at all. */
	for (int i = 0; i < 100; i++) {
		int rc = backoff_next(&p, 62, INT64_MAX - 1, BACKOFF_NO_DEADLINE, r, &d);
		assert_true((rc == 0 && d == 0) || rc == ERR_TIMEOUT);
		assert_int_equal(backoff_next(&p, 62, -1, BACKOFF_NO_DEADLINE, r, &d), 0);
	}
	rng_free(r);
}

/* The bound: a million draws, every one within [0, ceiling] and
 * the mean of each retry's draws within 1% of ceiling / 2 (uniform on the
 * integers 0..ceiling). With ~111,000 draws per retry the mean's standard
 * error is about 0.17% of it, so 1% is six of them: a biased generator or
 * an off-by-one ceiling fails, luck does not. */
static void test_million_draws_mean_within_one_percent(void **state)
{
	backoff_policy p = {.max_attempts = 10, .base_us = 100 * MS, .cap_us = 10 * SEC};
	/* Ceilings 100 ms .. 6.4 s, then the cap from retry 7 (12.8 s > 10 s). */
	enum { RETRIES = 9, N = 1000000 };
	double sum[RETRIES] = {0};
	int count[RETRIES] = {0};
	rng *r = rng_new(20261126);
	for (int i = 0; i < N; i++) {
		int retry = i % RETRIES;
		int64_t ceiling = retry >= 7 ? 10 * SEC : (100 * MS) << retry;
		int64_t d = backoff_delay_us(&p, retry, r);
		if (d < 0 || d > ceiling)
			fail_msg("draw %d: retry %d gave %lld outside [0, %lld]", i, retry, (long long)d,
				 (long long)ceiling);
		sum[retry] += (double)d;
		count[retry]++;
	}
	for (int k = 0; k < RETRIES; k++) {
		double ceiling = k >= 7 ? 10.0 * SEC : (double)((100 * MS) << k);
		double mean = sum[k] / count[k], theory = ceiling / 2.0;
		double off = (mean - theory) / theory;
		if (off < -0.01 || off > 0.01)
			fail_msg("retry %d: mean %.1f us vs %.1f us in theory (%.3f%% off)", k, mean, theory,
				 off * 100);
	}
	rng_free(r);
}

/* backoff_next over many draws: every accepted delay lies within the full
 * jitter bound and starts strictly before the deadline. */
static void test_next_within_bounds_and_deadline(void **state)
{
	backoff_policy p = {.max_attempts = 6, .base_us = 50 * MS, .cap_us = 1 * SEC};
	rng *r = rng_new(99);
	int accepted = 0;
	for (int i = 0; i < 200000; i++) {
		int retry = i % 5;
		int64_t now = T0 + (i % 7) * MS;
		int64_t deadline = now + (i % 11) * 40 * MS;
		int64_t d = -1;
		int rc = backoff_next(&p, retry, now, deadline, r, &d);
		int64_t ceiling = (50 * MS) << retry;
		if (ceiling > 1 * SEC)
			ceiling = 1 * SEC;
		if (rc == 0) {
			assert_true(d >= 0 && d <= ceiling);
			assert_true(now + d < deadline);
			accepted++;
		} else {
			assert_int_equal(rc, ERR_TIMEOUT);
			assert_int_equal(d, 0);
		}
	}
	assert_true(accepted > 50000);
	rng_free(r);
}

static void test_deterministic_by_seed(void **state)
{
	backoff_policy p = {.max_attempts = 5, .base_us = 10 * MS, .cap_us = 10 * SEC};
	rng *a = rng_new(2024), *b = rng_new(2024);
	for (int i = 0; i < 100; i++)
		assert_true(backoff_delay_us(&p, i % 12, a) == backoff_delay_us(&p, i % 12, b));
	rng_free(a);
	rng_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_check),
		cmocka_unit_test(test_full_jitter_bounds),
		cmocka_unit_test(test_inclusive_and_degenerate),
		cmocka_unit_test(test_no_overflow_at_large_retry),
		cmocka_unit_test(test_next_attempts),
		cmocka_unit_test(test_next_deadline),
		cmocka_unit_test(test_deterministic_by_seed),
		cmocka_unit_test(test_million_draws_mean_within_one_percent),
		cmocka_unit_test(test_next_within_bounds_and_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
