/* Tests for services/catalog through its engine_def: listing, filters and
 * page tokens, reads, admin writes and their validation, bulk upserts (all or
 * nothing) and the first-start loader. Each test gets its own in-memory
 * store, a virtual clock and a five-product seed file, so nothing depends on
 * the shipped catalog except the one test that checks it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/trace.h"
#include "net/msg.h"
#include "services/catalog.h"
#include "store/store.h"

#include "efix.h"

#define T0 1764112255000000LL /* 2025-11-25T23:10:55Z */
#define ADMIN "Bearer test-admin"

/* Deliberately not in sku order: listing must sort. */
static const char SEED[] =
	"[\n"
	" {\"sku\":\"TOY-3\",\"name\":\"Robot\",\"description\":\"Walks\",\"category\":\"toys\","
	"\"price_cents\":2500,\"currency\":\"USD\"},\n"
	" {\"sku\":\"BK-1\",\"name\":\"Book One\",\"description\":\"A novel\",\"category\":\"books\","
	"\"price_cents\":1500,\"currency\":\"USD\"},\n"
	" {\"sku\":\"TOY-1\",\"name\":\"Yo-yo\",\"description\":\"Classic\",\"category\":\"toys\","
	"\"price_cents\":300,\"currency\":\"USD\"},\n"
	" {\"sku\":\"KT-1\",\"name\":\"Pan\",\"description\":\"Cast iron\",\"category\":\"kitchen\","
	"\"price_cents\":4200,\"currency\":\"EUR\"},\n"
	" {\"sku\":\"BK-2\",\"name\":\"Book Two\",\"category\":\"books\",\"price_cents\":999}\n"
	"]\n";
static const char *const SORTED[] = { "BK-1", "BK-2", "KT-1", "TOY-1", "TOY-3" };
#define NSEED 5

/* ---- fixture and requests ------------------------------------------------- */

/* The context with this file's SEED as catalog.seed_file, or seed_file
 * instead when not NULL ("" for the default data/catalog/products.json);
 * the engine is not created. */
static efix *fixture_new(const char *seed_file)
{
	efix *f = efix_new("catalog", "sqlite::memory:", T0, 1);
	efix_seed(f, SEED);
	if (seed_file)
		assert_int_equal(config_set(f->config, "catalog.seed_file", seed_file), 0);
	return f;
}

static int setup(void **state)
{
	efix *f = fixture_new(NULL);
	f->eng = efix_create_engine(f);
	*state = f;
	return 0;
}

/* Runs a request and returns the parsed JSON body (new reference), with the
 * status in *status. Every answer of this API is JSON. */
static json_t *call(efix *f, const char *method, const char *path, const char *auth,
		    const char *body, int *status)
{
	return efix_call(f, method, path, NULL, auth, body, status);
}

static json_t *get_ok(efix *f, const char *path)
{
	return efix_expect(f, "GET", path, NULL, NULL, NULL, 200);
}

/* Asserts the API error shape with code and, when field is not NULL,
 * details.field; consumes v. */
static void assert_error(json_t *v, const char *code, const char *field)
{
	efix_assert_error(v, code, "field", field);
}

static void expect_error(efix *f, const char *method, const char *path, const char *auth,
			 const char *body, int want_status, const char *code, const char *field)
{
	assert_error(efix_expect(f, method, path, NULL, auth, body, want_status), code, field);
}

static int64_t store_count(efix *f)
{
	int err = 0;
	store_stmt *st = store_prepare(f->store, "SELECT COUNT(*) FROM products", &err);
	assert_non_null(st);
	assert_int_equal(store_step(st), STORE_ROW);
	int64_t n = store_col_int(st, 0);
	store_reset(st);
	return n;
}

static const char *item_sku(json_t *list, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(list, "items"), i),
						 "sku"));
}

static size_t item_count(json_t *list)
{
	json_t *items = json_object_get(list, "items");
	assert_true(json_is_array(items));
	return json_array_size(items);
}

/* Asserts the listing at path has exactly the skus given, in order, on one
 * page. */
