/* Integration: the inventory service as a running platform runs it - two
 * replicas on one database (SQLite files, or the PostgreSQL database named
 * by $ECOM_TEST_STORE), behind the gateway, over real HTTP on loopback.
 *
 * The hot-sku test: 64 client threads reserve one unit at a time of a sku
 * with 1000 on hand until they are refused. Exactly 1000 reservations may
 * succeed, every refusal must be insufficient_stock, and the invariant
 * checker of each replica must find nothing wrong. Then expiry on the real
 * clock, idempotent replays, and `ecom inventory get/set` end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"
#include "net/http_client.h"

#define HOT_UNITS 1000
#define CLIENTS 64

static int setup(void **unused)
{
	return itest_up("--replicas", "inventory=2", NULL);
}

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

/* The base URLs of the inventory instances, from instances.json. */
static int inventory_addrs(char addrs[][256], int max)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/instances.json", IT.state);
	json_t *doc = json_load_file(p, 0, NULL);
	int n = 0;
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
	{
		const char *svc = json_string_value(json_object_get(in, "service"));
		const char *addr = json_string_value(json_object_get(in, "addr"));
		if (svc && addr && strcmp(svc, "inventory") == 0 && n < max)
			snprintf(addrs[n++], 256, "%s", addr);
	}
	json_decref(doc);
	return n;
}

/* One request straight to an instance, bypassing the gateway. */
static int direct(const char *base, const char *method, const char *path, json_t **out,
		  msg_resp *keep)
{
	char url[1400];
	snprintf(url, sizeof(url), "%s%s", base, path);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple(method, url, NULL, ITEST_TOKEN, &r, 10000);
	int status = rc == 0 ? r.status : -1;
	if (out)
		*out = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
	if (keep)
		*keep = r;
	else
		msg_resp_clear(&r);
	return status;
}

static void assert_invariants_everywhere(void)
{
	char addrs[4][256];
	int n = inventory_addrs(addrs, 4);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		json_t *v = NULL;
		assert_int_equal(direct(addrs[i], "GET", "/admin/invariants", &v, NULL), 200);
		if (!json_is_true(json_object_get(v, "ok")))
			fail_msg("invariants on %s: %s", addrs[i], json_dumps(v, JSON_COMPACT));
		assert_int_equal(json_array_size(json_object_get(v, "violations")), 0);
		json_decref(v);
	}
}

typedef struct figures {
	long long on_hand, reserved, available;
} figures;

static figures stock_of(const char *sku)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", path, NULL, NULL, &v, NULL), 200);
	figures g = { json_integer_value(json_object_get(v, "on_hand")),
		      json_integer_value(json_object_get(v, "reserved")),
		      json_integer_value(json_object_get(v, "available")) };
	json_decref(v);
	return g;
}

static int reserve(const char *id, const char *sku, int qty, int ttl, json_t **out, msg_resp *keep)
{
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"reservation_id\":\"%s\",\"order_id\":\"ord-%s\",\"items\":[{\"sku\":\"%s\","
		 "\"qty\":%d}],\"ttl_s\":%d}",
		 id, id, sku, qty, ttl);
	return itest_req("POST", "/v1/reservations", body, ITEST_TOKEN, out, keep);
}

/* ---- tests -------------------------------------------------------------------- */

static void test_stock_through_gateway(void **unused)
{
	/* every catalog sku was stocked on first start, once for both
	 * replicas */
	figures g = stock_of("BOOK-001");
	assert_int_equal(g.on_hand, 100);
	assert_int_equal(g.reserved, 0);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/v1/inventory/NO-SUCH-SKU", NULL, NULL, &v, NULL), 404);
	assert_string_equal(itest_err_code(v), "not_found");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(v, "error"), "details"), "sku")),
			    "NO-SUCH-SKU");
	json_decref(v);

	assert_int_equal(itest_req("PUT", "/v1/inventory/HOT-1", "{\"on_hand\":1000}", NULL, &v, NULL),
			 401);
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/reservations",
			     "{\"reservation_id\":\"x\",\"order_id\":\"o\",\"items\":[{\"sku\":"
			     "\"BOOK-001\",\"qty\":1}],\"ttl_s\":60}",
			     NULL, &v, NULL),
			 401);
	json_decref(v);
	assert_int_equal(itest_req("PUT", "/v1/inventory/HOT-1", "{\"on_hand\":1000}", ITEST_TOKEN, &v,
			     NULL),
			 200);
	assert_int_equal(json_integer_value(json_object_get(v, "available")), 1000);
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/reservations",
			     "{\"reservation_id\":\"bad\",\"order_id\":\"o\",\"items\":[{\"sku\":"
			     "\"BOOK-001\",\"qty\":0}],\"ttl_s\":60}",
			     ITEST_TOKEN, &v, NULL),
			 400);
	assert_string_equal(itest_err_code(v), "invalid_argument");
	json_decref(v);

	/* a reservation and its release, through the gateway */
	assert_int_equal(reserve("gw-1", "BOOK-001", 2, 60, &v, NULL), 201);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "HELD");
	json_decref(v);
	assert_int_equal(stock_of("BOOK-001").available, 98);
	assert_int_equal(itest_req("POST", "/v1/reservations/gw-1/release", NULL, ITEST_TOKEN, &v, NULL),
			 200);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "RELEASED");
	json_decref(v);
	assert_int_equal(stock_of("BOOK-001").available, 100);
}

