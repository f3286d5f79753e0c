/* Tests for resil/ratelimit: burst then refill on virtual time, the header
 * figures (remaining, reset, retry-after), costs, key isolation, bounded
 * memory (which bucket is evicted), sweeping, and thread safety. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "resil/ratelimit.h"

#define T0 1764112255000000LL
#define MS 1000LL
#define SEC 1000000LL

static void test_new_validates(void **state)
{
	assert_null(ratelimit_new(0, 5, 10));
	assert_null(ratelimit_new(-1, 5, 10));
	assert_null(ratelimit_new(10, 0.5, 10));
	assert_null(ratelimit_new(10, 5, 0));
	ratelimit *rl = ratelimit_new(10, 5, 10);
	assert_non_null(rl);
	ratelimit_result r;
	assert_int_equal(ratelimit_take(rl, "", T0, 1, &r), ERR_INVALID);
	assert_int_equal(ratelimit_take(rl, NULL, T0, 1, &r), ERR_INVALID);
	assert_int_equal(ratelimit_take(rl, "k", T0, 0, &r), ERR_INVALID);
	assert_int_equal(ratelimit_take(rl, "k", T0, -1, &r), ERR_INVALID);
	assert_int_equal(ratelimit_take(rl, "k", T0, 5.5, &r), ERR_INVALID);
	char key[RATELIMIT_MAX_KEY + 2];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(ratelimit_take(rl, key, T0, 1, &r), ERR_INVALID);
	key[RATELIMIT_MAX_KEY] = '\0';
	assert_int_equal(ratelimit_take(rl, key, T0, 1, &r), 0);
	assert_int_equal(ratelimit_take(rl, "k", T0, 5, NULL), 0); /* out optional */
	assert_int_equal(ratelimit_count(rl), 2);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

static void test_burst_then_refill(void **state)
{
	ratelimit *rl = ratelimit_new(10, 5, 100); /* 10/s: a token per 100 ms */
	ratelimit_result r;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ratelimit_take(rl, "u1|read", T0, 1, &r), 0);
		assert_int_equal(r.allowed, 1);
		assert_int_equal(r.limit, 5);
		assert_int_equal(r.remaining, 4 - i);
		assert_int_equal(r.retry_after_us, 0);
		assert_int_equal(r.retry_after_s, 0);
		assert_int_equal(r.reset_after_us, (i + 1) * 100 * MS);
	}
	assert_int_equal(r.reset_after_s, 1);
	/* Burst spent: denied, with the wait until the next token. */
	assert_int_equal(ratelimit_take(rl, "u1|read", T0, 1, &r), ERR_BUSY);
	assert_int_equal(r.allowed, 0);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(r.retry_after_us, 100 * MS);
	assert_int_equal(r.retry_after_s, 1);
	assert_int_equal(r.reset_after_us, 500 * MS);
	/* One microsecond early is still too early, by exactly that. */
	assert_int_equal(ratelimit_take(rl, "u1|read", T0 + 100 * MS - 1, 1, &r), ERR_BUSY);
	assert_int_equal(r.retry_after_us, 1);
	assert_int_equal(r.retry_after_s, 1);
	/* On time: allowed, the token used at once. */
	assert_int_equal(ratelimit_take(rl, "u1|read", T0 + 100 * MS, 1, &r), 0);
	assert_int_equal(r.remaining, 0);
	/* Half a second later the bucket is full again, but never fuller. */
	int64_t t = T0 + 100 * MS + 10 * SEC;
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(rl, "u1|read", t, 1, &r), 0);
	assert_int_equal(ratelimit_take(rl, "u1|read", t, 1, &r), ERR_BUSY);
	ratelimit_free(rl);
}

