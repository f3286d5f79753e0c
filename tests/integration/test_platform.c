/* Integration: the real `ecom` binary, real processes, real HTTP on
 * loopback, in a temporary state directory, on SQLite files or on the
 * PostgreSQL database named by $ECOM_TEST_STORE (tests/integration/postgres.sh
 * runs this suite a second time that way).
 *
 * ECOM_BIN names the binary (set by make check). The platform is started
 * once with three catalog replicas; the last test stops it and checks that
 * no process is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"


/* The value of one series in the gateway's /metrics, 0 when absent. */
static long long metric(const char *series)
{
	msg_resp r;
	int status = itest_req("GET", "/metrics", NULL, NULL, NULL, &r);
	assert_int_equal(status, 200);
	long long v = 0;
	const char *p = r.body ? strstr(r.body, series) : NULL;
	if (p)
		v = atoll(p + strlen(series) + 1);
	msg_resp_clear(&r);
	return v;
}

static int setup(void **unused)
{
	return itest_up("--replicas", "catalog=3", NULL);
}

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_cli_contract(void **unused)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(itest_run(&out, NULL, "--help", NULL), 0);
	assert_non_null(strstr(out, "usage: ecom"));
	free(out);
	assert_int_equal(itest_run(&out, NULL, "--version", NULL), 0);
	assert_non_null(strstr(out, "ecom 0."));
	free(out);
	assert_int_equal(itest_run(&out, NULL, "up", "--help", NULL), 0);
	assert_non_null(strstr(out, "usage: ecom up"));
	free(out);

	assert_int_equal(itest_run(NULL, &err, "frobnicate", NULL), 2);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "unknown command 'frobnicate'"));
	free(err);
	assert_int_equal(itest_run(NULL, &err, "up", "--no-such-flag", NULL), 2);
	assert_int_equal(itest_count_lines(err), 1);
	free(err);
	assert_int_equal(itest_run(NULL, &err, "up", "--port", "99999", NULL), 2);
	assert_int_equal(itest_count_lines(err), 1);
	free(err);
	assert_int_equal(itest_run(NULL, &err, "serve", "no-such-service", NULL), 2);
	assert_int_equal(itest_count_lines(err), 1);
	free(err);
	assert_int_equal(itest_run(NULL, &err, "seed", NULL), 2);
	free(err);
}

static void test_bad_environment(void **unused)
{
	char *err = NULL;
	/* An unwritable state directory. */
	assert_int_equal(itest_run(NULL, &err, "up", "--port", "0", "--state", "/proc/ecom-nope", NULL), 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "/proc/ecom-nope"));
	free(err);

	char other[] = "/tmp/ecom-itest2-XXXXXX";
	assert_non_null(mkdtemp(other));
	/* A malformed store URL is named in the message. */
	assert_int_equal(itest_run(NULL, &err, "up", "--port", "0", "--state", other, "--store",
			     "mysql://root:secret@db/x", NULL),
			 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "mysql://"));
	assert_null(strstr(err, "secret"));
	free(err);

	/* A bad configuration file names the file and line. */
	char conf[300];
	snprintf(conf, sizeof(conf), "%s/bad.conf", other);
	FILE *f = fopen(conf, "w");
	fprintf(f, "http.threads = 2\nno.such.key = 1\n");
	fclose(f);
	assert_int_equal(itest_run(NULL, &err, "up", "--port", "0", "--state", other, "--config", conf,
			     NULL),
			 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "bad.conf:2"));
	free(err);

	/* A port in use. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	char port[16];
	snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
	assert_int_equal(itest_run(NULL, &err, "up", "--port", port, "--state", other, NULL), 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "in use"));
	free(err);
	close(fd);
	itest_rm_tree(other);
}

static void test_second_up_refused(void **unused)
{
	char *err = NULL;
	assert_int_equal(itest_run(NULL, &err, "up", "--port", "0", "--state", IT.state, NULL), 1);
	assert_int_equal(itest_count_lines(err), 1);
	assert_non_null(strstr(err, "already running"));
	free(err);
	/* The running platform is untouched. */
	assert_int_equal(itest_req("GET", "/v1/products?page_size=1", NULL, NULL, NULL, NULL), 200);
}

