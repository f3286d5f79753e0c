/* Tests for services/search through its engine_def, over a real catalog
 * engine: the search engine's outbound calls (its rebuilds page over the
 * catalog's export) are handed to a catalog engine in the same process,
 * as the gateway would. Each test gets a catalog on sqlite::memory:, a
 * search index in a SQLite file of a temporary directory, and a virtual
 * clock. The bus is played by deliver(), which hands the catalog's outbox
 * rows to search_apply in order, as the consumer will. */
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
#include "core/metrics.h"
#include "net/msg.h"
#include "services/search.h"
#include "store/store.h"

#include "efix.h"

#define T0 EFIX_T0
#define ADMIN "Bearer " EFIX_ADMIN

typedef struct fx {
	efix *cat;
	efix *srch;
	int fail_calls; /* the catalog "unreachable" */
	int calls;
	int64_t delivered; /* last outbox id handed to search_apply */
	int lists; /* every word's posting list cached: each search asked twice (see search()) */
} fx;

/* A small hand-written catalog. KN-3 is named exactly "Knife" while KN-1's
 * description says knife four times, so BM25 alone would put KN-1 first. */
static const char *const BASE[] = {
	"{\"sku\":\"SP-1\",\"name\":\"Bluetooth Speaker\",\"description\":\"Portable speaker, pairs "
	"over bluetooth.\",\"category\":\"electronics\",\"price_cents\":5900}",
	"{\"sku\":\"SP-2\",\"name\":\"Bluetooth Speaker Stand\",\"description\":\"A stand for a "
	"speaker.\",\"category\":\"electronics\",\"price_cents\":2500}",
	"{\"sku\":\"SP-3\",\"name\":\"Waterproof Outdoor Speaker\",\"description\":\"Pairs over "
	"bluetooth with any phone.\",\"category\":\"electronics\",\"price_cents\":8900}",
	"{\"sku\":\"HP-1\",\"name\":\"Wireless Headphones\",\"description\":\"Over-ear headphones "
	"with bluetooth and noise cancelling.\",\"category\":\"electronics\",\"price_cents\":12900}",
	"{\"sku\":\"KN-1\",\"name\":\"Chef Knife\",\"description\":\"Knife, knife, knife: the knife "
	"of chefs.\",\"category\":\"kitchen\",\"price_cents\":3900}",
	"{\"sku\":\"KN-2\",\"name\":\"Knife Sharpener\",\"description\":\"Keeps every knife "
	"sharp.\",\"category\":\"kitchen\",\"price_cents\":1900}",
	"{\"sku\":\"KN-3\",\"name\":\"Knife\",\"category\":\"kitchen\",\"price_cents\":900}",
	"{\"sku\":\"KT-1\",\"name\":\"Kitchen Speaker Timer\",\"description\":\"A timer that "
	"talks.\",\"category\":\"kitchen\",\"price_cents\":1500}",
	"{\"sku\":\"BK-1\",\"name\":\"The Speaker's Handbook\",\"description\":\"How to speak in "
	"public.\",\"category\":\"books\",\"price_cents\":2900}",
	"{\"sku\":\"SK-1\",\"name\":\"Cast Iron Skillet\",\"description\":\"Heavy pan.\","
	"\"category\":\"kitchen\",\"price_cents\":4500}",
	"{\"sku\":\"GH-1\",\"name\":\"Garden Hose\",\"description\":\"Twenty metres of hose.\","
	"\"category\":\"garden\",\"price_cents\":2900}",
};
#define NBASE (sizeof(BASE) / sizeof(BASE[0]))
#define NCABLES 23
#define NALL (NBASE + NCABLES)

/* ---- fixture --------------------------------------------------------------- */

/* The gateway, for the search engine's calls: hands the request to the
 * catalog engine. */
static int to_catalog(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		      int64_t timeout_ms)
{
	(void)target;
	(void)timeout_ms;
	fx *x = ud;
	x->calls++;
	if (x->fail_calls)
		return ERR_UNAVAILABLE;
	char path[1024];
	snprintf(path, sizeof(path), "%s%s%s", req->path, req->query ? "?" : "",
		 req->query ? req->query : "");
	msg_req r;
	assert_int_equal(msg_req_init(&r, req->method, path), 0);
	for (int i = 0; i < req->nheaders; i++)
		assert_int_equal(msg_req_add_header(&r, req->headers[i].name, req->headers[i].value),
				 0);
	x->cat->def->handle(x->cat->eng, &r, resp);
	msg_req_clear(&r);
	return 0;
}

