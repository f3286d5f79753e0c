/* Tests for tui/table (the rows a console view lists) and the sparklines
 * of tui/loadrun: filtering on any cell, sorting by each column in turn
 * (numbers largest first, text in byte order, then back to the natural
 * order), the cursor and the tags following their rows across a rebuild
 * in another order, the rows an action applies to, and sparklines scaled
 * to the largest value, right-aligned, in UTF-8 blocks or ASCII. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/loadrun.h"
#include "tui/table.h"

static const table_col cols[] = { { "NAME", 10, 0 }, { "STATE", 10, 0 }, { "CALLS", 6, 1 } };

/* Adds the breakers' rows in the given order of names. */
static void fill(table *t, const char *const *names, size_t n)
{
	static const struct {
		const char *name, *state;
		int calls;
	} data[] = { { "catalog", "CLOSED", 20 },
		     { "payment", "FORCED_OPEN", 0 },
		     { "cart", "OPEN", 7 },
		     { "inventory", "CLOSED", 35 } };
	table_clear(t);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(data) / sizeof(data[0]); k++)
			if (strcmp(names[i], data[k].name) == 0) {
				table_row *r = table_add(t, data[k].name, 0);
				assert_non_null(r);
				table_set(r, 0, 0, "%s", data[k].name);
				table_set(r, 1, 0, "%s", data[k].state);
				table_set(r, 2, data[k].calls, "%d", data[k].calls);
			}
	table_apply(t);
}

static const char *shown(const table *t, size_t i)
{
	const table_row *r = table_shown(t, i);
	return r ? r->key : "(none)";
}

static const char *const ORDER1[] = { "catalog", "payment", "cart", "inventory" };
static const char *const ORDER2[] = { "inventory", "cart", "payment", "catalog" };

static void test_filter_and_sort(void **unused)
{
	table t;
	table_init(&t, cols, 3);
	fill(&t, ORDER1, 4);
	assert_int_equal(t.nvis, 4);
	assert_string_equal(shown(&t, 0), "catalog");

	table_set_filter(&t, "OPEN"); /* OPEN and FORCED_OPEN */
	assert_int_equal(t.nvis, 2);
	assert_string_equal(shown(&t, 0), "payment");
	assert_string_equal(shown(&t, 1), "cart");
	table_set_filter(&t, "inv");
	assert_int_equal(t.nvis, 1);
	table_set_filter(&t, "nothing like it");
	assert_int_equal(t.nvis, 0);
	assert_null(table_current(&t));
	table_set_filter(&t, "");
	assert_int_equal(t.nvis, 4);

	table_sort_next(&t); /* NAME */
	assert_int_equal(t.sort_col, 0);
	assert_string_equal(shown(&t, 0), "cart");
	assert_string_equal(shown(&t, 3), "payment");
	table_sort_next(&t); /* STATE: text, ties in the natural order */
	assert_string_equal(shown(&t, 0), "catalog");
	assert_string_equal(shown(&t, 1), "inventory");
	assert_string_equal(shown(&t, 2), "payment");
	assert_string_equal(shown(&t, 3), "cart");
	table_sort_next(&t); /* CALLS: largest first */
	assert_string_equal(shown(&t, 0), "inventory");
	assert_string_equal(shown(&t, 1), "catalog");
	assert_string_equal(shown(&t, 2), "cart");
	assert_string_equal(shown(&t, 3), "payment");
	table_sort_next(&t); /* back to the natural order */
	assert_int_equal(t.sort_col, -1);
	assert_string_equal(shown(&t, 0), "catalog");
	assert_string_equal(shown(&t, 3), "inventory");

	/* The sort and the filter survive a rebuild. */
	table_sort_next(&t);
	table_set_filter(&t, "a");
	fill(&t, ORDER2, 4);
	assert_int_equal(t.sort_col, 0);
	assert_int_equal(t.nvis, 3); /* catalog, payment, cart: not "inventory" */
	assert_string_equal(shown(&t, 0), "cart");
	table_free(&t);
}

