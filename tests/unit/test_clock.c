/* Unit tests for the clock's host-side helpers: clock_deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "core/clock.h"

static int64_t ts_us(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000 + ts->tv_nsec / 1000;
}

/* The deadline lies after_us past the clock's now, whatever the carry into
 * seconds, and its nanoseconds stay below one second. */
static void test_deadline(void **state)
{
	(void)state;
	static const int64_t afters[] = { 0, 1, 200, 999999, 1000000, 1500000, 2999999, 30000000 };
	static const clockid_t ids[] = { CLOCK_MONOTONIC, CLOCK_REALTIME };
	for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
		for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
			struct timespec before, dl, after;
			clock_gettime(ids[k], &before);
			clock_deadline(&dl, ids[k], afters[i]);
			clock_gettime(ids[k], &after);
			assert_true(dl.tv_nsec >= 0 && dl.tv_nsec < 1000000000L);
			assert_true(ts_us(&dl) >= ts_us(&before) + afters[i]);
			assert_true(ts_us(&dl) <= ts_us(&after) + afters[i]);
		}
}

/* A negative wait is no wait: the deadline is now. */
static void test_deadline_negative(void **state)
{
	(void)state;
	struct timespec before, dl, after;
	clock_gettime(CLOCK_MONOTONIC, &before);
	clock_deadline(&dl, CLOCK_MONOTONIC, -5000000);
	clock_gettime(CLOCK_MONOTONIC, &after);
	assert_true(ts_us(&dl) >= ts_us(&before));
	assert_true(ts_us(&dl) <= ts_us(&after));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_deadline_negative),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