static void expect_skus(efix *f, const char *path, const char *const *skus, size_t n)
{
	json_t *v = get_ok(f, path);
	if (item_count(v) != n)
		fail_msg("GET %s: %zu items, expected %zu", path, item_count(v), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(item_sku(v, i), skus[i]);
	assert_true(json_is_null(json_object_get(v, "next_page_token")));
	json_decref(v);
}

static void rfc3339(int64_t t, char *buf) { clock_fmt_rfc3339(t, buf, 40); }

/* ---- listing ----------------------------------------------------------------- */

static void test_list_default_page(void **state)
{
	efix *f = *state;
	assert_int_equal(store_count(f), NSEED);
	json_t *v = get_ok(f, "/v1/products");
	assert_int_equal(json_object_size(v), 2);
	assert_int_equal(item_count(v), NSEED);
	for (size_t i = 0; i < NSEED; i++)
		assert_string_equal(item_sku(v, i), SORTED[i]);
	assert_true(json_object_get(v, "next_page_token") != NULL);
	assert_true(json_is_null(json_object_get(v, "next_page_token")));
	json_decref(v);

	/* a short page has a token that leads to the rest */
	v = get_ok(f, "/v1/products?page_size=3");
	assert_int_equal(item_count(v), 3);
	assert_string_equal(item_sku(v, 2), "KT-1");
	const char *tok = json_string_value(json_object_get(v, "next_page_token"));
	assert_non_null(tok);
	char path[256];
	snprintf(path, sizeof(path), "/v1/products?page_size=3&page_token=%s", tok);
	json_decref(v);
	v = get_ok(f, path);
	assert_int_equal(item_count(v), 2);
	assert_string_equal(item_sku(v, 0), "TOY-1");
	assert_string_equal(item_sku(v, 1), "TOY-3");
	assert_true(json_is_null(json_object_get(v, "next_page_token")));
	json_decref(v);

	/* the default page size comes from the config */
	catalog_engine.destroy(f->eng);
	f->eng = NULL;
	assert_int_equal(config_set(f->config, "catalog.page_size_default", "2"), 0);
	f->eng = efix_create_engine(f);
	v = get_ok(f, "/v1/products");
	assert_int_equal(item_count(v), 2);
	assert_true(json_is_string(json_object_get(v, "next_page_token")));
	json_decref(v);
}

static void test_paging_every_sku_once(void **state)
{
	efix *f = *state;
	char path[256] = "/v1/products?page_size=2";
	const char *seen[NSEED + 1];
	size_t nseen = 0;
	int pages = 0;
	char *owned[NSEED + 1] = { 0 };
	for (;;) {
		assert_true(++pages <= NSEED + 1); /* no endless token loop */
		json_t *v = get_ok(f, path);
		size_t n = item_count(v);
		assert_true(n >= 1 && n <= 2);
		for (size_t i = 0; i < n; i++) {
			assert_true(nseen < NSEED);
			owned[nseen] = strdup(item_sku(v, i));
			seen[nseen] = owned[nseen];
			nseen++;
		}
		json_t *tok = json_object_get(v, "next_page_token");
		if (json_is_null(tok)) {
			json_decref(v);
			break;
		}
		assert_true(json_is_string(tok));
		assert_int_equal(n, 2); /* only a full page may have a successor */
		snprintf(path, sizeof(path), "/v1/products?page_size=2&page_token=%s",
			 json_string_value(tok));
		json_decref(v);
	}
	assert_int_equal(pages, 3);
	assert_int_equal(nseen, NSEED);
	for (size_t i = 0; i < NSEED; i++) {
		assert_string_equal(seen[i], SORTED[i]);
		free(owned[i]);
	}

	/* tokens are stable: a product added behind the cursor is not seen, one
	 * ahead of it is */
	json_t *v = get_ok(f, "/v1/products?page_size=2");
	char tok[128];
	snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(v, "next_page_token")));
	json_decref(v);
	int status = 0;
	v = call(f, "POST", "/v1/products", ADMIN,
		 "{\"sku\":\"AA-0\",\"name\":\"First\",\"category\":\"books\",\"price_cents\":1}",
		 &status);
	assert_int_equal(status, 201);
	json_decref(v);
	v = call(f, "POST", "/v1/products", ADMIN,
		 "{\"sku\":\"ZZ-9\",\"name\":\"Last\",\"category\":\"books\",\"price_cents\":1}",
		 &status);
	assert_int_equal(status, 201);
	json_decref(v);
	snprintf(path, sizeof(path), "/v1/products?page_size=100&page_token=%s", tok);
	const char *rest[] = { "KT-1", "TOY-1", "TOY-3", "ZZ-9" };
	expect_skus(f, path, rest, 4);
}

static void test_category_filter(void **state)
{
	efix *f = *state;
	const char *toys[] = { "TOY-1", "TOY-3" };
	expect_skus(f, "/v1/products?category=toys", toys, 2);
	const char *kitchen[] = { "KT-1" };
	expect_skus(f, "/v1/products?category=kitchen", kitchen, 1);
	expect_skus(f, "/v1/products?category=garden", NULL, 0);

	/* filter and paging together */
	json_t *v = get_ok(f, "/v1/products?category=books&page_size=1");
	assert_int_equal(item_count(v), 1);
	assert_string_equal(item_sku(v, 0), "BK-1");
	char path[256];
	snprintf(path, sizeof(path), "/v1/products?category=books&page_size=1&page_token=%s",
		 json_string_value(json_object_get(v, "next_page_token")));
	json_decref(v);
	v = get_ok(f, path);
	assert_int_equal(item_count(v), 1);
	assert_string_equal(item_sku(v, 0), "BK-2");
	/* the page was full, so a token may follow; it must then lead to nothing */
	json_t *tok = json_object_get(v, "next_page_token");
	if (json_is_string(tok)) {
		snprintf(path, sizeof(path),
			 "/v1/products?category=books&page_size=1&page_token=%s",
			 json_string_value(tok));
		expect_skus(f, path, NULL, 0);
	}
	json_decref(v);

	expect_error(f, "GET", "/v1/products?category=Big%20Cats", NULL, NULL, 400,
		     "invalid_argument", "category");
}

static void test_price_filters(void **state)
{
	efix *f = *state;
	const char *min1000[] = { "BK-1", "KT-1", "TOY-3" };
	expect_skus(f, "/v1/products?min_price=1000", min1000, 3);
	const char *max1000[] = { "BK-2", "TOY-1" };
	expect_skus(f, "/v1/products?max_price=1000", max1000, 2);
	/* both bounds are inclusive */
	const char *band[] = { "BK-1", "BK-2" };
	expect_skus(f, "/v1/products?min_price=999&max_price=1500", band, 2);
	const char *exact[] = { "TOY-1" };
	expect_skus(f, "/v1/products?min_price=300&max_price=300", exact, 1);
	const char *toys[] = { "TOY-3" };
	expect_skus(f, "/v1/products?category=toys&min_price=301", toys, 1);

	expect_error(f, "GET", "/v1/products?min_price=2000&max_price=1000", NULL, NULL, 400,
		     "invalid_argument", "min_price");
	expect_error(f, "GET", "/v1/products?min_price=abc", NULL, NULL, 400, "invalid_argument",
		     "min_price");
	expect_error(f, "GET", "/v1/products?max_price=-1", NULL, NULL, 400, "invalid_argument",
		     "max_price");
}

