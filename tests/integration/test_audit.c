/* Integration: `ecom audit`, `ecom seed` and `ecom sim run`'s audit against
 * the real platform (`ecom up`), through the gateway. After orders of every
 * kind (confirmed, declined, cancelled, waiting for a Stripe that is down)
 * every invariant holds (--json too); a captured payment for no order,
 * written straight into the payment service's database, is found with its
 * id and the audit exits 1. A short real load run with checkouts passes
 * its audit_failures == 0 threshold. The same seed makes the same products
 * (another seed others), seeded users log in with the seed's password, and
 * seeding again changes nothing. `ecom demo --list` names the demos. Runs
 * on SQLite, and on PostgreSQL from tests/integration/postgres.sh. */
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
#include "store/store.h"

#define SKU "BOOK-003"

static char token[1024];
static char scn_path[64] = "/tmp/ecom-audit-scn-XXXXXX";

static const char SCENARIO[] = "[scenario]\n"
			       "name = audit-itest\n"
			       "description = Buyers for the audit's integration test.\n"
			       "[load]\n"
			       "rate = 6\n"
			       "duration = 3s\n"
			       "users = 3\n"
			       "settle = 20s\n"
			       "slack = 500ms\n"
			       "[journey buyer]\n"
			       "steps = view checkout\n"
			       "think = 10ms..50ms\n"
			       "[checkout]\n"
			       "tokens = tok_visa:80 tok_chargeDeclined:20\n";

static int setup(void **unused)
{
	/* Cheap password hashes: the load run's users sign up and in. */
	itest_cheap_passwords();
	if (itest_write_temp(scn_path, SCENARIO) != 0 || itest_up(NULL) != 0)
		return -1;
	return itest_signup_login("audit@example.com", token, sizeof(token), NULL, 0);
}

static int teardown(void **unused)
{
	itest_teardown();
	unlink(scn_path);
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void place(const char *key, const char *card, char *id, size_t len, int want)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"payment\":{\"method\":\"card\",\"token\":\"%s\"},"
		 "\"items\":[{\"sku\":\"" SKU "\",\"qty\":1}]}",
		 card);
	json_t *v = NULL;
	int status = itest_req_key("POST", "/v1/orders", body, token, key, &v, NULL);
	if (status != want)
		fail_msg("POST /v1/orders %s: %d, expected %d", key, status, want);
	snprintf(id, len, "%s", jstr(v, "order_id"));
	json_decref(v);
}

/* Waits (up to 20 s) for the order to be CONFIRMED or CANCELLED. */
static void wait_final(const char *id)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s", id);
	for (int i = 0; i < 200; i++) {
		json_t *v = NULL;
		int final = 0;
		if (itest_req("GET", path, NULL, token, &v, NULL) == 200)
			final = strcmp(jstr(v, "status"), "CONFIRMED") == 0 ||
				strcmp(jstr(v, "status"), "CANCELLED") == 0;
		json_decref(v);
		if (final)
			return;
		usleep(100000);
	}
	fail_msg("order %s never ended", id);
}

static void test_audit_holds(void **unused)
{
	char ok[64], declined[64], cancelled[64], waiting[64], path[128];
	place("audit-1", "tok_visa", ok, sizeof(ok), 201);
	place("audit-2", "tok_chargeDeclined", declined, sizeof(declined), 201);
	place("audit-3", "tok_visa", cancelled, sizeof(cancelled), 201);
	snprintf(path, sizeof(path), "/v1/orders/%s/cancel", cancelled);
	json_t *v = NULL;
	int st = itest_req("POST", path, NULL, token, &v, NULL);
	json_decref(v);
	assert_true(st == 200 || st == 202 || st == 409);
	wait_final(ok);
	wait_final(declined);
	wait_final(cancelled);
	/* Stripe down: an order waits, legitimately in flight. */
	v = NULL;
	assert_int_equal(itest_req("PUT", "/admin/faults/stripe", "{\"outage\":true}", ITEST_TOKEN,
				   &v, NULL),
			 200);
	json_decref(v);
	place("audit-4", "tok_visa", waiting, sizeof(waiting), 202);

	char *out = NULL, *err = NULL;
	int rc = itest_run(&out, &err, "audit", "--state", IT.state, NULL);
	if (rc != 0)
		fail_msg("ecom audit: %d\n%s%s", rc, out, err);
	assert_non_null(strstr(out, "✓ orders_settled"));
	assert_non_null(strstr(out, "4 orders: "));
	assert_non_null(strstr(out, "1 in flight (1 AWAITING_PAYMENT)"));
	assert_non_null(strstr(out, "✓ money"));
	assert_non_null(strstr(out, "- notifications"));
	assert_non_null(strstr(out, "every invariant holds"));
	free(out);
	free(err);
	out = NULL;
	rc = itest_run(&out, NULL, "audit", "--url", IT.url, "--json", NULL);
	assert_int_equal(rc, 0);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_array_size(json_object_get(j, "checks")), 6);
	json_decref(j);
	free(out);

	v = NULL;
	assert_int_equal(itest_req("DELETE", "/admin/faults/stripe", NULL, ITEST_TOKEN, &v, NULL),
			 200);
	json_decref(v);
	wait_final(waiting);
	assert_int_equal(itest_run(NULL, NULL, "audit", "--state", IT.state, NULL), 0);
	/* Bad usage. */
	assert_int_equal(itest_run(NULL, NULL, "audit", "--bogus", NULL), 2);
	assert_int_equal(itest_run(NULL, NULL, "audit", "--wait", "soon", NULL), 2);
	assert_int_equal(itest_run(NULL, NULL, "audit", "extra", NULL), 2);
}

