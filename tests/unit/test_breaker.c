/* Tests for resil/breaker: resilience4j semantics on virtual time — the
 * minimum-calls rule, exact thresholds, the sliding window, slow calls, the
 * wait in OPEN, half-open admission and verdicts, operator states, the
 * transition table, the hook and log line, and thread safety. */
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

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "resil/breaker.h"

#define T0 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define MS 1000LL
#define SEC 1000000LL

static breaker_config small_cfg(void)
{
	breaker_config c;
	breaker_config_default(&c);
	c.sliding_window_size = 10;
	c.minimum_calls = 10;
	c.failure_rate_threshold = 50;
	c.permitted_calls_in_half_open = 3;
	c.wait_in_open_us = 5 * SEC;
	return c;
}

static int state_of(breaker *b, int64_t now)
{
	breaker_stats st;
	breaker_snapshot(b, now, &st);
	return st.state;
}

/* Permitted call that succeeds (fast) or fails. */
static void call(breaker *b, int64_t now, int failed)
{
	assert_int_equal(breaker_acquire(b, now), 0);
	breaker_record(b, now, 10 * MS, failed);
}

/* Drives a fresh small_cfg breaker to OPEN at time t. */
static void open_at(breaker *b, int64_t t)
{
	for (int i = 0; i < 10; i++)
		call(b, t, 1);
	assert_int_equal(state_of(b, t), BREAKER_OPEN);
}

static void test_defaults_and_config(void **state)
{
	breaker_config c;
	breaker_config_default(&c);
	assert_int_equal(c.sliding_window_size, 20);
	assert_int_equal(c.minimum_calls, 10);
	assert_true(c.failure_rate_threshold == 50.0);
	assert_true(c.slow_call_rate_threshold == 100.0);
	assert_int_equal(c.slow_call_duration_us, 2 * SEC);
	assert_int_equal(c.wait_in_open_us, 5 * SEC);
	assert_int_equal(c.permitted_calls_in_half_open, 3);
	assert_int_equal(breaker_config_check(&c), 0);

	breaker_config bad = c;
	bad.sliding_window_size = 0;
	assert_int_equal(breaker_config_check(&bad), ERR_INVALID);
	bad = c;
	bad.minimum_calls = 0;
	assert_int_equal(breaker_config_check(&bad), ERR_INVALID);
	bad = c;
	bad.failure_rate_threshold = 0;
	assert_int_equal(breaker_config_check(&bad), ERR_INVALID);
	bad = c;
	bad.slow_call_rate_threshold = 100.5;
	assert_int_equal(breaker_config_check(&bad), ERR_INVALID);
	bad = c;
	bad.permitted_calls_in_half_open = 0;
	assert_int_equal(breaker_config_check(&bad), ERR_INVALID);
	bad = c;
	bad.wait_in_open_us = -1;
	assert_int_equal(breaker_config_check(&bad), ERR_INVALID);
	assert_null(breaker_new("a", "b", &bad, NULL));
	assert_null(breaker_new(NULL, "b", NULL, NULL));

	breaker *b = breaker_new("gateway", "catalog", NULL, NULL);
	assert_non_null(b);
	assert_string_equal(breaker_from(b), "gateway");
	assert_string_equal(breaker_to(b), "catalog");
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_int_equal(st.calls, 0);
	assert_true(st.failure_rate == -1.0);
	assert_true(st.slow_call_rate == -1.0);
	breaker_free(b);
	breaker_free(NULL);

	assert_string_equal(breaker_state_name(BREAKER_CLOSED), "CLOSED");
	assert_string_equal(breaker_state_name(BREAKER_OPEN), "OPEN");
	assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "HALF_OPEN");
	assert_string_equal(breaker_state_name(BREAKER_FORCED_OPEN), "FORCED_OPEN");
	assert_string_equal(breaker_state_name(BREAKER_DISABLED), "DISABLED");
	assert_string_equal(breaker_state_name(-1), "UNKNOWN");
	assert_string_equal(breaker_state_name(BREAKER_NSTATES), "UNKNOWN");
}

