/* Integration: PayPal, webhooks and refunds on the real platform. `ecom up`
 * starts the PayPal simulator beside Stripe's (STATE/paypal-sim.url, a row
 * in `ecom status`) and points both simulators' webhooks at the gateway.
 * Through the gateway: a PayPal checkout is CONFIRMED with one capture; a
 * capture whose reply is lost (a latency on the simulator's captures longer
 * than the payment service's PayPal timeout) is asked again under the same
 * PayPal-Request-Id until the reply comes: CONFIRMED, captured once; a
 * refund made at the provider (PayPal's and Stripe's admin routes) comes
 * back as a signed webhook and marks the payment REFUNDED; the admin
 * refunds in part and in full through POST /v1/payments/{id}/refund (a
 * user may not; more than is left is refused); webhooks reach the payment
 * service without a user (signed with STATE/stripe.webhook_secret: 200;
 * unsigned: 401; not JSON: 400); a declined PayPal payer cancels the
 * order; an unknown method is 400 naming the methods; a configured
 * paypal.base_url keeps the simulator from starting. Runs on SQLite, and
 * on PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "services/webhook.h"

#define PP "paypal-sim"

static char token[1024];

static int setup(void **unused)
{
	/* A PayPal call gives up after a second; saga retries come fast. The
	 * lost replies below would open the breakers to PayPal and to payment
	 * (which answers 503 meanwhile), as they should (test_outage shows
	 * breakers at work); here they wait for more calls, so that the later
	 * tests meet closed ones. */
	setenv("ECOM_PAYPAL_TIMEOUT_MS", "1000", 1);
	setenv("ECOM_RESIL_EDGES",
	       "payment>paypal: breaker.min_calls=60, breaker.window=60; "
	       "*>payment: breaker.min_calls=60, breaker.window=60",
	       1);
	setenv("ECOM_ORDER_RETRY_BASE_MS", "100", 1);
	setenv("ECOM_ORDER_RETRY_CAP_MS", "500", 1);
	if (itest_up(NULL) != 0)
		return -1;
	return itest_signup_login("paypal-a@example.com", token, sizeof(token), NULL, 0);
}

static int teardown(void **unused)
{
	itest_teardown();
	unsetenv("ECOM_PAYPAL_TIMEOUT_MS");
	unsetenv("ECOM_RESIL_EDGES");
	unsetenv("ECOM_ORDER_RETRY_BASE_MS");
	unsetenv("ECOM_ORDER_RETRY_CAP_MS");
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "(none)";
}

static long long pp_stat(const char *name)
{
	json_t *v = itest_sim_admin_of(PP, "GET", "/admin/paypal/stats", NULL);
	json_t *n = json_object_get(v, name);
	long long x = json_is_integer(n) ? (long long)json_integer_value(n) : -1;
	json_decref(v);
	assert_true(x >= 0);
	return x;
}

/* Places an order of one BOOK-like item paid by method/token; its id. */
static void place(const char *key, const char *method, const char *tok, int want, char *id,
		  size_t len)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"payment\":{\"method\":\"%s\",\"token\":\"%s\"},\"items\":[{\"sku\":"
		 "\"ELEC-002\",\"qty\":1}]}",
		 method, tok);
	json_t *v = NULL;
	int status = -1;
	for (int attempt = 0; attempt < 4; attempt++) {
		json_decref(v);
		v = NULL;
		status = itest_req_key("POST", "/v1/orders", body, token, key, &v, NULL);
		if (status != 503 && status != 504 && status != -1)
			break;
	}
	if (status != want) {
		char *s = v ? json_dumps(v, 0) : NULL;
		fail_msg("POST /v1/orders (%s): %d, expected %d: %s", key, status, want, s ? s : "");
	}
	if (id)
		snprintf(id, len, "%s", jstr(v, "order_id"));
	json_decref(v);
}

/* GETs path (with tok, admin when NULL) until key has the value want, for
 * up to seconds; the last answer. */
static json_t *poll(const char *path, const char *tok, const char *key, const char *want,
		    int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		json_t *v = NULL;
		if (itest_req("GET", path, NULL, tok ? tok : ITEST_TOKEN, &v, NULL) == 200) {
			if (strcmp(jstr(v, key), want) == 0)
				return v;
		}
		json_decref(v);
		usleep(50000);
	}
	fail_msg("%s: %s did not become %s in %d s", path, key, want, seconds);
	return NULL;
}

