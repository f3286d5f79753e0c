/* Integration: resilience on the real platform (`ecom up`, real HTTP over
 * loopback, the `ecom` command line). A catalog outage opens the gateway's
 * breaker within its window; refused calls come back at once; the cached
 * listing is served marked stale; once the fault is cleared the breaker goes
 * HALF_OPEN and then CLOSED, every transition logged and counted. Operators
 * trip and reset breakers (CLI and HTTP), and the trip reaches the cart's own
 * breaker to the catalog. A latency fault saturates the gateway's bulkhead to
 * the catalog: the overflow gets 503 at once, nothing hangs. Deadlines turn
 * into 504s, at the gateway and at a service. Faults are listed, expire and
 * are cleared. The platform runs with a one-second wait in OPEN and a
 * bulkhead of two from the gateway to the catalog (environment). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "net/http_client.h"

#define LISTING "/v1/products?page_size=5"

static int setup(void **unused)
{
	setenv("ECOM_BREAKER_WAIT_OPEN_MS", "1000", 1);
	setenv("ECOM_RESIL_EDGES", "gateway>catalog: bulkhead.max_concurrent=2", 1);
	/* The search instance follows the catalog's events through the
	 * gateway; its polls would be calls in the gateway->catalog window
	 * that this test counts exactly: here they are a minute apart. */
	setenv("ECOM_BUS_POLL_MS", "60000", 1);
	return itest_up(NULL);
}

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A GET of base + path with one extra header (name may be NULL); resp is
 * the caller's to clear. Returns the status, -1 on a transport failure;
 * *took_ms the time it took. */
static int get_at(const char *base, const char *path, const char *name, const char *value,
		  msg_resp *resp, int64_t *took_ms)
{
	msg_req q;
	assert_int_equal(msg_req_init(&q, "GET", path), 0);
	if (name)
		msg_req_add_header(&q, name, value);
	msg_resp_init(resp);
	http_call_opts o = { .connect_timeout_ms = 1000, .timeout_ms = 10000 };
	int64_t t0 = now_ms();
	int rc = http_client_do(base, &q, resp, &o);
	if (took_ms)
		*took_ms = now_ms() - t0;
	msg_req_clear(&q);
	return rc == 0 ? resp->status : -1;
}

static const char *hdr(const msg_resp *r, const char *name)
{
	const char *v = msg_resp_header(r, name);
	return v ? v : "";
}

/* The gateway's own breaker to service, from GET /admin/breakers
 * (new reference, or NULL). */
static json_t *gateway_breaker(const char *service)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/admin/breakers", NULL, ITEST_TOKEN, &v, NULL), 200);
	json_t *found = NULL;
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(v, "breakers"), i, b)
		if (strcmp(json_string_value(json_object_get(b, "from")), "gateway") == 0 &&
		    strcmp(json_string_value(json_object_get(b, "to")), service) == 0)
			found = json_incref(b);
	json_decref(v);
	return found;
}

static char state_buf[32];

static const char *gateway_state(const char *service)
{
	json_t *b = gateway_breaker(service);
	snprintf(state_buf, sizeof(state_buf), "%s",
		 b ? json_string_value(json_object_get(b, "state")) : "none");
	json_decref(b);
	return state_buf;
}