static void test_bad_page_token(void **state)
{
	efix *f = *state;
	expect_error(f, "GET", "/v1/products?page_token=garbage", NULL, NULL, 400,
		     "invalid_argument", "page_token");
	expect_error(f, "GET", "/v1/products?page_token=p1zz", NULL, NULL, 400, "invalid_argument",
		     "page_token");
	expect_error(f, "GET", "/v1/products?page_token=p1", NULL, NULL, 400, "invalid_argument",
		     "page_token");
	expect_error(f, "GET", "/v1/products?page_token=", NULL, NULL, 400, "invalid_argument",
		     "page_token");
}

static void test_page_size_bounds(void **state)
{
	efix *f = *state;
	expect_error(f, "GET", "/v1/products?page_size=0", NULL, NULL, 400, "invalid_argument",
		     "page_size");
	expect_error(f, "GET", "/v1/products?page_size=101", NULL, NULL, 400, "invalid_argument",
		     "page_size");
	expect_error(f, "GET", "/v1/products?page_size=-5", NULL, NULL, 400, "invalid_argument",
		     "page_size");
	expect_error(f, "GET", "/v1/products?page_size=2x", NULL, NULL, 400, "invalid_argument",
		     "page_size");
	json_t *v = get_ok(f, "/v1/products?page_size=100");
	assert_int_equal(item_count(v), NSEED);
	json_decref(v);
	v = get_ok(f, "/v1/products?page_size=1");
	assert_int_equal(item_count(v), 1);
	json_decref(v);
}

/* ---- reads ------------------------------------------------------------------- */

static void test_get_by_sku(void **state)
{
	efix *f = *state;
	json_t *v = get_ok(f, "/v1/products/KT-1");
	assert_int_equal(json_object_size(v), 8);
	assert_string_equal(json_string_value(json_object_get(v, "sku")), "KT-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Pan");
	assert_string_equal(json_string_value(json_object_get(v, "description")), "Cast iron");
	assert_string_equal(json_string_value(json_object_get(v, "category")), "kitchen");
	assert_true(json_is_integer(json_object_get(v, "price_cents")));
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 4200);
	assert_string_equal(json_string_value(json_object_get(v, "currency")), "EUR");
	char ts[40];
	rfc3339(T0, ts);
	assert_string_equal(json_string_value(json_object_get(v, "created_at")), ts);
	assert_string_equal(json_string_value(json_object_get(v, "updated_at")), ts);
	json_decref(v);

	/* defaults from the loader: empty description, USD */
	v = get_ok(f, "/v1/products/BK-2");
	assert_string_equal(json_string_value(json_object_get(v, "description")), "");
	assert_string_equal(json_string_value(json_object_get(v, "currency")), "USD");
	json_decref(v);

	/* list items carry the same fields */
	v = get_ok(f, "/v1/products?category=kitchen");
	json_t *item = json_array_get(json_object_get(v, "items"), 0);
	assert_int_equal(json_object_size(item), 8);
	assert_int_equal(json_integer_value(json_object_get(item, "price_cents")), 4200);
	json_decref(v);
}

static void test_get_unknown_sku(void **state)
{
	efix *f = *state;
	int status = 0;
	json_t *v = call(f, "GET", "/v1/products/NOPE-1", NULL, NULL, &status);
	assert_int_equal(status, 404);
	assert_error(v, "not_found", NULL);
	v = call(f, "GET", "/v1/products/has%20space", NULL, NULL, &status);
	assert_int_equal(status, 404);
	assert_error(v, "not_found", NULL);
	v = call(f, "GET", "/v1/nothing", NULL, NULL, &status);
	assert_int_equal(status, 404);
	assert_error(v, "not_found", NULL);
}

/* ---- writes -------------------------------------------------------------------- */

static const char NEW_PRODUCT[] =
	"{\"sku\":\"GD-1\",\"name\":\"Trowel\",\"description\":\"Steel\",\"category\":\"garden\","
	"\"price_cents\":1299,\"currency\":\"GBP\"}";

static void test_create_needs_admin(void **state)
{
	efix *f = *state;
	msg_resp resp;
	efix_do(f, NULL, "POST", "/v1/products", NULL, NULL, "application/json", NEW_PRODUCT,
	        &resp);
	assert_int_equal(resp.status, 401);
	assert_non_null(msg_resp_header(&resp, "WWW-Authenticate"));
	msg_resp_clear(&resp);

	expect_error(f, "POST", "/v1/products", "Bearer wrong-token", NEW_PRODUCT, 401,
		     "unauthenticated", NULL);
	expect_error(f, "POST", "/v1/products", "Bearer test-admin-and-more", NEW_PRODUCT, 401,
		     "unauthenticated", NULL);
	expect_error(f, "POST", "/v1/products", "test-admin", NEW_PRODUCT, 401, "unauthenticated",
		     NULL);
	expect_error(f, "POST", "/v1/products", "Bearer ", NEW_PRODUCT, 401, "unauthenticated",
		     NULL);
	assert_int_equal(store_count(f), NSEED);

	clock_advance(f->clock, 1000000);
	int status = 0;
	json_t *v = call(f, "POST", "/v1/products", ADMIN, NEW_PRODUCT, &status);
	assert_int_equal(status, 201);
	assert_string_equal(json_string_value(json_object_get(v, "sku")), "GD-1");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1299);
	json_decref(v);
	assert_int_equal(store_count(f), NSEED + 1);

	v = get_ok(f, "/v1/products/GD-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Trowel");
	assert_string_equal(json_string_value(json_object_get(v, "description")), "Steel");
	assert_string_equal(json_string_value(json_object_get(v, "category")), "garden");
	assert_string_equal(json_string_value(json_object_get(v, "currency")), "GBP");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1299);
	char ts[40];
	rfc3339(T0 + 1000000, ts);
	assert_string_equal(json_string_value(json_object_get(v, "created_at")), ts);
	json_decref(v);
	const char *garden[] = { "GD-1" };
	expect_skus(f, "/v1/products?category=garden", garden, 1);

	/* no Content-Type at all is taken as JSON */
	efix_do(f, NULL, "POST", "/v1/products", NULL, ADMIN, "",
	        "{\"sku\":\"GD-2\",\"name\":\"Rake\",\"category\":\"garden\",\"price_cents\":0}",
	        &resp);
	assert_int_equal(resp.status, 201);
	msg_resp_clear(&resp);
	efix_do(f, NULL, "POST", "/v1/products", NULL, ADMIN, "application/json; charset=utf-8",
	        "{\"sku\":\"GD-3\",\"name\":\"Hoe\",\"category\":\"garden\",\"price_cents\":5}",
	        &resp);
	assert_int_equal(resp.status, 201);
	msg_resp_clear(&resp);
}

