/* ratelimit: token buckets keyed by string (the gateway uses caller id plus
 * route class, e.g. "user:42|checkout"). Each bucket holds up to `burst`
 * tokens and refills at `rate_per_s`, lazily, from the now_us of each take:
 * no timer, no clock. One limiter has one rate and burst; route classes with
 * different limits use different limiters.
 *
 * Memory is bounded: at most max_keys buckets. A new key at the bound drops
 * a bucket among the few least recently used that is idle and full
 * (forgetting it changes nothing: a new bucket starts full), else the least
 * recently used one (that caller gets a fresh burst: lenient, never
 * stricter).
 *
 * Pure (no I/O, no clock). Thread-safe: an internal mutex. */
#ifndef ECOM_RATELIMIT_H
#define ECOM_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit;

/* Longest key accepted, in bytes. */
#define RATELIMIT_MAX_KEY 256

/* A limiter of rate_per_s tokens per second (> 0), holding at most burst
 * tokens (>= 1) per key, for at most max_keys keys (>= 1). NULL on bad
 * arguments or out of memory. Owned by the caller: ratelimit_free(). */
ratelimit *ratelimit_new(double rate_per_s, double burst, size_t max_keys);
void ratelimit_free(ratelimit *rl);

typedef struct ratelimit_result {
	int allowed;            /* 1 when the tokens were taken */
	int64_t limit;          /* burst, for RateLimit-Limit */
	int64_t remaining;      /* whole tokens left after this take, for
				 * RateLimit-Remaining */
	int64_t reset_after_us; /* until the bucket is full again */
	int64_t reset_after_s;  /* the same rounded up, for RateLimit-Reset */
	int64_t retry_after_us; /* denied: until `cost` tokens are there; 0 when allowed */
	int64_t retry_after_s;  /* the same rounded up (>= 1 when denied), for
				 * Retry-After */
} ratelimit_result;

/* Takes cost tokens (> 0, <= burst) from key's bucket at now_us, creating
 * the bucket full when new. 0: allowed. ERR_BUSY: denied, nothing taken
 * (answer 429 with Retry-After). ERR_INVALID: bad key (empty or longer
 * than RATELIMIT_MAX_KEY) or cost. ERR_NOMEM: no room for a new bucket.
 * out (may be NULL) is filled on 0 and ERR_BUSY. A now_us earlier than the
 * bucket's last one refills nothing. */
int ratelimit_take(ratelimit *rl, const char *key, int64_t now_us, double cost,
		   ratelimit_result *out);

/* Drops every bucket that is full at now_us (idle long enough to have
 * refilled): behaviour is unchanged, memory is returned. For a periodic
 * tick. Returns how many were dropped. */
size_t ratelimit_sweep(ratelimit *rl, int64_t now_us);

/* Buckets held now, and buckets dropped so far to make room (not counting
 * sweeps). */
size_t ratelimit_count(ratelimit *rl);
uint64_t ratelimit_evictions(ratelimit *rl);

#endif