static void test_cursor_and_tags(void **unused)
{
	table t;
	table_init(&t, cols, 3);
	fill(&t, ORDER1, 4);
	assert_string_equal(table_current(&t)->key, "catalog");
	table_move(&t, 2, 10);
	assert_string_equal(table_current(&t)->key, "cart");
	table_move(&t, 100, 10); /* clamped */
	assert_string_equal(table_current(&t)->key, "inventory");
	table_move(&t, -100, 10);
	assert_string_equal(table_current(&t)->key, "catalog");
	table_move(&t, 2, 10);

	/* The refresh lists the rows in another order: the cursor stays on
	 * its row, not on its position. */
	fill(&t, ORDER2, 4);
	assert_string_equal(table_current(&t)->key, "cart");
	assert_int_equal(t.cursor, 1);

	/* Nothing tagged: an action applies to the row under the cursor. */
	const table_row *rs[8];
	assert_int_equal(table_targets(&t, rs, 8), 1);
	assert_string_equal(rs[0]->key, "cart");

	table_toggle_tag(&t); /* cart */
	table_move(&t, 1, 10);
	table_toggle_tag(&t); /* payment */
	table_move(&t, 1, 10);
	assert_true(table_is_tagged(&t, "cart") && table_is_tagged(&t, "payment"));
	assert_false(table_is_tagged(&t, "catalog"));
	fill(&t, ORDER1, 4);
	assert_true(table_is_tagged(&t, "cart") && table_is_tagged(&t, "payment"));
	assert_int_equal(table_targets(&t, rs, 8), 2);
	assert_string_equal(rs[0]->key, "payment"); /* in the order shown */
	assert_string_equal(rs[1]->key, "cart");

	/* A tagged row the filter hides is not acted on. */
	table_set_filter(&t, "FORCED");
	assert_int_equal(table_targets(&t, rs, 8), 1);
	assert_string_equal(rs[0]->key, "payment");
	table_set_filter(&t, "");

	/* Untag one; clear them all. */
	while (strcmp(table_current(&t)->key, "payment") != 0)
		table_move(&t, -1, 10);
	table_toggle_tag(&t);
	assert_false(table_is_tagged(&t, "payment"));
	assert_true(table_is_tagged(&t, "cart"));
	table_clear_tags(&t);
	assert_int_equal(t.ntags, 0);
	assert_int_equal(table_targets(&t, rs, 8), 1);

	/* A row that is gone: the cursor stays in range. */
	table_move(&t, 100, 10);
	static const char *const two[] = { "catalog", "payment" };
	fill(&t, two, 2);
	assert_non_null(table_current(&t));
	assert_true(t.cursor < t.nvis);
	fill(&t, NULL, 0);
	assert_null(table_current(&t));
	assert_int_equal(table_targets(&t, rs, 8), 0);
	table_free(&t);
}

static void test_page_scroll(void **unused)
{
	table t;
	table_init(&t, cols, 3);
	table_clear(&t);
	for (int i = 0; i < 50; i++) {
		char key[16];
		snprintf(key, sizeof(key), "row%02d", i);
		table_row *r = table_add(&t, key, 0);
		assert_non_null(r);
		table_set(r, 0, 0, "%s", key);
		table_set(r, 2, i, "%d", i);
	}
	table_apply(&t);
	table_move(&t, 15, 10); /* a page of 10 rows: the top follows */
	assert_int_equal(t.cursor, 15);
	assert_int_equal(t.top, 6);
	table_move(&t, -10, 10);
	assert_int_equal(t.cursor, 5);
	assert_int_equal(t.top, 5);
	table_free(&t);
}

static void test_sparklines(void **unused)
{
	char buf[256];
	double v[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	loadrun_sparkline(v, 8, 8, 0, buf, sizeof(buf));
	assert_string_equal(buf, " .:-=+*#");
	loadrun_sparkline(v, 8, 8, 1, buf, sizeof(buf));
	assert_string_equal(buf, "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588");
	/* Fewer values than cells: right-aligned, blanks before. */
	loadrun_sparkline(v + 6, 2, 5, 0, buf, sizeof(buf));
	assert_string_equal(buf, "   *#");
	/* More values than cells: the newest; scaled to the largest shown. */
	double w[] = { 1000, 1, 2 };
	loadrun_sparkline(w, 3, 2, 0, buf, sizeof(buf));
	assert_string_equal(buf, "=#");
	/* Nothing yet, zeros, a value that is not a number. */
	loadrun_sparkline(v, 0, 4, 0, buf, sizeof(buf));
	assert_string_equal(buf, "    ");
	double z[] = { 0, 0, NAN, 0 };
	loadrun_sparkline(z, 4, 4, 0, buf, sizeof(buf));
	assert_string_equal(buf, "    ");
	/* A small value still shows. */
	double s[] = { 1, 100 };
	loadrun_sparkline(s, 2, 2, 0, buf, sizeof(buf));
	assert_string_equal(buf, ".#");
	/* The buffer bounds the cells (UTF-8 blocks are three bytes). */
	loadrun_sparkline(v, 8, 8, 1, buf, 10);
	assert_int_equal(strlen(buf), 9);
	loadrun_sparkline(v, 8, 0, 1, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void test_scenario_list(void **unused)
{
	const char *data = getenv("ECOM_DATA");
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/scenarios", data && *data ? data : "data");
	char names[LOADRUN_MAX_SCENARIOS][64];
	int n = loadrun_list(dir, names, LOADRUN_MAX_SCENARIOS);
	assert_true(n >= 3);
	int steady = 0;
	for (int i = 0; i < n; i++) {
		steady |= strcmp(names[i], "steady") == 0;
		assert_null(strstr(names[i], ".scn"));
		if (i > 0)
			assert_true(strcmp(names[i - 1], names[i]) < 0);
	}
	assert_true(steady);
	assert_int_equal(loadrun_list("/nonexistent-dir", names, LOADRUN_MAX_SCENARIOS), 0);
	assert_int_equal(loadrun_list(dir, names, 2), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_and_sort), cmocka_unit_test(test_cursor_and_tags),
		cmocka_unit_test(test_page_scroll),	cmocka_unit_test(test_sparklines),
		cmocka_unit_test(test_scenario_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