static void test_no_rate_before_minimum_calls(void **state)
{
	breaker_config c = small_cfg();
	c.sliding_window_size = 20;
	breaker *b = breaker_new("a", "b", &c, NULL);
	/* Nine failures out of nine: 100%, but below the minimum. */
	for (int i = 0; i < 9; i++)
		call(b, T0, 1);
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_int_equal(st.calls, 9);
	assert_int_equal(st.failed_calls, 9);
	assert_true(st.failure_rate == -1.0);
	assert_true(st.slow_call_rate == -1.0);
	/* The tenth makes the rate computable and trips. */
	call(b, T0, 1);
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_OPEN);
	assert_true(st.failure_rate == 100.0);
	assert_int_equal(st.calls, 10); /* the window that tripped it stays */
	assert_int_equal(st.transitions, 1);
	breaker_free(b);

	/* minimum_calls above the window is capped at the window (r4j). */
	c = small_cfg();
	c.sliding_window_size = 4;
	c.minimum_calls = 100;
	b = breaker_new("a", "b", &c, NULL);
	for (int i = 0; i < 3; i++)
		call(b, T0, 1);
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	call(b, T0, 1);
	assert_int_equal(state_of(b, T0), BREAKER_OPEN);
	breaker_free(b);
}

static void test_exactly_at_threshold_trips(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	for (int i = 0; i < 5; i++)
		call(b, T0, 0);
	for (int i = 0; i < 4; i++)
		call(b, T0, 1);
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	call(b, T0, 1); /* 5 of 10 = 50% >= 50% */
	assert_int_equal(state_of(b, T0), BREAKER_OPEN);
	breaker_free(b);

	/* One below: 4 of 10 = 40% stays closed, with the rate visible. */
	b = breaker_new("a", "b", &c, NULL);
	for (int i = 0; i < 6; i++)
		call(b, T0, 0);
	for (int i = 0; i < 4; i++)
		call(b, T0, 1);
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_true(st.failure_rate == 40.0);
	assert_true(st.slow_call_rate == 0.0);
	breaker_free(b);

	/* A threshold that is not a whole percentage of the window: 1/3 is
	 * 33.33..% < 34% and >= 33%. */
	c.sliding_window_size = 3;
	c.minimum_calls = 3;
	c.failure_rate_threshold = 34;
	b = breaker_new("a", "b", &c, NULL);
	call(b, T0, 1);
	call(b, T0, 0);
	call(b, T0, 0);
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	breaker_free(b);
	c.failure_rate_threshold = 33;
	b = breaker_new("a", "b", &c, NULL);
	call(b, T0, 1);
	call(b, T0, 0);
	call(b, T0, 0);
	assert_int_equal(state_of(b, T0), BREAKER_OPEN);
	breaker_free(b);
}

static void test_window_slides(void **state)
{
	breaker_config c = small_cfg();
	c.sliding_window_size = 4;
	c.minimum_calls = 4;
	breaker *b = breaker_new("a", "b", &c, NULL);
	call(b, T0, 1);
	call(b, T0, 0);
	call(b, T0, 0);
	call(b, T0, 0);
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_true(st.failure_rate == 25.0);
	call(b, T0, 0); /* the failure slides out */
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.calls, 4);
	assert_int_equal(st.failed_calls, 0);
	assert_true(st.failure_rate == 0.0);
	call(b, T0, 1);
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED); /* 1 of 4 */
	call(b, T0, 1);                                    /* 2 of 4 */
	assert_int_equal(state_of(b, T0), BREAKER_OPEN);
	breaker_free(b);
}