static void test_state_directory(void **unused)
{
	char p[512];
	struct stat st;
	/* Every secret is the owner's alone, and none reaches a log. */
	static const char *const secrets[] = { "jwt.key", "service.secret" };
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", IT.state, secrets[i]);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_true(st.st_size >= 32);
		FILE *sf = fopen(p, "r");
		char secret[256] = "";
		assert_non_null(fgets(secret, sizeof(secret), sf));
		fclose(sf);
		char cmd[1024];
		snprintf(cmd, sizeof(cmd), "grep -rqF '%s' %s/log", secret, IT.state);
		/* grep says 1 for "not found" (2 would be an error, not a pass). */
		int st_grep = system(cmd);
		assert_true(WIFEXITED(st_grep));
		assert_int_equal(WEXITSTATUS(st_grep), 1);
	}
	snprintf(p, sizeof(p), "%s/admin.token", IT.state);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	FILE *f = fopen(p, "r");
	char tok[128] = "";
	assert_non_null(fgets(tok, sizeof(tok), f));
	fclose(f);
	assert_string_equal(tok, ITEST_TOKEN);
	if (!IT.store) { /* SQLite: one file per service */
		snprintf(p, sizeof(p), "%s/data/catalog.db", IT.state);
		assert_int_equal(stat(p, &st), 0);
	}
	snprintf(p, sizeof(p), "%s/log/catalog-1.log", IT.state);
	assert_int_equal(stat(p, &st), 0);
}

static void test_catalog_through_gateway(void **unused)
{
	json_t *v = NULL;
	/* Page through the whole hand-made catalog: every sku once, in order. */
	char path[512] = "/v1/products?page_size=37";
	int seen = 0;
	char last[80] = "";
	json_t *cats = json_object();
	for (int pages = 0; pages < 20; pages++) {
		assert_int_equal(itest_req("GET", path, NULL, NULL, &v, NULL), 200);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(v, "items"), i, it)
		{
			const char *sku = json_string_value(json_object_get(it, "sku"));
			assert_true(strcmp(sku, last) > 0);
			snprintf(last, sizeof(last), "%s", sku);
			json_object_set_new(cats, json_string_value(json_object_get(it, "category")),
					    json_true());
			seen++;
		}
		const char *tok = json_string_value(json_object_get(v, "next_page_token"));
		if (!tok) {
			json_decref(v);
			break;
		}
		snprintf(path, sizeof(path), "/v1/products?page_size=37&page_token=%s", tok);
		json_decref(v);
	}
	assert_true(seen >= 190 && seen <= 210);
	assert_int_equal(json_object_size(cats), 10);
	json_decref(cats);

	/* Filters. */
	assert_int_equal(itest_req("GET", "/v1/products?category=kitchen&min_price=3000&max_price=5000&page_size=100",
			     NULL, NULL, &v, NULL),
			 200);
	assert_true(json_array_size(json_object_get(v, "items")) > 0);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(v, "items"), i, it)
	{
		assert_string_equal(json_string_value(json_object_get(it, "category")), "kitchen");
		json_int_t price = json_integer_value(json_object_get(it, "price_cents"));
		assert_true(price >= 3000 && price <= 5000);
	}
	json_decref(v);

	/* One product, with X-Request-Id on the response. */
	msg_resp r;
	assert_int_equal(itest_req("GET", "/v1/products/BOOK-001", NULL, NULL, NULL, &r), 200);
	assert_non_null(msg_resp_header(&r, "X-Request-Id"));
	v = json_loadb(r.body, r.body_len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(v, "sku")), "BOOK-001");
	assert_non_null(json_object_get(v, "price_cents"));
	assert_string_equal(json_string_value(json_object_get(v, "currency")), "USD");
	json_decref(v);
	msg_resp_clear(&r);

	/* Writes: admin only. */
	const char *prod = "{\"sku\":\"ITEST-1\",\"name\":\"Integration Mug\",\"description\":\"x\","
			   "\"category\":\"kitchen\",\"price_cents\":1500,\"currency\":\"EUR\"}";
	assert_int_equal(itest_req("POST", "/v1/products", prod, NULL, &v, NULL), 401);
	assert_string_equal(itest_err_code(v), "unauthenticated");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/products", prod, "wrong-token", &v, NULL), 401);
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/products", prod, ITEST_TOKEN, &v, NULL), 201);
	assert_string_equal(json_string_value(json_object_get(v, "currency")), "EUR");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/products", prod, ITEST_TOKEN, &v, NULL), 409);
	assert_string_equal(itest_err_code(v), "conflict");
	json_decref(v);
	assert_int_equal(itest_req("PUT", "/v1/products/ITEST-1",
			     "{\"name\":\"Integration Mug\",\"category\":\"kitchen\",\"price_cents\":1700}",
			     ITEST_TOKEN, &v, NULL),
			 200);
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1700);
	json_decref(v);
	/* Every replica sees the write: the database belongs to the service. */
	for (int k = 0; k < 6; k++) {
		assert_int_equal(itest_req("GET", "/v1/products/ITEST-1", NULL, NULL, &v, NULL), 200);
		assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1700);
		json_decref(v);
	}

	/* Bad input: the error shape, the right status, and still serving. */
	assert_int_equal(itest_req("POST", "/v1/products", "{\"sku\":", ITEST_TOKEN, &v, NULL), 400);
	assert_string_equal(itest_err_code(v), "invalid_argument");
	json_decref(v);
	assert_int_equal(itest_req("POST", "/v1/products",
			     "{\"sku\":\"ITEST-2\",\"name\":\"X\",\"category\":\"kitchen\",\"price_cents\":-5}",
			     ITEST_TOKEN, &v, NULL),
			 400);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(v, "error"), "details"), "field")),
			    "price_cents");
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/products?page_token=p1zz", NULL, NULL, &v, NULL), 400);
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/products?page_size=1000", NULL, NULL, &v, NULL), 400);
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/products/NO-SUCH-SKU", NULL, NULL, &v, NULL), 404);
	assert_string_equal(itest_err_code(v), "not_found");
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v3/products", NULL, NULL, &v, NULL), 404);
	json_decref(v);
	assert_int_equal(itest_req("PATCH", "/v1/products", "{}", ITEST_TOKEN, &v, &r), 405);
	assert_string_equal(itest_err_code(v), "method_not_allowed");
	assert_non_null(msg_resp_header(&r, "Allow"));
	msg_resp_clear(&r);
	json_decref(v);
	size_t big = 70 * 1024;
	char *huge = malloc(big + 1);
	memset(huge, 'a', big);
	memcpy(huge, "{\"x\":\"", 6);
	memcpy(huge + big - 2, "\"}", 2);
	huge[big] = '\0';
	assert_int_equal(itest_req("POST", "/v1/products", huge, ITEST_TOKEN, &v, NULL), 413);
	assert_string_equal(itest_err_code(v), "payload_too_large");
	json_decref(v);
	free(huge);
	assert_int_equal(itest_req("GET", "/v1/products/BOOK-002", NULL, NULL, NULL, NULL), 200);
}

