/* Integration: the payment service on the real platform. `ecom up` starts
 * the Stripe simulator (its URL in STATE/stripe-sim.url, a row in `ecom
 * status`) and points the payment service at it. A service identity,
 * signed as the order service signs it, authorises, repeats, captures and
 * refunds through the gateway, and the simulator's own counters show one
 * charge; a user or nobody is refused. A Stripe outage set on the simulator
 * leaves a payment PENDING (503) until the retry, with one charge. The
 * simulator killed -9 comes back on the same port. Configuring
 * stripe.base_url (or --no-sims) keeps the simulator from starting. Runs
 * on SQLite, and on PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "../unit/thelp.h"
#include "net/http_client.h"

static int setup(void **unused) { return itest_up(NULL); }

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

static void sim_url(char *buf, size_t len) { assert_int_equal(itest_sim_url(buf, len), 0); }

static json_t *sim_admin(const char *method, const char *path, const char *body)
{
	return itest_sim_admin(method, path, body);
}

static long long sim_stat(const char *name)
{
	long long n = itest_sim_stat(name);
	assert_true(n >= 0);
	return n;
}

static const char *status_of(json_t *v)
{
	const char *s = json_string_value(json_object_get(v, "status"));
	return s ? s : "(none)";
}

/* The body of the payment of order: payment_id "<order>:payment". */
static void pay_body(char *buf, size_t len, const char *order, long amount, const char *token)
{
	snprintf(buf, len,
		 "{\"payment_id\":\"%s:payment\",\"order_id\":\"%s\",\"amount_cents\":%ld,"
		 "\"currency\":\"USD\",\"method\":\"card\",\"token\":\"%s\"}",
		 order, order, amount, token);
}

/* POST /v1/payments as a service; the status, the answer in *out. */
static int pay(const char *order, long amount, const char *token, json_t **out)
{
	char body[512];
	pay_body(body, sizeof(body), order, amount, token);
	return itest_req_service("POST", "/v1/payments", body, out, NULL);
}

static void test_status_lists_the_simulator(void **unused)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(itest_run(&out, &err, "status", "--state", IT.state, "--json", NULL), 0);
	json_t *doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	int found = 0;
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(doc, "instances"), i, row)
	{
		const char *svc = json_string_value(json_object_get(row, "service"));
		if (strcmp(svc, "stripe-sim") == 0) {
			found++;
			assert_string_equal(json_string_value(json_object_get(row, "health")),
					    "healthy");
			char url[256];
			sim_url(url, sizeof(url));
			assert_string_equal(json_string_value(json_object_get(row, "addr")), url);
		}
	}
	assert_int_equal(found, 1);
	json_decref(doc);
	free(out);
	free(err);
	/* Not a service of the platform: the gateway does not list it. */
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/admin/services", NULL, ITEST_TOKEN, &v, NULL), 200);
	char *text = json_dumps(v, JSON_COMPACT);
	assert_non_null(text);
	assert_null(strstr(text, "stripe-sim"));
	free(text);
	json_decref(v);
}