/* The text of file STATE/rel, or NULL (freed by the caller). */
static char *state_file(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", IT.state, rel);
	FILE *f = fopen(p, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void catalog_addr(char *out, size_t len)
{
	char *a = state_file("run/catalog-1.addr");
	assert_non_null(a);
	a[strcspn(a, "\n")] = '\0';
	snprintf(out, len, "%s", a);
	free(a);
}

/* Runs `ecom` with args (NULL-ended) and --state; stdout in *out. */
#define ECOM(out, ...) itest_run(out, NULL, __VA_ARGS__, "--state", IT.state, NULL)

/* The search instance reads the catalog's export through the gateway when
 * it builds its index at start: wait until it has, then reset the gateway's
 * breaker to the catalog, so that its window holds this test's calls only. */
static void quiet_catalog_window(void)
{
	for (int i = 0; i < 300; i++) {
		json_t *v = NULL;
		int status = itest_req("GET", "/v1/search/_status", NULL, ITEST_TOKEN, &v, NULL);
		const char *state = json_string_value(
			json_object_get(json_object_get(v, "reindex"), "state"));
		int built = status == 200 && json_is_true(json_object_get(v, "built")) && state &&
			    strcmp(state, "IDLE") == 0;
		json_decref(v);
		if (built)
			break;
		usleep(100000);
	}
	assert_int_equal(itest_run(NULL, NULL, "breaker", "reset", "catalog", "--state", IT.state,
				   NULL),
			 0);
}

static void test_catalog_outage_opens_breaker_and_serves_stale(void **unused)
{
	quiet_catalog_window();
	msg_resp warm;
	assert_int_equal(get_at(IT.url, LISTING, NULL, NULL, &warm, NULL), 200);
	assert_string_equal(hdr(&warm, "X-Ecom-Stale"), "");
	assert_string_equal(gateway_state("catalog"), "CLOSED");

	char *out = NULL;
	assert_int_equal(ECOM(&out, "fault", "set", "catalog", "--outage"), 0);
	assert_non_null(strstr(out, "fault on catalog set on 1 instance"));
	free(out);

	/* Reads of something not cached fail (the service answers 503) until
	 * the breaker opens; that must happen within its window of 20 calls.
	 * Then the gateway refuses on its own, at once. */
	int opened_at = -1;
	for (int i = 0; i < 20 && opened_at < 0; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/products/BOOK-001?n=%d", i);
		msg_resp r;
		int64_t took;
		assert_int_equal(get_at(IT.url, path, NULL, NULL, &r, &took), 503);
		if (strcmp(hdr(&r, "X-Ecom-Refused"), "breaker") == 0) {
			opened_at = i;
			assert_true(took < 500);
			assert_true(atoi(hdr(&r, "Retry-After")) >= 1);
			json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
			assert_string_equal(itest_err_code(v), "unavailable");
			json_decref(v);
		} else {
			assert_string_equal(hdr(&r, "X-Ecom-Fault"), "outage");
		}
		msg_resp_clear(&r);
	}
	print_message("breaker opened after %d failed calls\n", opened_at);
	/* The minimum is 10 calls, the warm-up read among them. */
	assert_in_range(opened_at, 9, 19);
	json_t *b = gateway_breaker("catalog");
	assert_string_equal(json_string_value(json_object_get(b, "state")), "OPEN");
	assert_true(json_number_value(json_object_get(b, "failure_rate")) >= 50.0);
	json_decref(b);
	assert_int_equal(ECOM(&out, "breaker", "list"), 0);
	assert_non_null(strstr(out, "gateway      catalog      OPEN"));
	free(out);

	/* The cached listing is served, marked stale, byte for byte. */
	msg_resp r;
	int64_t took;
	assert_int_equal(get_at(IT.url, LISTING, NULL, NULL, &r, &took), 200);
	assert_string_equal(hdr(&r, "X-Ecom-Stale"), "1");
	assert_string_equal(hdr(&r, "Warning"), "110 - \"Response is Stale\"");
	assert_non_null(msg_resp_header(&r, "Age"));
	assert_int_equal(r.body_len, warm.body_len);
	assert_memory_equal(r.body, warm.body, r.body_len);
	assert_true(took < 500);
	msg_resp_clear(&r);
	msg_resp_clear(&warm);

	/* Cleared: after the wait in OPEN the next calls are probes
	 * (HALF_OPEN), and three good ones close it. */
	assert_int_equal(ECOM(&out, "fault", "clear", "catalog"), 0);
	assert_non_null(strstr(out, "cleared on 1 instance"));
	free(out);
	usleep(1100 * 1000);
	assert_int_equal(get_at(IT.url, "/v1/products/BOOK-001?probe=1", NULL, NULL, &r, NULL), 200);
	msg_resp_clear(&r);
	assert_string_equal(gateway_state("catalog"), "HALF_OPEN");
	for (int i = 2; i <= 3; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/products/BOOK-001?probe=%d", i);
		assert_int_equal(get_at(IT.url, path, NULL, NULL, &r, NULL), 200);
		msg_resp_clear(&r);
	}
	assert_string_equal(gateway_state("catalog"), "CLOSED");
	assert_int_equal(get_at(IT.url, LISTING, NULL, NULL, &r, NULL), 200);
	assert_string_equal(hdr(&r, "X-Ecom-Stale"), "");
	msg_resp_clear(&r);

	/* Each transition is in the gateway's log and its metrics. */
	char *log = state_file("log/gateway-1.log");
	assert_non_null(log);
	assert_non_null(strstr(log, "breaker gateway/catalog: CLOSED -> OPEN"));
	assert_non_null(strstr(log, "breaker gateway/catalog: OPEN -> HALF_OPEN"));
	assert_non_null(strstr(log, "breaker gateway/catalog: HALF_OPEN -> CLOSED"));
	free(log);
	assert_int_equal(get_at(IT.url, "/metrics", NULL, NULL, &r, NULL), 200);
	static const char *const series[] = {
		"breaker_transitions_total{from=\"gateway\",to=\"catalog\",state=\"OPEN\"} 1",
		"breaker_transitions_total{from=\"gateway\",to=\"catalog\",state=\"HALF_OPEN\"} 1",
		"breaker_transitions_total{from=\"gateway\",to=\"catalog\",state=\"CLOSED\"} 1",
		"breaker_state{from=\"gateway\",to=\"catalog\",state=\"CLOSED\"} 1",
		"gateway_stale_served_total{service=\"catalog\",reason=\"breaker\"}",
	};
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++)
		if (!strstr(r.body, series[i]))
			fail_msg("no '%s' in the gateway's /metrics", series[i]);
	msg_resp_clear(&r);
}

static void signup_login(const char *email, char *token, size_t len)
{
	char body[256];
	json_t *v = NULL;
	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"password\":\"correct horse 1\",\"name\":\"R Tester\"}", email);
	assert_int_equal(itest_req("POST", "/v1/auth/signup", body, NULL, &v, NULL), 201);
	json_decref(v);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse 1\"}", email);
	assert_int_equal(itest_req("POST", "/v1/auth/login", body, NULL, &v, NULL), 200);
	snprintf(token, len, "%s", json_string_value(json_object_get(v, "access_token")));
	json_decref(v);
}

