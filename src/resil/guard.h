/* guard: the resilience layer around one caller's outbound calls. For each
 * callee (an "edge" caller -> callee) it keeps a circuit breaker and a
 * bulkhead, configured from the defaults of the configuration plus the
 * per-edge overrides of `resil.edges`, and it runs a call through them:
 * the caller's deadline first, then the breaker, then the bulkhead, then
 * the call with the time left as its timeout, its outcome classified and
 * recorded, and - for idempotent calls - retries with exponential backoff
 * and full jitter that never start past the deadline.
 *
 * The gateway uses guard_enter/guard_done around its own fail-over loop;
 * engines' outbound client (engine_call_service) uses guard_call.
 *
 * No I/O of its own: the call itself is a function the caller passes, time
 * comes from a core/clock (so a virtual clock drives it in tests, and a
 * retry's backoff on a virtual clock moves it instead of sleeping),
 * randomness from a core/rng. Thread-safe: edges are created once and never
 * removed; each breaker and bulkhead has its own lock. */
#ifndef ECOM_GUARD_H
#define ECOM_GUARD_H

#include <stdint.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "resil/backoff.h"
#include "resil/breaker.h"

/* The deadline header: the milliseconds the sender still gives the request
 * (an integer >= 0) at the moment it sends it. Each hop turns it into an
 * absolute time on its own clock when the request arrives, so the clocks
 * of two hosts never need to agree; it only shrinks along the way. */
#define GUARD_DEADLINE_HEADER "X-Ecom-Deadline-Ms"
/* Set on a call that was refused before anything was sent: "breaker",
 * "bulkhead" or "deadline". The gateway sets it on its own 503/504 refusals
 * (and strips it from upstream answers); guard_call sets it in resp when it
 * refuses. Nothing was sent, so the request had no effect. */
#define GUARD_REFUSED_HEADER "X-Ecom-Refused"
/* The longest deadline a header may ask for (a day). */
#define GUARD_MAX_DEADLINE_MS 86400000LL

/* Callee names: 1..GUARD_NAME_MAX-1 bytes of [a-z0-9_-]. */
#define GUARD_NAME_MAX 32
/* Edges per guard; calls to more callees than this run unguarded. */
#define GUARD_MAX_EDGES 64

typedef struct guard_edge_config {
	breaker_config breaker;
	int breaker_enabled;   /* 0: the edge's breaker starts DISABLED */
	int max_concurrent;    /* bulkhead bound, >= 1 */
	backoff_policy retry;  /* attempts (1 = no retry), base and cap */
} guard_edge_config;

/* The built-in defaults (the configuration table's values). */
void guard_edge_config_default(guard_edge_config *c);

typedef struct guard guard;

/* A guard for calls made by `caller` (copied). cfg (borrowed, read now; may
 * be NULL for the built-in defaults) gives breaker.*, bulkhead.*, retry.*,
 * resil.enabled and the per-edge overrides in resil.edges:
 *
 *     CALLER>CALLEE: KEY=VALUE, KEY=VALUE; CALLER>CALLEE: ...
 *
 * where CALLER and CALLEE are names or '*' and KEY is one of the
 * configuration keys above (breaker.failure_rate=30,
 * bulkhead.max_concurrent=2, retry.max_attempts=1, ...); rules apply in
 * order, so a later match wins. lg and m (borrowed, may be NULL) get one log line
 * and metric updates per breaker transition. NULL with err filled on a
 * bad configuration. Owned by the caller: guard_free(). */
guard *guard_new(const char *caller, const config *cfg, logger *lg, metrics *m, char *err,
		 size_t errlen);
void guard_free(guard *g);

const char *guard_caller(const guard *g);
/* 0 when resil.enabled was 0: every call passes without bookkeeping. */
int guard_enabled(const guard *g);
/* The configuration that callee's edge has (or would have). 0, or
 * ERR_INVALID for a bad name. */
int guard_edge_config_of(const guard *g, const char *callee, guard_edge_config *out);

enum guard_refusal {
	GUARD_PERMITTED = 0,
	GUARD_BREAKER,  /* the breaker is OPEN, FORCED_OPEN or HALF_OPEN and full */
	GUARD_BULKHEAD, /* max_concurrent calls in flight */
	GUARD_DEADLINE  /* the deadline has passed */
};
/* "breaker", "bulkhead", "deadline"; NULL for GUARD_PERMITTED or unknown. */
const char *guard_refusal_name(int why);

/* One admitted call: pass to guard_done or guard_cancel exactly once. */
typedef struct guard_permit {
	void *edge;       /* NULL when the call is unguarded */
	int64_t start_us;
} guard_permit;

/* Asks to call callee at now_us. 0: go ahead (*p filled). ERR_UNAVAILABLE:
 * refused, *why GUARD_BREAKER or GUARD_BULKHEAD, and *retry_after_s (may
 * be NULL) the whole seconds until the breaker may let a call through (at
 * least 1). Counted in resil_rejections_total{from,to,reason}.
 * ERR_INVALID for a bad callee name (the call is refused as by the breaker). */
int guard_enter(guard *g, const char *callee, int64_t now_us, guard_permit *p, int *why,
		int64_t *retry_after_s);