static void test_admin_services(void **unused)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/admin/services", NULL, NULL, &v, NULL), 401);
	json_decref(v);
	assert_int_equal(itest_req("GET", "/admin/services", NULL, ITEST_TOKEN, &v, NULL), 200);
	size_t i;
	json_t *svc;
	int catalog_healthy = 0;
	json_array_foreach(json_object_get(v, "services"), i, svc)
	{
		if (strcmp(json_string_value(json_object_get(svc, "name")), "catalog") != 0)
			continue;
		size_t j;
		json_t *in;
		json_array_foreach(json_object_get(svc, "instances"), j, in)
			catalog_healthy += json_is_true(json_object_get(in, "healthy"));
	}
	assert_int_equal(catalog_healthy, 3);
	json_decref(v);
}

static void test_metrics_count_requests(void **unused)
{
	const char *series = "http_requests_total{route=\"/v1/products\","
			     "method=\"GET\",status=\"404\"}";
	long long before = metric(series);
	for (int k = 0; k < 25; k++)
		assert_int_equal(itest_req("GET", "/v1/products/NOT-THERE", NULL, NULL, NULL, NULL), 404);
	assert_int_equal(metric(series) - before, 25);
	msg_resp r;
	assert_int_equal(itest_req("GET", "/metrics", NULL, NULL, NULL, &r), 200);
	assert_non_null(strstr(r.body, "# TYPE http_request_duration_seconds histogram"));
	assert_non_null(strstr(r.body, "http_request_duration_seconds_bucket{route=\"/v1/products\""));
	msg_resp_clear(&r);
}

