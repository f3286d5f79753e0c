/* Tests for services/cart through its engine_def, with a virtual clock,
 * signed identities and a store of its own per test. The catalog is a real
 * loopback HTTP server started here: ctx->gateway_url points at it, so the
 * engine's lookups go through engine_call_service and libcurl as they do
 * in the platform. Its prices can change during a test, one sku is unknown
 * to it, and it can be made to answer 500, a 404 that names no sku (a
 * missing route), or too late. Covered: putting, updating, removing and
 * clearing items; qty and sku validation; unknown skus; the catalog down
 * (503, cart unchanged); one currency per cart; the sku limit; one user's
 * cart invisible to another; carts kept across an engine restart on a
 * SQLite file; the service routes' authorisation; and the refresh that
 * checkout uses to show a changed price. */
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
#include <sys/time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/msg.h"
#include "services/cart.h"
#include "services/identity.h"
#include "store/store.h"

#include "efix.h"

#define T0 EFIX_T0
#define SECRET EFIX_SECRET
#define ADMIN EFIX_ADMIN
#define TIMEOUT_MS 150

/* ---- the fake catalog ------------------------------------------------------- */

enum catalog_mode { CAT_OK = 0, CAT_500, CAT_SLOW, CAT_NO_ROUTE };

typedef struct fake_product {
	char sku[72];
	char name[64];
	long long price;
	char currency[4];
} fake_product;

#define FAKE_MAX 80

static struct {
	pthread_mutex_t mu;
	http_server *srv;
	rng *rng;
	char url[64];
	fake_product products[FAKE_MAX];
	int nproducts;
	enum catalog_mode mode;
	int hits;
	char last_identity[IDENTITY_MAX];
	char last_path[128];
} cat = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void cat_set(const char *sku, const char *name, long long price, const char *currency)
{
	pthread_mutex_lock(&cat.mu);
	int i = 0;
	while (i < cat.nproducts && strcmp(cat.products[i].sku, sku) != 0)
		i++;
	if (i == cat.nproducts && cat.nproducts < FAKE_MAX)
		cat.nproducts++;
	fake_product *p = &cat.products[i];
	snprintf(p->sku, sizeof(p->sku), "%s", sku);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->price = price;
	snprintf(p->currency, sizeof(p->currency), "%s", currency);
	pthread_mutex_unlock(&cat.mu);
}

static void cat_remove(const char *sku)
{
	pthread_mutex_lock(&cat.mu);
	for (int i = 0; i < cat.nproducts; i++)
		if (strcmp(cat.products[i].sku, sku) == 0) {
			cat.products[i] = cat.products[--cat.nproducts];
			break;
		}
	pthread_mutex_unlock(&cat.mu);
}

static void cat_mode(enum catalog_mode m)
{
	pthread_mutex_lock(&cat.mu);
	cat.mode = m;
	pthread_mutex_unlock(&cat.mu);
}

static int cat_hits(void)
{
	pthread_mutex_lock(&cat.mu);
	int n = cat.hits;
	pthread_mutex_unlock(&cat.mu);
	return n;
}

static void cat_reset(void)
{
	pthread_mutex_lock(&cat.mu);
	cat.nproducts = 0;
	cat.mode = CAT_OK;
	cat.hits = 0;
	cat.last_identity[0] = '\0';
	cat.last_path[0] = '\0';
	pthread_mutex_unlock(&cat.mu);
	cat_set("BOOK-001", "A Book", 1299, "USD");
	cat_set("MUG-002", "A Mug", 850, "USD");
	cat_set("TEA-003", "Tea", 450, "USD");
	cat_set("EU-001", "Eurobox", 1000, "EUR");
}

/* GET /v1/products/{sku}, answered like the catalog (through the gateway). */
static void cat_handler(void *ud, msg_req *req, msg_resp *resp)
{
	pthread_mutex_lock(&cat.mu);
	cat.hits++;
	enum catalog_mode mode = cat.mode;
	const char *ident = msg_req_header(req, IDENTITY_HEADER);
	snprintf(cat.last_identity, sizeof(cat.last_identity), "%s", ident ? ident : "");
	snprintf(cat.last_path, sizeof(cat.last_path), "%s", req->path);
	pthread_mutex_unlock(&cat.mu);
	if (mode == CAT_500) {
		msg_resp_error(resp, 500, "internal", "catalog exploded", NULL);
		return;
	}
	if (mode == CAT_NO_ROUTE) {
		msg_resp_error(resp, 404, "not_found", "no route", NULL);
		return;
	}
	if (mode == CAT_SLOW)
		usleep(3 * TIMEOUT_MS * 1000);
	const char *prefix = "/v1/products/";
	if (strcmp(req->method, "GET") != 0 || strncmp(req->path, prefix, strlen(prefix)) != 0) {
		msg_resp_error(resp, 404, "not_found", "no route", NULL);
		return;
	}
	const char *sku = req->path + strlen(prefix);
	json_t *body = NULL;
	pthread_mutex_lock(&cat.mu);
	for (int i = 0; i < cat.nproducts; i++)
		if (strcmp(cat.products[i].sku, sku) == 0)
			body = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "sku", sku, "name",
					 cat.products[i].name, "description", "", "category", "test",
					 "price_cents", (json_int_t)cat.products[i].price, "currency",
					 cat.products[i].currency);
	pthread_mutex_unlock(&cat.mu);
	if (body)
		msg_resp_json(resp, 200, body);
	else
		msg_resp_error(resp, 404, "not_found", "no such product",
			       json_pack("{s:s}", "sku", sku));
}