static void test_retry_after_exact(void **state)
{
	ratelimit_result r;
	/* A slow rate: 0.5/s, burst 2. */
	ratelimit *rl = ratelimit_new(0.5, 2, 10);
	assert_int_equal(ratelimit_take(rl, "k", T0, 2, &r), 0);
	assert_int_equal(r.reset_after_us, 4 * SEC);
	assert_int_equal(r.reset_after_s, 4);
	assert_int_equal(ratelimit_take(rl, "k", T0, 1, &r), ERR_BUSY);
	assert_int_equal(r.retry_after_us, 2 * SEC);
	assert_int_equal(r.retry_after_s, 2);
	/* A denied take costs nothing: one second in, half a token is there
	 * and the next one needs one more second. */
	assert_int_equal(ratelimit_take(rl, "k", T0 + 1 * SEC, 1, &r), ERR_BUSY);
	assert_int_equal(r.retry_after_us, 1 * SEC);
	assert_int_equal(ratelimit_take(rl, "k", T0 + 2 * SEC, 1, &r), 0);
	ratelimit_free(rl);

	/* A rate that does not divide a second: 3/s. One token takes
	 * 333333.3 us, advertised rounded up, and honoured at that time. */
	rl = ratelimit_new(3, 3, 10);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "k", T0, 1, &r), 0);
	assert_int_equal(ratelimit_take(rl, "k", T0, 1, &r), ERR_BUSY);
	assert_int_equal(r.retry_after_us, 333334);
	assert_int_equal(r.retry_after_s, 1);
	assert_int_equal(ratelimit_take(rl, "k", T0 + 333333, 1, &r), ERR_BUSY);
	assert_int_equal(ratelimit_take(rl, "k", T0 + 333334, 1, &r), 0);
	ratelimit_free(rl);

	/* A bigger cost waits for all of it. */
	rl = ratelimit_new(10, 10, 10);
	assert_int_equal(ratelimit_take(rl, "k", T0, 8, &r), 0);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(ratelimit_take(rl, "k", T0, 5, &r), ERR_BUSY);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(r.retry_after_us, 300 * MS);
	assert_int_equal(ratelimit_take(rl, "k", T0 + 300 * MS, 5, &r), 0);
	assert_int_equal(r.remaining, 0);
	/* A long wait: Retry-After is whole seconds, rounded up. */
	ratelimit_free(rl);
	rl = ratelimit_new(0.1, 1, 10);
	assert_int_equal(ratelimit_take(rl, "k", T0, 1, &r), 0);
	assert_int_equal(ratelimit_take(rl, "k", T0 + 500 * MS, 1, &r), ERR_BUSY);
	assert_int_equal(r.retry_after_us, 9500 * MS);
	assert_int_equal(r.retry_after_s, 10);
	ratelimit_free(rl);
}

/* The advertised wait is both honoured and the earliest, whatever path of
 * partial refills led there (token levels are doubles, so this is where
 * rounding would show): after random denied takes, one microsecond before
 * retry_after is denied and retry_after itself is allowed. */
static void test_retry_after_honoured_and_minimal(void **state)
{
	static const double rates[] = {0.01, 0.1, 0.3, 0.7, 1, 2, 3, 4, 7, 13, 33.3, 100, 1000};
	unsigned seed = 12345;
	int checked = 0;
	for (int trial = 0; trial < 20000; trial++) {
		double rate = rates[rand_r(&seed) % (sizeof(rates) / sizeof(rates[0]))];
		ratelimit *rl = ratelimit_new(rate, 5, 4);
		ratelimit_result r;
		assert_int_equal(ratelimit_take(rl, "k", T0, 5, &r), 0);
		int64_t t = T0;
		int steps = 1 + rand_r(&seed) % 6, denied = 1;
		for (int i = 0; i < steps && denied; i++) {
			t += 1 + rand_r(&seed) % 50000;
			denied = ratelimit_take(rl, "k", t, 1, &r) == ERR_BUSY;
		}
		if (denied) {
			int64_t wait = r.retry_after_us;
			assert_true(wait >= 1);
			if (wait > 1)
				assert_int_equal(ratelimit_take(rl, "k", t + wait - 1, 1, &r), ERR_BUSY);
			assert_int_equal(ratelimit_take(rl, "k", t + wait, 1, &r), 0);
			checked++;
		}
		ratelimit_free(rl);
	}
	assert_true(checked > 10000);
}

