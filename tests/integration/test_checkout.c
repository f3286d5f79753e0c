/* Integration: checkout on the real platform, through the gateway, with
 * the Stripe simulator that `ecom up` starts. A user signs up, fills a cart
 * and orders: the order is CONFIRMED (polled), the stock committed, the
 * payment captured in the simulator, the cart emptied; the order is listed
 * and its saga readable by the admin through the gateway. A declined card
 * cancels with the stock released; an order beyond the stock cancels with
 * no authorisation at all. The same Idempotency-Key twice, and from six
 * clients at once, makes one order and one charge. The order service is
 * killed -9 while a saga waits on a slow Stripe: the supervisor restarts
 * it, the new process takes the saga back and finishes it, charged once.
 * Runs on SQLite, and on PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "store/store.h"

#define CARD "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"}}"

static char token_a[1024], user_a[128];

static int setup(void **unused)
{
	if (itest_up(NULL) != 0)
		return -1;
	return itest_signup_login("checkout-a@example.com", token_a, sizeof(token_a), user_a,
				  sizeof(user_a));
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

static long long jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* A client that, like any, repeats its request (same key) when the
 * gateway says it could not get an answer in time: the gateway's pool
 * workers block while they proxy, and nested calls through it can wait on
 * each other until its upstream timeout. */
static int post_retrying(const char *key, const char *body, json_t **out)
{
	int status = -1;
	for (int attempt = 0; attempt < 4; attempt++) {
		json_decref(*out);
		*out = NULL;
		status = itest_req_key("POST", "/v1/orders", body, token_a, key, out, NULL);
		if (status != 503 && status != 504 && status != -1)
			break;
	}
	return status;
}

static json_t *place(const char *key, const char *body, int want)
{
	json_t *v = NULL;
	int status = post_retrying(key, body, &v);
	if (status != want) {
		char *s = v ? json_dumps(v, 0) : NULL;
		fail_msg("POST /v1/orders (%s): status %d, expected %d: %s", key, status, want,
			 s ? s : "");
	}
	return v;
}

/* Polls the order until its saga has ended (up to 20 s); returns it. */
static json_t *wait_settled(const char *id)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s", id);
	for (int i = 0; i < 400; i++) {
		json_t *v = NULL;
		if (itest_req("GET", path, NULL, token_a, &v, NULL) == 200) {
			const char *st = jstr(json_object_get(v, "saga"), "state");
			if (strcmp(st, "COMPLETED") == 0 || strcmp(st, "COMPENSATED") == 0)
				return v;
		}
		json_decref(v);
		usleep(50000);
	}
	fail_msg("order %s did not settle in 20 s", id);
	return NULL;
}

static void stock(const char *sku, long long *on_hand, long long *reserved)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/inventory/%s", sku);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", path, NULL, NULL, &v, NULL), 200);
	*on_hand = jint(v, "on_hand");
	*reserved = jint(v, "reserved");
	json_decref(v);
}

static void put_item(const char *sku, int qty)
{
	char path[128], body[32];
	snprintf(path, sizeof(path), "/v1/cart/items/%s", sku);
	snprintf(body, sizeof(body), "{\"qty\":%d}", qty);
	assert_int_equal(itest_req("PUT", path, body, token_a, NULL, NULL), 200);
}

static size_t cart_lines(void)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/v1/cart", NULL, token_a, &v, NULL), 200);
	size_t n = json_array_size(json_object_get(v, "items"));
	json_decref(v);
	return n;
}

static long long sim(const char *name)
{
	long long n = itest_sim_stat(name);
	assert_true(n >= 0);
	return n;
}

static json_t *step_of(json_t *order, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(json_object_get(order, "saga"), "steps"), i, s)
		if (strcmp(jstr(s, "name"), name) == 0)
			return s;
	return NULL;
}