/* ---- fixture ------------------------------------------------------------------- */

/* The daemon host's host_call. */
static int test_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	http_call_opts o = { .connect_timeout_ms = 200, .timeout_ms = timeout_ms };
	return http_client_do(target, req, resp, &o);
}

/* The context on a memory store, or on a SQLite file when file_store, with
 * the fake catalog behind ctx->gateway_url; the engine is not created. */
static efix *fixture_new(int file_store)
{
	efix *f = efix_new("cart", file_store ? NULL : "sqlite::memory:", T0, 11);
	char v[16];
	snprintf(v, sizeof(v), "%d", TIMEOUT_MS);
	assert_int_equal(config_set(f->config, "cart.catalog_timeout_ms", v), 0);
	f->ctx.call = test_call;
	f->ctx.call_ud = f;
	f->ctx.gateway_url = cat.url;
	cat_reset();
	return f;
}

static int setup(void **state)
{
	efix *f = fixture_new(0);
	f->eng = efix_create_engine(f);
	*state = f;
	return 0;
}

static int setup_file(void **state)
{
	efix *f = fixture_new(1);
	f->eng = efix_create_engine(f);
	*state = f;
	return 0;
}

/* ---- requests --------------------------------------------------------------------- */

/* The identity header of user sub, signed now (static buffer per slot). */
static const char *user(efix *f, const char *sub)
{
	static char bufs[4][IDENTITY_MAX];
	static int k;
	char *b = bufs[k++ % 4];
	efix_sign(f, IDENTITY_USER, sub, NULL, b);
	return b;
}

static const char *service(efix *f)
{
	static char b[IDENTITY_MAX];
	efix_sign(f, IDENTITY_SERVICE, "order", NULL, b);
	return b;
}

/* Runs a request, checks its status, returns its JSON body (new ref). */
static json_t *expect(efix *f, const char *method, const char *path, const char *ident,
		      const char *body, int want)
{
	return efix_expect(f, method, path, ident, NULL, body, want);
}

/* Asserts the API error shape with code and, when field is not NULL,
 * details.field; consumes v. */
static void assert_error(json_t *v, const char *code, const char *field)
{
	efix_assert_error(v, code, "field", field);
}

static void expect_error(efix *f, const char *method, const char *path, const char *ident,
			 const char *body, int want, const char *code, const char *field)
{
	assert_error(expect(f, method, path, ident, body, want), code, field);
}

static json_t *put(efix *f, const char *who, const char *sku, int qty, int want)
{
	char path[160], body[64];
	snprintf(path, sizeof(path), "/v1/cart/items/%s", sku);
	snprintf(body, sizeof(body), "{\"qty\":%d}", qty);
	return expect(f, "PUT", path, user(f, who), body, want);
}

static json_t *get_cart(efix *f, const char *who)
{
	return expect(f, "GET", "/v1/cart", user(f, who), NULL, 200);
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("%s is not an integer", key);
	return (long long)json_integer_value(v);
}

static json_t *item(json_t *cart, size_t i)
{
	json_t *items = json_object_get(cart, "items");
	assert_true(json_is_array(items));
	json_t *it = json_array_get(items, i);
	assert_non_null(it);
	return it;
}

/* Asserts the cart has exactly the items "SKU:QTY:PRICE" in that order,
 * total and currency (NULL: null). Consumes cart. */
static void assert_cart(json_t *cart, const char *const *lines, size_t n, long long total,
			const char *currency)
{
	json_t *items = json_object_get(cart, "items");
	assert_true(json_is_array(items));
	if (json_array_size(items) != n) {
		char *s = json_dumps(cart, 0);
		fail_msg("cart has %zu items, expected %zu: %s", json_array_size(items), n, s);
	}
	for (size_t i = 0; i < n; i++) {
		char sku[72];
		long long qty, price;
		assert_int_equal(sscanf(lines[i], "%71[^:]:%lld:%lld", sku, &qty, &price), 3);
		json_t *it = json_array_get(items, i);
		assert_string_equal(json_string_value(json_object_get(it, "sku")), sku);
		assert_int_equal(jint(it, "qty"), qty);
		assert_int_equal(jint(it, "price_cents"), price);
		assert_int_equal(jint(it, "line_total_cents"), qty * price);
	}
	assert_int_equal(jint(cart, "total_cents"), total);
	json_t *cur = json_object_get(cart, "currency");
	if (currency)
		assert_string_equal(json_string_value(cur), currency);
	else
		assert_true(json_is_null(cur));
	json_decref(cart);
}

