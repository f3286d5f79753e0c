/* Integration: `ecom sim run` against the real platform (`ecom up`), through
 * the gateway. A short browse/view/cart scenario runs with its NDJSON
 * output; the report's counts equal the platform's own (the gateway's and
 * the catalog's request counters in /metrics, read before and after), and
 * the NDJSON holds one line per request. A threshold that cannot hold
 * exits 99; the same seed makes the same choices in a second run; a
 * schedule action kills a service through the state directory and the
 * supervisor brings it back. Runs on SQLite, and on PostgreSQL from
 * tests/integration/postgres.sh. */
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
#include "net/http_client.h"

static char scn_path[64] = "/tmp/ecom-load-scn-XXXXXX";
static char out_path[64] = "/tmp/ecom-load-out-XXXXXX";

static const char SCENARIO[] =
	"[scenario]\n"
	"name = itest\n"
	"description = A short browse and cart run for the integration test.\n"
	"[load]\n"
	"rate = 15\n"
	"duration = 3s\n"
	"users = 4\n"
	"settle = 1s\n"
	"slack = 250ms\n"
	"[journey shopper]\n"
	"weight = 2\n"
	"steps = browse view add_to_cart cart\n"
	"think = 10ms..50ms\n"
	"[journey looker]\n"
	"steps = view view\n"
	"[thresholds]\n"
	"error_rate < 10%\n"
	"add_to_cart.count > 0\n";

static int setup(void **unused)
{
	/* Cheap password hashes: the pool signs users up and in. */
	itest_cheap_passwords();
	if (itest_write_temp(scn_path, SCENARIO) != 0)
		return -1;
	int fd = mkstemp(out_path);
	if (fd < 0)
		return -1;
	close(fd);
	return itest_up(NULL);
}

static int teardown(void **unused)
{
	itest_teardown();
	unlink(scn_path);
	unlink(out_path);
	return 0;
}

/* The value of the counter line that starts with series in the /metrics
 * text of base (0 when absent). */
static long long counter(const char *base, const char *series)
{
	char url[512];
	snprintf(url, sizeof url, "%s/metrics", base);
	msg_resp r;
	msg_resp_init(&r);
	long long v = 0;
	assert_int_equal(http_client_simple("GET", url, NULL, NULL, &r, 10000), 0);
	assert_int_equal(r.status, 200);
	const char *at = r.body ? strstr(r.body, series) : NULL;
	if (at)
		v = atoll(at + strlen(series) + 1);
	msg_resp_clear(&r);
	return v;
}

static json_t *summary_of(const char *path, int *requests)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[65536];
	json_t *sum = NULL;
	*requests = 0;
	while (fgets(line, sizeof line, f)) {
		json_t *v = json_loads(line, 0, NULL);
		assert_non_null(v);
		const char *type = json_string_value(json_object_get(v, "type"));
		if (strcmp(type, "request") == 0)
			(*requests)++;
		if (strcmp(type, "summary") == 0) {
			json_decref(sum);
			sum = v;
		} else {
			json_decref(v);
		}
	}
	fclose(f);
	assert_non_null(sum);
	return sum;
}

static long long ep_status(json_t *sum, const char *ep, const char *status)
{
	json_t *e = json_object_get(json_object_get(sum, "endpoints"), ep);
	return (long long)json_integer_value(json_object_get(json_object_get(e, "status"), status));
}

static long long ep_count(json_t *sum, const char *ep)
{
	json_t *e = json_object_get(json_object_get(sum, "endpoints"), ep);
	return (long long)json_integer_value(json_object_get(e, "count"));
}

static void catalog_addr(char *buf, size_t len)
{
	char p[512];
	snprintf(p, sizeof p, "%s/instances.json", IT.state);
	json_t *doc = json_load_file(p, 0, NULL);
	size_t i;
	json_t *in;
	buf[0] = '\0';
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "id")), "catalog-1") == 0)
			snprintf(buf, len, "%s", json_string_value(json_object_get(in, "addr")));
	json_decref(doc);
	assert_true(buf[0] != '\0');
}

#define GW_PUT "http_requests_total{route=\"/v1/cart\",method=\"PUT\",status=\"200\"}"
#define GW_GET "http_requests_total{route=\"/v1/cart\",method=\"GET\",status=\"200\"}"
#define CAT_SKU "http_requests_total{route=\"/v1/products/{sku}\",method=\"GET\",status=\"200\"}"

