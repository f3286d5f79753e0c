/* backoff: when to retry an idempotent call. Exponential backoff with full
 * jitter (a delay drawn uniformly from [0, min(cap, base * 2^retry)]), a
 * bound on attempts, and the caller's deadline: a retry is only worth making
 * when it can start before the deadline.
 *
 * Pure and stateless: time comes in as microseconds, randomness from a
 * core/rng (thread-safe), so one policy can be shared by any number of
 * threads. */
#ifndef ECOM_BACKOFF_H
#define ECOM_BACKOFF_H

#include <stdint.h>
#include "core/rng.h"

typedef struct backoff_policy {
	int max_attempts; /* total attempts, the first call included (>= 1);
			   * 1 means never retry */
	int64_t base_us;  /* ceiling of the first retry's delay (>= 0) */
	int64_t cap_us;   /* no delay ever exceeds this (>= 0) */
} backoff_policy;

/* Pass as deadline_us for "no deadline". */
#define BACKOFF_NO_DEADLINE INT64_MAX

/* 0, or ERR_INVALID when max_attempts < 1 or base/cap are negative. */
int backoff_policy_check(const backoff_policy *p);

/* The delay before retry number `retry` (0 = the first retry, after the
 * first call failed): uniform in [0, min(cap_us, base_us * 2^retry)],
 * inclusive. No overflow for any retry (the ceiling saturates at cap_us); a
 * negative retry counts as 0. 0 for a NULL or invalid policy. */
int64_t backoff_delay_us(const backoff_policy *p, int retry, rng *r);

/* Decides whether retry number `retry` (0-based, as above) should happen,
 * the call having failed at now_us with the caller's deadline at deadline_us.
 *   0               retry after *delay_out microseconds (now + delay <
 *                   deadline, and retry + 1 < max_attempts)
 *   ERR_UNAVAILABLE attempts exhausted: give up with the last error
 *   ERR_TIMEOUT     the deadline would pass before (or at) the retry's
 *                   start, or has passed already: give up as a timeout
 *   ERR_INVALID     bad policy or arguments
 * Attempts are checked first, so an exhausted budget draws no random
 * number. *delay_out is 0 unless 0 is returned. */
int backoff_next(const backoff_policy *p, int retry, int64_t now_us, int64_t deadline_us, rng *r,
		 int64_t *delay_out);

#endif