static void test_trip_and_reset(void **unused)
{
	char token[1024];
	signup_login("resil@example.com", token, sizeof(token));
	json_t *v = NULL;
	const char *item = "{\"qty\":1}";
	assert_int_equal(itest_req("PUT", "/v1/cart/items/BOOK-002", item, token, &v, NULL), 200);
	json_decref(v);

	/* The CLI trips the gateway's breaker and, forwarded, the cart's. */
	char *out = NULL;
	assert_int_equal(ECOM(&out, "breaker", "trip", "catalog"), 0);
	assert_non_null(strstr(out, "gateway      catalog      FORCED_OPEN"));
	assert_non_null(strstr(out, "cart         catalog      FORCED_OPEN"));
	free(out);
	msg_resp r;
	assert_int_equal(get_at(IT.url, "/v1/products/BOOK-002?trip=1", NULL, NULL, &r, NULL), 503);
	assert_string_equal(hdr(&r, "X-Ecom-Refused"), "breaker");
	msg_resp_clear(&r);
	/* The cart's own call to the catalog fails fast inside the cart. */
	assert_int_equal(itest_req("PUT", "/v1/cart/items/BOOK-003", item, token, &v, NULL), 503);
	assert_string_equal(itest_err_code(v), "unavailable");
	json_decref(v);
	assert_int_equal(ECOM(&out, "breaker", "list", "--json"), 0);
	json_t *list = json_loads(out, 0, NULL);
	free(out);
	int forced = 0;
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(list, "breakers"), i, b)
		if (strcmp(json_string_value(json_object_get(b, "to")), "catalog") == 0)
			forced += strcmp(json_string_value(json_object_get(b, "state")), "FORCED_OPEN") ==
				  0;
	json_decref(list);
	assert_true(forced >= 2);

	assert_int_equal(ECOM(&out, "breaker", "reset", "catalog"), 0);
	assert_non_null(strstr(out, "gateway      catalog      CLOSED"));
	assert_null(strstr(out, "FORCED_OPEN"));
	free(out);
	assert_int_equal(itest_req("PUT", "/v1/cart/items/BOOK-003", item, token, &v, NULL), 200);
	json_decref(v);

	/* The same over HTTP; a user may not. */
	assert_int_equal(itest_req("POST", "/admin/breakers/catalog/trip", NULL, ITEST_TOKEN, &v, NULL),
			 200);
	assert_string_equal(json_string_value(json_object_get(v, "state")), "FORCED_OPEN");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/admin/breakers/catalog/reset", NULL, ITEST_TOKEN, &v,
				   NULL),
			 200);
	assert_string_equal(json_string_value(json_object_get(v, "state")), "CLOSED");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/admin/breakers/catalog/trip", NULL, token, &v, NULL), 403);
	json_decref(v);
	assert_string_equal(gateway_state("catalog"), "CLOSED");

	/* Usage errors exit 2; a failed operation exits 1. */
	assert_int_equal(ECOM(NULL, "breaker", "trip"), 2);
	assert_int_equal(ECOM(NULL, "breaker", "explode"), 2);
	assert_int_equal(ECOM(NULL, "breaker", "trip", "Not/A/Name"), 2);
	assert_int_equal(ECOM(NULL, "breaker", "trip", "nosuch"), 1);
}

