/* threshold: a pass/fail criterion of a load run, written as in k6:
 *
 *     [ENDPOINT.]METRIC OP VALUE        p99 < 250ms    checkout.p99 < 500ms
 *                                       error_rate < 1%    orders_lost == 0
 *
 * METRIC is a latency (pN or p(N) for any percentile N in (0, 100], max,
 * min, mean; VALUE a duration, a bare number meaning milliseconds), a ratio
 * (error_rate; VALUE "1%" or 0.01), a count (count, errors, expected,
 * unrouted) or rate (requests per second), each of one endpoint or, without
 * ENDPOINT, of all of them; or a run-wide figure (dropped, dropped_rate,
 * orders_created, orders_confirmed, orders_cancelled, orders_open,
 * orders_unknown, orders_lost, duplicate_mismatch, schedule_failures,
 * audit_failures). OP is one of < <= > >= == !=. The report (sim/report)
 * measures the value; this module only reads and decides. */
#ifndef ECOM_THRESHOLD_H
#define ECOM_THRESHOLD_H

#include <stddef.h>

typedef enum threshold_metric {
	TM_PERCENTILE, /* latency at threshold.pct */
	TM_MAX,
	TM_MIN,
	TM_MEAN,
	TM_ERROR_RATE,
	TM_ERRORS,
	TM_COUNT,
	TM_EXPECTED,
	TM_UNROUTED,
	TM_RATE,
	/* run-wide only (no ENDPOINT) */
	TM_DROPPED,
	TM_DROPPED_RATE,
	TM_ORDERS_CREATED,
	TM_ORDERS_CONFIRMED,
	TM_ORDERS_CANCELLED,
	TM_ORDERS_OPEN,
	TM_ORDERS_UNKNOWN,
	TM_ORDERS_LOST,
	TM_DUPLICATE_MISMATCH,
	TM_SCHEDULE_FAILURES,
	TM_AUDIT_FAILURES,
	TM_NMETRICS
} threshold_metric;

typedef enum threshold_kind { TK_LATENCY, TK_RATIO, TK_COUNT, TK_RATE } threshold_kind;

typedef enum threshold_op { TOP_LT, TOP_LE, TOP_GT, TOP_GE, TOP_EQ, TOP_NE } threshold_op;

#define THRESHOLD_TEXT_MAX 128
#define THRESHOLD_NAME_MAX 32

typedef struct threshold {
	char text[THRESHOLD_TEXT_MAX];     /* as written, blanks squeezed */
	char endpoint[THRESHOLD_NAME_MAX]; /* "" for all endpoints / run-wide */
	threshold_metric metric;
	double pct;                        /* TM_PERCENTILE: the percentile */
	threshold_op op;
	double value; /* latency in microseconds, ratio as a fraction */
} threshold;

/* Reads expr into out. endpoints (NULL-ended, borrowed) are the names an
 * ENDPOINT may take; NULL accepts any. 0, or ERR_INVALID with err saying
 * what was expected ("expected an operator (< <= > >= == !=) after 'p99'"). */
int threshold_parse(const char *expr, const char *const *endpoints, threshold *out, char *err,
		    size_t errlen);
/* 1 when value satisfies t, else 0. */
int threshold_pass(const threshold *t, double value);
threshold_kind threshold_metric_kind(threshold_metric m);
/* "p99", "error_rate", ... (percentiles as "p" + the number). */
void threshold_metric_label(const threshold *t, char *buf, size_t len);
/* value formatted for metric m: "23.4ms", "1.25%", "12", "48.2/s". */
void threshold_fmt_value(threshold_metric m, double value, char *buf, size_t len);
const char *threshold_op_name(threshold_op op);

#endif
