/* paypal_sim: PayPal of the outside world, simulated. A stateful engine
 * ("paypal-sim", served by `ecom sim paypal`) speaking the subset of
 * PayPal's REST API that the paypal adapter (src/services/paypal.h) uses,
 * in PayPal's shapes:
 *
 *   POST /v1/oauth2/token                          Basic client_id:secret,
 *                                                  grant_type=client_credentials
 *   POST /v2/checkout/orders                       intent AUTHORIZE, one
 *        purchase unit {amount {currency_code, value}, reference_id,
 *        custom_id, invoice_id}, payment_source.paypal.vault_id (the payer)
 *   GET  /v2/checkout/orders/{id}
 *   POST /v2/checkout/orders/{id}/authorize
 *   GET  /v2/payments/authorizations/{id}
 *   POST /v2/payments/authorizations/{id}/capture  [amount, final_capture]
 *   POST /v2/payments/authorizations/{id}/void
 *   GET  /v2/payments/captures/{id}
 *   POST /v2/payments/captures/{id}/refund         [amount]
 *   GET  /v2/payments/refunds/{id}
 *
 * /v2 needs `Authorization: Bearer <access token>` from /v1/oauth2/token;
 * tokens expire after paypal_sim.token_ttl_s (PayPal's 9 hours by default;
 * tests set seconds), then 401 invalid_token. Any client id and secret are
 * accepted unless paypal_sim.client_id and paypal_sim.secret are set.
 *
 * The payer is the order's payment_source.paypal.vault_id, one of the test
 * payers: paypal_ok (approves), paypal_declined (authorize: 422
 * INSTRUMENT_DECLINED), paypal_refused (422 TRANSACTION_REFUSED),
 * paypal_cannot_pay (422 PAYER_CANNOT_PAY), paypal_denied (the order
 * COMPLETED with its authorisation DENIED), paypal_capture_declined
 * (authorised; the capture comes back DECLINED). Any other vault id is 400
 * INVALID_PARAMETER_VALUE. An order with a payer is APPROVED at once (the
 * payer approved it beforehand, as with a vaulted wallet), without one it
 * stays CREATED and cannot be authorised (422 ORDER_NOT_APPROVED).
 *
 * Idempotency as PayPal's: a POST to /v2 with a PayPal-Request-Id seen
 * before (for the same client) gets the first answer again, status and
 * bytes, when the path and body are the same; another path or body is 422
 * DUPLICATE_REQUEST_ID. Answers are stored once the call acted or refused
 * on business grounds (2xx, 422), kept paypal_sim.request_id_ttl_s and at
 * most paypal_sim.max_request_ids (the oldest forgotten first).
 *
 * Operators (admin token): faults with PUT/GET/DELETE /admin/faults/paypal
 * (every call) or /admin/faults/paypal.<op> (op: token, create, authorize,
 * capture, void, refund, get: only those calls; the more specific one wins),
 * applied before anything else; an injected latency is returned in the
 * STRIPE_SIM_DELAY_HEADER header and waited out by the host after the call
 * acted, so a latency longer than the client's timeout is a lost reply.
 * GET /admin/paypal/stats counts; GET/PUT /admin/paypal/webhook {url} reads
 * and sets where webhooks go; POST /admin/paypal/refund {capture_id or
 * authorization_id, amount_cents?} refunds from PayPal's side.
 *
 * Webhooks (when a target and paypal.webhook_secret are set): every capture
 * sends PAYMENT.CAPTURE.COMPLETED (or .DECLINED), every refund
 * PAYMENT.CAPTURE.REFUNDED, signed as src/services/webhook.h says, from the
 * tick, retried a few times (src/sim/webhook_queue.h).
 *
 * State lives in memory behind one mutex (needs_store = 0), bounded by
 * paypal_sim.max_orders (then 503). */
#ifndef ECOM_PAYPAL_SIM_H
#define ECOM_PAYPAL_SIM_H

#include "services/engine.h"

extern const engine_def paypal_sim_engine;

#define PAYPAL_SIM_TOKEN_TTL_S 32400
#define PAYPAL_SIM_MAX_ORDERS 200000
#define PAYPAL_SIM_MAX_REQUEST_IDS 100000
#define PAYPAL_SIM_REQUEST_ID_TTL_S 21600

#endif