static void test_counts_match_the_platform(void **unused)
{
	char cat[256], spec[128];
	catalog_addr(cat, sizeof cat);
	long long put0 = counter(IT.url, GW_PUT), get0 = counter(IT.url, GW_GET);
	long long sku0 = counter(cat, CAT_SKU);
	snprintf(spec, sizeof spec, "json=%s", out_path);
	char *out = NULL, *err = NULL;
	int rc = itest_run(&out, &err, "sim", "run", scn_path, "--state", IT.state, "--quiet", "--out",
			   spec, NULL);
	if (rc != 0)
		fail_msg("sim run exited %d:\n%s\n%s", rc, out, err);
	assert_non_null(strstr(out, "✓ add_to_cart.count > 0"));
	assert_non_null(strstr(out, "4 of 4 users signed in"));
	free(out);
	free(err);
	int lines;
	json_t *sum = summary_of(out_path, &lines);
	assert_int_equal(json_integer_value(json_object_get(sum, "requests")), lines);
	long long arrivals = (long long)json_integer_value(json_object_get(sum, "arrivals"));
	long long started = (long long)json_integer_value(json_object_get(sum, "started"));
	long long dropped = (long long)json_integer_value(json_object_get(sum, "dropped_no_worker")) +
			    (long long)json_integer_value(json_object_get(sum, "dropped_late"));
	assert_int_equal(arrivals, 45);
	assert_int_equal(started + dropped, 45);
	long long puts = ep_status(sum, "add_to_cart", "200"), gets = ep_status(sum, "cart", "200");
	long long views = ep_status(sum, "view", "200");
	assert_true(puts > 0 && gets > 0 && views > 0);
	/* The gateway counted exactly the cart requests the generator saw
	 * answered 200, whatever else happened. */
	assert_int_equal(counter(IT.url, GW_PUT) - put0, puts);
	assert_int_equal(counter(IT.url, GW_GET) - get0, gets);
	/* The catalog served every view and the cart's price lookup of every
	 * put; exactly so when nothing failed (a lookup the cart gave up on
	 * may still have been served). */
	long long errors = (long long)json_integer_value(json_object_get(sum, "errors"));
	if (errors == 0) {
		assert_int_equal(ep_count(sum, "add_to_cart"), puts);
		assert_int_equal(counter(cat, CAT_SKU) - sku0, views + puts);
	} else {
		fprintf(stderr, "note: %lld requests failed; checking the catalog's count as a bound\n",
			errors);
		assert_true(counter(cat, CAT_SKU) - sku0 >= views + puts);
	}
	json_decref(sum);
}

static void test_failing_threshold_exits_99(void **unused)
{
	char *out = NULL, *err = NULL;
	int rc = itest_run(&out, &err, "sim", "run", scn_path, "--state", IT.state, "--quiet",
			   "--duration", "1s", "--threshold", "p99 < 1us", NULL);
	assert_int_equal(rc, 99);
	assert_non_null(strstr(out, "✗ p99 < 1us"));
	assert_non_null(strstr(out, "✓ add_to_cart.count > 0"));
	free(out);
	free(err);
}

/* (arrival, journey, user, endpoint) of every request, sorted by arrival. */
static char *choices(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[65536];
	json_t *all = json_array();
	while (fgets(line, sizeof line, f)) {
		json_t *v = json_loads(line, 0, NULL);
		if (strcmp(json_string_value(json_object_get(v, "type")), "request") == 0)
			json_array_append_new(all, json_pack("[I,s,I,s,I]",
							     json_integer_value(json_object_get(v, "arrival")),
							     json_string_value(json_object_get(v, "journey")),
							     json_integer_value(json_object_get(v, "user")),
							     json_string_value(json_object_get(v, "endpoint")),
							     json_integer_value(json_object_get(v, "attempt"))));
		json_decref(v);
	}
	fclose(f);
	/* Sort by arrival (stable within one: a journey's steps come in order). */
	size_t n = json_array_size(all);
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && json_integer_value(json_array_get(json_array_get(all, k - 1), 0)) >
						    json_integer_value(json_array_get(json_array_get(all, k), 0));
		     k--) {
			json_t *a = json_incref(json_array_get(all, k - 1));
			json_array_set(all, k - 1, json_array_get(all, k));
			json_array_set_new(all, k, a);
		}
	char *s = json_dumps(all, JSON_COMPACT);
	json_decref(all);
	return s;
}

static void test_same_seed_same_choices(void **unused)
{
	char spec[128], *c[2];
	snprintf(spec, sizeof spec, "json=%s", out_path);
	for (int i = 0; i < 2; i++) {
		char *out = NULL;
		int rc = itest_run(&out, NULL, "sim", "run", scn_path, "--state", IT.state, "--quiet",
				   "--duration", "1s", "--seed", "99", "--out", spec, NULL);
		/* The choices are the point here, not the thresholds. */
		if (rc != 0 && rc != 99)
			fail_msg("exit %d:\n%s", rc, out);
		if (rc == 99)
			fprintf(stderr, "note: a threshold failed in run %d:\n%s\n", i + 1, out);
		free(out);
		c[i] = choices(out_path);
	}
	assert_true(strlen(c[0]) > 20);
	assert_string_equal(c[0], c[1]);
	free(c[0]);
	free(c[1]);
}

static void test_schedule_kills_and_supervisor_restarts(void **unused)
{
	char path[] = "/tmp/ecom-load-kill-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fputs("[load]\nrate = 10\nduration = 2s\nusers = 0\n[journey p]\nsteps = health\n"
	      "[schedule]\nat 500ms kill inventory\n[thresholds]\nschedule_failures == 0\n",
	      f);
	fclose(f);
	pid_t before = itest_pid_of("inventory-1");
	assert_true(before > 0);
	char *out = NULL;
	int rc = itest_run(&out, NULL, "sim", "run", path, "--state", IT.state, "--quiet", NULL);
	if (rc != 0)
		fail_msg("exit %d:\n%s", rc, out);
	assert_non_null(strstr(out, "✓ at 500ms kill inventory"));
	free(out);
	assert_true(itest_wait_gone(before, 5000));
	/* The supervisor starts it again (a new pid in instances.json). */
	pid_t after = 0;
	for (int i = 0; i < 100 && (after <= 0 || after == before); i++) {
		usleep(100000);
		after = itest_pid_of("inventory-1");
	}
	assert_true(after > 0 && after != before);
	itest_remember_pids();
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_match_the_platform),
		cmocka_unit_test(test_failing_threshold_exits_99),
		cmocka_unit_test(test_same_seed_same_choices),
		cmocka_unit_test(test_schedule_kills_and_supervisor_restarts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