typedef struct reader {
	int index;
	int status;
	int64_t took_ms;
	char refused[16];
} reader;

static void *read_one(void *arg)
{
	reader *rd = arg;
	char path[64];
	snprintf(path, sizeof(path), "/v1/products/BOOK-004?bulk=%d", rd->index);
	msg_resp r;
	rd->status = get_at(IT.url, path, NULL, NULL, &r, &rd->took_ms);
	snprintf(rd->refused, sizeof(rd->refused), "%s", hdr(&r, "X-Ecom-Refused"));
	msg_resp_clear(&r);
	return NULL;
}

static void test_bulkhead_saturation(void **unused)
{
	char *out = NULL;
	assert_int_equal(ECOM(&out, "fault", "set", "catalog", "--latency-ms", "1500", "--for", "60s"),
			 0);
	free(out);
	enum { READERS = 6 };
	reader rd[READERS];
	pthread_t th[READERS];
	int64_t t0 = now_ms();
	for (int i = 0; i < READERS; i++) {
		rd[i] = (reader){ .index = i };
		assert_int_equal(pthread_create(&th[i], NULL, read_one, &rd[i]), 0);
	}
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	int64_t all_ms = now_ms() - t0;
	int ok = 0, refused = 0;
	for (int i = 0; i < READERS; i++) {
		print_message("reader %d: %d in %lld ms (%s)\n", i, rd[i].status,
			      (long long)rd[i].took_ms, rd[i].refused);
		if (rd[i].status == 200) {
			ok++;
			assert_true(rd[i].took_ms >= 1400);
		} else {
			assert_int_equal(rd[i].status, 503);
			assert_string_equal(rd[i].refused, "bulkhead");
			assert_true(rd[i].took_ms < 1000); /* at once, not after the slow ones */
			refused++;
		}
	}
	/* Two in flight at most (the bulkhead); the rest refused; nothing
	 * waited for more than the slow calls themselves. */
	assert_int_equal(ok, 2);
	assert_int_equal(ok + refused, READERS);
	assert_true(all_ms < 5000);
	json_t *b = gateway_breaker("catalog");
	assert_true(json_integer_value(json_object_get(b, "bulkhead_rejected")) >= 4);
	assert_int_equal(json_integer_value(json_object_get(b, "in_flight")), 0);
	json_decref(b);
	assert_int_equal(ECOM(NULL, "fault", "clear", "catalog"), 0);
}

