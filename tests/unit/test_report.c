/* Tests for sim/threshold, sim/report and sim/order_log: thresholds read
 * and decided (every operator, units, endpoints, the mistakes), percentiles
 * of known samples, counts by outcome and status, drops, orders and their
 * final states, the audit counted as a threshold, the summary's ✓/✗ and
 * the NDJSON and CSV outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/err.h"
#include "sim/order_log.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/threshold.h"

static threshold parse_ok(const char *expr)
{
	threshold t;
	char err[256] = "";
	if (threshold_parse(expr, scenario_action_names(), &t, err, sizeof err) != 0)
		fail_msg("'%s' refused: %s", expr, err);
	return t;
}

static void test_threshold_parse(void **unused)
{
	threshold t = parse_ok("p99 < 250ms");
	assert_int_equal(t.metric, TM_PERCENTILE);
	assert_true(t.pct == 99);
	assert_int_equal(t.op, TOP_LT);
	assert_true(t.value == 250000);
	assert_string_equal(t.endpoint, "");
	assert_string_equal(t.text, "p99 < 250ms");
	t = parse_ok("  checkout.p99.9<=1.5s ");
	assert_string_equal(t.endpoint, "checkout");
	assert_true(t.pct == 99.9);
	assert_int_equal(t.op, TOP_LE);
	assert_true(t.value == 1500000);
	assert_string_equal(t.text, "checkout.p99.9<=1.5s");
	t = parse_ok("p(95) < 200"); /* k6's spelling; a bare number is ms */
	assert_true(t.pct == 95 && t.value == 200000);
	t = parse_ok("error_rate < 1%");
	assert_int_equal(t.metric, TM_ERROR_RATE);
	assert_true(fabs(t.value - 0.01) < 1e-12);
	t = parse_ok("view.error_rate <= 0.05");
	assert_true(fabs(t.value - 0.05) < 1e-12);
	t = parse_ok("orders_lost == 0");
	assert_int_equal(t.metric, TM_ORDERS_LOST);
	assert_int_equal(t.op, TOP_EQ);
	t = parse_ok("rate >= 100/s");
	assert_int_equal(t.metric, TM_RATE);
	assert_true(t.value == 100);
	t = parse_ok("dropped != 3");
	assert_int_equal(t.op, TOP_NE);
	t = parse_ok("browse.max > 1us");
	assert_int_equal(t.metric, TM_MAX);
	assert_int_equal(t.op, TOP_GT);
	t = parse_ok("mean >= 2ms");
	assert_int_equal(t.op, TOP_GE);
	char label[32];
	threshold_metric_label(&t, label, sizeof label);
	assert_string_equal(label, "mean");
	t = parse_ok("p99.9 < 1s");
	threshold_metric_label(&t, label, sizeof label);
	assert_string_equal(label, "p99.9");

	static const struct {
		const char *expr, *want;
	} bad[] = {
		{ "", "expected a threshold such as 'p99 < 250ms', got nothing" },
		{ "p99 250ms", "expected an operator (< <= > >= == !=) in 'p99 250ms'" },
		{ "< 5", "expected a metric such as p99 or error_rate before '<'" },
		{ "p99 <", "expected a value after 'p99 <'" },
		{ "p99 =< 5ms", "expected an operator (< <= > >= == !=) after 'p99', got '=<5ms'" },
		{ "p101 < 5ms", "unknown metric 'p101'" },
		{ "p0 < 5ms", "unknown metric 'p0'" },
		{ "latency < 5ms", "unknown metric 'latency'" },
		{ "view.speed < 5", "unknown metric 'speed' after 'view.'" },
		{ "buy.p99 < 5ms", "unknown endpoint 'buy' (expected one of browse, search, view, add_to_cart" },
		{ "view.dropped == 0", "'dropped' is measured for the whole run, not per endpoint" },
		{ "p99 < soon", "expected a duration such as 250ms or 1.5s after 'p99 <', got 'soon'" },
		{ "error_rate < 200%", "expected a ratio such as 1% or 0.01 after 'error_rate <', got '200%'" },
		{ "errors < 1.5", "expected a whole number after 'errors <', got '1.5'" },
		{ "rate > fast", "expected requests per second such as 100 or 100/s after 'rate >', got 'fast'" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		threshold x;
		char err[256] = "";
		if (threshold_parse(bad[i].expr, scenario_action_names(), &x, err, sizeof err) == 0)
			fail_msg("'%s' was accepted", bad[i].expr);
		if (!strstr(err, bad[i].want))
			fail_msg("'%s': got \"%s\", wanted \"%s\"", bad[i].expr, err, bad[i].want);
	}
	/* Blanks do not matter, even between a number and its unit. */
	t = parse_ok("p99<5 ms");
	assert_true(t.value == 5000);
}