static char *seed_json(void)
{
	size_t cap = 16384, len = 0;
	char *s = malloc(cap);
	assert_non_null(s);
	len += (size_t)snprintf(s + len, cap - len, "[");
	for (size_t i = 0; i < NBASE; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s,\n", BASE[i]);
	for (int i = 1; i <= NCABLES; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"{\"sku\":\"CB-%02d\",\"name\":\"Speaker Cable %d\","
					"\"description\":\"Copper cable for speakers.\","
					"\"category\":\"electronics\",\"price_cents\":%d}%s\n",
					i, i, i * 100, i < NCABLES ? "," : "");
	snprintf(s + len, cap - len, "]");
	return s;
}

static void search_engine_new(fx *x)
{
	x->srch->ctx.call = to_catalog;
	x->srch->ctx.call_ud = x;
	x->srch->ctx.gateway_url = "http://gateway.test";
	x->srch->eng = efix_create_engine(x->srch);
}

static json_t *status_of(fx *x)
{
	return efix_expect(x->srch, "GET", "/v1/search/_status", NULL, ADMIN, NULL, 200);
}

static const char *reindex_state(json_t *st)
{
	return json_string_value(json_object_get(json_object_get(st, "reindex"), "state"));
}

/* Ticks (100 ms of virtual time each) until the rebuild is done. */
static void build(fx *x)
{
	for (int i = 0; i < 200; i++) {
		clock_advance(x->srch->clock, 100000);
		x->srch->def->tick(x->srch->eng, clock_now(x->srch->clock));
		json_t *st = status_of(x);
		int idle = strcmp(reindex_state(st), "IDLE") == 0;
		json_decref(st);
		if (idle)
			return;
	}
	fail_msg("the rebuild did not finish in 200 ticks");
}

/* The catalog's outbox rows after the last delivered, to search_apply. */
static int deliver(fx *x)
{
	int err = 0, n = 0;
	store_stmt *st = store_prepare(x->cat->store,
				       "SELECT id, payload FROM outbox WHERE id > ? ORDER BY id", &err);
	assert_non_null(st);
	store_bind_int(st, 1, x->delivered);
	char *payloads[256];
	int64_t last = x->delivered;
	while (store_step(st) == STORE_ROW && n < 256) {
		last = store_col_int(st, 0);
		payloads[n++] = strdup(store_col_text(st, 1));
	}
	store_reset(st);
	for (int i = 0; i < n; i++) {
		assert_int_equal(search_apply(x->srch->eng, payloads[i], strlen(payloads[i])), 0);
		free(payloads[i]);
	}
	x->delivered = last;
	return n;
}

static fx *fx_new(const char *rank_window, int lists)
{
	fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	x->cat = efix_new("catalog", "sqlite::memory:", T0, 1);
	char *seed = seed_json();
	efix_seed(x->cat, seed);
	free(seed);
	x->cat->eng = efix_create_engine(x->cat);
	x->srch = efix_new("search", NULL, T0, 2);
	if (rank_window)
		assert_int_equal(config_set(x->srch->config, "search.rank_window", rank_window), 0);
	x->lists = lists;
	if (lists)
		assert_int_equal(config_set(x->srch->config, "search.posting_cache_min_df", "1"), 0);
	search_engine_new(x);
	build(x);
	/* the loader's events are in the index already: the bus starts after them */
	int err = 0;
	store_stmt *st = store_prepare(x->cat->store, "SELECT MAX(id) FROM outbox", &err);
	assert_non_null(st);
	assert_int_equal(store_step(st), STORE_ROW);
	x->delivered = store_col_int(st, 0);
	store_reset(st);
	assert_int_equal(x->delivered, NALL);
	return x;
}

static int setup(void **state)
{
	*state = fx_new(NULL, 0);
	return 0;
}

/* Every word counted from cached posting lists (after the tick that reads
 * them): each search is answered from the index first, then, after a tick,
 * from the lists, and the two answers must be the same. */
static int setup_lists(void **state)
{
	*state = fx_new(NULL, 1);
	return 0;
}

static int setup_window(void **state)
{
	*state = fx_new("5", 0);
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	efix_free(x->srch);
	efix_free(x->cat);
	free(x);
	return 0;
}

/* ---- helpers -------------------------------------------------------------------- */

static void tick(fx *x)
{
	clock_advance(x->srch->clock, 100000);
	x->srch->def->tick(x->srch->eng, clock_now(x->srch->clock));
}

static json_t *search(fx *x, const char *query, int want)
{
	char path[12000];
	snprintf(path, sizeof(path), "/v1/search?%s", query);
	json_t *v = efix_expect(x->srch, "GET", path, NULL, NULL, NULL, want);
	if (x->lists && want == 200) {
		tick(x); /* reads the lists the search asked for */
		json_t *again = efix_expect(x->srch, "GET", path, NULL, NULL, NULL, want);
		if (!json_equal(v, again)) {
			char *a = json_dumps(v, JSON_SORT_KEYS), *b = json_dumps(again, JSON_SORT_KEYS);
			fail_msg("%s: from the index %s, from the lists %s", query, a, b);
		}
		json_decref(again);
	}
	return v;
}

static json_int_t total_of(json_t *v) { return json_integer_value(json_object_get(v, "total")); }

static const char *sku_at(json_t *v, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(v, "items"), i), "sku"));
}

static size_t nitems(json_t *v) { return json_array_size(json_object_get(v, "items")); }

static json_int_t facet(json_t *v, const char *cat)
{
	json_t *n = json_object_get(json_object_get(v, "facets"), cat);
	return n ? json_integer_value(n) : 0;
}

static void expect_skus(fx *x, const char *query, const char *const *skus, size_t n)
{
	json_t *v = search(x, query, 200);
	if (nitems(v) != n || (json_int_t)n != total_of(v)) {
		char *s = json_dumps(v, 0);
		fail_msg("%s: %zu items, total %lld, expected %zu: %s", query, nitems(v),
			 (long long)total_of(v), n, s);
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(sku_at(v, i), skus[i]) != 0)
			fail_msg("%s: item %zu is %s, expected %s", query, i, sku_at(v, i), skus[i]);
	json_decref(v);
}

static void apply_ok(fx *x, const char *payload)
{
	assert_int_equal(search_apply(x->srch->eng, payload, strlen(payload)), 0);
}

static int has_sku(json_t *v, const char *sku)
{
	for (size_t i = 0; i < nitems(v); i++)
		if (strcmp(sku_at(v, i), sku) == 0)
			return 1;
	return 0;
}

/* ---- relevance ------------------------------------------------------------------- */

static void test_built_from_catalog(void **state)
{
	fx *x = *state;
	json_t *st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	assert_true(json_is_true(json_object_get(st, "built")));
	assert_int_equal(json_integer_value(json_object_get(st, "generation")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "reindex"), "copied")),
			 NALL);
	json_decref(st);
}

static void test_relevance_order(void **state)
{
	fx *x = *state;
	/* the exact name first; both words in the name before one only in
	 * the description; a product with only one of the words not at all */
	static const char *const bt[] = { "SP-1", "SP-2", "SP-3" };
	expect_skus(x, "q=bluetooth+speaker", bt, 3);
	expect_skus(x, "q=Bluetooth%20SPEAKER", bt, 3);
	/* the exact name match beats a higher BM25 score */
	json_t *v = search(x, "q=knife", 200);
	assert_int_equal(total_of(v), 3);
	assert_string_equal(sku_at(v, 0), "KN-3");
	assert_string_equal(sku_at(v, 1), "KN-1");
	assert_string_equal(sku_at(v, 2), "KN-2");
	json_t *items = json_object_get(v, "items");
	assert_true(json_real_value(json_object_get(json_array_get(items, 0), "score")) <
		    json_real_value(json_object_get(json_array_get(items, 1), "score")));
	/* every field of the product, plus its score */
	json_t *it = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(it, "name")), "Knife");
	assert_string_equal(json_string_value(json_object_get(it, "description")), "");
	assert_string_equal(json_string_value(json_object_get(it, "category")), "kitchen");
	assert_int_equal(json_integer_value(json_object_get(it, "price_cents")), 900);
	assert_string_equal(json_string_value(json_object_get(it, "currency")), "USD");
	assert_string_equal(json_string_value(json_object_get(v, "query")), "knife");
	assert_string_equal(json_string_value(json_object_get(v, "ranking")), "exact");
	json_decref(v);
	/* a name match outranks a description match */
	v = search(x, "q=bluetooth", 200);
	assert_int_equal(total_of(v), 4);
	assert_string_equal(sku_at(v, 0), "SP-1");
	assert_string_equal(sku_at(v, 1), "SP-2");
	assert_true(strcmp(sku_at(v, 3), "SP-3") == 0 || strcmp(sku_at(v, 3), "HP-1") == 0);
	json_decref(v);
}

