/* stripe: the card payment adapter. It speaks Stripe's real API through the
 * engine's outbound call (ctx->call, libcurl on the daemon host): form-encoded
 * POST /v1/payment_intents (amount, currency, payment_method, confirm=true,
 * capture_method=manual), POST /v1/payment_intents/{id}/capture and /cancel,
 * POST /v1/refunds, with `Authorization: Bearer <secret key>`, an
 * Idempotency-Key on every POST and a pinned Stripe-Version. The answer, or
 * its absence, is sorted into four outcomes a payment engine can act on:
 *
 *   STRIPE_OK        done (the intent or refund is in the result)
 *   STRIPE_DECLINED  the card was refused (402 / card_error): final, with
 *                    Stripe's decline_code ("insufficient_funds", ...)
 *   STRIPE_FAILED    transient: no answer (connection refused, timeout,
 *                    transport error), 5xx, 429, 409, api_error, or an answer
 *                    that cannot be read. Retry with the same idempotency key:
 *                    Stripe replays the first result, so one charge at most.
 *   STRIPE_REJECTED  permanent refusal of the request: other 4xx
 *                    (invalid_request_error such as
 *                    payment_intent_unexpected_state, idempotency_error, a bad
 *                    API key). Retrying it unchanged cannot succeed.
 *
 * The base URL and key are configuration (stripe_client_init), so pointing
 * the adapter at Stripe's test mode instead of `ecom sim stripe` changes no
 * code. Stateless and thread-safe: a client is plain data. */
#ifndef ECOM_STRIPE_H
#define ECOM_STRIPE_H

#include <stdint.h>

#include "services/engine.h"

#define STRIPE_API_VERSION "2024-06-20"
#define STRIPE_DEFAULT_BASE_URL "https://api.stripe.com"
#define STRIPE_DEFAULT_TIMEOUT_MS 10000
/* Stripe's limit on an Idempotency-Key. */
#define STRIPE_MAX_IDEMPOTENCY_KEY 255

typedef enum stripe_outcome {
	STRIPE_OK = 0,
	STRIPE_DECLINED,
	STRIPE_FAILED,
	STRIPE_REJECTED
} stripe_outcome;

typedef struct stripe_client {
	engine_ctx *ctx;       /* borrowed: its call, call_ud and log are used */
	char base_url[256];    /* "https://api.stripe.com", or the simulator's */
	char secret_key[128];  /* "sk_test_..." */
	int64_t timeout_ms;    /* per call; <= 0 means STRIPE_DEFAULT_TIMEOUT_MS */
} stripe_client;

typedef struct stripe_result {
	stripe_outcome outcome;
	int http_status;        /* 0 when no answer came back */
	char intent_id[64];     /* "pi_..." (also on declines and state errors) */
	char status[32];        /* the intent's status ("requires_capture", ...), or
				 * the refund's ("succeeded"); "" when unknown */
	char refund_id[64];     /* "re_..." after a refund */
	int64_t amount;         /* the intent's amount, or the amount refunded */
	int64_t amount_received;
	char decline_code[64];  /* on STRIPE_DECLINED: decline_code, else code */
	char error_type[32];    /* Stripe's error.type, "" on success */
	char error_code[64];    /* Stripe's error.code ("card_declined", ...) */
	char message[256];      /* error.message, or what went wrong locally */
	int replayed;           /* 1 when Stripe answered from its idempotency store */
} stripe_result;

/* Fills cl for ctx from the configuration: stripe.base_url (default
 * STRIPE_DEFAULT_BASE_URL), stripe.secret_key (default ""),
 * stripe.timeout_ms (default STRIPE_DEFAULT_TIMEOUT_MS). Keys absent from the
 * configuration take their defaults. ERR_INVALID when ctx is NULL or a value
 * does not fit. */
int stripe_client_init(stripe_client *cl, engine_ctx *ctx);

/* "ok", "declined", "failed", "rejected". */
const char *stripe_outcome_name(stripe_outcome o);

/* Every call fills *out (zeroed first) and returns 0 when a request was made,
 * whatever its outcome; ERR_INVALID for arguments that cannot make a valid
 * request (nothing is sent; out->outcome is STRIPE_REJECTED with the reason
 * in out->message). idem_key: 1..255 printable ASCII characters, required on
 * every POST. currency is sent lower-cased. */

/* Creates and confirms a manual-capture PaymentIntent: STRIPE_OK with status
 * "requires_capture" when the card holds the funds. */
int stripe_authorize(stripe_client *cl, const char *idem_key, int64_t amount,
		     const char *currency, const char *payment_method, stripe_result *out);
/* Captures the whole authorised amount: STRIPE_OK with status "succeeded". */
int stripe_capture(stripe_client *cl, const char *idem_key, const char *intent_id,
		   stripe_result *out);
/* Voids an authorisation: STRIPE_OK with status "canceled". */
int stripe_cancel(stripe_client *cl, const char *idem_key, const char *intent_id,
		  stripe_result *out);
/* Refunds amount (0: everything not yet refunded) of a captured intent:
 * STRIPE_OK with refund_id, amount and status "succeeded". */
int stripe_refund(stripe_client *cl, const char *idem_key, const char *intent_id,
		  int64_t amount, stripe_result *out);
/* Reads an intent (GET, no idempotency key): to learn where one stands after
 * a STRIPE_FAILED. */
int stripe_get(stripe_client *cl, const char *intent_id, stripe_result *out);

#endif
