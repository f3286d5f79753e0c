/* bulkhead: a bound on concurrent calls to one upstream (one bulkhead per
 * name), so a slow peer can tie up at most max_concurrent of the caller's
 * threads. A call beyond the bound is refused at once, never queued: the
 * caller answers 503 instead of waiting.
 *
 * Pure (no I/O, no clock). Thread-safe: an internal mutex. */
#ifndef ECOM_BULKHEAD_H
#define ECOM_BULKHEAD_H

#include <stdint.h>

typedef struct bulkhead bulkhead;

/* A bulkhead named name (copied) admitting max_concurrent (>= 1) calls at
 * a time. NULL on bad arguments or out of memory. Owned by the caller:
 * bulkhead_free(). */
bulkhead *bulkhead_new(const char *name, int max_concurrent);
void bulkhead_free(bulkhead *bh);

const char *bulkhead_name(const bulkhead *bh);

/* 0: admitted (call bulkhead_leave when the call ends, whatever its
 * outcome). ERR_BUSY: max_concurrent calls are in flight; counted as
 * rejected. */
int bulkhead_enter(bulkhead *bh);
/* Ends an admitted call. ERR_STATE (and nothing changes) when no call is in
 * flight: an unbalanced leave is a caller bug. */
int bulkhead_leave(bulkhead *bh);

/* Changes the bound (>= 1; ERR_INVALID otherwise), e.g. on a configuration
 * reload. Calls already in flight stay; new ones wait for the count to fall
 * below the new bound. */
int bulkhead_set_max(bulkhead *bh, int max_concurrent);

typedef struct bulkhead_stats {
	int max_concurrent;
	int in_flight;
	int64_t admitted; /* enters that succeeded, since creation */
	int64_t rejected; /* enters refused, since creation */
} bulkhead_stats;

void bulkhead_snapshot(bulkhead *bh, bulkhead_stats *out);

#endif
