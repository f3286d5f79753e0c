/* Tests for services/recommend: the catalog engine consuming a producer's
 * orders topic through the embedded bus (tests/unit/inproc, one virtual
 * clock), and the gateway's fallback helpers on a real stale cache
 * (src/resil/fallback). Covered: before any sale, "popular" is the
 * catalog's first products; bought-together counts from confirmed orders
 * (pairs in both directions, a sku twice in an order counted once, other
 * events ignored), most-bought-with first; a sku nothing was bought with
 * and no sku at all get the most ordered products, never the sku itself;
 * limits; duplicated deliveries counting once; unknown and malformed
 * skus; and the fallback: a query's kept answer or the kept popular list,
 * with source "fallback", the asked sku left out and the limit kept;
 * other paths untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "resil/fallback.h"
#include "services/recommend.h"

#include "efix.h"
#include "inproc.h"

#define STEP (50 * 1000LL)

static const char SEED[] =
	"[{\"sku\":\"A\",\"name\":\"a\",\"description\":\"\",\"category\":\"c\",\"price_cents\":100,\"currency\":\"USD\"},"
	"{\"sku\":\"B\",\"name\":\"b\",\"description\":\"\",\"category\":\"c\",\"price_cents\":200,\"currency\":\"USD\"},"
	"{\"sku\":\"C\",\"name\":\"c\",\"description\":\"\",\"category\":\"c\",\"price_cents\":300,\"currency\":\"USD\"},"
	"{\"sku\":\"D\",\"name\":\"d\",\"description\":\"\",\"category\":\"c\",\"price_cents\":400,\"currency\":\"USD\"},"
	"{\"sku\":\"E\",\"name\":\"e\",\"description\":\"\",\"category\":\"c\",\"price_cents\":500,\"currency\":\"USD\"}]";

static int setup(void **state)
{
	inproc *p = inproc_new();
	efix *cat = inproc_add(p, "catalog", 1);
	inproc_add(p, "order", 2);
	efix_seed(cat, SEED);
	inproc_start(p, "catalog", 1, 1);
	inproc_start(p, "order", 0, 1);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	inproc_free(*state);
	return 0;
}

/* An order.confirmed of "SKU:QTY,SKU:QTY...". */
static void confirmed(inproc *p, const char *id, const char *lines)
{
	char items[512] = "[", buf[512];
	snprintf(buf, sizeof(buf), "%s", lines);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(t, ':');
		*colon = '\0';
		size_t n = strlen(items);
		snprintf(items + n, sizeof(items) - n, "%s{\"sku\":\"%s\",\"qty\":%s}", n > 1 ? "," : "",
			 t, colon + 1);
	}
	strcat(items, "]");
	char ev[1024];
	snprintf(ev, sizeof(ev),
		 "{\"type\":\"order.confirmed\",\"order_id\":\"%s\",\"user_id\":\"u\","
		 "\"total_cents\":1,\"currency\":\"USD\",\"items\":%s}",
		 id, items);
	inproc_event(p, "order", "orders", id, ev);
}

/* GET /v1/recommendations?QUERY: the skus as "A,B", source into src. */
static void recs(inproc *p, const char *query, char *skus, size_t len, char *src)
{
	char path[256];
	snprintf(path, sizeof(path), "/v1/recommendations%s%s", query[0] ? "?" : "", query);
	json_t *v = efix_expect(inproc_efix(p, "catalog"), "GET", path, NULL, NULL, NULL, 200);
	skus[0] = '\0';
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(v, "items"), i, it)
	{
		size_t n = strlen(skus);
		snprintf(skus + n, len - n, "%s%s", i ? "," : "",
			 json_string_value(json_object_get(it, "sku")));
		/* whole products */
		assert_non_null(json_string_value(json_object_get(it, "name")));
		assert_true(json_is_integer(json_object_get(it, "price_cents")));
	}
	snprintf(src, 32, "%s", json_string_value(json_object_get(v, "source")));
	json_decref(v);
}

#define ASSERT_RECS(p, query, want_skus, want_src)                                   \
	do {                                                                         \
		char got[256], src[32];                                              \
		recs(p, query, got, sizeof(got), src);                               \
		assert_string_equal(got, want_skus);                                 \
		assert_string_equal(src, want_src);                                  \
	} while (0)

static void test_before_any_sale(void **state)
{
	inproc *p = *state;
	ASSERT_RECS(p, "sku=A", "B,C,D,E", "popular");
	ASSERT_RECS(p, "sku=C&limit=2", "A,B", "popular");
	ASSERT_RECS(p, "", "A,B,C,D,E", "popular");
}

static void build(inproc *p)
{
	confirmed(p, "o1", "A:1,B:1");
	confirmed(p, "o2", "B:2,A:1");
	confirmed(p, "o3", "A:1,C:5");
	confirmed(p, "o4", "B:1,C:1,D:1,B:1"); /* B twice: one pair each */
	inproc_event(p, "order", "orders", "o5",
		     "{\"type\":\"order.cancelled\",\"order_id\":\"o5\",\"items\":[{\"sku\":\"E\",\"qty\":9}]}");
	inproc_settle(p, STEP, 100);
}

