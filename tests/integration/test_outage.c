/* Integration: the payment outage of the seed's "how do you handle
 * failures?" answer, on the real platform. The payment service is put in
 * an outage (PUT /admin/faults/payment through the gateway): new orders are
 * accepted as AWAITING_PAYMENT (202) with their stock reserved; the order
 * service's breaker to payment opens within its window (seen in GET
 * /admin/breakers, gathered by the gateway), after which calls are refused
 * without reaching the payment service. The fault is cleared: the breaker
 * goes HALF_OPEN and CLOSED again, and every queued order ends CONFIRMED,
 * each authorised and captured exactly once in the Stripe simulator, the
 * stock committed. Small breaker settings for the (order, payment) edge
 * come from resil.edges, so a handful of orders is enough. Runs on SQLite,
 * and on PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

#define ORDERS 6
#define SKU "ELEC-007"

static char token[1024];

static int setup(void **unused)
{
	setenv("ECOM_RESIL_EDGES",
	       "order>payment: breaker.min_calls=3, breaker.window=5, retry.max_attempts=1", 1);
	setenv("ECOM_BREAKER_WAIT_OPEN_MS", "1500", 1);
	setenv("ECOM_ORDER_RETRY_BASE_MS", "100", 1);
	setenv("ECOM_ORDER_RETRY_CAP_MS", "400", 1);
	if (itest_up(NULL) != 0)
		return -1;
	return itest_signup_login("outage@example.com", token, sizeof(token), NULL, 0);
}

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "(none)";
}

/* The state of the order service's breaker to payment, from the gateway's
 * gathered list; "" when there is no such edge yet. */
static void order_payment_breaker(char *state, size_t len, long long *calls)
{
	json_t *v = NULL;
	state[0] = '\0';
	assert_int_equal(itest_req("GET", "/admin/breakers", NULL, ITEST_TOKEN, &v, NULL), 200);
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(v, "breakers"), i, b)
	{
		if (strcmp(jstr(b, "from"), "order") == 0 && strcmp(jstr(b, "to"), "payment") == 0) {
			snprintf(state, len, "%s", jstr(b, "state"));
			if (calls)
				*calls = (long long)json_integer_value(json_object_get(b, "calls"));
		}
	}
	json_decref(v);
}

/* Waits up to ms for the breaker to be in want. */
static int breaker_becomes(const char *want, int ms)
{
	char st[32];
	for (int waited = 0; waited <= ms; waited += 50) {
		order_payment_breaker(st, sizeof(st), NULL);
		if (strcmp(st, want) == 0)
			return 1;
		usleep(50000);
	}
	return 0;
}

static void stock(long long *on_hand, long long *reserved)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/v1/inventory/" SKU, NULL, NULL, &v, NULL), 200);
	*on_hand = (long long)json_integer_value(json_object_get(v, "on_hand"));
	*reserved = (long long)json_integer_value(json_object_get(v, "reserved"));
	json_decref(v);
}

static void test_payment_outage(void **unused)
{
	assert_int_equal(itest_req("PUT", "/v1/inventory/" SKU, "{\"on_hand\":50}", ITEST_TOKEN,
				   NULL, NULL),
			 200);
	long long auths = itest_sim_stat("authorizations"), captures = itest_sim_stat("captures");
	assert_true(auths >= 0 && captures >= 0);

	json_t *v = NULL;
	assert_int_equal(itest_req("PUT", "/admin/faults/payment", "{\"outage\":true}", ITEST_TOKEN,
				   &v, NULL),
			 200);
	json_decref(v);

	/* Orders during the outage: accepted, queued, stock held. */
	char ids[ORDERS][64];
	const char *body = "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"},"
			   "\"items\":[{\"sku\":\"" SKU "\",\"qty\":1}]}";
	for (int i = 0; i < ORDERS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "outage-%d", i);
		v = NULL;
		int status = itest_req_key("POST", "/v1/orders", body, token, key, &v, NULL);
		if (status != 202) {
			char *s = v ? json_dumps(v, 0) : NULL;
			fail_msg("order %d: status %d, expected 202: %s", i, status, s ? s : "");
		}
		assert_string_equal(jstr(v, "status"), "AWAITING_PAYMENT");
		snprintf(ids[i], sizeof(ids[i]), "%s", jstr(v, "order_id"));
		json_decref(v);
	}
	long long on, res;
	stock(&on, &res);
	assert_int_equal(on, 50);
	assert_int_equal(res, ORDERS);
	/* Three failures of at least three calls: the breaker is open, and
	 * nothing was charged. */
	assert_true(breaker_becomes("OPEN", 5000));
	assert_int_equal(itest_sim_stat("authorizations"), auths);

	/* The `ecom breaker list` view says the same. */
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "breaker", "list", "--state", IT.state, NULL), 0);
	assert_non_null(strstr(out, "payment"));
	assert_non_null(strstr(out, "OPEN"));
	free(out);

	/* The outage ends: half open, then closed, and every order goes on. */
	assert_int_equal(itest_req("DELETE", "/admin/faults/payment", NULL, ITEST_TOKEN, NULL, NULL),
			 200);
	int confirmed = 0;
	for (int waited = 0; waited < 30000 && confirmed < ORDERS; waited += 100) {
		confirmed = 0;
		for (int i = 0; i < ORDERS; i++) {
			char path[160];
			snprintf(path, sizeof(path), "/v1/orders/%.63s", ids[i]);
			v = NULL;
			if (itest_req("GET", path, NULL, token, &v, NULL) == 200) {
				const char *st = jstr(v, "status");
				if (strcmp(st, "CANCELLED") == 0)
					fail_msg("order %s was cancelled (%s)", ids[i],
						 jstr(v, "cancel_reason"));
				confirmed += strcmp(st, "CONFIRMED") == 0;
			}
			json_decref(v);
		}
		if (confirmed < ORDERS)
			usleep(100000);
	}
	assert_int_equal(confirmed, ORDERS);
	assert_true(breaker_becomes("CLOSED", 10000));
	/* Each charged once, the stock sold. */
	assert_int_equal(itest_sim_stat("authorizations"), auths + ORDERS);
	assert_int_equal(itest_sim_stat("captures"), captures + ORDERS);
	stock(&on, &res);
	assert_int_equal(on, 50 - ORDERS);
	assert_int_equal(res, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payment_outage),
	};
	return cmocka_run_group_tests_name("integration: payment outage", tests, setup, teardown);
}
