/* Tests for services/analytics and the events it reads, with the real
 * analytics, catalog and cart engines and an order producer (its outbox
 * written by the test, as the order service writes it) in one process on
 * one virtual clock, the embedded bus between them (tests/unit/inproc).
 * Covered: a known sequence - product views (the catalog's counters,
 * flushed by its tick as product.viewed; a service's lookups not
 * counted), cart adds (cart.item_added when a line grows, not when it
 * shrinks), confirmed and cancelled orders in two minutes and two
 * currencies - into the summary (all time and a window), the funnel, the
 * orders per minute and the top products by each measure; the same with
 * 20% of deliveries duplicated; a malformed event dead-lettered while the
 * rest goes on; the routes' parameters and the admin token; the view
 * counter's bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/viewcount.h"

#include "efix.h"
#include "inproc.h"

#define ADMIN "Bearer " EFIX_ADMIN
#define SEC 1000000LL
#define STEP (50 * 1000LL)

static const char SEED[] =
	"[{\"sku\":\"BOOK-1\",\"name\":\"A Book\",\"description\":\"\",\"category\":\"books\","
	"\"price_cents\":1299,\"currency\":\"USD\"},"
	"{\"sku\":\"MUG-2\",\"name\":\"A Mug\",\"description\":\"\",\"category\":\"kitchen\","
	"\"price_cents\":850,\"currency\":\"USD\"},"
	"{\"sku\":\"RARE-3\",\"name\":\"A Rarity\",\"description\":\"\",\"category\":\"art\","
	"\"price_cents\":5000,\"currency\":\"EUR\"}]";

static int setup(void **state)
{
	inproc *p = inproc_new();
	inproc_add(p, "analytics", 1);
	efix *cat = inproc_add(p, "catalog", 2);
	inproc_add(p, "cart", 3);
	inproc_add(p, "order", 4);
	efix_seed(cat, SEED);
	assert_int_equal(config_set(cat->config, "catalog.view_flush_ms", "1000"), 0);
	assert_int_equal(config_set(inproc_efix(p, "analytics")->config, "bus.max_attempts", "2"), 0);
	assert_int_equal(config_set(inproc_efix(p, "analytics")->config, "bus.retry_base_ms", "50"), 0);
	inproc_start(p, "analytics", 1, 1);
	inproc_start(p, "catalog", 1, 1);
	inproc_start(p, "cart", 1, 1);
	inproc_start(p, "order", 0, 1);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	inproc_free(*state);
	return 0;
}

/* ---- helpers -------------------------------------------------------------------- */

static void view(inproc *p, const char *sku, enum identity_role role)
{
	efix *cat = inproc_efix(p, "catalog");
	char path[64], ident[IDENTITY_MAX];
	snprintf(path, sizeof(path), "/v1/products/%s", sku);
	if (role != IDENTITY_ANONYMOUS)
		efix_sign(cat, role, role == IDENTITY_SERVICE ? "cart" : "usr_1", NULL, ident);
	json_decref(efix_expect(cat, "GET", path, role != IDENTITY_ANONYMOUS ? ident : NULL, NULL,
				NULL, 200));
}

static void put_item(inproc *p, const char *sku, int qty)
{
	efix *cart = inproc_efix(p, "cart");
	char path[64], body[32], ident[IDENTITY_MAX];
	snprintf(path, sizeof(path), "/v1/cart/items/%s", sku);
	snprintf(body, sizeof(body), "{\"qty\":%d}", qty);
	efix_sign(cart, IDENTITY_USER, "usr_1", NULL, ident);
	json_decref(efix_expect(cart, "PUT", path, ident, NULL, body, 200));
}

static void flush_views(inproc *p)
{
	efix *cat = inproc_efix(p, "catalog");
	cat->def->tick(cat->eng, clock_now(p->clock) + 2 * SEC);
}

static void order(inproc *p, const char *type, const char *id, const char *currency, int64_t total,
		  const char *items)
{
	char ev[1024];
	snprintf(ev, sizeof(ev),
		 "{\"type\":\"%s\",\"order_id\":\"%s\",\"user_id\":\"usr_1\",\"total_cents\":%lld,"
		 "\"currency\":\"%s\",\"items\":%s}",
		 type, id, (long long)total, currency, items);
	inproc_event(p, "order", "orders", id, ev);
}

static json_t *get(inproc *p, const char *path, int want)
{
	return efix_expect(inproc_efix(p, "analytics"), "GET", path, NULL, ADMIN, NULL, want);
}

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("no integer %s", key);
	return json_integer_value(v);
}

