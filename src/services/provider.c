/* provider: Stripe's and PayPal's answers in one shape. */
#include "services/provider.h"
#include "core/err.h"
#include "services/payment.h"

#include <stdio.h>
#include <string.h>

enum op { OP_AUTHORIZE, OP_CAPTURE, OP_VOID, OP_REFUND };

int providers_init(providers *pv, engine_ctx *ctx, char *err, size_t errlen)
{
	memset(pv, 0, sizeof(*pv));
	if (stripe_client_init(&pv->stripe, ctx) != 0) {
		snprintf(err, errlen, "stripe.base_url or stripe.secret_key is too long");
		return ERR_INVALID;
	}
	if (paypal_client_init(&pv->paypal, ctx) != 0) {
		paypal_client_clear(&pv->paypal);
		snprintf(err, errlen, "paypal.base_url, paypal.client_id or paypal.secret is too long");
		return ERR_INVALID;
	}
	return 0;
}

void providers_clear(providers *pv)
{
	if (pv)
		paypal_client_clear(&pv->paypal);
}

const char *provider_for_method(const char *method)
{
	if (method && strcmp(method, "card") == 0)
		return "stripe";
	if (method && strcmp(method, "paypal") == 0)
		return "paypal";
	return NULL;
}

const char *provider_outcome_name(int outcome)
{
	static const char *const names[] = { "ok", "declined", "failed", "rejected" };
	return outcome >= 0 && outcome <= PROVIDER_REJECTED ? names[outcome] : "unknown";
}

static int is_paypal(const char *provider) { return provider && strcmp(provider, "paypal") == 0; }

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src))

/* ---- Stripe ------------------------------------------------------------------------ */

static int intent_state(const char *status)
{
	if (strcmp(status, "requires_capture") == 0)
		return PAYMENT_AUTHORIZED;
	if (strcmp(status, "succeeded") == 0)
		return PAYMENT_CAPTURED;
	if (strcmp(status, "canceled") == 0)
		return PAYMENT_VOIDED;
	return -1;
}

static void from_stripe(const stripe_result *sr, enum op op, provider_result *out)
{
	memset(out, 0, sizeof(*out));
	out->outcome = (int)sr->outcome;
	COPY(out->ref, sr->intent_id);
	COPY(out->refund_ref, sr->refund_id);
	COPY(out->status, sr->status);
	COPY(out->decline_code, sr->decline_code);
	COPY(out->error_code, sr->error_code);
	COPY(out->error_type, sr->error_type);
	COPY(out->message, sr->message);
	out->state = op == OP_REFUND ? -1 : intent_state(sr->status);
	out->amount = op == OP_CAPTURE ? sr->amount_received : op == OP_REFUND ? sr->amount : 0;
	if (op == OP_AUTHORIZE && sr->outcome == STRIPE_OK && out->state != PAYMENT_AUTHORIZED) {
		/* An intent this service cannot complete (one that needs the
		 * customer's action, say). */
		COPY(out->error_code, "unsupported_intent_status");
		snprintf(out->message, sizeof(out->message),
			 "the payment intent is %.31s, which this service cannot complete", sr->status);
	}
}

/* ---- PayPal ------------------------------------------------------------------------ */

static void from_paypal(const paypal_result *pr, enum op op, provider_result *out)
{
	memset(out, 0, sizeof(*out));
	out->outcome = (int)pr->outcome;
	COPY(out->ref, pr->authorization_id[0] ? pr->authorization_id : pr->order_id);
	COPY(out->capture_ref, pr->capture_id);
	COPY(out->refund_ref, pr->refund_id);
	COPY(out->status, pr->status);
	COPY(out->decline_code, pr->decline_code);
	COPY(out->error_code, pr->issue[0] ? pr->issue : pr->error_name);
	COPY(out->error_type, pr->error_name);
	COPY(out->message, pr->message);
	out->amount = op == OP_CAPTURE || op == OP_REFUND ? pr->amount : 0;
	out->state = -1;
	if (pr->outcome == PAYPAL_OK)
		out->state = op == OP_AUTHORIZE ? PAYMENT_AUTHORIZED
			     : op == OP_CAPTURE ? PAYMENT_CAPTURED
			     : op == OP_VOID	? PAYMENT_VOIDED
						: -1;
	else if (strcmp(pr->issue, "AUTHORIZATION_ALREADY_CAPTURED") == 0)
		out->state = PAYMENT_CAPTURED;
	else if (strcmp(pr->issue, "AUTHORIZATION_VOIDED") == 0)
		out->state = PAYMENT_VOIDED;
}

/* ---- calls -------------------------------------------------------------------------- */

int provider_authorize(providers *pv, const char *provider, const char *key, int64_t amount,
		       const char *currency, const char *token, const char *payment_id,
		       provider_result *out)
{
	int rc;
	if (is_paypal(provider)) {
		paypal_result pr;
		rc = paypal_authorize(&pv->paypal, key, amount, currency, token, payment_id, &pr);
		from_paypal(&pr, OP_AUTHORIZE, out);
	} else {
		stripe_result sr;
		rc = stripe_authorize(&pv->stripe, key, amount, currency, token, &sr);
		from_stripe(&sr, OP_AUTHORIZE, out);
	}
	return rc;
}

/* capture and void: an action on the authorisation. */
static int act(providers *pv, const char *provider, const char *key, const char *ref, enum op op,
	       provider_result *out)
{
	int rc;
	if (is_paypal(provider)) {
		paypal_result pr;
		rc = (op == OP_CAPTURE ? paypal_capture : paypal_void)(&pv->paypal, key, ref, &pr);
		from_paypal(&pr, op, out);
	} else {
		stripe_result sr;
		rc = (op == OP_CAPTURE ? stripe_capture : stripe_cancel)(&pv->stripe, key, ref, &sr);
		from_stripe(&sr, op, out);
	}
	return rc;
}

int provider_capture(providers *pv, const char *provider, const char *key, const char *ref,
		     provider_result *out)
{
	return act(pv, provider, key, ref, OP_CAPTURE, out);
}

int provider_void(providers *pv, const char *provider, const char *key, const char *ref,
		  provider_result *out)
{
	return act(pv, provider, key, ref, OP_VOID, out);
}

int provider_refund(providers *pv, const char *provider, const char *key, const char *ref,
		    const char *capture_ref, const char *capture_key, int64_t amount,
		    const char *currency, provider_result *out)
{
	if (!is_paypal(provider)) {
		stripe_result sr;
		int rc = stripe_refund(&pv->stripe, key, ref, amount, &sr);
		from_stripe(&sr, OP_REFUND, out);
		return rc;
	}
	paypal_result pr;
	char capture[64];
	COPY(capture, capture_ref ? capture_ref : "");
	if (!capture[0]) {
		/* The capture's answer was lost (or the capture was learnt of
		 * another way): the same request id gets it again. */
		int rc = paypal_capture(&pv->paypal, capture_key, ref, &pr);
		if (rc != 0 || pr.outcome != PAYPAL_OK || !pr.capture_id[0]) {
			from_paypal(&pr, OP_CAPTURE, out);
			if (rc == 0 && out->outcome == PROVIDER_OK) {
				out->outcome = PROVIDER_REJECTED;
				COPY(out->message, "PayPal did not say which capture to refund");
			}
			out->state = -1;
			return rc;
		}
		COPY(capture, pr.capture_id);
	}
	int rc = paypal_refund(&pv->paypal, key, capture, amount, currency, &pr);
	from_paypal(&pr, OP_REFUND, out);
	COPY(out->capture_ref, capture);
	return rc;
}
