/* Integration: client-side discovery on the real platform (`ecom up` with
 * two instances of the inventory and of the payment service). A
 * checkout's calls from the order service to the inventory
 * (/v1/reservations) and to the payment service (/v1/payments) go to their
 * instances directly: the gateway's per-route request counters do not move
 * while the callees' do. Killing one of the two instances of each callee
 * still lets checkouts complete (the refused connection takes it out of
 * rotation and the other is called). With services.direct_calls = 0 the
 * calls go through the gateway again. Runs on SQLite, and on PostgreSQL
 * from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "net/http_client.h"

#define SKU "ELEC-007"
#define CARD "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"}," \
	     "\"items\":[{\"sku\":\"" SKU "\",\"qty\":1}]}"

static char token[1024];
static int order_seq;

static int setup(void **unused)
{
	unsetenv("ECOM_SERVICES_DIRECT_CALLS");
	if (itest_up("--replicas", "inventory=2,payment=2", NULL) != 0)
		return -1;
	if (itest_signup_login("direct@example.com", token, sizeof(token), NULL, 0) != 0)
		return -1;
	return itest_req("PUT", "/v1/inventory/" SKU, "{\"on_hand\":1000}", ITEST_TOKEN, NULL,
			 NULL) == 200
		       ? 0
		       : -1;
}

static int teardown(void **unused)
{
	itest_teardown();
	unsetenv("ECOM_SERVICES_DIRECT_CALLS");
	return 0;
}

/* The sum of http_requests_total over the routes beginning with one of
 * prefixes (NULL-ended) in the /metrics text of base (a URL). */
static long long requests_at(const char *base, const char *const *prefixes)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/metrics", base);
	msg_resp r;
	msg_resp_init(&r);
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &r, 5000), 0);
	assert_int_equal(r.status, 200);
	long long sum = 0;
	for (const char *line = r.body; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		if (strncmp(line, "http_requests_total{route=\"", 27) == 0)
			for (int i = 0; prefixes[i]; i++) {
				size_t pl = strlen(prefixes[i]);
				if (n > 27 + pl && strncmp(line + 27, prefixes[i], pl) == 0) {
					const char *sp = memchr(line, ' ', n);
					if (sp)
						sum += atoll(sp + 1);
					break;
				}
			}
		line = end ? end + 1 : NULL;
	}
	msg_resp_clear(&r);
	return sum;
}

static const char *const callee_routes[] = { "/v1/reservations", "/v1/payments", NULL };

/* What the gateway forwarded to the inventory and the payment service. */
static long long at_gateway(void) { return requests_at(IT.url, callee_routes); }

/* What the instances of the inventory and the payment service served (the
 * ones alive). */
static long long at_callees(void)
{
	static const char *const ids[] = { "inventory-1", "inventory-2", "payment-1", "payment-2",
					   NULL };
	long long sum = 0;
	for (int i = 0; ids[i]; i++) {
		char file[64], base[256];
		snprintf(file, sizeof(file), "run/%s.addr", ids[i]);
		if (itest_state_file(file, base, sizeof(base)) == 0)
			sum += requests_at(base, callee_routes);
	}
	return sum;
}

/* Places an order and waits (up to 20 s) until it is CONFIRMED. */
static void checkout(void)
{
	char key[64];
	snprintf(key, sizeof(key), "direct-%d", order_seq++);
	json_t *v = NULL;
	int status = -1;
	for (int attempt = 0; attempt < 4; attempt++) {
		json_decref(v);
		v = NULL;
		status = itest_req_key("POST", "/v1/orders", CARD, token, key, &v, NULL);
		if (status != 503 && status != 504 && status != -1)
			break;
	}
	if (status != 201) {
		char *s = v ? json_dumps(v, 0) : NULL;
		fail_msg("POST /v1/orders: status %d, expected 201: %s", status, s ? s : "");
	}
	char path[160];
	snprintf(path, sizeof(path), "/v1/orders/%.63s",
		 json_string_value(json_object_get(v, "order_id")));
	json_decref(v);
	for (int i = 0; i < 400; i++) {
		v = NULL;
		const char *st = "";
		if (itest_req("GET", path, NULL, token, &v, NULL) == 200)
			st = json_string_value(json_object_get(v, "status"));
		int done = st && strcmp(st, "CONFIRMED") == 0;
		if (st && strcmp(st, "CANCELLED") == 0)
			fail_msg("order %s was cancelled", path);
		json_decref(v);
		if (done)
			return;
		usleep(50000);
	}
	fail_msg("order %s was not confirmed in 20 s", path);
}

/* Checkouts until one passes the gateway by (every service has copied
 * the registry; up to 10 s). */
static void until_direct(void)
{
	for (int i = 0; i < 20; i++) {
		long long gw = at_gateway();
		checkout();
		if (at_gateway() == gw)
			return;
		usleep(500000);
	}
	fail_msg("the order service's calls still go through the gateway");
}

static void test_checkout_bypasses_the_gateway(void **unused)
{
	until_direct();
	long long gw = at_gateway(), callees = at_callees();
	for (int i = 0; i < 4; i++)
		checkout();
	assert_int_equal(at_gateway(), gw);
	/* A reservation and its commit, an authorisation and its capture,
	 * each. */
	assert_true(at_callees() - callees >= 4 * 4);
}

static void test_one_instance_killed(void **unused)
{
	pid_t inv = itest_pid_of("inventory-2"), pay = itest_pid_of("payment-2");
	assert_true(inv > 0 && pay > 0);
	assert_int_equal(kill(inv, SIGKILL), 0);
	assert_int_equal(kill(pay, SIGKILL), 0);
	assert_true(itest_wait_gone(inv, 2000));
	assert_true(itest_wait_gone(pay, 2000));
	long long gw = at_gateway();
	for (int i = 0; i < 6; i++)
		checkout(); /* each one CONFIRMED */
	/* The survivors took the calls directly. On a heavily loaded machine
	 * the order service's copy of the registry can have no instance of a
	 * callee in rotation for a moment (then the gateway, the designed
	 * fallback, carries the call): seen once, in a fresh chroot's
	 * distcheck, for half of these calls. So some may go through the
	 * gateway, not all; when any does, the logs say why. */
	long long via = at_gateway() - gw;
	if (via > 0) {
		print_message("note: %lld of the 24 calls went through the gateway\n", via);
		itest_print_log_tail("order-1.log", 40);
		itest_print_log_tail("gateway-1.log", 20);
	}
	assert_true(via < 6 * 4);
	itest_remember_pids();
}

static void test_key_off_goes_through_the_gateway(void **unused)
{
	setenv("ECOM_SERVICES_DIRECT_CALLS", "0", 1);
	assert_int_equal(itest_restart("--replicas", "inventory=2,payment=2", NULL), 0);
	assert_int_equal(itest_signup_login("direct-off@example.com", token, sizeof(token), NULL, 0),
			 0);
	long long gw = at_gateway();
	for (int i = 0; i < 3; i++)
		checkout();
	assert_true(at_gateway() - gw >= 3 * 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkout_bypasses_the_gateway),
		cmocka_unit_test(test_one_instance_killed),
		cmocka_unit_test(test_key_off_goes_through_the_gateway),
	};
	return cmocka_run_group_tests_name("integration: direct service calls", tests, setup,
					   teardown);
}