/* The minute of the first events, and one later. */
static void story(inproc *p)
{
	/* the start of a minute, so that both minutes are whole */
	int64_t now = clock_now(p->clock);
	clock_advance(p->clock, 60 * SEC - now % (60 * SEC) + SEC);
	view(p, "BOOK-1", IDENTITY_ANONYMOUS);
	view(p, "BOOK-1", IDENTITY_USER);
	view(p, "BOOK-1", IDENTITY_ANONYMOUS);
	view(p, "MUG-2", IDENTITY_ANONYMOUS);
	view(p, "MUG-2", IDENTITY_SERVICE); /* a service's lookup: not a view */
	put_item(p, "BOOK-1", 2);           /* +2: an add */
	put_item(p, "BOOK-1", 3);           /* +1: an add */
	put_item(p, "BOOK-1", 1);           /* fewer: none */
	put_item(p, "MUG-2", 1);            /* an add */
	flush_views(p);
	order(p, "order.confirmed", "ord_1", "USD", 3448,
	      "[{\"sku\":\"BOOK-1\",\"qty\":2,\"line_total_cents\":2598},"
	      "{\"sku\":\"MUG-2\",\"qty\":1,\"line_total_cents\":850}]");
	clock_advance(p->clock, 60 * SEC);
	order(p, "order.confirmed", "ord_2", "USD", 1299,
	      "[{\"sku\":\"BOOK-1\",\"qty\":1,\"line_total_cents\":1299}]");
	order(p, "order.cancelled", "ord_3", "USD", 850, "[{\"sku\":\"MUG-2\",\"qty\":1}]");
	order(p, "order.confirmed", "ord_4", "EUR", 5000,
	      "[{\"sku\":\"RARE-3\",\"qty\":1,\"line_total_cents\":5000}]");
	inproc_settle(p, STEP, 200);
}

static void assert_story(inproc *p)
{
	json_t *s = get(p, "/v1/analytics/summary", 200);
	assert_int_equal(jint(s, "orders"), 3);
	assert_int_equal(jint(s, "cancelled"), 1);
	assert_int_equal(jint(s, "product_views"), 4);
	assert_int_equal(jint(s, "cart_adds"), 3);
	assert_true(json_is_null(json_object_get(s, "window_minutes")));
	assert_true(json_real_value(json_object_get(s, "conversion_rate")) == 0.75);
	json_t *rev = json_object_get(s, "revenue");
	assert_int_equal(json_array_size(rev), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rev, 0), "currency")), "EUR");
	assert_int_equal(jint(json_array_get(rev, 0), "revenue_cents"), 5000);
	assert_int_equal(jint(json_array_get(rev, 1), "revenue_cents"), 4747);
	assert_int_equal(jint(json_array_get(rev, 1), "orders"), 2);
	json_decref(s);

	/* the last minute alone */
	s = get(p, "/v1/analytics/summary?minutes=1", 200);
	assert_int_equal(jint(s, "orders"), 2);
	assert_int_equal(jint(s, "product_views"), 0);
	assert_int_equal(jint(s, "window_minutes"), 1);
	assert_true(json_is_null(json_object_get(s, "conversion_rate")));
	json_decref(s);

	json_t *f = get(p, "/v1/analytics/funnel", 200);
	json_t *steps = json_object_get(f, "steps");
	assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 0), "step")), "product_views");
	assert_int_equal(jint(json_array_get(steps, 0), "count"), 4);
	assert_int_equal(jint(json_array_get(steps, 1), "count"), 3);
	assert_int_equal(jint(json_array_get(steps, 2), "count"), 3);
	json_t *rates = json_object_get(f, "rates");
	assert_true(json_real_value(json_object_get(rates, "view_to_cart")) == 0.75);
	assert_true(json_real_value(json_object_get(rates, "cart_to_order")) == 1.0);
	json_decref(f);

	json_t *m = get(p, "/v1/analytics/orders_per_minute?minutes=3", 200);
	json_t *items = json_object_get(m, "items");
	assert_int_equal(json_array_size(items), 3);
	json_t *m0 = json_array_get(items, 1), *m1 = json_array_get(items, 2);
	assert_int_equal(jint(json_array_get(items, 0), "orders"), 0);
	assert_int_equal(jint(m0, "orders"), 1);
	assert_int_equal(jint(json_array_get(json_object_get(m0, "revenue"), 0), "revenue_cents"), 3448);
	assert_int_equal(jint(m1, "orders"), 2);
	assert_int_equal(jint(m1, "cancelled"), 1);
	assert_int_equal(json_array_size(json_object_get(m1, "revenue")), 2);
	json_decref(m);

	json_t *t = get(p, "/v1/analytics/top_products", 200);
	items = json_object_get(t, "items");
	assert_int_equal(json_array_size(items), 3);
	json_t *first = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(first, "sku")), "BOOK-1");
	assert_int_equal(jint(first, "units"), 3);
	assert_int_equal(jint(first, "orders"), 2);
	assert_int_equal(jint(first, "revenue_cents"), 3897);
	assert_int_equal(jint(first, "views"), 3);
	assert_int_equal(jint(first, "cart_adds"), 2);
	assert_string_equal(json_string_value(json_object_get(first, "currency")), "USD");
	/* a tie in units: more revenue first */
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "sku")), "RARE-3");
	json_decref(t);
	t = get(p, "/v1/analytics/top_products?by=revenue&limit=1", 200);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(t, "items"), 0), "sku")), "RARE-3");
	json_decref(t);
	t = get(p, "/v1/analytics/top_products?by=views&limit=2", 200);
	items = json_object_get(t, "items");
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "sku")), "MUG-2");
	assert_int_equal(jint(json_array_get(items, 1), "views"), 1);
	json_decref(t);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_known_sequence(void **state)
{
	inproc *p = *state;
	story(p);
	assert_story(p);
	/* delivered again (a lost offset, a replay): nothing counts twice */
	assert_int_equal(store_runf(inproc_efix(p, "analytics")->store,
				    "UPDATE bus_offsets SET pos = 0", NULL, ""),
			 0);
	inproc_settle(p, STEP, 200);
	assert_story(p);
}

