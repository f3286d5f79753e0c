/* Integration, PostgreSQL only: the platform keeps every acknowledged write
 * across a database outage and a restart under load, answers 503 (never a
 * hang or a crash) while the database is away, reports it on /ready, and
 * serves again within seconds of its return.
 *
 * Needs ECOM_TEST_STORE (a postgresql:// URL) and ECOM_PG_CTL (a command
 * that takes pg_ctl arguments for that server); tests/integration/postgres.sh
 * provides both. Skipped otherwise. */
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

#include "core/clock.h"
#include "itest.h"
#include "net/http_client.h"

#define MAX_WRITES 4000

/* 0 never sent, 201 acknowledged, anything else: not acknowledged. */
static int outcome[MAX_WRITES];
static int next_write;

static int pg_ctl(const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s %s", getenv("ECOM_PG_CTL"), args);
	return system(cmd);
}

/* Creates product RST-n; records and returns the status. */
static int write_one(int n)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"sku\":\"RST-%05d\",\"name\":\"Restart %d\",\"category\":\"toys\",\"price_cents\":%d}",
		 n, n, 100 + n);
	int status = itest_req("POST", "/v1/products", body, ITEST_TOKEN, NULL, NULL);
	outcome[n] = status;
	return status;
}

static int setup(void **unused)
{
	const char *store = getenv("ECOM_TEST_STORE");
	if (!store || strncmp(store, "postgres", 8) != 0 || !getenv("ECOM_PG_CTL"))
		return 0;
	/* While the database is away the catalog answers 503, which opens the
	 * gateway's breaker to it; serving again then takes the breaker's wait
	 * in OPEN as well. A short wait keeps that within the test's bounds. */
	setenv("ECOM_BREAKER_WAIT_OPEN_MS", "1000", 1);
	return itest_up("--replicas", "catalog=2", NULL);
}

static int teardown(void **unused)
{
	if (IT.url[0])
		itest_teardown();
	return 0;
}

static int catalog_ready(void)
{
	json_t *doc = NULL;
	char p[512];
	snprintf(p, sizeof(p), "%s/instances.json", IT.state);
	doc = json_load_file(p, 0, NULL);
	const char *addr = NULL;
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "id")), "catalog-1") == 0)
			addr = json_string_value(json_object_get(in, "addr"));
	char url[600];
	snprintf(url, sizeof(url), "%s/ready", addr ? addr : "http://127.0.0.1:1");
	json_decref(doc);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple("GET", url, NULL, NULL, &r, 5000);
	int status = rc == 0 ? r.status : -1;
	msg_resp_clear(&r);
	return status;
}

static void test_outage(void **unused)
{
	if (!IT.url[0])
		skip();
	for (int k = 0; k < 100; k++)
		assert_int_equal(write_one(next_write++), 201);
	assert_int_equal(catalog_ready(), 200);

	assert_int_equal(pg_ctl("stop -m fast"), 0);
	/* While the database is away: quick 503s, /ready says so. */
	for (int k = 0; k < 20; k++) {
		int64_t t0 = clock_mono_us();
		int status = write_one(next_write++);
		assert_int_equal(status, 503);
		assert_true(clock_mono_us() - t0 < 5 * 1000000LL);
		assert_int_equal(itest_req("GET", "/v1/products/RST-00001", NULL, NULL, NULL, NULL),
				 503);
	}
	assert_int_equal(catalog_ready(), 503);

	assert_int_equal(pg_ctl("start"), 0);
	int64_t back = clock_mono_us();
	while (write_one(next_write++) != 201) {
		assert_true(clock_mono_us() - back < 10 * 1000000LL);
		assert_true(next_write < MAX_WRITES / 2);
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	printf("# serving again %.2f s after PostgreSQL came back\n",
	       (double)(clock_mono_us() - back) / 1e6);
	assert_int_equal(catalog_ready(), 200);
}

static volatile int stop_writer;

/* Writes one after another; after a 503 it pauses 20 ms, as a client
 * honouring Retry-After would (an open breaker refuses in microseconds, and
 * the writes would run out before the database is back). */
static void *writer(void *arg)
{
	while (!stop_writer && next_write < MAX_WRITES)
		if (write_one(next_write++) == 503) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
	return NULL;
}

static void test_restart_under_load(void **unused)
{
	if (!IT.url[0])
		skip();
	int first = next_write;
	pthread_t tid;
	stop_writer = 0;
	assert_int_equal(pthread_create(&tid, NULL, writer, NULL), 0);
	struct timespec ts = { 0, 300 * 1000000L };
	nanosleep(&ts, NULL);
	assert_int_equal(pg_ctl("restart -m fast"), 0);
	nanosleep(&ts, NULL);
	/* Keep writing until the platform has acknowledged writes again. */
	int64_t back = clock_mono_us();
	int acked_after = 0;
	while (clock_mono_us() - back < 15 * 1000000LL && !acked_after) {
		for (int k = next_write - 1; k > first && k > next_write - 20; k--)
			if (outcome[k] == 201)
				acked_after = 1;
		nanosleep(&ts, NULL);
	}
	stop_writer = 1;
	pthread_join(tid, NULL);
	assert_true(acked_after);
	int acked = 0, refused = 0, other = 0;
	for (int k = first; k < next_write; k++) {
		if (outcome[k] == 201)
			acked++;
		else if (outcome[k] == 503)
			refused++;
		else
			other++;
	}
	printf("# under load: %d acknowledged, %d refused with 503, %d other\n", acked, refused,
	       other);
	/* A write is acknowledged (201) or refused as unavailable (503), never
	 * a 500, a timeout or a hang. */
	assert_int_equal(other, 0);
}

/* Every acknowledged write is there, exactly once. */
static void test_acknowledged_writes_present(void **unused)
{
	if (!IT.url[0])
		skip();
	int found[MAX_WRITES] = { 0 };
	char path[256] = "/v1/products?page_size=100";
	for (int pages = 0; pages < 200; pages++) {
		json_t *v = NULL;
		assert_int_equal(itest_req("GET", path, NULL, NULL, &v, NULL), 200);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(v, "items"), i, it)
		{
			const char *sku = json_string_value(json_object_get(it, "sku"));
			if (strncmp(sku, "RST-", 4) == 0)
				found[atoi(sku + 4)]++;
		}
		const char *tok = json_string_value(json_object_get(v, "next_page_token"));
		if (!tok) {
			json_decref(v);
			break;
		}
		snprintf(path, sizeof(path), "/v1/products?page_size=100&page_token=%s", tok);
		json_decref(v);
	}
	int acked = 0;
	for (int k = 0; k < next_write; k++) {
		assert_true(found[k] <= 1);
		if (outcome[k] == 201) {
			acked++;
			if (found[k] != 1)
				fail_msg("acknowledged write RST-%05d is missing", k);
		}
	}
	assert_true(acked >= 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outage),
		cmocka_unit_test(test_restart_under_load),
		cmocka_unit_test(test_acknowledged_writes_present),
	};
	return cmocka_run_group_tests_name("integration: PostgreSQL restart", tests, setup, teardown);
}