typedef struct client {
	int index;
	int held;
	int refused;
	int other;
	int last_other;
} client;

static void *hammer(void *arg)
{
	client *c = arg;
	for (int k = 0; k < HOT_UNITS + 10; k++) {
		char id[64];
		snprintf(id, sizeof(id), "hot-%d-%d", c->index, k);
		json_t *v = NULL;
		int status = reserve(id, "HOT-1", 1, 600, &v, NULL);
		const char *code = status == 409 ? itest_err_code(v) : NULL;
		if (status == 201) {
			c->held++;
		} else if (code && strcmp(code, "insufficient_stock") == 0) {
			c->refused++;
			json_decref(v);
			break;
		} else {
			c->other++;
			c->last_other = status;
			json_decref(v);
			break;
		}
		json_decref(v);
	}
	return NULL;
}

static long long instance_counter(const char *base, const char *series)
{
	msg_resp r;
	assert_int_equal(direct(base, "GET", "/metrics", NULL, &r), 200);
	const char *p = r.body ? strstr(r.body, series) : NULL;
	long long v = p ? atoll(p + strlen(series) + 1) : 0;
	msg_resp_clear(&r);
	return v;
}

static void test_hot_sku_never_oversold(void **unused)
{
	const char *series = "inventory_reservations_total{result=\"held\"}";
	char addrs[4][256];
	assert_int_equal(inventory_addrs(addrs, 4), 2);
	long long before = instance_counter(addrs[0], series) + instance_counter(addrs[1], series);

	pthread_t th[CLIENTS];
	client cs[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		cs[i] = (client){ .index = i };
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &cs[i]), 0);
	}
	int held = 0, refused = 0, other = 0, last_other = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		held += cs[i].held;
		refused += cs[i].refused;
		other += cs[i].other;
		if (cs[i].other)
			last_other = cs[i].last_other;
	}
	print_message("hot sku: %d held, %d refused, %d other (last status %d)\n", held, refused,
		      other, last_other);
	assert_int_equal(other, 0);
	assert_int_equal(held, HOT_UNITS);
	assert_int_equal(refused, CLIENTS);
	figures g = stock_of("HOT-1");
	assert_int_equal(g.on_hand, HOT_UNITS);
	assert_int_equal(g.reserved, HOT_UNITS);
	assert_int_equal(g.available, 0);
	assert_invariants_everywhere();

	/* both replicas took a share of the work */
	long long a = instance_counter(addrs[0], series), b = instance_counter(addrs[1], series);
	assert_true(a > 0 && b > 0);
	assert_int_equal(a + b - before, HOT_UNITS);
}

static void test_replay_commit_release(void **unused)
{
	char *first = NULL;
	msg_resp r;
	assert_int_equal(reserve("rep-1", "BOOK-002", 3, 600, NULL, &r), 201);
	first = strndup(r.body, r.body_len);
	msg_resp_clear(&r);
	/* a retry through the gateway, likely to the other replica */
	for (int k = 0; k < 4; k++) {
		assert_int_equal(reserve("rep-1", "BOOK-002", 3, 600, NULL, &r), 201);
		assert_int_equal(r.body_len, strlen(first));
		assert_memory_equal(r.body, first, r.body_len);
		msg_resp_clear(&r);
	}
	free(first);
	json_t *v = NULL;
	assert_int_equal(reserve("rep-1", "BOOK-002", 4, 600, &v, NULL), 422);
	assert_string_equal(itest_err_code(v), "idempotency_mismatch");
	json_decref(v);
	assert_int_equal(stock_of("BOOK-002").reserved, 3);

	assert_int_equal(itest_req("POST", "/v1/reservations/rep-1/commit", NULL, ITEST_TOKEN, &v, NULL),
			 200);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "COMMITTED");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/reservations/rep-1/commit", NULL, ITEST_TOKEN, NULL, NULL),
			 200);
	assert_int_equal(itest_req("POST", "/v1/reservations/rep-1/release", NULL, ITEST_TOKEN, &v, NULL),
			 409);
	assert_string_equal(itest_err_code(v), "conflict");
	json_decref(v);
	figures g = stock_of("BOOK-002");
	assert_int_equal(g.on_hand, 97);
	assert_int_equal(g.reserved, 0);
	assert_int_equal(itest_req("GET", "/v1/reservations/rep-1", NULL, ITEST_TOKEN, &v, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "COMMITTED");
	json_decref(v);
	assert_invariants_everywhere();
}

