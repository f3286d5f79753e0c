/* Integration test of the bus's consumers through the real binary: `ecom
 * up` (on $ECOM_TEST_STORE or SQLite) with the SMTP and SMS sinks it
 * starts. A customer checks out through the gateway: the order is
 * CONFIRMED and its confirmation email is in the SMTP sink (read through
 * its HTTP API) with the order id in the body, and a text in the SMS sink;
 * the analytics service counts the order, the catalog recommends what was
 * bought together, and, its breaker tripped, the gateway answers
 * recommendations stale with source "fallback". Then the SMTP sink is
 * taken out (`ecom fault set smtp --outage`, through the gateway): the
 * next confirmation is retried and dead-lettered (`ecom queue list`), the
 * sink comes back, `ecom queue replay notifications.email` sends it, once.
 * The checkout and its email again with `--bus kafka://` against `ecom sim
 * kafka`. Waits are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "net/http_client.h"

#include "itest.h"

#define WAIT_MS 30000
#define CART_SKUS 2

static const char *const SKUS[CART_SKUS] = { "BOOK-001", "BOOK-002" };
static pid_t kafka_pid;
static char token[1024], user[128];

/* ---- helpers -------------------------------------------------------------------- */

/* The first line of STATE/name (malloc'd), or NULL. */
static char *state_file(const char *name)
{
	char buf[1024];
	return itest_state_file(name, buf, sizeof(buf)) == 0 ? strdup(buf) : NULL;
}

/* GET path on the simulator whose URL is in STATE/file, as admin. */
static json_t *sim_get(const char *file, const char *path)
{
	char *base = state_file(file);
	if (!base)
		fail_msg("no %s in the state directory", file);
	char url[1200];
	snprintf(url, sizeof(url), "%s%s", base, path);
	free(base);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple("GET", url, NULL, ITEST_TOKEN, &r, 5000);
	json_t *v = rc == 0 && r.status == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	msg_resp_clear(&r);
	return v;
}

/* The messages of the SMTP sink whose text contains s. */
static long long emails(const char *s, json_t **first)
{
	char path[256];
	snprintf(path, sizeof(path), "/admin/smtp/messages?contains=%s", s);
	json_t *v = sim_get("smtp-sim.url", path);
	long long n = v ? json_integer_value(json_object_get(v, "total")) : -1;
	if (first)
		*first = json_incref(json_array_get(json_object_get(v, "items"), 0));
	json_decref(v);
	return n;
}

static long long texts(const char *s)
{
	char path[256];
	snprintf(path, sizeof(path), "/admin/sms/messages?contains=%s", s);
	json_t *v = sim_get("sms-sim.url", path);
	long long n = v ? json_integer_value(json_object_get(v, "total")) : -1;
	json_decref(v);
	return n;
}

/* Waits until emails(s) is n (bounded). */
static void wait_emails(const char *s, long long n)
{
	long long got = -1;
	for (int64_t until = clock_mono_us() + WAIT_MS * 1000LL; clock_mono_us() < until;) {
		if ((got = emails(s, NULL)) == n)
			return;
		usleep(100000);
	}
	fail_msg("%lld emails containing %s, expected %lld", got, s, n);
}

static void customer(const char *email)
{
	assert_int_equal(itest_signup_login(email, token, sizeof(token), user, sizeof(user)), 0);
	json_t *v = NULL;
	assert_int_equal(itest_req("PATCH", "/v1/users/me", "{\"phone\":\"+4930123456\"}", token, &v, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(v, "phone")), "+4930123456");
	json_decref(v);
}