static uint64_t counter(efix *f, const char *name, const char *labels)
{
	return metrics_counter_value(f->metrics, name, labels);
}

/* ---- the caller's cart ---------------------------------------------------------------- */

static void test_add_update_remove_clear(void **state)
{
	efix *f = *state;
	assert_cart(get_cart(f, "usr_a"), NULL, 0, 0, NULL);

	json_t *c = put(f, "usr_a", "MUG-002", 1, 200);
	assert_string_equal(json_string_value(json_object_get(item(c, 0), "name")), "A Mug");
	assert_true(json_is_string(json_object_get(item(c, 0), "added_at")));
	assert_cart(c, (const char *[]){ "MUG-002:1:850" }, 1, 850, "USD");
	/* The catalog was asked through the gateway, as the cart service. */
	pthread_mutex_lock(&cat.mu);
	char ident[IDENTITY_MAX], path[128];
	snprintf(ident, sizeof(ident), "%s", cat.last_identity);
	snprintf(path, sizeof(path), "%s", cat.last_path);
	pthread_mutex_unlock(&cat.mu);
	assert_string_equal(path, "/v1/products/MUG-002");
	identity who;
	assert_int_equal(identity_verify(SECRET, ident, clock_now(f->clock), 60000000LL, &who), 0);
	assert_int_equal(who.role, IDENTITY_SERVICE);
	assert_string_equal(who.sub, "cart");

	/* Sorted by sku, whatever order they came in. */
	assert_cart(put(f, "usr_a", "BOOK-001", 2, 200),
		    (const char *[]){ "BOOK-001:2:1299", "MUG-002:1:850" }, 2, 2 * 1299 + 850,
		    "USD");
	/* Putting again sets the quantity (it does not add to it). */
	assert_cart(put(f, "usr_a", "BOOK-001", 5, 200),
		    (const char *[]){ "BOOK-001:5:1299", "MUG-002:1:850" }, 2, 5 * 1299 + 850,
		    "USD");
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:5:1299", "MUG-002:1:850" },
		    2, 5 * 1299 + 850, "USD");
	/* qty 0 removes. */
	assert_cart(put(f, "usr_a", "MUG-002", 0, 200), (const char *[]){ "BOOK-001:5:1299" }, 1,
		    5 * 1299, "USD");
	/* qty 0 of something not in the cart is no error. */
	assert_cart(put(f, "usr_a", "TEA-003", 0, 200), (const char *[]){ "BOOK-001:5:1299" }, 1,
		    5 * 1299, "USD");
	assert_cart(put(f, "usr_a", "TEA-003", 3, 200),
		    (const char *[]){ "BOOK-001:5:1299", "TEA-003:3:450" }, 2, 5 * 1299 + 3 * 450,
		    "USD");
	/* DELETE of one item, then of one that is not there. */
	assert_cart(expect(f, "DELETE", "/v1/cart/items/BOOK-001", user(f, "usr_a"), NULL, 200),
		    (const char *[]){ "TEA-003:3:450" }, 1, 3 * 450, "USD");
	assert_cart(expect(f, "DELETE", "/v1/cart/items/BOOK-001", user(f, "usr_a"), NULL, 200),
		    (const char *[]){ "TEA-003:3:450" }, 1, 3 * 450, "USD");
	assert_cart(put(f, "usr_a", "BOOK-001", 99, 200),
		    (const char *[]){ "BOOK-001:99:1299", "TEA-003:3:450" }, 2,
		    99 * 1299 + 3 * 450, "USD");
	/* Clearing empties it; the currency goes with the items. */
	assert_cart(expect(f, "DELETE", "/v1/cart", user(f, "usr_a"), NULL, 200), NULL, 0, 0,
		    NULL);
	assert_cart(get_cart(f, "usr_a"), NULL, 0, 0, NULL);
	/* The catalog is asked only to price an item put in the cart. */
	assert_int_equal(cat_hits(), 5);
	assert_int_equal(counter(f, "cart_catalog_lookups_total", "result=\"ok\""), 5);
	/* Wrong methods and routes. */
	expect_error(f, "POST", "/v1/cart", user(f, "usr_a"), "{}", 405, "method_not_allowed",
		     NULL);
	expect_error(f, "GET", "/v1/cart/items/BOOK-001", user(f, "usr_a"), NULL, 405,
		     "method_not_allowed", NULL);
}