static void test_duplicated_deliveries(void **state)
{
	inproc *p = *state;
	bus_hooks h = { .duplicate_rate = 0.2 };
	bus_set_hooks(inproc_bus(p, "analytics"), &h);
	story(p);
	assert_story(p);
}

static void test_malformed_event(void **state)
{
	inproc *p = *state;
	inproc_event(p, "order", "orders", "x", "{\"type\":\"order.confirmed\",\"items\":3}");
	order(p, "order.confirmed", "ord_9", "USD", 100, "[{\"sku\":\"MUG-2\",\"qty\":1}]");
	for (int i = 0; i < 200 && inproc_int(p, "analytics", "SELECT COUNT(*) FROM bus_dead") < 1; i++)
		inproc_round(p, STEP);
	inproc_settle(p, STEP, 200);
	assert_int_equal(inproc_int(p, "analytics", "SELECT COUNT(*) FROM bus_dead"), 1);
	json_t *s = get(p, "/v1/analytics/summary", 200);
	assert_int_equal(jint(s, "orders"), 1);
	json_decref(s);
}

static void test_routes(void **state)
{
	inproc *p = *state;
	efix *a = inproc_efix(p, "analytics");
	efix_assert_error(get(p, "/v1/analytics/summary?minutes=0", 400), "invalid_argument", "field", "minutes");
	efix_assert_error(get(p, "/v1/analytics/summary?minutes=x", 400), "invalid_argument", "field", "minutes");
	efix_assert_error(get(p, "/v1/analytics/orders_per_minute?minutes=1441", 400),
			  "invalid_argument", "field", "minutes");
	efix_assert_error(get(p, "/v1/analytics/top_products?by=price", 400), "invalid_argument", "field", "by");
	efix_assert_error(get(p, "/v1/analytics/top_products?limit=101", 400), "invalid_argument", "field", "limit");
	efix_assert_error(efix_expect(a, "GET", "/v1/analytics/summary", NULL, NULL, NULL, 401),
			  "unauthenticated", NULL, NULL);
	char ident[IDENTITY_MAX];
	efix_sign(a, IDENTITY_USER, "usr_1", NULL, ident);
	efix_assert_error(efix_expect(a, "GET", "/v1/analytics/funnel", ident, NULL, NULL, 403),
			  "forbidden", NULL, NULL);
	/* nothing yet: zeros, no rates */
	json_t *f = get(p, "/v1/analytics/funnel?minutes=60", 200);
	assert_true(json_is_null(json_object_get(json_object_get(f, "rates"), "view_to_order")));
	json_decref(f);
	json_t *m = get(p, "/v1/analytics/orders_per_minute", 200);
	assert_int_equal(json_array_size(json_object_get(m, "items")), 60);
	json_decref(m);
}

static void test_view_counter(void **state)
{
	viewcount *v = viewcount_new(2);
	viewcount_add(v, "a", 1);
	viewcount_add(v, "b", 2);
	viewcount_add(v, "a", 3);
	viewcount_add(v, "c", 5); /* a third sku: not counted */
	int64_t total = 0;
	json_t *t = viewcount_take(v, &total);
	assert_int_equal(total, 6);
	assert_int_equal(json_integer_value(json_object_get(t, "a")), 4);
	assert_int_equal(json_object_size(t), 2);
	json_decref(t);
	assert_int_equal(viewcount_dropped(v), 5);
	assert_null(viewcount_take(v, &total)); /* empty after a take */
	assert_int_equal(total, 0);
	viewcount_free(v);
	assert_null(viewcount_new(0));
	/* catalog.view_flush_ms = 0: nothing counted, nothing written */
	efix *f = efix_new("catalog", "sqlite::memory:", EFIX_T0, 1);
	efix_seed(f, SEED);
	assert_int_equal(config_set(f->config, "catalog.view_flush_ms", "0"), 0);
	f->eng = efix_create_engine(f);
	json_decref(efix_expect(f, "GET", "/v1/products/BOOK-1", NULL, NULL, NULL, 200));
	f->def->tick(f->eng, EFIX_T0 + 3600 * SEC);
	int64_t rows = -1;
	assert_int_equal(store_intf(f->store, &rows, "SELECT COUNT(*) FROM outbox WHERE topic = 'analytics'", ""), 0);
	assert_int_equal(rows, 0);
	efix_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_known_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicated_deliveries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test(test_view_counter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
