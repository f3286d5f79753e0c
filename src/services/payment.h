/* payment: the payment service. It keeps one row per payment in its own
 * database and moves money through the provider of the payment's method
 * (card: Stripe, src/services/stripe.h; paypal: PayPal,
 * src/services/paypal.h; one view of both in src/services/provider.h):
 * authorise, capture, void, refund. The row records its provider, so
 * capture, void and refund go where the authorisation went. Every call to
 * the provider carries an idempotency key derived from the payment_id
 * ("<payment_id>-authorize", "-capture", "-void", "-refund-<refund_id>"),
 * so a call repeated after a lost answer, a crash or a race has exactly
 * one effect at the provider.
 *
 * Routes (all for services or the admin: engine_require_service; a user
 * gets 403, no identity 401):
 *
 *   POST /v1/payments  {payment_id, order_id, amount_cents, currency,
 *                       method: "card" or "paypal", token}
 *       201 payment, status AUTHORIZED or DECLINED (with decline_code).
 *       Idempotent on payment_id: the same request again gets the first
 *       answer again (same status, same bytes), another request with that
 *       payment_id 422 idempotency_mismatch. When the provider cannot be
 *       reached or answers with a transient failure the payment stays
 *       PENDING and the answer is 503 unavailable (Retry-After: 1, details
 *       {payment_id, status: "PENDING"}); repeating the request sends the
 *       authorisation again under the same idempotency key and lands on the
 *       final outcome. When the provider refuses the request itself (an
 *       unknown token, a bad API key) the payment is FAILED and the answer
 *       422 provider_rejected (details {payment_id, status, provider_code}),
 *       also when repeated. Another method is 400 naming the two.
 *   GET  /v1/payments/{id}             200 payment with its refunds; 404
 *   POST /v1/payments/{id}/capture     200 payment CAPTURED
 *   POST /v1/payments/{id}/void        200 payment VOIDED
 *   POST /v1/payments/{id}/refund      [{amount_cents, refund_id}] 200
 *                                      payment: REFUNDED once all of the
 *                                      captured amount is refunded, else
 *                                      CAPTURED with refunded_cents
 *       Repeats answer as the first time: capture of a CAPTURED (or
 *       REFUNDED) payment, void of a VOIDED one, and a refund without an
 *       amount of a REFUNDED one are 200; a void of a DECLINED or FAILED
 *       payment is 200 (nothing is held). A refund with a refund_id seen
 *       before is 200 when the amount is the same, 422 idempotency_mismatch
 *       when not. Capture of VOIDED, DECLINED or FAILED, void of CAPTURED or
 *       REFUNDED (refund it instead), refund of anything not captured, and a
 *       refund above what is left are 409 conflict. A transient provider
 *       failure is 503 with the payment unchanged; repeat the request. A
 *       PENDING payment's authorisation is resolved first (sent again).
 *
 *   POST /v1/webhooks/stripe, /v1/webhooks/paypal   the providers' events,
 *       for anyone whose signature is good (src/services/webhook.h): 200
 *       {received, event_id, type, outcome, payment_id?}; each event id is
 *       applied once (table webhook_events); captures and refunds made at
 *       the provider are recorded. 401 bad signature, 400 not an event,
 *       413 too large, 503 no secret configured.
 *
 * payment: {payment_id, order_id, status, provider: "stripe" or "paypal",
 *           method, amount_cents, currency, captured_cents, refunded_cents,
 *           provider_ref (the PaymentIntent id, PayPal's authorisation, or
 *           null), capture_ref (PayPal's capture, when known), decline_code
 *           (DECLINED only), failure_code (FAILED only), created_at,
 *           updated_at}; GET adds refunds: [{refund_id, amount_cents,
 *           provider_ref, created_at}].
 *
 * Every state change (and every refund) writes an event to the outbox on
 * topic "payments" in the same transaction: payment.authorized,
 * payment.declined, payment.failed, payment.captured, payment.voided,
 * payment.refunded. */
#ifndef ECOM_PAYMENT_H
#define ECOM_PAYMENT_H

#include "services/engine.h"

extern const engine_def payment_engine;

/* A payment's life:
 *
 *   PENDING -> AUTHORIZED | DECLINED | FAILED
 *   AUTHORIZED -> CAPTURED | VOIDED | DECLINED (the capture was declined)
 *   CAPTURED -> REFUNDED
 *
 * PENDING: the provider's answer to the authorisation is not known yet.
 * FAILED: the provider refused the request itself (not the card). */
enum payment_state {
	PAYMENT_PENDING = 0,
	PAYMENT_AUTHORIZED,
	PAYMENT_DECLINED,
	PAYMENT_FAILED,
	PAYMENT_CAPTURED,
	PAYMENT_VOIDED,
	PAYMENT_REFUNDED,
	PAYMENT_NSTATES
};

/* "PENDING", ...; "?" for a value out of range. Never NULL. */
const char *payment_state_name(int state);
/* The state called name, or -1. */
int payment_state_parse(const char *name);
/* 0 when from -> to is an edge of the state machine, ERR_STATE otherwise. */
int payment_state_edge(int from, int to);

#endif