/* Fills the cart, checks out and waits for CONFIRMED; the order id into id. */
static void checkout(const char *key, char *id, size_t len)
{
	for (int i = 0; i < CART_SKUS; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/v1/cart/items/%s", SKUS[i]);
		json_t *v = NULL;
		assert_int_equal(itest_req("PUT", path, "{\"qty\":1}", token, &v, NULL), 200);
		json_decref(v);
	}
	json_t *v = NULL;
	int status = -1;
	for (int attempt = 0; attempt < 4 && status != 201 && status != 202; attempt++) {
		json_decref(v);
		v = NULL;
		status = itest_req_key("POST", "/v1/orders",
				       "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"}}", token,
				       key, &v, NULL);
	}
	if (status != 201 && status != 202)
		fail_msg("POST /v1/orders: %d", status);
	snprintf(id, len, "%s", json_string_value(json_object_get(v, "order_id")));
	json_decref(v);
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s", id);
	for (int64_t until = clock_mono_us() + WAIT_MS * 1000LL; clock_mono_us() < until;) {
		v = NULL;
		if (itest_req("GET", path, NULL, token, &v, NULL) == 200 &&
		    strcmp(json_string_value(json_object_get(v, "status")), "CONFIRMED") == 0) {
			json_decref(v);
			return;
		}
		json_decref(v);
		usleep(100000);
	}
	fail_msg("order %s was not CONFIRMED in time", id);
}

/* The confirmation of order id in the SMTP sink: to the customer, the id in
 * the subject and the body. */
static void assert_confirmation(const char *id)
{
	wait_emails(id, 1);
	json_t *m = NULL;
	assert_int_equal(emails(id, &m), 1);
	assert_non_null(strstr(json_string_value(json_object_get(m, "body")), id));
	assert_non_null(strstr(json_string_value(json_object_get(m, "subject")), id));
	const char *to = json_string_value(json_array_get(json_object_get(m, "to"), 0));
	assert_non_null(strstr(to, "@example.com"));
	json_decref(m);
}

/* The row of `ecom queue list --json` for topic and consumer. */
static json_t *queue_row(const char *topic, const char *consumer)
{
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "queue", "list", "--json", "--state", IT.state, NULL), 0);
	json_t *v = json_loads(out, 0, NULL), *row = NULL;
	free(out);
	size_t i;
	json_t *q;
	json_array_foreach(json_object_get(v, "queues"), i, q)
	if (strcmp(json_string_value(json_object_get(q, "topic")), topic) == 0 &&
	    strcmp(json_string_value(json_object_get(q, "consumer")), consumer) == 0)
		row = json_incref(q);
	json_decref(v);
	return row;
}

static long long dead_letters(void)
{
	json_t *row = queue_row("notifications.email", "notification-email");
	long long n = row ? json_integer_value(json_object_get(row, "dead_letters")) : -1;
	json_decref(row);
	return n;
}

/* ---- the stories -------------------------------------------------------------------- */

static void analytics_counts(const char *id)
{
	for (int64_t until = clock_mono_us() + WAIT_MS * 1000LL; clock_mono_us() < until;) {
		json_t *v = NULL;
		long long orders = -1;
		if (itest_req("GET", "/v1/analytics/summary", NULL, ITEST_TOKEN, &v, NULL) == 200)
			orders = json_integer_value(json_object_get(v, "orders"));
		json_decref(v);
		if (orders >= 1)
			return;
		usleep(100000);
	}
	fail_msg("the analytics service did not count order %s", id);
}

static void recommendations(void)
{
	/* bought together, once the catalog has consumed the order */
	const char *source = "";
	json_t *v = NULL;
	for (int64_t until = clock_mono_us() + WAIT_MS * 1000LL; clock_mono_us() < until;) {
		json_decref(v);
		v = NULL;
		assert_int_equal(itest_req("GET", "/v1/recommendations?sku=BOOK-001", NULL, NULL, &v, NULL), 200);
		source = json_string_value(json_object_get(v, "source"));
		if (strcmp(source, "co_purchase") == 0)
			break;
		usleep(100000);
	}
	assert_string_equal(source, "co_purchase");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(v, "items"), 0), "sku")),
			    "BOOK-002");
	json_decref(v);
	/* the popular list, which the gateway keeps */
	assert_int_equal(itest_req("GET", "/v1/recommendations?limit=3", NULL, NULL, &v, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(v, "source")), "popular");
	json_decref(v);
	/* the catalog's breaker forced open: the gateway answers from what it
	 * kept, marked stale, source fallback */
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "breaker", "trip", "catalog", "--state", IT.state, NULL), 0);
	free(out);
	msg_resp keep;
	msg_resp_init(&keep);
	assert_int_equal(itest_req("GET", "/v1/recommendations?sku=BOOK-003&limit=2", NULL, NULL, &v, &keep),
			 200);
	assert_string_equal(msg_resp_header(&keep, "X-Ecom-Stale"), "1");
	assert_string_equal(json_string_value(json_object_get(v, "source")), "fallback");
	assert_true(json_array_size(json_object_get(v, "items")) >= 1);
	msg_resp_clear(&keep);
	json_decref(v);
	assert_int_equal(itest_run(&out, NULL, "breaker", "reset", "catalog", "--state", IT.state, NULL), 0);
	free(out);
}