static void test_payment_through_gateway(void **unused)
{
	char body[512];
	pay_body(body, sizeof(body), "ord-1", 2599, "tok_visa");
	json_t *v = NULL;
	/* Nobody: 401. */
	assert_int_equal(itest_req("POST", "/v1/payments", body, NULL, &v, NULL), 401);
	assert_string_equal(itest_err_code(v), "unauthenticated");
	json_decref(v);

	msg_resp r1, r2;
	assert_int_equal(itest_req_service("POST", "/v1/payments", body, &v, &r1), 201);
	assert_string_equal(status_of(v), "AUTHORIZED");
	assert_string_equal(json_string_value(json_object_get(v, "provider")), "stripe");
	assert_memory_equal(json_string_value(json_object_get(v, "provider_ref")), "pi_", 3);
	json_decref(v);
	/* The simulator made the authorisation. */
	assert_int_equal(sim_stat("authorizations"), 1);
	assert_int_equal(sim_stat("intents"), 1);
	/* The same request: the same answer, no second charge. */
	assert_int_equal(itest_req_service("POST", "/v1/payments", body, NULL, &r2), 201);
	assert_int_equal(r1.body_len, r2.body_len);
	assert_memory_equal(r1.body, r2.body, r1.body_len);
	msg_resp_clear(&r1);
	msg_resp_clear(&r2);
	assert_int_equal(sim_stat("intents"), 1);

	assert_int_equal(itest_req_service("POST", "/v1/payments/ord-1:payment/capture", NULL, &v,
					   NULL),
			 200);
	assert_string_equal(status_of(v), "CAPTURED");
	json_decref(v);
	assert_int_equal(sim_stat("captures"), 1);
	assert_int_equal(sim_stat("captured_amount"), 2599);
	assert_int_equal(itest_req_service("POST", "/v1/payments/ord-1:payment/refund",
					   "{\"amount_cents\":599}", &v, NULL),
			 200);
	assert_string_equal(status_of(v), "CAPTURED");
	assert_int_equal(json_integer_value(json_object_get(v, "refunded_cents")), 599);
	json_decref(v);
	assert_int_equal(sim_stat("refunded_amount"), 599);
	assert_int_equal(itest_req_service("GET", "/v1/payments/ord-1:payment", NULL, &v, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(v, "refunds")), 1);
	json_decref(v);

	/* A decline, and a void. */
	assert_int_equal(pay("ord-2", 100, "tok_chargeDeclinedInsufficientFunds", &v), 201);
	assert_string_equal(status_of(v), "DECLINED");
	assert_string_equal(json_string_value(json_object_get(v, "decline_code")),
			    "insufficient_funds");
	json_decref(v);
	assert_int_equal(pay("ord-3", 100, "tok_visa", NULL), 201);
	assert_int_equal(itest_req_service("POST", "/v1/payments/ord-3:payment/void", NULL, &v,
					   NULL),
			 200);
	assert_string_equal(status_of(v), "VOIDED");
	json_decref(v);
	assert_int_equal(sim_stat("cancels"), 1);
}

static void test_outage_then_retry(void **unused)
{
	json_t *f = sim_admin("PUT", "/admin/faults/stripe", "{\"outage\":true}");
	assert_non_null(f);
	json_decref(f);
	long long before = sim_stat("intents");
	char body[512];
	pay_body(body, sizeof(body), "ord-4", 4200, "tok_visa");
	json_t *v = NULL;
	msg_resp r;
	assert_int_equal(itest_req_service("POST", "/v1/payments", body, &v, &r), 503);
	assert_string_equal(itest_err_code(v), "unavailable");
	assert_string_equal(msg_resp_header(&r, "Retry-After"), "1");
	msg_resp_clear(&r);
	json_decref(v);
	assert_int_equal(itest_req_service("GET", "/v1/payments/ord-4:payment", NULL, &v, NULL), 200);
	assert_string_equal(status_of(v), "PENDING");
	json_decref(v);
	f = sim_admin("DELETE", "/admin/faults/stripe", NULL);
	assert_non_null(f);
	json_decref(f);
	assert_int_equal(itest_req_service("POST", "/v1/payments", body, &v, NULL), 201);
	assert_string_equal(status_of(v), "AUTHORIZED");
	json_decref(v);
	assert_int_equal(sim_stat("intents"), before + 1);
}

/* kill -9 the simulator: the supervisor starts it again on the same port,
 * so the payment service still reaches it. */
