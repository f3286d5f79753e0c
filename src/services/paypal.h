/* paypal: the PayPal payment adapter. It speaks PayPal's REST API through
 * the engine's outbound call (engine_call_guarded, callee "paypal": the
 * edge payment -> paypal has its breaker and the request's deadline bounds
 * each call):
 *
 *   POST /v1/oauth2/token                        OAuth2 client credentials:
 *        Basic client_id:secret, grant_type=client_credentials (form)
 *   POST /v2/checkout/orders                     intent AUTHORIZE, one purchase
 *        unit {reference_id, custom_id, amount {currency_code, value "12.34"}},
 *        payment_source.paypal.vault_id = the payment token
 *   POST /v2/checkout/orders/{id}/authorize
 *   GET  /v2/checkout/orders/{id}                (an authorisation made before)
 *   POST /v2/payments/authorizations/{id}/capture
 *   POST /v2/payments/authorizations/{id}/void
 *   POST /v2/payments/captures/{id}/refund      [amount {currency_code, value}]
 *
 * with `Authorization: Bearer <access token>`, JSON bodies, `Prefer:
 * return=representation` and a PayPal-Request-Id on every POST: the
 * caller's key (a key longer than PayPal's 108 characters is replaced by
 * "ecom-" and its SHA-256 in hex, the same every time), so a call repeated
 * after a lost answer gets PayPal's first result instead of acting twice.
 *
 * The access token is cached in the client until shortly before it expires
 * (a quarter of its life, at most a minute, early) and shared by every
 * thread: one caller fetches while the others wait for it (or keep using
 * the old one while it is still valid). A 401 invalid_token (a token PayPal
 * forgot) drops it and the call is sent once more with a new one.
 *
 * Answers are sorted into the outcomes of the Stripe adapter:
 *
 *   PAYPAL_OK        done; the resource is in the result
 *   PAYPAL_DECLINED  the payer's instrument was refused: 422 with the issue
 *                    INSTRUMENT_DECLINED, TRANSACTION_REFUSED or
 *                    PAYER_CANNOT_PAY, an authorisation DENIED, a capture
 *                    DECLINED (also a COMPLETED order whose capture is
 *                    DECLINED); decline_code is the issue or status in
 *                    lower case ("instrument_declined", "capture_declined")
 *   PAYPAL_FAILED    transient: no answer, 5xx, 429, 408, 409, a 401 that a
 *                    new token did not cure, or an answer that cannot be read
 *   PAYPAL_REJECTED  any other 4xx (INVALID_REQUEST, ORDER_NOT_APPROVED,
 *                    AUTHORIZATION_ALREADY_CAPTURED, REFUND_AMOUNT_EXCEEDED,
 *                    bad credentials: invalid_client); issue names it
 *
 * Amounts cross as strings in the currency's unit: 1234 cents of USD is
 * "12.34", 1234 of JPY "1234" (HUF, JPY and TWD have no decimals at
 * PayPal); converted exactly, never through floating point. */
#ifndef ECOM_PAYPAL_H
#define ECOM_PAYPAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "services/engine.h"

#define PAYPAL_DEFAULT_BASE_URL "https://api-m.sandbox.paypal.com"
#define PAYPAL_DEFAULT_TIMEOUT_MS 10000
/* PayPal's limit on PayPal-Request-Id. */
#define PAYPAL_MAX_REQUEST_ID 108
/* The callee name of the adapter's edge in the guard. */
#define PAYPAL_CALLEE "paypal"

typedef enum paypal_outcome {
	PAYPAL_OK = 0,
	PAYPAL_DECLINED,
	PAYPAL_FAILED,
	PAYPAL_REJECTED
} paypal_outcome;

typedef struct paypal_client {
	engine_ctx *ctx;       /* borrowed */
	char base_url[256];
	char client_id[160];
	char secret[160];
	int64_t timeout_ms;
	/* the access token, shared; under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char token[512];
	int64_t token_expires_us;   /* ctx->clock time; 0: none */
	int64_t token_refresh_us;   /* fetch a new one from here on */
	int fetching;
	uint64_t token_fetches;     /* tokens fetched (for tests and logs) */
} paypal_client;

typedef struct paypal_result {
	paypal_outcome outcome;
	int http_status;          /* of the last call; 0 when no answer came */
	char order_id[64];
	char order_status[32];    /* CREATED, APPROVED, COMPLETED, ... */
	char authorization_id[64];
	char capture_id[64];
	char refund_id[64];
	char status[32];          /* the resource's status: authorization CREATED,
				   * DENIED, VOIDED, CAPTURED; capture COMPLETED,
				   * DECLINED, PENDING; refund COMPLETED, ... */
	int64_t amount;           /* the resource's amount in minor units */
	char decline_code[64];
	char error_name[64];      /* PayPal's name ("UNPROCESSABLE_ENTITY") or the
				   * OAuth error ("invalid_client") */
	char issue[64];           /* details[0].issue ("INSTRUMENT_DECLINED") */
	char message[256];
	char debug_id[64];
} paypal_result;

/* Fills cl for ctx from the configuration: paypal.base_url (default
 * PAYPAL_DEFAULT_BASE_URL), paypal.client_id, paypal.secret,
 * paypal.timeout_ms. ERR_INVALID when a value does not fit. Release with
 * paypal_client_clear. */
int paypal_client_init(paypal_client *cl, engine_ctx *ctx);
void paypal_client_clear(paypal_client *cl);

/* "ok", "declined", "failed", "rejected". */
const char *paypal_outcome_name(paypal_outcome o);

/* Every call fills *out (zeroed first) and returns 0 when a request was
 * made, whatever its outcome; ERR_INVALID for arguments that cannot make a
 * valid request (nothing is sent; out->outcome is PAYPAL_REJECTED with the
 * reason in out->message). key: 1..255 printable characters. */

/* Creates an order (intent AUTHORIZE, PayPal-Request-Id "<key>.order") for
 * amount of currency paid with payer (the vault id), custom_id and
 * reference_id = ref (may be NULL), and authorizes it (PayPal-Request-Id
 * key): PAYPAL_OK with authorization_id and status "CREATED" when the
 * funds are held. An order authorized before (ORDER_ALREADY_AUTHORIZED) is
 * read back and its authorisation given. */
int paypal_authorize(paypal_client *cl, const char *key, int64_t amount, const char *currency,
		     const char *payer, const char *ref, paypal_result *out);
/* Captures the whole authorisation: PAYPAL_OK with capture_id, status
 * COMPLETED (or PENDING) and amount. */
int paypal_capture(paypal_client *cl, const char *key, const char *authorization_id,
		   paypal_result *out);
/* Voids an authorisation: PAYPAL_OK (status VOIDED). */
int paypal_void(paypal_client *cl, const char *key, const char *authorization_id,
		paypal_result *out);
/* Refunds amount (0: what is left) of currency of a capture: PAYPAL_OK with
 * refund_id, amount and status. */
int paypal_refund(paypal_client *cl, const char *key, const char *capture_id, int64_t amount,
		  const char *currency, paypal_result *out);

/* Amounts: cents of currency as PayPal's string value, into buf (0 or
 * ERR_INVALID), and back (0, or ERR_PARSE for anything but digits with at
 * most the currency's decimals). */
int paypal_format_amount(int64_t cents, const char *currency, char *buf, size_t len);
int paypal_parse_amount(const char *value, const char *currency, int64_t *cents);
/* Digits after the decimal point of currency at PayPal (2, or 0 for HUF,
 * JPY, TWD). */
int paypal_currency_decimals(const char *currency);

#endif