static void test_validation(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 2, 200));
	int hits = cat_hits();
	const char *me = user(f, "usr_a");
	static const char *const bad_qty[] = {
		"{\"qty\":-1}", "{\"qty\":100}", "{\"qty\":\"2\"}", "{\"qty\":1.5}",
		"{\"qty\":true}", "{\"qty\":null}", "{}", "{\"quantity\":2}",
		"{\"qty\":[1]}",
	};
	for (size_t i = 0; i < sizeof(bad_qty) / sizeof(bad_qty[0]); i++)
		expect_error(f, "PUT", "/v1/cart/items/MUG-002", me, bad_qty[i], 400,
			     "invalid_argument", "qty");
	expect_error(f, "PUT", "/v1/cart/items/MUG-002", me, "not json", 400, "invalid_argument",
		     "body");
	expect_error(f, "PUT", "/v1/cart/items/MUG-002", me, "[1]", 400, "invalid_argument",
		     "body");
	expect_error(f, "PUT", "/v1/cart/items/MUG-002", me, "", 400, "invalid_argument", "body");
	msg_resp r;
	efix_do(f, NULL, "PUT", "/v1/cart/items/MUG-002", me, NULL,
	        "application/x-www-form-urlencoded", "qty=1", &r);
	assert_int_equal(r.status, 415);
	assert_error(efix_json(&r), "unsupported_media_type", NULL);
	msg_resp_clear(&r);
	/* Skus the catalog could never hold. */
	static const char *const bad_sku[] = {
		"/v1/cart/items/_hidden", "/v1/cart/items/a%20b", "/v1/cart/items/a%2Fb",
		"/v1/cart/items/"
		"x12345678901234567890123456789012345678901234567890123456789012345",
	};
	for (size_t i = 0; i < sizeof(bad_sku) / sizeof(bad_sku[0]); i++) {
		expect_error(f, "PUT", bad_sku[i], me, "{\"qty\":1}", 400, "invalid_argument",
			     "sku");
		expect_error(f, "DELETE", bad_sku[i], me, NULL, 400, "invalid_argument", "sku");
	}
	/* No identity, a forged one, an anonymous caller with the wrong secret. */
	expect_error(f, "GET", "/v1/cart", NULL, NULL, 401, "unauthenticated", NULL);
	expect_error(f, "PUT", "/v1/cart/items/MUG-002", NULL, "{\"qty\":1}", 401,
		     "unauthenticated", NULL);
	expect_error(f, "DELETE", "/v1/cart", NULL, NULL, 401, "unauthenticated", NULL);
	char forged[IDENTITY_MAX];
	identity id = { .role = IDENTITY_USER };
	snprintf(id.sub, sizeof(id.sub), "usr_a");
	assert_int_equal(identity_sign("another-secret", &id, clock_now(f->clock), forged,
				       sizeof(forged)),
			 0);
	expect_error(f, "DELETE", "/v1/cart", forged, NULL, 401, "unauthenticated", NULL);
	/* A service or the admin has no cart of its own. */
	expect_error(f, "GET", "/v1/cart", service(f), NULL, 401, "unauthenticated", NULL);
	msg_resp_init(&r);
	efix_do(f, NULL, "GET", "/v1/cart", NULL, "Bearer " ADMIN, NULL, NULL, &r);
	assert_int_equal(r.status, 401);
	msg_resp_clear(&r);
	/* None of it reached the catalog or changed the cart. */
	assert_int_equal(cat_hits(), hits);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:2:1299" }, 1, 2 * 1299,
		    "USD");
}

static void test_unknown_sku(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 1, 200));
	json_t *v = put(f, "usr_a", "NOPE-404", 1, 404);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(json_object_get(v, "error"),
								  "details"),
						  "sku")),
		"NOPE-404");
	assert_error(v, "not_found", NULL);
	assert_int_equal(counter(f, "cart_catalog_lookups_total", "result=\"not_found\""), 1);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:1:1299" }, 1, 1299, "USD");
}

/* PUT of sku while the catalog fails: 503 with Retry-After, cart as it was. */
static void expect_unavailable(efix *f, const char *sku)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/cart/items/%s", sku);
	msg_resp r;
	efix_do(f, NULL, "PUT", path, user(f, "usr_a"), NULL, NULL, "{\"qty\":4}", &r);
	if (r.status != 503)
		fail_msg("PUT %s: status %d, expected 503", sku, r.status);
	const char *ra = msg_resp_header(&r, "Retry-After");
	assert_non_null(ra);
	assert_true(atoi(ra) >= 1);
	json_t *v = efix_json(&r);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(json_object_get(v, "error"),
								  "details"),
						  "service")),
		"catalog");
	assert_error(v, "unavailable", NULL);
	msg_resp_clear(&r);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:1:1299" }, 1, 1299, "USD");
}

