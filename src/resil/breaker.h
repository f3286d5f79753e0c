/* breaker: a circuit breaker with resilience4j's semantics, one per
 * (caller, callee). A count-based sliding window of the last call outcomes
 * decides when to stop calling a failing or slow peer (OPEN), when to probe
 * it again (HALF_OPEN) and when to trust it again (CLOSED). Operators can pin
 * it open (FORCED_OPEN) or take it out of the path (DISABLED).
 *
 * Pure: no I/O and no clock; time comes in as now_us (microseconds, any
 * monotone origin). Thread-safe: an internal mutex guards all state.
 *
 * Use: every call first breaker_acquire(); when permitted, the caller makes
 * the call and reports it with exactly one breaker_record() (or
 * breaker_release() when the call was not made after all, e.g. a bulkhead
 * refused it). A permitted half-open probe that is never reported keeps the
 * breaker in HALF_OPEN until an operator resets it. */
#ifndef ECOM_BREAKER_H
#define ECOM_BREAKER_H

#include <stdint.h>
#include "core/log.h"

enum breaker_state {
	BREAKER_CLOSED = 0, /* calls flow; outcomes fill the window */
	BREAKER_OPEN,       /* calls rejected until wait_in_open_us has passed */
	BREAKER_HALF_OPEN,  /* a fixed number of probe calls decide */
	BREAKER_FORCED_OPEN, /* operator: everything rejected until reset */
	BREAKER_DISABLED,   /* operator: everything permitted, nothing recorded */
	BREAKER_NSTATES
};

typedef struct breaker_config {
	int sliding_window_size;         /* outcomes kept, count-based (default 20) */
	int minimum_calls;               /* no rate before this many (default 10);
					  * capped at sliding_window_size */
	double failure_rate_threshold;   /* percent, trips when rate >= (default 50) */
	double slow_call_rate_threshold; /* percent, trips when rate >= (default 100) */
	int64_t slow_call_duration_us;   /* slow when duration > this (default 2 s) */
	int64_t wait_in_open_us;         /* OPEN before probing (default 5 s) */
	int permitted_calls_in_half_open; /* probes in HALF_OPEN (default 3) */
} breaker_config;

/* Upper bound on sliding_window_size and permitted_calls_in_half_open. */
#define BREAKER_MAX_WINDOW 100000

/* Fills c with the defaults above. */
void breaker_config_default(breaker_config *c);
/* 0, or ERR_INVALID when a field is out of range: window and half-open
 * calls in 1..BREAKER_MAX_WINDOW, minimum_calls >= 1, thresholds in
 * (0, 100], durations >= 0. */
int breaker_config_check(const breaker_config *c);

typedef struct breaker breaker;

/* Called on every state change, with the breaker's lock held: it must not
 * call back into this breaker except breaker_from/breaker_to/
 * breaker_state_name, which take no lock. from and to are breaker_state
 * values. */
typedef void (*breaker_transition_fn)(void *ud, const breaker *b, int from, int to);

/* A new CLOSED breaker for calls from name_from to name_to (both copied).
 * cfg NULL means the defaults; lg (borrowed, may be NULL) receives one line
 * per transition. NULL on an invalid config or out of memory. Owned by the
 * caller: breaker_free(). */
breaker *breaker_new(const char *name_from, const char *name_to, const breaker_config *cfg,
		     logger *lg);
void breaker_free(breaker *b);

/* Installs (or with fn NULL removes) the transition hook; ud is borrowed. */
void breaker_on_transition(breaker *b, breaker_transition_fn fn, void *ud);

const char *breaker_from(const breaker *b);
const char *breaker_to(const breaker *b);
/* "CLOSED", "OPEN", "HALF_OPEN", "FORCED_OPEN", "DISABLED"; "UNKNOWN" for
 * anything else. Never NULL. */
const char *breaker_state_name(int state);

/* Asks to make a call at now_us. 0: permitted (report it with
 * breaker_record or breaker_release). ERR_UNAVAILABLE: rejected, because the
 * breaker is OPEN (and wait_in_open_us has not passed), FORCED_OPEN, or
 * HALF_OPEN with every probe already admitted. OPEN becomes HALF_OPEN here,
 * on the first acquire at or after opened + wait_in_open_us. */
int breaker_acquire(breaker *b, int64_t now_us);

/* Reports the outcome of a permitted call. failed: the caller's verdict
 * (transport error, timeout, 5xx); a business 4xx is a success. A call is
 * slow when duration_us > slow_call_duration_us, failed or not.
 * CLOSED: the outcome enters the window; once it holds minimum_calls, a
 * failure rate or slow-call rate >= its threshold opens the breaker.
 * HALF_OPEN: once every admitted probe is reported (permitted_calls_in_half_open
 * of them), the same rule over the probes reopens it, otherwise it closes
 * with an empty window. Reports that match no admitted probe (a call from
 * before the breaker opened) and reports in other states are ignored. */
void breaker_record(breaker *b, int64_t now_us, int64_t duration_us, int failed);

/* Gives back a permit whose call was never made, so that a half-open probe
 * slot is not lost. Nothing to do in other states. */
void breaker_release(breaker *b);

/* The one transition function: moves to state to, running its entry action
 * (CLOSED, HALF_OPEN, FORCED_OPEN, DISABLED start an empty window; OPEN keeps
 * the window that tripped it and starts the wait at now_us), logs
 * "A -> B" and calls the hook. Legal edges:
 *   CLOSED      -> OPEN, FORCED_OPEN, DISABLED
 *   OPEN        -> HALF_OPEN, CLOSED, FORCED_OPEN, DISABLED
 *   HALF_OPEN   -> OPEN, CLOSED, FORCED_OPEN, DISABLED
 *   FORCED_OPEN -> CLOSED, DISABLED
 *   DISABLED    -> CLOSED, FORCED_OPEN
 * Anything else (a self edge included) is logged and refused with
 * ERR_STATE; ERR_INVALID for a state out of range. */
int breaker_set_state(breaker *b, int64_t now_us, int to);

/* Operator actions, idempotent (0 when already there):
 * trip -> FORCED_OPEN; reset -> CLOSED with an empty window (also when
 * already CLOSED); disable -> DISABLED. */
int breaker_trip(breaker *b, int64_t now_us);
int breaker_reset(breaker *b, int64_t now_us);
int breaker_disable(breaker *b, int64_t now_us);

typedef struct breaker_stats {
	int state;             /* breaker_state */
	double failure_rate;   /* percent over the window; -1 below the minimum */
	double slow_call_rate; /* percent over the window; -1 below the minimum */
	int calls;             /* outcomes in the window */
	int failed_calls;      /* of which failed */
	int slow_calls;        /* of which slow */
	int64_t not_permitted; /* rejected acquires since creation */
	int64_t transitions;   /* state changes since creation */
	int64_t open_remaining_us; /* OPEN: time until probes are allowed
				    * (0 when due); otherwise 0. For Retry-After. */
} breaker_stats;

/* Fills out with a consistent view at now_us. Does not change state (an OPEN
 * breaker whose wait has passed still reads OPEN until the next acquire). */
void breaker_snapshot(breaker *b, int64_t now_us, breaker_stats *out);

#endif
