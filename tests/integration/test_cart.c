/* Integration: the cart on the real platform, through the gateway. Two
 * users sign up; one fills a cart with products of the seeded catalog
 * (priced by the cart service asking the catalog service through the
 * gateway), changes quantities, removes and clears; the other's cart stays
 * empty. An admin changes a price: the cart keeps the price the customer
 * saw, and the checkout view (the service route, here with the admin token)
 * flags the change. The cart then survives `ecom down` and `ecom up` on the
 * same state directory, and the old access token still works. Runs on
 * SQLite, and on PostgreSQL from tests/integration/postgres.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

static char token_a[1024], token_b[1024], user_a[128];

static int setup(void **unused) { return itest_up(NULL); }

static int teardown(void **unused)
{
	itest_teardown();
	return 0;
}

static void signup_login(const char *email, char *token, size_t len, char *id, size_t idlen)
{
	assert_int_equal(itest_signup_login(email, token, len, id, idlen), 0);
}

static long long price_of(const char *sku)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/products/%s", sku);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", path, NULL, NULL, &v, NULL), 200);
	long long p = (long long)json_integer_value(json_object_get(v, "price_cents"));
	json_decref(v);
	assert_true(p > 0);
	return p;
}

static json_t *put_item(const char *token, const char *sku, int qty, int want)
{
	char path[128], body[64];
	snprintf(path, sizeof(path), "/v1/cart/items/%s", sku);
	snprintf(body, sizeof(body), "{\"qty\":%d}", qty);
	json_t *v = NULL;
	int status = itest_req("PUT", path, body, token, &v, NULL);
	if (status != want) {
		char *s = v ? json_dumps(v, 0) : NULL;
		fail_msg("PUT %s qty %d: status %d, expected %d: %s", sku, qty, status, want,
			 s ? s : "");
	}
	return v;
}

static json_t *get_cart(const char *token)
{
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/v1/cart", NULL, token, &v, NULL), 200);
	return v;
}

static long long jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static json_t *nth(json_t *cart, size_t i)
{
	return json_array_get(json_object_get(cart, "items"), i);
}

static size_t count(json_t *cart)
{
	return json_array_size(json_object_get(cart, "items"));
}

static long long p1, p3;

static void test_cart_through_gateway(void **unused)
{
	signup_login("cart-a@example.com", token_a, sizeof(token_a), user_a, sizeof(user_a));
	signup_login("cart-b@example.com", token_b, sizeof(token_b), NULL, 0);
	p1 = price_of("ELEC-001");
	p3 = price_of("ELEC-003");

	json_t *c = get_cart(token_a);
	assert_int_equal(count(c), 0);
	assert_int_equal(jint(c, "total_cents"), 0);
	assert_true(json_is_null(json_object_get(c, "currency")));
	json_decref(c);

	json_decref(put_item(token_a, "ELEC-003", 1, 200));
	c = put_item(token_a, "ELEC-001", 2, 200);
	assert_int_equal(count(c), 2);
	json_decref(c);
	c = get_cart(token_a);
	assert_int_equal(count(c), 2);
	assert_string_equal(json_string_value(json_object_get(nth(c, 0), "sku")), "ELEC-001");
	assert_int_equal(jint(nth(c, 0), "qty"), 2);
	assert_int_equal(jint(nth(c, 0), "price_cents"), p1);
	assert_string_equal(json_string_value(json_object_get(nth(c, 1), "sku")), "ELEC-003");
	assert_int_equal(jint(c, "total_cents"), 2 * p1 + p3);
	assert_string_equal(json_string_value(json_object_get(c, "currency")), "USD");
	json_decref(c);

	/* Update a quantity, remove an item. */
	c = put_item(token_a, "ELEC-003", 3, 200);
	assert_int_equal(jint(c, "total_cents"), 2 * p1 + 3 * p3);
	json_decref(c);
	json_t *v = NULL;
	assert_int_equal(itest_req("DELETE", "/v1/cart/items/ELEC-001", NULL, token_a, &v, NULL),
			 200);
	assert_int_equal(count(v), 1);
	assert_int_equal(jint(v, "total_cents"), 3 * p3);
	json_decref(v);

	/* Errors: unknown sku, bad qty, no token. */
	v = put_item(token_a, "NO-SUCH-SKU", 1, 404);
	assert_string_equal(itest_err_code(v), "not_found");
	json_decref(v);
	v = put_item(token_a, "ELEC-001", 100, 400);
	assert_string_equal(itest_err_code(v), "invalid_argument");
	json_decref(v);
	assert_int_equal(itest_req("GET", "/v1/cart", NULL, NULL, &v, NULL), 401);
	assert_string_equal(itest_err_code(v), "unauthenticated");
	json_decref(v);

	/* The other user's cart is empty and their own. */
	c = get_cart(token_b);
	assert_int_equal(count(c), 0);
	json_decref(c);
	json_decref(put_item(token_b, "ELEC-002", 1, 200));
	assert_int_equal(itest_req("DELETE", "/v1/cart", NULL, token_b, &v, NULL), 200);
	assert_int_equal(count(v), 0);
	json_decref(v);
	c = get_cart(token_a);
	assert_int_equal(count(c), 1);
	json_decref(c);

	/* Clear. */
	assert_int_equal(itest_req("DELETE", "/v1/cart", NULL, token_a, &v, NULL), 200);
	assert_int_equal(count(v), 0);
	assert_int_equal(jint(v, "total_cents"), 0);
	json_decref(v);
	c = get_cart(token_a);
	assert_int_equal(count(c), 0);
	json_decref(c);
}