static void test_deadlines(void **unused)
{
	char *out = NULL;
	assert_int_equal(ECOM(&out, "fault", "set", "catalog", "--latency-ms", "800", "--for", "60s"), 0);
	free(out);
	msg_resp r;
	int64_t took;
	/* The caller gives 300 ms: the gateway answers 504 then, not after the
	 * service's 800. */
	assert_int_equal(get_at(IT.url, "/v1/products/BOOK-005?dl=1", "X-Ecom-Deadline-Ms", "300", &r,
				&took),
			 504);
	json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
	assert_string_equal(itest_err_code(v), "upstream_timeout");
	json_decref(v);
	msg_resp_clear(&r);
	print_message("deadline 300 ms: 504 after %lld ms\n", (long long)took);
	assert_in_range(took, 250, 750);
	/* None left: refused before any call. */
	assert_int_equal(get_at(IT.url, "/v1/products/BOOK-005?dl=2", "X-Ecom-Deadline-Ms", "0", &r,
				&took),
			 504);
	assert_string_equal(hdr(&r, "X-Ecom-Refused"), "deadline");
	assert_true(took < 300);
	msg_resp_clear(&r);
	assert_int_equal(ECOM(NULL, "fault", "clear", "catalog"), 0);
	/* A service's own host refuses an expired request too. */
	char addr[256];
	catalog_addr(addr, sizeof(addr));
	assert_int_equal(get_at(addr, "/v1/products/BOOK-005", "X-Ecom-Deadline-Ms", "0", &r, NULL),
			 504);
	assert_string_equal(hdr(&r, "X-Ecom-Refused"), "deadline");
	msg_resp_clear(&r);
	assert_int_equal(get_at(addr, "/v1/products/BOOK-005", "X-Ecom-Deadline-Ms", "2000", &r, NULL),
			 200);
	msg_resp_clear(&r);
	/* Within the default budget, reads go through. */
	assert_int_equal(get_at(IT.url, "/v1/products/BOOK-005?dl=3", NULL, NULL, &r, NULL), 200);
	msg_resp_clear(&r);
}