/* The order, once it is status (CONFIRMED or CANCELLED: its saga ended). */
static json_t *settled(const char *id, const char *status)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s", id);
	return poll(path, token, "status", status, 30);
}

static void payment_of(json_t *order, char *path, size_t len)
{
	snprintf(path, len, "/v1/payments/%s",
		 jstr(json_object_get(order, "payment"), "payment_id"));
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_simulator_started(void **unused)
{
	char url[256];
	assert_int_equal(itest_sim_url_of(PP, url, sizeof(url)), 0);
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "status", "--state", IT.state, NULL), 0);
	assert_non_null(strstr(out, "paypal-sim-1"));
	assert_non_null(strstr(out, url));
	free(out);
	/* Its webhooks go to the gateway. */
	json_t *v = itest_sim_admin_of(PP, "GET", "/admin/paypal/webhook", NULL);
	assert_non_null(v);
	char want[320];
	snprintf(want, sizeof(want), "%s/v1/webhooks/paypal", IT.url);
	assert_string_equal(jstr(v, "url"), want);
	json_decref(v);
	v = itest_sim_admin("GET", "/admin/stripe/webhook", NULL);
	snprintf(want, sizeof(want), "%s/v1/webhooks/stripe", IT.url);
	assert_string_equal(jstr(v, "url"), want);
	json_decref(v);
}

static void test_paypal_checkout(void **unused)
{
	long long captures = pp_stat("captures");
	char id[64], path[128];
	place("pp-1", "paypal", "paypal_ok", 201, id, sizeof(id));
	json_t *o = settled(id, "CONFIRMED");
	payment_of(o, path, sizeof(path));
	json_decref(o);
	json_t *pay = poll(path, NULL, "status", "CAPTURED", 5);
	assert_string_equal(jstr(pay, "provider"), "paypal");
	assert_string_equal(jstr(pay, "method"), "paypal");
	json_decref(pay);
	assert_int_equal(pp_stat("captures"), captures + 1);
	/* The capture's webhook reached the payment service (already known). */
	for (int i = 0; i < 100; i++) {
		json_t *v = itest_sim_admin_of(PP, "GET", "/admin/paypal/webhook", NULL);
		long long delivered = json_integer_value(json_object_get(v, "delivered"));
		json_decref(v);
		if (delivered >= 1)
			return;
		usleep(50000);
	}
	fail_msg("the capture's webhook was not delivered");
}

static void set_fault(const char *method, const char *body)
{
	json_t *f = itest_sim_admin_of(PP, method, "/admin/faults/paypal.capture", body);
	assert_non_null(f);
	json_decref(f);
}

/* Where the simulator sends its webhooks: the gateway, or nowhere. */
static void webhooks_on(int on)
{
	char body[400];
	snprintf(body, sizeof(body), "{\"url\":\"%s%s\"}", on ? IT.url : "",
		 on ? "/v1/webhooks/paypal" : "");
	json_t *v = itest_sim_admin_of(PP, "PUT", "/admin/paypal/webhook", body);
	assert_non_null(v);
	json_decref(v);
}

/* Captures are made, but their replies come after the payment service gave
 * up (2.5 s against its 1 s). */
static void test_capture_reply_lost(void **unused)
{
	/* Without webhooks: the saga asks again, under the same request id,
	 * until a reply comes. */
	webhooks_on(0);
	long long captures = pp_stat("captures"), replays = pp_stat("replays");
	set_fault("PUT", "{\"latency_ms\":2500}");
	char id[64], path[128];
	place("pp-lost", "paypal", "paypal_ok", 201, id, sizeof(id));
	for (int i = 0; i < 200 && pp_stat("captures") == captures; i++)
		usleep(50000);
	assert_int_equal(pp_stat("captures"), captures + 1);
	sleep(3);
	snprintf(path, sizeof(path), "/v1/orders/%s", id);
	json_t *o = NULL;
	assert_int_equal(itest_req("GET", path, NULL, token, &o, NULL), 200);
	assert_string_equal(jstr(o, "status"), "PENDING");
	json_decref(o);
	assert_true(pp_stat("replays") > replays);
	set_fault("DELETE", NULL);
	json_decref(settled(id, "CONFIRMED"));
	assert_int_equal(pp_stat("captures"), captures + 1);

	/* With webhooks: PayPal's PAYMENT.CAPTURE.COMPLETED tells the payment
	 * service what the lost reply would have; confirmed while the replies
	 * are still slow. */
	webhooks_on(1);
	set_fault("PUT", "{\"latency_ms\":2500}");
	place("pp-lost-2", "paypal", "paypal_ok", 201, id, sizeof(id));
	json_decref(settled(id, "CONFIRMED"));
	json_t *f = itest_sim_admin_of(PP, "GET", "/admin/faults/paypal.capture", NULL);
	assert_non_null(f); /* still set */
	json_decref(f);
	set_fault("DELETE", NULL);
	assert_int_equal(pp_stat("captures"), captures + 2);
	/* The simulator's workers sit out the replies still delayed. */
	sleep(3);
}

