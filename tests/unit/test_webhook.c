/* Tests for services/webhook (the signature schemes) and sim/webhook_queue
 * (a simulator's outgoing webhooks). Stripe's scheme: a valid header; a
 * tampered body; the wrong secret; no v1 (only v0), no timestamp, no
 * header; a stale timestamp and one too far ahead; two v1 values of which
 * one is right, either way round; junk around the pieces; the signature
 * checked against an independent HMAC (libsodium's one-shot). The PayPal
 * simulator's scheme: valid, tampered body, wrong secret, wrong or missing
 * headers, a bad time, stale, bad base64. The queue: nothing queued without
 * a target, a delivery signed at each attempt, retries after failures with
 * growing delays, given up after WEBHOOK_QUEUE_ATTEMPTS, a bound on what
 * waits, targets refused when malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "net/msg.h"
#include "services/engine.h"
#include "services/webhook.h"
#include "sim/webhook_queue.h"

#define SECRET "whsec_test_secret_0123456789"
#define T 1764112255LL
#define BODY "{\"id\":\"evt_1\",\"type\":\"charge.refunded\"}"

static int verify(const char *secret, const char *header, const char *body, int64_t now)
{
	char why[160] = "";
	int rc = webhook_stripe_verify(secret, header, body, strlen(body), now, 300, why, sizeof(why));
	if (rc)
		assert_true(why[0] != '\0');
	return rc;
}

/* The v1 hex of body at t under secret, computed here with the one-shot
 * HMAC (the module uses the streaming one). */
static void expected_v1(const char *secret, int64_t t, const char *body, char hex[65])
{
	char *msg = NULL;
	assert_true(asprintf(&msg, "%lld.%s", (long long)t, body) > 0);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(hex, 65, mac, sizeof(mac));
	free(msg);
}

static void test_stripe_table(void **state)
{
	(void)state;
	char good[WEBHOOK_SIG_MAX + 32], hex[65], h[512];
	assert_int_equal(webhook_stripe_sign(SECRET, T, BODY, strlen(BODY), good, sizeof(good)), 0);
	expected_v1(SECRET, T, BODY, hex);
	snprintf(h, sizeof(h), "t=%lld,v1=%s", T, hex);
	assert_string_equal(good, h);

	/* valid */
	assert_int_equal(verify(SECRET, good, BODY, T), 0);
	assert_int_equal(verify(SECRET, good, BODY, T + 300), 0);
	assert_int_equal(verify(SECRET, good, BODY, T - 300), 0);
	/* tampered body */
	assert_int_equal(verify(SECRET, good, "{\"id\":\"evt_1\",\"type\":\"charge.refundeD\"}", T),
			 ERR_UNAUTH);
	assert_int_equal(verify(SECRET, good, BODY " ", T), ERR_UNAUTH);
	/* wrong secret */
	assert_int_equal(verify("whsec_other", good, BODY, T), ERR_UNAUTH);
	/* missing v1: only the old scheme, or nothing */
	snprintf(h, sizeof(h), "t=%lld,v0=%s", T, hex);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	snprintf(h, sizeof(h), "t=%lld", T);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	/* no timestamp, no header, an empty one */
	snprintf(h, sizeof(h), "v1=%s", hex);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	assert_int_equal(verify(SECRET, NULL, BODY, T), ERR_UNAUTH);
	assert_int_equal(verify(SECRET, "", BODY, T), ERR_UNAUTH);
	/* stale timestamp (older than 300 s), and one from too far ahead */
	assert_int_equal(verify(SECRET, good, BODY, T + 301), ERR_UNAUTH);
	assert_int_equal(verify(SECRET, good, BODY, T + 86400), ERR_UNAUTH);
	assert_int_equal(verify(SECRET, good, BODY, T - 301), ERR_UNAUTH);
	/* a stale timestamp re-signed with the right secret is fine again */
	char fresh[WEBHOOK_SIG_MAX + 32];
	assert_int_equal(webhook_stripe_sign(SECRET, T + 1000, BODY, strlen(BODY), fresh,
					     sizeof(fresh)),
			 0);
	assert_int_equal(verify(SECRET, fresh, BODY, T + 1000), 0);
	/* a timestamp changed by hand breaks the signature */
	snprintf(h, sizeof(h), "t=%lld,v1=%s", T + 1, hex);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);

	/* two v1 values, one right (a secret being rolled), either order */
	char other[65];
	expected_v1("whsec_old_secret", T, BODY, other);
	snprintf(h, sizeof(h), "t=%lld,v1=%s,v1=%s", T, other, hex);
	assert_int_equal(verify(SECRET, h, BODY, T), 0);
	snprintf(h, sizeof(h), "t=%lld,v1=%s,v1=%s,v0=abc", T, hex, other);
	assert_int_equal(verify(SECRET, h, BODY, T), 0);
	assert_int_equal(verify("whsec_old_secret", h, BODY, T), 0);
	/* two v1 values, neither right */
	snprintf(h, sizeof(h), "t=%lld,v1=%s,v1=%s", T, other, other);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	/* spaces after commas, the timestamp last, unknown pieces */
	snprintf(h, sizeof(h), "v1=%s, x=y, garbage, t=%lld", hex, T);
	assert_int_equal(verify(SECRET, h, BODY, T), 0);
	/* malformed timestamps and signatures */
	snprintf(h, sizeof(h), "t=-5,v1=%s", hex);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	snprintf(h, sizeof(h), "t=12x,v1=%s", hex);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	snprintf(h, sizeof(h), "t=%lld,v1=%.63s", T, hex);
	assert_int_equal(verify(SECRET, h, BODY, T), ERR_UNAUTH);
	/* a header too long to read */
	char *huge = malloc(WEBHOOK_HEADER_MAX + 200);
	assert_non_null(huge);
	int n = snprintf(huge, 200, "t=%lld,v1=%s", T, hex);
	memset(huge + n, 'a', WEBHOOK_HEADER_MAX);
	huge[n + WEBHOOK_HEADER_MAX] = '\0';
	assert_int_equal(verify(SECRET, huge, BODY, T), ERR_UNAUTH);
	free(huge);
	/* no secret: not a verdict on the request */
	char why[64];
	assert_int_equal(webhook_stripe_verify("", good, BODY, strlen(BODY), T, 300, why, sizeof(why)),
			 ERR_INVALID);
	assert_int_equal(webhook_stripe_sign("", T, BODY, 1, good, sizeof(good)), ERR_INVALID);
	assert_int_equal(webhook_stripe_sign(SECRET, T, BODY, 1, good, 10), ERR_INVALID);
}

