/* stripe_sim: the card processor of the outside world, simulated. A
 * stateful engine ("stripe-sim") speaking the subset of Stripe's API that the
 * stripe adapter (src/services/stripe.h) uses, in Stripe's own shapes, so the
 * adapter can be pointed at it or at Stripe's test mode by configuration
 * alone:
 *
 *   POST /v1/payment_intents               amount, currency, payment_method,
 *                                          confirm, capture_method, metadata[k]
 *   GET  /v1/payment_intents/{id}
 *   POST /v1/payment_intents/{id}/capture  amount_to_capture
 *   POST /v1/payment_intents/{id}/cancel   cancellation_reason
 *   POST /v1/refunds                       payment_intent, amount, reason, metadata[k]
 *
 * Requests are form-encoded and need `Authorization: Bearer sk_test_...`;
 * answers are Stripe's JSON objects ("payment_intent", "refund") or its
 * error shape {"error": {type, code, decline_code, message, param, ...}}.
 * The test cards of API.md decide the outcome (tok_visa approves,
 * tok_chargeDeclined and tok_chargeDeclinedInsufficientFunds decline, with
 * Stripe's pm_card_* and tok_visa_* aliases). POSTs honour Idempotency-Key as
 * Stripe does: the first response is stored for 24 hours (engine clock) and
 * replayed for the same request; the same key with other parameters is a
 * 400 idempotency_error.
 *
 * Operators (admin token) set faults with PUT/DELETE/GET /admin/faults/stripe
 * (src/resil/fault.h), applied to every /v1 request, and read counters at
 * GET /admin/stripe/stats. An engine never sleeps: an injected latency is
 * returned in the STRIPE_SIM_DELAY_HEADER response header and the host waits
 * that long before sending the response (see stripe_sim_delay_us).
 *
 * State lives in memory behind one mutex (needs_store = 0) and is bounded:
 * at most max_intents intents (then 503), at most max_idempotency_keys
 * stored responses (the oldest are forgotten first). */
#ifndef ECOM_STRIPE_SIM_H
#define ECOM_STRIPE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "net/msg.h"
#include "services/engine.h"

extern const engine_def stripe_sim_engine;

/* Response header carrying the injected delay in microseconds. The host
 * sleeps that long before sending and should not pass the header on. */
#define STRIPE_SIM_DELAY_HEADER "X-Sim-Delay-Us"
/* Set (to "1") on the 503 of an injected outage; a host may drop the
 * connection instead of answering, which is what an outage looks like. */
#define STRIPE_SIM_OUTAGE_HEADER "X-Sim-Outage"

/* Defaults of the limits; the configuration keys stripe_sim.max_intents,
 * stripe_sim.max_idempotency_keys and stripe_sim.idempotency_ttl_s override
 * them when they exist. */
#define STRIPE_SIM_MAX_INTENTS 1000000
#define STRIPE_SIM_MAX_IDEMPOTENCY_KEYS 100000
#define STRIPE_SIM_IDEMPOTENCY_TTL_S 86400

/* The delay a response asks its host to wait before sending it, from
 * STRIPE_SIM_DELAY_HEADER: microseconds, 0 when absent or malformed. */
int64_t stripe_sim_delay_us(const msg_resp *resp);
/* Sets that header on resp (nothing for delay_us <= 0): for simulators,
 * which return the latency they inject instead of sleeping. */
void stripe_sim_set_delay(msg_resp *resp, int64_t delay_us);

/* Replaces the limits of a running simulator (eng from
 * stripe_sim_engine.create); 0 keeps a limit as it is. Lowering the number of
 * idempotency keys forgets the oldest at once; intents above a lowered
 * max_intents stay, but no new one is created until there is room. For
 * hosts that size the simulator themselves and for tests. */
void stripe_sim_set_limits(void *eng, size_t max_intents, size_t max_idempotency_keys);

#endif