static void test_cart_checkout_confirmed(void **unused)
{
	long long on1, res1, on3, res3, on, res;
	stock("ELEC-001", &on1, &res1);
	stock("ELEC-003", &on3, &res3);
	long long captures = sim("captures"), amount = sim("captured_amount");
	put_item("ELEC-001", 2);
	put_item("ELEC-003", 1);
	json_t *o = place("checkout-1", CARD, 201);
	assert_string_equal(jstr(o, "user_id"), user_a);
	assert_string_equal(jstr(o, "status"), "PENDING");
	long long total = jint(o, "total_cents");
	assert_true(total > 0);
	char id[64];
	snprintf(id, sizeof(id), "%s", jstr(o, "order_id"));
	json_decref(o);

	o = wait_settled(id);
	assert_string_equal(jstr(o, "status"), "CONFIRMED");
	assert_string_equal(jstr(json_object_get(o, "saga"), "state"), "COMPLETED");
	assert_string_equal(jstr(step_of(o, "commit"), "status"), "SUCCEEDED");
	json_decref(o);
	stock("ELEC-001", &on, &res);
	assert_int_equal(on, on1 - 2);
	assert_int_equal(res, res1);
	stock("ELEC-003", &on, &res);
	assert_int_equal(on, on3 - 1);
	assert_int_equal(sim("captures"), captures + 1);
	assert_int_equal(sim("captured_amount"), amount + total);
	assert_int_equal(cart_lines(), 0);

	/* Listed, newest first; the saga through the gateway for the admin. */
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/v1/orders?limit=5", NULL, token_a, &v, NULL), 200);
	assert_string_equal(jstr(json_array_get(json_object_get(v, "items"), 0), "order_id"), id);
	json_decref(v);
	char path[128];
	snprintf(path, sizeof(path), "/admin/sagas/%s", id);
	assert_int_equal(itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL), 200);
	assert_string_equal(jstr(v, "state"), "COMPLETED");
	assert_true(json_array_size(json_object_get(v, "steps")) >= 6);
	json_decref(v);
	assert_int_equal(itest_req("GET", "/admin/sagas?state=COMPLETED", NULL, ITEST_TOKEN, &v,
				   NULL),
			 200);
	assert_true(json_array_size(json_object_get(v, "items")) >= 1);
	json_decref(v);
	assert_int_equal(itest_req("GET", path, NULL, token_a, &v, NULL), 403);
	json_decref(v);
	/* The gateway's own admin routes are still its own. */
	assert_int_equal(itest_req("GET", "/admin/services", NULL, ITEST_TOKEN, NULL, NULL), 200);
}

static void test_declined_and_out_of_stock(void **unused)
{
	long long on, res, on2, res2;
	stock("ELEC-002", &on, &res);
	long long auths = sim("authorizations"), captures = sim("captures");
	json_t *o = place("checkout-declined",
			  "{\"payment\":{\"method\":\"card\",\"token\":\"tok_chargeDeclined\"},"
			  "\"items\":[{\"sku\":\"ELEC-002\",\"qty\":1}]}",
			  201);
	char id[64];
	snprintf(id, sizeof(id), "%s", jstr(o, "order_id"));
	json_decref(o);
	o = wait_settled(id);
	assert_string_equal(jstr(o, "status"), "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "payment_declined");
	json_decref(o);
	stock("ELEC-002", &on2, &res2);
	assert_int_equal(on2, on);
	assert_int_equal(res2, res);
	assert_int_equal(sim("captures"), captures);

	/* More than there is: no authorisation at all. */
	assert_int_equal(itest_req("PUT", "/v1/inventory/ELEC-004", "{\"on_hand\":1}", ITEST_TOKEN,
				   NULL, NULL),
			 200);
	auths = sim("authorizations");
	o = place("checkout-oos",
		  "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"},"
		  "\"items\":[{\"sku\":\"ELEC-004\",\"qty\":2}]}",
		  201);
	snprintf(id, sizeof(id), "%s", jstr(o, "order_id"));
	json_decref(o);
	o = wait_settled(id);
	assert_string_equal(jstr(o, "status"), "CANCELLED");
	assert_string_equal(jstr(o, "cancel_reason"), "out_of_stock");
	assert_null(step_of(o, "authorize"));
	json_decref(o);
	assert_int_equal(sim("authorizations"), auths);
	stock("ELEC-004", &on, &res);
	assert_int_equal(on, 1);
	assert_int_equal(res, 0);
}