static void test_threshold_pass(void **unused)
{
	threshold t = parse_ok("p99 < 250ms");
	assert_true(threshold_pass(&t, 249999));
	assert_false(threshold_pass(&t, 250000));
	t = parse_ok("p99 <= 250ms");
	assert_true(threshold_pass(&t, 250000));
	t = parse_ok("orders_lost == 0");
	assert_true(threshold_pass(&t, 0));
	assert_false(threshold_pass(&t, 1));
	t = parse_ok("error_rate < 1%");
	assert_true(threshold_pass(&t, 0.0099));
	assert_false(threshold_pass(&t, 0.01));
	assert_false(threshold_pass(&t, NAN)); /* not measured: not passed */
	t = parse_ok("count > 10");
	assert_true(threshold_pass(&t, 11));
	assert_false(threshold_pass(&t, 10));
	t = parse_ok("count >= 10");
	assert_true(threshold_pass(&t, 10));
	t = parse_ok("errors != 0");
	assert_true(threshold_pass(&t, 2));
	assert_false(threshold_pass(&t, 0));
	char buf[32];
	threshold_fmt_value(TM_ERROR_RATE, 0.0125, buf, sizeof buf);
	assert_string_equal(buf, "1.25%");
	threshold_fmt_value(TM_PERCENTILE, 23400, buf, sizeof buf);
	assert_string_equal(buf, "23.4ms");
	threshold_fmt_value(TM_ORDERS_LOST, 3, buf, sizeof buf);
	assert_string_equal(buf, "3");
	threshold_fmt_value(TM_RATE, 48.25, buf, sizeof buf);
	assert_string_equal(buf, "48.2/s");
	threshold_fmt_value(TM_MAX, NAN, buf, sizeof buf);
	assert_string_equal(buf, "n/a");
}

static scenario *scn(const char *thresholds)
{
	char text[2048], err[256];
	snprintf(text, sizeof text,
		 "[load]\nrate = 10\nduration = 10s\n[journey j]\nsteps = view checkout\n"
		 "[schedule]\nat 1s kill cart\nat 2s broker down\n[thresholds]\n%s",
		 thresholds);
	scenario *s = scenario_parse("r.scn", text, err, sizeof err);
	if (!s)
		fail_msg("%s", err);
	return s;
}

static void sample(report *r, scenario_action a, int64_t ms, int status, int err, report_outcome o)
{
	report_sample m = { .t_us = 1000, .latency_us = ms * 1000, .endpoint = a, .status = status,
			    .err = err, .outcome = o, .arrival = 5, .journey = 0, .user = 2 };
	report_record(r, &m);
}

static double metric(report *r, const char *expr)
{
	threshold t = parse_ok(expr);
	return report_metric(r, &t);
}

/* 1000 views of 1..1000 ms: the percentiles are where they must be, within
 * the histogram's 1/64 bucket width. */