static void test_filters_and_facets(void **state)
{
	fx *x = *state;
	json_t *v = search(x, "q=speaker&limit=100", 200);
	assert_int_equal(total_of(v), 28);
	assert_int_equal(nitems(v), 28);
	assert_int_equal(facet(v, "electronics"), 26);
	assert_int_equal(facet(v, "kitchen"), 1);
	assert_int_equal(facet(v, "books"), 1);
	assert_int_equal(json_object_size(json_object_get(v, "facets")), 3);
	json_decref(v);

	/* the category filter narrows the items and the total; the facets
	 * still show every category of the query */
	v = search(x, "q=speaker&category=kitchen", 200);
	assert_int_equal(total_of(v), 1);
	assert_int_equal(nitems(v), 1);
	assert_string_equal(sku_at(v, 0), "KT-1");
	assert_int_equal(facet(v, "electronics"), 26);
	assert_int_equal(facet(v, "books"), 1);
	json_decref(v);

	/* price filters narrow the facets too */
	v = search(x, "q=speaker&max_price=2000&limit=100", 200);
	assert_int_equal(total_of(v), 21);
	assert_int_equal(facet(v, "electronics"), 20);
	assert_int_equal(facet(v, "kitchen"), 1);
	assert_int_equal(facet(v, "books"), 0);
	for (size_t i = 0; i < nitems(v); i++)
		assert_true(json_integer_value(json_object_get(
				    json_array_get(json_object_get(v, "items"), i), "price_cents")) <=
			    2000);
	json_decref(v);
	v = search(x, "q=speaker&min_price=2000&max_price=3000&limit=100", 200);
	assert_int_equal(total_of(v), 6);
	assert_int_equal(facet(v, "electronics"), 5);
	assert_int_equal(facet(v, "books"), 1);
	json_decref(v);
	v = search(x, "q=speaker&min_price=2000&max_price=3000&category=books", 200);
	assert_int_equal(total_of(v), 1);
	assert_string_equal(sku_at(v, 0), "BK-1");
	json_decref(v);

	/* several words: facets counted over the matches of all of them */
	v = search(x, "q=speaker+cable&category=electronics&limit=1", 200);
	assert_int_equal(total_of(v), NCABLES);
	assert_int_equal(facet(v, "electronics"), NCABLES);
	assert_int_equal(nitems(v), 1);
	json_decref(v);

	/* an unknown category or nothing matching: an empty answer */
	v = search(x, "q=speaker&category=toys", 200);
	assert_int_equal(total_of(v), 0);
	assert_int_equal(nitems(v), 0);
	assert_true(json_is_null(json_object_get(v, "next_page_token")));
	json_decref(v);
	v = search(x, "q=xylophone1", 200);
	assert_int_equal(total_of(v), 0);
	assert_int_equal(json_object_size(json_object_get(v, "facets")), 0);
	json_decref(v);
}

/* The price of each product of the fixture's catalog with the word, by
 * brute force: a base product's from BASE, a cable's from its number. */
static int64_t expected_in_range(int cables, const char *const *base, int nbase, int64_t min,
				 int64_t max)
{
	int64_t n = 0;
	for (int i = 0; i < nbase; i++) {
		const char *pc = strstr(base[i], "\"price_cents\":");
		assert_non_null(pc);
		int64_t price = atoll(pc + 14);
		n += price >= min && price <= max;
	}
	for (int i = 1; cables && i <= NCABLES; i++)
		n += i * 100 >= min && i * 100 <= max;
	return n;
}

/* Price filters cut price buckets at their edges: every total, checked
 * against brute force over random ranges, one word (counted from the
 * buckets) and two (counted match by match). */
static void test_price_ranges(void **state)
{
	fx *x = *state;
	/* the products with "speaker": SP-1..3, KT-1, BK-1 and the cables */
	const char *speaker[] = { BASE[0], BASE[1], BASE[2], BASE[7], BASE[8] };
	uint64_t r = 12345;
	for (int i = 0; i < 150; i++) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		int64_t a = (int64_t)((r >> 33) % 9500), b = (int64_t)((r >> 13) % 9500);
		int64_t min = a < b ? a : b, max = a < b ? b : a;
		if (i % 10 == 0)
			max = min; /* one price */
		char q[128];
		snprintf(q, sizeof(q), "q=speaker&min_price=%lld&max_price=%lld&limit=100",
			 (long long)min, (long long)max);
		json_t *v = search(x, q, 200);
		int64_t want = expected_in_range(1, speaker, 5, min, max);
		if (total_of(v) != want || (int64_t)nitems(v) != want)
			fail_msg("%s: total %lld, items %zu, expected %lld", q,
				 (long long)total_of(v), nitems(v), (long long)want);
		json_decref(v);
		snprintf(q, sizeof(q), "q=speaker+cable&min_price=%lld&max_price=%lld",
			 (long long)min, (long long)max);
		v = search(x, q, 200);
		want = expected_in_range(1, NULL, 0, min, max);
		if (total_of(v) != want)
			fail_msg("%s: total %lld, expected %lld", q, (long long)total_of(v),
				 (long long)want);
		json_decref(v);
	}
	/* only a lower or an upper bound */
	json_t *v = search(x, "q=speaker&min_price=2250", 200);
	assert_int_equal(total_of(v), expected_in_range(1, speaker, 5, 2250, INT64_MAX));
	json_decref(v);
	v = search(x, "q=speaker+cable&max_price=150", 200);
	assert_int_equal(total_of(v), 1);
	json_decref(v);
	/* a price change moves the product between buckets */
	apply_ok(x, "{\"type\":\"product_price_changed\",\"sku\":\"CB-01\",\"version\":"
		    "1864112255000000,\"name\":\"Speaker Cable 1\",\"description\":\"Copper cable "
		    "for speakers.\",\"category\":\"electronics\",\"price_cents\":777777}");
	static const char *const cb1[] = { "CB-01" };
	expect_skus(x, "q=cable&min_price=777777&max_price=777777", cb1, 1);
	expect_skus(x, "q=cable&max_price=100", NULL, 0);
	expect_skus(x, "q=speaker+cable&min_price=700000", cb1, 1);
}