static void smtp_outage_then_replay(void)
{
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "fault", "set", "smtp", "--outage", "--state", IT.state, NULL), 0);
	free(out);
	char id[64];
	checkout("notify-2", id, sizeof(id));
	for (int64_t until = clock_mono_us() + WAIT_MS * 1000LL;
	     clock_mono_us() < until && dead_letters() < 1;)
		usleep(200000);
	assert_int_equal(dead_letters(), 1);
	assert_int_equal(emails(id, NULL), 0);
	assert_int_equal(texts(id), 1); /* the text went its own way */
	assert_int_equal(itest_run(&out, NULL, "fault", "clear", "smtp", "--state", IT.state, NULL), 0);
	free(out);
	assert_int_equal(itest_run(&out, NULL, "queue", "replay", "notifications.email", "--state",
				   IT.state, NULL),
			 0);
	assert_non_null(strstr(out, "1 dead letters of notifications.email"));
	free(out);
	assert_confirmation(id);
	assert_int_equal(dead_letters(), 0);
	/* a while later, still once */
	usleep(1000000);
	assert_int_equal(emails(id, NULL), 1);
}

static void test_embedded(void **state)
{
	setenv("ECOM_BUS_MAX_ATTEMPTS", "3", 1);
	setenv("ECOM_BUS_RETRY_MAX_MS", "500", 1);
	setenv("ECOM_CATALOG_VIEW_FLUSH_MS", "500", 1);
	assert_int_equal(itest_up(NULL), 0);
	char *smtp = state_file("smtp-sim.smtp");
	assert_non_null(smtp);
	assert_int_equal(strncmp(smtp, "smtp://127.0.0.1:", 17), 0);
	free(smtp);
	customer("notify-a@example.com");
	char id[64];
	checkout("notify-1", id, sizeof(id));
	assert_confirmation(id);
	for (int64_t until = clock_mono_us() + WAIT_MS * 1000LL;
	     clock_mono_us() < until && texts(id) < 1;)
		usleep(100000);
	assert_int_equal(texts(id), 1);
	analytics_counts(id);
	recommendations();
	smtp_outage_then_replay();
	assert_int_equal(emails(id, NULL), 1); /* the first one too, still once */
}

static void test_kafka(void **state)
{
	char bus_url[600];
	kafka_pid = itest_kafka_sim(bus_url, sizeof(bus_url));
	assert_true(kafka_pid > 0);
	assert_int_equal(itest_up("--bus", bus_url, NULL), 0);
	customer("notify-k@example.com");
	char id[64];
	checkout("notify-k1", id, sizeof(id));
	assert_confirmation(id);
	analytics_counts(id);
}

static int story_teardown(void **state)
{
	if (IT.state[0])
		itest_teardown();
	IT.state[0] = '\0';
	if (kafka_pid > 0) {
		kill(kafka_pid, SIGTERM);
		waitpid(kafka_pid, NULL, 0);
		kafka_pid = 0;
	}
	return 0;
}

int main(void)
{
	http_client_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_embedded, story_teardown),
		cmocka_unit_test_teardown(test_kafka, story_teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
