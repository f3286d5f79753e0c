/* audit: the platform's cross-service invariants, read from every service's
 * admin API (`ecom audit`, and the audit hook of `ecom sim run`):
 *
 *   orders_settled        every order is CONFIRMED or CANCELLED with its
 *                         saga ended, or PENDING / AWAITING_PAYMENT with a
 *                         live saga (queued, its reservation not long
 *                         expired)
 *   no_oversell           the inventory's figures are never negative and its
 *                         ledger explains them; every CONFIRMED order's
 *                         reservation is COMMITTED for its units, and no
 *                         CANCELLED order's is
 *   reserved_stock        reserved equals the HELD reservations (the
 *                         inventory's checker), and HELD ones belong to
 *                         orders still in flight
 *   money                 each CONFIRMED order captured exactly its total,
 *                         each CANCELLED one kept nothing (captured minus
 *                         refunded is 0, nothing left authorised): captured
 *                         money equals the CONFIRMED totals minus refunds
 *   payments_have_orders  every payment names an order that exists, for
 *                         that order's amount and currency
 *   notifications         one order_confirmed notification (per channel)
 *                         for each CONFIRMED order, none for others; skipped
 *                         while no notification service is deployed
 *
 * Reads: GET /admin/orders, /admin/inventory/invariants,
 * /admin/inventory/reservations, /admin/payments,
 * /admin/notifications?type=order_confirmed (all paged; only when the
 * gateway's /admin/services lists a notification instance), and
 * /admin/sagas/{id} for a payment whose order the listing did not have.
 * Orders are read first: anything read later that names an order then in
 * flight is not held against it. The checks themselves (audit_check) are
 * pure, on the data as read. */
#ifndef ECOM_AUDIT_H
#define ECOM_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "net/msg.h"

/* Offending ids listed per invariant (all are counted). */
#define AUDIT_MAX_LISTED 20

typedef enum audit_id {
	AUDIT_ORDERS_SETTLED,
	AUDIT_NO_OVERSELL,
	AUDIT_RESERVED_STOCK,
	AUDIT_MONEY,
	AUDIT_PAYMENTS_HAVE_ORDERS,
	AUDIT_NOTIFICATIONS,
	AUDIT_NCHECKS
} audit_id;

typedef enum audit_result {
	AUDIT_PASS,
	AUDIT_FAIL,  /* broken: the offending ids are listed */
	AUDIT_SKIP,  /* not applicable to this platform (summary says why) */
	AUDIT_ERROR, /* could not be checked (a service did not answer) */
} audit_result;

typedef struct audit_finding {
	char id[80];       /* an order, payment, reservation id or a sku */
	char message[200];
} audit_finding;

typedef struct audit_verdict {
	audit_result result;
	char summary[256]; /* what was checked, or why skipped, or the error */
	int64_t nfound;    /* offending items in all */
	int nlisted;
	audit_finding found[AUDIT_MAX_LISTED];
} audit_verdict;

typedef struct audit_report {
	audit_verdict checks[AUDIT_NCHECKS];
	int64_t orders, payments, reservations, notifications; /* read */
	int64_t unconfirmed; /* CONFIRMED orders without their confirmation yet */
	int64_t elapsed_us;
} audit_report;

/* What the audit reads, as the services answered (each a new reference,
 * or NULL with its error set). */
typedef struct audit_data {
	json_t *orders;        /* array: /admin/orders items */
	json_t *payments;      /* array: /admin/payments items */
	json_t *reservations;  /* array: /admin/inventory/reservations items */
	json_t *invariants;    /* object: the inventory's /admin/invariants report */
	json_t *notifications; /* array: /admin/notifications?type=order_confirmed items */
	json_t *order_lookups; /* object: order id -> 1 found, 0 not found (ids the
				* payments name that the listing did not have) */
	char orders_err[160], payments_err[160], reservations_err[160], invariants_err[160];
	char notifications_err[160];
	char notifications_skip[160]; /* set: notifications not deployed */
	int64_t now_us;               /* when the orders were read */
} audit_data;

typedef struct audit_opts {
	/* How long past its reservation's expiry an order may still be in
	 * flight, and a HELD reservation of a final order wait for the
	 * inventory's expiry sweep (0: 2 minutes). */
	int64_t grace_us;
	/* How long the audit may wait: for a read refused for a moment (no
	 * answer, 503 while a breaker is open, 504, 429), tried again every
	 * 500 ms, and for confirmation notifications still on their way (the
	 * bus delivers them after the order is confirmed); 0: no waiting. */
	int64_t wait_us;
	/* The time the platform's clock shows; 0: this host's real clock. */
	int64_t now_us;
} audit_opts;

/* One admin GET of path (from the gateway's root, with its query): 0 with
 * resp filled (any status), or an error when no answer came. resp is
 * initialised by the caller and cleared by it. */
typedef int (*audit_get_fn)(void *ud, const char *path, msg_resp *resp);

void audit_data_clear(audit_data *d);
/* Reads everything through get into d (cleared first), trying reads
 * refused for a moment again for o->wait_us. Errors are kept per source in
 * d; returns 0. */
int audit_fetch(audit_get_fn get, void *ud, const audit_opts *o, audit_data *d);
/* Decides every invariant on d into r. */
void audit_check(const audit_data *d, const audit_opts *o, audit_report *r);
/* audit_fetch, audit_check, and (with o->wait_us) reading the notifications
 * again while confirmations are missing, until wait_us is up. */
void audit_collect(audit_get_fn get, void *ud, const audit_opts *o, audit_report *r);
/* audit_collect against the gateway at url with the admin token, over
 * HTTP. Call http_client_global_init() first. */
void audit_run(const char *url, const char *token, const audit_opts *o, audit_report *r);

/* Invariants that failed or could not be checked. */
int audit_failures(const audit_report *r);
const char *audit_name(audit_id id);
const char *audit_title(audit_id id);
/* The report as a table: one line per invariant (✓, ✗, - skipped, ! error)
 * and the offending ids under each that failed. */
void audit_print(const audit_report *r, FILE *out);
/* One line: "6 invariants: 5 ✓, 1 skipped" or naming those that failed. */
void audit_line(const audit_report *r, char *buf, size_t len);
/* {ok, failed, orders, payments, reservations, notifications, elapsed_ms,
 * checks: [{name, title, result, summary, count, offenders: [{id,
 * message}]}]} (a new reference). */
json_t *audit_json(const audit_report *r);

/* The loadgen_audit_fn of `ecom sim run` (sim/loadgen.h): ud is an
 * audit_report to fill (or NULL). Returns audit_failures(). */
int audit_loadgen_hook(void *ud, const char *url, const char *admin_token, char *text,
		       size_t len);

/* argv[0] is "audit". Exit 0 all held, 1 any failed, 2 bad usage. */
int audit_main(int argc, char **argv);

#endif