static void test_create_duplicate(void **state)
{
	efix *f = *state;
	expect_error(f, "POST", "/v1/products", ADMIN,
		     "{\"sku\":\"BK-1\",\"name\":\"Other\",\"category\":\"books\",\"price_cents\":1}",
		     409, "conflict", NULL);
	/* the original is untouched */
	json_t *v = get_ok(f, "/v1/products/BK-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Book One");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1500);
	json_decref(v);

	int status = 0;
	v = call(f, "POST", "/v1/products", ADMIN, NEW_PRODUCT, &status);
	assert_int_equal(status, 201);
	json_decref(v);
	expect_error(f, "POST", "/v1/products", ADMIN, NEW_PRODUCT, 409, "conflict", NULL);
	assert_int_equal(store_count(f), NSEED + 1);
}

static void test_create_validation(void **state)
{
	efix *f = *state;
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
		{ "{\"sku\":\"X-1\",\"category\":\"toys\",\"price_cents\":1}", "name" },
		{ "{\"sku\":\"X-1\",\"name\":\"\",\"category\":\"toys\",\"price_cents\":1}", "name" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":\"100\"}",
		  "price_cents" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1.5}",
		  "price_cents" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":-1}",
		  "price_cents" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\"}", "price_cents" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1,"
		  "\"currency\":\"usd\"}",
		  "currency" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1,"
		  "\"currency\":\"DOLLAR\"}",
		  "currency" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1,"
		  "\"currency\":\"USd\"}",
		  "currency" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"category\":\"Big Cats\",\"price_cents\":1}",
		  "category" },
		{ "{\"sku\":\"X-1\",\"name\":\"N\",\"price_cents\":1}", "category" },
		{ "{\"sku\":\"X 1\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1}", "sku" },
		{ "{\"sku\":\"\",\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1}", "sku" },
		{ "{\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1}", "sku" },
		{ "{\"sku\":42,\"name\":\"N\",\"category\":\"toys\",\"price_cents\":1}", "sku" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(f, "POST", "/v1/products", ADMIN, cases[i].body, 400, "invalid_argument",
			     cases[i].field);
	assert_int_equal(store_count(f), NSEED);
	int status = 0;
	json_t *v = call(f, "GET", "/v1/products/X-1", NULL, NULL, &status);
	assert_int_equal(status, 404);
	json_decref(v);
}

static void test_malformed_body(void **state)
{
	efix *f = *state;
	expect_error(f, "POST", "/v1/products", ADMIN, "{\"sku\":\"X-1\",", 400, "invalid_argument",
		     "body");
	expect_error(f, "POST", "/v1/products", ADMIN, "[1,2]", 400, "invalid_argument", "body");
	expect_error(f, "POST", "/v1/products", ADMIN, "", 400, "invalid_argument", "body");

	msg_resp resp;
	efix_do(f, NULL, "POST", "/v1/products", NULL, ADMIN, "text/plain", NEW_PRODUCT, &resp);
	assert_int_equal(resp.status, 415);
	json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(v);
	assert_error(v, "unsupported_media_type", NULL);
	msg_resp_clear(&resp);
	assert_int_equal(store_count(f), NSEED);
}

static void test_update(void **state)
{
	efix *f = *state;
	const char *body = "{\"name\":\"Book One (2nd ed.)\",\"category\":\"books\","
			   "\"price_cents\":1750,\"description\":\"Revised\"}";
	expect_error(f, "PUT", "/v1/products/BK-1", NULL, body, 401, "unauthenticated", NULL);

	clock_advance(f->clock, 60 * 1000000LL);
	int status = 0;
	json_t *v = call(f, "PUT", "/v1/products/BK-1", ADMIN, body, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1750);
	json_decref(v);

	v = get_ok(f, "/v1/products/BK-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Book One (2nd ed.)");
	assert_string_equal(json_string_value(json_object_get(v, "description")), "Revised");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 1750);
	char t0[40], t1[40];
	rfc3339(T0, t0);
	rfc3339(T0 + 60 * 1000000LL, t1);
	assert_string_equal(json_string_value(json_object_get(v, "created_at")), t0);
	assert_string_equal(json_string_value(json_object_get(v, "updated_at")), t1);
	json_decref(v);
	const char *band[] = { "BK-1" };
	expect_skus(f, "/v1/products?min_price=1700&max_price=1800", band, 1);

	/* the body may repeat the path's sku */
	v = call(f, "PUT", "/v1/products/BK-1", ADMIN,
		 "{\"sku\":\"BK-1\",\"name\":\"B\",\"category\":\"books\",\"price_cents\":1}",
		 &status);
	assert_int_equal(status, 200);
	json_decref(v);

	expect_error(f, "PUT", "/v1/products/NOPE-1", ADMIN, body, 404, "not_found", NULL);
	expect_error(f, "PUT", "/v1/products/BK-1", ADMIN,
		     "{\"sku\":\"BK-2\",\"name\":\"B\",\"category\":\"books\",\"price_cents\":1}",
		     400, "invalid_argument", "sku");
	expect_error(f, "PUT", "/v1/products/BK-1", ADMIN,
		     "{\"name\":\"B\",\"category\":\"books\",\"price_cents\":-3}", 400,
		     "invalid_argument", "price_cents");
	assert_int_equal(store_count(f), NSEED);
	/* BK-2 was not touched by the mismatched PUT */
	v = get_ok(f, "/v1/products/BK-2");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Book Two");
	json_decref(v);
}