static int pverify(const char *secret, const char *id, const char *tm, const char *algo,
		   const char *sig, const char *body, int64_t now)
{
	char why[160] = "";
	int rc = webhook_paypal_verify(secret, id, tm, algo, sig, body, strlen(body), now, 300, why,
				       sizeof(why));
	if (rc)
		assert_true(why[0] != '\0');
	return rc;
}

static void test_paypal_scheme(void **state)
{
	(void)state;
	char tm[32], sig[WEBHOOK_SIG_MAX];
	webhook_format_time(T, tm, sizeof(tm));
	assert_string_equal(tm, "2025-11-25T23:10:55Z");
	int64_t back = 0;
	assert_int_equal(webhook_parse_time(tm, &back), 0);
	assert_int_equal(back, T);
	assert_int_equal(webhook_parse_time("2025-11-25T23:10:55.123Z", &back), 0);
	assert_int_equal(back, T);
	assert_int_equal(webhook_parse_time("2025-11-25 23:10:55Z", &back), ERR_PARSE);
	assert_int_equal(webhook_parse_time("2025-11-25T23:10:55+01:00", &back), ERR_PARSE);
	assert_int_equal(webhook_parse_time("2025-13-25T23:10:55Z", &back), ERR_PARSE);
	assert_int_equal(webhook_parse_time("2025-11-25T23:10:55.Z", &back), ERR_PARSE);

	const char *id = "sim-ABC";
	assert_int_equal(webhook_paypal_sign("pp-secret", id, tm, BODY, strlen(BODY), sig, sizeof(sig)),
			 0);
	/* HMAC-SHA256 of "id|time|body", base64 */
	char *msg = NULL;
	assert_true(asprintf(&msg, "%s|%s|%s", id, tm, BODY) > 0);
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)"pp-secret", 9);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
	crypto_auth_hmacsha256_final(&st, mac);
	char b64[64];
	sodium_bin2base64(b64, sizeof(b64), mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
	assert_string_equal(sig, b64);
	free(msg);

	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", sig, BODY, T), 0);
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", sig, BODY " ", T), ERR_UNAUTH);
	assert_int_equal(pverify("other", id, tm, "HMACSHA256", sig, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", "sim-ABD", tm, "HMACSHA256", sig, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, "SHA256withRSA", sig, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, NULL, sig, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", NULL, tm, "HMACSHA256", sig, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, NULL, "HMACSHA256", sig, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, "yesterday", "HMACSHA256", sig, BODY, T),
			 ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", NULL, BODY, T), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", "!!notbase64", BODY, T),
			 ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", "AAAA", BODY, T), ERR_UNAUTH);
	/* stale, and too far ahead */
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", sig, BODY, T + 301), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", sig, BODY, T - 301), ERR_UNAUTH);
	assert_int_equal(pverify("pp-secret", id, tm, "HMACSHA256", sig, BODY, T + 299), 0);
	char why[64];
	assert_int_equal(webhook_paypal_verify("", id, tm, "HMACSHA256", sig, BODY, 1, T, 300, why,
					       sizeof(why)),
			 ERR_INVALID);
}

/* ---- the queue ---------------------------------------------------------------------- */

typedef struct sink {
	int calls;
	int fail_first;      /* answer 500 to the first this many */
	int down;            /* refuse every connection */
	char target[128];
	char path[128];
	char sig[128];
	char body[256];
} sink;