/* Pages through query with limit; the skus in order into out (at most max). */
static size_t page_all(fx *x, const char *query, int limit, char out[][16], size_t max)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s&limit=%d", query, limit);
	size_t n = 0;
	for (int page = 0; page < 50; page++) {
		json_t *v = search(x, path, 200);
		assert_true(nitems(v) <= (size_t)limit);
		for (size_t i = 0; i < nitems(v) && n < max; i++)
			snprintf(out[n++], 16, "%s", sku_at(v, i));
		json_t *next = json_object_get(v, "next_page_token");
		if (json_is_null(next)) {
			json_decref(v);
			return n;
		}
		assert_true(nitems(v) == (size_t)limit);
		snprintf(path, sizeof(path), "%s&limit=%d&page_token=%s", query, limit,
			 json_string_value(next));
		json_decref(v);
	}
	fail_msg("more than 50 pages");
	return n;
}

static void test_pagination(void **state)
{
	fx *x = *state;
	char all[64][16], paged[64][16];
	size_t n = page_all(x, "q=cable", 100, all, 64);
	assert_int_equal(n, NCABLES);
	/* equal scores: sku order */
	for (int i = 0; i < NCABLES; i++) {
		char want[16];
		snprintf(want, sizeof(want), "CB-%02d", i + 1);
		assert_string_equal(all[i], want);
	}
	for (int limit = 1; limit <= 7; limit++) {
		size_t m = page_all(x, "q=cable", limit, paged, 64);
		assert_int_equal(m, NCABLES);
		for (size_t i = 0; i < m; i++)
			assert_string_equal(paged[i], all[i]);
	}
	/* the same token gives the same page */
	json_t *v = search(x, "q=cable&limit=5", 200);
	char path[512], tok[256];
	snprintf(tok, sizeof(tok), "%s", json_string_value(json_object_get(v, "next_page_token")));
	snprintf(path, sizeof(path), "q=cable&limit=5&page_token=%s", tok);
	json_decref(v);
	json_t *a = search(x, path, 200), *b = search(x, path, 200);
	assert_true(json_equal(a, b));
	assert_string_equal(sku_at(a, 0), "CB-06");
	json_decref(a);
	json_decref(b);
	/* a product added meanwhile before the page does not repeat items */
	apply_ok(x, "{\"type\":\"product_created\",\"sku\":\"CB-00\",\"version\":1,"
		    "\"name\":\"Speaker Cable 0\",\"category\":\"electronics\",\"price_cents\":1}");
	a = search(x, path, 200);
	assert_string_equal(sku_at(a, 0), "CB-06");
	assert_int_equal(total_of(a), NCABLES + 1);
	json_decref(a);
	/* a token belongs to its query and filters */
	char other[512];
	snprintf(other, sizeof(other), "q=speaker&limit=5&page_token=%s", tok);
	efix_assert_error(search(x, other, 400), "invalid_argument", "field", "page_token");
	snprintf(other, sizeof(other), "q=cable&limit=5&max_price=100&page_token=%s", tok);
	efix_assert_error(search(x, other, 400), "invalid_argument", "field", "page_token");
	efix_assert_error(search(x, "q=cable&page_token=s1.zz", 400), "invalid_argument", "field",
			  "page_token");
	efix_assert_error(search(x, "q=cable&page_token=p1abcd", 400), "invalid_argument", "field",
			  "page_token");
}

static void test_rank_window(void **state)
{
	fx *x = *state;
	/* 23 cables, 5 ranked: the total still counts them all */
	json_t *v = search(x, "q=cable&limit=2", 200);
	assert_int_equal(total_of(v), NCABLES);
	assert_string_equal(json_string_value(json_object_get(v, "ranking")), "window");
	json_decref(v);
	char skus[64][16];
	size_t n = page_all(x, "q=cable", 2, skus, 64);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			assert_string_not_equal(skus[i], skus[k]);
	/* the window reaches every category with matches */
	v = search(x, "q=speaker&limit=10", 200);
	assert_int_equal(total_of(v), 28);
	assert_true(has_sku(v, "KT-1"));
	assert_true(has_sku(v, "BK-1"));
	json_decref(v);
	/* an exact name match is always a candidate, even the last indexed */
	apply_ok(x, "{\"type\":\"product_created\",\"sku\":\"ZZ-1\",\"version\":1,"
		    "\"name\":\"Speaker\",\"category\":\"electronics\",\"price_cents\":100}");
	v = search(x, "q=speaker&limit=1", 200);
	assert_string_equal(json_string_value(json_object_get(v, "ranking")), "window");
	assert_int_equal(total_of(v), 29);
	assert_string_equal(sku_at(v, 0), "ZZ-1");
	json_decref(v);
	v = search(x, "q=speaker&limit=1&category=kitchen", 200);
	assert_string_equal(sku_at(v, 0), "KT-1");
	json_decref(v);
	/* few matches: every one ranked */
	v = search(x, "q=knife", 200);
	assert_string_equal(json_string_value(json_object_get(v, "ranking")), "exact");
	assert_int_equal(nitems(v), 3);
	json_decref(v);
}

/* ---- typos and prefixes ---------------------------------------------------------- */

