/* narrator: tells what happens on the platform while a demo's load runs,
 * one line per second at most, only when something changed:
 *
 *   t=15s  ▶ fault set stripe outage duration=20s → stripe down
 *   t=17s  breaker order→payment OPEN → 37 orders AWAITING_PAYMENT
 *   t=38s  breaker order→payment CLOSED → no order AWAITING_PAYMENT (412 CONFIRMED)
 *
 * It reads the admin API about once a second (GET /admin/breakers,
 * /admin/faults, /admin/orders/summary, the watched sku's stock) and the
 * state directory's instances.json (pids and restarts), tells the
 * scenario's schedule as each action comes due, and says what changed since
 * the last look. A thread of its own; the diffing (narrator_tell) is plain
 * code, for tests. */
#ifndef ECOM_NARRATOR_H
#define ECOM_NARRATOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "sim/scenario.h"

typedef struct narrator narrator;

typedef struct narrator_opts {
	const char *url;       /* the gateway (copied) */
	const char *token;     /* the admin token (copied) */
	const char *state_dir; /* for instances.json; NULL: not watched */
	const scenario *s;     /* its schedule is told; its hot sku watched; may be NULL */
	FILE *out;
	int64_t period_us;     /* between looks; 0: one second */
} narrator_opts;

/* What one look saw (each borrowed; NULL when it could not be read). */
typedef struct narrator_look {
	json_t *breakers;  /* GET /admin/breakers */
	json_t *faults;    /* GET /admin/faults */
	json_t *orders;    /* GET /admin/orders/summary */
	json_t *instances; /* STATE/instances.json */
	json_t *stock;     /* GET /v1/inventory/{hot sku} */
} narrator_look;

/* A narrator that has not looked yet. o is copied (s borrowed: it must
 * outlive the narrator). Owned by the caller: narrator_free(). NULL when
 * out of memory. */
narrator *narrator_new(const narrator_opts *o);
void narrator_free(narrator *n);

/* Compares a look at t_us from the run's start (negative: before it) with
 * the last and writes what changed into line (empty when nothing worth
 * telling); the first look only sets the baseline. The schedule's actions
 * due by t_us are told once each. Returns the line's length. */
size_t narrator_tell(narrator *n, const narrator_look *look, int64_t t_us, char *line,
		     size_t len);

/* Starts the looking thread (it tells nothing until the run's start is
 * known). 0 or an error. */
int narrator_start(narrator *n);
/* The run's start on clock_mono_us(): t=0 of the lines (the loadgen's
 * on_start hook). */
void narrator_set_start(narrator *n, int64_t t0_mono_us);
/* Stops and joins the thread (a last look is told first). */
void narrator_stop(narrator *n);

#endif
