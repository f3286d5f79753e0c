/* order_log: the orders a load run placed (POST /v1/orders answered 201 or
 * 202 with an order_id), and what became of each: its status, cancel
 * reason and saga state as read back at the end. An order never read back,
 * or read back as unknown (404), or still open when the run gave up
 * waiting, counts as lost. Not thread-safe. */
#ifndef ECOM_ORDER_LOG_H
#define ECOM_ORDER_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "sim/report.h"

typedef enum order_state {
	OL_UNREAD,    /* not read back yet */
	OL_PENDING,
	OL_AWAITING,  /* AWAITING_PAYMENT */
	OL_CONFIRMED,
	OL_CANCELLED,
	OL_OTHER,     /* a status this generator does not know */
	OL_UNKNOWN    /* the platform answered 404 */
} order_state;

typedef struct order_entry {
	char id[64];
	int user;
	uint64_t arrival;
	int created_status; /* 201 or 202 */
	order_state state;
	char reason[32];    /* cancel_reason when CANCELLED */
	char saga[16];      /* saga.state when the order carries it */
} order_entry;

typedef struct order_log {
	order_entry *v;
	size_t n, cap;
} order_log;

/* An empty log; order_log_free() frees it. */
order_log *order_log_new(void);
void order_log_free(order_log *l);
/* Adds an order (id copied; ERR_INVALID when empty or too long). */
int order_log_add(order_log *l, const char *id, int user, uint64_t arrival, int created_status);
/* Records what reading order i back said: status ("CONFIRMED", ...), NULL
 * for a 404; reason and saga may be NULL. */
void order_log_set(order_log *l, size_t i, const char *status, const char *reason, const char *saga);
/* 1 once order i is CONFIRMED, CANCELLED or unknown: reading it again
 * changes nothing. */
int order_log_final(const order_log *l, size_t i);
/* Counts by state into the report's orders (created, confirmed, ...). */
void order_log_tally(const order_log *l, report_orders *o);

#endif
