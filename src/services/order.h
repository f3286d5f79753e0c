/* order: orders and the checkout saga that fulfils them. The order service
 * prices an order (from the user's cart, re-checked against the catalog, or
 * from an explicit item list), writes the order, its saga and its queue row
 * in one transaction, and orchestrates the saga through other services
 * (engine_call_service, each call with an idempotency key derived from the
 * order): reserve stock -> authorize payment -> enqueue -> (the order
 * processor, the engine's tick, on order.workers threads) capture payment +
 * commit stock -> CONFIRMED, the cart emptied and order.confirmed written
 * to the outbox. Each step is recorded as begun before its call goes out,
 * in the transaction that records the step before it.
 * Failures compensate in reverse (void or refund, then release) -> CANCELLED
 * with a reason. Everything is resumable from the tables (src/services/saga.h):
 * a crash anywhere leaves a saga that the next tick, of this instance or
 * another, finishes.
 *
 * Routes (user identity unless said):
 *   POST /v1/orders                 header Idempotency-Key; {payment: {method,
 *                                   token}, address_id?, items?: [{sku, qty}]}
 *                                   201 order, 202 order while payment is
 *                                   retried (AWAITING_PAYMENT) or a step waits
 *   GET  /v1/orders/{id}            owner (or admin); 200 order
 *   GET  /v1/orders?limit=&page_token=   the caller's, newest first
 *   POST /v1/orders/{id}/cancel     owner; 200 order once compensated, 202
 *                                   while compensating, 409 once confirmed
 *   GET  /admin/sagas?state=&limit= admin; recent sagas
 *   GET  /admin/sagas/{order_id}    admin; the saga, its steps and queue row
 * order: {order_id, user_id, status, items: [{sku, name, qty, price_cents,
 *         line_total_cents}], total_cents, currency, created_at, updated_at,
 *         cancel_reason?, source, address_id?, payment: {method, payment_id},
 *         saga: {state, steps: [{name, status, attempts, at, detail?}]}} */
#ifndef ECOM_ORDER_H
#define ECOM_ORDER_H

#include "services/engine.h"

extern const engine_def order_engine;

/* Order status, an explicit state machine of its own:
 *   PENDING <-> AWAITING_PAYMENT;  PENDING -> CONFIRMED;
 *   PENDING, AWAITING_PAYMENT -> CANCELLED */
enum order_status {
	ORDER_PENDING,
	ORDER_AWAITING_PAYMENT,
	ORDER_CONFIRMED,
	ORDER_CANCELLED,
	ORDER_NSTATUS
};

const char *order_status_name(int status);
/* The status called name, or -1. */
int order_status_parse(const char *name);
/* 0 when from -> to is an edge above, else ERR_STATE. */
int order_status_edge(int from, int to);

#endif