static void test_bulk(void **state)
{
	efix *f = *state;
	const char *body =
		"{\"products\":["
		"{\"sku\":\"B-1\",\"name\":\"One\",\"category\":\"bulk\",\"price_cents\":100},"
		"{\"sku\":\"B-2\",\"name\":\"Two\",\"category\":\"bulk\",\"price_cents\":200},"
		"{\"sku\":\"TOY-1\",\"name\":\"Yo-yo Pro\",\"category\":\"toys\",\"price_cents\":350}"
		"]}";
	expect_error(f, "POST", "/v1/products/_bulk", NULL, body, 401, "unauthenticated", NULL);

	int status = 0;
	json_t *v = call(f, "POST", "/v1/products/_bulk", ADMIN, body, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_object_size(v), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "upserted")), 3);
	json_decref(v);
	assert_int_equal(store_count(f), NSEED + 2);
	const char *bulk[] = { "B-1", "B-2" };
	expect_skus(f, "/v1/products?category=bulk", bulk, 2);
	v = get_ok(f, "/v1/products/TOY-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Yo-yo Pro");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 350);
	json_decref(v);

	/* one bad product spoils the whole batch */
	const char *bad =
		"{\"products\":["
		"{\"sku\":\"B-3\",\"name\":\"Three\",\"category\":\"bulk\",\"price_cents\":300},"
		"{\"sku\":\"B-1\",\"name\":\"One v2\",\"category\":\"bulk\",\"price_cents\":101},"
		"{\"sku\":\"B-4\",\"name\":\"Four\",\"category\":\"bulk\",\"price_cents\":\"x\"},"
		"{\"sku\":\"B-5\",\"name\":\"Five\",\"category\":\"bulk\",\"price_cents\":500}"
		"]}";
	v = call(f, "POST", "/v1/products/_bulk", ADMIN, bad, &status);
	assert_int_equal(status, 400);
	json_t *field = json_object_get(
		json_object_get(json_object_get(v, "error"), "details"), "field");
	assert_true(json_is_string(field));
	assert_non_null(strstr(json_string_value(field), "price_cents"));
	assert_error(v, "invalid_argument", NULL);
	assert_int_equal(store_count(f), NSEED + 2);
	v = call(f, "GET", "/v1/products/B-3", NULL, NULL, &status);
	assert_int_equal(status, 404);
	json_decref(v);
	v = call(f, "GET", "/v1/products/B-5", NULL, NULL, &status);
	assert_int_equal(status, 404);
	json_decref(v);
	v = get_ok(f, "/v1/products/B-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "One");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 100);
	json_decref(v);

	/* a batch that is not an array of products */
	expect_error(f, "POST", "/v1/products/_bulk", ADMIN, "{\"products\":[]}", 400,
		     "invalid_argument", "products");
	expect_error(f, "POST", "/v1/products/_bulk", ADMIN, "{\"items\":[]}", 400,
		     "invalid_argument", "products");
	v = call(f, "POST", "/v1/products/_bulk", ADMIN, "{\"products\":[{\"sku\":\"B-6\"},7]}",
		 &status);
	assert_int_equal(status, 400);
	json_decref(v);
	assert_int_equal(store_count(f), NSEED + 2);
}

/* A batch that passes validation but fails in the database part-way is
 * rolled back: the rows written before the failure are gone too. */
static void test_bulk_rolls_back_on_store_failure(void **state)
{
	efix *f = *state;
	assert_int_equal(store_exec(f->store,
				    "CREATE TRIGGER fail_bulk BEFORE INSERT ON products "
				    "WHEN NEW.sku = 'B-FAIL' BEGIN SELECT RAISE(ABORT, 'boom'); END"),
			 0);
	const char *body =
		"{\"products\":["
		"{\"sku\":\"B-1\",\"name\":\"One\",\"category\":\"bulk\",\"price_cents\":100},"
		"{\"sku\":\"BK-1\",\"name\":\"Changed\",\"category\":\"books\",\"price_cents\":1},"
		"{\"sku\":\"B-FAIL\",\"name\":\"Boom\",\"category\":\"bulk\",\"price_cents\":1},"
		"{\"sku\":\"B-2\",\"name\":\"Two\",\"category\":\"bulk\",\"price_cents\":200}"
		"]}";
	int status = 0;
	json_t *v = call(f, "POST", "/v1/products/_bulk", ADMIN, body, &status);
	assert_true(status >= 500);
	json_decref(v);
	assert_int_equal(store_count(f), NSEED);
	expect_skus(f, "/v1/products?category=bulk", NULL, 0);
	v = get_ok(f, "/v1/products/BK-1");
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Book One");
	json_decref(v);

	/* the store is usable afterwards (no transaction left open) */
	assert_int_equal(store_exec(f->store, "DROP TRIGGER fail_bulk"), 0);
	v = call(f, "POST", "/v1/products/_bulk", ADMIN, body, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "upserted")), 4);
	json_decref(v);
	assert_int_equal(store_count(f), NSEED + 3);
}