static void test_slow_calls(void **state)
{
	breaker_config c = small_cfg();
	c.sliding_window_size = 4;
	c.minimum_calls = 4;
	c.slow_call_rate_threshold = 50;
	c.slow_call_duration_us = 100 * MS;
	breaker *b = breaker_new("a", "b", &c, NULL);
	/* Exactly the threshold duration is not slow; one microsecond more is. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(breaker_acquire(b, T0), 0);
		breaker_record(b, T0, 100 * MS, 0);
	}
	assert_int_equal(breaker_acquire(b, T0), 0);
	breaker_record(b, T0, 100 * MS + 1, 0);
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_int_equal(st.slow_calls, 1);
	assert_true(st.slow_call_rate == 25.0);
	assert_true(st.failure_rate == 0.0);
	/* A slow failure counts as both slow and failed. */
	assert_int_equal(breaker_acquire(b, T0), 0);
	breaker_record(b, T0, 5 * SEC, 1);
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_OPEN); /* 2 of 4 slow = 50% */
	assert_int_equal(st.slow_calls, 2);
	assert_int_equal(st.failed_calls, 1);
	breaker_free(b);

	/* Defaults: slow threshold 100% and 2 s: only an all-slow window trips. */
	b = breaker_new("a", "b", NULL, NULL);
	assert_int_equal(breaker_acquire(b, T0), 0);
	breaker_record(b, T0, 1 * SEC, 0);
	for (int i = 0; i < 9; i++) {
		assert_int_equal(breaker_acquire(b, T0), 0);
		breaker_record(b, T0, 3 * SEC, 0);
	}
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(breaker_acquire(b, T0), 0);
		breaker_record(b, T0, 3 * SEC, 0);
	}
	/* Window of 20 holds 19 slow + 1 fast: still below 100%. */
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	assert_int_equal(breaker_acquire(b, T0), 0);
	breaker_record(b, T0, 3 * SEC, 0); /* the fast one slides out */
	assert_int_equal(state_of(b, T0), BREAKER_OPEN);
	breaker_free(b);
}

static void test_wait_in_open(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	breaker_stats st;
	assert_int_equal(breaker_acquire(b, T0), ERR_UNAVAILABLE);
	assert_int_equal(breaker_acquire(b, T0 + 5 * SEC - 1), ERR_UNAVAILABLE);
	breaker_snapshot(b, T0 + 5 * SEC - 1, &st);
	assert_int_equal(st.state, BREAKER_OPEN);
	assert_int_equal(st.open_remaining_us, 1);
	assert_int_equal(st.not_permitted, 2);
	/* Lazy: past the wait, a snapshot still reads OPEN (remaining 0)... */
	breaker_snapshot(b, T0 + 6 * SEC, &st);
	assert_int_equal(st.state, BREAKER_OPEN);
	assert_int_equal(st.open_remaining_us, 0);
	/* ...and the first acquire at exactly the wait moves to HALF_OPEN. */
	assert_int_equal(breaker_acquire(b, T0 + 5 * SEC), 0);
	breaker_snapshot(b, T0 + 5 * SEC, &st);
	assert_int_equal(st.state, BREAKER_HALF_OPEN);
	assert_int_equal(st.open_remaining_us, 0);
	assert_int_equal(st.calls, 0); /* probes start a fresh window */
	assert_int_equal(st.transitions, 2);
	breaker_free(b);
}