static void test_catalog_down(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 1, 200));

	cat_mode(CAT_500);
	expect_unavailable(f, "MUG-002");
	/* Not even the quantity of an item already there changes: it would be
	 * priced again. */
	expect_unavailable(f, "BOOK-001");
	assert_int_equal(counter(f, "cart_catalog_failures_total", "reason=\"status\""), 2);

	/* A 404 that names no product (the gateway has no route) is no answer
	 * about the sku. */
	cat_mode(CAT_NO_ROUTE);
	expect_unavailable(f, "MUG-002");
	assert_int_equal(counter(f, "cart_catalog_failures_total", "reason=\"status\""), 3);

	/* Too slow: given up after cart.catalog_timeout_ms. */
	cat_mode(CAT_SLOW);
	struct timeval t0, t1;
	gettimeofday(&t0, NULL);
	expect_unavailable(f, "MUG-002");
	gettimeofday(&t1, NULL);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	assert_true(ms < 2 * TIMEOUT_MS + 100);
	assert_int_equal(counter(f, "cart_catalog_failures_total", "reason=\"timeout\""), 1);

	/* Nobody listening: the gateway is down. */
	cat_mode(CAT_OK);
	f->ctx.gateway_url = "http://127.0.0.1:1";
	expect_unavailable(f, "MUG-002");
	/* No gateway known at all. */
	f->ctx.gateway_url = NULL;
	expect_unavailable(f, "MUG-002");
	assert_int_equal(counter(f, "cart_catalog_failures_total", "reason=\"unreachable\""),
			 2);
	assert_int_equal(counter(f, "cart_catalog_lookups_total", "result=\"failed\""), 6);

	/* Back up: works again; removing never needed the catalog. */
	f->ctx.gateway_url = cat.url;
	assert_cart(put(f, "usr_a", "MUG-002", 2, 200),
		    (const char *[]){ "BOOK-001:1:1299", "MUG-002:2:850" }, 2, 1299 + 1700, "USD");
	cat_mode(CAT_500);
	assert_cart(put(f, "usr_a", "MUG-002", 0, 200), (const char *[]){ "BOOK-001:1:1299" }, 1,
		    1299, "USD");
	assert_cart(expect(f, "DELETE", "/v1/cart", user(f, "usr_a"), NULL, 200), NULL, 0, 0,
		    NULL);
	cat_mode(CAT_OK);
}

static void test_price_snapshot(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 2, 200));
	cat_set("BOOK-001", "A Book, 2nd edition", 1499, "USD");
	/* The cart keeps the price the customer saw... */
	json_t *c = get_cart(f, "usr_a");
	assert_string_equal(json_string_value(json_object_get(item(c, 0), "name")), "A Book");
	assert_cart(c, (const char *[]){ "BOOK-001:2:1299" }, 1, 2598, "USD");
	/* ...until the item is put again, which shows the new one. */
	c = put(f, "usr_a", "BOOK-001", 3, 200);
	assert_string_equal(json_string_value(json_object_get(item(c, 0), "name")),
			    "A Book, 2nd edition");
	assert_cart(c, (const char *[]){ "BOOK-001:3:1499" }, 1, 3 * 1499, "USD");
}

static void test_currency_conflict(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 1, 200));
	json_t *v = put(f, "usr_a", "EU-001", 1, 409);
	json_t *d = json_object_get(json_object_get(v, "error"), "details");
	assert_string_equal(json_string_value(json_object_get(d, "currency")), "EUR");
	assert_string_equal(json_string_value(json_object_get(d, "cart_currency")), "USD");
	assert_string_equal(json_string_value(json_object_get(d, "sku")), "EU-001");
	const char *msg =
		json_string_value(json_object_get(json_object_get(v, "error"), "message"));
	assert_non_null(strstr(msg, "USD"));
	assert_non_null(strstr(msg, "EUR"));
	assert_error(v, "conflict", NULL);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:1:1299" }, 1, 1299, "USD");
	/* Another user's cart is in its own currency. */
	assert_cart(put(f, "usr_b", "EU-001", 2, 200), (const char *[]){ "EU-001:2:1000" }, 1,
		    2000, "EUR");
	/* Emptied, the cart takes any currency. */
	json_decref(expect(f, "DELETE", "/v1/cart", user(f, "usr_a"), NULL, 200));
	assert_cart(put(f, "usr_a", "EU-001", 1, 200), (const char *[]){ "EU-001:1:1000" }, 1,
		    1000, "EUR");
	/* The only item's own currency changing is no conflict with itself. */
	cat_set("EU-001", "Eurobox", 1100, "GBP");
	assert_cart(put(f, "usr_a", "EU-001", 1, 200), (const char *[]){ "EU-001:1:1100" }, 1,
		    1100, "GBP");
}

static void test_sku_limit(void **state)
{
	efix *f = *state;
	char sku[32];
	for (int i = 0; i < 51; i++) {
		snprintf(sku, sizeof(sku), "LIM-%02d", i);
		cat_set(sku, "Limit", 100 + i, "USD");
	}
	long long total = 0;
	for (int i = 0; i < 50; i++) {
		snprintf(sku, sizeof(sku), "LIM-%02d", i);
		json_decref(put(f, "usr_a", sku, 1, 200));
		total += 100 + i;
	}
	json_t *v = put(f, "usr_a", "LIM-50", 1, 409);
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(json_object_get(v, "error"),
								   "details"),
						   "limit")),
		50);
	assert_error(v, "conflict", NULL);
	/* Full, the cart still takes new quantities of what it holds. */
	json_t *c = put(f, "usr_a", "LIM-07", 3, 200);
	assert_int_equal(json_array_size(json_object_get(c, "items")), 50);
	assert_int_equal(jint(c, "total_cents"), total + 2 * 107);
	json_decref(c);
	/* One out, the next in. */
	json_decref(put(f, "usr_a", "LIM-00", 0, 200));
	c = put(f, "usr_a", "LIM-50", 1, 200);
	assert_int_equal(json_array_size(json_object_get(c, "items")), 50);
	assert_string_equal(json_string_value(json_object_get(item(c, 49), "sku")), "LIM-50");
	json_decref(c);
}