static void test_fault_set_list_expire_clear(void **unused)
{
	char *out = NULL;
	assert_int_equal(ECOM(&out, "fault", "set", "catalog", "--latency-ms", "20", "--jitter-ms", "5",
			      "--error-rate", "0.5", "--error-status", "502", "--duration-s", "60"),
			 0);
	free(out);
	assert_int_equal(ECOM(&out, "fault", "set", "cart", "--outage", "--for", "1s"), 0);
	free(out);
	assert_int_equal(ECOM(&out, "fault", "list"), 0);
	assert_non_null(strstr(out, "catalog      catalog-1"));
	assert_non_null(strstr(out, "   20       5  0.500    502 no"));
	assert_non_null(strstr(out, "cart         cart-1"));
	free(out);
	assert_int_equal(ECOM(&out, "fault", "list", "--json"), 0);
	json_t *v = json_loads(out, 0, NULL);
	free(out);
	assert_int_equal(json_array_size(json_object_get(v, "faults")), 2);
	json_decref(v);

	/* Under an outage the infrastructure paths still answer. */
	msg_resp r;
	char addr[256];
	snprintf(addr, sizeof(addr), "%s", IT.url);
	char *cart_addr = state_file("run/cart-1.addr");
	assert_non_null(cart_addr);
	cart_addr[strcspn(cart_addr, "\n")] = '\0';
	assert_int_equal(get_at(cart_addr, "/health", NULL, NULL, &r, NULL), 200);
	msg_resp_clear(&r);
	assert_int_equal(get_at(cart_addr, "/metrics", NULL, NULL, &r, NULL), 200);
	msg_resp_clear(&r);
	assert_int_equal(get_at(cart_addr, "/v1/cart", NULL, NULL, &r, NULL), 503);
	assert_string_equal(hdr(&r, "X-Ecom-Fault"), "outage");
	msg_resp_clear(&r);

	/* The cart's fault expires by itself. */
	usleep(1200 * 1000);
	assert_int_equal(get_at(cart_addr, "/v1/cart", NULL, NULL, &r, NULL), 401);
	msg_resp_clear(&r);
	free(cart_addr);
	assert_int_equal(ECOM(&out, "fault", "list"), 0);
	assert_null(strstr(out, "cart         cart-1"));
	assert_non_null(strstr(out, "catalog      catalog-1"));
	free(out);
	/* An error rate of one half: of 40 reads some fail with 502 (the
	 * service's answer, passed through or served stale). */
	int failed = 0;
	for (int i = 0; i < 40; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/products/BOOK-006?e=%d", i);
		int st = get_at(IT.url, path, NULL, NULL, &r, NULL);
		failed += st == 502 || (st == 503 && strcmp(hdr(&r, "X-Ecom-Refused"), "breaker") == 0);
		msg_resp_clear(&r);
	}
	assert_true(failed >= 5);
	assert_int_equal(ECOM(&out, "fault", "clear", "catalog"), 0);
	free(out);
	assert_int_equal(ECOM(&out, "fault", "list"), 0);
	assert_int_equal(itest_count_lines(out), 1); /* the header only */
	free(out);
	assert_int_equal(ECOM(NULL, "breaker", "reset", "catalog"), 0);

	/* The Stripe simulator `ecom up` started gets its fault through the
	 * gateway too, and lists it. */
	assert_int_equal(ECOM(&out, "fault", "set", "stripe", "--error-rate", "1", "--error-status",
			      "500", "--for", "30s"),
			 0);
	free(out);
	assert_int_equal(ECOM(&out, "fault", "list"), 0);
	assert_non_null(strstr(out, "stripe       stripe-sim-1"));
	free(out);
	assert_int_equal(ECOM(&out, "fault", "clear", "stripe"), 0);
	free(out);
	assert_int_equal(ECOM(&out, "fault", "list"), 0);
	assert_null(strstr(out, "stripe"));
	free(out);

	/* Usage errors exit 2; a failed operation exits 1. */
	assert_int_equal(ECOM(NULL, "fault", "set", "catalog", "--error-rate", "2"), 2);
	assert_int_equal(ECOM(NULL, "fault", "set", "catalog", "--for", "3 days"), 2);
	assert_int_equal(ECOM(NULL, "fault", "set"), 2);
	assert_int_equal(ECOM(NULL, "fault", "clear", "catalog", "--outage"), 2);
	assert_int_equal(ECOM(NULL, "fault", "sett", "catalog"), 2);
	assert_int_equal(ECOM(NULL, "fault", "set", "nosuch", "--outage"), 1);
	(void)addr;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_outage_opens_breaker_and_serves_stale),
		cmocka_unit_test(test_trip_and_reset),
		cmocka_unit_test(test_bulkhead_saturation),
		cmocka_unit_test(test_deadlines),
		cmocka_unit_test(test_fault_set_list_expire_clear),
	};
	return cmocka_run_group_tests_name("integration: resilience", tests, setup, teardown);
}
