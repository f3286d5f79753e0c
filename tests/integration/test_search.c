/* Integration: search on the real platform, through the gateway. `ecom up`
 * starts a search instance, which builds its index from the catalog on its
 * own; `ecom seed` adds synthetic products and `ecom search reindex` makes
 * every search instance take them in; searches, facets, filters, pages and
 * suggestions then come through the gateway. Catalog changes reach the
 * index with the next rebuild (until the bus delivers the catalog's
 * events). The index is a SQLite file per instance under the state
 * directory, also when the store is PostgreSQL; deleted while the platform
 * is down, it is rebuilt at the next start. Runs on SQLite, and on
 * PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

#define SEEDED 3000

static int setup(void **unused) { return itest_up(NULL); }

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

static json_t *get(const char *path, int want)
{
	json_t *v = NULL;
	int status = itest_req("GET", path, NULL, NULL, &v, NULL);
	if (status != want) {
		char *s = v ? json_dumps(v, 0) : NULL;
		fail_msg("GET %s: %d, expected %d: %s", path, status, want, s ? s : "");
	}
	return v;
}

static long long jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* Waits (at most 60 s) until the search index says it is built. */
static void wait_built(void)
{
	for (int i = 0; i < 600; i++) {
		json_t *v = NULL;
		int status = itest_req("GET", "/v1/search/_status", NULL, ITEST_TOKEN, &v, NULL);
		int built = status == 200 && json_is_true(json_object_get(v, "built")) &&
			    strcmp(json_string_value(json_object_get(json_object_get(v, "reindex"),
								     "state")),
				   "IDLE") == 0;
		json_decref(v);
		if (built)
			return;
		usleep(100000);
	}
	fail_msg("the search index was not built within 60 s");
}

static void reindex(void)
{
	char *out = NULL, *err = NULL;
	int rc = itest_run(&out, &err, "search", "reindex", "--state", IT.state, "--timeout", "120",
			   NULL);
	if (rc != 0)
		fail_msg("ecom search reindex: %d: %s", rc, err ? err : "");
	assert_non_null(strstr(out, "search-1: "));
	assert_non_null(strstr(out, "products indexed"));
	free(out);
	free(err);
}

static int has_sku(json_t *v, const char *sku)
{
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(v, "items"), i, it)
		if (strcmp(json_string_value(json_object_get(it, "sku")), sku) == 0)
			return 1;
	return 0;
}

static void index_file(char *path, size_t len)
{
	snprintf(path, len, "%s/data/search-1.db", IT.state);
}

static void test_starter_catalog(void **unused)
{
	wait_built();
	json_t *v = get("/v1/search?q=headphones", 200);
	assert_true(jint(v, "total") >= 1);
	assert_true(has_sku(v, "ELEC-001"));
	assert_true(jint(json_object_get(v, "facets"), "electronics") >= 1);
	json_decref(v);
	/* the index is a file of the instance's own, whatever the store */
	char path[512];
	index_file(path, sizeof(path));
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	/* the admin routes refuse anonymous callers at the service too */
	assert_int_equal(itest_req("GET", "/v1/search/_status", NULL, NULL, NULL, NULL), 401);
}