static void test_sim_run_audits(void **unused)
{
	char *out = NULL, *err = NULL;
	int rc = itest_run(&out, &err, "sim", "run", scn_path, "--state", IT.state, "--quiet", NULL);
	if (rc != 0)
		fail_msg("ecom sim run: %d\n%s%s", rc, out, err);
	assert_non_null(strstr(out, "audit      6 invariants: 5 ✓, 1 skipped"));
	assert_non_null(strstr(out, "✓ audit_failures == 0"));
	free(out);
	free(err);
}

static json_t *product(const char *sku)
{
	char path[64];
	snprintf(path, sizeof(path), "/v1/products/%s", sku);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", path, NULL, NULL, &v, NULL), 200);
	return v;
}

static void test_seed(void **unused)
{
	assert_int_equal(itest_run(NULL, NULL, "seed", "--products", "40", "--seed", "11",
				   "--state", IT.state, NULL),
			 0);
	json_t *a = product("SYN-00000017"), *a40 = product("SYN-00000040");
	assert_int_equal(itest_run(NULL, NULL, "seed", "--products", "40", "--seed", "12",
				   "--state", IT.state, NULL),
			 0);
	json_t *b = product("SYN-00000017");
	assert_false(json_equal(json_object_get(a, "name"), json_object_get(b, "name")) &&
		     json_equal(json_object_get(a, "price_cents"), json_object_get(b, "price_cents")));
	assert_int_equal(itest_run(NULL, NULL, "seed", "--products", "40", "--seed", "11",
				   "--state", IT.state, NULL),
			 0);
	json_t *c = product("SYN-00000017"), *c40 = product("SYN-00000040");
	static const char *const keys[] = { "sku", "name", "description", "category", "price_cents",
					    "currency" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		assert_true(json_equal(json_object_get(a, keys[i]), json_object_get(c, keys[i])));
		assert_true(json_equal(json_object_get(a40, keys[i]), json_object_get(c40, keys[i])));
	}
	json_decref(a);
	json_decref(a40);
	json_decref(b);
	json_decref(c);
	json_decref(c40);

	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "seed", "--users", "5", "--seed", "11", "--url",
				   IT.url, NULL),
			 0);
	assert_non_null(strstr(out, "seeded 5 users (5 new"));
	free(out);
	assert_int_equal(itest_run(&out, NULL, "seed", "--users", "5", "--seed", "11", "--state",
				   IT.state, NULL),
			 0);
	assert_non_null(strstr(out, "seeded 5 users (0 new"));
	free(out);
	json_t *v = NULL;
	assert_int_equal(itest_req("POST", "/v1/auth/login",
				   "{\"email\":\"syn-11-3@synthetic.ecom.test\","
				   "\"password\":\"synthetic-11\"}",
				   NULL, &v, NULL),
			 200);
	json_decref(v);
	assert_int_equal(itest_run(NULL, NULL, "seed", "--state", IT.state, NULL), 2);
	assert_int_equal(itest_run(NULL, NULL, "seed", "--users", "-1", NULL), 2);
}

static void test_demo_list(void **unused)
{
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "demo", "--list", NULL), 0);
	assert_int_equal(itest_count_lines(out), 4);
	assert_non_null(strstr(out, "payment-outage  (default)"));
	assert_non_null(strstr(out, "flash-sale"));
	assert_non_null(strstr(out, "service-crash"));
	assert_non_null(strstr(out, "catalog"));
	free(out);
	assert_int_equal(itest_run(NULL, NULL, "demo", "no-such-demo", NULL), 2);
	assert_int_equal(itest_run(NULL, NULL, "demo", "catalog", "--duration", "10s", NULL), 2);
}

/* Last: it leaves the platform inconsistent. A captured payment for an
 * order that never existed, written into the payment service's own
 * database, behind the service's back. */
static void test_audit_finds_injected(void **unused)
{
	char err[256];
	store *s = store_open(IT.store, "payment", IT.state, err, sizeof(err));
	if (!s)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_runf(s,
				    "INSERT INTO payments (payment_id, order_id, status, provider, "
				    "method, token, amount_cents, currency, captured_cents, "
				    "fingerprint, created_at, updated_at) VALUES (?, ?, 'CAPTURED', "
				    "'stripe', 'card', 'tok_visa', 1999, 'USD', 1999, 'x', 0, 0)",
				    NULL, "tt", "pay_injected01", "ord_never"),
			 0);
	store_free(s);
	char *out = NULL;
	int rc = itest_run(&out, NULL, "audit", "--state", IT.state, NULL);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "✗ payments_have_orders"));
	assert_non_null(strstr(out, "pay_injected01"));
	assert_non_null(strstr(out, "names order ord_never, which does not exist"));
	assert_non_null(strstr(out, "✗ money"));
	assert_non_null(strstr(out, "✓ orders_settled"));
	assert_non_null(strstr(out, "audit: FAILED"));
	free(out);
	rc = itest_run(&out, NULL, "audit", "--state", IT.state, "--json", NULL);
	assert_int_equal(rc, 1);
	json_t *j = json_loads(out, 0, NULL);
	assert_false(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_integer_value(json_object_get(j, "failed")), 2);
	json_decref(j);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_holds),
		cmocka_unit_test(test_sim_run_audits),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_demo_list),
		cmocka_unit_test(test_audit_finds_injected),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