static void test_half_open_admits_exactly_n_then_closes(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	int64_t t = T0 + 5 * SEC;
	breaker_stats st;
	breaker_snapshot(b, t, &st);
	int64_t rejected = st.not_permitted;
	for (int i = 0; i < 3; i++)
		assert_int_equal(breaker_acquire(b, t), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(breaker_acquire(b, t), ERR_UNAVAILABLE);
	breaker_snapshot(b, t, &st);
	assert_int_equal(st.not_permitted, rejected + 5);
	/* Two of three back: still deciding, and still no room. */
	breaker_record(b, t, 10 * MS, 0);
	breaker_record(b, t, 10 * MS, 0);
	breaker_snapshot(b, t, &st);
	assert_int_equal(st.state, BREAKER_HALF_OPEN);
	assert_int_equal(st.calls, 2);
	assert_true(st.failure_rate == -1.0);
	assert_int_equal(breaker_acquire(b, t), ERR_UNAVAILABLE);
	/* The third success closes, with an empty window. */
	breaker_record(b, t, 10 * MS, 0);
	breaker_snapshot(b, t, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_int_equal(st.calls, 0);
	assert_true(st.failure_rate == -1.0);
	assert_int_equal(breaker_acquire(b, t), 0);
	breaker_free(b);
}

static void test_half_open_failures_reopen(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	int64_t t = T0 + 5 * SEC;
	for (int i = 0; i < 3; i++)
		assert_int_equal(breaker_acquire(b, t), 0);
	breaker_record(b, t, 10 * MS, 0);
	breaker_record(b, t, 10 * MS, 1);
	assert_int_equal(state_of(b, t), BREAKER_HALF_OPEN);
	int64_t t2 = t + 200 * MS;
	breaker_record(b, t2, 10 * MS, 1); /* 2 of 3 >= 50% */
	breaker_stats st;
	breaker_snapshot(b, t2, &st);
	assert_int_equal(st.state, BREAKER_OPEN);
	assert_true(st.failure_rate > 66.6 && st.failure_rate < 66.7);
	/* The wait restarts from the reopening. */
	assert_int_equal(st.open_remaining_us, 5 * SEC);
	assert_int_equal(breaker_acquire(b, t2 + 5 * SEC - 1), ERR_UNAVAILABLE);
	assert_int_equal(breaker_acquire(b, t2 + 5 * SEC), 0);
	assert_int_equal(state_of(b, t2 + 5 * SEC), BREAKER_HALF_OPEN);
	breaker_free(b);

	/* One failure out of two probes is 50%: reopens. One out of three
	 * (33%) closes. */
	c.permitted_calls_in_half_open = 2;
	b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	call(b, t, 0);
	call(b, t, 1);
	assert_int_equal(state_of(b, t), BREAKER_OPEN);
	breaker_free(b);
	c.permitted_calls_in_half_open = 3;
	b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	call(b, t, 1);
	call(b, t, 0);
	call(b, t, 0);
	assert_int_equal(state_of(b, t), BREAKER_CLOSED);
	breaker_free(b);

	/* Slow probes reopen too. */
	c.slow_call_rate_threshold = 50;
	c.slow_call_duration_us = 1 * SEC;
	b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(breaker_acquire(b, t), 0);
		breaker_record(b, t, i == 0 ? 10 * MS : 2 * SEC, 0);
	}
	assert_int_equal(state_of(b, t), BREAKER_OPEN);
	breaker_free(b);
}

static void test_release_and_stale_records(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	int64_t t = T0 + 5 * SEC;
	/* Records while OPEN are ignored. */
	breaker_record(b, T0 + 1, 10 * MS, 0);
	breaker_stats st;
	breaker_snapshot(b, T0 + 1, &st);
	assert_int_equal(st.calls, 10);
	assert_int_equal(st.failed_calls, 10);

	for (int i = 0; i < 3; i++)
		assert_int_equal(breaker_acquire(b, t), 0);
	assert_int_equal(breaker_acquire(b, t), ERR_UNAVAILABLE);
	/* A probe that was never sent gives its slot back. */
	breaker_release(b);
	assert_int_equal(breaker_acquire(b, t), 0);
	assert_int_equal(breaker_acquire(b, t), ERR_UNAVAILABLE);
	for (int i = 0; i < 3; i++)
		breaker_record(b, t, 10 * MS, 0);
	assert_int_equal(state_of(b, t), BREAKER_CLOSED);
	breaker_release(b); /* CLOSED: nothing to do */
	breaker_free(b);

	/* Entering HALF_OPEN directly: nothing admitted yet, so a report
	 * (from a call made before the breaker opened) is not a probe. */
	b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	assert_int_equal(breaker_set_state(b, T0, BREAKER_HALF_OPEN), 0);
	breaker_record(b, T0, 10 * MS, 1);
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_HALF_OPEN);
	assert_int_equal(st.calls, 0);
	breaker_free(b);
}