static void test_expiry_on_the_real_clock(void **unused)
{
	assert_int_equal(reserve("exp-1", "BOOK-003", 7, 1, NULL, NULL), 201);
	assert_int_equal(stock_of("BOOK-003").reserved, 7);
	/* the ticks of the replicas release it soon after a second */
	const char *status = NULL;
	json_t *v = NULL;
	for (int k = 0; k < 80; k++) {
		usleep(100000);
		json_decref(v);
		assert_int_equal(itest_req("GET", "/v1/reservations/exp-1", NULL, ITEST_TOKEN, &v, NULL),
				 200);
		status = json_string_value(json_object_get(v, "status"));
		if (strcmp(status, "HELD") != 0)
			break;
	}
	assert_string_equal(status, "EXPIRED");
	json_decref(v);
	assert_int_equal(stock_of("BOOK-003").reserved, 0);
	assert_int_equal(itest_req("POST", "/v1/reservations/exp-1/commit", NULL, ITEST_TOKEN, &v, NULL),
			 409);
	assert_string_equal(itest_err_code(v), "conflict");
	json_decref(v);
	assert_invariants_everywhere();
}

static void test_cli(void **unused)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(itest_run(&out, NULL, "inventory", "get", "HOT-1", "--state", IT.state, NULL), 0);
	assert_string_equal(out, "HOT-1 on_hand=1000 reserved=1000 available=0\n");
	free(out);
	assert_int_equal(itest_run(&out, NULL, "inventory", "set", "BOOK-004", "42", "--state", IT.state,
			     NULL),
			 0);
	assert_string_equal(out, "BOOK-004 on_hand=42 reserved=0 available=42\n");
	free(out);
	assert_int_equal(stock_of("BOOK-004").on_hand, 42);
	/* --url with the token from the environment, and --json */
	assert_int_equal(itest_run(&out, NULL, "inventory", "get", "BOOK-004", "--json", "--url", IT.url,
			     NULL),
			 0);
	json_t *v = json_loads(out, 0, NULL);
	assert_non_null(v);
	assert_int_equal(json_integer_value(json_object_get(v, "on_hand")), 42);
	json_decref(v);
	free(out);

	/* failures of the operation: exit 1, one line, the API's reason */
	assert_int_equal(itest_run(NULL, &err, "inventory", "get", "NOPE-1", "--state", IT.state, NULL), 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "NOPE-1"));
	assert_non_null(strstr(err, "404"));
	free(err);
	assert_int_equal(itest_run(NULL, &err, "inventory", "set", "HOT-1", "5", "--state", IT.state, NULL),
			 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "reserved"));
	assert_non_null(strstr(err, "409"));
	free(err);
	assert_int_equal(stock_of("HOT-1").on_hand, 1000);

	/* usage errors: exit 2, one line */
	static const char *const bad[][5] = {
		{ "inventory", NULL },
		{ "inventory", "frob", NULL },
		{ "inventory", "get", NULL },
		{ "inventory", "get", "A", "B", NULL },
		{ "inventory", "set", "HOT-1", NULL },
		{ "inventory", "set", "HOT-1", "abc", NULL },
		{ "inventory", "set", "HOT-1", "-3", NULL },
		{ "inventory", "get", "HOT-1", "--bogus", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(itest_run(NULL, &err, bad[i][0], bad[i][1], bad[i][2], bad[i][3],
					   bad[i][4]),
				 2);
		assert_int_equal(itest_count_lines(err), 1);
		free(err);
	}
	assert_int_equal(itest_run(&out, NULL, "inventory", "--help", NULL), 0);
	assert_non_null(strstr(out, "usage: ecom inventory"));
	free(out);
	assert_int_equal(itest_run(&out, NULL, "--help", NULL), 0);
	assert_non_null(strstr(out, "inventory"));
	free(out);
}

static void test_status_lists_replicas(void **unused)
{
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "status", "--state", IT.state, NULL), 0);
	assert_non_null(strstr(out, "inventory-1"));
	assert_non_null(strstr(out, "inventory-2"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stock_through_gateway),
		cmocka_unit_test(test_hot_sku_never_oversold),
		cmocka_unit_test(test_replay_commit_release),
		cmocka_unit_test(test_expiry_on_the_real_clock),
		cmocka_unit_test(test_cli),
		cmocka_unit_test(test_status_lists_replicas),
	};
	return cmocka_run_group_tests_name("integration: inventory", tests, setup, teardown);
}
