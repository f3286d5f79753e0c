/* provider: the payment service's one view of its payment providers. A
 * payment row names its provider ("stripe" for method card, "paypal" for
 * method paypal) and every call goes to that provider's adapter
 * (src/services/stripe.h, src/services/paypal.h); the answer comes back in
 * one shape, with the adapters' four outcomes and the state of the payment
 * as the provider has it, so the payment engine's logic does not depend on
 * whose API it spoke.
 *
 * What the references are:
 *   stripe  ref = the PaymentIntent ("pi_..."); capture_ref unused; refunds
 *           are made on the intent.
 *   paypal  ref = the authorisation (or the order, when none was made);
 *           capture_ref = the capture, which refunds are made on.
 *
 * Idempotency keys are the caller's; the adapters send them as
 * Idempotency-Key (Stripe) or PayPal-Request-Id (PayPal; creating the
 * order uses "<key>.order"). */
#ifndef ECOM_PROVIDER_H
#define ECOM_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "services/engine.h"
#include "services/paypal.h"
#include "services/stripe.h"

enum provider_outcome {
	PROVIDER_OK = 0,
	PROVIDER_DECLINED,
	PROVIDER_FAILED,
	PROVIDER_REJECTED
};

typedef struct provider_result {
	int outcome;            /* enum provider_outcome */
	int state;              /* enum payment_state as the provider has the payment,
				 * or -1 when its answer does not say */
	char ref[64];           /* see above */
	char capture_ref[64];
	char refund_ref[64];
	char status[32];        /* the provider's own status word */
	int64_t amount;         /* captured (capture) or refunded (refund) */
	char decline_code[64];
	char error_code[64];    /* Stripe's error.code, PayPal's issue */
	char error_type[64];    /* Stripe's error.type, PayPal's name */
	char message[256];
} provider_result;

typedef struct providers {
	stripe_client stripe;
	paypal_client paypal;
} providers;

/* Both adapters for ctx from the configuration. ERR_INVALID with err filled
 * when a value does not fit. Release with providers_clear. */
int providers_init(providers *pv, engine_ctx *ctx, char *err, size_t errlen);
void providers_clear(providers *pv);

/* The provider of a payment method ("card" -> "stripe", "paypal" ->
 * "paypal"), or NULL. */
const char *provider_for_method(const char *method);
/* The methods, for messages: "\"card\" or \"paypal\"". */
#define PROVIDER_METHODS "\"card\" or \"paypal\""

/* "ok", "declined", "failed", "rejected". */
const char *provider_outcome_name(int outcome);

/* Every call fills *out and returns 0 when a request was made, whatever
 * its outcome; ERR_INVALID when the adapter refused to send (its
 * configuration, an argument), with out->message saying why.
 *
 * authorize: state AUTHORIZED on PROVIDER_OK when the funds are held.
 * capture:   state CAPTURED, amount the captured amount; a refusal saying
 *            the payment was captured or voided already carries that state.
 * void:      state VOIDED; likewise.
 * refund:    refund_ref and amount. PayPal refunds need the capture: when
 *            capture_ref is "", the capture is asked for again under
 *            capture_key (PayPal answers a repeated capture with the first),
 *            and out->capture_ref says which it was. */
int provider_authorize(providers *pv, const char *provider, const char *key, int64_t amount,
		       const char *currency, const char *token, const char *payment_id,
		       provider_result *out);
int provider_capture(providers *pv, const char *provider, const char *key, const char *ref,
		     provider_result *out);
int provider_void(providers *pv, const char *provider, const char *key, const char *ref,
		  provider_result *out);
int provider_refund(providers *pv, const char *provider, const char *key, const char *ref,
		    const char *capture_ref, const char *capture_key, int64_t amount,
		    const char *currency, provider_result *out);

#endif