static void test_seed_and_reindex(void **unused)
{
	char *out = NULL, *err = NULL;
	char n[16];
	snprintf(n, sizeof(n), "%d", SEEDED);
	int rc = itest_run(&out, &err, "seed", "--state", IT.state, "--products", n, NULL);
	if (rc != 0)
		fail_msg("ecom seed: %d: %s", rc, err ? err : "");
	free(out);
	free(err);
	reindex();
	json_t *st = NULL;
	assert_int_equal(itest_req("GET", "/v1/search/_status", NULL, ITEST_TOKEN, &st, NULL), 200);
	assert_true(jint(st, "documents") >= SEEDED + 100);
	json_decref(st);

	/* the product seeded as number 1234 */
	json_t *v = get("/v1/search?q=1234", 200);
	assert_int_equal(jint(v, "total"), 1);
	assert_true(has_sku(v, "SYN-00001234"));
	json_decref(v);

	/* a common word: facets add up to the total */
	v = get("/v1/search?q=compact&limit=5", 200);
	long long total = jint(v, "total"), sum = 0;
	assert_true(total > 100);
	const char *k;
	json_t *c;
	json_object_foreach(json_object_get(v, "facets"), k, c)
		sum += (long long)json_integer_value(c);
	assert_int_equal(sum, total);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 5);
	/* every page once, through the gateway */
	char path[1024];
	snprintf(path, sizeof(path), "/v1/search?q=compact+kettle&limit=7");
	json_t *first = get(path, 200);
	long long want = jint(first, "total");
	json_decref(first);
	assert_true(want > 0);
	long long seen = 0;
	char skus[512][16];
	for (int page = 0; page < 100; page++) {
		json_t *p = get(path, 200);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(p, "items"), i, it) {
			const char *sku = json_string_value(json_object_get(it, "sku"));
			for (long long s = 0; s < seen && s < 512; s++)
				assert_string_not_equal(skus[s], sku);
			if (seen < 512)
				snprintf(skus[seen], sizeof(skus[0]), "%s", sku);
			seen++;
		}
		json_t *next = json_object_get(p, "next_page_token");
		if (json_is_null(next)) {
			json_decref(p);
			break;
		}
		snprintf(path, sizeof(path), "/v1/search?q=compact+kettle&limit=7&page_token=%s",
			 json_string_value(next));
		json_decref(p);
	}
	assert_int_equal(seen, want);
	json_decref(v);

	/* filters */
	v = get("/v1/search?q=compact&category=kitchen&max_price=2000&limit=100", 200);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(v, "items"), i, it) {
		assert_string_equal(json_string_value(json_object_get(it, "category")), "kitchen");
		assert_true(jint(it, "price_cents") <= 2000);
	}
	assert_true(jint(v, "total") > 0);
	json_decref(v);

	/* typos, prefixes, suggestions */
	v = get("/v1/search?q=compcat+ketle+", 200);
	assert_string_equal(json_string_value(json_object_get(v, "query")), "compact kettle");
	assert_int_equal(jint(v, "total"), want);
	json_decref(v);
	v = get("/v1/search/suggest?q=compact+ket", 200);
	assert_string_equal(json_string_value(json_array_get(json_object_get(v, "suggestions"), 0)),
			    "compact kettle");
	json_decref(v);
}

static void test_changes_reach_the_index(void **unused)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("PUT", "/v1/products/SYN-00000042",
				   "{\"name\":\"Zanzibar Telescope 42\",\"category\":\"toys\","
				   "\"price_cents\":4200}",
				   ITEST_TOKEN, NULL, NULL),
			 200);
	assert_int_equal(itest_req("DELETE", "/v1/products/SYN-00000043", NULL, ITEST_TOKEN, NULL,
				   NULL),
			 200);
	reindex();
	v = get("/v1/search?q=zanzibar", 200);
	assert_int_equal(jint(v, "total"), 1);
	assert_true(has_sku(v, "SYN-00000042"));
	json_decref(v);
	v = get("/v1/search?q=43+", 200);
	assert_false(has_sku(v, "SYN-00000043"));
	json_decref(v);
}

/* Without a reindex: the catalog's product events reach the index through
 * the bus (embedded feed) within a bounded lag. */
static void test_changes_through_the_bus(void **unused)
{
	assert_int_equal(itest_req("PUT", "/v1/products/SYN-00000044",
				   "{\"name\":\"Quokka Lantern 44\",\"category\":\"toys\","
				   "\"price_cents\":4400}",
				   ITEST_TOKEN, NULL, NULL),
			 200);
	int found = 0;
	for (int waited = 0; waited < 15000 && !found; waited += 100) {
		json_t *v = get("/v1/search?q=quokka", 200);
		found = has_sku(v, "SYN-00000044");
		json_decref(v);
		if (!found)
			usleep(100000);
	}
	assert_true(found);
	assert_int_equal(itest_req("DELETE", "/v1/products/SYN-00000044", NULL, ITEST_TOKEN, NULL,
				   NULL),
			 200);
	int gone = 0;
	for (int waited = 0; waited < 15000 && !gone; waited += 100) {
		json_t *v = get("/v1/search?q=quokka", 200);
		gone = !has_sku(v, "SYN-00000044");
		json_decref(v);
		if (!gone)
			usleep(100000);
	}
	assert_true(gone);
}

