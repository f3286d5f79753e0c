/* Tests for ops/waterfall: rows in tree order under their parents whatever
 * the input order, indentation by depth, bars on one time axis, plain text
 * without colour (no escape sequences) and colour codes with it, spans
 * whose parent is missing shown as roots, and a parent cycle that cannot
 * hang the renderer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/trace.h"
#include "core/tracer.h"
#include "ops/traces.h"
#include "ops/waterfall.h"

static span sp(const trace_ctx *parent, trace_ctx *self, rng *r, const char *svc,
	       const char *name, int64_t start, int64_t dur, enum span_status st)
{
	span s;
	if (parent)
		trace_child(parent, self, r);
	else
		trace_new_root(self, r);
	span_begin(&s, parent, self, svc, name, SPAN_SERVER, start);
	s.dur_us = dur;
	s.status = st;
	return s;
}

static char *render(const span *s, size_t n, int color, size_t *rows)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	waterfall_opts o = { color, 100 };
	*rows = waterfall_render(f, s, n, &o);
	long len = ftell(f);
	assert_true(len >= 0);
	char *text = malloc((size_t)len + 1);
	assert_non_null(text);
	rewind(f);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	text[len] = '\0';
	fclose(f);
	return text;
}

/* The line of text that contains needle, as an index, or -1. */
static int line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	if (!p)
		return -1;
	int line = 0;
	for (const char *q = text; q < p; q++)
		line += *q == '\n';
	return line;
}

static void test_tree_order_and_bars(void **state)
{
	rng *r = rng_new(9);
	trace_ctx gw, order, res, pay, cap;
	span s[5];
	s[0] = sp(NULL, &gw, r, "gateway", "POST /v1/orders", 0, 40000, SPAN_OK);
	s[1] = sp(&gw, &order, r, "order", "checkout", 1000, 38000, SPAN_OK);
	s[2] = sp(&order, &res, r, "inventory", "reserve", 2000, 4000, SPAN_OK);
	s[3] = sp(&order, &pay, r, "payment", "authorize", 7000, 20000, SPAN_ERROR);
	s[4] = sp(&pay, &cap, r, "stripe-sim", "POST /v1/payment_intents", 8000, 10000, SPAN_OK);
	snprintf(s[3].status_msg, sizeof(s[3].status_msg), "card_declined");
	/* Shuffled input. */
	span in[5] = { s[4], s[2], s[0], s[3], s[1] };
	size_t rows;
	char *out = render(in, 5, 0, &rows);
	assert_int_equal(rows, 5);
	assert_int_equal(line_of(out, "gateway  POST /v1/orders"), 0);
	assert_int_equal(line_of(out, "  order  checkout"), 1);
	assert_int_equal(line_of(out, "    inventory  reserve"), 2);
	assert_int_equal(line_of(out, "    payment  authorize"), 3);
	assert_int_equal(line_of(out, "      stripe-sim  POST"), 4);
	assert_non_null(strstr(out, "error (card_declined)"));
	assert_null(strchr(out, '\033'));
	/* The root's bar fills the axis; the reservation's starts later and is short. */
	char *l0 = out, *l2 = out;
	for (int i = 0; i < 2; i++)
		l2 = strchr(l2, '\n') + 1;
	char *b0 = strchr(l0, '|'), *b2 = strchr(l2, '|');
	assert_int_equal(b0[1], '#');
	assert_int_equal(b2[1], ' ');
	int hashes0 = 0, hashes2 = 0;
	for (char *p = b0 + 1; *p != '|'; p++)
		hashes0 += *p == '#';
	for (char *p = b2 + 1; *p != '|'; p++)
		hashes2 += *p == '#';
	assert_true(hashes0 > 5 * hashes2);
	assert_true(hashes2 >= 1);
	free(out);

	out = render(in, 5, 1, &rows);
	assert_non_null(strstr(out, "\033[32mok"));
	assert_non_null(strstr(out, "\033[31merror"));
	free(out);
	rng_free(r);
}

static void test_orphans_and_cycles(void **state)
{
	rng *r = rng_new(2);
	trace_ctx a, b, lost;
	span s[3];
	s[0] = sp(NULL, &lost, r, "gateway", "gone", 0, 10, SPAN_OK);
	s[1] = sp(&lost, &a, r, "order", "orphan", 5, 10, SPAN_UNSET);
	s[2] = sp(&a, &b, r, "inventory", "child", 6, 2, SPAN_OK);
	/* Without the root, the orphan is a root and its child stays under it. */
	size_t rows;
	char *out = render(&s[1], 2, 0, &rows);
	assert_int_equal(rows, 2);
	assert_int_equal(line_of(out, "order  orphan"), 0);
	assert_int_equal(line_of(out, "  inventory  child"), 1);
	free(out);
	/* Two spans each other's parent: both still shown, once. */
	memcpy(s[1].parent_id, s[2].span_id, 8);
	out = render(&s[1], 2, 0, &rows);
	assert_int_equal(rows, 2);
	free(out);
	assert_int_equal(waterfall_render(stdout, NULL, 0, NULL), 0);
	rng_free(r);
}

/* ecom trace's page for a known order: the summary, the steps in the
 * order they came, then the spans; plain text unless asked for colour. */
static void test_trace_page(void **state)
{
	rng *r = rng_new(3);
	trace_ctx a, b;
	span s[2];
	s[0] = sp(NULL, &a, r, "gateway", "POST /v1/orders", 0, 40, SPAN_OK);
	s[1] = sp(&a, &b, r, "order", "saga STARTED -> CONFIRMING", 5, 30, SPAN_ERROR);
	json_t *spans = json_array();
	json_array_append_new(spans, span_json(&s[1])); /* any order */
	json_array_append_new(spans, span_json(&s[0]));
	json_t *v = json_pack(
		"{s:s,s:s,s:n,s:s,s:{s:s},s:[{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s,s:s},"
		"{s:s,s:s,s:i,s:s}],s:o}",
		"order_id", "ord_1", "state", "CONFIRMING", "reason", "trace_id",
		"4bf92f3577b34da6a3ce929d0e0e4736", "order", "status", "PENDING", "steps", "name",
		"reserve", "status", "SUCCEEDED", "attempts", 1, "at", "t1", "name", "authorize",
		"status", "SUCCEEDED", "attempts", 2, "at", "t2", "detail", "payment: 503",
		"name", "enqueue", "status", "SUCCEEDED", "attempts", 1, "at", "t3", "spans",
		spans);
	assert_non_null(v);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_int_equal(traces_print(f, v, 0, 100), 2);
	fclose(f);
	assert_null(strchr(out, '\033'));
	assert_non_null(strstr(out, "order ord_1  PENDING  saga CONFIRMING\n"));
	const char *r1 = strstr(out, "reserve"), *r2 = strstr(out, "authorize"),
		   *r3 = strstr(out, "enqueue"), *sp_ = strstr(out, "spans (2):");
	assert_true(r1 && r2 && r3 && sp_ && r1 < r2 && r2 < r3 && r3 < sp_);
	assert_non_null(strstr(out, "attempts 2"));
	assert_non_null(strstr(out, "payment: 503"));
	assert_true(line_of(out, "gateway  POST /v1/orders") < line_of(out, "  order  saga"));
	free(out);
	f = open_memstream(&out, &len);
	traces_print(f, v, 1, 100);
	fclose(f);
	assert_non_null(strstr(out, "\033[31merror"));
	free(out);
	json_decref(v);
	rng_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_order_and_bars),
		cmocka_unit_test(test_orphans_and_cycles),
		cmocka_unit_test(test_trace_page),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