static void test_isolation(void **state)
{
	efix *f = *state;
	assert_cart(put(f, "usr_a", "BOOK-001", 2, 200), (const char *[]){ "BOOK-001:2:1299" }, 1,
		    2598, "USD");
	assert_cart(get_cart(f, "usr_b"), NULL, 0, 0, NULL);
	assert_cart(put(f, "usr_b", "BOOK-001", 1, 200), (const char *[]){ "BOOK-001:1:1299" }, 1,
		    1299, "USD");
	assert_cart(put(f, "usr_b", "TEA-003", 1, 200),
		    (const char *[]){ "BOOK-001:1:1299", "TEA-003:1:450" }, 2, 1749, "USD");
	/* B's removals and clearing touch only B's cart. */
	json_decref(expect(f, "DELETE", "/v1/cart/items/BOOK-001", user(f, "usr_b"), NULL, 200));
	json_decref(expect(f, "DELETE", "/v1/cart", user(f, "usr_b"), NULL, 200));
	assert_cart(get_cart(f, "usr_b"), NULL, 0, 0, NULL);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:2:1299" }, 1, 2598, "USD");
	/* A's cart body names no user and only A's items. */
	json_t *c = get_cart(f, "usr_a");
	assert_null(json_object_get(c, "user_id"));
	json_decref(c);
}

static void test_persistence(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 2, 200));
	json_decref(put(f, "usr_a", "MUG-002", 1, 200));
	json_decref(put(f, "usr_b", "TEA-003", 7, 200));
	cat_set("BOOK-001", "A Book", 1599, "USD"); /* the snapshot survives too */
	efix_close_store(f);
	clock_advance(f->clock, 3600 * 1000000LL);
	efix_open_store(f);
	f->eng = efix_create_engine(f);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:2:1299", "MUG-002:1:850" },
		    2, 2598 + 850, "USD");
	assert_cart(get_cart(f, "usr_b"), (const char *[]){ "TEA-003:7:450" }, 1, 7 * 450, "USD");
	/* And it keeps working on the reopened store. */
	assert_cart(put(f, "usr_a", "MUG-002", 0, 200), (const char *[]){ "BOOK-001:2:1299" }, 1,
		    2598, "USD");
}

/* ---- the service routes ------------------------------------------------------------------ */

static void test_internal_auth(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 2, 200));
	/* A user, even the cart's owner, may not use them. */
	expect_error(f, "GET", "/v1/internal/carts/usr_a", user(f, "usr_a"), NULL, 403,
		     "forbidden", NULL);
	expect_error(f, "GET", "/v1/internal/carts/usr_a?refresh=1", user(f, "usr_b"), NULL, 403,
		     "forbidden", NULL);
	expect_error(f, "DELETE", "/v1/internal/carts/usr_a", user(f, "usr_a"), NULL, 403,
		     "forbidden", NULL);
	/* Nobody, or a badly signed service. */
	expect_error(f, "GET", "/v1/internal/carts/usr_a", NULL, NULL, 401, "unauthenticated",
		     NULL);
	expect_error(f, "DELETE", "/v1/internal/carts/usr_a", NULL, NULL, 401, "unauthenticated",
		     NULL);
	char forged[IDENTITY_MAX];
	identity id = { .role = IDENTITY_SERVICE };
	snprintf(id.sub, sizeof(id.sub), "order");
	assert_int_equal(identity_sign("guessed", &id, clock_now(f->clock), forged,
				       sizeof(forged)),
			 0);
	expect_error(f, "DELETE", "/v1/internal/carts/usr_a", forged, NULL, 401,
		     "unauthenticated", NULL);
	/* A service identity older than a minute is a replay. */
	char old[IDENTITY_MAX];
	efix_sign(f, IDENTITY_SERVICE, "order", NULL, old);
	clock_advance(f->clock, 61 * 1000000LL);
	expect_error(f, "DELETE", "/v1/internal/carts/usr_a", old, NULL, 401, "unauthenticated",
		     NULL);
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:2:1299" }, 1, 2598, "USD");

	/* A service sees the cart, with whose it is. */
	json_t *c = expect(f, "GET", "/v1/internal/carts/usr_a", service(f), NULL, 200);
	assert_string_equal(json_string_value(json_object_get(c, "user_id")), "usr_a");
	assert_null(json_object_get(c, "price_changed"));
	assert_cart(c, (const char *[]){ "BOOK-001:2:1299" }, 1, 2598, "USD");
	c = expect(f, "GET", "/v1/internal/carts/usr_nobody", service(f), NULL, 200);
	assert_cart(c, NULL, 0, 0, NULL);
	/* So does the operator's admin token. */
	msg_resp r;
	efix_do(f, NULL, "GET", "/v1/internal/carts/usr_a", NULL, "Bearer " ADMIN, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	msg_resp_clear(&r);
	/* Malformed user ids and flags. */
	expect_error(f, "GET", "/v1/internal/carts/usr%20a", service(f), NULL, 400,
		     "invalid_argument", "user_id");
	expect_error(f, "DELETE", "/v1/internal/carts/a;b", service(f), NULL, 400,
		     "invalid_argument", "user_id");
	expect_error(f, "GET", "/v1/internal/carts/usr_a?refresh=maybe", service(f), NULL, 400,
		     "invalid_argument", "refresh");

	/* Checkout empties it once the order is confirmed; only that cart. */
	json_decref(put(f, "usr_b", "TEA-003", 1, 200));
	c = expect(f, "DELETE", "/v1/internal/carts/usr_a", service(f), NULL, 200);
	assert_int_equal(jint(c, "removed"), 1);
	assert_string_equal(json_string_value(json_object_get(c, "user_id")), "usr_a");
	assert_cart(c, NULL, 0, 0, NULL);
	assert_cart(get_cart(f, "usr_a"), NULL, 0, 0, NULL);
	assert_cart(get_cart(f, "usr_b"), (const char *[]){ "TEA-003:1:450" }, 1, 450, "USD");
	c = expect(f, "DELETE", "/v1/internal/carts/usr_a", service(f), NULL, 200);
	assert_int_equal(jint(c, "removed"), 0);
	json_decref(c);
}