static void test_percentiles(void **unused)
{
	scenario *s = scn("p50 < 1s\n");
	report *r = report_new(s);
	for (int i = 1; i <= 1000; i++)
		sample(r, SCN_VIEW, i, 200, 0, REPORT_OK);
	static const struct {
		const char *expr;
		double want_ms;
	} cases[] = { { "p50 < 1s", 500 }, { "p90 < 1s", 900 }, { "p95 < 1s", 950 },
		      { "p99 < 1s", 990 }, { "p99.9 < 1s", 999 }, { "max < 1s", 1000 },
		      { "min < 1s", 1 }, { "mean < 1s", 500.5 }, { "view.p90 < 1s", 900 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double v = metric(r, cases[i].expr) / 1000.0;
		if (fabs(v - cases[i].want_ms) > cases[i].want_ms / 64.0 + 0.001)
			fail_msg("%s: %.3f ms, expected about %.1f ms", cases[i].expr, v, cases[i].want_ms);
	}
	assert_true(metric(r, "max < 1s") == 1000000); /* max is exact */
	assert_true(metric(r, "count > 1") == 1000);
	assert_true(isnan(metric(r, "checkout.p99 < 1s"))); /* no checkouts: not measured */
	r->elapsed_us = 4000000;
	assert_true(metric(r, "rate > 1") == 250);
	report_free(r);
	scenario_free(s);
}

static void test_counts_and_decide(void **unused)
{
	scenario *s = scn("p99 < 250ms\nerror_rate < 1%\nview.error_rate < 30%\ncheckout.errors == 2\n"
			  "dropped == 0\ndropped_rate < 50%\norders_lost == 0\nschedule_failures == 0\n"
			  "checkout.expected == 1\n");
	report *r = report_new(s);
	for (int i = 0; i < 6; i++)
		sample(r, SCN_VIEW, 10, 200, 0, REPORT_OK);
	sample(r, SCN_VIEW, 10, 503, 0, REPORT_ERROR);
	sample(r, SCN_CHECKOUT, 20, 201, 0, REPORT_OK);
	sample(r, SCN_CHECKOUT, 20, 409, 0, REPORT_EXPECTED);
	sample(r, SCN_CHECKOUT, 5000, 0, ERR_TIMEOUT, REPORT_ERROR);
	assert_int_equal(r->ep[SCN_VIEW].count, 7);
	assert_int_equal(r->ep[SCN_VIEW].status[503], 1);
	assert_int_equal(r->ep[SCN_CHECKOUT].timeouts, 1);
	uint64_t count, errors;
	report_totals(r, &count, &errors);
	assert_int_equal(count, 10);
	assert_int_equal(errors, 2);
	assert_true(fabs(metric(r, "error_rate < 1%") - 0.2) < 1e-12);
	assert_true(fabs(metric(r, "view.error_rate < 1%") - 1.0 / 7) < 1e-12);
	r->arrivals = 10;
	report_drop(r, REPORT_DROP_NO_WORKER, 100, 8);
	report_drop(r, REPORT_DROP_LATE, 200, 9);
	assert_true(metric(r, "dropped == 0") == 2);
	assert_true(fabs(metric(r, "dropped_rate < 1%") - 0.2) < 1e-12);
	/* Orders: not read back yet, so not measured. */
	assert_true(isnan(metric(r, "orders_lost == 0")));
	/* One schedule action done and failed, the other never ran. */
	report_event e = { .at_us = 1000000, .done_us = 1001000, .ok = 0 };
	snprintf(e.text, sizeof e.text, "at 1s kill cart");
	snprintf(e.message, sizeof e.message, "no running instance of 'cart'");
	report_event_done(r, &e);
	assert_true(metric(r, "schedule_failures == 0") == 2);
	r->orders.polled = 1;
	int failed = report_decide(r);
	/* p99 (5s) fails; error_rate 20% fails; view 14% passes; checkout
	 * errors 1 != 2 fails; dropped fails; dropped_rate 20% passes; lost 0
	 * passes; schedule fails; expected 1 passes. */
	assert_int_equal(failed, 5);
	static const int want[] = { 0, 0, 1, 0, 0, 1, 1, 0, 1 };
	assert_int_equal(r->nthresholds, 9);
	for (int i = 0; i < 9; i++)
		assert_int_equal(r->passed[i], want[i]);
	/* The audit, once hooked, is a threshold of its own. */
	r->audit_hooked = 1;
	r->audit_ran = 1;
	r->audit_failures = 0;
	assert_int_equal(report_decide(r), 5);
	assert_int_equal(r->nthresholds, 10);
	assert_true(r->passed[9]);
	r->audit_failures = 2;
	assert_int_equal(report_decide(r), 6);
	r->audit_ran = 0; /* hooked but could not run: not passed */
	assert_int_equal(report_decide(r), 6);
	report_free(r);
	scenario_free(s);
}

static void test_order_log(void **unused)
{
	order_log *l = order_log_new();
	assert_int_equal(order_log_add(l, "", 0, 0, 201), ERR_INVALID);
	const char *ids[] = { "o1", "o2", "o3", "o4", "o5", "o6", "o7" };
	for (int i = 0; i < 7; i++)
		assert_int_equal(order_log_add(l, ids[i], i, (uint64_t)i, i == 1 ? 202 : 201), 0);
	order_log_set(l, 0, "CONFIRMED", NULL, "COMPLETED");
	order_log_set(l, 1, "CANCELLED", "payment_declined", "COMPENSATED");
	order_log_set(l, 2, "CANCELLED", "customer_cancelled", "COMPENSATED");
	order_log_set(l, 3, "AWAITING_PAYMENT", NULL, "AUTHORIZING");
	order_log_set(l, 4, NULL, NULL, NULL); /* 404 */
	order_log_set(l, 5, "PENDING", NULL, NULL);
	/* 6 never read */
	assert_true(order_log_final(l, 0));
	assert_true(order_log_final(l, 1));
	assert_false(order_log_final(l, 3));
	assert_true(order_log_final(l, 4));
	assert_false(order_log_final(l, 6));
	report_orders o;
	memset(&o, 0, sizeof o);
	order_log_tally(l, &o);
	assert_int_equal(o.created, 7);
	assert_int_equal(o.created_202, 1);
	assert_int_equal(o.confirmed, 1);
	assert_int_equal(o.cancelled, 2);
	assert_int_equal(o.cancelled_by[report_reason_of("payment_declined")], 1);
	assert_int_equal(o.cancelled_by[report_reason_of("customer_cancelled")], 1);
	assert_int_equal(o.awaiting, 1);
	assert_int_equal(o.pending, 1);
	assert_int_equal(o.unknown, 2); /* the 404 and the one never read */
	assert_int_equal(o.saga_completed, 1);
	assert_int_equal(o.saga_compensated, 2);
	assert_int_equal(o.saga_open, 1);
	/* Lost: unknown + still open. */
	scenario *s = scn("orders_lost == 0\n");
	report *r = report_new(s);
	r->orders = o;
	r->orders.polled = 1;
	assert_true(metric(r, "orders_lost == 0") == 4);
	assert_true(metric(r, "orders_open == 0") == 2);
	assert_true(metric(r, "orders_confirmed == 0") == 1);
	assert_int_equal(report_decide(r), 1);
	report_free(r);
	scenario_free(s);
	order_log_free(l);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_outputs_and_summary(void **unused)
{
	scenario *s = scn("p99 < 250ms\nerror_rate < 1%\n");
	report *r = report_new(s);
	char err[256], json[] = "/tmp/ecom-rep-XXXXXX", csv[] = "/tmp/ecom-rep-csv-XXXXXX";
	close(mkstemp(json));
	close(mkstemp(csv));
	char spec[64];
	assert_int_equal(report_open_output(r, "xml=out", err, sizeof err), ERR_INVALID);
	assert_string_equal(err, "expected --out json=FILE or --out csv=FILE, got 'xml=out'");
	assert_int_equal(report_open_output(r, "json=", err, sizeof err), ERR_INVALID);
	snprintf(spec, sizeof spec, "json=%s", json);
	assert_int_equal(report_open_output(r, spec, err, sizeof err), 0);
	assert_int_equal(report_open_output(r, spec, err, sizeof err), ERR_INVALID);
	snprintf(spec, sizeof spec, "csv=%s", csv);
	assert_int_equal(report_open_output(r, spec, err, sizeof err), 0);
	sample(r, SCN_VIEW, 12, 200, 0, REPORT_OK);
	sample(r, SCN_CHECKOUT, 30, 0, ERR_TIMEOUT, REPORT_ERROR);
	report_drop(r, REPORT_DROP_NO_WORKER, 250000, 7);
	r->arrivals = 3;
	r->started = 2;
	r->elapsed_us = 1000000;
	report_decide(r);
	/* The summary: rows, statuses, ✓ and ✗. */
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	report_print(r, mem);
	fclose(mem);
	assert_non_null(strstr(text, "  view "));
	assert_non_null(strstr(text, "  checkout "));
	assert_non_null(strstr(text, "  all "));
	assert_non_null(strstr(text, "200 ×1  timeout ×1"));
	assert_non_null(strstr(text, "3 due, 2 started, 1 dropped (no free worker 1, late 0)"));
	assert_non_null(strstr(text, "✓ p99 < 250ms"));
	assert_non_null(strstr(text, "✗ error_rate < 1%"));
	assert_non_null(strstr(text, "error_rate = 50.00%"));
	assert_non_null(strstr(text, "✗ at 1s kill cart"));
	assert_non_null(strstr(text, "never ran"));
	free(text);
	report_finish_outputs(r);
	/* NDJSON: one line per request and drop, then the summary. */
	char *nd = slurp(json);
	json_error_t je;
	int lines = 0;
	for (char *line = strtok(nd, "\n"); line; line = strtok(NULL, "\n"), lines++) {
		json_t *v = json_loads(line, 0, &je);
		if (!v)
			fail_msg("line %d is not JSON: %s", lines + 1, line);
		const char *type = json_string_value(json_object_get(v, "type"));
		if (lines == 0) {
			assert_string_equal(type, "request");
			assert_string_equal(json_string_value(json_object_get(v, "endpoint")), "view");
			assert_int_equal(json_integer_value(json_object_get(v, "status")), 200);
			assert_true(json_is_null(json_object_get(v, "error")));
			assert_true(fabs(json_real_value(json_object_get(v, "latency_ms")) - 12) < 1e-9);
			assert_string_equal(json_string_value(json_object_get(v, "journey")), "j");
		} else if (lines == 1) {
			assert_string_equal(json_string_value(json_object_get(v, "error")), "timeout");
		} else if (lines == 2) {
			assert_string_equal(type, "drop");
			assert_string_equal(json_string_value(json_object_get(v, "reason")), "no_worker");
			assert_int_equal(json_integer_value(json_object_get(v, "arrival")), 7);
		} else {
			assert_string_equal(type, "summary");
			assert_int_equal(json_integer_value(json_object_get(v, "requests")), 2);
			assert_int_equal(json_integer_value(json_object_get(v, "errors")), 1);
			json_t *th = json_object_get(v, "thresholds");
			assert_int_equal(json_array_size(th), 2);
			assert_true(json_is_true(json_object_get(json_array_get(th, 0), "pass")));
			assert_true(json_is_false(json_object_get(json_array_get(th, 1), "pass")));
			json_t *view = json_object_get(json_object_get(v, "endpoints"), "view");
			assert_int_equal(json_integer_value(json_object_get(json_object_get(view, "status"), "200")), 1);
		}
		json_decref(v);
	}
	assert_int_equal(lines, 4);
	/* CSV: a header and one row each. */
	char *c = slurp(csv);
	assert_non_null(strstr(c, "t_s,arrival,journey,user,endpoint,attempt,status,latency_ms,outcome,error\n"));
	assert_non_null(strstr(c, ",view,0,200,12.000,ok,\n"));
	assert_non_null(strstr(c, ",checkout,0,0,30.000,error,timeout\n"));
	assert_non_null(strstr(c, "0.250000,7,,,,0,0,0,dropped,no_worker\n"));
	unlink(json);
	unlink(csv);
	report_free(r);
	scenario_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_parse),	  cmocka_unit_test(test_threshold_pass),
		cmocka_unit_test(test_percentiles),	  cmocka_unit_test(test_counts_and_decide),
		cmocka_unit_test(test_order_log),	  cmocka_unit_test(test_outputs_and_summary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