static void test_typos(void **state)
{
	fx *x = *state;
	json_t *v = search(x, "q=bluetoth", 200);
	assert_int_equal(total_of(v), 4);
	assert_string_equal(json_string_value(json_object_get(v, "query")), "bluetooth");
	json_decref(v);
	static const char *const hp[] = { "HP-1" };
	expect_skus(x, "q=wireless+headphnes", hp, 1);
	expect_skus(x, "q=headpohnes", hp, 1); /* a transposition */
	static const char *const sk[] = { "SK-1" };
	expect_skus(x, "q=skilet", sk, 1);
	static const char *const gh[] = { "GH-1" };
	expect_skus(x, "q=garden+hoze+", gh, 1);
	/* too far from any word: nothing, not something random */
	v = search(x, "q=qwertyzz", 200);
	assert_int_equal(total_of(v), 0);
	json_decref(v);
	/* numbers are matched exactly */
	v = search(x, "q=cable+177", 200);
	assert_int_equal(total_of(v), 0);
	json_decref(v);
	static const char *const c17[] = { "CB-17" };
	expect_skus(x, "q=cable+17+", c17, 1);
}

static void test_prefixes(void **state)
{
	fx *x = *state;
	/* the last word, while typed, stands for the words it begins */
	json_t *v = search(x, "q=knif", 200);
	assert_int_equal(total_of(v), 3);
	assert_string_equal(json_string_value(json_object_get(v, "query")), "knife");
	json_decref(v);
	static const char *const kn1[] = { "KN-1" };
	expect_skus(x, "q=chef+kn", kn1, 1);
	v = search(x, "q=wat", 200); /* waterproof */
	assert_int_equal(total_of(v), 1);
	assert_string_equal(sku_at(v, 0), "SP-3");
	json_decref(v);

	json_t *s = efix_expect(x->srch, "GET", "/v1/search/suggest?q=blu", NULL, NULL, NULL, 200);
	json_t *list = json_object_get(s, "suggestions");
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "bluetooth");
	json_decref(s);
	s = efix_expect(x->srch, "GET", "/v1/search/suggest?q=Bluetooth+spe", NULL, NULL, NULL, 200);
	list = json_object_get(s, "suggestions");
	assert_true(json_array_size(list) >= 1);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "bluetooth speaker");
	for (size_t i = 0; i < json_array_size(list); i++)
		assert_int_equal(strncmp(json_string_value(json_array_get(list, i)), "bluetooth spe", 13),
				 0);
	json_decref(s);
	/* completions that would find nothing are left out */
	s = efix_expect(x->srch, "GET", "/v1/search/suggest?q=garden+spe", NULL, NULL, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(s, "suggestions")), 0);
	json_decref(s);
	/* the most frequent first, at most limit */
	s = efix_expect(x->srch, "GET", "/v1/search/suggest?q=s&limit=2", NULL, NULL, NULL, 200);
	list = json_object_get(s, "suggestions");
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_array_get(list, 0)), "speaker");
	json_decref(s);
	static const char *const empty[] = { "/v1/search/suggest?q=", "/v1/search/suggest",
					     "/v1/search/suggest?q=blu+", "/v1/search/suggest?q=%22%2A" };
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		s = efix_expect(x->srch, "GET", empty[i], NULL, NULL, NULL, 200);
		assert_int_equal(json_array_size(json_object_get(s, "suggestions")), 0);
		json_decref(s);
	}
	efix_assert_error(efix_expect(x->srch, "GET", "/v1/search/suggest?q=a&limit=0", NULL, NULL,
				      NULL, 400),
			  "invalid_argument", "field", "limit");
}

/* ---- bad input ------------------------------------------------------------------------ */

static void test_bad_input(void **state)
{
	fx *x = *state;
	static const char *const no_words[] = { "",	 "q=",	 "q=+++", "q=%22", "q=*",
						"q=-",	 "q=:",	 "q=(((", "q=%22%2A%3A-()^" };
	for (size_t i = 0; i < sizeof(no_words) / sizeof(no_words[0]); i++)
		efix_assert_error(search(x, no_words[i], 400), "invalid_argument", "field", "q");
	/* 10 KB */
	char *big = malloc(12000);
	assert_non_null(big);
	strcpy(big, "q=");
	for (int i = 0; i < 10240; i++)
		big[2 + i] = (char)('a' + i % 26);
	big[2 + 10240] = '\0';
	efix_assert_error(search(x, big, 400), "invalid_argument", "field", "q");
	free(big);
	efix_assert_error(search(x, "q=%ff%fe", 400), "invalid_argument", "field", "q");
	char many[512] = "q=";
	for (int i = 0; i < 40; i++)
		strcat(many, "ab+");
	efix_assert_error(search(x, many, 400), "invalid_argument", "field", "q");
	efix_assert_error(search(x, "q=knife&limit=0", 400), "invalid_argument", "field", "limit");
	efix_assert_error(search(x, "q=knife&limit=101", 400), "invalid_argument", "field", "limit");
	efix_assert_error(search(x, "q=knife&min_price=-1", 400), "invalid_argument", "field",
			  "min_price");
	efix_assert_error(search(x, "q=knife&min_price=5&max_price=4", 400), "invalid_argument",
			  "field", "min_price");
	efix_assert_error(search(x, "q=knife&category=Kitchen", 400), "invalid_argument", "field",
			  "category");

	/* FTS5 syntax is just text: words in, words matched */
	static const char *const kn[] = { "KN-3", "KN-1", "KN-2" };
	static const char *const as_knife[] = { "q=%22knife%22", "q=knife*", "q=knife%22",
						"q=%22knife",	 "q=(knife)", "q=knife:",
						"q=-knife",	 "q=knife^",  "q=%2Bknife" };
	for (size_t i = 0; i < sizeof(as_knife) / sizeof(as_knife[0]); i++)
		expect_skus(x, as_knife[i], kn, 3);
	/* operators are words too: no OR, no NOT, no NEAR, no column filter */
	static const char *const zero[] = {
		"q=knife+OR+speaker",	     "q=knife%22+OR+%22speaker", "q=NEAR(knife+speaker)",
		"q=knife+NOT+chef+",	     "q=description%3Aknife+",	 "q=%22)+OR+1%3D1+--",
		"q=knife+AND+speaker",	     "q=name%3Aspeaker+knife",	 "q=knife+-speaker",
		"q=%7Bname%7D%3Aknife+",
	};
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
		json_t *v = search(x, zero[i], 200);
		if (total_of(v) != 0)
			fail_msg("%s matched %lld", zero[i], (long long)total_of(v));
		json_decref(v);
	}
	json_t *v = search(x, "q=NEAR(", 200);
	json_decref(v);
	/* UTF-8 words are words */
	v = search(x, "q=caf%C3%A9+cr%C3%A8me", 200);
	assert_int_equal(total_of(v), 0);
	json_decref(v);
	/* the admin routes are for admins */
	efix_assert_error(efix_expect(x->srch, "POST", "/v1/search/_reindex", NULL, NULL, NULL, 401),
			  "unauthenticated", NULL, NULL);
	efix_assert_error(efix_expect(x->srch, "GET", "/v1/search/_status", NULL, NULL, NULL, 401),
			  "unauthenticated", NULL, NULL);
	efix_assert_error(efix_expect(x->srch, "DELETE", "/v1/search", NULL, ADMIN, NULL, 405),
			  "method_not_allowed", NULL, NULL);
}