/* A refund done at the provider marks the payment refunded here. */
static void test_provider_refunds(void **unused)
{
	char id[64], path[128], body[256];
	place("pp-refund", "paypal", "paypal_ok", 201, id, sizeof(id));
	json_t *o = settled(id, "CONFIRMED");
	payment_of(o, path, sizeof(path));
	json_decref(o);
	json_t *pay = poll(path, NULL, "status", "CAPTURED", 5);
	snprintf(body, sizeof(body), "{\"authorization_id\":\"%s\"}", jstr(pay, "provider_ref"));
	json_decref(pay);
	json_t *r = itest_sim_admin_of(PP, "POST", "/admin/paypal/refund", body);
	assert_non_null(r);
	assert_string_equal(jstr(r, "status"), "COMPLETED");
	json_decref(r);
	pay = poll(path, NULL, "status", "REFUNDED", 15);
	json_decref(pay);

	/* Stripe's too. */
	place("card-refund", "card", "tok_visa", 201, id, sizeof(id));
	o = settled(id, "CONFIRMED");
	payment_of(o, path, sizeof(path));
	json_decref(o);
	pay = poll(path, NULL, "status", "CAPTURED", 5);
	snprintf(body, sizeof(body), "{\"payment_intent\":\"%s\"}", jstr(pay, "provider_ref"));
	json_decref(pay);
	r = itest_sim_admin("POST", "/admin/stripe/refund", body);
	assert_non_null(r);
	json_decref(r);
	pay = poll(path, NULL, "status", "REFUNDED", 15);
	json_decref(pay);
}

static void test_admin_refunds(void **unused)
{
	char id[64], path[128];
	place("pp-admin", "paypal", "paypal_ok", 201, id, sizeof(id));
	json_t *o = settled(id, "CONFIRMED");
	payment_of(o, path, sizeof(path));
	json_decref(o);
	json_decref(poll(path, NULL, "status", "CAPTURED", 5));
	char refund[160];
	snprintf(refund, sizeof(refund), "%s/refund", path);
	json_t *v = NULL;
	/* a user may not */
	assert_int_equal(itest_req("POST", refund, "{\"amount_cents\":100}", token, &v, NULL), 403);
	assert_string_equal(itest_err_code(v), "forbidden");
	json_decref(v);
	assert_int_equal(itest_req("POST", refund, "{\"amount_cents\":100}", ITEST_TOKEN, &v, NULL),
			 200);
	assert_string_equal(jstr(v, "status"), "CAPTURED");
	long long amount = json_integer_value(json_object_get(v, "amount_cents"));
	assert_int_equal(json_integer_value(json_object_get(v, "refunded_cents")), 100);
	json_decref(v);
	char body[64];
	snprintf(body, sizeof(body), "{\"amount_cents\":%lld}", amount);
	assert_int_equal(itest_req("POST", refund, body, ITEST_TOKEN, &v, NULL), 409);
	assert_string_equal(itest_err_code(v), "conflict");
	json_decref(v);
	assert_int_equal(itest_req("POST", refund, "{}", ITEST_TOKEN, &v, NULL), 200);
	assert_string_equal(jstr(v, "status"), "REFUNDED");
	assert_int_equal(json_integer_value(json_object_get(v, "refunded_cents")), amount);
	json_decref(v);
}

/* A POST to the gateway's webhook route with a Stripe-Signature (NULL:
 * none); the status. */
static int stripe_webhook(const char *body, const char *sig, json_t **out)
{
	const char *h[] = { WEBHOOK_STRIPE_HEADER, sig, NULL };
	return itest_req_headers("POST", "/v1/webhooks/stripe", body, NULL, sig ? h : NULL, out,
				 NULL);
}