static void test_time_going_back(void **state)
{
	ratelimit *rl = ratelimit_new(10, 2, 10);
	ratelimit_result r;
	assert_int_equal(ratelimit_take(rl, "k", T0 + 1 * SEC, 2, &r), 0);
	/* An earlier now (another thread's older reading) refills nothing. */
	assert_int_equal(ratelimit_take(rl, "k", T0, 1, &r), ERR_BUSY);
	assert_int_equal(r.retry_after_us, 100 * MS);
	/* and does not move the bucket's time back either. */
	assert_int_equal(ratelimit_take(rl, "k", T0 + 1 * SEC + 100 * MS, 1, &r), 0);
	ratelimit_free(rl);
}

static void test_key_isolation(void **state)
{
	ratelimit *rl = ratelimit_new(1, 3, 10);
	ratelimit_result r;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "user:1|checkout", T0, 1, &r), 0);
	assert_int_equal(ratelimit_take(rl, "user:1|checkout", T0, 1, &r), ERR_BUSY);
	/* Other callers, and the same caller on another route class, are
	 * untouched; so is a key that is a prefix. */
	assert_int_equal(ratelimit_take(rl, "user:2|checkout", T0, 1, &r), 0);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(ratelimit_take(rl, "user:1|read", T0, 1, &r), 0);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(ratelimit_take(rl, "user:1|checkou", T0, 1, &r), 0);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(ratelimit_count(rl), 4);
	ratelimit_free(rl);
}

static void test_eviction_bound(void **state)
{
	ratelimit_result r;
	/* Many keys through a small limiter: never more than max_keys. */
	ratelimit *rl = ratelimit_new(10, 5, 8);
	char key[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "caller-%d", i);
		assert_int_equal(ratelimit_take(rl, key, T0 + i, 1, &r), 0);
		assert_true(ratelimit_count(rl) <= 8);
	}
	assert_int_equal(ratelimit_count(rl), 8);
	assert_int_equal(ratelimit_evictions(rl), 1000 - 8);
	ratelimit_free(rl);

	/* Without a full bucket, the least recently used goes. */
	rl = ratelimit_new(10, 5, 3);
	assert_int_equal(ratelimit_take(rl, "a", T0, 2, &r), 0);
	assert_int_equal(ratelimit_take(rl, "b", T0, 2, &r), 0);
	assert_int_equal(ratelimit_take(rl, "c", T0, 2, &r), 0);
	assert_int_equal(ratelimit_take(rl, "a", T0, 2, &r), 0); /* a is recent now */
	assert_int_equal(ratelimit_take(rl, "d", T0, 2, &r), 0); /* evicts b */
	assert_int_equal(ratelimit_evictions(rl), 1);
	/* a and c kept their levels: a has 1 left, c has 3. */
	assert_int_equal(ratelimit_take(rl, "a", T0, 1, &r), 0);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(ratelimit_take(rl, "c", T0, 1, &r), 0);
	assert_int_equal(r.remaining, 2);
	/* b was forgotten: it comes back with a full burst (evicting d). */
	assert_int_equal(ratelimit_take(rl, "b", T0, 1, &r), 0);
	assert_int_equal(r.remaining, 4);
	assert_int_equal(ratelimit_count(rl), 3);
	ratelimit_free(rl);

	/* A full (idle, refilled) bucket goes before an older one that is not. */
	rl = ratelimit_new(10, 5, 3);
	assert_int_equal(ratelimit_take(rl, "a", T0, 5, &r), 0);            /* full at +500 ms */
	assert_int_equal(ratelimit_take(rl, "b", T0 + 10 * MS, 1, &r), 0);  /* full at +110 ms */
	assert_int_equal(ratelimit_take(rl, "c", T0 + 200 * MS, 5, &r), 0); /* full at +700 ms */
	assert_int_equal(ratelimit_take(rl, "d", T0 + 300 * MS, 1, &r), 0); /* evicts b */
	/* a (the oldest) was kept: 3 tokens by now, 2 after this take. */
	assert_int_equal(ratelimit_take(rl, "a", T0 + 300 * MS, 1, &r), 0);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(ratelimit_take(rl, "c", T0 + 300 * MS, 1, &r), 0);
	assert_int_equal(r.remaining, 0);
	assert_int_equal(ratelimit_count(rl), 3);
	ratelimit_free(rl);
}