/* ---- events ------------------------------------------------------------------------------- */

static void test_apply_update_and_price(void **state)
{
	fx *x = *state;
	apply_ok(x, "{\"type\":\"product_updated\",\"sku\":\"GH-1\",\"version\":1764112255000100,"
		    "\"name\":\"Garden Hose Reel\",\"description\":\"Twenty metres of hose.\","
		    "\"category\":\"garden\",\"price_cents\":2900,\"currency\":\"USD\"}");
	static const char *const gh[] = { "GH-1" };
	expect_skus(x, "q=reel", gh, 1);
	/* an older event changes nothing */
	apply_ok(x, "{\"type\":\"product_updated\",\"sku\":\"GH-1\",\"version\":1764112255000050,"
		    "\"name\":\"Old Name\",\"category\":\"garden\",\"price_cents\":1}");
	expect_skus(x, "q=reel", gh, 1);
	expect_skus(x, "q=old+name+", NULL, 0);
	/* a price change is seen by the price filter */
	expect_skus(x, "q=hose&min_price=9000", NULL, 0);
	apply_ok(x, "{\"type\":\"product_price_changed\",\"sku\":\"GH-1\",\"version\":1764112255000200,"
		    "\"name\":\"Garden Hose Reel\",\"description\":\"Twenty metres of hose.\","
		    "\"category\":\"garden\",\"price_cents\":9900,\"currency\":\"USD\","
		    "\"previous_price_cents\":2900,\"previous_currency\":\"USD\"}");
	expect_skus(x, "q=hose&min_price=9000", gh, 1);
	/* a move to another category moves the facet */
	apply_ok(x, "{\"type\":\"product_updated\",\"sku\":\"GH-1\",\"version\":1764112255000300,"
		    "\"name\":\"Garden Hose Reel\",\"category\":\"outdoor\",\"price_cents\":9900}");
	json_t *v = search(x, "q=hose", 200);
	assert_int_equal(facet(v, "outdoor"), 1);
	assert_int_equal(facet(v, "garden"), 0);
	json_decref(v);
	expect_skus(x, "q=hose&category=outdoor", gh, 1);
	expect_skus(x, "q=twenty", NULL, 0); /* the description went with the update */
	/* a new product */
	apply_ok(x, "{\"type\":\"product_created\",\"sku\":\"NEW-1\",\"version\":1,"
		    "\"name\":\"Watering Can\",\"category\":\"garden\",\"price_cents\":1200}");
	static const char *const wc[] = { "NEW-1" };
	expect_skus(x, "q=watering", wc, 1);
	/* types search has no use for, and garbage */
	apply_ok(x, "{\"type\":\"stock_changed\",\"sku\":\"GH-1\"}");
	const char *bad[] = { "not json", "{}", "{\"type\":\"product_updated\",\"sku\":\"X\"}",
			      "{\"type\":\"product_deleted\",\"sku\":\"X\"}",
			      "{\"type\":\"product_created\",\"sku\":\"X\",\"version\":1,\"name\":\"n\","
			      "\"category\":\"c\",\"price_cents\":-5}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(search_apply(x->srch->eng, bad[i], strlen(bad[i])), ERR_INVALID);
	assert_int_equal(search_apply(x->srch->eng, NULL, 0), ERR_INVALID);
}

static void test_apply_delete(void **state)
{
	fx *x = *state;
	apply_ok(x, "{\"type\":\"product_deleted\",\"sku\":\"GH-1\",\"version\":1764112255000500}");
	expect_skus(x, "q=hose", NULL, 0);
	json_t *v = search(x, "q=garden", 200);
	assert_int_equal(facet(v, "garden"), 0);
	json_decref(v);
	json_t *st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL - 1);
	json_decref(st);
	/* an update older than the delete does not bring it back; twice the
	 * same delete is one delete */
	apply_ok(x, "{\"type\":\"product_updated\",\"sku\":\"GH-1\",\"version\":1764112255000400,"
		    "\"name\":\"Garden Hose\",\"category\":\"garden\",\"price_cents\":2900}");
	apply_ok(x, "{\"type\":\"product_deleted\",\"sku\":\"GH-1\",\"version\":1764112255000500}");
	expect_skus(x, "q=hose", NULL, 0);
	/* a newer create does */
	apply_ok(x, "{\"type\":\"product_created\",\"sku\":\"GH-1\",\"version\":1764112255000600,"
		    "\"name\":\"Garden Hose\",\"category\":\"garden\",\"price_cents\":2900}");
	static const char *const gh[] = { "GH-1" };
	expect_skus(x, "q=hose", gh, 1);
	/* a word gone from every product leaves the typo vocabulary */
	apply_ok(x, "{\"type\":\"product_deleted\",\"sku\":\"SK-1\",\"version\":1764112255000700}");
	expect_skus(x, "q=skilet", NULL, 0);
}