/* Reports the permitted call's outcome at now_us (duration from the
 * permit's start). failed: see guard_failed. */
void guard_done(guard_permit *p, int64_t now_us, int failed);
/* Gives the permit back: the call was never made. */
void guard_cancel(guard_permit *p);

/* The outcome rules, for the breaker: a call failed when no answer came
 * (rc != 0: refused connection, timeout, transport error) or the answer is
 * a 5xx other than 501 (not implemented is a permanent answer, not
 * trouble). Any other status - 2xx, 3xx, every 4xx, a card decline - is a
 * success: business outcomes never open a breaker. */
int guard_failed(int rc, int status);
/* Worth retrying (when the call may be repeated): no connection or no
 * answer (rc != 0), or 502, 503, 504 - unless the answer is a refusal
 * (GUARD_REFUSED_HEADER): another breaker or bulkhead said no, and asking
 * again at once would only be refused again. */
int guard_retryable(int rc, const msg_resp *resp);
/* Whether a request may be sent twice: GET, HEAD, OPTIONS, PUT, DELETE, or
 * any method carrying an Idempotency-Key header. */
int guard_idempotent(const msg_req *req);

/* ---- deadlines ---------------------------------------------------------------- */

/* Parses a GUARD_DEADLINE_HEADER value received at now_us into an absolute
 * deadline. 0, or ERR_INVALID when it is not a whole number in
 * 0..GUARD_MAX_DEADLINE_MS (a negative one is taken as 0: already due). */
int guard_deadline_parse(const char *value, int64_t now_us, int64_t *deadline_us);
/* The earlier of two deadlines, 0 meaning none. */
int64_t guard_deadline_min(int64_t a, int64_t b);
/* Milliseconds left at now_us until deadline_us, rounded down, never
 * below 0. */
int64_t guard_deadline_left_ms(int64_t deadline_us, int64_t now_us);
/* Sets GUARD_DEADLINE_HEADER on req to the time left (removes it when
 * deadline_us is 0). */
int guard_deadline_stamp(msg_req *req, int64_t deadline_us, int64_t now_us);

/* ---- one call, with retries ------------------------------------------------------ */

/* Sends req and fills resp, as engine_call_fn does: 0 when an answer came
 * back (any status), ERR_UNAVAILABLE when nothing was sent, ERR_TIMEOUT,
 * ERR_IO. */
typedef int (*guard_send_fn)(void *ud, msg_req *req, msg_resp *resp, int64_t timeout_ms);

typedef struct guard_call_opts {
	clock_src *clock;    /* time, and the sleep between attempts */
	rng *rng;            /* the jitter */
	int64_t deadline_us; /* absolute, on clock; 0 for none */
	int64_t timeout_ms;  /* one attempt at most (> 0) */
	int idempotent;      /* may be sent again (see guard_idempotent) */
} guard_call_opts;

/* Calls callee through its edge: refused at once (nothing sent) when less
 * than a millisecond is left before the deadline (ERR_TIMEOUT) or the breaker or bulkhead says no
 * (ERR_UNAVAILABLE); resp then carries GUARD_REFUSED_HEADER and, for the
 * breaker, Retry-After. Otherwise each attempt gets the time left until the
 * deadline (at most timeout_ms) and the deadline header, and
 * its outcome goes to the breaker. A failed attempt is tried again when it
 * is retryable (guard_retryable) and either the request is idempotent or
 * nothing was sent (ERR_UNAVAILABLE), within the edge's retry policy: the
 * n-th retry waits uniform(0, min(cap, base * 2^n)) and is only made when
 * it can start before the deadline. The request is sent unchanged each time
 * (an Idempotency-Key header stays the same). Returns the last attempt's
 * result; resp holds its answer (also when a retry was then refused by the
 * breaker, which the failures may have opened). Retries are counted in
 * resil_retries_total{from,to}. */
int guard_call(guard *g, const char *callee, const guard_call_opts *o, guard_send_fn send,
	       void *ud, msg_req *req, msg_resp *resp);

/* ---- operators --------------------------------------------------------------------- */

/* trip: FORCED_OPEN; reset: CLOSED with an empty window; disable:
 * DISABLED. trip and disable create the edge when it does not exist yet
 * (the operator means every future call too); reset of an edge that does
 * not exist is ERR_NOT_FOUND. ERR_INVALID for a bad name; ERR_TOO_LARGE
 * when GUARD_MAX_EDGES edges exist. */
int guard_trip(guard *g, const char *callee, int64_t now_us);
int guard_reset(guard *g, const char *callee, int64_t now_us);
int guard_disable(guard *g, const char *callee, int64_t now_us);

/* One edge as {from, to, state, failure_rate, slow_call_rate, calls,
 * failed_calls, slow_calls, not_permitted, transitions, open_remaining_ms,
 * max_concurrent, in_flight, bulkhead_rejected}; rates are percentages,
 * -1 while below the minimum number of calls (as resilience4j reports
 * them). NULL when callee has no edge. New reference. */
json_t *guard_edge_json(guard *g, const char *callee, int64_t now_us);
/* Every edge, ordered by callee, as a JSON array of guard_edge_json
 * objects. New reference. */
json_t *guard_list(guard *g, int64_t now_us);

#endif
