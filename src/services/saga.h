/* saga: the checkout saga as persisted state. The order service
 * orchestrates it (src/services/order.c); this module owns its tables:
 * the state machine (saga), the steps it has begun (saga_step) and the
 * order queue with the leases that keep two instances from advancing one
 * saga at once (order_queue). Every function works inside the caller's
 * transaction on the caller's thread (store API); none calls out.
 *
 *   STARTED -> RESERVING -> AUTHORIZING -> CONFIRMING -> COMPLETED
 *      \            \             \             \
 *       `------------`-------------`-------------`--> COMPENSATING -> COMPENSATED
 *
 * saga_set_state is the one way to change the state: it refuses any other
 * edge with ERR_STATE and logs "saga ID: A -> B". */
#ifndef ECOM_SAGA_H
#define ECOM_SAGA_H

#include <stdint.h>

#include <jansson.h>

#include "core/log.h"
#include "store/store.h"

enum saga_state {
	SAGA_STARTED,
	SAGA_RESERVING,
	SAGA_AUTHORIZING,
	SAGA_CONFIRMING,
	SAGA_COMPENSATING,
	SAGA_COMPLETED,
	SAGA_COMPENSATED,
	SAGA_NSTATES
};

/* "STARTED", ...; "?" out of range. */
const char *saga_state_name(int state);
/* The state called name, or -1. */
int saga_state_parse(const char *name);
/* 0 when from -> to is an edge of the machine above, else ERR_STATE. */
int saga_edge(int from, int to);
/* 1 for COMPLETED and COMPENSATED. */
int saga_terminal(int state);

/* The steps, in the order a saga may begin them. */
enum saga_step_name {
	SAGA_STEP_RESERVE,    /* inventory: hold the stock */
	SAGA_STEP_AUTHORIZE,  /* payment: authorize the amount */
	SAGA_STEP_ENQUEUE,    /* handed to the order processor */
	SAGA_STEP_CAPTURE,    /* payment: capture */
	SAGA_STEP_COMMIT,     /* inventory: commit the reservation (the pivot) */
	SAGA_STEP_NOTIFY,     /* order.confirmed written to the outbox */
	SAGA_STEP_CLEAR_CART, /* cart: emptied (orders from the cart) */
	SAGA_STEP_VOID,       /* payment: void the authorization */
	SAGA_STEP_REFUND,     /* payment: refund the capture */
	SAGA_STEP_RELEASE,    /* inventory: release the reservation */
	SAGA_NSTEPS
};

/* SAGA_STEP_NONE: no row (never begun). */
enum saga_step_status { SAGA_STEP_NONE, SAGA_STEP_PENDING, SAGA_STEP_SUCCEEDED, SAGA_STEP_FAILED };

const char *saga_step_name(int step);
const char *saga_step_status_name(int status);

#define SAGA_ID_MAX 64
#define SAGA_DETAIL_MAX 160
#define SAGA_REASON_MAX 32

typedef struct saga_step {
	int status;
	int64_t attempts;
	int64_t started_at;
	int64_t at;
	char detail[SAGA_DETAIL_MAX];
} saga_step;

typedef struct saga {
	char order_id[SAGA_ID_MAX];
	int state;
	char reason[SAGA_REASON_MAX]; /* "" until it compensates */
	int cancel_requested;
	int64_t expires_at; /* the reservation lasts at least until then */
	int64_t created_at;
	int64_t updated_at;
	char traceparent[64]; /* the order's trace context ("" when none) */
	saga_step steps[SAGA_NSTEPS];
} saga;

/* Inserts the saga of order_id in STARTED. */
int saga_insert(store *s, const char *order_id, int64_t expires_at, int64_t now);
/* Keeps traceparent (the W3C trace context of the request that placed the
 * order; NULL: none) with the saga, so its later steps continue that
 * trace. */
int saga_set_traceparent(store *s, const char *order_id, const char *traceparent);
/* Reads the saga and its steps. 0, ERR_NOT_FOUND, or a store error. */
int saga_load(store *s, const char *order_id, saga *out);
/* Moves the saga from -> to, with reason (NULL keeps it) when it enters
 * COMPENSATING. ERR_STATE for an edge outside the machine (logged, nothing
 * written); ERR_RETRY when the saga is no longer in from. */
int saga_set_state(store *s, logger *log, const char *order_id, int from, int to,
		   const char *reason, int64_t now);
/* Begins an attempt of step: the row becomes PENDING with one more
 * attempt. */
int saga_step_begin(store *s, const char *order_id, int step, int64_t now);
/* Records step's outcome (PENDING when the attempt had no definite answer)
 * with detail (NULL for none). The row must exist (saga_step_begin). */
int saga_step_end(store *s, const char *order_id, int step, int status, const char *detail,
		  int64_t now);
/* Marks the customer's wish to cancel; the saga acts on it when next
 * advanced. ERR_NOT_FOUND when there is no saga. */
int saga_request_cancel(store *s, const char *order_id, int64_t now);
/* The steps begun, oldest first: [{name, status, attempts, at, detail?}].
 * New reference. */
json_t *saga_steps_json(const saga *sg);

/* ---- the order queue and its leases ----------------------------------------- */

/* Who holds a lease: the instance and the token of this life of it, so
 * that a restarted instance can tell its dead predecessor's leases. */
typedef struct saga_lease {
	const char *owner;
	const char *token;
} saga_lease;

/* Queues order_id due at due_at, leased to l until lease_until (l NULL:
 * not leased). */
int saga_enqueue(store *s, const char *order_id, int64_t due_at, const saga_lease *l,
		 int64_t lease_until, int64_t now);
/* Takes the lease of order_id until lease_until when nobody holds it (or
 * it ran out). 0 when taken, ERR_BUSY when another holds it, ERR_NOT_FOUND
 * when it is not queued. Runs as one statement: no transaction needed. */
int saga_claim(store *s, const char *order_id, const saga_lease *l, int64_t lease_until,
	       int64_t now);
/* Extends l's lease to lease_until: 0, or ERR_STATE when l no longer holds
 * it (it ran out and someone took it), which must abort the caller's
 * transaction. */
int saga_renew(store *s, const char *order_id, const saga_lease *l, int64_t lease_until);
/* Gives the lease back, the saga due again at due_at. ERR_STATE as above. */
int saga_release(store *s, const char *order_id, const saga_lease *l, int64_t due_at);
/* Takes the finished saga off the queue. ERR_STATE as above. */
int saga_dequeue(store *s, const char *order_id, const saga_lease *l);
/* Makes a queued saga due at due_at (sooner only). */
int saga_hurry(store *s, const char *order_id, int64_t due_at);
/* Up to max ids of sagas due by now and not leased into ids (each
 * SAGA_ID_MAX bytes), oldest due first; *n their number. */
int saga_due(store *s, int64_t now, int max, char (*ids)[SAGA_ID_MAX], int *n);
/* Frees every lease owner holds (an instance starting again: its previous
 * life died holding them) and makes those sagas due now. *freed (may be
 * NULL) gets how many. */
int saga_release_owner(store *s, const char *owner, int64_t now, int64_t *freed);

#endif