/* The catalog's own writes, delivered from its outbox as the bus will. */
static void test_catalog_events_through_outbox(void **state)
{
	fx *x = *state;
	efix *c = x->cat;
	int status = 0;
	/* deliver what the loader wrote: already in the index, changes nothing */
	x->delivered = 0;
	assert_int_equal(deliver(x), (int)NALL);
	json_t *st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	json_decref(st);

	clock_advance(c->clock, 1000000);
	json_decref(efix_call(c, "PUT", "/v1/products/KN-2", NULL, ADMIN,
			      "{\"name\":\"Whetstone\",\"description\":\"Keeps every blade sharp.\","
			      "\"category\":\"kitchen\",\"price_cents\":1900}",
			      &status));
	assert_int_equal(status, 200);
	json_decref(efix_call(c, "DELETE", "/v1/products/KN-3", NULL, ADMIN, NULL, &status));
	assert_int_equal(status, 200);
	json_decref(efix_call(c, "POST", "/v1/products", NULL, ADMIN,
			      "{\"sku\":\"KN-4\",\"name\":\"Bread Knife\",\"category\":\"kitchen\","
			      "\"price_cents\":2500}",
			      &status));
	assert_int_equal(status, 201);
	/* not delivered yet: the index lags */
	static const char *const before[] = { "KN-3", "KN-1", "KN-2" };
	expect_skus(x, "q=knife", before, 3);
	assert_int_equal(deliver(x), 3);
	static const char *const after[] = { "KN-1", "KN-4" };
	expect_skus(x, "q=knife", after, 2);
	static const char *const ws[] = { "KN-2" };
	expect_skus(x, "q=whetstone", ws, 1);
	/* delivered twice (a consumer restarted before its offset): the same */
	x->delivered = 0;
	deliver(x);
	expect_skus(x, "q=knife", after, 2);
	st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	json_decref(st);
}

/* ---- rebuilds ------------------------------------------------------------------------------ */

static void unlink_index(efix *f)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/search.db%s", f->dir, suffix[i]);
		unlink(path);
	}
}

static void test_reindex_after_index_file_deleted(void **state)
{
	fx *x = *state;
	efix_close_store(x->srch);
	unlink_index(x->srch);
	efix_open_store(x->srch);
	search_engine_new(x);
	json_t *st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), 0);
	assert_true(json_is_false(json_object_get(st, "built")));
	assert_string_equal(reindex_state(st), "COPYING");
	json_decref(st);
	build(x);
	static const char *const bt[] = { "SP-1", "SP-2", "SP-3" };
	expect_skus(x, "q=bluetooth+speaker", bt, 3);
	st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	json_decref(st);
}

static void test_reindex_removes_what_the_catalog_lost(void **state)
{
	fx *x = *state;
	int status = 0;
	/* a product deleted and one changed while no event reached the index */
	json_decref(efix_call(x->cat, "DELETE", "/v1/products/SK-1", NULL, ADMIN, NULL, &status));
	assert_int_equal(status, 200);
	clock_advance(x->cat->clock, 1000);
	json_decref(efix_call(x->cat, "PUT", "/v1/products/GH-1", NULL, ADMIN,
			      "{\"name\":\"Garden Hose Pro\",\"category\":\"garden\",\"price_cents\":1}",
			      &status));
	assert_int_equal(status, 200);
	static const char *const sk[] = { "SK-1" };
	expect_skus(x, "q=skillet", sk, 1);
	json_t *v = efix_expect(x->srch, "POST", "/v1/search/_reindex", NULL, ADMIN, NULL, 202);
	assert_int_equal(json_integer_value(json_object_get(v, "generation")), 2);
	assert_string_equal(reindex_state(v), "COPYING");
	json_decref(v);
	/* asking again while it runs changes nothing */
	v = efix_expect(x->srch, "POST", "/v1/search/_reindex", NULL, ADMIN, NULL, 202);
	assert_int_equal(json_integer_value(json_object_get(v, "generation")), 2);
	json_decref(v);
	/* searches are answered during the rebuild */
	expect_skus(x, "q=skillet", sk, 1);
	build(x);
	expect_skus(x, "q=skillet", NULL, 0);
	static const char *const gh[] = { "GH-1" };
	expect_skus(x, "q=pro", gh, 1);
	json_t *st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL - 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "reindex"), "removed")),
			 1);
	json_decref(st);
}

static void test_reindex_waits_for_the_catalog(void **state)
{
	fx *x = *state;
	x->fail_calls = 1;
	json_decref(efix_expect(x->srch, "POST", "/v1/search/_reindex", NULL, ADMIN, NULL, 202));
	clock_advance(x->srch->clock, 100000);
	x->srch->def->tick(x->srch->eng, clock_now(x->srch->clock));
	json_t *st = status_of(x);
	assert_string_equal(reindex_state(st), "WAITING");
	const char *why = json_string_value(json_object_get(json_object_get(st, "reindex"),
							    "last_error"));
	assert_non_null(why);
	assert_non_null(strstr(why, "unreachable"));
	json_decref(st);
	int calls = x->calls;
	/* no retry before the backoff has passed */
	x->srch->def->tick(x->srch->eng, clock_now(x->srch->clock));
	assert_int_equal(x->calls, calls);
	x->fail_calls = 0;
	build(x);
	st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "generation")), 2);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	json_decref(st);
}

/* A restart in the middle of a rebuild carries on from the page it
 * reached. */
static void test_reindex_resumes_after_restart(void **state)
{
	fx *x = *state;
	assert_int_equal(config_set(x->srch->config, "search.reindex_page_size", "4"), 0);
	assert_int_equal(config_set(x->srch->config, "search.reindex_pages_per_tick", "1"), 0);
	efix_close_store(x->srch);
	unlink_index(x->srch);
	efix_open_store(x->srch);
	search_engine_new(x);
	for (int i = 0; i < 3; i++) {
		clock_advance(x->srch->clock, 100000);
		x->srch->def->tick(x->srch->eng, clock_now(x->srch->clock));
	}
	json_t *st = status_of(x);
	int64_t docs = json_integer_value(json_object_get(st, "documents"));
	assert_int_equal(docs, 12);
	json_decref(st);
	efix_close_store(x->srch);
	efix_open_store(x->srch);
	int calls = x->calls;
	search_engine_new(x);
	st = status_of(x);
	assert_string_equal(reindex_state(st), "COPYING");
	json_decref(st);
	build(x);
	/* (NALL - 12) / 4 pages rounded up, and the last empty answer */
	assert_true(x->calls - calls <= (int)(NALL - 12 + 3) / 4 + 1);
	st = status_of(x);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	json_decref(st);
}

