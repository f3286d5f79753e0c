/* report: what a load run measured, and how it is told. Per endpoint (one
 * per journey step kind) a log-linear latency histogram (core/hist), counts
 * by outcome and by status; the run's arrivals, drops, orders and their
 * final states, the schedule's actions, the audit; the thresholds decided
 * on those figures. Outputs: the end-of-run summary (k6/vegeta style),
 * one NDJSON line or CSV row per request as it completes (--out), and the
 * summary as JSON. Not thread-safe: the load generator's one thread owns it. */
#ifndef ECOM_REPORT_H
#define ECOM_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "core/hist.h"
#include "sim/scenario.h"
#include "sim/threshold.h"

/* How a request ended, for the error rate. */
typedef enum report_outcome {
	REPORT_OK,       /* 2xx */
	REPORT_EXPECTED, /* a refusal the business allows (out of stock, cart full, too late to cancel) */
	REPORT_UNROUTED, /* 404 from a route the platform does not serve yet (search) */
	REPORT_ERROR,    /* no answer, 5xx, 429, or any other refusal */
	REPORT_NOUTCOMES
} report_outcome;

typedef enum report_drop_reason { REPORT_DROP_NO_WORKER, REPORT_DROP_LATE, REPORT_NDROPS } report_drop_reason;

typedef struct report_sample {
	int64_t t_us;       /* intended start, from the run's start */
	int64_t latency_us; /* from the intended start to the answer */
	scenario_action endpoint;
	int status;         /* 0: no answer (err says why) */
	int err;            /* 0, ERR_TIMEOUT, ERR_UNAVAILABLE, ERR_IO */
	report_outcome outcome;
	uint64_t arrival;   /* the arrival (journey run) it belongs to */
	int journey;        /* index into the scenario's journeys */
	int user;           /* pool index, -1 for none */
	int attempt;        /* 0 the first send; 1.. resends with the same key */
} report_sample;

typedef struct report_endpoint {
	hist *h;
	uint64_t count;
	uint64_t outcome[REPORT_NOUTCOMES];
	uint64_t status[600];
	uint64_t timeouts, refused, io;
} report_endpoint;

#define REPORT_REASONS 5 /* out_of_stock, payment_declined, customer_cancelled, expired, other */

typedef struct report_orders {
	int polled;            /* 1 once the final states were read */
	int64_t settle_us;     /* how long reading them took */
	uint64_t created;      /* distinct orders the platform accepted (201 or 202) */
	uint64_t created_202;  /* of which queued (AWAITING_PAYMENT) at once */
	uint64_t confirmed, cancelled, pending, awaiting, unknown, other;
	uint64_t cancelled_by[REPORT_REASONS];
	uint64_t saga_completed, saga_compensated, saga_open;
	uint64_t duplicates_sent, duplicate_mismatch;
	uint64_t cancels_skipped; /* cancel steps whose checkout made no order */
} report_orders;

typedef struct report_event {
	int64_t at_us;   /* when it was due */
	int64_t done_us; /* when it finished, from the run's start (-1: never ran) */
	int ok;
	char text[160];
	char message[256];
} report_event;

typedef struct report {
	const scenario *s; /* borrowed: names of journeys, thresholds */
	int64_t planned_us, elapsed_us, drain_us;
	int interrupted; /* the run was stopped before its end (Ctrl-C) */
	uint64_t seed;
	report_endpoint ep[SCN_NACTIONS];
	uint64_t arrivals, started, dropped[REPORT_NDROPS];
	uint64_t journeys_done, journeys_cut;
	uint64_t requests_cut; /* of the journeys cut, those with a request still in flight */
	int users_ready;
	report_orders orders;
	int nevents;
	report_event events[SCN_MAX_EVENTS];
	/* the audit: run at the end when a hook is given (sim/loadgen); once
	 * hooked, report_decide() counts it as the threshold audit_failures == 0 */
	int audit_hooked;
	int audit_ran;
	int audit_failures;
	char audit_text[512];
	/* thresholds, decided by report_decide() */
	int nthresholds;
	threshold thresholds[SCN_MAX_THRESHOLDS + 1];
	double values[SCN_MAX_THRESHOLDS + 1];
	int passed[SCN_MAX_THRESHOLDS + 1];
	FILE *ndjson, *csv;
} report;

/* An empty report of a run of s (borrowed; must outlive it). Owned by the
 * caller: report_free(). NULL when out of memory. */
report *report_new(const scenario *s);
/* Closes the output files too. */
void report_free(report *r);

/* Opens "json=FILE" (NDJSON) or "csv=FILE" for per-request output. 0 or
 * ERR_INVALID / ERR_IO with err filled. */
int report_open_output(report *r, const char *spec, char *err, size_t errlen);

void report_record(report *r, const report_sample *smp);
void report_drop(report *r, report_drop_reason why, int64_t t_us, uint64_t arrival);
/* A schedule action that finished (also written to the outputs). */
void report_event_done(report *r, const report_event *e);

/* Adds src's figures (requests, arrivals, drops, journeys, duplicates) to
 * dst: the shares of one run measured by several threads. */
void report_add(report *dst, const report *src);
/* Every endpoint's histogram merged into dst (reset first). */
void report_merge(const report *r, hist *dst);
/* Errors and requests over every endpoint. */
void report_totals(const report *r, uint64_t *count, uint64_t *errors);

/* The value a threshold looks at; NAN when it was not measured (no
 * requests, orders not read, no audit). */
double report_metric(const report *r, const threshold *t);
/* Decides every threshold of the scenario (plus those added to it, plus
 * audit_failures == 0 when an audit is hooked). The number that failed. */
int report_decide(report *r);
/* The end-of-run summary, UTF-8 (✓/✗). */
void report_print(const report *r, FILE *out);
/* The summary as JSON (a new reference). */
json_t *report_json(const report *r);
/* Writes the summary line to the NDJSON output, flushes and closes the
 * outputs. */
void report_finish_outputs(report *r);

const char *report_outcome_name(report_outcome o);
const char *report_reason_name(int i);
/* Index of a cancel_reason in cancelled_by. */
int report_reason_of(const char *reason);

#endif