static void test_forced_open_rejects_everything(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	call(b, T0, 0);
	assert_int_equal(breaker_trip(b, T0), 0);
	assert_int_equal(breaker_trip(b, T0), 0); /* idempotent */
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_FORCED_OPEN);
	assert_int_equal(st.transitions, 1);
	assert_int_equal(st.calls, 0);
	/* No wait ever ends it. */
	for (int64_t t = T0; t < T0 + 3600 * SEC; t += 60 * SEC)
		assert_int_equal(breaker_acquire(b, t), ERR_UNAVAILABLE);
	breaker_record(b, T0, 10 * MS, 1);
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_FORCED_OPEN);
	assert_int_equal(st.calls, 0);
	assert_int_equal(st.not_permitted, 60);
	assert_int_equal(st.open_remaining_us, 0);
	assert_int_equal(breaker_reset(b, T0), 0);
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	assert_int_equal(breaker_acquire(b, T0), 0);
	breaker_free(b);
}

static void test_disabled_permits_everything(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	open_at(b, T0);
	assert_int_equal(breaker_disable(b, T0), 0);
	assert_int_equal(breaker_disable(b, T0), 0);
	for (int i = 0; i < 100; i++)
		call(b, T0, 1);
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_DISABLED);
	assert_int_equal(st.calls, 0);
	assert_true(st.failure_rate == -1.0);
	assert_int_equal(st.transitions, 2);
	/* Reset brings back a CLOSED breaker with an empty window. */
	assert_int_equal(breaker_reset(b, T0), 0);
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_int_equal(st.calls, 0);
	breaker_free(b);
}

static void test_reset_clears_window(void **state)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	for (int i = 0; i < 9; i++)
		call(b, T0, 1);
	assert_int_equal(breaker_reset(b, T0), 0); /* already CLOSED: window cleared */
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.calls, 0);
	assert_int_equal(st.transitions, 0);
	call(b, T0, 1); /* would have been the tenth failure */
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	/* Reset from OPEN. */
	for (int i = 0; i < 9; i++)
		call(b, T0, 1);
	assert_int_equal(state_of(b, T0), BREAKER_OPEN);
	assert_int_equal(breaker_reset(b, T0), 0);
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.state, BREAKER_CLOSED);
	assert_int_equal(st.calls, 0);
	breaker_free(b);
}

/* Puts a fresh breaker into state s through legal moves. */
static breaker *breaker_in(int s)
{
	breaker_config c = small_cfg();
	breaker *b = breaker_new("a", "b", &c, NULL);
	if (s == BREAKER_OPEN || s == BREAKER_HALF_OPEN)
		assert_int_equal(breaker_set_state(b, T0, BREAKER_OPEN), 0);
	if (s == BREAKER_HALF_OPEN)
		assert_int_equal(breaker_set_state(b, T0, BREAKER_HALF_OPEN), 0);
	if (s == BREAKER_FORCED_OPEN)
		assert_int_equal(breaker_trip(b, T0), 0);
	if (s == BREAKER_DISABLED)
		assert_int_equal(breaker_disable(b, T0), 0);
	assert_int_equal(state_of(b, T0), s);
	return b;
}

