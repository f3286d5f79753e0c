/* Tests for resil/bulkhead: the bound, immediate refusal, counters, an
 * unbalanced leave, resizing, and the bound held under threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>

#include "core/err.h"
#include "resil/bulkhead.h"

static void test_bound_and_counters(void **state)
{
	assert_null(bulkhead_new("x", 0));
	assert_null(bulkhead_new(NULL, 1));
	bulkhead *bh = bulkhead_new("payment", 2);
	assert_non_null(bh);
	assert_string_equal(bulkhead_name(bh), "payment");
	assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY);
	bulkhead_stats st;
	bulkhead_snapshot(bh, &st);
	assert_int_equal(st.max_concurrent, 2);
	assert_int_equal(st.in_flight, 2);
	assert_int_equal(st.admitted, 2);
	assert_int_equal(st.rejected, 2);
	/* A leave frees exactly one slot. */
	assert_int_equal(bulkhead_leave(bh), 0);
	assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY);
	assert_int_equal(bulkhead_leave(bh), 0);
	assert_int_equal(bulkhead_leave(bh), 0);
	/* Unbalanced: refused, and the count does not go negative. */
	assert_int_equal(bulkhead_leave(bh), ERR_STATE);
	bulkhead_snapshot(bh, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.admitted, 3);
	assert_int_equal(st.rejected, 3);
	assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY);
	bulkhead_free(bh);
	bulkhead_free(NULL);
}

static void test_set_max(void **state)
{
	bulkhead *bh = bulkhead_new("catalog", 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_set_max(bh, 0), ERR_INVALID);
	/* Shrinking keeps the calls in flight and admits none until below. */
	assert_int_equal(bulkhead_set_max(bh, 1), 0);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY);
	assert_int_equal(bulkhead_leave(bh), 0);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY); /* 2 in flight, max 1 */
	assert_int_equal(bulkhead_leave(bh), 0);
	assert_int_equal(bulkhead_leave(bh), 0);
	assert_int_equal(bulkhead_enter(bh), 0);
	/* Growing admits more at once. */
	assert_int_equal(bulkhead_set_max(bh, 4), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bulkhead_enter(bh), 0);
	assert_int_equal(bulkhead_enter(bh), ERR_BUSY);
	bulkhead_stats st;
	bulkhead_snapshot(bh, &st);
	assert_int_equal(st.max_concurrent, 4);
	assert_int_equal(st.in_flight, 4);
	bulkhead_free(bh);
}

typedef struct shared {
	bulkhead *bh;
	atomic_int inside;
	atomic_int peak;
	atomic_int ok;
	atomic_int busy;
} shared;

static void *worker(void *arg)
{
	shared *sh = arg;
	for (int i = 0; i < 5000; i++) {
		if (bulkhead_enter(sh->bh) != 0) {
			atomic_fetch_add(&sh->busy, 1);
			continue;
		}
		int now = atomic_fetch_add(&sh->inside, 1) + 1;
		int peak = atomic_load(&sh->peak);
		while (now > peak && !atomic_compare_exchange_weak(&sh->peak, &peak, now))
			;
		sched_yield();
		atomic_fetch_sub(&sh->inside, 1);
		atomic_fetch_add(&sh->ok, 1);
		bulkhead_leave(sh->bh);
	}
	return NULL;
}

static void test_threads_never_exceed(void **state)
{
	shared sh = {.bh = bulkhead_new("inventory", 3)};
	atomic_init(&sh.inside, 0);
	atomic_init(&sh.peak, 0);
	atomic_init(&sh.ok, 0);
	atomic_init(&sh.busy, 0);
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&sh.peak) <= 3);
	assert_true(atomic_load(&sh.peak) >= 1);
	bulkhead_stats st;
	bulkhead_snapshot(sh.bh, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.admitted, atomic_load(&sh.ok));
	assert_int_equal(st.rejected, atomic_load(&sh.busy));
	assert_int_equal(st.admitted + st.rejected, 8 * 5000);
	bulkhead_free(sh.bh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound_and_counters),
		cmocka_unit_test(test_set_max),
		cmocka_unit_test(test_threads_never_exceed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