static int sink_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	(void)timeout_ms;
	sink *k = ud;
	k->calls++;
	snprintf(k->target, sizeof(k->target), "%s", target);
	snprintf(k->path, sizeof(k->path), "%s", req->path);
	const char *sig = msg_req_header(req, "X-Test-Sig");
	snprintf(k->sig, sizeof(k->sig), "%s", sig ? sig : "");
	snprintf(k->body, sizeof(k->body), "%.*s", (int)req->body_len, req->body);
	assert_string_equal(msg_req_header(req, "Content-Type"), "application/json; charset=utf-8");
	if (k->down)
		return ERR_UNAVAILABLE;
	msg_resp_set(resp, k->calls <= k->fail_first ? 500 : 200, "application/json", "{}", 2);
	return 0;
}

static int test_sign(void *ud, int64_t now_us, const char *body, size_t len, msg_req *req)
{
	(void)ud, (void)body, (void)len;
	char v[64];
	snprintf(v, sizeof(v), "at-%lld", (long long)(now_us / 1000000));
	return msg_req_add_header(req, "X-Test-Sig", v);
}

static void test_queue(void **state)
{
	(void)state;
	FILE *devnull = fopen("/dev/null", "w");
	clock_src *clock = clock_virtual_new(T * 1000000);
	logger *lg = log_new("test", devnull, clock, LOG_DEBUG);
	sink k = { 0 };
	engine_ctx ctx = { .service = "sim", .clock = clock, .log = lg, .call = sink_call,
			   .call_ud = &k };
	webhook_queue *q = webhook_queue_new(3);
	assert_non_null(q);
	int64_t now = T * 1000000;
	/* no target: dropped */
	assert_int_equal(webhook_queue_push(q, "{\"a\":1}", now), 0);
	assert_int_equal(webhook_queue_set_target(q, "ftp://x/y"), ERR_INVALID);
	assert_int_equal(webhook_queue_set_target(q, "http://127.0.0.1:9"), ERR_INVALID);
	assert_int_equal(webhook_queue_set_target(q, "http:///path"), ERR_INVALID);
	assert_int_equal(webhook_queue_set_target(q, "http://h:1/p q"), ERR_INVALID);
	assert_int_equal(webhook_queue_set_target(q, "http://127.0.0.1:9/v1/webhooks/stripe"), 0);
	json_t *st = webhook_queue_stats(q);
	assert_string_equal(json_string_value(json_object_get(st, "url")),
			    "http://127.0.0.1:9/v1/webhooks/stripe");
	assert_int_equal(json_integer_value(json_object_get(st, "dropped")), 1);
	json_decref(st);

	/* delivered at once, signed at the attempt's time */
	assert_int_equal(webhook_queue_push(q, "{\"a\":1}", now), 1);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now), 1);
	assert_int_equal(k.calls, 1);
	assert_string_equal(k.target, "http://127.0.0.1:9");
	assert_string_equal(k.path, "/v1/webhooks/stripe");
	assert_string_equal(k.body, "{\"a\":1}");
	char want[32];
	snprintf(want, sizeof(want), "at-%lld", T);
	assert_string_equal(k.sig, want);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now), 0);

	/* two failures, then through: after 0.5 s and 1 s, not sooner */
	k.calls = 0;
	k.fail_first = 2;
	assert_int_equal(webhook_queue_push(q, "{\"b\":2}", now), 1);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now), 0);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now + 499999), 0);
	assert_int_equal(k.calls, 1);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now + 500000), 0);
	assert_int_equal(k.calls, 2);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now + 1400000), 0);
	assert_int_equal(k.calls, 2);
	assert_int_equal(webhook_queue_deliver(q, &ctx, test_sign, NULL, now + 1500000), 1);
	assert_int_equal(k.calls, 3);
	snprintf(want, sizeof(want), "at-%lld", T + 1);
	assert_string_equal(k.sig, want);

	/* a receiver that never answers: given up after the attempts, bounded */
	k.calls = 0;
	k.down = 1;
	assert_int_equal(webhook_queue_push(q, "{\"c\":3}", now), 1);
	int64_t t = now;
	for (int i = 0; i < 100; i++, t += 250000)
		webhook_queue_deliver(q, &ctx, test_sign, NULL, t);
	assert_int_equal(k.calls, WEBHOOK_QUEUE_ATTEMPTS);
	st = webhook_queue_stats(q);
	assert_int_equal(json_integer_value(json_object_get(st, "delivered")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "pending")), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "attempts")), 4 + WEBHOOK_QUEUE_ATTEMPTS);
	json_decref(st);

	/* at most max_pending wait; clearing the target drops them */
	for (int i = 0; i < 3; i++)
		assert_int_equal(webhook_queue_push(q, "{}", now), 1);
	assert_int_equal(webhook_queue_push(q, "{}", now), 0);
	assert_int_equal(webhook_queue_set_target(q, ""), 0);
	st = webhook_queue_stats(q);
	assert_int_equal(json_integer_value(json_object_get(st, "pending")), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "dropped")), 5);
	json_decref(st);
	webhook_queue_free(q);
	log_free(lg);
	clock_free(clock);
	fclose(devnull);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stripe_table),
		cmocka_unit_test(test_paypal_scheme),
		cmocka_unit_test(test_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