static void test_transition_table(void **state)
{
	enum { C = BREAKER_CLOSED, O = BREAKER_OPEN, H = BREAKER_HALF_OPEN,
	       F = BREAKER_FORCED_OPEN, D = BREAKER_DISABLED };
	/* ok[from][to] */
	static const int ok[5][5] = {
		[C] = {[O] = 1, [F] = 1, [D] = 1},
		[O] = {[H] = 1, [C] = 1, [F] = 1, [D] = 1},
		[H] = {[O] = 1, [C] = 1, [F] = 1, [D] = 1},
		[F] = {[C] = 1, [D] = 1},
		[D] = {[C] = 1, [F] = 1},
	};
	for (int from = 0; from < BREAKER_NSTATES; from++) {
		for (int to = 0; to < BREAKER_NSTATES; to++) {
			breaker *b = breaker_in(from);
			breaker_stats before, after;
			breaker_snapshot(b, T0, &before);
			int rc = breaker_set_state(b, T0, to);
			breaker_snapshot(b, T0, &after);
			if (ok[from][to]) {
				assert_int_equal(rc, 0);
				assert_int_equal(after.state, to);
				assert_int_equal(after.transitions, before.transitions + 1);
			} else {
				assert_int_equal(rc, ERR_STATE);
				assert_int_equal(after.state, from);
				assert_int_equal(after.transitions, before.transitions);
			}
			breaker_free(b);
		}
	}
	breaker *b = breaker_in(BREAKER_CLOSED);
	assert_int_equal(breaker_set_state(b, T0, 99), ERR_INVALID);
	assert_int_equal(breaker_set_state(b, T0, -1), ERR_INVALID);
	assert_int_equal(state_of(b, T0), BREAKER_CLOSED);
	breaker_free(b);
}

typedef struct seen {
	int n;
	int from[16];
	int to[16];
	char last_to_name[32];
} seen;

static void hook(void *ud, const breaker *b, int from, int to)
{
	seen *s = ud;
	if (s->n < 16) {
		s->from[s->n] = from;
		s->to[s->n] = to;
	}
	s->n++;
	snprintf(s->last_to_name, sizeof(s->last_to_name), "%s", breaker_to(b));
}