static void assert_built(inproc *p)
{
	ASSERT_RECS(p, "sku=A", "B,C", "co_purchase");
	ASSERT_RECS(p, "sku=B", "A,C,D", "co_purchase");
	ASSERT_RECS(p, "sku=B&limit=1", "A", "co_purchase");
	ASSERT_RECS(p, "sku=D", "B,C", "co_purchase");
	/* E was never bought with anything: the most ordered, E not among them
	 * (B: 3 orders, A: 3, C: 2, D: 1; units break the tie) */
	ASSERT_RECS(p, "sku=E", "B,A,C,D", "popular");
	ASSERT_RECS(p, "limit=2", "B,A", "popular");
	assert_int_equal(inproc_int(p, "catalog", "SELECT orders FROM co_purchase WHERE sku = 'A' AND other = 'B'"), 2);
	assert_int_equal(inproc_int(p, "catalog", "SELECT COUNT(*) FROM co_purchase WHERE sku = other"), 0);
	assert_int_equal(inproc_int(p, "catalog", "SELECT units FROM sku_sales WHERE sku = 'B'"), 5);
	assert_int_equal(inproc_int(p, "catalog", "SELECT COUNT(*) FROM sku_sales WHERE sku = 'E'"), 0);
}

static void test_bought_together(void **state)
{
	inproc *p = *state;
	build(p);
	assert_built(p);
}

static void test_duplicated_deliveries(void **state)
{
	inproc *p = *state;
	bus_hooks h = { .duplicate_rate = 0.3 };
	bus_set_hooks(inproc_bus(p, "catalog"), &h);
	build(p);
	assert_built(p);
}

static void test_bad_queries(void **state)
{
	inproc *p = *state;
	efix *cat = inproc_efix(p, "catalog");
	efix_assert_error(efix_expect(cat, "GET", "/v1/recommendations?sku=NOPE", NULL, NULL, NULL, 404),
			  "not_found", "sku", "NOPE");
	efix_assert_error(efix_expect(cat, "GET", "/v1/recommendations?sku=%2Fx", NULL, NULL, NULL, 404),
			  "not_found", NULL, NULL);
	efix_assert_error(efix_expect(cat, "GET", "/v1/recommendations?limit=51", NULL, NULL, NULL, 400),
			  "invalid_argument", "field", "limit");
	efix_assert_error(efix_expect(cat, "GET", "/v1/recommendations?limit=0", NULL, NULL, NULL, 400),
			  "invalid_argument", "field", "limit");
}

/* ---- the gateway's fallback ---------------------------------------------------------- */

static void answer(msg_resp *r, const char *body)
{
	msg_resp_init(r);
	msg_resp_set(r, 200, "application/json", body, strlen(body));
}

static void test_fallback(void **state)
{
	fallback *f = fallback_new(100, 1 << 20, 3600 * 1000000LL);
	int64_t now = 1000;
	msg_req q, popular, other;
	msg_req_init(&q, "GET", "/v1/recommendations?sku=A&limit=2");
	msg_req_init(&popular, "GET", "/v1/recommendations?limit=9");
	msg_req_init(&other, "GET", "/v1/products/A");
	msg_resp r;
	/* nothing kept yet */
	msg_resp_init(&r);
	int64_t age = 0;
	assert_int_equal(recommend_fallback_get(f, &q, now, &r, &age), ERR_NOT_FOUND);
	/* a co_purchase answer is not the popular list; a popular one is */
	answer(&r, "{\"items\":[{\"sku\":\"B\"}],\"source\":\"co_purchase\",\"sku\":\"A\"}");
	recommend_fallback_keep(f, &q, &r, now);
	msg_resp_clear(&r);
	assert_int_equal(recommend_fallback_get(f, &q, now, &r, &age), ERR_NOT_FOUND);
	answer(&r, "{\"items\":[{\"sku\":\"A\"},{\"sku\":\"B\"},{\"sku\":\"C\"},{\"sku\":\"D\"}],"
		   "\"source\":\"popular\"}");
	recommend_fallback_keep(f, &popular, &r, now);
	recommend_fallback_keep(f, &other, &r, now); /* not a recommendations read: ignored */
	msg_resp_clear(&r);
	msg_resp_init(&r);
	assert_int_equal(recommend_fallback_get(f, &q, now + 5000000, &r, &age), 0);
	assert_int_equal(age, 5000000);
	recommend_fallback_mark(&q, &r);
	json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(v, "source")), "fallback");
	assert_string_equal(json_string_value(json_object_get(v, "sku")), "A");
	json_t *items = json_object_get(v, "items");
	assert_int_equal(json_array_size(items), 2); /* A left out, cut to 2 */
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "sku")), "B");
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "sku")), "C");
	json_decref(v);
	msg_resp_clear(&r);
	/* other reads are left alone */
	msg_resp_init(&r);
	assert_int_equal(recommend_fallback_get(f, &other, now, &r, &age), ERR_NOT_FOUND);
	answer(&r, "{\"sku\":\"A\",\"source\":\"x\"}");
	recommend_fallback_mark(&other, &r);
	assert_string_equal(r.body, "{\"sku\":\"A\",\"source\":\"x\"}");
	msg_resp_clear(&r);
	msg_req_clear(&q);
	msg_req_clear(&popular);
	msg_req_clear(&other);
	fallback_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_before_any_sale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bought_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicated_deliveries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_queries, setup, teardown),
		cmocka_unit_test(test_fallback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