static void test_sweep(void **state)
{
	ratelimit *rl = ratelimit_new(10, 5, 100);
	ratelimit_result r;
	assert_int_equal(ratelimit_take(rl, "a", T0, 1, &r), 0); /* full at +100 ms */
	assert_int_equal(ratelimit_take(rl, "b", T0, 5, &r), 0); /* full at +500 ms */
	assert_int_equal(ratelimit_take(rl, "c", T0, 3, &r), 0); /* full at +300 ms */
	assert_int_equal(ratelimit_sweep(rl, T0 + 99 * MS), 0);
	assert_int_equal(ratelimit_sweep(rl, T0 + 300 * MS), 2);
	assert_int_equal(ratelimit_count(rl), 1);
	/* b kept its level: 3 tokens at +300 ms. */
	assert_int_equal(ratelimit_take(rl, "b", T0 + 300 * MS, 1, &r), 0);
	assert_int_equal(r.remaining, 2);
	assert_int_equal(ratelimit_sweep(rl, T0 + 10 * SEC), 1);
	assert_int_equal(ratelimit_count(rl), 0);
	assert_int_equal(ratelimit_evictions(rl), 0);
	/* Still usable after everything was swept. */
	assert_int_equal(ratelimit_take(rl, "a", T0 + 10 * SEC, 1, &r), 0);
	assert_int_equal(r.remaining, 4);
	ratelimit_free(rl);
}

typedef struct shared {
	ratelimit *rl;
	atomic_int allowed;
} shared;

static void *taker(void *arg)
{
	shared *sh = arg;
	char key[16];
	for (int i = 0; i < 2000; i++) {
		if (ratelimit_take(sh->rl, "hot", T0, 1, NULL) == 0)
			atomic_fetch_add(&sh->allowed, 1);
		snprintf(key, sizeof(key), "cold-%d", i % 300);
		ratelimit_take(sh->rl, key, T0 + i, 1, NULL);
	}
	return NULL;
}

static void test_threads(void **state)
{
	shared sh;
	sh.rl = ratelimit_new(1, 100, 64);
	atomic_init(&sh.allowed, 0);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, taker, &sh), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* At a frozen time the hot key hands out its burst exactly once,
	 * whatever eviction did to it: at most 100 per life of the bucket. */
	assert_true(atomic_load(&sh.allowed) >= 100);
	assert_true(ratelimit_count(sh.rl) <= 64);
	ratelimit_free(sh.rl);

	/* Without eviction pressure: exactly the burst. */
	sh.rl = ratelimit_new(1, 100, 1000);
	atomic_init(&sh.allowed, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, taker, &sh), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&sh.allowed), 100);
	ratelimit_free(sh.rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_validates),
		cmocka_unit_test(test_burst_then_refill),
		cmocka_unit_test(test_retry_after_exact),
		cmocka_unit_test(test_retry_after_honoured_and_minimal),
		cmocka_unit_test(test_time_going_back),
		cmocka_unit_test(test_key_isolation),
		cmocka_unit_test(test_eviction_bound),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
