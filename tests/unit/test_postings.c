/* Tests for services/postings: lists by key and revision, a list held
 * while the cache replaces or drops it, the bound on ids, galloping seeks
 * checked against a linear search, and several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/postings.h"

/* n ids first, first + step, ... (malloc'd) */
static int64_t *ids_of(size_t n, int64_t first, int64_t step)
{
	int64_t *v = malloc((n ? n : 1) * sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = first + (int64_t)i * step;
	return v;
}

static void test_get_by_revision(void **state)
{
	(void)state;
	postings *pc = postings_new(1000);
	assert_non_null(pc);
	assert_null(postings_get(pc, "lamp", 1));
	postings_list *l = postings_put(pc, "lamp", 1, ids_of(10, 5, 3), 10);
	assert_non_null(l);
	assert_int_equal(l->n, 10);
	assert_int_equal(l->ids[9], 32);
	postings_release(pc, l);
	l = postings_get(pc, "lamp", 1);
	assert_non_null(l);
	assert_int_equal(l->n, 10);
	postings_release(pc, l);
	/* another revision of the word: not handed out */
	assert_null(postings_get(pc, "lamp", 2));
	assert_null(postings_get(pc, "lam", 1));
	size_t lists = 0, ids = 0;
	postings_stats(pc, &lists, &ids);
	assert_int_equal(lists, 1);
	assert_int_equal(ids, 10);
	postings_free(pc);
}

static void test_newer_replaces_older_stays_private(void **state)
{
	(void)state;
	postings *pc = postings_new(1000);
	postings_list *old = postings_put(pc, "rug", 3, ids_of(4, 1, 1), 4);
	/* held while a newer revision replaces it: still readable */
	postings_list *nw = postings_put(pc, "rug", 5, ids_of(2, 100, 1), 2);
	assert_int_equal(old->n, 4);
	assert_int_equal(old->ids[3], 4);
	postings_release(pc, old);
	assert_null(postings_get(pc, "rug", 3));
	postings_list *got = postings_get(pc, "rug", 5);
	assert_ptr_equal(got, nw);
	postings_release(pc, got);
	postings_release(pc, nw);
	/* a reader of an older snapshot reads an older revision: its list is
	 * its own, the cache keeps the newer one */
	postings_list *stale = postings_put(pc, "rug", 4, ids_of(3, 7, 1), 3);
	assert_non_null(stale);
	assert_int_equal(stale->n, 3);
	postings_release(pc, stale);
	got = postings_get(pc, "rug", 5);
	assert_non_null(got);
	assert_int_equal(got->ids[0], 100);
	postings_release(pc, got);
	size_t lists = 0, ids = 0;
	postings_stats(pc, &lists, &ids);
	assert_int_equal(lists, 1);
	assert_int_equal(ids, 2);
	postings_free(pc);
}

static void test_bounded(void **state)
{
	(void)state;
	postings *pc = postings_new(100);
	postings_release(pc, postings_put(pc, "a", 1, ids_of(40, 0, 1), 40));
	postings_release(pc, postings_put(pc, "b", 1, ids_of(40, 0, 1), 40));
	postings_list *a = postings_get(pc, "a", 1); /* a is now the most recent */
	postings_release(pc, a);
	postings_release(pc, postings_put(pc, "c", 1, ids_of(40, 0, 1), 40));
	/* b, least recently used, made room */
	assert_null(postings_get(pc, "b", 1));
	a = postings_get(pc, "a", 1);
	assert_non_null(a);
	/* a is held: d cannot push it out; c goes */
	postings_list *d = postings_put(pc, "d", 1, ids_of(50, 0, 1), 50);
	assert_non_null(d);
	assert_null(postings_get(pc, "c", 1));
	postings_list *again = postings_get(pc, "d", 1);
	assert_non_null(again);
	postings_release(pc, again);
	size_t lists = 0, ids = 0;
	postings_stats(pc, &lists, &ids);
	assert_int_equal(lists, 2);
	assert_int_equal(ids, 90);
	/* larger than the bound: handed out, not cached */
	postings_list *big = postings_put(pc, "big", 1, ids_of(101, 0, 1), 101);
	assert_non_null(big);
	assert_int_equal(big->n, 101);
	assert_null(postings_get(pc, "big", 1));
	postings_release(pc, big);
	postings_release(pc, a);
	postings_release(pc, d);
	/* a cache of nothing hands lists out all the same */
	postings *none = postings_new(0);
	postings_list *l = postings_put(none, "x", 1, ids_of(3, 0, 1), 3);
	assert_non_null(l);
	assert_null(postings_get(none, "x", 1));
	postings_release(none, l);
	postings_free(none);
	postings_free(pc);
}

static size_t linear_seek(const postings_list *l, size_t from, int64_t v)
{
	while (from < l->n && l->ids[from] < v)
		from++;
	return from;
}

static void test_seek(void **state)
{
	(void)state;
	postings *pc = postings_new(100000);
	/* uneven gaps */
	size_t n = 5000;
	int64_t *v = malloc(n * sizeof(*v));
	int64_t x = 10;
	unsigned r = 12345;
	for (size_t i = 0; i < n; i++) {
		r = r * 1103515245u + 12345u;
		x += 1 + (int64_t)((r >> 16) % 97);
		v[i] = x;
	}
	postings_list *l = postings_put(pc, "w", 1, v, n);
	for (int64_t probe = 0; probe < x + 50; probe += 7) {
		size_t from = (size_t)(probe % 4000);
		assert_int_equal(postings_seek(l, from, probe), linear_seek(l, from, probe));
		assert_int_equal(postings_seek(l, 0, probe), linear_seek(l, 0, probe));
	}
	/* a walk through ascending values */
	size_t pos = 0;
	for (int64_t probe = 0; probe < x + 50; probe += 13) {
		size_t want = linear_seek(l, pos, probe);
		pos = postings_seek(l, pos, probe);
		assert_int_equal(pos, want);
	}
	assert_int_equal(postings_seek(l, n, 0), n);
	postings_release(pc, l);
	postings_list *empty = postings_put(pc, "e", 1, ids_of(0, 0, 0), 0);
	assert_int_equal(postings_seek(empty, 0, 5), 0);
	postings_release(pc, empty);
	postings_free(pc);
}

static postings *shared;

static void *churn(void *arg)
{
	int id = (int)(intptr_t)arg;
	char key[8];
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", (i * 7 + id) % 13);
		int64_t rev = i % 5;
		postings_list *l = postings_get(shared, key, rev);
		if (!l)
			l = postings_put(shared, key, rev, ids_of(20, rev, 1), 20);
		assert_non_null(l);
		/* what was handed out is the list of that revision */
		assert_int_equal(l->ids[0], rev);
		assert_int_equal(l->ids[19], rev + 19);
		postings_release(shared, l);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	shared = postings_new(100); /* room for 5 lists of the 13: always dropping */
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	size_t lists = 0, ids = 0;
	postings_stats(shared, &lists, &ids);
	assert_true(ids <= 100);
	assert_int_equal(ids, lists * 20);
	postings_free(shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_by_revision),
		cmocka_unit_test(test_newer_replaces_older_stays_private),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_seek),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