static void test_refresh(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 2, 200));
	json_decref(put(f, "usr_a", "MUG-002", 3, 200));
	/* Unchanged prices: nothing flagged, both totals the same. */
	json_t *c = expect(f, "GET", "/v1/internal/carts/usr_a?refresh=1", service(f), NULL, 200);
	assert_true(json_is_false(json_object_get(c, "price_changed")));
	assert_true(json_is_true(json_object_get(c, "available")));
	assert_int_equal(jint(c, "current_total_cents"), 2 * 1299 + 3 * 850);
	assert_true(json_is_false(json_object_get(item(c, 0), "price_changed")));
	assert_int_equal(jint(item(c, 1), "current_price_cents"), 850);
	assert_cart(c, (const char *[]){ "BOOK-001:2:1299", "MUG-002:3:850" }, 2,
		    2 * 1299 + 3 * 850, "USD");

	/* The mug's price goes up: flagged on that item and on the cart; the
	 * snapshot total and the total at current prices both shown. */
	cat_set("MUG-002", "A Mug", 990, "USD");
	c = expect(f, "GET", "/v1/internal/carts/usr_a?refresh=1", service(f), NULL, 200);
	assert_true(json_is_true(json_object_get(c, "price_changed")));
	assert_true(json_is_true(json_object_get(c, "available")));
	json_t *book = item(c, 0), *mug = item(c, 1);
	assert_string_equal(json_string_value(json_object_get(mug, "sku")), "MUG-002");
	assert_true(json_is_false(json_object_get(book, "price_changed")));
	assert_int_equal(jint(book, "current_price_cents"), 1299);
	assert_true(json_is_true(json_object_get(mug, "price_changed")));
	assert_int_equal(jint(mug, "price_cents"), 850);
	assert_int_equal(jint(mug, "current_price_cents"), 990);
	assert_string_equal(json_string_value(json_object_get(mug, "current_currency")), "USD");
	assert_int_equal(jint(c, "current_total_cents"), 2 * 1299 + 3 * 990);
	assert_cart(c, (const char *[]){ "BOOK-001:2:1299", "MUG-002:3:850" }, 2,
		    2 * 1299 + 3 * 850, "USD");
	/* Refreshing shows; it does not re-price the cart. */
	assert_cart(get_cart(f, "usr_a"), (const char *[]){ "BOOK-001:2:1299", "MUG-002:3:850" },
		    2, 2 * 1299 + 3 * 850, "USD");
	/* A price that drops is a change too. */
	cat_set("MUG-002", "A Mug", 500, "USD");
	c = expect(f, "GET", "/v1/internal/carts/usr_a?refresh=true", service(f), NULL, 200);
	assert_true(json_is_true(json_object_get(c, "price_changed")));
	assert_int_equal(jint(c, "current_total_cents"), 2 * 1299 + 3 * 500);
	json_decref(c);
	/* The customer puts it again at the new price: nothing to flag. */
	json_decref(put(f, "usr_a", "MUG-002", 3, 200));
	c = expect(f, "GET", "/v1/internal/carts/usr_a?refresh=1", service(f), NULL, 200);
	assert_true(json_is_false(json_object_get(c, "price_changed")));
	assert_int_equal(jint(c, "current_total_cents"), jint(c, "total_cents"));
	json_decref(c);
	/* refresh=0 is the plain cart, without asking the catalog. */
	int hits = cat_hits();
	c = expect(f, "GET", "/v1/internal/carts/usr_a?refresh=0", service(f), NULL, 200);
	assert_null(json_object_get(c, "current_total_cents"));
	json_decref(c);
	assert_int_equal(cat_hits(), hits);

	/* A product gone from the catalog: not available, not counted. */
	cat_remove("BOOK-001");
	c = expect(f, "GET", "/v1/internal/carts/usr_a?refresh=1", service(f), NULL, 200);
	assert_true(json_is_false(json_object_get(c, "available")));
	assert_true(json_is_false(json_object_get(item(c, 0), "available")));
	assert_true(json_is_null(json_object_get(item(c, 0), "current_price_cents")));
	assert_true(json_is_true(json_object_get(item(c, 1), "available")));
	assert_int_equal(jint(c, "current_total_cents"), 3 * 500);
	json_decref(c);

	/* The catalog down: no guess at prices, 503 with Retry-After. */
	cat_mode(CAT_500);
	msg_resp r;
	efix_do(f, NULL, "GET", "/v1/internal/carts/usr_a?refresh=1", service(f), NULL, NULL, NULL,
	        &r);
	assert_int_equal(r.status, 503);
	assert_non_null(msg_resp_header(&r, "Retry-After"));
	assert_error(efix_json(&r), "unavailable", NULL);
	msg_resp_clear(&r);
	/* Without refresh the cart is still served. */
	json_decref(expect(f, "GET", "/v1/internal/carts/usr_a", service(f), NULL, 200));
	cat_mode(CAT_OK);
	/* An empty cart refreshes to nothing changed. */
	c = expect(f, "GET", "/v1/internal/carts/usr_z?refresh=1", service(f), NULL, 200);
	assert_true(json_is_false(json_object_get(c, "price_changed")));
	assert_int_equal(jint(c, "current_total_cents"), 0);
	json_decref(c);
}