static void test_method_not_allowed(void **state)
{
	efix *f = *state;
	msg_resp resp;
	efix_do(f, NULL, "DELETE", "/v1/products", NULL, ADMIN, NULL, NULL, &resp);
	assert_int_equal(resp.status, 405);
	const char *allow = msg_resp_header(&resp, "Allow");
	assert_non_null(allow);
	assert_non_null(strstr(allow, "GET"));
	assert_non_null(strstr(allow, "POST"));
	assert_null(strstr(allow, "DELETE"));
	json_t *v = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_error(v, "method_not_allowed", NULL);
	msg_resp_clear(&resp);

	efix_do(f, NULL, "PATCH", "/v1/products/BK-1", NULL, ADMIN, NULL, "{}", &resp);
	assert_int_equal(resp.status, 405);
	allow = msg_resp_header(&resp, "Allow");
	assert_non_null(allow);
	assert_non_null(strstr(allow, "GET"));
	assert_non_null(strstr(allow, "PUT"));
	assert_non_null(strstr(allow, "DELETE"));
	msg_resp_clear(&resp);
	assert_int_equal(store_count(f), NSEED);
}

/* ---- loading ------------------------------------------------------------------- */

static void test_loader_runs_once(void **state)
{
	efix *f = *state;
	int status = 0;
	clock_advance(f->clock, 5000000);
	json_t *v = call(f, "PUT", "/v1/products/KT-1", ADMIN,
			 "{\"name\":\"Pan XL\",\"category\":\"kitchen\",\"price_cents\":5000,"
			 "\"currency\":\"EUR\"}",
			 &status);
	assert_int_equal(status, 200);
	json_decref(v);
	v = call(f, "POST", "/v1/products", ADMIN, NEW_PRODUCT, &status);
	assert_int_equal(status, 201);
	json_decref(v);
	assert_int_equal(store_count(f), NSEED + 1);

	/* a second engine on the same store (a restart) does not reload */
	void *second = efix_create_engine(f);
	assert_int_equal(store_count(f), NSEED + 1);
	msg_resp resp;
	efix_do(f, second, "GET", "/v1/products/KT-1", NULL, NULL, NULL, NULL, &resp);
	assert_int_equal(resp.status, 200);
	v = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "name")), "Pan XL");
	assert_int_equal(json_integer_value(json_object_get(v, "price_cents")), 5000);
	json_decref(v);
	msg_resp_clear(&resp);
	catalog_engine.destroy(second);

	/* the loader itself reports that it had nothing to do */
	char err[256] = "";
	assert_int_equal(catalog_load_file(&f->ctx, f->seed_path, err, sizeof(err)), 0);
	assert_int_equal(store_count(f), NSEED + 1);
}

static void test_loader_errors(void **state)
{
	/* a missing seed file fails creation with a message */
	efix *f = fixture_new("/nonexistent/products.json");
	char err[256] = "";
	void *eng = catalog_engine.create(&f->ctx, err, sizeof(err));
	assert_null(eng);
	assert_true(strlen(err) > 0);

	/* an invalid product fails the load and stores none of the file */
	FILE *sf = fopen(f->seed_path, "w");
	assert_non_null(sf);
	fputs("[{\"sku\":\"OK-1\",\"name\":\"Fine\",\"category\":\"toys\",\"price_cents\":1},"
	      "{\"sku\":\"BAD 1\",\"name\":\"Bad\",\"category\":\"toys\",\"price_cents\":1}]",
	      sf);
	fclose(sf);
	err[0] = '\0';
	assert_true(catalog_load_file(&f->ctx, f->seed_path, err, sizeof(err)) < 0);
	assert_true(strlen(err) > 0);
	assert_int_equal(store_count(f), 0);

	/* a good file loads into the empty catalog and reports the count */
	sf = fopen(f->seed_path, "w");
	assert_non_null(sf);
	fputs(SEED, sf);
	fclose(sf);
	assert_int_equal(catalog_load_file(&f->ctx, f->seed_path, err, sizeof(err)), NSEED);
	assert_int_equal(store_count(f), NSEED);
	efix_free(f);
}

static void test_shipped_catalog(void **state)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/catalog/products.json", efix_data_dir());
	if (access(path, R_OK) != 0) {
		print_message("no %s yet; skipping\n", path);
		skip();
	}
	efix *f = fixture_new(""); /* empty: the default <data>/catalog/products.json */
	f->eng = efix_create_engine(f);
	int64_t total = store_count(f);
	assert_true(total >= 150);

	/* page through everything, collecting distinct categories */
	char cats[64][72];
	int ncats = 0;
	int64_t listed = 0;
	char url[512] = "/v1/products?page_size=100";
	for (int pages = 0;; pages++) {
		assert_true(pages < 1000);
		json_t *v = get_ok(f, url);
		size_t i;
		json_t *item;
		json_array_foreach(json_object_get(v, "items"), i, item) {
			const char *c = json_string_value(json_object_get(item, "category"));
			assert_non_null(c);
			int known = 0;
			for (int k = 0; k < ncats; k++)
				known |= strcmp(cats[k], c) == 0;
			if (!known && ncats < 64)
				snprintf(cats[ncats++], sizeof(cats[0]), "%s", c);
			listed++;
		}
		json_t *tok = json_object_get(v, "next_page_token");
		if (!json_is_string(tok)) {
			json_decref(v);
			break;
		}
		snprintf(url, sizeof(url), "/v1/products?page_size=100&page_token=%s",
			 json_string_value(tok));
		json_decref(v);
	}
	assert_int_equal(listed, total);
	assert_true(ncats >= 8);
	efix_free(f);
}

/* ---- events in the outbox ----------------------------------------------------- */