static void test_price_change_and_service_route(void **unused)
{
	json_decref(put_item(token_a, "ELEC-001", 1, 200));
	json_decref(put_item(token_a, "ELEC-003", 2, 200));
	/* The admin raises a price in the catalog. */
	json_t *prod = NULL;
	assert_int_equal(itest_req("GET", "/v1/products/ELEC-003", NULL, NULL, &prod, NULL), 200);
	json_object_set_new(prod, "price_cents", json_integer(p3 + 100));
	json_object_del(prod, "created_at");
	json_object_del(prod, "updated_at");
	char *body = json_dumps(prod, JSON_COMPACT);
	json_decref(prod);
	assert_int_equal(itest_req("PUT", "/v1/products/ELEC-003", body, ITEST_TOKEN, NULL, NULL),
			 200);
	free(body);

	/* The cart still shows what the customer saw. */
	json_t *c = get_cart(token_a);
	assert_int_equal(jint(c, "total_cents"), p1 + 2 * p3);
	json_decref(c);

	/* The checkout view is for services: a user gets 403 through the
	 * gateway, even for their own cart. */
	char path[256];
	snprintf(path, sizeof(path), "/v1/internal/carts/%s?refresh=1", user_a);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", path, NULL, token_a, &v, NULL), 403);
	assert_string_equal(itest_err_code(v), "forbidden");
	json_decref(v);
	/* The operator's token is let through; the change is flagged. */
	assert_int_equal(itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL), 200);
	assert_true(json_is_true(json_object_get(v, "price_changed")));
	assert_int_equal(jint(v, "total_cents"), p1 + 2 * p3);
	assert_int_equal(jint(v, "current_total_cents"), p1 + 2 * (p3 + 100));
	assert_true(json_is_false(json_object_get(nth(v, 0), "price_changed")));
	assert_true(json_is_true(json_object_get(nth(v, 1), "price_changed")));
	assert_int_equal(jint(nth(v, 1), "current_price_cents"), p3 + 100);
	json_decref(v);
	/* Putting the item again takes the new price. */
	c = put_item(token_a, "ELEC-003", 2, 200);
	assert_int_equal(jint(c, "total_cents"), p1 + 2 * (p3 + 100));
	json_decref(c);
	assert_int_equal(itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL), 200);
	assert_true(json_is_false(json_object_get(v, "price_changed")));
	json_decref(v);
	p3 += 100;
}

static void test_survives_restart(void **unused)
{
	assert_int_equal(itest_restart(NULL), 0);

	/* The same token (jwt.key is in the state directory), the same cart. */
	json_t *c = get_cart(token_a);
	assert_int_equal(count(c), 2);
	assert_string_equal(json_string_value(json_object_get(nth(c, 0), "sku")), "ELEC-001");
	assert_int_equal(jint(nth(c, 0), "qty"), 1);
	assert_string_equal(json_string_value(json_object_get(nth(c, 1), "sku")), "ELEC-003");
	assert_int_equal(jint(nth(c, 1), "qty"), 2);
	assert_int_equal(jint(c, "total_cents"), p1 + 2 * p3);
	json_decref(c);
	c = get_cart(token_b);
	assert_int_equal(count(c), 0);
	json_decref(c);
	/* And it keeps working. */
	c = put_item(token_a, "ELEC-001", 4, 200);
	assert_int_equal(jint(c, "total_cents"), 4 * p1 + 2 * p3);
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cart_through_gateway),
		cmocka_unit_test(test_price_change_and_service_route),
		cmocka_unit_test(test_survives_restart),
	};
	return cmocka_run_group_tests_name("integration: cart", tests, setup, teardown);
}