/* The metrics are declared with help text and rendered. */
static void test_metrics_rendered(void **state)
{
	efix *f = *state;
	json_decref(put(f, "usr_a", "BOOK-001", 1, 200));
	json_decref(put(f, "usr_a", "NOPE", 1, 404));
	char *text = metrics_render(f->metrics);
	assert_non_null(text);
	assert_non_null(strstr(text, "# HELP cart_catalog_lookups_total"));
	assert_non_null(strstr(text, "cart_catalog_lookups_total{result=\"ok\"} 1"));
	assert_non_null(strstr(text, "cart_catalog_lookups_total{result=\"not_found\"} 1"));
	free(text);
}

static void test_bad_config(void **state)
{
	efix *f = *state;
	char err[256] = "";
	assert_int_equal(config_set(f->config, "cart.max_skus", "0"), 0);
	assert_null(cart_engine.create(&f->ctx, err, sizeof(err)));
	assert_non_null(strstr(err, "cart.max_skus"));
	/* A smaller limit is honoured. */
	assert_int_equal(config_set(f->config, "cart.max_skus", "2"), 0);
	void *eng = cart_engine.create(&f->ctx, err, sizeof(err));
	assert_non_null(eng);
	void *old = f->eng;
	f->eng = eng;
	json_decref(put(f, "usr_a", "BOOK-001", 1, 200));
	json_decref(put(f, "usr_a", "MUG-002", 1, 200));
	assert_error(put(f, "usr_a", "TEA-003", 1, 409), "conflict", NULL);
	cart_engine.destroy(eng);
	f->eng = old;
	/* An engine without a store is refused. */
	engine_ctx no_store = f->ctx;
	no_store.store = NULL;
	assert_null(cart_engine.create(&no_store, err, sizeof(err)));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (http_client_global_init() != 0)
		return 1;
	cat.rng = rng_new(5);
	http_server_opts o = { "127.0.0.1", 0, 4, 1 << 16, 5, 0 };
	char err[256] = "";
	cat.srv = http_server_start(&o, cat_handler, NULL, cat.rng, err, sizeof(err));
	if (!cat.srv) {
		fprintf(stderr, "fake catalog: %s\n", err);
		return 1;
	}
	snprintf(cat.url, sizeof(cat.url), "http://127.0.0.1:%d", http_server_port(cat.srv));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_update_remove_clear, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_validation, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_sku, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_catalog_down, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_price_snapshot, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_currency_conflict, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_sku_limit, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_isolation, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_persistence, setup_file, efix_teardown),
		cmocka_unit_test_setup_teardown(test_internal_auth, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_refresh, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_metrics_rendered, setup, efix_teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup, efix_teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_server_stop(cat.srv);
	rng_free(cat.rng);
	http_client_global_cleanup();
	return rc;
}