/* The outbox rows after id `after`, as [{type, key, payload...}] in order. */
static json_t *outbox_after(efix *f, int64_t after)
{
	int err = 0;
	store_stmt *st = store_prepare(
		f->store, "SELECT id, topic, key, payload, traceparent FROM outbox WHERE id > ? ORDER BY id", &err);
	assert_non_null(st);
	store_bind_int(st, 1, after);
	json_t *rows = json_array();
	while (store_step(st) == STORE_ROW) {
		assert_string_equal(store_col_text(st, 1), "catalog");
		json_t *ev = json_loads(store_col_text(st, 3), 0, NULL);
		assert_non_null(ev);
		assert_string_equal(store_col_text(st, 2),
				    json_string_value(json_object_get(ev, "sku")));
		json_object_set_new(ev, "_id", json_integer(store_col_int(st, 0)));
		const char *tp = store_col_text(st, 4);
		if (tp)
			json_object_set_new(ev, "_traceparent", json_string(tp));
		json_array_append_new(rows, ev);
	}
	store_reset(st);
	return rows;
}

static int64_t last_outbox_id(efix *f)
{
	json_t *rows = outbox_after(f, 0);
	size_t n = json_array_size(rows);
	int64_t id = n ? json_integer_value(json_object_get(json_array_get(rows, n - 1), "_id")) : 0;
	json_decref(rows);
	return id;
}

static const char *ev_type(json_t *rows, size_t i)
{
	return json_string_value(json_object_get(json_array_get(rows, i), "type"));
}

static json_int_t ev_int(json_t *rows, size_t i, const char *key)
{
	return json_integer_value(json_object_get(json_array_get(rows, i), key));
}

static void test_loader_writes_created_events(void **state)
{
	efix *f = *state;
	json_t *rows = outbox_after(f, 0);
	assert_int_equal(json_array_size(rows), NSEED);
	for (size_t i = 0; i < NSEED; i++) {
		assert_string_equal(ev_type(rows, i), "product_created");
		assert_int_equal(ev_int(rows, i, "version"), T0);
	}
	json_t *bk2 = NULL;
	size_t i;
	json_t *ev;
	json_array_foreach(rows, i, ev)
		if (strcmp(json_string_value(json_object_get(ev, "sku")), "BK-2") == 0)
			bk2 = ev;
	assert_non_null(bk2);
	assert_string_equal(json_string_value(json_object_get(bk2, "name")), "Book Two");
	assert_string_equal(json_string_value(json_object_get(bk2, "description")), "");
	assert_string_equal(json_string_value(json_object_get(bk2, "category")), "books");
	assert_int_equal(json_integer_value(json_object_get(bk2, "price_cents")), 999);
	assert_string_equal(json_string_value(json_object_get(bk2, "currency")), "USD");
	json_decref(rows);
}

/* The request's trace context, as the daemon host keeps it per thread. */
static trace_ctx req_trace;

static trace_ctx *current_trace(void *ud)
{
	(void)ud;
	return &req_trace;
}

/* Every write's event carries the trace context of the request that made
 * it (so a consumer's span joins the request's trace); without one, none. */
static void test_events_carry_the_trace(void **state)
{
	efix *f = *state;
	static const char TP[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	assert_int_equal(trace_parse(TP, &req_trace), 0);
	f->ctx.trace = current_trace;
	int64_t mark = last_outbox_id(f);
	int status = 0;
	json_decref(call(f, "POST", "/v1/products", ADMIN,
			 "{\"sku\":\"TR-1\",\"name\":\"Lamp\",\"category\":\"home\","
			 "\"price_cents\":1000}",
			 &status));
	assert_int_equal(status, 201);
	json_decref(call(f, "PUT", "/v1/products/TR-1", ADMIN,
			 "{\"name\":\"Lamp\",\"category\":\"home\",\"price_cents\":1100}", &status));
	assert_int_equal(status, 200);
	json_decref(call(f, "POST", "/v1/products/_bulk", ADMIN,
			 "{\"products\":[{\"sku\":\"TR-2\",\"name\":\"Mug\",\"category\":\"home\","
			 "\"price_cents\":500}]}",
			 &status));
	assert_int_equal(status, 200);
	json_decref(call(f, "DELETE", "/v1/products/TR-1", ADMIN, NULL, &status));
	assert_int_equal(status, 200);
	f->ctx.trace = NULL;
	json_decref(call(f, "DELETE", "/v1/products/TR-2", ADMIN, NULL, &status));
	assert_int_equal(status, 200);
	json_t *rows = outbox_after(f, mark);
	assert_int_equal(json_array_size(rows), 5);
	for (size_t i = 0; i < 4; i++) {
		const char *tp = json_string_value(json_object_get(json_array_get(rows, i), "_traceparent"));
		assert_non_null(tp);
		/* the same trace; the span is the request's */
		assert_memory_equal(tp, TP, 36);
	}
	assert_null(json_object_get(json_array_get(rows, 4), "_traceparent"));
	json_decref(rows);
}

static void test_write_events(void **state)
{
	efix *f = *state;
	int64_t mark = last_outbox_id(f);
	int status = 0;
	clock_advance(f->clock, 1000);
	json_decref(call(f, "POST", "/v1/products", ADMIN,
			 "{\"sku\":\"EV-1\",\"name\":\"Lamp\",\"description\":\"Warm light\","
			 "\"category\":\"home\",\"price_cents\":1000}",
			 &status));
	assert_int_equal(status, 201);
	/* the same clock reading: the version still grows */
	json_decref(call(f, "PUT", "/v1/products/EV-1", ADMIN,
			 "{\"name\":\"Lamp\",\"description\":\"Warm light\",\"category\":\"home\","
			 "\"price_cents\":1200}",
			 &status));
	assert_int_equal(status, 200);
	/* nothing changed: no event */
	json_decref(call(f, "PUT", "/v1/products/EV-1", ADMIN,
			 "{\"name\":\"Lamp\",\"description\":\"Warm light\",\"category\":\"home\","
			 "\"price_cents\":1200}",
			 &status));
	assert_int_equal(status, 200);
	clock_advance(f->clock, 1000);
	json_decref(call(f, "PUT", "/v1/products/EV-1", ADMIN,
			 "{\"name\":\"Desk Lamp\",\"description\":\"Warm light\",\"category\":\"home\","
			 "\"price_cents\":1300}",
			 &status));
	assert_int_equal(status, 200);
	json_t *gone = call(f, "DELETE", "/v1/products/EV-1", ADMIN, NULL, &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(gone, "name")), "Desk Lamp");
	json_decref(gone);
	json_decref(call(f, "DELETE", "/v1/products/EV-1", ADMIN, NULL, &status));
	assert_int_equal(status, 404);
	json_decref(call(f, "DELETE", "/v1/products/BK-1", NULL, NULL, &status));
	assert_int_equal(status, 401);

	json_t *rows = outbox_after(f, mark);
	assert_int_equal(json_array_size(rows), 4);
	assert_string_equal(ev_type(rows, 0), "product_created");
	assert_string_equal(ev_type(rows, 1), "product_price_changed");
	assert_int_equal(ev_int(rows, 1, "price_cents"), 1200);
	assert_int_equal(ev_int(rows, 1, "previous_price_cents"), 1000);
	assert_string_equal(ev_type(rows, 2), "product_updated");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 2), "name")),
			    "Desk Lamp");
	assert_int_equal(ev_int(rows, 2, "previous_price_cents"), 1200);
	assert_string_equal(ev_type(rows, 3), "product_deleted");
	assert_null(json_object_get(json_array_get(rows, 3), "name"));
	assert_int_equal(ev_int(rows, 0, "version"), T0 + 1000);
	assert_int_equal(ev_int(rows, 1, "version"), T0 + 1001);
	assert_int_equal(ev_int(rows, 2, "version"), T0 + 2000);
	assert_int_equal(ev_int(rows, 3, "version"), T0 + 2001);
	json_decref(rows);
	assert_int_equal(store_count(f), NSEED);
}