static void test_kill_one_replica(void **unused)
{
	pid_t victim = itest_pid_of("catalog-2");
	assert_true(victim > 0);
	assert_int_equal(kill(victim, SIGKILL), 0);
	/* kill() returns before the process is gone; a request already on its
	 * way to it while it dies may or may not have been applied, and the
	 * gateway rightly refuses to guess for a write. Once it is dead, every
	 * request must succeed. */
	for (int k = 0; k < 200 && itest_alive(victim); k++)
		usleep(10000);
	assert_false(itest_alive(victim));
	/* Every request after the kill succeeds: reads and writes. */
	for (int k = 0; k < 60; k++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/products?page_size=%d", 1 + k % 7);
		assert_int_equal(itest_req("GET", path, NULL, NULL, NULL, NULL), 200);
		if (k % 10 == 0) {
			char body[256];
			snprintf(body, sizeof(body),
				 "{\"sku\":\"KILL-%d\",\"name\":\"After kill %d\",\"category\":\"toys\","
				 "\"price_cents\":%d}",
				 k, k, 100 + k);
			msg_resp r;
			int status = itest_req("POST", "/v1/products", body, ITEST_TOKEN, NULL, &r);
			if (status != 201) {
				itest_print_log_tail("gateway-1.log", 30);
				itest_print_log_tail("catalog-2.log", 30);
				fail_msg("POST after the kill: %d %.300s", status, r.body ? r.body : "");
			}
			msg_resp_clear(&r);
		}
	}
	/* The supervisor brings it back under a new pid. */
	pid_t again = 0;
	for (int k = 0; k < 100 && (again == 0 || again == victim); k++) {
		usleep(100000);
		again = itest_pid_of("catalog-2");
	}
	assert_true(again > 0 && again != victim);
	itest_remember_pids();
}

static void test_status_and_seed(void **unused)
{
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "status", "--state", IT.state, NULL), 0);
	assert_non_null(strstr(out, "catalog-3"));
	assert_non_null(strstr(out, "gateway-1"));
	free(out);
	assert_int_equal(itest_run(&out, NULL, "status", "--state", IT.state, "--json", NULL), 0);
	json_t *v = json_loads(out, 0, NULL);
	assert_non_null(v);
	/* One row per instance: the gateway, three catalogs, one of each other
	 * service. */
	int per[3] = { 0, 0, 0 };
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(v, "instances"), i, in)
	{
		const char *svc = json_string_value(json_object_get(in, "service"));
		per[0] += strcmp(svc, "gateway") == 0;
		per[1] += strcmp(svc, "catalog") == 0;
		per[2] += strcmp(svc, "inventory") == 0;
	}
	assert_int_equal(per[0], 1);
	assert_int_equal(per[1], 3);
	assert_int_equal(per[2], 1);
	json_decref(v);
	free(out);

	assert_int_equal(itest_run(NULL, NULL, "seed", "--products", "450", "--seed", "7", "--state", IT.state,
			     NULL),
			 0);
	json_t *a = NULL, *b = NULL;
	assert_int_equal(itest_req("GET", "/v1/products/SYN-00000450", NULL, NULL, &a, NULL), 200);
	assert_int_equal(itest_req("GET", "/v1/products/SYN-00000451", NULL, NULL, NULL, NULL), 404);
	/* The same seed gives the same catalog. */
	assert_int_equal(itest_run(NULL, NULL, "seed", "--products", "450", "--seed", "7", "--url", IT.url,
			     NULL),
			 0);
	assert_int_equal(itest_req("GET", "/v1/products/SYN-00000450", NULL, NULL, &b, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(a, "name")),
			    json_string_value(json_object_get(b, "name")));
	assert_int_equal(json_integer_value(json_object_get(a, "price_cents")),
			 json_integer_value(json_object_get(b, "price_cents")));
	json_decref(a);
	json_decref(b);
}

static void test_down_leaves_nothing(void **unused)
{
	itest_remember_pids();
	assert_true(IT.npids >= 5);
	char *out = NULL;
	assert_int_equal(itest_run(&out, NULL, "down", "--state", IT.state, NULL), 0);
	free(out);
	for (int i = 0; i < IT.npids; i++)
		assert_false(itest_alive(IT.pids[i]));
	assert_int_equal(itest_run(NULL, NULL, "status", "--state", IT.state, NULL), 1);
	assert_int_equal(itest_req("GET", "/v1/products", NULL, NULL, NULL, NULL), -1);
	/* down again is harmless */
	assert_int_equal(itest_run(NULL, NULL, "down", "--state", IT.state, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cli_contract),
		cmocka_unit_test(test_bad_environment),
		cmocka_unit_test(test_second_up_refused),
		cmocka_unit_test(test_state_directory),
		cmocka_unit_test(test_catalog_through_gateway),
		cmocka_unit_test(test_admin_services),
		cmocka_unit_test(test_metrics_count_requests),
		cmocka_unit_test(test_kill_one_replica),
		cmocka_unit_test(test_status_and_seed),
		cmocka_unit_test(test_down_leaves_nothing),
	};
	return cmocka_run_group_tests_name("integration: platform", tests, setup, teardown);
}