static void test_hook_and_log(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	clock_src *clk = clock_virtual_new(T0);
	logger *lg = log_new("gateway", out, clk, LOG_DEBUG);
	breaker_config c = small_cfg();
	breaker *b = breaker_new("gateway", "payment", &c, lg);
	seen s = {0};
	breaker_on_transition(b, hook, &s);

	open_at(b, T0);
	assert_int_equal(breaker_acquire(b, T0 + 5 * SEC), 0);
	assert_int_equal(breaker_acquire(b, T0 + 5 * SEC), 0);
	assert_int_equal(breaker_acquire(b, T0 + 5 * SEC), 0);
	for (int i = 0; i < 3; i++)
		breaker_record(b, T0 + 5 * SEC, 10 * MS, 0);
	assert_int_equal(breaker_set_state(b, T0, BREAKER_HALF_OPEN), ERR_STATE);
	assert_int_equal(breaker_trip(b, T0), 0);

	assert_int_equal(s.n, 4);
	assert_int_equal(s.from[0], BREAKER_CLOSED);
	assert_int_equal(s.to[0], BREAKER_OPEN);
	assert_int_equal(s.from[1], BREAKER_OPEN);
	assert_int_equal(s.to[1], BREAKER_HALF_OPEN);
	assert_int_equal(s.from[2], BREAKER_HALF_OPEN);
	assert_int_equal(s.to[2], BREAKER_CLOSED);
	assert_int_equal(s.from[3], BREAKER_CLOSED);
	assert_int_equal(s.to[3], BREAKER_FORCED_OPEN);
	assert_string_equal(s.last_to_name, "payment");
	breaker_stats st;
	breaker_snapshot(b, T0, &st);
	assert_int_equal(st.transitions, 4);

	/* Removed hook: no more calls. */
	breaker_on_transition(b, NULL, NULL);
	assert_int_equal(breaker_reset(b, T0), 0);
	assert_int_equal(s.n, 4);

	fflush(out);
	assert_non_null(strstr(buf, "breaker gateway/payment: CLOSED -> OPEN"));
	assert_non_null(strstr(buf, "OPEN -> HALF_OPEN"));
	assert_non_null(strstr(buf, "HALF_OPEN -> CLOSED"));
	assert_non_null(strstr(buf, "CLOSED -> FORCED_OPEN"));
	assert_non_null(strstr(buf, "FORCED_OPEN -> CLOSED"));
	assert_non_null(strstr(buf, "illegal transition CLOSED -> HALF_OPEN"));
	assert_non_null(strstr(buf, "failure rate 10/10"));

	breaker_free(b);
	log_free(lg);
	clock_free(clk);
	fclose(out);
	free(buf);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct shared {
	breaker *b;
	atomic_llong now;
	atomic_int admitted;
	atomic_int bad;
	int hook_calls; /* the hook runs under the breaker's lock */
	unsigned seed;
} shared;

static void count_hook(void *ud, const breaker *b, int from, int to)
{
	((shared *)ud)->hook_calls++;
}

static void *worker(void *arg)
{
	shared *sh = arg;
	unsigned seed = (unsigned)(uintptr_t)pthread_self() ^ sh->seed;
	for (int i = 0; i < 20000; i++) {
		int64_t now = atomic_fetch_add(&sh->now, 50);
		if (breaker_acquire(sh->b, now) != 0)
			continue;
		int r = rand_r(&seed) % 100;
		if (r < 5)
			breaker_release(sh->b);
		else
			breaker_record(sh->b, now, r < 10 ? 3 * SEC : 1 * MS, r < 45);
		if ((i & 1023) == 0) {
			breaker_stats st;
			breaker_snapshot(sh->b, now, &st);
			if (st.calls > 10)
				atomic_store(&sh->bad, 1); /* asserts belong to the main thread */
		}
	}
	return NULL;
}

static void test_threads_smoke(void **state)
{
	breaker_config c = small_cfg();
	c.wait_in_open_us = 20 * MS;
	shared sh = {.seed = 7};
	atomic_init(&sh.now, T0);
	sh.b = breaker_new("a", "b", &c, NULL);
	breaker_on_transition(sh.b, count_hook, &sh);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	breaker_stats st;
	breaker_snapshot(sh.b, atomic_load(&sh.now), &st);
	/* 45% failures against a 50% threshold: it must have moved around. */
	assert_true(st.transitions > 0);
	assert_int_equal(st.transitions, sh.hook_calls);
	assert_true(st.calls <= 10);
	assert_int_equal(atomic_load(&sh.bad), 0);
	breaker_free(sh.b);
}

static void *prober(void *arg)
{
	shared *sh = arg;
	for (int i = 0; i < 2000; i++)
		if (breaker_acquire(sh->b, T0) == 0)
			atomic_fetch_add(&sh->admitted, 1);
	return NULL;
}

static void test_threads_half_open_admits_exactly_n(void **state)
{
	breaker_config c = small_cfg();
	c.permitted_calls_in_half_open = 5;
	shared sh = {0};
	atomic_init(&sh.admitted, 0);
	sh.b = breaker_new("a", "b", &c, NULL);
	assert_int_equal(breaker_set_state(sh.b, T0, BREAKER_OPEN), 0);
	assert_int_equal(breaker_set_state(sh.b, T0, BREAKER_HALF_OPEN), 0);
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, prober, &sh), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&sh.admitted), 5);
	breaker_stats st;
	breaker_snapshot(sh.b, T0, &st);
	assert_int_equal(st.not_permitted, 8 * 2000 - 5);
	breaker_free(sh.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_config),
		cmocka_unit_test(test_no_rate_before_minimum_calls),
		cmocka_unit_test(test_exactly_at_threshold_trips),
		cmocka_unit_test(test_window_slides),
		cmocka_unit_test(test_slow_calls),
		cmocka_unit_test(test_wait_in_open),
		cmocka_unit_test(test_half_open_admits_exactly_n_then_closes),
		cmocka_unit_test(test_half_open_failures_reopen),
		cmocka_unit_test(test_release_and_stale_records),
		cmocka_unit_test(test_forced_open_rejects_everything),
		cmocka_unit_test(test_disabled_permits_everything),
		cmocka_unit_test(test_reset_clears_window),
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_hook_and_log),
		cmocka_unit_test(test_threads_smoke),
		cmocka_unit_test(test_threads_half_open_admits_exactly_n),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