static void test_bulk_events_and_failed_writes(void **state)
{
	efix *f = *state;
	int64_t mark = last_outbox_id(f);
	int status = 0;
	json_decref(call(f, "POST", "/v1/products/_bulk", ADMIN,
			 "{\"products\":["
			 "{\"sku\":\"BK-1\",\"name\":\"Book One\",\"description\":\"A novel\","
			 "\"category\":\"books\",\"price_cents\":1500,\"currency\":\"USD\"},"
			 "{\"sku\":\"BK-2\",\"name\":\"Book Two\",\"category\":\"books\",\"price_cents\":5},"
			 "{\"sku\":\"NEW-1\",\"name\":\"New\",\"category\":\"books\",\"price_cents\":5}]}",
			 &status));
	assert_int_equal(status, 200);
	json_t *rows = outbox_after(f, mark);
	assert_int_equal(json_array_size(rows), 2); /* BK-1 unchanged */
	assert_string_equal(ev_type(rows, 0), "product_price_changed");
	assert_string_equal(ev_type(rows, 1), "product_created");
	json_decref(rows);

	/* a refused write leaves no event */
	mark = last_outbox_id(f);
	json_decref(call(f, "POST", "/v1/products", ADMIN,
			 "{\"sku\":\"BK-1\",\"name\":\"Dup\",\"category\":\"books\",\"price_cents\":1}",
			 &status));
	assert_int_equal(status, 409);
	json_decref(call(f, "PUT", "/v1/products/NOPE", ADMIN,
			 "{\"name\":\"x\",\"category\":\"books\",\"price_cents\":1}", &status));
	assert_int_equal(status, 404);
	assert_int_equal(last_outbox_id(f), mark);
}

static void test_export(void **state)
{
	efix *f = *state;
	int status = 0;
	json_decref(call(f, "GET", "/v1/products/_export", NULL, NULL, &status));
	assert_int_equal(status, 401);
	char ident[IDENTITY_MAX];
	efix_sign(f, IDENTITY_USER, "u1", NULL, ident);
	json_decref(efix_call(f, "GET", "/v1/products/_export", ident, NULL, NULL, &status));
	assert_int_equal(status, 403);
	efix_sign(f, IDENTITY_SERVICE, "search", NULL, ident);
	char path[256] = "/v1/products/_export?page_size=2";
	size_t seen = 0;
	for (int page = 0; page < 10; page++) {
		json_t *v = efix_call(f, "GET", path, ident, NULL, NULL, &status);
		assert_int_equal(status, 200);
		size_t i;
		json_t *it;
		json_array_foreach(json_object_get(v, "items"), i, it) {
			assert_string_equal(json_string_value(json_object_get(it, "sku")),
					    SORTED[seen++]);
			assert_int_equal(json_integer_value(json_object_get(it, "version")), T0);
		}
		json_t *next = json_object_get(v, "next_page_token");
		if (json_is_null(next)) {
			json_decref(v);
			break;
		}
		snprintf(path, sizeof(path), "/v1/products/_export?page_size=2&page_token=%s",
			 json_string_value(next));
		json_decref(v);
	}
	assert_int_equal(seen, NSEED);
	json_decref(efix_call(f, "GET", "/v1/products/_export?page_size=5001", ident, NULL, NULL,
			      &status));
	assert_int_equal(status, 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_list_default_page, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_paging_every_sku_once, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_category_filter, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_price_filters, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bad_page_token, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_page_size_bounds, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_get_by_sku, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_get_unknown_sku, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_create_needs_admin, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_create_duplicate, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_create_validation, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_body, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_update, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bulk, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_rolls_back_on_store_failure, setup,
						efix_teardown),
		cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_loader_runs_once, setup, efix_teardown),
		cmocka_unit_test(test_loader_errors),
		cmocka_unit_test(test_shipped_catalog),
		cmocka_unit_test_setup_teardown(test_loader_writes_created_events, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_write_events, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_events_carry_the_trace, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bulk_events_and_failed_writes, setup,
						efix_teardown),
		cmocka_unit_test_setup_teardown(test_export, setup, efix_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
