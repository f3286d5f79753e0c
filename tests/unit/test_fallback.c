/* Tests for resil/fallback: keeping and serving answers, replacing them,
 * the bounds on entries, bytes and age, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/msg.h"
#include "resil/fallback.h"

#define T0 1764112255000000LL
#define SEC 1000000LL

static void expect(fallback *f, const char *key, int64_t now, const char *body, int64_t age)
{
	msg_resp r;
	msg_resp_init(&r);
	int64_t got_age = -1;
	assert_int_equal(fallback_get(f, key, now, &r, &got_age), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, strlen(body));
	assert_memory_equal(r.body, body, r.body_len);
	assert_int_equal(got_age, age);
	msg_resp_clear(&r);
}

static int missing(fallback *f, const char *key, int64_t now)
{
	msg_resp r;
	msg_resp_init(&r);
	int rc = fallback_get(f, key, now, &r, NULL);
	assert_null(r.body);
	msg_resp_clear(&r);
	return rc == ERR_NOT_FOUND;
}

static void test_put_get_replace(void **state)
{
	fallback *f = fallback_new(10, 1 << 20, 3600 * SEC);
	assert_non_null(f);
	assert_true(missing(f, "/v1/products", T0));
	assert_int_equal(fallback_put(f, "/v1/products", "application/json", "[1]", 3, T0), 0);
	msg_resp r;
	msg_resp_init(&r);
	assert_int_equal(fallback_get(f, "/v1/products", T0 + 5 * SEC, &r, NULL), 0);
	assert_string_equal(r.content_type, "application/json");
	msg_resp_clear(&r);
	expect(f, "/v1/products", T0 + 7 * SEC, "[1]", 7 * SEC);
	/* The key is the whole target: another query is another answer. */
	assert_true(missing(f, "/v1/products?page_size=2", T0));
	assert_int_equal(fallback_put(f, "/v1/products", NULL, "[1,2]", 5, T0 + 10 * SEC), 0);
	expect(f, "/v1/products", T0 + 10 * SEC, "[1,2]", 0);
	/* An empty body is an answer too. */
	assert_int_equal(fallback_put(f, "/empty", NULL, NULL, 0, T0), 0);
	expect(f, "/empty", T0, "", 0);
	fallback_stats st;
	fallback_snapshot(f, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.stored, 3);
	assert_int_equal(st.hits, 4);
	assert_int_equal(st.misses, 2);
	assert_int_equal(fallback_put(f, NULL, NULL, "x", 1, T0), ERR_INVALID);
	assert_int_equal(fallback_put(f, "/k", NULL, NULL, 3, T0), ERR_INVALID);
	fallback_free(f);
	fallback_free(NULL);
	assert_null(fallback_new(0, 1 << 20, SEC));
	assert_null(fallback_new(1, 100, SEC));
	assert_null(fallback_new(1, 1 << 20, 0));
}

static void test_bounds(void **state)
{
	/* Entries: the one stored longest ago goes first. */
	fallback *f = fallback_new(3, 1 << 20, 3600 * SEC);
	char key[32];
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "/p/%d", i);
		assert_int_equal(fallback_put(f, key, NULL, "body", 4, T0 + i), 0);
	}
	assert_true(missing(f, "/p/0", T0));
	assert_true(missing(f, "/p/1", T0));
	expect(f, "/p/2", T0 + 2, "body", 0);
	expect(f, "/p/4", T0 + 4, "body", 0);
	/* Storing again makes an answer the newest. */
	assert_int_equal(fallback_put(f, "/p/2", NULL, "again", 5, T0 + 10), 0);
	assert_int_equal(fallback_put(f, "/p/5", NULL, "body", 4, T0 + 11), 0);
	assert_true(missing(f, "/p/3", T0));
	expect(f, "/p/2", T0 + 10, "again", 0);
	fallback_stats st;
	fallback_snapshot(f, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.evicted, 3);
	fallback_free(f);

	/* Bytes: 4 KiB in all, an answer at most a quarter of it. */
	f = fallback_new(1000, 4096, 3600 * SEC);
	char body[1200];
	memset(body, 'x', sizeof(body));
	assert_int_equal(fallback_put(f, "/big", NULL, body, sizeof(body), T0), ERR_TOO_LARGE);
	assert_true(missing(f, "/big", T0));
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "/m/%d", i);
		assert_int_equal(fallback_put(f, key, NULL, body, 800, T0 + i), 0);
		fallback_snapshot(f, &st);
		assert_true(st.bytes <= 4096);
	}
	assert_true(st.entries >= 3 && st.entries <= 5);
	/* A too large answer also drops the older one kept under its key. */
	assert_int_equal(fallback_put(f, "/m/19", NULL, body, sizeof(body), T0), ERR_TOO_LARGE);
	assert_true(missing(f, "/m/19", T0));
	/* Keys past the bound are not kept. */
	char longkey[FALLBACK_MAX_KEY + 10];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	fallback_free(f);
	f = fallback_new(10, 1 << 20, 3600 * SEC);
	assert_int_equal(fallback_put(f, longkey, NULL, "b", 1, T0), ERR_TOO_LARGE);
	fallback_free(f);
}

static void test_age(void **state)
{
	fallback *f = fallback_new(10, 1 << 20, 60 * SEC);
	assert_int_equal(fallback_put(f, "/a", NULL, "a", 1, T0), 0);
	expect(f, "/a", T0 + 60 * SEC - 1, "a", 60 * SEC - 1);
	assert_true(missing(f, "/a", T0 + 60 * SEC));
	/* ...and it is gone for good, not only hidden. */
	fallback_stats st;
	fallback_snapshot(f, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.evicted, 1);
	assert_true(missing(f, "/a", T0));
	fallback_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_age),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
