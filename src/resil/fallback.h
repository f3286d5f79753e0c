/* fallback: the last good answer to each read, kept so the gateway can
 * serve it - marked stale - while the service that gave it is down or its
 * breaker is open. Keyed by the request target (path and query). Bounded by
 * entries and bytes; when full, the entry stored longest ago goes first.
 * Entries older than max_age are not served (and are dropped when met).
 *
 * Pure: no I/O, time passed in as microseconds. Thread-safe (one mutex). */
#ifndef ECOM_FALLBACK_H
#define ECOM_FALLBACK_H

#include <stddef.h>
#include <stdint.h>

#include "net/msg.h"

/* Keys longer than this are not kept. */
#define FALLBACK_MAX_KEY 1024

typedef struct fallback fallback;

/* A cache of at most max_entries answers (>= 1) and max_bytes of keys and
 * bodies (>= 1024); one answer may take at most a quarter of max_bytes.
 * max_age_us > 0. NULL on bad arguments or out of memory. Owned by the
 * caller: fallback_free(). */
fallback *fallback_new(int max_entries, size_t max_bytes, int64_t max_age_us);
void fallback_free(fallback *f);

/* Keeps (or replaces) key's answer: a body of len bytes (copied) with
 * content type ctype (may be NULL), stored at now_us. 0; ERR_TOO_LARGE
 * when the key or the body is over its bound (nothing kept, and an older
 * answer for key is dropped, as it no longer is the latest); ERR_INVALID;
 * ERR_NOMEM. */
int fallback_put(fallback *f, const char *key, const char *ctype, const char *body, size_t len,
		 int64_t now_us);

/* Fills out (status 200, the content type and a copy of the body) with
 * key's answer when one younger than max_age is kept, and *age_us with its
 * age. 0, or ERR_NOT_FOUND (out untouched). */
int fallback_get(fallback *f, const char *key, int64_t now_us, msg_resp *out, int64_t *age_us);

typedef struct fallback_stats {
	int entries;
	size_t bytes;
	int64_t stored;  /* puts that kept an answer */
	int64_t hits;    /* gets that found one */
	int64_t misses;
	int64_t evicted; /* dropped to make room or for age */
} fallback_stats;

void fallback_snapshot(fallback *f, fallback_stats *out);

#endif