#define CLIENTS 6

typedef struct client {
	int status;
	char id[64];
} client;

static void *concurrent_post(void *arg)
{
	client *c = arg;
	json_t *v = NULL;
	c->status = post_retrying("checkout-race",
				  "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"},"
				  "\"items\":[{\"sku\":\"ELEC-005\",\"qty\":1}]}",
				  &v);
	snprintf(c->id, sizeof(c->id), "%s", jstr(v, "order_id"));
	json_decref(v);
	return NULL;
}

static void test_same_key_one_order(void **unused)
{
	long long auths = sim("authorizations"), captures = sim("captures");
	const char *body = "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"},"
			   "\"items\":[{\"sku\":\"ELEC-001\",\"qty\":1}]}";
	json_t *a = place("checkout-twice", body, 201);
	json_t *b = place("checkout-twice", body, 201);
	assert_string_equal(jstr(a, "order_id"), jstr(b, "order_id"));
	json_decref(b);
	b = place("checkout-twice",
		  "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"},"
		  "\"items\":[{\"sku\":\"ELEC-001\",\"qty\":2}]}",
		  422);
	assert_string_equal(itest_err_code(b), "idempotency_mismatch");
	json_decref(b);
	assert_int_equal(itest_req_key("POST", "/v1/orders", body, token_a, NULL, &b, NULL), 400);
	json_decref(b);
	json_decref(wait_settled(jstr(a, "order_id")));
	json_decref(a);

	pthread_t t[CLIENTS];
	client c[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		c[i] = (client){ 0 };
		assert_int_equal(pthread_create(&t[i], NULL, concurrent_post, &c[i]), 0);
	}
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < CLIENTS; i++) {
		if (c[i].status != 201 && c[i].status != 202)
			fail_msg("client %d: status %d", i, c[i].status);
		assert_string_equal(c[i].id, c[0].id);
	}
	json_t *o = wait_settled(c[0].id);
	assert_string_equal(jstr(o, "status"), "CONFIRMED");
	json_decref(o);
	assert_int_equal(sim("authorizations"), auths + 2);
	assert_int_equal(sim("captures"), captures + 2);
}

typedef struct slow_post {
	int status;
	int killed; /* set (under mu) once the order service was killed */
	pthread_mutex_t mu;
} slow_post;

/* Places the order, again with its key while no answer comes (see
 * post_retrying), until the test has killed the service under it. */
static void *post_in_flight(void *arg)
{
	slow_post *sp = arg;
	for (int attempt = 0; attempt < 4; attempt++) {
		sp->status = itest_req_key("POST", "/v1/orders", CARD, token_a, "checkout-kill", NULL,
					   NULL);
		pthread_mutex_lock(&sp->mu);
		int killed = sp->killed;
		pthread_mutex_unlock(&sp->mu);
		if (killed || (sp->status != 503 && sp->status != 504 && sp->status != -1))
			break;
	}
	return NULL;
}

/* The id of the order placed with key whose saga is in state, read from
 * the order service's database (the service itself may be too busy to
 * answer a poll in time: a worker blocked on an upstream holds up the
 * other connections libmicrohttpd gave that thread). "" when none. */
