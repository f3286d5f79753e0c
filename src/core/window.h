/* window: what one process served over its last few seconds, for
 * GET /admin/stats (the console's overview): requests, server errors (5xx)
 * and a latency histogram (core/hist) per one-second slot, in a ring of
 * slots, so that a reading costs one pass over a few slots and old traffic
 * falls out by itself. The gateway adds the windows of every instance of a
 * service (window_merge_json) to give per-service figures. Thread-safe (one
 * mutex). Owned by its creator: window_new / window_free. */
#ifndef ECOM_WINDOW_H
#define ECOM_WINDOW_H

#include <stdint.h>

#include <jansson.h>

#include "core/hist.h"

#define WINDOW_MAX_S 60

typedef struct window window;

/* A window of seconds one-second slots (1..WINDOW_MAX_S; clamped), its
 * life starting at now_us (so a young process's rate is over its age, not
 * over the whole window). NULL when out of memory. */
window *window_new(int seconds, int64_t now_us);
void window_free(window *w);

/* A request begins (counted in flight until window_leave). */
void window_enter(window *w);
/* It finished at now_us after dur_us; error: it was a 5xx. */
void window_leave(window *w, int64_t now_us, int64_t dur_us, int error);
/* Requests between window_enter and window_leave now. */
int64_t window_in_flight(window *w);

typedef struct window_stats {
	uint64_t requests;
	uint64_t errors;
	double seconds; /* what the figures cover: the window, or the life when shorter */
	hist *latency;  /* the caller's; reset and filled (microseconds) */
} window_stats;

/* The figures of the window ending at now_us into out. */
void window_sum(window *w, int64_t now_us, window_stats *out);

/* The window as the admin API shows one process:
 *   {window_s, requests, errors, rps, p50_ms, p99_ms, error_rate,
 *    in_flight, latency_buckets: [[bucket, count], ...]}
 * (latency_buckets: the histogram's non-empty buckets, for merging).
 * New reference, NULL when out of memory. */
json_t *window_json(window *w, int64_t now_us);

/* Adds one process's window_json into acc (an object; empty the first
 * time): requests, errors, rps and in_flight summed, latency buckets
 * merged into h (the caller's, reset by the caller before the first). */
void window_merge_json(json_t *acc, hist *h, const json_t *one);

/* Finishes acc after the merges: p50_ms, p99_ms (from h) and error_rate. */
void window_finish_json(json_t *acc, const hist *h);

#endif