static void test_simulator_restarts_on_its_port(void **unused)
{
	char url[256];
	sim_url(url, sizeof(url));
	pid_t pid = itest_pid_of("stripe-sim-1");
	assert_true(pid > 0);
	kill(pid, SIGKILL);
	assert_true(itest_wait_gone(pid, 5000));
	int status = 0;
	json_t *v = NULL;
	for (int i = 0; i < 100; i++) {
		json_decref(v);
		status = pay("ord-5", 100, "tok_visa", &v);
		if (status == 201)
			break;
		assert_int_equal(status, 503);
		usleep(100000);
	}
	assert_int_equal(status, 201);
	assert_string_equal(status_of(v), "AUTHORIZED");
	json_decref(v);
	char again[256];
	sim_url(again, sizeof(again));
	assert_string_equal(again, url);
	pid_t now = itest_pid_of("stripe-sim-1");
	assert_true(now > 0 && now != pid);
	itest_remember_pids();
	/* A new simulator: it knows only the new payment. */
	assert_int_equal(sim_stat("intents"), 1);
}

static int has_instance(const char *service)
{
	char *out = NULL;
	int rc = itest_run(&out, NULL, "status", "--state", IT.state, "--json", NULL);
	int found = rc == 0 && out && strstr(out, service) != NULL;
	free(out);
	return found;
}

static void test_configured_stripe_is_not_simulated(void **unused)
{
	/* A configured Stripe (here a loopback port nobody listens on). */
	int port = thelp_closed_port();
	assert_true(port > 0);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	setenv("ECOM_STRIPE_BASE_URL", url, 1);
	setenv("ECOM_STRIPE_SECRET_KEY", "sk_test_configured", 1);
	assert_int_equal(itest_restart(NULL), 0);
	assert_false(has_instance("stripe-sim"));
	assert_true(has_instance("paypal-sim")); /* PayPal's is still simulated */
	assert_true(has_instance("payment"));
	char p[512];
	struct stat sb;
	snprintf(p, sizeof(p), "%s/stripe-sim.url", IT.state);
	assert_int_equal(stat(p, &sb), -1);
	/* The payment service calls the configured URL (it says so in its
	 * log): refused, so PENDING. */
	snprintf(p, sizeof(p), "%s/log/payment-1.log", IT.state);
	char *log = NULL;
	size_t loglen = 0;
	FILE *lf = fopen(p, "r");
	assert_non_null(lf);
	assert_true(getdelim(&log, &loglen, '\0', lf) > 0);
	fclose(lf);
	char want[128];
	snprintf(want, sizeof(want), "card payments go to %s", url);
	assert_non_null(strstr(log, want));
	free(log);
	snprintf(p, sizeof(p), "%s/stripe-sim.url", IT.state);
	json_t *v = NULL;
	assert_int_equal(pay("ord-6", 100, "tok_visa", &v), 503);
	json_decref(v);
	unsetenv("ECOM_STRIPE_BASE_URL");
	unsetenv("ECOM_STRIPE_SECRET_KEY");

	/* --no-sims: nothing simulated, and without a key nothing is sent. */
	setenv("ECOM_STRIPE_SECRET_KEY", "", 1);
	assert_int_equal(itest_restart("--no-sims", NULL), 0);
	assert_false(has_instance("stripe-sim"));
	assert_false(has_instance("paypal-sim"));
	assert_int_equal(stat(p, &sb), -1);
	assert_int_equal(pay("ord-7", 100, "tok_visa", &v), 503);
	json_decref(v);
	unsetenv("ECOM_STRIPE_SECRET_KEY");
	/* Payments made before are kept. */
	assert_int_equal(itest_req_service("GET", "/v1/payments/ord-1:payment", NULL, &v, NULL), 200);
	assert_string_equal(status_of(v), "CAPTURED");
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_lists_the_simulator),
		cmocka_unit_test(test_payment_through_gateway),
		cmocka_unit_test(test_outage_then_retry),
		cmocka_unit_test(test_simulator_restarts_on_its_port),
		cmocka_unit_test(test_configured_stripe_is_not_simulated),
	};
	return cmocka_run_group_tests_name("integration: payment", tests, setup, teardown);
}
