/* webhook: the signature schemes of the payment providers' webhooks, for
 * the payment service (which verifies) and the simulators (which sign).
 * Pure: no I/O, time comes in as an argument.
 *
 * Stripe (its documented scheme): the header
 *
 *     Stripe-Signature: t=1764112255,v1=5257a869...,v1=...,v0=...
 *
 * where each v1 is the lower-case hex HMAC-SHA256, keyed with the
 * endpoint's secret ("whsec_..." as it is written), of "<t>.<raw body>".
 * Several v1 values may come (Stripe signs with the old and the new secret
 * while a secret is being rolled); one that matches is enough. Other
 * schemes (v0) are ignored. t must be within the tolerance of now.
 *
 * PayPal (the simulator's scheme; PayPal itself signs with a certificate
 * and CRC32, which a shared-secret simulator cannot imitate usefully):
 *
 *     PAYPAL-TRANSMISSION-ID:   a unique id of this delivery
 *     PAYPAL-TRANSMISSION-TIME: RFC 3339 UTC ("2025-11-25T23:10:55Z")
 *     PAYPAL-AUTH-ALGO:         HMACSHA256
 *     PAYPAL-TRANSMISSION-SIG:  base64 of HMAC-SHA256, keyed with the
 *                               shared webhook secret, of
 *                               "<transmission id>|<transmission time>|<raw body>"
 *
 * and the transmission time must be within the tolerance of now.
 *
 * Comparisons of signatures are constant-time (libsodium's sodium_memcmp). */
#ifndef ECOM_WEBHOOK_H
#define ECOM_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define WEBHOOK_STRIPE_HEADER "Stripe-Signature"
#define WEBHOOK_PAYPAL_ID_HEADER "PAYPAL-TRANSMISSION-ID"
#define WEBHOOK_PAYPAL_TIME_HEADER "PAYPAL-TRANSMISSION-TIME"
#define WEBHOOK_PAYPAL_SIG_HEADER "PAYPAL-TRANSMISSION-SIG"
#define WEBHOOK_PAYPAL_ALGO_HEADER "PAYPAL-AUTH-ALGO"
#define WEBHOOK_PAYPAL_ALGO "HMACSHA256"
/* Stripe's default tolerance, in seconds. */
#define WEBHOOK_DEFAULT_TOLERANCE_S 300
/* A Stripe-Signature header, or a PayPal transmission id, longer than this
 * is refused unread. */
#define WEBHOOK_HEADER_MAX 2048
/* Room for a signature value written by the sign functions below. */
#define WEBHOOK_SIG_MAX 128

/* "t=<t>,v1=<hex>" for body signed with secret at t (seconds since the
 * epoch), into buf. 0, or ERR_INVALID (no secret, buf too small). */
int webhook_stripe_sign(const char *secret, int64_t t, const char *body, size_t len, char *buf,
			size_t buflen);

/* Checks a Stripe-Signature header (NULL: absent) against body. 0 when it
 * carries t within tolerance_s of now_s (either side) and a v1 that is the
 * signature under secret; otherwise ERR_UNAUTH with why filled (a sentence:
 * no header, no timestamp, no v1, stale timestamp, no match). ERR_INVALID
 * without a secret. */
int webhook_stripe_verify(const char *secret, const char *header, const char *body, size_t len,
			  int64_t now_s, int64_t tolerance_s, char *why, size_t whylen);

/* The PAYPAL-TRANSMISSION-SIG value for a delivery (base64, into buf of at
 * least WEBHOOK_SIG_MAX bytes). 0 or ERR_INVALID. */
int webhook_paypal_sign(const char *secret, const char *transmission_id,
			const char *transmission_time, const char *body, size_t len, char *buf,
			size_t buflen);

/* Checks the PayPal headers (each may be NULL: absent) against body: the
 * algorithm is HMACSHA256, the time is RFC 3339 within tolerance_s of now_s,
 * and the signature matches. 0, or ERR_UNAUTH with why filled; ERR_INVALID
 * without a secret. */
int webhook_paypal_verify(const char *secret, const char *transmission_id,
			  const char *transmission_time, const char *algo, const char *sig,
			  const char *body, size_t len, int64_t now_s, int64_t tolerance_s,
			  char *why, size_t whylen);

/* "YYYY-MM-DDTHH:MM:SS[.frac]Z" -> seconds since the epoch. 0 or
 * ERR_PARSE. */
int webhook_parse_time(const char *s, int64_t *out_s);
/* now_s as "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
void webhook_format_time(int64_t now_s, char *buf, size_t len);

#endif