static void order_in_state(store *db, const char *key, const char *state, const char *begun,
			   char *id, size_t len)
{
	id[0] = '\0';
	int rc = 0;
	/* With begun, the saga must also have recorded that step's call (the
	 * state changes one transaction before that record). */
	store_stmt *st =
		begun ? store_queryf(db,
				     "SELECT o.order_id FROM orders o JOIN saga s ON "
				     "s.order_id = o.order_id JOIN saga_step t ON t.order_id = "
				     "o.order_id WHERE o.idem_key = ? AND s.state = ? AND t.name = ? "
				     "AND t.attempts > 0",
				     &rc, "ttt", key, state, begun)
		      : store_queryf(db,
				     "SELECT o.order_id FROM orders o JOIN saga s ON "
				     "s.order_id = o.order_id WHERE o.idem_key = ? AND s.state = ?",
				     &rc, "tt", key, state);
	if (st && store_step(st) == STORE_ROW)
		snprintf(id, len, "%s", store_col_text(st, 0));
	store_reset(st);
}

static void test_kill_order_mid_saga(void **unused)
{
	long long auths = sim("authorizations"), captures = sim("captures");
	long long on, res, on2, res2;
	stock("ELEC-006", &on, &res);
	put_item("ELEC-006", 1);
	json_t *f = itest_sim_admin("PUT", "/admin/faults/stripe", "{\"latency_ms\":3000}");
	assert_non_null(f);
	json_decref(f);
	char err[256] = "";
	store *db = store_open(IT.store, "order", IT.state, err, sizeof(err));
	if (!db)
		fail_msg("opening the order store: %s", err);
	pthread_t t;
	slow_post sp = { .mu = PTHREAD_MUTEX_INITIALIZER };
	assert_int_equal(pthread_create(&t, NULL, post_in_flight, &sp), 0);
	/* Wait until the saga waits on the payment (Stripe is slow): in
	 * AUTHORIZING with the authorize call recorded, so that the call the
	 * kill interrupts is its first attempt. */
	char id[64] = "";
	for (int i = 0; i < 2000 && !id[0]; i++) {
		order_in_state(db, "checkout-kill", "AUTHORIZING", "authorize", id, sizeof(id));
		if (!id[0])
			usleep(10000);
	}
	store_free(db);
	assert_true(id[0]);
	pid_t victim = itest_pid_of("order-1");
	assert_true(victim > 0);
	pthread_mutex_lock(&sp.mu);
	sp.killed = 1;
	pthread_mutex_unlock(&sp.mu);
	assert_int_equal(kill(victim, SIGKILL), 0);
	assert_true(itest_wait_gone(victim, 5000));
	pthread_join(t, NULL);
	/* The client saw the process die under its request. */
	assert_true(sp.status == 503 || sp.status == -1);
	f = itest_sim_admin("DELETE", "/admin/faults/stripe", NULL);
	assert_non_null(f);
	json_decref(f);

	/* The supervisor brings the order service back; it finishes the saga. */
	json_t *o = wait_settled(id);
	assert_string_equal(jstr(o, "status"), "CONFIRMED");
	assert_true(jint(step_of(o, "authorize"), "attempts") >= 2);
	json_decref(o);
	pid_t now = itest_pid_of("order-1");
	assert_true(now > 0 && now != victim);
	itest_remember_pids();
	assert_int_equal(sim("authorizations"), auths + 1);
	assert_int_equal(sim("captures"), captures + 1);
	stock("ELEC-006", &on2, &res2);
	assert_int_equal(on2, on - 1);
	assert_int_equal(res2, res);
	assert_int_equal(cart_lines(), 0);
	/* The client's retry with its key finds the order. */
	json_t *again = place("checkout-kill", CARD, 201);
	assert_string_equal(jstr(again, "order_id"), id);
	json_decref(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cart_checkout_confirmed),
		cmocka_unit_test(test_declined_and_out_of_stock),
		cmocka_unit_test(test_same_key_one_order),
		cmocka_unit_test(test_kill_order_mid_saga),
	};
	return cmocka_run_group_tests_name("integration: checkout", tests, setup, teardown);
}