/* A restart while the rebuild was sweeping (the copy done, stale entries
 * being removed) carries on sweeping; the engine starts. */
static void test_reindex_resumes_while_sweeping(void **state)
{
	fx *x = *state;
	build(x);
	json_t *st = status_of(x);
	int64_t gen = json_integer_value(json_object_get(st, "generation"));
	json_decref(st);
	/* the process stopped in the sweep: the index says so */
	int err = 0;
	store_stmt *q = store_prepare(x->srch->store,
				      "UPDATE meta SET v = ? WHERE k = 'reindex'", &err);
	assert_non_null(q);
	store_bind_int(q, 1, 3); /* REINDEX_SWEEPING */
	assert_true(store_step(q) >= 0);
	store_reset(q);
	x->srch->def->destroy(x->srch->eng);
	x->srch->eng = NULL;
	search_engine_new(x);
	assert_non_null(x->srch->eng);
	st = status_of(x);
	assert_string_equal(reindex_state(st), "SWEEPING");
	json_decref(st);
	build(x);
	st = status_of(x);
	assert_string_equal(reindex_state(st), "IDLE");
	assert_int_equal(json_integer_value(json_object_get(st, "generation")), gen);
	assert_int_equal(json_integer_value(json_object_get(st, "documents")), NALL);
	json_decref(st);
}

/* Counted from the lists: two words, a price filter, and lists that
 * writes changed (read again by the next tick, the index used meanwhile). */
static void test_posting_lists(void **state)
{
	fx *x = *state;
	metrics *m = x->srch->ctx.metrics;
	json_t *v = search(x, "q=speaker+cable", 200);
	assert_int_equal(total_of(v), NCABLES);
	json_decref(v);
	assert_true(metrics_counter_value(m, "search_posting_lists_read_total", "") >= 2);
	uint64_t listed = metrics_counter_value(m, "search_counted_from_lists_total", "");
	assert_true(listed >= 1);
	/* a cable loses "speaker": the lists of its words change */
	apply_ok(x, "{\"type\":\"product_updated\",\"sku\":\"CB-05\",\"version\":"
		    "1864112255000000,\"name\":\"Cable 5\",\"description\":\"Copper cable.\","
		    "\"category\":\"electronics\",\"price_cents\":500}");
	/* not from the stale lists: from the index until the tick */
	json_t *once = efix_expect(x->srch, "GET", "/v1/search?q=speaker+cable", NULL, NULL, NULL,
				   200);
	assert_int_equal(total_of(once), NCABLES - 1);
	assert_int_equal(metrics_counter_value(m, "search_counted_from_lists_total", ""), listed);
	json_decref(once);
	v = search(x, "q=speaker+cable", 200);
	assert_int_equal(total_of(v), NCABLES - 1);
	json_decref(v);
	assert_true(metrics_counter_value(m, "search_counted_from_lists_total", "") > listed);
	/* a move to another price bucket changes the ids, not the counts */
	apply_ok(x, "{\"type\":\"product_price_changed\",\"sku\":\"CB-07\",\"version\":"
		    "1864112255000000,\"name\":\"Speaker Cable 7\",\"description\":\"Copper "
		    "cable for speakers.\",\"category\":\"electronics\",\"price_cents\":250000}");
	v = search(x, "q=speaker+cable&min_price=200000", 200);
	assert_int_equal(total_of(v), 1);
	assert_string_equal(sku_at(v, 0), "CB-07");
	json_decref(v);
	v = search(x, "q=cable&max_price=800", 200);
	assert_int_equal(total_of(v), 7); /* CB-01..08 but CB-07 */
	json_decref(v);
	/* bounds inside a price bucket (at 20,000 cents they are 19 wide):
	 * every bound around two products in one bucket, counted exactly */
	apply_ok(x, "{\"type\":\"product_created\",\"sku\":\"ED-1\",\"version\":1,"
		    "\"name\":\"Edge Lamp\",\"category\":\"home\",\"price_cents\":20003}");
	apply_ok(x, "{\"type\":\"product_created\",\"sku\":\"ED-2\",\"version\":1,"
		    "\"name\":\"Edge Lamp Pro\",\"category\":\"home\",\"price_cents\":20011}");
	for (int lo = 19995; lo <= 20015; lo += 2)
		for (int hi = lo; hi <= 20020; hi += 3) {
			char q[128];
			snprintf(q, sizeof(q), "q=edge+lamp&min_price=%d&max_price=%d", lo, hi);
			v = search(x, q, 200);
			int want = (lo <= 20003 && 20003 <= hi) + (lo <= 20011 && 20011 <= hi);
			if (total_of(v) != want)
				fail_msg("%s: total %lld, expected %d", q, (long long)total_of(v), want);
			json_decref(v);
			snprintf(q, sizeof(q), "q=edge&min_price=%d&max_price=%d", lo, hi);
			v = search(x, q, 200);
			if (total_of(v) != want || facet(v, "home") != want)
				fail_msg("%s: total %lld, expected %d", q, (long long)total_of(v), want);
			json_decref(v);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_built_from_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relevance_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filters_and_facets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_price_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rank_window, setup_window, teardown),
		cmocka_unit_test_setup_teardown(test_typos, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefixes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_update_and_price, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catalog_events_through_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reindex_after_index_file_deleted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reindex_removes_what_the_catalog_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reindex_waits_for_the_catalog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reindex_resumes_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reindex_resumes_while_sweeping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relevance_order, setup_lists, teardown),
		cmocka_unit_test_setup_teardown(test_filters_and_facets, setup_lists, teardown),
		cmocka_unit_test_setup_teardown(test_price_ranges, setup_lists, teardown),
		cmocka_unit_test_setup_teardown(test_pagination, setup_lists, teardown),
		cmocka_unit_test_setup_teardown(test_apply_update_and_price, setup_lists, teardown),
		cmocka_unit_test_setup_teardown(test_apply_delete, setup_lists, teardown),
		cmocka_unit_test_setup_teardown(test_posting_lists, setup_lists, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
