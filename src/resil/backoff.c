/* backoff: exponential backoff with full jitter, within a deadline. */
#include "resil/backoff.h"
#include "core/err.h"

int backoff_policy_check(const backoff_policy *p)
{
	if (!p || p->max_attempts < 1 || p->base_us < 0 || p->cap_us < 0)
		return ERR_INVALID;
	return 0;
}

/* min(cap, base * 2^retry) without ever computing a product that overflows:
 * base << retry fits exactly when base <= cap >> retry (and then it is at
 * most cap). */
static int64_t ceiling_us(const backoff_policy *p, int retry)
{
	if (retry < 0)
		retry = 0;
	if (p->base_us == 0)
		return 0;
	if (retry >= 63 || p->base_us > (p->cap_us >> retry))
		return p->cap_us;
	return p->base_us << retry;
}

int64_t backoff_delay_us(const backoff_policy *p, int retry, rng *r)
{
	if (backoff_policy_check(p) != 0 || !r)
		return 0;
	uint64_t ceil = (uint64_t)ceiling_us(p, retry);
	/* Inclusive of the ceiling; ceil + 1 cannot wrap since ceil <= INT64_MAX. */
	return (int64_t)rng_below(r, ceil + 1);
}

int backoff_next(const backoff_policy *p, int retry, int64_t now_us, int64_t deadline_us, rng *r,
		 int64_t *delay_out)
{
	if (delay_out)
		*delay_out = 0;
	if (backoff_policy_check(p) != 0 || !r || !delay_out || retry < 0)
		return ERR_INVALID;
	if (retry >= p->max_attempts - 1)
		return ERR_UNAVAILABLE;
	if (now_us >= deadline_us)
		return ERR_TIMEOUT;
	int64_t delay = backoff_delay_us(p, retry, r);
	/* now + delay < deadline, written as a difference: deadline - now is
	 * positive here and cannot overflow unless now is negative. */
	int64_t room;
	if (__builtin_sub_overflow(deadline_us, now_us, &room))
		room = INT64_MAX;
	if (delay >= room)
		return ERR_TIMEOUT;
	*delay_out = delay;
	return 0;
}