static void test_webhooks_through_gateway(void **unused)
{
	char secret[256];
	assert_int_equal(itest_state_file("stripe.webhook_secret", secret, sizeof(secret)), 0);
	assert_memory_equal(secret, "whsec_", 6);
	const char *ev = "{\"id\":\"evt_itest_1\",\"type\":\"charge.refunded\",\"data\":{\"object\":"
			 "{\"id\":\"ch_x\",\"payment_intent\":\"pi_nobody\",\"refunds\":{\"data\":["
			 "{\"id\":\"re_x\",\"amount\":1,\"status\":\"succeeded\"}]}}}}";
	char sig[WEBHOOK_SIG_MAX + 32];
	assert_int_equal(webhook_stripe_sign(secret, (int64_t)time(NULL), ev, strlen(ev), sig,
					     sizeof(sig)),
			 0);
	json_t *v = NULL;
	assert_int_equal(stripe_webhook(ev, sig, &v), 200);
	assert_string_equal(jstr(v, "outcome"), "unknown_payment");
	json_decref(v);
	assert_int_equal(stripe_webhook(ev, sig, &v), 200);
	assert_string_equal(jstr(v, "outcome"), "duplicate");
	json_decref(v);
	assert_int_equal(stripe_webhook(ev, NULL, &v), 401);
	assert_string_equal(itest_err_code(v), "unauthenticated");
	json_decref(v);
	const char *junk = "this is not JSON";
	assert_int_equal(webhook_stripe_sign(secret, (int64_t)time(NULL), junk, strlen(junk), sig,
					     sizeof(sig)),
			 0);
	assert_int_equal(stripe_webhook(junk, sig, &v), 400);
	assert_string_equal(itest_err_code(v), "invalid_argument");
	json_decref(v);
	/* PayPal's without its headers */
	assert_int_equal(itest_req("POST", "/v1/webhooks/paypal", "{}", NULL, &v, NULL), 401);
	json_decref(v);
}

static void test_declined_and_bad_method(void **unused)
{
	char id[64];
	place("pp-declined", "paypal", "paypal_declined", 201, id, sizeof(id));
	json_t *o = settled(id, "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "payment_declined");
	json_decref(o);
	json_t *v = NULL;
	assert_int_equal(itest_req_key("POST", "/v1/orders",
				       "{\"payment\":{\"method\":\"cash\",\"token\":\"x\"},\"items\":"
				       "[{\"sku\":\"ELEC-002\",\"qty\":1}]}",
				       token, "pp-cash", &v, NULL),
			 400);
	assert_string_equal(itest_err_code(v), "invalid_argument");
	const char *msg = jstr(json_object_get(v, "error"), "message");
	assert_non_null(strstr(msg, "card"));
	assert_non_null(strstr(msg, "paypal"));
	json_decref(v);
}

/* A configured PayPal is not simulated: the payment service calls it
 * (here nobody listens: 503, PENDING), Stripe's simulator still runs. */
static void test_configured_paypal_is_not_simulated(void **unused)
{
	setenv("ECOM_PAYPAL_BASE_URL", "http://127.0.0.1:9", 1);
	setenv("ECOM_PAYPAL_CLIENT_ID", "configured", 1);
	setenv("ECOM_PAYPAL_SECRET", "configured-secret", 1);
	int rc = itest_restart(NULL);
	unsetenv("ECOM_PAYPAL_BASE_URL");
	unsetenv("ECOM_PAYPAL_CLIENT_ID");
	unsetenv("ECOM_PAYPAL_SECRET");
	assert_int_equal(rc, 0);
	char url[256];
	assert_int_equal(itest_sim_url_of(PP, url, sizeof(url)), -1);
	assert_int_equal(itest_sim_url(url, sizeof(url)), 0);
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "status", "--state", IT.state, NULL), 0);
	assert_null(strstr(out, "paypal-sim"));
	assert_non_null(strstr(out, "stripe-sim"));
	free(out);
	json_t *v = NULL;
	assert_int_equal(itest_req_service("POST", "/v1/payments",
					   "{\"payment_id\":\"pp-conf\",\"order_id\":\"o\","
					   "\"amount_cents\":100,\"currency\":\"USD\","
					   "\"method\":\"paypal\",\"token\":\"paypal_ok\"}",
					   &v, NULL),
			 503);
	assert_string_equal(jstr(json_object_get(json_object_get(v, "error"), "details"), "status"),
			    "PENDING");
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simulator_started),
		cmocka_unit_test(test_paypal_checkout),
		cmocka_unit_test(test_capture_reply_lost),
		cmocka_unit_test(test_provider_refunds),
		cmocka_unit_test(test_admin_refunds),
		cmocka_unit_test(test_webhooks_through_gateway),
		cmocka_unit_test(test_declined_and_bad_method),
		cmocka_unit_test(test_configured_paypal_is_not_simulated),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