/* Search down (an outage fault on every search instance): the gateway
 * answers a query it has no stale copy of from the catalog's listing with
 * the request's filters, and says so; suggestions fall back to none. */
static void test_fallback_when_search_is_down(void **unused)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("PUT", "/admin/faults/search", "{\"outage\":true}",
				   ITEST_TOKEN, &v, NULL),
			 200);
	json_decref(v);
	msg_resp r;
	v = NULL;
	assert_int_equal(itest_req("GET", "/v1/search?q=never+asked+before&category=books&limit=5",
				   NULL, NULL, &v, &r),
			 200);
	const char *h = msg_resp_header(&r, "X-Ecom-Fallback");
	assert_non_null(h);
	assert_string_equal(h, "catalog-listing");
	assert_string_equal(json_string_value(json_object_get(v, "ranking")), "fallback");
	json_t *items = json_object_get(v, "items");
	assert_true(json_array_size(items) > 0 && json_array_size(items) <= 5);
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
		assert_string_equal(json_string_value(json_object_get(it, "category")), "books");
	json_decref(v);
	msg_resp_clear(&r);
	v = NULL;
	assert_int_equal(itest_req("GET", "/v1/search/suggest?q=kett", NULL, NULL, &v, &r), 200);
	assert_int_equal(json_array_size(json_object_get(v, "suggestions")), 0);
	assert_non_null(msg_resp_header(&r, "X-Ecom-Fallback"));
	json_decref(v);
	msg_resp_clear(&r);
	assert_int_equal(itest_req("DELETE", "/admin/faults/search", NULL, ITEST_TOKEN, NULL, NULL),
			 200);
	v = get("/v1/search?q=kettle", 200);
	assert_string_not_equal(json_string_value(json_object_get(v, "ranking")), "fallback");
	json_decref(v);
}

static void test_bad_input(void **unused)
{
	static const char *const bad[] = { "/v1/search", "/v1/search?q=", "/v1/search?q=%22",
					   "/v1/search?q=*", "/v1/search?q=%ff" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v = get(bad[i], 400);
		assert_string_equal(itest_err_code(v), "invalid_argument");
		json_decref(v);
	}
	/* FTS5 syntax is text */
	json_t *v = get("/v1/search?q=NEAR(compact+kettle)+OR+%22x%22+*", 200);
	json_decref(v);
	/* 10 KB: refused at the edge (the request line is over the header
	 * limit) or by the service; never a 5xx */
	char *path = malloc(11000);
	assert_non_null(path);
	strcpy(path, "/v1/search?q=");
	for (int i = 0; i < 10240; i++)
		path[13 + i] = (char)('a' + i % 26);
	path[13 + 10240] = '\0';
	int status = itest_req("GET", path, NULL, NULL, NULL, NULL);
	free(path);
	assert_true(status == 400 || status == 414 || status == 431);
}

/* The index deleted while the platform is down: rebuilt at the start. */
static void test_rebuilt_after_index_deleted(void **unused)
{
	char *out = NULL, *err = NULL;
	assert_int_equal(itest_run(&out, &err, "down", "--state", IT.state, NULL), 0);
	free(out);
	free(err);
	char path[512], p2[600];
	index_file(path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	snprintf(p2, sizeof(p2), "%s-wal", path);
	unlink(p2);
	snprintf(p2, sizeof(p2), "%s-shm", path);
	unlink(p2);
	IT.url[0] = '\0';
	/* itest_restart runs `down` first, which is harmless when down */
	assert_int_equal(itest_restart(NULL), 0);
	wait_built();
	json_t *v = get("/v1/search?q=zanzibar", 200);
	assert_int_equal(jint(v, "total"), 1);
	json_decref(v);
	v = get("/v1/search?q=1234", 200);
	assert_true(has_sku(v, "SYN-00001234"));
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starter_catalog),
		cmocka_unit_test(test_seed_and_reindex),
		cmocka_unit_test(test_changes_reach_the_index),
		cmocka_unit_test(test_changes_through_the_bus),
		cmocka_unit_test(test_fallback_when_search_is_down),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_rebuilt_after_index_deleted),
	};
	return cmocka_run_group_tests_name("integration: search", tests, setup, teardown);
}
